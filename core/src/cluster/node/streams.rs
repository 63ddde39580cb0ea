//! `@socket.io/redis-streams-adapter` 0.3 (0.3.0 and 0.3.1 write the same
//! bytes), built on `socket.io-adapter` 2.5's `ClusterAdapter`: what it
//! writes to and reads from Redis, and the seam design for a server that
//! speaks it. See [Seam design](#seam-design) at the end.
//!
//! # What goes where
//!
//! Its messages are `ClusterAdapter` messages, the same types and `data`
//! as the sharded adapter's ([`ShardedMessage`], [`ShardedData`]); they
//! travel two ways:
//!
//! - **On the stream** ([`StreamsConfig::stream_for`]): one Redis stream
//!   per namespace group, named `socket.io` (the `streamName` option), or
//!   with `streamCount` N > 1 the streams `socket.io-0` .. `socket.io-<N-1>`,
//!   namespace `nsp` going to `socket.io-<h % N>` where `h` is Java's
//!   `String.hashCode` of `nsp` over UTF-16 units as a signed 32-bit
//!   integer ([`js_hash_code`]); JavaScript's `%` keeps the sign, so a
//!   negative hash names e.g. `socket.io--1` (and `-0` prints `0`). Every
//!   message that is not ephemeral goes there: broadcasts without
//!   acknowledgement (3 without `requestId`), `SOCKETS_JOIN` (4),
//!   `SOCKETS_LEAVE` (5), `DISCONNECT_SOCKETS` (6). Written with
//!   `XADD <stream> MAXLEN ~ <maxLen> * uid <uid> nsp <nsp> type <type>
//!   [data <data>]` (`maxLen` 10 000 by default): four fields in that
//!   order ([`encode_entry`], [`decode_entry`]):
//!   - `uid`: the sender's uid, 16 hex digits (random per namespace
//!     adapter);
//!   - `nsp`: the namespace; an entry without it (or empty) is skipped;
//!   - `type`: the message type in decimal (read with `parseInt`);
//!   - `data`: absent when the message has none, else `JSON.stringify` of
//!     the `data` object, unless the type may carry binary (3, 8, 9, 10,
//!     12), `data` holds binary and `onlyPlaintext` is off: then the
//!     base64 (standard alphabet, padded) of its MessagePack
//!     (`@msgpack/msgpack` 2.8). Readers take a value starting with `{` as
//!     JSON, anything else as base64 MessagePack.
//!
//!   Each node reads every stream with its own connection per stream:
//!   `XREAD COUNT <readCount> BLOCK <blockTimeInMs> STREAMS <stream>
//!   <last id>` in a loop (`readCount` 100, `blockTimeInMs` 5000), the
//!   first call from `$` (entries from then on), then from the last id it
//!   read; a failed call is retried at once from the same id. It reads
//!   its own entries too and drops them by uid, and drops entries of
//!   namespaces it does not serve. **The entry id is the offset**: for a
//!   broadcast eligible for recovery it is appended to the packet's
//!   arguments before the packet goes to the clients (see below).
//! - **On pub/sub**, always MessagePack ([`ShardedMessage::encode_msgpack`],
//!   `{type, data, uid, nsp}`), with `PUBLISH` (`SPUBLISH` with
//!   `useShardedPubSub`): the *ephemeral* requests ([`is_ephemeral`]:
//!   broadcasts with acknowledgement, `SERVER_SIDE_EMIT` (9),
//!   `FETCH_SOCKETS` (7)) on the public channel `<prefix>#<nsp>#`, and
//!   every response (8, 10, 11, 12) on the requester's private channel
//!   `<prefix>#<nsp>#<uid>#` (`channelPrefix`, `socket.io` by default).
//!   Each node subscribes to both of its channels (one subscriber
//!   connection shared by all namespaces).
//!
//! # Node liveness
//!
//! 0.3 has no heartbeats: `ClusterAdapter` (not `ClusterAdapterWithHeartbeat`,
//! which 0.2 used over the stream with types 1, 2, 13), and it counts nodes
//! as the subscribers of the public channel: `PUBSUB NUMSUB
//! <prefix>#<nsp>#` (`SHARDNUMSUB` when sharded), itself included
//! ([`StreamsConfig::count_nodes`]). Its `heartbeatInterval` (5 s) and
//! `heartbeatTimeout` (10 s) options are still accepted and unused. A
//! request waits for count - 1 answers, or 5 s (`flags.timeout` for
//! fetches), as in the sharded adapter.
//!
//! # Sessions (connection state recovery)
//!
//! When a socket of a server with `connectionStateRecovery` disconnects
//! for a recoverable reason (`transport error`, `transport close`,
//! `forced close`, `ping timeout`, `server shutting down`, `forced server
//! close`), socket.io persists `{sid, pid, rooms, data}` ([`StreamsSession`];
//! `rooms` includes the socket's own id; `data` is `socket.data`, `{}` by
//! default) with `SET <sessionKeyPrefix><pid> <base64 of its MessagePack>
//! PX <maxDisconnectionDuration ms>` (prefix `sio:session:`), fire and
//! forget.
//!
//! A CONNECT with `auth.pid` and `auth.offset` (both strings) restores on
//! whichever node it reaches: the offset must be `^[0-9]+-[0-9]+$`
//! ([`StreamId`]); then, at once, `MULTI; GET key; DEL key; EXEC` (GETDEL
//! semantics) and `XRANGE <stream> <offset> <offset>`: both the session
//! and the offset's entry must exist (an offset trimmed away by `MAXLEN`
//! fails the restore). Then `XRANGE <stream> <offset's seq + 1> +` (no
//! `COUNT`), again from the last id read, until a call returns nothing or
//! 100 calls were made. Every entry of the namespace with type `3` whose
//! `opts` match the session's rooms ([`should_include_packet`]: no rooms
//! or one of them in the session's, and none of the session's in
//! `except`) is replayed: `packet.data` with the entry id appended
//! ([`missed_packet`]), sent as an EVENT. The reference checks neither
//! the volatile flag nor the packet's ack id here. Any failure means a
//! new session (a fresh sid), not an error for the client.
//!
//! Offsets the clients see: `ClusterAdapter.broadcast` awaits the `XADD`
//! reply, then, when recovery is on, the packet is an event, has no ack id
//! and the broadcast is not volatile, appends the entry id to its
//! arguments and only then delivers locally (an `XADD` error: delivered
//! without offset). A receiving node appends the entry id of the entry it
//! read under the same conditions. With recovery on, `socket.emit` itself
//! goes through `adapter.broadcast` to the socket's own room, so every
//! direct emit is an `XADD` (its ack id, when it has one, travels in the
//! packet and the entry gets no offset).
//!
//! Joins, leaves and disconnections by selection likewise await their
//! `XADD` before applying locally (and apply locally when it fails).
//!
//! # Seam design
//!
//! How the server core's cluster seam maps this onto the bus commands
//! ([`BusCommand`] / [`BusInput`](crate::cluster::BusInput)). One [`StreamsConfig`] per server; a
//! node uid per namespace (16 hex digits) or one for all (receivers only
//! compare uids and address responses with them).
//!
//! **Start, per namespace `nsp`**: [`StreamsConfig::subscriptions`] (the
//! public and private channels) and, once per stream, `StreamFollow {
//! stream: stream_for(nsp), from: None }`. The seam keeps `last_seen[stream]`,
//! the id of the last [`BusInput::StreamEntry`](crate::cluster::BusInput::StreamEntry) it handled (needed for
//! restores). On [`BusInput::Down`](crate::cluster::BusInput::Down)/[`BusInput::Up`](crate::cluster::BusInput::Up) nothing else is
//! needed: the backend resumes following from the last id it reported.
//!
//! **Broadcast without ack** (`to/except/volatile`, and with recovery on,
//! every `socket.emit`): build `ShardedData::Broadcast { request_id: None
//! }` and [`StreamsConfig::publish`] gives `StreamAppend { token }`.
//! Local delivery **waits for `StreamAppended { token, id }`**: keep the
//! packet under the token; when the answer comes, append `id` as the last
//! argument if recovery is on, the packet is an event without ack id and
//! not volatile, then deliver to the local sockets (with `id: None`,
//! deliver without offset). Packets must still leave in order per socket:
//! answers come in the order asked (one command connection), so queue
//! locally in token order. With `flags.local`: no bus, deliver at once.
//! Our own entry also comes back through the follower: drop it by uid
//! (but advance `last_seen`).
//!
//! **Entries read** (`StreamEntry { stream, entry }`): set
//! `last_seen[stream] = entry.id`, then [`decode_entry`]; drop own uid,
//! other namespaces and undecodable entries (log at debug). Type 3: local
//! broadcast, with `entry.id` appended under the same conditions as
//! above; 4/5/6: join/leave/disconnect the selected local sockets. Sockets
//! restored with a `replayed_until` id (below) skip entries whose id is
//! not greater.
//!
//! **Broadcast with ack**: `ShardedData::Broadcast { request_id: Some }`:
//! `publish` gives a `Publish` (MessagePack) on the public channel, plus
//! `count_nodes`; deliver locally at once; remote nodes answer
//! `BroadcastClientCount` then `BroadcastAck`s on our private channel
//! (pub/sub `Message`s, decoded with [`ShardedMessage::decode`]). Wait as
//! for the sharded adapter: counts from every node, acks they announce,
//! or `flags.timeout`. Answering a remote request: responses built with
//! [`StreamsConfig::publish_response`] to the requester's uid.
//!
//! **Fetch sockets, server-side emit (with or without ack)**: `publish`
//! (pub/sub on the public channel) plus `count_nodes` when answers are
//! awaited: count - 1 answers, 5 s. No stream involved.
//!
//! **Join / leave / disconnect by selection**: `publish` gives a
//! `StreamAppend`; apply locally on `StreamAppended` (whatever the id),
//! not when our own entry comes back (dropped by uid). `close_room` is a
//! leave of every socket in the room. (The seam as built applies them
//! locally at once, as for the other Node formats, and a broadcast waiting
//! for its id keeps the receivers it selected when it was made: the same
//! order for this node's sockets, without a deadline-less wait in calls
//! that take no `now`.)
//!
//! **Persist** (recoverable disconnect with recovery on):
//! [`StreamsConfig::persist_session`] gives `SetKey { ttl:
//! maxDisconnectionDuration }`; no answer awaited. Nothing is kept in
//! memory: the in-memory packet store of `recovery.rs` is not used with
//! this format (offsets are stream ids, not local sequence numbers).
//!
//! **Restore** (CONNECT with string `pid` and `offset`, on any node): run
//! a [`SessionRestore`]: its first commands are `TakeKey` and a one-entry
//! `StreamRange`; feed it `KeyTaken` and `StreamRange` answers with the
//! current `last_seen` of the stream, send what it returns, until it ends
//! with a [`RestoredSession`] (or an error: connect as a new socket, no
//! error to the client). It pages with `COUNT` and, before finishing,
//! reads again when the follower has delivered entries past what the
//! ranges covered, so that finishing **in the same `handle_bus` call**
//! (register the socket with `sid`, join `rooms`, set `data`, send the
//! `missed` packets in order, then the CONNECT reply with `pid`) leaves no
//! gap. Entries the follower delivers later with an id up to
//! `replayed_until` were already replayed: skip them for this socket
//! (once the follower passed that id, the mark can go). The CONNECT
//! answer waits for the restore; middlewares run or not as
//! `skipMiddlewares` says, as today.
//!
//! **Take-over**: a `pid` whose socket is still connected on this node
//! can be ended locally as today; on another node the reference does
//! nothing (the old socket ends with its ping timeout, its later
//! `SetKey` writes a session nobody takes, which expires).
//!
//! **Server count**: `count_nodes` (`Subscribers` - the answer counts
//! this node).
//!
//! **Waiting and ordering**: a `StreamAppend` sent while Redis is down is
//! queued by the backend and answered only when the link is back (or at
//! once, without id, when the queue is full), so bound the wait for
//! `StreamAppended` (e.g. the request timeout: then deliver without
//! offset and drop the late answer). Answers to `StreamAppend`,
//! `StreamRange` and `TakeKey` come in the order asked (one command
//! connection); `StreamEntry` inputs come from another connection, so
//! our own entry may be read back before its `StreamAppended`. Broadcasts
//! with ack go on pub/sub and are delivered locally at once: they may
//! overtake an earlier broadcast still waiting for its `XADD`, as in the
//! reference.
//!
//! **Configuration**: a `ClusterFormat` variant carrying a
//! [`StreamsConfig`] (and the follower's `readCount`/`blockTimeInMs` go
//! to the backend: the driver's `RedisConfig::stream_read`).
//!
//! **Matches to extend** when adding these bus variants: `handle_bus` in
//! `socket/server/cluster/mod.rs` (the four new [`BusInput`](crate::cluster::BusInput) variants)
//! and the hand relay of `socket/server/cluster/tests.rs` (the six new
//! [`BusCommand`] variants), as well as every other bus backend (AMQP,
//! Kafka: they can answer appends, ranges and takes as failed, and
//! ignore follows).
//!
//! **Emitter / write-only**: no stream follow and no subscriptions;
//! broadcasts are `StreamAppend`s (uid `emitter` is not special to the
//! streams adapter, any uid not a node's works).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;

