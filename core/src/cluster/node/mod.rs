//! The bus formats of the Node adapters: `@socket.io/redis-adapter` 8.3
//! (the classic [`RedisAdapter`](classic) and the sharded adapter of
//! `createShardedAdapter`, built on `socket.io-adapter` 2.5's
//! `ClusterAdapter`), `@socket.io/redis-emitter` 5.1 and
//! `@socket.io/redis-streams-adapter` 0.3 ([`streams`]: one Redis stream
//! plus pub/sub, with connection state recovery across nodes). Encoding
//! and decoding only; what a node does with a message is the server's
//! (the [`streams`] module docs end with the seam design for it).
//!
//! Each message type has `encode(&self) -> Bytes` and
//! `decode(&[u8], &BusLimits) -> Result<Self, BusDecodeError>`. Event data
//! is a [`Value`]; binary is [`Value::Binary`], written as MessagePack
//! `bin` as notepack writes a `Buffer`. JavaScript `undefined` (notepack's
//! fixext 1 type 0, `d4 00 00`) and `null` read as absent. Decoding reads
//! JSON when the message starts with `{` and MessagePack otherwise, for
//! every message type, as the references do.
//!
//! # Classic adapter ([`classic`])
//!
//! Channels ([`ClassicChannels`], prefix `socket.io` by default, the
//! adapter's `key` option), per namespace `nsp` (which starts with `/`):
//! - broadcasts: `<prefix>#<nsp>#`, or `<prefix>#<nsp>#<room>#` when the
//!   broadcast targets exactly one room;
//! - requests: `<prefix>-request#<nsp>#`;
//! - responses: `<prefix>-response#<nsp>#`, or
//!   `<prefix>-response#<nsp>#<uid>#` (the requester's uid) when the
//!   responder has `publishOnSpecificResponseChannel` set.
//!
//! A node subscribes with `PSUBSCRIBE <prefix>#<nsp>#*` (all broadcasts,
//! any room) and a plain `SUBSCRIBE` of the request channel, the response
//! channel and its own specific response channel
//! ([`ClassicChannels::subscriptions`]). A broadcast for a room the node
//! does not have can be skipped unread. It counts nodes with
//! `PUBSUB NUMSUB <request channel>` (itself included), once per request.
//! A node's uid is 6 random characters (uid2); request ids too.
//!
//! Messages (`→` request channel, `←` response channel):
//! - [`ClassicBroadcast`] `[uid, packet, opts]`, MessagePack, on the
//!   broadcast channel. A node drops its own (same uid) and those whose
//!   `packet.nsp` is another namespace. Fire and forget.
//! - `→ ALL_ROOMS` `{uid, requestId, type: 1}` (JSON). The requester
//!   counts nodes (N) and waits for N - 1 responses `← {requestId, rooms}`
//!   (JSON), merging them with its own rooms, until its timeout (5 s by
//!   default; a timeout fails the call). A responder ignores a request
//!   whose id it has pending itself (its own request, echoed back).
//! - `→ REMOTE_FETCH` `{uid, requestId, type: 5, opts: {rooms, except}}`
//!   (JSON): N - 1 responses `← {requestId, sockets: [FetchedSocket..]}`
//!   (JSON), added to the local sockets. Same self rule.
//! - `→ SERVER_SIDE_EMIT` `{uid, type: 6, data: [event, args..]}` (JSON),
//!   no answer; with an acknowledgement `{uid, requestId, type: 6, data}`:
//!   N - 1 responses `← {type: 6, requestId, data: <the one ack
//!   argument>}`, **always on the shared response channel** (never the
//!   specific one), the first call of each receiver's callback only; on
//!   timeout the ack gets an error and the responses so far. Receivers
//!   skip a request with their own uid.
//! - `→ BROADCAST` `{uid, requestId, type: 7, packet, opts: {rooms,
//!   except, flags}}`, **MessagePack**: a broadcast whose clients must
//!   acknowledge. Every other node answers `← {type: 8, requestId,
//!   clientCount}` (JSON) once, then `← {type: 9, requestId, packet: <the
//!   client's first ack argument>}` (**MessagePack**) per client ack. The
//!   requester (socket.io's `BroadcastOperator`) waits until it has one
//!   client count from each of the N nodes (its own local count included)
//!   and as many acks as the counts sum to, or `flags.timeout`. The
//!   requester ignores its own request (it knows the request id).
//! - `→ REMOTE_JOIN` / `REMOTE_LEAVE` `{uid, type: 2|3, opts: {rooms,
//!   except}, rooms: [..]}` and `REMOTE_DISCONNECT` `{uid, type: 4, opts,
//!   close}` (JSON): no answer. **The requester does not apply them
//!   locally before publishing: it applies them when its own request comes
//!   back on the request channel**, like every other node (no uid check).
//! - Legacy (adapters before 7.0 send them; 8.3 still answers):
//!   `SOCKETS` `{requestId, rooms}` type 0, answered `← {requestId,
//!   sockets: [sid..]}`; `REMOTE_JOIN`/`REMOTE_LEAVE` `{requestId, sid,
//!   room}` and `REMOTE_DISCONNECT` `{requestId, sid, close}` without
//!   `opts`, answered `← {requestId}` only by the node that has `sid`.
//!
//! Responses carry no type except 6, 8 and 9: [`ClassicResponse::decode`]
//! tells them apart by their keys (see there); a requester matches them by
//! `requestId`. With the shared response channel every node sees every
//! response; ids it does not know are dropped.
//!
//! # Emitter (`@socket.io/redis-emitter` 5.1)
//!
//! It writes the classic formats with the uid [`EMITTER_UID`]: broadcasts
//! `["emitter", {type: 2, data, nsp}, {rooms, flags, except}]` (its opts
//! keys in that order; [`ClassicBroadcast::encode`] writes the adapter's
//! order, which receivers do not care about), and requests without a uid:
//! `{type: 2|3, opts: {rooms, except}, rooms}` (socketsJoin/Leave),
//! `{type: 4, opts, close}` (disconnectSockets), and `{uid: "emitter",
//! type: 6, data}` (serverSideEmit, never with an ack). It never waits for
//! anything.
//!
//! # Sharded adapter ([`sharded`])
//!
//! Redis 7 sharded pub/sub: `SSUBSCRIBE`, `SPUBLISH`, and `PUBSUB
//! SHARDNUMSUB <prefix>#<nsp>#` to count nodes (itself included). Channels
//! ([`ShardedChannels`], prefix `socket.io` by default, the
//! `channelPrefix` option): the namespace channel `<prefix>#<nsp>#`, each
//! node's response channel `<prefix>#<nsp>#<uid>#` (uid: 16 hex digits),
//! and, with `subscriptionMode` `dynamic` (the default) or
//! `dynamic-private`, one channel per room `<prefix>#<nsp>#<room>#`.
//! A node subscribes to the namespace channel and its response channel;
//! in `dynamic` mode it also subscribes to a room's channel when the room
//! is created (rooms that are not a socket's own id) and unsubscribes when
//! it is deleted; `dynamic-private` does so for every room; `static`
//! never. A broadcast without ack to exactly one room goes on that room's
//! channel (in `dynamic` mode only when the room name is not 20
//! characters long, the length of a socket id); everything else goes on
//! the namespace channel, and responses on the requester's response
//! channel.
//!
//! Every message is [`ShardedMessage`] `{type, data, uid, nsp}`: JSON,
//! or MessagePack when `data` holds binary. Receivers drop messages with
//! their own uid or another namespace. Requests and answers:
//! - `BROADCAST` (3) `{packet, opts}`: no answer. With `requestId`
//!   (`{packet, requestId, opts}`): each other node answers
//!   `BROADCAST_CLIENT_COUNT` (11) `{requestId, clientCount}` once and
//!   `BROADCAST_ACK` (12) `{requestId, packet}` per client ack; the
//!   requester waits for counts from all N nodes (its own included) and
//!   the acks they announce, or `flags.timeout`.
//! - `SOCKETS_JOIN` (4) / `SOCKETS_LEAVE` (5) `{opts, rooms}`,
//!   `DISCONNECT_SOCKETS` (6) `{opts, close}`: no answer; here the
//!   requester applies them locally itself.
//! - `FETCH_SOCKETS` (7) `{opts, requestId}`: N - 1 answers
//!   `FETCH_SOCKETS_RESPONSE` (8) `{requestId, sockets}`; timeout
//!   `flags.timeout` or 5 s, which fails the call.
//! - `SERVER_SIDE_EMIT` (9) `{packet: [event, args..]}`, no answer; with
//!   `requestId` (`{requestId, packet}`): N - 1 answers
//!   `SERVER_SIDE_EMIT_RESPONSE` (10) `{requestId, packet: <ack
//!   argument>}` within 5 s.
//! - `INITIAL_HEARTBEAT` (1), `HEARTBEAT` (2), `ADAPTER_CLOSE` (13): the
//!   heartbeat variant of `ClusterAdapter` (not used over Redis pub/sub),
//!   decoded for completeness.
//!
//! Unlike the classic adapter, the broadcast `packet` here is `{type,
//! data}` without `nsp`.
//!
//! # Streams adapter ([`streams`])
//!
//! The same `ClusterAdapter` messages ([`ShardedMessage`]), split in two:
//! broadcasts without ack, joins, leaves and disconnections are entries
//! of a Redis stream (`XADD` capped with `MAXLEN ~`, read by every node
//! with `XREAD BLOCK`; fields `uid`, `nsp`, `type`, `data` with `data`
//! JSON text, or base64 MessagePack when it holds binary), whose entry ids
//! are the offsets clients recover from; requests that are answered
//! (broadcasts with ack, fetches, server-side emits) and all answers are
//! MessagePack on pub/sub (`<prefix>#<nsp>#` and `<prefix>#<nsp>#<uid>#`).
//! Nodes are counted with `PUBSUB NUMSUB`. Sessions are base64 MessagePack
//! under `sio:session:<pid>` with a TTL, taken with `GET`+`DEL` in a
//! transaction on restore.
//!
//! [`Value`]: crate::Value
//! [`Value::Binary`]: crate::Value::Binary

