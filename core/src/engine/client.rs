//! The Engine.IO v4 client endpoint: one session with one server, over
//! long-polling, WebSocket, or polling upgraded to WebSocket.
//!
//! # Driving it
//! The client asks the driver for connections: [`Client::poll_action`]
//! yields [`ClientAction::Connect`] (open a TCP/TLS connection to the
//! server and call [`Client::handle_connected`] or, on failure,
//! [`Client::handle_eof`]), [`ClientAction::Data`] (write these bytes) and
//! [`ClientAction::Close`] (close that connection). Long-polling uses two
//! connections (one GET outstanding, POSTs on the other), an upgrade a
//! third. Bytes read go to [`Client::handle_read`].
//!
//! After each input or application call, drain in this order:
//! [`Client::poll_event`] until `None`, [`Client::poll_action`] until
//! `None`, then [`Client::poll_timeout`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand_core::RngCore;

use super::config::{ClientConfig, ClientTransports, Transport};
use super::packet::{
    Handshake, Message, Packet, PayloadDecoder, DEFAULT_MAX_PAYLOAD_PACKETS, RECORD_SEPARATOR,
};
use super::server::ConnId;
use crate::http::{self, ClientConn, HttpError, Limits, Method, Request, Response};
use crate::ws::{
    ClientHandshake, CloseCode, MaskKeySource, WebSocket, WsConfig, WsError, WsMessage,
};

/// Why the client's session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCloseReason {
    /// The application closed it (`io client disconnect` at the Socket.IO
    /// level).
    Closed,
    /// The server closed it (close packet) or the transport ended
    /// (`transport close`).
    TransportClose,
    /// An HTTP, WebSocket or protocol error (`transport error`).
    TransportError(String),
    /// No ping within `pingInterval + pingTimeout` (`ping timeout`).
    PingTimeout,
    /// The handshake did not complete within the connect timeout.
    ConnectTimeout,
}

/// What happened, for the application.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// The handshake completed.
    Opened(Box<Handshake>),
    /// A message from the server.
    Message(Message),
    /// The session moved to WebSocket.
    Upgraded,
    /// The session ended; nothing follows.
    Closed(ClientCloseReason),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Open a new connection to the server, known as this id from now on.
    Connect(ConnId),
    /// Write bytes on a connection.
    Data(ConnId, Bytes),
    /// Close a connection after writing what came before.
    Close(ConnId),
}

/// The application asked for something impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSendError {
    /// The session is closed.
    NotOpen,
    /// The message is larger than the server's `maxPayload`.
    TooLarge,
    /// [`ClientConfig::max_queued_messages`] messages are already waiting.
    QueueFull,
    /// A text message containing the record separator (0x1E), which
    /// long-polling cannot carry.
    RecordSeparator,
}

impl std::fmt::Display for ClientSendError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ClientSendError::NotOpen => f.write_str("session closed"),
            ClientSendError::QueueFull => f.write_str("too many messages queued"),
            ClientSendError::RecordSeparator => {
                f.write_str("text with a record separator cannot travel over long-polling")
            }
            ClientSendError::TooLarge => f.write_str("message larger than the server's maxPayload"),
        }
    }
}
impl std::error::Error for ClientSendError {}

/// The session's randomness, shared with the WebSocket connections that
/// draw their mask keys from it.
#[derive(Clone)]
struct SharedRng(Arc<Mutex<Box<dyn RngCore + Send>>>);

impl SharedRng {
    fn fill(&self, out: &mut [u8]) {
        // A panic while another holder had the lock cannot leave a random
        // generator in a state worth refusing.
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill_bytes(out);
    }
}

impl MaskKeySource for SharedRng {
    fn next_mask_key(&mut self) -> [u8; 4] {
        let mut key = [0; 4];
        self.fill(&mut key);
        key
    }
}

/// Where the session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the open packet.
    Opening,
    /// Handshake done.
    Open,
    /// Ended (a close event was queued).
    Closed,
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Long-polling: carries the GET requests.
    Get,
    /// Long-polling: carries the POST requests.
    Post,
    /// The WebSocket that carries the session.
    WebSocket,
    /// The WebSocket being probed for an upgrade.
    Probe,
}

enum LinkState {
    /// Asked for with `Connect`, not yet established.
    Connecting,
    /// HTTP requests and responses.
    Http(ClientConn),
    /// The WebSocket upgrade request is written; waiting for the 101.
    WsHandshake {
        http: ClientConn,
        handshake: ClientHandshake,
    },
    /// An open WebSocket.
    Ws(WebSocket),
}

struct Link {
    role: Role,
    state: LinkState,
}

