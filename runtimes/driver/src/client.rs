//! The client driver: opens the connections a [`ClientEndpoint`] asks
//! for.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_channel::{mpsc, oneshot};
use futures_util::Stream;

use socketio_core::endpoint::{ClientAction, ClientEndpoint};
use socketio_core::engine::ConnId;
use socketio_core::parser::Parser;
use socketio_core::socket::ClientEvent;

use crate::conn::{ConnDriver, ConnSignal, Pulled, WRITE_BATCH};
use crate::io::{timer_loop, Timed};
use crate::runtime::{BoxStream, Runtime};

/// Unsent output, in bytes, beyond which a client connection is not read
/// until it drains: a server that floods (pings answered with pongs,
/// events answered with acks) and does not read meets TCP's backpressure
/// instead of making the client buffer for it.
const MAX_BUFFERED_OUTPUT: usize = 1 << 20;

/// Default bound of the events the driver has decoded and the application
/// has not taken yet ([`ClientEvents`]).
pub const DEFAULT_MAX_QUEUED_EVENTS: usize = 1024;

/// Where the client connects: a host name or address and a port, and how to
/// wrap the connection. Re-read at every connection, so it can change
/// between reconnections ([`ClientDriver::target_setter`]).
#[derive(Clone)]
pub struct ClientTarget {
    /// A host name (looked up at every connection) or an IP address.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// Wraps every connection in TLS when set.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ClientTls>,
}

impl std::fmt::Debug for ClientTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Read-side flow control between the driver and the application: the
/// events queued for the application are counted, and connections are not
/// read while the count is over the bound (TCP then pushes back on the
/// server). Nothing decoded is ever dropped: a read in progress is handed
/// out whole, so the queue may exceed the bound by what one read decodes.
struct EventFlow {
    queued: AtomicUsize,
    bound: usize,
    /// Connections paused because the queue was full, resumed as it drains.
    paused: Mutex<Vec<Arc<ConnSignal>>>,
}

impl EventFlow {
    fn has_room(&self) -> bool {
        self.queued.load(Ordering::Acquire) <= self.bound
    }

    /// One event was taken by the application.
    fn taken(&self) {
        let before = self.queued.fetch_sub(1, Ordering::AcqRel);
        // Resume at half the bound, not at every event taken, so that a
        // full queue does not make a connection read a few bytes at a time.
        if before == self.bound / 2 + 1 {
            for signal in lock(&self.paused).drain(..) {
                signal.resume();
            }
        }
    }
}

/// The core's [`ClientEvent`]s for the application, in order. Taking them
/// is what lets the driver read on once [`DEFAULT_MAX_QUEUED_EVENTS`] (or
/// the configured bound) are waiting.
pub struct ClientEvents {
    rx: mpsc::UnboundedReceiver<ClientEvent>,
    flow: Arc<EventFlow>,
}

impl Stream for ClientEvents {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        let next = Pin::new(&mut self.rx).poll_next(cx);
        if let Poll::Ready(Some(_)) = next {
            self.flow.taken();
        }
        next
    }
}

/// A connection the endpoint asked for: what it has to write.
struct Conn {
    signal: Arc<ConnSignal>,
    out: VecDeque<Bytes>,
    /// Bytes in `out`.
    out_len: usize,
    /// Close once `out` is written.
    close: bool,
}

struct State<P: Parser> {
    endpoint: ClientEndpoint<P>,
    conns: HashMap<ConnId, Conn>,
    armed: Option<Instant>,
    /// The application connected a namespace at least once.
    started: bool,
}

struct Shared<P: Parser> {
    runtime: Arc<dyn Runtime>,
    /// Shared with [`ClientDriver::target_setter`]'s setters.
    target: Arc<Mutex<ClientTarget>>,
    flow: Arc<EventFlow>,
    /// The last connection that could not be opened, cleared by one that
    /// could.
    last_error: Mutex<Option<ConnectError>>,
    /// Closed on the first failure retrying cannot fix (a TLS handshake
    /// the peer or we rejected).
    fatal: Mutex<Option<async_channel::Sender<()>>>,
    fatal_rx: async_channel::Receiver<()>,
    state: Mutex<State<P>>,
    timer_wake: async_channel::Sender<()>,
    events: mpsc::UnboundedSender<ClientEvent>,
    /// Dropped once the client is done (no namespace wanted any more):
    /// [`ClientDriver::closed`] waits for that.
    done: Mutex<Option<async_channel::Sender<()>>>,
    done_rx: async_channel::Receiver<()>,
    /// Connection tasks still running (writing what is queued, or reading).
    live: std::sync::atomic::AtomicUsize,
}

