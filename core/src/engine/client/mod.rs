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
//!
//! # States and transitions
//! The session is one `State`; every change of state is decided in
//! `Client::step` (in `client/mod.rs`), from this table (state x input -> what happens, next
//! state). Inputs not listed leave the state as it is.
//!
//! | state | input | what happens | next state |
//! |---|---|---|---|
//! | `Handshaking` | open packet | `Opened`; a probe connection if polling may upgrade | `Polling` / `WebSocket` |
//! | `Handshaking` | any other packet | `Closed(TransportError)` | `Closed` |
//! | `Handshaking` | `Timeout(Connect)` | `Closed(ConnectTimeout)` | `Closed` |
//! | `Handshaking` | `Close` | `Closed(Closed)` | `Closed` |
//! | `Polling`, `WebSocket` | ping | pong due, ping deadline moved | same |
//! | `Polling`, `WebSocket` | message | `Message` | same |
//! | `Polling`, `WebSocket` | close packet | `Closed(TransportClose)` | `Closed` |
//! | `Polling`, `WebSocket` | second open packet | `Closed(TransportError)` | `Closed` |
//! | `Polling`, `WebSocket` | `Timeout(Ping)` | `Closed(PingTimeout)` | `Closed` |
//! | `Polling { probe: Handshaking }` | `ProbeOpened` | `2probe` sent | `Polling { probe: AwaitingPong }` |
//! | `Polling { probe: AwaitingPong }` | `3probe` on the probe | polling pauses | `Polling { probe: Pausing }` |
//! | `Polling { probe: Pausing }` | `PollingPaused` (no request in flight) | `5` sent, polling connections closed, `Upgraded` | `WebSocket` |
//! | `Polling { probe: some }` | other packet on the probe, `ProbeFailed` | probe closed | `Polling { probe: none }` |
//! | `Polling` | `Close` | `Closed(Closed)`; the close packet goes in a POST | `Closing` |
//! | `WebSocket` | `Close` | `1` and a close frame, `Closed(Closed)` | `Closed` |
//! | `Handshaking`, `Polling`, `WebSocket` | `TransportFailed` | `Closed(reason)`, connections closed | `Closed` |
//! | `Closing` | `CloseAcknowledged`, `Timeout(CloseLinger)`, `TransportFailed`, `Close` | connections closed | `Closed` |
//!
//! Deadlines live in one [`TimerTable`] keyed by `Timer`; each state
//! arms only its own (`Connect` while handshaking, `Ping` while open,
//! `CloseLinger` while closing), so [`Client::poll_timeout`] is the
//! table's next deadline.
//!
//! [`TimerTable`]: crate::timer::TimerTable
//!
//! The concepts around the machine have their files: `handshake` (the
//! open packet and the requests' target), `polling` (GET and POST),
//! `upgrade` (the WebSocket probe), `websocket` (the WebSocket transport),
//! `links` (the connections and reading their bytes).

mod handshake;
mod links;
mod polling;
mod upgrade;
mod websocket;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rand_core::RngCore;

use self::links::{Link, Role, SharedRng};
use self::polling::Polling;
use self::upgrade::{Probe, ProbeStage};
use super::config::{ClientConfig, ClientTransports, Transport};
use super::packet::{Handshake, Message, Packet, RECORD_SEPARATOR};
use super::server::ConnId;
use crate::timer::TimerTable;

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
    Data(ConnId, bytes::Bytes),
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

/// Where the session stands; each variant holds what only it needs. See
/// the table in the module documentation.
enum State {
    /// Waiting for the open packet on the first transport.
    Handshaking(FirstTransport),
    /// Open over long-polling, perhaps probing a WebSocket to upgrade to.
    Polling {
        open: Open,
        polling: Polling,
        probe: Option<Probe>,
    },
    /// Open over WebSocket (from the start, or upgraded).
    WebSocket { open: Open, conn: ConnId },
    /// Closed by the application over polling: the close packet still has
    /// to reach the server (in a POST after the one in flight), and the
    /// polling connections stay until it answered, so that it sees the
    /// close before a GET going away. The application saw `Closed` already.
    Closing {
        handshake: Box<Handshake>,
        polling: Polling,
        /// The close POST is written.
        sent: bool,
    },
    /// Ended; the handshake stays readable.
    Closed { handshake: Option<Box<Handshake>> },
}

/// The transport the handshake runs on.
enum FirstTransport {
    /// The GET (and, once needed, POST) connections.
    Polling(Polling),
    /// The WebSocket connection.
    WebSocket(ConnId),
}

