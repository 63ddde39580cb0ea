//! The Redis serialization protocol (RESP2 and RESP3), sans-IO.
//!
//! - [`encode_command`] writes a command (an array of bulk strings, the
//!   only form Redis accepts from clients) into a [`BytesMut`].
//! - [`RespDecoder`] is fed arbitrary chunks read from the broker and
//!   yields whole [`RespValue`]s. It keeps partial aggregates between
//!   chunks, so a reply fed one byte at a time costs the same as one fed at
//!   once. Bulk strings are sliced out of the decoder's buffer (the bytes
//!   are copied once, when fed).
//! - [`PubSubReply::from_value`] recognises the pub/sub replies and pushes
//!   (`message`, `pmessage`, `smessage`, subscribe and unsubscribe
//!   confirmations, `pong`), in RESP2 arrays and RESP3 pushes alike.
//!
//! The broker is not trusted: every size has a limit ([`RespLimits`]) and
//! every malformed input is a [`RespError`]. After an error the decoder
//! stays failed (the stream cannot be resynchronised): the connection must
//! be closed.
//!
//! RESP3 attributes (`|`) are read and discarded, as the protocol allows;
//! streamed strings and aggregates (`$?`, `*?`, `;`, `.`) are refused
//! ([`RespError::Unsupported`]): Redis never sends them.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::ChannelKind;