/// Counts a connection task as live until it returns.
struct LiveGuard<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Why the driver could not open a connection the endpoint asked for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name could not be looked up.
    Lookup {
        /// The name.
        host: String,
        /// Why.
        error: Arc<std::io::Error>,
    },
    /// No address accepted a TCP connection (the last address's error).
    Tcp(Arc<std::io::Error>),
    /// No address given to the driver.
    NoAddress,
    /// The TLS handshake failed for a reason on the TLS level (certificate
    /// rejected, protocol mismatch): retrying will not help.
    #[cfg(feature = "tls")]
    Tls(crate::tls::TlsError),
    /// The TLS handshake failed because the transport did (reset, closed).
    #[cfg(feature = "tls")]
    TlsIo(Arc<std::io::Error>),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Lookup { host, error } => {
                write!(f, "cannot look up host name {host:?}: {error}")
            }
            ConnectError::Tcp(e) => write!(f, "cannot connect: {e}"),
            ConnectError::NoAddress => f.write_str("no address to connect to"),
            #[cfg(feature = "tls")]
            ConnectError::Tls(e) => e.fmt(f),
            #[cfg(feature = "tls")]
            ConnectError::TlsIo(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Lookup { error, .. } => Some(&**error),
            ConnectError::Tcp(e) => Some(&**e),
            ConnectError::NoAddress => None,
            #[cfg(feature = "tls")]
            ConnectError::Tls(e) => Some(e),
            #[cfg(feature = "tls")]
            ConnectError::TlsIo(e) => Some(&**e),
        }
    }
}

/// Runs a [`ClientEndpoint`] on a [`Runtime`], connecting to the server
/// at the given addresses. Cheap to clone.
pub struct ClientDriver<P: Parser> {
    shared: Arc<Shared<P>>,
}

impl<P: Parser> Clone for ClientDriver<P> {
    fn clone(&self) -> Self {
        ClientDriver {
            shared: self.shared.clone(),
        }
    }
}

