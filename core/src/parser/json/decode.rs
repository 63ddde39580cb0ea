//! Decoding: the packet header, the event name and the arguments' array,
//! kept as spans of the received text where they can be.

use std::fmt;
use std::sync::OnceLock;

use super::number::js_number_text;
use super::validate::{check_depth, check_placeholders};
use super::{ArgsText, BinaryHead, PendingBinary};
use crate::parser::args::Spans;
use crate::parser::{DecodeError, DecodeLimits};
use crate::parser::{Packet, PacketData, PacketType, RESERVED_EVENTS};
use crate::value::Value;
use crate::Str;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The text before the JSON payload.
#[derive(Debug, PartialEq)]
struct Header<'a> {
    kind: PacketType,
    /// Declared attachments (binary types only).
    attachments: usize,
    /// `None` for the main namespace.
    nsp: Option<&'a str>,
    ack: Option<u64>,
    /// The rest of the text, `None` when empty.
    payload: Option<&'a str>,
}

#[inline]
fn parse_header<'a>(text: &'a str, limits: &DecodeLimits) -> Result<Header<'a>, DecodeError> {
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(DecodeError::Empty);
    };
    let kind = first
        .checked_sub(b'0')
        .and_then(PacketType::from_u8)
        .ok_or(DecodeError::UnknownType)?;
    let mut pos = 1;

    let mut attachments = 0;
    if matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        let digits = count_digits(&bytes[pos..]);
        if digits == 0 || bytes.get(pos + digits) != Some(&b'-') {
            return Err(DecodeError::BadAttachmentCount);
        }
        let declared: usize =
            parse_digits(&bytes[pos..pos + digits]).ok_or(DecodeError::BadAttachmentCount)?;
        if declared > limits.max_attachments {
            return Err(DecodeError::TooManyAttachments {
                declared,
                limit: limits.max_attachments,
            });
        }
        attachments = declared;
        pos += digits + 1;
    }

    let mut nsp = None;
    if bytes.get(pos) == Some(&b'/') {
        // Up to a comma or, as clients send `40/custom`, the end of the text.
        match text[pos..].find(',') {
            Some(comma) => {
                nsp = Some(&text[pos..pos + comma]);
                pos += comma + 1;
            }
            None => {
                nsp = Some(&text[pos..]);
                pos = text.len();
            }
        }
    } else if looks_like_unslashed_namespace(&bytes[pos..]) {
        return Err(DecodeError::BadNamespace);
    }

    let mut ack = None;
    let digits = count_digits(&bytes[pos..]);
    if digits > 0 {
        ack = Some(parse_digits::<u64>(&bytes[pos..pos + digits]).ok_or(DecodeError::BadAckId)?);
        pos += digits;
        match bytes.get(pos) {
            None | Some(b'[' | b'{' | b'"' | b' ' | b'\t' | b'\n' | b'\r') => {}
            Some(_) => return Err(DecodeError::BadAckId),
        }
    }

    let payload = (pos < text.len()).then(|| &text[pos..]);
    Ok(Header {
        kind,
        attachments,
        nsp,
        ack,
        payload,
    })
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Decimal digits to a number, `None` on overflow.
fn parse_digits<N: CheckedDecimal>(digits: &[u8]) -> Option<N> {
    digits
        .iter()
        .try_fold(N::ZERO, |n, &d| n.push_digit(d - b'0'))
}

trait CheckedDecimal: Sized {
    const ZERO: Self;
    fn push_digit(self, digit: u8) -> Option<Self>;
}
impl CheckedDecimal for u64 {
    const ZERO: Self = 0;
    fn push_digit(self, digit: u8) -> Option<Self> {
        self.checked_mul(10)?.checked_add(u64::from(digit))
    }
}
impl CheckedDecimal for usize {
    const ZERO: Self = 0;
    fn push_digit(self, digit: u8) -> Option<Self> {
        self.checked_mul(10)?.checked_add(usize::from(digit))
    }
}

/// `admin,["x"]`: text before a comma that cannot start JSON, which the
/// sender most likely meant as a namespace without its leading `/`.
fn looks_like_unslashed_namespace(rest: &[u8]) -> bool {
    match rest.first() {
        None => false,
        Some(b) if b.is_ascii_digit() || b"[{\"-tfn \t\r\n".contains(b) => false,
        Some(_) => {
            let json_start = rest
                .iter()
                .position(|b| b"[{\"".contains(b))
                .unwrap_or(rest.len());
            rest[..json_start].contains(&b',')
        }
    }
}

