//! AMQP 0-9-1 (RabbitMQ) framing, sans-IO: the subset a pub/sub bus
//! backend needs, as an encoder for what a client sends and a decoder with
//! limits for what a broker sends.
//!
//! What it covers: the protocol header; method frames of the `connection`
//! (start/tune/open/close/blocked), `channel` (open/flow/close),
//! `exchange.declare`, `queue` (declare/bind/delete), `basic` (qos,
//! consume, cancel, publish, deliver, return, ack, nack) and
//! `confirm.select` methods; content header frames with the `basic`
//! properties; body frames; heartbeats. Field tables are decoded and
//! encoded in full (RabbitMQ's type letters), with a nesting limit.
//!
//! [`AmqpDecoder`] turns the broker's bytes into [`Incoming`] items: a
//! method, a whole message (a `basic.deliver` or `basic.return` with its
//! header and body frames joined), or a heartbeat. A message larger than
//! [`AmqpLimits::max_message_bytes`] is not buffered: its body is skipped
//! and [`Incoming::Oversized`] tells the caller which delivery to
//! acknowledge. Every malformed input is a typed [`AmqpError`] after which
//! the connection cannot be used (the error stays); nothing panics and a
//! frame larger than the negotiated `frame-max` is refused before it is
//! buffered.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// What a client sends first: `AMQP` 0-0-9-1.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// The smallest `frame-max` a peer may ask for, and the largest frame
/// allowed before `connection.tune` (AMQP 0-9-1 section 4.2.3).
pub const FRAME_MIN_SIZE: u32 = 4096;
/// The octet ending every frame.
pub const FRAME_END: u8 = 0xCE;
/// Type, channel and size, before a frame's payload.
const FRAME_HEADER: usize = 7;
/// Frame header and end octet around a payload.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER + 1;

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER_TYPE: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;

/// The `basic` class: its content header frames carry [`Properties`].
const CLASS_BASIC: u16 = 60;

/// Reply code of a normal `connection.close` / `channel.close`.
pub const REPLY_SUCCESS: u16 = 200;

/// Limits on what an [`AmqpDecoder`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmqpLimits {
    /// Largest frame, header and end octet included (the negotiated
    /// `frame-max`; [`FRAME_MIN_SIZE`] until then is the spec's rule, but
    /// brokers' `connection.start` fits either way).
    pub max_frame_size: u32,
    /// Largest message body kept; larger ones are skipped and reported as
    /// [`Incoming::Oversized`].
    pub max_message_bytes: u64,
    /// Deepest nesting of field tables and arrays.
    pub max_table_depth: usize,
}

impl Default for AmqpLimits {
    /// 128 KiB frames (RabbitMQ's default `frame_max`), 16 MiB messages
    /// (the cluster's [`super::BusLimits`] default), tables nested 16 deep.
    fn default() -> Self {
        AmqpLimits {
            max_frame_size: 128 << 10,
            max_message_bytes: 16 << 20,
            max_table_depth: 16,
        }
    }
}

/// Malformed, unexpected or oversized input from the broker. The
/// connection cannot be used after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AmqpError {
    /// The broker answered the protocol header with its own: it does not
    /// speak 0-9-1.
    ProtocolVersion([u8; 4]),
    /// A frame type AMQP 0-9-1 does not define.
    UnknownFrameType(u8),
    /// A frame larger than [`AmqpLimits::max_frame_size`].
    FrameTooLarge {
        /// The frame's size, header and end octet included.
        size: u64,
        /// The limit.
        limit: u32,
    },
    /// A frame not ended by [`FRAME_END`].
    BadFrameEnd(u8),
    /// A frame's payload is shorter than what it announces, or longer.
    Malformed(&'static str),
    /// A field table or array holds an unknown type letter.
    BadFieldType(u8),
    /// Field tables nested deeper than [`AmqpLimits::max_table_depth`].
    TableTooDeep,
    /// A content header or body frame where none was due, or a method
    /// where content was due.
    UnexpectedFrame(&'static str),
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmqpError::ProtocolVersion(v) => write!(
                f,
                "the broker speaks AMQP {}-{}-{}-{}, not 0-9-1",
                v[0], v[1], v[2], v[3]
            ),
            AmqpError::UnknownFrameType(t) => write!(f, "unknown AMQP frame type {t}"),
            AmqpError::FrameTooLarge { size, limit } => {
                write!(f, "AMQP frame of {size} bytes exceeds frame-max {limit}")
            }
            AmqpError::BadFrameEnd(b) => write!(f, "AMQP frame ends with 0x{b:02x}, not 0xce"),
            AmqpError::Malformed(what) => write!(f, "malformed AMQP frame: {what}"),
            AmqpError::BadFieldType(t) => write!(f, "unknown AMQP field type 0x{t:02x}"),
            AmqpError::TableTooDeep => f.write_str("AMQP field tables nested too deep"),
            AmqpError::UnexpectedFrame(what) => write!(f, "unexpected AMQP frame: {what}"),
        }
    }
}

impl std::error::Error for AmqpError {}

/// A value in a field table (RabbitMQ's type letters: `t b B s u I i l f d
/// D S A T F V x`).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// `t`.
    Bool(bool),
    /// `b`.
    I8(i8),
    /// `B`.
    U8(u8),
    /// `s` (RabbitMQ's signed 16-bit integer).
    I16(i16),
    /// `u`.
    U16(u16),
    /// `I`.
    I32(i32),
    /// `i`.
    U32(u32),
    /// `l`.
    I64(i64),
    /// `f`.
    F32(f32),
    /// `d`.
    F64(f64),
    /// `D`: scale and unscaled value.
    Decimal(u8, u32),
    /// `S`: a long string (bytes).
    LongStr(Bytes),
    /// `A`.
    Array(Vec<FieldValue>),
    /// `T`: seconds since the epoch.
    Timestamp(u64),
    /// `F`.
    Table(FieldTable),
    /// `V`.
    Void,
    /// `x`.
    ByteArray(Bytes),
}

/// A field table: names and values, in wire order.
pub type FieldTable = Vec<(String, FieldValue)>;

/// The `basic` class's message properties (the ones this codec keeps;
/// the others are parsed and skipped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    /// `content-type`.
    pub content_type: Option<String>,
    /// `content-encoding`.
    pub content_encoding: Option<String>,
    /// `headers`.
    pub headers: Option<FieldTable>,
    /// `delivery-mode`: 1 transient, 2 persistent.
    pub delivery_mode: Option<u8>,
    /// `priority`.
    pub priority: Option<u8>,
    /// `message-id`.
    pub message_id: Option<String>,
}

