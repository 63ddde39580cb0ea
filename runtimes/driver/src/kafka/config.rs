//! Kafka URLs and bus options.

use std::fmt;
use std::time::Duration;

use socketio_core::cluster::kafka::KafkaLimits;

use crate::bus::{bus_option_setters, BusOptions};

/// The port of a `kafka://host` URL without one.
pub const DEFAULT_PORT: u16 = 9092;

/// A Kafka URL that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaUrlError(pub String);

impl fmt::Display for KafkaUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Kafka URL: {}", self.0)
    }
}

impl std::error::Error for KafkaUrlError {}

/// How to reach Kafka, and how the bus behaves when it cannot.
///
/// Parsed from python-socketio's `KafkaManager` URLs: `kafka://host:port`,
/// `kafka://host` (port 9092), `kafka://` (`localhost:9092`); several
/// bootstrap brokers separated by commas (`kafka://h1:9092,kafka://h2:9092`,
/// or `kafka://h1:9092,h2:9092`), tried in order. Plain TCP, no SASL.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub(crate) bootstrap: Vec<(String, u16)>,
    pub(crate) client_id: String,
    pub(crate) bus: BusOptions,
    pub(crate) fetch_wait: Duration,
    pub(crate) fetch_max_bytes: usize,
    pub(crate) produce_batch_bytes: usize,
    pub(crate) limits: KafkaLimits,
}

impl KafkaConfig {
    /// Parse one URL or several separated by commas (see the type's
    /// documentation).
    pub fn from_urls(urls: &str) -> Result<KafkaConfig, KafkaUrlError> {
        let mut bootstrap = Vec::new();
        let mut scheme_seen = false;
        for item in urls.split(',').map(str::trim) {
            let err = |why: &str| KafkaUrlError(format!("{why} in {item:?}"));
            if item.is_empty() {
                return Err(err("an empty URL"));
            }
            let rest = match item.split_once("://") {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("kafka") => {
                    scheme_seen = true;
                    rest
                }
                Some((scheme, _)) => return Err(err(&format!("unsupported scheme {scheme:?}"))),
                // `kafka://h1:1,h2:2`: the scheme is given once.
                None if scheme_seen => item,
                None => return Err(err("no kafka:// scheme")),
            };
            let rest = rest.trim_end_matches('/');
            if rest.contains(['/', '?', '@']) {
                return Err(err("a path, query or credentials (not supported)"));
            }
            if rest.is_empty() {
                bootstrap.push(("localhost".to_string(), DEFAULT_PORT));
                continue;
            }
            bootstrap.push(host_port(rest).ok_or_else(|| err("bad host or port"))?);
        }
        Ok(KafkaConfig {
            bootstrap,
            client_id: "socketio-rs".into(),
            bus: BusOptions::new(Duration::from_secs(5)),
            fetch_wait: Duration::from_millis(500),
            fetch_max_bytes: 4 << 20,
            produce_batch_bytes: 512 << 10,
            limits: KafkaLimits::default(),
        })
    }

    /// The bootstrap brokers, in order.
    pub fn bootstrap(&self) -> &[(String, u16)] {
        &self.bootstrap
    }

    /// The client id sent with every request (`socketio-rs` by default).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        let mut id: String = id.into();
        if id.len() > i16::MAX as usize {
            let mut end = i16::MAX as usize;
            while !id.is_char_boundary(end) {
                end -= 1;
            }
            id.truncate(end);
        }
        self.client_id = id;
        self
    }

    bus_option_setters! {
        /// Reconnection back-off: the first retry after `min`, doubling up to
        /// `max` (100 ms and 5 s by default). Also the pace at which a missing
        /// topic is looked up again.
        reconnect_backoff;
        /// Deadline of one connection: DNS, TCP and the `ApiVersions` check
        /// (5 s by default).
        connect_timeout;
        /// How long a request may wait for its response (beyond a fetch's
        /// own wait) before the connection is deemed dead (10 s by default).
        io_timeout;
        /// Most bytes of publishes kept while the broker is unreachable (16
        /// MiB by default); further publishes are dropped, counted in a
        /// warning.
        max_queued_bytes;
    }

    /// How long the broker may hold a fetch when there is nothing new
    /// (500 ms by default): the longest a dead broker that keeps its
    /// connection open goes unnoticed is this plus the I/O timeout.
    pub fn fetch_wait(mut self, wait: Duration) -> Self {
        self.fetch_wait = wait.clamp(Duration::from_millis(1), Duration::from_secs(60));
        self
    }

    /// Most bytes asked for per partition in one fetch (4 MiB by default;
    /// a larger batch still comes whole, up to the frame limit).
    pub fn fetch_max_bytes(mut self, bytes: usize) -> Self {
        self.fetch_max_bytes = bytes.clamp(1024, i32::MAX as usize);
        self
    }

    /// Most bytes of publishes per produce request (512 KiB by default;
    /// a single larger message still goes alone: brokers refuse records
    /// above their `message.max.bytes`, 1 MiB by default).
    pub fn produce_batch_bytes(mut self, bytes: usize) -> Self {
        self.produce_batch_bytes = bytes.max(1);
        self
    }

    /// Limits on the broker's responses.
    pub fn limits(mut self, limits: KafkaLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// `host[:port]`, `[v6]:port`; `None` when malformed.
fn host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => return None,
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => p.parse().ok().filter(|p| *p != 0)?,
    };
    Some((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(urls: &str) -> Vec<(String, u16)> {
        KafkaConfig::from_urls(urls).unwrap().bootstrap
    }

    #[test]
    fn kafka_urls() {
        assert_eq!(hosts("kafka://"), vec![("localhost".into(), 9092)]);
        assert_eq!(hosts("kafka://k1"), vec![("k1".into(), 9092)]);
        assert_eq!(
            hosts("kafka://10.0.0.1:19092, KAFKA://[::1]:2/"),
            vec![("10.0.0.1".into(), 19092), ("::1".into(), 2)]
        );
        assert_eq!(
            hosts("kafka://a:1,b:2"),
            vec![("a".into(), 1), ("b".into(), 2)]
        );
    }

    #[test]
    fn bad_kafka_urls() {
        for url in [
            "",
            "localhost:9092",
            "redis://h",
            "kafka://h:x",
            "kafka://h:0",
            "kafka://h:99999",
            "kafka://::1:9092",
            "kafka://u:p@h",
            "kafka://h/topic",
            "kafka://h,,kafka://g",
        ] {
            assert!(KafkaConfig::from_urls(url).is_err(), "{url}");
        }
    }
}
