//! Socket.IO over Engine.IO: the server and client endpoints a driver runs.
//!
//! [`ServerEndpoint`] joins an [`engine::Server`] (HTTP, WebSocket,
//! sessions, heartbeats) and a [`socket::Server`] (namespaces, events, acks,
//! rooms); [`ClientEndpoint`] joins an [`engine::Client`] and a
//! [`socket::Client`] (reconnection included, with a fresh Engine.IO session
//! per attempt). Both move messages between their two layers after every
//! input, so a driver sees one state machine.
//!
//! # Drain order
//! After every `handle_*` input, and after application calls made through
//! [`ServerEndpoint::socket`] / [`ClientEndpoint::socket`] followed by
//! `pump(now)`:
//! 1. `poll_event` until `None` (Socket.IO application events);
//! 2. the transmit side: `poll_ready` + `poll_transmit` (server) or
//!    `poll_action` (client) until `None`, and on a server that is one node
//!    of a cluster, `poll_bus` until `None`;
//! 3. `poll_timeout` to re-arm the one timer.

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::RngCore;
use rustc_hash::FxHashMap;

use crate::engine::{self, ConnId};
use crate::parser::Parser;
use crate::socket::{self, DisconnectReason};
use crate::Str;

/// How an Engine.IO session's end reads at the Socket.IO level.
fn server_reason(reason: engine::CloseReason) -> DisconnectReason {
    match reason {
        engine::CloseReason::TransportClose | engine::CloseReason::ClientClose => {
            DisconnectReason::TransportClose
        }
        engine::CloseReason::TransportError => DisconnectReason::TransportError,
        engine::CloseReason::PingTimeout => DisconnectReason::PingTimeout,
        engine::CloseReason::ParseError => DisconnectReason::ParseError,
        engine::CloseReason::ForcedClose => DisconnectReason::ForcedServerClose,
        engine::CloseReason::ServerShutdown => DisconnectReason::ServerShuttingDown,
        engine::CloseReason::SlowConsumer => DisconnectReason::SlowConsumer,
    }
}

/// A Socket.IO server: Engine.IO sessions below, namespaces above.
pub struct ServerEndpoint<P: Parser> {
    engine: engine::Server,
    socket: socket::Server<P>,
    /// The request that opened each Engine.IO session, for the
    /// application's connect handler. Keyed by session ids, which the
    /// engine generates: FxHash is safe (see [`engine::Server`]).
    handshakes: FxHashMap<Str, engine::HandshakeInfo>,
}

impl<P: Parser> ServerEndpoint<P> {
    /// A server with these options. Both layers draw their randomness
    /// (session ids, socket ids, recovery ids) from their own generator.
    pub fn new(
        engine_config: engine::ServerConfig,
        socket_config: socket::ServerConfig,
        parser: P,
        engine_rng: Box<dyn RngCore + Send>,
        socket_rng: Box<dyn RngCore + Send>,
    ) -> Self {
        ServerEndpoint {
            engine: engine::Server::new(engine_config, engine_rng),
            socket: socket::Server::new(socket_config, parser, socket_rng),
            handshakes: FxHashMap::default(),
        }
    }

    /// The Engine.IO layer (connections, sessions, transports).
    pub fn engine(&self) -> &engine::Server {
        &self.engine
    }

    /// The Socket.IO layer, for application calls (accept, emit, join,
    /// broadcast, ...). Call [`ServerEndpoint::pump`] afterwards.
    pub fn socket(&mut self) -> &mut socket::Server<P> {
        &mut self.socket
    }

    /// The request that opened an Engine.IO session.
    pub fn handshake(&self, eio: &str) -> Option<&engine::HandshakeInfo> {
        self.handshakes.get(eio)
    }

    /// A connection was accepted.
    pub fn handle_connection(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        self.engine.handle_connection(now, remote)
    }

