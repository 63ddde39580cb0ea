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

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, Serializer};
use smallvec::SmallVec;

use super::args::{missing, Repr, Target};
use super::{
    ArgArray, Args, ArgsError, DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Parser,
};
use super::{Packet, PacketData, RESERVED_EVENTS};
use crate::engine::Message;
use crate::value::{
    integral, number_text, visit_shared_bytes, KeyDeserializer, Map, MapKeySerializer, Number,
    Value, ValueError,
};
use crate::Str;

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
pub(super) fn binary_message(message: Message) -> Result<Bytes, DecodeError> {
    match message {
        Message::Binary(b) if b.is_empty() => Err(DecodeError::Empty),
        Message::Binary(b) => Ok(b),
        Message::Text(_) => Err(DecodeError::UnexpectedMessage),
    }
}

// ---------------------------------------------------------------------------
// Encoding, shared with CBOR.
// ---------------------------------------------------------------------------

/// Append `bytes` to `out`. `BytesMut`'s `BufMut` methods (`put_u8`,
/// `put_slice`, ...) are not inlined across crates and cost a call and a
/// `memcpy` per byte written; `extend_from_slice` is, so a short array of
/// known length becomes a plain store.
#[inline(always)]
pub(super) fn put(out: &mut BytesMut, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

/// A marker byte followed by the big-endian bytes of a number, in one
/// write.
#[inline(always)]
pub(super) fn put_marked<const N: usize>(out: &mut BytesMut, marker: u8, bytes: [u8; N]) {
    out.reserve(1 + N);
    put(out, &[marker]);
    put(out, &bytes);
}

/// An item header (or a whole small item): at most 9 bytes in both formats.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    bytes: [u8; 9],
    len: u8,
}

impl Header {
    /// A header of `marker` followed by the big-endian bytes of `arg`.
    pub(super) fn new(marker: u8, arg: &[u8]) -> Header {
        let mut bytes = [0; 9];
        bytes[0] = marker;
        bytes[1..=arg.len()].copy_from_slice(arg);
        Header {
            bytes,
            len: 1 + arg.len() as u8,
        }
    }

    /// The encoded bytes.
    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Append the header to `out`: one-byte headers (the common case)
    /// without a slice copy.
    #[inline]
    pub(super) fn put(&self, out: &mut BytesMut) {
        if self.len == 1 {
            put(out, &[self.bytes[0]]);
        } else {
            out.extend_from_slice(self.as_slice());
        }
    }
}

/// What the first byte of an encoded item says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemKind {
    /// A map.
    Map,
    /// A text string.
    Str,
    /// Anything else.
    Other,
}

/// How one binary format writes single items; [`WireSerializer`] does the
/// rest.
pub(super) trait WireFormat {
    /// Size of the headers from [`WireFormat::wide_array_header`] and
    /// [`WireFormat::wide_map_header`].
    const WIDE_HEADER_LEN: usize;
    /// Null / nil.
    fn nil(out: &mut BytesMut);
    /// A boolean.
    fn bool(out: &mut BytesMut, v: bool);
    /// A non-negative integer.
    fn uint(out: &mut BytesMut, v: u64);
    /// A negative integer.
    fn neg_int(out: &mut BytesMut, v: i64);
    /// A single precision float.
    fn f32(out: &mut BytesMut, v: f32);
    /// A double precision float.
    fn f64(out: &mut BytesMut, v: f64);
    /// The header of a UTF-8 string of `len` bytes.
    fn str_header(len: usize) -> Result<Header, WireError>;
    /// The header of a binary value of `len` bytes.
    fn bin_header(len: usize) -> Result<Header, WireError>;
    /// The header of an array of `len` items.
    fn array_header(len: usize) -> Result<Header, WireError>;
    /// The header of a map of `len` entries.
    fn map_header(len: usize) -> Result<Header, WireError>;
    /// A placeholder array header, widest form, patched once the count is
    /// known.
    fn wide_array_header() -> Header;
    /// A placeholder map header, widest form.
    fn wide_map_header() -> Header;
    /// What the item starting with `first` is.
    fn kind(first: u8) -> ItemKind;

    /// A whole string: its header and bytes, with one reservation.
    #[inline]
    fn put_str(out: &mut BytesMut, v: &str) -> Result<(), WireError> {
        let header = Self::str_header(v.len())?;
        out.reserve(usize::from(header.len) + v.len());
        header.put(out);
        out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    /// One of the packet map's keys (`type`, `nsp`, `data`, `id`).
    #[inline]
    fn put_key(out: &mut BytesMut, key: &'static str) {
        // Short ASCII: never too long.
        let _ = Self::put_str(out, key);
    }
}

/// An error while serializing a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WireError(pub(super) String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for WireError {}
impl ser::Error for WireError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        WireError(msg.to_string())
    }
}

pub(super) fn too_long() -> WireError {
    WireError("value too long for the format".to_owned())
}

/// MessagePack's item encoding.
pub(super) struct MsgPack;

impl WireFormat for MsgPack {
    const WIDE_HEADER_LEN: usize = 5;

    fn nil(out: &mut BytesMut) {
        put(out, &[0xc0]);
    }
    fn bool(out: &mut BytesMut, v: bool) {
        put(out, &[if v { 0xc3 } else { 0xc2 }]);
    }
    fn uint(out: &mut BytesMut, v: u64) {
        if v < 0x80 {
            put(out, &[v as u8]);
        } else if let Ok(v) = u8::try_from(v) {
            put(out, &[0xcc, v]);
        } else if let Ok(v) = u16::try_from(v) {
            put_marked(out, 0xcd, v.to_be_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            put_marked(out, 0xce, v.to_be_bytes());
        } else {
            put_marked(out, 0xcf, v.to_be_bytes());
        }
    }
    fn neg_int(out: &mut BytesMut, v: i64) {
        if v >= -32 {
            put(out, &[v as u8]);
        } else if let Ok(v) = i8::try_from(v) {
            put(out, &[0xd0, v as u8]);
        } else if let Ok(v) = i16::try_from(v) {
            put_marked(out, 0xd1, v.to_be_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            put_marked(out, 0xd2, v.to_be_bytes());
        } else {
            put_marked(out, 0xd3, v.to_be_bytes());
        }
    }
    fn f32(out: &mut BytesMut, v: f32) {
        put_marked(out, 0xca, v.to_be_bytes());
    }
    fn f64(out: &mut BytesMut, v: f64) {
        put_marked(out, 0xcb, v.to_be_bytes());
    }
    fn str_header(len: usize) -> Result<Header, WireError> {
        Ok(if len < 32 {
            Header::new(0xa0 | len as u8, &[])
        } else if let Ok(n) = u8::try_from(len) {
            Header::new(0xd9, &[n])
        } else if let Ok(n) = u16::try_from(len) {
            Header::new(0xda, &n.to_be_bytes())
        } else {
            let n = u32::try_from(len).map_err(|_| too_long())?;
            Header::new(0xdb, &n.to_be_bytes())
        })
    }
    fn bin_header(len: usize) -> Result<Header, WireError> {
        Ok(if let Ok(n) = u8::try_from(len) {
            Header::new(0xc4, &[n])
        } else if let Ok(n) = u16::try_from(len) {
            Header::new(0xc5, &n.to_be_bytes())
        } else {
            let n = u32::try_from(len).map_err(|_| too_long())?;
            Header::new(0xc6, &n.to_be_bytes())
        })
    }
    fn array_header(len: usize) -> Result<Header, WireError> {
        Ok(if len < 16 {
            Header::new(0x90 | len as u8, &[])
        } else if let Ok(n) = u16::try_from(len) {
            Header::new(0xdc, &n.to_be_bytes())
        } else {
            let n = u32::try_from(len).map_err(|_| too_long())?;
            Header::new(0xdd, &n.to_be_bytes())
        })
    }
    fn map_header(len: usize) -> Result<Header, WireError> {
        Ok(if len < 16 {
            Header::new(0x80 | len as u8, &[])
        } else if let Ok(n) = u16::try_from(len) {
            Header::new(0xde, &n.to_be_bytes())
        } else {
            let n = u32::try_from(len).map_err(|_| too_long())?;
            Header::new(0xdf, &n.to_be_bytes())
        })
    }
    fn wide_array_header() -> Header {
        Header::new(0xdd, &[0; 4])
    }
    fn wide_map_header() -> Header {
        Header::new(0xdf, &[0; 4])
    }
    fn kind(first: u8) -> ItemKind {
        match first {
            0x80..=0x8f | 0xde | 0xdf => ItemKind::Map,
            0xa0..=0xbf | 0xd9..=0xdb => ItemKind::Str,
            _ => ItemKind::Other,
        }
    }
    #[inline]
    fn put_str(out: &mut BytesMut, v: &str) -> Result<(), WireError> {
        if v.len() < 32 {
            // A fixstr: one marker byte.
            out.reserve(1 + v.len());
            put(out, &[0xa0 | v.len() as u8]);
            out.extend_from_slice(v.as_bytes());
            Ok(())
        } else {
            let header = Self::str_header(v.len())?;
            out.reserve(usize::from(header.len) + v.len());
            header.put(out);
            out.extend_from_slice(v.as_bytes());
            Ok(())
        }
    }
    #[inline]
    fn put_key(out: &mut BytesMut, key: &'static str) {
        // Each key as one constant fixstr.
        let encoded: &[u8] = match key {
            "type" => b"\xa4type",
            "nsp" => b"\xa3nsp",
            "data" => b"\xa4data",
            "id" => b"\xa2id",
            other => {
                let _ = Self::put_str(out, other);
                return;
            }
        };
        out.extend_from_slice(encoded);
    }
}

/// Encode `packet` as the map `{type, nsp, data?, id?}` in format `F`.
pub(super) fn encode_packet<F: WireFormat, A: Serialize + ?Sized>(
    packet: &OutPacket<'_, A>,
    out: &mut Encoded,
) -> Result<(), EncodeError> {
    out.clear();
    out.binary = true;
    let result = write_packet::<F, A>(packet, &mut out.data);
    if result.is_err() {
        // Never leave half a packet behind for a caller that ignores errors.
        out.data.clear();
    }
    result
}

/// The payload of a packet being encoded.
enum OutData<'a, A: ?Sized> {
    None,
    /// CONNECT's object.
    Object(&'a A),
    /// CONNECT_ERROR's object or string.
    ObjectOrString(&'a A),
    /// `[event?, ...args]`.
    Args(ArgArray<'a, A>),
}

fn write_packet<F: WireFormat, A: Serialize + ?Sized>(
    packet: &OutPacket<'_, A>,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let (packet_type, nsp, data, id): (u64, &str, OutData<'_, A>, Option<u64>) = match *packet {
        OutPacket::Connect { nsp, data } => {
            (0, nsp, data.map_or(OutData::None, OutData::Object), None)
        }
        OutPacket::Disconnect { nsp } => (1, nsp, OutData::None, None),
        OutPacket::Event {
            nsp,
            event,
            args,
            ack,
        } => {
            if RESERVED_EVENTS.contains(&event) {
                return Err(EncodeError::ReservedEvent);
            }
            let data = ArgArray {
                event: Some(event),
                args,
            };
            (2, nsp, OutData::Args(data), ack)
        }
        OutPacket::Ack { nsp, id, args } => {
            let data = ArgArray { event: None, args };
            (3, nsp, OutData::Args(data), Some(id))
        }
        OutPacket::ConnectError { nsp, data } => (4, nsp, OutData::ObjectOrString(data), None),
    };
    if !nsp.starts_with('/') {
        return Err(EncodeError::BadNamespace);
    }
    let has_data = !matches!(data, OutData::None);
    let entries = 2 + usize::from(has_data) + usize::from(id.is_some());
    let serialize_error = |e: WireError| EncodeError::Serialize(e.0);

    let mut ser = WireSerializer::<F>::new(out);
    ser.header(F::map_header(entries).map_err(serialize_error)?);
    F::put_key(ser.out, "type");
    F::uint(ser.out, packet_type);
    F::put_key(ser.out, "nsp");
    ser.str(nsp).map_err(serialize_error)?;
    if has_data {
        F::put_key(ser.out, "data");
        let start = ser.out.len();
        match data {
            OutData::None => {}
            OutData::Object(v) => {
                v.serialize(&mut ser).map_err(serialize_error)?;
                if F::kind(ser.out[start]) != ItemKind::Map {
                    return Err(EncodeError::InvalidPayload(
                        "CONNECT data must be an object",
                    ));
                }
            }
            OutData::ObjectOrString(v) => {
                v.serialize(&mut ser).map_err(serialize_error)?;
                if F::kind(ser.out[start]) == ItemKind::Other {
                    return Err(EncodeError::InvalidPayload(
                        "CONNECT_ERROR data must be an object or a string",
                    ));
                }
            }
            OutData::Args(v) => v.serialize(&mut ser).map_err(serialize_error)?,
        }
    }
    if let Some(id) = id {
        F::put_key(ser.out, "id");
        F::uint(ser.out, id);
    }
    Ok(())
}

/// A serde serializer writing format `F` straight into a buffer, with the
/// data model of `serde_json` (see the module documentation).
pub(super) struct WireSerializer<'o, F> {
    out: &'o mut BytesMut,
    format: PhantomData<F>,
}

impl<'o, F: WireFormat> WireSerializer<'o, F> {
    /// A serializer appending to `out`.
    pub(super) fn new(out: &'o mut BytesMut) -> Self {
        WireSerializer {
            out,
            format: PhantomData,
        }
    }

    #[inline]
    fn header(&mut self, header: Header) {
        header.put(self.out);
    }

    #[inline]
    fn str(&mut self, v: &str) -> Result<(), WireError> {
        F::put_str(self.out, v)
    }

    fn int(&mut self, v: i64) {
        if v < 0 {
            F::neg_int(self.out, v);
        } else {
            F::uint(self.out, v as u64);
        }
    }

    /// Start a container: a real header when the length is known, else a
    /// placeholder patched by [`Compound::finish`].
    fn container(
        &mut self,
        len: Option<usize>,
        map: bool,
    ) -> Result<Compound<'_, 'o, F>, WireError> {
        let start = self.out.len();
        let declared = match len {
            Some(len) => {
                let header = if map {
                    F::map_header(len)?
                } else {
                    F::array_header(len)?
                };
                self.header(header);
                Some(len)
            }
            None => {
                let header = if map {
                    F::wide_map_header()
                } else {
                    F::wide_array_header()
                };
                self.header(header);
                None
            }
        };
        Ok(Compound {
            ser: self,
            start,
            declared,
            count: 0,
            map,
        })
    }
}

/// An array or map being written; counts its items to check (or patch)
/// the header.
pub(super) struct Compound<'a, 'o, F> {
    ser: &'a mut WireSerializer<'o, F>,
    /// Where the header starts.
    start: usize,
    /// The length in the header, `None` for a placeholder.
    declared: Option<usize>,
    count: usize,
    map: bool,
}

impl<F: WireFormat> Compound<'_, '_, F> {
    fn item<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WireError> {
        self.count += 1;
        v.serialize(&mut *self.ser)
    }

    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), WireError> {
        self.count += 1;
        key.serialize(KeyWriter {
            ser: &mut *self.ser,
        })
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) -> Result<(), WireError> {
        self.count += 1;
        self.ser.str(key)?;
        v.serialize(&mut *self.ser)
    }

    fn finish(self) -> Result<(), WireError> {
        match self.declared {
            Some(n) if n == self.count => Ok(()),
            Some(_) => Err(WireError(
                "a sequence or map serialized a different length than it declared".to_owned(),
            )),
            None => {
                let header = if self.map {
                    F::map_header(self.count)?
                } else {
                    F::array_header(self.count)?
                };
                let header = header.as_slice();
                let body = self.start + F::WIDE_HEADER_LEN;
                let out = &mut *self.ser.out;
                if header.len() < F::WIDE_HEADER_LEN {
                    // Shift the body left so the output stays canonical.
                    let end = out.len();
                    out.copy_within(body..end, self.start + header.len());
                    out.truncate(end - (F::WIDE_HEADER_LEN - header.len()));
                }
                out[self.start..self.start + header.len()].copy_from_slice(header);
                Ok(())
            }
        }
    }
}

fn variant_wrapper<F: WireFormat>(
    ser: &mut WireSerializer<'_, F>,
    variant: &str,
) -> Result<(), WireError> {
    ser.header(F::map_header(1)?);
    ser.str(variant)
}

impl<'a, 'o, F: WireFormat> Serializer for &'a mut WireSerializer<'o, F> {
    type Ok = ();
    type Error = WireError;
    type SerializeSeq = Compound<'a, 'o, F>;
    type SerializeTuple = Compound<'a, 'o, F>;
    type SerializeTupleStruct = Compound<'a, 'o, F>;
    type SerializeTupleVariant = Compound<'a, 'o, F>;
    type SerializeMap = Compound<'a, 'o, F>;
    type SerializeStruct = Compound<'a, 'o, F>;
    type SerializeStructVariant = Compound<'a, 'o, F>;

