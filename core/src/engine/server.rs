//! The Engine.IO v4 server endpoint: every HTTP connection and every session
//! of one server, as one deterministic state machine.
//!
//! # Driving it
//! The driver owns the TCP connections. It announces each accepted
//! connection with [`Server::handle_connection`], feeds what it reads with
//! [`Server::handle_read`] and the end of the stream with
//! [`Server::handle_eof`], and calls [`Server::handle_timeout`] when the
//! deadline from [`Server::poll_timeout`] passes. Every input takes `now`.
//!
//! After each input (and after each application call such as
//! [`Server::send`]), drain in this order:
//! 1. [`Server::poll_event`] until `None`: sessions opened, messages,
//!    sessions closed;
//! 2. [`Server::poll_ready`] until `None`: connections that have bytes to
//!    write or must be closed; for each, [`Server::poll_transmit`] until
//!    `None` (the driver may also stop pulling while its socket is not
//!    writable: bytes wait in the core, which bounds them);
//! 3. [`Server::poll_timeout`]: re-arm the one timer.
//!
//! A layer that counts what it gave [`Server::send`] for backpressure
//! drains [`Server::poll_drained`] after pulling output: it names each
//! session whose output was handed out since, so that accounting costs
//! O(1) per delivery instead of a scan of every session with bytes in
//! flight. Layers that do not need it may ignore it (it stays bounded).
//!
//! Before reading from a socket, a driver may ask [`Server::wants_read`]
//! (false while a response is pending and pipelined bytes are waiting).
//!
//! Requests already parsed by another HTTP stack enter through
//! [`Server::handle_request`]; their answers come out of
//! [`Server::poll_response`] when [`Server::poll_ready`] names them.
//!
//! # Behaviour
//! As engine.io 6.6: the error codes and bodies, long-polling with one
//! pending GET per session that drains the whole queue, the upgrade with
//! `2probe`/`3probe`/noop/`5`, the server-sent heartbeat (a pong restarts
//! the interval), and python-socketio's `cors_allowed_origins`. Deadlines
//! are kept in one binary heap with lazy invalidation, so a session's
//! heartbeat costs O(log n) and fires exactly on time.
//!
//! # Memory
//! Every connection's input is bounded by the HTTP and WebSocket limits
//! (`max_http_head`, `max_payload`); a connection without a request in
//! progress is closed after `idle_timeout`; what waits for the driver grows
//! only with what the application sends, which [`Server::buffered`] reports
//! per session.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use rand_core::RngCore;
use rustc_hash::FxHashMap;
use tracing::{debug, trace, warn};

use super::compress::{compress, negotiate, ContentCoding};
use super::config::{ServerConfig, Transport};
use super::cors::{add_preflight_headers, cors_headers};
use super::packet::{
    encode_payload, Handshake, Message, Packet, PayloadDecoder, DEFAULT_MAX_PAYLOAD_PACKETS,
};
use crate::http::{
    AfterResponse, Headers, Limits, Method, Request, Response, ServerConn, ServerEvent as HttpEvent,
};
use crate::memory::shrink_if_empty;
use crate::ws::{
    accept_upgrade, CloseCode, OpCode, WebSocket, WsConfig, WsError, WsMessage, MAX_HEADER_LEN,
};
use crate::Str;

/// Identifies one TCP (or TLS) connection the driver accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// An Engine.IO session id (20 URL-safe characters, from the generator).
pub type Sid = Str;

/// Why a session ended (engine.io's reason strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The transport's connection closed (`transport close`).
    TransportClose,
    /// The transport failed: a protocol error on HTTP or WebSocket, an
    /// aborted poll, a second concurrent poll (`transport error`).
    TransportError,
    /// No pong within `ping_timeout` (`ping timeout`).
    PingTimeout,
    /// The peer sent an undecodable packet (`parse error`).
    ParseError,
    /// The client sent a close packet (`transport close` on the wire of the
    /// reference: engine.io reports `forced close` on its side).
    ClientClose,
    /// The application closed the session (`forced close`).
    ForcedClose,
    /// The server is shutting down (`server shutting down`).
    ServerShutdown,
    /// The connection's unsent output went over
    /// [`ServerConfig::max_buffered_output_hard`] (`slow consumer`, a reason
    /// of this implementation: the reference has no output bound).
    SlowConsumer,
}

impl CloseReason {
    /// The reference implementation's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose | CloseReason::ClientClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::SlowConsumer => "slow consumer",
        }
    }
}

/// What the request that opened a session looked like, for the application.
#[derive(Debug, Clone)]
pub struct HandshakeInfo {
    /// The request (method, path and query, headers; no body).
    pub request: crate::http::Request,
    /// The peer's address, when the driver gave one.
    pub remote: Option<SocketAddr>,
    /// The transport the session started on.
    pub transport: Transport,
}

/// What happened, for the application.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    /// A session was created.
    Opened {
        /// The new session.
        sid: Sid,
        /// The request that opened it.
        info: Box<HandshakeInfo>,
    },
    /// A message arrived on a session.
    Message {
        /// The session.
        sid: Sid,
        /// The message.
        message: Message,
    },
    /// A session moved to WebSocket.
    Upgraded {
        /// The session.
        sid: Sid,
    },
    /// A session ended; no further event names it.
    Closed {
        /// The session.
        sid: Sid,
        /// Why it ended.
        reason: CloseReason,
    },
}

/// What to do on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Write these bytes.
    Data(Bytes),
    /// Close the connection once everything before has been written.
    Close,
}

/// The application asked for something impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No open session has this id.
    UnknownSession,
    /// The message is larger than `max_payload`.
    TooLarge,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            SendError::UnknownSession => f.write_str("unknown session"),
            SendError::TooLarge => f.write_str("message larger than max_payload"),
        }
    }
}
impl std::error::Error for SendError {}

/// How long a polling session the application closed waits for the next
/// GET to deliver its close packet (engine.io's `closeTimeout`).
const POLLING_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a WebSocket this side closed waits for the peer's close frame
/// before the connection is dropped.
const WS_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a timer entry belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Conn(ConnId),
    Session(Sid),
}

/// A long-polling GET waiting for packets, and what its answer carries.
struct Held {
    sid: Sid,
    /// CORS headers (and the cookie on the handshake).
    headers: Headers,
    coding: Option<ContentCoding>,
}

enum ConnKind {
    Http {
        codec: Box<ServerConn>,
    },
    /// One request parsed by another HTTP stack ([`Server::handle_request`]):
    /// its response waits here for [`Server::poll_response`].
    External {
        response: Option<Box<Response>>,
    },
    Ws {
        ws: Box<WebSocket>,
        role: WsRole,
    },
    /// Closed on our side: input is ignored, output drains, then `Close`.
    Done,
}

/// What a WebSocket connection is for.
#[derive(Clone)]
enum WsRole {
    /// The session's transport.
    Session(Sid),
    /// An upgrade of a polling session in progress.
    Probe(Sid),
    /// Closing: waits for the peer's close frame.
    Closing,
}

struct Conn {
    kind: ConnKind,
    /// A long-polling GET held on this connection.
    held: Option<Box<Held>>,
    remote: Option<SocketAddr>,
    out: VecDeque<Bytes>,
    out_len: usize,
    /// `Transmit::Close` follows the queued output.
    close_after: bool,
    in_ready: bool,
    /// Idle timeout (HTTP) or close timeout (WebSocket).
    deadline: Option<Instant>,
    /// The deadline of this connection's live timer entry.
    scheduled: Option<Instant>,
    /// Bytes received while a response was pending (pipelined requests),
    /// bounded so that a driver ignoring [`Server::wants_read`] cannot make
    /// the connection buffer without limit.
    pipelined: usize,
    /// The connection is in [`Server::drained`] (each is listed once).
    drain_listed: bool,
}

impl Conn {
    /// Bytes of output waiting in the core for this connection: queued for
    /// the driver, and framed by its WebSocket but not yet moved over.
    fn buffered(&self) -> usize {
        match &self.kind {
            ConnKind::Ws { ws, .. } => self.out_len + ws.pending_transmit_len(),
            _ => self.out_len,
        }
    }

