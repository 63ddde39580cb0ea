//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the test
//! that replays `fuzz/corpus` on every `cargo test`. Not part of the API,
//! and not in an ordinary build: it exists with the `fuzzing` feature (the
//! fuzz crate and the corpus replay enable it) and in the crate's unit tests.
//! One entry point per directory of `fuzz/corpus`, of the same name.
//!
//! Each function takes arbitrary bytes, drives one decoder with them, and
//! checks invariants that must hold for any input; it panics only when an
//! invariant is broken (that is what the fuzzer looks for).

mod engine_client;
mod engine_server;

use bytes::Bytes;

use crate::engine::Message;
use crate::parser::{CborParser, DecodeLimits, JsonParser, MsgPackParser, Parser};
use crate::socket::PacketData;
use crate::Str;

/// Split fuzz input into Engine.IO messages: records separated by `0xFF`;
/// a record starting with `B` is binary, others are text when they are
/// valid UTF-8 and binary otherwise.
fn messages(data: &[u8]) -> impl Iterator<Item = Message> + '_ {
    data.split(|&b| b == 0xFF).map(|rec| {
        if let Some(rest) = rec.strip_prefix(b"B") {
            Message::Binary(Bytes::copy_from_slice(rest))
        } else {
            match std::str::from_utf8(rec) {
                Ok(s) => Message::Text(Str::from(s)),
                Err(_) => Message::Binary(Bytes::copy_from_slice(rec)),
            }
        }
    })
}

fn drive<P: Parser>(parser: &P, data: &[u8]) {
    let limits = DecodeLimits::default();
    let mut decoder = P::Decoder::default();
    for message in messages(data) {
        if let Ok(Some(packet)) = parser.decode(&mut decoder, message, &limits) {
            assert!(packet.nsp.starts_with('/'), "namespace without '/'");
            let valid = match &packet.data {
                PacketData::Event { name, args, .. } => {
                    assert!(!crate::socket::RESERVED_EVENTS.contains(&&**name));
                    check_args(args)
                }
                PacketData::Ack { args, .. } => check_args(args),
                _ => true,
            };
            // A decoded packet with valid arguments must encode again.
            if valid {
                reencode(parser, &packet);
            }
        }
    }
}

/// Arguments are either valid, and then readable every way, or invalid
/// (the JSON parser checks them lazily), and then rejected every way.
fn check_args(args: &crate::parser::Args) -> bool {
    // Before `validate`, whose outcome is kept: this is the single pass.
    let read_as_unit = args.deserialize::<()>().is_ok();
    assert_eq!(
        read_as_unit,
        args.validate().is_ok(),
        "deserialize and validate disagree"
    );
    match args.validate() {
        Ok(()) => {
            let values = args.to_values().expect("valid args must convert");
            assert_eq!(values.len(), args.len());
            args.deserialize::<()>()
                .expect("valid args must deserialize into ()");
            let _ = args.deserialize::<Vec<crate::Value>>();
            true
        }
        Err(_) => {
            assert!(args.to_values().is_err(), "invalid args converted");
            assert!(args.deserialize::<()>().is_err(), "invalid args read as ()");
            assert!(
                args.deserialize::<crate::Value>().is_err(),
                "invalid args deserialized"
            );
            assert_eq!(args.len(), 0);
            false
        }
    }
}

fn reencode<P: Parser>(parser: &P, packet: &crate::socket::Packet) {
    use crate::parser::{Encoded, OutPacket};
    let mut out = Encoded::default();
    let nsp = &*packet.nsp;
    let result = match &packet.data {
        PacketData::Connect(data) => parser.encode(
            &OutPacket::Connect {
                nsp,
                data: data.as_ref(),
            },
            &mut out,
        ),
        PacketData::Disconnect => {
            let disconnect: OutPacket<'_, ()> = OutPacket::Disconnect { nsp };
            parser.encode(&disconnect, &mut out)
        }
        PacketData::Event { name, args, ack } => parser.encode(
            &OutPacket::Event {
                nsp,
                event: name,
                args,
                ack: *ack,
            },
            &mut out,
        ),
        PacketData::Ack { id, args } => {
            parser.encode(&OutPacket::Ack { nsp, id: *id, args }, &mut out)
        }
        PacketData::ConnectError(data) => {
            parser.encode(&OutPacket::ConnectError { nsp, data }, &mut out)
        }
    };
    result.expect("a decoded packet must encode");
}

