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
//! server.try_emit("news", &("to every node",))?;
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

/// What every broker adapter (a struct with a `cluster: ClusterConfig`
/// field and the backend's config, of type `$config`, in `$field`) has:
/// `Debug` (the format only: URLs may hold passwords), `configure`, and
/// [`Adapter`], which starts the driver's bus with `$spawn`.
macro_rules! broker_adapter {
    ($adapter:ident, $field:ident: $config:ty, $spawn:path) => {
        impl std::fmt::Debug for $adapter {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($adapter))
                    .field("format", &self.cluster.format)
                    .finish_non_exhaustive()
            }
        }

        impl $adapter {
            /// Change the broker options (back-off, timeouts, queue bounds...).
            pub fn configure(mut self, f: impl FnOnce($config) -> $config) -> Self {
                self.$field = f(self.$field);
                self
            }
        }

        impl $crate::cluster::Adapter for $adapter {
            fn cluster_config(&self) -> ::socketio_core::socket::ClusterConfig {
                self.cluster.clone()
            }

            fn start(
                &self,
                runtime: ::std::sync::Arc<dyn ::socketio_driver::Runtime>,
                commands: async_channel::Receiver<::socketio_core::cluster::BusCommand>,
                inputs: ::std::sync::Arc<dyn Fn(::socketio_core::cluster::BusInput) + Send + Sync>,
            ) -> ::std::sync::Arc<dyn $crate::cluster::Bus> {
                ::std::sync::Arc::new($spawn(runtime, self.$field.clone(), commands, inputs))
            }
        }
    };
}

mod amqp;
mod emitter;
mod kafka;
mod redis;
mod zmq;

use std::sync::Arc;
use std::time::Instant;

use socketio_core::cluster::{BusCommand, BusInput};
use socketio_core::socket::ClusterConfig;
use socketio_driver::amqp::AmqpBus;
use socketio_driver::kafka::KafkaBus;
use socketio_driver::redis::RedisBus;
use socketio_driver::zmq::ZmqBus;
use socketio_driver::{BoxFuture, Runtime};

use crate::error::{Error, Result};

pub use amqp::AmqpAdapter;
pub use emitter::{EmitOperator, Emitter};
pub use kafka::KafkaAdapter;
pub use redis::RedisAdapter;
pub use zmq::ZmqAdapter;

/// How many bus commands may wait for the backend before new ones are
/// dropped (with a log line).
pub(crate) const BUS_QUEUE: usize = 65_536;

/// A message bus several servers share: what a node says on it (the
/// format, in [`ClusterConfig`]) and the backend that carries it.
/// Implemented by [`RedisAdapter`], [`AmqpAdapter`], [`KafkaAdapter`] and [`ZmqAdapter`]; a backend of your own implements it
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

driver_bus!(RedisBus, AmqpBus, KafkaBus, ZmqBus);
