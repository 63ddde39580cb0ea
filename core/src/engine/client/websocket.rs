//! The WebSocket transport: its opening handshake (for the session's
//! WebSocket and for an upgrade's probe alike), writing packets, closing.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::links::LinkState;
use super::{Client, ClientAction, ClientCloseReason, State};
use crate::engine::config::Transport;
use crate::engine::packet::Message;
use crate::engine::server::ConnId;
use crate::http::{ClientConn, Method};
use crate::ws::{ClientHandshake, CloseCode, WsConfig};

impl Client {
    pub(super) fn ws_config(&self) -> WsConfig {
        // One packet per message, plus its type digit.
        let max = self.config.max_payload.saturating_add(1);
        WsConfig {
            max_frame_size: max,
            max_message_size: max,
        }
    }

    /// The permessage-deflate settings (engine.io-client's
    /// `perMessageDeflate`).
    #[cfg(feature = "deflate")]
    pub(super) fn deflate_config(&self) -> crate::ws::DeflateConfig {
        crate::ws::DeflateConfig {
            threshold: self.config.websocket_compression_threshold,
            ..crate::ws::DeflateConfig::default()
        }
    }

    /// Writes the upgrade request on a new connection.
    pub(super) fn start_ws_handshake(&mut self, now: Instant, conn: ConnId) {
        let Some(link) = self.links.get(&conn) else {
            return;
        };
        let role = link.role;
        let mut nonce = [0u8; 16];
        self.rng.fill(&mut nonce);
        let handshake = ClientHandshake::new(nonce);
        #[cfg(feature = "deflate")]
        let handshake = match self.config.websocket_compression {
            true => handshake.with_deflate(self.deflate_config()),
            false => handshake,
        };
        let mut request = self.request(Method::Get, Transport::WebSocket, Bytes::new());
        for (name, value) in handshake.request_headers() {
            request.headers.append(name, value.to_owned());
        }
        if let Some(offer) = handshake.extension_offer() {
            request.headers.append("Sec-WebSocket-Extensions", offer);
        }
        let mut http = ClientConn::new(self.limits());
        let mut out = BytesMut::new();
        match http.write_request(&request, &mut out) {
            Ok(()) => {
                self.actions
                    .push_back(ClientAction::Data(conn, out.freeze()));
                if let Some(link) = self.links.get_mut(&conn) {
                    link.state = LinkState::WsHandshake { http, handshake };
                }
            }
            Err(err) => {
                let reason =
                    ClientCloseReason::TransportError(format!("cannot write the request: {err}"));
                self.drop_link(conn);
                self.link_failed(now, role, reason);
            }
        }
    }

    /// Writes the pong owed and the queued messages on the session's
    /// WebSocket.
    pub(super) fn flush_ws(&mut self) {
        let State::WebSocket { conn, open } = &mut self.state else {
            return;
        };
        let conn = *conn;
        let Some(LinkState::Ws(ws)) = self.links.get_mut(&conn).map(|l| &mut l.state) else {
            return;
        };
        if !ws.is_open() {
            return;
        }
        if std::mem::take(&mut open.pong_due) {
            let _ = ws.send_text("3");
        }
        let mut text = String::new();
        while let Some(message) = self.queue.pop_front() {
            let _ = match message {
                Message::Text(body) => {
                    text.clear();
                    text.push('4');
                    text.push_str(&body);
                    ws.send_text(&text)
                }
                Message::Binary(bytes) => ws.send_binary(&bytes),
            };
        }
        if let Some(bytes) = ws.poll_transmit() {
            self.actions.push_back(ClientAction::Data(conn, bytes));
        }
    }

    /// What is queued, then a close packet and a close frame.
    pub(super) fn send_close_frames(&mut self) {
        self.flush_ws();
        let State::WebSocket { conn, .. } = self.state else {
            return;
        };
        if let Some(LinkState::Ws(ws)) = self.links.get_mut(&conn).map(|l| &mut l.state) {
            let _ = ws.send_text("1");
            let _ = ws.close(CloseCode::NORMAL, "");
        }
    }
}
