//! The client side of one HTTP/1.1 connection: requests out, responses in.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::body::{
    collect_headers, content_length, find_head_end, head_str, map_parse_error,
    skip_leading_newlines, transfer_coding, BodyReader, Framing, TransferCoding,
};
use super::encode::{check_headers, is_token, put_content_length, put_headers};
use super::error::{HttpError, UsageError};
use super::types::{keep_alive, Method, Request, Response, Version};
use super::Limits;
use crate::memory::KEEP_BUFFER_CAPACITY;

/// What [`ClientConn::poll_response`] produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The complete response to the oldest outstanding request.
    Response(Response),
    /// `101 Switching Protocols` answering a WebSocket upgrade request, and
    /// the bytes that followed its head (the first WebSocket bytes). The
    /// connection is now [upgraded](ClientConn::is_upgraded).
    Upgrade {
        /// The 101 response (headers include `Sec-WebSocket-Accept`).
        response: Response,
        /// Bytes received after the response head, for the WebSocket layer.
        leftover: Bytes,
    },
    /// The server closed the connection with no request outstanding (an idle
    /// keep-alive connection timed out). Reported once.
    PeerClosed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Failed,
    Closed,
    Upgraded,
}

/// A request written and not yet answered.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    head_request: bool,
    upgrade: bool,
    keep_alive: bool,
}

/// A response whose head is parsed and whose body is still arriving.
#[derive(Debug)]
struct Incoming {
    response: Response,
    reader: BodyReader,
    keep_alive: bool,
}

/// The client side of one HTTP/1.1 connection, sans-IO.
///
/// Write requests with [`write_request`](Self::write_request) (pipelining is
/// allowed: responses are matched to requests in order), feed received bytes
/// with [`feed`](Self::feed) and [`feed_eof`](Self::feed_eof), and call
/// [`poll_response`](Self::poll_response) until it returns `Ok(None)`.
/// Interim responses (`100 Continue` and other 1xx but 101) are skipped.
///
/// When a response closes the connection (`Connection: close`, HTTP/1.0, a
/// body delimited by closing), requests written after the one it answers are
/// lost: [`is_closed`](Self::is_closed) turns true and
/// [`requests_in_flight`](Self::requests_in_flight) tells how many to retry
/// on a new connection.
#[derive(Debug)]
pub struct ClientConn {
    limits: Limits,
    buf: BytesMut,
    head_scanned: usize,
    in_flight: VecDeque<Outstanding>,
    incoming: Option<Incoming>,
    no_more_requests: bool,
    eof: bool,
    state: State,
}

impl Default for ClientConn {
    fn default() -> Self {
        ClientConn::new(Limits::default())
    }
}

impl ClientConn {
    /// A fresh connection.
    pub fn new(limits: Limits) -> Self {
        ClientConn {
            limits,
            buf: BytesMut::new(),
            head_scanned: 0,
            in_flight: VecDeque::new(),
            incoming: None,
            no_more_requests: false,
            eof: false,
            state: State::Open,
        }
    }

    /// The limits this connection enforces on responses.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Writes `request` into `out`: request line, its headers (an HTTP/1.1
    /// request must carry `Host`), `Content-Length` when there is a body or
    /// the method is POST, PUT or PATCH, then the body.
    ///
    /// Refused once the connection is closing: after a request with
    /// `Connection: close` (or HTTP/1.0 without keep-alive), after a
    /// WebSocket upgrade request, or when closed. On error nothing is
    /// written.
    pub fn write_request(
        &mut self,
        request: &Request,
        out: &mut BytesMut,
    ) -> Result<(), UsageError> {
        if self.state != State::Open || self.no_more_requests {
            return Err(UsageError::ConnectionClosed);
        }
        if !is_token(request.method.as_str().as_bytes()) {
            return Err(UsageError::InvalidMethod);
        }
        let target_ok =
            !request.target.is_empty() && request.target.bytes().all(|b| b > b' ' && b != 0x7f);
        if !target_ok {
            return Err(UsageError::InvalidTarget);
        }
        if request.version == Version::Http11 && !request.headers.contains("host") {
            return Err(UsageError::MissingHost);
        }
        check_headers(&request.headers)?;

        out.put_slice(request.method.as_str().as_bytes());
        out.put_u8(b' ');
        out.put_slice(request.target.as_bytes());
        out.put_u8(b' ');
        out.put_slice(request.version.as_str().as_bytes());
        out.put_slice(b"\r\n");
        put_headers(out, &request.headers);
        let body_expected = matches!(request.method, Method::Post | Method::Put | Method::Patch);
        if body_expected || !request.body.is_empty() {
            put_content_length(out, request.body.len());
        }
        out.put_slice(b"\r\n");
        out.put_slice(&request.body);

        let outstanding = Outstanding {
            head_request: request.method == Method::Head,
            upgrade: request.is_websocket_upgrade(),
            keep_alive: request.wants_keep_alive(),
        };
        self.no_more_requests = outstanding.upgrade || !outstanding.keep_alive;
        self.in_flight.push_back(outstanding);
        Ok(())
    }

