//! Engine.IO protocol version 4: packets, long-polling payloads, the open
//! handshake, and the server and client endpoints.

pub mod client;
#[doc(hidden)]
pub mod client_fuzz;
#[cfg(test)]
mod client_tests;
mod compress;
mod config;
mod cors;
mod packet;
#[cfg(test)]
mod pair;
pub mod server;
#[doc(hidden)]
pub mod server_fuzz;

pub use client::*;
#[doc(hidden)]
pub use client_fuzz::fuzz_client;
pub use config::*;
pub use packet::*;
pub use server::*;
