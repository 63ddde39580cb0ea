//! The WebSocket connection state machine over the frame codec.

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::close::{close_payload, parse_close_payload, CloseCode, CloseFrame};
#[cfg(feature = "deflate")]
use super::deflate::{DeflateCodec, DeflateConfig, DeflateParams};
use super::error::{LocalError, WsError};
use super::frame::{
    encode_frame_rsv1, Frame, FrameDecoder, FrameHeader, MaskKeySource, OpCode, Role,
    MAX_CONTROL_PAYLOAD,
};
use crate::memory::KEEP_BUFFER_CAPACITY;
use crate::Str;

/// Limits on what the peer may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsConfig {
    /// The largest frame payload accepted, in bytes. A bigger frame fails the
    /// connection with 1009 as soon as its header arrives.
    pub max_frame_size: usize,
    /// The largest message accepted (all fragments together), in bytes. A
    /// frame that would take its message over this fails the connection with
    /// 1009 as soon as its header arrives. Engine.IO sets this to its
    /// `maxPayload`. With permessage-deflate the limit holds for the
    /// compressed bytes as they arrive and for the inflated message, which
    /// stops inflating as soon as it would pass the limit.
    pub max_message_size: usize,
}

impl Default for WsConfig {
    /// 1 MB for both, engine.io's default `maxHttpBufferSize`.
    fn default() -> WsConfig {
        WsConfig {
            max_frame_size: 1_000_000,
            max_message_size: 1_000_000,
        }
    }
}

/// What [`WebSocket::poll_message`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A complete text message, checked to be UTF-8.
    Text(Str),
    /// A complete binary message.
    Binary(Bytes),
    /// The peer closed the connection: `None` when its close frame carried no
    /// status code (1005). The reply close frame is already queued when one
    /// is due; nothing more will be read or may be sent.
    Close(Option<CloseFrame>),
}

/// Where the close handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WsState {
    /// Messages flow both ways.
    Open,
    /// This side sent a close frame and waits for the peer's; messages the
    /// peer sent before its close are still delivered, nothing more may be
    /// sent.
    Closing,
    /// Done: the close handshake completed, the connection failed, or the
    /// transport ended. Drain [`WebSocket::poll_transmit`] one last time
    /// (a close frame may be waiting), then close the transport.
    Closed,
}

/// A message being reassembled from fragments.
#[derive(Debug)]
struct PartialMessage {
    is_text: bool,
    /// Its fragments are inflated as they arrive (permessage-deflate).
    compressed: bool,
    /// The payload bytes received so far, before any inflating: what the
    /// limit checks from frame headers count.
    wire_len: u64,
    data: BytesMut,
    /// How far `data` is known to be valid UTF-8 (text only): the rest is at
    /// most an unfinished multi-byte sequence.
    utf8_valid_up_to: usize,
}

impl PartialMessage {
    /// Validates the bytes appended since the last call, so bad text fails
    /// at the fragment that breaks it rather than at the end of the message.
    fn check_utf8_progress(&mut self) -> Result<(), WsError> {
        if !self.is_text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.utf8_valid_up_to..]) {
            Ok(_) => self.utf8_valid_up_to = self.data.len(),
            // An incomplete sequence at the end may be finished by the next
            // fragment; anything else is wrong for good.
            Err(e) if e.error_len().is_none() => self.utf8_valid_up_to += e.valid_up_to(),
            Err(_) => return Err(WsError::InvalidUtf8),
        }
        Ok(())
    }
}

/// One WebSocket connection after the opening handshake, client or server,
/// without IO.
///
/// Bytes from the transport go in through [`receive`](Self::receive);
/// [`poll_message`](Self::poll_message) then yields complete messages until
/// it returns `None`. Sends ([`send_text`](Self::send_text),
/// [`send_binary`](Self::send_binary), [`send_ping`](Self::send_ping),
/// [`close`](Self::close)) and automatic replies (pongs, close replies, the
/// close frame of a failed connection) append whole frames to one outgoing
/// buffer in the order they happen; [`poll_transmit`](Self::poll_transmit)
/// hands all of it over. Write those bytes to the transport in the order
/// returned: after every `receive`+`poll_message` round and every send.
///
/// Memory: the inbound buffer holds what was received and not yet polled.
/// Polling until `None` after each `receive` keeps it to at most one partial
/// frame, itself bounded by `max_frame_size` plus a 14-byte header, because
/// an oversized frame is refused from its header. A fragmented message is
/// bounded by `max_message_size`.
pub struct WebSocket {
    role: Role,
    config: WsConfig,
    decoder: FrameDecoder,
    /// Present for the client role only.
    mask_keys: Option<Box<dyn MaskKeySource>>,
    inbound: BytesMut,
    outbound: BytesMut,
    partial: Option<PartialMessage>,
    state: WsState,
    /// The transport reported end of input.
    eof: bool,
    /// permessage-deflate, when negotiated.
    #[cfg(feature = "deflate")]
    deflate: Option<Box<DeflateCodec>>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("role", &self.role)
            .field("config", &self.config)
            .field("state", &self.state)
            .field("inbound_len", &self.inbound.len())
            .field("outbound_len", &self.outbound.len())
            .field("partial", &self.partial)
            .field("eof", &self.eof)
            .field("compressed", &self.decoder.compressed_allowed())
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    /// The server end of a connection whose upgrade was accepted.
    pub fn server(config: WsConfig) -> WebSocket {
        WebSocket::new(Role::Server, config, None)
    }

