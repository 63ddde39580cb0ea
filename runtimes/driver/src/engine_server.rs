//! The raw Engine.IO server driver: runs an [`engine::Server`] (sessions
//! and messages, no Socket.IO above), for applications that speak
//! Engine.IO themselves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures_channel::mpsc;
use futures_util::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use socketio_core::engine::{self, ConnId, Transmit};

use crate::io::{read_loop, timer_loop, Driven};
use crate::runtime::{BoxStream, Runtime};
use crate::server::write_batch;

struct State {
    server: engine::Server,
    writers: HashMap<ConnId, async_channel::Sender<()>>,
    armed: Option<Instant>,
}

struct Shared {
    runtime: Arc<dyn Runtime>,
    state: Mutex<State>,
    timer_wake: async_channel::Sender<()>,
    events: mpsc::UnboundedSender<engine::ServerEvent>,
}

/// Runs an [`engine::Server`] on a [`Runtime`]: serves streams, fires its
/// timer, and delivers its [`engine::ServerEvent`]s (sessions opened,
/// messages, sessions closed) to a channel. Cheap to clone. Serve a
/// listener with [`crate::Router`] (or accept streams yourself and call
/// [`EngineDriver::handle_stream`]).
#[derive(Clone)]
pub struct EngineDriver {
    shared: Arc<Shared>,
}

impl EngineDriver {
    /// Start driving `server` (its timer task is spawned now).
    pub fn new(
        runtime: Arc<dyn Runtime>,
        server: engine::Server,
    ) -> (Self, mpsc::UnboundedReceiver<engine::ServerEvent>) {
        let (events, events_rx) = mpsc::unbounded();
        let (timer_wake, wake_rx) = async_channel::bounded(1);
        let shared = Arc::new(Shared {
            runtime: runtime.clone(),
            state: Mutex::new(State {
                server,
                writers: HashMap::new(),
                armed: None,
            }),
            timer_wake,
            events,
        });
        runtime.spawn(Box::pin(timer_loop(
            Arc::downgrade(&shared),
            runtime.clone(),
            wake_rx,
        )));
        (EngineDriver { shared }, events_rx)
    }

    /// The runtime the driver runs on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.shared.runtime
    }

    /// Call into the server (send, close), then drain its outputs. Do not
    /// call `with` from inside `f`: the lock is not reentrant.
    pub fn with<R>(&self, f: impl FnOnce(&mut engine::Server, Instant) -> R) -> R {
        self.shared
            .with_state(|state, now| f(&mut state.server, now))
    }

    /// Run one accepted stream as a connection of this server.
    pub fn handle_stream(&self, stream: BoxStream, remote: Option<SocketAddr>) {
        let (reader, writer) = stream.split();
        let (wake, wake_rx) = async_channel::bounded(1);
        let (stop, stop_rx) = async_channel::bounded::<()>(1);
        let conn = self.shared.with_state(|state, now| {
            let conn = state.server.handle_connection(now, remote);
            state.writers.insert(conn, wake);
            conn
        });
        let runtime = &self.shared.runtime;
        runtime.spawn(Box::pin(read_loop(
            self.shared.clone(),
            conn,
            reader,
            stop_rx,
        )));
        runtime.spawn(Box::pin(write_loop(
            self.shared.clone(),
            conn,
            writer,
            wake_rx,
            stop,
        )));
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let mut state = self.lock();
        let now = Instant::now();
        let result = f(&mut state, now);
        // Events, then the transmit side, then the deadline.
        while let Some(event) = state.server.poll_event() {
            let _ = self.events.unbounded_send(event);
        }
        while let Some(conn) = state.server.poll_ready() {
            match state.writers.get(&conn) {
                Some(writer) => {
                    let _ = writer.try_send(());
                }
                None => while state.server.poll_transmit(conn).is_some() {},
            }
        }
        let next = state.server.poll_timeout();
        if next != state.armed {
            state.armed = next;
            let _ = self.timer_wake.try_send(());
        }
        result
    }
}

impl Driven for Shared {
    fn on_read(this: &Arc<Self>, conn: ConnId, data: &[u8]) {
        this.with_state(|state, now| {
            // A deadline that passed before the timer task ran is handled
            // first: a request must not revive a session already dead.
            if state.server.poll_timeout().is_some_and(|at| at <= now) {
                state.server.handle_timeout(now);
            }
            state.server.handle_read(now, conn, data)
        });
    }

    fn on_eof(this: &Arc<Self>, conn: ConnId) {
        this.with_state(|state, now| {
            state.writers.remove(&conn);
            state.server.handle_eof(now, conn);
        });
    }

    fn next_timeout(this: &Arc<Self>) -> Option<Instant> {
        this.lock().server.poll_timeout()
    }

    fn on_timeout(this: &Arc<Self>) {
        this.with_state(|state, now| state.server.handle_timeout(now));
    }
}

/// Write what the server has for `conn` each time it is woken (as the
/// Socket.IO driver's writer does).
async fn write_loop(
    shared: Arc<Shared>,
    conn: ConnId,
    mut writer: WriteHalf<BoxStream>,
    wake: async_channel::Receiver<()>,
    _stop: async_channel::Sender<()>,
) {
    'woken: while wake.recv().await.is_ok() {
        loop {
            let (batch, close) = shared.with_state(|state, _| {
                let mut batch = Vec::new();
                let mut close = false;
                while let Some(transmit) = state.server.poll_transmit(conn) {
                    match transmit {
                        Transmit::Data(bytes) => batch.push(bytes),
                        Transmit::Close => {
                            state.writers.remove(&conn);
                            close = true;
                            break;
                        }
                    }
                }
                (batch, close)
            });
            if batch.is_empty() && !close {
                break;
            }
            if let Err(e) = write_batch(&mut writer, batch).await {
                tracing::debug!(conn = conn.0, error = %e, "write failed");
                Driven::on_eof(&shared, conn);
                break 'woken;
            }
            if close {
                break 'woken;
            }
        }
    }
    let _ = writer.close().await;
}
