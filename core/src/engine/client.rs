//! The Engine.IO v4 client endpoint: one session with one server, over
//! long-polling, WebSocket, or polling upgraded to WebSocket.
//!
//! # Driving it
//! The client asks the driver for connections: [`Client::poll_action`]
//! yields [`ClientAction::Connect`] (open a TCP/TLS connection to the
//! server and call [`Client::handle_connected`] or, on failure,
//! [`Client::handle_eof`]), [`ClientAction::Data`] (write these bytes) and
//! [`ClientAction::Close`] (close that connection). Long-polling uses two
//! connections (one GET outstanding, POSTs on the other), an upgrade a
//! third. Bytes read go to [`Client::handle_read`].
//!
//! After each input or application call, drain in this order:
//! [`Client::poll_event`] until `None`, [`Client::poll_action`] until
//! `None`, then [`Client::poll_timeout`].
#![allow(missing_docs, dead_code, unused_variables)] // skeleton: being implemented

use std::time::Instant;

use bytes::Bytes;
use rand_core::RngCore;

use super::config::{ClientConfig, Transport};
use super::packet::{Handshake, Message};
use super::server::ConnId;

/// Why the client's session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCloseReason {
    /// The application closed it (`io client disconnect` at the Socket.IO
    /// level).
    Closed,
    /// The server closed it (close packet) or the transport ended
    /// (`transport close`).
    TransportClose,
    /// An HTTP, WebSocket or protocol error (`transport error`).
    TransportError(String),
    /// No ping within `pingInterval + pingTimeout` (`ping timeout`).
    PingTimeout,
    /// The handshake did not complete within the connect timeout.
    ConnectTimeout,
}

/// What happened, for the application.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// The handshake completed.
    Opened(Box<Handshake>),
    /// A message from the server.
    Message(Message),
    /// The session moved to WebSocket.
    Upgraded,
    /// The session ended; nothing follows.
    Closed(ClientCloseReason),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Open a new connection to the server, known as this id from now on.
    Connect(ConnId),
    /// Write bytes on a connection.
    Data(ConnId, Bytes),
    /// Close a connection after writing what came before.
    Close(ConnId),
}

/// The application asked for something impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSendError {
    /// The session is not open (yet, or any more).
    NotOpen,
    /// The message is larger than the server's `maxPayload`.
    TooLarge,
}

impl std::fmt::Display for ClientSendError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ClientSendError::NotOpen => f.write_str("session not open"),
            ClientSendError::TooLarge => f.write_str("message larger than the server's maxPayload"),
        }
    }
}
impl std::error::Error for ClientSendError {}

/// The Engine.IO client state machine.
pub struct Client {
    config: ClientConfig,
    rng: Box<dyn RngCore + Send>,
}

impl Client {
    /// Start a session: the first action asks for a connection. WebSocket
    /// mask keys come from `rng`.
    pub fn new(config: ClientConfig, rng: Box<dyn RngCore + Send>, now: Instant) -> Client {
        todo!()
    }

    /// A connection asked for with [`ClientAction::Connect`] is established.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        todo!()
    }

    /// Bytes read from a connection.
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        todo!()
    }

    /// A connection ended or could not be established.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        todo!()
    }

    /// The deadline from [`Client::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        todo!()
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        todo!()
    }

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<ClientAction> {
        todo!()
    }

    /// Send a message (queued until the session is open).
    pub fn send(&mut self, now: Instant, message: Message) -> Result<(), ClientSendError> {
        todo!()
    }

    /// Close the session (a close packet, then the connections).
    pub fn close(&mut self, now: Instant) {
        todo!()
    }

    /// The transport in use.
    pub fn transport(&self) -> Option<Transport> {
        todo!()
    }

    /// The session id once open.
    pub fn sid(&self) -> Option<&str> {
        todo!()
    }
}
