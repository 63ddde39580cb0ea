//! Event and acknowledgement arguments, kept in their received form until
//! the application asks for them.

mod depth;
mod placeholders;
#[cfg(test)]
mod tests;
mod typed;

use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned};
use serde::ser::{self as serde_ser, Serialize, SerializeTuple, Serializer};
use smallvec::SmallVec;

use crate::value::{from_value, Value};
use crate::Str;
use placeholders::json_to_value;
use typed::deserialize_json;
pub(in crate::parser) use typed::{missing, probe_target, Target};

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
