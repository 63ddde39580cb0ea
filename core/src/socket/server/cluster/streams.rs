//! The streams adapter's side of the seam (see the seam design in
//! [`crate::cluster::node::streams`]): a broadcast waits for its stream
//! entry's id, which becomes the receivers' recovery offset; entries read
//! from the stream act locally with their id as the offset; sessions are
//! kept in the broker, so a client restores on whichever node it reaches.
//!
//! Volatile broadcasts carry an offset too, as in `recovery.rs` (a
//! recovering client takes a string last argument for its offset), and a
//! restore replays volatile entries like the others, as the reference
//! does: the stream does not say which were volatile.
//!
//! Joins, leaves and disconnections by selection act locally at once (as
//! for the other Node formats); a broadcast waiting for its id goes to the
//! sockets selected when it was made, so their relative order is the one
//! the application gave.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::super::timers::{Timer, TimerId};
use super::super::wire::{check_event_name, encode_packet};
use super::super::{Broadcast, Server, ServerError};
use super::ops::Inbound;
use super::{arg_values, broadcast_op, Spread};
use crate::cluster::node::streams::{RestoreStep, RestoredSession, SessionRestore, StreamId};
use crate::cluster::node::StreamsSession;
use crate::cluster::StreamEntry;
use crate::engine::Message;
use crate::parser::{OutPacket, Parser};
use crate::socket::adapter::RoomSelector;
use crate::socket::offset::WithOffset;
use crate::value::Value;
use crate::{Bytes, Str};

/// What the streams format keeps between calls.
#[derive(Default)]
pub(in super::super) struct StreamsState {
    /// Broadcasts waiting for their entry's id, in the order appended
    /// (the broker answers in that order).
    pending: VecDeque<PendingAppend>,
    /// The id of the last entry the follower delivered, per stream.
    last_seen: BTreeMap<Str, StreamId>,
    /// Restores under way, by the token of their `TakeKey`.
    restores: BTreeMap<u64, PendingRestore>,
    /// The range token of each restore, to its key token.
    range_tokens: BTreeMap<u64, u64>,
    /// Restored sockets: the follower's entries of the stream up to the id
    /// were replayed already.
    marks: FxHashMap<Str, (Str, StreamId)>,
}

struct PendingAppend {
    token: u64,
    /// `None` for an append answered at once (never armed).
    timer: Option<TimerId>,
    /// `Some` once answered (with the id, or without when it failed or
    /// timed out).
    answer: Option<Option<Str>>,
    nsp: Str,
    receivers: Vec<Str>,
    volatile: bool,
    event: Str,
    args: Vec<Value>,
}

struct PendingRestore {
    restore: SessionRestore,
    range_token: u64,
    eio: Str,
    nsp: Str,
    auth: Option<Value>,
    timer: TimerId,
}

/// What a socket coming back through a restore had.
pub(in super::super) struct Resumed {
    pub(in super::super) sid: Str,
    pub(in super::super) pid: Str,
    pub(in super::super) rooms: Vec<Str>,
    pub(in super::super) data: Option<Box<dyn std::any::Any + Send>>,
    pub(in super::super) replay: Vec<Message>,
    pub(in super::super) base: u64,
}

