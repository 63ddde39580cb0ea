//! permessage-deflate (RFC 7692): the negotiation of its parameters in the
//! opening handshake and, with the `deflate` cargo feature, the per-message
//! compression itself.
//!
//! The negotiation is plain header parsing and is always compiled, so that a
//! client built without the feature can still refuse an answer it did not
//! ask for. Compressing needs the feature: `WebSocket::with_deflate`
//! and `ClientHandshake::with_deflate` exist only with it.
//!
//! # Window sizes
//! We always inflate with the largest window (2^15 bytes), which reads any
//! stream a peer limited to a smaller window produces, so we never ask the
//! peer to limit its window. When the peer limits ours (`server_max_window_bits`
//! from a client, `client_max_window_bits` from a server) we honour it
//! without a window-limited compressor: we compress only messages no longer
//! than the window, each with a fresh compressor, so no back-reference can
//! reach further than the message itself. Longer messages go uncompressed,
//! which RFC 7692 allows for any message.

use std::fmt::Write as _;

use super::handshake::{HandshakeError, HeaderPair};

/// The extension token.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The largest LZ77 window, as a base-2 logarithm (32 KiB).
pub const MAX_WINDOW_BITS: u8 = 15;

/// The smallest window RFC 7692 allows (256 bytes).
pub const MIN_WINDOW_BITS: u8 = 8;

/// Our side's wishes for permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Smallest message compressed, in bytes (1024, engine.io's
    /// `perMessageDeflate.threshold`): shorter ones are not worth it.
    pub threshold: usize,
    /// zlib compression level, 0-9 (6, zlib's default).
    pub level: u32,
    /// Ask that the server reset its compressor after every message (the
    /// server always grants it when configured on its side). Saves the
    /// peer's memory at the cost of compression ratio.
    pub server_no_context_takeover: bool,
    /// Ask that the client reset its compressor after every message.
    pub client_no_context_takeover: bool,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig {
            threshold: 1024,
            level: 6,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
        }
    }
}

impl DeflateConfig {
    /// The `Sec-WebSocket-Extensions` value a client offers: it accepts any
    /// window the server picks for it (`client_max_window_bits` without a
    /// value), plus the no-context-takeover wishes.
    pub fn client_offer(&self) -> String {
        let mut offer = String::from(PERMESSAGE_DEFLATE);
        offer.push_str("; client_max_window_bits");
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        offer
    }
}