    /// Appends bytes received from the server. Bytes fed after the
    /// connection closed or failed are dropped.
    pub fn feed(&mut self, data: &[u8]) {
        if matches!(self.state, State::Open | State::Upgraded) {
            self.buf.extend_from_slice(data);
        }
    }

    /// Records that the server closed its sending side.
    pub fn feed_eof(&mut self) {
        self.eof = true;
    }

    /// Requests written and not yet answered.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Parses the next response out of the buffered bytes. `Ok(None)` means
    /// more input is needed, or the connection is closed, failed or
    /// upgraded.
    pub fn poll_response(&mut self) -> Result<Option<ClientEvent>, HttpError> {
        if self.state != State::Open {
            return Ok(None);
        }
        let result = self.parse_next();
        if result.is_err() {
            self.state = State::Failed;
            self.incoming = None;
            self.buf = BytesMut::new();
        } else if self.buf.is_empty() && self.buf.capacity() > KEEP_BUFFER_CAPACITY {
            // A large long-polling answer must not leave its capacity
            // behind.
            self.buf = BytesMut::new();
        }
        result
    }

    fn parse_next(&mut self) -> Result<Option<ClientEvent>, HttpError> {
        while self.incoming.is_none() {
            let before = self.buf.len();
            skip_leading_newlines(&mut self.buf);
            if self.buf.len() != before {
                self.head_scanned = 0;
            }
            if self.buf.is_empty() {
                if !self.eof {
                    return Ok(None);
                }
                if self.in_flight.is_empty() {
                    self.state = State::Closed;
                    return Ok(Some(ClientEvent::PeerClosed));
                }
                return Err(HttpError::UnexpectedEof);
            }
            let Some(outstanding) = self.in_flight.front().copied() else {
                return Err(HttpError::UnexpectedResponse);
            };
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
            let (response, framing) = self.parse_head(head, &outstanding)?;
            match response.status {
                101 if outstanding.upgrade => {
                    self.in_flight.pop_front();
                    self.state = State::Upgraded;
                    let leftover = self.buf.split().freeze();
                    return Ok(Some(ClientEvent::Upgrade { response, leftover }));
                }
                101 => return Err(HttpError::UnsolicitedUpgrade),
                // Interim responses precede the real one; nothing to report.
                100..=199 => continue,
                _ => {}
            }
            let keep_alive = outstanding.keep_alive
                && !outstanding.upgrade
                && framing != Framing::UntilClose
                && keep_alive(response.version, &response.headers);
            let reader = BodyReader::new(framing, &self.limits)?;
            self.incoming = Some(Incoming {
                response,
                reader,
                keep_alive,
            });
        }
        let Some(incoming) = self.incoming.as_mut() else {
            return Ok(None);
        };
        let Some(body) = incoming.reader.poll(&mut self.buf, self.eof)? else {
            return Ok(None);
        };
        let Some(Incoming {
            mut response,
            keep_alive,
            ..
        }) = self.incoming.take()
        else {
            return Ok(None);
        };
        response.body = body;
        self.in_flight.pop_front();
        if !keep_alive {
            self.state = State::Closed;
            self.buf = BytesMut::new();
        }
        Ok(Some(ClientEvent::Response(response)))
    }

    fn parse_head(
        &self,
        head: Bytes,
        outstanding: &Outstanding,
    ) -> Result<(Response, Framing), HttpError> {
        let mut slots = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(&head).map_err(map_parse_error)? {
            httparse::Status::Complete(_) => {}
            httparse::Status::Partial => return Err(HttpError::MalformedHead("incomplete head")),
        }
        let (Some(minor), Some(status)) = (parsed.version, parsed.code) else {
            return Err(HttpError::MalformedHead("incomplete status line"));
        };
        let version = if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        };
        let headers = collect_headers(&head, parsed.headers)?;
        let reason = head_str(&head, parsed.reason.unwrap_or(""))?;
        // RFC 9112 §6.3: these responses never have a body, whatever their
        // headers say.
        let framing = if outstanding.head_request || matches!(status, 100..=199 | 204 | 304) {
            Framing::Empty
        } else {
            match transfer_coding(&headers, version)? {
                Some(TransferCoding::Chunked) => Framing::Chunked,
                Some(TransferCoding::NotChunked) => Framing::UntilClose,
                None => match content_length(&headers)? {
                    Some(0) => Framing::Empty,
                    Some(length) => Framing::Length(length),
                    None => Framing::UntilClose,
                },
            }
        };
        let response = Response {
            status,
            reason,
            version,
            headers,
            body: Bytes::new(),
        };
        Ok((response, framing))
    }

    /// Whether this connection is finished with HTTP: the last response
    /// closed it, the server closed it, or a protocol error occurred. Close
    /// the socket.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed | State::Failed)
    }

    /// Whether a `101 Switching Protocols` was received: the socket now
    /// carries the upgraded protocol.
    pub fn is_upgraded(&self) -> bool {
        self.state == State::Upgraded
    }

    /// Whether [`write_request`](Self::write_request) would accept another
    /// request now.
    pub fn can_send_request(&self) -> bool {
        self.state == State::Open && !self.no_more_requests
    }

    /// Takes the bytes buffered but not consumed (for instance bytes fed
    /// after an upgrade).
    pub fn take_buffered(&mut self) -> Bytes {
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests;
