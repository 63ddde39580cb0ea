//! The server drivers: accept connections and run a server-side core, the
//! Socket.IO [`ServerEndpoint`] ([`ServerDriver`]) or the raw Engine.IO
//! [`engine::Server`] ([`crate::EngineDriver`]), with one generic
//! [`Driver`] below both.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::future::{select, Either};
use socketio_core::cluster::{BusCommand, BusInput};
use socketio_core::endpoint::ServerEndpoint;
use socketio_core::engine::{self, ConnId, Transmit};
use socketio_core::parser::Parser;
use socketio_core::socket::ServerEvent;

use crate::backlog::{Backlog, EventReceiver};
use crate::conn::{connection, ConnDriver, ConnSignal, Pulled, WRITE_BATCH};
use crate::io::{timer_loop, Timed};
use crate::runtime::{BoxStream, Listener, Runtime};

/// What the driver needs of a server-side core. Implemented by the
/// Socket.IO [`ServerEndpoint`] and the raw Engine.IO [`engine::Server`].
pub(crate) trait ServerCore: Send + 'static {
    /// The application events the core reports.
    type Event: Send + 'static;
    fn handle_connection(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId;
    fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]);
    /// Whether reading more from `conn` is useful now (flow control: false
    /// while its unsent output is over the soft bound). O(1).
    fn wants_read(&self, conn: ConnId) -> bool;
    fn handle_eof(&mut self, now: Instant, conn: ConnId);
    fn handle_timeout(&mut self, now: Instant);
    fn poll_timeout(&self) -> Option<Instant>;
    fn poll_event(&mut self) -> Option<Self::Event>;
    fn poll_ready(&mut self) -> Option<ConnId>;
    fn poll_transmit(&mut self, conn: ConnId) -> Option<Transmit>;
    /// Settle the core after application calls, and after output was
    /// taken (the Socket.IO layer learns what was written).
    fn pump(&mut self, now: Instant);
    /// The next command for a cluster bus backend.
    fn poll_bus(&mut self) -> Option<BusCommand> {
        None
    }
    /// Something from the cluster bus backend.
    fn handle_bus(&mut self, _now: Instant, _input: BusInput) {}
}

impl<P: Parser + Send + 'static> ServerCore for ServerEndpoint<P> {
    type Event = ServerEvent;
    fn handle_connection(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        ServerEndpoint::handle_connection(self, now, remote)
    }
    fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        ServerEndpoint::handle_read(self, now, conn, data)
    }
    fn wants_read(&self, conn: ConnId) -> bool {
        ServerEndpoint::wants_read(self, conn)
    }
    fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        ServerEndpoint::handle_eof(self, now, conn)
    }
    fn handle_timeout(&mut self, now: Instant) {
        ServerEndpoint::handle_timeout(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ServerEndpoint::poll_timeout(self)
    }
    fn poll_event(&mut self) -> Option<ServerEvent> {
        ServerEndpoint::poll_event(self)
    }
    fn poll_ready(&mut self) -> Option<ConnId> {
        ServerEndpoint::poll_ready(self)
    }
    fn poll_transmit(&mut self, conn: ConnId) -> Option<Transmit> {
        ServerEndpoint::poll_transmit(self, conn)
    }
    fn pump(&mut self, now: Instant) {
        ServerEndpoint::pump(self, now)
    }
    fn poll_bus(&mut self) -> Option<BusCommand> {
        ServerEndpoint::poll_bus(self)
    }
    fn handle_bus(&mut self, now: Instant, input: BusInput) {
        ServerEndpoint::handle_bus(self, now, input)
    }
}

