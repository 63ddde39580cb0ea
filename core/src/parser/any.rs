//! A parser chosen at run time among the three wire formats, or one of
//! the application's own.

use std::any::Any;
use std::fmt;

use serde::Serialize;

use super::Args;
use super::Packet;
use super::{
    CborParser, CborParserDecoder, DecodeError, DecodeLimits, EncodeError, Encoded, JsonParser,
    JsonParserDecoder, MsgPackParser, MsgPackParserDecoder, OutPacket, Parser,
};
use crate::engine::Message;
use crate::value::{to_value, Value};

/// One of the three wire formats, chosen at run time (for example from a
/// configuration file), or the application's own ([`AnyParser::custom`]).
/// Defaults to [`JsonParser`], the one every Socket.IO peer speaks unless
/// configured otherwise.
///
/// The built-in formats are dispatched with a `match` (no dynamic call, no
/// conversion); a custom one through one dynamic call per packet, its
/// outgoing arguments converted to [`Args`] (values) first, as its
/// `encode` cannot be called with a type chosen at run time.
#[derive(Debug, Clone, Copy)]
pub enum AnyParser {
    /// The default JSON parser.
    Json(JsonParser),
    /// The MessagePack parser.
    MsgPack(MsgPackParser),
    /// The CBOR parser.
    Cbor(CborParser),
    /// The application's own parser.
    Custom(&'static dyn CustomParser),
}

/// A [`Parser`] behind [`AnyParser::custom`]: implemented for every
/// `Parser` that is `Send + Sync + Debug + 'static`; not implemented by
/// hand.
pub trait CustomParser: Send + Sync + fmt::Debug + 'static {
    /// Encode with the parser's `encode::<Payload>`.
    fn encode_payload(
        &self,
        packet: &OutPacket<'_, Payload>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError>;
    /// A fresh decoder.
    fn new_custom_decoder(&self) -> CustomDecoder;
    /// Decode with the parser's `decode`; a decoder of another parser is
    /// replaced first.
    fn decode_custom(
        &self,
        decoder: &mut CustomDecoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError>;
}

/// What a custom parser is asked to encode: event and ack arguments as
/// [`Args`] (they serialize as a tuple, so spreading works as for any
/// emit), CONNECT and CONNECT_ERROR data as a [`Value`].
#[derive(Debug, Clone)]
pub enum Payload {
    /// Event or acknowledgement arguments.
    Args(Args),
    /// A CONNECT or CONNECT_ERROR object.
    Value(Value),
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Args(args) => args.serialize(s),
            Payload::Value(value) => value.serialize(s),
        }
    }
}

/// The decoding state of a custom parser.
pub struct CustomDecoder(Box<dyn Any + Send>);

impl fmt::Debug for CustomDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomDecoder")
    }
}

