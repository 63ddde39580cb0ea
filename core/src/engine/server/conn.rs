//! Connections: what each accepted connection is (HTTP, a request from
//! another HTTP stack, a WebSocket, or closed), its output queue, and what
//! its end means for the session it served.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tracing::{debug, warn};

use super::timers::{ConnTimer, TimerKey};
use super::{CloseReason, ConnId, Input, Server, Sid, Transmit};
use crate::engine::compress::ContentCoding;
use crate::http::{Headers, Request, Response, ServerConn};
use crate::memory::shrink_if_empty;
use crate::ws::WebSocket;

/// A long-polling GET waiting for packets, and what its answer carries.
pub(super) struct Held {
    pub(super) sid: Sid,
    /// CORS headers (and the cookie on the handshake).
    pub(super) headers: Headers,
    pub(super) coding: Option<ContentCoding>,
}

pub(super) enum ConnKind {
    Http {
        codec: Box<ServerConn>,
    },
    /// One request parsed by another HTTP stack ([`Server::handle_request`]):
    /// its response waits here for [`Server::poll_response`].
    External {
        response: Option<Box<Response>>,
    },
    Ws {
        ws: Box<WebSocket>,
        role: WsRole,
    },
    /// Closed on our side: input is ignored, output drains, then `Close`.
    Done,
}

/// What a WebSocket connection is for.
#[derive(Clone)]
pub(super) enum WsRole {
    /// The session's transport.
    Session(Sid),
    /// An upgrade of a polling session in progress.
    Probe(Sid),
    /// Closing: waits for the peer's close frame. A connection leaves its
    /// session (this role, or `Done`) before `Transmit::Close` can be
    /// pulled, so pulling output needs no `now`.
    Closing,
}

pub(super) struct Conn {
    pub(super) kind: ConnKind,
    /// A long-polling GET held on this connection.
    pub(super) held: Option<Box<Held>>,
    pub(super) remote: Option<SocketAddr>,
    pub(super) out: VecDeque<Bytes>,
    pub(super) out_len: usize,
    /// `Transmit::Close` follows the queued output.
    pub(super) close_after: bool,
    pub(super) in_ready: bool,
    /// Bytes received while a response was pending (pipelined requests),
    /// bounded so that a driver ignoring [`Server::wants_read`] cannot make
    /// the connection buffer without limit.
    pub(super) pipelined: usize,
    /// The connection is in the drained list (each is listed once).
    pub(super) drain_listed: bool,
}

impl Conn {
    fn new(kind: ConnKind, remote: Option<SocketAddr>) -> Conn {
        Conn {
            kind,
            held: None,
            remote,
            out: VecDeque::new(),
            out_len: 0,
            close_after: false,
            in_ready: false,
            pipelined: 0,
            drain_listed: false,
        }
    }

    /// Bytes of output waiting in the core for this connection: queued for
    /// the driver, and framed by its WebSocket but not yet moved over.
    pub(super) fn buffered(&self) -> usize {
        match &self.kind {
            ConnKind::Ws { ws, .. } => self.out_len + ws.pending_transmit_len(),
            _ => self.out_len,
        }
    }

    pub(super) fn push_out(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.out_len += bytes.len();
            self.out.push_back(bytes);
        }
    }

    pub(super) fn has_output(&self) -> bool {
        !self.out.is_empty()
            || self.close_after
            || matches!(self.kind, ConnKind::External { response: Some(_) })
    }

    /// Moves what the WebSocket produced to the output queue. Returns
    /// whether the WebSocket is closed (`Transmit::Close` then follows).
    pub(super) fn pull_ws(&mut self) -> bool {
        let ConnKind::Ws { ws, .. } = &mut self.kind else {
            return false;
        };
        while let Some(bytes) = ws.poll_transmit() {
            if !bytes.is_empty() {
                self.out_len += bytes.len();
                self.out.push_back(bytes);
            }
        }
        if ws.is_closed() {
            self.close_after = true;
        }
        self.close_after
    }
}

