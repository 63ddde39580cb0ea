//! Golden bytes come from python-socketio 5.18.1 itself: a `PubSubManager`
//! whose `_publish` printed `json.dumps(message)`, host id fixed.

use super::*;
use crate::value::Number;

const HOST: &str = "0123456789abcdef0123456789abcdef";
const OTHER_HOST: &str = "fedcba9876543210fedcba9876543210";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn args(text: &str) -> Vec<Value> {
    match json(text) {
        Value::Array(items) => items,
        _ => panic!("not an array"),
    }
}

fn emit(event: &str, data: Vec<Value>) -> PyEmit {
    PyEmit {
        event: event.into(),
        data,
        namespace: "/".into(),
        room: Rooms::Unset,
        skip_sid: Rooms::Unset,
        callback: None,
        host_id: Some(HOST.into()),
    }
}

fn limits() -> BusLimits {
    BusLimits::default()
}

/// `message` encodes to `golden` exactly, and `golden` decodes to `message`.
fn check_golden(message: PyMessage, golden: &str) {
    let encoded = encode(&message).unwrap();
    assert_eq!(std::str::from_utf8(&encoded).unwrap(), golden);
    assert_eq!(decode(golden.as_bytes(), &limits()).unwrap(), message);
}

fn decode_err(text: &str) -> String {
    match decode(text.as_bytes(), &limits()) {
        Err(PyDecodeError::Invalid(BusDecodeError(reason))) => reason,
        other => panic!("expected an invalid message, got {other:?}"),
    }
}

