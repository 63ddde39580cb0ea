//! What [`Server::poll_drained`] reports: the sessions whose output was
//! handed out, each listed once, so that backpressure accounting above
//! costs O(1) per delivery.

use super::{ConnId, Server, Sid};

/// Where a session handed output out: its WebSocket connection (flagged
/// there, so that pulling output costs no session lookup) or its polling
/// queue (flagged on the session).
pub(super) struct DrainMark {
    pub(super) conn: Option<ConnId>,
    pub(super) sid: Sid,
}

impl Server {
    /// The next session whose output was handed out (pulled with
    /// [`Server::poll_transmit`], or taken by a long-polling GET), with how
    /// many bytes of the messages given to [`Server::send`] that accounts
    /// for: what was sent and not yet reported, less what the session still
    /// buffers ([`Server::buffered`]). Each session is named once however
    /// much it handed out since the last call, so draining this after
    /// pulling output costs O(1) per delivery. Sessions that ended are not
    /// named: their [`ServerEvent::Closed`](super::ServerEvent::Closed)
    /// settles everything.
    pub fn poll_drained(&mut self) -> Option<(Sid, usize)> {
        while let Some(mark) = self.drained.pop_front() {
            match mark.conn {
                Some(id) => {
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.drain_listed = false;
                    }
                }
                None => {
                    if let Some(session) = self.sessions.get_mut(&mark.sid) {
                        session.drain_listed = false;
                    }
                }
            }
            let Some(session) = self
                .sessions
                .get_mut(&mark.sid)
                .filter(|s| !s.state.is_closing())
            else {
                continue;
            };
            let held = Server::session_buffered(&self.conns, session);
            if held < session.unreported {
                let written = session.unreported - held;
                session.unreported = held;
                return Some((mark.sid, written));
            }
        }
        None
    }

    /// Lists a session for [`Server::poll_drained`]. A user of this type
    /// that never drains it must not make it grow without bound: entries
    /// of connections and sessions that ended are dropped once they
    /// dominate (live ones are listed at most once each), which keeps the
    /// list linear in the live entities at O(1) amortized per entry.
    pub(super) fn list_drained(&mut self, mark: DrainMark) {
        self.drained.push_back(mark);
        if self.drained.len() > 2 * (self.conns.len() + self.sessions.len()) + 64 {
            let (conns, sessions) = (&self.conns, &self.sessions);
            self.drained.retain(|mark| match mark.conn {
                Some(id) => conns.contains_key(&id),
                None => sessions.contains_key(&mark.sid),
            });
        }
    }

    /// Lists a session whose polling queue was taken.
    pub(super) fn list_queue_drained(&mut self, sid: &str) {
        let Some((sid, session)) = self.sessions.get_key_value(sid) else {
            return;
        };
        if session.drain_listed {
            return;
        }
        let sid = sid.clone();
        if let Some(session) = self.sessions.get_mut(&sid) {
            session.drain_listed = true;
        }
        self.list_drained(DrainMark { conn: None, sid });
    }
}