/// The default (JSON + attachments) parser over a message sequence.
pub fn json_parser(data: &[u8]) {
    drive(&JsonParser, data);
}

/// The MessagePack parser over a message sequence.
pub fn msgpack_parser(data: &[u8]) {
    drive(&MsgPackParser, data);
    // Also the whole input as one message, the common case.
    drive_one(&MsgPackParser, data);
}

/// The CBOR parser over a message sequence.
pub fn cbor_parser(data: &[u8]) {
    drive(&CborParser, data);
    drive_one(&CborParser, data);
}

fn drive_one<P: Parser>(parser: &P, data: &[u8]) {
    let limits = DecodeLimits::default();
    let mut decoder = P::Decoder::default();
    if let Ok(Some(packet)) = parser.decode(
        &mut decoder,
        Message::Binary(Bytes::copy_from_slice(data)),
        &limits,
    ) {
        reencode(parser, &packet);
    }
}

/// One Engine.IO packet from a WebSocket text or binary frame; what decodes
/// must encode and decode to the same packet.
pub fn engine_packet(data: &[u8]) {
    use crate::engine::Packet;
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(packet) = Packet::decode_text_bytes(bytes.clone()) {
        let mut out = bytes::BytesMut::new();
        packet.encode_text(&mut out);
        let again = Packet::decode_text_bytes(out.freeze()).expect("re-decode");
        assert_eq!(again, packet);
    }
    let _ = Packet::decode_binary(bytes);
}

/// A python-socketio pub/sub message: what decodes must encode, and the
/// encoding must decode to the same message and encode to the same bytes.
pub fn python_bus(data: &[u8]) {
    use crate::cluster::python::{decode, encode};
    use crate::cluster::BusLimits;
    let limits = BusLimits::default();
    let Ok(message) = decode(data, &limits) else {
        return;
    };
    let encoded = encode(&message).expect("a decoded message must encode");
    // The encoding may be longer (ASCII escapes) and up to two levels
    // deeper (scalar `data` becomes a list; a lone placeholder template
    // gets its argument list back) than the input.
    let relaxed = BusLimits {
        max_message_bytes: usize::MAX,
        max_depth: limits.max_depth + 2,
        ..limits
    };
    let again = decode(&encoded, &relaxed).expect("an encoded message must decode");
    assert_eq!(again, message);
    assert_eq!(encode(&again).expect("re-encode"), encoded);
}

/// A long-polling body; what decodes must encode and decode the same.
pub fn polling_payload(data: &[u8]) {
    use crate::engine::{decode_payload, encode_payload, DEFAULT_MAX_PAYLOAD_PACKETS};
    if let Ok(packets) = decode_payload(Bytes::copy_from_slice(data), DEFAULT_MAX_PAYLOAD_PACKETS) {
        let mut out = bytes::BytesMut::new();
        if encode_payload(&packets, &mut out).is_ok() {
            let again =
                decode_payload(out.freeze(), DEFAULT_MAX_PAYLOAD_PACKETS).expect("re-decode");
            assert_eq!(again, packets);
        }
    }
}

/// A WebSocket byte stream into a server-role connection, fed whole and
/// then byte by byte: both must yield the same messages, errors and
/// outgoing bytes.
pub fn ws_server(data: &[u8]) {
    use crate::ws::{WebSocket, WsConfig};
    let config = WsConfig {
        max_frame_size: 4096,
        max_message_size: 8192,
    };
    let run = |chunk: usize| {
        let mut ws = WebSocket::server(config);
        let mut seen = Vec::new();
        let mut sent = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            ws.receive(piece);
            while let Some(m) = ws.poll_message() {
                seen.push(format!("{m:?}"));
            }
            while let Some(b) = ws.poll_transmit() {
                sent.extend_from_slice(&b);
            }
        }
        ws.receive_eof();
        while let Some(m) = ws.poll_message() {
            seen.push(format!("{m:?}"));
        }
        (seen, sent)
    };
    let whole = run(data.len());
    let bytewise = run(1);
    assert_eq!(whole, bytewise, "chunking changed the outcome");
}

