//! `socketio-smol`: the smol [`Runtime`] for `socketio-driver`.
//!
//! Tasks run on smol's global executor, timers are `smol::Timer`, streams
//! are `smol::net` TCP streams (already `futures-io`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use socketio_driver::{async_io, BoxFuture, BoxStream, Listener, Runtime};

/// Runs the driver's tasks on smol's global executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl SmolRuntime {
    /// Run `future` to completion, blocking the calling thread (the
    /// global executor's threads run the spawned tasks).
    pub fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }
}

impl Runtime for SmolRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        smol::spawn(task).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            smol::Timer::at(deadline).await;
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
        "smol"
    }
}
