//! The client machine's tests, driven as the driver would: inputs in,
//! wire-like outputs and events checked.

use super::*;
use crate::engine::Handshake;
use crate::parser::JsonParser;
use bytes::Bytes;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

const OPEN: &str = "<open>";
const CLOSE: &str = "<close>";

fn client_with(config: ClientConfig) -> Client<JsonParser> {
    Client::new(config, JsonParser, Box::new(ChaCha8Rng::seed_from_u64(42)))
}

fn client() -> Client<JsonParser> {
    client_with(ClientConfig::default())
}

fn handshake() -> Handshake {
    Handshake {
        sid: Str::from("eio-sid"),
        upgrades: vec![],
        ping_interval: 25_000,
        ping_timeout: 20_000,
        max_payload: 1_000_000,
    }
}

fn auth(pairs: &[(&str, &str)]) -> Option<Value> {
    Some(Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect(),
    ))
}

/// Drain the driver outputs, text messages written as on the wire (the
/// Engine.IO message type `4` before the Socket.IO packet) so tests
/// read like captures.
fn outputs(c: &mut Client<JsonParser>) -> Vec<String> {
    std::iter::from_fn(|| c.poll_output())
        .map(|o| match o {
            ClientOutput::OpenEngine => OPEN.to_owned(),
            ClientOutput::CloseEngine => CLOSE.to_owned(),
            ClientOutput::Send(Message::Text(t)) => format!("4{t}"),
            ClientOutput::Send(Message::Binary(b)) => format!("<bin {}>", b.len()),
        })
        .collect()
}

fn events(c: &mut Client<JsonParser>) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Feed a text message written as on the wire (`4` + packet).
fn recv(c: &mut Client<JsonParser>, now: Instant, wire: &str) {
    let packet = wire.strip_prefix('4').expect("an Engine.IO message");
    c.handle_message(now, Message::Text(Str::from(packet)));
}

fn values(items: &[&str]) -> Args {
    Args::from_values(items.iter().map(|s| Value::from(*s)).collect())
}

fn connected(nsp: &str, sid: &str, recovered: bool) -> ClientEvent {
    ClientEvent::Connected {
        nsp: Str::from(nsp),
        sid: Str::from(sid),
        recovered,
    }
}

fn disconnected(nsp: &str, reason: DisconnectReason) -> ClientEvent {
    ClientEvent::Disconnected {
        nsp: Str::from(nsp),
        reason,
    }
}

fn event(nsp: &str, name: &str, args: &[&str], ack: Option<u64>) -> ClientEvent {
    ClientEvent::Event {
        nsp: Str::from(nsp),
        name: Str::from(name),
        args: values(args),
        ack,
    }
}

/// A client with `/` connected (sid `a`), queues drained.
fn connected_root(now: Instant) -> Client<JsonParser> {
    let mut c = client();
    c.connect(now, "/", None).unwrap();
    c.handle_engine_opened(now, &handshake());
    recv(&mut c, now, "40{\"sid\":\"a\"}");
    outputs(&mut c);
    events(&mut c);
    c
}

/// Lose the session and run the reconnection timer until the engine is
/// asked for again; returns the time of the attempt.
fn reconnect(c: &mut Client<JsonParser>, now: Instant) -> Instant {
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    let at = c.poll_timeout().expect("reconnection scheduled");
    c.handle_timeout(at);
    assert_eq!(outputs(c), [OPEN]);
    c.handle_engine_opened(at, &handshake());
    at
}

#[test]
fn namespaces_share_one_session_with_exact_auth_bytes() {
    let now = Instant::now();
    let mut c = client();
    c.connect(now, "/", None).unwrap();
    c.connect(now, "/custom", auth(&[("token", "x")])).unwrap();
    assert_eq!(outputs(&mut c), [OPEN], "one session for both");
    c.handle_engine_opened(now, &handshake());
    assert_eq!(outputs(&mut c), ["40", "40/custom,{\"token\":\"x\"}"]);
    recv(&mut c, now, "40/custom,{\"sid\":\"b\"}");
    recv(&mut c, now, "40{\"sid\":\"a\"}");
    assert_eq!(
        events(&mut c),
        [connected("/custom", "b", false), connected("/", "a", false)]
    );
    assert_eq!(c.socket_id("/"), Some("a"));
    assert_eq!(c.socket_id("/custom"), Some("b"));
    // A namespace joined while the session is open goes out at once.
    c.connect(now, "/late", None).unwrap();
    assert_eq!(outputs(&mut c), ["40/late,"]);
}

