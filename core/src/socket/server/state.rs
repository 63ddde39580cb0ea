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

pub(super) struct SocketState {
    pub(super) nsp: Str,
    pub(super) eio: Str,
    pub(super) pid: Option<Str>,
    pub(super) connected: bool,
    /// Recovered packets, sent before the CONNECT reply.
    pub(super) replay: Vec<Message>,
    /// Packets for a pending socket, sent after the CONNECT reply.
    pub(super) held: Vec<Message>,
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
