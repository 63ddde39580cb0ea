//! Close frames: status codes (RFC 6455 section 7.4) and the close payload.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{LocalError, WsError};
use super::frame::MAX_CONTROL_PAYLOAD;
use crate::Str;

/// A close status code (RFC 6455 section 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present. Reported locally, never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection dropped without a close frame. Reported locally,
    /// never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data did not match its type (text that is not UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a frame or message was too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client needed an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway got an invalid response upstream (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: the TLS handshake failed. Reported locally, never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether the code may appear in a close frame: 1000-1003, 1007-1014
    /// (1012-1014 are IANA-registered and accepted by Node's `ws`) and the
    /// 3000-4999 range for libraries and applications. 1004 is reserved;
    /// 1005, 1006 and 1015 only ever describe a closure locally; everything
    /// else below 3000 is reserved for future protocol versions.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The body of a close frame that carried a status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason, possibly empty; at most 123 bytes.
    pub reason: Str,
}

/// The longest reason that fits in a close frame beside its 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// Parses a received close payload: empty (no status), or a valid code
/// followed by a UTF-8 reason.
pub(crate) fn parse_close_payload(payload: BytesMut) -> Result<Option<CloseFrame>, WsError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(WsError::InvalidClosePayload),
        _ => {
            let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
            if !code.is_valid_on_wire() {
                return Err(WsError::InvalidCloseCode(code.0));
            }
            let reason = Str::try_from(Bytes::from(payload).slice(2..))
                .map_err(|_| WsError::InvalidCloseReason)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// Builds a close payload to send, checking what the application asked for.
pub(crate) fn close_payload(code: CloseCode, reason: &str) -> Result<BytesMut, LocalError> {
    if !code.is_valid_on_wire() {
        return Err(LocalError::InvalidCloseCode(code.0));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(LocalError::CloseReasonTooLong(reason.len()));
    }
    let mut payload = BytesMut::with_capacity(2 + reason.len());
    payload.put_u16(code.0);
    payload.put_slice(reason.as_bytes());
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity() {
        for valid in [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
            assert!(CloseCode(valid).is_valid_on_wire(), "{valid}");
        }
        for invalid in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(invalid).is_valid_on_wire(), "{invalid}");
        }
    }

    #[test]
    fn parse_payloads() {
        assert_eq!(parse_close_payload(BytesMut::new()), Ok(None));
        assert_eq!(
            parse_close_payload(BytesMut::from(&[0x03][..])),
            Err(WsError::InvalidClosePayload)
        );
        assert_eq!(
            parse_close_payload(BytesMut::from(&[0x03, 0xED][..])),
            Err(WsError::InvalidCloseCode(1005))
        );
        assert_eq!(
            parse_close_payload(BytesMut::from(&[0x03, 0xE8, 0xC3][..])),
            Err(WsError::InvalidCloseReason)
        );
        assert_eq!(
            parse_close_payload(BytesMut::from(&b"\x03\xe8bye"[..])),
            Ok(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: Str::from_static("bye")
            }))
        );
    }

    #[test]
    fn build_payloads() {
        assert_eq!(
            &close_payload(CloseCode::GOING_AWAY, "x").unwrap()[..],
            b"\x03\xe9x"
        );
        assert_eq!(
            close_payload(CloseCode::NO_STATUS, ""),
            Err(LocalError::InvalidCloseCode(1005))
        );
        assert!(close_payload(CloseCode::NORMAL, &"a".repeat(123)).is_ok());
        assert_eq!(
            close_payload(CloseCode::NORMAL, &"a".repeat(124)),
            Err(LocalError::CloseReasonTooLong(124))
        );
    }
}
