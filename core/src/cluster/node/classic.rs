//! The classic `RedisAdapter` of `@socket.io/redis-adapter` 8.3 (plain
//! `PUBLISH`/`SUBSCRIBE`/`PSUBSCRIBE`), and what `@socket.io/redis-emitter`
//! 5.1 publishes in the same format. See the [module docs](super) for who
//! answers what.

use bytes::Bytes;

use super::wire::{self, Encoding, Fields, Out};
use super::{BroadcastOptions, FetchedSocket, NodePacket, RoomSelection};
use crate::cluster::{BusCommand, BusDecodeError, BusLimits, ChannelKind};
use crate::value::Value;
use crate::Str;

/// The classic adapter's channel names, for one key prefix (the adapter's
/// `key` option, `socket.io` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicChannels {
    prefix: String,
}

impl Default for ClassicChannels {
    fn default() -> Self {
        ClassicChannels::new("socket.io")
    }
}

/// What a channel a message arrived on is, for one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicChannel<'a> {
    /// A broadcast: to the whole namespace (`room` none), or to exactly
    /// the room named.
    Broadcast {
        /// The room of a single-room broadcast.
        room: Option<&'a str>,
    },
    /// The request channel.
    Request,
    /// The shared response channel or a node's specific one.
    Response,
}

impl ClassicChannels {
    /// The channels under `prefix`.
    pub fn new(prefix: impl Into<String>) -> ClassicChannels {
        ClassicChannels {
            prefix: prefix.into(),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>#<nsp>#`: broadcasts to the whole namespace (and the start
    /// of every broadcast channel of the namespace).
    pub fn broadcast(&self, nsp: &str) -> Str {
        Str::from(format!("{}#{nsp}#", self.prefix))
    }

    /// `<prefix>#<nsp>#<room>#`: broadcasts to exactly that room.
    pub fn broadcast_room(&self, nsp: &str, room: &str) -> Str {
        Str::from(format!("{}#{nsp}#{room}#", self.prefix))
    }

    /// Where a broadcast to `rooms` is published: the room's channel when
    /// there is exactly one distinct room, the namespace's otherwise.
    pub fn broadcast_to(&self, nsp: &str, rooms: &[String]) -> Str {
        match rooms.split_first() {
            Some((first, rest)) if rest.iter().all(|r| r == first) => {
                self.broadcast_room(nsp, first)
            }
            _ => self.broadcast(nsp),
        }
    }

    /// The `PSUBSCRIBE` pattern matching every broadcast channel of `nsp`:
    /// `<prefix>#<nsp>#*`. Glob characters of the prefix and namespace are
    /// escaped, so the pattern matches exactly the channels that start with
    /// [`ClassicChannels::broadcast`] (the reference does not escape; for
    /// the usual names the pattern is the same).
    pub fn broadcast_pattern(&self, nsp: &str) -> Str {
        let mut pattern = String::with_capacity(self.prefix.len() + nsp.len() + 4);
        for c in self.broadcast(nsp).chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        Str::from(pattern)
    }

    /// `<prefix>-request#<nsp>#`; also the channel whose subscribers are
    /// counted (`PUBSUB NUMSUB`) to know how many nodes there are.
    pub fn request(&self, nsp: &str) -> Str {
        Str::from(format!("{}-request#{nsp}#", self.prefix))
    }

    /// `<prefix>-response#<nsp>#`: the shared response channel.
    pub fn response(&self, nsp: &str) -> Str {
        Str::from(format!("{}-response#{nsp}#", self.prefix))
    }

    /// `<prefix>-response#<nsp>#<uid>#`: the response channel of the node
    /// `uid` (used by responders with `publishOnSpecificResponseChannel`).
    pub fn specific_response(&self, nsp: &str, uid: &str) -> Str {
        Str::from(format!("{}-response#{nsp}#{uid}#", self.prefix))
    }

    /// What node `uid` subscribes to for namespace `nsp`, as the reference
    /// does: the broadcast pattern, then the request, response and
    /// specific response channels.
    pub fn subscriptions(&self, nsp: &str, uid: &str) -> Vec<BusCommand> {
        let plain = |channel| BusCommand::Subscribe {
            channel,
            kind: ChannelKind::Plain,
        };
        vec![
            BusCommand::Subscribe {
                channel: self.broadcast_pattern(nsp),
                kind: ChannelKind::Pattern,
            },
            plain(self.request(nsp)),
            plain(self.response(nsp)),
            plain(self.specific_response(nsp, uid)),
        ]
    }

    /// The command counting the nodes serving `nsp` (this one included).
    pub fn count_nodes(&self, nsp: &str) -> BusCommand {
        BusCommand::CountSubscribers {
            channel: self.request(nsp),
            sharded: false,
        }
    }

    /// What `channel` is for namespace `nsp`, or `None` when it is not one
    /// of the namespace's channels.
    pub fn classify<'c>(&self, nsp: &str, channel: &'c str) -> Option<ClassicChannel<'c>> {
        let after_prefix = channel.strip_prefix(self.prefix.as_str())?;
        if let Some(rest) = after_prefix.strip_prefix("-request#") {
            return (rest.strip_prefix(nsp)? == "#").then_some(ClassicChannel::Request);
        }
        if let Some(rest) = after_prefix.strip_prefix("-response#") {
            let rest = rest.strip_prefix(nsp)?.strip_prefix('#')?;
            return (rest.is_empty() || rest.ends_with('#')).then_some(ClassicChannel::Response);
        }
        let rest = after_prefix
            .strip_prefix('#')?
            .strip_prefix(nsp)?
            .strip_prefix('#')?;
        if rest.is_empty() {
            Some(ClassicChannel::Broadcast { room: None })
        } else {
            let room = rest.strip_suffix('#')?;
            Some(ClassicChannel::Broadcast { room: Some(room) })
        }
    }
}

