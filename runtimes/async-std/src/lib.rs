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

use socketio_driver::{async_io, BoxFuture, BoxStream, Listener, Runtime};

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

    // TCP and Unix sockets through the driver's async-io types: this
    // runtime runs on async-io's reactor, and they skip a failing read per
    // message.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>> {
        async_io::connect_tcp(addr)
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        async_io::listen_tcp(addr)
    }

    #[cfg(unix)]
    fn connect_unix(&self, path: &std::path::Path) -> BoxFuture<'static, io::Result<BoxStream>> {
        async_io::connect_unix(path)
    }

    fn name(&self) -> &'static str {
        "async-std"
    }
}
