//! Counts heap allocations of encoding and decoding a small event with a
//! counting global allocator. The figures are stated in the README; the
//! assertions keep them from growing unnoticed.
//!
//! One `#[test]` only: the counter is process-wide, and the test harness
//! would otherwise run other tests on other threads at the same time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use socketio_core::engine::Message;
use socketio_core::parser::{DecodeLimits, Encoded, JsonParser, OutPacket, Parser};
use socketio_core::socket::PacketData;
use socketio_core::Str;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let r = f();
    (ALLOCATIONS.load(Ordering::Relaxed) - before, r)
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Small {
    a: u32,
    b: String,
}

#[test]
fn allocations_for_a_small_event() {
    allocations_for_a_small_messagepack_event();
    let small = Small {
        a: 1,
        b: "hello".into(),
    };
    let packet = OutPacket::Event {
        nsp: "/",
        event: "message",
        args: &small,
        ack: None,
    };
    let mut out = Encoded::default();
    JsonParser.encode(&packet, &mut out).unwrap(); // warm-up: grows the buffer
    let (encode_allocs, r) = count(|| JsonParser.encode(&packet, &mut out));
    r.unwrap();
    assert_eq!(&out.data[..], br#"2["message",{"a":1,"b":"hello"}]"#);

    let text = Str::from(r#"2["message",{"a":1,"b":"hello"}]"#);
    let limits = DecodeLimits::default();
    let (decode_allocs, decoded) = count(|| {
        let mut decoder = Default::default();
        JsonParser.decode(&mut decoder, Message::Text(text.clone()), &limits)
    });
    let decoded = decoded.unwrap().unwrap();
    let PacketData::Event { args, .. } = &decoded.data else {
        panic!("not an event: {decoded:?}");
    };
    let (typed_allocs, typed) = count(|| args.deserialize::<Small>());
    assert_eq!(typed.unwrap(), small);

    // A binary attachment is kept as the received `Bytes`: no copy.
    let blob = Bytes::from(vec![1u8; 4096]);
    let header = Str::from(r#"51-["message",{"_placeholder":true,"num":0}]"#);
    let mut decoder = Default::default();
    assert!(JsonParser
        .decode(&mut decoder, Message::Text(header), &limits)
        .unwrap()
        .is_none());
    let packet = JsonParser
        .decode(&mut decoder, Message::Binary(blob.clone()), &limits)
        .unwrap()
        .unwrap();
    let PacketData::Event { args, .. } = &packet.data else {
        panic!("not an event");
    };
    let values = args.to_values().unwrap();
    let socketio_core::Value::Binary(received) = &values[0] else {
        panic!("not binary: {values:?}");
    };
    assert_eq!(received.as_ptr(), blob.as_ptr(), "attachment was copied");

    // Encoding `Binary` or `Value::Binary` shares the buffer as the attachment.
    let shared = socketio_core::Binary(blob.clone());
    let mut out = Encoded::default();
    let event = OutPacket::Event {
        nsp: "/",
        event: "file",
        args: &(&shared, socketio_core::Value::Binary(blob.clone())),
        ack: None,
    };
    JsonParser.encode(&event, &mut out).unwrap();
    assert_eq!(out.attachments.len(), 2);
    for attachment in &out.attachments {
        assert_eq!(
            attachment.as_ptr(),
            blob.as_ptr(),
            "attachment was copied on encode"
        );
    }
    // A plain `bytes::Bytes` field is copied once (serde lends only a slice).
    JsonParser
        .encode(
            &OutPacket::Event {
                nsp: "/",
                event: "file",
                args: &(blob.clone(),),
                ack: None,
            },
            &mut out,
        )
        .unwrap();
    assert_ne!(out.attachments[0].as_ptr(), blob.as_ptr());

    println!(
        "allocations: encode {encode_allocs}, decode {decode_allocs}, deserialize {typed_allocs}"
    );
    assert_eq!(encode_allocs, 0, "encode allocated {encode_allocs} times");
    // The one allocation is the test's own first clone of `text`.
    assert!(decode_allocs <= 1, "decode allocated {decode_allocs} times");
    assert!(
        typed_allocs <= 1,
        "deserialize allocated {typed_allocs} times"
    );
}

/// MessagePack decodes the envelope only: the arguments stay in the
/// received buffer until deserialized, binary as slices of it. Called from
/// the one test (see the module documentation).
fn allocations_for_a_small_messagepack_event() {
    use socketio_core::parser::{MsgPackParser, MsgPackParserDecoder};
    let small = Small {
        a: 1,
        b: "hello".into(),
    };
    let packet = OutPacket::Event {
        nsp: "/",
        event: "message",
        args: &small,
        ack: None,
    };
    let mut out = Encoded::default();
    MsgPackParser.encode(&packet, &mut out).unwrap(); // warm-up
    let (encode_allocs, r) = count(|| MsgPackParser.encode(&packet, &mut out));
    r.unwrap();
    let message = Bytes::copy_from_slice(&out.data);
    // Shared first, as a received message is: the first clone of a
    // `Bytes` built from a `Vec` allocates its reference count.
    let _shared = message.clone();
    let limits = DecodeLimits::default();
    let (decode_allocs, decoded) = count(|| {
        MsgPackParser.decode(
            &mut MsgPackParserDecoder::default(),
            Message::Binary(message.clone()),
            &limits,
        )
    });
    let decoded = decoded.unwrap().unwrap();
    let PacketData::Event { name, args, .. } = &decoded.data else {
        panic!("not an event: {decoded:?}");
    };
    assert_eq!(name, "message");
    let (typed_allocs, typed) = count(|| args.deserialize::<Small>());
    assert_eq!(typed.unwrap(), small);

    // Binary deserialized into `Binary` is a slice of the message.
    let blob = socketio_core::Binary(Bytes::from(vec![7u8; 4096]));
    MsgPackParser
        .encode(
            &OutPacket::Event {
                nsp: "/",
                event: "file",
                args: &blob,
                ack: None,
            },
            &mut out,
        )
        .unwrap();
    let message = out.data.split().freeze();
    let packet = MsgPackParser
        .decode(
            &mut MsgPackParserDecoder::default(),
            Message::Binary(message.clone()),
            &limits,
        )
        .unwrap()
        .unwrap();
    let PacketData::Event { args, .. } = &packet.data else {
        panic!("not an event");
    };
    let (binary_allocs, received) = count(|| args.deserialize::<socketio_core::Binary>());
    let received = received.unwrap();
    assert_eq!(received, blob);
    assert!(
        message.as_ptr_range().contains(&received.as_ptr()),
        "binary was copied"
    );

    println!(
        "allocations: encode {encode_allocs}, decode {decode_allocs}, deserialize {typed_allocs}, binary {binary_allocs}"
    );
    assert_eq!(encode_allocs, 0, "encode allocated {encode_allocs} times");
    assert_eq!(decode_allocs, 0, "decode allocated {decode_allocs} times");
    assert!(
        typed_allocs <= 1,
        "deserialize allocated {typed_allocs} times"
    );
    assert_eq!(binary_allocs, 0, "binary allocated {binary_allocs} times");
}