/// An open session's own data.
struct Open {
    /// The server's open packet.
    handshake: Box<Handshake>,
    /// A ping arrived and its pong is not sent yet (one pong answers any
    /// number of pings that arrive meanwhile: a server cannot grow a queue
    /// of pongs by pinging faster than we can write).
    pong_due: bool,
}

/// The state without its data, for matching in [`Client::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    Polling(Option<ProbeStage>),
    WebSocket,
    Closing,
    Closed,
}

/// What can move the session from one state to another.
#[derive(Debug)]
enum Input {
    /// A packet on the session's transport.
    Packet(Packet),
    /// The probe's WebSocket handshake completed.
    ProbeOpened,
    /// A packet on the probe.
    ProbePacket(Packet),
    /// The probe's connection failed or ended.
    ProbeFailed,
    /// Polling may have no request in flight any more: a paused upgrade
    /// completes if so.
    PollingPaused,
    /// A connection carrying the session failed, or a request could not be
    /// written.
    TransportFailed(ClientCloseReason),
    /// The server answered the close POST.
    CloseAcknowledged,
    /// The application closed the session.
    Close,
    /// A deadline passed.
    Timeout(Timer),
}

/// What each deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The handshake must complete by then.
    Connect,
    /// A ping must arrive by then (`pingInterval + pingTimeout`).
    Ping,
    /// The server must acknowledge the close packet by then.
    CloseLinger,
}