    fn serialize_bool(self, v: bool) -> Result<(), WireError> {
        F::bool(self.out, v);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), WireError> {
        self.int(i64::from(v));
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), WireError> {
        self.int(i64::from(v));
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), WireError> {
        self.int(i64::from(v));
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), WireError> {
        self.int(v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), WireError> {
        if let Ok(v) = i64::try_from(v) {
            self.int(v);
        } else if let Ok(v) = u64::try_from(v) {
            F::uint(self.out, v);
        } else {
            return Err(WireError("integer out of the 64-bit range".to_owned()));
        }
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), WireError> {
        F::uint(self.out, u64::from(v));
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), WireError> {
        F::uint(self.out, u64::from(v));
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), WireError> {
        F::uint(self.out, u64::from(v));
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), WireError> {
        F::uint(self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), WireError> {
        let v = u64::try_from(v)
            .map_err(|_| WireError("integer out of the 64-bit range".to_owned()))?;
        F::uint(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), WireError> {
        F::f32(self.out, v);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), WireError> {
        F::f64(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), WireError> {
        self.str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), WireError> {
        self.str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), WireError> {
        let header = F::bin_header(v.len())?;
        self.out.reserve(usize::from(header.len) + v.len());
        self.header(header);
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), WireError> {
        F::nil(self.out);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), WireError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), WireError> {
        F::nil(self.out);
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), WireError> {
        F::nil(self.out);
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), WireError> {
        self.str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), WireError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), WireError> {
        variant_wrapper(self, variant)?;
        v.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, 'o, F>, WireError> {
        self.container(len, false)
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, 'o, F>, WireError> {
        self.container(Some(len), false)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'o, F>, WireError> {
        self.container(Some(len), false)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'o, F>, WireError> {
        variant_wrapper(self, variant)?;
        self.container(Some(len), false)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, 'o, F>, WireError> {
        self.container(len, true)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'o, F>, WireError> {
        self.container(Some(len), true)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'o, F>, WireError> {
        variant_wrapper(self, variant)?;
        self.container(Some(len), true)
    }
}

impl<F: WireFormat> ser::SerializeSeq for Compound<'_, '_, F> {
    type Ok = ();
    type Error = WireError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WireError> {
        self.item(v)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl<F: WireFormat> ser::SerializeTuple for Compound<'_, '_, F> {
    type Ok = ();
    type Error = WireError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WireError> {
        self.item(v)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl<F: WireFormat> ser::SerializeTupleStruct for Compound<'_, '_, F> {
    type Ok = ();
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WireError> {
        self.item(v)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl<F: WireFormat> ser::SerializeTupleVariant for Compound<'_, '_, F> {
    type Ok = ();
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WireError> {
        self.item(v)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl<F: WireFormat> ser::SerializeMap for Compound<'_, '_, F> {
    type Ok = ();
    type Error = WireError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), WireError> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WireError> {
        v.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl<F: WireFormat> ser::SerializeStruct for Compound<'_, '_, F> {
    type Ok = ();
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), WireError> {
        self.field(key, v)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

impl<F: WireFormat> ser::SerializeStructVariant for Compound<'_, '_, F> {
    type Ok = ();
    type Error = WireError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), WireError> {
        self.field(key, v)
    }
    fn end(self) -> Result<(), WireError> {
        self.finish()
    }
}

/// Writes a map key as a string: strings directly, anything else through
/// [`MapKeySerializer`] (numbers and booleans become their text).
struct KeyWriter<'a, 'o, F> {
    ser: &'a mut WireSerializer<'o, F>,
}

impl<F: WireFormat> KeyWriter<'_, '_, F> {
    fn text(self, text: Result<String, crate::value::ValueError>) -> Result<(), WireError> {
        let text = text.map_err(|e| WireError(e.0))?;
        self.ser.str(&text)
    }
}

macro_rules! key_via_text {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<(), WireError> {
            let text = MapKeySerializer.$method($($arg),*);
            self.text(text)
        }
    )*};
}

impl<'a, 'o, F: WireFormat> Serializer for KeyWriter<'a, 'o, F> {
    type Ok = ();
    type Error = WireError;
    type SerializeSeq = ser::Impossible<(), WireError>;
    type SerializeTuple = ser::Impossible<(), WireError>;
    type SerializeTupleStruct = ser::Impossible<(), WireError>;
    type SerializeTupleVariant = ser::Impossible<(), WireError>;
    type SerializeMap = ser::Impossible<(), WireError>;
    type SerializeStruct = ser::Impossible<(), WireError>;
    type SerializeStructVariant = ser::Impossible<(), WireError>;

    fn serialize_str(self, v: &str) -> Result<(), WireError> {
        self.ser.str(v)
    }

    key_via_text!(
        serialize_bool(v: bool),
        serialize_i8(v: i8),
        serialize_i16(v: i16),
        serialize_i32(v: i32),
        serialize_i64(v: i64),
        serialize_i128(v: i128),
        serialize_u8(v: u8),
        serialize_u16(v: u16),
        serialize_u32(v: u32),
        serialize_u64(v: u64),
        serialize_u128(v: u128),
        serialize_f32(v: f32),
        serialize_f64(v: f64),
        serialize_char(v: char),
        serialize_bytes(v: &[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(name: &'static str),
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), WireError> {
        let text = MapKeySerializer.serialize_some(v);
        self.text(text)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), WireError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), WireError> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, WireError> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, WireError> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, WireError> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, WireError> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, WireError> {
        Err(key_error())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, WireError> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, WireError> {
        Err(key_error())
    }
}

fn key_error() -> WireError {
    WireError("map key must be a string".to_owned())
}

// ---------------------------------------------------------------------------
// Decoding, shared with CBOR.
// ---------------------------------------------------------------------------

/// One step of a decoded item stream.
#[derive(Debug)]
pub(super) enum Token {
    /// A complete scalar (or binary, or string).
    Value(Value),
    /// An array of this many items; `None` until a [`Token::Break`] (CBOR).
    Array(Option<usize>),
    /// A map of this many entries; `None` until a [`Token::Break`] (CBOR).
    Map(Option<usize>),
    /// The end of an indefinite-length container (CBOR).
    Break,
}

/// A format's item reader.
pub(super) trait TokenReader {
    /// The next token; errors on truncation or invalid encoding.
    fn next_token(&mut self) -> Result<Token, DecodeError>;
    /// How many bytes are left: every item takes at least one, which bounds
    /// what a declared length may reserve.
    fn remaining(&self) -> usize;
}

/// Most items reserved up front for a container; more grow as they arrive.
const PREALLOCATE_ITEMS: usize = 64;

pub(super) fn bad_payload(what: &str) -> DecodeError {
    DecodeError::BadPayload(what.to_owned())
}

enum Frame {
    Array {
        items: Vec<Value>,
        left: Option<usize>,
    },
    Map {
        entries: Map,
        left: Option<usize>,
        key: Option<String>,
    },
}

/// Read one whole value, with arrays and maps nested at most `max_depth`
/// deep. Iterative: the depth limit, not the stack, bounds nesting.
pub(super) fn read_value<R: TokenReader>(
    reader: &mut R,
    max_depth: usize,
) -> Result<Value, DecodeError> {
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let token = reader.next_token()?;
        let mut value = match token {
            Token::Value(v) => v,
            Token::Break => match stack.pop() {
                Some(Frame::Array { items, left: None }) => Value::Array(items),
                Some(Frame::Map {
                    entries,
                    left: None,
                    key: None,
                }) => Value::Object(entries),
                _ => return Err(bad_payload("unexpected break")),
            },
            Token::Array(len) => {
                if stack.len() >= max_depth {
                    return Err(bad_payload("nesting too deep"));
                }
                if len.is_some_and(|n| n > reader.remaining()) {
                    return Err(bad_payload("array longer than the message"));
                }
                if len == Some(0) {
                    Value::Array(Vec::new())
                } else {
                    let items = Vec::with_capacity(len.unwrap_or(0).min(PREALLOCATE_ITEMS));
                    stack.push(Frame::Array { items, left: len });
                    continue;
                }
            }
            Token::Map(len) => {
                if stack.len() >= max_depth {
                    return Err(bad_payload("nesting too deep"));
                }
                if len.is_some_and(|n| n > reader.remaining() / 2) {
                    return Err(bad_payload("map longer than the message"));
                }
                if len == Some(0) {
                    Value::Object(Vec::new())
                } else {
                    let entries = Vec::with_capacity(len.unwrap_or(0).min(PREALLOCATE_ITEMS));
                    stack.push(Frame::Map {
                        entries,
                        left: len,
                        key: None,
                    });
                    continue;
                }
            }
        };
        // Put the finished value into its parent, closing each parent it
        // completes.
        loop {
            let complete = match stack.last_mut() {
                None => return Ok(value),
                Some(Frame::Array { items, left }) => {
                    items.push(value);
                    count_down(left)
                }
                Some(Frame::Map { entries, left, key }) => match key.take() {
                    None => {
                        match value {
                            Value::String(s) => *key = Some(s),
                            _ => return Err(bad_payload("map key is not a string")),
                        }
                        false
                    }
                    Some(k) => {
                        entries.push((k, value));
                        count_down(left)
                    }
                },
            };
            if !complete {
                break;
            }
            value = match stack.pop() {
                Some(Frame::Array { items, .. }) => Value::Array(items),
                Some(Frame::Map { entries, .. }) => Value::Object(entries),
                None => unreachable!("a parent was just updated"),
            };
        }
    }
}

/// One more item placed; whether a definite-length container is now full.
fn count_down(left: &mut Option<usize>) -> bool {
    match left {
        Some(n) => {
            *n -= 1;
            *n == 0
        }
        None => false,
    }
}

/// Decode one whole message into a packet.
pub(super) fn decode_packet<R: TokenReader>(
    reader: &mut R,
    limits: &DecodeLimits,
) -> Result<Packet, DecodeError> {
    // The packet map itself is one level above the payload's own nesting,
    // which `max_depth` counts as the JSON parser does.
    let map = read_value(reader, limits.max_depth.saturating_add(1))?;
    if reader.remaining() != 0 {
        return Err(bad_payload("trailing bytes after the packet"));
    }
    packet_from_map(map)
}

/// Decode `bytes` as exactly one MessagePack value (notepack's JavaScript
/// extension types understood as for packets), nested at most `max_depth`
/// deep; trailing bytes are an error. For other wire formats built on
/// MessagePack (the cluster bus).
pub(crate) fn decode_value(bytes: &Bytes, max_depth: usize) -> Result<Value, DecodeError> {
    let mut reader = MsgPackReader { buf: bytes, pos: 0 };
    let value = read_value(&mut reader, max_depth)?;
    if reader.remaining() != 0 {
        return Err(bad_payload("trailing bytes after the value"));
    }
    Ok(value)
}

/// Validate a decoded `{type, nsp, data?, id?}` map into a [`Packet`], with
/// the rules of the reference `isPacketValid`:
/// - `type` an integer 0-6 (5 and 6 read as EVENT and ACK);
/// - `nsp` a string starting with `/`;
/// - CONNECT: `data` absent or an object; DISCONNECT: no `data`;
///   CONNECT_ERROR: an object or a string;
/// - EVENT: a non-empty array whose first item is a string that is not a
///   reserved event name, or a number (its decimal text becomes the name);
/// - ACK: an array, and an `id`;
/// - `id` a non-negative integer, only on EVENT and ACK.
///
/// A null `data` or `id` counts as absent (python writes `data: nil`).
/// Unknown keys are ignored; a repeated key keeps its last value, as a
/// JavaScript object would.
pub(super) fn packet_from_map(map: Value) -> Result<Packet, DecodeError> {
    let Value::Object(entries) = map else {
        return Err(DecodeError::InvalidPayload("packet is not a map"));
    };
    let (mut packet_type, mut nsp, mut data, mut id) = (None, None, None, None);
    for (key, value) in entries {
        let slot = match key.as_str() {
            "type" => &mut packet_type,
            "nsp" => &mut nsp,
            "data" => &mut data,
            "id" => &mut id,
            _ => continue,
        };
        *slot = Some(value);
    }
    let packet_type = match packet_type {
        Some(Value::Number(Number::PosInt(n))) => u8::try_from(n).ok(),
        _ => None,
    }
    .ok_or(DecodeError::UnknownType)?;
    let nsp = match nsp {
        Some(Value::String(s)) if s.starts_with('/') => Str::from(s),
        _ => return Err(DecodeError::BadNamespace),
    };
    let data = data.filter(|d| *d != Value::Null);
    let id = match id {
        None | Some(Value::Null) => None,
        Some(Value::Number(Number::PosInt(n))) => Some(n),
        Some(_) => return Err(DecodeError::BadAckId),
    };
    let data = match packet_type {
        0 => match data {
            None => PacketData::Connect(None),
            Some(v @ Value::Object(_)) => PacketData::Connect(Some(v)),
            Some(_) => {
                return Err(DecodeError::InvalidPayload(
                    "CONNECT data must be an object",
                ))
            }
        },
        1 => match data {
            None => PacketData::Disconnect,
            Some(_) => return Err(DecodeError::InvalidPayload("DISCONNECT carries no data")),
        },
        2 | 5 => {
            let Some(Value::Array(items)) = data else {
                return Err(DecodeError::InvalidPayload("EVENT data must be an array"));
            };
            let mut items = items.into_iter();
            let name = match items.next() {
                Some(Value::String(s)) => {
                    if RESERVED_EVENTS.contains(&s.as_str()) {
                        return Err(DecodeError::ReservedEvent);
                    }
                    Str::from(s)
                }
                Some(Value::Number(n)) => Str::from(match n {
                    Number::PosInt(n) => itoa::Buffer::new().format(n).to_owned(),
                    Number::NegInt(n) => itoa::Buffer::new().format(n).to_owned(),
                    Number::Float(n) => number_text(n),
                }),
                Some(_) => {
                    return Err(DecodeError::InvalidPayload(
                        "EVENT name must be a string or a number",
                    ))
                }
                None => return Err(DecodeError::InvalidPayload("EVENT data must not be empty")),
            };
            PacketData::Event {
                name,
                args: Args::from_values(items.collect()),
                ack: id,
            }
        }
        3 | 6 => {
            let Some(Value::Array(items)) = data else {
                return Err(DecodeError::InvalidPayload("ACK data must be an array"));
            };
            PacketData::Ack {
                id: id.ok_or(DecodeError::BadAckId)?,
                args: Args::from_values(items),
            }
        }
        4 => match data {
            Some(v @ (Value::Object(_) | Value::String(_))) => PacketData::ConnectError(v),
            _ => {
                return Err(DecodeError::InvalidPayload(
                    "CONNECT_ERROR data must be an object or a string",
                ))
            }
        },
        _ => return Err(DecodeError::UnknownType),
    };
    if id.is_some() && !matches!(data, PacketData::Event { .. } | PacketData::Ack { .. }) {
        return Err(DecodeError::BadAckId);
    }
    Ok(Packet { nsp, data })
}

/// Reads MessagePack items from a received buffer; binary values become
/// slices of it.
struct MsgPackReader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

fn truncated() -> DecodeError {
    bad_payload("truncated MessagePack")
}

impl MsgPackReader<'_> {
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

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<usize, DecodeError> {
        // Saturate on 16-bit targets: the length check rejects it anyway.
        Ok(usize::try_from(u32::from_be_bytes(self.array()?)).unwrap_or(usize::MAX))
    }

    fn str(&mut self, len: usize) -> Result<Token, DecodeError> {
        let range = self.take(len)?;
        let text = std::str::from_utf8(&self.buf[range])
            .map_err(|_| bad_payload("string is not valid UTF-8"))?;
        Ok(Token::Value(Value::String(text.to_owned())))
    }

    fn bin(&mut self, len: usize) -> Result<Token, DecodeError> {
        let range = self.take(len)?;
        Ok(Token::Value(Value::Binary(self.buf.slice(range))))
    }

    /// An extension value, as notepack writes JavaScript types.
    fn ext(&mut self, len: usize, fixed: bool) -> Result<Token, DecodeError> {
        let ext_type = self.u8()? as i8;
        let range = self.take(len)?;
        let value = match (ext_type, fixed, len) {
            // `undefined`.
            (0, true, 1) => Value::Null,
            // A `Date`: milliseconds since the epoch.
            (0, true, 8) => Value::from(i64::from_be_bytes(
                self.buf[range].try_into().expect("8 bytes"),
            )),
            // An `ArrayBuffer` or typed array.
            (0, false, _) => Value::Binary(self.buf.slice(range)),
            _ => {
                return Err(DecodeError::BadPayload(format!(
                    "unsupported MessagePack extension type {ext_type}"
                )))
            }
        };
        Ok(Token::Value(value))
    }
}

impl TokenReader for MsgPackReader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn next_token(&mut self) -> Result<Token, DecodeError> {
        let marker = self.u8()?;
        let value = match marker {
            0x00..=0x7f => Value::from(u64::from(marker)),
            0x80..=0x8f => return Ok(Token::Map(Some(usize::from(marker & 0x0f)))),
            0x90..=0x9f => return Ok(Token::Array(Some(usize::from(marker & 0x0f)))),
            0xa0..=0xbf => return self.str(usize::from(marker & 0x1f)),
            0xc0 => Value::Null,
            0xc1 => return Err(bad_payload("reserved MessagePack marker 0xc1")),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let len = usize::from(self.u8()?);
                return self.bin(len);
            }
            0xc5 => {
                let len = self.u16()?;
                return self.bin(len);
            }
            0xc6 => {
                let len = self.u32()?;
                return self.bin(len);
            }
            0xc7 => {
                let len = usize::from(self.u8()?);
                return self.ext(len, false);
            }
            0xc8 => {
                let len = self.u16()?;
                return self.ext(len, false);
            }
            0xc9 => {
                let len = self.u32()?;
                return self.ext(len, false);
            }
            0xca => Value::from(f64::from(f32::from_be_bytes(self.array()?))),
            0xcb => Value::from(f64::from_be_bytes(self.array()?)),
            0xcc => Value::from(u64::from(self.u8()?)),
            0xcd => Value::from(u64::from(u16::from_be_bytes(self.array()?))),
            0xce => Value::from(u64::from(u32::from_be_bytes(self.array()?))),
            0xcf => Value::from(u64::from_be_bytes(self.array()?)),
            0xd0 => Value::from(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Value::from(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Value::from(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Value::from(i64::from_be_bytes(self.array()?)),
            0xd4 => return self.ext(1, true),
            0xd5 => return self.ext(2, true),
            0xd6 => return self.ext(4, true),
            0xd7 => return self.ext(8, true),
            0xd8 => return self.ext(16, true),
            0xd9 => {
                let len = usize::from(self.u8()?);
                return self.str(len);
            }
            0xda => {
                let len = self.u16()?;
                return self.str(len);
            }
            0xdb => {
                let len = self.u32()?;
                return self.str(len);
            }
            0xdc => return Ok(Token::Array(Some(self.u16()?))),
            0xdd => return Ok(Token::Array(Some(self.u32()?))),
            0xde => return Ok(Token::Map(Some(self.u16()?))),
            0xdf => return Ok(Token::Map(Some(self.u32()?))),
            0xe0..=0xff => Value::from(i64::from(marker as i8)),
        };
        Ok(Token::Value(value))
    }
}

// ---------------------------------------------------------------------------
// Lazy decoding: the envelope is read, the arguments stay as bytes.
// ---------------------------------------------------------------------------

/// How many open containers the validating skip keeps inline before its
/// stack spills to the heap (only for nesting deeper than the default
/// limit).
const INLINE_LEVELS: usize = 32;

/// Truncation, as the validating skip reports it.
const TRUNCATED: &str = "truncated MessagePack";

/// An extension type we do not read (the error is worded by
/// [`MsgPackReader::ext`]).
const UNSUPPORTED_EXT: &str = "unsupported MessagePack extension type";

/// Marks a map's entry in the skip stack: its count is of keys and values.
const MAP_FLAG: u64 = 1 << 63;

/// Check that `bytes` are UTF-8; ASCII, the common case, is checked by a
/// cheaper loop first.
fn check_utf8(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
        Ok(())
    } else {
        Err(bad_payload("string is not valid UTF-8"))
    }
}

/// Whether `marker` starts a MessagePack string.
fn is_str_marker(marker: u8) -> bool {
    matches!(marker, 0xa0..=0xbf | 0xd9..=0xdb)
}

impl<'a> MsgPackReader<'a> {
    /// The byte at the read position, without consuming it.
    fn peek(&self) -> Result<u8, DecodeError> {
        self.buf.get(self.pos).copied().ok_or_else(truncated)
    }

    /// The length of a string whose marker was just read.
    fn str_len(&mut self, marker: u8) -> Result<usize, DecodeError> {
        match marker {
            0xa0..=0xbf => Ok(usize::from(marker & 0x1f)),
            0xd9 => Ok(usize::from(self.u8()?)),
            0xda => self.u16(),
            _ => self.u32(),
        }
    }

    /// Read a string item's bytes (validated as UTF-8), or `None` when the
    /// item is not a string (nothing consumed then).
    fn str_range(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        let range = self.raw_str_range()?;
        if let Some(range) = &range {
            check_utf8(&self.buf[range.clone()])?;
        }
        Ok(range)
    }

    /// [`MsgPackReader::str_range`] without the UTF-8 check, for strings
    /// checked already or compared with ASCII names.
    #[inline]
    fn raw_str_range(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        self.raw_str().map_err(bad_payload)
    }

    #[inline]
    fn raw_str(&mut self) -> Result<Option<Range<usize>>, &'static str> {
        let marker = *self.buf.get(self.pos).ok_or(TRUNCATED)?;
        let len = match marker {
            0xa0..=0xbf => {
                self.pos += 1;
                usize::from(marker & 0x1f)
            }
            0xd9..=0xdb => {
                self.pos += 1;
                match marker {
                    0xd9 => usize::from(self.next_byte()?),
                    0xda => self.be_len::<2>()?,
                    _ => self.be_len::<4>()?,
                }
            }
            _ => return Ok(None),
        };
        let start = self.skip_bytes(len)?;
        Ok(Some(start..start + len))
    }

    /// Skip one whole item, checking everything [`read_value`] checks
    /// (encoding, truncation, UTF-8, string map keys, extension types,
    /// declared lengths, and nesting: a container `level` deep, or deeper,
    /// fails when `level >= limit`), without building anything. Iterative,
    /// so nesting never recurses.
    fn skip_checked(&mut self, level: usize, limit: usize) -> Result<(), DecodeError> {
        match self.skip_inner(level, limit) {
            Ok(()) => Ok(()),
            Err(UNSUPPORTED_EXT) => {
                // `self.pos` is at the extension: its reader words the error.
                self.next_token()?;
                Err(bad_payload(UNSUPPORTED_EXT))
            }
            Err(e) => Err(bad_payload(e)),
        }
    }

    /// The byte at the read position, consumed.
    #[inline]
    fn next_byte(&mut self) -> Result<u8, &'static str> {
        let byte = *self.buf.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(byte)
    }

    /// Consume `n` bytes; where they start.
    #[inline]
    fn skip_bytes(&mut self, n: usize) -> Result<usize, &'static str> {
        let start = self.pos;
        if n > self.buf.len() - start {
            return Err(TRUNCATED);
        }
        self.pos = start + n;
        Ok(start)
    }

    /// A big-endian length of `N` bytes (saturated on narrow targets).
    #[inline]
    fn be_len<const N: usize>(&mut self) -> Result<usize, &'static str> {
        let start = self.skip_bytes(N)?;
        let mut len = 0u64;
        for &b in &self.buf[start..start + N] {
            len = len << 8 | u64::from(b);
        }
        Ok(usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// [`MsgPackReader::skip_checked`]'s loop, with errors as static text
    /// (returned in registers).
    fn skip_inner(&mut self, level: usize, limit: usize) -> Result<(), &'static str> {
        // Items left in the innermost open container (keys and values for a
        // map, with `MAP_FLAG`); the enclosing ones' counts wait in `outer`.
        let mut outer: SmallVec<[u64; INLINE_LEVELS]> = SmallVec::new();
        let mut depth = 0usize;
        let mut left = 0u64;
        loop {
            let marker = self.next_byte()?;
            if left & MAP_FLAG != 0 && left % 2 == 0 && !is_str_marker(marker) {
                return Err("map key is not a string");
            }
            let container = match marker {
                0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => None,
                0x80..=0x8f => Some((usize::from(marker & 0x0f), true)),
                0x90..=0x9f => Some((usize::from(marker & 0x0f), false)),
                0xa0..=0xbf | 0xd9..=0xdb => {
                    let len = match marker {
                        0xd9 => usize::from(self.next_byte()?),
                        0xda => self.be_len::<2>()?,
                        0xdb => self.be_len::<4>()?,
                        _ => usize::from(marker & 0x1f),
                    };
                    let start = self.skip_bytes(len)?;
                    let text = &self.buf[start..start + len];
                    if !text.is_ascii() && std::str::from_utf8(text).is_err() {
                        return Err("string is not valid UTF-8");
                    }
                    None
                }
                0xc1 => return Err("reserved MessagePack marker 0xc1"),
                0xc4 => {
                    let len = usize::from(self.next_byte()?);
                    self.skip_bytes(len)?;
                    None
                }
                0xc5 => {
                    let len = self.be_len::<2>()?;
                    self.skip_bytes(len)?;
                    None
                }
                0xc6 => {
                    let len = self.be_len::<4>()?;
                    self.skip_bytes(len)?;
                    None
                }
                0xc7..=0xc9 | 0xd4..=0xd8 => {
                    let at = self.pos - 1;
                    let (len, fixed) = match marker {
                        0xc7 => (usize::from(self.next_byte()?), false),
                        0xc8 => (self.be_len::<2>()?, false),
                        0xc9 => (self.be_len::<4>()?, false),
                        _ => (1 << (marker - 0xd4), true),
                    };
                    let ext_type = self.next_byte()?;
                    self.skip_bytes(len)?;
                    // The types `MsgPackReader::ext` reads.
                    if !matches!((ext_type, fixed, len), (0, true, 1 | 8) | (0, false, _)) {
                        self.pos = at;
                        return Err(UNSUPPORTED_EXT);
                    }
                    None
                }
                0xca | 0xce | 0xd2 => {
                    self.skip_bytes(4)?;
                    None
                }
                0xcb | 0xcf | 0xd3 => {
                    self.skip_bytes(8)?;
                    None
                }
                0xcc | 0xd0 => {
                    self.skip_bytes(1)?;
                    None
                }
                0xcd | 0xd1 => {
                    self.skip_bytes(2)?;
                    None
                }
                0xdc => Some((self.be_len::<2>()?, false)),
                0xdd => Some((self.be_len::<4>()?, false)),
                0xde => Some((self.be_len::<2>()?, true)),
                0xdf => Some((self.be_len::<4>()?, true)),
            };
            if let Some((len, map)) = container {
                if level.saturating_add(depth) >= limit {
                    return Err("nesting too deep");
                }
                let remaining = self.buf.len() - self.pos;
                if map && len > remaining / 2 {
                    return Err("map longer than the message");
                }
                if !map && len > remaining {
                    return Err("array longer than the message");
                }
                if len > 0 {
                    if depth > 0 {
                        outer.push(left);
                    }
                    depth += 1;
                    // Bounded by the message length checked above.
                    let items = len as u64 * if map { 2 } else { 1 };
                    left = if map { items | MAP_FLAG } else { items };
                    continue;
                }
            }
            // One item done: count it in its container, closing each
            // container it completes.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                left -= 1;
                if left & !MAP_FLAG != 0 {
                    break;
                }
                depth -= 1;
                left = outer.pop().unwrap_or(0);
            }
        }
    }

    /// Skip one item already validated by [`MsgPackReader::skip_checked`].
    fn skip(&mut self) -> Result<(), DecodeError> {
        self.skip_checked(0, usize::MAX)
    }
}

/// Whether `name` is one of [`RESERVED_EVENTS`].
fn is_reserved(name: &[u8]) -> bool {
    let reserved = matches!(
        name,
        b"connect"
            | b"connect_error"
            | b"disconnect"
            | b"disconnecting"
            | b"newListener"
            | b"removeListener"
    );
    debug_assert_eq!(
        reserved,
        RESERVED_EVENTS.iter().any(|r| r.as_bytes() == name)
    );
    reserved
}

/// A key of the packet map.
enum EnvelopeKey {
    Type,
    Nsp,
    Data,
    Id,
    Other,
}

/// What the packet's `type` and `id` can be, as [`packet_from_map`] tells
/// them apart.
enum Scalar {
    /// A non-negative integer.
    Uint(u64),
    /// `nil` or `undefined`.
    Null,
    /// Anything else.
    Other,
}

/// Read a `type` or `id` value (any item, checked as [`read_value`] does);
/// positive fixints, the common case, without building a [`Value`].
fn read_scalar(reader: &mut MsgPackReader<'_>, max_depth: usize) -> Result<Scalar, DecodeError> {
    match reader.peek()? {
        marker @ 0x00..=0x7f => {
            reader.pos += 1;
            Ok(Scalar::Uint(u64::from(marker)))
        }
        _ => Ok(match read_value(reader, max_depth)? {
            Value::Number(Number::PosInt(n)) => Scalar::Uint(n),
            Value::Null => Scalar::Null,
            _ => Scalar::Other,
        }),
    }
}

/// What the packet's `data` entry is, and where it starts.
#[derive(Debug, Clone, Copy)]
struct DataSlot {
    /// Where the item starts in the message.
    at: usize,
    kind: DataKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    /// `nil` or JavaScript `undefined`: absent.
    Null,
    /// An array of `len` items whose first item starts at `items`.
    Array {
        len: usize,
        items: usize,
    },
    Map,
    Str,
    Other,
}

/// Decode a MessagePack packet reading only its envelope: `type`, `nsp`
/// and `id` are read, the whole message is validated in one pass as
/// [`decode_packet`] would, and an EVENT's or ACK's arguments stay as a
/// range of the received bytes (see [`MsgPackArgs`]).
/// Returns what [`Parser::decode`] does, so the packet is built in place.
#[inline]
fn decode_lazy(bytes: &Bytes, limits: &DecodeLimits) -> Result<Option<Packet>, DecodeError> {
    let mut reader = MsgPackReader { buf: bytes, pos: 0 };
    // The packet map is one level above the payload, as in `decode_packet`.
    let limit = limits.max_depth.saturating_add(1);
    let marker = reader.peek()?;
    let entries = match marker {
        0x80..=0x8f => {
            reader.pos += 1;
            usize::from(marker & 0x0f)
        }
        0xde => {
            reader.pos += 1;
            reader.u16()?
        }
        0xdf => {
            reader.pos += 1;
            reader.u32()?
        }
        _ => {
            reader.skip_checked(0, limit)?;
            if reader.remaining() != 0 {
                return Err(bad_payload("trailing bytes after the packet"));
            }
            return Err(DecodeError::InvalidPayload("packet is not a map"));
        }
    };
    if entries > reader.remaining() / 2 {
        return Err(bad_payload("map longer than the message"));
    }
    let (mut packet_type, mut nsp, mut data, mut id) = (None, None, None, None);
    for _ in 0..entries {
        let key = match reader.raw_str() {
            Ok(Some(key)) => key,
            Ok(None) => return Err(bad_payload("map key is not a string")),
            Err(e) => return Err(bad_payload(e)),
        };
        let key = match &bytes[key] {
            b"type" => EnvelopeKey::Type,
            b"nsp" => EnvelopeKey::Nsp,
            b"data" => EnvelopeKey::Data,
            b"id" => EnvelopeKey::Id,
            other => {
                check_utf8(other)?;
                EnvelopeKey::Other
            }
        };
        match key {
            EnvelopeKey::Type => packet_type = Some(read_scalar(&mut reader, limit - 1)?),
            EnvelopeKey::Id => id = Some(read_scalar(&mut reader, limit - 1)?),
            EnvelopeKey::Nsp if bytes.get(reader.pos..reader.pos + 2) == Some(b"\xa1/") => {
                // The main namespace, the common case.
                nsp = Some(Some(reader.pos + 1..reader.pos + 2));
                reader.pos += 2;
            }
            EnvelopeKey::Nsp => {
                let at = reader.pos;
                nsp = Some(reader.str_range()?);
                if nsp == Some(None) {
                    reader.pos = at;
                    reader.skip_checked(1, limit)?;
                }
            }
            EnvelopeKey::Data => {
                let at = reader.pos;
                let marker = reader.peek()?;
                let kind = match marker {
                    0xc0 => DataKind::Null,
                    0xd4 if bytes.get(at + 1) == Some(&0) => DataKind::Null,
                    0x90..=0x9f | 0xdc | 0xdd => {
                        reader.pos += 1;
                        let len = match marker {
                            0xdc => reader.u16()?,
                            0xdd => reader.u32()?,
                            _ => usize::from(marker & 0x0f),
                        };
                        let items = reader.pos;
                        reader.pos = at;
                        DataKind::Array { len, items }
                    }
                    0x80..=0x8f | 0xde | 0xdf => DataKind::Map,
                    _ if is_str_marker(marker) => DataKind::Str,
                    _ => DataKind::Other,
                };
                reader.skip_checked(1, limit)?;
                data = Some(DataSlot { at, kind });
            }
            EnvelopeKey::Other => reader.skip_checked(1, limit)?,
        }
    }
    if reader.remaining() != 0 {
        return Err(bad_payload("trailing bytes after the packet"));
    }

    // The rules of `packet_from_map`, in the same order.
    let packet_type = match packet_type {
        Some(Scalar::Uint(n)) => u8::try_from(n).ok(),
        _ => None,
    }
    .ok_or(DecodeError::UnknownType)?;
    let nsp = match nsp {
        Some(Some(range)) if bytes[range.clone()].starts_with(b"/") => {
            if range.len() == 1 {
                Str::from_static("/")
            } else {
                Str::try_from(bytes.slice(range)).map_err(|_| DecodeError::BadNamespace)?
            }
        }
        _ => return Err(DecodeError::BadNamespace),
    };
    let data = data.filter(|d| d.kind != DataKind::Null);
    let id = match id {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Uint(n)) => Some(n),
        Some(Scalar::Other) => return Err(DecodeError::BadAckId),
    };
    // A value already validated, read whole (CONNECT and CONNECT_ERROR).
    let whole = |at: usize| {
        let mut reader = MsgPackReader {
            buf: bytes,
            pos: at,
        };
        read_value(&mut reader, usize::MAX)
    };
    let data = match packet_type {
        0 => match data {
            None => PacketData::Connect(None),
            Some(DataSlot {
                at,
                kind: DataKind::Map,
            }) => PacketData::Connect(Some(whole(at)?)),
            Some(_) => {
                return Err(DecodeError::InvalidPayload(
                    "CONNECT data must be an object",
                ))
            }
        },
        1 => match data {
            None => PacketData::Disconnect,
            Some(_) => return Err(DecodeError::InvalidPayload("DISCONNECT carries no data")),
        },
        2 | 5 => {
            let Some(DataSlot {
                kind: DataKind::Array { len, items },
                ..
            }) = data
            else {
                return Err(DecodeError::InvalidPayload("EVENT data must be an array"));
            };
            if len == 0 {
                return Err(DecodeError::InvalidPayload("EVENT data must not be empty"));
            }
            let mut reader = MsgPackReader {
                buf: bytes,
                pos: items,
            };
            // Checked as UTF-8 by the pass above, and again by `Str`.
            let name = match reader.raw_str_range()? {
                Some(range) => {
                    if is_reserved(&bytes[range.clone()]) {
                        return Err(DecodeError::ReservedEvent);
                    }
                    Str::try_from(bytes.slice(range))
                        .map_err(|_| bad_payload("string is not valid UTF-8"))?
                }
                None => match reader.next_token()? {
                    Token::Value(Value::Number(n)) => Str::from(match n {
                        Number::PosInt(n) => itoa::Buffer::new().format(n).to_owned(),
                        Number::NegInt(n) => itoa::Buffer::new().format(n).to_owned(),
                        Number::Float(n) => number_text(n),
                    }),
                    _ => {
                        return Err(DecodeError::InvalidPayload(
                            "EVENT name must be a string or a number",
                        ))
                    }
                },
            };
            PacketData::Event {
                name,
                args: MsgPackArgs::new(bytes, reader.pos, len - 1).into_args(),
                ack: id,
            }
        }
        3 | 6 => {
            let Some(DataSlot {
                kind: DataKind::Array { len, items },
                ..
            }) = data
            else {
                return Err(DecodeError::InvalidPayload("ACK data must be an array"));
            };
            PacketData::Ack {
                id: id.ok_or(DecodeError::BadAckId)?,
                args: MsgPackArgs::new(bytes, items, len).into_args(),
            }
        }
        4 => match data {
            Some(DataSlot {
                at,
                kind: DataKind::Map | DataKind::Str,
            }) => PacketData::ConnectError(whole(at)?),
            _ => {
                return Err(DecodeError::InvalidPayload(
                    "CONNECT_ERROR data must be an object or a string",
                ))
            }
        },
        _ => return Err(DecodeError::UnknownType),
    };
    if id.is_some() && !matches!(data, PacketData::Event { .. } | PacketData::Ack { .. }) {
        return Err(DecodeError::BadAckId);
    }
    Ok(Some(Packet { nsp, data }))
}

/// Arguments received as MessagePack: `count` items starting at `start` in
/// the received message, which [`decode_lazy`] has validated in full.
/// Deserialized on demand straight from those bytes; binary is a slice of
/// them.
#[derive(Clone)]
pub(crate) struct MsgPackArgs {
    bytes: Bytes,
    start: usize,
    count: usize,
}

impl MsgPackArgs {
    fn new(bytes: &Bytes, start: usize, count: usize) -> MsgPackArgs {
        MsgPackArgs {
            bytes: bytes.clone(),
            start,
            count,
        }
    }

    fn into_args(self) -> Args {
        Args(Repr::MsgPack(self))
    }

    /// How many arguments there are.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    fn reader(&self) -> MsgPackReader<'_> {
        MsgPackReader {
            buf: &self.bytes,
            pos: self.start,
        }
    }

    /// Each argument as a [`Value`], read one at a time.
    pub(super) fn values(&self) -> impl Iterator<Item = Result<Value, ArgsError>> + '_ {
        let mut reader = self.reader();
        (0..self.count).map(move |_| read_value(&mut reader, usize::MAX).map_err(args_err))
    }

    /// Every argument as a [`Value`].
    pub(super) fn to_values(&self) -> Result<Vec<Value>, ArgsError> {
        self.values().collect()
    }

    /// The arguments as `T` takes them (see [`Args`]).
    pub(super) fn deserialize<T: DeserializeOwned>(&self, target: Target) -> Result<T, ArgsError> {
        let mut de = ArgDe {
            reader: self.reader(),
        };
        let result = match target {
            Target::Unit => T::deserialize(missing::<ValueError>()),
            Target::Tuple(len) => T::deserialize(ArgTuple {
                de: &mut de,
                available: self.count,
                remaining: len,
            }),
            Target::Option | Target::Other if self.count > 0 => T::deserialize(&mut de),
            Target::Option | Target::Other => T::deserialize(missing::<ValueError>()),
        };
        result.map_err(|e| ArgsError(e.0))
    }

    /// The argument at `index` as `T`.
    pub(super) fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgsError> {
        if index >= self.count {
            return Err(ArgsError(format!("no argument at index {index}")));
        }
        let mut de = ArgDe {
            reader: self.reader(),
        };
        for _ in 0..index {
            de.reader.skip().map_err(args_err)?;
        }
        T::deserialize(&mut de).map_err(|e| ArgsError(e.0))
    }
}

fn args_err(e: DecodeError) -> ArgsError {
    ArgsError(e.to_string())
}

#[cold]
fn static_err(e: &'static str) -> ValueError {
    ValueError(e.to_owned())
}

fn value_err(e: DecodeError) -> ValueError {
    ValueError(e.to_string())
}

/// The arguments as a tuple of `remaining` elements, padded with missing
/// ones (as [`Args::deserialize`] documents).
struct ArgTuple<'r, 'de> {
    de: &'r mut ArgDe<'de>,
    available: usize,
    remaining: usize,
}

impl<'de> de::Deserializer<'de> for ArgTuple<'_, 'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_seq(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> SeqAccess<'de> for ArgTuple<'_, 'de> {
    type Error = ValueError;

    fn next_element_seed<E: DeserializeSeed<'de>>(
        &mut self,
        seed: E,
    ) -> Result<Option<E::Value>, ValueError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        if self.available == 0 {
            return seed.deserialize(missing::<ValueError>()).map(Some);
        }
        self.available -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

/// A serde deserializer over one validated MessagePack item, with the
/// data model of [`Value`]'s (what `from_value` on the decoded value would
/// do): `nil` and `undefined` are unit, integral floats fit integer
/// targets, binary is lent as shared bytes so that [`crate::Binary`]
/// keeps a slice of the message.
struct ArgDe<'de> {
    reader: MsgPackReader<'de>,
}

/// A number read from the wire, as [`Value`] holds it.
fn visit_num<'de, V: Visitor<'de>>(n: Number, visitor: V) -> Result<V::Value, ValueError> {
    match n {
        Number::PosInt(n) => visitor.visit_u64(n),
        Number::NegInt(n) => visitor.visit_i64(n),
        Number::Float(n) => visitor.visit_f64(n),
    }
}

fn signed(n: i64) -> Number {
    if n < 0 {
        Number::NegInt(n)
    } else {
        Number::PosInt(n as u64)
    }
}

impl<'de> ArgDe<'de> {
    #[inline]
    fn u8(&mut self) -> Result<u8, ValueError> {
        self.reader.next_byte().map_err(static_err)
    }

    #[inline]
    fn bytes(&mut self, n: usize) -> Result<&'de [u8], ValueError> {
        let start = self.reader.skip_bytes(n).map_err(static_err)?;
        let buf: &'de Bytes = self.reader.buf;
        Ok(&buf[start..start + n])
    }

    #[inline]
    fn len16(&mut self) -> Result<usize, ValueError> {
        self.reader.be_len::<2>().map_err(static_err)
    }

    #[inline]
    fn len32(&mut self) -> Result<usize, ValueError> {
        self.reader.be_len::<4>().map_err(static_err)
    }

    #[inline]
    fn str(&mut self, len: usize) -> Result<&'de str, ValueError> {
        let bytes = self.bytes(len)?;
        std::str::from_utf8(bytes).map_err(|_| static_err("string is not valid UTF-8"))
    }

