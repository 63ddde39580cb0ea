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
use super::packet::{Packet, PacketData};
use super::reason::DisconnectReason;
use crate::engine::{Handshake, Message};
use crate::parser::{Args, DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Parser};
use crate::value::Value;
use crate::Str;

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

/// Where the Engine.IO session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
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

/// Where one namespace stands within the current session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NspState {
    /// Wanted; CONNECT not sent in the current session (none open yet).
    Pending,
    /// CONNECT sent, reply awaited.
    Awaiting,
    /// Accepted with this socket id.
    Connected { sid: Str },
}

/// An emit waiting for the namespace to connect, already encoded.
#[derive(Debug)]
struct BufferedEmit {
    messages: Vec<Message>,
    ack: Option<u64>,
}

/// An acknowledgement the client awaits.
#[derive(Debug, Clone, Copy)]
struct PendingAck {
    deadline: Option<Instant>,
    /// Whether the EVENT went out (otherwise it sits in the send buffer and
    /// survives a disconnection, like the reference's `sendBuffer`).
    sent: bool,
}

/// An event received before the CONNECT reply.
#[derive(Debug)]
struct HeldEvent {
    name: Str,
    args: Args,
    ack: Option<u64>,
}

#[derive(Debug)]
struct Namespace {
    name: Str,
    /// Unique among all namespaces ever created by this client, so timer
    /// entries of a dropped namespace never match a new one of that name.
    key: u64,
    auth: Option<Value>,
    state: NspState,
    /// The application left while the CONNECT reply was awaited: answer the
    /// reply with a DISCONNECT and drop silently.
    leaving: bool,
    pid: Option<Str>,
    last_offset: Option<Str>,
    next_ack_id: u64,
    pending_acks: HashMap<u64, PendingAck>,
    send_buffer: VecDeque<BufferedEmit>,
    held: Vec<HeldEvent>,
    /// Ack ids the server requested and the application has not answered.
    unanswered: BTreeSet<u64>,
}

