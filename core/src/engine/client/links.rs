//! The client's connections: asking for them, reading their bytes into
//! session inputs, closing them.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::BytesMut;
use rand_core::RngCore;

use super::{Client, ClientAction, ClientCloseReason, Input, State};
use crate::engine::packet::Packet;
use crate::engine::server::ConnId;
use crate::http::{self, ClientConn, HttpError, Limits, Request, Response};
use crate::ws::{ClientHandshake, MaskKeySource, WebSocket, WsError, WsMessage};

/// Bytes of HTTP head a server may send us.
const MAX_HTTP_HEAD: usize = 16 * 1024;

/// The session's randomness, shared with the WebSocket connections that
/// draw their mask keys from it.
#[derive(Clone)]
pub(super) struct SharedRng(Arc<Mutex<Box<dyn RngCore + Send>>>);

impl SharedRng {
    pub(super) fn new(rng: Box<dyn RngCore + Send>) -> SharedRng {
        SharedRng(Arc::new(Mutex::new(rng)))
    }

    pub(super) fn fill(&self, out: &mut [u8]) {
        // A panic while another holder had the lock cannot leave a random
        // generator in a state worth refusing.
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill_bytes(out);
    }
}

impl MaskKeySource for SharedRng {
    fn next_mask_key(&mut self) -> [u8; 4] {
        let mut key = [0; 4];
        self.fill(&mut key);
        key
    }
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Long-polling: carries the GET requests.
    Get,
    /// Long-polling: carries the POST requests.
    Post,
    /// The WebSocket that carries the session.
    WebSocket,
    /// The WebSocket being probed for an upgrade.
    Probe,
}

pub(super) enum LinkState {
    /// Asked for with `Connect`, not yet established.
    Connecting,
    /// HTTP requests and responses.
    Http(ClientConn),
    /// The WebSocket upgrade request is written; waiting for the 101.
    WsHandshake {
        http: ClientConn,
        handshake: ClientHandshake,
    },
    /// An open WebSocket.
    Ws(WebSocket),
}

pub(super) struct Link {
    pub(super) role: Role,
    pub(super) state: LinkState,
}

/// One step of reading a connection's input.
enum Step {
    /// A complete HTTP response on a polling connection; `closed` when the
    /// connection cannot carry another request.
    Response {
        response: Box<Response>,
        closed: bool,
    },
    /// The server closed an idle keep-alive connection.
    IdleClosed,
    /// A WebSocket upgrade succeeded.
    WsOpened,
    /// A WebSocket connection failed before or during the upgrade.
    WsFailed(ClientCloseReason),
    /// A packet arrived on a WebSocket.
    WsPacket(Packet),
    /// A connection broke: the session (or the probe) ends for `reason`.
    Broken(ClientCloseReason),
}

impl Client {
    pub(super) fn limits(&self) -> Limits {
        let max = self.config.max_payload;
        Limits {
            max_head_size: MAX_HTTP_HEAD,
            max_headers: 100,
            // A binary message travels in base64 over polling: 4/3 the size.
            max_body_size: max.saturating_add(max / 3).saturating_add(64),
        }
    }

