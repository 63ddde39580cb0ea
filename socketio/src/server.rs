//! The Socket.IO server: builder, namespaces and handlers, socket handles,
//! broadcasting.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use serde::Serialize;
use socketio_core::endpoint::ServerEndpoint;
use socketio_core::engine::{self, CorsOrigins, HandshakeInfo, Transport};
use socketio_core::http::Headers;
use socketio_core::parser::{AnyParser, Args};
use socketio_core::socket::{
    self, AckOutcome, Broadcast, BroadcastAckOutcome, ClusterReply, NamespaceMatcher,
    RecoveryConfig, RemoteSocket, ServerAckId, ServerEvent,
};
use socketio_core::{Str, Value};
use socketio_driver::{os_rng, Listener, Runtime, ServerDriver};

use crate::cluster::{Adapter, Bus, BUS_QUEUE};
use crate::error::{Error, Result};
use crate::extract::{
    ConnectContext, ConnectHandler, DisconnectContext, DisconnectHandler, EventContext,
    EventHandler, StateMap,
};
use crate::handler::{boxed, Job, JobQueue, DEFAULT_MAX_PENDING_HANDLERS};
use crate::observer::ServerObserver;
use crate::runtime::RuntimeKind;

type ConnectFn = Arc<
    dyn Fn(ConnectContext) -> futures_util::future::BoxFuture<'static, Result<(), ConnectRefusal>>
        + Send
        + Sync,
>;
/// One dynamic call per event, as before extractors: the extractors run
/// inside it, statically dispatched.
type EventFn = Arc<dyn Fn(EventContext) -> Option<Job> + Send + Sync>;
type DisconnectFn = Arc<dyn Fn(DisconnectContext) -> Option<Job> + Send + Sync>;
type ServerSideFn = Arc<dyn Fn(Server, Args, Option<ServerSideAck>) -> Job + Send + Sync>;

/// Which namespaces a [`Namespace`] serves.
#[derive(Clone)]
enum Pattern {
    Exact(String),
    Any,
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Pattern {
    fn matches(&self, nsp: &str) -> bool {
        match self {
            Pattern::Exact(name) => name == nsp,
            Pattern::Any => true,
            Pattern::Predicate(f) => f(nsp),
        }
    }
}

/// The handlers of a namespace (or of every namespace a pattern matches),
/// set up in [`Server::ns`].
pub struct Namespace {
    pattern: Pattern,
    on_connect: Option<ConnectFn>,
    events: HashMap<String, EventFn>,
    on_any: Option<EventFn>,
    on_disconnect: Option<DisconnectFn>,
}

impl Namespace {
    /// Handle connection requests. The handler takes extractors (see
    /// [`crate::extract`]): the socket (with its [`SocketRef::request`]),
    /// the client's auth payload ([`crate::extract::Auth`], or the raw
    /// `Option<Value>`), state...; it returns `()` to accept, or `Ok(())`
    /// to accept and `Err(refusal)` to refuse with the refusal's message
    /// and data. An extractor that refuses (an auth payload that does not
    /// fit) refuses the connection. Emits made before it returns reach the
    /// client after the connection reply. Without a connect handler, every
    /// request is accepted.
    pub fn on_connect<M, H: ConnectHandler<M>>(&mut self, handler: H) -> &mut Self {
        self.on_connect = Some(Arc::new(move |cx| handler.call(cx)));
        self
    }

    /// Handle the event `event`. The handler takes extractors (see
    /// [`crate::extract`]: [`crate::extract::Data`] for typed arguments,
    /// [`SocketRef`], [`crate::extract::State`], ...) and its return value
    /// answers the client's acknowledgement request
    /// ([`crate::extract::IntoAck`]); take an [`AckSender`] to answer
    /// later instead.
    ///
    /// Arguments are checked valid before any handler runs: a client that
    /// sends malformed ones (say `42["ev",{"a":]`) is disconnected with
    /// `parse error` instead. Arguments that are valid but do not fit
    /// [`crate::extract::Data`]'s type drop the event, with a warning.
    ///
    /// ```no_run
    /// # use socketio::{Server, SocketRef, extract::Data};
    /// # fn setup(server: &Server) { server.ns("/", |ns| {
    /// ns.on("chat", |socket: SocketRef, Data(text): Data<String>| async move {
    ///     socket.broadcast().emit("chat", &(text,));
    ///     "received"
    /// });
    /// # }); }
    /// ```
    pub fn on<M, H: EventHandler<M>>(&mut self, event: &str, handler: H) -> &mut Self {
        self.events
            .insert(event.to_owned(), Arc::new(move |cx| handler.call(cx)));
        self
    }

    /// Handle every event that has no handler of its own; the handler
    /// takes the event name with [`crate::extract::Event`] (or a [`Str`]).
    pub fn on_any<M, H: EventHandler<M>>(&mut self, handler: H) -> &mut Self {
        self.on_any = Some(Arc::new(move |cx| handler.call(cx)));
        self
    }

    /// Handle the socket's disconnection (extractors: [`SocketRef`],
    /// [`crate::DisconnectReason`], state...). It runs after the connect handler
    /// finished, and only if that accepted the socket; in ordered mode
    /// (`async_handlers(false)`) after the socket's event handlers too,
    /// while concurrently (the default) event handlers still waiting may
    /// finish after it.
    pub fn on_disconnect<M, H: DisconnectHandler<M>>(&mut self, handler: H) -> &mut Self {
        self.on_disconnect = Some(Arc::new(move |cx| handler.call(cx)));
        self
    }
}

/// A refusal of a connection request, from a connect handler:
/// the client gets `{"message": message, "data": data}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRefusal {
    /// The message.
    pub message: String,
    /// The data, if any.
    pub data: Option<Value>,
}

impl ConnectRefusal {
    /// A refusal with a message and no data.
    pub fn new(message: impl Into<String>) -> ConnectRefusal {
        ConnectRefusal {
            message: message.into(),
            data: None,
        }
    }

    /// Attach data (anything serializable; a value that cannot be
    /// represented is left out).
    pub fn with_data<T: Serialize + ?Sized>(mut self, data: &T) -> ConnectRefusal {
        self.data = socketio_core::value::to_value(data).ok();
        self
    }
}

/// A failed call in a connect handler (say `socket.join(room)?`) refuses
/// the connection with the error's text.
impl From<Error> for ConnectRefusal {
    fn from(error: Error) -> ConnectRefusal {
        ConnectRefusal::new(error.to_string())
    }
}

/// The HTTP request that opened a client's Engine.IO session.
#[derive(Debug, Clone)]
pub struct RequestInfo(HandshakeInfo);

impl RequestInfo {
    /// The request's headers.
    pub fn headers(&self) -> &Headers {
        &self.0.request.headers
    }

