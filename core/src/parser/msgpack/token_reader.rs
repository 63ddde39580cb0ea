//! Decoding shared with CBOR: a [`TokenReader`] yields items, [`read_value`]
//! builds the tree iteratively (nesting bounded by the limit, not the
//! stack) and [`packet_from_map`] applies the reference `isPacketValid` rules.

use bytes::Bytes;

use super::reader::MsgPackReader;
use crate::parser::{Args, DecodeError, DecodeLimits};
use crate::parser::{Packet, PacketData, RESERVED_EVENTS};
use crate::value::{number_text, Map, Number, Value};
use crate::Str;

/// One step of a decoded item stream.
#[derive(Debug)]
pub(in crate::parser) enum Token {
    /// A complete scalar (or binary, or string).
    Value(Value),
    /// An array of this many items; `None` until a [`Token::Break`] (CBOR).
    Array(Option<usize>),
    /// A map of this many entries; `None` until a [`Token::Break`] (CBOR).
    Map(Option<usize>),
    /// The end of an indefinite-length container (CBOR).
    Break,
}

/// A format's item reader.
pub(in crate::parser) trait TokenReader {
    /// The next token; errors on truncation or invalid encoding.
    fn next_token(&mut self) -> Result<Token, DecodeError>;
    /// How many bytes are left: every item takes at least one, which bounds
    /// what a declared length may reserve.
    fn remaining(&self) -> usize;
}

/// Most items reserved up front for a container; more grow as they arrive.
const PREALLOCATE_ITEMS: usize = 64;

pub(in crate::parser) fn bad_payload(what: &str) -> DecodeError {
    DecodeError::BadPayload(what.to_owned())
}

enum Frame {
    Array {
        items: Vec<Value>,
        left: Option<usize>,
    },
    Map {
        entries: Map,
        left: Option<usize>,
        key: Option<String>,
    },
}

/// Read one whole value, with arrays and maps nested at most `max_depth`
/// deep. Iterative: the depth limit, not the stack, bounds nesting.
pub(in crate::parser) fn read_value<R: TokenReader>(
    reader: &mut R,
    max_depth: usize,
) -> Result<Value, DecodeError> {
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        let token = reader.next_token()?;
        let mut value = match token {
            Token::Value(v) => v,
            Token::Break => match stack.pop() {
                Some(Frame::Array { items, left: None }) => Value::Array(items),
                Some(Frame::Map {
                    entries,
                    left: None,
                    key: None,
                }) => Value::Object(entries),
                _ => return Err(bad_payload("unexpected break")),
            },
            Token::Array(len) => {
                if stack.len() >= max_depth {
                    return Err(bad_payload("nesting too deep"));
                }
                if len.is_some_and(|n| n > reader.remaining()) {
                    return Err(bad_payload("array longer than the message"));
                }
                if len == Some(0) {
                    Value::Array(Vec::new())
                } else {
                    let items = Vec::with_capacity(len.unwrap_or(0).min(PREALLOCATE_ITEMS));
                    stack.push(Frame::Array { items, left: len });
                    continue;
                }
            }
            Token::Map(len) => {
                if stack.len() >= max_depth {
                    return Err(bad_payload("nesting too deep"));
                }
                if len.is_some_and(|n| n > reader.remaining() / 2) {
                    return Err(bad_payload("map longer than the message"));
                }
                if len == Some(0) {
                    Value::Object(Vec::new())
                } else {
                    let entries = Vec::with_capacity(len.unwrap_or(0).min(PREALLOCATE_ITEMS));
                    stack.push(Frame::Map {
                        entries,
                        left: len,
                        key: None,
                    });
                    continue;
                }
            }
        };
        // Put the finished value into its parent, closing each parent it
        // completes.
        loop {
            let complete = match stack.last_mut() {
                None => return Ok(value),
                Some(Frame::Array { items, left }) => {
                    items.push(value);
                    count_down(left)
                }
                Some(Frame::Map { entries, left, key }) => match key.take() {
                    None => {
                        match value {
                            Value::String(s) => *key = Some(s),
                            _ => return Err(bad_payload("map key is not a string")),
                        }
                        false
                    }
                    Some(k) => {
                        entries.push((k, value));
                        count_down(left)
                    }
                },
            };
            if !complete {
                break;
            }
            value = match stack.pop() {
                Some(Frame::Array { items, .. }) => Value::Array(items),
                Some(Frame::Map { entries, .. }) => Value::Object(entries),
                None => unreachable!("a parent was just updated"),
            };
        }
    }
}

/// One more item placed; whether a definite-length container is now full.
fn count_down(left: &mut Option<usize>) -> bool {
    match left {
        Some(n) => {
            *n -= 1;
            *n == 0
        }
        None => false,
    }
}

