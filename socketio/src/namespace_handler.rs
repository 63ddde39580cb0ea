//! Class-based handlers (python-socketio's `Namespace` and
//! `ClientNamespace` classes): one value whose methods handle a namespace's
//! connections, events and disconnections.
//!
//! Two forms. [`NamespaceClass`], written by `#[socketio::namespace]`,
//! routes `on_<event>` methods by event name, with extractors and
//! return-value acknowledgements as closures have: the usual choice.
//! [`NamespaceHandler`] hands every event to one `on_event` method with
//! its name, for routing of your own (a `match`, a table, a proxy).
//!
//! The traits' methods return `impl Future + Send`, so an implementation
//! writes plain `async fn`s (the compiler checks that their futures are
//! `Send`) and needs no `async-trait`.
//!
//! ```no_run
//! use socketio::{AckSender, Args, NamespaceHandler, Server, SocketRef, Str};
//!
//! struct Chat;
//!
//! impl NamespaceHandler for Chat {
//!     async fn on_event(&self, socket: SocketRef, event: Str, args: Args, ack: Option<AckSender>) {
//!         match &*event {
//!             "message" => {
//!                 socket.broadcast().emit("message", &args);
//!             }
//!             "ping" => {
//!                 if let Some(ack) = ack {
//!                     let _ = ack.send(&("pong",));
//!                 }
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//!
//! # fn setup(server: &Server) {
//! server.ns_handler("/chat", Chat);
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;

use socketio_core::parser::Args;
use socketio_core::socket::DisconnectReason;
use socketio_core::{Str, Value};

use crate::client::{ClientAck, ClientBuilder, ClientSocket};
use crate::server::{AckSender, ConnectRefusal, Server, SocketRef};

/// The handlers of a server namespace as one value, registered with
/// [`Server::ns_handler`]. Every method has a default: accept every
/// connection, ignore events and disconnections.
pub trait NamespaceHandler: Send + Sync + 'static {
    /// A client asks to join the namespace, with its auth object.
    /// `Ok(())` accepts; `Err` refuses with the refusal's message and data.
    /// Emits made before it returns reach the client after the reply.
    fn on_connect(
        &self,
        socket: SocketRef,
        auth: Option<Value>,
    ) -> impl Future<Output = Result<(), ConnectRefusal>> + Send {
        let _ = (socket, auth);
        async { Ok(()) }
    }

    /// An event arrived (its arguments already checked valid); `ack` is
    /// there when the client asked for an acknowledgement. Route by `event`
    /// to the implementation's methods.
    fn on_event(
        &self,
        socket: SocketRef,
        event: Str,
        args: Args,
        ack: Option<AckSender>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (args, ack);
        tracing::debug!(socket = socket.id(), %event, "no handler");
        async {}
    }

    /// The socket left the namespace: after `on_connect` finished (and
    /// only if it accepted), and in ordered mode after the socket's
    /// `on_event` calls too (see [`crate::ServerBuilder::async_handlers`]).
    fn on_disconnect(
        &self,
        socket: SocketRef,
        reason: DisconnectReason,
    ) -> impl Future<Output = ()> + Send {
        let _ = (socket, reason);
        async {}
    }
}

/// A shared handler handles too: keep an `Arc` to reach its state.
impl<H: NamespaceHandler> NamespaceHandler for Arc<H> {
    fn on_connect(
        &self,
        socket: SocketRef,
        auth: Option<Value>,
    ) -> impl Future<Output = Result<(), ConnectRefusal>> + Send {
        (**self).on_connect(socket, auth)
    }

    fn on_event(
        &self,
        socket: SocketRef,
        event: Str,
        args: Args,
        ack: Option<AckSender>,
    ) -> impl Future<Output = ()> + Send {
        (**self).on_event(socket, event, args, ack)
    }

    fn on_disconnect(
        &self,
        socket: SocketRef,
        reason: DisconnectReason,
    ) -> impl Future<Output = ()> + Send {
        (**self).on_disconnect(socket, reason)
    }
}

/// A class-style namespace (python-socketio's `Namespace` with its
/// `on_my_event` methods): written with `#[socketio::namespace]` on an
/// `impl` block (feature `macros`, on by default), whose `on_<event>`
/// methods handle `<event>` (`on_connect`, `on_disconnect` and `on_any`:
/// the connect, disconnect and catch-all handlers; `#[event("name")]`
/// names an event that is not an identifier). Their parameters after
/// `&self` are extractors ([`crate::extract`]) and their return value is
/// the acknowledgement, as for closures. Registered with
/// [`Server::ns_class`].
///
/// ```no_run
/// # #[cfg(feature = "macros")] mod demo {
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use socketio::{Server, SocketRef};
/// use socketio::extract::Data;
///
/// struct Chat {
///     messages: AtomicUsize,
/// }
///
/// #[socketio::namespace]
/// impl Chat {
///     async fn on_connect(&self, socket: SocketRef) {
///         socket.emit("welcome", &("hello",));
///     }
///
///     async fn on_chat(&self, socket: SocketRef, Data(text): Data<String>) -> usize {
///         socket.broadcast().emit("chat", &(text,));
///         self.messages.fetch_add(1, Ordering::Relaxed) + 1
///     }
///
///     #[event("set-nick")]
///     fn nick(&self, Data(nick): Data<String>) -> String {
///         format!("you are {nick}")
///     }
/// }
///
/// fn setup(server: &Server) {
///     server.ns_class("/chat", Chat { messages: AtomicUsize::new(0) });
/// }
/// # }
/// ```
pub trait NamespaceClass: Send + Sync + 'static {
    /// Register the handlers on `ns` (written by the macro).
    fn register(self: Arc<Self>, ns: &mut crate::Namespace);
}