#[test]
fn connect_error_drops_the_namespace() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.connect(now, "/admin", None).unwrap();
    c.connect(now, "/str", None).unwrap();
    outputs(&mut c);
    recv(
        &mut c,
        now,
        "44/admin,{\"message\":\"not authorized\",\"data\":{\"code\":1}}",
    );
    recv(&mut c, now, "44/str,\"refused\"");
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::ConnectError {
                nsp: Str::from("/admin"),
                message: "not authorized".to_owned(),
                data: Some(Value::Object(vec![("code".to_owned(), Value::from(1u64))])),
            },
            ClientEvent::ConnectError {
                nsp: Str::from("/str"),
                message: "refused".to_owned(),
                data: None,
            },
        ]
    );
    assert!(!c.is_connected("/admin"));
    assert_eq!(
        c.emit(now, "/admin", "x", &()),
        Err(ClientError::UnknownNamespace)
    );
    assert_eq!(outputs(&mut c), Vec::<String>::new(), "/ keeps the session");
    // Refused namespaces are not rejoined.
    reconnect(&mut c, now);
    assert_eq!(outputs(&mut c), ["40"]);
}

#[test]
fn connect_error_of_the_only_namespace_closes_the_session() {
    let now = Instant::now();
    let mut c = client();
    c.connect(now, "/", None).unwrap();
    c.handle_engine_opened(now, &handshake());
    outputs(&mut c);
    recv(&mut c, now, "44{\"message\":\"no\"}");
    assert_eq!(outputs(&mut c), [CLOSE]);
    c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
    assert_eq!(c.poll_timeout(), None);
    assert!(!c.is_active());
}

#[test]
fn server_disconnect_is_not_rejoined() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.connect(now, "/custom", None).unwrap();
    recv(&mut c, now, "40/custom,{\"sid\":\"b\"}");
    outputs(&mut c);
    events(&mut c);
    recv(&mut c, now, "41/custom,");
    assert_eq!(
        events(&mut c),
        [disconnected("/custom", DisconnectReason::ServerDisconnect)]
    );
    assert!(outputs(&mut c).is_empty(), "no reply to DISCONNECT");
    reconnect(&mut c, now);
    assert_eq!(outputs(&mut c), ["40"], "only / rejoins");
    // The server disconnecting the last namespace closes the session
    // and nothing reconnects.
    recv(&mut c, now, "40{\"sid\":\"a2\"}");
    recv(&mut c, now, "41");
    assert_eq!(outputs(&mut c), [CLOSE]);
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(now + Duration::from_secs(60));
    assert!(outputs(&mut c).is_empty());
}

#[test]
fn client_disconnect_sends_41_and_closes_when_last() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.connect(now, "/custom", None).unwrap();
    recv(&mut c, now, "40/custom,{\"sid\":\"b\"}");
    outputs(&mut c);
    events(&mut c);
    c.disconnect(now, "/custom").unwrap();
    assert_eq!(outputs(&mut c), ["41/custom,"]);
    assert_eq!(
        events(&mut c),
        [disconnected("/custom", DisconnectReason::ClientDisconnect)]
    );
    assert_eq!(
        c.disconnect(now, "/custom"),
        Err(ClientError::UnknownNamespace)
    );
    c.disconnect(now, "/").unwrap();
    assert_eq!(outputs(&mut c), ["41", CLOSE]);
    c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
    assert_eq!(c.poll_timeout(), None, "no reconnection");
    assert!(outputs(&mut c).is_empty());
}

#[test]
fn disconnect_all_stops_a_scheduled_reconnection_for_good() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    assert!(c.poll_timeout().is_some());
    c.disconnect_all(now);
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(now + Duration::from_secs(3600));
    assert!(outputs(&mut c).is_empty());
    // Also while an attempt is opening: its close report does not
    // schedule another.
    let mut c = connected_root(now);
    let at = {
        c.handle_engine_closed(now, DisconnectReason::TransportClose);
        let at = c.poll_timeout().unwrap();
        c.handle_timeout(at);
        at
    };
    assert_eq!(outputs(&mut c), [OPEN]);
    c.disconnect_all(at);
    assert_eq!(outputs(&mut c), [CLOSE]);
    c.handle_engine_closed(at, DisconnectReason::TransportError);
    assert_eq!(c.poll_timeout(), None);
    assert!(outputs(&mut c).is_empty());
    // And on an open session: DISCONNECT for each, then close.
    let mut c = connected_root(now);
    c.disconnect_all(now);
    assert_eq!(outputs(&mut c), ["41", CLOSE]);
    assert_eq!(
        events(&mut c),
        [disconnected("/", DisconnectReason::ClientDisconnect)]
    );
    c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn ack_round_trip_client_to_server() {
    let now = Instant::now();
    let mut c = connected_root(now);
    let id = c
        .emit_with_ack(now, "/", "hello", &("hi", 1), None)
        .unwrap();
    assert_eq!(id, 0);
    assert_eq!(outputs(&mut c), ["420[\"hello\",\"hi\",1]"]);
    recv(&mut c, now, "439[\"stray\"]");
    assert!(events(&mut c).is_empty(), "unknown ack id ignored");
    recv(&mut c, now, "430[\"ok\"]");
    assert_eq!(
        events(&mut c),
        [ClientEvent::Ack {
            nsp: Str::from("/"),
            id: 0,
            args: values(&["ok"]),
        }]
    );
    recv(&mut c, now, "430[\"again\"]");
    assert!(events(&mut c).is_empty(), "answered once");
    assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
    let id = c.emit_with_ack(now, "/", "next", &(), None).unwrap();
    assert_eq!(id, 1, "ids count per namespace");
}

