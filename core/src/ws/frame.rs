//! The RFC 6455 frame codec (section 5): header parsing with every check the
//! RFC asks of a receiver, payload unmasking in place, and frame encoding.

use bytes::{Buf, BufMut, BytesMut};

use super::error::WsError;

/// Which end of the connection this endpoint is. It decides masking: clients
/// mask every frame they send, servers never do (RFC 6455 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The endpoint that accepted the upgrade: receives masked frames, sends
    /// unmasked ones.
    Server,
    /// The endpoint that sent the upgrade request: receives unmasked frames,
    /// sends masked ones.
    Client,
}

/// A frame opcode (RFC 6455 section 5.2). The reserved values 0x3-0x7 and
/// 0xB-0xF have no variant: the decoder rejects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: a later fragment of a text or binary message.
    Continuation = 0x0,
    /// 0x1: the first (or only) frame of a UTF-8 text message.
    Text = 0x1,
    /// 0x2: the first (or only) frame of a binary message.
    Binary = 0x2,
    /// 0x8: the close handshake.
    Close = 0x8,
    /// 0x9: a ping; the peer must answer with a pong carrying the same payload.
    Ping = 0x9,
    /// 0xA: a pong.
    Pong = 0xA,
}

impl OpCode {
    /// The opcode for the low four bits of a frame's first byte, or `None`
    /// for a reserved value.
    pub fn from_bits(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// Whether this is a control opcode (close, ping, pong): at most 125
    /// bytes of payload and never fragmented.
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// The largest payload a control frame may carry (RFC 6455 section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest frame header: 2 fixed bytes, 8 bytes of extended length and a
/// 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// A parsed and validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The FIN bit: this frame ends its message.
    pub fin: bool,
    /// The RSV1 bit, allowed only on the first frame of a data message and
    /// only once permessage-deflate is negotiated: the message is compressed.
    pub compressed: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on frames sent by a client.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes. Never more than the decoder's maximum
    /// frame size, so it fits in `usize`.
    pub payload_len: u64,
    /// How many bytes the header itself takes on the wire (2 to 14).
    pub header_len: usize,
}

impl FrameHeader {
    /// Splits this header's frame off the front of `buf` once all of it is
    /// there, unmasking the payload in place. `None` while bytes are missing.
    ///
    /// `self` must come from [`FrameDecoder::peek_header`] on the same `buf`.
    pub(crate) fn take_frame(&self, buf: &mut BytesMut) -> Option<Frame> {
        let payload_len = usize::try_from(self.payload_len)
            .expect("peek_header bounds the payload length by a usize limit");
        // An overflowing sum can only come from a limit near usize::MAX; no
        // buffer is that long, so it means "not there yet".
        if buf.len() < self.header_len.checked_add(payload_len)? {
            return None;
        }
        buf.advance(self.header_len);
        let mut payload = buf.split_to(payload_len);
        if let Some(key) = self.mask {
            apply_mask(&mut payload, key);
        }
        Some(Frame {
            fin: self.fin,
            compressed: self.compressed,
            opcode: self.opcode,
            payload,
        })
    }
}

/// One decoded frame with its payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The FIN bit: this frame ends its message.
    pub fin: bool,
    /// The RSV1 bit: the message this frame starts is compressed
    /// (permessage-deflate).
    pub compressed: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The unmasked payload, split off the input buffer without copying.
    pub payload: BytesMut,
}

