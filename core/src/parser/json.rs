//! The default Socket.IO parser: JSON text with binary attachments.
//!
//! A packet is one text message
//! `<type>[<attachments>-][<nsp>,][<ack id>][<json>]`, followed by one binary
//! message per attachment. Each binary value in the payload is replaced, in
//! document order, by `{"_placeholder":true,"num":N}`.
//!
//! Encoding writes compact JSON straight into [`Encoded::data`] through a
//! serializer that turns each `serialize_bytes` into a placeholder; an event
//! without binary allocates nothing once the buffer has capacity. Binary is
//! copied once into its attachment (serde hands over a `&[u8]`, even for a
//! [`Value::Binary`]).
//!
//! Decoding follows the reference decoder: the namespace is read up to a
//! comma or the end of the text; an EVENT is a non-empty array whose first
//! item is a non-reserved string or a number; an ACK needs an id and may
//! omit its array (no arguments); placeholders are only resolved in binary
//! packets. Event and ack arguments stay as byte ranges of the received text
//! (see [`Args`]); the JSON is syntax-checked in full at once. Nesting is
//! bounded by [`DecodeLimits::max_depth`] (the event array itself counts as
//! one level) with a linear scan before any recursive parsing, and by
//! serde_json's recursion limit of 128 whatever the configuration.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::OnceLock;

use super::args::{Repr, Spans};
use super::{
    ArgArray, Args, ArgsError, DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Parser,
};
use super::{Packet, PacketData, PacketType, RESERVED_EVENTS};
use crate::engine::Message;
use crate::value::Value;
use crate::Str;
use bytes::{Bytes, BytesMut};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, Serializer};
use serde_json::value::RawValue;

/// The default Socket.IO parser: JSON text with binary attachments.
///
/// Output is compact and byte-identical to what the JavaScript reference
/// produces with `JSON.stringify` (keys in the order the payload serializes
/// them).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonParser;

/// Decoding state of [`JsonParser`]: a binary packet waiting for its
/// attachments.
#[derive(Debug, Default)]
pub struct JsonParserDecoder {
    /// Boxed: rare, and large next to the other parsers' states.
    pending: Option<Box<PendingBinary>>,
}

impl JsonParserDecoder {
    /// Whether a binary packet has been read and its attachments are still
    /// expected.
    pub fn is_awaiting_attachments(&self) -> bool {
        self.pending.is_some()
    }

    /// Bytes of binary attachments held for the packet being completed
    /// (never more than [`DecodeLimits::max_pending_attachment_bytes`]).
    pub fn pending_attachment_bytes(&self) -> usize {
        self.pending
            .as_ref()
            .map_or(0, |pending| pending.attachment_bytes)
    }
}

/// A BINARY_EVENT or BINARY_ACK whose text has been read and checked.
#[derive(Debug)]
struct PendingBinary {
    nsp: Str,
    head: BinaryHead,
    args: ArgsText,
    spans: Spans,
    expected: usize,
    attachments: Vec<Bytes>,
    /// Sum of the lengths of `attachments`.
    attachment_bytes: usize,
}

/// Where an event's or ack's arguments are in the received text.
#[derive(Debug)]
struct ArgsText {
    text: Str,
    /// Start of the JSON array; `None` when there is no payload.
    array_start: Option<u32>,
    has_name: bool,
    max_depth: usize,
}

impl ArgsText {
    fn into_args(
        self,
        checked: OnceLock<Result<Spans, ArgsError>>,
        attachments: Vec<Bytes>,
    ) -> Args {
        Args(Repr::Json {
            text: self.text,
            array_start: self.array_start,
            has_name: self.has_name,
            attachments,
            max_depth: self.max_depth,
            checked,
        })
    }
}

#[derive(Debug)]
enum BinaryHead {
    Event { name: Str, ack: Option<u64> },
    Ack { id: u64 },
}

impl PendingBinary {
    fn finish(self) -> Packet {
        let args = self
            .args
            .into_args(OnceLock::from(Ok(self.spans)), self.attachments);
        let data = match self.head {
            BinaryHead::Event { name, ack } => PacketData::Event { name, args, ack },
            BinaryHead::Ack { id } => PacketData::Ack { id, args },
        };
        Packet {
            nsp: self.nsp,
            data,
        }
    }
}

impl Parser for JsonParser {
    type Decoder = JsonParserDecoder;

    fn encode<A: Serialize + ?Sized>(
        &self,
        packet: &OutPacket<'_, A>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError> {
        out.clear();
        let result = encode_into(packet, out);
        if result.is_err() {
            out.clear();
        }
        result
    }

    fn decode(
        &self,
        decoder: &mut Self::Decoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError> {
        match message {
            Message::Binary(bytes) => {
                let Some(pending) = decoder.pending.as_mut() else {
                    return Err(DecodeError::UnexpectedMessage);
                };
                // Checked before the attachment is kept, so what is held
                // never exceeds the limit; the packet is dropped at once.
                let limit = limits.max_pending_attachment_bytes;
                if bytes.len() > limit.saturating_sub(pending.attachment_bytes) {
                    let pending_bytes = pending.attachment_bytes;
                    decoder.pending = None;
                    return Err(DecodeError::TooManyAttachmentBytes {
                        pending: pending_bytes,
                        incoming: bytes.len(),
                        limit,
                    });
                }
                pending.attachment_bytes += bytes.len();
                pending.attachments.push(bytes);
                if pending.attachments.len() < pending.expected {
                    return Ok(None);
                }
                Ok(decoder.pending.take().map(|pending| pending.finish()))
            }
            Message::Text(text) => {
                if decoder.pending.take().is_some() {
                    return Err(DecodeError::UnexpectedMessage);
                }
                decode_text(text, limits, &mut decoder.pending)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Encoding

fn encode_into<A: Serialize + ?Sized>(
    packet: &OutPacket<'_, A>,
    out: &mut Encoded,
) -> Result<(), EncodeError> {
    let (nsp, kind, ack) = match *packet {
        OutPacket::Connect { nsp, .. } => (nsp, PacketType::Connect, None),
        OutPacket::Disconnect { nsp } => (nsp, PacketType::Disconnect, None),
        OutPacket::Event {
            nsp, event, ack, ..
        } => {
            if RESERVED_EVENTS.contains(&event) {
                return Err(EncodeError::ReservedEvent);
            }
            (nsp, PacketType::Event, ack)
        }
        OutPacket::Ack { nsp, id, .. } => (nsp, PacketType::Ack, Some(id)),
        OutPacket::ConnectError { nsp, .. } => (nsp, PacketType::ConnectError, None),
    };
    // The text format has no escaping: a comma would end the namespace early.
    if !nsp.starts_with('/') || nsp.contains(',') {
        return Err(EncodeError::BadNamespace);
    }

    out.data.extend_from_slice(&[b'0' + kind as u8]);
    if nsp != "/" {
        out.data.extend_from_slice(nsp.as_bytes());
        out.data.extend_from_slice(b",");
    }
    if let Some(id) = ack {
        out.data
            .extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    }
    let payload_start = out.data.len();

    // Moved out and back so the serializer can share it without borrowing `out`.
    let attachments = RefCell::new(std::mem::take(&mut out.attachments));
    let written = match *packet {
        OutPacket::Connect { data: None, .. } | OutPacket::Disconnect { .. } => Ok(()),
        OutPacket::Connect {
            data: Some(data), ..
        } => write_json(&mut out.data, &attachments, data),
        OutPacket::Event { event, args, .. } => write_json(
            &mut out.data,
            &attachments,
            &ArgArray {
                event: Some(event),
                args,
            },
        ),
        OutPacket::Ack { args, .. } => {
            write_json(&mut out.data, &attachments, &ArgArray { event: None, args })
        }
        OutPacket::ConnectError { data, .. } => write_json(&mut out.data, &attachments, data),
    };
    out.attachments = attachments.into_inner();
    written?;

    // Cheap shape checks: compact JSON's first byte tells its type.
    let first = out.data.get(payload_start).copied();
    match (kind, first) {
        (PacketType::Connect, None | Some(b'{')) => {}
        (PacketType::Connect, _) => {
            return Err(EncodeError::InvalidPayload(
                "CONNECT data must be an object",
            ))
        }
        (PacketType::ConnectError, Some(b'{' | b'"')) => {}
        (PacketType::ConnectError, _) => {
            return Err(EncodeError::InvalidPayload(
                "CONNECT_ERROR data must be an object or a string",
            ))
        }
        _ => {}
    }

    if !out.attachments.is_empty() {
        let binary_kind = match kind {
            PacketType::Event => PacketType::BinaryEvent,
            PacketType::Ack => PacketType::BinaryAck,
            _ => {
                return Err(EncodeError::InvalidPayload(
                    "binary is only allowed in events and acks",
                ))
            }
        };
        out.data[0] = b'0' + binary_kind as u8;
        insert_attachment_count(&mut out.data, out.attachments.len());
    }
    Ok(())
}

/// Insert `N-` right after the type digit. The payload is already written,
/// since the count is only known once it is serialized.
fn insert_attachment_count(data: &mut BytesMut, count: usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(count).as_bytes();
    let insert_len = digits.len() + 1;
    let old_len = data.len();
    data.resize(old_len + insert_len, 0);
    data.copy_within(1..old_len, 1 + insert_len);
    data[1..1 + digits.len()].copy_from_slice(digits);
    data[insert_len] = b'-';
}

fn write_json<T: Serialize + ?Sized>(
    data: &mut BytesMut,
    attachments: &RefCell<Vec<Bytes>>,
    value: &T,
) -> Result<(), EncodeError> {
    let mut json = serde_json::Serializer::new(BufWriter(data));
    value
        .serialize(PlaceholderSerializer {
            inner: &mut json,
            attachments,
        })
        .map_err(|e| EncodeError::Serialize(e.to_string()))
}

/// `io::Write` straight into a `BytesMut`: serde_json writes in many small
/// pieces, and `bytes`' own `Writer` goes through the generic `BufMut::put`
/// path for each of them.
struct BufWriter<'a>(&'a mut BytesMut);

impl std::io::Write for BufWriter<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(buf);
        Ok(())
    }
    #[inline]
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A serializer that forwards everything to `inner`, except binary: each
/// `serialize_bytes` becomes a placeholder and its bytes an attachment.
/// Compound values wrap their elements so binary is caught at any depth.
///
/// Binary is copied once into its attachment: a `&[u8]` is all serde hands
/// over, even for [`Value::Binary`].
struct PlaceholderSerializer<'a, S> {
    inner: S,
    attachments: &'a RefCell<Vec<Bytes>>,
}

/// The newtype name under which [`serialize_raw_json`] offers JSON text.
const RAW_JSON_TOKEN: &str = "\0socketio::RawJson";

thread_local! {
    /// The JSON text [`serialize_raw_json`] is serializing right now
    /// (whole text, span), for [`PlaceholderSerializer`] to copy as it is.
    static RAW_JSON: RefCell<Option<(Str, usize, usize)>> = const { RefCell::new(None) };
}

/// Serialize an argument received as JSON (`text[start..end]`, valid, no
/// attachments): our JSON encoder copies the text as it is (an event
/// relayed as received is not parsed into a tree and written again); any
/// other serializer gets `value`, the same argument as a tree.
pub(crate) fn serialize_raw_json<S: Serializer, V: Serialize + ?Sized>(
    text: &Str,
    start: usize,
    end: usize,
    value: &V,
    s: S,
) -> Result<S::Ok, S::Error> {
    RAW_JSON.with(|slot| *slot.borrow_mut() = Some((text.clone(), start, end)));
    let result = s.serialize_newtype_struct(RAW_JSON_TOKEN, value);
    // Cleared whether or not the serializer took it.
    RAW_JSON.with(|slot| slot.borrow_mut().take());
    result
}

/// A value whose serialization goes through [`PlaceholderSerializer`].
struct Wrapped<'a, T: ?Sized> {
    value: &'a T,
    attachments: &'a RefCell<Vec<Bytes>>,
}

impl<T: Serialize + ?Sized> Serialize for Wrapped<'_, T> {
    #[inline]
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(PlaceholderSerializer {
            inner: s,
            attachments: self.attachments,
        })
    }
}