/// A method the broker sends.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Method {
    /// `connection.start`.
    ConnectionStart {
        /// Protocol major version (0).
        version_major: u8,
        /// Protocol minor version (9).
        version_minor: u8,
        /// Product, version, capabilities...
        server_properties: FieldTable,
        /// Space-separated SASL mechanisms.
        mechanisms: Bytes,
        /// Space-separated locales.
        locales: Bytes,
    },
    /// `connection.secure`: a SASL challenge (PLAIN never gets one).
    ConnectionSecure,
    /// `connection.tune`.
    ConnectionTune {
        /// Highest channel number (0: no limit).
        channel_max: u16,
        /// Largest frame (0: no limit).
        frame_max: u32,
        /// Heartbeat interval in seconds (0: none).
        heartbeat: u16,
    },
    /// `connection.open-ok`.
    ConnectionOpenOk,
    /// `connection.close`: the broker closes the connection.
    ConnectionClose(CloseReason),
    /// `connection.close-ok`.
    ConnectionCloseOk,
    /// `connection.blocked` (RabbitMQ: publishes are held, e.g. low
    /// memory).
    ConnectionBlocked {
        /// Why.
        reason: String,
    },
    /// `connection.unblocked`.
    ConnectionUnblocked,
    /// `channel.open-ok`.
    ChannelOpenOk,
    /// `channel.flow`.
    ChannelFlow {
        /// Whether content may flow.
        active: bool,
    },
    /// `channel.flow-ok`.
    ChannelFlowOk,
    /// `channel.close`: the broker closes the channel (an error).
    ChannelClose(CloseReason),
    /// `channel.close-ok`.
    ChannelCloseOk,
    /// `exchange.declare-ok`.
    ExchangeDeclareOk,
    /// `queue.declare-ok`.
    QueueDeclareOk {
        /// The queue's name (server-chosen when asked with an empty one).
        queue: String,
        /// Messages ready.
        message_count: u32,
        /// Active consumers.
        consumer_count: u32,
    },
    /// `queue.bind-ok`.
    QueueBindOk,
    /// `queue.delete-ok`.
    QueueDeleteOk {
        /// Messages deleted with the queue.
        message_count: u32,
    },
    /// `basic.qos-ok`.
    BasicQosOk,
    /// `basic.consume-ok`.
    BasicConsumeOk {
        /// The consumer's tag.
        consumer_tag: String,
    },
    /// `basic.cancel`: the broker cancelled a consumer (its queue was
    /// deleted).
    BasicCancel {
        /// The consumer's tag.
        consumer_tag: String,
    },
    /// `basic.cancel-ok`.
    BasicCancelOk {
        /// The consumer's tag.
        consumer_tag: String,
    },
    /// `basic.deliver` (content follows; the decoder joins it, see
    /// [`Incoming::Content`]).
    BasicDeliver(Deliver),
    /// `basic.return`: an unroutable mandatory message (content follows).
    BasicReturn {
        /// Why.
        reply_code: u16,
        /// Why, in words.
        reply_text: String,
        /// The exchange it was published to.
        exchange: String,
        /// Its routing key.
        routing_key: String,
    },
    /// `basic.ack`: publisher confirm.
    BasicAck {
        /// The publish's sequence number.
        delivery_tag: u64,
        /// Every publish up to it.
        multiple: bool,
    },
    /// `basic.nack`: the broker could not take a publish.
    BasicNack {
        /// The publish's sequence number.
        delivery_tag: u64,
        /// Every publish up to it.
        multiple: bool,
    },
    /// `confirm.select-ok`.
    ConfirmSelectOk,
    /// A method this codec does not decode (its arguments are skipped).
    Other {
        /// Class id.
        class_id: u16,
        /// Method id.
        method_id: u16,
    },
}

/// Why a peer closes a connection or channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// AMQP reply code (200: normal; 320 connection forced, 403 access
    /// refused, 404 not found, 406 precondition failed...).
    pub reply_code: u16,
    /// The broker's explanation.
    pub reply_text: String,
    /// The class of the method that failed (0: none).
    pub class_id: u16,
    /// The method that failed (0: none).
    pub method_id: u16,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.reply_code, self.reply_text)?;
        if self.class_id != 0 {
            write!(f, " (method {}.{})", self.class_id, self.method_id)?;
        }
        Ok(())
    }
}

/// `basic.deliver`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    /// The consumer it is for.
    pub consumer_tag: String,
    /// What acknowledges it.
    pub delivery_tag: u64,
    /// Delivered before and not acknowledged.
    pub redelivered: bool,
    /// The exchange it was published to.
    pub exchange: String,
    /// Its routing key.
    pub routing_key: String,
}

/// One item decoded from the broker.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A method without content.
    Method {
        /// The channel (0: the connection).
        channel: u16,
        /// The method.
        method: Method,
    },
    /// A content-carrying method (`basic.deliver`, `basic.return`) with
    /// its properties and whole body.
    Content {
        /// The channel.
        channel: u16,
        /// The method.
        method: Method,
        /// The content header's properties.
        properties: Properties,
        /// The body.
        body: Bytes,
    },
    /// A message whose body exceeds [`AmqpLimits::max_message_bytes`]: its
    /// body was skipped, not buffered.
    Oversized {
        /// The channel.
        channel: u16,
        /// The method (acknowledge a delivery all the same).
        method: Method,
        /// The announced body size.
        size: u64,
    },
    /// A heartbeat frame.
    Heartbeat,
}

/// Content being assembled on a channel.
struct Pending {
    channel: u16,
    method: Method,
    /// Set once the header frame arrived.
    header: Option<(Properties, u64)>,
    body: BytesMut,
    /// Body bytes received so far (kept or skipped).
    received: u64,
    oversized: bool,
}

/// Decodes the broker's byte stream into [`Incoming`] items, under
/// [`AmqpLimits`].
pub struct AmqpDecoder {
    limits: AmqpLimits,
    buf: BytesMut,
    pending: Option<Pending>,
    error: Option<AmqpError>,
}

