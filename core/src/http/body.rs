//! Reading side shared by server and client: finding the end of a head,
//! turning httparse's output into [`Headers`], deciding the body framing,
//! and decoding bodies incrementally under the limits.

use bytes::{Buf, Bytes, BytesMut};

use super::error::HttpError;
use super::types::{trim_ows, Headers, Version};
use super::Limits;
use crate::Str;

/// Longest chunk-size line (size plus extensions) accepted. Generous for
/// real extensions, small enough that a peer cannot make us buffer much.
const MAX_CHUNK_LINE: usize = 4096;

/// Drops the empty lines a peer may send between messages (RFC 9112 §2.2
/// lets a server ignore them; some clients add CRLF after a POST body).
pub(crate) fn skip_leading_newlines(buf: &mut BytesMut) {
    let blank = buf
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    buf.advance(blank);
}

/// Looks for the blank line ending a head, resuming at `*scanned` so that a
/// head fed byte by byte costs linear time. Returns the head length
/// including the blank line.
pub(crate) fn find_head_end(buf: &[u8], scanned: &mut usize) -> Option<usize> {
    // Back up far enough to see a terminator split across feeds.
    let start = scanned.saturating_sub(3);
    let found = buf[start..].iter().enumerate().find_map(|(i, &b)| {
        if b != b'\n' {
            return None;
        }
        let at = start + i;
        // `\n\n` or `\n\r\n` ends the head (httparse accepts bare LF).
        let bare_lf = at >= 1 && buf[at - 1] == b'\n';
        let crlf = at >= 2 && buf[at - 1] == b'\r' && buf[at - 2] == b'\n';
        (bare_lf || crlf).then_some(at + 1)
    });
    if found.is_none() {
        *scanned = buf.len();
    }
    found
}

/// Maps an httparse error to ours.
pub(crate) fn map_parse_error(err: httparse::Error) -> HttpError {
    match err {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::MalformedHead("invalid header name"),
        httparse::Error::HeaderValue => HttpError::MalformedHead("invalid header value"),
        httparse::Error::NewLine => HttpError::MalformedHead("invalid line ending"),
        httparse::Error::Status => HttpError::MalformedHead("invalid status code"),
        httparse::Error::Token => HttpError::MalformedHead("invalid token in start line"),
        httparse::Error::Version => HttpError::MalformedHead("unsupported HTTP version"),
    }
}

/// Copies httparse's borrowed headers into [`Headers`] that share `head`'s
/// memory.
pub(crate) fn collect_headers(
    head: &Bytes,
    parsed: &[httparse::Header<'_>],
) -> Result<Headers, HttpError> {
    let mut headers = Headers::new();
    for header in parsed {
        // httparse guarantees token characters, so this never fails; keep
        // it a typed error anyway rather than trusting it with a panic.
        let name = Str::try_from(head.slice_ref(header.name.as_bytes()))
            .map_err(|_| HttpError::MalformedHead("invalid header name"))?;
        let value = if header.value.is_empty() {
            Bytes::new()
        } else {
            head.slice_ref(header.value)
        };
        headers.append(name, value);
    }
    Ok(headers)
}

/// A string slice of `head` (a start-line element) as a shared [`Str`].
pub(crate) fn head_str(head: &Bytes, part: &str) -> Result<Str, HttpError> {
    if part.is_empty() {
        return Ok(Str::new());
    }
    Str::try_from(head.slice_ref(part.as_bytes()))
        .map_err(|_| HttpError::MalformedHead("start line is not UTF-8"))
}

/// Where a message body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body at all.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the peer closes (responses only).
    UntilClose,
}

/// The `Content-Length` of a message: absent, or one value that every
/// `Content-Length` field (and every element of a comma list in one) agrees
/// on. Anything but plain decimal digits is refused.
pub(crate) fn content_length(headers: &Headers) -> Result<Option<u64>, HttpError> {
    let mut length = None;
    for value in headers.get_all("content-length") {
        for element in value.split(|b| *b == b',') {
            let element = trim_ows(element);
            if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
                return Err(HttpError::InvalidContentLength);
            }
            let parsed = element.iter().try_fold(0u64, |acc, d| {
                acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            });
            let parsed = parsed.ok_or(HttpError::InvalidContentLength)?;
            match length {
                Some(previous) if previous != parsed => {
                    return Err(HttpError::InvalidContentLength)
                }
                _ => length = Some(parsed),
            }
        }
    }
    Ok(length)
}

/// What `Transfer-Encoding` says, if present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferCoding {
    /// The final coding is `chunked`, and it is the only one.
    Chunked,
    /// The final coding is not `chunked`.
    NotChunked,
}

