//! The Socket.IO v5 client: namespaces multiplexed over one Engine.IO
//! session, events and acknowledgements, connection state recovery and the
//! reconnection policy, as pure state.
//!
//! # Layering
//! [`Client`] sits on top of an abstract Engine.IO client session that the
//! driver owns. It asks for sessions with [`ClientOutput::OpenEngine`] and
//! hears about them through [`Client::handle_engine_opened`],
//! [`Client::handle_message`] and [`Client::handle_engine_closed`].
//!
//! Session contract: after each [`ClientOutput::OpenEngine`] the driver
//! starts one Engine.IO session and reports [`Client::handle_engine_opened`]
//! at most once, then [`Client::handle_engine_closed`] exactly once when that
//! session ends or fails to open, including after the core asked for it with
//! [`ClientOutput::CloseEngine`]. Reports that arrive when no session is
//! expected are ignored.
//!
//! # Driving it
//! After every input (`handle_*`) or application call, drain
//! [`Client::poll_event`] until `None` (for the application) and
//! [`Client::poll_output`] until `None` (for the driver, in order: a
//! `CloseEngine` comes after the `Send`s that must be written before it);
//! the two queues are independent, so either may be drained first. Then
//! arm a timer for [`Client::poll_timeout`] and call
//! [`Client::handle_timeout`] when it is due.
//!
//! # Reconnection
//! When a session ends for a transport reason, a ping timeout or a parse
//! error, every namespace that was wanted (not left by the application, not
//! disconnected or refused by the server) is rejoined on a new session. The
//! delay before attempt `n` comes from [`Backoff`]; the attempt counter
//! resets when a session opens. [`Client::disconnect_all`] drops every
//! namespace and cancels any scheduled attempt, so nothing can reconnect
//! afterwards until the application connects a namespace again.
//!
//! # Connection state recovery
//! When a namespace's CONNECT reply carries a `pid`, recovery is active for
//! it: an event without an ack id whose last argument is a string has that
//! string stripped as the offset, which is remembered once the event is
//! delivered. Rejoining sends `{"pid", "offset"}` merged into the
//! namespace's auth. Events that arrive between the CONNECT and its reply
//! (the server replaying missed ones) are held and delivered right after
//! the [`ClientEvent::Connected`] event. If the session drops before the
//! reply, the held events are discarded: the offset only advances on
//! delivery, so the server replays them again and none is delivered twice.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use rand_core::RngCore;
use serde::Serialize;

use super::backoff::Backoff;
use super::reason::DisconnectReason;
use crate::engine::Message;
use crate::parser::{Args, DecodeLimits, EncodeError, Encoded, OutPacket, Parser};
use crate::value::Value;
use crate::Str;

use namespaces::{Namespace, NspState};
use session::Engine;

mod acks;
mod incoming;
mod namespaces;
mod session;
#[cfg(test)]
mod tests;

/// Client settings, with the reference client's defaults where it has them.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Whether to reconnect after the session is lost (default `true`).
    pub reconnection: bool,
    /// How many attempts before giving up; `0` means no limit (the default).
    pub reconnection_attempts: u32,
    /// The delay before the first attempt (default 1 s).
    pub reconnection_delay: Duration,
    /// The longest delay between attempts (default 5 s).
    pub reconnection_delay_max: Duration,
    /// Jitter factor in `(0, 1]`, anything else disables it (default 0.5).
    pub randomization_factor: f64,
    /// Most acknowledgements awaited at once per namespace (default 4096).
    pub max_pending_acks: usize,
    /// Most emits buffered per namespace while it is not connected
    /// (default 1024).
    pub max_buffered_emits: usize,
    /// Most events held per namespace while its CONNECT reply is awaited;
    /// more is treated as a protocol violation (default 10 000).
    pub max_held_events: usize,
    /// Most server events per namespace awaiting the application's answer;
    /// beyond it the oldest request is forgotten (default 4096).
    pub max_unanswered_acks: usize,
    /// Limits applied when decoding the server's packets.
    pub decode_limits: DecodeLimits,
    /// Whether a first connection that cannot be opened is retried per the
    /// reconnection policy (default `true`, as the JavaScript client), or
    /// given up at once with [`ClientEvent::ReconnectFailed`] (python-socketio's
    /// `retry=False`). Connections lost after a success are always retried
    /// per policy.
    pub retry_first_connection: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            reconnection: true,
            reconnection_attempts: 0,
            reconnection_delay: Duration::from_secs(1),
            reconnection_delay_max: Duration::from_secs(5),
            randomization_factor: 0.5,
            max_pending_acks: 4096,
            max_buffered_emits: 1024,
            max_held_events: 10_000,
            max_unanswered_acks: 4096,
            decode_limits: DecodeLimits::default(),
            retry_first_connection: true,
        }
    }
}

