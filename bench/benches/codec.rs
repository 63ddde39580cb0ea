//! Codec benchmark (issue 6): our JSON and MessagePack parsers against
//! socketioxide's published parsers (`socketioxide-parser-common`,
//! `socketioxide-parser-msgpack`), with plain `serde_json` / `rmp-serde` on
//! the same value and memcpy as floors, measured in interleaved rounds in
//! the same run, with allocation calls and allocated bytes per operation.
//!
//! Run: `cargo bench -p socketio-bench --bench codec` (`-- --quick` for a
//! short smoke run; `-- --profile NAME [N]` runs one operation
//! N times, for callgrind or perf). Under a minute on a 2-core machine.
//!
//! Cases: (a) the small event `["message",{"a":1,"b":"hello"}]`, (b) an
//! event with one 64 KiB binary attachment, (b2) an event with 16
//! attachments of 1 KiB, (c) an event whose one argument is about 1 MiB of
//! JSON. Operations: encode, decode (to a packet), decode+typed (to a packet,
//! then its arguments into a struct or our `Binary`).
//!
//! Our variants are labelled by how they are called:
//! - `ours` encodes into a reused [`Encoded`] (the documented fast path)
//!   and, for binary, wraps it in [`Binary`] so the attachment is shared;
//! - `ours emit path` is what the server and client do on every emit: the
//!   reused scratch `Encoded`, then `split().freeze()`, the UTF-8 check and
//!   the `Vec<Message>` of the first message and its attachments;
//! - `ours new Encoded` allocates a fresh buffer per packet (the plain call);
//! - `ours Bytes` uses `bytes::Bytes` rather than [`Binary`] (copied once,
//!   as documented).

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use socketio_bench::{keep, CountingAlloc, Interleaved, Measured};
use socketio_core::engine::Message;
use socketio_core::parser::{
    Args, CborParser, CborParserDecoder, DecodeLimits, Encoded, JsonParser, JsonParserDecoder,
    MsgPackParser, MsgPackParserDecoder, OutPacket, Parser,
};
use socketio_core::socket::{Packet, PacketData};
use socketio_core::{Binary, Str};
use socketioxide_core::packet::{Packet as SxPacket, PacketData as SxData};
use socketioxide_core::parser::{Parse, ParseConfig, ParserState};
use socketioxide_core::{Str as SxStr, Value as SxValue};
use socketioxide_parser_common::CommonParser;
use socketioxide_parser_msgpack::MsgPackParser as SxMsgPackParser;

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

const JSON: &str = "JSON";
const MSGPACK: &str = "MessagePack";
const ENCODE: &str = "encode";
const DECODE: &str = "decode";
const TYPED: &str = "decode+typed";

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

// ---------------------------------------------------------------------------
// How each implementation is called.

fn event<A: Serialize + ?Sized>(args: &A) -> OutPacket<'_, A> {
    OutPacket::Event {
        nsp: "/",
        event: "message",
        args,
        ack: None,
    }
}

/// Our encode into a reused buffer (the fast path).
fn ours_encode<P: Parser, A: Serialize + ?Sized>(parser: &P, out: &mut Encoded, args: &A) {
    parser.encode(&event(args), out).unwrap();
    keep(&out.data);
}

/// What `core/src/socket/server.rs::encode_packet` (and the client's
/// `encode`) does on every emit: encode into the scratch buffer, then hand
/// the bytes over as messages.
fn ours_emit<P: Parser, A: Serialize + ?Sized>(
    parser: &P,
    scratch: &mut Encoded,
    args: &A,
) -> Vec<Message> {
    parser.encode(&event(args), scratch).unwrap();
    let data = scratch.data.split().freeze();
    let first = if scratch.binary {
        Message::Binary(data)
    } else {
        Message::Text(Str::try_from(data).unwrap())
    };
    let mut messages = Vec::with_capacity(1 + scratch.attachments.len());
    messages.push(first);
    messages.extend(scratch.attachments.drain(..).map(Message::Binary));
    messages
}

/// Our encode into a new buffer per packet (the plain call).
fn ours_encode_new<P: Parser, A: Serialize + ?Sized>(parser: &P, args: &A) -> Encoded {
    let mut out = Encoded::default();
    parser.encode(&event(args), &mut out).unwrap();
    out
}

/// socketioxide's emit: the arguments to a `Value`, then the packet.
fn sx_encode<P: Parse, A: Serialize + ?Sized>(parser: P, args: &A) -> SxValue {
    let value = parser.encode_value(args, Some("message")).unwrap();
    parser.encode(SxPacket::event("/", value))
}

/// One received packet: its first message and its attachments.
#[derive(Clone)]
struct Wire {
    first: Message,
    attachments: Vec<Bytes>,
}

impl Wire {
    fn of(out: &Encoded) -> Wire {
        let data = Bytes::copy_from_slice(&out.data);
        Wire {
            first: if out.binary {
                Message::Binary(data)
            } else {
                Message::Text(Str::try_from(data).unwrap())
            },
            attachments: out.attachments.clone(),
        }
    }