impl fmt::Debug for AmqpDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpDecoder")
            .field("limits", &self.limits)
            .field("buffered", &self.buf.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl AmqpDecoder {
    /// A decoder with these limits.
    pub fn new(limits: AmqpLimits) -> Self {
        AmqpDecoder {
            limits,
            buf: BytesMut::new(),
            pending: None,
            error: None,
        }
    }

    /// Change the largest frame accepted (after `connection.tune`).
    pub fn set_max_frame_size(&mut self, max: u32) {
        self.limits.max_frame_size = max;
    }

    /// The limits in force.
    pub fn limits(&self) -> AmqpLimits {
        self.limits
    }

    /// Bytes received and not decoded yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Append bytes read from the broker.
    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next item, `Ok(None)` when more bytes are needed. After an
    /// error every call returns it again.
    #[allow(clippy::should_implement_trait)] // fallible, unlike Iterator::next
    pub fn next(&mut self) -> Result<Option<Incoming>, AmqpError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.step() {
            Err(e) => {
                self.error = Some(e.clone());
                self.buf = BytesMut::new();
                self.pending = None;
                Err(e)
            }
            ok => ok,
        }
    }

    fn step(&mut self) -> Result<Option<Incoming>, AmqpError> {
        loop {
            if self.buf.len() >= 4 && &self.buf[..4] == b"AMQP" {
                if self.buf.len() < 8 {
                    return Ok(None);
                }
                let mut v = [0u8; 4];
                v.copy_from_slice(&self.buf[4..8]);
                return Err(AmqpError::ProtocolVersion(v));
            }
            if self.buf.len() < FRAME_HEADER {
                return Ok(None);
            }
            let kind = self.buf[0];
            if !matches!(
                kind,
                FRAME_METHOD | FRAME_HEADER_TYPE | FRAME_BODY | FRAME_HEARTBEAT
            ) {
                return Err(AmqpError::UnknownFrameType(kind));
            }
            let channel = u16::from_be_bytes([self.buf[1], self.buf[2]]);
            let size = u32::from_be_bytes([self.buf[3], self.buf[4], self.buf[5], self.buf[6]]);
            let total = size as u64 + FRAME_OVERHEAD as u64;
            if total > self.limits.max_frame_size as u64 {
                return Err(AmqpError::FrameTooLarge {
                    size: total,
                    limit: self.limits.max_frame_size,
                });
            }
            let total = total as usize;
            if self.buf.len() < total {
                // Room for the rest of the frame at once.
                self.buf.reserve(total - self.buf.len());
                return Ok(None);
            }
            let end = self.buf[total - 1];
            if end != FRAME_END {
                return Err(AmqpError::BadFrameEnd(end));
            }
            let mut frame = self.buf.split_to(total);
            frame.advance(FRAME_HEADER);
            frame.truncate(size as usize);
            let payload = frame.freeze();
            if let Some(item) = self.frame(kind, channel, payload)? {
                return Ok(Some(item));
            }
        }
    }

    fn frame(
        &mut self,
        kind: u8,
        channel: u16,
        payload: Bytes,
    ) -> Result<Option<Incoming>, AmqpError> {
        match kind {
            FRAME_HEARTBEAT => {
                if channel != 0 {
                    return Err(AmqpError::Malformed("heartbeat on a channel"));
                }
                Ok(Some(Incoming::Heartbeat))
            }
            FRAME_METHOD => {
                if self.pending.as_ref().is_some_and(|p| p.channel == channel) {
                    return Err(AmqpError::UnexpectedFrame("method before content ended"));
                }
                let method = decode_method(payload, self.limits.max_table_depth)?;
                let content =
                    matches!(method, Method::BasicDeliver(_) | Method::BasicReturn { .. });
                if !content {
                    return Ok(Some(Incoming::Method { channel, method }));
                }
                if self.pending.is_some() {
                    // Only one channel at a time carries content here.
                    return Err(AmqpError::UnexpectedFrame("interleaved content"));
                }
                self.pending = Some(Pending {
                    channel,
                    method,
                    header: None,
                    body: BytesMut::new(),
                    received: 0,
                    oversized: false,
                });
                Ok(None)
            }
            FRAME_HEADER_TYPE => {
                let max = self.limits.max_message_bytes;
                let depth = self.limits.max_table_depth;
                let Some(p) = self.pending.as_mut().filter(|p| p.channel == channel) else {
                    return Err(AmqpError::UnexpectedFrame("content header"));
                };
                if p.header.is_some() {
                    return Err(AmqpError::UnexpectedFrame("second content header"));
                }
                let mut r = Reader::new(payload, depth);
                let class = r.u16()?;
                let _weight = r.u16()?;
                let size = r.u64()?;
                if class != CLASS_BASIC {
                    return Err(AmqpError::Malformed("content header of a class not basic"));
                }
                let properties = r.properties()?;
                r.finish()?;
                p.oversized = size > max;
                if !p.oversized {
                    // Bounded by max_message_bytes.
                    p.body.reserve(size as usize);
                }
                p.header = Some((properties, size));
                self.complete()
            }
            _ => {
                let Some(p) = self
                    .pending
                    .as_mut()
                    .filter(|p| p.channel == channel && p.header.is_some())
                else {
                    return Err(AmqpError::UnexpectedFrame("content body"));
                };
                let size = p.header.as_ref().map_or(0, |h| h.1);
                p.received += payload.len() as u64;
                if p.received > size {
                    return Err(AmqpError::Malformed("body longer than announced"));
                }
                if !p.oversized {
                    p.body.extend_from_slice(&payload);
                }
                self.complete()
            }
        }
    }

    /// The pending content, if its body is whole.
    fn complete(&mut self) -> Result<Option<Incoming>, AmqpError> {
        let done = self
            .pending
            .as_ref()
            .is_some_and(|p| p.header.as_ref().is_some_and(|h| p.received == h.1));
        if !done {
            return Ok(None);
        }
        let Some(p) = self.pending.take() else {
            return Ok(None);
        };
        let Some((properties, size)) = p.header else {
            return Ok(None);
        };
        Ok(Some(if p.oversized {
            Incoming::Oversized {
                channel: p.channel,
                method: p.method,
                size,
            }
        } else {
            Incoming::Content {
                channel: p.channel,
                method: p.method,
                properties,
                body: p.body.freeze(),
            }
        }))
    }
}

/// Reads a frame's payload; every read checks the length.
struct Reader {
    data: Bytes,
    depth: usize,
    /// Bits left from the last octet of packed booleans.
    bits: Option<(u8, u8)>,
}

impl Reader {
    fn new(data: Bytes, depth: usize) -> Self {
        Reader {
            data,
            depth,
            bits: None,
        }
    }

