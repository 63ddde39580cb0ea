//! CBOR with the MessagePack parser's map shape.
//!
//! One map `{"type", "nsp", "data"?, "id"?}` per packet in one binary
//! Engine.IO message, binary inline as CBOR byte strings. Encoding and
//! validation are shared with [`super::MsgPackParser`] (see its module); only
//! the item encoding differs. Items are written with definite lengths and
//! the shortest heads; floats keep their width (`f32` as single, `f64` as
//! double precision).
//!
//! Decoding accepts any well-formed CBOR: indefinite lengths (byte and text
//! strings given in chunks are joined, the only case that copies binary),
//! half-precision floats, and tags, which are skipped (the tagged item is
//! read as it is). `null` and `undefined` read as [`Value::Null`]; other
//! simple values are refused. Negative integers below `i64::MIN` read as
//! floats.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde::Serialize;

use super::msgpack::{
    bad_payload, binary_message, decode_packet, encode_packet, put, put_marked, too_long, Header,
    ItemKind, Token, TokenReader, WireError, WireFormat,
};
use super::Packet;
use super::{DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Parser};
use crate::engine::Message;
use crate::value::Value;

/// CBOR with the MessagePack parser's map shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct CborParser;

/// Decoding state of [`CborParser`]: none, every message is a whole packet.
#[derive(Debug, Default)]
pub struct CborParserDecoder {}

impl Parser for CborParser {
    type Decoder = CborParserDecoder;

    fn encode<A: Serialize + ?Sized>(
        &self,
        packet: &OutPacket<'_, A>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError> {
        encode_packet::<Cbor, A>(packet, out)
    }

    fn decode(
        &self,
        _decoder: &mut Self::Decoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError> {
        let bytes = binary_message(message)?;
        let mut reader = CborReader {
            buf: &bytes,
            pos: 0,
        };
        decode_packet(&mut reader, limits).map(Some)
    }
}

const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const TAG: u8 = 6;
const SIMPLE: u8 = 7;

/// Additional information 31: indefinite length, or "break" in major 7.
const INDEFINITE: u8 = 31;

/// The shortest head of major type `major` with argument `arg`.
fn head(major: u8, arg: u64) -> Header {
    let major = major << 5;
    if arg < 24 {
        Header::new(major | arg as u8, &[])
    } else if let Ok(n) = u8::try_from(arg) {
        Header::new(major | 24, &[n])
    } else if let Ok(n) = u16::try_from(arg) {
        Header::new(major | 25, &n.to_be_bytes())
    } else if let Ok(n) = u32::try_from(arg) {
        Header::new(major | 26, &n.to_be_bytes())
    } else {
        Header::new(major | 27, &arg.to_be_bytes())
    }
}

fn length_head(major: u8, len: usize) -> Result<Header, WireError> {
    Ok(head(major, u64::try_from(len).map_err(|_| too_long())?))
}

fn put_head(out: &mut BytesMut, major: u8, arg: u64) {
    head(major, arg).put(out);
}

/// CBOR's item encoding.
pub(super) struct Cbor;

impl WireFormat for Cbor {
    const WIDE_HEADER_LEN: usize = 5;