    fn first_bytes(&self) -> &[u8] {
        match &self.first {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }
}

fn limits() -> DecodeLimits {
    // The default (10, as the reference) would refuse case (b2).
    DecodeLimits {
        max_attachments: 16,
        ..DecodeLimits::default()
    }
}

/// Our decode, with a per-connection decoder as the endpoint keeps one.
fn ours_decode<P: Parser>(
    parser: &P,
    decoder: &mut P::Decoder,
    wire: &Wire,
    limits: &DecodeLimits,
) -> Packet {
    let mut packet = parser.decode(decoder, wire.first.clone(), limits).unwrap();
    for a in &wire.attachments {
        packet = parser
            .decode(decoder, Message::Binary(a.clone()), limits)
            .unwrap();
    }
    packet.expect("complete packet")
}

fn args_of(packet: &Packet) -> &Args {
    match &packet.data {
        PacketData::Event { args, .. } => args,
        _ => unreachable!("an event"),
    }
}

fn ours_typed<T: DeserializeOwned>(packet: &Packet) -> T {
    args_of(packet).deserialize::<T>().unwrap()
}

/// socketioxide's input, built once: its `Str` and `Bytes` are shared
/// buffers, as they are when they come from its engine.
#[derive(Clone)]
enum SxWire {
    Text(SxStr, Vec<Bytes>),
    Binary(Bytes),
}

impl SxWire {
    fn of(wire: &Wire) -> SxWire {
        match &wire.first {
            Message::Text(t) => SxWire::Text(SxStr::from(t.to_string()), wire.attachments.clone()),
            Message::Binary(b) => SxWire::Binary(b.clone()),
        }
    }
}

fn sx_decode<P: Parse>(parser: P, state: &ParserState, wire: &SxWire) -> SxPacket {
    let config = ParseConfig::default();
    match wire {
        SxWire::Text(text, attachments) => {
            let mut result = parser.decode_str(&config, state, text.clone());
            for a in attachments {
                result = parser.decode_bin(&config, state, a.clone());
            }
            result.unwrap()
        }
        SxWire::Binary(bytes) => parser.decode_bin(&config, state, bytes.clone()).unwrap(),
    }
}

fn sx_typed<P: Parse, T: DeserializeOwned>(parser: P, mut packet: SxPacket) -> T {
    match &mut packet.inner {
        SxData::Event(v, _) | SxData::BinaryEvent(v, _) => {
            parser.decode_value::<T>(v, true).unwrap()
        }
        _ => unreachable!("an event"),
    }
}

fn sx_bytes(value: &SxValue) -> &[u8] {
    match value {
        SxValue::Str(s, _) => s.as_bytes(),
        SxValue::Bytes(b) => b,
    }
}

// ---------------------------------------------------------------------------
// Tables.

/// Which implementation a row measures; targets look rows up by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Imp {
    Ours,
    OursEmit,
    OursNew,
    OursBytes,
    Socketioxide,
    Floor,
    FloorValue,
    Memcpy,
}

struct Row {
    format: &'static str,
    op: &'static str,
    imp: Imp,
    label: String,
}

/// One case: rows described as they are added, all measured together.
struct Case<'a> {
    set: Interleaved<'a>,
    rows: Vec<Row>,
}

struct CaseResult {
    title: String,
    rows: Vec<(Row, Measured)>,
}

impl<'a> Case<'a> {
    fn new(rounds: usize, batch: Duration) -> Self {
        Case {
            set: Interleaved::new(rounds, batch),
            rows: Vec::new(),
        }
    }

    fn add(
        &mut self,
        format: &'static str,
        op: &'static str,
        imp: Imp,
        label: impl Into<String>,
        f: impl FnMut() + 'a,
    ) {
        let label = label.into();
        self.set.add(format!("{format} {op} {label}"), f);
        self.rows.push(Row {
            format,
            op,
            imp,
            label,
        });
    }

    fn run(self, title: impl Into<String>) -> CaseResult {
        let measured = self.set.run();
        let result = CaseResult {
            title: title.into(),
            rows: self.rows.into_iter().zip(measured).collect(),
        };
        result.print();
        result
    }
}

impl CaseResult {
    fn get(&self, format: &str, op: &str, imp: Imp) -> Option<&Measured> {
        self.rows
            .iter()
            .find(|(r, _)| r.format == format && r.op == op && r.imp == imp)
            .map(|(_, m)| m)
    }

    fn print(&self) {
        println!("\n## {}\n", self.title);
        println!("| format | operation | implementation | median ns/op | ratio to ours | allocs/op | allocated bytes/op |");
        println!("|---|---|---|---:|---:|---:|---:|");
        for (row, m) in &self.rows {
            let ratio = self
                .get(row.format, row.op, Imp::Ours)
                .map(|ours| format!("{:.2}x", m.median_ns / ours.median_ns))
                .unwrap_or_default();
            let count = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
            println!(
                "| {} | {} | {} | {:.0} | {} | {} | {} |",
                row.format,
                row.op,
                row.label,
                m.median_ns,
                ratio,
                count(m.allocs_per_op),
                count(m.bytes_per_op).trim_end_matches(".0"),
            );
        }
    }
}

/// Whether `inner` lies within `outer`'s memory.
fn points_into(inner: &[u8], outer: &[u8]) -> bool {
    let (start, end) = (
        outer.as_ptr() as usize,
        outer.as_ptr() as usize + outer.len(),
    );
    let p = inner.as_ptr() as usize;
    p >= start && p + inner.len() <= end
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "NO"
    }
}

// ---------------------------------------------------------------------------
// The cases.

struct Settings {
    rounds: usize,
    batch: Duration,
    rounds_big: usize,
    batch_big: Duration,
}

