//! How single items are written, the one thing MessagePack and CBOR do
//! differently on encode: [`WireFormat`], and its MessagePack form.

use std::fmt;

use bytes::BytesMut;
use serde::ser::{self};

/// Append `bytes` to `out`. `BytesMut`'s `BufMut` methods (`put_u8`,
/// `put_slice`, ...) are not inlined across crates and cost a call and a
/// `memcpy` per byte written; `extend_from_slice` is, so a short array of
/// known length becomes a plain store.
#[inline(always)]
pub(in crate::parser) fn put(out: &mut BytesMut, bytes: &[u8]) {
    out.extend_from_slice(bytes);
}

/// A marker byte followed by the big-endian bytes of a number, in one
/// write.
#[inline(always)]
pub(in crate::parser) fn put_marked<const N: usize>(
    out: &mut BytesMut,
    marker: u8,
    bytes: [u8; N],
) {
    out.reserve(1 + N);
    put(out, &[marker]);
    put(out, &bytes);
}

/// An item header (or a whole small item): at most 9 bytes in both formats.
#[derive(Debug, Clone, Copy)]
pub(in crate::parser) struct Header {
    bytes: [u8; 9],
    pub(super) len: u8,
}

impl Header {
    /// A header of `marker` followed by the big-endian bytes of `arg`.
    pub(in crate::parser) fn new(marker: u8, arg: &[u8]) -> Header {
        let mut bytes = [0; 9];
        bytes[0] = marker;
        bytes[1..=arg.len()].copy_from_slice(arg);
        Header {
            bytes,
            len: 1 + arg.len() as u8,
        }
    }

    /// The encoded bytes.
    pub(in crate::parser) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Append the header to `out`: one-byte headers (the common case)
    /// without a slice copy.
    #[inline]
    pub(in crate::parser) fn put(&self, out: &mut BytesMut) {
        if self.len == 1 {
            put(out, &[self.bytes[0]]);
        } else {
            out.extend_from_slice(self.as_slice());
        }
    }
}

/// What the first byte of an encoded item says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::parser) enum ItemKind {
    /// A map.
    Map,
    /// A text string.
    Str,
    /// Anything else.
    Other,
}

/// How one binary format writes single items; [`WireSerializer`] does the
/// rest.
pub(in crate::parser) trait WireFormat {
    /// Size of the headers from [`WireFormat::wide_array_header`] and
    /// [`WireFormat::wide_map_header`].
    const WIDE_HEADER_LEN: usize;
    /// Null / nil.
    fn nil(out: &mut BytesMut);
    /// A boolean.
    fn bool(out: &mut BytesMut, v: bool);
    /// A non-negative integer.
    fn uint(out: &mut BytesMut, v: u64);
    /// A negative integer.
    fn neg_int(out: &mut BytesMut, v: i64);
    /// A single precision float.
    fn f32(out: &mut BytesMut, v: f32);
    /// A double precision float.
    fn f64(out: &mut BytesMut, v: f64);
    /// The header of a UTF-8 string of `len` bytes.
    fn str_header(len: usize) -> Result<Header, WireError>;
    /// The header of a binary value of `len` bytes.
    fn bin_header(len: usize) -> Result<Header, WireError>;
    /// The header of an array of `len` items.
    fn array_header(len: usize) -> Result<Header, WireError>;
    /// The header of a map of `len` entries.
    fn map_header(len: usize) -> Result<Header, WireError>;
    /// A placeholder array header, widest form, patched once the count is
    /// known.
    fn wide_array_header() -> Header;
    /// A placeholder map header, widest form.
    fn wide_map_header() -> Header;
    /// What the item starting with `first` is.
    fn kind(first: u8) -> ItemKind;

    /// A whole string: its header and bytes, with one reservation.
    #[inline]
    fn put_str(out: &mut BytesMut, v: &str) -> Result<(), WireError> {
        let header = Self::str_header(v.len())?;
        out.reserve(usize::from(header.len) + v.len());
        header.put(out);
        out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    /// One of the packet map's keys (`type`, `nsp`, `data`, `id`).
    #[inline]
    fn put_key(out: &mut BytesMut, key: &'static str) {
        // Short ASCII: never too long.
        let _ = Self::put_str(out, key);
    }
}

/// An error while serializing a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::parser) struct WireError(pub(super) String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for WireError {}
impl ser::Error for WireError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        WireError(msg.to_string())
    }
}

pub(in crate::parser) fn too_long() -> WireError {
    WireError("value too long for the format".to_owned())
}

/// MessagePack's item encoding.
pub(in crate::parser) struct MsgPack;

impl WireFormat for MsgPack {
    const WIDE_HEADER_LEN: usize = 5;

