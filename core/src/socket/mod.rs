//! Socket.IO protocol version 5: packets.

mod packet;

pub use packet::*;
