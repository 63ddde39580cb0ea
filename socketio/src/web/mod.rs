//! The server as part of a web application: static files next to the
//! Socket.IO path (python-engineio's `static_files`), served by our own
//! listener and, with the `tower` feature, by the [`tower`] service that
//! mounts the server in hyper or axum (python-socketio's `ASGIApp`).

mod listener;
mod static_files;
#[cfg(feature = "tower")]
pub mod tower;

pub(crate) use listener::serve_with_static_files;
#[cfg(feature = "admin")]
pub(crate) use static_files::Guard;
pub use static_files::StaticFiles;

use std::sync::Arc;
use std::time::Duration;

use socketio_core::engine;

/// What the web integration needs to know of a server.
pub(crate) struct WebConfig {
    /// The Socket.IO path (`/socket.io/`).
    pub(crate) path: String,
    /// Largest polling body accepted (`max_payload`).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) max_payload: usize,
    pub(crate) static_files: Option<Arc<StaticFiles>>,
    /// How long a mounted request may wait for the server's answer: a
    /// long-polling GET is answered within a ping interval.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) response_deadline: Duration,
}

impl WebConfig {
    pub(crate) fn new(engine: &engine::ServerConfig, files: Option<StaticFiles>) -> WebConfig {
        WebConfig {
            path: engine.path.clone(),
            max_payload: engine.max_payload,
            static_files: files.map(Arc::new),
            response_deadline: engine.ping_interval
                + engine.ping_interval_grace
                + engine.ping_timeout
                + Duration::from_secs(30),
        }
    }
}