use super::wire::{self, Fields, Out};
use super::{BroadcastOptions, ShardedData, ShardedMessage};
use crate::cluster::{
    BusCommand, BusDecodeError, BusLimits, ChannelKind, StreamEntry, StreamFields,
};
use crate::value::Value;
use crate::Str;

/// The default stream name (`streamName`).
pub const DEFAULT_STREAM_NAME: &str = "socket.io";
/// The default prefix of session keys (`sessionKeyPrefix`).
pub const DEFAULT_SESSION_KEY_PREFIX: &str = "sio:session:";
/// Most `XRANGE` calls of one restore in the reference.
pub const RESTORE_MAX_RANGE_CALLS: u32 = 100;

/// The adapter's options that shape the bytes and names on Redis (its
/// `createAdapter` options of the same names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsConfig {
    /// `streamName`: the stream, or the streams' prefix (`socket.io`).
    pub stream_name: String,
    /// `streamCount`: how many streams (1). Zero counts as one.
    pub stream_count: u32,
    /// `channelPrefix`: the pub/sub channels' prefix (`socket.io`).
    pub channel_prefix: String,
    /// `useShardedPubSub`: `SPUBLISH`/`SSUBSCRIBE`/`SHARDNUMSUB` (false).
    pub sharded: bool,
    /// `maxLen`: trim the stream to about this many entries (10 000).
    pub max_len: u64,
    /// `readCount`: most entries per `XREAD` (100); also the page size
    /// of a restore's ranges here.
    pub read_count: u64,
    /// `blockTimeInMs`: how long one `XREAD` blocks (5 s).
    pub block_time: Duration,
    /// `sessionKeyPrefix` (`sio:session:`).
    pub session_key_prefix: String,
    /// `onlyPlaintext`: never MessagePack in entries (false).
    pub only_plaintext: bool,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            stream_name: DEFAULT_STREAM_NAME.to_owned(),
            stream_count: 1,
            channel_prefix: "socket.io".to_owned(),
            sharded: false,
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_secs(5),
            session_key_prefix: DEFAULT_SESSION_KEY_PREFIX.to_owned(),
            only_plaintext: false,
        }
    }
}

