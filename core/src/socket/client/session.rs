//! The Engine.IO session under the client: opening, losing and closing it,
//! and the reconnection policy (see the parent module's "Reconnection").

use std::time::Instant;

use super::namespaces::NspState;
use super::{Client, ClientEvent, ClientOutput};
use crate::engine::Handshake;
use crate::parser::Parser;
use crate::socket::reason::DisconnectReason;

/// Where the Engine.IO session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Engine {
    /// No session, none scheduled.
    Idle,
    /// `OpenEngine` was emitted; `attempt` 0 is a connection the
    /// application asked for, others are reconnection attempts.
    Opening { attempt: u32 },
    /// The session is open.
    Open,
    /// `CloseEngine` was emitted; waiting for the driver's report.
    Closing { reconnect: bool },
    /// The next attempt opens at this time.
    WaitingReconnect { at: Instant },
}

impl<P: Parser> Client<P> {
    /// The session asked for with [`ClientOutput::OpenEngine`] is open:
    /// CONNECT goes out for every wanted namespace.
    pub fn handle_engine_opened(&mut self, now: Instant, handshake: &Handshake) {
        let _ = (now, handshake);
        let Engine::Opening { attempt } = self.engine else {
            return;
        };
        self.engine = Engine::Open;
        self.decoder = P::Decoder::default();
        self.backoff.reset();
        if attempt > 0 {
            self.events.push_back(ClientEvent::Reconnected { attempt });
        }
        let mut idx = 0;
        while idx < self.namespaces.len() {
            if self.namespaces[idx].state == NspState::Pending {
                if let Err(e) = self.send_connect(idx) {
                    // Auth was checked to be an object when given; an
                    // encoder refusing it can only refuse the namespace.
                    let ns = self.remove_namespace(idx);
                    self.events.push_back(ClientEvent::ConnectError {
                        nsp: ns.name,
                        message: e.to_string(),
                        data: None,
                    });
                    continue;
                }
            }
            idx += 1;
        }
        self.close_if_unwanted();
    }

    /// The session ended (or failed to open). `reason` is one of
    /// [`DisconnectReason::TransportClose`],
    /// [`DisconnectReason::TransportError`], [`DisconnectReason::PingTimeout`],
    /// or [`DisconnectReason::ClientDisconnect`] when the application closed
    /// the session itself, which stops reconnection like
    /// [`Client::disconnect_all`].
    pub fn handle_engine_closed(&mut self, now: Instant, reason: DisconnectReason) {
        // A packet half received dies with its session: release its
        // attachments now, not at the next open.
        self.decoder = P::Decoder::default();
        match self.engine {
            Engine::Idle | Engine::WaitingReconnect { .. } => {}
            Engine::Opening { attempt } => {
                self.engine = Engine::Idle;
                self.purge_sends();
                if reason == DisconnectReason::ClientDisconnect {
                    self.disconnect_all(now);
                } else {
                    self.events.push_back(ClientEvent::OpenFailed {
                        attempt,
                        namespaces: self.wanted_names(),
                    });
                    if attempt == 0 && !self.config.retry_first_connection {
                        // python-socketio's `retry=False`: a first
                        // connection that fails is the application's error
                        // to see at once, not a reason to retry.
                        self.give_up();
                        return;
                    }
                    self.schedule_reconnect(now);
                }
            }
            Engine::Open => {
                self.engine = Engine::Idle;
                if reason == DisconnectReason::ClientDisconnect {
                    self.disconnect_all(now);
                    // The DISCONNECTs have no session to go out on.
                    self.purge_sends();
                    return;
                }
                self.lose_session(reason);
                self.backoff.reset();
                if self.is_active() {
                    self.schedule_reconnect(now);
                }
            }
            Engine::Closing { reconnect } => {
                self.engine = Engine::Idle;
                if !self.is_active() {
                    return;
                }
                if reconnect {
                    self.schedule_reconnect(now);
                } else {
                    // Closed on request, then a namespace was connected
                    // again: that is a fresh connection, not a retry.
                    self.open_engine(0);
                }
            }
        }
    }

    /// The server sent something invalid: close the session with
    /// `parse error` and reconnect per policy.
    pub(super) fn parse_error(&mut self) {
        self.lose_session(DisconnectReason::ParseError);
        self.outputs.push_back(ClientOutput::CloseEngine);
        self.engine = Engine::Closing {
            reconnect: self.is_active(),
        };
    }

    /// The session is gone: report disconnections, fail the acks of sent
    /// emits, and reset every wanted namespace to rejoin.
    pub(super) fn lose_session(&mut self, reason: DisconnectReason) {
        self.purge_sends();
        let mut idx = 0;
        while idx < self.namespaces.len() {
            if self.namespaces[idx].leaving {
                self.remove_namespace(idx);
                continue;
            }
            if self.namespaces[idx].is_connected() {
                self.events.push_back(ClientEvent::Disconnected {
                    nsp: self.namespaces[idx].name.clone(),
                    reason,
                });
            }
            self.fail_acks(idx, false);
            let ns = &mut self.namespaces[idx];
            ns.state = NspState::Pending;
            // Held events are dropped: the offset did not advance past them,
            // so the server replays them on the next recovery.
            ns.held.clear();
            ns.unanswered.clear();
            idx += 1;
        }
    }

    /// Schedule the next attempt, or give up.
    pub(super) fn schedule_reconnect(&mut self, now: Instant) {
        let limit = self.config.reconnection_attempts;
        if !self.config.reconnection || (limit != 0 && self.backoff.attempts() >= limit) {
            self.give_up();
            return;
        }
        let delay = self.backoff.next_delay(&mut *self.rng);
        self.engine = Engine::WaitingReconnect { at: now + delay };
        self.events.push_back(ClientEvent::ReconnectScheduled {
            attempt: self.backoff.attempts(),
            delay,
        });
    }

    /// Stop trying: every namespace is dropped.
    pub(super) fn give_up(&mut self) {
        self.backoff.reset();
        self.engine = Engine::Idle;
        while !self.namespaces.is_empty() {
            self.remove_namespace(self.namespaces.len() - 1);
        }
        self.events.push_back(ClientEvent::ReconnectFailed);
    }

    pub(super) fn open_engine(&mut self, attempt: u32) {
        self.engine = Engine::Opening { attempt };
        self.outputs.push_back(ClientOutput::OpenEngine);
    }

    /// Close the session for good (nothing wanted any more).
    pub(super) fn stop_engine(&mut self) {
        match self.engine {
            Engine::Open | Engine::Opening { .. } => {
                self.outputs.push_back(ClientOutput::CloseEngine);
                self.engine = Engine::Closing { reconnect: false };
            }
            Engine::Closing { .. } => self.engine = Engine::Closing { reconnect: false },
            Engine::WaitingReconnect { .. } | Engine::Idle => self.engine = Engine::Idle,
        }
        self.backoff.reset();
    }

    /// Close the session when no namespace is wanted any more (namespaces
    /// the application is leaving go with it).
    pub(super) fn close_if_unwanted(&mut self) {
        if self.is_active() {
            return;
        }
        while !self.namespaces.is_empty() {
            self.remove_namespace(self.namespaces.len() - 1);
        }
        if self.engine != Engine::Idle {
            self.stop_engine();
        }
    }

    /// Drop `Send`s still queued: they belong to a session that is gone.
    pub(super) fn purge_sends(&mut self) {
        self.outputs.retain(|o| !matches!(o, ClientOutput::Send(_)));
    }
}