pub mod classic;
pub mod sharded;
pub mod streams;
mod wire;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod golden_streams;
#[cfg(test)]
mod streams_tests;
#[cfg(test)]
mod tests;

pub use classic::{
    ClassicBroadcast, ClassicChannel, ClassicChannels, ClassicRequest, ClassicResponse,
};
pub use sharded::{ShardedChannels, ShardedData, ShardedMessage, SubscriptionMode};
pub use streams::{StreamsConfig, StreamsSession};

use wire::{Fields, Out};

use super::BusDecodeError;
use crate::value::Value;

/// The uid `@socket.io/redis-emitter` publishes with.
pub const EMITTER_UID: &str = "emitter";

/// A Socket.IO packet as the adapters carry it: `{type, data, nsp?, id?}`
/// (socket.io's internal packet object before it is encoded for a client).
#[derive(Debug, Clone, PartialEq)]
pub struct NodePacket {
    /// The Socket.IO packet type (2 for an event).
    pub packet_type: u8,
    /// The payload: for an event, `[name, args..]`.
    pub data: Value,
    /// The namespace: the classic adapter and the emitter write it, the
    /// sharded adapter does not (the message carries it). Absent reads as
    /// `/` for the classic adapter.
    pub nsp: Option<String>,
    /// The ack id, if any (the references never send one).
    pub id: Option<u64>,
}

