//! The Engine.IO v4 server endpoint: every HTTP connection and every session
//! of one server, as one deterministic state machine.
//!
//! # Driving it
//! The driver owns the TCP connections. It announces each accepted
//! connection with [`Server::handle_connection`], feeds what it reads with
//! [`Server::handle_read`] and the end of the stream with
//! [`Server::handle_eof`], and calls [`Server::handle_timeout`] when the
//! deadline from [`Server::poll_timeout`] passes. Every input takes `now`.
//!
//! After each input (and after each application call such as
//! [`Server::send`]), drain in this order:
//! 1. [`Server::poll_event`] until `None`: sessions opened, messages,
//!    sessions closed;
//! 2. [`Server::poll_ready`] until `None`: connections that have bytes to
//!    write or must be closed; for each, [`Server::poll_transmit`] until
//!    `None` (the driver may also stop pulling while its socket is not
//!    writable: bytes wait in the core, which bounds them). Pulling output
//!    takes no `now`: what closing a connection means for its session was
//!    decided by the input that closed it;
//! 3. [`Server::poll_timeout`]: re-arm the one timer.
//!
//! A layer that counts what it gave [`Server::send`] for backpressure
//! drains [`Server::poll_drained`] after pulling output: it names each
//! session whose output was handed out since, so that accounting costs
//! O(1) per delivery instead of a scan of every session with bytes in
//! flight. Layers that do not need it may ignore it (it stays bounded).
//!
//! Before reading from a socket, a driver may ask [`Server::wants_read`]
//! (false while a response is pending and pipelined bytes are waiting).
//!
//! Requests already parsed by another HTTP stack enter through
//! [`Server::handle_request`]; their answers come out of
//! [`Server::poll_response`] when [`Server::poll_ready`] names them.
//!
//! # Behaviour
//! As engine.io 6.6: the error codes and bodies, long-polling with one
//! pending GET per session that drains the whole queue, the upgrade with
//! `2probe`/`3probe`/noop/`5`, the server-sent heartbeat (a pong restarts
//! the interval), and python-socketio's `cors_allowed_origins`. Deadlines
//! are kept in one [`crate::timer::TimerTable`] keyed by what
//! each is for, so a session's heartbeat costs O(log n) and fires exactly
//! on time.
//!
//! # Memory
//! Every connection's input is bounded by the HTTP and WebSocket limits
//! (`max_http_head`, `max_payload`); a connection without a request in
//! progress is closed after `idle_timeout`; what waits for the driver grows
//! only with what the application sends, which [`Server::buffered`] reports
//! per session.

