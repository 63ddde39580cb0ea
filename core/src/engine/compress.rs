//! Compression of long-polling responses, negotiated from `Accept-Encoding`
//! as engine.io does (gzip preferred over deflate at equal quality).

use std::io::Write;

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

/// A content coding the server can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentCoding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: the zlib format (RFC 1950), as HTTP and Node's zlib mean it.
    Deflate,
}

impl ContentCoding {
    /// The `Content-Encoding` token.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Deflate => "deflate",
        }
    }
}

/// Picks gzip or deflate from an `Accept-Encoding` value: the one with the
/// higher quality (an explicit entry, else `*`), gzip on a tie; `None` when
/// both are refused or the header is absent (only identity is then safe).
pub(crate) fn negotiate(accept_encoding: Option<&[u8]>) -> Option<ContentCoding> {
    let value = std::str::from_utf8(accept_encoding?).ok()?;
    let mut gzip = None;
    let mut deflate = None;
    let mut any = None;
    for element in value.split(',') {
        let mut parts = element.split(';');
        let name = parts.next().unwrap_or("").trim();
        let mut quality = 1.0f32;
        for param in parts {
            if let Some((key, q)) = param.split_once('=') {
                if key.trim().eq_ignore_ascii_case("q") {
                    quality = q.trim().parse().unwrap_or(0.0);
                }
            }
        }
        let slot = if name.eq_ignore_ascii_case("gzip") {
            &mut gzip
        } else if name.eq_ignore_ascii_case("deflate") {
            &mut deflate
        } else if name == "*" {
            &mut any
        } else {
            continue;
        };
        slot.get_or_insert(quality);
    }
    let gzip = gzip.or(any).unwrap_or(0.0);
    let deflate = deflate.or(any).unwrap_or(0.0);
    if gzip <= 0.0 && deflate <= 0.0 {
        None
    } else if gzip >= deflate {
        Some(ContentCoding::Gzip)
    } else {
        Some(ContentCoding::Deflate)
    }
}

/// Compresses `data` with `coding` at the default level.
pub(crate) fn compress(coding: ContentCoding, data: &[u8]) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    fn finish<W: Write>(mut encoder: W, data: &[u8]) -> std::io::Result<()> {
        encoder.write_all(data)?;
        encoder.flush()
    }
    match coding {
        ContentCoding::Gzip => {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            let _ = finish(&mut encoder, data);
            encoder.finish().unwrap_or_default()
        }
        ContentCoding::Deflate => {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
            let _ = finish(&mut encoder, data);
            encoder.finish().unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn negotiation() {
        use ContentCoding::*;
        assert_eq!(negotiate(None), None);
        assert_eq!(negotiate(Some(b"gzip, deflate, br")), Some(Gzip));
        assert_eq!(negotiate(Some(b"deflate")), Some(Deflate));
        assert_eq!(negotiate(Some(b"gzip;q=0.5, deflate")), Some(Deflate));
        assert_eq!(negotiate(Some(b"gzip;q=0, deflate;q=0")), None);
        assert_eq!(negotiate(Some(b"*")), Some(Gzip));
        assert_eq!(negotiate(Some(b"br, identity")), None);
        assert_eq!(negotiate(Some(b"*;q=0.1, gzip;q=0")), Some(Deflate));
    }

    #[test]
    fn round_trips() {
        let data = b"4hello".repeat(500);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&compress(ContentCoding::Gzip, &data)[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        out.clear();
        flate2::read::ZlibDecoder::new(&compress(ContentCoding::Deflate, &data)[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}
