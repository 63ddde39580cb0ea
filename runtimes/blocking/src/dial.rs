//! Opening one connection, on its reader thread: TCP to the server or to
//! the proxy, the proxy's `CONNECT` tunnel, then TLS; all within the
//! connect timeout. The result is two halves: the reader thread keeps the
//! [`Reader`], the IO thread gets the [`Writer`].
//!
//! TLS is rustls' sans-IO [`ClientConnection`] shared by both halves
//! behind a mutex, held only to move bytes in or out of it, never across
//! a blocking read (the reader reads the socket unlocked, then feeds what
//! came). The configuration (roots, client certificates) is the async
//! driver's [`TlsClientConfig`](socketio_driver::tls::TlsClientConfig).
//!
//! [`ClientConnection`]: socketio_driver::tls::rustls::ClientConnection

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use socketio_driver::proxy::{ProxyError, Tunnel};

use crate::error::Error;

#[cfg(feature = "tls")]
use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(feature = "tls")]
use socketio_driver::tls::rustls::{self, pki_types::ServerName, ClientConnection};

/// How much one read takes from the socket.
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// TLS to one server: the built configuration and the name to verify.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(crate) struct TlsTarget {
    pub config: Arc<rustls::ClientConfig>,
    pub name: ServerName<'static>,
}

/// Everything needed to open a connection to the server.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
    pub tunnel: Option<Tunnel>,
    #[cfg(feature = "tls")]
    pub tls: Option<TlsTarget>,
}

/// Why a connection could not be opened: the message for the status, and
/// the typed error when retrying cannot be expected to help by itself (a
/// proxy that refused, a TLS handshake that failed).
#[derive(Debug)]
pub(crate) struct DialFailure {
    pub message: String,
    pub typed: Option<Error>,
}

impl From<io::Error> for DialFailure {
    fn from(e: io::Error) -> Self {
        DialFailure {
            message: e.to_string(),
            typed: None,
        }
    }
}

impl From<ProxyError> for DialFailure {
    fn from(e: ProxyError) -> Self {
        DialFailure {
            message: e.to_string(),
            typed: Some(Error::Proxy(e)),
        }
    }
}

impl Dialer {
    /// Connect (to the proxy when there is one, else to the server),
    /// tunnel, run the TLS handshake.
    pub fn open(&self) -> Result<(Reader, Writer), DialFailure> {
        let deadline = Instant::now() + self.timeout;
        let (host, port) = match &self.tunnel {
            Some(tunnel) => (tunnel.proxy().host(), tunnel.proxy().port()),
            None => (self.host.as_str(), self.port),
        };
        let mut stream = match (connect(host, port, deadline), &self.tunnel) {
            (Ok(stream), _) => stream,
            (Err(e), Some(tunnel)) => return Err(tunnel.unreachable(e).into()),
            (Err(e), None) => return Err(e.into()),
        };
        let _ = stream.set_nodelay(true);
        if let Some(tunnel) = &self.tunnel {
            tunnel.open_blocking(&mut stream)?;
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return handshake(stream, tls, deadline);
        }
        let writer = stream.try_clone()?;
        Ok((Reader::Plain(stream), Writer::Plain(writer)))
    }
}

/// Resolve (again on every connection, as addresses may change) and try
/// each address in turn until the deadline.
fn connect(host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no address could be reached")))
}

#[cfg(feature = "tls")]
fn handshake(
    mut stream: TcpStream,
    target: &TlsTarget,
    deadline: Instant,
) -> Result<(Reader, Writer), DialFailure> {
    let tls_failure = |e: io::Error| match socketio_driver::tls::TlsError::from_io(&e) {
        Some(tls) => DialFailure {
            message: tls.to_string(),
            typed: Some(Error::Tls(tls)),
        },
        None => DialFailure::from(e),
    };
    let mut conn =
        ClientConnection::new(target.config.clone(), target.name.clone()).map_err(|e| {
            DialFailure {
                message: e.to_string(),
                typed: Some(Error::Tls(socketio_driver::tls::TlsError::Config(e))),
            }
        })?;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out").into());
        }
        stream.set_read_timeout(Some(left))?;
        stream.set_write_timeout(Some(left))?;
        conn.complete_io(&mut stream).map_err(tls_failure)?;
    }
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    let shared = Arc::new(Mutex::new(conn));
    let reader = Reader::Tls(TlsReader {
        conn: shared.clone(),
        socket: stream.try_clone()?,
        raw: Vec::new(),
        fed: 0,
    });
    Ok((reader, Writer::Tls(shared, stream)))
}

