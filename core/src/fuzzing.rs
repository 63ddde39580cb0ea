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
