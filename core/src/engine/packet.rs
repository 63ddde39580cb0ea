//! Engine.IO v4 packets (implementation in progress).

use bytes::Bytes;

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
