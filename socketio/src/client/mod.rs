//! The Socket.IO client.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use serde::Serialize;
use socketio_core::endpoint::ClientEndpoint;
use socketio_core::engine::{self, ClientTransports, Transport};
use socketio_core::parser::{AnyParser, Args};
use socketio_core::socket::{self, AckFailure, ClientEvent, DisconnectReason};
use socketio_core::{Str, Value};
use socketio_driver::{os_rng_factory, ClientDriver, ClientEvents, ConnectError, Runtime};

use crate::error::{Error, Result};
use crate::handler::{boxed, JobQueue, DEFAULT_MAX_PENDING_HANDLERS};
use crate::runtime::RuntimeKind;

mod handlers;
mod session;
mod url;

pub use handlers::NamespaceHandlers;
use handlers::{EventHandler, Handlers};
use session::{Refresh, Source};
use url::parse_url;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Options and handlers of a [`Client`]; python-socketio's names where
/// they exist. Handlers set here apply to every namespace (the
/// [`ClientSocket`] they get names it) unless the namespace has its own
/// ([`ClientBuilder::on_namespace`]).
pub struct ClientBuilder {
    url: Source<String>,
    auth_fn: Option<Source<Option<Value>>>,
    headers_fn: Option<Source<Vec<(String, String)>>>,
    wait: bool,
    max_queued_events: usize,
    engine: engine::ClientConfig,
    socket: socket::ClientConfig,
    parser: AnyParser,
    namespaces: Vec<(String, Option<Value>)>,
    auth: Option<Value>,
    handlers: Handlers,
    runtime: Option<Arc<dyn Runtime>>,
    wait_timeout: Duration,
    async_handlers: bool,
    max_pending_handlers: usize,
    max_received_events: usize,
    #[cfg(feature = "tls")]
    tls: socketio_driver::tls::TlsClientConfig,
    proxy: socketio_driver::proxy::Proxy,
}

