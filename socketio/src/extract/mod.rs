//! Extractors: a handler takes what it needs, in any order.
//!
//! Every handler of [`crate::Namespace`] is an `async` closure or function
//! whose parameters are *extractors*: types that know how to take
//! themselves from what arrived. A chat handler that wants the socket and
//! one string:
//!
//! ```no_run
//! use socketio::{Server, SocketRef};
//! use socketio::extract::Data;
//!
//! # fn setup(server: &Server) {
//! server.ns("/", |ns| {
//!     ns.on("chat", |socket: SocketRef, Data(text): Data<String>| async move {
//!         socket.broadcast().emit("chat", &(text,));
//!         "received" // the answer, when the client asked for one
//!     });
//! });
//! # }
//! ```
//!
//! | extractor | on | what |
//! |---|---|---|
//! | [`SocketRef`] | all | the socket |
//! | [`Server`] | all | the server |
//! | [`State<T>`] | all | state registered with [`crate::ServerBuilder::with_state`] |
//! | [`Data<T>`] | events | the arguments, deserialized (one argument into `T`, several into a tuple); the event is dropped when they do not fit |
//! | [`TryData<T>`] | events | the same, as a `Result` |
//! | [`Bin`] | events | the binary parts |
//! | [`Event`] (or [`Str`]) | events | the event name, for catch-alls |
//! | [`AckSender`] / `Option<AckSender>` | events | answer later, by hand |
//! | [`Args`] | events | the raw arguments |
//! | [`Auth<T>`] / [`TryAuth<T>`] / `Option<Value>` | connect | the auth payload |
//! | [`DisconnectReason`] | disconnect | why |
//!
//! An extractor that refuses drops the event (logged as a warning; no
//! acknowledgement is sent) or refuses the connection (the client gets the
//! reason as its `connect_error`).
//!
//! # The return value is the answer
//!
//! As in python-socketio, what an event handler returns answers the
//! client's acknowledgement request ([`IntoAck`]): a tuple for several
//! arguments, a single value for one (`String`, numbers, [`Value`],
//! `Vec<T>`, ...; any serializable value as `(value,)` or [`Ack`]), a
//! `Result` whose error is logged and not sent, or `()` for no answer. When
//! the client asked for nothing, nothing is sent; when the handler took the
//! [`AckSender`] to answer later, the return value is not sent either.
//!
//! # Writing an extractor
//!
//! Implement [`FromContext`] for the context it reads:
//! [`EventContext`], [`ConnectContext`] or [`DisconnectContext`].
//! Extractors of the arguments ([`Data`], [`TryData`], [`Bin`], [`Event`])
//! are written over [`EventParts`], a trait any event context can
//! implement: the client's event context reuses them unchanged.
//!
//! [`SocketRef`]: crate::SocketRef
//! [`Server`]: crate::Server
//! [`AckSender`]: crate::AckSender
//! [`Args`]: crate::Args
//! [`Str`]: crate::Str
//! [`Value`]: crate::Value
//! [`DisconnectReason`]: crate::DisconnectReason

mod ack;
mod auth;
mod bin;
mod context;
mod data;
mod event;
mod handler;
mod refused;
mod socket;
mod state;

pub use ack::{Ack, AckSink, IntoAck};
pub use auth::{Auth, TryAuth};
pub use bin::Bin;
pub use context::{ConnectContext, DisconnectContext, EventContext, EventParts, FromContext};
pub use data::{Data, TryData};
pub use event::Event;
pub use handler::{ConnectHandler, ConnectOutcome, DisconnectHandler, EventHandler};
pub use refused::Refused;
pub use state::State;
pub(crate) use state::StateMap;
