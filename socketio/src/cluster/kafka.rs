//! The Kafka adapter.

use std::sync::Arc;
use std::time::Duration;

use socketio_core::cluster::{BusCommand, BusInput};
use socketio_core::socket::{ClusterConfig, ClusterFormat};
use socketio_core::Str;
use socketio_driver::kafka::{spawn_kafka_bus, KafkaConfig};
use socketio_driver::Runtime;

use super::{Adapter, Bus};
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

impl std::fmt::Debug for KafkaAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaAdapter")
            .field("bootstrap", &self.kafka.bootstrap())
            .field("format", &self.cluster.format)
            .finish_non_exhaustive()
    }
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

    /// Change the broker options (back-off, timeouts, queue bound,
    /// limits...).
    pub fn configure(mut self, f: impl FnOnce(KafkaConfig) -> KafkaConfig) -> Self {
        self.kafka = f(self.kafka);
        self
    }
}

impl Adapter for KafkaAdapter {
    fn cluster_config(&self) -> ClusterConfig {
        self.cluster.clone()
    }

    fn start(
        &self,
        runtime: Arc<dyn Runtime>,
        commands: async_channel::Receiver<BusCommand>,
        inputs: Arc<dyn Fn(BusInput) + Send + Sync>,
    ) -> Arc<dyn Bus> {
        Arc::new(spawn_kafka_bus(
            runtime,
            self.kafka.clone(),
            commands,
            inputs,
        ))
    }
}