    fn need(&mut self, n: usize) -> Result<(), AmqpError> {
        self.bits = None;
        if self.data.len() < n {
            return Err(AmqpError::Malformed("truncated arguments"));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, AmqpError> {
        self.need(1)?;
        Ok(self.data.get_u8())
    }

    fn u16(&mut self) -> Result<u16, AmqpError> {
        self.need(2)?;
        Ok(self.data.get_u16())
    }

    fn u32(&mut self) -> Result<u32, AmqpError> {
        self.need(4)?;
        Ok(self.data.get_u32())
    }

    fn u64(&mut self) -> Result<u64, AmqpError> {
        self.need(8)?;
        Ok(self.data.get_u64())
    }

    /// Consecutive bits share octets, lowest bit first.
    fn bit(&mut self) -> Result<bool, AmqpError> {
        let (octet, index) = match self.bits {
            Some((octet, index)) if index < 8 => (octet, index),
            _ => (self.u8()?, 0),
        };
        self.bits = Some((octet, index + 1));
        Ok(octet & (1 << index) != 0)
    }

    fn bytes(&mut self, n: usize) -> Result<Bytes, AmqpError> {
        self.need(n)?;
        Ok(self.data.split_to(n))
    }

    fn shortstr(&mut self) -> Result<String, AmqpError> {
        let n = self.u8()? as usize;
        let b = self.bytes(n)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    fn longstr(&mut self) -> Result<Bytes, AmqpError> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }

    fn table(&mut self) -> Result<FieldTable, AmqpError> {
        let n = self.u32()? as usize;
        let data = self.bytes(n)?;
        if self.depth == 0 {
            return Err(AmqpError::TableTooDeep);
        }
        let mut inner = Reader::new(data, self.depth - 1);
        let mut table = Vec::new();
        while !inner.data.is_empty() {
            let name = inner.shortstr()?;
            let value = inner.value()?;
            table.push((name, value));
        }
        Ok(table)
    }

    fn array(&mut self) -> Result<Vec<FieldValue>, AmqpError> {
        let n = self.u32()? as usize;
        let data = self.bytes(n)?;
        if self.depth == 0 {
            return Err(AmqpError::TableTooDeep);
        }
        let mut inner = Reader::new(data, self.depth - 1);
        let mut values = Vec::new();
        while !inner.data.is_empty() {
            values.push(inner.value()?);
        }
        Ok(values)
    }

    fn value(&mut self) -> Result<FieldValue, AmqpError> {
        Ok(match self.u8()? {
            b't' => FieldValue::Bool(self.u8()? != 0),
            b'b' => FieldValue::I8(self.u8()? as i8),
            b'B' => FieldValue::U8(self.u8()?),
            b's' => FieldValue::I16(self.u16()? as i16),
            b'u' => FieldValue::U16(self.u16()?),
            b'I' => FieldValue::I32(self.u32()? as i32),
            b'i' => FieldValue::U32(self.u32()?),
            b'l' => FieldValue::I64(self.u64()? as i64),
            b'f' => FieldValue::F32(f32::from_bits(self.u32()?)),
            b'd' => FieldValue::F64(f64::from_bits(self.u64()?)),
            b'D' => FieldValue::Decimal(self.u8()?, self.u32()?),
            b'S' => FieldValue::LongStr(self.longstr()?),
            b'A' => FieldValue::Array(self.array()?),
            b'T' => FieldValue::Timestamp(self.u64()?),
            b'F' => FieldValue::Table(self.table()?),
            b'V' => FieldValue::Void,
            b'x' => FieldValue::ByteArray(self.longstr()?),
            t => return Err(AmqpError::BadFieldType(t)),
        })
    }

    fn properties(&mut self) -> Result<Properties, AmqpError> {
        let flags = self.u16()?;
        if flags & 1 != 0 {
            return Err(AmqpError::Malformed("continued property flags"));
        }
        let has = |bit: u16| flags & (1 << bit) != 0;
        let mut p = Properties::default();
        if has(15) {
            p.content_type = Some(self.shortstr()?);
        }
        if has(14) {
            p.content_encoding = Some(self.shortstr()?);
        }
        if has(13) {
            p.headers = Some(self.table()?);
        }
        if has(12) {
            p.delivery_mode = Some(self.u8()?);
        }
        if has(11) {
            p.priority = Some(self.u8()?);
        }
        // correlation-id, reply-to, expiration, message-id.
        for bit in [10, 9, 8] {
            if has(bit) {
                self.shortstr()?;
            }
        }
        if has(7) {
            p.message_id = Some(self.shortstr()?);
        }
        if has(6) {
            self.u64()?; // timestamp
        }
        // type, user-id, app-id, cluster-id.
        for bit in [5, 4, 3, 2] {
            if has(bit) {
                self.shortstr()?;
            }
        }
        Ok(p)
    }

    fn close_reason(&mut self) -> Result<CloseReason, AmqpError> {
        Ok(CloseReason {
            reply_code: self.u16()?,
            reply_text: self.shortstr()?,
            class_id: self.u16()?,
            method_id: self.u16()?,
        })
    }

    /// Every argument read: trailing bytes are an error.
    fn finish(&self) -> Result<(), AmqpError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(AmqpError::Malformed("trailing bytes"))
        }
    }
}

fn decode_method(payload: Bytes, depth: usize) -> Result<Method, AmqpError> {
    let mut r = Reader::new(payload, depth);
    let class_id = r.u16()?;
    let method_id = r.u16()?;
    let method = match (class_id, method_id) {
        (10, 10) => Method::ConnectionStart {
            version_major: r.u8()?,
            version_minor: r.u8()?,
            server_properties: r.table()?,
            mechanisms: r.longstr()?,
            locales: r.longstr()?,
        },
        (10, 20) => {
            r.longstr()?;
            Method::ConnectionSecure
        }
        (10, 30) => Method::ConnectionTune {
            channel_max: r.u16()?,
            frame_max: r.u32()?,
            heartbeat: r.u16()?,
        },
        (10, 41) => {
            r.shortstr()?; // reserved
            Method::ConnectionOpenOk
        }
        (10, 50) => Method::ConnectionClose(r.close_reason()?),
        (10, 51) => Method::ConnectionCloseOk,
        (10, 60) => Method::ConnectionBlocked {
            reason: r.shortstr()?,
        },
        (10, 61) => Method::ConnectionUnblocked,
        (20, 11) => {
            r.longstr()?; // reserved
            Method::ChannelOpenOk
        }
        (20, 20) => Method::ChannelFlow { active: r.bit()? },
        (20, 21) => {
            r.bit()?;
            Method::ChannelFlowOk
        }
        (20, 40) => Method::ChannelClose(r.close_reason()?),
        (20, 41) => Method::ChannelCloseOk,
        (40, 11) => Method::ExchangeDeclareOk,
        (50, 11) => Method::QueueDeclareOk {
            queue: r.shortstr()?,
            message_count: r.u32()?,
            consumer_count: r.u32()?,
        },
        (50, 21) => Method::QueueBindOk,
        (50, 41) => Method::QueueDeleteOk {
            message_count: r.u32()?,
        },
        (60, 11) => Method::BasicQosOk,
        (60, 21) => Method::BasicConsumeOk {
            consumer_tag: r.shortstr()?,
        },
        (60, 30) => {
            let consumer_tag = r.shortstr()?;
            r.bit()?; // no-wait
            Method::BasicCancel { consumer_tag }
        }
        (60, 31) => Method::BasicCancelOk {
            consumer_tag: r.shortstr()?,
        },
        (60, 50) => Method::BasicReturn {
            reply_code: r.u16()?,
            reply_text: r.shortstr()?,
            exchange: r.shortstr()?,
            routing_key: r.shortstr()?,
        },
        (60, 60) => {
            let consumer_tag = r.shortstr()?;
            let delivery_tag = r.u64()?;
            let redelivered = r.bit()?;
            Method::BasicDeliver(Deliver {
                consumer_tag,
                delivery_tag,
                redelivered,
                exchange: r.shortstr()?,
                routing_key: r.shortstr()?,
            })
        }
        (60, 80) => Method::BasicAck {
            delivery_tag: r.u64()?,
            multiple: r.bit()?,
        },
        (60, 120) => {
            let delivery_tag = r.u64()?;
            let multiple = r.bit()?;
            r.bit()?; // requeue
            Method::BasicNack {
                delivery_tag,
                multiple,
            }
        }
        (85, 11) => Method::ConfirmSelectOk,
        _ => {
            return Ok(Method::Other {
                class_id,
                method_id,
            })
        }
    };
    r.finish()?;
    Ok(method)
}