/// Decodes frames from a buffer the caller appends to.
///
/// The decoder keeps no state between calls besides its configuration: the
/// partly received frame stays in the caller's buffer and its header is
/// parsed again on the next call (at most 14 bytes). So the same bytes give
/// the same frames and the same errors whether they arrive whole or byte by
/// byte.
///
/// Checks, in wire order so that the first fault wins however the input is
/// chunked: RSV bits (all three must be 0, except RSV1 on the first frame
/// of a text or binary message once [`FrameDecoder::allow_compressed`] was
/// called for a negotiated permessage-deflate), reserved opcodes, the mask bit for the role, control frames fragmented or
/// over 125 bytes, then the extended length. Non-minimal length encodings
/// (a 16-bit length under 126, a 64-bit length under 65536) and 64-bit
/// lengths with the high bit set are protocol errors: RFC 6455 section 5.2
/// says the minimal encoding MUST be used, and wsproto rejects them too.
/// A length over the maximum frame size is refused from the header, before
/// any of the payload is buffered.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    role: Role,
    max_frame_size: usize,
    /// RSV1 marks compressed messages (permessage-deflate was negotiated).
    rsv1_allowed: bool,
}

impl FrameDecoder {
    /// A decoder for the given role (a server decoder expects masked frames)
    /// refusing payloads over `max_frame_size` bytes.
    pub fn new(role: Role, max_frame_size: usize) -> FrameDecoder {
        FrameDecoder {
            role,
            max_frame_size,
            rsv1_allowed: false,
        }
    }

    /// Accepts RSV1 on text and binary frames from now on: permessage-deflate
    /// (RFC 7692) was negotiated and RSV1 marks a compressed message. RSV1 on
    /// control and continuation frames stays an error, as do RSV2 and RSV3.
    pub fn allow_compressed(&mut self) {
        self.rsv1_allowed = true;
    }

    /// Whether RSV1 is accepted (see [`FrameDecoder::allow_compressed`]).
    pub fn compressed_allowed(&self) -> bool {
        self.rsv1_allowed
    }

    /// The role this decoder receives for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The maximum payload length accepted.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Parses and validates the header at the front of `buf` without
    /// consuming anything. `Ok(None)` while the header is incomplete.
    pub fn peek_header(&self, buf: &[u8]) -> Result<Option<FrameHeader>, WsError> {
        let [first, second, ..] = *buf else {
            return Ok(None);
        };
        let rsv = (first >> 4) & 0x7;
        let starts_data_message = matches!(first & 0x0F, 0x1 | 0x2);
        let compressed = rsv & 0b100 != 0;
        if rsv & 0b011 != 0 || (compressed && !(self.rsv1_allowed && starts_data_message)) {
            return Err(WsError::ReservedBits(rsv));
        }
        let opcode =
            OpCode::from_bits(first & 0x0F).ok_or(WsError::ReservedOpcode(first & 0x0F))?;
        let fin = first & 0x80 != 0;
        let masked = second & 0x80 != 0;
        match (self.role, masked) {
            (Role::Server, false) => return Err(WsError::UnmaskedFrame),
            (Role::Client, true) => return Err(WsError::MaskedFrame),
            _ => {}
        }
        let short_len = second & 0x7F;
        if opcode.is_control() {
            if !fin {
                return Err(WsError::FragmentedControlFrame);
            }
            // 126 and 127 announce an extended length, which is over 125
            // whatever follows: fail now rather than wait for it.
            if usize::from(short_len) > MAX_CONTROL_PAYLOAD {
                return Err(WsError::ControlFrameTooLarge);
            }
        }
        let (payload_len, mut header_len) = match short_len {
            126 => {
                let Some(bytes) = buf.get(2..4) else {
                    return Ok(None);
                };
                let len = u16::from_be_bytes([bytes[0], bytes[1]]);
                if len < 126 {
                    return Err(WsError::NonMinimalLength);
                }
                (u64::from(len), 4)
            }
            127 => {
                let Some(bytes) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(WsError::InvalidLength);
                }
                if len <= u64::from(u16::MAX) {
                    return Err(WsError::NonMinimalLength);
                }
                (len, 10)
            }
            len => (u64::from(len), 2),
        };
        if payload_len > self.max_frame_size as u64 {
            return Err(WsError::FrameTooLarge {
                len: payload_len,
                max: self.max_frame_size,
            });
        }
        let mask = if masked {
            let Some(bytes) = buf.get(header_len..header_len + 4) else {
                return Ok(None);
            };
            header_len += 4;
            Some([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            None
        };
        Ok(Some(FrameHeader {
            fin,
            compressed,
            opcode,
            mask,
            payload_len,
            header_len,
        }))
    }

    /// Splits the next complete frame off the front of `buf`, its payload
    /// unmasked in place. `Ok(None)` while bytes are missing; `buf` is left
    /// untouched then, and on error.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, WsError> {
        Ok(match self.peek_header(buf)? {
            Some(header) => header.take_frame(buf),
            None => None,
        })
    }
}