fn case_small(s: &Settings) -> CaseResult {
    let small = Small {
        a: 1,
        b: "hello".into(),
    };
    let limits = limits();
    let json_wire = Wire::of(&ours_encode_new(&JsonParser, &small));
    assert_eq!(
        json_wire.first_bytes(),
        br#"2["message",{"a":1,"b":"hello"}]"#
    );
    assert_eq!(
        sx_bytes(&sx_encode(CommonParser, &small)),
        json_wire.first_bytes()
    );
    let json_sx = SxWire::of(&json_wire);
    let json_floor = &json_wire.first_bytes()[1..];
    let mp_wire = Wire::of(&ours_encode_new(&MsgPackParser, &small));
    let mp_sx = SxWire::of(&mp_wire);
    let mp_floor = rmp_serde::to_vec_named(&("message", &small)).unwrap();
    // Both decoders read both encoders' output.
    let sx_mp = Wire {
        first: Message::Binary(Bytes::copy_from_slice(sx_bytes(&sx_encode(
            SxMsgPackParser,
            &small,
        )))),
        attachments: Vec::new(),
    };
    let mut mp_decoder = MsgPackParserDecoder::default();
    assert_eq!(
        ours_typed::<Small>(&ours_decode(
            &MsgPackParser,
            &mut mp_decoder,
            &sx_mp,
            &limits
        )),
        small
    );
    let state = ParserState::default();
    assert_eq!(
        sx_typed::<_, Small>(SxMsgPackParser, sx_decode(SxMsgPackParser, &state, &mp_sx)),
        small
    );
    assert_eq!(
        sx_typed::<_, Small>(CommonParser, sx_decode(CommonParser, &state, &json_sx)),
        small
    );

    let mut c = Case::new(s.rounds, s.batch);
    let small = &small;
    let limits = &limits;
    for (format, wire, sx_wire) in [(JSON, &json_wire, &json_sx), (MSGPACK, &mp_wire, &mp_sx)] {
        let json = format == JSON;
        let mut out = Encoded::default();
        c.add(
            format,
            ENCODE,
            Imp::Ours,
            "ours (reused Encoded)",
            move || {
                if json {
                    ours_encode(&JsonParser, &mut out, small)
                } else {
                    ours_encode(&MsgPackParser, &mut out, small)
                }
            },
        );
        let mut scratch = Encoded::default();
        c.add(
            format,
            ENCODE,
            Imp::OursEmit,
            "ours emit path (scratch, split, messages)",
            move || {
                keep(if json {
                    ours_emit(&JsonParser, &mut scratch, small)
                } else {
                    ours_emit(&MsgPackParser, &mut scratch, small)
                });
            },
        );
        c.add(
            format,
            ENCODE,
            Imp::OursNew,
            "ours (new Encoded)",
            move || {
                keep(if json {
                    ours_encode_new(&JsonParser, small)
                } else {
                    ours_encode_new(&MsgPackParser, small)
                });
            },
        );
        c.add(
            format,
            ENCODE,
            Imp::Socketioxide,
            "socketioxide",
            move || {
                keep(if json {
                    sx_encode(CommonParser, small)
                } else {
                    sx_encode(SxMsgPackParser, small)
                });
            },
        );
        let mut buf = Vec::with_capacity(64);
        if json {
            c.add(
                format,
                ENCODE,
                Imp::Floor,
                "serde_json (floor, reused Vec)",
                move || {
                    buf.clear();
                    serde_json::to_writer(&mut buf, &("message", small)).unwrap();
                    keep(&buf);
                },
            );
        } else {
            c.add(
                format,
                ENCODE,
                Imp::Floor,
                "rmp-serde (floor, reused Vec)",
                move || {
                    buf.clear();
                    rmp_serde::encode::write_named(&mut buf, &("message", small)).unwrap();
                    keep(&buf);
                },
            );
        }

        let mut jd = JsonParserDecoder::default();
        let mut md = MsgPackParserDecoder::default();
        c.add(format, DECODE, Imp::Ours, "ours", move || {
            keep(if json {
                ours_decode(&JsonParser, &mut jd, wire, limits)
            } else {
                ours_decode(&MsgPackParser, &mut md, wire, limits)
            });
        });
        let state = ParserState::default();
        c.add(
            format,
            DECODE,
            Imp::Socketioxide,
            "socketioxide",
            move || {
                keep(if json {
                    sx_decode(CommonParser, &state, sx_wire)
                } else {
                    sx_decode(SxMsgPackParser, &state, sx_wire)
                });
            },
        );
        if json {
            c.add(
                format,
                DECODE,
                Imp::FloorValue,
                "serde_json → serde_json::Value (floor)",
                move || {
                    keep(serde_json::from_slice::<serde_json::Value>(json_floor).unwrap());
                },
            );
        } else {
            let mp_floor = &mp_floor;
            c.add(
                format,
                DECODE,
                Imp::FloorValue,
                "rmp-serde → serde_json::Value (floor)",
                move || {
                    keep(rmp_serde::from_slice::<serde_json::Value>(mp_floor).unwrap());
                },
            );
        }

        let mut jd = JsonParserDecoder::default();
        let mut md = MsgPackParserDecoder::default();
        c.add(format, TYPED, Imp::Ours, "ours", move || {
            keep(if json {
                ours_typed::<Small>(&ours_decode(&JsonParser, &mut jd, wire, limits))
            } else {
                ours_typed::<Small>(&ours_decode(&MsgPackParser, &mut md, wire, limits))
            });
        });
        let state = ParserState::default();
        c.add(
            format,
            TYPED,
            Imp::Socketioxide,
            "socketioxide",
            move || {
                keep(if json {
                    sx_typed::<_, Small>(CommonParser, sx_decode(CommonParser, &state, sx_wire))
                } else {
                    sx_typed::<_, Small>(
                        SxMsgPackParser,
                        sx_decode(SxMsgPackParser, &state, sx_wire),
                    )
                });
            },
        );
        if json {
            c.add(
                format,
                TYPED,
                Imp::Floor,
                "serde_json → (String, Small) (floor)",
                move || {
                    keep(serde_json::from_slice::<(String, Small)>(json_floor).unwrap());
                },
            );
        } else {
            let mp_floor = &mp_floor;
            c.add(
                format,
                TYPED,
                Imp::Floor,
                "rmp-serde → (String, Small) (floor)",
                move || {
                    keep(rmp_serde::from_slice::<(String, Small)>(mp_floor).unwrap());
                },
            );
        }
    }
    c.run("(a) small event `[\"message\",{\"a\":1,\"b\":\"hello\"}]`")
}

