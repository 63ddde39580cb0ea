//! The Node redis-adapter's formats (classic and sharded) as the seam's
//! operations.
//!
//! Differences from the reference that a peer can see: our node applies
//! joins, leaves and disconnections by selection locally before it
//! publishes them and skips its own request when it comes back (the
//! classic reference applies it only when it comes back: same result),
//! and its fetch-sockets answers carry an empty handshake (the core does
//! not keep the HTTP request).

use std::time::Duration;

use rand_core::RngCore;

use super::super::ops::{Answer, Inbound, Outbound, ReplyTo};
use super::super::RemoteSocket;
use crate::cluster::node::{
    BroadcastFlags, BroadcastOptions, ClassicBroadcast, ClassicChannel, ClassicChannels,
    ClassicRequest, ClassicResponse, FetchedSocket, NodePacket, RoomSelection, ShardedChannels,
    ShardedData, ShardedMessage, SubscriptionMode,
};
use crate::cluster::{BusCommand, BusDecodeError, BusLimits, ChannelKind};
use crate::socket::adapter::RoomSelector;
use crate::value::Value;
use crate::Str;

enum Channels {
    Classic(ClassicChannels),
    Sharded(ShardedChannels, SubscriptionMode),
}

pub(in super::super) struct NodeFormat {
    channels: Channels,
    uid: String,
}

fn strings(rooms: &[Str]) -> Vec<String> {
    rooms.iter().map(|r| r.to_string()).collect()
}

fn strs(rooms: Vec<String>) -> Vec<Str> {
    rooms.into_iter().map(Str::from).collect()
}

fn selection(selector: &RoomSelector) -> RoomSelection {
    RoomSelection {
        rooms: strings(&selector.rooms),
        except: strings(&selector.except),
    }
}

fn options(selector: &RoomSelector, flags: BroadcastFlags) -> BroadcastOptions {
    BroadcastOptions {
        rooms: strings(&selector.rooms),
        except: strings(&selector.except),
        flags,
    }
}

fn selector_of(rooms: Vec<String>, except: Vec<String>) -> RoomSelector {
    RoomSelector {
        rooms: strs(rooms),
        except: strs(except),
    }
}

/// `[event, args..]` of an event packet.
fn event_data(event: &str, args: &[Value]) -> Vec<Value> {
    let mut data = Vec::with_capacity(1 + args.len());
    data.push(Value::String(event.to_owned()));
    data.extend_from_slice(args);
    data
}

/// The event name and arguments of `[event, args..]`.
fn split_event(data: Vec<Value>) -> Result<(Str, Vec<Value>), BusDecodeError> {
    let mut items = data.into_iter();
    match items.next() {
        Some(Value::String(event)) => Ok((Str::from(event), items.collect())),
        _ => Err(BusDecodeError("event data without an event name".into())),
    }
}

fn event_packet(packet: NodePacket) -> Result<(Str, Vec<Value>), BusDecodeError> {
    // 2 EVENT, 5 BINARY_EVENT: socket.io decides binary at encode time.
    if !matches!(packet.packet_type, 2 | 5) {
        return Err(BusDecodeError(format!(
            "broadcast of packet type {} is not an event",
            packet.packet_type
        )));
    }
    match packet.data {
        Value::Array(data) => split_event(data),
        _ => Err(BusDecodeError("event packet data is not an array".into())),
    }
}

fn first(args: &[Value]) -> Value {
    args.first().cloned().unwrap_or(Value::Null)
}

/// What the seam's answer is on the wire: the first acknowledgement
/// argument, as the references keep only that.
fn fetched(sockets: &[RemoteSocket]) -> Vec<FetchedSocket> {
    sockets
        .iter()
        .map(|s| FetchedSocket {
            id: s.id.to_string(),
            handshake: Value::Object(vec![
                ("headers".into(), Value::Object(Vec::new())),
                ("query".into(), Value::Object(Vec::new())),
                ("auth".into(), Value::Object(Vec::new())),
            ]),
            rooms: strings(&s.rooms),
            data: s.data.clone(),
        })
        .collect()
}

fn remote_sockets(sockets: Vec<FetchedSocket>) -> Vec<RemoteSocket> {
    sockets
        .into_iter()
        .map(|s| RemoteSocket {
            id: Str::from(s.id),
            rooms: strs(s.rooms),
            data: s.data,
        })
        .collect()
}

fn timeout_of(flags: &BroadcastFlags) -> Option<Duration> {
    flags.timeout.map(Duration::from_millis)
}

