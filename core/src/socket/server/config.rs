//! The server's options.

#[cfg(doc)]
use super::Server;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::parser::DecodeLimits;
use crate::Str;

/// Which namespaces clients may connect to. `/` is always accepted, as in
/// the reference (its main namespace always exists).
#[derive(Clone)]
pub enum NamespaceMatcher {
    /// Exactly this name.
    Exact(Str),
    /// Any name (`*`).
    Any,
    /// Every name the predicate accepts (the reference's regular
    /// expressions and functions).
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl NamespaceMatcher {
    /// A matcher from a predicate.
    pub fn predicate(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> NamespaceMatcher {
        NamespaceMatcher::Predicate(Arc::new(f))
    }

    /// Whether `nsp` matches.
    pub fn matches(&self, nsp: &str) -> bool {
        match self {
            NamespaceMatcher::Exact(name) => name == nsp,
            NamespaceMatcher::Any => true,
            NamespaceMatcher::Predicate(f) => f(nsp),
        }
    }
}

impl fmt::Debug for NamespaceMatcher {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            NamespaceMatcher::Exact(name) => f.debug_tuple("Exact").field(name).finish(),
            NamespaceMatcher::Any => f.write_str("Any"),
            NamespaceMatcher::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// Connection state recovery options (off unless set in
/// [`ServerConfig::recovery`]).
#[derive(Debug, Clone)]
pub struct RecoveryConfig {
    /// How long a disconnected socket's id, rooms and data are kept, and
    /// how long sent packets are kept for replay (the reference's
    /// `maxDisconnectionDuration`, default 2 minutes).
    pub max_disconnection_duration: Duration,
    /// Most packets kept for replay per namespace (the reference keeps
    /// every packet of the duration; this bounds memory).
    pub max_packets: usize,
    /// Most bytes of packets kept for replay per namespace.
    pub max_bytes: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            max_packets: 10_000,
            max_bytes: 16 << 20,
        }
    }
}

/// Options of the Socket.IO server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Namespaces clients may connect to besides `/`.
    pub namespaces: Vec<NamespaceMatcher>,
    /// Accept every CONNECT at once and let the application's later
    /// [`Server::reject`] become a disconnect (python-socketio's
    /// `always_connect`).
    pub always_connect: bool,
    /// An Engine.IO session that has joined no namespace by then is closed
    /// (default 45 s).
    pub connect_timeout: Duration,
    /// Most acknowledgements the server may await from one socket
    /// (default 16,384: as many as the facade lets one socket's handlers
    /// wait, so 10,000 handlers each awaiting a `call` all run; each
    /// pending acknowledgement costs a map entry and a timer, about 100
    /// bytes, so one socket holds at most ~2 MB of them). Beyond it,
    /// `emit_with_ack` fails with `TooManyPendingAcks`.
    pub max_pending_acks: usize,
    /// Most acknowledgements one client may await from the application;
    /// beyond it the oldest request is forgotten (answering it is then an
    /// error), so an application that never answers cannot grow memory.
    pub max_unanswered_acks: usize,
    /// Bytes an Engine.IO session may have queued but not yet written
    /// before it counts as slow.
    pub max_buffered_bytes: usize,
    /// Bytes beyond which a session is closed at once as a slow consumer.
    pub max_buffered_bytes_hard: usize,
    /// How long a session may stay over [`ServerConfig::max_buffered_bytes`]
    /// before its sockets are disconnected as slow consumers.
    pub slow_consumer_grace: Duration,
    /// Connection state recovery; `None` disables it.
    pub recovery: Option<RecoveryConfig>,
    /// Limits for decoding the clients' packets.
    pub decode_limits: DecodeLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            namespaces: Vec::new(),
            always_connect: false,
            connect_timeout: Duration::from_secs(45),
            max_pending_acks: 16_384,
            max_unanswered_acks: 1024,
            max_buffered_bytes: 1 << 20,
            max_buffered_bytes_hard: 16 << 20,
            slow_consumer_grace: Duration::from_secs(10),
            recovery: None,
            decode_limits: DecodeLimits::default(),
        }
    }
}