impl NodePacket {
    /// An event packet: `data` is `[name, args..]`.
    pub fn event(data: Vec<Value>, nsp: Option<String>) -> NodePacket {
        NodePacket {
            packet_type: 2,
            data: Value::Array(data),
            nsp,
            id: None,
        }
    }

    fn out(&self) -> Out<'_> {
        let mut entries = vec![
            ("type", Out::UInt(self.packet_type.into())),
            ("data", Out::Value(&self.data)),
        ];
        if let Some(nsp) = &self.nsp {
            entries.push(("nsp", Out::Str(nsp)));
        }
        if let Some(id) = self.id {
            entries.push(("id", Out::UInt(id)));
        }
        Out::Map(entries)
    }

    fn from_fields(mut f: Fields) -> Result<NodePacket, BusDecodeError> {
        let packet_type = f.u64("type")?;
        let packet_type = u8::try_from(packet_type)
            .ok()
            .filter(|t| *t <= 6)
            .ok_or_else(|| wire::error(format!("packet type {packet_type} unknown")))?;
        Ok(NodePacket {
            packet_type,
            data: f.value("data"),
            nsp: f.opt_string("nsp")?,
            id: f.opt_u64("id")?,
        })
    }
}

/// Which sockets a request is about: those in any of `rooms` (all sockets
/// when empty) and in none of `except`. The classic adapter's `opts` of
/// its join, leave, disconnect and fetch requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomSelection {
    /// Rooms to include; empty means every socket of the namespace.
    pub rooms: Vec<String>,
    /// Rooms whose sockets are left out.
    pub except: Vec<String>,
}

impl RoomSelection {
    fn out(&self) -> Out<'_> {
        Out::Map(vec![
            ("rooms", Out::strs(&self.rooms)),
            ("except", Out::strs(&self.except)),
        ])
    }

    fn from_fields(mut f: Fields) -> Result<RoomSelection, BusDecodeError> {
        Ok(RoomSelection {
            rooms: f.rooms("rooms")?,
            except: f.rooms("except")?,
        })
    }
}