#[test]
fn golden_emit_simple() {
    check_golden(
        PyMessage::Emit(emit("msg", vec!["hello".into()])),
        r#"{"method": "emit", "event": "msg", "data": ["hello"], "binary": false, "namespace": "/", "room": null, "skip_sid": null, "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_emit_room_lists() {
    let mut e = emit(
        "multi",
        args(r#"[1, -2, "x", null, true, false, [1, [2, {}]], {"k": "v", "n": null}]"#),
    );
    e.namespace = "/chat".into();
    e.room = Rooms::Many(vec!["r1".into(), "r2".into()]);
    e.skip_sid = Rooms::Many(vec!["s1".into(), "s2".into()]);
    check_golden(
        PyMessage::Emit(e),
        r#"{"method": "emit", "event": "multi", "data": [1, -2, "x", null, true, false, [1, [2, {}]], {"k": "v", "n": null}], "binary": false, "namespace": "/chat", "room": ["r1", "r2"], "skip_sid": ["s1", "s2"], "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_emit_room_string() {
    let mut e = emit("one", args(r#"[{"a": 1}]"#));
    e.room = Rooms::One("r1".into());
    e.skip_sid = Rooms::One("s1".into());
    check_golden(
        PyMessage::Emit(e),
        r#"{"method": "emit", "event": "one", "data": [{"a": 1}], "binary": false, "namespace": "/", "room": "r1", "skip_sid": "s1", "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_emit_callback() {
    let mut e = emit("ask", vec!["q".into()]);
    e.namespace = "/ns".into();
    e.room = Rooms::One("sid1".into());
    e.callback = Some(PyCallbackRequest {
        sid: "sid1".into(),
        namespace: "/ns".into(),
        id: 1,
    });
    check_golden(
        PyMessage::Emit(e),
        r#"{"method": "emit", "event": "ask", "data": ["q"], "binary": false, "namespace": "/ns", "room": "sid1", "skip_sid": null, "callback": ["sid1", "/ns", 1], "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_emit_unicode() {
    let mut e = emit(
        "unicode",
        vec![
            "é".into(),
            "日本".into(),
            "😀".into(),
            "\u{0}\u{1f}\u{7f}\"\\/\n\t\u{8}\u{c}\r".into(),
            "ключ".into(),
        ],
    );
    e.room = Rooms::One("комната".into());
    check_golden(
        PyMessage::Emit(e),
        r#"{"method": "emit", "event": "unicode", "data": ["\u00e9", "\u65e5\u672c", "\ud83d\ude00", "\u0000\u001f\u007f\"\\/\n\t\b\f\r", "\u043a\u043b\u044e\u0447"], "binary": false, "namespace": "/", "room": "\u043a\u043e\u043c\u043d\u0430\u0442\u0430", "skip_sid": null, "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_emit_numbers() {
    let floats = [
        1.0,
        1e100,
        1e16,
        1e15,
        0.0001,
        1e-05,
        -0.0,
        0.1,
        123.456,
        5e-324,
        1.7976931348623157e308,
        -2.5e-10,
    ];
    let mut data: Vec<Value> = floats.iter().map(|&f| Value::from(f)).collect();
    data.push(Value::Number(Number::PosInt(u64::MAX)));
    data.push(Value::Number(Number::NegInt(i64::MIN)));
    data.push(Value::Number(Number::PosInt(0)));
    check_golden(
        PyMessage::Emit(emit("floats", data)),
        r#"{"method": "emit", "event": "floats", "data": [1.0, 1e+100, 1e+16, 1000000000000000.0, 0.0001, 1e-05, -0.0, 0.1, 123.456, 5e-324, 1.7976931348623157e+308, -2.5e-10, 18446744073709551615, -9223372036854775808, 0], "binary": false, "namespace": "/", "room": null, "skip_sid": null, "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_emit_binary() {
    let bin = |b: &'static [u8]| Value::Binary(Bytes::from_static(b));
    let mut e = emit(
        "bin",
        vec![
            bin(b"\x00\x01\xff"),
            Value::Object(vec![(
                "nested".into(),
                Value::Array(vec![bin(b""), bin(b"hello world")]),
            )]),
            "text".into(),
        ],
    );
    e.room = Rooms::One("r".into());
    check_golden(
        PyMessage::Emit(e),
        r#"{"method": "emit", "event": "bin", "data": [[{"_placeholder": true, "num": 0}, {"nested": [{"_placeholder": true, "num": 1}, {"_placeholder": true, "num": 2}]}, "text"], "AAH/", "", "aGVsbG8gd29ybGQ="], "binary": true, "namespace": "/", "room": "r", "skip_sid": null, "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_emit_none_means_no_arguments() {
    let e = emit("none", vec![Value::Null]);
    assert!(e.delivered_args().is_empty());
    check_golden(
        PyMessage::Emit(e),
        r#"{"method": "emit", "event": "none", "data": [null], "binary": false, "namespace": "/", "room": null, "skip_sid": null, "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_emit_key_order() {
    check_golden(
        PyMessage::Emit(emit(
            "dict_keys",
            args(r#"[{"z": 1, "a": 2, "m": {"é": [true]}}]"#),
        )),
        r#"{"method": "emit", "event": "dict_keys", "data": [{"z": 1, "a": 2, "m": {"\u00e9": [true]}}], "binary": false, "namespace": "/", "room": null, "skip_sid": null, "callback": null, "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_disconnect() {
    check_golden(
        PyMessage::Disconnect {
            sid: "sidX".into(),
            namespace: "/chat".into(),
            host_id: Some(HOST.into()),
        },
        r#"{"method": "disconnect", "sid": "sidX", "namespace": "/chat", "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_room_changes() {
    check_golden(
        PyMessage::EnterRoom {
            sid: "sidA".into(),
            room: "roomA".into(),
            namespace: "/chat".into(),
            host_id: Some(HOST.into()),
        },
        r#"{"method": "enter_room", "sid": "sidA", "room": "roomA", "namespace": "/chat", "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
    check_golden(
        PyMessage::LeaveRoom {
            sid: "sidA".into(),
            room: "roomA".into(),
            namespace: "/".into(),
            host_id: Some(HOST.into()),
        },
        r#"{"method": "leave_room", "sid": "sidA", "room": "roomA", "namespace": "/", "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
    check_golden(
        PyMessage::CloseRoom {
            room: "roomB".into(),
            namespace: "/chat".into(),
            host_id: Some(HOST.into()),
        },
        r#"{"method": "close_room", "room": "roomB", "namespace": "/chat", "host_id": "0123456789abcdef0123456789abcdef"}"#,
    );
}

#[test]
fn golden_callback() {
    check_golden(
        PyMessage::Callback(PyCallback {
            host_id: OTHER_HOST.into(),
            sid: "sid1".into(),
            namespace: "/ns".into(),
            id: 7,
            args: args(r#"["answer", 42, {"x": [1.5]}]"#),
        }),
        r#"{"method": "callback", "host_id": "fedcba9876543210fedcba9876543210", "sid": "sid1", "namespace": "/ns", "id": 7, "args": ["answer", 42, {"x": [1.5]}]}"#,
    );
    check_golden(
        PyMessage::Callback(PyCallback {
            host_id: OTHER_HOST.into(),
            sid: "sid2".into(),
            namespace: "/".into(),
            id: 1,
            args: vec![],
        }),
        r#"{"method": "callback", "host_id": "fedcba9876543210fedcba9876543210", "sid": "sid2", "namespace": "/", "id": 1, "args": []}"#,
    );
}

#[test]
// The tie cases are written as their exact values on purpose.
#[allow(clippy::excessive_precision)]
fn float_repr_matches_python() {
    // (value, python's repr), from python 3.11.
    let cases: &[(f64, &str)] = &[
        (0.0, "0.0"),
        (2.0, "2.0"),
        (-1.5, "-1.5"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (9999999999999998.0, "9999999999999998.0"),
        (0.001, "0.001"),
        (1.5e-5, "1.5e-05"),
        (1.2345e-7, "1.2345e-07"),
        (1e22, "1e+22"),
        (1e-100, "1e-100"),
        (2.2250738585072014e-308, "2.2250738585072014e-308"),
        (0.30000000000000004, "0.30000000000000004"),
        (100.0, "100.0"),
        (1234567.891, "1234567.891"),
        // Ties between two shortest forms: python takes the even digit.
        (-1113178120592002.25, "-1113178120592002.2"),
        (1113178120592002.75, "1113178120592002.8"),
        (4503599627370495.5, "4503599627370495.5"),
        (2.5e-323, "2.5e-323"),
        (f64::NAN, "null"),
        (f64::INFINITY, "null"),
        (f64::NEG_INFINITY, "null"),
    ];
    for &(value, python) in cases {
        let mut out = String::new();
        write_python_float(&mut out, value);
        assert_eq!(out, python, "{value:?}");
    }
}

#[test]
fn host_id_is_uuid4_hex() {
    use rand_chacha::rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let a = new_host_id(&mut rng);
    let b = new_host_id(&mut rng);
    assert_ne!(a, b);
    for id in [a, b] {
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(&id[12..13], "4");
        assert!(matches!(&id[16..17], "8" | "9" | "a" | "b"));
    }
}

#[test]
fn decode_is_lenient_where_python_is() {
    // No optional keys, namespace null, scalar data, an ignored callback.
    let m = decode(
        br#"{"method":"emit","event":"e","data":"x","namespace":null,"callback":[1,2]}"#,
        &limits(),
    )
    .unwrap();
    assert_eq!(
        m,
        PyMessage::Emit(PyEmit {
            host_id: None,
            ..emit("e", vec!["x".into()])
        })
    );
    let m = decode(br#"{"method":"emit","event":"e","data":null}"#, &limits()).unwrap();
    let PyMessage::Emit(e) = m else { panic!() };
    assert!(e.data.is_empty());
    // A repeated key: the last one wins, as in a python dict.
    let m = decode(
        br#"{"method":"close_room","room":"a","room":"b"}"#,
        &limits(),
    )
    .unwrap();
    assert_eq!(
        m,
        PyMessage::CloseRoom {
            room: "b".into(),
            namespace: "/".into(),
            host_id: None
        }
    );
    // Without `binary`, placeholders are plain objects.
    let m = decode(
        br#"{"method":"emit","event":"e","data":[{"_placeholder":true,"num":0}]}"#,
        &limits(),
    )
    .unwrap();
    let PyMessage::Emit(e) = m else { panic!() };
    assert_eq!(e.data, args(r#"[{"_placeholder":true,"num":0}]"#));
    // A falsy marker or a missing num: not a placeholder (python's test).
    let m = decode(
        br#"{"method":"emit","event":"e","binary":true,"data":[[{"_placeholder":false,"num":0},{"_placeholder":true}]]}"#,
        &limits(),
    )
    .unwrap();
    let PyMessage::Emit(e) = m else { panic!() };
    assert_eq!(
        e.data,
        args(r#"[{"_placeholder":false,"num":0},{"_placeholder":true}]"#)
    );
}

#[test]
fn unknown_method_is_its_own_error() {
    assert_eq!(
        decode(br#"{"method":"join","x":1}"#, &limits()),
        Err(PyDecodeError::UnknownMethod("join".into()))
    );
    let as_bus: BusDecodeError = PyDecodeError::UnknownMethod("join".into()).into();
    assert!(as_bus.0.contains("join"));
}

#[test]
fn decode_errors() {
    let cases: &[(&str, &str)] = &[
        ("not json", "not JSON"),
        ("", "not JSON"),
        (r#"{"method":"emit""#, "not JSON"),
        ("[1,2]", "not a JSON object"),
        (r#""method""#, "not a JSON object"),
        (r#"{"event":"e"}"#, "no method"),
        (r#"{"method":null}"#, "no method"),
        (r#"{"method":1}"#, "method is not a string"),
        (r#"{"method":"emit","data":[]}"#, "no event"),
        (
            r#"{"method":"emit","event":1,"data":[]}"#,
            "event is not a string",
        ),
        (r#"{"method":"emit","event":"e"}"#, "emit without data"),
        (
            r#"{"method":"emit","event":"e","data":[],"binary":1}"#,
            "binary is not a boolean",
        ),
        (
            r#"{"method":"emit","event":"e","data":[],"namespace":5}"#,
            "namespace is not a string",
        ),
        (
            r#"{"method":"emit","event":"e","data":[],"room":5}"#,
            "room is not a string or a list",
        ),
        (
            r#"{"method":"emit","event":"e","data":[],"room":["a",1]}"#,
            "room holds a name",
        ),
        (
            r#"{"method":"emit","event":"e","data":[],"skip_sid":{}}"#,
            "skip_sid is not a string or a list",
        ),
        (
            r#"{"method":"emit","event":"e","data":[],"host_id":[]}"#,
            "host_id is not a string",
        ),
        (
            r#"{"method":"emit","event":"e","data":[],"callback":"abc"}"#,
            "callback is not a list",
        ),
        (
            r#"{"method":"emit","event":"e","data":[],"callback":[["a"],"/",1]}"#,
            "callback is not [sid",
        ),
        (
            r#"{"method":"emit","event":"e","data":[],"callback":["a","/",-1]}"#,
            "callback id",
        ),
        (
            r#"{"method":"emit","event":"e","data":[],"callback":["a","/",1.0]}"#,
            "callback id",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":{}}"#,
            "binary data is not a list",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[]}"#,
            "binary data is empty",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[[],1]}"#,
            "attachment is not a string",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[[],"***"]}"#,
            "not base64",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[[],"AAH"]}"#,
            "not base64",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[[{"_placeholder":true,"num":1}],"AA=="]}"#,
            "out of range",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[[{"_placeholder":true,"num":-1}],"AA=="]}"#,
            "out of range",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[[{"_placeholder":true,"num":0.0}],"AA=="]}"#,
            "out of range",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[[{"_placeholder":true,"num":"0"}],"AA=="]}"#,
            "out of range",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[[{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}],"AA=="]}"#,
            "used twice",
        ),
        (
            r#"{"method":"emit","event":"e","binary":true,"data":[[{"_placeholder":1,"num":0}],"AA=="]}"#,
            "marker is not true",
        ),
        (r#"{"method":"emit","event":"e","data":[NaN]}"#, "not JSON"),
        (
            r#"{"method":"emit","event":"e","data":[Infinity]}"#,
            "not JSON",
        ),
        (
            r#"{"method":"emit","event":"e","data":["\ud800"]}"#,
            "not JSON",
        ),
        (
            r#"{"method":"callback","sid":"s","id":1,"args":[]}"#,
            "no host_id",
        ),
        (
            r#"{"method":"callback","host_id":"h","id":1,"args":[]}"#,
            "no sid",
        ),
        (
            r#"{"method":"callback","host_id":"h","sid":"s","args":[]}"#,
            "id is not",
        ),
        (
            r#"{"method":"callback","host_id":"h","sid":"s","id":"1","args":[]}"#,
            "id is not",
        ),
        (
            r#"{"method":"callback","host_id":"h","sid":"s","id":1}"#,
            "args is not a list",
        ),
        (
            r#"{"method":"callback","host_id":"h","sid":"s","id":1,"args":"ab"}"#,
            "args is not a list",
        ),
        (r#"{"method":"disconnect","namespace":"/"}"#, "no sid"),
        (r#"{"method":"enter_room","sid":"s"}"#, "no room"),
        (r#"{"method":"leave_room","room":"r"}"#, "no sid"),
        (
            r#"{"method":"close_room","room":["a"]}"#,
            "room is not a string",
        ),
        (
            r#"{"method":"close_room","room":"a","host_id":1}"#,
            "host_id is not a string",
        ),
    ];
    for (input, expected) in cases {
        let reason = decode_err(input);
        assert!(
            reason.contains(expected),
            "{input}: got {reason:?}, expected {expected:?}"
        );
    }
    // Not UTF-8.
    assert!(decode(b"{\"method\":\"emit\",\"event\":\"\xff\"}", &limits()).is_err());
}

#[test]
fn message_size_limit() {
    let golden =
        br#"{"method": "close_room", "room": "roomB", "namespace": "/chat", "host_id": null}"#;
    let exact = BusLimits {
        max_message_bytes: golden.len(),
        ..limits()
    };
    assert!(decode(golden, &exact).is_ok());
    let short = BusLimits {
        max_message_bytes: golden.len() - 1,
        ..limits()
    };
    assert!(decode_err_with(golden, &short).contains("exceeds the limit"));
}

fn decode_err_with(input: &[u8], limits: &BusLimits) -> String {
    match decode(input, limits) {
        Err(PyDecodeError::Invalid(BusDecodeError(reason))) => reason,
        other => panic!("expected an invalid message, got {other:?}"),
    }
}

#[test]
fn depth_limit() {
    // The message object is depth 1, `data` 2, its items 3 and so on.
    let nested = |levels: usize| {
        format!(
            r#"{{"method":"emit","event":"e","data":{}{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    let lim = BusLimits {
        max_depth: 5,
        ..limits()
    };
    assert!(decode(nested(4).as_bytes(), &lim).is_ok());
    assert!(decode_err_with(nested(5).as_bytes(), &lim).contains("deeper"));
    // Far deeper than any stack allows: refused by the parser's own limit,
    // without recursing.
    let huge = BusLimits {
        max_depth: usize::MAX,
        ..limits()
    };
    assert!(decode_err_with(nested(100_000).as_bytes(), &huge).contains("not JSON"));
    let mut objects = String::from(r#"{"method":"emit","event":"e","data":"#);
    for _ in 0..100_000 {
        objects.push_str(r#"{"a":"#);
    }
    assert!(decode_err_with(objects.as_bytes(), &huge).contains("not JSON"));
}

#[test]
fn attachment_limit() {
    let message = |count: usize| {
        let mut text = String::from(r#"{"method":"emit","event":"e","binary":true,"data":[[]"#);
        for _ in 0..count {
            text.push_str(r#","AA==""#);
        }
        text.push_str("]}");
        text
    };
    let lim = BusLimits {
        max_attachments: 3,
        ..limits()
    };
    assert!(decode(message(3).as_bytes(), &lim).is_ok());
    assert!(decode_err_with(message(4).as_bytes(), &lim).contains("exceed the limit"));
}

#[test]
fn binary_reconstruct_deep_and_unused() {
    let m = decode(
        br#"{"method":"emit","event":"e","binary":true,"data":[[{"a":[{"b":{"_placeholder":true,"num":1}}]},{"_placeholder":true,"num":0,"extra":1}],"AQ==","Ag==","Aw=="]}"#,
        &limits(),
    )
    .unwrap();
    let PyMessage::Emit(e) = m else { panic!() };
    assert_eq!(
        e.data,
        vec![
            Value::Object(vec![(
                "a".into(),
                Value::Array(vec![Value::Object(vec![(
                    "b".into(),
                    Value::Binary(Bytes::from_static(&[2]))
                )])])
            )]),
            Value::Binary(Bytes::from_static(&[1])),
        ]
    );
    // The unused third attachment is dropped; the rest round-trips.
    let again = decode(&encode(&PyMessage::Emit(e.clone())).unwrap(), &limits()).unwrap();
    assert_eq!(again, PyMessage::Emit(e));
    // A template that is itself a placeholder: one binary argument.
    let m = decode(
        br#"{"method":"emit","event":"e","binary":true,"data":[{"_placeholder":true,"num":0},"AQ=="]}"#,
        &limits(),
    )
    .unwrap();
    let PyMessage::Emit(e) = m else { panic!() };
    assert_eq!(e.data, vec![Value::Binary(Bytes::from_static(&[1]))]);
}

#[test]
fn encode_errors() {
    let cb = PyMessage::Callback(PyCallback {
        host_id: OTHER_HOST.into(),
        sid: "s".into(),
        namespace: "/".into(),
        id: 1,
        args: vec![Value::Array(vec![Value::Binary(Bytes::from_static(b"x"))])],
    });
    assert_eq!(encode(&cb), Err(PyEncodeError::BinaryInCallback));
    let mut deep = Value::Null;
    for _ in 0..MAX_ENCODE_DEPTH {
        deep = Value::Array(vec![deep]);
    }
    assert_eq!(
        encode(&PyMessage::Emit(emit("e", vec![deep.clone()]))),
        Err(PyEncodeError::TooDeep)
    );
    let mut shallower = Value::Null;
    for _ in 0..MAX_ENCODE_DEPTH - 2 {
        shallower = Value::Object(vec![("k".into(), shallower)]);
    }
    assert!(encode(&PyMessage::Emit(emit("e", vec![shallower]))).is_ok());
}

#[test]
fn non_finite_floats_become_null() {
    let e = emit("f", vec![f64::NAN.into(), f64::INFINITY.into()]);
    let text = encode(&PyMessage::Emit(e)).unwrap();
    assert!(std::str::from_utf8(&text)
        .unwrap()
        .contains(r#""data": [null, null]"#));
}

#[test]
fn round_trips() {
    let mut e = emit(
        "every kind",
        vec![
            Value::Object(vec![
                ("bin".into(), Value::Binary(Bytes::from_static(b"\0\x01"))),
                ("s".into(), "\u{10ffff}\u{7f}".into()),
                ("f".into(), 3.25e-300.into()),
            ]),
            Value::Binary(Bytes::new()),
            Value::from(-5i64),
        ],
    );
    e.skip_sid = Rooms::Many(vec![]);
    e.host_id = None;
    e.callback = Some(PyCallbackRequest {
        sid: "s".into(),
        namespace: "/x".into(),
        id: u64::MAX,
    });
    let message = PyMessage::Emit(e);
    let bytes = encode(&message).unwrap();
    assert!(bytes.is_ascii());
    assert_eq!(decode(&bytes, &limits()).unwrap(), message);
}

#[test]
fn rooms_names() {
    assert!(Rooms::Unset.names().is_empty());
    assert_eq!(Rooms::One("a".into()).names(), ["a".to_owned()]);
    assert_eq!(
        Rooms::Many(vec!["a".into(), "b".into()]).names(),
        ["a".to_owned(), "b".to_owned()]
    );
}
