//! The server's deadlines, in one ordered table.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::Str;

/// A deadline, unique by its sequence number.
pub(super) type TimerId = (Instant, u64);

#[derive(Debug, Clone)]
pub(super) enum Timer {
    Connect {
        eio: Str,
    },
    Ack {
        socket: Str,
        id: u64,
    },
    BroadcastAck {
        id: u64,
    },
    ClusterRequest {
        id: u64,
    },
    SlowConsumer {
        eio: Str,
    },
    SessionExpiry {
        nsp: Str,
        pid: Str,
    },
    PacketExpiry {
        nsp: Str,
    },
    /// A broadcast waits for its stream entry's id.
    StreamAppend {
        token: u64,
    },
    /// A session restore waits for the broker (keyed by its first token).
    StreamRestore {
        token: u64,
    },
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    pub(super) map: BTreeMap<TimerId, Timer>,
    seq: u64,
}

impl Timers {
    pub(super) fn schedule(&mut self, at: Instant, timer: Timer) -> TimerId {
        self.seq += 1;
        let id = (at, self.seq);
        self.map.insert(id, timer);
        id
    }

    pub(super) fn cancel(&mut self, id: Option<TimerId>) {
        if let Some(id) = id {
            self.map.remove(&id);
        }
    }

    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let entry = self.map.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }
}
