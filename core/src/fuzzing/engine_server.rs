//! A fuzzing entry point for the server: arbitrary bytes become a sequence
//! of driver and application operations. Not part of the API.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::RngCore;

use crate::engine::{ConnId, Message, Server, ServerConfig, ServerEvent, Transmit};
use crate::http::{Method, Request};
use crate::ws::{ClientHandshake, WebSocket, WsConfig};
use crate::Str;

/// A small deterministic generator (xorshift64*): the fuzzer needs
/// reproducible session ids, not unpredictable ones.
struct XorShift(u64);

impl RngCore for XorShift {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Reads the fuzz input.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(*first)
    }
    fn slice(&mut self) -> &'a [u8] {
        let len = usize::from(self.byte().unwrap_or(0)).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }
}

fn pick<T: Clone>(items: &[T], index: u8) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items[usize::from(index) % items.len()].clone())
    }
}

/// Interprets `data` as operations on a [`Server`] (new connection, bytes
/// to a connection, a well-formed request, a WebSocket frame, end of input,
/// time passing, application sends and closes) and checks after each one
/// that the bookkeeping is consistent, that every session is reported
/// opened once and closed once, and that memory stays bounded.
#[doc(hidden)]
pub fn fuzz_server(data: &[u8]) {
    fuzz_server_counting(data);
}

/// [`fuzz_server`], returning how many sessions were opened.
fn fuzz_server_counting(data: &[u8]) -> usize {
    let config = ServerConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        upgrade_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(2000),
        max_payload: 4096,
        compression_threshold: 64,
        cookie: Some(Default::default()),
        websocket_compression: true,
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, Box::new(XorShift(0x9E37_79B9_7F4A_7C15)));
    let start = Instant::now();
    let mut now = start;
    let mut input = Input { data };
    let mut conns: Vec<ConnId> = Vec::new();
    let mut sids: Vec<Str> = Vec::new();
    let mut open: HashSet<Str> = HashSet::new();
    let mut closed: HashSet<Str> = HashSet::new();
    let mut closed_conns: HashSet<ConnId> = HashSet::new();
    let mut app_bytes = 0usize;
    let mut mask = WebSocket::client(WsConfig::default(), || [0x11, 0x22, 0x33, 0x44]);

    while let Some(op) = input.byte() {
        match op % 10 {
            0 => conns.push(server.handle_connection(now, None)),
            1 => {
                let k = input.byte().unwrap_or(0);
                let bytes = input.slice();
                if let Some(conn) = pick(&conns, k) {
                    server.handle_read(now, conn, bytes);
                }
            }
            2 | 3 => {
                let k = input.byte().unwrap_or(0);
                let which = input.byte().unwrap_or(0);
                let j = input.byte().unwrap_or(0);
                let body = input.slice();
                let sid = pick(&sids, j).unwrap_or_else(|| Str::from_static("x"));
                let request = match which % 6 {
                    0 => "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n".to_owned(),
                    1 => format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: h\r\nAccept-Encoding: deflate\r\n\r\n"),
                    2 => {
                        let mut r = format!("POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                        r.extend_from_slice(body);
                        if let Some(conn) = pick(&conns, k) {
                            server.handle_read(now, conn, &r);
                        }
                        String::new()
                    }
                    3 => {
                        let key = ClientHandshake::new([which; 16]);
                        format!("GET /socket.io/?EIO=4&transport=websocket&sid={sid} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n", key.key())
                    }
                    4 => {
                        let key = ClientHandshake::new([which; 16]);
                        // Half the time with a permessage-deflate offer, so
                        // that raw bytes can reach the inflater.
                        let offer = match which & 0x40 {
                            0 => "",
                            _ => "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
                        };
                        format!("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n", key.key())
                    }
                    _ => "OPTIONS /socket.io/?EIO=4 HTTP/1.1\r\nHost: h\r\nOrigin: http://h\r\n\r\n".to_owned(),
                };
                if let Some(conn) = pick(&conns, k) {
                    server.handle_read(now, conn, request.as_bytes());
                }
            }
            4 => {
                let k = input.byte().unwrap_or(0);
                let which = input.byte().unwrap_or(0);
                let body = input.slice();
                let _ = match which % 7 {
                    0 => mask.send_text("2probe"),
                    1 => mask.send_text("5"),
                    2 => mask.send_text("3"),
                    3 => mask.send_text("1"),
                    4 => mask.send_binary(body),
                    5 => mask.close(crate::ws::CloseCode::NORMAL, "").map(|_| {
                        mask = WebSocket::client(WsConfig::default(), || [0x11, 0x22, 0x33, 0x44]);
                    }),
                    _ => mask.send_text(&String::from_utf8_lossy(body)),
                };
                if let (Some(frame), Some(conn)) = (mask.poll_transmit(), pick(&conns, k)) {
                    server.handle_read(now, conn, &frame);
                }
            }
            5 => {
                if let Some(conn) = pick(&conns, input.byte().unwrap_or(0)) {
                    server.handle_eof(now, conn);
                    closed_conns.insert(conn);
                }
            }
            6 => {
                let ms = u64::from(input.byte().unwrap_or(0)) * 10;
                let target = now + Duration::from_millis(ms);
                // Fire every deadline on time, as a driver would.
                while let Some(at) = server.poll_timeout() {
                    if at > target {
                        break;
                    }
                    now = now.max(at);
                    server.handle_timeout(now);
                    drain(
                        &mut server,
                        &mut open,
                        &mut closed,
                        &mut sids,
                        &mut closed_conns,
                    );
                }
                now = target;
                server.handle_timeout(now);
            }
            7 => {
                let j = input.byte().unwrap_or(0);
                let body = input.slice();
                if let Some(sid) = pick(&sids, j) {
                    let message = if j % 2 == 0 {
                        Message::Binary(Bytes::copy_from_slice(body))
                    } else {
                        Message::Text(Str::from(String::from_utf8_lossy(body).into_owned()))
                    };
                    let ok = server.send(now, &sid, message).is_ok();
                    assert_eq!(
                        ok,
                        open.contains(&sid),
                        "send accepted iff the session is open"
                    );
                    if ok {
                        app_bytes += body.len() * 3 + 8;
                    }
                }
            }
            8 => {
                if let Some(sid) = pick(&sids, input.byte().unwrap_or(0)) {
                    let ok = server.close(now, &sid).is_ok();
                    assert_eq!(ok, open.contains(&sid));
                }
            }
            _ => {
                let which = input.byte().unwrap_or(0);
                let body = input.slice();
                if which == 0xFF {
                    server.shutdown(now);
                } else {
                    // A request from another HTTP stack.
                    let sid = pick(&sids, which).unwrap_or_else(|| Str::from_static("x"));
                    let target = if which % 3 == 0 {
                        "/socket.io/?EIO=4&transport=polling".to_owned()
                    } else {
                        format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
                    };
                    let method = if which % 3 == 2 {
                        Method::Post
                    } else {
                        Method::Get
                    };
                    let request =
                        Request::new(method, target).with_body(Bytes::copy_from_slice(body));
                    conns.push(server.handle_request(now, request, None));
                }
            }
        }
        drain(
            &mut server,
            &mut open,
            &mut closed,
            &mut sids,
            &mut closed_conns,
        );
        server.check_invariants();
        assert_eq!(server.session_count(), open.len());
        // What waits in the core is bounded by what the application sent
        // plus protocol overhead per session.
        let buffered: usize = open.iter().filter_map(|sid| server.buffered(sid)).sum();
        assert!(
            buffered <= app_bytes + open.len() * 1024,
            "buffered {buffered}"
        );
    }
    sids.len()
}