/// Decode one whole message into a packet.
pub(in crate::parser) fn decode_packet<R: TokenReader>(
    reader: &mut R,
    limits: &DecodeLimits,
) -> Result<Packet, DecodeError> {
    // The packet map itself is one level above the payload's own nesting,
    // which `max_depth` counts as the JSON parser does.
    let map = read_value(reader, limits.max_depth.saturating_add(1))?;
    if reader.remaining() != 0 {
        return Err(bad_payload("trailing bytes after the packet"));
    }
    packet_from_map(map)
}

/// Decode `bytes` as exactly one MessagePack value (notepack's JavaScript
/// extension types understood as for packets), nested at most `max_depth`
/// deep; trailing bytes are an error. For other wire formats built on
/// MessagePack (the cluster bus).
pub(crate) fn decode_value(bytes: &Bytes, max_depth: usize) -> Result<Value, DecodeError> {
    let mut reader = MsgPackReader { buf: bytes, pos: 0 };
    let value = read_value(&mut reader, max_depth)?;
    if reader.remaining() != 0 {
        return Err(bad_payload("trailing bytes after the value"));
    }
    Ok(value)
}

/// Validate a decoded `{type, nsp, data?, id?}` map into a [`Packet`], with
/// the rules of the reference `isPacketValid`:
/// - `type` an integer 0-6 (5 and 6 read as EVENT and ACK);
/// - `nsp` a string starting with `/`;
/// - CONNECT: `data` absent or an object; DISCONNECT: no `data`;
///   CONNECT_ERROR: an object or a string;
/// - EVENT: a non-empty array whose first item is a string that is not a
///   reserved event name, or a number (its decimal text becomes the name);
/// - ACK: an array, and an `id`;
/// - `id` a non-negative integer, only on EVENT and ACK.
///
/// A null `data` or `id` counts as absent (python writes `data: nil`).
/// Unknown keys are ignored; a repeated key keeps its last value, as a
/// JavaScript object would.
pub(in crate::parser) fn packet_from_map(map: Value) -> Result<Packet, DecodeError> {
    let Value::Object(entries) = map else {
        return Err(DecodeError::InvalidPayload("packet is not a map"));
    };
    let (mut packet_type, mut nsp, mut data, mut id) = (None, None, None, None);
    for (key, value) in entries {
        let slot = match key.as_str() {
            "type" => &mut packet_type,
            "nsp" => &mut nsp,
            "data" => &mut data,
            "id" => &mut id,
            _ => continue,
        };
        *slot = Some(value);
    }
    let packet_type = match packet_type {
        Some(Value::Number(Number::PosInt(n))) => u8::try_from(n).ok(),
        _ => None,
    }
    .ok_or(DecodeError::UnknownType)?;
    let nsp = match nsp {
        Some(Value::String(s)) if s.starts_with('/') => Str::from(s),
        _ => return Err(DecodeError::BadNamespace),
    };
    let data = data.filter(|d| *d != Value::Null);
    let id = match id {
        None | Some(Value::Null) => None,
        Some(Value::Number(Number::PosInt(n))) => Some(n),
        Some(_) => return Err(DecodeError::BadAckId),
    };
    let data = match packet_type {
        0 => match data {
            None => PacketData::Connect(None),
            Some(v @ Value::Object(_)) => PacketData::Connect(Some(v)),
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
            let Some(Value::Array(items)) = data else {
                return Err(DecodeError::InvalidPayload("EVENT data must be an array"));
            };
            let mut items = items.into_iter();
            let name = match items.next() {
                Some(Value::String(s)) => {
                    if RESERVED_EVENTS.contains(&s.as_str()) {
                        return Err(DecodeError::ReservedEvent);
                    }
                    Str::from(s)
                }
                Some(Value::Number(n)) => Str::from(match n {
                    Number::PosInt(n) => itoa::Buffer::new().format(n).to_owned(),
                    Number::NegInt(n) => itoa::Buffer::new().format(n).to_owned(),
                    Number::Float(n) => number_text(n),
                }),
                Some(_) => {
                    return Err(DecodeError::InvalidPayload(
                        "EVENT name must be a string or a number",
                    ))
                }
                None => return Err(DecodeError::InvalidPayload("EVENT data must not be empty")),
            };
            PacketData::Event {
                name,
                args: Args::from_values(items.collect()),
                ack: id,
            }
        }
        3 | 6 => {
            let Some(Value::Array(items)) = data else {
                return Err(DecodeError::InvalidPayload("ACK data must be an array"));
            };
            PacketData::Ack {
                id: id.ok_or(DecodeError::BadAckId)?,
                args: Args::from_values(items),
            }
        }
        4 => match data {
            Some(v @ (Value::Object(_) | Value::String(_))) => PacketData::ConnectError(v),
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
    Ok(Packet { nsp, data })
}