// ---- Encoding (client to broker) ----

/// A method a client sends.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientMethod<'a> {
    /// `connection.start-ok`.
    ConnectionStartOk {
        /// Product, version, capabilities...
        client_properties: &'a FieldTable,
        /// SASL mechanism (`PLAIN`).
        mechanism: &'a str,
        /// SASL response (`\0user\0password` for `PLAIN`).
        response: &'a [u8],
        /// Locale (`en_US`).
        locale: &'a str,
    },
    /// `connection.tune-ok`.
    ConnectionTuneOk {
        /// Highest channel number used.
        channel_max: u16,
        /// Largest frame.
        frame_max: u32,
        /// Heartbeat interval in seconds.
        heartbeat: u16,
    },
    /// `connection.open`.
    ConnectionOpen {
        /// Virtual host.
        vhost: &'a str,
    },
    /// `connection.close`.
    ConnectionClose(&'a CloseReason),
    /// `connection.close-ok`.
    ConnectionCloseOk,
    /// `channel.open`.
    ChannelOpen,
    /// `channel.flow-ok`.
    ChannelFlowOk {
        /// As asked.
        active: bool,
    },
    /// `channel.close-ok`.
    ChannelCloseOk,
    /// `exchange.declare` (not passive, waits for `declare-ok`).
    ExchangeDeclare {
        /// Name.
        exchange: &'a str,
        /// `fanout`, `direct`, `topic`, `headers`.
        kind: &'a str,
        /// Survives a broker restart.
        durable: bool,
        /// Deleted when its last queue is unbound.
        auto_delete: bool,
        /// Arguments.
        arguments: &'a FieldTable,
    },
    /// `queue.declare` (not passive, waits for `declare-ok`).
    QueueDeclare {
        /// Name (empty: the broker names it).
        queue: &'a str,
        /// Survives a broker restart.
        durable: bool,
        /// Only this connection uses it; deleted with it.
        exclusive: bool,
        /// Deleted when its last consumer goes.
        auto_delete: bool,
        /// Arguments (`x-expires`...).
        arguments: &'a FieldTable,
    },
    /// `queue.bind` (waits for `bind-ok`).
    QueueBind {
        /// Queue.
        queue: &'a str,
        /// Exchange.
        exchange: &'a str,
        /// Binding key.
        routing_key: &'a str,
        /// Arguments.
        arguments: &'a FieldTable,
    },
    /// `queue.delete` (waits for `delete-ok`).
    QueueDelete {
        /// Queue.
        queue: &'a str,
    },
    /// `basic.qos`: at most `prefetch_count` unacknowledged deliveries on
    /// the channel.
    BasicQos {
        /// Deliveries in flight.
        prefetch_count: u16,
    },
    /// `basic.consume` (waits for `consume-ok`).
    BasicConsume {
        /// Queue.
        queue: &'a str,
        /// Consumer tag (empty: the broker picks one).
        consumer_tag: &'a str,
        /// No acknowledgements.
        no_ack: bool,
        /// Arguments.
        arguments: &'a FieldTable,
    },
    /// `basic.cancel` (waits for `cancel-ok`).
    BasicCancel {
        /// Consumer tag.
        consumer_tag: &'a str,
    },
    /// `basic.ack` of a delivery.
    BasicAck {
        /// Delivery tag.
        delivery_tag: u64,
        /// Every delivery up to it.
        multiple: bool,
    },
    /// `confirm.select`: publisher confirms on the channel.
    ConfirmSelect,
}

/// Start a frame; returns where its payload starts.
fn begin(out: &mut BytesMut, kind: u8, channel: u16) -> usize {
    out.put_u8(kind);
    out.put_u16(channel);
    out.put_u32(0);
    out.len()
}

/// Fill in the size and end the frame.
fn end(out: &mut BytesMut, start: usize) {
    let size = (out.len() - start) as u32;
    out[start - 4..start].copy_from_slice(&size.to_be_bytes());
    out.put_u8(FRAME_END);
}

/// A short string is at most 255 bytes: longer ones are cut at a UTF-8
/// boundary (callers validate names first).
fn put_shortstr(out: &mut BytesMut, s: &str) {
    let mut n = s.len().min(255);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    out.put_u8(n as u8);
    out.put_slice(&s.as_bytes()[..n]);
}

fn put_longstr(out: &mut BytesMut, b: &[u8]) {
    out.put_u32(b.len() as u32);
    out.put_slice(b);
}

fn put_bits(out: &mut BytesMut, bits: &[bool]) {
    let mut octet = 0u8;
    for (i, b) in bits.iter().enumerate() {
        if *b {
            octet |= 1 << i;
        }
    }
    out.put_u8(octet);
}

/// Append a field table.
pub fn put_table(out: &mut BytesMut, table: &FieldTable) {
    let at = out.len();
    out.put_u32(0);
    for (name, value) in table {
        put_shortstr(out, name);
        put_value(out, value);
    }
    let size = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
}