#[test]
fn ack_round_trip_server_to_client() {
    let now = Instant::now();
    let mut c = connected_root(now);
    recv(&mut c, now, "425[\"question\",\"q\"]");
    assert_eq!(events(&mut c), [event("/", "question", &["q"], Some(5))]);
    c.ack(now, "/", 5, &("answer",)).unwrap();
    assert_eq!(outputs(&mut c), ["435[\"answer\"]"]);
    assert_eq!(c.ack(now, "/", 5, &()), Err(ClientError::UnknownAck));
    assert_eq!(c.ack(now, "/", 6, &()), Err(ClientError::UnknownAck));
    assert_eq!(
        c.ack(now, "/nope", 5, &()),
        Err(ClientError::UnknownNamespace)
    );
}

#[test]
fn ack_timeout() {
    let now = Instant::now();
    let mut c = connected_root(now);
    let id = c
        .emit_with_ack(now, "/", "slow", &(), Some(Duration::from_millis(100)))
        .unwrap();
    outputs(&mut c);
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_millis(100)));
    c.handle_timeout(now + Duration::from_millis(99));
    assert!(events(&mut c).is_empty());
    c.handle_timeout(now + Duration::from_millis(100));
    assert_eq!(
        events(&mut c),
        [ClientEvent::AckFailed {
            nsp: Str::from("/"),
            id,
            reason: AckFailure::Timeout,
        }]
    );
    assert_eq!(c.poll_timeout(), None);
    recv(&mut c, now, "430[]");
    assert!(events(&mut c).is_empty(), "late answer ignored");
    assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
}

#[test]
fn ten_thousand_abandoned_acks_are_freed_on_disconnect() {
    let now = Instant::now();
    let mut c = client_with(ClientConfig {
        max_pending_acks: 10_000,
        ..ClientConfig::default()
    });
    c.connect(now, "/", None).unwrap();
    c.handle_engine_opened(now, &handshake());
    recv(&mut c, now, "40{\"sid\":\"a\"}");
    for i in 0..10_000u64 {
        let timeout = (i % 2 == 0).then(|| Duration::from_secs(30));
        c.emit_with_ack(now, "/", "e", &(), timeout).unwrap();
    }
    assert_eq!(
        c.emit_with_ack(now, "/", "e", &(), None),
        Err(ClientError::TooManyPendingAcks)
    );
    assert_eq!(c.ack_bookkeeping(), (10_000, 5_000, 0));
    events(&mut c);
    outputs(&mut c);
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    let failed = events(&mut c)
        .into_iter()
        .filter(|e| {
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
    assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
    // Same when the application leaves.
    let mut c = connected_root(now);
    for _ in 0..1000 {
        c.emit_with_ack(now, "/", "e", &(), Some(Duration::from_secs(1)))
            .unwrap();
    }
    c.disconnect(now, "/").unwrap();
    assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn emits_before_connect_are_buffered_in_order() {
    let now = Instant::now();
    let mut c = client_with(ClientConfig {
        max_buffered_emits: 3,
        ..ClientConfig::default()
    });
    c.connect(now, "/", None).unwrap();
    c.emit(now, "/", "a", &1).unwrap();
    let id = c.emit_with_ack(now, "/", "b", &(), None).unwrap();
    assert_eq!(c.emit_volatile(now, "/", "v", &()), Ok(false));
    c.emit(now, "/", "c", &()).unwrap();
    assert_eq!(c.emit(now, "/", "d", &()), Err(ClientError::SendBufferFull));
    assert_eq!(outputs(&mut c), [OPEN]);
    c.handle_engine_opened(now, &handshake());
    assert_eq!(outputs(&mut c), ["40"], "nothing before the reply");
    recv(&mut c, now, "40{\"sid\":\"a\"}");
    assert_eq!(
        outputs(&mut c),
        [
            "42[\"a\",1]",
            format!("42{id}[\"b\"]").as_str(),
            "42[\"c\"]"
        ]
    );
    assert_eq!(c.emit_volatile(now, "/", "v", &()), Ok(true));
    assert_eq!(outputs(&mut c), ["42[\"v\"]"]);
    assert_eq!(
        c.emit(now, "/nope", "x", &()),
        Err(ClientError::UnknownNamespace)
    );
}

#[test]
fn buffered_ack_survives_a_drop_and_is_sent_after_rejoin() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.handle_engine_closed(now, DisconnectReason::PingTimeout);
    let evs = events(&mut c);
    assert_eq!(evs[0], disconnected("/", DisconnectReason::PingTimeout));
    assert!(
        matches!(
            evs[1..],
            [ClientEvent::ReconnectScheduled { attempt: 1, .. }]
        ),
        "{evs:?}"
    );
    let id = c.emit_with_ack(now, "/", "later", &(), None).unwrap();
    let at = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    c.handle_engine_opened(at, &handshake());
    recv(&mut c, at, "40{\"sid\":\"a2\"}");
    assert_eq!(
        outputs(&mut c),
        [OPEN, "40", format!("42{id}[\"later\"]").as_str()]
    );
    assert_eq!(c.ack_bookkeeping(), (1, 0, 0));
}

#[test]
fn backoff_sequence_with_seeded_rng() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    let mut evs = events(&mut c);
    let mut t = now;
    for n in 0..6u32 {
        let at = c.poll_timeout().expect("scheduled");
        let delay = at - t;
        // Each failure is reported, then the attempt it schedules, with
        // the delay the timer was armed for.
        let scheduled = ClientEvent::ReconnectScheduled {
            attempt: n + 1,
            delay,
        };
        let expected = if n == 0 {
            vec![
                disconnected("/", DisconnectReason::TransportClose),
                scheduled,
            ]
        } else {
            vec![
                ClientEvent::OpenFailed {
                    attempt: n,
                    namespaces: vec![Str::from("/")],
                },
                scheduled,
            ]
        };
        assert_eq!(evs, expected);
        let base = Duration::from_secs(1) * 2u32.pow(n);
        let low = (base / 2).min(Duration::from_secs(5));
        let high = (base * 3 / 2).min(Duration::from_secs(5));
        assert!(delay >= low && delay <= high, "attempt {n}: {delay:?}");
        c.handle_timeout(at - Duration::from_millis(1));
        assert!(outputs(&mut c).is_empty(), "not before its time");
        c.handle_timeout(at);
        assert_eq!(
            events(&mut c),
            [ClientEvent::Reconnecting { attempt: n + 1 }]
        );
        assert_eq!(outputs(&mut c), [OPEN]);
        // The attempt fails before the session opens.
        c.handle_engine_closed(at, DisconnectReason::TransportError);
        evs = events(&mut c);
        t = at;
    }
    // A session that opens resets the counter.
    let at = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    c.handle_engine_opened(at, &handshake());
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::Reconnecting { attempt: 7 },
            ClientEvent::Reconnected { attempt: 7 }
        ]
    );
    c.handle_engine_closed(at, DisconnectReason::TransportClose);
    let delay = c.poll_timeout().unwrap() - at;
    assert!(delay <= Duration::from_millis(1500), "{delay:?}");
}

