//! python-socketio 5's pub/sub messages (`PubSubManager`), byte-exact.
//!
//! Every python backend (Redis, AMQP, Kafka, ZeroMQ) carries the same JSON text: a
//! `json.dumps` of a dict built in `pubsub_manager.py`. [`encode`] writes
//! exactly the bytes python writes for the same message (separators `", "`
//! and `": "`, ASCII only with `\uXXXX` escapes, python's float `repr`, keys
//! in python's order), so python nodes and ours can share one channel.
//! [`decode`] reads what python (or any other publisher) sends, lenient
//! where python is (absent optional keys, `namespace` null) and strict where
//! a wrong type would make python misbehave.
//!
//! ZeroMQ wraps these messages in an envelope of its own
//! (`{"type": "message", "channel", "data"}`): [`zmq`].
//!
//! Two deviations from python, both where python's output is not JSON:
//! - a non-finite float (NaN, ±infinity) is written `null`; python writes
//!   `NaN`/`Infinity`, which no standard JSON parser (this one included)
//!   reads, so [`decode`] refuses such messages;
//! - binary in a callback's arguments is an [`PyEncodeError`]: python cannot
//!   publish bytes there either (its `json.dumps` raises).

use std::fmt::{self, Write as _};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;

use super::{BusDecodeError, BusLimits};
use crate::value::{Number, Value};

#[cfg(test)]
mod tests;
pub mod zmq;

/// Deepest nesting [`encode`] writes. Guards the recursion of the writer
/// against an application value nested absurdly deep; far above what any
/// receiver accepts (python's own `json` gives up near 1000).
pub const MAX_ENCODE_DEPTH: usize = 256;

/// One pub/sub message, by its `method`.
#[derive(Debug, Clone, PartialEq)]
pub enum PyMessage {
    /// `emit`: deliver an event to the clients of a namespace or rooms.
    Emit(PyEmit),
    /// `callback`: a client's answer to an emit that asked for one, sent
    /// to the node that asked.
    Callback(PyCallback),
    /// `disconnect`: disconnect a socket wherever it is connected.
    Disconnect {
        /// Socket id.
        sid: String,
        /// Namespace (`/` when absent).
        namespace: String,
        /// The publishing node, `None` when the message had none.
        host_id: Option<String>,
    },
    /// `enter_room`: put a socket connected to another node in a room.
    EnterRoom {
        /// Socket id.
        sid: String,
        /// Room name.
        room: String,
        /// Namespace (`/` when absent).
        namespace: String,
        /// The publishing node.
        host_id: Option<String>,
    },
    /// `leave_room`: take a socket connected to another node out of a room.
    LeaveRoom {
        /// Socket id.
        sid: String,
        /// Room name.
        room: String,
        /// Namespace (`/` when absent).
        namespace: String,
        /// The publishing node.
        host_id: Option<String>,
    },
    /// `close_room`: take every socket out of a room.
    CloseRoom {
        /// Room name.
        room: String,
        /// Namespace (`/` when absent).
        namespace: String,
        /// The publishing node.
        host_id: Option<String>,
    },
}

/// Rooms as python writes them: `null`, one name, or a list of names.
///
/// The three forms are kept apart so a message encodes back to the same
/// bytes. For `room`, [`Rooms::Unset`] means the whole namespace; for
/// `skip_sid`, nobody skipped. An empty list targets nobody (python's
/// emit raises on it). Names must be strings: a python application may use
/// other room keys (integers), which [`decode`] refuses rather than confuse
/// `42` with `"42"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Rooms {
    /// `null` or absent.
    #[default]
    Unset,
    /// A single name (`"room"`).
    One(String),
    /// A list of names (`["a", "b"]`).
    Many(Vec<String>),
}

impl Rooms {
    /// The names held, whatever the form (none for [`Rooms::Unset`]).
    pub fn names(&self) -> &[String] {
        match self {
            Rooms::Unset => &[],
            Rooms::One(name) => std::slice::from_ref(name),
            Rooms::Many(names) => names,
        }
    }
}