/// How far the WebSocket probe of an upgrade got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeStage {
    /// Connecting or waiting for the 101.
    Handshaking,
    /// `2probe` sent, waiting for `3probe`.
    AwaitingPong,
    /// `3probe` received: waiting for the polling requests in flight to
    /// return before sending `5` and switching.
    Pausing,
}

/// The close packet's progress over polling.
#[derive(Debug, Clone, Copy)]
struct Closing {
    /// The close POST is written.
    sent: bool,
    /// Connections are closed at this time whatever happened.
    deadline: Instant,
}

/// One step of reading a connection's input.
enum Step {
    /// A complete HTTP response on a polling connection; `closed` when the
    /// connection cannot carry another request.
    Response {
        response: Box<Response>,
        closed: bool,
    },
    /// The server closed an idle keep-alive connection.
    IdleClosed,
    /// A WebSocket upgrade succeeded.
    WsOpened,
    /// A WebSocket connection failed before or during the upgrade.
    WsFailed(ClientCloseReason),
    /// A packet arrived on a WebSocket.
    WsPacket(Packet),
    /// A connection broke: the session (or the probe) ends for `reason`.
    Broken(ClientCloseReason),
}

/// The characters of the cache buster (`t=`), URL-safe.
const CACHE_BUSTER_ALPHABET: &[u8; 64] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// Bytes of HTTP head a server may send us.
const MAX_HTTP_HEAD: usize = 16 * 1024;

/// The Engine.IO client state machine.
///
/// Sans-IO: the driver opens the connections it is asked for, moves bytes,
/// and supplies the time. See the [module documentation](crate::engine::client).
pub struct Client {
    config: ClientConfig,
    rng: SharedRng,
    phase: Phase,
    transport: Transport,
    handshake: Option<Box<Handshake>>,
    links: BTreeMap<ConnId, Link>,
    next_conn: u64,
    get_conn: Option<ConnId>,
    post_conn: Option<ConnId>,
    ws_conn: Option<ConnId>,
    probe_conn: Option<ConnId>,
    probe: Option<ProbeStage>,
    get_in_flight: bool,
    post_in_flight: bool,
    /// Messages waiting for the transport, in order.
    queue: VecDeque<Message>,
    /// A ping arrived and its pong is not sent yet (one pong answers any
    /// number of pings that arrive meanwhile: a server cannot grow a queue
    /// of pongs by pinging faster than we can write).
    pong_due: bool,
    /// After `close()` over polling: the close packet still has to go out
    /// (the connections stay until the server acknowledged it).
    closing: Option<Closing>,
    events: VecDeque<ClientEvent>,
    actions: VecDeque<ClientAction>,
    connect_deadline: Option<Instant>,
    ping_deadline: Option<Instant>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("phase", &self.phase)
            .field("transport", &self.transport)
            .field("sid", &self.sid())
            .field("connections", &self.links.len())
            .field("probe", &self.probe)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Start a session: the first action asks for a connection. The cache
    /// buster, WebSocket keys and mask keys come from `rng` (seed it from
    /// the OS: RFC 6455 wants unpredictable mask keys).
    pub fn new(config: ClientConfig, rng: Box<dyn RngCore + Send>, now: Instant) -> Client {
        let transport = match config.transports {
            ClientTransports::WebSocket => Transport::WebSocket,
            ClientTransports::Polling | ClientTransports::Upgrade => Transport::Polling,
        };
        let mut client = Client {
            connect_deadline: now.checked_add(config.connect_timeout),
            config,
            rng: SharedRng(Arc::new(Mutex::new(rng))),
            phase: Phase::Opening,
            transport,
            handshake: None,
            links: BTreeMap::new(),
            next_conn: 0,
            get_conn: None,
            post_conn: None,
            ws_conn: None,
            probe_conn: None,
            probe: None,
            get_in_flight: false,
            post_in_flight: false,
            queue: VecDeque::new(),
            pong_due: false,
            closing: None,
            events: VecDeque::new(),
            actions: VecDeque::new(),
            ping_deadline: None,
        };
        match transport {
            Transport::Polling => client.get_conn = Some(client.open_link(Role::Get)),
            Transport::WebSocket => client.ws_conn = Some(client.open_link(Role::WebSocket)),
        }
        client
    }

