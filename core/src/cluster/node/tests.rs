use super::golden::GOLDEN;
use super::*;
use crate::cluster::{BusCommand, BusLimits, ChannelKind};
use crate::value::Number;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn golden(name: &str) -> (&'static str, Vec<u8>) {
    let (_, channel, bytes) = GOLDEN
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no golden {name}"));
    (channel, hex(bytes))
}

fn limits() -> BusLimits {
    BusLimits::default()
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Every golden message decodes with the decoder its channel calls for,
/// and encodes back to the same bytes (the emitter's broadcasts order
/// their options differently: those must decode the same after encoding).
#[test]
fn golden_messages_round_trip() {
    let classic = ClassicChannels::default();
    for (name, channel, bytes) in GOLDEN {
        let bytes = hex(bytes);
        let again = if name.starts_with("sharded_") {
            let m =
                ShardedMessage::decode(&bytes, &limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = m.encode();
            assert_eq!(
                ShardedMessage::decode(&again, &limits()).unwrap(),
                m,
                "{name}"
            );
            again
        } else {
            let nsp = if name == &"emitter_nsp" {
                "/admin"
            } else {
                "/"
            };
            match classic
                .classify(nsp, channel)
                .unwrap_or_else(|| panic!("{name}"))
            {
                ClassicChannel::Broadcast { .. } => {
                    let m = ClassicBroadcast::decode(&bytes, &limits())
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    let again = m.encode();
                    assert_eq!(ClassicBroadcast::decode(&again, &limits()).unwrap(), m);
                    if name.starts_with("emitter_") {
                        continue;
                    }
                    again
                }
                ClassicChannel::Request => {
                    let m = ClassicRequest::decode(&bytes, &limits())
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    m.encode()
                }
                ClassicChannel::Response => {
                    let m = ClassicResponse::decode(&bytes, &limits())
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    m.encode()
                }
            }
        };
        assert_eq!(again.as_ref(), bytes.as_slice(), "{name}");
    }
}

#[test]
fn classic_broadcast_to_all() {
    let (channel, bytes) = golden("classic_broadcast_all");
    assert_eq!(ClassicChannels::default().broadcast_to("/", &[]), channel);
    let m = ClassicBroadcast::decode(&bytes, &limits()).unwrap();
    let data = vec![
        Value::from("hello"),
        Value::from("world"),
        Value::from(1u64),
        Value::from(-2i64),
        Value::from(1.5),
        Value::Bool(true),
        Value::Null,
        Value::Object(vec![(
            s("a"),
            Value::Array(vec![Value::from(1u64), Value::from("x")]),
        )]),
    ];
    let expected = ClassicBroadcast {
        uid: s("uidAAA"),
        packet: NodePacket::event(data, Some(s("/"))),
        opts: BroadcastOptions::default(),
    };
    assert_eq!(m, expected);
    assert_eq!(expected.encode().as_ref(), bytes.as_slice());
}

#[test]
fn classic_broadcast_to_rooms_with_flags_and_binary() {
    let (channel, bytes) = golden("classic_broadcast_rooms_except_flags");
    let m = ClassicBroadcast::decode(&bytes, &limits()).unwrap();
    assert_eq!(
        ClassicChannels::default().broadcast_to("/", &m.opts.rooms),
        channel
    );
    assert_eq!(m.opts.rooms, strs(&["r1", "r2"]));
    assert_eq!(m.opts.except, strs(&["r3"]));
    assert_eq!(
        m.opts.flags,
        BroadcastFlags {
            volatile: Some(true),
            compress: Some(false),
            ..Default::default()
        }
    );
    let Value::Array(data) = &m.packet.data else {
        panic!()
    };
    assert_eq!(data[2], Value::Number(Number::NegInt(-200)));
    assert_eq!(data[5], Value::Number(Number::PosInt(5_000_000_000)));
    assert_eq!(data[7], Value::from("é€😀"));

    let (channel, bytes) = golden("classic_broadcast_binary");
    assert_eq!(channel, "socket.io#/#room1#");
    let m = ClassicBroadcast::decode(&bytes, &limits()).unwrap();
    let Value::Array(data) = &m.packet.data else {
        panic!()
    };
    assert_eq!(data[1], Value::Binary(vec![1, 2, 3].into()));
    assert_eq!(data[2].get("b"), Some(&Value::Binary(vec![7; 300].into())));
    assert_eq!(
        ClassicChannels::default().classify("/", channel),
        Some(ClassicChannel::Broadcast {
            room: Some("room1")
        })
    );
}

#[test]
fn classic_requests() {
    let (_, bytes) = golden("classic_broadcast_ack_request");
    assert_eq!(
        ClassicRequest::decode(&bytes, &limits()).unwrap(),
        ClassicRequest::Broadcast {
            uid: Some(s("uidAAA")),
            request_id: s("rq2xxx"),
            packet: NodePacket::event(vec![Value::from("ask"), Value::from(42u64)], Some(s("/"))),
            opts: BroadcastOptions {
                flags: BroadcastFlags {
                    timeout: Some(1000),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    );
    let (_, bytes) = golden("classic_fetch_request");
    assert_eq!(
        ClassicRequest::decode(&bytes, &limits()).unwrap(),
        ClassicRequest::FetchSockets {
            uid: Some(s("uidAAA")),
            request_id: s("rq3xxx"),
            opts: RoomSelection {
                rooms: strs(&["room1"]),
                except: strs(&["r9"]),
            },
        }
    );
    let (_, bytes) = golden("classic_sockets_join");
    assert_eq!(
        ClassicRequest::decode(&bytes, &limits()).unwrap(),
        ClassicRequest::SocketsJoin {
            uid: Some(s("uidAAA")),
            opts: RoomSelection {
                rooms: strs(&["room1"]),
                except: vec![],
            },
            rooms: strs(&["j1", "j2"]),
        }
    );
    let (_, bytes) = golden("classic_server_side_emit_ack");
    let m = ClassicRequest::decode(&bytes, &limits()).unwrap();
    assert_eq!(m.request_id(), Some("rq5xxx"));
    assert_eq!(
        m,
        ClassicRequest::ServerSideEmit {
            uid: Some(s("uidAAA")),
            request_id: Some(s("rq5xxx")),
            data: vec![Value::from("hi"), Value::from(2u64)],
        }
    );
    let (_, bytes) = golden("classic_all_rooms_request");
    assert_eq!(
        ClassicRequest::decode(&bytes, &limits()).unwrap(),
        ClassicRequest::AllRooms {
            uid: Some(s("uidAAA")),
            request_id: s("rq4xxx"),
        }
    );
}

#[test]
fn classic_legacy_requests_round_trip() {
    let requests = [
        ClassicRequest::Sockets {
            uid: Some(s("u")),
            request_id: s("r"),
            rooms: strs(&["a"]),
        },
        ClassicRequest::RemoteJoin {
            uid: None,
            request_id: s("r"),
            sid: s("sid"),
            room: s("room"),
        },
        ClassicRequest::RemoteLeave {
            uid: Some(s("u")),
            request_id: s("r"),
            sid: s("sid"),
            room: s("room"),
        },
        ClassicRequest::RemoteDisconnect {
            uid: Some(s("u")),
            request_id: s("r"),
            sid: s("sid"),
            close: true,
        },
    ];
    for request in requests {
        let bytes = request.encode();
        assert_eq!(bytes[0], b'{');
        assert_eq!(ClassicRequest::decode(&bytes, &limits()).unwrap(), request);
    }
    let legacy = br#"{"requestId":"r","type":2,"sid":"s","room":"x"}"#;
    assert!(matches!(
        ClassicRequest::decode(legacy, &limits()).unwrap(),
        ClassicRequest::RemoteJoin { uid: None, .. }
    ));
}

#[test]
fn classic_responses() {
    let (_, bytes) = golden("classic_fetch_response");
    let ClassicResponse::FetchSockets {
        request_id,
        sockets,
    } = ClassicResponse::decode(&bytes, &limits()).unwrap()
    else {
        panic!()
    };
    assert_eq!(request_id, "req782");
    assert_eq!(sockets.len(), 2);
    assert_eq!(sockets[0].id, "sid1");
    assert_eq!(sockets[0].rooms, strs(&["sid1", "room1"]));
    assert_eq!(
        sockets[0].handshake.get("issued"),
        Some(&Value::from(1_704_067_200_000u64))
    );
    assert_eq!(sockets[0].data.get("n"), Some(&Value::from(1.25)));
    assert_eq!(sockets[1].data, Value::Null);

    let (_, bytes) = golden("classic_broadcast_ack_response");
    assert_eq!(
        ClassicResponse::decode(&bytes, &limits()).unwrap(),
        ClassicResponse::BroadcastAck {
            request_id: s("req781"),
            packet: Value::Array(vec![Value::from("ok"), Value::Binary(vec![9].into())]),
        }
    );
    let (_, bytes) = golden("classic_broadcast_client_count_response");
    assert_eq!(
        ClassicResponse::decode(&bytes, &limits()).unwrap(),
        ClassicResponse::BroadcastClientCount {
            request_id: s("req781"),
            client_count: 2,
        }
    );
    let (_, bytes) = golden("classic_server_side_emit_response");
    assert_eq!(
        ClassicResponse::decode(&bytes, &limits()).unwrap(),
        ClassicResponse::ServerSideEmit {
            request_id: s("req777"),
            data: Value::Object(vec![(s("ok"), Value::from(1u64))]),
        }
    );
    let (_, bytes) = golden("classic_all_rooms_response");
    assert_eq!(
        ClassicResponse::decode(&bytes, &limits()).unwrap(),
        ClassicResponse::AllRooms {
            request_id: s("req778"),
            rooms: vec![],
        }
    );
    let (_, bytes) = golden("classic_remote_join_legacy_response");
    assert_eq!(
        ClassicResponse::decode(&bytes, &limits()).unwrap(),
        ClassicResponse::Done {
            request_id: s("req783"),
        }
    );
    let ids = ClassicResponse::SocketIds {
        request_id: s("r"),
        sockets: strs(&["a", "b"]),
    };
    assert_eq!(
        ClassicResponse::decode(&ids.encode(), &limits()).unwrap(),
        ids
    );
}

/// A JSON-encoded message with binary goes as MessagePack, which Node
/// reads too, instead of JSON.stringify's `{"type":"Buffer",..}`.
#[test]
fn json_messages_with_binary_go_as_msgpack() {
    let request = ClassicRequest::ServerSideEmit {
        uid: Some(s("u")),
        request_id: None,
        data: vec![Value::from("ev"), Value::Binary(vec![1, 2].into())],
    };
    let bytes = request.encode();
    assert_ne!(bytes[0], b'{');
    assert_eq!(ClassicRequest::decode(&bytes, &limits()).unwrap(), request);
}

#[test]
fn emitter_messages() {
    let (channel, bytes) = golden("emitter_to_room");
    assert_eq!(channel, "socket.io#/#room1#");
    assert_eq!(
        ClassicBroadcast::decode(&bytes, &limits()).unwrap(),
        ClassicBroadcast {
            uid: s(EMITTER_UID),
            packet: NodePacket::event(
                vec![Value::from("news"), Value::Binary(vec![255].into())],
                Some(s("/"))
            ),
            opts: BroadcastOptions {
                rooms: strs(&["room1"]),
                ..Default::default()
            },
        }
    );
    let (_, bytes) = golden("emitter_rooms_except_volatile");
    let m = ClassicBroadcast::decode(&bytes, &limits()).unwrap();
    assert_eq!(m.opts.except, strs(&["r3"]));
    assert_eq!(m.opts.flags.volatile, Some(true));
    assert_eq!(m.opts.flags.compress, Some(true));
    let (channel, bytes) = golden("emitter_nsp");
    assert_eq!(
        ClassicChannels::default().broadcast_room("/admin", "r1"),
        channel
    );
    let m = ClassicBroadcast::decode(&bytes, &limits()).unwrap();
    assert_eq!(m.packet.nsp.as_deref(), Some("/admin"));

    let (_, bytes) = golden("emitter_sockets_leave");
    assert_eq!(
        ClassicRequest::decode(&bytes, &limits()).unwrap(),
        ClassicRequest::SocketsLeave {
            uid: None,
            opts: RoomSelection {
                rooms: vec![],
                except: strs(&["room1"]),
            },
            rooms: strs(&["room2", "room3"]),
        }
    );
    let (_, bytes) = golden("emitter_disconnect_sockets_default");
    assert_eq!(
        ClassicRequest::decode(&bytes, &limits()).unwrap(),
        ClassicRequest::DisconnectSockets {
            uid: None,
            opts: RoomSelection::default(),
            close: false,
        }
    );
    let (_, bytes) = golden("emitter_server_side_emit");
    let m = ClassicRequest::decode(&bytes, &limits()).unwrap();
    assert_eq!(m.uid(), Some(EMITTER_UID));
    assert_eq!(m.request_id(), None);
}

#[test]
fn classic_channels() {
    let channels = ClassicChannels::default();
    assert_eq!(
        channels.subscriptions("/", "rq1xxx"),
        vec![
            BusCommand::Subscribe {
                channel: "socket.io#/#*".into(),
                kind: ChannelKind::Pattern
            },
            BusCommand::Subscribe {
                channel: "socket.io-request#/#".into(),
                kind: ChannelKind::Plain
            },
            BusCommand::Subscribe {
                channel: "socket.io-response#/#".into(),
                kind: ChannelKind::Plain
            },
            BusCommand::Subscribe {
                channel: "socket.io-response#/#rq1xxx#".into(),
                kind: ChannelKind::Plain
            },
        ]
    );
    assert_eq!(
        ClassicChannels::new("k*").broadcast_pattern("/a[b]"),
        "k\\*#/a\\[b\\]#*"
    );
    assert_eq!(
        channels.broadcast_to("/", &strs(&["a", "a"])),
        "socket.io#/#a#"
    );
    assert_eq!(
        channels.classify("/", "socket.io-request#/#"),
        Some(ClassicChannel::Request)
    );
    assert_eq!(
        channels.classify("/", "socket.io-response#/#abc#"),
        Some(ClassicChannel::Response)
    );
    assert_eq!(channels.classify("/", "socket.io#/admin#"), None);
    assert_eq!(channels.classify("/", "socket.io#/#room"), None);
    assert_eq!(
        channels.count_nodes("/"),
        BusCommand::CountSubscribers {
            channel: "socket.io-request#/#".into(),
            sharded: false
        }
    );
}

#[test]
fn sharded_messages_and_channels() {
    let channels = ShardedChannels::default();
    let uid = "0101010101010101";
    assert_eq!(
        channels.subscriptions("/", uid),
        vec![
            BusCommand::Subscribe {
                channel: "socket.io#/#".into(),
                kind: ChannelKind::Sharded
            },
            BusCommand::Subscribe {
                channel: "socket.io#/#0101010101010101#".into(),
                kind: ChannelKind::Sharded
            },
        ]
    );
    // Requests and broadcasts go where the reference published them.
    for (name, channel, bytes) in GOLDEN.iter().filter(|(n, _, _)| n.starts_with("sharded_")) {
        let m = ShardedMessage::decode(&hex(bytes), &limits()).unwrap();
        assert_eq!(m.uid, uid);
        if m.data.is_response() || name.ends_with("_response") {
            assert_eq!(channels.response("/", "otheruid"), *channel, "{name}");
        } else {
            assert_eq!(
                channels.publish_channel(SubscriptionMode::Dynamic, &m),
                *channel,
                "{name}"
            );
        }
    }
    let (_, bytes) = golden("sharded_broadcast_binary");
    assert_eq!(
        ShardedMessage::decode(&bytes, &limits()).unwrap(),
        ShardedMessage {
            uid: s(uid),
            nsp: s("/"),
            data: ShardedData::Broadcast {
                packet: NodePacket::event(
                    vec![Value::from("bin"), Value::Binary(vec![1, 2, 3].into())],
                    None
                ),
                request_id: None,
                opts: BroadcastOptions::default(),
            },
        }
    );
    let (_, bytes) = golden("sharded_fetch_request");
    let m = ShardedMessage::decode(&bytes, &limits()).unwrap();
    assert_eq!(m.data.request_id(), Some("0303030303030303"));
    let (_, bytes) = golden("sharded_fetch_response_sockets");
    let ShardedData::FetchSocketsResponse { sockets, .. } =
        ShardedMessage::decode(&bytes, &limits()).unwrap().data
    else {
        panic!()
    };
    assert_eq!(
        sockets[0].data.get("b"),
        Some(&Value::Binary(vec![1, 2].into()))
    );
    let (_, bytes) = golden("sharded_server_side_emit_response");
    assert_eq!(
        ShardedMessage::decode(&bytes, &limits()).unwrap().data,
        ShardedData::ServerSideEmitResponse {
            request_id: s("rid1"),
            packet: Value::from("pong"),
        }
    );
    let heartbeat = ShardedMessage {
        uid: s("u"),
        nsp: s("/"),
        data: ShardedData::Heartbeat,
    };
    assert_eq!(
        heartbeat.encode().as_ref(),
        br#"{"type":2,"uid":"u","nsp":"/"}"#
    );
    assert_eq!(
        ShardedMessage::decode(&heartbeat.encode(), &limits()).unwrap(),
        heartbeat
    );
    assert!(ShardedChannels::room_has_channel(
        SubscriptionMode::Dynamic,
        false
    ));
    assert!(!ShardedChannels::room_has_channel(
        SubscriptionMode::Dynamic,
        true
    ));
    assert!(!ShardedChannels::room_has_channel(
        SubscriptionMode::Static,
        false
    ));
    assert!(ShardedChannels::room_has_channel(
        SubscriptionMode::DynamicPrivate,
        true
    ));
    assert_eq!(
        channels.count_nodes("/"),
        BusCommand::CountSubscribers {
            channel: "socket.io#/#".into(),
            sharded: true
        }
    );
}

#[test]
fn javascript_undefined_reads_as_absent() {
    // [uid, {type: 2, data: ["e"], nsp: undefined}, {rooms: undefined, except: [], flags: undefined}]
    let mut bytes = vec![0x93, 0xa1, b'u', 0x83];
    bytes.extend_from_slice(b"\xa4type\x02\xa4data\x91\xa1e\xa3nsp\xd4\x00\x00");
    bytes.extend_from_slice(b"\x83\xa5rooms\xd4\x00\x00\xa6except\x90\xa5flags\xd4\x00\x00");
    let m = ClassicBroadcast::decode(&bytes, &limits()).unwrap();
    assert_eq!(m.packet.nsp.as_deref(), Some("/"));
    assert_eq!(m.opts, BroadcastOptions::default());
}

#[test]
fn deep_nesting_is_refused_without_overflow() {
    let mut msgpack = vec![0x91; 100_000];
    msgpack.push(0xc0);
    assert!(ClassicBroadcast::decode(&msgpack, &limits()).is_err());
    // As a request map's value too.
    let mut request = b"\x81\xa4data".to_vec();
    request.extend_from_slice(&msgpack);
    assert!(ClassicRequest::decode(&request, &limits()).is_err());
    let mut json = b"{\"data\":".to_vec();
    json.extend(std::iter::repeat(b'[').take(100_000));
    json.extend(std::iter::repeat(b']').take(100_000));
    json.push(b'}');
    assert!(ClassicRequest::decode(&json, &limits()).is_err());
    assert!(ShardedMessage::decode(&json, &limits()).is_err());
    let tight = BusLimits {
        max_depth: 3,
        ..limits()
    };
    let (_, bytes) = golden("classic_broadcast_all");
    assert!(ClassicBroadcast::decode(&bytes, &tight).is_err());
}

#[test]
fn bad_messages_get_errors() {
    let small = BusLimits {
        max_message_bytes: 10,
        ..limits()
    };
    let (_, bytes) = golden("classic_broadcast_room");
    assert!(ClassicBroadcast::decode(&bytes, &small).is_err());
    // Trailing garbage.
    let mut trailing = bytes.clone();
    trailing.push(0xc0);
    assert!(ClassicBroadcast::decode(&trailing, &limits()).is_err());
    let (_, json) = golden("classic_fetch_request");
    let mut trailing = json.clone();
    trailing.extend_from_slice(b" x");
    assert!(ClassicRequest::decode(&trailing, &limits()).is_err());
    // Truncated.
    for cut in 0..bytes.len() {
        assert!(ClassicBroadcast::decode(&bytes[..cut], &limits()).is_err());
    }
    let bad: &[&[u8]] = &[
        b"",
        b"{",
        b"{}",
        br#"{"type":99,"requestId":"r"}"#,
        br#"{"type":"1","requestId":"r"}"#,
        br#"{"type":1,"requestId":7}"#,
        br#"{"type":1.5,"requestId":"r"}"#,
        br#"{"type":-1,"requestId":"r"}"#,
        br#"{"type":18446744073709551616,"requestId":"r"}"#,
        br#"{"type":5,"requestId":"r","opts":{"rooms":[{}]}}"#,
        br#"{"type":5,"requestId":"r","opts":[]}"#,
        br#"{"type":6,"data":{}}"#,
        br#"{"type":4,"opts":{},"close":"yes"}"#,
        b"\xc1",
        b"\x93\x01\x80\x80",
    ];
    for input in bad {
        assert!(
            ClassicRequest::decode(input, &limits()).is_err(),
            "{input:?}"
        );
        assert!(
            ShardedMessage::decode(input, &limits()).is_err(),
            "{input:?}"
        );
    }
    assert!(
        ClassicResponse::decode(br#"{"requestId":"r","type":8,"clientCount":-1}"#, &limits())
            .is_err()
    );
    assert!(ClassicResponse::decode(br#"{"requestId":"r","sockets":[1]}"#, &limits()).is_err());
    // Packet type out of range, uid not a string.
    assert!(ClassicBroadcast::decode(b"\x93\xa1u\x81\xa4type\x07\x80", &limits()).is_err());
    assert!(ClassicBroadcast::decode(b"\x93\x01\x81\xa4type\x02\x80", &limits()).is_err());
    // Flags of the wrong type.
    assert!(ClassicBroadcast::decode(
        b"\x93\xa1u\x81\xa4type\x02\x81\xa5flags\x81\xa7timeout\xff",
        &limits()
    )
    .is_err());
    // A map length larger than the message.
    assert!(ClassicBroadcast::decode(b"\xdf\xff\xff\xff\xff", &limits()).is_err());
}

#[test]
fn numbers_encode_like_notepack() {
    let values = [
        (Value::from(127u64), "7f"),
        (Value::from(128u64), "cc80"),
        (Value::from(65_536u64), "ce00010000"),
        (Value::from(-32i64), "e0"),
        (Value::from(-33i64), "d0df"),
        (Value::from(u64::MAX), "cfffffffffffffffff"),
        (Value::from(i64::MIN), "d38000000000000000"),
        (Value::from(0.5), "cb3fe0000000000000"),
    ];
    for (value, expected) in values {
        let mut buf = Vec::new();
        super::wire::write_msgpack_value(&mut buf, &value);
        assert_eq!(buf, hex(expected), "{value:?}");
    }
    let mut json = String::new();
    super::wire::write_json_value(
        &mut json,
        &Value::Array(vec![
            Value::from(1e21),
            Value::from(1e-7),
            Value::from(f64::NAN),
            Value::from("a\"\n\u{1}é"),
            Value::Binary(vec![1, 2].into()),
        ]),
    );
    assert_eq!(
        json,
        r#"[1e+21,1e-7,null,"a\"\n\u0001é",{"type":"Buffer","data":[1,2]}]"#
    );
}
