//! Messages framed straight onto a WebSocket connection's output, and the
//! frame cache that lets every receiver of a broadcast share one frame.

use bytes::{BufMut, Bytes, BytesMut};

use super::conn::{Conn, ConnKind};
use crate::engine::packet::Message;
use crate::ws::{OpCode, MAX_HEADER_LEN};

/// The last short message framed by [`Conn::push_ws_message`] and its
/// frame: the receivers of a broadcast get the message one after the
/// other, and every one of them the same frame, so all but the first get a
/// clone of the first one's buffer instead of a buffer of their own.
///
/// A hit is recognised by the message's buffer address and length. That is
/// sound because the entry keeps a clone of the message: its memory can
/// neither be freed and reused for another message nor be mutated (a
/// `Bytes` region is immutable while a clone exists). Only short messages
/// are kept, and only until the driver starts pulling output
/// (`Server::poll_ready`, `Server::poll_transmit`): the receivers of
/// one broadcast are all sent to before that, and a message kept alive any
/// longer would stop the encoder above from reusing its buffer.
#[derive(Default)]
pub(super) struct FrameCache(Option<(OpCode, Bytes, Bytes)>);

impl FrameCache {
    fn get(&self, opcode: OpCode, payload: &Bytes) -> Option<Bytes> {
        match &self.0 {
            Some((cached_opcode, message, frame))
                if *cached_opcode == opcode
                    && message.as_ptr() == payload.as_ptr()
                    && message.len() == payload.len() =>
            {
                Some(frame.clone())
            }
            _ => None,
        }
    }

    /// Forgets the entry: the driver started pulling output.
    pub(super) fn clear(&mut self) {
        self.0 = None;
    }
}

/// Messages at least this long go out on WebSocket as their frame header
/// followed by the message's own buffer, which every receiver of a
/// broadcast shares (no copy per receiver). Shorter ones are copied behind
/// their header into one buffer: cheaper than a second buffer that the
/// driver would join with the first before writing.
pub(super) const SHARED_PAYLOAD_MIN: usize = 1024;

/// The header of a final, unmasked, uncompressed frame with a payload of
/// `len` bytes (RFC 6455 section 5.2): what a server writes.
fn put_frame_header(out: &mut BytesMut, opcode: OpCode, len: usize) {
    out.put_u8(0x80 | opcode as u8);
    if len < 126 {
        out.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(126);
        out.put_u16(len);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

impl Conn {
    /// Frames an Engine.IO message on this WebSocket connection without
    /// going through [`WebSocket::send_text`](crate::ws::WebSocket::send_text),
    /// which takes one contiguous text and so would need the packet copied
    /// twice per receiver (its text form, then the frame). The frame is the
    /// one `send_text` or `send_binary` would write: unmasked, unfragmented,
    /// uncompressed. Returns false, doing nothing, when the connection
    /// cannot take a frame this way (not open, permessage-deflate in force,
    /// or frames of its own still waiting to be pulled): the caller then
    /// uses the WebSocket.
    pub(super) fn push_ws_message(&mut self, message: &Message, cache: &mut FrameCache) -> bool {
        let ConnKind::Ws { ws, .. } = &self.kind else {
            return false;
        };
        if !ws.is_open() || ws.pending_transmit_len() > 0 {
            return false;
        }
        #[cfg(feature = "deflate")]
        if ws.deflate_params().is_some() {
            return false;
        }
        // A text message travels as the Engine.IO packet `4` + text; a
        // binary one as its raw bytes.
        let (opcode, prefix, payload): (_, &[u8], _) = match message {
            Message::Text(text) => (OpCode::Text, b"4", text.as_bytes()),
            Message::Binary(bytes) => (OpCode::Binary, b"", bytes),
        };
        let len = prefix.len() + payload.len();
        if let Some(frame) = cache.get(opcode, payload) {
            self.push_out(frame);
        } else if payload.len() >= SHARED_PAYLOAD_MIN {
            let mut head = BytesMut::with_capacity(MAX_HEADER_LEN + prefix.len());
            put_frame_header(&mut head, opcode, len);
            head.extend_from_slice(prefix);
            self.push_out(head.freeze());
            self.push_out(payload.clone());
        } else {
            let mut frame = BytesMut::with_capacity(MAX_HEADER_LEN + len);
            put_frame_header(&mut frame, opcode, len);
            frame.extend_from_slice(prefix);
            frame.extend_from_slice(payload);
            let frame = frame.freeze();
            *cache = FrameCache(Some((opcode, payload.clone(), frame.clone())));
            self.push_out(frame);
        }
        true
    }
}