// ---------------------------------------------------------------------------
// Broadcast

/// A broadcast: `[uid, packet, opts]` in MessagePack, published on
/// [`ClassicChannels::broadcast_to`] of `opts.rooms`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicBroadcast {
    /// The sender's uid ([`super::EMITTER_UID`] from the emitter).
    pub uid: String,
    /// The packet; its `nsp` is `/` when the sender left it out.
    pub packet: NodePacket,
    /// Target and flags.
    pub opts: BroadcastOptions,
}

impl ClassicBroadcast {
    /// The message bytes.
    pub fn encode(&self) -> Bytes {
        let out = Out::Array(vec![
            Out::Str(&self.uid),
            self.packet.out(),
            self.opts.out(),
        ]);
        wire::encode(&out, Encoding::MsgPack)
    }

    /// Read a broadcast. Items after the third are ignored, as the
    /// reference does.
    pub fn decode(data: &[u8], limits: &BusLimits) -> Result<ClassicBroadcast, BusDecodeError> {
        let (value, _) = wire::decode(data, limits)?;
        let Value::Array(items) = value else {
            return Err(wire::error("broadcast is not an array"));
        };
        let mut items = items.into_iter();
        let (Some(uid), Some(packet), Some(opts)) = (items.next(), items.next(), items.next())
        else {
            return Err(wire::error("broadcast has fewer than 3 items"));
        };
        let Value::String(uid) = uid else {
            return Err(wire::error("broadcast uid is not a string"));
        };
        let mut packet = NodePacket::from_fields(Fields::new(packet, "packet")?)?;
        packet.nsp.get_or_insert_with(|| "/".to_owned());
        let opts = BroadcastOptions::from_fields(Fields::new(opts, "broadcast options")?)?;
        Ok(ClassicBroadcast { uid, packet, opts })
    }
}

// ---------------------------------------------------------------------------
// Requests

