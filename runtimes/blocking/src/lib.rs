//! A blocking Socket.IO client with no async runtime: `std::net`, threads
//! and channels driving the sans-IO [`socketio_core`] endpoint.
//!
//! The API follows python-socketio's `SimpleClient`, plus optional event
//! handlers:
//!
//! ```no_run
//! use std::time::Duration;
//! use socketio_blocking::{Client, ClientOptions};
//!
//! # fn main() -> Result<(), socketio_blocking::Error> {
//! let client = Client::connect("http://127.0.0.1:3000", ClientOptions::default())?;
//! client.emit("echo", &("hello", 42))?;
//! let event = client.receive(Some(Duration::from_secs(5)))?;
//! println!("{} {:?}", event.name, event.args.to_values());
//! let answer = client.call("echo", &("ack me",), Duration::from_secs(5))?;
//! let (text,): (String,) = answer.deserialize()?;
//! client.disconnect()?;
//! # let _ = text;
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//! - **One IO thread** owns the [`ClientEndpoint`], the write half of every
//!   TCP connection and the clock (`Instant::now()`). It waits in one place:
//!   `recv_timeout` on its inbox, until the endpoint's next deadline. It
//!   writes with blocking `write_all` bounded by
//!   [`ClientOptions::write_timeout`].
//! - **One reader thread per TCP connection** (long-polling uses two, an
//!   upgrade a third for a while): it resolves the host with
//!   [`ToSocketAddrs`](std::net::ToSocketAddrs), connects within
//!   [`ClientOptions::connect_timeout`], hands a clone of the stream to the
//!   IO thread, then blocks in `read` and forwards what it reads. Closing a
//!   connection is `shutdown`, which ends its reader. Blocking reads on
//!   their own threads need no readiness API and no polling, which is the
//!   simplest design that is correct on every platform `std` supports.
//! - **The inbox is a bounded [`std::sync::mpsc::sync_channel`]** shared by
//!   the application's commands and the readers: a reader blocks when the
//!   IO thread is behind, so reading ahead is bounded.
//! - **The application** talks to the IO thread with commands; each
//!   answer comes back on a one-shot channel, awaited with a deadline.
//!   Events without a handler wait in a bounded queue for
//!   [`Client::receive`]; status (socket ids, transport) is shared behind a
//!   mutex.
//! - Handlers registered with [`ClientOptions::on`] or [`Client::on`] run on
//!   the IO thread; what they return answers the server's acknowledgement
//!   request. A server's ack request for an event without a handler is
//!   answered with no arguments, as python-socketio does.
//! - Randomness (WebSocket mask keys, cache busters, back-off jitter) comes
//!   from ChaCha12 generators seeded from the OS.
//! - Logs go through [`tracing`].
//!
//! - **Proxies and TLS**: every connection goes through the HTTP proxy of
//!   [`ClientOptions::proxy`] (by default the environment's `http_proxy`,
//!   `https_proxy` and `no_proxy`) as a `CONNECT` tunnel, and with the
//!   `tls` feature `https://` and `wss://` URLs speak TLS (rustls),
//!   configured with [`ClientOptions::tls`]. Both come from
//!   `socketio-driver`, shared with the async clients; no async runtime
//!   runs here. A proxy that refuses the tunnel ([`Error::Proxy`]) or a
//!   TLS handshake that fails ends [`Client::connect`] at once.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod dial;
mod error;
mod io;
mod options;

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;
use socketio_core::endpoint::{ClientEndpoint, RngFactory};
use socketio_core::{engine, socket};

pub use args::to_args;
pub use error::{Error, Result};
pub use options::{ClientOptions, Handler, Proxy};
pub use socketio_core::engine::{ClientTransports, Transport};
pub use socketio_core::parser::{AnyParser, Args, CborParser, JsonParser, MsgPackParser};
pub use socketio_core::{Binary, Bytes, Value};
pub use socketio_driver::proxy::{
    ProxyError, ProxyErrorKind, ProxyUrl, ProxyUrlError, TunnelError,
};
/// TLS configuration (with the `tls` feature).
#[cfg(feature = "tls")]
pub use socketio_driver::tls::{rustls, TlsClientConfig, TlsError, TlsRoots};

use io::{Command, Input, Status};

/// Capacity of the IO thread's inbox (commands and network input).
const INBOX_CAPACITY: usize = 256;
/// Most events waiting for [`Client::receive`]; beyond it new ones are
/// dropped with a warning, so an application that never receives cannot
/// make memory grow.
const EVENT_QUEUE_CAPACITY: usize = 10_000;