/// The parameters agreed in the handshake, as the server's response states
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The server's window limit, when the response states one (else 15).
    pub server_max_window_bits: Option<u8>,
    /// The client's window limit, when the response states one (else 15).
    pub client_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// The window the server compresses with, at most.
    pub fn server_window_bits(&self) -> u8 {
        self.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS)
    }

    /// The window the client compresses with, at most.
    pub fn client_window_bits(&self) -> u8 {
        self.client_max_window_bits.unwrap_or(MAX_WINDOW_BITS)
    }

    /// The `Sec-WebSocket-Extensions` value of the server's 101 response.
    pub fn response_header(&self) -> String {
        let mut value = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            let _ = write!(value, "; server_max_window_bits={bits}");
        }
        if let Some(bits) = self.client_max_window_bits {
            let _ = write!(value, "; client_max_window_bits={bits}");
        }
        value
    }

    /// Server side: the answer to one client offer (its parameters), or
    /// `None` to decline it (RFC 7692 section 7.1: an unknown or repeated
    /// parameter, or an invalid value).
    ///
    /// A `server_max_window_bits` limit is granted at the value asked (see
    /// the module notes on windows); `client_max_window_bits` is left out of
    /// the answer because we inflate with the full window whatever the
    /// client uses.
    pub fn accept_offer(
        params: &[ExtensionParam],
        config: &DeflateConfig,
    ) -> Option<DeflateParams> {
        let mut seen = SeenParams::default();
        for param in params {
            match param.name.as_str() {
                "server_no_context_takeover" if param.value.is_none() => {
                    seen.mark(0)?;
                    seen.server_no_context_takeover = true;
                }
                "client_no_context_takeover" if param.value.is_none() => {
                    seen.mark(1)?;
                    seen.client_no_context_takeover = true;
                }
                "server_max_window_bits" => {
                    seen.mark(2)?;
                    seen.server_max_window_bits = Some(window_bits(param.value.as_deref()?)?);
                }
                "client_max_window_bits" => {
                    seen.mark(3)?;
                    if let Some(value) = param.value.as_deref() {
                        window_bits(value)?;
                    }
                }
                _ => return None,
            }
        }
        Some(DeflateParams {
            server_no_context_takeover: seen.server_no_context_takeover
                || config.server_no_context_takeover,
            client_no_context_takeover: seen.client_no_context_takeover
                || config.client_no_context_takeover,
            server_max_window_bits: seen.server_max_window_bits,
            client_max_window_bits: None,
        })
    }

    /// Client side: checks the parameters of the server's answer against the
    /// offer [`DeflateConfig::client_offer`] made. Every parameter at most
    /// once, window values 8-15, and a `server_no_context_takeover` we asked
    /// for must be granted.
    pub fn accept_response(
        params: &[ExtensionParam],
        config: &DeflateConfig,
    ) -> Result<DeflateParams, HandshakeError> {
        let invalid = || HandshakeError::InvalidExtension;
        let mut seen = SeenParams::default();
        let mut client_max_window_bits = None;
        for param in params {
            match param.name.as_str() {
                "server_no_context_takeover" if param.value.is_none() => {
                    seen.mark(0).ok_or_else(invalid)?;
                    seen.server_no_context_takeover = true;
                }
                "client_no_context_takeover" if param.value.is_none() => {
                    seen.mark(1).ok_or_else(invalid)?;
                    seen.client_no_context_takeover = true;
                }
                "server_max_window_bits" => {
                    seen.mark(2).ok_or_else(invalid)?;
                    let value = param.value.as_deref().ok_or_else(invalid)?;
                    seen.server_max_window_bits = Some(window_bits(value).ok_or_else(invalid)?);
                }
                "client_max_window_bits" => {
                    seen.mark(3).ok_or_else(invalid)?;
                    let value = param.value.as_deref().ok_or_else(invalid)?;
                    client_max_window_bits = Some(window_bits(value).ok_or_else(invalid)?);
                }
                _ => return Err(invalid()),
            }
        }
        if config.server_no_context_takeover && !seen.server_no_context_takeover {
            return Err(invalid());
        }
        Ok(DeflateParams {
            server_no_context_takeover: seen.server_no_context_takeover,
            client_no_context_takeover: seen.client_no_context_takeover
                || config.client_no_context_takeover,
            server_max_window_bits: seen.server_max_window_bits,
            client_max_window_bits,
        })
    }
}

/// Which parameters an offer or answer named, to refuse repeats.
#[derive(Default)]
struct SeenParams {
    names: [bool; 4],
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
}

impl SeenParams {
    /// Records parameter `index`; `None` when it was already there.
    fn mark(&mut self, index: usize) -> Option<()> {
        if std::mem::replace(&mut self.names[index], true) {
            None
        } else {
            Some(())
        }
    }
}

/// A window size parameter value: a decimal 8-15 without leading zeros.
fn window_bits(value: &str) -> Option<u8> {
    if value.is_empty() || value.len() > 2 || value.starts_with('0') {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (MIN_WINDOW_BITS..=MAX_WINDOW_BITS)
        .contains(&bits)
        .then_some(bits)
}

/// One parameter of an extension in `Sec-WebSocket-Extensions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionParam {
    /// The parameter name, lowercased.
    pub name: String,
    /// The value, unquoted, when there is one.
    pub value: Option<String>,
}

/// One element of `Sec-WebSocket-Extensions`: an offer from a client, or
/// the server's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The extension name, lowercased.
    pub name: String,
    /// Its parameters, in order.
    pub params: Vec<ExtensionParam>,
}