#[test]
fn attempts_exhausted() {
    let now = Instant::now();
    let mut c = client_with(ClientConfig {
        reconnection_attempts: 2,
        ..ClientConfig::default()
    });
    c.connect(now, "/", None).unwrap();
    c.handle_engine_opened(now, &handshake());
    recv(&mut c, now, "40{\"sid\":\"a\"}");
    c.emit_with_ack(now, "/", "x", &(), None).unwrap();
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    c.emit_with_ack(now, "/", "buffered", &(), None).unwrap();
    for _ in 0..2 {
        let at = c.poll_timeout().unwrap();
        c.handle_timeout(at);
        c.handle_engine_closed(at, DisconnectReason::TransportError);
    }
    let evs = events(&mut c);
    assert_eq!(evs.last(), Some(&ClientEvent::ReconnectFailed), "{evs:?}");
    assert!(!c.is_active());
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
    assert_eq!(outputs(&mut c), [OPEN, OPEN, OPEN]);
    // Connecting again starts afresh.
    c.connect(now, "/", None).unwrap();
    assert_eq!(outputs(&mut c), [OPEN]);
}

#[test]
fn reconnection_disabled_gives_up_at_once() {
    let now = Instant::now();
    let mut c = client_with(ClientConfig {
        reconnection: false,
        ..ClientConfig::default()
    });
    c.connect(now, "/", None).unwrap();
    c.handle_engine_closed(now, DisconnectReason::TransportError);
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::OpenFailed {
                attempt: 0,
                namespaces: vec![Str::from("/")]
            },
            ClientEvent::ReconnectFailed
        ]
    );
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn rejoins_every_wanted_namespace_after_reconnect() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.connect(now, "/custom", auth(&[("token", "x")])).unwrap();
    c.connect(now, "/gone", None).unwrap();
    recv(&mut c, now, "40/custom,{\"sid\":\"b\"}");
    recv(&mut c, now, "40/gone,{\"sid\":\"c\"}");
    c.disconnect(now, "/gone").unwrap();
    outputs(&mut c);
    events(&mut c);
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    let evs = events(&mut c);
    assert!(
        matches!(
            evs[2..],
            [ClientEvent::ReconnectScheduled { attempt: 1, .. }]
        ),
        "{evs:?}"
    );
    assert_eq!(
        evs[..2],
        [
            disconnected("/", DisconnectReason::TransportClose),
            disconnected("/custom", DisconnectReason::TransportClose)
        ]
    );
    let at = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    c.handle_engine_opened(at, &handshake());
    assert_eq!(outputs(&mut c), [OPEN, "40", "40/custom,{\"token\":\"x\"}"]);
    recv(&mut c, at, "40{\"sid\":\"a2\"}");
    recv(&mut c, at, "40/custom,{\"sid\":\"b2\"}");
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::Reconnecting { attempt: 1 },
            ClientEvent::Reconnected { attempt: 1 },
            connected("/", "a2", false),
            connected("/custom", "b2", false)
        ]
    );
}

