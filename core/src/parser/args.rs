//! Event and acknowledgement arguments, kept in their received form until
//! the application asks for them.

use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde::ser::{self as serde_ser, Serialize, SerializeTuple, Serializer};
use smallvec::SmallVec;

use crate::value::{from_value, Value, ValueVisitor};
use crate::Str;

/// Byte ranges of each argument inside the received text.
pub(crate) type Spans = SmallVec<[(u32, u32); 2]>;

/// The arguments of an event or an acknowledgement: a first-class argument
/// list.
///
/// From the JSON parser they stay as the received text (plus the binary
/// attachments) until deserialized; from MessagePack, as the received
/// bytes (validated in full at decode time, deserialized straight from
/// them, binary as slices of the message); from CBOR, and when built by the
/// application, they are [`Value`]s.
///
/// Deserializing into a tuple takes the arguments one per element; into `()`
/// accepts any; into any other type takes the first argument (into an
/// `Option`, `None` when there is none). Fixed-size arrays count as tuples,
/// as serde treats them alike (and so does spreading on the way out).
///
/// # Validation of JSON arguments
///
/// The JSON parser checks at decode time everything about an EVENT or ACK
/// except the syntax of the arguments after the event name: the header, the
/// namespace, the ack id, the attachment count, that the payload is an
/// array and that the event name is present, valid and not reserved. Binary
/// packets (BINARY_EVENT, BINARY_ACK) are checked in full at decode time,
/// placeholders included.
///
/// The arguments of a plain EVENT or ACK are checked, in full and with the
/// same rules (JSON syntax, UTF-16 escapes, [`DecodeLimits::max_depth`]),
/// by whichever comes first: [`Args::deserialize`] (in the same single pass
/// that builds the value), or [`Args::validate`], which every other accessor
/// ([`Args::len`], [`Args::get`], [`Args::to_values`], serializing) runs
/// first and caches. So the JSON is parsed once whatever the application
/// does, and invalid JSON from a peer is never handed over as valid.
///
/// When [`Args::deserialize`] fails, [`Args::validate`] tells the two causes
/// apart: an error there means the peer sent invalid arguments; success
/// means the arguments do not fit the requested type.
///
/// JSON arguments without binary deserialize straight from the received
/// text; arguments with binary, and [`Value`] arguments, go through
/// [`Value`] with binary shared, not copied.
///
/// [`DecodeLimits::max_depth`]: super::DecodeLimits::max_depth
#[derive(Clone)]
pub struct Args(pub(crate) Repr);

#[derive(Clone)]
pub(crate) enum Repr {
    /// Received JSON.
    Json {
        /// The whole received text.
        text: Str,
        /// Where the array holding the arguments starts in `text` (it runs
        /// to the end); `None` for an ACK without payload.
        array_start: Option<u32>,
        /// Whether the array's first item is the event name.
        has_name: bool,
        /// Binary attachments, referred to by placeholders.
        attachments: Vec<Bytes>,
        /// [`super::DecodeLimits::max_depth`] at decode time.
        max_depth: usize,
        /// Once validated: each argument's byte range in `text`, or why the
        /// arguments are invalid.
        checked: OnceLock<Result<Spans, ArgsError>>,
    },
    /// Received MessagePack, validated, deserialized on demand.
    MsgPack(super::msgpack::MsgPackArgs),
    /// Decoded values.
    Values(Vec<Value>),
}

/// The arguments are invalid or do not fit the requested type.
///
/// [`Args::validate`] tells which: see [`Args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError(pub String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "arguments do not match: {}", self.0)
    }
}
impl std::error::Error for ArgsError {}

impl de::Error for ArgsError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ArgsError(msg.to_string())
    }
}

fn json_err(e: serde_json::Error) -> ArgsError {
    ArgsError(e.to_string())
}

impl Args {
    /// Arguments from values.
    pub fn from_values(values: Vec<Value>) -> Args {
        Args(Repr::Values(values))
    }