    fn nil(out: &mut BytesMut) {
        put(out, &[0xc0]);
    }
    fn bool(out: &mut BytesMut, v: bool) {
        put(out, &[if v { 0xc3 } else { 0xc2 }]);
    }
    fn uint(out: &mut BytesMut, v: u64) {
        if v < 0x80 {
            put(out, &[v as u8]);
        } else if let Ok(v) = u8::try_from(v) {
            put(out, &[0xcc, v]);
        } else if let Ok(v) = u16::try_from(v) {
            put_marked(out, 0xcd, v.to_be_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            put_marked(out, 0xce, v.to_be_bytes());
        } else {
            put_marked(out, 0xcf, v.to_be_bytes());
        }
    }
    fn neg_int(out: &mut BytesMut, v: i64) {
        if v >= -32 {
            put(out, &[v as u8]);
        } else if let Ok(v) = i8::try_from(v) {
            put(out, &[0xd0, v as u8]);
        } else if let Ok(v) = i16::try_from(v) {
            put_marked(out, 0xd1, v.to_be_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            put_marked(out, 0xd2, v.to_be_bytes());
        } else {
            put_marked(out, 0xd3, v.to_be_bytes());
        }
    }
    fn f32(out: &mut BytesMut, v: f32) {
        put_marked(out, 0xca, v.to_be_bytes());
    }
    fn f64(out: &mut BytesMut, v: f64) {
        put_marked(out, 0xcb, v.to_be_bytes());
    }
    fn str_header(len: usize) -> Result<Header, WireError> {
        Ok(if len < 32 {
            Header::new(0xa0 | len as u8, &[])
        } else if let Ok(n) = u8::try_from(len) {
            Header::new(0xd9, &[n])
        } else if let Ok(n) = u16::try_from(len) {
            Header::new(0xda, &n.to_be_bytes())
        } else {
            let n = u32::try_from(len).map_err(|_| too_long())?;
            Header::new(0xdb, &n.to_be_bytes())
        })
    }
    fn bin_header(len: usize) -> Result<Header, WireError> {
        Ok(if let Ok(n) = u8::try_from(len) {
            Header::new(0xc4, &[n])
        } else if let Ok(n) = u16::try_from(len) {
            Header::new(0xc5, &n.to_be_bytes())
        } else {
            let n = u32::try_from(len).map_err(|_| too_long())?;
            Header::new(0xc6, &n.to_be_bytes())
        })
    }
    fn array_header(len: usize) -> Result<Header, WireError> {
        container_header(len, 0x90, 0xdc)
    }
    fn map_header(len: usize) -> Result<Header, WireError> {
        container_header(len, 0x80, 0xde)
    }
    fn wide_array_header() -> Header {
        Header::new(0xdd, &[0; 4])
    }
    fn wide_map_header() -> Header {
        Header::new(0xdf, &[0; 4])
    }
    fn kind(first: u8) -> ItemKind {
        match first {
            0x80..=0x8f | 0xde | 0xdf => ItemKind::Map,
            0xa0..=0xbf | 0xd9..=0xdb => ItemKind::Str,
            _ => ItemKind::Other,
        }
    }
    #[inline]
    fn put_str(out: &mut BytesMut, v: &str) -> Result<(), WireError> {
        if v.len() < 32 {
            // A fixstr: one marker byte.
            out.reserve(1 + v.len());
            put(out, &[0xa0 | v.len() as u8]);
            out.extend_from_slice(v.as_bytes());
            Ok(())
        } else {
            let header = Self::str_header(v.len())?;
            out.reserve(usize::from(header.len) + v.len());
            header.put(out);
            out.extend_from_slice(v.as_bytes());
            Ok(())
        }
    }
    #[inline]
    fn put_key(out: &mut BytesMut, key: &'static str) {
        // Each key as one constant fixstr.
        let encoded: &[u8] = match key {
            "type" => b"\xa4type",
            "nsp" => b"\xa3nsp",
            "data" => b"\xa4data",
            "id" => b"\xa2id",
            other => {
                let _ = Self::put_str(out, other);
                return;
            }
        };
        out.extend_from_slice(encoded);
    }
}

/// A MessagePack array or map header: the fix form below 16 items, else the
/// 16-bit marker `marker16` or the 32-bit one right after it.
fn container_header(len: usize, fix: u8, marker16: u8) -> Result<Header, WireError> {
    Ok(if len < 16 {
        Header::new(fix | len as u8, &[])
    } else if let Ok(n) = u16::try_from(len) {
        Header::new(marker16, &n.to_be_bytes())
    } else {
        let n = u32::try_from(len).map_err(|_| too_long())?;
        Header::new(marker16 + 1, &n.to_be_bytes())
    })
}
