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
//!
//! With the streams cluster format ([`ClusterFormat::Streams`]) nothing of
//! this is kept in memory: offsets are the ids of the broker's stream
//! entries, sessions are stored in the broker, and a client restores on
//! whichever node it reconnects to (the CONNECT waits for the broker).

mod cluster;
mod config;
mod delivery;
mod events;
mod recovery;
mod state;
#[cfg(test)]
mod tests;
mod timers;
mod wire;

pub use cluster::{
    ClusterConfig, ClusterFormat, ClusterReply, ClusterRequestId, RemoteSocket, ServerAckId,
};
pub use config::{NamespaceMatcher, RecoveryConfig, ServerConfig};
pub use events::{
    AckOutcome, Broadcast, BroadcastAckId, BroadcastAckOutcome, BroadcastAckStarted, EngineCommand,
    ServerError, ServerEvent,
};

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::RngCore;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::adapter::{LocalAdapter, RoomSelector};
use super::offset::WithOffset;
use super::packet::{Packet, PacketData};
use super::reason::DisconnectReason;
use crate::engine::Message;
use crate::memory::shrink_if_empty;
use crate::parser::{Encoded, JsonParser, OutPacket, Parser};
use crate::value::Value;
use crate::Str;
use recovery::{PersistedSession, RecoveryState, StoredPacket};
use state::{BroadcastAckState, EngineSession, Namespace, PendingAck, SocketPhase, SocketState};
use timers::{Timer, Timers};
use wire::{
    check_event_name, check_namespace, disconnect_packet, encode_packet, log_invalid_packet,
    message_len, ConnectErrorBody, ConnectReply,
};

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
    /// The cluster seam, when this server is one node of several.
    cluster: Option<cluster::ClusterState>,
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
            cluster: None,
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
                log_invalid_packet(&eio, &err);
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
        let event = self.events.pop_front();
        if event.is_none() {
            shrink_if_empty(&mut self.events);
        }
        event
    }

    /// The next command for the Engine.IO layer.
    pub fn poll_command(&mut self) -> Option<EngineCommand> {
        let command = self.commands.pop_front();
        if command.is_none() {
            shrink_if_empty(&mut self.commands);
        }
        command
    }

    /// The next deadline; call [`Server::handle_timeout`] when it passes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    // ----- connection answers -----

    /// Accept a pending socket: the client gets the CONNECT reply (after
    /// the recovered packets, before whatever was emitted to it meanwhile).
    /// With `always_connect` this is a no-op.
    pub fn accept(&mut self, now: Instant, socket: &str) -> Result<(), ServerError> {
        let state = self.sockets.get(socket).ok_or(ServerError::UnknownSocket)?;
        if state.phase.is_connected() {
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
        let messages = if !state.phase.is_connected() {
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
        if !to.local && self.streams_on() {
            return self.streams_broadcast(now, to, event, args);
        }
        let Some(namespace) = self.namespaces.get(&to.nsp) else {
            self.cluster_broadcast(to, event, args)?;
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
        self.cluster_broadcast(to, event, args)?;
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
        let started = self.start_broadcast_ack(now, to, event, args, timeout, None)?;
        self.cluster_broadcast_with_ack(to, event, args, started.id.0, timeout)?;
        self.check_broadcast_ack(started.id.0);
        self.close_overflowed(now);
        Ok(started)
    }

    /// A broadcast with acknowledgements another node asked for: each
    /// answer goes back to it as it arrives.
    fn remote_broadcast_with_ack<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        to: &Broadcast,
        event: &str,
        args: &A,
        reply: cluster::ReplyTo,
        timeout: Option<Duration>,
    ) -> Result<(), ServerError> {
        let timeout = timeout.unwrap_or_else(|| {
            self.cluster
                .as_ref()
                .map_or(Duration::from_secs(5), |c| c.request_timeout())
        });
        let started =
            self.start_broadcast_ack(now, to, event, args, timeout, Some(reply.clone()))?;
        self.cluster_reply_count(&reply, started.receivers);
        self.check_broadcast_ack(started.id.0);
        Ok(())
    }

    /// The local part of a broadcast with acknowledgements: deliver, and
    /// track the answers (for the application, or for `origin`).
    fn start_broadcast_ack<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        to: &Broadcast,
        event: &str,
        args: &A,
        timeout: Duration,
        origin: Option<cluster::ReplyTo>,
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
                origin,
                remote: None,
            },
        );
        Ok(started)
    }

    // ----- disconnecting -----

    /// Disconnect a connected socket from its namespace: the client gets
    /// DISCONNECT; the application [`ServerEvent::Disconnect`] with
    /// `server namespace disconnect`. The Engine.IO session stays open.
    pub fn disconnect(&mut self, now: Instant, socket: &str) -> Result<(), ServerError> {
        let state = self.sockets.get(socket).ok_or(ServerError::UnknownSocket)?;
        if !state.phase.is_connected() {
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
        let (nsp, room) = (Str::from(nsp), Str::from(room));
        self.local_close_room(&nsp, &room);
        self.cluster_close_room(&nsp, &room);
    }

    fn local_close_room(&mut self, nsp: &str, room: &str) {
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
            .phase
            .is_connected())
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
                if !state.phase.is_connected() {
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
                if !state.phase.is_connected() {
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
                            match b.origin.clone() {
                                Some(origin) => self.cluster_reply_ack(&origin, &sid, &args),
                                None => b.responses.push((sid, args)),
                            }
                            self.check_broadcast_ack(bid);
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
        self.ensure_namespace(&nsp);
        if recovery_on && self.streams_on() {
            // The socket opens when the broker answered.
            if !self.streams_restore(now, eio, &nsp, &auth) {
                self.open_socket(now, eio, nsp, auth, None);
            }
            return;
        }

        let request = auth.as_ref().and_then(|auth| {
            let pid = auth.get("pid")?.as_str()?;
            let offset = auth.get("offset").and_then(Value::as_str);
            Some((Str::from(pid), offset.map(str::to_owned)))
        });
        let mut resumed = None;
        if let (true, Some((pid, offset))) = (recovery_on, request) {
            self.take_over(now, &nsp, &pid, offset.as_deref());
            resumed = self.restore(now, &nsp, &pid, offset.as_deref()).map(
                |(pid, session, replay, start)| cluster::Resumed {
                    sid: session.sid,
                    pid,
                    rooms: session.rooms,
                    data: session.data,
                    replay,
                    base: start,
                },
            );
        }
        self.open_socket(now, eio, nsp, auth, resumed);
    }

    /// Create namespace `nsp` here if it is not (again: a restore waiting
    /// for the broker may outlive it).
    fn ensure_namespace(&mut self, nsp: &Str) {
        if self.namespaces.contains_key(nsp) {
            return;
        }
        // With the streams format, sessions and packets are kept in the
        // broker, not here.
        let local = self.config.recovery.is_some() && !self.streams_on();
        self.namespaces.insert(
            nsp.clone(),
            Namespace {
                adapter: LocalAdapter::new(),
                next_ack_id: 0,
                recovery: local.then(RecoveryState::default),
            },
        );
        self.cluster_namespace(nsp, true);
    }

    /// Register a pending socket on `eio` (new, or `resumed`) and tell the
    /// application.
    fn open_socket(
        &mut self,
        now: Instant,
        eio: &Str,
        nsp: Str,
        auth: Option<Value>,
        resumed: Option<cluster::Resumed>,
    ) {
        self.ensure_namespace(&nsp);
        let recovery_on = self.config.recovery.is_some();
        let recovered = resumed.is_some();
        // The first packet the client may not get: the replay's start for a
        // restored socket (if this connection drops before the client got
        // the replay, it comes back without a newer offset), otherwise
        // whatever is sent from now on, held packets included.
        let (sid, pid, rooms, data, replay, recovery_base) = match resumed {
            Some(r) => (r.sid, Some(r.pid), r.rooms, r.data, r.replay, r.base),
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
        let namespace = self.namespaces.get_mut(&nsp).expect("ensured above");
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
                phase: SocketPhase::Pending {
                    replay,
                    held: Vec::new(),
                },
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
        let SocketPhase::Pending { replay, held } =
            std::mem::replace(&mut state.phase, SocketPhase::Connected)
        else {
            unreachable!("only a pending socket is connected");
        };
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
        if self.config.recovery.is_some() && self.streams_on() {
            // As in the reference: a broadcast to the socket's own room,
            // through the stream, to get an offset.
            let to = Broadcast {
                nsp,
                selector: RoomSelector {
                    rooms: vec![sid.clone()],
                    except: Vec::new(),
                },
                volatile,
                local: false,
            };
            return Ok(self.streams_broadcast(now, &to, event, args)? == 1);
        }
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
        let held: usize = match &state.phase {
            SocketPhase::Pending { held, .. } => held.iter().map(message_len).sum(),
            SocketPhase::Connected => 0,
        };
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
                        self.check_broadcast_ack(bid);
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
        if self.cluster.is_some() {
            self.streams_forget(&sid);
            if let (Some(pid), true) = (
                &state.pid,
                state.phase.is_connected() && reason.is_recoverable(),
            ) {
                self.streams_persist(&sid, pid, &rooms, state.data.as_deref());
            }
        }
        let namespace = self.namespaces.get_mut(&state.nsp).expect("socket's nsp");
        if let (Some(recovery), Some(pid)) = (namespace.recovery.as_mut(), state.pid) {
            if recovery.live.get(&pid) == Some(&sid) {
                recovery.live.remove(&pid);
            }
            if state.phase.is_connected() && reason.is_recoverable() {
                let duration = self
                    .config
                    .recovery
                    .as_ref()
                    .expect("recovery on")
                    .max_disconnection_duration;
                // Disarm an older session's expiry first: the new one has
                // the same key.
                if let Some(old) = recovery.sessions.remove(&pid) {
                    self.timers.cancel(Some(old.timer));
                }
                let timer = self.timers.schedule(
                    now + duration,
                    Timer::SessionExpiry {
                        nsp: state.nsp.clone(),
                        pid: pid.clone(),
                    },
                );
                recovery.sessions.insert(
                    pid,
                    PersistedSession {
                        sid: sid.clone(),
                        rooms,
                        data: state.data,
                        recovery_base: state.recovery_base,
                        timer,
                    },
                );
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
            self.cluster_namespace(nsp, false);
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
        if state.origin.is_none() {
            self.events.push_back(ServerEvent::BroadcastAck {
                id: BroadcastAckId(bid),
                outcome,
                responses: state.responses,
            });
        }
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
                if self.broadcast_acks.contains_key(&id) {
                    self.finish_broadcast_ack(id, BroadcastAckOutcome::TimedOut);
                }
            }
            Timer::ClusterRequest { id } => self.on_request_timeout(id),
            Timer::StreamAppend { token } => self.on_stream_append_timeout(now, token),
            Timer::StreamRestore { token } => self.on_stream_restore_timeout(now, token),
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
                let Some(duration) = self.recovery_window() else {
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
}
