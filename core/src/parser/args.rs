//! Event and acknowledgement arguments, kept in their received form until
//! the application asks for them.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, DeserializeSeed, SeqAccess, Visitor};
use serde::ser::{self as serde_ser, Serialize, SerializeTuple, Serializer};
use smallvec::SmallVec;

use crate::value::{from_value, Value};

/// The arguments of an event or an acknowledgement: a first-class argument
/// list.
///
/// From the JSON parser they stay as slices of the received text (plus the
/// binary attachments) until deserialized; from MessagePack and CBOR, and
/// when built by the application, they are [`Value`]s.
///
/// Deserializing into a tuple takes the arguments one per element; into `()`
/// accepts any; into any other type takes the first argument (into an
/// `Option`, `None` when there is none). Fixed-size arrays count as tuples,
/// as serde treats them alike (and so does spreading on the way out).
///
/// JSON arguments without binary deserialize straight from the received
/// text; arguments with binary, and [`Value`] arguments, go through
/// [`Value`] with binary shared, not copied.
#[derive(Clone)]
pub struct Args(pub(crate) Repr);

#[derive(Clone)]
pub(crate) enum Repr {
    /// JSON text: `spans` are byte ranges of each argument inside `text`;
    /// placeholders refer to `attachments`.
    Json {
        text: Bytes,
        spans: SmallVec<[(u32, u32); 4]>,
        attachments: Vec<Bytes>,
    },
    /// Decoded values.
    Values(Vec<Value>),
}

/// The arguments do not fit the requested type.
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

impl Args {
    /// Arguments from values.
    pub fn from_values(values: Vec<Value>) -> Args {
        Args(Repr::Values(values))
    }

    /// No arguments.
    pub fn empty() -> Args {
        Args(Repr::Values(Vec::new()))
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Json { spans, .. } => spans.len(),
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
    /// are ignored, as a JavaScript handler would.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        let target = probe_target::<T>();
        if target == Target::Unit {
            // `()` (or a unit struct) takes nothing from the arguments.
            return serde_json::from_slice(b"null").map_err(|e| ArgsError(e.to_string()));
        }
        if let Repr::Json {
            text,
            spans,
            attachments,
        } = &self.0
        {
            if attachments.is_empty() {
                return deserialize_json(text, spans, target);
            }
        }
        let mut values = self.to_values()?;
        let value = match target {
            Target::Unit => Value::Null, // handled above
            Target::Tuple(len) => {
                values.truncate(len);
                values.resize(len, Value::Null);
                Value::Array(values)
            }
            Target::Option | Target::Other => values.into_iter().next().unwrap_or(Value::Null),
        };
        from_value(value).map_err(|e| ArgsError(e.0))
    }

    /// Deserialize the argument at `index` alone.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgsError> {
        let missing = || ArgsError(format!("no argument at index {index}"));
        match &self.0 {
            Repr::Json {
                text,
                spans,
                attachments,
            } => {
                let &(start, end) = spans.get(index).ok_or_else(missing)?;
                let json = &text[start as usize..end as usize];
                if attachments.is_empty() {
                    serde_json::from_slice(json).map_err(|e| ArgsError(e.to_string()))
                } else {
                    let value = json_to_value(json, attachments)?;
                    from_value(value).map_err(|e| ArgsError(e.0))
                }
            }
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
                text,
                spans,
                attachments,
            } => spans
                .iter()
                .map(|&(start, end)| {
                    json_to_value(&text[start as usize..end as usize], attachments)
                })
                .collect(),
            Repr::Values(values) => Ok(values.clone()),
        }
    }

    /// The raw JSON text of each argument, when the arguments were received
    /// as JSON (placeholders left as they are).
    pub fn json_texts(&self) -> Option<impl Iterator<Item = &str> + '_> {
        match &self.0 {
            Repr::Json { text, spans, .. } => Some(spans.iter().map(move |&(start, end)| {
                // Spans are built on character boundaries of received UTF-8.
                std::str::from_utf8(&text[start as usize..end as usize]).unwrap_or("")
            })),
            Repr::Values(_) => None,
        }
    }

    /// The binary attachments received with the arguments (JSON parser
    /// only; other formats carry binary inline as [`Value::Binary`]).
    pub fn attachments(&self) -> &[Bytes] {
        match &self.0 {
            Repr::Json { attachments, .. } => attachments,
            Repr::Values(_) => &[],
        }
    }
}

