//! `socketio-tokio`: the tokio [`Runtime`] for `socketio-driver`.
//!
//! Spawns on a tokio runtime handle, sleeps with tokio's timer, and adapts
//! tokio's TCP streams to `futures-io` with `tokio-util`'s `compat`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use socketio_driver::{BoxFuture, BoxStream, Listener, Runtime};
use tokio::runtime::Handle;
use tokio_util::compat::TokioAsyncReadCompatExt;

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
            Ok(Box::new(stream.compat()) as BoxStream)
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
            Ok((Box::new(stream.compat()) as BoxStream, remote))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
