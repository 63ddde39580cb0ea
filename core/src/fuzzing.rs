//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the test
//! that replays `fuzz/corpus` on every `cargo test`. Not part of the API.
//!
//! Each function takes arbitrary bytes, drives one decoder with them, and
//! checks invariants that must hold for any input; it panics only when an
//! invariant is broken (that is what the fuzzer looks for).

use bytes::Bytes;

use crate::engine::Message;
use crate::parser::{AnyParser, CborParser, DecodeLimits, JsonParser, MsgPackParser, Parser};
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
            match &packet.data {
                PacketData::Event { name, args, .. } => {
                    assert!(!crate::socket::RESERVED_EVENTS.contains(&&**name));
                    // Whatever was accepted must be readable by the application.
                    let values = args.to_values().expect("accepted args must convert");
                    assert_eq!(values.len(), args.len());
                    let _ = args.deserialize::<Vec<crate::Value>>();
                }
                PacketData::Ack { args, .. } => {
                    let values = args.to_values().expect("accepted args must convert");
                    assert_eq!(values.len(), args.len());
                }
                _ => {}
            }
            // A decoded packet must encode again.
            reencode(&packet);
        }
    }
}

fn reencode(packet: &crate::socket::Packet) {
    use crate::parser::{Encoded, OutPacket};
    let parser = AnyParser::default();
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
        reencode(&packet);
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