impl NodeFormat {
    pub(in super::super) fn new(
        prefix: Str,
        sharded: bool,
        node_id: Option<Str>,
        rng: &mut dyn RngCore,
    ) -> NodeFormat {
        let uid = node_uid(node_id, rng);
        let channels = if sharded {
            Channels::Sharded(
                ShardedChannels::new(prefix.to_string()),
                SubscriptionMode::Dynamic,
            )
        } else {
            Channels::Classic(ClassicChannels::new(prefix.to_string()))
        };
        NodeFormat { channels, uid }
    }

    pub(in super::super) fn node_id(&self) -> &str {
        &self.uid
    }

    pub(in super::super) fn subscriptions(
        &self,
        nsp: &Str,
        created: bool,
        out: &mut Vec<BusCommand>,
    ) {
        let commands = match &self.channels {
            Channels::Classic(c) => c.subscriptions(nsp, &self.uid),
            Channels::Sharded(c, _) => c.subscriptions(nsp, &self.uid),
        };
        for command in commands {
            out.push(match (command, created) {
                (command, true) => command,
                (BusCommand::Subscribe { channel, kind }, false) => {
                    BusCommand::Unsubscribe { channel, kind }
                }
                (command, false) => command,
            });
        }
    }

    /// Whether rooms have channels of their own (the sharded adapter's
    /// dynamic modes); `own_ids` tells whether a socket's own room does.
    pub(in super::super) fn room_channels(&self) -> Option<bool> {
        match &self.channels {
            Channels::Sharded(_, SubscriptionMode::Dynamic) => Some(false),
            Channels::Sharded(_, SubscriptionMode::DynamicPrivate) => Some(true),
            _ => None,
        }
    }

    /// Listen on (or stop listening on) a room's channel.
    pub(in super::super) fn room_subscription(
        &self,
        nsp: &Str,
        room: &Str,
        created: bool,
        out: &mut Vec<BusCommand>,
    ) {
        if let Channels::Sharded(c, _) = &self.channels {
            let channel = c.room(nsp, room);
            let kind = ChannelKind::Sharded;
            out.push(if created {
                BusCommand::Subscribe { channel, kind }
            } else {
                BusCommand::Unsubscribe { channel, kind }
            });
        }
    }

    pub(in super::super) fn count_command(&self, nsp: &Str) -> BusCommand {
        match &self.channels {
            Channels::Classic(c) => c.count_nodes(nsp),
            Channels::Sharded(c, _) => c.count_nodes(nsp),
        }
    }

    fn request_id(&self, request: u64) -> String {
        request_id(&self.uid, request)
    }

    fn our_request(&self, request_id: &str) -> Option<u64> {
        our_request(&self.uid, request_id)
    }

    pub(in super::super) fn encode(&mut self, op: Outbound<'_>, out: &mut Vec<BusCommand>) -> bool {
        match &self.channels {
            Channels::Classic(_) => self.encode_classic(op, out),
            Channels::Sharded(..) => self.encode_sharded(op, out),
        }
    }