/// An `emit` message.
#[derive(Debug, Clone, PartialEq)]
pub struct PyEmit {
    /// Event name.
    pub event: String,
    /// The arguments as published, with binary as [`Value::Binary`]
    /// anywhere in the tree (python's `binary`/base64 attachments are
    /// handled by the codec). See [`PyEmit::delivered_args`].
    pub data: Vec<Value>,
    /// Namespace (`/` when absent or null).
    pub namespace: String,
    /// Target rooms; [`Rooms::Unset`] is the whole namespace.
    pub room: Rooms,
    /// Socket ids not to deliver to.
    pub skip_sid: Rooms,
    /// Set when the sender wants the client's answer back.
    pub callback: Option<PyCallbackRequest>,
    /// The publishing node (python always sets it; other publishers may
    /// not).
    pub host_id: Option<String>,
}

impl PyEmit {
    /// The arguments a python node delivers for this message: [`data`]
    /// except that a single `null` means no argument at all (python's
    /// `emit(event, None)` publishes `[null]` and sends the event without
    /// arguments).
    ///
    /// [`data`]: PyEmit::data
    pub fn delivered_args(&self) -> &[Value] {
        match self.data.as_slice() {
            [Value::Null] => &[],
            args => args,
        }
    }
}

/// The `callback` of an emit: `[sid, namespace, id]` on the wire.
///
/// A callback of any other length is ignored, as python ignores it; one
/// whose first item is not a string (python's unsupported callback to a
/// list of rooms, which fails when answered) makes the emit invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyCallbackRequest {
    /// The socket asked (python puts the emit's `room` here, which is a
    /// socket id whenever a callback is used).
    pub sid: String,
    /// The namespace the sender's ack waits in.
    pub namespace: String,
    /// The sender's ack id, echoed in the [`PyCallback`].
    pub id: u64,
}

/// A `callback` message: a client's answer, addressed to the node that
/// asked.
#[derive(Debug, Clone, PartialEq)]
pub struct PyCallback {
    /// The node that asked (from the emit's `host_id`).
    pub host_id: String,
    /// The socket that answered.
    pub sid: String,
    /// Its namespace (`/` when absent).
    pub namespace: String,
    /// The ack id from [`PyCallbackRequest::id`].
    pub id: u64,
    /// The client's answer.
    pub args: Vec<Value>,
}

/// Why a message from the bus was not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PyDecodeError {
    /// A well-formed message with a `method` this codec does not know.
    /// python skips these silently: log at debug level.
    UnknownMethod(String),
    /// Anything else wrong with the message.
    Invalid(BusDecodeError),
}

impl fmt::Display for PyDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PyDecodeError::UnknownMethod(m) => write!(f, "unknown pub/sub method {m:?}"),
            PyDecodeError::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PyDecodeError {}

impl From<PyDecodeError> for BusDecodeError {
    fn from(e: PyDecodeError) -> Self {
        match e {
            PyDecodeError::Invalid(e) => e,
            e @ PyDecodeError::UnknownMethod(_) => BusDecodeError(e.to_string()),
        }
    }
}

fn invalid(reason: impl Into<String>) -> PyDecodeError {
    PyDecodeError::Invalid(BusDecodeError(reason.into()))
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PyEncodeError {
    /// Binary in a callback's arguments: python's format has no way to
    /// carry it there.
    BinaryInCallback,
    /// A value nested deeper than [`MAX_ENCODE_DEPTH`].
    TooDeep,
}

impl fmt::Display for PyEncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PyEncodeError::BinaryInCallback => {
                f.write_str("binary data in a pub/sub callback cannot be encoded")
            }
            PyEncodeError::TooDeep => write!(f, "value nested deeper than {MAX_ENCODE_DEPTH}"),
        }
    }
}

impl std::error::Error for PyEncodeError {}

