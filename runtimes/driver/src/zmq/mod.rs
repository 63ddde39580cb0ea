//! The ZeroMQ bus backend: carries a node's [`BusCommand`]s the way
//! python-socketio's `ZmqManager` does, on any runtime.
//!
//! # The broker
//! ZeroMQ has no server; python-socketio's `ZmqManager` expects a small
//! forwarder the user runs: a PULL socket bound on one port (the sink)
//! whose every message a PUB socket bound on another port sends on. The
//! URL names both: `zmq+tcp://host:port1+port2`. Each node connects a
//! PUSH socket to the sink and a SUB socket, subscribed to everything, to
//! the publisher: what any node pushes, every node receives, itself
//! included.
//!
//! # What goes over it
//! Each message is one frame of JSON: python's envelope
//! `{"type": "message", "channel": C, "data": M}` around the pub/sub
//! message M ([`socketio_core::cluster::python::zmq`]). ZeroMQ has no
//! channels: every node receives every envelope, and keeps those of the
//! channels it subscribed ([`BusCommand::Subscribe`]); the others, and
//! frames that are no envelope, are dropped (logged at debug level).
//!
//! # Why a ZMTP peer of our own
//! The pure-Rust `zeromq` crate (0.x, "does not implement all of
//! ZeroMQ's feature set") picks its executor by cargo feature (tokio,
//! async-std or async-dispatcher), one per build and none of them this
//! project's [`Runtime`] trait; binding libzmq would bring a C library and
//! `unsafe`. Two connections of fixed types need a small part of ZMTP
//! 3.x, so the protocol is a sans-IO codec in
//! [`socketio_core::cluster::zmtp`] (fuzzed, with limits) and this module
//! is the connection logic over [`Runtime::connect`], as the Redis and AMQP
//! backends are.
//!
//! # Outages
//! A PUSH socket reports nothing back, and a subscription takes effect at
//! the publisher a moment after it is sent. So the bus is up
//! ([`BusInput::Up`]) once both links are open *and* a probe it pushed (an
//! envelope of a `type` python skips) came back through the publisher:
//! from then on what anyone publishes reaches this node. A broken link
//! (I/O error, garbage, an `ERROR` from the broker, three heartbeat
//! intervals without a byte on a ZMTP 3.1 link, a probe not back within
//! [`ZmqConfig::io_timeout`]) drops both, reports [`BusInput::Down`] once
//! if it was up, and reconnects with exponential back-off. While down,
//! publishes are queued up to [`ZmqConfig::max_queued_bytes`], then
//! dropped with a count in a warning. A publish is done (for
//! [`ZmqBus::flush`]) once written to the sink's connection: ZeroMQ has no
//! acknowledgements. `BusCommand::CountSubscribers` is answered with 0.
//!
//! ZeroMQ pub/sub is lossy by design, for python nodes as for ours: the
//! broker's PUB socket keeps at most its high-water mark (1000 messages by
//! default) per subscriber that lags, and drops the rest.
//!
//! [`BusCommand`]: socketio_core::cluster::BusCommand
//! [`BusCommand::Subscribe`]: socketio_core::cluster::BusCommand::Subscribe
//! [`BusInput::Down`]: socketio_core::cluster::BusInput::Down
//! [`BusInput::Up`]: socketio_core::cluster::BusInput::Up
//! [`Runtime`]: crate::Runtime
//! [`Runtime::connect`]: crate::Runtime::connect

mod bus;
mod config;
mod link;

use std::fmt;
use std::io;
use std::sync::Arc;

use socketio_core::cluster::zmtp::ZmtpError;

pub use bus::{spawn_zmq_bus, ZmqBus};
pub use config::{ZmqConfig, ZmqUrlError};

/// Why talking to the ZeroMQ broker failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ZmqError {
    /// The connection failed or broke.
    Io(Arc<io::Error>),
    /// The broker closed the connection.
    Closed,
    /// A step did not finish in time (which one is named).
    Timeout(&'static str),
    /// The broker's bytes are not valid ZMTP (or exceed the limits), or it
    /// refused us.
    Protocol(ZmtpError),
    /// A host name did not resolve.
    Dns(String),
    /// The bus was stopped.
    Stopped,
}

impl crate::bus::BusError for ZmqError {
    fn stopped() -> Self {
        ZmqError::Stopped
    }

    fn timeout(what: &'static str) -> Self {
        ZmqError::Timeout(what)
    }

    fn from_io(error: io::Error) -> Self {
        ZmqError::io(error)
    }

    fn dns(what: String) -> Self {
        ZmqError::Dns(what)
    }
}

impl ZmqError {
    pub(crate) fn io(e: io::Error) -> Self {
        ZmqError::Io(Arc::new(e))
    }
}

impl From<ZmtpError> for ZmqError {
    fn from(e: ZmtpError) -> Self {
        ZmqError::Protocol(e)
    }
}

impl fmt::Display for ZmqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZmqError::Io(e) => write!(f, "I/O error: {e}"),
            ZmqError::Closed => f.write_str("connection closed by the broker"),
            ZmqError::Timeout(what) => write!(f, "timed out: {what}"),
            ZmqError::Protocol(e) => write!(f, "protocol error: {e}"),
            ZmqError::Dns(e) => write!(f, "cannot resolve {e}"),
            ZmqError::Stopped => f.write_str("the ZeroMQ bus is stopped"),
        }
    }
}

impl std::error::Error for ZmqError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ZmqError::Io(e) => Some(&**e),
            ZmqError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}
