//! Several servers acting as one: what crosses the message bus between
//! nodes, sans-IO.
//!
//! A node's [`crate::socket::Server`] produces [`BusCommand`]s (subscribe
//! to a channel, publish bytes on one, count a channel's subscribers;
//! append to, follow and read a stream; set and take a key) and takes
//! [`BusInput`]s (a message arrived, a count answered, a stream entry was
//! appended or read, a key was taken, the link went down or came back). A backend (Redis, AMQP, ...) only carries bytes: it
//! never looks inside a message. The message formats live here, byte-exact
//! with the references:
//! - [`python`]: python-socketio 5's pub/sub JSON (`PubSubManager`), the
//!   same on every python backend (Redis, AMQP, Kafka, ZeroMQ);
//! - [`node`]: `@socket.io/redis-adapter` 8.3 (classic and sharded),
//!   `@socket.io/redis-emitter` 5.1 and `@socket.io/redis-streams-adapter`
//!   0.3 ([`node::streams`]), MessagePack and JSON;
//! - [`kafka`]: the subset of the Kafka protocol the Kafka backend
//!   speaks (produce, fetch, metadata, offsets), with limits;
//! - [`resp`]: the Redis wire protocol (RESP2/RESP3) the Redis backend
//!   speaks, as a codec with limits;
//! - [`amqp`]: AMQP 0-9-1 framing (RabbitMQ) the AMQP backend speaks, as a
//!   codec with limits;
//! - [`zmtp`]: ZMTP 3.x, ZeroMQ's wire protocol, for the ZeroMQ backend's
//!   PUSH and SUB connections (python's envelope is [`python::zmq`]).
//!
//! Every decoder takes bytes from a peer that may be hostile: each size
//! has a limit ([`BusLimits`]) and a bad message is a typed error, never a
//! panic.

pub mod amqp;
pub mod kafka;
pub mod node;
pub mod python;
pub mod resp;
pub mod zmtp;

use std::time::Duration;

use crate::{Bytes, Str};

/// The field/value pairs of a stream entry, in order (Redis stream fields
/// are binary-safe strings; a field may repeat).
pub type StreamFields = Vec<(Bytes, Bytes)>;

/// One entry of a stream (a Redis stream: `XADD`, `XREAD`, `XRANGE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Its id, as the broker wrote it (`<milliseconds>-<sequence>` for
    /// Redis); ids grow along the stream.
    pub id: Str,
    /// Its fields.
    pub fields: StreamFields,
}

/// How a channel is subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    /// `SUBSCRIBE channel`.
    Plain,
    /// `PSUBSCRIBE pattern` (glob-style).
    Pattern,
    /// `SSUBSCRIBE channel` (Redis 7 sharded pub/sub).
    Sharded,
}