/// Decode a text message: the packet, or `None` with `pending` set when
/// attachments must follow. Returns the packet itself rather than an
/// intermediate enum, so it is built in place and not moved again.
#[inline]
pub(super) fn decode_text(
    text: Str,
    limits: &DecodeLimits,
    pending: &mut Option<Box<PendingBinary>>,
) -> Result<Option<Packet>, DecodeError> {
    if u32::try_from(text.len()).is_err() {
        return Err(DecodeError::BadPayload("packet too large".into()));
    }
    let header = parse_header(&text, limits)?;
    let nsp = match header.nsp {
        None => Str::from_static("/"),
        Some(nsp) => text.slice_ref(nsp),
    };
    let no_ack_id = |header: &Header| {
        if header.ack.is_some() {
            Err(DecodeError::BadAckId)
        } else {
            Ok(())
        }
    };
    let binary = matches!(header.kind, PacketType::BinaryEvent | PacketType::BinaryAck);
    let payload_start = text.len() - header.payload.map_or(0, str::len);

    let data = match header.kind {
        PacketType::Connect => {
            no_ack_id(&header)?;
            match header.payload {
                None => PacketData::Connect(None),
                Some(payload) => match parse_value(payload, limits)? {
                    value @ Value::Object(_) => PacketData::Connect(Some(value)),
                    _ => {
                        return Err(DecodeError::InvalidPayload(
                            "CONNECT payload must be an object",
                        ))
                    }
                },
            }
        }
        PacketType::Disconnect => {
            no_ack_id(&header)?;
            if header.payload.is_some() {
                return Err(DecodeError::InvalidPayload("DISCONNECT has no payload"));
            }
            PacketData::Disconnect
        }
        PacketType::ConnectError => {
            no_ack_id(&header)?;
            let payload = header
                .payload
                .ok_or(DecodeError::InvalidPayload("CONNECT_ERROR needs a payload"))?;
            match parse_value(payload, limits)? {
                value @ (Value::Object(_) | Value::String(_)) => PacketData::ConnectError(value),
                _ => {
                    return Err(DecodeError::InvalidPayload(
                        "CONNECT_ERROR payload must be an object or a string",
                    ))
                }
            }
        }
        PacketType::Event | PacketType::BinaryEvent => {
            let payload = header
                .payload
                .ok_or(DecodeError::InvalidPayload("EVENT needs a payload"))?;
            let args = ArgsText {
                text: text.clone(),
                array_start: Some(payload_start as u32),
                has_name: true,
                max_depth: limits.max_depth,
            };
            let (name, spans) = if binary {
                check_depth(payload, limits.max_depth)?;
                let array = parse_array(&text, payload, true)?;
                let name = match array.name {
                    None => {
                        return Err(DecodeError::InvalidPayload(
                            "EVENT payload must be a non-empty array",
                        ))
                    }
                    Some(EventName::Borrowed(name)) => text.slice_ref(name),
                    Some(EventName::Owned(name)) => Str::from(name),
                    Some(EventName::Invalid) => {
                        return Err(DecodeError::InvalidPayload(
                            "an event name must be a string or a number",
                        ))
                    }
                };
                (name, Some(array.spans))
            } else {
                read_event_name(&text, payload_start, limits)?
            };
            if RESERVED_EVENTS.contains(&&*name) {
                return Err(DecodeError::ReservedEvent);
            }
            let head = BinaryHead::Event {
                name,
                ack: header.ack,
            };
            return finish_args(nsp, &header, head, args, spans, pending);
        }
        PacketType::Ack | PacketType::BinaryAck => {
            let id = header.ack.ok_or(DecodeError::BadAckId)?;
            let mut args = ArgsText {
                text: text.clone(),
                array_start: Some(payload_start as u32),
                has_name: false,
                max_depth: limits.max_depth,
            };
            // The reference accepts an ACK without payload: no arguments.
            let spans = match header.payload {
                None => {
                    args.array_start = None;
                    Some(Spans::new())
                }
                Some(payload) if binary => {
                    check_depth(payload, limits.max_depth)?;
                    Some(parse_array(&text, payload, false)?.spans)
                }
                Some(payload) => {
                    let open = skip_whitespace(text.as_bytes(), payload_start);
                    if text.as_bytes().get(open) != Some(&b'[') {
                        return Err(classify(
                            payload,
                            limits,
                            DecodeError::InvalidPayload("event and ack payloads must be arrays"),
                        ));
                    }
                    empty_array_rest(text.as_bytes(), open + 1)?.then(Spans::new)
                }
            };
            return finish_args(nsp, &header, BinaryHead::Ack { id }, args, spans, pending);
        }
    };
    Ok(Some(Packet { nsp, data }))
}