/// What the driver must do with the Engine.IO layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutput {
    /// Start a new Engine.IO session (the first connection, or a
    /// reconnection attempt whose delay has passed).
    OpenEngine,
    /// Send this message on the open session.
    Send(Message),
    /// Close the session after writing the messages queued before this.
    CloseEngine,
}

/// Why an acknowledgement will never arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckFailure {
    /// Its deadline passed.
    Timeout,
    /// The namespace disconnected before the answer came.
    Disconnected,
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The server accepted the namespace.
    Connected {
        /// Namespace.
        nsp: Str,
        /// The socket id the server gave (not the Engine.IO session id).
        sid: Str,
        /// Whether the server restored the previous session (recovery).
        recovered: bool,
    },
    /// The server refused the namespace; it is dropped and not retried.
    ConnectError {
        /// Namespace.
        nsp: Str,
        /// The refusal's `message` (or the whole payload when a string).
        message: String,
        /// The refusal's `data`, or the payload when it is neither an
        /// object nor a string.
        data: Option<Value>,
    },
    /// An event from the server.
    Event {
        /// Namespace.
        nsp: Str,
        /// Event name.
        name: Str,
        /// Arguments (without the recovery offset).
        args: Args,
        /// When set, answer once with [`Client::ack`].
        ack: Option<u64>,
    },
    /// The server answered an emit made with [`Client::emit_with_ack`].
    Ack {
        /// Namespace.
        nsp: Str,
        /// The id [`Client::emit_with_ack`] returned.
        id: u64,
        /// The answer.
        args: Args,
    },
    /// An acknowledgement will never arrive; its id is forgotten.
    AckFailed {
        /// Namespace.
        nsp: Str,
        /// The id [`Client::emit_with_ack`] returned.
        id: u64,
        /// Why.
        reason: AckFailure,
    },
    /// The namespace was connected and is not any more. After
    /// [`DisconnectReason::ClientDisconnect`] and
    /// [`DisconnectReason::ServerDisconnect`] it is dropped; after other
    /// reasons it is rejoined when the client reconnects.
    Disconnected {
        /// Namespace.
        nsp: Str,
        /// Why.
        reason: DisconnectReason,
    },
    /// A reconnection attempt starts (an [`ClientOutput::OpenEngine`]
    /// follows), counting from 1.
    Reconnecting {
        /// Attempt number.
        attempt: u32,
    },
    /// A session could not be opened (the connection was refused, the
    /// handshake failed); [`ClientEvent::ReconnectScheduled`] or
    /// [`ClientEvent::ReconnectFailed`] follows.
    OpenFailed {
        /// 0 for the connection the application asked for, then the
        /// reconnection attempt's number.
        attempt: u32,
        /// The namespaces that were waiting for that session.
        namespaces: Vec<Str>,
    },
    /// Reconnection attempt `attempt` starts after `delay`
    /// ([`ClientEvent::Reconnecting`] then).
    ReconnectScheduled {
        /// Attempt number, counting from 1.
        attempt: u32,
        /// The delay before it (back-off with jitter).
        delay: Duration,
    },
    /// The session of a reconnection attempt opened.
    Reconnected {
        /// The attempt that succeeded.
        attempt: u32,
    },
    /// The client gave up (attempts exhausted, or reconnection disabled):
    /// every namespace was dropped. Connecting one starts afresh.
    ReconnectFailed,
}