fn drain(
    server: &mut Server,
    open: &mut HashSet<Str>,
    closed: &mut HashSet<Str>,
    sids: &mut Vec<Str>,
    closed_conns: &mut HashSet<ConnId>,
) {
    while let Some(event) = server.poll_event() {
        match event {
            ServerEvent::Opened { sid, .. } => {
                assert!(
                    !closed.contains(&sid) && open.insert(sid.clone()),
                    "opened twice"
                );
                sids.push(sid);
            }
            ServerEvent::Message { sid, .. } | ServerEvent::Upgraded { sid } => {
                assert!(open.contains(&sid), "event for a session not open");
            }
            ServerEvent::Closed { sid, .. } => {
                assert!(open.remove(&sid), "closed without being open");
                assert!(closed.insert(sid), "closed twice");
            }
        }
    }
    while let Some(conn) = server.poll_ready() {
        if server.poll_response(conn).is_some() {
            closed_conns.insert(conn);
        }
        while let Some(transmit) = server.poll_transmit(conn) {
            assert!(!closed_conns.contains(&conn), "output after close");
            if transmit == Transmit::Close {
                closed_conns.insert(conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_smoke() {
        fuzz_server(&[]);
        // A handshake, a poll, a send, time passing, an upgrade with probe.
        fuzz_server(&[
            0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 7, 1, 3, b'a', b'b', b'c', 6, 40,
        ]);
        fuzz_server(&[
            0, 0, 2, 0, 0, 0, 0, 2, 1, 3, 0, 0, 4, 1, 0, 0, 4, 1, 1, 0, 6, 100, 6, 100,
        ]);
        // Pseudo-random inputs.
        let mut rng = XorShift(1);
        for len in 0..100 {
            let mut data = vec![0u8; len * 7 % 1000];
            rng.fill_bytes(&mut data);
            fuzz_server(&data);
        }
        // Structured random operations, so that sessions open, upgrade,
        // exchange and close.
        let mut opened = 0;
        for round in 0..300 {
            let mut data = Vec::new();
            for _ in 0..(round % 60 + 5) {
                let op = (rng.next_u32() % 10) as u8;
                let small = |rng: &mut XorShift| (rng.next_u32() % 4) as u8;
                data.push(op);
                match op {
                    1 => {
                        data.push(small(&mut rng));
                        data.push(3);
                        data.extend_from_slice(&rng.next_u32().to_le_bytes()[..3]);
                    }
                    2 | 3 => {
                        data.push(small(&mut rng));
                        let which = (rng.next_u32() % 6) as u8;
                        // 64 is request 4 with a permessage-deflate offer.
                        let which = if which == 4 && rng.next_u32() % 2 == 0 {
                            64
                        } else {
                            which
                        };
                        data.push(which);
                        data.push(small(&mut rng));
                        let body: &[u8] = match rng.next_u32() % 4 {
                            0 => b"3",
                            1 => b"4hi\x1ebAQID",
                            2 => b"1",
                            _ => b"x",
                        };
                        data.push(body.len() as u8);
                        data.extend_from_slice(body);
                    }
                    4 => {
                        data.push(small(&mut rng));
                        data.push((rng.next_u32() % 7) as u8);
                        data.push(2);
                        data.extend_from_slice(b"4a");
                    }
                    6 => data.push((rng.next_u32() % 30) as u8),
                    7 => {
                        data.push(small(&mut rng));
                        data.push(2);
                        data.extend_from_slice(b"ab");
                    }
                    _ => data.push(small(&mut rng)),
                }
            }
            opened += fuzz_server_counting(&data);
        }
        assert!(
            opened > 100,
            "the structured inputs open sessions: {opened}"
        );
    }
}
