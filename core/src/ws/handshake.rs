//! The opening handshake at the header level (RFC 6455 section 4).
//!
//! No HTTP parsing happens here: the HTTP layer checks the method (`GET`), the
//! version (HTTP/1.1 or later) and the target, and hands over the headers as
//! `(name, value)` pairs. Names match case-insensitively; a header that
//! appears on several lines counts as one comma-separated list where lists are
//! allowed.
//!
//! Subprotocols are not negotiated: Engine.IO needs none. The only extension
//! is permessage-deflate (see [`super::deflate`]), which the server negotiates
//! separately with [`super::negotiate_deflate`]; a client that offered none
//! refuses a response that selects any extension.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::deflate::{parse_extensions, DeflateConfig, DeflateParams, PERMESSAGE_DEFLATE};

/// The GUID RFC 6455 appends to the key before hashing.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this implementation speaks.
pub const WEBSOCKET_VERSION: &str = "13";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` value:
/// base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID);
    BASE64.encode(sha1.finalize())
}

/// Why an upgrade request or response was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// No `Upgrade` header with the `websocket` token.
    NotWebSocketUpgrade,
    /// No `Connection` header with the `upgrade` token.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is missing or not 13. RFC 6455 suggests
    /// answering 426 with `Sec-WebSocket-Version: 13`; engine.io answers a
    /// bare 400, as for every refused upgrade.
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key` header.
    MissingKey,
    /// More than one `Sec-WebSocket-Key` header.
    DuplicateKey,
    /// The key is not the base64 form of 16 bytes.
    InvalidKey,
    /// The server answered with a status other than 101 (the status).
    UnexpectedStatus(u16),
    /// The server's response has no `Sec-WebSocket-Accept` header, or more
    /// than one.
    MissingAccept,
    /// `Sec-WebSocket-Accept` does not match the key sent.
    AcceptMismatch,
    /// The server selected an extension that was not offered.
    UnexpectedExtension,
    /// A `Sec-WebSocket-Extensions` value does not parse, or the server's
    /// permessage-deflate parameters break RFC 7692 or the offer.
    InvalidExtension,
    /// The server selected a subprotocol although none was requested.
    UnexpectedSubprotocol,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            HandshakeError::NotWebSocketUpgrade => f.write_str("not a websocket upgrade"),
            HandshakeError::MissingConnectionUpgrade => {
                f.write_str("Connection header lacks the upgrade token")
            }
            HandshakeError::UnsupportedVersion => {
                f.write_str("Sec-WebSocket-Version missing or not 13")
            }
            HandshakeError::MissingKey => f.write_str("missing Sec-WebSocket-Key"),
            HandshakeError::DuplicateKey => f.write_str("more than one Sec-WebSocket-Key"),
            HandshakeError::InvalidKey => {
                f.write_str("Sec-WebSocket-Key is not 16 bytes in base64")
            }
            HandshakeError::UnexpectedStatus(status) => {
                write!(f, "expected status 101, got {status}")
            }
            HandshakeError::MissingAccept => f.write_str("missing Sec-WebSocket-Accept"),
            HandshakeError::AcceptMismatch => f.write_str("Sec-WebSocket-Accept does not match"),
            HandshakeError::UnexpectedExtension => {
                f.write_str("server selected an extension that was not offered")
            }
            HandshakeError::InvalidExtension => f.write_str("invalid Sec-WebSocket-Extensions"),
            HandshakeError::UnexpectedSubprotocol => f.write_str("server selected a subprotocol"),
        }
    }
}
impl std::error::Error for HandshakeError {}

