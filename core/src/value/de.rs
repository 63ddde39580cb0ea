//! A [`Value`], owned or borrowed, into any `Deserialize`
//! ([`from_value`]).
//!
//! `Value` and `&'de Value` are both deserializers. They differ only in how
//! a leaf is handed to the visitor (moved, or borrowed from the value), so
//! [`value_deserializer`] writes both from one definition and its two call
//! sites list just those differences.

use std::borrow::Cow;

use serde::de::{self, Deserializer, IntoDeserializer, Visitor};

use super::binary::lending;
use super::{visit_shared_bytes, Number, Value, ValueError};

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

/// An array's items (owned or borrowed) as a sequence.
fn visit_array<'de, I, V>(items: I, visitor: V) -> Result<V::Value, ValueError>
where
    I: Iterator,
    I::Item: IntoDeserializer<'de, ValueError>,
    V: Visitor<'de>,
{
    let mut seq = de::value::SeqDeserializer::new(items);
    let out = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(out)
}

/// An object's entries (owned or borrowed) as a map; keys go through
/// [`KeyDeserializer`] so number and bool keys parse back.
fn visit_object<'de, I, K, D, V>(entries: I, visitor: V) -> Result<V::Value, ValueError>
where
    I: Iterator<Item = (K, D)>,
    K: Into<Cow<'de, str>>,
    D: IntoDeserializer<'de, ValueError>,
    V: Visitor<'de>,
{
    let mut access =
        de::value::MapDeserializer::new(entries.map(|(k, v)| (KeyDeserializer(k.into()), v)));
    let out = visitor.visit_map(&mut access)?;
    access.end()?;
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

/// The variant of an externally tagged enum, `{"Variant": content}`: the
/// tag's deserializer and the content (owned or borrowed).
struct EnumDeserializer<Tag, Content> {
    tag: Tag,
    content: Content,
}

impl<'de, Tag, Content> de::EnumAccess<'de> for EnumDeserializer<Tag, Content>
where
    Tag: Deserializer<'de, Error = ValueError>,
    Content: de::VariantAccess<'de, Error = ValueError>,
{
    type Error = ValueError;
    type Variant = Content;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Content), ValueError> {
        Ok((seed.deserialize(self.tag)?, self.content))
    }
}

/// Writes `Deserializer`, `VariantAccess` and `IntoDeserializer` for one
/// input (`Value` or `&'de Value`). The arguments are what differs between
/// the two; each names the bindings its expression uses:
/// - `copy`: `*` where scalars are matched by reference, nothing otherwise;
/// - `string(s, visitor)`: a string leaf to the visitor;
/// - `binary(b, visitor)`: a binary leaf to the visitor;
/// - `entries(map)`: an object's `(key, value)` pairs;
/// - `tag(name)`: the deserializer of an enum's variant name;
/// - `single_entry(map)`: the one `(name, content)` of `{"Variant": content}`.
macro_rules! value_deserializer {
    (
        input: $input:ty;
        copy: [$($copy:tt)?];
        string($string:ident, $string_visitor:ident) => $visit_string:expr;
        binary($bytes:ident, $bytes_visitor:ident) => $visit_bytes:expr;
        entries($map:ident) => $entries:expr;
        tag($name:ident) => $tag:expr;
        single_entry($object:ident) => $single_entry:expr;
    ) => {
        impl<'de> Deserializer<'de> for $input {
            type Error = ValueError;

            fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
                match self {
                    Value::Null => visitor.visit_unit(),
                    Value::Bool(b) => visitor.visit_bool($($copy)? b),
                    Value::Number(n) => visit_number($($copy)? n, visitor),
                    Value::String($string) => {
                        let $string_visitor = visitor;
                        $visit_string
                    }
                    Value::Binary($bytes) => {
                        let $bytes_visitor = visitor;
                        $visit_bytes
                    }
                    Value::Array(items) => visit_array(items.into_iter(), visitor),
                    Value::Object($map) => visit_object($entries, visitor),
                }
            }

            value_deserializer!(@integers [$($copy)?]
                deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
                deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
            );

            fn deserialize_option<V: Visitor<'de>>(
                self,
                visitor: V,
            ) -> Result<V::Value, ValueError> {
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
                    Value::String($name) => visitor.visit_enum($tag),
                    Value::Object($object) if $object.len() == 1 => {
                        let ($name, content) = $single_entry;
                        visitor.visit_enum(EnumDeserializer { tag: $tag, content })
                    }
                    other => Err(de::Error::invalid_type(
                        other.unexpected(),
                        &"a string or an object with one key",
                    )),
                }
            }

            fn deserialize_ignored_any<V: Visitor<'de>>(
                self,
                visitor: V,
            ) -> Result<V::Value, ValueError> {
                visitor.visit_unit()
            }

            serde::forward_to_deserialize_any! {
                bool f32 f64 char str string bytes byte_buf unit unit_struct
                tuple_struct map struct identifier
            }
        }

        impl<'de> de::VariantAccess<'de> for $input {
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
            fn tuple_variant<V: Visitor<'de>>(
                self,
                _: usize,
                visitor: V,
            ) -> Result<V::Value, ValueError> {
                match self {
                    Value::Array(items) => visit_array(items.into_iter(), visitor),
                    other => Err(de::Error::invalid_type(other.unexpected(), &"tuple variant")),
                }
            }
            fn struct_variant<V: Visitor<'de>>(
                self,
                _: &'static [&'static str],
                visitor: V,
            ) -> Result<V::Value, ValueError> {
                match self {
                    Value::Object($map) => visit_object($entries, visitor),
                    Value::Array(items) => visit_array(items.into_iter(), visitor),
                    other => Err(de::Error::invalid_type(other.unexpected(), &"struct variant")),
                }
            }
        }

        impl<'de> IntoDeserializer<'de, ValueError> for $input {
            type Deserializer = $input;
            fn into_deserializer(self) -> $input {
                self
            }
        }
    };

    // Integer targets accept integral floats: JavaScript peers do not
    // distinguish the two.
    (@integers [$($copy:tt)?] $method:ident $($rest:ident)*) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self {
                Value::Number(Number::Float(f)) => match integral($($copy)? f) {
                    Some(n) => visit_number(n, visitor),
                    None => visit_number(Number::Float($($copy)? f), visitor),
                },
                other => other.deserialize_any(visitor),
            }
        }
        value_deserializer!(@integers [$($copy)?] $($rest)*);
    };
    (@integers [$($copy:tt)?]) => {};
}

value_deserializer! {
    input: Value;
    copy: [];
    string(s, visitor) => visitor.visit_string(s);
    // Free when the buffer is not shared. Otherwise lent, so that `Binary`
    // keeps it; other targets copy the slice they get.
    binary(b, visitor) => if b.is_unique() {
        visitor.visit_byte_buf(Vec::from(b))
    } else {
        visit_shared_bytes(&b, visitor)
    };
    entries(map) => map.into_iter();
    tag(name) => de::value::StringDeserializer::<ValueError>::new(name);
    single_entry(map) => map.into_iter().next().expect("one entry");
}

value_deserializer! {
    input: &'de Value;
    copy: [*];
    string(s, visitor) => visitor.visit_borrowed_str(s);
    // Borrowed for targets that borrow, lent for `Binary`.
    binary(b, visitor) => lending(b, || visitor.visit_borrowed_bytes(b));
    entries(map) => map.iter().map(|(k, v)| (k.as_str(), v));
    tag(name) => de::value::BorrowedStrDeserializer::<ValueError>::new(name);
    single_entry(map) => &map[0];
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
