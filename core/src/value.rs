//! A dynamic value model that carries binary natively.
//!
//! [`Value`] is what JSON, MessagePack and CBOR have in common, plus
//! [`Value::Binary`] for raw bytes held as [`Bytes`] (so binary received from
//! the network is a slice of the received buffer, never a copy). Objects keep
//! their keys in insertion order, because peers compare encoded bytes.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, Serializer};

thread_local! {
    /// The `Bytes` being serialized right now by [`serialize_shared_bytes`].
    ///
    /// serde hands a serializer only `&[u8]`; a serializer of ours that
    /// wants to keep the buffer (the JSON parser's attachments) can take the
    /// `Bytes` from here when the slice is the same one, and so share it
    /// instead of copying. Other serializers never look.
    static SHARED_BYTES: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Serialize `bytes` with `serialize_bytes`, offering the `Bytes` itself to
/// serializers that can share it (see [`take_shared_bytes`]).
pub(crate) fn serialize_shared_bytes<S: Serializer>(
    bytes: &Bytes,
    s: S,
) -> Result<S::Ok, S::Error> {
    SHARED_BYTES.with(|slot| *slot.borrow_mut() = Some(bytes.clone()));
    let result = s.serialize_bytes(bytes);
    // Clear the slot whether or not the serializer took it, so no buffer
    // stays alive past this call.
    SHARED_BYTES.with(|slot| slot.borrow_mut().take());
    result
}

/// Offer `bytes` to a visitor as `visit_bytes`, lending the `Bytes` itself
/// to visitors that can keep it ([`Binary`]'s, through
/// [`take_shared_bytes`]); the reverse of [`serialize_shared_bytes`].
pub(crate) fn visit_shared_bytes<'de, V: Visitor<'de>, E: de::Error>(
    bytes: &Bytes,
    visitor: V,
) -> Result<V::Value, E> {
    SHARED_BYTES.with(|slot| *slot.borrow_mut() = Some(bytes.clone()));
    let result = visitor.visit_bytes(bytes);
    SHARED_BYTES.with(|slot| slot.borrow_mut().take());
    result
}

/// The `Bytes` whose contents are exactly `data` (same pointer and length),
/// when it is being serialized by [`serialize_shared_bytes`] or visited
/// through [`visit_shared_bytes`].
pub(crate) fn take_shared_bytes(data: &[u8]) -> Option<Bytes> {
    SHARED_BYTES.with(|slot| {
        let mut slot = slot.borrow_mut();
        match &*slot {
            Some(b) if b.as_ptr() == data.as_ptr() && b.len() == data.len() => slot.take(),
            _ => None,
        }
    })
}

/// Binary data that the JSON parser sends as an attachment without copying.
///
/// `bytes::Bytes` works anywhere in an emitted value too, but serde gives
/// the parser only a borrowed slice of it, so it is copied once into the
/// attachment. Wrap it in `Binary` (in your structs, tuples or vectors) and
/// the attachment is the same buffer.
///
/// Received binary deserializes into `Binary` without a copy either: it is
/// the received attachment (or MessagePack/CBOR buffer) itself. Deserialized
/// into `bytes::Bytes` or `Vec<u8>`, it is copied once, because serde hands
/// those types only a slice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Binary(pub Bytes);

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_shared_bytes(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Binary, D::Error> {
        d.deserialize_byte_buf(BinaryVisitor)
    }
}

/// Like `Bytes`' own visitor, but keeps a lent `Bytes` instead of copying.
struct BinaryVisitor;

impl<'de> Visitor<'de> for BinaryVisitor {
    type Value = Binary;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("binary data")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Binary, E> {
        Ok(Binary(
            take_shared_bytes(v).unwrap_or_else(|| Bytes::copy_from_slice(v)),
        ))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Binary, E> {
        Ok(Binary(Bytes::from(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Binary, E> {
        Ok(Binary(Bytes::copy_from_slice(v.as_bytes())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Binary, E> {
        Ok(Binary(Bytes::from(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Binary, A::Error> {
        // Bounded by what the input holds, not by its size hint.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        Ok(Binary(Bytes::from(bytes)))
    }
}

impl From<Bytes> for Binary {
    fn from(b: Bytes) -> Self {
        Binary(b)
    }
}

impl From<Binary> for Bytes {
    fn from(b: Binary) -> Self {
        b.0
    }
}

impl std::ops::Deref for Binary {
    type Target = Bytes;
    fn deref(&self) -> &Bytes {
        &self.0
    }
}

/// An object: keys in insertion order.
///
/// A vector of pairs: socket.io objects are small, and a linear scan beats
/// hashing at these sizes while keeping the order peers expect.
pub type Map = Vec<(String, Value)>;

/// A number as the wire formats carry it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A non-negative integer.
    PosInt(u64),
    /// A negative integer.
    NegInt(i64),
    /// A floating point number.
    Float(f64),
}

/// A dynamic value: what a catch-all handler receives.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null` (JSON), nil (MessagePack), null/undefined (CBOR).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A UTF-8 string.
    String(String),
    /// Raw bytes: a binary attachment (JSON) or a bin / byte string
    /// (MessagePack, CBOR).
    Binary(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// An object with keys in insertion order.
    Object(Map),
}

impl Value {
    /// The value under `key` when this is an object holding it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => map.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this value holds binary anywhere in its tree.
    pub fn has_binary(&self) -> bool {
        match self {
            Value::Binary(_) => true,
            Value::Array(items) => items.iter().any(Value::has_binary),
            Value::Object(map) => map.iter().any(|(_, v)| v.has_binary()),
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        if n < 0 {
            Value::Number(Number::NegInt(n))
        } else {
            Value::Number(Number::PosInt(n as u64))
        }
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(Number::PosInt(n))
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(Number::Float(n))
    }
}
impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Binary(b)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Number::PosInt(n) => s.serialize_u64(n),
            Number::NegInt(n) => s.serialize_i64(n),
            Number::Float(n) => s.serialize_f64(n),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // `none`, not `unit`: the same bytes in every format, but an
            // argument list treats `()` as no argument and `Null` as one.
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(v) => s.serialize_str(v),
            Value::Binary(b) => serialize_shared_bytes(b, s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

/// Builds a [`Value`] from any deserializer.
pub(crate) struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(Number::PosInt(v)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        if let Ok(n) = i64::try_from(v) {
            Ok(Value::from(n))
        } else if let Ok(n) = u64::try_from(v) {
            Ok(Value::Number(Number::PosInt(n)))
        } else {
            Ok(Value::Number(Number::Float(v as f64)))
        }
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        match u64::try_from(v) {
            Ok(n) => Ok(Value::Number(Number::PosInt(n))),
            Err(_) => Ok(Value::Number(Number::Float(v as f64))),
        }
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(Number::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    /// A lent buffer (see [`visit_shared_bytes`]) is kept, not copied.
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Binary(
            take_shared_bytes(v).unwrap_or_else(|| Bytes::copy_from_slice(v)),
        ))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Binary(Bytes::from(v)))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Deserialize::deserialize(d)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Deserialize::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Cap the preallocation: a hostile length prefix must not reserve memory.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            entries.push((k, v));
        }
        Ok(Value::Object(entries))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// An error converting between [`Value`] and a Rust type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(pub String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ValueError {}

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string())
    }
}
impl serde::ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string())
    }
}

/// Convert any serializable value into a [`Value`].
///
/// The data model follows `serde_json::to_value`: `serialize_bytes` becomes
/// [`Value::Binary`], unit and `None` become [`Value::Null`], structs become
/// objects, enums are externally tagged (`"Unit"`, `{"Newtype": v}`,
/// `{"Tuple": [..]}`, `{"Struct": {..}}`), and map keys must be strings,
/// numbers, booleans or chars (the latter three are turned into text).
/// Integers beyond the 64-bit range are an error.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ValueSerializer)
}

/// Build any deserializable type from a [`Value`].
///
/// [`Value::Binary`] is offered to the visitor as bytes (`visit_byte_buf`,
/// without a copy when the buffer is not shared), and as a sequence of `u8`
/// to types that ask for a sequence (`Vec<u8>`, `[u8; N]`). Integer targets
/// accept floats with an integral value in range, because JavaScript peers
/// do not distinguish the two.
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    T::deserialize(value)
}

// ---------------------------------------------------------------------------
// Serializer: any `Serialize` into a `Value`.
// ---------------------------------------------------------------------------

/// The serializer behind [`to_value`].
struct ValueSerializer;

fn out_of_range() -> ValueError {
    ValueError("integer out of the 64-bit range".to_owned())
}

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantSeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantMapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::from(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        if let Ok(n) = i64::try_from(v) {
            Ok(Value::from(n))
        } else if let Ok(n) = u64::try_from(v) {
            Ok(Value::from(n))
        } else {
            Err(out_of_range())
        }
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::from(u64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        u64::try_from(v)
            .map(Value::from)
            .map_err(|_| out_of_range())
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::from(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Binary(Bytes::copy_from_slice(v)))
    }
    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, ValueError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::from(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Value, ValueError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, ValueError> {
        Ok(Value::Object(vec![(variant.to_owned(), to_value(v)?)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSeqBuilder, ValueError> {
        Ok(VariantSeqBuilder {
            variant,
            items: SeqBuilder(Vec::with_capacity(len)),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapBuilder, ValueError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantMapBuilder, ValueError> {
        Ok(VariantMapBuilder {
            variant,
            fields: self.serialize_map(Some(len))?,
        })
    }
}

/// Arrays, tuples and tuple structs under construction.
struct SeqBuilder(Vec<Value>);

impl SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        self.0.push(to_value(v)?);
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        SerializeSeq::end(self)
    }
}

/// `{"Variant": [..]}` under construction.
struct VariantSeqBuilder {
    variant: &'static str,
    items: SeqBuilder,
}

impl ser::SerializeTupleVariant for VariantSeqBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        SerializeSeq::serialize_element(&mut self.items, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        let items = SerializeSeq::end(self.items)?;
        Ok(Value::Object(vec![(self.variant.to_owned(), items)]))
    }
}

/// Maps and structs under construction.
struct MapBuilder {
    entries: Map,
    key: Option<String>,
}

impl SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(key.serialize(MapKeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ValueError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ValueError("map value serialized before its key".to_owned()))?;
        self.entries.push((key, to_value(v)?));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Object(self.entries))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), ValueError> {
        self.entries.push((key.to_owned(), to_value(v)?));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Object(self.entries))
    }
}

/// `{"Variant": {..}}` under construction.
struct VariantMapBuilder {
    variant: &'static str,
    fields: MapBuilder,
}

impl ser::SerializeStructVariant for VariantMapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(&mut self.fields, key, v)
    }
    fn end(self) -> Result<Value, ValueError> {
        let fields = ser::SerializeStruct::end(self.fields)?;
        Ok(Value::Object(vec![(self.variant.to_owned(), fields)]))
    }
}

fn key_must_be_a_string() -> ValueError {
    ValueError("map key must be a string".to_owned())
}

/// Turns a map key into its text the way `serde_json` does: strings as they
/// are, integers, finite floats, booleans and chars as their text, unit
/// variants as their name; anything else is an error.
pub(crate) struct MapKeySerializer;

impl Serializer for MapKeySerializer {
    type Ok = String;
    type Error = ValueError;
    type SerializeSeq = ser::Impossible<String, ValueError>;
    type SerializeTuple = ser::Impossible<String, ValueError>;
    type SerializeTupleStruct = ser::Impossible<String, ValueError>;
    type SerializeTupleVariant = ser::Impossible<String, ValueError>;
    type SerializeMap = ser::Impossible<String, ValueError>;
    type SerializeStruct = ser::Impossible<String, ValueError>;
    type SerializeStructVariant = ser::Impossible<String, ValueError>;

    fn serialize_bool(self, v: bool) -> Result<String, ValueError> {
        Ok(if v { "true" } else { "false" }.to_owned())
    }
    fn serialize_i8(self, v: i8) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_i16(self, v: i16) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_i32(self, v: i32) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_i64(self, v: i64) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_i128(self, v: i128) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u8(self, v: u8) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u16(self, v: u16) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u32(self, v: u32) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u64(self, v: u64) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_u128(self, v: u128) -> Result<String, ValueError> {
        Ok(itoa::Buffer::new().format(v).to_owned())
    }
    fn serialize_f32(self, v: f32) -> Result<String, ValueError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<String, ValueError> {
        // serde_json refuses non-finite float keys: they have no JSON text.
        if v.is_finite() {
            Ok(number_text(v))
        } else {
            Err(key_must_be_a_string())
        }
    }
    fn serialize_char(self, v: char) -> Result<String, ValueError> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String, ValueError> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, ValueError> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, ValueError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, ValueError> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        Err(key_must_be_a_string())
    }
}

/// The decimal text of a number the way JavaScript's `String(n)` writes it
/// for the common cases: integral values without a fraction, others with
/// Rust's shortest round-trip form.
pub(crate) fn number_text(v: f64) -> String {
    // Below 2^53 an integral f64 is exactly an i64, and JS prints it plainly.
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        itoa::Buffer::new().format(v as i64).to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        v.to_string()
    }
}

// ---------------------------------------------------------------------------
// Deserializer: a `Value` (owned or borrowed) into any `Deserialize`.
// ---------------------------------------------------------------------------

impl Value {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Number(Number::PosInt(n)) => de::Unexpected::Unsigned(*n),
            Value::Number(Number::NegInt(n)) => de::Unexpected::Signed(*n),
            Value::Number(Number::Float(n)) => de::Unexpected::Float(*n),
            Value::String(s) => de::Unexpected::Str(s),
            Value::Binary(b) => de::Unexpected::Bytes(b),
            Value::Array(_) => de::Unexpected::Seq,
            Value::Object(_) => de::Unexpected::Map,
        }
    }
}

/// An integral float as the integer an integer visitor wants, if it is one.
pub(crate) fn integral(n: f64) -> Option<Number> {
    if n.fract() != 0.0 {
        None
    } else if (0.0..18_446_744_073_709_551_616.0).contains(&n) {
        Some(Number::PosInt(n as u64))
    } else if (-9_223_372_036_854_775_808.0..0.0).contains(&n) {
        Some(Number::NegInt(n as i64))
    } else {
        None
    }
}

fn visit_number<'de, V: Visitor<'de>>(n: Number, visitor: V) -> Result<V::Value, ValueError> {
    match n {
        Number::PosInt(n) => visitor.visit_u64(n),
        Number::NegInt(n) => visitor.visit_i64(n),
        Number::Float(n) => visitor.visit_f64(n),
    }
}

/// The methods an integer target calls: integral floats become integers.
macro_rules! integer_methods {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self {
                Value::Number(Number::Float(f)) => match integral(*f) {
                    Some(n) => visit_number(n, visitor),
                    None => visit_number(Number::Float(*f), visitor),
                },
                other => other.deserialize_any(visitor),
            }
        }
    )*};
}