/// An event from the server that no handler took.
#[derive(Debug, Clone)]
pub struct Event {
    /// The namespace it came on.
    pub nsp: String,
    /// The event name.
    pub name: String,
    /// Its arguments (already validated).
    pub args: Args,
}

/// A connected client. Dropping it disconnects.
pub struct Client {
    inbox: SyncSender<Input>,
    events: Mutex<Receiver<Event>>,
    status: Arc<Mutex<Status>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    default_nsp: String,
    wait_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("default_nsp", &self.default_nsp)
            .field("status", &*io::lock(&self.status))
            .finish()
    }
}

impl Client {
    /// Connect to `url` (`http://host[:port][/namespace][?query]`, or
    /// `https://` with the `tls` feature; the path names the namespace when
    /// [`ClientOptions::namespaces`] is empty, the query is sent with every
    /// Engine.IO request) and wait, at most [`ClientOptions::wait_timeout`],
    /// until every namespace is connected. A proxy that refuses the tunnel
    /// ([`Error::Proxy`]) or a failed TLS handshake ends the wait at once.
    pub fn connect(url: &str, options: ClientOptions) -> Result<Client> {
        let url = options::parse_url(url)?;
        if options.wait_timeout.is_zero() {
            return Err(Error::InvalidOptions(
                "wait_timeout must not be zero".into(),
            ));
        }
        let namespaces = if options.namespaces.is_empty() {
            vec![(url.namespace.clone(), None)]
        } else {
            options.namespaces.clone()
        };
        let default_nsp = namespaces[0].0.clone();

        let mut master = ChaCha12Rng::try_from_os_rng()
            .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
        let rngs: RngFactory = Box::new(move || {
            Box::new(ChaCha12Rng::from_rng(&mut master)) as Box<dyn RngCore + Send>
        });
        let engine_config = engine::ClientConfig {
            host: url.authority.clone(),
            path: options.path.clone(),
            query: url.query.clone(),
            headers: options.headers.clone(),
            transports: options.transports,
            connect_timeout: options.connect_timeout,
            ..Default::default()
        };
        let socket_config = socket::ClientConfig {
            reconnection: options.reconnection,
            reconnection_attempts: options.reconnection_attempts,
            reconnection_delay: options.reconnection_delay,
            reconnection_delay_max: options.reconnection_delay_max,
            ..Default::default()
        };
        let endpoint = ClientEndpoint::new(engine_config, socket_config, options.parser, rngs);

        let (inbox_tx, inbox_rx) = mpsc::sync_channel(INBOX_CAPACITY);
        let (events_tx, events_rx) = mpsc::sync_channel(EVENT_QUEUE_CAPACITY);
        let (ready_tx, ready_rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(Status::default()));
        let dialer = dial::Dialer {
            host: url.host.clone(),
            port: url.port,
            timeout: options.connect_timeout,
            tunnel: options.proxy.route(
                url.secure,
                &url.host,
                url.port,
                options.connect_timeout,
            )?,
            #[cfg(feature = "tls")]
            tls: if url.secure {
                let name =
                    socketio_driver::tls::rustls::pki_types::ServerName::try_from(url.host.clone())
                        .map_err(|_| TlsError::InvalidServerName(url.host.clone()))?;
                Some(dial::TlsTarget {
                    config: options.tls.build()?,
                    name,
                })
            } else {
                None
            },
        };
        let setup = io::IoSetup {
            endpoint,
            dialer,
            write_timeout: options.write_timeout,
            namespaces,
            handlers: options.handlers.into_iter().collect::<HashMap<_, _>>(),
            inbox_tx: inbox_tx.clone(),
            events_tx,
            status: status.clone(),
            ready: ready_tx,
        };
        let thread = thread::Builder::new()
            .name("socketio-io".into())
            .spawn(move || io::run(setup, inbox_rx))?;
        let client = Client {
            inbox: inbox_tx,
            events: Mutex::new(events_rx),
            status,
            thread: Mutex::new(Some(thread)),
            default_nsp,
            wait_timeout: options.wait_timeout,
        };
        let outcome = match ready_rx.recv_timeout(options.wait_timeout) {
            Ok(outcome) => outcome,
            Err(RecvTimeoutError::Timeout) => Err(Error::ConnectTimeout {
                last_error: io::lock(&client.status).last_error.clone(),
            }),
            // The IO thread ended without an answer.
            Err(RecvTimeoutError::Disconnected) => Err(Error::ConnectFailed),
        };
        match outcome {
            Ok(()) => Ok(client),
            Err(e) => {
                // Dropping the client stops and joins the IO thread.
                drop(client);
                Err(e)
            }
        }
    }

