//! `socketio-driver`: runs the sans-IO [`socketio_core`] endpoints on any
//! async runtime.
//!
//! The driver is written once, over `futures-io` streams and the small,
//! object-safe [`Runtime`] trait (spawn a task, sleep until an instant,
//! connect and listen over TCP). The runtime crates (`socketio-tokio`,
//! `socketio-async-std`, `socketio-smol`) only implement [`Runtime`].
//!
//! # How a driver runs an endpoint
//! One `std::sync::Mutex` holds the endpoint; it is never held across an
//! `.await`. Every input (bytes read, end of stream, a due timer, an
//! application call) locks it, feeds the core with `Instant::now()`, and
//! drains the outputs in the order the core documents: application events
//! (sent to an unbounded channel the application reads), then the transmit
//! side (connection writers are woken, or told to connect, write, close),
//! then the next deadline (the one timer task is woken when it changed).
//!
//! With the `tls` feature, [`tls`] adds rustls (ring) on top of any
//! stream: client connections to `https://` servers and TLS listeners.
//!
//! Tasks: one per TCP connection, reading and writing, on servers and
//! clients alike (reads go into a buffer of the polling thread, lent for
//! one read and handed to the core at once, so an idle connection holds no
//! read buffer); one timer; one accept loop per listener. A connection
//! pulls its bytes from the core only when it can write them, so bytes stay
//! accounted in the core (backpressure) until then. A server's application
//! events go to a channel ([`ServerDriver::new`]) or to a handler run by
//! the task that produced them ([`ServerDriver::with_handler`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod amqp;
#[cfg(feature = "async-io")]
pub mod async_io;
mod backlog;
mod bus;
mod client;
mod conn;
mod engine_server;
mod io;
pub mod kafka;
pub mod proxy;
pub mod redis;
mod rng;
mod router;
mod runtime;
mod server;
#[cfg(feature = "tls")]
pub mod tls;
pub mod zmq;

#[cfg(feature = "async-io")]
pub use async_io::{AsyncIoListener, AsyncIoStream};
pub use backlog::EventReceiver;
pub use client::{
    ClientDriver, ClientEvents, ClientTarget, ConnectError, DEFAULT_MAX_QUEUED_EVENTS,
};
pub use engine_server::EngineDriver;
pub use rng::{os_rng, os_rng_factory};
pub use router::Router;
pub use runtime::{AsyncStream, BoxFuture, BoxStream, Listener, Runtime};
pub use server::ServerDriver;