    fn nil(out: &mut BytesMut) {
        put(out, &[0xf6]);
    }
    fn bool(out: &mut BytesMut, v: bool) {
        put(out, &[if v { 0xf5 } else { 0xf4 }]);
    }
    fn uint(out: &mut BytesMut, v: u64) {
        put_head(out, UNSIGNED, v);
    }
    fn neg_int(out: &mut BytesMut, v: i64) {
        // CBOR stores -1 - n; for negative v that is !v, never overflowing.
        put_head(out, NEGATIVE, !v as u64);
    }
    fn f32(out: &mut BytesMut, v: f32) {
        put_marked(out, 0xfa, v.to_be_bytes());
    }
    fn f64(out: &mut BytesMut, v: f64) {
        put_marked(out, 0xfb, v.to_be_bytes());
    }
    fn str_header(len: usize) -> Result<Header, WireError> {
        length_head(TEXT, len)
    }
    fn bin_header(len: usize) -> Result<Header, WireError> {
        length_head(BYTES, len)
    }
    fn array_header(len: usize) -> Result<Header, WireError> {
        length_head(ARRAY, len)
    }
    fn map_header(len: usize) -> Result<Header, WireError> {
        length_head(MAP, len)
    }
    fn wide_array_header() -> Header {
        Header::new(ARRAY << 5 | 26, &[0; 4])
    }
    fn wide_map_header() -> Header {
        Header::new(MAP << 5 | 26, &[0; 4])
    }
    fn kind(first: u8) -> ItemKind {
        match first >> 5 {
            MAP => ItemKind::Map,
            TEXT => ItemKind::Str,
            _ => ItemKind::Other,
        }
    }
}

/// Reads CBOR items from a received buffer; definite-length byte strings
/// become slices of it.
struct CborReader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

fn truncated() -> DecodeError {
    bad_payload("truncated CBOR")
}

/// The argument of a head: a length or value, or indefinite.
enum Arg {
    Value(u64),
    Indefinite,
}

impl CborReader<'_> {
    fn take(&mut self, n: usize) -> Result<Range<usize>, DecodeError> {
        if n > self.buf.len() - self.pos {
            return Err(truncated());
        }
        let range = self.pos..self.pos + n;
        self.pos += n;
        Ok(range)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let range = self.take(N)?;
        Ok(self.buf[range].try_into().expect("N bytes"))
    }

    /// Read a head: major type and argument.
    fn head(&mut self) -> Result<(u8, u8, Arg), DecodeError> {
        let [initial] = self.array::<1>()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let arg = match info {
            0..=23 => Arg::Value(u64::from(info)),
            24 => Arg::Value(u64::from(self.array::<1>()?[0])),
            25 => Arg::Value(u64::from(u16::from_be_bytes(self.array()?))),
            26 => Arg::Value(u64::from(u32::from_be_bytes(self.array()?))),
            27 => Arg::Value(u64::from_be_bytes(self.array()?)),
            INDEFINITE => Arg::Indefinite,
            _ => return Err(bad_payload("reserved CBOR additional information")),
        };
        Ok((major, info, arg))
    }

    /// A byte or text string's content range, after its head.
    fn definite(&mut self, len: u64) -> Result<Range<usize>, DecodeError> {
        let len = usize::try_from(len).map_err(|_| truncated())?;
        self.take(len)
    }

    /// The joined chunks of an indefinite-length byte or text string.
    fn chunks(&mut self, major: u8) -> Result<Vec<u8>, DecodeError> {
        let mut joined = Vec::new();
        loop {
            match self.head()? {
                (SIMPLE, INDEFINITE, _) => return Ok(joined),
                (m, _, Arg::Value(len)) if m == major => {
                    let range = self.definite(len)?;
                    let chunk = &self.buf[range];
                    if major == TEXT && std::str::from_utf8(chunk).is_err() {
                        return Err(bad_payload("string is not valid UTF-8"));
                    }
                    joined.extend_from_slice(chunk);
                }
                _ => return Err(bad_payload("invalid chunk in an indefinite-length string")),
            }
        }
    }

    fn text(bytes: &[u8]) -> Result<Value, DecodeError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Value::String(text.to_owned())),
            Err(_) => Err(bad_payload("string is not valid UTF-8")),
        }
    }

    fn length(arg: Arg) -> Option<usize> {
        match arg {
            // Saturate: the length check against the remaining bytes refuses it.
            Arg::Value(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Arg::Indefinite => None,
        }
    }
}