    /// A header's value, when it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.request.headers.get_str(name)
    }

    /// The request target (path and query).
    pub fn uri(&self) -> &str {
        &self.0.request.target
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        self.0.request.query_param(name).map(|v| v.into_owned())
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.0.remote
    }

    /// The transport the session started on.
    pub fn initial_transport(&self) -> Transport {
        self.0.transport
    }
}

/// Typed values attached to a socket, kept in the core so that they survive
/// connection state recovery.
#[derive(Default)]
struct Extensions(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

struct SocketState {
    id: Str,
    nsp: Str,
    eio: Str,
    request: Option<Arc<RequestInfo>>,
    namespace: Option<Arc<Namespace>>,
    /// Event handlers.
    jobs: JobQueue,
    /// Connect and disconnect handlers, in order (`jobs` itself in
    /// ordered mode): a disconnect handler never overtakes the connect one.
    lifecycle: JobQueue,
    /// The connect handler accepted the socket.
    accepted: std::sync::atomic::AtomicBool,
}

type AckKey = (Str, u64);

/// How long [`Server::shutdown`] lets connections finish writing.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

pub(crate) struct ServerInner {
    driver: ServerDriver<AnyParser>,
    namespaces: Arc<RwLock<Vec<Arc<Namespace>>>>,
    sockets: Mutex<HashMap<Str, Arc<SocketState>>>,
    acks: Mutex<HashMap<AckKey, oneshot::Sender<AckOutcome>>>,
    broadcast_acks: Mutex<HashMap<u64, oneshot::Sender<AckResponses>>>,
    async_handlers: bool,
    max_pending_handlers: usize,
    local_addrs: Mutex<Vec<SocketAddr>>,
    cluster_requests: Mutex<HashMap<u64, oneshot::Sender<(bool, ClusterReply)>>>,
    server_events: RwLock<HashMap<String, ServerSideFn>>,
    /// Jobs of server-side events, in arrival order.
    server_jobs: JobQueue,
    bus: Mutex<Option<Arc<dyn Bus>>>,
    /// Told what happens (the admin UI's instrumentation); empty costs
    /// one atomic load per hook.
    observer: OnceLock<Arc<dyn ServerObserver>>,
    web: crate::web::WebConfig,
    /// Application state, for [`crate::extract::State`].
    state: StateMap,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Options of a [`Server`]; python-socketio's names where they exist.
pub struct ServerBuilder {
    engine: engine::ServerConfig,
    socket: socket::ServerConfig,
    parser: AnyParser,
    runtime: Option<Arc<dyn Runtime>>,
    async_handlers: bool,
    max_pending_handlers: usize,
    adapter: Option<Box<dyn Adapter>>,
    static_files: Option<crate::StaticFiles>,
    state: StateMap,
}

impl ServerBuilder {
    /// Share `state` with every handler: they take it with
    /// [`crate::extract::State<T>`] (one value per type; a second value of
    /// the same type replaces the first). The server holds it in an `Arc`:
    /// put `Mutex`es or atomics inside for what changes.
    pub fn with_state<T: Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state.insert(state);
        self
    }

    /// Act as one node of a cluster sharing this adapter's bus (see
    /// [`crate::RedisAdapter`]): broadcasts, room operations and
    /// disconnections reach the sockets of every node.
    pub fn adapter(mut self, adapter: impl Adapter) -> Self {
        self.adapter = Some(Box::new(adapter));
        self
    }

    /// Serve these files for paths outside the Socket.IO path, on our own
    /// listener and when mounted ([`crate::StaticFiles`] has the rules).
    /// Our own listener routes per connection (by its first request), so
    /// it closes a connection after each static response: the browser's
    /// next request is routed afresh.
    pub fn static_files(mut self, files: crate::StaticFiles) -> Self {
        self.static_files = Some(files);
        self
    }

    /// Time between two pings (25 s).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.engine.ping_interval = interval;
        self
    }

    /// Time to wait for a pong (20 s).
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.engine.ping_timeout = timeout;
        self
    }

    /// Largest message or polling body accepted, in bytes (1,000,000).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.engine.max_payload = bytes;
        self
    }

    /// Transports accepted (both).
    pub fn transports(mut self, transports: &[Transport]) -> Self {
        self.engine.transports = transports.to_vec();
        self
    }

    /// Whether clients may upgrade from polling to WebSocket (true).
    pub fn allow_upgrades(mut self, allow: bool) -> Self {
        self.engine.allow_upgrades = allow;
        self
    }

    /// Accepted cross-origin requests (same origin only).
    pub fn cors_allowed_origins(mut self, origins: CorsOrigins) -> Self {
        self.engine.cors_allowed_origins = origins;
        self
    }

    /// The path the server answers on (`/socket.io/`).
    pub fn path(mut self, path: &str) -> Self {
        let mut path = path.trim_end_matches('/').to_owned();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        path.push('/');
        self.engine.path = path;
        self
    }

    /// Time a session may take to join its first namespace (45 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.socket.connect_timeout = timeout;
        self
    }

    /// Accept every connection at once; a refusal from the connect handler
    /// then disconnects the socket (false).
    pub fn always_connect(mut self, always: bool) -> Self {
        self.socket.always_connect = always;
        self
    }

    /// The wire format: [`crate::JsonParser`] (default),
    /// [`crate::MsgPackParser`], [`crate::CborParser`], or a parser of
    /// your own with [`AnyParser::custom`] (any
    /// [`socketio_core::parser::Parser`]; the built-in ones keep their
    /// static dispatch).
    pub fn parser(mut self, parser: impl Into<AnyParser>) -> Self {
        self.parser = parser.into();
        self
    }

    /// Turn on connection state recovery: a client that reconnects within
    /// `duration` gets its socket id, rooms, data and missed events back.
    pub fn max_disconnection_duration(mut self, duration: Duration) -> Self {
        self.socket.recovery = Some(RecoveryConfig {
            max_disconnection_duration: duration,
            ..RecoveryConfig::default()
        });
        self
    }

    /// Whether a socket's event handlers run concurrently (true, as
    /// python-socketio's `async_handlers=True`) or one after another in
    /// arrival order (false).
    ///
    /// Either way handlers *start* in arrival order, and a handler that
    /// never waits (no `.await` that suspends) finishes before the next one
    /// starts: it runs inline in the task that read its event. Only a
    /// handler that waits (say for [`SocketRef::call`]'s answer) lets later
    /// events of its socket be handled meanwhile; the rest of it then runs
    /// in a task of its own, which a multi-threaded executor (tokio's
    /// multi-thread runtime, async-std, smol with several threads) may run
    /// in parallel with later handlers, so what each does after its first
    /// wait can interleave in any order.
    ///
    /// `false` keeps a socket's handlers strictly one after another, at a
    /// price: a handler that waits stalls every later event of its socket
    /// for as long as it waits (a call the client answers late holds the
    /// socket up to the call's timeout).
    pub fn async_handlers(mut self, concurrent: bool) -> Self {
        self.async_handlers = concurrent;
        self
    }

    /// The most handlers one socket may have waiting: suspended at a wait
    /// (concurrent handlers) or queued behind a waiting one (ordered
    /// handlers); 16,384. An event beyond it disconnects the socket (the
    /// client sees `io server disconnect`, the disconnect handler `server
    /// namespace disconnect`), logged as a warning naming this bound,
    /// rather than holding more memory.
    pub fn max_pending_handlers(mut self, max: usize) -> Self {
        self.max_pending_handlers = max;
        self
    }

    /// The runtime (the default kind's otherwise).
    pub fn runtime(mut self, kind: RuntimeKind) -> Self {
        self.runtime = Some(kind.runtime());
        self
    }

    /// A runtime of your own.
    pub fn custom_runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Any other Engine.IO option.
    pub fn engine_config(mut self, f: impl FnOnce(&mut engine::ServerConfig)) -> Self {
        f(&mut self.engine);
        self
    }

    /// Any other Socket.IO option (namespaces are set by [`Server::ns`]).
    pub fn socket_config(mut self, f: impl FnOnce(&mut socket::ServerConfig)) -> Self {
        f(&mut self.socket);
        self
    }

    /// The server; it serves nothing until [`Server::listen`] or
    /// [`Server::serve`].
    pub fn build(self) -> Server {
        let runtime = self.runtime.unwrap_or_else(crate::runtime::current);
        crate::runtime::set_current(runtime.clone());
        let namespaces: Arc<RwLock<Vec<Arc<Namespace>>>> = Arc::default();
        let mut socket_config = self.socket;
        let registry = Arc::downgrade(&namespaces);
        // Namespaces can be added after the core is built: it asks us.
        socket_config.namespaces = vec![NamespaceMatcher::predicate(move |nsp| {
            registry.upgrade().is_some_and(|r| {
                r.read()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .any(|n| n.pattern.matches(nsp))
            })
        })];
        let web = crate::web::WebConfig::new(&self.engine, self.static_files);
        let mut endpoint =
            ServerEndpoint::new(self.engine, socket_config, self.parser, os_rng(), os_rng());
        if let Some(adapter) = &self.adapter {
            endpoint.socket().enable_cluster(adapter.cluster_config());
        }
        // Events are handled by the task that produced them (no hop to a
        // dispatcher task); the handler reaches the server through this
        // slot, filled below (no event can come before a listener).
        let slot: Arc<OnceLock<Weak<ServerInner>>> = Arc::default();
        let target = slot.clone();
        let driver = ServerDriver::with_handler(runtime.clone(), endpoint, move |event| {
            if let Some(inner) = target.get().and_then(Weak::upgrade) {
                Server { inner }.on_event(event);
            }
        });
        let inner = Arc::new(ServerInner {
            driver,
            namespaces,
            sockets: Mutex::default(),
            acks: Mutex::default(),
            broadcast_acks: Mutex::default(),
            async_handlers: self.async_handlers,
            max_pending_handlers: self.max_pending_handlers,
            local_addrs: Mutex::default(),
            cluster_requests: Mutex::default(),
            server_events: RwLock::default(),
            server_jobs: JobQueue::new(self.async_handlers, self.max_pending_handlers),
            bus: Mutex::default(),
            observer: OnceLock::new(),
            web,
            state: self.state,
        });
        let _ = slot.set(Arc::downgrade(&inner));
        if let Some(adapter) = &self.adapter {
            let (commands, inputs) = inner.driver.attach_bus(BUS_QUEUE);
            *lock(&inner.bus) = Some(adapter.start(runtime, commands, inputs));
        }
        Server { inner }
    }
}