impl<P> CustomParser for P
where
    P: Parser + Send + Sync + fmt::Debug + 'static,
    P::Decoder: 'static,
{
    fn encode_payload(
        &self,
        packet: &OutPacket<'_, Payload>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError> {
        self.encode(packet, out)
    }

    fn new_custom_decoder(&self) -> CustomDecoder {
        CustomDecoder(Box::new(P::Decoder::default()))
    }

    fn decode_custom(
        &self,
        decoder: &mut CustomDecoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError> {
        if !decoder.0.is::<P::Decoder>() {
            *decoder = self.new_custom_decoder();
        }
        let state = decoder
            .0
            .downcast_mut::<P::Decoder>()
            .expect("replaced above when of another type");
        self.decode(state, message, limits)
    }
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
    /// The application's own [`Parser`] (a serializer of its own, as
    /// python-socketio's `serializer=` takes a class). A `&'static` keeps
    /// `AnyParser` `Copy` and free of reference counts: parsers are
    /// usually stateless, so a `static` holds them; `Box::leak` one built
    /// at run time (once: it is never freed).
    ///
    /// ```
    /// use socketio_core::parser::{AnyParser, JsonParser};
    /// // Any `Parser`; JSON stands in for one of your own.
    /// static MINE: JsonParser = JsonParser;
    /// let parser = AnyParser::custom(&MINE);
    /// # let _ = parser;
    /// ```
    pub fn custom<P>(parser: &'static P) -> AnyParser
    where
        P: Parser + Send + Sync + fmt::Debug + 'static,
        P::Decoder: 'static,
    {
        AnyParser::Custom(parser)
    }

    /// A fresh decoder of the matching kind.
    pub fn new_decoder(&self) -> AnyParserDecoder {
        match self {
            AnyParser::Json(_) => AnyParserDecoder::Json(JsonParserDecoder::default()),
            AnyParser::MsgPack(_) => AnyParserDecoder::MsgPack(MsgPackParserDecoder::default()),
            AnyParser::Cbor(_) => AnyParserDecoder::Cbor(CborParserDecoder::default()),
            AnyParser::Custom(p) => AnyParserDecoder::Custom(p.new_custom_decoder()),
        }
    }
}

/// The packet's payload converted for a custom parser: arguments with
/// emit's rule (a tuple is several), objects as values.
fn payload_packet<'a, A: Serialize + ?Sized>(
    packet: &OutPacket<'a, A>,
    payload: &'a mut Option<Payload>,
) -> Result<OutPacket<'a, Payload>, EncodeError> {
    let serialize = |e: crate::value::ValueError| EncodeError::Serialize(e.0);
    Ok(match *packet {
        OutPacket::Connect { nsp, data } => {
            let data = match data {
                Some(data) => {
                    Some(&*payload.insert(Payload::Value(to_value(data).map_err(serialize)?)))
                }
                None => None,
            };
            OutPacket::Connect { nsp, data }
        }
        OutPacket::Disconnect { nsp } => OutPacket::Disconnect { nsp },
        OutPacket::Event {
            nsp,
            event,
            args,
            ack,
        } => {
            let args = Args::from_serialize(args).map_err(serialize)?;
            OutPacket::Event {
                nsp,
                event,
                args: payload.insert(Payload::Args(args)),
                ack,
            }
        }
        OutPacket::Ack { nsp, id, args } => {
            let args = Args::from_serialize(args).map_err(serialize)?;
            OutPacket::Ack {
                nsp,
                id,
                args: payload.insert(Payload::Args(args)),
            }
        }
        OutPacket::ConnectError { nsp, data } => {
            let data = to_value(data).map_err(serialize)?;
            OutPacket::ConnectError {
                nsp,
                data: payload.insert(Payload::Value(data)),
            }
        }
    })
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
    /// State of a custom parser.
    Custom(CustomDecoder),
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
            AnyParser::Custom(p) => {
                let mut payload = None;
                p.encode_payload(&payload_packet(packet, &mut payload)?, out)
            }
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
                (AnyParser::Custom(p), AnyParserDecoder::Custom(d)) => {
                    return p.decode_custom(d, message, limits)
                }
                _ => *decoder = self.new_decoder(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::PacketData;
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

#[cfg(test)]
mod custom_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::parser::PacketData;
    use crate::Str;

    /// JSON under another name, counting what it encodes: a parser the
    /// application wrote.
    #[derive(Debug)]
    struct CountingJson(AtomicUsize);

    impl Parser for CountingJson {
        type Decoder = JsonParserDecoder;

        fn encode<A: Serialize + ?Sized>(
            &self,
            packet: &OutPacket<'_, A>,
            out: &mut Encoded,
        ) -> Result<(), EncodeError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            JsonParser.encode(packet, out)
        }

        fn decode(
            &self,
            decoder: &mut Self::Decoder,
            message: Message,
            limits: &DecodeLimits,
        ) -> Result<Option<Packet>, DecodeError> {
            JsonParser.decode(decoder, message, limits)
        }
    }

    fn encode(parser: &AnyParser, packet: &OutPacket<'_, impl Serialize + ?Sized>) -> String {
        let mut out = Encoded::default();
        parser.encode(packet, &mut out).unwrap();
        String::from_utf8(out.data.to_vec()).unwrap()
    }

    #[test]
    fn a_custom_parser_encodes_as_it_would_alone_and_decodes() {
        static COUNTING: CountingJson = CountingJson(AtomicUsize::new(0));
        let parser = AnyParser::custom(&COUNTING);
        let event = OutPacket::Event {
            nsp: "/",
            event: "hey",
            args: &("Jude", 1, [2, 3]),
            ack: Some(4),
        };
        // Arguments spread as with the parser alone.
        assert_eq!(encode(&parser, &event), encode(&JsonParser.into(), &event));
        assert_eq!(encode(&parser, &event), r#"24["hey","Jude",1,[2,3]]"#);
        let ack = OutPacket::Ack {
            nsp: "/chat",
            id: 4,
            args: &"one",
        };
        assert_eq!(encode(&parser, &ack), r#"3/chat,4["one"]"#);
        let connect = OutPacket::Connect {
            nsp: "/",
            data: Some(&serde_json::json!({ "token": "t" })),
        };
        assert_eq!(encode(&parser, &connect), r#"0{"token":"t"}"#);
        let AnyParser::Custom(inner) = &parser else {
            panic!("not custom")
        };
        assert!(
            format!("{inner:?}").contains("CountingJson(4)"),
            "{inner:?}"
        );

        // Decoding with a decoder of another kind replaces it first.
        let mut decoder = AnyParserDecoder::default();
        let message = Message::Text(Str::from(r#"2["hey","Jude"]"#));
        let packet = parser
            .decode(&mut decoder, message, &DecodeLimits::default())
            .unwrap()
            .unwrap();
        assert!(matches!(decoder, AnyParserDecoder::Custom(_)));
        match packet.data {
            PacketData::Event { name, args, .. } => {
                assert_eq!(name, "hey");
                assert_eq!(args.get::<String>(0).unwrap(), "Jude");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
