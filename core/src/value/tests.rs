use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Upload {
    name: String,
    #[serde(default)]
    parts: Vec<Part>,
    note: Option<String>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Part {
    index: u32,
    body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Plain,
    Sized(u64),
    Pair(i8, String),
    Shaped { w: f32, h: f32 },
}

fn obj(entries: &[(&str, Value)]) -> Value {
    Value::Object(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn sample() -> Upload {
    Upload {
        name: "file".into(),
        parts: vec![
            Part {
                index: 0,
                body: Bytes::from_static(b"\x00\x01\xff"),
            },
            Part {
                index: 1,
                body: Bytes::new(),
            },
        ],
        note: None,
        kind: Kind::Shaped { w: 1.5, h: -2.0 },
    }
}

#[test]
fn nested_struct_with_bytes_round_trips() {
    let upload = sample();
    let value = to_value(&upload).unwrap();
    let expected = obj(&[
        ("name", Value::from("file")),
        (
            "parts",
            Value::Array(vec![
                obj(&[
                    ("index", Value::from(0u64)),
                    ("body", Value::Binary(Bytes::from_static(b"\x00\x01\xff"))),
                ]),
                obj(&[
                    ("index", Value::from(1u64)),
                    ("body", Value::Binary(Bytes::new())),
                ]),
            ]),
        ),
        ("note", Value::Null),
        (
            "kind",
            obj(&[(
                "Shaped",
                obj(&[("w", Value::from(1.5)), ("h", Value::from(-2.0))]),
            )]),
        ),
    ]);
    assert_eq!(value, expected);
    assert!(value.has_binary());
    assert_eq!(from_value::<Upload>(value.clone()).unwrap(), upload);
    assert_eq!(Upload::deserialize(&value).unwrap(), upload);
}

#[test]
fn enums_are_externally_tagged_like_serde_json() {
    let kinds = [
        Kind::Plain,
        Kind::Sized(7),
        Kind::Pair(-3, "x".into()),
        Kind::Shaped { w: 0.5, h: 2.0 },
    ];
    for kind in kinds {
        let ours = to_value(&kind).unwrap();
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&kind).unwrap()
        );
        assert_eq!(from_value::<Kind>(ours.clone()).unwrap(), kind);
        assert_eq!(Kind::deserialize(&ours).unwrap(), kind);
    }
    assert!(from_value::<Kind>(Value::from("Nope")).is_err());
    assert!(from_value::<Kind>(obj(&[("Plain", Value::Null), ("x", Value::Null)])).is_err());
    assert!(from_value::<Kind>(obj(&[("Plain", Value::from(1u64))])).is_err());
    assert!(from_value::<Kind>(obj(&[("Pair", Value::from(1u64))])).is_err());
}

#[test]
fn options_and_units() {
    assert_eq!(to_value(&None::<u8>).unwrap(), Value::Null);
    assert_eq!(to_value(&Some(3u8)).unwrap(), Value::from(3u64));
    assert_eq!(to_value(&()).unwrap(), Value::Null);
    assert_eq!(from_value::<Option<u8>>(Value::Null).unwrap(), None);
    assert_eq!(
        from_value::<Option<u8>>(Value::from(4u64)).unwrap(),
        Some(4)
    );
    from_value::<()>(Value::Null).unwrap();
    assert!(from_value::<()>(Value::from(1u64)).is_err());
    // A missing optional field is fine, a missing required one is not.
    let partial = obj(&[("name", "n".into()), ("kind", "Plain".into())]);
    let upload = from_value::<Upload>(partial).unwrap();
    assert_eq!(upload.note, None);
    assert!(from_value::<Upload>(obj(&[("name", "n".into())])).is_err());
}

#[test]
fn numeric_edge_cases() {
    assert_eq!(
        to_value(&u64::MAX).unwrap(),
        Value::Number(Number::PosInt(u64::MAX))
    );
    assert_eq!(
        to_value(&i64::MIN).unwrap(),
        Value::Number(Number::NegInt(i64::MIN))
    );
    assert_eq!(to_value(&-0i64).unwrap(), Value::Number(Number::PosInt(0)));
    assert_eq!(
        to_value(&(u64::MAX as u128)).unwrap(),
        Value::from(u64::MAX)
    );
    assert_eq!(
        to_value(&(i64::MIN as i128)).unwrap(),
        Value::from(i64::MIN)
    );
    assert!(to_value(&(u64::MAX as u128 + 1)).is_err());
    assert!(to_value(&(i64::MIN as i128 - 1)).is_err());
    assert_eq!(to_value(&1.5f32).unwrap(), Value::from(1.5));

    assert_eq!(from_value::<u8>(Value::from(255u64)).unwrap(), 255);
    assert!(from_value::<u8>(Value::from(256u64)).is_err());
    assert!(from_value::<u8>(Value::from(-1i64)).is_err());
    assert_eq!(from_value::<i8>(Value::from(-128i64)).unwrap(), -128);
    assert!(from_value::<i8>(Value::from(-129i64)).is_err());
    assert_eq!(from_value::<u64>(Value::from(u64::MAX)).unwrap(), u64::MAX);
    assert!(from_value::<i64>(Value::from(u64::MAX)).is_err());
    assert_eq!(
        from_value::<i128>(Value::from(i64::MIN)).unwrap(),
        i128::from(i64::MIN)
    );
    // JavaScript numbers: integral floats fit integer targets.
    assert_eq!(from_value::<u32>(Value::from(3.0)).unwrap(), 3);
    assert_eq!(from_value::<i32>(Value::from(-3.0)).unwrap(), -3);
    assert_eq!(u32::deserialize(&Value::from(3.0)).unwrap(), 3);
    assert!(from_value::<u32>(Value::from(3.5)).is_err());
    assert!(from_value::<u8>(Value::from(300.0)).is_err());
    assert!(from_value::<u64>(Value::from(1e30)).is_err());
    assert_eq!(from_value::<f64>(Value::from(7u64)).unwrap(), 7.0);
    assert_eq!(from_value::<f64>(Value::from(-7i64)).unwrap(), -7.0);
    assert_eq!(from_value::<f32>(Value::from(0.25)).unwrap(), 0.25);
    assert!(from_value::<f64>(Value::from("1")).is_err());
}

#[test]
fn map_keys_become_text_and_parse_back() {
    let mut by_number = BTreeMap::new();
    by_number.insert(-5i32, "a");
    by_number.insert(10, "b");
    let value = to_value(&by_number).unwrap();
    assert_eq!(value, obj(&[("-5", "a".into()), ("10", "b".into())]));
    let back: BTreeMap<i32, String> = from_value(value.clone()).unwrap();
    assert_eq!(back.get(&-5).map(String::as_str), Some("a"));
    let back: BTreeMap<i32, String> = BTreeMap::deserialize(&value).unwrap();
    assert_eq!(back.len(), 2);

    let mut by_bool = BTreeMap::new();
    by_bool.insert(true, 1u8);
    let value = to_value(&by_bool).unwrap();
    assert_eq!(value, obj(&[("true", 1u64.into())]));
    assert_eq!(from_value::<BTreeMap<bool, u8>>(value).unwrap(), by_bool);

    #[derive(Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Debug)]
    enum Color {
        Red,
    }
    let mut by_unit_variant = BTreeMap::new();
    by_unit_variant.insert(Color::Red, 1u8);
    let value = to_value(&by_unit_variant).unwrap();
    assert_eq!(value, obj(&[("Red", 1u64.into())]));
    assert_eq!(
        from_value::<BTreeMap<Color, u8>>(value).unwrap(),
        by_unit_variant
    );

    let mut by_vec = BTreeMap::new();
    by_vec.insert(vec![1u8], 1u8);
    assert!(to_value(&by_vec).is_err());
}

#[test]
fn binary_reaches_byte_and_sequence_targets() {
    let value = Value::Binary(Bytes::from_static(b"abc"));
    assert_eq!(from_value::<Bytes>(value.clone()).unwrap(), &b"abc"[..]);
    assert_eq!(Bytes::deserialize(&value).unwrap(), &b"abc"[..]);
    assert_eq!(from_value::<Vec<u8>>(value.clone()).unwrap(), b"abc");
    assert_eq!(<Vec<u8>>::deserialize(&value).unwrap(), b"abc");
    assert_eq!(from_value::<[u8; 3]>(value.clone()).unwrap(), *b"abc");
    assert!(from_value::<[u8; 2]>(value.clone()).is_err());
    assert_eq!(from_value::<String>(value.clone()).unwrap(), "abc");
    assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
    assert!(from_value::<u8>(value).is_err());
    // An array of numbers also fills bytes (how JSON carries them).
    let numbers = Value::Array(vec![1u64.into(), 2u64.into()]);
    assert_eq!(from_value::<Bytes>(numbers).unwrap(), &[1u8, 2][..]);
}

#[test]
fn shared_binary_reaches_binary_without_a_copy() {
    let bytes = Bytes::from(vec![9u8; 1024]);
    let value = Value::Binary(bytes.clone());
    let out: Binary = from_value(value.clone()).unwrap();
    assert_eq!(out.as_ptr(), bytes.as_ptr());
    let out = Binary::deserialize(&value).unwrap();
    assert_eq!(out.as_ptr(), bytes.as_ptr());
    let out: (u8, Binary) =
        from_value(Value::Array(vec![Value::from(1u64), value.clone()])).unwrap();
    assert_eq!(out.1.as_ptr(), bytes.as_ptr());
    // Other targets get a copy; the lent buffer does not outlive the call.
    let copied: Bytes = from_value(value.clone()).unwrap();
    assert_ne!(copied.as_ptr(), bytes.as_ptr());
    assert_eq!(copied, bytes);
    assert!(take_shared_bytes(&bytes).is_none());
    // Binary from other representations.
    assert_eq!(
        from_value::<Binary>(Value::Array(vec![1u64.into(), 2u64.into()])).unwrap(),
        Binary(Bytes::from_static(&[1, 2]))
    );
    assert_eq!(
        serde_json::from_str::<Binary>("[3,4]").unwrap(),
        Binary(Bytes::from_static(&[3, 4]))
    );
}

#[test]
fn unshared_binary_moves_without_a_copy() {
    let bytes = Bytes::from(vec![9u8; 1024]);
    let ptr = bytes.as_ptr();
    let out: Bytes = from_value(Value::Binary(bytes)).unwrap();
    assert_eq!(out.as_ptr(), ptr);
}

#[test]
fn borrowed_deserializer_borrows_strings() {
    #[derive(Deserialize)]
    struct Borrowing<'a> {
        name: &'a str,
        #[serde(borrow)]
        raw: &'a [u8],
    }
    let value = obj(&[
        ("name", "n".into()),
        ("raw", Value::Binary(Bytes::from_static(b"xy"))),
    ]);
    let b = Borrowing::deserialize(&value).unwrap();
    assert_eq!((b.name, b.raw), ("n", &b"xy"[..]));
}

