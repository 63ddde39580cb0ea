//! Engine.IO options, with python-socketio's names and defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A transport an Engine.IO session can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl Transport {
    /// The name used in the `transport` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        }
    }
}

/// Which cross-origin requests the server accepts (python-socketio's
/// `cors_allowed_origins`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CorsOrigins {
    /// Only requests whose `Origin` matches the `Host` they were sent to
    /// (and requests without `Origin`).
    #[default]
    SameOrigin,
    /// Any origin (`*`).
    Any,
    /// These origins exactly (for example `https://example.com`).
    List(Vec<String>),
}

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None`.
    None,
}

/// The cookie holding the session id, for sticky load balancing. Off unless
/// configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// Cookie name (engine.io's default is `io`).
    pub name: String,
    /// `Path` attribute (`/` by default).
    pub path: Option<String>,
    /// `HttpOnly` attribute (on by default).
    pub http_only: bool,
    /// `SameSite` attribute (`Lax` by default).
    pub same_site: Option<SameSite>,
    /// `Secure` attribute.
    pub secure: bool,
    /// `Max-Age` attribute.
    pub max_age: Option<Duration>,
    /// `Domain` attribute.
    pub domain: Option<String>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "io".into(),
            path: Some("/".into()),
            http_only: true,
            same_site: Some(SameSite::Lax),
            secure: false,
            max_age: None,
            domain: None,
        }
    }
}

/// What the application's request check sees: the handshake or upgrade
/// request before a session exists.
pub type RequestCheck =
    Arc<dyn Fn(&crate::http::Request) -> Result<(), String> + Send + Sync + 'static>;

/// Engine.IO server options.
#[derive(Clone)]
pub struct ServerConfig {
    /// The path the server answers on (`/socket.io/`).
    pub path: String,
    /// Time between two pings (25 s).
    pub ping_interval: Duration,
    /// Extra time added to `ping_interval` before the server pings, the second
    /// element of python-socketio's `ping_interval` tuple (0).
    pub ping_interval_grace: Duration,
    /// Time to wait for a pong before the session is dead (20 s).
    pub ping_timeout: Duration,
    /// Largest payload accepted, in bytes: a POST body, a WebSocket message
    /// (1,000,000).
    pub max_payload: usize,
    /// Whether clients may upgrade from polling to WebSocket (true).
    pub allow_upgrades: bool,
    /// Transports accepted (both).
    pub transports: Vec<Transport>,
    /// Time an upgrade may take before it is abandoned (10 s).
    pub upgrade_timeout: Duration,
    /// The session cookie (off).
    pub cookie: Option<CookieConfig>,
    /// Accepted origins (same origin).
    pub cors_allowed_origins: CorsOrigins,
    /// Whether CORS responses allow credentials (true).
    pub cors_credentials: bool,
    /// Compress polling responses with gzip or deflate when the client
    /// accepts it (true).
    pub http_compression: bool,
    /// Smallest polling response that is compressed, in bytes (1024); also
    /// the smallest WebSocket message compressed when
    /// `websocket_compression` is on (engine.io's `perMessageDeflate`
    /// threshold, 1024 too).
    pub compression_threshold: usize,
    /// Accept permessage-deflate (RFC 7692) on WebSocket connections when
    /// the client offers it (false, as engine.io's `perMessageDeflate` since
    /// engine.io 4). Needs the `deflate` cargo feature; ignored without it.
    pub websocket_compression: bool,
    /// Largest HTTP request head, in bytes (a larger one gets 431).
    pub max_http_head: usize,
    /// The application's check of handshake requests: `Err` refuses with
    /// code 4 "Forbidden" (403).
    pub allow_request: Option<RequestCheck>,
    /// How long an HTTP connection may stay without a complete request
    /// while no response is pending (30 s): a connection that never sends a
    /// request, or sends it too slowly, is closed after this.
    pub idle_timeout: Duration,
    /// Unsent output, in bytes, beyond which a connection is not read
    /// ([`super::Server::wants_read`] is false) until it drains (1 MiB):
    /// what the connection has queued (responses, WebSocket frames, pongs).
    /// A peer
    /// that does not read then meets TCP's backpressure instead of making
    /// the server buffer for it.
    pub max_buffered_output: usize,
    /// Unsent output, in bytes, beyond which a connection's session is
    /// closed at once as a slow consumer ([`super::CloseReason::SlowConsumer`],
    /// 16 MiB), checked after each read: reached only by a driver that
    /// reads while [`super::Server::wants_read`] is false. (What the
    /// application sends is its own to bound, with
    /// [`super::Server::buffered`]; the Socket.IO layer does.)
    pub max_buffered_output_hard: usize,
    /// Buffers of unsent output beyond which a connection is not read,
    /// like [`ServerConfig::max_buffered_output`] (4096): many small frames
    /// (acks, echoes of short events) cost more memory than their bytes
    /// say, each its own allocation.
    pub max_buffered_frames: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            path: "/socket.io/".into(),
            ping_interval: Duration::from_secs(25),
            ping_interval_grace: Duration::ZERO,
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            allow_upgrades: true,
            transports: vec![Transport::Polling, Transport::WebSocket],
            upgrade_timeout: Duration::from_secs(10),
            cookie: None,
            cors_allowed_origins: CorsOrigins::SameOrigin,
            cors_credentials: true,
            http_compression: true,
            compression_threshold: 1024,
            websocket_compression: false,
            max_http_head: 16 * 1024,
            allow_request: None,
            idle_timeout: Duration::from_secs(30),
            max_buffered_output: 1 << 20,
            max_buffered_output_hard: 16 << 20,
            max_buffered_frames: 4096,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_interval_grace", &self.ping_interval_grace)
            .field("ping_timeout", &self.ping_timeout)
            .field("max_payload", &self.max_payload)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("transports", &self.transports)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("cookie", &self.cookie)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("cors_credentials", &self.cors_credentials)
            .field("http_compression", &self.http_compression)
            .field("compression_threshold", &self.compression_threshold)
            .field("websocket_compression", &self.websocket_compression)
            .field("max_http_head", &self.max_http_head)
            .field("allow_request", &self.allow_request.is_some())
            .field("idle_timeout", &self.idle_timeout)
            .field("max_buffered_output", &self.max_buffered_output)
            .field("max_buffered_output_hard", &self.max_buffered_output_hard)
            .field("max_buffered_frames", &self.max_buffered_frames)
            .finish()
    }
}

/// How the client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientTransports {
    /// Long-polling only.
    Polling,
    /// Straight to WebSocket.
    WebSocket,
    /// Long-polling first, then upgrade to WebSocket (the default, as the
    /// reference clients do).
    #[default]
    Upgrade,
}

/// Engine.IO client options.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `Host` header value (`host:port`).
    pub host: String,
    /// Engine path (`/socket.io/`).
    pub path: String,
    /// Extra query parameters (already percent-encoded pairs are written
    /// as given).
    pub query: Vec<(String, String)>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Transports to use.
    pub transports: ClientTransports,
    /// Largest message accepted from the server, in bytes (the server's
    /// `maxPayload` bounds what we send).
    pub max_payload: usize,
    /// Time allowed for the handshake (20 s, socket.io-client's `timeout`).
    pub connect_timeout: Duration,
    /// Most messages waiting to be sent (10,000): a server that stops
    /// reading cannot make the queue grow without bound; `send` fails when
    /// it is full.
    pub max_queued_messages: usize,
    /// Offer permessage-deflate (RFC 7692) on WebSocket connections (false);
    /// messages of `websocket_compression_threshold` bytes or more are then
    /// compressed when the server accepts. Needs the `deflate` cargo
    /// feature; ignored without it.
    pub websocket_compression: bool,
    /// Smallest WebSocket message compressed (1024, engine.io-client's
    /// `perMessageDeflate.threshold`).
    pub websocket_compression_threshold: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            host: "localhost".into(),
            path: "/socket.io/".into(),
            query: Vec::new(),
            headers: Vec::new(),
            transports: ClientTransports::Upgrade,
            max_payload: 100_000_000,
            connect_timeout: Duration::from_secs(20),
            max_queued_messages: 10_000,
            websocket_compression: false,
            websocket_compression_threshold: 1024,
        }
    }
}
