//! The server side of one HTTP/1.1 connection: requests in, responses out.

use bytes::{BufMut, Bytes, BytesMut};

use super::body::{
    collect_headers, content_length, find_head_end, head_str, map_parse_error,
    skip_leading_newlines, transfer_coding, BodyReader, Framing, TransferCoding,
};
use super::encode::{
    check_headers, is_field_value, put_chunk, put_content_length, put_header, put_headers,
    LAST_CHUNK,
};
use super::error::{HttpError, UsageError};
use super::types::{Method, Request, Response, Version};
use super::Limits;
use crate::memory::KEEP_BUFFER_CAPACITY;

/// What [`ServerConn::poll_request`] produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A complete request (body included). Answer it with
    /// [`ServerConn::write_response`] (or a chunked response); the next
    /// request is parsed only after that.
    Request(Request),
    /// A WebSocket upgrade request ([`Request::is_websocket_upgrade`]) and the
    /// bytes that followed it in the buffer, which belong to the WebSocket.
    /// Accept it by writing a `101 Switching Protocols` response (the
    /// connection is then [upgraded](ServerConn::is_upgraded)), refuse it with
    /// any other response (the connection then closes). Bytes received from
    /// now on belong to the WebSocket too: do not feed them here.
    Upgrade {
        /// The upgrade request.
        request: Request,
        /// Bytes received after the request, for the WebSocket layer.
        leftover: Bytes,
    },
    /// The peer closed its side ([`ServerConn::feed_eof`]) and no buffered
    /// request remains. When a request is still waiting for its response
    /// this means the client gave up on it (an aborted long-polling GET).
    /// Reported once.
    PeerClosed,
}

/// What happens to the connection after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterResponse {
    /// The connection stays open for the next request.
    KeepAlive,
    /// Close the connection once the written bytes are flushed.
    Close,
    /// The connection now speaks the upgraded protocol (WebSocket).
    Upgraded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// A peer error was reported; at most one response may still be written.
    Failed,
    Closed,
    Upgraded,
}

/// A request whose head is parsed and whose body is still arriving.
#[derive(Debug)]
struct Incoming {
    request: Request,
    reader: BodyReader,
    expects_continue: bool,
    continue_sent: bool,
}

/// A request delivered to the application and not yet fully answered.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    version: Version,
    head_request: bool,
    keep_alive: bool,
    upgrade: bool,
    streaming: Option<Streaming>,
}

/// A chunked (or, for HTTP/1.0 clients, close-delimited) response in
/// progress.
#[derive(Debug, Clone, Copy)]
struct Streaming {
    chunked: bool,
    send_body: bool,
    closing: bool,
}

/// The server side of one HTTP/1.1 connection, sans-IO.
///
/// Feed received bytes with [`feed`](Self::feed) (and [`feed_eof`](Self::feed_eof)
/// when the peer closes), then call [`poll_request`](Self::poll_request)
/// until it returns `Ok(None)`. Each request must be answered, in order, with
/// [`write_response`](Self::write_response) (or
/// [`start_chunked_response`](Self::start_chunked_response), then
/// [`write_chunk`](Self::write_chunk) and
/// [`finish_chunked_response`](Self::finish_chunked_response)); pipelined
/// requests stay buffered until then, as in h11. After a response, close the
/// socket if [`is_closed`](Self::is_closed).
///
/// After [`poll_request`](Self::poll_request) returns an error the connection
/// parses nothing more; the application may write one response (such as
/// [`HttpError::to_response`]) and must then close.
#[derive(Debug)]
pub struct ServerConn {
    limits: Limits,
    buf: BytesMut,
    head_scanned: usize,
    incoming: Option<Incoming>,
    pending: Option<Exchange>,
    eof: bool,
    peer_closed_reported: bool,
    state: State,
}

impl Default for ServerConn {
    fn default() -> Self {
        ServerConn::new(Limits::default())
    }
}