const SOCKETS: u64 = 0;
const ALL_ROOMS: u64 = 1;
const REMOTE_JOIN: u64 = 2;
const REMOTE_LEAVE: u64 = 3;
const REMOTE_DISCONNECT: u64 = 4;
const REMOTE_FETCH: u64 = 5;
const SERVER_SIDE_EMIT: u64 = 6;
const BROADCAST: u64 = 7;
const BROADCAST_CLIENT_COUNT: u64 = 8;
const BROADCAST_ACK: u64 = 9;

/// A message on the request channel. `uid` is the sender's (absent in the
/// emitter's join, leave and disconnect requests).
#[derive(Debug, Clone, PartialEq)]
pub enum ClassicRequest {
    /// `SOCKETS` (0, legacy): the ids of the sockets in `rooms`.
    Sockets {
        /// Sender.
        uid: Option<String>,
        /// Request id.
        request_id: String,
        /// Rooms (all sockets when empty).
        rooms: Vec<String>,
    },
    /// `ALL_ROOMS` (1): every room of every node.
    AllRooms {
        /// Sender.
        uid: Option<String>,
        /// Request id.
        request_id: String,
    },
    /// `REMOTE_JOIN` (2) with `opts`: the selected sockets join `rooms`.
    SocketsJoin {
        /// Sender.
        uid: Option<String>,
        /// Which sockets.
        opts: RoomSelection,
        /// Rooms to join.
        rooms: Vec<String>,
    },
    /// `REMOTE_LEAVE` (3) with `opts`: the selected sockets leave `rooms`.
    SocketsLeave {
        /// Sender.
        uid: Option<String>,
        /// Which sockets.
        opts: RoomSelection,
        /// Rooms to leave.
        rooms: Vec<String>,
    },
    /// `REMOTE_DISCONNECT` (4) with `opts`: disconnect the selected
    /// sockets (`close`: close their whole connection).
    DisconnectSockets {
        /// Sender.
        uid: Option<String>,
        /// Which sockets.
        opts: RoomSelection,
        /// Close the underlying connection too.
        close: bool,
    },
    /// `REMOTE_JOIN` (2) without `opts` (legacy): socket `sid` joins
    /// `room`; its node answers [`ClassicResponse::Done`].
    RemoteJoin {
        /// Sender.
        uid: Option<String>,
        /// Request id.
        request_id: String,
        /// The socket.
        sid: String,
        /// The room.
        room: String,
    },
    /// `REMOTE_LEAVE` (3) without `opts` (legacy).
    RemoteLeave {
        /// Sender.
        uid: Option<String>,
        /// Request id.
        request_id: String,
        /// The socket.
        sid: String,
        /// The room.
        room: String,
    },
    /// `REMOTE_DISCONNECT` (4) without `opts` (legacy).
    RemoteDisconnect {
        /// Sender.
        uid: Option<String>,
        /// Request id.
        request_id: String,
        /// The socket.
        sid: String,
        /// Close the underlying connection too.
        close: bool,
    },
    /// `REMOTE_FETCH` (5): describe the selected sockets.
    FetchSockets {
        /// Sender.
        uid: Option<String>,
        /// Request id.
        request_id: String,
        /// Which sockets.
        opts: RoomSelection,
    },
    /// `SERVER_SIDE_EMIT` (6): an event for the other nodes' server-side
    /// handlers; with a request id, each answers once.
    ServerSideEmit {
        /// Sender.
        uid: Option<String>,
        /// Present when the sender waits for acknowledgements.
        request_id: Option<String>,
        /// `[event, args..]`.
        data: Vec<Value>,
    },
    /// `BROADCAST` (7): a broadcast whose clients acknowledge (MessagePack).
    Broadcast {
        /// Sender.
        uid: Option<String>,
        /// Request id.
        request_id: String,
        /// The packet.
        packet: NodePacket,
        /// Target and flags (`flags.timeout` bounds the wait).
        opts: BroadcastOptions,
    },
}