    /// The client end of a connection whose upgrade response was validated.
    /// Every frame sent is masked with a fresh key from `mask_keys`: see
    /// [`MaskKeySource`] for why it should be a CSPRNG.
    pub fn client(config: WsConfig, mask_keys: impl MaskKeySource + 'static) -> WebSocket {
        WebSocket::new(Role::Client, config, Some(Box::new(mask_keys)))
    }

    fn new(role: Role, config: WsConfig, mask_keys: Option<Box<dyn MaskKeySource>>) -> WebSocket {
        WebSocket {
            role,
            config,
            decoder: FrameDecoder::new(role, config.max_frame_size),
            mask_keys,
            inbound: BytesMut::new(),
            outbound: BytesMut::new(),
            partial: None,
            state: WsState::Open,
            eof: false,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }

    /// Turns on permessage-deflate with the parameters the handshake agreed
    /// (from [`super::negotiate_deflate`] on a server,
    /// [`super::ClientHandshake::validate_response_extensions`] on a client):
    /// text and binary messages of at least `config.threshold` bytes go out
    /// compressed, and compressed messages from the peer are inflated.
    #[cfg(feature = "deflate")]
    pub fn with_deflate(mut self, params: DeflateParams, config: &DeflateConfig) -> WebSocket {
        self.decoder.allow_compressed();
        self.deflate = Some(Box::new(DeflateCodec::new(self.role, params, config)));
        self
    }

    /// The permessage-deflate parameters in force, if any.
    #[cfg(feature = "deflate")]
    pub fn deflate_params(&self) -> Option<&DeflateParams> {
        self.deflate.as_deref().map(DeflateCodec::params)
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The limits in force.
    pub fn config(&self) -> &WsConfig {
        &self.config
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> WsState {
        self.state
    }

    /// Whether messages may still be sent.
    pub fn is_open(&self) -> bool {
        self.state == WsState::Open
    }

    /// Whether this side sent a close frame and waits for the peer's.
    pub fn is_closing(&self) -> bool {
        self.state == WsState::Closing
    }

    /// Whether the connection is finished (see [`WsState::Closed`]).
    pub fn is_closed(&self) -> bool {
        self.state == WsState::Closed
    }

    /// Appends bytes read from the transport. Bytes arriving after the
    /// connection closed are dropped.
    pub fn receive(&mut self, data: &[u8]) {
        if self.accepts_input() {
            self.inbound.extend_from_slice(data);
        }
    }

    /// Like [`receive`](Self::receive), taking a buffer the transport read
    /// into: adopted without copying when nothing is pending.
    pub fn receive_bytes(&mut self, data: BytesMut) {
        if !self.accepts_input() {
            return;
        }
        if self.inbound.is_empty() {
            self.inbound = data;
        } else {
            self.inbound.unsplit(data);
        }
    }

    /// Reports that the transport's input ended. Messages already received
    /// are still delivered; then, unless the close handshake completed,
    /// `poll_message` yields [`WsError::UnexpectedEof`] once.
    pub fn receive_eof(&mut self) {
        self.eof = true;
    }

    fn accepts_input(&self) -> bool {
        self.state != WsState::Closed && !self.eof
    }

    /// The next complete message, or `None` when more bytes are needed or
    /// the connection is closed.
    ///
    /// Pings are answered here (a pong is queued while the connection is
    /// open); pongs are dropped. An `Err` fails the connection: the close
    /// frame it calls for is queued and every later call returns `None`.
    pub fn poll_message(&mut self) -> Option<Result<WsMessage, WsError>> {
        while self.state != WsState::Closed {
            let header = match self.decoder.peek_header(&self.inbound) {
                Ok(Some(header)) => header,
                Ok(None) => break,
                Err(e) => return Some(Err(self.fail(e))),
            };
            if let Err(e) = self.check_message_limits(&header) {
                return Some(Err(self.fail(e)));
            }
            let Some(frame) = header.take_frame(&mut self.inbound) else {
                break;
            };
            match self.handle_frame(frame) {
                Ok(Some(message)) => return Some(Ok(message)),
                Ok(None) => {}
                Err(e) => return Some(Err(self.fail(e))),
            }
        }
        if self.eof && self.state != WsState::Closed {
            self.shut_down();
            return Some(Err(WsError::UnexpectedEof));
        }
        // A burst must not leave its peak capacity behind.
        if self.inbound.is_empty() && self.inbound.capacity() > KEEP_BUFFER_CAPACITY {
            self.inbound = BytesMut::new();
        }
        None
    }

    /// Checks a data frame against the fragmentation state and the message
    /// limit from its header alone, before its payload is waited for.
    fn check_message_limits(&self, header: &FrameHeader) -> Result<(), WsError> {
        let buffered = match (header.opcode, &self.partial) {
            (OpCode::Continuation, None) => return Err(WsError::UnexpectedContinuation),
            (OpCode::Continuation, Some(partial)) => partial.wire_len,
            (OpCode::Text | OpCode::Binary, Some(_)) => return Err(WsError::ExpectedContinuation),
            (OpCode::Text | OpCode::Binary, None) => 0,
            _ => return Ok(()),
        };
        let len = buffered + header.payload_len;
        if len > self.config.max_message_size as u64 {
            return Err(WsError::MessageTooLarge {
                len,
                max: self.config.max_message_size,
            });
        }
        Ok(())
    }

    fn handle_frame(&mut self, frame: Frame) -> Result<Option<WsMessage>, WsError> {
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                let is_text = frame.opcode == OpCode::Text;
                let wire_len = frame.payload.len() as u64;
                let data = if frame.compressed {
                    let mut data = BytesMut::new();
                    self.inflate(&frame.payload, frame.fin, &mut data)?;
                    data
                } else {
                    frame.payload
                };
                if frame.fin {
                    // Single-frame message: the payload is handed over as
                    // the very bytes split off the input buffer.
                    return finish_message(is_text, data).map(Some);
                }
                let mut partial = PartialMessage {
                    is_text,
                    compressed: frame.compressed,
                    wire_len,
                    data,
                    utf8_valid_up_to: 0,
                };
                partial.check_utf8_progress()?;
                self.partial = Some(partial);
                Ok(None)
            }
            OpCode::Continuation => {
                let mut partial = self
                    .partial
                    .take()
                    .expect("check_message_limits refuses a continuation without a message");
                partial.wire_len += frame.payload.len() as u64;
                if partial.compressed {
                    self.inflate(&frame.payload, frame.fin, &mut partial.data)?;
                } else {
                    partial.data.extend_from_slice(&frame.payload);
                }
                partial.check_utf8_progress()?;
                self.partial = Some(partial);
                if !frame.fin {
                    return Ok(None);
                }
                let partial = self.partial.take().expect("checked above");
                finish_message(partial.is_text, partial.data).map(Some)
            }
            OpCode::Ping => {
                // After our close frame nothing more may be sent.
                if self.state == WsState::Open {
                    self.queue_frame(OpCode::Pong, &frame.payload);
                }
                Ok(None)
            }
            OpCode::Pong => Ok(None),
            OpCode::Close => {
                let close = parse_close_payload(frame.payload)?;
                if self.state == WsState::Open {
                    // Echo the status code (RFC 6455 section 5.5.1), without
                    // the reason; an empty close answers an empty close.
                    let reply = close.as_ref().map(|c| c.code.0.to_be_bytes());
                    self.queue_frame(OpCode::Close, reply.as_ref().map_or(&[], |r| &r[..]));
                }
                self.shut_down();
                Ok(Some(WsMessage::Close(close)))
            }
        }
    }

    /// Inflates a compressed fragment into `out`, bounded by the message
    /// limit.
    #[cfg(feature = "deflate")]
    fn inflate(&mut self, payload: &[u8], fin: bool, out: &mut BytesMut) -> Result<(), WsError> {
        let max = self.config.max_message_size;
        self.deflate
            .as_mut()
            .expect("the decoder accepts RSV1 only once permessage-deflate is on")
            .decompress(payload, fin, out, max)
    }

    #[cfg(not(feature = "deflate"))]
    fn inflate(&mut self, _: &[u8], _: bool, _: &mut BytesMut) -> Result<(), WsError> {
        unreachable!("without the deflate feature the decoder refuses RSV1")
    }

    /// Fails the connection for a peer error: queues the close frame it
    /// calls for unless one was sent already, and stops reading.
    fn fail(&mut self, error: WsError) -> WsError {
        if self.state == WsState::Open {
            let code = error.close_code().0.to_be_bytes();
            self.queue_frame(OpCode::Close, &code);
        }
        self.shut_down();
        error
    }

    /// Moves to `Closed` and frees what will never be read.
    fn shut_down(&mut self) {
        self.state = WsState::Closed;
        self.inbound = BytesMut::new();
        self.partial = None;
    }

    /// Sends a text message as one frame.
    pub fn send_text(&mut self, text: &str) -> Result<(), LocalError> {
        self.send_data(OpCode::Text, text.as_bytes())
    }

    /// Sends a binary message as one frame.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), LocalError> {
        self.send_data(OpCode::Binary, data)
    }