impl Namespace {
    fn is_connected(&self) -> bool {
        matches!(self.state, NspState::Connected { .. })
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

    // ----- application calls -------------------------------------------

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

    /// Whether any namespace is wanted (connected, connecting, or waiting
    /// to reconnect).
    pub fn is_active(&self) -> bool {
        self.namespaces.iter().any(|n| !n.leaving)
    }

    // ----- engine inputs -----------------------------------------------

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

    /// A message from the open session.
    pub fn handle_message(&mut self, now: Instant, message: Message) {
        let _ = now;
        if self.engine != Engine::Open {
            return;
        }
        match self
            .parser
            .decode(&mut self.decoder, message, &self.config.decode_limits)
        {
            Ok(None) => {}
            Ok(Some(packet)) => self.handle_packet(packet),
            Err(DecodeError::TooManyAttachmentBytes {
                pending,
                incoming,
                limit,
            }) => {
                tracing::warn!(
                    pending,
                    incoming,
                    limit,
                    "binary attachments from the server over max_pending_attachment_bytes: closing the session"
                );
                self.parse_error();
            }
            Err(e) => {
                tracing::debug!(error = %e, "invalid packet from the server");
                self.parse_error();
            }
        }
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
            Engine::Opening { .. } => {
                self.engine = Engine::Idle;
                self.purge_sends();
                if reason == DisconnectReason::ClientDisconnect {
                    self.disconnect_all(now);
                } else {
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

    // ----- outputs -----------------------------------------------------

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

    // ----- internals ---------------------------------------------------

    fn handle_packet(&mut self, packet: Packet) {
        let Some(idx) = self.namespaces.iter().position(|n| n.name == packet.nsp) else {
            // Nothing for a namespace the client does not know (a late
            // packet for one it left).
            return;
        };
        match packet.data {
            PacketData::Connect(data) => {
                if self.namespaces[idx].state != NspState::Awaiting {
                    return;
                }
                let sid = data
                    .as_ref()
                    .and_then(|d| d.get("sid"))
                    .and_then(Value::as_str);
                let Some(sid) = sid else {
                    // A v5 server always sends a sid.
                    self.parse_error();
                    return;
                };
                let sid = Str::from(sid);
                let pid = data
                    .as_ref()
                    .and_then(|d| d.get("pid"))
                    .and_then(Value::as_str)
                    .map(Str::from);
                self.on_connect_reply(idx, sid, pid);
            }
            PacketData::Disconnect => {
                if !self.namespaces[idx].is_connected() || self.namespaces[idx].leaving {
                    return;
                }
                let ns = self.remove_namespace(idx);
                self.events.push_back(ClientEvent::Disconnected {
                    nsp: ns.name,
                    reason: DisconnectReason::ServerDisconnect,
                });
                self.close_if_unwanted();
            }
            PacketData::Event { name, args, ack } => match self.namespaces[idx].state {
                NspState::Connected { .. } => self.deliver_event(idx, name, args, ack),
                NspState::Awaiting if !self.namespaces[idx].leaving => {
                    if self.namespaces[idx].held.len() >= self.config.max_held_events {
                        self.parse_error();
                        return;
                    }
                    self.namespaces[idx]
                        .held
                        .push(HeldEvent { name, args, ack });
                }
                _ => {}
            },
            PacketData::Ack { id, args } => {
                let ns = &mut self.namespaces[idx];
                if !ns.is_connected() {
                    return;
                }
                let Some(pending) = ns.pending_acks.remove(&id) else {
                    return;
                };
                if let Some(at) = pending.deadline {
                    self.ack_deadlines.remove(&(at, ns.key, id));
                }
                self.events.push_back(ClientEvent::Ack {
                    nsp: ns.name.clone(),
                    id,
                    args,
                });
            }
            PacketData::ConnectError(data) => {
                if self.namespaces[idx].state != NspState::Awaiting {
                    return;
                }
                let ns = self.remove_namespace(idx);
                if !ns.leaving {
                    let (message, data) = match data {
                        Value::String(s) => (s, None),
                        Value::Object(_) => (
                            data.get("message")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                            data.get("data").cloned(),
                        ),
                        other => (String::new(), Some(other)),
                    };
                    self.events.push_back(ClientEvent::ConnectError {
                        nsp: ns.name,
                        message,
                        data,
                    });
                }
                self.close_if_unwanted();
            }
        }
    }

    fn on_connect_reply(&mut self, idx: usize, sid: Str, pid: Option<Str>) {
        if self.namespaces[idx].leaving {
            self.send_disconnect(idx);
            self.remove_namespace(idx);
            self.close_if_unwanted();
            return;
        }
        let ns = &mut self.namespaces[idx];
        let recovered = pid.is_some() && ns.pid == pid;
        if !recovered {
            // Offsets belong to the previous session.
            ns.last_offset = None;
        }
        ns.pid = pid;
        ns.state = NspState::Connected { sid: sid.clone() };
        self.events.push_back(ClientEvent::Connected {
            nsp: ns.name.clone(),
            sid,
            recovered,
        });
        for buffered in std::mem::take(&mut ns.send_buffer) {
            if let Some(id) = buffered.ack {
                if let Some(p) = ns.pending_acks.get_mut(&id) {
                    p.sent = true;
                }
            }
            self.outputs
                .extend(buffered.messages.into_iter().map(ClientOutput::Send));
        }
        let held = std::mem::take(&mut ns.held);
        for event in held {
            self.deliver_event(idx, event.name, event.args, event.ack);
        }
    }

    /// Hand an event to the application, stripping and remembering the
    /// recovery offset when recovery is active.
    fn deliver_event(&mut self, idx: usize, name: Str, mut args: Args, ack: Option<u64>) {
        let max_unanswered = self.config.max_unanswered_acks;
        let ns = &mut self.namespaces[idx];
        if ns.pid.is_some() && ack.is_none() {
            if let Some((rest, offset)) = split_offset(&args) {
                args = rest;
                ns.last_offset = Some(offset);
            }
        }
        if let Some(id) = ack {
            if max_unanswered == 0 {
                // Nothing can be remembered: the event still reaches the
                // application, which cannot answer it.
            } else {
                while ns.unanswered.len() >= max_unanswered {
                    ns.unanswered.pop_first();
                }
                ns.unanswered.insert(id);
            }
        }
        self.events.push_back(ClientEvent::Event {
            nsp: ns.name.clone(),
            name,
            args,
            ack,
        });
    }

    /// The server sent something invalid: close the session with
    /// `parse error` and reconnect per policy.
    fn parse_error(&mut self) {
        self.lose_session(DisconnectReason::ParseError);
        self.outputs.push_back(ClientOutput::CloseEngine);
        self.engine = Engine::Closing {
            reconnect: self.is_active(),
        };
    }

    /// The session is gone: report disconnections, fail the acks of sent
    /// emits, and reset every wanted namespace to rejoin.
    fn lose_session(&mut self, reason: DisconnectReason) {
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
    fn schedule_reconnect(&mut self, now: Instant) {
        let limit = self.config.reconnection_attempts;
        if !self.config.reconnection || (limit != 0 && self.backoff.attempts() >= limit) {
            self.backoff.reset();
            self.engine = Engine::Idle;
            while !self.namespaces.is_empty() {
                self.remove_namespace(self.namespaces.len() - 1);
            }
            self.events.push_back(ClientEvent::ReconnectFailed);
            return;
        }
        let delay = self.backoff.next_delay(&mut *self.rng);
        self.engine = Engine::WaitingReconnect { at: now + delay };
    }

    fn open_engine(&mut self, attempt: u32) {
        self.engine = Engine::Opening { attempt };
        self.outputs.push_back(ClientOutput::OpenEngine);
    }

    /// Close the session for good (nothing wanted any more).
    fn stop_engine(&mut self) {
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
    fn close_if_unwanted(&mut self) {
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
    fn purge_sends(&mut self) {
        self.outputs.retain(|o| !matches!(o, ClientOutput::Send(_)));
    }

    /// Fail acknowledgements of namespace `idx`: all of them when
    /// `include_buffered`, otherwise only those whose emit went out.
    fn fail_acks(&mut self, idx: usize, include_buffered: bool) {
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

    /// Drop namespace `idx` with everything it holds; its acks fail.
    fn remove_namespace(&mut self, idx: usize) -> Namespace {
        self.fail_acks(idx, true);
        self.namespaces.remove(idx)
    }

    fn find_wanted(&self, nsp: &str) -> Result<usize, ClientError> {
        self.namespaces
            .iter()
            .position(|n| n.name == nsp && !n.leaving)
            .ok_or(ClientError::UnknownNamespace)
    }

    fn check_buffer_room(&self, idx: usize) -> Result<(), ClientError> {
        let ns = &self.namespaces[idx];
        if !ns.is_connected() && ns.send_buffer.len() >= self.config.max_buffered_emits {
            return Err(ClientError::SendBufferFull);
        }
        Ok(())
    }

    fn send_or_buffer(&mut self, idx: usize, messages: Vec<Message>, ack: Option<u64>) {
        let ns = &mut self.namespaces[idx];
        if ns.is_connected() {
            if let Some(id) = ack {
                if let Some(p) = ns.pending_acks.get_mut(&id) {
                    p.sent = true;
                }
            }
            self.outputs
                .extend(messages.into_iter().map(ClientOutput::Send));
        } else {
            ns.send_buffer.push_back(BufferedEmit { messages, ack });
        }
    }

    fn send_connect(&mut self, idx: usize) -> Result<(), ClientError> {
        let ns = &self.namespaces[idx];
        let data = connect_payload(ns);
        let name = ns.name.clone();
        let messages = self.encode(&OutPacket::Connect {
            nsp: &name,
            data: data.as_ref(),
        })?;
        self.outputs
            .extend(messages.into_iter().map(ClientOutput::Send));
        self.namespaces[idx].state = NspState::Awaiting;
        Ok(())
    }

    fn send_disconnect(&mut self, idx: usize) {
        let name = self.namespaces[idx].name.clone();
        match self.encode::<()>(&OutPacket::Disconnect { nsp: &name }) {
            Ok(messages) => self
                .outputs
                .extend(messages.into_iter().map(ClientOutput::Send)),
            // The namespace was validated when connected; nothing else can
            // fail in a DISCONNECT.
            Err(e) => tracing::warn!(error = %e, "DISCONNECT failed to encode"),
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

    /// Total acknowledgements awaited and deadline entries (for tests).
    #[cfg(test)]
    fn ack_bookkeeping(&self) -> (usize, usize, usize) {
        let pending = self.namespaces.iter().map(|n| n.pending_acks.len()).sum();
        let buffered = self.namespaces.iter().map(|n| n.send_buffer.len()).sum();
        (pending, self.ack_deadlines.len(), buffered)
    }
}

/// The CONNECT payload: the auth object, with `{"pid", "offset"}` first
/// when recovering (auth keys of the same name win, as with the reference's
/// `Object.assign`).
fn connect_payload(ns: &Namespace) -> Option<Value> {
    let Some(pid) = &ns.pid else {
        return ns.auth.clone();
    };
    let mut map = vec![("pid".to_owned(), Value::String(pid.to_string()))];
    if let Some(offset) = &ns.last_offset {
        map.push(("offset".to_owned(), Value::String(offset.to_string())));
    }
    if let Some(Value::Object(auth)) = &ns.auth {
        for (k, v) in auth {
            match map.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v.clone(),
                None => map.push((k.clone(), v.clone())),
            }
        }
    }
    Some(Value::Object(map))
}

/// Split the recovery offset (a string last argument) off `args`.
///
/// Goes through values; a zero-copy `Args::pop_last` would avoid it.
fn split_offset(args: &Args) -> Option<(Args, Str)> {
    let mut values = args.to_values().ok()?;
    let Some(Value::String(_)) = values.last() else {
        return None;
    };
    let Some(Value::String(offset)) = values.pop() else {
        return None;
    };
    Some((Args::from_values(values), Str::from(offset)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::JsonParser;
    use bytes::Bytes;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const OPEN: &str = "<open>";
    const CLOSE: &str = "<close>";

    fn client_with(config: ClientConfig) -> Client<JsonParser> {
        Client::new(config, JsonParser, Box::new(ChaCha8Rng::seed_from_u64(42)))
    }

    fn client() -> Client<JsonParser> {
        client_with(ClientConfig::default())
    }

    fn handshake() -> Handshake {
        Handshake {
            sid: Str::from("eio-sid"),
            upgrades: vec![],
            ping_interval: 25_000,
            ping_timeout: 20_000,
            max_payload: 1_000_000,
        }
    }

    fn auth(pairs: &[(&str, &str)]) -> Option<Value> {
        Some(Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect(),
        ))
    }

    /// Drain the driver outputs, text messages written as on the wire (the
    /// Engine.IO message type `4` before the Socket.IO packet) so tests
    /// read like captures.
    fn outputs(c: &mut Client<JsonParser>) -> Vec<String> {
        std::iter::from_fn(|| c.poll_output())
            .map(|o| match o {
                ClientOutput::OpenEngine => OPEN.to_owned(),
                ClientOutput::CloseEngine => CLOSE.to_owned(),
                ClientOutput::Send(Message::Text(t)) => format!("4{t}"),
                ClientOutput::Send(Message::Binary(b)) => format!("<bin {}>", b.len()),
            })
            .collect()
    }

    fn events(c: &mut Client<JsonParser>) -> Vec<ClientEvent> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    /// Feed a text message written as on the wire (`4` + packet).
    fn recv(c: &mut Client<JsonParser>, now: Instant, wire: &str) {
        let packet = wire.strip_prefix('4').expect("an Engine.IO message");
        c.handle_message(now, Message::Text(Str::from(packet)));
    }

    fn values(items: &[&str]) -> Args {
        Args::from_values(items.iter().map(|s| Value::from(*s)).collect())
    }

    fn connected(nsp: &str, sid: &str, recovered: bool) -> ClientEvent {
        ClientEvent::Connected {
            nsp: Str::from(nsp),
            sid: Str::from(sid),
            recovered,
        }
    }

    fn disconnected(nsp: &str, reason: DisconnectReason) -> ClientEvent {
        ClientEvent::Disconnected {
            nsp: Str::from(nsp),
            reason,
        }
    }

    fn event(nsp: &str, name: &str, args: &[&str], ack: Option<u64>) -> ClientEvent {
        ClientEvent::Event {
            nsp: Str::from(nsp),
            name: Str::from(name),
            args: values(args),
            ack,
        }
    }

    /// A client with `/` connected (sid `a`), queues drained.
    fn connected_root(now: Instant) -> Client<JsonParser> {
        let mut c = client();
        c.connect(now, "/", None).unwrap();
        c.handle_engine_opened(now, &handshake());
        recv(&mut c, now, "40{\"sid\":\"a\"}");
        outputs(&mut c);
        events(&mut c);
        c
    }

    /// Lose the session and run the reconnection timer until the engine is
    /// asked for again; returns the time of the attempt.
    fn reconnect(c: &mut Client<JsonParser>, now: Instant) -> Instant {
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        let at = c.poll_timeout().expect("reconnection scheduled");
        c.handle_timeout(at);
        assert_eq!(outputs(c), [OPEN]);
        c.handle_engine_opened(at, &handshake());
        at
    }

    #[test]
    fn namespaces_share_one_session_with_exact_auth_bytes() {
        let now = Instant::now();
        let mut c = client();
        c.connect(now, "/", None).unwrap();
        c.connect(now, "/custom", auth(&[("token", "x")])).unwrap();
        assert_eq!(outputs(&mut c), [OPEN], "one session for both");
        c.handle_engine_opened(now, &handshake());
        assert_eq!(outputs(&mut c), ["40", "40/custom,{\"token\":\"x\"}"]);
        recv(&mut c, now, "40/custom,{\"sid\":\"b\"}");
        recv(&mut c, now, "40{\"sid\":\"a\"}");
        assert_eq!(
            events(&mut c),
            [connected("/custom", "b", false), connected("/", "a", false)]
        );
        assert_eq!(c.socket_id("/"), Some("a"));
        assert_eq!(c.socket_id("/custom"), Some("b"));
        // A namespace joined while the session is open goes out at once.
        c.connect(now, "/late", None).unwrap();
        assert_eq!(outputs(&mut c), ["40/late,"]);
    }

    #[test]
    fn connect_error_drops_the_namespace() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.connect(now, "/admin", None).unwrap();
        c.connect(now, "/str", None).unwrap();
        outputs(&mut c);
        recv(
            &mut c,
            now,
            "44/admin,{\"message\":\"not authorized\",\"data\":{\"code\":1}}",
        );
        recv(&mut c, now, "44/str,\"refused\"");
        assert_eq!(
            events(&mut c),
            [
                ClientEvent::ConnectError {
                    nsp: Str::from("/admin"),
                    message: "not authorized".to_owned(),
                    data: Some(Value::Object(vec![("code".to_owned(), Value::from(1u64))])),
                },
                ClientEvent::ConnectError {
                    nsp: Str::from("/str"),
                    message: "refused".to_owned(),
                    data: None,
                },
            ]
        );
        assert!(!c.is_connected("/admin"));
        assert_eq!(
            c.emit(now, "/admin", "x", &()),
            Err(ClientError::UnknownNamespace)
        );
        assert_eq!(outputs(&mut c), Vec::<String>::new(), "/ keeps the session");
        // Refused namespaces are not rejoined.
        reconnect(&mut c, now);
        assert_eq!(outputs(&mut c), ["40"]);
    }

    #[test]
    fn connect_error_of_the_only_namespace_closes_the_session() {
        let now = Instant::now();
        let mut c = client();
        c.connect(now, "/", None).unwrap();
        c.handle_engine_opened(now, &handshake());
        outputs(&mut c);
        recv(&mut c, now, "44{\"message\":\"no\"}");
        assert_eq!(outputs(&mut c), [CLOSE]);
        c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
        assert_eq!(c.poll_timeout(), None);
        assert!(!c.is_active());
    }

    #[test]
    fn server_disconnect_is_not_rejoined() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.connect(now, "/custom", None).unwrap();
        recv(&mut c, now, "40/custom,{\"sid\":\"b\"}");
        outputs(&mut c);
        events(&mut c);
        recv(&mut c, now, "41/custom,");
        assert_eq!(
            events(&mut c),
            [disconnected("/custom", DisconnectReason::ServerDisconnect)]
        );
        assert!(outputs(&mut c).is_empty(), "no reply to DISCONNECT");
        reconnect(&mut c, now);
        assert_eq!(outputs(&mut c), ["40"], "only / rejoins");
        // The server disconnecting the last namespace closes the session
        // and nothing reconnects.
        recv(&mut c, now, "40{\"sid\":\"a2\"}");
        recv(&mut c, now, "41");
        assert_eq!(outputs(&mut c), [CLOSE]);
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        assert_eq!(c.poll_timeout(), None);
        c.handle_timeout(now + Duration::from_secs(60));
        assert!(outputs(&mut c).is_empty());
    }

    #[test]
    fn client_disconnect_sends_41_and_closes_when_last() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.connect(now, "/custom", None).unwrap();
        recv(&mut c, now, "40/custom,{\"sid\":\"b\"}");
        outputs(&mut c);
        events(&mut c);
        c.disconnect(now, "/custom").unwrap();
        assert_eq!(outputs(&mut c), ["41/custom,"]);
        assert_eq!(
            events(&mut c),
            [disconnected("/custom", DisconnectReason::ClientDisconnect)]
        );
        assert_eq!(
            c.disconnect(now, "/custom"),
            Err(ClientError::UnknownNamespace)
        );
        c.disconnect(now, "/").unwrap();
        assert_eq!(outputs(&mut c), ["41", CLOSE]);
        c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
        assert_eq!(c.poll_timeout(), None, "no reconnection");
        assert!(outputs(&mut c).is_empty());
    }

    #[test]
    fn disconnect_all_stops_a_scheduled_reconnection_for_good() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        assert!(c.poll_timeout().is_some());
        c.disconnect_all(now);
        assert_eq!(c.poll_timeout(), None);
        c.handle_timeout(now + Duration::from_secs(3600));
        assert!(outputs(&mut c).is_empty());
        // Also while an attempt is opening: its close report does not
        // schedule another.
        let mut c = connected_root(now);
        let at = {
            c.handle_engine_closed(now, DisconnectReason::TransportClose);
            let at = c.poll_timeout().unwrap();
            c.handle_timeout(at);
            at
        };
        assert_eq!(outputs(&mut c), [OPEN]);
        c.disconnect_all(at);
        assert_eq!(outputs(&mut c), [CLOSE]);
        c.handle_engine_closed(at, DisconnectReason::TransportError);
        assert_eq!(c.poll_timeout(), None);
        assert!(outputs(&mut c).is_empty());
        // And on an open session: DISCONNECT for each, then close.
        let mut c = connected_root(now);
        c.disconnect_all(now);
        assert_eq!(outputs(&mut c), ["41", CLOSE]);
        assert_eq!(
            events(&mut c),
            [disconnected("/", DisconnectReason::ClientDisconnect)]
        );
        c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn ack_round_trip_client_to_server() {
        let now = Instant::now();
        let mut c = connected_root(now);
        let id = c
            .emit_with_ack(now, "/", "hello", &("hi", 1), None)
            .unwrap();
        assert_eq!(id, 0);
        assert_eq!(outputs(&mut c), ["420[\"hello\",\"hi\",1]"]);
        recv(&mut c, now, "439[\"stray\"]");
        assert!(events(&mut c).is_empty(), "unknown ack id ignored");
        recv(&mut c, now, "430[\"ok\"]");
        assert_eq!(
            events(&mut c),
            [ClientEvent::Ack {
                nsp: Str::from("/"),
                id: 0,
                args: values(&["ok"]),
            }]
        );
        recv(&mut c, now, "430[\"again\"]");
        assert!(events(&mut c).is_empty(), "answered once");
        assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
        let id = c.emit_with_ack(now, "/", "next", &(), None).unwrap();
        assert_eq!(id, 1, "ids count per namespace");
    }

    #[test]
    fn ack_round_trip_server_to_client() {
        let now = Instant::now();
        let mut c = connected_root(now);
        recv(&mut c, now, "425[\"question\",\"q\"]");
        assert_eq!(events(&mut c), [event("/", "question", &["q"], Some(5))]);
        c.ack(now, "/", 5, &("answer",)).unwrap();
        assert_eq!(outputs(&mut c), ["435[\"answer\"]"]);
        assert_eq!(c.ack(now, "/", 5, &()), Err(ClientError::UnknownAck));
        assert_eq!(c.ack(now, "/", 6, &()), Err(ClientError::UnknownAck));
        assert_eq!(
            c.ack(now, "/nope", 5, &()),
            Err(ClientError::UnknownNamespace)
        );
    }

    #[test]
    fn ack_timeout() {
        let now = Instant::now();
        let mut c = connected_root(now);
        let id = c
            .emit_with_ack(now, "/", "slow", &(), Some(Duration::from_millis(100)))
            .unwrap();
        outputs(&mut c);
        assert_eq!(c.poll_timeout(), Some(now + Duration::from_millis(100)));
        c.handle_timeout(now + Duration::from_millis(99));
        assert!(events(&mut c).is_empty());
        c.handle_timeout(now + Duration::from_millis(100));
        assert_eq!(
            events(&mut c),
            [ClientEvent::AckFailed {
                nsp: Str::from("/"),
                id,
                reason: AckFailure::Timeout,
            }]
        );
        assert_eq!(c.poll_timeout(), None);
        recv(&mut c, now, "430[]");
        assert!(events(&mut c).is_empty(), "late answer ignored");
        assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
    }

    #[test]
    fn ten_thousand_abandoned_acks_are_freed_on_disconnect() {
        let now = Instant::now();
        let mut c = client_with(ClientConfig {
            max_pending_acks: 10_000,
            ..ClientConfig::default()
        });
        c.connect(now, "/", None).unwrap();
        c.handle_engine_opened(now, &handshake());
        recv(&mut c, now, "40{\"sid\":\"a\"}");
        for i in 0..10_000u64 {
            let timeout = (i % 2 == 0).then(|| Duration::from_secs(30));
            c.emit_with_ack(now, "/", "e", &(), timeout).unwrap();
        }
        assert_eq!(
            c.emit_with_ack(now, "/", "e", &(), None),
            Err(ClientError::TooManyPendingAcks)
        );
        assert_eq!(c.ack_bookkeeping(), (10_000, 5_000, 0));
        events(&mut c);
        outputs(&mut c);
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        let failed = events(&mut c)
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    ClientEvent::AckFailed {
                        reason: AckFailure::Disconnected,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(failed, 10_000);
        assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
        // Same when the application leaves.
        let mut c = connected_root(now);
        for _ in 0..1000 {
            c.emit_with_ack(now, "/", "e", &(), Some(Duration::from_secs(1)))
                .unwrap();
        }
        c.disconnect(now, "/").unwrap();
        assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn emits_before_connect_are_buffered_in_order() {
        let now = Instant::now();
        let mut c = client_with(ClientConfig {
            max_buffered_emits: 3,
            ..ClientConfig::default()
        });
        c.connect(now, "/", None).unwrap();
        c.emit(now, "/", "a", &1).unwrap();
        let id = c.emit_with_ack(now, "/", "b", &(), None).unwrap();
        assert_eq!(c.emit_volatile(now, "/", "v", &()), Ok(false));
        c.emit(now, "/", "c", &()).unwrap();
        assert_eq!(c.emit(now, "/", "d", &()), Err(ClientError::SendBufferFull));
        assert_eq!(outputs(&mut c), [OPEN]);
        c.handle_engine_opened(now, &handshake());
        assert_eq!(outputs(&mut c), ["40"], "nothing before the reply");
        recv(&mut c, now, "40{\"sid\":\"a\"}");
        assert_eq!(
            outputs(&mut c),
            [
                "42[\"a\",1]",
                format!("42{id}[\"b\"]").as_str(),
                "42[\"c\"]"
            ]
        );
        assert_eq!(c.emit_volatile(now, "/", "v", &()), Ok(true));
        assert_eq!(outputs(&mut c), ["42[\"v\"]"]);
        assert_eq!(
            c.emit(now, "/nope", "x", &()),
            Err(ClientError::UnknownNamespace)
        );
    }

    #[test]
    fn buffered_ack_survives_a_drop_and_is_sent_after_rejoin() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.handle_engine_closed(now, DisconnectReason::PingTimeout);
        assert_eq!(
            events(&mut c),
            [disconnected("/", DisconnectReason::PingTimeout)]
        );
        let id = c.emit_with_ack(now, "/", "later", &(), None).unwrap();
        let at = c.poll_timeout().unwrap();
        c.handle_timeout(at);
        c.handle_engine_opened(at, &handshake());
        recv(&mut c, at, "40{\"sid\":\"a2\"}");
        assert_eq!(
            outputs(&mut c),
            [OPEN, "40", format!("42{id}[\"later\"]").as_str()]
        );
        assert_eq!(c.ack_bookkeeping(), (1, 0, 0));
    }

    #[test]
    fn backoff_sequence_with_seeded_rng() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        events(&mut c);
        let mut t = now;
        for n in 0..6u32 {
            let at = c.poll_timeout().expect("scheduled");
            let delay = at - t;
            let base = Duration::from_secs(1) * 2u32.pow(n);
            let low = (base / 2).min(Duration::from_secs(5));
            let high = (base * 3 / 2).min(Duration::from_secs(5));
            assert!(delay >= low && delay <= high, "attempt {n}: {delay:?}");
            c.handle_timeout(at - Duration::from_millis(1));
            assert!(outputs(&mut c).is_empty(), "not before its time");
            c.handle_timeout(at);
            assert_eq!(
                events(&mut c),
                [ClientEvent::Reconnecting { attempt: n + 1 }]
            );
            assert_eq!(outputs(&mut c), [OPEN]);
            // The attempt fails before the session opens.
            c.handle_engine_closed(at, DisconnectReason::TransportError);
            t = at;
        }
        // A session that opens resets the counter.
        let at = c.poll_timeout().unwrap();
        c.handle_timeout(at);
        c.handle_engine_opened(at, &handshake());
        assert_eq!(
            events(&mut c),
            [
                ClientEvent::Reconnecting { attempt: 7 },
                ClientEvent::Reconnected { attempt: 7 }
            ]
        );
        c.handle_engine_closed(at, DisconnectReason::TransportClose);
        let delay = c.poll_timeout().unwrap() - at;
        assert!(delay <= Duration::from_millis(1500), "{delay:?}");
    }

    #[test]
    fn attempts_exhausted() {
        let now = Instant::now();
        let mut c = client_with(ClientConfig {
            reconnection_attempts: 2,
            ..ClientConfig::default()
        });
        c.connect(now, "/", None).unwrap();
        c.handle_engine_opened(now, &handshake());
        recv(&mut c, now, "40{\"sid\":\"a\"}");
        c.emit_with_ack(now, "/", "x", &(), None).unwrap();
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        c.emit_with_ack(now, "/", "buffered", &(), None).unwrap();
        for _ in 0..2 {
            let at = c.poll_timeout().unwrap();
            c.handle_timeout(at);
            c.handle_engine_closed(at, DisconnectReason::TransportError);
        }
        let evs = events(&mut c);
        assert_eq!(evs.last(), Some(&ClientEvent::ReconnectFailed), "{evs:?}");
        assert!(!c.is_active());
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
        assert_eq!(outputs(&mut c), [OPEN, OPEN, OPEN]);
        // Connecting again starts afresh.
        c.connect(now, "/", None).unwrap();
        assert_eq!(outputs(&mut c), [OPEN]);
    }

    #[test]
    fn reconnection_disabled_gives_up_at_once() {
        let now = Instant::now();
        let mut c = client_with(ClientConfig {
            reconnection: false,
            ..ClientConfig::default()
        });
        c.connect(now, "/", None).unwrap();
        c.handle_engine_closed(now, DisconnectReason::TransportError);
        assert_eq!(events(&mut c), [ClientEvent::ReconnectFailed]);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn rejoins_every_wanted_namespace_after_reconnect() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.connect(now, "/custom", auth(&[("token", "x")])).unwrap();
        c.connect(now, "/gone", None).unwrap();
        recv(&mut c, now, "40/custom,{\"sid\":\"b\"}");
        recv(&mut c, now, "40/gone,{\"sid\":\"c\"}");
        c.disconnect(now, "/gone").unwrap();
        outputs(&mut c);
        events(&mut c);
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        assert_eq!(
            events(&mut c),
            [
                disconnected("/", DisconnectReason::TransportClose),
                disconnected("/custom", DisconnectReason::TransportClose)
            ]
        );
        let at = c.poll_timeout().unwrap();
        c.handle_timeout(at);
        c.handle_engine_opened(at, &handshake());
        assert_eq!(outputs(&mut c), [OPEN, "40", "40/custom,{\"token\":\"x\"}"]);
        recv(&mut c, at, "40{\"sid\":\"a2\"}");
        recv(&mut c, at, "40/custom,{\"sid\":\"b2\"}");
        assert_eq!(
            events(&mut c),
            [
                ClientEvent::Reconnecting { attempt: 1 },
                ClientEvent::Reconnected { attempt: 1 },
                connected("/", "a2", false),
                connected("/custom", "b2", false)
            ]
        );
    }

    #[test]
    fn parse_error_closes_and_reconnects() {
        let now = Instant::now();
        let mut c = connected_root(now);
        recv(&mut c, now, "49nonsense");
        assert_eq!(outputs(&mut c), [CLOSE]);
        assert_eq!(
            events(&mut c),
            [disconnected("/", DisconnectReason::ParseError)]
        );
        // Nothing more is read from the closing session.
        recv(&mut c, now, "42[\"late\"]");
        assert!(events(&mut c).is_empty());
        c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
        let at = c.poll_timeout().expect("reconnects after a parse error");
        c.handle_timeout(at);
        assert_eq!(outputs(&mut c), [OPEN]);
    }

    #[test]
    fn invalid_arguments_found_later_close_and_reconnect() {
        let now = Instant::now();
        let mut c = connected_root(now);
        recv(&mut c, now, r#"42["ev",{"a":]"#);
        let args = match events(&mut c).as_slice() {
            [ClientEvent::Event { args, .. }] => args.clone(),
            other => panic!("expected the event, got {other:?}"),
        };
        assert!(args.validate().is_err());
        c.invalid_packet(now);
        assert_eq!(outputs(&mut c), [CLOSE]);
        assert_eq!(
            events(&mut c),
            [disconnected("/", DisconnectReason::ParseError)]
        );
        // Closing already: a second report changes nothing.
        c.invalid_packet(now);
        assert!(outputs(&mut c).is_empty());
    }

    #[test]
    fn events_for_unconnected_namespaces_are_ignored() {
        let now = Instant::now();
        let mut c = connected_root(now);
        recv(&mut c, now, "42/other,[\"x\"]");
        recv(&mut c, now, "43/other,1[]");
        recv(&mut c, now, "41/other,");
        recv(&mut c, now, "40{\"sid\":\"dup\"}");
        assert!(events(&mut c).is_empty());
        assert!(outputs(&mut c).is_empty());
        assert_eq!(c.socket_id("/"), Some("a"));
    }

    #[test]
    fn connect_reply_without_sid_is_a_parse_error() {
        let now = Instant::now();
        let mut c = client();
        c.connect(now, "/", None).unwrap();
        c.handle_engine_opened(now, &handshake());
        outputs(&mut c);
        recv(&mut c, now, "40{}");
        assert_eq!(outputs(&mut c), [CLOSE]);
    }

    #[test]
    fn leaving_while_the_reply_is_awaited() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.connect(now, "/a", None).unwrap();
        assert_eq!(outputs(&mut c), ["40/a,"]);
        c.disconnect(now, "/a").unwrap();
        assert!(outputs(&mut c).is_empty());
        assert!(events(&mut c).is_empty());
        recv(&mut c, now, "40/a,{\"sid\":\"x\"}");
        assert_eq!(outputs(&mut c), ["41/a,"]);
        assert!(events(&mut c).is_empty());
        assert!(!c.is_connected("/a"));
    }

    #[test]
    fn misuse_is_an_error() {
        let now = Instant::now();
        let mut c = client();
        assert_eq!(
            c.connect(now, "nope", None),
            Err(ClientError::InvalidNamespace)
        );
        assert_eq!(
            c.connect(now, "/", Some(Value::from("str"))),
            Err(ClientError::InvalidAuth)
        );
        c.connect(now, "/", None).unwrap();
        assert_eq!(
            c.connect(now, "/", None),
            Err(ClientError::AlreadyConnected)
        );
        assert_eq!(c.ack(now, "/", 0, &()), Err(ClientError::NotConnected));
        assert_eq!(c.disconnect(now, "/x"), Err(ClientError::UnknownNamespace));
        // Engine reports out of turn are ignored.
        let mut idle = client();
        idle.handle_engine_opened(now, &handshake());
        idle.handle_engine_closed(now, DisconnectReason::TransportClose);
        recv(&mut idle, now, "40");
        assert!(outputs(&mut idle).is_empty());
        assert!(events(&mut idle).is_empty());
    }

    /// Connect `/` with recovery (pid `p1`) and receive one event with
    /// offset `o1`.
    fn recovering_root(now: Instant, auth: Option<Value>) -> Client<JsonParser> {
        let mut c = client();
        c.connect(now, "/", auth).unwrap();
        c.handle_engine_opened(now, &handshake());
        recv(&mut c, now, "40{\"sid\":\"a\",\"pid\":\"p1\"}");
        recv(&mut c, now, "42[\"msg\",\"hello\",\"o1\"]");
        assert_eq!(
            events(&mut c),
            [
                connected("/", "a", false),
                event("/", "msg", &["hello"], None)
            ],
            "offset stripped"
        );
        outputs(&mut c);
        c
    }

    #[test]
    fn recovery_offset_stripped_and_sent_back_with_pid() {
        let now = Instant::now();
        let mut c = recovering_root(now, None);
        // An event asking for an ack never carries an offset.
        recv(&mut c, now, "421[\"q\",\"keep\"]");
        assert_eq!(events(&mut c), [event("/", "q", &["keep"], Some(1))]);
        reconnect(&mut c, now);
        assert_eq!(outputs(&mut c), ["40{\"pid\":\"p1\",\"offset\":\"o1\"}"]);
        recv(&mut c, now, "40{\"sid\":\"a\",\"pid\":\"p1\"}");
        let evs = events(&mut c);
        assert!(evs.contains(&connected("/", "a", true)), "{evs:?}");
    }

    #[test]
    fn recovery_merges_pid_and_offset_into_auth() {
        let now = Instant::now();
        let mut c = recovering_root(now, auth(&[("token", "x")]));
        reconnect(&mut c, now);
        assert_eq!(
            outputs(&mut c),
            ["40{\"pid\":\"p1\",\"offset\":\"o1\",\"token\":\"x\"}"]
        );
        // Without recovery nothing is stripped.
        let mut plain = connected_root(now);
        recv(&mut plain, now, "42[\"msg\",\"hello\",\"o1\"]");
        assert_eq!(
            events(&mut plain),
            [event("/", "msg", &["hello", "o1"], None)]
        );
    }

    #[test]
    fn replayed_events_are_held_until_the_reply() {
        let now = Instant::now();
        let mut c = recovering_root(now, None);
        reconnect(&mut c, now);
        outputs(&mut c);
        events(&mut c);
        recv(&mut c, now, "42[\"msg\",\"a\",\"o2\"]");
        recv(&mut c, now, "42[\"msg\",\"b\",\"o3\"]");
        assert!(events(&mut c).is_empty(), "held");
        recv(&mut c, now, "40{\"sid\":\"a\",\"pid\":\"p1\"}");
        assert_eq!(
            events(&mut c),
            [
                connected("/", "a", true),
                event("/", "msg", &["a"], None),
                event("/", "msg", &["b"], None)
            ]
        );
        reconnect(&mut c, now);
        assert_eq!(outputs(&mut c), ["40{\"pid\":\"p1\",\"offset\":\"o3\"}"]);
    }

    #[test]
    fn no_duplicate_delivery_when_dropped_before_the_reply() {
        let now = Instant::now();
        let mut c = recovering_root(now, None);
        reconnect(&mut c, now);
        outputs(&mut c);
        events(&mut c);
        recv(&mut c, now, "42[\"msg\",\"a\",\"o2\"]");
        // The session drops before the CONNECT reply: the held event is
        // discarded and the offset did not move.
        reconnect(&mut c, now);
        assert_eq!(outputs(&mut c), ["40{\"pid\":\"p1\",\"offset\":\"o1\"}"]);
        assert!(!events(&mut c)
            .iter()
            .any(|e| matches!(e, ClientEvent::Event { .. })));
        // The server replays it again: delivered exactly once.
        recv(&mut c, now, "42[\"msg\",\"a\",\"o2\"]");
        recv(&mut c, now, "40{\"sid\":\"a\",\"pid\":\"p1\"}");
        assert_eq!(
            events(&mut c),
            [connected("/", "a", true), event("/", "msg", &["a"], None)]
        );
    }

    #[test]
    fn a_new_pid_forgets_the_old_offset() {
        let now = Instant::now();
        let mut c = recovering_root(now, None);
        reconnect(&mut c, now);
        outputs(&mut c);
        recv(&mut c, now, "40{\"sid\":\"b\",\"pid\":\"p2\"}");
        reconnect(&mut c, now);
        assert_eq!(outputs(&mut c), ["40{\"pid\":\"p2\"}"]);
    }

    #[test]
    fn binary_both_ways() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.emit(
            now,
            "/",
            "up",
            &(Value::Binary(Bytes::from_static(b"\x01\x02")),),
        )
        .unwrap();
        assert_eq!(
            outputs(&mut c),
            ["451-[\"up\",{\"_placeholder\":true,\"num\":0}]", "<bin 2>"]
        );
        recv(
            &mut c,
            now,
            "451-[\"down\",{\"_placeholder\":true,\"num\":0}]",
        );
        assert!(events(&mut c).is_empty(), "waits for the attachment");
        c.handle_message(now, Message::Binary(Bytes::from_static(b"abc")));
        assert_eq!(
            events(&mut c),
            [ClientEvent::Event {
                nsp: Str::from("/"),
                name: Str::from("down"),
                args: Args::from_values(vec![Value::Binary(Bytes::from_static(b"abc"))]),
                ack: None,
            }]
        );
    }

    /// A BINARY_EVENT `up` on `/` declaring `count` attachments, as on the
    /// wire.
    fn binary_event_declaring(count: usize) -> String {
        format!("4{}", crate::parser::binary_event_declaring(count))
    }

    #[test]
    fn attachments_over_the_limit_from_the_server_close_the_session() {
        // A hostile server declares 10 attachments and sends 512 KiB ones:
        // the second goes over the default limit.
        let now = Instant::now();
        let mut c = connected_root(now);
        let chunk = Bytes::from(vec![0u8; 512 * 1024]);
        recv(&mut c, now, &binary_event_declaring(10));
        c.handle_message(now, Message::Binary(chunk.clone()));
        assert_eq!(c.decoder.pending_attachment_bytes(), 512 * 1024);
        assert!(outputs(&mut c).is_empty());
        c.handle_message(now, Message::Binary(chunk.clone()));
        assert_eq!(c.decoder.pending_attachment_bytes(), 0);
        assert_eq!(outputs(&mut c), [CLOSE]);
        assert_eq!(
            events(&mut c),
            [disconnected("/", DisconnectReason::ParseError)]
        );
        // The rest is not read from the closing session.
        c.handle_message(now, Message::Binary(chunk));
        assert!(events(&mut c).is_empty() && outputs(&mut c).is_empty());
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        assert!(
            c.poll_timeout().is_some(),
            "reconnects as after any parse error"
        );
    }

    #[test]
    fn attachments_within_the_limit_from_the_server_arrive() {
        let now = Instant::now();
        let mut c = client_with(ClientConfig {
            decode_limits: DecodeLimits {
                max_pending_attachment_bytes: 2048,
                ..DecodeLimits::default()
            },
            ..ClientConfig::default()
        });
        c.connect(now, "/", None).unwrap();
        c.handle_engine_opened(now, &handshake());
        recv(&mut c, now, "40{\"sid\":\"a\"}");
        outputs(&mut c);
        events(&mut c);
        let kib = Bytes::from(vec![1u8; 1024]);
        recv(&mut c, now, &binary_event_declaring(2));
        c.handle_message(now, Message::Binary(kib.clone()));
        c.handle_message(now, Message::Binary(kib.clone()));
        assert!(matches!(
            events(&mut c).as_slice(),
            [ClientEvent::Event { name, args, .. }] if *name == "up" && args.len() == 2
        ));
        assert!(outputs(&mut c).is_empty());
        // A packet left half received is released with its session.
        recv(&mut c, now, &binary_event_declaring(2));
        c.handle_message(now, Message::Binary(kib));
        assert_eq!(c.decoder.pending_attachment_bytes(), 1024);
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        assert_eq!(c.decoder.pending_attachment_bytes(), 0);
        assert!(!c.decoder.is_awaiting_attachments());
    }

    #[test]
    fn connecting_while_closing_opens_a_fresh_session() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.disconnect(now, "/").unwrap();
        assert_eq!(outputs(&mut c), ["41", CLOSE]);
        c.connect(now, "/", None).unwrap();
        assert!(
            outputs(&mut c).is_empty(),
            "waits for the old session to end"
        );
        c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
        assert_eq!(outputs(&mut c), [OPEN]);
        c.handle_engine_opened(now, &handshake());
        assert_eq!(outputs(&mut c), ["40"]);
        let evs = events(&mut c);
        assert!(
            !evs.iter()
                .any(|e| matches!(e, ClientEvent::Reconnected { .. })),
            "{evs:?}"
        );
    }

    #[test]
    fn unanswered_server_acks_are_bounded() {
        let now = Instant::now();
        let mut c = client_with(ClientConfig {
            max_unanswered_acks: 2,
            ..ClientConfig::default()
        });
        c.connect(now, "/", None).unwrap();
        c.handle_engine_opened(now, &handshake());
        recv(&mut c, now, "40{\"sid\":\"a\"}");
        for id in 1..=3 {
            recv(&mut c, now, &format!("42{id}[\"q\"]"));
        }
        assert_eq!(
            c.ack(now, "/", 1, &()),
            Err(ClientError::UnknownAck),
            "oldest forgotten"
        );
        c.ack(now, "/", 2, &()).unwrap();
        c.ack(now, "/", 3, &()).unwrap();
    }

    #[test]
    fn session_closed_by_the_application_stops_everything() {
        let now = Instant::now();
        let mut c = connected_root(now);
        c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
        assert!(
            outputs(&mut c).is_empty(),
            "nothing to send on a closed session"
        );
        assert_eq!(
            events(&mut c),
            [disconnected("/", DisconnectReason::ClientDisconnect)]
        );
        assert_eq!(c.poll_timeout(), None);
        assert!(!c.is_active());
    }

    proptest::proptest! {
        /// Whatever the server, the driver and the application do, nothing
        /// panics and leaving everything frees every ack and timer.
        #[test]
        fn arbitrary_sequences_never_leak(ops in proptest::collection::vec(0u8..20, 0..80)) {
            const WIRE: [&str; 10] = [
                "40{\"sid\":\"a\",\"pid\":\"p\"}",
                "40/b,{\"sid\":\"b\"}",
                "42[\"e\",\"x\",\"off\"]",
                "42/b,7[\"e\"]",
                "430[]",
                "43/b,1[]",
                "41",
                "44/b,{\"message\":\"no\"}",
                "4garbage",
                "451-[\"e\",{\"_placeholder\":true,\"num\":0}]",
            ];
            let start = Instant::now();
            let mut now = start;
            let mut c = client_with(ClientConfig {
                reconnection_attempts: 3,
                max_pending_acks: 8,
                max_buffered_emits: 4,
                ..ClientConfig::default()
            });
            for op in ops {
                match op {
                    0 => { let _ = c.connect(now, "/", None); }
                    1 => { let _ = c.connect(now, "/b", auth(&[("k", "v")])); }
                    2 => { let _ = c.disconnect(now, "/"); }
                    3 => { let _ = c.disconnect(now, "/b"); }
                    4 => { let _ = c.emit_with_ack(now, "/", "e", &(), Some(Duration::from_millis(500))); }
                    5 => { let _ = c.emit_with_ack(now, "/b", "e", &1, None); }
                    6 => { let _ = c.ack(now, "/b", 7, &()); }
                    7 => c.handle_engine_opened(now, &handshake()),
                    8 => c.handle_engine_closed(now, DisconnectReason::TransportClose),
                    9 => {
                        now += Duration::from_millis(700);
                        c.handle_timeout(now);
                    }
                    n => {
                        let wire = WIRE[usize::from(n - 10)];
                        recv(&mut c, now, wire);
                    }
                }
                outputs(&mut c);
                events(&mut c);
                if let Some(at) = c.poll_timeout() {
                    proptest::prop_assert!(at >= start);
                }
            }
            c.disconnect_all(now);
            c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
            outputs(&mut c);
            proptest::prop_assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
            proptest::prop_assert_eq!(c.poll_timeout(), None);
            proptest::prop_assert!(!c.is_active());
            c.handle_timeout(now + Duration::from_secs(3600));
            let outs = outputs(&mut c);
            proptest::prop_assert!(outs.is_empty(), "{:?}", outs);
        }
    }
}