/// An HTTP/1.1 request stream into a server connection, fed whole and then
/// byte by byte: both must yield the same events and errors. Each request
/// is answered so that pipelined ones are parsed too.
pub fn http_server(data: &[u8]) {
    use crate::http::{Limits, Response, ServerConn, ServerEvent};
    let limits = Limits {
        max_head_size: 2048,
        max_headers: 32,
        max_body_size: 4096,
    };
    let run = |chunk: usize| {
        let mut conn = ServerConn::new(limits.clone());
        let mut seen = Vec::new();
        let mut out = bytes::BytesMut::new();
        let mut pieces = data.chunks(chunk.max(1));
        let mut fed = 0;
        loop {
            match conn.poll_request() {
                Ok(Some(ServerEvent::Request(req))) => {
                    seen.push(format!("{:?} {} {:?}", req.method, req.target, req.body));
                    let _ = conn.write_response(&Response::new(200), &mut out);
                }
                Ok(Some(ServerEvent::Upgrade { request, leftover })) => {
                    // What follows the head belongs to the WebSocket: the part
                    // already fed comes back as `leftover`.
                    let rest = leftover.len() + (data.len() - fed);
                    seen.push(format!("upgrade {} {rest}", request.target));
                    break;
                }
                Ok(Some(other)) => seen.push(format!("{other:?}")),
                Ok(None) => match pieces.next() {
                    Some(piece) => {
                        fed += piece.len();
                        conn.feed(piece)
                    }
                    None => {
                        if conn.is_closed() {
                            break;
                        }
                        conn.feed_eof();
                        match conn.poll_request() {
                            Ok(Some(e)) => seen.push(format!("{e:?}")),
                            Ok(None) => {}
                            Err(e) => seen.push(format!("error {e:?}")),
                        }
                        break;
                    }
                },
                Err(e) => {
                    seen.push(format!("error {e:?}"));
                    break;
                }
            }
        }
        seen
    };
    let whole = run(data.len());
    let bytewise = run(1);
    assert_eq!(whole, bytewise, "chunking changed the outcome");
}

/// The Engine.IO server endpoint under arbitrary driver and application
/// operations.
pub fn engine_server(data: &[u8]) {
    engine_server::fuzz_server(data);
}

/// The Engine.IO client endpoint under arbitrary server bytes, time steps
/// and application calls.
pub fn engine_client(data: &[u8]) {
    engine_client::fuzz_client(data);
}

/// A small deterministic generator for fuzzing (splitmix64): the core takes
/// its randomness from the caller, and a fuzz run must be reproducible.
#[derive(Debug, Clone)]
pub struct FuzzRng(u64);

impl FuzzRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> FuzzRng {
        FuzzRng(seed)
    }
}

impl rand_core::RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Reads fuzz input as a sequence of small operations.
struct Ops<'a> {
    data: &'a [u8],
}

impl<'a> Ops<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    /// A length-prefixed chunk (length byte, then up to that many bytes).
    fn chunk(&mut self) -> &'a [u8] {
        let len = self.byte().unwrap_or(0) as usize;
        let len = len.min(self.data.len());
        let (chunk, rest) = self.data.split_at(len);
        self.data = rest;
        chunk
    }
    fn message(&mut self, binary: bool) -> Message {
        let chunk = self.chunk();
        match (binary, std::str::from_utf8(chunk)) {
            (false, Ok(s)) => Message::Text(Str::from(s)),
            _ => Message::Binary(Bytes::copy_from_slice(chunk)),
        }
    }
}

const REASONS: [crate::socket::DisconnectReason; 4] = [
    crate::socket::DisconnectReason::TransportClose,
    crate::socket::DisconnectReason::TransportError,
    crate::socket::DisconnectReason::PingTimeout,
    crate::socket::DisconnectReason::ForcedClose,
];