impl TokenReader for CborReader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn next_token(&mut self) -> Result<Token, DecodeError> {
        loop {
            let (major, info, arg) = self.head()?;
            let value = match (major, arg) {
                (UNSIGNED, Arg::Value(n)) => Value::from(n),
                (NEGATIVE, Arg::Value(n)) => match i64::try_from(n) {
                    Ok(n) => Value::from(-1 - n),
                    Err(_) => Value::from(-1.0 - n as f64),
                },
                (BYTES, Arg::Value(len)) => {
                    let range = self.definite(len)?;
                    Value::Binary(self.buf.slice(range))
                }
                (BYTES, Arg::Indefinite) => Value::Binary(Bytes::from(self.chunks(BYTES)?)),
                (TEXT, Arg::Value(len)) => {
                    let range = self.definite(len)?;
                    Self::text(&self.buf[range])?
                }
                (TEXT, Arg::Indefinite) => Self::text(&self.chunks(TEXT)?)?,
                (ARRAY, arg) => return Ok(Token::Array(Self::length(arg))),
                (MAP, arg) => return Ok(Token::Map(Self::length(arg))),
                // A tag only annotates the next item: read that instead.
                // Each tag consumes bytes, so this loop ends.
                (TAG, Arg::Value(_)) => continue,
                (SIMPLE, arg) => match (info, arg) {
                    (20, _) => Value::Bool(false),
                    (21, _) => Value::Bool(true),
                    (22 | 23, _) => Value::Null,
                    (25, Arg::Value(bits)) => Value::from(f16_to_f64(bits as u16)),
                    (26, Arg::Value(bits)) => Value::from(f64::from(f32::from_bits(bits as u32))),
                    (27, Arg::Value(bits)) => Value::from(f64::from_bits(bits)),
                    (INDEFINITE, _) => return Ok(Token::Break),
                    _ => return Err(bad_payload("unsupported CBOR simple value")),
                },
                _ => return Err(bad_payload("invalid CBOR head")),
            };
            return Ok(Token::Value(value));
        }
    }
}

