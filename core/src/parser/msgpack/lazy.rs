//! Lazy decoding: one pass reads the envelope (`type`, `nsp`, `id`) and
//! validates the rest without building anything; an EVENT's or ACK's
//! arguments stay as a range of the received bytes.

use bytes::Bytes;

use super::arg_deserializer::MsgPackArgs;
use super::reader::{check_utf8, is_str_marker, MsgPackReader};
use super::token_reader::{bad_payload, read_value, Token, TokenReader};
use crate::parser::{DecodeError, DecodeLimits};
use crate::parser::{Packet, PacketData, RESERVED_EVENTS};
use crate::value::{number_text, Number, Value};
use crate::Str;

/// Whether `name` is one of [`RESERVED_EVENTS`].
fn is_reserved(name: &[u8]) -> bool {
    let reserved = matches!(
        name,
        b"connect"
            | b"connect_error"
            | b"disconnect"
            | b"disconnecting"
            | b"newListener"
            | b"removeListener"
    );
    debug_assert_eq!(
        reserved,
        RESERVED_EVENTS.iter().any(|r| r.as_bytes() == name)
    );
    reserved
}

/// A key of the packet map.
enum EnvelopeKey {
    Type,
    Nsp,
    Data,
    Id,
    Other,
}

/// What the packet's `type` and `id` can be, as [`packet_from_map`] tells
/// them apart.
enum Scalar {
    /// A non-negative integer.
    Uint(u64),
    /// `nil` or `undefined`.
    Null,
    /// Anything else.
    Other,
}

/// Read a `type` or `id` value (any item, checked as [`read_value`] does);
/// positive fixints, the common case, without building a [`Value`].
fn read_scalar(reader: &mut MsgPackReader<'_>, max_depth: usize) -> Result<Scalar, DecodeError> {
    match reader.peek()? {
        marker @ 0x00..=0x7f => {
            reader.pos += 1;
            Ok(Scalar::Uint(u64::from(marker)))
        }
        _ => Ok(match read_value(reader, max_depth)? {
            Value::Number(Number::PosInt(n)) => Scalar::Uint(n),
            Value::Null => Scalar::Null,
            _ => Scalar::Other,
        }),
    }
}

