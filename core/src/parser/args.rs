//! Event and acknowledgement arguments, kept in their received form until
//! the application asks for them.

use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::ser::{Serialize, Serializer};
use smallvec::SmallVec;

use crate::value::Value;

/// The arguments of an event or an acknowledgement: a first-class argument
/// list.
///
/// From the JSON parser they stay as slices of the received text (plus the
/// binary attachments) until deserialized; from MessagePack and CBOR, and
/// when built by the application, they are [`Value`]s.
///
/// Deserializing into a tuple takes the arguments one per element; into `()`
/// accepts any; into any other type takes the first argument (into an
/// `Option`, `None` when there is none).
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
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        todo!("Args::deserialize")
    }

    /// The arguments as dynamic values, binary as [`Value::Binary`].
    pub fn to_values(&self) -> Result<Vec<Value>, ArgsError> {
        todo!("Args::to_values")
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
impl Serialize for Args {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let _ = s;
        todo!("Args::serialize")
    }
}