    pub(super) fn open_link(&mut self, role: Role) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.links.insert(
            conn,
            Link {
                role,
                state: LinkState::Connecting,
            },
        );
        self.actions.push_back(ClientAction::Connect(conn));
        conn
    }

    /// Clears whichever slot of the state names `conn`.
    pub(super) fn forget_slot(&mut self, conn: ConnId) {
        match &mut self.state {
            State::Polling { polling, probe, .. } => {
                polling.forget(conn);
                if probe.as_ref().is_some_and(|probe| probe.conn == conn) {
                    *probe = None;
                }
            }
            State::Handshaking(super::FirstTransport::Polling(polling))
            | State::Closing { polling, .. } => polling.forget(conn),
            // A lost WebSocket ends the session: the caller moves on to
            // `Closed`.
            State::Handshaking(super::FirstTransport::WebSocket(_))
            | State::WebSocket { .. }
            | State::Closed { .. } => {}
        }
    }

    /// Closes one connection (after writing what its WebSocket still has).
    pub(super) fn drop_link(&mut self, conn: ConnId) {
        if let Some(mut link) = self.links.remove(&conn) {
            if let LinkState::Ws(ws) = &mut link.state {
                if let Some(bytes) = ws.poll_transmit() {
                    self.actions.push_back(ClientAction::Data(conn, bytes));
                }
            }
            self.actions.push_back(ClientAction::Close(conn));
        }
        self.forget_slot(conn);
    }

    /// A connection of `role` failed for `reason`: a probe failure keeps the
    /// session on polling, anything else ends it.
    pub(super) fn link_failed(&mut self, now: Instant, role: Role, reason: ClientCloseReason) {
        let input = match role {
            Role::Probe => Input::ProbeFailed,
            Role::Get | Role::Post | Role::WebSocket => Input::TransportFailed(reason),
        };
        self.step(now, input);
    }

    /// `conn` is established; `false` when it was not waiting for that.
    pub(super) fn connected(&mut self, now: Instant, conn: ConnId) -> bool {
        let limits = self.limits();
        let Some(link) = self.links.get_mut(&conn) else {
            return false;
        };
        if !matches!(link.state, LinkState::Connecting) {
            return false;
        }
        match link.role {
            Role::Get | Role::Post => link.state = LinkState::Http(ClientConn::new(limits)),
            Role::WebSocket | Role::Probe => self.start_ws_handshake(now, conn),
        }
        true
    }

    /// Buffers bytes read on `conn`; `false` when there is nothing to
    /// process.
    pub(super) fn feed(&mut self, conn: ConnId, data: &[u8]) -> bool {
        let Some(link) = self.links.get_mut(&conn) else {
            return false;
        };
        match &mut link.state {
            // Bytes before the connection is reported established: the
            // driver broke its contract; nothing sensible to do with them.
            LinkState::Connecting => return false,
            LinkState::Http(http) => http.feed(data),
            LinkState::WsHandshake { http, .. } => http.feed(data),
            LinkState::Ws(ws) => ws.receive(data),
        }
        true
    }

    /// The end of `conn`'s input; `false` for an unknown connection.
    pub(super) fn feed_eof(&mut self, now: Instant, conn: ConnId) -> bool {
        let Some(link) = self.links.get_mut(&conn) else {
            return false;
        };
        match &mut link.state {
            LinkState::Connecting => {
                let role = link.role;
                self.links.remove(&conn);
                self.forget_slot(conn);
                self.link_failed(
                    now,
                    role,
                    ClientCloseReason::TransportError("could not connect to the server".into()),
                );
            }
            LinkState::Http(http) => http.feed_eof(),
            LinkState::WsHandshake { http, .. } => http.feed_eof(),
            LinkState::Ws(ws) => ws.receive_eof(),
        }
        true
    }

    /// Writes `request` on an HTTP connection.
    pub(super) fn write_http(&mut self, conn: ConnId, request: &Request) -> Result<(), String> {
        let Some(LinkState::Http(http)) = self.links.get_mut(&conn).map(|l| &mut l.state) else {
            return Err("connection not ready".into());
        };
        let mut out = BytesMut::new();
        http.write_request(request, &mut out)
            .map_err(|err| format!("cannot write the request: {err}"))?;
        self.actions
            .push_back(ClientAction::Data(conn, out.freeze()));
        Ok(())
    }

    /// Handles everything buffered on `conn`.
    pub(super) fn process(&mut self, now: Instant, conn: ConnId) {
        loop {
            if matches!(self.state, State::Closed { .. }) {
                return;
            }
            let ws_config = self.ws_config();
            #[cfg(feature = "deflate")]
            let deflate_config = self.deflate_config();
            let Some(link) = self.links.get_mut(&conn) else {
                return;
            };
            let role = link.role;
            let step = match &mut link.state {
                LinkState::Connecting => return,
                LinkState::Http(http) => match http.poll_response() {
                    Ok(None) => return,
                    Ok(Some(http::ClientEvent::Response(response))) => Step::Response {
                        response: Box::new(response),
                        closed: http.is_closed(),
                    },
                    Ok(Some(http::ClientEvent::PeerClosed)) => Step::IdleClosed,
                    Ok(Some(http::ClientEvent::Upgrade { .. })) => Step::Broken(
                        ClientCloseReason::TransportError("unexpected protocol switch".into()),
                    ),
                    Err(HttpError::UnexpectedEof) => {
                        Step::Broken(ClientCloseReason::TransportClose)
                    }
                    Err(err) => Step::Broken(ClientCloseReason::TransportError(format!(
                        "HTTP error: {err}"
                    ))),
                },
                LinkState::WsHandshake { http, handshake } => match http.poll_response() {
                    Ok(None) => return,
                    Ok(Some(http::ClientEvent::Upgrade { response, leftover })) => {
                        match handshake
                            .validate_response_extensions(response.status, response.headers.iter())
                        {
                            Ok(deflate) => {
                                let ws = WebSocket::client(ws_config, self.rng.clone());
                                #[cfg(feature = "deflate")]
                                let ws = match deflate {
                                    Some(params) => ws.with_deflate(params, &deflate_config),
                                    None => ws,
                                };
                                #[cfg(not(feature = "deflate"))]
                                let _ = deflate;
                                let mut ws = ws;
                                ws.receive(&leftover);
                                link.state = LinkState::Ws(ws);
                                Step::WsOpened
                            }
                            Err(err) => Step::WsFailed(ClientCloseReason::TransportError(format!(
                                "WebSocket handshake: {err}"
                            ))),
                        }
                    }
                    Ok(Some(http::ClientEvent::Response(response))) => {
                        Step::WsFailed(ClientCloseReason::TransportError(format!(
                            "WebSocket upgrade refused with status {}",
                            response.status
                        )))
                    }
                    Ok(Some(http::ClientEvent::PeerClosed)) | Err(HttpError::UnexpectedEof) => {
                        Step::WsFailed(ClientCloseReason::TransportError(
                            "connection closed before the WebSocket upgrade".into(),
                        ))
                    }
                    Err(err) => Step::WsFailed(ClientCloseReason::TransportError(format!(
                        "HTTP error: {err}"
                    ))),
                },
                LinkState::Ws(ws) => match ws.poll_message() {
                    None => {
                        // Automatic pong replies to WebSocket pings.
                        if let Some(bytes) = ws.poll_transmit() {
                            self.actions.push_back(ClientAction::Data(conn, bytes));
                        }
                        if ws.is_closed() {
                            Step::Broken(ClientCloseReason::TransportClose)
                        } else {
                            return;
                        }
                    }
                    Some(Ok(WsMessage::Text(text))) => match Packet::decode_text(&text) {
                        Ok(packet) => Step::WsPacket(packet),
                        Err(err) => Step::Broken(ClientCloseReason::TransportError(format!(
                            "parse error: {err}"
                        ))),
                    },
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        Step::WsPacket(Packet::decode_binary(bytes))
                    }
                    Some(Ok(WsMessage::Close(_))) | Some(Err(WsError::UnexpectedEof)) => {
                        Step::Broken(ClientCloseReason::TransportClose)
                    }
                    Some(Err(err)) => Step::Broken(ClientCloseReason::TransportError(format!(
                        "WebSocket error: {err}"
                    ))),
                },
            };
            match step {
                Step::Response { response, closed } => {
                    if closed {
                        self.drop_link(conn);
                    }
                    self.on_response(now, role, *response);
                }
                Step::IdleClosed => {
                    self.drop_link(conn);
                    return;
                }
                Step::WsOpened => {
                    if role == Role::Probe {
                        self.step(now, Input::ProbeOpened);
                    }
                }
                Step::WsFailed(reason) | Step::Broken(reason) => {
                    self.drop_link(conn);
                    self.link_failed(now, role, reason);
                    return;
                }
                Step::WsPacket(packet) => {
                    let input = match role {
                        Role::Probe => Input::ProbePacket(packet),
                        _ => Input::Packet(packet),
                    };
                    self.step(now, input);
                }
            }
        }
    }
}
