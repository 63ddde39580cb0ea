//! Emitting without `let _ =`: what `emit` does with its errors.
//!
//! `SocketRef::emit`, `BroadcastOperator::emit`, `Server::emit` and the
//! `send` helpers return what was done (whether the packet was queued, or
//! how many sockets were sent it), not a `Result`: in a handler, an emit
//! that fails because the socket just left is routine, and `Result` is
//! `#[must_use]`, so every emit would need `let _ =` or `?` for an error
//! nobody can act on. Failures are logged instead, on target
//! `socketio::emit`: a socket or session gone at `debug` (a race with the
//! client leaving), anything else at `warn` (a reserved event name, a value
//! that cannot be serialized, a cluster bus that refused: bugs or outages
//! worth seeing).
//!
//! The `try_*` twins (`SocketRef::try_emit`, `BroadcastOperator::try_emit`,
//! `Server::try_emit`) return the `Result` for code that does act on it.
//! Calls whose outcome is the point (`call`, `emit_with_ack`, `join`,
//! `AckSender::send`) keep returning `Result`.

use socketio_core::socket::ServerError;

use crate::error::{Error, Result};

/// Log `error` from emitting `event`.
pub(crate) fn log(error: &Error, event: &str) {
    match error {
        Error::Server(
            ServerError::UnknownSocket | ServerError::UnknownSession | ServerError::NotConnected,
        ) => {
            tracing::debug!(target: "socketio::emit", %event, %error, "not emitted: the socket is gone");
        }
        _ => tracing::warn!(target: "socketio::emit", %event, %error, "not emitted"),
    }
}

/// Whether an emit to one socket was queued, logging why not.
pub(crate) fn sent(result: Result<()>, event: &str) -> bool {
    result.map_err(|e| log(&e, event)).is_ok()
}

/// How many sockets a broadcast reached, logging why none.
pub(crate) fn count(result: Result<usize>, event: &str) -> usize {
    result.map_err(|e| log(&e, event)).unwrap_or(0)
}