fn put_value(out: &mut BytesMut, value: &FieldValue) {
    match value {
        FieldValue::Bool(b) => {
            out.put_u8(b't');
            out.put_u8(*b as u8);
        }
        FieldValue::I8(v) => {
            out.put_u8(b'b');
            out.put_i8(*v);
        }
        FieldValue::U8(v) => {
            out.put_u8(b'B');
            out.put_u8(*v);
        }
        FieldValue::I16(v) => {
            out.put_u8(b's');
            out.put_i16(*v);
        }
        FieldValue::U16(v) => {
            out.put_u8(b'u');
            out.put_u16(*v);
        }
        FieldValue::I32(v) => {
            out.put_u8(b'I');
            out.put_i32(*v);
        }
        FieldValue::U32(v) => {
            out.put_u8(b'i');
            out.put_u32(*v);
        }
        FieldValue::I64(v) => {
            out.put_u8(b'l');
            out.put_i64(*v);
        }
        FieldValue::F32(v) => {
            out.put_u8(b'f');
            out.put_f32(*v);
        }
        FieldValue::F64(v) => {
            out.put_u8(b'd');
            out.put_f64(*v);
        }
        FieldValue::Decimal(scale, v) => {
            out.put_u8(b'D');
            out.put_u8(*scale);
            out.put_u32(*v);
        }
        FieldValue::LongStr(b) => {
            out.put_u8(b'S');
            put_longstr(out, b);
        }
        FieldValue::Array(values) => {
            out.put_u8(b'A');
            let at = out.len();
            out.put_u32(0);
            for v in values {
                put_value(out, v);
            }
            let size = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&size.to_be_bytes());
        }
        FieldValue::Timestamp(v) => {
            out.put_u8(b'T');
            out.put_u64(*v);
        }
        FieldValue::Table(t) => {
            out.put_u8(b'F');
            put_table(out, t);
        }
        FieldValue::Void => out.put_u8(b'V'),
        FieldValue::ByteArray(b) => {
            out.put_u8(b'x');
            put_longstr(out, b);
        }
    }
}

/// Append the protocol header.
pub fn encode_protocol_header(out: &mut BytesMut) {
    out.put_slice(PROTOCOL_HEADER);
}

/// Append a heartbeat frame.
pub fn encode_heartbeat(out: &mut BytesMut) {
    let start = begin(out, FRAME_HEARTBEAT, 0);
    end(out, start);
}

/// Append one method frame on `channel`.
pub fn encode_method(out: &mut BytesMut, channel: u16, method: &ClientMethod<'_>) {
    let start = begin(out, FRAME_METHOD, channel);
    let ids = |out: &mut BytesMut, class: u16, method: u16| {
        out.put_u16(class);
        out.put_u16(method);
    };
    match method {
        ClientMethod::ConnectionStartOk {
            client_properties,
            mechanism,
            response,
            locale,
        } => {
            ids(out, 10, 11);
            put_table(out, client_properties);
            put_shortstr(out, mechanism);
            put_longstr(out, response);
            put_shortstr(out, locale);
        }
        ClientMethod::ConnectionTuneOk {
            channel_max,
            frame_max,
            heartbeat,
        } => {
            ids(out, 10, 31);
            out.put_u16(*channel_max);
            out.put_u32(*frame_max);
            out.put_u16(*heartbeat);
        }
        ClientMethod::ConnectionOpen { vhost } => {
            ids(out, 10, 40);
            put_shortstr(out, vhost);
            put_shortstr(out, ""); // reserved
            put_bits(out, &[false]); // reserved
        }
        ClientMethod::ConnectionClose(reason) => {
            ids(out, 10, 50);
            out.put_u16(reason.reply_code);
            put_shortstr(out, &reason.reply_text);
            out.put_u16(reason.class_id);
            out.put_u16(reason.method_id);
        }
        ClientMethod::ConnectionCloseOk => ids(out, 10, 51),
        ClientMethod::ChannelOpen => {
            ids(out, 20, 10);
            put_shortstr(out, ""); // reserved
        }
        ClientMethod::ChannelFlowOk { active } => {
            ids(out, 20, 21);
            put_bits(out, &[*active]);
        }
        ClientMethod::ChannelCloseOk => ids(out, 20, 41),
        ClientMethod::ExchangeDeclare {
            exchange,
            kind,
            durable,
            auto_delete,
            arguments,
        } => {
            ids(out, 40, 10);
            out.put_u16(0); // reserved
            put_shortstr(out, exchange);
            put_shortstr(out, kind);
            // passive, durable, auto-delete, internal, no-wait
            put_bits(out, &[false, *durable, *auto_delete, false, false]);
            put_table(out, arguments);
        }
        ClientMethod::QueueDeclare {
            queue,
            durable,
            exclusive,
            auto_delete,
            arguments,
        } => {
            ids(out, 50, 10);
            out.put_u16(0);
            put_shortstr(out, queue);
            // passive, durable, exclusive, auto-delete, no-wait
            put_bits(out, &[false, *durable, *exclusive, *auto_delete, false]);
            put_table(out, arguments);
        }
        ClientMethod::QueueBind {
            queue,
            exchange,
            routing_key,
            arguments,
        } => {
            ids(out, 50, 20);
            out.put_u16(0);
            put_shortstr(out, queue);
            put_shortstr(out, exchange);
            put_shortstr(out, routing_key);
            put_bits(out, &[false]); // no-wait
            put_table(out, arguments);
        }
        ClientMethod::QueueDelete { queue } => {
            ids(out, 50, 40);
            out.put_u16(0);
            put_shortstr(out, queue);
            // if-unused, if-empty, no-wait
            put_bits(out, &[false, false, false]);
        }
        ClientMethod::BasicQos { prefetch_count } => {
            ids(out, 60, 10);
            out.put_u32(0); // prefetch-size: no limit
            out.put_u16(*prefetch_count);
            put_bits(out, &[false]); // global
        }
        ClientMethod::BasicConsume {
            queue,
            consumer_tag,
            no_ack,
            arguments,
        } => {
            ids(out, 60, 20);
            out.put_u16(0);
            put_shortstr(out, queue);
            put_shortstr(out, consumer_tag);
            // no-local, no-ack, exclusive, no-wait
            put_bits(out, &[false, *no_ack, false, false]);
            put_table(out, arguments);
        }
        ClientMethod::BasicCancel { consumer_tag } => {
            ids(out, 60, 30);
            put_shortstr(out, consumer_tag);
            put_bits(out, &[false]);
        }
        ClientMethod::BasicAck {
            delivery_tag,
            multiple,
        } => {
            ids(out, 60, 80);
            out.put_u64(*delivery_tag);
            put_bits(out, &[*multiple]);
        }
        ClientMethod::ConfirmSelect => {
            ids(out, 85, 10);
            put_bits(out, &[false]); // no-wait
        }
    }
    end(out, start);
}

