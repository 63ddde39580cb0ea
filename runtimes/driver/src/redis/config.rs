//! Redis URLs and bus options.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::bus::{bus_option_setters, BusOptions};

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisAddr {
    /// `redis://host:port` (or `rediss://` with `tls`).
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port (6379 by default).
        port: u16,
        /// `rediss://`: TLS to the broker.
        tls: bool,
    },
    /// `unix:///path/to/socket`.
    Unix(PathBuf),
    /// `redis+sentinel://host:port,.../db/service`: the sentinels asked
    /// for the address of the service's master before every connection.
    Sentinel {
        /// Sentinels, tried in order (port 26379 by default).
        sentinels: Vec<(String, u16)>,
        /// The monitored service (master) name.
        service: String,
    },
}

/// A Redis URL that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrlError(pub String);

impl fmt::Display for RedisUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Redis URL: {}", self.0)
    }
}

impl std::error::Error for RedisUrlError {}

/// The service name when a sentinel URL gives none: python-socketio then
/// uses its channel name, `socketio` by default.
pub const DEFAULT_SENTINEL_SERVICE: &str = "socketio";

/// How to reach Redis, and how the bus behaves when it cannot.
///
/// Parsed from the URL forms python-socketio documents:
/// - `redis://[[user]:password@]host[:port][/db]` (also `?db=N`,
///   `?password=...`);
/// - `rediss://...`: the same over TLS (needs the driver's `tls` feature;
///   the bundled web PKI roots verify the broker, see
///   [`RedisConfig::tls_config`]);
/// - `unix://[[user]:password@]/path/to/socket[?db=N][&password=...]`;
/// - `redis+sentinel://[[user]:password@]host:port[,host2:port2...][/db][/service_name]`,
///   python-socketio's order (`/0/mymaster`). A first path segment that is
///   not a number is taken as the service name, so `/mymaster/0` works too.
///   Without a service name, [`DEFAULT_SENTINEL_SERVICE`]. The credentials
///   are for the master; sentinels are asked without them, as
///   python-socketio does.
///
/// User and password are percent-decoded.
#[derive(Clone)]
pub struct RedisConfig {
    pub(crate) addr: RedisAddr,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: u32,
    pub(crate) bus: BusOptions,
    pub(crate) ping_interval: Duration,
    pub(crate) stream_block: Duration,
    pub(crate) stream_read_count: u64,
    pub(crate) resp_limits: socketio_core::cluster::resp::RespLimits,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No password in logs.
        f.debug_struct("RedisConfig")
            .field("addr", &self.addr)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("backoff_min", &self.bus.backoff_min)
            .field("backoff_max", &self.bus.backoff_max)
            .field("connect_timeout", &self.bus.connect_timeout)
            .field("io_timeout", &self.bus.io_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("max_queued_bytes", &self.bus.max_queued_bytes)
            .field("stream_block", &self.stream_block)
            .field("stream_read_count", &self.stream_read_count)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// Parse a Redis URL (see the type's documentation for the forms).
    pub fn from_url(url: &str) -> Result<RedisConfig, RedisUrlError> {
        let err = |why: &str| RedisUrlError(format!("{why} in {:?}", redact(url)));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| err("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (mut user, mut password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (u, p) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let u = percent_decode(u).ok_or_else(|| err("bad percent-encoding"))?;
                let p = p
                    .map(|p| percent_decode(p).ok_or_else(|| err("bad percent-encoding")))
                    .transpose()?;
                ((!u.is_empty()).then_some(u), p.filter(|p| !p.is_empty()))
            }
        };
        let mut db = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or_else(|| err("bad percent-encoding"))?;
            match k {
                "db" => db = Some(v.parse().map_err(|_| err("bad db"))?),
                "password" => password = Some(v),
                "username" => user = Some(v),
                // Options of other clients (timeouts, pool sizes) do not
                // change where the broker is: ignored, like redis-py
                // ignores the ones it does not know.
                _ => tracing::debug!(option = k, "Redis URL option ignored"),
            }
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let parse_db = |s: &str| s.parse::<u32>().map_err(|_| err("bad db number"));
        let addr = match scheme.as_str() {
            "redis" | "rediss" | "valkey" | "valkeys" => {
                let (host, port) = host_port(hosts, 6379).ok_or_else(|| err("bad host"))?;
                match segments.as_slice() {
                    [] => {}
                    [n] => db = Some(parse_db(n)?),
                    _ => return Err(err("path is not a db number")),
                }
                RedisAddr::Tcp {
                    host: if host.is_empty() {
                        "localhost".into()
                    } else {
                        host
                    },
                    port,
                    tls: matches!(scheme.as_str(), "rediss" | "valkeys"),
                }
            }
            "unix" => {
                if !hosts.is_empty() {
                    return Err(err("a unix URL has no host"));
                }
                let decoded = percent_decode(path).ok_or_else(|| err("bad percent-encoding"))?;
                if !decoded.starts_with('/') || decoded.len() < 2 {
                    return Err(err("no socket path"));
                }
                RedisAddr::Unix(PathBuf::from(decoded))
            }
            "redis+sentinel" | "valkey+sentinel" => {
                let sentinels = hosts
                    .split(',')
                    .map(|hp| host_port(hp, 26379).filter(|(h, _)| !h.is_empty()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| err("bad sentinel address"))?;
                if segments.len() > 2 {
                    return Err(err("too many path segments"));
                }
                let mut service = None;
                for seg in &segments {
                    if let (None, Ok(n)) = (db, seg.parse::<u32>()) {
                        db = Some(n);
                    } else if service.is_none() {
                        service =
                            Some(percent_decode(seg).ok_or_else(|| err("bad percent-encoding"))?);
                    } else {
                        return Err(err("two service names"));
                    }
                }
                RedisAddr::Sentinel {
                    sentinels,
                    service: service.unwrap_or_else(|| DEFAULT_SENTINEL_SERVICE.into()),
                }
            }
            other => return Err(err(&format!("unsupported scheme {other:?}"))),
        };
        Ok(RedisConfig {
            addr,
            user,
            password,
            db: db.unwrap_or(0),
            bus: BusOptions::new(Duration::from_secs(5)),
            ping_interval: Duration::from_secs(15),
            stream_block: Duration::from_secs(5),
            stream_read_count: 100,
            resp_limits: Default::default(),
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// Where the broker is.
    pub fn addr(&self) -> &RedisAddr {
        &self.addr
    }

    /// The user name for `AUTH`, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether a password was given.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The database `SELECT`ed (pub/sub ignores it; streams and keys live
    /// in it).
    pub fn db(&self) -> u32 {
        self.db
    }

    /// Set the password (instead of the URL's).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Set the sentinel service name (for a `redis+sentinel://` URL).
    pub fn sentinel_service(mut self, name: impl Into<String>) -> Self {
        if let RedisAddr::Sentinel { service, .. } = &mut self.addr {
            *service = name.into();
        }
        self
    }

    bus_option_setters! {
        /// Reconnection back-off: the first retry after `min`, doubling up to
        /// `max` (100 ms and 5 s by default).
        reconnect_backoff;
        /// Deadline of one connection attempt: DNS, TCP, TLS, `AUTH`, `SELECT`
        /// and sentinel queries together (5 s by default).
        connect_timeout;
        /// How long a write to the broker, or a reply to a subscription or
        /// `PING`, may take before the connection is deemed dead (10 s by
        /// default).
        io_timeout;
        /// Most bytes of publishes kept while the broker is unreachable (16 MiB
        /// by default); further publishes are dropped, counted in a warning.
        max_queued_bytes;
    }

    /// How often an idle link is checked with `PING` (15 s by default), so
    /// a broker that vanished without closing the connection is noticed.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How followed streams are read ([`BusCommand::StreamFollow`]): each
    /// `XREAD` blocks up to `block` (5 s by default, the streams adapter's
    /// `blockTimeInMs`) and returns at most `count` entries (100, its
    /// `readCount`). A call not answered within `block` plus
    /// [`RedisConfig::io_timeout`] counts as a dead connection.
    ///
    /// [`BusCommand::StreamFollow`]: socketio_core::cluster::BusCommand::StreamFollow
    pub fn stream_read(mut self, block: Duration, count: u64) -> Self {
        self.stream_block = block.max(Duration::from_millis(1));
        self.stream_read_count = count.max(1);
        self
    }

    /// Limits on the broker's replies.
    pub fn resp_limits(mut self, limits: socketio_core::cluster::resp::RespLimits) -> Self {
        self.resp_limits = limits;
        self
    }

    /// The TLS configuration for `rediss://` (web PKI roots by default;
    /// build one with [`crate::tls::TlsClientConfig`] for a private CA).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

/// `host[:port]`, `[v6]:port`; `None` when malformed.
fn host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => default_port,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let port = if port.is_empty() {
                default_port
            } else {
                port.parse().ok()?
            };
            Some((host.to_string(), port))
        }
        Some(_) => None,
        None => Some((s.to_string(), default_port)),
    }
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URL without its password, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16, tls: bool) -> RedisAddr {
        RedisAddr::Tcp {
            host: host.into(),
            port,
            tls,
        }
    }

    #[test]
    fn redis_urls() {
        let c = RedisConfig::from_url("redis://").unwrap();
        assert_eq!(
            (c.addr(), c.db(), c.user()),
            (&tcp("localhost", 6379, false), 0, None)
        );
        let c = RedisConfig::from_url("redis://localhost:6380/3").unwrap();
        assert_eq!((c.addr(), c.db()), (&tcp("localhost", 6380, false), 3));
        let c = RedisConfig::from_url("redis://:p%40ss%3A@10.0.0.1").unwrap();
        assert_eq!(c.password.as_deref(), Some("p@ss:"));
        assert_eq!(c.user(), None);
        assert_eq!(c.addr(), &tcp("10.0.0.1", 6379, false));
        let c = RedisConfig::from_url("redis://us%20er:pw@h:1/2").unwrap();
        assert_eq!(
            (c.user(), c.password.as_deref()),
            (Some("us er"), Some("pw"))
        );
        let c = RedisConfig::from_url("redis://user@h").unwrap();
        assert_eq!((c.user(), c.has_password()), (Some("user"), false));
        let c = RedisConfig::from_url("rediss://[::1]:7000/0?db=5").unwrap();
        assert_eq!((c.addr(), c.db()), (&tcp("::1", 7000, true), 0));
        let c = RedisConfig::from_url("redis://h?db=5&password=x&socket_timeout=1").unwrap();
        assert_eq!((c.db(), c.password.as_deref()), (5, Some("x")));
        let c = RedisConfig::from_url("REDIS://h/").unwrap();
        assert_eq!(c.addr(), &tcp("h", 6379, false));
    }

    #[test]
    fn unix_urls() {
        let c = RedisConfig::from_url("unix:///tmp/redis.sock?db=2").unwrap();
        assert_eq!(
            (c.addr(), c.db()),
            (&RedisAddr::Unix("/tmp/redis.sock".into()), 2)
        );
        let c = RedisConfig::from_url("unix://:pw@/run/r.sock").unwrap();
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(c.addr(), &RedisAddr::Unix("/run/r.sock".into()));
    }

    #[test]
    fn sentinel_urls() {
        let c = RedisConfig::from_url("redis+sentinel://u:pw@h1:1234,h2:2345/0/myredis").unwrap();
        assert_eq!(
            c.addr(),
            &RedisAddr::Sentinel {
                sentinels: vec![("h1".into(), 1234), ("h2".into(), 2345)],
                service: "myredis".into()
            }
        );
        assert_eq!(
            (c.user(), c.password.as_deref(), c.db()),
            (Some("u"), Some("pw"), 0)
        );
        let c = RedisConfig::from_url("redis+sentinel://h1,[::1]:5/mymaster/4").unwrap();
        assert_eq!(
            c.addr(),
            &RedisAddr::Sentinel {
                sentinels: vec![("h1".into(), 26379), ("::1".into(), 5)],
                service: "mymaster".into()
            }
        );
        assert_eq!(c.db(), 4);
        let c = RedisConfig::from_url("redis+sentinel://h:1").unwrap();
        assert_eq!(
            c.addr(),
            &RedisAddr::Sentinel {
                sentinels: vec![("h".into(), 1)],
                service: DEFAULT_SENTINEL_SERVICE.into()
            }
        );
        let c = c.sentinel_service("other");
        assert!(matches!(c.addr(), RedisAddr::Sentinel { service, .. } if service == "other"));
    }

    #[test]
    fn bad_urls() {
        for url in [
            "localhost:6379",
            "http://h",
            "redis://h:notaport",
            "redis://h:99999",
            "redis://h/x",
            "redis://h/1/2",
            "redis://h?db=x",
            "redis://:%zz@h",
            "redis://::1:6379",
            "unix://",
            "unix://host/path",
            "redis+sentinel://",
            "redis+sentinel://h:1,,h2:2",
            "redis+sentinel://h:1/0/a/b",
        ] {
            assert!(RedisConfig::from_url(url).is_err(), "{url}");
        }
        let e = RedisConfig::from_url("redis://u:secret@h/x").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        let c = RedisConfig::from_url("redis://u:secret@h").unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }
}