    /// Arguments from any serializable value, with the rule every emit
    /// uses: a tuple is several arguments, `()` is none, any other value is
    /// exactly one (so a `Vec` is one array argument). Binary stays binary.
    pub fn from_serialize<A: serde::Serialize + ?Sized>(
        args: &A,
    ) -> Result<Args, crate::value::ValueError> {
        match crate::value::to_value(&super::ArgArray { event: None, args })? {
            Value::Array(items) => Ok(Args::from_values(items)),
            // `ArgArray` always serializes as a sequence.
            other => Ok(Args::from_values(vec![other])),
        }
    }

    /// No arguments.
    pub fn empty() -> Args {
        Args(Repr::Values(Vec::new()))
    }

    /// Check that the arguments are valid (see [`Args`] for what is checked
    /// when). An error means the peer sent invalid arguments.
    ///
    /// Runs once for arguments received as JSON (the outcome is kept), and
    /// is free for arguments held as values.
    pub fn validate(&self) -> Result<(), ArgsError> {
        self.spans().map(|_| ())
    }

    /// The validated spans of JSON arguments.
    fn spans(&self) -> Result<&[(u32, u32)], ArgsError> {
        match &self.0 {
            Repr::Json {
                text,
                array_start,
                has_name,
                max_depth,
                checked,
                ..
            } => checked
                .get_or_init(|| match array_start {
                    None => Ok(Spans::new()),
                    Some(start) => {
                        super::json::validate_args(text, *start as usize, *has_name, *max_depth)
                            .map_err(|e| ArgsError(e.to_string()))
                    }
                })
                .as_ref()
                .map(|spans| &spans[..])
                .map_err(Clone::clone),
            Repr::MsgPack(_) | Repr::Values(_) => Ok(&[]),
        }
    }

    /// How many arguments there are.
    ///
    /// For arguments received as JSON this validates them first (once);
    /// invalid arguments count as none.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Json { .. } => self.spans().map_or(0, <[_]>::len),
            Repr::MsgPack(args) => args.len(),
            Repr::Values(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Deserialize the arguments (see the type's documentation for how
    /// tuples and single values are matched).
    ///
    /// A tuple takes one argument per element: missing trailing arguments
    /// read as `null` (so `Option` elements become `None`) and extra ones
    /// are ignored, as a JavaScript handler would. Arguments received as
    /// JSON are checked in full, ignored ones included, in the same pass.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        let target = probe_target::<T>();
        match &self.0 {
            Repr::Json {
                text,
                array_start,
                has_name,
                attachments,
                max_depth,
                checked,
            } if attachments.is_empty() => {
                if let Some(Err(e)) = checked.get() {
                    return Err(e.clone());
                }
                let array = match array_start {
                    Some(start) => &text[*start as usize..],
                    None => "[]",
                };
                deserialize_json(array, *has_name, *max_depth, target)
            }
            Repr::MsgPack(args) => args.deserialize(target),
            Repr::Json { .. } | Repr::Values(_) => {
                let mut values = self.to_values()?;
                let value = match target {
                    Target::Unit => Value::Null,
                    Target::Tuple(len) => {
                        values.truncate(len);
                        values.resize(len, Value::Null);
                        Value::Array(values)
                    }
                    Target::Option | Target::Other => {
                        values.into_iter().next().unwrap_or(Value::Null)
                    }
                };
                from_value(value).map_err(|e| ArgsError(e.0))
            }
        }
    }

    /// Deserialize the argument at `index` alone.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgsError> {
        let missing = || ArgsError(format!("no argument at index {index}"));
        match &self.0 {
            Repr::Json {
                text, attachments, ..
            } => {
                let &(start, end) = self.spans()?.get(index).ok_or_else(missing)?;
                let json = &text[start as usize..end as usize];
                if attachments.is_empty() {
                    serde_json::from_str(json).map_err(json_err)
                } else {
                    let value = json_to_value(json, attachments)?;
                    from_value(value).map_err(|e| ArgsError(e.0))
                }
            }
            Repr::MsgPack(args) => args.get(index),
            Repr::Values(values) => {
                let value = values.get(index).ok_or_else(missing)?.clone();
                from_value(value).map_err(|e| ArgsError(e.0))
            }
        }
    }

