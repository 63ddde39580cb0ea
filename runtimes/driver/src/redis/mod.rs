//! The Redis bus backend: carries a node's [`BusCommand`]s to Redis pub/sub
//! and reports [`BusInput`]s, on any runtime.
//!
//! [`spawn_redis_bus`] runs one task that owns two connections, as Redis
//! pub/sub requires: a subscriber connection (`SUBSCRIBE`, `PSUBSCRIBE`,
//! `SSUBSCRIBE`) and a command connection (`PUBLISH`, `SPUBLISH`,
//! `PUBSUB NUMSUB`, `PUBSUB SHARDNUMSUB`), both speaking RESP2 through
//! [`socketio_core::cluster::resp`]. A reader task per connection decodes
//! replies and hands them to the bus task; the bus task writes commands,
//! pipelined (it never waits for a reply before sending the next).
//!
//! Losing either connection (an I/O error, a broker that sends garbage, a
//! missing `PONG` or subscription confirmation within
//! [`RedisConfig::io_timeout`]) reports [`BusInput::Down`] once and
//! reconnects with exponential back-off; once both links are back and
//! every remembered subscription is confirmed again, [`BusInput::Up`].
//! While down, publishes (and subscriber counts) are queued up to
//! [`RedisConfig::max_queued_bytes`] and sent on reconnection; beyond the
//! bound they are dropped, and the number dropped is logged as a warning.
//! Publishes already written when the link broke are not resent (Redis may
//! or may not have delivered them: pub/sub is at most once).
//!
//! Streams and keys go on the command connection too: `XADD [MAXLEN ~]`
//! (answered with the new id), `XRANGE [COUNT]`, `SET [PX]`, and
//! `MULTI`/`GET`/`DEL`/`EXEC` to take a key on any Redis version. While
//! down they are queued like publishes; past the queue bound, or when the
//! link breaks before Redis answered, an append or a take is answered at
//! once as failed (`StreamAppended`/`KeyTaken` without a value: it is not
//! sent again, as it may have been done), while a range read is asked
//! again after reconnection. Each followed stream (`StreamFollow`) has a
//! task and a connection of its own looping on `XREAD COUNT n BLOCK ms`
//! ([`RedisConfig::stream_read`]), each call under a deadline of the
//! block time plus [`RedisConfig::io_timeout`]; `from: None` is pinned to
//! the stream's newest id (`XREVRANGE .. COUNT 1`) when first connected,
//! and after any failure the follower reconnects with the same back-off
//! and resumes after the last entry it reported, so entries appended
//! meanwhile are reported once, in order, unless `MAXLEN` trimmed them
//! first. A follower's failures are logged, not reported as `Down`.
//!
//! [`BusCommand`]: socketio_core::cluster::BusCommand
//! [`BusInput`]: socketio_core::cluster::BusInput
//! [`BusInput::Down`]: socketio_core::cluster::BusInput::Down
//! [`BusInput::Up`]: socketio_core::cluster::BusInput::Up

mod bus;
pub(crate) mod config;
mod conn;
mod stream;

use std::fmt;
use std::io;
use std::sync::Arc;

use socketio_core::cluster::resp::RespError;

pub use bus::{spawn_redis_bus, RedisBus};
pub use config::{RedisAddr, RedisConfig, RedisUrlError, DEFAULT_SENTINEL_SERVICE};

/// Why talking to Redis failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RedisError {
    /// The connection failed or broke.
    Io(Arc<io::Error>),
    /// The broker closed the connection.
    Closed,
    /// A step did not finish in time (which one is named).
    Timeout(&'static str),
    /// The broker's bytes are not valid RESP (or exceed the limits).
    Protocol(RespError),
    /// The broker answered with an error (`WRONGPASS`, `NOAUTH`, ...).
    Server(String),
    /// The broker answered something a command does not return.
    Unexpected(String),
    /// A host name did not resolve.
    Dns(String),
    /// No sentinel named the master.
    Sentinel(String),
    /// The TLS handshake or configuration failed.
    Tls(String),
    /// A `rediss://` URL, but the driver was built without its `tls`
    /// feature.
    TlsUnavailable,
    /// The bus was stopped.
    Stopped,
}

impl crate::bus::BusError for RedisError {
    fn stopped() -> Self {
        RedisError::Stopped
    }

    fn timeout(what: &'static str) -> Self {
        RedisError::Timeout(what)
    }

    fn from_io(error: io::Error) -> Self {
        RedisError::io(error)
    }

    fn dns(what: String) -> Self {
        RedisError::Dns(what)
    }
}

impl RedisError {
    pub(crate) fn io(e: io::Error) -> Self {
        RedisError::Io(Arc::new(e))
    }
}

impl From<RespError> for RedisError {
    fn from(e: RespError) -> Self {
        RedisError::Protocol(e)
    }
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Io(e) => write!(f, "I/O error: {e}"),
            RedisError::Closed => f.write_str("connection closed by the broker"),
            RedisError::Timeout(what) => write!(f, "timed out: {what}"),
            RedisError::Protocol(e) => write!(f, "protocol error: {e}"),
            RedisError::Server(e) => write!(f, "Redis error: {e}"),
            RedisError::Unexpected(r) => write!(f, "unexpected reply: {r}"),
            RedisError::Dns(e) => write!(f, "cannot resolve {e}"),
            RedisError::Sentinel(e) => write!(f, "no master from the sentinels: {e}"),
            RedisError::Tls(e) => write!(f, "TLS: {e}"),
            RedisError::TlsUnavailable => {
                f.write_str("rediss:// needs socketio-driver's `tls` feature")
            }
            RedisError::Stopped => f.write_str("the Redis bus is stopped"),
        }
    }
}

impl std::error::Error for RedisError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RedisError::Io(e) => Some(&**e),
            RedisError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}