/// A Socket.IO server. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl Server {
    /// Options, then [`ServerBuilder::build`].
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            engine: engine::ServerConfig::default(),
            socket: socket::ServerConfig::default(),
            parser: AnyParser::default(),
            runtime: None,
            async_handlers: true,
            max_pending_handlers: DEFAULT_MAX_PENDING_HANDLERS,
            adapter: None,
            static_files: None,
            state: StateMap::default(),
        }
    }

    /// Set up the handlers of namespace `path`. `"*"` matches every
    /// namespace; more specific registrations made earlier win.
    pub fn ns(&self, path: &str, setup: impl FnOnce(&mut Namespace)) {
        let pattern = if path == "*" {
            Pattern::Any
        } else {
            Pattern::Exact(path.to_owned())
        };
        self.add_namespace(pattern, setup);
    }

    /// Set up the handlers of every namespace `accepts` accepts (the
    /// reference's dynamic namespaces).
    pub fn ns_matching(
        &self,
        accepts: impl Fn(&str) -> bool + Send + Sync + 'static,
        setup: impl FnOnce(&mut Namespace),
    ) {
        self.add_namespace(Pattern::Predicate(Arc::new(accepts)), setup);
    }

    fn add_namespace(&self, pattern: Pattern, setup: impl FnOnce(&mut Namespace)) {
        let mut ns = Namespace {
            pattern,
            on_connect: None,
            events: HashMap::new(),
            on_any: None,
            on_disconnect: None,
        };
        setup(&mut ns);
        let mut namespaces = self
            .inner
            .namespaces
            .write()
            .unwrap_or_else(|e| e.into_inner());
        // Exact names first, then patterns in registration order.
        let at = match ns.pattern {
            Pattern::Exact(_) => namespaces
                .iter()
                .position(|n| !matches!(n.pattern, Pattern::Exact(_)))
                .unwrap_or(namespaces.len()),
            _ => namespaces.len(),
        };
        namespaces.insert(at, Arc::new(ns));
    }

    /// Bind `addr` and serve it in the background; returns the bound
    /// address (useful with port 0).
    pub async fn listen(&self, addr: SocketAddr) -> Result<SocketAddr> {
        let listener = self.inner.driver.runtime().listen(addr).await?;
        self.serve(listener)
    }

    /// Bind `addr` and serve TLS (`https://`, `wss://`) on it in the
    /// background; returns the bound address. A certificate or key that
    /// cannot be loaded is [`Error::Tls`], reported before binding.
    /// Handshakes run concurrently, each within 10 s; for other options,
    /// wrap a listener in a [`socketio_driver::tls::TlsListener`] and
    /// [`Server::serve`] it.
    #[cfg(feature = "tls")]
    pub async fn listen_tls(
        &self,
        addr: SocketAddr,
        config: &socketio_driver::tls::TlsServerConfig,
    ) -> Result<SocketAddr> {
        let runtime = self.inner.driver.runtime().clone();
        // Fail on a bad certificate before binding anything.
        let config = config.build()?;
        let listener = runtime.listen(addr).await?;
        let listener = socketio_driver::tls::TlsListener::new(listener, config, runtime);
        self.serve(Box::new(listener))
    }

    /// Serve an already bound listener in the background.
    pub fn serve(&self, listener: Box<dyn Listener>) -> Result<SocketAddr> {
        let addr = listener.local_addr()?;
        lock(&self.inner.local_addrs).push(addr);
        tracing::info!(%addr, runtime = self.inner.driver.runtime().name(), "serving");
        match &self.inner.web.static_files {
            Some(files) => crate::web::serve_with_static_files(
                self.inner.driver.clone(),
                files.clone(),
                &self.inner.web.path,
                listener,
                self.inner.driver.stopped(),
            ),
            None => self.inner.driver.serve(listener),
        }
        Ok(addr)
    }

    /// Serve one already accepted stream (for example one a
    /// [`crate::driver::Router`] sent here, or a TLS stream).
    pub fn handle_stream(&self, stream: socketio_driver::BoxStream, remote: Option<SocketAddr>) {
        self.inner.driver.handle_stream(stream, remote);
    }

    /// Where the server answers, and its static files (for mounting).
    #[cfg(feature = "tower")]
    pub(crate) fn web(&self) -> &crate::web::WebConfig {
        &self.inner.web
    }

    /// The addresses served.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        lock(&self.inner.local_addrs).clone()
    }

    /// The sockets of namespace `nsp` (a broadcast operator).
    pub fn of(&self, nsp: &str) -> BroadcastOperator {
        BroadcastOperator {
            server: self.clone(),
            target: Broadcast::namespace(nsp),
        }
    }

    /// The sockets of `/` in `room`.
    pub fn to(&self, room: &str) -> BroadcastOperator {
        self.of("/").to(room)
    }

    /// The sockets of `/` not in `room`.
    pub fn except(&self, room: &str) -> BroadcastOperator {
        self.of("/").except(room)
    }

    /// Every socket of `/`, skipping those that cannot take it now.
    pub fn volatile(&self) -> BroadcastOperator {
        self.of("/").volatile()
    }

    /// Emit to every socket of `/`; returns how many were sent it (0 when
    /// it failed, logged: see [`crate::emit_errors`]).
    pub fn emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> usize {
        self.of("/").emit(event, args)
    }

    /// [`Server::emit`] returning its failure.
    pub fn try_emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<usize> {
        self.of("/").try_emit(event, args)
    }

    /// Send `message` events to every socket of `/` (python-socketio's
    /// `send`).
    pub fn send<A: Serialize + ?Sized>(&self, args: &A) -> usize {
        self.emit("message", args)
    }

    /// Every socket of `nsp` leaves `room`.
    pub fn close_room(&self, nsp: &str, room: &str) {
        let observed = self.observer().map(|o| (o, self.sockets_in(nsp, room)));
        self.inner
            .driver
            .with(|ep, _| ep.socket().close_room(nsp, room));
        if let Some((o, ids)) = observed {
            o.rooms_changed(nsp, &ids, room, false);
        }
    }

    /// The ids of the sockets of `nsp` in `room`.
    pub fn sockets_in(&self, nsp: &str, room: &str) -> Vec<String> {
        self.inner.driver.with(|ep, _| {
            ep.socket()
                .sockets_in(nsp, room)
                .into_iter()
                .map(|s| s.to_string())
                .collect()
        })
    }

    /// A handle on a connected socket.
    pub fn socket(&self, id: &str) -> Option<SocketRef> {
        let state = lock(&self.inner.sockets).get(id).cloned()?;
        Some(SocketRef {
            state,
            server: self.clone(),
        })
    }

    /// Disconnect a socket from its namespace (the client sees
    /// `io server disconnect`).
    pub fn disconnect(&self, id: &str) -> Result<()> {
        self.inner
            .driver
            .with(|ep, now| ep.socket().disconnect(now, id))?;
        Ok(())
    }

    /// Stop accepting connections, close every session (sockets see
    /// `forced server close`), give the last packets a moment to leave,
    /// then close every connection.
    pub async fn shutdown(&self) {
        self.inner.driver.stop();
        self.inner.driver.with(|ep, now| ep.shutdown(now));
        let runtime = self.inner.driver.runtime().clone();
        let give_up = Instant::now() + SHUTDOWN_GRACE;
        while self.inner.driver.connection_count() > 0 && Instant::now() < give_up {
            runtime
                .sleep_until(Instant::now() + Duration::from_millis(10))
                .await;
        }
        self.inner.driver.close_all();
        if let Some(bus) = lock(&self.inner.bus).take() {
            bus.stop();
        }
    }

    /// The application state of type `T` registered with
    /// [`ServerBuilder::with_state`].
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.inner.state.get()
    }

    pub(crate) fn runtime(&self) -> &Arc<dyn Runtime> {
        self.inner.driver.runtime()
    }

    /// This node's id on the cluster bus, when it is one node of several.
    pub fn node_id(&self) -> Option<String> {
        self.inner
            .driver
            .with(|ep, _| ep.socket().node_id().map(str::to_owned))
    }

    /// Wait until the cluster's bus took everything published so far (at
    /// most `timeout`); at once without a cluster. Useful before telling
    /// a client that a cluster-wide operation is done.
    pub async fn flush_cluster(&self, timeout: Duration) -> Result<()> {
        let bus = lock(&self.inner.bus).clone();
        match bus {
            Some(bus) => bus.flush(Instant::now() + timeout).await,
            None => Ok(()),
        }
    }

    /// Handle `event` emitted by another server of the cluster with
    /// [`Server::server_side_emit`] (the reference's `serverSideEmit`);
    /// when the emitter asked for an answer, the handler gets a
    /// [`ServerSideAck`].
    pub fn on_server_event<F, Fut>(&self, event: &str, handler: F)
    where
        F: Fn(Server, Args, Option<ServerSideAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.inner
            .server_events
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                event.to_owned(),
                Arc::new(move |server, args, ack| boxed(handler(server, args, ack))),
            );
    }

    /// Emit `event` to the other servers of the cluster (namespace `/`).
    pub fn server_side_emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<()> {
        let nsp = Str::from_static("/");
        self.inner
            .driver
            .with(|ep, _| ep.socket().server_side_emit(&nsp, event, args))?;
        Ok(())
    }

    /// [`Server::server_side_emit`] asking each other server for an answer;
    /// resolves with every answer, or fails with [`Error::Timeout`] when a
    /// server did not answer within the cluster's request timeout (as the
    /// reference's `serverSideEmitWithAck`).
    pub fn server_side_call<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
    ) -> impl Future<Output = Result<Vec<Args>>> + Send + 'static {
        let nsp = Str::from_static("/");
        let reply = self.cluster_request(|ep, now| {
            ep.socket()
                .server_side_emit_with_ack(now, &nsp, event, args)
        });
        async move {
            match reply?.await {
                Ok((true, ClusterReply::ServerSideAcks(acks))) => Ok(acks),
                Ok((false, _)) => Err(Error::Timeout),
                _ => Err(Error::AckDisconnected),
            }
        }
    }

    /// How many servers serve namespace `nsp`, this one included (1
    /// without a cluster, or on a bus that cannot count them).
    pub fn server_count(&self, nsp: &str) -> impl Future<Output = Result<u64>> + Send + 'static {
        let nsp = Str::from(nsp);
        let reply = self.cluster_request(|ep, now| ep.socket().server_count(now, &nsp));
        async move {
            match reply?.await {
                Ok((_, ClusterReply::ServerCount(count))) => Ok(count),
                _ => Err(Error::AckDisconnected),
            }
        }
    }

    /// The rooms of namespace `nsp` on every node.
    pub fn all_rooms(
        &self,
        nsp: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send + 'static {
        let nsp = Str::from(nsp);
        let reply = self.cluster_request(|ep, now| ep.socket().all_rooms(now, &nsp));
        async move {
            match reply?.await {
                Ok((false, _)) => Err(Error::Timeout),
                Ok((_, ClusterReply::Rooms(rooms))) => {
                    Ok(rooms.into_iter().map(|r| r.to_string()).collect())
                }
                _ => Err(Error::AckDisconnected),
            }
        }
    }

    /// Start a cluster request; its reply arrives on the receiver.
    fn cluster_request(
        &self,
        start: impl FnOnce(
            &mut ServerEndpoint<AnyParser>,
            Instant,
        )
            -> std::result::Result<socket::ClusterRequestId, socket::ServerError>,
    ) -> Result<oneshot::Receiver<(bool, ClusterReply)>> {
        let (tx, rx) = oneshot::channel();
        let inner = &self.inner;
        inner.driver.with(|ep, now| {
            let id = start(ep, now)?;
            lock(&inner.cluster_requests).insert(id.0, tx);
            Ok::<_, Error>(())
        })?;
        Ok(rx)
    }
}

