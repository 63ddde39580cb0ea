//! The cluster seam: several servers acting as one over a message bus.
//!
//! With [`Server::enable_cluster`], every operation that may concern
//! sockets on other nodes (broadcasts with or without acknowledgements,
//! rooms joined or left by selection, disconnections by selection,
//! `close_room`, fetching sockets, server-side emits) is done locally and
//! also told to the other nodes as [`BusCommand`]s, drained with
//! [`Server::poll_bus`] after the call; what other nodes publish comes in
//! through [`Server::handle_bus`]. Requests that wait for other nodes
//! finish when every node answered (the bus says how many listen, see
//! [`BusCommand::CountSubscribers`]) or at their deadline, in the server's
//! one timer, with what arrived.
//!
//! The formats ([`ClusterFormat`]) map their messages to one set of
//! operations (`ops`), so the seam is written once.

mod format;
mod ops;
mod streams;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use ops::RemoteSocket;
pub(crate) use ops::{Answer, Inbound, Outbound, ReplyTo};
pub(super) use streams::Resumed;

use super::events::{BroadcastAckOutcome, ServerEvent};
use super::timers::{Timer, TimerId};
use super::wire::check_namespace;
use super::{Broadcast, Server, ServerError};
use crate::cluster::node::StreamsConfig;
use crate::cluster::{BusCommand, BusInput, BusLimits};
use crate::parser::{ArgArray, Args, Parser};
use crate::socket::adapter::RoomSelector;
use crate::value::{to_value, Value};
use crate::Str;
use format::Format;

/// Which protocol the nodes speak on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterFormat {
    /// python-socketio 5's pub/sub managers (`AsyncRedisManager`,
    /// `KombuManager`, ...): JSON on one channel (default `socketio`).
    Python {
        /// The channel (python's `channel` argument).
        channel: Str,
    },
    /// `@socket.io/redis-adapter` 8.3: MessagePack and JSON on channels
    /// named from `prefix` (default `socket.io`) and the namespace.
    Node {
        /// The channel prefix (the adapter's `key` option).
        prefix: Str,
        /// The sharded adapter (`createShardedAdapter`, Redis 7
        /// `SPUBLISH`/`SSUBSCRIBE`).
        sharded: bool,
    },
    /// `@socket.io/redis-streams-adapter` 0.3: a Redis stream for
    /// broadcasts and selections, pub/sub for requests, and sessions kept
    /// in Redis so that connection state recovery works across nodes
    /// (with [`super::ServerConfig::recovery`] set).
    Streams(StreamsConfig),
}

impl ClusterFormat {
    /// python-socketio's format on its default channel `socketio`.
    pub fn python() -> ClusterFormat {
        ClusterFormat::Python {
            channel: Str::from_static("socketio"),
        }
    }

    /// The Node streams adapter's format with its defaults (stream
    /// `socket.io`, channel prefix `socket.io`).
    pub fn streams() -> ClusterFormat {
        ClusterFormat::Streams(StreamsConfig::default())
    }

    /// The Node redis-adapter's classic format with the default prefix.
    pub fn node() -> ClusterFormat {
        ClusterFormat::Node {
            prefix: Str::from_static("socket.io"),
            sharded: false,
        }
    }
}

/// Options of the cluster seam.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The format on the bus.
    pub format: ClusterFormat,
    /// How long a request waits for the other nodes (the Node adapter's
    /// `requestsTimeout`, 5 s).
    pub request_timeout: Duration,
    /// Limits on what is accepted from the bus.
    pub limits: BusLimits,
    /// Most requests (fetches, server-side emits) waiting at once; more
    /// are refused with [`ServerError::TooManyRequests`].
    pub max_pending_requests: usize,
    /// Publish only, subscribe to nothing (an emitter: python's
    /// `write_only=True`, Node's `@socket.io/redis-emitter`).
    pub write_only: bool,
    /// This node's id on the bus instead of a random one (Node's emitter
    /// uses `emitter`).
    pub node_id: Option<Str>,
    /// Most commands waiting in [`Server::poll_bus`]; beyond it the oldest
    /// publishes are dropped with a log line (a driver that drains after
    /// every call never gets near it).
    pub max_queued_commands: usize,
}

impl ClusterConfig {
    /// Defaults with this format.
    pub fn new(format: ClusterFormat) -> ClusterConfig {
        ClusterConfig {
            format,
            request_timeout: Duration::from_secs(5),
            limits: BusLimits::default(),
            max_pending_requests: 1024,
            write_only: false,
            node_id: None,
            max_queued_commands: 100_000,
        }
    }
}

