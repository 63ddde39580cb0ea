//! [`MsgPackArgs`]: arguments left as MessagePack bytes by [`decode_lazy`],
//! deserialized on demand straight from them with [`Value`]'s data model.

use std::borrow::Cow;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::reader::MsgPackReader;
use super::reader::TRUNCATED;
use super::token_reader::read_value;
use crate::parser::args::{missing, Repr, Target};
use crate::parser::{Args, ArgsError, DecodeError};
use crate::value::{integral, visit_shared_bytes, KeyDeserializer, Number, Value, ValueError};

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
    pub(super) fn new(bytes: &Bytes, start: usize, count: usize) -> MsgPackArgs {
        MsgPackArgs {
            bytes: bytes.clone(),
            start,
            count,
        }
    }

    pub(super) fn into_args(self) -> Args {
        Args(Repr::MsgPack(self))
    }

    /// How many arguments there are.
    pub(in crate::parser) fn len(&self) -> usize {
        self.count
    }

    fn reader(&self) -> MsgPackReader<'_> {
        MsgPackReader {
            buf: &self.bytes,
            pos: self.start,
        }
    }

    /// Each argument as a [`Value`], read one at a time.
    pub(in crate::parser) fn values(&self) -> impl Iterator<Item = Result<Value, ArgsError>> + '_ {
        let mut reader = self.reader();
        (0..self.count).map(move |_| read_value(&mut reader, usize::MAX).map_err(args_err))
    }

    /// Every argument as a [`Value`].
    pub(in crate::parser) fn to_values(&self) -> Result<Vec<Value>, ArgsError> {
        self.values().collect()
    }

    /// The arguments as `T` takes them (see [`Args`]).
    pub(in crate::parser) fn deserialize<T: DeserializeOwned>(
        &self,
        target: Target,
    ) -> Result<T, ArgsError> {
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
    pub(in crate::parser) fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgsError> {
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