impl<P: Parser + Send + 'static> ClientDriver<P> {
    /// Start driving `endpoint`; connections go to `target` (the first of
    /// its addresses that answers). The [`ClientEvents`] yield the core's
    /// events; while more than `max_queued_events` wait there, the
    /// connection is not read.
    pub fn new(
        runtime: Arc<dyn Runtime>,
        target: ClientTarget,
        endpoint: ClientEndpoint<P>,
        max_queued_events: usize,
    ) -> (Self, ClientEvents) {
        let (events, events_rx) = mpsc::unbounded();
        let flow = Arc::new(EventFlow {
            queued: AtomicUsize::new(0),
            bound: max_queued_events.max(1),
            paused: Mutex::new(Vec::new()),
        });
        let (fatal, fatal_rx) = async_channel::bounded(1);
        let (timer_wake, wake_rx) = async_channel::bounded(1);
        let (done, done_rx) = async_channel::bounded(1);
        let shared = Arc::new(Shared {
            runtime: runtime.clone(),
            target: Arc::new(Mutex::new(target)),
            flow: flow.clone(),
            last_error: Mutex::new(None),
            fatal: Mutex::new(Some(fatal)),
            fatal_rx,
            state: Mutex::new(State {
                endpoint,
                conns: HashMap::new(),
                armed: None,
                started: false,
            }),
            timer_wake,
            events,
            done: Mutex::new(Some(done)),
            done_rx,
            live: std::sync::atomic::AtomicUsize::new(0),
        });
        runtime.spawn(Box::pin(timer_loop(
            Arc::downgrade(&shared),
            runtime.clone(),
            wake_rx,
        )));
        let events_rx = ClientEvents {
            rx: events_rx,
            flow,
        };
        (ClientDriver { shared }, events_rx)
    }

    /// A function that points the next connections at another target (a
    /// URL evaluated again before a reconnection). It does not keep the
    /// driver alive, so the endpoint's own hooks may hold it.
    pub fn target_setter(&self) -> impl Fn(ClientTarget) + Send + Sync + 'static {
        let target = self.shared.target.clone();
        move |new| *lock(&target) = new
    }

    /// The runtime the driver runs on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.shared.runtime
    }

    /// Call into the endpoint (connect, emit, ack, disconnect), then pump
    /// it and drain its outputs. Not reentrant.
    pub fn with<R>(&self, f: impl FnOnce(&mut ClientEndpoint<P>, Instant) -> R) -> R {
        Shared::with_state(&self.shared, |state, now| {
            let result = f(&mut state.endpoint, now);
            state.endpoint.pump(now);
            result
        })
    }

    /// Completes once the client wants no namespace any more (after a
    /// namespace was connected at least once): disconnected by the
    /// application or the server, or reconnection gave up.
    pub async fn closed(&self) {
        let _ = self.shared.done_rx.recv().await;
    }

    /// Why the last connection attempt failed, unless one succeeded since.
    pub fn last_connect_error(&self) -> Option<ConnectError> {
        lock(&self.shared.last_error).clone()
    }

    /// Completes on the first connection failure that retrying cannot fix
    /// (a TLS handshake rejected on the TLS level), with that failure;
    /// never completes otherwise. The endpoint still goes on reconnecting
    /// as configured: the application decides whether to give up.
    pub async fn fatal_error(&self) -> ConnectError {
        let _ = self.shared.fatal_rx.recv().await;
        match self.last_connect_error() {
            Some(e) => e,
            // A later connection succeeded: nothing to report.
            None => futures_util::future::pending().await,
        }
    }

    /// How many connection tasks are still running: after
    /// [`ClientDriver::closed`], zero means everything queued (the
    /// DISCONNECT packets, the Engine.IO close) was written and the
    /// connections were shut.
    pub fn live_connections(&self) -> usize {
        self.shared.live.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether [`ClientDriver::closed`] has completed.
    pub fn is_closed(&self) -> bool {
        self.shared.done_rx.is_closed()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<P: Parser + Send + 'static> Shared<P> {
    fn lock(&self) -> MutexGuard<'_, State<P>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_state<R>(this: &Arc<Self>, f: impl FnOnce(&mut State<P>, Instant) -> R) -> R {
        let mut state = this.lock();
        let now = Instant::now();
        let result = f(&mut state, now);
        this.drain(&mut state);
        result
    }

    /// Whether connection `c` may be read: its unsent output under the
    /// bound, and room in the application's event queue. A connection
    /// paused for the events' sake is resumed once the application took
    /// enough of them.
    fn readable(&self, c: &Conn) -> bool {
        if !self.flow.has_room() {
            lock(&self.flow.paused).push(c.signal.clone());
            // The application may have caught up meanwhile: then the
            // resume is ours to give.
            if self.flow.has_room() {
                c.signal.resume();
            }
            return false;
        }
        c.out_len <= MAX_BUFFERED_OUTPUT
    }

    fn drain(self: &Arc<Self>, state: &mut State<P>) {
        while let Some(event) = state.endpoint.poll_event() {
            // Counted before it is sent, so the receiver never counts it
            // down first.
            self.flow.queued.fetch_add(1, Ordering::AcqRel);
            if self.events.unbounded_send(event).is_err() {
                // Nobody takes events any more (the application is gone).
                self.flow.queued.fetch_sub(1, Ordering::AcqRel);
            }
        }
        while let Some(action) = state.endpoint.poll_action() {
            match action {
                ClientAction::Connect(conn) => {
                    let signal = Arc::new(ConnSignal::default());
                    state.conns.insert(
                        conn,
                        Conn {
                            signal: signal.clone(),
                            out: VecDeque::new(),
                            out_len: 0,
                            close: false,
                        },
                    );
                    self.live.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    self.runtime
                        .spawn(Box::pin(connection(self.clone(), conn, signal)));
                }
                ClientAction::Data(conn, bytes) => {
                    if let Some(c) = state.conns.get_mut(&conn) {
                        c.out_len += bytes.len();
                        c.out.push_back(bytes);
                        c.signal.notify();
                    }
                }
                ClientAction::Close(conn) => {
                    if let Some(c) = state.conns.get_mut(&conn) {
                        c.close = true;
                        c.signal.notify();
                    }
                }
            }
        }
        let next = state.endpoint.poll_timeout();
        if next != state.armed {
            state.armed = next;
            let _ = self.timer_wake.try_send(());
        }
        let active = state.endpoint.socket().is_active();
        if active {
            state.started = true;
        } else if state.started {
            self.done.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
    }
}

impl<P: Parser + Send + 'static> ConnDriver for Shared<P> {
    fn on_read(this: &Arc<Self>, conn: ConnId, data: &[u8]) -> bool {
        let mut state = this.lock();
        state.endpoint.handle_read(Instant::now(), conn, data);
        this.drain(&mut state);
        // The output this read produced is queued by now (`drain`): read
        // on only while it is under the bound. Only this connection's own
        // pulls drain it, and each says whether it may read again.
        let Some(c) = state.conns.get(&conn) else {
            return true;
        };
        this.readable(c)
    }

    fn on_eof(this: &Arc<Self>, conn: ConnId) {
        Shared::with_state(this, |state, now| {
            state.conns.remove(&conn);
            state.endpoint.handle_eof(now, conn);
        });
    }

    #[cfg(feature = "tls")]
    fn on_read_error(this: &Arc<Self>, conn: ConnId, error: std::io::Error) {
        tracing::debug!(conn = conn.0, %error, "read failed");
        // With TLS 1.3 the server judges our certificate after our side of
        // the handshake is done: its refusal arrives as the first read.
        if let Some(tls) = crate::tls::TlsError::from_io(&error) {
            *lock(&this.last_error) = Some(ConnectError::Tls(tls));
            lock(&this.fatal).take();
        }
        ConnDriver::on_eof(this, conn);
    }

    fn wants_read(this: &Arc<Self>, conn: ConnId) -> bool {
        let state = this.lock();
        let Some(c) = state.conns.get(&conn) else {
            return true;
        };
        this.readable(c)
    }

    fn pull(this: &Arc<Self>, conn: ConnId, out: &mut VecDeque<Bytes>) -> Pulled {
        let mut state = this.lock();
        let Some(c) = state.conns.get_mut(&conn) else {
            return Pulled {
                close: true,
                more: false,
                readable: false,
            };
        };
        let mut taken = 0;
        while taken < WRITE_BATCH {
            let Some(bytes) = c.out.pop_front() else {
                break;
            };
            taken += bytes.len();
            out.push_back(bytes);
        }
        c.out_len -= taken;
        if c.out.is_empty() && c.out.capacity() > 64 {
            c.out = VecDeque::new();
        }
        let more = !c.out.is_empty();
        if c.close && !more {
            state.conns.remove(&conn);
            return Pulled {
                close: true,
                more: false,
                readable: false,
            };
        }
        Pulled {
            close: false,
            more,
            readable: this.readable(c),
        }
    }
}

