//! The Socket.IO v5 server state machine, on top of an abstract Engine.IO
//! server.
//!
//! [`Server`] never sees HTTP or WebSocket: the layer below hands it the
//! Engine.IO sessions (keyed by their session id) and the [`Message`]s that
//! arrive on them, and takes back [`EngineCommand`]s (send a message on a
//! session, close a session). The application sees [`ServerEvent`]s and acts
//! through methods such as [`Server::accept`], [`Server::emit`] and
//! [`Server::broadcast`].
//!
//! # Driving it
//! Inputs, every one with the current `now`:
//! - [`Server::handle_engine_open`]: an Engine.IO session was opened;
//! - [`Server::handle_engine_message`]: a message arrived on a session;
//! - [`Server::handle_engine_closed`]: a session ended, with the
//!   [`DisconnectReason`] mapped from the engine's reason;
//! - [`Server::handle_engine_drained`]: the engine wrote bytes of a session
//!   out (backpressure accounting);
//! - [`Server::handle_timeout`]: the deadline from [`Server::poll_timeout`]
//!   passed.
//!
//! After each input and after each application call, drain in this order:
//! 1. [`Server::poll_event`] until `None` (the application may call methods
//!    while handling events; drain again afterwards);
//! 2. [`Server::poll_command`] until `None`, handing each command to the
//!    Engine.IO layer in order (the messages of one packet are consecutive);
//! 3. [`Server::poll_timeout`] to re-arm the one timer.
//!
//! A session the server closes itself ([`EngineCommand::Close`]) is
//! forgotten at once: a later [`Server::handle_engine_closed`] for it is
//! ignored, as is any input naming an unknown session.
//!
//! # Sockets
//! A socket is identified by its id, random and unique across namespaces.
//! Every socket the application heard of through [`ServerEvent::Connect`]
//! ends with exactly one [`ServerEvent::Disconnect`], unless the application
//! itself rejected it with [`Server::reject`]; no event names the socket
//! after that.
//!
//! # Connection state recovery
//! When [`ServerConfig::recovery`] is set, the CONNECT reply carries a
//! private id (`pid`), and every non-volatile event without ack carries a
//! sequence-number offset as its last argument. A socket that disconnects
//! for a recoverable reason keeps its id, rooms and data; a CONNECT whose
//! auth holds its `pid` (and the last `offset` received, or none if it
//! received nothing) restores it if no packet it missed has been evicted:
//! [`ServerEvent::Connect`] says `recovered`, and on accept the missed
//! packets go out before the CONNECT reply. If the server still believes
//! the old socket connected (only the client side of its connection died),
//! the old socket is taken over: its session gets DISCONNECT for the
//! namespace, the application sees its [`ServerEvent::Disconnect`]
//! (`transport close`) and then the recovered [`ServerEvent::Connect`].
//! Rejecting a recovered socket drops the kept state.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::RngCore;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::adapter::{LocalAdapter, RoomSelector};
use super::offset::WithOffset;
use super::packet::{Packet, PacketData, RESERVED_EVENTS};
use super::reason::DisconnectReason;
use crate::engine::Message;
use crate::parser::{Args, DecodeLimits, EncodeError, Encoded, JsonParser, OutPacket, Parser};
use crate::value::Value;
use crate::Str;

/// Which namespaces clients may connect to. `/` is always accepted, as in
/// the reference (its main namespace always exists).
#[derive(Clone)]
pub enum NamespaceMatcher {
    /// Exactly this name.
    Exact(Str),
    /// Any name (`*`).
    Any,
    /// Every name the predicate accepts (the reference's regular
    /// expressions and functions).
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl NamespaceMatcher {
    /// A matcher from a predicate.
    pub fn predicate(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> NamespaceMatcher {
        NamespaceMatcher::Predicate(Arc::new(f))
    }

    /// Whether `nsp` matches.
    pub fn matches(&self, nsp: &str) -> bool {
        match self {
            NamespaceMatcher::Exact(name) => name == nsp,
            NamespaceMatcher::Any => true,
            NamespaceMatcher::Predicate(f) => f(nsp),
        }
    }
}

impl fmt::Debug for NamespaceMatcher {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            NamespaceMatcher::Exact(name) => f.debug_tuple("Exact").field(name).finish(),
            NamespaceMatcher::Any => f.write_str("Any"),
            NamespaceMatcher::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// Connection state recovery options (off unless set in
/// [`ServerConfig::recovery`]).
#[derive(Debug, Clone)]
pub struct RecoveryConfig {
    /// How long a disconnected socket's id, rooms and data are kept, and
    /// how long sent packets are kept for replay (the reference's
    /// `maxDisconnectionDuration`, default 2 minutes).
    pub max_disconnection_duration: Duration,
    /// Most packets kept for replay per namespace (the reference keeps
    /// every packet of the duration; this bounds memory).
    pub max_packets: usize,
    /// Most bytes of packets kept for replay per namespace.
    pub max_bytes: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            max_packets: 10_000,
            max_bytes: 16 << 20,
        }
    }
}

/// Options of the Socket.IO server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Namespaces clients may connect to besides `/`.
    pub namespaces: Vec<NamespaceMatcher>,
    /// Accept every CONNECT at once and let the application's later
    /// [`Server::reject`] become a disconnect (python-socketio's
    /// `always_connect`).
    pub always_connect: bool,
    /// An Engine.IO session that has joined no namespace by then is closed
    /// (default 45 s).
    pub connect_timeout: Duration,
    /// Most acknowledgements the server may await from one socket.
    pub max_pending_acks: usize,
    /// Most acknowledgements one client may await from the application;
    /// beyond it the oldest request is forgotten (answering it is then an
    /// error), so an application that never answers cannot grow memory.
    pub max_unanswered_acks: usize,
    /// Bytes an Engine.IO session may have queued but not yet written
    /// before it counts as slow.
    pub max_buffered_bytes: usize,
    /// Bytes beyond which a session is closed at once as a slow consumer.
    pub max_buffered_bytes_hard: usize,
    /// How long a session may stay over [`ServerConfig::max_buffered_bytes`]
    /// before its sockets are disconnected as slow consumers.
    pub slow_consumer_grace: Duration,
    /// Connection state recovery; `None` disables it.
    pub recovery: Option<RecoveryConfig>,
    /// Limits for decoding the clients' packets.
    pub decode_limits: DecodeLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            namespaces: Vec::new(),
            always_connect: false,
            connect_timeout: Duration::from_secs(45),
            max_pending_acks: 1024,
            max_unanswered_acks: 1024,
            max_buffered_bytes: 1 << 20,
            max_buffered_bytes_hard: 16 << 20,
            slow_consumer_grace: Duration::from_secs(10),
            recovery: None,
            decode_limits: DecodeLimits::default(),
        }
    }
}

/// What the Engine.IO layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineCommand {
    /// Send a message on a session.
    Send {
        /// The Engine.IO session id.
        eio: Str,
        /// The message.
        message: Message,
    },
    /// Close a session.
    Close {
        /// The Engine.IO session id.
        eio: Str,
    },
}

/// The answer to an acknowledgement the server asked one socket for.
#[derive(Debug, Clone)]
pub enum AckOutcome {
    /// The client answered.
    Answered(Args),
    /// The deadline passed; a late answer is ignored.
    TimedOut,
    /// The socket disconnected first.
    Disconnected,
}

/// How a broadcast with acknowledgements ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastAckOutcome {
    /// Every receiver answered or disconnected.
    Complete,
    /// The deadline passed; the responses are those that arrived.
    TimedOut,
}

/// Identifies one broadcast with acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BroadcastAckId(pub u64);

/// What [`Server::broadcast_with_ack`] started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastAckStarted {
    /// Names the [`ServerEvent::BroadcastAck`] that will report the result.
    pub id: BroadcastAckId,
    /// How many sockets were sent the packet.
    pub receivers: usize,
    /// Selected sockets that were not sent it: at their pending-ack bound,
    /// or unable to take a volatile packet.
    pub skipped: Vec<Str>,
}

/// What happened, for the application.
#[derive(Debug)]
pub enum ServerEvent {
    /// A client asked to join a namespace. Answer with [`Server::accept`]
    /// or [`Server::reject`] (with `always_connect`, the socket is already
    /// connected and a rejection disconnects it).
    Connect {
        /// The new socket's id (what the client will be told on accept).
        socket: Str,
        /// The namespace.
        nsp: Str,
        /// The Engine.IO session it came on.
        eio: Str,
        /// The client's auth object.
        auth: Option<Value>,
        /// Whether connection state recovery restored an earlier socket:
        /// same id, rooms and data; the missed packets are sent before the
        /// CONNECT reply.
        recovered: bool,
    },
    /// The client emitted an event.
    Event {
        /// The socket.
        socket: Str,
        /// Its namespace.
        nsp: Str,
        /// The event name.
        name: Str,
        /// The arguments.
        args: Args,
        /// When set, the client awaits [`Server::ack`] with this id.
        ack: Option<u64>,
    },
    /// The result of [`Server::emit_with_ack`].
    Ack {
        /// The socket.
        socket: Str,
        /// Its namespace.
        nsp: Str,
        /// The id [`Server::emit_with_ack`] returned.
        id: u64,
        /// What became of it.
        outcome: AckOutcome,
    },
    /// The result of [`Server::broadcast_with_ack`].
    BroadcastAck {
        /// The id [`Server::broadcast_with_ack`] returned.
        id: BroadcastAckId,
        /// Whether every receiver was accounted for.
        outcome: BroadcastAckOutcome,
        /// Socket id and answer, in arrival order.
        responses: Vec<(Str, Args)>,
    },
    /// The socket's Engine.IO session went back under its buffer bound:
    /// [`Server::can_send`] is true again.
    Writable {
        /// The socket.
        socket: Str,
    },
    /// The socket left; nothing names it afterwards.
    Disconnect {
        /// The socket.
        socket: Str,
        /// Its namespace.
        nsp: Str,
        /// Why.
        reason: DisconnectReason,
    },
}

/// The application asked for something impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerError {
    /// No socket has this id.
    UnknownSocket,
    /// No Engine.IO session has this id.
    UnknownSession,
    /// The socket's CONNECT was already answered.
    AlreadyAnswered,
    /// The socket is still waiting for [`Server::accept`].
    NotConnected,
    /// The client awaits no acknowledgement with this id (never asked,
    /// already answered, or forgotten beyond the bound).
    UnknownAck,
    /// The event name is reserved.
    ReservedEvent,
    /// A namespace must start with `/`.
    BadNamespace,
    /// The socket already has this many acknowledgements pending.
    TooManyPendingAcks {
        /// The configured bound.
        limit: usize,
    },
    /// The payload could not be encoded.
    Encode(EncodeError),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ServerError::UnknownSocket => f.write_str("unknown socket"),
            ServerError::UnknownSession => f.write_str("unknown engine.io session"),
            ServerError::AlreadyAnswered => f.write_str("connection already answered"),
            ServerError::NotConnected => f.write_str("socket not connected yet"),
            ServerError::UnknownAck => f.write_str("no acknowledgement pending with this id"),
            ServerError::ReservedEvent => f.write_str("reserved event name"),
            ServerError::BadNamespace => f.write_str("namespace must start with '/'"),
            ServerError::TooManyPendingAcks { limit } => {
                write!(f, "more than {limit} acknowledgements pending")
            }
            ServerError::Encode(e) => write!(f, "encoding failed: {e}"),
        }
    }
}
impl std::error::Error for ServerError {}

impl From<EncodeError> for ServerError {
    fn from(e: EncodeError) -> Self {
        ServerError::Encode(e)
    }
}

/// Who a broadcast goes to.
#[derive(Debug, Clone)]
pub struct Broadcast {
    /// The namespace.
    pub nsp: Str,
    /// Target and excluded rooms (socket ids are rooms too).
    pub selector: RoomSelector,
    /// Skip sockets that cannot take the packet now instead of queueing.
    pub volatile: bool,
}

impl Broadcast {
    /// Every socket of `nsp`.
    pub fn namespace(nsp: impl Into<Str>) -> Broadcast {
        Broadcast {
            nsp: nsp.into(),
            selector: RoomSelector::default(),
            volatile: false,
        }
    }

    /// Only members of `room` (several calls: members of any).
    pub fn to(mut self, room: impl Into<Str>) -> Broadcast {
        self.selector.rooms.push(room.into());
        self
    }

    /// Leave out members of `room`, or the socket with this id.
    pub fn except(mut self, room: impl Into<Str>) -> Broadcast {
        self.selector.except.push(room.into());
        self
    }

    /// Volatile: skipped for sockets that cannot take it now.
    pub fn volatile(mut self) -> Broadcast {
        self.volatile = true;
        self
    }
}

/// A deadline, unique by its sequence number.
type TimerId = (Instant, u64);

#[derive(Debug, Clone)]
enum Timer {
    Connect { eio: Str },
    Ack { socket: Str, id: u64 },
    BroadcastAck { id: u64 },
    SlowConsumer { eio: Str },
    SessionExpiry { nsp: Str, pid: Str },
    PacketExpiry { nsp: Str },
}

#[derive(Debug, Default)]
struct Timers {
    map: BTreeMap<TimerId, Timer>,
    seq: u64,
}

impl Timers {
    fn schedule(&mut self, at: Instant, timer: Timer) -> TimerId {
        self.seq += 1;
        let id = (at, self.seq);
        self.map.insert(id, timer);
        id
    }

    fn cancel(&mut self, id: Option<TimerId>) {
        if let Some(id) = id {
            self.map.remove(&id);
        }
    }

    fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let entry = self.map.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        Some(entry.remove())
    }
}

