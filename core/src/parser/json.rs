//! The default Socket.IO parser: JSON text with binary attachments.

use serde::Serialize;

use super::{DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Parser};
use crate::engine::Message;
use crate::socket::Packet;

/// The default Socket.IO parser: JSON text with binary attachments.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonParser;

/// Decoding state of [`JsonParser`].
#[derive(Debug, Default)]
pub struct JsonParserDecoder {}

impl Parser for JsonParser {
    type Decoder = JsonParserDecoder;

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