impl<P: Parser + Send + 'static> Timed for Shared<P> {
    fn next_timeout(this: &Arc<Self>) -> Option<Instant> {
        this.lock().endpoint.poll_timeout()
    }

    fn on_timeout(this: &Arc<Self>) {
        Shared::with_state(this, |state, now| state.endpoint.handle_timeout(now));
    }
}

/// One connection the endpoint asked for: connect, then read and write
/// (one task) until either side ends.
async fn connection<P: Parser + Send + 'static>(
    shared: Arc<Shared<P>>,
    conn: ConnId,
    signal: Arc<ConnSignal>,
) {
    let shared_for_guard = shared.clone();
    let _live = LiveGuard(&shared_for_guard.live);
    let stream = match open(&shared).await {
        Ok(stream) => {
            lock(&shared.last_error).take();
            stream
        }
        Err(e) => {
            tracing::debug!(conn = conn.0, error = %e, "connection failed");
            #[cfg(feature = "tls")]
            let fatal = matches!(e, ConnectError::Tls(_));
            #[cfg(not(feature = "tls"))]
            let fatal = false;
            *lock(&shared.last_error) = Some(e);
            if fatal {
                lock(&shared.fatal).take();
            }
            ConnDriver::on_eof(&shared, conn);
            return;
        }
    };
    Shared::with_state(&shared, |state, now| {
        state.endpoint.handle_connected(now, conn)
    });
    crate::conn::connection(shared, conn, stream, signal).await;
}