/// Appends one frame to `out`: a minimal-length header, then the payload,
/// masked with `mask` when given (a client must give a fresh key for every
/// frame; a server must give none).
///
/// The caller keeps control payloads within 125 bytes and does not fragment
/// control frames; [`super::WebSocket`] checks that before calling.
pub fn encode_frame(
    out: &mut BytesMut,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    encode_frame_rsv1(out, fin, false, opcode, payload, mask);
}

/// [`encode_frame`] with the RSV1 bit given: set it on the first frame of a
/// message compressed with permessage-deflate (RFC 7692), never on control
/// or continuation frames.
pub fn encode_frame_rsv1(
    out: &mut BytesMut,
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    out.reserve(MAX_HEADER_LEN + payload.len());
    out.put_u8(u8::from(fin) << 7 | u8::from(rsv1) << 6 | opcode as u8);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.put_u8(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.put_u8(mask_bit | 126);
        out.put_u16(len16);
    } else {
        out.put_u8(mask_bit | 127);
        out.put_u64(len as u64);
    }
    let start = out.len() + if mask.is_some() { 4 } else { 0 };
    if let Some(key) = mask {
        out.put_slice(&key);
    }
    out.put_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key);
    }
}

/// XORs `data` with the repeating 4-byte masking `key`, starting at key
/// offset 0. Masking and unmasking are the same operation.
///
/// Works eight bytes at a time as one `u64`: the key repeated twice lines up
/// with every 8-byte chunk because chunks start at multiples of 4.
pub fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let wide_key = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let bytes: [u8; 8] = (*chunk).try_into().expect("chunks_exact yields 8 bytes");
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide_key).to_ne_bytes());
    }
    for (byte, key_byte) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= key_byte;
    }
}

/// Where a client gets its masking keys.
///
/// The core draws no randomness, so the caller supplies keys. RFC 6455
/// section 5.3 asks for keys an attacker cannot predict (the point is to stop
/// a script from choosing the bytes an intermediary sees), so feed this from
/// a CSPRNG such as `getrandom` or `rand::rngs::OsRng`; a counter is fine in
/// tests only. Any `FnMut() -> [u8; 4] + Send` closure implements it.
pub trait MaskKeySource: Send {
    /// A fresh key for the next frame.
    fn next_mask_key(&mut self) -> [u8; 4];
}

impl<F: FnMut() -> [u8; 4] + Send> MaskKeySource for F {
    fn next_mask_key(&mut self) -> [u8; 4] {
        self()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_MASKED: [u8; 11] = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn decode_all(role: Role, bytes: &[u8]) -> Result<Vec<Frame>, WsError> {
        let decoder = FrameDecoder::new(role, 1 << 20);
        let mut buf = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf)? {
            frames.push(frame);
        }
        assert!(buf.is_empty(), "trailing bytes: {buf:?}");
        Ok(frames)
    }

    fn encoded(fin: bool, opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode_frame(&mut out, fin, opcode, payload, mask);
        out.to_vec()
    }

    #[test]
    fn rfc_single_frame_unmasked_text() {
        let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(encoded(true, OpCode::Text, b"Hello", None), wire);
        let frames = decode_all(Role::Client, &wire).unwrap();
        assert_eq!(frames.len(), 1);
        assert!(frames[0].fin);
        assert_eq!(frames[0].opcode, OpCode::Text);
        assert_eq!(&frames[0].payload[..], b"Hello");
    }