    /// The arguments as dynamic values, binary as [`Value::Binary`].
    ///
    /// Binary attachments are shared with the received buffers, not copied.
    pub fn to_values(&self) -> Result<Vec<Value>, ArgsError> {
        match &self.0 {
            Repr::Json {
                text, attachments, ..
            } => self
                .spans()?
                .iter()
                .map(|&(start, end)| {
                    json_to_value(&text[start as usize..end as usize], attachments)
                })
                .collect(),
            Repr::MsgPack(args) => args.to_values(),
            Repr::Values(values) => Ok(values.clone()),
        }
    }

    /// The raw JSON text of each argument, when the arguments were received
    /// as JSON (placeholders left as they are). Validates them first; an
    /// invalid argument list yields no text.
    pub fn json_texts(&self) -> Option<impl Iterator<Item = &str> + '_> {
        match &self.0 {
            Repr::Json { text, .. } => {
                let spans = self.spans().unwrap_or(&[]);
                Some(
                    spans
                        .iter()
                        .map(move |&(start, end)| &text[start as usize..end as usize]),
                )
            }
            Repr::MsgPack(_) | Repr::Values(_) => None,
        }
    }

    /// The binary attachments received with the arguments (JSON parser
    /// only; other formats carry binary inline as [`Value::Binary`]).
    pub fn attachments(&self) -> &[Bytes] {
        match &self.0 {
            Repr::Json { attachments, .. } => attachments,
            Repr::MsgPack(_) | Repr::Values(_) => &[],
        }
    }
}

