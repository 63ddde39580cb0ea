//! The seam between nodes in virtual time: a few servers whose bus
//! commands are relayed to each other by hand, as a broker would.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::super::{Broadcast, EngineCommand, Server, ServerConfig, ServerEvent};
use super::{ClusterConfig, ClusterFormat, ClusterReply, ClusterRequestId};
use crate::cluster::{BusCommand, BusInput, ChannelKind, StreamEntry};
use crate::engine::Message;
use crate::{Bytes, Str};

mod streams;

/// Nodes on one bus: every publish reaches every subscriber of the
/// channel, the publisher included (as Redis does); streams and keys as
/// Redis keeps them.
struct Bus {
    nodes: Vec<Server>,
    /// Per node: channels (or patterns) and how they were subscribed.
    subscriptions: Vec<Vec<(Str, ChannelKind)>>,
    now: Instant,
    /// Streams' entries, trimmed exactly to `MAXLEN`.
    streams: BTreeMap<Str, Vec<StreamEntry>>,
    /// The last id given (milliseconds part; sequence 0 each time).
    last_id: u64,
    /// Per node: the streams it follows.
    follows: Vec<BTreeSet<Str>>,
    /// Per node: entries read but not yet handed over (its follower is
    /// `lagging`).
    lagging: Vec<Option<VecDeque<(Str, StreamEntry)>>>,
    keys: BTreeMap<Str, Bytes>,
}

/// Redis's glob subset the Node adapter uses: `*` and `\` escapes.
fn glob(pattern: &str, channel: &str) -> bool {
    let (p, c): (Vec<char>, Vec<char>) = (pattern.chars().collect(), channel.chars().collect());
    fn go(p: &[char], c: &[char]) -> bool {
        match p {
            [] => c.is_empty(),
            ['*', rest @ ..] => (0..=c.len()).any(|i| go(rest, &c[i..])),
            ['\\', x, rest @ ..] | [x, rest @ ..] => c.first() == Some(x) && go(rest, &c[1..]),
        }
    }
    go(&p, &c)
}

fn listens(subscriptions: &[(Str, ChannelKind)], channel: &str, sharded: bool) -> bool {
    subscriptions.iter().any(|(sub, kind)| match kind {
        ChannelKind::Pattern => !sharded && glob(sub, channel),
        ChannelKind::Plain => !sharded && sub == channel,
        ChannelKind::Sharded => sharded && sub == channel,
    })
}

impl Bus {
    fn new(count: usize, format: ClusterFormat) -> Bus {
        Bus::with_config(count, format, ServerConfig::default())
    }

    fn with_config(count: usize, format: ClusterFormat, config: ServerConfig) -> Bus {
        let nodes = (0..count)
            .map(|i| {
                let mut server = Server::new(
                    config.clone(),
                    crate::parser::JsonParser,
                    Box::new(ChaCha8Rng::seed_from_u64(i as u64 + 1)),
                );
                server.enable_cluster(ClusterConfig::new(format.clone()));
                server
            })
            .collect();
        let mut bus = Bus {
            nodes,
            subscriptions: vec![Vec::new(); count],
            now: Instant::now(),
            streams: BTreeMap::new(),
            last_id: 1_700_000_000_000,
            follows: vec![BTreeSet::new(); count],
            lagging: vec![None; count],
            keys: BTreeMap::new(),
        };
        bus.relay();
        bus
    }

