//! Several servers acting as one: cluster adapters (the message bus the
//! nodes share) and the write-only emitter.
//!
//! ```no_run
//! # async fn run() -> socketio::Result<()> {
//! use socketio::{RedisAdapter, Server};
//! // Join a python-socketio deployment (`AsyncRedisManager('redis://..')`):
//! let server = Server::builder()
//!     .adapter(RedisAdapter::python("redis://127.0.0.1:6379/0")?)
//!     .build();
//! // Broadcasts, rooms and disconnections now reach every node.
//! server.emit("news", &("to every node",))?;
//! # Ok(()) }
//! ```

/// The options every broker adapter (a struct with a `cluster:
/// ClusterConfig` field) has: `channel` (documented by the caller) and
/// `request_timeout`.
macro_rules! cluster_options {
    ($(#[$channel:meta])*) => {
        $(#[$channel])*
        pub fn channel(mut self, name: &str) -> Self {
            match &mut self.cluster.format {
                ClusterFormat::Python { channel } => *channel = Str::from(name),
                ClusterFormat::Node { prefix, .. } => *prefix = Str::from(name),
                ClusterFormat::Streams(config) => config.channel_prefix = name.to_owned(),
            }
            self
        }

        /// How long requests to other nodes wait (5 s).
        pub fn request_timeout(mut self, timeout: Duration) -> Self {
            self.cluster.request_timeout = timeout;
            self
        }
    };
}

mod amqp;
mod emitter;
mod redis;

use std::sync::Arc;
use std::time::Instant;

use socketio_core::cluster::{BusCommand, BusInput};
use socketio_core::socket::ClusterConfig;
use socketio_driver::amqp::AmqpBus;
use socketio_driver::redis::RedisBus;
use socketio_driver::{BoxFuture, Runtime};

use crate::error::{Error, Result};

pub use amqp::AmqpAdapter;
pub use emitter::{EmitOperator, Emitter};
pub use redis::RedisAdapter;

/// How many bus commands may wait for the backend before new ones are
/// dropped (with a log line).
pub(crate) const BUS_QUEUE: usize = 65_536;

/// A message bus several servers share: what a node says on it (the
/// format, in [`ClusterConfig`]) and the backend that carries it.
/// Implemented by [`RedisAdapter`] and [`AmqpAdapter`]; a backend of your own implements it
/// over [`socketio_driver`]'s runtime-neutral interface.
pub trait Adapter: Send + Sync + 'static {
    /// The cluster options of the node's core (format, timeouts, limits).
    fn cluster_config(&self) -> ClusterConfig;

    /// Start the backend: it executes the core's `commands` and reports
    /// through `inputs`, until stopped or until `commands` closes.
    fn start(
        &self,
        runtime: Arc<dyn Runtime>,
        commands: async_channel::Receiver<BusCommand>,
        inputs: Arc<dyn Fn(BusInput) + Send + Sync>,
    ) -> Arc<dyn Bus>;
}

/// A running bus backend.
pub trait Bus: Send + Sync + 'static {
    /// Resolves once the broker took every command handed to the backend
    /// so far; fails at `deadline`.
    fn flush(&self, deadline: Instant) -> BoxFuture<'_, Result<()>>;

    /// Stop the backend.
    fn stop(&self);
}

/// [`Bus`] for a driver bus, whose inherent `flush` and `stop` it calls.
macro_rules! driver_bus {
    ($($bus:ty),*) => {$(
        impl Bus for $bus {
            fn flush(&self, deadline: Instant) -> BoxFuture<'_, Result<()>> {
                Box::pin(async move {
                    <$bus>::flush(self, deadline)
                        .await
                        .map_err(|e| Error::Bus(e.to_string()))
                })
            }

            fn stop(&self) {
                <$bus>::stop(self)
            }
        }
    )*};
}

driver_bus!(RedisBus, AmqpBus);
