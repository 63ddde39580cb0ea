//! Engine.IO v4 packets: decoding and encoding over WebSocket frames and
//! long-polling payloads.
//!
//! Text form of a packet: one type digit followed by the packet's data, for
//! example `4hello` (a text message) or `2probe` (a ping carrying `probe`).
//! A binary message travels as a raw WebSocket binary frame, or, where only
//! text is possible (long-polling bodies, base64 WebSocket clients), as `b`
//! followed by standard base64 of its bytes.
//!
//! A long-polling payload joins the text forms of its packets with the record
//! separator `0x1E`.
//!
//! Decoding never copies message text: a decoded text message or ping payload
//! is a slice of the input [`Str`]. Only a base64 binary message and the open
//! handshake allocate.

use std::fmt;
use std::iter::FusedIterator;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::Str;

/// An Engine.IO message: the payload of a `message` packet (type `4`).
///
/// Over WebSocket a text message travels as a text frame `4<text>` and a
/// binary message as a binary frame holding the raw bytes; over long-polling
/// a binary message is written `b<base64>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A UTF-8 text message.
    Text(Str),
    /// A binary message.
    Binary(Bytes),
}

/// The record separator that joins packets in a long-polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1E;

/// The payload of the ping and pong packets that probe a WebSocket upgrade
/// (`2probe`, `3probe`).
pub const PROBE: &str = "probe";

/// The longest handshake JSON (the data of an open packet) a decoder accepts,
/// in bytes.
///
/// A real handshake is about 120 bytes; the bound keeps a hostile server from
/// making a client parse an arbitrarily large document.
pub const MAX_HANDSHAKE_LEN: usize = 8 * 1024;

/// A reasonable default for the maximum number of packets in one
/// long-polling payload, for [`decode_payload`] and [`PayloadDecoder`].
///
/// The reference client batches every queued packet up to `maxPayload` bytes
/// into one POST, so a burst of small emits can legitimately produce thousands
/// of packets in one body.
pub const DEFAULT_MAX_PAYLOAD_PACKETS: usize = 10_000;

/// The prefix of a base64 binary message in text form.
const BINARY_PREFIX: u8 = b'b';

/// Standard alphabet; writes padding, and reads with, without or with partial
/// padding because Node's decoder accepts all three.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The type of an Engine.IO packet, written as one ASCII digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: the server's handshake.
    Open,
    /// `1`: the transport can be closed.
    Close,
    /// `2`: heartbeat request (server to client), or upgrade probe (client to
    /// server).
    Ping,
    /// `3`: heartbeat answer, or probe answer.
    Pong,
    /// `4`: application data.
    Message,
    /// `5`: the client switches to the probed transport.
    Upgrade,
    /// `6`: no operation; releases a pending long-polling request.
    Noop,
}

impl PacketType {
    /// The type's wire digit (`b'0'` to `b'6'`).
    pub const fn as_byte(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }

    /// The type written as `byte`, if it is one of the seven digits.
    pub const fn from_byte(byte: u8) -> Option<PacketType> {
        Some(match byte {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PacketType::Open => "open",
            PacketType::Close => "close",
            PacketType::Ping => "ping",
            PacketType::Pong => "pong",
            PacketType::Message => "message",
            PacketType::Upgrade => "upgrade",
            PacketType::Noop => "noop",
        })
    }
}

/// The data of an open packet: what the server tells a new client.
///
/// Serialized as compact JSON with exactly the keys `sid`, `upgrades`,
/// `pingInterval`, `pingTimeout`, `maxPayload`, in that order. Decoding
/// ignores unknown keys and refuses missing or ill-typed ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The session id, sent back by the client in every later request.
    pub sid: Str,
    /// Transports the client may upgrade to (`["websocket"]` from polling,
    /// `[]` once on WebSocket).
    pub upgrades: Vec<Str>,
    /// Milliseconds between two server pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong (and, added to the interval,
    /// how long the client waits for a ping).
    pub ping_timeout: u64,
    /// The most bytes the client may put in one long-polling payload.
    pub max_payload: u64,
}

impl Handshake {
    /// Parses handshake JSON (the data of an open packet) sent by a peer.
    ///
    /// Refuses documents longer than [`MAX_HANDSHAKE_LEN`].
    pub fn from_json(json: &str) -> Result<Handshake, PacketError> {
        if json.len() > MAX_HANDSHAKE_LEN {
            return Err(PacketError::HandshakeTooLong { len: json.len() });
        }
        // serde would also accept a struct written as an array; the
        // handshake is an object (and re-encodes as one), nothing else.
        if json.trim_start().starts_with('[') {
            let err = <serde_json::Error as serde::de::Error>::custom(
                "the handshake must be a JSON object",
            );
            return Err(PacketError::InvalidHandshake(err.into()));
        }
        serde_json::from_str(json).map_err(|err| PacketError::InvalidHandshake(err.into()))
    }

