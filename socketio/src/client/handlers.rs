//! The client's handlers: those of every namespace, and those a namespace
//! has of its own (which win over the former).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use socketio_core::parser::Args;
use socketio_core::socket::DisconnectReason;
use socketio_core::{Str, Value};

use super::{ClientAck, ClientSocket};
use crate::handler::{boxed, Job};

pub(super) type ConnectFn = Arc<dyn Fn(ClientSocket) -> Job + Send + Sync>;
pub(super) type ConnectErrorFn =
    Arc<dyn Fn(ClientSocket, String, Option<Value>) -> Job + Send + Sync>;
pub(super) type EventFn = Arc<dyn Fn(ClientSocket, Args, Option<ClientAck>) -> Job + Send + Sync>;
pub(super) type AnyFn =
    Arc<dyn Fn(ClientSocket, Str, Args, Option<ClientAck>) -> Job + Send + Sync>;
pub(super) type DisconnectFn = Arc<dyn Fn(ClientSocket, DisconnectReason) -> Job + Send + Sync>;
pub(super) type ReconnectFn = Arc<dyn Fn(u32, Duration) -> Job + Send + Sync>;

/// The handlers of one namespace, registered with
/// [`super::ClientBuilder::on_namespace`] (python-socketio's handlers
/// registered with `namespace=`, or a `ClientNamespace` class).
#[derive(Default, Clone)]
pub struct NamespaceHandlers {
    on_connect: Option<ConnectFn>,
    on_connect_error: Option<ConnectErrorFn>,
    events: HashMap<String, EventFn>,
    on_any: Option<AnyFn>,
    on_disconnect: Option<DisconnectFn>,
}

impl NamespaceHandlers {
    /// The namespace was connected.
    pub fn on_connect<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_connect = Some(Arc::new(move |s| boxed(handler(s))));
        self
    }

    /// The namespace could not be connected: the server refused it
    /// (message and data), or the connection under it could not be opened
    /// (the reason, no data), at the first attempt and at every failed
    /// reconnection attempt.
    pub fn on_connect_error<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket, String, Option<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_connect_error = Some(Arc::new(move |s, m, d| boxed(handler(s, m, d))));
        self
    }

    /// The namespace was disconnected, with the reason.
    pub fn on_disconnect<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_disconnect = Some(Arc::new(move |s, r| boxed(handler(s, r))));
        self
    }

    /// Handle event `event`; the [`ClientAck`] is there when the server
    /// asked for an acknowledgement. Arguments are checked valid before
    /// any handler runs: malformed ones close the session with
    /// `parse error` (then the client reconnects per its policy).
    pub fn on<F, Fut>(mut self, event: &str, handler: F) -> Self
    where
        F: Fn(ClientSocket, Args, Option<ClientAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.events.insert(
            event.to_owned(),
            Arc::new(move |s, a, ack| boxed(handler(s, a, ack))),
        );
        self
    }

    /// Handle every event without a handler of its own.
    pub fn on_any<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(ClientSocket, Str, Args, Option<ClientAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_any = Some(Arc::new(move |s, n, a, ack| boxed(handler(s, n, a, ack))));
        self
    }
}

/// What handles one event: a handler of its name, or a catch-all.
pub(super) enum EventHandler<'a> {
    Named(&'a EventFn),
    Any(&'a AnyFn),
}

/// Every handler of a client.
#[derive(Default, Clone)]
pub(super) struct Handlers {
    /// For every namespace without a handler of its own for the case.
    pub(super) every: NamespaceHandlers,
    /// Namespaces' own handlers, in registration order (few: looked up by
    /// a scan, without hashing).
    pub(super) own: Vec<(Str, NamespaceHandlers)>,
    pub(super) on_reconnect_attempt: Option<ReconnectFn>,
}

impl Handlers {
    pub(super) fn namespace_mut(&mut self, nsp: &str) -> &mut NamespaceHandlers {
        let idx = match self.own.iter().position(|(n, _)| **n == *nsp) {
            Some(idx) => idx,
            None => {
                self.own
                    .push((Str::from(nsp), NamespaceHandlers::default()));
                self.own.len() - 1
            }
        };
        &mut self.own[idx].1
    }

    /// The namespaces that have handlers of their own.
    pub(super) fn own_namespaces(&self) -> impl Iterator<Item = &str> {
        self.own.iter().map(|(n, _)| &**n)
    }

    fn own(&self, nsp: &str) -> Option<&NamespaceHandlers> {
        self.own.iter().find(|(n, _)| **n == *nsp).map(|(_, h)| h)
    }

    /// The handler of `get`'s kind for `nsp`: its own, or every
    /// namespace's.
    fn pick<T>(&self, nsp: &str, get: impl Fn(&NamespaceHandlers) -> Option<&T>) -> Option<&T> {
        self.own(nsp).and_then(&get).or_else(|| get(&self.every))
    }

    pub(super) fn connect(&self, nsp: &str) -> Option<&ConnectFn> {
        self.pick(nsp, |h| h.on_connect.as_ref())
    }

    pub(super) fn connect_error(&self, nsp: &str) -> Option<&ConnectErrorFn> {
        self.pick(nsp, |h| h.on_connect_error.as_ref())
    }

    pub(super) fn disconnect(&self, nsp: &str) -> Option<&DisconnectFn> {
        self.pick(nsp, |h| h.on_disconnect.as_ref())
    }

    /// The handler of event `name` in `nsp`: the namespace's own by name,
    /// its own catch-all, then every namespace's by name, then theirs.
    pub(super) fn event(&self, nsp: &str, name: &str) -> Option<EventHandler<'_>> {
        self.own(nsp)
            .and_then(|h| level_handler(h, name))
            .or_else(|| level_handler(&self.every, name))
    }
}

/// One level's handler of event `name`: by name, or its catch-all.
fn level_handler<'a>(h: &'a NamespaceHandlers, name: &str) -> Option<EventHandler<'a>> {
    h.events
        .get(name)
        .map(EventHandler::Named)
        .or(h.on_any.as_ref().map(EventHandler::Any))
}
