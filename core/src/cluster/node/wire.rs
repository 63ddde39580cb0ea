//! The two encodings the Node adapters put on the bus, and typed access to
//! a decoded message.
//!
//! - MessagePack as `notepack.io` 3 writes it: the smallest integer form
//!   (`uint` markers for non-negative values, `int` markers only for
//!   negative ones), every non-integral number as float 64, `str 8` from 32
//!   bytes, binary as `bin`, map keys in insertion order. Reading goes
//!   through the packet parser's bounded MessagePack reader (JavaScript
//!   `undefined` reads as null).
//! - JSON as `JSON.stringify` writes it: compact, keys in insertion order,
//!   numbers as JavaScript prints them, non-finite numbers as `null`.
//!
//! A message is JSON when its first byte is `{`, MessagePack otherwise:
//! the references decide the same way.

use bytes::Bytes;

use super::super::{BusDecodeError, BusLimits};
use crate::value::{Map, Number, Value};

/// A message tree to encode: fixed keys and borrowed values, so encoding
/// never copies the application's data.
#[derive(Debug)]
pub(super) enum Out<'a> {
    Bool(bool),
    UInt(u64),
    Str(&'a str),
    Value(&'a Value),
    Array(Vec<Out<'a>>),
    Map(Vec<(&'static str, Out<'a>)>),
}

impl<'a> Out<'a> {
    /// A list of strings.
    pub(super) fn strs(items: &'a [String]) -> Out<'a> {
        Out::Array(items.iter().map(|s| Out::Str(s)).collect())
    }

    /// Whether binary appears anywhere below.
    pub(super) fn has_binary(&self) -> bool {
        match self {
            Out::Value(v) => v.has_binary(),
            Out::Array(items) => items.iter().any(Out::has_binary),
            Out::Map(entries) => entries.iter().any(|(_, v)| v.has_binary()),
            _ => false,
        }
    }
}

/// Which encoding a message is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Json,
    MsgPack,
}

/// Encode `out` as MessagePack or JSON.
pub(super) fn encode(out: &Out<'_>, encoding: Encoding) -> Bytes {
    match encoding {
        Encoding::MsgPack => {
            let mut buf = Vec::with_capacity(64);
            write_msgpack_out(&mut buf, out);
            Bytes::from(buf)
        }
        Encoding::Json => {
            let mut buf = String::with_capacity(64);
            write_json_out(&mut buf, out);
            Bytes::from(buf)
        }
    }
}

/// JSON, unless the message holds binary: then MessagePack, which the
/// Node receivers read as well (by the first byte) and which keeps binary
/// as binary, where `JSON.stringify` would turn a `Buffer` into
/// `{"type":"Buffer","data":[..]}`.
pub(super) fn encode_json_unless_binary(out: &Out<'_>) -> Bytes {
    let encoding = if out.has_binary() {
        Encoding::MsgPack
    } else {
        Encoding::Json
    };
    encode(out, encoding)
}

// ---------------------------------------------------------------------------
// MessagePack writer

fn write_marked(buf: &mut Vec<u8>, marker: u8, bytes: &[u8]) {
    buf.push(marker);
    buf.extend_from_slice(bytes);
}

fn write_uint(buf: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        buf.push(v as u8);
    } else if let Ok(v) = u8::try_from(v) {
        write_marked(buf, 0xcc, &[v]);
    } else if let Ok(v) = u16::try_from(v) {
        write_marked(buf, 0xcd, &v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(v) {
        write_marked(buf, 0xce, &v.to_be_bytes());
    } else {
        write_marked(buf, 0xcf, &v.to_be_bytes());
    }
}

fn write_neg_int(buf: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        // `Number::NegInt` holds negative values; be safe anyway.
        write_uint(buf, v.unsigned_abs());
    } else if v >= -32 {
        buf.push(v as u8);
    } else if let Ok(v) = i8::try_from(v) {
        write_marked(buf, 0xd0, &v.to_be_bytes());
    } else if let Ok(v) = i16::try_from(v) {
        write_marked(buf, 0xd1, &v.to_be_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        write_marked(buf, 0xd2, &v.to_be_bytes());
    } else {
        write_marked(buf, 0xd3, &v.to_be_bytes());
    }
}

/// A length header: `fix` (with its 4- or 5-bit limit) or the 8/16/32-bit
/// forms whose markers are given (`None` when there is no 8-bit form).
/// Lengths over 32 bits cannot occur: nothing this crate accepts is 4 GiB.
fn write_len(buf: &mut Vec<u8>, len: usize, fix: Option<(u8, usize)>, m8: Option<u8>, m16: u8) {
    if let Some((base, limit)) = fix {
        if len < limit {
            buf.push(base | len as u8);
            return;
        }
    }
    match (m8, u8::try_from(len), u16::try_from(len)) {
        (Some(m8), Ok(n), _) => write_marked(buf, m8, &[n]),
        (_, _, Ok(n)) => write_marked(buf, m16, &n.to_be_bytes()),
        _ => {
            let n = u32::try_from(len).unwrap_or(u32::MAX);
            write_marked(buf, m16 + 1, &n.to_be_bytes());
        }
    }
}

fn write_str(buf: &mut Vec<u8>, s: &str) {
    write_len(buf, s.len(), Some((0xa0, 32)), Some(0xd9), 0xda);
    buf.extend_from_slice(s.as_bytes());
}

fn write_array_header(buf: &mut Vec<u8>, len: usize) {
    write_len(buf, len, Some((0x90, 16)), None, 0xdc);
}

fn write_map_header(buf: &mut Vec<u8>, len: usize) {
    write_len(buf, len, Some((0x80, 16)), None, 0xde);
}

pub(super) fn write_msgpack_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => buf.push(0xc0),
        Value::Bool(b) => buf.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(Number::PosInt(n)) => write_uint(buf, *n),
        Value::Number(Number::NegInt(n)) => write_neg_int(buf, *n),
        Value::Number(Number::Float(f)) => write_marked(buf, 0xcb, &f.to_be_bytes()),
        Value::String(s) => write_str(buf, s),
        Value::Binary(b) => {
            write_len(buf, b.len(), None, Some(0xc4), 0xc5);
            buf.extend_from_slice(b);
        }
        Value::Array(items) => {
            write_array_header(buf, items.len());
            for item in items {
                write_msgpack_value(buf, item);
            }
        }
        Value::Object(map) => {
            write_map_header(buf, map.len());
            for (k, v) in map {
                write_str(buf, k);
                write_msgpack_value(buf, v);
            }
        }
    }
}

fn write_msgpack_out(buf: &mut Vec<u8>, out: &Out<'_>) {
    match out {
        Out::Bool(b) => buf.push(if *b { 0xc3 } else { 0xc2 }),
        Out::UInt(n) => write_uint(buf, *n),
        Out::Str(s) => write_str(buf, s),
        Out::Value(v) => write_msgpack_value(buf, v),
        Out::Array(items) => {
            write_array_header(buf, items.len());
            for item in items {
                write_msgpack_out(buf, item);
            }
        }
        Out::Map(entries) => {
            write_map_header(buf, entries.len());
            for (k, v) in entries {
                write_str(buf, k);
                write_msgpack_out(buf, v);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// JSON writer

fn write_json_str(buf: &mut String, s: &str) {
    // serde_json escapes exactly what JSON.stringify escapes for valid
    // UTF-8 (quote, backslash, control characters with the short forms).
    buf.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
}

pub(super) fn write_json_value(buf: &mut String, value: &Value) {
    match value {
        Value::Null => buf.push_str("null"),
        Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
        Value::Number(Number::PosInt(n)) => buf.push_str(itoa::Buffer::new().format(*n)),
        Value::Number(Number::NegInt(n)) => buf.push_str(itoa::Buffer::new().format(*n)),
        Value::Number(Number::Float(f)) if f.is_finite() => {
            buf.push_str(&crate::parser::js_number_text(*f))
        }
        Value::Number(Number::Float(_)) => buf.push_str("null"),
        Value::String(s) => write_json_str(buf, s),
        Value::Binary(b) => {
            // What JSON.stringify makes of a Node `Buffer`.
            buf.push_str("{\"type\":\"Buffer\",\"data\":[");
            for (i, byte) in b.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                buf.push_str(itoa::Buffer::new().format(*byte));
            }
            buf.push_str("]}");
        }
        Value::Array(items) => {
            buf.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                write_json_value(buf, item);
            }
            buf.push(']');
        }
        Value::Object(map) => {
            buf.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                write_json_str(buf, k);
                buf.push(':');
                write_json_value(buf, v);
            }
            buf.push('}');
        }
    }
}

fn write_json_out(buf: &mut String, out: &Out<'_>) {
    match out {
        Out::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
        Out::UInt(n) => buf.push_str(itoa::Buffer::new().format(*n)),
        Out::Str(s) => write_json_str(buf, s),
        Out::Value(v) => write_json_value(buf, v),
        Out::Array(items) => {
            buf.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                write_json_out(buf, item);
            }
            buf.push(']');
        }
        Out::Map(entries) => {
            buf.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                write_json_str(buf, k);
                buf.push(':');
                write_json_out(buf, v);
            }
            buf.push('}');
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding

pub(super) fn error(what: impl Into<String>) -> BusDecodeError {
    BusDecodeError(what.into())
}

/// Decode a whole message, JSON when it starts with `{` and MessagePack
/// otherwise, within `limits` (size, nesting; trailing bytes refused).
pub(super) fn decode(data: &[u8], limits: &BusLimits) -> Result<(Value, Encoding), BusDecodeError> {
    if data.len() > limits.max_message_bytes {
        return Err(error(format!(
            "message of {} bytes over the limit of {}",
            data.len(),
            limits.max_message_bytes
        )));
    }
    match data.first() {
        None => Err(error("empty message")),
        Some(b'{') => {
            let text = std::str::from_utf8(data).map_err(|_| error("JSON is not UTF-8"))?;
            crate::parser::check_json_depth(text, limits.max_depth)
                .map_err(|e| error(e.to_string()))?;
            // serde_json's own recursion limit also holds, whatever
            // `max_depth` says; it refuses trailing characters too.
            let value = serde_json::from_str(text).map_err(|e| error(e.to_string()))?;
            Ok((value, Encoding::Json))
        }
        Some(_) => {
            let bytes = Bytes::copy_from_slice(data);
            let value = crate::parser::decode_msgpack_value(&bytes, limits.max_depth)
                .map_err(|e| error(e.to_string()))?;
            Ok((value, Encoding::MsgPack))
        }
    }
}

/// Decode a whole MessagePack message within `limits`, whatever its first
/// byte.
pub(super) fn decode_msgpack(data: &[u8], limits: &BusLimits) -> Result<Value, BusDecodeError> {
    if data.len() > limits.max_message_bytes {
        return Err(error(format!(
            "message of {} bytes over the limit of {}",
            data.len(),
            limits.max_message_bytes
        )));
    }
    if data.is_empty() {
        return Err(error("empty message"));
    }
    let bytes = Bytes::copy_from_slice(data);
    crate::parser::decode_msgpack_value(&bytes, limits.max_depth).map_err(|e| error(e.to_string()))
}

/// The fields of a decoded map, taken out one by one. A repeated key
/// counts with its last value, as in a JavaScript object; a null value
/// (`null`, nil, `undefined`) counts as absent.
pub(super) struct Fields {
    map: Map,
    what: &'static str,
}

impl Fields {
    pub(super) fn new(value: Value, what: &'static str) -> Result<Fields, BusDecodeError> {
        match value {
            Value::Object(map) => Ok(Fields { map, what }),
            _ => Err(error(format!("{what} is not a map"))),
        }
    }

    /// The value of `key`, if present and not null.
    pub(super) fn take(&mut self, key: &str) -> Option<Value> {
        let index = self.map.iter().rposition(|(k, _)| k == key)?;
        match std::mem::take(&mut self.map[index].1) {
            Value::Null => None,
            v => Some(v),
        }
    }

    /// Whether `key` is present with a value that is not null.
    pub(super) fn has(&self, key: &str) -> bool {
        self.map
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .is_some_and(|(_, v)| !matches!(v, Value::Null))
    }

    fn missing(&self, key: &str) -> BusDecodeError {
        error(format!("{}: `{key}` missing", self.what))
    }

    fn wrong(&self, key: &str, expected: &str) -> BusDecodeError {
        error(format!("{}: `{key}` is not {expected}", self.what))
    }

    pub(super) fn value(&mut self, key: &str) -> Value {
        self.take(key).unwrap_or_default()
    }

    pub(super) fn opt_string(&mut self, key: &str) -> Result<Option<String>, BusDecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    pub(super) fn string(&mut self, key: &str) -> Result<String, BusDecodeError> {
        self.opt_string(key)?.ok_or_else(|| self.missing(key))
    }

    pub(super) fn opt_u64(&mut self, key: &str) -> Result<Option<u64>, BusDecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => as_u64(&v)
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a count")),
        }
    }

    pub(super) fn u64(&mut self, key: &str) -> Result<u64, BusDecodeError> {
        self.opt_u64(key)?.ok_or_else(|| self.missing(key))
    }

    /// A boolean; JavaScript reads a missing one as `false`.
    pub(super) fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, BusDecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.wrong(key, "a boolean")),
        }
    }

    /// A list of room names (absent: empty, as `new Set(undefined)`).
    pub(super) fn rooms(&mut self, key: &str) -> Result<Vec<String>, BusDecodeError> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| room_name(item).ok_or_else(|| self.wrong(key, "a list of rooms")))
                .collect(),
            Some(_) => Err(self.wrong(key, "a list of rooms")),
        }
    }

    /// A required map, as its fields.
    pub(super) fn map(&mut self, key: &str, what: &'static str) -> Result<Fields, BusDecodeError> {
        let value = self.take(key).ok_or_else(|| self.missing(key))?;
        Fields::new(value, what)
    }

    /// An optional map, as its fields (empty when absent).
    pub(super) fn opt_map(
        &mut self,
        key: &str,
        what: &'static str,
    ) -> Result<Fields, BusDecodeError> {
        match self.take(key) {
            None => Ok(Fields {
                map: Map::new(),
                what,
            }),
            Some(v) => Fields::new(v, what),
        }
    }

    /// A required array.
    pub(super) fn array(&mut self, key: &str) -> Result<Vec<Value>, BusDecodeError> {
        match self.take(key) {
            None => Err(self.missing(key)),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(self.wrong(key, "an array")),
        }
    }
}

/// A non-negative integer (an integral float too: JavaScript has only
/// numbers).
pub(super) fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(Number::PosInt(n)) => Some(*n),
        Value::Number(Number::Float(f)) => match crate::value::integral(*f) {
            Some(Number::PosInt(n)) => Some(n),
            _ => None,
        },
        _ => None,
    }
}

/// A room name: a string, or a number as JavaScript prints it (JavaScript
/// rooms may be numbers; ours are strings).
fn room_name(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(Number::PosInt(n)) => Some(itoa::Buffer::new().format(n).to_owned()),
        Value::Number(Number::NegInt(n)) => Some(itoa::Buffer::new().format(n).to_owned()),
        Value::Number(Number::Float(f)) if f.is_finite() => Some(crate::parser::js_number_text(f)),
        _ => None,
    }
}
