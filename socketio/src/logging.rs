//! A one-line logging switch (feature `logging`), the counterpart of
//! python-socketio's `logger=True` and `engineio_logger=True`.
//!
//! Every crate of this project logs through [`tracing`]; nothing is
//! printed until the application installs a subscriber. [`init`] installs
//! one that writes to stderr, filtered by `RUST_LOG` (or `info` when it is
//! not set); [`init_with`] takes the filter in the same syntax. Skip both
//! and install your own subscriber (`tracing-subscriber`, `tracing-journald`,
//! OpenTelemetry...) if the application has one already.
//!
//! ```no_run
//! use socketio::logging::{self, Layer, Level};
//!
//! // python: socketio.AsyncServer(logger=True, engineio_logger=True)
//! logging::init_with(&format!(
//!     "info,{},{}",
//!     Layer::SocketIo.at(Level::DEBUG),
//!     Layer::EngineIo.at(Level::DEBUG)
//! ))
//! .unwrap();
//! ```
//!
//! A target in a filter is a prefix of the module path, character by
//! character: `socketio` alone matches `socketio_core` and
//! `socketio_driver` too (everything of ours), `socketio::` only the
//! facade. The most specific directive wins.
//!
//! # Targets
//! A log's target is the module that wrote it, so a filter picks a layer
//! by its module path (a prefix covers the modules below it):
//!
//! | Layer ([`Layer`]) | Targets | What it says |
//! |---|---|---|
//! | Socket.IO ([`Layer::SocketIo`], python's `logger`) | `socketio::` (the facade: connects, events without a handler, disconnects, the client's reconnection), `socketio_core::socket`, `socketio_core::endpoint` | namespaces joined and left, refused connections, invalid packets, handler bounds |
//! | Engine.IO ([`Layer::EngineIo`], python's `engineio_logger`) | `socketio_core::engine` | sessions opened (polling or websocket), upgrades, ping timeouts, refused requests (origin, unknown sid, bad bodies), closes with their reason |
//! | Driver ([`Layer::Driver`]) | `socketio_driver` (its buses included), `socketio_blocking` | failed reads, writes, connects and TLS handshakes, refused HTTP routes (`debug`); each accepted connection (`trace`) |
//! | Cluster ([`Layer::Cluster`]) | `socketio_core::socket::server::cluster`, `socketio_driver::{bus, redis, amqp, kafka, zmq}`, `socketio::cluster` | bus connects and reconnects, subscriptions, messages dropped or undecodable, server-side requests timing out |
//!
//! Levels: `error` for a handler that failed, `warn` for what an operator
//! should look at (a peer breaking a limit, a bus lost), `info` for a
//! server starting or a bus connecting, `debug` for each protocol step,
//! `trace` for every frame. `info` (the default of [`init`]) is quiet in
//! normal operation.
//!
//! ```text
//! RUST_LOG=debug cargo run --example chat                   # everything, step by step
//! RUST_LOG=socketio::=debug,socketio_core::socket=debug ...  # python's logger=True
//! RUST_LOG=socketio_core::engine=debug ...                   # python's engineio_logger=True
//! RUST_LOG=info,socketio_driver::redis=trace ...             # one cluster bus, frame by frame
//! ```

use std::fmt;
use std::str::FromStr;

pub use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter [`init`] uses when `RUST_LOG` is not set: warnings, errors
/// and the few `info` lines (a server listening, a bus connected).
pub const DEFAULT_FILTER: &str = "info";

/// One layer of the stack, as a set of `tracing` targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Socket.IO: namespaces, events, acks (python-socketio's `logger`).
    SocketIo,
    /// Engine.IO: sessions, transports, upgrades, heartbeats
    /// (python-socketio's `engineio_logger`).
    EngineIo,
    /// The IO driver: sockets, TLS, HTTP routing, the client's transports.
    Driver,
    /// The cluster adapters and their message buses.
    Cluster,
}

impl Layer {
    /// Every layer.
    pub const ALL: [Layer; 4] = [
        Layer::SocketIo,
        Layer::EngineIo,
        Layer::Driver,
        Layer::Cluster,
    ];

