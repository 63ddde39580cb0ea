//! Long-polling: the queue a session's GET drains, the GET held until there
//! is something to say, and the POSTs that carry the client's packets.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tracing::{debug, warn};

use super::conn::Held;
use super::http::{append_headers, bare_response};
use super::{CloseReason, ConnId, Input, Server, SessionState, Sid};
use crate::engine::compress::{compress, negotiate};
use crate::engine::packet::{
    encode_payload, Message, Packet, PayloadDecoder, DEFAULT_MAX_PAYLOAD_PACKETS, RECORD_SEPARATOR,
};
use crate::http::{Headers, Request, Response};
use crate::memory::shrink_if_empty;

/// The long-polling side of a session (in every state but `WebSocket`).
#[derive(Default)]
pub(super) struct PollingState {
    /// The connection holding the session's pending GET.
    pub(super) get: Option<ConnId>,
    /// Packets for the next GET.
    pub(super) queue: VecDeque<Packet>,
    /// Approximate wire size of `queue`, for [`Server::buffered`].
    pub(super) queued_bytes: usize,
}

impl PollingState {
    /// Queues a packet for the next GET.
    pub(super) fn push(&mut self, packet: Packet) {
        self.queued_bytes += packet_size(&packet);
        self.queue.push_back(packet);
    }
}

/// Approximate bytes a packet takes on the wire, for [`Server::buffered`].
fn packet_size(packet: &Packet) -> usize {
    match packet {
        Packet::Message(Message::Text(text)) => text.len() + 1,
        Packet::Message(Message::Binary(bytes)) => bytes.len() + 1,
        _ => 1,
    }
}

/// A long-polling body: the packets' text forms joined by the record
/// separator. A text that contains the separator cannot travel over
/// long-polling: that packet is dropped (with a warning) rather than
/// corrupting the payload.
fn encode_polling(packets: &[Packet]) -> BytesMut {
    let mut out = BytesMut::new();
    for packet in packets {
        let start = out.len();
        if start > 0 {
            out.extend_from_slice(&[RECORD_SEPARATOR]);
        }
        if encode_payload([packet], &mut out).is_err() {
            warn!("dropping a text message containing 0x1E: long-polling cannot carry it");
            out.truncate(start);
        }
    }
    out
}

impl Server {
    /// A GET of a known polling session: held until there is something to
    /// say (the session machine decides).
    pub(super) fn poll_get(
        &mut self,
        now: Instant,
        id: ConnId,
        sid: Sid,
        request: &Request,
        headers: Headers,
    ) {
        let coding = if self.config.http_compression {
            negotiate(request.headers.get("accept-encoding"))
        } else {
            None
        };
        let held = Box::new(Held {
            sid: sid.clone(),
            headers,
            coding,
        });
        let _ = self.step(now, &sid, Input::Get { conn: id, held });
    }

    /// Answers a session's pending GET if there is something to say;
    /// returns whether it did.
    pub(super) fn flush_poll(&mut self, now: Instant, sid: &str) -> bool {
        let Some(session) = self.sessions.get_mut(sid) else {
            return false;
        };
        let probed = matches!(session.state, SessionState::Upgrading { probed: true, .. });
        let closing = session.state.is_closing();
        let Some(polling) = session.state.polling_mut() else {
            return false;
        };
        let Some(id) = polling.get else {
            return false;
        };
        let taken = !polling.queue.is_empty();
        let packets: Vec<Packet> = if taken {
            polling.queued_bytes = 0;
            let packets = polling.queue.drain(..).collect();
            shrink_if_empty(&mut polling.queue);
            packets
        } else if probed {
            vec![Packet::Noop]
        } else {
            return false;
        };
        polling.get = None;
        if taken && !closing {
            self.list_queue_drained(sid);
        }
        self.answer_poll(now, id, &packets);
        true
    }

    /// Sends `packets` as the answer to the GET held on `id`.
    pub(super) fn answer_poll(&mut self, now: Instant, id: ConnId, packets: &[Packet]) {
        let Some(held) = self.conns.get_mut(&id).and_then(|c| c.held.take()) else {
            return;
        };
        let mut body = encode_polling(packets).freeze();
        let mut response = Response::new(200);
        response
            .headers
            .append("Content-Type", "text/plain; charset=UTF-8");
        if let Some(coding) = held.coding {
            if body.len() >= self.config.compression_threshold {
                body = Bytes::from(compress(coding, &body));
                response.headers.append("Content-Encoding", coding.as_str());
            }
        }
        response.headers.append("cache-control", "no-store");
        append_headers(&mut response, &held.headers);
        response.body = body;
        self.respond(now, id, response);
        self.reprocess.push_back(id);
    }

    /// A POST of a known polling session: its packets go to the session
    /// machine one by one.
    pub(super) fn poll_post(
        &mut self,
        now: Instant,
        id: ConnId,
        sid: Sid,
        request: Request,
        headers: Headers,
    ) {
        let binary = request
            .headers
            .get("content-type")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"application/octet-stream"));
        if binary {
            debug!(%sid, "binary POST body");
            self.respond(now, id, bare_response(400, headers));
            let _ = self.step(now, &sid, Input::Fail(CloseReason::TransportError));
            return;
        }
        // A closing session takes no more packets: its body is not read.
        let closing = self
            .sessions
            .get(&sid)
            .map_or(true, |s| s.state.is_closing());
        let mut parse_error = false;
        if !closing {
            match PayloadDecoder::new(request.body, DEFAULT_MAX_PAYLOAD_PACKETS) {
                Err(err) => {
                    debug!(%sid, error = %err, "undecodable POST body");
                    parse_error = true;
                }
                Ok(decoder) => {
                    for item in decoder {
                        match item {
                            Ok(packet) => {
                                let _ = self.step(now, &sid, Input::Packet(packet));
                                if !self.sessions.contains_key(&sid) {
                                    break;
                                }
                            }
                            Err(err) => {
                                debug!(%sid, error = %err, "undecodable packet in POST body");
                                parse_error = true;
                                break;
                            }
                        }
                    }
                }
            }
        }
        if parse_error {
            self.respond(now, id, bare_response(400, headers));
            let _ = self.step(now, &sid, Input::Fail(CloseReason::ParseError));
            return;
        }
        let mut response = bare_response(200, Headers::new());
        response.headers.append("Content-Type", "text/html");
        response.headers.append("cache-control", "no-store");
        append_headers(&mut response, &headers);
        response.body = Bytes::from_static(b"ok");
        self.respond(now, id, response);
    }
}