#[test]
fn parse_error_closes_and_reconnects() {
    let now = Instant::now();
    let mut c = connected_root(now);
    recv(&mut c, now, "49nonsense");
    assert_eq!(outputs(&mut c), [CLOSE]);
    assert_eq!(
        events(&mut c),
        [disconnected("/", DisconnectReason::ParseError)]
    );
    // Nothing more is read from the closing session.
    recv(&mut c, now, "42[\"late\"]");
    assert!(events(&mut c).is_empty());
    c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
    let at = c.poll_timeout().expect("reconnects after a parse error");
    c.handle_timeout(at);
    assert_eq!(outputs(&mut c), [OPEN]);
}

#[test]
fn invalid_arguments_found_later_close_and_reconnect() {
    let now = Instant::now();
    let mut c = connected_root(now);
    recv(&mut c, now, r#"42["ev",{"a":]"#);
    let args = match events(&mut c).as_slice() {
        [ClientEvent::Event { args, .. }] => args.clone(),
        other => panic!("expected the event, got {other:?}"),
    };
    assert!(args.validate().is_err());
    c.invalid_packet(now);
    assert_eq!(outputs(&mut c), [CLOSE]);
    assert_eq!(
        events(&mut c),
        [disconnected("/", DisconnectReason::ParseError)]
    );
    // Closing already: a second report changes nothing.
    c.invalid_packet(now);
    assert!(outputs(&mut c).is_empty());
}

#[test]
fn events_for_unconnected_namespaces_are_ignored() {
    let now = Instant::now();
    let mut c = connected_root(now);
    recv(&mut c, now, "42/other,[\"x\"]");
    recv(&mut c, now, "43/other,1[]");
    recv(&mut c, now, "41/other,");
    recv(&mut c, now, "40{\"sid\":\"dup\"}");
    assert!(events(&mut c).is_empty());
    assert!(outputs(&mut c).is_empty());
    assert_eq!(c.socket_id("/"), Some("a"));
}

#[test]
fn connect_reply_without_sid_is_a_parse_error() {
    let now = Instant::now();
    let mut c = client();
    c.connect(now, "/", None).unwrap();
    c.handle_engine_opened(now, &handshake());
    outputs(&mut c);
    recv(&mut c, now, "40{}");
    assert_eq!(outputs(&mut c), [CLOSE]);
}

#[test]
fn leaving_while_the_reply_is_awaited() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.connect(now, "/a", None).unwrap();
    assert_eq!(outputs(&mut c), ["40/a,"]);
    c.disconnect(now, "/a").unwrap();
    assert!(outputs(&mut c).is_empty());
    assert!(events(&mut c).is_empty());
    recv(&mut c, now, "40/a,{\"sid\":\"x\"}");
    assert_eq!(outputs(&mut c), ["41/a,"]);
    assert!(events(&mut c).is_empty());
    assert!(!c.is_connected("/a"));
}

#[test]
fn misuse_is_an_error() {
    let now = Instant::now();
    let mut c = client();
    assert_eq!(
        c.connect(now, "nope", None),
        Err(ClientError::InvalidNamespace)
    );
    assert_eq!(
        c.connect(now, "/", Some(Value::from("str"))),
        Err(ClientError::InvalidAuth)
    );
    c.connect(now, "/", None).unwrap();
    assert_eq!(
        c.connect(now, "/", None),
        Err(ClientError::AlreadyConnected)
    );
    assert_eq!(c.ack(now, "/", 0, &()), Err(ClientError::NotConnected));
    assert_eq!(c.disconnect(now, "/x"), Err(ClientError::UnknownNamespace));
    // Engine reports out of turn are ignored.
    let mut idle = client();
    idle.handle_engine_opened(now, &handshake());
    idle.handle_engine_closed(now, DisconnectReason::TransportClose);
    recv(&mut idle, now, "40");
    assert!(outputs(&mut idle).is_empty());
    assert!(events(&mut idle).is_empty());
}

/// Connect `/` with recovery (pid `p1`) and receive one event with
/// offset `o1`.
fn recovering_root(now: Instant, auth: Option<Value>) -> Client<JsonParser> {
    let mut c = client();
    c.connect(now, "/", auth).unwrap();
    c.handle_engine_opened(now, &handshake());
    recv(&mut c, now, "40{\"sid\":\"a\",\"pid\":\"p1\"}");
    recv(&mut c, now, "42[\"msg\",\"hello\",\"o1\"]");
    assert_eq!(
        events(&mut c),
        [
            connected("/", "a", false),
            event("/", "msg", &["hello"], None)
        ],
        "offset stripped"
    );
    outputs(&mut c);
    c
}