    /// Emit `event` on the default namespace (the first one connected).
    /// `args`: a tuple is several arguments, `()` none, anything else one.
    pub fn emit<A: Serialize + ?Sized>(&self, event: &str, args: &A) -> Result<()> {
        self.emit_in(&self.default_nsp, event, args)
    }

    /// Emit `event` on namespace `nsp`.
    pub fn emit_in<A: Serialize + ?Sized>(&self, nsp: &str, event: &str, args: &A) -> Result<()> {
        let args = to_args(args)?;
        let (reply, answer) = mpsc::channel();
        self.send(Command::Emit {
            nsp: nsp.to_owned(),
            event: event.to_owned(),
            args,
            reply,
        })?;
        self.wait(&answer, self.wait_timeout)?
    }

    /// Emit `event` on the default namespace and wait at most `timeout` for
    /// the server's acknowledgement.
    pub fn call<A: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &A,
        timeout: Duration,
    ) -> Result<Args> {
        self.call_in(&self.default_nsp, event, args, timeout)
    }

    /// Emit `event` on namespace `nsp` and wait at most `timeout` for the
    /// server's acknowledgement.
    pub fn call_in<A: Serialize + ?Sized>(
        &self,
        nsp: &str,
        event: &str,
        args: &A,
        timeout: Duration,
    ) -> Result<Args> {
        let args = to_args(args)?;
        let (reply, answer) = mpsc::channel();
        self.send(Command::Call {
            nsp: nsp.to_owned(),
            event: event.to_owned(),
            args,
            timeout,
            reply,
        })?;
        // The core fails the ack at `timeout`; the extra margin only
        // covers an IO thread busy in a handler.
        self.wait(&answer, timeout + self.wait_timeout)?
    }

    /// The next event no handler took, from any namespace. `None` waits as
    /// long as the client is connected (python-socketio's default);
    /// [`Error::Timeout`] when `timeout` passes first, [`Error::Disconnected`]
    /// once the client is gone and every queued event was received.
    pub fn receive(&self, timeout: Option<Duration>) -> Result<Event> {
        let events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match timeout {
            Some(timeout) => events.recv_timeout(timeout).map_err(|e| match e {
                RecvTimeoutError::Timeout => Error::Timeout,
                RecvTimeoutError::Disconnected => Error::Disconnected,
            }),
            None => events.recv().map_err(|_| Error::Disconnected),
        }
    }

    /// Register (or replace) the handler of `event`, run on the IO thread;
    /// events that arrived before are in the [`Client::receive`] queue.
    pub fn on(
        &self,
        event: &str,
        handler: impl Fn(&Args) -> Option<Args> + Send + Sync + 'static,
    ) -> Result<()> {
        self.send(Command::On {
            event: event.to_owned(),
            handler: Arc::new(handler),
        })
    }

    /// The socket id of `nsp` while it is connected (not the Engine.IO
    /// session id).
    pub fn sid(&self, nsp: &str) -> Option<String> {
        io::lock(&self.status).sids.get(nsp).cloned()
    }

    /// The transport in use while a session is open.
    pub fn transport(&self) -> Option<Transport> {
        io::lock(&self.status).transport
    }

    /// Whether every namespace is connected right now (false while
    /// reconnecting and after [`Client::disconnect`]).
    pub fn connected(&self) -> bool {
        io::lock(&self.status).all_connected
    }

    /// Leave every namespace, close the session and stop the IO thread
    /// (waiting at most about a second for the close to be written).
    /// Further calls fail with [`Error::Disconnected`]; calling it again
    /// does nothing.
    pub fn disconnect(&self) -> Result<()> {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(thread) = thread else {
            return Ok(());
        };
        // A full inbox or a dead thread: the thread ends anyway (it stops
        // by itself when every namespace is gone, and within the grace
        // period once told).
        let _ = self.send(Command::Disconnect);
        if thread.join().is_err() {
            tracing::warn!("the io thread panicked");
        }
        Ok(())
    }

    /// Hand a command to the IO thread, waiting at most `wait_timeout` for
    /// room in its inbox.
    fn send(&self, command: Command) -> Result<()> {
        let deadline = Instant::now() + self.wait_timeout;
        let mut input = Input::Command(command);
        loop {
            match self.inbox.try_send(input) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(Error::Disconnected),
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return Err(Error::Timeout);
                    }
                    input = back;
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    fn wait<T>(&self, answer: &Receiver<T>, timeout: Duration) -> Result<T> {
        answer.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => Error::Timeout,
            RecvTimeoutError::Disconnected => Error::Disconnected,
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.disconnect();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Client>();
        send_sync::<super::Error>();
    }
}