/// The Socket.IO server state machine fed arbitrary engine-level inputs,
/// time steps and application calls; it must never panic, and once every
/// session is closed and time has passed, no socket may remain.
pub fn socket_server(data: &[u8]) {
    use crate::socket::{Broadcast, RecoveryConfig, Server, ServerConfig, ServerEvent};
    use std::time::{Duration, Instant};

    let config = ServerConfig {
        recovery: data
            .first()
            .map(|b| b & 1 == 1)
            .unwrap_or(false)
            .then(RecoveryConfig::default),
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, JsonParser, Box::new(FuzzRng::new(7)));
    let start = Instant::now();
    let mut now = start;
    let sessions = ["s0", "s1", "s2", "s3"];
    let mut sockets: Vec<Str> = Vec::new();
    let mut ops = Ops { data };
    while let Some(op) = ops.byte() {
        let k = sessions[(op >> 4) as usize % sessions.len()];
        match op % 8 {
            0 => server.handle_engine_open(now, Str::from(k)),
            1 => {
                let m = ops.message(false);
                server.handle_engine_message(now, k, m)
            }
            2 => {
                let m = ops.message(true);
                server.handle_engine_message(now, k, m)
            }
            3 => server.handle_engine_closed(now, k, REASONS[(op >> 3) as usize % 4]),
            4 => {
                now += Duration::from_millis(u64::from(ops.byte().unwrap_or(1)) * 250);
                server.handle_timeout(now);
            }
            5 => {
                let _ = server.broadcast(now, &Broadcast::namespace("/"), "news", &(1, "x"));
            }
            6 => {
                if let Some(s) = sockets.get((op >> 3) as usize % sockets.len().max(1)) {
                    let _ = server.emit_with_ack(now, s, "q", &(), Duration::from_secs(1));
                    let _ = server.join(s, "room");
                }
            }
            _ => {
                if let Some(s) = sockets.get((op >> 3) as usize % sockets.len().max(1)) {
                    let _ = server.disconnect(now, s);
                }
            }
        }
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Connect { socket, .. } => {
                    let _ = server.accept(now, &socket);
                    sockets.push(socket);
                }
                ServerEvent::Event {
                    socket,
                    ack: Some(id),
                    ..
                } => {
                    let _ = server.ack(now, &socket, id, &("ok",));
                }
                ServerEvent::Disconnect { socket, .. } => sockets.retain(|s| *s != socket),
                _ => {}
            }
        }
        while let Some(command) = server.poll_command() {
            if let crate::socket::EngineCommand::Send { eio, message } = command {
                let len = match &message {
                    Message::Text(t) => t.len(),
                    Message::Binary(b) => b.len(),
                };
                server.handle_engine_drained(now, &eio, len);
            }
        }
    }
    for k in sessions {
        server.handle_engine_closed(now, k, crate::socket::DisconnectReason::TransportClose);
    }
    now += Duration::from_secs(3600);
    server.handle_timeout(now);
    while let Some(event) = server.poll_event() {
        if let ServerEvent::Disconnect { socket, .. } = event {
            sockets.retain(|s| *s != socket);
        }
    }
    while server.poll_command().is_some() {}
    assert!(
        sockets.is_empty(),
        "sockets left after every session closed: {sockets:?}"
    );
}

/// The Socket.IO client state machine fed arbitrary server messages, engine
/// opens and closes, time steps and application calls: it must never panic.
pub fn socket_client(data: &[u8]) {
    use crate::engine::Handshake;
    use crate::socket::{Client, ClientConfig};
    use std::time::{Duration, Instant};

    let mut client = Client::new(
        ClientConfig::default(),
        JsonParser,
        Box::new(FuzzRng::new(9)),
    );
    let start = Instant::now();
    let mut now = start;
    let handshake = Handshake {
        sid: Str::from("abc"),
        upgrades: Vec::new(),
        ping_interval: 25_000,
        ping_timeout: 20_000,
        max_payload: 1_000_000,
    };
    let _ = client.connect(now, "/", None);
    let mut ops = Ops { data };
    while let Some(op) = ops.byte() {
        let nsp = ["/", "/custom"][(op >> 4) as usize % 2];
        match op % 8 {
            0 => client.handle_engine_opened(now, &handshake),
            1 => {
                let m = ops.message(false);
                client.handle_message(now, m)
            }
            2 => {
                let m = ops.message(true);
                client.handle_message(now, m)
            }
            3 => client.handle_engine_closed(now, REASONS[(op >> 3) as usize % 4]),
            4 => {
                now += Duration::from_millis(u64::from(ops.byte().unwrap_or(1)) * 250);
                client.handle_timeout(now);
            }
            5 => {
                let _ = client.connect(now, nsp, None);
            }
            6 => {
                let _ = client.emit_with_ack(now, nsp, "q", &(1,), Some(Duration::from_secs(1)));
            }
            _ => {
                let _ = client.disconnect(now, nsp);
            }
        }
        while client.poll_event().is_some() {}
        while client.poll_output().is_some() {}
    }
}