    fn encode_classic(&self, op: Outbound<'_>, out: &mut Vec<BusCommand>) -> bool {
        let Channels::Classic(c) = &self.channels else {
            unreachable!("classic channels")
        };
        let uid = Some(self.uid.clone());
        let publish = |out: &mut Vec<BusCommand>, channel: Str, payload| {
            out.push(BusCommand::Publish {
                channel,
                payload,
                sharded: false,
            })
        };
        match op {
            Outbound::Broadcast {
                nsp,
                selector,
                volatile,
                event,
                args,
                ack: None,
            } => {
                let flags = BroadcastFlags {
                    volatile: volatile.then_some(true),
                    ..BroadcastFlags::default()
                };
                let message = ClassicBroadcast {
                    uid: self.uid.clone(),
                    packet: NodePacket::event(event_data(event, args), Some(nsp.to_string())),
                    opts: options(selector, flags),
                };
                let channel = c.broadcast_to(nsp, &message.opts.rooms);
                publish(out, channel, message.encode());
            }
            Outbound::Broadcast {
                nsp,
                selector,
                volatile,
                event,
                args,
                ack: Some((request, timeout)),
            } => {
                let flags = BroadcastFlags {
                    volatile: volatile.then_some(true),
                    timeout: Some(timeout.as_millis().try_into().unwrap_or(u64::MAX)),
                    ..BroadcastFlags::default()
                };
                let message = ClassicRequest::Broadcast {
                    uid,
                    request_id: self.request_id(request),
                    packet: NodePacket::event(event_data(event, args), Some(nsp.to_string())),
                    opts: options(selector, flags),
                };
                publish(out, c.request(nsp), message.encode());
            }
            Outbound::Join {
                nsp,
                selector,
                rooms,
            } => {
                let message = ClassicRequest::SocketsJoin {
                    uid,
                    opts: selection(selector),
                    rooms: strings(rooms),
                };
                publish(out, c.request(nsp), message.encode());
            }
            Outbound::Leave {
                nsp,
                selector,
                rooms,
            } => {
                let message = ClassicRequest::SocketsLeave {
                    uid,
                    opts: selection(selector),
                    rooms: strings(rooms),
                };
                publish(out, c.request(nsp), message.encode());
            }
            Outbound::Disconnect {
                nsp,
                selector,
                close,
            } => {
                let message = ClassicRequest::DisconnectSockets {
                    uid,
                    opts: selection(selector),
                    close,
                };
                publish(out, c.request(nsp), message.encode());
            }
            Outbound::CloseRoom { nsp, room } => {
                // The adapter has no close_room message: every socket of
                // the room leaves it.
                let message = ClassicRequest::SocketsLeave {
                    uid,
                    opts: RoomSelection {
                        rooms: vec![room.to_string()],
                        except: Vec::new(),
                    },
                    rooms: vec![room.to_string()],
                };
                publish(out, c.request(nsp), message.encode());
            }
            Outbound::FetchSockets {
                request,
                nsp,
                selector,
            } => {
                let message = ClassicRequest::FetchSockets {
                    uid,
                    request_id: self.request_id(request),
                    opts: selection(selector),
                };
                publish(out, c.request(nsp), message.encode());
            }
            Outbound::AllRooms { request, nsp } => {
                let message = ClassicRequest::AllRooms {
                    uid,
                    request_id: self.request_id(request),
                };
                publish(out, c.request(nsp), message.encode());
            }
            Outbound::ServerSideEmit {
                request,
                nsp,
                event,
                args,
            } => {
                let message = ClassicRequest::ServerSideEmit {
                    uid,
                    request_id: request.map(|r| self.request_id(r)),
                    data: event_data(event, args),
                };
                publish(out, c.request(nsp), message.encode());
            }
            Outbound::Reply {
                to: ReplyTo::Node {
                    request_id, nsp, ..
                },
                answer,
            } => {
                let request_id = request_id.to_string();
                let message = match answer {
                    Answer::Sockets(sockets) => ClassicResponse::FetchSockets {
                        request_id,
                        sockets: fetched(sockets),
                    },
                    Answer::Rooms(rooms) => ClassicResponse::AllRooms {
                        request_id,
                        rooms: strings(rooms),
                    },
                    Answer::ServerSideAck(args) => ClassicResponse::ServerSideEmit {
                        request_id,
                        data: first(args),
                    },
                    Answer::ClientCount(count) => ClassicResponse::BroadcastClientCount {
                        request_id,
                        client_count: *count,
                    },
                    Answer::Ack { args, .. } => ClassicResponse::BroadcastAck {
                        request_id,
                        packet: first(args),
                    },
                };
                publish(out, c.response(nsp), message.encode());
            }
            Outbound::Reply { .. } => return false,
        }
        true
    }

    fn encode_sharded(&self, op: Outbound<'_>, out: &mut Vec<BusCommand>) -> bool {
        let Channels::Sharded(c, mode) = &self.channels else {
            unreachable!("sharded channels")
        };
        let Some((message, response_to)) = sharded_message(&self.uid, op) else {
            return false;
        };
        let channel = match response_to {
            Some(uid) => c.response(&message.nsp, &uid),
            None => c.publish_channel(*mode, &message),
        };
        out.push(BusCommand::Publish {
            channel,
            payload: message.encode(),
            sharded: true,
        });
        true
    }

    pub(in super::super) fn decode(
        &self,
        channel: &str,
        payload: &[u8],
        limits: &BusLimits,
    ) -> Result<Option<Inbound>, BusDecodeError> {
        match &self.channels {
            Channels::Classic(c) => self.decode_classic(c, channel, payload, limits),
            Channels::Sharded(..) => self.decode_sharded(payload, limits),
        }
    }

