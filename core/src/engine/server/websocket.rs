//! The WebSocket transport: reading packets off a session's (or a probe's)
//! WebSocket, framing packets onto it, and closing it.

use std::time::Instant;

use bytes::BytesMut;
use tracing::debug;

use super::conn::{ConnKind, WsRole};
use super::timers::{ConnTimer, TimerKey, WS_CLOSE_TIMEOUT};
use super::{CloseReason, ConnId, Input, Server};
use crate::engine::packet::{Message, Packet};
use crate::ws::{CloseCode, WsError, WsMessage};

impl Server {
    /// Hands what a WebSocket connection received to the session machine.
    pub(super) fn process_ws(&mut self, now: Instant, id: ConnId) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            let ConnKind::Ws { ws, role } = &mut conn.kind else {
                break;
            };
            let Some(message) = ws.poll_message() else {
                break;
            };
            let role = role.clone();
            let packet = match message {
                Ok(WsMessage::Text(text)) => Packet::decode_text(&text).map_err(|err| {
                    debug!(conn = id.0, error = %err, "undecodable websocket packet");
                    CloseReason::ParseError
                }),
                Ok(WsMessage::Binary(bytes)) => Ok(Packet::decode_binary(bytes)),
                Ok(WsMessage::Close(_)) | Err(WsError::UnexpectedEof) => {
                    Err(CloseReason::TransportClose)
                }
                Err(err) => {
                    debug!(conn = id.0, error = %err, "websocket error");
                    Err(CloseReason::TransportError)
                }
            };
            let _ = match (role, packet) {
                (WsRole::Session(sid), Ok(packet)) => self.step(now, &sid, Input::Packet(packet)),
                (WsRole::Session(sid), Err(reason)) => {
                    self.step(now, &sid, Input::TransportLost { conn: id, reason })
                }
                (WsRole::Probe(sid), Ok(packet)) => {
                    self.step(now, &sid, Input::ProbePacket(id, packet))
                }
                (WsRole::Probe(sid), Err(_)) => self.step(now, &sid, Input::ProbeLost(id)),
                (WsRole::Closing, _) => Ok(()),
            };
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.pull_ws() {
            // The close handshake is over. Every way a WebSocket closes
            // came out of `poll_message` above as a close or an error, which
            // released its session: `Transmit::Close` has no consequence
            // left to decide.
            debug_assert!(matches!(
                conn.kind,
                ConnKind::Ws {
                    role: WsRole::Closing,
                    ..
                } | ConnKind::Done
            ));
            self.timers
                .stop(&TimerKey::Conn(id, ConnTimer::CloseHandshake));
        }
        self.mark_ready(id);
    }

    /// Frames one packet on a WebSocket connection.
    pub(super) fn ws_send(&mut self, id: ConnId, packet: &Packet, base64: bool) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        // Messages (all of a broadcast) are framed around their shared
        // buffers where the connection allows; the rest (heartbeats, the
        // open packet, binary as base64) through the WebSocket.
        let framed = match packet {
            Packet::Message(message @ Message::Text(_)) => {
                conn.push_ws_message(message, &mut self.frame_cache)
            }
            Packet::Message(message @ Message::Binary(_)) if !base64 => {
                conn.push_ws_message(message, &mut self.frame_cache)
            }
            _ => false,
        };
        if !framed {
            let ConnKind::Ws { ws, .. } = &mut conn.kind else {
                return;
            };
            let result = match packet {
                Packet::Message(Message::Binary(bytes)) if !base64 => ws.send_binary(bytes),
                _ => {
                    let mut text = BytesMut::new();
                    packet.encode_text(&mut text);
                    match std::str::from_utf8(&text) {
                        Ok(text) => ws.send_text(text),
                        Err(_) => unreachable!("packet text forms are UTF-8"),
                    }
                }
            };
            if let Err(err) = result {
                debug!(conn = id.0, error = %err, "websocket send refused");
            }
            // Sending cannot close a WebSocket (only what it reads can).
            conn.pull_ws();
        }
        // `mark_ready` with the connection in hand (one lookup less per
        // receiver of a broadcast).
        if !conn.in_ready && conn.has_output() {
            conn.in_ready = true;
            self.ready.push_back(id);
        }
    }

    /// Starts closing a WebSocket connection: it leaves its session and
    /// waits `WS_CLOSE_TIMEOUT` for the peer's close frame.
    pub(super) fn ws_shutdown(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let was_ws = if let ConnKind::Ws { ws, role } = &mut conn.kind {
            *role = WsRole::Closing;
            let _ = ws.close(CloseCode::NORMAL, "");
            true
        } else {
            false
        };
        let closed = conn.pull_ws();
        let key = TimerKey::Conn(id, ConnTimer::CloseHandshake);
        if was_ws && !closed {
            self.timers.set(key, now + WS_CLOSE_TIMEOUT);
        } else {
            self.timers.stop(&key);
        }
        self.mark_ready(id);
    }
}