/// An IEEE 754 half-precision float, widened.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x3ff);
    sign * match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + mantissa / 1024.0) * 2f64.powi(exponent - 15),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::parser::msgpack::tests::{arg_values, obj};
    use crate::parser::PacketData;
    use crate::value::tests::arb_value;
    use crate::Str;

    fn encode<A: Serialize + ?Sized>(packet: &OutPacket<'_, A>) -> Vec<u8> {
        let mut out = Encoded::default();
        CborParser.encode(packet, &mut out).unwrap();
        assert!(out.binary);
        assert!(out.attachments.is_empty());
        out.data.to_vec()
    }

    fn decode_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Packet, DecodeError> {
        let message = Message::Binary(Bytes::copy_from_slice(bytes));
        CborParser
            .decode(&mut CborParserDecoder::default(), message, limits)
            .map(|p| p.expect("one message is one packet"))
    }

    fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
        decode_with(bytes, &DecodeLimits::default())
    }

    fn event_args(bytes: &[u8]) -> Vec<Value> {
        match decode(bytes).unwrap().data {
            PacketData::Event { args, .. } => arg_values(&args).to_vec(),
            other => panic!("{other:?}"),
        }
    }

    /// `{"type": 2, "nsp": "/", "data": ["hello", 1]}`.
    const HELLO: &[u8] = b"\xa3\x64type\x02\x63nsp\x61/\x64data\x82\x65hello\x01";

    #[test]
    fn vectors() {
        let bytes = encode(&OutPacket::Event {
            nsp: "/",
            event: "hello",
            args: &1,
            ack: None,
        });
        assert_eq!(bytes, HELLO);
        assert_eq!(event_args(HELLO), [Value::from(1u64)]);

        let ack = encode(&OutPacket::Ack {
            nsp: "/",
            id: 1000,
            args: &(Bytes::from_static(b"\x01"), -1, 0.5f32),
        });
        assert_eq!(
            ack,
            b"\xa4\x64type\x03\x63nsp\x61/\x64data\x83\x41\x01\x20\xfa\x3f\x00\x00\x00\x62id\x19\x03\xe8"
        );
        let PacketData::Ack { id, args } = decode(&ack).unwrap().data else {
            panic!()
        };
        assert_eq!(id, 1000);
        assert_eq!(
            arg_values(&args),
            [
                Value::Binary(Bytes::from_static(b"\x01")),
                Value::from(-1i64),
                Value::from(0.5)
            ]
        );

        let disconnect = encode(&OutPacket::Disconnect::<()> { nsp: "/a" });
        assert_eq!(disconnect, b"\xa2\x64type\x01\x63nsp\x62/a");
        let packet = decode(&disconnect).unwrap();
        assert_eq!(
            (packet.nsp, packet.data),
            (Str::from("/a"), PacketData::Disconnect)
        );
    }

    #[test]
    fn null_and_undefined_data_are_absent() {
        let null = b"\xa3\x64type\x00\x63nsp\x61/\x64data\xf6";
        assert_eq!(decode(null).unwrap().data, PacketData::Connect(None));
        let undefined = b"\xa3\x64type\x01\x63nsp\x61/\x64data\xf7";
        assert_eq!(decode(undefined).unwrap().data, PacketData::Disconnect);
    }

    #[test]
    fn indefinite_lengths_tags_and_half_floats() {
        // {_ "type": 2, "nsp": "/", "data": [_ "e", (_ h'01', h'02'),
        //  (_ "a", "b"), 1(1.5 as f16)]}
        let bytes = b"\xbf\x64type\x02\x63nsp\x61/\x64data\x9f\x61e\x5f\x41\x01\x41\x02\xff\x7f\x61a\x61b\xff\xc1\xf9\x3e\x00\xff\xff";
        assert_eq!(
            event_args(bytes),
            [
                Value::Binary(Bytes::from_static(b"\x01\x02")),
                Value::from("ab"),
                Value::from(1.5)
            ]
        );
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert!(f16_to_f64(0x7e00).is_nan());
    }

    #[test]
    fn binary_is_a_slice_of_the_message() {
        let message = Bytes::from(encode(&OutPacket::Event {
            nsp: "/",
            event: "e",
            args: &Bytes::from(vec![3u8; 100]),
            ack: None,
        }));
        let packet = CborParser
            .decode(
                &mut CborParserDecoder::default(),
                Message::Binary(message.clone()),
                &DecodeLimits::default(),
            )
            .unwrap()
            .unwrap();
        let PacketData::Event { args, .. } = packet.data else {
            panic!()
        };
        let Value::Binary(b) = &arg_values(&args)[0] else {
            panic!()
        };
        assert!(message.as_ptr_range().contains(&b.as_ptr()));
    }

    #[test]
    fn invalid_input_is_a_typed_error() {
        let bad = |bytes: &[u8]| match decode(bytes) {
            Err(DecodeError::BadPayload(_)) => {}
            other => panic!("{bytes:x?}: {other:?}"),
        };
        let head = b"\xa3\x64type\x02\x63nsp\x61/\x64data";
        let with = |tail: &[u8]| [&head[..], tail].concat();
        bad(&with(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff"));
        bad(&with(b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff"));
        bad(&with(b"\x81\x5b\xff\xff\xff\xff\xff\xff\xff\xff"));
        bad(&with(b"\x81\x7a\xff\xff\xff\xff"));
        bad(&with(b"\x82\x61e\x62\xc3\x28"));
        bad(&with(b"\x82\x61e\xa1\x01\x02"));
        bad(&with(b"\x82\x61e\x1c"));
        bad(&with(b"\x82\x61e\xf8\x20"));
        bad(&with(b"\x82\x61e\x5f\x61a\xff"));
        bad(&with(b"\x81\x61e\xff"));
        bad(&with(b"\x81\x61e\x00"));
        assert_eq!(
            decode(&with(b"\x81\x6adisconnect")),
            Err(DecodeError::ReservedEvent)
        );
        assert_eq!(
            decode(b"\xa2\x64type\x07\x63nsp\x61/"),
            Err(DecodeError::UnknownType)
        );
        assert_eq!(decode(b""), Err(DecodeError::Empty));
        let text = CborParser.decode(
            &mut CborParserDecoder::default(),
            Message::Text(Str::from("0")),
            &DecodeLimits::default(),
        );
        assert_eq!(text, Err(DecodeError::UnexpectedMessage));

        let mut bomb = with(b"\x82\x61e");
        bomb.extend(std::iter::repeat(0x81).take(100_000));
        bomb.push(0xf6);
        bad(&bomb);
        let mut bomb = with(b"\x82\x61e");
        bomb.extend(std::iter::repeat(0x9f).take(100_000));
        bad(&bomb);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let full = encode(&OutPacket::Event {
            nsp: "/ns",
            event: "e",
            args: &(
                obj(&[("k", Value::from(-70000i64)), ("f", Value::from(0.5))]),
                Bytes::from_static(b"\x00\xff"),
                u64::MAX,
                "a longer string..........................",
            ),
            ack: Some(1 << 40),
        });
        decode(&full).unwrap();
        for cut in 0..full.len() {
            assert!(decode(&full[..cut]).is_err(), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn misuse_is_an_encode_error() {
        let mut out = Encoded::default();
        let err = CborParser
            .encode(
                &OutPacket::ConnectError {
                    nsp: "/",
                    data: &[1],
                },
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(err, EncodeError::InvalidPayload(_)));
        let err = CborParser
            .encode(&OutPacket::Disconnect::<()> { nsp: "" }, &mut out)
            .unwrap_err();
        assert_eq!(err, EncodeError::BadNamespace);
        assert!(out.data.is_empty());
    }

    /// Our encoding read by ciborium, and ciborium's read by us.
    fn cross_check(value: Value) -> Result<(), TestCaseError> {
        let packet = obj(&[
            ("type", 2u64.into()),
            ("nsp", "/".into()),
            ("data", Value::Array(vec!["ev".into(), value.clone()])),
            ("id", 3u64.into()),
        ]);
        let ours = encode(&OutPacket::Event {
            nsp: "/",
            event: "ev",
            args: &value,
            ack: Some(3),
        });
        let theirs: Value = ciborium::from_reader(&ours[..]).unwrap();
        prop_assert_eq!(theirs, packet.clone());
        prop_assert_eq!(event_args(&ours), [value.clone()]);

        let mut theirs = Vec::new();
        ciborium::into_writer(&packet, &mut theirs).unwrap();
        prop_assert_eq!(event_args(&theirs), [value]);
        Ok(())
    }

    #[test]
    fn numbers_at_every_width() {
        for n in [0u64, 23, 24, 255, 256, 65535, 65536, 1 << 32, u64::MAX] {
            cross_check(Value::from(n)).unwrap();
        }
        for n in [-1i64, -24, -25, -256, -257, -65537, i64::MIN] {
            cross_check(Value::from(n)).unwrap();
        }
        for f in [0.0, -0.0, 1.5, 1e300, f64::INFINITY, 65504.0, 1e-8] {
            cross_check(Value::from(f)).unwrap();
        }
        // Below i64::MIN: read as a float.
        let bytes = [
            &b"\xa3\x64type\x02\x63nsp\x61/\x64data\x82\x61e"[..],
            b"\x3b\xff\xff\xff\xff\xff\xff\xff\xff",
        ]
        .concat();
        assert_eq!(event_args(&bytes), [Value::from(-18446744073709551616.0)]);
    }

    proptest! {
        #[test]
        fn round_trips_and_matches_ciborium(value in arb_value()) {
            cross_check(value)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mutated_packets_never_panic(
            value in arb_value(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = encode(&OutPacket::Event { nsp: "/", event: "e", args: &value, ack: None });
            for (at, byte) in flips {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            let _ = decode(&bytes);
        }
    }
}
