//! The streams format in virtual time: offsets that are stream ids, and
//! sessions restored on another node.

use std::time::Duration;

use super::super::super::super::reason::DisconnectReason;
use super::super::super::{Broadcast, RecoveryConfig, ServerConfig, ServerEvent};
use super::super::ClusterFormat;
use super::Bus;
use crate::cluster::node::StreamsConfig;
use crate::cluster::{BusCommand, BusInput, StreamEntry};
use crate::engine::Message;
use crate::{Bytes, Str};

fn recovering() -> ServerConfig {
    ServerConfig {
        recovery: Some(RecoveryConfig::default()),
        ..ServerConfig::default()
    }
}

fn bus(max_len: u64) -> Bus {
    let format = ClusterFormat::Streams(StreamsConfig {
        max_len,
        ..StreamsConfig::default()
    });
    Bus::with_config(2, format, recovering())
}

/// The last argument of an event packet's text: its offset.
fn offset(text: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(&text[1..]).unwrap();
    value
        .as_array()
        .and_then(|a| a.last())
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no offset in {text}"))
        .to_owned()
}

struct Client {
    sid: Str,
    pid: String,
}

/// A client connects on node `i` over session `eio` with `auth`; returns
/// what the CONNECT reply said, whether it was recovered, and the
/// packets sent before the reply.
fn connect(bus: &mut Bus, i: usize, eio: &'static str, auth: &str) -> (Client, bool, Vec<String>) {
    let now = bus.now;
    bus.nodes[i].handle_engine_open(now, Str::from_static(eio));
    bus.nodes[i].handle_engine_message(now, eio, Message::Text(format!("0{auth}").into()));
    bus.relay();
    let (socket, recovered) = match bus.events(i).as_slice() {
        [ServerEvent::Connect {
            socket, recovered, ..
        }] => (socket.clone(), *recovered),
        other => panic!("expected a connect, got {other:?}"),
    };
    bus.nodes[i].accept(now, &socket).unwrap();
    let mut sent = bus.texts(i);
    let reply = sent.pop().expect("the CONNECT reply");
    let body: serde_json::Value = serde_json::from_str(&reply[1..]).unwrap();
    assert_eq!(body["sid"], &*socket);
    let client = Client {
        sid: socket,
        pid: body["pid"].as_str().expect("a pid").to_owned(),
    };
    (client, recovered, sent)
}

fn auth(pid: &str, offset: &str) -> String {
    serde_json::json!({ "pid": pid, "offset": offset }).to_string()
}

