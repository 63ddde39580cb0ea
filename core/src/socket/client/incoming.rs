//! Packets from the server: decoding, namespace replies, events (held
//! until the CONNECT reply, offsets for recovery) and acknowledgements.

use std::time::Instant;

use super::namespaces::{HeldEvent, NspState};
use super::session::Engine;
use super::{Client, ClientEvent, ClientOutput};
use crate::engine::Message;
use crate::parser::{Args, DecodeError, Parser};
use crate::socket::packet::{Packet, PacketData};
use crate::socket::reason::DisconnectReason;
use crate::value::Value;
use crate::Str;

impl<P: Parser> Client<P> {
    /// A message from the open session.
    pub fn handle_message(&mut self, now: Instant, message: Message) {
        let _ = now;
        if self.engine != Engine::Open {
            return;
        }
        match self
            .parser
            .decode(&mut self.decoder, message, &self.config.decode_limits)
        {
            Ok(None) => {}
            Ok(Some(packet)) => self.handle_packet(packet),
            Err(DecodeError::TooManyAttachmentBytes {
                pending,
                incoming,
                limit,
            }) => {
                tracing::warn!(
                    pending,
                    incoming,
                    limit,
                    "binary attachments from the server over max_pending_attachment_bytes: closing the session"
                );
                self.parse_error();
            }
            Err(e) => {
                tracing::debug!(error = %e, "invalid packet from the server");
                self.parse_error();
            }
        }
    }

    pub(super) fn handle_packet(&mut self, packet: Packet) {
        let Some(idx) = self.namespaces.iter().position(|n| n.name == packet.nsp) else {
            // Nothing for a namespace the client does not know (a late
            // packet for one it left).
            return;
        };
        match packet.data {
            PacketData::Connect(data) => {
                if self.namespaces[idx].state != NspState::Awaiting {
                    return;
                }
                let sid = data
                    .as_ref()
                    .and_then(|d| d.get("sid"))
                    .and_then(Value::as_str);
                let Some(sid) = sid else {
                    // A v5 server always sends a sid.
                    self.parse_error();
                    return;
                };
                let sid = Str::from(sid);
                let pid = data
                    .as_ref()
                    .and_then(|d| d.get("pid"))
                    .and_then(Value::as_str)
                    .map(Str::from);
                self.on_connect_reply(idx, sid, pid);
            }
            PacketData::Disconnect => {
                if !self.namespaces[idx].is_connected() || self.namespaces[idx].leaving {
                    return;
                }
                let ns = self.remove_namespace(idx);
                self.events.push_back(ClientEvent::Disconnected {
                    nsp: ns.name,
                    reason: DisconnectReason::ServerDisconnect,
                });
                self.close_if_unwanted();
            }
            PacketData::Event { name, args, ack } => match self.namespaces[idx].state {
                NspState::Connected { .. } => self.deliver_event(idx, name, args, ack),
                NspState::Awaiting if !self.namespaces[idx].leaving => {
                    if self.namespaces[idx].held.len() >= self.config.max_held_events {
                        self.parse_error();
                        return;
                    }
                    self.namespaces[idx]
                        .held
                        .push(HeldEvent { name, args, ack });
                }
                _ => {}
            },
            PacketData::Ack { id, args } => {
                let ns = &mut self.namespaces[idx];
                if !ns.is_connected() {
                    return;
                }
                let Some(pending) = ns.pending_acks.remove(&id) else {
                    return;
                };
                if let Some(at) = pending.deadline {
                    self.ack_deadlines.remove(&(at, ns.key, id));
                }
                self.events.push_back(ClientEvent::Ack {
                    nsp: ns.name.clone(),
                    id,
                    args,
                });
            }
            PacketData::ConnectError(data) => {
                if self.namespaces[idx].state != NspState::Awaiting {
                    return;
                }
                let ns = self.remove_namespace(idx);
                if !ns.leaving {
                    let (message, data) = match data {
                        Value::String(s) => (s, None),
                        Value::Object(_) => (
                            data.get("message")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            data.get("data").cloned(),
                        ),
                        other => (String::new(), Some(other)),
                    };
                    self.events.push_back(ClientEvent::ConnectError {
                        nsp: ns.name,
                        message,
                        data,
                    });
                }
                self.close_if_unwanted();
            }
        }
    }

    pub(super) fn on_connect_reply(&mut self, idx: usize, sid: Str, pid: Option<Str>) {
        if self.namespaces[idx].leaving {
            self.send_disconnect(idx);
            self.remove_namespace(idx);
            self.close_if_unwanted();
            return;
        }
        let ns = &mut self.namespaces[idx];
        let recovered = pid.is_some() && ns.pid == pid;
        if !recovered {
            // Offsets belong to the previous session.
            ns.last_offset = None;
        }
        ns.pid = pid;
        ns.state = NspState::Connected { sid: sid.clone() };
        self.events.push_back(ClientEvent::Connected {
            nsp: ns.name.clone(),
            sid,
            recovered,
        });
        for buffered in std::mem::take(&mut ns.send_buffer) {
            if let Some(id) = buffered.ack {
                if let Some(p) = ns.pending_acks.get_mut(&id) {
                    p.sent = true;
                }
            }
            self.outputs
                .extend(buffered.messages.into_iter().map(ClientOutput::Send));
        }
        let held = std::mem::take(&mut ns.held);
        for event in held {
            self.deliver_event(idx, event.name, event.args, event.ack);
        }
    }

    /// Hand an event to the application, stripping and remembering the
    /// recovery offset when recovery is active.
    pub(super) fn deliver_event(
        &mut self,
        idx: usize,
        name: Str,
        mut args: Args,
        ack: Option<u64>,
    ) {
        let max_unanswered = self.config.max_unanswered_acks;
        let ns = &mut self.namespaces[idx];
        if ns.pid.is_some() && ack.is_none() {
            if let Some((rest, offset)) = split_offset(&args) {
                args = rest;
                ns.last_offset = Some(offset);
            }
        }
        if let Some(id) = ack {
            if max_unanswered == 0 {
                // Nothing can be remembered: the event still reaches the
                // application, which cannot answer it.
            } else {
                while ns.unanswered.len() >= max_unanswered {
                    ns.unanswered.pop_first();
                }
                ns.unanswered.insert(id);
            }
        }
        self.events.push_back(ClientEvent::Event {
            nsp: ns.name.clone(),
            name,
            args,
            ack,
        });
    }
}

/// Split the recovery offset (a string last argument) off `args`.
///
/// Goes through values; a zero-copy `Args::pop_last` would avoid it.
fn split_offset(args: &Args) -> Option<(Args, Str)> {
    let mut values = args.to_values().ok()?;
    let Some(Value::String(_)) = values.last() else {
        return None;
    };
    let Some(Value::String(offset)) = values.pop() else {
        return None;
    };
    Some((Args::from_values(values), Str::from(offset)))
}
