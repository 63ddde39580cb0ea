//! Socket.IO protocol version 5: packets, and the server and client state
//! machines that run over Engine.IO sessions.

mod packet;
mod reason;

pub use packet::*;
pub use reason::DisconnectReason;
mod backoff;
pub use backoff::Backoff;
mod client;
pub use client::{AckFailure, Client, ClientConfig, ClientError, ClientEvent, ClientOutput};
