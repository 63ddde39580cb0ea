//! End-to-end scenarios for every requirement of the Socket.IO layer: real
//! [`ClientEndpoint`]s against a real [`ServerEndpoint`] in virtual time,
//! over polling, WebSocket and upgrade, with the three wire formats.
//!
//! The [`Net`] harness moves bytes between the endpoints like a network
//! would, and can break it in the ways the scenarios need: refuse new
//! connections, cut both sides, cut only the client's side (the server
//! notices later or never), hold back the server's output to one client (a
//! slow reader), and restart the server.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::engine::{ClientTransports, Transmit};
use crate::fuzzing::FuzzRng;
use crate::parser::{AnyParser, CborParser, JsonParser, MsgPackParser};
use crate::socket::{
    AckFailure, AckOutcome, Broadcast, BroadcastAckOutcome, ClientEvent, NamespaceMatcher,
    RecoveryConfig, ServerEvent,
};
use crate::Value;

const ALL: [ClientTransports; 3] = [
    ClientTransports::Polling,
    ClientTransports::WebSocket,
    ClientTransports::Upgrade,
];

const PARSERS: [AnyParser; 3] = [
    AnyParser::Json(JsonParser),
    AnyParser::MsgPack(MsgPackParser),
    AnyParser::Cbor(CborParser),
];

/// Options of one scenario.
#[derive(Clone)]
struct Setup {
    transports: ClientTransports,
    parser: AnyParser,
    engine: engine::ServerConfig,
    socket: socket::ServerConfig,
    client: socket::ClientConfig,
}

impl Setup {
    fn new(transports: ClientTransports) -> Setup {
        Setup {
            transports,
            parser: AnyParser::Json(JsonParser),
            engine: engine::ServerConfig {
                ping_interval: Duration::from_millis(300),
                ping_timeout: Duration::from_millis(200),
                ..Default::default()
            },
            socket: socket::ServerConfig {
                namespaces: vec![NamespaceMatcher::Any],
                ..Default::default()
            },
            client: socket::ClientConfig::default(),
        }
    }

    fn parser(mut self, parser: AnyParser) -> Setup {
        self.parser = parser;
        self
    }

    fn recovery(mut self) -> Setup {
        self.socket.recovery = Some(RecoveryConfig::default());
        self
    }

    fn namespaces(mut self, namespaces: Vec<NamespaceMatcher>) -> Setup {
        self.socket.namespaces = namespaces;
        self
    }

    fn build(self) -> Net {
        let server = Net::make_server(&self, 0);
        Net {
            now: Instant::now(),
            setup: self,
            server,
            restarts: 0,
            server_events: Vec::new(),
            clients: Vec::new(),
            down: HashMap::new(),
            parked: BTreeSet::new(),
            auto_accept: true,
        }
    }
}

/// One client and its side of the network.
struct Peer {
    client: ClientEndpoint<AnyParser>,
    /// Every event with the time it was seen.
    events: Vec<(Instant, ClientEvent)>,
    /// Client connection to server connection.
    up: HashMap<ConnId, ConnId>,
    /// New connections fail (the server is unreachable for this client).
    refuse: bool,
    /// The server's output to this client is held back (a slow reader).
    stalled: bool,
    /// Everything the server wrote to this client, as written.
    wire: Vec<Bytes>,
}

struct Net {
    now: Instant,
    setup: Setup,
    server: ServerEndpoint<AnyParser>,
    restarts: u64,
    server_events: Vec<ServerEvent>,
    clients: Vec<Peer>,
    /// Server connection to its client and the client's connection id;
    /// absent when the client side is gone (output goes nowhere).
    down: HashMap<ConnId, (usize, ConnId)>,
    /// Server connections with output held back for a stalled client.
    parked: BTreeSet<ConnId>,
    /// Accept every CONNECT as soon as the server reports it.
    auto_accept: bool,
}

impl Net {
    fn make_server(setup: &Setup, restarts: u64) -> ServerEndpoint<AnyParser> {
        ServerEndpoint::new(
            setup.engine.clone(),
            setup.socket.clone(),
            setup.parser,
            Box::new(FuzzRng::new(100 + restarts * 1000)),
            Box::new(FuzzRng::new(200 + restarts * 1000)),
        )
    }

    /// A new client with the scenario's options; returns its index.
    fn add_client(&mut self) -> usize {
        let idx = self.clients.len() as u64;
        let mut seed = 1000 * (idx + 1);
        let rngs: RngFactory = Box::new(move || {
            seed += 1;
            Box::new(FuzzRng::new(seed)) as Box<dyn RngCore + Send>
        });
        let client = ClientEndpoint::new(
            engine::ClientConfig {
                host: "localhost".into(),
                transports: self.setup.transports,
                ..Default::default()
            },
            self.setup.client.clone(),
            self.setup.parser,
            rngs,
        );
        self.clients.push(Peer {
            client,
            events: Vec::new(),
            up: HashMap::new(),
            refuse: false,
            stalled: false,
            wire: Vec::new(),
        });
        self.clients.len() - 1
    }

    /// A new client joining `nsps` (no auth), settled.
    fn client_in(&mut self, nsps: &[&str]) -> usize {
        let i = self.add_client();
        for nsp in nsps {
            self.connect(i, nsp, None);
        }
        self.settle();
        i
    }

    fn connect(&mut self, i: usize, nsp: &str, auth: Option<Value>) {
        let now = self.now;
        let client = &mut self.clients[i].client;
        client.socket().connect(now, nsp, auth).unwrap();
        client.pump(now);
    }

    /// Run an application call on client `i`, then pump.
    fn on_client<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut socket::Client<AnyParser>, Instant) -> R,
    ) -> R {
        let now = self.now;
        let client = &mut self.clients[i].client;
        let r = f(client.socket(), now);
        client.pump(now);
        r
    }

    /// Run an application call on the server, then pump.
    fn on_server<R>(&mut self, f: impl FnOnce(&mut socket::Server<AnyParser>, Instant) -> R) -> R {
        let now = self.now;
        let r = f(self.server.socket(), now);
        self.server.pump(now);
        r
    }

    /// Exchange everything until both sides are quiet.
    fn drive(&mut self) {
        let now = self.now;
        for _ in 0..100_000 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                while let Some(action) = self.clients[i].client.poll_action() {
                    moved = true;
                    match action {
                        ClientAction::Connect(c) => {
                            if self.clients[i].refuse {
                                self.clients[i].client.handle_eof(now, c);
                            } else {
                                let s = self.server.handle_connection(now, None);
                                self.clients[i].up.insert(c, s);
                                self.down.insert(s, (i, c));
                                self.clients[i].client.handle_connected(now, c);
                            }
                        }
                        ClientAction::Data(c, bytes) => {
                            if let Some(&s) = self.clients[i].up.get(&c) {
                                self.server.handle_read(now, s, &bytes);
                            }
                        }
                        ClientAction::Close(c) => {
                            if let Some(s) = self.clients[i].up.remove(&c) {
                                self.down.remove(&s);
                                self.server.handle_eof(now, s);
                            }
                        }
                    }
                }
            }
            while let Some(s) = self.server.poll_ready() {
                self.parked.insert(s);
            }
            let mut pulled = false;
            for s in std::mem::take(&mut self.parked) {
                if let Some(&(i, _)) = self.down.get(&s) {
                    if self.clients[i].stalled {
                        self.parked.insert(s);
                        continue;
                    }
                }
                while let Some(t) = self.server.poll_transmit(s) {
                    moved = true;
                    pulled = true;
                    match (t, self.down.get(&s).copied()) {
                        (Transmit::Data(bytes), Some((i, c))) => {
                            self.clients[i].wire.push(bytes.clone());
                            self.clients[i].client.handle_read(now, c, &bytes);
                        }
                        (Transmit::Close, Some((i, c))) => {
                            self.down.remove(&s);
                            self.clients[i].up.remove(&c);
                            self.clients[i].client.handle_eof(now, c);
                            break;
                        }
                        // Nobody listens on this connection any more.
                        (Transmit::Close, None) => break,
                        (Transmit::Data(_), None) => {}
                    }
                }
            }
            if pulled {
                // Written bytes reach the backpressure accounting.
                self.server.pump(now);
            }
            while let Some(event) = self.server.poll_event() {
                moved = true;
                if let (true, ServerEvent::Connect { socket, .. }) = (self.auto_accept, &event) {
                    self.server.socket().accept(now, socket).unwrap();
                    self.server.pump(now);
                }
                self.server_events.push(event);
            }
            for peer in &mut self.clients {
                while let Some(event) = peer.client.poll_event() {
                    moved = true;
                    peer.events.push((now, event));
                }
            }
            if !moved {
                return;
            }
        }
        panic!("endpoints did not settle");
    }

    /// Let virtual time pass, firing each deadline in order.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            self.drive();
            let next = std::iter::once(self.server.poll_timeout())
                .chain(self.clients.iter().map(|p| p.client.poll_timeout()))
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.server.handle_timeout(now);
                    for peer in &mut self.clients {
                        peer.client.handle_timeout(now);
                    }
                }
                _ => break,
            }
        }
        self.now = end;
        self.drive();
    }

    /// A short pause: enough for any exchange, shorter than a ping period.
    fn settle(&mut self) {
        self.advance(Duration::from_millis(20));
    }

    /// Cut every connection of client `i`, both sides seeing it.
    fn cut(&mut self, i: usize) {
        let now = self.now;
        for (c, s) in std::mem::take(&mut self.clients[i].up) {
            self.down.remove(&s);
            self.parked.remove(&s);
            self.server.handle_eof(now, s);
            self.clients[i].client.handle_eof(now, c);
        }
        self.drive();
    }

    /// Client `i` loses its connections; the server is not told (its
    /// connections stay open, writing into the void).
    fn cut_client_side(&mut self, i: usize) {
        let now = self.now;
        for (c, s) in std::mem::take(&mut self.clients[i].up) {
            self.down.remove(&s);
            self.clients[i].client.handle_eof(now, c);
        }
        self.drive();
    }

    /// The server process dies and a fresh one takes its place; clients
    /// see their connections end.
    fn restart_server(&mut self) {
        let now = self.now;
        self.restarts += 1;
        self.server = Net::make_server(&self.setup, self.restarts);
        self.down.clear();
        self.parked.clear();
        for peer in &mut self.clients {
            for (c, _) in std::mem::take(&mut peer.up) {
                peer.client.handle_eof(now, c);
            }
        }
        self.drive();
    }

    /// Hold back (or release) the server's output to client `i`.
    fn stall(&mut self, i: usize, stalled: bool) {
        self.clients[i].stalled = stalled;
        self.drive();
    }

    /// A request written by hand on a new connection (its answer is
    /// dropped).
    fn raw_post(&mut self, eio: &str, body: &str) {
        let now = self.now;
        let s = self.server.handle_connection(now, None);
        let request = format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={eio} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.server.handle_read(now, s, request.as_bytes());
        self.drive();
    }

    /// A WebSocket text frame forged by hand on client `i`'s only
    /// connection, as if its Engine.IO client had sent it.
    fn raw_ws_to_server(&mut self, i: usize, text: &str) {
        let now = self.now;
        let s = self.only_server_conn(i);
        // Masked with the zero key: the payload reads as is.
        let mut frame = vec![0x81];
        push_len(&mut frame, text.len(), 0x80);
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(text.as_bytes());
        self.server.handle_read(now, s, &frame);
        self.drive();
    }

    /// A WebSocket text frame forged by hand from the server to client `i`.
    fn raw_ws_to_client(&mut self, i: usize, text: &str) {
        let now = self.now;
        let (&c, _) = self.clients[i].up.iter().next().expect("a connection");
        assert_eq!(self.clients[i].up.len(), 1, "one WebSocket connection");
        let mut frame = vec![0x81];
        push_len(&mut frame, text.len(), 0);
        frame.extend_from_slice(text.as_bytes());
        self.clients[i].client.handle_read(now, c, &frame);
        self.drive();
    }

    fn only_server_conn(&self, i: usize) -> ConnId {
        assert_eq!(self.clients[i].up.len(), 1, "one WebSocket connection");
        *self.clients[i].up.values().next().unwrap()
    }

    /// The Engine.IO session id of client `i`.
    fn eio(&self, i: usize) -> String {
        self.clients[i]
            .client
            .engine()
            .and_then(|e| e.sid())
            .expect("session open")
            .to_owned()
    }

    fn sid(&self, i: usize, nsp: &str) -> Str {
        self.clients[i]
            .events
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                ClientEvent::Connected { nsp: n, sid, .. } if &**n == nsp => Some(sid.clone()),
                _ => None,
            })
            .expect("connected")
    }

    fn is_connected(&mut self, i: usize, nsp: &str) -> bool {
        self.clients[i].client.socket().is_connected(nsp)
    }

    /// Names and arguments (as values) of the events client `i` got on
    /// `nsp`, in order.
    fn received(&self, i: usize, nsp: &str) -> Vec<(String, Vec<Value>)> {
        self.clients[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::Event {
                    nsp: n, name, args, ..
                } if &**n == nsp => Some((name.to_string(), args.to_values().unwrap())),
                _ => None,
            })
            .collect()
    }

    /// Names of the events client `i` got on `nsp`, in order.
    fn received_names(&self, i: usize, nsp: &str) -> Vec<String> {
        self.received(i, nsp).into_iter().map(|(n, _)| n).collect()
    }

    /// Server-side events named `name`: (socket, args, ack id).
    fn server_got(&self, name: &str) -> Vec<(Str, Vec<Value>, Option<u64>)> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Event {
                    socket,
                    name: n,
                    args,
                    ack,
                    ..
                } if &**n == name => Some((socket.clone(), args.to_values().unwrap(), *ack)),
                _ => None,
            })
            .collect()
    }

    fn server_disconnects(&self) -> Vec<(Str, Str, DisconnectReason)> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Disconnect {
                    socket,
                    nsp,
                    reason,
                } => Some((socket.clone(), nsp.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    fn server_connects(&self) -> Vec<(Str, Str, Option<Value>, bool)> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Connect {
                    socket,
                    nsp,
                    auth,
                    recovered,
                    ..
                } => Some((socket.clone(), nsp.clone(), auth.clone(), *recovered)),
                _ => None,
            })
            .collect()
    }

    fn client_disconnects(&self, i: usize) -> Vec<(String, DisconnectReason)> {
        self.clients[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::Disconnected { nsp, reason } => Some((nsp.to_string(), *reason)),
                _ => None,
            })
            .collect()
    }

    /// The WebSocket text frames the server wrote to client `i` (for
    /// WebSocket-only clients).
    fn ws_texts(&self, i: usize) -> Vec<String> {
        let mut all = Vec::new();
        for chunk in &self.clients[i].wire {
            all.extend_from_slice(chunk);
        }
        let mut texts = Vec::new();
        let mut rest = &all[..];
        // Skip the HTTP 101 answer.
        if let Some(end) = find(rest, b"\r\n\r\n") {
            rest = &rest[end + 4..];
        }
        while rest.len() >= 2 {
            let opcode = rest[0] & 0x0f;
            let (len, head) = match rest[1] & 0x7f {
                126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
                127 => (
                    u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (n as usize, 2),
            };
            let payload = &rest[head..head + len];
            if opcode == 1 {
                texts.push(String::from_utf8(payload.to_vec()).unwrap());
            }
            rest = &rest[head + len..];
        }
        texts
    }
}

