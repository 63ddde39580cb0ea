//! Engine.IO protocol version 4: packets, long-polling payloads, the open
//! handshake, and the server and client endpoints.

mod client;
mod config;
mod packet;
mod server;

pub use client::*;
pub use config::*;
pub use packet::*;
pub use server::*;
