use proptest::prelude::*;
use serde::de::IgnoredAny;

use super::number::js_number_text;
use super::*;
use crate::parser::RESERVED_EVENTS;
use crate::value::{Number, Value};

fn obj(entries: &[(&str, Value)]) -> Value {
    Value::Object(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn encode<A: Serialize + ?Sized>(packet: OutPacket<'_, A>) -> Result<Encoded, EncodeError> {
    let mut out = Encoded::default();
    JsonParser.encode(&packet, &mut out)?;
    Ok(out)
}

fn text_of(out: &Encoded) -> &str {
    assert!(!out.binary);
    std::str::from_utf8(&out.data).unwrap()
}

fn encoded<A: Serialize + ?Sized>(packet: OutPacket<'_, A>) -> String {
    let out = encode(packet).unwrap();
    assert!(out.attachments.is_empty());
    text_of(&out).to_owned()
}

fn text(s: &str) -> Message {
    Message::Text(Str::from(s))
}

fn bin(b: &'static [u8]) -> Message {
    Message::Binary(Bytes::from_static(b))
}

/// Feed all messages; the last one must complete the packet.
fn decode_msgs(messages: Vec<Message>) -> Result<Packet, DecodeError> {
    let mut decoder = JsonParserDecoder::default();
    let limits = DecodeLimits::default();
    let count = messages.len();
    for (i, message) in messages.into_iter().enumerate() {
        let result = JsonParser.decode(&mut decoder, message, &limits)?;
        if i + 1 == count {
            return Ok(result.expect("packet complete after the last message"));
        }
        assert!(result.is_none(), "packet complete too early");
    }
    unreachable!("no message")
}

fn decode(s: &str) -> Result<Packet, DecodeError> {
    decode_msgs(vec![text(s)])
}

fn event_of(packet: &Packet) -> (&str, &Args, Option<u64>) {
    match &packet.data {
        PacketData::Event { name, args, ack } => (name, args, *ack),
        other => panic!("not an event: {other:?}"),
    }
}

fn ack_of(packet: &Packet) -> (u64, &Args) {
    match &packet.data {
        PacketData::Ack { id, args } => (*id, args),
        other => panic!("not an ack: {other:?}"),
    }
}

/// A packet accepted at decode time whose arguments are invalid: every
/// way of reading them fails.
fn assert_args_rejected(packet: &Packet, what: &str) {
    let args = match &packet.data {
        PacketData::Event { args, .. } | PacketData::Ack { args, .. } => args,
        other => panic!("not an event or ack: {other:?}"),
    };
    assert!(args.validate().is_err(), "{what}: validate");
    assert!(args.deserialize::<()>().is_err(), "{what}: deserialize ()");
    assert!(args.deserialize::<Value>().is_err(), "{what}: deserialize");
    assert!(
        args.deserialize::<(Value, Value, Value)>().is_err(),
        "{what}: deserialize tuple"
    );
    assert!(
        args.deserialize::<Option<IgnoredAny>>().is_err(),
        "{what}: deserialize ignored"
    );
    assert!(args.to_values().is_err(), "{what}: to_values");
    assert!(args.get::<Value>(0).is_err(), "{what}: get");
    assert_eq!(args.len(), 0, "{what}: len");
    assert_eq!(args.json_texts().unwrap().count(), 0, "{what}: json_texts");
    let mut out = Encoded::default();
    assert!(
        JsonParser
            .encode(
                &OutPacket::Ack {
                    nsp: "/",
                    id: 1,
                    args
                },
                &mut out
            )
            .is_err(),
        "{what}: re-encode"
    );
}

fn ph(n: u64) -> Value {
    obj(&[("_placeholder", Value::Bool(true)), ("num", Value::from(n))])
}

// --- Encoding: the spec's examples -----------------------------------

#[test]
fn encodes_spec_connect_examples() {
    assert_eq!(
        encoded::<Value>(OutPacket::Connect {
            nsp: "/",
            data: None
        }),
        "0"
    );
    let sid = obj(&[("sid", "oSO0OpakMV_3jnilAAAA".into())]);
    assert_eq!(
        encoded(OutPacket::Connect {
            nsp: "/admin",
            data: Some(&sid)
        }),
        r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#
    );
    let refused = obj(&[("message", "Not authorized".into())]);
    assert_eq!(
        encoded(OutPacket::ConnectError {
            nsp: "/",
            data: &refused
        }),
        r#"4{"message":"Not authorized"}"#
    );
    assert_eq!(
        encoded(OutPacket::ConnectError {
            nsp: "/admin",
            data: "nope"
        }),
        r#"4/admin,"nope""#
    );
}

#[test]
fn encodes_spec_event_and_ack_examples() {
    let e = |nsp, event, ack| {
        encoded(OutPacket::Event {
            nsp,
            event,
            args: &(),
            ack,
        })
    };
    assert_eq!(e("/", "foo", None), r#"2["foo"]"#);
    assert_eq!(e("/admin", "bar", None), r#"2/admin,["bar"]"#);
    assert_eq!(e("/", "foo", Some(12)), r#"212["foo"]"#);
    assert_eq!(
        encoded(OutPacket::Ack {
            nsp: "/admin",
            id: 13,
            args: &("bar",)
        }),
        r#"3/admin,13["bar"]"#
    );
    assert_eq!(
        encoded(OutPacket::Ack {
            nsp: "/",
            id: 12,
            args: &()
        }),
        "312[]"
    );
    assert_eq!(encoded::<()>(OutPacket::Disconnect { nsp: "/" }), "1");
    assert_eq!(
        encoded::<()>(OutPacket::Disconnect { nsp: "/admin" }),
        "1/admin,"
    );
}

#[test]
fn encodes_message_back_byte_for_byte() {
    let third = obj(&[("3", Value::Array(vec![Value::Bool(true)]))]);
    assert_eq!(
        encoded(OutPacket::Event {
            nsp: "/",
            event: "message-back",
            args: &(1, "2", &third),
            ack: None,
        }),
        r#"2["message-back",1,"2",{"3":[true]}]"#
    );
}

#[test]
fn relayed_arguments_are_copied_as_received() {
    let packet =
        decode(r#"2["in",{"a":1e5,"b":"\u00e9"},[1, 2],"x",12345678901234567890123]"#).unwrap();
    let (_, args, _) = event_of(&packet);
    // Our encoder copies each argument's text: numbers, escapes and
    // spacing as the peer wrote them (a big integer survives intact).
    assert_eq!(
        encoded(OutPacket::Event {
            nsp: "/",
            event: "out",
            args,
            ack: None,
        }),
        r#"2["out",{"a":1e5,"b":"\u00e9"},[1, 2],"x",12345678901234567890123]"#
    );
    // Nested in other data, too.
    assert_eq!(
        encoded(OutPacket::Event {
            nsp: "/",
            event: "out",
            args: &(1, args),
            ack: None,
        }),
        r#"2["out",1,[{"a":1e5,"b":"\u00e9"},[1, 2],"x",12345678901234567890123]]"#
    );
    // Any other serializer gets the values.
    let small = decode(r#"2["in",{"a":1e5,"b":"\u00e9"},[1, 2]]"#).unwrap();
    let (_, small_args, _) = event_of(&small);
    assert_eq!(
        serde_json::to_string(small_args).unwrap(),
        r#"[{"a":100000.0,"b":"é"},[1,2]]"#
    );
    assert_eq!(
        crate::value::to_value(small_args).unwrap(),
        Value::Array(vec![
            obj(&[("a", Value::from(100000.0)), ("b", Value::from("é"))]),
            Value::Array(vec![Value::from(1u64), Value::from(2u64)]),
        ])
    );
}

#[test]
fn encodes_spec_binary_examples() {
    let out = encode(OutPacket::Event {
        nsp: "/",
        event: "baz",
        args: &Bytes::from_static(&[1, 2, 3, 4]),
        ack: None,
    })
    .unwrap();
    assert_eq!(text_of(&out), r#"51-["baz",{"_placeholder":true,"num":0}]"#);
    assert_eq!(out.attachments, vec![Bytes::from_static(&[1, 2, 3, 4])]);

    let out = encode(OutPacket::Event {
        nsp: "/admin",
        event: "baz",
        args: &(Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])),
        ack: None,
    })
    .unwrap();
    assert_eq!(
        text_of(&out),
        r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(
        out.attachments,
        vec![Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])]
    );

    let out = encode(OutPacket::Ack {
        nsp: "/",
        id: 15,
        args: &("bar", Value::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
    })
    .unwrap();
    assert_eq!(
        text_of(&out),
        r#"61-15["bar",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(out.attachments, vec![Bytes::from_static(&[1, 2, 3, 4])]);
}

#[test]
fn nested_binary_keeps_document_order() {
    #[derive(serde::Serialize)]
    struct Inner {
        deep: Option<Bytes>,
    }
    #[derive(serde::Serialize)]
    struct Outer {
        a: Bytes,
        list: Vec<Bytes>,
        inner: Inner,
        tail: Value,
    }
    let outer = Outer {
        a: Bytes::from_static(b"a"),
        list: vec![Bytes::from_static(b"b"), Bytes::from_static(b"c")],
        inner: Inner {
            deep: Some(Bytes::from_static(b"d")),
        },
        tail: Value::Array(vec![
            Value::Null,
            obj(&[("e", Value::Binary(Bytes::from_static(b"e")))]),
        ]),
    };
    let out = encode(OutPacket::Event {
        nsp: "/",
        event: "x",
        args: &(&outer, Bytes::from_static(b"f")),
        ack: Some(7),
    })
    .unwrap();
    let p = |n| format!(r#"{{"_placeholder":true,"num":{n}}}"#);
    assert_eq!(
        text_of(&out),
        format!(
            r#"56-7["x",{{"a":{},"list":[{},{}],"inner":{{"deep":{}}},"tail":[null,{{"e":{}}}]}},{}]"#,
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
            p(5)
        )
    );
    let expected: Vec<Bytes> = [b"a", b"b", b"c", b"d", b"e", b"f"]
        .iter()
        .map(|b| Bytes::from_static(*b))
        .collect();
    assert_eq!(out.attachments, expected);
}

#[test]
fn many_attachments_write_a_multi_digit_count() {
    let args: Vec<Bytes> = (0..12u8).map(|i| Bytes::from(vec![i])).collect();
    let out = encode(OutPacket::Event {
        nsp: "/n",
        event: "x",
        args: &args,
        ack: Some(3),
    })
    .unwrap();
    assert!(text_of(&out).starts_with(r#"512-/n,3["x",[{"_placeholder":true,"num":0},"#));
    assert_eq!(out.attachments.len(), 12);
}

#[test]
fn encode_reuses_the_buffer() {
    let mut out = Encoded::default();
    for _ in 0..3 {
        JsonParser
            .encode(
                &OutPacket::Event {
                    nsp: "/",
                    event: "e",
                    args: &Bytes::from_static(b"x"),
                    ack: None,
                },
                &mut out,
            )
            .unwrap();
        assert_eq!(out.attachments.len(), 1);
        JsonParser
            .encode(
                &OutPacket::Event {
                    nsp: "/",
                    event: "e",
                    args: &(1, 2),
                    ack: None,
                },
                &mut out,
            )
            .unwrap();
        assert_eq!(text_of(&out), r#"2["e",1,2]"#);
        assert!(out.attachments.is_empty());
    }
}

#[test]
fn encode_rejects_misuse() {
    let mut out = Encoded::default();
    let bad_nsp = |nsp| {
        encode(OutPacket::Event {
            nsp,
            event: "e",
            args: &(),
            ack: None,
        })
        .unwrap_err()
    };
    assert_eq!(bad_nsp("admin"), EncodeError::BadNamespace);
    assert_eq!(bad_nsp(""), EncodeError::BadNamespace);
    assert_eq!(bad_nsp("/a,b"), EncodeError::BadNamespace);
    for reserved in RESERVED_EVENTS {
        assert_eq!(
            encode(OutPacket::Event {
                nsp: "/",
                event: reserved,
                args: &(),
                ack: None
            })
            .unwrap_err(),
            EncodeError::ReservedEvent
        );
    }
    assert!(matches!(
        encode(OutPacket::Connect {
            nsp: "/",
            data: Some(&5)
        }),
        Err(EncodeError::InvalidPayload(_))
    ));
    assert!(matches!(
        encode(OutPacket::Connect {
            nsp: "/",
            data: Some(&vec![1])
        }),
        Err(EncodeError::InvalidPayload(_))
    ));
    assert!(matches!(
        encode(OutPacket::Connect {
            nsp: "/",
            data: Some(&obj(&[("b", Value::Binary(Bytes::new()))]))
        }),
        Err(EncodeError::InvalidPayload(_))
    ));
    assert!(matches!(
        encode(OutPacket::ConnectError { nsp: "/", data: &1 }),
        Err(EncodeError::InvalidPayload(_))
    ));
    // A map with a non-string key cannot be JSON.
    let mut map = std::collections::BTreeMap::new();
    map.insert(vec![1u8], 1);
    JsonParser
        .encode(
            &OutPacket::Event {
                nsp: "/",
                event: "e",
                args: &map,
                ack: None,
            },
            &mut out,
        )
        .unwrap_err();
    assert!(out.data.is_empty(), "a failed encode leaves nothing behind");
}

// --- Decoding: the spec's examples -----------------------------------

#[test]
fn decodes_spec_connect_examples() {
    assert_eq!(
        decode("0").unwrap(),
        Packet {
            nsp: Str::from_static("/"),
            data: PacketData::Connect(None)
        }
    );
    assert_eq!(
        decode(r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#).unwrap(),
        Packet {
            nsp: Str::from_static("/admin"),
            data: PacketData::Connect(Some(obj(&[("sid", "oSO0OpakMV_3jnilAAAA".into())])))
        }
    );
    assert_eq!(
        decode(r#"0/admin,{"token":"123"}"#).unwrap().data,
        PacketData::Connect(Some(obj(&[("token", "123".into())])))
    );
    // Clients send the namespace with and without the trailing comma.
    for s in ["0/admin", "0/admin,"] {
        assert_eq!(
            decode(s).unwrap(),
            Packet {
                nsp: Str::from_static("/admin"),
                data: PacketData::Connect(None)
            }
        );
    }
    assert_eq!(
        decode(r#"4{"message":"Not authorized"}"#).unwrap().data,
        PacketData::ConnectError(obj(&[("message", "Not authorized".into())]))
    );
    assert_eq!(
        decode(r#"4/admin,"nope""#).unwrap(),
        Packet {
            nsp: Str::from_static("/admin"),
            data: PacketData::ConnectError("nope".into())
        }
    );
    assert_eq!(decode("1").unwrap().data, PacketData::Disconnect);
    assert_eq!(
        decode("1/admin,").unwrap(),
        Packet {
            nsp: Str::from_static("/admin"),
            data: PacketData::Disconnect
        }
    );
}

#[test]
fn decodes_spec_event_and_ack_examples() {
    let p = decode(r#"2["foo"]"#).unwrap();
    assert_eq!(p.nsp, "/");
    let (name, args, ack) = event_of(&p);
    assert_eq!((name, args.len(), ack), ("foo", 0, None));

    let p = decode(r#"2/admin,["bar"]"#).unwrap();
    assert_eq!(p.nsp, "/admin");
    assert_eq!(event_of(&p).0, "bar");

    let p = decode(r#"212["foo"]"#).unwrap();
    assert_eq!(event_of(&p).2, Some(12));

    let p = decode(r#"3/admin,13["bar"]"#).unwrap();
    assert_eq!(p.nsp, "/admin");
    let (id, args) = ack_of(&p);
    assert_eq!(id, 13);
    assert_eq!(args.to_values().unwrap(), vec![Value::from("bar")]);

    let p = decode("312[]").unwrap();
    assert_eq!(ack_of(&p).0, 12);
    assert!(ack_of(&p).1.is_empty());

    // The reference decoder accepts an ACK without payload.
    let p = decode("35").unwrap();
    assert_eq!(ack_of(&p).0, 5);
    assert!(ack_of(&p).1.is_empty());

    let p = decode(r#"2["message-back",1,"2",{"3":[true]}]"#).unwrap();
    let (name, args, _) = event_of(&p);
    assert_eq!(name, "message-back");
    assert_eq!(
        args.to_values().unwrap(),
        vec![
            Value::from(1u64),
            Value::from("2"),
            obj(&[("3", Value::Array(vec![Value::Bool(true)]))])
        ]
    );
    assert_eq!(
        args.json_texts().unwrap().collect::<Vec<_>>(),
        vec!["1", r#""2""#, r#"{"3":[true]}"#]
    );
}

#[test]
fn decodes_spec_binary_examples() {
    let attachment = Bytes::from_static(&[1, 2, 3, 4]);
    let p = decode_msgs(vec![
        text(r#"51-["baz",{"_placeholder":true,"num":0}]"#),
        Message::Binary(attachment.clone()),
    ])
    .unwrap();
    let (name, args, ack) = event_of(&p);
    assert_eq!((name, ack), ("baz", None));
    let values = args.to_values().unwrap();
    assert_eq!(values, vec![Value::Binary(attachment.clone())]);
    // The attachment is the received buffer, not a copy.
    match &values[0] {
        Value::Binary(b) => assert_eq!(b.as_ptr(), attachment.as_ptr()),
        _ => unreachable!(),
    }
    assert_eq!(args.attachments()[0].as_ptr(), attachment.as_ptr());

    let p = decode_msgs(vec![
        text(r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
        bin(&[1, 2]),
        bin(&[3, 4]),
    ])
    .unwrap();
    assert_eq!(p.nsp, "/admin");
    assert_eq!(
        event_of(&p).1.to_values().unwrap(),
        vec![
            Value::Binary(Bytes::from_static(&[1, 2])),
            Value::Binary(Bytes::from_static(&[3, 4]))
        ]
    );

    let p = decode_msgs(vec![
        text(r#"61-15["bar",{"_placeholder":true,"num":0}]"#),
        bin(&[1, 2, 3, 4]),
    ])
    .unwrap();
    let (id, args) = ack_of(&p);
    assert_eq!(id, 15);
    assert_eq!(
        args.to_values().unwrap(),
        vec![
            Value::from("bar"),
            Value::Binary(Bytes::from_static(&[1, 2, 3, 4]))
        ]
    );

    // From the spec's sample session (without the Engine.IO `4`).
    let p = decode_msgs(vec![
        text(r#"61-/admin,1[{"_placeholder":true,"num":0}]"#),
        bin(b"data"),
    ])
    .unwrap();
    assert_eq!(p.nsp, "/admin");
    assert_eq!(ack_of(&p).0, 1);

    // Placeholders nested anywhere, referenced in any order.
    let p = decode_msgs(vec![
        text(r#"52-["x",{"a":[1,{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]"#),
        bin(b"zero"),
        bin(b"one"),
    ])
    .unwrap();
    assert_eq!(
        event_of(&p).1.to_values().unwrap(),
        vec![
            obj(&[(
                "a",
                Value::Array(vec![
                    Value::from(1u64),
                    Value::Binary(Bytes::from_static(b"one"))
                ])
            )]),
            Value::Binary(Bytes::from_static(b"zero")),
        ]
    );

    // A binary type with no attachments is complete at once.
    let p = decode(r#"50-["x",1]"#).unwrap();
    assert_eq!(event_of(&p).1.len(), 1);
}

#[test]
fn placeholders_in_plain_events_are_plain_objects() {
    let p = decode(r#"2["x",{"_placeholder":true,"num":0}]"#).unwrap();
    assert_eq!(event_of(&p).1.to_values().unwrap(), vec![ph(0)]);
}

#[test]
fn event_name_is_a_slice_of_the_received_text() {
    let message = Str::from(r#"2["hello",1]"#.to_owned());
    let range = message.as_ptr() as usize..message.as_ptr() as usize + message.len();
    let mut decoder = JsonParserDecoder::default();
    let p = JsonParser
        .decode(
            &mut decoder,
            Message::Text(message.clone()),
            &DecodeLimits::default(),
        )
        .unwrap()
        .unwrap();
    let (name, _, _) = event_of(&p);
    assert!(range.contains(&(name.as_ptr() as usize)));
}

#[test]
fn event_names_with_escapes_and_numbers() {
    assert_eq!(event_of(&decode(r#"2["a\"b\u00e9"]"#).unwrap()).0, "a\"bé");
    assert_eq!(event_of(&decode(r#"2[42,"x"]"#).unwrap()).0, "42");
    assert_eq!(event_of(&decode(r#"2[-3]"#).unwrap()).0, "-3");
    assert_eq!(event_of(&decode(r#"2[1.0]"#).unwrap()).0, "1");
    assert_eq!(event_of(&decode(r#"2[1.5]"#).unwrap()).0, "1.5");
    assert_eq!(event_of(&decode(r#"2/é,["ü"]"#).unwrap()).0, "ü");
    assert_eq!(decode(r#"2/é,["ü"]"#).unwrap().nsp, "/é");
    // JSON.parse accepts whitespace around the payload.
    let p = decode("2 [ \"a\" , 1 ]\n").unwrap();
    assert_eq!(
        event_of(&p).1.json_texts().unwrap().collect::<Vec<_>>(),
        vec!["1"]
    );
}

// --- Decoding errors --------------------------------------------------

#[test]
fn rejects_bad_headers() {
    assert_eq!(decode(""), Err(DecodeError::Empty));
    assert_eq!(decode("7"), Err(DecodeError::UnknownType));
    assert_eq!(decode("x"), Err(DecodeError::UnknownType));
    assert_eq!(decode("é"), Err(DecodeError::UnknownType));
    assert_eq!(decode(r#"5-["x"]"#), Err(DecodeError::BadAttachmentCount));
    assert_eq!(decode(r#"51["x"]"#), Err(DecodeError::BadAttachmentCount));
    assert_eq!(decode("51"), Err(DecodeError::BadAttachmentCount));
    assert_eq!(decode("5a-[\"x\"]"), Err(DecodeError::BadAttachmentCount));
    assert_eq!(
        decode(r#"5999999999999999999999-["x"]"#),
        Err(DecodeError::BadAttachmentCount)
    );
    assert_eq!(
        decode(r#"511-["x"]"#),
        Err(DecodeError::TooManyAttachments {
            declared: 11,
            limit: 10
        })
    );
    assert_eq!(
        decode(r#"61000000000-1["x"]"#),
        Err(DecodeError::TooManyAttachments {
            declared: 1_000_000_000,
            limit: 10
        })
    );
    assert_eq!(
        decode(r#"299999999999999999999["x"]"#),
        Err(DecodeError::BadAckId)
    );
    assert_eq!(
        decode(r#"218446744073709551616["x"]"#),
        Err(DecodeError::BadAckId)
    );
    assert_eq!(
        event_of(&decode(r#"218446744073709551615["x"]"#).unwrap()).2,
        Some(u64::MAX)
    );
    assert_eq!(decode(r#"21a["x"]"#), Err(DecodeError::BadAckId));
    assert_eq!(decode(r#"3["x"]"#), Err(DecodeError::BadAckId));
    assert_eq!(decode(r#"3/a,["x"]"#), Err(DecodeError::BadAckId));
    assert_eq!(decode(r#"01{"a":1}"#), Err(DecodeError::BadAckId));
    assert_eq!(decode(r#"2admin,["x"]"#), Err(DecodeError::BadNamespace));
    assert_eq!(decode("0admin,"), Err(DecodeError::BadNamespace));
}

#[test]
fn rejects_bad_payloads() {
    let invalid = |s: &str| matches!(decode(s), Err(DecodeError::InvalidPayload(_)));
    let bad = |s: &str| matches!(decode(s), Err(DecodeError::BadPayload(_)));
    assert!(invalid("2"));
    assert!(invalid("2[]"));
    assert!(invalid("2{}"));
    assert!(invalid(r#"2"x""#));
    assert!(invalid("2[true]"));
    assert!(invalid("2[null]"));
    assert!(invalid(r#"2[["x"]]"#));
    assert!(invalid(r#"2[{"a":1}]"#));
    assert!(invalid("3/a,1{}"));
    assert!(invalid("0[]"));
    assert!(invalid(r#"0"x""#));
    assert!(invalid("0null"));
    assert!(invalid("1{}"));
    assert!(invalid("4"));
    assert!(invalid("4[]"));
    assert_eq!(decode("45"), Err(DecodeError::BadAckId));
    assert!(bad(r#"2["x""#));
    assert!(bad(r#"2["x"]x"#));
    // After the event name, arguments are checked by `Args`.
    for s in [
        r#"2["x",]"#,
        r#"2["x",01]"#,
        r#"2["x",{"a"}]"#,
        r#"2["x",1"#,
        r#"2["x",1]x"#,
        r#"2["x",1,]"#,
        r#"2["x","\ud83d"]"#,
        "2[\"x\",\"a\u{1}\"]",
        r#"3/a,1[1,]"#,
        r#"31[1"#,
        r#"31[}"#,
    ] {
        assert_args_rejected(&decode(s).unwrap(), s);
    }
    assert!(bad(r#"2["x"]x"#));
    assert!(bad(r#"2["x" 1]"#));
    assert!(bad(r#"2["x"#));
    assert!(bad(r#"2[01]"#));
    assert!(bad(r#"2[-]"#));
    assert!(bad("2[\"a\u{1}\"]"));
    assert!(bad(r#"2["\x"]"#));
    assert!(bad(r#"2[tru]"#));
    assert!(bad(r#"2[}"#));
    assert!(bad(r#"31[]x"#));
    assert!(bad(r#"31 x"#));
    assert!(invalid(r#"31{}"#));
    assert!(bad(r#"0{"a":}"#));
    assert!(bad("2x"));
    // A lone surrogate: a truncated UTF-16 pair.
    assert!(bad(r#"2["\ud83d"]"#));
    assert!(bad(r#"0{"a":"\ud83d"}"#));
    for reserved in RESERVED_EVENTS {
        assert_eq!(
            decode(&format!(r#"2["{reserved}",1]"#)),
            Err(DecodeError::ReservedEvent)
        );
    }
}

#[test]
fn rejects_deep_nesting_without_overflowing_the_stack() {
    for prefix in ["2", "0", "4", r#"51-["x","#] {
        let deep = format!("{prefix}{}", "[".repeat(100_000));
        assert!(matches!(decode(&deep), Err(DecodeError::BadPayload(_))));
        let closed = format!("{prefix}{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(decode(&closed), Err(DecodeError::BadPayload(_))));
    }
    // Arguments after the event name are checked by `Args`.
    for prefix in ["3/a,1", r#"2["x","#] {
        let deep = format!("{prefix}{}", "[".repeat(100_000));
        assert_args_rejected(&decode(&deep).unwrap(), prefix);
        let closed = format!("{prefix}{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_args_rejected(&decode(&closed).unwrap(), prefix);
    }
    let objects = format!(
        r#"2["x",{}1{}]"#,
        r#"{"a":"#.repeat(100_000),
        "}".repeat(100_000)
    );
    assert_args_rejected(&decode(&objects).unwrap(), "objects");
    // Brackets inside strings do not count.
    let in_string = format!(r#"2["x","{}"]"#, "[".repeat(1000));
    event_of(&decode(&in_string).unwrap()).1.validate().unwrap();
    // Exactly at the limit is accepted, by every way of reading.
    let limits = DecodeLimits::default();
    let nested = |depth: usize, inner: &str| {
        format!(
            r#"2["x",{}{inner}{}]"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let at_limit = decode(&nested(limits.max_depth - 1, "")).unwrap();
    let args = event_of(&at_limit).1;
    args.validate().unwrap();
    args.deserialize::<Value>().unwrap();
    args.deserialize::<()>().unwrap();
    args.deserialize::<(Value, u8)>().unwrap_err(); // only a type mismatch
    assert_eq!(args.len(), 1);
    let over = decode(&nested(limits.max_depth, "")).unwrap();
    assert_args_rejected(&over, "over");
    // Objects, enums and ignored values count too.
    let at_limit = decode(&nested(limits.max_depth - 2, r#"{"a":1}"#)).unwrap();
    event_of(&at_limit).1.deserialize::<Value>().unwrap();
    let over = decode(&nested(limits.max_depth - 1, r#"{"a":1}"#)).unwrap();
    assert_args_rejected(&over, "over with an object");
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    enum E {
        V(Vec<Value>),
    }
    let over = decode(&nested(limits.max_depth - 2, r#"{"V":[]}"#)).unwrap();
    assert!(event_of(&over).1.deserialize::<Vec<Vec<E>>>().is_err());
    let over = decode(&format!(
        r#"2["x",{{"a":1,"b":{}{}}}]"#,
        "[".repeat(limits.max_depth),
        "]".repeat(limits.max_depth)
    ))
    .unwrap();
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct OnlyA {
        a: u8,
    }
    assert!(event_of(&over).1.deserialize::<OnlyA>().is_err());
    // Even with no configured depth limit, serde_json's recursion limit
    // bounds what gets parsed recursively.
    let unlimited = DecodeLimits {
        max_depth: usize::MAX,
        ..DecodeLimits::default()
    };
    let mut decoder = JsonParserDecoder::default();
    for deep in [
        format!("0{}", "[".repeat(100_000)),
        format!(r#"51-["x",{}{}]"#, "[".repeat(100_000), "]".repeat(100_000)),
    ] {
        assert!(JsonParser
            .decode(&mut decoder, text(&deep), &unlimited)
            .is_err());
    }
    let deep_args = format!(r#"2["x",{}{}]"#, "[".repeat(100_000), "]".repeat(100_000));
    let packet = JsonParser
        .decode(&mut decoder, text(&deep_args), &unlimited)
        .unwrap()
        .unwrap();
    assert_args_rejected(&packet, "unlimited");
}

#[test]
fn rejects_bad_placeholders() {
    for s in [
        r#"51-["x",{"_placeholder":true,"num":1}]"#,
        r#"51-["x",{"_placeholder":true,"num":"0"}]"#,
        r#"51-["x",{"_placeholder":true,"num":-1}]"#,
        r#"51-["x",{"_placeholder":true,"num":0.5}]"#,
        r#"51-["x",{"_placeholder":true}]"#,
        r#"51-["x",[{"a":{"_placeholder":true,"num":7}}]]"#,
        r#"50-["x",{"_placeholder":true,"num":0}]"#,
        r#"61-1[{"num":3,"_placeholder":true}]"#,
    ] {
        assert_eq!(decode(s), Err(DecodeError::BadPlaceholder), "{s}");
    }
    // `_placeholder` other than `true` makes a plain object.
    assert!(decode_msgs(vec![
        text(r#"51-["x",{"_placeholder":false,"num":9},{"_placeholder":true,"num":0}]"#),
        bin(b"a"),
    ])
    .is_ok());
}

/// Feed `attachments` after a packet declaring `declared`: the index of
/// the attachment refused and its error, or the completed packet.
/// Checks after every message that what is held stays within the limit.
fn feed_attachments(
    declared: usize,
    attachments: &[Bytes],
    limits: &DecodeLimits,
) -> (
    JsonParserDecoder,
    Result<Option<Packet>, (usize, DecodeError)>,
) {
    let mut decoder = JsonParserDecoder::default();
    assert_eq!(
        JsonParser.decode(
            &mut decoder,
            text(&binary_event_declaring(declared)),
            limits
        ),
        Ok(None)
    );
    for (i, attachment) in attachments.iter().enumerate() {
        let result = JsonParser.decode(&mut decoder, Message::Binary(attachment.clone()), limits);
        assert!(decoder.pending_attachment_bytes() <= limits.max_pending_attachment_bytes);
        match result {
            Ok(None) => {}
            Ok(Some(packet)) => return (decoder, Ok(Some(packet))),
            Err(e) => return (decoder, Err((i, e))),
        }
    }
    (decoder, Ok(None))
}

#[test]
fn pending_attachment_bytes_are_bounded() {
    // The measured attack: 10 declared, 9 of 512 KiB sent, never the
    // 10th. With the default limit the second is refused.
    let chunk = Bytes::from(vec![7u8; 512 * 1024]);
    let nine = vec![chunk.clone(); 9];
    let limits = DecodeLimits::default();
    let (decoder, result) = feed_attachments(10, &nine, &limits);
    assert_eq!(
        result,
        Err((
            1,
            DecodeError::TooManyAttachmentBytes {
                pending: 512 * 1024,
                incoming: 512 * 1024,
                limit: 1_000_000,
            }
        ))
    );
    // The packet is dropped, its attachments released.
    assert!(!decoder.is_awaiting_attachments());
    assert_eq!(decoder.pending_attachment_bytes(), 0);

    // A limit of four and a half chunks refuses the fifth.
    let limits = DecodeLimits {
        max_pending_attachment_bytes: 4 * 512 * 1024 + 512 * 1024 / 2,
        ..DecodeLimits::default()
    };
    let (_, result) = feed_attachments(10, &nine, &limits);
    assert!(matches!(
        result,
        Err((4, DecodeError::TooManyAttachmentBytes { pending, .. })) if pending == 4 * 512 * 1024
    ));

    // One attachment larger than the limit is refused before it is held.
    let (decoder, result) = feed_attachments(
        1,
        &[Bytes::from(vec![0u8; 1_000_001])],
        &DecodeLimits::default(),
    );
    assert!(matches!(
        result,
        Err((
            0,
            DecodeError::TooManyAttachmentBytes {
                pending: 0,
                incoming: 1_000_001,
                ..
            }
        ))
    ));
    assert_eq!(decoder.pending_attachment_bytes(), 0);
    let message = result.unwrap_err().1.to_string();
    assert!(
        message.contains("1000001") && message.contains("1000000"),
        "{message}"
    );
}

#[test]
fn attachments_up_to_the_limit_complete() {
    let limits = DecodeLimits {
        max_pending_attachment_bytes: 10 * 1024,
        ..DecodeLimits::default()
    };
    let chunk = Bytes::from(vec![1u8; 1024]);
    // Exactly at the limit, and one byte under it.
    let under = [vec![chunk.clone(); 9], vec![Bytes::from(vec![2u8; 1023])]].concat();
    for attachments in [vec![chunk.clone(); 10], under] {
        let (decoder, result) = feed_attachments(10, &attachments, &limits);
        let packet = result.unwrap().expect("complete");
        assert_eq!(event_of(&packet).1.len(), 10);
        assert_eq!(decoder.pending_attachment_bytes(), 0);
    }
    // One byte over, on the last attachment.
    let over = [vec![chunk.clone(); 9], vec![Bytes::from(vec![2u8; 1025])]].concat();
    let (_, result) = feed_attachments(10, &over, &limits);
    assert!(matches!(
        result,
        Err((9, DecodeError::TooManyAttachmentBytes { .. }))
    ));
    // The count starts over with the next packet.
    let mut decoder = JsonParserDecoder::default();
    for _ in 0..3 {
        assert_eq!(
            JsonParser.decode(&mut decoder, text(&binary_event_declaring(10)), &limits),
            Ok(None)
        );
        let mut last = None;
        for _ in 0..10 {
            last = JsonParser
                .decode(&mut decoder, Message::Binary(chunk.clone()), &limits)
                .unwrap();
        }
        assert!(last.is_some());
    }
}

#[test]
fn unexpected_messages_reset_the_decoder() {
    let limits = DecodeLimits::default();
    let mut decoder = JsonParserDecoder::default();
    assert_eq!(
        JsonParser.decode(&mut decoder, bin(b"x"), &limits),
        Err(DecodeError::UnexpectedMessage)
    );

    let binary_event = r#"52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
    assert_eq!(
        JsonParser.decode(&mut decoder, text(binary_event), &limits),
        Ok(None)
    );
    assert!(decoder.is_awaiting_attachments());
    assert_eq!(
        JsonParser.decode(&mut decoder, bin(b"a"), &limits),
        Ok(None)
    );
    assert_eq!(
        JsonParser.decode(&mut decoder, text(r#"2["y"]"#), &limits),
        Err(DecodeError::UnexpectedMessage)
    );
    assert!(!decoder.is_awaiting_attachments());
    // The decoder starts over cleanly.
    let p = JsonParser
        .decode(&mut decoder, text(r#"2["y"]"#), &limits)
        .unwrap()
        .unwrap();
    assert_eq!(event_of(&p).0, "y");
    assert_eq!(
        JsonParser.decode(&mut decoder, bin(b"late"), &limits),
        Err(DecodeError::UnexpectedMessage)
    );
    // And completes a binary packet after all.
    assert_eq!(
        JsonParser.decode(&mut decoder, text(binary_event), &limits),
        Ok(None)
    );
    assert_eq!(
        JsonParser.decode(&mut decoder, bin(b"a"), &limits),
        Ok(None)
    );
    assert!(JsonParser
        .decode(&mut decoder, bin(b"b"), &limits)
        .unwrap()
        .is_some());
    assert!(!decoder.is_awaiting_attachments());
}

// --- Args over decoded JSON ------------------------------------------

#[test]
fn args_deserialize_by_target_shape() {
    let p = decode(r#"2["e",1,"two",[3,4]]"#).unwrap();
    let args = event_of(&p).1;
    assert_eq!(
        args.deserialize::<(u32, String, Vec<u8>)>().unwrap(),
        (1, "two".to_owned(), vec![3, 4])
    );
    // Extra arguments are ignored, missing ones read as null.
    assert_eq!(args.deserialize::<(u32,)>().unwrap(), (1,));
    assert_eq!(
        args.deserialize::<(u32, String, Vec<u8>, Option<bool>)>()
            .unwrap(),
        (1, "two".to_owned(), vec![3, 4], None)
    );
    assert!(args.deserialize::<(u32, String, Vec<u8>, bool)>().is_err());
    assert!(args.deserialize::<(String,)>().is_err());
    // Any other type takes the first argument.
    assert_eq!(args.deserialize::<u32>().unwrap(), 1);
    assert_eq!(args.deserialize::<Option<u32>>().unwrap(), Some(1));
    assert_eq!(args.deserialize::<Value>().unwrap(), Value::from(1u64));
    args.deserialize::<()>().unwrap();
    assert_eq!(args.get::<String>(1).unwrap(), "two");
    assert_eq!(args.get::<Vec<u8>>(2).unwrap(), vec![3, 4]);
    assert!(args.get::<u8>(3).is_err());

    let p = decode(r#"2["e"]"#).unwrap();
    let none = event_of(&p).1;
    assert_eq!(none.deserialize::<Option<u32>>().unwrap(), None);
    none.deserialize::<()>().unwrap();
    assert!(none.deserialize::<u32>().is_err());
    assert_eq!(none.deserialize::<(Option<u8>,)>().unwrap(), (None,));

    // A tuple struct or a Vec is one argument, as on the way out.
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Pair(u8, u8);
    let p = decode(r#"2["e",[1,2],9]"#).unwrap();
    let args = event_of(&p).1;
    assert_eq!(args.deserialize::<Pair>().unwrap(), Pair(1, 2));
    assert_eq!(args.deserialize::<Vec<u8>>().unwrap(), vec![1, 2]);
    assert_eq!(args.deserialize::<((u8, u8), u8)>().unwrap(), ((1, 2), 9));

    // Borrowing a string from the JSON is not possible for an owned
    // target, but escapes decode.
    let p = decode(r#"3/a,1["a\nb"]"#).unwrap();
    assert_eq!(ack_of(&p).1.deserialize::<String>().unwrap(), "a\nb");
}

#[test]
fn args_deserialize_binary_through_values() {
    let p = decode_msgs(vec![
        text(r#"51-["e","hi",{"_placeholder":true,"num":0}]"#),
        bin(b"raw"),
    ])
    .unwrap();
    let args = event_of(&p).1;
    let (s, b): (String, Bytes) = args.deserialize().unwrap();
    assert_eq!((s.as_str(), &b[..]), ("hi", &b"raw"[..]));
    assert_eq!(args.get::<Bytes>(1).unwrap(), Bytes::from_static(b"raw"));
    assert_eq!(args.deserialize::<String>().unwrap(), "hi");
    // `Binary` is the received attachment itself.
    let (_, b): (String, crate::Binary) = args.deserialize().unwrap();
    assert_eq!(b.as_ptr(), args.attachments()[0].as_ptr());
    let b: crate::Binary = args.get(1).unwrap();
    assert_eq!(b.as_ptr(), args.attachments()[0].as_ptr());
}

#[test]
fn received_args_spread_again_when_reemitted() {
    let p = decode(r#"2/a,["e",1,"a",{"k":[true,null]}]"#).unwrap();
    let args = event_of(&p).1;
    assert_eq!(
        encoded(OutPacket::Event {
            nsp: "/b",
            event: "f",
            args,
            ack: Some(2)
        }),
        r#"2/b,2["f",1,"a",{"k":[true,null]}]"#
    );
    assert_eq!(
        encoded(OutPacket::Ack {
            nsp: "/",
            id: 1,
            args
        }),
        r#"31[1,"a",{"k":[true,null]}]"#
    );

    let message = r#"52-["e",{"_placeholder":true,"num":1},[{"_placeholder":true,"num":0}]]"#;
    let p = decode_msgs(vec![text(message), bin(b"zero"), bin(b"one")]).unwrap();
    let args = event_of(&p).1;
    let out = encode(OutPacket::Event {
        nsp: "/",
        event: "e",
        args,
        ack: None,
    })
    .unwrap();
    // Placeholders are renumbered in document order.
    assert_eq!(
        text_of(&out),
        r#"52-["e",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]"#
    );
    assert_eq!(
        out.attachments,
        vec![Bytes::from_static(b"one"), Bytes::from_static(b"zero")]
    );
    let empty = Args::empty();
    assert_eq!(
        encoded(OutPacket::Event {
            nsp: "/",
            event: "e",
            args: &empty,
            ack: None
        }),
        r#"2["e"]"#
    );
    let values = Args::from_values(vec![Value::from(1u64), Value::from("x")]);
    assert_eq!(
        encoded(OutPacket::Event {
            nsp: "/",
            event: "e",
            args: &values,
            ack: None
        }),
        r#"2["e",1,"x"]"#
    );
}

#[test]
fn number_formats_follow_json_stringify() {
    assert_eq!(
        encoded(OutPacket::Event {
            nsp: "/",
            event: "n",
            args: &(
                0u8,
                -1i64,
                u64::MAX,
                1.5f64,
                Value::Number(Number::NegInt(-7))
            ),
            ack: None
        }),
        r#"2["n",0,-1,18446744073709551615,1.5,-7]"#
    );
    // Strings escape like JSON.stringify.
    assert_eq!(
        encoded(OutPacket::Event {
            nsp: "/",
            event: "s",
            args: &"\"\\\n\u{1}é",
            ack: None
        }),
        "2[\"s\",\"\\\"\\\\\\n\\u0001é\"]"
    );
}

#[test]
fn floats_follow_json_stringify() {
    let cases: &[(f64, &str)] = &[
        (4.0, "4"),
        (-0.0, "0"),
        (-3.0, "-3"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (123.456, "123.456"),
        (1e-5, "0.00001"),
        (1.5e-6, "0.0000015"),
        (-1e-6, "-0.000001"),
        (9.99e-7, "9.99e-7"),
        (1.5e-7, "1.5e-7"),
        (5e-324, "5e-324"),
        (9007199254740991.0, "9007199254740991"),
        (1e16, "10000000000000000"),
        (1152921504606846976.0, "1152921504606847000"),
        (-1.2345678901234568e20, "-123456789012345680000"),
        (1e21, "1e+21"),
        (1.5e22, "1.5e+22"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::NAN, "null"),
        (f64::INFINITY, "null"),
    ];
    for &(v, js) in cases {
        assert_eq!(
            encoded(OutPacket::Ack {
                nsp: "/",
                id: 0,
                args: &(v, Value::Number(Number::Float(v)))
            }),
            format!("30[{js},{js}]"),
            "{v:e}"
        );
        if v.is_finite() {
            assert_eq!(js_number_text(v), js);
        }
    }
    assert_eq!(
        encoded(OutPacket::Ack {
            nsp: "/",
            id: 0,
            args: &(4.0f32, 0.1f32, -2.5f32)
        }),
        "30[4,0.1,-2.5]"
    );
    // Float-looking event names become JavaScript's text for them.
    assert_eq!(event_of(&decode("2[1e21]").unwrap()).0, "1e+21");
    assert_eq!(event_of(&decode("2[1e16]").unwrap()).0, "10000000000000000");
}

// --- Round trips ------------------------------------------------------

/// What a value becomes once written as JavaScript would and read back:
/// integral floats come back as integers when they fit.
fn js_normalized(value: &Value) -> Value {
    match value {
        Value::Number(Number::Float(f)) => serde_json::from_str(&js_number_text(*f)).unwrap(),
        Value::Array(items) => Value::Array(items.iter().map(js_normalized).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), js_normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn value_strategy(binary: bool) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Value::Number(Number::Float(f))),
        ".{0,8}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(move |b| {
            if binary {
                Value::Binary(Bytes::from(b))
            } else {
                Value::Null
            }
        }),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-z]{0,3}", inner), 0..4).prop_map(Value::Object),
        ]
    })
}

fn object_strategy() -> impl Strategy<Value = Value> {
    proptest::collection::vec(("[a-z]{0,3}", value_strategy(false)), 0..4).prop_map(Value::Object)
}

fn nsp_strategy() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_owned()), "/[^,]{0,8}"]
}

fn event_name_strategy() -> impl Strategy<Value = String> {
    ".{0,10}".prop_filter("not reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()))
}

/// Feed an encoded packet back through a decoder.
fn round_trip(out: &Encoded) -> Packet {
    let mut decoder = JsonParserDecoder::default();
    let limits = DecodeLimits::default();
    let first = Message::Text(Str::from(text_of(out).to_owned()));
    let mut result = JsonParser.decode(&mut decoder, first, &limits).unwrap();
    for attachment in &out.attachments {
        assert!(result.is_none());
        result = JsonParser
            .decode(&mut decoder, Message::Binary(attachment.clone()), &limits)
            .unwrap();
    }
    result.expect("complete")
}

proptest! {
    #[test]
    fn connect_round_trips(nsp in nsp_strategy(), data in proptest::option::of(object_strategy())) {
        let out = encode(OutPacket::Connect { nsp: &nsp, data: data.as_ref() }).unwrap();
        let p = round_trip(&out);
        prop_assert_eq!(p, Packet { nsp: Str::from(nsp), data: PacketData::Connect(data.as_ref().map(js_normalized)) });
    }

    #[test]
    fn disconnect_round_trips(nsp in nsp_strategy()) {
        let out = encode::<()>(OutPacket::Disconnect { nsp: &nsp }).unwrap();
        prop_assert_eq!(round_trip(&out), Packet { nsp: Str::from(nsp), data: PacketData::Disconnect });
    }

    #[test]
    fn connect_error_round_trips(
        nsp in nsp_strategy(),
        data in prop_oneof![object_strategy(), ".{0,10}".prop_map(Value::String)],
    ) {
        let out = encode(OutPacket::ConnectError { nsp: &nsp, data: &data }).unwrap();
        prop_assert_eq!(round_trip(&out), Packet { nsp: Str::from(nsp), data: PacketData::ConnectError(js_normalized(&data)) });
    }

    #[test]
    fn event_round_trips(
        nsp in nsp_strategy(),
        name in event_name_strategy(),
        values in proptest::collection::vec(value_strategy(true), 0..5),
        ack in proptest::option::of(any::<u64>()),
    ) {
        let args = Args::from_values(values.clone());
        let out = encode(OutPacket::Event { nsp: &nsp, event: &name, args: &args, ack }).unwrap();
        let binary = values.iter().any(Value::has_binary);
        prop_assert_eq!(out.data[0], if binary { b'5' } else { b'2' });
        prop_assert_eq!(binary, !out.attachments.is_empty());
        let p = round_trip(&out);
        prop_assert_eq!(&*p.nsp, nsp.as_str());
        let (got_name, got_args, got_ack) = event_of(&p);
        prop_assert_eq!(got_name, name.as_str());
        prop_assert_eq!(got_ack, ack);
        prop_assert_eq!(got_args.to_values().unwrap(), values.iter().map(js_normalized).collect::<Vec<_>>());
        // Re-encoding the received arguments gives the same bytes.
        let again = encode(OutPacket::Event { nsp: &nsp, event: &name, args: got_args, ack }).unwrap();
        prop_assert_eq!(&again.data, &out.data);
        prop_assert_eq!(&again.attachments, &out.attachments);
    }

    #[test]
    fn ack_round_trips(
        nsp in nsp_strategy(),
        id in any::<u64>(),
        values in proptest::collection::vec(value_strategy(true), 0..5),
    ) {
        let args = Args::from_values(values.clone());
        let out = encode(OutPacket::Ack { nsp: &nsp, id, args: &args }).unwrap();
        let p = round_trip(&out);
        prop_assert_eq!(&*p.nsp, nsp.as_str());
        let (got_id, got_args) = ack_of(&p);
        prop_assert_eq!(got_id, id);
        prop_assert_eq!(got_args.to_values().unwrap(), values.iter().map(js_normalized).collect::<Vec<_>>());
    }

    #[test]
    fn decoding_arbitrary_text_never_panics(s in "[0-6/,\\-\\[\\]{}\":a-z0-9 ]{0,40}") {
        let mut decoder = JsonParserDecoder::default();
        let _ = JsonParser.decode(&mut decoder, text(&s), &DecodeLimits::default());
        let _ = JsonParser.decode(&mut decoder, bin(b"x"), &DecodeLimits::default());
    }

    #[test]
    fn decoding_mutated_packets_never_panics(
        values in proptest::collection::vec(value_strategy(true), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let args = Args::from_values(values);
        let out = encode(OutPacket::Event { nsp: "/x", event: "e", args: &args, ack: Some(1) }).unwrap();
        let s = text_of(&out);
        let mut at = cut.index(s.len() + 1);
        while !s.is_char_boundary(at) { at -= 1; }
        let mut decoder = JsonParserDecoder::default();
        let limits = DecodeLimits::default();
        if let Ok(None) = JsonParser.decode(&mut decoder, text(&s[..at]), &limits) {
            for a in &out.attachments {
                let _ = JsonParser.decode(&mut decoder, Message::Binary(a.clone()), &limits);
            }
        }
    }
}
