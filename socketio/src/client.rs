//! The Socket.IO client.

use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use serde::Serialize;
use socketio_core::endpoint::ClientEndpoint;
use socketio_core::engine::{self, ClientTransports, Transport};
use socketio_core::parser::{AnyParser, Args};
use socketio_core::socket::{self, AckFailure, ClientEvent, DisconnectReason};
use socketio_core::{Str, Value};
use socketio_driver::{os_rng_factory, ClientDriver, Runtime};

use crate::error::{Error, Result};
use crate::handler::{boxed, Job, JobQueue, DEFAULT_MAX_PENDING_HANDLERS};
use crate::runtime::RuntimeKind;

type ConnectFn = Arc<dyn Fn(ClientSocket) -> Job + Send + Sync>;
type ConnectErrorFn = Arc<dyn Fn(ClientSocket, String, Option<Value>) -> Job + Send + Sync>;
type EventFn = Arc<dyn Fn(ClientSocket, Args, Option<ClientAck>) -> Job + Send + Sync>;
type AnyFn = Arc<dyn Fn(ClientSocket, Str, Args, Option<ClientAck>) -> Job + Send + Sync>;
type DisconnectFn = Arc<dyn Fn(ClientSocket, DisconnectReason) -> Job + Send + Sync>;

#[derive(Default, Clone)]
struct Handlers {
    on_connect: Option<ConnectFn>,
    on_connect_error: Option<ConnectErrorFn>,
    events: HashMap<String, EventFn>,
    on_any: Option<AnyFn>,
    on_disconnect: Option<DisconnectFn>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Options and handlers of a [`Client`]; python-socketio's names where
/// they exist. Handlers apply to every namespace: the [`ClientSocket`]
/// they get names the namespace.
pub struct ClientBuilder {
    url: String,
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

    /// Connect namespace `nsp` too (`/` is connected unless other
    /// namespaces are named).
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
        self.handlers.on_connect = Some(Arc::new(move |s| boxed(handler(s))));
        self
    }