impl ServerCore for engine::Server {
    type Event = engine::ServerEvent;
    fn handle_connection(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        engine::Server::handle_connection(self, now, remote)
    }
    fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        engine::Server::handle_read(self, now, conn, data)
    }
    fn wants_read(&self, conn: ConnId) -> bool {
        engine::Server::wants_read(self, conn)
    }
    fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        engine::Server::handle_eof(self, now, conn)
    }
    fn handle_timeout(&mut self, now: Instant) {
        engine::Server::handle_timeout(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        engine::Server::poll_timeout(self)
    }
    fn poll_event(&mut self) -> Option<engine::ServerEvent> {
        engine::Server::poll_event(self)
    }
    fn poll_ready(&mut self) -> Option<ConnId> {
        engine::Server::poll_ready(self)
    }
    fn poll_transmit(&mut self, conn: ConnId) -> Option<Transmit> {
        engine::Server::poll_transmit(self, conn)
    }
    fn pump(&mut self, _now: Instant) {}
}

struct State<C: ServerCore> {
    core: C,
    /// Events waiting for the handler ([`EventSink::Handler`] only).
    pending: VecDeque<C::Event>,
    /// The signal of each connection the driver runs.
    conns: HashMap<ConnId, Arc<ConnSignal>>,
    /// The deadline the timer task was last told about.
    armed: Option<Instant>,
    /// Where the core's bus commands go, once a backend is attached.
    bus: Option<async_channel::Sender<BusCommand>>,
}

/// Where application events go.
pub(crate) enum EventSink<E> {
    /// To a channel the application reads in its own task.
    Channel(mpsc::UnboundedSender<E>),
    /// To a function, called in order by whichever task produced the
    /// events, once the core's lock is released (one caller at a time).
    Handler(Box<dyn Fn(E) + Send + Sync>),
}

/// Clears a flag when dropped.
struct Release<'a>(&'a AtomicBool);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Runs a [`ServerCore`] on a [`Runtime`]: one task per connection, one
/// timer task, application events to a channel or a handler.
pub(crate) struct Driver<C: ServerCore> {
    runtime: Arc<dyn Runtime>,
    state: Mutex<State<C>>,
    timer_wake: async_channel::Sender<()>,
    events: EventSink<C::Event>,
    /// A task is running the handler over `pending`.
    dispatching: AtomicBool,
    /// `pending` is not empty (written under the lock).
    has_pending: AtomicBool,
    /// Events handed out and not yet handled (flow control).
    backlog: Arc<Backlog>,
    /// Dropped by [`Driver::stop`]: accept loops see their receiver close.
    stop: Mutex<Option<async_channel::Sender<()>>>,
    stopped: async_channel::Receiver<()>,
}

impl<C: ServerCore> Driver<C> {
    pub(crate) fn new(runtime: Arc<dyn Runtime>, core: C) -> (Arc<Self>, EventReceiver<C::Event>) {
        let (events, events_rx) = mpsc::unbounded();
        let driver = Self::with_sink(runtime, core, EventSink::Channel(events));
        let events_rx = EventReceiver::new(events_rx, driver.backlog.clone());
        (driver, events_rx)
    }

    pub(crate) fn with_sink(
        runtime: Arc<dyn Runtime>,
        core: C,
        events: EventSink<C::Event>,
    ) -> Arc<Self> {
        let (timer_wake, wake_rx) = async_channel::bounded(1);
        let (stop, stopped) = async_channel::bounded(1);
        let driver = Arc::new(Driver {
            runtime: runtime.clone(),
            state: Mutex::new(State {
                core,
                pending: VecDeque::new(),
                conns: HashMap::new(),
                armed: None,
                bus: None,
            }),
            timer_wake,
            events,
            dispatching: AtomicBool::new(false),
            has_pending: AtomicBool::new(false),
            backlog: Arc::default(),
            stop: Mutex::new(Some(stop)),
            stopped,
        });
        runtime.spawn(Box::pin(timer_loop(
            Arc::downgrade(&driver),
            runtime.clone(),
            wake_rx,
        )));
        driver
    }