/// A value received from Redis.
#[derive(Debug, Clone, PartialEq)]
pub enum RespValue {
    /// `+OK`: a simple string.
    Simple(Bytes),
    /// `-ERR ...` or RESP3 `!`: an error reply (the whole message, code
    /// included).
    Error(Bytes),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nabc`: a bulk string.
    Bulk(Bytes),
    /// RESP2 `$-1` / `*-1`, RESP3 `_`.
    Null,
    /// RESP3 `,1.5` (also `inf`, `-inf`, `nan`).
    Double(f64),
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `(` big number, as its decimal digits.
    BigNumber(Bytes),
    /// RESP3 `=`: a verbatim string with its three-byte format (`txt`,
    /// `mkd`).
    Verbatim {
        /// The format, three bytes.
        format: Bytes,
        /// The text.
        text: Bytes,
    },
    /// `*`: an array.
    Array(Vec<RespValue>),
    /// RESP3 `>`: an out-of-band push (pub/sub messages in RESP3).
    Push(Vec<RespValue>),
    /// RESP3 `~`: a set.
    Set(Vec<RespValue>),
    /// RESP3 `%`: a map, as key-value pairs in the order received.
    Map(Vec<(RespValue, RespValue)>),
}

impl RespValue {
    /// The bytes of a simple, bulk or verbatim string.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            RespValue::Simple(b) | RespValue::Bulk(b) => Some(b),
            RespValue::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value of an integer reply.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            RespValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of an array, push or set.
    pub fn as_elements(&self) -> Option<&[RespValue]> {
        match self {
            RespValue::Array(v) | RespValue::Push(v) | RespValue::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, RespValue::Error(_))
    }
}

/// Limits on what a [`RespDecoder`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// Largest bulk string (and bulk error, verbatim string).
    pub max_bulk_len: usize,
    /// Most elements in one reply, all its nested aggregates counted
    /// together (a map of n pairs counts 2n). Bounds the memory a reply of
    /// tiny elements costs.
    pub max_elements: usize,
    /// Deepest nesting of aggregates.
    pub max_depth: usize,
    /// Longest line (a simple string, error, number or header), type byte
    /// counted, CRLF not.
    pub max_line_len: usize,
    /// Most bytes of wire data in one reply.
    pub max_reply_bytes: usize,
}

impl Default for RespLimits {
    /// Sized for 16 MiB bus messages: bulk strings up to 32 MiB (so a
    /// slightly oversized message reaches the node, which drops it with a
    /// log line, instead of ending the link), replies up to 64 MiB (a
    /// `pmessage` carries pattern, channel and payload), 65 536 elements,
    /// depth 16, lines of 64 KiB.
    fn default() -> Self {
        RespLimits {
            max_bulk_len: 32 << 20,
            max_elements: 1 << 16,
            max_depth: 16,
            max_line_len: 64 << 10,
            max_reply_bytes: 64 << 20,
        }
    }
}

/// Malformed or oversized input from the broker. The connection cannot be
/// used after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RespError {
    /// A type byte RESP does not define.
    UnknownType(u8),
    /// A RESP3 form Redis never sends (streamed strings and aggregates).
    Unsupported(u8),
    /// A line ends with a bare `\n`, holds a `\r`, or is empty.
    BadLine,
    /// A line longer than [`RespLimits::max_line_len`].
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// A length or count that is not a decimal number, or negative where
    /// no null is allowed.
    BadLength,
    /// An integer that is not a decimal `i64`.
    BadInteger,
    /// A RESP3 double, boolean, null or big number that does not parse.
    BadScalar(u8),
    /// A verbatim string without its `fmt:` prefix.
    BadVerbatim,
    /// A bulk string not followed by CRLF.
    MissingCrlf,
    /// A bulk string longer than [`RespLimits::max_bulk_len`].
    BulkTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// More elements than [`RespLimits::max_elements`] in one reply.
    TooManyElements {
        /// The limit.
        limit: usize,
    },
    /// Aggregates nested deeper than [`RespLimits::max_depth`].
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A reply larger than [`RespLimits::max_reply_bytes`].
    ReplyTooLarge {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::UnknownType(b) => write!(f, "unknown RESP type byte 0x{b:02x}"),
            RespError::Unsupported(b) => {
                write!(f, "unsupported RESP3 form (type byte 0x{b:02x})")
            }
            RespError::BadLine => f.write_str("malformed RESP line"),
            RespError::LineTooLong { limit } => write!(f, "RESP line longer than {limit} bytes"),
            RespError::BadLength => f.write_str("invalid RESP length"),
            RespError::BadInteger => f.write_str("invalid RESP integer"),
            RespError::BadScalar(b) => write!(f, "invalid RESP3 scalar of type '{}'", *b as char),
            RespError::BadVerbatim => f.write_str("verbatim string without a format"),
            RespError::MissingCrlf => f.write_str("bulk string not followed by CRLF"),
            RespError::BulkTooLarge { len, limit } => {
                write!(f, "bulk string of {len} bytes exceeds {limit}")
            }
            RespError::TooManyElements { limit } => {
                write!(f, "more than {limit} elements in one reply")
            }
            RespError::TooDeep { limit } => write!(f, "aggregates nested deeper than {limit}"),
            RespError::ReplyTooLarge { limit } => write!(f, "reply larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for RespError {}

/// Append a command (an array of bulk strings) to `out`.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut BytesMut, args: &[A]) {
    let mut num = itoa::Buffer::new();
    out.reserve(command_len(args));
    out.put_u8(b'*');
    out.put_slice(num.format(args.len()).as_bytes());
    out.put_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.put_u8(b'$');
        out.put_slice(num.format(arg.len()).as_bytes());
        out.put_slice(b"\r\n");
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// The encoded size of a command, in bytes.
pub fn command_len<A: AsRef<[u8]>>(args: &[A]) -> usize {
    fn digits(mut n: usize) -> usize {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }
    3 + digits(args.len())
        + args
            .iter()
            .map(|a| {
                let len = a.as_ref().len();
                5 + digits(len) + len
            })
            .sum::<usize>()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggKind {
    Array,
    Push,
    Set,
    Map,
    Attribute,
}

#[derive(Debug)]
struct Frame {
    kind: AggKind,
    remaining: usize,
    items: Vec<RespValue>,
}

impl Frame {
    /// The finished aggregate; `None` for an attribute, which is dropped.
    fn finish(self) -> Option<RespValue> {
        Some(match self.kind {
            AggKind::Array => RespValue::Array(self.items),
            AggKind::Push => RespValue::Push(self.items),
            AggKind::Set => RespValue::Set(self.items),
            AggKind::Map => {
                let mut pairs = Vec::with_capacity(self.items.len() / 2);
                let mut items = self.items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    pairs.push((k, v));
                }
                RespValue::Map(pairs)
            }
            AggKind::Attribute => return None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum BulkKind {
    Bulk,
    Error,
    Verbatim,
}

/// An incremental RESP decoder: [`feed`](RespDecoder::feed) it what was
/// read, then call [`next`](RespDecoder::next) until it returns
/// `Ok(None)`. Between calls it holds at most one unfinished reply (whose
/// size the limits bound) plus what was fed and not yet decoded.
#[derive(Debug)]
pub struct RespDecoder {
    buf: BytesMut,
    limits: RespLimits,
    stack: Vec<Frame>,
    /// A bulk header was read; its data (and CRLF) is awaited.
    pending_bulk: Option<(BulkKind, usize)>,
    /// Bytes at the start of `buf` known to hold no `\n`.
    scanned: usize,
    /// Wire bytes and elements of the reply being decoded.
    reply_bytes: usize,
    reply_elements: usize,
    failed: Option<RespError>,
}

impl Default for RespDecoder {
    fn default() -> Self {
        Self::new(RespLimits::default())
    }
}

impl RespDecoder {
    /// A decoder with these limits.
    pub fn new(limits: RespLimits) -> Self {
        RespDecoder {
            buf: BytesMut::new(),
            limits,
            stack: Vec::new(),
            pending_bulk: None,
            scanned: 0,
            reply_bytes: 0,
            reply_elements: 0,
            failed: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &RespLimits {
        &self.limits
    }

    /// Append bytes read from the broker.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes fed and not yet returned as part of a value.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a reply is partly decoded or bytes are waiting.
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty() && self.stack.is_empty() && self.pending_bulk.is_none()
    }

    /// The next complete value, `Ok(None)` when more bytes are needed. An
    /// error is final: every later call returns it again.
    #[allow(clippy::should_implement_trait)] // fallible, not an Iterator
    pub fn next(&mut self) -> Result<Option<RespValue>, RespError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.step() {
            Ok(v) => Ok(v),
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = BytesMut::new();
                self.stack.clear();
                Err(e)
            }
        }
    }

    fn consume(&mut self, n: usize) -> Result<(), RespError> {
        self.reply_bytes = self.reply_bytes.saturating_add(n);
        if self.reply_bytes > self.limits.max_reply_bytes {
            return Err(RespError::ReplyTooLarge {
                limit: self.limits.max_reply_bytes,
            });
        }
        Ok(())
    }

    /// The next line without its CRLF (type byte included), if complete.
    fn take_line(&mut self) -> Result<Option<BytesMut>, RespError> {
        let max = self.limits.max_line_len;
        let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
            // The same test as below once the `\n` comes, so feeding in
            // chunks fails exactly like feeding at once.
            if self.buf.len() > max + 1 {
                return Err(RespError::LineTooLong { limit: max });
            }
            self.scanned = self.buf.len();
            return Ok(None);
        };
        let nl = self.scanned + pos;
        self.scanned = 0;
        if nl > max + 1 {
            return Err(RespError::LineTooLong { limit: max });
        }
        if nl < 2 || self.buf[nl - 1] != b'\r' || self.buf[..nl - 1].contains(&b'\r') {
            return Err(RespError::BadLine);
        }
        self.consume(nl + 1)?;
        let mut line = self.buf.split_to(nl + 1);
        line.truncate(nl - 1);
        Ok(Some(line))
    }

    fn step(&mut self) -> Result<Option<RespValue>, RespError> {
        loop {
            let value = if let Some((kind, len)) = self.pending_bulk {
                if self.buf.len() < len + 2 {
                    return Ok(None);
                }
                if &self.buf[len..len + 2] != b"\r\n" {
                    return Err(RespError::MissingCrlf);
                }
                let mut data = self.buf.split_to(len + 2);
                data.truncate(len);
                self.pending_bulk = None;
                let data = data.freeze();
                match kind {
                    BulkKind::Bulk => RespValue::Bulk(data),
                    BulkKind::Error => RespValue::Error(data),
                    BulkKind::Verbatim => {
                        if data.len() < 4 || data[3] != b':' {
                            return Err(RespError::BadVerbatim);
                        }
                        RespValue::Verbatim {
                            format: data.slice(..3),
                            text: data.slice(4..),
                        }
                    }
                }
            } else {
                let Some(line) = self.take_line()? else {
                    return Ok(None);
                };
                let ty = line[0];
                let body = line.freeze().slice(1..);
                match ty {
                    b'+' => RespValue::Simple(body),
                    b'-' => RespValue::Error(body),
                    b':' => RespValue::Integer(parse_i64(&body).ok_or(RespError::BadInteger)?),
                    b'$' | b'!' | b'=' => {
                        if &body[..] == b"?" {
                            return Err(RespError::Unsupported(ty));
                        }
                        let len = parse_i64(&body).ok_or(RespError::BadLength)?;
                        if len == -1 && ty == b'$' {
                            RespValue::Null
                        } else {
                            let len = u64::try_from(len).map_err(|_| RespError::BadLength)?;
                            if len > self.limits.max_bulk_len as u64 {
                                return Err(RespError::BulkTooLarge {
                                    len,
                                    limit: self.limits.max_bulk_len,
                                });
                            }
                            let len = len as usize;
                            // Counted now, so an oversized reply fails
                            // before its data is buffered.
                            self.consume(len + 2)?;
                            let kind = match ty {
                                b'$' => BulkKind::Bulk,
                                b'!' => BulkKind::Error,
                                _ => BulkKind::Verbatim,
                            };
                            self.pending_bulk = Some((kind, len));
                            continue;
                        }
                    }
                    b'*' | b'>' | b'~' | b'%' | b'|' => {
                        if &body[..] == b"?" {
                            return Err(RespError::Unsupported(ty));
                        }
                        let n = parse_i64(&body).ok_or(RespError::BadLength)?;
                        if n == -1 && ty == b'*' {
                            RespValue::Null
                        } else {
                            let n = usize::try_from(n).map_err(|_| RespError::BadLength)?;
                            let kind = match ty {
                                b'*' => AggKind::Array,
                                b'>' => AggKind::Push,
                                b'~' => AggKind::Set,
                                b'%' => AggKind::Map,
                                _ => AggKind::Attribute,
                            };
                            let count = if matches!(kind, AggKind::Map | AggKind::Attribute) {
                                n.saturating_mul(2)
                            } else {
                                n
                            };
                            self.reply_elements = self.reply_elements.saturating_add(count);
                            if self.reply_elements > self.limits.max_elements {
                                return Err(RespError::TooManyElements {
                                    limit: self.limits.max_elements,
                                });
                            }
                            if count == 0 {
                                match (Frame {
                                    kind,
                                    remaining: 0,
                                    items: Vec::new(),
                                })
                                .finish()
                                {
                                    Some(v) => v,
                                    None => continue,
                                }
                            } else {
                                if self.stack.len() >= self.limits.max_depth {
                                    return Err(RespError::TooDeep {
                                        limit: self.limits.max_depth,
                                    });
                                }
                                self.stack.push(Frame {
                                    kind,
                                    remaining: count,
                                    // Never trust a count for an allocation.
                                    items: Vec::with_capacity(count.min(16)),
                                });
                                continue;
                            }
                        }
                    }
                    b'_' if body.is_empty() => RespValue::Null,
                    b'#' if &body[..] == b"t" => RespValue::Boolean(true),
                    b'#' if &body[..] == b"f" => RespValue::Boolean(false),
                    b',' => RespValue::Double(parse_double(&body).ok_or(RespError::BadScalar(ty))?),
                    b'(' => {
                        let digits = body.strip_prefix(b"-").unwrap_or(&body);
                        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                            return Err(RespError::BadScalar(ty));
                        }
                        RespValue::BigNumber(body)
                    }
                    b'_' | b'#' => return Err(RespError::BadScalar(ty)),
                    b';' | b'.' => return Err(RespError::Unsupported(ty)),
                    other => return Err(RespError::UnknownType(other)),
                }
            };
            if let Some(done) = self.attach(value) {
                self.reply_bytes = 0;
                self.reply_elements = 0;
                return Ok(Some(done));
            }
        }
    }

    /// Put `value` into the innermost open aggregate, closing those it
    /// completes; the value is returned when it is a whole reply.
    fn attach(&mut self, value: RespValue) -> Option<RespValue> {
        let mut value = value;
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return Some(value);
            };
            frame.items.push(value);
            frame.remaining -= 1;
            if frame.remaining > 0 {
                return None;
            }
            let frame = self.stack.pop()?;
            value = frame.finish()?;
        }
    }
}

/// A strict decimal `i64`: optional `-`, then digits only.
fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        n = if neg {
            n.checked_mul(10)?.checked_sub(d)?
        } else {
            n.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(n)
}

fn parse_double(s: &[u8]) -> Option<f64> {
    match s {
        b"inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" => Some(f64::NAN),
        _ => {
            // Only what RESP3 allows (no "infinity", no hex, no spaces).
            if s.is_empty()
                || !s
                    .iter()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
            {
                return None;
            }
            std::str::from_utf8(s).ok()?.parse().ok()
        }
    }
}

/// A pub/sub reply or push, recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubReply {
    /// `message channel payload`: from a `SUBSCRIBE`.
    Message {
        /// The channel.
        channel: Bytes,
        /// The message.
        payload: Bytes,
    },
    /// `pmessage pattern channel payload`: from a `PSUBSCRIBE`.
    PMessage {
        /// The pattern that matched.
        pattern: Bytes,
        /// The channel the message was published on.
        channel: Bytes,
        /// The message.
        payload: Bytes,
    },
    /// `smessage channel payload`: from an `SSUBSCRIBE`.
    SMessage {
        /// The shard channel.
        channel: Bytes,
        /// The message.
        payload: Bytes,
    },
    /// `subscribe` / `psubscribe` / `ssubscribe` confirmation.
    Subscribed {
        /// How the channel was subscribed.
        kind: ChannelKind,
        /// The channel or pattern.
        channel: Bytes,
        /// Subscriptions of the connection now.
        count: i64,
    },
    /// `unsubscribe` / `punsubscribe` / `sunsubscribe` confirmation (also
    /// sent unasked when a shard channel moves, in a cluster).
    Unsubscribed {
        /// How the channel was subscribed.
        kind: ChannelKind,
        /// The channel or pattern (none when nothing was subscribed).
        channel: Option<Bytes>,
        /// Subscriptions of the connection now.
        count: i64,
    },
    /// The answer to `PING` on a subscribed connection (RESP2
    /// `["pong", arg]`).
    Pong(Bytes),
}

impl PubSubReply {
    /// Recognise a pub/sub reply (RESP2 array or RESP3 push); `None` for
    /// anything else.
    pub fn from_value(value: &RespValue) -> Option<PubSubReply> {
        let items = match value {
            RespValue::Array(v) | RespValue::Push(v) => v,
            _ => return None,
        };
        let (first, rest) = items.split_first()?;
        let name = first.as_bytes()?;
        let bytes = |i: usize| rest.get(i).and_then(RespValue::as_bytes).cloned();
        let int = |i: usize| rest.get(i).and_then(RespValue::as_integer);
        let kind_of = |prefix: &[u8]| match prefix {
            b"" => Some(ChannelKind::Plain),
            b"p" => Some(ChannelKind::Pattern),
            b"s" => Some(ChannelKind::Sharded),
            _ => None,
        };
        Some(match (&name[..], rest.len()) {
            (b"message", 2) => PubSubReply::Message {
                channel: bytes(0)?,
                payload: bytes(1)?,
            },
            (b"pmessage", 3) => PubSubReply::PMessage {
                pattern: bytes(0)?,
                channel: bytes(1)?,
                payload: bytes(2)?,
            },
            (b"smessage", 2) => PubSubReply::SMessage {
                channel: bytes(0)?,
                payload: bytes(1)?,
            },
            (b"pong", 1) => PubSubReply::Pong(bytes(0)?),
            (n, 2) if n.ends_with(b"unsubscribe") => PubSubReply::Unsubscribed {
                kind: kind_of(&n[..n.len() - b"unsubscribe".len()])?,
                channel: match &rest[0] {
                    RespValue::Null => None,
                    v => Some(v.as_bytes()?.clone()),
                },
                count: int(1)?,
            },
            (n, 2) if n.ends_with(b"subscribe") => PubSubReply::Subscribed {
                kind: kind_of(&n[..n.len() - b"subscribe".len()])?,
                channel: bytes(0)?,
                count: int(1)?,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<RespValue>, RespError> {
        let mut d = RespDecoder::default();
        d.feed(input);
        let mut out = Vec::new();
        while let Some(v) = d.next()? {
            out.push(v);
        }
        Ok(out)
    }

    fn decode_bytewise(input: &[u8]) -> Result<Vec<RespValue>, RespError> {
        let mut d = RespDecoder::default();
        let mut out = Vec::new();
        for b in input {
            d.feed(std::slice::from_ref(b));
            while let Some(v) = d.next()? {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn one(input: &[u8]) -> RespValue {
        let whole = decode_all(input).unwrap();
        // Compared as text: NaN is not equal to itself.
        assert_eq!(
            format!("{:?}", decode_bytewise(input).unwrap()),
            format!("{whole:?}")
        );
        assert_eq!(whole.len(), 1, "{whole:?}");
        whole.into_iter().next().unwrap()
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn encodes_commands() {
        let mut out = BytesMut::new();
        let args: [&[u8]; 3] = [b"PUBLISH", b"ch", b""];
        encode_command(&mut out, &args);
        assert_eq!(&out[..], b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$0\r\n\r\n");
        assert_eq!(command_len(&args), out.len());
        let big = vec![b'x'; 12345];
        let args = [&b"SET"[..], &big[..]];
        let mut out = BytesMut::new();
        encode_command(&mut out, &args);
        assert_eq!(command_len(&args), out.len());
        match one(&out) {
            RespValue::Array(v) => assert_eq!(v[1], RespValue::Bulk(Bytes::from(big))),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn decodes_resp2_types() {
        assert_eq!(one(b"+OK\r\n"), RespValue::Simple(b("OK")));
        assert_eq!(one(b"+\r\n"), RespValue::Simple(b("")));
        assert_eq!(one(b"-ERR unknown\r\n"), RespValue::Error(b("ERR unknown")));
        assert_eq!(one(b":0\r\n"), RespValue::Integer(0));
        assert_eq!(one(b":-42\r\n"), RespValue::Integer(-42));
        assert_eq!(
            one(b":9223372036854775807\r\n"),
            RespValue::Integer(i64::MAX)
        );
        assert_eq!(
            one(b":-9223372036854775808\r\n"),
            RespValue::Integer(i64::MIN)
        );
        assert_eq!(one(b"$5\r\nhe\r\no\r\n"), RespValue::Bulk(b("he\r\no")));
        assert_eq!(one(b"$0\r\n\r\n"), RespValue::Bulk(b("")));
        assert_eq!(one(b"$-1\r\n"), RespValue::Null);
        assert_eq!(one(b"*-1\r\n"), RespValue::Null);
        assert_eq!(one(b"*0\r\n"), RespValue::Array(vec![]));
        assert_eq!(
            one(b"*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n$1\r\nz\r\n"),
            RespValue::Array(vec![
                RespValue::Integer(1),
                RespValue::Array(vec![RespValue::Simple(b("a")), RespValue::Null]),
                RespValue::Bulk(b("z")),
            ])
        );
    }

    #[test]
    fn decodes_resp3_types() {
        assert_eq!(one(b"_\r\n"), RespValue::Null);
        assert_eq!(one(b"#t\r\n"), RespValue::Boolean(true));
        assert_eq!(one(b"#f\r\n"), RespValue::Boolean(false));
        assert_eq!(one(b",1.5\r\n"), RespValue::Double(1.5));
        assert_eq!(one(b",-2e3\r\n"), RespValue::Double(-2000.0));
        assert_eq!(one(b",inf\r\n"), RespValue::Double(f64::INFINITY));
        assert!(matches!(one(b",nan\r\n"), RespValue::Double(d) if d.is_nan()));
        assert_eq!(
            one(b"(-123456789012345678901234567890\r\n"),
            RespValue::BigNumber(b("-123456789012345678901234567890"))
        );
        assert_eq!(
            one(b"!10\r\nERR oops\r\n\r\n"),
            RespValue::Error(b("ERR oops\r\n"))
        );
        assert_eq!(
            one(b"=8\r\ntxt:abcd\r\n"),
            RespValue::Verbatim {
                format: b("txt"),
                text: b("abcd")
            }
        );
        assert_eq!(
            one(b"%2\r\n+a\r\n:1\r\n+b\r\n_\r\n"),
            RespValue::Map(vec![
                (RespValue::Simple(b("a")), RespValue::Integer(1)),
                (RespValue::Simple(b("b")), RespValue::Null),
            ])
        );
        assert_eq!(
            one(b"~2\r\n:1\r\n:2\r\n"),
            RespValue::Set(vec![RespValue::Integer(1), RespValue::Integer(2)])
        );
        assert_eq!(
            one(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
            RespValue::Push(vec![
                RespValue::Bulk(b("message")),
                RespValue::Bulk(b("ch")),
                RespValue::Bulk(b("hi")),
            ])
        );
        // Attributes are dropped, at the top and inside aggregates.
        assert_eq!(one(b"|1\r\n+ttl\r\n:3\r\n:7\r\n"), RespValue::Integer(7));
        assert_eq!(
            one(b"*2\r\n:1\r\n|1\r\n+k\r\n+v\r\n:2\r\n"),
            RespValue::Array(vec![RespValue::Integer(1), RespValue::Integer(2)])
        );
        assert_eq!(one(b"|0\r\n:7\r\n"), RespValue::Integer(7));
    }

    #[test]
    fn several_values_and_partial_input() {
        let input = b"+OK\r\n:1\r\n$3\r\nabc\r\n*1\r\n$1\r\nx\r\n";
        let all = decode_all(input).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(decode_bytewise(input).unwrap(), all);
        let mut d = RespDecoder::default();
        d.feed(b"$10\r\n01234");
        assert_eq!(d.next(), Ok(None));
        assert!(!d.is_idle());
        d.feed(b"56789\r");
        assert_eq!(d.next(), Ok(None));
        d.feed(b"\n+");
        assert_eq!(d.next(), Ok(Some(RespValue::Bulk(b("0123456789")))));
        assert_eq!(d.next(), Ok(None));
        d.feed(b"A\r\n");
        assert_eq!(d.next(), Ok(Some(RespValue::Simple(b("A")))));
        assert!(d.is_idle());
    }

    fn err(input: &[u8]) -> RespError {
        let whole = decode_all(input).unwrap_err();
        assert_eq!(decode_bytewise(input).unwrap_err(), whole, "{input:?}");
        whole
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert_eq!(err(b"?x\r\n"), RespError::UnknownType(b'?'));
        assert_eq!(err(b"\r\n"), RespError::BadLine);
        assert_eq!(err(b"+OK\n"), RespError::BadLine);
        assert_eq!(err(b"+O\rK\r\n"), RespError::BadLine);
        assert_eq!(err(b"\n"), RespError::BadLine);
        assert_eq!(err(b":\r\n"), RespError::BadInteger);
        assert_eq!(err(b":1a\r\n"), RespError::BadInteger);
        assert_eq!(err(b":+1\r\n"), RespError::BadInteger);
        assert_eq!(err(b":9223372036854775808\r\n"), RespError::BadInteger);
        assert_eq!(err(b"$-2\r\n"), RespError::BadLength);
        assert_eq!(err(b"$99999999999999999999\r\n"), RespError::BadLength);
        assert_eq!(
            err(b"$9999999999999\r\n"),
            RespError::BulkTooLarge {
                len: 9999999999999,
                limit: 32 << 20
            }
        );
        assert_eq!(err(b"$x\r\n"), RespError::BadLength);
        assert_eq!(err(b"!-1\r\n"), RespError::BadLength);
        assert_eq!(err(b">-1\r\n"), RespError::BadLength);
        assert_eq!(err(b"$3\r\nabcd\r\n"), RespError::MissingCrlf);
        assert_eq!(err(b"=3\r\nabc\r\n"), RespError::BadVerbatim);
        assert_eq!(err(b"=4\r\ntxtx\r\n"), RespError::BadVerbatim);
        assert_eq!(err(b"#x\r\n"), RespError::BadScalar(b'#'));
        assert_eq!(err(b"_x\r\n"), RespError::BadScalar(b'_'));
        assert_eq!(err(b",1.5x\r\n"), RespError::BadScalar(b','));
        assert_eq!(err(b",\r\n"), RespError::BadScalar(b','));
        assert_eq!(err(b"(12a\r\n"), RespError::BadScalar(b'('));
        assert_eq!(err(b"$?\r\n"), RespError::Unsupported(b'$'));
        assert_eq!(err(b"*?\r\n"), RespError::Unsupported(b'*'));
        assert_eq!(err(b";4\r\n"), RespError::Unsupported(b';'));
        // Values before the error come out first; the error then stays.
        let mut d = RespDecoder::default();
        d.feed(b"+OK\r\n?\r\n+OK\r\n");
        assert_eq!(d.next(), Ok(Some(RespValue::Simple(b("OK")))));
        assert_eq!(d.next(), Err(RespError::UnknownType(b'?')));
        d.feed(b"+OK\r\n");
        assert_eq!(d.next(), Err(RespError::UnknownType(b'?')));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn limits_are_enforced() {
        let limits = RespLimits {
            max_bulk_len: 10,
            max_elements: 4,
            max_depth: 2,
            max_line_len: 8,
            max_reply_bytes: 40,
        };
        let run = |input: &[u8]| {
            let mut whole = RespDecoder::new(limits);
            whole.feed(input);
            let mut a = Vec::new();
            let ra = loop {
                match whole.next() {
                    Ok(Some(v)) => a.push(v),
                    other => break other,
                }
            };
            let mut bytewise = RespDecoder::new(limits);
            let mut b = Vec::new();
            let mut rb = Ok(None);
            'outer: for byte in input {
                bytewise.feed(std::slice::from_ref(byte));
                loop {
                    match bytewise.next() {
                        Ok(Some(v)) => b.push(v),
                        Ok(None) => break,
                        e => {
                            rb = e;
                            break 'outer;
                        }
                    }
                }
            }
            assert_eq!((&a, &ra), (&b, &rb));
            ra
        };
        assert_eq!(run(b"$10\r\n0123456789\r\n"), Ok(None));
        assert_eq!(
            run(b"$11\r\n"),
            Err(RespError::BulkTooLarge { len: 11, limit: 10 })
        );
        // The type byte counts.
        assert_eq!(run(b"+1234567\r\n"), Ok(None));
        assert_eq!(
            run(b"+12345678\r\n"),
            Err(RespError::LineTooLong { limit: 8 })
        );
        // Detected before the end of the line arrives.
        assert_eq!(
            run(b"+1234567890123"),
            Err(RespError::LineTooLong { limit: 8 })
        );
        assert_eq!(run(b"*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n"), Ok(None));
        assert_eq!(run(b"*5\r\n"), Err(RespError::TooManyElements { limit: 4 }));
        // Elements of nested aggregates count together.
        assert_eq!(
            run(b"*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n"),
            Err(RespError::TooManyElements { limit: 4 })
        );
        assert_eq!(run(b"%3\r\n"), Err(RespError::TooManyElements { limit: 4 }));
        assert_eq!(
            run(b"*1\r\n*1\r\n*1\r\n"),
            Err(RespError::TooDeep { limit: 2 })
        );
        // Counters restart with each reply.
        assert_eq!(
            run(b"*3\r\n:1\r\n:2\r\n:3\r\n*3\r\n:1\r\n:2\r\n:3\r\n"),
            Ok(None)
        );
        assert_eq!(
            run(b"*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n"),
            Err(RespError::ReplyTooLarge { limit: 40 })
        );
        // An endless run of attributes is one reply that never ends.
        assert_eq!(
            run(&b"|0\r\n".repeat(11)),
            Err(RespError::ReplyTooLarge { limit: 40 })
        );
    }

    #[test]
    fn bulk_strings_share_the_buffer() {
        let mut d = RespDecoder::default();
        d.feed(b"*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n");
        let v = d.next().unwrap().unwrap();
        let items = v.as_elements().unwrap();
        let (x, y) = (items[0].as_bytes().unwrap(), items[1].as_bytes().unwrap());
        // Both slices point into one allocation, 9 bytes apart.
        assert_eq!(y.as_ptr() as usize - x.as_ptr() as usize, 9);
    }

    #[test]
    fn recognises_pubsub_replies() {
        let p = |input: &[u8]| PubSubReply::from_value(&one(input));
        assert_eq!(
            p(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
            Some(PubSubReply::Message {
                channel: b("ch"),
                payload: b("hi")
            })
        );
        assert_eq!(
            p(b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$0\r\n\r\n"),
            Some(PubSubReply::PMessage {
                pattern: b("c*"),
                channel: b("ch"),
                payload: b("")
            })
        );
        assert_eq!(
            p(b"*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nx\r\n"),
            Some(PubSubReply::SMessage {
                channel: b("s"),
                payload: b("x")
            })
        );
        for (name, kind) in [
            ("subscribe", ChannelKind::Plain),
            ("psubscribe", ChannelKind::Pattern),
            ("ssubscribe", ChannelKind::Sharded),
        ] {
            let input = format!("*3\r\n${}\r\n{name}\r\n$1\r\nc\r\n:1\r\n", name.len());
            assert_eq!(
                p(input.as_bytes()),
                Some(PubSubReply::Subscribed {
                    kind,
                    channel: b("c"),
                    count: 1
                })
            );
            let name = format!("{}un{}", &name[..name.len() - 9], "subscribe");
            let input = format!("*3\r\n${}\r\n{name}\r\n$-1\r\n:0\r\n", name.len());
            assert_eq!(
                p(input.as_bytes()),
                Some(PubSubReply::Unsubscribed {
                    kind,
                    channel: None,
                    count: 0
                })
            );
        }
        assert_eq!(
            p(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
            Some(PubSubReply::Pong(b("")))
        );
        // Not pub/sub, or malformed.
        assert_eq!(p(b"+OK\r\n"), None);
        assert_eq!(p(b"*2\r\n$7\r\nmessage\r\n$2\r\nch\r\n"), None);
        assert_eq!(p(b"*3\r\n$7\r\nmessage\r\n:1\r\n$2\r\nhi\r\n"), None);
        assert_eq!(p(b"*3\r\n$10\r\nxsubscribe\r\n$1\r\nc\r\n:1\r\n"), None);
        assert_eq!(p(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n$1\r\n1\r\n"), None);
        assert_eq!(p(b"*0\r\n"), None);
    }
}