// # The session machine
//
// A session is in one of four states (`SessionState`); every transition is
// decided in `Server::step`, one `match` over (state, input). The adapters
// around it (HTTP routing in `http.rs`, the polling requests in
// `polling.rs`, the WebSocket upgrade in `upgrade.rs`, frames in
// `websocket.rs`, connections in `conn.rs`, deadlines in `timers.rs`) only
// turn what happened into an `Input`.
//
// Timers armed per state (`timers.rs`): every state but `Closing` has
// exactly one of `Ping` / `PongTimeout`; `Upgrading` also has
// `UpgradeTimeout`; `Closing` has only `CloseDelivery`. `gone` is the
// session removed from the map with all its timers.
//
// | state                 | input                       | next state  | output                                                        |
// |-----------------------|-----------------------------|-------------|---------------------------------------------------------------|
// | Polling, Upgrading,   | Get, none held              | same        | GET held; answered at once if packets wait (Upgrading after   |
// |   Closing             |                             |             |   `2probe`: a noop); Closing: answered with its close packet, |
// |                       |                             |             |   then gone                                                   |
// | Polling, Upgrading,   | Get, one already held       | gone        | 400; Closed(transport error); the held GET gets `1`           |
// |   Closing             |                             |             |                                                               |
// | WebSocket             | Get, Post                   | same        | 400 code 3 (routing refuses these before `step`)              |
// | Polling, Upgrading,   | GetLost (the held GET's     | gone        | Closed(transport error)                                       |
// |   Closing             |   connection went away)     |             |                                                               |
// | Polling, Upgrading,   | Packet(pong)                | same        | PongTimeout stopped, Ping armed at now + interval + grace     |
// |   WebSocket           |                             |             |                                                               |
// |   "                   | Packet(ping)                | gone        | Closed(transport error)                                       |
// |   "                   | Packet(message)             | same        | Message event                                                 |
// |   "                   | Packet(close)               | gone        | Closed(transport close); a held GET gets a noop               |
// |   "                   | Packet(open/upgrade/noop)   | same        | -                                                             |
// | Closing               | Packet(_)                   | same        | - (ignored)                                                   |
// | WebSocket             | TransportLost (its conn)    | gone        | Closed(reason)                                                |
// | Polling               | Probe(ws), upgrades allowed | Upgrading   | UpgradeTimeout armed                                          |
// | other / not allowed   | Probe(ws)                   | same        | the new WebSocket is closed                                   |
// | Upgrading (its probe) | ProbePacket(`2probe`)       | Upgrading   | `3probe` on the probe; probed: a held GET gets a noop         |
// |   "                   | ProbePacket(upgrade `5`)    | WebSocket   | held GET gets `1`; queue moved to the WebSocket; Upgraded     |
// |   "                   | ProbePacket(other)          | Polling     | probe closed                                                  |
// |   "                   | ProbeLost                   | Polling     | probe closed                                                  |
// |   "                   | Timeout(UpgradeTimeout)     | Polling     | probe closed                                                  |
// | any, not its probe    | ProbePacket, ProbeLost      | same        | that WebSocket is closed                                      |
// | Polling, Upgrading,   | Timeout(Ping)               | same        | ping sent; PongTimeout armed at due + ping_timeout            |
// |   WebSocket           |                             |             |                                                               |
// |   "                   | Timeout(PongTimeout)        | gone        | Closed(ping timeout)                                          |
// | Closing               | Timeout(CloseDelivery)      | gone        | - (Closed was reported by Close)                              |
// | WebSocket             | Close(reason)               | gone        | Closed(reason); `1` and a close frame on the WebSocket        |
// | Polling, Upgrading    | Close(reason)               | Closing     | Closed(reason); `1` queued; probe closed; CloseDelivery armed |
// | Closing               | Close(reason)               | same        | Err(UnknownSession)                                           |
// | any                   | Fail(reason)                | gone        | Closed(reason) unless Closing; a held GET gets `1`            |
//
// Sending (`Server::send`) is no transition: Polling and Upgrading queue
// the packet for the next GET, WebSocket frames it on its connection,
// Closing refuses it (`UnknownSession`). Leaving a state for `gone` is
// `Server::end_session`: it releases the session's connections (held GET,
// WebSocket, probe) and its timers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand_core::RngCore;
use rustc_hash::FxHashMap;
use tracing::debug;

use super::config::{ServerConfig, Transport};
use super::packet::{Message, Packet};
use crate::http::Limits;
use crate::memory::shrink_if_empty;
use crate::timer::TimerTable;
use crate::ws::WsConfig;
use crate::Str;

mod conn;
mod drain;
mod frame;
mod http;
mod polling;
mod session;
mod timers;
mod upgrade;
mod websocket;

#[cfg(test)]
mod tests;

use conn::{Conn, ConnKind, Held, WsRole};
use drain::DrainMark;
use frame::FrameCache;
use http::{bare_response, error_response};
use polling::PollingState;
use session::Session;
use timers::{SessionKey, SessionTimer, TimerKey};

/// Identifies one TCP (or TLS) connection the driver accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// An Engine.IO session id (20 URL-safe characters, from the generator).
pub type Sid = Str;

