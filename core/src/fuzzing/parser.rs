//! The Socket.IO parsers (JSON with attachments, MessagePack, CBOR) over
//! arbitrary message sequences.

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