    fn decode_classic(
        &self,
        c: &ClassicChannels,
        channel: &str,
        payload: &[u8],
        limits: &BusLimits,
    ) -> Result<Option<Inbound>, BusDecodeError> {
        // `<prefix>#<nsp>#..`, `<prefix>-request#<nsp>#`, `<prefix>-response#<nsp>#..`
        let Some(rest) = channel.strip_prefix(c.prefix()) else {
            return Ok(None);
        };
        let rest = rest
            .strip_prefix("-request#")
            .or_else(|| rest.strip_prefix("-response#"))
            .or_else(|| rest.strip_prefix('#'))
            .unwrap_or("");
        let Some(nsp) = rest.split('#').next().filter(|n| n.starts_with('/')) else {
            return Ok(None);
        };
        let nsp_str = Str::from(nsp);
        match c.classify(nsp, channel) {
            Some(ClassicChannel::Broadcast { .. }) => {
                let message = ClassicBroadcast::decode(payload, limits)?;
                if message.uid == self.uid {
                    return Ok(None);
                }
                let packet_nsp = message.packet.nsp.clone().unwrap_or_else(|| "/".into());
                if packet_nsp != nsp {
                    return Ok(None);
                }
                let (event, args) = event_packet(message.packet)?;
                Ok(Some(Inbound::Broadcast {
                    nsp: nsp_str,
                    volatile: message.opts.flags.volatile == Some(true),
                    selector: selector_of(message.opts.rooms, message.opts.except),
                    event,
                    args,
                    ack: None,
                    timeout: None,
                }))
            }
            Some(ClassicChannel::Request) => {
                let request = ClassicRequest::decode(payload, limits)?;
                if request.uid() == Some(self.uid.as_str()) {
                    return Ok(None);
                }
                let reply = |request_id: String, uid: Option<String>| ReplyTo::Node {
                    request_id: Str::from(request_id),
                    uid: Str::from(uid.unwrap_or_default()),
                    nsp: nsp_str.clone(),
                };
                Ok(Some(match request {
                    ClassicRequest::SocketsJoin { opts, rooms, .. } => Inbound::Join {
                        nsp: nsp_str.clone(),
                        selector: selector_of(opts.rooms, opts.except),
                        rooms: strs(rooms),
                    },
                    ClassicRequest::SocketsLeave { opts, rooms, .. } => Inbound::Leave {
                        nsp: nsp_str.clone(),
                        selector: selector_of(opts.rooms, opts.except),
                        rooms: strs(rooms),
                    },
                    ClassicRequest::DisconnectSockets { opts, close, .. } => Inbound::Disconnect {
                        nsp: nsp_str.clone(),
                        selector: selector_of(opts.rooms, opts.except),
                        close,
                    },
                    ClassicRequest::FetchSockets {
                        uid,
                        request_id,
                        opts,
                    } => Inbound::FetchSockets {
                        nsp: nsp_str.clone(),
                        selector: selector_of(opts.rooms, opts.except),
                        reply: reply(request_id, uid),
                    },
                    ClassicRequest::AllRooms { uid, request_id } => Inbound::AllRooms {
                        nsp: nsp_str.clone(),
                        reply: reply(request_id, uid),
                    },
                    ClassicRequest::ServerSideEmit {
                        uid,
                        request_id,
                        data,
                    } => {
                        let (event, args) = split_event(data)?;
                        Inbound::ServerSideEmit {
                            nsp: nsp_str.clone(),
                            event,
                            args,
                            reply: request_id.map(|id| reply(id, uid)),
                        }
                    }
                    ClassicRequest::Broadcast {
                        uid,
                        request_id,
                        packet,
                        opts,
                    } => {
                        let (event, args) = event_packet(packet)?;
                        Inbound::Broadcast {
                            nsp: nsp_str.clone(),
                            volatile: opts.flags.volatile == Some(true),
                            timeout: timeout_of(&opts.flags),
                            selector: selector_of(opts.rooms, opts.except),
                            event,
                            args,
                            ack: Some(reply(request_id, uid)),
                        }
                    }
                    // Adapters before 7.0; nothing of this era talks to us.
                    ClassicRequest::Sockets { .. }
                    | ClassicRequest::RemoteJoin { .. }
                    | ClassicRequest::RemoteLeave { .. }
                    | ClassicRequest::RemoteDisconnect { .. } => {
                        tracing::debug!("legacy adapter request ignored");
                        return Ok(None);
                    }
                }))
            }
            Some(ClassicChannel::Response) => {
                let response = ClassicResponse::decode(payload, limits)?;
                let Some(request) = self.our_request(response.request_id()) else {
                    return Ok(None);
                };
                let answer = match response {
                    ClassicResponse::FetchSockets { sockets, .. } => {
                        Answer::Sockets(remote_sockets(sockets))
                    }
                    ClassicResponse::AllRooms { rooms, .. } => Answer::Rooms(strs(rooms)),
                    ClassicResponse::ServerSideEmit { data, .. } => {
                        Answer::ServerSideAck(vec![data])
                    }
                    ClassicResponse::BroadcastClientCount { client_count, .. } => {
                        Answer::ClientCount(client_count)
                    }
                    ClassicResponse::BroadcastAck { packet, .. } => Answer::Ack {
                        sid: None,
                        args: vec![packet],
                    },
                    ClassicResponse::SocketIds { .. } | ClassicResponse::Done { .. } => {
                        return Ok(None)
                    }
                };
                Ok(Some(Inbound::Answer { request, answer }))
            }
            None => Ok(None),
        }
    }