#[test]
fn recovery_offset_stripped_and_sent_back_with_pid() {
    let now = Instant::now();
    let mut c = recovering_root(now, None);
    // An event asking for an ack never carries an offset.
    recv(&mut c, now, "421[\"q\",\"keep\"]");
    assert_eq!(events(&mut c), [event("/", "q", &["keep"], Some(1))]);
    reconnect(&mut c, now);
    assert_eq!(outputs(&mut c), ["40{\"pid\":\"p1\",\"offset\":\"o1\"}"]);
    recv(&mut c, now, "40{\"sid\":\"a\",\"pid\":\"p1\"}");
    let evs = events(&mut c);
    assert!(evs.contains(&connected("/", "a", true)), "{evs:?}");
}

#[test]
fn recovery_merges_pid_and_offset_into_auth() {
    let now = Instant::now();
    let mut c = recovering_root(now, auth(&[("token", "x")]));
    reconnect(&mut c, now);
    assert_eq!(
        outputs(&mut c),
        ["40{\"pid\":\"p1\",\"offset\":\"o1\",\"token\":\"x\"}"]
    );
    // Without recovery nothing is stripped.
    let mut plain = connected_root(now);
    recv(&mut plain, now, "42[\"msg\",\"hello\",\"o1\"]");
    assert_eq!(
        events(&mut plain),
        [event("/", "msg", &["hello", "o1"], None)]
    );
}

#[test]
fn replayed_events_are_held_until_the_reply() {
    let now = Instant::now();
    let mut c = recovering_root(now, None);
    reconnect(&mut c, now);
    outputs(&mut c);
    events(&mut c);
    recv(&mut c, now, "42[\"msg\",\"a\",\"o2\"]");
    recv(&mut c, now, "42[\"msg\",\"b\",\"o3\"]");
    assert!(events(&mut c).is_empty(), "held");
    recv(&mut c, now, "40{\"sid\":\"a\",\"pid\":\"p1\"}");
    assert_eq!(
        events(&mut c),
        [
            connected("/", "a", true),
            event("/", "msg", &["a"], None),
            event("/", "msg", &["b"], None)
        ]
    );
    reconnect(&mut c, now);
    assert_eq!(outputs(&mut c), ["40{\"pid\":\"p1\",\"offset\":\"o3\"}"]);
}

#[test]
fn no_duplicate_delivery_when_dropped_before_the_reply() {
    let now = Instant::now();
    let mut c = recovering_root(now, None);
    reconnect(&mut c, now);
    outputs(&mut c);
    events(&mut c);
    recv(&mut c, now, "42[\"msg\",\"a\",\"o2\"]");
    // The session drops before the CONNECT reply: the held event is
    // discarded and the offset did not move.
    reconnect(&mut c, now);
    assert_eq!(outputs(&mut c), ["40{\"pid\":\"p1\",\"offset\":\"o1\"}"]);
    assert!(!events(&mut c)
        .iter()
        .any(|e| matches!(e, ClientEvent::Event { .. })));
    // The server replays it again: delivered exactly once.
    recv(&mut c, now, "42[\"msg\",\"a\",\"o2\"]");
    recv(&mut c, now, "40{\"sid\":\"a\",\"pid\":\"p1\"}");
    assert_eq!(
        events(&mut c),
        [connected("/", "a", true), event("/", "msg", &["a"], None)]
    );
}

#[test]
fn a_new_pid_forgets_the_old_offset() {
    let now = Instant::now();
    let mut c = recovering_root(now, None);
    reconnect(&mut c, now);
    outputs(&mut c);
    recv(&mut c, now, "40{\"sid\":\"b\",\"pid\":\"p2\"}");
    reconnect(&mut c, now);
    assert_eq!(outputs(&mut c), ["40{\"pid\":\"p2\"}"]);
}

#[test]
fn binary_both_ways() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.emit(
        now,
        "/",
        "up",
        &(Value::Binary(Bytes::from_static(b"\x01\x02")),),
    )
    .unwrap();
    assert_eq!(
        outputs(&mut c),
        ["451-[\"up\",{\"_placeholder\":true,\"num\":0}]", "<bin 2>"]
    );
    recv(
        &mut c,
        now,
        "451-[\"down\",{\"_placeholder\":true,\"num\":0}]",
    );
    assert!(events(&mut c).is_empty(), "waits for the attachment");
    c.handle_message(now, Message::Binary(Bytes::from_static(b"abc")));
    assert_eq!(
        events(&mut c),
        [ClientEvent::Event {
            nsp: Str::from("/"),
            name: Str::from("down"),
            args: Args::from_values(vec![Value::Binary(Bytes::from_static(b"abc"))]),
            ack: None,
        }]
    );
}

/// A BINARY_EVENT `up` on `/` declaring `count` attachments, as on the
/// wire.
fn binary_event_declaring(count: usize) -> String {
    format!("4{}", crate::parser::binary_event_declaring(count))
}

