//! Why a Socket.IO socket was disconnected, with the reference names.

use std::fmt;

/// Why a socket left a namespace. [`DisconnectReason::as_str`] gives the
/// string socket.io 4.8 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The server disconnected the socket (`io server disconnect`).
    ServerDisconnect,
    /// The client disconnected the socket (`io client disconnect`).
    ClientDisconnect,
    /// The client left the namespace while the connection stays
    /// (`client namespace disconnect`, server side).
    ClientNamespaceDisconnect,
    /// The server closed the namespace for this socket
    /// (`server namespace disconnect`, server side).
    ServerNamespaceDisconnect,
    /// No pong or ping in time (`ping timeout`).
    PingTimeout,
    /// The connection closed (`transport close`).
    TransportClose,
    /// The connection failed (`transport error`).
    TransportError,
    /// The peer sent an invalid packet (`parse error`).
    ParseError,
    /// The server is shutting down (`server shutting down`).
    ServerShuttingDown,
    /// The connection was closed by the server application
    /// (`forced server close`).
    ForcedServerClose,
    /// The Engine.IO session was closed (`forced close`).
    ForcedClose,
    /// The socket's outgoing queue stayed over its byte bound: it could not
    /// keep up (our addition; the reference buffers without bound).
    SlowConsumer,
}

impl DisconnectReason {
    /// The reference string for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ServerDisconnect => "io server disconnect",
            DisconnectReason::ClientDisconnect => "io client disconnect",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::SlowConsumer => "slow consumer",
        }
    }

    /// Whether connection state recovery may restore the socket after this
    /// (transport failures and timeouts, not explicit disconnects).
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::PingTimeout
                | DisconnectReason::TransportClose
                | DisconnectReason::TransportError
                | DisconnectReason::ForcedClose
                | DisconnectReason::SlowConsumer
        )
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
