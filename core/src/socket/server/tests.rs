//! Tests of the server state machine, and property tests over random
//! inputs.

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Footprint {
    pub(super) sessions: usize,
    pub(super) sockets: usize,
    pub(super) namespaces: usize,
    pub(super) timers: usize,
    pub(super) broadcast_acks: usize,
    pub(super) pending_acks: usize,
}

use super::*;
use crate::parser::{Args, DecodeLimits};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

impl<P: Parser> Server<P> {
    /// Sizes of the internal maps, to check nothing is left behind.
    fn footprint(&self) -> Footprint {
        Footprint {
            sessions: self.sessions.len(),
            sockets: self.sockets.len(),
            namespaces: self.namespaces.len(),
            timers: self.timers.len(),
            broadcast_acks: self.broadcast_acks.len(),
            pending_acks: self.sockets.values().map(|s| s.acks.len()).sum(),
        }
    }
}

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

/// A BINARY_EVENT `up` declaring `count` attachments.
fn binary_event_declaring(count: usize) -> Message {
    text(&format!(
        "4{}",
        crate::parser::binary_event_declaring(count)
    ))
}

#[test]
fn attachments_over_the_limit_close_only_their_session() {
    // The measured attack: 10 attachments declared, 512 KiB ones sent.
    let now = Instant::now();
    let mut server = server();
    let victim = join(&mut server, now, "E1", "40");
    let bystander = join(&mut server, now, "E2", "40");
    let chunk = crate::Bytes::from(vec![0u8; 512 * 1024]);
    server.handle_engine_message(now, "E1", binary_event_declaring(10));
    // E2 has a binary packet of its own half received meanwhile.
    server.handle_engine_message(now, "E2", binary_event_declaring(1));
    server.handle_engine_message(now, "E1", Message::Binary(chunk.clone()));
    assert!(commands(&mut server).is_empty());
    server.handle_engine_message(now, "E1", Message::Binary(chunk.clone()));
    assert_eq!(
        commands(&mut server),
        [("E1".to_owned(), "CLOSE".to_owned())]
    );
    assert!(matches!(
        events(&mut server).as_slice(),
        [ServerEvent::Disconnect { socket, reason: DisconnectReason::ParseError, .. }] if *socket == victim
    ));
    // The session and its half-received packet are gone; the rest of its
    // attachments fall on nothing.
    assert!(!server.sessions.contains_key("E1"));
    server.handle_engine_message(now, "E1", Message::Binary(chunk.clone()));
    assert!(commands(&mut server).is_empty() && events(&mut server).is_empty());
    // The other session goes on: its packet completes.
    server.handle_engine_message(now, "E2", Message::Binary(chunk));
    assert!(matches!(
        events(&mut server).as_slice(),
        [ServerEvent::Event { socket, name, args, .. }] if *socket == bystander && *name == "up" && args.len() == 1
    ));
    assert_eq!(server.footprint().sockets, 1);
}

#[test]
fn attachments_up_to_the_limit_arrive() {
    let now = Instant::now();
    let mut server = server_with(ServerConfig {
        decode_limits: DecodeLimits {
            max_pending_attachment_bytes: 4096,
            ..DecodeLimits::default()
        },
        ..ServerConfig::default()
    });
    let socket = join(&mut server, now, "E1", "40");
    let kib = crate::Bytes::from(vec![1u8; 1024]);
    for _ in 0..2 {
        server.handle_engine_message(now, "E1", binary_event_declaring(4));
        for _ in 0..4 {
            server.handle_engine_message(now, "E1", Message::Binary(kib.clone()));
        }
        assert!(matches!(
            events(&mut server).as_slice(),
            [ServerEvent::Event { socket: s, args, .. }] if *s == socket && args.len() == 4
        ));
    }
    // One byte more is refused.
    server.handle_engine_message(now, "E1", binary_event_declaring(5));
    for _ in 0..4 {
        server.handle_engine_message(now, "E1", Message::Binary(kib.clone()));
    }
    assert!(commands(&mut server).is_empty());
    server.handle_engine_message(now, "E1", Message::Binary(crate::Bytes::from_static(b"x")));
    assert_eq!(texts(&mut server), ["CLOSE"]);
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
