//! HTTP proxies for clients: which proxy a connection uses ([`Proxy`]:
//! the environment's `http_proxy` / `https_proxy` / `no_proxy`, an
//! explicit proxy, or none) and the `CONNECT` tunnel through it
//! ([`Tunnel`]), over an async stream or a blocking `std::net` one.
//!
//! The rules and the wire format live in
//! [`socketio_core::http::proxy`]; this module only does the IO, each wait
//! bounded by the tunnel's deadline. Every connection (long-polling and
//! WebSocket, plain and TLS) is tunnelled with `CONNECT`, so what flows
//! inside is exactly a direct connection's bytes (TLS included: the proxy
//! sees only the target's name and port).
//!
//! [`TunnelRuntime`] wraps a [`Runtime`] so that its TCP connections are
//! such tunnels: a [`ClientDriver`](crate::ClientDriver) built on it
//! (with the proxy's addresses) needs nothing else.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use futures_util::{AsyncReadExt, AsyncWriteExt};

use socketio_core::http::proxy::{connect_request, proxy_for, ConnectResponse};
pub use socketio_core::http::proxy::{NoProxy, ProxyUrl, ProxyUrlError, TunnelError};

use crate::runtime::{BoxFuture, BoxStream, Listener, Runtime};

/// Bytes read from the proxy at once while waiting for its answer.
const READ_CHUNK: usize = 1024;

/// Which proxy a client's connections go through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Proxy {
    /// The environment decides (the default, as curl, Python's `requests`
    /// and `aiohttp` with `trust_env` do): `https_proxy` for `https://` and
    /// `wss://` servers, `http_proxy` for `http://` and `ws://` ones (lower
    /// case first, then upper case), unless `no_proxy` / `NO_PROXY` lists
    /// the host. Read by [`Proxy::route`], when a client connects.
    #[default]
    FromEnv,
    /// Connect directly, whatever the environment says.
    Direct,
    /// Through this proxy, whatever the environment says, except for the
    /// hosts of the given `no_proxy` list (empty by default).
    Url {
        /// The proxy.
        url: ProxyUrl,
        /// Hosts reached directly.
        no_proxy: NoProxy,
    },
}

impl Proxy {
    /// Through the proxy at `url` (`http://[user:password@]host[:port]`),
    /// for every host.
    pub fn url(url: &str) -> Result<Proxy, ProxyUrlError> {
        Ok(Proxy::Url {
            url: ProxyUrl::parse(url, "the proxy option")?,
            no_proxy: NoProxy::default(),
        })
    }

    /// With [`Proxy::Url`], reach the hosts of this `no_proxy`-style list
    /// directly; other settings are returned unchanged.
    pub fn bypass(self, list: &str) -> Proxy {
        match self {
            Proxy::Url { url, .. } => Proxy::Url {
                url,
                no_proxy: NoProxy::parse(list),
            },
            other => other,
        }
    }

    /// The tunnel for a connection to `host:port` (`secure`: an `https://`
    /// or `wss://` server), or `None` to connect directly. The `CONNECT`
    /// exchange gets half of `connect_timeout` (the time allowed for a
    /// whole connection): the TLS and Engine.IO handshakes inside need the
    /// rest, and a silent proxy is then reported as such before the
    /// connection as a whole times out. An unusable proxy URL in the
    /// environment is an error naming the variable.
    pub fn route(
        &self,
        secure: bool,
        host: &str,
        port: u16,
        connect_timeout: Duration,
    ) -> Result<Option<Tunnel>, ProxyUrlError> {
        let proxy = match self {
            Proxy::Direct => None,
            Proxy::Url { url, no_proxy } => (!no_proxy.matches(host, port)).then(|| url.clone()),
            Proxy::FromEnv => proxy_for(secure, host, port, |name| std::env::var(name).ok())?,
        };
        Ok(proxy.map(|proxy| {
            tracing::debug!(%proxy, host, port, "connecting through a proxy");
            Tunnel {
                proxy,
                host: host.to_owned(),
                port,
                timeout: connect_timeout / 2,
            }
        }))
    }
}

