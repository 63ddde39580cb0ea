//! The errors of the blocking client.

use std::fmt;
use std::io;

use socketio_core::parser::ArgsError;
use socketio_core::socket::ClientError;
use socketio_core::value::ValueError;
use socketio_core::Value;
use socketio_driver::proxy::{ProxyError, ProxyUrlError};

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not `http://host[:port][/namespace][?query]` (nor
    /// `https://` with the `tls` feature).
    InvalidUrl(String),
    /// An option is out of range or inconsistent.
    InvalidOptions(String),
    /// The host name could not be resolved, or the OS random generator or a
    /// thread could not be set up.
    Io(io::Error),
    /// The server refused a namespace (its CONNECT_ERROR).
    ConnectRefused {
        /// The namespace.
        nsp: String,
        /// The refusal's message.
        message: String,
        /// The refusal's data, if any.
        data: Option<Value>,
    },
    /// The client gave up connecting: reconnection is off or its attempts
    /// are exhausted.
    ConnectFailed,
    /// `connect` did not finish within `wait_timeout`; the last transport
    /// error seen, if any, says why.
    ConnectTimeout {
        /// The last transport error, if any.
        last_error: Option<String>,
    },
    /// A wait passed its deadline (an acknowledgement, a `receive`, a
    /// command the IO thread did not answer in time).
    Timeout,
    /// The namespace disconnected before the acknowledgement came.
    AckDisconnected,
    /// The client is disconnected for good: [`crate::Client::disconnect`]
    /// was called, or the server disconnected every namespace, or the IO
    /// thread ended.
    Disconnected,
    /// The Socket.IO layer refused the call (unknown namespace, full send
    /// buffer, reserved event name, ...).
    Client(ClientError),
    /// Arguments could not be turned into values.
    Value(ValueError),
    /// Received arguments do not fit the requested type.
    Args(ArgsError),
    /// The HTTP proxy did not open the tunnel (refused it with a status,
    /// answered with something else, or not in time); it names the proxy.
    Proxy(ProxyError),
    /// The proxy URL (from [`crate::ClientOptions::proxy`] or the
    /// environment) cannot be used.
    ProxyUrl(ProxyUrlError),
    /// The TLS configuration could not be built, or the handshake failed
    /// (the server's certificate was rejected, or ours).
    #[cfg(feature = "tls")]
    Tls(socketio_driver::tls::TlsError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Error::InvalidUrl(why) => write!(f, "invalid url: {why}"),
            Error::InvalidOptions(why) => write!(f, "invalid options: {why}"),
            Error::Io(e) => write!(f, "io error: {e}"),
            Error::ConnectRefused { nsp, message, .. } => {
                write!(f, "namespace {nsp} refused: {message}")
            }
            Error::ConnectFailed => f.write_str("could not connect (reconnection exhausted)"),
            Error::ConnectTimeout { last_error: None } => f.write_str("connect timed out"),
            Error::ConnectTimeout {
                last_error: Some(e),
            } => write!(f, "connect timed out (last error: {e})"),
            Error::Timeout => f.write_str("timed out"),
            Error::AckDisconnected => {
                f.write_str("disconnected before the acknowledgement arrived")
            }
            Error::Disconnected => f.write_str("client disconnected"),
            Error::Client(e) => write!(f, "{e}"),
            Error::Value(e) => write!(f, "{e}"),
            Error::Args(e) => write!(f, "{e}"),
            Error::Proxy(e) => write!(f, "{e}"),
            Error::ProxyUrl(e) => write!(f, "{e}"),
            #[cfg(feature = "tls")]
            Error::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Client(e) => Some(e),
            Error::Value(e) => Some(e),
            Error::Args(e) => Some(e),
            Error::Proxy(e) => Some(e),
            Error::ProxyUrl(e) => Some(e),
            #[cfg(feature = "tls")]
            Error::Tls(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}
impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        Error::Client(e)
    }
}
impl From<ValueError> for Error {
    fn from(e: ValueError) -> Self {
        Error::Value(e)
    }
}
impl From<ProxyUrlError> for Error {
    fn from(e: ProxyUrlError) -> Self {
        Error::ProxyUrl(e)
    }
}
#[cfg(feature = "tls")]
impl From<socketio_driver::tls::TlsError> for Error {
    fn from(e: socketio_driver::tls::TlsError) -> Self {
        Error::Tls(e)
    }
}
impl From<ArgsError> for Error {
    fn from(e: ArgsError) -> Self {
        Error::Args(e)
    }
}

/// The result of the client's calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
