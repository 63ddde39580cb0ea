//! Several servers acting as one: what crosses the message bus between
//! nodes, sans-IO.
//!
//! A node's [`crate::socket::Server`] produces [`BusCommand`]s (subscribe
//! to a channel, publish bytes on one, count a channel's subscribers) and
//! takes [`BusInput`]s (a message arrived, a count answered, the link went
//! down or came back). A backend (Redis, AMQP, ...) only carries bytes: it
//! never looks inside a message. The message formats live here, byte-exact
//! with the references:
//! - [`python`]: python-socketio 5's pub/sub JSON (`PubSubManager`), the
//!   same on every python backend (Redis, AMQP, Kafka, ZeroMQ);
//! - [`node`]: `@socket.io/redis-adapter` 8.3 (classic and sharded) and
//!   `@socket.io/redis-emitter` 5.1, MessagePack and JSON;
//! - [`kafka`]: the subset of the Kafka protocol the Kafka backend
//!   speaks (produce, fetch, metadata, offsets), with limits;
//! - [`resp`]: the Redis wire protocol (RESP2/RESP3) the Redis backend
//!   speaks, as a codec with limits.
//!
//! Every decoder takes bytes from a peer that may be hostile: each size
//! has a limit ([`BusLimits`]) and a bad message is a typed error, never a
//! panic.

pub mod kafka;
pub mod node;
pub mod python;
pub mod resp;

use crate::{Bytes, Str};

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
