//! Encoding: a packet's header and its arguments as JSON, binary values
//! replaced by `{"_placeholder":true,"num":N}` and kept as attachments.

use std::cell::RefCell;
use std::fmt;

use super::number::{js_float, JsFloat};
use crate::parser::{ArgArray, EncodeError, Encoded, OutPacket};
use crate::parser::{PacketType, RESERVED_EVENTS};
use crate::Str;
use bytes::{Bytes, BytesMut};
use serde::ser::{self, Serialize, Serializer};
use serde_json::value::RawValue;

pub(in crate::parser) fn encode_into<A: Serialize + ?Sized>(
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

/// The sequence-like compounds: each element is wrapped on its way in.
macro_rules! wrapped_sequence {
    ($($compound:ident :: $element:ident),*) => {$(
        impl<C: ser::$compound> ser::$compound for WrappedCompound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;
            #[inline]
            fn $element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                let value = self.wrap(value);
                self.inner.$element(&value)
            }
            #[inline]
            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    )*};
}

wrapped_sequence!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

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

/// The struct-like compounds: each field's value is wrapped on its way in.
macro_rules! wrapped_struct {
    ($($compound:ident),*) => {$(
        impl<C: ser::$compound> ser::$compound for WrappedCompound<'_, C> {
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
    )*};
}

wrapped_struct!(SerializeStruct, SerializeStructVariant);