    /// The target prefixes of this layer's logs.
    pub const fn targets(self) -> &'static [&'static str] {
        match self {
            // `socketio::`, not `socketio`: a bare prefix would match
            // `socketio_core` and `socketio_driver` too.
            Layer::SocketIo => &[
                "socketio::",
                "socketio_core::socket",
                "socketio_core::endpoint",
            ],
            Layer::EngineIo => &["socketio_core::engine"],
            Layer::Driver => &["socketio_driver", "socketio_blocking"],
            Layer::Cluster => &[
                "socketio_core::socket::server::cluster",
                "socketio_driver::bus",
                "socketio_driver::redis",
                "socketio_driver::amqp",
                "socketio_driver::kafka",
                "socketio_driver::zmq",
                "socketio::cluster",
            ],
        }
    }

    /// The filter directives turning this layer on at `level`, for
    /// [`init_with`]: `Layer::EngineIo.at(Level::DEBUG)` is
    /// `"socketio_core::engine=debug"`.
    pub fn at(self, level: Level) -> String {
        let level = level.as_str().to_ascii_lowercase();
        self.targets()
            .iter()
            .map(|target| format!("{target}={level}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Why [`init_with`] installed nothing.
#[derive(Debug)]
pub enum LoggingError {
    /// The filter is not `target=level,...` (or a bare level).
    Filter(String),
    /// The process has a global subscriber already.
    AlreadyInitialized,
}

impl fmt::Display for LoggingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoggingError::Filter(why) => write!(f, "bad log filter: {why}"),
            LoggingError::AlreadyInitialized => {
                f.write_str("a tracing subscriber is installed already")
            }
        }
    }
}

impl std::error::Error for LoggingError {}

/// Parses a filter: comma-separated `target=level` directives, a bare
/// level for everything else (`"info,socketio_core::engine=debug"`), the
/// simple form of `RUST_LOG`.
pub fn filter(directives: &str) -> Result<Targets, LoggingError> {
    Targets::from_str(directives).map_err(|e| LoggingError::Filter(format!("{directives:?}: {e}")))
}

/// Logs to stderr, filtered by `RUST_LOG` (or [`DEFAULT_FILTER`] when it
/// is unset or does not parse, which is said on stderr). Does nothing if
/// the process has a subscriber already, so that calling it twice, or
/// from a library, is harmless.
pub fn init() {
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let directives = match directives.trim() {
        "" => DEFAULT_FILTER,
        set => set,
    };
    let targets = filter(directives).unwrap_or_else(|e| {
        eprintln!("RUST_LOG ignored ({e}); logging at {DEFAULT_FILTER}");
        filter(DEFAULT_FILTER).expect("the default filter parses")
    });
    let _ = install(targets);
}

/// Logs to stderr, filtered by `directives` (see [`filter`]; [`Layer::at`]
/// writes them per layer). `RUST_LOG` is not read.
pub fn init_with(directives: &str) -> Result<(), LoggingError> {
    install(filter(directives)?)
}

fn install(targets: Targets) -> Result<(), LoggingError> {
    use std::io::IsTerminal;
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    tracing_subscriber::registry()
        .with(output)
        .with(targets)
        .try_init()
        .map_err(|_| LoggingError::AlreadyInitialized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_turns_on_its_targets_and_no_other() {
        let engine = filter(&Layer::EngineIo.at(Level::DEBUG)).unwrap();
        assert!(engine.would_enable("socketio_core::engine::server", &Level::DEBUG));
        assert!(!engine.would_enable("socketio_core::engine::server", &Level::TRACE));
        assert!(!engine.would_enable("socketio_core::socket::server", &Level::DEBUG));
        assert!(!engine.would_enable("socketio", &Level::ERROR));

        let cluster = filter(&format!("warn,{}", Layer::Cluster.at(Level::TRACE))).unwrap();
        assert!(cluster.would_enable("socketio_driver::redis::bus", &Level::TRACE));
        assert!(cluster.would_enable(
            "socketio_core::socket::server::cluster::streams",
            &Level::TRACE
        ));
        assert!(!cluster.would_enable("socketio_driver::conn", &Level::DEBUG));
        assert!(cluster.would_enable("socketio_driver::conn", &Level::WARN));
    }

    #[test]
    fn the_socketio_layer_is_the_facade_and_the_protocol_not_engineio() {
        let socketio = filter(&Layer::SocketIo.at(Level::DEBUG)).unwrap();
        assert!(socketio.would_enable("socketio::server", &Level::DEBUG));
        assert!(socketio.would_enable("socketio_core::socket::server", &Level::DEBUG));
        assert!(!socketio.would_enable("socketio_core::engine::server", &Level::DEBUG));
        assert!(!socketio.would_enable("socketio_driver::conn", &Level::DEBUG));
    }

    #[test]
    fn a_bad_filter_is_refused_with_its_text() {
        let err = filter("socketio=loud").unwrap_err();
        assert!(err.to_string().contains("socketio=loud"), "{err}");
    }
}
