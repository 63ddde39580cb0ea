//! TCP over async-io's reactor, the one smol and async-std run on.
//!
//! async-io's streams try a `read` before waiting: after a read that
//! drained the socket, the next poll costs a `read` that fails with
//! `WouldBlock` before the task can sleep (one extra system call per
//! message at low load; tokio skips it). [`AsyncIoStream`] remembers that a
//! short read drained the socket and waits for readability first.

use std::io::{self, IoSlice, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::{BoxFuture, BoxStream, Listener};

/// A TCP stream on async-io's reactor (`TCP_NODELAY` set).
#[derive(Debug)]
pub struct AsyncIoStream {
    io: Async<TcpStream>,
    /// The last read returned less than asked: the socket was empty then.
    drained: bool,
}

impl AsyncIoStream {
    /// Wrap a connected stream.
    pub fn new(io: Async<TcpStream>) -> io::Result<Self> {
        io.get_ref().set_nodelay(true)?;
        Ok(AsyncIoStream { io, drained: false })
    }

    /// Connect to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        Self::new(Async::<TcpStream>::connect(addr).await?)
    }
}

impl AsyncRead for AsyncIoStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.drained {
            // Readiness first: no `read` that is bound to fail.
            match self.io.poll_readable(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => self.drained = false,
            }
        }
        loop {
            match self.io.get_ref().read(buf) {
                Ok(n) => {
                    self.drained = n > 0 && n < buf.len();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.io.poll_readable(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(())) => {}
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for AsyncIoStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}

/// A TCP listener on async-io's reactor.
#[derive(Debug)]
pub struct AsyncIoListener(pub Async<TcpListener>);

impl AsyncIoListener {
    /// Bind `addr`.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(AsyncIoListener(Async::<TcpListener>::bind(addr)?))
    }
}

impl Listener for AsyncIoListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            let (stream, remote) = self.0.accept().await?;
            Ok((Box::new(AsyncIoStream::new(stream)?) as BoxStream, remote))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}

/// [`Runtime::connect`](crate::Runtime::connect) for runtimes on async-io's
/// reactor (smol, async-std): one implementation for both.
pub fn connect_tcp(addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>> {
    Box::pin(async move { Ok(Box::new(AsyncIoStream::connect(addr).await?) as BoxStream) })
}

/// [`Runtime::listen`](crate::Runtime::listen) for runtimes on async-io's
/// reactor.
pub fn listen_tcp(addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
    Box::pin(async move { Ok(Box::new(AsyncIoListener::bind(addr)?) as Box<dyn Listener>) })
}

/// [`Runtime::connect_unix`](crate::Runtime::connect_unix) for runtimes on
/// async-io's reactor.
#[cfg(unix)]
pub fn connect_unix(path: &std::path::Path) -> BoxFuture<'static, io::Result<BoxStream>> {
    let path = path.to_owned();
    Box::pin(async move {
        let stream = Async::<std::os::unix::net::UnixStream>::connect(path).await?;
        Ok(Box::new(stream) as BoxStream)
    })
}
