//! The Socket.IO Admin UI (feature `admin`): [`Server::instrument`] makes
//! the server speak what the web app of `@socket.io/admin-ui` 0.5 expects
//! on an admin namespace, with python-socketio's options.
//!
//! Admin clients are told, on connecting: a session id (`session`, when
//! they logged in with credentials; the UI reconnects with it), the
//! supported features (`config`) and, in development mode, every socket
//! (`all_sockets`). Then, every `server_stats_interval`, the statistics
//! (`server_stats`: server id, host name, pid, uptime, client counts,
//! connections and disconnections per second, namespaces with their socket
//! counts); in development mode also each `socket_connected`,
//! `socket_disconnected`, `socket_updated` (moved to WebSocket),
//! `room_joined`, `room_left`, `event_received` and `event_sent`. Unless
//! read-only, they may make sockets `join` or `leave` a room,
//! `_disconnect` them, or `emit` to them.

mod actions;
mod auth;
mod options;
mod protocol;
mod reporter;
mod stats;
mod ui;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

pub use options::{AdminAuth, AdminMode, AdminOptions};

use auth::{Admission, Gate};
use protocol::{feature, serialize_socket, Config};
use reporter::Reporter;

use crate::{ConnectRefusal, Server};

/// [`Server::instrument`] was called on a server that is instrumented
/// already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyInstrumented;

impl fmt::Display for AlreadyInstrumented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server is instrumented already")
    }
}

impl std::error::Error for AlreadyInstrumented {}

impl Server {
    /// Serve the [Socket.IO Admin UI](https://socket.io/docs/v4/admin-ui/)
    /// on `options`' namespace (`/admin`), as python-socketio's
    /// `instrument()` does (see the [`crate::admin`] module for what the UI
    /// is told). Point the UI at this server's URL with the namespace; it
    /// logs in with the credentials of [`AdminAuth::basic`], or whatever
    /// [`AdminAuth::check`] accepts. Wrong credentials are refused with
    /// `invalid credentials`.
    ///
    /// Without it nothing is observed and nothing costs; with it, in
    /// [`AdminMode::Development`], every event is also sent to the admin
    /// clients. Call it once, before serving.
    ///
    /// ```no_run
    /// use socketio::{AdminAuth, AdminOptions, Server};
    ///
    /// # fn main() {
    /// socketio::RuntimeKind::default().block_on(async {
    ///     let server = Server::builder().build();
    ///     server
    ///         .instrument(AdminOptions::new(AdminAuth::basic("admin", "changeit")).read_only(true))
    ///         .expect("instrumented once");
    ///     server.listen("127.0.0.1:3000".parse().unwrap()).await.unwrap();
    ///     std::future::pending::<()>().await;
    /// });
    /// # }
    /// ```
    pub fn instrument(&self, options: AdminOptions) -> Result<(), AlreadyInstrumented> {
        let development = options.mode == AdminMode::Development;
        let reporter = Arc::new(Reporter::new(self, options.namespace.clone(), development));
        if !self.set_observer(reporter.clone()) {
            return Err(AlreadyInstrumented);
        }
        tracing::info!(
            nsp = %options.namespace,
            mode = ?options.mode,
            read_only = options.read_only,
            "admin UI instrumentation"
        );
        let mut features = Vec::new();
        if !options.read_only {
            features.extend([
                feature::EMIT,
                feature::JOIN,
                feature::LEAVE,
                feature::DISCONNECT,
                feature::MJOIN,
                feature::MLEAVE,
                feature::MDISCONNECT,
            ]);
        }
        features.push(feature::AGGREGATED_EVENTS);
        if development {
            features.push(feature::ALL_EVENTS);
        }
        let gate = Arc::new(Gate::new(options.auth.clone()));
        let connecting = reporter.clone();
        self.ns(&options.namespace, |ns| {
            ns.on_connect(move |socket: crate::SocketRef, auth: Option<crate::Value>| {
                let gate = gate.clone();
                let reporter = connecting.clone();
                let features = features.clone();
                async move {
                    match gate.admit(auth.as_ref()) {
                        Admission::Refused => {
                            tracing::info!(socket = %socket.id(), "admin UI: invalid credentials");
                            return Err(ConnectRefusal::new("invalid credentials"));
                        }
                        Admission::NewSession(id) => {
                            let _ = socket.emit("session", &(id,));
                        }
                        Admission::Admitted => {}
                    }
                    let config = Config {
                        supported_features: features,
                    };
                    let _ = socket.emit("config", &(config,));
                    if development {
                        let sockets: Vec<_> = socket
                            .server()
                            .socket_refs()
                            .iter()
                            .filter_map(|s| serialize_socket(s, reporter.connected_ms(s.id())))
                            .collect();
                        let _ = socket.emit("all_sockets", &(sockets,));
                    }
                    Ok(())
                }
            });
            if !options.read_only {
                actions::register(ns);
            }
        });
        let server = self.downgrade();
        let interval = options.server_stats_interval;
        let server_id = options.server_id;
        let runtime = self.runtime().clone();
        let started = Instant::now();
        self.runtime().spawn(Box::pin(async move {
            loop {
                runtime.sleep_until(Instant::now() + interval).await;
                let Some(server) = Server::upgrade(&server) else {
                    return;
                };
                reporter.review(&server);
                let events = reporter.events.take();
                // Nobody to tell: skip the counting.
                if server.of(reporter.namespace()).sockets().is_empty() {
                    continue;
                }
                let stats = stats::server_stats(&server, server_id.as_deref(), started, events);
                reporter.tell("server_stats", &(stats,));
            }
        }));
        Ok(())
    }
}
