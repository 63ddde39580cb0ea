//! Connection state recovery: packets kept for replay, sessions kept for
//! clients that come back.

use std::any::Any;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::super::adapter::RoomSelector;
use super::super::reason::DisconnectReason;
use super::timers::TimerId;
use super::wire::{disconnect_packet, encode_packet};
use super::Server;
use crate::engine::Message;
use crate::parser::Parser;
use crate::Str;

pub(super) struct StoredPacket {
    pub(super) seq: u64,
    pub(super) emitted_at: Instant,
    pub(super) messages: Vec<Message>,
    pub(super) bytes: usize,
    pub(super) selector: RoomSelector,
}

pub(super) struct PersistedSession {
    pub(super) sid: Str,
    pub(super) rooms: Vec<Str>,
    pub(super) data: Option<Box<dyn Any + Send>>,
    pub(super) recovery_base: u64,
    pub(super) timer: TimerId,
}

#[derive(Default)]
pub(super) struct RecoveryState {
    pub(super) packets: VecDeque<StoredPacket>,
    /// Sum of the stored packets' sizes.
    pub(super) stored_bytes: usize,
    pub(super) next_seq: u64,
    /// One past the newest evicted packet: replaying from before it would
    /// skip packets. (Sequence numbers have gaps: volatile events take one
    /// and are not stored.)
    pub(super) lost_before: u64,
    /// Keyed by private session ids, which this server generates (FxHash
    /// is safe: see [`Server`]).
    pub(super) sessions: FxHashMap<Str, PersistedSession>,
    /// Private session id to the id of the socket holding it now.
    pub(super) live: FxHashMap<Str, Str>,
    pub(super) expiry_timer: Option<TimerId>,
}

impl RecoveryState {
    pub(super) fn evict_front(&mut self) {
        if let Some(packet) = self.packets.pop_front() {
            self.stored_bytes -= packet.bytes;
            self.lost_before = packet.seq + 1;
        }
    }

    /// Drop packets older than `duration`: a recovery that needs them
    /// must fail rather than skip them.
    pub(super) fn evict_expired(&mut self, now: Instant, duration: Duration) {
        while self
            .packets
            .front()
            .is_some_and(|p| p.emitted_at + duration <= now)
        {
            self.evict_front();
        }
    }

    /// The first sequence number to replay for a client whose last
    /// received offset is `offset` (or `base` without one), if nothing it
    /// missed has been evicted.
    pub(super) fn replay_start(&self, offset: Option<&str>, base: u64) -> Option<u64> {
        let start = match offset {
            Some(offset) => offset.parse::<u64>().ok()?.checked_add(1)?,
            None => base,
        };
        if start > self.next_seq || start < self.lost_before {
            return None;
        }
        Some(start)
    }
}

impl<P: Parser> Server<P> {
    /// How long a disconnected socket's state is kept, when recovery is on.
    pub(super) fn recovery_window(&self) -> Option<Duration> {
        self.config
            .recovery
            .as_ref()
            .map(|r| r.max_disconnection_duration)
    }

    /// A client presents the private id of a socket the server still
    /// believes connected (only the client's side of the old connection
    /// died): end the old socket as if its transport closed, keeping its
    /// state for [`Server::restore`], and tell the old session.
    pub(super) fn take_over(&mut self, now: Instant, nsp: &Str, pid: &Str, offset: Option<&str>) {
        let Some(duration) = self.recovery_window() else {
            return;
        };
        let namespace = self.namespaces.get_mut(nsp).expect("namespace created");
        let Some(recovery) = namespace.recovery.as_mut() else {
            return;
        };
        recovery.evict_expired(now, duration);
        let Some(old) = recovery.live.get(pid) else {
            return;
        };
        let Some(state) = self.sockets.get(old) else {
            return;
        };
        if !state.phase.is_connected()
            || recovery.replay_start(offset, state.recovery_base).is_none()
        {
            return;
        }
        let (old, old_eio) = (old.clone(), state.eio.clone());
        if let Ok(messages) =
            encode_packet(&self.parser, &mut self.scratch, &disconnect_packet(nsp))
        {
            self.transmit(now, &old_eio, &messages);
        }
        // Removing the old socket also unlinks it from its session, so the
        // old session's later close cannot touch the restored socket.
        self.remove_socket(now, &old, DisconnectReason::TransportClose, true);
    }

    /// Take a persisted session for `pid` if it can be recovered from
    /// `offset`, with the packets it missed.
    pub(super) fn restore(
        &mut self,
        now: Instant,
        nsp: &Str,
        pid: &Str,
        offset: Option<&str>,
    ) -> Option<(Str, PersistedSession, Vec<Message>, u64)> {
        let duration = self.recovery_window()?;
        let recovery = self.namespaces.get_mut(nsp)?.recovery.as_mut()?;
        recovery.evict_expired(now, duration);
        let session = recovery.sessions.get(pid)?;
        if session.timer.0 <= now {
            return None;
        }
        let start = recovery.replay_start(offset, session.recovery_base)?;
        let (pid, session) = recovery.sessions.remove_entry(pid)?;
        self.timers.cancel(Some(session.timer.clone()));
        let mut replay = Vec::new();
        for packet in &recovery.packets {
            if packet.seq >= start && packet.selector.includes(session.rooms.iter()) {
                replay.extend(packet.messages.iter().cloned());
            }
        }
        Some((pid, session, replay, start))
    }
}