    /// Appends the handshake's compact JSON to `out`.
    pub fn encode_json(&self, out: &mut BytesMut) {
        serde_json::to_writer(out.writer(), self)
            .expect("strings and integers always serialize into a growable buffer");
    }
}

/// An Engine.IO v4 packet.
///
/// Cheap to move (about five words): the rare, large handshake is boxed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0`: the server's handshake.
    Open(Box<Handshake>),
    /// `1`: the transport can be closed.
    Close,
    /// `2`: a ping, with an optional payload (`probe` during an upgrade).
    ///
    /// A decoded ping never holds `Some("")`; encoding `Some("")` writes the
    /// same bytes as `None`.
    Ping(Option<Str>),
    /// `3`: a pong, echoing the ping's optional payload.
    Pong(Option<Str>),
    /// `4`: a text or binary message.
    Message(Message),
    /// `5`: the client switches to the probed transport.
    Upgrade,
    /// `6`: no operation.
    Noop,
}

/// Which kind of WebSocket frame an encoded packet needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A text frame (the bytes are UTF-8).
    Text,
    /// A binary frame.
    Binary,
}

impl Packet {
    /// A text message packet.
    pub fn text(text: impl Into<Str>) -> Packet {
        Packet::Message(Message::Text(text.into()))
    }

    /// A binary message packet.
    pub fn binary(bytes: impl Into<Bytes>) -> Packet {
        Packet::Message(Message::Binary(bytes.into()))
    }

    /// The ping that opens a WebSocket upgrade: `2probe`.
    pub fn ping_probe() -> Packet {
        Packet::Ping(Some(Str::from_static(PROBE)))
    }

    /// The pong that answers an upgrade probe: `3probe`.
    pub fn pong_probe() -> Packet {
        Packet::Pong(Some(Str::from_static(PROBE)))
    }