impl<P: Parser> Server<P> {
    /// Whether this node speaks the streams format (and is not write-only).
    pub(in super::super) fn streams_on(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.streams.is_some())
    }

    /// A broadcast without acknowledgement: append it, and deliver to the
    /// local sockets selected now once the broker named its entry.
    /// Returns how many local sockets were selected.
    pub(in super::super) fn streams_broadcast<A: serde::Serialize + ?Sized>(
        &mut self,
        now: Instant,
        to: &Broadcast,
        event: &str,
        args: &A,
    ) -> Result<usize, ServerError> {
        let values = arg_values(args)?;
        let receivers = self
            .namespaces
            .get(&to.nsp)
            .map(|n| n.adapter.select(&to.selector))
            .unwrap_or_default();
        let selected = receivers.len();
        let cluster = self.cluster.as_mut().expect("streams on");
        let token = cluster.send(broadcast_op(to, event, &values, None));
        let limit = cluster.config.max_queued_commands;
        let timeout = cluster.config.request_timeout;
        let state = cluster.streams.as_mut().expect("streams on");
        let pending = PendingAppend {
            token: 0,
            timer: None,
            answer: Some(None),
            nsp: to.nsp.clone(),
            receivers,
            volatile: to.volatile,
            event: Str::from(event),
            args: values,
        };
        match token.flatten() {
            Some(token) if !pending.receivers.is_empty() && state.pending.len() < limit => {
                let timer = self
                    .timers
                    .schedule(now + timeout, Timer::StreamAppend { token });
                state.pending.push_back(PendingAppend {
                    token,
                    timer: Some(timer),
                    answer: None,
                    ..pending
                });
            }
            // No local receiver, or no entry to wait for (the format cannot
            // say it), or too many waiting (the broker stalls; memory stays
            // bounded, order and offset give way): deliver now.
            _ => self.deliver_appended(now, pending),
        }
        self.close_overflowed(now);
        Ok(selected)
    }

    /// The broker answered an append.
    pub(in super::super) fn on_stream_appended(
        &mut self,
        now: Instant,
        token: u64,
        id: Option<Str>,
    ) {
        let Some(state) = self.cluster.as_mut().and_then(|c| c.streams.as_mut()) else {
            return;
        };
        // Usually the first: answers come in the order asked.
        match state.pending.iter_mut().find(|p| p.token == token) {
            Some(pending) if pending.answer.is_none() => pending.answer = Some(id),
            _ => {
                tracing::debug!(token, "late or unknown append answer ignored");
                return;
            }
        }
        self.deliver_answered(now);
    }

    /// An append was not answered in time: its broadcast goes out without
    /// offset, and the late answer will be ignored.
    pub(in super::super) fn on_stream_append_timeout(&mut self, now: Instant, token: u64) {
        let Some(state) = self.cluster.as_mut().and_then(|c| c.streams.as_mut()) else {
            return;
        };
        if let Some(pending) = state
            .pending
            .iter_mut()
            .find(|p| p.token == token && p.answer.is_none())
        {
            tracing::warn!(token, "stream append unanswered: delivered without offset");
            pending.answer = Some(None);
        }
        self.deliver_answered(now);
    }

    /// Deliver the answered broadcasts at the front of the queue, in order.
    fn deliver_answered(&mut self, now: Instant) {
        loop {
            let Some(state) = self.cluster.as_mut().and_then(|c| c.streams.as_mut()) else {
                return;
            };
            if !state.pending.front().is_some_and(|p| p.answer.is_some()) {
                break;
            }
            let pending = state.pending.pop_front().expect("checked");
            self.timers.cancel(pending.timer.clone());
            self.deliver_appended(now, pending);
        }
        self.close_overflowed(now);
    }

    fn deliver_appended(&mut self, now: Instant, pending: PendingAppend) {
        if pending.receivers.is_empty() {
            return;
        }
        let offset = pending
            .answer
            .flatten()
            .filter(|_| self.config.recovery.is_some());
        let messages = match self.encode_event(
            &pending.nsp,
            &pending.event,
            &pending.args,
            offset.as_deref(),
        ) {
            Ok(messages) => messages,
            Err(err) => {
                tracing::debug!(%err, "broadcast not delivered");
                return;
            }
        };
        for sid in &pending.receivers {
            self.deliver(now, sid, &messages, pending.volatile);
        }
    }

    /// An event packet from bus values, with `offset` as its last argument.
    fn encode_event(
        &mut self,
        nsp: &Str,
        event: &str,
        args: &[Value],
        offset: Option<&str>,
    ) -> Result<Vec<Message>, ServerError> {
        check_event_name(event)?;
        let args = Spread(args);
        Ok(match offset {
            Some(offset) => encode_packet(
                &self.parser,
                &mut self.scratch,
                &OutPacket::Event {
                    nsp,
                    event,
                    args: &WithOffset {
                        args: &args,
                        offset,
                    },
                    ack: None,
                },
            )?,
            None => encode_packet(
                &self.parser,
                &mut self.scratch,
                &OutPacket::Event {
                    nsp,
                    event,
                    args: &args,
                    ack: None,
                },
            )?,
        })
    }

    /// An entry of a followed stream (every node's, ours included).
    pub(in super::super) fn on_stream_entry(
        &mut self,
        now: Instant,
        stream: Str,
        entry: StreamEntry,
    ) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let Some(state) = cluster.streams.as_mut() else {
            return;
        };
        let Ok(id) = entry.id.parse::<StreamId>() else {
            tracing::warn!(%stream, id = %entry.id, "stream entry with a bad id ignored");
            return;
        };
        state.last_seen.insert(stream.clone(), id);
        let decoded = cluster
            .format
            .streams()
            .expect("streams format")
            .decode_entry(&entry.fields, &cluster.config.limits);
        match decoded {
            Ok(Some((
                Inbound::Broadcast {
                    nsp,
                    selector,
                    volatile,
                    event,
                    args,
                    ack: None,
                    ..
                },
                offset,
            ))) => {
                let offset = (offset && self.config.recovery.is_some()).then_some(&*entry.id);
                self.deliver_entry(
                    now, &stream, id, &nsp, &selector, volatile, &event, &args, offset,
                );
            }
            Ok(Some((inbound, _))) => self.on_inbound(now, inbound),
            Ok(None) => {}
            Err(err) => tracing::warn!(%stream, id = %entry.id, %err, "stream entry ignored"),
        }
        // Later entries are past every mark the follower passed.
        if let Some(state) = self.cluster.as_mut().and_then(|c| c.streams.as_mut()) {
            if !state.marks.is_empty() {
                state
                    .marks
                    .retain(|_, (s, mark)| *s != stream || *mark > id);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver_entry(
        &mut self,
        now: Instant,
        stream: &Str,
        id: StreamId,
        nsp: &Str,
        selector: &RoomSelector,
        volatile: bool,
        event: &str,
        args: &[Value],
        offset: Option<&str>,
    ) {
        let Some(namespace) = self.namespaces.get(nsp) else {
            return;
        };
        let receivers = namespace.adapter.select(selector);
        if receivers.is_empty() {
            return;
        }
        let messages = match self.encode_event(nsp, event, args, offset) {
            Ok(messages) => messages,
            Err(err) => {
                tracing::debug!(%err, "stream broadcast not delivered");
                return;
            }
        };
        let marks = &self
            .cluster
            .as_ref()
            .and_then(|c| c.streams.as_ref())
            .expect("streams on")
            .marks;
        let skip: Vec<bool> = receivers
            .iter()
            .map(|sid| {
                !marks.is_empty()
                    && marks
                        .get(sid)
                        .is_some_and(|(s, mark)| s == stream && id <= *mark)
            })
            .collect();
        for (sid, skip) in receivers.iter().zip(skip) {
            if !skip {
                self.deliver(now, sid, &messages, volatile);
            }
        }
        self.close_overflowed(now);
    }

    /// A socket with a private id left for a recoverable reason: keep its
    /// session in the broker for the recovery duration.
    pub(in super::super) fn streams_persist(
        &mut self,
        sid: &Str,
        pid: &Str,
        rooms: &[Str],
        data: Option<&(dyn std::any::Any + Send)>,
    ) {
        let Some(duration) = self.recovery_window() else {
            return;
        };
        let Some(cluster) = self.cluster.as_mut().filter(|c| c.streams.is_some()) else {
            return;
        };
        let mut rooms: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
        if !rooms.iter().any(|r| **r == **sid) {
            rooms.push(sid.to_string());
        }
        // Only data the bus can carry: the application's own types stay.
        let data = data
            .and_then(|d| d.downcast_ref::<Value>())
            .cloned()
            .unwrap_or_else(|| Value::Object(Vec::new()));
        let session = StreamsSession {
            sid: sid.to_string(),
            pid: pid.to_string(),
            rooms,
            data,
        };
        let format = cluster.format.streams().expect("streams format");
        let command = format.config().persist_session(&session, duration);
        cluster.push(command);
    }

    /// A CONNECT with a private id and an offset: start restoring its
    /// session from the broker. False when there is nothing to restore
    /// (connect as a new socket).
    pub(in super::super) fn streams_restore(
        &mut self,
        now: Instant,
        eio: &Str,
        nsp: &Str,
        auth: &Option<Value>,
    ) -> bool {
        let Some(recovery) = self.config.recovery.as_ref() else {
            return false;
        };
        let max_packets = recovery.max_packets;
        let Some(auth_map) = auth.as_ref() else {
            return false;
        };
        let (Some(pid), Some(offset)) = (
            auth_map.get("pid").and_then(Value::as_str),
            auth_map.get("offset").and_then(Value::as_str),
        ) else {
            return false;
        };
        let Some(cluster) = self.cluster.as_mut() else {
            return false;
        };
        let Some(state) = cluster.streams.as_ref() else {
            return false;
        };
        if state.restores.len() >= cluster.config.max_pending_requests {
            tracing::warn!(%nsp, "too many restores under way: connecting as a new socket");
            return false;
        }
        let limits = cluster.config.limits;
        let timeout = cluster.config.request_timeout;
        let format = cluster.format.streams().expect("streams format");
        let (key_token, range_token) = (format.next_token(), format.next_token());
        let started = SessionRestore::start(
            format.config(),
            nsp,
            pid,
            offset,
            key_token,
            range_token,
            limits,
            max_packets,
        );
        let (restore, commands) = match started {
            Ok(started) => started,
            Err(err) => {
                tracing::debug!(%nsp, %err, "session not restored");
                return false;
            }
        };
        for command in commands {
            cluster.push(command);
        }
        let timer = self
            .timers
            .schedule(now + timeout, Timer::StreamRestore { token: key_token });
        let state = cluster.streams.as_mut().expect("checked");
        state.range_tokens.insert(range_token, key_token);
        state.restores.insert(
            key_token,
            PendingRestore {
                restore,
                range_token,
                eio: eio.clone(),
                nsp: nsp.clone(),
                auth: auth.clone(),
                timer,
            },
        );
        true
    }

    /// The answer to a restore's `TakeKey`.
    pub(in super::super) fn on_key_taken(
        &mut self,
        now: Instant,
        token: u64,
        value: Option<Bytes>,
    ) {
        let Some(state) = self.cluster.as_mut().and_then(|c| c.streams.as_mut()) else {
            return;
        };
        let Some(pending) = state.restores.get_mut(&token) else {
            tracing::debug!(token, "unknown key answer ignored");
            return;
        };
        let step = pending.restore.on_key_taken(token, value.as_deref());
        self.restore_step(now, token, step);
    }

    /// The answer to a restore's `StreamRange`.
    pub(in super::super) fn on_stream_range(
        &mut self,
        now: Instant,
        token: u64,
        entries: Option<Vec<StreamEntry>>,
    ) {
        let Some(state) = self.cluster.as_mut().and_then(|c| c.streams.as_mut()) else {
            return;
        };
        let Some(&key) = state.range_tokens.get(&token) else {
            tracing::debug!(token, "unknown range answer ignored");
            return;
        };
        let nsp = state.restores[&key].nsp.clone();
        let cluster = self.cluster.as_mut().expect("checked");
        let stream = cluster
            .format
            .streams()
            .expect("streams format")
            .config()
            .stream_for(&nsp);
        let state = cluster.streams.as_mut().expect("checked");
        let last_seen = state.last_seen.get(&stream).copied();
        let pending = state.restores.get_mut(&key).expect("tokens of a restore");
        let step = pending
            .restore
            .on_range(token, entries.as_deref(), last_seen);
        self.restore_step(now, key, step);
    }

    fn restore_step(&mut self, now: Instant, key: u64, step: RestoreStep) {
        match step {
            RestoreStep::Send(commands) => {
                if let Some(cluster) = self.cluster.as_mut() {
                    for command in commands {
                        cluster.push(command);
                    }
                }
            }
            RestoreStep::Wait => {}
            RestoreStep::Done(result) => {
                let restored = match result {
                    Ok(restored) => Some(restored),
                    Err(err) => {
                        tracing::debug!(%err, "session not restored: new socket");
                        None
                    }
                };
                self.finish_restore(now, key, restored);
            }
        }
    }

    /// A restore took too long: the client gets a new socket.
    pub(in super::super) fn on_stream_restore_timeout(&mut self, now: Instant, key: u64) {
        tracing::warn!("session restore unanswered in time: new socket");
        self.finish_restore(now, key, None);
    }

    /// Open the socket a restore waited for: restored with its missed
    /// packets before the CONNECT reply, or new.
    fn finish_restore(&mut self, now: Instant, key: u64, restored: Option<RestoredSession>) {
        let Some(state) = self.cluster.as_mut().and_then(|c| c.streams.as_mut()) else {
            return;
        };
        let Some(pending) = state.restores.remove(&key) else {
            return;
        };
        state.range_tokens.remove(&pending.range_token);
        self.timers.cancel(Some(pending.timer));
        let free = self
            .sessions
            .get(&pending.eio)
            .is_some_and(|s| !s.sockets.contains_key(&pending.nsp));
        if !free {
            // The client left (or connected otherwise) meanwhile; a taken
            // session is lost, as when the reference's client leaves.
            tracing::debug!(eio = %pending.eio, "restore finished for a gone session");
            self.drop_namespace_if_unused(&pending.nsp);
            return;
        }
        let stream = self
            .cluster
            .as_mut()
            .and_then(|c| c.format.streams())
            .map(|f| f.config().stream_for(&pending.nsp))
            .expect("streams format");
        let resumed = restored.and_then(|r| self.resumed(&pending.nsp, &stream, r));
        self.open_socket(now, &pending.eio, pending.nsp, pending.auth, resumed);
        self.close_overflowed(now);
    }

    /// What a restored session gives the socket: `None` when it cannot be
    /// used here (its id is taken on this node).
    fn resumed(&mut self, nsp: &Str, stream: &Str, restored: RestoredSession) -> Option<Resumed> {
        let session = restored.session;
        let sid = Str::from(session.sid);
        if sid.is_empty() || self.sockets.contains_key(&sid) {
            tracing::warn!(%sid, "restored socket id in use here: new socket");
            return None;
        }
        let mut replay = Vec::new();
        for args in restored.missed {
            let mut args = args.into_iter();
            let Some(Value::String(event)) = args.next() else {
                continue;
            };
            let args: Vec<Value> = args.collect();
            // The offset is already the last argument.
            match self.encode_event(nsp, &event, &args, None) {
                Ok(messages) => replay.extend(messages),
                Err(err) => tracing::debug!(%err, "missed packet not replayed"),
            }
        }
        let state = self
            .cluster
            .as_mut()
            .and_then(|c| c.streams.as_mut())
            .expect("streams on");
        state
            .marks
            .insert(sid.clone(), (stream.clone(), restored.replayed_until));
        let empty = matches!(&session.data, Value::Object(o) if o.is_empty())
            || session.data == Value::Null;
        Some(Resumed {
            sid: sid.clone(),
            pid: Str::from(session.pid),
            rooms: session
                .rooms
                .into_iter()
                .map(Str::from)
                .filter(|r| *r != sid)
                .collect(),
            data: (!empty).then(|| Box::new(session.data) as Box<dyn std::any::Any + Send>),
            replay,
            base: 0,
        })
    }

    /// Forget what a socket's restore mark said (it left).
    pub(in super::super) fn streams_forget(&mut self, sid: &str) {
        if let Some(state) = self.cluster.as_mut().and_then(|c| c.streams.as_mut()) {
            if !state.marks.is_empty() {
                state.marks.remove(sid);
            }
        }
    }
}