/// Answers another server's [`Server::server_side_emit`] (once).
#[derive(Debug)]
pub struct ServerSideAck {
    server: Server,
    id: ServerAckId,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl ServerSideAck {
    /// Send the answer. `args` as in [`SocketRef::emit`].
    pub fn send<A: Serialize + ?Sized>(self, args: &A) -> Result<()> {
        self.server
            .inner
            .driver
            .with(|ep, _| ep.socket().server_side_ack(self.id, args))?;
        Ok(())
    }
}

/// A handle on one socket (one client in one namespace). Cheap to clone;
/// calls on a socket that has left return [`Error::Server`] with
/// `UnknownSocket`.
#[derive(Clone)]
pub struct SocketRef {
    state: Arc<SocketState>,
    server: Server,
}

impl std::fmt::Debug for SocketRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketRef")
            .field("id", &self.state.id)
            .field("nsp", &self.state.nsp)
            .finish()
    }
}

impl SocketRef {
    /// The socket id (what the client knows; not the Engine.IO session id).
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The namespace.
    pub fn ns(&self) -> &str {
        &self.state.nsp
    }

    /// The server.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The request that opened the client's session.
    pub fn request(&self) -> Option<&RequestInfo> {
        self.state.request.as_deref()
    }

    /// The transport the client uses now (`None` once gone).
    pub fn transport(&self) -> Option<Transport> {
        let eio = self.state.eio.clone();
        self.server
            .inner
            .driver
            .with(|ep, _| ep.engine().transport(&eio))
    }

