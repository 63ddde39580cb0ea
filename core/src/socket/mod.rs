//! Socket.IO protocol version 5: packets, and the server and client state
//! machines that run over Engine.IO sessions.

mod adapter;
mod backoff;
pub mod client;
mod offset;
mod reason;
pub mod server;

pub use adapter::{LocalAdapter, RoomSelector};
pub use backoff::Backoff;
pub use client::{AckFailure, Client, ClientConfig, ClientError, ClientEvent, ClientOutput};
// Packets are what the parser produces: they live in `parser::packet`, so
// the layers depend one way (socket -> parser). The paths under `socket`
// stay for callers that name them there.
use crate::parser::packet;
pub use packet::{Packet, PacketData, PacketType, RESERVED_EVENTS};
pub use reason::DisconnectReason;
pub use server::{
    AckOutcome, Broadcast, BroadcastAckId, BroadcastAckOutcome, BroadcastAckStarted, ClusterConfig,
    ClusterFormat, ClusterReply, ClusterRequestId, EngineCommand, NamespaceMatcher, RecoveryConfig,
    RemoteSocket, Server, ServerAckId, ServerConfig, ServerError, ServerEvent,
};
