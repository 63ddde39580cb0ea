//! Connection options and URL parsing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use socketio_core::engine::ClientTransports;
use socketio_core::parser::{AnyParser, Args};
use socketio_core::Value;

use crate::error::{Error, Result};
pub use socketio_driver::proxy::Proxy;

/// A handler run on the IO thread for one event name; what it returns
/// answers the server's acknowledgement request, if the server made one
/// (`None` answers with no arguments).
pub type Handler = Arc<dyn Fn(&Args) -> Option<Args> + Send + Sync + 'static>;

/// How to connect. `Default` connects `/` (or the URL's namespace) with
/// polling upgraded to WebSocket, JSON, and reconnection on.
#[derive(Clone)]
pub struct ClientOptions {
    /// Transports: polling only, WebSocket only, or polling upgraded to
    /// WebSocket (the default).
    pub transports: ClientTransports,
    /// Namespaces to connect, each with an optional auth object. Empty
    /// means the URL's namespace (`/` when the URL has no path). The first
    /// is the default namespace of [`crate::Client::emit`],
    /// [`crate::Client::call`].
    pub namespaces: Vec<(String, Option<Value>)>,
    /// The Engine.IO path on the server (`/socket.io/`).
    pub path: String,
    /// Extra HTTP headers sent with every request and the WebSocket
    /// upgrade.
    pub headers: Vec<(String, String)>,
    /// The wire format (JSON by default); the server must use the same.
    pub parser: AnyParser,
    /// Reconnect after the connection is lost (true).
    pub reconnection: bool,
    /// Attempts before giving up, 0 for no limit (0).
    pub reconnection_attempts: u32,
    /// Delay before the first attempt (1 s), doubled each time up to
    /// `reconnection_delay_max` (5 s), with jitter.
    pub reconnection_delay: Duration,
    /// The longest delay between attempts (5 s).
    pub reconnection_delay_max: Duration,
    /// How long [`crate::Client::connect`] waits for every namespace to be
    /// connected, and the longest the client waits for its IO thread to
    /// take a command (5 s, python-socketio's `wait_timeout`).
    pub wait_timeout: Duration,
    /// Time allowed for one TCP connect plus Engine.IO handshake (20 s).
    pub connect_timeout: Duration,
    /// Longest a write may block before the connection counts as failed
    /// (10 s): a server that stops reading cannot stall the IO thread for
    /// longer.
    pub write_timeout: Duration,
    /// Handlers by event name, run on the IO thread. Events without a
    /// handler go to [`crate::Client::receive`].
    pub handlers: Vec<(String, Handler)>,
    /// The HTTP proxy: the environment's `http_proxy` / `https_proxy` /
    /// `no_proxy` by default (read when connecting), an explicit one, or
    /// none ([`Proxy::Direct`]). Every connection is a `CONNECT` tunnel.
    pub proxy: Proxy,
    /// How to set up TLS for `https://` and `wss://` URLs (bundled roots,
    /// full verification).
    #[cfg(feature = "tls")]
    pub tls: socketio_driver::tls::TlsClientConfig,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            transports: ClientTransports::Upgrade,
            namespaces: Vec::new(),
            path: "/socket.io/".into(),
            headers: Vec::new(),
            parser: AnyParser::default(),
            reconnection: true,
            reconnection_attempts: 0,
            reconnection_delay: Duration::from_secs(1),
            reconnection_delay_max: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(20),
            write_timeout: Duration::from_secs(10),
            handlers: Vec::new(),
            proxy: Proxy::default(),
            #[cfg(feature = "tls")]
            tls: Default::default(),
        }
    }
}

impl ClientOptions {
    /// Set the transports.
    pub fn transports(mut self, transports: ClientTransports) -> Self {
        self.transports = transports;
        self
    }

    /// Add a namespace to connect, with an optional auth object.
    pub fn namespace(mut self, nsp: &str, auth: Option<Value>) -> Self {
        self.namespaces.push((nsp.to_owned(), auth));
        self
    }

    /// Add an HTTP header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Set the wire format.
    pub fn parser(mut self, parser: impl Into<AnyParser>) -> Self {
        self.parser = parser.into();
        self
    }

    /// Turn reconnection on or off.
    pub fn reconnection(mut self, on: bool) -> Self {
        self.reconnection = on;
        self
    }

