//! The UI's actions on sockets (when not read-only): `join`, `leave`,
//! `_disconnect` and `emit`, each on the sockets of a namespace,
//! optionally only those in a room (a socket id selects one socket).

use socketio_core::parser::Args;

use crate::server::{BroadcastOperator, Namespace};
use crate::{AckSender, Server, SocketRef};

/// The sockets of `nsp` (in `filter` when given); `None` for a name that
/// is not a namespace.
fn select(server: &Server, nsp: &str, filter: Option<String>) -> Option<BroadcastOperator> {
    if !nsp.starts_with('/') {
        tracing::debug!(%nsp, "admin action on an invalid namespace ignored");
        return None;
    }
    let sockets = server.of(nsp);
    Some(match filter {
        Some(room) if !room.is_empty() => sockets.to(&room),
        _ => sockets,
    })
}

/// The optional string argument at `index` (absent, `null` or not a
/// string: none).
fn optional(args: &Args, index: usize) -> Option<String> {
    args.get::<Option<String>>(index).ok().flatten()
}

/// Register the actions on the admin namespace.
pub(crate) fn register(ns: &mut Namespace) {
    for (action, join) in [("join", true), ("leave", false)] {
        ns.on(
            action,
            move |socket: SocketRef, args: Args, _: Option<AckSender>| async move {
                let (Ok(nsp), Ok(room)) = (args.get::<String>(0), args.get::<String>(1)) else {
                    return;
                };
                tracing::debug!(%nsp, %room, join, "admin: room action");
                if let Some(sockets) = select(socket.server(), &nsp, optional(&args, 2)) {
                    let _ = match join {
                        true => sockets.sockets_join(&room),
                        false => sockets.sockets_leave(&room),
                    };
                }
            },
        );
    }
    ns.on(
        "_disconnect",
        |socket: SocketRef, args: Args, _: Option<AckSender>| async move {
            let Ok(nsp) = args.get::<String>(0) else {
                return;
            };
            let close = args.get::<bool>(1).unwrap_or(false);
            tracing::debug!(%nsp, close, "admin: disconnect");
            if let Some(sockets) = select(socket.server(), &nsp, optional(&args, 2)) {
                let _ = sockets.disconnect_sockets(close);
            }
        },
    );
    ns.on(
        "emit",
        |socket: SocketRef, args: Args, _: Option<AckSender>| async move {
            let (Ok(nsp), Ok(event)) = (args.get::<String>(0), args.get::<String>(2)) else {
                return;
            };
            let Ok(values) = args.to_values() else {
                return;
            };
            tracing::debug!(%nsp, %event, "admin: emit");
            if let Some(sockets) = select(socket.server(), &nsp, optional(&args, 1)) {
                let rest = Args::from_values(values.into_iter().skip(3).collect());
                if let Err(e) = sockets.try_emit(&event, &rest) {
                    tracing::debug!(%event, error = %e, "admin emit refused");
                }
            }
        },
    );
}
