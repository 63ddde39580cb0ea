//! `socketio-tokio`: the tokio [`Runtime`] for `socketio-driver`.
//!
//! Spawns on a tokio runtime handle, sleeps with tokio's timer, and adapts
//! tokio's TCP streams to `futures-io` ([`TokioStream`], vectored writes
//! included).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use socketio_driver::{BoxFuture, BoxStream, Listener, Runtime};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::runtime::Handle;

use tokio::io::{AsyncRead as _, AsyncWrite as _, ReadBuf};

/// Runs the driver's tasks on a tokio runtime.
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// The runtime of the calling context.
    ///
    /// # Panics
    /// Outside a tokio runtime (use [`TokioRuntime::from_handle`]).
    pub fn current() -> Self {
        TokioRuntime {
            handle: Handle::current(),
        }
    }

    /// The runtime of the calling context, if there is one.
    pub fn try_current() -> Option<Self> {
        Handle::try_current()
            .ok()
            .map(|handle| TokioRuntime { handle })
    }

    /// The runtime of the calling context, or else a process-wide
    /// multi-threaded runtime created on first use.
    pub fn current_or_global() -> Self {
        Self::try_current().unwrap_or_else(|| {
            static GLOBAL: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
            let runtime = GLOBAL.get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .thread_name("socketio-tokio")
                    .build()
                    .expect("could not start a tokio runtime")
            });
            TokioRuntime::from_handle(runtime.handle().clone())
        })
    }

    /// A given runtime.
    pub fn from_handle(handle: Handle) -> Self {
        TokioRuntime { handle }
    }

    /// Run `future` to completion on a new multi-threaded tokio runtime.
    ///
    /// # Panics
    /// If the runtime cannot start (no threads available).
    pub fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("could not start a tokio runtime")
            .block_on(future)
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        drop(self.handle.spawn(task));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        // Entering binds the timer to this runtime, whoever polls it.
        let _guard = self.handle.enter();
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>> {
        // Registered with the reactor on a runtime thread, so any caller
        // (another runtime's task, a plain executor) can await it.
        let connecting = self.handle.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok::<_, io::Error>(stream)
        });
        Box::pin(async move {
            let stream = connecting.await.map_err(io::Error::other)??;
            Ok(Box::new(TokioStream(stream)) as BoxStream)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let binding = self
            .handle
            .spawn(async move { tokio::net::TcpListener::bind(addr).await });
        Box::pin(async move {
            let listener = binding.await.map_err(io::Error::other)??;
            Ok(Box::new(TokioListener(listener)) as Box<dyn Listener>)
        })
    }

    #[cfg(unix)]
    fn connect_unix(&self, path: &std::path::Path) -> BoxFuture<'static, io::Result<BoxStream>> {
        let path = path.to_owned();
        let connecting = self
            .handle
            .spawn(async move { tokio::net::UnixStream::connect(path).await });
        Box::pin(async move {
            let stream = connecting.await.map_err(io::Error::other)??;
            Ok(Box::new(TokioUnixStream(stream)) as BoxStream)
        })
    }

    fn name(&self) -> &'static str {
        "tokio"
    }
}

/// A tokio TCP listener.
#[derive(Debug)]
pub struct TokioListener(pub tokio::net::TcpListener);

impl Listener for TokioListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            let (stream, remote) = self.0.accept().await?;
            stream.set_nodelay(true)?;
            Ok((Box::new(TokioStream(stream)) as BoxStream, remote))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A tokio TCP stream as a `futures-io` stream. Unlike `tokio-util`'s
/// `compat`, it passes vectored writes through: the driver writes a batch
/// of queued packets with one `writev`.
#[derive(Debug)]
pub struct TokioStream(pub tokio::net::TcpStream);

impl futures_io::AsyncRead for TokioStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures_io::AsyncWrite for TokioStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A tokio Unix-domain stream, adapted to `futures-io`.
#[cfg(unix)]
#[derive(Debug)]
pub struct TokioUnixStream(pub tokio::net::UnixStream);

#[cfg(unix)]
impl futures_io::AsyncRead for TokioUnixStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(unix)]
impl futures_io::AsyncWrite for TokioUnixStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
