//! The Kafka bus backend: carries a node's [`BusCommand`]s to a Kafka
//! topic per channel, as python-socketio's `KafkaManager` does, and
//! reports [`BusInput`]s, on any runtime.
//!
//! The protocol is [`socketio_core::cluster::kafka`]'s sans-IO codec; this
//! module only moves its frames over [`Runtime::connect`] streams. No
//! consumer group: every node reads every partition of the topic, from
//! the latest offset when it subscribes (a node sees what is published
//! after it subscribed), and from the last offset it saw after a
//! reconnection (Kafka keeps the records, so nothing published during a
//! gap is missed as long as the broker kept its log).
//!
//! [`spawn_kafka_bus`] runs one bus task and, while connected, workers of
//! its own, each with its own connections (a broker answers the requests
//! of one connection in order, so a long-polling fetch must not hold up a
//! produce):
//! - a producer: publishes go to partition 0 of the channel's topic (one
//!   partition keeps a node's messages in order: a join must not overtake
//!   the broadcast that follows it), batched, `acks=1`, on the partition
//!   leader's connection;
//! - a fetcher per subscribed channel: `Metadata`, then `ListOffsets`
//!   (latest) at every partition's leader, then long-polling `Fetch`es
//!   from each leader.
//!
//! Topics are never created (python's `KafkaManager` does not either, and
//! some brokers refuse to); a subscription to a missing topic is logged
//! and looked up again with back-off (the bus is up once it exists), a
//! publish to one waits for it up to [`KafkaConfig::io_timeout`] and is
//! then dropped with a warning.
//!
//! Losing a connection (an I/O error, a broker that sends garbage, a
//! request not answered within [`KafkaConfig::io_timeout`]) reports
//! [`BusInput::Down`] once and reconnects with exponential back-off; once
//! every subscribed channel's fetcher has its offsets again,
//! [`BusInput::Up`]. While down, publishes are queued up to
//! [`KafkaConfig::max_queued_bytes`] and sent on reconnection; beyond the
//! bound they are dropped, and the number dropped is logged as a warning.
//! A publish whose request was on the wire when the link broke is not
//! resent (the broker may or may not have written it).
//! [`BusCommand::CountSubscribers`] is answered with `0`: a group-less
//! Kafka consumer is invisible to the broker.
//!
//! [`BusCommand`]: socketio_core::cluster::BusCommand
//! [`BusCommand::CountSubscribers`]: socketio_core::cluster::BusCommand::CountSubscribers
//! [`BusInput`]: socketio_core::cluster::BusInput
//! [`BusInput::Down`]: socketio_core::cluster::BusInput::Down
//! [`BusInput::Up`]: socketio_core::cluster::BusInput::Up
//! [`Runtime::connect`]: crate::Runtime::connect

mod bus;
mod config;
mod conn;

use std::fmt;
use std::io;
use std::sync::Arc;

use socketio_core::cluster::kafka::KafkaError;

pub use bus::{spawn_kafka_bus, KafkaBus};
pub use config::{KafkaConfig, KafkaUrlError, DEFAULT_PORT};

/// Why talking to Kafka failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KafkaBusError {
    /// The connection failed or broke.
    Io(Arc<io::Error>),
    /// The broker closed the connection.
    Closed,
    /// A step did not finish in time (which one is named).
    Timeout(&'static str),
    /// The broker's bytes are not a valid response (or exceed the limits).
    Protocol(KafkaError),
    /// The broker answered with another correlation id than the request's.
    Correlation {
        /// The request's.
        expected: i32,
        /// The response's.
        got: i32,
    },
    /// The broker does not accept a request at the version this backend
    /// speaks.
    Unsupported(String),
    /// A host name did not resolve.
    Dns(String),
    /// The bus was stopped.
    Stopped,
}

impl crate::bus::BusError for KafkaBusError {
    fn stopped() -> Self {
        KafkaBusError::Stopped
    }

    fn timeout(what: &'static str) -> Self {
        KafkaBusError::Timeout(what)
    }

    fn from_io(error: io::Error) -> Self {
        KafkaBusError::io(error)
    }

    fn dns(what: String) -> Self {
        KafkaBusError::Dns(what)
    }
}

impl KafkaBusError {
    pub(crate) fn io(e: io::Error) -> Self {
        KafkaBusError::Io(Arc::new(e))
    }
}

impl From<KafkaError> for KafkaBusError {
    fn from(e: KafkaError) -> Self {
        KafkaBusError::Protocol(e)
    }
}

impl fmt::Display for KafkaBusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KafkaBusError::Io(e) => write!(f, "I/O error: {e}"),
            KafkaBusError::Closed => f.write_str("connection closed by the broker"),
            KafkaBusError::Timeout(what) => write!(f, "timed out: {what}"),
            KafkaBusError::Protocol(e) => write!(f, "protocol error: {e}"),
            KafkaBusError::Correlation { expected, got } => write!(
                f,
                "response with correlation id {got} to request {expected}"
            ),
            KafkaBusError::Unsupported(e) => write!(f, "unsupported broker: {e}"),
            KafkaBusError::Dns(e) => write!(f, "cannot resolve {e}"),
            KafkaBusError::Stopped => f.write_str("the Kafka bus is stopped"),
        }
    }
}

impl std::error::Error for KafkaBusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KafkaBusError::Io(e) => Some(&**e),
            KafkaBusError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}