    /// The server refused a namespace (message and data).
    pub fn on_connect_error<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket, String, Option<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.on_connect_error = Some(Arc::new(move |s, m, d| boxed(handler(s, m, d))));
        self
    }

    /// A namespace was disconnected, with the reason.
    pub fn on_disconnect<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.on_disconnect = Some(Arc::new(move |s, r| boxed(handler(s, r))));
        self
    }

    /// Handle event `event`; the [`ClientAck`] is there when the server
    /// asked for an acknowledgement. Arguments are checked valid before
    /// any handler runs: malformed ones close the session with
    /// `parse error` (then the client reconnects per its policy).
    pub fn on<F, Fut>(mut self, event: &str, handler: F) -> Self
    where
        F: Fn(ClientSocket, Args, Option<ClientAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.events.insert(
            event.to_owned(),
            Arc::new(move |s, a, ack| boxed(handler(s, a, ack))),
        );
        self
    }

    /// Handle every event without a handler of its own.
    pub fn on_any<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket, Str, Args, Option<ClientAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers.on_any = Some(Arc::new(move |s, n, a, ack| boxed(handler(s, n, a, ack))));
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
        match self.namespaces.first() {
            Some((nsp, _)) => Some(nsp.clone()),
            None => parse_url(&self.url).ok().map(|u| u.namespace),
        }
    }

    /// Connect and wait until every namespace is connected. A refusal or
    /// the wait timeout closes the client and returns the error.
    pub async fn connect(mut self) -> Result<Client> {
        let url = parse_url(&self.url)?;
        self.engine.host = url.host_header.clone();
        self.engine.query.extend(url.query);
        if self.namespaces.is_empty() {
            self.namespaces.push((url.namespace, None));
        }
        let tunnel = (self.proxy)
            .route(url.secure, &url.host, url.port, self.engine.connect_timeout)
            .map_err(|e| Error::InvalidUrl(e.to_string()))?;
        // Through a proxy, only the proxy's name is resolved here.
        let (dial_host, dial_port) = tunnel.as_ref().map_or((url.host.as_str(), url.port), |t| {
            (t.proxy().host(), t.proxy().port())
        });
        let addrs: Vec<SocketAddr> = (dial_host, dial_port)
            .to_socket_addrs()
            .map_err(|e| Error::InvalidUrl(format!("{}: {e}", self.url)))?
            .collect();
        let runtime = self.runtime.unwrap_or_else(crate::runtime::current);
        crate::runtime::set_current(runtime.clone());
        let dialer: Arc<dyn Runtime> = match tunnel {
            Some(tunnel) => Arc::new(socketio_driver::proxy::TunnelRuntime::new(
                runtime.clone(),
                tunnel,
            )),
            None => runtime.clone(),
        };
        let endpoint = ClientEndpoint::new(self.engine, self.socket, self.parser, os_rng_factory());
        #[cfg(feature = "tls")]
        let (driver, events) = if url.secure {
            let config = self.tls.build()?;
            let tls = socketio_driver::tls::ClientTls::new(config, &url.host)?;
            ClientDriver::new_tls(dialer, addrs, endpoint, tls)
        } else {
            ClientDriver::new(dialer, addrs, endpoint)
        };
        #[cfg(not(feature = "tls"))]
        let (driver, events) = ClientDriver::new(dialer, addrs, endpoint);
        let jobs = JobQueue::new(self.async_handlers, self.max_pending_handlers);
        let inner = Arc::new(ClientInner {
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
        for (nsp, auth) in self.namespaces {
            let (tx, rx) = oneshot::channel();
            lock(&client.inner.waiters).insert(Str::from(nsp.as_str()), tx);
            let auth = auth.or_else(|| self.auth.clone());
            client
                .inner
                .driver
                .with(|ep, now| ep.socket().connect(now, &nsp, auth))?;
            waiting.push(rx);
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
                socketio_driver::ConnectError::Tls(e) => Error::Tls(e),
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

struct Url {
    /// `https://` or `wss://` (never without the `tls` feature).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    secure: bool,
    host: String,
    port: u16,
    host_header: String,
    namespace: String,
    query: Vec<(String, String)>,
}

/// `http://host[:port][/namespace][?query]` (`ws://`, and with the `tls`
/// feature `https://` and `wss://`, too).
fn parse_url(url: &str) -> Result<Url> {
    let bad = || Error::InvalidUrl(url.to_owned());
    let (secure, rest) = if let Some(rest) = strip_scheme(url, "http").or(strip_scheme(url, "ws")) {
        (false, rest)
    } else if let Some(rest) = strip_scheme(url, "https").or(strip_scheme(url, "wss")) {
        if cfg!(not(feature = "tls")) {
            return Err(Error::InvalidUrl(format!(
                "{url}: https:// and wss:// need the `tls` feature of socketio"
            )));
        }
        (true, rest)
    } else {
        return Err(bad());
    };
    let default_port = if secure { 443 } else { 80 };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (authority, default_port),
    };
    if host.is_empty() {
        return Err(bad());
    }
    let host_header = if port == default_port {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let namespace = match path.trim_end_matches('/') {
        "" => "/".to_owned(),
        p => p.to_owned(),
    };
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect();
    Ok(Url {
        secure,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
        host_header,
        namespace,
        query,
    })
}

/// `url` without `scheme://` (scheme case-insensitive), if it has it.
fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let rest = url.get(scheme.len()..)?.strip_prefix("://")?;
    url[..scheme.len()]
        .eq_ignore_ascii_case(scheme)
        .then_some(rest)
}

type AckKey = (Str, u64);

/// Default of [`ClientBuilder::max_received_events`].
const DEFAULT_MAX_RECEIVED_EVENTS: usize = 1024;

struct ClientInner {
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

/// A Socket.IO client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl Client {
    /// Options and handlers for a connection to `url`
    /// (`http://host[:port][/namespace][?query]`; the path names the
    /// namespace, as in the JavaScript client). With the `tls` feature,
    /// `https://` (and `wss://`) URLs connect over TLS, configured with
    /// [`ClientBuilder::tls`].
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_owned(),
            engine: engine::ClientConfig::default(),
            socket: socket::ClientConfig::default(),
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

async fn dispatch(inner: Weak<ClientInner>, mut events: mpsc::UnboundedReceiver<ClientEvent>) {
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
                if let Some(h) = &handlers.on_connect {
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
                if let Some(h) = &handlers.on_connect_error {
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
                if let Some(h) = handlers.events.get(&*name) {
                    Some(h(socket, args, ack))
                } else if let Some(h) = &handlers.on_any {
                    Some(h(socket, name, args, ack))
                } else {
                    tracing::debug!(%nsp, event = %name, "no handler");
                    None
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
                if let Some(h) = &handlers.on_disconnect {
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
            ClientEvent::ReconnectFailed => {
                tracing::debug!("reconnection failed");
                for (_, tx) in lock(&inner.waiters).drain() {
                    let _ = tx.send(Err(Error::ConnectFailed("reconnection failed".into())));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_port_namespace_and_query() {
        let u = parse_url("http://127.0.0.1:3000/custom?token=abc&x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 3000));
        assert_eq!(u.host_header, "127.0.0.1:3000");
        assert_eq!(u.namespace, "/custom");
        assert_eq!(
            u.query,
            vec![("token".into(), "abc".into()), ("x".into(), String::new())]
        );
        let u = parse_url("http://localhost").unwrap();
        assert_eq!((u.port, u.namespace.as_str()), (80, "/"));
        assert!(!u.secure);
        assert_eq!(parse_url("https://x").is_ok(), cfg!(feature = "tls"));
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("http://:1").is_err());
        assert!(parse_url("http://h:notaport").is_err());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn secure_urls_default_to_port_443() {
        let u = parse_url("https://example.com/chat").unwrap();
        assert!(u.secure);
        assert_eq!((u.port, u.host_header.as_str()), (443, "example.com"));
        assert_eq!(u.namespace, "/chat");
        let u = parse_url("WSS://[::1]:8443").unwrap();
        assert!(u.secure);
        assert_eq!((u.host.as_str(), u.port), ("::1", 8443));
        assert_eq!(u.host_header, "[::1]:8443");
        let u = parse_url("http://example.com:443").unwrap();
        assert_eq!(u.host_header, "example.com:443");
    }
}