/// Java's `String.hashCode` as the adapter computes it: over UTF-16 code
/// units, `h = h * 31 + unit`, wrapping to a signed 32-bit integer.
pub fn js_hash_code(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Whether a message goes on pub/sub rather than the stream: broadcasts
/// with acknowledgement, server-side emits and fetches (and responses,
/// which always go to the requester's private channel).
pub fn is_ephemeral(data: &ShardedData) -> bool {
    matches!(
        data,
        ShardedData::Broadcast {
            request_id: Some(_),
            ..
        } | ShardedData::ServerSideEmit { .. }
            | ShardedData::FetchSockets { .. }
    ) || data.is_response()
}

impl StreamsConfig {
    /// The stream of namespace `nsp`.
    pub fn stream_for(&self, nsp: &str) -> Str {
        if self.stream_count <= 1 {
            return Str::from(self.stream_name.as_str());
        }
        // JavaScript's `%` on a negative hash is negative (or -0, printed
        // 0); i64 keeps every i32 and u32 exactly.
        let i = i64::from(js_hash_code(nsp)) % i64::from(self.stream_count);
        Str::from(format!("{}-{i}", self.stream_name))
    }

    /// Every stream a node of this configuration reads (the reference
    /// reads them all, whatever namespaces it serves).
    pub fn streams(&self) -> Vec<Str> {
        if self.stream_count <= 1 {
            return vec![Str::from(self.stream_name.as_str())];
        }
        (0..self.stream_count)
            .map(|i| Str::from(format!("{}-{i}", self.stream_name)))
            .collect()
    }

    /// `<prefix>#<nsp>#`: where ephemeral requests go, and whose
    /// subscribers are the nodes.
    pub fn public_channel(&self, nsp: &str) -> Str {
        Str::from(format!("{}#{nsp}#", self.channel_prefix))
    }

    /// `<prefix>#<nsp>#<uid>#`: node `uid`'s responses.
    pub fn private_channel(&self, nsp: &str, uid: &str) -> Str {
        Str::from(format!("{}#{nsp}#{uid}#", self.channel_prefix))
    }

    fn channel_kind(&self) -> ChannelKind {
        if self.sharded {
            ChannelKind::Sharded
        } else {
            ChannelKind::Plain
        }
    }

    /// What node `uid` subscribes to for `nsp`: its public and private
    /// channels (following the stream is separate:
    /// [`BusCommand::StreamFollow`] of [`StreamsConfig::stream_for`]).
    pub fn subscriptions(&self, nsp: &str, uid: &str) -> Vec<BusCommand> {
        [self.public_channel(nsp), self.private_channel(nsp, uid)]
            .into_iter()
            .map(|channel| BusCommand::Subscribe {
                channel,
                kind: self.channel_kind(),
            })
            .collect()
    }

    /// Count the nodes serving `nsp`, this one included.
    pub fn count_nodes(&self, nsp: &str) -> BusCommand {
        BusCommand::CountSubscribers {
            channel: self.public_channel(nsp),
            sharded: self.sharded,
        }
    }

    /// The key of session `pid`.
    pub fn session_key(&self, pid: &str) -> Str {
        Str::from(format!("{}{pid}", self.session_key_prefix))
    }

    /// Send a message as the reference does (responses go with
    /// [`StreamsConfig::publish_response`] instead): ephemeral ones
    /// published on the public channel (`token` unused), the others
    /// appended to the namespace's stream, answered by
    /// [`crate::cluster::BusInput::StreamAppended`] with `token`.
    pub fn publish(&self, message: &ShardedMessage, token: u64) -> BusCommand {
        if is_ephemeral(&message.data) {
            return BusCommand::Publish {
                channel: self.public_channel(&message.nsp),
                payload: message.encode_msgpack(),
                sharded: self.sharded,
            };
        }
        BusCommand::StreamAppend {
            stream: self.stream_for(&message.nsp),
            fields: encode_entry(message, self.only_plaintext),
            max_len: Some(self.max_len),
            token,
        }
    }

    /// Answer node `requester_uid`'s request.
    pub fn publish_response(&self, requester_uid: &str, message: &ShardedMessage) -> BusCommand {
        BusCommand::Publish {
            channel: self.private_channel(&message.nsp, requester_uid),
            payload: message.encode_msgpack(),
            sharded: self.sharded,
        }
    }

    /// Keep `session` for `ttl` (`maxDisconnectionDuration`).
    pub fn persist_session(&self, session: &StreamsSession, ttl: Duration) -> BusCommand {
        BusCommand::SetKey {
            key: self.session_key(&session.pid),
            value: session.encode(),
            ttl: Some(ttl),
        }
    }
}

// ---------------------------------------------------------------------------
// Stream entries

/// Types whose `data` the reference checks for binary.
fn may_contain_binary(data: &ShardedData) -> bool {
    matches!(
        data,
        ShardedData::Broadcast { .. }
            | ShardedData::FetchSocketsResponse { .. }
            | ShardedData::ServerSideEmit { .. }
            | ShardedData::ServerSideEmitResponse { .. }
            | ShardedData::BroadcastAck { .. }
    )
}

/// The fields of the stream entry carrying `message`: `uid`, `nsp`,
/// `type`, then `data` when the type has any (see the module docs for
/// when it is JSON and when base64 MessagePack).
pub fn encode_entry(message: &ShardedMessage, only_plaintext: bool) -> StreamFields {
    let field = |k: &'static str, v: Bytes| (Bytes::from_static(k.as_bytes()), v);
    let mut fields = vec![
        field("uid", Bytes::copy_from_slice(message.uid.as_bytes())),
        field("nsp", Bytes::copy_from_slice(message.nsp.as_bytes())),
        field(
            "type",
            Bytes::copy_from_slice(
                itoa::Buffer::new()
                    .format(message.data.type_number())
                    .as_bytes(),
            ),
        ),
    ];
    if let Some(data) = message.data.out() {
        let value = if !only_plaintext && may_contain_binary(&message.data) && data.has_binary() {
            let packed = wire::encode(&data, wire::Encoding::MsgPack);
            Bytes::from(STANDARD.encode(&packed))
        } else {
            wire::encode(&data, wire::Encoding::Json)
        };
        fields.push(field("data", value));
    }
    fields
}

/// `parseInt(text, 10)` for a message type: leading whitespace, digits,
/// anything after them ignored.
fn parse_type(text: &[u8]) -> Option<u64> {
    let text = match text.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => &text[i..],
        None => return None,
    };
    let text = text.strip_prefix(b"+").unwrap_or(text);
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in &text[..digits] {
        // No known type is that long: an overflow is just unknown.
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Read a stream entry's fields (a repeated field counts with its last
/// value, unknown fields are ignored). An entry without `nsp` is an error
/// (the reference skips it silently); one without `uid` reads with an
/// empty uid (the reference handles it as from another node).
pub fn decode_entry(
    fields: &[(Bytes, Bytes)],
    limits: &BusLimits,
) -> Result<ShardedMessage, BusDecodeError> {
    let total: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > limits.max_message_bytes {
        return Err(wire::error(format!(
            "stream entry of {total} bytes over the limit of {}",
            limits.max_message_bytes
        )));
    }
    let get = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| &k[..] == name.as_bytes())
            .map(|(_, v)| v)
    };
    let text = |name: &str| -> Result<Option<String>, BusDecodeError> {
        match get(name) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| wire::error(format!("entry field `{name}` is not UTF-8"))),
        }
    };
    let nsp = text("nsp")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| wire::error("stream entry without `nsp`"))?;
    let uid = text("uid")?.unwrap_or_default();
    let message_type = get("type")
        .and_then(|t| parse_type(t))
        .ok_or_else(|| wire::error("stream entry without a numeric `type`"))?;
    let data = match get("data") {
        None => None,
        Some(d) if d.is_empty() => None,
        Some(d) if d[0] == b'{' => Some(wire::decode(d, limits)?.0),
        Some(d) => {
            // Base64 is 4/3 of the bytes: bounded by the check above.
            let packed = STANDARD
                .decode(d)
                .map_err(|e| wire::error(format!("entry `data`: bad base64: {e}")))?;
            Some(wire::decode_msgpack(&packed, limits)?)
        }
    };
    let data = data.map(|v| Fields::new(v, "data")).transpose()?;
    Ok(ShardedMessage {
        uid,
        nsp,
        data: ShardedData::from_fields(message_type, data)?,
    })
}