/// What the attachment cases found about copies.
struct Sharing {
    lines: Vec<(String, bool)>,
}

/// Cases (b) and (b2): `count` attachments of `size` bytes, sent as one
/// argument (`Binary` alone for one attachment, an array otherwise).
fn case_binary(s: &Settings, title: &str, count: usize, size: usize) -> (CaseResult, Sharing) {
    let blobs: Vec<Bytes> = (0..count)
        .map(|i| Bytes::from(vec![i as u8; size]))
        .collect();
    let binaries: Vec<Binary> = blobs.iter().cloned().map(Binary).collect();
    let one = count == 1;
    let limits = limits();
    let mut sharing = Sharing { lines: Vec::new() };

    // The argument: one binary, or an array of them.
    macro_rules! with_args {
        ($blobs:expr, $binaries:expr, |$bytes:ident, $bin:ident| $body:expr) => {
            if one {
                let $bytes = &$blobs[0];
                let $bin = &$binaries[0];
                $body
            } else {
                let $bytes = $blobs;
                let $bin = $binaries;
                $body
            }
        };
    }

    let json_out = with_args!(&blobs, &binaries, |_b, bin| ours_encode_new(
        &JsonParser,
        bin
    ));
    assert_eq!(json_out.attachments.len(), count);
    let shared = json_out
        .attachments
        .iter()
        .zip(&blobs)
        .filter(|(a, b)| a.as_ptr() == b.as_ptr())
        .count();
    sharing.lines.push((
        format!(
            "JSON encode (Binary): attachments that are the caller's buffers: {shared}/{count}"
        ),
        shared == count,
    ));
    let json_wire = Wire::of(&json_out);
    let sx_text = with_args!(&blobs, &binaries, |b, _bin| sx_encode(CommonParser, b));
    assert_eq!(sx_bytes(&sx_text), json_wire.first_bytes());
    let json_sx = SxWire::of(&json_wire);
    let mp_wire = Wire::of(&with_args!(&blobs, &binaries, |_b, bin| ours_encode_new(
        &MsgPackParser,
        bin
    )));
    let mp_sx = SxWire::of(&mp_wire);
    let mp_floor = with_args!(&blobs, &binaries, |b, _bin| rmp_serde::to_vec_named(&(
        "message", b
    ))
    .unwrap());

    // Sharing on decode: ours keeps the received buffers.
    let mut jd = JsonParserDecoder::default();
    let packet = ours_decode(&JsonParser, &mut jd, &json_wire, &limits);
    let args = args_of(&packet);
    let kept = args
        .attachments()
        .iter()
        .zip(&json_wire.attachments)
        .filter(|(a, b)| a.as_ptr() == b.as_ptr())
        .count();
    sharing.lines.push((
        format!("JSON decode: attachments kept as the received messages: {kept}/{count}"),
        kept == count,
    ));
    let typed: Vec<Binary> = if one {
        vec![ours_typed::<(Binary,)>(&packet).0]
    } else {
        ours_typed::<Vec<Binary>>(&packet)
    };
    let kept = typed
        .iter()
        .zip(&json_wire.attachments)
        .filter(|(a, b)| a.as_ptr() == b.as_ptr() && a.len() == b.len())
        .count();
    sharing.lines.push((
        format!("JSON decode+typed into Binary: the received messages themselves: {kept}/{count}"),
        kept == count,
    ));
    let mut md = MsgPackParserDecoder::default();
    let packet = ours_decode(&MsgPackParser, &mut md, &mp_wire, &limits);
    let typed: Vec<Binary> = if one {
        vec![ours_typed::<(Binary,)>(&packet).0]
    } else {
        ours_typed::<Vec<Binary>>(&packet)
    };
    assert_eq!(typed.len(), count);
    let kept = typed
        .iter()
        .filter(|b| points_into(b, mp_wire.first_bytes()))
        .count();
    sharing.lines.push((
        format!(
            "MessagePack decode+typed into Binary: slices of the received message: {kept}/{count}"
        ),
        kept == count,
    ));
    // socketioxide, for the record (not a target).
    let state = ParserState::default();
    let sx_typed_bytes: Vec<Bytes> = if one {
        vec![sx_typed::<_, (Bytes,)>(CommonParser, sx_decode(CommonParser, &state, &json_sx)).0]
    } else {
        sx_typed::<_, Vec<Bytes>>(CommonParser, sx_decode(CommonParser, &state, &json_sx))
    };
    assert_eq!(sx_typed_bytes, blobs);
    let sx_kept = sx_typed_bytes
        .iter()
        .zip(&json_wire.attachments)
        .filter(|(a, b)| a.as_ptr() == b.as_ptr())
        .count();
    let sx_mp: Vec<Bytes> = if one {
        vec![sx_typed::<_, (Bytes,)>(SxMsgPackParser, sx_decode(SxMsgPackParser, &state, &mp_sx)).0]
    } else {
        sx_typed::<_, Vec<Bytes>>(SxMsgPackParser, sx_decode(SxMsgPackParser, &state, &mp_sx))
    };
    assert_eq!(sx_mp, blobs);

    let mut c = Case::new(s.rounds, s.batch);
    let (blobs, binaries, limits) = (&blobs, &binaries, &limits);
    let mp_floor = &mp_floor;
    let memcpy_label = if one {
        format!("memcpy {} KiB (floor)", size / 1024)
    } else {
        format!("memcpy {count} × {} KiB (floor)", size / 1024)
    };
    for (format, wire, sx_wire) in [(JSON, &json_wire, &json_sx), (MSGPACK, &mp_wire, &mp_sx)] {
        let json = format == JSON;
        macro_rules! ours {
            ($f:ident, $($a:expr),*) => {
                if json { $f(&JsonParser, $($a),*) } else { $f(&MsgPackParser, $($a),*) }
            };
        }
        let mut out = Encoded::default();
        c.add(
            format,
            ENCODE,
            Imp::Ours,
            "ours (Binary, reused Encoded)",
            move || with_args!(blobs, binaries, |_b, bin| ours!(ours_encode, &mut out, bin)),
        );
        let mut scratch = Encoded::default();
        c.add(
            format,
            ENCODE,
            Imp::OursEmit,
            "ours emit path (Binary)",
            move || {
                keep(with_args!(blobs, binaries, |_b, bin| ours!(
                    ours_emit,
                    &mut scratch,
                    bin
                )));
            },
        );
        let mut out = Encoded::default();
        c.add(
            format,
            ENCODE,
            Imp::OursBytes,
            "ours (Bytes, reused Encoded)",
            move || with_args!(blobs, binaries, |b, _bin| ours!(ours_encode, &mut out, b)),
        );
        c.add(
            format,
            ENCODE,
            Imp::Socketioxide,
            "socketioxide (Bytes)",
            move || {
                keep(with_args!(blobs, binaries, |b, _bin| if json {
                    sx_encode(CommonParser, b)
                } else {
                    sx_encode(SxMsgPackParser, b)
                }));
            },
        );
        if !json {
            let mut buf = Vec::with_capacity(mp_floor.len());
            c.add(
                format,
                ENCODE,
                Imp::Floor,
                "rmp-serde (floor, reused Vec)",
                move || {
                    buf.clear();
                    with_args!(blobs, binaries, |b, _bin| rmp_serde::encode::write_named(
                        &mut buf,
                        &("message", b)
                    ))
                    .unwrap();
                    keep(&buf);
                },
            );
        }
        c.add(
            format,
            ENCODE,
            Imp::Memcpy,
            memcpy_label.clone(),
            move || {
                for b in blobs {
                    keep(Bytes::copy_from_slice(b));
                }
            },
        );

        let mut jd = JsonParserDecoder::default();
        let mut md = MsgPackParserDecoder::default();
        c.add(format, DECODE, Imp::Ours, "ours", move || {
            keep(if json {
                ours_decode(&JsonParser, &mut jd, wire, limits)
            } else {
                ours_decode(&MsgPackParser, &mut md, wire, limits)
            });
        });
        let state = ParserState::default();
        c.add(
            format,
            DECODE,
            Imp::Socketioxide,
            "socketioxide",
            move || {
                keep(if json {
                    sx_decode(CommonParser, &state, sx_wire)
                } else {
                    sx_decode(SxMsgPackParser, &state, sx_wire)
                });
            },
        );
        c.add(
            format,
            DECODE,
            Imp::Memcpy,
            memcpy_label.clone(),
            move || {
                for b in blobs {
                    keep(Bytes::copy_from_slice(b));
                }
            },
        );

        let mut jd = JsonParserDecoder::default();
        let mut md = MsgPackParserDecoder::default();
        c.add(format, TYPED, Imp::Ours, "ours (into Binary)", move || {
            let packet = if json {
                ours_decode(&JsonParser, &mut jd, wire, limits)
            } else {
                ours_decode(&MsgPackParser, &mut md, wire, limits)
            };
            if one {
                keep(ours_typed::<(Binary,)>(&packet));
            } else {
                keep(ours_typed::<Vec<Binary>>(&packet));
            }
        });
        let mut jd = JsonParserDecoder::default();
        let mut md = MsgPackParserDecoder::default();
        c.add(
            format,
            TYPED,
            Imp::OursBytes,
            "ours (into Bytes)",
            move || {
                let packet = if json {
                    ours_decode(&JsonParser, &mut jd, wire, limits)
                } else {
                    ours_decode(&MsgPackParser, &mut md, wire, limits)
                };
                if one {
                    keep(ours_typed::<(Bytes,)>(&packet));
                } else {
                    keep(ours_typed::<Vec<Bytes>>(&packet));
                }
            },
        );
        let state = ParserState::default();
        c.add(
            format,
            TYPED,
            Imp::Socketioxide,
            "socketioxide (into Bytes)",
            move || {
                fn typed<P: Parse + Copy>(p: P, state: &ParserState, w: &SxWire, one: bool) {
                    let packet = sx_decode(p, state, w);
                    if one {
                        keep(sx_typed::<_, (Bytes,)>(p, packet));
                    } else {
                        keep(sx_typed::<_, Vec<Bytes>>(p, packet));
                    }
                }
                if json {
                    typed(CommonParser, &state, sx_wire, one)
                } else {
                    typed(SxMsgPackParser, &state, sx_wire, one)
                }
            },
        );
        if !json {
            c.add(
                format,
                TYPED,
                Imp::Floor,
                "rmp-serde → Bytes (floor)",
                move || {
                    if one {
                        keep(rmp_serde::from_slice::<(String, Bytes)>(mp_floor).unwrap());
                    } else {
                        keep(rmp_serde::from_slice::<(String, Vec<Bytes>)>(mp_floor).unwrap());
                    }
                },
            );
        }
        c.add(
            format,
            TYPED,
            Imp::Memcpy,
            memcpy_label.clone(),
            move || {
                for b in blobs {
                    keep(Bytes::copy_from_slice(b));
                }
            },
        );
    }
    let result = c.run(title);
    for (line, ok) in &sharing.lines {
        println!("- shared, not copied: {line}: {}", yes(*ok));
    }
    println!(
        "- for the record, socketioxide JSON decode+typed into Bytes keeps {sx_kept}/{count} received buffers"
    );
    (result, sharing)
}

