//! Codec benchmark: our JSON parser against `socketioxide-parser-common`,
//! with plain `serde_json` as a floor, measured in interleaved rounds in the
//! same run. Run: `cargo bench -p socketio-bench --bench codec`.
//!
//! Cases (issue #2): (a) the small event `["message",{"a":1,"b":"hello"}]`,
//! (b) an event with one 64 KiB binary attachment, (c) an event whose one
//! argument is about 1 MiB of JSON.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use socketio_bench::{keep, Interleaved, Measured};
use socketio_core::engine::Message;
use socketio_core::parser::{DecodeLimits, Encoded, JsonParser, OutPacket, Parser};
use socketio_core::socket::PacketData;
use socketio_core::{Str, Value};
use socketioxide_core::packet::Packet as SxPacket;
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_core::Value as SxValue;
use socketioxide_parser_common::CommonParser;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Small {
    a: u32,
    b: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: f64,
    active: bool,
}

fn big_payload() -> Vec<Item> {
    let mut items = Vec::new();
    let mut size = 0;
    let mut i = 0u64;
    while size < 1 << 20 {
        let item = Item {
            id: i,
            name: format!("item number {i} with some text \u{e9}\u{1F600}"),
            tags: vec!["alpha".into(), "beta".into(), format!("t{}", i % 7)],
            score: i as f64 * 1.25,
            active: i.is_multiple_of(2),
        };
        size += serde_json::to_string(&item).unwrap().len() + 1;
        items.push(item);
        i += 1;
    }
    items
}

fn ours_encode<A: Serialize + ?Sized>(out: &mut Encoded, args: &A) {
    JsonParser
        .encode(
            &OutPacket::Event {
                nsp: "/",
                event: "message",
                args,
                ack: None,
            },
            out,
        )
        .unwrap();
    keep(&out.data);
}

fn sx_encode<A: Serialize + ?Sized>(args: &A) {
    let value = CommonParser.encode_value(args, Some("message")).unwrap();
    keep(CommonParser.encode(SxPacket::event("/", value)));
}

/// Our decode of a whole packet (text plus attachments).
fn ours_decode(text: &Str, attachments: &[Bytes]) -> socketio_core::socket::Packet {
    let limits = DecodeLimits::default();
    let mut decoder = Default::default();
    let mut packet = JsonParser
        .decode(&mut decoder, Message::Text(text.clone()), &limits)
        .unwrap();
    for a in attachments {
        packet = JsonParser
            .decode(&mut decoder, Message::Binary(a.clone()), &limits)
            .unwrap();
    }
    packet.expect("complete packet")
}

fn sx_decode(text: &str, attachments: &[Bytes]) -> SxPacket {
    let config = ParseConfig::default();
    let state = ParserState::default();
    let mut result = CommonParser.decode_str(&config, &state, text.to_owned().into());
    for a in attachments {
        result = CommonParser.decode_bin(&config, &state, a.clone());
    }
    result.unwrap()
}

fn ours_args<T: serde::de::DeserializeOwned>(packet: &socketio_core::socket::Packet) -> T {
    match &packet.data {
        PacketData::Event { args, .. } => args.deserialize::<T>().unwrap(),
        _ => unreachable!(),
    }
}

fn sx_args<T: serde::de::DeserializeOwned>(mut packet: SxPacket) -> T {
    use socketioxide_core::packet::PacketData as D;
    match &mut packet.inner {
        D::Event(v, _) | D::BinaryEvent(v, _) => CommonParser.decode_value::<T>(v, true).unwrap(),
        _ => unreachable!(),
    }
}

fn text_of(out: &Encoded) -> Str {
    Str::from(std::str::from_utf8(&out.data).unwrap().to_owned())
}

