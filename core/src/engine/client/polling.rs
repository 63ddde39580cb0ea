//! The long-polling transport: one GET outstanding on one connection,
//! POSTs of batched packets on another, and the close packet's POST.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::links::{LinkState, Role};
use super::{Client, ClientCloseReason, ClientEvent, Input, State, Timer};
use crate::engine::config::Transport;
use crate::engine::packet::{
    Packet, PayloadDecoder, DEFAULT_MAX_PAYLOAD_PACKETS, RECORD_SEPARATOR,
};
use crate::engine::server::ConnId;
use crate::http::{Method, Response};

/// The polling connections, each with whether a request is in flight on
/// it.
#[derive(Debug, Default)]
pub(super) struct Polling {
    get: Option<PollLink>,
    post: Option<PollLink>,
}

#[derive(Debug, Clone, Copy)]
struct PollLink {
    conn: ConnId,
    in_flight: bool,
}

impl Polling {
    /// The handshake's GET connection, asked for.
    pub(super) fn with_get(conn: ConnId) -> Polling {
        Polling {
            get: Some(PollLink {
                conn,
                in_flight: false,
            }),
            post: None,
        }
    }

    fn slot(&mut self, role: Role) -> &mut Option<PollLink> {
        if role == Role::Get {
            &mut self.get
        } else {
            &mut self.post
        }
    }

    fn in_flight(&self, role: Role) -> bool {
        let slot = if role == Role::Get {
            &self.get
        } else {
            &self.post
        };
        slot.is_some_and(|link| link.in_flight)
    }

    /// No request is in flight: an upgrade can take over.
    pub(super) fn is_idle(&self) -> bool {
        !self.in_flight(Role::Get) && !self.in_flight(Role::Post)
    }

    /// Forgets `conn` (closed), with its request in flight.
    pub(super) fn forget(&mut self, conn: ConnId) {
        for slot in [&mut self.get, &mut self.post] {
            if slot.is_some_and(|link| link.conn == conn) {
                *slot = None;
            }
        }
    }

    /// The connections, to close them.
    pub(super) fn conns(&self) -> impl Iterator<Item = ConnId> {
        [self.get, self.post].into_iter().flatten().map(|l| l.conn)
    }
}

impl Client {
    /// The polling connections, in the states that have them.
    pub(super) fn polling(&self) -> Option<&Polling> {
        match &self.state {
            State::Handshaking(super::FirstTransport::Polling(polling))
            | State::Polling { polling, .. }
            | State::Closing { polling, .. } => Some(polling),
            _ => None,
        }
    }

    fn polling_mut(&mut self) -> Option<&mut Polling> {
        match &mut self.state {
            State::Handshaking(super::FirstTransport::Polling(polling))
            | State::Polling { polling, .. }
            | State::Closing { polling, .. } => Some(polling),
            _ => None,
        }
    }

    fn in_flight(&self, role: Role) -> bool {
        self.polling().is_some_and(|p| p.in_flight(role))
    }

    fn set_in_flight(&mut self, role: Role, in_flight: bool) {
        if let Some(Some(link)) = self.polling_mut().map(|p| p.slot(role)) {
            link.in_flight = in_flight;
        }
    }

    /// Makes sure a connection of `role` exists in its slot; `Some` when it
    /// can take a request now.
    fn http_link(&mut self, role: Role) -> Option<ConnId> {
        let slot = *self.polling_mut()?.slot(role);
        let Some(PollLink { conn, .. }) = slot else {
            let conn = self.open_link(role);
            if let Some(polling) = self.polling_mut() {
                *polling.slot(role) = Some(PollLink {
                    conn,
                    in_flight: false,
                });
            }
            return None;
        };
        match self.links.get(&conn).map(|l| &l.state) {
            Some(LinkState::Http(http)) if http.can_send_request() => Some(conn),
            Some(LinkState::Connecting) => None,
            _ => {
                // Cannot carry another request: replace it.
                self.drop_link(conn);
                self.http_link(role)
            }
        }
    }

    pub(super) fn ensure_get(&mut self, now: Instant) {
        if self.in_flight(Role::Get) {
            return;
        }
        let Some(conn) = self.http_link(Role::Get) else {
            return;
        };
        let request = self.request(Method::Get, Transport::Polling, Bytes::new());
        match self.write_http(conn, &request) {
            Ok(()) => self.set_in_flight(Role::Get, true),
            Err(err) => self.step(
                now,
                Input::TransportFailed(ClientCloseReason::TransportError(err)),
            ),
        }
    }

