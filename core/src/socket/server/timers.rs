//! The server's deadlines: what each is for, in the core's one
//! [`TimerTable`].

use std::time::Instant;

use crate::timer::TimerTable;
use crate::Str;

/// An armed deadline: when, and what for. Each [`Timer`] is armed at most
/// once at a time, so the key names it; the instant tells a stale id (one
/// whose timer fired or was moved since) from the armed one.
pub(super) type TimerId = (Instant, Timer);

/// What a deadline is for: the key of the server's [`TimerTable`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
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

/// The server's deadlines: one [`TimerTable`] keyed by [`Timer`].
#[derive(Debug, Default)]
pub(super) struct Timers {
    table: TimerTable<Timer>,
}

impl Timers {
    /// Arm `timer` at `at` (moving it if armed); the id cancels it.
    pub(super) fn schedule(&mut self, at: Instant, timer: Timer) -> TimerId {
        self.table.set(timer.clone(), at);
        (at, timer)
    }

    /// Disarm the timer `id` names, unless it fired or was moved since.
    pub(super) fn cancel(&mut self, id: Option<TimerId>) {
        if let Some((at, timer)) = id {
            if self.table.get(&timer) == Some(at) {
                self.table.stop(&timer);
            }
        }
    }

    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        self.table.pop_expired(now)
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.table.next_deadline()
    }

    /// How many timers are armed (tests check nothing leaks).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }
}