    /// Emit `event` to this socket. `args` is a tuple of arguments (`()`
    /// for none, `(x,)` for one) or an [`Args`].
    ///
    /// Returns whether the packet was queued for the client. A failure is
    /// logged (see [`crate::emit_errors`]); [`SocketRef::try_emit`] returns
    /// it instead.
    pub fn emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> bool {
        crate::emit_errors::sent(self.try_emit(event, args), event)
    }

    /// Send `message` events (python-socketio's `send`): `emit("message",
    /// args)`.
    pub fn send<A: Serialize + ?Sized>(&self, args: &A) -> bool {
        self.emit("message", args)
    }

    /// [`SocketRef::emit`] returning why the packet was not queued: the
    /// socket is gone ([`Error::Server`] with `UnknownSocket`), the event
    /// name is reserved, or `args` cannot be serialized.
    pub fn try_emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<()> {
        self.server
            .inner
            .driver
            .with(|ep, now| ep.socket().emit(now, &self.state.id, event, args))?;
        if let Some(o) = self.server.observer() {
            o.event_sent(self.ns(), &|| vec![self.id().to_owned()], event, &|| {
                Args::from_serialize(args).ok()
            });
        }
        Ok(())
    }

    /// Emit asking for an acknowledgement; resolves to the client's answer,
    /// or fails after `timeout` or when the socket disconnects. The packet
    /// is sent when `call` is called, not when the future is first polled.
    pub fn call<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
        timeout: Duration,
    ) -> impl Future<Output = Result<Args>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let inner = &self.server.inner;
        let sent = inner.driver.with(|ep, now| {
            let id = ep
                .socket()
                .emit_with_ack(now, &self.state.id, event, args, timeout)?;
            lock(&inner.acks).insert((self.state.id.clone(), id), tx);
            Ok::<_, Error>(())
        });
        if let (Ok(()), Some(o)) = (&sent, self.server.observer()) {
            o.event_sent(self.ns(), &|| vec![self.id().to_owned()], event, &|| {
                Args::from_serialize(args).ok()
            });
        }
        async move {
            sent?;
            match rx.await {
                Ok(AckOutcome::Answered(args)) => Ok(args),
                Ok(AckOutcome::TimedOut) => Err(Error::AckTimeout),
                Ok(AckOutcome::Disconnected) | Err(_) => Err(Error::AckDisconnected),
            }
        }
    }

    /// Put the socket in `room`.
    pub fn join(&self, room: &str) -> Result<()> {
        self.server
            .inner
            .driver
            .with(|ep, _| ep.socket().join(&self.state.id, room))?;
        if let Some(o) = self.server.observer() {
            o.rooms_changed(self.ns(), &[self.id().to_owned()], room, true);
        }
        Ok(())
    }

    /// Take the socket out of `room`.
    pub fn leave(&self, room: &str) -> Result<()> {
        self.server
            .inner
            .driver
            .with(|ep, _| ep.socket().leave(&self.state.id, room))?;
        if let Some(o) = self.server.observer() {
            o.rooms_changed(self.ns(), &[self.id().to_owned()], room, false);
        }
        Ok(())
    }

    /// The rooms the socket is in (its own id among them).
    pub fn rooms(&self) -> Result<Vec<String>> {
        let rooms = self
            .server
            .inner
            .driver
            .with(|ep, _| ep.socket().rooms(&self.state.id))?;
        Ok(rooms.into_iter().map(|r| r.to_string()).collect())
    }

    /// The other sockets of the namespace in `room`.
    pub fn to(&self, room: &str) -> BroadcastOperator {
        self.server.of(self.ns()).to(room).except(self.id())
    }

    /// Every other socket of the namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        self.server.of(self.ns()).except(self.id())
    }

    /// Disconnect the socket (the client sees `io server disconnect`).
    pub fn disconnect(&self) -> Result<()> {
        self.server.disconnect(self.id())
    }

    /// Attach a typed value to the socket (replacing one of that type);
    /// returns the previous one.
    pub fn insert<T: Any + Send + Sync>(&self, value: T) -> Result<Option<T>> {
        let id = &self.state.id;
        let previous = self.server.inner.driver.with(|ep, _| {
            let core = ep.socket();
            if core.data::<Extensions>(id)?.is_none() {
                core.set_data(id, Extensions::default())?;
            }
            let ext = core.data_mut::<Extensions>(id)?.expect("just set");
            Ok::<_, Error>(ext.0.insert(TypeId::of::<T>(), Box::new(value)))
        })?;
        Ok(previous.and_then(|b| b.downcast::<T>().ok()).map(|b| *b))
    }

    /// A copy of the socket's value of type `T`.
    pub fn get<T: Any + Clone + Send + Sync>(&self) -> Option<T> {
        self.server.inner.driver.with(|ep, _| {
            let ext = ep.socket().data::<Extensions>(&self.state.id).ok()??;
            ext.0.get(&TypeId::of::<T>())?.downcast_ref::<T>().cloned()
        })
    }

    /// Read the socket's value of type `T` in place (no `Clone` needed):
    /// `f`'s result, or `None` when there is no such value (or the socket
    /// is gone).
    ///
    /// `f` runs under the server's lock: keep it short and do not call the
    /// server from it.
    pub fn with_data<T: Any + Send + Sync, R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.server.inner.driver.with(|ep, _| {
            let ext = ep.socket().data::<Extensions>(&self.state.id).ok()??;
            ext.0.get(&TypeId::of::<T>())?.downcast_ref::<T>().map(f)
        })
    }

    /// Update the socket's value of type `T` atomically (python-socketio's
    /// `async with sio.session(sid)`): `f` gets it, created with
    /// `T::default()` when missing, and nothing else reads or writes the
    /// socket's values meanwhile. `None` when the socket is gone.
    ///
    /// `f` runs under the server's lock: keep it short and do not call the
    /// server from it.
    pub fn with_data_mut<T: Any + Default + Send + Sync, R>(
        &self,
        f: impl FnOnce(&mut T) -> R,
    ) -> Option<R> {
        let id = &self.state.id;
        self.server.inner.driver.with(|ep, _| {
            let core = ep.socket();
            if core.data::<Extensions>(id).ok()?.is_none() {
                core.set_data(id, Extensions::default()).ok()?;
            }
            let ext = core.data_mut::<Extensions>(id).ok()??;
            let value = ext
                .0
                .entry(TypeId::of::<T>())
                .or_insert_with(|| Box::new(T::default()));
            value.downcast_mut::<T>().map(f)
        })
    }

    /// Remove the socket's value of type `T`.
    pub fn remove<T: Any + Send + Sync>(&self) -> Option<T> {
        self.server.inner.driver.with(|ep, _| {
            let ext = ep.socket().data_mut::<Extensions>(&self.state.id).ok()??;
            ext.0
                .remove(&TypeId::of::<T>())?
                .downcast::<T>()
                .ok()
                .map(|b| *b)
        })
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        self.server
            .inner
            .driver
            .with(|ep, _| ep.socket().is_connected(&self.state.id).unwrap_or(false))
    }
}

