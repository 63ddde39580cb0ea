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

#[test]
fn polling_handshake() {
    let mut h = Harness::new(config());
    let (_, resp) = h.get("EIO=4&transport=polling&t=N8hyd6w");
    let resp = resp.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.text();
    assert!(body.starts_with("0{\"sid\":\""), "{body}");
    let handshake = Handshake::from_json(&body[1..]).unwrap();
    assert_eq!(handshake.sid.len(), 20);
    assert!(handshake
        .sid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(
        &body[9 + 20..],
        "\",\"upgrades\":[\"websocket\"],\"pingInterval\":300,\"pingTimeout\":200,\"maxPayload\":1000000}"
    );
    match &h.events[..] {
        [ServerEvent::Opened { sid, info }] => {
            assert_eq!(*sid, handshake.sid);
            assert_eq!(info.transport, Transport::Polling);
            assert_eq!(info.request.query_param("t").as_deref(), Some("N8hyd6w"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.server.transport(&handshake.sid), Some(Transport::Polling));
    assert_eq!(h.server.session_count(), 1);
    // Two sessions get different ids.
    assert_ne!(h.open(), handshake.sid);
}

#[test]
fn polling_handshake_without_upgrades() {
    for config in [
        ServerConfig {
            allow_upgrades: false,
            ..config()
        },
        ServerConfig {
            transports: vec![Transport::Polling],
            ..config()
        },
    ] {
        let mut h = Harness::new(config);
        let resp = h.get("EIO=4&transport=polling").1.unwrap();
        assert!(resp.text().contains("\"upgrades\":[]"), "{}", resp.text());
    }
}

#[test]
fn websocket_handshake() {
    let mut h = Harness::new(config());
    let mut client = h.ws_open("EIO=4&transport=websocket");
    let messages = h.ws_recv(&mut client);
    let [WsMessage::Text(open)] = &messages[..] else {
        panic!("{messages:?}")
    };
    assert!(open.starts_with("0{"));
    let handshake = Handshake::from_json(&open[1..]).unwrap();
    assert!(handshake.upgrades.is_empty());
    assert_eq!(
        h.server.transport(&handshake.sid),
        Some(Transport::WebSocket)
    );
    assert!(
        matches!(&h.events[..], [ServerEvent::Opened { info, .. }] if info.transport == Transport::WebSocket)
    );
    // Messages both ways, text and binary.
    h.ws_send(&mut client, "4hello");
    h.ws_send_binary(&mut client, &[1, 2, 3, 4]);
    assert_eq!(
        h.messages(),
        [
            Message::Text("hello".into()),
            Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))
        ]
    );
    h.server
        .send(h.now, &handshake.sid, Message::Text("hi".into()))
        .unwrap();
    h.server
        .send(
            h.now,
            &handshake.sid,
            Message::Binary(Bytes::from_static(b"\x01")),
        )
        .unwrap();
    h.drain();
    assert_eq!(
        h.ws_recv(&mut client),
        [text("4hi"), WsMessage::Binary(Bytes::from_static(b"\x01"))]
    );
}

#[test]
fn websocket_base64_clients_get_text_binary() {
    let mut h = Harness::new(config());
    let mut client = h.ws_open("EIO=4&transport=websocket&b64=1");
    let open = h.ws_recv(&mut client);
    let WsMessage::Text(open) = &open[0] else {
        panic!()
    };
    let sid = Handshake::from_json(&open[1..]).unwrap().sid;
    h.server
        .send(
            h.now,
            &sid,
            Message::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        )
        .unwrap();
    h.drain();
    assert_eq!(h.ws_recv(&mut client), [text("bAQIDBA==")]);
}

#[test]
fn error_codes() {
    let mut h = Harness::new(config());
    let check = |resp: Option<Resp>, status: u16, code: u8, message: &str| {
        let resp = resp.unwrap();
        assert_eq!(resp.status, status);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(resp.text(), error_body(code, message));
    };
    check(
        h.get("transport=polling").1,
        400,
        5,
        "Unsupported protocol version",
    );
    check(
        h.get("EIO=abc&transport=polling").1,
        400,
        5,
        "Unsupported protocol version",
    );
    check(
        h.get("EIO=3&transport=polling").1,
        400,
        5,
        "Unsupported protocol version",
    );
    check(h.get("EIO=4").1, 400, 0, "Transport unknown");
    check(h.get("EIO=4&transport=abc").1, 400, 0, "Transport unknown");
    check(
        h.get("EIO=4&transport=polling&sid=nope").1,
        400,
        1,
        "Session ID unknown",
    );
    check(h.get("EIO=4&transport=websocket").1, 400, 3, "Bad request");
    let (_, resp) = h.raw("POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n40");
    check(resp, 400, 2, "Bad handshake method");
    let (_, resp) = h.raw("PUT /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n");
    check(resp, 400, 2, "Bad handshake method");
    // Outside the path.
    let (_, resp) = h.raw("GET /other/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(resp.unwrap().status, 404);
    // A disabled transport is unknown.
    let mut h2 = Harness::new(ServerConfig {
        transports: vec![Transport::WebSocket],
        ..config()
    });
    check(
        h2.get("EIO=4&transport=polling").1,
        400,
        0,
        "Transport unknown",
    );
    // Other methods on a session.
    let sid = h.open();
    let (_, resp) = h.raw(&format!(
        "PUT /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n"
    ));
    assert_eq!(resp.unwrap().status, 500);
    assert_eq!(h.server.session_count(), 1);
    assert!(h.closed_events().is_empty());
}

#[test]
fn allow_request_forbidden() {
    let mut h = Harness::new(ServerConfig {
        allow_request: Some(std::sync::Arc::new(|req: &crate::http::Request| match req
            .query_param("token")
            .as_deref()
        {
            Some("good") => Ok(()),
            Some("custom") => Err("no \"way\"".into()),
            _ => Err(String::new()),
        })),
        ..config()
    });
    let resp = h.get("EIO=4&transport=polling").1.unwrap();
    assert_eq!(resp.status, 403);
    assert_eq!(resp.text(), error_body(4, "Forbidden"));
    let resp = h.get("EIO=4&transport=polling&token=custom").1.unwrap();
    assert_eq!(resp.text(), r#"{"code":4,"message":"no \"way\""}"#);
    assert_eq!(
        h.get("EIO=4&transport=polling&token=good")
            .1
            .unwrap()
            .status,
        200
    );
    let (conn, ws) = h.ws_upgrade("EIO=4&transport=websocket", "");
    let resp = ws.err().unwrap();
    assert_eq!((resp.status, resp.text()), (400, "Forbidden"));
    assert!(h.closed.contains(&conn));
}

#[test]
fn refused_websocket_upgrades_get_a_bare_400_and_close() {
    let mut h = Harness::new(config());
    for query in [
        "transport=websocket",
        "EIO=abc&transport=websocket",
        "EIO=4",
        "EIO=4&transport=abc",
        "EIO=4&transport=websocket&sid=unknown",
    ] {
        let (conn, ws) = h.ws_upgrade(query, "");
        let resp = ws.err().unwrap();
        assert_eq!(resp.status, 400, "{query}");
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(h.closed.contains(&conn), "{query}");
    }
    // A bad key is refused too.
    let (conn, resp) = h.raw("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert_eq!(resp.unwrap().status, 400);
    assert!(h.closed.contains(&conn));
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn post_messages_and_held_get_drains_whole_queue() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let resp = h.post(&sid, b"4hello\x1ebAQIDBA==\x1e4");
    assert_eq!((resp.status, resp.text()), (200, "ok"));
    assert_eq!(resp.header("content-type"), Some("text/html"));
    assert_eq!(
        h.messages(),
        [
            Message::Text("hello".into()),
            Message::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            Message::Text("".into())
        ]
    );
    // Queued while no GET is pending: one payload with everything.
    for m in ["a", "b", "c"] {
        h.server.send(h.now, &sid, Message::Text(m.into())).unwrap();
    }
    h.server
        .send(
            h.now,
            &sid,
            Message::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        )
        .unwrap();
    assert_eq!(h.server.buffered(&sid), Some(2 + 2 + 2 + 5));
    let resp = h.poll(&sid).1.unwrap();
    assert_eq!(resp.text(), "4a\x1e4b\x1e4c\x1ebAQIDBA==");
    assert_eq!(h.server.buffered(&sid), Some(0));
    // A GET with nothing queued is held until something is sent.
    let (conn, resp) = h.poll(&sid);
    assert!(resp.is_none());
    h.server
        .send(h.now, &sid, Message::Text("late".into()))
        .unwrap();
    h.drain();
    assert_eq!(h.take_response(conn).unwrap().text(), "4late");
    // Text containing the record separator cannot travel over polling.
    h.server
        .send(h.now, &sid, Message::Text("x\u{1e}y".into()))
        .unwrap();
    h.server
        .send(h.now, &sid, Message::Text("z".into()))
        .unwrap();
    assert_eq!(h.poll(&sid).1.unwrap().text(), "4z");
    // Too large for max_payload.
    assert_eq!(
        h.server.send(
            h.now,
            &sid,
            Message::Binary(Bytes::from(vec![0; 1_000_001]))
        ),
        Err(SendError::TooLarge)
    );
    assert_eq!(
        h.server.send(h.now, "nope", Message::Text("x".into())),
        Err(SendError::UnknownSession)
    );
}

#[test]
fn keep_alive_and_pipelining() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let conn = h.connect();
    // A POST and a GET pipelined on one connection, then another POST that
    // waits behind the held GET.
    let raw = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n4hi\
         GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n\
         POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n4bye"
    );
    h.feed(conn, raw.as_bytes());
    assert_eq!(h.take_response(conn).unwrap().text(), "ok");
    assert!(h.take_response(conn).is_none());
    assert_eq!(h.messages(), [Message::Text("hi".into())]);
    h.server
        .send(h.now, &sid, Message::Text("x".into()))
        .unwrap();
    h.drain();
    assert_eq!(h.take_response(conn).unwrap().text(), "4x");
    assert_eq!(h.take_response(conn).unwrap().text(), "ok");
    assert_eq!(
        h.messages(),
        [Message::Text("hi".into()), Message::Text("bye".into())]
    );
}

#[test]
fn byte_by_byte() {
    let mut h = Harness::new(config());
    let conn = h.connect();
    for b in b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n" {
        assert!(h.take_response(conn).is_none());
        h.feed(conn, &[*b]);
    }
    let resp = h.take_response(conn).unwrap();
    let sid = Handshake::from_json(&resp.text()[1..]).unwrap().sid;
    let post = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n4ab\r\n0\r\n\r\n"
    );
    for b in post.as_bytes() {
        h.feed(conn, &[*b]);
    }
    assert_eq!(h.take_response(conn).unwrap().text(), "ok");
    assert_eq!(h.messages(), [Message::Text("ab".into())]);
    // WebSocket frames byte by byte.
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    client.ws.send_text("4hello").unwrap();
    let frame = client.ws.poll_transmit().unwrap();
    for b in frame.iter() {
        h.feed(client.conn, &[*b]);
    }
    assert_eq!(
        h.messages(),
        [Message::Text("ab".into()), Message::Text("hello".into())]
    );
}

#[test]
fn concurrent_get_kills_the_session() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let (first, resp) = h.poll(&sid);
    assert!(resp.is_none());
    let (_, second) = h.poll(&sid);
    let second = second.unwrap();
    assert_eq!(second.status, 400);
    assert!(second.body.is_empty());
    assert_eq!(h.take_response(first).unwrap().text(), "1");
    assert_eq!(
        h.closed_events(),
        [(sid.clone(), CloseReason::TransportError)]
    );
    assert_eq!(
        h.poll(&sid).1.unwrap().text(),
        error_body(1, "Session ID unknown")
    );
}