/// One Engine.IO session as this layer sees it.
#[derive(Debug)]
struct EngineSession<D> {
    decoder: D,
    /// Namespace to the socket (pending or connected) on this session.
    sockets: BTreeMap<Str, Str>,
    connect_timer: Option<TimerId>,
    /// Bytes handed to the engine (or held for a pending socket) and not
    /// yet reported written.
    buffered: usize,
    slow_timer: Option<TimerId>,
}

struct PendingAck {
    timer: Option<TimerId>,
    broadcast: Option<u64>,
}

struct SocketState {
    nsp: Str,
    eio: Str,
    pid: Option<Str>,
    connected: bool,
    /// Recovered packets, sent before the CONNECT reply.
    replay: Vec<Message>,
    /// Packets for a pending socket, sent after the CONNECT reply.
    held: Vec<Message>,
    /// Acknowledgements the server awaits, by wire id.
    acks: BTreeMap<u64, PendingAck>,
    /// Acknowledgements the client awaits from the application.
    unanswered: BTreeSet<u64>,
    data: Option<Box<dyn Any + Send>>,
    /// First recovery sequence number this socket may have missed if the
    /// client comes back without an offset (it then received no event).
    recovery_base: u64,
}

struct StoredPacket {
    seq: u64,
    emitted_at: Instant,
    messages: Vec<Message>,
    bytes: usize,
    selector: RoomSelector,
}

struct PersistedSession {
    sid: Str,
    rooms: Vec<Str>,
    data: Option<Box<dyn Any + Send>>,
    recovery_base: u64,
    timer: TimerId,
}

#[derive(Default)]
struct RecoveryState {
    packets: VecDeque<StoredPacket>,
    /// Sum of the stored packets' sizes.
    stored_bytes: usize,
    next_seq: u64,
    /// One past the newest evicted packet: replaying from before it would
    /// skip packets. (Sequence numbers have gaps: volatile events take one
    /// and are not stored.)
    lost_before: u64,
    /// Keyed by private session ids, which this server generates (FxHash
    /// is safe: see [`Server`]).
    sessions: FxHashMap<Str, PersistedSession>,
    /// Private session id to the id of the socket holding it now.
    live: FxHashMap<Str, Str>,
    expiry_timer: Option<TimerId>,
}

impl RecoveryState {
    fn evict_front(&mut self) {
        if let Some(packet) = self.packets.pop_front() {
            self.stored_bytes -= packet.bytes;
            self.lost_before = packet.seq + 1;
        }
    }

    /// Drop packets older than `duration`: a recovery that needs them
    /// must fail rather than skip them.
    fn evict_expired(&mut self, now: Instant, duration: Duration) {
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
    fn replay_start(&self, offset: Option<&str>, base: u64) -> Option<u64> {
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

struct Namespace {
    adapter: LocalAdapter,
    /// Acknowledgement ids come from one counter per namespace, so a
    /// broadcast can carry one id to every receiver and be encoded once;
    /// each socket still sees increasing ids.
    next_ack_id: u64,
    recovery: Option<RecoveryState>,
}

struct BroadcastAckState {
    wire_id: u64,
    remaining: BTreeSet<Str>,
    responses: Vec<(Str, Args)>,
    timer: TimerId,
}

/// `{"sid": .., "pid": ..}`: the CONNECT reply.
#[derive(Serialize)]
struct ConnectReply<'a> {
    sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<&'a str>,
}

/// `{"message": .., "data": ..}`: the CONNECT_ERROR payload.
#[derive(Serialize)]
struct ConnectErrorBody<'a, D: ?Sized> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a D>,
}

/// Encode one packet into the messages that carry it.
fn encode_packet<P: Parser, A: Serialize + ?Sized>(
    parser: &P,
    scratch: &mut Encoded,
    packet: &OutPacket<'_, A>,
) -> Result<Vec<Message>, ServerError> {
    parser.encode(packet, scratch)?;
    let data = scratch.data.split().freeze();
    let first = if scratch.binary {
        Message::Binary(data)
    } else {
        Message::Text(Str::try_from(data).map_err(|_| {
            ServerError::Encode(EncodeError::Serialize(
                "parser produced non-UTF-8 text".into(),
            ))
        })?)
    };
    let mut messages = Vec::with_capacity(1 + scratch.attachments.len());
    messages.push(first);
    messages.extend(scratch.attachments.drain(..).map(Message::Binary));
    Ok(messages)
}

fn disconnect_packet(nsp: &str) -> OutPacket<'_, ()> {
    OutPacket::Disconnect { nsp }
}

fn message_len(message: &Message) -> usize {
    match message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) => bytes.len(),
    }
}

/// Queue messages for the engine on a session, counting their bytes.
fn queue_sends<D>(
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
fn check_buffer<D>(
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

fn check_event_name(event: &str) -> Result<(), ServerError> {
    if RESERVED_EVENTS.contains(&event) {
        Err(ServerError::ReservedEvent)
    } else {
        Ok(())
    }
}

fn check_namespace(nsp: &str) -> Result<(), ServerError> {
    if nsp.starts_with('/') {
        Ok(())
    } else {
        Err(ServerError::BadNamespace)
    }
}

/// The Socket.IO server state machine. `P` is the wire format.
///
/// Sessions and sockets are kept in maps with FxHash rather than SipHash:
/// it is several times cheaper per lookup (a broadcast does a few per
/// receiver), and flooding a map with colliding keys needs control over
/// the inserted keys, while these are generated on the server side
/// (Engine.IO session ids by the engine, socket ids here, both random).
/// Peers choose only keys that are looked up, which cannot slow the map
/// down. Room names, which the application may take from peers, stay in
/// ordered maps (see [`LocalAdapter`]).
pub struct Server<P: Parser = JsonParser> {
    config: ServerConfig,
    parser: P,
    rng: Box<dyn RngCore + Send>,
    sessions: FxHashMap<Str, EngineSession<P::Decoder>>,
    sockets: FxHashMap<Str, SocketState>,
    namespaces: BTreeMap<Str, Namespace>,
    timers: Timers,
    events: VecDeque<ServerEvent>,
    commands: VecDeque<EngineCommand>,
    broadcast_acks: BTreeMap<u64, BroadcastAckState>,
    next_broadcast_ack: u64,
    /// Sessions found over the hard buffer bound during the current call,
    /// closed at its end (not mid-broadcast).
    overflowed: Vec<Str>,
    scratch: Encoded,
}

impl<P: Parser> fmt::Debug for Server<P> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("sessions", &self.sessions.len())
            .field("sockets", &self.sockets.len())
            .field("namespaces", &self.namespaces.len())
            .finish_non_exhaustive()
    }
}

impl<P: Parser> Server<P> {
    /// A server with these options and wire format. Socket ids and private
    /// session ids come from `rng`: seed it from the OS, they must not be
    /// guessable.
    pub fn new(config: ServerConfig, parser: P, rng: Box<dyn RngCore + Send>) -> Server<P> {
        Server {
            config,
            parser,
            rng,
            sessions: FxHashMap::default(),
            sockets: FxHashMap::default(),
            namespaces: BTreeMap::new(),
            timers: Timers::default(),
            events: VecDeque::new(),
            commands: VecDeque::new(),
            broadcast_acks: BTreeMap::new(),
            next_broadcast_ack: 0,
            overflowed: Vec::new(),
            scratch: Encoded::default(),
        }
    }

    /// The options.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    // ----- inputs from the Engine.IO layer -----

    /// An Engine.IO session was opened. It must join a namespace within
    /// [`ServerConfig::connect_timeout`].
    pub fn handle_engine_open(&mut self, now: Instant, eio: Str) {
        if self.sessions.contains_key(&eio) {
            tracing::debug!(%eio, "engine session opened twice; ignored");
            return;
        }
        let timer = self.timers.schedule(
            now + self.config.connect_timeout,
            Timer::Connect { eio: eio.clone() },
        );
        self.sessions.insert(
            eio,
            EngineSession {
                decoder: P::Decoder::default(),
                sockets: BTreeMap::new(),
                connect_timer: Some(timer),
                buffered: 0,
                slow_timer: None,
            },
        );
    }

    /// A message arrived on an Engine.IO session.
    pub fn handle_engine_message(&mut self, now: Instant, eio: &str, message: Message) {
        let Some((eio, _)) = self.sessions.get_key_value(eio) else {
            return;
        };
        let eio = eio.clone();
        let session = self.sessions.get_mut(&eio).expect("session just found");
        match self
            .parser
            .decode(&mut session.decoder, message, &self.config.decode_limits)
        {
            Ok(None) => {}
            Ok(Some(packet)) => self.on_packet(now, &eio, packet),
            Err(err) => {
                tracing::debug!(%eio, %err, "invalid packet");
                self.abort_session(now, &eio, DisconnectReason::ParseError);
            }
        }
        self.close_overflowed(now);
    }

    /// An Engine.IO session ended: its sockets disconnect with `reason`
    /// (recoverable reasons keep their state when recovery is on).
    pub fn handle_engine_closed(&mut self, now: Instant, eio: &str, reason: DisconnectReason) {
        if let Some((eio, _)) = self.sessions.get_key_value(eio) {
            let eio = eio.clone();
            self.remove_session(now, &eio, reason);
        }
    }

    /// The Engine.IO layer wrote `bytes` of this session's messages out.
    pub fn handle_engine_drained(&mut self, now: Instant, eio: &str, bytes: usize) {
        let _ = now;
        self.credit(eio, bytes);
    }

    /// `bytes` of a session's buffer are gone: written, or never to be.
    fn credit(&mut self, eio: &str, bytes: usize) {
        let Some(session) = self.sessions.get_mut(eio) else {
            return;
        };
        let was_over = session.buffered > self.config.max_buffered_bytes;
        session.buffered = session.buffered.saturating_sub(bytes);
        if was_over && session.buffered <= self.config.max_buffered_bytes {
            self.timers.cancel(session.slow_timer.take());
            for socket in session.sockets.values() {
                if self.sockets.get(socket).is_some_and(|s| s.connected) {
                    self.events.push_back(ServerEvent::Writable {
                        socket: socket.clone(),
                    });
                }
            }
        }
    }