fn opt_str(s: &Option<String>) -> Option<Out<'_>> {
    s.as_deref().map(Out::Str)
}

/// A map of the entries that are present.
fn map_of<'a>(entries: Vec<(&'static str, Option<Out<'a>>)>) -> Out<'a> {
    Out::Map(
        entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
    )
}

impl ClassicRequest {
    /// The sender's uid, when it gave one.
    pub fn uid(&self) -> Option<&str> {
        match self {
            ClassicRequest::Sockets { uid, .. }
            | ClassicRequest::AllRooms { uid, .. }
            | ClassicRequest::SocketsJoin { uid, .. }
            | ClassicRequest::SocketsLeave { uid, .. }
            | ClassicRequest::DisconnectSockets { uid, .. }
            | ClassicRequest::RemoteJoin { uid, .. }
            | ClassicRequest::RemoteLeave { uid, .. }
            | ClassicRequest::RemoteDisconnect { uid, .. }
            | ClassicRequest::FetchSockets { uid, .. }
            | ClassicRequest::ServerSideEmit { uid, .. }
            | ClassicRequest::Broadcast { uid, .. } => uid.as_deref(),
        }
    }

    /// The request id, for requests that are answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClassicRequest::Sockets { request_id, .. }
            | ClassicRequest::AllRooms { request_id, .. }
            | ClassicRequest::RemoteJoin { request_id, .. }
            | ClassicRequest::RemoteLeave { request_id, .. }
            | ClassicRequest::RemoteDisconnect { request_id, .. }
            | ClassicRequest::FetchSockets { request_id, .. }
            | ClassicRequest::Broadcast { request_id, .. } => Some(request_id),
            ClassicRequest::ServerSideEmit { request_id, .. } => request_id.as_deref(),
            ClassicRequest::SocketsJoin { .. }
            | ClassicRequest::SocketsLeave { .. }
            | ClassicRequest::DisconnectSockets { .. } => None,
        }
    }

    /// The message bytes: MessagePack for [`ClassicRequest::Broadcast`],
    /// JSON for the others (MessagePack when they hold binary, which the
    /// reference reads too and which keeps binary intact).
    pub fn encode(&self) -> Bytes {
        let ty = |t| Some(Out::UInt(t));
        let out = match self {
            ClassicRequest::Sockets {
                uid,
                request_id,
                rooms,
            } => map_of(vec![
                ("uid", opt_str(uid)),
                ("requestId", Some(Out::Str(request_id))),
                ("type", ty(SOCKETS)),
                ("rooms", Some(Out::strs(rooms))),
            ]),
            ClassicRequest::AllRooms { uid, request_id } => map_of(vec![
                ("uid", opt_str(uid)),
                ("requestId", Some(Out::Str(request_id))),
                ("type", ty(ALL_ROOMS)),
            ]),
            ClassicRequest::SocketsJoin { uid, opts, rooms }
            | ClassicRequest::SocketsLeave { uid, opts, rooms } => {
                let t = if matches!(self, ClassicRequest::SocketsJoin { .. }) {
                    REMOTE_JOIN
                } else {
                    REMOTE_LEAVE
                };
                map_of(vec![
                    ("uid", opt_str(uid)),
                    ("type", ty(t)),
                    ("opts", Some(opts.out())),
                    ("rooms", Some(Out::strs(rooms))),
                ])
            }
            ClassicRequest::DisconnectSockets { uid, opts, close } => map_of(vec![
                ("uid", opt_str(uid)),
                ("type", ty(REMOTE_DISCONNECT)),
                ("opts", Some(opts.out())),
                ("close", Some(Out::Bool(*close))),
            ]),
            ClassicRequest::RemoteJoin {
                uid,
                request_id,
                sid,
                room,
            }
            | ClassicRequest::RemoteLeave {
                uid,
                request_id,
                sid,
                room,
            } => {
                let t = if matches!(self, ClassicRequest::RemoteJoin { .. }) {
                    REMOTE_JOIN
                } else {
                    REMOTE_LEAVE
                };
                map_of(vec![
                    ("uid", opt_str(uid)),
                    ("requestId", Some(Out::Str(request_id))),
                    ("type", ty(t)),
                    ("sid", Some(Out::Str(sid))),
                    ("room", Some(Out::Str(room))),
                ])
            }
            ClassicRequest::RemoteDisconnect {
                uid,
                request_id,
                sid,
                close,
            } => map_of(vec![
                ("uid", opt_str(uid)),
                ("requestId", Some(Out::Str(request_id))),
                ("type", ty(REMOTE_DISCONNECT)),
                ("sid", Some(Out::Str(sid))),
                ("close", Some(Out::Bool(*close))),
            ]),
            ClassicRequest::FetchSockets {
                uid,
                request_id,
                opts,
            } => map_of(vec![
                ("uid", opt_str(uid)),
                ("requestId", Some(Out::Str(request_id))),
                ("type", ty(REMOTE_FETCH)),
                ("opts", Some(opts.out())),
            ]),
            ClassicRequest::ServerSideEmit {
                uid,
                request_id,
                data,
            } => map_of(vec![
                ("uid", opt_str(uid)),
                ("requestId", opt_str(request_id)),
                ("type", ty(SERVER_SIDE_EMIT)),
                (
                    "data",
                    Some(Out::Array(data.iter().map(Out::Value).collect())),
                ),
            ]),
            ClassicRequest::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            } => {
                let out = map_of(vec![
                    ("uid", opt_str(uid)),
                    ("requestId", Some(Out::Str(request_id))),
                    ("type", ty(BROADCAST)),
                    ("packet", Some(packet.out())),
                    ("opts", Some(opts.out())),
                ]);
                return wire::encode(&out, Encoding::MsgPack);
            }
        };
        wire::encode_json_unless_binary(&out)
    }

    /// Read a request (JSON or MessagePack).
    pub fn decode(data: &[u8], limits: &BusLimits) -> Result<ClassicRequest, BusDecodeError> {
        let (value, _) = wire::decode(data, limits)?;
        let mut f = Fields::new(value, "request")?;
        let uid = f.opt_string("uid")?;
        let request_type = f.u64("type")?;
        // The reference tells the broadcast forms of join, leave and
        // disconnect from the legacy single-socket ones by `opts`.
        let with_opts = f.has("opts");
        let selection = |f: &mut Fields| -> Result<RoomSelection, BusDecodeError> {
            RoomSelection::from_fields(f.map("opts", "request options")?)
        };
        Ok(match request_type {
            SOCKETS => ClassicRequest::Sockets {
                uid,
                request_id: f.string("requestId")?,
                rooms: f.rooms("rooms")?,
            },
            ALL_ROOMS => ClassicRequest::AllRooms {
                uid,
                request_id: f.string("requestId")?,
            },
            REMOTE_JOIN if with_opts => ClassicRequest::SocketsJoin {
                uid,
                opts: selection(&mut f)?,
                rooms: f.rooms("rooms")?,
            },
            REMOTE_LEAVE if with_opts => ClassicRequest::SocketsLeave {
                uid,
                opts: selection(&mut f)?,
                rooms: f.rooms("rooms")?,
            },
            REMOTE_DISCONNECT if with_opts => ClassicRequest::DisconnectSockets {
                uid,
                opts: selection(&mut f)?,
                close: f.opt_bool("close")?.unwrap_or(false),
            },
            REMOTE_JOIN => ClassicRequest::RemoteJoin {
                uid,
                request_id: f.string("requestId")?,
                sid: f.string("sid")?,
                room: f.string("room")?,
            },
            REMOTE_LEAVE => ClassicRequest::RemoteLeave {
                uid,
                request_id: f.string("requestId")?,
                sid: f.string("sid")?,
                room: f.string("room")?,
            },
            REMOTE_DISCONNECT => ClassicRequest::RemoteDisconnect {
                uid,
                request_id: f.string("requestId")?,
                sid: f.string("sid")?,
                close: f.opt_bool("close")?.unwrap_or(false),
            },
            REMOTE_FETCH => ClassicRequest::FetchSockets {
                uid,
                request_id: f.string("requestId")?,
                opts: selection(&mut f)?,
            },
            SERVER_SIDE_EMIT => ClassicRequest::ServerSideEmit {
                uid,
                request_id: f.opt_string("requestId")?,
                data: f.array("data")?,
            },
            BROADCAST => ClassicRequest::Broadcast {
                uid,
                request_id: f.string("requestId")?,
                packet: NodePacket::from_fields(f.map("packet", "packet")?)?,
                opts: BroadcastOptions::from_fields(f.map("opts", "broadcast options")?)?,
            },
            other => return Err(wire::error(format!("request type {other} unknown"))),
        })
    }
}

