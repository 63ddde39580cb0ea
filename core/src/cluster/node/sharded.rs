//! The sharded adapter of `@socket.io/redis-adapter` 8.3
//! (`createShardedAdapter`: Redis 7 `SPUBLISH`/`SSUBSCRIBE`), whose
//! messages are `socket.io-adapter` 2.5's `ClusterAdapter` messages. See
//! the [module docs](super) for who answers what.

use bytes::Bytes;

use super::wire::{self, Fields, Out};
use super::{BroadcastOptions, FetchedSocket, NodePacket};
use crate::cluster::{BusCommand, BusDecodeError, BusLimits, ChannelKind};
use crate::value::Value;
use crate::Str;

/// The adapter's `subscriptionMode`: which rooms get a channel of their
/// own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// `static`: none; everything goes on the namespace channel.
    Static,
    /// `dynamic` (the default): rooms that are not a socket's own id.
    #[default]
    Dynamic,
    /// `dynamic-private`: every room, sockets' own included.
    DynamicPrivate,
}

/// Length of a socket.io socket id: what the publisher takes as a sign
/// that a room is a socket's own room.
const SOCKET_ID_LEN: usize = 20;

/// The sharded adapter's channel names, for one prefix (the
/// `channelPrefix` option, `socket.io` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedChannels {
    prefix: String,
}

impl Default for ShardedChannels {
    fn default() -> Self {
        ShardedChannels::new("socket.io")
    }
}