/// A compound serializer of `inner` whose elements are [`Wrapped`].
struct WrappedCompound<'a, C> {
    inner: C,
    attachments: &'a RefCell<Vec<Bytes>>,
}

impl<'a, C> WrappedCompound<'a, C> {
    #[inline]
    fn wrap<'v, T: ?Sized>(&self, value: &'v T) -> Wrapped<'v, T>
    where
        'a: 'v,
    {
        Wrapped {
            value,
            attachments: self.attachments,
        }
    }
}

macro_rules! forward_scalars {
    ($($name:ident($ty:ty)),* $(,)?) => {$(
        #[inline]
        fn $name(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.inner.$name(v)
        }
    )*};
}

impl<'a, S: Serializer> Serializer for PlaceholderSerializer<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = WrappedCompound<'a, S::SerializeSeq>;
    type SerializeTuple = WrappedCompound<'a, S::SerializeTuple>;
    type SerializeTupleStruct = WrappedCompound<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = WrappedCompound<'a, S::SerializeTupleVariant>;
    type SerializeMap = WrappedCompound<'a, S::SerializeMap>;
    type SerializeStruct = WrappedCompound<'a, S::SerializeStruct>;
    type SerializeStructVariant = WrappedCompound<'a, S::SerializeStructVariant>;

    forward_scalars!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_char(char),
        serialize_str(&str),
        serialize_unit_struct(&'static str),
    );

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        match js_float(v) {
            JsFloat::Integer(n) => self.inner.serialize_i64(n),
            JsFloat::AsIs => self.inner.serialize_f64(v),
            JsFloat::Text(text) => text.serialize(self.inner),
        }
    }
    /// JavaScript has no `f32`: integral values print as integers, others
    /// keep their shortest `f32` form (`0.1`, not the `f64` expansion).
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        if v.fract() == 0.0 && v.abs() < 16_777_216.0 {
            self.inner.serialize_i64(v as i64)
        } else if v.is_finite() && v.fract() != 0.0 {
            self.inner.serialize_f32(v)
        } else {
            self.serialize_f64(f64::from(v))
        }
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        let num = {
            let mut attachments = self.attachments.borrow_mut();
            // Share the buffer when it is a `Value::Binary` or `Binary`.
            let bytes =
                crate::value::take_shared_bytes(v).unwrap_or_else(|| Bytes::copy_from_slice(v));
            attachments.push(bytes);
            attachments.len() - 1
        };
        use serde::ser::SerializeMap;
        let mut map = self.inner.serialize_map(Some(2))?;
        map.serialize_entry("_placeholder", &true)?;
        map.serialize_entry("num", &num)?;
        map.end()
    }
    #[inline]
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(&Wrapped {
            value,
            attachments: self.attachments,
        })
    }
    #[inline]
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }
    #[inline]
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, index, variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        if name == RAW_JSON_TOKEN {
            if let Some((text, start, end)) = RAW_JSON.with(|slot| slot.borrow_mut().take()) {
                // Already validated when it was received: copied as it is.
                let raw: &RawValue = serde_json::from_str(&text[start..end])
                    .map_err(<S::Error as ser::Error>::custom)?;
                return raw.serialize(self.inner);
            }
        }
        self.inner.serialize_newtype_struct(
            name,
            &Wrapped {
                value,
                attachments: self.attachments,
            },
        )
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_newtype_variant(
            name,
            index,
            variant,
            &Wrapped {
                value,
                attachments: self.attachments,
            },
        )
    }
    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Ok(WrappedCompound {
            inner: self.inner.serialize_seq(len)?,
            attachments: self.attachments,
        })
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        Ok(WrappedCompound {
            inner: self.inner.serialize_tuple(len)?,
            attachments: self.attachments,
        })
    }
    #[inline]
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Ok(WrappedCompound {
            inner: self.inner.serialize_tuple_struct(name, len)?,
            attachments: self.attachments,
        })
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Ok(WrappedCompound {
            inner: self
                .inner
                .serialize_tuple_variant(name, index, variant, len)?,
            attachments: self.attachments,
        })
    }
    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(WrappedCompound {
            inner: self.inner.serialize_map(len)?,
            attachments: self.attachments,
        })
    }
    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Ok(WrappedCompound {
            inner: self.inner.serialize_struct(name, len)?,
            attachments: self.attachments,
        })
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Ok(WrappedCompound {
            inner: self
                .inner
                .serialize_struct_variant(name, index, variant, len)?,
            attachments: self.attachments,
        })
    }
    #[inline]
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }
    #[inline]
    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<C: ser::SerializeSeq> ser::SerializeSeq for WrappedCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_element(&value)
    }
    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeTuple> ser::SerializeTuple for WrappedCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_element(&value)
    }
    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeTupleStruct> ser::SerializeTupleStruct for WrappedCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(&value)
    }
    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeTupleVariant> ser::SerializeTupleVariant for WrappedCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(&value)
    }
    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeMap> ser::SerializeMap for WrappedCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    /// Keys are not wrapped: JSON keys are strings, and serde_json's key
    /// serializer refuses binary on its own.
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.inner.serialize_key(key)
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_value(&value)
    }
    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeStruct> ser::SerializeStruct for WrappedCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(key, &value)
    }
    #[inline]
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.inner.skip_field(key)
    }
    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeStructVariant> ser::SerializeStructVariant for WrappedCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(key, &value)
    }
    #[inline]
    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.inner.skip_field(key)
    }
    #[inline]
    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

/// How to write a float so the text matches JavaScript's `JSON.stringify`.
enum JsFloat {
    /// An integral value below 2^53: its exact digits, no `.0`.
    Integer(i64),
    /// serde_json's shortest form already matches JavaScript's.
    AsIs,
    /// The text JavaScript writes, where serde_json would use an exponent
    /// and JavaScript does not (rare: these values allocate).
    Text(Box<RawValue>),
}

/// JavaScript writes shortest round-trip digits like serde_json, but uses
/// plain decimals for 1e-6 <= |v| < 1e21 where serde_json switches to an
/// exponent below 1e-5 and from 1e16, and drops `.0` from integers.
#[inline]
fn js_float(v: f64) -> JsFloat {
    const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0; // 2^53
    let magnitude = v.abs();
    if !v.is_finite() {
        // serde_json writes `null`, as JavaScript does.
        JsFloat::AsIs
    } else if magnitude < EXACT_INTEGERS && (v as i64) as f64 == v {
        // The cast round trip is exact below 2^53 and avoids a `trunc`
        // call. Also turns -0 into 0, as JavaScript does.
        JsFloat::Integer(v as i64)
    } else if (EXACT_INTEGERS..1e21).contains(&magnitude) || (1e-6..1e-5).contains(&magnitude) {
        js_float_text(v)
    } else {
        JsFloat::AsIs
    }
}

/// The rare case of [`js_float`], kept out of line.
#[cold]
#[inline(never)]
fn js_float_text(v: f64) -> JsFloat {
    match RawValue::from_string(js_decimal_text(v)) {
        Ok(raw) => JsFloat::Text(raw),
        Err(_) => JsFloat::AsIs,
    }
}

/// `v` in plain decimal notation with its shortest round-trip digits, for
/// the two ranges [`js_float`] rewrites: large integers padded with zeros,
/// and small values as `0.00000ddd`.
fn js_decimal_text(v: f64) -> String {
    // `{:e}` gives the shortest digits: `d.ddde<exp>`.
    let scientific = format!("{:e}", v.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes a decimal exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut text = String::with_capacity(32);
    if v < 0.0 {
        text.push('-');
    }
    if exponent >= 0 {
        text.push_str(&digits);
        let zeros = (exponent + 1).unsigned_abs() as usize;
        text.extend(std::iter::repeat('0').take(zeros.saturating_sub(digits.len())));
    } else {
        text.push_str("0.");
        text.extend(std::iter::repeat('0').take((-exponent - 1) as usize));
        text.push_str(&digits);
    }
    text
}

// ---------------------------------------------------------------------------
// Decoding

/// The text before the JSON payload.
#[derive(Debug, PartialEq)]
struct Header<'a> {
    kind: PacketType,
    /// Declared attachments (binary types only).
    attachments: usize,
    /// `None` for the main namespace.
    nsp: Option<&'a str>,
    ack: Option<u64>,
    /// The rest of the text, `None` when empty.
    payload: Option<&'a str>,
}

fn parse_header<'a>(text: &'a str, limits: &DecodeLimits) -> Result<Header<'a>, DecodeError> {
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(DecodeError::Empty);
    };
    let kind = first
        .checked_sub(b'0')
        .and_then(PacketType::from_u8)
        .ok_or(DecodeError::UnknownType)?;
    let mut pos = 1;

    let mut attachments = 0;
    if matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        let digits = count_digits(&bytes[pos..]);
        if digits == 0 || bytes.get(pos + digits) != Some(&b'-') {
            return Err(DecodeError::BadAttachmentCount);
        }
        let declared: usize =
            parse_digits(&bytes[pos..pos + digits]).ok_or(DecodeError::BadAttachmentCount)?;
        if declared > limits.max_attachments {
            return Err(DecodeError::TooManyAttachments {
                declared,
                limit: limits.max_attachments,
            });
        }
        attachments = declared;
        pos += digits + 1;
    }

    let mut nsp = None;
    if bytes.get(pos) == Some(&b'/') {
        // Up to a comma or, as clients send `40/custom`, the end of the text.
        match text[pos..].find(',') {
            Some(comma) => {
                nsp = Some(&text[pos..pos + comma]);
                pos += comma + 1;
            }
            None => {
                nsp = Some(&text[pos..]);
                pos = text.len();
            }
        }
    } else if looks_like_unslashed_namespace(&bytes[pos..]) {
        return Err(DecodeError::BadNamespace);
    }

    let mut ack = None;
    let digits = count_digits(&bytes[pos..]);
    if digits > 0 {
        ack = Some(parse_digits::<u64>(&bytes[pos..pos + digits]).ok_or(DecodeError::BadAckId)?);
        pos += digits;
        match bytes.get(pos) {
            None | Some(b'[' | b'{' | b'"' | b' ' | b'\t' | b'\n' | b'\r') => {}
            Some(_) => return Err(DecodeError::BadAckId),
        }
    }

    let payload = (pos < text.len()).then(|| &text[pos..]);
    Ok(Header {
        kind,
        attachments,
        nsp,
        ack,
        payload,
    })
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Decimal digits to a number, `None` on overflow.
fn parse_digits<N: CheckedDecimal>(digits: &[u8]) -> Option<N> {
    digits
        .iter()
        .try_fold(N::ZERO, |n, &d| n.push_digit(d - b'0'))
}

trait CheckedDecimal: Sized {
    const ZERO: Self;
    fn push_digit(self, digit: u8) -> Option<Self>;
}
impl CheckedDecimal for u64 {
    const ZERO: Self = 0;
    fn push_digit(self, digit: u8) -> Option<Self> {
        self.checked_mul(10)?.checked_add(u64::from(digit))
    }
}
impl CheckedDecimal for usize {
    const ZERO: Self = 0;
    fn push_digit(self, digit: u8) -> Option<Self> {
        self.checked_mul(10)?.checked_add(usize::from(digit))
    }
}