/// Reads `Transfer-Encoding`. Refuses it next to `Content-Length` and in
/// HTTP/1.0 (RFC 9112 §6.1, §6.3: faulty framing), `chunked` applied twice,
/// and codings other than `chunked` before it (we cannot decode them).
pub(crate) fn transfer_coding(
    headers: &Headers,
    version: Version,
) -> Result<Option<TransferCoding>, HttpError> {
    if !headers.contains("transfer-encoding") {
        return Ok(None);
    }
    if headers.contains("content-length") {
        return Err(HttpError::ContentLengthWithTransferEncoding);
    }
    if version == Version::Http10 {
        return Err(HttpError::BadTransferEncoding);
    }
    let codings: Vec<&[u8]> = headers.tokens("transfer-encoding").collect();
    let Some((last, before)) = codings.split_last() else {
        return Err(HttpError::BadTransferEncoding);
    };
    let is_chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
    if before.iter().any(is_chunked) {
        return Err(HttpError::BadTransferEncoding);
    }
    if !is_chunked(last) {
        return Ok(Some(TransferCoding::NotChunked));
    }
    if !before.is_empty() {
        return Err(HttpError::UnsupportedTransferEncoding);
    }
    Ok(Some(TransferCoding::Chunked))
}

/// Incremental body decoder. Data is consumed from the connection buffer as
/// it is decoded, so what stays buffered is bounded by the limits.
#[derive(Debug)]
pub(crate) struct BodyReader {
    state: BodyState,
    body: BytesMut,
    max_body: usize,
    max_trailers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Length(usize),
    ChunkSize,
    ChunkData(usize),
    ChunkDataEnd,
    Trailers(usize),
    UntilClose,
    Empty,
}

impl BodyReader {
    /// A decoder for `framing`; a declared length over the limit is refused
    /// at once, before any of the body is buffered.
    pub(crate) fn new(framing: Framing, limits: &Limits) -> Result<Self, HttpError> {
        let state = match framing {
            Framing::Empty => BodyState::Empty,
            Framing::Length(n) => {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|n| *n <= limits.max_body_size)
                    .ok_or(HttpError::BodyTooLarge)?;
                BodyState::Length(n)
            }
            Framing::Chunked => BodyState::ChunkSize,
            Framing::UntilClose => BodyState::UntilClose,
        };
        Ok(BodyReader {
            state,
            body: BytesMut::new(),
            max_body: limits.max_body_size,
            max_trailers: limits.max_head_size,
        })
    }

    /// Whether no body byte has been seen yet and more are expected (for
    /// `Expect: 100-continue`).
    pub(crate) fn waiting_for_body(&self) -> bool {
        match self.state {
            BodyState::Length(n) => n > 0,
            BodyState::ChunkSize => self.body.is_empty(),
            _ => false,
        }
    }

    /// Consumes what it can from `buf`; returns the whole body once complete.
    pub(crate) fn poll(
        &mut self,
        buf: &mut BytesMut,
        eof: bool,
    ) -> Result<Option<Bytes>, HttpError> {
        loop {
            match self.state {
                BodyState::Empty => return Ok(Some(Bytes::new())),
                BodyState::Length(n) => {
                    if buf.len() >= n {
                        self.state = BodyState::Empty;
                        return Ok(Some(buf.split_to(n).freeze()));
                    }
                    return self.starved(eof);
                }
                BodyState::UntilClose => {
                    if buf.len() > self.max_body {
                        return Err(HttpError::BodyTooLarge);
                    }
                    if eof {
                        self.state = BodyState::Empty;
                        return Ok(Some(buf.split().freeze()));
                    }
                    return Ok(None);
                }
                BodyState::ChunkSize => {
                    let Some(line_end) = find_crlf(buf, MAX_CHUNK_LINE) else {
                        if buf.len() > MAX_CHUNK_LINE + 1 {
                            return Err(HttpError::InvalidChunk("chunk-size line too long"));
                        }
                        return self.starved(eof);
                    };
                    let size = parse_chunk_size(&buf[..line_end])?;
                    buf.advance(line_end + 2);
                    if size == 0 {
                        self.state = BodyState::Trailers(0);
                        continue;
                    }
                    let room = self.max_body - self.body.len();
                    let size = usize::try_from(size)
                        .ok()
                        .filter(|s| *s <= room)
                        .ok_or(HttpError::BodyTooLarge)?;
                    self.state = BodyState::ChunkData(size);
                }
                BodyState::ChunkData(remaining) => {
                    let take = remaining.min(buf.len());
                    self.body.extend_from_slice(&buf[..take]);
                    buf.advance(take);
                    if take < remaining {
                        self.state = BodyState::ChunkData(remaining - take);
                        return self.starved(eof);
                    }
                    self.state = BodyState::ChunkDataEnd;
                }
                BodyState::ChunkDataEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|b| *b != b'\r') {
                            return Err(HttpError::InvalidChunk("missing CRLF after chunk data"));
                        }
                        return self.starved(eof);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(HttpError::InvalidChunk("missing CRLF after chunk data"));
                    }
                    buf.advance(2);
                    self.state = BodyState::ChunkSize;
                }
                BodyState::Trailers(seen) => {
                    let room = self.max_trailers.saturating_sub(seen);
                    let Some(line_end) = find_crlf(buf, room) else {
                        if buf.len() > room + 1 {
                            return Err(HttpError::HeadTooLarge);
                        }
                        return self.starved(eof);
                    };
                    let line = &buf[..line_end];
                    // Trailer fields are tolerated and dropped, but a bare CR
                    // or LF inside one would hide a line break from us that
                    // another parser might honour.
                    if line.iter().any(|b| matches!(b, b'\r' | b'\n')) {
                        return Err(HttpError::InvalidChunk("bare CR or LF in trailer"));
                    }
                    buf.advance(line_end + 2);
                    if line_end == 0 {
                        self.state = BodyState::Empty;
                        return Ok(Some(std::mem::take(&mut self.body).freeze()));
                    }
                    self.state = BodyState::Trailers(seen + line_end + 2);
                }
            }
        }
    }

    fn starved(&self, eof: bool) -> Result<Option<Bytes>, HttpError> {
        if eof {
            Err(HttpError::UnexpectedEof)
        } else {
            Ok(None)
        }
    }
}

