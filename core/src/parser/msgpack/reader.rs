//! [`MsgPackReader`]: MessagePack items from a received buffer, as tokens;
//! binary values are slices of it.

use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::token_reader::{bad_payload, Token, TokenReader};
use crate::parser::DecodeError;
use crate::value::Value;

/// Reads MessagePack items from a received buffer; binary values become
/// slices of it.
pub(super) struct MsgPackReader<'a> {
    pub(super) buf: &'a Bytes,
    pub(super) pos: usize,
}

pub(in crate::parser) fn truncated() -> DecodeError {
    bad_payload("truncated MessagePack")
}

impl MsgPackReader<'_> {
    pub(super) fn take(&mut self, n: usize) -> Result<Range<usize>, DecodeError> {
        if n > self.buf.len() - self.pos {
            return Err(truncated());
        }
        let range = self.pos..self.pos + n;
        self.pos += n;
        Ok(range)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let range = self.take(N)?;
        Ok(self.buf[range].try_into().expect("N bytes"))
    }

    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn u16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    pub(super) fn u32(&mut self) -> Result<usize, DecodeError> {
        // Saturate on 16-bit targets: the length check rejects it anyway.
        Ok(usize::try_from(u32::from_be_bytes(self.array()?)).unwrap_or(usize::MAX))
    }

    pub(super) fn str(&mut self, len: usize) -> Result<Token, DecodeError> {
        let range = self.take(len)?;
        let text = std::str::from_utf8(&self.buf[range])
            .map_err(|_| bad_payload("string is not valid UTF-8"))?;
        Ok(Token::Value(Value::String(text.to_owned())))
    }

    pub(super) fn bin(&mut self, len: usize) -> Result<Token, DecodeError> {
        let range = self.take(len)?;
        Ok(Token::Value(Value::Binary(self.buf.slice(range))))
    }

    /// An extension value, as notepack writes JavaScript types.
    pub(super) fn ext(&mut self, len: usize, fixed: bool) -> Result<Token, DecodeError> {
        let ext_type = self.u8()? as i8;
        let range = self.take(len)?;
        let value = match (ext_type, fixed, len) {
            // `undefined`.
            (0, true, 1) => Value::Null,
            // A `Date`: milliseconds since the epoch.
            (0, true, 8) => Value::from(i64::from_be_bytes(
                self.buf[range].try_into().expect("8 bytes"),
            )),
            // An `ArrayBuffer` or typed array.
            (0, false, _) => Value::Binary(self.buf.slice(range)),
            _ => {
                return Err(DecodeError::BadPayload(format!(
                    "unsupported MessagePack extension type {ext_type}"
                )))
            }
        };
        Ok(Token::Value(value))
    }
}

impl TokenReader for MsgPackReader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn next_token(&mut self) -> Result<Token, DecodeError> {
        let marker = self.u8()?;
        let value = match marker {
            0x00..=0x7f => Value::from(u64::from(marker)),
            0x80..=0x8f => return Ok(Token::Map(Some(usize::from(marker & 0x0f)))),
            0x90..=0x9f => return Ok(Token::Array(Some(usize::from(marker & 0x0f)))),
            0xa0..=0xbf => return self.str(usize::from(marker & 0x1f)),
            0xc0 => Value::Null,
            0xc1 => return Err(bad_payload("reserved MessagePack marker 0xc1")),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let len = usize::from(self.u8()?);
                return self.bin(len);
            }
            0xc5 => {
                let len = self.u16()?;
                return self.bin(len);
            }
            0xc6 => {
                let len = self.u32()?;
                return self.bin(len);
            }
            0xc7 => {
                let len = usize::from(self.u8()?);
                return self.ext(len, false);
            }
            0xc8 => {
                let len = self.u16()?;
                return self.ext(len, false);
            }
            0xc9 => {
                let len = self.u32()?;
                return self.ext(len, false);
            }
            0xca => Value::from(f64::from(f32::from_be_bytes(self.array()?))),
            0xcb => Value::from(f64::from_be_bytes(self.array()?)),
            0xcc => Value::from(u64::from(self.u8()?)),
            0xcd => Value::from(u64::from(u16::from_be_bytes(self.array()?))),
            0xce => Value::from(u64::from(u32::from_be_bytes(self.array()?))),
            0xcf => Value::from(u64::from_be_bytes(self.array()?)),
            0xd0 => Value::from(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Value::from(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Value::from(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Value::from(i64::from_be_bytes(self.array()?)),
            0xd4 => return self.ext(1, true),
            0xd5 => return self.ext(2, true),
            0xd6 => return self.ext(4, true),
            0xd7 => return self.ext(8, true),
            0xd8 => return self.ext(16, true),
            0xd9 => {
                let len = usize::from(self.u8()?);
                return self.str(len);
            }
            0xda => {
                let len = self.u16()?;
                return self.str(len);
            }
            0xdb => {
                let len = self.u32()?;
                return self.str(len);
            }
            0xdc => return Ok(Token::Array(Some(self.u16()?))),
            0xdd => return Ok(Token::Array(Some(self.u32()?))),
            0xde => return Ok(Token::Map(Some(self.u16()?))),
            0xdf => return Ok(Token::Map(Some(self.u32()?))),
            0xe0..=0xff => Value::from(i64::from(marker as i8)),
        };
        Ok(Token::Value(value))
    }
}

/// How many open containers the validating skip keeps inline before its
/// stack spills to the heap (only for nesting deeper than the default
/// limit).
pub(super) const INLINE_LEVELS: usize = 32;

/// Truncation, as the validating skip reports it.
pub(super) const TRUNCATED: &str = "truncated MessagePack";

/// An extension type we do not read (the error is worded by
/// [`MsgPackReader::ext`]).
pub(super) const UNSUPPORTED_EXT: &str = "unsupported MessagePack extension type";

/// Marks a map's entry in the skip stack: its count is of keys and values.
pub(super) const MAP_FLAG: u64 = 1 << 63;

/// Check that `bytes` are UTF-8; ASCII, the common case, is checked by a
/// cheaper loop first.
pub(super) fn check_utf8(bytes: &[u8]) -> Result<(), DecodeError> {
    if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
        Ok(())
    } else {
        Err(bad_payload("string is not valid UTF-8"))
    }
}