#[test]
fn aborted_get_kills_the_session() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let (conn, resp) = h.poll(&sid);
    assert!(resp.is_none());
    h.eof(conn);
    assert_eq!(
        h.closed_events(),
        [(sid.clone(), CloseReason::TransportError)]
    );
    assert_eq!(h.poll(&sid).1.unwrap().status, 400);
    // The handshake's and the last poll's keep-alive connections remain.
    assert_eq!(h.server.connection_count(), 2);
}

#[test]
fn bad_post_kills_the_session() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let (poll, _) = h.poll(&sid);
    let resp = h.post(&sid, b"4ok\x1eabc");
    assert_eq!(resp.status, 400);
    assert_eq!(h.messages(), [Message::Text("ok".into())]);
    assert_eq!(h.closed_events(), [(sid.clone(), CloseReason::ParseError)]);
    assert_eq!(h.take_response(poll).unwrap().text(), "1");
    assert_eq!(h.poll(&sid).1.unwrap().status, 400);
    // Binary bodies are refused as well (transport error).
    let sid = h.open();
    let conn = h.connect();
    h.feed(conn, format!("POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n\r\n4a").as_bytes());
    assert_eq!(h.take_response(conn).unwrap().status, 400);
    assert_eq!(
        h.closed_events().last(),
        Some(&(sid, CloseReason::TransportError))
    );
}