/// Open the connection: look the host up, connect to the first address
/// that answers, then run the TLS handshake when configured. The one place
/// where the client reaches the network.
async fn open<P: Parser + Send + 'static>(
    shared: &Arc<Shared<P>>,
) -> Result<BoxStream, ConnectError> {
    let target = lock(&shared.target).clone();
    let addrs = resolve(&target.host, target.port).await?;
    let stream = connect_first(&*shared.runtime, &addrs).await?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &target.tls {
        return tls
            .connect(stream)
            .await
            .map_err(|e| match crate::tls::TlsError::from_io(&e) {
                Some(tls) => ConnectError::Tls(tls),
                None => ConnectError::TlsIo(Arc::new(e)),
            });
    }
    Ok(stream)
}

/// The first of `addrs` that accepts a TCP connection.
async fn connect_first(
    runtime: &dyn Runtime,
    addrs: &[SocketAddr],
) -> Result<BoxStream, ConnectError> {
    let mut error = ConnectError::NoAddress;
    for addr in addrs {
        match runtime.connect(*addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed");
                error = ConnectError::Tcp(Arc::new(e));
            }
        }
    }
    Err(error)
}

/// The addresses of `host`. A name is looked up on a thread of its own (the
/// system resolver blocks, and no runtime's blocking pool is assumed).
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = oneshot::channel();
    let name = host.to_owned();
    let spawned = std::thread::Builder::new()
        .name("socketio-lookup".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        });
    let lookup_failed = |error: std::io::Error| ConnectError::Lookup {
        host: host.to_owned(),
        error: Arc::new(error),
    };
    if let Err(e) = spawned {
        return Err(lookup_failed(e));
    }
    match rx.await {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(lookup_failed(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address for this name",
        ))),
        Ok(Err(e)) => Err(lookup_failed(e)),
        Err(_) => Err(lookup_failed(std::io::Error::other("lookup thread failed"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(bound: usize) -> EventFlow {
        EventFlow {
            queued: AtomicUsize::new(0),
            bound,
            paused: Mutex::new(Vec::new()),
        }
    }

    #[test]
    fn a_full_queue_pauses_until_half_of_it_is_taken() {
        let flow = flow(4);
        let signal = Arc::new(ConnSignal::default());
        flow.queued.store(6, Ordering::SeqCst);
        assert!(!flow.has_room());
        lock(&flow.paused).push(signal.clone());
        // 6 -> 5 -> 4 -> 3: room again at 4, but no resume before half.
        for _ in 0..3 {
            flow.taken();
        }
        assert!(flow.has_room());
        assert_eq!(lock(&flow.paused).len(), 1, "resumed too early");
        flow.taken();
        assert!(lock(&flow.paused).is_empty(), "resumed at half the bound");
        assert_eq!(flow.queued.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn nothing_is_dropped_beyond_the_bound() {
        // The bound pauses reading; it never refuses an event: counting
        // goes on past it, and every event counted is taken in order.
        let (tx, rx) = mpsc::unbounded();
        let mut events = ClientEvents {
            rx,
            flow: Arc::new(flow(1)),
        };
        for attempt in 0..10 {
            events.flow.queued.fetch_add(1, Ordering::SeqCst);
            tx.unbounded_send(ClientEvent::Reconnecting { attempt })
                .unwrap();
        }
        assert!(!events.flow.has_room());
        let taken: Vec<u32> = futures_executor_lite(&mut events, 10);
        assert_eq!(taken, (0..10).collect::<Vec<_>>());
        assert!(events.flow.has_room());
    }

    /// Take `n` ready events without a runtime.
    fn futures_executor_lite(events: &mut ClientEvents, n: usize) -> Vec<u32> {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        (0..n)
            .map(|_| match Pin::new(&mut *events).poll_next(&mut cx) {
                Poll::Ready(Some(ClientEvent::Reconnecting { attempt })) => attempt,
                other => panic!("{other:?}"),
            })
            .collect()
    }
}