// ---------------------------------------------------------------------------
// Responses

/// A message on a response channel, matched to its request by
/// `request_id`.
///
/// Only three responses carry a `type`; the others are told apart by their
/// keys, since the reference interprets them by the request they answer:
/// `type` 6, 8 or 9 first; then `sockets` (socket ids when every item is a
/// string and there is at least one, [`FetchedSocket`]s otherwise, so an
/// empty list reads as [`ClassicResponse::FetchSockets`]); then `rooms`;
/// a bare `{requestId}` is [`ClassicResponse::Done`].
#[derive(Debug, Clone, PartialEq)]
pub enum ClassicResponse {
    /// Answer to [`ClassicRequest::Sockets`]: `{requestId, sockets}`.
    SocketIds {
        /// Request id.
        request_id: String,
        /// Socket ids.
        sockets: Vec<String>,
    },
    /// Answer to [`ClassicRequest::FetchSockets`]: `{requestId, sockets}`.
    FetchSockets {
        /// Request id.
        request_id: String,
        /// The responder's matching sockets.
        sockets: Vec<FetchedSocket>,
    },
    /// Answer to [`ClassicRequest::AllRooms`]: `{requestId, rooms}`.
    AllRooms {
        /// Request id.
        request_id: String,
        /// The responder's rooms.
        rooms: Vec<String>,
    },
    /// Answer to a legacy [`ClassicRequest::RemoteJoin`], `RemoteLeave`
    /// or `RemoteDisconnect`: `{requestId}`.
    Done {
        /// Request id.
        request_id: String,
    },
    /// Answer to [`ClassicRequest::ServerSideEmit`] with a request id:
    /// `{type: 6, requestId, data}`.
    ServerSideEmit {
        /// Request id.
        request_id: String,
        /// The handler's acknowledgement argument.
        data: Value,
    },
    /// First answer to [`ClassicRequest::Broadcast`]: `{type: 8,
    /// requestId, clientCount}`.
    BroadcastClientCount {
        /// Request id.
        request_id: String,
        /// How many clients the responder sent the packet to.
        client_count: u64,
    },
    /// One client's acknowledgement of a [`ClassicRequest::Broadcast`]:
    /// `{type: 9, requestId, packet}` (MessagePack).
    BroadcastAck {
        /// Request id.
        request_id: String,
        /// The client's (first) acknowledgement argument.
        packet: Value,
    },
}

