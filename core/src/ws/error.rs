//! Errors: what the peer did wrong ([`WsError`]) and what the application
//! asked for that cannot be done ([`LocalError`]), kept apart as wsproto does.

use std::fmt;

use super::close::CloseCode;

/// The peer broke RFC 6455 or a configured limit. The connection is failed:
/// [`super::WebSocket`] has queued a close frame with [`WsError::close_code`]
/// (unless a close was already sent) and reads nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsError {
    /// An RSV bit is set although no extension was negotiated (the bits found).
    ReservedBits(u8),
    /// A reserved opcode (the value found).
    ReservedOpcode(u8),
    /// A client sent an unmasked frame.
    UnmaskedFrame,
    /// A server sent a masked frame.
    MaskedFrame,
    /// The payload length was not encoded in the fewest bytes.
    NonMinimalLength,
    /// A 64-bit payload length with its most significant bit set.
    InvalidLength,
    /// A control frame without FIN.
    FragmentedControlFrame,
    /// A control frame with more than 125 bytes of payload.
    ControlFrameTooLarge,
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// A text message that is not UTF-8 (including one that ends inside a
    /// multi-byte sequence).
    InvalidUtf8,
    /// A close frame with a 1-byte payload.
    InvalidClosePayload,
    /// A close frame with a code not allowed on the wire (the code found).
    InvalidCloseCode(u16),
    /// A close frame whose reason is not UTF-8.
    InvalidCloseReason,
    /// A frame declared a payload over the maximum frame size.
    FrameTooLarge {
        /// The declared payload length.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A message would grow over the maximum message size.
    MessageTooLarge {
        /// The message length the frame would bring it to.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// The transport ended without a completed close handshake.
    UnexpectedEof,
    /// A compressed message (permessage-deflate) does not inflate.
    InvalidCompressedData,
}

impl WsError {
    /// The close code this error calls for: 1007 for bad UTF-8 or bad
    /// compressed data (as Node's `ws`), 1009 for
    /// limits, 1006 (reported locally, never sent) for a lost transport, 1002
    /// for the rest.
    pub fn close_code(&self) -> CloseCode {
        match self {
            WsError::InvalidUtf8 | WsError::InvalidCloseReason | WsError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            WsError::FrameTooLarge { .. } | WsError::MessageTooLarge { .. } => {
                CloseCode::MESSAGE_TOO_BIG
            }
            WsError::UnexpectedEof => CloseCode::ABNORMAL,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            WsError::ReservedBits(bits) => write!(f, "reserved bits set: {bits:#05b}"),
            WsError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            WsError::UnmaskedFrame => f.write_str("unmasked frame from client"),
            WsError::MaskedFrame => f.write_str("masked frame from server"),
            WsError::NonMinimalLength => f.write_str("payload length not minimally encoded"),
            WsError::InvalidLength => f.write_str("64-bit payload length has its high bit set"),
            WsError::FragmentedControlFrame => f.write_str("fragmented control frame"),
            WsError::ControlFrameTooLarge => f.write_str("control frame payload over 125 bytes"),
            WsError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message in progress")
            }
            WsError::ExpectedContinuation => {
                f.write_str("new message started before the previous one finished")
            }
            WsError::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            WsError::InvalidClosePayload => f.write_str("close frame with a 1-byte payload"),
            WsError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            WsError::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            WsError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            WsError::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
            WsError::UnexpectedEof => f.write_str("connection ended without a close handshake"),
            WsError::InvalidCompressedData => f.write_str("compressed message does not inflate"),
        }
    }
}
impl std::error::Error for WsError {}

/// The application asked for something the connection cannot do. Nothing was
/// queued.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalError {
    /// A close frame was already sent or the connection is closed: no more
    /// frames may be sent.
    NotOpen,
    /// A ping or pong payload over 125 bytes (the length given).
    ControlPayloadTooLarge(usize),
    /// A close reason over 123 bytes (the length given).
    CloseReasonTooLong(usize),
    /// A close code that may not be sent (1005, 1006, 1015, reserved ranges).
    InvalidCloseCode(u16),
}

impl fmt::Display for LocalError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            LocalError::NotOpen => f.write_str("the WebSocket is closing or closed"),
            LocalError::ControlPayloadTooLarge(len) => {
                write!(f, "control payload of {len} bytes exceeds 125")
            }
            LocalError::CloseReasonTooLong(len) => {
                write!(f, "close reason of {len} bytes exceeds 123")
            }
            LocalError::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
        }
    }
}
impl std::error::Error for LocalError {}