#[test]
fn attachments_over_the_limit_from_the_server_close_the_session() {
    // A hostile server declares 10 attachments and sends 512 KiB ones:
    // the second goes over the default limit.
    let now = Instant::now();
    let mut c = connected_root(now);
    let chunk = Bytes::from(vec![0u8; 512 * 1024]);
    recv(&mut c, now, &binary_event_declaring(10));
    c.handle_message(now, Message::Binary(chunk.clone()));
    assert_eq!(c.decoder.pending_attachment_bytes(), 512 * 1024);
    assert!(outputs(&mut c).is_empty());
    c.handle_message(now, Message::Binary(chunk.clone()));
    assert_eq!(c.decoder.pending_attachment_bytes(), 0);
    assert_eq!(outputs(&mut c), [CLOSE]);
    assert_eq!(
        events(&mut c),
        [disconnected("/", DisconnectReason::ParseError)]
    );
    // The rest is not read from the closing session.
    c.handle_message(now, Message::Binary(chunk));
    assert!(events(&mut c).is_empty() && outputs(&mut c).is_empty());
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    assert!(
        c.poll_timeout().is_some(),
        "reconnects as after any parse error"
    );
}

#[test]
fn attachments_within_the_limit_from_the_server_arrive() {
    let now = Instant::now();
    let mut c = client_with(ClientConfig {
        decode_limits: DecodeLimits {
            max_pending_attachment_bytes: 2048,
            ..DecodeLimits::default()
        },
        ..ClientConfig::default()
    });
    c.connect(now, "/", None).unwrap();
    c.handle_engine_opened(now, &handshake());
    recv(&mut c, now, "40{\"sid\":\"a\"}");
    outputs(&mut c);
    events(&mut c);
    let kib = Bytes::from(vec![1u8; 1024]);
    recv(&mut c, now, &binary_event_declaring(2));
    c.handle_message(now, Message::Binary(kib.clone()));
    c.handle_message(now, Message::Binary(kib.clone()));
    assert!(matches!(
        events(&mut c).as_slice(),
        [ClientEvent::Event { name, args, .. }] if *name == "up" && args.len() == 2
    ));
    assert!(outputs(&mut c).is_empty());
    // A packet left half received is released with its session.
    recv(&mut c, now, &binary_event_declaring(2));
    c.handle_message(now, Message::Binary(kib));
    assert_eq!(c.decoder.pending_attachment_bytes(), 1024);
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    assert_eq!(c.decoder.pending_attachment_bytes(), 0);
    assert!(!c.decoder.is_awaiting_attachments());
}

#[test]
fn connecting_while_closing_opens_a_fresh_session() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.disconnect(now, "/").unwrap();
    assert_eq!(outputs(&mut c), ["41", CLOSE]);
    c.connect(now, "/", None).unwrap();
    assert!(
        outputs(&mut c).is_empty(),
        "waits for the old session to end"
    );
    c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
    assert_eq!(outputs(&mut c), [OPEN]);
    c.handle_engine_opened(now, &handshake());
    assert_eq!(outputs(&mut c), ["40"]);
    let evs = events(&mut c);
    assert!(
        !evs.iter()
            .any(|e| matches!(e, ClientEvent::Reconnected { .. })),
        "{evs:?}"
    );
}

#[test]
fn unanswered_server_acks_are_bounded() {
    let now = Instant::now();
    let mut c = client_with(ClientConfig {
        max_unanswered_acks: 2,
        ..ClientConfig::default()
    });
    c.connect(now, "/", None).unwrap();
    c.handle_engine_opened(now, &handshake());
    recv(&mut c, now, "40{\"sid\":\"a\"}");
    for id in 1..=3 {
        recv(&mut c, now, &format!("42{id}[\"q\"]"));
    }
    assert_eq!(
        c.ack(now, "/", 1, &()),
        Err(ClientError::UnknownAck),
        "oldest forgotten"
    );
    c.ack(now, "/", 2, &()).unwrap();
    c.ack(now, "/", 3, &()).unwrap();
}

#[test]
fn session_closed_by_the_application_stops_everything() {
    let now = Instant::now();
    let mut c = connected_root(now);
    c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
    assert!(
        outputs(&mut c).is_empty(),
        "nothing to send on a closed session"
    );
    assert_eq!(
        events(&mut c),
        [disconnected("/", DisconnectReason::ClientDisconnect)]
    );
    assert_eq!(c.poll_timeout(), None);
    assert!(!c.is_active());
}

