//! Procedural macros of the `socketio` crate (re-exported there with its
//! `macros` feature, on by default): use them as `socketio::namespace`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod namespace;

use proc_macro::TokenStream;

/// Class-style namespaces (python-socketio's `Namespace` class): methods
/// named `on_<event>` of an `impl` block handle the event `<event>`.
///
/// - `on_connect` is the connect handler, `on_disconnect` the disconnect
///   handler, `on_any` the catch-all.
/// - any other `on_<event>` handles `<event>`; `#[event("my-event")]` on
///   the method names an event that is not a Rust identifier.
/// - parameters after `&self` are extractors, as in closures
///   (`socketio::extract`), and the return value is the acknowledgement;
///   methods may be `async` or not.
/// - other methods are left alone.
///
/// The macro implements `socketio::NamespaceClass` for the type; register
/// a value with `Server::ns_class(path, value)`.
///
/// ```ignore
/// struct Chat { greeting: String }
///
/// #[socketio::namespace]
/// impl Chat {
///     async fn on_connect(&self, socket: SocketRef) {
///         socket.emit("welcome", &(&self.greeting,));
///     }
///     async fn on_chat(&self, socket: SocketRef, Data(text): Data<String>) -> &'static str {
///         socket.broadcast().emit("chat", &(text,));
///         "received"
///     }
///     #[event("set-nick")]
///     fn nick(&self, Data(nick): Data<String>) -> String {
///         format!("now {nick}")
///     }
/// }
///
/// server.ns_class("/chat", Chat { greeting: "hi".into() });
/// ```
#[proc_macro_attribute]
pub fn namespace(attr: TokenStream, item: TokenStream) -> TokenStream {
    namespace::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