impl ServerConn {
    /// A connection waiting for its first request.
    pub fn new(limits: Limits) -> Self {
        ServerConn {
            limits,
            buf: BytesMut::new(),
            head_scanned: 0,
            incoming: None,
            pending: None,
            eof: false,
            peer_closed_reported: false,
            state: State::Open,
        }
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Appends bytes received from the peer. Nothing is parsed until
    /// [`poll_request`](Self::poll_request). Bytes fed after the connection
    /// closed or failed are dropped; bytes fed after an upgrade are kept for
    /// [`take_buffered`](Self::take_buffered).
    pub fn feed(&mut self, data: &[u8]) {
        if matches!(self.state, State::Open | State::Upgraded) {
            self.buf.extend_from_slice(data);
        }
    }

    /// The bytes the read buffer has allocated, in use or not.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Records that the peer closed its sending side (read returned 0).
    pub fn feed_eof(&mut self) {
        self.eof = true;
    }

    /// Whether reading more from the socket is useful now. False once the
    /// connection is closed, failed or (being) upgraded, after EOF, and while
    /// a response is pending and a full head's worth of pipelined bytes is
    /// already buffered: a driver that respects it bounds the memory a
    /// pipelining client can make the connection hold.
    pub fn wants_read(&self) -> bool {
        if self.state != State::Open || self.eof {
            return false;
        }
        match self.pending {
            Some(exchange) => !exchange.upgrade && self.buf.len() < self.limits.max_head_size,
            None => true,
        }
    }

    /// Parses the next event out of the buffered bytes.
    ///
    /// `Ok(None)` means more input is needed, a response is pending (the
    /// next request waits for it), or the connection is closed, failed or
    /// upgraded.
    pub fn poll_request(&mut self) -> Result<Option<ServerEvent>, HttpError> {
        if self.state != State::Open {
            return Ok(None);
        }
        if self.pending.is_some() {
            if self.eof && self.buf.is_empty() && !self.peer_closed_reported {
                self.peer_closed_reported = true;
                return Ok(Some(ServerEvent::PeerClosed));
            }
            return Ok(None);
        }
        match self.parse_next() {
            Ok(event) => {
                // A large body must not leave its capacity behind.
                if self.buf.is_empty() && self.buf.capacity() > KEEP_BUFFER_CAPACITY {
                    self.buf = BytesMut::new();
                }
                Ok(event)
            }
            Err(err) => {
                let version = self
                    .incoming
                    .take()
                    .map_or(Version::Http11, |incoming| incoming.request.version);
                self.state = State::Failed;
                self.buf = BytesMut::new();
                self.pending = Some(Exchange {
                    version,
                    head_request: false,
                    keep_alive: false,
                    upgrade: false,
                    streaming: None,
                });
                Err(err)
            }
        }
    }

    fn parse_next(&mut self) -> Result<Option<ServerEvent>, HttpError> {
        if self.incoming.is_none() {
            let before = self.buf.len();
            skip_leading_newlines(&mut self.buf);
            if self.buf.len() != before {
                self.head_scanned = 0;
            }
            if self.buf.is_empty() {
                if self.eof {
                    self.state = State::Closed;
                    self.peer_closed_reported = true;
                    return Ok(Some(ServerEvent::PeerClosed));
                }
                return Ok(None);
            }
            let Some(head_len) = find_head_end(&self.buf, &mut self.head_scanned) else {
                if self.buf.len() > self.limits.max_head_size {
                    return Err(HttpError::HeadTooLarge);
                }
                if self.eof {
                    return Err(HttpError::UnexpectedEof);
                }
                return Ok(None);
            };
            if head_len > self.limits.max_head_size {
                return Err(HttpError::HeadTooLarge);
            }
            self.head_scanned = 0;
            let head = self.buf.split_to(head_len).freeze();
            self.incoming = Some(self.parse_head(head)?);
        }
        let Some(incoming) = self.incoming.as_mut() else {
            return Ok(None);
        };
        let Some(body) = incoming.reader.poll(&mut self.buf, self.eof)? else {
            return Ok(None);
        };
        let Some(Incoming { mut request, .. }) = self.incoming.take() else {
            return Ok(None);
        };
        request.body = body;
        let upgrade = request.is_websocket_upgrade();
        self.pending = Some(Exchange {
            version: request.version,
            head_request: request.method == Method::Head,
            keep_alive: request.wants_keep_alive(),
            upgrade,
            streaming: None,
        });
        if upgrade {
            let leftover = self.buf.split().freeze();
            return Ok(Some(ServerEvent::Upgrade { request, leftover }));
        }
        Ok(Some(ServerEvent::Request(request)))
    }

    fn parse_head(&self, head: Bytes) -> Result<Incoming, HttpError> {
        let mut slots = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(&head).map_err(map_parse_error)? {
            httparse::Status::Complete(_) => {}
            httparse::Status::Partial => return Err(HttpError::MalformedHead("incomplete head")),
        }
        let (Some(method), Some(target), Some(minor)) =
            (parsed.method, parsed.path, parsed.version)
        else {
            return Err(HttpError::MalformedHead("incomplete request line"));
        };
        let version = if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        };
        let headers = collect_headers(&head, parsed.headers)?;
        let framing = match transfer_coding(&headers, version)? {
            Some(TransferCoding::Chunked) => Framing::Chunked,
            // A request body cannot be delimited by closing (RFC 9112 §6.3).
            Some(TransferCoding::NotChunked) => return Err(HttpError::BadTransferEncoding),
            None => match content_length(&headers)? {
                Some(0) | None => Framing::Empty,
                Some(length) => Framing::Length(length),
            },
        };
        let reader = BodyReader::new(framing, &self.limits)?;
        let expects_continue = version == Version::Http11
            && headers
                .get("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        let request = Request {
            method: Method::from(method),
            target: head_str(&head, target)?,
            version,
            headers,
            body: Bytes::new(),
        };
        Ok(Incoming {
            request,
            reader,
            expects_continue,
            continue_sent: false,
        })
    }