impl ClassicResponse {
    /// The id of the request answered.
    pub fn request_id(&self) -> &str {
        match self {
            ClassicResponse::SocketIds { request_id, .. }
            | ClassicResponse::FetchSockets { request_id, .. }
            | ClassicResponse::AllRooms { request_id, .. }
            | ClassicResponse::Done { request_id }
            | ClassicResponse::ServerSideEmit { request_id, .. }
            | ClassicResponse::BroadcastClientCount { request_id, .. }
            | ClassicResponse::BroadcastAck { request_id, .. } => request_id,
        }
    }

    /// The message bytes: MessagePack for
    /// [`ClassicResponse::BroadcastAck`], JSON for the others (MessagePack
    /// when they hold binary).
    pub fn encode(&self) -> Bytes {
        let out = match self {
            ClassicResponse::SocketIds {
                request_id,
                sockets,
            } => Out::Map(vec![
                ("requestId", Out::Str(request_id)),
                ("sockets", Out::strs(sockets)),
            ]),
            ClassicResponse::FetchSockets {
                request_id,
                sockets,
            } => Out::Map(vec![
                ("requestId", Out::Str(request_id)),
                ("sockets", FetchedSocket::list_out(sockets)),
            ]),
            ClassicResponse::AllRooms { request_id, rooms } => Out::Map(vec![
                ("requestId", Out::Str(request_id)),
                ("rooms", Out::strs(rooms)),
            ]),
            ClassicResponse::Done { request_id } => {
                Out::Map(vec![("requestId", Out::Str(request_id))])
            }
            ClassicResponse::ServerSideEmit { request_id, data } => {
                let mut entries = vec![
                    ("type", Out::UInt(SERVER_SIDE_EMIT)),
                    ("requestId", Out::Str(request_id)),
                ];
                // JSON.stringify leaves out an `undefined` argument.
                if *data != Value::Null {
                    entries.push(("data", Out::Value(data)));
                }
                Out::Map(entries)
            }
            ClassicResponse::BroadcastClientCount {
                request_id,
                client_count,
            } => Out::Map(vec![
                ("type", Out::UInt(BROADCAST_CLIENT_COUNT)),
                ("requestId", Out::Str(request_id)),
                ("clientCount", Out::UInt(*client_count)),
            ]),
            ClassicResponse::BroadcastAck { request_id, packet } => {
                let out = Out::Map(vec![
                    ("type", Out::UInt(BROADCAST_ACK)),
                    ("requestId", Out::Str(request_id)),
                    ("packet", Out::Value(packet)),
                ]);
                return wire::encode(&out, Encoding::MsgPack);
            }
        };
        wire::encode_json_unless_binary(&out)
    }