#[test]
fn oversized_post_gets_413() {
    let mut h = Harness::new(ServerConfig {
        max_payload: 100,
        ..config()
    });
    let sid = h.open();
    let body = vec![b'4'; 101];
    let conn = h.connect();
    let head = format!(
        "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"
    );
    h.feed(conn, head.as_bytes());
    h.feed(conn, &body);
    assert_eq!(h.take_response(conn).unwrap().status, 413);
    assert!(h.closed.contains(&conn));
    // The session lives on.
    assert_eq!(h.post(&sid, &body[..100]).status, 200);
    assert!(h.closed_events().is_empty());
    // And a WebSocket message over max_payload fails that connection.
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    h.ws_send(&mut client, &"4".repeat(101));
    assert_eq!(h.closed_events().len(), 1);
}

fn upgrade(h: &mut Harness, sid: &str) -> WsClient {
    let mut client = h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"));
    assert!(h.ws_recv(&mut client).is_empty());
    h.ws_send(&mut client, "2probe");
    assert_eq!(h.ws_recv(&mut client), [text("3probe")]);
    client
}

#[test]
fn upgrade_probe_noop_switch() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let (held, resp) = h.poll(&sid);
    assert!(resp.is_none());
    let mut client = h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"));
    h.ws_send(&mut client, "2probe");
    assert_eq!(h.ws_recv(&mut client), [text("3probe")]);
    // The pending GET is released with a noop, and so is the next one.
    assert_eq!(h.take_response(held).unwrap().text(), "6");
    assert_eq!(h.poll(&sid).1.unwrap().text(), "6");
    // Still polling: messages sent now wait in the polling queue...
    h.server
        .send(h.now, &sid, Message::Text("queued".into()))
        .unwrap();
    assert_eq!(h.server.transport(&sid), Some(Transport::Polling));
    h.ws_send(&mut client, "5");
    assert_eq!(h.server.transport(&sid), Some(Transport::WebSocket));
    assert!(matches!(
        h.events.last(),
        Some(ServerEvent::Upgraded { .. })
    ));
    // ...and move to the WebSocket in order.
    h.server
        .send(h.now, &sid, Message::Text("after".into()))
        .unwrap();
    h.drain();
    assert_eq!(h.ws_recv(&mut client), [text("4queued"), text("4after")]);
    h.ws_send(&mut client, "4hello");
    assert_eq!(h.messages(), [Message::Text("hello".into())]);
    // Polling requests for the upgraded sid: 400 code 3.
    assert_eq!(h.poll(&sid).1.unwrap().text(), error_body(3, "Bad request"));
    assert_eq!(h.post(&sid, b"4x").text(), error_body(3, "Bad request"));
    // Heartbeat continues over the WebSocket.
    h.advance_to(300);
    assert_eq!(h.ws_recv(&mut client), [text("2")]);
    assert!(h.closed_events().is_empty());
}

#[test]
fn second_websocket_after_upgrade_is_accepted_then_closed() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let mut client = upgrade(&mut h, &sid);
    h.ws_send(&mut client, "5");
    let mut second = h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"));
    let messages = h.ws_recv(&mut second);
    assert!(
        matches!(&messages[..], [WsMessage::Close(_)]),
        "{messages:?}"
    );
    // The close handshake completes and the connection is dropped.
    let reply = second.ws.poll_transmit().unwrap();
    h.feed(second.conn, &reply);
    assert!(h.closed.contains(&second.conn));
    // The first one still works.
    h.ws_send(&mut client, "4hello");
    assert_eq!(h.messages(), [Message::Text("hello".into())]);
    assert!(h.closed_events().is_empty());
}

#[test]
fn only_one_upgrade_at_a_time() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let _first = upgrade(&mut h, &sid);
    let mut second = h.ws_open(&format!("EIO=4&transport=websocket&sid={sid}"));
    assert!(matches!(&h.ws_recv(&mut second)[..], [WsMessage::Close(_)]));
}

#[test]
fn upgrade_timeout_abandons_the_websocket() {
    let mut h = Harness::new(ServerConfig {
        ping_interval: Duration::from_secs(25),
        ping_timeout: Duration::from_secs(20),
        upgrade_timeout: Duration::from_millis(1000),
        ..ServerConfig::default()
    });
    let sid = h.open();
    let mut client = upgrade(&mut h, &sid);
    h.advance_to(999);
    assert!(h.ws_recv(&mut client).is_empty());
    h.advance_to(1000);
    assert!(matches!(&h.ws_recv(&mut client)[..], [WsMessage::Close(_)]));
    assert_eq!(h.server.transport(&sid), Some(Transport::Polling));
    // No noop any more: the GET is held again.
    let (_, resp) = h.poll(&sid);
    assert!(resp.is_none());
    // A new upgrade works.
    let mut client = upgrade(&mut h, &sid);
    h.ws_send(&mut client, "5");
    assert_eq!(h.server.transport(&sid), Some(Transport::WebSocket));
    assert!(h.closed_events().is_empty());
}

#[test]
fn unexpected_packet_during_upgrade_abandons_it() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let mut client = upgrade(&mut h, &sid);
    h.ws_send(&mut client, "4too early");
    assert!(matches!(&h.ws_recv(&mut client)[..], [WsMessage::Close(_)]));
    assert_eq!(h.server.transport(&sid), Some(Transport::Polling));
    assert!(h.messages().is_empty());
}

#[test]
fn ping_every_interval_over_polling() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let mut pong_at = 0;
    for round in 0..3u64 {
        let (conn, resp) = h.poll(&sid);
        assert!(resp.is_none());
        h.advance_to(pong_at + 299);
        assert!(h.take_response(conn).is_none(), "round {round}");
        h.advance_to(pong_at + 300);
        assert_eq!(h.take_response(conn).unwrap().text(), "2");
        // Answer a little later: the next ping is an interval after the pong.
        pong_at += 300 + 50;
        h.advance_to(pong_at);
        assert_eq!(h.post(&sid, b"3").status, 200);
    }
    assert!(h.closed_events().is_empty());
}

#[test]
fn ping_interval_grace_delays_pings() {
    let mut h = Harness::new(ServerConfig {
        ping_interval_grace: Duration::from_millis(100),
        ..config()
    });
    let sid = h.open();
    let (conn, _) = h.poll(&sid);
    h.advance_to(399);
    assert!(h.take_response(conn).is_none());
    h.advance_to(400);
    assert_eq!(h.take_response(conn).unwrap().text(), "2");
}

