//! What the admin UI is told as it happens: the server's observer, which
//! turns connections, disconnections, room changes and events into
//! messages to the admin namespace (in development mode), and counts
//! connections for the statistics (in both modes).

use std::collections::HashMap;
use std::sync::{Mutex, Weak};

use serde::Serialize;
use socketio_core::parser::Args;
use socketio_core::socket::DisconnectReason;
use socketio_core::Value;

use super::protocol::{iso_time, now_ms, serialize_socket, SocketUpdated};
use super::stats::EventBuffer;
use crate::observer::ServerObserver;
use crate::server::{ServerInner, SocketRef};
use crate::{Server, Transport};

/// A socket connected since the instrumentation started.
struct Tracked {
    nsp: String,
    eio: String,
    connected_ms: u64,
    /// Whether it was seen on WebSocket already (`socket_updated` sent).
    websocket: bool,
}

#[derive(Default)]
struct Tracking {
    sockets: HashMap<String, Tracked>,
    /// Sockets per Engine.IO session: a session is a client connection of
    /// the statistics from its first socket to its last.
    sessions: HashMap<String, usize>,
}

/// The observer installed by [`crate::Server::instrument`].
pub(crate) struct Reporter {
    server: Weak<ServerInner>,
    /// The admin namespace (its own events are not reported).
    namespace: String,
    development: bool,
    pub(crate) events: EventBuffer,
    tracking: Mutex<Tracking>,
}

impl Reporter {
    pub(crate) fn new(server: &Server, namespace: String, development: bool) -> Reporter {
        Reporter {
            server: server.downgrade(),
            namespace,
            development,
            events: EventBuffer::default(),
            tracking: Mutex::default(),
        }
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    fn tracking(&self) -> std::sync::MutexGuard<'_, Tracking> {
        self.tracking.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Emit to every admin client.
    pub(crate) fn tell<A: Serialize + ?Sized>(&self, event: &str, args: &A) {
        if let Some(server) = Server::upgrade(&self.server) {
            if let Err(e) = server.of(&self.namespace).try_emit(event, args) {
                tracing::debug!(%event, error = %e, "admin message not sent");
            }
        }
    }

    /// When the socket connected, 0 if before the instrumentation.
    pub(crate) fn connected_ms(&self, socket: &str) -> u64 {
        self.tracking()
            .sockets
            .get(socket)
            .map_or(0, |t| t.connected_ms)
    }

    /// Forget a socket; counts its session's end when it was the last.
    fn untrack(tracking: &mut Tracking, socket: &str) -> bool {
        let Some(tracked) = tracking.sockets.remove(socket) else {
            return false;
        };
        if let Some(count) = tracking.sessions.get_mut(&tracked.eio) {
            *count -= 1;
            if *count == 0 {
                tracking.sessions.remove(&tracked.eio);
                return true;
            }
        }
        false
    }

    /// Forget sockets that left without being seen leaving (a disconnection
    /// that raced their connection's report), and tell the UI about
    /// sockets that moved to WebSocket since the last look.
    pub(crate) fn review(&self, server: &Server) {
        let candidates: Vec<(String, String, String)> = self
            .tracking()
            .sockets
            .iter()
            .filter(|(_, t)| !t.websocket)
            .map(|(id, t)| (id.clone(), t.nsp.clone(), t.eio.clone()))
            .collect();
        let mut upgraded = Vec::new();
        let mut gone = Vec::new();
        server.with_endpoint(|ep| {
            for (id, nsp, eio) in candidates {
                match ep.engine().transport(&eio) {
                    None => gone.push(id),
                    Some(Transport::WebSocket) => upgraded.push((id, nsp)),
                    Some(Transport::Polling) => {}
                }
            }
        });
        {
            let mut tracking = self.tracking();
            for id in &gone {
                if Self::untrack(&mut tracking, id) {
                    self.events.push("rawDisconnection");
                }
            }
            for (id, _) in &upgraded {
                if let Some(t) = tracking.sockets.get_mut(id) {
                    t.websocket = true;
                }
            }
        }
        if self.development {
            for (id, nsp) in &upgraded {
                let update = SocketUpdated {
                    id,
                    nsp,
                    transport: Transport::WebSocket.as_str(),
                };
                self.tell("socket_updated", &(update,));
            }
        }
    }
}

/// `[event, ...args]`, as the UI shows an event.
fn event_values(event: &str, args: Option<Args>) -> Vec<Value> {
    let mut values = vec![Value::String(event.to_owned())];
    if let Some(args) = args {
        values.extend(args.to_values().unwrap_or_default());
    }
    values
}

impl ServerObserver for Reporter {
    fn socket_connected(&self, socket: &SocketRef) {
        let now = now_ms();
        let websocket = socket.transport() == Some(Transport::WebSocket);
        let new_session = {
            let mut tracking = self.tracking();
            let tracked = Tracked {
                nsp: socket.ns().to_owned(),
                eio: socket.eio().to_owned(),
                connected_ms: now,
                websocket,
            };
            if tracking
                .sockets
                .insert(socket.id().to_owned(), tracked)
                .is_none()
            {
                let count = tracking
                    .sessions
                    .entry(socket.eio().to_owned())
                    .or_default();
                *count += 1;
                *count == 1
            } else {
                false
            }
        };
        if new_session {
            self.events.push("rawConnection");
        }
        if self.development {
            if let Some(serialized) = serialize_socket(socket, now) {
                self.tell("socket_connected", &(serialized, iso_time(now)));
            }
        }
    }

    fn socket_disconnected(&self, nsp: &str, socket: &str, reason: &DisconnectReason) {
        if Self::untrack(&mut self.tracking(), socket) {
            self.events.push("rawDisconnection");
        }
        if self.development {
            self.tell(
                "socket_disconnected",
                &(nsp, socket, reason.as_str(), iso_time(now_ms())),
            );
        }
    }

    fn event_received(&self, socket: &SocketRef, event: &str, args: &Args) {
        if !self.development || socket.ns() == self.namespace {
            return;
        }
        let values = event_values(event, Some(args.clone()));
        self.tell(
            "event_received",
            &(socket.ns(), socket.id(), values, iso_time(now_ms())),
        );
    }

    fn event_sent(
        &self,
        nsp: &str,
        recipients: &dyn Fn() -> Vec<String>,
        event: &str,
        args: &dyn Fn() -> Option<Args>,
    ) {
        // The admin namespace's own messages come through here too.
        if !self.development || nsp == self.namespace {
            return;
        }
        let values = event_values(event, args());
        let time = iso_time(now_ms());
        for id in recipients() {
            self.tell("event_sent", &(nsp, id, &values, &time));
        }
    }

    fn rooms_changed(&self, nsp: &str, sockets: &[String], room: &str, joined: bool) {
        if !self.development {
            return;
        }
        let event = if joined { "room_joined" } else { "room_left" };
        let time = iso_time(now_ms());
        for id in sockets {
            self.tell(event, &(nsp, room, id, &time));
        }
    }
}