    /// Read a response (JSON or MessagePack).
    pub fn decode(data: &[u8], limits: &BusLimits) -> Result<ClassicResponse, BusDecodeError> {
        let (value, _) = wire::decode(data, limits)?;
        let mut f = Fields::new(value, "response")?;
        let request_id = f.string("requestId")?;
        match f.opt_u64("type")? {
            Some(SERVER_SIDE_EMIT) => {
                return Ok(ClassicResponse::ServerSideEmit {
                    request_id,
                    data: f.value("data"),
                })
            }
            Some(BROADCAST_CLIENT_COUNT) => {
                return Ok(ClassicResponse::BroadcastClientCount {
                    request_id,
                    client_count: f.u64("clientCount")?,
                })
            }
            Some(BROADCAST_ACK) => {
                return Ok(ClassicResponse::BroadcastAck {
                    request_id,
                    packet: f.value("packet"),
                })
            }
            Some(other) => return Err(wire::error(format!("response type {other} unknown"))),
            None => {}
        }
        if f.has("sockets") {
            let items = f.array("sockets")?;
            let ids = !items.is_empty() && items.iter().all(|v| matches!(v, Value::String(_)));
            if ids {
                let sockets = items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                return Ok(ClassicResponse::SocketIds {
                    request_id,
                    sockets,
                });
            }
            return Ok(ClassicResponse::FetchSockets {
                request_id,
                sockets: FetchedSocket::list_from(items)?,
            });
        }
        if f.has("rooms") {
            return Ok(ClassicResponse::AllRooms {
                request_id,
                rooms: f.rooms("rooms")?,
            });
        }
        Ok(ClassicResponse::Done { request_id })
    }
}
