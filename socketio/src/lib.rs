//! `socketio`: a Socket.IO v5 server and client for async Rust,
//! wire-compatible with socket.io 4.x and python-socketio 5.x.
//!
//! The protocol lives in the sans-IO [`socketio_core`]; this crate runs it
//! on tokio (feature `tokio`, the default), async-std (feature
//! `async-std`; discontinued upstream, kept as a tiny adapter) or smol
//! (feature `smol`). With several enabled, pick one at run time with
//! [`RuntimeKind`].
//!
//! New here? The [`guide`] walks through it chapter by chapter, as
//! python-socketio's user guide does, and maps every python-socketio name
//! to ours ([`guide::python_names`]); `socketio::logging` (feature
//! `logging`, on by default) is the one-line switch
//! for logs.
//!
//! # TLS
//! With the `tls` feature (off by default: it builds rustls with the
//! `ring` provider, which needs a C compiler), clients connect to
//! `https://` and `wss://` URLs and servers listen with
//! [`Server::listen_tls`]. It is implemented once over `futures-io`
//! (`futures-rustls`), so it works the same on every runtime. Clients
//! trust Mozilla's bundled roots by default ([`TlsRoots`] selects the
//! system store instead); [`TlsClientConfig`] adds private CA
//! certificates, a client certificate, or — for tests only —
//! [`TlsClientConfig::danger_accept_invalid_certs`]. The host name of the
//! URL is sent as SNI and checked against the certificate; a rejected
//! certificate fails [`ClientBuilder::connect`] at once with
//! [`Error::Tls`].
//!
//! ```no_run
//! # #[cfg(feature = "tls")]
//! # fn main() -> socketio::Result<()> {
//! use socketio::{Client, Server, TlsClientConfig, TlsServerConfig};
//!
//! socketio::RuntimeKind::default().block_on(async {
//!     let server = Server::builder().build();
//!     let tls = TlsServerConfig::from_pem_files("cert.pem", "key.pem");
//!     let addr = server.listen_tls("127.0.0.1:3443".parse().unwrap(), &tls).await?;
//!
//!     let client = Client::builder(&format!("https://localhost:{}", addr.port()))
//!         .tls(TlsClientConfig::new().add_root_certificate_pem_file("ca.pem"))
//!         .connect()
//!         .await?;
//!     client.emit("hello", &("world",))?;
//!     Ok(())
//! })
//! # }
//! # #[cfg(not(feature = "tls"))]
//! # fn main() {}
//! ```
//!
//! # Admin UI
//! With the `admin` feature, [`Server::instrument`] serves the
//! [Socket.IO Admin UI](https://socket.io/docs/v4/admin-ui/) on an admin
//! namespace (python-socketio's `instrument()`): see [`admin`].
//!
//! # Static files
//! [`ServerBuilder::static_files`] serves files next to the Socket.IO path,
//! with python-engineio's `static_files` rules ([`StaticFiles`]): the
//! Socket.IO path first, then the files, then 404.
//!
//! # In hyper and axum
//! With the `tower` feature, [`SocketIoLayer`] mounts the server in a
//! hyper 1.x or axum 0.8 application, as python-socketio's `ASGIApp`
//! mounts in an ASGI one: the Socket.IO path, then static files, then the
//! wrapped service (see [`web::tower`]). hyper and axum run on tokio; our
//! own listener serves on every runtime.
//!
//! # Example
//! Handlers take what they need ([`extract`]) and answer with their return
//! value:
//! ```no_run
//! use socketio::{Server, SocketRef};
//! use socketio::extract::Data;
//!
//! # fn main() {
//! socketio::RuntimeKind::default().block_on(async {
//!     let server = Server::builder().build();
//!     server.ns("/", |ns| {
//!         ns.on("echo", |socket: SocketRef, Data(text): Data<String>| async move {
//!             socket.emit("echo-back", &(&text,));
//!             text // the acknowledgement, when the client asked for one
//!         });
//!     });
//!     let addr = server.listen("127.0.0.1:3000".parse().unwrap()).await.unwrap();
//!     println!("listening on {addr}");
//!     std::future::pending::<()>().await;
//! });
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "admin")]
pub mod admin;
mod client;
mod cluster;
pub mod emit_errors;
mod error;
pub mod extract;
pub mod guide;
mod handler;
#[cfg(feature = "logging")]
pub mod logging;
mod namespace_handler;
mod observer;
mod runtime;
mod server;
mod simple;
pub mod web;

#[cfg(feature = "admin")]
pub use admin::{AdminAuth, AdminMode, AdminOptions, AlreadyInstrumented};
pub use client::{Client, ClientAck, ClientBuilder, ClientSocket, NamespaceHandlers};
pub use cluster::{
    Adapter, AmqpAdapter, Bus, EmitOperator, Emitter, KafkaAdapter, RedisAdapter, ZmqAdapter,
};
pub use error::{Error, Result};
pub use namespace_handler::{ClientHandler, NamespaceClass, NamespaceHandler};
pub use runtime::{current as current_runtime, set_current as set_current_runtime};
pub use runtime::{sleep, spawn, JoinHandle, Runtime, RuntimeKind};
pub use server::{
    AckResponses, AckSender, BroadcastOperator, ConnectRefusal, Namespace, RequestInfo, Server,
    ServerBuilder, ServerSideAck, SocketRef,
};
pub use simple::SimpleClient;
pub use socketio_core::socket::RemoteSocket;
/// Class-style namespaces: `on_<event>` methods of an `impl` block as
/// handlers (see [`NamespaceClass`]).
#[cfg(feature = "macros")]
pub use socketio_macros::namespace;
#[cfg(feature = "tower")]
pub use web::tower::{NotFound, SocketIoBody, SocketIoLayer, SocketIoService};
pub use web::StaticFiles;

/// The sans-IO protocol core, for options not surfaced by the builders.
pub use socketio_core as core;
pub use socketio_core::engine::{ClientTransports, CorsOrigins, Transport};
pub use socketio_core::parser::{
    AnyParser, Args, ArgsError, CborParser, JsonParser, MsgPackParser,
};
pub use socketio_core::socket::DisconnectReason;
pub use socketio_core::{Binary, Bytes, Str, Value};
/// The runtime-neutral driver, for custom runtimes and streams.
pub use socketio_driver as driver;
/// The client's HTTP proxy setting ([`ClientBuilder::proxy`]).
pub use socketio_driver::proxy::Proxy;
/// TLS configuration (feature `tls`); [`rustls`] for configurations built
/// by hand.
#[cfg(feature = "tls")]
pub use socketio_driver::tls::{
    rustls, TlsClientConfig, TlsError, TlsListener, TlsRoots, TlsServerConfig,
};