fn report(case: &str, results: &[Measured]) {
    let ours = |prefix: &str| {
        results
            .iter()
            .find(|m| m.name == format!("ours {prefix}"))
            .map(|m| m.median_ns)
    };
    println!("\n## {case}");
    println!("| variant | median ns/op | ratio to ours |");
    println!("|---|---:|---:|");
    for m in results {
        let op = m.name.split_once(' ').map(|(_, op)| op).unwrap_or("");
        let base = ours(op).or_else(|| ours(op.split(" (").next().unwrap_or(op)));
        let ratio = base
            .map(|b| format!("{:.2}x", m.median_ns / b))
            .unwrap_or_default();
        println!("| {} | {:.0} | {} |", m.name, m.median_ns, ratio);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 5 } else { 15 };
    let batch = Duration::from_millis(if quick { 5 } else { 20 });

    // (a) small event.
    let small = Small {
        a: 1,
        b: "hello".into(),
    };
    let mut out = Encoded::default();
    ours_encode(&mut out, &small);
    let small_text = text_of(&out);
    assert_eq!(&*small_text, r#"2["message",{"a":1,"b":"hello"}]"#);
    let small_packet = ours_decode(&small_text, &[]);
    assert_eq!(ours_args::<Small>(&small_packet), small);
    assert_eq!(sx_args::<Small>(sx_decode(&small_text, &[])), small);
    let mut out_a = Encoded::default();
    let mut floor_buf = Vec::with_capacity(64);
    let mut set = Interleaved::new(rounds, batch);
    set.add("ours encode", || ours_encode(&mut out_a, &small));
    set.add("socketioxide encode", || sx_encode(&small));
    set.add("serde_json encode (floor)", || {
        floor_buf.clear();
        serde_json::to_writer(&mut floor_buf, &("message", &small)).unwrap();
        keep(&floor_buf);
    });
    set.add("ours decode", || {
        keep(ours_decode(&small_text, &[]));
    });
    set.add("socketioxide decode", || {
        keep(sx_decode(&small_text, &[]));
    });
    set.add("ours decode+typed", || {
        keep(ours_args::<Small>(&ours_decode(&small_text, &[])));
    });
    set.add("socketioxide decode+typed", || {
        keep(sx_args::<Small>(sx_decode(&small_text, &[])));
    });
    let json = &small_text.as_bytes()[1..];
    set.add("serde_json decode+typed (floor)", || {
        keep(serde_json::from_slice::<(String, Small)>(json).unwrap());
    });
    report(
        "(a) small event `[\"message\",{\"a\":1,\"b\":\"hello\"}]`",
        &set.run(),
    );

    // (b) one 64 KiB binary attachment.
    let blob = Bytes::from(vec![7u8; 64 * 1024]);
    let blob_value = Value::Binary(blob.clone());
    let mut out = Encoded::default();
    ours_encode(&mut out, &(blob.clone(),));
    let bin_text = text_of(&out);
    let bin_attachments = out.attachments.clone();
    assert_eq!(bin_attachments.len(), 1);
    assert_eq!(
        ours_args::<(Bytes,)>(&ours_decode(&bin_text, &bin_attachments)).0,
        blob
    );
    assert_eq!(
        sx_args::<(Bytes,)>(sx_decode(&bin_text, &bin_attachments)).0,
        blob
    );
    let mut out_b = Encoded::default();
    let mut out_b2 = Encoded::default();
    let mut set = Interleaved::new(rounds, batch);
    set.add("ours encode", || ours_encode(&mut out_b, &(blob.clone(),)));
    set.add("ours encode (Value::Binary)", || {
        ours_encode(&mut out_b2, &blob_value)
    });
    set.add("socketioxide encode", || sx_encode(&(blob.clone(),)));
    set.add("memcpy 64 KiB (floor)", || {
        keep(Bytes::copy_from_slice(&blob));
    });
    set.add("ours decode", || {
        keep(ours_decode(&bin_text, &bin_attachments));
    });
    set.add("socketioxide decode", || {
        keep(sx_decode(&bin_text, &bin_attachments));
    });
    set.add("ours decode+typed", || {
        keep(ours_args::<(Bytes,)>(&ours_decode(
            &bin_text,
            &bin_attachments,
        )));
    });
    set.add("ours decode+typed (Binary)", || {
        keep(ours_args::<(socketio_core::Binary,)>(&ours_decode(
            &bin_text,
            &bin_attachments,
        )));
    });
    set.add("socketioxide decode+typed", || {
        keep(sx_args::<(Bytes,)>(sx_decode(&bin_text, &bin_attachments)));
    });
    report("(b) event with a 64 KiB binary attachment", &set.run());

    // (c) about 1 MiB of JSON.
    let big = big_payload();
    let mut out = Encoded::default();
    ours_encode(&mut out, &big);
    let big_text = text_of(&out);
    assert_eq!(ours_args::<Vec<Item>>(&ours_decode(&big_text, &[])), big);
    let rounds_c = if quick { 3 } else { 11 };
    let batch_c = Duration::from_millis(if quick { 20 } else { 60 });
    let mut out_c = Encoded::default();
    let mut floor_c = Vec::with_capacity(big_text.len() + 16);
    let mut set = Interleaved::new(rounds_c, batch_c);
    set.add("ours encode", || ours_encode(&mut out_c, &big));
    set.add("socketioxide encode", || sx_encode(&big));
    set.add("serde_json encode (floor)", || {
        floor_c.clear();
        serde_json::to_writer(&mut floor_c, &("message", &big)).unwrap();
        keep(&floor_c);
    });
    set.add("ours decode", || {
        keep(ours_decode(&big_text, &[]));
    });
    set.add("socketioxide decode", || {
        keep(sx_decode(&big_text, &[]));
    });
    set.add("ours decode+typed", || {
        keep(ours_args::<Vec<Item>>(&ours_decode(&big_text, &[])));
    });
    set.add("socketioxide decode+typed", || {
        keep(sx_args::<Vec<Item>>(sx_decode(&big_text, &[])));
    });
    let json_c = &big_text.as_bytes()[1..];
    set.add("serde_json decode+typed (floor)", || {
        keep(serde_json::from_slice::<(String, Vec<Item>)>(json_c).unwrap());
    });
    report(
        &format!("(c) event with {} KiB of JSON", big_text.len() / 1024),
        &set.run(),
    );
    let _ = SxValue::Bytes(Bytes::new());
}
