//! The AMQP 0-9-1 bus backend (RabbitMQ): carries a node's [`BusCommand`]s
//! the way python-socketio's `KombuManager` and `AsyncAioPikaManager` do,
//! on any runtime.
//!
//! # Why a client of our own
//! The established Rust client, `lapin`, brings its own executor and
//! reactor plumbing and leans on tokio; this project runs on tokio,
//! async-std and smol through one [`Runtime`] trait. A pub/sub bus needs a
//! small part of AMQP 0-9-1 (connection handshake, one channel, declares,
//! consume, publish with confirms, acks, heartbeats, close), so the frames
//! are a sans-IO codec in [`socketio_core::cluster::amqp`] (fuzzed, with
//! limits) and this module is the connection logic over
//! [`Runtime::connect`], as the Redis backend does with RESP: one more
//! thread or runtime per process is avoided and the three runtimes share
//! one tested code path.
//!
//! # What goes on the broker
//! Exactly what python-socketio 5.18's AMQP managers declare, so that our
//! nodes, kombu nodes and aio-pika nodes share one exchange:
//! - per channel (default `socketio`), a **fanout** exchange of that name,
//!   `durable=false`, `auto_delete=false`, not internal, no arguments;
//! - per node and channel, a non-durable, non-exclusive, non-auto-delete
//!   queue with `x-expires: 300000` (5 min unused, then the broker drops
//!   it), bound to the exchange, consumed with acknowledgements and a
//!   prefetch bound ([`AmqpConfig::prefetch`]). The queue is named by us
//!   (`socketio-rs.<node id>.<n>`, as kombu names its own), so a link that
//!   breaks while the broker stays up finds its queue, and the messages
//!   published meanwhile, again;
//! - publishes carry the JSON text with kombu's properties: content type
//!   `text/plain`, encoding `utf-8`, empty headers, delivery mode 2
//!   (persistent, as both do), priority 0. kombu decodes that content type
//!   to the text, aio-pika hands the bytes over: python-socketio reads
//!   either.
//!
//! Publishes use publisher confirms, so [`AmqpBus::flush`] resolves once
//! the broker took them. Losing the connection (I/O error, garbage, a
//! `connection.close` or `channel.close`, two heartbeat intervals of
//! silence, declarations not answered within [`AmqpConfig::io_timeout`])
//! reports [`BusInput::Down`] once and reconnects with exponential
//! back-off; once every subscription is declared and consumed again,
//! [`BusInput::Up`] (the gap is logged). While down, publishes are queued
//! up to [`AmqpConfig::max_queued_bytes`], then dropped with a count in a
//! warning. `BusCommand::CountSubscribers` is answered with 0 (the python
//! format never asks).
//!
//! [`BusCommand`]: socketio_core::cluster::BusCommand
//! [`BusInput::Down`]: socketio_core::cluster::BusInput::Down
//! [`BusInput::Up`]: socketio_core::cluster::BusInput::Up
//! [`Runtime`]: crate::Runtime
//! [`Runtime::connect`]: crate::Runtime::connect

mod bus;
mod config;
mod conn;

use std::fmt;
use std::io;
use std::sync::Arc;

use socketio_core::cluster::amqp::{AmqpError as FrameError, CloseReason};

pub use bus::{spawn_amqp_bus, AmqpBus};
pub use config::{AmqpConfig, AmqpUrlError};

/// Why talking to the AMQP broker failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AmqpError {
    /// The connection failed or broke.
    Io(Arc<io::Error>),
    /// The broker closed the connection.
    Closed,
    /// A step did not finish in time (which one is named).
    Timeout(&'static str),
    /// The broker's bytes are not valid AMQP 0-9-1 (or exceed the limits).
    Protocol(FrameError),
    /// The broker closed the connection or channel with this reason
    /// (`403 ACCESS_REFUSED`, `406 PRECONDITION_FAILED`, ...).
    Server(CloseReason),
    /// The broker sent something the handshake does not expect.
    Unexpected(String),
    /// A host name did not resolve.
    Dns(String),
    /// The TLS handshake or configuration failed.
    Tls(String),
    /// An `amqps://` URL, but the driver was built without its `tls`
    /// feature.
    TlsUnavailable,
    /// The bus was stopped.
    Stopped,
}

impl crate::bus::BusError for AmqpError {
    fn stopped() -> Self {
        AmqpError::Stopped
    }

    fn timeout(what: &'static str) -> Self {
        AmqpError::Timeout(what)
    }

    fn from_io(error: io::Error) -> Self {
        AmqpError::io(error)
    }

    fn dns(what: String) -> Self {
        AmqpError::Dns(what)
    }
}

impl AmqpError {
    pub(crate) fn io(e: io::Error) -> Self {
        AmqpError::Io(Arc::new(e))
    }
}

impl From<FrameError> for AmqpError {
    fn from(e: FrameError) -> Self {
        AmqpError::Protocol(e)
    }
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmqpError::Io(e) => write!(f, "I/O error: {e}"),
            AmqpError::Closed => f.write_str("connection closed by the broker"),
            AmqpError::Timeout(what) => write!(f, "timed out: {what}"),
            AmqpError::Protocol(e) => write!(f, "protocol error: {e}"),
            AmqpError::Server(r) => write!(f, "closed by the broker: {r}"),
            AmqpError::Unexpected(r) => write!(f, "unexpected from the broker: {r}"),
            AmqpError::Dns(e) => write!(f, "cannot resolve {e}"),
            AmqpError::Tls(e) => write!(f, "TLS: {e}"),
            AmqpError::TlsUnavailable => {
                f.write_str("amqps:// needs socketio-driver's `tls` feature")
            }
            AmqpError::Stopped => f.write_str("the AMQP bus is stopped"),
        }
    }
}

impl std::error::Error for AmqpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AmqpError::Io(e) => Some(&**e),
            AmqpError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}
