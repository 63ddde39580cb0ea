//! ZeroMQ broker URLs and bus options.

use std::fmt;
use std::time::Duration;

use socketio_core::cluster::zmtp::ZmtpLimits;

use crate::bus::{bus_option_setters, BusOptions};

/// A ZeroMQ URL that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZmqUrlError(pub String);

impl fmt::Display for ZmqUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid ZeroMQ URL: {}", self.0)
    }
}

impl std::error::Error for ZmqUrlError {}

/// Where the broker is, and how the bus behaves when it cannot reach it.
///
/// Parsed from python-socketio's form `zmq+tcp://host:port1+port2`: the
/// broker pulls what nodes push on `port1` (its sink) and publishes it to
/// its subscribers on `port2`. An IPv6 host is written in brackets.
#[derive(Debug, Clone)]
pub struct ZmqConfig {
    pub(crate) host: String,
    pub(crate) sink_port: u16,
    pub(crate) pub_port: u16,
    pub(crate) heartbeat: Duration,
    pub(crate) bus: BusOptions,
    pub(crate) max_message_bytes: usize,
}

impl ZmqConfig {
    /// Parse `zmq+tcp://host:port1+port2`.
    pub fn from_url(url: &str) -> Result<ZmqConfig, ZmqUrlError> {
        let err = |why: &str| ZmqUrlError(format!("{why} in {url:?} (zmq+tcp://host:port1+port2)"));
        let rest = url
            .strip_prefix("zmq+tcp://")
            .ok_or_else(|| err("not zmq+tcp://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (sink, pub_port) = rest.rsplit_once('+').ok_or_else(|| err("no +port2"))?;
        let (host, sink_port) = if let Some(v6) = sink.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or_else(|| err("unclosed ["))?;
            (h, p.strip_prefix(':').ok_or_else(|| err("no port1"))?)
        } else {
            sink.rsplit_once(':').ok_or_else(|| err("no port1"))?
        };
        let port = |p: &str| match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(err("bad port")),
        };
        if host.is_empty() || host.len() > 255 {
            return Err(err("bad host"));
        }
        Ok(ZmqConfig {
            host: host.to_string(),
            sink_port: port(sink_port)?,
            pub_port: port(pub_port)?,
            heartbeat: Duration::from_secs(5),
            bus: BusOptions::new(Duration::from_secs(10)),
            max_message_bytes: 16 << 20,
        })
    }

    /// The broker's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port the broker pulls from (python's sink).
    pub fn sink_port(&self) -> u16 {
        self.sink_port
    }

    /// The port the broker publishes on.
    pub fn pub_port(&self) -> u16 {
        self.pub_port
    }

    /// Interval of the ZMTP 3.1 `PING`s on both links (5 s; zero: none); a
    /// link silent for three intervals is taken as dead. A ZMTP 3.0 broker
    /// has no `PING`: only TCP tells then.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    bus_option_setters! {
        /// Reconnection back-off: the first retry after `min`, doubling up to
        /// `max` (100 ms and 5 s by default; at least 1 ms, so that a broker
        /// that refuses at once is not hammered).
        reconnect_backoff;
        /// Deadline of one connection attempt: both links, greetings and
        /// `READY`s (10 s).
        connect_timeout;
        /// Deadline of a write, and of the probe that shows the broker
        /// relays this node's messages back to it (10 s).
        io_timeout;
        /// Most bytes of publishes kept while the broker is unreachable (16
        /// MiB); further publishes are dropped, counted in a warning.
        max_queued_bytes;
    }

    /// Largest message published or accepted (16 MiB); larger ones are
    /// dropped with a warning (received ones skipped unread).
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    pub(crate) fn limits(&self) -> ZmtpLimits {
        ZmtpLimits {
            max_message_bytes: self.max_message_bytes as u64,
            ..ZmtpLimits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_form() {
        let c = ZmqConfig::from_url("zmq+tcp://localhost:5555+5556").unwrap();
        assert_eq!(
            (c.host(), c.sink_port(), c.pub_port()),
            ("localhost", 5555, 5556)
        );
        let c = ZmqConfig::from_url("zmq+tcp://[::1]:1+2/").unwrap();
        assert_eq!((c.host(), c.sink_port(), c.pub_port()), ("::1", 1, 2));
        for bad in [
            "tcp://h:1+2",
            "zmq+tcp://h:1",
            "zmq+tcp://h+2",
            "zmq+tcp://:1+2",
            "zmq+tcp://h:0+2",
            "zmq+tcp://h:1+x",
            "zmq+tcp://h:1++2",
            "zmq+tcp://h:+1+2",
            "zmq+tcp://[::1:1+2",
            "zmq+ipc:///tmp/x",
        ] {
            assert!(ZmqConfig::from_url(bad).is_err(), "{bad}");
        }
    }
}