/// Build the packet of an event or ack, or the pending state of a binary
/// one. `spans` are the arguments when already checked, `None` when they
/// are left for [`Args`] to check.
#[inline]
fn finish_args(
    nsp: Str,
    header: &Header,
    head: BinaryHead,
    args: ArgsText,
    spans: Option<Spans>,
    pending: &mut Option<Box<PendingBinary>>,
) -> Result<Option<Packet>, DecodeError> {
    let binary = matches!(header.kind, PacketType::BinaryEvent | PacketType::BinaryAck);
    if !binary {
        let checked = spans.map_or_else(OnceLock::new, |spans| OnceLock::from(Ok(spans)));
        let args = args.into_args(checked, Vec::new());
        let data = match head {
            BinaryHead::Event { name, ack } => PacketData::Event { name, args, ack },
            BinaryHead::Ack { id } => PacketData::Ack { id, args },
        };
        return Ok(Some(Packet { nsp, data }));
    }
    let spans = spans.expect("binary packets are checked at decode time");
    // Placeholders only mean something in binary packets, as in the
    // reference decoder.
    for &(start, end) in &spans {
        check_placeholders(&args.text[start as usize..end as usize], header.attachments)?;
    }
    let binary = PendingBinary {
        nsp,
        head,
        args,
        spans,
        expected: header.attachments,
        attachments: Vec::new(),
        attachment_bytes: 0,
    };
    if binary.expected == 0 {
        return Ok(Some(binary.finish()));
    }
    *pending = Some(Box::new(binary));
    Ok(None)
}

fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).copied().is_some_and(is_json_whitespace) {
        pos += 1;
    }
    pos
}

/// After an array's `[` (or an item): whether the array ends right here
/// (`]` then only whitespace). A `]` followed by anything else is an error.
fn empty_array_rest(bytes: &[u8], pos: usize) -> Result<bool, DecodeError> {
    let pos = skip_whitespace(bytes, pos);
    if bytes.get(pos) != Some(&b']') {
        return Ok(false);
    }
    if skip_whitespace(bytes, pos + 1) != bytes.len() {
        return Err(DecodeError::BadPayload(
            "trailing characters after the array".into(),
        ));
    }
    Ok(true)
}

/// `shape` (a payload of the wrong shape), unless the payload is not even
/// valid JSON: then that. Only on the way to an error.
#[cold]
fn classify(payload: &str, limits: &DecodeLimits, shape: DecodeError) -> DecodeError {
    if let Err(e) = check_depth(payload, limits.max_depth) {
        return e;
    }
    match serde_json::from_str::<IgnoredAny>(payload) {
        Err(e) => bad_json(e),
        Ok(_) => shape,
    }
}

/// Read a plain EVENT's name, the first item of the array at `start` in
/// `text`, leaving the arguments after it unparsed. Returns the name, and
/// the (empty) spans when the array holds nothing else.
// Inlined into `decode_text` as before the split (callgrind: +8% on a
// small decode when it was not).
#[inline]
fn read_event_name(
    text: &Str,
    start: usize,
    limits: &DecodeLimits,
) -> Result<(Str, Option<Spans>), DecodeError> {
    let payload = &text[start..];
    let bytes = text.as_bytes();
    let open = skip_whitespace(bytes, start);
    if bytes.get(open) != Some(&b'[') {
        return Err(classify(
            payload,
            limits,
            DecodeError::InvalidPayload("event and ack payloads must be arrays"),
        ));
    }
    let first = skip_whitespace(bytes, open + 1);
    let (name, end) = match bytes.get(first) {
        Some(b'"') => {
            let mut pos = first + 1;
            let mut escaped = false;
            loop {
                match bytes.get(pos) {
                    None => return Err(DecodeError::BadPayload("unterminated string".into())),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        escaped = true;
                        pos += 2;
                    }
                    Some(&b) if b < 0x20 => {
                        return Err(DecodeError::BadPayload(
                            "control character in a string".into(),
                        ))
                    }
                    Some(_) => pos += 1,
                }
            }
            let name = if escaped {
                Str::from(serde_json::from_str::<String>(&text[first..=pos]).map_err(bad_json)?)
            } else {
                text.slice_ref(&text[first + 1..pos])
            };
            (name, pos + 1)
        }
        Some(b'-' | b'0'..=b'9') => {
            let end = first
                + bytes[first..]
                    .iter()
                    .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .count();
            let mut json = serde_json::Deserializer::from_str(&text[first..end]);
            let name = NameSeed.deserialize(&mut json).map_err(bad_json)?;
            json.end().map_err(bad_json)?;
            match name {
                EventName::Borrowed(name) => (text.slice_ref(name), end),
                EventName::Owned(name) => (Str::from(name), end),
                EventName::Invalid => unreachable!("a number is a valid name"),
            }
        }
        Some(b']') => {
            return Err(classify(
                payload,
                limits,
                DecodeError::InvalidPayload("EVENT payload must be a non-empty array"),
            ))
        }
        Some(b't' | b'f' | b'n' | b'[' | b'{') => {
            return Err(classify(
                payload,
                limits,
                DecodeError::InvalidPayload("an event name must be a string or a number"),
            ))
        }
        _ => {
            return Err(classify(
                payload,
                limits,
                DecodeError::BadPayload("invalid event array".into()),
            ))
        }
    };
    let next = skip_whitespace(bytes, end);
    match bytes.get(next) {
        Some(b',') => Ok((name, None)),
        Some(b']') => Ok((name, empty_array_rest(bytes, next)?.then(Spans::new))),
        _ => Err(classify(
            payload,
            limits,
            DecodeError::BadPayload("invalid event array".into()),
        )),
    }
}

