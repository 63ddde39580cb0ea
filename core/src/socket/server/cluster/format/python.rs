//! python-socketio's pub/sub format as the seam's operations.
//!
//! One channel for everything. What python cannot say is refused (the
//! caller then acts locally only and logs it): fetching sockets, rooms of
//! other nodes, server-side emits, joins and disconnections of anything
//! but one socket id, and acknowledgements from more than one socket.
//! Rooms in `skip_sid` are read as rooms by our nodes (a socket id is a
//! room); python nodes compare them with socket ids only.

use rand_core::RngCore;

use super::super::ops::{Answer, Inbound, Outbound, ReplyTo};
use crate::cluster::python::{
    self, PyCallback, PyCallbackRequest, PyDecodeError, PyEmit, PyMessage, Rooms,
};
use crate::cluster::{BusCommand, BusDecodeError, BusLimits, ChannelKind};
use crate::socket::adapter::RoomSelector;
use crate::Str;

pub(in super::super) struct PythonFormat {
    channel: Str,
    host_id: String,
}

fn rooms(names: &[Str]) -> Rooms {
    match names {
        [] => Rooms::Unset,
        [one] => Rooms::One(one.to_string()),
        many => Rooms::Many(many.iter().map(|r| r.to_string()).collect()),
    }
}

fn names(rooms: &Rooms) -> Vec<Str> {
    rooms
        .names()
        .iter()
        .map(|r| Str::from(r.as_str()))
        .collect()
}

/// The one socket id a selection names, if that is all it does.
fn single_sid(selector: &RoomSelector) -> Option<&Str> {
    match (selector.rooms.as_slice(), selector.except.is_empty()) {
        ([sid], true) => Some(sid),
        _ => None,
    }
}

fn one_socket(sid: String) -> RoomSelector {
    RoomSelector {
        rooms: vec![Str::from(sid)],
        except: Vec::new(),
    }
}

impl PythonFormat {
    pub(in super::super) fn new(
        channel: Str,
        node_id: Option<Str>,
        rng: &mut dyn RngCore,
    ) -> PythonFormat {
        PythonFormat {
            channel,
            host_id: node_id.map_or_else(|| python::new_host_id(rng), |id| id.to_string()),
        }
    }

    pub(in super::super) fn node_id(&self) -> &str {
        &self.host_id
    }

    pub(in super::super) fn subscriptions(
        &self,
        nsp: &Str,
        created: bool,
        out: &mut Vec<BusCommand>,
    ) {
        // One channel for every namespace, for the node's whole life.
        if nsp == "/" && created {
            out.push(BusCommand::Subscribe {
                channel: self.channel.clone(),
                kind: ChannelKind::Plain,
            });
        }
    }

    fn publish(&self, message: &PyMessage, out: &mut Vec<BusCommand>) -> bool {
        match python::encode(message) {
            Ok(payload) => {
                out.push(BusCommand::Publish {
                    channel: self.channel.clone(),
                    payload,
                    sharded: false,
                });
                true
            }
            Err(err) => {
                tracing::warn!(%err, "cluster message not published");
                false
            }
        }
    }

    pub(in super::super) fn encode(&mut self, op: Outbound<'_>, out: &mut Vec<BusCommand>) -> bool {
        let host_id = Some(self.host_id.clone());
        let message = match op {
            Outbound::Broadcast {
                nsp,
                selector,
                event,
                args,
                ack,
                volatile: _,
            } => {
                let callback = match ack {
                    None => None,
                    Some((id, _)) => Some(PyCallbackRequest {
                        sid: match single_sid(selector) {
                            Some(sid) => sid.to_string(),
                            None => return false,
                        },
                        namespace: nsp.to_string(),
                        id,
                    }),
                };
                PyMessage::Emit(PyEmit {
                    event: event.to_owned(),
                    data: args.to_vec(),
                    namespace: nsp.to_string(),
                    room: rooms(&selector.rooms),
                    skip_sid: rooms(&selector.except),
                    callback,
                    host_id,
                })
            }
            Outbound::Join {
                nsp,
                selector,
                rooms,
            }
            | Outbound::Leave {
                nsp,
                selector,
                rooms,
            } => {
                let joining = matches!(op, Outbound::Join { .. });
                let Some(sid) = single_sid(selector) else {
                    return false;
                };
                let mut told = true;
                for room in rooms {
                    let (sid, room, namespace) =
                        (sid.to_string(), room.to_string(), nsp.to_string());
                    let message = if joining {
                        PyMessage::EnterRoom {
                            sid,
                            room,
                            namespace,
                            host_id: host_id.clone(),
                        }
                    } else {
                        PyMessage::LeaveRoom {
                            sid,
                            room,
                            namespace,
                            host_id: host_id.clone(),
                        }
                    };
                    told &= self.publish(&message, out);
                }
                return told;
            }
            Outbound::Disconnect { nsp, selector, .. } => PyMessage::Disconnect {
                sid: match single_sid(selector) {
                    Some(sid) => sid.to_string(),
                    None => return false,
                },
                namespace: nsp.to_string(),
                host_id,
            },
            Outbound::CloseRoom { nsp, room } => PyMessage::CloseRoom {
                room: room.to_string(),
                namespace: nsp.to_string(),
                host_id,
            },
            Outbound::Reply {
                to:
                    ReplyTo::Python {
                        host_id,
                        sid,
                        nsp,
                        id,
                    },
                answer: Answer::Ack { args, .. },
            } => PyMessage::Callback(PyCallback {
                host_id: host_id.to_string(),
                sid: sid.to_string(),
                namespace: nsp.to_string(),
                id: *id,
                args: args.clone(),
            }),
            Outbound::Reply { .. }
            | Outbound::FetchSockets { .. }
            | Outbound::AllRooms { .. }
            | Outbound::ServerSideEmit { .. } => return false,
        };
        self.publish(&message, out)
    }