/// Owned form of [`integer_methods`]: the match above is on `&Value`.
macro_rules! owned_integer_methods {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self {
                Value::Number(Number::Float(f)) => match integral(f) {
                    Some(n) => visit_number(n, visitor),
                    None => visit_number(Number::Float(f), visitor),
                },
                other => other.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Value {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => visit_number(n, visitor),
            Value::String(s) => visitor.visit_string(s),
            // Free when the buffer is not shared. Otherwise lent, so that
            // `Binary` keeps it; other targets copy the slice they get.
            Value::Binary(b) if b.is_unique() => visitor.visit_byte_buf(Vec::from(b)),
            Value::Binary(b) => visit_shared_bytes(&b, visitor),
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(map) => visit_object(map, visitor),
        }
    }

    owned_integer_methods!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Binary(b) => visit_bytes_as_seq(&b, visitor),
            other => other.deserialize_any(visitor),
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
        match self {
            Value::String(variant) => {
                visitor.visit_enum(de::value::StringDeserializer::<ValueError>::new(variant))
            }
            Value::Object(map) if map.len() == 1 => {
                let (variant, value) = map.into_iter().next().expect("one entry");
                visitor.visit_enum(EnumDeserializer { variant, value })
            }
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"a string or an object with one key",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        drop(self);
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool f32 f64 char str string bytes byte_buf unit unit_struct
        tuple_struct map struct identifier
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = items.len();
    let mut seq = de::value::SeqDeserializer::new(items.into_iter());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()
        .map_err(|_| de::Error::invalid_length(len, &"fewer elements"))?;
    Ok(out)
}

fn visit_object<'de, V: Visitor<'de>>(map: Map, visitor: V) -> Result<V::Value, ValueError> {
    let len = map.len();
    let mut access = de::value::MapDeserializer::new(
        map.into_iter()
            .map(|(k, v)| (KeyDeserializer(std::borrow::Cow::Owned(k)), v)),
    );
    let out = visitor.visit_map(&mut access)?;
    access
        .end()
        .map_err(|_| de::Error::invalid_length(len, &"fewer entries"))?;
    Ok(out)
}

fn visit_bytes_as_seq<'de, V: Visitor<'de>>(
    bytes: &[u8],
    visitor: V,
) -> Result<V::Value, ValueError> {
    let mut seq = de::value::SeqDeserializer::new(bytes.iter().copied());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

impl de::IntoDeserializer<'_, ValueError> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

impl<'de> de::IntoDeserializer<'de, ValueError> for &'de Value {
    type Deserializer = &'de Value;
    fn into_deserializer(self) -> &'de Value {
        self
    }
}

