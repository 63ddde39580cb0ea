//! HTTP: parsing requests off a connection, routing them (handshake,
//! polling request, CORS preflight, errors), and writing responses.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tracing::{debug, trace, warn};

use super::conn::ConnKind;
use super::timers::{ConnTimer, TimerKey};
use super::{ConnId, HandshakeInfo, Server, SessionState, Sid};
use crate::engine::config::Transport;
use crate::engine::cors::{add_preflight_headers, cors_headers};
use crate::http::{AfterResponse, Headers, Method, Request, Response, ServerEvent as HttpEvent};
use crate::Str;

/// Engine.IO's JSON error answer.
pub(super) fn error_response(code: u8, message: Option<&str>, headers: Headers) -> Response {
    let message = match message {
        Some(message) if !message.is_empty() => message,
        _ => match code {
            0 => "Transport unknown",
            1 => "Session ID unknown",
            2 => "Bad handshake method",
            4 => "Forbidden",
            5 => "Unsupported protocol version",
            _ => "Bad request",
        },
    };
    let status = if code == 4 { 403 } else { 400 };
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".into());
    let mut response = Response::new(status);
    response.headers = headers;
    response.headers.append("Content-Type", "application/json");
    response.body = Bytes::from(format!("{{\"code\":{code},\"message\":{message}}}"));
    response
}

/// A status with no body and the CORS headers (engine.io's bare
/// `res.writeHead(400); res.end()`).
pub(super) fn bare_response(status: u16, headers: Headers) -> Response {
    let mut response = Response::new(status);
    response.headers = headers;
    response
}

pub(super) fn cookie_header(cookie: &crate::engine::config::CookieConfig, sid: &str) -> String {
    use crate::engine::config::SameSite;
    let mut value = format!("{}={}", cookie.name, sid);
    if let Some(max_age) = cookie.max_age {
        value.push_str(&format!("; Max-Age={}", max_age.as_secs()));
    }
    if let Some(domain) = &cookie.domain {
        value.push_str(&format!("; Domain={domain}"));
    }
    if let Some(path) = &cookie.path {
        value.push_str(&format!("; Path={path}"));
    }
    if cookie.http_only {
        value.push_str("; HttpOnly");
    }
    if cookie.secure {
        value.push_str("; Secure");
    }
    match cookie.same_site {
        Some(SameSite::Strict) => value.push_str("; SameSite=Strict"),
        Some(SameSite::Lax) => value.push_str("; SameSite=Lax"),
        Some(SameSite::None) => value.push_str("; SameSite=None"),
        None => {}
    }
    value
}

impl Server {
    pub(super) fn path_matches(&self, request: &Request) -> bool {
        request.path().starts_with(self.config.path.as_str())
    }

    /// The `transport` query parameter, if it names an enabled transport.
    pub(super) fn requested_transport(&self, request: &Request) -> Option<Transport> {
        let transport = match request.query_param("transport").as_deref() {
            Some("polling") => Transport::Polling,
            Some("websocket") => Transport::WebSocket,
            _ => return None,
        };
        self.config
            .transports
            .contains(&transport)
            .then_some(transport)
    }

    pub(super) fn requested_sid(request: &Request) -> Option<Sid> {
        request
            .query_param("sid")
            .filter(|sid| !sid.is_empty())
            .map(|sid| Sid::from(sid.as_ref()))
    }

    pub(super) fn open_info(
        &self,
        id: ConnId,
        mut request: Request,
        transport: Transport,
    ) -> Box<HandshakeInfo> {
        request.body = Bytes::new();
        Box::new(HandshakeInfo {
            request,
            remote: self.conns.get(&id).and_then(|c| c.remote),
            transport,
        })
    }

