//! The server's deadlines: one [`crate::timer::TimerTable`]
//! keyed by what each deadline is for, the connection or session it belongs
//! to first.

use std::time::{Duration, Instant};

use tracing::debug;

use super::{ConnId, ConnKind, Input, Server};

/// How long a polling session the application closed waits for the next
/// GET to deliver its close packet (engine.io's `closeTimeout`).
pub(super) const POLLING_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a WebSocket this side closed waits for the peer's close frame
/// before the connection is dropped.
pub(super) const WS_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a deadline is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKey {
    Conn(ConnId, ConnTimer),
    Session(SessionKey, SessionTimer),
}

/// Names a session in its timers: a number, cheaper to order than its id
/// (every timer operation compares keys). Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct SessionKey(pub(super) u64);

/// A connection's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ConnTimer {
    /// An HTTP connection without a request in progress is closed
    /// `idle_timeout` after it opened or its last response. Armed when
    /// that starts counting; a request in progress when it fires keeps the
    /// connection (its response arms it again), so requests cost no timer
    /// update.
    Idle,
    /// A WebSocket this side closed waits this long for the peer's close
    /// frame.
    CloseHandshake,
}

/// A session's deadlines, in the order they are handled when due at the
/// same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SessionTimer {
    /// No pong since the last ping: the session is dead.
    PongTimeout,
    /// A closing polling session's close packet was never fetched.
    CloseDelivery,
    /// The probing WebSocket did not complete the upgrade in time.
    UpgradeTimeout,
    /// Time to send a ping.
    Ping,
}

impl Server {
    /// Time passed: the deadline from [`Server::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((due, key)) = self.timers.pop_expired_entry(now) {
            match key {
                TimerKey::Conn(id, ConnTimer::Idle) => {
                    let busy = match self.conns.get(&id).map(|c| &c.kind) {
                        Some(ConnKind::Http { codec }) => codec.awaiting_response(),
                        _ => true,
                    };
                    if !busy {
                        debug!(conn = id.0, "connection timed out");
                        self.close_conn(now, id);
                    }
                }
                TimerKey::Conn(id, ConnTimer::CloseHandshake) => {
                    debug!(conn = id.0, "no close frame from the peer");
                    self.close_conn(now, id);
                }
                TimerKey::Session(key, timer) => {
                    if let Some(sid) = self.session_keys.get(&key).cloned() {
                        let _ = self.step(now, &sid, Input::Timeout(timer, due));
                    }
                }
            }
        }
        self.finish(now);
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The heartbeat's next ping at `at` (and no pong awaited).
    pub(super) fn arm_ping(&mut self, key: SessionKey, at: Instant) {
        self.timers
            .stop(&TimerKey::Session(key, SessionTimer::PongTimeout));
        self.timers
            .set(TimerKey::Session(key, SessionTimer::Ping), at);
    }

    /// Disarms every deadline of a session.
    pub(super) fn stop_session_timers(&mut self, key: SessionKey) {
        for timer in [
            SessionTimer::PongTimeout,
            SessionTimer::CloseDelivery,
            SessionTimer::UpgradeTimeout,
            SessionTimer::Ping,
        ] {
            self.timers.stop(&TimerKey::Session(key, timer));
        }
    }

    /// Disarms every deadline of a connection.
    pub(super) fn stop_conn_timers(&mut self, id: ConnId) {
        self.timers.stop(&TimerKey::Conn(id, ConnTimer::Idle));
        self.timers
            .stop(&TimerKey::Conn(id, ConnTimer::CloseHandshake));
    }
}