    fn push_out(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.out_len += bytes.len();
            self.out.push_back(bytes);
        }
    }

    fn has_output(&self) -> bool {
        !self.out.is_empty()
            || self.close_after
            || matches!(self.kind, ConnKind::External { response: Some(_) })
    }

    /// Moves what the WebSocket produced to the output queue.
    fn pull_ws(&mut self) {
        if let ConnKind::Ws { ws, .. } = &mut self.kind {
            while let Some(bytes) = ws.poll_transmit() {
                if !bytes.is_empty() {
                    self.out_len += bytes.len();
                    self.out.push_back(bytes);
                }
            }
            if ws.is_closed() {
                self.close_after = true;
                self.deadline = None;
            }
        }
    }

    /// Frames an Engine.IO message on this WebSocket connection without
    /// going through [`WebSocket::send_text`], which takes one contiguous
    /// text and so would need the packet copied twice per receiver (its
    /// text form, then the frame). The frame is the one `send_text` or
    /// `send_binary` would write: unmasked, unfragmented, uncompressed.
    /// Returns false, doing nothing, when the connection cannot take a frame
    /// this way (not open, permessage-deflate in force, or frames of its own
    /// still waiting to be pulled): the caller then uses the WebSocket.
    fn push_ws_message(&mut self, message: &Message, cache: &mut FrameCache) -> bool {
        let ConnKind::Ws { ws, .. } = &self.kind else {
            return false;
        };
        if !ws.is_open() || ws.pending_transmit_len() > 0 {
            return false;
        }
        #[cfg(feature = "deflate")]
        if ws.deflate_params().is_some() {
            return false;
        }
        // A text message travels as the Engine.IO packet `4` + text; a
        // binary one as its raw bytes.
        let (opcode, prefix, payload): (_, &[u8], _) = match message {
            Message::Text(text) => (OpCode::Text, b"4", text.as_bytes()),
            Message::Binary(bytes) => (OpCode::Binary, b"", bytes),
        };
        let len = prefix.len() + payload.len();
        if let Some(frame) = cache.get(opcode, payload) {
            self.push_out(frame);
        } else if payload.len() >= SHARED_PAYLOAD_MIN {
            let mut head = BytesMut::with_capacity(MAX_HEADER_LEN + prefix.len());
            put_frame_header(&mut head, opcode, len);
            head.extend_from_slice(prefix);
            self.push_out(head.freeze());
            self.push_out(payload.clone());
        } else {
            let mut frame = BytesMut::with_capacity(MAX_HEADER_LEN + len);
            put_frame_header(&mut frame, opcode, len);
            frame.extend_from_slice(prefix);
            frame.extend_from_slice(payload);
            let frame = frame.freeze();
            *cache = FrameCache(Some((opcode, payload.clone(), frame.clone())));
            self.push_out(frame);
        }
        true
    }
}

/// The last short message framed by [`Conn::push_ws_message`] and its
/// frame: the receivers of a broadcast get the message one after the
/// other, and every one of them the same frame, so all but the first get a
/// clone of the first one's buffer instead of a buffer of their own.
///
/// A hit is recognised by the message's buffer address and length. That is
/// sound because the entry keeps a clone of the message: its memory can
/// neither be freed and reused for another message nor be mutated (a
/// `Bytes` region is immutable while a clone exists). Only short messages
/// are kept, and only until the driver starts pulling output
/// ([`Server::poll_ready`], [`Server::poll_transmit`]): the receivers of
/// one broadcast are all sent to before that, and a message kept alive any
/// longer would stop the encoder above from reusing its buffer.
#[derive(Default)]
struct FrameCache(Option<(OpCode, Bytes, Bytes)>);

impl FrameCache {
    fn get(&self, opcode: OpCode, payload: &Bytes) -> Option<Bytes> {
        match &self.0 {
            Some((cached_opcode, message, frame))
                if *cached_opcode == opcode
                    && message.as_ptr() == payload.as_ptr()
                    && message.len() == payload.len() =>
            {
                Some(frame.clone())
            }
            _ => None,
        }
    }
}

/// Messages at least this long go out on WebSocket as their frame header
/// followed by the message's own buffer, which every receiver of a
/// broadcast shares (no copy per receiver). Shorter ones are copied behind
/// their header into one buffer: cheaper than a second buffer that the
/// driver would join with the first before writing.
pub(crate) const SHARED_PAYLOAD_MIN: usize = 1024;