/// Why a proxy did not open a tunnel: names the proxy and the target.
#[derive(Debug, Clone)]
pub struct ProxyError(Box<Details>);

#[derive(Debug, Clone)]
struct Details {
    proxy: ProxyUrl,
    target: String,
    kind: ProxyErrorKind,
}

/// What went wrong with a proxy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProxyErrorKind {
    /// No TCP connection to the proxy could be opened.
    Unreachable(Arc<io::Error>),
    /// The proxy answered, but not with a tunnel.
    Tunnel(TunnelError),
    /// Reading from or writing to the proxy failed.
    Io(Arc<io::Error>),
    /// The proxy did not answer within the deadline.
    TimedOut,
}

impl ProxyError {
    /// The proxy (its password hidden when displayed).
    pub fn proxy(&self) -> &ProxyUrl {
        &self.0.proxy
    }

    /// The `host:port` the tunnel was for.
    pub fn target(&self) -> &str {
        &self.0.target
    }

    /// What went wrong.
    pub fn kind(&self) -> &ProxyErrorKind {
        &self.0.kind
    }

    /// The proxy's status code when it refused (407: authentication
    /// required or failed, 403: forbidden, 502: could not reach the
    /// target).
    pub fn status(&self) -> Option<u16> {
        match &self.0.kind {
            ProxyErrorKind::Tunnel(TunnelError::Refused { status, .. }) => Some(*status),
            _ => None,
        }
    }

    /// The proxy error inside an I/O error (as [`TunnelRuntime`] returns
    /// them), if it is one.
    pub fn from_io(error: &io::Error) -> Option<&ProxyError> {
        error.get_ref()?.downcast_ref::<ProxyError>()
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proxy {} ", self.0.proxy)?;
        match &self.0.kind {
            ProxyErrorKind::Unreachable(e) => write!(f, "cannot be reached: {e}")?,
            ProxyErrorKind::Tunnel(e) => e.fmt(f)?,
            ProxyErrorKind::Io(e) => write!(f, "failed: {e}")?,
            ProxyErrorKind::TimedOut => f.write_str("did not answer in time")?,
        }
        write!(f, " (CONNECT {})", self.0.target)?;
        if self.status() == Some(407) && !self.0.proxy.has_credentials() {
            f.write_str("; the proxy URL has no credentials")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.kind {
            ProxyErrorKind::Tunnel(e) => Some(e),
            ProxyErrorKind::Io(e) | ProxyErrorKind::Unreachable(e) => Some(&**e),
            ProxyErrorKind::TimedOut => None,
        }
    }
}

impl From<ProxyError> for io::Error {
    fn from(e: ProxyError) -> io::Error {
        let kind = match &e.0.kind {
            ProxyErrorKind::Io(inner) | ProxyErrorKind::Unreachable(inner) => inner.kind(),
            ProxyErrorKind::TimedOut => io::ErrorKind::TimedOut,
            ProxyErrorKind::Tunnel(TunnelError::Refused { .. }) => io::ErrorKind::ConnectionRefused,
            ProxyErrorKind::Tunnel(_) => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// A `CONNECT` tunnel to open through a proxy: connect to the proxy
/// ([`Tunnel::proxy`]), then open the tunnel on that stream.
#[derive(Debug, Clone)]
pub struct Tunnel {
    proxy: ProxyUrl,
    host: String,
    port: u16,
    timeout: Duration,
}

impl Tunnel {
    /// The proxy to connect to.
    pub fn proxy(&self) -> &ProxyUrl {
        &self.proxy
    }

    fn error(&self, kind: ProxyErrorKind) -> ProxyError {
        ProxyError(Box::new(Details {
            proxy: self.proxy.clone(),
            target: format!("{}:{}", self.host, self.port),
            kind,
        }))
    }

    /// The error for a TCP connection to the proxy that failed.
    pub fn unreachable(&self, e: io::Error) -> ProxyError {
        self.error(ProxyErrorKind::Unreachable(Arc::new(e)))
    }

    fn io_error(&self, e: io::Error) -> ProxyError {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                self.error(ProxyErrorKind::TimedOut)
            }
            _ => self.error(ProxyErrorKind::Io(Arc::new(e))),
        }
    }

    /// Ask for the tunnel on `stream` (connected to the proxy) and wait
    /// for the answer, at most the tunnel's timeout (`runtime` keeps
    /// time). Afterwards the stream is the tunnel.
    pub async fn open<S>(&self, stream: &mut S, runtime: &dyn Runtime) -> Result<(), ProxyError>
    where
        S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + ?Sized,
    {
        let exchange = async {
            stream
                .write_all(&connect_request(&self.proxy, &self.host, self.port))
                .await
                .map_err(|e| self.io_error(e))?;
            stream.flush().await.map_err(|e| self.io_error(e))?;
            let mut response = ConnectResponse::new();
            let mut buf = [0; READ_CHUNK];
            loop {
                let n = stream.read(&mut buf).await.map_err(|e| self.io_error(e))?;
                if n == 0 {
                    return Err(self.error(ProxyErrorKind::Tunnel(response.eof())));
                }
                match response.feed(&buf[..n]) {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => return Err(self.error(ProxyErrorKind::Tunnel(e))),
                }
            }
        };
        let deadline = runtime.sleep_until(Instant::now() + self.timeout);
        match select(Box::pin(exchange), deadline).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(_) => Err(self.error(ProxyErrorKind::TimedOut)),
        }
    }

