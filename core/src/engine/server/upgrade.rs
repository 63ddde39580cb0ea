//! WebSocket upgrades: the HTTP handshake that turns a connection into a
//! WebSocket, opening a session on it or probing to take a polling session
//! over, and what completing or abandoning that takeover does.

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::conn::{ConnKind, WsRole};
use super::http::{append_headers, cookie_header};
use super::polling::PollingState;
use super::session::handshake_packet;
use super::timers::{SessionKey, SessionTimer, TimerKey};
use super::{ConnId, Input, Server, ServerEvent, SessionState, Sid};
use crate::engine::config::Transport;
use crate::engine::cors::cors_headers;
use crate::engine::packet::Packet;
use crate::http::{Request, Response};
use crate::ws::{accept_upgrade, WebSocket};

/// The answer to a refused WebSocket upgrade: engine.io's `abortUpgrade`.
fn upgrade_refusal(message: &str) -> Response {
    Response::new(400)
        .with_header("Content-type", "text/html")
        .with_body(Bytes::copy_from_slice(message.as_bytes()))
}

impl Server {
    fn refuse_upgrade(&mut self, now: Instant, id: ConnId, message: &str) {
        debug!(conn = id.0, message, "upgrade refused");
        self.respond(now, id, upgrade_refusal(message));
    }

    pub(super) fn on_upgrade(
        &mut self,
        now: Instant,
        id: ConnId,
        request: Request,
        leftover: Bytes,
    ) {
        if !self.path_matches(&request) {
            return self.refuse_upgrade(now, id, "Bad request");
        }
        let Some(cors) = cors_headers(&self.config, &request) else {
            return self.refuse_upgrade(now, id, "Bad request");
        };
        match self.requested_transport(&request) {
            Some(Transport::WebSocket) => {}
            Some(Transport::Polling) => return self.refuse_upgrade(now, id, "Bad request"),
            None => return self.refuse_upgrade(now, id, "Transport unknown"),
        }
        let sid = Self::requested_sid(&request);
        match &sid {
            Some(sid) => {
                if !self.sessions.contains_key(sid) {
                    return self.refuse_upgrade(now, id, "Session ID unknown");
                }
            }
            None => {
                if let Some(check) = &self.config.allow_request {
                    if let Err(message) = check(&request) {
                        let message = if message.is_empty() {
                            "Forbidden".to_owned()
                        } else {
                            message
                        };
                        return self.refuse_upgrade(now, id, &message);
                    }
                }
                if request.query_param("EIO").as_deref() != Some("4") {
                    return self.refuse_upgrade(now, id, "Unsupported protocol version");
                }
            }
        }
        let accept = match accept_upgrade(request.headers.iter()) {
            Ok(accept) => accept,
            Err(err) => {
                debug!(error = %err, "bad websocket handshake");
                return self.refuse_upgrade(now, id, "Bad request");
            }
        };
        let mut response = Response::new(101);
        for (name, value) in accept.headers() {
            response.headers.append(name, value.to_owned());
        }
        #[cfg(feature = "deflate")]
        let deflate = self.negotiate_deflate(&request);
        #[cfg(feature = "deflate")]
        if let Some(params) = &deflate {
            response
                .headers
                .append("Sec-WebSocket-Extensions", params.response_header());
        }
        append_headers(&mut response, &cors);
        let new_sid = if sid.is_none() {
            let new_sid = self.new_sid();
            if let Some(cookie) = &self.config.cookie {
                response
                    .headers
                    .append("Set-Cookie", cookie_header(cookie, &new_sid));
            }
            Some(new_sid)
        } else {
            None
        };
        self.respond(now, id, response);
        #[cfg(feature = "deflate")]
        let deflate_config = self.deflate_config();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let ConnKind::Http { codec, .. } = &mut conn.kind else {
            return;
        };
        if !codec.is_upgraded() {
            return;
        }
        let rest = codec.take_buffered();
        let ws = WebSocket::server(self.ws_config);
        #[cfg(feature = "deflate")]
        let ws = match deflate {
            Some(params) => ws.with_deflate(params, &deflate_config),
            None => ws,
        };
        let mut ws = Box::new(ws);
        ws.receive(&leftover);
        ws.receive(&rest);
        conn.kind = ConnKind::Ws {
            ws,
            role: WsRole::Closing,
        };
        if let Some(new_sid) = new_sid {
            let base64 = request.query_param("b64").is_some();
            let state = SessionState::WebSocket { conn: id };
            self.open_session(now, new_sid.clone(), state, base64);
            self.set_role(id, WsRole::Session(new_sid.clone()));
            debug!(sid = %new_sid, "session opened (websocket)");
            let open = handshake_packet(&self.config, &new_sid, Transport::WebSocket);
            self.ws_send(id, &open, false);
            let info = self.open_info(id, request, Transport::WebSocket);
            self.events
                .push_back(ServerEvent::Opened { sid: new_sid, info });
        } else if let Some(sid) = sid {
            let _ = self.step(now, &sid, Input::Probe(id));
        }
        self.process_ws(now, id);
    }

    /// The permessage-deflate settings: engine.io's `perMessageDeflate`
    /// with its threshold taken from `compression_threshold`.
    #[cfg(feature = "deflate")]
    fn deflate_config(&self) -> crate::ws::DeflateConfig {
        crate::ws::DeflateConfig {
            threshold: self.config.compression_threshold,
            ..crate::ws::DeflateConfig::default()
        }
    }

    /// The permessage-deflate parameters to accept from an upgrade request,
    /// when `websocket_compression` is on and the client offers it.
    #[cfg(feature = "deflate")]
    fn negotiate_deflate(&self, request: &Request) -> Option<crate::ws::DeflateParams> {
        if !self.config.websocket_compression {
            return None;
        }
        crate::ws::negotiate_deflate(request.headers.iter(), &self.deflate_config())
    }

    /// The output of Upgrading → WebSocket (the state already moved): the
    /// probe serves the session, a held GET is told to stop (`1`), and what
    /// the polling queue held goes out on the WebSocket.
    pub(super) fn complete_upgrade(
        &mut self,
        now: Instant,
        sid: &Sid,
        key: SessionKey,
        conn: ConnId,
        polling: PollingState,
        base64: bool,
    ) {
        self.timers
            .stop(&TimerKey::Session(key, SessionTimer::UpgradeTimeout));
        // What the queue held now waits on the WebSocket: the buffered
        // amount changed, so let `poll_drained` look again.
        self.list_queue_drained(sid);
        self.set_role(conn, WsRole::Session(sid.clone()));
        if let Some(get) = polling.get {
            self.answer_poll(now, get, &[Packet::Close]);
        }
        for packet in &polling.queue {
            self.ws_send(conn, packet, base64);
        }
        debug!(%sid, "upgraded to websocket");
        self.events
            .push_back(ServerEvent::Upgraded { sid: sid.clone() });
    }

    /// The output of Upgrading → Polling (or Closing): the probe is closed.
    pub(super) fn upgrade_abandoned(
        &mut self,
        now: Instant,
        sid: &Sid,
        key: SessionKey,
        probe: ConnId,
    ) {
        debug!(%sid, "upgrade abandoned");
        self.timers
            .stop(&TimerKey::Session(key, SessionTimer::UpgradeTimeout));
        self.ws_shutdown(now, probe);
    }
}
