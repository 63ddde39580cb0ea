//! One argument's JSON to a [`Value`], its binary placeholders replaced by
//! their attachments as they are parsed.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use smallvec::SmallVec;

use super::{json_err, ArgsError};
use crate::value::{Value, ValueVisitor};

/// Parse one argument's JSON, replacing placeholders by their attachments
/// as they are parsed (a placeholder object allocates nothing).
pub(super) fn json_to_value(json: &str, attachments: &[Bytes]) -> Result<Value, ArgsError> {
    if attachments.is_empty() {
        return serde_json::from_str(json).map_err(json_err);
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let value = PlaceholderValue { attachments }
        .deserialize(&mut de)
        .map_err(json_err)?;
    de.end().map_err(json_err)?;
    Ok(value)
}

/// Builds a [`Value`] like [`ValueVisitor`], except that an object whose
/// `_placeholder` is `true` becomes its attachment: later duplicate keys
/// win, `num` a non-negative integer, possibly written as an integral float
/// (the rule of `replace_placeholders`, which the tests keep as the
/// reference).
#[derive(Clone, Copy)]
struct PlaceholderValue<'a> {
    attachments: &'a [Bytes],
}

impl<'de> DeserializeSeed<'de> for PlaceholderValue<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A key of an object being read: the two a placeholder has are kept
/// without allocating.
enum PlaceholderKey {
    Placeholder,
    Num,
    Other(String),
}

impl<'de> de::Deserialize<'de> for PlaceholderKey {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<PlaceholderKey, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = PlaceholderKey;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PlaceholderKey, E> {
        Ok(match v {
            "_placeholder" => PlaceholderKey::Placeholder,
            "num" => PlaceholderKey::Num,
            other => PlaceholderKey::Other(other.to_owned()),
        })
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<PlaceholderKey, E> {
        Ok(match v.as_str() {
            "_placeholder" => PlaceholderKey::Placeholder,
            "num" => PlaceholderKey::Num,
            _ => PlaceholderKey::Other(v),
        })
    }
}

macro_rules! scalar_visits {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Value, E> {
            ValueVisitor.$method(v)
        }
    )*};
}

impl<'de> Visitor<'de> for PlaceholderValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    scalar_visits!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_i128(i128),
        visit_u128(u128),
        visit_f64(f64),
        visit_str(&str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Value, S::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<M: de::MapAccess<'de>>(self, mut map: M) -> Result<Value, M::Error> {
        let mut entries = Vec::new();
        // The placeholder keys' values, with where they stood among the
        // entries, in order (duplicates included).
        let mut special: SmallVec<[(usize, bool, Value); 2]> = SmallVec::new();
        while let Some(key) = map.next_key::<PlaceholderKey>()? {
            let value = map.next_value_seed(self)?;
            match key {
                PlaceholderKey::Other(key) => entries.push((key, value)),
                PlaceholderKey::Placeholder => special.push((entries.len(), true, value)),
                PlaceholderKey::Num => special.push((entries.len(), false, value)),
            }
        }
        // Later duplicate keys win, as with JSON.parse.
        let last = |placeholder: bool| {
            special
                .iter()
                .rev()
                .find(|(_, p, _)| *p == placeholder)
                .map(|(_, _, v)| v)
        };
        if last(true) == Some(&Value::Bool(true)) {
            let index = match last(false) {
                Some(Value::Number(crate::value::Number::PosInt(n))) => Some(*n),
                Some(Value::Number(crate::value::Number::Float(f)))
                    if *f >= 0.0 && f.fract() == 0.0 =>
                {
                    Some(*f as u64)
                }
                _ => None,
            };
            let attachment = index
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| self.attachments.get(n))
                .ok_or_else(|| de::Error::custom("invalid attachment placeholder"))?;
            return Ok(Value::Binary(attachment.clone()));
        }
        // Not a placeholder: put the two keys back where they were.
        for (offset, (at, placeholder, value)) in special.into_iter().enumerate() {
            let key = if placeholder { "_placeholder" } else { "num" };
            entries.insert(at + offset, (key.to_owned(), value));
        }
        Ok(Value::Object(entries))
    }
}

#[cfg(test)]
/// Replace each `{"_placeholder":true,"num":N}` by the N-th attachment. The
/// value came from serde_json, whose recursion limit bounds the depth.
pub(super) fn replace_placeholders(
    value: &mut Value,
    attachments: &[Bytes],
) -> Result<(), ArgsError> {
    match value {
        Value::Array(items) => {
            for item in items {
                replace_placeholders(item, attachments)?;
            }
        }
        Value::Object(map) => {
            // Later duplicate keys win, as with JSON.parse.
            let field = |name: &str| map.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
            if field("_placeholder") == Some(&Value::Bool(true)) {
                let index = match field("num") {
                    Some(Value::Number(crate::value::Number::PosInt(n))) => Some(*n),
                    Some(Value::Number(crate::value::Number::Float(f)))
                        if *f >= 0.0 && f.fract() == 0.0 =>
                    {
                        Some(*f as u64)
                    }
                    _ => None,
                };
                let attachment = index
                    .and_then(|n| usize::try_from(n).ok())
                    .and_then(|n| attachments.get(n))
                    .ok_or_else(|| ArgsError("invalid attachment placeholder".into()))?;
                *value = Value::Binary(attachment.clone());
            } else {
                for (_, item) in map {
                    replace_placeholders(item, attachments)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}