fn case_big(s: &Settings) -> CaseResult {
    let big = big_payload();
    let limits = limits();
    let json_wire = Wire::of(&ours_encode_new(&JsonParser, &big));
    let json_sx = SxWire::of(&json_wire);
    let json_floor = &json_wire.first_bytes()[1..];
    let mp_wire = Wire::of(&ours_encode_new(&MsgPackParser, &big));
    let mp_sx = SxWire::of(&mp_wire);
    let mp_floor = rmp_serde::to_vec_named(&("message", &big)).unwrap();
    let mut jd = JsonParserDecoder::default();
    assert_eq!(
        ours_typed::<Vec<Item>>(&ours_decode(&JsonParser, &mut jd, &json_wire, &limits)),
        big
    );
    let mut md = MsgPackParserDecoder::default();
    assert_eq!(
        ours_typed::<Vec<Item>>(&ours_decode(&MsgPackParser, &mut md, &mp_wire, &limits)),
        big
    );
    let title = format!(
        "(c) event with {} KiB of JSON ({} KiB as MessagePack)",
        json_wire.first_bytes().len() / 1024,
        mp_wire.first_bytes().len() / 1024
    );

    let mut c = Case::new(s.rounds_big, s.batch_big);
    let (big, limits) = (&big, &limits);
    let mp_floor = &mp_floor;
    for (format, wire, sx_wire) in [(JSON, &json_wire, &json_sx), (MSGPACK, &mp_wire, &mp_sx)] {
        let json = format == JSON;
        let mut out = Encoded::default();
        c.add(
            format,
            ENCODE,
            Imp::Ours,
            "ours (reused Encoded)",
            move || {
                if json {
                    ours_encode(&JsonParser, &mut out, big)
                } else {
                    ours_encode(&MsgPackParser, &mut out, big)
                }
            },
        );
        c.add(
            format,
            ENCODE,
            Imp::OursNew,
            "ours (new Encoded)",
            move || {
                keep(if json {
                    ours_encode_new(&JsonParser, big)
                } else {
                    ours_encode_new(&MsgPackParser, big)
                });
            },
        );
        c.add(
            format,
            ENCODE,
            Imp::Socketioxide,
            "socketioxide",
            move || {
                keep(if json {
                    sx_encode(CommonParser, big)
                } else {
                    sx_encode(SxMsgPackParser, big)
                });
            },
        );
        let mut buf = Vec::with_capacity(json_floor.len() + mp_floor.len());
        c.add(
            format,
            ENCODE,
            Imp::Floor,
            "serde_json / rmp-serde (floor, reused Vec)",
            move || {
                buf.clear();
                if json {
                    serde_json::to_writer(&mut buf, &("message", big)).unwrap();
                } else {
                    rmp_serde::encode::write_named(&mut buf, &("message", big)).unwrap();
                }
                keep(&buf);
            },
        );

        let mut jd = JsonParserDecoder::default();
        let mut md = MsgPackParserDecoder::default();
        c.add(format, DECODE, Imp::Ours, "ours", move || {
            keep(if json {
                ours_decode(&JsonParser, &mut jd, wire, limits)
            } else {
                ours_decode(&MsgPackParser, &mut md, wire, limits)
            });
        });
        let state = ParserState::default();
        c.add(
            format,
            DECODE,
            Imp::Socketioxide,
            "socketioxide",
            move || {
                keep(if json {
                    sx_decode(CommonParser, &state, sx_wire)
                } else {
                    sx_decode(SxMsgPackParser, &state, sx_wire)
                });
            },
        );

        let mut jd = JsonParserDecoder::default();
        let mut md = MsgPackParserDecoder::default();
        c.add(format, TYPED, Imp::Ours, "ours", move || {
            keep(if json {
                ours_typed::<Vec<Item>>(&ours_decode(&JsonParser, &mut jd, wire, limits))
            } else {
                ours_typed::<Vec<Item>>(&ours_decode(&MsgPackParser, &mut md, wire, limits))
            });
        });
        let state = ParserState::default();
        c.add(
            format,
            TYPED,
            Imp::Socketioxide,
            "socketioxide",
            move || {
                keep(if json {
                    sx_typed::<_, Vec<Item>>(CommonParser, sx_decode(CommonParser, &state, sx_wire))
                } else {
                    sx_typed::<_, Vec<Item>>(
                        SxMsgPackParser,
                        sx_decode(SxMsgPackParser, &state, sx_wire),
                    )
                });
            },
        );
        c.add(
            format,
            TYPED,
            Imp::Floor,
            "serde_json / rmp-serde → (String, Vec<Item>) (floor)",
            move || {
                if json {
                    keep(serde_json::from_slice::<(String, Vec<Item>)>(json_floor).unwrap());
                } else {
                    keep(rmp_serde::from_slice::<(String, Vec<Item>)>(mp_floor).unwrap());
                }
            },
        );
    }
    c.run(title)
}

