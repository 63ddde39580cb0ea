//! Socket.IO packets ([`Packet`], what every parser decodes to) and their
//! wire formats behind one [`Parser`] trait. The socket layer above uses
//! this module; nothing here knows of it.
//!
//! - [`JsonParser`]: the default parser: packets as text, binary values
//!   replaced by `{"_placeholder":true,"num":N}` and sent as binary
//!   attachments after the packet.
//! - [`MsgPackParser`]: compatible with `socket.io-msgpack-parser` and
//!   python-socketio's `serializer='msgpack'`.
//! - [`CborParser`]: the same map shape in CBOR.
//!
//! Encoding writes into a caller-provided [`Encoded`] buffer that can be
//! reused; decoding keeps binary as slices of the received buffers.

mod any;
mod args;
mod cbor;
mod json;
mod msgpack;
pub(crate) mod packet;
mod spread;

pub use any::{AnyParser, AnyParserDecoder, CustomDecoder, CustomParser, Payload};
pub use args::{Args, ArgsError};
pub use cbor::{CborParser, CborParserDecoder};
#[cfg(test)]
pub(crate) use json::binary_event_declaring;
pub(crate) use json::{check_depth as check_json_depth, js_number_text};
pub use json::{JsonParser, JsonParserDecoder};
pub(crate) use msgpack::decode_value as decode_msgpack_value;
pub use msgpack::{MsgPackParser, MsgPackParserDecoder};
pub use packet::{Packet, PacketData, PacketType, RESERVED_EVENTS};
pub(crate) use spread::{arg_shape, spread_into, ArgArray, ArgShape, TupleSink};

use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::Serialize;

use crate::engine::Message;

/// A packet to encode. `A` is the type of the payload: event and ack
/// arguments (a tuple is spread into several arguments, `()` is none, any
/// other value is one argument), CONNECT's auth or reply object, or
/// CONNECT_ERROR's object or string.
#[derive(Debug, Clone, Copy)]
pub enum OutPacket<'a, A: ?Sized> {
    /// CONNECT with an optional object.
    Connect {
        /// Namespace.
        nsp: &'a str,
        /// The auth object (client) or `{"sid": ..}` (server).
        data: Option<&'a A>,
    },
    /// DISCONNECT.
    Disconnect {
        /// Namespace.
        nsp: &'a str,
    },
    /// EVENT (BINARY_EVENT when the arguments hold binary).
    Event {
        /// Namespace.
        nsp: &'a str,
        /// Event name.
        event: &'a str,
        /// Arguments.
        args: &'a A,
        /// Ack id when an acknowledgement is requested.
        ack: Option<u64>,
    },
    /// ACK (BINARY_ACK when the arguments hold binary).
    Ack {
        /// Namespace.
        nsp: &'a str,
        /// The acknowledged event's id.
        id: u64,
        /// Arguments.
        args: &'a A,
    },
    /// CONNECT_ERROR.
    ConnectError {
        /// Namespace.
        nsp: &'a str,
        /// `{"message": .., "data": ..}` or a string.
        data: &'a A,
    },
}

/// The encoded form of one packet: a first Engine.IO message (text or
/// binary) followed by its binary attachments, each its own binary message.
///
/// Reuse one `Encoded` across calls: [`Encoded::clear`] keeps capacity.
#[derive(Debug, Default, Clone)]
pub struct Encoded {
    /// The first message's bytes (UTF-8 when `binary` is false).
    pub data: BytesMut,
    /// Whether the first message is binary (MessagePack, CBOR).
    pub binary: bool,
    /// Binary attachments, in order.
    pub attachments: Vec<Bytes>,
}

impl Encoded {
    /// Empty the buffer, keeping its capacity.
    pub fn clear(&mut self) {
        self.data.clear();
        self.binary = false;
        self.attachments.clear();
    }
}

/// Limits applied while decoding a peer's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most binary attachments one packet may declare (the reference: 10).
    pub max_attachments: usize,
    /// Deepest nesting of arrays and objects accepted.
    pub max_depth: usize,
    /// Most bytes of binary attachments one packet may carry in all. The
    /// JSON parser holds a BINARY_EVENT's or BINARY_ACK's attachments until
    /// the last one arrives; the one that would go over is refused before it
    /// is held ([`DecodeError::TooManyAttachmentBytes`]) and the packet is
    /// dropped. MessagePack and CBOR carry binary inline and hold nothing
    /// between messages. A decoder has at most one packet pending, and the
    /// server and the client keep one decoder per connection, so this is
    /// also the bound per connection. The default, 1 000 000, is Engine.IO's
    /// default `max_payload` (the reference's `maxHttpBufferSize`): a
    /// packet's attachments may total what one message may. The reference
    /// parsers have no such bound.
    pub max_pending_attachment_bytes: usize,
}

