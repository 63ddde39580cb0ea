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

use socketio_driver::{AsyncIoListener, AsyncIoStream, BoxFuture, BoxStream, Listener, Runtime};

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

    // TCP through the driver's async-io types (smol's reactor), which
    // skip a failing read per message.
    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move { Ok(Box::new(AsyncIoStream::connect(addr).await?) as BoxStream) })
    }

    fn listen(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move { Ok(Box::new(AsyncIoListener::bind(addr)?) as Box<dyn Listener>) })
    }

    #[cfg(unix)]
    fn connect_unix(&self, path: &std::path::Path) -> BoxFuture<'static, io::Result<BoxStream>> {
        let path = path.to_owned();
        Box::pin(async move {
            Ok(Box::new(smol::net::unix::UnixStream::connect(path).await?) as BoxStream)
        })
    }

    fn name(&self) -> &'static str {
        "smol"
    }
}