/// Bytes [`encode_publish`] appends for a body of `body_len` bytes.
pub fn publish_len(
    exchange: &str,
    routing_key: &str,
    properties: &Properties,
    body_len: usize,
    frame_max: u32,
) -> usize {
    let mut probe = BytesMut::new();
    encode_publish(
        &mut probe,
        1,
        exchange,
        routing_key,
        properties,
        &[],
        frame_max,
    );
    let per_frame = body_frame_capacity(frame_max);
    probe.len() + body_len + body_len.div_ceil(per_frame) * FRAME_OVERHEAD
}

fn body_frame_capacity(frame_max: u32) -> usize {
    let max = if frame_max == 0 {
        u32::MAX as usize
    } else {
        frame_max.max(FRAME_MIN_SIZE) as usize
    };
    max - FRAME_OVERHEAD
}

/// Append `basic.publish` with its content header and body frames (split
/// to fit `frame_max`; 0 means no limit).
pub fn encode_publish(
    out: &mut BytesMut,
    channel: u16,
    exchange: &str,
    routing_key: &str,
    properties: &Properties,
    body: &[u8],
    frame_max: u32,
) {
    let start = begin(out, FRAME_METHOD, channel);
    out.put_u16(60);
    out.put_u16(40);
    out.put_u16(0); // reserved
    put_shortstr(out, exchange);
    put_shortstr(out, routing_key);
    put_bits(out, &[false, false]); // mandatory, immediate
    end(out, start);

    let start = begin(out, FRAME_HEADER_TYPE, channel);
    out.put_u16(CLASS_BASIC);
    out.put_u16(0); // weight
    out.put_u64(body.len() as u64);
    let p = properties;
    let mut flags = 0u16;
    for (bit, present) in [
        (15, p.content_type.is_some()),
        (14, p.content_encoding.is_some()),
        (13, p.headers.is_some()),
        (12, p.delivery_mode.is_some()),
        (11, p.priority.is_some()),
        (7, p.message_id.is_some()),
    ] {
        if present {
            flags |= 1 << bit;
        }
    }
    out.put_u16(flags);
    if let Some(v) = &p.content_type {
        put_shortstr(out, v);
    }
    if let Some(v) = &p.content_encoding {
        put_shortstr(out, v);
    }
    if let Some(v) = &p.headers {
        put_table(out, v);
    }
    if let Some(v) = p.delivery_mode {
        out.put_u8(v);
    }
    if let Some(v) = p.priority {
        out.put_u8(v);
    }
    if let Some(v) = &p.message_id {
        put_shortstr(out, v);
    }
    end(out, start);

    for chunk in body.chunks(body_frame_capacity(frame_max)) {
        let start = begin(out, FRAME_BODY, channel);
        out.put_slice(chunk);
        end(out, start);
    }
}

/// Server-side frames, for tests of clients (a fake broker) and of this
/// decoder.
pub mod broker {
    use super::*;

    /// A method frame with raw arguments.
    pub fn method(out: &mut BytesMut, channel: u16, class: u16, method: u16, args: &[u8]) {
        let start = begin(out, FRAME_METHOD, channel);
        out.put_u16(class);
        out.put_u16(method);
        out.put_slice(args);
        end(out, start);
    }

    /// `connection.start` offering `PLAIN`.
    pub fn connection_start(out: &mut BytesMut) {
        let mut args = BytesMut::new();
        args.put_u8(0);
        args.put_u8(9);
        let props = vec![(
            "product".to_string(),
            FieldValue::LongStr(Bytes::from_static(b"fake")),
        )];
        put_table(&mut args, &props);
        put_longstr(&mut args, b"PLAIN AMQPLAIN");
        put_longstr(&mut args, b"en_US");
        method(out, 0, 10, 10, &args);
    }

    /// `connection.tune`.
    pub fn connection_tune(out: &mut BytesMut, channel_max: u16, frame_max: u32, heartbeat: u16) {
        let mut args = BytesMut::new();
        args.put_u16(channel_max);
        args.put_u32(frame_max);
        args.put_u16(heartbeat);
        method(out, 0, 10, 30, &args);
    }

