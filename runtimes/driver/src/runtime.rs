//! The runtime abstraction: what the driver needs from an async runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A byte stream the driver can read and write (a TCP stream, a TLS
/// stream over one, an in-memory pipe).
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

/// A boxed [`AsyncStream`].
pub type BoxStream = Box<dyn AsyncStream>;

/// What the driver needs from an async runtime. Object safe: the driver
/// holds an `Arc<dyn Runtime>`.
pub trait Runtime: Send + Sync + 'static {
    /// Run `task` in the background to completion.
    fn spawn(&self, task: BoxFuture<'static, ()>);

    /// A future that completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;

    /// Open a TCP connection (with `TCP_NODELAY` set: the protocol sends
    /// small messages that must not wait).
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>>;

    /// Bind a TCP listener.
    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>>;

    /// Open a Unix-domain stream socket (Redis's `unix://` URLs). The
    /// default says [`io::ErrorKind::Unsupported`]: a runtime (or a
    /// platform) without Unix sockets need not provide it.
    fn connect_unix(&self, path: &Path) -> BoxFuture<'static, io::Result<BoxStream>> {
        let _ = path;
        Box::pin(async {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Unix sockets are not supported by this runtime",
            ))
        })
    }

    /// The runtime's name, for logs (`tokio`, `async-std`, `smol`).
    fn name(&self) -> &'static str;
}

/// A bound TCP listener.
pub trait Listener: Send + 'static {
    /// The next incoming connection and its peer address.
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>>;

    /// The address the listener is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}
