//! What a handler's extractors read from: one context per kind of handler.

use socketio_core::parser::Args;
use socketio_core::socket::DisconnectReason;
use socketio_core::{Str, Value};

use super::Refused;
use crate::server::{AckSender, SocketRef};

/// A type a handler can take as a parameter, read from the context `Cx`
/// of the handler's call ([`EventContext`], [`ConnectContext`],
/// [`DisconnectContext`]).
///
/// Extraction is synchronous and runs before the handler is called, in
/// the order of the parameters; an extractor may take something out of
/// the context (as [`AckSender`] does), leaving it to no later one.
pub trait FromContext<Cx>: Sized {
    /// Take `Self` from `cx`, or refuse: the event is dropped (or the
    /// connection refused) with the reason.
    fn from_context(cx: &mut Cx) -> Result<Self, Refused>;

    /// Whether the extractor reads the event's arguments: an earlier
    /// parameter must then leave them in place.
    #[doc(hidden)]
    const READS_ARGS: bool = false;

    /// [`FromContext::from_context`] when no later parameter reads the
    /// arguments: [`crate::Args`] takes them instead of a copy.
    #[doc(hidden)]
    fn from_context_owned(cx: &mut Cx) -> Result<Self, Refused> {
        Self::from_context(cx)
    }
}

/// The name and arguments of an event: what the argument extractors
/// ([`super::Data`], [`super::TryData`], [`super::Bin`], [`super::Event`])
/// need. Implemented by the server's [`EventContext`]; a client's event
/// context implements it too and reuses those extractors as they are.
pub trait EventParts {
    /// The event name.
    fn event_name(&self) -> &Str;
    /// The arguments (already checked valid).
    fn event_args(&self) -> &Args;
    /// The arguments, taken when nothing else will read them (a copy by
    /// default).
    fn take_event_args(&mut self) -> Args {
        self.event_args().clone()
    }
}

/// The context of an event handler's call.
#[derive(Debug)]
pub struct EventContext {
    pub(crate) socket: SocketRef,
    pub(crate) event: Str,
    pub(crate) args: Args,
    /// The acknowledgement id, until an extractor takes it.
    pub(crate) ack: Option<u64>,
}

impl EventContext {
    /// The socket the event came from.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// Whether the client asked for an acknowledgement that nobody took
    /// yet (an [`AckSender`] extractor takes it).
    pub fn ack_requested(&self) -> bool {
        self.ack.is_some()
    }

    /// Take the acknowledgement, when the client asked for one: the
    /// handler's return value is then not sent.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        let id = self.ack.take()?;
        Some(AckSender::new(self.socket.clone(), Some(id)))
    }

    /// What answers with the handler's return value: the acknowledgement,
    /// unless nobody asked for it or an extractor took it.
    pub(crate) fn into_reply(self) -> Option<AckSender> {
        let id = self.ack?;
        Some(AckSender::new(self.socket, Some(id)))
    }
}

impl EventParts for EventContext {
    fn event_name(&self) -> &Str {
        &self.event
    }
    fn event_args(&self) -> &Args {
        &self.args
    }
    fn take_event_args(&mut self) -> Args {
        std::mem::replace(&mut self.args, Args::empty())
    }
}

/// The context of a connect handler's call.
#[derive(Debug)]
pub struct ConnectContext {
    pub(crate) socket: SocketRef,
    pub(crate) auth: Option<Value>,
}

impl ConnectContext {
    /// The socket asking to join.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// The auth payload the client sent, if any.
    pub fn auth(&self) -> Option<&Value> {
        self.auth.as_ref()
    }
}

/// The context of a disconnect handler's call.
#[derive(Debug)]
pub struct DisconnectContext {
    pub(crate) socket: SocketRef,
    pub(crate) reason: DisconnectReason,
}

impl DisconnectContext {
    /// The socket that left.
    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }

    /// Why it left.
    pub fn reason(&self) -> &DisconnectReason {
        &self.reason
    }
}

/// The socket of every server context.
pub(crate) trait HasSocket {
    fn socket_ref(&self) -> &SocketRef;
}

impl HasSocket for EventContext {
    fn socket_ref(&self) -> &SocketRef {
        &self.socket
    }
}
impl HasSocket for ConnectContext {
    fn socket_ref(&self) -> &SocketRef {
        &self.socket
    }
}
impl HasSocket for DisconnectContext {
    fn socket_ref(&self) -> &SocketRef {
        &self.socket
    }
}
