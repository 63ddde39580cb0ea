//! The server driver: accepts connections and runs a [`ServerEndpoint`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures_channel::mpsc;
use futures_util::future::{select, Either};
use futures_util::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use socketio_core::endpoint::ServerEndpoint;
use socketio_core::engine::{ConnId, Transmit};
use socketio_core::parser::Parser;
use socketio_core::socket::ServerEvent;

use crate::io::{read_loop, timer_loop, Driven};
use crate::runtime::{BoxStream, Listener, Runtime};

/// Writes smaller than this are joined into one buffer before writing, so
/// a batch of small packets leaves in one segment.
const COALESCE: usize = 64 * 1024;

struct State<P: Parser> {
    endpoint: ServerEndpoint<P>,
    /// Wakes the writer of each connection the driver runs.
    writers: HashMap<ConnId, async_channel::Sender<()>>,
    /// The deadline the timer task was last told about.
    armed: Option<Instant>,
}

struct Shared<P: Parser> {
    runtime: Arc<dyn Runtime>,
    state: Mutex<State<P>>,
    timer_wake: async_channel::Sender<()>,
    events: mpsc::UnboundedSender<ServerEvent>,
    /// Dropped by [`ServerDriver::stop`]: accept loops see their receiver
    /// close.
    stop: Mutex<Option<async_channel::Sender<()>>>,
    stopped: async_channel::Receiver<()>,
}

/// Runs a [`ServerEndpoint`] on a [`Runtime`]: serves listeners and
/// streams, fires the core's timer, and delivers the core's application
/// events to a channel. Cheap to clone (one shared state).
pub struct ServerDriver<P: Parser> {
    shared: Arc<Shared<P>>,
}

impl<P: Parser> Clone for ServerDriver<P> {
    fn clone(&self) -> Self {
        ServerDriver {
            shared: self.shared.clone(),
        }
    }
}

impl<P> ServerDriver<P>
where
    P: Parser + Send + 'static,
{
    /// Start driving `endpoint` (its timer task is spawned now). The
    /// receiver yields the core's [`ServerEvent`]s in order; the
    /// application answers them through [`ServerDriver::with`].
    pub fn new(
        runtime: Arc<dyn Runtime>,
        endpoint: ServerEndpoint<P>,
    ) -> (Self, mpsc::UnboundedReceiver<ServerEvent>) {
        let (events, events_rx) = mpsc::unbounded();
        let (timer_wake, wake_rx) = async_channel::bounded(1);
        let (stop, stopped) = async_channel::bounded(1);
        let shared = Arc::new(Shared {
            runtime: runtime.clone(),
            state: Mutex::new(State {
                endpoint,
                writers: HashMap::new(),
                armed: None,
            }),
            timer_wake,
            events,
            stop: Mutex::new(Some(stop)),
            stopped,
        });
        runtime.spawn(Box::pin(timer_loop(
            Arc::downgrade(&shared),
            runtime.clone(),
            wake_rx,
        )));
        (ServerDriver { shared }, events_rx)
    }

    /// The runtime the driver runs on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.shared.runtime
    }

    /// Call into the endpoint (application calls such as accept, emit,
    /// join), then pump it and drain its outputs. `f` gets the current
    /// time. Do not call `with` from inside `f`: the lock is not reentrant.
    pub fn with<R>(&self, f: impl FnOnce(&mut ServerEndpoint<P>, Instant) -> R) -> R {
        self.shared.with_state(|state, now| {
            let result = f(&mut state.endpoint, now);
            state.endpoint.pump(now);
            result
        })
    }

    /// Serve connections from `listener` until [`ServerDriver::stop`].
    pub fn serve(&self, mut listener: Box<dyn Listener>) {
        let driver = self.clone();
        let stopped = self.shared.stopped.clone();
        self.shared.runtime.spawn(Box::pin(async move {
            let mut stop = Box::pin(stopped.recv());
            loop {
                match select(listener.accept(), stop.as_mut()).await {
                    Either::Left((Ok((stream, remote)), _)) => {
                        driver.handle_stream(stream, Some(remote))
                    }
                    Either::Left((Err(e), _)) => {
                        // Out of descriptors and the like: back off briefly
                        // rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        let at = Instant::now() + std::time::Duration::from_millis(50);
                        driver.shared.runtime.sleep_until(at).await;
                    }
                    Either::Right(_) => return,
                }
            }
        }));
    }

    /// Run one already accepted stream (for example a TLS stream) as a
    /// connection of this server.
    pub fn handle_stream(&self, stream: BoxStream, remote: Option<SocketAddr>) {
        let (reader, writer) = stream.split();
        let (wake, wake_rx) = async_channel::bounded(1);
        let (stop, stop_rx) = async_channel::bounded::<()>(1);
        let conn = self.shared.with_state(|state, now| {
            let conn = state.endpoint.handle_connection(now, remote);
            state.writers.insert(conn, wake);
            conn
        });
        tracing::trace!(conn = conn.0, ?remote, "connection");
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

    /// Stop accepting connections (listeners close). Existing connections
    /// go on until the endpoint closes them.
    pub fn stop(&self) {
        self.shared.stop.lock().expect("stop lock").take();
    }

    /// Drop every connection at once (their streams close); for the end
    /// of a shutdown, once the last messages had time to leave.
    pub fn close_all(&self) {
        self.shared.with_state(|state, now| {
            let conns: Vec<ConnId> = state.writers.drain().map(|(conn, _)| conn).collect();
            for conn in conns {
                state.endpoint.handle_eof(now, conn);
            }
        });
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.shared.lock().writers.len()
    }
}