// ---------------------------------------------------------------------------
// Offsets

/// A Redis stream entry id, `<milliseconds>-<sequence>`: the offsets the
/// clients see. Ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The milliseconds part.
    pub ms: u64,
    /// The sequence part.
    pub seq: u64,
}

/// A string that is not `<digits>-<digits>` within 64 bits each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStreamId;

impl fmt::Display for InvalidStreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid stream id")
    }
}

impl std::error::Error for InvalidStreamId {}

impl FromStr for StreamId {
    type Err = InvalidStreamId;

    /// `^[0-9]+-[0-9]+$`, as the reference checks a client's offset, each
    /// part within 64 bits as Redis requires.
    fn from_str(s: &str) -> Result<StreamId, InvalidStreamId> {
        let (ms, seq) = s.split_once('-').ok_or(InvalidStreamId)?;
        let part = |p: &str| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidStreamId);
            }
            p.parse::<u64>().map_err(|_| InvalidStreamId)
        };
        Ok(StreamId {
            ms: part(ms)?,
            seq: part(seq)?,
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl StreamId {
    /// The smallest id after this one (the start of an exclusive range,
    /// which Redis before 6.2 cannot express); `None` after the last.
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The id as a [`Str`].
    pub fn to_str(self) -> Str {
        Str::from(self.to_string())
    }
}

// ---------------------------------------------------------------------------
// Sessions

/// A persisted session: `{sid, pid, rooms, data}`, stored as the base64
/// of its MessagePack.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamsSession {
    /// The socket id, kept by the restored socket.
    pub sid: String,
    /// The private session id (the key's suffix).
    pub pid: String,
    /// The socket's rooms, its own id among them.
    pub rooms: Vec<String>,
    /// `socket.data` (`{}` by default).
    pub data: Value,
}

impl StreamsSession {
    /// The key's value: base64 (standard, padded) of the MessagePack map.
    pub fn encode(&self) -> Bytes {
        let out = Out::Map(vec![
            ("sid", Out::Str(&self.sid)),
            ("pid", Out::Str(&self.pid)),
            ("rooms", Out::strs(&self.rooms)),
            ("data", Out::Value(&self.data)),
        ]);
        let packed = wire::encode(&out, wire::Encoding::MsgPack);
        Bytes::from(STANDARD.encode(&packed))
    }

    /// Read a key's value.
    pub fn decode(value: &[u8], limits: &BusLimits) -> Result<StreamsSession, BusDecodeError> {
        if value.len() > limits.max_message_bytes {
            return Err(wire::error(format!(
                "session of {} bytes over the limit of {}",
                value.len(),
                limits.max_message_bytes
            )));
        }
        let packed = STANDARD
            .decode(value)
            .map_err(|e| wire::error(format!("session: bad base64: {e}")))?;
        let mut f = Fields::new(wire::decode_msgpack(&packed, limits)?, "session")?;
        Ok(StreamsSession {
            sid: f.string("sid")?,
            pid: f.string("pid")?,
            rooms: f.rooms("rooms")?,
            data: f.value("data"),
        })
    }
}

/// Whether a broadcast to `opts` reaches a socket in `rooms` (the
/// reference's `shouldIncludePacket`).
pub fn should_include_packet(rooms: &[String], opts: &BroadcastOptions) -> bool {
    let included = opts.rooms.is_empty() || rooms.iter().any(|r| opts.rooms.contains(r));
    let excluded = rooms.iter().any(|r| opts.except.contains(r));
    included && !excluded
}

/// The arguments to replay for an entry read during a restore: for a
/// broadcast (type 3) of namespace `nsp` that reaches `rooms`,
/// `packet.data` with the entry id appended; `None` otherwise (also when
/// `packet.data` is not an array, where the reference would fail the
/// whole restore).
pub fn missed_packet(
    message: &ShardedMessage,
    id: &str,
    nsp: &str,
    rooms: &[String],
) -> Option<Vec<Value>> {
    if message.nsp != nsp {
        return None;
    }
    let ShardedData::Broadcast { packet, opts, .. } = &message.data else {
        return None;
    };
    if !should_include_packet(rooms, opts) {
        return None;
    }
    let Value::Array(args) = &packet.data else {
        return None;
    };
    let mut args = args.clone();
    args.push(Value::String(id.to_owned()));
    Some(args)
}

// ---------------------------------------------------------------------------
// Restore, sans-IO

/// Why a restore ended without a session (the client then gets a new
/// one; none of these is an error for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// The offset is not a stream id.
    InvalidOffset,
    /// No session under the key (expired, taken, never stored), or the
    /// read failed.
    NoSession,
    /// The session's value could not be read.
    BadSession(BusDecodeError),
    /// The offset's entry is not in the stream any more (trimmed), or the
    /// read failed.
    OffsetNotFound,
    /// A range read failed.
    RangeFailed,
    /// The stream grew faster than the ranges read it.
    TooManyRanges,
    /// Too many missed packets.
    TooManyPackets,
    /// An answer with a token this restore did not send.
    UnexpectedAnswer,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::InvalidOffset => f.write_str("invalid offset"),
            RestoreError::NoSession => f.write_str("session not found"),
            RestoreError::BadSession(e) => write!(f, "bad session: {e}"),
            RestoreError::OffsetNotFound => f.write_str("offset not found"),
            RestoreError::RangeFailed => f.write_str("reading the stream failed"),
            RestoreError::TooManyRanges => f.write_str("too many range reads"),
            RestoreError::TooManyPackets => f.write_str("too many missed packets"),
            RestoreError::UnexpectedAnswer => f.write_str("unexpected answer"),
        }
    }
}

