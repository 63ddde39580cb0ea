//! WebSocket (RFC 6455), sans-IO, in the style of wsproto: a pure protocol
//! object that takes bytes in and gives bytes and messages out.
//!
//! Engine.IO carries one packet per WebSocket message: a text message is an
//! Engine.IO text packet (`4hello`, `2probe`...), a binary message is the raw
//! bytes of a binary packet with no type prefix.
//!
//! # Pieces
//! - [`handshake`]: header-level opening handshake. The server calls
//!   [`accept_upgrade`] on the request headers and answers 101 with
//!   [`UpgradeResponse::headers`]; the client builds its request with
//!   [`ClientHandshake`] from a 16-byte nonce and checks the 101 response
//!   with [`ClientHandshake::validate_response`]. HTTP parsing itself belongs
//!   to the HTTP layer.
//! - [`frame`]: the frame codec ([`FrameDecoder`], [`encode_frame`],
//!   [`apply_mask`]).
//! - [`WebSocket`]: one connection, client or server: reassembly, UTF-8
//!   checks, limits, automatic pongs and the close handshake.
//!
//! Errors come in two kinds: [`WsError`] when the peer broke the protocol
//! (the connection fails with a close frame carrying
//! [`WsError::close_code`]), [`LocalError`] when the application asked for
//! something that cannot be sent. [`HandshakeError`] covers the upgrade.
//!
//! # Intended use by an Engine.IO connection
//! Server: on a `GET /socket.io/?EIO=4&transport=websocket` request, call
//! [`accept_upgrade`]; on `Err` answer a bare 400 (as engine.io does), on
//! `Ok` answer 101 with its headers and create [`WebSocket::server`] with
//! `max_message_size` set to the Engine.IO `maxPayload`. Then loop:
//! 1. bytes read from the socket → [`WebSocket::receive`] (end of input →
//!    [`WebSocket::receive_eof`]);
//! 2. [`WebSocket::poll_message`] until `None`: `Text` → decode an Engine.IO
//!    text packet, `Binary` → a binary packet, `Close` or `Err` → the
//!    transport is closed ("transport close" / "transport error");
//! 3. Engine.IO packets to send → [`WebSocket::send_text`] /
//!    [`WebSocket::send_binary`], one per packet;
//! 4. [`WebSocket::poll_transmit`] → write the bytes in order; once
//!    [`WebSocket::is_closed`] and everything is written, close the socket
//!    (the server closes TCP first, RFC 6455 section 7.1.1).
//!
//! Client: the same with [`ClientHandshake`] before and
//! [`WebSocket::client`], which takes the masking-key source; after the
//! close handshake a client waits (briefly) for the server to close TCP.
//!
//! Engine.IO has its own ping/pong packets; WebSocket pings from the peer are
//! answered here and never reach Engine.IO.
//!
//! # permessage-deflate
//! RFC 7692 compression is behind the `deflate` cargo feature. The server
//! runs [`negotiate_deflate`] on the request headers, adds
//! [`DeflateParams::response_header`] to its 101 as `Sec-WebSocket-Extensions`
//! and builds its connection with `WebSocket::with_deflate`; the client
//! offers with `ClientHandshake::with_deflate` and gets the agreed
//! parameters from [`ClientHandshake::validate_response_extensions`]. Then
//! messages over the threshold go out compressed (RSV1) and compressed
//! messages are inflated with `max_message_size` enforced on the inflated
//! size. Without the feature no extension is negotiated and the decoder
//! rejects every RSV bit.

pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;

pub use close::{CloseCode, CloseFrame, MAX_CLOSE_REASON};
pub use connection::{WebSocket, WsConfig, WsMessage, WsState};
pub use deflate::{
    negotiate_deflate, parse_extensions, DeflateConfig, DeflateParams, Extension, ExtensionParam,
};
pub use error::{LocalError, WsError};
pub use frame::{
    apply_mask, encode_frame, encode_frame_rsv1, Frame, FrameDecoder, FrameHeader, MaskKeySource,
    OpCode, Role, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN,
};
pub use handshake::{
    accept_key, accept_upgrade, ClientHandshake, HandshakeError, HeaderPair, UpgradeResponse,
};

#[cfg(test)]
mod tests;