/// Why a session ended (engine.io's reason strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The transport's connection closed (`transport close`).
    TransportClose,
    /// The transport failed: a protocol error on HTTP or WebSocket, an
    /// aborted poll, a second concurrent poll (`transport error`).
    TransportError,
    /// No pong within `ping_timeout` (`ping timeout`).
    PingTimeout,
    /// The peer sent an undecodable packet (`parse error`).
    ParseError,
    /// The client sent a close packet (`transport close` on the wire of the
    /// reference: engine.io reports `forced close` on its side).
    ClientClose,
    /// The application closed the session (`forced close`).
    ForcedClose,
    /// The server is shutting down (`server shutting down`).
    ServerShutdown,
    /// The connection's unsent output went over
    /// [`ServerConfig::max_buffered_output_hard`] (`slow consumer`, a reason
    /// of this implementation: the reference has no output bound).
    SlowConsumer,
}

impl CloseReason {
    /// The reference implementation's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose | CloseReason::ClientClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::SlowConsumer => "slow consumer",
        }
    }
}

/// What the request that opened a session looked like, for the application.
#[derive(Debug, Clone)]
pub struct HandshakeInfo {
    /// The request (method, path and query, headers; no body).
    pub request: crate::http::Request,
    /// The peer's address, when the driver gave one.
    pub remote: Option<SocketAddr>,
    /// The transport the session started on.
    pub transport: Transport,
}

/// What happened, for the application.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    /// A session was created.
    Opened {
        /// The new session.
        sid: Sid,
        /// The request that opened it.
        info: Box<HandshakeInfo>,
    },
    /// A message arrived on a session.
    Message {
        /// The session.
        sid: Sid,
        /// The message.
        message: Message,
    },
    /// A session moved to WebSocket.
    Upgraded {
        /// The session.
        sid: Sid,
    },
    /// A session ended; no further event names it.
    Closed {
        /// The session.
        sid: Sid,
        /// Why it ended.
        reason: CloseReason,
    },
}

/// What to do on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Write these bytes.
    Data(Bytes),
    /// Close the connection once everything before has been written.
    Close,
}

/// The application asked for something impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No open session has this id.
    UnknownSession,
    /// The message is larger than `max_payload`.
    TooLarge,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            SendError::UnknownSession => f.write_str("unknown session"),
            SendError::TooLarge => f.write_str("message larger than max_payload"),
        }
    }
}
impl std::error::Error for SendError {}

/// Where a session stands; see the table at the top of this module. Each
/// variant carries what exists only in that state, so that a WebSocket
/// session cannot hold a polling queue, nor a closing one a probe.
enum SessionState {
    /// On long-polling.
    Polling(PollingState),
    /// On long-polling while a WebSocket (`probe`) tries to take over.
    Upgrading {
        polling: PollingState,
        /// The WebSocket connection probing.
        probe: ConnId,
        /// The client sent `2probe`: polling requests get a noop from now
        /// on.
        probed: bool,
    },
    /// On its WebSocket connection.
    WebSocket {
        /// The connection.
        conn: ConnId,
    },
    /// The application closed it over polling; it lingers until a GET
    /// fetches the close packet (or `CloseDelivery` passes).
    /// [`ServerEvent::Closed`] was already reported.
    Closing(PollingState),
}

impl Default for SessionState {
    /// A session that just opened on long-polling.
    fn default() -> Self {
        SessionState::Polling(PollingState::default())
    }
}

impl SessionState {
    /// The transport the application sees; `None` once closing.
    fn transport(&self) -> Option<Transport> {
        match self {
            SessionState::Polling(_) | SessionState::Upgrading { .. } => Some(Transport::Polling),
            SessionState::WebSocket { .. } => Some(Transport::WebSocket),
            SessionState::Closing(_) => None,
        }
    }

    fn is_closing(&self) -> bool {
        matches!(self, SessionState::Closing(_))
    }

