//! Sessions: what every session keeps whatever its state, opening and
//! ending one, and the application's calls on sessions.

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rustc_hash::FxHashMap;
use tracing::debug;

use super::conn::Conn;
use super::timers::{SessionKey, SessionTimer, TimerKey};
use super::{CloseReason, ConnId, Input, SendError, Server, ServerEvent, SessionState, Sid};
use crate::engine::config::{ServerConfig, Transport};
use crate::engine::packet::{Handshake, Message, Packet};
use crate::Str;

pub(super) struct Session {
    pub(super) state: SessionState,
    /// What names the session in its timers.
    pub(super) key: SessionKey,
    /// The client asked for binary as base64 text (`b64` query parameter).
    pub(super) base64: bool,
    /// Bytes of the messages given to [`Server::send`] that
    /// [`Server::poll_drained`] has not yet reported handed out.
    pub(super) unreported: usize,
    /// The session is in the drained list on its own (not through its
    /// WebSocket connection): its polling queue was taken.
    pub(super) drain_listed: bool,
}

/// The open packet of a new session.
pub(super) fn handshake_packet(config: &ServerConfig, sid: &Sid, transport: Transport) -> Packet {
    let upgrades = if transport == Transport::Polling
        && config.allow_upgrades
        && config.transports.contains(&Transport::WebSocket)
    {
        vec![Str::from_static("websocket")]
    } else {
        Vec::new()
    };
    Packet::Open(Box::new(Handshake {
        sid: sid.clone(),
        upgrades,
        ping_interval: config.ping_interval.as_millis() as u64,
        ping_timeout: config.ping_timeout.as_millis() as u64,
        max_payload: config.max_payload as u64,
    }))
}

impl Server {
    /// Queue a message on a session. Its length counts towards what
    /// [`Server::poll_drained`] reports once the session's output is
    /// handed out.
    pub fn send(&mut self, now: Instant, sid: &str, message: Message) -> Result<(), SendError> {
        let Some(session) = self.sessions.get_mut(sid) else {
            return Err(SendError::UnknownSession);
        };
        // No transition: see "Sending" below the table in `mod.rs`.
        let ws_conn = match &session.state {
            SessionState::Closing(_) => return Err(SendError::UnknownSession),
            SessionState::WebSocket { conn } => Some(*conn),
            SessionState::Polling(_) | SessionState::Upgrading { .. } => None,
        };
        let len = match &message {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
        };
        if len > self.config.max_payload {
            return Err(SendError::TooLarge);
        }
        session.unreported += len;
        match ws_conn {
            // The WebSocket case of `send_packet`, with the session in hand
            // (one lookup less per receiver of a broadcast).
            Some(id) => {
                let base64 = session.base64;
                self.ws_send(id, &Packet::Message(message), base64);
            }
            None => self.send_packet(now, sid, Packet::Message(message)),
        }
        self.finish(now);
        Ok(())
    }

    /// Close a session from the application's side (`forced close`): the
    /// messages already queued are delivered, then the close packet `1`.
    /// [`ServerEvent::Closed`] is reported at once.
    pub fn close(&mut self, now: Instant, sid: &str) -> Result<(), SendError> {
        self.step(now, &Sid::from(sid), Input::Close(CloseReason::ForcedClose))?;
        self.finish(now);
        Ok(())
    }

    /// Close every session (`server shutting down`), as [`Server::close`]
    /// does for one.
    pub fn shutdown(&mut self, now: Instant) {
        let sids: Vec<Sid> = self.sessions.keys().cloned().collect();
        for sid in sids {
            let _ = self.step(now, &sid, Input::Close(CloseReason::ServerShutdown));
        }
        self.finish(now);
    }

    /// The transport a session currently uses.
    pub fn transport(&self, sid: &str) -> Option<Transport> {
        self.sessions.get(sid)?.state.transport()
    }