/// A broadcast's target and flags: `{rooms, except, flags}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Rooms to include; empty means every socket of the namespace.
    pub rooms: Vec<String>,
    /// Rooms whose sockets are left out.
    pub except: Vec<String>,
    /// socket.io's broadcast flags.
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    fn out(&self) -> Out<'_> {
        Out::Map(vec![
            ("rooms", Out::strs(&self.rooms)),
            ("except", Out::strs(&self.except)),
            ("flags", self.flags.out()),
        ])
    }

    fn from_fields(mut f: Fields) -> Result<BroadcastOptions, BusDecodeError> {
        Ok(BroadcastOptions {
            rooms: f.rooms("rooms")?,
            except: f.rooms("except")?,
            flags: BroadcastFlags::from_fields(f.opt_map("flags", "broadcast flags")?)?,
        })
    }
}

/// socket.io's broadcast flags; `None` is a flag not set (JavaScript
/// `undefined`). Unknown flags are ignored when decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastFlags {
    /// `volatile`: may be dropped when a client is not ready.
    pub volatile: Option<bool>,
    /// `compress`: whether to compress (true unless set false).
    pub compress: Option<bool>,
    /// `local`: this node only (never seen on the bus).
    pub local: Option<bool>,
    /// `broadcast` (legacy).
    pub broadcast: Option<bool>,
    /// `binary` (legacy).
    pub binary: Option<bool>,
    /// `timeout` in milliseconds, for broadcasts with acknowledgements.
    pub timeout: Option<u64>,
    /// `expectSingleResponse`: a remote socket's `emitWithAck`.
    pub expect_single_response: Option<bool>,
}

impl BroadcastFlags {
    fn out(&self) -> Out<'_> {
        let mut entries = Vec::new();
        let bools = [
            ("volatile", self.volatile),
            ("compress", self.compress),
            ("local", self.local),
            ("broadcast", self.broadcast),
            ("binary", self.binary),
        ];
        for (key, flag) in bools {
            if let Some(b) = flag {
                entries.push((key, Out::Bool(b)));
            }
        }
        if let Some(t) = self.timeout {
            entries.push(("timeout", Out::UInt(t)));
        }
        if let Some(b) = self.expect_single_response {
            entries.push(("expectSingleResponse", Out::Bool(b)));
        }
        Out::Map(entries)
    }

    fn from_fields(mut f: Fields) -> Result<BroadcastFlags, BusDecodeError> {
        let timeout = match f.take("timeout") {
            None => None,
            Some(v) => Some(timeout_ms(&v).ok_or_else(|| wire::error("flags: bad `timeout`"))?),
        };
        Ok(BroadcastFlags {
            volatile: f.opt_bool("volatile")?,
            compress: f.opt_bool("compress")?,
            local: f.opt_bool("local")?,
            broadcast: f.opt_bool("broadcast")?,
            binary: f.opt_bool("binary")?,
            timeout,
            expect_single_response: f.opt_bool("expectSingleResponse")?,
        })
    }
}

/// A timeout in milliseconds: a non-negative number, a fraction dropped
/// (what `setTimeout` does).
fn timeout_ms(value: &Value) -> Option<u64> {
    use crate::value::Number;
    match value {
        Value::Number(Number::Float(f)) if f.is_finite() && *f >= 0.0 => {
            // Saturating: any timeout over 584 million years is forever.
            Some(f.trunc() as u64)
        }
        other => wire::as_u64(other),
    }
}

/// A socket as another node describes it in a fetch-sockets answer:
/// `{id, handshake, rooms, data}`.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedSocket {
    /// The socket id.
    pub id: String,
    /// socket.io's handshake object, as the node sent it: `{headers, time,
    /// address, xdomain, secure, issued, url, query, auth}` (JSON-like;
    /// `time` a date string, `issued` milliseconds).
    pub handshake: Value,
    /// The rooms the socket is in (its own id among them).
    pub rooms: Vec<String>,
    /// The application's `socket.data` (null when absent: then not
    /// written).
    pub data: Value,
}

impl FetchedSocket {
    fn out(&self) -> Out<'_> {
        let mut entries = vec![
            ("id", Out::Str(&self.id)),
            ("handshake", Out::Value(&self.handshake)),
            ("rooms", Out::strs(&self.rooms)),
        ];
        if self.data != Value::Null {
            entries.push(("data", Out::Value(&self.data)));
        }
        Out::Map(entries)
    }

    fn from_value(value: Value) -> Result<FetchedSocket, BusDecodeError> {
        let mut f = Fields::new(value, "fetched socket")?;
        Ok(FetchedSocket {
            id: f.string("id")?,
            handshake: f.value("handshake"),
            rooms: f.rooms("rooms")?,
            data: f.value("data"),
        })
    }

    fn list_out(sockets: &[FetchedSocket]) -> Out<'_> {
        Out::Array(sockets.iter().map(FetchedSocket::out).collect())
    }

    fn list_from(items: Vec<Value>) -> Result<Vec<FetchedSocket>, BusDecodeError> {
        items.into_iter().map(FetchedSocket::from_value).collect()
    }
}