proptest::proptest! {
    /// Whatever the server, the driver and the application do, nothing
    /// panics and leaving everything frees every ack and timer.
    #[test]
    fn arbitrary_sequences_never_leak(ops in proptest::collection::vec(0u8..20, 0..80)) {
        const WIRE: [&str; 10] = [
            "40{\"sid\":\"a\",\"pid\":\"p\"}",
            "40/b,{\"sid\":\"b\"}",
            "42[\"e\",\"x\",\"off\"]",
            "42/b,7[\"e\"]",
            "430[]",
            "43/b,1[]",
            "41",
            "44/b,{\"message\":\"no\"}",
            "4garbage",
            "451-[\"e\",{\"_placeholder\":true,\"num\":0}]",
        ];
        let start = Instant::now();
        let mut now = start;
        let mut c = client_with(ClientConfig {
            reconnection_attempts: 3,
            max_pending_acks: 8,
            max_buffered_emits: 4,
            ..ClientConfig::default()
        });
        for op in ops {
            match op {
                0 => { let _ = c.connect(now, "/", None); }
                1 => { let _ = c.connect(now, "/b", auth(&[("k", "v")])); }
                2 => { let _ = c.disconnect(now, "/"); }
                3 => { let _ = c.disconnect(now, "/b"); }
                4 => { let _ = c.emit_with_ack(now, "/", "e", &(), Some(Duration::from_millis(500))); }
                5 => { let _ = c.emit_with_ack(now, "/b", "e", &1, None); }
                6 => { let _ = c.ack(now, "/b", 7, &()); }
                7 => c.handle_engine_opened(now, &handshake()),
                8 => c.handle_engine_closed(now, DisconnectReason::TransportClose),
                9 => {
                    now += Duration::from_millis(700);
                    c.handle_timeout(now);
                }
                n => {
                    let wire = WIRE[usize::from(n - 10)];
                    recv(&mut c, now, wire);
                }
            }
            outputs(&mut c);
            events(&mut c);
            if let Some(at) = c.poll_timeout() {
                proptest::prop_assert!(at >= start);
            }
        }
        c.disconnect_all(now);
        c.handle_engine_closed(now, DisconnectReason::ClientDisconnect);
        outputs(&mut c);
        proptest::prop_assert_eq!(c.ack_bookkeeping(), (0, 0, 0));
        proptest::prop_assert_eq!(c.poll_timeout(), None);
        proptest::prop_assert!(!c.is_active());
        c.handle_timeout(now + Duration::from_secs(3600));
        let outs = outputs(&mut c);
        proptest::prop_assert!(outs.is_empty(), "{:?}", outs);
    }
}

#[test]
fn a_first_connection_that_fails_is_given_up_without_retry() {
    let now = Instant::now();
    let mut c = client_with(ClientConfig {
        retry_first_connection: false,
        ..ClientConfig::default()
    });
    c.connect(now, "/", None).unwrap();
    c.connect(now, "/chat", None).unwrap();
    assert_eq!(outputs(&mut c), [OPEN]);
    c.handle_engine_closed(now, DisconnectReason::TransportError);
    assert_eq!(
        events(&mut c),
        [
            ClientEvent::OpenFailed {
                attempt: 0,
                namespaces: vec![Str::from("/"), Str::from("/chat")]
            },
            ClientEvent::ReconnectFailed
        ]
    );
    assert!(!c.is_active());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn without_retry_a_lost_session_still_reconnects_per_policy() {
    let now = Instant::now();
    let mut c = client_with(ClientConfig {
        retry_first_connection: false,
        ..ClientConfig::default()
    });
    c.connect(now, "/", None).unwrap();
    c.handle_engine_opened(now, &handshake());
    recv(&mut c, now, "40{\"sid\":\"a\"}");
    assert_eq!(c.connected_namespaces().collect::<Vec<_>>(), ["/"]);
    events(&mut c);
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    assert_eq!(c.connected_namespaces().count(), 0);
    let at = c.poll_timeout().expect("a reconnection is scheduled");
    c.handle_timeout(at);
    outputs(&mut c);
    // The attempt fails: it is reported and retried, not given up.
    c.handle_engine_closed(at, DisconnectReason::TransportError);
    let evs = events(&mut c);
    assert!(
        matches!(
            evs[..],
            [
                ClientEvent::Disconnected {
                    reason: DisconnectReason::TransportClose,
                    ..
                },
                ClientEvent::ReconnectScheduled { attempt: 1, .. },
                ClientEvent::Reconnecting { attempt: 1 },
                ClientEvent::OpenFailed { attempt: 1, .. },
                ClientEvent::ReconnectScheduled { attempt: 2, .. }
            ]
        ),
        "{evs:?}"
    );
    assert!(c.is_active());
}

#[test]
fn auth_replaced_for_the_next_session() {
    let now = Instant::now();
    let mut c = connected_root(now);
    assert_eq!(
        c.set_auth("/", Some(Value::from("x"))),
        Err(ClientError::InvalidAuth)
    );
    assert_eq!(
        c.set_auth("/nope", None),
        Err(ClientError::UnknownNamespace)
    );
    c.set_auth("/", auth(&[("token", "fresh")])).unwrap();
    c.handle_engine_closed(now, DisconnectReason::TransportClose);
    let at = c.poll_timeout().unwrap();
    c.handle_timeout(at);
    c.handle_engine_opened(at, &handshake());
    assert_eq!(outputs(&mut c), [OPEN, "40{\"token\":\"fresh\"}"]);
}
