//! What nodes ask of each other, whatever the format: each format maps its
//! messages to and from these.

use crate::socket::adapter::RoomSelector;
use crate::value::Value;
use crate::Str;

/// Where the answers to a remote node's request go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyTo {
    /// python-socketio: a `callback` message to the asking host, naming
    /// the socket and the asker's callback id.
    Python {
        host_id: Str,
        sid: Str,
        nsp: Str,
        id: u64,
    },
    /// Node adapters: responses carrying the request id, on the
    /// namespace's response channel.
    Node { request_id: Str, uid: Str, nsp: Str },
}

/// What a remote node asks of this one, or answers it.
#[derive(Debug, Clone)]
pub(crate) enum Inbound {
    /// Emit to the local sockets the selector picks; with `ack`, each
    /// receiver's answer goes back to the asker.
    Broadcast {
        nsp: Str,
        selector: RoomSelector,
        volatile: bool,
        event: Str,
        args: Vec<Value>,
        ack: Option<ReplyTo>,
        /// How long the asker waits for the acknowledgements, if it says.
        timeout: Option<std::time::Duration>,
    },
    /// The selected local sockets join `rooms`.
    Join {
        nsp: Str,
        selector: RoomSelector,
        rooms: Vec<Str>,
    },
    /// The selected local sockets leave `rooms`.
    Leave {
        nsp: Str,
        selector: RoomSelector,
        rooms: Vec<Str>,
    },
    /// The selected local sockets are disconnected (their session closed
    /// too when `close`).
    Disconnect {
        nsp: Str,
        selector: RoomSelector,
        close: bool,
    },
    /// Every local socket of `nsp` leaves `room`.
    CloseRoom { nsp: Str, room: Str },
    /// Describe the selected local sockets.
    FetchSockets {
        nsp: Str,
        selector: RoomSelector,
        reply: ReplyTo,
    },
    /// The rooms of `nsp` on this node.
    AllRooms { nsp: Str, reply: ReplyTo },
    /// An event for the application from another server; answered when
    /// `reply` is set.
    ServerSideEmit {
        nsp: Str,
        event: Str,
        args: Vec<Value>,
        reply: Option<ReplyTo>,
    },
    /// An answer to one of this node's requests.
    Answer { request: u64, answer: Answer },
}

/// Answers to this node's requests.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// A client's acknowledgement of a broadcast (with its socket id when
    /// the format says it).
    Ack { sid: Option<Str>, args: Vec<Value> },
    /// How many clients one node asked for acknowledgements.
    ClientCount(u64),
    /// One node's sockets.
    Sockets(Vec<RemoteSocket>),
    /// One node's rooms.
    Rooms(Vec<Str>),
    /// One server's acknowledgement of a server-side emit.
    ServerSideAck(Vec<Value>),
}

/// A socket as another node describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSocket {
    /// Its id.
    pub id: Str,
    /// The rooms it is in (its own id among them).
    pub rooms: Vec<Str>,
    /// Its `data` (JavaScript's `socket.data`), `Null` when none.
    pub data: Value,
}

/// What this node tells the others.
#[derive(Debug)]
pub(crate) enum Outbound<'a> {
    Broadcast {
        nsp: &'a Str,
        selector: &'a RoomSelector,
        volatile: bool,
        event: &'a str,
        args: &'a [Value],
        /// Set for a broadcast with acknowledgements: the request's id and
        /// how long it waits.
        ack: Option<(u64, std::time::Duration)>,
    },
    Join {
        nsp: &'a Str,
        selector: &'a RoomSelector,
        rooms: &'a [Str],
    },
    Leave {
        nsp: &'a Str,
        selector: &'a RoomSelector,
        rooms: &'a [Str],
    },
    Disconnect {
        nsp: &'a Str,
        selector: &'a RoomSelector,
        close: bool,
    },
    CloseRoom {
        nsp: &'a Str,
        room: &'a Str,
    },
    FetchSockets {
        request: u64,
        nsp: &'a Str,
        selector: &'a RoomSelector,
    },
    AllRooms {
        request: u64,
        nsp: &'a Str,
    },
    ServerSideEmit {
        request: Option<u64>,
        nsp: &'a Str,
        event: &'a str,
        args: &'a [Value],
    },
    /// Answers to a remote request.
    Reply {
        to: &'a ReplyTo,
        answer: &'a Answer,
    },
}