// ---------------------------------------------------------------------------
// Targets.

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// "small events at most 0.5x socketioxide's time and within 2x of plain
/// serde_json", per format and operation.
fn small_targets(small: &CaseResult) {
    for format in [JSON, MSGPACK] {
        let floor_name = if format == JSON {
            "serde_json"
        } else {
            "rmp-serde"
        };
        for op in [ENCODE, DECODE, TYPED] {
            let (Some(ours), Some(sx)) = (
                small.get(format, op, Imp::Ours),
                small.get(format, op, Imp::Socketioxide),
            ) else {
                continue;
            };
            // Decode alone has no typed result: its floor is the same
            // typed parse as decode+typed, the cheapest complete decode.
            let floor_op = if op == DECODE { TYPED } else { op };
            let floor = small.get(format, floor_op, Imp::Floor).unwrap();
            let vs_sx = ours.median_ns / sx.median_ns;
            let vs_floor = ours.median_ns / floor.median_ns;
            let emit = small
                .get(format, op, Imp::OursEmit)
                .map(|e| {
                    format!(
                        "; emit path {:.0} ns = {:.2}x socketioxide, {:.2}x {floor_name}",
                        e.median_ns,
                        e.median_ns / sx.median_ns,
                        e.median_ns / floor.median_ns
                    )
                })
                .unwrap_or_default();
            println!(
                "- small event, {format} {op}: {} — ours {:.0} ns = {:.2}x socketioxide ({:.0} ns; target ≤ 0.5x: {}), {:.2}x plain {floor_name} {} ({:.0} ns; target ≤ 2x: {}){emit}",
                met(vs_sx <= 0.5 && vs_floor <= 2.0),
                ours.median_ns,
                vs_sx,
                sx.median_ns,
                met(vs_sx <= 0.5),
                vs_floor,
                floor_op,
                floor.median_ns,
                met(vs_floor <= 2.0),
            );
        }
    }
}