impl ShardedChannels {
    /// The channels under `prefix`.
    pub fn new(prefix: impl Into<String>) -> ShardedChannels {
        ShardedChannels {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>#<nsp>#`: the namespace channel, also the one whose
    /// subscribers are counted (`PUBSUB SHARDNUMSUB`).
    pub fn namespace(&self, nsp: &str) -> Str {
        Str::from(format!("{}#{nsp}#", self.prefix))
    }

    /// `<prefix>#<nsp>#<room>#`: a room's own channel.
    pub fn room(&self, nsp: &str, room: &str) -> Str {
        Str::from(format!("{}#{nsp}#{room}#", self.prefix))
    }

    /// `<prefix>#<nsp>#<uid>#`: node `uid`'s response channel.
    pub fn response(&self, nsp: &str, uid: &str) -> Str {
        self.room(nsp, uid)
    }

    /// What node `uid` subscribes to for `nsp` from the start: the
    /// namespace channel and its response channel.
    pub fn subscriptions(&self, nsp: &str, uid: &str) -> Vec<BusCommand> {
        [self.namespace(nsp), self.response(nsp, uid)]
            .into_iter()
            .map(|channel| BusCommand::Subscribe {
                channel,
                kind: ChannelKind::Sharded,
            })
            .collect()
    }

    /// Whether a node in `mode` subscribes to the channel of `room` while
    /// it has the room (`is_socket_id`: the room is one of its sockets'
    /// own rooms). Subscribe when the room is created, unsubscribe when it
    /// is deleted.
    pub fn room_has_channel(mode: SubscriptionMode, is_socket_id: bool) -> bool {
        match mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !is_socket_id,
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// The command counting the nodes serving `nsp` (this one included).
    pub fn count_nodes(&self, nsp: &str) -> BusCommand {
        BusCommand::CountSubscribers {
            channel: self.namespace(nsp),
            sharded: true,
        }
    }

    /// Where `message` is published by a node in `mode` (requests and
    /// broadcasts; responses go to [`ShardedChannels::response`] of the
    /// requester). A broadcast without ack to exactly one room goes on the
    /// room's channel, except in `dynamic` mode for a room named like a
    /// socket id (20 characters), which nodes do not subscribe to.
    pub fn publish_channel(&self, mode: SubscriptionMode, message: &ShardedMessage) -> Str {
        if let ShardedData::Broadcast {
            request_id: None,
            opts,
            ..
        } = &message.data
        {
            if let [room] = opts.rooms.as_slice() {
                let dynamic = match mode {
                    SubscriptionMode::Static => false,
                    // The reference counts UTF-16 units; socket ids are
                    // ASCII, and any other room of 20 characters just
                    // goes on the namespace channel, which is also read.
                    SubscriptionMode::Dynamic => room.chars().count() != SOCKET_ID_LEN,
                    SubscriptionMode::DynamicPrivate => true,
                };
                if dynamic {
                    return self.room(&message.nsp, room);
                }
            }
        }
        self.namespace(&message.nsp)
    }
}

const INITIAL_HEARTBEAT: u64 = 1;
const HEARTBEAT: u64 = 2;
const BROADCAST: u64 = 3;
const SOCKETS_JOIN: u64 = 4;
const SOCKETS_LEAVE: u64 = 5;
const DISCONNECT_SOCKETS: u64 = 6;
const FETCH_SOCKETS: u64 = 7;
const FETCH_SOCKETS_RESPONSE: u64 = 8;
const SERVER_SIDE_EMIT: u64 = 9;
const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
const BROADCAST_CLIENT_COUNT: u64 = 11;
const BROADCAST_ACK: u64 = 12;
const ADAPTER_CLOSE: u64 = 13;

/// A `ClusterAdapter` message: `{type, data, uid, nsp}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardedMessage {
    /// The sender's uid.
    pub uid: String,
    /// The namespace.
    pub nsp: String,
    /// The type and its data.
    pub data: ShardedData,
}

/// A `ClusterAdapter` message's type and `data`.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardedData {
    /// 1: a node with heartbeats started (heartbeat variant only).
    InitialHeartbeat,
    /// 2: a node with heartbeats is alive (heartbeat variant only).
    Heartbeat,
    /// 3: a broadcast `{packet, requestId?, opts}`; with a request id its
    /// clients acknowledge.
    Broadcast {
        /// The packet (`{type, data}`: no `nsp` from the reference).
        packet: NodePacket,
        /// Present when acknowledgements are expected.
        request_id: Option<String>,
        /// Target and flags.
        opts: BroadcastOptions,
    },
    /// 4: the selected sockets join `rooms`: `{opts, rooms}`.
    SocketsJoin {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Rooms to join.
        rooms: Vec<String>,
    },
    /// 5: the selected sockets leave `rooms`: `{opts, rooms}`.
    SocketsLeave {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Rooms to leave.
        rooms: Vec<String>,
    },
    /// 6: disconnect the selected sockets: `{opts, close}`.
    DisconnectSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Close the underlying connection too.
        close: bool,
    },
    /// 7: describe the selected sockets: `{opts, requestId}`.
    FetchSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Request id.
        request_id: String,
    },
    /// 8: answer to `FetchSockets`: `{requestId, sockets}`.
    FetchSocketsResponse {
        /// Request id.
        request_id: String,
        /// The responder's matching sockets.
        sockets: Vec<FetchedSocket>,
    },
    /// 9: an event for the other nodes' handlers: `{requestId?, packet}`.
    ServerSideEmit {
        /// Present when the sender waits for acknowledgements.
        request_id: Option<String>,
        /// `[event, args..]`.
        packet: Vec<Value>,
    },
    /// 10: answer to `ServerSideEmit`: `{requestId, packet}`.
    ServerSideEmitResponse {
        /// Request id.
        request_id: String,
        /// The handler's acknowledgement argument.
        packet: Value,
    },
    /// 11: first answer to a broadcast with ack: `{requestId,
    /// clientCount}`.
    BroadcastClientCount {
        /// Request id.
        request_id: String,
        /// How many clients the responder sent the packet to.
        client_count: u64,
    },
    /// 12: one client's acknowledgement: `{requestId, packet}`.
    BroadcastAck {
        /// Request id.
        request_id: String,
        /// The client's (first) acknowledgement argument.
        packet: Value,
    },
    /// 13: a node with heartbeats is leaving (heartbeat variant only).
    AdapterClose,
}

/// The `requestId` entry of a `data` map.
fn request_id_entry(id: &str) -> (&'static str, Out<'_>) {
    ("requestId", Out::Str(id))
}