impl ClientBuilder {
    /// Add a request header (sent with every HTTP request and the
    /// WebSocket handshake).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.engine.headers.push((name.into(), value.into()));
        self
    }

    /// Add a query parameter (percent-encoded as given).
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.engine.query.push((name.into(), value.into()));
        self
    }

    /// The auth object sent to namespaces connected without their own.
    pub fn auth<T: Serialize + ?Sized>(mut self, auth: &T) -> Self {
        self.auth = socketio_core::value::to_value(auth).ok();
        self
    }

    /// The auth object, made by `auth` again before every connection and
    /// reconnection attempt (a token refreshed meanwhile; python-socketio's
    /// callable `auth`). Replaces [`ClientBuilder::auth`]. Runs while the
    /// client is locked: it must be quick and must not call the client.
    pub fn auth_with<T, F>(mut self, auth: F) -> Self
    where
        T: Serialize,
        F: Fn() -> T + Send + Sync + 'static,
    {
        self.auth_fn = Some(Arc::new(move || {
            socketio_core::value::to_value(&auth()).ok()
        }));
        self
    }

    /// Request headers made by `headers` again before every connection and
    /// reconnection attempt, sent after those of [`ClientBuilder::header`]
    /// (same rules as [`ClientBuilder::auth_with`]).
    pub fn headers_with<F>(mut self, headers: F) -> Self
    where
        F: Fn() -> Vec<(String, String)> + Send + Sync + 'static,
    {
        self.headers_fn = Some(Arc::new(headers));
        self
    }

    /// The URL, made by `url` again before every connection and
    /// reconnection attempt (a server chosen anew, a token in the query;
    /// same rules as [`ClientBuilder::auth_with`]). Its path names the
    /// namespace at the first connection only; an invalid URL later is
    /// logged and the previous one kept. Through a proxy, the tunnel keeps
    /// the first URL's host and port (the query still follows).
    pub fn url_with<F>(mut self, url: F) -> Self
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        self.url = Arc::new(url);
        self
    }

    /// Whether [`ClientBuilder::connect`] waits until every namespace is
    /// connected (true), or returns at once (python-socketio's
    /// `wait=False`): the outcome then comes to the connect and
    /// connect-error handlers, and [`Client::connected`] tells.
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    /// Whether a first connection that cannot be opened (nothing listens,
    /// the name does not resolve) is retried per the reconnection policy
    /// until the wait timeout (true), or is an error at once (false, the
    /// default, as python-socketio's `retry=False`). Connections lost
    /// after a success are always retried per policy.
    pub fn retry(mut self, retry: bool) -> Self {
        self.socket.retry_first_connection = retry;
        self
    }

    /// Connect namespace `nsp` too. Without any, the namespaces with
    /// handlers of their own are connected (python-socketio's rule), or the
    /// URL's namespace (`/` by default) when none has, or when the URL
    /// names one.
    pub fn namespace(mut self, nsp: &str) -> Self {
        self.namespaces.push((nsp.to_owned(), None));
        self
    }

    /// Connect namespace `nsp` with its own auth object.
    pub fn namespace_with_auth<T: Serialize + ?Sized>(mut self, nsp: &str, auth: &T) -> Self {
        let auth = socketio_core::value::to_value(auth).ok();
        self.namespaces.push((nsp.to_owned(), auth));
        self
    }

    /// Polling only, WebSocket only, or polling then upgrade (default).
    pub fn transports(mut self, transports: ClientTransports) -> Self {
        self.engine.transports = transports;
        self
    }

    /// The server's path (`/socket.io/`).
    pub fn path(mut self, path: &str) -> Self {
        let mut path = path.trim_end_matches('/').to_owned();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        path.push('/');
        self.engine.path = path;
        self
    }

    /// Whether to reconnect after losing the connection (true).
    pub fn reconnection(mut self, on: bool) -> Self {
        self.socket.reconnection = on;
        self
    }

    /// Attempts before giving up; 0 for no limit (the default).
    pub fn reconnection_attempts(mut self, attempts: u32) -> Self {
        self.socket.reconnection_attempts = attempts;
        self
    }

    /// Delay before the first attempt (1 s).
    pub fn reconnection_delay(mut self, delay: Duration) -> Self {
        self.socket.reconnection_delay = delay;
        self
    }

    /// Longest delay between attempts (5 s).
    pub fn reconnection_delay_max(mut self, delay: Duration) -> Self {
        self.socket.reconnection_delay_max = delay;
        self
    }

    /// Jitter of the delays, in (0, 1] (0.5).
    pub fn randomization_factor(mut self, factor: f64) -> Self {
        self.socket.randomization_factor = factor;
        self
    }

    /// How long [`ClientBuilder::connect`] waits for every namespace (20 s).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self.engine.connect_timeout = timeout;
        self
    }

    /// The wire format (JSON by default).
    pub fn parser(mut self, parser: impl Into<AnyParser>) -> Self {
        self.parser = parser.into();
        self
    }

    /// Whether event handlers run concurrently (true, as python-socketio's
    /// `async_handlers=True`) or one after another in arrival order
    /// (false). The client's namespaces share one queue.
    ///
    /// Either way handlers *start* in arrival order, and a handler that
    /// never waits finishes before the next one starts. Only a handler that
    /// waits (say for [`ClientSocket::call`]'s answer) lets later events be
    /// handled meanwhile; the rest of it runs in a task of its own, which
    /// a multi-threaded executor may run in parallel with later handlers.
    /// Connect, connect-error and disconnect handlers run one after another
    /// in either mode: a disconnect handler never starts before the
    /// connect handler it follows finished.
    ///
    /// `false` keeps handlers strictly one after another, at a price: a
    /// handler that waits stalls every later event for as long as it waits.
    pub fn async_handlers(mut self, concurrent: bool) -> Self {
        self.async_handlers = concurrent;
        self
    }

    /// The most event handlers the client may have waiting: suspended at a
    /// wait (concurrent) or queued behind a waiting one (ordered); 16,384.
    /// An event beyond it makes the client disconnect for good (every
    /// namespace, `io client disconnect`; [`Client::wait`] returns),
    /// logged as a warning naming this bound, rather than holding more
    /// memory.
    pub fn max_pending_handlers(mut self, max: usize) -> Self {
        self.max_pending_handlers = max;
        self
    }

    /// The most events a [`crate::SimpleClient`] holds that
    /// [`crate::SimpleClient::receive`] has not taken yet (1,024; other
    /// clients ignore it). One more disconnects the client for good, logged
    /// as a warning; the events held are still handed out, then
    /// [`Error::Disconnected`]. (python-socketio's `SimpleClient` holds
    /// events without a bound.)
    pub fn max_received_events(mut self, max: usize) -> Self {
        self.max_received_events = max;
        self
    }

    pub(crate) fn received_events_bound(&self) -> usize {
        self.max_received_events
    }

    /// The most events decoded from the server and not yet dispatched to
    /// handlers (1,024). While more wait, the connection is not read, so
    /// the server meets TCP's backpressure; nothing received is dropped.
    pub fn max_queued_events(mut self, max: usize) -> Self {
        self.max_queued_events = max;
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

    /// How to set up TLS for `https://` and `wss://` URLs (bundled roots
    /// and full verification by default; `http://` URLs ignore it).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: socketio_driver::tls::TlsClientConfig) -> Self {
        self.tls = config;
        self
    }

    /// Which HTTP proxy to go through: the environment's `http_proxy`,
    /// `https_proxy` and `no_proxy` by default, or
    /// [`Proxy::url`](socketio_driver::proxy::Proxy::url),
    /// or [`Proxy::Direct`](socketio_driver::proxy::Proxy::Direct) for none.
    /// Every connection is a `CONNECT` tunnel through it.
    pub fn proxy(mut self, proxy: socketio_driver::proxy::Proxy) -> Self {
        self.proxy = proxy;
        self
    }

    /// Any other Engine.IO option.
    pub fn engine_config(mut self, f: impl FnOnce(&mut engine::ClientConfig)) -> Self {
        f(&mut self.engine);
        self
    }

    /// Any other Socket.IO option.
    pub fn socket_config(mut self, f: impl FnOnce(&mut socket::ClientConfig)) -> Self {
        f(&mut self.socket);
        self
    }

    /// A namespace was connected.
    pub fn on_connect<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.every = self.handlers.every.on_connect(handler);
        self
    }

    /// A namespace could not be connected: see
    /// [`NamespaceHandlers::on_connect_error`].
    pub fn on_connect_error<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket, String, Option<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.every = self.handlers.every.on_connect_error(handler);
        self
    }

    /// A namespace was disconnected, with the reason.
    pub fn on_disconnect<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.every = self.handlers.every.on_disconnect(handler);
        self
    }

    /// Handle event `event` (see [`NamespaceHandlers::on`]).
    pub fn on<F, Fut>(mut self, event: &str, handler: F) -> Self
    where
        F: Fn(ClientSocket, Args, Option<ClientAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.every = self.handlers.every.on(event, handler);
        self
    }

    /// Handle every event without a handler of its own.
    pub fn on_any<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket, Str, Args, Option<ClientAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.every = self.handlers.every.on_any(handler);
        self
    }

    /// Handlers of namespace `nsp` of its own, which win over those for
    /// every namespace: `.on_namespace("/chat", |h| h.on("msg", ..).on_connect(..))`.
    /// Unless [`ClientBuilder::namespace`] names the namespaces, those
    /// with handlers of their own are the ones connected.
    pub fn on_namespace(
        mut self,
        nsp: &str,
        handlers: impl FnOnce(NamespaceHandlers) -> NamespaceHandlers,
    ) -> Self {
        let slot = self.handlers.namespace_mut(nsp);
        *slot = handlers(std::mem::take(slot));
        self
    }

    /// Handle event `event` in namespace `nsp` only (shorthand of
    /// [`ClientBuilder::on_namespace`]).
    pub fn on_ns<F, Fut>(self, nsp: &str, event: &str, handler: F) -> Self
    where
        F: Fn(ClientSocket, Args, Option<ClientAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_namespace(nsp, |h| h.on(event, handler))
    }

    /// A reconnection attempt was scheduled: its number (from 1) and the
    /// delay before it. Follows each lost connection and each failed
    /// attempt, until one succeeds or the attempts run out.
    pub fn on_reconnect_attempt<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(u32, Duration) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.on_reconnect_attempt = Some(Arc::new(move |n, d| boxed(handler(n, d))));
        self
    }

    /// Connect as a [`crate::SimpleClient`] (python-socketio's
    /// `SimpleClient`): events of its first namespace are received with
    /// [`crate::SimpleClient::receive`] instead of handlers (an `on_any`
    /// handler set here is replaced).
    pub async fn connect_simple(self) -> Result<crate::SimpleClient> {
        crate::simple::connect(self).await
    }

    /// The first namespace this builder connects (`/` by default).
    pub(crate) fn first_namespace(&self) -> Option<String> {
        let url = parse_url(&(self.url)()).ok()?;
        self.namespaces_to_connect(&url.namespace)
            .into_iter()
            .next()
            .map(|(nsp, _)| nsp)
    }

    /// The namespaces named, or else those with handlers of their own and
    /// the URL's (see [`ClientBuilder::namespace`]).
    fn namespaces_to_connect(&self, url_namespace: &str) -> Vec<(String, Option<Value>)> {
        if !self.namespaces.is_empty() {
            return self.namespaces.clone();
        }
        let mut namespaces: Vec<(String, Option<Value>)> = Vec::new();
        if url_namespace != "/" || self.handlers.own.is_empty() {
            namespaces.push((url_namespace.to_owned(), None));
        }
        for nsp in self.handlers.own_namespaces() {
            if namespaces.iter().all(|(n, _)| n != nsp) {
                namespaces.push((nsp.to_owned(), None));
            }
        }
        namespaces
    }

    /// Connect and wait until every namespace is connected (unless
    /// [`ClientBuilder::wait`] says not to). Nothing listening, or a host
    /// name that does not resolve, is an error at once (unless
    /// [`ClientBuilder::retry`]); a refusal or the wait timeout closes the
    /// client and returns the error.
    pub async fn connect(mut self) -> Result<Client> {
        let url_text = (self.url)();
        let url = parse_url(&url_text)?;
        let namespaces = self.namespaces_to_connect(&url.namespace);
        let tunnel = (self.proxy)
            .route(url.secure, &url.host, url.port, self.engine.connect_timeout)
            .map_err(|e| Error::InvalidUrl(e.to_string()))?;
        let runtime = self.runtime.clone().unwrap_or_else(crate::runtime::current);
        crate::runtime::set_current(runtime.clone());
        // Through a proxy the driver dials the proxy, whose tunnel goes to
        // the URL's host (fixed at the first connection).
        let proxy_address = tunnel
            .as_ref()
            .map(|t| (t.proxy().host().to_owned(), t.proxy().port()));
        let dialer: Arc<dyn Runtime> = match tunnel {
            Some(tunnel) => Arc::new(socketio_driver::proxy::TunnelRuntime::new(
                runtime.clone(),
                tunnel,
            )),
            None => runtime.clone(),
        };
        #[cfg(feature = "tls")]
        let tls = if url.secure {
            Some(self.tls.build()?)
        } else {
            None
        };
        let refresh = Refresh {
            url: self.url.clone(),
            auth: self.auth_fn.clone(),
            headers: self.headers_fn.clone(),
            base_headers: self.engine.headers.clone(),
            base_query: self.engine.query.clone(),
            global_auth: namespaces
                .iter()
                .filter(|(_, auth)| auth.is_none())
                .map(|(nsp, _)| nsp.clone())
                .collect(),
            proxy_address,
            #[cfg(feature = "tls")]
            tls,
        };
        let target = refresh.target(&url)?;
        refresh.apply_url(&mut self.engine, &url);
        let endpoint = ClientEndpoint::new(self.engine, self.socket, self.parser, os_rng_factory());
        let (driver, events) = ClientDriver::new(dialer, target, endpoint, self.max_queued_events);
        driver.with(|ep, _| ep.set_session_hook(refresh.into_hook(driver.target_setter())));
        let jobs = JobQueue::new(self.async_handlers, self.max_pending_handlers);
        let inner = Arc::new(ClientInner {
            url: url_text,
            driver,
            handlers: self.handlers,
            lifecycle: if self.async_handlers {
                JobQueue::ordered()
            } else {
                jobs.clone()
            },
            jobs,
            acks: Mutex::default(),
            waiters: Mutex::default(),
        });
        runtime.spawn(Box::pin(dispatch(Arc::downgrade(&inner), events)));
        let client = Client { inner };
        let mut waiting = Vec::new();
        for (nsp, auth) in namespaces {
            if self.wait {
                let (tx, rx) = oneshot::channel();
                lock(&client.inner.waiters).insert(Str::from(nsp.as_str()), tx);
                waiting.push(rx);
            }
            let auth = match (&auth, &self.auth_fn) {
                (Some(_), _) => auth,
                (None, Some(auth_fn)) => auth_fn(),
                (None, None) => self.auth.clone(),
            };
            client
                .inner
                .driver
                .with(|ep, now| ep.socket().connect(now, &nsp, auth))?;
        }
        if !self.wait {
            return Ok(client);
        }
        let all = async {
            for rx in waiting {
                match rx.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(Error::ConnectFailed("client closed".into())),
                }
            }
            Ok(())
        };
        let deadline = runtime.sleep_until(Instant::now() + self.wait_timeout);
        // A certificate the client rejects (or that rejects the client)
        // will not change by retrying: fail at once, with the reason.
        let fatal = async {
            match client.inner.driver.fatal_error().await {
                #[cfg(feature = "tls")]
                ConnectError::Tls(e) => Error::Tls(e),
                e => Error::ConnectFailed(e.to_string()),
            }
        };
        // `fatal` first: a fatal failure is recorded before the endpoint
        // learns of it, so it wins over the failure it causes.
        let outcome = match select(Box::pin(fatal), select(Box::pin(all), deadline)).await {
            Either::Left((e, _)) => Err(e),
            Either::Right((Either::Left((outcome, _)), _)) => outcome,
            Either::Right((Either::Right(_), _)) => Err(Error::ConnectFailed(
                match client.inner.driver.last_connect_error() {
                    Some(e) => format!("timed out ({e})"),
                    None => "timed out".into(),
                },
            )),
        };
        match outcome {
            Ok(()) => Ok(client),
            Err(e) => {
                client
                    .inner
                    .driver
                    .with(|ep, now| ep.socket().disconnect_all(now));
                Err(e)
            }
        }
    }
}