/// Names a request made with [`Server::fetch_sockets`],
/// [`Server::server_side_emit_with_ack`] or [`Server::all_rooms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterRequestId(pub u64);

/// Names a server-side emit another server awaits an answer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAckId(pub u64);

/// What a request collected, in [`ServerEvent::ClusterReply`].
#[derive(Debug, Clone)]
pub enum ClusterReply {
    /// [`Server::fetch_sockets`]: the sockets of every node, this one's
    /// first.
    Sockets(Vec<RemoteSocket>),
    /// [`Server::all_rooms`]: the rooms of every node, without repeats.
    Rooms(Vec<Str>),
    /// [`Server::server_side_emit_with_ack`]: each other server's answer.
    ServerSideAcks(Vec<Args>),
    /// [`Server::server_count`]: how many servers serve the namespace,
    /// this one included.
    ServerCount(u64),
}

/// A request waiting for other nodes.
struct PendingRequest {
    reply: ClusterReply,
    wait: NodeWait,
    timer: TimerId,
}

/// How many nodes a request waits for.
#[derive(Debug, Default)]
pub(super) struct NodeWait {
    /// Other nodes that will answer, once the bus said how many listen.
    pub(super) nodes: Option<u64>,
    /// Nodes that answered (for acks: that told their client count).
    pub(super) answered: u64,
    /// Acknowledgements announced by remote nodes, and received.
    pub(super) acks_expected: u64,
    pub(super) acks_received: u64,
}

impl NodeWait {
    pub(super) fn done(&self) -> bool {
        self.nodes.is_some_and(|n| self.answered >= n) && self.acks_received >= self.acks_expected
    }
}

/// What a count of subscribers is for.
#[derive(Debug, Clone, Copy)]
enum Counting {
    Request(u64),
    BroadcastAck(u64),
    /// Finishes a request with the count itself.
    Servers(u64),
}

/// The cluster side of a server.
pub(super) struct ClusterState {
    config: ClusterConfig,
    format: Format,
    commands: VecDeque<BusCommand>,
    requests: std::collections::BTreeMap<u64, PendingRequest>,
    /// Subscriber counts asked for, with their channel, in order. The bus
    /// answers each channel's counts in the order asked; answers for one
    /// channel are interchangeable (a Redis backend asks again after a
    /// reconnection, so an answer may be to an earlier question), which is
    /// why they are matched by channel and not by position alone.
    counting: VecDeque<(Str, Counting)>,
    /// Server-side emits awaiting the application's answer.
    server_acks: std::collections::BTreeMap<u64, ReplyTo>,
    next_server_ack: u64,
    dropped_commands: u64,
    /// The streams format's waits and marks (a serving node of it only).
    streams: Option<streams::StreamsState>,
}

impl ClusterState {
    fn push(&mut self, command: BusCommand) {
        if self.commands.len() >= self.config.max_queued_commands {
            self.commands.pop_front();
            self.dropped_commands += 1;
            if self.dropped_commands.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_commands,
                    "bus commands not drained: oldest dropped"
                );
            }
        }
        self.commands.push_back(command);
    }

    /// Tell the other nodes; false when the format cannot say it.
    fn tell(&mut self, op: Outbound<'_>) -> bool {
        self.send(op).is_some()
    }

    /// Tell the other nodes: `None` when the format cannot say it, else
    /// the token of the stream append that carries it, if one does.
    fn send(&mut self, op: Outbound<'_>) -> Option<Option<u64>> {
        let mut out = Vec::new();
        if !self.format.encode(op, &mut out) {
            return None;
        }
        let token = out.iter().find_map(|c| match c {
            BusCommand::StreamAppend { token, .. } => Some(*token),
            _ => None,
        });
        for command in out {
            self.push(command);
        }
        Some(token)
    }

    pub(super) fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    fn count(&mut self, nsp: &Str, what: Counting) -> bool {
        match self.format.count_command(nsp) {
            Some(command) => {
                if let BusCommand::CountSubscribers { channel, .. } = &command {
                    self.counting.push_back((channel.clone(), what));
                }
                self.push(command);
                true
            }
            None => false,
        }
    }
}