/// The Engine.IO client state machine.
///
/// Sans-IO: the driver opens the connections it is asked for, moves bytes,
/// and supplies the time. See the [module documentation](crate::engine::client).
pub struct Client {
    config: ClientConfig,
    rng: SharedRng,
    state: State,
    /// Every connection, by id; the state names which is which.
    links: BTreeMap<ConnId, Link>,
    next_conn: u64,
    /// Messages waiting for the transport, in order.
    queue: VecDeque<Message>,
    events: VecDeque<ClientEvent>,
    actions: VecDeque<ClientAction>,
    timers: TimerTable<Timer>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("phase", &self.phase())
            .field("transport", &self.transport())
            .field("sid", &self.sid())
            .field("connections", &self.links.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Start a session: the first action asks for a connection. The cache
    /// buster, WebSocket keys and mask keys come from `rng` (seed it from
    /// the OS: RFC 6455 wants unpredictable mask keys).
    pub fn new(config: ClientConfig, rng: Box<dyn RngCore + Send>, now: Instant) -> Client {
        let mut timers = TimerTable::new();
        if let Some(at) = now.checked_add(config.connect_timeout) {
            timers.set(Timer::Connect, at);
        }
        let websocket = config.transports == ClientTransports::WebSocket;
        let mut client = Client {
            config,
            rng: SharedRng::new(rng),
            state: State::Closed { handshake: None },
            links: BTreeMap::new(),
            next_conn: 0,
            queue: VecDeque::new(),
            events: VecDeque::new(),
            actions: VecDeque::new(),
            timers,
        };
        let first = if websocket {
            FirstTransport::WebSocket(client.open_link(Role::WebSocket))
        } else {
            FirstTransport::Polling(Polling::with_get(client.open_link(Role::Get)))
        };
        client.state = State::Handshaking(first);
        client
    }

    /// A connection asked for with [`ClientAction::Connect`] is established.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        if self.connected(now, conn) {
            self.pump(now);
        }
    }

    /// Bytes read from a connection.
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if matches!(self.state, State::Closed { .. }) {
            return;
        }
        if self.feed(conn, data) {
            self.process(now, conn);
            self.pump(now);
        }
    }

    /// A connection ended or could not be established.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        if matches!(self.state, State::Closed { .. }) {
            return;
        }
        if !self.feed_eof(now, conn) {
            return;
        }
        self.process(now, conn);
        // Whatever the input said, the connection is gone.
        if let Some(role) = self.links.get(&conn).map(|link| link.role) {
            self.drop_link(conn);
            match role {
                Role::Probe => self.step(now, Input::ProbeFailed),
                Role::WebSocket => self.step(
                    now,
                    Input::TransportFailed(ClientCloseReason::TransportClose),
                ),
                Role::Get | Role::Post => {}
            }
        }
        self.pump(now);
    }

    /// The deadline from [`Client::poll_timeout`] is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            self.step(now, Input::Timeout(timer));
        }
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
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
        // One look at the state for the transport and the server's limit:
        // this is the per-message path.
        let (transport, handshake) = match &self.state {
            State::Handshaking(FirstTransport::Polling(_)) => (Transport::Polling, None),
            State::Handshaking(FirstTransport::WebSocket(_)) => (Transport::WebSocket, None),
            State::Polling { open, .. } => (Transport::Polling, Some(&*open.handshake)),
            State::WebSocket { open, .. } => (Transport::WebSocket, Some(&*open.handshake)),
            State::Closing { .. } | State::Closed { .. } => return Err(ClientSendError::NotOpen),
        };
        if self.queue.len() >= self.config.max_queued_messages {
            return Err(ClientSendError::QueueFull);
        }
        if transport == Transport::Polling {
            if let Message::Text(text) = &message {
                if text.as_bytes().contains(&RECORD_SEPARATOR) {
                    return Err(ClientSendError::RecordSeparator);
                }
            }
        }
        if let Some(max) = handshake.and_then(max_payload) {
            if encoded_len(&message, transport) > max {
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
        self.step(now, Input::Close);
    }

    /// The transport in use; `None` once closed.
    pub fn transport(&self) -> Option<Transport> {
        match &self.state {
            State::Handshaking(FirstTransport::Polling(_)) | State::Polling { .. } => {
                Some(Transport::Polling)
            }
            State::Handshaking(FirstTransport::WebSocket(_)) | State::WebSocket { .. } => {
                Some(Transport::WebSocket)
            }
            State::Closing { .. } | State::Closed { .. } => None,
        }
    }

    /// The session id once open.
    pub fn sid(&self) -> Option<&str> {
        self.handshake().map(|h| &*h.sid)
    }

    /// The server's handshake once open.
    pub fn handshake(&self) -> Option<&Handshake> {
        match &self.state {
            State::Handshaking(_) => None,
            State::Polling { open, .. } | State::WebSocket { open, .. } => Some(&open.handshake),
            State::Closing { handshake, .. } => Some(handshake),
            State::Closed { handshake } => handshake.as_deref(),
        }
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closing { .. } | State::Closed { .. })
    }

    /// Messages waiting to be sent.
    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }

    // ----- the machine -----

    fn phase(&self) -> Phase {
        match &self.state {
            State::Handshaking(_) => Phase::Handshaking,
            State::Polling { probe, .. } => Phase::Polling(probe.as_ref().map(|p| p.stage)),
            State::WebSocket { .. } => Phase::WebSocket,
            State::Closing { .. } => Phase::Closing,
            State::Closed { .. } => Phase::Closed,
        }
    }

    /// Decides every transition of the session (the table in the module
    /// documentation); the helpers it calls carry them out. Inlined: each
    /// caller passes one kind of input, and the arms for the others fold
    /// away (a message on an open session costs what a direct call did).
    #[inline(always)]
    fn step(&mut self, now: Instant, input: Input) {
        use Phase as P;
        match (self.phase(), input) {
            (P::Closed, _) => {}

            (P::Handshaking, Input::Packet(Packet::Open(handshake))) => self.opened(now, handshake),
            (P::Handshaking, Input::Packet(other)) => self.fail(ClientCloseReason::TransportError(
                format!("expected the open packet, got {:?}", other.packet_type()),
            )),
            (P::Handshaking, Input::Timeout(Timer::Connect)) => {
                self.fail(ClientCloseReason::ConnectTimeout)
            }
            (P::Handshaking, Input::Close) => self.fail(ClientCloseReason::Closed),

            (P::Polling(_) | P::WebSocket, Input::Packet(packet)) => match packet {
                Packet::Open(_) => self.fail(ClientCloseReason::TransportError(
                    "a second open packet".into(),
                )),
                Packet::Close => self.fail(ClientCloseReason::TransportClose),
                Packet::Ping(_) => self.pinged(now),
                Packet::Message(message) => self.events.push_back(ClientEvent::Message(message)),
                Packet::Pong(_) | Packet::Upgrade | Packet::Noop => {}
            },
            (P::Polling(_) | P::WebSocket, Input::Timeout(Timer::Ping)) => {
                self.fail(ClientCloseReason::PingTimeout)
            }

            (P::Polling(Some(ProbeStage::Handshaking)), Input::ProbeOpened) => self.send_probe(),
            (P::Polling(Some(ProbeStage::AwaitingPong)), Input::ProbePacket(packet))
                if matches!(packet, Packet::Pong(_)) && packet.is_probe() =>
            {
                // Then as `PollingPaused`: the upgrade completes at once if
                // no request is in flight.
                self.pause_polling();
                self.complete_upgrade();
            }
            (P::Polling(Some(_)), Input::ProbePacket(_) | Input::ProbeFailed) => {
                // The server answered something else, or the WebSocket
                // broke: it is not usable, polling carries on.
                self.abandon_probe()
            }
            (P::Polling(Some(ProbeStage::Pausing)), Input::PollingPaused) => {
                self.complete_upgrade()
            }

            (P::Polling(_), Input::Close) => self.close_polling(now),
            (P::WebSocket, Input::Close) => {
                self.send_close_frames();
                self.fail(ClientCloseReason::Closed);
            }
            (P::Handshaking | P::Polling(_) | P::WebSocket, Input::TransportFailed(reason)) => {
                self.fail(reason)
            }

            (
                P::Closing,
                Input::CloseAcknowledged
                | Input::Timeout(Timer::CloseLinger)
                | Input::TransportFailed(_)
                | Input::Close,
            ) => self.close_all_links(),

            // Stale or irrelevant here: a probe input with no probe, an
            // input for a state already left.
            (_, _) => {}
        }
    }

    /// Moves queued packets towards the transport and keeps a GET pending.
    fn pump(&mut self, now: Instant) {
        // On the state itself rather than `phase()`: this runs after every
        // input and every send.
        match &self.state {
            State::Closed { .. } | State::Handshaking(FirstTransport::WebSocket(_)) => {}
            State::Closing { .. } => self.advance_close(now),
            State::Polling {
                probe:
                    Some(Probe {
                        stage: ProbeStage::Pausing,
                        ..
                    }),
                ..
            } => self.step(now, Input::PollingPaused),
            State::Handshaking(FirstTransport::Polling(_)) => self.ensure_get(now),
            State::Polling { .. } => {
                self.ensure_get(now);
                self.flush_post(now);
            }
            State::WebSocket { .. } => self.flush_ws(),
        }
    }

    /// Moves the state out, leaving `Closed` in its place until the caller
    /// puts the next one.
    fn take_state(&mut self) -> State {
        std::mem::replace(&mut self.state, State::Closed { handshake: None })
    }

    /// The open session's data.
    fn open_mut(&mut self) -> Option<&mut Open> {
        match &mut self.state {
            State::Polling { open, .. } | State::WebSocket { open, .. } => Some(open),
            _ => None,
        }
    }

    /// Takes the pong owed to the server, if any.
    fn take_pong_due(&mut self) -> bool {
        self.open_mut()
            .is_some_and(|open| std::mem::take(&mut open.pong_due))
    }

    /// Ends the session for `reason`, keeping the connections (see
    /// [`Client::fail`]).
    fn finish(&mut self, reason: ClientCloseReason) {
        let handshake = match self.take_state() {
            ended @ (State::Closing { .. } | State::Closed { .. }) => {
                self.state = ended;
                return;
            }
            State::Handshaking(_) => None,
            State::Polling { open, .. } | State::WebSocket { open, .. } => Some(open.handshake),
        };
        self.state = State::Closed { handshake };
        self.timers.stop(&Timer::Connect);
        self.timers.stop(&Timer::Ping);
        self.queue = VecDeque::new();
        self.events.push_back(ClientEvent::Closed(reason));
    }

    /// Ends the session for `reason` and closes every connection.
    fn fail(&mut self, reason: ClientCloseReason) {
        self.finish(reason);
        self.close_all_links();
    }

    /// Closes every connection: the end of `Closing`, or of a failure.
    fn close_all_links(&mut self) {
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            self.drop_link(conn);
        }
        self.state = match self.take_state() {
            State::Closing { handshake, .. } => State::Closed {
                handshake: Some(handshake),
            },
            other => other,
        };
        self.timers.clear();
        self.queue = VecDeque::new();
    }

    fn server_max_payload(&self) -> Option<usize> {
        self.handshake().and_then(max_payload)
    }
}

/// The server's `maxPayload`; `None` for no limit (0, as the reference
/// client reads it).
fn max_payload(handshake: &Handshake) -> Option<usize> {
    let max = handshake.max_payload;
    (max > 0).then(|| usize::try_from(max).unwrap_or(usize::MAX))
}

/// The bytes `message` takes as a packet on `transport`.
fn encoded_len(message: &Message, transport: Transport) -> usize {
    match (message, transport) {
        (Message::Text(text), _) => 1 + text.len(),
        (Message::Binary(bytes), Transport::WebSocket) => bytes.len(),
        (Message::Binary(bytes), Transport::Polling) => 1 + bytes.len().div_ceil(3) * 4,
    }
}