/// Parses a `Sec-WebSocket-Extensions` value (RFC 6455 section 9.1):
/// `name *(; param[=value])` elements separated by commas, values as tokens
/// or quoted strings (which must hold a token once unquoted). Empty list
/// elements are skipped. Names are lowercased.
pub fn parse_extensions(value: &[u8]) -> Result<Vec<Extension>, HandshakeError> {
    let invalid = HandshakeError::InvalidExtension;
    let mut extensions = Vec::new();
    for element in split_unquoted(value, b',') {
        let element = trim(element);
        if element.is_empty() {
            continue;
        }
        let mut parts = split_unquoted(element, b';').into_iter();
        let name = token(trim(parts.next().unwrap_or_default())).ok_or(invalid.clone())?;
        let mut params = Vec::new();
        for part in parts {
            let part = trim(part);
            let (name, value) = match part.iter().position(|b| *b == b'=') {
                Some(eq) => (trim(&part[..eq]), Some(trim(&part[eq + 1..]))),
                None => (part, None),
            };
            let name = token(name).ok_or(invalid.clone())?;
            let value = match value {
                None => None,
                Some(value) => Some(param_value(value).ok_or(invalid.clone())?),
            };
            params.push(ExtensionParam { name, value });
        }
        extensions.push(Extension { name, params });
    }
    Ok(extensions)
}

/// Server side: the parameters to accept from a client's upgrade request
/// headers, or `None` when it offered no acceptable permessage-deflate (or
/// its `Sec-WebSocket-Extensions` does not parse, which declines every
/// offer rather than failing the upgrade). The first acceptable offer wins,
/// as RFC 7692 section 5 asks. Answer with
/// [`DeflateParams::response_header`].
pub fn negotiate_deflate<I>(headers: I, config: &DeflateConfig) -> Option<DeflateParams>
where
    I: IntoIterator,
    I::Item: HeaderPair,
{
    for header in headers {
        if !header
            .name()
            .eq_ignore_ascii_case(b"sec-websocket-extensions")
        {
            continue;
        }
        let Ok(offers) = parse_extensions(header.value()) else {
            return None;
        };
        let accepted = offers
            .iter()
            .filter(|offer| offer.name == PERMESSAGE_DEFLATE)
            .find_map(|offer| DeflateParams::accept_offer(&offer.params, config));
        if accepted.is_some() {
            return accepted;
        }
    }
    None
}

/// Splits at `separator` outside double quotes (a backslash escapes the
/// next byte inside them).
fn split_unquoted(value: &[u8], separator: u8) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, byte) in value.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && *byte == b'\\' {
            escaped = true;
        } else if *byte == b'"' {
            quoted = !quoted;
        } else if !quoted && *byte == separator {
            parts.push(&value[start..i]);
            start = i + 1;
        }
    }
    parts.push(&value[start..]);
    parts
}

fn trim(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// An RFC 7230 token, lowercased.
fn token(value: &[u8]) -> Option<String> {
    let is_tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if value.is_empty() || !value.iter().all(is_tchar) {
        return None;
    }
    Some(String::from_utf8_lossy(value).to_ascii_lowercase())
}

/// A parameter value: a token, or a quoted string holding a token.
fn param_value(value: &[u8]) -> Option<String> {
    let Some(inner) = value
        .strip_prefix(b"\"")
        .and_then(|rest| rest.strip_suffix(b"\""))
    else {
        return token(value);
    };
    let mut unescaped = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\\' => unescaped.push(*bytes.next()?),
            b'"' => return None,
            _ => unescaped.push(*byte),
        }
    }
    token(&unescaped)
}

#[cfg(feature = "deflate")]
pub(crate) use codec::DeflateCodec;

#[cfg(feature = "deflate")]
mod codec {
    use bytes::BytesMut;
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

    use super::{DeflateConfig, DeflateParams, MAX_WINDOW_BITS};
    use crate::ws::error::WsError;
    use crate::ws::frame::Role;

    /// The four bytes a sync flush ends with, removed by the sender and put
    /// back by the receiver (RFC 7692 section 7.2.1).
    const SYNC_TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

    /// Inflation works through a stack buffer of this size.
    const INFLATE_CHUNK: usize = 8 * 1024;

    /// The compression state of one connection. The zlib streams are
    /// allocated on first use: a connection that never sends or receives a
    /// compressed message costs nothing.
    pub(crate) struct DeflateCodec {
        params: DeflateParams,
        threshold: usize,
        level: Compression,
        /// Our compressor's window limit, from the peer.
        send_window_bits: u8,
        /// We reset our compressor after each message.
        send_reset: bool,
        /// The peer resets its compressor after each message.
        receive_reset: bool,
        compressor: Option<Box<Compress>>,
        decompressor: Option<Box<Decompress>>,
        /// The peer's stream ended (BFINAL) inside the current message.
        stream_ended: bool,
    }