    /// The long-polling side, in the states that have one.
    fn polling_mut(&mut self) -> Option<&mut PollingState> {
        match self {
            SessionState::Polling(polling)
            | SessionState::Upgrading { polling, .. }
            | SessionState::Closing(polling) => Some(polling),
            SessionState::WebSocket { .. } => None,
        }
    }

    /// The probing WebSocket, while upgrading.
    fn probe(&self) -> Option<ConnId> {
        match self {
            SessionState::Upgrading { probe, .. } => Some(*probe),
            _ => None,
        }
    }

    /// Moves to `next`; returns the long-polling side left behind (empty
    /// when there was none).
    fn switch_to(&mut self, next: SessionState) -> PollingState {
        match std::mem::replace(self, next) {
            SessionState::Polling(polling)
            | SessionState::Upgrading { polling, .. }
            | SessionState::Closing(polling) => polling,
            SessionState::WebSocket { .. } => PollingState::default(),
        }
    }
}

/// What can happen to a session: the columns of the transition table.
enum Input {
    /// A long-polling GET for the session arrived on `conn`.
    Get { conn: ConnId, held: Box<Held> },
    /// The connection holding the session's GET went away.
    GetLost(ConnId),
    /// A packet arrived on the session's transport (a POST body or its
    /// WebSocket).
    Packet(Packet),
    /// The session's WebSocket `conn` closed or failed.
    TransportLost { conn: ConnId, reason: CloseReason },
    /// A WebSocket naming the session opened on this connection.
    Probe(ConnId),
    /// A packet on a probing WebSocket.
    ProbePacket(ConnId, Packet),
    /// A probing WebSocket failed or went away.
    ProbeLost(ConnId),
    /// A deadline of the session passed; it was due at the `Instant`.
    Timeout(SessionTimer, Instant),
    /// The application (or a shutdown) closes the session.
    Close(CloseReason),
    /// The server ends the session at once: a protocol violation or a slow
    /// consumer.
    Fail(CloseReason),
}