/// One `(name, value)` header line, in whatever form the HTTP layer keeps
/// headers: any pair of byte-like things (`(&str, &[u8])`, `(String,
/// String)`, `(HeaderName, HeaderValue)`...), by value or by reference.
pub trait HeaderPair {
    /// The header name (matched case-insensitively).
    fn name(&self) -> &[u8];
    /// The header value.
    fn value(&self) -> &[u8];
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> HeaderPair for (N, V) {
    fn name(&self) -> &[u8] {
        self.0.as_ref()
    }
    fn value(&self) -> &[u8] {
        self.1.as_ref()
    }
}

impl<T: HeaderPair + ?Sized> HeaderPair for &T {
    fn name(&self) -> &[u8] {
        (**self).name()
    }
    fn value(&self) -> &[u8] {
        (**self).value()
    }
}

/// What the handshake needs to know from a header list, gathered in one pass
/// so that header values need not outlive the iteration.
#[derive(Default)]
struct SeenHeaders {
    upgrade_websocket: bool,
    connection_upgrade: bool,
    versions: usize,
    versions_ok: bool,
    keys: usize,
    /// The accept value for the first key, when that key is well-formed.
    accept_for_key: Option<String>,
    accepts: usize,
    accept_matches: bool,
    extensions: bool,
    /// The `Sec-WebSocket-Extensions` values, non-empty ones only.
    extension_values: Vec<Vec<u8>>,
    subprotocol: bool,
}

impl SeenHeaders {
    /// Walks the headers; `expected_accept` is what a client compares a
    /// `Sec-WebSocket-Accept` value against.
    fn gather<I>(headers: I, expected_accept: Option<&str>) -> SeenHeaders
    where
        I: IntoIterator,
        I::Item: HeaderPair,
    {
        let mut seen = SeenHeaders {
            versions_ok: true,
            ..SeenHeaders::default()
        };
        for header in headers {
            let name = header.name();
            let value = trim(header.value());
            if name.eq_ignore_ascii_case(b"upgrade") {
                seen.upgrade_websocket |= has_token(value, b"websocket");
            } else if name.eq_ignore_ascii_case(b"connection") {
                seen.connection_upgrade |= has_token(value, b"upgrade");
            } else if name.eq_ignore_ascii_case(b"sec-websocket-version") {
                seen.versions += 1;
                seen.versions_ok &= value == WEBSOCKET_VERSION.as_bytes();
            } else if name.eq_ignore_ascii_case(b"sec-websocket-key") {
                seen.keys += 1;
                if seen.keys == 1 && is_valid_key(value) {
                    seen.accept_for_key = Some(accept_key(value));
                }
            } else if name.eq_ignore_ascii_case(b"sec-websocket-accept") {
                seen.accepts += 1;
                seen.accept_matches = expected_accept.is_some_and(|e| value == e.as_bytes());
            } else if name.eq_ignore_ascii_case(b"sec-websocket-extensions") {
                seen.extensions |= !value.is_empty();
                if !value.is_empty() {
                    seen.extension_values.push(value.to_vec());
                }
            } else if name.eq_ignore_ascii_case(b"sec-websocket-protocol") {
                seen.subprotocol |= !value.is_empty();
            }
        }
        seen
    }

    fn check_upgrade(&self) -> Result<(), HandshakeError> {
        if !self.upgrade_websocket {
            return Err(HandshakeError::NotWebSocketUpgrade);
        }
        if !self.connection_upgrade {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        Ok(())
    }
}

/// Strips optional whitespace (spaces and tabs) around a header value.
fn trim(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// Whether a comma-separated header value holds `token` (ASCII
/// case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|item| trim(item).eq_ignore_ascii_case(token))
}

/// Whether `key` is base64 of 16 bytes: 22 alphabet characters then `==`.
/// Like Node's `ws`, the unused low bits of the last character are not
/// checked: the server only hashes the key as text.
fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key[22..] == *b"=="
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// A validated upgrade request: what the server answers with status 101.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeResponse {
    accept: String,
}

impl UpgradeResponse {
    /// The `Sec-WebSocket-Accept` value.
    pub fn accept(&self) -> &str {
        &self.accept
    }

    /// The headers of the `101 Switching Protocols` response, in order.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", &self.accept),
        ]
    }
}