#[cfg(feature = "tls")]
fn lock(conn: &Mutex<ClientConnection>) -> MutexGuard<'_, ClientConnection> {
    conn.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write out whatever TLS records rustls has queued.
#[cfg(feature = "tls")]
fn flush_tls(conn: &mut ClientConnection, socket: &mut TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(socket)?;
    }
    Ok(())
}

/// The reading half, kept by the reader thread.
pub(crate) enum Reader {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(TlsReader),
}

#[cfg(feature = "tls")]
pub(crate) struct TlsReader {
    conn: Arc<Mutex<ClientConnection>>,
    socket: TcpStream,
    /// Bytes read from the socket; `raw[fed..]` not yet given to rustls.
    raw: Vec<u8>,
    fed: usize,
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Reader::Plain(stream) => stream.read(buf),
            #[cfg(feature = "tls")]
            Reader::Tls(tls) => tls.read(buf),
        }
    }
}

#[cfg(feature = "tls")]
impl TlsReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            {
                let mut conn = lock(&self.conn);
                // Plaintext first, so that rustls' buffer never fills.
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.fed < self.raw.len() {
                    let mut rest = &self.raw[self.fed..];
                    let taken = conn.read_tls(&mut rest)?;
                    self.fed += taken;
                    let processed = conn.process_new_packets();
                    // Answers (alerts, key updates) go out in order with
                    // the writer's records: under the same lock.
                    let flushed = flush_tls(&mut conn, &mut self.socket);
                    if let Err(e) = processed {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                    flushed?;
                    continue;
                }
            }
            // Nothing buffered: wait for the socket, unlocked.
            self.raw.resize(READ_CHUNK, 0);
            let n = match self.socket.read(&mut self.raw) {
                Ok(n) => n,
                Err(e) => {
                    self.raw.clear();
                    return Err(e);
                }
            };
            self.raw.truncate(n);
            self.fed = 0;
            if n == 0 {
                // The peer closed without close_notify: still an end of
                // stream for the protocols above (HTTP frames its
                // messages).
                return Ok(0);
            }
        }
    }
}

/// The writing half, owned by the IO thread.
pub(crate) enum Writer {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Arc<Mutex<ClientConnection>>, TcpStream),
}

impl Writer {
    fn socket(&self) -> &TcpStream {
        match self {
            Writer::Plain(socket) => socket,
            #[cfg(feature = "tls")]
            Writer::Tls(_, socket) => socket,
        }
    }

    /// Bound every write (a peer that stops reading fails the write).
    pub fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.socket().set_write_timeout(Some(timeout))
    }

    /// Write all of `bytes` (encrypted with TLS).
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Writer::Plain(socket) => socket.write_all(bytes),
            #[cfg(feature = "tls")]
            Writer::Tls(conn, socket) => {
                let mut conn = lock(conn);
                let mut rest = bytes;
                while !rest.is_empty() {
                    // rustls buffers a bounded amount: write it out and go on.
                    let n = conn.writer().write(rest)?;
                    rest = &rest[n..];
                    flush_tls(&mut conn, socket)?;
                }
                flush_tls(&mut conn, socket)
            }
        }
    }

    /// Close the connection (with TLS, after a close_notify); the reader
    /// thread sees the end of stream.
    pub fn shutdown(&self) {
        #[cfg(feature = "tls")]
        if let Writer::Tls(conn, socket) = self {
            let mut conn = lock(conn);
            conn.send_close_notify();
            let mut socket = socket;
            while conn.wants_write() {
                if conn.write_tls(&mut socket).is_err() {
                    break;
                }
            }
        }
        let _ = self.socket().shutdown(Shutdown::Both);
    }
}