/// The Engine.IO server state machine.
///
/// Connections and sessions are kept in maps with FxHash rather than the
/// standard library's SipHash: it is several times cheaper per lookup, and
/// flooding a map with colliding keys (what SipHash's random keys defend
/// against) needs control over the inserted keys, while here every key is
/// generated by this server: connection ids count up, session ids are
/// random. Peers choose only keys that are looked up, which cannot slow
/// the map down.
pub struct Server {
    config: ServerConfig,
    limits: Limits,
    ws_config: WsConfig,
    rng: Box<dyn RngCore + Send>,
    sid_counter: u64,
    events: VecDeque<ServerEvent>,
    conns: FxHashMap<ConnId, Conn>,
    next_conn: u64,
    sessions: FxHashMap<Sid, Session>,
    ready: VecDeque<ConnId>,
    /// Every deadline of every connection and session.
    timers: TimerTable<TimerKey>,
    /// The session each [`SessionKey`] names, for timers that expire.
    session_keys: FxHashMap<SessionKey, Sid>,
    next_session_key: u64,
    /// HTTP connections whose pipelined requests may now be parsed.
    reprocess: VecDeque<ConnId>,
    /// Sessions that handed output out since [`Server::poll_drained`] last
    /// named them, each listed once; entries of connections and sessions
    /// that ended are compacted away (see `Server::list_drained`).
    drained: VecDeque<DrainMark>,
    /// The frame of the last short message sent on WebSocket, for the next
    /// receiver of the same broadcast.
    frame_cache: FrameCache,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("connections", &self.conns.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with these options; session ids come from `rng` (seed it
    /// from the OS: session ids must not be guessable).
    pub fn new(config: ServerConfig, rng: Box<dyn RngCore + Send>) -> Server {
        let limits = Limits {
            max_head_size: config.max_http_head,
            max_body_size: config.max_payload,
            ..Limits::default()
        };
        let ws_config = WsConfig {
            max_frame_size: config.max_payload,
            max_message_size: config.max_payload,
        };
        Server {
            config,
            limits,
            ws_config,
            rng,
            sid_counter: 0,
            events: VecDeque::new(),
            conns: FxHashMap::default(),
            next_conn: 0,
            sessions: FxHashMap::default(),
            ready: VecDeque::new(),
            timers: TimerTable::new(),
            session_keys: FxHashMap::default(),
            next_session_key: 0,
            reprocess: VecDeque::new(),
            drained: VecDeque::new(),
            frame_cache: FrameCache::default(),
        }
    }

    /// The options.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        let event = self.events.pop_front();
        if event.is_none() {
            shrink_if_empty(&mut self.events);
        }
        event
    }

    /// Work left at the end of every input: pipelined requests that a
    /// response unblocked.
    fn finish(&mut self, now: Instant) {
        while let Some(id) = self.reprocess.pop_front() {
            self.process_http(now, id);
        }
    }

    /// Every transition of a session, decided in one place: the table at
    /// the top of this module, row by row. Only [`Input::Close`] can be
    /// refused.
    fn step(&mut self, now: Instant, sid: &Sid, input: Input) -> Result<(), SendError> {
        use Input as I;
        use SessionState as S;
        let Some(session) = self.sessions.get_mut(sid) else {
            // The session ended while this was on its way.
            match input {
                I::Get { conn, held } => {
                    self.respond(now, conn, error_response(1, None, held.headers))
                }
                I::Probe(conn) | I::ProbePacket(conn, _) => self.ws_shutdown(now, conn),
                I::Close(_) => return Err(SendError::UnknownSession),
                _ => {}
            }
            return Ok(());
        };
        let key = session.key;
        match (&mut session.state, input) {
            // ----- long-polling requests -----
            (S::Closing(polling), I::Get { conn, held }) if polling.get.is_none() => {
                polling.get = Some(conn);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.held = Some(held);
                }
                // Its queue ends with the close packet: this GET takes it,
                // and the session is gone.
                self.flush_poll(now, sid);
                self.forget_session(sid);
            }
            (
                S::Polling(polling) | S::Upgrading { polling, .. } | S::Closing(polling),
                I::Get { conn, held },
            ) => {
                if polling.get.is_some() {
                    debug!(%sid, "overlapping poll");
                    self.respond(now, conn, bare_response(400, held.headers));
                    self.end_session(now, sid, CloseReason::TransportError);
                } else {
                    polling.get = Some(conn);
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.held = Some(held);
                    }
                    self.flush_poll(now, sid);
                }
            }
            (S::WebSocket { .. }, I::Get { conn, held }) => {
                self.respond(now, conn, error_response(3, None, held.headers));
            }
            (
                S::Polling(polling) | S::Upgrading { polling, .. } | S::Closing(polling),
                I::GetLost(conn),
            ) if polling.get == Some(conn) => {
                polling.get = None;
                debug!(%sid, "poll connection closed prematurely");
                self.end_session(now, sid, CloseReason::TransportError);
            }
            (_, I::GetLost(_)) => {}

            // ----- packets from the session's transport -----
            (S::Closing(_), I::Packet(_)) => {}
            (_, I::Packet(Packet::Message(message))) => {
                self.events.push_back(ServerEvent::Message {
                    sid: sid.clone(),
                    message,
                })
            }
            (_, I::Packet(Packet::Pong(_))) => {
                let next_ping = now + self.config.ping_interval + self.config.ping_interval_grace;
                self.arm_ping(key, next_ping);
            }
            (_, I::Packet(Packet::Ping(_))) => {
                debug!(%sid, "ping from the client: invalid heartbeat direction");
                self.end_session(now, sid, CloseReason::TransportError);
            }
            (_, I::Packet(Packet::Close)) => self.end_session(now, sid, CloseReason::ClientClose),
            (_, I::Packet(Packet::Open(_) | Packet::Upgrade | Packet::Noop)) => {}
            (S::WebSocket { conn }, I::TransportLost { conn: lost, reason }) if *conn == lost => {
                self.end_session(now, sid, reason);
            }
            (_, I::TransportLost { .. }) => {}

            // ----- the upgrade to WebSocket -----
            (S::Polling(polling), I::Probe(conn)) if self.config.allow_upgrades => {
                let polling = std::mem::take(polling);
                session.state = S::Upgrading {
                    polling,
                    probe: conn,
                    probed: false,
                };
                self.set_role(conn, WsRole::Probe(sid.clone()));
                self.timers.set(
                    TimerKey::Session(key, SessionTimer::UpgradeTimeout),
                    now + self.config.upgrade_timeout,
                );
            }
            (_, I::Probe(conn)) => {
                debug!(%sid, "websocket for a session that cannot upgrade now: closed");
                self.ws_shutdown(now, conn);
            }
            (
                S::Upgrading { probe, probed, .. },
                I::ProbePacket(conn, Packet::Ping(Some(data))),
            ) if *probe == conn && data == super::packet::PROBE => {
                *probed = true;
                self.ws_send(conn, &Packet::pong_probe(), false);
                // Releases the pending GET so the client can pause polling.
                self.flush_poll(now, sid);
            }
            (S::Upgrading { probe, .. }, I::ProbePacket(conn, Packet::Upgrade))
                if *probe == conn =>
            {
                let polling = session.state.switch_to(S::WebSocket { conn });
                let base64 = session.base64;
                self.complete_upgrade(now, sid, key, conn, polling, base64);
            }
            (S::Upgrading { polling, probe, .. }, I::ProbePacket(conn, _) | I::ProbeLost(conn))
                if *probe == conn =>
            {
                debug!(%sid, "unexpected packet or failure during upgrade");
                let (polling, probe) = (std::mem::take(polling), *probe);
                session.state = S::Polling(polling);
                self.upgrade_abandoned(now, sid, key, probe);
            }
            (_, I::ProbePacket(conn, _) | I::ProbeLost(conn)) => self.ws_shutdown(now, conn),

            // ----- deadlines -----
            (S::Closing(_), I::Timeout(SessionTimer::CloseDelivery, _)) => {
                debug!(%sid, "close packet never fetched");
                self.end_session(now, sid, CloseReason::ForcedClose);
            }
            (S::Closing(_), I::Timeout(..)) => {}
            (_, I::Timeout(SessionTimer::Ping, due)) => {
                // Counted from when the ping was due, not from when a late
                // timer fired: peers expect the session dead exactly
                // `ping_interval + ping_timeout` after the last pong.
                self.timers.set(
                    TimerKey::Session(key, SessionTimer::PongTimeout),
                    due + self.config.ping_timeout,
                );
                tracing::trace!(%sid, "ping");
                self.send_packet(now, sid, Packet::Ping(None));
            }
            (_, I::Timeout(SessionTimer::PongTimeout, _)) => {
                debug!(%sid, "ping timeout");
                self.end_session(now, sid, CloseReason::PingTimeout);
            }
            (S::Upgrading { polling, probe, .. }, I::Timeout(SessionTimer::UpgradeTimeout, _)) => {
                let (polling, probe) = (std::mem::take(polling), *probe);
                session.state = S::Polling(polling);
                self.upgrade_abandoned(now, sid, key, probe);
            }
            (_, I::Timeout(SessionTimer::UpgradeTimeout | SessionTimer::CloseDelivery, _)) => {}

            // ----- closing -----
            (S::Closing(_), I::Close(_)) => return Err(SendError::UnknownSession),
            (S::WebSocket { conn }, I::Close(reason)) => {
                let conn = *conn;
                let base64 = session.base64;
                debug!(%sid, reason = reason.as_str(), "closing session");
                self.events.push_back(ServerEvent::Closed {
                    sid: sid.clone(),
                    reason,
                });
                self.forget_session(sid);
                self.ws_send(conn, &Packet::Close, base64);
                self.ws_shutdown(now, conn);
            }
            (S::Polling(polling) | S::Upgrading { polling, .. }, I::Close(reason)) => {
                debug!(%sid, reason = reason.as_str(), "closing session");
                let mut polling = std::mem::take(polling);
                let probe = session.state.probe();
                polling.queue.push_back(Packet::Close);
                session.state = S::Closing(polling);
                self.events.push_back(ServerEvent::Closed {
                    sid: sid.clone(),
                    reason,
                });
                self.stop_session_timers(key);
                self.timers.set(
                    TimerKey::Session(key, SessionTimer::CloseDelivery),
                    now + timers::POLLING_CLOSE_TIMEOUT,
                );
                if let Some(probe) = probe {
                    self.upgrade_abandoned(now, sid, key, probe);
                }
                // A GET already held takes the close packet at once: gone.
                if self.flush_poll(now, sid) {
                    self.forget_session(sid);
                }
            }
            (_, I::Fail(reason)) => self.end_session(now, sid, reason),
        }
        Ok(())
    }

    /// Panics if internal bookkeeping is inconsistent (for tests and the
    /// fuzzer).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn check_invariants(&self) {
        use SessionState as S;
        let armed = |key: SessionKey, timer| self.timers.is_set(&TimerKey::Session(key, timer));
        for (sid, session) in &self.sessions {
            let key = session.key;
            assert_eq!(self.session_keys.get(&key), Some(sid), "session key");
            let held_get = |get: Option<ConnId>| {
                if let Some(id) = get {
                    let held = self.conns.get(&id).and_then(|c| c.held.as_deref());
                    assert!(held.is_some_and(|h| h.sid == *sid), "GET without held");
                }
            };
            match &session.state {
                S::Polling(polling) => held_get(polling.get),
                S::Upgrading { polling, probe, .. } => {
                    held_get(polling.get);
                    assert!(
                        matches!(
                            self.conns.get(probe).map(|c| &c.kind),
                            Some(ConnKind::Ws { role: WsRole::Probe(s), .. }) if s == sid
                        ),
                        "probe without its connection"
                    );
                    assert!(armed(key, SessionTimer::UpgradeTimeout));
                }
                S::WebSocket { conn } => {
                    assert!(
                        matches!(
                            self.conns.get(conn).map(|c| &c.kind),
                            Some(ConnKind::Ws { role: WsRole::Session(s), .. }) if s == sid
                        ),
                        "websocket session without its connection"
                    );
                }
                S::Closing(polling) => {
                    held_get(polling.get);
                    assert!(armed(key, SessionTimer::CloseDelivery));
                }
            }
            if !session.state.is_closing() {
                assert!(
                    armed(key, SessionTimer::Ping) != armed(key, SessionTimer::PongTimeout),
                    "heartbeat state"
                );
            }
            if !matches!(session.state, S::Upgrading { .. }) {
                assert!(!armed(key, SessionTimer::UpgradeTimeout));
            }
        }
        assert_eq!(self.session_keys.len(), self.sessions.len(), "session keys");
        // Exact: every timer belongs to a live connection or session.
        for key in self.timers.keys() {
            match key {
                TimerKey::Conn(id, _) => assert!(self.conns.contains_key(id), "stale timer"),
                TimerKey::Session(key, _) => {
                    let sid = self.session_keys.get(key);
                    assert!(
                        sid.is_some_and(|sid| self.sessions.contains_key(sid)),
                        "stale timer"
                    )
                }
            }
        }
        for conn in self.conns.values() {
            assert_eq!(conn.out_len, conn.out.iter().map(Bytes::len).sum::<usize>());
        }
        let live = self.conns.len() + self.sessions.len();
        let listed = self.conns.values().filter(|c| c.drain_listed).count()
            + self.sessions.values().filter(|s| s.drain_listed).count();
        assert!(listed <= self.drained.len(), "drain flag without its entry");
        assert!(
            self.drained.len() <= 2 * live + 65,
            "drained list unbounded"
        );
    }
}
