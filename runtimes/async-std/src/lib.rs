//! `socketio-async-std`: the async-std [`Runtime`] for `socketio-driver`.
//!
//! async-std is discontinued upstream (its authors point to smol); this
//! adapter is kept tiny so that existing async-std applications can still
//! use the library. New code should prefer `socketio-tokio` or
//! `socketio-smol`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use socketio_driver::{BoxFuture, BoxStream, Listener, Runtime};

/// Runs the driver's tasks on async-std's global executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

impl AsyncStdRuntime {
    /// Run `future` to completion, blocking the calling thread.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }
}

impl Runtime for AsyncStdRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        drop(async_std::task::spawn(task));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let now = Instant::now();
            if deadline > now {
                async_std::task::sleep(deadline - now).await;
            }
        })
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move {
            let stream = async_std::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream) as BoxStream)
        })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = async_std::net::TcpListener::bind(addr).await?;
            Ok(Box::new(AsyncStdListener(listener)) as Box<dyn Listener>)
        })
    }

    fn name(&self) -> &'static str {
        "async-std"
    }
}

/// An async-std TCP listener.
#[derive(Debug)]
pub struct AsyncStdListener(pub async_std::net::TcpListener);

impl Listener for AsyncStdListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            let (stream, remote) = self.0.accept().await?;
            stream.set_nodelay(true)?;
            Ok((Box::new(stream) as BoxStream, remote))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}