/// The error for a connection that could not be opened, from the driver's
/// reason.
fn open_failure(url: &str, reason: Option<ConnectError>) -> Error {
    match reason {
        Some(ConnectError::Lookup { host, error }) => Error::Lookup {
            host,
            reason: error.to_string(),
        },
        #[cfg(feature = "tls")]
        Some(ConnectError::Tls(e)) => Error::Tls(e),
        // A proxy's failure names the proxy (and its answer): say that.
        Some(ConnectError::Tcp(e)) if socketio_driver::proxy::ProxyError::from_io(&e).is_some() => {
            Error::CannotConnect {
                url: url.to_owned(),
                reason: e.to_string(),
            }
        }
        Some(ConnectError::Tcp(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Error::CannotConnect {
                url: url.to_owned(),
                reason: "connection refused: nothing listens there (is the server running, on this port?)".into(),
            }
        }
        Some(e) => Error::CannotConnect {
            url: url.to_owned(),
            reason: e.to_string(),
        },
        None => Error::ConnectFailed("reconnection failed".into()),
    }
}

type AckKey = (Str, u64);

/// Default of [`ClientBuilder::max_received_events`].
const DEFAULT_MAX_RECEIVED_EVENTS: usize = 1024;

struct ClientInner {
    /// The URL first connected to, for error messages.
    url: String,
    driver: ClientDriver<AnyParser>,
    handlers: Handlers,
    /// Event handlers.
    jobs: JobQueue,
    /// Connect, connect-error and disconnect handlers, in order (`jobs`
    /// itself in ordered mode).
    lifecycle: JobQueue,
    acks: Mutex<HashMap<AckKey, oneshot::Sender<Result<Args>>>>,
    waiters: Mutex<HashMap<Str, oneshot::Sender<Result<()>>>>,
}

impl Drop for ClientInner {
    /// The last handle on the client is gone: leave every namespace, so the
    /// server sees a clean disconnection (the connection tasks write it)
    /// and nothing reconnects.
    fn drop(&mut self) {
        self.driver.with(|ep, now| ep.socket().disconnect_all(now));
    }
}

/// A Socket.IO client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Options and handlers for a connection to `url`
    /// (`http://host[:port][/namespace][?query]`; the path names the
    /// namespace, as in the JavaScript client). With the `tls` feature,
    /// `https://` (and `wss://`) URLs connect over TLS, configured with
    /// [`ClientBuilder::tls`].
    pub fn builder(url: &str) -> ClientBuilder {
        let url = url.to_owned();
        ClientBuilder {
            url: Arc::new(move || url.clone()),
            auth_fn: None,
            headers_fn: None,
            wait: true,
            max_queued_events: socketio_driver::DEFAULT_MAX_QUEUED_EVENTS,
            engine: engine::ClientConfig::default(),
            socket: socket::ClientConfig {
                retry_first_connection: false,
                ..Default::default()
            },
            parser: AnyParser::default(),
            namespaces: Vec::new(),
            auth: None,
            handlers: Handlers::default(),
            runtime: None,
            wait_timeout: Duration::from_secs(20),
            async_handlers: true,
            max_pending_handlers: DEFAULT_MAX_PENDING_HANDLERS,
            max_received_events: DEFAULT_MAX_RECEIVED_EVENTS,
            #[cfg(feature = "tls")]
            tls: Default::default(),
            proxy: Default::default(),
        }
    }

    /// A handle on namespace `nsp`.
    pub fn socket(&self, nsp: &str) -> ClientSocket {
        ClientSocket {
            client: self.clone(),
            nsp: Str::from(nsp),
        }
    }

    /// Emit `event` on `/`. `args` is a tuple (`()` for none) or [`Args`].
    pub fn emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<()> {
        self.socket("/").emit(event, args)
    }

    /// Send a `message` event on `/` (python-socketio's `send`).
    pub fn send<A: Serialize + ?Sized>(&self, data: &A) -> Result<()> {
        self.emit("message", data)
    }

    /// Whether any namespace is connected now (python-socketio's
    /// `connected`): false while reconnecting.
    pub fn connected(&self) -> bool {
        self.inner
            .driver
            .with(|ep, _| ep.socket().connected_namespaces().next().is_some())
    }

    /// The namespaces connected now (python-socketio's `namespaces`).
    pub fn namespaces(&self) -> Vec<String> {
        self.inner.driver.with(|ep, _| {
            ep.socket()
                .connected_namespaces()
                .map(str::to_owned)
                .collect()
        })
    }

    /// Emit on `/` asking for an acknowledgement.
    pub fn call<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
        timeout: Duration,
    ) -> impl Future<Output = Result<Args>> + Send + 'static {
        self.socket("/").call(event, args, timeout)
    }

    /// The socket id of namespace `nsp` while connected.
    pub fn sid(&self, nsp: &str) -> Option<String> {
        self.inner
            .driver
            .with(|ep, _| ep.socket().socket_id(nsp).map(str::to_owned))
    }

    /// The transport in use, while a session is open.
    pub fn transport(&self) -> Option<Transport> {
        self.inner
            .driver
            .with(|ep, _| ep.engine().and_then(|e| e.transport()))
    }

    /// Leave every namespace and close the connection for good; waits (up
    /// to two seconds) for the close to be written.
    pub async fn disconnect(&self) {
        self.inner
            .driver
            .with(|ep, now| ep.socket().disconnect_all(now));
        let runtime = self.inner.driver.runtime().clone();
        let closed = Box::pin(self.inner.driver.closed());
        let deadline = Instant::now() + Duration::from_secs(2);
        let give_up = runtime.sleep_until(deadline);
        let _ = select(closed, give_up).await;
        // Let the connections write what is queued (the DISCONNECT packets and
        // the Engine.IO close) before returning: a program that exits right
        // after `disconnect` must not cut them off.
        while self.inner.driver.live_connections() > 0 && Instant::now() < deadline {
            runtime
                .sleep_until(Instant::now() + Duration::from_millis(10))
                .await;
        }
    }

    pub(crate) fn runtime(&self) -> &std::sync::Arc<dyn Runtime> {
        self.inner.driver.runtime()
    }

    /// Wait until the client is done: disconnected by the application or
    /// the server, or reconnection gave up.
    pub async fn wait(&self) {
        self.inner.driver.closed().await
    }

    /// Completes when the client is done, as [`Client::wait`], without
    /// keeping the client alive meanwhile.
    pub(crate) fn done(&self) -> impl Future<Output = ()> + Send + 'static {
        let driver = self.inner.driver.clone();
        async move { driver.closed().await }
    }
}

