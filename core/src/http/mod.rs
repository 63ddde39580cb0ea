//! HTTP/1.1, sans-IO: the transport under Engine.IO long-polling and the
//! WebSocket upgrade.
//!
//! Two layers, kept apart so that requests already parsed by another HTTP
//! stack (hyper, axum) can enter the Engine.IO layer without this codec:
//! - the parsed representation: [`Request`], [`Response`], [`Headers`],
//!   [`Method`], [`Version`] and the query helpers ([`query_param`],
//!   [`query_pairs`], [`form_decode`]);
//! - the wire codec, one protocol object per TCP connection in the style of
//!   h11: [`ServerConn`] parses requests and encodes responses, [`ClientConn`]
//!   encodes requests and parses responses. They never touch a socket: the
//!   caller feeds received bytes in and writes the produced bytes out.
//!
//! Errors come in two kinds: [`HttpError`] is the peer breaking the protocol
//! (each maps to the status code to answer with, see
//! [`HttpError::status_code`]), [`UsageError`] is the application calling the
//! codec at the wrong time or with an unencodable message.
//!
//! Limits ([`Limits`]) bound everything a peer can make the codec buffer: the
//! request or response head, the number of headers, the body and the chunked
//! trailer section.

mod body;
mod client;
mod encode;
mod error;
pub mod proxy;
mod query;
mod server;
mod types;

pub use client::{ClientConn, ClientEvent};
pub use error::{HttpError, UsageError};
pub use query::{form_decode, query_pairs, query_param, QueryPairs};
pub use server::{AfterResponse, ServerConn, ServerEvent};
pub use types::{reason_phrase, Headers, Method, Request, Response, Version};

/// Bounds on what a peer can make a connection buffer.
///
/// The defaults follow Node.js (16 KiB of head) and engine.io
/// (`maxHttpBufferSize` of 1 MB for a body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request or response head (start line and headers, including
    /// the blank line that ends them), in bytes. Also bounds the trailer
    /// section of a chunked body. Exceeding it is [`HttpError::HeadTooLarge`]
    /// (431).
    pub max_head_size: usize,
    /// Most header fields in one head. Exceeding it is
    /// [`HttpError::TooManyHeaders`] (431).
    pub max_headers: usize,
    /// Largest decoded body, in bytes. Exceeding it is
    /// [`HttpError::BodyTooLarge`] (413).
    pub max_body_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_size: 16 * 1024,
            max_headers: 100,
            max_body_size: 1_000_000,
        }
    }
}
