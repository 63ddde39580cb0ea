use super::placeholders::{json_to_value, replace_placeholders};
use super::typed::{probe_target, Target};
use super::*;

#[test]
fn probe_finds_how_a_type_takes_arguments() {
    #[derive(serde::Deserialize)]
    struct Unit;
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Pair(u8, u8);
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Named {
        a: u8,
    }
    assert_eq!(probe_target::<()>(), Target::Unit);
    assert_eq!(probe_target::<Unit>(), Target::Unit);
    assert_eq!(probe_target::<(u8,)>(), Target::Tuple(1));
    assert_eq!(probe_target::<(u8, String, Value)>(), Target::Tuple(3));
    assert_eq!(probe_target::<[u8; 2]>(), Target::Tuple(2));
    assert_eq!(probe_target::<Option<u8>>(), Target::Option);
    assert_eq!(probe_target::<Option<(u8, u8)>>(), Target::Option);
    assert_eq!(probe_target::<u8>(), Target::Other);
    assert_eq!(probe_target::<String>(), Target::Other);
    assert_eq!(probe_target::<Vec<u8>>(), Target::Other);
    assert_eq!(probe_target::<Value>(), Target::Other);
    assert_eq!(probe_target::<Pair>(), Target::Other);
    assert_eq!(probe_target::<Named>(), Target::Other);
}

#[test]
fn value_args_serialize_as_a_tuple() {
    let args = Args::from_values(vec![Value::from(1u64), Value::from("x")]);
    assert_eq!(serde_json::to_string(&args).unwrap(), r#"[1,"x"]"#);
    assert_eq!(serde_json::to_string(&Args::empty()).unwrap(), "[]");
    assert_eq!(args.len(), 2);
    assert!(!args.is_empty());
    assert!(Args::empty().is_empty());
    assert!(args.attachments().is_empty());
    assert!(args.json_texts().is_none());
    assert_eq!(
        args.to_values().unwrap(),
        vec![Value::from(1u64), Value::from("x")]
    );
    assert_eq!(
        format!("{args:?}"),
        r#"Args([Number(PosInt(1)), String("x")])"#
    );
    assert_eq!(args, args.clone());
    assert_ne!(args, Args::empty());
    // `()` takes nothing, whatever the arguments hold.
    args.deserialize::<()>().unwrap();
    Args::empty().deserialize::<()>().unwrap();
    assert!(args.get::<u8>(2).is_err());
}

#[test]
fn placeholders_resolve_to_shared_attachments() {
    let attachment = Bytes::from_static(b"bin");
    let first = r#"{"k":{"_placeholder":true,"num":0}}"#;
    let second = r#"{"_placeholder":true,"num":1}"#;
    let text = Str::from(format!("[{first},{second}]"));
    let first_span = (1, 1 + first.len() as u32);
    let second_span = (first_span.1 + 1, first_span.1 + 1 + second.len() as u32);
    let json_args = |spans: &[(u32, u32)]| {
        Args(Repr::Json {
            text: text.clone(),
            array_start: Some(0),
            has_name: false,
            attachments: vec![attachment.clone()],
            max_depth: 64,
            checked: OnceLock::from(Ok(SmallVec::from_slice(spans))),
        })
    };
    let args = json_args(&[first_span, second_span]);
    let values = args.to_values();
    // The second placeholder points past the attachments.
    assert!(values.is_err());
    let args = json_args(&[first_span]);
    let values = args.to_values().unwrap();
    let Value::Object(map) = &values[0] else {
        panic!("not an object: {values:?}")
    };
    let Value::Binary(b) = &map[0].1 else {
        panic!("not binary: {map:?}")
    };
    assert_eq!(b.as_ptr(), attachment.as_ptr());
}

/// Placeholders resolved while parsing give what parsing and then
/// replacing gives, key order and duplicates included.
#[test]
fn placeholders_resolve_while_parsing() {
    let attachments = [Bytes::from_static(b"zero"), Bytes::from_static(b"one")];
    let reference = |json: &str| -> Result<Value, ArgsError> {
        let mut value: Value = serde_json::from_str(json).map_err(json_err)?;
        replace_placeholders(&mut value, &attachments)?;
        Ok(value)
    };
    for json in [
        r#"{"_placeholder":true,"num":1}"#,
        r#"{"num":0,"_placeholder":true}"#,
        r#"{"num":1.0,"_placeholder":true,"x":[1]}"#,
        r#"[{"a":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]"#,
        r#"{"_placeholder":false,"num":0,"k":"v"}"#,
        r#"{"k":1,"num":5,"z":2}"#,
        r#"{"_placeholder":true,"_placeholder":false,"num":0}"#,
        r#"{"_placeholder":false,"_placeholder":true,"num":7,"num":0}"#,
        r#"{"_placeholder":true,"num":2}"#,
        r#"{"_placeholder":true,"num":-1}"#,
        r#"{"_placeholder":true}"#,
        r#"{"nu\u006d":0,"_placeholder":true}"#,
        r#"[1,"s",null,true,{"a":[]}]"#,
    ] {
        let ours = json_to_value(json, &attachments);
        let expected = reference(json);
        assert_eq!(
            ours.is_ok(),
            expected.is_ok(),
            "{json}: {ours:?} vs {expected:?}"
        );
        if let (Ok(ours), Ok(expected)) = (ours, expected) {
            assert_eq!(ours, expected, "{json}");
        }
    }
}

#[test]
fn value_args_deserialize_through_from_value() {
    let args = Args::from_values(vec![
        Value::from(1u64),
        Value::Binary(Bytes::from_static(b"b")),
    ]);
    assert_eq!(
        args.deserialize::<(u8, Bytes)>().unwrap(),
        (1, Bytes::from_static(b"b"))
    );
    assert_eq!(
        args.deserialize::<(u8, Bytes, Option<u8>)>().unwrap(),
        (1, Bytes::from_static(b"b"), None)
    );
    assert_eq!(args.deserialize::<(u8,)>().unwrap(), (1,));
    assert_eq!(args.deserialize::<u8>().unwrap(), 1);
    assert_eq!(args.deserialize::<Option<u8>>().unwrap(), Some(1));
    assert_eq!(Args::empty().deserialize::<Option<u8>>().unwrap(), None);
    assert_eq!(args.get::<Bytes>(1).unwrap(), Bytes::from_static(b"b"));
}
