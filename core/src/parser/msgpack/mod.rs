//! MessagePack, wire-compatible with socket.io-msgpack-parser 3.x and
//! python-socketio's `serializer='msgpack'`.
//!
//! Every packet is one map `{"type": int, "nsp": str, "data": .., "id": int}`
//! in one binary Engine.IO message; binary stays inline as MessagePack `bin`,
//! so there are no attachments. `data` is left out when the packet has none
//! (the JS parser rejects the `nil` python writes there) and `id` when there
//! is no ack.
//!
//! This file also holds what the MessagePack and CBOR parsers share, since
//! they differ only in how single items are written and read:
//! - [`WireFormat`] and [`WireSerializer`]: serde straight into the output
//!   buffer, with the data model of `serde_json` (structs as maps, enums
//!   externally tagged, map keys turned into text, `serialize_bytes` as
//!   native binary), so the three parsers send the same shapes.
//! - [`TokenReader`] and [`read_value`]: an iterative tree builder, so
//!   nesting is bounded by [`DecodeLimits::max_depth`] and never by the
//!   stack, and no container reserves more than the message can hold.
//! - [`packet_from_map`]: the reference `isPacketValid` rules applied to the
//!   decoded map.
//!
//! MessagePack itself decodes lazily ([`decode_lazy`]): one pass reads the
//! envelope (`type`, `nsp`, `id`) and validates the rest without building
//! anything (the same checks and limits as [`read_value`]); an EVENT's or
//! ACK's arguments stay as a range of the received bytes, deserialized on
//! demand by [`MsgPackArgs`] with [`Value`]'s data model.
//!
//! Decoding rules of both formats: map keys inside `data` must be strings
//! (a typed error otherwise, as python's `strict_map_key` does); `nil` and
//! JavaScript `undefined` read as [`Value::Null`], and a `data` or `id` that
//! is null counts as absent. What notepack (the JS MessagePack codec) writes
//! for JS types is understood: `undefined` (fixext 1, type 0), `ArrayBuffer`
//! and typed arrays (ext type 0: binary), `Date` (fixext 8, type 0: its
//! milliseconds as a number). Other extension types are refused.

mod arg_deserializer;
mod lazy;
mod reader;
mod serializer;
#[cfg(test)]
pub(super) mod tests;
mod token_reader;
mod wire_format;

use bytes::Bytes;
use serde::ser::Serialize;

use super::{DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Packet, Parser};
use crate::engine::Message;
use lazy::decode_lazy;

pub(crate) use arg_deserializer::MsgPackArgs;
pub(in crate::parser) use serializer::encode_packet;
pub(crate) use token_reader::decode_value;
pub(in crate::parser) use token_reader::{bad_payload, decode_packet, Token, TokenReader};
pub(in crate::parser) use wire_format::{
    put, put_marked, too_long, Header, ItemKind, MsgPack, WireError, WireFormat,
};

/// MessagePack, wire-compatible with socket.io-msgpack-parser 3.x and
/// python-socketio's `serializer='msgpack'`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPackParser;

/// Decoding state of [`MsgPackParser`]: none, every message is a whole
/// packet.
#[derive(Debug, Default)]
pub struct MsgPackParserDecoder {}

impl Parser for MsgPackParser {
    type Decoder = MsgPackParserDecoder;

    fn encode<A: Serialize + ?Sized>(
        &self,
        packet: &OutPacket<'_, A>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError> {
        encode_packet::<MsgPack, A>(packet, out)
    }

    fn decode(
        &self,
        _decoder: &mut Self::Decoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError> {
        let bytes = binary_message(message)?;
        decode_lazy(&bytes, limits)
    }
}

/// The bytes of a binary message; these formats never use text messages.
pub(in crate::parser) fn binary_message(message: Message) -> Result<Bytes, DecodeError> {
    match message {
        Message::Binary(b) if b.is_empty() => Err(DecodeError::Empty),
        Message::Binary(b) => Ok(b),
        Message::Text(_) => Err(DecodeError::UnexpectedMessage),
    }
}