impl ShardedData {
    pub(super) fn type_number(&self) -> u64 {
        match self {
            ShardedData::InitialHeartbeat => INITIAL_HEARTBEAT,
            ShardedData::Heartbeat => HEARTBEAT,
            ShardedData::Broadcast { .. } => BROADCAST,
            ShardedData::SocketsJoin { .. } => SOCKETS_JOIN,
            ShardedData::SocketsLeave { .. } => SOCKETS_LEAVE,
            ShardedData::DisconnectSockets { .. } => DISCONNECT_SOCKETS,
            ShardedData::FetchSockets { .. } => FETCH_SOCKETS,
            ShardedData::FetchSocketsResponse { .. } => FETCH_SOCKETS_RESPONSE,
            ShardedData::ServerSideEmit { .. } => SERVER_SIDE_EMIT,
            ShardedData::ServerSideEmitResponse { .. } => SERVER_SIDE_EMIT_RESPONSE,
            ShardedData::BroadcastClientCount { .. } => BROADCAST_CLIENT_COUNT,
            ShardedData::BroadcastAck { .. } => BROADCAST_ACK,
            ShardedData::AdapterClose => ADAPTER_CLOSE,
        }
    }

    /// The `data` map, or `None` for the types that have none.
    pub(super) fn out(&self) -> Option<Out<'_>> {
        Some(Out::Map(match self {
            ShardedData::InitialHeartbeat | ShardedData::Heartbeat | ShardedData::AdapterClose => {
                return None
            }
            ShardedData::Broadcast {
                packet,
                request_id,
                opts,
            } => {
                let mut entries = vec![("packet", packet.out())];
                if let Some(id) = request_id {
                    entries.push(request_id_entry(id));
                }
                entries.push(("opts", opts.out()));
                entries
            }
            ShardedData::SocketsJoin { opts, rooms }
            | ShardedData::SocketsLeave { opts, rooms } => {
                vec![("opts", opts.out()), ("rooms", Out::strs(rooms))]
            }
            ShardedData::DisconnectSockets { opts, close } => {
                vec![("opts", opts.out()), ("close", Out::Bool(*close))]
            }
            ShardedData::FetchSockets { opts, request_id } => {
                vec![("opts", opts.out()), request_id_entry(request_id)]
            }
            ShardedData::FetchSocketsResponse {
                request_id,
                sockets,
            } => vec![
                request_id_entry(request_id),
                ("sockets", FetchedSocket::list_out(sockets)),
            ],
            ShardedData::ServerSideEmit { request_id, packet } => {
                let mut entries = Vec::with_capacity(2);
                if let Some(id) = request_id {
                    entries.push(request_id_entry(id));
                }
                entries.push((
                    "packet",
                    Out::Array(packet.iter().map(Out::Value).collect()),
                ));
                entries
            }
            ShardedData::ServerSideEmitResponse { request_id, packet }
            | ShardedData::BroadcastAck { request_id, packet } => {
                let mut entries = vec![request_id_entry(request_id)];
                // Both encoders leave out an `undefined` argument.
                if *packet != Value::Null {
                    entries.push(("packet", Out::Value(packet)));
                }
                entries
            }
            ShardedData::BroadcastClientCount {
                request_id,
                client_count,
            } => vec![
                request_id_entry(request_id),
                ("clientCount", Out::UInt(*client_count)),
            ],
        }))
    }

    pub(super) fn from_fields(
        message_type: u64,
        f: Option<Fields>,
    ) -> Result<ShardedData, BusDecodeError> {
        let no_data = || Fields::new(Value::Object(Vec::new()), "data");
        let mut f = match f {
            Some(f) => f,
            None => no_data()?,
        };
        let opts = |f: &mut Fields| BroadcastOptions::from_fields(f.map("opts", "options")?);
        Ok(match message_type {
            INITIAL_HEARTBEAT => ShardedData::InitialHeartbeat,
            HEARTBEAT => ShardedData::Heartbeat,
            ADAPTER_CLOSE => ShardedData::AdapterClose,
            BROADCAST => ShardedData::Broadcast {
                packet: NodePacket::from_fields(f.map("packet", "packet")?)?,
                request_id: f.opt_string("requestId")?,
                opts: opts(&mut f)?,
            },
            SOCKETS_JOIN => ShardedData::SocketsJoin {
                opts: opts(&mut f)?,
                rooms: f.rooms("rooms")?,
            },
            SOCKETS_LEAVE => ShardedData::SocketsLeave {
                opts: opts(&mut f)?,
                rooms: f.rooms("rooms")?,
            },
            DISCONNECT_SOCKETS => ShardedData::DisconnectSockets {
                opts: opts(&mut f)?,
                close: f.opt_bool("close")?.unwrap_or(false),
            },
            FETCH_SOCKETS => ShardedData::FetchSockets {
                opts: opts(&mut f)?,
                request_id: f.string("requestId")?,
            },
            FETCH_SOCKETS_RESPONSE => ShardedData::FetchSocketsResponse {
                request_id: f.string("requestId")?,
                sockets: FetchedSocket::list_from(f.array("sockets")?)?,
            },
            SERVER_SIDE_EMIT => ShardedData::ServerSideEmit {
                request_id: f.opt_string("requestId")?,
                packet: f.array("packet")?,
            },
            SERVER_SIDE_EMIT_RESPONSE => ShardedData::ServerSideEmitResponse {
                request_id: f.string("requestId")?,
                packet: f.value("packet"),
            },
            BROADCAST_CLIENT_COUNT => ShardedData::BroadcastClientCount {
                request_id: f.string("requestId")?,
                client_count: f.u64("clientCount")?,
            },
            BROADCAST_ACK => ShardedData::BroadcastAck {
                request_id: f.string("requestId")?,
                packet: f.value("packet"),
            },
            other => return Err(wire::error(format!("message type {other} unknown"))),
        })
    }

    /// The request id, for requests and responses that have one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ShardedData::Broadcast { request_id, .. }
            | ShardedData::ServerSideEmit { request_id, .. } => request_id.as_deref(),
            ShardedData::FetchSockets { request_id, .. }
            | ShardedData::FetchSocketsResponse { request_id, .. }
            | ShardedData::ServerSideEmitResponse { request_id, .. }
            | ShardedData::BroadcastClientCount { request_id, .. }
            | ShardedData::BroadcastAck { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    /// Whether this is an answer (goes to the requester's response
    /// channel).
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            ShardedData::FetchSocketsResponse { .. }
                | ShardedData::ServerSideEmitResponse { .. }
                | ShardedData::BroadcastClientCount { .. }
                | ShardedData::BroadcastAck { .. }
        )
    }
}