/// Answers one acknowledgement request of a client (once), by hand: take
/// it as a handler parameter to answer later (from a task, after a call,
/// ...); the handler's return value is then not sent. As `Option<AckSender>`
/// it is there only when the client asked for an answer; as `AckSender`,
/// always, and sending does nothing when the client asked for none.
#[derive(Debug)]
pub struct AckSender {
    socket: SocketRef,
    id: Option<u64>,
}

impl AckSender {
    pub(crate) fn new(socket: SocketRef, id: Option<u64>) -> AckSender {
        AckSender { socket, id }
    }

    /// Whether the client asked for an answer.
    pub fn requested(&self) -> bool {
        self.id.is_some()
    }

    /// Send the answer. `args` as in [`SocketRef::emit`]. Without a
    /// request from the client, nothing is sent (`Ok`).
    pub fn send<A: Serialize + ?Sized>(self, args: &A) -> Result<()> {
        let Some(id) = self.id else {
            return Ok(());
        };
        self.socket
            .server
            .inner
            .driver
            .with(|ep, now| ep.socket().ack(now, &self.socket.state.id, id, args))?;
        Ok(())
    }
}

/// The answers to a broadcast with acknowledgements.
#[derive(Debug, Clone)]
pub struct AckResponses {
    /// Whether every receiver answered (or disconnected) before the
    /// deadline.
    pub complete: bool,
    /// Socket id and answer, in arrival order.
    pub responses: Vec<(String, Args)>,
}

/// Selects sockets of a namespace to emit to: [`BroadcastOperator::to`]
/// rooms, [`BroadcastOperator::except`] rooms (socket ids are rooms too),
/// [`BroadcastOperator::volatile`].
#[derive(Clone)]
pub struct BroadcastOperator {
    server: Server,
    target: Broadcast,
}

impl BroadcastOperator {
    /// Only members of `room` (several calls: members of any).
    pub fn to(mut self, room: &str) -> Self {
        self.target = self.target.to(room);
        self
    }

    /// Leave out members of `room`.
    pub fn except(mut self, room: &str) -> Self {
        self.target = self.target.except(room);
        self
    }

    /// Skip sockets that cannot take the packet now.
    pub fn volatile(mut self) -> Self {
        self.target = self.target.volatile();
        self
    }

    /// This node's sockets only, even in a cluster.
    pub fn local(mut self) -> Self {
        self.target = self.target.local();
        self
    }

    /// The selected sockets join `room`, on every node.
    pub fn sockets_join(&self, room: &str) -> Result<()> {
        let rooms = [Str::from(room)];
        let observed = self.server.observer().map(|o| (o, self.sockets()));
        self.server
            .inner
            .driver
            .with(|ep, _| ep.socket().sockets_join(&self.target, &rooms))?;
        if let Some((o, ids)) = observed {
            o.rooms_changed(&self.target.nsp, &ids, room, true);
        }
        Ok(())
    }

    /// The selected sockets leave `room`, on every node.
    pub fn sockets_leave(&self, room: &str) -> Result<()> {
        let rooms = [Str::from(room)];
        let observed = self.server.observer().map(|o| (o, self.sockets()));
        self.server
            .inner
            .driver
            .with(|ep, _| ep.socket().sockets_leave(&self.target, &rooms))?;
        if let Some((o, ids)) = observed {
            o.rooms_changed(&self.target.nsp, &ids, room, false);
        }
        Ok(())
    }

    /// Disconnect the selected sockets, on every node (closing their
    /// connections too when `close`).
    pub fn disconnect_sockets(&self, close: bool) -> Result<()> {
        self.server
            .inner
            .driver
            .with(|ep, now| ep.socket().disconnect_sockets(now, &self.target, close))?;
        Ok(())
    }

