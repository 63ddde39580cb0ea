//! The Redis adapter.

use std::time::Duration;

use socketio_core::cluster::node::StreamsConfig;
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

    /// `@socket.io/redis-streams-adapter` 0.3's format: broadcasts and
    /// joins, leaves and disconnections by selection on the Redis stream
    /// `socket.io`, requests on pub/sub. With connection state recovery
    /// on ([`crate::ServerBuilder::max_disconnection_duration`]), sessions
    /// are kept in Redis (`sio:session:<pid>`, for the recovery duration)
    /// and offsets are stream entry ids, so a client restores on whichever
    /// node it reconnects to, Node's included, with every event it missed
    /// while the stream still holds it (see [`RedisAdapter::max_len`]).
    pub fn node_streams(url: &str) -> Result<RedisAdapter> {
        let streams = StreamsConfig::default();
        Ok(RedisAdapter {
            redis: parse(url)?.stream_read(streams.block_time, streams.read_count),
            cluster: ClusterConfig::new(ClusterFormat::Streams(streams)),
        })
    }

    /// The stream's name (the streams adapter's `streamName`, `socket.io`);
    /// no effect on the other formats.
    pub fn stream_name(mut self, name: &str) -> Self {
        if let ClusterFormat::Streams(config) = &mut self.cluster.format {
            config.stream_name = name.to_owned();
        }
        self
    }

    /// About how many entries the stream keeps (the streams adapter's
    /// `maxLen`, 10 000; `XADD .. MAXLEN ~`): a client that missed more
    /// than that gets a new session instead of its missed events. No
    /// effect on the other formats.
    pub fn max_len(mut self, max_len: u64) -> Self {
        if let ClusterFormat::Streams(config) = &mut self.cluster.format {
            config.max_len = max_len;
        }
        self
    }

    cluster_options! {
        /// The channel (python's `channel`) or the channel prefix (Node's
        /// `key`, the streams adapter's `channelPrefix`).
    }
}

broker_adapter!(RedisAdapter, redis, spawn_redis_bus);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Adapter;

    const URL: &str = "redis://127.0.0.1:6379";

    #[test]
    fn streams_options_shape_the_streams_format_only() {
        let adapter = RedisAdapter::node_streams(URL)
            .unwrap()
            .stream_name("s")
            .max_len(5)
            .channel("p");
        match adapter.cluster_config().format {
            ClusterFormat::Streams(config) => {
                assert_eq!(config.stream_name, "s");
                assert_eq!(config.max_len, 5);
                assert_eq!(config.channel_prefix, "p");
            }
            other => panic!("not the streams format: {other:?}"),
        }
        let node = RedisAdapter::node(URL).unwrap().stream_name("s").max_len(5);
        assert_eq!(node.cluster_config().format, ClusterFormat::node());
    }
}
