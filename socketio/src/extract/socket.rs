//! The socket, the server, the acknowledgement and the raw arguments as
//! extractors.

use socketio_core::parser::Args;
use socketio_core::socket::DisconnectReason;

use super::context::HasSocket;
use super::{DisconnectContext, EventContext, EventParts, FromContext, Refused};
use crate::server::{AckSender, Server, SocketRef};

impl<Cx: HasSocket> FromContext<Cx> for SocketRef {
    fn from_context(cx: &mut Cx) -> Result<Self, Refused> {
        Ok(cx.socket_ref().clone())
    }
}

impl<Cx: HasSocket> FromContext<Cx> for Server {
    fn from_context(cx: &mut Cx) -> Result<Self, Refused> {
        Ok(cx.socket_ref().server().clone())
    }
}

/// Takes the acknowledgement: the handler answers by hand (later, from a
/// task, ...) and its return value is not sent. When the client asked for
/// none, sending on it does nothing.
impl FromContext<EventContext> for AckSender {
    fn from_context(cx: &mut EventContext) -> Result<Self, Refused> {
        let id = cx.ack.take();
        Ok(AckSender::new(cx.socket.clone(), id))
    }
}

/// Takes the acknowledgement when the client asked for one.
impl FromContext<EventContext> for Option<AckSender> {
    fn from_context(cx: &mut EventContext) -> Result<Self, Refused> {
        Ok(cx.take_ack())
    }
}

/// The raw arguments: taken when no later parameter reads them, a copy
/// otherwise (received text and buffers shared, not copied).
impl<Cx: EventParts> FromContext<Cx> for Args {
    const READS_ARGS: bool = true;

    fn from_context(cx: &mut Cx) -> Result<Self, Refused> {
        Ok(cx.event_args().clone())
    }

    fn from_context_owned(cx: &mut Cx) -> Result<Self, Refused> {
        Ok(cx.take_event_args())
    }
}

impl FromContext<DisconnectContext> for DisconnectReason {
    fn from_context(cx: &mut DisconnectContext) -> Result<Self, Refused> {
        Ok(cx.reason)
    }
}