fn push_len(frame: &mut Vec<u8>, len: usize, mask_bit: u8) {
    if len < 126 {
        frame.push(mask_bit | len as u8);
    } else {
        frame.push(mask_bit | 126);
        frame.extend_from_slice(&(len as u16).to_be_bytes());
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn obj(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn n(x: u64) -> Value {
    Value::Number(crate::value::Number::PosInt(x))
}

fn bin(bytes: &[u8]) -> Value {
    Value::Binary(Bytes::copy_from_slice(bytes))
}

// ===================================================================
// Namespaces
// ===================================================================

#[test]
fn every_namespace_needs_connect_and_gets_its_own_socket_id() {
    for parser in PARSERS {
        for transports in ALL {
            let mut net = Setup::new(transports).parser(parser).build();
            let c = net.add_client();
            net.connect(c, "/", Some(obj(&[("token", s("root"))])));
            net.connect(c, "/chat", Some(obj(&[("token", s("chat"))])));
            net.connect(c, "/admin", None);
            net.settle();
            let connects = net.server_connects();
            assert_eq!(connects.len(), 3, "{transports:?} {parser:?}");
            let eio = net.eio(c);
            let mut ids = BTreeSet::new();
            for (sid, nsp, auth, recovered) in &connects {
                assert!(!recovered);
                assert_ne!(&**sid, eio, "the socket id is not the engine sid");
                ids.insert(sid.clone());
                assert_eq!(net.sid(c, nsp), *sid, "client told the same id");
                let expected = match &**nsp {
                    "/" => Some(obj(&[("token", s("root"))])),
                    "/chat" => Some(obj(&[("token", s("chat"))])),
                    _ => None,
                };
                assert_eq!(auth, &expected, "{nsp}");
            }
            assert_eq!(ids.len(), 3, "one id per namespace");
            // All three namespaces share one Engine.IO session.
            assert_eq!(net.server.engine().session_count(), 1);
        }
    }
}

#[test]
fn refused_connect_carries_message_and_data() {
    for transports in ALL {
        let mut net = Setup::new(transports).build();
        net.auto_accept = false;
        let c = net.add_client();
        net.connect(c, "/", None);
        net.connect(c, "/private", Some(obj(&[("token", s("bad"))])));
        net.settle();
        for (sid, nsp, _, _) in net.server_connects() {
            net.on_server(|srv, now| {
                if &*nsp == "/private" {
                    srv.reject(now, &sid, "not authorized", Some(&("retry later", 3)))
                } else {
                    srv.accept(now, &sid)
                }
            })
            .unwrap();
        }
        net.settle();
        let refused: Vec<_> = net.clients[c]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::ConnectError { nsp, message, data } => {
                    Some((nsp.to_string(), message.clone(), data.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            refused,
            vec![(
                "/private".to_owned(),
                "not authorized".to_owned(),
                Some(Value::Array(vec![s("retry later"), n(3)]))
            )],
            "{transports:?}"
        );
        assert!(
            net.is_connected(c, "/"),
            "the other namespace is unaffected"
        );
        // A refused namespace is not retried, and no Disconnect is reported
        // for a socket the application rejected.
        net.advance(Duration::from_secs(10));
        assert_eq!(net.server_connects().len(), 2);
        assert!(net.server_disconnects().is_empty());
    }
}

#[test]
fn unknown_namespace_gets_exactly_invalid_namespace() {
    for transports in ALL {
        let mut net = Setup::new(transports)
            .namespaces(vec![NamespaceMatcher::Exact("/chat".into())])
            .build();
        let c = net.add_client();
        net.connect(c, "/", None);
        net.connect(c, "/nope", None);
        net.settle();
        let refused: Vec<_> = net.clients[c]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                ClientEvent::ConnectError { nsp, message, data } => {
                    Some((nsp.to_string(), message.clone(), data.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            refused,
            vec![("/nope".into(), "Invalid namespace".into(), None)]
        );
        // The application never heard of it.
        assert!(net
            .server_connects()
            .iter()
            .all(|(_, nsp, _, _)| nsp == "/"));
        assert!(net.is_connected(c, "/"));
    }
    // The exact bytes on the wire.
    let mut net = Setup::new(ClientTransports::WebSocket)
        .namespaces(vec![])
        .build();
    let c = net.add_client();
    net.connect(c, "/", None);
    net.connect(c, "/nope", None);
    net.settle();
    assert!(
        net.ws_texts(c)
            .contains(&r#"44/nope,{"message":"Invalid namespace"}"#.to_owned()),
        "{:?}",
        net.ws_texts(c)
    );
}

#[test]
fn accepted_namespaces_list_any_and_patterns() {
    let cases: Vec<(Vec<NamespaceMatcher>, &str, bool)> = vec![
        (vec![], "/", true),
        (vec![], "/chat", false),
        (vec![NamespaceMatcher::Exact("/chat".into())], "/chat", true),
        (
            vec![NamespaceMatcher::Exact("/chat".into())],
            "/chat2",
            false,
        ),
        (
            vec![
                NamespaceMatcher::Exact("/a".into()),
                NamespaceMatcher::Exact("/b".into()),
            ],
            "/b",
            true,
        ),
        (vec![NamespaceMatcher::Any], "/anything/at-all", true),
        (
            vec![NamespaceMatcher::predicate(|n| n.starts_with("/room-"))],
            "/room-42",
            true,
        ),
        (
            vec![NamespaceMatcher::predicate(|n| n.starts_with("/room-"))],
            "/lobby",
            false,
        ),
    ];
    for transports in ALL {
        for (matchers, nsp, accepted) in &cases {
            let mut net = Setup::new(transports).namespaces(matchers.clone()).build();
            let c = net.add_client();
            net.connect(c, nsp, None);
            net.settle();
            assert_eq!(net.is_connected(c, nsp), *accepted, "{nsp} {matchers:?}");
        }
    }
}

#[test]
fn a_connection_that_joins_nothing_is_closed_after_the_connect_timeout() {
    for transports in ALL {
        let mut setup = Setup::new(transports);
        // Long heartbeats so only the connect timeout can end the session.
        setup.engine.ping_interval = Duration::from_secs(25);
        setup.engine.ping_timeout = Duration::from_secs(20);
        let mut net = setup.build();
        let c = net.add_client();
        net.connect(c, "/", None);
        net.settle();
        // The client leaves its only namespace... but we keep the engine
        // session by forging a second client that never sends CONNECT:
        // a bare Engine.IO handshake on a raw connection.
        let now = net.now;
        let raw = net.server.handle_connection(now, None);
        net.server.handle_read(
            now,
            raw,
            b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n\r\n",
        );
        net.drive();
        assert_eq!(net.server.engine().session_count(), 2);
        net.advance(Duration::from_secs(44));
        assert_eq!(net.server.engine().session_count(), 2, "{transports:?}");
        net.advance(Duration::from_secs(2));
        assert_eq!(
            net.server.engine().session_count(),
            1,
            "the silent session is closed at 45 s, the joined one stays"
        );
        assert!(net.is_connected(c, "/"));
    }
}

#[test]
fn duplicate_connect_does_not_rerun_the_connect_handler() {
    // Forged on the wire: our client never sends a second CONNECT.
    let mut net = Setup::new(ClientTransports::WebSocket).build();
    let c = net.client_in(&["/", "/chat"]);
    net.raw_ws_to_server(c, "40");
    net.raw_ws_to_server(c, "40/chat,");
    net.raw_ws_to_server(c, r#"40/chat,{"token":"again"}"#);
    net.settle();
    assert_eq!(net.server_connects().len(), 2);
    assert!(net.server_disconnects().is_empty());
    assert!(net.is_connected(c, "/") && net.is_connected(c, "/chat"));

    let mut net = Setup::new(ClientTransports::Polling).build();
    let c = net.client_in(&["/"]);
    let eio = net.eio(c);
    net.raw_post(&eio, "40");
    net.settle();
    assert_eq!(net.server_connects().len(), 1);
    assert!(net.is_connected(c, "/"));
}

#[test]
fn connect_reply_precedes_events_emitted_by_the_connect_handler() {
    for always_connect in [false, true] {
        for parser in PARSERS {
            for transports in ALL {
                let mut setup = Setup::new(transports).parser(parser);
                setup.socket.always_connect = always_connect;
                let mut net = setup.build();
                net.auto_accept = false;
                let c = net.add_client();
                net.connect(c, "/", None);
                net.settle();
                let (sid, ..) = net.server_connects()[0].clone();
                // The connect handler emits, then accepts.
                net.on_server(|srv, now| {
                    srv.emit(now, &sid, "welcome", &("hi",)).unwrap();
                    srv.join(&sid, "lobby").unwrap();
                    srv.broadcast(now, &Broadcast::namespace("/").to("lobby"), "room", &())
                        .unwrap();
                    srv.accept(now, &sid).unwrap();
                    srv.emit(now, &sid, "after", &()).unwrap();
                });
                net.settle();
                let order: Vec<String> = net.clients[c]
                    .events
                    .iter()
                    .filter_map(|(_, e)| match e {
                        ClientEvent::Connected { .. } => Some("connect".to_owned()),
                        ClientEvent::Event { name, .. } => Some(name.to_string()),
                        _ => None,
                    })
                    .collect();
                assert_eq!(
                    order,
                    ["connect", "welcome", "room", "after"],
                    "{transports:?} {parser:?} always_connect={always_connect}"
                );
            }
        }
    }
}

#[test]
fn always_connect_turns_a_rejection_into_a_disconnect() {
    for transports in ALL {
        let mut setup = Setup::new(transports);
        setup.socket.always_connect = true;
        let mut net = setup.build();
        net.auto_accept = false;
        let c = net.add_client();
        net.connect(c, "/", None);
        net.settle();
        assert!(net.is_connected(c, "/"), "connected before the handler");
        let (sid, ..) = net.server_connects()[0].clone();
        net.on_server(|srv, now| srv.reject(now, &sid, "nope", None::<&()>))
            .unwrap();
        net.settle();
        assert_eq!(
            net.client_disconnects(c),
            vec![("/".into(), DisconnectReason::ServerDisconnect)]
        );
        net.advance(Duration::from_secs(10));
        assert_eq!(net.server_connects().len(), 1, "not rejoined");
    }
}

#[test]
fn namespace_disconnects_both_ways_keep_the_engine_connection() {
    for transports in ALL {
        let mut net = Setup::new(transports).build();
        let c = net.client_in(&["/", "/a", "/b"]);
        let eio = net.eio(c);
        let sid_a = net.sid(c, "/a");
        let sid_b = net.sid(c, "/b");
        // Client leaves /a.
        net.on_client(c, |cl, now| cl.disconnect(now, "/a"))
            .unwrap();
        net.settle();
        // Server disconnects /b.
        net.on_server(|srv, now| srv.disconnect(now, &sid_b))
            .unwrap();
        net.settle();
        let mut got = net.server_disconnects();
        got.sort_by(|a, b| a.1.cmp(&b.1));
        let mut want = vec![
            (
                sid_a.clone(),
                Str::from("/a"),
                DisconnectReason::ClientNamespaceDisconnect,
            ),
            (
                sid_b.clone(),
                Str::from("/b"),
                DisconnectReason::ServerNamespaceDisconnect,
            ),
        ];
        want.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(got, want, "{transports:?}");
        assert_eq!(
            net.client_disconnects(c),
            vec![
                ("/a".into(), DisconnectReason::ClientDisconnect),
                ("/b".into(), DisconnectReason::ServerDisconnect),
            ]
        );
        assert_eq!(net.eio(c), eio, "same Engine.IO session");
        // Heartbeats go on and "/" still works.
        net.advance(Duration::from_secs(5));
        assert_eq!(net.eio(c), eio);
        assert!(net.is_connected(c, "/"));
        net.on_client(c, |cl, now| cl.emit(now, "/", "still", &()))
            .unwrap();
        net.settle();
        assert_eq!(net.server_got("still").len(), 1);
        // Neither left namespace comes back.
        assert_eq!(net.server_connects().len(), 3);
        // Leaving the last namespace ends the session.
        net.on_client(c, |cl, now| cl.disconnect(now, "/")).unwrap();
        net.settle();
        assert_eq!(net.server.engine().session_count(), 0, "{transports:?}");
    }
}

#[test]
fn disconnect_reasons_on_both_sides() {
    // (how the connection ends, server reason, client reason)
    for transports in ALL {
        // Transport cut: both sides see a transport reason.
        let mut net = Setup::new(transports).build();
        let c = net.client_in(&["/"]);
        net.clients[c].refuse = true;
        net.cut(c);
        let server = net.server_disconnects();
        assert_eq!(server.len(), 1);
        assert!(
            matches!(
                server[0].2,
                DisconnectReason::TransportClose | DisconnectReason::TransportError
            ),
            "{transports:?} {server:?}"
        );
        let client = net.client_disconnects(c);
        assert!(
            matches!(
                client[..],
                [(
                    _,
                    DisconnectReason::TransportClose | DisconnectReason::TransportError
                )]
            ),
            "{client:?}"
        );

        // Silence: both sides see a ping timeout.
        let mut net = Setup::new(transports).build();
        let c = net.client_in(&["/"]);
        net.clients[c].stalled = true;
        net.clients[c].refuse = true;
        net.advance(Duration::from_secs(2));
        assert_eq!(
            net.server_disconnects()[0].2,
            DisconnectReason::PingTimeout,
            "{transports:?}"
        );
        net.cut_client_side(c);
        assert_eq!(
            net.client_disconnects(c)[0].1.as_str(),
            "ping timeout",
            "{transports:?}"
        );

        // The server closes the whole connection.
        let mut net = Setup::new(transports).build();
        let c = net.client_in(&["/"]);
        let eio = net.eio(c);
        net.on_server(|srv, now| srv.close_session(now, &eio))
            .unwrap();
        net.settle();
        assert_eq!(
            net.server_disconnects()[0].2.as_str(),
            "forced server close"
        );
        assert_eq!(
            net.client_disconnects(c)[0].1.as_str(),
            "transport close",
            "{transports:?}"
        );
        // ...and the client comes back.
        net.advance(Duration::from_secs(10));
        assert!(net.is_connected(c, "/"));

        // The client closes everything.
        let mut net = Setup::new(transports).build();
        let c = net.client_in(&["/"]);
        net.on_client(c, |cl, now| cl.disconnect_all(now));
        net.settle();
        assert_eq!(
            net.server_disconnects()[0].2.as_str(),
            "client namespace disconnect"
        );
        assert_eq!(
            net.client_disconnects(c)[0].1.as_str(),
            "io client disconnect"
        );
    }
}

// ===================================================================
// Events and acknowledgements
// ===================================================================

#[test]
fn events_carry_any_number_of_arguments_with_binary_anywhere() {
    let nested = obj(&[
        ("name", s("file")),
        ("parts", Value::Array(vec![bin(&[1]), n(2), bin(&[3, 3])])),
        ("meta", obj(&[("thumb", bin(&[4; 300]))])),
    ]);
    let arg_lists: Vec<Vec<Value>> = vec![
        vec![],
        vec![s("one")],
        vec![n(1), s("two"), Value::Bool(true), Value::Null],
        vec![bin(&[0xff, 0, 1])],
        vec![s("a"), nested.clone(), bin(&[9]), n(7), bin(&[])],
        (0..20).map(n).collect(),
    ];
    for parser in PARSERS {
        for transports in ALL {
            let mut net = Setup::new(transports).parser(parser).build();
            let c = net.client_in(&["/", "/x"]);
            let sid = net.sid(c, "/x");
            for (k, args) in arg_lists.iter().enumerate() {
                let args = crate::parser::Args::from_values(args.clone());
                net.on_client(c, |cl, now| cl.emit(now, "/x", &format!("up{k}"), &args))
                    .unwrap();
                net.on_server(|srv, now| srv.emit(now, &sid, &format!("down{k}"), &args))
                    .unwrap();
            }
            net.settle();
            for (k, args) in arg_lists.iter().enumerate() {
                let up = net.server_got(&format!("up{k}"));
                assert_eq!(up.len(), 1);
                assert_eq!(&up[0].1, args, "up{k} {transports:?} {parser:?}");
            }
            let down = net.received(c, "/x");
            assert_eq!(down.len(), arg_lists.len());
            for (k, (name, args)) in down.iter().enumerate() {
                assert_eq!(name, &format!("down{k}"));
                assert_eq!(args, &arg_lists[k], "{transports:?} {parser:?}");
            }
        }
    }
}

#[test]
fn acks_both_ways_with_ids_per_namespace() {
    for parser in PARSERS {
        for transports in ALL {
            let mut net = Setup::new(transports).parser(parser).build();
            let c = net.client_in(&["/", "/x"]);
            let timeout = Some(Duration::from_secs(5));
            // Client asks on two namespaces: ids count per namespace.
            let ids: Vec<u64> = [("/", "q1"), ("/x", "q2"), ("/x", "q3"), ("/", "q4")]
                .iter()
                .map(|(nsp, ev)| {
                    net.on_client(c, |cl, now| cl.emit_with_ack(now, nsp, ev, &(1,), timeout))
                        .unwrap()
                })
                .collect();
            assert_eq!(ids, [0, 0, 1, 1]);
            net.settle();
            for (ev, answer) in [("q1", 10), ("q2", 20), ("q3", 30), ("q4", 40)] {
                let (sock, _, ack) = net.server_got(ev)[0].clone();
                net.on_server(|srv, now| {
                    srv.ack(now, &sock, ack.unwrap(), &(answer, bin(&[answer as u8])))
                })
                .unwrap();
            }
            net.settle();
            let acks: Vec<(String, u64, Vec<Value>)> = net.clients[c]
                .events
                .iter()
                .filter_map(|(_, e)| match e {
                    ClientEvent::Ack { nsp, id, args } => {
                        Some((nsp.to_string(), *id, args.to_values().unwrap()))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(
                acks,
                vec![
                    ("/".into(), 0, vec![n(10), bin(&[10])]),
                    ("/x".into(), 0, vec![n(20), bin(&[20])]),
                    ("/x".into(), 1, vec![n(30), bin(&[30])]),
                    ("/".into(), 1, vec![n(40), bin(&[40])]),
                ],
                "{transports:?} {parser:?}"
            );
            // Answering twice is refused.
            let (sock, _, ack) = net.server_got("q1")[0].clone();
            assert!(net
                .on_server(|srv, now| srv.ack(now, &sock, ack.unwrap(), &()))
                .is_err());

            // Server asks on both namespaces.
            let root = net.sid(c, "/");
            let x = net.sid(c, "/x");
            let a = net
                .on_server(|srv, now| {
                    srv.emit_with_ack(now, &root, "s1", &(), Duration::from_secs(5))
                })
                .unwrap();
            let b = net
                .on_server(|srv, now| {
                    srv.emit_with_ack(now, &x, "s2", &(bin(&[1]),), Duration::from_secs(5))
                })
                .unwrap();
            assert_eq!((a, b), (0, 0), "server ack ids count per namespace too");
            net.settle();
            let asks: Vec<(String, u64)> = net.clients[c]
                .events
                .iter()
                .filter_map(|(_, e)| match e {
                    ClientEvent::Event {
                        nsp, ack: Some(id), ..
                    } => Some((nsp.to_string(), *id)),
                    _ => None,
                })
                .collect();
            for (nsp, id) in asks {
                net.on_client(c, |cl, now| {
                    cl.ack(now, &nsp, id, &(nsp.as_str(), bin(&[7])))
                })
                .unwrap();
            }
            net.settle();
            let answers: Vec<(Str, u64, Vec<Value>)> = net
                .server_events
                .iter()
                .filter_map(|e| match e {
                    ServerEvent::Ack {
                        socket,
                        id,
                        outcome: AckOutcome::Answered(args),
                        ..
                    } => Some((socket.clone(), *id, args.to_values().unwrap())),
                    _ => None,
                })
                .collect();
            assert_eq!(
                answers,
                vec![
                    (root.clone(), 0, vec![s("/"), bin(&[7])]),
                    (x.clone(), 0, vec![s("/x"), bin(&[7])]),
                ],
                "{transports:?} {parser:?}"
            );
        }
    }
}

#[test]
fn ack_deadlines_report_timeouts_and_late_answers_are_ignored() {
    for transports in ALL {
        let mut net = Setup::new(transports).build();
        let c = net.client_in(&["/"]);
        let sid = net.sid(c, "/");
        let cid = net
            .on_client(c, |cl, now| {
                cl.emit_with_ack(now, "/", "slow", &(), Some(Duration::from_secs(2)))
            })
            .unwrap();
        let sack = net
            .on_server(|srv, now| srv.emit_with_ack(now, &sid, "slow", &(), Duration::from_secs(3)))
            .unwrap();
        net.advance(Duration::from_millis(1900));
        assert!(!net.clients[c]
            .events
            .iter()
            .any(|(_, e)| matches!(e, ClientEvent::AckFailed { .. })));
        net.advance(Duration::from_millis(200));
        assert!(net.clients[c].events.iter().any(|(_, e)| matches!(e,
            ClientEvent::AckFailed { id, reason: AckFailure::Timeout, .. } if *id == cid)));
        net.advance(Duration::from_secs(1));
        assert!(net.server_events.iter().any(|e| matches!(e,
            ServerEvent::Ack { id, outcome: AckOutcome::TimedOut, .. } if *id == sack)));
        // Late answers from both sides change nothing.
        let (sock, _, ack) = net.server_got("slow")[0].clone();
        net.on_server(|srv, now| srv.ack(now, &sock, ack.unwrap(), &()))
            .unwrap();
        let client_ack = net.clients[c]
            .events
            .iter()
            .find_map(|(_, e)| match e {
                ClientEvent::Event { ack: Some(id), .. } => Some(*id),
                _ => None,
            })
            .unwrap();
        net.on_client(c, |cl, now| cl.ack(now, "/", client_ack, &()))
            .unwrap();
        net.settle();
        assert!(!net.clients[c]
            .events
            .iter()
            .any(|(_, e)| matches!(e, ClientEvent::Ack { .. })));
        assert!(!net.server_events.iter().any(|e| matches!(
            e,
            ServerEvent::Ack {
                outcome: AckOutcome::Answered(_),
                ..
            }
        )));
        assert!(net.is_connected(c, "/"), "{transports:?}");
        assert!(net.server_disconnects().is_empty());
    }
}

#[test]
fn ten_thousand_abandoned_acks_leave_nothing_behind() {
    for transports in ALL {
        let mut setup = Setup::new(transports);
        setup.socket.max_pending_acks = 10_000;
        setup.client.max_pending_acks = 10_000;
        let mut net = setup.build();
        let c = net.client_in(&["/"]);
        let sid = net.sid(c, "/");
        // The server asks 10,000 times; the client never answers.
        for k in 0..10_000u64 {
            net.on_server(|srv, now| {
                srv.emit_with_ack(now, &sid, "ask", &(k,), Duration::from_secs(60))
            })
            .unwrap();
        }
        // The client asks 10,000 times (in batches the engine can queue);
        // the server application never answers.
        for batch in 0..10 {
            for _ in 0..1000 {
                net.on_client(c, |cl, now| {
                    cl.emit_with_ack(now, "/", "ask", &(batch,), Some(Duration::from_secs(60)))
                })
                .unwrap();
            }
            net.settle();
        }
        assert_eq!(net.server_got("ask").len(), 10_000);
        // Then the client goes away for good.
        net.on_client(c, |cl, now| cl.disconnect_all(now));
        net.settle();
        let disconnected = net
            .server_events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    ServerEvent::Ack {
                        outcome: AckOutcome::Disconnected,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(disconnected, 10_000, "{transports:?}");
        let failed = net.clients[c]
            .events
            .iter()
            .filter(|(_, e)| {
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
        // Nothing is left: no timer anywhere, no socket, no session.
        net.settle();
        assert_eq!(net.server.socket().poll_timeout(), None, "{transports:?}");
        assert_eq!(net.clients[c].client.poll_timeout(), None);
        let debug = format!("{:?}", net.server.socket());
        assert!(
            debug.contains("sessions: 0, sockets: 0, namespaces: 0"),
            "{debug}"
        );
        assert_eq!(net.server.engine().session_count(), 0);
        // Nothing fires later either.
        let before = net.server_events.len();
        net.advance(Duration::from_secs(120));
        assert_eq!(net.server_events.len(), before);
        // The engine's stale timers of the dead session are gone too.
        assert_eq!(net.server.poll_timeout(), None, "{transports:?}");
    }
}

#[test]
fn abandoned_acks_are_settled_when_the_connection_dies() {
    // Same, but the connection is cut instead of closed cleanly, and a
    // broadcast with acks is pending too.
    for transports in ALL {
        let mut setup = Setup::new(transports);
        setup.client.reconnection = false;
        let mut net = setup.build();
        let c = net.client_in(&["/"]);
        let sid = net.sid(c, "/");
        for k in 0..500u64 {
            net.on_server(|srv, now| {
                srv.emit_with_ack(now, &sid, "ask", &(k,), Duration::from_secs(60))
            })
            .unwrap();
        }
        let started = net
            .on_server(|srv, now| {
                srv.broadcast_with_ack(
                    now,
                    &Broadcast::namespace("/"),
                    "all",
                    &(),
                    Duration::from_secs(60),
                )
            })
            .unwrap();
        assert_eq!(started.receivers, 1);
        net.settle();
        net.cut(c);
        net.settle();
        assert!(net.server_events.iter().any(|e| matches!(e,
            ServerEvent::BroadcastAck { outcome: BroadcastAckOutcome::Complete, responses, .. }
            if responses.is_empty())));
        assert_eq!(net.server.socket().poll_timeout(), None, "{transports:?}");
        assert_eq!(net.clients[c].client.poll_timeout(), None);
        // The engine's own bookkeeping of the dead session ends too.
        net.advance(Duration::from_secs(120));
        assert_eq!(net.server.poll_timeout(), None, "{transports:?}");
    }
}

#[test]
fn unknown_ack_ids_are_ignored() {
    // Server side, forged on the wire.
    let mut net = Setup::new(ClientTransports::WebSocket).build();
    let c = net.client_in(&["/"]);
    net.raw_ws_to_server(c, r#"3999["who?"]"#);
    net.raw_ws_to_server(c, r#"61-12[{"_placeholder":true,"num":0}]"#);
    net.settle();
    assert!(net.server_disconnects().is_empty());
    assert!(net.is_connected(c, "/"));
    assert!(!net
        .server_events
        .iter()
        .any(|e| matches!(e, ServerEvent::Ack { .. })));
    // Client side.
    net.raw_ws_to_client(c, r#"3999["who?"]"#);
    net.settle();
    assert!(net.is_connected(c, "/"));
    assert!(!net.clients[c]
        .events
        .iter()
        .any(|(_, e)| matches!(e, ClientEvent::Ack { .. })));
    // The application cannot answer what was never asked.
    let sid = net.sid(c, "/");
    assert!(net
        .on_server(|srv, now| srv.ack(now, &sid, 5, &()))
        .is_err());
    assert!(net
        .on_client(c, |cl, now| cl.ack(now, "/", 5, &()))
        .is_err());
}

#[test]
fn invalid_packets_close_with_parse_error() {
    let bad = [
        r#"2"not an array""#,
        "9",
        r#"2abc["x"]"#,
        r#"2{"a":1}"#,
        r#"5-["x"]"#,
    ];
    for packet in bad {
        // Server side over WebSocket.
        let mut net = Setup::new(ClientTransports::WebSocket).build();
        let c = net.client_in(&["/"]);
        net.raw_ws_to_server(c, &format!("4{packet}"));
        net.settle();
        assert_eq!(
            net.server_disconnects()
                .iter()
                .map(|d| d.2)
                .collect::<Vec<_>>(),
            vec![DisconnectReason::ParseError],
            "{packet}"
        );
        // Server side over polling.
        let mut net = Setup::new(ClientTransports::Polling).build();
        let c = net.client_in(&["/"]);
        let eio = net.eio(c);
        net.raw_post(&eio, &format!("4{packet}"));
        net.settle();
        assert_eq!(
            net.server_disconnects()
                .iter()
                .map(|d| d.2)
                .collect::<Vec<_>>(),
            vec![DisconnectReason::ParseError],
            "{packet}"
        );
        // The client reconnects on a fresh session.
        net.advance(Duration::from_secs(10));
        assert!(net.is_connected(c, "/"));

        // Client side.
        let mut net = Setup::new(ClientTransports::WebSocket).build();
        let c = net.client_in(&["/"]);
        net.raw_ws_to_client(c, &format!("4{packet}"));
        assert_eq!(
            net.client_disconnects(c),
            vec![("/".into(), DisconnectReason::ParseError)],
            "{packet}"
        );
        net.advance(Duration::from_secs(10));
        assert!(net.is_connected(c, "/"));
    }
    // A first packet that is not CONNECT.
    let mut net = Setup::new(ClientTransports::Polling).build();
    let c = net.client_in(&["/"]);
    let eio = net.eio(c);
    net.raw_post(&eio, r#"42/other,["x"]"#);
    net.settle();
    assert_eq!(net.server_disconnects()[0].2, DisconnectReason::ParseError);
}

// ===================================================================
// Rooms and broadcasts
// ===================================================================

#[test]
fn rooms_join_leave_list_close_and_members() {
    for transports in ALL {
        let mut net = Setup::new(transports).build();
        let a = net.client_in(&["/"]);
        let b = net.client_in(&["/"]);
        let (sa, sb) = (net.sid(a, "/"), net.sid(b, "/"));
        // Each socket is in its own room.
        let rooms = net.server.socket().rooms(&sa).unwrap();
        assert_eq!(rooms, vec![sa.clone()]);
        net.on_server(|srv, now| srv.emit(now, &sa, "x", &()))
            .unwrap();
        net.on_server(|srv, now| {
            srv.broadcast(now, &Broadcast::namespace("/").to(sb.clone()), "own", &())
        })
        .unwrap();
        net.settle();
        assert_eq!(net.received_names(a, "/"), ["x"]);
        assert_eq!(net.received_names(b, "/"), ["own"]);

        let srv = net.server.socket();
        srv.join(&sa, "red").unwrap();
        srv.join(&sb, "red").unwrap();
        srv.join(&sa, "blue").unwrap();
        let mut rooms = srv.rooms(&sa).unwrap();
        rooms.sort();
        let mut want = vec![sa.clone(), "blue".into(), "red".into()];
        want.sort();
        assert_eq!(rooms, want);
        let mut red = srv.sockets_in("/", "red");
        red.sort();
        let mut want = vec![sa.clone(), sb.clone()];
        want.sort();
        assert_eq!(red, want);
        srv.leave(&sb, "red").unwrap();
        assert_eq!(srv.sockets_in("/", "red"), vec![sa.clone()]);
        srv.close_room("/", "blue");
        assert!(srv.sockets_in("/", "blue").is_empty());
        assert_eq!(srv.rooms(&sa).unwrap().len(), 2);
        // A socket leaving the namespace leaves its rooms.
        net.on_client(a, |cl, now| cl.disconnect(now, "/")).unwrap();
        net.settle();
        assert!(net.server.socket().sockets_in("/", "red").is_empty());
        assert!(net.server.socket().rooms(&sa).is_err());
    }
}

#[test]
fn broadcasts_to_rooms_all_and_exceptions() {
    for parser in PARSERS {
        for transports in ALL {
            let mut net = Setup::new(transports).parser(parser).build();
            let cs: Vec<usize> = (0..4).map(|_| net.client_in(&["/", "/other"])).collect();
            let ids: Vec<Str> = cs.iter().map(|&c| net.sid(c, "/")).collect();
            {
                let srv = net.server.socket();
                // 0: red; 1: red, blue; 2: blue; 3: none.
                srv.join(&ids[0], "red").unwrap();
                srv.join(&ids[1], "red").unwrap();
                srv.join(&ids[1], "blue").unwrap();
                srv.join(&ids[2], "blue").unwrap();
            }
            let cases: Vec<(Broadcast, &str, Vec<usize>)> = vec![
                (Broadcast::namespace("/"), "all", vec![0, 1, 2, 3]),
                (Broadcast::namespace("/").to("red"), "red", vec![0, 1]),
                (
                    Broadcast::namespace("/").to("red").to("blue"),
                    "red+blue",
                    vec![0, 1, 2],
                ),
                (
                    Broadcast::namespace("/").except("red"),
                    "not-red",
                    vec![2, 3],
                ),
                (
                    Broadcast::namespace("/").to("blue").except("red"),
                    "blue-not-red",
                    vec![2],
                ),
                (
                    Broadcast::namespace("/").except(ids[3].clone()),
                    "not-3",
                    vec![0, 1, 2],
                ),
                (
                    Broadcast::namespace("/")
                        .to("red")
                        .to(ids[3].clone())
                        .except(ids[0].clone()),
                    "red+3-not-0",
                    vec![1, 3],
                ),
                (Broadcast::namespace("/").to("nobody"), "none", vec![]),
            ];
            for (to, name, want) in &cases {
                let sent = net
                    .on_server(|srv, now| srv.broadcast(now, to, name, &(bin(&[1, 2]), *name)))
                    .unwrap();
                assert_eq!(sent, want.len(), "{name}");
            }
            net.settle();
            for (k, &c) in cs.iter().enumerate() {
                let want: Vec<String> = cases
                    .iter()
                    .filter(|(_, _, who)| who.contains(&k))
                    .map(|(_, name, _)| name.to_string())
                    .collect();
                assert_eq!(
                    net.received_names(c, "/"),
                    want,
                    "client {k} {transports:?} {parser:?}"
                );
                for (_, args) in net.received(c, "/") {
                    assert_eq!(args[0], bin(&[1, 2]));
                }
                assert!(net.received(c, "/other").is_empty(), "other namespace");
            }
        }
    }
}

#[test]
fn a_socket_in_three_target_rooms_receives_a_broadcast_once() {
    for parser in PARSERS {
        for transports in ALL {
            let mut net = Setup::new(transports).parser(parser).build();
            let c = net.client_in(&["/"]);
            let other = net.client_in(&["/"]);
            let sid = net.sid(c, "/");
            let so = net.sid(other, "/");
            for room in ["a", "b", "c"] {
                net.server.socket().join(&sid, room).unwrap();
            }
            net.server.socket().join(&so, "c").unwrap();
            let to = Broadcast::namespace("/").to("a").to("b").to("c");
            let sent = net
                .on_server(|srv, now| srv.broadcast(now, &to, "once", &(1,)))
                .unwrap();
            assert_eq!(sent, 2);
            let started = net
                .on_server(|srv, now| {
                    srv.broadcast_with_ack(now, &to, "once-ack", &(), Duration::from_secs(5))
                })
                .unwrap();
            assert_eq!(started.receivers, 2);
            net.settle();
            assert_eq!(
                net.received_names(c, "/"),
                ["once", "once-ack"],
                "{transports:?} {parser:?}"
            );
            assert_eq!(net.received_names(other, "/"), ["once", "once-ack"]);
        }
    }
}

#[test]
fn a_broadcast_is_the_same_bytes_for_every_receiver() {
    let mut net = Setup::new(ClientTransports::WebSocket).build();
    let cs: Vec<usize> = (0..3).map(|_| net.client_in(&["/"])).collect();
    net.on_server(|srv, now| {
        srv.broadcast(
            now,
            &Broadcast::namespace("/"),
            "news",
            &("text", bin(&[1, 2, 3]), 7),
        )
    })
    .unwrap();
    net.settle();
    let tails: Vec<Vec<Bytes>> = cs
        .iter()
        .map(|&c| net.clients[c].wire.iter().rev().take(2).cloned().collect())
        .collect();
    assert_eq!(tails[0], tails[1]);
    assert_eq!(tails[1], tails[2]);
    assert!(net
        .ws_texts(cs[0])
        .last()
        .unwrap()
        .starts_with(r#"451-["news","text",{"_placeholder":true,"num":0},7]"#));
}

#[test]
fn volatile_packets_are_dropped_for_sockets_that_cannot_take_them() {
    for transports in ALL {
        let mut setup = Setup::new(transports);
        setup.engine.ping_interval = Duration::from_secs(25);
        setup.socket.max_buffered_bytes = 2_000;
        let mut net = setup.build();
        let fast = net.client_in(&["/"]);
        let slow = net.client_in(&["/"]);
        let (sf, ss) = (net.sid(fast, "/"), net.sid(slow, "/"));
        net.stall(slow, true);
        // Fill the slow one's buffer.
        for k in 0..30u64 {
            net.on_server(|srv, now| srv.emit(now, &ss, "fill", &(k, "x".repeat(100))))
                .unwrap();
        }
        assert!(
            !net.server.socket().can_send(&ss).unwrap(),
            "{transports:?}"
        );
        assert!(net.server.socket().can_send(&sf).unwrap());
        let sent = net
            .on_server(|srv, now| {
                srv.broadcast(now, &Broadcast::namespace("/").volatile(), "tick", &(1,))
            })
            .unwrap();
        assert_eq!(sent, 1, "only the fast socket takes it");
        assert!(!net
            .on_server(|srv, now| srv.emit_volatile(now, &ss, "tick", &(2,)))
            .unwrap());
        assert!(net
            .on_server(|srv, now| srv.emit_volatile(now, &sf, "tick", &(2,)))
            .unwrap());
        net.stall(slow, false);
        net.settle();
        assert_eq!(net.received_names(fast, "/"), ["tick", "tick"]);
        let slow_got = net.received_names(slow, "/");
        assert_eq!(slow_got.len(), 30, "the non-volatile ones all arrive");
        assert!(slow_got.iter().all(|n| n == "fill"));
        // Client-side volatile emits are dropped while not connected.
        net.clients[slow].refuse = true;
        net.cut(slow);
        assert!(!net
            .on_client(slow, |cl, now| cl.emit_volatile(now, "/", "v", &()))
            .unwrap());
    }
}

#[test]
fn broadcast_with_acks_collects_one_answer_per_receiver() {
    for transports in ALL {
        let mut net = Setup::new(transports).build();
        let cs: Vec<usize> = (0..3).map(|_| net.client_in(&["/"])).collect();
        let ids: Vec<Str> = cs.iter().map(|&c| net.sid(c, "/")).collect();
        for id in &ids {
            net.server.socket().join(id, "r1").unwrap();
            net.server.socket().join(id, "r2").unwrap();
        }
        let to = Broadcast::namespace("/").to("r1").to("r2");
        // Everyone answers: complete.
        let first = net
            .on_server(|srv, now| {
                srv.broadcast_with_ack(now, &to, "poll", &(1,), Duration::from_secs(5))
            })
            .unwrap();
        assert_eq!(first.receivers, 3);
        net.settle();
        for &c in &cs {
            let id = net.clients[c]
                .events
                .iter()
                .find_map(|(_, e)| match e {
                    ClientEvent::Event { ack: Some(id), .. } => Some(*id),
                    _ => None,
                })
                .unwrap();
            net.on_client(c, |cl, now| cl.ack(now, "/", id, &(c as u64,)))
                .unwrap();
        }
        net.settle();
        let result = net.server_events.iter().find_map(|e| match e {
            ServerEvent::BroadcastAck {
                id,
                outcome,
                responses,
            } if *id == first.id => Some((*outcome, responses.clone())),
            _ => None,
        });
        let (outcome, responses) = result.expect("complete");
        assert_eq!(outcome, BroadcastAckOutcome::Complete);
        let mut who: Vec<(Str, Vec<Value>)> = responses
            .iter()
            .map(|(s, a)| (s.clone(), a.to_values().unwrap()))
            .collect();
        who.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<(Str, Vec<Value>)> = ids
            .iter()
            .zip(&cs)
            .map(|(s, &c)| (s.clone(), vec![n(c as u64)]))
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(who, want, "{transports:?}");

        // One stays silent: the deadline reports the two answers.
        let second = net
            .on_server(|srv, now| {
                srv.broadcast_with_ack(now, &to, "poll2", &(), Duration::from_secs(2))
            })
            .unwrap();
        net.settle();
        for &c in &cs[..2] {
            let id = net.clients[c]
                .events
                .iter()
                .rev()
                .find_map(|(_, e)| match e {
                    ClientEvent::Event {
                        ack: Some(id),
                        name,
                        ..
                    } if &**name == "poll2" => Some(*id),
                    _ => None,
                })
                .unwrap();
            net.on_client(c, |cl, now| cl.ack(now, "/", id, &()))
                .unwrap();
        }
        net.advance(Duration::from_secs(3));
        let result = net.server_events.iter().find_map(|e| match e {
            ServerEvent::BroadcastAck {
                id,
                outcome,
                responses,
            } if *id == second.id => Some((*outcome, responses.len())),
            _ => None,
        });
        assert_eq!(result, Some((BroadcastAckOutcome::TimedOut, 2)));
        // A late answer is ignored.
        let id = net.clients[cs[2]]
            .events
            .iter()
            .rev()
            .find_map(|(_, e)| match e {
                ClientEvent::Event { ack: Some(id), .. } => Some(*id),
                _ => None,
            })
            .unwrap();
        net.on_client(cs[2], |cl, now| cl.ack(now, "/", id, &()))
            .unwrap();
        net.settle();
        assert!(net.server_disconnects().is_empty());
        assert!(
            net.server.socket().poll_timeout().is_none(),
            "nothing pending"
        );
    }
}

#[test]
fn per_socket_data_lives_as_long_as_the_socket() {
    for transports in ALL {
        let mut net = Setup::new(transports).build();
        let c = net.client_in(&["/"]);
        let sid = net.sid(c, "/");
        net.server
            .socket()
            .set_data(&sid, vec!["user-42".to_owned()])
            .unwrap();
        net.on_client(c, |cl, now| cl.emit(now, "/", "hello", &()))
            .unwrap();
        net.settle();
        let (sock, ..) = net.server_got("hello")[0].clone();
        let data = net
            .server
            .socket()
            .data_mut::<Vec<String>>(&sock)
            .unwrap()
            .unwrap();
        data.push("seen".into());
        assert_eq!(
            net.server
                .socket()
                .data::<Vec<String>>(&sid)
                .unwrap()
                .unwrap(),
            &["user-42".to_owned(), "seen".to_owned()]
        );
        assert_eq!(net.server.socket().data::<u32>(&sid).unwrap(), None);
        net.on_client(c, |cl, now| cl.disconnect(now, "/")).unwrap();
        net.settle();
        assert!(net.server.socket().data::<Vec<String>>(&sid).is_err());
    }
}

#[test]
fn a_slow_consumer_is_disconnected_with_a_clear_reason_and_can_wait_for_room() {
    for transports in ALL {
        let mut setup = Setup::new(transports);
        setup.engine.ping_interval = Duration::from_secs(25);
        setup.socket.max_buffered_bytes = 2_000;
        setup.socket.max_buffered_bytes_hard = 50_000;
        setup.socket.slow_consumer_grace = Duration::from_secs(2);
        let mut net = setup.build();
        let c = net.client_in(&["/"]);
        let sid = net.sid(c, "/");
        // The application asks before sending and waits for Writable.
        net.stall(c, true);
        let mut sent = 0u64;
        while net.server.socket().can_send(&sid).unwrap() {
            net.on_server(|srv, now| srv.emit(now, &sid, "data", &(sent, "y".repeat(100))))
                .unwrap();
            sent += 1;
            assert!(sent < 1000);
        }
        net.advance(Duration::from_secs(1));
        net.stall(c, false);
        net.settle();
        assert!(
            net.server_events
                .iter()
                .any(|e| matches!(e, ServerEvent::Writable { socket } if *socket == sid)),
            "{transports:?}"
        );
        assert!(net.server.socket().can_send(&sid).unwrap());
        assert_eq!(net.received(c, "/").len() as u64, sent, "nothing lost");

        // An application that ignores it: over the bound for longer than
        // the grace, the session is closed as a slow consumer.
        net.stall(c, true);
        for k in 0..40u64 {
            net.on_server(|srv, now| srv.emit(now, &sid, "more", &(k, "z".repeat(100))))
                .unwrap();
        }
        net.advance(Duration::from_secs(3));
        assert_eq!(
            net.server_disconnects(),
            vec![(sid.clone(), "/".into(), DisconnectReason::SlowConsumer)],
            "{transports:?}"
        );
        assert_eq!(DisconnectReason::SlowConsumer.as_str(), "slow consumer");

        // Far over the hard bound: closed at once.
        net.stall(c, false);
        net.advance(Duration::from_secs(10));
        let sid = net.sid(c, "/");
        net.stall(c, true);
        let before = net.server_disconnects().len();
        for k in 0..600u64 {
            let _ = net.on_server(|srv, now| srv.emit(now, &sid, "flood", &(k, "w".repeat(100))));
        }
        net.drive();
        assert_eq!(
            net.server_disconnects()[before..],
            [(sid.clone(), "/".into(), DisconnectReason::SlowConsumer)],
            "{transports:?}"
        );
        assert!(net.server.socket().is_connected(&sid).is_err());
        net.stall(c, false);
    }
}

#[test]
fn a_slow_consumer_with_recovery_gets_what_it_missed_on_reconnect() {
    for transports in ALL {
        let mut setup = Setup::new(transports).recovery();
        setup.engine.ping_interval = Duration::from_secs(25);
        setup.socket.max_buffered_bytes = 2_000;
        setup.socket.slow_consumer_grace = Duration::from_secs(1);
        setup.client.randomization_factor = 0.0;
        let mut net = setup.build();
        let c = net.client_in(&["/"]);
        let sid = net.sid(c, "/");
        net.stall(c, true);
        let mut k = 0u64;
        for _ in 0..40 {
            net.on_server(|srv, now| {
                srv.broadcast(now, &Broadcast::namespace("/"), "n", &(k, "p".repeat(100)))
            })
            .unwrap();
            k += 1;
        }
        net.advance(Duration::from_secs(2));
        assert_eq!(
            net.server_disconnects()[0].2,
            DisconnectReason::SlowConsumer
        );
        // What the server already wrote is lost with the connection.
        net.clients[c].refuse = true;
        net.cut_client_side(c);
        net.parked.clear();
        net.clients[c].stalled = false;
        for _ in 0..10 {
            net.on_server(|srv, now| {
                srv.broadcast(now, &Broadcast::namespace("/"), "n", &(k, "p".repeat(100)))
            })
            .unwrap();
            k += 1;
        }
        net.clients[c].refuse = false;
        net.advance(Duration::from_secs(10));
        assert_eq!(net.sid(c, "/"), sid, "same socket id");
        let got: Vec<Value> = net
            .received(c, "/")
            .into_iter()
            .map(|(_, a)| a[0].clone())
            .collect();
        assert_eq!(got, (0..k).map(n).collect::<Vec<_>>(), "{transports:?}");
    }
}

// ===================================================================
// Client reconnection
// ===================================================================

fn attempt_times(net: &Net, c: usize) -> Vec<(u32, Instant)> {
    net.clients[c]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            ClientEvent::Reconnecting { attempt } => Some((*attempt, *t)),
            _ => None,
        })
        .collect()
}

#[test]
fn reconnection_delays_follow_the_options() {
    for transports in ALL {
        // No jitter: 1, 2, 4, 5, 5 s.
        let mut setup = Setup::new(transports);
        setup.client.randomization_factor = 0.0;
        let mut net = setup.build();
        let c = net.client_in(&["/"]);
        net.clients[c].refuse = true;
        let lost = net.now;
        net.cut(c);
        net.advance(Duration::from_secs(18));
        let times = attempt_times(&net, c);
        let mut prev = lost;
        let mut delays = Vec::new();
        for (k, (attempt, t)) in times.iter().enumerate() {
            assert_eq!(*attempt as usize, k + 1);
            delays.push((*t - prev).as_millis());
            prev = *t;
        }
        assert_eq!(delays, [1000, 2000, 4000, 5000, 5000], "{transports:?}");
        net.clients[c].refuse = false;
        net.advance(Duration::from_secs(6));
        assert!(net.is_connected(c, "/"));
        assert!(net.clients[c]
            .events
            .iter()
            .any(|(_, e)| matches!(e, ClientEvent::Reconnected { attempt: 6 })));
    }

    // Jitter within ±50 %, from the seeded generator: two identical runs
    // give identical timings, a different seed different ones.
    let run = |client_index: usize| {
        let mut net = Setup::new(ClientTransports::WebSocket).build();
        for _ in 0..client_index {
            net.add_client();
        }
        let c = net.client_in(&["/"]);
        net.clients[c].refuse = true;
        let lost = net.now;
        net.cut(c);
        net.advance(Duration::from_secs(30));
        let mut prev = lost;
        attempt_times(&net, c)
            .into_iter()
            .map(|(k, t)| {
                let d = t - prev;
                prev = t;
                (k, d)
            })
            .collect::<Vec<_>>()
    };
    let a = run(0);
    assert_eq!(a, run(0));
    assert_ne!(a, run(1));
    assert!(a.len() >= 6);
    for (k, d) in &a {
        // ±50 % around 1 s doubling per attempt, then capped at 5 s.
        let raw = 1000u128 << (k - 1);
        let ms = d.as_millis();
        assert!(
            ms >= (raw / 2).min(5000) && ms <= (raw * 3 / 2).min(5000),
            "attempt {k}: {ms} ms around {raw} ms"
        );
    }
    assert!(a.iter().any(|(_, d)| d.as_millis() % 1000 != 0), "jittered");
}

#[test]
fn reconnection_gives_up_after_the_attempt_limit_or_when_disabled() {
    for transports in ALL {
        let mut setup = Setup::new(transports);
        setup.client.reconnection_attempts = 3;
        let mut net = setup.build();
        let c = net.client_in(&["/"]);
        net.clients[c].refuse = true;
        net.cut(c);
        net.advance(Duration::from_secs(60));
        assert_eq!(attempt_times(&net, c).len(), 3, "{transports:?}");
        assert!(net.clients[c]
            .events
            .iter()
            .any(|(_, e)| matches!(e, ClientEvent::ReconnectFailed)));
        assert_eq!(net.clients[c].client.poll_timeout(), None);
        // Connecting again starts afresh.
        net.clients[c].refuse = false;
        net.connect(c, "/", None);
        net.settle();
        assert!(net.is_connected(c, "/"));

        let mut setup = Setup::new(transports);
        setup.client.reconnection = false;
        let mut net = setup.build();
        let c = net.client_in(&["/"]);
        net.cut(c);
        net.advance(Duration::from_secs(60));
        assert!(attempt_times(&net, c).is_empty());
        assert!(!net.is_connected(c, "/"));
        assert_eq!(net.server_connects().len(), 1);
    }
}

#[test]
fn reconnection_rejoins_every_namespace_with_its_auth() {
    for parser in PARSERS {
        for transports in ALL {
            let mut net = Setup::new(transports).parser(parser).build();
            let c = net.add_client();
            net.connect(c, "/", Some(obj(&[("k", s("root"))])));
            net.connect(c, "/a", Some(obj(&[("k", s("a"))])));
            net.connect(c, "/b", None);
            net.settle();
            // Left on purpose: must not come back.
            net.on_client(c, |cl, now| cl.disconnect(now, "/b"))
                .unwrap();
            // Emits made while disconnected are buffered and sent after.
            net.clients[c].refuse = true;
            net.cut(c);
            net.on_client(c, |cl, now| cl.emit(now, "/a", "queued", &(1,)))
                .unwrap();
            net.advance(Duration::from_secs(2));
            net.clients[c].refuse = false;
            net.advance(Duration::from_secs(10));
            assert!(net.is_connected(c, "/") && net.is_connected(c, "/a"));
            assert!(!net.is_connected(c, "/b"));
            let connects = net.server_connects();
            let again: Vec<_> = connects[3..]
                .iter()
                .map(|(_, nsp, auth, _)| (nsp.to_string(), auth.clone()))
                .collect();
            let mut again = again;
            again.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(
                again,
                vec![
                    ("/".into(), Some(obj(&[("k", s("root"))]))),
                    ("/a".into(), Some(obj(&[("k", s("a"))]))),
                ],
                "{transports:?} {parser:?}"
            );
            assert_eq!(net.server_got("queued").len(), 1);
        }
    }
}

#[test]
fn client_disconnect_stops_reconnection_for_good() {
    for transports in ALL {
        // While waiting for the next attempt.
        let mut net = Setup::new(transports).build();
        let c = net.client_in(&["/", "/a"]);
        net.clients[c].refuse = true;
        net.cut(c);
        net.advance(Duration::from_secs(3));
        net.on_client(c, |cl, now| cl.disconnect_all(now));
        net.clients[c].refuse = false;
        let attempts = attempt_times(&net, c).len();
        net.advance(Duration::from_secs(60));
        assert_eq!(attempt_times(&net, c).len(), attempts, "{transports:?}");
        assert_eq!(net.server.engine().session_count(), 0);
        assert_eq!(net.clients[c].client.poll_timeout(), None);

        // While an attempt is opening.
        let mut net = Setup::new(transports).build();
        let c = net.client_in(&["/"]);
        net.clients[c].refuse = true;
        net.cut(c);
        net.clients[c].refuse = false;
        // Stop exactly when the first attempt starts.
        let t = net.clients[c].client.poll_timeout().unwrap();
        net.now = t;
        net.clients[c].client.handle_timeout(t);
        net.on_client(c, |cl, now| cl.disconnect_all(now));
        net.advance(Duration::from_secs(60));
        assert_eq!(net.server_connects().len(), 1, "{transports:?}");
        assert!(!net.is_connected(c, "/"));
        assert_eq!(net.server.engine().session_count(), 0);
    }
}

#[test]
fn clients_survive_a_server_restart() {
    for parser in PARSERS {
        for transports in ALL {
            let mut net = Setup::new(transports).parser(parser).recovery().build();
            let cs: Vec<usize> = (0..3).map(|_| net.client_in(&["/", "/chat"])).collect();
            let before: Vec<Str> = cs.iter().map(|&c| net.sid(c, "/")).collect();
            net.on_server(|srv, now| srv.broadcast(now, &Broadcast::namespace("/"), "one", &()))
                .unwrap();
            net.settle();
            for &c in &cs {
                net.clients[c].refuse = true;
            }
            net.restart_server();
            net.advance(Duration::from_secs(3));
            for &c in &cs {
                net.clients[c].refuse = false;
            }
            net.advance(Duration::from_secs(10));
            for (k, &c) in cs.iter().enumerate() {
                assert!(net.is_connected(c, "/") && net.is_connected(c, "/chat"));
                // The new server knows nothing: fresh sockets.
                assert_ne!(net.sid(c, "/"), before[k]);
                assert!(net.clients[c].events.iter().any(|(_, e)| matches!(e,
                    ClientEvent::Connected { recovered: false, nsp, .. } if &**nsp == "/")));
            }
            assert_eq!(net.server_connects().len(), 6 + 6);
            net.on_server(|srv, now| {
                srv.broadcast(now, &Broadcast::namespace("/chat"), "two", &())
            })
            .unwrap();
            net.settle();
            for &c in &cs {
                assert_eq!(
                    net.received_names(c, "/chat"),
                    ["two"],
                    "{transports:?} {parser:?}"
                );
            }
        }
    }
}

// ===================================================================
// Connection state recovery
// ===================================================================

#[test]
fn recovery_wire_format_pid_offsets_and_auth() {
    let mut net = Setup::new(ClientTransports::WebSocket).recovery().build();
    let c = net.add_client();
    net.connect(c, "/", Some(obj(&[("token", s("t"))])));
    net.settle();
    let sid = net.sid(c, "/");
    net.on_server(|srv, now| srv.emit(now, &sid, "e", &("a",)))
        .unwrap();
    net.on_server(|srv, now| srv.broadcast(now, &Broadcast::namespace("/"), "f", &(1,)))
        .unwrap();
    net.settle();
    let texts = net.ws_texts(c);
    let reply = texts.iter().find(|t| t.starts_with("40")).unwrap();
    let prefix = format!(r#"40{{"sid":"{sid}","pid":""#);
    assert!(reply.starts_with(&prefix), "{reply}");
    let pid = reply[prefix.len()..reply.len() - 2].to_owned();
    assert!(!pid.is_empty() && !pid.contains('"'));
    assert!(
        texts.contains(&r#"42["e","a","0"]"#.to_owned()),
        "{texts:?}"
    );
    assert!(texts.contains(&r#"42["f",1,"1"]"#.to_owned()), "{texts:?}");
    // The application sees the arguments without the offset.
    assert_eq!(
        net.received(c, "/"),
        vec![("e".into(), vec![s("a")]), ("f".into(), vec![n(1)])]
    );
    // Reconnecting sends pid and offset merged into the auth.
    net.cut(c);
    net.advance(Duration::from_secs(10));
    let (_, _, auth, recovered) = net.server_connects().last().unwrap().clone();
    assert!(recovered);
    assert_eq!(
        auth,
        Some(obj(&[
            ("pid", s(&pid)),
            ("offset", s("1")),
            ("token", s("t"))
        ]))
    );
}

/// A recovery scenario: a socket in rooms with data, events it received,
/// then a break of the given kind, events it missed, and the return.
fn recovery_after(transports: ClientTransports, parser: AnyParser, kind: &str) {
    let mut setup = Setup::new(transports).parser(parser).recovery();
    setup.client.randomization_factor = 0.0;
    let mut net = setup.build();
    let c = net.client_in(&["/", "/chat"]);
    let other = net.client_in(&["/"]);
    let sid = net.sid(c, "/");
    let chat = net.sid(c, "/chat");
    net.server.socket().join(&sid, "red").unwrap();
    net.server.socket().join(&sid, "blue").unwrap();
    net.server.socket().set_data(&sid, 42u32).unwrap();
    let mut k = 0u64;
    let emit_all = |net: &mut Net, k: &mut u64| {
        let sid = sid.clone();
        net.on_server(|srv, now| {
            srv.broadcast(
                now,
                &Broadcast::namespace("/"),
                "all",
                &(*k, bin(&[*k as u8])),
            )
            .unwrap();
            srv.broadcast(now, &Broadcast::namespace("/").to("red"), "red", &(*k,))
                .unwrap();
            srv.broadcast(now, &Broadcast::namespace("/").to("green"), "green", &(*k,))
                .unwrap();
            // A direct emit, which still reaches the socket while it is
            // disconnected (for replay).
            srv.broadcast(now, &Broadcast::namespace("/").to(sid), "direct", &(*k,))
                .unwrap();
        });
        *k += 1;
    };
    for _ in 0..3 {
        emit_all(&mut net, &mut k);
    }
    net.settle();
    let received_before = net.received(c, "/").len();
    assert_eq!(received_before, 9);
    let other_before = net.received(other, "/").len();

    match kind {
        "transport close" => {
            net.clients[c].refuse = true;
            net.cut(c);
        }
        "ping timeout" => {
            // The network goes silent both ways.
            net.clients[c].stalled = true;
            net.clients[c].refuse = true;
            net.advance(Duration::from_secs(1));
            assert_eq!(net.server_disconnects()[0].2, DisconnectReason::PingTimeout);
            net.cut_client_side(c);
            net.parked.clear();
            net.clients[c].stalled = false;
        }
        "forced close" => {
            // The client's Engine.IO layer sends a close packet without
            // leaving the namespaces (as in the reference test suite).
            let eio = net.eio(c);
            net.clients[c].refuse = true;
            match transports {
                ClientTransports::WebSocket => net.raw_ws_to_server(c, "1"),
                _ => net.raw_post(&eio, "1"),
            }
            net.settle();
            assert!(
                net.server_disconnects()
                    .iter()
                    .all(|d| d.2.is_recoverable()),
                "{:?}",
                net.server_disconnects()
            );
            net.cut_client_side(c);
        }
        other => panic!("{other}"),
    }
    assert_eq!(net.server_disconnects().len(), 2, "{kind}");
    for _ in 0..5 {
        emit_all(&mut net, &mut k);
    }
    net.on_server(|srv, now| {
        srv.broadcast(now, &Broadcast::namespace("/chat").volatile(), "lost", &())
    })
    .unwrap();
    net.advance(Duration::from_millis(500));
    net.clients[c].refuse = false;
    net.advance(Duration::from_secs(10));

    assert!(net.is_connected(c, "/") && net.is_connected(c, "/chat"));
    assert_eq!(net.sid(c, "/"), sid, "{kind} {transports:?} {parser:?}");
    assert_eq!(net.sid(c, "/chat"), chat);
    let recovered: Vec<bool> = net
        .server_connects()
        .iter()
        .skip(3)
        .map(|(_, _, _, r)| *r)
        .collect();
    assert_eq!(recovered, [true, true], "{kind}");
    assert!(net.clients[c].events.iter().any(|(_, e)| matches!(e,
        ClientEvent::Connected { recovered: true, nsp, .. } if &**nsp == "/")));
    let mut rooms = net.server.socket().rooms(&sid).unwrap();
    rooms.sort();
    let mut want = vec![sid.clone(), "blue".into(), "red".into()];
    want.sort();
    assert_eq!(rooms, want);
    assert_eq!(net.server.socket().data::<u32>(&sid).unwrap(), Some(&42));
    // Every event, each once, in order.
    let mut want = Vec::new();
    for j in 0..k {
        want.push(("all".to_owned(), vec![n(j), bin(&[j as u8])]));
        want.push(("red".to_owned(), vec![n(j)]));
        want.push(("direct".to_owned(), vec![n(j)]));
    }
    assert_eq!(
        net.received(c, "/"),
        want,
        "{kind} {transports:?} {parser:?}"
    );
    assert!(net.received(c, "/chat").is_empty(), "volatile not replayed");
    // The other client got its broadcasts once too.
    assert_eq!(net.received(other, "/").len(), other_before + 5);
    // And the restored socket works as before.
    net.on_server(|srv, now| {
        srv.broadcast(now, &Broadcast::namespace("/").to("blue"), "after", &())
    })
    .unwrap();
    net.settle();
    assert_eq!(net.received_names(c, "/").last().unwrap(), "after");
}

#[test]
fn recovery_after_transport_close_replays_every_missed_event_in_order() {
    for parser in PARSERS {
        for transports in ALL {
            recovery_after(transports, parser, "transport close");
        }
    }
}

#[test]
fn recovery_after_ping_timeout_replays_every_missed_event_in_order() {
    for transports in ALL {
        recovery_after(transports, AnyParser::Json(JsonParser), "ping timeout");
    }
}

#[test]
fn recovery_after_a_forced_close_replays_every_missed_event_in_order() {
    for parser in PARSERS {
        for transports in [ClientTransports::Polling, ClientTransports::WebSocket] {
            recovery_after(transports, parser, "forced close");
        }
    }
}

#[test]
fn no_recovery_after_an_explicit_disconnect() {
    for transports in ALL {
        let mut net = Setup::new(transports).recovery().build();
        let c = net.client_in(&["/"]);
        let sid = net.sid(c, "/");
        net.on_server(|srv, now| srv.emit(now, &sid, "e", &()))
            .unwrap();
        net.settle();
        // Learn the pid from a first recovery.
        net.cut(c);
        net.advance(Duration::from_secs(10));
        let (_, _, auth, recovered) = net.server_connects().last().unwrap().clone();
        assert!(recovered);
        let auth = auth.unwrap();
        // The client leaves.
        net.on_client(c, |cl, now| cl.disconnect(now, "/")).unwrap();
        net.settle();
        // Presenting the old pid and offset again gets a new socket.
        net.connect(c, "/", Some(auth.clone()));
        net.settle();
        let (new_sid, _, _, recovered) = net.server_connects().last().unwrap().clone();
        assert!(!recovered, "{transports:?}");
        assert_ne!(new_sid, sid);
        assert!(net.clients[c].events.iter().any(|(_, e)| matches!(e,
            ClientEvent::Connected { recovered: false, sid: s, .. } if *s == new_sid)));

        // Same after the server disconnects the socket: the client does not
        // even come back.
        let mut net = Setup::new(transports).recovery().build();
        let c = net.client_in(&["/"]);
        let sid = net.sid(c, "/");
        net.on_server(|srv, now| srv.disconnect(now, &sid)).unwrap();
        net.advance(Duration::from_secs(10));
        assert_eq!(net.server_connects().len(), 1);
        assert!(!net.is_connected(c, "/"));
    }
}

#[test]
fn recovery_takes_over_a_socket_the_server_still_thinks_connected() {
    for parser in PARSERS {
        for transports in ALL {
            let mut setup = Setup::new(transports).parser(parser).recovery();
            // The server would notice the dead connection only after 45 s.
            setup.engine.ping_interval = Duration::from_secs(25);
            setup.engine.ping_timeout = Duration::from_secs(20);
            setup.client.randomization_factor = 0.0;
            let mut net = setup.build();
            let c = net.client_in(&["/"]);
            let sid = net.sid(c, "/");
            net.server.socket().join(&sid, "room").unwrap();
            net.server
                .socket()
                .set_data(&sid, "data".to_owned())
                .unwrap();
            net.on_server(|srv, now| srv.broadcast(now, &Broadcast::namespace("/"), "e", &(0,)))
                .unwrap();
            net.settle();
            // Only the client notices the connection died.
            net.cut_client_side(c);
            for k in 1..4u64 {
                net.on_server(|srv, now| {
                    srv.broadcast(now, &Broadcast::namespace("/").to("room"), "e", &(k,))
                })
                .unwrap();
            }
            assert!(net.server.socket().is_connected(&sid).unwrap());
            net.advance(Duration::from_secs(2));
            // The client is back: the server took the old socket over.
            assert!(net.is_connected(c, "/"));
            assert_eq!(net.sid(c, "/"), sid, "{transports:?} {parser:?}");
            assert_eq!(
                net.server_disconnects(),
                vec![(sid.clone(), "/".into(), DisconnectReason::TransportClose)]
            );
            assert!(net.server_connects().last().unwrap().3, "recovered");
            let got: Vec<Value> = net
                .received(c, "/")
                .into_iter()
                .map(|(_, a)| a[0].clone())
                .collect();
            assert_eq!(got, vec![n(0), n(1), n(2), n(3)]);
            assert_eq!(
                net.server.socket().data::<String>(&sid).unwrap().unwrap(),
                "data"
            );
            // The old connection's death, noticed much later, must not
            // touch the restored socket.
            net.advance(Duration::from_secs(60));
            assert_eq!(net.server_disconnects().len(), 1, "{transports:?}");
            assert!(net.server.socket().is_connected(&sid).unwrap());
            assert_eq!(net.server.engine().session_count(), 1);
            net.on_server(|srv, now| {
                srv.broadcast(now, &Broadcast::namespace("/").to("room"), "e", &(4,))
            })
            .unwrap();
            net.settle();
            assert_eq!(net.received(c, "/").len(), 5);
        }
    }
}

#[test]
fn a_drop_before_the_connect_reply_delivers_no_held_event_twice() {
    for with_offset in [true, false] {
        for transports in [ClientTransports::WebSocket, ClientTransports::Polling] {
            let mut setup = Setup::new(transports).recovery();
            setup.client.randomization_factor = 0.0;
            let mut net = setup.build();
            let c = net.client_in(&["/"]);
            let sid = net.sid(c, "/");
            let mut k = 0u64;
            if with_offset {
                net.on_server(|srv, now| srv.emit(now, &sid, "e", &(k,)))
                    .unwrap();
                k += 1;
                net.settle();
            }
            net.clients[c].refuse = true;
            net.cut(c);
            for _ in 0..3 {
                net.on_server(|srv, now| {
                    srv.broadcast(now, &Broadcast::namespace("/").to(sid.clone()), "e", &(k,))
                })
                .unwrap();
                k += 1;
            }
            // The client comes back; the server replays, but the connection
            // dies before the CONNECT reply gets through.
            net.auto_accept = false;
            net.clients[c].refuse = false;
            net.advance(Duration::from_secs(2));
            let (restored, _, _, recovered) = net.server_connects().last().unwrap().clone();
            assert!(recovered);
            net.on_server(|srv, now| srv.accept(now, &restored))
                .unwrap();
            // Deliver only part of what the server wrote.
            net.clients[c].stalled = true;
            net.drive();
            let parked: Vec<ConnId> = net.parked.iter().copied().collect();
            let mut delivered_events = 0;
            'out: for s in parked {
                while let Some(t) = net.server.poll_transmit(s) {
                    let Transmit::Data(bytes) = t else { break };
                    let Some(&(i, cc)) = net.down.get(&s) else {
                        break;
                    };
                    let now = net.now;
                    net.clients[i].client.handle_read(now, cc, &bytes);
                    delivered_events += 1;
                    if delivered_events == 2 {
                        break 'out;
                    }
                }
            }
            net.parked.clear();
            net.clients[c].stalled = false;
            net.clients[c].refuse = true;
            net.cut(c);
            assert!(!net.is_connected(c, "/"));
            net.auto_accept = true;
            net.clients[c].refuse = false;
            net.advance(Duration::from_secs(5));
            assert!(net.is_connected(c, "/"));
            assert_eq!(net.sid(c, "/"), sid);
            let got: Vec<Value> = net
                .received(c, "/")
                .into_iter()
                .map(|(_, a)| a[0].clone())
                .collect();
            assert_eq!(
                got,
                (0..k).map(n).collect::<Vec<_>>(),
                "{transports:?} with_offset={with_offset}"
            );
        }
    }
}

#[test]
fn volatile_events_keep_their_arguments_with_recovery_on() {
    for transports in ALL {
        let mut net = Setup::new(transports).recovery().build();
        let c = net.client_in(&["/"]);
        let sid = net.sid(c, "/");
        net.on_server(|srv, now| srv.emit_volatile(now, &sid, "v", &("last",)))
            .unwrap();
        net.on_server(|srv, now| {
            srv.broadcast(now, &Broadcast::namespace("/").volatile(), "w", &(1, "x"))
        })
        .unwrap();
        net.on_server(|srv, now| srv.emit(now, &sid, "e", &("kept",)))
            .unwrap();
        net.settle();
        assert_eq!(
            net.received(c, "/"),
            vec![
                ("v".into(), vec![s("last")]),
                ("w".into(), vec![n(1), s("x")]),
                ("e".into(), vec![s("kept")]),
            ],
            "{transports:?}"
        );
        // And recovery still works from there.
        net.cut(c);
        net.on_server(|srv, now| {
            srv.broadcast(
                now,
                &Broadcast::namespace("/").to(sid.clone()),
                "missed",
                &(),
            )
        })
        .unwrap();
        net.advance(Duration::from_secs(10));
        assert_eq!(net.sid(c, "/"), sid);
        assert_eq!(net.received_names(c, "/").last().unwrap(), "missed");
    }
}

#[test]
fn several_clients_share_one_server() {
    // Many clients on mixed transports and namespaces at once.
    let mut net = Setup::new(ClientTransports::Upgrade).build();
    let mut clients = Vec::new();
    for k in 0..12 {
        net.setup.transports = ALL[k % 3];
        let c = net.client_in(if k % 2 == 0 { &["/", "/even"] } else { &["/"] });
        clients.push(c);
    }
    net.on_server(|srv, now| srv.broadcast(now, &Broadcast::namespace("/even"), "hi", &()))
        .unwrap();
    net.on_server(|srv, now| srv.broadcast(now, &Broadcast::namespace("/"), "all", &()))
        .unwrap();
    net.settle();
    for (k, &c) in clients.iter().enumerate() {
        assert_eq!(net.received_names(c, "/"), ["all"]);
        let even = net.received_names(c, "/even");
        assert_eq!(even.len(), usize::from(k % 2 == 0));
    }
    assert_eq!(net.server.engine().session_count(), 12);
}

/// One read's worth of masked WebSocket frames `42<id>["echo","..."]`, ack
/// ids counting from `*next_id` (about `size` bytes).
fn acked_event_flood_read(next_id: &mut u64, size: usize) -> Vec<u8> {
    let mut read = Vec::new();
    while read.len() < size {
        let text = format!(r#"42{}["echo","{}"]"#, *next_id, "x".repeat(20));
        *next_id += 1;
        read.push(0x81);
        push_len(&mut read, text.len(), 0x80);
        read.extend_from_slice(&[0, 0, 0, 0]);
        read.extend_from_slice(text.as_bytes());
    }
    read
}

/// Feeds `s` reads of acked events while the server wants to read it, the
/// application acking each event (and echoing it when `echo`); `check`
/// looks at the accounting after each read. Returns the events sent.
fn flood_while_readable(
    net: &mut Net,
    s: ConnId,
    read_size: usize,
    echo: bool,
    mut check: impl FnMut(&mut Net, usize),
) -> u64 {
    let mut next_id = 0;
    let mut handled = 0;
    let mut reads = 0;
    while net.server.wants_read(s) {
        let read = acked_event_flood_read(&mut next_id, read_size);
        let now = net.now;
        net.server.handle_read(now, s, &read);
        net.drive();
        reads += 1;
        let got = net.server_got("echo");
        for (sock, args, ack) in &got[handled..] {
            net.on_server(|srv, now| {
                srv.ack(now, sock, ack.unwrap(), args)?;
                if echo {
                    srv.emit(now, sock, "echo-back", args)?;
                }
                Ok::<_, socket::ServerError>(())
            })
            .unwrap();
        }
        handled = got.len();
        check(net, reads);
        assert!(reads < 10_000, "never paused");
    }
    assert_eq!(handled as u64, next_id, "every event read was handled");
    next_id
}

#[test]
fn acked_event_flood_from_a_peer_that_never_reads_stops_reading_at_the_soft_bound() {
    let soft = 64 * 1024;
    let read_size = 4096;
    let mut setup = Setup::new(ClientTransports::WebSocket);
    setup.engine.ping_interval = Duration::from_secs(25);
    setup.socket.max_buffered_bytes = soft;
    let mut net = setup.build();
    let c = net.client_in(&["/"]);
    let sid = net.sid(c, "/");
    let eio = net.eio(c);
    let s = net.only_server_conn(c);
    // The peer reads nothing from now on.
    net.stall(c, true);
    let sent = flood_while_readable(&mut net, s, read_size, true, |net, reads| {
        let buffered = net.server.socket().session_buffered(&eio).unwrap();
        let engine_buffered = net.server.engine().conn_buffered(s).unwrap();
        // One read of ~40-byte events makes at most ~2.5 times its size in
        // acks and echoes.
        assert!(
            buffered <= soft + 3 * read_size && engine_buffered <= soft + 3 * read_size,
            "{buffered} / {engine_buffered} bytes owed after {reads} reads"
        );
    });
    assert!(net.server.socket().session_buffered(&eio).unwrap() > soft);
    assert!(net.server_disconnects().is_empty());
    // The peer reads again: everything owed arrives, reading resumes, and
    // the accounting and the queues come back down.
    net.stall(c, false);
    net.settle();
    assert!(net.server.wants_read(s), "readable once drained");
    assert_eq!(net.server.socket().session_buffered(&eio), Some(0));
    assert_eq!(net.server.engine().conn_buffered(s), Some(0));
    let (entries, bytes) = net.server.engine().conn_capacity(s).unwrap();
    assert!(
        entries <= crate::memory::KEEP_QUEUE_CAPACITY,
        "{entries} queue entries kept"
    );
    assert!(bytes <= 2 * crate::memory::KEEP_BUFFER_CAPACITY);
    let echoes = net
        .received(c, "/")
        .iter()
        .filter(|(name, _)| name == "echo-back")
        .count();
    assert_eq!(echoes as u64, sent, "every event read was handled");
    assert!(net.is_connected(c, "/"), "{sid} still connected");
}

#[test]
fn acked_event_flood_stops_reading_at_the_frame_bound_before_the_byte_bound() {
    let frames = 256;
    let read_size = 4096;
    let mut setup = Setup::new(ClientTransports::WebSocket);
    setup.engine.ping_interval = Duration::from_secs(25);
    setup.engine.max_buffered_frames = frames;
    let mut net = setup.build();
    let c = net.client_in(&["/"]);
    let s = net.only_server_conn(c);
    net.stall(c, true);
    flood_while_readable(&mut net, s, read_size, false, |_, _| {});
    // Acks of ~30 bytes each: the frame bound (plus one read's acks)
    // stopped reading far below the 1 MiB byte bounds.
    let owed = net.server.engine().conn_buffered(s).unwrap();
    assert!(owed <= (frames + read_size / 30) * 40, "{owed} bytes owed");
    net.stall(c, false);
    net.settle();
    assert!(net.server.wants_read(s), "readable once drained");
}