/// A node id as python makes it (`uuid.uuid4().hex`): 32 lowercase hex
/// digits with the version 4 and RFC 4122 variant bits set.
pub fn new_host_id(rng: &mut dyn rand_core::RngCore) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut id = String::with_capacity(32);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(id, "{b:02x}");
    }
    id
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// The bytes python's `json.dumps` writes for `message`.
pub fn encode(message: &PyMessage) -> Result<Bytes, PyEncodeError> {
    let mut w = Writer::default();
    match message {
        PyMessage::Emit(emit) => w.emit(emit)?,
        PyMessage::Callback(cb) => {
            w.raw("{\"method\": \"callback\", \"host_id\": ");
            w.string(&cb.host_id);
            w.key("sid");
            w.string(&cb.sid);
            w.key("namespace");
            w.string(&cb.namespace);
            w.key("id");
            w.u64(cb.id);
            w.key("args");
            w.array(&cb.args, 1, false)?;
            w.raw("}");
        }
        PyMessage::Disconnect {
            sid,
            namespace,
            host_id,
        } => {
            w.raw("{\"method\": \"disconnect\", \"sid\": ");
            w.string(sid);
            w.key("namespace");
            w.string(namespace);
            w.host_id(host_id.as_deref());
        }
        PyMessage::EnterRoom {
            sid,
            room,
            namespace,
            host_id,
        } => w.room_change("enter_room", sid, room, namespace, host_id.as_deref()),
        PyMessage::LeaveRoom {
            sid,
            room,
            namespace,
            host_id,
        } => w.room_change("leave_room", sid, room, namespace, host_id.as_deref()),
        PyMessage::CloseRoom {
            room,
            namespace,
            host_id,
        } => {
            w.raw("{\"method\": \"close_room\", \"room\": ");
            w.string(room);
            w.key("namespace");
            w.string(namespace);
            w.host_id(host_id.as_deref());
        }
    }
    Ok(Bytes::from(w.out))
}

/// Writes JSON as python's `json.dumps` does with its defaults.
#[derive(Default)]
struct Writer<'a> {
    out: String,
    /// Binary found while writing an emit's data, in document order.
    attachments: Vec<&'a Bytes>,
}

impl<'a> Writer<'a> {
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// `, "name": ` between two members of an object.
    fn key(&mut self, name: &str) {
        self.out.push_str(", ");
        self.string(name);
        self.out.push_str(": ");
    }

    /// The last member of every message but emit and callback.
    fn host_id(&mut self, host_id: Option<&str>) {
        self.key("host_id");
        self.opt_string(host_id);
        self.out.push('}');
    }

    fn room_change(&mut self, method: &str, sid: &str, room: &str, ns: &str, host: Option<&str>) {
        self.raw("{\"method\": ");
        self.string(method);
        self.key("sid");
        self.string(sid);
        self.key("room");
        self.string(room);
        self.key("namespace");
        self.string(ns);
        self.host_id(host);
    }

    fn emit(&mut self, emit: &'a PyEmit) -> Result<(), PyEncodeError> {
        self.raw("{\"method\": \"emit\", \"event\": ");
        self.string(&emit.event);
        self.key("data");
        let binary = emit.data.iter().any(Value::has_binary);
        if binary {
            // python: `[deconstructed_args, base64(att0), base64(att1), ...]`.
            self.out.push('[');
            self.array(&emit.data, 2, true)?;
            for attachment in std::mem::take(&mut self.attachments) {
                self.out.push_str(", \"");
                BASE64.encode_string(attachment, &mut self.out);
                self.out.push('"');
            }
            self.out.push(']');
        } else {
            self.array(&emit.data, 1, false)?;
        }
        self.key("binary");
        self.raw(if binary { "true" } else { "false" });
        self.key("namespace");
        self.string(&emit.namespace);
        self.key("room");
        self.rooms(&emit.room);
        self.key("skip_sid");
        self.rooms(&emit.skip_sid);
        self.key("callback");
        match &emit.callback {
            None => self.raw("null"),
            Some(cb) => {
                self.out.push('[');
                self.string(&cb.sid);
                self.out.push_str(", ");
                self.string(&cb.namespace);
                self.out.push_str(", ");
                self.u64(cb.id);
                self.out.push(']');
            }
        }
        self.host_id(emit.host_id.as_deref());
        Ok(())
    }