    fn decode_sharded(
        &self,
        payload: &[u8],
        limits: &BusLimits,
    ) -> Result<Option<Inbound>, BusDecodeError> {
        sharded_inbound(&self.uid, ShardedMessage::decode(payload, limits)?)
    }
}

/// `node_id`, or a random uid: the references' uids are 6 alphanumerics
/// (classic) or 16 hex digits (sharded, streams); any unique string works.
pub(super) fn node_uid(node_id: Option<Str>, rng: &mut dyn RngCore) -> String {
    node_id.map_or_else(
        || {
            let mut bytes = [0u8; 8];
            rng.fill_bytes(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        },
        |id| id.to_string(),
    )
}

/// `<uid>:<n>`: request ids name their node, so a node knows its answers.
fn request_id(uid: &str, request: u64) -> String {
    format!("{uid}:{request}")
}

/// Our request number from a request id, if the request is ours.
fn our_request(uid: &str, request_id: &str) -> Option<u64> {
    let rest = request_id.strip_prefix(uid)?.strip_prefix(':')?;
    rest.parse().ok()
}

/// `op` as node `uid`'s `ClusterAdapter` message (the sharded and the
/// streams adapters' format) and, for a response, the requester's uid;
/// `None` when the format cannot say it.
pub(super) fn sharded_message(
    uid: &str,
    op: Outbound<'_>,
) -> Option<(ShardedMessage, Option<Str>)> {
    let (nsp, data, response_to) = sharded_data(uid, op)?;
    let message = ShardedMessage {
        uid: uid.to_owned(),
        nsp: nsp.to_string(),
        data,
    };
    Some((message, response_to))
}

fn sharded_data<'a>(uid: &str, op: Outbound<'a>) -> Option<(&'a Str, ShardedData, Option<Str>)> {
    Some(match op {
        Outbound::Broadcast {
            nsp,
            selector,
            volatile,
            event,
            args,
            ack,
        } => {
            let flags = BroadcastFlags {
                volatile: volatile.then_some(true),
                timeout: ack.map(|(_, t)| t.as_millis().try_into().unwrap_or(u64::MAX)),
                ..BroadcastFlags::default()
            };
            let data = ShardedData::Broadcast {
                packet: NodePacket::event(event_data(event, args), None),
                request_id: ack.map(|(r, _)| request_id(uid, r)),
                opts: options(selector, flags),
            };
            (nsp, data, None)
        }
        Outbound::Join {
            nsp,
            selector,
            rooms,
        } => (
            nsp,
            ShardedData::SocketsJoin {
                opts: options(selector, BroadcastFlags::default()),
                rooms: strings(rooms),
            },
            None,
        ),
        Outbound::Leave {
            nsp,
            selector,
            rooms,
        } => (
            nsp,
            ShardedData::SocketsLeave {
                opts: options(selector, BroadcastFlags::default()),
                rooms: strings(rooms),
            },
            None,
        ),
        Outbound::Disconnect {
            nsp,
            selector,
            close,
        } => (
            nsp,
            ShardedData::DisconnectSockets {
                opts: options(selector, BroadcastFlags::default()),
                close,
            },
            None,
        ),
        Outbound::CloseRoom { nsp, room } => (
            nsp,
            ShardedData::SocketsLeave {
                opts: BroadcastOptions {
                    rooms: vec![room.to_string()],
                    ..BroadcastOptions::default()
                },
                rooms: vec![room.to_string()],
            },
            None,
        ),
        Outbound::FetchSockets {
            request,
            nsp,
            selector,
        } => (
            nsp,
            ShardedData::FetchSockets {
                opts: options(selector, BroadcastFlags::default()),
                request_id: request_id(uid, request),
            },
            None,
        ),
        // The sharded adapter has no rooms request.
        Outbound::AllRooms { .. } => return None,
        Outbound::ServerSideEmit {
            request,
            nsp,
            event,
            args,
        } => (
            nsp,
            ShardedData::ServerSideEmit {
                request_id: request.map(|r| request_id(uid, r)),
                packet: event_data(event, args),
            },
            None,
        ),
        Outbound::Reply {
            to:
                ReplyTo::Node {
                    request_id,
                    uid,
                    nsp,
                },
            answer,
        } => {
            let request_id = request_id.to_string();
            let data = match answer {
                Answer::Sockets(sockets) => ShardedData::FetchSocketsResponse {
                    request_id,
                    sockets: fetched(sockets),
                },
                Answer::ServerSideAck(args) => ShardedData::ServerSideEmitResponse {
                    request_id,
                    packet: first(args),
                },
                Answer::ClientCount(count) => ShardedData::BroadcastClientCount {
                    request_id,
                    client_count: *count,
                },
                Answer::Ack { args, .. } => ShardedData::BroadcastAck {
                    request_id,
                    packet: first(args),
                },
                Answer::Rooms(_) => return None,
            };
            (nsp, data, Some(uid.clone()))
        }
        Outbound::Reply { .. } => return None,
    })
}