/// Whether `marker` starts a MessagePack string.
pub(super) fn is_str_marker(marker: u8) -> bool {
    matches!(marker, 0xa0..=0xbf | 0xd9..=0xdb)
}

impl<'a> MsgPackReader<'a> {
    /// The byte at the read position, without consuming it.
    pub(super) fn peek(&self) -> Result<u8, DecodeError> {
        self.buf.get(self.pos).copied().ok_or_else(truncated)
    }

    /// The length of a string whose marker was just read.
    pub(super) fn str_len(&mut self, marker: u8) -> Result<usize, DecodeError> {
        match marker {
            0xa0..=0xbf => Ok(usize::from(marker & 0x1f)),
            0xd9 => Ok(usize::from(self.u8()?)),
            0xda => self.u16(),
            _ => self.u32(),
        }
    }

    /// Read a string item's bytes (validated as UTF-8), or `None` when the
    /// item is not a string (nothing consumed then).
    pub(super) fn str_range(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        let range = self.raw_str_range()?;
        if let Some(range) = &range {
            check_utf8(&self.buf[range.clone()])?;
        }
        Ok(range)
    }

    /// [`MsgPackReader::str_range`] without the UTF-8 check, for strings
    /// checked already or compared with ASCII names.
    #[inline]
    pub(super) fn raw_str_range(&mut self) -> Result<Option<Range<usize>>, DecodeError> {
        self.raw_str().map_err(bad_payload)
    }

