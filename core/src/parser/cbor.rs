//! CBOR with the MessagePack parser's map shape.

use serde::Serialize;

use super::{DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Parser};
use crate::engine::Message;
use crate::socket::Packet;

/// CBOR with the MessagePack parser's map shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct CborParser;

/// Decoding state of [`CborParser`].
#[derive(Debug, Default)]
pub struct CborParserDecoder {}

impl Parser for CborParser {
    type Decoder = CborParserDecoder;

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
