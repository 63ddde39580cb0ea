//! The default Socket.IO parser: JSON text with binary attachments.
//!
//! A packet is one text message
//! `<type>[<attachments>-][<nsp>,][<ack id>][<json>]`, followed by one binary
//! message per attachment. Each binary value in the payload is replaced, in
//! document order, by `{"_placeholder":true,"num":N}`.
//!
//! Encoding writes compact JSON straight into [`Encoded::data`] through a
//! serializer that turns each `serialize_bytes` into a placeholder; an event
//! without binary allocates nothing once the buffer has capacity. Binary is
//! copied once into its attachment (serde hands over a `&[u8]`, even for a
//! [`Value::Binary`]).
//!
//! Decoding follows the reference decoder: the namespace is read up to a
//! comma or the end of the text; an EVENT is a non-empty array whose first
//! item is a non-reserved string or a number; an ACK needs an id and may
//! omit its array (no arguments); placeholders are only resolved in binary
//! packets. Event and ack arguments stay as byte ranges of the received text
//! (see [`Args`]); the JSON is syntax-checked in full at once. Nesting is
//! bounded by [`DecodeLimits::max_depth`] (the event array itself counts as
//! one level) with a linear scan before any recursive parsing, and by
//! serde_json's recursion limit of 128 whatever the configuration.

mod decode;
mod encode;
mod number;
#[cfg(test)]
mod tests;
mod validate;

use std::sync::OnceLock;

use bytes::Bytes;
use serde::ser::Serialize;

use super::args::{Repr, Spans};
use super::{Args, ArgsError, DecodeError, DecodeLimits, EncodeError, Encoded, OutPacket, Parser};
use super::{Packet, PacketData};
use crate::engine::Message;
use crate::Str;
use decode::decode_text;
use encode::encode_into;

pub(crate) use encode::serialize_raw_json;
pub(crate) use number::js_number_text;
pub(crate) use validate::{check_depth, validate_args};

/// The default Socket.IO parser: JSON text with binary attachments.
///
/// Output is compact and byte-identical to what the JavaScript reference
/// produces with `JSON.stringify` (keys in the order the payload serializes
/// them).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonParser;

/// Decoding state of [`JsonParser`]: a binary packet waiting for its
/// attachments.
#[derive(Debug, Default)]
pub struct JsonParserDecoder {
    /// Boxed: rare, and large next to the other parsers' states.
    pending: Option<Box<PendingBinary>>,
}

impl JsonParserDecoder {
    /// Whether a binary packet has been read and its attachments are still
    /// expected.
    pub fn is_awaiting_attachments(&self) -> bool {
        self.pending.is_some()
    }

    /// Bytes of binary attachments held for the packet being completed
    /// (never more than [`DecodeLimits::max_pending_attachment_bytes`]).
    pub fn pending_attachment_bytes(&self) -> usize {
        self.pending
            .as_ref()
            .map_or(0, |pending| pending.attachment_bytes)
    }
}

/// A BINARY_EVENT or BINARY_ACK whose text has been read and checked.
#[derive(Debug)]
struct PendingBinary {
    nsp: Str,
    head: BinaryHead,
    args: ArgsText,
    spans: Spans,
    expected: usize,
    attachments: Vec<Bytes>,
    /// Sum of the lengths of `attachments`.
    attachment_bytes: usize,
}

/// Where an event's or ack's arguments are in the received text.
#[derive(Debug)]
struct ArgsText {
    text: Str,
    /// Start of the JSON array; `None` when there is no payload.
    array_start: Option<u32>,
    has_name: bool,
    max_depth: usize,
}

impl ArgsText {
    fn into_args(
        self,
        checked: OnceLock<Result<Spans, ArgsError>>,
        attachments: Vec<Bytes>,
    ) -> Args {
        Args(Repr::Json {
            text: self.text,
            array_start: self.array_start,
            has_name: self.has_name,
            attachments,
            max_depth: self.max_depth,
            checked,
        })
    }
}

#[derive(Debug)]
enum BinaryHead {
    Event { name: Str, ack: Option<u64> },
    Ack { id: u64 },
}

impl PendingBinary {
    fn finish(self) -> Packet {
        let args = self
            .args
            .into_args(OnceLock::from(Ok(self.spans)), self.attachments);
        let data = match self.head {
            BinaryHead::Event { name, ack } => PacketData::Event { name, args, ack },
            BinaryHead::Ack { id } => PacketData::Ack { id, args },
        };
        Packet {
            nsp: self.nsp,
            data,
        }
    }
}

impl Parser for JsonParser {
    type Decoder = JsonParserDecoder;

    fn encode<A: Serialize + ?Sized>(
        &self,
        packet: &OutPacket<'_, A>,
        out: &mut Encoded,
    ) -> Result<(), EncodeError> {
        out.clear();
        let result = encode_into(packet, out);
        if result.is_err() {
            out.clear();
        }
        result
    }

    fn decode(
        &self,
        decoder: &mut Self::Decoder,
        message: Message,
        limits: &DecodeLimits,
    ) -> Result<Option<Packet>, DecodeError> {
        match message {
            Message::Binary(bytes) => {
                let Some(pending) = decoder.pending.as_mut() else {
                    return Err(DecodeError::UnexpectedMessage);
                };
                // Checked before the attachment is kept, so what is held
                // never exceeds the limit; the packet is dropped at once.
                let limit = limits.max_pending_attachment_bytes;
                if bytes.len() > limit.saturating_sub(pending.attachment_bytes) {
                    let pending_bytes = pending.attachment_bytes;
                    decoder.pending = None;
                    return Err(DecodeError::TooManyAttachmentBytes {
                        pending: pending_bytes,
                        incoming: bytes.len(),
                        limit,
                    });
                }
                pending.attachment_bytes += bytes.len();
                pending.attachments.push(bytes);
                if pending.attachments.len() < pending.expected {
                    return Ok(None);
                }
                Ok(decoder.pending.take().map(|pending| pending.finish()))
            }
            Message::Text(text) => {
                if decoder.pending.take().is_some() {
                    return Err(DecodeError::UnexpectedMessage);
                }
                decode_text(text, limits, &mut decoder.pending)
            }
        }
    }
}

/// The text of a BINARY_EVENT `up` on `/` declaring `count` attachments,
/// for the tests of the decoder and of its users.
#[cfg(test)]
pub(crate) fn binary_event_declaring(count: usize) -> String {
    let placeholders: String = (0..count)
        .map(|num| format!(r#",{{"_placeholder":true,"num":{num}}}"#))
        .collect();
    format!(r#"5{count}-["up"{placeholders}]"#)
}