/// Parse one argument's JSON, replacing placeholders by their attachments
/// as they are parsed (a placeholder object allocates nothing).
fn json_to_value(json: &str, attachments: &[Bytes]) -> Result<Value, ArgsError> {
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
fn replace_placeholders(value: &mut Value, attachments: &[Bytes]) -> Result<(), ArgsError> {
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

/// Deserialize `T` from the arguments' array in one pass: the event name
/// (when `has_name`) is skipped, `T` takes its arguments (see [`Target`]),
/// and the rest is read through to the end, so any syntax error or nesting
/// beyond `max_depth` fails the whole call.
fn deserialize_json<T: DeserializeOwned>(
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
pub(super) fn missing<E: de::Error>() -> de::value::UnitDeserializer<E> {
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
pub(super) enum Target {
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
pub(super) fn probe_target<T: DeserializeOwned>() -> Target {
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

// ---------------------------------------------------------------------------
// Nesting limit while deserializing straight from the received text.
//
// serde_json bounds recursion at 128 levels but has no setting for a lower
// limit, and skips ignored values without recursing at all. These wrappers
// count arrays and objects on the way down so that `deserialize` enforces
// `DecodeLimits::max_depth` exactly as `validate` does. They forward
// everything else and inline away.

/// How deep the value being read sits, and the limit.
#[derive(Debug, Clone, Copy)]
struct Depth {
    /// Arrays and objects enclosing the value (the arguments' array is 1).
    level: usize,
    max: usize,
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
    fn exceeded<E: de::Error>(self) -> E {
        E::custom(format_args!("nesting deeper than {}", self.max))
    }
}

/// A seed whose deserializer is wrapped in [`Guard`].
struct Guarded<E> {
    seed: E,
    depth: Depth,
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

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.to_values() {
            Ok(v) => f.debug_tuple("Args").field(&v).finish(),
            Err(e) => f.debug_tuple("Args").field(&e).finish(),
        }
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Args) -> bool {
        match (self.to_values(), other.to_values()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

/// Serializes as a tuple of the arguments, so re-emitting received
/// arguments spreads them again.
///
/// Arguments received as JSON are parsed into [`Value`]s one at a time on
/// the way out, so they serialize correctly into any format.
/// One argument received as JSON without attachments, for serializing.
struct RawJsonArg<'a> {
    text: &'a Str,
    start: usize,
    end: usize,
}

impl Serialize for RawJsonArg<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let tree = AsTree(self);
        super::json::serialize_raw_json(self.text, self.start, self.end, &tree, s)
    }
}

/// A [`RawJsonArg`] for serializers that cannot take JSON text: parsed
/// into a [`Value`] and serialized from it.
struct AsTree<'a, 'b>(&'a RawJsonArg<'b>);

impl Serialize for AsTree<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let arg = self.0;
        json_to_value(&arg.text[arg.start..arg.end], &[])
            .map_err(serde_ser::Error::custom)?
            .serialize(s)
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Json {
                text, attachments, ..
            } => {
                // Validated before the tuple is opened, so invalid arguments
                // fail rather than spread as none.
                let spans = self.spans().map_err(serde_ser::Error::custom)?;
                // The tuple is opened before any parsing: spreading probes
                // the shape by starting to serialize, and stops right here.
                let mut tuple = s.serialize_tuple(spans.len())?;
                for &(start, end) in spans {
                    let (start, end) = (start as usize, end as usize);
                    if attachments.is_empty() {
                        // No placeholders to resolve: our JSON encoder can
                        // copy the text (see `serialize_raw_json`).
                        tuple.serialize_element(&RawJsonArg { text, start, end })?;
                    } else {
                        let value = json_to_value(&text[start..end], attachments)
                            .map_err(serde_ser::Error::custom)?;
                        tuple.serialize_element(&value)?;
                    }
                }
                tuple.end()
            }
            Repr::MsgPack(args) => {
                // Opened before any parsing, as above.
                let mut tuple = s.serialize_tuple(args.len())?;
                for value in args.values() {
                    tuple.serialize_element(&value.map_err(serde_ser::Error::custom)?)?;
                }
                tuple.end()
            }
            Repr::Values(values) => {
                let mut tuple = s.serialize_tuple(values.len())?;
                for value in values {
                    tuple.serialize_element(value)?;
                }
                tuple.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_finds_how_a_type_takes_arguments() {
        #[derive(serde::Deserialize)]
        struct Unit;
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Pair(u8, u8);
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Named {
            a: u8,
        }
        assert_eq!(probe_target::<()>(), Target::Unit);
        assert_eq!(probe_target::<Unit>(), Target::Unit);
        assert_eq!(probe_target::<(u8,)>(), Target::Tuple(1));
        assert_eq!(probe_target::<(u8, String, Value)>(), Target::Tuple(3));
        assert_eq!(probe_target::<[u8; 2]>(), Target::Tuple(2));
        assert_eq!(probe_target::<Option<u8>>(), Target::Option);
        assert_eq!(probe_target::<Option<(u8, u8)>>(), Target::Option);
        assert_eq!(probe_target::<u8>(), Target::Other);
        assert_eq!(probe_target::<String>(), Target::Other);
        assert_eq!(probe_target::<Vec<u8>>(), Target::Other);
        assert_eq!(probe_target::<Value>(), Target::Other);
        assert_eq!(probe_target::<Pair>(), Target::Other);
        assert_eq!(probe_target::<Named>(), Target::Other);
    }

    #[test]
    fn value_args_serialize_as_a_tuple() {
        let args = Args::from_values(vec![Value::from(1u64), Value::from("x")]);
        assert_eq!(serde_json::to_string(&args).unwrap(), r#"[1,"x"]"#);
        assert_eq!(serde_json::to_string(&Args::empty()).unwrap(), "[]");
        assert_eq!(args.len(), 2);
        assert!(!args.is_empty());
        assert!(Args::empty().is_empty());
        assert!(args.attachments().is_empty());
        assert!(args.json_texts().is_none());
        assert_eq!(
            args.to_values().unwrap(),
            vec![Value::from(1u64), Value::from("x")]
        );
        assert_eq!(
            format!("{args:?}"),
            r#"Args([Number(PosInt(1)), String("x")])"#
        );
        assert_eq!(args, args.clone());
        assert_ne!(args, Args::empty());
        // `()` takes nothing, whatever the arguments hold.
        args.deserialize::<()>().unwrap();
        Args::empty().deserialize::<()>().unwrap();
        assert!(args.get::<u8>(2).is_err());
    }

    #[test]
    fn placeholders_resolve_to_shared_attachments() {
        let attachment = Bytes::from_static(b"bin");
        let first = r#"{"k":{"_placeholder":true,"num":0}}"#;
        let second = r#"{"_placeholder":true,"num":1}"#;
        let text = Str::from(format!("[{first},{second}]"));
        let first_span = (1, 1 + first.len() as u32);
        let second_span = (first_span.1 + 1, first_span.1 + 1 + second.len() as u32);
        let json_args = |spans: &[(u32, u32)]| {
            Args(Repr::Json {
                text: text.clone(),
                array_start: Some(0),
                has_name: false,
                attachments: vec![attachment.clone()],
                max_depth: 64,
                checked: OnceLock::from(Ok(SmallVec::from_slice(spans))),
            })
        };
        let args = json_args(&[first_span, second_span]);
        let values = args.to_values();
        // The second placeholder points past the attachments.
        assert!(values.is_err());
        let args = json_args(&[first_span]);
        let values = args.to_values().unwrap();
        let Value::Object(map) = &values[0] else {
            panic!("not an object: {values:?}")
        };
        let Value::Binary(b) = &map[0].1 else {
            panic!("not binary: {map:?}")
        };
        assert_eq!(b.as_ptr(), attachment.as_ptr());
    }

    /// Placeholders resolved while parsing give what parsing and then
    /// replacing gives, key order and duplicates included.
    #[test]
    fn placeholders_resolve_while_parsing() {
        let attachments = [Bytes::from_static(b"zero"), Bytes::from_static(b"one")];
        let reference = |json: &str| -> Result<Value, ArgsError> {
            let mut value: Value = serde_json::from_str(json).map_err(json_err)?;
            replace_placeholders(&mut value, &attachments)?;
            Ok(value)
        };
        for json in [
            r#"{"_placeholder":true,"num":1}"#,
            r#"{"num":0,"_placeholder":true}"#,
            r#"{"num":1.0,"_placeholder":true,"x":[1]}"#,
            r#"[{"a":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]"#,
            r#"{"_placeholder":false,"num":0,"k":"v"}"#,
            r#"{"k":1,"num":5,"z":2}"#,
            r#"{"_placeholder":true,"_placeholder":false,"num":0}"#,
            r#"{"_placeholder":false,"_placeholder":true,"num":7,"num":0}"#,
            r#"{"_placeholder":true,"num":2}"#,
            r#"{"_placeholder":true,"num":-1}"#,
            r#"{"_placeholder":true}"#,
            r#"{"nu\u006d":0,"_placeholder":true}"#,
            r#"[1,"s",null,true,{"a":[]}]"#,
        ] {
            let ours = json_to_value(json, &attachments);
            let expected = reference(json);
            assert_eq!(
                ours.is_ok(),
                expected.is_ok(),
                "{json}: {ours:?} vs {expected:?}"
            );
            if let (Ok(ours), Ok(expected)) = (ours, expected) {
                assert_eq!(ours, expected, "{json}");
            }
        }
    }

    #[test]
    fn value_args_deserialize_through_from_value() {
        let args = Args::from_values(vec![
            Value::from(1u64),
            Value::Binary(Bytes::from_static(b"b")),
        ]);
        assert_eq!(
            args.deserialize::<(u8, Bytes)>().unwrap(),
            (1, Bytes::from_static(b"b"))
        );
        assert_eq!(
            args.deserialize::<(u8, Bytes, Option<u8>)>().unwrap(),
            (1, Bytes::from_static(b"b"), None)
        );
        assert_eq!(args.deserialize::<(u8,)>().unwrap(), (1,));
        assert_eq!(args.deserialize::<u8>().unwrap(), 1);
        assert_eq!(args.deserialize::<Option<u8>>().unwrap(), Some(1));
        assert_eq!(Args::empty().deserialize::<Option<u8>>().unwrap(), None);
        assert_eq!(args.get::<Bytes>(1).unwrap(), Bytes::from_static(b"b"));
    }
}