    pub(super) fn process_http(&mut self, now: Instant, id: ConnId) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let ConnKind::Http { codec, .. } = &mut conn.kind else {
                return;
            };
            // A request in progress keeps its `Idle` timer: it is ignored
            // while a response is awaited (see `ConnTimer::Idle`).
            match codec.poll_request() {
                Ok(None) => return,
                Ok(Some(HttpEvent::Request(request))) => {
                    trace!(conn = id.0, method = %request.method, target = %request.target, "request");
                    self.on_request(now, id, request);
                }
                Ok(Some(HttpEvent::Upgrade { request, leftover })) => {
                    trace!(conn = id.0, target = %request.target, "upgrade request");
                    self.on_upgrade(now, id, request, leftover);
                }
                Ok(Some(HttpEvent::PeerClosed)) => {
                    self.drop_conn(now, id);
                    return;
                }
                Err(err) => {
                    debug!(conn = id.0, error = %err, "bad HTTP request");
                    let mut out = BytesMut::new();
                    let _ = codec.write_response(&err.to_response(), &mut out);
                    conn.push_out(out.freeze());
                    self.close_conn(now, id);
                    return;
                }
            }
        }
    }

    /// Writes a response on an HTTP connection.
    pub(super) fn respond(&mut self, now: Instant, id: ConnId, response: Response) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let codec = match &mut conn.kind {
            ConnKind::Http { codec } => codec,
            ConnKind::External { response: slot } => {
                *slot = Some(Box::new(response));
                self.mark_ready(id);
                return;
            }
            _ => return,
        };
        let mut out = BytesMut::new();
        let idle = match codec.write_response(&response, &mut out) {
            Ok(AfterResponse::KeepAlive) => {
                conn.pipelined = 0;
                Some(now + self.config.idle_timeout)
            }
            Ok(AfterResponse::Close) => {
                conn.close_after = true;
                None
            }
            Ok(AfterResponse::Upgraded) => None,
            Err(err) => {
                warn!(conn = id.0, error = %err, "response not written");
                conn.close_after = true;
                None
            }
        };
        conn.push_out(out.freeze());
        let key = TimerKey::Conn(id, ConnTimer::Idle);
        match idle {
            Some(at) => self.timers.set(key, at),
            None => {
                self.timers.stop(&key);
            }
        }
        self.mark_ready(id);
    }

    pub(super) fn on_request(&mut self, now: Instant, id: ConnId, request: Request) {
        if !self.path_matches(&request) {
            debug!(target = %request.target, "request outside the engine path");
            let response = Response::new(404)
                .with_header("Content-Type", "text/plain; charset=UTF-8")
                .with_body("Not Found");
            return self.respond(now, id, response);
        }
        let Some(cors) = cors_headers(&self.config, &request) else {
            debug!("origin not allowed");
            return self.respond(now, id, error_response(3, None, Headers::new()));
        };
        if request.method == Method::Options {
            let mut response = bare_response(204, cors);
            add_preflight_headers(&request, &mut response.headers);
            return self.respond(now, id, response);
        }
        let Some(transport) = self.requested_transport(&request) else {
            debug!("unknown transport");
            return self.respond(now, id, error_response(0, None, cors));
        };
        if let Some(sid) = Self::requested_sid(&request) {
            let Some(session) = self.sessions.get(&sid) else {
                debug!(%sid, "unknown sid");
                return self.respond(now, id, error_response(1, None, cors));
            };
            let on_websocket = matches!(session.state, SessionState::WebSocket { .. });
            if on_websocket || transport != Transport::Polling {
                debug!(%sid, "transport mismatch");
                return self.respond(now, id, error_response(3, None, cors));
            }
            match request.method {
                Method::Get => self.poll_get(now, id, sid, &request, cors),
                Method::Post => self.poll_post(now, id, sid, request, cors),
                _ => self.respond(now, id, bare_response(500, cors)),
            }
            return;
        }
        if request.method != Method::Get {
            return self.respond(now, id, error_response(2, None, cors));
        }
        if transport == Transport::WebSocket {
            debug!("websocket handshake without upgrade");
            return self.respond(now, id, error_response(3, None, cors));
        }
        if let Some(check) = &self.config.allow_request {
            if let Err(message) = check(&request) {
                return self.respond(now, id, error_response(4, Some(&message), cors));
            }
        }
        if request.query_param("EIO").as_deref() != Some("4") {
            debug!("unsupported protocol version");
            return self.respond(now, id, error_response(5, None, cors));
        }
        self.open_polling(now, id, request, cors);
    }

    fn open_polling(&mut self, now: Instant, id: ConnId, request: Request, mut headers: Headers) {
        let base64 = request.query_param("b64").is_some();
        let sid = self.new_sid();
        self.open_session(now, sid.clone(), SessionState::default(), base64);
        if let Some(polling) = self
            .sessions
            .get_mut(&sid)
            .and_then(|s| s.state.polling_mut())
        {
            let open = super::session::handshake_packet(&self.config, &sid, Transport::Polling);
            polling.queue.push_back(open);
        }
        debug!(%sid, "session opened (polling)");
        if let Some(cookie) = &self.config.cookie {
            headers.append("Set-Cookie", cookie_header(cookie, &sid));
        }
        self.poll_get(now, id, sid.clone(), &request, headers);
        let info = self.open_info(id, request, Transport::Polling);
        // Reported before anything the session's first request carried.
        self.events
            .push_back(super::ServerEvent::Opened { sid, info });
    }
}

/// Copies `headers` into a response's (CORS and cookie headers kept from
/// the request).
pub(super) fn append_headers(response: &mut Response, headers: &Headers) {
    for (name, value) in headers.iter() {
        response
            .headers
            .append(Str::from(name), Bytes::copy_from_slice(value));
    }
}