/// What a `ClusterAdapter` message from node `message.uid` asks of node
/// `uid`; `None` for its own messages and answers to other nodes.
pub(super) fn sharded_inbound(
    uid: &str,
    message: ShardedMessage,
) -> Result<Option<Inbound>, BusDecodeError> {
    if message.uid == uid {
        return Ok(None);
    }
    let nsp = Str::from(message.nsp);
    let reply = |request_id: String| ReplyTo::Node {
        request_id: Str::from(request_id),
        uid: Str::from(message.uid.as_str()),
        nsp: nsp.clone(),
    };
    let answer = |request_id: &str, answer| {
        our_request(uid, request_id).map(|request| Inbound::Answer { request, answer })
    };
    Ok(match message.data {
        ShardedData::Broadcast {
            packet,
            request_id,
            opts,
        } => {
            let (event, args) = event_packet(packet)?;
            Some(Inbound::Broadcast {
                nsp: nsp.clone(),
                volatile: opts.flags.volatile == Some(true),
                timeout: timeout_of(&opts.flags),
                selector: selector_of(opts.rooms, opts.except),
                event,
                args,
                ack: request_id.map(reply),
            })
        }
        ShardedData::SocketsJoin { opts, rooms } => Some(Inbound::Join {
            nsp: nsp.clone(),
            selector: selector_of(opts.rooms, opts.except),
            rooms: strs(rooms),
        }),
        ShardedData::SocketsLeave { opts, rooms } => Some(Inbound::Leave {
            nsp: nsp.clone(),
            selector: selector_of(opts.rooms, opts.except),
            rooms: strs(rooms),
        }),
        ShardedData::DisconnectSockets { opts, close } => Some(Inbound::Disconnect {
            nsp: nsp.clone(),
            selector: selector_of(opts.rooms, opts.except),
            close,
        }),
        ShardedData::FetchSockets { opts, request_id } => Some(Inbound::FetchSockets {
            nsp: nsp.clone(),
            selector: selector_of(opts.rooms, opts.except),
            reply: reply(request_id),
        }),
        ShardedData::ServerSideEmit { request_id, packet } => {
            let (event, args) = split_event(packet)?;
            Some(Inbound::ServerSideEmit {
                nsp: nsp.clone(),
                event,
                args,
                reply: request_id.map(reply),
            })
        }
        ShardedData::FetchSocketsResponse {
            request_id,
            sockets,
        } => answer(&request_id, Answer::Sockets(remote_sockets(sockets))),
        ShardedData::ServerSideEmitResponse { request_id, packet } => {
            answer(&request_id, Answer::ServerSideAck(vec![packet]))
        }
        ShardedData::BroadcastClientCount {
            request_id,
            client_count,
        } => answer(&request_id, Answer::ClientCount(client_count)),
        ShardedData::BroadcastAck { request_id, packet } => answer(
            &request_id,
            Answer::Ack {
                sid: None,
                args: vec![packet],
            },
        ),
        ShardedData::InitialHeartbeat | ShardedData::Heartbeat | ShardedData::AdapterClose => None,
    })
}