/// The application asked for something impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// A namespace must start with `/`.
    InvalidNamespace,
    /// The auth payload must be an object.
    InvalidAuth,
    /// The namespace is already connected or connecting.
    AlreadyConnected,
    /// The namespace was never connected, or was dropped.
    UnknownNamespace,
    /// The namespace is not connected (answering an ack needs it).
    NotConnected,
    /// The ack id was not requested by the server, or was answered already.
    UnknownAck,
    /// [`ClientConfig::max_pending_acks`] acknowledgements are awaited.
    TooManyPendingAcks,
    /// [`ClientConfig::max_buffered_emits`] emits wait for the connection.
    SendBufferFull,
    /// The packet could not be encoded.
    Encode(EncodeError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ClientError::InvalidNamespace => f.write_str("namespace must start with '/'"),
            ClientError::InvalidAuth => f.write_str("auth must be an object"),
            ClientError::AlreadyConnected => f.write_str("namespace already connected"),
            ClientError::UnknownNamespace => f.write_str("unknown namespace"),
            ClientError::NotConnected => f.write_str("namespace not connected"),
            ClientError::UnknownAck => f.write_str("no acknowledgement requested with this id"),
            ClientError::TooManyPendingAcks => f.write_str("too many pending acknowledgements"),
            ClientError::SendBufferFull => f.write_str("send buffer full"),
            ClientError::Encode(e) => write!(f, "encoding failed: {e}"),
        }
    }
}
impl std::error::Error for ClientError {}

impl From<EncodeError> for ClientError {
    fn from(e: EncodeError) -> Self {
        ClientError::Encode(e)
    }
}

/// The Socket.IO client state machine, generic over the wire format.
///
/// Every call takes `now` so that the driver's clock is the only clock;
/// calls that do not need it yet take it for a uniform interface.
pub struct Client<P: Parser> {
    config: ClientConfig,
    parser: P,
    decoder: P::Decoder,
    encoded: Encoded,
    rng: Box<dyn RngCore + Send>,
    backoff: Backoff,
    engine: Engine,
    namespaces: Vec<Namespace>,
    next_key: u64,
    /// Ack deadlines: (deadline, namespace key, ack id).
    ack_deadlines: BTreeSet<(Instant, u64, u64)>,
    events: VecDeque<ClientEvent>,
    outputs: VecDeque<ClientOutput>,
}

impl<P: Parser> fmt::Debug for Client<P> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Client")
            .field("engine", &self.engine)
            .field("namespaces", &self.namespaces.len())
            .finish_non_exhaustive()
    }
}

impl<P: Parser> Client<P> {
    /// A client with no namespace and no session: [`Client::connect`]
    /// starts one. Jitter for the back-off comes from `rng`.
    pub fn new(config: ClientConfig, parser: P, rng: Box<dyn RngCore + Send>) -> Client<P> {
        let backoff = Backoff::new(
            config.reconnection_delay,
            config.reconnection_delay_max,
            config.randomization_factor,
        );
        Client {
            config,
            parser,
            decoder: P::Decoder::default(),
            encoded: Encoded::default(),
            rng,
            backoff,
            engine: Engine::Idle,
            namespaces: Vec::new(),
            next_key: 0,
            ack_deadlines: BTreeSet::new(),
            events: VecDeque::new(),
            outputs: VecDeque::new(),
        }
    }

    /// Join namespace `nsp` with an optional `auth` object. Opens a session
    /// when none exists; sends CONNECT now when one is open.
    ///
    /// Connecting a namespace the application is leaving (its CONNECT reply
    /// still awaited) keeps it instead; the CONNECT already sent stands, so
    /// the new `auth` is used from the next session on.
    pub fn connect(
        &mut self,
        now: Instant,
        nsp: &str,
        auth: Option<Value>,
    ) -> Result<(), ClientError> {
        let _ = now;
        if !nsp.starts_with('/') {
            return Err(ClientError::InvalidNamespace);
        }
        if !matches!(auth, None | Some(Value::Object(_))) {
            return Err(ClientError::InvalidAuth);
        }
        if let Some(ns) = self.namespaces.iter_mut().find(|n| n.name == nsp) {
            if ns.leaving {
                ns.leaving = false;
                ns.auth = auth;
                return Ok(());
            }
            return Err(ClientError::AlreadyConnected);
        }
        let key = self.next_key;
        self.next_key += 1;
        self.namespaces.push(Namespace {
            name: Str::from(nsp),
            key,
            auth,
            state: NspState::Pending,
            leaving: false,
            pid: None,
            last_offset: None,
            next_ack_id: 0,
            pending_acks: HashMap::new(),
            send_buffer: VecDeque::new(),
            held: Vec::new(),
            unanswered: BTreeSet::new(),
        });
        match self.engine {
            Engine::Idle => self.open_engine(0),
            Engine::Open => {
                let idx = self.namespaces.len() - 1;
                if let Err(e) = self.send_connect(idx) {
                    self.namespaces.pop();
                    return Err(e);
                }
            }
            // Sent when the session opens; a closing session is followed by
            // a new one because a namespace is wanted again.
            Engine::Opening { .. } | Engine::WaitingReconnect { .. } | Engine::Closing { .. } => {}
        }
        Ok(())
    }