/// The RESP decoder: fed the whole input at once and then byte by byte,
/// it must yield the same values and stop at the same error; recognising
/// pub/sub replies must not panic.
pub fn resp_decoder(data: &[u8]) {
    use crate::cluster::resp::{PubSubReply, RespDecoder, RespLimits};
    // Small limits, so that the fuzzer reaches them.
    let limits = RespLimits {
        max_bulk_len: 1024,
        max_elements: 64,
        max_depth: 4,
        max_line_len: 64,
        max_reply_bytes: 4096,
    };
    let run = |chunk: usize| {
        let mut decoder = RespDecoder::new(limits);
        let mut values = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            decoder.feed(piece);
            loop {
                match decoder.next() {
                    Ok(Some(v)) => {
                        let _ = PubSubReply::from_value(&v);
                        // Debug text: NaN doubles are not equal to themselves.
                        values.push(format!("{v:?}"));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(decoder.next(), Err(e.clone()), "an error must stay");
                        return (values, Some(e));
                    }
                }
            }
        }
        (values, None)
    };
    let whole = run(data.len());
    assert_eq!(whole, run(1), "whole and byte-by-byte feeding disagree");
    assert_eq!(whole, run(7), "whole and chunked feeding disagree");
}

/// The Node adapters' bus messages: every decoder of
/// [`crate::cluster::node`] gets the input; whatever decodes must encode,
/// decode again, and reach a fixed point (the first encoding may differ
/// from the input: key order, number forms, NaN in JSON).
pub fn node_bus(data: &[u8]) {
    use crate::cluster::node::{
        ClassicBroadcast, ClassicChannels, ClassicRequest, ClassicResponse, ShardedMessage,
    };
    use crate::cluster::BusLimits;

    fn stable<T: PartialEq + std::fmt::Debug>(
        decoded: Option<T>,
        encode: impl Fn(&T) -> Bytes,
        decode: impl Fn(&[u8]) -> Option<T>,
    ) {
        let Some(first) = decoded else { return };
        // The first encoding may still change a value: a NaN becomes JSON
        // `null`, which then counts as absent. From the second on, bytes
        // and values must be fixed points.
        let bytes = encode(&first);
        let second = decode(&bytes).expect("an encoded message must decode");
        let bytes = encode(&second);
        let third = decode(&bytes).expect("an encoded message must decode");
        assert_eq!(bytes, encode(&third), "encoding is not stable");
        // NaN is unequal to itself; the bytes above cover it.
        if !format!("{third:?}").contains("NaN") {
            assert_eq!(second, third, "decoding is not stable");
        }
    }

    let limits = BusLimits {
        max_message_bytes: 1 << 20,
        ..BusLimits::default()
    };
    stable(
        ClassicBroadcast::decode(data, &limits).ok(),
        ClassicBroadcast::encode,
        |b| ClassicBroadcast::decode(b, &limits).ok(),
    );
    stable(
        ClassicRequest::decode(data, &limits).ok(),
        ClassicRequest::encode,
        |b| ClassicRequest::decode(b, &limits).ok(),
    );
    stable(
        ClassicResponse::decode(data, &limits).ok(),
        ClassicResponse::encode,
        |b| ClassicResponse::decode(b, &limits).ok(),
    );
    stable(
        ShardedMessage::decode(data, &limits).ok(),
        ShardedMessage::encode,
        |b| ShardedMessage::decode(b, &limits).ok(),
    );
    if let Ok(channel) = std::str::from_utf8(data) {
        let _ = ClassicChannels::default().classify("/", channel);
    }
}

/// The AMQP 0-9-1 decoder ([`crate::cluster::amqp`]): any bytes, fed whole,
/// byte by byte and in chunks, give the same items and error; an error
/// stays; small limits so that the fuzzer reaches them.
pub fn amqp_frame(data: &[u8]) {
    use crate::cluster::amqp::{AmqpDecoder, AmqpLimits};
    let limits = AmqpLimits {
        max_frame_size: 4096,
        max_message_bytes: 512,
        max_table_depth: 4,
    };
    let run = |chunk: usize| {
        let mut decoder = AmqpDecoder::new(limits);
        let mut items = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            decoder.feed(piece);
            assert!(
                decoder.buffered() <= limits.max_frame_size as usize + chunk.max(1),
                "the decoder buffers more than one frame"
            );
            loop {
                match decoder.next() {
                    // Debug text: NaN floats are not equal to themselves.
                    Ok(Some(item)) => items.push(format!("{item:?}")),
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(decoder.next(), Err(e.clone()), "an error must stay");
                        return (items, Some(e));
                    }
                }
            }
        }
        (items, None)
    };
    let whole = run(data.len());
    assert_eq!(whole, run(1), "whole and byte-by-byte feeding disagree");
    assert_eq!(whole, run(7), "whole and chunked feeding disagree");
}