/// The variant of an externally tagged enum: `{"Variant": value}`.
struct EnumDeserializer {
    variant: String,
    value: Value,
}

impl<'de> de::EnumAccess<'de> for EnumDeserializer {
    type Error = ValueError;
    type Variant = Value;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Value), ValueError> {
        let variant = seed.deserialize(de::value::StringDeserializer::<ValueError>::new(
            self.variant,
        ))?;
        Ok((variant, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for Value {
    type Error = ValueError;
    fn unit_variant(self) -> Result<(), ValueError> {
        match self {
            Value::Null => Ok(()),
            other => Err(de::Error::invalid_type(other.unexpected(), &"unit variant")),
        }
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, ValueError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Array(items) => visit_array(items, visitor),
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"tuple variant",
            )),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::Object(map) => visit_object(map, visitor),
            Value::Array(items) => visit_array(items, visitor),
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"struct variant",
            )),
        }
    }
}

impl<'de> Deserializer<'de> for &'de Value {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => visit_number(*n, visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Binary(b) => {
                // Borrowed for targets that borrow, lent for `Binary`.
                SHARED_BYTES.with(|slot| *slot.borrow_mut() = Some(b.clone()));
                let result = visitor.visit_borrowed_bytes(b);
                SHARED_BYTES.with(|slot| slot.borrow_mut().take());
                result
            }
            Value::Array(items) => visit_array_ref(items, visitor),
            Value::Object(map) => visit_object_ref(map, visitor),
        }
    }

    integer_methods!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Binary(b) => visit_bytes_as_seq(b, visitor),
            other => other.deserialize_any(visitor),
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
        match self {
            Value::String(variant) => visitor.visit_enum(de::value::BorrowedStrDeserializer::<
                ValueError,
            >::new(variant)),
            Value::Object(map) if map.len() == 1 => {
                let (variant, value) = &map[0];
                visitor.visit_enum(EnumRefDeserializer { variant, value })
            }
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"a string or an object with one key",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool f32 f64 char str string bytes byte_buf unit unit_struct
        tuple_struct map struct identifier
    }
}

