//! Engine.IO protocol version 4: packets, long-polling payloads, the open
//! handshake, and the server and client endpoints.

mod client;
mod compress;
mod config;
mod cors;
mod packet;
mod server;
#[doc(hidden)]
pub mod server_fuzz;
#[cfg(test)]
mod server_tests;

pub use client::*;
pub use config::*;
pub use packet::*;
pub use server::*;