#[test]
fn type_errors_name_what_was_found() {
    let err = from_value::<String>(Value::from(1u64)).unwrap_err();
    assert!(err.0.contains("integer"), "{err}");
    let err = from_value::<Vec<u8>>(Value::from(true)).unwrap_err();
    assert!(err.0.contains("boolean"), "{err}");
    let err = from_value::<(u8, u8)>(Value::Array(vec![1u64.into()])).unwrap_err();
    assert!(err.0.contains("length"), "{err}");
    assert!(from_value::<(u8,)>(Value::Array(vec![1u64.into(), 2u64.into()])).is_err());
}

#[test]
fn number_text_is_javascript_like() {
    assert_eq!(number_text(3.0), "3");
    assert_eq!(number_text(-0.0), "0");
    assert_eq!(number_text(1.5), "1.5");
    assert_eq!(number_text(f64::INFINITY), "Infinity");
    assert_eq!(number_text(f64::NAN), "NaN");
}

pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|v| Value::Binary(Bytes::from(v))),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((".{0,8}", inner), 0..8).prop_map(Value::Object),
        ]
    })
}

proptest! {
    #[test]
    fn value_round_trips_through_itself(v in arb_value()) {
        prop_assert_eq!(to_value(&v).unwrap(), v.clone());
        prop_assert_eq!(Value::deserialize(&v).unwrap(), v.clone());
        prop_assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
    }
}