pub(in crate::parser) fn bad_json(e: serde_json::Error) -> DecodeError {
    DecodeError::BadPayload(e.to_string())
}

fn parse_value(payload: &str, limits: &DecodeLimits) -> Result<Value, DecodeError> {
    check_depth(payload, limits.max_depth)?;
    serde_json::from_str(payload).map_err(bad_json)
}

/// An event's first array item.
enum EventName<'de> {
    /// A string without escapes: a slice of the received text.
    Borrowed(&'de str),
    /// A string with escapes, or a number's decimal text.
    Owned(String),
    /// Anything else.
    Invalid,
}

pub(super) struct ParsedArray<'de> {
    /// `None` when the array is empty (or no name was asked for).
    name: Option<EventName<'de>>,
    pub(super) spans: Spans,
}

/// Parse `payload` (a slice of `text`) as an array, keeping each item (after
/// the event name when `with_name`) as its byte range in `text`.
pub(super) fn parse_array<'a>(
    text: &'a str,
    payload: &'a str,
    with_name: bool,
) -> Result<ParsedArray<'a>, DecodeError> {
    let json_whitespace: &[char] = &[' ', '\t', '\n', '\r'];
    if !payload.trim_start_matches(json_whitespace).starts_with('[') {
        // Tell malformed JSON from well-formed JSON of the wrong shape.
        serde_json::from_str::<IgnoredAny>(payload).map_err(bad_json)?;
        return Err(DecodeError::InvalidPayload(
            "event and ack payloads must be arrays",
        ));
    }
    let mut json = serde_json::Deserializer::from_str(payload);
    let array = ArraySeed {
        base: text,
        with_name,
    }
    .deserialize(&mut json)
    .map_err(bad_json)?;
    json.end().map_err(bad_json)?;
    Ok(array)
}

struct ArraySeed<'a> {
    base: &'a str,
    with_name: bool,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ParsedArray<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ParsedArray<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut name = None;
        if self.with_name {
            name = seq.next_element_seed(NameSeed)?;
            if name.is_none() {
                return Ok(ParsedArray {
                    name,
                    spans: Spans::new(),
                });
            }
        }
        let mut spans = Spans::new();
        let base = self.base.as_ptr() as usize;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let raw = raw.get();
            // The raw value borrows from the payload, itself inside `base`,
            // whose length fits u32 (checked before parsing).
            let start = raw.as_ptr() as usize - base;
            let end = start + raw.len();
            match (u32::try_from(start), u32::try_from(end)) {
                (Ok(start), Ok(end)) => spans.push((start, end)),
                _ => return Err(de::Error::custom("packet too large")),
            }
        }
        Ok(ParsedArray { name, spans })
    }
}

struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = EventName<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = EventName<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(EventName::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(EventName::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(EventName::Owned(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(EventName::Owned(itoa::Buffer::new().format(v).to_owned()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(EventName::Owned(itoa::Buffer::new().format(v).to_owned()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(EventName::Owned(js_number_text(v)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(EventName::Invalid)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(EventName::Invalid)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(EventName::Invalid)
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(EventName::Invalid)
    }
}
