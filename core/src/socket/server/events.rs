//! What the server reports and what the application gets back: events,
//! commands for the Engine.IO layer, errors, broadcast targets.

#[cfg(doc)]
use super::Server;
use std::fmt;

use super::super::adapter::RoomSelector;
use super::super::reason::DisconnectReason;
use super::cluster::{ClusterReply, ClusterRequestId, ServerAckId};
use crate::engine::Message;
use crate::parser::{Args, EncodeError};
use crate::value::Value;
use crate::Str;

/// What the Engine.IO layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineCommand {
    /// Send a message on a session.
    Send {
        /// The Engine.IO session id.
        eio: Str,
        /// The message.
        message: Message,
    },
    /// Close a session.
    Close {
        /// The Engine.IO session id.
        eio: Str,
    },
}

/// The answer to an acknowledgement the server asked one socket for.
#[derive(Debug, Clone)]
pub enum AckOutcome {
    /// The client answered.
    Answered(Args),
    /// The deadline passed; a late answer is ignored.
    TimedOut,
    /// The socket disconnected first.
    Disconnected,
}

/// How a broadcast with acknowledgements ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastAckOutcome {
    /// Every receiver answered or disconnected.
    Complete,
    /// The deadline passed; the responses are those that arrived.
    TimedOut,
}

/// Identifies one broadcast with acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BroadcastAckId(pub u64);

/// What [`Server::broadcast_with_ack`] started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastAckStarted {
    /// Names the [`ServerEvent::BroadcastAck`] that will report the result.
    pub id: BroadcastAckId,
    /// How many sockets were sent the packet.
    pub receivers: usize,
    /// Selected sockets that were not sent it: at their pending-ack bound,
    /// or unable to take a volatile packet.
    pub skipped: Vec<Str>,
}

/// What happened, for the application.
#[derive(Debug)]
pub enum ServerEvent {
    /// A client asked to join a namespace. Answer with [`Server::accept`]
    /// or [`Server::reject`] (with `always_connect`, the socket is already
    /// connected and a rejection disconnects it).
    Connect {
        /// The new socket's id (what the client will be told on accept).
        socket: Str,
        /// The namespace.
        nsp: Str,
        /// The Engine.IO session it came on.
        eio: Str,
        /// The client's auth object.
        auth: Option<Value>,
        /// Whether connection state recovery restored an earlier socket:
        /// same id, rooms and data; the missed packets are sent before the
        /// CONNECT reply.
        recovered: bool,
    },
    /// The client emitted an event.
    Event {
        /// The socket.
        socket: Str,
        /// Its namespace.
        nsp: Str,
        /// The event name.
        name: Str,
        /// The arguments.
        args: Args,
        /// When set, the client awaits [`Server::ack`] with this id.
        ack: Option<u64>,
    },
    /// The result of [`Server::emit_with_ack`].
    Ack {
        /// The socket.
        socket: Str,
        /// Its namespace.
        nsp: Str,
        /// The id [`Server::emit_with_ack`] returned.
        id: u64,
        /// What became of it.
        outcome: AckOutcome,
    },
    /// The result of [`Server::broadcast_with_ack`].
    BroadcastAck {
        /// The id [`Server::broadcast_with_ack`] returned.
        id: BroadcastAckId,
        /// Whether every receiver was accounted for.
        outcome: BroadcastAckOutcome,
        /// Socket id and answer, in arrival order.
        responses: Vec<(Str, Args)>,
    },
    /// The socket's Engine.IO session went back under its buffer bound:
    /// [`Server::can_send`] is true again.
    Writable {
        /// The socket.
        socket: Str,
    },
    /// Another server emitted an event for the application (the
    /// reference's `serverSideEmit`); answer with
    /// [`super::Server::server_side_ack`] when `ack` is set.
    ServerSideEmit {
        /// The namespace it was emitted on.
        nsp: Str,
        /// The event name.
        event: Str,
        /// The arguments.
        args: Args,
        /// Set when the other server awaits an answer.
        ack: Option<ServerAckId>,
    },
    /// A request to the other nodes finished.
    ClusterReply {
        /// The id the request returned.
        id: ClusterRequestId,
        /// Whether every node answered before the deadline.
        complete: bool,
        /// What was collected.
        reply: ClusterReply,
    },
    /// The socket left; nothing names it afterwards.
    Disconnect {
        /// The socket.
        socket: Str,
        /// Its namespace.
        nsp: Str,
        /// Why.
        reason: DisconnectReason,
    },
}