    /// `basic.deliver` with its content, the body in frames of at most
    /// `chunk` bytes.
    pub fn deliver(
        out: &mut BytesMut,
        channel: u16,
        delivery_tag: u64,
        exchange: &str,
        body: &[u8],
        chunk: usize,
    ) {
        let mut args = BytesMut::new();
        put_shortstr(&mut args, "ctag");
        args.put_u64(delivery_tag);
        put_bits(&mut args, &[false]);
        put_shortstr(&mut args, exchange);
        put_shortstr(&mut args, "");
        method(out, channel, 60, 60, &args);
        let start = begin(out, FRAME_HEADER_TYPE, channel);
        out.put_u16(CLASS_BASIC);
        out.put_u16(0);
        out.put_u64(body.len() as u64);
        out.put_u16(1 << 15 | 1 << 12);
        put_shortstr(out, "text/plain");
        out.put_u8(2);
        end(out, start);
        for c in body.chunks(chunk.max(1)) {
            let start = begin(out, FRAME_BODY, channel);
            out.put_slice(c);
            end(out, start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(data: &[u8], limits: AmqpLimits) -> Result<Vec<Incoming>, AmqpError> {
        let mut d = AmqpDecoder::new(limits);
        let mut items = Vec::new();
        // Byte by byte: every split point.
        for b in data {
            d.feed(&[*b]);
            while let Some(item) = d.next()? {
                items.push(item);
            }
        }
        Ok(items)
    }

    #[test]
    fn start_tune_and_heartbeat() {
        let mut out = BytesMut::new();
        broker::connection_start(&mut out);
        broker::connection_tune(&mut out, 2047, 131072, 60);
        encode_heartbeat(&mut out);
        let items = decode_all(&out, AmqpLimits::default()).unwrap();
        assert_eq!(items.len(), 3);
        match &items[0] {
            Incoming::Method {
                channel: 0,
                method:
                    Method::ConnectionStart {
                        version_minor: 9,
                        server_properties,
                        mechanisms,
                        ..
                    },
            } => {
                assert_eq!(&mechanisms[..], b"PLAIN AMQPLAIN");
                assert_eq!(server_properties[0].0, "product");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            items[1],
            Incoming::Method {
                channel: 0,
                method: Method::ConnectionTune {
                    channel_max: 2047,
                    frame_max: 131072,
                    heartbeat: 60
                }
            }
        );
        assert_eq!(items[2], Incoming::Heartbeat);
    }

    #[test]
    fn publish_roundtrips_as_a_delivery_shape() {
        // What we publish decodes (as content) with its properties.
        let props = Properties {
            content_type: Some("text/plain".into()),
            content_encoding: Some("utf-8".into()),
            headers: Some(vec![]),
            delivery_mode: Some(2),
            priority: Some(0),
            message_id: None,
        };
        let body = vec![b'x'; 10_000];
        let mut out = BytesMut::new();
        encode_publish(&mut out, 1, "socketio", "", &props, &body, 4096);
        assert_eq!(
            out.len(),
            publish_len("socketio", "", &props, body.len(), 4096)
        );
        // The method is basic.publish (not decoded as broker input), so
        // check the frames: a method, a header, three bodies.
        let mut frames = 0;
        let mut rest = &out[..];
        let mut body_back = Vec::new();
        while !rest.is_empty() {
            let size = u32::from_be_bytes([rest[3], rest[4], rest[5], rest[6]]) as usize;
            assert!(size + 8 <= 4096);
            assert_eq!(rest[7 + size], FRAME_END);
            if rest[0] == FRAME_HEADER_TYPE {
                let mut r = Reader::new(Bytes::copy_from_slice(&rest[7..7 + size]), 4);
                assert_eq!(r.u16().unwrap(), 60);
                r.u16().unwrap();
                assert_eq!(r.u64().unwrap(), 10_000);
                assert_eq!(r.properties().unwrap(), props);
            }
            if rest[0] == FRAME_BODY {
                body_back.extend_from_slice(&rest[7..7 + size]);
            }
            rest = &rest[8 + size..];
            frames += 1;
        }
        assert_eq!(frames, 5);
        assert_eq!(body_back, body);
    }

    #[test]
    fn deliveries_are_joined_and_oversized_ones_skipped() {
        let mut out = BytesMut::new();
        broker::deliver(&mut out, 1, 7, "socketio", b"{\"method\":\"emit\"}", 5);
        encode_heartbeat(&mut out);
        broker::deliver(&mut out, 1, 8, "socketio", &[b'y'; 100], 30);
        let limits = AmqpLimits {
            max_message_bytes: 50,
            ..AmqpLimits::default()
        };
        let items = decode_all(&out, limits).unwrap();
        assert_eq!(items.len(), 3);
        match &items[0] {
            Incoming::Content {
                channel: 1,
                method: Method::BasicDeliver(d),
                properties,
                body,
            } => {
                assert_eq!(d.delivery_tag, 7);
                assert_eq!(d.exchange, "socketio");
                assert_eq!(properties.content_type.as_deref(), Some("text/plain"));
                assert_eq!(&body[..], b"{\"method\":\"emit\"}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(items[1], Incoming::Heartbeat);
        assert!(matches!(
            &items[2],
            Incoming::Oversized { size: 100, method: Method::BasicDeliver(d), .. } if d.delivery_tag == 8
        ));
    }

    #[test]
    fn hostile_frames_are_typed_errors_that_stay() {
        let cases: Vec<(Vec<u8>, AmqpError)> = vec![
            (
                b"AMQP\x00\x00\x09\x00".to_vec(),
                AmqpError::ProtocolVersion([0, 0, 9, 0]),
            ),
            (b"-ERR nope\r\n".to_vec(), AmqpError::UnknownFrameType(b'-')),
            (
                vec![1, 0, 0, 0xff, 0xff, 0xff, 0xff],
                AmqpError::FrameTooLarge {
                    size: 0xffff_ffff + 8,
                    limit: 4096,
                },
            ),
            (
                vec![8, 0, 0, 0, 0, 0, 0, 0xAB],
                AmqpError::BadFrameEnd(0xAB),
            ),
            (
                vec![1, 0, 0, 0, 0, 0, 2, 0, 10, FRAME_END],
                AmqpError::Malformed("truncated arguments"),
            ),
            (
                vec![3, 0, 1, 0, 0, 0, 1, b'x', FRAME_END],
                AmqpError::UnexpectedFrame("content body"),
            ),
        ];
        let limits = AmqpLimits {
            max_frame_size: 4096,
            ..AmqpLimits::default()
        };
        for (input, want) in cases {
            let mut d = AmqpDecoder::new(limits);
            d.feed(&input);
            assert_eq!(d.next(), Err(want.clone()), "{input:?}");
            assert_eq!(d.next(), Err(want));
        }
    }

    #[test]
    fn tables_roundtrip_and_depth_is_bounded() {
        let table: FieldTable = vec![
            ("a".into(), FieldValue::Bool(true)),
            ("b".into(), FieldValue::I32(300000)),
            ("c".into(), FieldValue::LongStr(Bytes::from_static(b"x"))),
            (
                "d".into(),
                FieldValue::Array(vec![FieldValue::I64(-1), FieldValue::Void]),
            ),
            (
                "e".into(),
                FieldValue::Table(vec![("f".into(), FieldValue::F64(1.5))]),
            ),
            ("g".into(), FieldValue::Decimal(2, 12345)),
            ("h".into(), FieldValue::Timestamp(7)),
            ("i".into(), FieldValue::I16(-2)),
            ("j".into(), FieldValue::U32(9)),
        ];
        let mut out = BytesMut::new();
        put_table(&mut out, &table);
        let mut r = Reader::new(out.clone().freeze(), 4);
        assert_eq!(r.table().unwrap(), table);
        let mut r = Reader::new(out.freeze(), 1);
        assert_eq!(r.table(), Err(AmqpError::TableTooDeep));
    }

    #[test]
    fn client_methods_frame_correctly() {
        let args: FieldTable = vec![("x-expires".into(), FieldValue::I32(300000))];
        let mut out = BytesMut::new();
        encode_method(
            &mut out,
            1,
            &ClientMethod::QueueDeclare {
                queue: "q",
                durable: false,
                exclusive: false,
                auto_delete: false,
                arguments: &args,
            },
        );
        assert_eq!(&out[..3], &[1, 0, 1]);
        let size = u32::from_be_bytes([out[3], out[4], out[5], out[6]]) as usize;
        assert_eq!(out.len(), size + 8);
        assert_eq!(out[out.len() - 1], FRAME_END);
        // class 50, method 10, reserved 0, "q", bits 0.
        assert_eq!(&out[7..15], &[0, 50, 0, 10, 0, 0, 1, b'q']);
        assert_eq!(out[15], 0);
    }
}