    /// Leave namespace `nsp`: DISCONNECT is sent when it is connected and
    /// [`ClientEvent::Disconnected`] with
    /// [`DisconnectReason::ClientDisconnect`] reported. Its pending acks fail.
    /// When no namespace is left, the session is closed.
    pub fn disconnect(&mut self, now: Instant, nsp: &str) -> Result<(), ClientError> {
        let _ = now;
        let idx = self
            .namespaces
            .iter()
            .position(|n| n.name == nsp && !n.leaving)
            .ok_or(ClientError::UnknownNamespace)?;
        match self.namespaces[idx].state {
            NspState::Connected { .. } => {
                self.send_disconnect(idx);
                let ns = self.remove_namespace(idx);
                self.events.push_back(ClientEvent::Disconnected {
                    nsp: ns.name,
                    reason: DisconnectReason::ClientDisconnect,
                });
            }
            NspState::Awaiting => {
                // The server may still accept it: answer its reply with a
                // DISCONNECT (a DISCONNECT sent now could overtake the
                // server's asynchronous accept and be ignored).
                self.fail_acks(idx, true);
                let ns = &mut self.namespaces[idx];
                ns.leaving = true;
                ns.send_buffer.clear();
                ns.held.clear();
            }
            NspState::Pending => {
                self.remove_namespace(idx);
            }
        }
        self.close_if_unwanted();
        Ok(())
    }

    /// The server sent event or ack arguments that are not valid (the JSON
    /// parser checks them lazily: [`crate::parser::Args::validate`] tells).
    /// Closes the session with `parse error`, then reconnects per policy, as
    /// for any invalid packet. Does nothing when no session is open.
    pub fn invalid_packet(&mut self, now: Instant) {
        let _ = now;
        if matches!(self.engine, Engine::Open) {
            self.parse_error();
        }
    }

    /// Leave every namespace and close the session for good: no
    /// reconnection happens afterwards, whatever the session was doing.
    pub fn disconnect_all(&mut self, now: Instant) {
        let _ = now;
        for idx in 0..self.namespaces.len() {
            if self.namespaces[idx].is_connected() {
                self.send_disconnect(idx);
            }
        }
        while !self.namespaces.is_empty() {
            let idx = self.namespaces.len() - 1;
            let was_connected =
                self.namespaces[idx].is_connected() && !self.namespaces[idx].leaving;
            let ns = self.remove_namespace(idx);
            if was_connected {
                self.events.push_back(ClientEvent::Disconnected {
                    nsp: ns.name,
                    reason: DisconnectReason::ClientDisconnect,
                });
            }
        }
        self.stop_engine();
    }

