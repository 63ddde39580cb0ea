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
//!    writable: bytes wait in the core, which bounds them);
//! 3. [`Server::poll_timeout`]: re-arm the one timer.
#![allow(missing_docs, dead_code, unused_variables)] // skeleton: being implemented

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand_core::RngCore;

use super::config::{ServerConfig, Transport};
use super::packet::Message;
use crate::Str;

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
    Opened { sid: Sid, info: Box<HandshakeInfo> },
    /// A message arrived on a session.
    Message { sid: Sid, message: Message },
    /// A session moved to WebSocket.
    Upgraded { sid: Sid },
    /// A session ended; no further event names it.
    Closed { sid: Sid, reason: CloseReason },
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

/// The Engine.IO server state machine.
pub struct Server {
    config: ServerConfig,
    rng: Box<dyn RngCore + Send>,
    events: VecDeque<ServerEvent>,
}

impl Server {
    /// A server with these options; session ids come from `rng` (seed it
    /// from the OS: session ids must not be guessable).
    pub fn new(config: ServerConfig, rng: Box<dyn RngCore + Send>) -> Server {
        Server {
            config,
            rng,
            events: VecDeque::new(),
        }
    }

    /// The options.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// A new connection was accepted.
    pub fn handle_connection(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        todo!()
    }

    /// Bytes read from a connection.
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        todo!()
    }

    /// The peer closed the connection or it failed; the driver drops it.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        todo!()
    }

    /// Time passed: the deadline from [`Server::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        todo!()
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// A connection that has something to transmit.
    pub fn poll_ready(&mut self) -> Option<ConnId> {
        todo!()
    }

    /// The next thing to do on `conn`.
    pub fn poll_transmit(&mut self, conn: ConnId) -> Option<Transmit> {
        todo!()
    }

    /// Queue a message on a session.
    pub fn send(&mut self, now: Instant, sid: &str, message: Message) -> Result<(), SendError> {
        todo!()
    }

    /// Close a session from the application's side (`forced close`).
    pub fn close(&mut self, now: Instant, sid: &str) -> Result<(), SendError> {
        todo!()
    }

    /// The transport a session currently uses.
    pub fn transport(&self, sid: &str) -> Option<Transport> {
        todo!()
    }
}