    /// Whether this is a ping or pong carrying `probe`.
    pub fn is_probe(&self) -> bool {
        matches!(self, Packet::Ping(Some(data)) | Packet::Pong(Some(data)) if &**data == PROBE)
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Decodes a packet from the text form: a WebSocket text frame or one
    /// record of a long-polling payload.
    ///
    /// Message text and ping/pong payloads are slices of `text` (no copy).
    /// `b<base64>` decodes to a binary message, as the reference parser does
    /// for clients that force base64 over WebSocket. Data after the type
    /// digit of close, upgrade and noop is ignored, as the reference server
    /// ignores it.
    pub fn decode_text(text: &Str) -> Result<Packet, PacketError> {
        decode_record(text, text)
    }

    /// Decodes a packet from the bytes of a WebSocket text frame, checking
    /// that they are UTF-8 first.
    pub fn decode_text_bytes(bytes: Bytes) -> Result<Packet, PacketError> {
        Packet::decode_text(&utf8(bytes)?)
    }

    /// Decodes a WebSocket binary frame: always a binary message holding the
    /// frame's bytes as they are.
    pub fn decode_binary(bytes: Bytes) -> Packet {
        Packet::Message(Message::Binary(bytes))
    }

    /// Appends the packet's text form to `out`: the type digit and the data,
    /// with a binary message written `b<base64>`.
    ///
    /// This is a long-polling record, or a WebSocket text frame for a client
    /// that asked for base64.
    pub fn encode_text(&self, out: &mut BytesMut) {
        if let Packet::Message(Message::Binary(bytes)) = self {
            out.put_u8(BINARY_PREFIX);
            encode_base64(bytes, out);
            return;
        }
        out.put_u8(self.packet_type().as_byte());
        match self {
            Packet::Open(handshake) => handshake.encode_json(out),
            Packet::Ping(Some(data)) | Packet::Pong(Some(data)) => {
                out.extend_from_slice(data.as_bytes())
            }
            Packet::Message(Message::Text(text)) => out.extend_from_slice(text.as_bytes()),
            // Binary messages returned above.
            Packet::Message(Message::Binary(_))
            | Packet::Close
            | Packet::Ping(None)
            | Packet::Pong(None)
            | Packet::Upgrade
            | Packet::Noop => {}
        }
    }

    /// Appends the packet as the payload of one WebSocket frame to `out` and
    /// says which kind of frame to send it in.
    ///
    /// A binary message is its raw bytes in a binary frame; everything else
    /// is its text form in a text frame.
    pub fn encode_frame(&self, out: &mut BytesMut) -> FrameKind {
        if let Packet::Message(Message::Binary(bytes)) = self {
            out.extend_from_slice(bytes);
            return FrameKind::Binary;
        }
        self.encode_text(out);
        FrameKind::Text
    }

    /// The text data that a long-polling record cannot carry if it contains
    /// the record separator.
    fn separator_sensitive_text(&self) -> Option<&str> {
        match self {
            Packet::Message(Message::Text(text)) => Some(text),
            Packet::Ping(Some(data)) | Packet::Pong(Some(data)) => Some(data),
            // Handshake JSON escapes control characters; binary is base64.
            _ => None,
        }
    }
}

/// Decodes one text-form packet; `record` is a slice of `source`, so that
/// data can be sliced out of `source` without copying.
fn decode_record(source: &Str, record: &str) -> Result<Packet, PacketError> {
    let Some(&first) = record.as_bytes().first() else {
        return Err(PacketError::Empty);
    };
    if first == BINARY_PREFIX {
        let bytes = BASE64
            .decode(&record[1..])
            .map_err(|_| PacketError::InvalidBase64)?;
        return Ok(Packet::Message(Message::Binary(Bytes::from(bytes))));
    }
    let Some(packet_type) = PacketType::from_byte(first) else {
        let found = record.chars().next().expect("record is not empty");
        return Err(PacketError::UnknownType(found));
    };
    // The type digit is ASCII, so index 1 is a char boundary.
    let data = &record[1..];
    let optional = || (!data.is_empty()).then(|| source.slice_ref(data));
    Ok(match packet_type {
        PacketType::Open => Packet::Open(Box::new(Handshake::from_json(data)?)),
        PacketType::Close => Packet::Close,
        PacketType::Ping => Packet::Ping(optional()),
        PacketType::Pong => Packet::Pong(optional()),
        PacketType::Message => Packet::Message(Message::Text(source.slice_ref(data))),
        PacketType::Upgrade => Packet::Upgrade,
        PacketType::Noop => Packet::Noop,
    })
}

fn utf8(bytes: Bytes) -> Result<Str, PacketError> {
    if let Err(err) = std::str::from_utf8(&bytes) {
        return Err(PacketError::InvalidUtf8 {
            valid_up_to: err.valid_up_to(),
        });
    }
    Ok(Str::try_from(bytes).expect("checked to be UTF-8 just above"))
}

fn encode_base64(bytes: &[u8], out: &mut BytesMut) {
    let start = out.len();
    let len = base64::encoded_len(bytes.len(), true).expect("a buffer in memory has a base64 size");
    out.resize(start + len, 0);
    let written = BASE64
        .encode_slice(bytes, &mut out[start..])
        .expect("the space was sized by encoded_len");
    debug_assert_eq!(written, len);
}

/// Decodes a whole long-polling body into its packets, all or nothing.
///
/// The body must be UTF-8, not empty, without empty records, and hold at most
/// `max_packets` packets. Use [`PayloadDecoder`] to handle packets one by one
/// instead (as the reference server does: packets before a bad record still
/// count).
pub fn decode_payload(body: Bytes, max_packets: usize) -> Result<Vec<Packet>, PacketError> {
    PayloadDecoder::new(body, max_packets)?.collect()
}

/// Appends a long-polling payload to `out`: the packets' text forms joined by
/// the record separator, binary messages in base64.
///
/// Writes nothing for an empty list (which is not a valid payload: send
/// packets, or keep the request pending). If a text message or ping/pong
/// payload contains the record separator, which the receiver would split on,
/// `out` is left as it was and the packet's index is returned.
pub fn encode_payload<'a, I>(packets: I, out: &mut BytesMut) -> Result<(), PayloadEncodeError>
where
    I: IntoIterator<Item = &'a Packet>,
{
    let start = out.len();
    for (index, packet) in packets.into_iter().enumerate() {
        let splits = packet
            .separator_sensitive_text()
            .is_some_and(|text| text.as_bytes().contains(&RECORD_SEPARATOR));
        if splits {
            out.truncate(start);
            return Err(PayloadEncodeError::SeparatorInText { index });
        }
        if index > 0 {
            out.put_u8(RECORD_SEPARATOR);
        }
        packet.encode_text(out);
    }
    Ok(())
}

/// An iterator over the packets of a long-polling body.
///
/// Yields each record's packet or error in order and stops after the first
/// error. The `max_packets + 1`-th record yields
/// [`PacketError::TooManyPackets`] without being decoded.
#[derive(Debug, Clone)]
pub struct PayloadDecoder {
    body: Str,
    /// Start of the next record in `body`.
    position: usize,
    decoded: usize,
    max_packets: usize,
    finished: bool,
}

impl PayloadDecoder {
    /// Checks that `body` is UTF-8 and prepares to decode it.
    pub fn new(body: Bytes, max_packets: usize) -> Result<PayloadDecoder, PacketError> {
        Ok(PayloadDecoder::from_text(utf8(body)?, max_packets))
    }