    /// Bytes read from a connection. Deadlines of either layer already due
    /// at `now` are handled first (see [`engine::Server::handle_read`]).
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if self.poll_timeout().is_some_and(|at| at <= now) {
            self.handle_timeout(now);
        }
        self.engine.handle_read(now, conn, data);
        self.pump(now);
    }

    /// Whether reading more from `conn` is useful now (ask before each
    /// read): false while the engine refuses
    /// ([`engine::Server::wants_read`]: its output over
    /// `max_buffered_output`, a response pending, closing) and while the
    /// connection's session has more than the Socket.IO layer's
    /// `max_buffered_bytes` unwritten (acks, echoes, broadcasts not yet
    /// taken). A paused connection is read again once its own output
    /// drains (ask again after each `poll_transmit` round and `pump`); its
    /// deadlines (ping timeout, the slow-consumer grace) run as usual.
    /// O(1).
    pub fn wants_read(&self, conn: ConnId) -> bool {
        self.engine.wants_read(conn)
            && self.engine.session_of(conn).map_or(true, |eio| {
                self.socket.session_buffered(eio).map_or(true, |buffered| {
                    buffered <= self.socket.config().max_buffered_bytes
                })
            })
    }

    /// A connection ended.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        self.engine.handle_eof(now, conn);
        self.pump(now);
    }

    /// Shut the server down: every Engine.IO session closes (a close packet
    /// where the transport allows) and every socket disconnects with
    /// `server shutting down`. Connections still open get their last
    /// bytes through `poll_transmit` as usual.
    pub fn shutdown(&mut self, now: Instant) {
        self.engine.shutdown(now);
        self.pump(now);
    }

    /// The deadline from [`ServerEndpoint::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
        self.socket.handle_timeout(now);
        self.pump(now);
    }

    /// The next deadline of either layer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.engine.poll_timeout(), self.socket.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next Socket.IO application event.
    pub fn poll_event(&mut self) -> Option<socket::ServerEvent> {
        self.socket.poll_event()
    }

    /// Something from the cluster's bus backend (see
    /// [`socket::Server::enable_cluster`]). Deadlines already due are
    /// handled first, as for reads.
    pub fn handle_bus(&mut self, now: Instant, input: crate::cluster::BusInput) {
        if self.poll_timeout().is_some_and(|at| at <= now) {
            self.handle_timeout(now);
        }
        self.socket.handle_bus(now, input);
        self.pump(now);
    }

    /// The next command for the cluster's bus backend; drained with the
    /// transmit side.
    pub fn poll_bus(&mut self) -> Option<crate::cluster::BusCommand> {
        self.socket.poll_bus()
    }

    /// A connection that has something to transmit.
    pub fn poll_ready(&mut self) -> Option<ConnId> {
        self.engine.poll_ready()
    }

    /// The next thing to do on a connection. Written bytes are reported to
    /// the Socket.IO layer's backpressure accounting on the next
    /// [`ServerEndpoint::pump`].
    pub fn poll_transmit(&mut self, conn: ConnId) -> Option<engine::Transmit> {
        self.engine.poll_transmit(conn)
    }

    /// Move messages between the layers until neither has more; report
    /// written bytes. Called by every `handle_*`; call it after application
    /// calls on [`ServerEndpoint::socket`].
    pub fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(event) = self.engine.poll_event() {
                moved = true;
                match event {
                    engine::ServerEvent::Opened { sid, info } => {
                        self.handshakes.insert(sid.clone(), *info);
                        self.socket.handle_engine_open(now, sid);
                    }
                    engine::ServerEvent::Message { sid, message } => {
                        self.socket.handle_engine_message(now, &sid, message);
                    }
                    engine::ServerEvent::Upgraded { .. } => {}
                    engine::ServerEvent::Closed { sid, reason } => {
                        self.handshakes.remove(&*sid);
                        self.socket
                            .handle_engine_closed(now, &sid, server_reason(reason));
                    }
                }
            }
            while let Some(command) = self.socket.poll_command() {
                moved = true;
                match command {
                    socket::EngineCommand::Send { eio, message } => {
                        match self.engine.send(now, &eio, message) {
                            Ok(()) => {}
                            // The session ended in the meantime: its Closed
                            // event reaches the socket layer in this loop.
                            Err(engine::SendError::UnknownSession) => {}
                            Err(engine::SendError::TooLarge) => {
                                tracing::warn!(%eio, "message over max_payload: closing the session");
                                let _ = self.engine.close(now, &eio);
                            }
                        }
                    }
                    socket::EngineCommand::Close { eio } => {
                        let _ = self.engine.close(now, &eio);
                    }
                }
            }
            // Backpressure: what the engine no longer holds was written. It
            // names only the sessions whose output was handed out since the
            // last pump, so this costs O(1) per delivery.
            while let Some((eio, bytes)) = self.engine.poll_drained() {
                moved = true;
                self.socket.handle_engine_drained(now, &eio, bytes);
            }
            if !moved {
                break;
            }
        }
    }
}