#[test]
fn ping_timeout_exactly_on_time() {
    let mut h = Harness::new(config());
    let sid = h.open();
    h.advance_to(499);
    assert!(h.closed_events().is_empty());
    assert_eq!(h.server.transport(&sid), Some(Transport::Polling));
    h.advance_to(500);
    assert_eq!(h.closed_events(), [(sid.clone(), CloseReason::PingTimeout)]);
    assert_eq!(h.poll(&sid).1.unwrap().status, 400);
    // Over WebSocket: the client sees the ping, then the close.
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    let start = 500;
    h.advance_to(start + 300);
    assert_eq!(h.ws_recv(&mut client), [text("2")]);
    h.ws_send(&mut client, "3");
    h.advance_to(start + 300 + 300);
    assert_eq!(h.ws_recv(&mut client), [text("2")]);
    h.advance_to(start + 300 + 300 + 199);
    assert_eq!(h.closed_events().len(), 1);
    h.advance_to(start + 300 + 300 + 200);
    assert_eq!(h.closed_events().len(), 2);
    assert!(matches!(&h.ws_recv(&mut client)[..], [WsMessage::Close(_)]));
}

#[test]
fn a_read_after_the_deadline_does_not_revive_the_session() {
    let mut h = Harness::new(config());
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    h.advance_to(300);
    assert_eq!(h.ws_recv(&mut client), [text("2")]);
    // The pong arrives after interval + timeout, before the driver's timer
    // fired: the session is dead, whatever the read says.
    h.now = h.t0 + Duration::from_millis(500);
    h.ws_send(&mut client, "3");
    assert_eq!(h.closed_events().len(), 1);
    assert_eq!(h.closed_events()[0].1, CloseReason::PingTimeout);
}

#[test]
fn late_timer_does_not_extend_the_ping_timeout() {
    let mut h = Harness::new(config());
    let sid = h.open();
    // The driver's timer fires 10 ms late for the ping...
    h.now = h.t0 + Duration::from_millis(310);
    h.server.handle_timeout(h.now);
    h.drain();
    h.advance_to(499);
    assert!(h.closed_events().is_empty());
    // ...yet the session is dead interval + timeout after it opened.
    h.advance_to(500);
    assert_eq!(h.closed_events(), [(sid, CloseReason::PingTimeout)]);
}

#[test]
fn pending_get_gets_close_packet_on_ping_timeout() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let (conn, _) = h.poll(&sid);
    h.advance_to(300);
    assert_eq!(h.take_response(conn).unwrap().text(), "2");
    let (conn, _) = h.poll(&sid);
    h.advance_to(500);
    assert_eq!(h.take_response(conn).unwrap().text(), "1");
    assert_eq!(h.closed_events(), [(sid, CloseReason::PingTimeout)]);
}

#[test]
fn client_close_over_polling() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let (poll, _) = h.poll(&sid);
    assert_eq!(h.post(&sid, b"1").text(), "ok");
    assert_eq!(h.take_response(poll).unwrap().text(), "6");
    assert_eq!(h.closed_events(), [(sid.clone(), CloseReason::ClientClose)]);
    assert_eq!(h.poll(&sid).1.unwrap().status, 400);
    assert_eq!(h.server.transport(&sid), None);
}

#[test]
fn client_close_over_websocket() {
    let mut h = Harness::new(config());
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    h.ws_send(&mut client, "1");
    assert_eq!(h.closed_events().len(), 1);
    assert_eq!(h.closed_events()[0].1, CloseReason::ClientClose);
    assert!(matches!(&h.ws_recv(&mut client)[..], [WsMessage::Close(_)]));
    let reply = client.ws.poll_transmit().unwrap();
    h.feed(client.conn, &reply);
    assert!(h.closed.contains(&client.conn));
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn websocket_errors_end_the_session() {
    let mut h = Harness::new(config());
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    h.ws_send(&mut client, "abc");
    assert_eq!(h.closed_events()[0].1, CloseReason::ParseError);
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    h.eof(client.conn);
    assert_eq!(h.closed_events()[1].1, CloseReason::TransportClose);
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    h.ws_send(&mut client, "2");
    assert_eq!(h.closed_events()[2].1, CloseReason::TransportError);
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    client.ws.close(crate::ws::CloseCode::NORMAL, "").unwrap();
    let bytes = client.ws.poll_transmit().unwrap();
    h.feed(client.conn, &bytes);
    assert_eq!(h.closed_events()[3].1, CloseReason::TransportClose);
    assert_eq!(h.closed_events().len(), 4);
}

#[test]
fn application_close() {
    let mut h = Harness::new(config());
    // Polling without a pending GET: queued messages, then `1`, on the
    // next GET.
    let sid = h.open();
    h.server
        .send(h.now, &sid, Message::Text("bye".into()))
        .unwrap();
    h.server.close(h.now, &sid).unwrap();
    h.drain();
    assert_eq!(h.closed_events(), [(sid.clone(), CloseReason::ForcedClose)]);
    assert_eq!(h.server.close(h.now, &sid), Err(SendError::UnknownSession));
    assert_eq!(
        h.server.send(h.now, &sid, Message::Text("x".into())),
        Err(SendError::UnknownSession)
    );
    assert_eq!(h.poll(&sid).1.unwrap().text(), "4bye\x1e1");
    assert_eq!(h.poll(&sid).1.unwrap().status, 400);
    // With a pending GET: answered right away.
    let sid = h.open();
    let (conn, _) = h.poll(&sid);
    h.server.close(h.now, &sid).unwrap();
    h.drain();
    assert_eq!(h.take_response(conn).unwrap().text(), "1");
    // Never fetched: forgotten after the close timeout, without a second
    // event.
    let sid = h.open();
    h.server.close(h.now, &sid).unwrap();
    h.advance_to(31_000);
    assert_eq!(h.poll(&sid).1.unwrap().status, 400);
    assert_eq!(h.closed_events().len(), 3);
    // Over WebSocket: `1`, then the close frame.
    let mut client = h.ws_open("EIO=4&transport=websocket");
    let open = h.ws_recv(&mut client);
    let WsMessage::Text(open) = &open[0] else {
        panic!()
    };
    let sid = Handshake::from_json(&open[1..]).unwrap().sid;
    h.server.close(h.now, &sid).unwrap();
    h.drain();
    let messages = h.ws_recv(&mut client);
    assert!(matches!(&messages[..], [WsMessage::Text(t), WsMessage::Close(_)] if t == "1"));
    assert_eq!(h.closed_events().len(), 4);
    assert_eq!(h.closed_events()[3], (sid, CloseReason::ForcedClose));
}

#[test]
fn shutdown_closes_everything() {
    let mut h = Harness::new(config());
    let a = h.open();
    let (poll, _) = h.poll(&a);
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    h.server.shutdown(h.now);
    h.drain();
    assert_eq!(h.take_response(poll).unwrap().text(), "1");
    assert!(matches!(
        &h.ws_recv(&mut client)[..],
        [_, WsMessage::Close(_)]
    ));
    let reasons: Vec<_> = h.closed_events().into_iter().map(|(_, r)| r).collect();
    assert_eq!(reasons, [CloseReason::ServerShutdown; 2]);
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn cors_variants() {
    // Same origin by default.
    let mut h = Harness::new(config());
    let (_, resp) = h.raw("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a.com:3000\r\nOrigin: http://a.com:3000\r\n\r\n");
    let resp = resp.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("http://a.com:3000")
    );
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    let (_, resp) = h.raw("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a.com:3000\r\nOrigin: http://evil.com\r\n\r\n");
    let resp = resp.unwrap();
    assert_eq!(
        (resp.status, resp.text()),
        (400, error_body(3, "Bad request").as_str())
    );
    assert_eq!(resp.header("access-control-allow-origin"), None);
    let (_, ws) = h.ws_upgrade("EIO=4&transport=websocket", "Origin: http://evil.com\r\n");
    assert_eq!(ws.err().unwrap().status, 400);
    assert_eq!(h.server.session_count(), 1);
    // Any origin: reflected; preflight answered.
    let mut h = Harness::new(ServerConfig {
        cors_allowed_origins: CorsOrigins::Any,
        ..config()
    });
    let (_, resp) = h.raw("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a.com\r\nOrigin: http://b.org\r\n\r\n");
    assert_eq!(
        resp.unwrap().header("access-control-allow-origin"),
        Some("http://b.org")
    );
    let (_, resp) = h.raw("OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a.com\r\nOrigin: http://b.org\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n");
    let resp = resp.unwrap();
    assert_eq!(resp.status, 204);
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("http://b.org")
    );
    assert_eq!(
        resp.header("access-control-allow-methods"),
        Some("OPTIONS, GET, POST")
    );
    assert_eq!(
        resp.header("access-control-allow-headers"),
        Some("content-type")
    );
    // An allow-list, without credentials.
    let mut h = Harness::new(ServerConfig {
        cors_allowed_origins: CorsOrigins::List(vec!["https://ok.org".into()]),
        cors_credentials: false,
        ..config()
    });
    let (_, resp) = h.raw("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a.com\r\nOrigin: https://ok.org\r\n\r\n");
    let resp = resp.unwrap();
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("https://ok.org")
    );
    assert_eq!(resp.header("access-control-allow-credentials"), None);
    let sid = Handshake::from_json(&resp.text()[1..]).unwrap().sid;
    // CORS headers on later polls and POSTs too.
    let (_, resp) = h.raw(&format!("POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: a.com\r\nOrigin: https://ok.org\r\nContent-Length: 2\r\n\r\n4x"));
    assert_eq!(
        resp.unwrap().header("access-control-allow-origin"),
        Some("https://ok.org")
    );
    let (_, resp) = h.raw("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: a.com\r\nOrigin: https://no.org\r\n\r\n");
    assert_eq!(resp.unwrap().status, 400);
}