    #[inline]
    pub(super) fn raw_str(&mut self) -> Result<Option<Range<usize>>, &'static str> {
        let marker = *self.buf.get(self.pos).ok_or(TRUNCATED)?;
        let len = match marker {
            0xa0..=0xbf => {
                self.pos += 1;
                usize::from(marker & 0x1f)
            }
            0xd9..=0xdb => {
                self.pos += 1;
                match marker {
                    0xd9 => usize::from(self.next_byte()?),
                    0xda => self.be_len::<2>()?,
                    _ => self.be_len::<4>()?,
                }
            }
            _ => return Ok(None),
        };
        let start = self.skip_bytes(len)?;
        Ok(Some(start..start + len))
    }

    /// Skip one whole item, checking everything [`read_value`] checks
    /// (encoding, truncation, UTF-8, string map keys, extension types,
    /// declared lengths, and nesting: a container `level` deep, or deeper,
    /// fails when `level >= limit`), without building anything. Iterative,
    /// so nesting never recurses.
    pub(super) fn skip_checked(&mut self, level: usize, limit: usize) -> Result<(), DecodeError> {
        match self.skip_inner(level, limit) {
            Ok(()) => Ok(()),
            Err(UNSUPPORTED_EXT) => {
                // `self.pos` is at the extension: its reader words the error.
                self.next_token()?;
                Err(bad_payload(UNSUPPORTED_EXT))
            }
            Err(e) => Err(bad_payload(e)),
        }
    }

    /// The byte at the read position, consumed.
    #[inline]
    pub(super) fn next_byte(&mut self) -> Result<u8, &'static str> {
        let byte = *self.buf.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(byte)
    }

    /// Consume `n` bytes; where they start.
    #[inline]
    pub(super) fn skip_bytes(&mut self, n: usize) -> Result<usize, &'static str> {
        let start = self.pos;
        if n > self.buf.len() - start {
            return Err(TRUNCATED);
        }
        self.pos = start + n;
        Ok(start)
    }

    /// A big-endian length of `N` bytes (saturated on narrow targets).
    #[inline]
    pub(super) fn be_len<const N: usize>(&mut self) -> Result<usize, &'static str> {
        let start = self.skip_bytes(N)?;
        let mut len = 0u64;
        for &b in &self.buf[start..start + N] {
            len = len << 8 | u64::from(b);
        }
        Ok(usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// [`MsgPackReader::skip_checked`]'s loop, with errors as static text
    /// (returned in registers).
    pub(super) fn skip_inner(&mut self, level: usize, limit: usize) -> Result<(), &'static str> {
        // Items left in the innermost open container (keys and values for a
        // map, with `MAP_FLAG`); the enclosing ones' counts wait in `outer`.
        let mut outer: SmallVec<[u64; INLINE_LEVELS]> = SmallVec::new();
        let mut depth = 0usize;
        let mut left = 0u64;
        loop {
            let marker = self.next_byte()?;
            if left & MAP_FLAG != 0 && left % 2 == 0 && !is_str_marker(marker) {
                return Err("map key is not a string");
            }
            let container = match marker {
                0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => None,
                0x80..=0x8f => Some((usize::from(marker & 0x0f), true)),
                0x90..=0x9f => Some((usize::from(marker & 0x0f), false)),
                0xa0..=0xbf | 0xd9..=0xdb => {
                    let len = match marker {
                        0xd9 => usize::from(self.next_byte()?),
                        0xda => self.be_len::<2>()?,
                        0xdb => self.be_len::<4>()?,
                        _ => usize::from(marker & 0x1f),
                    };
                    let start = self.skip_bytes(len)?;
                    let text = &self.buf[start..start + len];
                    if !text.is_ascii() && std::str::from_utf8(text).is_err() {
                        return Err("string is not valid UTF-8");
                    }
                    None
                }
                0xc1 => return Err("reserved MessagePack marker 0xc1"),
                0xc4 => {
                    let len = usize::from(self.next_byte()?);
                    self.skip_bytes(len)?;
                    None
                }
                0xc5 => {
                    let len = self.be_len::<2>()?;
                    self.skip_bytes(len)?;
                    None
                }
                0xc6 => {
                    let len = self.be_len::<4>()?;
                    self.skip_bytes(len)?;
                    None
                }
                0xc7..=0xc9 | 0xd4..=0xd8 => {
                    let at = self.pos - 1;
                    let (len, fixed) = match marker {
                        0xc7 => (usize::from(self.next_byte()?), false),
                        0xc8 => (self.be_len::<2>()?, false),
                        0xc9 => (self.be_len::<4>()?, false),
                        _ => (1 << (marker - 0xd4), true),
                    };
                    let ext_type = self.next_byte()?;
                    self.skip_bytes(len)?;
                    // The types `MsgPackReader::ext` reads.
                    if !matches!((ext_type, fixed, len), (0, true, 1 | 8) | (0, false, _)) {
                        self.pos = at;
                        return Err(UNSUPPORTED_EXT);
                    }
                    None
                }
                0xca | 0xce | 0xd2 => {
                    self.skip_bytes(4)?;
                    None
                }
                0xcb | 0xcf | 0xd3 => {
                    self.skip_bytes(8)?;
                    None
                }
                0xcc | 0xd0 => {
                    self.skip_bytes(1)?;
                    None
                }
                0xcd | 0xd1 => {
                    self.skip_bytes(2)?;
                    None
                }
                0xdc => Some((self.be_len::<2>()?, false)),
                0xdd => Some((self.be_len::<4>()?, false)),
                0xde => Some((self.be_len::<2>()?, true)),
                0xdf => Some((self.be_len::<4>()?, true)),
            };
            if let Some((len, map)) = container {
                if level.saturating_add(depth) >= limit {
                    return Err("nesting too deep");
                }
                let remaining = self.buf.len() - self.pos;
                if map && len > remaining / 2 {
                    return Err("map longer than the message");
                }
                if !map && len > remaining {
                    return Err("array longer than the message");
                }
                if len > 0 {
                    if depth > 0 {
                        outer.push(left);
                    }
                    depth += 1;
                    // Bounded by the message length checked above.
                    let items = len as u64 * if map { 2 } else { 1 };
                    left = if map { items | MAP_FLAG } else { items };
                    continue;
                }
            }
            // One item done: count it in its container, closing each
            // container it completes.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                left -= 1;
                if left & !MAP_FLAG != 0 {
                    break;
                }
                depth -= 1;
                left = outer.pop().unwrap_or(0);
            }
        }
    }

    /// Skip one item already validated by [`MsgPackReader::skip_checked`].
    pub(super) fn skip(&mut self) -> Result<(), DecodeError> {
        self.skip_checked(0, usize::MAX)
    }
}