    /// A connection asked for with [`ClientAction::Connect`] is established.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        let limits = self.limits();
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        if !matches!(link.state, LinkState::Connecting) {
            return;
        }
        match link.role {
            Role::Get | Role::Post => link.state = LinkState::Http(ClientConn::new(limits)),
            Role::WebSocket | Role::Probe => self.start_ws_handshake(conn),
        }
        self.pump(now);
    }

    /// Bytes read from a connection.
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if self.phase == Phase::Closed && self.closing.is_none() {
            return;
        }
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        match &mut link.state {
            // Bytes before the connection is reported established: the
            // driver broke its contract; nothing sensible to do with them.
            LinkState::Connecting => return,
            LinkState::Http(http) => http.feed(data),
            LinkState::WsHandshake { http, .. } => http.feed(data),
            LinkState::Ws(ws) => ws.receive(data),
        }
        self.process(now, conn);
        self.pump(now);
    }

    /// A connection ended or could not be established.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        if self.phase == Phase::Closed && self.closing.is_none() {
            return;
        }
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        match &mut link.state {
            LinkState::Connecting => {
                let role = link.role;
                self.links.remove(&conn);
                self.forget_slot(conn);
                if role == Role::Probe {
                    self.probe_failed();
                } else {
                    self.fail(ClientCloseReason::TransportError(
                        "could not connect to the server".into(),
                    ));
                }
            }
            LinkState::Http(http) => http.feed_eof(),
            LinkState::WsHandshake { http, .. } => http.feed_eof(),
            LinkState::Ws(ws) => ws.receive_eof(),
        }
        self.process(now, conn);
        // Whatever the input said, the connection is gone.
        if self.links.contains_key(&conn) {
            let role = self.links[&conn].role;
            self.drop_link(conn);
            match role {
                Role::Probe => self.probe_failed(),
                Role::WebSocket => self.fail(ClientCloseReason::TransportClose),
                _ => {}
            }
        }
        self.pump(now);
    }

    /// The deadline from [`Client::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closing.is_some_and(|closing| closing.deadline <= now) {
            // The server did not acknowledge the close packet in time.
            self.close_all_links();
            return;
        }
        match self.phase {
            Phase::Opening if self.connect_deadline.is_some_and(|d| d <= now) => {
                self.fail(ClientCloseReason::ConnectTimeout)
            }
            Phase::Open if self.ping_deadline.is_some_and(|d| d <= now) => {
                self.fail(ClientCloseReason::PingTimeout)
            }
            _ => {}
        }
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Opening => self.connect_deadline,
            Phase::Open => self.ping_deadline,
            Phase::Closed => self.closing.map(|closing| closing.deadline),
        }
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<ClientAction> {
        self.actions.pop_front()
    }

    /// Send a message. Messages are queued until the session is open and
    /// while the transport is busy; they go out in order.
    pub fn send(&mut self, now: Instant, message: Message) -> Result<(), ClientSendError> {
        if self.phase == Phase::Closed {
            return Err(ClientSendError::NotOpen);
        }
        if self.queue.len() >= self.config.max_queued_messages {
            return Err(ClientSendError::QueueFull);
        }
        if self.transport == Transport::Polling {
            if let Message::Text(text) = &message {
                if text.as_bytes().contains(&RECORD_SEPARATOR) {
                    return Err(ClientSendError::RecordSeparator);
                }
            }
        }
        if let Some(max) = self.server_max_payload() {
            if encoded_len(&message, self.transport) > max {
                return Err(ClientSendError::TooLarge);
            }
        }
        self.queue.push_back(message);
        self.pump(now);
        Ok(())
    }

    /// Close the session: a close packet (over polling a POST `1`, over
    /// WebSocket a `1` frame and a close frame), then the connections.
    /// Queued messages that fit go out before the close packet. Reports
    /// [`ClientEvent::Closed`] with [`ClientCloseReason::Closed`].
    pub fn close(&mut self, now: Instant) {
        if self.phase != Phase::Open {
            self.fail(ClientCloseReason::Closed);
            return;
        }
        match self.transport {
            Transport::WebSocket => {
                self.flush_ws();
                if let Some(conn) = self.ws_conn {
                    if let Some(LinkState::Ws(ws)) = self.links.get_mut(&conn).map(|l| &mut l.state)
                    {
                        let _ = ws.send_text("1");
                        let _ = ws.close(CloseCode::NORMAL, "");
                    }
                }
                self.fail(ClientCloseReason::Closed);
            }
            Transport::Polling => {
                // The close packet goes in a POST after the one in flight
                // (with what is still queued); the polling connections stay
                // until the server acknowledged it, so that it sees the
                // close before a GET going away.
                if let Some(probe) = self.probe_conn {
                    self.drop_link(probe);
                }
                let linger = self
                    .handshake
                    .as_ref()
                    .map_or(Duration::ZERO, |h| Duration::from_millis(h.ping_timeout));
                let queue = std::mem::take(&mut self.queue);
                self.finish(ClientCloseReason::Closed);
                self.queue = queue;
                self.closing = Some(Closing {
                    sent: false,
                    deadline: now.checked_add(linger).unwrap_or(now),
                });
                self.advance_close();
            }
        }
    }

    /// Sends the close POST once the POST connection is free.
    fn advance_close(&mut self) {
        if !matches!(self.closing, Some(Closing { sent: false, .. })) || self.post_in_flight {
            return;
        }
        let Some(conn) = self.http_link(Role::Post) else {
            return;
        };
        let body = self.take_batch(true);
        let request = self.request(Method::Post, Transport::Polling, body);
        match self.write_http(conn, &request) {
            Ok(()) => {
                self.post_in_flight = true;
                if let Some(closing) = &mut self.closing {
                    closing.sent = true;
                }
            }
            Err(_) => self.close_all_links(),
        }
    }

    /// The transport in use; `None` once closed.
    pub fn transport(&self) -> Option<Transport> {
        (self.phase != Phase::Closed).then_some(self.transport)
    }

    /// The session id once open.
    pub fn sid(&self) -> Option<&str> {
        self.handshake.as_ref().map(|h| &*h.sid)
    }

    /// The server's handshake once open.
    pub fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_deref()
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Messages waiting to be sent.
    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }

    // ----- connections -----

    fn limits(&self) -> Limits {
        let max = self.config.max_payload;
        Limits {
            max_head_size: MAX_HTTP_HEAD,
            max_headers: 100,
            // A binary message travels in base64 over polling: 4/3 the size.
            max_body_size: max.saturating_add(max / 3).saturating_add(64),
        }
    }

    fn ws_config(&self) -> WsConfig {
        // One packet per message, plus its type digit.
        let max = self.config.max_payload.saturating_add(1);
        WsConfig {
            max_frame_size: max,
            max_message_size: max,
        }
    }

    /// The permessage-deflate settings (engine.io-client's
    /// `perMessageDeflate`).
    #[cfg(feature = "deflate")]
    fn deflate_config(&self) -> crate::ws::DeflateConfig {
        crate::ws::DeflateConfig {
            threshold: self.config.websocket_compression_threshold,
            ..crate::ws::DeflateConfig::default()
        }
    }

    fn server_max_payload(&self) -> Option<usize> {
        let max = self.handshake.as_ref()?.max_payload;
        // 0 means no limit, as the reference client reads it.
        (max > 0).then(|| usize::try_from(max).unwrap_or(usize::MAX))
    }

    fn open_link(&mut self, role: Role) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.links.insert(
            conn,
            Link {
                role,
                state: LinkState::Connecting,
            },
        );
        self.actions.push_back(ClientAction::Connect(conn));
        conn
    }

    /// Clears whichever slot names `conn`.
    fn forget_slot(&mut self, conn: ConnId) {
        if self.get_conn == Some(conn) {
            self.get_conn = None;
            self.get_in_flight = false;
        }
        if self.post_conn == Some(conn) {
            self.post_conn = None;
            self.post_in_flight = false;
        }
        if self.ws_conn == Some(conn) {
            self.ws_conn = None;
        }
        if self.probe_conn == Some(conn) {
            self.probe_conn = None;
        }
    }

    /// Closes one connection (after writing what its WebSocket still has).
    fn drop_link(&mut self, conn: ConnId) {
        if let Some(mut link) = self.links.remove(&conn) {
            if let LinkState::Ws(ws) = &mut link.state {
                if let Some(bytes) = ws.poll_transmit() {
                    self.actions.push_back(ClientAction::Data(conn, bytes));
                }
            }
            self.actions.push_back(ClientAction::Close(conn));
        }
        self.forget_slot(conn);
    }

    fn close_all_links(&mut self) {
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            self.drop_link(conn);
        }
        self.closing = None;
        self.queue = VecDeque::new();
    }

    /// Ends the session for `reason`, keeping the connections (see
    /// [`Client::fail`]).
    fn finish(&mut self, reason: ClientCloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.connect_deadline = None;
        self.ping_deadline = None;
        self.queue = VecDeque::new();
        self.pong_due = false;
        self.probe = None;
        self.events.push_back(ClientEvent::Closed(reason));
    }

    /// Ends the session for `reason` and closes every connection.
    fn fail(&mut self, reason: ClientCloseReason) {
        self.finish(reason);
        self.close_all_links();
    }

    /// The request target and headers for a request on `transport`.
    fn request(&self, method: Method, transport: Transport, body: Bytes) -> Request {
        let mut target = String::with_capacity(self.config.path.len() + 64);
        target.push_str(&self.config.path);
        target.push_str("?EIO=4&transport=");
        target.push_str(transport.as_str());
        for (name, value) in &self.config.query {
            target.push('&');
            target.push_str(name);
            target.push('=');
            target.push_str(value);
        }
        if let Some(handshake) = &self.handshake {
            target.push_str("&sid=");
            // The server generated it; escape anything that would break the
            // request line rather than trust it.
            for byte in handshake.sid.bytes() {
                if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                    target.push(char::from(byte));
                } else {
                    target.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        if transport == Transport::Polling {
            // Defeats caches between us and the server, as the reference
            // client's timestamp does.
            let mut random = [0u8; 8];
            self.rng.fill(&mut random);
            target.push_str("&t=");
            target.extend(
                random
                    .iter()
                    .map(|b| char::from(CACHE_BUSTER_ALPHABET[usize::from(b & 63)])),
            );
        }
        let mut request =
            Request::new(method, target).with_header("Host", self.config.host.clone());
        for (name, value) in &self.config.headers {
            request.headers.append(name.clone(), value.clone());
        }
        if request.method == Method::Post {
            request = request
                .with_header("Content-Type", "text/plain;charset=UTF-8")
                .with_body(body);
        }
        request
    }

    /// Writes `request` on an HTTP connection.
    fn write_http(&mut self, conn: ConnId, request: &Request) -> Result<(), String> {
        let Some(LinkState::Http(http)) = self.links.get_mut(&conn).map(|l| &mut l.state) else {
            return Err("connection not ready".into());
        };
        let mut out = BytesMut::new();
        http.write_request(request, &mut out)
            .map_err(|err| format!("cannot write the request: {err}"))?;
        self.actions
            .push_back(ClientAction::Data(conn, out.freeze()));
        Ok(())
    }

    fn start_ws_handshake(&mut self, conn: ConnId) {
        let Some(link) = self.links.get(&conn) else {
            return;
        };
        let role = link.role;
        let mut nonce = [0u8; 16];
        self.rng.fill(&mut nonce);
        let handshake = ClientHandshake::new(nonce);
        #[cfg(feature = "deflate")]
        let handshake = match self.config.websocket_compression {
            true => handshake.with_deflate(self.deflate_config()),
            false => handshake,
        };
        let mut request = self.request(Method::Get, Transport::WebSocket, Bytes::new());
        for (name, value) in handshake.request_headers() {
            request.headers.append(name, value.to_owned());
        }
        if let Some(offer) = handshake.extension_offer() {
            request.headers.append("Sec-WebSocket-Extensions", offer);
        }
        let mut http = ClientConn::new(self.limits());
        let mut out = BytesMut::new();
        match http.write_request(&request, &mut out) {
            Ok(()) => {
                self.actions
                    .push_back(ClientAction::Data(conn, out.freeze()));
                if let Some(link) = self.links.get_mut(&conn) {
                    link.state = LinkState::WsHandshake { http, handshake };
                }
            }
            Err(err) => {
                let reason =
                    ClientCloseReason::TransportError(format!("cannot write the request: {err}"));
                self.drop_link(conn);
                self.link_failed(role, reason);
            }
        }
    }

    /// A connection of `role` failed for `reason`: a probe failure keeps the
    /// session on polling, anything else ends it.
    fn link_failed(&mut self, role: Role, reason: ClientCloseReason) {
        match role {
            Role::Probe => self.probe_failed(),
            Role::Get | Role::Post | Role::WebSocket => self.fail(reason),
        }
    }

    // ----- input -----

    /// Handles everything buffered on `conn`.
    fn process(&mut self, now: Instant, conn: ConnId) {
        loop {
            if self.phase == Phase::Closed && self.closing.is_none() {
                return;
            }
            let ws_config = self.ws_config();
            #[cfg(feature = "deflate")]
            let deflate_config = self.deflate_config();
            let Some(link) = self.links.get_mut(&conn) else {
                return;
            };
            let role = link.role;
            let step = match &mut link.state {
                LinkState::Connecting => return,
                LinkState::Http(http) => match http.poll_response() {
                    Ok(None) => return,
                    Ok(Some(http::ClientEvent::Response(response))) => Step::Response {
                        response: Box::new(response),
                        closed: http.is_closed(),
                    },
                    Ok(Some(http::ClientEvent::PeerClosed)) => Step::IdleClosed,
                    Ok(Some(http::ClientEvent::Upgrade { .. })) => Step::Broken(
                        ClientCloseReason::TransportError("unexpected protocol switch".into()),
                    ),
                    Err(HttpError::UnexpectedEof) => {
                        Step::Broken(ClientCloseReason::TransportClose)
                    }
                    Err(err) => Step::Broken(ClientCloseReason::TransportError(format!(
                        "HTTP error: {err}"
                    ))),
                },
                LinkState::WsHandshake { http, handshake } => match http.poll_response() {
                    Ok(None) => return,
                    Ok(Some(http::ClientEvent::Upgrade { response, leftover })) => {
                        match handshake
                            .validate_response_extensions(response.status, response.headers.iter())
                        {
                            Ok(deflate) => {
                                let ws = WebSocket::client(ws_config, self.rng.clone());
                                #[cfg(feature = "deflate")]
                                let ws = match deflate {
                                    Some(params) => ws.with_deflate(params, &deflate_config),
                                    None => ws,
                                };
                                #[cfg(not(feature = "deflate"))]
                                let _ = deflate;
                                let mut ws = ws;
                                ws.receive(&leftover);
                                link.state = LinkState::Ws(ws);
                                Step::WsOpened
                            }
                            Err(err) => Step::WsFailed(ClientCloseReason::TransportError(format!(
                                "WebSocket handshake: {err}"
                            ))),
                        }
                    }
                    Ok(Some(http::ClientEvent::Response(response))) => {
                        Step::WsFailed(ClientCloseReason::TransportError(format!(
                            "WebSocket upgrade refused with status {}",
                            response.status
                        )))
                    }
                    Ok(Some(http::ClientEvent::PeerClosed)) | Err(HttpError::UnexpectedEof) => {
                        Step::WsFailed(ClientCloseReason::TransportError(
                            "connection closed before the WebSocket upgrade".into(),
                        ))
                    }
                    Err(err) => Step::WsFailed(ClientCloseReason::TransportError(format!(
                        "HTTP error: {err}"
                    ))),
                },
                LinkState::Ws(ws) => match ws.poll_message() {
                    None => {
                        // Automatic pong replies to WebSocket pings.
                        if let Some(bytes) = ws.poll_transmit() {
                            self.actions.push_back(ClientAction::Data(conn, bytes));
                        }
                        if ws.is_closed() {
                            Step::Broken(ClientCloseReason::TransportClose)
                        } else {
                            return;
                        }
                    }
                    Some(Ok(WsMessage::Text(text))) => match Packet::decode_text(&text) {
                        Ok(packet) => Step::WsPacket(packet),
                        Err(err) => Step::Broken(ClientCloseReason::TransportError(format!(
                            "parse error: {err}"
                        ))),
                    },
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        Step::WsPacket(Packet::decode_binary(bytes))
                    }
                    Some(Ok(WsMessage::Close(_))) | Some(Err(WsError::UnexpectedEof)) => {
                        Step::Broken(ClientCloseReason::TransportClose)
                    }
                    Some(Err(err)) => Step::Broken(ClientCloseReason::TransportError(format!(
                        "WebSocket error: {err}"
                    ))),
                },
            };
            match step {
                Step::Response { response, closed } => {
                    if closed {
                        self.drop_link(conn);
                    }
                    self.on_response(now, role, *response);
                }
                Step::IdleClosed => {
                    self.drop_link(conn);
                    return;
                }
                Step::WsOpened => self.on_ws_open(conn, role),
                Step::WsFailed(reason) | Step::Broken(reason) => {
                    self.drop_link(conn);
                    self.link_failed(role, reason);
                    return;
                }
                Step::WsPacket(packet) => match role {
                    Role::Probe => self.on_probe_packet(packet),
                    _ => self.on_packet(now, packet),
                },
            }
        }
    }

    fn on_response(&mut self, now: Instant, role: Role, response: Response) {
        if let Some(closing) = self.closing {
            // The session is over: only the close POST's answer matters.
            match role {
                Role::Get => self.get_in_flight = false,
                Role::Post => {
                    self.post_in_flight = false;
                    if closing.sent {
                        self.close_all_links();
                    }
                }
                Role::WebSocket | Role::Probe => {}
            }
            return;
        }
        match role {
            Role::Get => self.get_in_flight = false,
            Role::Post => self.post_in_flight = false,
            _ => return,
        }
        if response.status != 200 {
            let what = if role == Role::Get { "GET" } else { "POST" };
            return self.fail(ClientCloseReason::TransportError(format!(
                "polling {what} answered with status {}",
                response.status
            )));
        }
        if role == Role::Post {
            return;
        }
        if response.body.is_empty() {
            return;
        }
        let decoder = match PayloadDecoder::new(response.body, DEFAULT_MAX_PAYLOAD_PACKETS) {
            Ok(decoder) => decoder,
            Err(err) => {
                return self.fail(ClientCloseReason::TransportError(format!(
                    "parse error: {err}"
                )))
            }
        };
        for packet in decoder {
            if self.phase == Phase::Closed {
                return;
            }
            match packet {
                Ok(packet) => self.on_packet(now, packet),
                Err(err) => {
                    return self.fail(ClientCloseReason::TransportError(format!(
                        "parse error: {err}"
                    )))
                }
            }
        }
    }

    /// A packet on the session's transport.
    fn on_packet(&mut self, now: Instant, packet: Packet) {
        match self.phase {
            Phase::Closed => {}
            Phase::Opening => match packet {
                Packet::Open(handshake) => self.on_open(now, handshake),
                other => self.fail(ClientCloseReason::TransportError(format!(
                    "expected the open packet, got {:?}",
                    other.packet_type()
                ))),
            },
            Phase::Open => match packet {
                Packet::Open(_) => self.fail(ClientCloseReason::TransportError(
                    "a second open packet".into(),
                )),
                Packet::Close => self.fail(ClientCloseReason::TransportClose),
                Packet::Ping(_) => {
                    self.ping_deadline = self.next_ping_deadline(now);
                    self.pong_due = true;
                }
                Packet::Message(message) => self.events.push_back(ClientEvent::Message(message)),
                Packet::Pong(_) | Packet::Upgrade | Packet::Noop => {}
            },
        }
    }

    fn next_ping_deadline(&self, now: Instant) -> Option<Instant> {
        let handshake = self.handshake.as_ref()?;
        let wait = Duration::from_millis(handshake.ping_interval)
            .saturating_add(Duration::from_millis(handshake.ping_timeout));
        now.checked_add(wait)
    }

    fn on_open(&mut self, now: Instant, handshake: Box<Handshake>) {
        let probe = self.transport == Transport::Polling
            && self.config.transports == ClientTransports::Upgrade
            && handshake.upgrades.iter().any(|t| &**t == "websocket");
        self.handshake = Some(handshake.clone());
        self.phase = Phase::Open;
        self.connect_deadline = None;
        self.ping_deadline = self.next_ping_deadline(now);
        self.events.push_back(ClientEvent::Opened(handshake));
        if probe {
            self.probe = Some(ProbeStage::Handshaking);
            self.probe_conn = Some(self.open_link(Role::Probe));
        }
    }

    fn on_ws_open(&mut self, conn: ConnId, role: Role) {
        if role != Role::Probe {
            return;
        }
        let Some(LinkState::Ws(ws)) = self.links.get_mut(&conn).map(|l| &mut l.state) else {
            return;
        };
        let _ = ws.send_text("2probe");
        if let Some(bytes) = ws.poll_transmit() {
            self.actions.push_back(ClientAction::Data(conn, bytes));
        }
        self.probe = Some(ProbeStage::AwaitingPong);
    }

    fn on_probe_packet(&mut self, packet: Packet) {
        if self.probe == Some(ProbeStage::AwaitingPong)
            && matches!(packet, Packet::Pong(_))
            && packet.is_probe()
        {
            self.probe = Some(ProbeStage::Pausing);
            self.try_finish_upgrade();
        } else {
            // The server answered something else: the WebSocket is not
            // usable, polling carries on.
            if let Some(conn) = self.probe_conn {
                self.drop_link(conn);
            }
            self.probe_failed();
        }
    }

    fn probe_failed(&mut self) {
        if let Some(conn) = self.probe_conn {
            self.drop_link(conn);
        }
        self.probe = None;
    }

    /// Once polling is paused (no request in flight), sends `5` on the
    /// probe and makes it the transport.
    fn try_finish_upgrade(&mut self) {
        if self.probe != Some(ProbeStage::Pausing) || self.get_in_flight || self.post_in_flight {
            return;
        }
        let Some(conn) = self.probe_conn else {
            return;
        };
        let Some(link) = self.links.get_mut(&conn) else {
            return;
        };
        let LinkState::Ws(ws) = &mut link.state else {
            return;
        };
        link.role = Role::WebSocket;
        let _ = ws.send_text("5");
        self.probe = None;
        self.probe_conn = None;
        self.ws_conn = Some(conn);
        self.transport = Transport::WebSocket;
        for polling in [self.get_conn, self.post_conn].into_iter().flatten() {
            self.drop_link(polling);
        }
        self.events.push_back(ClientEvent::Upgraded);
        self.flush_ws();
    }

    // ----- output -----

    /// Moves queued packets towards the transport and keeps a GET pending.
    fn pump(&mut self, _now: Instant) {
        if self.phase == Phase::Closed {
            self.advance_close();
            return;
        }
        match self.transport {
            Transport::Polling => {
                if self.probe == Some(ProbeStage::Pausing) {
                    self.try_finish_upgrade();
                    return;
                }
                self.ensure_get();
                if self.phase == Phase::Open {
                    self.flush_post();
                }
            }
            Transport::WebSocket => {
                if self.phase == Phase::Open {
                    self.flush_ws();
                }
            }
        }
    }

    /// Makes sure a connection of `role` exists in its slot; `Some` when it
    /// can take a request now.
    fn http_link(&mut self, role: Role) -> Option<ConnId> {
        let slot = if role == Role::Get {
            self.get_conn
        } else {
            self.post_conn
        };
        let Some(conn) = slot else {
            let conn = self.open_link(role);
            if role == Role::Get {
                self.get_conn = Some(conn);
            } else {
                self.post_conn = Some(conn);
            }
            return None;
        };
        match self.links.get(&conn).map(|l| &l.state) {
            Some(LinkState::Http(http)) if http.can_send_request() => Some(conn),
            Some(LinkState::Connecting) => None,
            _ => {
                // Cannot carry another request: replace it.
                self.drop_link(conn);
                self.http_link(role)
            }
        }
    }

    fn ensure_get(&mut self) {
        if self.get_in_flight {
            return;
        }
        let Some(conn) = self.http_link(Role::Get) else {
            return;
        };
        let request = self.request(Method::Get, Transport::Polling, Bytes::new());
        match self.write_http(conn, &request) {
            Ok(()) => self.get_in_flight = true,
            Err(err) => self.fail(ClientCloseReason::TransportError(err)),
        }
    }

    fn flush_post(&mut self) {
        if self.post_in_flight || (!self.pong_due && self.queue.is_empty()) {
            return;
        }
        let Some(conn) = self.http_link(Role::Post) else {
            return;
        };
        let body = self.take_batch(false);
        let request = self.request(Method::Post, Transport::Polling, body);
        match self.write_http(conn, &request) {
            Ok(()) => self.post_in_flight = true,
            Err(err) => self.fail(ClientCloseReason::TransportError(err)),
        }
    }

    /// Takes the pong and the queued messages that fit in one payload of at
    /// most the server's `maxPayload` bytes (at least one packet), and
    /// encodes them; `with_close` appends a close packet.
    fn take_batch(&mut self, with_close: bool) -> Bytes {
        let max = self.server_max_payload().unwrap_or(usize::MAX);
        let mut body = BytesMut::new();
        let mut record = BytesMut::new();
        let mut count = 0usize;
        let push = |body: &mut BytesMut, record: &BytesMut, count: &mut usize| {
            if *count > 0 {
                body.extend_from_slice(&[RECORD_SEPARATOR]);
            }
            body.extend_from_slice(record);
            *count += 1;
        };
        if std::mem::take(&mut self.pong_due) {
            Packet::Pong(None).encode_text(&mut record);
            push(&mut body, &record, &mut count);
        }
        let reserve = usize::from(with_close) * 2;
        while let Some(message) = self.queue.front() {
            record.clear();
            Packet::Message(message.clone()).encode_text(&mut record);
            let separator = usize::from(count > 0);
            if count > 0 && body.len() + separator + record.len() + reserve > max {
                break;
            }
            push(&mut body, &record, &mut count);
            self.queue.pop_front();
        }
        if with_close {
            record.clear();
            Packet::Close.encode_text(&mut record);
            push(&mut body, &record, &mut count);
        }
        body.freeze()
    }

    fn flush_ws(&mut self) {
        let Some(conn) = self.ws_conn else {
            return;
        };
        let Some(LinkState::Ws(ws)) = self.links.get_mut(&conn).map(|l| &mut l.state) else {
            return;
        };
        if !ws.is_open() {
            return;
        }
        if std::mem::take(&mut self.pong_due) {
            let _ = ws.send_text("3");
        }
        let mut text = String::new();
        while let Some(message) = self.queue.pop_front() {
            let _ = match message {
                Message::Text(body) => {
                    text.clear();
                    text.push('4');
                    text.push_str(&body);
                    ws.send_text(&text)
                }
                Message::Binary(bytes) => ws.send_binary(&bytes),
            };
        }
        if let Some(bytes) = ws.poll_transmit() {
            self.actions.push_back(ClientAction::Data(conn, bytes));
        }
    }
}

/// The bytes `message` takes as a packet on `transport`.
fn encoded_len(message: &Message, transport: Transport) -> usize {
    match (message, transport) {
        (Message::Text(text), _) => 1 + text.len(),
        (Message::Binary(bytes), Transport::WebSocket) => bytes.len(),
        (Message::Binary(bytes), Transport::Polling) => 1 + bytes.len().div_ceil(3) * 4,
    }
}