    #[test]
    fn rfc_single_frame_masked_text() {
        assert_eq!(
            encoded(true, OpCode::Text, b"Hello", Some(KEY)),
            HELLO_MASKED
        );
        let frames = decode_all(Role::Server, &HELLO_MASKED).unwrap();
        assert_eq!(&frames[0].payload[..], b"Hello");
    }

    #[test]
    fn rfc_fragmented_unmasked_text() {
        let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        let mut out = encoded(false, OpCode::Text, b"Hel", None);
        out.extend(encoded(true, OpCode::Continuation, b"lo", None));
        assert_eq!(out, wire);
        let frames = decode_all(Role::Client, &wire).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!((frames[0].fin, frames[0].opcode), (false, OpCode::Text));
        assert_eq!(&frames[0].payload[..], b"Hel");
        assert_eq!(
            (frames[1].fin, frames[1].opcode),
            (true, OpCode::Continuation)
        );
        assert_eq!(&frames[1].payload[..], b"lo");
    }

    #[test]
    fn rfc_ping_and_masked_pong() {
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(encoded(true, OpCode::Ping, b"Hello", None), ping);
        let frames = decode_all(Role::Client, &ping).unwrap();
        assert_eq!(frames[0].opcode, OpCode::Ping);
        assert_eq!(&frames[0].payload[..], b"Hello");

        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(encoded(true, OpCode::Pong, b"Hello", Some(KEY)), pong);
        let frames = decode_all(Role::Server, &pong).unwrap();
        assert_eq!(frames[0].opcode, OpCode::Pong);
        assert_eq!(&frames[0].payload[..], b"Hello");
    }

    #[test]
    fn rfc_256_byte_binary_uses_16_bit_length() {
        let payload = vec![0xAB; 256];
        let wire = encoded(true, OpCode::Binary, &payload, None);
        assert_eq!(wire[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(wire.len(), 4 + 256);
        let frames = decode_all(Role::Client, &wire).unwrap();
        assert_eq!(&frames[0].payload[..], &payload[..]);
    }

    #[test]
    fn rfc_64k_binary_uses_64_bit_length() {
        let payload = vec![0xCD; 65536];
        let wire = encoded(true, OpCode::Binary, &payload, None);
        assert_eq!(
            wire[..10],
            [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]
        );
        assert_eq!(wire.len(), 10 + 65536);
        let frames = decode_all(Role::Client, &wire).unwrap();
        assert_eq!(&frames[0].payload[..], &payload[..]);
    }

    #[test]
    fn length_boundaries_round_trip() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let wire = encoded(true, OpCode::Binary, &payload, Some(KEY));
            let expected_header = match len {
                0..=125 => 6,
                126..=65535 => 8,
                _ => 14,
            };
            assert_eq!(wire.len(), expected_header + len, "len {len}");
            let frames = decode_all(Role::Server, &wire).unwrap();
            assert_eq!(&frames[0].payload[..], &payload[..], "len {len}");
        }
    }

    #[test]
    fn incomplete_input_waits_and_leaves_buffer_alone() {
        let decoder = FrameDecoder::new(Role::Server, 1 << 20);
        for cut in 0..HELLO_MASKED.len() {
            let mut buf = BytesMut::from(&HELLO_MASKED[..cut]);
            assert_eq!(decoder.decode(&mut buf), Ok(None), "cut {cut}");
            assert_eq!(&buf[..], &HELLO_MASKED[..cut]);
        }
    }