#[test]
fn session_cookie() {
    let mut h = Harness::new(config());
    assert_eq!(
        h.get("EIO=4&transport=polling")
            .1
            .unwrap()
            .header("set-cookie"),
        None
    );
    let mut h = Harness::new(ServerConfig {
        cookie: Some(CookieConfig::default()),
        ..config()
    });
    let resp = h.get("EIO=4&transport=polling").1.unwrap();
    let sid = Handshake::from_json(&resp.text()[1..]).unwrap().sid;
    assert_eq!(
        resp.header("set-cookie").unwrap(),
        format!("io={sid}; Path=/; HttpOnly; SameSite=Lax")
    );
    // Only on the handshake.
    h.server
        .send(h.now, &sid, Message::Text("x".into()))
        .unwrap();
    assert_eq!(h.poll(&sid).1.unwrap().header("set-cookie"), None);
    // On the 101 of a WebSocket handshake too.
    let handshake = ClientHandshake::new([7; 16]);
    let conn = h.connect();
    h.feed(conn, format!("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n", handshake.key()).as_bytes());
    let resp = h.take_response(conn).unwrap();
    assert_eq!(resp.status, 101);
    assert!(resp.header("set-cookie").unwrap().starts_with("io="));
    let mut h = Harness::new(ServerConfig {
        cookie: Some(CookieConfig {
            name: "srv".into(),
            path: None,
            http_only: false,
            same_site: Some(SameSite::Strict),
            secure: true,
            max_age: Some(Duration::from_secs(60)),
            domain: Some("a.com".into()),
        }),
        ..config()
    });
    let resp = h.get("EIO=4&transport=polling").1.unwrap();
    let sid = Handshake::from_json(&resp.text()[1..]).unwrap().sid;
    assert_eq!(
        resp.header("set-cookie").unwrap(),
        format!("srv={sid}; Max-Age=60; Domain=a.com; Secure; SameSite=Strict")
    );
}