/// The streams adapter's formats ([`crate::cluster::node::streams`]): the
/// input is read three ways. As a stream entry (records separated by
/// `0xFF`, alternately field and value): whatever decodes must encode,
/// decode again and reach a fixed point. As a session value and as an
/// offset: the same. And a restore is fed the entry as a range answer: it
/// must end or ask for more, never panic.
pub fn node_streams(data: &[u8]) {
    use crate::cluster::node::streams::{
        decode_entry, encode_entry, RestoreStep, SessionRestore, StreamId, StreamsConfig,
        StreamsSession,
    };
    use crate::cluster::{BusLimits, StreamEntry};

    let limits = BusLimits {
        max_message_bytes: 1 << 20,
        ..BusLimits::default()
    };
    let records: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let fields: Vec<(Bytes, Bytes)> = records
        .chunks(2)
        .map(|pair| {
            (
                Bytes::copy_from_slice(pair[0]),
                Bytes::copy_from_slice(pair.get(1).copied().unwrap_or_default()),
            )
        })
        .collect();
    for only_plaintext in [false, true] {
        if let Ok(first) = decode_entry(&fields, &limits) {
            // The first encoding may change a value (NaN, key order,
            // binary as JSON with `only_plaintext`); then a fixed point.
            let bytes = encode_entry(&first, only_plaintext);
            let second = decode_entry(&bytes, &limits).expect("an encoded entry must decode");
            let bytes = encode_entry(&second, only_plaintext);
            let third = decode_entry(&bytes, &limits).expect("an encoded entry must decode");
            assert_eq!(
                bytes,
                encode_entry(&third, only_plaintext),
                "entry encoding not stable"
            );
            let _ = second.encode_msgpack();
        }
    }
    if let Ok(session) = StreamsSession::decode(data, &limits) {
        let bytes = session.encode();
        let second =
            StreamsSession::decode(&bytes, &limits).expect("an encoded session must decode");
        assert_eq!(bytes, second.encode(), "session encoding not stable");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = text.parse::<StreamId>() {
            assert_eq!(id.to_string().parse::<StreamId>(), Ok(id));
            if let Some(next) = id.next() {
                assert!(next > id);
            }
        }
    }
    // A restore from the start of time whose session is the whole input
    // and whose ranges answer with the entry.
    let config = StreamsConfig {
        read_count: 1,
        ..StreamsConfig::default()
    };
    let Ok((mut restore, _)) = SessionRestore::start(&config, "/", "p", "0-0", 1, 2, limits, 8)
    else {
        panic!("a valid offset must start a restore");
    };
    let origin = StreamEntry {
        id: Str::from_static("0-0"),
        fields: Vec::new(),
    };
    let mut step = restore.on_range(2, Some(std::slice::from_ref(&origin)), None);
    if step == RestoreStep::Wait {
        step = restore.on_key_taken(1, Some(data));
    }
    let entry = StreamEntry {
        id: Str::from_static("1-0"),
        fields,
    };
    let mut rounds = 0;
    while let RestoreStep::Send(_) = step {
        rounds += 1;
        assert!(rounds <= 200, "a restore must end");
        step = restore.on_range(2, Some(std::slice::from_ref(&entry)), None);
    }
}