    /// How many bytes of a session's output wait in the core, not yet handed
    /// to the driver (for backpressure): packets queued for the next
    /// long-polling GET, or WebSocket frames not yet pulled with
    /// [`Server::poll_transmit`].
    pub fn buffered(&self, sid: &str) -> Option<usize> {
        let session = self.sessions.get(sid)?;
        if session.state.is_closing() {
            return None;
        }
        Some(Self::session_buffered(&self.conns, session))
    }

    /// A session's output waiting in the core (an associated function, so
    /// that a caller holding the session mutably can ask).
    pub(super) fn session_buffered(conns: &FxHashMap<ConnId, Conn>, session: &Session) -> usize {
        match &session.state {
            SessionState::Polling(polling)
            | SessionState::Upgrading { polling, .. }
            | SessionState::Closing(polling) => polling.queued_bytes,
            SessionState::WebSocket { conn } => conns.get(conn).map_or(0, Conn::buffered),
        }
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| !s.state.is_closing())
            .count()
    }

    /// A session id no live session has.
    pub(super) fn new_sid(&mut self) -> Sid {
        loop {
            let mut bytes = [0u8; 15];
            self.rng.fill_bytes(&mut bytes);
            if self.sid_counter > 0 {
                // Only reached when the generator repeated itself.
                for (b, c) in bytes.iter_mut().zip(self.sid_counter.to_le_bytes()) {
                    *b ^= c;
                }
            }
            let sid = Sid::from(URL_SAFE_NO_PAD.encode(bytes));
            if !self.sessions.contains_key(&sid) {
                return sid;
            }
            self.sid_counter += 1;
        }
    }

    /// Adds a session in `state`, its heartbeat armed.
    pub(super) fn open_session(
        &mut self,
        now: Instant,
        sid: Sid,
        state: SessionState,
        base64: bool,
    ) {
        let key = SessionKey(self.next_session_key);
        self.next_session_key += 1;
        let session = Session {
            state,
            key,
            base64,
            unreported: 0,
            drain_listed: false,
        };
        self.sessions.insert(sid.clone(), session);
        self.session_keys.insert(key, sid);
        let first_ping = now + self.config.ping_interval + self.config.ping_interval_grace;
        self.timers
            .set(TimerKey::Session(key, SessionTimer::Ping), first_ping);
    }

    /// Sends a packet of the server's own (a ping) on the session's
    /// transport.
    pub(super) fn send_packet(&mut self, now: Instant, sid: &str, packet: Packet) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        let base64 = session.base64;
        match &mut session.state {
            SessionState::Polling(polling) | SessionState::Upgrading { polling, .. } => {
                polling.push(packet);
                self.flush_poll(now, sid);
            }
            SessionState::WebSocket { conn } => {
                let conn = *conn;
                self.ws_send(conn, &packet, base64);
            }
            SessionState::Closing(_) => {}
        }
    }

    /// A session leaves for `gone`: reports it (unless its close was
    /// reported already) and releases its connections and timers.
    pub(super) fn end_session(&mut self, now: Instant, sid: &Sid, reason: CloseReason) {
        let Some(session) = self.forget_session(sid) else {
            return;
        };
        if !session.state.is_closing() {
            debug!(%sid, reason = reason.as_str(), "session closed");
            self.events.push_back(ServerEvent::Closed {
                sid: sid.clone(),
                reason,
            });
        }
        let (get, ws): (Option<ConnId>, Option<ConnId>) = match session.state {
            SessionState::Polling(polling) | SessionState::Closing(polling) => (polling.get, None),
            SessionState::Upgrading { polling, probe, .. } => (polling.get, Some(probe)),
            SessionState::WebSocket { conn } => (None, Some(conn)),
        };
        if let Some(id) = get {
            let packet = if reason == CloseReason::ClientClose {
                Packet::Noop
            } else {
                Packet::Close
            };
            self.answer_poll(now, id, &[packet]);
        }
        if let Some(id) = ws {
            self.ws_shutdown(now, id);
        }
    }

    /// Removes a session and its timers.
    pub(super) fn forget_session(&mut self, sid: &Sid) -> Option<Session> {
        let session = self.sessions.remove(sid)?;
        self.session_keys.remove(&session.key);
        self.stop_session_timers(session.key);
        Some(session)
    }
}
