//! The Redis adapter.

use std::sync::Arc;
use std::time::Duration;

use socketio_core::cluster::{BusCommand, BusInput};
use socketio_core::socket::{ClusterConfig, ClusterFormat};
use socketio_core::Str;
use socketio_driver::redis::{spawn_redis_bus, RedisConfig};
use socketio_driver::Runtime;

use super::{Adapter, Bus};
use crate::error::{Error, Result};

/// The Redis adapter: several servers (ours, python-socketio's, Node's)
/// sharing one Redis act as one.
///
/// URLs as python-socketio documents them: `redis://[[user]:password@]host[:port][/db]`,
/// `rediss://..` (TLS, with the `tls` feature), `unix:///path?db=N`,
/// `redis+sentinel://[[user]:password@]host:port[,host:port]/service[/db]`.
#[derive(Clone)]
pub struct RedisAdapter {
    redis: RedisConfig,
    cluster: ClusterConfig,
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("format", &self.cluster.format)
            .finish_non_exhaustive()
    }
}

fn parse(url: &str) -> Result<RedisConfig> {
    RedisConfig::from_url(url).map_err(|e| Error::Bus(e.to_string()))
}

impl RedisAdapter {
    /// python-socketio's format (`AsyncRedisManager` / `RedisManager`), on
    /// channel `socketio`.
    pub fn python(url: &str) -> Result<RedisAdapter> {
        Ok(RedisAdapter {
            redis: parse(url)?,
            cluster: ClusterConfig::new(ClusterFormat::python()),
        })
    }

    /// `@socket.io/redis-adapter` 8.3's classic format, prefix `socket.io`.
    pub fn node(url: &str) -> Result<RedisAdapter> {
        Ok(RedisAdapter {
            redis: parse(url)?,
            cluster: ClusterConfig::new(ClusterFormat::node()),
        })
    }

    /// `@socket.io/redis-adapter` 8.3's sharded format
    /// (`createShardedAdapter`, Redis 7 sharded pub/sub).
    pub fn node_sharded(url: &str) -> Result<RedisAdapter> {
        Ok(RedisAdapter {
            redis: parse(url)?,
            cluster: ClusterConfig::new(ClusterFormat::Node {
                prefix: Str::from_static("socket.io"),
                sharded: true,
            }),
        })
    }

    cluster_options! {
        /// The channel (python's `channel`) or the channel prefix (Node's
        /// `key`).
    }
}

impl Adapter for RedisAdapter {
    fn cluster_config(&self) -> ClusterConfig {
        self.cluster.clone()
    }

    fn start(
        &self,
        runtime: Arc<dyn Runtime>,
        commands: async_channel::Receiver<BusCommand>,
        inputs: Arc<dyn Fn(BusInput) + Send + Sync>,
    ) -> Arc<dyn Bus> {
        Arc::new(spawn_redis_bus(
            runtime,
            self.redis.clone(),
            commands,
            inputs,
        ))
    }
}