/// The default [`DecodeLimits::max_pending_attachment_bytes`]: Engine.IO's
/// default `max_payload`.
pub const DEFAULT_MAX_PENDING_ATTACHMENT_BYTES: usize = 1_000_000;

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_attachments: 10,
            max_depth: 64,
            max_pending_attachment_bytes: DEFAULT_MAX_PENDING_ATTACHMENT_BYTES,
        }
    }
}

/// The peer sent something that is not a valid packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// An empty message.
    Empty,
    /// The packet type is not 0-6.
    UnknownType,
    /// The attachment count is missing its `-`, not a number, or too large.
    BadAttachmentCount,
    /// More attachments declared than the limit allows.
    TooManyAttachments {
        /// What the packet declared.
        declared: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A packet's binary attachments would exceed
    /// [`DecodeLimits::max_pending_attachment_bytes`]; the packet is dropped
    /// with those already held.
    TooManyAttachmentBytes {
        /// Bytes of the packet's attachments already received.
        pending: usize,
        /// Bytes of the attachment that would go over the limit.
        incoming: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A binary message arrived when no attachment was expected, or a text
    /// message arrived while attachments were expected.
    UnexpectedMessage,
    /// The namespace does not start with `/` or is not terminated properly.
    BadNamespace,
    /// The ack id has non-digits or overflows.
    BadAckId,
    /// The payload is not valid for the format (JSON, MessagePack, CBOR),
    /// nests too deeply, or is not valid UTF-8.
    BadPayload(String),
    /// The payload is well-formed but its shape is wrong for the packet type
    /// (for example an EVENT that is not a non-empty array).
    InvalidPayload(&'static str),
    /// An EVENT named with a reserved name.
    ReservedEvent,
    /// A placeholder refers to an attachment that does not exist.
    BadPlaceholder,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty packet"),
            DecodeError::UnknownType => f.write_str("unknown packet type"),
            DecodeError::BadAttachmentCount => f.write_str("invalid attachment count"),
            DecodeError::TooManyAttachments { declared, limit } => {
                write!(f, "{declared} attachments declared, limit is {limit}")
            }
            DecodeError::TooManyAttachmentBytes {
                pending,
                incoming,
                limit,
            } => write!(
                f,
                "binary attachments would reach {} bytes ({pending} held, {incoming} arriving), limit is {limit}",
                pending.saturating_add(*incoming)
            ),
            DecodeError::UnexpectedMessage => f.write_str("unexpected message"),
            DecodeError::BadNamespace => f.write_str("invalid namespace"),
            DecodeError::BadAckId => f.write_str("invalid ack id"),
            DecodeError::BadPayload(e) => write!(f, "invalid payload: {e}"),
            DecodeError::InvalidPayload(e) => write!(f, "invalid payload: {e}"),
            DecodeError::ReservedEvent => f.write_str("reserved event name"),
            DecodeError::BadPlaceholder => f.write_str("invalid attachment placeholder"),
        }
    }
}
impl std::error::Error for DecodeError {}

/// The application asked to encode something that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload failed to serialize.
    Serialize(String),
    /// The namespace does not start with `/`.
    BadNamespace,
    /// The event name is reserved.
    ReservedEvent,
    /// The payload has the wrong shape for the packet (for example a CONNECT
    /// whose data is not an object).
    InvalidPayload(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            EncodeError::Serialize(e) => write!(f, "serialization failed: {e}"),
            EncodeError::BadNamespace => f.write_str("namespace must start with '/'"),
            EncodeError::ReservedEvent => f.write_str("reserved event name"),
            EncodeError::InvalidPayload(e) => write!(f, "invalid payload: {e}"),
        }
    }
}
impl std::error::Error for EncodeError {}

/// A Socket.IO wire format.
///
/// Decoding is stateful for formats with attachments: keep one
/// [`Parser::Decoder`] per connection and feed it every Engine.IO message in
/// order; it returns a packet once it is complete.
pub trait Parser {
    /// Per-connection decoding state.
    type Decoder: Default + fmt::Debug + Send;

    /// Encode `packet` into `out` (which is cleared first).
    fn encode<A: Serialize + ?Sized>(
        &self,
        packet: &OutPacket<'_, A>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError>;

    /// Feed one received Engine.IO message. `Ok(None)` means more messages
    /// (attachments) are needed.
    fn decode(
        &self,
        decoder: &mut Self::Decoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError>;
}