impl ShardedMessage {
    /// The message bytes: JSON, or MessagePack when `data` holds binary
    /// (as the reference: only the types that can hold binary ever do).
    pub fn encode(&self) -> Bytes {
        wire::encode_json_unless_binary(&self.out())
    }

    /// The message bytes, always MessagePack: what the streams adapter
    /// publishes on pub/sub (its receivers read nothing else).
    pub fn encode_msgpack(&self) -> Bytes {
        wire::encode(&self.out(), wire::Encoding::MsgPack)
    }

    fn out(&self) -> Out<'_> {
        let mut entries = vec![("type", Out::UInt(self.data.type_number()))];
        if let Some(data) = self.data.out() {
            entries.push(("data", data));
        }
        entries.push(("uid", Out::Str(&self.uid)));
        entries.push(("nsp", Out::Str(&self.nsp)));
        Out::Map(entries)
    }

    /// Read a message (JSON or MessagePack).
    pub fn decode(data: &[u8], limits: &BusLimits) -> Result<ShardedMessage, BusDecodeError> {
        let (value, _) = wire::decode(data, limits)?;
        let mut f = Fields::new(value, "message")?;
        let message_type = f.u64("type")?;
        let fields = if f.has("data") {
            Some(f.map("data", "data")?)
        } else {
            None
        };
        let data = ShardedData::from_fields(message_type, fields)?;
        Ok(ShardedMessage {
            uid: f.string("uid")?,
            nsp: f.string("nsp")?,
            data,
        })
    }
}
