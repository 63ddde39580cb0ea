use proptest::prelude::*;
use serde::Serialize;

use super::*;
use crate::parser::args::Repr;
use crate::parser::{Args, PacketData};
use crate::value::tests::arb_value;
use crate::value::Value;
use crate::Str;

/// The values of decoded arguments (`Args`' own accessors are
/// implemented elsewhere).
pub(in crate::parser) fn arg_values(args: &Args) -> &[Value] {
    match &args.0 {
        Repr::Values(v) => v,
        Repr::Json { .. } | Repr::MsgPack(_) => panic!("values expected"),
    }
}

/// The values of arguments decoded from MessagePack.
fn mp_values(args: &Args) -> Vec<Value> {
    match &args.0 {
        Repr::MsgPack(a) => a.to_values().unwrap(),
        _ => panic!("MessagePack arguments expected"),
    }
}

pub(in crate::parser) fn obj(entries: &[(&str, Value)]) -> Value {
    Value::Object(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn encode<A: Serialize + ?Sized>(packet: &OutPacket<'_, A>) -> Vec<u8> {
    let mut out = Encoded::default();
    MsgPackParser.encode(packet, &mut out).unwrap();
    assert!(out.binary);
    assert!(out.attachments.is_empty());
    out.data.to_vec()
}

fn encode_err<A: Serialize + ?Sized>(packet: &OutPacket<'_, A>) -> EncodeError {
    let mut out = Encoded::default();
    let err = MsgPackParser.encode(packet, &mut out).unwrap_err();
    assert!(out.data.is_empty());
    err
}

fn decode(bytes: &[u8]) -> Result<Packet, DecodeError> {
    decode_with(bytes, &DecodeLimits::default())
}

fn decode_with(bytes: &[u8], limits: &DecodeLimits) -> Result<Packet, DecodeError> {
    let message = Message::Binary(Bytes::copy_from_slice(bytes));
    MsgPackParser
        .decode(&mut MsgPackParserDecoder::default(), message, limits)
        .map(|p| p.expect("one message is one packet"))
}

/// `{"type": 2, "nsp": "/", "data": ["hello", 1]}` as notepack writes it.
const HELLO: &[u8] = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa5hello\x01";

#[test]
fn event_vector() {
    let bytes = encode(&OutPacket::Event {
        nsp: "/",
        event: "hello",
        args: &1,
        ack: None,
    });
    assert_eq!(bytes, HELLO);
    let packet = decode(HELLO).unwrap();
    assert_eq!(packet.nsp, "/");
    let PacketData::Event { name, args, ack } = packet.data else {
        panic!("{packet:?}")
    };
    assert_eq!((name.as_ref(), ack), ("hello", None));
    assert_eq!(mp_values(&args), [Value::from(1u64)]);
}

#[test]
fn event_with_ack_and_binary() {
    let bytes = encode(&OutPacket::Event {
        nsp: "/chat",
        event: "file",
        args: &(Bytes::from_static(b"\x01\x02"), "x"),
        ack: Some(7),
    });
    assert_eq!(
        bytes,
        b"\x84\xa4type\x02\xa3nsp\xa5/chat\xa4data\x93\xa4file\xc4\x02\x01\x02\xa1x\xa2id\x07"
    );
    let packet = decode(&bytes).unwrap();
    let PacketData::Event { name, args, ack } = packet.data else {
        panic!()
    };
    assert_eq!((name.as_ref(), ack), ("file", Some(7)));
    assert_eq!(
        mp_values(&args),
        [
            Value::Binary(Bytes::from_static(b"\x01\x02")),
            Value::from("x")
        ]
    );
}

#[test]
fn ack_disconnect_connect_vectors() {
    let ack = encode(&OutPacket::Ack {
        nsp: "/",
        id: 300,
        args: &(),
    });
    assert_eq!(
        ack,
        b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x90\xa2id\xcd\x01\x2c"
    );
    let PacketData::Ack { id, args } = decode(&ack).unwrap().data else {
        panic!()
    };
    assert_eq!(id, 300);
    assert!(mp_values(&args).is_empty());

    let disconnect = encode(&OutPacket::Disconnect::<()> { nsp: "/" });
    assert_eq!(disconnect, b"\x82\xa4type\x01\xa3nsp\xa1/");
    assert_eq!(decode(&disconnect).unwrap().data, PacketData::Disconnect);

    let connect = encode(&OutPacket::Connect::<()> {
        nsp: "/",
        data: None,
    });
    assert_eq!(connect, b"\x82\xa4type\x00\xa3nsp\xa1/");
    assert_eq!(decode(&connect).unwrap().data, PacketData::Connect(None));

    #[derive(Serialize)]
    struct Auth<'a> {
        token: &'a str,
    }
    let connect = encode(&OutPacket::Connect {
        nsp: "/admin",
        data: Some(&Auth { token: "abc" }),
    });
    assert_eq!(
        connect,
        b"\x83\xa4type\x00\xa3nsp\xa6/admin\xa4data\x81\xa5token\xa3abc"
    );
    let packet = decode(&connect).unwrap();
    assert_eq!(packet.nsp, "/admin");
    assert_eq!(
        packet.data,
        PacketData::Connect(Some(obj(&[("token", "abc".into())])))
    );

    let refused = encode(&OutPacket::ConnectError {
        nsp: "/",
        data: "nope",
    });
    assert_eq!(
        decode(&refused).unwrap().data,
        PacketData::ConnectError("nope".into())
    );
    let refused = encode(&OutPacket::ConnectError {
        nsp: "/",
        data: &obj(&[("message", "Invalid namespace".into())]),
    });
    assert_eq!(
        decode(&refused).unwrap().data,
        PacketData::ConnectError(obj(&[("message", "Invalid namespace".into())]))
    );
}

#[test]
fn python_and_js_absent_data() {
    // python-socketio: {'type': 0, 'data': None, 'nsp': '/'}.
    let python = b"\x83\xa4type\x00\xa4data\xc0\xa3nsp\xa1/";
    assert_eq!(decode(python).unwrap().data, PacketData::Connect(None));
    let python = b"\x83\xa4type\x01\xa4data\xc0\xa3nsp\xa1/";
    assert_eq!(decode(python).unwrap().data, PacketData::Disconnect);
    // notepack: {type: 0, nsp: "/", data: undefined}.
    let js = b"\x83\xa4type\x00\xa3nsp\xa1/\xa4data\xd4\x00\x00";
    assert_eq!(decode(js).unwrap().data, PacketData::Connect(None));
    // undefined inside arguments is null; id nil is no id.
    let js = b"\x84\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\xd4\x00\x00\xa2id\xc0";
    let PacketData::Event { args, ack, .. } = decode(js).unwrap().data else {
        panic!()
    };
    assert_eq!((mp_values(&args), ack), (vec![Value::Null], None));
}

#[test]
fn notepack_extensions() {
    // An ArrayBuffer (ext 8, type 0), a Date (fixext 8, type 0).
    let js = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x93\xa1e\xc7\x03\x00abc\xd7\x00\x00\x00\x00\x01\x00\x00\x00\x02";
    let PacketData::Event { args, .. } = decode(js).unwrap().data else {
        panic!()
    };
    assert_eq!(
        mp_values(&args),
        [
            Value::Binary(Bytes::from_static(b"abc")),
            Value::from((1i64 << 32) + 2)
        ]
    );
    let other = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\xd4\x05\x00";
    assert!(matches!(decode(other), Err(DecodeError::BadPayload(_))));
}

#[test]
fn binary_is_a_slice_of_the_message() {
    let bytes = encode(&OutPacket::Event {
        nsp: "/",
        event: "e",
        args: &Bytes::from(vec![7u8; 1000]),
        ack: None,
    });
    let message = Bytes::from(bytes);
    let range = message.as_ptr_range();
    let packet = MsgPackParser
        .decode(
            &mut MsgPackParserDecoder::default(),
            Message::Binary(message.clone()),
            &DecodeLimits::default(),
        )
        .unwrap()
        .unwrap();
    let PacketData::Event { args, .. } = packet.data else {
        panic!()
    };
    let Value::Binary(b) = &mp_values(&args)[0] else {
        panic!()
    };
    assert_eq!(b.len(), 1000);
    assert!(range.contains(&b.as_ptr()));
}

#[test]
fn types_5_and_6_numbers_and_unknown_keys() {
    let binary_event = b"\x84\xa4type\x05\xa3nsp\xa1/\xa4data\x91\x2a\xa5extra\xc3";
    let PacketData::Event { name, args, .. } = decode(binary_event).unwrap().data else {
        panic!()
    };
    assert_eq!(name, "42");
    assert!(mp_values(&args).is_empty());
    let float_name =
        b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00";
    let PacketData::Event { name, .. } = decode(float_name).unwrap().data else {
        panic!()
    };
    assert_eq!(name, "1.5");
    let binary_ack = b"\x84\xa4type\x06\xa3nsp\xa1/\xa4data\x91\xc4\x00\xa2id\x00";
    let PacketData::Ack { id, args } = decode(binary_ack).unwrap().data else {
        panic!()
    };
    assert_eq!(id, 0);
    assert_eq!(mp_values(&args), [Value::Binary(Bytes::new())]);
}

#[test]
fn invalid_packets_are_typed_errors() {
    use DecodeError::*;
    let cases: &[(&[u8], DecodeError)] = &[
        (b"\x82\xa4type\x07\xa3nsp\xa1/", UnknownType),
        (b"\x82\xa4type\xa12\xa3nsp\xa1/", UnknownType),
        (b"\x82\xa4type\xff\xa3nsp\xa1/", UnknownType),
        (b"\x81\xa3nsp\xa1/", UnknownType),
        (b"\x81\xa4type\x01", BadNamespace),
        (b"\x82\xa4type\x01\xa3nsp\xa3abc", BadNamespace),
        (b"\x82\xa4type\x01\xa3nsp\x01", BadNamespace),
        (
            b"\x83\xa4type\x00\xa3nsp\xa1/\xa4data\x90",
            InvalidPayload("CONNECT data must be an object"),
        ),
        (
            b"\x83\xa4type\x01\xa3nsp\xa1/\xa4data\x80",
            InvalidPayload("DISCONNECT carries no data"),
        ),
        (
            b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x80",
            InvalidPayload("EVENT data must be an array"),
        ),
        (
            b"\x82\xa4type\x02\xa3nsp\xa1/",
            InvalidPayload("EVENT data must be an array"),
        ),
        (
            b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x90",
            InvalidPayload("EVENT data must not be empty"),
        ),
        (
            b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xc3",
            InvalidPayload("EVENT name must be a string or a number"),
        ),
        (
            b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xaadisconnect",
            ReservedEvent,
        ),
        (
            b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xabnewListener",
            ReservedEvent,
        ),
        (b"\x83\xa4type\x03\xa3nsp\xa1/\xa4data\x90", BadAckId),
        (
            b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x80\xa2id\x01",
            InvalidPayload("ACK data must be an array"),
        ),
        (
            b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x90\xa2id\xff",
            BadAckId,
        ),
        (
            b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x90\xa2id\xa11",
            BadAckId,
        ),
        (
            b"\x84\xa4type\x03\xa3nsp\xa1/\xa4data\x90\xa2id\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00",
            BadAckId,
        ),
        (b"\x83\xa4type\x00\xa3nsp\xa1/\xa2id\x01", BadAckId),
        (
            b"\x82\xa4type\x04\xa3nsp\xa1/",
            InvalidPayload("CONNECT_ERROR data must be an object or a string"),
        ),
        (
            b"\x83\xa4type\x04\xa3nsp\xa1/\xa4data\x01",
            InvalidPayload("CONNECT_ERROR data must be an object or a string"),
        ),
        (b"\x92\x02\xa1/", InvalidPayload("packet is not a map")),
    ];
    for (bytes, expected) in cases {
        assert_eq!(decode(bytes).as_ref().err(), Some(expected), "{bytes:x?}");
    }
}

#[test]
fn malformed_messagepack_is_a_typed_error() {
    let bad = |bytes: &[u8]| match decode(bytes) {
        Err(DecodeError::BadPayload(_)) => {}
        other => panic!("{bytes:x?}: {other:?}"),
    };
    // Non-string key in the payload, and at the top.
    bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\x81\x01\x02");
    bad(b"\x83\x01\x02\xa3nsp\xa1/\xa4data\x90");
    // Trailing bytes, the never-used marker, invalid UTF-8.
    bad(b"\x82\xa4type\x01\xa3nsp\xa1/\x00");
    bad(b"\x82\xa4type\x01\xa3nsp\xc1");
    bad(b"\x82\xa4type\x01\xa3nsp\xa2\xc3\x28");
    // Bogus lengths far beyond the message: refused before reserving.
    bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdd\xff\xff\xff\xff");
    bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\xdf\xff\xff\xff\xff");
    bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xc6\xff\xff\xff\xff");
    bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xdb\xff\xff\xff\xff");
    bad(b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xc9\xff\xff\xff\xff\x00");
    bad(b"\xdf\xff\xff\xff\xff");
    assert_eq!(decode(b""), Err(DecodeError::Empty));
    let text = MsgPackParser.decode(
        &mut MsgPackParserDecoder::default(),
        Message::Text(Str::from("2[\"e\"]")),
        &DecodeLimits::default(),
    );
    assert_eq!(text, Err(DecodeError::UnexpectedMessage));
}

#[test]
fn every_truncation_is_an_error() {
    let full = encode(&OutPacket::Event {
        nsp: "/ns",
        event: "e",
        args: &(
            obj(&[("k", Value::from(-70000i64)), ("f", Value::from(0.5))]),
            Bytes::from_static(b"\x00\xff"),
            u64::MAX,
            "a longer string that needs str8 framing..",
        ),
        ack: Some(1 << 40),
    });
    decode(&full).unwrap();
    for cut in 0..full.len() {
        assert!(decode(&full[..cut]).is_err(), "prefix of {cut} bytes");
    }
}

#[test]
fn nesting_is_bounded_without_recursion() {
    let mut bomb = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e".to_vec();
    bomb.extend(std::iter::repeat(0x91).take(100_000));
    bomb.push(0xc0);
    assert_eq!(
        decode(&bomb),
        Err(DecodeError::BadPayload("nesting too deep".into()))
    );
    // Decoding itself never recurses, whatever the limit. (Dropping such
    // a tree would: `Value`'s drop, like serde_json's, is recursive, which
    // is why the limit must stay modest. Leak it here.)
    let unlimited = DecodeLimits {
        max_depth: usize::MAX,
        ..DecodeLimits::default()
    };
    let deep = decode_with(&bomb, &unlimited).unwrap();
    std::mem::forget(deep);

    // `max_depth` counts the payload's own levels: `data` is level 1.
    let nested = |levels: usize| {
        let mut b = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e".to_vec();
        b.extend(std::iter::repeat(0x91).take(levels - 1));
        b.push(0x01);
        b
    };
    let limits = DecodeLimits {
        max_depth: 4,
        ..DecodeLimits::default()
    };
    assert!(decode_with(&nested(4), &limits).is_ok());
    assert!(decode_with(&nested(5), &limits).is_err());
}

#[test]
fn application_misuse_is_an_encode_error() {
    assert_eq!(
        encode_err(&OutPacket::Disconnect::<()> { nsp: "chat" }),
        EncodeError::BadNamespace
    );
    assert_eq!(
        encode_err(&OutPacket::Event {
            nsp: "/",
            event: "connect",
            args: &(),
            ack: None
        }),
        EncodeError::ReservedEvent
    );
    assert!(matches!(
        encode_err(&OutPacket::Connect {
            nsp: "/",
            data: Some(&[1, 2])
        }),
        EncodeError::InvalidPayload(_)
    ));
    assert!(matches!(
        encode_err(&OutPacket::ConnectError { nsp: "/", data: &3 }),
        EncodeError::InvalidPayload(_)
    ));
    let mut bad_key = std::collections::BTreeMap::new();
    bad_key.insert((1, 2), 3);
    assert!(matches!(
        encode_err(&OutPacket::Event {
            nsp: "/",
            event: "e",
            args: &bad_key,
            ack: None
        }),
        EncodeError::Serialize(_)
    ));
}

/// Maps of unknown length (from `#[serde(flatten)]`) get a canonical
/// header once their size is known.
#[test]
fn unknown_length_maps_are_patched() {
    #[derive(Serialize)]
    struct Outer {
        a: u8,
        #[serde(flatten)]
        rest: std::collections::BTreeMap<String, u8>,
    }
    for extra in [0usize, 3, 20, 70_000] {
        let rest = (0..extra).map(|i| (format!("k{i}"), 1)).collect();
        let args = Outer { a: 1, rest };
        let bytes = encode(&OutPacket::Event {
            nsp: "/",
            event: "e",
            args: &args,
            ack: None,
        });
        let expected = to_value_for_test(&args);
        let header = MsgPack::map_header(extra + 1).unwrap();
        // After the packet head (18 bytes), the array header and "e".
        let at = 18 + 1 + 2;
        assert_eq!(&bytes[at..at + header.as_slice().len()], header.as_slice());
        let PacketData::Event { args, .. } =
            decode_with(&bytes, &DecodeLimits::default()).unwrap().data
        else {
            panic!()
        };
        assert_eq!(mp_values(&args), [expected]);
    }
}

fn to_value_for_test<T: Serialize>(v: &T) -> Value {
    crate::value::to_value(v).unwrap()
}

/// Our encoding of `[event, value]` read by rmp-serde, and rmp-serde's
/// encoding of a packet read by us.
fn cross_check(value: Value) -> Result<(), TestCaseError> {
    let bytes = encode(&OutPacket::Event {
        nsp: "/",
        event: "ev",
        args: &value,
        ack: Some(3),
    });
    let packet = obj(&[
        ("type", 2u64.into()),
        ("nsp", "/".into()),
        ("data", Value::Array(vec!["ev".into(), value.clone()])),
        ("id", 3u64.into()),
    ]);
    let theirs: Value = rmp_serde::from_slice(&bytes).unwrap();
    prop_assert_eq!(&theirs, &packet);
    let PacketData::Event { name, args, ack } = decode(&bytes).unwrap().data else {
        panic!()
    };
    prop_assert_eq!((name.as_ref(), ack), ("ev", Some(3)));
    prop_assert_eq!(mp_values(&args), [value.clone()]);

    let theirs = rmp_serde::to_vec(&packet).unwrap();
    let PacketData::Event { args, .. } = decode(&theirs).unwrap().data else {
        panic!()
    };
    prop_assert_eq!(mp_values(&args), [value]);
    Ok(())
}

#[test]
fn numbers_at_every_width() {
    for n in [
        0u64,
        127,
        128,
        255,
        256,
        65535,
        65536,
        u32::MAX as u64,
        u32::MAX as u64 + 1,
        u64::MAX,
    ] {
        cross_check(Value::from(n)).unwrap();
    }
    for n in [
        -1i64,
        -32,
        -33,
        -128,
        -129,
        -32768,
        -32769,
        i32::MIN as i64,
        i32::MIN as i64 - 1,
        i64::MIN,
    ] {
        cross_check(Value::from(n)).unwrap();
    }
    for len in [0usize, 31, 32, 255, 256, 65535, 65536] {
        cross_check(Value::String("x".repeat(len))).unwrap();
        cross_check(Value::Binary(Bytes::from(vec![1; len]))).unwrap();
        cross_check(Value::Array(vec![Value::Null; len.min(70_000)])).unwrap();
    }
    cross_check(Value::from(f64::INFINITY)).unwrap();
    let f32_bytes = encode(&OutPacket::Event {
        nsp: "/",
        event: "e",
        args: &0.5f32,
        ack: None,
    });
    assert!(f32_bytes.ends_with(b"\xca\x3f\x00\x00\x00"));
    let PacketData::Event { args, .. } = decode(&f32_bytes).unwrap().data else {
        panic!()
    };
    assert_eq!(mp_values(&args), [Value::from(0.5)]);
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct Upload {
    name: String,
    #[serde(default)]
    parts: Vec<Part>,
    note: Option<String>,
    kind: Kind,
    blob: crate::Binary,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
struct Part {
    index: u32,
    body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
enum Kind {
    Plain,
    Sized(u64),
    Pair(i8, String),
    Shaped { w: f32, h: f32 },
}

fn event_args<A: Serialize + ?Sized>(args: &A) -> (Bytes, Args) {
    let bytes = Bytes::from(encode(&OutPacket::Event {
        nsp: "/",
        event: "e",
        args,
        ack: None,
    }));
    let packet = MsgPackParser
        .decode(
            &mut MsgPackParserDecoder::default(),
            Message::Binary(bytes.clone()),
            &DecodeLimits::default(),
        )
        .unwrap()
        .unwrap();
    let PacketData::Event { args, .. } = packet.data else {
        panic!()
    };
    (bytes, args)
}

/// Typed arguments read straight from the bytes match what `from_value`
/// gives on the decoded values, binary included, without copies.
#[test]
fn typed_arguments_from_the_bytes() {
    let uploads: Vec<Upload> = [
        Kind::Plain,
        Kind::Sized(7),
        Kind::Pair(-3, "x".into()),
        Kind::Shaped { w: 1.5, h: 2.0 },
    ]
    .into_iter()
    .map(|kind| Upload {
        name: "file".into(),
        parts: vec![Part {
            index: 1,
            body: Bytes::from_static(b"abc"),
        }],
        note: None,
        kind,
        blob: crate::Binary(Bytes::from(vec![9u8; 300])),
    })
    .collect();
    for upload in &uploads {
        let (bytes, args) = event_args(&(upload, 5u8, "tail"));
        assert_eq!(args.len(), 3);
        let got: Upload = args.deserialize().unwrap();
        assert_eq!(&got, upload);
        assert!(bytes.as_ptr_range().contains(&got.blob.as_ptr()));
        let (got, n, s, missing): (Upload, u8, String, Option<u8>) = args.deserialize().unwrap();
        assert_eq!((&got, n, s.as_str(), missing), (upload, 5, "tail", None));
        assert_eq!(args.get::<String>(2).unwrap(), "tail");
        assert_eq!(args.get::<Upload>(0).unwrap(), *upload);
        assert!(args.get::<u8>(3).is_err());
        assert!(args.deserialize::<(String,)>().is_err());
        let values: Value = args.get(0).unwrap();
        assert_eq!(values, mp_values(&args)[0]);
        let Some(Value::Binary(blob)) = values.get("blob") else {
            panic!()
        };
        assert!(bytes.as_ptr_range().contains(&blob.as_ptr()));
        args.deserialize::<()>().unwrap();
        assert_eq!(
            args.deserialize::<Option<Upload>>().unwrap().as_ref(),
            Some(upload)
        );
        // Re-serializing spreads the same arguments again.
        let again = serde_json::to_value(&args).unwrap();
        assert_eq!(again.as_array().map(Vec::len), Some(3));
    }
    // Integral floats fit integers; undefined is None; binary reads as
    // a `Vec<u8>`.
    let js = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x94\xa1e\xcb\x40\x00\x00\x00\x00\x00\x00\x00\xd4\x00\x00\xc4\x02\x01\x02";
    let PacketData::Event { args, .. } = decode(js).unwrap().data else {
        panic!()
    };
    let typed: (u8, Option<u8>, Vec<u8>) = args.deserialize().unwrap();
    assert_eq!(typed, (2, None, vec![1, 2]));
    assert!(args.deserialize::<(u8, u8)>().is_err());
    let empty = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x91\xa1e";
    let PacketData::Event { args, .. } = decode(empty).unwrap().data else {
        panic!()
    };
    assert_eq!(args.deserialize::<Option<u8>>().unwrap(), None);
    assert_eq!(args.len(), 0);
}

proptest! {
    #[test]
    fn round_trips_and_matches_rmp_serde(value in arb_value()) {
        cross_check(value)?;
    }

    #[test]
    fn typed_values_match_from_value(value in arb_value()) {
        let (_, args) = event_args(&(&value, 1u8));
        let expected = mp_values(&args);
        let typed: (Value, u8) = args.deserialize().unwrap();
        prop_assert_eq!(&typed.0, &expected[0]);
        prop_assert_eq!(args.get::<Value>(0).unwrap(), value);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn mutated_packets_never_panic(
        value in arb_value(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode(&OutPacket::Event { nsp: "/", event: "e", args: &(&value, 1u8), ack: None });
        for (at, byte) in flips {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        // What decodes reads the same lazily, one argument at a time or
        // as a tuple, as the tree builder reads it.
        if let Ok(Packet { data: PacketData::Event { args, .. } | PacketData::Ack { args, .. }, .. }) = decode(&bytes) {
            let values = mp_values(&args);
            prop_assert_eq!(values.len(), args.len());
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(&args.get::<Value>(i).unwrap(), v);
            }
            if values.len() == 2 {
                let pair: (Value, Value) = args.deserialize().unwrap();
                prop_assert_eq!(&[pair.0, pair.1][..], &values[..]);
            }
        }
    }
}