/// The application asked for something impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerError {
    /// No socket has this id.
    UnknownSocket,
    /// No Engine.IO session has this id.
    UnknownSession,
    /// The socket's CONNECT was already answered.
    AlreadyAnswered,
    /// The socket is still waiting for [`Server::accept`].
    NotConnected,
    /// The client awaits no acknowledgement with this id (never asked,
    /// already answered, or forgotten beyond the bound).
    UnknownAck,
    /// The event name is reserved.
    ReservedEvent,
    /// A namespace must start with `/`.
    BadNamespace,
    /// The socket already has this many acknowledgements pending.
    TooManyPendingAcks {
        /// The configured bound.
        limit: usize,
    },
    /// Too many cluster requests are waiting already.
    TooManyRequests {
        /// The configured bound.
        limit: usize,
    },
    /// The payload could not be encoded.
    Encode(EncodeError),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ServerError::UnknownSocket => f.write_str("unknown socket"),
            ServerError::UnknownSession => f.write_str("unknown engine.io session"),
            ServerError::AlreadyAnswered => f.write_str("connection already answered"),
            ServerError::NotConnected => f.write_str("socket not connected yet"),
            ServerError::UnknownAck => f.write_str("no acknowledgement pending with this id"),
            ServerError::ReservedEvent => f.write_str("reserved event name"),
            ServerError::BadNamespace => f.write_str("namespace must start with '/'"),
            ServerError::TooManyPendingAcks { limit } => {
                write!(f, "more than {limit} acknowledgements pending")
            }
            ServerError::TooManyRequests { limit } => {
                write!(f, "more than {limit} cluster requests pending")
            }
            ServerError::Encode(e) => write!(f, "encoding failed: {e}"),
        }
    }
}
impl std::error::Error for ServerError {}

impl From<EncodeError> for ServerError {
    fn from(e: EncodeError) -> Self {
        ServerError::Encode(e)
    }
}

/// Who a broadcast goes to.
#[derive(Debug, Clone)]
pub struct Broadcast {
    /// The namespace.
    pub nsp: Str,
    /// Target and excluded rooms (socket ids are rooms too).
    pub selector: RoomSelector,
    /// Skip sockets that cannot take the packet now instead of queueing.
    pub volatile: bool,
    /// This node's sockets only, even in a cluster.
    pub local: bool,
}

impl Broadcast {
    /// Every socket of `nsp`.
    pub fn namespace(nsp: impl Into<Str>) -> Broadcast {
        Broadcast {
            nsp: nsp.into(),
            selector: RoomSelector::default(),
            volatile: false,
            local: false,
        }
    }

    /// Only members of `room` (several calls: members of any).
    pub fn to(mut self, room: impl Into<Str>) -> Broadcast {
        self.selector.rooms.push(room.into());
        self
    }

    /// Leave out members of `room`, or the socket with this id.
    pub fn except(mut self, room: impl Into<Str>) -> Broadcast {
        self.selector.except.push(room.into());
        self
    }

    /// Volatile: skipped for sockets that cannot take it now.
    pub fn volatile(mut self) -> Broadcast {
        self.volatile = true;
        self
    }

    /// This node's sockets only (python-socketio's `ignore_queue`, the
    /// reference's `local` flag).
    pub fn local(mut self) -> Broadcast {
        self.local = true;
        self
    }
}
