//! The client driver: opens the connections a [`ClientEndpoint`] asks
//! for.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use futures_channel::mpsc;

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
    addrs: Vec<SocketAddr>,
    /// Wraps every connection in TLS when set.
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::ClientTls>,
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
    /// Start driving `endpoint`; connections go to the first of `addrs`
    /// that answers. The receiver yields the core's [`ClientEvent`]s.
    pub fn new(
        runtime: Arc<dyn Runtime>,
        addrs: Vec<SocketAddr>,
        endpoint: ClientEndpoint<P>,
    ) -> (Self, mpsc::UnboundedReceiver<ClientEvent>) {
        Self::build(
            runtime,
            addrs,
            endpoint,
            #[cfg(feature = "tls")]
            None,
        )
    }

    /// [`ClientDriver::new`], with every connection wrapped in TLS
    /// (`https://` and `wss://` servers).
    #[cfg(feature = "tls")]
    pub fn new_tls(
        runtime: Arc<dyn Runtime>,
        addrs: Vec<SocketAddr>,
        endpoint: ClientEndpoint<P>,
        tls: crate::tls::ClientTls,
    ) -> (Self, mpsc::UnboundedReceiver<ClientEvent>) {
        Self::build(runtime, addrs, endpoint, Some(tls))
    }

    fn build(
        runtime: Arc<dyn Runtime>,
        addrs: Vec<SocketAddr>,
        endpoint: ClientEndpoint<P>,
        #[cfg(feature = "tls")] tls: Option<crate::tls::ClientTls>,
    ) -> (Self, mpsc::UnboundedReceiver<ClientEvent>) {
        let (events, events_rx) = mpsc::unbounded();
        let (fatal, fatal_rx) = async_channel::bounded(1);
        let (timer_wake, wake_rx) = async_channel::bounded(1);
        let (done, done_rx) = async_channel::bounded(1);
        let shared = Arc::new(Shared {
            runtime: runtime.clone(),
            addrs,
            #[cfg(feature = "tls")]
            tls,
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
        (ClientDriver { shared }, events_rx)
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

    fn drain(self: &Arc<Self>, state: &mut State<P>) {
        while let Some(event) = state.endpoint.poll_event() {
            let _ = self.events.unbounded_send(event);
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
        state
            .conns
            .get(&conn)
            .map_or(true, |c| c.out_len <= MAX_BUFFERED_OUTPUT)
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
        this.lock()
            .conns
            .get(&conn)
            .map_or(true, |c| c.out_len <= MAX_BUFFERED_OUTPUT)
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
            readable: c.out_len <= MAX_BUFFERED_OUTPUT,
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

/// Connect to the first address that answers, then run the TLS handshake
/// when configured.
async fn open<P: Parser + Send + 'static>(
    shared: &Arc<Shared<P>>,
) -> Result<BoxStream, ConnectError> {
    let mut error = ConnectError::NoAddress;
    let mut stream = None;
    for addr in &shared.addrs {
        match shared.runtime.connect(*addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed");
                error = ConnectError::Tcp(Arc::new(e));
            }
        }
    }
    let stream = stream.ok_or(error)?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &shared.tls {
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
