//! The server's observer: told what happens on the server, for
//! instrumentation (the admin UI, feature `admin`). With none installed,
//! each hook costs one atomic load and nothing is computed for it.

use socketio_core::parser::Args;
use socketio_core::socket::DisconnectReason;

use crate::server::SocketRef;

/// What a [`crate::Server`] reports to its observer. Hooks run outside
/// the endpoint's lock, so they may call the server (even emit); they run
/// on the task that did the thing, so they must be quick.
pub(crate) trait ServerObserver: Send + Sync + 'static {
    /// A socket was accepted into its namespace.
    fn socket_connected(&self, socket: &SocketRef);

    /// A socket left its namespace.
    fn socket_disconnected(&self, nsp: &str, socket: &str, reason: &DisconnectReason);

    /// A client emitted an event (arguments already checked valid).
    fn event_received(&self, socket: &SocketRef, event: &str, args: &Args);

    /// An event was emitted to sockets of `nsp`. The recipients and the
    /// arguments are computed only when asked for.
    fn event_sent(
        &self,
        nsp: &str,
        recipients: &dyn Fn() -> Vec<String>,
        event: &str,
        args: &dyn Fn() -> Option<Args>,
    );

    /// Sockets of `nsp` joined (`joined`) or left `room`.
    fn rooms_changed(&self, nsp: &str, sockets: &[String], room: &str, joined: bool);
}
