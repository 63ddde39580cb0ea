//! The Redis adapter.

use std::time::Duration;

use socketio_core::socket::{ClusterConfig, ClusterFormat};
use socketio_core::Str;
use socketio_driver::redis::{spawn_redis_bus, RedisConfig};

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

broker_adapter!(RedisAdapter, redis, spawn_redis_bus);
