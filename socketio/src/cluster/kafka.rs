//! The Kafka adapter.

use std::time::Duration;

use socketio_core::socket::{ClusterConfig, ClusterFormat};
use socketio_core::Str;
use socketio_driver::kafka::{spawn_kafka_bus, KafkaConfig};

use crate::error::{Error, Result};

/// The Kafka adapter: several servers (ours, python-socketio's with
/// `KafkaManager`) sharing one Kafka topic act as one.
///
/// Each message is the value of one record on the topic named by the
/// channel (`socketio` by default); every node reads every partition of
/// it without a consumer group, from the end when it starts, as python's
/// `KafkaManager` does. The topic must exist: it is not created.
///
/// URLs as python-socketio takes them: `kafka://host:port`, several
/// bootstrap brokers separated by commas
/// (`kafka://k1:9092,kafka://k2:9092`).
///
/// ```no_run
/// # async fn run() -> socketio::Result<()> {
/// use socketio::{KafkaAdapter, Server};
/// let server = Server::builder()
///     .adapter(KafkaAdapter::python("kafka://127.0.0.1:9092")?)
///     .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KafkaAdapter {
    kafka: KafkaConfig,
    cluster: ClusterConfig,
}

impl KafkaAdapter {
    /// python-socketio's format (`KafkaManager`), on channel (topic)
    /// `socketio`.
    pub fn python(urls: &str) -> Result<KafkaAdapter> {
        Ok(KafkaAdapter {
            kafka: KafkaConfig::from_urls(urls).map_err(|e| Error::Bus(e.to_string()))?,
            cluster: ClusterConfig::new(ClusterFormat::python()),
        })
    }

    cluster_options! {
        /// The channel: the topic's name (python's `channel`).
    }
}

broker_adapter!(KafkaAdapter, kafka: KafkaConfig, spawn_kafka_bus);
