//! What the server keeps per Engine.IO session, socket and namespace.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

use super::super::adapter::LocalAdapter;
use super::cluster::{NodeWait, ReplyTo};
use super::recovery::RecoveryState;
use super::timers::TimerId;
use crate::engine::Message;
use crate::parser::Args;
use crate::Str;

/// One Engine.IO session as this layer sees it.
#[derive(Debug)]
pub(super) struct EngineSession<D> {
    pub(super) decoder: D,
    /// Namespace to the socket (pending or connected) on this session.
    pub(super) sockets: BTreeMap<Str, Str>,
    pub(super) connect_timer: Option<TimerId>,
    /// Bytes handed to the engine (or held for a pending socket) and not
    /// yet reported written.
    pub(super) buffered: usize,
    pub(super) slow_timer: Option<TimerId>,
}

pub(super) struct PendingAck {
    pub(super) timer: Option<TimerId>,
    pub(super) broadcast: Option<u64>,
}

/// Where a socket stands with its client. A socket that disconnects leaves
/// [`Server`](super::Server)'s socket map; what recovery keeps of it is a
/// [`PersistedSession`](super::recovery::PersistedSession) in its
/// namespace, keyed by its private id.
///
/// | phase       | input                          | next                      |
/// |-------------|--------------------------------|---------------------------|
/// | (none)      | CONNECT (restored or new)      | `Pending` (or `Connected` with `always_connect`) |
/// | `Pending`   | emit / broadcast               | `Pending`, message held   |
/// | `Pending`   | `accept`                       | `Connected`: replay, CONNECT reply, held messages |
/// | `Pending`   | `reject`                       | removed (CONNECT_ERROR)   |
/// | `Connected` | emit / broadcast               | `Connected`, message sent |
/// | `Connected` | `disconnect`, DISCONNECT, session end | removed (persisted if recoverable) |
#[derive(Debug)]
pub(super) enum SocketPhase {
    /// The application has not answered the CONNECT yet.
    Pending {
        /// Recovered packets, sent before the CONNECT reply.
        replay: Vec<Message>,
        /// Packets emitted meanwhile, sent after the CONNECT reply.
        held: Vec<Message>,
    },
    /// The client got the CONNECT reply.
    Connected,
}

impl SocketPhase {
    pub(super) fn is_connected(&self) -> bool {
        matches!(self, SocketPhase::Connected)
    }
}

pub(super) struct SocketState {
    pub(super) nsp: Str,
    pub(super) eio: Str,
    pub(super) pid: Option<Str>,
    pub(super) phase: SocketPhase,
    /// Acknowledgements the server awaits, by wire id.
    pub(super) acks: BTreeMap<u64, PendingAck>,
    /// Acknowledgements the client awaits from the application.
    pub(super) unanswered: BTreeSet<u64>,
    pub(super) data: Option<Box<dyn Any + Send>>,
    /// First recovery sequence number this socket may have missed if the
    /// client comes back without an offset (it then received no event).
    pub(super) recovery_base: u64,
}

pub(super) struct Namespace {
    pub(super) adapter: LocalAdapter,
    /// Acknowledgement ids come from one counter per namespace, so a
    /// broadcast can carry one id to every receiver and be encoded once;
    /// each socket still sees increasing ids.
    pub(super) next_ack_id: u64,
    pub(super) recovery: Option<RecoveryState>,
}

pub(super) struct BroadcastAckState {
    pub(super) wire_id: u64,
    pub(super) remaining: BTreeSet<Str>,
    pub(super) responses: Vec<(Str, Args)>,
    pub(super) timer: TimerId,
    /// Set when another node asked: answers go back to it.
    pub(super) origin: Option<ReplyTo>,
    /// What other nodes still owe, for a broadcast made here.
    pub(super) remote: Option<NodeWait>,
}
