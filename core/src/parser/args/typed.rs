//! Arguments deserialized into the application's type straight from the
//! received JSON text, in one pass; [`Target`] says how the type takes them.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};

use super::depth::{Depth, Guarded};
use super::{json_err, ArgsError};

/// Deserialize `T` from the arguments' array in one pass: the event name
/// (when `has_name`) is skipped, `T` takes its arguments (see [`Target`]),
/// and the rest is read through to the end, so any syntax error or nesting
/// beyond `max_depth` fails the whole call.
pub(super) fn deserialize_json<T: DeserializeOwned>(
    array: &str,
    has_name: bool,
    max_depth: usize,
    target: Target,
) -> Result<T, ArgsError> {
    let mut json = serde_json::Deserializer::from_str(array);
    let value = de::Deserializer::deserialize_seq(
        &mut json,
        ArgsVisitor::<T> {
            has_name,
            max_depth,
            target,
            marker: PhantomData,
        },
    )
    .map_err(json_err)?;
    json.end().map_err(json_err)?;
    Ok(value)
}

struct ArgsVisitor<T> {
    has_name: bool,
    max_depth: usize,
    target: Target,
    marker: PhantomData<T>,
}

impl<'de, T: de::Deserialize<'de>> Visitor<'de> for ArgsVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of arguments")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<T, S::Error> {
        // The array itself is the first level.
        let depth = Depth {
            level: 1,
            max: self.max_depth,
        };
        if self.max_depth < 1 {
            return Err(depth.exceeded());
        }
        // The name was checked at decode time: a string or a number.
        if self.has_name && seq.next_element::<IgnoredAny>()?.is_none() {
            return Err(de::Error::custom("missing event name"));
        }
        let value = match self.target {
            Target::Unit => T::deserialize(missing::<S::Error>())?,
            Target::Tuple(len) => T::deserialize(TupleArgs {
                seq: &mut seq,
                remaining: len,
                exhausted: false,
                depth,
            })?,
            Target::Option | Target::Other => {
                match seq.next_element_seed(Guarded {
                    seed: PhantomData::<T>,
                    depth,
                })? {
                    Some(value) => value,
                    None => T::deserialize(missing::<S::Error>())?,
                }
            }
        };
        // Arguments the type did not take must still be valid JSON.
        while seq
            .next_element_seed(Guarded {
                seed: PhantomData::<IgnoredAny>,
                depth,
            })?
            .is_some()
        {}
        Ok(value)
    }
}

/// A missing argument: `null` (`None` for an `Option`), as JavaScript's
/// `undefined` for a parameter nobody passed.
pub(in crate::parser) fn missing<E: de::Error>() -> de::value::UnitDeserializer<E> {
    de::value::UnitDeserializer::new()
}

/// The arguments as a tuple of `remaining` elements, padded with
/// [`missing`] ones.
struct TupleArgs<'s, S> {
    seq: &'s mut S,
    remaining: usize,
    exhausted: bool,
    depth: Depth,
}

impl<'de, S: SeqAccess<'de>> de::Deserializer<'de> for TupleArgs<'_, S> {
    type Error = S::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, S::Error> {
        visitor.visit_seq(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, S: SeqAccess<'de>> SeqAccess<'de> for TupleArgs<'_, S> {
    type Error = S::Error;

    fn next_element_seed<E: DeserializeSeed<'de>>(
        &mut self,
        seed: E,
    ) -> Result<Option<E::Value>, S::Error> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let mut slot = Some(seed);
        if !self.exhausted {
            let element = self.seq.next_element_seed(Guarded {
                seed: TakeSeed(&mut slot),
                depth: self.depth,
            })?;
            if element.is_some() {
                return Ok(element);
            }
            self.exhausted = true;
        }
        let seed = slot
            .take()
            .expect("the seed is used only when an element exists");
        seed.deserialize(missing::<S::Error>()).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

/// A seed lent to a sequence that may turn out to have no element left,
/// so the caller keeps it in that case.
struct TakeSeed<'a, E>(&'a mut Option<E>);

impl<'de, E: DeserializeSeed<'de>> DeserializeSeed<'de> for TakeSeed<'_, E> {
    type Value = E::Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<E::Value, D::Error> {
        let seed = self.0.take().expect("a seed is used once");
        seed.deserialize(d)
    }
}

/// What a type asks of a deserializer first: how the arguments map onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::parser) enum Target {
    /// `()`: accepts anything.
    Unit,
    /// A tuple: one argument per element.
    Tuple(usize),
    /// `Option<T>`: the first argument, `None` when there is none.
    Option,
    /// Anything else: the first argument.
    Other,
}

/// Find `T`'s [`Target`] by letting it start deserializing from a probe that
/// stops at the first call.
pub(in crate::parser) fn probe_target<T: DeserializeOwned>() -> Target {
    match T::deserialize(TargetProbe) {
        Err(Probed(target)) => target,
        Ok(_) => Target::Other,
    }
}

/// The probe's way to stop early with its answer.
#[derive(Debug)]
struct Probed(Target);

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}
impl std::error::Error for Probed {}
impl de::Error for Probed {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probed(Target::Other)
    }
}

struct TargetProbe;

impl<'de> de::Deserializer<'de> for TargetProbe {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(Target::Other))
    }
    fn deserialize_unit<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(Target::Unit))
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, Probed> {
        Err(Probed(Target::Unit))
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, _: V) -> Result<V::Value, Probed> {
        Err(Probed(Target::Tuple(len)))
    }
    fn deserialize_option<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed(Target::Option))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf newtype_struct seq tuple_struct
        map struct enum identifier ignored_any
    }
}
