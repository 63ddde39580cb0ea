//! The user guide, chapter by chapter in the order of python-socketio's
//! user guide, with a compiled example in each.
//!
//! 1. [`server`]: a server, its handlers, emitting, running it.
//! 2. [`client`]: the event-driven client.
//! 3. [`simple_client`]: the pull-style client.
//! 4. [`namespaces`]: several applications on one connection; class-style
//!    namespaces.
//! 5. [`rooms`]: groups of sockets to broadcast to.
//! 6. [`sessions`]: data kept per socket.
//! 7. [`acks`]: acknowledgements, both ways.
//! 8. [`binary`]: bytes in events.
//! 9. [`parsers`]: JSON, MessagePack, CBOR, your own.
//! 10. [`state_recovery`]: a client that comes back gets what it missed.
//! 11. [`several_servers`]: clusters over Redis, RabbitMQ, Kafka, ZeroMQ;
//!     emitting from outside.
//! 12. [`web_integration`]: inside hyper or axum, static files, the Admin
//!     UI.
//! 13. [`deployment`]: reverse proxies with sticky sessions, TLS, limits.
//! 14. [`debugging`]: the logging switch and what each layer says.
//!
//! [`python_names`] maps every python-socketio name to ours.

#[doc = include_str!("server.md")]
pub mod server {}

#[doc = include_str!("client.md")]
pub mod client {}

#[doc = include_str!("simple_client.md")]
pub mod simple_client {}

#[doc = include_str!("namespaces.md")]
pub mod namespaces {}

#[doc = include_str!("rooms.md")]
pub mod rooms {}

#[doc = include_str!("sessions.md")]
pub mod sessions {}

#[doc = include_str!("acks.md")]
pub mod acks {}

#[doc = include_str!("binary.md")]
pub mod binary {}

#[doc = include_str!("parsers.md")]
pub mod parsers {}

#[doc = include_str!("state_recovery.md")]
pub mod state_recovery {}

#[doc = include_str!("several_servers.md")]
pub mod several_servers {}

#[doc = include_str!("web_integration.md")]
pub mod web_integration {}

#[doc = include_str!("deployment.md")]
pub mod deployment {}

#[doc = include_str!("debugging.md")]
pub mod debugging {}

#[doc = include_str!("python_names.md")]
pub mod python_names {}