impl std::error::Error for RestoreError {}

/// A restored session and what the client missed.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredSession {
    /// The session (sid, pid, rooms, data).
    pub session: StreamsSession,
    /// The missed events' arguments (`[event, args.., offset]`), in order.
    pub missed: Vec<Vec<Value>>,
    /// The last id the restore read: stream entries up to it that the
    /// follower delivers later are not for this socket (already replayed
    /// or not addressed to it).
    pub replayed_until: StreamId,
}

/// What to do after feeding a [`SessionRestore`].
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreStep {
    /// Send these commands and wait for their answers.
    Send(Vec<BusCommand>),
    /// Waiting for an answer already asked for.
    Wait,
    /// Finished.
    Done(Result<RestoredSession, RestoreError>),
}

/// One restore of a session arriving with `pid` and `offset` (see the
/// module docs' seam design). Tokens are the caller's: it gives two to
/// start and one per range after that.
#[derive(Debug)]
pub struct SessionRestore {
    stream: Str,
    nsp: String,
    limits: BusLimits,
    page: u64,
    max_packets: usize,
    key_token: u64,
    range_token: u64,
    session: Option<Option<StreamsSession>>,
    offset_found: Option<bool>,
    covered: StreamId,
    calls: u32,
    missed: Vec<Vec<Value>>,
}