impl Server {
    /// A new connection was accepted.
    pub fn handle_connection(&mut self, now: Instant, remote: Option<SocketAddr>) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let codec = Box::new(ServerConn::new(self.limits.clone()));
        self.conns
            .insert(id, Conn::new(ConnKind::Http { codec }, remote));
        self.timers.set(
            TimerKey::Conn(id, ConnTimer::Idle),
            now + self.config.idle_timeout,
        );
        self.finish(now);
        id
    }

    /// Bytes read from a connection. Deadlines already due at `now` are
    /// handled first, whether or not the driver's timer has fired yet: a
    /// request must not revive a session that is already dead.
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if self.poll_timeout().is_some_and(|at| at <= now) {
            self.handle_timeout(now);
        }
        let too_much = self.limits.max_head_size + self.limits.max_body_size;
        match self
            .conns
            .get_mut(&conn)
            .map(|c| (&mut c.kind, &mut c.pipelined))
        {
            Some((ConnKind::Http { codec }, pipelined)) => {
                if codec.awaiting_response() {
                    *pipelined += data.len();
                    if *pipelined > too_much {
                        debug!(
                            conn = conn.0,
                            "too many bytes pipelined behind a pending request"
                        );
                        self.close_conn(now, conn);
                        self.finish(now);
                        return;
                    }
                }
                codec.feed(data);
                self.process_http(now, conn);
            }
            Some((ConnKind::Ws { ws, .. }, _)) => {
                ws.receive(data);
                self.process_ws(now, conn);
            }
            _ => {}
        }
        self.check_overflow(now, conn);
        self.finish(now);
    }

    /// Closes `id` and its session as a slow consumer when its unsent
    /// output is over the hard bound (what it queued is dropped). Only a
    /// driver that reads while [`Server::wants_read`] is false gets here
    /// from input: pongs and responses owed to a peer that does not read
    /// stay within the soft bound plus one read otherwise.
    fn check_overflow(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let buffered = conn.buffered();
        if buffered <= self.config.max_buffered_output_hard {
            return;
        }
        let sid = match &conn.kind {
            ConnKind::Ws {
                role: WsRole::Session(sid),
                ..
            } => Some(sid.clone()),
            _ => None,
        };
        warn!(
            conn = id.0,
            sid = sid.as_deref().unwrap_or(""),
            buffered,
            limit = self.config.max_buffered_output_hard,
            "output over max_buffered_output_hard: closing as slow consumer"
        );
        conn.out = VecDeque::new();
        conn.out_len = 0;
        if let Some(sid) = sid {
            let _ = self.step(now, &sid, Input::Fail(CloseReason::SlowConsumer));
        }
        // The close frame, if the WebSocket queued one, goes first.
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.pull_ws();
        }
        self.close_conn(now, id);
    }

    /// Whether reading more from `conn` is useful now: false while a
    /// response is pending and a request's worth of pipelined bytes is
    /// already buffered, once the connection is closing, and while its
    /// unsent output is over [`ServerConfig::max_buffered_output`] (or
    /// [`ServerConfig::max_buffered_frames`]). A
    /// driver that respects it never hits the pipelining bound or
    /// [`ServerConfig::max_buffered_output_hard`] (which close the
    /// connection), and a peer that does not read cannot make the server
    /// buffer more than the soft bound plus what one read produces on that
    /// connection. A connection paused this way may be read again once its
    /// own output drains. (A long-polling session's queue does not pause
    /// the connections its POSTs arrive on: the GET that drains it may
    /// come on one of them; the Socket.IO layer's slow-consumer rule
    /// bounds it.) O(1).
    ///
    /// [`ServerConfig::max_buffered_output`]: crate::engine::ServerConfig::max_buffered_output
    /// [`ServerConfig::max_buffered_frames`]: crate::engine::ServerConfig::max_buffered_frames
    /// [`ServerConfig::max_buffered_output_hard`]: crate::engine::ServerConfig::max_buffered_output_hard
    pub fn wants_read(&self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        if c.buffered() > self.config.max_buffered_output
            || c.out.len() > self.config.max_buffered_frames
        {
            return false;
        }
        match &c.kind {
            ConnKind::Http { codec } => codec.wants_read(),
            ConnKind::Ws { ws, .. } => !ws.is_closed(),
            _ => false,
        }
    }

    /// The session whose transport a connection is (WebSocket only: HTTP
    /// connections may carry requests of any session).
    pub fn session_of(&self, conn: ConnId) -> Option<&Sid> {
        let c = self.conns.get(&conn)?;
        match &c.kind {
            ConnKind::Ws {
                role: WsRole::Session(sid),
                ..
            } => Some(sid),
            _ => None,
        }
    }

    /// Bytes of output waiting in the core for a connection (queued for
    /// the driver, or framed and not yet queued), as
    /// [`ServerConfig::max_buffered_output`] counts them.
    ///
    /// [`ServerConfig::max_buffered_output`]: crate::engine::ServerConfig::max_buffered_output
    pub fn conn_buffered(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(&conn).map(Conn::buffered)
    }

    /// A request already parsed by another HTTP stack (hyper, axum, ...),
    /// handled as if it had arrived alone on its own connection. The
    /// returned id names the exchange: once its response is ready (at once,
    /// or later for a long-polling GET that waits for packets) the id shows
    /// up in [`Server::poll_ready`] and [`Server::poll_response`] hands the
    /// response over. If the client goes away first, report it with
    /// [`Server::handle_eof`] (an aborted GET ends its session, as on a
    /// connection of our own). [`Server::poll_transmit`] yields nothing for
    /// such an id. WebSocket upgrades need the connection's bytes and cannot
    /// enter here: they are answered 400 (code 3).
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: Request,
        remote: Option<SocketAddr>,
    ) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        let kind = ConnKind::External { response: None };
        self.conns.insert(id, Conn::new(kind, remote));
        self.on_request(now, id, request);
        self.finish(now);
        id
    }

    /// The response to a request given to [`Server::handle_request`], once
    /// it is ready; the id is then forgotten.
    pub fn poll_response(&mut self, id: ConnId) -> Option<Response> {
        let conn = self.conns.get_mut(&id)?;
        let ConnKind::External { response } = &mut conn.kind else {
            return None;
        };
        let response = response.take()?;
        self.conns.remove(&id);
        Some(*response)
    }

    /// The peer closed the connection or it failed; the driver drops it.
    /// Complete requests and messages received before are still handled.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        match self.conns.get_mut(&conn).map(|c| &mut c.kind) {
            Some(ConnKind::Http { codec, .. }) => {
                codec.feed_eof();
                self.process_http(now, conn);
            }
            Some(ConnKind::Ws { ws, .. }) => {
                ws.receive_eof();
                self.process_ws(now, conn);
            }
            _ => {}
        }
        self.drop_conn(now, conn);
        self.finish(now);
    }

    /// A connection that has something to transmit. Each connection is
    /// reported once per batch of output: a driver that stops pulling
    /// [`Server::poll_transmit`] before `None` must remember the connection.
    pub fn poll_ready(&mut self) -> Option<ConnId> {
        self.frame_cache.clear();
        while let Some(id) = self.ready.pop_front() {
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.in_ready = false;
                if conn.has_output() {
                    return Some(id);
                }
            }
        }
        None
    }

    /// The next thing to do on `conn`. After [`Transmit::Close`] the
    /// connection is forgotten.
    pub fn poll_transmit(&mut self, conn: ConnId) -> Option<Transmit> {
        self.frame_cache.clear();
        let c = self.conns.get_mut(&conn)?;
        if let Some(bytes) = c.out.pop_front() {
            c.out_len -= bytes.len();
            shrink_if_empty(&mut c.out);
            if !c.drain_listed {
                if let ConnKind::Ws {
                    role: WsRole::Session(sid),
                    ..
                } = &c.kind
                {
                    c.drain_listed = true;
                    let sid = sid.clone();
                    self.list_drained(super::DrainMark {
                        conn: Some(conn),
                        sid,
                    });
                }
            }
            return Some(Transmit::Data(bytes));
        }
        if c.close_after {
            // The connection left its session when its close was decided
            // (`close_conn`, or the WebSocket's close handled in
            // `process_ws`): forgetting it now has no consequence that
            // would need the time.
            debug_assert!(
                c.held.is_none()
                    && !matches!(
                        c.kind,
                        ConnKind::Ws {
                            role: WsRole::Session(_) | WsRole::Probe(_),
                            ..
                        }
                    ),
                "a connection closing with its session attached"
            );
            self.conns.remove(&conn);
            self.stop_conn_timers(conn);
            return Some(Transmit::Close);
        }
        None
    }

    /// The number of connections not yet closed or dropped.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// What a connection's queues have allocated, in use or not: entries of
    /// its output queue and bytes of its WebSocket or HTTP buffers (to
    /// check that a burst's memory is given back).
    #[cfg(test)]
    pub(crate) fn conn_capacity(&self, conn: ConnId) -> Option<(usize, usize)> {
        let c = self.conns.get(&conn)?;
        let bytes = match &c.kind {
            ConnKind::Ws { ws, .. } => ws.buffer_capacity(),
            ConnKind::Http { codec } => codec.buffer_capacity(),
            _ => 0,
        };
        Some((c.out.capacity(), bytes))
    }

    /// The peer address the driver gave for a connection.
    pub fn remote(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns.get(&conn).and_then(|c| c.remote)
    }

    pub(super) fn mark_ready(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id) {
            if !conn.in_ready && conn.has_output() {
                conn.in_ready = true;
                self.ready.push_back(id);
            }
        }
    }

    /// Closes a connection from our side once its output is written.
    pub(super) fn close_conn(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let kind = std::mem::replace(&mut conn.kind, ConnKind::Done);
        let held = conn.held.take();
        conn.close_after = true;
        self.stop_conn_timers(id);
        self.mark_ready(id);
        self.detach(now, id, kind, held);
    }

    /// Forgets a connection (closed by the peer, or fully transmitted).
    pub(super) fn drop_conn(&mut self, now: Instant, id: ConnId) {
        if let Some(conn) = self.conns.remove(&id) {
            self.stop_conn_timers(id);
            self.detach(now, id, conn.kind, conn.held);
        }
    }

    /// What the loss of a connection means for its session.
    fn detach(&mut self, now: Instant, id: ConnId, kind: ConnKind, held: Option<Box<Held>>) {
        if let Some(held) = held {
            let _ = self.step(now, &held.sid, Input::GetLost(id));
        }
        match kind {
            ConnKind::Ws {
                role: WsRole::Session(sid),
                ..
            } => {
                let reason = CloseReason::TransportClose;
                let _ = self.step(now, &sid, Input::TransportLost { conn: id, reason });
            }
            ConnKind::Ws {
                role: WsRole::Probe(sid),
                ..
            } => {
                let _ = self.step(now, &sid, Input::ProbeLost(id));
            }
            _ => {}
        }
    }

    /// Makes `id`'s WebSocket serve `new_role`.
    pub(super) fn set_role(&mut self, id: ConnId, new_role: WsRole) {
        if let Some(Conn {
            kind: ConnKind::Ws { role, .. },
            ..
        }) = self.conns.get_mut(&id)
        {
            *role = new_role;
        }
    }
}