/// A broadcast as the other nodes are told of it.
fn broadcast_op<'a>(
    to: &'a Broadcast,
    event: &'a str,
    args: &'a [Value],
    ack: Option<(u64, Duration)>,
) -> Outbound<'a> {
    Outbound::Broadcast {
        nsp: &to.nsp,
        selector: &to.selector,
        volatile: to.volatile,
        event,
        args,
        ack,
    }
}

/// The arguments an application passed, as the values that cross the bus.
fn arg_values<A: Serialize + ?Sized>(args: &A) -> Result<Vec<Value>, ServerError> {
    match to_value(&ArgArray { event: None, args }) {
        Ok(Value::Array(values)) => Ok(values),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(ServerError::Encode(crate::parser::EncodeError::Serialize(
            e.0,
        ))),
    }
}

/// Values received from the bus, spread as arguments again.
struct Spread<'a>(&'a [Value]);

impl Serialize for Spread<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = s.serialize_tuple(self.0.len())?;
        for value in self.0 {
            tuple.serialize_element(value)?;
        }
        tuple.end()
    }
}

impl<P: Parser> Server<P> {
    /// Act as one node of a cluster: from now on, operations that may
    /// concern other nodes are also published (drain [`Server::poll_bus`]
    /// after every call), and [`Server::handle_bus`] takes what the others
    /// publish. Call once, before serving.
    pub fn enable_cluster(&mut self, config: ClusterConfig) {
        let format = Format::new(&config.format, config.node_id.clone(), &mut *self.rng);
        let streams = (matches!(config.format, ClusterFormat::Streams(_)) && !config.write_only)
            .then(streams::StreamsState::default);
        let mut state = ClusterState {
            streams,
            config,
            format,
            commands: VecDeque::new(),
            requests: Default::default(),
            counting: VecDeque::new(),
            server_acks: Default::default(),
            next_server_ack: 0,
            dropped_commands: 0,
        };
        let mut out = Vec::new();
        if !state.config.write_only {
            state
                .format
                .subscriptions(&Str::from_static("/"), true, &mut out);
            for nsp in self.namespaces.keys() {
                if nsp != "/" {
                    state.format.subscriptions(nsp, true, &mut out);
                }
            }
        }
        for command in out {
            state.push(command);
        }
        tracing::info!(node = %state.format.node_id(), "cluster enabled");
        self.cluster = Some(state);
    }

    /// This node's id on the bus (python's `host_id`, the Node adapter's
    /// `uid`), once the cluster is enabled.
    pub fn node_id(&self) -> Option<&str> {
        self.cluster.as_ref().map(|c| c.format.node_id())
    }

    /// The next command for the bus backend.
    pub fn poll_bus(&mut self) -> Option<BusCommand> {
        let cluster = self.cluster.as_mut()?;
        if cluster.commands.is_empty() && cluster.format.room_channels().is_some() {
            // Rooms with channels of their own: listen where rooms were
            // created, stop where they were deleted.
            let mut out = Vec::new();
            for (nsp, namespace) in &mut self.namespaces {
                for (room, created) in namespace.adapter.take_room_changes() {
                    cluster
                        .format
                        .room_subscription(nsp, &room, created, &mut out);
                }
            }
            for command in out {
                cluster.push(command);
            }
        }
        cluster.commands.pop_front()
    }