    /// Prepares to decode a body already known to be UTF-8.
    pub fn from_text(body: Str, max_packets: usize) -> PayloadDecoder {
        PayloadDecoder {
            body,
            position: 0,
            decoded: 0,
            max_packets,
            finished: false,
        }
    }
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, PacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.decoded == self.max_packets {
            self.finished = true;
            return Some(Err(PacketError::TooManyPackets {
                max: self.max_packets,
            }));
        }
        self.decoded += 1;
        let rest = &self.body[self.position..];
        // The separator is ASCII, so both sides of it are char boundaries.
        let record = match rest.find(char::from(RECORD_SEPARATOR)) {
            Some(end) => {
                self.position += end + 1;
                &rest[..end]
            }
            None => {
                self.finished = true;
                rest
            }
        };
        let result = decode_record(&self.body, record);
        if result.is_err() {
            self.finished = true;
        }
        Some(result)
    }
}

impl FusedIterator for PayloadDecoder {}

/// A packet or payload from the peer that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketError {
    /// An empty WebSocket text frame, empty body, or empty record between two
    /// separators.
    Empty,
    /// The first character is not a packet type digit (nor `b` for base64).
    UnknownType(char),
    /// The bytes are not UTF-8; the first `valid_up_to` bytes are.
    InvalidUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// A `b` record whose data is not standard base64.
    InvalidBase64,
    /// An open packet whose data is not a valid handshake.
    InvalidHandshake(HandshakeError),
    /// An open packet whose data is longer than [`MAX_HANDSHAKE_LEN`].
    HandshakeTooLong {
        /// The length of the refused handshake data, in bytes.
        len: usize,
    },
    /// A long-polling payload with more packets than allowed.
    TooManyPackets {
        /// The configured maximum.
        max: usize,
    },
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Empty => f.write_str("empty engine.io packet"),
            PacketError::UnknownType(found) => {
                write!(f, "unknown engine.io packet type {found:?}")
            }
            PacketError::InvalidUtf8 { valid_up_to } => {
                write!(f, "engine.io packet is not UTF-8 after byte {valid_up_to}")
            }
            PacketError::InvalidBase64 => f.write_str("invalid base64 in engine.io binary packet"),
            PacketError::InvalidHandshake(err) => write!(f, "invalid engine.io handshake: {err}"),
            PacketError::HandshakeTooLong { len } => write!(
                f,
                "engine.io handshake of {len} bytes exceeds the limit of {MAX_HANDSHAKE_LEN}"
            ),
            PacketError::TooManyPackets { max } => {
                write!(f, "engine.io payload holds more than {max} packets")
            }
        }
    }
}

impl std::error::Error for PacketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PacketError::InvalidHandshake(err) => Some(err),
            _ => None,
        }
    }
}

/// Why handshake JSON was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeError {
    kind: HandshakeErrorKind,
    detail: Box<str>,
}

/// The broad reason a handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeErrorKind {
    /// Not JSON.
    Syntax,
    /// The JSON ends early.
    Eof,
    /// Valid JSON, but a key is missing, duplicated or of the wrong type, or
    /// the document is not an object.
    Data,
}

impl HandshakeError {
    /// The broad reason.
    pub fn kind(&self) -> HandshakeErrorKind {
        self.kind
    }
}

impl From<serde_json::Error> for HandshakeError {
    fn from(err: serde_json::Error) -> HandshakeError {
        use serde_json::error::Category;
        let kind = match err.classify() {
            Category::Syntax => HandshakeErrorKind::Syntax,
            Category::Eof => HandshakeErrorKind::Eof,
            // Reading from a string cannot fail with IO.
            Category::Data | Category::Io => HandshakeErrorKind::Data,
        };
        HandshakeError {
            kind,
            detail: err.to_string().into_boxed_str(),
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for HandshakeError {}

/// A payload that cannot be encoded; an application error, not the peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadEncodeError {
    /// The packet at `index` carries text containing the record separator
    /// `0x1E`, which would split it in two on the receiving side.
    SeparatorInText {
        /// Position of the packet in the list.
        index: usize,
    },
}

impl fmt::Display for PayloadEncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadEncodeError::SeparatorInText { index } => write!(
                f,
                "packet {index} contains the record separator 0x1E and cannot travel over long-polling"
            ),
        }
    }
}