/// The header of a final, unmasked, uncompressed frame with a payload of
/// `len` bytes (RFC 6455 section 5.2): what a server writes.
fn put_frame_header(out: &mut BytesMut, opcode: OpCode, len: usize) {
    out.put_u8(0x80 | opcode as u8);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(len);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

struct Upgrade {
    conn: ConnId,
    /// The client sent `2probe`: polling requests get a noop from now on.
    probed: bool,
    deadline: Instant,
}

struct Session {
    transport: Transport,
    /// The application closed it over polling; it lingers until the close
    /// packet is delivered. `Closed` was already reported.
    closing: bool,
    /// The client asked for binary as base64 text (`b64` query parameter).
    base64: bool,
    /// Packets for the next long-polling GET.
    queue: VecDeque<Packet>,
    queued_bytes: usize,
    poll_conn: Option<ConnId>,
    ws_conn: Option<ConnId>,
    upgrade: Option<Upgrade>,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    close_deadline: Option<Instant>,
    scheduled: Option<Instant>,
    /// Bytes of the messages given to [`Server::send`] that
    /// [`Server::poll_drained`] has not yet reported handed out.
    unreported: usize,
    /// The session is in [`Server::drained`] on its own (not through its
    /// WebSocket connection): its polling queue was taken.
    drain_listed: bool,
}

impl Session {
    fn new(transport: Transport, now: Instant, config: &ServerConfig, base64: bool) -> Session {
        Session {
            transport,
            closing: false,
            base64,
            queue: VecDeque::new(),
            queued_bytes: 0,
            poll_conn: None,
            ws_conn: None,
            upgrade: None,
            next_ping: Some(now + config.ping_interval + config.ping_interval_grace),
            pong_deadline: None,
            close_deadline: None,
            scheduled: None,
            unreported: 0,
            drain_listed: false,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.next_ping,
            self.pong_deadline,
            self.upgrade.as_ref().map(|u| u.deadline),
            self.close_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Approximate bytes a packet takes on the wire, for [`Server::buffered`].
fn packet_size(packet: &Packet) -> usize {
    match packet {
        Packet::Message(Message::Text(text)) => text.len() + 1,
        Packet::Message(Message::Binary(bytes)) => bytes.len() + 1,
        _ => 1,
    }
}

/// Engine.IO's JSON error answer.
fn error_response(code: u8, message: Option<&str>, headers: Headers) -> Response {
    let message = match message {
        Some(message) if !message.is_empty() => message,
        _ => match code {
            0 => "Transport unknown",
            1 => "Session ID unknown",
            2 => "Bad handshake method",
            4 => "Forbidden",
            5 => "Unsupported protocol version",
            _ => "Bad request",
        },
    };
    let status = if code == 4 { 403 } else { 400 };
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".into());
    let mut response = Response::new(status);
    response.headers = headers;
    response.headers.append("Content-Type", "application/json");
    response.body = Bytes::from(format!("{{\"code\":{code},\"message\":{message}}}"));
    response
}

/// A status with no body and the CORS headers (engine.io's bare
/// `res.writeHead(400); res.end()`).
fn bare_response(status: u16, headers: Headers) -> Response {
    let mut response = Response::new(status);
    response.headers = headers;
    response
}

/// The answer to a refused WebSocket upgrade: engine.io's `abortUpgrade`.
fn upgrade_refusal(message: &str) -> Response {
    Response::new(400)
        .with_header("Content-type", "text/html")
        .with_body(Bytes::copy_from_slice(message.as_bytes()))
}

fn cookie_header(cookie: &super::config::CookieConfig, sid: &str) -> String {
    use super::config::SameSite;
    let mut value = format!("{}={}", cookie.name, sid);
    if let Some(max_age) = cookie.max_age {
        value.push_str(&format!("; Max-Age={}", max_age.as_secs()));
    }
    if let Some(domain) = &cookie.domain {
        value.push_str(&format!("; Domain={domain}"));
    }
    if let Some(path) = &cookie.path {
        value.push_str(&format!("; Path={path}"));
    }
    if cookie.http_only {
        value.push_str("; HttpOnly");
    }
    if cookie.secure {
        value.push_str("; Secure");
    }
    match cookie.same_site {
        Some(SameSite::Strict) => value.push_str("; SameSite=Strict"),
        Some(SameSite::Lax) => value.push_str("; SameSite=Lax"),
        Some(SameSite::None) => value.push_str("; SameSite=None"),
        None => {}
    }
    value
}

/// A long-polling body: the packets' text forms joined by the record
/// separator. A text that contains the separator cannot travel over
/// long-polling: that packet is dropped (with a warning) rather than
/// corrupting the payload.
fn encode_polling(packets: &[Packet]) -> BytesMut {
    let mut out = BytesMut::new();
    for packet in packets {
        let start = out.len();
        if start > 0 {
            out.extend_from_slice(&[super::packet::RECORD_SEPARATOR]);
        }
        if encode_payload([packet], &mut out).is_err() {
            warn!("dropping a text message containing 0x1E: long-polling cannot carry it");
            out.truncate(start);
        }
    }
    out
}

/// Where a session handed output out, for [`Server::poll_drained`]: its
/// WebSocket connection (flagged there, so that pulling output costs no
/// session lookup) or its polling queue (flagged on the session).
struct DrainMark {
    conn: Option<ConnId>,
    sid: Sid,
}

/// The Engine.IO server state machine.
///
/// Connections and sessions are kept in maps with FxHash rather than the
/// standard library's SipHash: it is several times cheaper per lookup, and
/// flooding a map with colliding keys (what SipHash's random keys defend
/// against) needs control over the inserted keys, while here every key is
/// generated by this server: connection ids count up, session ids are
/// random. Peers choose only keys that are looked up, which cannot slow
/// the map down.
pub struct Server {
    config: ServerConfig,
    limits: Limits,
    ws_config: WsConfig,
    rng: Box<dyn RngCore + Send>,
    sid_counter: u64,
    events: VecDeque<ServerEvent>,
    conns: FxHashMap<ConnId, Conn>,
    next_conn: u64,
    sessions: FxHashMap<Sid, Session>,
    ready: VecDeque<ConnId>,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    /// Entities whose deadlines may have changed since the last input.
    touched: Vec<TimerKey>,
    /// HTTP connections whose pipelined requests may now be parsed.
    reprocess: VecDeque<ConnId>,
    /// The latest `now` seen, for work done from `poll_transmit`.
    now: Option<Instant>,
    /// Sessions that handed output out since [`Server::poll_drained`] last
    /// named them, each listed once; entries of connections and sessions
    /// that ended are compacted away (see [`Server::list_drained`]).
    drained: VecDeque<DrainMark>,
    /// The frame of the last short message sent on WebSocket, for the next
    /// receiver of the same broadcast.
    frame_cache: FrameCache,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("connections", &self.conns.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with these options; session ids come from `rng` (seed it
    /// from the OS: session ids must not be guessable).
    pub fn new(config: ServerConfig, rng: Box<dyn RngCore + Send>) -> Server {
        let limits = Limits {
            max_head_size: config.max_http_head,
            max_body_size: config.max_payload,
            ..Limits::default()
        };
        let ws_config = WsConfig {
            max_frame_size: config.max_payload,
            max_message_size: config.max_payload,
        };
        Server {
            config,
            limits,
            ws_config,
            rng,
            sid_counter: 0,
            events: VecDeque::new(),
            conns: FxHashMap::default(),
            next_conn: 0,
            sessions: FxHashMap::default(),
            ready: VecDeque::new(),
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            reprocess: VecDeque::new(),
            now: None,
            drained: VecDeque::new(),
            frame_cache: FrameCache::default(),
        }
    }

    /// The options.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// A new connection was accepted.
    pub fn handle_connection(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        self.now = Some(now);
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let conn = Conn {
            kind: ConnKind::Http {
                codec: Box::new(ServerConn::new(self.limits.clone())),
            },
            held: None,
            remote,
            out: VecDeque::new(),
            out_len: 0,
            close_after: false,
            in_ready: false,
            deadline: Some(now + self.config.idle_timeout),
            scheduled: None,
            pipelined: 0,
            drain_listed: false,
        };
        self.conns.insert(id, conn);
        self.touched.push(TimerKey::Conn(id));
        self.finish(now);
        id
    }

    /// Bytes read from a connection. Deadlines already due at `now` are
    /// handled first, whether or not the driver's timer has fired yet: a
    /// request must not revive a session that is already dead.
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if self.poll_timeout().is_some_and(|at| at <= now) {
            self.handle_timeout(now);
        }
        self.now = Some(now);
        let too_much = self.limits.max_head_size + self.limits.max_body_size;
        match self
            .conns
            .get_mut(&conn)
            .map(|c| (&mut c.kind, &mut c.pipelined))
        {
            Some((ConnKind::Http { codec }, pipelined)) => {
                if codec.awaiting_response() {
                    *pipelined += data.len();
                    if *pipelined > too_much {
                        debug!(
                            conn = conn.0,
                            "too many bytes pipelined behind a pending request"
                        );
                        self.close_conn(now, conn);
                        self.finish(now);
                        return;
                    }
                }
                codec.feed(data);
                self.process_http(now, conn);
            }
            Some((ConnKind::Ws { ws, .. }, _)) => {
                ws.receive(data);
                self.process_ws(now, conn);
            }
            _ => {}
        }
        self.check_overflow(now, conn);
        self.finish(now);
    }

    /// Closes `id` and its session as a slow consumer when its unsent
    /// output is over the hard bound (what it queued is dropped). Only a
    /// driver that reads while [`Server::wants_read`] is false gets here
    /// from input: pongs and responses owed to a peer that does not read
    /// stay within the soft bound plus one read otherwise.
    fn check_overflow(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let buffered = conn.buffered();
        if buffered <= self.config.max_buffered_output_hard {
            return;
        }
        let sid = match &conn.kind {
            ConnKind::Ws {
                role: WsRole::Session(sid),
                ..
            } => Some(sid.clone()),
            _ => None,
        };
        warn!(
            conn = id.0,
            sid = sid.as_deref().unwrap_or(""),
            buffered,
            limit = self.config.max_buffered_output_hard,
            "output over max_buffered_output_hard: closing as slow consumer"
        );
        conn.out = VecDeque::new();
        conn.out_len = 0;
        if let Some(sid) = sid {
            self.close_session(now, &sid, CloseReason::SlowConsumer);
        }
        // The close frame, if the WebSocket queued one, goes first.
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.pull_ws();
        }
        self.close_conn(now, id);
    }

    /// Whether reading more from `conn` is useful now: false while a
    /// response is pending and a request's worth of pipelined bytes is
    /// already buffered, once the connection is closing, and while its
    /// unsent output is over [`ServerConfig::max_buffered_output`] (or
    /// [`ServerConfig::max_buffered_frames`]). A
    /// driver that respects it never hits the pipelining bound or
    /// [`ServerConfig::max_buffered_output_hard`] (which close the
    /// connection), and a peer that does not read cannot make the server
    /// buffer more than the soft bound plus what one read produces on that
    /// connection. A connection paused this way may be read again once its
    /// own output drains. (A long-polling session's queue does not pause
    /// the connections its POSTs arrive on: the GET that drains it may
    /// come on one of them; the Socket.IO layer's slow-consumer rule
    /// bounds it.) O(1).
    pub fn wants_read(&self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        if c.buffered() > self.config.max_buffered_output
            || c.out.len() > self.config.max_buffered_frames
        {
            return false;
        }
        match &c.kind {
            ConnKind::Http { codec } => codec.wants_read(),
            ConnKind::Ws { ws, .. } => !ws.is_closed(),
            _ => false,
        }
    }

    /// The session whose transport a connection is (WebSocket only: HTTP
    /// connections may carry requests of any session).
    pub fn session_of(&self, conn: ConnId) -> Option<&Sid> {
        let c = self.conns.get(&conn)?;
        match &c.kind {
            ConnKind::Ws {
                role: WsRole::Session(sid),
                ..
            } => Some(sid),
            _ => None,
        }
    }

    /// Bytes of output waiting in the core for a connection (queued for
    /// the driver, or framed and not yet queued), as
    /// [`ServerConfig::max_buffered_output`] counts them.
    pub fn conn_buffered(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(&conn).map(Conn::buffered)
    }

    /// A request already parsed by another HTTP stack (hyper, axum, ...),
    /// handled as if it had arrived alone on its own connection. The
    /// returned id names the exchange: once its response is ready (at once,
    /// or later for a long-polling GET that waits for packets) the id shows
    /// up in [`Server::poll_ready`] and [`Server::poll_response`] hands the
    /// response over. If the client goes away first, report it with
    /// [`Server::handle_eof`] (an aborted GET ends its session, as on a
    /// connection of our own). [`Server::poll_transmit`] yields nothing for
    /// such an id. WebSocket upgrades need the connection's bytes and cannot
    /// enter here: they are answered 400 (code 3).
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: Request,
        remote: Option<SocketAddr>,
    ) -> ConnId {
        self.now = Some(now);
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let conn = Conn {
            kind: ConnKind::External { response: None },
            held: None,
            remote,
            out: VecDeque::new(),
            out_len: 0,
            close_after: false,
            in_ready: false,
            deadline: None,
            scheduled: None,
            pipelined: 0,
            drain_listed: false,
        };
        self.conns.insert(id, conn);
        self.on_request(now, id, request);
        self.finish(now);
        id
    }

    /// The response to a request given to [`Server::handle_request`], once
    /// it is ready; the id is then forgotten.
    pub fn poll_response(&mut self, id: ConnId) -> Option<Response> {
        let conn = self.conns.get_mut(&id)?;
        let ConnKind::External { response } = &mut conn.kind else {
            return None;
        };
        let response = response.take()?;
        self.conns.remove(&id);
        Some(*response)
    }

    /// The peer closed the connection or it failed; the driver drops it.
    /// Complete requests and messages received before are still handled.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        self.now = Some(now);
        match self.conns.get_mut(&conn).map(|c| &mut c.kind) {
            Some(ConnKind::Http { codec, .. }) => {
                codec.feed_eof();
                self.process_http(now, conn);
            }
            Some(ConnKind::Ws { ws, .. }) => {
                ws.receive_eof();
                self.process_ws(now, conn);
            }
            _ => {}
        }
        self.drop_conn(now, conn);
        self.finish(now);
    }

    /// Time passed: the deadline from [`Server::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, key))) = self.timers.pop() else {
                break;
            };
            match &key {
                TimerKey::Conn(id) => {
                    let Some(conn) = self.conns.get_mut(id) else {
                        continue;
                    };
                    if conn.scheduled != Some(at) {
                        continue;
                    }
                    conn.scheduled = None;
                    if conn.deadline.is_some_and(|d| d <= now) {
                        conn.deadline = None;
                        debug!(conn = id.0, "connection timed out");
                        self.close_conn(now, *id);
                    }
                }
                TimerKey::Session(sid) => {
                    let Some(session) = self.sessions.get_mut(sid) else {
                        continue;
                    };
                    if session.scheduled != Some(at) {
                        continue;
                    }
                    session.scheduled = None;
                    self.session_timeout(now, sid);
                }
            }
            self.touched.push(key);
        }
        self.finish(now);
    }

    /// The next deadline, if any. It may be early (a timer whose work was
    /// cancelled): calling [`Server::handle_timeout`] then does nothing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        let event = self.events.pop_front();
        if event.is_none() {
            shrink_if_empty(&mut self.events);
        }
        event
    }

    /// A connection that has something to transmit. Each connection is
    /// reported once per batch of output: a driver that stops pulling
    /// [`Server::poll_transmit`] before `None` must remember the connection.
    pub fn poll_ready(&mut self) -> Option<ConnId> {
        self.frame_cache.0 = None;
        while let Some(id) = self.ready.pop_front() {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.in_ready = false;
                if conn.has_output() {
                    return Some(id);
                }
            }
        }
        None
    }

    /// The next thing to do on `conn`. After [`Transmit::Close`] the
    /// connection is forgotten.
    pub fn poll_transmit(&mut self, conn: ConnId) -> Option<Transmit> {
        self.frame_cache.0 = None;
        let c = self.conns.get_mut(&conn)?;
        if let Some(bytes) = c.out.pop_front() {
            c.out_len -= bytes.len();
            shrink_if_empty(&mut c.out);
            if !c.drain_listed {
                if let ConnKind::Ws {
                    role: WsRole::Session(sid),
                    ..
                } = &c.kind
                {
                    c.drain_listed = true;
                    let mark = DrainMark {
                        conn: Some(conn),
                        sid: sid.clone(),
                    };
                    self.list_drained(mark);
                }
            }
            return Some(Transmit::Data(bytes));
        }
        if c.close_after {
            if let Some(now) = self.now {
                self.drop_conn(now, conn);
                self.finish(now);
            } else {
                self.conns.remove(&conn);
            }
            return Some(Transmit::Close);
        }
        None
    }

    /// Queue a message on a session. Its length counts towards what
    /// [`Server::poll_drained`] reports once the session's output is
    /// handed out.
    pub fn send(&mut self, now: Instant, sid: &str, message: Message) -> Result<(), SendError> {
        self.now = Some(now);
        let Some(session) = self.sessions.get_mut(sid).filter(|s| !s.closing) else {
            return Err(SendError::UnknownSession);
        };
        let len = match &message {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
        };
        if len > self.config.max_payload {
            return Err(SendError::TooLarge);
        }
        session.unreported += len;
        match session.transport {
            // The WebSocket case of `send_packet`, with the session in hand
            // (one lookup less per receiver of a broadcast).
            Transport::WebSocket => {
                if let Some(id) = session.ws_conn {
                    let base64 = session.base64;
                    self.ws_send(id, &Packet::Message(message), base64);
                }
            }
            Transport::Polling => self.send_packet(now, sid, Packet::Message(message)),
        }
        self.finish(now);
        Ok(())
    }

    /// Close a session from the application's side (`forced close`): the
    /// messages already queued are delivered, then the close packet `1`.
    /// [`ServerEvent::Closed`] is reported at once.
    pub fn close(&mut self, now: Instant, sid: &str) -> Result<(), SendError> {
        self.now = Some(now);
        self.force_close(now, sid, CloseReason::ForcedClose)?;
        self.finish(now);
        Ok(())
    }

    /// Close every session (`server shutting down`), as [`Server::close`]
    /// does for one.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = Some(now);
        let sids: Vec<Sid> = self.sessions.keys().cloned().collect();
        for sid in sids {
            let _ = self.force_close(now, &sid, CloseReason::ServerShutdown);
        }
        self.finish(now);
    }

    /// The transport a session currently uses.
    pub fn transport(&self, sid: &str) -> Option<Transport> {
        self.sessions
            .get(sid)
            .filter(|s| !s.closing)
            .map(|s| s.transport)
    }

    /// How many bytes of a session's output wait in the core, not yet handed
    /// to the driver (for backpressure): packets queued for the next
    /// long-polling GET, or WebSocket frames not yet pulled with
    /// [`Server::poll_transmit`].
    pub fn buffered(&self, sid: &str) -> Option<usize> {
        let session = self.sessions.get(sid).filter(|s| !s.closing)?;
        Some(Self::session_buffered(&self.conns, session))
    }

    fn session_buffered(conns: &FxHashMap<ConnId, Conn>, session: &Session) -> usize {
        match session.transport {
            Transport::Polling => session.queued_bytes,
            Transport::WebSocket => {
                session
                    .ws_conn
                    .and_then(|id| conns.get(&id))
                    .map_or(0, |conn| {
                        let framed = match &conn.kind {
                            ConnKind::Ws { ws, .. } => ws.pending_transmit_len(),
                            _ => 0,
                        };
                        conn.out_len + framed
                    })
            }
        }
    }

    /// The next session whose output was handed out (pulled with
    /// [`Server::poll_transmit`], or taken by a long-polling GET), with how
    /// many bytes of the messages given to [`Server::send`] that accounts
    /// for: what was sent and not yet reported, less what the session still
    /// buffers ([`Server::buffered`]). Each session is named once however
    /// much it handed out since the last call, so draining this after
    /// pulling output costs O(1) per delivery. Sessions that ended are not
    /// named: their [`ServerEvent::Closed`] settles everything.
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
            let Some(session) = self.sessions.get_mut(&mark.sid).filter(|s| !s.closing) else {
                continue;
            };
            let held = Self::session_buffered(&self.conns, session);
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
    fn list_drained(&mut self, mark: DrainMark) {
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
    fn list_queue_drained(&mut self, sid: &str) {
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

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.values().filter(|s| !s.closing).count()
    }

    /// The number of connections not yet closed or dropped.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// What a connection's queues have allocated, in use or not: entries of
    /// its output queue and bytes of its WebSocket or HTTP buffers (to
    /// check that a burst's memory is given back).
    #[cfg(test)]
    pub(crate) fn conn_capacity(&self, conn: ConnId) -> Option<(usize, usize)> {
        let c = self.conns.get(&conn)?;
        let bytes = match &c.kind {
            ConnKind::Ws { ws, .. } => ws.buffer_capacity(),
            ConnKind::Http { codec } => codec.buffer_capacity(),
            _ => 0,
        };
        Some((c.out.capacity(), bytes))
    }

    /// The peer address the driver gave for a connection.
    pub fn remote(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns.get(&conn).and_then(|c| c.remote)
    }

    /// Panics if internal bookkeeping is inconsistent (for tests and the
    /// fuzzer).
    pub(crate) fn check_invariants(&self) {
        let live = self.conns.len() + self.sessions.len();
        assert!(self.timers.len() <= 2 * live + 64 + self.touched.len());
        for (sid, session) in &self.sessions {
            if let Some(id) = session.poll_conn {
                let held = self.conns.get(&id).and_then(|c| c.held.as_deref());
                assert!(
                    held.is_some_and(|h| h.sid == *sid),
                    "poll_conn without held GET"
                );
            }
            if let Some(id) = session.ws_conn {
                assert_eq!(session.transport, Transport::WebSocket);
                assert!(self.conns.contains_key(&id), "ws_conn dangling");
            }
            if session.transport == Transport::WebSocket {
                assert!(session.queue.is_empty());
            }
            if let Some(upgrade) = &session.upgrade {
                assert!(
                    self.conns.contains_key(&upgrade.conn),
                    "upgrade conn dangling"
                );
            }
            if !session.closing {
                assert!(
                    session.next_ping.is_some() != session.pong_deadline.is_some(),
                    "heartbeat state"
                );
                assert!(session.scheduled.is_some(), "session without timer");
            }
        }
        for conn in self.conns.values() {
            assert_eq!(conn.out_len, conn.out.iter().map(Bytes::len).sum::<usize>());
        }
        let listed = self.conns.values().filter(|c| c.drain_listed).count()
            + self.sessions.values().filter(|s| s.drain_listed).count();
        assert!(listed <= self.drained.len(), "drain flag without its entry");
        assert!(
            self.drained.len() <= 2 * live + 65,
            "drained list unbounded"
        );
    }

    // ----- plumbing -----

    /// Work left at the end of every input: pipelined requests that a
    /// response unblocked, then timers.
    fn finish(&mut self, now: Instant) {
        while let Some(id) = self.reprocess.pop_front() {
            self.process_http(now, id);
        }
        for key in std::mem::take(&mut self.touched) {
            self.reschedule(key);
        }
        // Entries made stale by deadlines that moved earlier pile up only
        // between two passes of their old deadline; rebuild when they
        // dominate, which keeps the heap linear in the live entities.
        if self.timers.len() > 2 * (self.conns.len() + self.sessions.len()) + 64 {
            let mut timers = BinaryHeap::new();
            for (id, conn) in &self.conns {
                if let Some(at) = conn.scheduled {
                    timers.push(Reverse((at, TimerKey::Conn(*id))));
                }
            }
            for (sid, session) in &self.sessions {
                if let Some(at) = session.scheduled {
                    timers.push(Reverse((at, TimerKey::Session(sid.clone()))));
                }
            }
            self.timers = timers;
        }
    }

    /// Makes sure the entity's earliest deadline has a live timer entry. A
    /// later deadline keeps the earlier entry, which fires, finds nothing
    /// due and re-arms: no entry is added per deadline change.
    fn reschedule(&mut self, key: TimerKey) {
        let (deadline, scheduled) = match &key {
            TimerKey::Conn(id) => match self.conns.get_mut(id) {
                Some(conn) => (conn.deadline, &mut conn.scheduled),
                None => return,
            },
            TimerKey::Session(sid) => match self.sessions.get_mut(sid) {
                Some(session) => (session.next_deadline(), &mut session.scheduled),
                None => return,
            },
        };
        if let Some(deadline) = deadline {
            if scheduled.map_or(true, |at| deadline < at) {
                *scheduled = Some(deadline);
                self.timers.push(Reverse((deadline, key)));
            }
        }
    }

    fn mark_ready(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id) {
            if !conn.in_ready && conn.has_output() {
                conn.in_ready = true;
                self.ready.push_back(id);
            }
        }
    }

    fn new_sid(&mut self) -> Sid {
        loop {
            let mut bytes = [0u8; 15];
            self.rng.fill_bytes(&mut bytes);
            if self.sid_counter > 0 {
                // Only reached when the generator repeated itself.
                for (b, c) in bytes.iter_mut().zip(self.sid_counter.to_le_bytes()) {
                    *b ^= c;
                }
            }
            let sid = Sid::from(URL_SAFE_NO_PAD.encode(bytes));
            if !self.sessions.contains_key(&sid) {
                return sid;
            }
            self.sid_counter += 1;
        }
    }

    fn handshake_packet(&self, sid: &Sid, transport: Transport) -> Packet {
        let upgrades = if transport == Transport::Polling
            && self.config.allow_upgrades
            && self.config.transports.contains(&Transport::WebSocket)
        {
            vec![Str::from_static("websocket")]
        } else {
            Vec::new()
        };
        Packet::Open(Box::new(Handshake {
            sid: sid.clone(),
            upgrades,
            ping_interval: self.config.ping_interval.as_millis() as u64,
            ping_timeout: self.config.ping_timeout.as_millis() as u64,
            max_payload: self.config.max_payload as u64,
        }))
    }

    fn path_matches(&self, request: &Request) -> bool {
        request.path().starts_with(self.config.path.as_str())
    }

    /// The `transport` query parameter, if it names an enabled transport.
    fn requested_transport(&self, request: &Request) -> Option<Transport> {
        let transport = match request.query_param("transport").as_deref() {
            Some("polling") => Transport::Polling,
            Some("websocket") => Transport::WebSocket,
            _ => return None,
        };
        self.config
            .transports
            .contains(&transport)
            .then_some(transport)
    }

    fn requested_sid(request: &Request) -> Option<Sid> {
        request
            .query_param("sid")
            .filter(|sid| !sid.is_empty())
            .map(|sid| Sid::from(sid.as_ref()))
    }

    fn open_info(
        &self,
        id: ConnId,
        mut request: Request,
        transport: Transport,
    ) -> Box<HandshakeInfo> {
        request.body = Bytes::new();
        Box::new(HandshakeInfo {
            request,
            remote: self.conns.get(&id).and_then(|c| c.remote),
            transport,
        })
    }

    // ----- HTTP -----

    fn process_http(&mut self, now: Instant, id: ConnId) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let ConnKind::Http { codec, .. } = &mut conn.kind else {
                return;
            };
            match codec.poll_request() {
                Ok(None) => return,
                Ok(Some(HttpEvent::Request(request))) => {
                    conn.deadline = None;
                    trace!(conn = id.0, method = %request.method, target = %request.target, "request");
                    self.on_request(now, id, request);
                }
                Ok(Some(HttpEvent::Upgrade { request, leftover })) => {
                    conn.deadline = None;
                    trace!(conn = id.0, target = %request.target, "upgrade request");
                    self.on_upgrade(now, id, request, leftover);
                }
                Ok(Some(HttpEvent::PeerClosed)) => {
                    self.drop_conn(now, id);
                    return;
                }
                Err(err) => {
                    debug!(conn = id.0, error = %err, "bad HTTP request");
                    let mut out = BytesMut::new();
                    let _ = codec.write_response(&err.to_response(), &mut out);
                    conn.push_out(out.freeze());
                    self.close_conn(now, id);
                    return;
                }
            }
        }
    }

    /// Writes a response on an HTTP connection.
    fn respond(&mut self, now: Instant, id: ConnId, response: Response) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let codec = match &mut conn.kind {
            ConnKind::Http { codec } => codec,
            ConnKind::External { response: slot } => {
                *slot = Some(Box::new(response));
                self.mark_ready(id);
                return;
            }
            _ => return,
        };
        let mut out = BytesMut::new();
        match codec.write_response(&response, &mut out) {
            Ok(AfterResponse::KeepAlive) => {
                conn.pipelined = 0;
                conn.deadline = Some(now + self.config.idle_timeout);
                self.touched.push(TimerKey::Conn(id));
            }
            Ok(AfterResponse::Close) => conn.close_after = true,
            Ok(AfterResponse::Upgraded) => {}
            Err(err) => {
                warn!(conn = id.0, error = %err, "response not written");
                conn.close_after = true;
            }
        }
        conn.push_out(out.freeze());
        self.mark_ready(id);
    }

    fn on_request(&mut self, now: Instant, id: ConnId, request: Request) {
        if !self.path_matches(&request) {
            debug!(target = %request.target, "request outside the engine path");
            let response = Response::new(404)
                .with_header("Content-Type", "text/plain; charset=UTF-8")
                .with_body("Not Found");
            return self.respond(now, id, response);
        }
        let Some(cors) = cors_headers(&self.config, &request) else {
            debug!("origin not allowed");
            return self.respond(now, id, error_response(3, None, Headers::new()));
        };
        if request.method == Method::Options {
            let mut response = bare_response(204, cors);
            add_preflight_headers(&request, &mut response.headers);
            return self.respond(now, id, response);
        }
        let Some(transport) = self.requested_transport(&request) else {
            debug!("unknown transport");
            return self.respond(now, id, error_response(0, None, cors));
        };
        if let Some(sid) = Self::requested_sid(&request) {
            let Some(session) = self.sessions.get(&sid) else {
                debug!(%sid, "unknown sid");
                return self.respond(now, id, error_response(1, None, cors));
            };
            if session.transport != transport || transport != Transport::Polling {
                debug!(%sid, "transport mismatch");
                return self.respond(now, id, error_response(3, None, cors));
            }
            match request.method {
                Method::Get => self.poll_get(now, id, sid, &request, cors),
                Method::Post => self.poll_post(now, id, sid, request, cors),
                _ => self.respond(now, id, bare_response(500, cors)),
            }
            return;
        }
        if request.method != Method::Get {
            return self.respond(now, id, error_response(2, None, cors));
        }
        if transport == Transport::WebSocket {
            debug!("websocket handshake without upgrade");
            return self.respond(now, id, error_response(3, None, cors));
        }
        if let Some(check) = &self.config.allow_request {
            if let Err(message) = check(&request) {
                return self.respond(now, id, error_response(4, Some(&message), cors));
            }
        }
        if request.query_param("EIO").as_deref() != Some("4") {
            debug!("unsupported protocol version");
            return self.respond(now, id, error_response(5, None, cors));
        }
        self.open_polling(now, id, request, cors);
    }

    fn open_polling(&mut self, now: Instant, id: ConnId, request: Request, mut headers: Headers) {
        let sid = self.new_sid();
        let base64 = request.query_param("b64").is_some();
        let mut session = Session::new(Transport::Polling, now, &self.config, base64);
        session
            .queue
            .push_back(self.handshake_packet(&sid, Transport::Polling));
        self.sessions.insert(sid.clone(), session);
        self.touched.push(TimerKey::Session(sid.clone()));
        debug!(%sid, "session opened (polling)");
        if let Some(cookie) = &self.config.cookie {
            headers.append("Set-Cookie", cookie_header(cookie, &sid));
        }
        self.poll_get(now, id, sid.clone(), &request, headers);
        let info = self.open_info(id, request, Transport::Polling);
        // Reported before anything the session's first request carried.
        self.events.push_back(ServerEvent::Opened { sid, info });
    }

    fn poll_get(
        &mut self,
        now: Instant,
        id: ConnId,
        sid: Sid,
        request: &Request,
        headers: Headers,
    ) {
        let Some(session) = self.sessions.get_mut(&sid) else {
            return;
        };
        if session.poll_conn.is_some() {
            debug!(%sid, "overlapping poll");
            self.respond(now, id, bare_response(400, headers));
            self.close_session(now, &sid, CloseReason::TransportError);
            return;
        }
        session.poll_conn = Some(id);
        let coding = if self.config.http_compression {
            negotiate(request.headers.get("accept-encoding"))
        } else {
            None
        };
        if let Some(Conn { held, deadline, .. }) = self.conns.get_mut(&id) {
            *held = Some(Box::new(Held {
                sid: sid.clone(),
                headers,
                coding,
            }));
            *deadline = None;
        }
        self.flush_poll(now, &sid);
    }

    /// Answers a session's pending GET if there is something to say.
    fn flush_poll(&mut self, now: Instant, sid: &str) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        let Some(id) = session.poll_conn else {
            return;
        };
        let taken = !session.queue.is_empty();
        let packets: Vec<Packet> = if taken {
            session.queued_bytes = 0;
            let packets = session.queue.drain(..).collect();
            shrink_if_empty(&mut session.queue);
            packets
        } else if session.upgrade.as_ref().is_some_and(|u| u.probed) {
            vec![Packet::Noop]
        } else {
            return;
        };
        session.poll_conn = None;
        if session.closing {
            // The close packet is in this payload: the session is done.
            self.sessions.remove(sid);
        } else if taken {
            self.list_queue_drained(sid);
        }
        self.answer_poll(now, id, &packets);
    }

    /// Sends `packets` as the answer to the GET held on `id`.
    fn answer_poll(&mut self, now: Instant, id: ConnId, packets: &[Packet]) {
        let Some(held) = self.conns.get_mut(&id).and_then(|c| c.held.take()) else {
            return;
        };
        let mut body = encode_polling(packets).freeze();
        let mut response = Response::new(200);
        response
            .headers
            .append("Content-Type", "text/plain; charset=UTF-8");
        if let Some(coding) = held.coding {
            if body.len() >= self.config.compression_threshold {
                body = Bytes::from(compress(coding, &body));
                response.headers.append("Content-Encoding", coding.as_str());
            }
        }
        response.headers.append("cache-control", "no-store");
        for (name, value) in held.headers.iter() {
            response
                .headers
                .append(Str::from(name), Bytes::copy_from_slice(value));
        }
        response.body = body;
        self.respond(now, id, response);
        self.reprocess.push_back(id);
    }

    fn poll_post(
        &mut self,
        now: Instant,
        id: ConnId,
        sid: Sid,
        request: Request,
        headers: Headers,
    ) {
        let binary = request
            .headers
            .get("content-type")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"application/octet-stream"));
        if binary {
            debug!(%sid, "binary POST body");
            self.respond(now, id, bare_response(400, headers));
            self.close_session(now, &sid, CloseReason::TransportError);
            return;
        }
        let closing = self.sessions.get(&sid).map_or(true, |s| s.closing);
        let mut parse_error = false;
        if !closing {
            match PayloadDecoder::new(request.body, DEFAULT_MAX_PAYLOAD_PACKETS) {
                Err(err) => {
                    debug!(%sid, error = %err, "undecodable POST body");
                    parse_error = true;
                }
                Ok(decoder) => {
                    for item in decoder {
                        match item {
                            Ok(packet) => {
                                self.on_packet(now, &sid, packet);
                                if !self.sessions.contains_key(&sid) {
                                    break;
                                }
                            }
                            Err(err) => {
                                debug!(%sid, error = %err, "undecodable packet in POST body");
                                parse_error = true;
                                break;
                            }
                        }
                    }
                }
            }
        }
        if parse_error {
            self.respond(now, id, bare_response(400, headers));
            self.close_session(now, &sid, CloseReason::ParseError);
            return;
        }
        let mut response = bare_response(200, Headers::new());
        response.headers.append("Content-Type", "text/html");
        response.headers.append("cache-control", "no-store");
        for (name, value) in headers.iter() {
            response
                .headers
                .append(Str::from(name), Bytes::copy_from_slice(value));
        }
        response.body = Bytes::from_static(b"ok");
        self.respond(now, id, response);
    }

    // ----- WebSocket -----

    fn refuse_upgrade(&mut self, now: Instant, id: ConnId, message: &str) {
        debug!(conn = id.0, message, "upgrade refused");
        self.respond(now, id, upgrade_refusal(message));
    }

    fn on_upgrade(&mut self, now: Instant, id: ConnId, request: Request, leftover: Bytes) {
        if !self.path_matches(&request) {
            return self.refuse_upgrade(now, id, "Bad request");
        }
        let Some(cors) = cors_headers(&self.config, &request) else {
            return self.refuse_upgrade(now, id, "Bad request");
        };
        match self.requested_transport(&request) {
            Some(Transport::WebSocket) => {}
            Some(Transport::Polling) => return self.refuse_upgrade(now, id, "Bad request"),
            None => return self.refuse_upgrade(now, id, "Transport unknown"),
        }
        let sid = Self::requested_sid(&request);
        match &sid {
            Some(sid) => {
                if !self.sessions.contains_key(sid) {
                    return self.refuse_upgrade(now, id, "Session ID unknown");
                }
            }
            None => {
                if let Some(check) = &self.config.allow_request {
                    if let Err(message) = check(&request) {
                        let message = if message.is_empty() {
                            "Forbidden".to_owned()
                        } else {
                            message
                        };
                        return self.refuse_upgrade(now, id, &message);
                    }
                }
                if request.query_param("EIO").as_deref() != Some("4") {
                    return self.refuse_upgrade(now, id, "Unsupported protocol version");
                }
            }
        }
        let accept = match accept_upgrade(request.headers.iter()) {
            Ok(accept) => accept,
            Err(err) => {
                debug!(error = %err, "bad websocket handshake");
                return self.refuse_upgrade(now, id, "Bad request");
            }
        };
        let mut response = Response::new(101);
        for (name, value) in accept.headers() {
            response.headers.append(name, value.to_owned());
        }
        #[cfg(feature = "deflate")]
        let deflate = self.negotiate_deflate(&request);
        #[cfg(feature = "deflate")]
        if let Some(params) = &deflate {
            response
                .headers
                .append("Sec-WebSocket-Extensions", params.response_header());
        }
        for (name, value) in cors.iter() {
            response
                .headers
                .append(Str::from(name), Bytes::copy_from_slice(value));
        }
        let new_sid = if sid.is_none() {
            let new_sid = self.new_sid();
            if let Some(cookie) = &self.config.cookie {
                response
                    .headers
                    .append("Set-Cookie", cookie_header(cookie, &new_sid));
            }
            Some(new_sid)
        } else {
            None
        };
        self.respond(now, id, response);
        #[cfg(feature = "deflate")]
        let deflate_config = self.deflate_config();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let ConnKind::Http { codec, .. } = &mut conn.kind else {
            return;
        };
        if !codec.is_upgraded() {
            return;
        }
        let rest = codec.take_buffered();
        let ws = WebSocket::server(self.ws_config);
        #[cfg(feature = "deflate")]
        let ws = match deflate {
            Some(params) => ws.with_deflate(params, &deflate_config),
            None => ws,
        };
        let mut ws = Box::new(ws);
        ws.receive(&leftover);
        ws.receive(&rest);
        conn.kind = ConnKind::Ws {
            ws,
            role: WsRole::Closing,
        };
        conn.deadline = None;
        if let Some(new_sid) = new_sid {
            let base64 = request.query_param("b64").is_some();
            let mut session = Session::new(Transport::WebSocket, now, &self.config, base64);
            session.ws_conn = Some(id);
            self.sessions.insert(new_sid.clone(), session);
            self.touched.push(TimerKey::Session(new_sid.clone()));
            self.set_role(id, WsRole::Session(new_sid.clone()));
            debug!(sid = %new_sid, "session opened (websocket)");
            let open = self.handshake_packet(&new_sid, Transport::WebSocket);
            self.ws_send(id, &open, false);
            let info = self.open_info(id, request, Transport::WebSocket);
            self.events
                .push_back(ServerEvent::Opened { sid: new_sid, info });
        } else if let Some(sid) = sid {
            let allow_upgrades = self.config.allow_upgrades;
            let Some(session) = self.sessions.get_mut(&sid) else {
                return;
            };
            if session.transport == Transport::WebSocket
                || session.upgrade.is_some()
                || session.closing
                || !allow_upgrades
            {
                debug!(%sid, "websocket for a session that cannot upgrade now: closed");
                self.ws_shutdown(now, id);
            } else {
                session.upgrade = Some(Upgrade {
                    conn: id,
                    probed: false,
                    deadline: now + self.config.upgrade_timeout,
                });
                self.touched.push(TimerKey::Session(sid.clone()));
                self.set_role(id, WsRole::Probe(sid));
            }
        }
        self.process_ws(now, id);
    }

    /// The permessage-deflate settings: engine.io's `perMessageDeflate`
    /// with its threshold taken from `compression_threshold`.
    #[cfg(feature = "deflate")]
    fn deflate_config(&self) -> crate::ws::DeflateConfig {
        crate::ws::DeflateConfig {
            threshold: self.config.compression_threshold,
            ..crate::ws::DeflateConfig::default()
        }
    }

    /// The permessage-deflate parameters to accept from an upgrade request,
    /// when `websocket_compression` is on and the client offers it.
    #[cfg(feature = "deflate")]
    fn negotiate_deflate(&self, request: &Request) -> Option<crate::ws::DeflateParams> {
        if !self.config.websocket_compression {
            return None;
        }
        crate::ws::negotiate_deflate(request.headers.iter(), &self.deflate_config())
    }

    fn set_role(&mut self, id: ConnId, new_role: WsRole) {
        if let Some(Conn {
            kind: ConnKind::Ws { role, .. },
            ..
        }) = self.conns.get_mut(&id)
        {
            *role = new_role;
        }
    }

    fn process_ws(&mut self, now: Instant, id: ConnId) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let ConnKind::Ws { ws, role } = &mut conn.kind else {
                break;
            };
            let Some(message) = ws.poll_message() else {
                break;
            };
            let role = role.clone();
            let packet = match message {
                Ok(WsMessage::Text(text)) => Packet::decode_text(&text).map_err(|err| {
                    debug!(conn = id.0, error = %err, "undecodable websocket packet");
                    CloseReason::ParseError
                }),
                Ok(WsMessage::Binary(bytes)) => Ok(Packet::decode_binary(bytes)),
                Ok(WsMessage::Close(_)) | Err(WsError::UnexpectedEof) => {
                    Err(CloseReason::TransportClose)
                }
                Err(err) => {
                    debug!(conn = id.0, error = %err, "websocket error");
                    Err(CloseReason::TransportError)
                }
            };
            match (role, packet) {
                (WsRole::Session(sid), Ok(packet)) => self.on_packet(now, &sid, packet),
                (WsRole::Session(sid), Err(reason)) => self.close_session(now, &sid, reason),
                (WsRole::Probe(sid), Ok(packet)) => self.on_probe_packet(now, id, &sid, packet),
                (WsRole::Probe(sid), Err(_)) => self.abandon_upgrade(now, &sid),
                (WsRole::Closing, _) => {}
            }
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.pull_ws();
        }
        self.mark_ready(id);
    }

    /// Frames one packet on a WebSocket connection.
    fn ws_send(&mut self, id: ConnId, packet: &Packet, base64: bool) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        // Messages (all of a broadcast) are framed around their shared
        // buffers where the connection allows; the rest (heartbeats, the
        // open packet, binary as base64) through the WebSocket.
        let framed = match packet {
            Packet::Message(message @ Message::Text(_)) => {
                conn.push_ws_message(message, &mut self.frame_cache)
            }
            Packet::Message(message @ Message::Binary(_)) if !base64 => {
                conn.push_ws_message(message, &mut self.frame_cache)
            }
            _ => false,
        };
        if !framed {
            let ConnKind::Ws { ws, .. } = &mut conn.kind else {
                return;
            };
            let result = match packet {
                Packet::Message(Message::Binary(bytes)) if !base64 => ws.send_binary(bytes),
                _ => {
                    let mut text = BytesMut::new();
                    packet.encode_text(&mut text);
                    match std::str::from_utf8(&text) {
                        Ok(text) => ws.send_text(text),
                        Err(_) => unreachable!("packet text forms are UTF-8"),
                    }
                }
            };
            if let Err(err) = result {
                debug!(conn = id.0, error = %err, "websocket send refused");
            }
            conn.pull_ws();
        }
        // `mark_ready` with the connection in hand (one lookup less per
        // receiver of a broadcast).
        if !conn.in_ready && conn.has_output() {
            conn.in_ready = true;
            self.ready.push_back(id);
        }
    }

    /// Starts closing a WebSocket connection.
    fn ws_shutdown(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if let ConnKind::Ws { ws, role } = &mut conn.kind {
            *role = WsRole::Closing;
            let _ = ws.close(CloseCode::NORMAL, "");
            conn.deadline = Some(now + WS_CLOSE_TIMEOUT);
            self.touched.push(TimerKey::Conn(id));
        }
        conn.pull_ws();
        self.mark_ready(id);
    }

    fn on_probe_packet(&mut self, now: Instant, id: ConnId, sid: &Sid, packet: Packet) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return self.ws_shutdown(now, id);
        };
        let Some(upgrade) = session.upgrade.as_mut().filter(|u| u.conn == id) else {
            return self.ws_shutdown(now, id);
        };
        match packet {
            Packet::Ping(Some(data)) if data == super::packet::PROBE => {
                upgrade.probed = true;
                self.ws_send(id, &Packet::pong_probe(), false);
                // Releases the pending GET so the client can pause polling.
                self.flush_poll(now, sid);
            }
            Packet::Upgrade => self.complete_upgrade(now, id, sid),
            _ => {
                debug!(%sid, "unexpected packet during upgrade");
                self.abandon_upgrade(now, sid);
            }
        }
    }

    fn complete_upgrade(&mut self, now: Instant, id: ConnId, sid: &Sid) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        session.upgrade = None;
        session.transport = Transport::WebSocket;
        session.ws_conn = Some(id);
        let poll = session.poll_conn.take();
        let queue = std::mem::take(&mut session.queue);
        session.queued_bytes = 0;
        let base64 = session.base64;
        // What the queue held now waits on the WebSocket: the buffered
        // amount changed, so let `poll_drained` look again.
        self.list_queue_drained(sid);
        self.touched.push(TimerKey::Session(sid.clone()));
        self.set_role(id, WsRole::Session(sid.clone()));
        if let Some(poll) = poll {
            self.answer_poll(now, poll, &[Packet::Close]);
        }
        for packet in &queue {
            self.ws_send(id, packet, base64);
        }
        debug!(%sid, "upgraded to websocket");
        self.events
            .push_back(ServerEvent::Upgraded { sid: sid.clone() });
    }

    fn abandon_upgrade(&mut self, now: Instant, sid: &str) {
        let Some(upgrade) = self.sessions.get_mut(sid).and_then(|s| s.upgrade.take()) else {
            return;
        };
        debug!(%sid, "upgrade abandoned");
        self.touched.push(TimerKey::Session(Sid::from(sid)));
        self.ws_shutdown(now, upgrade.conn);
    }

    // ----- sessions -----

    fn on_packet(&mut self, now: Instant, sid: &Sid, packet: Packet) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        if session.closing {
            return;
        }
        match packet {
            Packet::Pong(_) => {
                session.pong_deadline = None;
                session.next_ping =
                    Some(now + self.config.ping_interval + self.config.ping_interval_grace);
                self.touched.push(TimerKey::Session(sid.clone()));
            }
            Packet::Ping(_) => {
                debug!(%sid, "ping from the client: invalid heartbeat direction");
                self.close_session(now, sid, CloseReason::TransportError);
            }
            Packet::Message(message) => self.events.push_back(ServerEvent::Message {
                sid: sid.clone(),
                message,
            }),
            Packet::Close => self.close_session(now, sid, CloseReason::ClientClose),
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    fn send_packet(&mut self, now: Instant, sid: &str, packet: Packet) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        match session.transport {
            Transport::Polling => {
                session.queued_bytes += packet_size(&packet);
                session.queue.push_back(packet);
                self.flush_poll(now, sid);
            }
            Transport::WebSocket => {
                if let Some(id) = session.ws_conn {
                    let base64 = session.base64;
                    self.ws_send(id, &packet, base64);
                }
            }
        }
    }

    fn session_timeout(&mut self, now: Instant, sid: &Sid) {
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        if session.pong_deadline.is_some_and(|d| d <= now) {
            debug!(%sid, "ping timeout");
            return self.close_session(now, sid, CloseReason::PingTimeout);
        }
        if session.close_deadline.is_some_and(|d| d <= now) {
            debug!(%sid, "close packet never fetched");
            return self.close_session(now, sid, CloseReason::ForcedClose);
        }
        if session.upgrade.as_ref().is_some_and(|u| u.deadline <= now) {
            self.abandon_upgrade(now, sid);
        }
        let Some(session) = self.sessions.get_mut(sid) else {
            return;
        };
        if let Some(due) = session.next_ping.filter(|d| *d <= now) {
            session.next_ping = None;
            // Counted from when the ping was due, not from when a late
            // timer fired: peers expect the session dead exactly
            // `ping_interval + ping_timeout` after the last pong.
            session.pong_deadline = Some(due + self.config.ping_timeout);
            trace!(%sid, "ping");
            self.send_packet(now, sid, Packet::Ping(None));
        }
    }

    fn force_close(
        &mut self,
        now: Instant,
        sid: &str,
        reason: CloseReason,
    ) -> Result<(), SendError> {
        let Some(session) = self.sessions.get_mut(sid).filter(|s| !s.closing) else {
            return Err(SendError::UnknownSession);
        };
        let sid = Sid::from(sid);
        debug!(%sid, reason = reason.as_str(), "closing session");
        session.closing = true;
        session.next_ping = None;
        session.pong_deadline = None;
        self.events.push_back(ServerEvent::Closed {
            sid: sid.clone(),
            reason,
        });
        match session.transport {
            Transport::WebSocket => {
                let ws_conn = session.ws_conn;
                let base64 = session.base64;
                self.sessions.remove(&sid);
                if let Some(id) = ws_conn {
                    self.ws_send(id, &Packet::Close, base64);
                    self.ws_shutdown(now, id);
                }
            }
            Transport::Polling => {
                session.close_deadline = Some(now + POLLING_CLOSE_TIMEOUT);
                session.queue.push_back(Packet::Close);
                self.touched.push(TimerKey::Session(sid.clone()));
                self.abandon_upgrade(now, &sid);
                self.flush_poll(now, &sid);
            }
        }
        Ok(())
    }

    /// Ends a session: reports it (unless already reported) and releases its
    /// connections.
    fn close_session(&mut self, now: Instant, sid: &str, reason: CloseReason) {
        let Some(session) = self.sessions.remove(sid) else {
            return;
        };
        if !session.closing {
            debug!(%sid, reason = reason.as_str(), "session closed");
            self.events.push_back(ServerEvent::Closed {
                sid: Sid::from(sid),
                reason,
            });
        }
        if let Some(id) = session.poll_conn {
            let packet = if reason == CloseReason::ClientClose {
                Packet::Noop
            } else {
                Packet::Close
            };
            self.answer_poll(now, id, &[packet]);
        }
        if let Some(id) = session.ws_conn {
            self.ws_shutdown(now, id);
        }
        if let Some(upgrade) = session.upgrade {
            self.ws_shutdown(now, upgrade.conn);
        }
    }

    // ----- connections -----

    /// Closes a connection from our side once its output is written.
    fn close_conn(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let kind = std::mem::replace(&mut conn.kind, ConnKind::Done);
        let held = conn.held.take();
        conn.close_after = true;
        conn.deadline = None;
        self.mark_ready(id);
        self.detach(now, id, kind, held);
    }

    /// Forgets a connection (closed by the peer, or fully transmitted).
    fn drop_conn(&mut self, now: Instant, id: ConnId) {
        if let Some(conn) = self.conns.remove(&id) {
            self.detach(now, id, conn.kind, conn.held);
        }
    }

    /// What the loss of a connection means for its session.
    fn detach(&mut self, now: Instant, id: ConnId, kind: ConnKind, held: Option<Box<Held>>) {
        if let Some(held) = held {
            if let Some(session) = self.sessions.get_mut(&held.sid) {
                if session.poll_conn == Some(id) {
                    session.poll_conn = None;
                    debug!(sid = %held.sid, "poll connection closed prematurely");
                    self.close_session(now, &held.sid, CloseReason::TransportError);
                }
            }
        }
        match kind {
            ConnKind::Ws {
                role: WsRole::Session(sid),
                ..
            } => {
                if let Some(session) = self.sessions.get_mut(&sid) {
                    if session.ws_conn == Some(id) {
                        session.ws_conn = None;
                        self.close_session(now, &sid, CloseReason::TransportClose);
                    }
                }
            }
            ConnKind::Ws {
                role: WsRole::Probe(sid),
                ..
            } => {
                if let Some(session) = self.sessions.get_mut(&sid) {
                    if session.upgrade.as_ref().is_some_and(|u| u.conn == id) {
                        session.upgrade = None;
                        self.touched.push(TimerKey::Session(sid));
                    }
                }
            }
            _ => {}
        }
    }
}