    pub(crate) fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        // A panic in an application closure must not wedge the server.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State<C>, Instant) -> R) -> R {
        let mut state = self.lock();
        let now = Instant::now();
        let result = f(&mut state, now);
        self.drain(&mut state);
        drop(state);
        self.dispatch();
        result
    }

    /// Whether `conn` may be read now: its core wants input and the
    /// application is not too far behind with events (when it is, the
    /// connection is resumed once it caught up).
    fn readable(&self, state: &State<C>, conn: ConnId) -> bool {
        if !state.core.wants_read(conn) {
            return false;
        }
        // The common case without the map lookup (asked on every read).
        if self.backlog.within_bound() {
            return true;
        }
        match state.conns.get(&conn) {
            Some(signal) => self.backlog.admit(signal),
            None => false,
        }
    }

    /// Run the handler over the pending events, in order, unless another
    /// task is already doing so (it picks ours up too). Handlers call back
    /// into the driver: their events join the same loop.
    fn dispatch(&self) {
        let EventSink::Handler(handler) = &self.events else {
            return;
        };
        while self.has_pending.load(Ordering::SeqCst) {
            if self.dispatching.swap(true, Ordering::SeqCst) {
                return;
            }
            // Released even if the handler panics: events must keep flowing.
            let _release = Release(&self.dispatching);
            loop {
                let batch = {
                    let mut state = self.lock();
                    self.has_pending.store(false, Ordering::SeqCst);
                    std::mem::take(&mut state.pending)
                };
                if batch.is_empty() {
                    break;
                }
                let handled = batch.len();
                for event in batch {
                    handler(event);
                }
                self.backlog.remove(handled);
            }
            // Events pushed after our last look, by a task that saw us
            // dispatching, are ours to run: the loop condition checks.
        }
    }

    /// Application calls, then settle the core and drain it.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut C, Instant) -> R) -> R {
        self.with_state(|state, now| {
            let result = f(&mut state.core, now);
            state.core.pump(now);
            result
        })
    }

    /// Everything the core has for the outside, in the documented order.
    fn drain(&self, state: &mut State<C>) {
        match &self.events {
            EventSink::Channel(events) => {
                while let Some(event) = state.core.poll_event() {
                    // Counted before the receiver can take it.
                    self.backlog.add(1);
                    // The application may have stopped listening: nothing
                    // to do.
                    if events.unbounded_send(event).is_err() {
                        self.backlog.remove(1);
                    }
                }
            }
            EventSink::Handler(_) => {
                while let Some(event) = state.core.poll_event() {
                    self.backlog.add(1);
                    state.pending.push_back(event);
                    self.has_pending.store(true, Ordering::SeqCst);
                }
            }
        }
        while let Some(conn) = state.core.poll_ready() {
            match state.conns.get(&conn) {
                Some(signal) => signal.notify(),
                None => while state.core.poll_transmit(conn).is_some() {},
            }
        }
        if let Some(bus) = &state.bus {
            while let Some(command) = state.core.poll_bus() {
                if let Err(e) = bus.try_send(command) {
                    // The backend is gone or far behind: the core counts
                    // nothing for the bus, so say what was lost.
                    tracing::warn!(error = %e, "cluster bus command dropped");
                }
            }
        }
        let next = state.core.poll_timeout();
        if next != state.armed {
            state.armed = next;
            let _ = self.timer_wake.try_send(());
        }
    }

    pub(crate) fn serve(self: &Arc<Self>, mut listener: Box<dyn Listener>) {
        let driver = self.clone();
        let stopped = self.stopped.clone();
        self.runtime.spawn(Box::pin(async move {
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
                        driver.runtime.sleep_until(at).await;
                    }
                    Either::Right(_) => return,
                }
            }
        }));
    }

    pub(crate) fn handle_stream(self: &Arc<Self>, stream: BoxStream, remote: Option<SocketAddr>) {
        let signal = Arc::new(ConnSignal::default());
        let conn = self.with_state(|state, now| {
            let conn = state.core.handle_connection(now, remote);
            state.conns.insert(conn, signal.clone());
            conn
        });
        tracing::trace!(conn = conn.0, ?remote, "connection");
        self.runtime
            .spawn(Box::pin(connection(self.clone(), conn, stream, signal)));
    }

    pub(crate) fn stop(&self) {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    pub(crate) fn stopped(&self) -> crate::runtime::BoxFuture<'static, ()> {
        let stopped = self.stopped.clone();
        Box::pin(async move {
            let _ = stopped.recv().await;
        })
    }

    pub(crate) fn close_all(&self) {
        self.with_state(|state, now| {
            for (conn, signal) in state.conns.drain() {
                signal.stop();
                state.core.handle_eof(now, conn);
            }
        });
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.lock().conns.len()
    }

    /// Route the core's bus commands to the returned receiver (those
    /// queued already included), and its inputs through the returned
    /// function.
    pub(crate) fn attach_bus(
        self: &Arc<Self>,
        capacity: usize,
    ) -> (
        async_channel::Receiver<BusCommand>,
        Arc<dyn Fn(BusInput) + Send + Sync>,
    ) {
        let (tx, rx) = async_channel::bounded(capacity);
        self.with_state(|state, _| state.bus = Some(tx));
        let driver = Arc::downgrade(self);
        let input = Arc::new(move |input: BusInput| {
            if let Some(driver) = driver.upgrade() {
                driver.with_state(|state, now| state.core.handle_bus(now, input));
            }
        });
        (rx, input)
    }
}