fn visit_array_ref<'de, V: Visitor<'de>>(
    items: &'de [Value],
    visitor: V,
) -> Result<V::Value, ValueError> {
    let mut seq = de::value::SeqDeserializer::new(items.iter());
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

fn visit_object_ref<'de, V: Visitor<'de>>(
    map: &'de [(String, Value)],
    visitor: V,
) -> Result<V::Value, ValueError> {
    let mut access = de::value::MapDeserializer::new(
        map.iter()
            .map(|(k, v)| (KeyDeserializer(std::borrow::Cow::Borrowed(k.as_str())), v)),
    );
    let out = visitor.visit_map(&mut access)?;
    access.end()?;
    Ok(out)
}

/// The variant of an externally tagged enum, borrowed.
struct EnumRefDeserializer<'de> {
    variant: &'de str,
    value: &'de Value,
}

impl<'de> de::EnumAccess<'de> for EnumRefDeserializer<'de> {
    type Error = ValueError;
    type Variant = &'de Value;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, &'de Value), ValueError> {
        let variant = seed.deserialize(de::value::BorrowedStrDeserializer::<ValueError>::new(
            self.variant,
        ))?;
        Ok((variant, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for &'de Value {
    type Error = ValueError;
    fn unit_variant(self) -> Result<(), ValueError> {
        match self {
            Value::Null => Ok(()),
            other => Err(de::Error::invalid_type(other.unexpected(), &"unit variant")),
        }
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, ValueError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Array(items) => visit_array_ref(items, visitor),
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"tuple variant",
            )),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::Object(map) => visit_object_ref(map, visitor),
            Value::Array(items) => visit_array_ref(items, visitor),
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"struct variant",
            )),
        }
    }
}