    fn rooms(&mut self, rooms: &Rooms) {
        match rooms {
            Rooms::Unset => self.raw("null"),
            Rooms::One(name) => self.string(name),
            Rooms::Many(names) => {
                self.out.push('[');
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.string(name);
                }
                self.out.push(']');
            }
        }
    }

    fn opt_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.raw("null"),
        }
    }

    fn u64(&mut self, n: u64) {
        self.out.push_str(itoa::Buffer::new().format(n));
    }

    /// `items` as a JSON array at nesting `depth`; binary becomes a
    /// placeholder when `placeholders`, an error otherwise.
    fn array(
        &mut self,
        items: &'a [Value],
        depth: usize,
        placeholders: bool,
    ) -> Result<(), PyEncodeError> {
        if depth > MAX_ENCODE_DEPTH {
            return Err(PyEncodeError::TooDeep);
        }
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.value(item, depth + 1, placeholders)?;
        }
        self.out.push(']');
        Ok(())
    }

    fn value(
        &mut self,
        value: &'a Value,
        depth: usize,
        placeholders: bool,
    ) -> Result<(), PyEncodeError> {
        match value {
            Value::Null => self.raw("null"),
            Value::Bool(b) => self.raw(if *b { "true" } else { "false" }),
            Value::Number(Number::PosInt(n)) => self.u64(*n),
            Value::Number(Number::NegInt(n)) => self.out.push_str(itoa::Buffer::new().format(*n)),
            Value::Number(Number::Float(f)) => write_python_float(&mut self.out, *f),
            Value::String(s) => self.string(s),
            Value::Binary(bytes) => {
                if !placeholders {
                    return Err(PyEncodeError::BinaryInCallback);
                }
                // python's deconstruct_binary: `{"_placeholder": true, "num": N}`.
                self.out.push_str("{\"_placeholder\": true, \"num\": ");
                self.u64(self.attachments.len() as u64);
                self.out.push('}');
                self.attachments.push(bytes);
            }
            Value::Array(items) => self.array(items, depth, placeholders)?,
            Value::Object(map) => {
                if depth > MAX_ENCODE_DEPTH {
                    return Err(PyEncodeError::TooDeep);
                }
                self.out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.string(k);
                    self.out.push_str(": ");
                    self.value(v, depth + 1, placeholders)?;
                }
                self.out.push('}');
            }
        }
        Ok(())
    }

    /// A string as `json.dumps(..., ensure_ascii=True)` writes it: printable
    /// ASCII as is, the usual short escapes, everything else `\uXXXX` in
    /// lowercase hex (UTF-16 surrogate pairs above U+FFFF).
    fn string(&mut self, s: &str) {
        write_string(&mut self.out, s);
    }
}