/// The ZMTP peer ([`crate::cluster::zmtp`]): the input is what a publisher
/// sends a SUB socket. Whole, byte by byte and in chunks it gives the same
/// events and error; an error stays; the socket never buffers more than a
/// frame within the (small) limits. Every message is also read as a
/// python-socketio ZeroMQ envelope, whose payload must then decode or fail
/// cleanly.
pub fn zmtp_peer(data: &[u8]) {
    use crate::cluster::python::zmq::{unwrap, Unwrapped};
    use crate::cluster::zmtp::{SocketType, ZmtpEvent, ZmtpLimits, ZmtpSocket};
    use crate::cluster::BusLimits;
    let limits = ZmtpLimits {
        max_message_bytes: 512,
        max_parts: 4,
        max_command_bytes: 256,
    };
    let bus = BusLimits::default();
    let run = |chunk: usize| {
        let mut socket = ZmtpSocket::new(SocketType::Sub, Some(b"fuzz"), limits);
        socket.subscribe(b"");
        let mut events = Vec::new();
        let mut error = None;
        for piece in data.chunks(chunk.max(1)) {
            let result = socket.handle_bytes(piece);
            assert!(
                socket.buffered() <= 9 + limits.max_message_bytes as usize,
                "the socket buffers more than one frame"
            );
            while let Some(event) = socket.poll_event() {
                if let ZmtpEvent::Message(parts) = &event {
                    assert!(parts.len() <= limits.max_parts);
                    if let Ok(Unwrapped::Message { payload, .. }) = unwrap(&parts[0], &bus) {
                        let _ = crate::cluster::python::decode(&payload, &bus);
                    }
                }
                events.push(event);
            }
            while socket.poll_transmit().is_some() {}
            if let Err(e) = result {
                assert_eq!(
                    socket.handle_bytes(b"x"),
                    Err(e.clone()),
                    "an error must stay"
                );
                error = Some(e);
                break;
            }
        }
        (events, error)
    };
    let whole = run(data.len());
    assert_eq!(whole, run(1), "whole and byte-by-byte feeding disagree");
    assert_eq!(whole, run(7), "whole and chunked feeding disagree");
}

/// The Kafka codec: the input is cut into response frames (whole and byte
/// by byte, which must agree) and each is read as the response to the
/// request named by the first byte; every record set (a fetch's, or the
/// input itself) is read as record batches, and the values read must
/// survive a round trip through [`crate::cluster::kafka::encode_record_batch`].
pub fn kafka_codec(data: &[u8]) {
    use crate::cluster::kafka::{
        decode_record_batches, decode_response, encode_record_batch, ApiKey, Batch, FrameDecoder,
        KafkaLimits, Response,
    };
    use bytes::{Bytes, BytesMut};
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let api = ApiKey::ALL[usize::from(selector) % ApiKey::ALL.len()];
    // Small limits, so that the fuzzer reaches them.
    let limits = KafkaLimits {
        max_frame_bytes: 4096,
        max_array_len: 64,
        max_string_len: 64,
    };
    let records = |set: &Bytes| {
        let Ok(batches) = decode_record_batches(set, &limits) else {
            return;
        };
        for batch in batches {
            if let Batch::Records { records, .. } = batch {
                let values: Vec<&[u8]> = records
                    .iter()
                    .map(|r| r.value.as_deref().unwrap_or_default())
                    .collect();
                let mut out = BytesMut::new();
                encode_record_batch(&mut out, 0, &values).expect("small values encode");
                let again = decode_record_batches(&out.freeze(), &limits).expect("own batch");
                let [Batch::Records { records: back, .. }] = &again[..] else {
                    panic!("own batch read as {again:?}");
                };
                let back: Vec<&[u8]> = back
                    .iter()
                    .map(|r| r.value.as_deref().unwrap_or_default())
                    .collect();
                assert_eq!(values, back, "record values do not round-trip");
            }
        }
    };
    let run = |chunk: usize| {
        let mut decoder = FrameDecoder::new(limits);
        let mut frames = Vec::new();
        for piece in rest.chunks(chunk.max(1)) {
            decoder.feed(piece);
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => frames.push(Ok(frame)),
                    Ok(None) => break,
                    Err(e) => {
                        frames.push(Err(e));
                        return frames;
                    }
                }
            }
        }
        frames
    };
    let frames = run(rest.len());
    assert_eq!(frames, run(1), "whole and byte-by-byte feeding disagree");
    for frame in frames.into_iter().flatten() {
        if let Ok((_, Response::Fetch(fetch))) = decode_response(api, &frame, &limits) {
            for (_, p) in &fetch.partitions {
                records(&p.records);
            }
        }
    }
    records(&Bytes::copy_from_slice(rest));
}