    pub(in super::super) fn decode(
        &self,
        channel: &str,
        payload: &[u8],
        limits: &BusLimits,
    ) -> Result<Option<Inbound>, BusDecodeError> {
        if self.channel != channel {
            return Ok(None);
        }
        let message = match python::decode(payload, limits) {
            Ok(message) => message,
            Err(PyDecodeError::UnknownMethod(method)) => {
                tracing::debug!(%method, "pub/sub message with an unknown method ignored");
                return Ok(None);
            }
            Err(PyDecodeError::Invalid(err)) => return Err(err),
        };
        // Our own messages come back to us (Redis delivers to every
        // subscriber), and callbacks are for the host that asked.
        let skip = match &message {
            PyMessage::Callback(callback) => callback.host_id != self.host_id,
            PyMessage::Emit(PyEmit { host_id, .. })
            | PyMessage::Disconnect { host_id, .. }
            | PyMessage::EnterRoom { host_id, .. }
            | PyMessage::LeaveRoom { host_id, .. }
            | PyMessage::CloseRoom { host_id, .. } => {
                host_id.as_deref() == Some(self.host_id.as_str())
            }
        };
        if skip {
            return Ok(None);
        }
        let inbound = match message {
            PyMessage::Emit(emit) => {
                let ack = match (emit.callback.as_ref(), emit.host_id.as_ref()) {
                    (Some(callback), Some(host_id)) => Some(ReplyTo::Python {
                        host_id: Str::from(host_id.as_str()),
                        sid: Str::from(callback.sid.as_str()),
                        nsp: Str::from(callback.namespace.as_str()),
                        id: callback.id,
                    }),
                    _ => None,
                };
                Inbound::Broadcast {
                    nsp: Str::from(emit.namespace.as_str()),
                    selector: RoomSelector {
                        rooms: names(&emit.room),
                        except: names(&emit.skip_sid),
                    },
                    volatile: false,
                    event: Str::from(emit.event.as_str()),
                    args: emit.delivered_args().to_vec(),
                    ack,
                    timeout: None,
                }
            }
            PyMessage::Callback(callback) => Inbound::Answer {
                request: callback.id,
                answer: Answer::Ack {
                    sid: Some(Str::from(callback.sid)),
                    args: callback.args,
                },
            },
            PyMessage::Disconnect { sid, namespace, .. } => Inbound::Disconnect {
                nsp: Str::from(namespace),
                selector: one_socket(sid),
                close: false,
            },
            PyMessage::EnterRoom {
                sid,
                room,
                namespace,
                ..
            } => Inbound::Join {
                nsp: Str::from(namespace),
                selector: one_socket(sid),
                rooms: vec![Str::from(room)],
            },
            PyMessage::LeaveRoom {
                sid,
                room,
                namespace,
                ..
            } => Inbound::Leave {
                nsp: Str::from(namespace),
                selector: one_socket(sid),
                rooms: vec![Str::from(room)],
            },
            PyMessage::CloseRoom {
                room, namespace, ..
            } => Inbound::CloseRoom {
                nsp: Str::from(namespace),
                room: Str::from(room),
            },
        };
        Ok(Some(inbound))
    }
}
