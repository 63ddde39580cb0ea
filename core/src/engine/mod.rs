//! Engine.IO protocol version 4: packets, long-polling payloads, the open
//! handshake, and the server and client endpoints.

pub mod client;
mod compress;
mod config;
mod cors;
mod packet;
#[cfg(test)]
mod pair;
pub mod server;

pub use client::*;
pub use config::*;
pub use packet::*;
pub use server::*;