    /// Sends a ping; `payload` is at most 125 bytes.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), LocalError> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Sends an unsolicited pong (a heartbeat the peer does not answer);
    /// `payload` is at most 125 bytes. Pings are answered automatically.
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), LocalError> {
        self.send_control(OpCode::Pong, payload)
    }

    /// Starts the close handshake: queues a close frame and moves to
    /// `Closing`. The peer's close arrives later as [`WsMessage::Close`]
    /// (messages it sent before that are still delivered). `code` must be
    /// valid on the wire and `reason` at most 123 bytes.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), LocalError> {
        self.ensure_open()?;
        let payload = close_payload(code, reason)?;
        self.queue_frame(OpCode::Close, &payload);
        self.state = WsState::Closing;
        Ok(())
    }

    /// Takes every byte queued for the transport, frames in the order they
    /// were queued; `None` when nothing is waiting.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.outbound.is_empty() {
            None
        } else {
            let bytes = self.outbound.split().freeze();
            // What is left of a large buffer is given back rather than kept
            // at the peak of a burst.
            if self.outbound.capacity() > KEEP_BUFFER_CAPACITY {
                self.outbound = BytesMut::new();
            }
            Some(bytes)
        }
    }

    /// How many bytes wait in the outgoing buffer (for backpressure: stop
    /// sending while the transport cannot keep up).
    pub fn pending_transmit_len(&self) -> usize {
        self.outbound.len()
    }

    /// The bytes the inbound and outbound buffers have allocated, whether
    /// in use or not (to check that a burst's memory is given back).
    pub fn buffer_capacity(&self) -> usize {
        self.inbound.capacity() + self.outbound.capacity()
    }

    fn ensure_open(&self) -> Result<(), LocalError> {
        if self.state == WsState::Open {
            Ok(())
        } else {
            Err(LocalError::NotOpen)
        }
    }

    fn send_data(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), LocalError> {
        self.ensure_open()?;
        #[cfg(feature = "deflate")]
        if let Some(compressed) = self.deflate.as_mut().and_then(|d| d.compress(payload)) {
            self.queue_frame_rsv1(true, opcode, &compressed);
            return Ok(());
        }
        self.queue_frame(opcode, payload);
        Ok(())
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), LocalError> {
        self.ensure_open()?;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(LocalError::ControlPayloadTooLarge(payload.len()));
        }
        self.queue_frame(opcode, payload);
        Ok(())
    }

    fn queue_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        self.queue_frame_rsv1(false, opcode, payload);
    }

    fn queue_frame_rsv1(&mut self, rsv1: bool, opcode: OpCode, payload: &[u8]) {
        let mask = match self.role {
            Role::Server => None,
            Role::Client => Some(
                self.mask_keys
                    .as_mut()
                    .expect("a client WebSocket has a mask key source")
                    .next_mask_key(),
            ),
        };
        encode_frame_rsv1(&mut self.outbound, true, rsv1, opcode, payload, mask);
    }
}

/// Turns a complete message's bytes into a message, checking text.
fn finish_message(is_text: bool, data: BytesMut) -> Result<WsMessage, WsError> {
    let data = data.freeze();
    if is_text {
        Str::try_from(data)
            .map(WsMessage::Text)
            .map_err(|_| WsError::InvalidUtf8)
    } else {
        Ok(WsMessage::Binary(data))
    }
}
