//! End-to-end scenarios: a [`ClientEndpoint`] and a [`ServerEndpoint`]
//! driven against each other in virtual time, over each transport.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;
use crate::engine::{ClientTransports, Transmit};
use crate::fuzzing::FuzzRng;
use crate::parser::JsonParser;
use crate::socket::{AckOutcome, ClientEvent, ServerEvent};
use crate::Value;

struct World {
    now: Instant,
    server: ServerEndpoint<JsonParser>,
    client: ClientEndpoint<JsonParser>,
    /// client conn -> server conn
    up: HashMap<ConnId, ConnId>,
    down: HashMap<ConnId, ConnId>,
    server_events: Vec<ServerEvent>,
    client_events: Vec<ClientEvent>,
    /// Refuse new connections (the server is "down").
    refuse: bool,
}

impl World {
    fn new(transports: ClientTransports) -> World {
        let mut seed = 1;
        let rngs: RngFactory = Box::new(move || {
            seed += 1;
            Box::new(FuzzRng::new(seed)) as Box<dyn RngCore + Send>
        });
        let engine_config = engine::ServerConfig {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let socket_config = socket::ServerConfig {
            namespaces: vec![socket::NamespaceMatcher::Any],
            ..Default::default()
        };
        World {
            now: Instant::now(),
            server: ServerEndpoint::new(
                engine_config,
                socket_config,
                JsonParser,
                Box::new(FuzzRng::new(100)),
                Box::new(FuzzRng::new(200)),
            ),
            client: ClientEndpoint::new(
                engine::ClientConfig {
                    host: "localhost".into(),
                    transports,
                    ..Default::default()
                },
                socket::ClientConfig::default(),
                JsonParser,
                rngs,
            ),
            up: HashMap::new(),
            down: HashMap::new(),
            server_events: Vec::new(),
            client_events: Vec::new(),
            refuse: false,
        }
    }

    /// Exchange everything until both sides are quiet.
    fn drive(&mut self) {
        let now = self.now;
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(action) = self.client.poll_action() {
                moved = true;
                match action {
                    ClientAction::Connect(c) => {
                        if self.refuse {
                            self.client.handle_eof(now, c);
                        } else {
                            let s = self.server.handle_connection(now, None);
                            self.up.insert(c, s);
                            self.down.insert(s, c);
                            self.client.handle_connected(now, c);
                        }
                    }
                    ClientAction::Data(c, bytes) => {
                        if let Some(&s) = self.up.get(&c) {
                            self.server.handle_read(now, s, &bytes);
                        }
                    }
                    ClientAction::Close(c) => {
                        if let Some(s) = self.up.remove(&c) {
                            self.down.remove(&s);
                            self.server.handle_eof(now, s);
                        }
                    }
                }
            }
            while let Some(s) = self.server.poll_ready() {
                while let Some(t) = self.server.poll_transmit(s) {
                    moved = true;
                    match t {
                        Transmit::Data(bytes) => {
                            if let Some(&c) = self.down.get(&s) {
                                self.client.handle_read(now, c, &bytes);
                            }
                        }
                        Transmit::Close => {
                            if let Some(c) = self.down.remove(&s) {
                                self.up.remove(&c);
                                self.client.handle_eof(now, c);
                            }
                        }
                    }
                }
            }
            while let Some(event) = self.server.poll_event() {
                moved = true;
                if let ServerEvent::Connect { socket, .. } = &event {
                    self.server.socket().accept(now, socket).unwrap();
                    self.server.pump(now);
                }
                self.server_events.push(event);
            }
            while let Some(event) = self.client.poll_event() {
                moved = true;
                self.client_events.push(event);
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
            let next = [self.server.poll_timeout(), self.client.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.server.handle_timeout(now);
                    self.client.handle_timeout(now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.drive();
    }

    /// Cut every connection from both sides at once (a server restart or a
    /// network failure).
    fn cut_all(&mut self) {
        let now = self.now;
        for (c, s) in std::mem::take(&mut self.up) {
            self.down.remove(&s);
            self.server.handle_eof(now, s);
            self.client.handle_eof(now, c);
        }
        self.drive();
    }

    fn connected_sid(&self, nsp: &str) -> Option<String> {
        self.client_events.iter().rev().find_map(|e| match e {
            ClientEvent::Connected { nsp: n, sid, .. } if &**n == nsp => Some(sid.to_string()),
            _ => None,
        })
    }
}

const ALL: [ClientTransports; 3] = [
    ClientTransports::Polling,
    ClientTransports::WebSocket,
    ClientTransports::Upgrade,
];

#[test]
fn namespaces_connect_with_auth_and_socket_ids_differ_from_the_engine_sid() {
    for transports in ALL {
        let mut w = World::new(transports);
        let now = w.now;
        w.client.socket().connect(now, "/", None).unwrap();
        let auth = Value::Object(vec![("token".into(), Value::from("abc"))]);
        w.client
            .socket()
            .connect(now, "/custom", Some(auth.clone()))
            .unwrap();
        w.client.pump(now);
        w.advance(Duration::from_millis(50));
        let root = w.connected_sid("/").expect("connected to /");
        let custom = w.connected_sid("/custom").expect("connected to /custom");
        assert_ne!(root, custom);
        let eio = w.client.engine().unwrap().sid().unwrap().to_string();
        assert_ne!(root, eio);
        let seen_auth = w.server_events.iter().find_map(|e| match e {
            ServerEvent::Connect { nsp, auth, .. } if &**nsp == "/custom" => Some(auth.clone()),
            _ => None,
        });
        assert_eq!(seen_auth, Some(Some(auth)), "{transports:?}");
    }
}

#[test]
fn events_and_acks_round_trip_with_binary_both_ways() {
    for transports in ALL {
        let mut w = World::new(transports);
        let now = w.now;
        w.client.socket().connect(now, "/", None).unwrap();
        w.client.pump(now);
        w.advance(Duration::from_millis(50));
        let blob = bytes::Bytes::from_static(&[1, 2, 3]);
        let id = w
            .client
            .socket()
            .emit_with_ack(
                now,
                "/",
                "echo",
                &("hi", blob.clone()),
                Some(Duration::from_secs(5)),
            )
            .unwrap();
        w.client.pump(now);
        w.advance(Duration::from_millis(50));
        let (socket, ack, args) = w
            .server_events
            .iter()
            .find_map(|e| match e {
                ServerEvent::Event {
                    socket,
                    name,
                    ack,
                    args,
                    ..
                } if &**name == "echo" => Some((socket.clone(), *ack, args.clone())),
                _ => None,
            })
            .expect("server got the event");
        let (text, bin): (String, bytes::Bytes) = args.deserialize().unwrap();
        assert_eq!((text.as_str(), &bin[..]), ("hi", &blob[..]));
        let now = w.now;
        w.server
            .socket()
            .ack(now, &socket, ack.expect("ack requested"), &args)
            .unwrap();
        w.server.pump(now);
        w.advance(Duration::from_millis(50));
        let answer = w.client_events.iter().find_map(|e| match e {
            ClientEvent::Ack { id: got, args, .. } if *got == id => Some(args.clone()),
            _ => None,
        });
        let (text, bin): (String, bytes::Bytes) =
            answer.expect("ack arrived").deserialize().unwrap();
        assert_eq!(
            (text.as_str(), &bin[..]),
            ("hi", &blob[..]),
            "{transports:?}"
        );

        // Server asks the client for an ack.
        let now = w.now;
        let sid = w
            .server
            .socket()
            .emit_with_ack(now, &socket, "question", &(7,), Duration::from_secs(5))
            .unwrap();
        w.server.pump(now);
        w.advance(Duration::from_millis(50));
        let client_ack = w.client_events.iter().find_map(|e| match e {
            ClientEvent::Event {
                name,
                ack: Some(id),
                ..
            } if &**name == "question" => Some(*id),
            _ => None,
        });
        let now = w.now;
        w.client
            .socket()
            .ack(
                now,
                "/",
                client_ack.expect("question arrived"),
                &("answer",),
            )
            .unwrap();
        w.client.pump(now);
        w.advance(Duration::from_millis(50));
        assert!(
            w.server_events.iter().any(|e| matches!(e,
            ServerEvent::Ack { id, outcome: AckOutcome::Answered(_), .. } if *id == sid)),
            "{transports:?}"
        );
    }
}

#[test]
fn heartbeats_keep_an_idle_session_alive() {
    for transports in ALL {
        let mut w = World::new(transports);
        let now = w.now;
        w.client.socket().connect(now, "/", None).unwrap();
        w.client.pump(now);
        w.advance(Duration::from_secs(30));
        assert!(w.client.socket().is_connected("/"), "{transports:?}");
        assert!(!w
            .server_events
            .iter()
            .any(|e| matches!(e, ServerEvent::Disconnect { .. })));
    }
}

#[test]
fn client_reconnects_and_rejoins_after_the_connection_is_cut() {
    for transports in ALL {
        let mut w = World::new(transports);
        let now = w.now;
        w.client.socket().connect(now, "/", None).unwrap();
        w.client.socket().connect(now, "/custom", None).unwrap();
        w.client.pump(now);
        w.advance(Duration::from_millis(50));
        let first = w.connected_sid("/").unwrap();
        w.refuse = true;
        w.cut_all();
        w.advance(Duration::from_secs(3));
        w.refuse = false;
        w.advance(Duration::from_secs(10));
        let second = w.connected_sid("/").unwrap();
        assert_ne!(
            first, second,
            "a new socket after reconnecting ({transports:?})"
        );
        assert!(w.client.socket().is_connected("/custom"));
        assert!(w
            .client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::Reconnected { .. })));
    }
}

#[test]
fn client_disconnect_is_final() {
    for transports in ALL {
        let mut w = World::new(transports);
        let now = w.now;
        w.client.socket().connect(now, "/", None).unwrap();
        w.client.pump(now);
        w.advance(Duration::from_millis(50));
        let now = w.now;
        w.client.socket().disconnect_all(now);
        w.client.pump(now);
        w.advance(Duration::from_secs(30));
        assert!(!w.client.socket().is_connected("/"));
        assert!(
            w.server_events
                .iter()
                .any(|e| matches!(e, ServerEvent::Disconnect { .. })),
            "{transports:?}"
        );
        assert!(w.client.engine().is_none() || w.client.engine().unwrap().is_closed());
    }
}