/// `admin,["x"]`: text before a comma that cannot start JSON, which the
/// sender most likely meant as a namespace without its leading `/`.
fn looks_like_unslashed_namespace(rest: &[u8]) -> bool {
    match rest.first() {
        None => false,
        Some(b) if b.is_ascii_digit() || b"[{\"-tfn \t\r\n".contains(b) => false,
        Some(_) => {
            let json_start = rest
                .iter()
                .position(|b| b"[{\"".contains(b))
                .unwrap_or(rest.len());
            rest[..json_start].contains(&b',')
        }
    }
}

/// Decode a text message: the packet, or `None` with `pending` set when
/// attachments must follow. Returns the packet itself rather than an
/// intermediate enum, so it is built in place and not moved again.
#[inline]
fn decode_text(
    text: Str,
    limits: &DecodeLimits,
    pending: &mut Option<Box<PendingBinary>>,
) -> Result<Option<Packet>, DecodeError> {
    if u32::try_from(text.len()).is_err() {
        return Err(DecodeError::BadPayload("packet too large".into()));
    }
    let header = parse_header(&text, limits)?;
    let nsp = match header.nsp {
        None => Str::from_static("/"),
        Some(nsp) => text.slice_ref(nsp),
    };
    let no_ack_id = |header: &Header| {
        if header.ack.is_some() {
            Err(DecodeError::BadAckId)
        } else {
            Ok(())
        }
    };
    let binary = matches!(header.kind, PacketType::BinaryEvent | PacketType::BinaryAck);
    let payload_start = text.len() - header.payload.map_or(0, str::len);

    let data = match header.kind {
        PacketType::Connect => {
            no_ack_id(&header)?;
            match header.payload {
                None => PacketData::Connect(None),
                Some(payload) => match parse_value(payload, limits)? {
                    value @ Value::Object(_) => PacketData::Connect(Some(value)),
                    _ => {
                        return Err(DecodeError::InvalidPayload(
                            "CONNECT payload must be an object",
                        ))
                    }
                },
            }
        }
        PacketType::Disconnect => {
            no_ack_id(&header)?;
            if header.payload.is_some() {
                return Err(DecodeError::InvalidPayload("DISCONNECT has no payload"));
            }
            PacketData::Disconnect
        }
        PacketType::ConnectError => {
            no_ack_id(&header)?;
            let payload = header
                .payload
                .ok_or(DecodeError::InvalidPayload("CONNECT_ERROR needs a payload"))?;
            match parse_value(payload, limits)? {
                value @ (Value::Object(_) | Value::String(_)) => PacketData::ConnectError(value),
                _ => {
                    return Err(DecodeError::InvalidPayload(
                        "CONNECT_ERROR payload must be an object or a string",
                    ))
                }
            }
        }
        PacketType::Event | PacketType::BinaryEvent => {
            let payload = header
                .payload
                .ok_or(DecodeError::InvalidPayload("EVENT needs a payload"))?;
            let args = ArgsText {
                text: text.clone(),
                array_start: Some(payload_start as u32),
                has_name: true,
                max_depth: limits.max_depth,
            };
            let (name, spans) = if binary {
                check_depth(payload, limits.max_depth)?;
                let array = parse_array(&text, payload, true)?;
                let name = match array.name {
                    None => {
                        return Err(DecodeError::InvalidPayload(
                            "EVENT payload must be a non-empty array",
                        ))
                    }
                    Some(EventName::Borrowed(name)) => text.slice_ref(name),
                    Some(EventName::Owned(name)) => Str::from(name),
                    Some(EventName::Invalid) => {
                        return Err(DecodeError::InvalidPayload(
                            "an event name must be a string or a number",
                        ))
                    }
                };
                (name, Some(array.spans))
            } else {
                read_event_name(&text, payload_start, limits)?
            };
            if RESERVED_EVENTS.contains(&&*name) {
                return Err(DecodeError::ReservedEvent);
            }
            let head = BinaryHead::Event {
                name,
                ack: header.ack,
            };
            return finish_args(nsp, &header, head, args, spans, pending);
        }
        PacketType::Ack | PacketType::BinaryAck => {
            let id = header.ack.ok_or(DecodeError::BadAckId)?;
            let mut args = ArgsText {
                text: text.clone(),
                array_start: Some(payload_start as u32),
                has_name: false,
                max_depth: limits.max_depth,
            };
            // The reference accepts an ACK without payload: no arguments.
            let spans = match header.payload {
                None => {
                    args.array_start = None;
                    Some(Spans::new())
                }
                Some(payload) if binary => {
                    check_depth(payload, limits.max_depth)?;
                    Some(parse_array(&text, payload, false)?.spans)
                }
                Some(payload) => {
                    let open = skip_whitespace(text.as_bytes(), payload_start);
                    if text.as_bytes().get(open) != Some(&b'[') {
                        return Err(classify(
                            payload,
                            limits,
                            DecodeError::InvalidPayload("event and ack payloads must be arrays"),
                        ));
                    }
                    empty_array_rest(text.as_bytes(), open + 1)?.then(Spans::new)
                }
            };
            return finish_args(nsp, &header, BinaryHead::Ack { id }, args, spans, pending);
        }
    };
    Ok(Some(Packet { nsp, data }))
}

/// Build the packet of an event or ack, or the pending state of a binary
/// one. `spans` are the arguments when already checked, `None` when they
/// are left for [`Args`] to check.
#[inline]
fn finish_args(
    nsp: Str,
    header: &Header,
    head: BinaryHead,
    args: ArgsText,
    spans: Option<Spans>,
    pending: &mut Option<Box<PendingBinary>>,
) -> Result<Option<Packet>, DecodeError> {
    let binary = matches!(header.kind, PacketType::BinaryEvent | PacketType::BinaryAck);
    if !binary {
        let checked = spans.map_or_else(OnceLock::new, |spans| OnceLock::from(Ok(spans)));
        let args = args.into_args(checked, Vec::new());
        let data = match head {
            BinaryHead::Event { name, ack } => PacketData::Event { name, args, ack },
            BinaryHead::Ack { id } => PacketData::Ack { id, args },
        };
        return Ok(Some(Packet { nsp, data }));
    }
    let spans = spans.expect("binary packets are checked at decode time");
    // Placeholders only mean something in binary packets, as in the
    // reference decoder.
    for &(start, end) in &spans {
        check_placeholders(&args.text[start as usize..end as usize], header.attachments)?;
    }
    let binary = PendingBinary {
        nsp,
        head,
        args,
        spans,
        expected: header.attachments,
        attachments: Vec::new(),
        attachment_bytes: 0,
    };
    if binary.expected == 0 {
        return Ok(Some(binary.finish()));
    }
    *pending = Some(Box::new(binary));
    Ok(None)
}

/// Check the arguments of a plain EVENT or ACK in full, for [`Args`]: the
/// same rules as binary packets get at decode time. `start` is where the
/// payload starts in `text`.
pub(crate) fn validate_args(
    text: &str,
    start: usize,
    has_name: bool,
    max_depth: usize,
) -> Result<Spans, DecodeError> {
    let payload = &text[start..];
    check_depth(payload, max_depth)?;
    let spans = parse_array(text, payload, has_name)?.spans;
    // The spans came from a pass that skips values without decoding them;
    // read each once more as a value would be, so what passes here also
    // converts (strings with lone surrogates do not, and serde_json's
    // recursion limit applies whatever `max_depth` is).
    for &(start, end) in &spans {
        let mut json = serde_json::Deserializer::from_str(&text[start as usize..end as usize]);
        Walk.deserialize(&mut json).map_err(bad_json)?;
    }
    Ok(spans)
}

/// Reads any JSON value in full, keeping nothing.
#[derive(Clone, Copy)]
struct Walk;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).copied().is_some_and(is_json_whitespace) {
        pos += 1;
    }
    pos
}

/// After an array's `[` (or an item): whether the array ends right here
/// (`]` then only whitespace). A `]` followed by anything else is an error.
fn empty_array_rest(bytes: &[u8], pos: usize) -> Result<bool, DecodeError> {
    let pos = skip_whitespace(bytes, pos);
    if bytes.get(pos) != Some(&b']') {
        return Ok(false);
    }
    if skip_whitespace(bytes, pos + 1) != bytes.len() {
        return Err(DecodeError::BadPayload(
            "trailing characters after the array".into(),
        ));
    }
    Ok(true)
}

/// `shape` (a payload of the wrong shape), unless the payload is not even
/// valid JSON: then that. Only on the way to an error.
#[cold]
fn classify(payload: &str, limits: &DecodeLimits, shape: DecodeError) -> DecodeError {
    if let Err(e) = check_depth(payload, limits.max_depth) {
        return e;
    }
    match serde_json::from_str::<IgnoredAny>(payload) {
        Err(e) => bad_json(e),
        Ok(_) => shape,
    }
}

/// Read a plain EVENT's name, the first item of the array at `start` in
/// `text`, leaving the arguments after it unparsed. Returns the name, and
/// the (empty) spans when the array holds nothing else.
fn read_event_name(
    text: &Str,
    start: usize,
    limits: &DecodeLimits,
) -> Result<(Str, Option<Spans>), DecodeError> {
    let payload = &text[start..];
    let bytes = text.as_bytes();
    let open = skip_whitespace(bytes, start);
    if bytes.get(open) != Some(&b'[') {
        return Err(classify(
            payload,
            limits,
            DecodeError::InvalidPayload("event and ack payloads must be arrays"),
        ));
    }
    let first = skip_whitespace(bytes, open + 1);
    let (name, end) = match bytes.get(first) {
        Some(b'"') => {
            let mut pos = first + 1;
            let mut escaped = false;
            loop {
                match bytes.get(pos) {
                    None => return Err(DecodeError::BadPayload("unterminated string".into())),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        escaped = true;
                        pos += 2;
                    }
                    Some(&b) if b < 0x20 => {
                        return Err(DecodeError::BadPayload(
                            "control character in a string".into(),
                        ))
                    }
                    Some(_) => pos += 1,
                }
            }
            let name = if escaped {
                Str::from(serde_json::from_str::<String>(&text[first..=pos]).map_err(bad_json)?)
            } else {
                text.slice_ref(&text[first + 1..pos])
            };
            (name, pos + 1)
        }
        Some(b'-' | b'0'..=b'9') => {
            let end = first
                + bytes[first..]
                    .iter()
                    .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .count();
            let mut json = serde_json::Deserializer::from_str(&text[first..end]);
            let name = NameSeed.deserialize(&mut json).map_err(bad_json)?;
            json.end().map_err(bad_json)?;
            match name {
                EventName::Borrowed(name) => (text.slice_ref(name), end),
                EventName::Owned(name) => (Str::from(name), end),
                EventName::Invalid => unreachable!("a number is a valid name"),
            }
        }
        Some(b']') => {
            return Err(classify(
                payload,
                limits,
                DecodeError::InvalidPayload("EVENT payload must be a non-empty array"),
            ))
        }
        Some(b't' | b'f' | b'n' | b'[' | b'{') => {
            return Err(classify(
                payload,
                limits,
                DecodeError::InvalidPayload("an event name must be a string or a number"),
            ))
        }
        _ => {
            return Err(classify(
                payload,
                limits,
                DecodeError::BadPayload("invalid event array".into()),
            ))
        }
    };
    let next = skip_whitespace(bytes, end);
    match bytes.get(next) {
        Some(b',') => Ok((name, None)),
        Some(b']') => Ok((name, empty_array_rest(bytes, next)?.then(Spans::new))),
        _ => Err(classify(
            payload,
            limits,
            DecodeError::BadPayload("invalid event array".into()),
        )),
    }
}