/// A shared class registers as itself: keep an `Arc` to reach its state.
impl<C: NamespaceClass> NamespaceClass for Arc<C> {
    fn register(self: Arc<Self>, ns: &mut crate::Namespace) {
        C::register(Arc::clone(&*self), ns)
    }
}

impl Server {
    /// Serve namespace `path` (`"*"`: every namespace) with a class-style
    /// namespace ([`NamespaceClass`]); the same rules as [`Server::ns`]
    /// apply.
    pub fn ns_class<C: NamespaceClass>(&self, path: &str, class: C) {
        let class = Arc::new(class);
        self.ns(path, |ns| class.register(ns));
    }

    /// Serve namespace `path` (`"*"`: every namespace) with a
    /// [`NamespaceHandler`]; the same rules as [`Server::ns`] apply.
    pub fn ns_handler<H: NamespaceHandler>(&self, path: &str, handler: H) {
        let handler = Arc::new(handler);
        self.ns(path, |ns| {
            let h = handler.clone();
            ns.on_connect(move |socket, auth| {
                let h = h.clone();
                async move { h.on_connect(socket, auth).await }
            });
            let h = handler.clone();
            ns.on_any(move |socket, event, args, ack| {
                let h = h.clone();
                async move { h.on_event(socket, event, args, ack).await }
            });
            let h = handler;
            ns.on_disconnect(move |socket, reason| {
                let h = h.clone();
                async move { h.on_disconnect(socket, reason).await }
            });
        });
    }
}

/// A client's handlers as one value (python-socketio's
/// `ClientNamespace`, for every namespace the client joins: the
/// [`ClientSocket`] tells which), set with [`ClientBuilder::handler`].
/// Every method has a default that does nothing.
pub trait ClientHandler: Send + Sync + 'static {
    /// A namespace was connected.
    fn on_connect(&self, socket: ClientSocket) -> impl Future<Output = ()> + Send {
        let _ = socket;
        async {}
    }

    /// The server refused a namespace, with its message and data.
    fn on_connect_error(
        &self,
        socket: ClientSocket,
        message: String,
        data: Option<Value>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (socket, message, data);
        async {}
    }

    /// An event arrived (arguments already checked valid); `ack` is there
    /// when the server asked for an acknowledgement.
    fn on_event(
        &self,
        socket: ClientSocket,
        event: Str,
        args: Args,
        ack: Option<ClientAck>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (socket, args, ack);
        tracing::debug!(%event, "no handler");
        async {}
    }

    /// A namespace was disconnected.
    fn on_disconnect(
        &self,
        socket: ClientSocket,
        reason: DisconnectReason,
    ) -> impl Future<Output = ()> + Send {
        let _ = (socket, reason);
        async {}
    }
}

/// A shared handler handles too: keep an `Arc` to reach its state.
impl<H: ClientHandler> ClientHandler for Arc<H> {
    fn on_connect(&self, socket: ClientSocket) -> impl Future<Output = ()> + Send {
        (**self).on_connect(socket)
    }

    fn on_connect_error(
        &self,
        socket: ClientSocket,
        message: String,
        data: Option<Value>,
    ) -> impl Future<Output = ()> + Send {
        (**self).on_connect_error(socket, message, data)
    }

    fn on_event(
        &self,
        socket: ClientSocket,
        event: Str,
        args: Args,
        ack: Option<ClientAck>,
    ) -> impl Future<Output = ()> + Send {
        (**self).on_event(socket, event, args, ack)
    }

    fn on_disconnect(
        &self,
        socket: ClientSocket,
        reason: DisconnectReason,
    ) -> impl Future<Output = ()> + Send {
        (**self).on_disconnect(socket, reason)
    }
}

impl ClientBuilder {
    /// Handle everything with a [`ClientHandler`] (replaces the
    /// `on_connect`, `on_connect_error`, `on_disconnect` and `on_any`
    /// handlers; events with an [`ClientBuilder::on`] handler still go
    /// there).
    pub fn handler<H: ClientHandler>(self, handler: H) -> Self {
        let handler = Arc::new(handler);
        let (h1, h2, h3, h4) = (handler.clone(), handler.clone(), handler.clone(), handler);
        self.on_connect(move |socket| {
            let h = h1.clone();
            async move { h.on_connect(socket).await }
        })
        .on_connect_error(move |socket, message, data| {
            let h = h2.clone();
            async move { h.on_connect_error(socket, message, data).await }
        })
        .on_any(move |socket, event, args, ack| {
            let h = h3.clone();
            async move { h.on_event(socket, event, args, ack).await }
        })
        .on_disconnect(move |socket, reason| {
            let h = h4.clone();
            async move { h.on_disconnect(socket, reason).await }
        })
    }
}
