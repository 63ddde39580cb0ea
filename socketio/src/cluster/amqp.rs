//! The AMQP adapter (RabbitMQ).

use std::time::Duration;

use socketio_core::socket::{ClusterConfig, ClusterFormat};
use socketio_core::Str;
use socketio_driver::amqp::{spawn_amqp_bus, AmqpConfig};

use crate::error::{Error, Result};

/// The AMQP 0-9-1 adapter (RabbitMQ): several servers, ours and
/// python-socketio's (`KombuManager`, `AsyncAioPikaManager`), sharing one
/// broker act as one.
///
/// Each node declares a fanout exchange named by the channel (`socketio`
/// by default) and a queue of its own bound to it, exactly as
/// python-socketio does, and publishes its JSON messages there. URLs:
/// `amqp://[user[:password]@]host[:port][/vhost]` (`amqps://` with the
/// `tls` feature); the default vhost may be written `/%2f`, `//` (kombu)
/// or `/` (aio-pika).
///
/// ```no_run
/// # fn run() -> socketio::Result<()> {
/// use socketio::{AmqpAdapter, Server};
/// let server = Server::builder()
///     .adapter(AmqpAdapter::python("amqp://guest:guest@127.0.0.1:5672//")?)
///     .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AmqpAdapter {
    amqp: AmqpConfig,
    cluster: ClusterConfig,
}

impl AmqpAdapter {
    /// python-socketio's format (`KombuManager` / `AsyncAioPikaManager`),
    /// on channel (exchange) `socketio`.
    pub fn python(url: &str) -> Result<AmqpAdapter> {
        Ok(AmqpAdapter {
            amqp: AmqpConfig::from_url(url).map_err(|e| Error::Bus(e.to_string()))?,
            cluster: ClusterConfig::new(ClusterFormat::python()),
        })
    }

    cluster_options! {
        /// The channel: the exchange's name (python's `channel`).
    }
}

broker_adapter!(AmqpAdapter, amqp: AmqpConfig, spawn_amqp_bus);
