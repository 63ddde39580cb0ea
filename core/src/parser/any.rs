//! A parser chosen at run time among the three wire formats.

use serde::Serialize;

use super::{
    CborParser, CborParserDecoder, DecodeError, DecodeLimits, EncodeError, Encoded, JsonParser,
    JsonParserDecoder, MsgPackParser, MsgPackParserDecoder, OutPacket, Parser,
};
use crate::engine::Message;
use crate::socket::Packet;

/// One of the three wire formats, chosen at run time (for example from a
/// configuration file). Defaults to [`JsonParser`], the one every Socket.IO
/// peer speaks unless configured otherwise.
#[derive(Debug, Clone, Copy)]
pub enum AnyParser {
    /// The default JSON parser.
    Json(JsonParser),
    /// The MessagePack parser.
    MsgPack(MsgPackParser),
    /// The CBOR parser.
    Cbor(CborParser),
}

impl Default for AnyParser {
    fn default() -> Self {
        AnyParser::Json(JsonParser)
    }
}

impl From<JsonParser> for AnyParser {
    fn from(p: JsonParser) -> Self {
        AnyParser::Json(p)
    }
}
impl From<MsgPackParser> for AnyParser {
    fn from(p: MsgPackParser) -> Self {
        AnyParser::MsgPack(p)
    }
}
impl From<CborParser> for AnyParser {
    fn from(p: CborParser) -> Self {
        AnyParser::Cbor(p)
    }
}

impl AnyParser {
    /// A fresh decoder of the matching kind.
    pub fn new_decoder(&self) -> AnyParserDecoder {
        match self {
            AnyParser::Json(_) => AnyParserDecoder::Json(JsonParserDecoder::default()),
            AnyParser::MsgPack(_) => AnyParserDecoder::MsgPack(MsgPackParserDecoder::default()),
            AnyParser::Cbor(_) => AnyParserDecoder::Cbor(CborParserDecoder::default()),
        }
    }
}

/// Decoding state of [`AnyParser`]: the state of the selected parser.
#[derive(Debug)]
pub enum AnyParserDecoder {
    /// State of [`JsonParser`].
    Json(JsonParserDecoder),
    /// State of [`MsgPackParser`].
    MsgPack(MsgPackParserDecoder),
    /// State of [`CborParser`].
    Cbor(CborParserDecoder),
}

impl Default for AnyParserDecoder {
    fn default() -> Self {
        AnyParserDecoder::Json(JsonParserDecoder::default())
    }
}

impl Parser for AnyParser {
    type Decoder = AnyParserDecoder;

    fn encode<A: Serialize + ?Sized>(
        &self,
        packet: &OutPacket<'_, A>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError> {
        match self {
            AnyParser::Json(p) => p.encode(packet, out),
            AnyParser::MsgPack(p) => p.encode(packet, out),
            AnyParser::Cbor(p) => p.encode(packet, out),
        }
    }

    /// A decoder of another kind than the parser (for example the
    /// `Default` one, which is JSON's, used with a MessagePack parser) is
    /// replaced by a fresh one of the right kind first.
    fn decode(
        &self,
        decoder: &mut Self::Decoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError> {
        loop {
            match (self, &mut *decoder) {
                (AnyParser::Json(p), AnyParserDecoder::Json(d)) => {
                    return p.decode(d, message, limits)
                }
                (AnyParser::MsgPack(p), AnyParserDecoder::MsgPack(d)) => {
                    return p.decode(d, message, limits)
                }
                (AnyParser::Cbor(p), AnyParserDecoder::Cbor(d)) => {
                    return p.decode(d, message, limits)
                }
                _ => *decoder = self.new_decoder(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::PacketData;
    use crate::Str;

    #[test]
    fn defaults_to_json() {
        let parser = AnyParser::default();
        assert!(matches!(parser, AnyParser::Json(_)));
        assert!(matches!(
            AnyParserDecoder::default(),
            AnyParserDecoder::Json(_)
        ));

        let mut out = Encoded::default();
        parser
            .encode(
                &OutPacket::Event {
                    nsp: "/",
                    event: "hey",
                    args: &("Jude",),
                    ack: None,
                },
                &mut out,
            )
            .unwrap();
        assert_eq!(&out.data[..], br#"2["hey","Jude"]"#);

        let mut decoder = parser.new_decoder();
        let packet = parser
            .decode(
                &mut decoder,
                Message::Text(Str::from(r#"2["hey","Jude"]"#)),
                &DecodeLimits::default(),
            )
            .unwrap()
            .unwrap();
        match packet.data {
            PacketData::Event { name, args, .. } => {
                assert_eq!(name, "hey");
                assert_eq!(args.get::<String>(0).unwrap(), "Jude");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn decoder_state_survives_between_messages() {
        let parser = AnyParser::from(JsonParser);
        let mut decoder = AnyParserDecoder::default();
        let limits = DecodeLimits::default();
        let first = Message::Text(Str::from(r#"51-["b",{"_placeholder":true,"num":0}]"#));
        assert_eq!(parser.decode(&mut decoder, first, &limits), Ok(None));
        let second = Message::Binary(bytes::Bytes::from_static(b"x"));
        assert!(parser
            .decode(&mut decoder, second, &limits)
            .unwrap()
            .is_some());
    }
}