    /// The selected sockets of every node (ids and rooms); fails with
    /// [`Error::Timeout`] when a node did not answer within the cluster's
    /// request timeout (as the reference's `fetchSockets`).
    pub fn fetch_sockets(
        &self,
    ) -> impl Future<Output = Result<Vec<RemoteSocket>>> + Send + 'static {
        let target = self.target.clone();
        let reply = self
            .server
            .cluster_request(|ep, now| ep.socket().fetch_sockets(now, &target));
        async move {
            match reply?.await {
                Ok((true, ClusterReply::Sockets(sockets))) => Ok(sockets),
                Ok((false, _)) => Err(Error::Timeout),
                _ => Err(Error::AckDisconnected),
            }
        }
    }

    /// Emit to the selected sockets; returns how many were sent it (0
    /// when it failed, logged: see [`crate::emit_errors`]).
    pub fn emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> usize {
        crate::emit_errors::count(self.try_emit(event, args), event)
    }

    /// Send `message` events to the selected sockets (python-socketio's
    /// `send`).
    pub fn send<A: Serialize + ?Sized>(&self, args: &A) -> usize {
        self.emit("message", args)
    }

    /// [`BroadcastOperator::emit`] returning its failure: the event name is
    /// reserved, `args` cannot be serialized, or the cluster's bus refused.
    pub fn try_emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<usize> {
        let sent = self
            .server
            .inner
            .driver
            .with(|ep, now| ep.socket().broadcast(now, &self.target, event, args))?;
        if let Some(o) = self.server.observer() {
            o.event_sent(&self.target.nsp, &|| self.sockets(), event, &|| {
                Args::from_serialize(args).ok()
            });
        }
        Ok(sent)
    }

    /// Emit asking each selected socket for an acknowledgement; resolves
    /// once all answered (or disconnected), or with what arrived when
    /// `timeout` passes.
    pub fn emit_with_ack<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
        timeout: Duration,
    ) -> impl Future<Output = Result<AckResponses>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let inner = &self.server.inner;
        let sent = inner.driver.with(|ep, now| {
            let started =
                ep.socket()
                    .broadcast_with_ack(now, &self.target, event, args, timeout)?;
            lock(&inner.broadcast_acks).insert(started.id.0, tx);
            Ok::<_, Error>(())
        });
        if let (Ok(()), Some(o)) = (&sent, self.server.observer()) {
            o.event_sent(&self.target.nsp, &|| self.sockets(), event, &|| {
                Args::from_serialize(args).ok()
            });
        }
        async move {
            sent?;
            rx.await.map_err(|_| Error::AckDisconnected)
        }
    }

    /// The ids of the selected sockets.
    pub fn sockets(&self) -> Vec<String> {
        let nsp = self.target.nsp.clone();
        let selector = self.target.selector.clone();
        // No room named: every socket of the namespace (the core has no
        // room holding them all).
        let everyone: Vec<Str> = match selector.rooms.is_empty() {
            true => lock(&self.server.inner.sockets)
                .values()
                .filter(|s| s.nsp == nsp)
                .map(|s| s.id.clone())
                .collect(),
            false => Vec::new(),
        };
        self.server.inner.driver.with(|ep, _| {
            let core = ep.socket();
            let mut ids: Vec<Str> = if selector.rooms.is_empty() {
                everyone
            } else {
                selector
                    .rooms
                    .iter()
                    .flat_map(|room| core.sockets_in(&nsp, room))
                    .collect()
            };
            ids.sort();
            ids.dedup();
            let excluded: Vec<Str> = selector
                .except
                .iter()
                .flat_map(|room| core.sockets_in(&nsp, room))
                .collect();
            ids.retain(|id| !excluded.contains(id));
            ids.into_iter().map(|s| s.to_string()).collect()
        })
    }
}