    /// Emit `event` with `args` (a tuple is spread into several arguments,
    /// `()` is none). Buffered until the namespace is connected.
    pub fn emit<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        nsp: &str,
        event: &str,
        args: &A,
    ) -> Result<(), ClientError> {
        let _ = now;
        let idx = self.find_wanted(nsp)?;
        self.check_buffer_room(idx)?;
        let messages = self.encode(&OutPacket::Event {
            nsp,
            event,
            args,
            ack: None,
        })?;
        self.send_or_buffer(idx, messages, None);
        Ok(())
    }

    /// Emit `event` only if the namespace is connected now; returns whether
    /// it was sent (volatile emits are never buffered).
    pub fn emit_volatile<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        nsp: &str,
        event: &str,
        args: &A,
    ) -> Result<bool, ClientError> {
        let _ = now;
        let idx = self.find_wanted(nsp)?;
        if !self.namespaces[idx].is_connected() {
            return Ok(false);
        }
        let messages = self.encode(&OutPacket::Event {
            nsp,
            event,
            args,
            ack: None,
        })?;
        self.outputs
            .extend(messages.into_iter().map(ClientOutput::Send));
        Ok(true)
    }

    /// Whether `nsp` is connected.
    pub fn is_connected(&self, nsp: &str) -> bool {
        self.namespaces
            .iter()
            .any(|n| n.name == nsp && !n.leaving && n.is_connected())
    }

    /// The socket id of `nsp` while connected.
    pub fn socket_id(&self, nsp: &str) -> Option<&str> {
        self.namespaces.iter().find_map(|n| match &n.state {
            NspState::Connected { sid } if n.name == nsp && !n.leaving => Some(&**sid),
            _ => None,
        })
    }

    /// The namespaces connected now, in the order they were asked for.
    pub fn connected_namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces
            .iter()
            .filter(|n| !n.leaving && n.is_connected())
            .map(|n| &*n.name)
    }

    /// Replace the auth object of wanted namespace `nsp`, sent with its
    /// next CONNECT (the next session's; one already sent stands). For
    /// credentials refreshed before each reconnection.
    pub fn set_auth(&mut self, nsp: &str, auth: Option<Value>) -> Result<(), ClientError> {
        if !matches!(auth, None | Some(Value::Object(_))) {
            return Err(ClientError::InvalidAuth);
        }
        let idx = self.find_wanted(nsp)?;
        self.namespaces[idx].auth = auth;
        Ok(())
    }

    /// The names of the namespaces still wanted.
    fn wanted_names(&self) -> Vec<Str> {
        self.namespaces
            .iter()
            .filter(|n| !n.leaving)
            .map(|n| n.name.clone())
            .collect()
    }

    /// Whether any namespace is wanted (connected, connecting, or waiting
    /// to reconnect).
    pub fn is_active(&self) -> bool {
        self.namespaces.iter().any(|n| !n.leaving)
    }

    /// Time passed: fires ack deadlines and a due reconnection attempt.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, key, id)) = self.ack_deadlines.first() {
            if at > now {
                break;
            }
            self.ack_deadlines.pop_first();
            let Some(ns) = self.namespaces.iter_mut().find(|n| n.key == key) else {
                continue;
            };
            ns.pending_acks.remove(&id);
            // Like the reference, an expired emit still buffered is not
            // sent any more.
            ns.send_buffer.retain(|b| b.ack != Some(id));
            self.events.push_back(ClientEvent::AckFailed {
                nsp: ns.name.clone(),
                id,
                reason: AckFailure::Timeout,
            });
        }
        if let Engine::WaitingReconnect { at } = self.engine {
            if at <= now {
                let attempt = self.backoff.attempts();
                self.events.push_back(ClientEvent::Reconnecting { attempt });
                self.open_engine(attempt);
            }
        }
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The next thing the driver must do with the Engine.IO layer.
    pub fn poll_output(&mut self) -> Option<ClientOutput> {
        self.outputs.pop_front()
    }

    /// The next deadline: an ack timeout or a reconnection attempt.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ack = self.ack_deadlines.first().map(|&(at, _, _)| at);
        let reconnect = match self.engine {
            Engine::WaitingReconnect { at } => Some(at),
            _ => None,
        };
        match (ack, reconnect) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn encode<A: Serialize + ?Sized>(
        &mut self,
        packet: &OutPacket<'_, A>,
    ) -> Result<Vec<Message>, EncodeError> {
        self.parser.encode(packet, &mut self.encoded)?;
        let mut messages = Vec::with_capacity(1 + self.encoded.attachments.len());
        let data = self.encoded.data.split().freeze();
        messages.push(if self.encoded.binary {
            Message::Binary(data)
        } else {
            match Str::try_from(data) {
                Ok(text) => Message::Text(text),
                Err(_) => {
                    return Err(EncodeError::Serialize(
                        "text packet is not UTF-8".to_owned(),
                    ))
                }
            }
        });
        messages.extend(self.encoded.attachments.drain(..).map(Message::Binary));
        Ok(messages)
    }
}