/// `s` as python's `json.dumps` writes a string (ASCII only).
pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A float as python's `repr` writes it: the shortest digits that read
/// back the same, fixed notation for decimal exponents from -4 to 15
/// (always with a fraction: `1.0`), scientific otherwise (`1e+16`,
/// `1.5e-05`). Non-finite values are written `null` (see the module docs).
fn write_python_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    let f = f.abs();
    if f == 0.0 {
        out.push_str("0.0");
        return;
    }
    // python's repr: the fewest digits that read back the same, and of
    // those the closest to the exact value, a tie going to the even digit.
    // Rust's shortest `{:e}` gives the count but breaks ties upwards;
    // its fixed-precision `{:.N$e}` rounds half to even, so ask it for
    // that many digits.
    let shortest = format!("{f:e}");
    let count = shortest
        .split('e')
        .next()
        .map_or(1, |m| m.bytes().filter(u8::is_ascii_digit).count());
    let sci = format!("{f:.*e}", count.saturating_sub(1));
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    // Position of the decimal point relative to the digits: value is
    // 0.DIGITS * 10^point.
    let point = exponent + 1;
    if !(-3..=16).contains(&point) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
    } else if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let point = point as usize;
        if point >= digits.len() {
            out.push_str(&digits);
            out.push_str(&"0".repeat(point - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Read one pub/sub message.
///
/// The effective depth limit is the smaller of `limits.max_depth` and
/// serde_json's own recursion limit (128), which keeps deep input off the
/// stack. The message object itself is depth 1.
pub fn decode(payload: &[u8], limits: &BusLimits) -> Result<PyMessage, PyDecodeError> {
    if payload.len() > limits.max_message_bytes {
        return Err(invalid(format!(
            "message of {} bytes exceeds the limit of {}",
            payload.len(),
            limits.max_message_bytes
        )));
    }
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| invalid(format!("not JSON: {e}")))?;
    if depth(&value) > limits.max_depth {
        return Err(invalid(format!(
            "nested deeper than the limit of {}",
            limits.max_depth
        )));
    }
    let Value::Object(mut fields) = value else {
        return Err(invalid("not a JSON object"));
    };
    let mut fields = Fields(&mut fields);
    let method = fields
        .opt_string("method")?
        .ok_or_else(|| invalid("no method"))?;
    match method.as_str() {
        "emit" => decode_emit(fields, limits).map(PyMessage::Emit),
        "callback" => Ok(PyMessage::Callback(PyCallback {
            host_id: fields.string("host_id")?,
            sid: fields.string("sid")?,
            namespace: fields.namespace()?,
            id: fields.id("id")?,
            args: match fields.take("args") {
                Some(Value::Array(args)) => args,
                _ => return Err(invalid("callback args is not a list")),
            },
        })),
        "disconnect" => Ok(PyMessage::Disconnect {
            sid: fields.string("sid")?,
            namespace: fields.namespace()?,
            host_id: fields.opt_string("host_id")?,
        }),
        "enter_room" => Ok(PyMessage::EnterRoom {
            sid: fields.string("sid")?,
            room: fields.string("room")?,
            namespace: fields.namespace()?,
            host_id: fields.opt_string("host_id")?,
        }),
        "leave_room" => Ok(PyMessage::LeaveRoom {
            sid: fields.string("sid")?,
            room: fields.string("room")?,
            namespace: fields.namespace()?,
            host_id: fields.opt_string("host_id")?,
        }),
        "close_room" => Ok(PyMessage::CloseRoom {
            room: fields.string("room")?,
            namespace: fields.namespace()?,
            host_id: fields.opt_string("host_id")?,
        }),
        _ => Err(PyDecodeError::UnknownMethod(method)),
    }
}

fn decode_emit(mut fields: Fields<'_>, limits: &BusLimits) -> Result<PyEmit, PyDecodeError> {
    let event = fields.string("event")?;
    let binary = match fields.take("binary") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(invalid("binary is not a boolean")),
    };
    let data = fields
        .take("data")
        .ok_or_else(|| invalid("emit without data"))?;
    let data = if binary {
        rebuild_binary(data, limits)?
    } else {
        data
    };
    // python delivers a list as the arguments, null as none, and anything
    // else as one argument.
    let data = match data {
        Value::Array(args) => args,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let callback = match fields.take("callback") {
        None | Some(Value::Null) => None,
        // python uses a callback of exactly three items and ignores others.
        Some(Value::Array(items)) if items.len() != 3 => None,
        Some(Value::Array(items)) => {
            let mut items = items.into_iter();
            let mut next = || items.next().unwrap_or_default();
            let (Value::String(sid), Value::String(namespace), id) = (next(), next(), next())
            else {
                return Err(invalid("callback is not [sid, namespace, id]"));
            };
            Some(PyCallbackRequest {
                sid,
                namespace,
                id: ack_id(&id).ok_or_else(|| invalid("callback id is not an integer"))?,
            })
        }
        Some(_) => return Err(invalid("callback is not a list")),
    };
    Ok(PyEmit {
        event,
        data,
        namespace: fields.namespace()?,
        room: fields.rooms("room")?,
        skip_sid: fields.rooms("skip_sid")?,
        callback,
        host_id: fields.opt_string("host_id")?,
    })
}

/// Undo python's `binary: true` form: `data` is `[template, base64...]`,
/// with `{"_placeholder": true, "num": N}` in the template standing for
/// attachment N.
fn rebuild_binary(data: Value, limits: &BusLimits) -> Result<Value, PyDecodeError> {
    let Value::Array(mut parts) = data else {
        return Err(invalid("binary data is not a list"));
    };
    if parts.is_empty() {
        return Err(invalid("binary data is empty"));
    }
    if parts.len() - 1 > limits.max_attachments {
        return Err(invalid(format!(
            "{} attachments exceed the limit of {}",
            parts.len() - 1,
            limits.max_attachments
        )));
    }
    let attachments = parts
        .drain(1..)
        .map(|part| match part {
            Value::String(text) => BASE64
                .decode(text)
                .map(Bytes::from)
                .map_err(|e| invalid(format!("attachment is not base64: {e}"))),
            _ => Err(invalid("attachment is not a string")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut used = vec![false; attachments.len()];
    let template = parts.pop().unwrap_or_default();
    fill_placeholders(template, &attachments, &mut used)
}

fn fill_placeholders(
    value: Value,
    attachments: &[Bytes],
    used: &mut [bool],
) -> Result<Value, PyDecodeError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| fill_placeholders(item, attachments, used))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) => {
            // python's test: `_placeholder` truthy and a `num` key present
            // (of a repeated key, the last one, as in a python dict).
            let marker = map
                .iter()
                .rev()
                .find(|(k, _)| k == "_placeholder")
                .map(|e| &e.1);
            let num = map.iter().rev().find(|(k, _)| k == "num").map(|e| &e.1);
            if let (Some(marker), Some(num)) = (marker, num) {
                if python_truthy(marker) {
                    if *marker != Value::Bool(true) {
                        return Err(invalid("placeholder marker is not true"));
                    }
                    let index = ack_id(num)
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|&n| n < attachments.len())
                        .ok_or_else(|| invalid("placeholder num out of range"))?;
                    if std::mem::replace(&mut used[index], true) {
                        return Err(invalid("attachment used twice"));
                    }
                    return Ok(Value::Binary(attachments[index].clone()));
                }
            }
            map.into_iter()
                .map(|(k, v)| Ok((k, fill_placeholders(v, attachments, used)?)))
                .collect::<Result<_, _>>()
                .map(Value::Object)
        }
        other => Ok(other),
    }
}