impl Server {
    fn find_namespace(&self, nsp: &str) -> Option<Arc<Namespace>> {
        self.inner
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|n| n.pattern.matches(nsp))
            .cloned()
    }

    /// Whether the arguments a client sent are valid. The JSON parser
    /// checks them lazily; they are checked here, before any handler runs,
    /// so a handler never sees invalid arguments (the check is one pass
    /// over the text, done once: a later `deserialize` reuses it). Invalid
    /// ones close the client's session with `parse error`, as the
    /// reference does for any malformed packet.
    fn arguments_valid(&self, socket: &str, args: &Args) -> bool {
        let Err(error) = args.validate() else {
            return true;
        };
        tracing::debug!(%socket, %error, "invalid arguments: closing the session");
        // The socket may be gone already: nothing left to close then.
        let _ = self
            .inner
            .driver
            .with(|ep, now| ep.socket().invalid_packet(now, socket));
        false
    }

    fn on_event(&self, event: ServerEvent) {
        let runtime = self.runtime().clone();
        match event {
            ServerEvent::Connect {
                socket,
                nsp,
                eio,
                auth,
                recovered,
            } => {
                tracing::debug!(%socket, %nsp, recovered, "connect request");
                let request = self.inner.driver.with(|ep, _| {
                    ep.handshake(&eio)
                        .cloned()
                        .map(|info| Arc::new(RequestInfo(info)))
                });
                let namespace = self.find_namespace(&nsp);
                let jobs =
                    JobQueue::new(self.inner.async_handlers, self.inner.max_pending_handlers);
                let lifecycle = if jobs.is_concurrent() {
                    JobQueue::ordered()
                } else {
                    jobs.clone()
                };
                let state = Arc::new(SocketState {
                    id: socket.clone(),
                    nsp,
                    eio,
                    request,
                    namespace,
                    jobs,
                    lifecycle,
                    accepted: Default::default(),
                });
                lock(&self.inner.sockets).insert(socket.clone(), state.clone());
                let socket_ref = SocketRef {
                    state: state.clone(),
                    server: self.clone(),
                };
                let handler = state.namespace.as_ref().and_then(|n| n.on_connect.clone());
                // The client sends events only once accepted, so even
                // with `async_handlers` the connect handler runs first.
                let job = boxed(async move {
                    let verdict = match handler {
                        Some(h) => {
                            h(ConnectContext {
                                socket: socket_ref.clone(),
                                auth,
                            })
                            .await
                        }
                        None => Ok(()),
                    };
                    socket_ref
                        .state
                        .accepted
                        .store(verdict.is_ok(), std::sync::atomic::Ordering::Release);
                    let server = &socket_ref.server;
                    let id = socket_ref.state.id.clone();
                    let result = server.inner.driver.with(|ep, now| match &verdict {
                        Ok(()) => ep.socket().accept(now, &id),
                        Err(refusal) => {
                            ep.socket()
                                .reject(now, &id, &refusal.message, refusal.data.as_ref())
                        }
                    });
                    if verdict.is_err() {
                        lock(&server.inner.sockets).remove(&id);
                    }
                    if let Err(e) = result {
                        tracing::debug!(socket = %id, error = %e, "connection answer failed");
                    } else if let (Ok(()), Some(o)) = (&verdict, server.observer()) {
                        o.socket_connected(&socket_ref);
                    }
                });
                state.lifecycle.push(&*runtime, job);
            }
            ServerEvent::Event {
                socket,
                nsp: _,
                name,
                args,
                ack,
            } => {
                let Some(state) = lock(&self.inner.sockets).get(&socket).cloned() else {
                    return;
                };
                if !self.arguments_valid(&socket, &args) {
                    return;
                }
                let socket_ref = SocketRef {
                    state: state.clone(),
                    server: self.clone(),
                };
                if let Some(o) = self.observer() {
                    o.event_received(&socket_ref, &name, &args);
                }
                let namespace = state.namespace.as_ref();
                let Some(handler) = namespace
                    .and_then(|n| n.events.get(&*name))
                    .or_else(|| namespace.and_then(|n| n.on_any.as_ref()))
                else {
                    tracing::debug!(%socket, event = %name, "no handler");
                    return;
                };
                let cx = EventContext {
                    socket: socket_ref,
                    event: name,
                    args,
                    ack,
                };
                // An extractor refused: dropped, logged by the handler.
                let Some(job) = handler(cx) else {
                    return;
                };
                if let Err(full) = state.jobs.try_push(&*runtime, job) {
                    let cut = self
                        .inner
                        .driver
                        .with(|ep, now| ep.socket().disconnect(now, &socket));
                    if cut.is_ok() {
                        tracing::warn!(%socket, %full, "handler bound reached: disconnecting the socket");
                    }
                }
            }
            ServerEvent::Ack {
                socket,
                id,
                outcome,
                ..
            } => {
                let tx = lock(&self.inner.acks).remove(&(socket.clone(), id));
                if let AckOutcome::Answered(args) = &outcome {
                    // Dropping `tx` fails the call with `AckDisconnected`,
                    // which the closed session is about to make true.
                    if !self.arguments_valid(&socket, args) {
                        return;
                    }
                }
                if let Some(tx) = tx {
                    let _ = tx.send(outcome);
                }
            }
            ServerEvent::BroadcastAck {
                id,
                outcome,
                responses,
            } => {
                // Invalid answers close their senders' sessions and are
                // left out.
                let responses: Vec<(String, Args)> = responses
                    .into_iter()
                    .filter(|(s, a)| self.arguments_valid(s, a))
                    .map(|(s, a)| (s.to_string(), a))
                    .collect();
                if let Some(tx) = lock(&self.inner.broadcast_acks).remove(&id.0) {
                    let _ = tx.send(AckResponses {
                        complete: outcome == BroadcastAckOutcome::Complete,
                        responses,
                    });
                }
            }
            ServerEvent::Writable { .. } => {}
            ServerEvent::ServerSideEmit {
                nsp: _,
                event,
                args,
                ack,
            } => {
                let handler = self
                    .inner
                    .server_events
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&*event)
                    .cloned();
                let Some(handler) = handler else {
                    tracing::debug!(%event, "no handler for a server-side event");
                    return;
                };
                let ack = ack.map(|id| ServerSideAck {
                    server: self.clone(),
                    id,
                });
                let job = handler(self.clone(), args, ack);
                if let Err(full) = self.inner.server_jobs.try_push(&*runtime, job) {
                    tracing::warn!(%event, %full, "handler bound reached: server-side event dropped");
                }
            }
            ServerEvent::ClusterReply {
                id,
                complete,
                reply,
            } => {
                if let Some(tx) = lock(&self.inner.cluster_requests).remove(&id.0) {
                    let _ = tx.send((complete, reply));
                }
            }
            ServerEvent::Disconnect {
                socket,
                nsp,
                reason,
            } => {
                tracing::debug!(%socket, %nsp, %reason, "disconnect");
                let Some(state) = lock(&self.inner.sockets).remove(&socket) else {
                    return;
                };
                lock(&self.inner.acks).retain(|(s, _), _| *s != socket);
                if let Some(o) = self.observer() {
                    o.socket_disconnected(&state.nsp, &socket, &reason);
                }
                if let Some(h) = state
                    .namespace
                    .as_ref()
                    .and_then(|n| n.on_disconnect.clone())
                {
                    let socket_ref = SocketRef {
                        state: state.clone(),
                        server: self.clone(),
                    };
                    // Checked when its turn comes, after the connect handler.
                    let job = boxed(async move {
                        let accepted = socket_ref
                            .state
                            .accepted
                            .load(std::sync::atomic::Ordering::Acquire);
                        if !accepted {
                            return;
                        }
                        let cx = DisconnectContext {
                            socket: socket_ref,
                            reason,
                        };
                        if let Some(handled) = h(cx) {
                            handled.await;
                        }
                    });
                    state.lifecycle.push(&*runtime, job);
                }
            }
        }
    }
}

impl Server {
    /// The observer, if one was installed.
    fn observer(&self) -> Option<&Arc<dyn ServerObserver>> {
        self.inner.observer.get()
    }
}

/// What the admin UI's instrumentation needs beyond the public API.
#[cfg(feature = "admin")]
impl Server {
    /// Install the observer; false when one is installed already.
    pub(crate) fn set_observer(&self, observer: Arc<dyn ServerObserver>) -> bool {
        self.inner.observer.set(observer).is_ok()
    }

    /// A reference that does not keep the server alive.
    pub(crate) fn downgrade(&self) -> Weak<ServerInner> {
        Arc::downgrade(&self.inner)
    }

    /// The server behind `weak`, while it lives.
    pub(crate) fn upgrade(weak: &Weak<ServerInner>) -> Option<Server> {
        weak.upgrade().map(|inner| Server { inner })
    }

    /// Every socket this node knows (connected or still being answered).
    pub(crate) fn socket_refs(&self) -> Vec<SocketRef> {
        let states: Vec<_> = lock(&self.inner.sockets).values().cloned().collect();
        states
            .into_iter()
            .map(|state| SocketRef {
                state,
                server: self.clone(),
            })
            .collect()
    }

    /// The namespaces registered by exact name.
    pub(crate) fn namespace_names(&self) -> Vec<String> {
        let namespaces = self
            .inner
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner());
        namespaces
            .iter()
            .filter_map(|n| match &n.pattern {
                Pattern::Exact(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Read the endpoint's state.
    pub(crate) fn with_endpoint<R>(
        &self,
        f: impl FnOnce(&mut ServerEndpoint<AnyParser>) -> R,
    ) -> R {
        self.inner.driver.with(|ep, _| f(ep))
    }
}

#[cfg(feature = "admin")]
impl SocketRef {
    /// The Engine.IO session the socket came on.
    pub(crate) fn eio(&self) -> &str {
        &self.state.eio
    }
}
