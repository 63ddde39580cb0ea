//! A dynamic value model that carries binary natively.
//!
//! [`Value`] is what JSON, MessagePack and CBOR have in common, plus
//! [`Value::Binary`] for raw bytes held as [`Bytes`] (so binary received from
//! the network is a slice of the received buffer, never a copy). Objects keep
//! their keys in insertion order, because peers compare encoded bytes.
//!
//! - this module: [`Value`] itself, its own serde impls, [`to_value`] and
//!   [`from_value`];
//! - `binary`: [`Binary`] and the lending of a `Bytes` through serde, so
//!   attachments are shared rather than copied;
//! - `ser`: any `Serialize` into a [`Value`];
//! - `de`: a [`Value`], owned or borrowed, into any `Deserialize` (both
//!   deserializers generated from one definition).

mod binary;
mod de;
mod ser;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

pub use binary::Binary;
pub(crate) use binary::{serialize_shared_bytes, take_shared_bytes, visit_shared_bytes};
pub use de::from_value;
pub(crate) use de::{integral, KeyDeserializer};
pub use ser::to_value;
pub(crate) use ser::{number_text, MapKeySerializer};

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
    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Value, E> {
        if let Ok(n) = i64::try_from(v) {
            Ok(Value::from(n))
        } else if let Ok(n) = u64::try_from(v) {
            Ok(Value::Number(Number::PosInt(n)))
        } else {
            Ok(Value::Number(Number::Float(v as f64)))
        }
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
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

impl serde::de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string())
    }
}
impl serde::ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string())
    }
}