/// "binary attachments never copied": ours with `Binary` shares buffers
/// (pointer checks) and allocates far less than the attachments' size.
fn binary_targets(cases: &[(CaseResult, Sharing, usize)]) {
    for (case, sharing, total) in cases {
        let name = case.title.split(')').next().unwrap_or("").to_owned() + ")";
        for op in [ENCODE, DECODE, TYPED] {
            let ours = case.get(JSON, op, Imp::Ours).unwrap();
            let bytes = ours.bytes_per_op.unwrap_or(f64::NAN);
            // A copy would allocate at least the attachments' size.
            let no_copy = bytes < *total as f64 / 2.0;
            let sx = case.get(JSON, op, Imp::Socketioxide).unwrap();
            let memcpy = case.get(JSON, op, Imp::Memcpy).unwrap();
            println!(
                "- attachments {name}, JSON {op} (Binary): {} — allocated {bytes:.0} B/op for {total} B of attachments; {:.0} ns = {:.2}x socketioxide ({:.0} ns, {:.0} B/op), {:.2}x memcpy ({:.0} ns)",
                met(no_copy),
                ours.median_ns,
                ours.median_ns / sx.median_ns,
                sx.median_ns,
                sx.bytes_per_op.unwrap_or(f64::NAN),
                ours.median_ns / memcpy.median_ns,
                memcpy.median_ns,
            );
        }
        let mp = case.get(MSGPACK, TYPED, Imp::Ours).unwrap();
        println!(
            "- attachments {name}, MessagePack decode+typed (Binary): {} — allocated {:.0} B/op for {total} B of binary (encode must copy: MessagePack carries binary inline)",
            met(mp.bytes_per_op.unwrap_or(f64::NAN) < *total as f64 / 2.0),
            mp.bytes_per_op.unwrap_or(f64::NAN),
        );
        for (line, ok) in &sharing.lines {
            println!("- attachments {name}, pointer check: {line}: {}", met(*ok));
        }
    }
}

