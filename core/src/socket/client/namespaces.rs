//! One namespace's state within the client, and the calls that move it:
//! joining (the CONNECT payload), leaving, buffering emits until connected.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::acks::PendingAck;
use super::{Client, ClientError, ClientOutput};
use crate::engine::Message;
use crate::parser::{Args, OutPacket, Parser};
use crate::value::Value;
use crate::Str;

/// Where one namespace stands within the current session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NspState {
    /// Wanted; CONNECT not sent in the current session (none open yet).
    Pending,
    /// CONNECT sent, reply awaited.
    Awaiting,
    /// Accepted with this socket id.
    Connected { sid: Str },
}

/// An emit waiting for the namespace to connect, already encoded.
#[derive(Debug)]
pub(super) struct BufferedEmit {
    pub(super) messages: Vec<Message>,
    pub(super) ack: Option<u64>,
}

/// An event received before the CONNECT reply.
#[derive(Debug)]
pub(super) struct HeldEvent {
    pub(super) name: Str,
    pub(super) args: Args,
    pub(super) ack: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Namespace {
    pub(super) name: Str,
    /// Unique among all namespaces ever created by this client, so timer
    /// entries of a dropped namespace never match a new one of that name.
    pub(super) key: u64,
    pub(super) auth: Option<Value>,
    pub(super) state: NspState,
    /// The application left while the CONNECT reply was awaited: answer the
    /// reply with a DISCONNECT and drop silently.
    pub(super) leaving: bool,
    pub(super) pid: Option<Str>,
    pub(super) last_offset: Option<Str>,
    pub(super) next_ack_id: u64,
    pub(super) pending_acks: HashMap<u64, PendingAck>,
    pub(super) send_buffer: VecDeque<BufferedEmit>,
    pub(super) held: Vec<HeldEvent>,
    /// Ack ids the server requested and the application has not answered.
    pub(super) unanswered: BTreeSet<u64>,
}

impl Namespace {
    pub(super) fn is_connected(&self) -> bool {
        matches!(self.state, NspState::Connected { .. })
    }
}

impl<P: Parser> Client<P> {
    /// Drop namespace `idx` with everything it holds; its acks fail.
    pub(super) fn remove_namespace(&mut self, idx: usize) -> Namespace {
        self.fail_acks(idx, true);
        self.namespaces.remove(idx)
    }

    pub(super) fn find_wanted(&self, nsp: &str) -> Result<usize, ClientError> {
        self.namespaces
            .iter()
            .position(|n| n.name == nsp && !n.leaving)
            .ok_or(ClientError::UnknownNamespace)
    }

    pub(super) fn check_buffer_room(&self, idx: usize) -> Result<(), ClientError> {
        let ns = &self.namespaces[idx];
        if !ns.is_connected() && ns.send_buffer.len() >= self.config.max_buffered_emits {
            return Err(ClientError::SendBufferFull);
        }
        Ok(())
    }

    pub(super) fn send_or_buffer(&mut self, idx: usize, messages: Vec<Message>, ack: Option<u64>) {
        let ns = &mut self.namespaces[idx];
        if ns.is_connected() {
            if let Some(id) = ack {
                if let Some(p) = ns.pending_acks.get_mut(&id) {
                    p.sent = true;
                }
            }
            self.outputs
                .extend(messages.into_iter().map(ClientOutput::Send));
        } else {
            ns.send_buffer.push_back(BufferedEmit { messages, ack });
        }
    }

    pub(super) fn send_connect(&mut self, idx: usize) -> Result<(), ClientError> {
        let ns = &self.namespaces[idx];
        let data = connect_payload(ns);
        let name = ns.name.clone();
        let messages = self.encode(&OutPacket::Connect {
            nsp: &name,
            data: data.as_ref(),
        })?;
        self.outputs
            .extend(messages.into_iter().map(ClientOutput::Send));
        self.namespaces[idx].state = NspState::Awaiting;
        Ok(())
    }

    pub(super) fn send_disconnect(&mut self, idx: usize) {
        let name = self.namespaces[idx].name.clone();
        match self.encode::<()>(&OutPacket::Disconnect { nsp: &name }) {
            Ok(messages) => self
                .outputs
                .extend(messages.into_iter().map(ClientOutput::Send)),
            // The namespace was validated when connected; nothing else can
            // fail in a DISCONNECT.
            Err(e) => tracing::warn!(error = %e, "DISCONNECT failed to encode"),
        }
    }
}

/// The CONNECT payload: the auth object, with `{"pid", "offset"}` first
/// when recovering (auth keys of the same name win, as with the reference's
/// `Object.assign`).
fn connect_payload(ns: &Namespace) -> Option<Value> {
    let Some(pid) = &ns.pid else {
        return ns.auth.clone();
    };
    let mut map = vec![("pid".to_owned(), Value::String(pid.to_string()))];
    if let Some(offset) = &ns.last_offset {
        map.push(("offset".to_owned(), Value::String(offset.to_string())));
    }
    if let Some(Value::Object(auth)) = &ns.auth {
        for (k, v) in auth {
            match map.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v.clone(),
                None => map.push((k.clone(), v.clone())),
            }
        }
    }
    Some(Value::Object(map))
}
