//! Errors of the public API.

use std::fmt;

use socketio_core::parser::ArgsError;
use socketio_core::socket::{ClientError, ServerError};
use socketio_core::Value;

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The server refused the call (unknown socket, reserved event name,
    /// ack already answered, encoding failed, ...).
    Server(ServerError),
    /// The client refused the call (namespace not connected, buffer full,
    /// ...).
    Client(ClientError),
    /// The acknowledgement did not arrive before the deadline.
    AckTimeout,
    /// The socket or namespace disconnected before acknowledging.
    AckDisconnected,
    /// The server refused the namespace connection.
    ConnectRefused {
        /// The namespace.
        nsp: String,
        /// The refusal's message.
        message: String,
        /// The refusal's data.
        data: Option<Value>,
    },
    /// The connection did not complete within the wait timeout, or the
    /// client gave up reconnecting.
    ConnectFailed(String),
    /// Nothing accepted the connection at the URL's address (nothing
    /// listens there, a firewall said no), or the transport failed before
    /// the session opened.
    CannotConnect {
        /// The URL.
        url: String,
        /// Why, in words.
        reason: String,
    },
    /// The URL's host name could not be looked up.
    Lookup {
        /// The name.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// The URL is not `http://host[:port][/namespace][?query]`.
    InvalidUrl(String),
    /// The arguments do not match the requested type.
    Args(ArgsError),
    /// A socket or listener failed.
    Io(std::io::Error),
    /// A TLS configuration could not be loaded (file, PEM, key), or the
    /// TLS handshake with the server failed (certificate not trusted,
    /// wrong host name, client certificate refused): retrying would not
    /// help.
    #[cfg(feature = "tls")]
    Tls(socketio_driver::tls::TlsError),
    /// The cluster's message bus: a URL that cannot be used, or a
    /// broker that did not take what was published in time.
    Bus(String),
    /// Nothing arrived within the given time.
    Timeout,
    /// The client is disconnected and nothing more will arrive.
    Disconnected,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::Server(e) => write!(f, "server: {e}"),
            Error::Client(e) => write!(f, "client: {e}"),
            Error::AckTimeout => f.write_str("acknowledgement timed out"),
            Error::AckDisconnected => f.write_str("disconnected before the acknowledgement"),
            Error::ConnectRefused { nsp, message, .. } => {
                write!(f, "connection to namespace {nsp} refused: {message}")
            }
            Error::ConnectFailed(why) => write!(f, "connection failed: {why}"),
            Error::CannotConnect { url, reason } => write!(f, "cannot connect to {url}: {reason}"),
            Error::Lookup { host, reason } => {
                write!(f, "cannot look up host name {host:?}: {reason}")
            }
            Error::InvalidUrl(url) => write!(f, "invalid url: {url}"),
            Error::Args(e) => e.fmt(f),
            Error::Io(e) => write!(f, "io: {e}"),
            #[cfg(feature = "tls")]
            Error::Tls(e) => write!(f, "tls: {e}"),
            Error::Bus(why) => write!(f, "cluster bus: {why}"),
            Error::Timeout => f.write_str("timed out"),
            Error::Disconnected => f.write_str("disconnected"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Server(e) => Some(e),
            Error::Client(e) => Some(e),
            Error::Args(e) => Some(e),
            Error::Io(e) => Some(e),
            #[cfg(feature = "tls")]
            Error::Tls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ServerError> for Error {
    fn from(e: ServerError) -> Self {
        Error::Server(e)
    }
}
impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Error::Client(e)
    }
}
impl From<ArgsError> for Error {
    fn from(e: ArgsError) -> Self {
        Error::Args(e)
    }
}
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

#[cfg(feature = "tls")]
impl From<socketio_driver::tls::TlsError> for Error {
    fn from(e: socketio_driver::tls::TlsError) -> Self {
        Error::Tls(e)
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
