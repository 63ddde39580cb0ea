//! The two error kinds: the peer broke HTTP, or the application misused the
//! codec.

use std::fmt;

use super::types::Response;

/// The peer sent something that is not acceptable HTTP/1.1.
///
/// After a server connection reports one, it parses nothing more; the
/// application may still answer with one response (for instance
/// [`HttpError::to_response`]), which always closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The head (start line and headers) or a chunked trailer section
    /// exceeds [`Limits::max_head_size`](super::Limits::max_head_size).
    HeadTooLarge,
    /// More header fields than
    /// [`Limits::max_headers`](super::Limits::max_headers).
    TooManyHeaders,
    /// The body (declared or decoded) exceeds
    /// [`Limits::max_body_size`](super::Limits::max_body_size).
    BodyTooLarge,
    /// The start line or a header field is not valid HTTP/1.x syntax.
    MalformedHead(&'static str),
    /// A `Content-Length` that is not a plain decimal number, or several that
    /// disagree.
    InvalidContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`: refused because the two
    /// framings disagree about where the message ends (request smuggling).
    ContentLengthWithTransferEncoding,
    /// A `Transfer-Encoding` whose final coding is not `chunked`, that applies
    /// `chunked` twice, or that appears in an HTTP/1.0 message.
    BadTransferEncoding,
    /// A transfer coding other than `chunked` (such as `gzip`), which this
    /// codec does not decode.
    UnsupportedTransferEncoding,
    /// A malformed chunked body: bad chunk size, size overflow, missing CRLF,
    /// overlong chunk-size line.
    InvalidChunk(&'static str),
    /// The peer closed the connection in the middle of a message, or (client
    /// side) before answering a request.
    UnexpectedEof,
    /// (Client side) a response arrived while no request was outstanding.
    UnexpectedResponse,
    /// (Client side) a `101 Switching Protocols` answered a request that did
    /// not ask for an upgrade.
    UnsolicitedUpgrade,
}

impl HttpError {
    /// The status code a server answers this error with: 431 for oversized
    /// heads, 413 for oversized bodies, 501 for unknown transfer codings,
    /// 400 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::UnsupportedTransferEncoding => 501,
            _ => 400,
        }
    }

    /// A minimal plain-text error response with [`HttpError::status_code`]
    /// and `Connection: close`, ready for
    /// [`ServerConn::write_response`](super::ServerConn::write_response).
    pub fn to_response(&self) -> Response {
        let mut response = Response::new(self.status_code());
        response
            .headers
            .append("Content-Type", "text/plain; charset=UTF-8");
        response.headers.append("Connection", "close");
        response.body = bytes::Bytes::from(self.to_string());
        response
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLarge => f.write_str("request header fields too large"),
            HttpError::TooManyHeaders => f.write_str("too many header fields"),
            HttpError::BodyTooLarge => f.write_str("body too large"),
            HttpError::MalformedHead(why) => write!(f, "malformed head: {why}"),
            HttpError::InvalidContentLength => f.write_str("invalid Content-Length"),
            HttpError::ContentLengthWithTransferEncoding => {
                f.write_str("both Content-Length and Transfer-Encoding")
            }
            HttpError::BadTransferEncoding => f.write_str("bad Transfer-Encoding"),
            HttpError::UnsupportedTransferEncoding => f.write_str("unsupported transfer coding"),
            HttpError::InvalidChunk(why) => write!(f, "invalid chunked body: {why}"),
            HttpError::UnexpectedEof => f.write_str("connection closed mid-message"),
            HttpError::UnexpectedResponse => f.write_str("response without a request"),
            HttpError::UnsolicitedUpgrade => f.write_str("101 without an upgrade request"),
        }
    }
}

impl std::error::Error for HttpError {}

/// The application called the codec at the wrong time or asked it to encode
/// something HTTP cannot carry. Nothing was written to the output buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// (Server) a response was written while no request is waiting for one.
    NoRequestPending,
    /// The connection is closed (or closes after the message in progress) or
    /// was upgraded: no more HTTP messages can be written.
    ConnectionClosed,
    /// A chunked response is in progress: finish it first; or a chunk was
    /// written while no chunked response is in progress.
    ChunkedResponseState,
    /// `100 Continue` was written while the client is not waiting for one.
    NoContinueExpected,
    /// `101 Switching Protocols` answered a request that did not ask for an
    /// upgrade, or another 1xx status was passed to `write_response`.
    InvalidInformational,
    /// A status code outside 100..=999.
    InvalidStatus,
    /// A header name that is not an HTTP token, or a header value, reason
    /// phrase or request target containing CR, LF or NUL (which would let
    /// the application's data forge extra headers).
    InvalidHeader,
    /// `Content-Length` or `Transfer-Encoding` set by the application: the
    /// codec owns the message framing.
    FramingHeader,
    /// A body on a message that cannot have one (1xx, 204, 304).
    BodyNotAllowed,
    /// (Client) an HTTP/1.1 request without a `Host` header.
    MissingHost,
    /// (Client) a method that is not an HTTP token.
    InvalidMethod,
    /// (Client) an invalid request target (empty or containing whitespace or
    /// control bytes).
    InvalidTarget,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UsageError::NoRequestPending => "no request is waiting for a response",
            UsageError::ConnectionClosed => "the connection is closed or upgraded",
            UsageError::ChunkedResponseState => "chunked response state mismatch",
            UsageError::NoContinueExpected => "the client is not waiting for 100 Continue",
            UsageError::InvalidInformational => "1xx status not allowed here",
            UsageError::InvalidStatus => "status code out of range",
            UsageError::InvalidHeader => "invalid header name or value",
            UsageError::FramingHeader => "Content-Length/Transfer-Encoding are set by the codec",
            UsageError::BodyNotAllowed => "this status cannot carry a body",
            UsageError::MissingHost => "HTTP/1.1 request without Host",
            UsageError::InvalidMethod => "invalid method",
            UsageError::InvalidTarget => "invalid request target",
        })
    }
}

impl std::error::Error for UsageError {}