#[test]
fn compression() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let big = "x".repeat(2000);
    h.server
        .send(h.now, &sid, Message::Text(big.as_str().into()))
        .unwrap();
    let (_, resp) = h.raw(&format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n"));
    let resp = resp.unwrap();
    assert_eq!(resp.header("content-encoding"), Some("gzip"));
    let mut body = String::new();
    flate2::read::GzDecoder::new(&resp.body[..])
        .read_to_string(&mut body)
        .unwrap();
    assert_eq!(body, format!("4{big}"));
    // Deflate when preferred.
    h.server
        .send(h.now, &sid, Message::Text(big.as_str().into()))
        .unwrap();
    let (_, resp) = h.raw(&format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: deflate\r\n\r\n"));
    let resp = resp.unwrap();
    assert_eq!(resp.header("content-encoding"), Some("deflate"));
    let mut body = String::new();
    flate2::read::ZlibDecoder::new(&resp.body[..])
        .read_to_string(&mut body)
        .unwrap();
    assert_eq!(body, format!("4{big}"));
    // Below the threshold, or not accepted: plain.
    h.server
        .send(h.now, &sid, Message::Text("small".into()))
        .unwrap();
    let (_, resp) = h.raw(&format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"));
    let resp = resp.unwrap();
    assert_eq!(
        (resp.header("content-encoding"), resp.text()),
        (None, "4small")
    );
    h.server
        .send(h.now, &sid, Message::Text(big.as_str().into()))
        .unwrap();
    assert_eq!(h.poll(&sid).1.unwrap().header("content-encoding"), None);
    // Off by configuration.
    let mut h = Harness::new(ServerConfig {
        http_compression: false,
        ..config()
    });
    let sid = h.open();
    h.server
        .send(h.now, &sid, Message::Text(big.as_str().into()))
        .unwrap();
    let (_, resp) = h.raw(&format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"));
    assert_eq!(resp.unwrap().header("content-encoding"), None);
}

#[test]
fn idle_connections_are_closed() {
    let mut h = Harness::new(ServerConfig {
        ping_interval: Duration::from_secs(100),
        ping_timeout: Duration::from_secs(100),
        ..ServerConfig::default()
    });
    let silent = h.connect();
    let partial = h.connect();
    h.feed(partial, b"GET /socket.io/?EIO=4");
    let sid = h.open();
    let (held, _) = h.poll(&sid);
    h.advance_to(29_999);
    assert!(h.closed.is_empty());
    h.advance_to(30_000);
    assert!(h.closed.contains(&silent));
    assert!(h.closed.contains(&partial));
    // The held GET is not idle.
    assert!(!h.closed.contains(&held));
    assert!(h.closed_events().is_empty());
}

#[test]
fn bad_http_gets_error_response_and_close() {
    let mut h = Harness::new(config());
    let (conn, resp) = h.raw("NOT HTTP\r\n\r\n");
    assert_eq!(resp.unwrap().status, 400);
    assert!(h.closed.contains(&conn));
    let big = format!("GET /socket.io/?{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
    let (conn, resp) = h.raw(&big);
    assert_eq!(resp.unwrap().status, 431);
    assert!(h.closed.contains(&conn));
}

#[test]
fn many_sessions_timers_stay_bounded() {
    let mut h = Harness::new(config());
    let sids: Vec<Str> = (0..50).map(|_| h.open()).collect();
    // Pongs in a loop do not grow the timer heap.
    for _ in 0..100 {
        for sid in &sids[..5] {
            h.post(sid, b"3\x1e3\x1e3");
        }
        h.now += Duration::from_millis(1);
    }
    h.server.check_invariants();
    // All the others time out exactly on time.
    h.advance_to(500);
    assert_eq!(h.closed_events().len(), 45);
}

#[test]
fn requests_from_another_http_stack() {
    use crate::http::{Method, Request};
    let mut h = Harness::new(config());
    let id = h.server.handle_request(
        h.now,
        Request::new(Method::Get, "/socket.io/?EIO=4&transport=polling"),
        None,
    );
    assert_eq!(h.server.poll_ready(), Some(id));
    assert_eq!(h.server.poll_transmit(id), None);
    let resp = h.server.poll_response(id).unwrap();
    assert_eq!(resp.status, 200);
    let body = std::str::from_utf8(&resp.body).unwrap();
    let sid = Handshake::from_json(&body[1..]).unwrap().sid;
    assert_eq!(h.server.poll_response(id), None);
    // A held GET is answered later.
    let get = Request::new(
        Method::Get,
        format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
    );
    let id = h.server.handle_request(h.now, get.clone(), None);
    assert_eq!(h.server.poll_ready(), None);
    let post = Request::new(
        Method::Post,
        format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
    )
    .with_body("4ping");
    let post_id = h.server.handle_request(h.now, post, None);
    assert_eq!(h.server.poll_response(post_id).unwrap().body, "ok");
    h.server
        .send(h.now, &sid, Message::Text("pong".into()))
        .unwrap();
    assert_eq!(h.server.poll_response(id).unwrap().body, "4pong");
    // An aborted one ends the session.
    let id = h.server.handle_request(h.now, get, None);
    h.server.handle_eof(h.now, id);
    h.drain();
    assert_eq!(h.closed_events(), [(sid, CloseReason::TransportError)]);
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn pipelining_behind_a_held_get_is_bounded() {
    let mut h = Harness::new(ServerConfig {
        max_payload: 1000,
        max_http_head: 1000,
        ..config()
    });
    let sid = h.open();
    let (conn, resp) = h.poll(&sid);
    assert!(resp.is_none());
    assert!(h.server.wants_read(conn));
    let junk = vec![b'a'; 1000];
    h.feed(conn, &junk);
    assert!(!h.server.wants_read(conn));
    h.feed(conn, &junk);
    assert!(!h.closed.contains(&conn));
    h.feed(conn, b"a");
    assert!(h.closed.contains(&conn));
    assert_eq!(h.closed_events(), [(sid, CloseReason::TransportError)]);
}

#[test]
fn server_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Server>();
}

#[test]
fn websocket_compression_offer_is_ignored_unless_enabled() {
    // Off by default, as engine.io's perMessageDeflate: the 101 selects no
    // extension (ws_upgrade's plain handshake would refuse one).
    assert!(!ServerConfig::default().websocket_compression);
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    let mut h = Harness::new(config());
    let (_, ws) = h.ws_upgrade("EIO=4&transport=websocket", offer);
    assert!(ws.is_ok());
    // On, without the `deflate` feature, it is ignored the same way.
    #[cfg(not(feature = "deflate"))]
    {
        let mut h = Harness::new(ServerConfig {
            websocket_compression: true,
            ..config()
        });
        let (_, ws) = h.ws_upgrade("EIO=4&transport=websocket", offer);
        assert!(ws.is_ok());
    }
}

#[cfg(feature = "deflate")]
#[test]
fn websocket_compression_negotiated_and_used() {
    use crate::ws::DeflateConfig;
    let mut h = Harness::new(ServerConfig {
        websocket_compression: true,
        ..config()
    });
    let handshake = ClientHandshake::new([7; 16]).with_deflate(DeflateConfig::default());
    let request = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {}\r\n\r\n",
        handshake.key(),
        handshake.extension_offer().unwrap(),
    );
    let conn = h.connect();
    h.feed(conn, request.as_bytes());
    let resp = h.take_response(conn).unwrap();
    assert_eq!(resp.status, 101);
    assert!(resp
        .headers
        .iter()
        .any(|(n, v)| n == "Sec-WebSocket-Extensions" && v == "permessage-deflate"));
    let params = handshake
        .validate_response_extensions(
            101,
            resp.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        )
        .unwrap()
        .unwrap();
    let ws = WebSocket::client(WsConfig::default(), || [1, 2, 3, 4])
        .with_deflate(params, &DeflateConfig::default());
    let mut client = WsClient { conn, ws };
    let open = h.ws_recv(&mut client);
    let WsMessage::Text(open) = &open[0] else {
        panic!("{open:?}")
    };
    let sid = Handshake::from_json(&open[1..]).unwrap().sid;
    // A long message from the server travels compressed (RSV1), the open
    // packet (under the 1024-byte threshold) did not.
    let long = "a".repeat(50_000);
    h.server
        .send(h.now, &sid, Message::Text(long.as_str().into()))
        .unwrap();
    h.drain();
    let wire = h.out.get(&conn).unwrap().clone();
    assert_eq!(wire[0], 0xC1, "FIN + RSV1 + text");
    assert!(wire.len() < 1000, "{}", wire.len());
    assert_eq!(h.ws_recv(&mut client), [text(&format!("4{long}"))]);
    // And the other way.
    h.ws_send(&mut client, &format!("4{long}"));
    assert_eq!(h.messages(), [Message::Text(long.as_str().into())]);
    // A compressed message that inflates past max_payload ends the session.
    let bomb = format!("4{}", "b".repeat(2_000_000));
    h.ws_send(&mut client, &bomb);
    assert_eq!(h.closed_events(), [(sid, CloseReason::TransportError)]);
}

#[test]
fn options_have_python_socketio_defaults() {
    let config = ServerConfig::default();
    assert_eq!(config.ping_interval, Duration::from_secs(25));
    assert_eq!(config.ping_interval_grace, Duration::ZERO);
    assert_eq!(config.ping_timeout, Duration::from_secs(20));
    assert_eq!(config.max_payload, 1_000_000);
    assert!(config.allow_upgrades);
    assert_eq!(
        config.transports,
        [Transport::Polling, Transport::WebSocket]
    );
    assert_eq!(config.upgrade_timeout, Duration::from_secs(10));
    assert!(config.cookie.is_none());
    assert!(config.http_compression);
    assert_eq!(config.compression_threshold, 1024);
    assert!(!config.websocket_compression);
    assert_eq!(config.path, "/socket.io/");
    // They reach the open packet in milliseconds, as integers.
    let mut h = Harness::new(ServerConfig::default());
    let (_, resp) = h.get("EIO=4&transport=polling");
    let resp = resp.unwrap();
    let body = resp.text();
    let open = body.strip_prefix('0').unwrap();
    assert!(open.ends_with(
        r#","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
    ), "{open}");
}

#[test]
fn same_seed_same_session_ids() {
    // Session ids come from the generator the caller provides.
    let sids = |seed: u64| {
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut h = Harness::new(config());
        h.server = Server::new(config(), Box::new(rng));
        (0..3).map(|_| h.open()).collect::<Vec<_>>()
    };
    assert_eq!(sids(1), sids(1));
    assert_ne!(sids(1), sids(2));
    assert!(sids(3).iter().all(|sid| sid.len() == 20));
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

#[test]
fn websocket_frames_are_those_of_the_websocket_and_share_the_message() {
    let mut h = Harness::new(config());
    let (mut a, sid_a) = ws_session(&mut h);
    let (mut b, sid_b) = ws_session(&mut h);
    let messages = [
        Message::Text("hi".into()),
        Message::Text("x".repeat(200).into()),
        Message::Text("y".repeat(5_000).into()),
        Message::Binary(Bytes::from_static(&[1, 2, 3])),
        Message::Binary(Bytes::from(vec![7; 70_000])),
    ];
    for message in &messages {
        // As a broadcast does: the same message to one session after the
        // other, then the driver pulls.
        for sid in [&sid_a, &sid_b] {
            h.server.send(h.now, sid, message.clone()).unwrap();
        }
        let wire_a = pull(&mut h, a.conn);
        let wire_b = pull(&mut h, b.conn);
        // Byte for byte what the WebSocket itself frames.
        let mut reference = WebSocket::server(WsConfig::default());
        match message {
            Message::Text(text) => reference.send_text(&format!("4{text}")).unwrap(),
            Message::Binary(bytes) => reference.send_binary(bytes).unwrap(),
        }
        let expected = reference.poll_transmit().unwrap();
        assert_eq!(wire_a.concat(), expected);
        assert_eq!(wire_b.concat(), expected);
        let (payload, len) = match message {
            Message::Text(text) => (text.as_bytes(), text.len()),
            Message::Binary(bytes) => (bytes, bytes.len()),
        };
        if len >= super::frame::SHARED_PAYLOAD_MIN {
            // Header, then the message's own buffer.
            assert_eq!(wire_a.len(), 2);
            assert_eq!(wire_a[1].as_ptr(), payload.as_ptr());
            assert_eq!(wire_b[1].as_ptr(), payload.as_ptr());
        } else {
            // One frame, built once for both.
            assert_eq!(wire_a.len(), 1);
            assert_eq!(wire_a[0].as_ptr(), wire_b[0].as_ptr());
        }
        a.ws.receive(&wire_a.concat());
        b.ws.receive(&wire_b.concat());
    }
    for client in [&mut a, &mut b] {
        let mut received = Vec::new();
        while let Some(message) = client.ws.poll_message() {
            received.push(message.unwrap());
        }
        let expected: Vec<WsMessage> = messages
            .iter()
            .map(|m| match m {
                Message::Text(text) => WsMessage::Text(format!("4{text}").into()),
                Message::Binary(bytes) => WsMessage::Binary(bytes.clone()),
            })
            .collect();
        assert_eq!(received, expected);
    }
    // Once the driver pulls, the engine keeps no message alive: the
    // encoder above can reuse its buffer.
    let message = Bytes::from(b"short".to_vec());
    h.server
        .send(h.now, &sid_a, Message::Binary(message.clone()))
        .unwrap();
    let _ = h.server.poll_ready();
    pull(&mut h, a.conn);
    assert!(message.is_unique());
    h.server.check_invariants();
}

#[test]
fn drained_sessions_are_reported_once_with_the_bytes_written() {
    let mut h = Harness::new(config());
    let (a, sid_a) = ws_session(&mut h);
    let (_b, sid_b) = ws_session(&mut h);
    // The open packets are the engine's own: nothing to report.
    assert_eq!(h.server.poll_drained(), None);
    for text in ["a", "bbbbbbbbbb"] {
        h.server
            .send(h.now, &sid_a, Message::Text(text.into()))
            .unwrap();
    }
    h.server
        .send(h.now, &sid_b, Message::Text("ccc".into()))
        .unwrap();
    // Nothing handed out yet.
    assert_eq!(h.server.poll_drained(), None);
    // The first frame out: the second (13 bytes framed) still waits, more
    // than the 11 bytes sent, so nothing counts as written yet.
    let Some(Transmit::Data(_)) = h.server.poll_transmit(a.conn) else {
        panic!("a frame")
    };
    assert_eq!(h.server.poll_drained(), None);
    pull(&mut h, a.conn);
    assert_eq!(h.server.poll_drained(), Some((sid_a.clone(), 11)));
    assert_eq!(h.server.poll_drained(), None);
    // Everything else, in the order the sessions were handed out.
    h.drain();
    assert_eq!(h.server.poll_drained(), Some((sid_b.clone(), 3)));
    assert_eq!(h.server.poll_drained(), None);
    // Long-polling: named when a GET takes the queue.
    let sid = h.open();
    assert_eq!(h.server.poll_drained(), None);
    for text in ["xy", "z"] {
        h.server
            .send(h.now, &sid, Message::Text(text.into()))
            .unwrap();
    }
    assert_eq!(h.server.poll_drained(), None);
    assert_eq!(h.poll(&sid).1.unwrap().text(), "4xy\x1e4z");
    assert_eq!(h.server.poll_drained(), Some((sid.clone(), 3)));
    // A session that ends is not named: its `Closed` settles it.
    h.server
        .send(h.now, &sid_b, Message::Text("d".into()))
        .unwrap();
    h.server.close(h.now, &sid_b).unwrap();
    h.drain();
    assert_eq!(h.server.poll_drained(), None);
}

#[test]
fn drained_list_stays_bounded_when_nobody_drains_it() {
    let mut h = Harness::new(config());
    for _ in 0..300 {
        let (client, sid) = ws_session(&mut h);
        h.server
            .send(h.now, &sid, Message::Text("m".into()))
            .unwrap();
        h.drain();
        h.eof(client.conn);
        let polling = h.open();
        h.server
            .send(h.now, &polling, Message::Text("m".into()))
            .unwrap();
        let (get, _) = h.poll(&polling);
        h.server.close(h.now, &polling).unwrap();
        let (last_get, resp) = h.poll(&polling);
        assert_eq!(resp.unwrap().text(), "1");
        h.eof(get);
        h.eof(last_get);
        // Nothing is left alive, so the list must not keep growing.
        h.server.check_invariants();
    }
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

#[test]
fn ping_flood_from_a_peer_that_never_reads_stops_reading_at_the_soft_bound() {
    let soft = 256 * 1024;
    let mut h = harness_with_output_bound(soft);
    let (mut client, _sid) = ws_session(&mut h);
    let read = ping_flood_read(&mut client);
    // The peer reads nothing: nothing is pulled. The driver reads only
    // while the core wants it.
    let mut reads = 0;
    while h.server.wants_read(client.conn) {
        h.server.handle_read(h.now, client.conn, &read);
        reads += 1;
        let buffered = h.server.conn_buffered(client.conn).unwrap();
        assert!(
            buffered <= soft + read.len(),
            "{buffered} bytes owed after {reads} reads"
        );
        assert!(reads < 1000, "never paused");
    }
    assert!(h.server.conn_buffered(client.conn).unwrap() > soft);
    // Every pong is owed, in order, once the peer reads again.
    assert!(reads >= soft / read.len());
    h.drain();
    assert!(h.server.wants_read(client.conn), "readable once drained");
    let pongs = h.ws_recv(&mut client);
    assert!(pongs.is_empty(), "pongs are not messages: {pongs:?}");
    assert_eq!(h.server.conn_buffered(client.conn), Some(0));
    // Its queues give the burst's memory back.
    let (entries, bytes) = h.server.conn_capacity(client.conn).unwrap();
    assert!(
        entries <= crate::memory::KEEP_QUEUE_CAPACITY,
        "{entries} queue entries kept"
    );
    assert!(
        bytes <= 2 * crate::memory::KEEP_BUFFER_CAPACITY,
        "{bytes} buffer bytes kept"
    );
    assert_eq!(h.closed_events(), []);
}

#[test]
fn ping_flood_past_the_hard_bound_closes_the_session_as_slow_consumer() {
    let mut h = Harness::new(ServerConfig {
        ping_interval: Duration::from_secs(25),
        max_buffered_output: 64 * 1024,
        max_buffered_output_hard: 256 * 1024,
        ..ServerConfig::default()
    });
    let (mut client, sid) = ws_session(&mut h);
    let read = ping_flood_read(&mut client);
    // A driver that ignores `wants_read`.
    for _ in 0..8 {
        h.server.handle_read(h.now, client.conn, &read);
    }
    h.drain();
    assert_eq!(h.closed_events(), [(sid, CloseReason::SlowConsumer)]);
    assert!(h.closed.contains(&client.conn), "connection closed");
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn pipelined_posts_from_a_peer_that_never_reads_stop_at_the_soft_bound() {
    let soft = 16 * 1024;
    let mut h = harness_with_output_bound(soft);
    let sid = h.open();
    let conn = h.connect();
    let post = post_request(&sid, "4hello");
    let read: Vec<u8> = post.repeat(4096 / post.len()).into_bytes();
    let mut reads = 0;
    while h.server.wants_read(conn) {
        h.server.handle_read(h.now, conn, &read);
        reads += 1;
        // Each request's answer (`ok`) is owed to the peer.
        let buffered = h.server.conn_buffered(conn).unwrap();
        assert!(
            buffered <= soft + 2 * read.len(),
            "{buffered} after {reads}"
        );
        assert!(reads < 1000, "never paused");
    }
    h.drain();
    assert!(h.server.wants_read(conn), "readable once its answers left");
    let (entries, _) = h.server.conn_capacity(conn).unwrap();
    assert!(
        entries <= crate::memory::KEEP_QUEUE_CAPACITY,
        "{entries} queue entries kept"
    );
}

#[test]
fn a_post_connection_is_read_while_its_session_queue_is_over_the_soft_bound() {
    // The GET that drains the queue may come on the connection the POSTs
    // came on (a browser reuses its connections): pausing that connection
    // for the queue would stall the session until its slow-consumer end.
    let soft = 4 * 1024;
    let mut h = harness_with_output_bound(soft);
    let sid = h.open();
    let conn = h.connect();
    let post = post_request(&sid, "4x");
    h.feed(conn, post.as_bytes());
    assert_eq!(h.take_response(conn).unwrap().text(), "ok");
    h.server
        .send(h.now, &sid, Message::Text("y".repeat(2 * soft).into()))
        .unwrap();
    h.drain();
    assert!(
        h.server.wants_read(conn),
        "a GET may come on this connection"
    );
    let get =
        format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n");
    h.feed(conn, get.as_bytes());
    assert!(h.take_response(conn).unwrap().text().starts_with("4yyy"));
    assert_eq!(h.server.buffered(&sid), Some(0));
}
