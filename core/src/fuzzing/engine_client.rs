//! Fuzzing entry for the client endpoint: arbitrary server bytes on its
//! connections, interleaved with time steps and application calls. Not part
//! of the API.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::FuzzRng;
use crate::engine::{
    Client, ClientAction, ClientConfig, ClientEvent, ClientTransports, ConnId, Message,
};
use crate::ws::{accept_key, encode_frame, OpCode};
use crate::Str;

const MAX_QUEUED: usize = 32;
const MAX_PAYLOAD: usize = 4096;

/// What the fuzzer has seen the client do.
struct Driver {
    client: Client,
    now: Instant,
    /// Connections in the order they were asked for.
    conns: Vec<ConnId>,
    closed: HashSet<ConnId>,
    /// The last `Sec-WebSocket-Key` the client wrote on each connection.
    keys: Vec<(ConnId, String)>,
    session_closed: bool,
    opened: bool,
    upgraded: bool,
    messages: usize,
}

impl Driver {
    fn drain(&mut self) {
        while let Some(event) = self.client.poll_event() {
            assert!(!self.session_closed, "an event after Closed: {event:?}");
            match event {
                ClientEvent::Closed(_) => self.session_closed = true,
                ClientEvent::Opened(_) => self.opened = true,
                ClientEvent::Upgraded => self.upgraded = true,
                ClientEvent::Message(_) => self.messages += 1,
            }
        }
        while let Some(action) = self.client.poll_action() {
            match action {
                ClientAction::Connect(conn) => {
                    assert!(!self.conns.contains(&conn), "connection id reused");
                    self.conns.push(conn);
                }
                ClientAction::Data(conn, bytes) => {
                    assert!(self.conns.contains(&conn), "data on an unknown connection");
                    assert!(!self.closed.contains(&conn), "data after close");
                    if let Some(key) = find_key(&bytes) {
                        self.keys.push((conn, key));
                    }
                }
                ClientAction::Close(conn) => {
                    assert!(self.conns.contains(&conn), "close of an unknown connection");
                    self.closed.insert(conn);
                }
            }
        }
        assert!(self.client.queued_messages() <= MAX_QUEUED);
        if self.session_closed {
            assert!(self.client.transport().is_none());
        }
    }

    fn pick(&self, selector: u8) -> Option<ConnId> {
        if self.conns.is_empty() {
            return None;
        }
        // Prefer recent connections: most selectors land on the newest.
        let back = usize::from(selector % 4).min(self.conns.len() - 1);
        Some(self.conns[self.conns.len() - 1 - back])
    }
}

/// The `Sec-WebSocket-Key` in an upgrade request the client wrote.
fn find_key(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.find("Sec-WebSocket-Key: ")? + "Sec-WebSocket-Key: ".len();
    let end = start + text[start..].find("\r\n")?;
    Some(text[start..end].to_owned())
}

fn http_200(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

const OPEN: &[u8] = br#"0{"sid":"fuzz","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":100}"#;

/// Takes up to `len` bytes from the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], len: usize) -> &'a [u8] {
    let len = len.min(rest.len());
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    head
}

fn next(rest: &mut &[u8]) -> u8 {
    take(rest, 1).first().copied().unwrap_or(0)
}

/// Drives a [`Client`] with a script decoded from `data`: the first byte
/// picks the transports, then each operation byte's low nibble picks an
/// operation (connect, raw bytes, EOF, time step, send, close, canned
/// handshake response, canned 101, canned WebSocket frame, canned polling
/// body) and its high nibble the connection. Panics only when an invariant
/// breaks: an event after `Closed`, bytes after a close, a timer that fires
/// without moving, a queue over its bound.
pub fn fuzz_client(data: &[u8]) {
    run(data);
}

