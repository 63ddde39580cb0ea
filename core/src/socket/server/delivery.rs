//! Handing messages to sessions, and the backpressure accounting of
//! their unwritten bytes (the slow-consumer rule).

use std::collections::VecDeque;
use std::time::Instant;

use super::super::reason::DisconnectReason;
use super::config::ServerConfig;
use super::events::{EngineCommand, ServerEvent};
use super::state::{EngineSession, SocketPhase};
use super::timers::{Timer, Timers};
use super::wire::message_len;
use super::Server;
use crate::engine::Message;
use crate::parser::Parser;
use crate::Str;

/// Queue messages for the engine on a session, counting their bytes.
pub(super) fn queue_sends<D>(
    commands: &mut VecDeque<EngineCommand>,
    eio: &Str,
    session: &mut EngineSession<D>,
    messages: &[Message],
) {
    for message in messages {
        session.buffered += message_len(message);
        commands.push_back(EngineCommand::Send {
            eio: eio.clone(),
            message: message.clone(),
        });
    }
}

/// After bytes were counted on a session: arm the slow-consumer timer over
/// the soft bound, and mark the session for closing over the hard one (it
/// is closed at the end of the call, not mid-broadcast).
pub(super) fn check_buffer<D>(
    config: &ServerConfig,
    timers: &mut Timers,
    overflowed: &mut Vec<Str>,
    now: Instant,
    eio: &Str,
    session: &mut EngineSession<D>,
) {
    if session.buffered > config.max_buffered_bytes && session.slow_timer.is_none() {
        session.slow_timer = Some(timers.schedule(
            now + config.slow_consumer_grace,
            Timer::SlowConsumer { eio: eio.clone() },
        ));
    }
    if session.buffered > config.max_buffered_bytes_hard && !overflowed.contains(eio) {
        overflowed.push(eio.clone());
    }
}

impl<P: Parser> Server<P> {
    /// Bytes handed to an Engine.IO session (or held for its pending
    /// sockets) and not yet reported written: what
    /// [`ServerConfig::max_buffered_bytes`] bounds. `None` for a session
    /// this layer does not know.
    pub fn session_buffered(&self, eio: &str) -> Option<usize> {
        self.sessions.get(eio).map(|s| s.buffered)
    }

    /// `bytes` of a session's buffer are gone: written, or never to be.
    pub(super) fn credit(&mut self, eio: &str, bytes: usize) {
        let Some(session) = self.sessions.get_mut(eio) else {
            return;
        };
        let was_over = session.buffered > self.config.max_buffered_bytes;
        session.buffered = session.buffered.saturating_sub(bytes);
        if was_over && session.buffered <= self.config.max_buffered_bytes {
            self.timers.cancel(session.slow_timer.take());
            for socket in session.sockets.values() {
                if self
                    .sockets
                    .get(socket)
                    .is_some_and(|s| s.phase.is_connected())
                {
                    self.events.push_back(ServerEvent::Writable {
                        socket: socket.clone(),
                    });
                }
            }
        }
    }

    /// Hand messages to a socket: to the engine when connected, held when
    /// pending. Volatile messages are skipped when the socket cannot take
    /// them now. Returns whether they were taken.
    ///
    /// Called once per receiver of a broadcast: it looks the socket and its
    /// session up once each, and per message only clones two shared
    /// buffers (the session id and the message) into a command.
    pub(super) fn deliver(
        &mut self,
        now: Instant,
        sid: &str,
        messages: &[Message],
        volatile: bool,
    ) -> bool {
        let Some(state) = self.sockets.get_mut(sid) else {
            return false;
        };
        let Some(session) = self.sessions.get_mut(&state.eio) else {
            return false;
        };
        match &mut state.phase {
            SocketPhase::Pending { .. } if volatile => return false,
            SocketPhase::Connected
                if volatile && session.buffered > self.config.max_buffered_bytes =>
            {
                return false
            }
            SocketPhase::Connected => {
                queue_sends(&mut self.commands, &state.eio, session, messages);
            }
            SocketPhase::Pending { held, .. } => {
                session.buffered += messages.iter().map(message_len).sum::<usize>();
                held.extend(messages.iter().cloned());
            }
        }
        check_buffer(
            &self.config,
            &mut self.timers,
            &mut self.overflowed,
            now,
            &state.eio,
            session,
        );
        true
    }

    /// Queue messages to a session, counting their bytes.
    pub(super) fn transmit(&mut self, now: Instant, eio: &Str, messages: &[Message]) {
        let Some(session) = self.sessions.get_mut(eio) else {
            return;
        };
        queue_sends(&mut self.commands, eio, session, messages);
        check_buffer(
            &self.config,
            &mut self.timers,
            &mut self.overflowed,
            now,
            eio,
            session,
        );
    }

    pub(super) fn close_overflowed(&mut self, now: Instant) {
        for eio in std::mem::take(&mut self.overflowed) {
            if self
                .sessions
                .get(&eio)
                .is_some_and(|s| s.buffered > self.config.max_buffered_bytes_hard)
            {
                self.abort_session(now, &eio, DisconnectReason::SlowConsumer);
            }
        }
    }
}