/// A client's view of one namespace. Cheap to clone.
#[derive(Clone)]
pub struct ClientSocket {
    client: Client,
    nsp: Str,
}

impl std::fmt::Debug for ClientSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSocket")
            .field("nsp", &self.nsp)
            .finish()
    }
}

impl ClientSocket {
    /// The namespace.
    pub fn ns(&self) -> &str {
        &self.nsp
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The socket id while connected.
    pub fn sid(&self) -> Option<String> {
        self.client.sid(&self.nsp)
    }

    /// Emit `event`; buffered until the namespace is connected.
    pub fn emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<()> {
        self.client
            .inner
            .driver
            .with(|ep, now| ep.socket().emit(now, &self.nsp, event, args))?;
        Ok(())
    }

    /// Send a `message` event (python-socketio's `send`).
    pub fn send<A: Serialize + ?Sized>(&self, data: &A) -> Result<()> {
        self.emit("message", data)
    }

    /// Emit asking for an acknowledgement; resolves to the server's answer
    /// or fails after `timeout` or on disconnection. Sent when called.
    pub fn call<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
        timeout: Duration,
    ) -> impl Future<Output = Result<Args>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let inner = &self.client.inner;
        let sent = inner.driver.with(|ep, now| {
            let id = ep
                .socket()
                .emit_with_ack(now, &self.nsp, event, args, Some(timeout))?;
            lock(&inner.acks).insert((self.nsp.clone(), id), tx);
            Ok::<_, Error>(())
        });
        async move {
            sent?;
            rx.await.unwrap_or(Err(Error::AckDisconnected))
        }
    }

    /// Leave this namespace.
    pub fn disconnect(&self) -> Result<()> {
        self.client
            .inner
            .driver
            .with(|ep, now| ep.socket().disconnect(now, &self.nsp))?;
        Ok(())
    }
}

