//! Socket.IO v5 packets as the parsers produce them: what the socket layer
//! consumes once a message is decoded.

use super::Args;
use crate::value::Value;
use crate::Str;

/// The seven Socket.IO packet types with their wire numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: join a namespace (client) / accept (server).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event.
    Event = 2,
    /// `3`: an acknowledgement.
    Ack = 3,
    /// `4`: the server refuses a namespace connection.
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The type for a wire number, if it is one.
    pub fn from_u8(n: u8) -> Option<PacketType> {
        Some(match n {
            0 => PacketType::Connect,
            1 => PacketType::Disconnect,
            2 => PacketType::Event,
            3 => PacketType::Ack,
            4 => PacketType::ConnectError,
            5 => PacketType::BinaryEvent,
            6 => PacketType::BinaryAck,
            _ => return None,
        })
    }
}

/// Event names a peer may not use: they name local lifecycle events.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// A decoded Socket.IO packet. Binary variants (`BINARY_EVENT`,
/// `BINARY_ACK`) are folded into [`PacketData::Event`] and
/// [`PacketData::Ack`]: whether binary travelled is a detail of the encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The namespace, `/` when the wire left it out.
    pub nsp: Str,
    /// What the packet carries.
    pub data: PacketData,
}

/// The content of a decoded packet.
#[derive(Debug, Clone, PartialEq)]
pub enum PacketData {
    /// CONNECT: the client's `auth` object (server side, `None` when absent),
    /// or the server's `{"sid": ..}` reply (client side).
    Connect(Option<Value>),
    /// DISCONNECT.
    Disconnect,
    /// EVENT or BINARY_EVENT.
    Event {
        /// The event name (numbers are accepted on the wire and turned into
        /// their decimal text).
        name: Str,
        /// The arguments after the name.
        args: Args,
        /// The ack id when the sender asks for an acknowledgement.
        ack: Option<u64>,
    },
    /// ACK or BINARY_ACK.
    Ack {
        /// The id of the event being acknowledged.
        id: u64,
        /// The acknowledgement's arguments.
        args: Args,
    },
    /// CONNECT_ERROR: an object `{"message", "data"?}` or a string.
    ConnectError(Value),
}
