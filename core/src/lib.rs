//! `socketio-core`: the sans-IO protocol engine of a Socket.IO v5 / Engine.IO v4
//! implementation, for servers and clients.
//!
//! Nothing in this crate performs IO, spawns threads, reads a clock or draws OS
//! randomness. Bytes, HTTP requests and the current `Instant` come in as explicit
//! inputs; bytes to send, application events and the next deadline come out.
//!
//! Layers, bottom up:
//! - [`engine`]: Engine.IO v4 packets, long-polling payloads and the handshake.
//! - [`http`]: HTTP/1.1 for the long-polling and WebSocket-upgrade
//!   transports: parsed requests and responses, and a sans-IO connection codec.
//! - [`ws`]: RFC 6455 WebSocket: handshake helpers, frames, a connection.
//! - [`value`]: a dynamic value model that carries binary (`Bytes`) natively.
//! - [`parser`]: Socket.IO v5 packets and the three wire formats (JSON with
//!   binary attachments, MessagePack, CBOR) behind one [`parser::Parser`]
//!   trait.
//! - [`cluster`]: what crosses the message bus when several servers act as
//!   one (python-socketio and Node adapter formats, the Redis protocol).
//! - [`socket`]: the Socket.IO v5 server and client state machines, above
//!   the parser (which knows nothing of them).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
pub mod endpoint;
pub mod engine;
// Fuzzing entry points and their deterministic generator: for the fuzz
// crate and the corpus replay (feature `fuzzing`) and the unit tests, never
// in an ordinary build (they read the clock).
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod memory;
pub mod parser;
pub mod socket;
pub mod timer;
pub mod value;
pub mod ws;

pub use bytes::Bytes;
pub use bytestring::ByteString as Str;
pub use value::{Binary, Value};