/// Answers one acknowledgement request of the server (once).
#[derive(Debug)]
pub struct ClientAck {
    socket: ClientSocket,
    id: u64,
}

impl ClientAck {
    /// Send the answer.
    pub fn send<A: Serialize + ?Sized>(self, args: &A) -> Result<()> {
        let socket = &self.socket;
        socket
            .client
            .inner
            .driver
            .with(|ep, now| ep.socket().ack(now, &socket.nsp, self.id, args))?;
        Ok(())
    }
}

async fn dispatch(inner: Weak<ClientInner>, mut events: ClientEvents) {
    while let Some(event) = events.next().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        Client { inner }.on_event(event);
    }
}

impl Client {
    /// Whether the arguments the server sent are valid. Checked before any
    /// handler runs (once: a later `deserialize` reuses the outcome);
    /// invalid ones close the session with `parse error`, and the client
    /// reconnects per its policy.
    fn arguments_valid(&self, args: &Args) -> bool {
        let Err(error) = args.validate() else {
            return true;
        };
        tracing::debug!(%error, "invalid arguments: closing the session");
        self.inner
            .driver
            .with(|ep, now| ep.socket().invalid_packet(now));
        false
    }

    fn on_event(&self, event: ClientEvent) {
        let inner = &self.inner;
        let runtime = inner.driver.runtime().clone();
        let handlers = &inner.handlers;
        let job = match event {
            ClientEvent::Connected { nsp, sid, .. } => {
                tracing::debug!(%nsp, %sid, "connected");
                if let Some(tx) = lock(&inner.waiters).remove(&nsp) {
                    let _ = tx.send(Ok(()));
                }
                if let Some(h) = handlers.connect(&nsp) {
                    inner.lifecycle.push(&*runtime, h(self.socket(&nsp)));
                }
                None
            }
            ClientEvent::ConnectError { nsp, message, data } => {
                tracing::debug!(%nsp, %message, "connection refused");
                if let Some(tx) = lock(&inner.waiters).remove(&nsp) {
                    let _ = tx.send(Err(Error::ConnectRefused {
                        nsp: nsp.to_string(),
                        message: message.clone(),
                        data: data.clone(),
                    }));
                }
                if let Some(h) = handlers.connect_error(&nsp) {
                    inner
                        .lifecycle
                        .push(&*runtime, h(self.socket(&nsp), message, data));
                }
                None
            }
            ClientEvent::Event {
                nsp,
                name,
                args,
                ack,
            } => {
                if !self.arguments_valid(&args) {
                    return;
                }
                let socket = self.socket(&nsp);
                let ack = ack.map(|id| ClientAck {
                    socket: socket.clone(),
                    id,
                });
                match handlers.event(&nsp, &name) {
                    Some(EventHandler::Named(h)) => Some(h(socket, args, ack)),
                    Some(EventHandler::Any(h)) => Some(h(socket, name, args, ack)),
                    None => {
                        tracing::debug!(%nsp, event = %name, "no handler");
                        None
                    }
                }
            }
            ClientEvent::Ack { nsp, id, args } => {
                let tx = lock(&inner.acks).remove(&(nsp, id));
                let answer = match args.validate() {
                    Ok(()) => Ok(args),
                    Err(e) => {
                        self.arguments_valid(&args);
                        Err(Error::Args(e))
                    }
                };
                if let Some(tx) = tx {
                    let _ = tx.send(answer);
                }
                None
            }
            ClientEvent::AckFailed { nsp, id, reason } => {
                if let Some(tx) = lock(&inner.acks).remove(&(nsp, id)) {
                    let _ = tx.send(Err(match reason {
                        AckFailure::Timeout => Error::AckTimeout,
                        AckFailure::Disconnected => Error::AckDisconnected,
                    }));
                }
                None
            }
            ClientEvent::Disconnected { nsp, reason } => {
                tracing::debug!(%nsp, %reason, "disconnected");
                if let Some(h) = handlers.disconnect(&nsp) {
                    inner
                        .lifecycle
                        .push(&*runtime, h(self.socket(&nsp), reason));
                }
                None
            }
            ClientEvent::Reconnecting { attempt } => {
                tracing::debug!(attempt, "reconnecting");
                None
            }
            ClientEvent::Reconnected { attempt } => {
                tracing::debug!(attempt, "reconnected");
                None
            }
            ClientEvent::OpenFailed {
                attempt,
                namespaces,
            } => {
                let reason = inner.driver.last_connect_error();
                let message = match &reason {
                    Some(e) => open_failure(&inner.url, Some(e.clone())).to_string(),
                    None => "the connection could not be opened".to_owned(),
                };
                tracing::debug!(attempt, %message, "connection failed");
                for nsp in namespaces {
                    if let Some(h) = handlers.connect_error(&nsp) {
                        let job = h(self.socket(&nsp), message.clone(), None);
                        inner.lifecycle.push(&*runtime, job);
                    }
                }
                None
            }
            ClientEvent::ReconnectScheduled { attempt, delay } => {
                tracing::debug!(attempt, ?delay, "reconnection scheduled");
                if let Some(h) = &handlers.on_reconnect_attempt {
                    inner.lifecycle.push(&*runtime, h(attempt, delay));
                }
                None
            }
            ClientEvent::ReconnectFailed => {
                tracing::debug!("reconnection failed");
                let waiters: Vec<_> = lock(&inner.waiters).drain().collect();
                for (_, tx) in waiters {
                    let error = open_failure(&inner.url, inner.driver.last_connect_error());
                    let _ = tx.send(Err(error));
                }
                None
            }
        };
        if let Some(job) = job {
            if let Err(full) = inner.jobs.try_push(&*runtime, job) {
                self.close_for_good(&full.to_string());
            }
        }
    }

    /// Disconnect every namespace for good because a bound was reached
    /// (`why` names it); logged once, while the client was still active.
    pub(crate) fn close_for_good(&self, why: &str) {
        let was_active = self.inner.driver.with(|ep, now| {
            let active = ep.socket().is_active();
            ep.socket().disconnect_all(now);
            active
        });
        if was_active {
            tracing::warn!(bound = why, "bound reached: disconnecting the client");
        }
    }
}