/// A server of the streams cluster format with recovery on, fed arbitrary
/// engine inputs, application calls and broker answers (stream entries,
/// append answers, range answers, taken keys) in any order, with tokens it
/// asked for or made up; it must never panic, and once every session is
/// closed and the request timeout passed, nothing waits any more (no
/// deadline left).
pub fn streams_seam(data: &[u8]) {
    use crate::cluster::{BusCommand, BusInput, StreamEntry};
    use crate::socket::{
        Broadcast, ClusterConfig, ClusterFormat, RecoveryConfig, Server, ServerConfig, ServerEvent,
    };
    use std::time::{Duration, Instant};

    let config = ServerConfig {
        recovery: Some(RecoveryConfig::default()),
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, JsonParser, Box::new(FuzzRng::new(11)));
    server.enable_cluster(ClusterConfig::new(ClusterFormat::streams()));
    let stream = Str::from_static("socket.io");
    let mut now = Instant::now();
    let sessions = ["s0", "s1", "s2", "s3"];
    let mut sockets: Vec<Str> = Vec::new();
    let mut tokens: Vec<u64> = Vec::new();
    let mut next_id = 1u64;
    let mut ops = Ops { data };
    let entry = |ops: &mut Ops<'_>, next_id: &mut u64| {
        let chunk = ops.chunk();
        let fields = chunk
            .split(|&b| b == 0xFE)
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|pair| {
                (
                    Bytes::copy_from_slice(pair[0]),
                    Bytes::copy_from_slice(pair.get(1).copied().unwrap_or_default()),
                )
            })
            .collect();
        *next_id += u64::from(ops.byte().unwrap_or(1) % 4);
        StreamEntry {
            id: Str::from(format!("{next_id}-0")),
            fields,
        }
    };
    while let Some(op) = ops.byte() {
        let k = sessions[(op >> 4) as usize % sessions.len()];
        let token = |ops: &mut Ops<'_>, tokens: &[u64]| {
            let b = ops.byte().unwrap_or(0);
            match tokens.len() {
                0 => u64::from(b),
                n if b & 0x80 == 0 => tokens[b as usize % n],
                _ => u64::from(b),
            }
        };
        match op % 10 {
            0 => server.handle_engine_open(now, Str::from(k)),
            1 => {
                let m = ops.message(false);
                server.handle_engine_message(now, k, m)
            }
            2 => server.handle_engine_closed(now, k, REASONS[(op >> 3) as usize % 4]),
            3 => {
                now += Duration::from_millis(u64::from(ops.byte().unwrap_or(1)) * 100);
                server.handle_timeout(now);
            }
            4 => {
                let to = Broadcast::namespace("/");
                let to = if op & 0x10 == 0 { to } else { to.to("room") };
                let _ = server.broadcast(now, &to, "news", &(1, "x"));
            }
            5 => {
                if let Some(s) = sockets.get((op >> 3) as usize % sockets.len().max(1)) {
                    let _ = server.emit(now, s, "direct", &());
                    let _ = server.join(s, "room");
                }
            }
            6 => {
                let entry = entry(&mut ops, &mut next_id);
                let input = BusInput::StreamEntry {
                    stream: stream.clone(),
                    entry,
                };
                server.handle_bus(now, input);
            }
            7 => {
                let token = token(&mut ops, &tokens);
                let id = (op & 0x10 == 0).then(|| Str::from(format!("{next_id}-0")));
                server.handle_bus(now, BusInput::StreamAppended { token, id });
            }
            8 => {
                let token = token(&mut ops, &tokens);
                let count = ops.byte().unwrap_or(0) % 4;
                let entries = (op & 0x10 == 0).then(|| {
                    (0..count)
                        .map(|_| entry(&mut ops, &mut next_id))
                        .collect::<Vec<_>>()
                });
                server.handle_bus(now, BusInput::StreamRange { token, entries });
            }
            _ => {
                let token = token(&mut ops, &tokens);
                let value = (op & 0x10 == 0).then(|| Bytes::copy_from_slice(ops.chunk()));
                server.handle_bus(now, BusInput::KeyTaken { token, value });
            }
        }
        while let Some(command) = server.poll_bus() {
            match command {
                BusCommand::StreamAppend { token, .. }
                | BusCommand::StreamRange { token, .. }
                | BusCommand::TakeKey { token, .. } => {
                    tokens.push(token);
                    if tokens.len() > 64 {
                        tokens.remove(0);
                    }
                }
                _ => {}
            }
        }
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Connect { socket, .. } => {
                    let _ = server.accept(now, &socket);
                    sockets.push(socket);
                }
                ServerEvent::Disconnect { socket, .. } => sockets.retain(|s| *s != socket),
                _ => {}
            }
        }
        while server.poll_command().is_some() {}
    }
    for k in sessions {
        server.handle_engine_closed(now, k, REASONS[0]);
    }
    now += Duration::from_secs(600);
    server.handle_timeout(now);
    while server.poll_bus().is_some() {}
    while server.poll_event().is_some() {}
    assert_eq!(server.poll_timeout(), None, "something still waits");
}