/// Server side: validates a client's upgrade request headers and prepares
/// the 101 response.
///
/// Requires `Upgrade` with the `websocket` token, `Connection` with the
/// `upgrade` token (both case-insensitive, possibly among other tokens),
/// `Sec-WebSocket-Version: 13`, and exactly one `Sec-WebSocket-Key` that is
/// base64 of 16 bytes. The caller then sends `101 Switching Protocols` with
/// [`UpgradeResponse::headers`] and runs a [`super::WebSocket::server`].
pub fn accept_upgrade<I>(headers: I) -> Result<UpgradeResponse, HandshakeError>
where
    I: IntoIterator,
    I::Item: HeaderPair,
{
    let seen = SeenHeaders::gather(headers, None);
    seen.check_upgrade()?;
    if seen.versions == 0 || !seen.versions_ok {
        return Err(HandshakeError::UnsupportedVersion);
    }
    match seen.keys {
        0 => Err(HandshakeError::MissingKey),
        1 => match seen.accept_for_key {
            Some(accept) => Ok(UpgradeResponse { accept }),
            None => Err(HandshakeError::InvalidKey),
        },
        _ => Err(HandshakeError::DuplicateKey),
    }
}

/// Client side of the handshake: the request headers for a nonce and the
/// check of the server's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    key: String,
    expected_accept: String,
    /// The permessage-deflate offer, when one is made.
    deflate: Option<DeflateConfig>,
}

impl ClientHandshake {
    /// A handshake for the caller's 16-byte nonce. The core has no
    /// randomness; RFC 6455 asks for a nonce chosen randomly for each
    /// connection, so take it from a CSPRNG.
    pub fn new(nonce: [u8; 16]) -> ClientHandshake {
        let key = BASE64.encode(nonce);
        let expected_accept = accept_key(key.as_bytes());
        ClientHandshake {
            key,
            expected_accept,
            deflate: None,
        }
    }

    /// Offers permessage-deflate with these wishes: send
    /// [`extension_offer`](Self::extension_offer) with the request, and
    /// check the answer with
    /// [`validate_response_extensions`](Self::validate_response_extensions).
    #[cfg(feature = "deflate")]
    pub fn with_deflate(mut self, config: DeflateConfig) -> ClientHandshake {
        self.deflate = Some(config);
        self
    }

    /// The `Sec-WebSocket-Extensions` value to send besides
    /// [`request_headers`](Self::request_headers), when an extension is
    /// offered.
    pub fn extension_offer(&self) -> Option<String> {
        self.deflate.as_ref().map(DeflateConfig::client_offer)
    }

    /// The `Sec-WebSocket-Key` value.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The headers the `GET` request carries besides `Host` (and any the
    /// application adds, such as cookies or `Origin`), in order.
    pub fn request_headers(&self) -> [(&'static str, &str); 4] {
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", &self.key),
            ("Sec-WebSocket-Version", WEBSOCKET_VERSION),
        ]
    }

    /// Checks the server's response: status 101, `Upgrade: websocket`,
    /// `Connection: upgrade`, exactly one `Sec-WebSocket-Accept` matching the
    /// key, no subprotocol, and no extension unless one was offered. On
    /// success run a [`super::WebSocket::client`] (with the negotiated
    /// permessage-deflate when one was offered: use
    /// [`validate_response_extensions`](Self::validate_response_extensions)
    /// to learn it).
    pub fn validate_response<I>(&self, status: u16, headers: I) -> Result<(), HandshakeError>
    where
        I: IntoIterator,
        I::Item: HeaderPair,
    {
        self.validate_response_extensions(status, headers).map(drop)
    }

