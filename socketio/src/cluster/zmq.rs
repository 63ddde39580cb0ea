//! The ZeroMQ adapter.

use std::sync::Arc;
use std::time::Duration;

use socketio_core::cluster::{BusCommand, BusInput};
use socketio_core::socket::{ClusterConfig, ClusterFormat};
use socketio_core::Str;
use socketio_driver::zmq::{spawn_zmq_bus, ZmqConfig};
use socketio_driver::Runtime;

use super::{Adapter, Bus};
use crate::error::{Error, Result};

/// The ZeroMQ adapter: several servers, ours and python-socketio's
/// (`ZmqManager`, which python-socketio calls experimental), sharing one
/// ZeroMQ broker act as one.
///
/// ZeroMQ has no server: you run the broker python-socketio documents, a
/// PULL socket bound on one port whose every message a PUB socket bound on
/// another port sends on. The URL names both, as python's does:
/// `zmq+tcp://host:port1+port2` (`port1` the broker's PULL, `port2` its
/// PUB). Each node pushes its JSON messages, in python's envelope
/// (`{"type": "message", "channel", "data"}`), to the first and
/// subscribes to everything on the second, keeping its channel's
/// (`socketio` by default).
///
/// ```no_run
/// # fn run() -> socketio::Result<()> {
/// use socketio::{Server, ZmqAdapter};
/// let server = Server::builder()
///     .adapter(ZmqAdapter::python("zmq+tcp://127.0.0.1:5555+5556")?)
///     .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ZmqAdapter {
    zmq: ZmqConfig,
    cluster: ClusterConfig,
}

impl std::fmt::Debug for ZmqAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmqAdapter")
            .field("format", &self.cluster.format)
            .finish_non_exhaustive()
    }
}

impl ZmqAdapter {
    /// python-socketio's format (`ZmqManager`), on channel `socketio`.
    pub fn python(url: &str) -> Result<ZmqAdapter> {
        Ok(ZmqAdapter {
            zmq: ZmqConfig::from_url(url).map_err(|e| Error::Bus(e.to_string()))?,
            cluster: ClusterConfig::new(ClusterFormat::python()),
        })
    }

    cluster_options! {
        /// The channel, carried in every envelope (python's `channel`).
    }

    /// Change the broker options (heartbeat, back-off, queue bounds...).
    pub fn configure(mut self, f: impl FnOnce(ZmqConfig) -> ZmqConfig) -> Self {
        self.zmq = f(self.zmq);
        self
    }
}

impl Adapter for ZmqAdapter {
    fn cluster_config(&self) -> ClusterConfig {
        self.cluster.clone()
    }

    fn start(
        &self,
        runtime: Arc<dyn Runtime>,
        commands: async_channel::Receiver<BusCommand>,
        inputs: Arc<dyn Fn(BusInput) + Send + Sync>,
    ) -> Arc<dyn Bus> {
        Arc::new(spawn_zmq_bus(runtime, self.zmq.clone(), commands, inputs))
    }
}