    impl std::fmt::Debug for DeflateCodec {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.debug_struct("DeflateCodec")
                .field("params", &self.params)
                .field("threshold", &self.threshold)
                .finish_non_exhaustive()
        }
    }

    impl DeflateCodec {
        pub(crate) fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
            let (send_window_bits, send_reset, receive_reset) = match role {
                Role::Server => (
                    params.server_window_bits(),
                    params.server_no_context_takeover,
                    params.client_no_context_takeover,
                ),
                Role::Client => (
                    params.client_window_bits(),
                    params.client_no_context_takeover,
                    params.server_no_context_takeover,
                ),
            };
            DeflateCodec {
                params,
                threshold: config.threshold,
                level: Compression::new(config.level.min(9)),
                send_window_bits,
                send_reset,
                receive_reset,
                compressor: None,
                decompressor: None,
                stream_ended: false,
            }
        }

        pub(crate) fn params(&self) -> &DeflateParams {
            &self.params
        }

        /// The compressed form of a message, trailer removed; `None` to send
        /// it as it is (under the threshold, longer than a limited window, or
        /// the compressor failed).
        pub(crate) fn compress(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
            let window_limited = self.send_window_bits < MAX_WINDOW_BITS;
            if payload.len() < self.threshold
                || (window_limited && payload.len() > 1usize << self.send_window_bits)
            {
                return None;
            }
            let level = self.level;
            let compressor = self
                .compressor
                .get_or_insert_with(|| Box::new(Compress::new(level, false)));
            let mut out = Vec::with_capacity(payload.len() / 2 + 64);
            let mut consumed = 0;
            let result = loop {
                if out.len() == out.capacity() {
                    out.reserve(out.capacity().max(64));
                }
                let before = compressor.total_in();
                if compressor
                    .compress_vec(&payload[consumed..], &mut out, FlushCompress::Sync)
                    .is_err()
                {
                    break None;
                }
                consumed += (compressor.total_in() - before) as usize;
                // Room left in the output means the flush is complete.
                if consumed == payload.len() && out.len() < out.capacity() {
                    break Some(());
                }
            };
            if result.is_none() || self.send_reset || window_limited {
                compressor.reset();
            }
            result?;
            if out.ends_with(&SYNC_TRAILER) {
                out.truncate(out.len() - SYNC_TRAILER.len());
            }
            Some(out)
        }

        /// Inflates one frame of a compressed message into `out`, failing
        /// with [`WsError::MessageTooLarge`] as soon as `out` would grow over
        /// `max`: a small frame that inflates to gigabytes costs no more
        /// than `max` bytes. `fin` ends the message.
        pub(crate) fn decompress(
            &mut self,
            payload: &[u8],
            fin: bool,
            out: &mut BytesMut,
            max: usize,
        ) -> Result<(), WsError> {
            let result = self.inflate(payload, out, max).and_then(|()| match fin {
                true => self.inflate(&SYNC_TRAILER, out, max),
                false => Ok(()),
            });
            if fin || result.is_err() {
                let reset = self.receive_reset || self.stream_ended || result.is_err();
                self.stream_ended = false;
                if reset {
                    if let Some(decompressor) = &mut self.decompressor {
                        decompressor.reset(false);
                    }
                }
            }
            result
        }

        fn inflate(&mut self, input: &[u8], out: &mut BytesMut, max: usize) -> Result<(), WsError> {
            if self.stream_ended {
                // What follows a final block is ignored, as zlib does: RFC
                // 7692 section 7.2.3.5 has the sender add a byte there.
                return Ok(());
            }
            let decompressor = self
                .decompressor
                .get_or_insert_with(|| Box::new(Decompress::new(false)));
            let mut chunk = [0u8; INFLATE_CHUNK];
            let mut consumed = 0;
            loop {
                let (in_before, out_before) = (decompressor.total_in(), decompressor.total_out());
                let status = decompressor
                    .decompress(&input[consumed..], &mut chunk, FlushDecompress::Sync)
                    .map_err(|_| WsError::InvalidCompressedData)?;
                let read = (decompressor.total_in() - in_before) as usize;
                let produced = (decompressor.total_out() - out_before) as usize;
                consumed += read;
                let len = out.len() + produced;
                if len > max {
                    return Err(WsError::MessageTooLarge {
                        len: len as u64,
                        max,
                    });
                }
                out.extend_from_slice(&chunk[..produced]);
                if status == Status::StreamEnd {
                    self.stream_ended = true;
                    return Ok(());
                }
                if consumed == input.len() && produced < chunk.len() {
                    return Ok(());
                }
                if read == 0 && produced == 0 {
                    // No progress with input left: the stream is stuck.
                    return Err(WsError::InvalidCompressedData);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, Option<&str>)]) -> Vec<ExtensionParam> {
        list.iter()
            .map(|(name, value)| ExtensionParam {
                name: name.to_string(),
                value: value.map(str::to_owned),
            })
            .collect()
    }

    #[test]
    fn parse_offers() {
        let offers = parse_extensions(
            b"permessage-deflate; client_max_window_bits=\"10\"; server_no_context_takeover , , \
              Permessage-Deflate;client_max_window_bits, x-foo",
        )
        .unwrap();
        assert_eq!(offers.len(), 3);
        assert_eq!(offers[0].name, "permessage-deflate");
        assert_eq!(
            offers[0].params,
            params(&[
                ("client_max_window_bits", Some("10")),
                ("server_no_context_takeover", None)
            ])
        );
        assert_eq!(offers[1].name, "permessage-deflate");
        assert_eq!(
            offers[1].params,
            params(&[("client_max_window_bits", None)])
        );
        assert_eq!(offers[2].name, "x-foo");
        assert!(offers[2].params.is_empty());
        // A quoted comma does not split elements.
        let offers = parse_extensions(b"a; b=\"c\\\"\", d").unwrap_err();
        assert_eq!(offers, HandshakeError::InvalidExtension);
        for bad in [
            &b"permessage-deflate; =1"[..],
            b"; a",
            b"permessage deflate",
            b"a; b=\"c d\"",
            b"a; b=\"unterminated",
            b"a; b=c=d",
        ] {
            assert_eq!(
                parse_extensions(bad),
                Err(HandshakeError::InvalidExtension),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_extensions(b"").unwrap(), vec![]);
    }

    #[test]
    fn server_accepts_first_acceptable_offer() {
        let config = DeflateConfig::default();
        let headers = [(
            "Sec-WebSocket-Extensions",
            "x-webkit-deflate-frame, permessage-deflate; foo=1, \
             permessage-deflate; server_max_window_bits=10; client_max_window_bits, \
             permessage-deflate",
        )];
        let accepted = negotiate_deflate(&headers, &config).unwrap();
        assert_eq!(
            accepted,
            DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: Some(10),
                client_max_window_bits: None,
            }
        );
        assert_eq!(
            accepted.response_header(),
            "permessage-deflate; server_max_window_bits=10"
        );
        // The usual browser offer.
        let headers = [(
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        )];
        let accepted = negotiate_deflate(&headers, &config).unwrap();
        assert_eq!(accepted.response_header(), "permessage-deflate");
        // Several header lines count as one list.
        let headers = [
            ("Sec-WebSocket-Extensions", "x-foo"),
            (
                "Sec-WebSocket-Extensions",
                "permessage-deflate; client_no_context_takeover",
            ),
        ];
        assert_eq!(
            negotiate_deflate(&headers, &config)
                .unwrap()
                .response_header(),
            "permessage-deflate; client_no_context_takeover"
        );
    }

    #[test]
    fn server_declines_invalid_offers() {
        let config = DeflateConfig::default();
        for offer in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
            "permessage-deflate; mystery",
            "permessage-deflate; \"bad",
            "x-other",
            "",
        ] {
            let headers = [("Sec-WebSocket-Extensions", offer)];
            assert_eq!(negotiate_deflate(&headers, &config), None, "{offer}");
        }
        assert_eq!(negotiate_deflate(&[("Host", "x")], &config), None);
    }

    #[test]
    fn server_config_adds_no_context_takeover() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let headers = [("Sec-WebSocket-Extensions", "permessage-deflate")];
        assert_eq!(
            negotiate_deflate(&headers, &config)
                .unwrap()
                .response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn client_offer_and_answers() {
        let config = DeflateConfig::default();
        assert_eq!(
            config.client_offer(),
            "permessage-deflate; client_max_window_bits"
        );
        let accept = |answer: &str, config: &DeflateConfig| {
            let parsed = parse_extensions(answer.as_bytes())?;
            DeflateParams::accept_response(&parsed[0].params, config)
        };
        let granted = accept(
            "permessage-deflate; client_max_window_bits=9; server_max_window_bits=12; \
             client_no_context_takeover; server_no_context_takeover",
            &config,
        )
        .unwrap();
        assert_eq!(granted.client_window_bits(), 9);
        assert_eq!(granted.server_window_bits(), 12);
        assert!(granted.client_no_context_takeover && granted.server_no_context_takeover);
        for bad in [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; extra",
        ] {
            assert_eq!(
                accept(bad, &config),
                Err(HandshakeError::InvalidExtension),
                "{bad}"
            );
        }
        // A server_no_context_takeover we asked for must be granted.
        let strict = DeflateConfig {
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            strict.client_offer(),
            "permessage-deflate; client_max_window_bits; server_no_context_takeover"
        );
        assert_eq!(
            accept("permessage-deflate", &strict),
            Err(HandshakeError::InvalidExtension)
        );
        assert!(accept("permessage-deflate; server_no_context_takeover", &strict).is_ok());
        // The server's answer to our offer satisfies us.
        let headers = [("Sec-WebSocket-Extensions", config.client_offer())];
        let answer = negotiate_deflate(&headers, &config).unwrap();
        assert_eq!(accept(&answer.response_header(), &config), Ok(answer));
    }

    #[cfg(feature = "deflate")]
    mod codec {
        use bytes::BytesMut;
        use proptest::prelude::*;

        use super::super::*;
        use crate::ws::error::WsError;
        use crate::ws::frame::Role;

        fn no_threshold() -> DeflateConfig {
            DeflateConfig {
                threshold: 0,
                ..DeflateConfig::default()
            }
        }

        fn codec(role: Role, params: DeflateParams) -> DeflateCodec {
            DeflateCodec::new(role, params, &no_threshold())
        }

        fn plain() -> DeflateParams {
            DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: None,
                client_max_window_bits: None,
            }
        }

        fn inflate(codec: &mut DeflateCodec, data: &[u8], max: usize) -> Result<Vec<u8>, WsError> {
            let mut out = BytesMut::new();
            codec.decompress(data, true, &mut out, max)?;
            Ok(out.to_vec())
        }

        #[test]
        fn rfc7692_hello_examples() {
            let mut receiver = codec(Role::Client, plain());
            // Section 7.2.3.1: "Hello" compressed.
            let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
            assert_eq!(inflate(&mut receiver, &hello, 100).unwrap(), b"Hello");
            // Section 7.2.3.2: the same again with context takeover, using a
            // back-reference into the previous message.
            let again = [0xf2, 0x00, 0x11, 0x00, 0x00];
            assert_eq!(inflate(&mut receiver, &again, 100).unwrap(), b"Hello");
            // Section 7.2.3.3: a stored (uncompressed) block.
            let stored = [
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ];
            assert_eq!(inflate(&mut receiver, &stored, 100).unwrap(), b"Hello");
            // Section 7.2.3.5: a final block (BFINAL) and then more.
            let mut fresh = codec(Role::Client, plain());
            let final_block = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
            assert_eq!(inflate(&mut fresh, &final_block, 100).unwrap(), b"Hello");
            assert_eq!(inflate(&mut fresh, &hello, 100).unwrap(), b"Hello");
            // Section 7.2.3.1 fragmented: "Hel" and "lo" in two frames.
            let mut fragmented = codec(Role::Client, plain());
            let mut out = BytesMut::new();
            fragmented
                .decompress(&[0xf2, 0x48, 0xcd], false, &mut out, 100)
                .unwrap();
            fragmented
                .decompress(&[0xc9, 0xc9, 0x07, 0x00], true, &mut out, 100)
                .unwrap();
            assert_eq!(&out[..], b"Hello");
        }

        #[test]
        fn compress_matches_rfc_hello() {
            let mut sender = codec(Role::Server, plain());
            // Compressors differ in the exact bytes: check by inflating.
            let compressed = sender.compress(b"Hello").unwrap();
            let mut receiver = codec(Role::Client, plain());
            assert_eq!(inflate(&mut receiver, &compressed, 100).unwrap(), b"Hello");
            // With context takeover the second copy is shorter.
            let second = sender.compress(b"Hello").unwrap();
            assert!(second.len() < compressed.len(), "{second:?}");
            assert_eq!(inflate(&mut receiver, &second, 100).unwrap(), b"Hello");
        }

        #[test]
        fn threshold_and_window_limits() {
            let mut sender = DeflateCodec::new(Role::Server, plain(), &DeflateConfig::default());
            assert!(sender.compress(&[b'a'; 1023]).is_none());
            assert!(sender.compress(&[b'a'; 1024]).is_some());
            // The client limited our window to 2^9: only messages up to 512
            // bytes are compressed, each on its own.
            let limited = DeflateParams {
                server_max_window_bits: Some(9),
                ..plain()
            };
            let mut sender = codec(Role::Server, limited);
            let mut receiver = codec(Role::Client, limited);
            assert!(sender.compress(&[b'a'; 513]).is_none());
            for _ in 0..3 {
                let compressed = sender.compress(&[b'b'; 512]).unwrap();
                assert_eq!(
                    inflate(&mut receiver, &compressed, 1000).unwrap(),
                    [b'b'; 512]
                );
            }
            // A client limited by client_max_window_bits likewise.
            let limited = DeflateParams {
                client_max_window_bits: Some(8),
                ..plain()
            };
            let mut sender = codec(Role::Client, limited);
            assert!(sender.compress(&[b'a'; 257]).is_none());
            assert!(sender.compress(&[b'a'; 256]).is_some());
        }

        #[test]
        fn no_context_takeover_resets_the_compressor() {
            let params = DeflateParams {
                server_no_context_takeover: true,
                ..plain()
            };
            let mut sender = codec(Role::Server, params);
            let first = sender.compress(b"Hello Hello Hello").unwrap();
            let second = sender.compress(b"Hello Hello Hello").unwrap();
            assert_eq!(first, second);
            // A fresh receiver for each message can read each.
            for message in [first, second] {
                let mut receiver = codec(Role::Client, params);
                assert_eq!(
                    inflate(&mut receiver, &message, 100).unwrap(),
                    b"Hello Hello Hello"
                );
            }
        }

        #[test]
        fn zip_bomb_stops_at_the_limit() {
            let mut sender = codec(Role::Client, plain());
            let bomb = sender.compress(&vec![0u8; 10_000_000]).unwrap();
            assert!(bomb.len() < 20_000, "{}", bomb.len());
            let mut receiver = codec(Role::Server, plain());
            let mut out = BytesMut::new();
            let err = receiver
                .decompress(&bomb, true, &mut out, 100_000)
                .unwrap_err();
            assert!(
                matches!(err, WsError::MessageTooLarge { max: 100_000, .. }),
                "{err:?}"
            );
            assert!(out.len() <= 100_000);
            assert!(out.capacity() < 200_000, "{}", out.capacity());
            // Exactly at the limit is fine.
            let mut receiver = codec(Role::Server, plain());
            let mut sender = codec(Role::Client, plain());
            let exact = sender.compress(&[7u8; 5000]).unwrap();
            assert_eq!(inflate(&mut receiver, &exact, 5000).unwrap().len(), 5000);
        }

        #[test]
        fn garbage_is_invalid_compressed_data() {
            let mut receiver = codec(Role::Server, plain());
            assert_eq!(
                inflate(&mut receiver, &[0xff, 0xff, 0xff, 0xff], 100),
                Err(WsError::InvalidCompressedData)
            );
            // After an error the stream restarts clean.
            assert_eq!(
                inflate(
                    &mut receiver,
                    &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
                    100
                )
                .unwrap(),
                b"Hello"
            );
        }

        proptest! {
            #[test]
            fn round_trip(
                messages in proptest::collection::vec(
                    proptest::collection::vec(0u8..4, 0..3000), 1..6),
                server_reset: bool,
                bits in 8u8..=15,
            ) {
                let params = DeflateParams {
                    server_no_context_takeover: server_reset,
                    server_max_window_bits: Some(bits),
                    ..plain()
                };
                let mut sender = codec(Role::Server, params);
                let mut receiver = codec(Role::Client, params);
                for message in &messages {
                    if let Some(compressed) = sender.compress(message) {
                        prop_assert_eq!(&inflate(&mut receiver, &compressed, 5000).unwrap(), message);
                    }
                }
            }
        }
    }
}