    /// [`validate_response`](Self::validate_response), also returning the
    /// permessage-deflate parameters the server accepted (`None`: it
    /// declined, and messages go uncompressed). Selecting an extension other
    /// than the one offered, or more than one, fails the handshake.
    pub fn validate_response_extensions<I>(
        &self,
        status: u16,
        headers: I,
    ) -> Result<Option<DeflateParams>, HandshakeError>
    where
        I: IntoIterator,
        I::Item: HeaderPair,
    {
        if status != 101 {
            return Err(HandshakeError::UnexpectedStatus(status));
        }
        let seen = SeenHeaders::gather(headers, Some(&self.expected_accept));
        seen.check_upgrade()?;
        if seen.accepts != 1 {
            return Err(HandshakeError::MissingAccept);
        }
        if !seen.accept_matches {
            return Err(HandshakeError::AcceptMismatch);
        }
        if seen.subprotocol {
            return Err(HandshakeError::UnexpectedSubprotocol);
        }
        let Some(offer) = &self.deflate else {
            if seen.extensions {
                return Err(HandshakeError::UnexpectedExtension);
            }
            return Ok(None);
        };
        let mut selected = Vec::new();
        for value in &seen.extension_values {
            selected.extend(parse_extensions(value)?);
        }
        match &selected[..] {
            [] => Ok(None),
            [deflate] if deflate.name == PERMESSAGE_DEFLATE => {
                DeflateParams::accept_response(&deflate.params, offer).map(Some)
            }
            _ => Err(HandshakeError::UnexpectedExtension),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn rfc_request() -> Vec<(&'static str, &'static str)> {
        vec![
            ("Host", "server.example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", RFC_KEY),
            ("Origin", "http://example.com"),
            ("Sec-WebSocket-Protocol", "chat, superchat"),
            ("Sec-WebSocket-Version", "13"),
        ]
    }

    fn without(name: &str) -> Vec<(&'static str, &'static str)> {
        rfc_request()
            .into_iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
            .collect()
    }

    fn with(name: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut headers = without(name);
        headers.push((name, value));
        headers
    }

    #[test]
    fn rfc_accept_example() {
        assert_eq!(accept_key(RFC_KEY.as_bytes()), RFC_ACCEPT);
    }

    #[test]
    fn server_accepts_rfc_request() {
        let response = accept_upgrade(&rfc_request()).unwrap();
        assert_eq!(response.accept(), RFC_ACCEPT);
        assert_eq!(
            response.headers(),
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", RFC_ACCEPT),
            ]
        );
    }

    #[test]
    fn server_matches_names_and_tokens_loosely() {
        let headers: Vec<(String, Vec<u8>)> = vec![
            ("UPGRADE".into(), b" WebSocket ".to_vec()),
            ("connection".into(), b"keep-alive, Upgrade".to_vec()),
            ("sec-websocket-key".into(), RFC_KEY.into()),
            ("SEC-WEBSOCKET-VERSION".into(), b"13".to_vec()),
        ];
        assert_eq!(accept_upgrade(&headers).unwrap().accept(), RFC_ACCEPT);
    }

    #[test]
    fn server_refusals() {
        assert_eq!(
            accept_upgrade(&without("Upgrade")),
            Err(HandshakeError::NotWebSocketUpgrade)
        );
        assert_eq!(
            accept_upgrade(&with("Upgrade", "h2c")),
            Err(HandshakeError::NotWebSocketUpgrade)
        );
        assert_eq!(
            accept_upgrade(&with("Connection", "keep-alive")),
            Err(HandshakeError::MissingConnectionUpgrade)
        );
        assert_eq!(
            accept_upgrade(&without("Sec-WebSocket-Version")),
            Err(HandshakeError::UnsupportedVersion)
        );
        assert_eq!(
            accept_upgrade(&with("Sec-WebSocket-Version", "8")),
            Err(HandshakeError::UnsupportedVersion)
        );
        assert_eq!(
            accept_upgrade(&without("Sec-WebSocket-Key")),
            Err(HandshakeError::MissingKey)
        );
        let mut twice = rfc_request();
        twice.push(("Sec-WebSocket-Key", RFC_KEY));
        assert_eq!(accept_upgrade(&twice), Err(HandshakeError::DuplicateKey));
        for bad in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZQ=",
            "dGhlIHNhbXBsZSBub25jZ===",
            "dGhlIHNhbXBsZSBub25j*Q==",
            "dGhlIHNhbXBsZSBub25jZWVl",
        ] {
            assert_eq!(
                accept_upgrade(&with("Sec-WebSocket-Key", bad)),
                Err(HandshakeError::InvalidKey),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn client_request_and_response() {
        // The RFC's sample nonce is the ASCII text "the sample nonce".
        let handshake = ClientHandshake::new(*b"the sample nonce");
        assert_eq!(handshake.key(), RFC_KEY);
        assert_eq!(
            handshake.request_headers(),
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", RFC_KEY),
                ("Sec-WebSocket-Version", "13"),
            ]
        );
        // The server side's answer satisfies the client side.
        let response = accept_upgrade(&handshake.request_headers()).unwrap();
        assert_eq!(
            handshake.validate_response(101, &response.headers()),
            Ok(())
        );
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn client_deflate_offer_and_answers() {
        let handshake =
            ClientHandshake::new(*b"the sample nonce").with_deflate(DeflateConfig::default());
        let offer = handshake.extension_offer().unwrap();
        assert_eq!(offer, "permessage-deflate; client_max_window_bits");
        let good = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", RFC_ACCEPT),
        ];
        let with_ext = |value: &'static str| {
            let mut headers = good.to_vec();
            headers.push(("Sec-WebSocket-Extensions", value));
            headers
        };
        // Declined: no extension in the answer.
        assert_eq!(handshake.validate_response_extensions(101, &good), Ok(None));
        let params = handshake
            .validate_response_extensions(
                101,
                &with_ext("permessage-deflate; client_max_window_bits=10"),
            )
            .unwrap()
            .unwrap();
        assert_eq!(params.client_window_bits(), 10);
        assert_eq!(
            handshake.validate_response(101, &with_ext("permessage-deflate")),
            Ok(())
        );
        assert_eq!(
            handshake.validate_response(101, &with_ext("x-webkit-deflate-frame")),
            Err(HandshakeError::UnexpectedExtension)
        );
        assert_eq!(
            handshake.validate_response(101, &with_ext("permessage-deflate, permessage-deflate")),
            Err(HandshakeError::UnexpectedExtension)
        );
        assert_eq!(
            handshake.validate_response(101, &with_ext("permessage-deflate; bogus")),
            Err(HandshakeError::InvalidExtension)
        );
        assert_eq!(
            handshake.validate_response(101, &with_ext("permessage-deflate; a=\"")),
            Err(HandshakeError::InvalidExtension)
        );
        // The server side's answer to the offer satisfies the client side.
        let mut request: Vec<(&str, String)> = handshake
            .request_headers()
            .iter()
            .map(|(n, v)| (*n, v.to_string()))
            .collect();
        request.push(("Sec-WebSocket-Extensions", offer));
        let response = accept_upgrade(&request).unwrap();
        let params = crate::ws::negotiate_deflate(&request, &DeflateConfig::default()).unwrap();
        let mut answer: Vec<(&str, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| (*n, v.to_string()))
            .collect();
        answer.push(("Sec-WebSocket-Extensions", params.response_header()));
        assert_eq!(
            handshake.validate_response_extensions(101, &answer),
            Ok(Some(params))
        );
    }

    #[test]
    fn client_refusals() {
        let handshake = ClientHandshake::new(*b"the sample nonce");
        let good = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", RFC_ACCEPT),
        ];
        assert_eq!(
            handshake.validate_response(400, &good),
            Err(HandshakeError::UnexpectedStatus(400))
        );
        assert_eq!(
            handshake.validate_response(101, &good[..2]),
            Err(HandshakeError::MissingAccept)
        );
        assert_eq!(
            handshake.validate_response(101, &good[1..]),
            Err(HandshakeError::NotWebSocketUpgrade)
        );
        assert_eq!(
            handshake.validate_response(101, &[good[0], good[2]]),
            Err(HandshakeError::MissingConnectionUpgrade)
        );
        let wrong = [good[0], good[1], ("Sec-WebSocket-Accept", RFC_KEY)];
        assert_eq!(
            handshake.validate_response(101, &wrong),
            Err(HandshakeError::AcceptMismatch)
        );
        let twice = [good[0], good[1], good[2], good[2]];
        assert_eq!(
            handshake.validate_response(101, &twice),
            Err(HandshakeError::MissingAccept)
        );
        let ext = [
            good[0],
            good[1],
            good[2],
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
        ];
        assert_eq!(
            handshake.validate_response(101, &ext),
            Err(HandshakeError::UnexpectedExtension)
        );
        let proto = [
            good[0],
            good[1],
            good[2],
            ("Sec-WebSocket-Protocol", "chat"),
        ];
        assert_eq!(
            handshake.validate_response(101, &proto),
            Err(HandshakeError::UnexpectedSubprotocol)
        );
    }
}