/// How an Engine.IO client session's end reads at the Socket.IO level.
fn client_reason(reason: &engine::ClientCloseReason) -> DisconnectReason {
    match reason {
        engine::ClientCloseReason::Closed => DisconnectReason::ClientDisconnect,
        engine::ClientCloseReason::TransportClose => DisconnectReason::TransportClose,
        engine::ClientCloseReason::TransportError(_)
        | engine::ClientCloseReason::ConnectTimeout => DisconnectReason::TransportError,
        engine::ClientCloseReason::PingTimeout => DisconnectReason::PingTimeout,
    }
}

/// Makes a generator for each new Engine.IO session (cache busters,
/// WebSocket mask keys).
pub type RngFactory = Box<dyn FnMut() -> Box<dyn RngCore + Send> + Send>;

/// Called before each Engine.IO session a [`ClientEndpoint`] opens (the
/// first and every reconnection attempt): the place to refresh request
/// headers, the query or namespaces' auth ([`socket::Client::set_auth`]).
/// It runs inside the endpoint's call, so it must be quick.
pub type SessionHook<P> = Box<dyn FnMut(&mut engine::ClientConfig, &mut socket::Client<P>) + Send>;

/// What the driver must do for a [`ClientEndpoint`].
pub type ClientAction = engine::ClientAction;

/// A Socket.IO client: namespaces and reconnection above, one Engine.IO
/// session at a time below.
pub struct ClientEndpoint<P: Parser> {
    engine_config: engine::ClientConfig,
    engine: Option<engine::Client>,
    socket: socket::Client<P>,
    rngs: RngFactory,
    /// Connection ids are numbered per Engine.IO session; the driver sees
    /// ids unique across sessions.
    generation: u64,
    to_driver: FxHashMap<(u64, ConnId), ConnId>,
    from_driver: FxHashMap<ConnId, (u64, ConnId)>,
    next_conn: u64,
    actions: std::collections::VecDeque<ClientAction>,
    session_hook: Option<SessionHook<P>>,
}

impl<P: Parser> ClientEndpoint<P> {
    /// A client; nothing happens until the application connects a namespace
    /// through [`ClientEndpoint::socket`] and calls
    /// [`ClientEndpoint::pump`].
    pub fn new(
        engine_config: engine::ClientConfig,
        socket_config: socket::ClientConfig,
        parser: P,
        mut rngs: RngFactory,
    ) -> Self {
        let socket_rng = rngs();
        ClientEndpoint {
            engine_config,
            engine: None,
            socket: socket::Client::new(socket_config, parser, socket_rng),
            rngs,
            generation: 0,
            to_driver: FxHashMap::default(),
            from_driver: FxHashMap::default(),
            next_conn: 0,
            actions: std::collections::VecDeque::new(),
            session_hook: None,
        }
    }

    /// Call `hook` before each Engine.IO session opens.
    pub fn set_session_hook(&mut self, hook: SessionHook<P>) {
        self.session_hook = Some(hook);
    }

    /// The Socket.IO layer, for application calls (connect, emit, ack,
    /// disconnect). Call [`ClientEndpoint::pump`] afterwards.
    pub fn socket(&mut self) -> &mut socket::Client<P> {
        &mut self.socket
    }

    /// The current Engine.IO session, if one is open or opening, or the
    /// last one while it finishes closing ([`engine::Client::is_closed`]).
    pub fn engine(&self) -> Option<&engine::Client> {
        self.engine.as_ref()
    }

    fn local(&self, conn: ConnId) -> Option<ConnId> {
        match self.from_driver.get(&conn) {
            Some(&(generation, local)) if generation == self.generation => Some(local),
            _ => None,
        }
    }