impl<C: ServerCore> ConnDriver for Driver<C> {
    fn on_read(this: &Arc<Self>, conn: ConnId, data: &[u8]) -> bool {
        let mut state = this.lock();
        // The core handles deadlines already due before the bytes.
        state.core.handle_read(Instant::now(), conn, data);
        this.drain(&mut state);
        // After `drain`: the events of this read count.
        let readable = this.readable(&state, conn);
        drop(state);
        this.dispatch();
        readable
    }

    fn wants_read(this: &Arc<Self>, conn: ConnId) -> bool {
        let state = this.lock();
        this.readable(&state, conn)
    }

    fn on_eof(this: &Arc<Self>, conn: ConnId) {
        this.with_state(|state, now| {
            state.conns.remove(&conn);
            state.core.handle_eof(now, conn);
        });
    }

    fn pull(this: &Arc<Self>, conn: ConnId, out: &mut VecDeque<Bytes>) -> Pulled {
        Self::pull_while(this, conn, out, true)
    }

    fn pull_while(
        this: &Arc<Self>,
        conn: ConnId,
        out: &mut VecDeque<Bytes>,
        paused: bool,
    ) -> Pulled {
        this.with_state(|state, now| {
            let mut close = false;
            let mut taken = 0;
            let mut more = false;
            while let Some(transmit) = state.core.poll_transmit(conn) {
                match transmit {
                    Transmit::Data(bytes) => {
                        taken += bytes.len();
                        out.push_back(bytes);
                        if taken >= WRITE_BATCH {
                            // The rest waits in the core, counted.
                            more = true;
                            break;
                        }
                    }
                    Transmit::Close => {
                        state.conns.remove(&conn);
                        close = true;
                        break;
                    }
                }
            }
            if taken > 0 {
                // Report the written bytes (backpressure accounting).
                state.core.pump(now);
            }
            // A connection being read needs no look here: its next read
            // asks (at most one read's output later). Only a paused one,
            // or one leaving output in the core, is worth the lookups.
            let readable = if close {
                false
            } else if paused || more {
                this.readable(state, conn)
            } else {
                true
            };
            Pulled {
                close,
                more,
                readable,
            }
        })
    }
}

impl<C: ServerCore> Timed for Driver<C> {
    fn next_timeout(this: &Arc<Self>) -> Option<Instant> {
        this.lock().core.poll_timeout()
    }

    fn on_timeout(this: &Arc<Self>) {
        this.with_state(|state, now| state.core.handle_timeout(now));
    }
}

