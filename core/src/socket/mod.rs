//! Socket.IO protocol version 5: packets, and the server and client state
//! machines that run over Engine.IO sessions.

mod adapter;
mod backoff;
pub mod client;
mod offset;
mod packet;
mod reason;
pub mod server;

pub use adapter::{LocalAdapter, RoomSelector};
pub use backoff::Backoff;
pub use client::{AckFailure, Client, ClientConfig, ClientError, ClientEvent, ClientOutput};
pub use packet::*;
pub use reason::DisconnectReason;
pub use server::{
    AckOutcome, Broadcast, BroadcastAckId, BroadcastAckOutcome, BroadcastAckStarted, ClusterConfig,
    ClusterFormat, ClusterReply, ClusterRequestId, EngineCommand, NamespaceMatcher, RecoveryConfig,
    RemoteSocket, Server, ServerAckId, ServerConfig, ServerError, ServerEvent,
};
