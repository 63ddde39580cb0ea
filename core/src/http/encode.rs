//! Writing side shared by server and client: start lines and header fields,
//! validated so that application data can never forge extra lines.

use bytes::{BufMut, BytesMut};

use super::error::UsageError;
use super::types::Headers;

/// Whether `name` is an HTTP token (RFC 9110 §5.6.2).
pub(crate) fn is_token(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// Whether `value` can sit on one header line: no CR, LF or NUL.
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// Checks the application's headers before anything is written: valid names
/// and values, and no framing fields, which the codec writes itself.
pub(crate) fn check_headers(headers: &Headers) -> Result<(), UsageError> {
    for (name, value) in headers.iter() {
        if !is_token(name.as_bytes()) || !is_field_value(value) {
            return Err(UsageError::InvalidHeader);
        }
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return Err(UsageError::FramingHeader);
        }
    }
    Ok(())
}

/// Appends `name: value\r\n`.
pub(crate) fn put_header(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Appends every header of `headers`.
pub(crate) fn put_headers(out: &mut BytesMut, headers: &Headers) {
    for (name, value) in headers.iter() {
        put_header(out, name, value);
    }
}

/// Appends `Content-Length: n\r\n`.
pub(crate) fn put_content_length(out: &mut BytesMut, length: usize) {
    put_header(
        out,
        "Content-Length",
        itoa::Buffer::new().format(length).as_bytes(),
    );
}

/// Appends one chunk of a chunked body (nothing for empty data, which would
/// read as the last chunk).
pub(crate) fn put_chunk(out: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.put_slice(format!("{:X}\r\n", data.len()).as_bytes());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// The last chunk with no trailers.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_validation() {
        let mut h = Headers::new();
        h.append("X-Ok", "fine value");
        assert_eq!(check_headers(&h), Ok(()));
        h.append("X-Evil", "a\r\nSet-Cookie: x");
        assert_eq!(check_headers(&h), Err(UsageError::InvalidHeader));
        let mut h = Headers::new();
        h.append("Bad Name", "v");
        assert_eq!(check_headers(&h), Err(UsageError::InvalidHeader));
        let mut h = Headers::new();
        h.append("content-length", "3");
        assert_eq!(check_headers(&h), Err(UsageError::FramingHeader));
    }

    #[test]
    fn chunks() {
        let mut out = BytesMut::new();
        put_chunk(&mut out, b"");
        put_chunk(&mut out, &[b'x'; 26]);
        out.put_slice(LAST_CHUNK);
        assert!(out.starts_with(b"1A\r\nxxx"));
        assert!(out.ends_with(b"x\r\n0\r\n\r\n"));
    }
}