    /// Deadlines up to `now` passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            self.on_timer(now, timer);
        }
        self.close_overflowed(now);
    }

    // ----- outputs -----

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The next command for the Engine.IO layer.
    pub fn poll_command(&mut self) -> Option<EngineCommand> {
        self.commands.pop_front()
    }

    /// The next deadline; call [`Server::handle_timeout`] when it passes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.map.first_key_value().map(|(id, _)| id.0)
    }

    // ----- connection answers -----

    /// Accept a pending socket: the client gets the CONNECT reply (after
    /// the recovered packets, before whatever was emitted to it meanwhile).
    /// With `always_connect` this is a no-op.
    pub fn accept(&mut self, now: Instant, socket: &str) -> Result<(), ServerError> {
        let state = self.sockets.get(socket).ok_or(ServerError::UnknownSocket)?;
        if state.connected {
            return if self.config.always_connect {
                Ok(())
            } else {
                Err(ServerError::AlreadyAnswered)
            };
        }
        let sid = self.socket_key(socket);
        self.connect_socket(now, &sid)?;
        self.close_overflowed(now);
        Ok(())
    }

    /// Refuse a pending socket: the client gets CONNECT_ERROR
    /// `{"message": message, "data": data}` (`data` left out when `None`).
    /// With `always_connect` the socket is disconnected instead (DISCONNECT
    /// packet). No [`ServerEvent::Disconnect`] follows either way.
    pub fn reject<D: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        socket: &str,
        message: &str,
        data: Option<&D>,
    ) -> Result<(), ServerError> {
        let state = self.sockets.get(socket).ok_or(ServerError::UnknownSocket)?;
        let sid = self.socket_key(socket);
        let (nsp, eio) = (state.nsp.clone(), state.eio.clone());
        let messages = if !state.connected {
            let body = ConnectErrorBody { message, data };
            encode_packet(
                &self.parser,
                &mut self.scratch,
                &OutPacket::ConnectError {
                    nsp: &nsp,
                    data: &body,
                },
            )?
        } else if self.config.always_connect {
            encode_packet(&self.parser, &mut self.scratch, &disconnect_packet(&nsp))?
        } else {
            return Err(ServerError::AlreadyAnswered);
        };
        self.transmit(now, &eio, &messages);
        self.remove_socket(
            now,
            &sid,
            DisconnectReason::ServerNamespaceDisconnect,
            false,
        );
        self.close_overflowed(now);
        Ok(())
    }

    // ----- emitting -----

    /// Emit `event` with `args` (a tuple spreads into several arguments) to
    /// one socket. Held until the CONNECT reply if the socket is pending.
    pub fn emit<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        socket: &str,
        event: &str,
        args: &A,
    ) -> Result<(), ServerError> {
        self.emit_to_socket(now, socket, event, args, false)
            .map(|_| ())
    }

    /// Emit to one socket unless it cannot take it now (pending, or its
    /// session over the buffer bound). Returns whether it was sent.
    pub fn emit_volatile<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        socket: &str,
        event: &str,
        args: &A,
    ) -> Result<bool, ServerError> {
        self.emit_to_socket(now, socket, event, args, true)
    }

    /// Emit to one socket asking for an acknowledgement; the outcome
    /// arrives as [`ServerEvent::Ack`] with the returned id, at the latest
    /// after `timeout`.
    pub fn emit_with_ack<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        socket: &str,
        event: &str,
        args: &A,
        timeout: Duration,
    ) -> Result<u64, ServerError> {
        check_event_name(event)?;
        let state = self.sockets.get(socket).ok_or(ServerError::UnknownSocket)?;
        if state.acks.len() >= self.config.max_pending_acks {
            return Err(ServerError::TooManyPendingAcks {
                limit: self.config.max_pending_acks,
            });
        }
        let sid = self.socket_key(socket);
        let nsp = state.nsp.clone();
        let namespace = self.namespaces.get_mut(&nsp).expect("socket's namespace");
        let id = namespace.next_ack_id;
        let messages = encode_packet(
            &self.parser,
            &mut self.scratch,
            &OutPacket::Event {
                nsp: &nsp,
                event,
                args,
                ack: Some(id),
            },
        )?;
        namespace.next_ack_id += 1;
        let timer = self.timers.schedule(
            now + timeout,
            Timer::Ack {
                socket: sid.clone(),
                id,
            },
        );
        let state = self.sockets.get_mut(&sid).expect("socket just found");
        state.acks.insert(
            id,
            PendingAck {
                timer: Some(timer),
                broadcast: None,
            },
        );
        self.deliver(now, &sid, &messages, false);
        self.close_overflowed(now);
        Ok(id)
    }

    /// Answer the client's acknowledgement request `id` (once).
    pub fn ack<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        socket: &str,
        id: u64,
        args: &A,
    ) -> Result<(), ServerError> {
        let state = self
            .sockets
            .get_mut(socket)
            .ok_or(ServerError::UnknownSocket)?;
        if !state.unanswered.contains(&id) {
            return Err(ServerError::UnknownAck);
        }
        let nsp = state.nsp.clone();
        let messages = encode_packet(
            &self.parser,
            &mut self.scratch,
            &OutPacket::Ack {
                nsp: &nsp,
                id,
                args,
            },
        )?;
        state.unanswered.remove(&id);
        let sid = self.socket_key(socket);
        self.deliver(now, &sid, &messages, false);
        self.close_overflowed(now);
        Ok(())
    }

    /// Emit to the selected sockets of a namespace. The packet is encoded
    /// once and each receiver (once, whatever rooms it shares with the
    /// target) gets the same buffers. Returns how many were sent it.
    pub fn broadcast<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        to: &Broadcast,
        event: &str,
        args: &A,
    ) -> Result<usize, ServerError> {
        check_namespace(&to.nsp)?;
        check_event_name(event)?;
        let Some(namespace) = self.namespaces.get(&to.nsp) else {
            return Ok(0);
        };
        let receivers = namespace.adapter.select(&to.selector);
        let sent = self.send_event(
            now,
            &to.nsp,
            || to.selector.clone(),
            &receivers,
            event,
            args,
            to.volatile,
        )?;
        self.close_overflowed(now);
        Ok(sent)
    }

    /// Broadcast asking every receiver for an acknowledgement; one
    /// [`ServerEvent::BroadcastAck`] reports every answer once all arrived
    /// (receivers that disconnect are not waited for), or what arrived when
    /// `timeout` passes.
    pub fn broadcast_with_ack<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        to: &Broadcast,
        event: &str,
        args: &A,
        timeout: Duration,
    ) -> Result<BroadcastAckStarted, ServerError> {
        check_namespace(&to.nsp)?;
        check_event_name(event)?;
        let bid = self.next_broadcast_ack;
        let mut started = BroadcastAckStarted {
            id: BroadcastAckId(bid),
            receivers: 0,
            skipped: Vec::new(),
        };
        let mut remaining = BTreeSet::new();
        let mut wire_id = 0;
        if let Some(namespace) = self.namespaces.get_mut(&to.nsp) {
            let receivers = namespace.adapter.select(&to.selector);
            wire_id = namespace.next_ack_id;
            let messages = encode_packet(
                &self.parser,
                &mut self.scratch,
                &OutPacket::Event {
                    nsp: &to.nsp,
                    event,
                    args,
                    ack: Some(wire_id),
                },
            )?;
            namespace.next_ack_id += 1;
            for sid in receivers {
                let full = self
                    .sockets
                    .get(&sid)
                    .map_or(true, |s| s.acks.len() >= self.config.max_pending_acks);
                if full || !self.deliver(now, &sid, &messages, to.volatile) {
                    started.skipped.push(sid);
                    continue;
                }
                let state = self.sockets.get_mut(&sid).expect("socket just delivered");
                state.acks.insert(
                    wire_id,
                    PendingAck {
                        timer: None,
                        broadcast: Some(bid),
                    },
                );
                remaining.insert(sid);
            }
        }
        self.next_broadcast_ack += 1;
        started.receivers = remaining.len();
        if remaining.is_empty() {
            self.events.push_back(ServerEvent::BroadcastAck {
                id: BroadcastAckId(bid),
                outcome: BroadcastAckOutcome::Complete,
                responses: Vec::new(),
            });
        } else {
            let timer = self
                .timers
                .schedule(now + timeout, Timer::BroadcastAck { id: bid });
            self.broadcast_acks.insert(
                bid,
                BroadcastAckState {
                    wire_id,
                    remaining,
                    responses: Vec::new(),
                    timer,
                },
            );
        }
        self.close_overflowed(now);
        Ok(started)
    }

    // ----- disconnecting -----

    /// Disconnect a connected socket from its namespace: the client gets
    /// DISCONNECT; the application [`ServerEvent::Disconnect`] with
    /// `server namespace disconnect`. The Engine.IO session stays open.
    pub fn disconnect(&mut self, now: Instant, socket: &str) -> Result<(), ServerError> {
        let state = self.sockets.get(socket).ok_or(ServerError::UnknownSocket)?;
        if !state.connected {
            return Err(ServerError::NotConnected);
        }
        let (nsp, eio) = (state.nsp.clone(), state.eio.clone());
        let sid = self.socket_key(socket);
        let messages = encode_packet(&self.parser, &mut self.scratch, &disconnect_packet(&nsp))?;
        self.transmit(now, &eio, &messages);
        self.remove_socket(now, &sid, DisconnectReason::ServerNamespaceDisconnect, true);
        self.close_overflowed(now);
        Ok(())
    }

    /// The peer sent arguments that are not valid (the JSON parser checks an
    /// event's arguments lazily: [`crate::parser::Args::validate`] or a
    /// failed `deserialize` whose `validate` also fails tells). Closes the
    /// socket's Engine.IO session with `parse error`, as the reference does
    /// for any invalid packet.
    pub fn invalid_packet(&mut self, now: Instant, socket: &str) -> Result<(), ServerError> {
        let eio = self
            .sockets
            .get(socket)
            .ok_or(ServerError::UnknownSocket)?
            .eio
            .clone();
        self.abort_session(now, &eio, DisconnectReason::ParseError);
        Ok(())
    }

    /// Close an Engine.IO session: its sockets disconnect with
    /// `forced server close`.
    pub fn close_session(&mut self, now: Instant, eio: &str) -> Result<(), ServerError> {
        let (eio, _) = self
            .sessions
            .get_key_value(eio)
            .ok_or(ServerError::UnknownSession)?;
        let eio = eio.clone();
        self.abort_session(now, &eio, DisconnectReason::ForcedServerClose);
        Ok(())
    }

    // ----- rooms -----

    /// Put a socket in a room.
    pub fn join(&mut self, socket: &str, room: impl Into<Str>) -> Result<(), ServerError> {
        let (sid, state) = self
            .sockets
            .get_key_value(socket)
            .ok_or(ServerError::UnknownSocket)?;
        let namespace = self.namespaces.get_mut(&state.nsp).expect("socket's nsp");
        namespace.adapter.join(sid, &room.into());
        Ok(())
    }

    /// Take a socket out of a room.
    pub fn leave(&mut self, socket: &str, room: &str) -> Result<(), ServerError> {
        let (sid, state) = self
            .sockets
            .get_key_value(socket)
            .ok_or(ServerError::UnknownSocket)?;
        let namespace = self.namespaces.get_mut(&state.nsp).expect("socket's nsp");
        namespace.adapter.leave(sid, &Str::from(room));
        Ok(())
    }

    /// The rooms a socket is in (its own id among them).
    pub fn rooms(&self, socket: &str) -> Result<Vec<Str>, ServerError> {
        let state = self.sockets.get(socket).ok_or(ServerError::UnknownSocket)?;
        Ok(self.namespaces[&state.nsp].adapter.rooms_of(socket))
    }

    /// The sockets in a room of a namespace (pending ones included).
    pub fn sockets_in(&self, nsp: &str, room: &str) -> Vec<Str> {
        self.namespaces
            .get(nsp)
            .map(|n| n.adapter.sockets_in(room))
            .unwrap_or_default()
    }

    /// Every socket of a namespace leaves `room`.
    pub fn close_room(&mut self, nsp: &str, room: &str) {
        if let Some(namespace) = self.namespaces.get_mut(nsp) {
            let room = Str::from(room);
            for socket in namespace.adapter.sockets_in(&room) {
                namespace.adapter.leave(&socket, &room);
            }
        }
    }

    // ----- socket state -----

    /// The namespace of a socket.
    pub fn namespace_of(&self, socket: &str) -> Result<&Str, ServerError> {
        Ok(&self
            .sockets
            .get(socket)
            .ok_or(ServerError::UnknownSocket)?
            .nsp)
    }

    /// Whether the socket's CONNECT was accepted.
    pub fn is_connected(&self, socket: &str) -> Result<bool, ServerError> {
        Ok(self
            .sockets
            .get(socket)
            .ok_or(ServerError::UnknownSocket)?
            .connected)
    }

    /// Whether the socket's Engine.IO session is under its buffer bound.
    /// When it is not, [`ServerEvent::Writable`] follows once it is.
    pub fn can_send(&self, socket: &str) -> Result<bool, ServerError> {
        let state = self.sockets.get(socket).ok_or(ServerError::UnknownSocket)?;
        Ok(self
            .sessions
            .get(&state.eio)
            .is_some_and(|s| s.buffered <= self.config.max_buffered_bytes))
    }

    /// Attach application data to a socket (replacing any).
    pub fn set_data<T: Any + Send>(&mut self, socket: &str, data: T) -> Result<(), ServerError> {
        let state = self
            .sockets
            .get_mut(socket)
            .ok_or(ServerError::UnknownSocket)?;
        state.data = Some(Box::new(data));
        Ok(())
    }

    /// The socket's data, if it holds a `T`.
    pub fn data<T: Any>(&self, socket: &str) -> Result<Option<&T>, ServerError> {
        let state = self.sockets.get(socket).ok_or(ServerError::UnknownSocket)?;
        Ok(state.data.as_ref().and_then(|d| d.downcast_ref()))
    }

    /// The socket's data, mutably, if it holds a `T`.
    pub fn data_mut<T: Any>(&mut self, socket: &str) -> Result<Option<&mut T>, ServerError> {
        let state = self
            .sockets
            .get_mut(socket)
            .ok_or(ServerError::UnknownSocket)?;
        Ok(state.data.as_mut().and_then(|d| d.downcast_mut()))
    }

    /// Take the socket's data out if it holds a `T` (otherwise it stays).
    pub fn take_data<T: Any>(&mut self, socket: &str) -> Result<Option<T>, ServerError> {
        let state = self
            .sockets
            .get_mut(socket)
            .ok_or(ServerError::UnknownSocket)?;
        match state.data.take() {
            Some(data) => match data.downcast::<T>() {
                Ok(value) => Ok(Some(*value)),
                Err(data) => {
                    state.data = Some(data);
                    Ok(None)
                }
            },
            None => Ok(None),
        }
    }

    // ----- internals -----

    /// The map's own key for a socket id known to exist (cheap clone).
    fn socket_key(&self, socket: &str) -> Str {
        self.sockets
            .get_key_value(socket)
            .map(|(k, _)| k.clone())
            .expect("socket exists")
    }

    fn random_id(&mut self) -> Str {
        let mut bytes = [0u8; 15];
        self.rng.fill_bytes(&mut bytes);
        Str::from(URL_SAFE_NO_PAD.encode(bytes))
    }

    fn namespace_allowed(&self, nsp: &str) -> bool {
        nsp == "/" || self.config.namespaces.iter().any(|m| m.matches(nsp))
    }

    fn on_packet(&mut self, now: Instant, eio: &Str, packet: Packet) {
        let existing = self.sessions[eio].sockets.get(&packet.nsp).cloned();
        match (existing, packet.data) {
            (None, PacketData::Connect(auth)) => self.on_connect(now, eio, packet.nsp, auth),
            (Some(_), PacketData::Connect(_)) => {
                tracing::debug!(%eio, nsp = %packet.nsp, "duplicate CONNECT ignored");
            }
            (None, _) | (Some(_), PacketData::ConnectError(_)) => {
                tracing::debug!(%eio, nsp = %packet.nsp, "packet out of state");
                self.abort_session(now, eio, DisconnectReason::ParseError);
            }
            (Some(sid), PacketData::Disconnect) => {
                self.remove_socket(now, &sid, DisconnectReason::ClientNamespaceDisconnect, true);
            }
            (Some(sid), PacketData::Event { name, args, ack }) => {
                let limit = self.config.max_unanswered_acks;
                let state = self.sockets.get_mut(&sid).expect("session's socket");
                if !state.connected {
                    self.abort_session(now, eio, DisconnectReason::ParseError);
                    return;
                }
                if let Some(id) = ack {
                    state.unanswered.insert(id);
                    while state.unanswered.len() > limit {
                        state.unanswered.pop_first();
                    }
                }
                self.events.push_back(ServerEvent::Event {
                    socket: sid,
                    nsp: packet.nsp,
                    name,
                    args,
                    ack,
                });
            }
            (Some(sid), PacketData::Ack { id, args }) => {
                let state = self.sockets.get_mut(&sid).expect("session's socket");
                if !state.connected {
                    self.abort_session(now, eio, DisconnectReason::ParseError);
                    return;
                }
                let Some(pending) = state.acks.remove(&id) else {
                    tracing::debug!(%sid, id, "ack with unknown id ignored");
                    return;
                };
                self.timers.cancel(pending.timer);
                match pending.broadcast {
                    Some(bid) => {
                        if let Some(b) = self.broadcast_acks.get_mut(&bid) {
                            b.remaining.remove(&sid);
                            b.responses.push((sid, args));
                            if b.remaining.is_empty() {
                                self.finish_broadcast_ack(bid, BroadcastAckOutcome::Complete);
                            }
                        }
                    }
                    None => self.events.push_back(ServerEvent::Ack {
                        socket: sid,
                        nsp: packet.nsp,
                        id,
                        outcome: AckOutcome::Answered(args),
                    }),
                }
            }
        }
    }

    fn on_connect(&mut self, now: Instant, eio: &Str, nsp: Str, auth: Option<Value>) {
        if !self.namespace_allowed(&nsp) {
            let body = ConnectErrorBody::<()> {
                message: "Invalid namespace",
                data: None,
            };
            match encode_packet(
                &self.parser,
                &mut self.scratch,
                &OutPacket::ConnectError {
                    nsp: &nsp,
                    data: &body,
                },
            ) {
                Ok(messages) => self.transmit(now, eio, &messages),
                Err(err) => tracing::warn!(%err, "cannot encode CONNECT_ERROR"),
            }
            return;
        }
        let recovery_on = self.config.recovery.is_some();
        self.namespaces
            .entry(nsp.clone())
            .or_insert_with(|| Namespace {
                adapter: LocalAdapter::new(),
                next_ack_id: 0,
                recovery: recovery_on.then(RecoveryState::default),
            });

        let request = auth.as_ref().and_then(|auth| {
            let pid = auth.get("pid")?.as_str()?;
            let offset = auth.get("offset").and_then(Value::as_str);
            Some((Str::from(pid), offset.map(str::to_owned)))
        });
        let mut restored = None;
        if let (true, Some((pid, offset))) = (recovery_on, request) {
            self.take_over(now, &nsp, &pid, offset.as_deref());
            restored = self.restore(now, &nsp, &pid, offset.as_deref());
        }

        let recovered = restored.is_some();
        // The first packet the client may not get: the replay's start for a
        // restored socket (if this connection drops before the client got
        // the replay, it comes back without a newer offset), otherwise
        // whatever is sent from now on, held packets included.
        let (sid, pid, rooms, data, replay, recovery_base) = match restored {
            Some((pid, session, replay, start)) => (
                session.sid,
                Some(pid),
                session.rooms,
                session.data,
                replay,
                start,
            ),
            None => {
                let mut sid = self.random_id();
                while self.sockets.contains_key(&sid) {
                    sid = self.random_id();
                }
                let pid = recovery_on.then(|| self.random_id());
                let base = self.namespaces[&nsp]
                    .recovery
                    .as_ref()
                    .map_or(0, |r| r.next_seq);
                (sid, pid, Vec::new(), None, Vec::new(), base)
            }
        };
        let namespace = self.namespaces.get_mut(&nsp).expect("created above");
        namespace.adapter.join(&sid, &sid);
        for room in &rooms {
            namespace.adapter.join(&sid, room);
        }
        if let (Some(recovery), Some(pid)) = (namespace.recovery.as_mut(), pid.as_ref()) {
            recovery.live.insert(pid.clone(), sid.clone());
        }
        self.sockets.insert(
            sid.clone(),
            SocketState {
                nsp: nsp.clone(),
                eio: eio.clone(),
                pid,
                connected: false,
                replay,
                held: Vec::new(),
                acks: BTreeMap::new(),
                unanswered: BTreeSet::new(),
                data,
                recovery_base,
            },
        );
        let session = self.sessions.get_mut(eio).expect("session of the packet");
        session.sockets.insert(nsp.clone(), sid.clone());
        if self.config.always_connect {
            if let Err(err) = self.connect_socket(now, &sid) {
                tracing::warn!(%err, "cannot encode CONNECT reply");
            }
        }
        self.events.push_back(ServerEvent::Connect {
            socket: sid,
            nsp,
            eio: eio.clone(),
            auth,
            recovered,
        });
    }

    /// A client presents the private id of a socket the server still
    /// believes connected (only the client's side of the old connection
    /// died): end the old socket as if its transport closed, keeping its
    /// state for [`Server::restore`], and tell the old session.
    fn take_over(&mut self, now: Instant, nsp: &Str, pid: &Str, offset: Option<&str>) {
        let Some(duration) = self
            .config
            .recovery
            .as_ref()
            .map(|r| r.max_disconnection_duration)
        else {
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
        if !state.connected || recovery.replay_start(offset, state.recovery_base).is_none() {
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
    fn restore(
        &mut self,
        now: Instant,
        nsp: &Str,
        pid: &Str,
        offset: Option<&str>,
    ) -> Option<(Str, PersistedSession, Vec<Message>, u64)> {
        let duration = self.config.recovery.as_ref()?.max_disconnection_duration;
        let recovery = self.namespaces.get_mut(nsp)?.recovery.as_mut()?;
        recovery.evict_expired(now, duration);
        let session = recovery.sessions.get(pid)?;
        if session.timer.0 <= now {
            return None;
        }
        let start = recovery.replay_start(offset, session.recovery_base)?;
        let (pid, session) = recovery.sessions.remove_entry(pid)?;
        self.timers.cancel(Some(session.timer));
        let mut replay = Vec::new();
        for packet in &recovery.packets {
            if packet.seq >= start && packet.selector.includes(session.rooms.iter()) {
                replay.extend(packet.messages.iter().cloned());
            }
        }
        Some((pid, session, replay, start))
    }

    /// Mark a socket connected and send: recovered packets, the CONNECT
    /// reply, then what was held.
    fn connect_socket(&mut self, now: Instant, sid: &Str) -> Result<(), ServerError> {
        let state = self.sockets.get(sid).expect("socket to connect");
        let (nsp, eio) = (state.nsp.clone(), state.eio.clone());
        let reply = ConnectReply {
            sid,
            pid: state.pid.as_deref(),
        };
        let messages = encode_packet(
            &self.parser,
            &mut self.scratch,
            &OutPacket::Connect {
                nsp: &nsp,
                data: Some(&reply),
            },
        )?;
        let state = self.sockets.get_mut(sid).expect("socket to connect");
        state.connected = true;
        let replay = std::mem::take(&mut state.replay);
        let held = std::mem::take(&mut state.held);
        self.transmit(now, &eio, &replay);
        self.transmit(now, &eio, &messages);
        // Held bytes were counted when held.
        self.commands
            .extend(held.into_iter().map(|message| EngineCommand::Send {
                eio: eio.clone(),
                message,
            }));
        if let Some(session) = self.sessions.get_mut(&eio) {
            self.timers.cancel(session.connect_timer.take());
        }
        Ok(())
    }

    /// Encode an event once (with a recovery offset when recovery is on
    /// and it is not volatile), store it for replay with its `selector`
    /// (built only then), and deliver it.
    #[allow(clippy::too_many_arguments)]
    fn send_event<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        nsp: &Str,
        selector: impl FnOnce() -> RoomSelector,
        receivers: &[Str],
        event: &str,
        args: &A,
        volatile: bool,
    ) -> Result<usize, ServerError> {
        let namespace = self.namespaces.get_mut(nsp).expect("namespace exists");
        let messages = match (namespace.recovery.as_mut(), volatile) {
            (Some(recovery), false) => {
                let seq = recovery.next_seq;
                let mut offset = itoa::Buffer::new();
                let offset = offset.format(seq);
                let messages = encode_packet(
                    &self.parser,
                    &mut self.scratch,
                    &OutPacket::Event {
                        nsp,
                        event,
                        args: &WithOffset { args, offset },
                        ack: None,
                    },
                )?;
                recovery.next_seq += 1;
                let bytes = messages.iter().map(message_len).sum();
                recovery.stored_bytes += bytes;
                recovery.packets.push_back(StoredPacket {
                    seq,
                    emitted_at: now,
                    messages: messages.clone(),
                    bytes,
                    // Only built when recovery is on.
                    selector: selector(),
                });
                let config = self.config.recovery.as_ref().expect("recovery on");
                while recovery.packets.len() > config.max_packets
                    || recovery.stored_bytes > config.max_bytes
                {
                    recovery.evict_front();
                }
                if recovery.expiry_timer.is_none() {
                    recovery.expiry_timer = Some(self.timers.schedule(
                        now + config.max_disconnection_duration,
                        Timer::PacketExpiry { nsp: nsp.clone() },
                    ));
                }
                messages
            }
            (Some(recovery), true) => {
                // Not kept for replay, but it carries an offset like the
                // others: a recovering client takes a string last argument
                // for the offset, and would otherwise eat a real argument.
                // Its own sequence number keeps offsets meaningful.
                let mut offset = itoa::Buffer::new();
                let offset = offset.format(recovery.next_seq);
                let messages = encode_packet(
                    &self.parser,
                    &mut self.scratch,
                    &OutPacket::Event {
                        nsp,
                        event,
                        args: &WithOffset { args, offset },
                        ack: None,
                    },
                )?;
                recovery.next_seq += 1;
                messages
            }
            (None, _) => encode_packet(
                &self.parser,
                &mut self.scratch,
                &OutPacket::Event {
                    nsp,
                    event,
                    args,
                    ack: None,
                },
            )?,
        };
        let mut sent = 0;
        for sid in receivers {
            if self.deliver(now, sid, &messages, volatile) {
                sent += 1;
            }
        }
        Ok(sent)
    }

    fn emit_to_socket<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        socket: &str,
        event: &str,
        args: &A,
        volatile: bool,
    ) -> Result<bool, ServerError> {
        check_event_name(event)?;
        let (sid, state) = self
            .sockets
            .get_key_value(socket)
            .ok_or(ServerError::UnknownSocket)?;
        let (sid, nsp) = (sid.clone(), state.nsp.clone());
        // As in the reference, a direct emit is a broadcast to the socket's
        // own room, so recovery stores it.
        let receivers = [sid];
        let selector = || RoomSelector {
            rooms: vec![receivers[0].clone()],
            except: Vec::new(),
        };
        let sent = self.send_event(now, &nsp, selector, &receivers, event, args, volatile)?;
        self.close_overflowed(now);
        Ok(sent == 1)
    }

    /// Hand messages to a socket: to the engine when connected, held when
    /// pending. Volatile messages are skipped when the socket cannot take
    /// them now. Returns whether they were taken.
    ///
    /// Called once per receiver of a broadcast: it looks the socket and its
    /// session up once each, and per message only clones two shared
    /// buffers (the session id and the message) into a command.
    fn deliver(&mut self, now: Instant, sid: &str, messages: &[Message], volatile: bool) -> bool {
        let Some(state) = self.sockets.get_mut(sid) else {
            return false;
        };
        let Some(session) = self.sessions.get_mut(&state.eio) else {
            return false;
        };
        if volatile && (!state.connected || session.buffered > self.config.max_buffered_bytes) {
            return false;
        }
        if state.connected {
            queue_sends(&mut self.commands, &state.eio, session, messages);
        } else {
            session.buffered += messages.iter().map(message_len).sum::<usize>();
            state.held.extend(messages.iter().cloned());
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
    fn transmit(&mut self, now: Instant, eio: &Str, messages: &[Message]) {
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

    fn close_overflowed(&mut self, now: Instant) {
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

    /// Close a session from this side.
    fn abort_session(&mut self, now: Instant, eio: &Str, reason: DisconnectReason) {
        if self.sessions.contains_key(eio) {
            self.commands
                .push_back(EngineCommand::Close { eio: eio.clone() });
            self.remove_session(now, eio, reason);
        }
    }

    fn remove_session(&mut self, now: Instant, eio: &Str, reason: DisconnectReason) {
        let Some(session) = self.sessions.remove(eio) else {
            return;
        };
        self.timers.cancel(session.connect_timer);
        self.timers.cancel(session.slow_timer);
        for sid in session.sockets.values() {
            self.remove_socket(now, sid, reason, true);
        }
    }

    /// Forget a socket: leave its rooms, settle its pending acks, keep its
    /// state for recovery when the reason allows, and tell the application
    /// when `notify`.
    fn remove_socket(&mut self, now: Instant, sid: &str, reason: DisconnectReason, notify: bool) {
        let Some((sid, state)) = self.sockets.remove_entry(sid) else {
            return;
        };
        if let Some(session) = self.sessions.get_mut(&state.eio) {
            if session.sockets.get(&state.nsp) == Some(&sid) {
                session.sockets.remove(&state.nsp);
            }
        }
        // Held messages will never reach the engine: stop counting them.
        let held: usize = state.held.iter().map(message_len).sum();
        if held > 0 {
            self.credit(&state.eio, held);
        }
        let namespace = self.namespaces.get_mut(&state.nsp).expect("socket's nsp");
        let rooms = namespace.adapter.leave_all(&sid);
        for (id, pending) in state.acks {
            self.timers.cancel(pending.timer);
            match pending.broadcast {
                Some(bid) => {
                    if let Some(b) = self.broadcast_acks.get_mut(&bid) {
                        b.remaining.remove(&sid);
                        if b.remaining.is_empty() {
                            self.finish_broadcast_ack(bid, BroadcastAckOutcome::Complete);
                        }
                    }
                }
                None => self.events.push_back(ServerEvent::Ack {
                    socket: sid.clone(),
                    nsp: state.nsp.clone(),
                    id,
                    outcome: AckOutcome::Disconnected,
                }),
            }
        }
        let namespace = self.namespaces.get_mut(&state.nsp).expect("socket's nsp");
        if let (Some(recovery), Some(pid)) = (namespace.recovery.as_mut(), state.pid) {
            if recovery.live.get(&pid) == Some(&sid) {
                recovery.live.remove(&pid);
            }
            if state.connected && reason.is_recoverable() {
                let duration = self
                    .config
                    .recovery
                    .as_ref()
                    .expect("recovery on")
                    .max_disconnection_duration;
                let timer = self.timers.schedule(
                    now + duration,
                    Timer::SessionExpiry {
                        nsp: state.nsp.clone(),
                        pid: pid.clone(),
                    },
                );
                let old = recovery.sessions.insert(
                    pid,
                    PersistedSession {
                        sid: sid.clone(),
                        rooms,
                        data: state.data,
                        recovery_base: state.recovery_base,
                        timer,
                    },
                );
                if let Some(old) = old {
                    self.timers.cancel(Some(old.timer));
                }
            }
        }
        if notify {
            self.events.push_back(ServerEvent::Disconnect {
                socket: sid,
                nsp: state.nsp.clone(),
                reason,
            });
        }
        self.drop_namespace_if_unused(&state.nsp);
    }

    /// Forget a namespace nobody uses, so clients naming arbitrary
    /// namespaces (with a `*` matcher) cannot grow memory.
    fn drop_namespace_if_unused(&mut self, nsp: &Str) {
        let Some(namespace) = self.namespaces.get(nsp) else {
            return;
        };
        let unused = namespace.adapter.is_empty()
            && namespace
                .recovery
                .as_ref()
                .map_or(true, |r| r.sessions.is_empty() && r.packets.is_empty());
        if unused {
            if let Some(recovery) = self.namespaces.remove(nsp).and_then(|n| n.recovery) {
                self.timers.cancel(recovery.expiry_timer);
            }
        }
    }

    fn finish_broadcast_ack(&mut self, bid: u64, outcome: BroadcastAckOutcome) {
        let Some(state) = self.broadcast_acks.remove(&bid) else {
            return;
        };
        self.timers.cancel(Some(state.timer));
        for sid in &state.remaining {
            if let Some(socket) = self.sockets.get_mut(sid) {
                socket.acks.remove(&state.wire_id);
            }
        }
        self.events.push_back(ServerEvent::BroadcastAck {
            id: BroadcastAckId(bid),
            outcome,
            responses: state.responses,
        });
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Connect { eio } => {
                if let Some(session) = self.sessions.get_mut(&eio) {
                    session.connect_timer = None;
                    tracing::debug!(%eio, "no namespace joined in time");
                    self.abort_session(now, &eio, DisconnectReason::ForcedServerClose);
                }
            }
            Timer::Ack { socket, id } => {
                if let Some(state) = self.sockets.get_mut(&socket) {
                    if state.acks.remove(&id).is_some() {
                        self.events.push_back(ServerEvent::Ack {
                            nsp: state.nsp.clone(),
                            socket,
                            id,
                            outcome: AckOutcome::TimedOut,
                        });
                    }
                }
            }
            Timer::BroadcastAck { id } => {
                if let Some(state) = self.broadcast_acks.get_mut(&id) {
                    // Already popped: keep finish from cancelling another.
                    state.timer = (now, 0);
                    self.finish_broadcast_ack(id, BroadcastAckOutcome::TimedOut);
                }
            }
            Timer::SlowConsumer { eio } => {
                if let Some(session) = self.sessions.get_mut(&eio) {
                    session.slow_timer = None;
                    if session.buffered > self.config.max_buffered_bytes {
                        self.abort_session(now, &eio, DisconnectReason::SlowConsumer);
                    }
                }
            }
            Timer::SessionExpiry { nsp, pid } => {
                if let Some(recovery) = self
                    .namespaces
                    .get_mut(&nsp)
                    .and_then(|n| n.recovery.as_mut())
                {
                    recovery.sessions.remove(&pid);
                }
                self.drop_namespace_if_unused(&nsp);
            }
            Timer::PacketExpiry { nsp } => {
                let Some(duration) = self
                    .config
                    .recovery
                    .as_ref()
                    .map(|r| r.max_disconnection_duration)
                else {
                    return;
                };
                if let Some(recovery) = self
                    .namespaces
                    .get_mut(&nsp)
                    .and_then(|n| n.recovery.as_mut())
                {
                    recovery.evict_expired(now, duration);
                    recovery.expiry_timer = recovery.packets.front().map(|p| {
                        self.timers.schedule(
                            p.emitted_at + duration,
                            Timer::PacketExpiry { nsp: nsp.clone() },
                        )
                    });
                }
                self.drop_namespace_if_unused(&nsp);
            }
        }
    }

    /// Sizes of the internal maps, to check nothing is left behind.
    #[cfg(test)]
    fn footprint(&self) -> Footprint {
        Footprint {
            sessions: self.sessions.len(),
            sockets: self.sockets.len(),
            namespaces: self.namespaces.len(),
            timers: self.timers.map.len(),
            broadcast_acks: self.broadcast_acks.len(),
            pending_acks: self.sockets.values().map(|s| s.acks.len()).sum(),
        }
    }
}

#[cfg(test)]
#[derive(Debug, PartialEq, Eq)]
struct Footprint {
    sessions: usize,
    sockets: usize,
    namespaces: usize,
    timers: usize,
    broadcast_acks: usize,
    pending_acks: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    const SECOND: Duration = Duration::from_secs(1);

    fn server_with(config: ServerConfig) -> Server {
        Server::new(config, JsonParser, Box::new(ChaCha8Rng::seed_from_u64(7)))
    }

    fn server() -> Server {
        server_with(ServerConfig::default())
    }

    fn recovering() -> Server {
        server_with(ServerConfig {
            recovery: Some(RecoveryConfig::default()),
            ..ServerConfig::default()
        })
    }

    /// A Socket.IO packet written as it appears inside an Engine.IO
    /// message packet on the wire (`40` is CONNECT): the engine's `4` is
    /// dropped.
    fn text(s: &str) -> Message {
        Message::Text(Str::from(s.strip_prefix('4').expect("engine message")))
    }

    fn eio(name: &'static str) -> Str {
        Str::from_static(name)
    }

    /// Commands as `(eio, text)`, `CLOSE` for a close.
    fn commands(server: &mut Server) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Some(command) = server.poll_command() {
            out.push(match command {
                EngineCommand::Send {
                    eio,
                    message: Message::Text(t),
                } => (eio.to_string(), format!("4{t}")),
                EngineCommand::Send {
                    eio,
                    message: Message::Binary(b),
                } => (eio.to_string(), format!("<{} bytes>", b.len())),
                EngineCommand::Close { eio } => (eio.to_string(), "CLOSE".to_owned()),
            });
        }
        out
    }

    /// Texts sent, ignoring the session.
    fn texts(server: &mut Server) -> Vec<String> {
        commands(server).into_iter().map(|(_, t)| t).collect()
    }

    fn events(server: &mut Server) -> Vec<ServerEvent> {
        std::iter::from_fn(|| server.poll_event()).collect()
    }

    /// The socket id of the only Connect event.
    fn connect_event(server: &mut Server) -> (Str, bool) {
        match events(server).as_slice() {
            [ServerEvent::Connect {
                socket, recovered, ..
            }] => (socket.clone(), *recovered),
            other => panic!("expected one connect event, got {other:?}"),
        }
    }

    /// Open `eio`, send `connect` on it, accept; returns the socket id.
    fn join(server: &mut Server, now: Instant, eio_sid: &'static str, connect: &str) -> Str {
        if !server.sessions.contains_key(eio_sid) {
            server.handle_engine_open(now, eio(eio_sid));
        }
        server.handle_engine_message(now, eio_sid, text(connect));
        let (socket, _) = connect_event(server);
        server.accept(now, &socket).unwrap();
        commands(server);
        socket
    }

    fn args_json(args: &Args) -> String {
        serde_json::to_string(args).unwrap()
    }

    fn pid_of(reply: &str) -> String {
        let json: serde_json::Value = serde_json::from_str(&reply[2..]).unwrap();
        json["pid"].as_str().unwrap().to_owned()
    }

    #[test]
    fn connect_reply_carries_a_fresh_socket_id() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            namespaces: vec![NamespaceMatcher::Exact(Str::from("/admin"))],
            ..ServerConfig::default()
        });
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, recovered) = connect_event(&mut server);
        assert!(!recovered);
        assert_ne!(socket, "E1");
        assert_eq!(socket.len(), 20);
        assert!(commands(&mut server).is_empty(), "nothing before accept");
        server.accept(now, &socket).unwrap();
        assert_eq!(
            commands(&mut server),
            [("E1".to_owned(), format!(r#"40{{"sid":"{socket}"}}"#))]
        );
        assert_eq!(
            server.accept(now, &socket),
            Err(ServerError::AlreadyAnswered)
        );

        server.handle_engine_message(now, "E1", text(r#"40/admin,{"token":"x"}"#));
        let events = events(&mut server);
        let [ServerEvent::Connect {
            socket: admin,
            nsp,
            eio: from,
            auth,
            ..
        }] = events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert_eq!((nsp.as_ref(), from.as_ref()), ("/admin", "E1"));
        assert_eq!(
            auth.as_ref().unwrap().get("token").unwrap().as_str(),
            Some("x")
        );
        assert_ne!(admin, &socket);
        server.accept(now, admin).unwrap();
        assert_eq!(
            texts(&mut server),
            [format!(r#"40/admin,{{"sid":"{admin}"}}"#)]
        );
        assert_eq!(server.namespace_of(admin).unwrap(), "/admin");
    }

    #[test]
    fn invalid_namespace_gets_the_exact_error() {
        let now = Instant::now();
        let mut server = server();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40/nope,"));
        assert_eq!(
            texts(&mut server),
            [r#"44/nope,{"message":"Invalid namespace"}"#]
        );
        assert!(events(&mut server).is_empty());
        // The session stays usable.
        join(&mut server, now, "E1", "40");
    }

    #[test]
    fn namespace_matchers() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            namespaces: vec![NamespaceMatcher::predicate(|n| n.starts_with("/dyn-"))],
            ..ServerConfig::default()
        });
        join(&mut server, now, "E1", "40/dyn-1,");
        server.handle_engine_message(now, "E1", text("40/other,"));
        assert_eq!(
            texts(&mut server),
            [r#"44/other,{"message":"Invalid namespace"}"#]
        );
        let mut any = server_with(ServerConfig {
            namespaces: vec![NamespaceMatcher::Any],
            ..ServerConfig::default()
        });
        join(&mut any, now, "E1", "40/whatever");
        assert!(format!("{:?}", NamespaceMatcher::Any).contains("Any"));
    }

    #[test]
    fn reject_sends_connect_error() {
        let now = Instant::now();
        let mut server = server();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.emit(now, &socket, "held", &1).unwrap();
        server
            .reject(now, &socket, "no", Some(&serde_json::json!({"x": 1})))
            .unwrap();
        assert_eq!(texts(&mut server), [r#"44{"message":"no","data":{"x":1}}"#]);
        assert!(events(&mut server).is_empty());
        assert_eq!(server.accept(now, &socket), Err(ServerError::UnknownSocket));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.reject::<()>(now, &socket, "nope", None).unwrap();
        assert_eq!(texts(&mut server), [r#"44{"message":"nope"}"#]);
    }

    #[test]
    fn emits_during_the_connect_handler_follow_the_reply() {
        let now = Instant::now();
        let mut server = server();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.emit(now, &socket, "hello", &(1, "a")).unwrap();
        server.join(&socket, "room").unwrap();
        server
            .broadcast(now, &Broadcast::namespace("/").to("room"), "news", &())
            .unwrap();
        assert_eq!(server.emit_volatile(now, &socket, "v", &()), Ok(false));
        assert!(commands(&mut server).is_empty());
        assert_eq!(server.is_connected(&socket), Ok(false));
        server.accept(now, &socket).unwrap();
        assert_eq!(
            texts(&mut server),
            [
                format!(r#"40{{"sid":"{socket}"}}"#),
                r#"42["hello",1,"a"]"#.to_owned(),
                r#"42["news"]"#.to_owned(),
            ]
        );
    }

    #[test]
    fn always_connect_replies_first_and_turns_rejection_into_disconnect() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            always_connect: true,
            ..ServerConfig::default()
        });
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        assert_eq!(texts(&mut server), [format!(r#"40{{"sid":"{socket}"}}"#)]);
        assert_eq!(server.is_connected(&socket), Ok(true));
        server.accept(now, &socket).unwrap();
        server.reject::<()>(now, &socket, "no", None).unwrap();
        assert_eq!(texts(&mut server), ["41"]);
        assert!(events(&mut server).is_empty());
        assert_eq!(server.footprint().sockets, 0);
    }

    #[test]
    fn duplicate_connect_is_ignored() {
        let now = Instant::now();
        let mut server = server();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.accept(now, &socket).unwrap();
        commands(&mut server);
        server.handle_engine_message(now, "E1", text(r#"40{"a":1}"#));
        assert!(events(&mut server).is_empty());
        assert!(commands(&mut server).is_empty());
        assert_eq!(server.footprint().sockets, 1);
    }

    #[test]
    fn connect_timeout_closes_idle_sessions_only() {
        let now = Instant::now();
        let mut server = server();
        server.handle_engine_open(now, eio("IDLE"));
        join(&mut server, now, "BUSY", "40");
        assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(45)));
        server.handle_timeout(now + Duration::from_secs(44));
        assert!(commands(&mut server).is_empty());
        server.handle_timeout(now + Duration::from_secs(45));
        assert_eq!(
            commands(&mut server),
            [("IDLE".to_owned(), "CLOSE".to_owned())]
        );
        assert_eq!(server.poll_timeout(), None);
        assert_eq!(server.footprint().sessions, 1);
        // The closed session's late report is ignored.
        server.handle_engine_closed(now, "IDLE", DisconnectReason::ForcedClose);
        assert!(events(&mut server).is_empty());

        // A pending socket does not count as joined.
        server.handle_engine_open(now, eio("SLOW"));
        server.handle_engine_message(now, "SLOW", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.handle_timeout(now + Duration::from_secs(50));
        assert_eq!(texts(&mut server), ["CLOSE"]);
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Disconnect { socket: s, reason: DisconnectReason::ForcedServerClose, .. }] if *s == socket
        ));
    }

    #[test]
    fn lazily_checked_arguments_that_are_invalid_close_the_session() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig::default());
        let socket = join(&mut server, now, "E1", "40");
        server.handle_engine_message(now, "E1", text(r#"42["x",{"a":]"#));
        let args = match events(&mut server).as_slice() {
            [ServerEvent::Event { args, .. }] => args.clone(),
            other => panic!("expected the event, got {other:?}"),
        };
        assert!(args.validate().is_err());
        assert!(args.deserialize::<(crate::Value,)>().is_err());
        server.invalid_packet(now, &socket).unwrap();
        assert_eq!(texts(&mut server), ["CLOSE"]);
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Disconnect { socket: s, reason: DisconnectReason::ParseError, .. }] if *s == socket
        ));
        assert_eq!(
            server.invalid_packet(now, &socket),
            Err(ServerError::UnknownSocket)
        );
    }

    #[test]
    fn parse_errors_close_the_session() {
        let now = Instant::now();
        let mut server = server();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text(r#"42["x"]"#));
        assert_eq!(
            commands(&mut server),
            [("E1".to_owned(), "CLOSE".to_owned())]
        );
        assert_eq!(server.footprint().sessions, 0);

        let socket = join(&mut server, now, "E2", "40");
        for bad in [
            "4x",
            "49",
            r#"42{"not":"an array"}"#,
            "42abc[]",
            "4",
            "421x",
            "44",
        ] {
            let mut server = server_with(ServerConfig::default());
            let socket = join(&mut server, now, "E2", "40");
            server.handle_engine_message(now, "E2", text(bad));
            assert_eq!(texts(&mut server), ["CLOSE"], "{bad:?}");
            assert!(matches!(
                events(&mut server).as_slice(),
                [ServerEvent::Disconnect { socket: s, reason: DisconnectReason::ParseError, .. }] if *s == socket
            ));
            assert_eq!(server.footprint().sockets, 0);
        }
        // An event for a namespace the session did not join.
        server.handle_engine_message(now, "E2", text(r#"42/other,["x"]"#));
        assert_eq!(texts(&mut server), ["CLOSE"]);
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Disconnect { socket: s, reason: DisconnectReason::ParseError, .. }] if *s == socket
        ));
        assert_eq!(
            server.footprint(),
            Footprint {
                sessions: 0,
                sockets: 0,
                namespaces: 0,
                timers: 0,
                broadcast_acks: 0,
                pending_acks: 0
            }
        );
    }

    #[test]
    fn client_events_and_acks() {
        let now = Instant::now();
        let mut server = server();
        let socket = join(&mut server, now, "E1", "40");
        server.handle_engine_message(now, "E1", text(r#"421["ev",1,{"a":2}]"#));
        let events = events(&mut server);
        let [ServerEvent::Event {
            socket: from,
            nsp,
            name,
            args,
            ack,
        }] = events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert_eq!((from, nsp.as_ref(), name.as_ref()), (&socket, "/", "ev"));
        assert_eq!(args_json(args), r#"[1,{"a":2}]"#);
        assert_eq!(*ack, Some(1));
        server.ack(now, &socket, 1, &("ok", 2)).unwrap();
        assert_eq!(texts(&mut server), [r#"431["ok",2]"#]);
        assert_eq!(
            server.ack(now, &socket, 1, &()),
            Err(ServerError::UnknownAck)
        );
        assert_eq!(
            server.ack(now, &socket, 99, &()),
            Err(ServerError::UnknownAck)
        );
        // Re-emitting received arguments spreads them again.
        server.emit(now, &socket, "echo", args).unwrap();
        assert_eq!(texts(&mut server), [r#"42["echo",1,{"a":2}]"#]);
    }

    #[test]
    fn unanswered_client_acks_are_bounded() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            max_unanswered_acks: 3,
            ..ServerConfig::default()
        });
        let socket = join(&mut server, now, "E1", "40");
        for id in 0..10 {
            server.handle_engine_message(now, "E1", text(&format!(r#"42{id}["e"]"#)));
        }
        events(&mut server);
        assert_eq!(server.sockets[&socket].unanswered.len(), 3);
        assert_eq!(
            server.ack(now, &socket, 0, &()),
            Err(ServerError::UnknownAck)
        );
        assert_eq!(server.ack(now, &socket, 9, &()), Ok(()));
    }

    #[test]
    fn server_acks_resolve_time_out_and_ignore_unknown_ids() {
        let now = Instant::now();
        let mut server = server();
        let socket = join(&mut server, now, "E1", "40");
        let first = server
            .emit_with_ack(now, &socket, "q", &1, 5 * SECOND)
            .unwrap();
        let second = server
            .emit_with_ack(now, &socket, "q", &2, 10 * SECOND)
            .unwrap();
        assert!(second > first);
        assert_eq!(
            texts(&mut server),
            [
                format!(r#"42{first}["q",1]"#),
                format!(r#"42{second}["q",2]"#)
            ]
        );
        server.handle_engine_message(now, "E1", text(r#"4399["stray"]"#));
        server.handle_engine_message(now, "E1", text(&format!(r#"43{first}["a"]"#)));
        let events_now = events(&mut server);
        let [ServerEvent::Ack {
            id,
            outcome: AckOutcome::Answered(args),
            ..
        }] = events_now.as_slice()
        else {
            panic!("{events_now:?}")
        };
        assert_eq!((*id, args_json(args).as_str()), (first, r#"["a"]"#));
        assert_eq!(server.poll_timeout(), Some(now + 10 * SECOND));
        server.handle_timeout(now + 10 * SECOND);
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Ack { id, outcome: AckOutcome::TimedOut, .. }] if *id == second
        ));
        // A late answer is ignored.
        server.handle_engine_message(now, "E1", text(&format!(r#"43{second}[]"#)));
        assert!(events(&mut server).is_empty());
        assert_eq!(server.footprint().pending_acks, 0);
        assert_eq!(server.footprint().timers, 0);
    }

    #[test]
    fn pending_acks_are_bounded() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            max_pending_acks: 2,
            ..ServerConfig::default()
        });
        let socket = join(&mut server, now, "E1", "40");
        server
            .emit_with_ack(now, &socket, "q", &(), SECOND)
            .unwrap();
        server
            .emit_with_ack(now, &socket, "q", &(), SECOND)
            .unwrap();
        assert_eq!(
            server.emit_with_ack(now, &socket, "q", &(), SECOND),
            Err(ServerError::TooManyPendingAcks { limit: 2 })
        );
    }

    #[test]
    fn ten_thousand_abandoned_acks_leave_nothing_behind() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            max_pending_acks: 10_000,
            ..ServerConfig::default()
        });
        let socket = join(&mut server, now, "E1", "40");
        for i in 0..10_000u32 {
            server
                .emit_with_ack(now, &socket, "q", &i, 60 * SECOND)
                .unwrap();
        }
        commands(&mut server);
        assert_eq!(server.footprint().pending_acks, 10_000);
        assert_eq!(server.footprint().timers, 10_000);
        server.handle_engine_closed(now, "E1", DisconnectReason::TransportClose);
        let events = events(&mut server);
        assert_eq!(events.len(), 10_001);
        assert!(events[..10_000].iter().all(|e| matches!(
            e,
            ServerEvent::Ack {
                outcome: AckOutcome::Disconnected,
                ..
            }
        )));
        assert!(matches!(
            events[10_000],
            ServerEvent::Disconnect {
                reason: DisconnectReason::TransportClose,
                ..
            }
        ));
        assert_eq!(
            server.footprint(),
            Footprint {
                sessions: 0,
                sockets: 0,
                namespaces: 0,
                timers: 0,
                broadcast_acks: 0,
                pending_acks: 0
            }
        );
        assert_eq!(server.poll_timeout(), None);
    }

    #[test]
    fn client_namespace_disconnect_keeps_the_session() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            namespaces: vec![NamespaceMatcher::Exact(Str::from("/a"))],
            ..ServerConfig::default()
        });
        let main = join(&mut server, now, "E1", "40");
        let a = join(&mut server, now, "E1", "40/a,");
        server.handle_engine_message(now, "E1", text("41/a,"));
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Disconnect { socket, reason: DisconnectReason::ClientNamespaceDisconnect, .. }] if *socket == a
        ));
        assert!(commands(&mut server).is_empty(), "no reply, no close");
        server.handle_engine_message(now, "E1", text("41"));
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Disconnect { socket, .. }] if *socket == main
        ));
        assert!(commands(&mut server).is_empty());
        assert_eq!(server.footprint().sessions, 1);
        // It can join again.
        let again = join(&mut server, now, "E1", "40/a,");
        assert_ne!(again, a);
    }

    #[test]
    fn server_disconnect_sends_disconnect() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            namespaces: vec![NamespaceMatcher::Exact(Str::from("/a"))],
            ..ServerConfig::default()
        });
        let socket = join(&mut server, now, "E1", "40/a,");
        server.disconnect(now, &socket).unwrap();
        assert_eq!(texts(&mut server), ["41/a,"]);
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Disconnect {
                reason: DisconnectReason::ServerNamespaceDisconnect,
                ..
            }]
        ));
        assert_eq!(
            server.disconnect(now, &socket),
            Err(ServerError::UnknownSocket)
        );
        assert_eq!(server.footprint().sessions, 1);
    }

    #[test]
    fn closing_a_session_disconnects_its_sockets() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            namespaces: vec![NamespaceMatcher::Any],
            ..ServerConfig::default()
        });
        join(&mut server, now, "E1", "40");
        join(&mut server, now, "E1", "40/x,");
        join(&mut server, now, "E2", "40");
        server.handle_engine_closed(now, "E1", DisconnectReason::PingTimeout);
        let events = events(&mut server);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| matches!(
            e,
            ServerEvent::Disconnect {
                reason: DisconnectReason::PingTimeout,
                ..
            }
        )));
        server.close_session(now, "E2").unwrap();
        assert_eq!(texts(&mut server), ["CLOSE"]);
        assert!(matches!(
            self::events(&mut server).as_slice(),
            [ServerEvent::Disconnect {
                reason: DisconnectReason::ForcedServerClose,
                ..
            }]
        ));
        assert_eq!(
            server.close_session(now, "E2"),
            Err(ServerError::UnknownSession)
        );
        assert_eq!(server.footprint().namespaces, 0);
    }

    #[test]
    fn broadcast_reaches_each_socket_once_with_shared_buffers() {
        let now = Instant::now();
        let mut server = server();
        let a = join(&mut server, now, "EA", "40");
        let b = join(&mut server, now, "EB", "40");
        let c = join(&mut server, now, "EC", "40");
        for room in ["r1", "r2", "r3"] {
            server.join(&a, room).unwrap();
        }
        server.join(&b, "r2").unwrap();
        assert_eq!(server.rooms(&a).unwrap().len(), 4);
        assert_eq!(server.sockets_in("/", "r2").len(), 2);
        let to = Broadcast::namespace("/").to("r1").to("r2").to("r3");
        assert_eq!(server.broadcast(now, &to, "news", &"hi").unwrap(), 2);
        let mut sent = Vec::new();
        while let Some(EngineCommand::Send { eio, message }) = server.poll_command() {
            let Message::Text(t) = message else {
                panic!("binary")
            };
            sent.push((eio, t));
        }
        assert_eq!(sent.len(), 2);
        let mut receivers = [&*sent[0].0, &*sent[1].0];
        receivers.sort();
        assert_eq!(receivers, ["EA", "EB"]);
        assert_eq!(sent[0].1, r#"2["news","hi"]"#);
        assert_eq!(sent[0].1.as_ptr(), sent[1].1.as_ptr(), "one encoding");

        // Whole namespace, except a room and a socket id.
        let to = Broadcast::namespace("/").except("r2");
        assert_eq!(server.broadcast(now, &to, "e", &()).unwrap(), 1);
        assert_eq!(commands(&mut server)[0].0, "EC");
        let to = Broadcast::namespace("/").except(c.clone());
        assert_eq!(server.broadcast(now, &to, "e", &()).unwrap(), 2);
        commands(&mut server);
        // Binary attachments are shared too.
        let to = Broadcast::namespace("/");
        let blob = crate::Value::Binary(crate::Bytes::from_static(b"\x01\x02"));
        assert_eq!(server.broadcast(now, &to, "bin", &blob).unwrap(), 3);
        let sent = texts(&mut server);
        assert_eq!(sent.len(), 6);
        assert_eq!(sent[0], r#"451-["bin",{"_placeholder":true,"num":0}]"#);
        assert_eq!(sent[1], "<2 bytes>");

        server.close_room("/", "r2");
        assert!(server.sockets_in("/", "r2").is_empty());
        server.leave(&a, "r1").unwrap();
        assert_eq!(server.rooms(&a).unwrap(), [Str::from("r3"), a.clone()]);
        assert_eq!(
            server.broadcast(now, &Broadcast::namespace("/none"), "e", &()),
            Ok(0)
        );
        assert_eq!(
            server.broadcast(now, &Broadcast::namespace("bad"), "e", &()),
            Err(ServerError::BadNamespace)
        );
        assert_eq!(
            server.broadcast(now, &Broadcast::namespace("/"), "connect", &()),
            Err(ServerError::ReservedEvent)
        );
    }

    #[test]
    fn misuse_is_an_error() {
        let now = Instant::now();
        let mut server = server();
        let socket = join(&mut server, now, "E1", "40");
        assert_eq!(
            server.emit(now, "nobody", "e", &()),
            Err(ServerError::UnknownSocket)
        );
        assert_eq!(
            server.emit(now, &socket, "disconnect", &()),
            Err(ServerError::ReservedEvent)
        );
        assert_eq!(
            server.emit_with_ack(now, &socket, "connect", &(), SECOND),
            Err(ServerError::ReservedEvent)
        );
        assert_eq!(server.join("nobody", "r"), Err(ServerError::UnknownSocket));
        assert_eq!(server.rooms("nobody"), Err(ServerError::UnknownSocket));
        assert_eq!(server.can_send("nobody"), Err(ServerError::UnknownSocket));
        assert!(!ServerError::UnknownAck.to_string().is_empty());
        // Inputs for unknown sessions are ignored.
        server.handle_engine_message(now, "ghost", text("40"));
        server.handle_engine_drained(now, "ghost", 10);
        server.handle_engine_closed(now, "ghost", DisconnectReason::TransportClose);
        assert!(events(&mut server).is_empty());
        assert!(commands(&mut server).is_empty());
    }

    #[test]
    fn volatile_is_skipped_for_sockets_that_cannot_take_it() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            max_buffered_bytes: 20,
            ..ServerConfig::default()
        });
        let fast = join(&mut server, now, "EF", "40");
        let slow = join(&mut server, now, "ES", "40");
        server.handle_engine_open(now, eio("EP"));
        server.handle_engine_message(now, "EP", text("40"));
        let (pending, _) = connect_event(&mut server);
        server.handle_engine_drained(now, "EF", 1000);
        server.handle_engine_drained(now, "ES", 1000);
        server
            .emit(now, &slow, "big", &"xxxxxxxxxxxxxxxxxxxx")
            .unwrap();
        assert_eq!(server.can_send(&slow), Ok(false));
        assert_eq!(server.can_send(&fast), Ok(true));
        commands(&mut server);
        let to = Broadcast::namespace("/").volatile();
        assert_eq!(server.broadcast(now, &to, "tick", &()).unwrap(), 1);
        assert_eq!(
            commands(&mut server),
            [("EF".to_owned(), r#"42["tick"]"#.to_owned())]
        );
        assert_eq!(server.emit_volatile(now, &pending, "tick", &()), Ok(false));
        assert_eq!(server.emit_volatile(now, &fast, "tick", &()), Ok(true));
    }

    #[test]
    fn slow_consumers_are_disconnected_after_the_grace_period() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            max_buffered_bytes: 100,
            max_buffered_bytes_hard: 1000,
            slow_consumer_grace: 5 * SECOND,
            ..ServerConfig::default()
        });
        let socket = join(&mut server, now, "E1", "40");
        server.handle_engine_drained(now, "E1", usize::MAX);
        let payload = "x".repeat(100);
        server.emit(now, &socket, "big", &payload).unwrap();
        assert_eq!(server.can_send(&socket), Ok(false));
        let over = texts(&mut server)[0].len();
        // Back under: writable again, the grace timer is gone.
        server.handle_engine_drained(now, "E1", over);
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Writable { socket: s }] if *s == socket
        ));
        assert_eq!(server.can_send(&socket), Ok(true));
        assert_eq!(server.poll_timeout(), None);
        // Over again and staying over.
        server.emit(now, &socket, "big", &payload).unwrap();
        commands(&mut server);
        assert_eq!(server.poll_timeout(), Some(now + 5 * SECOND));
        server.handle_timeout(now + 5 * SECOND);
        assert_eq!(texts(&mut server), ["CLOSE"]);
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Disconnect {
                reason: DisconnectReason::SlowConsumer,
                ..
            }]
        ));

        // Past the hard bound: at once.
        let socket = join(&mut server, now, "E2", "40");
        server.handle_engine_drained(now, "E2", usize::MAX);
        for _ in 0..9 {
            server.emit(now, &socket, "big", &payload).unwrap();
        }
        assert!(events(&mut server).is_empty());
        server.emit(now, &socket, "big", &payload).unwrap();
        assert_eq!(texts(&mut server).last().unwrap(), "CLOSE");
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Disconnect {
                reason: DisconnectReason::SlowConsumer,
                ..
            }]
        ));
        assert_eq!(server.footprint().timers, 0);
    }

    #[test]
    fn broadcast_with_acks_collects_every_answer() {
        let now = Instant::now();
        let mut server = server();
        let a = join(&mut server, now, "EA", "40");
        let b = join(&mut server, now, "EB", "40");
        let c = join(&mut server, now, "EC", "40");
        let to = Broadcast::namespace("/");
        let started = server
            .broadcast_with_ack(now, &to, "vote", &(), 5 * SECOND)
            .unwrap();
        assert_eq!(started.receivers, 3);
        let sent = commands(&mut server);
        assert_eq!(sent.len(), 3);
        let packet = &sent[0].1;
        assert!(
            sent.iter().all(|(_, t)| t == packet),
            "one id, one encoding"
        );
        let id = &packet[2..packet.find('[').unwrap()];
        server.handle_engine_message(now, "EB", text(&format!(r#"43{id}["b"]"#)));
        server.handle_engine_message(now, "EA", text(&format!(r#"43{id}["a"]"#)));
        assert!(events(&mut server).is_empty());
        server.handle_engine_message(now, "EC", text(&format!(r#"43{id}["c"]"#)));
        let events_now = events(&mut server);
        let [ServerEvent::BroadcastAck {
            id: done,
            outcome: BroadcastAckOutcome::Complete,
            responses,
        }] = events_now.as_slice()
        else {
            panic!("{events_now:?}")
        };
        assert_eq!(*done, started.id);
        let got: Vec<_> = responses
            .iter()
            .map(|(s, args)| (s.clone(), args_json(args)))
            .collect();
        assert_eq!(
            got,
            [
                (b.clone(), r#"["b"]"#.to_owned()),
                (a.clone(), r#"["a"]"#.to_owned()),
                (c.clone(), r#"["c"]"#.to_owned())
            ]
        );

        // Timeout with what arrived; a receiver that leaves is not awaited.
        let started = server
            .broadcast_with_ack(now, &to, "vote", &(), 5 * SECOND)
            .unwrap();
        let packet = commands(&mut server)[0].1.clone();
        let id = &packet[2..packet.find('[').unwrap()];
        server.handle_engine_message(now, "EA", text(&format!(r#"43{id}[1]"#)));
        server.handle_engine_closed(now, "EB", DisconnectReason::TransportClose);
        events(&mut server);
        server.handle_timeout(now + 5 * SECOND);
        let events_now = events(&mut server);
        let [ServerEvent::BroadcastAck {
            id: done,
            outcome: BroadcastAckOutcome::TimedOut,
            responses,
        }] = events_now.as_slice()
        else {
            panic!("{events_now:?}")
        };
        assert_eq!((*done, responses.len()), (started.id, 1));
        assert_eq!(server.footprint().pending_acks, 0);
        assert_eq!(server.footprint().broadcast_acks, 0);

        // Nobody to ask: complete at once.
        let started = server
            .broadcast_with_ack(
                now,
                &Broadcast::namespace("/").to("empty"),
                "v",
                &(),
                SECOND,
            )
            .unwrap();
        assert_eq!(started.receivers, 0);
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::BroadcastAck {
                outcome: BroadcastAckOutcome::Complete,
                ..
            }]
        ));
        // The last receiver leaving completes it.
        server
            .broadcast_with_ack(now, &Broadcast::namespace("/"), "v", &(), SECOND)
            .unwrap();
        server.handle_engine_closed(now, "EA", DisconnectReason::TransportClose);
        server.handle_engine_closed(now, "EC", DisconnectReason::TransportClose);
        let events_now = events(&mut server);
        assert!(
            matches!(
                events_now.last(),
                Some(ServerEvent::BroadcastAck {
                    outcome: BroadcastAckOutcome::Complete,
                    ..
                })
            ) || matches!(
                events_now.as_slice(),
                [
                    ..,
                    ServerEvent::BroadcastAck {
                        outcome: BroadcastAckOutcome::Complete,
                        ..
                    },
                    ServerEvent::Disconnect { .. }
                ]
            )
        );
        assert_eq!(server.footprint().timers, 0);
    }

    #[test]
    fn held_bytes_of_a_rejected_socket_are_released() {
        let now = Instant::now();
        let mut server = server();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.emit(now, &socket, "e", &"x".repeat(500)).unwrap();
        assert!(server.sessions["E1"].buffered > 500);
        server.reject::<()>(now, &socket, "no", None).unwrap();
        let sent = texts(&mut server);
        assert_eq!(server.sessions["E1"].buffered, sent[0].len() - 1);
    }

    #[test]
    fn socket_data_is_typed() {
        let now = Instant::now();
        let mut server = server();
        let socket = join(&mut server, now, "E1", "40");
        assert_eq!(server.data::<u32>(&socket), Ok(None));
        server.set_data(&socket, 5u32).unwrap();
        assert_eq!(server.data::<String>(&socket), Ok(None));
        *server.data_mut::<u32>(&socket).unwrap().unwrap() += 1;
        assert_eq!(server.data::<u32>(&socket), Ok(Some(&6)));
        assert_eq!(server.take_data::<String>(&socket), Ok(None));
        assert_eq!(server.take_data::<u32>(&socket), Ok(Some(6)));
        assert_eq!(server.take_data::<u32>(&socket), Ok(None));
    }

    #[test]
    fn recovery_replays_missed_events_in_order() {
        let now = Instant::now();
        let mut server = recovering();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.accept(now, &socket).unwrap();
        let reply = texts(&mut server).remove(0);
        let pid = pid_of(&reply);
        assert_eq!(reply, format!(r#"40{{"sid":"{socket}","pid":"{pid}"}}"#));
        server.join(&socket, "room").unwrap();
        server.set_data(&socket, "session data".to_owned()).unwrap();
        server.emit(now, &socket, "ev", &1).unwrap();
        assert_eq!(texts(&mut server), [r#"42["ev",1,"0"]"#]);
        // Ack-requesting events carry no offset (the client knows them by
        // their id); volatile ones do (a string last argument would be
        // taken for one) but are never replayed.
        server.emit_volatile(now, &socket, "v", &()).unwrap();
        server
            .emit_with_ack(now, &socket, "q", &(), SECOND)
            .unwrap();
        assert_eq!(texts(&mut server), [r#"42["v","1"]"#, r#"420["q"]"#]);

        server.handle_engine_closed(now, "E1", DisconnectReason::ForcedClose);
        let events_now = events(&mut server);
        assert!(matches!(
            events_now.last(),
            Some(ServerEvent::Disconnect {
                reason: DisconnectReason::ForcedClose,
                ..
            })
        ));
        // Emitted while it was away: to its room, to everyone, to another
        // room (not for it), then excluding its room (not for it).
        let other = join(&mut server, now, "E9", "40");
        commands(&mut server);
        let all = Broadcast::namespace("/");
        server
            .broadcast(now, &all.clone().to("room"), "a", &"x")
            .unwrap();
        server.broadcast(now, &all, "b", &(1, 2)).unwrap();
        server
            .broadcast(now, &all.clone().to(other.clone()), "c", &())
            .unwrap();
        server
            .broadcast(now, &all.clone().except("room"), "d", &())
            .unwrap();
        server.broadcast(now, &all, "e", &()).unwrap();
        commands(&mut server);

        let later = now + 30 * SECOND;
        server.handle_engine_open(later, eio("E2"));
        server.handle_engine_message(
            later,
            "E2",
            text(&format!(r#"40{{"pid":"{pid}","offset":"0"}}"#)),
        );
        let (restored, recovered) = connect_event(&mut server);
        assert!(recovered);
        assert_eq!(restored, socket);
        assert!(commands(&mut server).is_empty());
        server.accept(later, &restored).unwrap();
        assert_eq!(
            texts(&mut server),
            [
                // (1 went to the volatile event.)
                r#"42["a","x","2"]"#.to_owned(),
                r#"42["b",1,2,"3"]"#.to_owned(),
                r#"42["e","6"]"#.to_owned(),
                format!(r#"40{{"sid":"{socket}","pid":"{pid}"}}"#),
            ]
        );
        assert!(server.rooms(&socket).unwrap().contains(&Str::from("room")));
        assert_eq!(
            server.data::<String>(&socket).unwrap().map(String::as_str),
            Some("session data")
        );
        // The session is consumed: the same pid cannot be restored twice.
        assert_eq!(
            server.namespaces["/"]
                .recovery
                .as_ref()
                .unwrap()
                .sessions
                .len(),
            0
        );
    }

    #[test]
    fn recovery_is_refused_when_it_cannot_be_complete() {
        let now = Instant::now();
        let mut server = server_with(ServerConfig {
            recovery: Some(RecoveryConfig {
                max_packets: 2,
                ..RecoveryConfig::default()
            }),
            ..ServerConfig::default()
        });
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.accept(now, &socket).unwrap();
        let pid = pid_of(&texts(&mut server)[0]);
        server.emit(now, &socket, "e", &()).unwrap();
        server.handle_engine_closed(now, "E1", DisconnectReason::TransportError);
        events(&mut server);
        let keeper = join(&mut server, now, "E9", "40");
        for _ in 0..3 {
            server.emit(now, &keeper, "x", &()).unwrap();
        }
        events(&mut server);
        // Offset 0: packets 1..=3 missed, 1 was evicted.
        server.handle_engine_open(now, eio("E2"));
        server.handle_engine_message(
            now,
            "E2",
            text(&format!(r#"40{{"pid":"{pid}","offset":"0"}}"#)),
        );
        let (fresh, recovered) = connect_event(&mut server);
        assert!(!recovered);
        assert_ne!(fresh, socket);
        // Packets older than the duration are gone too, even before the
        // expiry timer runs.
        let mut server = recovering();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.accept(now, &socket).unwrap();
        let pid = pid_of(&texts(&mut server)[0]);
        server.emit(now, &socket, "old", &()).unwrap();
        server.emit(now, &socket, "old", &()).unwrap();
        let later = now + 119 * SECOND;
        server.handle_engine_closed(later, "E1", DisconnectReason::TransportClose);
        server.handle_engine_open(later, eio("E2"));
        server.handle_engine_message(
            now + 121 * SECOND,
            "E2",
            text(&format!(r#"40{{"pid":"{pid}","offset":"0"}}"#)),
        );
        let events_now = events(&mut server);
        assert!(matches!(
            events_now.as_slice(),
            [
                ServerEvent::Disconnect { .. },
                ServerEvent::Connect {
                    recovered: false,
                    ..
                }
            ]
        ));
        assert!(!server.sockets.contains_key(&socket));
        // A byte bound evicts too.
        let mut server = server_with(ServerConfig {
            recovery: Some(RecoveryConfig {
                max_bytes: 30,
                ..RecoveryConfig::default()
            }),
            ..ServerConfig::default()
        });
        let socket = join(&mut server, now, "E1", "40");
        for _ in 0..5 {
            server.emit(now, &socket, "e", &"0123456789").unwrap();
        }
        let recovery = server.namespaces["/"].recovery.as_ref().unwrap();
        assert_eq!(recovery.packets.len(), 1);
        assert!(recovery.stored_bytes <= 30);
        // Garbage offsets and unknown pids are not recovered either.
        for auth in [
            format!(r#"{{"pid":"{pid}","offset":"zz"}}"#),
            r#"{"pid":"unknown","offset":"1"}"#.to_owned(),
            r#"{"pid":5,"offset":"1"}"#.to_owned(),
        ] {
            let mut server = recovering();
            server.handle_engine_open(now, eio("E3"));
            server.handle_engine_message(now, "E3", text(&format!("40{auth}")));
            assert!(!connect_event(&mut server).1);
        }
    }

    #[test]
    fn volatile_events_carry_an_offset_but_are_not_replayed() {
        let now = Instant::now();
        let mut server = recovering();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.accept(now, &socket).unwrap();
        let pid = pid_of(&texts(&mut server)[0]);
        server.emit_volatile(now, &socket, "v", &("arg",)).unwrap();
        server
            .broadcast(now, &Broadcast::namespace("/").volatile(), "w", &())
            .unwrap();
        server.emit(now, &socket, "e", &()).unwrap();
        assert_eq!(
            texts(&mut server),
            [r#"42["v","arg","0"]"#, r#"42["w","1"]"#, r#"42["e","2"]"#]
        );
        // Recovery from the offset of a volatile event works, and replays
        // only what was stored.
        server.handle_engine_closed(now, "E1", DisconnectReason::TransportClose);
        events(&mut server);
        server
            .broadcast(now, &Broadcast::namespace("/").volatile(), "x", &())
            .unwrap();
        server.emit(now, &socket, "m", &()).unwrap_err();
        server
            .broadcast(now, &Broadcast::namespace("/").to(socket.clone()), "m", &())
            .unwrap();
        server.handle_engine_open(now, eio("E2"));
        server.handle_engine_message(
            now,
            "E2",
            text(&format!(r#"40{{"pid":"{pid}","offset":"1"}}"#)),
        );
        assert_eq!(connect_event(&mut server), (socket.clone(), true));
        server.accept(now, &socket).unwrap();
        let sent = texts(&mut server);
        assert_eq!(sent[..2], [r#"42["e","2"]"#, r#"42["m","4"]"#]);
    }

    #[test]
    fn a_replay_lost_with_its_connection_is_replayed_again() {
        // The client never received an event, so it has no offset; the
        // first recovery's replay dies with the connection before the
        // client got it: the next recovery replays the same packets.
        let now = Instant::now();
        let mut server = recovering();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.accept(now, &socket).unwrap();
        let pid = pid_of(&texts(&mut server)[0]);
        server.handle_engine_closed(now, "E1", DisconnectReason::TransportClose);
        events(&mut server);
        let to_it = Broadcast::namespace("/").to(socket.clone());
        server.broadcast(now, &to_it, "a", &()).unwrap();
        server.broadcast(now, &to_it, "b", &()).unwrap();
        for session in ["E2", "E3"] {
            server.handle_engine_open(now, Str::from(session));
            server.handle_engine_message(now, session, text(&format!(r#"40{{"pid":"{pid}"}}"#)));
            assert_eq!(connect_event(&mut server), (socket.clone(), true));
            server.accept(now, &socket).unwrap();
            assert_eq!(
                texts(&mut server)[..2],
                [r#"42["a","0"]"#, r#"42["b","1"]"#],
                "{session}"
            );
            server.handle_engine_closed(now, session, DisconnectReason::TransportClose);
            events(&mut server);
        }
    }

    #[test]
    fn recovery_without_offset_and_expiry() {
        let now = Instant::now();
        let mut server = recovering();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.accept(now, &socket).unwrap();
        let pid = pid_of(&texts(&mut server)[0]);
        server.handle_engine_closed(now, "E1", DisconnectReason::PingTimeout);
        events(&mut server);
        let keeper = join(&mut server, now, "E9", "40");
        server
            .broadcast(now, &Broadcast::namespace("/").except(keeper), "m", &())
            .unwrap();
        commands(&mut server);
        // The client got no event, so it sends no offset: everything since
        // its connection is replayed.
        server.handle_engine_open(now, eio("E2"));
        server.handle_engine_message(now, "E2", text(&format!(r#"40{{"pid":"{pid}"}}"#)));
        assert_eq!(connect_event(&mut server), (socket.clone(), true));
        server.accept(now, &socket).unwrap();
        assert_eq!(texts(&mut server)[0], r#"42["m","0"]"#);

        // After max_disconnection_duration the state is gone.
        server.handle_engine_closed(now, "E2", DisconnectReason::TransportClose);
        events(&mut server);
        server.handle_timeout(now + 120 * SECOND);
        server.handle_engine_open(now, eio("E3"));
        server.handle_engine_message(
            now + 121 * SECOND,
            "E3",
            text(&format!(r#"40{{"pid":"{pid}","offset":"0"}}"#)),
        );
        assert!(!connect_event(&mut server).1);
        // Explicit disconnects are not recoverable.
        let mut server = recovering();
        server.handle_engine_open(now, eio("E1"));
        server.handle_engine_message(now, "E1", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.accept(now, &socket).unwrap();
        let pid = pid_of(&texts(&mut server)[0]);
        server.handle_engine_message(now, "E1", text("41"));
        events(&mut server);
        server.handle_engine_message(now, "E1", text(&format!(r#"40{{"pid":"{pid}"}}"#)));
        assert!(!connect_event(&mut server).1);
    }

    #[test]
    fn recovery_takes_over_a_connection_the_server_thinks_alive() {
        let now = Instant::now();
        let mut server = recovering();
        server.handle_engine_open(now, eio("OLD"));
        server.handle_engine_message(now, "OLD", text("40"));
        let (socket, _) = connect_event(&mut server);
        server.accept(now, &socket).unwrap();
        let pid = pid_of(&texts(&mut server)[0]);
        server.join(&socket, "room").unwrap();
        server.emit(now, &socket, "got", &()).unwrap();
        // Sent to the old session, never received by the client.
        server.emit(now, &socket, "lost", &()).unwrap();
        server
            .emit_with_ack(now, &socket, "q", &(), SECOND)
            .unwrap();
        commands(&mut server);

        server.handle_engine_open(now, eio("NEW"));
        server.handle_engine_message(
            now,
            "NEW",
            text(&format!(r#"40{{"pid":"{pid}","offset":"0"}}"#)),
        );
        assert_eq!(commands(&mut server), [("OLD".to_owned(), "41".to_owned())]);
        let events_now = events(&mut server);
        assert!(matches!(
            events_now.as_slice(),
            [
                ServerEvent::Ack { outcome: AckOutcome::Disconnected, .. },
                ServerEvent::Disconnect { socket: gone, reason: DisconnectReason::TransportClose, .. },
                ServerEvent::Connect { socket: back, recovered: true, .. },
            ] if *gone == socket && *back == socket
        ));
        server.accept(now, &socket).unwrap();
        assert_eq!(
            commands(&mut server),
            [
                ("NEW".to_owned(), r#"42["lost","1"]"#.to_owned()),
                (
                    "NEW".to_owned(),
                    format!(r#"40{{"sid":"{socket}","pid":"{pid}"}}"#)
                ),
            ]
        );
        // The old session's end does not touch the restored socket.
        server.handle_engine_closed(now, "OLD", DisconnectReason::PingTimeout);
        assert!(events(&mut server).is_empty());
        assert_eq!(server.is_connected(&socket), Ok(true));
        assert!(server.rooms(&socket).unwrap().contains(&Str::from("room")));
        server.emit(now, &socket, "after", &()).unwrap();
        assert_eq!(
            commands(&mut server),
            [("NEW".to_owned(), r#"42["after","2"]"#.to_owned())]
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    #[derive(Debug, Clone)]
    enum Input {
        Open(u8),
        Message(u8, String),
        Closed(u8),
        Drained(u8, usize),
        Advance(u64),
        Broadcast(bool),
    }

    fn input() -> impl Strategy<Value = Input> {
        let packet = prop_oneof![
            Just("0".to_owned()),
            Just("0/a,".to_owned()),
            Just(r#"0{"pid":"x","offset":"0"}"#.to_owned()),
            Just("1".to_owned()),
            Just(r#"21["e",1]"#.to_owned()),
            Just(r#"30[1]"#.to_owned()),
            Just(r#"31[1]"#.to_owned()),
            "[0-6][/a-z,0-9\\[\\]{}\"]{0,12}",
        ];
        prop_oneof![
            (0..3u8).prop_map(Input::Open),
            (0..3u8, packet).prop_map(|(e, p)| Input::Message(e, p)),
            (0..3u8).prop_map(Input::Closed),
            (0..3u8, 0..200usize).prop_map(|(e, n)| Input::Drained(e, n)),
            (0..50_000u64).prop_map(Input::Advance),
            any::<bool>().prop_map(Input::Broadcast),
        ]
    }

    proptest! {
        /// Whatever the peers send, nothing panics, and once every session
        /// is gone and time has passed, nothing is left behind.
        #[test]
        fn arbitrary_inputs_leave_nothing_behind(inputs in proptest::collection::vec(input(), 0..40)) {
            let mut server: Server = Server::new(
                ServerConfig {
                    namespaces: vec![NamespaceMatcher::Any],
                    recovery: Some(RecoveryConfig::default()),
                    max_buffered_bytes: 100,
                    max_buffered_bytes_hard: 400,
                    ..ServerConfig::default()
                },
                JsonParser,
                Box::new(ChaCha8Rng::seed_from_u64(1)),
            );
            let names = [Str::from("A"), Str::from("B"), Str::from("C")];
            let mut now = Instant::now();
            for input in inputs {
                match input {
                    Input::Open(e) => server.handle_engine_open(now, names[e as usize].clone()),
                    Input::Message(e, p) => server.handle_engine_message(now, &names[e as usize], Message::Text(Str::from(p))),
                    Input::Closed(e) => server.handle_engine_closed(now, &names[e as usize], DisconnectReason::TransportClose),
                    Input::Drained(e, n) => server.handle_engine_drained(now, &names[e as usize], n),
                    Input::Advance(ms) => {
                        now += Duration::from_millis(ms);
                        server.handle_timeout(now);
                    }
                    Input::Broadcast(ack) => {
                        let to = Broadcast::namespace("/");
                        if ack {
                            server.broadcast_with_ack(now, &to, "b", &1, Duration::from_secs(5)).unwrap();
                        } else {
                            server.broadcast(now, &to, "b", &1).unwrap();
                        }
                    }
                }
                while let Some(event) = server.poll_event() {
                    match event {
                        ServerEvent::Connect { socket, .. } => {
                            server.accept(now, &socket).unwrap();
                            server.join(&socket, "room").unwrap();
                            server.emit_with_ack(now, &socket, "hi", &(), Duration::from_secs(3)).unwrap();
                        }
                        ServerEvent::Event { socket, ack: Some(id), .. } => {
                            server.ack(now, &socket, id, &()).unwrap();
                        }
                        _ => {}
                    }
                }
                while server.poll_command().is_some() {}
                if let Some(deadline) = server.poll_timeout() {
                    prop_assert!(deadline >= now);
                }
            }
            for name in &names {
                server.handle_engine_closed(now, name, DisconnectReason::ServerShuttingDown);
            }
            while server.poll_event().is_some() {}
            now += Duration::from_secs(3600);
            server.handle_timeout(now);
            prop_assert_eq!(
                server.footprint(),
                Footprint { sessions: 0, sockets: 0, namespaces: 0, timers: 0, broadcast_acks: 0, pending_acks: 0 }
            );
        }
    }
}
