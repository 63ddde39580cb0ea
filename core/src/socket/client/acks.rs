//! Acknowledgements both ways: emits awaiting the server's answer (with
//! deadlines), and the server's requests the application answers.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{AckFailure, Client, ClientError, ClientEvent, ClientOutput};
use crate::parser::{OutPacket, Parser};

/// An acknowledgement the client awaits.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingAck {
    pub(super) deadline: Option<Instant>,
    /// Whether the EVENT went out (otherwise it sits in the send buffer and
    /// survives a disconnection, like the reference's `sendBuffer`).
    pub(super) sent: bool,
}

impl<P: Parser> Client<P> {
    /// Emit `event` asking for an acknowledgement; returns its id. The
    /// answer comes as [`ClientEvent::Ack`], or [`ClientEvent::AckFailed`]
    /// when `timeout` (counted from now, buffering included) passes or the
    /// namespace disconnects first.
    pub fn emit_with_ack<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        nsp: &str,
        event: &str,
        args: &A,
        timeout: Option<Duration>,
    ) -> Result<u64, ClientError> {
        let idx = self.find_wanted(nsp)?;
        if self.namespaces[idx].pending_acks.len() >= self.config.max_pending_acks {
            return Err(ClientError::TooManyPendingAcks);
        }
        self.check_buffer_room(idx)?;
        let id = self.namespaces[idx].next_ack_id;
        let messages = self.encode(&OutPacket::Event {
            nsp,
            event,
            args,
            ack: Some(id),
        })?;
        let deadline = timeout.map(|t| now + t);
        let ns = &mut self.namespaces[idx];
        ns.next_ack_id += 1;
        ns.pending_acks.insert(
            id,
            PendingAck {
                deadline,
                sent: false,
            },
        );
        if let Some(at) = deadline {
            self.ack_deadlines.insert((at, ns.key, id));
        }
        self.send_or_buffer(idx, messages, Some(id));
        Ok(id)
    }

    /// Answer the server's event that carried ack id `id`, once.
    pub fn ack<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        nsp: &str,
        id: u64,
        args: &A,
    ) -> Result<(), ClientError> {
        let _ = now;
        let idx = self.find_wanted(nsp)?;
        if !self.namespaces[idx].is_connected() {
            return Err(ClientError::NotConnected);
        }
        if !self.namespaces[idx].unanswered.contains(&id) {
            return Err(ClientError::UnknownAck);
        }
        let messages = self.encode(&OutPacket::Ack { nsp, id, args })?;
        self.namespaces[idx].unanswered.remove(&id);
        self.outputs
            .extend(messages.into_iter().map(ClientOutput::Send));
        Ok(())
    }

    /// Fail acknowledgements of namespace `idx`: all of them when
    /// `include_buffered`, otherwise only those whose emit went out.
    pub(super) fn fail_acks(&mut self, idx: usize, include_buffered: bool) {
        let ns = &mut self.namespaces[idx];
        let mut failed: Vec<u64> = ns
            .pending_acks
            .iter()
            .filter(|(_, p)| include_buffered || p.sent)
            .map(|(&id, _)| id)
            .collect();
        failed.sort_unstable();
        for id in failed {
            if let Some(p) = ns.pending_acks.remove(&id) {
                if let Some(at) = p.deadline {
                    self.ack_deadlines.remove(&(at, ns.key, id));
                }
            }
            self.events.push_back(ClientEvent::AckFailed {
                nsp: ns.name.clone(),
                id,
                reason: AckFailure::Disconnected,
            });
        }
    }

    /// Total acknowledgements awaited and deadline entries (for tests).
    #[cfg(test)]
    pub(super) fn ack_bookkeeping(&self) -> (usize, usize, usize) {
        let pending = self.namespaces.iter().map(|n| n.pending_acks.len()).sum();
        let buffered = self.namespaces.iter().map(|n| n.send_buffer.len()).sum();
        (pending, self.ack_deadlines.len(), buffered)
    }
}
