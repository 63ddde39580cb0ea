//! Engine.IO protocol version 4: packets, long-polling payloads and the open
//! handshake.

mod packet;

pub use packet::*;