/// Whether python's `bool(value)` is true.
fn python_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(Number::PosInt(n)) => *n != 0,
        Value::Number(Number::NegInt(n)) => *n != 0,
        Value::Number(Number::Float(f)) => *f != 0.0,
        Value::String(s) => !s.is_empty(),
        Value::Binary(b) => !b.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// A non-negative JSON integer (an ack id or attachment index). Floats are
/// refused even when integral: python would index with them differently.
fn ack_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(Number::PosInt(n)) => Some(*n),
        _ => None,
    }
}

/// Nesting depth of `value` (a scalar is 0). Recursion is bounded by the
/// JSON parser's own limit.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

/// The members of a message object, read the way python's dict lookups
/// read them (a repeated key: the last one wins).
struct Fields<'a>(&'a mut Vec<(String, Value)>);

impl Fields<'_> {
    fn take(&mut self, key: &str) -> Option<Value> {
        self.0
            .iter_mut()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| std::mem::take(v))
    }

    /// A string member that may be absent or null.
    fn opt_string(&mut self, key: &str) -> Result<Option<String>, PyDecodeError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("{key} is not a string"))),
        }
    }

    fn string(&mut self, key: &str) -> Result<String, PyDecodeError> {
        self.opt_string(key)?
            .ok_or_else(|| invalid(format!("no {key}")))
    }

    fn namespace(&mut self) -> Result<String, PyDecodeError> {
        Ok(self
            .opt_string("namespace")?
            .unwrap_or_else(|| "/".to_owned()))
    }

    fn id(&mut self, key: &str) -> Result<u64, PyDecodeError> {
        self.take(key)
            .as_ref()
            .and_then(ack_id)
            .ok_or_else(|| invalid(format!("{key} is not a non-negative integer")))
    }

    fn rooms(&mut self, key: &str) -> Result<Rooms, PyDecodeError> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(Rooms::Unset),
            Some(Value::String(name)) => Ok(Rooms::One(name)),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(name) => Ok(name),
                    _ => Err(invalid(format!("{key} holds a name that is not a string"))),
                })
                .collect::<Result<_, _>>()
                .map(Rooms::Many),
            Some(_) => Err(invalid(format!("{key} is not a string or a list"))),
        }
    }
}