/// Parse one argument's JSON, replacing placeholders by their attachments.
fn json_to_value(json: &[u8], attachments: &[Bytes]) -> Result<Value, ArgsError> {
    let mut value: Value = serde_json::from_slice(json).map_err(|e| ArgsError(e.to_string()))?;
    if !attachments.is_empty() {
        replace_placeholders(&mut value, attachments)?;
    }
    Ok(value)
}

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

fn deserialize_json<T: DeserializeOwned>(
    text: &[u8],
    spans: &[(u32, u32)],
    target: Target,
) -> Result<T, ArgsError> {
    let json_err = |e: serde_json::Error| ArgsError(e.to_string());
    match target {
        Target::Unit => serde_json::from_slice(b"null").map_err(json_err),
        Target::Tuple(len) => T::deserialize(JsonTuple { text, spans, len }),
        Target::Option | Target::Other => {
            let json = match spans.first() {
                Some(&(start, end)) => &text[start as usize..end as usize],
                None => b"null",
            };
            serde_json::from_slice(json).map_err(json_err)
        }
    }
}

/// What a type asks of a deserializer first: how the arguments map onto it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
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
fn probe_target<T: DeserializeOwned>() -> Target {
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

/// The arguments as a tuple, each element parsed from its own span.
struct JsonTuple<'a> {
    text: &'a [u8],
    spans: &'a [(u32, u32)],
    len: usize,
}

impl<'de> de::Deserializer<'de> for JsonTuple<'de> {
    type Error = ArgsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ArgsError> {
        visitor.visit_seq(JsonArgsSeq {
            text: self.text,
            spans: self.spans,
            index: 0,
            len: self.len,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct JsonArgsSeq<'a> {
    text: &'a [u8],
    spans: &'a [(u32, u32)],
    index: usize,
    len: usize,
}

impl<'a> SeqAccess<'a> for JsonArgsSeq<'a> {
    type Error = ArgsError;

    fn next_element_seed<S: DeserializeSeed<'a>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, ArgsError> {
        if self.index >= self.len {
            return Ok(None);
        }
        let index = self.index;
        self.index += 1;
        // A missing trailing argument reads as `null`, like JavaScript's
        // `undefined` for a parameter nobody passed.
        let json: &'a [u8] = match self.spans.get(index) {
            Some(&(start, end)) => &self.text[start as usize..end as usize],
            None => b"null",
        };
        let with_index = |e: serde_json::Error| ArgsError(format!("argument {index}: {e}"));
        let mut de = serde_json::Deserializer::from_slice(json);
        let value = seed.deserialize(&mut de).map_err(with_index)?;
        de.end().map_err(with_index)?;
        Ok(Some(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len - self.index)
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
impl Serialize for Args {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The tuple is opened before any parsing: spreading probes the shape
        // by starting to serialize, and stops right here.
        let mut tuple = s.serialize_tuple(self.len())?;
        match &self.0 {
            Repr::Json {
                text,
                spans,
                attachments,
            } => {
                for &(start, end) in spans {
                    let value = json_to_value(&text[start as usize..end as usize], attachments)
                        .map_err(serde_ser::Error::custom)?;
                    tuple.serialize_element(&value)?;
                }
            }
            Repr::Values(values) => {
                for value in values {
                    tuple.serialize_element(value)?;
                }
            }
        }
        tuple.end()
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
        let text = Bytes::from(format!("[{first},{second}]"));
        let first_span = (1, 1 + first.len() as u32);
        let second_span = (first_span.1 + 1, first_span.1 + 1 + second.len() as u32);
        let args = Args(Repr::Json {
            text: text.clone(),
            spans: SmallVec::from_slice(&[first_span, second_span]),
            attachments: vec![attachment.clone()],
        });
        let values = args.to_values();
        // The second placeholder points past the attachments.
        assert!(values.is_err());
        let args = Args(Repr::Json {
            text,
            spans: SmallVec::from_slice(&[first_span]),
            attachments: vec![attachment.clone()],
        });
        let values = args.to_values().unwrap();
        let Value::Object(map) = &values[0] else {
            panic!("not an object: {values:?}")
        };
        let Value::Binary(b) = &map[0].1 else {
            panic!("not binary: {map:?}")
        };
        assert_eq!(b.as_ptr(), attachment.as_ptr());
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
