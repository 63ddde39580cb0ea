use std::time::Duration;

use bytes::Bytes;

use super::golden_streams::{
    ENTRIES, PUBSUB, RESTORED_MISSED, RESTORED_SID, SESSION, UID_A, UID_B,
};
use super::streams::*;
use super::{BroadcastOptions, NodePacket, ShardedData, ShardedMessage};
use crate::cluster::{BusCommand, BusLimits, ChannelKind, StreamEntry};
use crate::value::Value;
use crate::Str;

fn limits() -> BusLimits {
    BusLimits::default()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(Bytes, Bytes)> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                Bytes::copy_from_slice(k.as_bytes()),
                Bytes::copy_from_slice(v.as_bytes()),
            )
        })
        .collect()
}

fn entry(name: &str) -> StreamEntry {
    let (_, id, pairs) = ENTRIES
        .iter()
        .find(|(n, ..)| *n == name)
        .unwrap_or_else(|| panic!("no golden entry {name}"));
    StreamEntry {
        id: Str::from(*id),
        fields: fields(pairs),
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Every entry the reference wrote decodes, and encodes back to the same
/// fields, byte for byte.
#[test]
fn golden_entries_round_trip() {
    for (name, _, pairs) in ENTRIES {
        let f = fields(pairs);
        let message = decode_entry(&f, &limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(message.uid, UID_A, "{name}");
        assert_eq!(message.nsp, "/", "{name}");
        assert_eq!(encode_entry(&message, false), f, "{name}");
    }
}

#[test]
fn golden_entries_decode_to_the_messages() {
    let m = decode_entry(&entry("broadcast_all").fields, &limits()).unwrap();
    let ShardedData::Broadcast {
        packet,
        request_id,
        opts,
    } = m.data
    else {
        panic!("not a broadcast")
    };
    assert_eq!(request_id, None);
    assert_eq!(opts, BroadcastOptions::default());
    assert_eq!(packet.packet_type, 2);
    assert_eq!(
        packet.data,
        json(r#"["hello","world",1,1.5,-3,null,{"a":[1]},"é€😀"]"#)
    );

    let m = decode_entry(&entry("broadcast_binary").fields, &limits()).unwrap();
    let ShardedData::Broadcast { packet, opts, .. } = m.data else {
        panic!("not a broadcast")
    };
    assert_eq!(opts.rooms, ["room1"]);
    let Value::Array(args) = &packet.data else {
        panic!("not an array")
    };
    assert_eq!(args[0], Value::String("bin".into()));
    assert_eq!(args[1], Value::Binary(Bytes::from_static(&[1, 2, 3])));
    assert_eq!(
        args[2],
        Value::Object(vec![("b".into(), Value::Binary(Bytes::from_static(&[9])))])
    );

    let m = decode_entry(&entry("broadcast_volatile").fields, &limits()).unwrap();
    let ShardedData::Broadcast { opts, .. } = m.data else {
        panic!("not a broadcast")
    };
    assert_eq!(opts.flags.volatile, Some(true));

    let m = decode_entry(&entry("sockets_join").fields, &limits()).unwrap();
    let ShardedData::SocketsJoin { opts, rooms } = m.data else {
        panic!("not a join")
    };
    assert_eq!(
        (opts.rooms, rooms),
        (vec!["room1".into()], vec!["j1".into(), "j2".into()])
    );

    let m = decode_entry(&entry("disconnect_sockets").fields, &limits()).unwrap();
    assert!(matches!(
        m.data,
        ShardedData::DisconnectSockets { close: true, .. }
    ));
}

/// What goes on the stream and what on pub/sub, and how.
#[test]
fn publish_routes_like_the_reference() {
    let config = StreamsConfig::default();
    let broadcast = |request_id: Option<&str>, data: Value| ShardedMessage {
        uid: UID_A.into(),
        nsp: "/".into(),
        data: ShardedData::Broadcast {
            packet: NodePacket {
                packet_type: 2,
                data,
                nsp: None,
                id: None,
            },
            request_id: request_id.map(str::to_owned),
            opts: BroadcastOptions::default(),
        },
    };
    match config.publish(&broadcast(None, json(r#"["ev",1]"#)), 7) {
        BusCommand::StreamAppend {
            stream,
            fields,
            max_len,
            token,
        } => {
            assert_eq!(stream, "socket.io");
            assert_eq!(max_len, Some(10_000));
            assert_eq!(token, 7);
            assert_eq!(fields[3].1, "{\"packet\":{\"type\":2,\"data\":[\"ev\",1]},\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}}}");
        }
        other => panic!("{other:?}"),
    }
    // With `onlyPlaintext`, binary goes as JSON.stringify writes a Buffer.
    let plain = StreamsConfig {
        only_plaintext: true,
        ..StreamsConfig::default()
    };
    let bin = broadcast(
        None,
        Value::Array(vec![Value::Binary(Bytes::from_static(&[1]))]),
    );
    let BusCommand::StreamAppend { fields, .. } = plain.publish(&bin, 1) else {
        panic!()
    };
    assert!(fields[3]
        .1
        .starts_with(b"{\"packet\":{\"type\":2,\"data\":[{\"type\":\"Buffer\""));
    let BusCommand::StreamAppend { fields, .. } = config.publish(&bin, 1) else {
        panic!()
    };
    assert!(!fields[3].1.starts_with(b"{"));
    // Requests that are answered: MessagePack on the public channel.
    match config.publish(&broadcast(Some("r1"), json(r#"["ask"]"#)), 1) {
        BusCommand::Publish {
            channel,
            payload,
            sharded: false,
        } => {
            assert_eq!(channel, "socket.io#/#");
            assert_eq!(payload[0], 0x84);
        }
        other => panic!("{other:?}"),
    }
    let sharded = StreamsConfig {
        sharded: true,
        ..StreamsConfig::default()
    };
    let response = ShardedMessage {
        uid: UID_B.into(),
        nsp: "/".into(),
        data: ShardedData::BroadcastClientCount {
            request_id: "r1".into(),
            client_count: 1,
        },
    };
    assert_eq!(
        sharded.publish_response(UID_A, &response),
        BusCommand::Publish {
            channel: Str::from(format!("socket.io#/#{UID_A}#")),
            payload: response.encode_msgpack(),
            sharded: true,
        }
    );
    assert_eq!(
        sharded.subscriptions("/", UID_A),
        vec![
            BusCommand::Subscribe {
                channel: "socket.io#/#".into(),
                kind: ChannelKind::Sharded
            },
            BusCommand::Subscribe {
                channel: Str::from(format!("socket.io#/#{UID_A}#")),
                kind: ChannelKind::Sharded
            },
        ]
    );
    assert_eq!(
        config.count_nodes("/admin"),
        BusCommand::CountSubscribers {
            channel: "socket.io#/admin#".into(),
            sharded: false
        }
    );
}

/// Pub/sub messages are MessagePack, byte for byte the reference's.
#[test]
fn golden_pubsub_messages_round_trip() {
    for (name, channel, bytes) in PUBSUB {
        let bytes = hex(bytes);
        let m = ShardedMessage::decode(&bytes, &limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.encode_msgpack(), bytes, "{name}");
        let config = StreamsConfig::default();
        let expected = if m.data.is_response() {
            let to = if m.uid == UID_A { UID_B } else { UID_A };
            config.publish_response(to, &m)
        } else {
            config.publish(&m, 0)
        };
        assert_eq!(
            expected,
            BusCommand::Publish {
                channel: Str::from(*channel),
                payload: Bytes::from(bytes),
                sharded: false
            },
            "{name}"
        );
    }
}

#[test]
fn stream_names_follow_the_namespace_hash() {
    assert_eq!(js_hash_code("/"), 47);
    assert_eq!(js_hash_code("/admin"), 1_438_238_848);
    assert_eq!(js_hash_code("/é😀"), 3_396_989);
    assert_eq!(js_hash_code("/zzzzzzzzzzzzzzzz"), -1_328_448_465);
    let three = StreamsConfig {
        stream_count: 3,
        ..StreamsConfig::default()
    };
    let four = StreamsConfig {
        stream_count: 4,
        ..StreamsConfig::default()
    };
    assert_eq!(three.stream_for("/"), "socket.io-2");
    assert_eq!(three.stream_for("/admin"), "socket.io-1");
    assert_eq!(
        three.stream_for("/chat-room-with-a-long-name"),
        "socket.io-0"
    );
    // -0 prints 0; a negative remainder keeps its sign.
    assert_eq!(three.stream_for("/zzzzzzzzzzzzzzzz"), "socket.io-0");
    assert_eq!(four.stream_for("/zzzzzzzzzzzzzzzz"), "socket.io--1");
    assert_eq!(four.stream_for("/é😀"), "socket.io-1");
    assert_eq!(StreamsConfig::default().stream_for("/admin"), "socket.io");
    assert_eq!(
        three.streams(),
        ["socket.io-0", "socket.io-1", "socket.io-2"]
    );
}

#[test]
fn stream_ids() {
    let id: StreamId = "1796655858690-0".parse().unwrap();
    assert_eq!(
        id,
        StreamId {
            ms: 1_796_655_858_690,
            seq: 0
        }
    );
    assert_eq!(id.to_string(), "1796655858690-0");
    assert_eq!(id.next().unwrap().to_string(), "1796655858690-1");
    let last = StreamId {
        ms: 5,
        seq: u64::MAX,
    };
    assert_eq!(last.next(), Some(StreamId { ms: 6, seq: 0 }));
    assert_eq!(
        StreamId {
            ms: u64::MAX,
            seq: u64::MAX
        }
        .next(),
        None
    );
    assert!(StreamId { ms: 2, seq: 0 } > StreamId { ms: 1, seq: 9 });
    for bad in [
        "",
        "1",
        "1-",
        "-1",
        "a-1",
        "1-2-3",
        "+1-2",
        " 1-2",
        "1-2 ",
        "99999999999999999999-0",
        "$",
        "*",
    ] {
        assert!(bad.parse::<StreamId>().is_err(), "{bad:?}");
    }
}

#[test]
fn golden_session() {
    let (key, value, _) = SESSION;
    let session = StreamsSession::decode(value.as_bytes(), &limits()).unwrap();
    assert_eq!(session.sid, RESTORED_SID);
    assert_eq!(session.rooms, [RESTORED_SID, "room1", "j1", "j2"]);
    assert_eq!(
        session.data,
        Value::Object(vec![
            ("user".into(), Value::String("bob".into())),
            ("bin".into(), Value::Binary(Bytes::from_static(&[1, 2]))),
        ])
    );
    assert_eq!(session.encode(), value.as_bytes());
    let config = StreamsConfig::default();
    assert_eq!(config.session_key(&session.pid), key);
    assert_eq!(
        config.persist_session(&session, Duration::from_secs(120)),
        BusCommand::SetKey {
            key: Str::from(key),
            value: Bytes::from_static(value.as_bytes()),
            ttl: Some(Duration::from_secs(120)),
        }
    );
}

/// What the reference replays is what [`SessionRestore`] replays, from
/// the same stream and session.
#[test]
fn restore_replays_what_the_reference_replayed() {
    let config = StreamsConfig::default();
    let (key, value, offset) = SESSION;
    let pid = key.strip_prefix("sio:session:").unwrap();
    let (mut restore, first) =
        SessionRestore::start(&config, "/", pid, offset, 1, 2, limits(), 1000).unwrap();
    assert_eq!(
        first,
        vec![
            BusCommand::TakeKey {
                key: Str::from(key),
                token: 1
            },
            BusCommand::StreamRange {
                stream: "socket.io".into(),
                start: Str::from(offset),
                end: Str::from(offset),
                count: Some(1),
                token: 2
            },
        ]
    );
    // Answers in any order.
    assert_eq!(
        restore.on_range(2, Some(&[entry("socket_emit")]), None),
        RestoreStep::Wait
    );
    let next = restore.on_key_taken(1, Some(value.as_bytes()));
    let start = offset.parse::<StreamId>().unwrap().next().unwrap().to_str();
    assert_eq!(
        next,
        RestoreStep::Send(vec![BusCommand::StreamRange {
            stream: "socket.io".into(),
            start,
            end: "+".into(),
            count: Some(100),
            token: 2
        }])
    );
    // Everything after the offset (what XRANGE returned to the reference).
    let after: Vec<StreamEntry> = ["missed", "missed_other"].map(entry).to_vec();
    let RestoreStep::Done(Ok(restored)) = restore.on_range(2, Some(&after), None) else {
        panic!("not restored")
    };
    assert_eq!(restored.session.sid, RESTORED_SID);
    assert_eq!(
        Value::Array(restored.missed.into_iter().map(Value::Array).collect()),
        json(RESTORED_MISSED)
    );
    assert_eq!(
        restored.replayed_until.to_string(),
        *entry("missed_other").id
    );
}

#[test]
fn restore_pages_and_catches_up_with_the_follower() {
    let config = StreamsConfig {
        read_count: 2,
        ..StreamsConfig::default()
    };
    let (_, value, _) = SESSION;
    // From the first entry: every broadcast after it that reaches the
    // session's rooms, in order, never twice.
    let offset = &*entry("broadcast_all").id;
    let (mut restore, _) =
        SessionRestore::start(&config, "/", "p", offset, 1, 2, limits(), 1000).unwrap();
    assert_eq!(
        restore.on_key_taken(1, Some(value.as_bytes())),
        RestoreStep::Wait
    );
    assert!(matches!(
        restore.on_range(2, Some(&[entry("broadcast_all")]), None),
        RestoreStep::Send(_)
    ));
    let seen = entry("missed").id.parse::<StreamId>().unwrap();
    let names = [
        "broadcast_room",
        "broadcast_rooms_except",
        "broadcast_volatile",
        "broadcast_binary",
        "broadcast_long",
        "sockets_join",
        "socket_emit",
    ];
    let all: Vec<StreamEntry> = names.map(entry).to_vec();
    for page in all.chunks(2) {
        // A repeated entry (a page overlapping the last) is skipped.
        let mut page = page.to_vec();
        page.insert(0, entry("broadcast_all"));
        let step = restore.on_range(2, Some(&page), Some(seen));
        assert!(matches!(step, RestoreStep::Send(_)), "{step:?}");
    }
    // An empty page, but the follower has seen more: read again.
    let RestoreStep::Send(cmds) = restore.on_range(2, Some(&[]), Some(seen)) else {
        panic!()
    };
    let BusCommand::StreamRange { start, .. } = &cmds[0] else {
        panic!()
    };
    assert_eq!(
        start,
        &entry("socket_emit")
            .id
            .parse::<StreamId>()
            .unwrap()
            .next()
            .unwrap()
            .to_str()
    );
    let RestoreStep::Done(Ok(restored)) = restore.on_range(2, Some(&[entry("missed")]), Some(seen))
    else {
        panic!()
    };
    let events: Vec<Value> = restored.missed.iter().map(|a| a[0].clone()).collect();
    // Not "r1"/"r2" (rooms the session is not in); volatile and binary
    // entries are replayed as the reference does.
    assert_eq!(
        events,
        ["ev", "vol", "bin", "long", "direct", "missed"].map(|s| Value::String(s.into()))
    );
    assert_eq!(restored.replayed_until, seen);
}

#[test]
fn restore_failures() {
    let config = StreamsConfig::default();
    let (_, value, offset) = SESSION;
    let start = || {
        SessionRestore::start(&config, "/", "p", offset, 1, 2, limits(), 1)
            .unwrap()
            .0
    };
    assert_eq!(
        SessionRestore::start(&config, "/", "p", "0", 1, 2, limits(), 1).unwrap_err(),
        RestoreError::InvalidOffset
    );
    let mut r = start();
    assert_eq!(
        r.on_key_taken(1, None),
        RestoreStep::Done(Err(RestoreError::NoSession))
    );
    // The offset was trimmed: no need to wait for the session.
    let mut r = start();
    assert_eq!(
        r.on_range(2, Some(&[]), None),
        RestoreStep::Done(Err(RestoreError::OffsetNotFound))
    );
    let mut r = start();
    assert!(matches!(
        r.on_key_taken(1, Some(b"!!not base64")),
        RestoreStep::Done(Err(RestoreError::BadSession(_)))
    ));
    let mut r = start();
    assert_eq!(
        r.on_key_taken(9, None),
        RestoreStep::Done(Err(RestoreError::UnexpectedAnswer))
    );
    // More missed packets than allowed.
    let mut r = start();
    r.on_key_taken(1, Some(value.as_bytes()));
    assert!(matches!(
        r.on_range(2, Some(&[entry("socket_emit")]), None),
        RestoreStep::Send(_)
    ));
    let two = ["missed", "missed"].map(entry);
    let mut two = two.to_vec();
    two[1].id = "9999999999999-0".into();
    assert_eq!(
        r.on_range(2, Some(&two), None),
        RestoreStep::Done(Err(RestoreError::TooManyPackets))
    );
    // A failed read.
    let mut r = start();
    r.on_key_taken(1, Some(value.as_bytes()));
    r.on_range(2, Some(&[entry("socket_emit")]), None);
    assert_eq!(
        r.on_range(2, None, None),
        RestoreStep::Done(Err(RestoreError::RangeFailed))
    );
    // The stream never stops growing.
    let mut r = start();
    r.on_key_taken(1, Some(value.as_bytes()));
    r.on_range(2, Some(&[entry("socket_emit")]), None);
    let mut last = RestoreStep::Wait;
    for _ in 0..=RESTORE_MAX_RANGE_CALLS {
        last = r.on_range(
            2,
            Some(&[]),
            Some(StreamId {
                ms: u64::MAX,
                seq: 0,
            }),
        );
        if matches!(last, RestoreStep::Done(_)) {
            break;
        }
    }
    assert_eq!(last, RestoreStep::Done(Err(RestoreError::TooManyRanges)));
}

#[test]
fn hostile_entries_get_errors() {
    let bad: &[&[(&str, &str)]] = &[
        &[],
        &[("uid", "u"), ("type", "3")],
        &[("uid", "u"), ("nsp", ""), ("type", "3")],
        &[("nsp", "/"), ("type", "x")],
        &[("nsp", "/"), ("type", "99")],
        &[("nsp", "/"), ("type", "99999999999999999999999")],
        &[("nsp", "/"), ("type", "3")],
        &[("nsp", "/"), ("type", "3"), ("data", "{")],
        &[("nsp", "/"), ("type", "3"), ("data", "%%%")],
        &[("nsp", "/"), ("type", "3"), ("data", "kQ==")],
        &[
            ("nsp", "/"),
            ("type", "3"),
            ("data", "{\"packet\":{\"type\":9,\"data\":[]},\"opts\":{}}"),
        ],
    ];
    for pairs in bad {
        assert!(
            decode_entry(&fields(pairs), &limits()).is_err(),
            "{pairs:?}"
        );
    }
    // Not UTF-8.
    let f = vec![(Bytes::from_static(b"nsp"), Bytes::from_static(&[0xff]))];
    assert!(decode_entry(&f, &limits()).is_err());
    // Over the size limit.
    let small = BusLimits {
        max_message_bytes: 64,
        ..limits()
    };
    assert!(decode_entry(&entry("broadcast_all").fields, &small).is_err());
    assert!(StreamsSession::decode(SESSION.1.as_bytes(), &small).is_err());
    // Too deep, as JSON and as base64 MessagePack.
    let deep = format!("{{\"packet\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    let f = fields(&[("nsp", "/"), ("type", "3"), ("data", &deep)]);
    assert!(decode_entry(&f, &limits()).is_err());
    let mut packed = vec![0x81, 0xa1, b'a'];
    packed.extend(std::iter::repeat(0x91).take(100_000));
    packed.push(1);
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(&packed);
    let f = fields(&[("nsp", "/"), ("type", "3"), ("data", &text)]);
    assert!(decode_entry(&f, &limits()).is_err());
    // `parseInt` leniency, and the last of a repeated field.
    let f = fields(&[
        ("nsp", "/x"),
        ("type", " 4abc"),
        ("nsp", "/"),
        ("data", "{\"opts\":{},\"rooms\":[\"a\"]}"),
    ]);
    let m = decode_entry(&f, &limits()).unwrap();
    assert_eq!((m.nsp.as_str(), m.uid.as_str()), ("/", ""));
    assert!(matches!(m.data, ShardedData::SocketsJoin { .. }));
}

#[test]
fn missed_packets_follow_rooms() {
    let rooms = ["sid".to_owned(), "a".to_owned()];
    let opts = |r: &[&str], e: &[&str]| BroadcastOptions {
        rooms: r.iter().map(|s| s.to_string()).collect(),
        except: e.iter().map(|s| s.to_string()).collect(),
        ..BroadcastOptions::default()
    };
    assert!(should_include_packet(&rooms, &opts(&[], &[])));
    assert!(should_include_packet(&rooms, &opts(&["a", "b"], &[])));
    assert!(!should_include_packet(&rooms, &opts(&["b"], &[])));
    assert!(!should_include_packet(&rooms, &opts(&[], &["sid"])));
    let m = decode_entry(&entry("missed").fields, &limits()).unwrap();
    assert_eq!(missed_packet(&m, "1-0", "/other", &["room1".into()]), None);
    assert_eq!(
        missed_packet(&m, "1-0", "/", &["room1".into()]),
        Some(vec![
            Value::String("missed".into()),
            json("1"),
            Value::String("1-0".into())
        ])
    );
}
