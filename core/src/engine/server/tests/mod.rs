//! Scenario tests of the Engine.IO server, driven with raw HTTP bytes, a
//! WebSocket client from the `ws` module, and virtual time.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_chacha::rand_core::SeedableRng;

use super::*;
use crate::engine::*;
use crate::ws::{ClientHandshake, WebSocket, WsConfig, WsMessage};
use crate::Str;

mod close;
mod drain;
mod handshake;
mod heartbeat;
mod http;
mod polling;
mod upgrade;
mod websocket;

/// A parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

struct WsClient {
    conn: ConnId,
    ws: WebSocket,
}

struct Harness {
    server: Server,
    t0: Instant,
    now: Instant,
    out: HashMap<ConnId, Vec<u8>>,
    closed: HashSet<ConnId>,
    events: Vec<ServerEvent>,
}

fn config() -> ServerConfig {
    ServerConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    }
}

impl Harness {
    fn new(config: ServerConfig) -> Harness {
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let t0 = Instant::now();
        Harness {
            server: Server::new(config, Box::new(rng)),
            t0,
            now: t0,
            out: HashMap::new(),
            closed: HashSet::new(),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(event) = self.server.poll_event() {
            self.events.push(event);
        }
        while let Some(conn) = self.server.poll_ready() {
            while let Some(transmit) = self.server.poll_transmit(conn) {
                match transmit {
                    Transmit::Data(bytes) => {
                        assert!(!self.closed.contains(&conn), "data after close");
                        self.out.entry(conn).or_default().extend_from_slice(&bytes)
                    }
                    Transmit::Close => {
                        self.closed.insert(conn);
                    }
                }
            }
        }
    }

    /// Advances virtual time to `ms` after the start, firing every deadline
    /// on time.
    fn advance_to(&mut self, ms: u64) {
        let target = self.t0 + Duration::from_millis(ms);
        while let Some(at) = self.server.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.server.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    fn connect(&mut self) -> ConnId {
        let conn = self.server.handle_connection(self.now, None);
        self.drain();
        conn
    }

    fn feed(&mut self, conn: ConnId, bytes: &[u8]) {
        self.server.handle_read(self.now, conn, bytes);
        self.drain();
    }

    fn eof(&mut self, conn: ConnId) {
        self.server.handle_eof(self.now, conn);
        self.drain();
    }

    /// Takes one complete response from what `conn` received.
    fn take_response(&mut self, conn: ConnId) -> Option<Resp> {
        let buf = self.out.get_mut(&conn)?;
        let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = std::str::from_utf8(&buf[..head_end]).unwrap().to_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        if buf.len() < head_end + len {
            return None;
        }
        let body = buf[head_end..head_end + len].to_vec();
        buf.drain(..head_end + len);
        Some(Resp {
            status,
            headers,
            body,
        })
    }

    /// Sends a raw request on a fresh connection; the response if any.
    fn raw(&mut self, request: &str) -> (ConnId, Option<Resp>) {
        let conn = self.connect();
        self.feed(conn, request.as_bytes());
        let resp = self.take_response(conn);
        (conn, resp)
    }

    fn get(&mut self, query: &str) -> (ConnId, Option<Resp>) {
        self.raw(&format!(
            "GET /socket.io/?{query} HTTP/1.1\r\nHost: x\r\n\r\n"
        ))
    }

    fn poll(&mut self, sid: &str) -> (ConnId, Option<Resp>) {
        self.get(&format!("EIO=4&transport=polling&sid={sid}"))
    }

    fn post(&mut self, sid: &str, body: &[u8]) -> Resp {
        let conn = self.connect();
        let head = format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\n",
            body.len()
        );
        self.feed(conn, head.as_bytes());
        self.feed(conn, body);
        self.take_response(conn).expect("POST answered")
    }

    /// Opens a polling session; returns its sid.
    fn open(&mut self) -> Str {
        let (_, resp) = self.get("EIO=4&transport=polling");
        let resp = resp.expect("handshake answered");
        assert_eq!(resp.status, 200);
        let handshake = Handshake::from_json(&resp.text()[1..]).unwrap();
        handshake.sid
    }

    fn ws_upgrade(&mut self, query: &str, extra: &str) -> (ConnId, Result<WebSocket, Resp>) {
        let handshake = ClientHandshake::new([7; 16]);
        let request = format!(
            "GET /socket.io/?{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
            handshake.key()
        );
        let conn = self.connect();
        self.feed(conn, request.as_bytes());
        let resp = self.take_response(conn).expect("upgrade answered");
        if resp.status != 101 {
            return (conn, Err(resp));
        }
        handshake
            .validate_response(
                101,
                resp.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
            )
            .unwrap();
        let mut ws = WebSocket::client(WsConfig::default(), || [1, 2, 3, 4]);
        if let Some(rest) = self.out.get_mut(&conn) {
            ws.receive(rest);
            rest.clear();
        }
        (conn, Ok(ws))
    }

    fn ws_open(&mut self, query: &str) -> WsClient {
        let (conn, ws) = self.ws_upgrade(query, "");
        WsClient {
            conn,
            ws: ws.expect("101"),
        }
    }

    fn ws_send(&mut self, client: &mut WsClient, text: &str) {
        client.ws.send_text(text).unwrap();
        let bytes = client.ws.poll_transmit().unwrap();
        self.feed(client.conn, &bytes);
    }

    fn ws_send_binary(&mut self, client: &mut WsClient, data: &[u8]) {
        client.ws.send_binary(data).unwrap();
        let bytes = client.ws.poll_transmit().unwrap();
        self.feed(client.conn, &bytes);
    }

    /// Messages the client received since the last call.
    fn ws_recv(&mut self, client: &mut WsClient) -> Vec<WsMessage> {
        if let Some(bytes) = self.out.get_mut(&client.conn) {
            client.ws.receive(bytes);
            bytes.clear();
        }
        let mut messages = Vec::new();
        while let Some(message) = client.ws.poll_message() {
            match message {
                Ok(message) => messages.push(message),
                Err(err) => panic!("client websocket error {err}"),
            }
        }
        messages
    }

    fn closed_events(&self) -> Vec<(Str, CloseReason)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Closed { sid, reason } => Some((sid.clone(), *reason)),
                _ => None,
            })
            .collect()
    }

    fn messages(&self) -> Vec<Message> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Message { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

fn text(s: &str) -> WsMessage {
    WsMessage::Text(Str::from(s))
}

fn error_body(code: u8, message: &str) -> String {
    format!("{{\"code\":{code},\"message\":\"{message}\"}}")
}

fn upgrade(h: &mut Harness, sid: &str) -> WsClient {
    let mut client = h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"));
    assert!(h.ws_recv(&mut client).is_empty());
    h.ws_send(&mut client, "2probe");
    assert_eq!(h.ws_recv(&mut client), [text("3probe")]);
    client
}

/// A WebSocket session and its id, the open packet consumed.
fn ws_session(h: &mut Harness) -> (WsClient, Str) {
    let mut client = h.ws_open("EIO=4&transport=websocket");
    let messages = h.ws_recv(&mut client);
    let [WsMessage::Text(open)] = &messages[..] else {
        panic!("{messages:?}")
    };
    let sid = Handshake::from_json(&open[1..]).unwrap().sid;
    (client, sid)
}

/// Everything `conn` has to write now, buffer by buffer.
fn pull(h: &mut Harness, conn: ConnId) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Some(transmit) = h.server.poll_transmit(conn) {
        match transmit {
            Transmit::Data(bytes) => out.push(bytes),
            Transmit::Close => panic!("closed"),
        }
    }
    out
}

/// A server that stops reading a connection owing more than `soft` bytes.
fn harness_with_output_bound(soft: usize) -> Harness {
    Harness::new(ServerConfig {
        ping_interval: Duration::from_secs(25),
        max_buffered_output: soft,
        ..ServerConfig::default()
    })
}

/// A long-polling POST of `body` on session `sid`.
fn post_request(sid: &str, body: &str) -> String {
    format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One read's worth of WebSocket pings with 125-byte payloads, as a client
/// that floods them sends (about 64 KiB).
fn ping_flood_read(client: &mut WsClient) -> Vec<u8> {
    let mut read = Vec::new();
    while read.len() < 64 * 1024 {
        client.ws.send_ping(&[b'p'; 125]).unwrap();
        read.extend_from_slice(&client.ws.poll_transmit().unwrap());
    }
    read
}