/// What a node asks of its bus backend, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusCommand {
    /// Receive the messages of `channel` from now on (and again after every
    /// reconnection of the backend).
    Subscribe {
        /// Channel name, or glob pattern for [`ChannelKind::Pattern`].
        channel: Str,
        /// How to subscribe.
        kind: ChannelKind,
    },
    /// Stop receiving `channel`.
    Unsubscribe {
        /// Channel name or pattern, as subscribed.
        channel: Str,
        /// How it was subscribed.
        kind: ChannelKind,
    },
    /// Publish `payload` on `channel` (`SPUBLISH` when `sharded`).
    Publish {
        /// Channel name.
        channel: Str,
        /// The message, opaque to the backend.
        payload: Bytes,
        /// Sharded pub/sub (Redis 7).
        sharded: bool,
    },
    /// How many nodes listen on `channel` (`PUBSUB NUMSUB` /
    /// `PUBSUB SHARDNUMSUB`); answer with [`BusInput::Subscribers`].
    CountSubscribers {
        /// Channel name.
        channel: Str,
        /// Sharded pub/sub.
        sharded: bool,
    },
    /// Append an entry to `stream` (`XADD stream [MAXLEN ~ n] * f v ..`);
    /// answer with [`BusInput::StreamAppended`] carrying `token`, always
    /// (with no id when the entry was not, or may not have been, added).
    StreamAppend {
        /// The stream (a Redis key).
        stream: Str,
        /// The entry's fields, in order.
        fields: StreamFields,
        /// Trim the stream to about this many entries (`MAXLEN ~`).
        max_len: Option<u64>,
        /// Names the answer.
        token: u64,
    },
    /// Report every entry appended to `stream` after `from` as a
    /// [`BusInput::StreamEntry`], in order, from now on and across
    /// reconnections (resuming after the last entry reported, so none is
    /// skipped or repeated while it is still in the stream). `from: None`
    /// means entries appended after this command, as `XREAD .. $` does.
    /// Following a stream already followed changes nothing.
    StreamFollow {
        /// The stream.
        stream: Str,
        /// The id after which to start, or `None` for new entries only.
        from: Option<Str>,
    },
    /// Stop reporting the entries of `stream`.
    StreamUnfollow {
        /// The stream.
        stream: Str,
    },
    /// Read the entries of `stream` from `start` to `end`, both included
    /// (`XRANGE stream start end [COUNT n]`; `-` and `+` are the first and
    /// the last entry); answer with [`BusInput::StreamRange`].
    StreamRange {
        /// The stream.
        stream: Str,
        /// First id (inclusive), or `-`.
        start: Str,
        /// Last id (inclusive), or `+`.
        end: Str,
        /// Most entries to return (`COUNT`); without it the broker's
        /// reply is bounded only by the backend's limits.
        count: Option<u64>,
        /// Names the answer.
        token: u64,
    },
    /// Store `value` under `key` (`SET key value [PX ttl]`), replacing
    /// any value; no answer.
    SetKey {
        /// The key.
        key: Str,
        /// The value.
        value: Bytes,
        /// Expire the key after this long (millisecond precision).
        ttl: Option<Duration>,
    },
    /// Read and delete `key` at once (`GETDEL`, or `GET` and `DEL` in one
    /// `MULTI`/`EXEC` for older brokers); answer with
    /// [`BusInput::KeyTaken`].
    TakeKey {
        /// The key.
        key: Str,
        /// Names the answer.
        token: u64,
    },
}

/// What a bus backend tells the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusInput {
    /// A message arrived on a subscribed channel.
    Message {
        /// The channel it was published on.
        channel: Str,
        /// The message.
        payload: Bytes,
    },
    /// The answer to [`BusCommand::CountSubscribers`].
    Subscribers {
        /// The channel counted.
        channel: Str,
        /// Its subscribers (this node included).
        count: u64,
    },
    /// The answer to [`BusCommand::StreamAppend`].
    StreamAppended {
        /// The command's token.
        token: u64,
        /// The new entry's id; `None` when the entry was refused, dropped
        /// (the link was down and the queue full) or lost with the link
        /// before the broker answered (it may or may not have been added).
        id: Option<Str>,
    },
    /// An entry of a followed stream ([`BusCommand::StreamFollow`]).
    StreamEntry {
        /// The stream.
        stream: Str,
        /// The entry.
        entry: StreamEntry,
    },
    /// The answer to [`BusCommand::StreamRange`].
    StreamRange {
        /// The command's token.
        token: u64,
        /// The entries in order, or `None` when the read failed.
        entries: Option<Vec<StreamEntry>>,
    },
    /// The answer to [`BusCommand::TakeKey`].
    KeyTaken {
        /// The command's token.
        token: u64,
        /// The value the key had; `None` when there was none, or the read
        /// failed (the key may then be gone too).
        value: Option<Bytes>,
    },
    /// The backend reached the broker (first time, or again after a gap:
    /// subscriptions were restored).
    Up,
    /// The backend lost the broker; messages published meanwhile may be
    /// lost (pub/sub keeps nothing for absent subscribers).
    Down,
}

/// Limits on what a node accepts from the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusLimits {
    /// Largest message accepted, in bytes; a larger one is dropped with a
    /// log line.
    pub max_message_bytes: usize,
    /// Deepest nesting of arrays and maps accepted in a message.
    pub max_depth: usize,
    /// Most binary attachments one message may carry.
    pub max_attachments: usize,
}

impl Default for BusLimits {
    fn default() -> Self {
        BusLimits {
            max_message_bytes: 16 << 20,
            max_depth: 64,
            max_attachments: 256,
        }
    }
}

/// A message from the bus that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusDecodeError(pub String);

impl std::fmt::Display for BusDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid cluster message: {}", self.0)
    }
}

impl std::error::Error for BusDecodeError {}