    /// [`Tunnel::open`] on a blocking stream, within the tunnel's timeout
    /// (set as the stream's read and write timeouts, cleared afterwards).
    pub fn open_blocking(&self, stream: &mut TcpStream) -> Result<(), ProxyError> {
        let deadline = Instant::now() + self.timeout;
        let left = || {
            let left = deadline.saturating_duration_since(Instant::now());
            // Zero means "no timeout" to std: the deadline has passed.
            (!left.is_zero()).then_some(left)
        };
        let timed_out = || self.error(ProxyErrorKind::TimedOut);
        stream
            .set_write_timeout(Some(left().ok_or_else(timed_out)?))
            .and_then(|()| stream.write_all(&connect_request(&self.proxy, &self.host, self.port)))
            .map_err(|e| self.io_error(e))?;
        let mut response = ConnectResponse::new();
        let mut buf = [0; READ_CHUNK];
        loop {
            stream
                .set_read_timeout(Some(left().ok_or_else(timed_out)?))
                .map_err(|e| self.io_error(e))?;
            let n = match stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e)),
            };
            if n == 0 {
                return Err(self.error(ProxyErrorKind::Tunnel(response.eof())));
            }
            match response.feed(&buf[..n]) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return Err(self.error(ProxyErrorKind::Tunnel(e))),
            }
        }
        stream
            .set_read_timeout(None)
            .and_then(|()| stream.set_write_timeout(None))
            .map_err(|e| self.io_error(e))
    }
}

/// A [`Runtime`] whose TCP connections are [`Tunnel`]s: `connect(addr)`
/// connects to `addr` (an address of the proxy) and opens the tunnel
/// there; everything else is the inner runtime's.
pub struct TunnelRuntime {
    inner: Arc<dyn Runtime>,
    tunnel: Arc<Tunnel>,
}

impl TunnelRuntime {
    /// Tunnel `inner`'s connections through `tunnel`.
    pub fn new(inner: Arc<dyn Runtime>, tunnel: Tunnel) -> Self {
        TunnelRuntime {
            inner,
            tunnel: Arc::new(tunnel),
        }
    }
}

impl Runtime for TunnelRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        self.inner.spawn(task)
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        self.inner.sleep_until(deadline)
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>> {
        let inner = self.inner.clone();
        let tunnel = self.tunnel.clone();
        Box::pin(async move {
            let mut stream = inner
                .connect(addr)
                .await
                .map_err(|e| tunnel.unreachable(e))?;
            tunnel.open(&mut stream, &*inner).await?;
            Ok(stream)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        self.inner.listen(addr)
    }

    fn connect_unix(&self, path: &Path) -> BoxFuture<'static, io::Result<BoxStream>> {
        self.inner.connect_unix(path)
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