fn run(data: &[u8]) -> Driver {
    let mut rest = data;
    let transports = match next(&mut rest) % 3 {
        0 => ClientTransports::Polling,
        1 => ClientTransports::WebSocket,
        _ => ClientTransports::Upgrade,
    };
    let config = ClientConfig {
        transports,
        max_payload: MAX_PAYLOAD,
        max_queued_messages: MAX_QUEUED,
        connect_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    let start = Instant::now();
    let mut driver = Driver {
        client: Client::new(config, Box::new(FuzzRng::new(0)), start),
        now: start,
        conns: Vec::new(),
        closed: HashSet::new(),
        keys: Vec::new(),
        session_closed: false,
        opened: false,
        upgraded: false,
        messages: 0,
    };
    driver.drain();
    while !rest.is_empty() {
        let op = next(&mut rest);
        let conn = driver.pick(op >> 4);
        let now = driver.now;
        match (op & 0x0f, conn) {
            (0, Some(conn)) => driver.client.handle_connected(now, conn),
            (1, Some(conn)) => {
                let len = usize::from(next(&mut rest));
                let bytes = take(&mut rest, len);
                driver.client.handle_read(now, conn, bytes);
            }
            (2, Some(conn)) => driver.client.handle_eof(now, conn),
            (3, _) => {
                driver.now += Duration::from_millis(u64::from(next(&mut rest)) * 25);
                if let Some(deadline) = driver.client.poll_timeout() {
                    if deadline <= driver.now {
                        driver.client.handle_timeout(driver.now);
                        driver.drain();
                        if let Some(again) = driver.client.poll_timeout() {
                            assert!(again > driver.now, "a timer fired without moving");
                        }
                    }
                }
            }
            (4, _) => {
                let len = usize::from(next(&mut rest));
                let text = String::from_utf8_lossy(take(&mut rest, len)).into_owned();
                let _ = driver.client.send(now, Message::Text(Str::from(text)));
            }
            (5, _) => {
                let len = usize::from(next(&mut rest)) * 8;
                let bytes = take(&mut rest, len).to_vec();
                let _ = driver.client.send(now, Message::Binary(bytes.into()));
            }
            (6, _) => driver.client.close(now),
            (7, Some(conn)) => driver.client.handle_read(now, conn, &http_200(OPEN)),
            (8, Some(conn)) => {
                let key = driver
                    .keys
                    .iter()
                    .rev()
                    .find(|(c, _)| *c == conn)
                    .map(|(_, key)| key.clone());
                if let Some(key) = key {
                    let response = format!(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                        accept_key(key.as_bytes())
                    );
                    driver.client.handle_read(now, conn, response.as_bytes());
                }
            }
            (9, Some(conn)) => {
                let kind = next(&mut rest);
                let len = usize::from(next(&mut rest));
                let payload = take(&mut rest, len);
                let mut frame = BytesMut::new();
                let opcode = if kind & 1 == 0 {
                    OpCode::Text
                } else {
                    OpCode::Binary
                };
                match kind >> 1 {
                    0 => encode_frame(&mut frame, true, OpCode::Text, OPEN, None),
                    1 => encode_frame(&mut frame, true, OpCode::Text, b"3probe", None),
                    2 => encode_frame(&mut frame, true, OpCode::Text, b"2", None),
                    _ => encode_frame(&mut frame, true, opcode, payload, None),
                }
                driver.client.handle_read(now, conn, &frame);
            }
            (10, Some(conn)) => {
                let len = usize::from(next(&mut rest));
                let body = take(&mut rest, len);
                driver.client.handle_read(now, conn, &http_200(body));
            }
            (_, Some(conn)) => {
                let len = usize::from(op);
                let bytes = take(&mut rest, len);
                driver.client.handle_read(now, conn, bytes);
            }
            (_, None) => {}
        }
        driver.drain();
    }
    driver
}

#[cfg(test)]
mod tests {
    use rand_core::RngCore;

    use super::*;

    #[test]
    fn scripted_sessions_reach_their_goal() {
        // Polling handshake, probe, 3probe, the GET answered with a noop,
        // switch; then a ping, a send, a message, close, time.
        let upgrade = [
            2, 0x00, 0x07, 0x00, 0x08, 0x09, 2, 0, 0x1a, 1, b'6', 0x09, 4, 0, 0x04, 2, b'h', b'i',
            0x09, 6, 3, b'4', b'y', b'o', 0x06, 0x03, 200,
        ];
        let driver = run(&upgrade);
        assert!(driver.opened && driver.upgraded && driver.session_closed);
        assert_eq!(driver.messages, 1);
        // WebSocket only.
        let driver = run(&[1, 0x00, 0x08, 0x09, 0, 0, 0x04, 3, b'a', b'b', b'c', 0x06]);
        assert!(driver.opened && driver.session_closed && !driver.upgraded);
        // Polling only, then silence until the ping timeout.
        let driver = run(&[
            0, 0x00, 0x07, 0x04, 1, b'x', 0x00, 0x0a, 2, b'o', b'k', 0x03, 255,
        ]);
        assert!(driver.opened && driver.session_closed);
    }

    #[test]
    fn random_scripts_do_not_panic() {
        let mut rng = FuzzRng::new(99);
        for len in 0..2000 {
            let mut data = vec![0u8; len % 300];
            rng.fill_bytes(&mut data);
            fuzz_client(&data);
        }
    }

    #[test]
    fn mutated_scripts_do_not_panic() {
        let base: Vec<u8> = vec![
            2, 0x00, 0x07, 0x00, 0x08, 0x09, 2, 0, 0x1a, 1, b'6', 0x09, 4, 0, 0x04, 2, b'h', b'i',
            0x09, 6, 3, b'4', b'y', b'o', 0x06, 0x03, 200,
        ];
        let mut rng = FuzzRng::new(7);
        for _ in 0..3000 {
            let mut data = base.clone();
            for _ in 0..3 {
                let at = (rng.next_u32() as usize) % data.len();
                data[at] = rng.next_u32() as u8;
            }
            fuzz_client(&data);
        }
    }
}
