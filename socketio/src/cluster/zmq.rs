//! The ZeroMQ adapter.

use std::time::Duration;

use socketio_core::socket::{ClusterConfig, ClusterFormat};
use socketio_core::Str;
use socketio_driver::zmq::{spawn_zmq_bus, ZmqConfig};

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
}

broker_adapter!(ZmqAdapter, zmq: ZmqConfig, spawn_zmq_bus);
