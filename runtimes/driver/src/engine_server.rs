//! The raw Engine.IO server driver: runs an [`engine::Server`] (sessions
//! and messages, no Socket.IO above), for applications that speak
//! Engine.IO themselves. The same driver as [`crate::ServerDriver`]'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use socketio_core::engine;

use crate::backlog::EventReceiver;
use crate::runtime::{BoxStream, Runtime};
use crate::server::Driver;

/// Runs an [`engine::Server`] on a [`Runtime`]: serves streams, fires its
/// timer, and delivers its [`engine::ServerEvent`]s (sessions opened,
/// messages, sessions closed) to a channel. Cheap to clone. Serve a
/// listener with [`crate::Router`] (or accept streams yourself and call
/// [`EngineDriver::handle_stream`]).
#[derive(Clone)]
pub struct EngineDriver {
    driver: Arc<Driver<engine::Server>>,
}

impl EngineDriver {
    /// Start driving `server` (its timer task is spawned now).
    pub fn new(
        runtime: Arc<dyn Runtime>,
        server: engine::Server,
    ) -> (Self, EventReceiver<engine::ServerEvent>) {
        let (driver, events) = Driver::new(runtime, server);
        (EngineDriver { driver }, events)
    }

    /// The runtime the driver runs on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        self.driver.runtime()
    }

    /// Call into the server (send, close), then drain its outputs. Do not
    /// call `with` from inside `f`: the lock is not reentrant.
    pub fn with<R>(&self, f: impl FnOnce(&mut engine::Server, Instant) -> R) -> R {
        self.driver.with(f)
    }

    /// Run one accepted stream as a connection of this server.
    pub fn handle_stream(&self, stream: BoxStream, remote: Option<SocketAddr>) {
        self.driver.handle_stream(stream, remote)
    }
}