fn bad_json(e: serde_json::Error) -> DecodeError {
    DecodeError::BadPayload(e.to_string())
}

fn parse_value(payload: &str, limits: &DecodeLimits) -> Result<Value, DecodeError> {
    check_depth(payload, limits.max_depth)?;
    serde_json::from_str(payload).map_err(bad_json)
}

/// Reject nesting deeper than `max_depth` with a linear scan before any
/// recursive parsing. Brackets inside strings do not count; the JSON's
/// syntax is checked afterwards by the parser, so a malformed text only
/// makes this count meaningless, never unsafe.
pub(crate) fn check_depth(json: &str, max_depth: usize) -> Result<(), DecodeError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(DecodeError::BadPayload(format!(
                        "nesting deeper than {max_depth}"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// An event's first array item.
enum EventName<'de> {
    /// A string without escapes: a slice of the received text.
    Borrowed(&'de str),
    /// A string with escapes, or a number's decimal text.
    Owned(String),
    /// Anything else.
    Invalid,
}

struct ParsedArray<'de> {
    /// `None` when the array is empty (or no name was asked for).
    name: Option<EventName<'de>>,
    spans: Spans,
}

/// Parse `payload` (a slice of `text`) as an array, keeping each item (after
/// the event name when `with_name`) as its byte range in `text`.
fn parse_array<'a>(
    text: &'a str,
    payload: &'a str,
    with_name: bool,
) -> Result<ParsedArray<'a>, DecodeError> {
    let json_whitespace: &[char] = &[' ', '\t', '\n', '\r'];
    if !payload.trim_start_matches(json_whitespace).starts_with('[') {
        // Tell malformed JSON from well-formed JSON of the wrong shape.
        serde_json::from_str::<IgnoredAny>(payload).map_err(bad_json)?;
        return Err(DecodeError::InvalidPayload(
            "event and ack payloads must be arrays",
        ));
    }
    let mut json = serde_json::Deserializer::from_str(payload);
    let array = ArraySeed {
        base: text,
        with_name,
    }
    .deserialize(&mut json)
    .map_err(bad_json)?;
    json.end().map_err(bad_json)?;
    Ok(array)
}

struct ArraySeed<'a> {
    base: &'a str,
    with_name: bool,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ParsedArray<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ParsedArray<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut name = None;
        if self.with_name {
            name = seq.next_element_seed(NameSeed)?;
            if name.is_none() {
                return Ok(ParsedArray {
                    name,
                    spans: Spans::new(),
                });
            }
        }
        let mut spans = Spans::new();
        let base = self.base.as_ptr() as usize;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let raw = raw.get();
            // The raw value borrows from the payload, itself inside `base`,
            // whose length fits u32 (checked before parsing).
            let start = raw.as_ptr() as usize - base;
            let end = start + raw.len();
            match (u32::try_from(start), u32::try_from(end)) {
                (Ok(start), Ok(end)) => spans.push((start, end)),
                _ => return Err(de::Error::custom("packet too large")),
            }
        }
        Ok(ParsedArray { name, spans })
    }
}

struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = EventName<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = EventName<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(EventName::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(EventName::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(EventName::Owned(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(EventName::Owned(itoa::Buffer::new().format(v).to_owned()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(EventName::Owned(itoa::Buffer::new().format(v).to_owned()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(EventName::Owned(js_number_text(v)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(EventName::Invalid)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(EventName::Invalid)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(EventName::Invalid)
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(EventName::Invalid)
    }
}

/// A number's text as JavaScript's `String(n)` writes it (the same as
/// `JSON.stringify` for finite numbers).
pub(crate) fn js_number_text(v: f64) -> String {
    match js_float(v) {
        JsFloat::Integer(n) => itoa::Buffer::new().format(n).to_owned(),
        JsFloat::Text(raw) => raw.get().to_owned(),
        // Finite here: JSON has no NaN or infinity.
        JsFloat::AsIs => serde_json::to_string(&v).unwrap_or_default(),
    }
}

/// Check every placeholder in `json` refers to an existing attachment.
fn check_placeholders(json: &str, attachments: usize) -> Result<(), DecodeError> {
    let bad = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(json);
    let walked = PlaceholderWalk {
        attachments,
        bad: &bad,
    }
    .deserialize(&mut de);
    if bad.get() {
        return Err(DecodeError::BadPlaceholder);
    }
    walked.map_err(bad_json)?;
    Ok(())
}

/// Walks a JSON value checking placeholders; reports what it saw so a map
/// can tell `"_placeholder": true` and `"num": <integer>`.
#[derive(Clone, Copy)]
struct PlaceholderWalk<'c> {
    attachments: usize,
    bad: &'c Cell<bool>,
}

enum Seen {
    True,
    Index(u64),
    Other,
}

impl<'de> DeserializeSeed<'de> for PlaceholderWalk<'_> {
    type Value = Seen;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PlaceholderWalk<'_> {
    type Value = Seen;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Seen, E> {
        Ok(if v { Seen::True } else { Seen::Other })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Seen, E> {
        Ok(Seen::Index(v))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_f64<E>(self, v: f64) -> Result<Seen, E> {
        // `1.0` is the number 1 to JavaScript.
        if v >= 0.0 && v.fract() == 0.0 && v < 9_007_199_254_740_992.0 {
            Ok(Seen::Index(v as u64))
        } else {
            Ok(Seen::Other)
        }
    }
    fn visit_str<E>(self, _: &str) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_unit<E>(self) -> Result<Seen, E> {
        Ok(Seen::Other)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Seen, S::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(Seen::Other)
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Seen, M::Error> {
        let mut placeholder = false;
        let mut num = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value_seed(self)?;
            // Later duplicates win, as with JSON.parse.
            match key {
                Key::Placeholder => placeholder = matches!(value, Seen::True),
                Key::Num => num = Some(value),
                Key::Other => {}
            }
        }
        if placeholder {
            match num {
                Some(Seen::Index(n)) if n < self.attachments as u64 => {}
                _ => {
                    self.bad.set(true);
                    return Err(de::Error::custom("invalid placeholder"));
                }
            }
        }
        Ok(Seen::Other)
    }
}

enum Key {
    Placeholder,
    Num,
    Other,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "_placeholder" => Key::Placeholder,
            "num" => Key::Num,
            _ => Key::Other,
        })
    }
}

/// The text of a BINARY_EVENT `up` on `/` declaring `count` attachments,
/// for the tests of the decoder and of its users.
#[cfg(test)]
pub(crate) fn binary_event_declaring(count: usize) -> String {
    let placeholders: String = (0..count)
        .map(|num| format!(r#",{{"_placeholder":true,"num":{num}}}"#))
        .collect();
    format!(r#"5{count}-["up"{placeholders}]"#)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Number;
    use proptest::prelude::*;

    fn obj(entries: &[(&str, Value)]) -> Value {
        Value::Object(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn encode<A: Serialize + ?Sized>(packet: OutPacket<'_, A>) -> Result<Encoded, EncodeError> {
        let mut out = Encoded::default();
        JsonParser.encode(&packet, &mut out)?;
        Ok(out)
    }

    fn text_of(out: &Encoded) -> &str {
        assert!(!out.binary);
        std::str::from_utf8(&out.data).unwrap()
    }

    fn encoded<A: Serialize + ?Sized>(packet: OutPacket<'_, A>) -> String {
        let out = encode(packet).unwrap();
        assert!(out.attachments.is_empty());
        text_of(&out).to_owned()
    }

    fn text(s: &str) -> Message {
        Message::Text(Str::from(s))
    }

    fn bin(b: &'static [u8]) -> Message {
        Message::Binary(Bytes::from_static(b))
    }

    /// Feed all messages; the last one must complete the packet.
    fn decode_msgs(messages: Vec<Message>) -> Result<Packet, DecodeError> {
        let mut decoder = JsonParserDecoder::default();
        let limits = DecodeLimits::default();
        let count = messages.len();
        for (i, message) in messages.into_iter().enumerate() {
            let result = JsonParser.decode(&mut decoder, message, &limits)?;
            if i + 1 == count {
                return Ok(result.expect("packet complete after the last message"));
            }
            assert!(result.is_none(), "packet complete too early");
        }
        unreachable!("no message")
    }

    fn decode(s: &str) -> Result<Packet, DecodeError> {
        decode_msgs(vec![text(s)])
    }

    fn event_of(packet: &Packet) -> (&str, &Args, Option<u64>) {
        match &packet.data {
            PacketData::Event { name, args, ack } => (name, args, *ack),
            other => panic!("not an event: {other:?}"),
        }
    }

    fn ack_of(packet: &Packet) -> (u64, &Args) {
        match &packet.data {
            PacketData::Ack { id, args } => (*id, args),
            other => panic!("not an ack: {other:?}"),
        }
    }

    /// A packet accepted at decode time whose arguments are invalid: every
    /// way of reading them fails.
    fn assert_args_rejected(packet: &Packet, what: &str) {
        let args = match &packet.data {
            PacketData::Event { args, .. } | PacketData::Ack { args, .. } => args,
            other => panic!("not an event or ack: {other:?}"),
        };
        assert!(args.validate().is_err(), "{what}: validate");
        assert!(args.deserialize::<()>().is_err(), "{what}: deserialize ()");
        assert!(args.deserialize::<Value>().is_err(), "{what}: deserialize");
        assert!(
            args.deserialize::<(Value, Value, Value)>().is_err(),
            "{what}: deserialize tuple"
        );
        assert!(
            args.deserialize::<Option<IgnoredAny>>().is_err(),
            "{what}: deserialize ignored"
        );
        assert!(args.to_values().is_err(), "{what}: to_values");
        assert!(args.get::<Value>(0).is_err(), "{what}: get");
        assert_eq!(args.len(), 0, "{what}: len");
        assert_eq!(args.json_texts().unwrap().count(), 0, "{what}: json_texts");
        let mut out = Encoded::default();
        assert!(
            JsonParser
                .encode(
                    &OutPacket::Ack {
                        nsp: "/",
                        id: 1,
                        args
                    },
                    &mut out
                )
                .is_err(),
            "{what}: re-encode"
        );
    }

    fn ph(n: u64) -> Value {
        obj(&[("_placeholder", Value::Bool(true)), ("num", Value::from(n))])
    }

    // --- Encoding: the spec's examples -----------------------------------

    #[test]
    fn encodes_spec_connect_examples() {
        assert_eq!(
            encoded::<Value>(OutPacket::Connect {
                nsp: "/",
                data: None
            }),
            "0"
        );
        let sid = obj(&[("sid", "oSO0OpakMV_3jnilAAAA".into())]);
        assert_eq!(
            encoded(OutPacket::Connect {
                nsp: "/admin",
                data: Some(&sid)
            }),
            r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#
        );
        let refused = obj(&[("message", "Not authorized".into())]);
        assert_eq!(
            encoded(OutPacket::ConnectError {
                nsp: "/",
                data: &refused
            }),
            r#"4{"message":"Not authorized"}"#
        );
        assert_eq!(
            encoded(OutPacket::ConnectError {
                nsp: "/admin",
                data: "nope"
            }),
            r#"4/admin,"nope""#
        );
    }

    #[test]
    fn encodes_spec_event_and_ack_examples() {
        let e = |nsp, event, ack| {
            encoded(OutPacket::Event {
                nsp,
                event,
                args: &(),
                ack,
            })
        };
        assert_eq!(e("/", "foo", None), r#"2["foo"]"#);
        assert_eq!(e("/admin", "bar", None), r#"2/admin,["bar"]"#);
        assert_eq!(e("/", "foo", Some(12)), r#"212["foo"]"#);
        assert_eq!(
            encoded(OutPacket::Ack {
                nsp: "/admin",
                id: 13,
                args: &("bar",)
            }),
            r#"3/admin,13["bar"]"#
        );
        assert_eq!(
            encoded(OutPacket::Ack {
                nsp: "/",
                id: 12,
                args: &()
            }),
            "312[]"
        );
        assert_eq!(encoded::<()>(OutPacket::Disconnect { nsp: "/" }), "1");
        assert_eq!(
            encoded::<()>(OutPacket::Disconnect { nsp: "/admin" }),
            "1/admin,"
        );
    }

    #[test]
    fn encodes_message_back_byte_for_byte() {
        let third = obj(&[("3", Value::Array(vec![Value::Bool(true)]))]);
        assert_eq!(
            encoded(OutPacket::Event {
                nsp: "/",
                event: "message-back",
                args: &(1, "2", &third),
                ack: None,
            }),
            r#"2["message-back",1,"2",{"3":[true]}]"#
        );
    }

    #[test]
    fn relayed_arguments_are_copied_as_received() {
        let packet =
            decode(r#"2["in",{"a":1e5,"b":"\u00e9"},[1, 2],"x",12345678901234567890123]"#).unwrap();
        let (_, args, _) = event_of(&packet);
        // Our encoder copies each argument's text: numbers, escapes and
        // spacing as the peer wrote them (a big integer survives intact).
        assert_eq!(
            encoded(OutPacket::Event {
                nsp: "/",
                event: "out",
                args,
                ack: None,
            }),
            r#"2["out",{"a":1e5,"b":"\u00e9"},[1, 2],"x",12345678901234567890123]"#
        );
        // Nested in other data, too.
        assert_eq!(
            encoded(OutPacket::Event {
                nsp: "/",
                event: "out",
                args: &(1, args),
                ack: None,
            }),
            r#"2["out",1,[{"a":1e5,"b":"\u00e9"},[1, 2],"x",12345678901234567890123]]"#
        );
        // Any other serializer gets the values.
        let small = decode(r#"2["in",{"a":1e5,"b":"\u00e9"},[1, 2]]"#).unwrap();
        let (_, small_args, _) = event_of(&small);
        assert_eq!(
            serde_json::to_string(small_args).unwrap(),
            r#"[{"a":100000.0,"b":"é"},[1,2]]"#
        );
        assert_eq!(
            crate::value::to_value(small_args).unwrap(),
            Value::Array(vec![
                obj(&[("a", Value::from(100000.0)), ("b", Value::from("é"))]),
                Value::Array(vec![Value::from(1u64), Value::from(2u64)]),
            ])
        );
    }

    #[test]
    fn encodes_spec_binary_examples() {
        let out = encode(OutPacket::Event {
            nsp: "/",
            event: "baz",
            args: &Bytes::from_static(&[1, 2, 3, 4]),
            ack: None,
        })
        .unwrap();
        assert_eq!(text_of(&out), r#"51-["baz",{"_placeholder":true,"num":0}]"#);
        assert_eq!(out.attachments, vec![Bytes::from_static(&[1, 2, 3, 4])]);

        let out = encode(OutPacket::Event {
            nsp: "/admin",
            event: "baz",
            args: &(Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])),
            ack: None,
        })
        .unwrap();
        assert_eq!(
            text_of(&out),
            r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(
            out.attachments,
            vec![Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])]
        );

        let out = encode(OutPacket::Ack {
            nsp: "/",
            id: 15,
            args: &("bar", Value::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
        })
        .unwrap();
        assert_eq!(
            text_of(&out),
            r#"61-15["bar",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(out.attachments, vec![Bytes::from_static(&[1, 2, 3, 4])]);
    }

    #[test]
    fn nested_binary_keeps_document_order() {
        #[derive(serde::Serialize)]
        struct Inner {
            deep: Option<Bytes>,
        }
        #[derive(serde::Serialize)]
        struct Outer {
            a: Bytes,
            list: Vec<Bytes>,
            inner: Inner,
            tail: Value,
        }
        let outer = Outer {
            a: Bytes::from_static(b"a"),
            list: vec![Bytes::from_static(b"b"), Bytes::from_static(b"c")],
            inner: Inner {
                deep: Some(Bytes::from_static(b"d")),
            },
            tail: Value::Array(vec![
                Value::Null,
                obj(&[("e", Value::Binary(Bytes::from_static(b"e")))]),
            ]),
        };
        let out = encode(OutPacket::Event {
            nsp: "/",
            event: "x",
            args: &(&outer, Bytes::from_static(b"f")),
            ack: Some(7),
        })
        .unwrap();
        let p = |n| format!(r#"{{"_placeholder":true,"num":{n}}}"#);
        assert_eq!(
            text_of(&out),
            format!(
                r#"56-7["x",{{"a":{},"list":[{},{}],"inner":{{"deep":{}}},"tail":[null,{{"e":{}}}]}},{}]"#,
                p(0),
                p(1),
                p(2),
                p(3),
                p(4),
                p(5)
            )
        );
        let expected: Vec<Bytes> = [b"a", b"b", b"c", b"d", b"e", b"f"]
            .iter()
            .map(|b| Bytes::from_static(*b))
            .collect();
        assert_eq!(out.attachments, expected);
    }

    #[test]
    fn many_attachments_write_a_multi_digit_count() {
        let args: Vec<Bytes> = (0..12u8).map(|i| Bytes::from(vec![i])).collect();
        let out = encode(OutPacket::Event {
            nsp: "/n",
            event: "x",
            args: &args,
            ack: Some(3),
        })
        .unwrap();
        assert!(text_of(&out).starts_with(r#"512-/n,3["x",[{"_placeholder":true,"num":0},"#));
        assert_eq!(out.attachments.len(), 12);
    }

    #[test]
    fn encode_reuses_the_buffer() {
        let mut out = Encoded::default();
        for _ in 0..3 {
            JsonParser
                .encode(
                    &OutPacket::Event {
                        nsp: "/",
                        event: "e",
                        args: &Bytes::from_static(b"x"),
                        ack: None,
                    },
                    &mut out,
                )
                .unwrap();
            assert_eq!(out.attachments.len(), 1);
            JsonParser
                .encode(
                    &OutPacket::Event {
                        nsp: "/",
                        event: "e",
                        args: &(1, 2),
                        ack: None,
                    },
                    &mut out,
                )
                .unwrap();
            assert_eq!(text_of(&out), r#"2["e",1,2]"#);
            assert!(out.attachments.is_empty());
        }
    }

    #[test]
    fn encode_rejects_misuse() {
        let mut out = Encoded::default();
        let bad_nsp = |nsp| {
            encode(OutPacket::Event {
                nsp,
                event: "e",
                args: &(),
                ack: None,
            })
            .unwrap_err()
        };
        assert_eq!(bad_nsp("admin"), EncodeError::BadNamespace);
        assert_eq!(bad_nsp(""), EncodeError::BadNamespace);
        assert_eq!(bad_nsp("/a,b"), EncodeError::BadNamespace);
        for reserved in RESERVED_EVENTS {
            assert_eq!(
                encode(OutPacket::Event {
                    nsp: "/",
                    event: reserved,
                    args: &(),
                    ack: None
                })
                .unwrap_err(),
                EncodeError::ReservedEvent
            );
        }
        assert!(matches!(
            encode(OutPacket::Connect {
                nsp: "/",
                data: Some(&5)
            }),
            Err(EncodeError::InvalidPayload(_))
        ));
        assert!(matches!(
            encode(OutPacket::Connect {
                nsp: "/",
                data: Some(&vec![1])
            }),
            Err(EncodeError::InvalidPayload(_))
        ));
        assert!(matches!(
            encode(OutPacket::Connect {
                nsp: "/",
                data: Some(&obj(&[("b", Value::Binary(Bytes::new()))]))
            }),
            Err(EncodeError::InvalidPayload(_))
        ));
        assert!(matches!(
            encode(OutPacket::ConnectError { nsp: "/", data: &1 }),
            Err(EncodeError::InvalidPayload(_))
        ));
        // A map with a non-string key cannot be JSON.
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1);
        JsonParser
            .encode(
                &OutPacket::Event {
                    nsp: "/",
                    event: "e",
                    args: &map,
                    ack: None,
                },
                &mut out,
            )
            .unwrap_err();
        assert!(out.data.is_empty(), "a failed encode leaves nothing behind");
    }

    // --- Decoding: the spec's examples -----------------------------------

    #[test]
    fn decodes_spec_connect_examples() {
        assert_eq!(
            decode("0").unwrap(),
            Packet {
                nsp: Str::from_static("/"),
                data: PacketData::Connect(None)
            }
        );
        assert_eq!(
            decode(r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#).unwrap(),
            Packet {
                nsp: Str::from_static("/admin"),
                data: PacketData::Connect(Some(obj(&[("sid", "oSO0OpakMV_3jnilAAAA".into())])))
            }
        );
        assert_eq!(
            decode(r#"0/admin,{"token":"123"}"#).unwrap().data,
            PacketData::Connect(Some(obj(&[("token", "123".into())])))
        );
        // Clients send the namespace with and without the trailing comma.
        for s in ["0/admin", "0/admin,"] {
            assert_eq!(
                decode(s).unwrap(),
                Packet {
                    nsp: Str::from_static("/admin"),
                    data: PacketData::Connect(None)
                }
            );
        }
        assert_eq!(
            decode(r#"4{"message":"Not authorized"}"#).unwrap().data,
            PacketData::ConnectError(obj(&[("message", "Not authorized".into())]))
        );
        assert_eq!(
            decode(r#"4/admin,"nope""#).unwrap(),
            Packet {
                nsp: Str::from_static("/admin"),
                data: PacketData::ConnectError("nope".into())
            }
        );
        assert_eq!(decode("1").unwrap().data, PacketData::Disconnect);
        assert_eq!(
            decode("1/admin,").unwrap(),
            Packet {
                nsp: Str::from_static("/admin"),
                data: PacketData::Disconnect
            }
        );
    }

    #[test]
    fn decodes_spec_event_and_ack_examples() {
        let p = decode(r#"2["foo"]"#).unwrap();
        assert_eq!(p.nsp, "/");
        let (name, args, ack) = event_of(&p);
        assert_eq!((name, args.len(), ack), ("foo", 0, None));

        let p = decode(r#"2/admin,["bar"]"#).unwrap();
        assert_eq!(p.nsp, "/admin");
        assert_eq!(event_of(&p).0, "bar");

        let p = decode(r#"212["foo"]"#).unwrap();
        assert_eq!(event_of(&p).2, Some(12));

        let p = decode(r#"3/admin,13["bar"]"#).unwrap();
        assert_eq!(p.nsp, "/admin");
        let (id, args) = ack_of(&p);
        assert_eq!(id, 13);
        assert_eq!(args.to_values().unwrap(), vec![Value::from("bar")]);

        let p = decode("312[]").unwrap();
        assert_eq!(ack_of(&p).0, 12);
        assert!(ack_of(&p).1.is_empty());

        // The reference decoder accepts an ACK without payload.
        let p = decode("35").unwrap();
        assert_eq!(ack_of(&p).0, 5);
        assert!(ack_of(&p).1.is_empty());

        let p = decode(r#"2["message-back",1,"2",{"3":[true]}]"#).unwrap();
        let (name, args, _) = event_of(&p);
        assert_eq!(name, "message-back");
        assert_eq!(
            args.to_values().unwrap(),
            vec![
                Value::from(1u64),
                Value::from("2"),
                obj(&[("3", Value::Array(vec![Value::Bool(true)]))])
            ]
        );
        assert_eq!(
            args.json_texts().unwrap().collect::<Vec<_>>(),
            vec!["1", r#""2""#, r#"{"3":[true]}"#]
        );
    }

    #[test]
    fn decodes_spec_binary_examples() {
        let attachment = Bytes::from_static(&[1, 2, 3, 4]);
        let p = decode_msgs(vec![
            text(r#"51-["baz",{"_placeholder":true,"num":0}]"#),
            Message::Binary(attachment.clone()),
        ])
        .unwrap();
        let (name, args, ack) = event_of(&p);
        assert_eq!((name, ack), ("baz", None));
        let values = args.to_values().unwrap();
        assert_eq!(values, vec![Value::Binary(attachment.clone())]);
        // The attachment is the received buffer, not a copy.
        match &values[0] {
            Value::Binary(b) => assert_eq!(b.as_ptr(), attachment.as_ptr()),
            _ => unreachable!(),
        }
        assert_eq!(args.attachments()[0].as_ptr(), attachment.as_ptr());

        let p = decode_msgs(vec![
            text(
                r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            ),
            bin(&[1, 2]),
            bin(&[3, 4]),
        ])
        .unwrap();
        assert_eq!(p.nsp, "/admin");
        assert_eq!(
            event_of(&p).1.to_values().unwrap(),
            vec![
                Value::Binary(Bytes::from_static(&[1, 2])),
                Value::Binary(Bytes::from_static(&[3, 4]))
            ]
        );

        let p = decode_msgs(vec![
            text(r#"61-15["bar",{"_placeholder":true,"num":0}]"#),
            bin(&[1, 2, 3, 4]),
        ])
        .unwrap();
        let (id, args) = ack_of(&p);
        assert_eq!(id, 15);
        assert_eq!(
            args.to_values().unwrap(),
            vec![
                Value::from("bar"),
                Value::Binary(Bytes::from_static(&[1, 2, 3, 4]))
            ]
        );

        // From the spec's sample session (without the Engine.IO `4`).
        let p = decode_msgs(vec![
            text(r#"61-/admin,1[{"_placeholder":true,"num":0}]"#),
            bin(b"data"),
        ])
        .unwrap();
        assert_eq!(p.nsp, "/admin");
        assert_eq!(ack_of(&p).0, 1);

        // Placeholders nested anywhere, referenced in any order.
        let p = decode_msgs(vec![
            text(
                r#"52-["x",{"a":[1,{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]"#,
            ),
            bin(b"zero"),
            bin(b"one"),
        ])
        .unwrap();
        assert_eq!(
            event_of(&p).1.to_values().unwrap(),
            vec![
                obj(&[(
                    "a",
                    Value::Array(vec![
                        Value::from(1u64),
                        Value::Binary(Bytes::from_static(b"one"))
                    ])
                )]),
                Value::Binary(Bytes::from_static(b"zero")),
            ]
        );

        // A binary type with no attachments is complete at once.
        let p = decode(r#"50-["x",1]"#).unwrap();
        assert_eq!(event_of(&p).1.len(), 1);
    }

    #[test]
    fn placeholders_in_plain_events_are_plain_objects() {
        let p = decode(r#"2["x",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(event_of(&p).1.to_values().unwrap(), vec![ph(0)]);
    }

    #[test]
    fn event_name_is_a_slice_of_the_received_text() {
        let message = Str::from(r#"2["hello",1]"#.to_owned());
        let range = message.as_ptr() as usize..message.as_ptr() as usize + message.len();
        let mut decoder = JsonParserDecoder::default();
        let p = JsonParser
            .decode(
                &mut decoder,
                Message::Text(message.clone()),
                &DecodeLimits::default(),
            )
            .unwrap()
            .unwrap();
        let (name, _, _) = event_of(&p);
        assert!(range.contains(&(name.as_ptr() as usize)));
    }

    #[test]
    fn event_names_with_escapes_and_numbers() {
        assert_eq!(event_of(&decode(r#"2["a\"b\u00e9"]"#).unwrap()).0, "a\"bé");
        assert_eq!(event_of(&decode(r#"2[42,"x"]"#).unwrap()).0, "42");
        assert_eq!(event_of(&decode(r#"2[-3]"#).unwrap()).0, "-3");
        assert_eq!(event_of(&decode(r#"2[1.0]"#).unwrap()).0, "1");
        assert_eq!(event_of(&decode(r#"2[1.5]"#).unwrap()).0, "1.5");
        assert_eq!(event_of(&decode(r#"2/é,["ü"]"#).unwrap()).0, "ü");
        assert_eq!(decode(r#"2/é,["ü"]"#).unwrap().nsp, "/é");
        // JSON.parse accepts whitespace around the payload.
        let p = decode("2 [ \"a\" , 1 ]\n").unwrap();
        assert_eq!(
            event_of(&p).1.json_texts().unwrap().collect::<Vec<_>>(),
            vec!["1"]
        );
    }

    // --- Decoding errors --------------------------------------------------

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(decode("7"), Err(DecodeError::UnknownType));
        assert_eq!(decode("x"), Err(DecodeError::UnknownType));
        assert_eq!(decode("é"), Err(DecodeError::UnknownType));
        assert_eq!(decode(r#"5-["x"]"#), Err(DecodeError::BadAttachmentCount));
        assert_eq!(decode(r#"51["x"]"#), Err(DecodeError::BadAttachmentCount));
        assert_eq!(decode("51"), Err(DecodeError::BadAttachmentCount));
        assert_eq!(decode("5a-[\"x\"]"), Err(DecodeError::BadAttachmentCount));
        assert_eq!(
            decode(r#"5999999999999999999999-["x"]"#),
            Err(DecodeError::BadAttachmentCount)
        );
        assert_eq!(
            decode(r#"511-["x"]"#),
            Err(DecodeError::TooManyAttachments {
                declared: 11,
                limit: 10
            })
        );
        assert_eq!(
            decode(r#"61000000000-1["x"]"#),
            Err(DecodeError::TooManyAttachments {
                declared: 1_000_000_000,
                limit: 10
            })
        );
        assert_eq!(
            decode(r#"299999999999999999999["x"]"#),
            Err(DecodeError::BadAckId)
        );
        assert_eq!(
            decode(r#"218446744073709551616["x"]"#),
            Err(DecodeError::BadAckId)
        );
        assert_eq!(
            event_of(&decode(r#"218446744073709551615["x"]"#).unwrap()).2,
            Some(u64::MAX)
        );
        assert_eq!(decode(r#"21a["x"]"#), Err(DecodeError::BadAckId));
        assert_eq!(decode(r#"3["x"]"#), Err(DecodeError::BadAckId));
        assert_eq!(decode(r#"3/a,["x"]"#), Err(DecodeError::BadAckId));
        assert_eq!(decode(r#"01{"a":1}"#), Err(DecodeError::BadAckId));
        assert_eq!(decode(r#"2admin,["x"]"#), Err(DecodeError::BadNamespace));
        assert_eq!(decode("0admin,"), Err(DecodeError::BadNamespace));
    }

    #[test]
    fn rejects_bad_payloads() {
        let invalid = |s: &str| matches!(decode(s), Err(DecodeError::InvalidPayload(_)));
        let bad = |s: &str| matches!(decode(s), Err(DecodeError::BadPayload(_)));
        assert!(invalid("2"));
        assert!(invalid("2[]"));
        assert!(invalid("2{}"));
        assert!(invalid(r#"2"x""#));
        assert!(invalid("2[true]"));
        assert!(invalid("2[null]"));
        assert!(invalid(r#"2[["x"]]"#));
        assert!(invalid(r#"2[{"a":1}]"#));
        assert!(invalid("3/a,1{}"));
        assert!(invalid("0[]"));
        assert!(invalid(r#"0"x""#));
        assert!(invalid("0null"));
        assert!(invalid("1{}"));
        assert!(invalid("4"));
        assert!(invalid("4[]"));
        assert_eq!(decode("45"), Err(DecodeError::BadAckId));
        assert!(bad(r#"2["x""#));
        assert!(bad(r#"2["x"]x"#));
        // After the event name, arguments are checked by `Args`.
        for s in [
            r#"2["x",]"#,
            r#"2["x",01]"#,
            r#"2["x",{"a"}]"#,
            r#"2["x",1"#,
            r#"2["x",1]x"#,
            r#"2["x",1,]"#,
            r#"2["x","\ud83d"]"#,
            "2[\"x\",\"a\u{1}\"]",
            r#"3/a,1[1,]"#,
            r#"31[1"#,
            r#"31[}"#,
        ] {
            assert_args_rejected(&decode(s).unwrap(), s);
        }
        assert!(bad(r#"2["x"]x"#));
        assert!(bad(r#"2["x" 1]"#));
        assert!(bad(r#"2["x"#));
        assert!(bad(r#"2[01]"#));
        assert!(bad(r#"2[-]"#));
        assert!(bad("2[\"a\u{1}\"]"));
        assert!(bad(r#"2["\x"]"#));
        assert!(bad(r#"2[tru]"#));
        assert!(bad(r#"2[}"#));
        assert!(bad(r#"31[]x"#));
        assert!(bad(r#"31 x"#));
        assert!(invalid(r#"31{}"#));
        assert!(bad(r#"0{"a":}"#));
        assert!(bad("2x"));
        // A lone surrogate: a truncated UTF-16 pair.
        assert!(bad(r#"2["\ud83d"]"#));
        assert!(bad(r#"0{"a":"\ud83d"}"#));
        for reserved in RESERVED_EVENTS {
            assert_eq!(
                decode(&format!(r#"2["{reserved}",1]"#)),
                Err(DecodeError::ReservedEvent)
            );
        }
    }

    #[test]
    fn rejects_deep_nesting_without_overflowing_the_stack() {
        for prefix in ["2", "0", "4", r#"51-["x","#] {
            let deep = format!("{prefix}{}", "[".repeat(100_000));
            assert!(matches!(decode(&deep), Err(DecodeError::BadPayload(_))));
            let closed = format!("{prefix}{}{}", "[".repeat(100_000), "]".repeat(100_000));
            assert!(matches!(decode(&closed), Err(DecodeError::BadPayload(_))));
        }
        // Arguments after the event name are checked by `Args`.
        for prefix in ["3/a,1", r#"2["x","#] {
            let deep = format!("{prefix}{}", "[".repeat(100_000));
            assert_args_rejected(&decode(&deep).unwrap(), prefix);
            let closed = format!("{prefix}{}{}", "[".repeat(100_000), "]".repeat(100_000));
            assert_args_rejected(&decode(&closed).unwrap(), prefix);
        }
        let objects = format!(
            r#"2["x",{}1{}]"#,
            r#"{"a":"#.repeat(100_000),
            "}".repeat(100_000)
        );
        assert_args_rejected(&decode(&objects).unwrap(), "objects");
        // Brackets inside strings do not count.
        let in_string = format!(r#"2["x","{}"]"#, "[".repeat(1000));
        event_of(&decode(&in_string).unwrap()).1.validate().unwrap();
        // Exactly at the limit is accepted, by every way of reading.
        let limits = DecodeLimits::default();
        let nested = |depth: usize, inner: &str| {
            format!(
                r#"2["x",{}{inner}{}]"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        let at_limit = decode(&nested(limits.max_depth - 1, "")).unwrap();
        let args = event_of(&at_limit).1;
        args.validate().unwrap();
        args.deserialize::<Value>().unwrap();
        args.deserialize::<()>().unwrap();
        args.deserialize::<(Value, u8)>().unwrap_err(); // only a type mismatch
        assert_eq!(args.len(), 1);
        let over = decode(&nested(limits.max_depth, "")).unwrap();
        assert_args_rejected(&over, "over");
        // Objects, enums and ignored values count too.
        let at_limit = decode(&nested(limits.max_depth - 2, r#"{"a":1}"#)).unwrap();
        event_of(&at_limit).1.deserialize::<Value>().unwrap();
        let over = decode(&nested(limits.max_depth - 1, r#"{"a":1}"#)).unwrap();
        assert_args_rejected(&over, "over with an object");
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        enum E {
            V(Vec<Value>),
        }
        let over = decode(&nested(limits.max_depth - 2, r#"{"V":[]}"#)).unwrap();
        assert!(event_of(&over).1.deserialize::<Vec<Vec<E>>>().is_err());
        let over = decode(&format!(
            r#"2["x",{{"a":1,"b":{}{}}}]"#,
            "[".repeat(limits.max_depth),
            "]".repeat(limits.max_depth)
        ))
        .unwrap();
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct OnlyA {
            a: u8,
        }
        assert!(event_of(&over).1.deserialize::<OnlyA>().is_err());
        // Even with no configured depth limit, serde_json's recursion limit
        // bounds what gets parsed recursively.
        let unlimited = DecodeLimits {
            max_depth: usize::MAX,
            ..DecodeLimits::default()
        };
        let mut decoder = JsonParserDecoder::default();
        for deep in [
            format!("0{}", "[".repeat(100_000)),
            format!(r#"51-["x",{}{}]"#, "[".repeat(100_000), "]".repeat(100_000)),
        ] {
            assert!(JsonParser
                .decode(&mut decoder, text(&deep), &unlimited)
                .is_err());
        }
        let deep_args = format!(r#"2["x",{}{}]"#, "[".repeat(100_000), "]".repeat(100_000));
        let packet = JsonParser
            .decode(&mut decoder, text(&deep_args), &unlimited)
            .unwrap()
            .unwrap();
        assert_args_rejected(&packet, "unlimited");
    }

    #[test]
    fn rejects_bad_placeholders() {
        for s in [
            r#"51-["x",{"_placeholder":true,"num":1}]"#,
            r#"51-["x",{"_placeholder":true,"num":"0"}]"#,
            r#"51-["x",{"_placeholder":true,"num":-1}]"#,
            r#"51-["x",{"_placeholder":true,"num":0.5}]"#,
            r#"51-["x",{"_placeholder":true}]"#,
            r#"51-["x",[{"a":{"_placeholder":true,"num":7}}]]"#,
            r#"50-["x",{"_placeholder":true,"num":0}]"#,
            r#"61-1[{"num":3,"_placeholder":true}]"#,
        ] {
            assert_eq!(decode(s), Err(DecodeError::BadPlaceholder), "{s}");
        }
        // `_placeholder` other than `true` makes a plain object.
        assert!(decode_msgs(vec![
            text(r#"51-["x",{"_placeholder":false,"num":9},{"_placeholder":true,"num":0}]"#),
            bin(b"a"),
        ])
        .is_ok());
    }

    /// Feed `attachments` after a packet declaring `declared`: the index of
    /// the attachment refused and its error, or the completed packet.
    /// Checks after every message that what is held stays within the limit.
    fn feed_attachments(
        declared: usize,
        attachments: &[Bytes],
        limits: &DecodeLimits,
    ) -> (
        JsonParserDecoder,
        Result<Option<Packet>, (usize, DecodeError)>,
    ) {
        let mut decoder = JsonParserDecoder::default();
        assert_eq!(
            JsonParser.decode(
                &mut decoder,
                text(&binary_event_declaring(declared)),
                limits
            ),
            Ok(None)
        );
        for (i, attachment) in attachments.iter().enumerate() {
            let result =
                JsonParser.decode(&mut decoder, Message::Binary(attachment.clone()), limits);
            assert!(decoder.pending_attachment_bytes() <= limits.max_pending_attachment_bytes);
            match result {
                Ok(None) => {}
                Ok(Some(packet)) => return (decoder, Ok(Some(packet))),
                Err(e) => return (decoder, Err((i, e))),
            }
        }
        (decoder, Ok(None))
    }

    #[test]
    fn pending_attachment_bytes_are_bounded() {
        // The measured attack: 10 declared, 9 of 512 KiB sent, never the
        // 10th. With the default limit the second is refused.
        let chunk = Bytes::from(vec![7u8; 512 * 1024]);
        let nine = vec![chunk.clone(); 9];
        let limits = DecodeLimits::default();
        let (decoder, result) = feed_attachments(10, &nine, &limits);
        assert_eq!(
            result,
            Err((
                1,
                DecodeError::TooManyAttachmentBytes {
                    pending: 512 * 1024,
                    incoming: 512 * 1024,
                    limit: 1_000_000,
                }
            ))
        );
        // The packet is dropped, its attachments released.
        assert!(!decoder.is_awaiting_attachments());
        assert_eq!(decoder.pending_attachment_bytes(), 0);

        // A limit of four and a half chunks refuses the fifth.
        let limits = DecodeLimits {
            max_pending_attachment_bytes: 4 * 512 * 1024 + 512 * 1024 / 2,
            ..DecodeLimits::default()
        };
        let (_, result) = feed_attachments(10, &nine, &limits);
        assert!(matches!(
            result,
            Err((4, DecodeError::TooManyAttachmentBytes { pending, .. })) if pending == 4 * 512 * 1024
        ));

        // One attachment larger than the limit is refused before it is held.
        let (decoder, result) = feed_attachments(
            1,
            &[Bytes::from(vec![0u8; 1_000_001])],
            &DecodeLimits::default(),
        );
        assert!(matches!(
            result,
            Err((
                0,
                DecodeError::TooManyAttachmentBytes {
                    pending: 0,
                    incoming: 1_000_001,
                    ..
                }
            ))
        ));
        assert_eq!(decoder.pending_attachment_bytes(), 0);
        let message = result.unwrap_err().1.to_string();
        assert!(
            message.contains("1000001") && message.contains("1000000"),
            "{message}"
        );
    }

    #[test]
    fn attachments_up_to_the_limit_complete() {
        let limits = DecodeLimits {
            max_pending_attachment_bytes: 10 * 1024,
            ..DecodeLimits::default()
        };
        let chunk = Bytes::from(vec![1u8; 1024]);
        // Exactly at the limit, and one byte under it.
        let under = [vec![chunk.clone(); 9], vec![Bytes::from(vec![2u8; 1023])]].concat();
        for attachments in [vec![chunk.clone(); 10], under] {
            let (decoder, result) = feed_attachments(10, &attachments, &limits);
            let packet = result.unwrap().expect("complete");
            assert_eq!(event_of(&packet).1.len(), 10);
            assert_eq!(decoder.pending_attachment_bytes(), 0);
        }
        // One byte over, on the last attachment.
        let over = [vec![chunk.clone(); 9], vec![Bytes::from(vec![2u8; 1025])]].concat();
        let (_, result) = feed_attachments(10, &over, &limits);
        assert!(matches!(
            result,
            Err((9, DecodeError::TooManyAttachmentBytes { .. }))
        ));
        // The count starts over with the next packet.
        let mut decoder = JsonParserDecoder::default();
        for _ in 0..3 {
            assert_eq!(
                JsonParser.decode(&mut decoder, text(&binary_event_declaring(10)), &limits),
                Ok(None)
            );
            let mut last = None;
            for _ in 0..10 {
                last = JsonParser
                    .decode(&mut decoder, Message::Binary(chunk.clone()), &limits)
                    .unwrap();
            }
            assert!(last.is_some());
        }
    }

    #[test]
    fn unexpected_messages_reset_the_decoder() {
        let limits = DecodeLimits::default();
        let mut decoder = JsonParserDecoder::default();
        assert_eq!(
            JsonParser.decode(&mut decoder, bin(b"x"), &limits),
            Err(DecodeError::UnexpectedMessage)
        );

        let binary_event =
            r#"52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert_eq!(
            JsonParser.decode(&mut decoder, text(binary_event), &limits),
            Ok(None)
        );
        assert!(decoder.is_awaiting_attachments());
        assert_eq!(
            JsonParser.decode(&mut decoder, bin(b"a"), &limits),
            Ok(None)
        );
        assert_eq!(
            JsonParser.decode(&mut decoder, text(r#"2["y"]"#), &limits),
            Err(DecodeError::UnexpectedMessage)
        );
        assert!(!decoder.is_awaiting_attachments());
        // The decoder starts over cleanly.
        let p = JsonParser
            .decode(&mut decoder, text(r#"2["y"]"#), &limits)
            .unwrap()
            .unwrap();
        assert_eq!(event_of(&p).0, "y");
        assert_eq!(
            JsonParser.decode(&mut decoder, bin(b"late"), &limits),
            Err(DecodeError::UnexpectedMessage)
        );
        // And completes a binary packet after all.
        assert_eq!(
            JsonParser.decode(&mut decoder, text(binary_event), &limits),
            Ok(None)
        );
        assert_eq!(
            JsonParser.decode(&mut decoder, bin(b"a"), &limits),
            Ok(None)
        );
        assert!(JsonParser
            .decode(&mut decoder, bin(b"b"), &limits)
            .unwrap()
            .is_some());
        assert!(!decoder.is_awaiting_attachments());
    }

    // --- Args over decoded JSON ------------------------------------------

    #[test]
    fn args_deserialize_by_target_shape() {
        let p = decode(r#"2["e",1,"two",[3,4]]"#).unwrap();
        let args = event_of(&p).1;
        assert_eq!(
            args.deserialize::<(u32, String, Vec<u8>)>().unwrap(),
            (1, "two".to_owned(), vec![3, 4])
        );
        // Extra arguments are ignored, missing ones read as null.
        assert_eq!(args.deserialize::<(u32,)>().unwrap(), (1,));
        assert_eq!(
            args.deserialize::<(u32, String, Vec<u8>, Option<bool>)>()
                .unwrap(),
            (1, "two".to_owned(), vec![3, 4], None)
        );
        assert!(args.deserialize::<(u32, String, Vec<u8>, bool)>().is_err());
        assert!(args.deserialize::<(String,)>().is_err());
        // Any other type takes the first argument.
        assert_eq!(args.deserialize::<u32>().unwrap(), 1);
        assert_eq!(args.deserialize::<Option<u32>>().unwrap(), Some(1));
        assert_eq!(args.deserialize::<Value>().unwrap(), Value::from(1u64));
        args.deserialize::<()>().unwrap();
        assert_eq!(args.get::<String>(1).unwrap(), "two");
        assert_eq!(args.get::<Vec<u8>>(2).unwrap(), vec![3, 4]);
        assert!(args.get::<u8>(3).is_err());

        let p = decode(r#"2["e"]"#).unwrap();
        let none = event_of(&p).1;
        assert_eq!(none.deserialize::<Option<u32>>().unwrap(), None);
        none.deserialize::<()>().unwrap();
        assert!(none.deserialize::<u32>().is_err());
        assert_eq!(none.deserialize::<(Option<u8>,)>().unwrap(), (None,));

        // A tuple struct or a Vec is one argument, as on the way out.
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Pair(u8, u8);
        let p = decode(r#"2["e",[1,2],9]"#).unwrap();
        let args = event_of(&p).1;
        assert_eq!(args.deserialize::<Pair>().unwrap(), Pair(1, 2));
        assert_eq!(args.deserialize::<Vec<u8>>().unwrap(), vec![1, 2]);
        assert_eq!(args.deserialize::<((u8, u8), u8)>().unwrap(), ((1, 2), 9));

        // Borrowing a string from the JSON is not possible for an owned
        // target, but escapes decode.
        let p = decode(r#"3/a,1["a\nb"]"#).unwrap();
        assert_eq!(ack_of(&p).1.deserialize::<String>().unwrap(), "a\nb");
    }

    #[test]
    fn args_deserialize_binary_through_values() {
        let p = decode_msgs(vec![
            text(r#"51-["e","hi",{"_placeholder":true,"num":0}]"#),
            bin(b"raw"),
        ])
        .unwrap();
        let args = event_of(&p).1;
        let (s, b): (String, Bytes) = args.deserialize().unwrap();
        assert_eq!((s.as_str(), &b[..]), ("hi", &b"raw"[..]));
        assert_eq!(args.get::<Bytes>(1).unwrap(), Bytes::from_static(b"raw"));
        assert_eq!(args.deserialize::<String>().unwrap(), "hi");
        // `Binary` is the received attachment itself.
        let (_, b): (String, crate::Binary) = args.deserialize().unwrap();
        assert_eq!(b.as_ptr(), args.attachments()[0].as_ptr());
        let b: crate::Binary = args.get(1).unwrap();
        assert_eq!(b.as_ptr(), args.attachments()[0].as_ptr());
    }

    #[test]
    fn received_args_spread_again_when_reemitted() {
        let p = decode(r#"2/a,["e",1,"a",{"k":[true,null]}]"#).unwrap();
        let args = event_of(&p).1;
        assert_eq!(
            encoded(OutPacket::Event {
                nsp: "/b",
                event: "f",
                args,
                ack: Some(2)
            }),
            r#"2/b,2["f",1,"a",{"k":[true,null]}]"#
        );
        assert_eq!(
            encoded(OutPacket::Ack {
                nsp: "/",
                id: 1,
                args
            }),
            r#"31[1,"a",{"k":[true,null]}]"#
        );

        let message = r#"52-["e",{"_placeholder":true,"num":1},[{"_placeholder":true,"num":0}]]"#;
        let p = decode_msgs(vec![text(message), bin(b"zero"), bin(b"one")]).unwrap();
        let args = event_of(&p).1;
        let out = encode(OutPacket::Event {
            nsp: "/",
            event: "e",
            args,
            ack: None,
        })
        .unwrap();
        // Placeholders are renumbered in document order.
        assert_eq!(
            text_of(&out),
            r#"52-["e",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]"#
        );
        assert_eq!(
            out.attachments,
            vec![Bytes::from_static(b"one"), Bytes::from_static(b"zero")]
        );
        let empty = Args::empty();
        assert_eq!(
            encoded(OutPacket::Event {
                nsp: "/",
                event: "e",
                args: &empty,
                ack: None
            }),
            r#"2["e"]"#
        );
        let values = Args::from_values(vec![Value::from(1u64), Value::from("x")]);
        assert_eq!(
            encoded(OutPacket::Event {
                nsp: "/",
                event: "e",
                args: &values,
                ack: None
            }),
            r#"2["e",1,"x"]"#
        );
    }

    #[test]
    fn number_formats_follow_json_stringify() {
        assert_eq!(
            encoded(OutPacket::Event {
                nsp: "/",
                event: "n",
                args: &(
                    0u8,
                    -1i64,
                    u64::MAX,
                    1.5f64,
                    Value::Number(Number::NegInt(-7))
                ),
                ack: None
            }),
            r#"2["n",0,-1,18446744073709551615,1.5,-7]"#
        );
        // Strings escape like JSON.stringify.
        assert_eq!(
            encoded(OutPacket::Event {
                nsp: "/",
                event: "s",
                args: &"\"\\\n\u{1}é",
                ack: None
            }),
            "2[\"s\",\"\\\"\\\\\\n\\u0001é\"]"
        );
    }

    #[test]
    fn floats_follow_json_stringify() {
        let cases: &[(f64, &str)] = &[
            (4.0, "4"),
            (-0.0, "0"),
            (-3.0, "-3"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e-5, "0.00001"),
            (1.5e-6, "0.0000015"),
            (-1e-6, "-0.000001"),
            (9.99e-7, "9.99e-7"),
            (1.5e-7, "1.5e-7"),
            (5e-324, "5e-324"),
            (9007199254740991.0, "9007199254740991"),
            (1e16, "10000000000000000"),
            (1152921504606846976.0, "1152921504606847000"),
            (-1.2345678901234568e20, "-123456789012345680000"),
            (1e21, "1e+21"),
            (1.5e22, "1.5e+22"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
        ];
        for &(v, js) in cases {
            assert_eq!(
                encoded(OutPacket::Ack {
                    nsp: "/",
                    id: 0,
                    args: &(v, Value::Number(Number::Float(v)))
                }),
                format!("30[{js},{js}]"),
                "{v:e}"
            );
            if v.is_finite() {
                assert_eq!(js_number_text(v), js);
            }
        }
        assert_eq!(
            encoded(OutPacket::Ack {
                nsp: "/",
                id: 0,
                args: &(4.0f32, 0.1f32, -2.5f32)
            }),
            "30[4,0.1,-2.5]"
        );
        // Float-looking event names become JavaScript's text for them.
        assert_eq!(event_of(&decode("2[1e21]").unwrap()).0, "1e+21");
        assert_eq!(event_of(&decode("2[1e16]").unwrap()).0, "10000000000000000");
    }

    // --- Round trips ------------------------------------------------------

    /// What a value becomes once written as JavaScript would and read back:
    /// integral floats come back as integers when they fit.
    fn js_normalized(value: &Value) -> Value {
        match value {
            Value::Number(Number::Float(f)) => serde_json::from_str(&js_number_text(*f)).unwrap(),
            Value::Array(items) => Value::Array(items.iter().map(js_normalized).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), js_normalized(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn value_strategy(binary: bool) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| Value::Number(Number::Float(f))),
            ".{0,8}".prop_map(Value::String),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(move |b| {
                if binary {
                    Value::Binary(Bytes::from(b))
                } else {
                    Value::Null
                }
            }),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec(("[a-z]{0,3}", inner), 0..4).prop_map(Value::Object),
            ]
        })
    }

    fn object_strategy() -> impl Strategy<Value = Value> {
        proptest::collection::vec(("[a-z]{0,3}", value_strategy(false)), 0..4)
            .prop_map(Value::Object)
    }

    fn nsp_strategy() -> impl Strategy<Value = String> {
        prop_oneof![Just("/".to_owned()), "/[^,]{0,8}"]
    }

    fn event_name_strategy() -> impl Strategy<Value = String> {
        ".{0,10}".prop_filter("not reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()))
    }

    /// Feed an encoded packet back through a decoder.
    fn round_trip(out: &Encoded) -> Packet {
        let mut decoder = JsonParserDecoder::default();
        let limits = DecodeLimits::default();
        let first = Message::Text(Str::from(text_of(out).to_owned()));
        let mut result = JsonParser.decode(&mut decoder, first, &limits).unwrap();
        for attachment in &out.attachments {
            assert!(result.is_none());
            result = JsonParser
                .decode(&mut decoder, Message::Binary(attachment.clone()), &limits)
                .unwrap();
        }
        result.expect("complete")
    }

    proptest! {
        #[test]
        fn connect_round_trips(nsp in nsp_strategy(), data in proptest::option::of(object_strategy())) {
            let out = encode(OutPacket::Connect { nsp: &nsp, data: data.as_ref() }).unwrap();
            let p = round_trip(&out);
            prop_assert_eq!(p, Packet { nsp: Str::from(nsp), data: PacketData::Connect(data.as_ref().map(js_normalized)) });
        }

        #[test]
        fn disconnect_round_trips(nsp in nsp_strategy()) {
            let out = encode::<()>(OutPacket::Disconnect { nsp: &nsp }).unwrap();
            prop_assert_eq!(round_trip(&out), Packet { nsp: Str::from(nsp), data: PacketData::Disconnect });
        }

        #[test]
        fn connect_error_round_trips(
            nsp in nsp_strategy(),
            data in prop_oneof![object_strategy(), ".{0,10}".prop_map(Value::String)],
        ) {
            let out = encode(OutPacket::ConnectError { nsp: &nsp, data: &data }).unwrap();
            prop_assert_eq!(round_trip(&out), Packet { nsp: Str::from(nsp), data: PacketData::ConnectError(js_normalized(&data)) });
        }

        #[test]
        fn event_round_trips(
            nsp in nsp_strategy(),
            name in event_name_strategy(),
            values in proptest::collection::vec(value_strategy(true), 0..5),
            ack in proptest::option::of(any::<u64>()),
        ) {
            let args = Args::from_values(values.clone());
            let out = encode(OutPacket::Event { nsp: &nsp, event: &name, args: &args, ack }).unwrap();
            let binary = values.iter().any(Value::has_binary);
            prop_assert_eq!(out.data[0], if binary { b'5' } else { b'2' });
            prop_assert_eq!(binary, !out.attachments.is_empty());
            let p = round_trip(&out);
            prop_assert_eq!(&*p.nsp, nsp.as_str());
            let (got_name, got_args, got_ack) = event_of(&p);
            prop_assert_eq!(got_name, name.as_str());
            prop_assert_eq!(got_ack, ack);
            prop_assert_eq!(got_args.to_values().unwrap(), values.iter().map(js_normalized).collect::<Vec<_>>());
            // Re-encoding the received arguments gives the same bytes.
            let again = encode(OutPacket::Event { nsp: &nsp, event: &name, args: got_args, ack }).unwrap();
            prop_assert_eq!(&again.data, &out.data);
            prop_assert_eq!(&again.attachments, &out.attachments);
        }

        #[test]
        fn ack_round_trips(
            nsp in nsp_strategy(),
            id in any::<u64>(),
            values in proptest::collection::vec(value_strategy(true), 0..5),
        ) {
            let args = Args::from_values(values.clone());
            let out = encode(OutPacket::Ack { nsp: &nsp, id, args: &args }).unwrap();
            let p = round_trip(&out);
            prop_assert_eq!(&*p.nsp, nsp.as_str());
            let (got_id, got_args) = ack_of(&p);
            prop_assert_eq!(got_id, id);
            prop_assert_eq!(got_args.to_values().unwrap(), values.iter().map(js_normalized).collect::<Vec<_>>());
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(s in "[0-6/,\\-\\[\\]{}\":a-z0-9 ]{0,40}") {
            let mut decoder = JsonParserDecoder::default();
            let _ = JsonParser.decode(&mut decoder, text(&s), &DecodeLimits::default());
            let _ = JsonParser.decode(&mut decoder, bin(b"x"), &DecodeLimits::default());
        }

        #[test]
        fn decoding_mutated_packets_never_panics(
            values in proptest::collection::vec(value_strategy(true), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let args = Args::from_values(values);
            let out = encode(OutPacket::Event { nsp: "/x", event: "e", args: &args, ack: Some(1) }).unwrap();
            let s = text_of(&out);
            let mut at = cut.index(s.len() + 1);
            while !s.is_char_boundary(at) { at -= 1; }
            let mut decoder = JsonParserDecoder::default();
            let limits = DecodeLimits::default();
            if let Ok(None) = JsonParser.decode(&mut decoder, text(&s[..at]), &limits) {
                for a in &out.attachments {
                    let _ = JsonParser.decode(&mut decoder, Message::Binary(a.clone()), &limits);
                }
            }
        }
    }
}