    /// Deliver every queued command until the bus is quiet.
    fn relay(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some(command) = self.nodes[i].poll_bus() {
                    moved = true;
                    match command {
                        BusCommand::Subscribe { channel, kind } => {
                            self.subscriptions[i].push((channel, kind));
                        }
                        BusCommand::Unsubscribe { channel, kind } => {
                            self.subscriptions[i].retain(|c| *c != (channel.clone(), kind))
                        }
                        BusCommand::Publish {
                            channel,
                            payload,
                            sharded,
                        } => {
                            for j in 0..self.nodes.len() {
                                if listens(&self.subscriptions[j], &channel, sharded) {
                                    let input = BusInput::Message {
                                        channel: channel.clone(),
                                        payload: payload.clone(),
                                    };
                                    self.nodes[j].handle_bus(self.now, input);
                                }
                            }
                        }
                        BusCommand::CountSubscribers { channel, sharded } => {
                            // NUMSUB counts plain subscriptions only.
                            let kind = if sharded {
                                ChannelKind::Sharded
                            } else {
                                ChannelKind::Plain
                            };
                            let count = self
                                .subscriptions
                                .iter()
                                .filter(|s| s.contains(&(channel.clone(), kind)))
                                .count();
                            let input = BusInput::Subscribers {
                                channel,
                                count: count as u64,
                            };
                            self.nodes[i].handle_bus(self.now, input);
                        }
                        command => self.stream_or_key(i, command),
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// The commands on streams and keys, as Redis answers them: an
    /// appended entry reaches the followers before its appender's answer
    /// (they read on other connections).
    fn stream_or_key(&mut self, i: usize, command: BusCommand) {
        let now = self.now;
        match command {
            BusCommand::StreamAppend {
                stream,
                fields,
                max_len,
                token,
            } => {
                self.last_id += 1;
                let entry = StreamEntry {
                    id: Str::from(format!("{}-0", self.last_id)),
                    fields,
                };
                let entries = self.streams.entry(stream.clone()).or_default();
                entries.push(entry.clone());
                if let Some(max) = max_len {
                    let excess = entries.len().saturating_sub(max as usize);
                    entries.drain(..excess);
                }
                for j in 0..self.nodes.len() {
                    if !self.follows[j].contains(&stream) {
                        continue;
                    }
                    match &mut self.lagging[j] {
                        Some(queue) => queue.push_back((stream.clone(), entry.clone())),
                        None => self.nodes[j].handle_bus(
                            now,
                            BusInput::StreamEntry {
                                stream: stream.clone(),
                                entry: entry.clone(),
                            },
                        ),
                    }
                }
                let input = BusInput::StreamAppended {
                    token,
                    id: Some(entry.id),
                };
                self.nodes[i].handle_bus(now, input);
            }
            BusCommand::StreamFollow { stream, from } => {
                assert_eq!(from, None, "the format follows new entries only");
                self.follows[i].insert(stream);
            }
            BusCommand::StreamUnfollow { stream } => {
                self.follows[i].remove(&stream);
            }
            BusCommand::StreamRange {
                stream,
                start,
                end,
                count,
                token,
            } => {
                let id = |s: &str| -> u64 { s.split('-').next().unwrap().parse().unwrap() };
                let (lo, hi) = (
                    if &*start == "-" { 0 } else { id(&start) },
                    if &*end == "+" { u64::MAX } else { id(&end) },
                );
                let entries: Vec<StreamEntry> = self
                    .streams
                    .get(&stream)
                    .into_iter()
                    .flatten()
                    .filter(|e| (lo..=hi).contains(&id(&e.id)))
                    .take(count.map_or(usize::MAX, |c| c as usize))
                    .cloned()
                    .collect();
                let input = BusInput::StreamRange {
                    token,
                    entries: Some(entries),
                };
                self.nodes[i].handle_bus(now, input);
            }
            BusCommand::SetKey { key, value, ttl } => {
                assert!(ttl.is_some(), "sessions expire");
                self.keys.insert(key, value);
            }
            BusCommand::TakeKey { key, token } => {
                let value = self.keys.remove(&key);
                self.nodes[i].handle_bus(now, BusInput::KeyTaken { token, value });
            }
            other => unreachable!("handled by relay: {other:?}"),
        }
    }

    /// Node `i`'s follower falls behind (`true`) or catches up.
    fn lag(&mut self, i: usize, lagging: bool) {
        if lagging {
            self.lagging[i].get_or_insert_with(VecDeque::new);
            return;
        }
        for (stream, entry) in self.lagging[i].take().unwrap_or_default() {
            let now = self.now;
            self.nodes[i].handle_bus(now, BusInput::StreamEntry { stream, entry });
        }
        self.relay();
    }

    /// A client on node `i` connects to `/`; returns its socket id.
    fn connect(&mut self, i: usize, eio: &'static str) -> Str {
        let node = &mut self.nodes[i];
        node.handle_engine_open(self.now, Str::from_static(eio));
        node.handle_engine_message(self.now, eio, Message::Text(Str::from_static("0")));
        let socket = match node.poll_event() {
            Some(ServerEvent::Connect { socket, .. }) => socket,
            other => panic!("expected a connect, got {other:?}"),
        };
        node.accept(self.now, &socket).unwrap();
        self.texts(i);
        socket
    }

    /// What node `i` sent its clients, as Socket.IO packet texts.
    fn texts(&mut self, i: usize) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(command) = self.nodes[i].poll_command() {
            if let EngineCommand::Send {
                message: Message::Text(t),
                ..
            } = command
            {
                out.push(t.to_string());
            }
        }
        out
    }

    fn events(&mut self, i: usize) -> Vec<ServerEvent> {
        std::iter::from_fn(|| self.nodes[i].poll_event()).collect()
    }
}

#[test]
fn python_broadcasts_reach_every_node_once() {
    let mut bus = Bus::new(3, ClusterFormat::python());
    let sockets: Vec<Str> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, eio)| bus.connect(i, eio))
        .collect();
    bus.nodes[0].join(&sockets[0], "room").unwrap();
    bus.nodes[2].join(&sockets[2], "room").unwrap();
    let now = bus.now;
    bus.nodes[1]
        .broadcast(now, &Broadcast::namespace("/"), "all", &(1, "x"))
        .unwrap();
    bus.relay();
    for i in 0..3 {
        assert_eq!(
            bus.texts(i),
            vec![r#"2["all",1,"x"]"#.to_owned()],
            "node {i}"
        );
    }
    bus.nodes[1]
        .broadcast(now, &Broadcast::namespace("/").to("room"), "room", &())
        .unwrap();
    bus.relay();
    assert_eq!(bus.texts(0), vec![r#"2["room"]"#.to_owned()]);
    assert!(bus.texts(1).is_empty());
    assert_eq!(bus.texts(2), vec![r#"2["room"]"#.to_owned()]);
    // Except a socket id (python's skip_sid).
    let except = Broadcast::namespace("/").except(sockets[2].clone());
    bus.nodes[0].broadcast(now, &except, "skip", &()).unwrap();
    bus.relay();
    assert_eq!(bus.texts(0).len(), 1);
    assert_eq!(bus.texts(1).len(), 1);
    assert!(bus.texts(2).is_empty());
    // Local only.
    let local = Broadcast::namespace("/").local();
    bus.nodes[0].broadcast(now, &local, "here", &()).unwrap();
    bus.relay();
    assert_eq!(bus.texts(0).len(), 1);
    assert!(bus.texts(1).is_empty() && bus.texts(2).is_empty());
}

#[test]
fn python_rooms_and_disconnects_act_on_remote_sockets() {
    let mut bus = Bus::new(2, ClusterFormat::python());
    let a = bus.connect(0, "a");
    let b = bus.connect(1, "b");
    let to_b = Broadcast::namespace("/").to(b.clone());
    bus.nodes[0].sockets_join(&to_b, &[Str::from("r")]).unwrap();
    bus.relay();
    assert!(bus.nodes[1].rooms(&b).unwrap().contains(&Str::from("r")));
    bus.nodes[0]
        .sockets_leave(&to_b, &[Str::from("r")])
        .unwrap();
    bus.relay();
    assert!(!bus.nodes[1].rooms(&b).unwrap().contains(&Str::from("r")));
    bus.nodes[1].join(&b, "closing").unwrap();
    bus.nodes[0].close_room("/", "closing");
    bus.relay();
    assert!(!bus.nodes[1]
        .rooms(&b)
        .unwrap()
        .contains(&Str::from("closing")));
    let now = bus.now;
    bus.nodes[0].disconnect_sockets(now, &to_b, false).unwrap();
    bus.relay();
    assert_eq!(bus.texts(1), vec!["1".to_owned()]);
    assert!(matches!(
        bus.events(1).as_slice(),
        [ServerEvent::Disconnect { socket, .. }] if *socket == b
    ));
    assert!(bus.nodes[0].is_connected(&a).unwrap());
}

#[test]
fn python_callbacks_come_back_from_the_node_that_has_the_socket() {
    let mut bus = Bus::new(2, ClusterFormat::python());
    bus.connect(0, "a");
    let b = bus.connect(1, "b");
    let now = bus.now;
    let to_b = Broadcast::namespace("/").to(b.clone());
    let started = bus.nodes[0]
        .broadcast_with_ack(now, &to_b, "question", &("q",), Duration::from_secs(5))
        .unwrap();
    assert_eq!(started.receivers, 0);
    bus.relay();
    let sent = bus.texts(1);
    assert_eq!(sent.len(), 1);
    let id: String = sent[0][1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(&sent[0][1 + id.len()..], r#"["question","q"]"#);
    bus.nodes[1].handle_engine_message(
        now,
        "b",
        Message::Text(format!("3{id}[\"answer\",7]").into()),
    );
    assert!(
        bus.events(1).is_empty(),
        "a remote ack is not the application's"
    );
    bus.relay();
    match bus.events(0).as_slice() {
        [ServerEvent::BroadcastAck {
            id,
            outcome,
            responses,
        }] => {
            assert_eq!(*id, started.id);
            assert_eq!(*outcome, super::BroadcastAckOutcome::Complete);
            assert_eq!(responses.len(), 1);
            assert_eq!(responses[0].0, b);
            assert_eq!(
                serde_json::to_string(&responses[0].1).unwrap(),
                r#"["answer",7]"#
            );
        }
        other => panic!("expected the broadcast's answers, got {other:?}"),
    }
}

#[test]
fn python_requests_it_cannot_express_finish_locally() {
    let mut bus = Bus::new(2, ClusterFormat::python());
    let a = bus.connect(0, "a");
    bus.connect(1, "b");
    let now = bus.now;
    let id = bus.nodes[0]
        .fetch_sockets(now, &Broadcast::namespace("/"))
        .unwrap();
    bus.relay();
    match bus.events(0).as_slice() {
        [ServerEvent::ClusterReply {
            id: got,
            complete: true,
            reply: ClusterReply::Sockets(sockets),
        }] => {
            assert_eq!(*got, id);
            assert_eq!(sockets.len(), 1);
            assert_eq!(sockets[0].id, a);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn hostile_bus_messages_are_ignored() {
    let mut bus = Bus::new(1, ClusterFormat::python());
    bus.connect(0, "a");
    let now = bus.now;
    for payload in [
        &b"not json"[..],
        b"{}",
        b"{\"method\": \"emit\"}",
        b"{\"method\": \"emit\", \"event\": \"x\", \"data\": [], \"binary\": true}",
        b"{\"method\": \"frobnicate\"}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ] {
        bus.nodes[0].handle_bus(
            now,
            BusInput::Message {
                channel: Str::from_static("socketio"),
                payload: crate::Bytes::copy_from_slice(payload),
            },
        );
    }
    let deep = "[".repeat(100_000);
    bus.nodes[0].handle_bus(
        now,
        BusInput::Message {
            channel: Str::from_static("socketio"),
            payload: crate::Bytes::from(deep),
        },
    );
    assert!(bus.texts(0).is_empty());
    assert!(bus.events(0).is_empty());
}

/// The Node formats: the redis-adapter's (classic and sharded) and the
/// streams adapter's.
fn node_formats() -> [ClusterFormat; 3] {
    [
        ClusterFormat::node(),
        ClusterFormat::Node {
            prefix: Str::from_static("socket.io"),
            sharded: true,
        },
        ClusterFormat::streams(),
    ]
}

#[test]
fn node_broadcasts_reach_every_node_once() {
    for format in node_formats() {
        let mut bus = Bus::new(3, format.clone());
        let sockets: Vec<Str> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, eio)| bus.connect(i, eio))
            .collect();
        bus.nodes[0].join(&sockets[0], "room").unwrap();
        bus.nodes[2].join(&sockets[2], "room").unwrap();
        bus.relay();
        let now = bus.now;
        bus.nodes[1]
            .broadcast(now, &Broadcast::namespace("/"), "all", &(1, "x"))
            .unwrap();
        bus.relay();
        for i in 0..3 {
            assert_eq!(
                bus.texts(i),
                vec![r#"2["all",1,"x"]"#.to_owned()],
                "{format:?} node {i}"
            );
        }
        // One room: the sharded adapter's room channel, which the nodes
        // with members listen on.
        bus.nodes[1]
            .broadcast(now, &Broadcast::namespace("/").to("room"), "room", &())
            .unwrap();
        bus.relay();
        assert_eq!(bus.texts(0), vec![r#"2["room"]"#.to_owned()], "{format:?}");
        assert!(bus.texts(1).is_empty());
        assert_eq!(bus.texts(2), vec![r#"2["room"]"#.to_owned()], "{format:?}");
        // Except a room, across nodes.
        let except = Broadcast::namespace("/").except("room");
        bus.nodes[0].broadcast(now, &except, "skip", &()).unwrap();
        bus.relay();
        assert!(
            bus.texts(0).is_empty() && bus.texts(2).is_empty(),
            "{format:?}"
        );
        assert_eq!(bus.texts(1).len(), 1, "{format:?}");
    }
}

#[test]
fn node_broadcast_acks_count_every_node_and_client() {
    for format in node_formats() {
        let mut bus = Bus::new(3, format.clone());
        let sockets: Vec<Str> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, eio)| bus.connect(i, eio))
            .collect();
        let now = bus.now;
        let started = bus.nodes[0]
            .broadcast_with_ack(
                now,
                &Broadcast::namespace("/"),
                "q",
                &(),
                Duration::from_secs(5),
            )
            .unwrap();
        bus.relay();
        for (i, eio) in ["a", "b", "c"].iter().enumerate() {
            let sent = bus.texts(i);
            assert_eq!(sent.len(), 1, "{format:?} node {i}");
            let id: String = sent[0][1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            bus.nodes[i].handle_engine_message(
                now,
                eio,
                Message::Text(format!("3{id}[{i}]").into()),
            );
            bus.relay();
        }
        match bus.events(0).as_slice() {
            [ServerEvent::BroadcastAck {
                id,
                outcome,
                responses,
            }] => {
                assert_eq!(*id, started.id);
                assert_eq!(*outcome, super::BroadcastAckOutcome::Complete, "{format:?}");
                let mut answers: Vec<String> = responses
                    .iter()
                    .map(|(_, a)| serde_json::to_string(a).unwrap())
                    .collect();
                answers.sort();
                assert_eq!(answers, ["[0]", "[1]", "[2]"], "{format:?}");
                assert_eq!(
                    responses.iter().filter(|(s, _)| *s == sockets[0]).count(),
                    1
                );
            }
            other => panic!("{format:?}: expected the answers, got {other:?}"),
        }
    }
}

#[test]
fn node_requests_gather_every_node() {
    for format in node_formats() {
        let mut bus = Bus::new(3, format.clone());
        let sockets: Vec<Str> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, eio)| bus.connect(i, eio))
            .collect();
        let now = bus.now;
        // Join by selection on another node, then fetch across the cluster.
        let target = Broadcast::namespace("/").to(sockets[2].clone());
        bus.nodes[0]
            .sockets_join(&target, &[Str::from("r")])
            .unwrap();
        bus.relay();
        assert!(bus.nodes[2]
            .rooms(&sockets[2])
            .unwrap()
            .contains(&Str::from("r")));
        let id = bus.nodes[1]
            .fetch_sockets(now, &Broadcast::namespace("/").to("r"))
            .unwrap();
        bus.relay();
        match bus.events(1).as_slice() {
            [ServerEvent::ClusterReply {
                id: got,
                complete: true,
                reply: ClusterReply::Sockets(found),
            }] => {
                assert_eq!(*got, id);
                let ids: Vec<&Str> = found.iter().map(|s| &s.id).collect();
                assert_eq!(ids, [&sockets[2]], "{format:?}");
            }
            other => panic!("{format:?}: {other:?}"),
        }
        // Server-side emit with answers from the two others.
        let id = bus.nodes[0]
            .server_side_emit_with_ack(now, &Str::from_static("/"), "ping", &("p",))
            .unwrap();
        bus.relay();
        for i in 1..3 {
            match bus.events(i).as_slice() {
                [ServerEvent::ServerSideEmit {
                    event,
                    ack: Some(ack),
                    ..
                }] => {
                    assert_eq!(event, "ping");
                    bus.nodes[i].server_side_ack(*ack, &(i,)).unwrap();
                }
                other => panic!("{format:?}: {other:?}"),
            }
            bus.relay();
        }
        match bus.events(0).as_slice() {
            [ServerEvent::ClusterReply {
                id: got,
                complete: true,
                reply: ClusterReply::ServerSideAcks(acks),
            }] => {
                assert_eq!(*got, id);
                assert_eq!(acks.len(), 2, "{format:?}");
            }
            other => panic!("{format:?}: {other:?}"),
        }
        // Disconnect by selection on another node.
        let target = Broadcast::namespace("/").to(sockets[1].clone());
        bus.nodes[0]
            .disconnect_sockets(now, &target, false)
            .unwrap();
        bus.relay();
        assert_eq!(bus.texts(1), vec!["1".to_owned()], "{format:?}");
        let id = bus.nodes[0]
            .server_count(now, &Str::from_static("/"))
            .unwrap();
        bus.relay();
        assert!(
            matches!(bus.events(0).as_slice(), [ServerEvent::ClusterReply { id: got, reply: ClusterReply::ServerCount(3), .. }] if *got == id),
            "{format:?}"
        );
    }
}

#[test]
fn requests_finish_at_their_deadline_when_a_node_is_silent() {
    let mut bus = Bus::new(2, ClusterFormat::node());
    bus.connect(0, "a");
    let now = bus.now;
    // Node 1 counts as a subscriber but never answers (it died after
    // subscribing): the request ends at its deadline with what came.
    bus.nodes.truncate(1);
    let subscribed = bus.subscriptions[1].clone();
    bus.subscriptions.truncate(1);
    let id = bus.nodes[0]
        .server_side_emit_with_ack(now, &Str::from_static("/"), "ping", &())
        .unwrap();
    while let Some(command) = bus.nodes[0].poll_bus() {
        if let BusCommand::CountSubscribers { channel, .. } = command {
            let count = 1 + subscribed.iter().filter(|(c, _)| *c == channel).count() as u64;
            bus.nodes[0].handle_bus(now, BusInput::Subscribers { channel, count });
        }
    }
    assert!(bus.events(0).is_empty(), "waits for the silent node");
    let deadline = bus.nodes[0].poll_timeout().expect("a deadline");
    assert!(deadline <= now + Duration::from_secs(5));
    bus.nodes[0].handle_timeout(deadline);
    assert!(matches!(
        bus.events(0).as_slice(),
        [ServerEvent::ClusterReply { id: got, complete: false, .. }] if *got == id
    ));
}

#[test]
fn counts_are_matched_by_channel() {
    let mut bus = Bus::new(3, ClusterFormat::node());
    bus.connect(0, "a");
    let now = bus.now;
    let root = bus.nodes[0]
        .server_count(now, &Str::from_static("/"))
        .unwrap();
    let chat = bus.nodes[0]
        .server_count(now, &Str::from_static("/chat"))
        .unwrap();
    let asked: Vec<Str> = std::iter::from_fn(|| bus.nodes[0].poll_bus())
        .filter_map(|command| match command {
            BusCommand::CountSubscribers { channel, .. } => Some(channel),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 2);
    // Answered out of order (as after a reconnection, when the backend
    // asks one of them again): each still reaches its own request, and
    // an answer nobody waits for is ignored.
    for (channel, count) in [(&asked[1], 2), (&asked[0], 3), (&asked[0], 9)] {
        let input = BusInput::Subscribers {
            channel: channel.clone(),
            count,
        };
        bus.nodes[0].handle_bus(now, input);
    }
    let mut counts: Vec<(ClusterRequestId, u64)> = bus
        .events(0)
        .into_iter()
        .filter_map(|event| match event {
            ServerEvent::ClusterReply {
                id,
                complete: true,
                reply: ClusterReply::ServerCount(n),
            } => Some((id, n)),
            _ => None,
        })
        .collect();
    counts.sort();
    let mut want = vec![(root, 3), (chat, 2)];
    want.sort();
    assert_eq!(counts, want);
}

#[test]
fn a_bus_outage_ends_requests_waiting_for_a_count_as_incomplete() {
    for format in node_formats() {
        let mut bus = Bus::new(2, format.clone());
        bus.connect(0, "a");
        let now = bus.now;
        let fetch = bus.nodes[0]
            .fetch_sockets(now, &Broadcast::namespace("/"))
            .unwrap();
        let count = bus.nodes[0]
            .server_count(now, &Str::from_static("/"))
            .unwrap();
        // The questions are asked, then the link drops before any answer.
        while bus.nodes[0].poll_bus().is_some() {}
        bus.nodes[0].handle_bus(now, BusInput::Down);
        let mut ended: Vec<(ClusterRequestId, bool)> = bus
            .events(0)
            .into_iter()
            .filter_map(|event| match event {
                ServerEvent::ClusterReply { id, complete, .. } => Some((id, complete)),
                _ => None,
            })
            .collect();
        ended.sort();
        let mut want = vec![(fetch, false), (count, false)];
        want.sort();
        assert_eq!(ended, want, "{format:?}");
        assert_eq!(
            bus.nodes[0].poll_timeout(),
            None,
            "{format:?}: nothing waits"
        );
    }
}

#[test]
fn disconnecting_with_close_tells_the_client_before_closing() {
    for format in node_formats() {
        let mut bus = Bus::new(2, format.clone());
        bus.connect(0, "a");
        let b = bus.connect(1, "b");
        let now = bus.now;
        let target = Broadcast::namespace("/").to(b.clone());
        bus.nodes[0].disconnect_sockets(now, &target, true).unwrap();
        bus.relay();
        let commands: Vec<EngineCommand> =
            std::iter::from_fn(|| bus.nodes[1].poll_command()).collect();
        match commands.as_slice() {
            [EngineCommand::Send {
                message: Message::Text(text),
                ..
            }, EngineCommand::Close { eio }] => {
                assert_eq!(text, "1", "{format:?}");
                assert_eq!(eio, "b");
            }
            other => panic!("{format:?}: {other:?}"),
        }
        assert!(matches!(
            bus.events(1).as_slice(),
            [ServerEvent::Disconnect { socket, reason, .. }]
                if *socket == b && *reason == crate::socket::DisconnectReason::ServerNamespaceDisconnect
        ));
    }
}
