//! AMQP URLs and bus options.

use std::fmt;
use std::time::Duration;

use socketio_core::cluster::amqp::{AmqpLimits, FRAME_MIN_SIZE};

use crate::bus::{bus_option_setters, BusOptions};
use crate::redis::config::{percent_decode, redact};

/// An AMQP URL that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpUrlError(pub String);

impl fmt::Display for AmqpUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid AMQP URL: {}", self.0)
    }
}

impl std::error::Error for AmqpUrlError {}

/// How to reach the broker, and how the bus behaves when it cannot.
///
/// Parsed from `amqp://[user[:password]@]host[:port][/vhost][?heartbeat=S]`
/// (`amqps://` for TLS, which needs the driver's `tls` feature). User and
/// password default to `guest`, the port to 5672 (5671 with TLS).
/// User, password and vhost are percent-decoded. The default vhost `/` is
/// written in three ways, all accepted: `/%2f` (the URI spec), `//`
/// (kombu) and `/` or nothing (aio-pika, pika).
#[derive(Clone)]
pub struct AmqpConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) vhost: String,
    pub(crate) heartbeat: u16,
    pub(crate) frame_max: u32,
    pub(crate) prefetch: u16,
    pub(crate) queue_expires_ms: u32,
    pub(crate) bus: BusOptions,
    pub(crate) max_message_bytes: usize,
    #[cfg(feature = "tls")]
    pub(crate) tls_config: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No password in logs.
        f.debug_struct("AmqpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &"***")
            .field("vhost", &self.vhost)
            .field("heartbeat", &self.heartbeat)
            .field("frame_max", &self.frame_max)
            .field("prefetch", &self.prefetch)
            .field("backoff_min", &self.bus.backoff_min)
            .field("backoff_max", &self.bus.backoff_max)
            .field("connect_timeout", &self.bus.connect_timeout)
            .field("io_timeout", &self.bus.io_timeout)
            .field("max_queued_bytes", &self.bus.max_queued_bytes)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

impl AmqpConfig {
    /// Parse an AMQP URL (see the type's documentation for the forms).
    pub fn from_url(url: &str) -> Result<AmqpConfig, AmqpUrlError> {
        let err = |why: &str| AmqpUrlError(format!("{why} in {:?}", redact(url)));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| err("no scheme"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "amqp" => false,
            "amqps" => true,
            _ => return Err(err("not amqp:// or amqps://")),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let decode = |s: &str| percent_decode(s).ok_or_else(|| err("bad percent-encoding"));
        let (user, password) = match userinfo {
            None => ("guest".to_string(), "guest".to_string()),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (decode(u)?, decode(p)?),
                None => (decode(info)?, String::new()),
            },
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, rest) = v6.split_once(']').ok_or_else(|| err("unclosed ["))?;
            (h, rest.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let host = if host.is_empty() { "localhost" } else { host };
        let port = match port {
            None | Some("") => {
                if tls {
                    5671
                } else {
                    5672
                }
            }
            Some(p) => p.parse().map_err(|_| err("bad port"))?,
        };
        // "" and "/" (the second slash of kombu's `//`) both mean "/".
        let vhost = match decode(path)? {
            v if v.is_empty() || v == "/" => "/".to_string(),
            v => v,
        };
        if vhost.len() > 255 || host.len() > 255 || user.len() > 255 {
            return Err(err("name longer than 255 bytes"));
        }
        let mut config = AmqpConfig {
            host: host.to_string(),
            port,
            tls,
            user,
            password,
            vhost,
            heartbeat: 30,
            frame_max: 128 << 10,
            prefetch: 256,
            queue_expires_ms: 300_000,
            bus: BusOptions::new(Duration::from_secs(10)),
            max_message_bytes: 16 << 20,
            #[cfg(feature = "tls")]
            tls_config: None,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "heartbeat" => config.heartbeat = v.parse().map_err(|_| err("bad heartbeat"))?,
                "frame_max" => {
                    config.frame_max = v.parse().map_err(|_| err("bad frame_max"))?;
                    config.frame_max = config.frame_max.max(FRAME_MIN_SIZE);
                }
                // Other clients' options (timeouts, channel_max, ssl
                // options) do not change where the broker is.
                _ => {}
            }
        }
        Ok(config)
    }

    /// The broker's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the link uses TLS (`amqps://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The virtual host.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// Heartbeat interval asked of the broker, in seconds (30; 0 disables
    /// heartbeats; the broker's lower non-zero value wins). A link silent
    /// for two intervals is taken as dead.
    pub fn heartbeat(mut self, seconds: u16) -> Self {
        self.heartbeat = seconds;
        self
    }

    /// Largest frame asked of the broker (128 KiB; at least 4096).
    pub fn frame_max(mut self, bytes: u32) -> Self {
        self.frame_max = bytes.max(FRAME_MIN_SIZE);
        self
    }

    /// Unacknowledged deliveries the broker may push at once (256): bounds
    /// what a slow node buffers.
    pub fn prefetch(mut self, count: u16) -> Self {
        self.prefetch = count.max(1);
        self
    }

    bus_option_setters! {
        /// Delay before reconnecting, doubled on every failure up to `max`
        /// (100 ms to 5 s).
        reconnect_backoff;
        /// Deadline of one connection attempt, handshake included (10 s).
        connect_timeout;
        /// Deadline of a write, and of the broker's answers to declarations
        /// (10 s).
        io_timeout;
        /// Most bytes of publishes kept while the broker is unreachable (16
        /// MiB); further publishes are dropped, counted in a warning.
        max_queued_bytes;
    }

    /// Largest message published or accepted (16 MiB); larger ones are
    /// dropped with a warning (received ones are acknowledged unread).
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// The TLS configuration of `amqps://` links (by default, the bundled
    /// web PKI roots).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    pub(crate) fn limits(&self) -> AmqpLimits {
        AmqpLimits {
            max_frame_size: self.frame_max.max(FRAME_MIN_SIZE),
            max_message_bytes: self.max_message_bytes as u64,
            max_table_depth: 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_spellings_of_the_default_vhost() {
        for url in [
            "amqp://guest:guest@127.0.0.1:5673/%2f",
            "amqp://guest:guest@127.0.0.1:5673//",
            "amqp://guest:guest@127.0.0.1:5673/",
            "amqp://guest:guest@127.0.0.1:5673",
        ] {
            let c = AmqpConfig::from_url(url).unwrap();
            assert_eq!(c.vhost(), "/", "{url}");
            assert_eq!((c.host(), c.port(), c.user()), ("127.0.0.1", 5673, "guest"));
            assert_eq!(c.password, "guest");
        }
    }

    #[test]
    fn other_forms() {
        let c = AmqpConfig::from_url("amqps://u%40x:p%3Aw@[::1]/prod?heartbeat=5").unwrap();
        assert_eq!((c.host(), c.port(), c.is_tls()), ("::1", 5671, true));
        assert_eq!((c.user(), c.password.as_str()), ("u@x", "p:w"));
        assert_eq!((c.vhost(), c.heartbeat), ("prod", 5));
        let c = AmqpConfig::from_url("amqp://rabbit").unwrap();
        assert_eq!((c.host(), c.port(), c.user()), ("rabbit", 5672, "guest"));
        assert!(!format!("{c:?}").contains("guest\", password: \"guest"));
        for bad in [
            "redis://x",
            "amqp//x",
            "amqp://h:port/",
            "amqp://h/%zz",
            "amqp://[::1/",
        ] {
            assert!(AmqpConfig::from_url(bad).is_err(), "{bad}");
        }
    }
}
