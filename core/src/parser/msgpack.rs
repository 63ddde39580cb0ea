//! MessagePack, wire-compatible with socket.io-msgpack-parser 3.x and python-socketio.

use serde::Serialize;

use super::{DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Parser};
use crate::engine::Message;
use crate::socket::Packet;

/// MessagePack, wire-compatible with socket.io-msgpack-parser 3.x and python-socketio.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPackParser;

/// Decoding state of [`MsgPackParser`].
#[derive(Debug, Default)]
pub struct MsgPackParserDecoder {}

impl Parser for MsgPackParser {
    type Decoder = MsgPackParserDecoder;

    fn encode<A: Serialize + ?Sized>(
        &self,
        packet: &OutPacket<'_, A>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError> {
        let _ = (packet, out);
        todo!()
    }

    fn decode(
        &self,
        decoder: &mut Self::Decoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError> {
        let _ = (decoder, message, limits);
        todo!()
    }
}