    /// Whether a request is waiting for its response (or for the end of its
    /// chunked response).
    pub fn awaiting_response(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether the client sent `Expect: 100-continue` and waits for
    /// `100 Continue` before sending the body. Clients also send the body
    /// after a timeout, so ignoring this only costs latency; a driver that
    /// cares calls [`write_continue`](Self::write_continue) when it is true
    /// after [`poll_request`](Self::poll_request). A declared body over the
    /// limit is refused (413) before this becomes true.
    pub fn wants_continue(&self) -> bool {
        self.incoming
            .as_ref()
            .is_some_and(|i| i.expects_continue && !i.continue_sent && i.reader.waiting_for_body())
            && self.buf.is_empty()
    }

    /// Writes `HTTP/1.1 100 Continue`. Errors unless
    /// [`wants_continue`](Self::wants_continue).
    pub fn write_continue(&mut self, out: &mut BytesMut) -> Result<(), UsageError> {
        if !self.wants_continue() {
            return Err(UsageError::NoContinueExpected);
        }
        if let Some(incoming) = self.incoming.as_mut() {
            incoming.continue_sent = true;
        }
        out.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        Ok(())
    }

    /// Writes the complete response to the pending request into `out`:
    /// status line, the response's headers, `Content-Length` (none for 1xx,
    /// 204 and 304), a `Connection` header when the connection closes
    /// (`close`) or an HTTP/1.0 client keeps it (`keep-alive`), then the body
    /// (omitted for `HEAD`).
    ///
    /// `101 Switching Protocols` is accepted only for an
    /// [`ServerEvent::Upgrade`] request; any other answer to an upgrade
    /// request closes the connection. A `Connection: close` header in the
    /// response closes the connection. On error nothing is written.
    pub fn write_response(
        &mut self,
        response: &Response,
        out: &mut BytesMut,
    ) -> Result<AfterResponse, UsageError> {
        let exchange = self.response_slot()?;
        let has_body = check_response(response, &exchange)?;
        if !has_body && !response.body.is_empty() {
            return Err(UsageError::BodyNotAllowed);
        }
        let closing = self.closing_after(&exchange, response);
        self.put_head(out, response, &exchange, closing);
        if has_body {
            put_content_length(out, response.body.len());
        }
        out.put_slice(b"\r\n");
        if has_body && !exchange.head_request {
            out.put_slice(&response.body);
        }
        Ok(self.finish_exchange(response.status == 101, closing))
    }

    /// Starts a streamed response: writes the head with
    /// `Transfer-Encoding: chunked` (for an HTTP/1.0 client, no framing
    /// header and the connection closes at the end), and `response.body`, if
    /// not empty, as the first chunk. Continue with
    /// [`write_chunk`](Self::write_chunk) and end with
    /// [`finish_chunked_response`](Self::finish_chunked_response).
    pub fn start_chunked_response(
        &mut self,
        response: &Response,
        out: &mut BytesMut,
    ) -> Result<(), UsageError> {
        let exchange = self.response_slot()?;
        if !check_response(response, &exchange)? {
            return Err(UsageError::BodyNotAllowed);
        }
        let chunked = exchange.version == Version::Http11;
        let closing = self.closing_after(&exchange, response) || !chunked;
        self.put_head(out, response, &exchange, closing);
        if chunked {
            put_header(out, "Transfer-Encoding", b"chunked");
        }
        out.put_slice(b"\r\n");
        let streaming = Streaming {
            chunked,
            send_body: !exchange.head_request,
            closing,
        };
        put_body_part(out, &streaming, &response.body);
        if let Some(pending) = self.pending.as_mut() {
            pending.streaming = Some(streaming);
        }
        Ok(())
    }

    /// Writes one part of a streamed response (empty data writes nothing).
    pub fn write_chunk(&mut self, data: &[u8], out: &mut BytesMut) -> Result<(), UsageError> {
        let streaming = self.streaming()?;
        put_body_part(out, &streaming, data);
        Ok(())
    }

    /// Ends a streamed response (the last chunk, no trailers).
    pub fn finish_chunked_response(
        &mut self,
        out: &mut BytesMut,
    ) -> Result<AfterResponse, UsageError> {
        let streaming = self.streaming()?;
        if streaming.chunked && streaming.send_body {
            out.put_slice(LAST_CHUNK);
        }
        Ok(self.finish_exchange(false, streaming.closing))
    }

    /// Whether the connection closes after the pending response (or already
    /// has): the request or response said so, the client uses HTTP/1.0
    /// without keep-alive, the peer closed, an error occurred, or an upgrade
    /// was refused.
    pub fn will_close(&self) -> bool {
        match (self.state, self.pending) {
            (State::Open, Some(exchange)) => {
                !exchange.keep_alive
                    || self.peer_closed_reported
                    || (self.eof && self.buf.is_empty())
            }
            (State::Open, None) => self.eof && self.buf.is_empty(),
            (State::Upgraded, _) => false,
            (State::Failed | State::Closed, _) => true,
        }
    }

    /// Whether this connection is finished with HTTP: close the socket once
    /// the written bytes are flushed. True after the last response of a
    /// closing connection, after [`ServerEvent::PeerClosed`] with nothing
    /// left to answer, and from the moment
    /// [`poll_request`](Self::poll_request) returns an error (the one
    /// response still allowed then should be written before closing).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed || self.state == State::Failed
    }