    /// A connection asked for is established.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        if let (Some(local), Some(engine)) = (self.local(conn), self.engine.as_mut()) {
            engine.handle_connected(now, local);
        }
        self.pump(now);
    }

    /// Bytes read from a connection.
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if let (Some(local), Some(engine)) = (self.local(conn), self.engine.as_mut()) {
            engine.handle_read(now, local, data);
        }
        self.pump(now);
    }

    /// A connection ended or could not be established.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        if let (Some(local), Some(engine)) = (self.local(conn), self.engine.as_mut()) {
            engine.handle_eof(now, local);
        }
        if let Some(key) = self.from_driver.remove(&conn) {
            self.to_driver.remove(&key);
        }
        self.pump(now);
    }

    /// The deadline from [`ClientEndpoint::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(engine) = self.engine.as_mut() {
            engine.handle_timeout(now);
        }
        self.socket.handle_timeout(now);
        self.pump(now);
    }

    /// The next deadline of either layer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let engine = self.engine.as_ref().and_then(|e| e.poll_timeout());
        match (engine, self.socket.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next Socket.IO application event.
    pub fn poll_event(&mut self) -> Option<socket::ClientEvent> {
        self.socket.poll_event()
    }

    /// The next thing the driver must do (connection ids are unique across
    /// reconnections).
    pub fn poll_action(&mut self) -> Option<ClientAction> {
        self.actions.pop_front()
    }

    fn driver_id(&mut self, local: ConnId) -> ConnId {
        let key = (self.generation, local);
        if let Some(&id) = self.to_driver.get(&key) {
            return id;
        }
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.to_driver.insert(key, id);
        self.from_driver.insert(id, key);
        id
    }

    /// Move messages between the layers until neither has more. Called by
    /// every `handle_*`; call it after application calls on
    /// [`ClientEndpoint::socket`].
    pub fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(output) = self.socket.poll_output() {
                moved = true;
                match output {
                    socket::ClientOutput::OpenEngine => {
                        self.close_engine(now);
                        self.generation += 1;
                        if let Some(hook) = self.session_hook.as_mut() {
                            hook(&mut self.engine_config, &mut self.socket);
                        }
                        let rng = (self.rngs)();
                        self.engine =
                            Some(engine::Client::new(self.engine_config.clone(), rng, now));
                    }
                    socket::ClientOutput::Send(message) => {
                        if let Some(engine) = self.engine.as_mut().filter(|e| !e.is_closed()) {
                            if let Err(e) = engine.send(now, message) {
                                tracing::debug!(error = %e, "engine refused a message: closing");
                                engine.close(now);
                            }
                        }
                    }
                    socket::ClientOutput::CloseEngine => {
                        if let Some(engine) = self.engine.as_mut().filter(|e| !e.is_closed()) {
                            engine.close(now);
                        }
                    }
                }
            }
            let mut closed = None;
            if let Some(engine) = self.engine.as_mut() {
                while let Some(event) = engine.poll_event() {
                    moved = true;
                    match event {
                        engine::ClientEvent::Opened(handshake) => {
                            self.socket.handle_engine_opened(now, &handshake)
                        }
                        engine::ClientEvent::Message(message) => {
                            self.socket.handle_message(now, message)
                        }
                        engine::ClientEvent::Upgraded => {}
                        engine::ClientEvent::Closed(reason) => {
                            closed = Some(client_reason(&reason));
                            break;
                        }
                    }
                }
            }
            self.drain_engine_actions();
            if let Some(reason) = closed {
                moved = true;
                // The ended session stays until the next `OpenEngine`: it
                // may still have a close packet to flush and connections to
                // close (over polling it waits for the server to take the
                // close POST). Dropping it here left both undone.
                self.socket.handle_engine_closed(now, reason);
            }
            if !moved {
                break;
            }
        }
    }

    fn drain_engine_actions(&mut self) {
        let Some(mut engine) = self.engine.take() else {
            return;
        };
        while let Some(action) = engine.poll_action() {
            let action = match action {
                engine::ClientAction::Connect(local) => {
                    engine::ClientAction::Connect(self.driver_id(local))
                }
                engine::ClientAction::Data(local, bytes) => {
                    engine::ClientAction::Data(self.driver_id(local), bytes)
                }
                engine::ClientAction::Close(local) => {
                    engine::ClientAction::Close(self.driver_id(local))
                }
            };
            self.actions.push_back(action);
        }
        self.engine = Some(engine);
    }

    /// Drop the current Engine.IO session, closing its connections.
    fn close_engine(&mut self, now: Instant) {
        if let Some(engine) = self.engine.as_mut() {
            if !engine.is_closed() {
                engine.close(now);
            }
        }
        self.drain_engine_actions();
        let generation = self.generation;
        let stale: Vec<ConnId> = self
            .to_driver
            .iter()
            .filter(|((g, _), _)| *g == generation)
            .map(|(_, &id)| id)
            .collect();
        for id in stale {
            if !self
                .actions
                .iter()
                .any(|a| *a == engine::ClientAction::Close(id))
            {
                self.actions.push_back(engine::ClientAction::Close(id));
            }
        }
        self.engine = None;
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_e2e;