    pub(super) fn flush_post(&mut self, now: Instant) {
        let pong_due = matches!(&self.state, State::Polling { open, .. } if open.pong_due);
        if self.in_flight(Role::Post) || (!pong_due && self.queue.is_empty()) {
            return;
        }
        let Some(conn) = self.http_link(Role::Post) else {
            return;
        };
        let body = self.take_batch(false);
        let request = self.request(Method::Post, Transport::Polling, body);
        match self.write_http(conn, &request) {
            Ok(()) => self.set_in_flight(Role::Post, true),
            Err(err) => self.step(
                now,
                Input::TransportFailed(ClientCloseReason::TransportError(err)),
            ),
        }
    }

    /// Takes the pong and the queued messages that fit in one payload of at
    /// most the server's `maxPayload` bytes (at least one packet), and
    /// encodes them; `with_close` appends a close packet.
    fn take_batch(&mut self, with_close: bool) -> Bytes {
        let max = self.server_max_payload().unwrap_or(usize::MAX);
        let mut body = BytesMut::new();
        let mut record = BytesMut::new();
        let mut count = 0usize;
        let push = |body: &mut BytesMut, record: &BytesMut, count: &mut usize| {
            if *count > 0 {
                body.extend_from_slice(&[RECORD_SEPARATOR]);
            }
            body.extend_from_slice(record);
            *count += 1;
        };
        if self.take_pong_due() {
            Packet::Pong(None).encode_text(&mut record);
            push(&mut body, &record, &mut count);
        }
        let reserve = usize::from(with_close) * 2;
        while let Some(message) = self.queue.front() {
            record.clear();
            Packet::Message(message.clone()).encode_text(&mut record);
            let separator = usize::from(count > 0);
            if count > 0 && body.len() + separator + record.len() + reserve > max {
                break;
            }
            push(&mut body, &record, &mut count);
            self.queue.pop_front();
        }
        if with_close {
            record.clear();
            Packet::Close.encode_text(&mut record);
            push(&mut body, &record, &mut count);
        }
        body.freeze()
    }

    /// A polling request of `role` was answered.
    pub(super) fn on_response(&mut self, now: Instant, role: Role, response: Response) {
        if !matches!(role, Role::Get | Role::Post) {
            return;
        }
        self.set_in_flight(role, false);
        if let State::Closing { sent, .. } = self.state {
            // The session is over: only the close POST's answer matters.
            if role == Role::Post && sent {
                self.step(now, Input::CloseAcknowledged);
            }
            return;
        }
        if response.status != 200 {
            let what = if role == Role::Get { "GET" } else { "POST" };
            return self.step(
                now,
                Input::TransportFailed(ClientCloseReason::TransportError(format!(
                    "polling {what} answered with status {}",
                    response.status
                ))),
            );
        }
        if role == Role::Post || response.body.is_empty() {
            return;
        }
        let decoder = match PayloadDecoder::new(response.body, DEFAULT_MAX_PAYLOAD_PACKETS) {
            Ok(decoder) => decoder,
            Err(err) => {
                return self.step(
                    now,
                    Input::TransportFailed(ClientCloseReason::TransportError(format!(
                        "parse error: {err}"
                    ))),
                )
            }
        };
        for packet in decoder {
            if self.is_closed() {
                return;
            }
            let input = match packet {
                Ok(packet) => Input::Packet(packet),
                Err(err) => Input::TransportFailed(ClientCloseReason::TransportError(format!(
                    "parse error: {err}"
                ))),
            };
            self.step(now, input);
        }
    }

    /// `Polling` -> `Closing`: the application closed the session.
    pub(super) fn close_polling(&mut self, now: Instant) {
        let State::Polling {
            open,
            polling,
            probe,
        } = self.take_state()
        else {
            return;
        };
        if let Some(probe) = probe {
            self.drop_link(probe.conn);
        }
        let linger = Duration::from_millis(open.handshake.ping_timeout);
        self.state = State::Closing {
            handshake: open.handshake,
            polling,
            sent: false,
        };
        self.timers.clear();
        self.timers
            .set(Timer::CloseLinger, now.checked_add(linger).unwrap_or(now));
        self.events
            .push_back(ClientEvent::Closed(ClientCloseReason::Closed));
        self.advance_close(now);
    }

    /// Sends the close POST (with what is still queued) once the POST
    /// connection is free.
    pub(super) fn advance_close(&mut self, now: Instant) {
        match &self.state {
            State::Closing {
                sent: false,
                polling,
                ..
            } if !polling.in_flight(Role::Post) => {}
            _ => return,
        }
        let Some(conn) = self.http_link(Role::Post) else {
            return;
        };
        let body = self.take_batch(true);
        let request = self.request(Method::Post, Transport::Polling, body);
        match self.write_http(conn, &request) {
            Ok(()) => {
                self.set_in_flight(Role::Post, true);
                if let State::Closing { sent, .. } = &mut self.state {
                    *sent = true;
                }
            }
            Err(err) => self.step(
                now,
                Input::TransportFailed(ClientCloseReason::TransportError(err)),
            ),
        }
    }
}