    /// Binary of `len` bytes, lent to the visitor as a slice of the message.
    fn bin<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, ValueError> {
        let start = self.reader.skip_bytes(len).map_err(static_err)?;
        visit_shared_bytes(&self.reader.buf.slice(start..start + len), visitor)
    }

    /// The number under `marker`, when it is one.
    fn number(&mut self, marker: u8) -> Result<Option<Number>, ValueError> {
        Ok(Some(match marker {
            0x00..=0x7f => Number::PosInt(u64::from(marker)),
            0xe0..=0xff => Number::NegInt(i64::from(marker as i8)),
            0xca => Number::Float(f64::from(f32::from_be_bytes(self.array()?))),
            0xcb => Number::Float(f64::from_be_bytes(self.array()?)),
            0xcc => Number::PosInt(u64::from(self.u8()?)),
            0xcd => Number::PosInt(u64::from(u16::from_be_bytes(self.array()?))),
            0xce => Number::PosInt(u64::from(u32::from_be_bytes(self.array()?))),
            0xcf => Number::PosInt(u64::from_be_bytes(self.array()?)),
            0xd0 => signed(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => signed(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => signed(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => signed(i64::from_be_bytes(self.array()?)),
            _ => return Ok(None),
        }))
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ValueError> {
        let bytes = self.bytes(N)?;
        bytes.try_into().map_err(|_| static_err(TRUNCATED))
    }

    /// An extension item (validated: `undefined`, a `Date`, or binary).
    fn ext<V: Visitor<'de>>(
        &mut self,
        len: usize,
        fixed: bool,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let ext_type = self.u8()?;
        match (ext_type, fixed, len) {
            (0, true, 1) => {
                self.bytes(1)?;
                visitor.visit_unit()
            }
            (0, true, 8) => {
                let millis = i64::from_be_bytes(self.array()?);
                visit_num(signed(millis), visitor)
            }
            (0, false, _) => self.bin(len, visitor),
            _ => Err(ValueError(format!(
                "unsupported MessagePack extension type {}",
                ext_type as i8
            ))),
        }
    }

    fn seq<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, ValueError> {
        let mut access = ArgSeq {
            de: self,
            left: len,
        };
        let value = visitor.visit_seq(&mut access)?;
        if access.left != 0 {
            return Err(de::Error::invalid_length(len, &"fewer elements"));
        }
        Ok(value)
    }

    fn map<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, ValueError> {
        let mut access = ArgMap {
            de: self,
            left: len,
        };
        let value = visitor.visit_map(&mut access)?;
        if access.left != 0 {
            return Err(de::Error::invalid_length(len, &"fewer entries"));
        }
        Ok(value)
    }

    /// A map key (validated: a string).
    #[inline]
    fn key(&mut self) -> Result<&'de str, ValueError> {
        let range = self
            .reader
            .raw_str()
            .map_err(static_err)?
            .ok_or_else(|| static_err("map key is not a string"))?;
        let buf: &'de Bytes = self.reader.buf;
        std::str::from_utf8(&buf[range]).map_err(|_| static_err("string is not valid UTF-8"))
    }

    /// The length of the array under `marker`, when it is one.
    fn array_len(&mut self, marker: u8) -> Result<Option<usize>, ValueError> {
        Ok(match marker {
            0x90..=0x9f => Some(usize::from(marker & 0x0f)),
            0xdc => Some(self.len16()?),
            0xdd => Some(self.len32()?),
            _ => None,
        })
    }

    /// The length of the map under `marker`, when it is one.
    fn map_len(&mut self, marker: u8) -> Result<Option<usize>, ValueError> {
        Ok(match marker {
            0x80..=0x8f => Some(usize::from(marker & 0x0f)),
            0xde => Some(self.len16()?),
            0xdf => Some(self.len32()?),
            _ => None,
        })
    }

    /// The length of the binary (or binary extension) under `marker`.
    fn bin_len(&mut self, marker: u8) -> Result<Option<usize>, ValueError> {
        let at = self.reader.pos;
        let len = match marker {
            0xc4 => usize::from(self.u8()?),
            0xc5 => self.len16()?,
            0xc6 => self.len32()?,
            0xc7..=0xc9 => {
                let len = match marker {
                    0xc7 => usize::from(self.u8()?),
                    0xc8 => self.len16()?,
                    _ => self.len32()?,
                };
                if self.u8()? != 0 {
                    self.reader.pos = at;
                    return Ok(None);
                }
                len
            }
            _ => return Ok(None),
        };
        Ok(Some(len))
    }

    /// Whether the next item is `nil` or `undefined` (consumed if so).
    fn null(&mut self) -> Result<bool, ValueError> {
        let marker = self.reader.peek().map_err(value_err)?;
        let buf: &Bytes = self.reader.buf;
        let at = self.reader.pos;
        if marker == 0xc0 {
            self.reader.pos += 1;
            Ok(true)
        } else if marker == 0xd4 && buf.get(at + 1) == Some(&0) {
            self.reader.pos += 3;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// Integer targets accept integral floats, as `from_value` does.
macro_rules! integer_targets {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            let at = self.reader.pos;
            let marker = self.u8()?;
            if matches!(marker, 0xca | 0xcb) {
                if let Some(Number::Float(f)) = self.number(marker)? {
                    return match integral(f) {
                        Some(n) => visit_num(n, visitor),
                        None => visitor.visit_f64(f),
                    };
                }
            }
            self.reader.pos = at;
            self.deserialize_any(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut ArgDe<'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let marker = self.u8()?;
        if let Some(n) = self.number(marker)? {
            return visit_num(n, visitor);
        }
        match marker {
            0x80..=0x8f => self.map(usize::from(marker & 0x0f), visitor),
            0x90..=0x9f => self.seq(usize::from(marker & 0x0f), visitor),
            0xa0..=0xbf => visitor.visit_borrowed_str(self.str(usize::from(marker & 0x1f))?),
            0xc0 => visitor.visit_unit(),
            0xc2 => visitor.visit_bool(false),
            0xc3 => visitor.visit_bool(true),
            0xc4 => {
                let len = usize::from(self.u8()?);
                self.bin(len, visitor)
            }
            0xc5 => {
                let len = self.len16()?;
                self.bin(len, visitor)
            }
            0xc6 => {
                let len = self.len32()?;
                self.bin(len, visitor)
            }
            0xc7 => {
                let len = usize::from(self.u8()?);
                self.ext(len, false, visitor)
            }
            0xc8 => {
                let len = self.len16()?;
                self.ext(len, false, visitor)
            }
            0xc9 => {
                let len = self.len32()?;
                self.ext(len, false, visitor)
            }
            0xd4 => self.ext(1, true, visitor),
            0xd5 => self.ext(2, true, visitor),
            0xd6 => self.ext(4, true, visitor),
            0xd7 => self.ext(8, true, visitor),
            0xd8 => self.ext(16, true, visitor),
            0xd9 => {
                let len = usize::from(self.u8()?);
                visitor.visit_borrowed_str(self.str(len)?)
            }
            0xda => {
                let len = self.len16()?;
                visitor.visit_borrowed_str(self.str(len)?)
            }
            0xdb => {
                let len = self.len32()?;
                visitor.visit_borrowed_str(self.str(len)?)
            }
            0xdc => {
                let len = self.len16()?;
                self.seq(len, visitor)
            }
            0xdd => {
                let len = self.len32()?;
                self.seq(len, visitor)
            }
            0xde => {
                let len = self.len16()?;
                self.map(len, visitor)
            }
            0xdf => {
                let len = self.len32()?;
                self.map(len, visitor)
            }
            _ => Err(ValueError(format!(
                "invalid MessagePack marker {marker:#x}"
            ))),
        }
    }

    integer_targets!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        if self.null()? {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    /// Binary as a sequence of `u8` (`Vec<u8>`, `[u8; N]`), as
    /// `from_value` offers it.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let at = self.reader.pos;
        let marker = self.u8()?;
        match self.bin_len(marker)? {
            Some(len) => {
                let bytes = self.bytes(len)?;
                let mut seq = de::value::SeqDeserializer::new(bytes.iter().copied());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            None => {
                self.reader.pos = at;
                self.deserialize_any(visitor)
            }
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let at = self.reader.pos;
        if let Some(range) = self.reader.str_range().map_err(value_err)? {
            let buf: &'de Bytes = self.reader.buf;
            let variant = std::str::from_utf8(&buf[range])
                .map_err(|_| ValueError("string is not valid UTF-8".into()))?;
            return visitor.visit_enum(de::value::BorrowedStrDeserializer::<ValueError>::new(
                variant,
            ));
        }
        let marker = self.u8()?;
        match self.map_len(marker)? {
            Some(1) => visitor.visit_enum(ArgEnum { de: self }),
            _ => {
                self.reader.pos = at;
                Err(de::Error::invalid_type(
                    de::Unexpected::Other("a value that is not a string or a one-key map"),
                    &"a string or an object with one key",
                ))
            }
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.reader.skip().map_err(value_err)?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool f32 f64 char str string bytes byte_buf unit unit_struct
        tuple_struct map struct identifier
    }
}

struct ArgSeq<'r, 'de> {
    de: &'r mut ArgDe<'de>,
    left: usize,
}

impl<'de> SeqAccess<'de> for ArgSeq<'_, 'de> {
    type Error = ValueError;
    fn next_element_seed<E: DeserializeSeed<'de>>(
        &mut self,
        seed: E,
    ) -> Result<Option<E::Value>, ValueError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct ArgMap<'r, 'de> {
    de: &'r mut ArgDe<'de>,
    left: usize,
}

impl<'de> MapAccess<'de> for ArgMap<'_, 'de> {
    type Error = ValueError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let marker = self.de.u8()?;
        let len = self.de.reader.str_len(marker).map_err(value_err)?;
        let key = self.de.str(len)?;
        seed.deserialize(KeyDeserializer(Cow::Borrowed(key)))
            .map(Some)
    }
    fn next_value_seed<E: DeserializeSeed<'de>>(
        &mut self,
        seed: E,
    ) -> Result<E::Value, ValueError> {
        seed.deserialize(&mut *self.de)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// An externally tagged enum's `{"Variant": value}`.
struct ArgEnum<'r, 'de> {
    de: &'r mut ArgDe<'de>,
}

impl<'de> de::EnumAccess<'de> for ArgEnum<'_, 'de> {
    type Error = ValueError;
    type Variant = Self;
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self), ValueError> {
        let variant = self.de.key()?;
        let variant = seed.deserialize(de::value::BorrowedStrDeserializer::<ValueError>::new(
            variant,
        ))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for ArgEnum<'_, 'de> {
    type Error = ValueError;
    fn unit_variant(self) -> Result<(), ValueError> {
        if self.de.null()? {
            Ok(())
        } else {
            Err(de::Error::invalid_type(
                de::Unexpected::Other("a value"),
                &"unit variant",
            ))
        }
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, ValueError> {
        seed.deserialize(&mut *self.de)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, ValueError> {
        let marker = self.de.u8()?;
        match self.de.array_len(marker)? {
            Some(len) => self.de.seq(len, visitor),
            None => Err(de::Error::invalid_type(
                de::Unexpected::Other("a value that is not an array"),
                &"tuple variant",
            )),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        let marker = self.de.u8()?;
        if let Some(len) = self.de.map_len(marker)? {
            return self.de.map(len, visitor);
        }
        match self.de.array_len(marker)? {
            Some(len) => self.de.seq(len, visitor),
            None => Err(de::Error::invalid_type(
                de::Unexpected::Other("a value that is not a map"),
                &"struct variant",
            )),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;
    use serde::Serialize;

    use super::*;
    use crate::parser::args::Repr;
    use crate::value::tests::arb_value;

    /// The values of decoded arguments (`Args`' own accessors are
    /// implemented elsewhere).
    pub(in crate::parser) fn arg_values(args: &Args) -> &[Value] {
        match &args.0 {
            Repr::Values(v) => v,
            Repr::Json { .. } | Repr::MsgPack(_) => panic!("values expected"),
        }
    }

    /// The values of arguments decoded from MessagePack.
    fn mp_values(args: &Args) -> Vec<Value> {
        match &args.0 {
            Repr::MsgPack(a) => a.to_values().unwrap(),
            _ => panic!("MessagePack arguments expected"),
        }
    }

    pub(in crate::parser) fn obj(entries: &[(&str, Value)]) -> Value {
        Value::Object(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn encode<A: Serialize + ?Sized>(packet: &OutPacket<'_, A>) -> Vec<u8> {
        let mut out = Encoded::default();
        MsgPackParser.encode(packet, &mut out).unwrap();
        assert!(out.binary);
        assert!(out.attachments.is_empty());
        out.data.to_vec()
    }

    fn encode_err<A: Serialize + ?Sized>(packet: &OutPacket<'_, A>) -> EncodeError {
        let mut out = Encoded::default();
        let err = MsgPackParser.encode(packet, &mut out).unwrap_err();
        assert!(out.data.is_empty());
        err
    }

    fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
        decode_with(bytes, &DecodeLimits::default())
    }

    fn decode_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Packet, DecodeError> {
        let message = Message::Binary(Bytes::copy_from_slice(bytes));
        MsgPackParser
            .decode(&mut MsgPackParserDecoder::default(), message, limits)
            .map(|p| p.expect("one message is one packet"))
    }

    /// `{"type": 2, "nsp": "/", "data": ["hello", 1]}` as notepack writes it.
    const HELLO: &[u8] = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa5hello\x01";

    #[test]
    fn event_vector() {
        let bytes = encode(&OutPacket::Event {
            nsp: "/",
            event: "hello",
            args: &1,
            ack: None,
        });
        assert_eq!(bytes, HELLO);
        let packet = decode(HELLO).unwrap();
        assert_eq!(packet.nsp, "/");
        let PacketData::Event { name, args, ack } = packet.data else {
            panic!("{packet:?}")
        };
        assert_eq!((name.as_ref(), ack), ("hello", None));
        assert_eq!(mp_values(&args), [Value::from(1u64)]);
    }

    #[test]
    fn event_with_ack_and_binary() {
        let bytes = encode(&OutPacket::Event {
            nsp: "/chat",
            event: "file",
            args: &(Bytes::from_static(b"\x01\x02"), "x"),
            ack: Some(7),
        });
        assert_eq!(
            bytes,
            b"\x84\xa4type\x02\xa3nsp\xa5/chat\xa4data\x93\xa4file\xc4\x02\x01\x02\xa1x\xa2id\x07"
        );
        let packet = decode(&bytes).unwrap();
        let PacketData::Event { name, args, ack } = packet.data else {
            panic!()
        };
        assert_eq!((name.as_ref(), ack), ("file", Some(7)));
        assert_eq!(
            mp_values(&args),
            [
                Value::Binary(Bytes::from_static(b"\x01\x02")),
                Value::from("x")
            ]
        );
    }

    #[test]
    fn ack_disconnect_connect_vectors() {
        let ack = encode(&OutPacket::Ack {
            nsp: "/",
            id: 300,
            args: &(),
        });
        assert_eq!(
            ack,
            b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x90\xa2id\xcd\x01\x2c"
        );
        let PacketData::Ack { id, args } = decode(&ack).unwrap().data else {
            panic!()
        };
        assert_eq!(id, 300);
        assert!(mp_values(&args).is_empty());

        let disconnect = encode(&OutPacket::Disconnect::<()> { nsp: "/" });
        assert_eq!(disconnect, b"\x82\xa4type\x01\xa3nsp\xa1/");
        assert_eq!(decode(&disconnect).unwrap().data, PacketData::Disconnect);

        let connect = encode(&OutPacket::Connect::<()> {
            nsp: "/",
            data: None,
        });
        assert_eq!(connect, b"\x82\xa4type\x00\xa3nsp\xa1/");
        assert_eq!(decode(&connect).unwrap().data, PacketData::Connect(None));

        #[derive(Serialize)]
        struct Auth<'a> {
            token: &'a str,
        }
        let connect = encode(&OutPacket::Connect {
            nsp: "/admin",
            data: Some(&Auth { token: "abc" }),
        });
        assert_eq!(
            connect,
            b"\x83\xa4type\x00\xa3nsp\xa6/admin\xa4data\x81\xa5token\xa3abc"
        );
        let packet = decode(&connect).unwrap();
        assert_eq!(packet.nsp, "/admin");
        assert_eq!(
            packet.data,
            PacketData::Connect(Some(obj(&[("token", "abc".into())])))
        );

        let refused = encode(&OutPacket::ConnectError {
            nsp: "/",
            data: "nope",
        });
        assert_eq!(
            decode(&refused).unwrap().data,
            PacketData::ConnectError("nope".into())
        );
        let refused = encode(&OutPacket::ConnectError {
            nsp: "/",
            data: &obj(&[("message", "Invalid namespace".into())]),
        });
        assert_eq!(
            decode(&refused).unwrap().data,
            PacketData::ConnectError(obj(&[("message", "Invalid namespace".into())]))
        );
    }

    #[test]
    fn python_and_js_absent_data() {
        // python-socketio: {'type': 0, 'data': None, 'nsp': '/'}.
        let python = b"\x83\xa4type\x00\xa4data\xc0\xa3nsp\xa1/";
        assert_eq!(decode(python).unwrap().data, PacketData::Connect(None));
        let python = b"\x83\xa4type\x01\xa4data\xc0\xa3nsp\xa1/";
        assert_eq!(decode(python).unwrap().data, PacketData::Disconnect);
        // notepack: {type: 0, nsp: "/", data: undefined}.
        let js = b"\x83\xa4type\x00\xa3nsp\xa1/\xa4data\xd4\x00\x00";
        assert_eq!(decode(js).unwrap().data, PacketData::Connect(None));
        // undefined inside arguments is null; id nil is no id.
        let js = b"\x84\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\xd4\x00\x00\xa2id\xc0";
        let PacketData::Event { args, ack, .. } = decode(js).unwrap().data else {
            panic!()
        };
        assert_eq!((mp_values(&args), ack), (vec![Value::Null], None));
    }

    #[test]
    fn notepack_extensions() {
        // An ArrayBuffer (ext 8, type 0), a Date (fixext 8, type 0).
        let js = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x93\xa1e\xc7\x03\x00abc\xd7\x00\x00\x00\x00\x01\x00\x00\x00\x02";
        let PacketData::Event { args, .. } = decode(js).unwrap().data else {
            panic!()
        };
        assert_eq!(
            mp_values(&args),
            [
                Value::Binary(Bytes::from_static(b"abc")),
                Value::from((1i64 << 32) + 2)
            ]
        );
        let other = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\xd4\x05\x00";
        assert!(matches!(decode(other), Err(DecodeError::BadPayload(_))));
    }

    #[test]
    fn binary_is_a_slice_of_the_message() {
        let bytes = encode(&OutPacket::Event {
            nsp: "/",
            event: "e",
            args: &Bytes::from(vec![7u8; 1000]),
            ack: None,
        });
        let message = Bytes::from(bytes);
        let range = message.as_ptr_range();
        let packet = MsgPackParser
            .decode(
                &mut MsgPackParserDecoder::default(),
                Message::Binary(message.clone()),
                &DecodeLimits::default(),
            )
            .unwrap()
            .unwrap();
        let PacketData::Event { args, .. } = packet.data else {
            panic!()
        };
        let Value::Binary(b) = &mp_values(&args)[0] else {
            panic!()
        };
        assert_eq!(b.len(), 1000);
        assert!(range.contains(&b.as_ptr()));
    }

    #[test]
    fn types_5_and_6_numbers_and_unknown_keys() {
        let binary_event = b"\x84\xa4type\x05\xa3nsp\xa1/\xa4data\x91\x2a\xa5extra\xc3";
        let PacketData::Event { name, args, .. } = decode(binary_event).unwrap().data else {
            panic!()
        };
        assert_eq!(name, "42");
        assert!(mp_values(&args).is_empty());
        let float_name =
            b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00";
        let PacketData::Event { name, .. } = decode(float_name).unwrap().data else {
            panic!()
        };
        assert_eq!(name, "1.5");
        let binary_ack = b"\x84\xa4type\x06\xa3nsp\xa1/\xa4data\x91\xc4\x00\xa2id\x00";
        let PacketData::Ack { id, args } = decode(binary_ack).unwrap().data else {
            panic!()
        };
        assert_eq!(id, 0);
        assert_eq!(mp_values(&args), [Value::Binary(Bytes::new())]);
    }

    #[test]
    fn invalid_packets_are_typed_errors() {
        use DecodeError::*;
        let cases: &[(&[u8], DecodeError)] = &[
            (b"\x82\xa4type\x07\xa3nsp\xa1/", UnknownType),
            (b"\x82\xa4type\xa12\xa3nsp\xa1/", UnknownType),
            (b"\x82\xa4type\xff\xa3nsp\xa1/", UnknownType),
            (b"\x81\xa3nsp\xa1/", UnknownType),
            (b"\x81\xa4type\x01", BadNamespace),
            (b"\x82\xa4type\x01\xa3nsp\xa3abc", BadNamespace),
            (b"\x82\xa4type\x01\xa3nsp\x01", BadNamespace),
            (b"\x83\xa4type\x00\xa3nsp\xa1/\xa4data\x90", InvalidPayload("CONNECT data must be an object")),
            (b"\x83\xa4type\x01\xa3nsp\xa1/\xa4data\x80", InvalidPayload("DISCONNECT carries no data")),
            (b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x80", InvalidPayload("EVENT data must be an array")),
            (b"\x82\xa4type\x02\xa3nsp\xa1/", InvalidPayload("EVENT data must be an array")),
            (b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x90", InvalidPayload("EVENT data must not be empty")),
            (b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xc3", InvalidPayload("EVENT name must be a string or a number")),
            (b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xaadisconnect", ReservedEvent),
            (b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xabnewListener", ReservedEvent),
            (b"\x83\xa4type\x03\xa3nsp\xa1/\xa4data\x90", BadAckId),
            (b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x80\xa2id\x01", InvalidPayload("ACK data must be an array")),
            (b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x90\xa2id\xff", BadAckId),
            (b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x90\xa2id\xa11", BadAckId),
            (b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x90\xa2id\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", BadAckId),
            (b"\x83\xa4type\x00\xa3nsp\xa1/\xa2id\x01", BadAckId),
            (b"\x82\xa4type\x04\xa3nsp\xa1/", InvalidPayload("CONNECT_ERROR data must be an object or a string")),
            (b"\x83\xa4type\x04\xa3nsp\xa1/\xa4data\x01", InvalidPayload("CONNECT_ERROR data must be an object or a string")),
            (b"\x92\x02\xa1/", InvalidPayload("packet is not a map")),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode(bytes).as_ref().err(), Some(expected), "{bytes:x?}");
        }
    }

    #[test]
    fn malformed_messagepack_is_a_typed_error() {
        let bad = |bytes: &[u8]| match decode(bytes) {
            Err(DecodeError::BadPayload(_)) => {}
            other => panic!("{bytes:x?}: {other:?}"),
        };
        // Non-string key in the payload, and at the top.
        bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\x81\x01\x02");
        bad(b"\x83\x01\x02\xa3nsp\xa1/\xa4data\x90");
        // Trailing bytes, the never-used marker, invalid UTF-8.
        bad(b"\x82\xa4type\x01\xa3nsp\xa1/\x00");
        bad(b"\x82\xa4type\x01\xa3nsp\xc1");
        bad(b"\x82\xa4type\x01\xa3nsp\xa2\xc3\x28");
        // Bogus lengths far beyond the message: refused before reserving.
        bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdd\xff\xff\xff\xff");
        bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdf\xff\xff\xff\xff");
        bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xc6\xff\xff\xff\xff");
        bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xdb\xff\xff\xff\xff");
        bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xc9\xff\xff\xff\xff\x00");
        bad(b"\xdf\xff\xff\xff\xff");
        assert_eq!(decode(b""), Err(DecodeError::Empty));
        let text = MsgPackParser.decode(
            &mut MsgPackParserDecoder::default(),
            Message::Text(Str::from("2[\"e\"]")),
            &DecodeLimits::default(),
        );
        assert_eq!(text, Err(DecodeError::UnexpectedMessage));
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
                "a longer string that needs str8 framing..",
            ),
            ack: Some(1 << 40),
        });
        decode(&full).unwrap();
        for cut in 0..full.len() {
            assert!(decode(&full[..cut]).is_err(), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let mut bomb = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e".to_vec();
        bomb.extend(std::iter::repeat(0x91).take(100_000));
        bomb.push(0xc0);
        assert_eq!(
            decode(&bomb),
            Err(DecodeError::BadPayload("nesting too deep".into()))
        );
        // Decoding itself never recurses, whatever the limit. (Dropping such
        // a tree would: `Value`'s drop, like serde_json's, is recursive, which
        // is why the limit must stay modest. Leak it here.)
        let unlimited = DecodeLimits {
            max_depth: usize::MAX,
            ..DecodeLimits::default()
        };
        let deep = decode_with(&bomb, &unlimited).unwrap();
        std::mem::forget(deep);

        // `max_depth` counts the payload's own levels: `data` is level 1.
        let nested = |levels: usize| {
            let mut b = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e".to_vec();
            b.extend(std::iter::repeat(0x91).take(levels - 1));
            b.push(0x01);
            b
        };
        let limits = DecodeLimits {
            max_depth: 4,
            ..DecodeLimits::default()
        };
        assert!(decode_with(&nested(4), &limits).is_ok());
        assert!(decode_with(&nested(5), &limits).is_err());
    }

    #[test]
    fn application_misuse_is_an_encode_error() {
        assert_eq!(
            encode_err(&OutPacket::Disconnect::<()> { nsp: "chat" }),
            EncodeError::BadNamespace
        );
        assert_eq!(
            encode_err(&OutPacket::Event {
                nsp: "/",
                event: "connect",
                args: &(),
                ack: None
            }),
            EncodeError::ReservedEvent
        );
        assert!(matches!(
            encode_err(&OutPacket::Connect {
                nsp: "/",
                data: Some(&[1, 2])
            }),
            EncodeError::InvalidPayload(_)
        ));
        assert!(matches!(
            encode_err(&OutPacket::ConnectError { nsp: "/", data: &3 }),
            EncodeError::InvalidPayload(_)
        ));
        let mut bad_key = std::collections::BTreeMap::new();
        bad_key.insert((1, 2), 3);
        assert!(matches!(
            encode_err(&OutPacket::Event {
                nsp: "/",
                event: "e",
                args: &bad_key,
                ack: None
            }),
            EncodeError::Serialize(_)
        ));
    }

    /// Maps of unknown length (from `#[serde(flatten)]`) get a canonical
    /// header once their size is known.
    #[test]
    fn unknown_length_maps_are_patched() {
        #[derive(Serialize)]
        struct Outer {
            a: u8,
            #[serde(flatten)]
            rest: std::collections::BTreeMap<String, u8>,
        }
        for extra in [0usize, 3, 20, 70_000] {
            let rest = (0..extra).map(|i| (format!("k{i}"), 1)).collect();
            let args = Outer { a: 1, rest };
            let bytes = encode(&OutPacket::Event {
                nsp: "/",
                event: "e",
                args: &args,
                ack: None,
            });
            let expected = to_value_for_test(&args);
            let header = MsgPack::map_header(extra + 1).unwrap();
            // After the packet head (18 bytes), the array header and "e".
            let at = 18 + 1 + 2;
            assert_eq!(&bytes[at..at + header.as_slice().len()], header.as_slice());
            let PacketData::Event { args, .. } =
                decode_with(&bytes, &DecodeLimits::default()).unwrap().data
            else {
                panic!()
            };
            assert_eq!(mp_values(&args), [expected]);
        }
    }

    fn to_value_for_test<T: Serialize>(v: &T) -> Value {
        crate::value::to_value(v).unwrap()
    }

    /// Our encoding of `[event, value]` read by rmp-serde, and rmp-serde's
    /// encoding of a packet read by us.
    fn cross_check(value: Value) -> Result<(), TestCaseError> {
        let bytes = encode(&OutPacket::Event {
            nsp: "/",
            event: "ev",
            args: &value,
            ack: Some(3),
        });
        let packet = obj(&[
            ("type", 2u64.into()),
            ("nsp", "/".into()),
            ("data", Value::Array(vec!["ev".into(), value.clone()])),
            ("id", 3u64.into()),
        ]);
        let theirs: Value = rmp_serde::from_slice(&bytes).unwrap();
        prop_assert_eq!(&theirs, &packet);
        let PacketData::Event { name, args, ack } = decode(&bytes).unwrap().data else {
            panic!()
        };
        prop_assert_eq!((name.as_ref(), ack), ("ev", Some(3)));
        prop_assert_eq!(mp_values(&args), [value.clone()]);

        let theirs = rmp_serde::to_vec(&packet).unwrap();
        let PacketData::Event { args, .. } = decode(&theirs).unwrap().data else {
            panic!()
        };
        prop_assert_eq!(mp_values(&args), [value]);
        Ok(())
    }

    #[test]
    fn numbers_at_every_width() {
        for n in [
            0u64,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            cross_check(Value::from(n)).unwrap();
        }
        for n in [
            -1i64,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            i32::MIN as i64,
            i32::MIN as i64 - 1,
            i64::MIN,
        ] {
            cross_check(Value::from(n)).unwrap();
        }
        for len in [0usize, 31, 32, 255, 256, 65535, 65536] {
            cross_check(Value::String("x".repeat(len))).unwrap();
            cross_check(Value::Binary(Bytes::from(vec![1; len]))).unwrap();
            cross_check(Value::Array(vec![Value::Null; len.min(70_000)])).unwrap();
        }
        cross_check(Value::from(f64::INFINITY)).unwrap();
        let f32_bytes = encode(&OutPacket::Event {
            nsp: "/",
            event: "e",
            args: &0.5f32,
            ack: None,
        });
        assert!(f32_bytes.ends_with(b"\xca\x3f\x00\x00\x00"));
        let PacketData::Event { args, .. } = decode(&f32_bytes).unwrap().data else {
            panic!()
        };
        assert_eq!(mp_values(&args), [Value::from(0.5)]);
    }

    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    struct Upload {
        name: String,
        #[serde(default)]
        parts: Vec<Part>,
        note: Option<String>,
        kind: Kind,
        blob: crate::Binary,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    struct Part {
        index: u32,
        body: Bytes,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
    enum Kind {
        Plain,
        Sized(u64),
        Pair(i8, String),
        Shaped { w: f32, h: f32 },
    }

    fn event_args<A: Serialize + ?Sized>(args: &A) -> (Bytes, Args) {
        let bytes = Bytes::from(encode(&OutPacket::Event {
            nsp: "/",
            event: "e",
            args,
            ack: None,
        }));
        let packet = MsgPackParser
            .decode(
                &mut MsgPackParserDecoder::default(),
                Message::Binary(bytes.clone()),
                &DecodeLimits::default(),
            )
            .unwrap()
            .unwrap();
        let PacketData::Event { args, .. } = packet.data else {
            panic!()
        };
        (bytes, args)
    }

    /// Typed arguments read straight from the bytes match what `from_value`
    /// gives on the decoded values, binary included, without copies.
    #[test]
    fn typed_arguments_from_the_bytes() {
        let uploads: Vec<Upload> = [
            Kind::Plain,
            Kind::Sized(7),
            Kind::Pair(-3, "x".into()),
            Kind::Shaped { w: 1.5, h: 2.0 },
        ]
        .into_iter()
        .map(|kind| Upload {
            name: "file".into(),
            parts: vec![Part {
                index: 1,
                body: Bytes::from_static(b"abc"),
            }],
            note: None,
            kind,
            blob: crate::Binary(Bytes::from(vec![9u8; 300])),
        })
        .collect();
        for upload in &uploads {
            let (bytes, args) = event_args(&(upload, 5u8, "tail"));
            assert_eq!(args.len(), 3);
            let got: Upload = args.deserialize().unwrap();
            assert_eq!(&got, upload);
            assert!(bytes.as_ptr_range().contains(&got.blob.as_ptr()));
            let (got, n, s, missing): (Upload, u8, String, Option<u8>) =
                args.deserialize().unwrap();
            assert_eq!((&got, n, s.as_str(), missing), (upload, 5, "tail", None));
            assert_eq!(args.get::<String>(2).unwrap(), "tail");
            assert_eq!(args.get::<Upload>(0).unwrap(), *upload);
            assert!(args.get::<u8>(3).is_err());
            assert!(args.deserialize::<(String,)>().is_err());
            let values: Value = args.get(0).unwrap();
            assert_eq!(values, mp_values(&args)[0]);
            let Some(Value::Binary(blob)) = values.get("blob") else {
                panic!()
            };
            assert!(bytes.as_ptr_range().contains(&blob.as_ptr()));
            args.deserialize::<()>().unwrap();
            assert_eq!(
                args.deserialize::<Option<Upload>>().unwrap().as_ref(),
                Some(upload)
            );
            // Re-serializing spreads the same arguments again.
            let again = serde_json::to_value(&args).unwrap();
            assert_eq!(again.as_array().map(Vec::len), Some(3));
        }
        // Integral floats fit integers; undefined is None; binary reads as
        // a `Vec<u8>`.
        let js = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x94\xa1e\xcb\x40\x00\x00\x00\x00\x00\x00\x00\xd4\x00\x00\xc4\x02\x01\x02";
        let PacketData::Event { args, .. } = decode(js).unwrap().data else {
            panic!()
        };
        let typed: (u8, Option<u8>, Vec<u8>) = args.deserialize().unwrap();
        assert_eq!(typed, (2, None, vec![1, 2]));
        assert!(args.deserialize::<(u8, u8)>().is_err());
        let empty = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xa1e";
        let PacketData::Event { args, .. } = decode(empty).unwrap().data else {
            panic!()
        };
        assert_eq!(args.deserialize::<Option<u8>>().unwrap(), None);
        assert_eq!(args.len(), 0);
    }

    proptest! {
        #[test]
        fn round_trips_and_matches_rmp_serde(value in arb_value()) {
            cross_check(value)?;
        }

        #[test]
        fn typed_values_match_from_value(value in arb_value()) {
            let (_, args) = event_args(&(&value, 1u8));
            let expected = mp_values(&args);
            let typed: (Value, u8) = args.deserialize().unwrap();
            prop_assert_eq!(&typed.0, &expected[0]);
            prop_assert_eq!(args.get::<Value>(0).unwrap(), value);
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
            let mut bytes = encode(&OutPacket::Event { nsp: "/", event: "e", args: &(&value, 1u8), ack: None });
            for (at, byte) in flips {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            // What decodes reads the same lazily, one argument at a time or
            // as a tuple, as the tree builder reads it.
            if let Ok(Packet { data: PacketData::Event { args, .. } | PacketData::Ack { args, .. }, .. }) = decode(&bytes) {
                let values = mp_values(&args);
                prop_assert_eq!(values.len(), args.len());
                for (i, v) in values.iter().enumerate() {
                    prop_assert_eq!(&args.get::<Value>(i).unwrap(), v);
                }
                if values.len() == 2 {
                    let pair: (Value, Value) = args.deserialize().unwrap();
                    prop_assert_eq!(&[pair.0, pair.1][..], &values[..]);
                }
            }
        }
    }
}