    #[test]
    fn apply_mask_matches_bytewise_xor() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut fast = data.clone();
            apply_mask(&mut fast, KEY);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ KEY[i % 4])
                .collect();
            assert_eq!(fast, slow, "len {len}");
        }
    }

    #[test]
    fn masking_rules_by_role() {
        assert_eq!(
            decode_all(Role::Server, &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']),
            Err(WsError::UnmaskedFrame)
        );
        assert_eq!(
            decode_all(Role::Client, &HELLO_MASKED),
            Err(WsError::MaskedFrame)
        );
    }

    #[test]
    fn reserved_bits_rejected() {
        for rsv in 1..8u8 {
            let wire = [0x81 | rsv << 4, 0x00];
            assert_eq!(
                decode_all(Role::Client, &wire),
                Err(WsError::ReservedBits(rsv))
            );
        }
    }

    #[test]
    fn rsv1_only_on_data_frames_once_allowed() {
        let mut decoder = FrameDecoder::new(Role::Client, 1 << 20);
        let compressed_text = [0xC1, 0x00];
        let mut buf = BytesMut::from(&compressed_text[..]);
        assert_eq!(decoder.decode(&mut buf), Err(WsError::ReservedBits(4)));
        decoder.allow_compressed();
        assert!(decoder.compressed_allowed());
        for first in [0xC1u8, 0xC2, 0x41] {
            let mut buf = BytesMut::from(&[first, 0x00][..]);
            let frame = decoder.decode(&mut buf).unwrap().unwrap();
            assert!(frame.compressed, "{first:#x}");
        }
        // Continuation, control frames, RSV2 and RSV3 stay errors.
        for (first, rsv) in [(0xC0u8, 4u8), (0xC9, 4), (0xC8, 4), (0xA1, 2), (0x91, 1)] {
            let mut buf = BytesMut::from(&[first, 0x00][..]);
            assert_eq!(
                decoder.decode(&mut buf),
                Err(WsError::ReservedBits(rsv)),
                "{first:#x}"
            );
        }
        let mut out = BytesMut::new();
        encode_frame_rsv1(&mut out, true, true, OpCode::Binary, b"x", None);
        assert_eq!(&out[..], [0xC2, 0x01, b'x']);
    }

    #[test]
    fn reserved_opcodes_rejected() {
        for op in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                decode_all(Role::Client, &[0x80 | op, 0x00]),
                Err(WsError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn control_frame_rules() {
        // A ping without FIN.
        assert_eq!(
            decode_all(Role::Client, &[0x09, 0x00]),
            Err(WsError::FragmentedControlFrame)
        );
        // A close with a 126-byte payload, refused from the first two bytes.
        assert_eq!(
            decode_all(Role::Client, &[0x88, 0x7E]),
            Err(WsError::ControlFrameTooLarge)
        );
        assert_eq!(
            decode_all(Role::Client, &[0x8A, 0x7F]),
            Err(WsError::ControlFrameTooLarge)
        );
        // 125 is the limit and is fine.
        let ping = encoded(true, OpCode::Ping, &[0; 125], None);
        assert_eq!(decode_all(Role::Client, &ping).unwrap().len(), 1);
    }

    #[test]
    fn non_minimal_and_overflowing_lengths_rejected() {
        assert_eq!(
            decode_all(Role::Client, &[0x82, 0x7E, 0x00, 0x7D]),
            Err(WsError::NonMinimalLength)
        );
        assert_eq!(
            decode_all(Role::Client, &[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            Err(WsError::NonMinimalLength)
        );
        assert_eq!(
            decode_all(Role::Client, &[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(WsError::InvalidLength)
        );
    }

    #[test]
    fn frame_too_large_refused_from_header() {
        let decoder = FrameDecoder::new(Role::Client, 1000);
        // Only the header is present: the error comes before any payload.
        let mut buf = BytesMut::from(&[0x82u8, 0x7E, 0x03, 0xE9][..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(WsError::FrameTooLarge {
                len: 1001,
                max: 1000
            })
        );
        let mut buf = BytesMut::from(&[0x82u8, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0][..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(WsError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn zero_copy_payload_is_split_from_input() {
        let decoder = FrameDecoder::new(Role::Server, 1 << 20);
        let mut buf = BytesMut::from(&HELLO_MASKED[..]);
        let base = buf.as_ptr() as usize;
        let frame = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.payload.as_ptr() as usize, base + 6);
    }
}