/// What the packet's `data` entry is, and where it starts.
#[derive(Debug, Clone, Copy)]
struct DataSlot {
    /// Where the item starts in the message.
    at: usize,
    kind: DataKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataKind {
    /// `nil` or JavaScript `undefined`: absent.
    Null,
    /// An array of `len` items whose first item starts at `items`.
    Array {
        len: usize,
        items: usize,
    },
    Map,
    Str,
    Other,
}

/// Decode a MessagePack packet reading only its envelope: `type`, `nsp`
/// and `id` are read, the whole message is validated in one pass as
/// [`decode_packet`] would, and an EVENT's or ACK's arguments stay as a
/// range of the received bytes (see [`MsgPackArgs`]).
/// Returns what [`Parser::decode`] does, so the packet is built in place.
#[inline]
pub(super) fn decode_lazy(
    bytes: &Bytes,
    limits: &DecodeLimits,
) -> Result<Option<Packet>, DecodeError> {
    let mut reader = MsgPackReader { buf: bytes, pos: 0 };
    // The packet map is one level above the payload, as in `decode_packet`.
    let limit = limits.max_depth.saturating_add(1);
    let marker = reader.peek()?;
    let entries = match marker {
        0x80..=0x8f => {
            reader.pos += 1;
            usize::from(marker & 0x0f)
        }
        0xde => {
            reader.pos += 1;
            reader.u16()?
        }
        0xdf => {
            reader.pos += 1;
            reader.u32()?
        }
        _ => {
            reader.skip_checked(0, limit)?;
            if reader.remaining() != 0 {
                return Err(bad_payload("trailing bytes after the packet"));
            }
            return Err(DecodeError::InvalidPayload("packet is not a map"));
        }
    };
    if entries > reader.remaining() / 2 {
        return Err(bad_payload("map longer than the message"));
    }
    let (mut packet_type, mut nsp, mut data, mut id) = (None, None, None, None);
    for _ in 0..entries {
        let key = match reader.raw_str() {
            Ok(Some(key)) => key,
            Ok(None) => return Err(bad_payload("map key is not a string")),
            Err(e) => return Err(bad_payload(e)),
        };
        let key = match &bytes[key] {
            b"type" => EnvelopeKey::Type,
            b"nsp" => EnvelopeKey::Nsp,
            b"data" => EnvelopeKey::Data,
            b"id" => EnvelopeKey::Id,
            other => {
                check_utf8(other)?;
                EnvelopeKey::Other
            }
        };
        match key {
            EnvelopeKey::Type => packet_type = Some(read_scalar(&mut reader, limit - 1)?),
            EnvelopeKey::Id => id = Some(read_scalar(&mut reader, limit - 1)?),
            EnvelopeKey::Nsp if bytes.get(reader.pos..reader.pos + 2) == Some(b"\xa1/") => {
                // The main namespace, the common case.
                nsp = Some(Some(reader.pos + 1..reader.pos + 2));
                reader.pos += 2;
            }
            EnvelopeKey::Nsp => {
                let at = reader.pos;
                nsp = Some(reader.str_range()?);
                if nsp == Some(None) {
                    reader.pos = at;
                    reader.skip_checked(1, limit)?;
                }
            }
            EnvelopeKey::Data => {
                let at = reader.pos;
                let marker = reader.peek()?;
                let kind = match marker {
                    0xc0 => DataKind::Null,
                    0xd4 if bytes.get(at + 1) == Some(&0) => DataKind::Null,
                    0x90..=0x9f | 0xdc | 0xdd => {
                        reader.pos += 1;
                        let len = match marker {
                            0xdc => reader.u16()?,
                            0xdd => reader.u32()?,
                            _ => usize::from(marker & 0x0f),
                        };
                        let items = reader.pos;
                        reader.pos = at;
                        DataKind::Array { len, items }
                    }
                    0x80..=0x8f | 0xde | 0xdf => DataKind::Map,
                    _ if is_str_marker(marker) => DataKind::Str,
                    _ => DataKind::Other,
                };
                reader.skip_checked(1, limit)?;
                data = Some(DataSlot { at, kind });
            }
            EnvelopeKey::Other => reader.skip_checked(1, limit)?,
        }
    }
    if reader.remaining() != 0 {
        return Err(bad_payload("trailing bytes after the packet"));
    }

    // The rules of `packet_from_map`, in the same order.
    let packet_type = match packet_type {
        Some(Scalar::Uint(n)) => u8::try_from(n).ok(),
        _ => None,
    }
    .ok_or(DecodeError::UnknownType)?;
    let nsp = match nsp {
        Some(Some(range)) if bytes[range.clone()].starts_with(b"/") => {
            if range.len() == 1 {
                Str::from_static("/")
            } else {
                Str::try_from(bytes.slice(range)).map_err(|_| DecodeError::BadNamespace)?
            }
        }
        _ => return Err(DecodeError::BadNamespace),
    };
    let data = data.filter(|d| d.kind != DataKind::Null);
    let id = match id {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Uint(n)) => Some(n),
        Some(Scalar::Other) => return Err(DecodeError::BadAckId),
    };
    // A value already validated, read whole (CONNECT and CONNECT_ERROR).
    let whole = |at: usize| {
        let mut reader = MsgPackReader {
            buf: bytes,
            pos: at,
        };
        read_value(&mut reader, usize::MAX)
    };
    let data = match packet_type {
        0 => match data {
            None => PacketData::Connect(None),
            Some(DataSlot {
                at,
                kind: DataKind::Map,
            }) => PacketData::Connect(Some(whole(at)?)),
            Some(_) => {
                return Err(DecodeError::InvalidPayload(
                    "CONNECT data must be an object",
                ))
            }
        },
        1 => match data {
            None => PacketData::Disconnect,
            Some(_) => return Err(DecodeError::InvalidPayload("DISCONNECT carries no data")),
        },
        2 | 5 => {
            let Some(DataSlot {
                kind: DataKind::Array { len, items },
                ..
            }) = data
            else {
                return Err(DecodeError::InvalidPayload("EVENT data must be an array"));
            };
            if len == 0 {
                return Err(DecodeError::InvalidPayload("EVENT data must not be empty"));
            }
            let mut reader = MsgPackReader {
                buf: bytes,
                pos: items,
            };
            // Checked as UTF-8 by the pass above, and again by `Str`.
            let name = match reader.raw_str_range()? {
                Some(range) => {
                    if is_reserved(&bytes[range.clone()]) {
                        return Err(DecodeError::ReservedEvent);
                    }
                    Str::try_from(bytes.slice(range))
                        .map_err(|_| bad_payload("string is not valid UTF-8"))?
                }
                None => match reader.next_token()? {
                    Token::Value(Value::Number(n)) => Str::from(match n {
                        Number::PosInt(n) => itoa::Buffer::new().format(n).to_owned(),
                        Number::NegInt(n) => itoa::Buffer::new().format(n).to_owned(),
                        Number::Float(n) => number_text(n),
                    }),
                    _ => {
                        return Err(DecodeError::InvalidPayload(
                            "EVENT name must be a string or a number",
                        ))
                    }
                },
            };
            PacketData::Event {
                name,
                args: MsgPackArgs::new(bytes, reader.pos, len - 1).into_args(),
                ack: id,
            }
        }
        3 | 6 => {
            let Some(DataSlot {
                kind: DataKind::Array { len, items },
                ..
            }) = data
            else {
                return Err(DecodeError::InvalidPayload("ACK data must be an array"));
            };
            PacketData::Ack {
                id: id.ok_or(DecodeError::BadAckId)?,
                args: MsgPackArgs::new(bytes, items, len).into_args(),
            }
        }
        4 => match data {
            Some(DataSlot {
                at,
                kind: DataKind::Map | DataKind::Str,
            }) => PacketData::ConnectError(whole(at)?),
            _ => {
                return Err(DecodeError::InvalidPayload(
                    "CONNECT_ERROR data must be an object or a string",
                ))
            }
        },
        _ => return Err(DecodeError::UnknownType),
    };
    if id.is_some() && !matches!(data, PacketData::Event { .. } | PacketData::Ack { .. }) {
        return Err(DecodeError::BadAckId);
    }
    Ok(Some(Packet { nsp, data }))
}