/// Runs a [`ServerEndpoint`] on a [`Runtime`]: serves listeners and
/// streams, fires the core's timer, and delivers the core's application
/// events to a channel. Cheap to clone (one shared state).
pub struct ServerDriver<P: Parser + Send + 'static> {
    driver: Arc<Driver<ServerEndpoint<P>>>,
}

impl<P: Parser + Send + 'static> Clone for ServerDriver<P> {
    fn clone(&self) -> Self {
        ServerDriver {
            driver: self.driver.clone(),
        }
    }
}

impl<P: Parser + Send + 'static> ServerDriver<P> {
    /// Start driving `endpoint` (its timer task is spawned now). The
    /// receiver yields the core's [`ServerEvent`]s in order; the
    /// application answers them through [`ServerDriver::with`].
    pub fn new(
        runtime: Arc<dyn Runtime>,
        endpoint: ServerEndpoint<P>,
    ) -> (Self, EventReceiver<ServerEvent>) {
        let (driver, events) = Driver::new(runtime, endpoint);
        (ServerDriver { driver }, events)
    }

    /// Start driving `endpoint`, calling `handler` with the core's
    /// [`ServerEvent`]s, in order, from whichever task produced them (a
    /// connection's, the timer's, or an application call's) once the
    /// core's lock is released; one call at a time. `handler` may call
    /// [`ServerDriver::with`]: the events that produces are handled after
    /// it returns. It must not block: it runs inside a connection's task.
    /// This saves the hop to an application task that
    /// [`ServerDriver::new`]'s channel costs.
    pub fn with_handler(
        runtime: Arc<dyn Runtime>,
        endpoint: ServerEndpoint<P>,
        handler: impl Fn(ServerEvent) + Send + Sync + 'static,
    ) -> Self {
        let driver = Driver::with_sink(runtime, endpoint, EventSink::Handler(Box::new(handler)));
        ServerDriver { driver }
    }

    /// The runtime the driver runs on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        self.driver.runtime()
    }

    /// Call into the endpoint (application calls such as accept, emit,
    /// join), then pump it and drain its outputs. `f` gets the current
    /// time. Do not call `with` from inside `f`: the lock is not reentrant.
    pub fn with<R>(&self, f: impl FnOnce(&mut ServerEndpoint<P>, Instant) -> R) -> R {
        self.driver.with(f)
    }

    /// Serve connections from `listener` until [`ServerDriver::stop`].
    pub fn serve(&self, listener: Box<dyn Listener>) {
        self.driver.serve(listener)
    }

    /// Run one already accepted stream (for example a TLS stream) as a
    /// connection of this server.
    pub fn handle_stream(&self, stream: BoxStream, remote: Option<SocketAddr>) {
        self.driver.handle_stream(stream, remote)
    }

    /// Stop accepting connections (listeners close). Existing connections
    /// go on until the endpoint closes them.
    pub fn stop(&self) {
        self.driver.stop()
    }

    /// Completes once [`ServerDriver::stop`] was called: for accept loops
    /// of one's own (a [`crate::Router`]'s `serve_until`).
    pub fn stopped(&self) -> crate::runtime::BoxFuture<'static, ()> {
        self.driver.stopped()
    }

    /// Drop every connection at once (their streams close); for the end
    /// of a shutdown, once the last messages had time to leave.
    pub fn close_all(&self) {
        self.driver.close_all()
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.driver.connection_count()
    }

    /// Connect the endpoint's cluster seam to a bus backend: the core's
    /// [`BusCommand`]s (those already queued included) go to the returned
    /// receiver, which holds at most `capacity` of them (beyond, commands
    /// are dropped with a log line), and the backend reports through the
    /// returned function. Enable the cluster on the endpoint first
    /// (`socket().enable_cluster(..)`).
    pub fn attach_bus(
        &self,
        capacity: usize,
    ) -> (
        async_channel::Receiver<BusCommand>,
        Arc<dyn Fn(BusInput) + Send + Sync>,
    ) {
        self.driver.attach_bus(capacity)
    }
}