#[test]
fn broadcasts_carry_their_entry_id_as_offset_on_every_node() {
    let mut bus = bus(10_000);
    let (a, ..) = connect(&mut bus, 0, "a", "");
    let (b, ..) = connect(&mut bus, 1, "b", "");
    bus.nodes[1].join(&b.sid, "room").unwrap();
    let now = bus.now;
    bus.nodes[0]
        .broadcast(now, &Broadcast::namespace("/"), "all", &(1, "x"))
        .unwrap();
    // Nothing goes out before the broker named the entry.
    assert!(bus.texts(0).is_empty());
    bus.relay();
    let (on_a, on_b) = (bus.texts(0), bus.texts(1));
    assert_eq!(on_a.len(), 1);
    assert_eq!(
        on_a, on_b,
        "the same packet, offset included, on both nodes"
    );
    let id = &bus.streams[&Str::from_static("socket.io")][0].id;
    assert_eq!(on_a[0], format!(r#"2["all",1,"x","{id}"]"#));
    // A room, from the node without members; the direct emit of the other
    // node goes through the stream too.
    bus.nodes[0]
        .broadcast(now, &Broadcast::namespace("/").to("room"), "r", &())
        .unwrap();
    bus.nodes[1].emit(now, &b.sid, "direct", &()).unwrap();
    bus.relay();
    assert!(bus.texts(0).is_empty());
    let on_b = bus.texts(1);
    assert_eq!(on_b.len(), 2);
    assert!(on_b[0].starts_with(r#"2["r","#) && on_b[1].starts_with(r#"2["direct","#));
    assert!(offset(&on_b[0]) < offset(&on_b[1]), "in stream order");
    // Except a room, and local only (no bus: no offset).
    bus.nodes[0]
        .broadcast(now, &Broadcast::namespace("/").except("room"), "ex", &())
        .unwrap();
    bus.nodes[0]
        .broadcast(now, &Broadcast::namespace("/").local(), "here", &())
        .unwrap();
    bus.relay();
    // The local one does not wait for the broker.
    let ex = &bus.streams[&Str::from_static("socket.io")][3].id;
    let expected = [r#"2["here"]"#.to_owned(), format!(r#"2["ex","{ex}"]"#)];
    assert_eq!(bus.texts(0), expected);
    assert!(bus.texts(1).is_empty());
    assert!(bus.nodes[0].is_connected(&a.sid).unwrap());
}

#[test]
fn a_client_recovers_what_it_missed_on_another_node_in_order() {
    let mut bus = bus(10_000);
    let (a, ..) = connect(&mut bus, 0, "a", "");
    bus.nodes[0].join(&a.sid, "room").unwrap();
    let now = bus.now;
    bus.nodes[1]
        .broadcast(now, &Broadcast::namespace("/"), "seen", &())
        .unwrap();
    bus.relay();
    let last = offset(&bus.texts(0)[0]);
    // Cut at transport level: the session goes to Redis.
    bus.nodes[0].handle_engine_closed(now, "a", DisconnectReason::TransportClose);
    bus.events(0);
    bus.relay();
    assert_eq!(bus.keys.len(), 1);
    for (i, event) in [(1, "m1"), (0, "m2"), (1, "m3")] {
        bus.nodes[i]
            .broadcast(now, &Broadcast::namespace("/").to("room"), event, &(i,))
            .unwrap();
        bus.relay();
    }
    bus.nodes[1]
        .broadcast(
            now,
            &Broadcast::namespace("/").except("room"),
            "not-for-a",
            &(),
        )
        .unwrap();
    bus.relay();
    // Node 1's follower is behind: it has not read what the restore reads.
    bus.lag(1, true);
    bus.nodes[0]
        .broadcast(now, &Broadcast::namespace("/"), "m4", &())
        .unwrap();
    bus.relay();
    let (back, recovered, missed) = connect(&mut bus, 1, "a2", &auth(&a.pid, &last));
    assert!(recovered);
    assert_eq!(back.sid, a.sid, "the same socket id");
    assert_eq!(back.pid, a.pid);
    let events: Vec<String> = missed
        .iter()
        .map(|t| {
            let v: serde_json::Value = serde_json::from_str(&t[1..]).unwrap();
            v[0].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(events, ["m1", "m2", "m3", "m4"]);
    assert!(missed.windows(2).all(|w| offset(&w[0]) < offset(&w[1])));
    assert!(bus.keys.is_empty(), "a session is taken once");
    // The follower catches up: what was replayed is not sent again.
    bus.lag(1, false);
    assert!(bus.texts(1).is_empty());
    // Its rooms came back with it.
    bus.nodes[0]
        .broadcast(now, &Broadcast::namespace("/").to("room"), "after", &())
        .unwrap();
    bus.relay();
    let after = bus.texts(1);
    assert_eq!(after.len(), 1);
    assert!(after[0].starts_with(r#"2["after","#));
}

#[test]
fn restores_that_cannot_succeed_give_a_new_socket() {
    let mut bus = bus(2);
    let (a, ..) = connect(&mut bus, 0, "a", "");
    let now = bus.now;
    bus.nodes[0]
        .broadcast(now, &Broadcast::namespace("/"), "seen", &())
        .unwrap();
    bus.relay();
    let last = offset(&bus.texts(0)[0]);
    bus.nodes[0].handle_engine_closed(now, "a", DisconnectReason::PingTimeout);
    bus.events(0);
    bus.relay();
    // Trimmed away by MAXLEN: the offset's entry is gone.
    for _ in 0..3 {
        bus.nodes[1]
            .broadcast(now, &Broadcast::namespace("/"), "more", &())
            .unwrap();
        bus.relay();
    }
    let (fresh, recovered, missed) = connect(&mut bus, 1, "a2", &auth(&a.pid, &last));
    assert!(!recovered);
    assert_ne!(fresh.sid, a.sid);
    assert!(missed.is_empty());
    // The session was taken by that attempt: not twice.
    let newest = bus.streams[&Str::from_static("socket.io")][1]
        .id
        .to_string();
    let (_, recovered, _) = connect(&mut bus, 0, "a3", &auth(&a.pid, &newest));
    assert!(!recovered);
    // Unknown session, bad offsets.
    for (eio, body) in [
        ("u1", auth("nobody", &newest)),
        ("u2", auth(&a.pid, "abc")),
        ("u3", auth(&a.pid, "1-2-3")),
        ("u4", r#"{"pid":7,"offset":[]}"#.to_owned()),
    ] {
        let (_, recovered, missed) = connect(&mut bus, 1, eio, &body);
        assert!(!recovered && missed.is_empty(), "{body}");
    }
}

#[test]
fn a_restore_the_broker_never_answers_ends_at_its_deadline() {
    let mut bus = bus(10_000);
    let now = bus.now;
    let node = &mut bus.nodes[0];
    node.handle_engine_open(now, Str::from_static("a"));
    node.handle_engine_message(
        now,
        "a",
        Message::Text(format!("0{}", auth("p", "1-0")).into()),
    );
    let asked: Vec<BusCommand> = std::iter::from_fn(|| node.poll_bus()).collect();
    assert!(asked
        .iter()
        .any(|c| matches!(c, BusCommand::TakeKey { .. })));
    assert!(node.poll_event().is_none(), "waits for the broker");
    let deadline = node.poll_timeout().unwrap();
    assert!(deadline <= now + Duration::from_secs(5));
    node.handle_timeout(deadline);
    assert!(matches!(
        node.poll_event(),
        Some(ServerEvent::Connect {
            recovered: false,
            ..
        })
    ));
    // A late answer changes nothing.
    node.handle_bus(
        deadline,
        BusInput::KeyTaken {
            token: 1,
            value: Some(Bytes::from_static(b"x")),
        },
    );
    assert!(node.poll_event().is_none());
}

#[test]
fn an_unanswered_append_delivers_without_offset_at_its_deadline() {
    let mut bus = bus(10_000);
    let (a, ..) = connect(&mut bus, 0, "a", "");
    let now = bus.now;
    let node = &mut bus.nodes[0];
    node.broadcast(now, &Broadcast::namespace("/"), "one", &())
        .unwrap();
    node.emit(now, &a.sid, "two", &()).unwrap();
    let tokens: Vec<u64> = std::iter::from_fn(|| node.poll_bus())
        .filter_map(|c| match c {
            BusCommand::StreamAppend { token, .. } => Some(token),
            _ => None,
        })
        .collect();
    assert_eq!(tokens.len(), 2);
    // The second is answered first: it still waits for the first.
    node.handle_bus(
        now,
        BusInput::StreamAppended {
            token: tokens[1],
            id: Some(Str::from_static("5-0")),
        },
    );
    assert!(bus.texts(0).is_empty());
    let node = &mut bus.nodes[0];
    let deadline = node.poll_timeout().unwrap();
    node.handle_timeout(deadline);
    assert_eq!(bus.texts(0), [r#"2["one"]"#, r#"2["two","5-0"]"#]);
    let node = &mut bus.nodes[0];
    node.handle_bus(
        deadline,
        BusInput::StreamAppended {
            token: tokens[0],
            id: Some(Str::from_static("4-0")),
        },
    );
    assert!(bus.texts(0).is_empty(), "the late answer is dropped");
}

#[test]
fn hostile_entries_and_sessions_are_ignored() {
    let mut bus = bus(10_000);
    let (a, ..) = connect(&mut bus, 0, "a", "");
    let now = bus.now;
    let field =
        |k: &'static str, v: &[u8]| (Bytes::from_static(k.as_bytes()), Bytes::copy_from_slice(v));
    let entries: Vec<(&str, Vec<(Bytes, Bytes)>)> = vec![
        ("9-0", vec![]),
        ("not an id", vec![field("uid", b"x"), field("nsp", b"/"), field("type", b"3")]),
        ("10-0", vec![field("uid", b"x"), field("type", b"3")]),
        ("11-0", vec![field("uid", b"x"), field("nsp", b"/"), field("type", b"three")]),
        ("12-0", vec![field("uid", b"x"), field("nsp", b"/"), field("type", b"3"), field("data", b"{")]),
        ("13-0", vec![field("uid", b"x"), field("nsp", b"/"), field("type", b"3"), field("data", b"!!!")]),
        ("14-0", vec![field("uid", b"x"), field("nsp", b"/"), field("type", b"3"), field("data", b"{\"packet\":{\"type\":2,\"data\":[\"connect\"]},\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}}}")]),
        ("15-0", vec![field("uid", b"x"), field("nsp", b"/"), field("type", b"3"), field("data", "[".repeat(10_000).as_bytes())]),
        ("16-0", vec![field("uid", b"x"), field("nsp", b"/"), field("type", b"99")]),
    ];
    for (id, fields) in entries {
        bus.nodes[0].handle_bus(
            now,
            BusInput::StreamEntry {
                stream: Str::from_static("socket.io"),
                entry: StreamEntry {
                    id: Str::from(id),
                    fields,
                },
            },
        );
    }
    bus.relay();
    assert!(bus.texts(0).is_empty());
    assert!(bus.events(0).is_empty());
    // A session in Redis that is not one: a new socket.
    bus.keys.insert(
        Str::from_static("sio:session:evil"),
        Bytes::from_static(b"bm90IG1zZ3BhY2s="),
    );
    bus.nodes[0]
        .broadcast(now, &Broadcast::namespace("/"), "x", &())
        .unwrap();
    bus.relay();
    let last = offset(&bus.texts(0)[0]);
    let (_, recovered, _) = connect(&mut bus, 1, "e", &auth("evil", &last));
    assert!(!recovered);
    assert!(bus.nodes[0].is_connected(&a.sid).unwrap());
}

#[test]
fn a_namespace_dropped_while_a_restore_waits_is_created_again() {
    let config = ServerConfig {
        namespaces: vec![crate::socket::NamespaceMatcher::Any],
        ..recovering()
    };
    let mut bus = Bus::with_config(1, ClusterFormat::streams(), config);
    let now = bus.now;
    let node = &mut bus.nodes[0];
    node.handle_engine_open(now, Str::from_static("x"));
    node.handle_engine_message(now, "x", Message::Text(Str::from_static("0/custom,")));
    let Some(ServerEvent::Connect { socket, .. }) = node.poll_event() else {
        panic!("expected a connect");
    };
    node.accept(now, &socket).unwrap();
    // A restore starts, then the namespace's only socket leaves: the
    // namespace goes before the broker answers.
    node.handle_engine_open(now, Str::from_static("y"));
    let connect = format!("0/custom,{}", auth("p", "1-0"));
    node.handle_engine_message(now, "y", Message::Text(connect.into()));
    node.handle_engine_closed(now, "x", DisconnectReason::ClientNamespaceDisconnect);
    bus.events(0);
    bus.relay();
    match bus.events(0).as_slice() {
        [ServerEvent::Connect {
            nsp,
            recovered: false,
            ..
        }] => assert_eq!(nsp, "/custom"),
        other => panic!("expected a new socket, got {other:?}"),
    }
}

#[test]
fn selections_travel_on_the_stream_and_act_on_remote_sockets() {
    let mut bus = bus(10_000);
    let (a, ..) = connect(&mut bus, 0, "a", "");
    let (b, ..) = connect(&mut bus, 1, "b", "");
    let room = Str::from_static("r");
    let to_b = Broadcast::namespace("/").to(b.sid.clone());
    let types = |bus: &Bus| -> Vec<String> {
        bus.streams[&Str::from_static("socket.io")]
            .iter()
            .map(|e| {
                let (_, t) = e.fields.iter().find(|(k, _)| &k[..] == b"type").unwrap();
                String::from_utf8(t.to_vec()).unwrap()
            })
            .collect()
    };
    bus.nodes[0]
        .sockets_join(&to_b, std::slice::from_ref(&room))
        .unwrap();
    bus.relay();
    assert!(bus.nodes[1].rooms(&b.sid).unwrap().contains(&room));
    bus.nodes[0]
        .sockets_leave(&to_b, std::slice::from_ref(&room))
        .unwrap();
    bus.relay();
    assert!(!bus.nodes[1].rooms(&b.sid).unwrap().contains(&room));
    bus.nodes[1].join(&b.sid, "closing").unwrap();
    bus.nodes[0].close_room("/", "closing");
    bus.relay();
    assert!(!bus.nodes[1]
        .rooms(&b.sid)
        .unwrap()
        .contains(&Str::from_static("closing")));
    let now = bus.now;
    bus.nodes[0].disconnect_sockets(now, &to_b, false).unwrap();
    bus.relay();
    assert_eq!(bus.texts(1), ["1"]);
    assert_eq!(types(&bus), ["4", "5", "5", "6"]);
    assert!(bus.nodes[0].is_connected(&a.sid).unwrap());
    // A socket disconnected by the server is not recoverable: no session.
    assert!(bus.keys.is_empty());
}