impl<P: Parser + Send + 'static> Shared<P> {
    fn lock(&self) -> MutexGuard<'_, State<P>> {
        // A panic in an application closure must not wedge the server.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State<P>, Instant) -> R) -> R {
        let mut state = self.lock();
        let now = Instant::now();
        let result = f(&mut state, now);
        self.drain(&mut state);
        result
    }

    /// Everything the core has for the outside, in the documented order.
    fn drain(&self, state: &mut State<P>) {
        while let Some(event) = state.endpoint.poll_event() {
            // The application may have stopped listening: nothing to do.
            let _ = self.events.unbounded_send(event);
        }
        while let Some(conn) = state.endpoint.poll_ready() {
            match state.writers.get(&conn) {
                // A full channel already holds a wake-up.
                Some(writer) => {
                    let _ = writer.try_send(());
                }
                None => while state.endpoint.poll_transmit(conn).is_some() {},
            }
        }
        let next = state.endpoint.poll_timeout();
        if next != state.armed {
            state.armed = next;
            let _ = self.timer_wake.try_send(());
        }
    }
}

impl<P: Parser + Send + 'static> Driven for Shared<P> {
    fn on_read(this: &Arc<Self>, conn: ConnId, data: &[u8]) {
        this.with_state(|state, now| {
            // A deadline that passed before the timer task ran is handled
            // first: a request must not revive a session already dead.
            if state.endpoint.poll_timeout().is_some_and(|at| at <= now) {
                state.endpoint.handle_timeout(now);
            }
            state.endpoint.handle_read(now, conn, data)
        });
    }

    fn on_eof(this: &Arc<Self>, conn: ConnId) {
        this.with_state(|state, now| {
            state.writers.remove(&conn);
            state.endpoint.handle_eof(now, conn);
        });
    }

    fn next_timeout(this: &Arc<Self>) -> Option<Instant> {
        this.lock().endpoint.poll_timeout()
    }

    fn on_timeout(this: &Arc<Self>) {
        this.with_state(|state, now| state.endpoint.handle_timeout(now));
    }
}

/// Write what the core has for `conn` each time it is woken. Ends on
/// [`Transmit::Close`], on a write error (reported as end of stream), or
/// when the connection is dropped; `_stop` then ends the reader.
async fn write_loop<P: Parser + Send + 'static>(
    shared: Arc<Shared<P>>,
    conn: ConnId,
    mut writer: WriteHalf<BoxStream>,
    wake: async_channel::Receiver<()>,
    _stop: async_channel::Sender<()>,
) {
    'woken: while wake.recv().await.is_ok() {
        loop {
            let (batch, close) = shared.with_state(|state, now| {
                let mut batch = Vec::new();
                let mut close = false;
                while let Some(transmit) = state.endpoint.poll_transmit(conn) {
                    match transmit {
                        Transmit::Data(bytes) => batch.push(bytes),
                        Transmit::Close => {
                            state.writers.remove(&conn);
                            close = true;
                            break;
                        }
                    }
                }
                if !batch.is_empty() {
                    // Report the written bytes (backpressure accounting).
                    state.endpoint.pump(now);
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

/// Write buffers in order, small ones joined.
pub(crate) async fn write_batch(
    writer: &mut WriteHalf<BoxStream>,
    batch: Vec<bytes::Bytes>,
) -> std::io::Result<()> {
    let total: usize = batch.iter().map(|b| b.len()).sum();
    if batch.len() > 1 && total <= COALESCE {
        let mut joined = Vec::with_capacity(total);
        for bytes in &batch {
            joined.extend_from_slice(bytes);
        }
        writer.write_all(&joined).await?;
    } else {
        for bytes in &batch {
            writer.write_all(bytes).await?;
        }
    }
    writer.flush().await
}