/// One operation, `iterations` times and nothing else: for
/// `valgrind --tool=callgrind` or `perf record` (`-- --profile NAME [N]`).
/// The small event in each format (CBOR too), and for JSON and
/// MessagePack 16 attachments of 1 KiB (`-bin`) and 64 items of case
/// (c)'s shape (`-items`).
fn profile(name: &str, iterations: u64) {
    let small = Small {
        a: 1,
        b: "hello".into(),
    };
    let limits = limits();
    let json_wire = Wire::of(&ours_encode_new(&JsonParser, &small));
    let json_sx = SxWire::of(&json_wire);
    let json_floor = &json_wire.first_bytes()[1..];
    let mp_wire = Wire::of(&ours_encode_new(&MsgPackParser, &small));
    let mp_sx = SxWire::of(&mp_wire);
    let mp_floor = rmp_serde::to_vec_named(&("message", &small)).unwrap();
    let cbor_wire = Wire::of(&ours_encode_new(&CborParser, &small));
    // Case (b2): 16 attachments of 1 KiB, shared, not copied.
    let binaries: Vec<Binary> = (0..16u8)
        .map(|i| Binary(Bytes::from(vec![i; 1024])))
        .collect();
    let json_bin_wire = Wire::of(&ours_encode_new(&JsonParser, &binaries));
    let mp_bin_wire = Wire::of(&ours_encode_new(&MsgPackParser, &binaries));
    // A medium JSON argument (64 items): the validation and number paths.
    let items: Vec<Item> = big_payload().into_iter().take(64).collect();
    let json_items_wire = Wire::of(&ours_encode_new(&JsonParser, &items));
    let mp_items_wire = Wire::of(&ours_encode_new(&MsgPackParser, &items));
    let mut out = Encoded::default();
    let mut buf = Vec::with_capacity(64);
    let mut jd = JsonParserDecoder::default();
    let mut md = MsgPackParserDecoder::default();
    let mut cd = CborParserDecoder::default();
    let state = ParserState::default();
    let mut op: Box<dyn FnMut() + '_> = match name {
        "json-encode-bin" => Box::new(|| ours_encode(&JsonParser, &mut out, &binaries)),
        "json-typed-bin" => Box::new(|| {
            keep(ours_typed::<Vec<Binary>>(&ours_decode(
                &JsonParser,
                &mut jd,
                &json_bin_wire,
                &limits,
            )));
        }),
        "mp-encode-bin" => Box::new(|| ours_encode(&MsgPackParser, &mut out, &binaries)),
        "mp-typed-bin" => Box::new(|| {
            keep(ours_typed::<Vec<Binary>>(&ours_decode(
                &MsgPackParser,
                &mut md,
                &mp_bin_wire,
                &limits,
            )));
        }),
        "json-encode-items" => Box::new(|| ours_encode(&JsonParser, &mut out, &items)),
        "json-typed-items" => Box::new(|| {
            keep(ours_typed::<Vec<Item>>(&ours_decode(
                &JsonParser,
                &mut jd,
                &json_items_wire,
                &limits,
            )));
        }),
        "mp-encode-items" => Box::new(|| ours_encode(&MsgPackParser, &mut out, &items)),
        "mp-typed-items" => Box::new(|| {
            keep(ours_typed::<Vec<Item>>(&ours_decode(
                &MsgPackParser,
                &mut md,
                &mp_items_wire,
                &limits,
            )));
        }),
        "cbor-encode" => Box::new(|| ours_encode(&CborParser, &mut out, &small)),
        "cbor-decode" => Box::new(|| {
            keep(ours_decode(&CborParser, &mut cd, &cbor_wire, &limits));
        }),
        "cbor-typed" => Box::new(|| {
            keep(ours_typed::<Small>(&ours_decode(
                &CborParser,
                &mut cd,
                &cbor_wire,
                &limits,
            )));
        }),
        "json-encode" => Box::new(|| ours_encode(&JsonParser, &mut out, &small)),
        "json-decode" => Box::new(|| {
            keep(ours_decode(&JsonParser, &mut jd, &json_wire, &limits));
        }),
        "json-typed" => Box::new(|| {
            keep(ours_typed::<Small>(&ours_decode(
                &JsonParser,
                &mut jd,
                &json_wire,
                &limits,
            )));
        }),
        "mp-encode" => Box::new(|| ours_encode(&MsgPackParser, &mut out, &small)),
        "mp-decode" => Box::new(|| {
            keep(ours_decode(&MsgPackParser, &mut md, &mp_wire, &limits));
        }),
        "mp-typed" => Box::new(|| {
            keep(ours_typed::<Small>(&ours_decode(
                &MsgPackParser,
                &mut md,
                &mp_wire,
                &limits,
            )));
        }),
        "sx-json-encode" => Box::new(|| {
            keep(sx_encode(CommonParser, &small));
        }),
        "sx-json-decode" => Box::new(|| {
            keep(sx_decode(CommonParser, &state, &json_sx));
        }),
        "sx-json-typed" => Box::new(|| {
            keep(sx_typed::<_, Small>(
                CommonParser,
                sx_decode(CommonParser, &state, &json_sx),
            ));
        }),
        "sx-mp-encode" => Box::new(|| {
            keep(sx_encode(SxMsgPackParser, &small));
        }),
        "sx-mp-decode" => Box::new(|| {
            keep(sx_decode(SxMsgPackParser, &state, &mp_sx));
        }),
        "sx-mp-typed" => Box::new(|| {
            keep(sx_typed::<_, Small>(
                SxMsgPackParser,
                sx_decode(SxMsgPackParser, &state, &mp_sx),
            ));
        }),
        "serde-json-encode" => Box::new(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, &("message", &small)).unwrap();
            keep(&buf);
        }),
        "serde-json-typed" => Box::new(|| {
            keep(serde_json::from_slice::<(String, Small)>(json_floor).unwrap());
        }),
        "rmp-encode" => Box::new(|| {
            buf.clear();
            rmp_serde::encode::write_named(&mut buf, &("message", &small)).unwrap();
            keep(&buf);
        }),
        "rmp-typed" => Box::new(|| {
            keep(rmp_serde::from_slice::<(String, Small)>(&mp_floor).unwrap());
        }),
        _ => panic!("unknown profile {name}: json-{{encode,decode,typed}}, mp-…, cbor-…, {{json,mp}}-{{encode,typed}}-{{bin,items}}, sx-json-…, sx-mp-…, serde-json-{{encode,typed}}, rmp-{{encode,typed}}"),
    };
    // Returned packets are moved several times on the way out of decode.
    eprintln!(
        "size_of: Packet {} B, Args {} B",
        std::mem::size_of::<Packet>(),
        std::mem::size_of::<Args>()
    );
    for _ in 0..iterations {
        op();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        let name = args.get(i + 1).expect("--profile NAME [ITERATIONS]");
        let iterations = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        profile(name, iterations);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            rounds: 5,
            batch: Duration::from_millis(3),
            rounds_big: 3,
            batch_big: Duration::from_millis(10),
        }
    } else {
        Settings {
            rounds: 15,
            batch: Duration::from_millis(20),
            rounds_big: 11,
            batch_big: Duration::from_millis(50),
        }
    };
    assert!(
        CountingAlloc::is_installed(),
        "the counting allocator is the global allocator"
    );
    println!(
        "# Codec benchmark: median of {} interleaved rounds ({} for case c); ratios are to `ours` in the same format and operation",
        settings.rounds, settings.rounds_big
    );
    let small = case_small(&settings);
    let (b, b_sharing) = case_binary(
        &settings,
        "(b) event with one 64 KiB binary attachment",
        1,
        64 * 1024,
    );
    let (b2, b2_sharing) = case_binary(
        &settings,
        "(b2) event with 16 binary attachments of 1 KiB",
        16,
        1024,
    );
    case_big(&settings);

    println!("\n## Targets of issue 6\n");
    small_targets(&small);
    binary_targets(&[(b, b_sharing, 64 * 1024), (b2, b2_sharing, 16 * 1024)]);
}