    /// Something from the bus backend.
    pub fn handle_bus(&mut self, now: Instant, input: BusInput) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        match input {
            BusInput::Message { channel, payload } => {
                if payload.len() > cluster.config.limits.max_message_bytes {
                    tracing::warn!(%channel, bytes = payload.len(), "cluster message over the size limit: ignored");
                    return;
                }
                match cluster
                    .format
                    .decode(&channel, &payload, &cluster.config.limits)
                {
                    Ok(Some(inbound)) => self.on_inbound(now, inbound),
                    Ok(None) => {}
                    Err(err) => tracing::warn!(%channel, %err, "cluster message ignored"),
                }
            }
            BusInput::Subscribers { channel, count } => {
                let Some(at) = cluster.counting.iter().position(|(c, _)| *c == channel) else {
                    tracing::debug!(%channel, "subscriber count nobody waits for ignored");
                    return;
                };
                let Some((_, what)) = cluster.counting.remove(at) else {
                    return;
                };
                let others = count.saturating_sub(1);
                match what {
                    Counting::Request(id) => {
                        if let Some(request) = cluster.requests.get_mut(&id) {
                            request.wait.nodes = Some(others);
                        }
                        self.check_request(id);
                    }
                    Counting::Servers(id) => {
                        if let Some(request) = cluster.requests.get_mut(&id) {
                            request.reply = ClusterReply::ServerCount(count);
                        }
                        self.finish_request(id, true);
                    }
                    Counting::BroadcastAck(bid) => {
                        if let Some(wait) = self
                            .broadcast_acks
                            .get_mut(&bid)
                            .and_then(|b| b.remote.as_mut())
                        {
                            wait.nodes = Some(others);
                        }
                        self.check_broadcast_ack(bid);
                    }
                }
            }
            BusInput::StreamAppended { token, id } => self.on_stream_appended(now, token, id),
            BusInput::StreamEntry { stream, entry } => self.on_stream_entry(now, stream, entry),
            BusInput::StreamRange { token, entries } => self.on_stream_range(now, token, entries),
            BusInput::KeyTaken { token, value } => self.on_key_taken(now, token, value),
            BusInput::Up => tracing::info!("cluster bus up"),
            BusInput::Down => {
                tracing::warn!("cluster bus down: only local sockets are reached until it is back");
                // Whether the counts asked before the gap are answered is
                // up to the backend, and the nodes that would have answered
                // may not have heard the question: what waits on a count
                // cannot be known complete any more. Requests end now as
                // incomplete; a broadcast with acks keeps collecting its
                // local acks until its deadline, then ends as timed out.
                let stale: Vec<Counting> = cluster.counting.drain(..).map(|(_, w)| w).collect();
                for what in stale {
                    match what {
                        Counting::Request(id) | Counting::Servers(id) => {
                            self.finish_request(id, false)
                        }
                        Counting::BroadcastAck(_) => {}
                    }
                }
            }
        }
        self.close_overflowed(now);
    }

    // ----- operations across the cluster -----

    /// The sockets [`Broadcast`] selects join `rooms`, on every node.
    pub fn sockets_join(&mut self, to: &Broadcast, rooms: &[Str]) -> Result<(), ServerError> {
        check_namespace(&to.nsp)?;
        self.local_sockets_join(&to.nsp, &to.selector, rooms);
        if let Some(cluster) = self.cluster.as_mut().filter(|_| !to.local) {
            if !cluster.tell(Outbound::Join {
                nsp: &to.nsp,
                selector: &to.selector,
                rooms,
            }) {
                tracing::warn!(nsp = %to.nsp, "sockets_join: selection not expressible in the cluster format; done locally only");
            }
        }
        Ok(())
    }

    /// The sockets [`Broadcast`] selects leave `rooms`, on every node.
    pub fn sockets_leave(&mut self, to: &Broadcast, rooms: &[Str]) -> Result<(), ServerError> {
        check_namespace(&to.nsp)?;
        self.local_sockets_leave(&to.nsp, &to.selector, rooms);
        if let Some(cluster) = self.cluster.as_mut().filter(|_| !to.local) {
            if !cluster.tell(Outbound::Leave {
                nsp: &to.nsp,
                selector: &to.selector,
                rooms,
            }) {
                tracing::warn!(nsp = %to.nsp, "sockets_leave: selection not expressible in the cluster format; done locally only");
            }
        }
        Ok(())
    }

    /// Disconnect the sockets [`Broadcast`] selects, on every node (closing
    /// their Engine.IO sessions too when `close`).
    pub fn disconnect_sockets(
        &mut self,
        now: Instant,
        to: &Broadcast,
        close: bool,
    ) -> Result<(), ServerError> {
        check_namespace(&to.nsp)?;
        self.local_disconnect(now, &to.nsp, &to.selector, close);
        if let Some(cluster) = self.cluster.as_mut().filter(|_| !to.local) {
            if !cluster.tell(Outbound::Disconnect {
                nsp: &to.nsp,
                selector: &to.selector,
                close,
            }) {
                tracing::warn!(nsp = %to.nsp, "disconnect_sockets: selection not expressible in the cluster format; done locally only");
            }
        }
        self.close_overflowed(now);
        Ok(())
    }

    /// Describe the sockets [`Broadcast`] selects on every node; the answer
    /// comes as [`ServerEvent::ClusterReply`] with the returned id (at
    /// once when there is no cluster).
    pub fn fetch_sockets(
        &mut self,
        now: Instant,
        to: &Broadcast,
    ) -> Result<ClusterRequestId, ServerError> {
        check_namespace(&to.nsp)?;
        let local = self.local_sockets(&to.nsp, &to.selector);
        let id = self.start_request(
            now,
            &to.nsp,
            ClusterReply::Sockets(local),
            to.local,
            |request| Outbound::FetchSockets {
                request,
                nsp: &to.nsp,
                selector: &to.selector,
            },
        )?;
        Ok(id)
    }

    /// The rooms of namespace `nsp` on every node, as
    /// [`ServerEvent::ClusterReply`].
    pub fn all_rooms(&mut self, now: Instant, nsp: &Str) -> Result<ClusterRequestId, ServerError> {
        check_namespace(nsp)?;
        let local = self
            .namespaces
            .get(nsp)
            .map(|n| n.adapter.all_rooms())
            .unwrap_or_default();
        self.start_request(now, nsp, ClusterReply::Rooms(local), false, |request| {
            Outbound::AllRooms { request, nsp }
        })
    }

    /// How many servers serve namespace `nsp`, this one included (the
    /// reference's `serverCount`), as [`ServerEvent::ClusterReply`]: 1
    /// without a cluster, or when the format cannot count (python's).
    pub fn server_count(
        &mut self,
        now: Instant,
        nsp: &Str,
    ) -> Result<ClusterRequestId, ServerError> {
        check_namespace(nsp)?;
        let id = self.next_broadcast_ack;
        self.next_broadcast_ack += 1;
        let Some(cluster) = self.cluster.as_mut() else {
            self.events.push_back(ServerEvent::ClusterReply {
                id: ClusterRequestId(id),
                complete: true,
                reply: ClusterReply::ServerCount(1),
            });
            return Ok(ClusterRequestId(id));
        };
        if cluster.requests.len() >= cluster.config.max_pending_requests {
            return Err(ServerError::TooManyRequests {
                limit: cluster.config.max_pending_requests,
            });
        }
        let timer = self.timers.schedule(
            now + cluster.config.request_timeout,
            Timer::ClusterRequest { id },
        );
        let counted = cluster.count(nsp, Counting::Servers(id));
        cluster.requests.insert(
            id,
            PendingRequest {
                reply: ClusterReply::ServerCount(1),
                wait: NodeWait::default(),
                timer,
            },
        );
        if !counted {
            self.finish_request(id, false);
        }
        Ok(ClusterRequestId(id))
    }

    /// Emit `event` to the other servers' applications (the reference's
    /// `serverSideEmit`), as [`ServerEvent::ServerSideEmit`] there.
    pub fn server_side_emit<A: Serialize + ?Sized>(
        &mut self,
        nsp: &Str,
        event: &str,
        args: &A,
    ) -> Result<(), ServerError> {
        check_namespace(nsp)?;
        let values = arg_values(args)?;
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.tell(Outbound::ServerSideEmit {
                request: None,
                nsp,
                event,
                args: &values,
            });
        }
        Ok(())
    }

    /// [`Server::server_side_emit`] asking each other server for an
    /// answer; they come as [`ServerEvent::ClusterReply`].
    pub fn server_side_emit_with_ack<A: Serialize + ?Sized>(
        &mut self,
        now: Instant,
        nsp: &Str,
        event: &str,
        args: &A,
    ) -> Result<ClusterRequestId, ServerError> {
        check_namespace(nsp)?;
        let values = arg_values(args)?;
        self.start_request(
            now,
            nsp,
            ClusterReply::ServerSideAcks(Vec::new()),
            false,
            |request| Outbound::ServerSideEmit {
                request: Some(request),
                nsp,
                event,
                args: &values,
            },
        )
    }

    /// Answer another server's [`ServerEvent::ServerSideEmit`] (once).
    pub fn server_side_ack<A: Serialize + ?Sized>(
        &mut self,
        id: ServerAckId,
        args: &A,
    ) -> Result<(), ServerError> {
        let values = arg_values(args)?;
        let cluster = self.cluster.as_mut().ok_or(ServerError::UnknownAck)?;
        let to = cluster
            .server_acks
            .remove(&id.0)
            .ok_or(ServerError::UnknownAck)?;
        cluster.tell(Outbound::Reply {
            to: &to,
            answer: &Answer::ServerSideAck(values),
        });
        Ok(())
    }

    // ----- hooks of the local operations -----

    /// After a local broadcast: tell the other nodes.
    pub(super) fn cluster_broadcast<A: Serialize + ?Sized>(
        &mut self,
        to: &Broadcast,
        event: &str,
        args: &A,
    ) -> Result<(), ServerError> {
        if to.local || self.cluster.is_none() {
            return Ok(());
        }
        let values = arg_values(args)?;
        let cluster = self.cluster.as_mut().expect("checked");
        cluster.tell(broadcast_op(to, event, &values, None));
        Ok(())
    }

    /// After a local broadcast with acknowledgements `bid`: ask the other
    /// nodes too, and wait for them.
    pub(super) fn cluster_broadcast_with_ack<A: Serialize + ?Sized>(
        &mut self,
        to: &Broadcast,
        event: &str,
        args: &A,
        bid: u64,
        timeout: Duration,
    ) -> Result<(), ServerError> {
        if to.local || self.cluster.is_none() {
            return Ok(());
        }
        let values = arg_values(args)?;
        let cluster = self.cluster.as_mut().expect("checked");
        // python-socketio asks for callbacks only from one socket: the
        // answer is one acknowledgement, from whichever node has it.
        let single = cluster.format.acks_from_one_socket();
        let told = cluster.tell(broadcast_op(to, event, &values, Some((bid, timeout))));
        if !told {
            return Ok(());
        }
        let mut wait = NodeWait::default();
        if single {
            wait.nodes = Some(0);
            wait.acks_expected = 1;
        } else {
            cluster.count(&to.nsp, Counting::BroadcastAck(bid));
        }
        if let Some(state) = self.broadcast_acks.get_mut(&bid) {
            state.remote = Some(wait);
        }
        Ok(())
    }

    /// After `close_room`: tell the other nodes.
    pub(super) fn cluster_close_room(&mut self, nsp: &Str, room: &Str) {
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.tell(Outbound::CloseRoom { nsp, room });
        }
    }

    /// A namespace was created or dropped here: some formats listen per
    /// namespace.
    pub(super) fn cluster_namespace(&mut self, nsp: &Str, created: bool) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if cluster.config.write_only {
            return;
        }
        let mut out = Vec::new();
        if let Some(namespace) = self.namespaces.get_mut(nsp) {
            match cluster.format.room_channels() {
                Some(own_ids) if created => namespace.adapter.track_rooms(own_ids),
                // Going away: what its rooms did last still counts.
                Some(_) => {
                    for (room, created) in namespace.adapter.take_room_changes() {
                        cluster
                            .format
                            .room_subscription(nsp, &room, created, &mut out);
                    }
                }
                None => {}
            }
        }
        // "/" is subscribed for the node's whole life.
        if nsp != "/" {
            cluster.format.subscriptions(nsp, created, &mut out);
        }
        for command in out {
            cluster.push(command);
        }
    }

    /// A client answered broadcast `bid` that a remote node asked for.
    pub(super) fn cluster_reply_ack(&mut self, to: &ReplyTo, sid: &Str, args: &Args) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let values = match args.to_values() {
            Ok(values) => values,
            Err(err) => {
                tracing::debug!(%sid, %err, "acknowledgement not relayed: invalid arguments");
                return;
            }
        };
        cluster.tell(Outbound::Reply {
            to,
            answer: &Answer::Ack {
                sid: Some(sid.clone()),
                args: values,
            },
        });
    }

    /// Tell a remote asker how many clients were asked (formats that
    /// want it).
    pub(super) fn cluster_reply_count(&mut self, to: &ReplyTo, receivers: usize) {
        if let (Some(cluster), ReplyTo::Node { .. }) = (self.cluster.as_mut(), to) {
            cluster.tell(Outbound::Reply {
                to,
                answer: &Answer::ClientCount(receivers as u64),
            });
        }
    }

    /// Whether a broadcast's acknowledgements are all in (here and on the
    /// other nodes).
    pub(super) fn check_broadcast_ack(&mut self, bid: u64) {
        let done = self.broadcast_acks.get(&bid).is_some_and(|b| {
            b.remaining.is_empty() && b.remote.as_ref().map_or(true, NodeWait::done)
        });
        if done {
            self.finish_broadcast_ack(bid, BroadcastAckOutcome::Complete);
        }
    }

    fn check_request(&mut self, id: u64) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if cluster.requests.get(&id).is_some_and(|r| r.wait.done()) {
            self.finish_request(id, true);
        }
    }

    pub(super) fn finish_request(&mut self, id: u64, complete: bool) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let Some(request) = cluster.requests.remove(&id) else {
            return;
        };
        self.timers.cancel(Some(request.timer));
        self.events.push_back(ServerEvent::ClusterReply {
            id: ClusterRequestId(id),
            complete,
            reply: request.reply,
        });
    }

    fn start_request<'a>(
        &mut self,
        now: Instant,
        nsp: &Str,
        reply: ClusterReply,
        local_only: bool,
        op: impl FnOnce(u64) -> Outbound<'a>,
    ) -> Result<ClusterRequestId, ServerError> {
        let Some(cluster) = self.cluster.as_mut().filter(|_| !local_only) else {
            let id = self.next_broadcast_ack;
            self.next_broadcast_ack += 1;
            self.events.push_back(ServerEvent::ClusterReply {
                id: ClusterRequestId(id),
                complete: true,
                reply,
            });
            return Ok(ClusterRequestId(id));
        };
        if cluster.requests.len() >= cluster.config.max_pending_requests {
            return Err(ServerError::TooManyRequests {
                limit: cluster.config.max_pending_requests,
            });
        }
        // Request ids share the broadcast-ack counter: unique per node.
        let id = self.next_broadcast_ack;
        self.next_broadcast_ack += 1;
        let timer = self.timers.schedule(
            now + cluster.config.request_timeout,
            Timer::ClusterRequest { id },
        );
        let mut wait = NodeWait::default();
        if !cluster.tell(op(id)) {
            wait.nodes = Some(0);
        } else if !cluster.count(nsp, Counting::Request(id)) {
            // No way to count the nodes: wait for the deadline.
        }
        cluster
            .requests
            .insert(id, PendingRequest { reply, wait, timer });
        self.check_request(id);
        Ok(ClusterRequestId(id))
    }

    fn local_sockets(&self, nsp: &Str, selector: &RoomSelector) -> Vec<RemoteSocket> {
        let Some(namespace) = self.namespaces.get(nsp) else {
            return Vec::new();
        };
        namespace
            .adapter
            .select(selector)
            .into_iter()
            .filter(|sid| {
                self.sockets
                    .get(sid)
                    .is_some_and(|s| s.phase.is_connected())
            })
            .map(|sid| RemoteSocket {
                rooms: namespace.adapter.rooms_of(&sid),
                id: sid,
                data: Value::Null,
            })
            .collect()
    }

    fn local_sockets_join(&mut self, nsp: &Str, selector: &RoomSelector, rooms: &[Str]) {
        if let Some(namespace) = self.namespaces.get_mut(nsp) {
            for sid in namespace.adapter.select(selector) {
                for room in rooms {
                    namespace.adapter.join(&sid, room);
                }
            }
        }
    }

    fn local_sockets_leave(&mut self, nsp: &Str, selector: &RoomSelector, rooms: &[Str]) {
        if let Some(namespace) = self.namespaces.get_mut(nsp) {
            for sid in namespace.adapter.select(selector) {
                for room in rooms {
                    namespace.adapter.leave(&sid, room);
                }
            }
        }
    }

    fn local_disconnect(&mut self, now: Instant, nsp: &Str, selector: &RoomSelector, close: bool) {
        let Some(namespace) = self.namespaces.get(nsp) else {
            return;
        };
        for sid in namespace.adapter.select(selector) {
            let result = if close {
                match self.sockets.get(&sid).map(|s| s.eio.clone()) {
                    Some(eio) => {
                        // As the reference's `disconnect(true)`: each socket
                        // of the connection gets DISCONNECT first (its
                        // client sees a server disconnect, not a lost
                        // transport), then the connection closes.
                        let sockets: Vec<Str> = self
                            .sessions
                            .get(&eio)
                            .map(|s| s.sockets.values().cloned().collect())
                            .unwrap_or_default();
                        for socket in sockets {
                            // A pending socket has nothing to be told.
                            let _ = self.disconnect(now, &socket);
                        }
                        self.close_session(now, &eio)
                    }
                    None => Ok(()),
                }
            } else {
                self.disconnect(now, &sid)
            };
            if let Err(err) = result {
                tracing::debug!(%sid, %err, "disconnect by selection skipped a socket");
            }
        }
    }

    fn on_inbound(&mut self, now: Instant, inbound: Inbound) {
        match inbound {
            Inbound::Broadcast {
                nsp,
                selector,
                volatile,
                event,
                args,
                ack,
                timeout,
            } => {
                let to = Broadcast {
                    nsp,
                    selector,
                    volatile,
                    local: true,
                };
                let result = match ack {
                    None => self.broadcast(now, &to, &event, &Spread(&args)).map(|_| ()),
                    Some(reply) => self.remote_broadcast_with_ack(
                        now,
                        &to,
                        &event,
                        &Spread(&args),
                        reply,
                        timeout,
                    ),
                };
                if let Err(err) = result {
                    tracing::debug!(%err, "remote broadcast not delivered");
                }
            }
            Inbound::Join {
                nsp,
                selector,
                rooms,
            } => self.local_sockets_join(&nsp, &selector, &rooms),
            Inbound::Leave {
                nsp,
                selector,
                rooms,
            } => self.local_sockets_leave(&nsp, &selector, &rooms),
            Inbound::Disconnect {
                nsp,
                selector,
                close,
            } => self.local_disconnect(now, &nsp, &selector, close),
            Inbound::CloseRoom { nsp, room } => self.local_close_room(&nsp, &room),
            Inbound::FetchSockets {
                nsp,
                selector,
                reply,
            } => {
                let sockets = self.local_sockets(&nsp, &selector);
                if let Some(cluster) = self.cluster.as_mut() {
                    cluster.tell(Outbound::Reply {
                        to: &reply,
                        answer: &Answer::Sockets(sockets),
                    });
                }
            }
            Inbound::AllRooms { nsp, reply } => {
                let rooms = self
                    .namespaces
                    .get(&nsp)
                    .map(|n| n.adapter.all_rooms())
                    .unwrap_or_default();
                if let Some(cluster) = self.cluster.as_mut() {
                    cluster.tell(Outbound::Reply {
                        to: &reply,
                        answer: &Answer::Rooms(rooms),
                    });
                }
            }
            Inbound::ServerSideEmit {
                nsp,
                event,
                args,
                reply,
            } => {
                let ack = reply.and_then(|reply| {
                    let cluster = self.cluster.as_mut()?;
                    let id = cluster.next_server_ack;
                    cluster.next_server_ack += 1;
                    cluster.server_acks.insert(id, reply);
                    // Bounded like the clients' unanswered acks.
                    while cluster.server_acks.len() > self.config.max_unanswered_acks {
                        cluster.server_acks.pop_first();
                    }
                    Some(ServerAckId(id))
                });
                self.events.push_back(ServerEvent::ServerSideEmit {
                    nsp,
                    event,
                    args: Args::from_values(args),
                    ack,
                });
            }
            Inbound::Answer { request, answer } => self.on_answer(request, answer),
        }
    }

    fn on_answer(&mut self, request: u64, answer: Answer) {
        if self.broadcast_acks.contains_key(&request) {
            let state = self.broadcast_acks.get_mut(&request).expect("checked");
            let Some(wait) = state.remote.as_mut() else {
                return;
            };
            match answer {
                Answer::ClientCount(count) => {
                    wait.answered += 1;
                    wait.acks_expected += count;
                }
                Answer::Ack { sid, args } => {
                    wait.acks_received += 1;
                    state
                        .responses
                        .push((sid.unwrap_or_default(), Args::from_values(args)));
                }
                _ => return,
            }
            self.check_broadcast_ack(request);
            return;
        }
        let Some(pending) = self
            .cluster
            .as_mut()
            .and_then(|c| c.requests.get_mut(&request))
        else {
            tracing::debug!(request, "answer to an unknown or finished request ignored");
            return;
        };
        match (&mut pending.reply, answer) {
            (ClusterReply::Sockets(all), Answer::Sockets(sockets)) => all.extend(sockets),
            (ClusterReply::Rooms(all), Answer::Rooms(rooms)) => {
                for room in rooms {
                    if !all.contains(&room) {
                        all.push(room);
                    }
                }
            }
            (ClusterReply::ServerSideAcks(all), Answer::ServerSideAck(args)) => {
                all.push(Args::from_values(args))
            }
            _ => {
                tracing::debug!(request, "answer of the wrong kind ignored");
                return;
            }
        }
        pending.wait.answered += 1;
        self.check_request(request);
    }

    /// A request's deadline passed.
    pub(super) fn on_request_timeout(&mut self, id: u64) {
        if self
            .cluster
            .as_ref()
            .is_some_and(|c| c.requests.contains_key(&id))
        {
            self.finish_request(id, false);
        }
    }
}

#[cfg(test)]
mod tests;
