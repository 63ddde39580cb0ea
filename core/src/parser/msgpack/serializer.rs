//! serde straight into the output buffer for any [`WireFormat`]
//! ([`WireSerializer`]), with `serde_json`'s data model, and the packet
//! envelope around it ([`encode_packet`]). Shared with CBOR.

use std::marker::PhantomData;

use bytes::BytesMut;
use serde::ser::{self, Serialize, Serializer};

use super::wire_format::{Header, ItemKind, WireError, WireFormat};
use crate::parser::RESERVED_EVENTS;
use crate::parser::{ArgArray, EncodeError, Encoded, OutPacket};
use crate::value::MapKeySerializer;

/// Encode `packet` as the map `{type, nsp, data?, id?}` in format `F`.
pub(in crate::parser) fn encode_packet<F: WireFormat, A: Serialize + ?Sized>(
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
pub(in crate::parser) struct WireSerializer<'o, F> {
    out: &'o mut BytesMut,
    format: PhantomData<F>,
}

impl<'o, F: WireFormat> WireSerializer<'o, F> {
    /// A serializer appending to `out`.
    pub(in crate::parser) fn new(out: &'o mut BytesMut) -> Self {
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
pub(in crate::parser) struct Compound<'a, 'o, F> {
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

/// The sequence-like compounds: each element is one item.
macro_rules! sequence_compound {
    ($($compound:ident :: $element:ident),*) => {$(
        impl<F: WireFormat> ser::$compound for Compound<'_, '_, F> {
            type Ok = ();
            type Error = WireError;
            fn $element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), WireError> {
                self.item(v)
            }
            fn end(self) -> Result<(), WireError> {
                self.finish()
            }
        }
    )*};
}

sequence_compound!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

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