/// Position of the first CRLF in `buf`, looking no further than `max_line`
/// bytes of line content.
fn find_crlf(buf: &[u8], max_line: usize) -> Option<usize> {
    let window = &buf[..buf.len().min(max_line + 2)];
    window.windows(2).position(|w| w == b"\r\n")
}

/// Parses `chunk-size [ chunk-ext ]` (RFC 9112 §7.1): hex digits, then
/// optionally whitespace and `;`-introduced extensions, which are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, HttpError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(HttpError::InvalidChunk("chunk size is not hexadecimal"));
    }
    let size = line[..digits].iter().try_fold(0u64, |acc, d| {
        let digit = (*d as char).to_digit(16).unwrap_or(0);
        acc.checked_mul(16)?.checked_add(u64::from(digit))
    });
    let size = size.ok_or(HttpError::InvalidChunk("chunk size overflows"))?;
    let rest = &line[digits..];
    let blanks = rest
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    let ext = &rest[blanks..];
    match ext.first() {
        None if rest.is_empty() => {}
        Some(b';') => {}
        _ => return Err(HttpError::InvalidChunk("garbage after chunk size")),
    }
    if ext.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(HttpError::InvalidChunk("control byte in chunk extension"));
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.append(*n, *v);
        }
        h
    }

    #[test]
    fn head_end_is_found_across_feeds() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for split in 0..head.len() {
            let mut scanned = 0;
            let first = find_head_end(&head[..split], &mut scanned);
            let found = first.or_else(|| find_head_end(head, &mut scanned));
            assert_eq!(found, Some(head.len() - 4), "split at {split}");
        }
        let mut scanned = 0;
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\nHost: a\n\nx", &mut scanned),
            Some(24)
        );
    }

    #[test]
    fn content_length_rules() {
        assert_eq!(content_length(&headers(&[])), Ok(None));
        assert_eq!(
            content_length(&headers(&[("Content-Length", "42")])),
            Ok(Some(42))
        );
        assert_eq!(
            content_length(&headers(&[
                ("Content-Length", "42"),
                ("content-length", "42, 42")
            ])),
            Ok(Some(42))
        );
        for bad in [
            "-1",
            "+1",
            "0x10",
            "1 2",
            "",
            "abc",
            "99999999999999999999999",
            "4 2",
        ] {
            assert_eq!(
                content_length(&headers(&[("Content-Length", bad)])),
                Err(HttpError::InvalidContentLength),
                "{bad:?}"
            );
        }
        assert_eq!(
            content_length(&headers(&[
                ("Content-Length", "1"),
                ("Content-Length", "2")
            ])),
            Err(HttpError::InvalidContentLength)
        );
        assert_eq!(
            content_length(&headers(&[("Content-Length", "1,2")])),
            Err(HttpError::InvalidContentLength)
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        let v11 = Version::Http11;
        assert_eq!(transfer_coding(&headers(&[]), v11), Ok(None));
        assert_eq!(
            transfer_coding(&headers(&[("Transfer-Encoding", "Chunked")]), v11),
            Ok(Some(TransferCoding::Chunked))
        );
        assert_eq!(
            transfer_coding(&headers(&[("Transfer-Encoding", "gzip")]), v11),
            Ok(Some(TransferCoding::NotChunked))
        );
        assert_eq!(
            transfer_coding(&headers(&[("Transfer-Encoding", "gzip, chunked")]), v11),
            Err(HttpError::UnsupportedTransferEncoding)
        );
        assert_eq!(
            transfer_coding(
                &headers(&[
                    ("Transfer-Encoding", "chunked"),
                    ("Transfer-Encoding", "chunked")
                ]),
                v11
            ),
            Err(HttpError::BadTransferEncoding)
        );
        assert_eq!(
            transfer_coding(&headers(&[("Transfer-Encoding", " ")]), v11),
            Err(HttpError::BadTransferEncoding)
        );
        assert_eq!(
            transfer_coding(
                &headers(&[("Transfer-Encoding", "chunked")]),
                Version::Http10
            ),
            Err(HttpError::BadTransferEncoding)
        );
        assert_eq!(
            transfer_coding(
                &headers(&[("Transfer-Encoding", "chunked"), ("Content-Length", "3")]),
                v11
            ),
            Err(HttpError::ContentLengthWithTransferEncoding)
        );
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a"), Ok(26));
        assert_eq!(parse_chunk_size(b"00000000000000000000001"), Ok(1));
        assert_eq!(parse_chunk_size(b"5;name=value;x=\"q\""), Ok(5));
        assert_eq!(parse_chunk_size(b"5 \t;ext"), Ok(5));
        assert!(parse_chunk_size(b"").is_err());
        assert!(parse_chunk_size(b"-5").is_err());
        assert!(parse_chunk_size(b"0x5").is_err());
        assert!(parse_chunk_size(b"5 6").is_err());
        assert!(parse_chunk_size(b"5 ").is_err());
        assert_eq!(
            parse_chunk_size(b"10000000000000000"),
            Err(HttpError::InvalidChunk("chunk size overflows"))
        );
    }

    fn decode(framing: Framing, wire: &[u8], limits: &Limits) -> Result<Option<Bytes>, HttpError> {
        let mut reader = BodyReader::new(framing, limits)?;
        let mut buf = BytesMut::from(wire);
        reader.poll(&mut buf, false)
    }

    #[test]
    fn chunked_bodies() {
        let limits = Limits::default();
        let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX: y\r\n\r\n";
        assert_eq!(
            decode(Framing::Chunked, wire, &limits),
            Ok(Some(Bytes::from_static(b"Wikipedia in\r\n\r\nchunks.")))
        );
        assert_eq!(
            decode(Framing::Chunked, b"3\r\nabcX\r\n", &limits),
            Err(HttpError::InvalidChunk("missing CRLF after chunk data"))
        );
        assert_eq!(decode(Framing::Chunked, b"3\nabc", &limits), Ok(None));
        assert!(matches!(
            decode(Framing::Chunked, b"zz\r\n", &limits),
            Err(HttpError::InvalidChunk(_))
        ));
        let small = Limits {
            max_body_size: 4,
            ..Limits::default()
        };
        assert_eq!(
            decode(Framing::Chunked, b"3\r\nabc\r\n2\r\n", &small),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(
            decode(Framing::Chunked, b"ffffffffffff\r\n", &small),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(
            decode(Framing::Length(5), b"", &small).unwrap_err(),
            HttpError::BodyTooLarge
        );
        let long_line = [b'1'; MAX_CHUNK_LINE + 10];
        assert!(matches!(
            decode(Framing::Chunked, &long_line, &limits),
            Err(HttpError::InvalidChunk(_))
        ));
        let tiny_trailers = Limits {
            max_head_size: 8,
            ..Limits::default()
        };
        assert_eq!(
            decode(
                Framing::Chunked,
                b"0\r\nX-Long-Trailer: 123\r\n\r\n",
                &tiny_trailers
            ),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn eof_mid_body() {
        let limits = Limits::default();
        let mut reader = BodyReader::new(Framing::Length(10), &limits).unwrap();
        let mut buf = BytesMut::from(&b"12345"[..]);
        assert_eq!(reader.poll(&mut buf, false), Ok(None));
        assert_eq!(reader.poll(&mut buf, true), Err(HttpError::UnexpectedEof));
        let mut reader = BodyReader::new(Framing::UntilClose, &limits).unwrap();
        assert_eq!(reader.poll(&mut buf, false), Ok(None));
        assert_eq!(
            reader.poll(&mut buf, true),
            Ok(Some(Bytes::from_static(b"12345")))
        );
    }
}