impl SessionRestore {
    /// Start restoring session `pid` from `offset` in namespace `nsp`:
    /// returns the restore and its first two commands (`TakeKey` with
    /// `key_token`, `StreamRange` of the offset alone with
    /// `range_token`). At most `max_packets` missed packets are kept (the
    /// restore fails past it).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        config: &StreamsConfig,
        nsp: &str,
        pid: &str,
        offset: &str,
        key_token: u64,
        range_token: u64,
        limits: BusLimits,
        max_packets: usize,
    ) -> Result<(SessionRestore, Vec<BusCommand>), RestoreError> {
        let covered: StreamId = offset.parse().map_err(|_| RestoreError::InvalidOffset)?;
        let stream = config.stream_for(nsp);
        let commands = vec![
            BusCommand::TakeKey {
                key: config.session_key(pid),
                token: key_token,
            },
            BusCommand::StreamRange {
                stream: stream.clone(),
                start: covered.to_str(),
                end: covered.to_str(),
                count: Some(1),
                token: range_token,
            },
        ];
        Ok((
            SessionRestore {
                stream,
                nsp: nsp.to_owned(),
                limits,
                page: config.read_count.max(1),
                max_packets,
                key_token,
                range_token,
                session: None,
                offset_found: None,
                covered,
                calls: 0,
                missed: Vec::new(),
            },
            commands,
        ))
    }

    /// The tokens this restore waits on.
    pub fn tokens(&self) -> (u64, u64) {
        (self.key_token, self.range_token)
    }

    /// The answer to the `TakeKey`.
    pub fn on_key_taken(&mut self, token: u64, value: Option<&[u8]>) -> RestoreStep {
        if token != self.key_token || self.session.is_some() {
            return RestoreStep::Done(Err(RestoreError::UnexpectedAnswer));
        }
        let session = match value {
            None => None,
            Some(v) => match StreamsSession::decode(v, &self.limits) {
                Ok(s) => Some(s),
                Err(e) => return RestoreStep::Done(Err(RestoreError::BadSession(e))),
            },
        };
        self.session = Some(session);
        self.check_first()
    }

    fn check_first(&mut self) -> RestoreStep {
        match (&self.session, self.offset_found) {
            (Some(None), _) => RestoreStep::Done(Err(RestoreError::NoSession)),
            (_, Some(false)) => RestoreStep::Done(Err(RestoreError::OffsetNotFound)),
            (Some(Some(_)), Some(true)) => self.next_range(),
            _ => RestoreStep::Wait,
        }
    }

    fn next_range(&mut self) -> RestoreStep {
        if self.calls >= RESTORE_MAX_RANGE_CALLS {
            return RestoreStep::Done(Err(RestoreError::TooManyRanges));
        }
        let Some(start) = self.covered.next() else {
            return self.finish();
        };
        self.calls += 1;
        RestoreStep::Send(vec![BusCommand::StreamRange {
            stream: self.stream.clone(),
            start: start.to_str(),
            end: Str::from_static("+"),
            count: Some(self.page),
            token: self.range_token,
        }])
    }

    fn finish(&mut self) -> RestoreStep {
        match self.session.take() {
            Some(Some(session)) => RestoreStep::Done(Ok(RestoredSession {
                session,
                missed: std::mem::take(&mut self.missed),
                replayed_until: self.covered,
            })),
            _ => RestoreStep::Done(Err(RestoreError::NoSession)),
        }
    }

    /// The answer to a `StreamRange` this restore asked for.
    /// `last_seen` is the id of the last entry of this stream the
    /// follower delivered, if any.
    pub fn on_range(
        &mut self,
        token: u64,
        entries: Option<&[StreamEntry]>,
        last_seen: Option<StreamId>,
    ) -> RestoreStep {
        if token != self.range_token {
            return RestoreStep::Done(Err(RestoreError::UnexpectedAnswer));
        }
        let Some(entries) = entries else {
            return RestoreStep::Done(Err(if self.offset_found.is_none() {
                RestoreError::OffsetNotFound
            } else {
                RestoreError::RangeFailed
            }));
        };
        if self.offset_found.is_none() {
            let found = entries
                .iter()
                .any(|e| e.id.parse::<StreamId>().is_ok_and(|id| id == self.covered));
            self.offset_found = Some(found);
            return self.check_first();
        }
        let rooms = match &self.session {
            Some(Some(s)) => s.rooms.clone(),
            _ => return RestoreStep::Done(Err(RestoreError::NoSession)),
        };
        for entry in entries {
            let Ok(id) = entry.id.parse::<StreamId>() else {
                continue;
            };
            if id <= self.covered {
                // Out of order or repeated: never twice.
                continue;
            }
            self.covered = id;
            let Ok(message) = decode_entry(&entry.fields, &self.limits) else {
                continue;
            };
            if let Some(args) = missed_packet(&message, &entry.id, &self.nsp, &rooms) {
                if self.missed.len() >= self.max_packets {
                    return RestoreStep::Done(Err(RestoreError::TooManyPackets));
                }
                self.missed.push(args);
            }
        }
        let full = entries.len() as u64 >= self.page;
        let behind = last_seen.is_some_and(|seen| seen > self.covered);
        if full || behind {
            self.next_range()
        } else {
            self.finish()
        }
    }
}
