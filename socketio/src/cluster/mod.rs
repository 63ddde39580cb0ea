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

mod emitter;
mod kafka;
mod redis;

use std::sync::Arc;
use std::time::Instant;

use socketio_core::cluster::{BusCommand, BusInput};
use socketio_core::socket::ClusterConfig;
use socketio_driver::{BoxFuture, Runtime};

use crate::error::Result;

pub use emitter::{EmitOperator, Emitter};
pub use kafka::KafkaAdapter;
pub use redis::RedisAdapter;

/// How many bus commands may wait for the backend before new ones are
/// dropped (with a log line).
pub(crate) const BUS_QUEUE: usize = 65_536;

/// A message bus several servers share: what a node says on it (the
/// format, in [`ClusterConfig`]) and the backend that carries it.
/// Implemented by [`RedisAdapter`] and [`KafkaAdapter`]; a backend of your own implements it
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

/// A shared adapter is an adapter (e.g. `Arc<dyn Adapter>`, chosen at run
/// time).
impl<A: Adapter + ?Sized> Adapter for Arc<A> {
    fn cluster_config(&self) -> ClusterConfig {
        (**self).cluster_config()
    }

    fn start(
        &self,
        runtime: Arc<dyn Runtime>,
        commands: async_channel::Receiver<BusCommand>,
        inputs: Arc<dyn Fn(BusInput) + Send + Sync>,
    ) -> Arc<dyn Bus> {
        (**self).start(runtime, commands, inputs)
    }
}