/// A map key: text, which number and bool targets parse (the reverse of
/// [`MapKeySerializer`]).
pub(crate) struct KeyDeserializer<'de>(pub(crate) std::borrow::Cow<'de, str>);

impl<'de> de::IntoDeserializer<'de, ValueError> for KeyDeserializer<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parsed_key {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self.0.parse::<$ty>() {
                Ok(v) => visitor.$visit(v),
                Err(_) => self.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for KeyDeserializer<'de> {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            std::borrow::Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            std::borrow::Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    parsed_key! {
        deserialize_bool => bool, visit_bool;
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
        deserialize_f32 => f32, visit_f32;
        deserialize_f64 => f64, visit_f64;
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            std::borrow::Cow::Borrowed(s) => {
                visitor.visit_enum(de::value::BorrowedStrDeserializer::<ValueError>::new(s))
            }
            std::borrow::Cow::Owned(s) => {
                visitor.visit_enum(de::value::StringDeserializer::<ValueError>::new(s))
            }
        }
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Upload {
        name: String,
        #[serde(default)]
        parts: Vec<Part>,
        note: Option<String>,
        kind: Kind,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Part {
        index: u32,
        body: Bytes,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Plain,
        Sized(u64),
        Pair(i8, String),
        Shaped { w: f32, h: f32 },
    }

    fn obj(entries: &[(&str, Value)]) -> Value {
        Value::Object(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn sample() -> Upload {
        Upload {
            name: "file".into(),
            parts: vec![
                Part {
                    index: 0,
                    body: Bytes::from_static(b"\x00\x01\xff"),
                },
                Part {
                    index: 1,
                    body: Bytes::new(),
                },
            ],
            note: None,
            kind: Kind::Shaped { w: 1.5, h: -2.0 },
        }
    }

    #[test]
    fn nested_struct_with_bytes_round_trips() {
        let upload = sample();
        let value = to_value(&upload).unwrap();
        let expected = obj(&[
            ("name", Value::from("file")),
            (
                "parts",
                Value::Array(vec![
                    obj(&[
                        ("index", Value::from(0u64)),
                        ("body", Value::Binary(Bytes::from_static(b"\x00\x01\xff"))),
                    ]),
                    obj(&[
                        ("index", Value::from(1u64)),
                        ("body", Value::Binary(Bytes::new())),
                    ]),
                ]),
            ),
            ("note", Value::Null),
            (
                "kind",
                obj(&[(
                    "Shaped",
                    obj(&[("w", Value::from(1.5)), ("h", Value::from(-2.0))]),
                )]),
            ),
        ]);
        assert_eq!(value, expected);
        assert!(value.has_binary());
        assert_eq!(from_value::<Upload>(value.clone()).unwrap(), upload);
        assert_eq!(Upload::deserialize(&value).unwrap(), upload);
    }

    #[test]
    fn enums_are_externally_tagged_like_serde_json() {
        let kinds = [
            Kind::Plain,
            Kind::Sized(7),
            Kind::Pair(-3, "x".into()),
            Kind::Shaped { w: 0.5, h: 2.0 },
        ];
        for kind in kinds {
            let ours = to_value(&kind).unwrap();
            assert_eq!(
                serde_json::to_string(&ours).unwrap(),
                serde_json::to_string(&kind).unwrap()
            );
            assert_eq!(from_value::<Kind>(ours.clone()).unwrap(), kind);
            assert_eq!(Kind::deserialize(&ours).unwrap(), kind);
        }
        assert!(from_value::<Kind>(Value::from("Nope")).is_err());
        assert!(from_value::<Kind>(obj(&[("Plain", Value::Null), ("x", Value::Null)])).is_err());
        assert!(from_value::<Kind>(obj(&[("Plain", Value::from(1u64))])).is_err());
        assert!(from_value::<Kind>(obj(&[("Pair", Value::from(1u64))])).is_err());
    }

    #[test]
    fn options_and_units() {
        assert_eq!(to_value(&None::<u8>).unwrap(), Value::Null);
        assert_eq!(to_value(&Some(3u8)).unwrap(), Value::from(3u64));
        assert_eq!(to_value(&()).unwrap(), Value::Null);
        assert_eq!(from_value::<Option<u8>>(Value::Null).unwrap(), None);
        assert_eq!(
            from_value::<Option<u8>>(Value::from(4u64)).unwrap(),
            Some(4)
        );
        from_value::<()>(Value::Null).unwrap();
        assert!(from_value::<()>(Value::from(1u64)).is_err());
        // A missing optional field is fine, a missing required one is not.
        let partial = obj(&[("name", "n".into()), ("kind", "Plain".into())]);
        let upload = from_value::<Upload>(partial).unwrap();
        assert_eq!(upload.note, None);
        assert!(from_value::<Upload>(obj(&[("name", "n".into())])).is_err());
    }

    #[test]
    fn numeric_edge_cases() {
        assert_eq!(
            to_value(&u64::MAX).unwrap(),
            Value::Number(Number::PosInt(u64::MAX))
        );
        assert_eq!(
            to_value(&i64::MIN).unwrap(),
            Value::Number(Number::NegInt(i64::MIN))
        );
        assert_eq!(to_value(&-0i64).unwrap(), Value::Number(Number::PosInt(0)));
        assert_eq!(
            to_value(&(u64::MAX as u128)).unwrap(),
            Value::from(u64::MAX)
        );
        assert_eq!(
            to_value(&(i64::MIN as i128)).unwrap(),
            Value::from(i64::MIN)
        );
        assert!(to_value(&(u64::MAX as u128 + 1)).is_err());
        assert!(to_value(&(i64::MIN as i128 - 1)).is_err());
        assert_eq!(to_value(&1.5f32).unwrap(), Value::from(1.5));

        assert_eq!(from_value::<u8>(Value::from(255u64)).unwrap(), 255);
        assert!(from_value::<u8>(Value::from(256u64)).is_err());
        assert!(from_value::<u8>(Value::from(-1i64)).is_err());
        assert_eq!(from_value::<i8>(Value::from(-128i64)).unwrap(), -128);
        assert!(from_value::<i8>(Value::from(-129i64)).is_err());
        assert_eq!(from_value::<u64>(Value::from(u64::MAX)).unwrap(), u64::MAX);
        assert!(from_value::<i64>(Value::from(u64::MAX)).is_err());
        assert_eq!(
            from_value::<i128>(Value::from(i64::MIN)).unwrap(),
            i128::from(i64::MIN)
        );
        // JavaScript numbers: integral floats fit integer targets.
        assert_eq!(from_value::<u32>(Value::from(3.0)).unwrap(), 3);
        assert_eq!(from_value::<i32>(Value::from(-3.0)).unwrap(), -3);
        assert_eq!(u32::deserialize(&Value::from(3.0)).unwrap(), 3);
        assert!(from_value::<u32>(Value::from(3.5)).is_err());
        assert!(from_value::<u8>(Value::from(300.0)).is_err());
        assert!(from_value::<u64>(Value::from(1e30)).is_err());
        assert_eq!(from_value::<f64>(Value::from(7u64)).unwrap(), 7.0);
        assert_eq!(from_value::<f64>(Value::from(-7i64)).unwrap(), -7.0);
        assert_eq!(from_value::<f32>(Value::from(0.25)).unwrap(), 0.25);
        assert!(from_value::<f64>(Value::from("1")).is_err());
    }

    #[test]
    fn map_keys_become_text_and_parse_back() {
        let mut by_number = BTreeMap::new();
        by_number.insert(-5i32, "a");
        by_number.insert(10, "b");
        let value = to_value(&by_number).unwrap();
        assert_eq!(value, obj(&[("-5", "a".into()), ("10", "b".into())]));
        let back: BTreeMap<i32, String> = from_value(value.clone()).unwrap();
        assert_eq!(back.get(&-5).map(String::as_str), Some("a"));
        let back: BTreeMap<i32, String> = BTreeMap::deserialize(&value).unwrap();
        assert_eq!(back.len(), 2);

        let mut by_bool = BTreeMap::new();
        by_bool.insert(true, 1u8);
        let value = to_value(&by_bool).unwrap();
        assert_eq!(value, obj(&[("true", 1u64.into())]));
        assert_eq!(from_value::<BTreeMap<bool, u8>>(value).unwrap(), by_bool);

        #[derive(Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Debug)]
        enum Color {
            Red,
        }
        let mut by_unit_variant = BTreeMap::new();
        by_unit_variant.insert(Color::Red, 1u8);
        let value = to_value(&by_unit_variant).unwrap();
        assert_eq!(value, obj(&[("Red", 1u64.into())]));
        assert_eq!(
            from_value::<BTreeMap<Color, u8>>(value).unwrap(),
            by_unit_variant
        );

        let mut by_vec = BTreeMap::new();
        by_vec.insert(vec![1u8], 1u8);
        assert!(to_value(&by_vec).is_err());
    }

    #[test]
    fn binary_reaches_byte_and_sequence_targets() {
        let value = Value::Binary(Bytes::from_static(b"abc"));
        assert_eq!(from_value::<Bytes>(value.clone()).unwrap(), &b"abc"[..]);
        assert_eq!(Bytes::deserialize(&value).unwrap(), &b"abc"[..]);
        assert_eq!(from_value::<Vec<u8>>(value.clone()).unwrap(), b"abc");
        assert_eq!(<Vec<u8>>::deserialize(&value).unwrap(), b"abc");
        assert_eq!(from_value::<[u8; 3]>(value.clone()).unwrap(), *b"abc");
        assert!(from_value::<[u8; 2]>(value.clone()).is_err());
        assert_eq!(from_value::<String>(value.clone()).unwrap(), "abc");
        assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
        assert!(from_value::<u8>(value).is_err());
        // An array of numbers also fills bytes (how JSON carries them).
        let numbers = Value::Array(vec![1u64.into(), 2u64.into()]);
        assert_eq!(from_value::<Bytes>(numbers).unwrap(), &[1u8, 2][..]);
    }

    #[test]
    fn shared_binary_reaches_binary_without_a_copy() {
        let bytes = Bytes::from(vec![9u8; 1024]);
        let value = Value::Binary(bytes.clone());
        let out: Binary = from_value(value.clone()).unwrap();
        assert_eq!(out.as_ptr(), bytes.as_ptr());
        let out = Binary::deserialize(&value).unwrap();
        assert_eq!(out.as_ptr(), bytes.as_ptr());
        let out: (u8, Binary) =
            from_value(Value::Array(vec![Value::from(1u64), value.clone()])).unwrap();
        assert_eq!(out.1.as_ptr(), bytes.as_ptr());
        // Other targets get a copy; the lent buffer does not outlive the call.
        let copied: Bytes = from_value(value.clone()).unwrap();
        assert_ne!(copied.as_ptr(), bytes.as_ptr());
        assert_eq!(copied, bytes);
        assert!(take_shared_bytes(&bytes).is_none());
        // Binary from other representations.
        assert_eq!(
            from_value::<Binary>(Value::Array(vec![1u64.into(), 2u64.into()])).unwrap(),
            Binary(Bytes::from_static(&[1, 2]))
        );
        assert_eq!(
            serde_json::from_str::<Binary>("[3,4]").unwrap(),
            Binary(Bytes::from_static(&[3, 4]))
        );
    }

    #[test]
    fn unshared_binary_moves_without_a_copy() {
        let bytes = Bytes::from(vec![9u8; 1024]);
        let ptr = bytes.as_ptr();
        let out: Bytes = from_value(Value::Binary(bytes)).unwrap();
        assert_eq!(out.as_ptr(), ptr);
    }

    #[test]
    fn borrowed_deserializer_borrows_strings() {
        #[derive(Deserialize)]
        struct Borrowing<'a> {
            name: &'a str,
            #[serde(borrow)]
            raw: &'a [u8],
        }
        let value = obj(&[
            ("name", "n".into()),
            ("raw", Value::Binary(Bytes::from_static(b"xy"))),
        ]);
        let b = Borrowing::deserialize(&value).unwrap();
        assert_eq!((b.name, b.raw), ("n", &b"xy"[..]));
    }

    #[test]
    fn type_errors_name_what_was_found() {
        let err = from_value::<String>(Value::from(1u64)).unwrap_err();
        assert!(err.0.contains("integer"), "{err}");
        let err = from_value::<Vec<u8>>(Value::from(true)).unwrap_err();
        assert!(err.0.contains("boolean"), "{err}");
        let err = from_value::<(u8, u8)>(Value::Array(vec![1u64.into()])).unwrap_err();
        assert!(err.0.contains("length"), "{err}");
        assert!(from_value::<(u8,)>(Value::Array(vec![1u64.into(), 2u64.into()])).is_err());
    }

    #[test]
    fn number_text_is_javascript_like() {
        assert_eq!(number_text(3.0), "3");
        assert_eq!(number_text(-0.0), "0");
        assert_eq!(number_text(1.5), "1.5");
        assert_eq!(number_text(f64::INFINITY), "Infinity");
        assert_eq!(number_text(f64::NAN), "NaN");
    }

    pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
                .prop_map(Value::from),
            ".{0,40}".prop_map(Value::String),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|v| Value::Binary(Bytes::from(v))),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((".{0,8}", inner), 0..8).prop_map(Value::Object),
            ]
        })
    }

    proptest! {
        #[test]
        fn value_round_trips_through_itself(v in arb_value()) {
            prop_assert_eq!(to_value(&v).unwrap(), v.clone());
            prop_assert_eq!(Value::deserialize(&v).unwrap(), v.clone());
            prop_assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        }
    }
}