    /// Whether a `101 Switching Protocols` was written: the socket now
    /// carries the upgraded protocol.
    pub fn is_upgraded(&self) -> bool {
        self.state == State::Upgraded
    }

    /// Takes the bytes buffered but not consumed (for instance bytes fed
    /// after an upgrade).
    pub fn take_buffered(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    fn response_slot(&self) -> Result<Exchange, UsageError> {
        if !matches!(self.state, State::Open | State::Failed) {
            return Err(UsageError::ConnectionClosed);
        }
        let exchange = self.pending.ok_or(UsageError::NoRequestPending)?;
        if exchange.streaming.is_some() {
            return Err(UsageError::ChunkedResponseState);
        }
        Ok(exchange)
    }

    fn streaming(&self) -> Result<Streaming, UsageError> {
        self.pending
            .and_then(|exchange| exchange.streaming)
            .ok_or(UsageError::ChunkedResponseState)
    }

    fn closing_after(&self, exchange: &Exchange, response: &Response) -> bool {
        !exchange.keep_alive
            || self.state == State::Failed
            || self.peer_closed_reported
            || (self.eof && self.buf.is_empty())
            || response.headers.has_token("connection", "close")
            || (exchange.upgrade && response.status != 101)
    }

    fn put_head(
        &self,
        out: &mut BytesMut,
        response: &Response,
        exchange: &Exchange,
        closing: bool,
    ) {
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(itoa::Buffer::new().format(response.status).as_bytes());
        out.put_u8(b' ');
        out.put_slice(response.reason.as_bytes());
        out.put_slice(b"\r\n");
        put_headers(out, &response.headers);
        if response.status == 101 {
            return;
        }
        if closing {
            if !response.headers.has_token("connection", "close") {
                put_header(out, "Connection", b"close");
            }
        } else if exchange.version == Version::Http10
            && !response.headers.has_token("connection", "keep-alive")
        {
            put_header(out, "Connection", b"keep-alive");
        }
    }

    fn finish_exchange(&mut self, upgraded: bool, closing: bool) -> AfterResponse {
        self.pending = None;
        if upgraded {
            self.state = State::Upgraded;
            AfterResponse::Upgraded
        } else if closing {
            self.state = State::Closed;
            self.buf = BytesMut::new();
            AfterResponse::Close
        } else {
            AfterResponse::KeepAlive
        }
    }
}

/// Validates a response for `exchange`; returns whether its status allows a
/// body.
fn check_response(response: &Response, exchange: &Exchange) -> Result<bool, UsageError> {
    if !(100..=999).contains(&response.status) {
        return Err(UsageError::InvalidStatus);
    }
    if response.status < 200 && !(response.status == 101 && exchange.upgrade) {
        return Err(UsageError::InvalidInformational);
    }
    if !is_field_value(response.reason.as_bytes()) {
        return Err(UsageError::InvalidHeader);
    }
    check_headers(&response.headers)?;
    Ok(!matches!(response.status, 100..=199 | 204 | 304))
}

fn put_body_part(out: &mut BytesMut, streaming: &Streaming, data: &[u8]) {
    if !streaming.send_body {
        return;
    }
    if streaming.chunked {
        put_chunk(out, data);
    } else {
        out.put_slice(data);
    }
}

#[cfg(test)]
mod tests;