    /// Set the first reconnection delay and the longest one.
    pub fn reconnection_delay(mut self, first: Duration, max: Duration) -> Self {
        self.reconnection_delay = first;
        self.reconnection_delay_max = max;
        self
    }

    /// Set how long `connect` waits for the namespaces.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// Set the proxy ([`Proxy::url`] for an explicit one, [`Proxy::Direct`]
    /// for none).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
    }

    /// Set the TLS configuration of `https://` and `wss://` URLs.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: socketio_driver::tls::TlsClientConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Register a handler for `event`, run on the IO thread (keep it short:
    /// nothing else happens on the connection while it runs). Its return
    /// value answers the server's acknowledgement request, if any.
    pub fn on(
        mut self,
        event: &str,
        handler: impl Fn(&Args) -> Option<Args> + Send + Sync + 'static,
    ) -> Self {
        self.handlers.push((event.to_owned(), Arc::new(handler)));
        self
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("transports", &self.transports)
            .field("namespaces", &self.namespaces)
            .field("path", &self.path)
            .field("headers", &self.headers)
            .field("parser", &self.parser)
            .field("reconnection", &self.reconnection)
            .field("reconnection_attempts", &self.reconnection_attempts)
            .field("reconnection_delay", &self.reconnection_delay)
            .field("reconnection_delay_max", &self.reconnection_delay_max)
            .field("wait_timeout", &self.wait_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("proxy", &self.proxy)
            .field(
                "handlers",
                &self.handlers.iter().map(|(e, _)| e).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The parts of `http://host[:port][/namespace][?query]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// `https://` or `wss://`.
    pub secure: bool,
    /// Host name or address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// The `Host` header: `host:port` as written (brackets kept).
    pub authority: String,
    /// The namespace named by the path (`/` when none).
    pub namespace: String,
    /// Query pairs, written as given.
    pub query: Vec<(String, String)>,
}

/// Parse the server URL. As socket.io-client, the path names the namespace
/// (the Engine.IO path is [`ClientOptions::path`]). `http` and `ws`, and
/// with the `tls` feature `https` and `wss`.
pub(crate) fn parse_url(url: &str) -> Result<Url> {
    let bad = |why: &str| Error::InvalidUrl(format!("{why}: {url:?}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let secure = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => false,
        "https" | "wss" if cfg!(feature = "tls") => true,
        "https" | "wss" => return Err(bad("TLS needs the `tls` feature of socketio-blocking")),
        _ => return Err(bad("scheme must be http or https")),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None if secure => 443,
        None => 80,
        Some(p) => p.parse::<u16>().map_err(|_| bad("invalid port"))?,
    };
    let namespace = match path.trim_end_matches('/') {
        "" => "/".to_owned(),
        p => p.to_owned(),
    };
    let query = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (pair.to_owned(), String::new()),
        })
        .collect();
    Ok(Url {
        secure,
        host: host.to_owned(),
        port,
        authority: authority.to_owned(),
        namespace,
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:3000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 3000));
        assert_eq!(u.namespace, "/");
        assert_eq!(u.authority, "127.0.0.1:3000");

        let u = parse_url("http://example.com/custom?token=a%20b&x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("example.com", 80));
        assert_eq!(u.namespace, "/custom");
        assert_eq!(
            u.query,
            vec![
                ("token".into(), "a%20b".into()),
                ("x".into(), String::new())
            ]
        );

        let u = parse_url("ws://[::1]:8080/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8080));
        assert_eq!(u.authority, "[::1]:8080");
        assert_eq!(u.namespace, "/");

        for bad in [
            "127.0.0.1:3000",
            "ftp://x",
            "http://:80",
            "http://h:99999",
            "http://[::1",
            "http://u@h",
        ] {
            assert!(matches!(parse_url(bad), Err(Error::InvalidUrl(_))), "{bad}");
        }
        let secure = parse_url("wss://example.com/chat");
        if cfg!(feature = "tls") {
            let u = secure.unwrap();
            assert_eq!(
                (u.secure, u.port, u.namespace.as_str()),
                (true, 443, "/chat")
            );
        } else {
            assert!(matches!(secure, Err(Error::InvalidUrl(_))));
        }
    }
}