impl std::error::Error for PayloadEncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_as_an_array_is_refused() {
        let json = r#"["abc",["websocket"],25000,20000,1000000]"#;
        assert!(matches!(
            Handshake::from_json(json),
            Err(PacketError::InvalidHandshake(_))
        ));
    }
    use proptest::prelude::*;

    fn text_of(packet: &Packet) -> Vec<u8> {
        let mut out = BytesMut::new();
        packet.encode_text(&mut out);
        out.to_vec()
    }

    fn decode(text: &str) -> Result<Packet, PacketError> {
        Packet::decode_text(&Str::from(text))
    }

    fn payload_of(packets: &[Packet]) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_payload(packets, &mut out).unwrap();
        out.to_vec()
    }

    fn spec_handshake() -> Handshake {
        Handshake {
            sid: Str::from("lv_VI97HAXpY6yYWAAAC"),
            upgrades: vec![Str::from("websocket")],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1000000,
        }
    }

    const SPEC_OPEN: &str = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

    #[test]
    fn packet_stays_small() {
        assert!(std::mem::size_of::<Packet>() <= 40);
    }

    #[test]
    fn packet_type_digits() {
        for byte in 0..=u8::MAX {
            match PacketType::from_byte(byte) {
                Some(ty) => assert_eq!(ty.as_byte(), byte),
                None => assert!(!(b'0'..=b'6').contains(&byte)),
            }
        }
    }

    #[test]
    fn spec_text_message() {
        assert_eq!(decode("4hello").unwrap(), Packet::text("hello"));
        assert_eq!(text_of(&Packet::text("hello")), b"4hello");
        assert_eq!(decode("4").unwrap(), Packet::text(""));
        assert_eq!(decode("4€").unwrap(), Packet::text("€"));
    }

    #[test]
    fn message_text_is_a_slice_of_the_input() {
        let input = Str::from("4hello world");
        let Packet::Message(Message::Text(text)) = Packet::decode_text(&input).unwrap() else {
            panic!("not a text message");
        };
        assert_eq!(text.as_ptr(), input[1..].as_ptr());
    }

    #[test]
    fn spec_probe_and_heartbeat() {
        assert_eq!(decode("2probe").unwrap(), Packet::ping_probe());
        assert_eq!(decode("3probe").unwrap(), Packet::pong_probe());
        assert!(Packet::ping_probe().is_probe());
        assert!(!Packet::Ping(None).is_probe());
        assert_eq!(text_of(&Packet::ping_probe()), b"2probe");
        assert_eq!(text_of(&Packet::pong_probe()), b"3probe");
        assert_eq!(decode("2").unwrap(), Packet::Ping(None));
        assert_eq!(decode("3").unwrap(), Packet::Pong(None));
        assert_eq!(text_of(&Packet::Ping(None)), b"2");
        assert_eq!(text_of(&Packet::Pong(Some(Str::new()))), b"3");
    }

    #[test]
    fn data_less_packets() {
        for (text, packet) in [
            ("1", Packet::Close),
            ("5", Packet::Upgrade),
            ("6", Packet::Noop),
        ] {
            assert_eq!(decode(text).unwrap(), packet);
            assert_eq!(text_of(&packet), text.as_bytes());
        }
        // The reference server ignores data after these types.
        assert_eq!(decode("6junk").unwrap(), Packet::Noop);
    }

    #[test]
    fn spec_open_packet() {
        let packet = Packet::Open(Box::new(spec_handshake()));
        assert_eq!(text_of(&packet), SPEC_OPEN.as_bytes());
        assert_eq!(decode(SPEC_OPEN).unwrap(), packet);
        // Pretty-printed JSON, other key order and unknown keys are accepted.
        let pretty = r#"0{ "maxPayload": 1000000, "pingTimeout": 20000, "extra": [1, {"a": null}],
            "upgrades": ["websocket"], "pingInterval": 25000, "sid": "lv_VI97HAXpY6yYWAAAC" }"#;
        assert_eq!(decode(pretty).unwrap(), packet);
    }

    #[test]
    fn open_packet_errors() {
        let kind = |text: &str| match decode(text) {
            Err(PacketError::InvalidHandshake(err)) => err.kind(),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(kind("0"), HandshakeErrorKind::Eof);
        assert_eq!(kind("0{"), HandshakeErrorKind::Eof);
        assert_eq!(kind("0nope"), HandshakeErrorKind::Syntax);
        assert_eq!(kind("0[]"), HandshakeErrorKind::Data);
        assert_eq!(kind("0{}"), HandshakeErrorKind::Data);
        let valid = SPEC_OPEN;
        for (from, to) in [
            (r#""sid":"lv_VI97HAXpY6yYWAAAC","#, ""),
            (r#""sid":"lv_VI97HAXpY6yYWAAAC""#, r#""sid":7"#),
            ("25000", "\"25000\""),
            ("25000", "25000.5"),
            ("20000", "-1"),
            ("1000000", "1e99"),
            ("1000000", "null"),
            (r#"["websocket"]"#, r#""websocket""#),
            (r#"["websocket"]"#, "[1]"),
            (r#","maxPayload":1000000"#, ""),
            (
                r#""maxPayload":1000000"#,
                r#""maxPayload":1,"maxPayload":2"#,
            ),
        ] {
            let broken = valid.replacen(from, to, 1);
            assert_ne!(broken, valid);
            assert_eq!(kind(&broken), HandshakeErrorKind::Data, "{broken}");
        }
        assert_eq!(kind(&format!("{valid}x")), HandshakeErrorKind::Syntax);
    }

    #[test]
    fn huge_or_deep_open_packet_is_refused() {
        let huge = format!("0{}", " ".repeat(MAX_HANDSHAKE_LEN + 1));
        assert_eq!(
            decode(&huge),
            Err(PacketError::HandshakeTooLong {
                len: MAX_HANDSHAKE_LEN + 1
            })
        );
        // Deep nesting inside an ignored key stays within the size bound and
        // serde_json's recursion limit: an error, not a stack overflow.
        let deep = format!(r#"0{{"x":{}}}"#, "[".repeat(MAX_HANDSHAKE_LEN - 10));
        assert!(matches!(
            decode(&deep),
            Err(PacketError::InvalidHandshake(_))
        ));
    }

    #[test]
    fn handshake_error_display() {
        let err = decode("0{}").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("invalid engine.io handshake: missing field"));
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn spec_binary_message() {
        let packet = Packet::binary(vec![1u8, 2, 3, 4]);
        assert_eq!(text_of(&packet), b"bAQIDBA==");
        assert_eq!(decode("bAQIDBA==").unwrap(), packet);
        // Node accepts base64 without (or with partial) padding; so do we.
        assert_eq!(decode("bAQIDBA").unwrap(), packet);
        assert_eq!(decode("bAQIDBA=").unwrap(), packet);
        assert_eq!(decode("b").unwrap(), Packet::binary(Bytes::new()));
        let mut frame = BytesMut::new();
        assert_eq!(packet.encode_frame(&mut frame), FrameKind::Binary);
        assert_eq!(&frame[..], &[1, 2, 3, 4]);
        assert_eq!(Packet::decode_binary(frame.freeze()), packet);
        assert_eq!(
            Packet::decode_binary(Bytes::new()),
            Packet::binary(Bytes::new())
        );
    }

    #[test]
    fn base64_garbage() {
        for garbage in ["b!!!!", "bA", "bAQID BA==", "bAQIDBA===", "b====", "b€"] {
            assert_eq!(
                decode(garbage),
                Err(PacketError::InvalidBase64),
                "{garbage}"
            );
        }
    }

    #[test]
    fn unknown_types_and_empty() {
        assert_eq!(decode(""), Err(PacketError::Empty));
        assert_eq!(decode("7"), Err(PacketError::UnknownType('7')));
        assert_eq!(decode("x4"), Err(PacketError::UnknownType('x')));
        assert_eq!(decode("€4"), Err(PacketError::UnknownType('€')));
        assert_eq!(decode("\x1e"), Err(PacketError::UnknownType('\x1e')));
        assert_eq!(
            Packet::decode_text_bytes(Bytes::new()),
            Err(PacketError::Empty)
        );
    }

    #[test]
    fn text_frames() {
        let mut out = BytesMut::new();
        assert_eq!(Packet::text("hi").encode_frame(&mut out), FrameKind::Text);
        assert_eq!(&out[..], b"4hi");
        out.clear();
        assert_eq!(Packet::Noop.encode_frame(&mut out), FrameKind::Text);
        assert_eq!(&out[..], b"6");
        // Appends to what is already there.
        Packet::Close.encode_frame(&mut out);
        assert_eq!(&out[..], b"61");
    }

    #[test]
    fn truncated_utf8_in_text_frame() {
        for full in ["4€", "4a𝄞b", "2é"] {
            let bytes = full.as_bytes();
            for cut in 1..bytes.len() {
                let prefix = Bytes::copy_from_slice(&bytes[..cut]);
                match std::str::from_utf8(&prefix) {
                    Ok(text) => assert_eq!(Packet::decode_text_bytes(prefix.clone()), decode(text)),
                    Err(err) => assert_eq!(
                        Packet::decode_text_bytes(prefix),
                        Err(PacketError::InvalidUtf8 {
                            valid_up_to: err.valid_up_to()
                        })
                    ),
                }
            }
        }
        assert_eq!(
            Packet::decode_text_bytes(Bytes::from_static(b"4\xe2\x82")),
            Err(PacketError::InvalidUtf8 { valid_up_to: 1 })
        );
    }

    #[test]
    fn spec_payloads() {
        let packets = decode_payload(Bytes::from("4hello\x1e2\x1e4world"), 10).unwrap();
        assert_eq!(
            packets,
            [
                Packet::text("hello"),
                Packet::Ping(None),
                Packet::text("world")
            ]
        );
        assert_eq!(payload_of(&packets), b"4hello\x1e2\x1e4world");

        let packets = decode_payload(Bytes::from("4hello\x1ebAQIDBA=="), 10).unwrap();
        assert_eq!(
            packets,
            [Packet::text("hello"), Packet::binary(vec![1u8, 2, 3, 4])]
        );
        assert_eq!(payload_of(&packets), b"4hello\x1ebAQIDBA==");

        let packets = decode_payload(Bytes::from("4hello\x1e4€"), 10).unwrap();
        assert_eq!(packets, [Packet::text("hello"), Packet::text("€")]);
        assert_eq!(payload_of(&packets), "4hello\x1e4€".as_bytes());

        assert_eq!(decode_payload(Bytes::from("6"), 1).unwrap(), [Packet::Noop]);
        assert_eq!(payload_of(&[]), b"");
    }

    #[test]
    fn payload_text_is_a_slice_of_the_body() {
        let body = Bytes::from("4hello\x1e4world");
        let packets = decode_payload(body.clone(), 10).unwrap();
        let Packet::Message(Message::Text(world)) = &packets[1] else {
            panic!("not text");
        };
        assert_eq!(world.as_ptr(), body[8..].as_ptr());
    }

    #[test]
    fn payload_errors() {
        let err = |body: &[u8]| decode_payload(Bytes::copy_from_slice(body), 10).unwrap_err();
        assert_eq!(err(b""), PacketError::Empty);
        assert_eq!(err(b"\x1e"), PacketError::Empty);
        assert_eq!(err(b"4a\x1e"), PacketError::Empty);
        assert_eq!(err(b"\x1e4a"), PacketError::Empty);
        assert_eq!(err(b"4a\x1e\x1e4b"), PacketError::Empty);
        assert_eq!(err(b"4a\x1e9"), PacketError::UnknownType('9'));
        assert_eq!(err(b"4a\x1eb!!"), PacketError::InvalidBase64);
        assert_eq!(err(b"4a\xff"), PacketError::InvalidUtf8 { valid_up_to: 2 });
        assert!(matches!(
            err(b"4a\x1e0{}"),
            PacketError::InvalidHandshake(_)
        ));
    }

    #[test]
    fn too_many_packets() {
        let body = Bytes::from("6\x1e6\x1e6");
        assert_eq!(decode_payload(body.clone(), 3).unwrap().len(), 3);
        assert_eq!(
            decode_payload(body.clone(), 2),
            Err(PacketError::TooManyPackets { max: 2 })
        );
        assert_eq!(
            decode_payload(body.clone(), 0),
            Err(PacketError::TooManyPackets { max: 0 })
        );
        // The iterator hands out the allowed packets, then the error, then
        // nothing.
        let mut decoder = PayloadDecoder::new(body, 2).unwrap();
        assert_eq!(decoder.next(), Some(Ok(Packet::Noop)));
        assert_eq!(decoder.next(), Some(Ok(Packet::Noop)));
        assert_eq!(
            decoder.next(),
            Some(Err(PacketError::TooManyPackets { max: 2 }))
        );
        assert_eq!(decoder.next(), None);
    }

    #[test]
    fn decoder_stops_after_first_error() {
        let mut decoder = PayloadDecoder::new(Bytes::from("4a\x1e9\x1e4b"), 10).unwrap();
        assert_eq!(decoder.next(), Some(Ok(Packet::text("a"))));
        assert_eq!(decoder.next(), Some(Err(PacketError::UnknownType('9'))));
        assert_eq!(decoder.next(), None);
        assert_eq!(decoder.next(), None);
    }

    #[test]
    fn truncated_utf8_in_payload() {
        let full = "4hello\x1e4€\x1e4𝄞";
        let bytes = full.as_bytes();
        for cut in 1..=bytes.len() {
            let result = decode_payload(Bytes::copy_from_slice(&bytes[..cut]), 10);
            match std::str::from_utf8(&bytes[..cut]) {
                Ok(_) => {}
                Err(err) => assert_eq!(
                    result,
                    Err(PacketError::InvalidUtf8 {
                        valid_up_to: err.valid_up_to()
                    })
                ),
            }
        }
    }

    #[test]
    fn every_prefix_of_a_payload_decodes_without_panic() {
        let packets = [
            Packet::Open(Box::new(spec_handshake())),
            Packet::text("hé€𝄞llo"),
            Packet::binary(vec![0u8, 255, 7, 1, 2]),
            Packet::ping_probe(),
            Packet::Pong(None),
            Packet::Close,
            Packet::Upgrade,
            Packet::Noop,
        ];
        let payload = payload_of(&packets);
        for cut in 0..=payload.len() {
            let prefix = Bytes::copy_from_slice(&payload[..cut]);
            let _ = decode_payload(prefix.clone(), DEFAULT_MAX_PAYLOAD_PACKETS);
            let _ = Packet::decode_text_bytes(prefix);
        }
        assert_eq!(
            decode_payload(Bytes::from(payload), DEFAULT_MAX_PAYLOAD_PACKETS).unwrap(),
            packets
        );
    }

    #[test]
    fn separator_in_text_cannot_be_polled() {
        let mut out = BytesMut::from(&b"kept"[..]);
        let packets = [Packet::text("ok"), Packet::text("a\x1eb")];
        assert_eq!(
            encode_payload(&packets, &mut out),
            Err(PayloadEncodeError::SeparatorInText { index: 1 })
        );
        assert_eq!(&out[..], b"kept");
        let ping = [Packet::Ping(Some(Str::from("\x1e")))];
        assert!(encode_payload(&ping, &mut out).is_err());
        // Fine over WebSocket, where each packet has its own frame.
        let mut frame = BytesMut::new();
        packets[1].encode_frame(&mut frame);
        assert_eq!(&frame[..], b"4a\x1eb");
        // A sid with a separator is escaped by JSON.
        let mut handshake = spec_handshake();
        handshake.sid = Str::from("a\x1eb");
        let open = [Packet::Open(Box::new(handshake))];
        let body = payload_of(&open);
        assert_eq!(decode_payload(Bytes::from(body), 1).unwrap(), open);
    }

    fn any_text() -> impl Strategy<Value = Str> + Clone {
        any::<String>().prop_map(Str::from)
    }

    fn polling_text() -> impl Strategy<Value = Str> + Clone {
        "[^\x1e]*".prop_map(Str::from)
    }

    fn any_handshake() -> impl Strategy<Value = Handshake> {
        (
            any_text(),
            proptest::collection::vec(any_text(), 0..4),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(
                |(sid, upgrades, ping_interval, ping_timeout, max_payload)| Handshake {
                    sid,
                    upgrades,
                    ping_interval,
                    ping_timeout,
                    max_payload,
                },
            )
    }

    /// Every packet shape, with optional payloads never `Some("")` (which
    /// encodes like `None`).
    fn any_packet(text: impl Strategy<Value = Str> + Clone) -> impl Strategy<Value = Packet> {
        let optional =
            proptest::option::of(text.clone().prop_filter("non-empty", |t| !t.is_empty()));
        prop_oneof![
            any_handshake().prop_map(|h| Packet::Open(Box::new(h))),
            Just(Packet::Close),
            optional.clone().prop_map(Packet::Ping),
            optional.prop_map(Packet::Pong),
            text.prop_map(|t| Packet::Message(Message::Text(t))),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(Packet::binary),
            Just(Packet::Upgrade),
            Just(Packet::Noop),
        ]
    }

    proptest! {
        #[test]
        fn text_form_round_trip(packet in any_packet(any_text())) {
            let mut out = BytesMut::new();
            packet.encode_text(&mut out);
            prop_assert_eq!(Packet::decode_text_bytes(out.freeze()), Ok(packet));
        }

        #[test]
        fn frame_round_trip(packet in any_packet(any_text())) {
            let mut out = BytesMut::new();
            let decoded = match packet.encode_frame(&mut out) {
                FrameKind::Text => Packet::decode_text_bytes(out.freeze()),
                FrameKind::Binary => Ok(Packet::decode_binary(out.freeze())),
            };
            prop_assert_eq!(decoded, Ok(packet));
        }

        #[test]
        fn payload_round_trip(packets in proptest::collection::vec(any_packet(polling_text()), 1..8)) {
            let mut out = BytesMut::new();
            encode_payload(&packets, &mut out).unwrap();
            prop_assert_eq!(decode_payload(out.freeze(), packets.len()), Ok(packets));
        }

        #[test]
        fn handshake_json_round_trip(handshake in any_handshake()) {
            let mut out = BytesMut::new();
            handshake.encode_json(&mut out);
            let json = std::str::from_utf8(&out).unwrap();
            prop_assume!(json.len() <= MAX_HANDSHAKE_LEN);
            prop_assert_eq!(Handshake::from_json(json), Ok(handshake));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let bytes = Bytes::from(bytes);
            let _ = decode_payload(bytes.clone(), 4);
            let _ = Packet::decode_text_bytes(bytes);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[0-6b\x1e€a-zA-Z+/=]{0,32}") {
            let _ = decode_payload(Bytes::from(text.clone()), 4);
            let _ = Packet::decode_text(&Str::from(text));
        }
    }
}
