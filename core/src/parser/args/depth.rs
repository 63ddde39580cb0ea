//! The nesting limit while deserializing straight from the received text.
//!
//! serde_json bounds recursion at 128 levels but has no setting for a lower
//! limit, and skips ignored values without recursing at all. These wrappers
//! count arrays and objects on the way down so that `deserialize` enforces
//! `DecodeLimits::max_depth` exactly as `validate` does. They forward
//! everything else and inline away.

use std::fmt;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};

//
// serde_json bounds recursion at 128 levels but has no setting for a lower
// limit, and skips ignored values without recursing at all. These wrappers
// count arrays and objects on the way down so that `deserialize` enforces
// `DecodeLimits::max_depth` exactly as `validate` does. They forward
// everything else and inline away.

/// How deep the value being read sits, and the limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Depth {
    /// Arrays and objects enclosing the value (the arguments' array is 1).
    pub(super) level: usize,
    pub(super) max: usize,
}

impl Depth {
    /// One level further down, or an error past the limit.
    #[inline]
    fn enter<E: de::Error>(self) -> Result<Depth, E> {
        if self.level >= self.max {
            return Err(self.exceeded());
        }
        Ok(Depth {
            level: self.level + 1,
            max: self.max,
        })
    }

    #[cold]
    pub(super) fn exceeded<E: de::Error>(self) -> E {
        E::custom(format_args!("nesting deeper than {}", self.max))
    }
}

/// A seed whose deserializer is wrapped in [`Guard`].
pub(super) struct Guarded<E> {
    pub(super) seed: E,
    pub(super) depth: Depth,
}

impl<'de, E: DeserializeSeed<'de>> DeserializeSeed<'de> for Guarded<E> {
    type Value = E::Value;
    #[inline]
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<E::Value, D::Error> {
        self.seed.deserialize(Guard {
            inner: d,
            depth: self.depth,
        })
    }
}

/// A deserializer whose visitors are wrapped in [`GuardVisitor`].
struct Guard<D> {
    inner: D,
    depth: Depth,
}

macro_rules! guard_methods {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* GuardVisitor { inner: visitor, depth: self.depth })
        }
    )*};
}

impl<'de, D: de::Deserializer<'de>> de::Deserializer<'de> for Guard<D> {
    type Error = D::Error;

    guard_methods!(
        deserialize_any(),
        deserialize_bool(),
        deserialize_i8(),
        deserialize_i16(),
        deserialize_i32(),
        deserialize_i64(),
        deserialize_i128(),
        deserialize_u8(),
        deserialize_u16(),
        deserialize_u32(),
        deserialize_u64(),
        deserialize_u128(),
        deserialize_f32(),
        deserialize_f64(),
        deserialize_char(),
        deserialize_str(),
        deserialize_string(),
        deserialize_bytes(),
        deserialize_byte_buf(),
        deserialize_option(),
        deserialize_unit(),
        deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str),
        deserialize_seq(),
        deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize),
        deserialize_map(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        deserialize_identifier(),
    );

    /// Walked rather than skipped: serde_json skips without counting
    /// levels (and without a limit).
    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(GuardVisitor {
            inner: visitor,
            depth: self.depth,
        })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A visitor that counts a level for each array or object it is given.
struct GuardVisitor<V> {
    inner: V,
    depth: Depth,
}

macro_rules! forward_visits {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        #[inline]
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for GuardVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visits!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }
    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }
    #[inline]
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Guard {
            inner: d,
            depth: self.depth,
        })
    }
    #[inline]
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Guard {
            inner: d,
            depth: self.depth,
        })
    }
    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let depth = self.depth.enter()?;
        self.inner.visit_seq(GuardSeq { inner: seq, depth })
    }
    #[inline]
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let depth = self.depth.enter()?;
        self.inner.visit_map(GuardMap { inner: map, depth })
    }
    /// An enum is either a string (no nesting) or a one-key object: the
    /// level is counted once the variant's contents are read.
    #[inline]
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(GuardEnum {
            inner: data,
            depth: self.depth,
        })
    }
}

struct GuardSeq<A> {
    inner: A,
    depth: Depth,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for GuardSeq<A> {
    type Error = A::Error;
    #[inline]
    fn next_element_seed<E: DeserializeSeed<'de>>(
        &mut self,
        seed: E,
    ) -> Result<Option<E::Value>, A::Error> {
        self.inner.next_element_seed(Guarded {
            seed,
            depth: self.depth,
        })
    }
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct GuardMap<A> {
    inner: A,
    depth: Depth,
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for GuardMap<A> {
    type Error = A::Error;
    /// JSON keys are strings: nothing nests there.
    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(seed)
    }
    #[inline]
    fn next_value_seed<E: DeserializeSeed<'de>>(&mut self, seed: E) -> Result<E::Value, A::Error> {
        self.inner.next_value_seed(Guarded {
            seed,
            depth: self.depth,
        })
    }
    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct GuardEnum<A> {
    inner: A,
    depth: Depth,
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for GuardEnum<A> {
    type Error = A::Error;
    type Variant = GuardEnum<A::Variant>;
    fn variant_seed<E: DeserializeSeed<'de>>(
        self,
        seed: E,
    ) -> Result<(E::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((
            value,
            GuardEnum {
                inner: variant,
                depth: self.depth,
            },
        ))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for GuardEnum<A> {
    type Error = A::Error;
    /// `"Variant"`, or `{"Variant":null}` whose `null` nests nothing.
    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }
    fn newtype_variant_seed<E: DeserializeSeed<'de>>(self, seed: E) -> Result<E::Value, A::Error> {
        let depth = self.depth.enter()?;
        self.inner.newtype_variant_seed(Guarded { seed, depth })
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let depth = self.depth.enter()?;
        self.inner.tuple_variant(
            len,
            GuardVisitor {
                inner: visitor,
                depth,
            },
        )
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let depth = self.depth.enter()?;
        self.inner.struct_variant(
            fields,
            GuardVisitor {
                inner: visitor,
                depth,
            },
        )
    }
}
