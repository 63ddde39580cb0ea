//! The client endpoint against hand-written server bytes.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::engine::*;
use crate::http::{self, Method, Request, Response, ServerConn};
use crate::ws::{accept_upgrade, WebSocket, WsConfig, WsMessage};

const OPEN_POLLING: &str =
    r#"0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#;
const OPEN_UPGRADE: &str = r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#;
const OPEN_WS: &str =
    r#"0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#;

/// The server side of one connection, parsed with the HTTP and WebSocket
/// codecs.
struct FakeConn {
    http: ServerConn,
    requests: VecDeque<Request>,
    ws: Option<WebSocket>,
    received: VecDeque<WsMessage>,
    closed_by_client: bool,
}

struct Harness {
    client: Client,
    start: Instant,
    now: Instant,
    conns: BTreeMap<ConnId, FakeConn>,
    events: Vec<ClientEvent>,
    /// Connect requests the harness does not answer automatically.
    manual_connect: bool,
    pending_connects: Vec<ConnId>,
}

fn config(transports: ClientTransports) -> ClientConfig {
    ClientConfig {
        transports,
        host: "example.com:3000".into(),
        ..ClientConfig::default()
    }
}

impl Harness {
    fn new(config: ClientConfig) -> Harness {
        Harness::with(config, false)
    }

    fn with(config: ClientConfig, manual_connect: bool) -> Harness {
        let start = Instant::now();
        let client = Client::new(config, Box::new(ChaCha8Rng::seed_from_u64(7)), start);
        let mut harness = Harness {
            client,
            start,
            now: start,
            conns: BTreeMap::new(),
            events: Vec::new(),
            manual_connect,
            pending_connects: Vec::new(),
        };
        harness.run();
        harness
    }

    fn run(&mut self) {
        loop {
            while let Some(event) = self.client.poll_event() {
                self.events.push(event);
            }
            let Some(action) = self.client.poll_action() else {
                break;
            };
            match action {
                ClientAction::Connect(conn) => {
                    self.conns.insert(
                        conn,
                        FakeConn {
                            http: ServerConn::new(http::Limits::default()),
                            requests: VecDeque::new(),
                            ws: None,
                            received: VecDeque::new(),
                            closed_by_client: false,
                        },
                    );
                    if self.manual_connect {
                        self.pending_connects.push(conn);
                    } else {
                        self.client.handle_connected(self.now, conn);
                    }
                }
                ClientAction::Data(conn, bytes) => self.server_read(conn, &bytes),
                ClientAction::Close(conn) => {
                    if let Some(fake) = self.conns.get_mut(&conn) {
                        fake.closed_by_client = true;
                    }
                }
            }
        }
    }

    fn server_read(&mut self, conn: ConnId, bytes: &[u8]) {
        let fake = self
            .conns
            .get_mut(&conn)
            .expect("data on a known connection");
        assert!(!fake.closed_by_client, "data after close");
        if let Some(ws) = &mut fake.ws {
            ws.receive(bytes);
            while let Some(message) = ws.poll_message() {
                fake.received
                    .push_back(message.expect("valid frames from the client"));
            }
            return;
        }
        fake.http.feed(bytes);
        while let Some(event) = fake
            .http
            .poll_request()
            .expect("valid HTTP from the client")
        {
            match event {
                http::ServerEvent::Request(request) => fake.requests.push_back(request),
                http::ServerEvent::Upgrade { request, leftover } => {
                    assert!(leftover.is_empty());
                    fake.requests.push_back(request);
                }
                http::ServerEvent::PeerClosed => {}
            }
        }
    }

    fn take_request(&mut self, conn: ConnId) -> Request {
        self.conns
            .get_mut(&conn)
            .and_then(|fake| fake.requests.pop_front())
            .unwrap_or_else(|| panic!("no request on {conn:?}"))
    }

    fn has_request(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|fake| !fake.requests.is_empty())
    }

    fn respond(&mut self, conn: ConnId, response: Response) {
        let mut out = BytesMut::new();
        let fake = self.conns.get_mut(&conn).unwrap();
        fake.http.write_response(&response, &mut out).unwrap();
        self.client.handle_read(self.now, conn, &out);
        self.run();
    }

    fn respond_text(&mut self, conn: ConnId, body: &str) {
        self.respond(
            conn,
            Response::new(200)
                .with_header("Content-Type", "text/plain; charset=UTF-8")
                .with_body(Bytes::copy_from_slice(body.as_bytes())),
        );
    }

    /// Answers the upgrade request waiting on `conn` with 101.
    fn accept_ws(&mut self, conn: ConnId) -> Request {
        let request = self.take_request(conn);
        let upgrade = accept_upgrade(request.headers.iter()).expect("a valid upgrade request");
        let mut response = Response::new(101);
        for (name, value) in upgrade.headers() {
            response = response.with_header(name, value.to_owned());
        }
        let mut out = BytesMut::new();
        let fake = self.conns.get_mut(&conn).unwrap();
        fake.http.write_response(&response, &mut out).unwrap();
        fake.ws = Some(WebSocket::server(WsConfig::default()));
        self.client.handle_read(self.now, conn, &out);
        self.run();
        request
    }

    fn ws_send(&mut self, conn: ConnId, text: &str) {
        let fake = self.conns.get_mut(&conn).unwrap();
        let ws = fake.ws.as_mut().unwrap();
        ws.send_text(text).unwrap();
        let bytes = ws.poll_transmit().unwrap();
        self.client.handle_read(self.now, conn, &bytes);
        self.run();
    }

    fn ws_received(&mut self, conn: ConnId) -> Vec<WsMessage> {
        self.conns
            .get_mut(&conn)
            .unwrap()
            .received
            .drain(..)
            .collect()
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
        self.run();
    }

    fn send(&mut self, message: Message) {
        self.client.send(self.now, message).unwrap();
        self.run();
    }

    fn take_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.events)
    }

    fn closed_by_client(&self, conn: ConnId) -> bool {
        self.conns[&conn].closed_by_client
    }

    fn conn_ids(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }

    /// Polling handshake on connection 0.
    fn open_polling(&mut self, open: &str) {
        let request = self.take_request(ConnId(0));
        assert!(request.target.contains("transport=polling"));
        self.respond_text(ConnId(0), open);
        let events = self.take_events();
        assert!(
            matches!(&events[..], [ClientEvent::Opened(_)]),
            "{events:?}"
        );
    }
}

fn text(s: &str) -> Message {
    Message::Text(s.into())
}

fn body_of(request: &Request) -> &str {
    std::str::from_utf8(&request.body).unwrap()
}

#[test]
fn polling_handshake_request_and_open() {
    let mut config = config(ClientTransports::Polling);
    config.query = vec![("token".into(), "x%20y".into())];
    config.headers = vec![("Authorization".into(), "Bearer t".into())];
    let mut h = Harness::new(config);
    assert_eq!(h.conn_ids(), vec![ConnId(0)]);
    assert_eq!(h.client.transport(), Some(Transport::Polling));
    let request = h.take_request(ConnId(0));
    assert_eq!(request.method, Method::Get);
    assert_eq!(request.path(), "/socket.io/");
    assert_eq!(request.query_param("EIO").as_deref(), Some("4"));
    assert_eq!(request.query_param("transport").as_deref(), Some("polling"));
    assert_eq!(request.query_param("token").as_deref(), Some("x y"));
    assert_eq!(request.query_param("t").map(|t| t.len()), Some(8));
    assert_eq!(request.query_param("sid"), None);
    assert_eq!(request.headers.get_str("host"), Some("example.com:3000"));
    assert_eq!(request.headers.get_str("authorization"), Some("Bearer t"));

    h.respond_text(ConnId(0), &format!("{OPEN_POLLING}\u{1e}4hello"));
    let events = h.take_events();
    let [ClientEvent::Opened(handshake), ClientEvent::Message(message)] = &events[..] else {
        panic!("{events:?}");
    };
    assert_eq!(&*handshake.sid, "abc");
    assert_eq!(message, &text("hello"));
    assert_eq!(h.client.sid(), Some("abc"));
    // The next GET goes out at once, on the same (kept-alive) connection.
    let request = h.take_request(ConnId(0));
    assert_eq!(request.query_param("sid").as_deref(), Some("abc"));
    assert_eq!(h.conn_ids(), vec![ConnId(0)]);
    // Without upgrades advertised, no probe.
    assert!(h.client.poll_action().is_none());
}

#[test]
fn cache_buster_changes_between_requests() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    let first = h.take_request(ConnId(0));
    h.respond_text(ConnId(0), OPEN_POLLING);
    let second = h.take_request(ConnId(0));
    assert_ne!(first.query_param("t"), second.query_param("t"));
}

#[test]
fn handshake_http_error_is_a_transport_error() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.take_request(ConnId(0));
    h.respond(
        ConnId(0),
        Response::new(400)
            .with_body(&br#"{"code":5,"message":"Unsupported protocol version"}"#[..]),
    );
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
        ),
        "{events:?}"
    );
    assert!(h.closed_by_client(ConnId(0)));
    assert_eq!(h.client.transport(), None);
    assert_eq!(h.client.poll_timeout(), None);
    assert_eq!(
        h.client.send(h.now, text("x")),
        Err(ClientSendError::NotOpen)
    );
}

#[test]
fn first_packet_must_be_open() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.take_request(ConnId(0));
    h.respond_text(ConnId(0), "4hello");
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
        ),
        "{events:?}"
    );
}

#[test]
fn garbage_handshake_is_a_transport_error() {
    for body in ["0{", "0{\"sid\":1}", "\u{1e}", "9", "b!!"] {
        let mut h = Harness::new(config(ClientTransports::Polling));
        h.take_request(ConnId(0));
        h.respond_text(ConnId(0), body);
        let events = h.take_events();
        assert!(
            matches!(
                &events[..],
                [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
            ),
            "{body:?}: {events:?}"
        );
    }
}

#[test]
fn response_fed_byte_by_byte() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.take_request(ConnId(0));
    let body = format!("{OPEN_POLLING}\u{1e}4é\u{1e}bAQID");
    let raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for byte in raw.as_bytes() {
        h.client.handle_read(h.now, ConnId(0), &[*byte]);
        h.run();
    }
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Opened(_), ClientEvent::Message(Message::Text(t)), ClientEvent::Message(Message::Binary(b))]
                if &**t == "é" && b[..] == [1, 2, 3]
        ),
        "{events:?}"
    );
}

#[test]
fn chunked_response_body() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.take_request(ConnId(0));
    let raw = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{OPEN_POLLING}\r\n0\r\n\r\n",
        OPEN_POLLING.len()
    );
    h.client.handle_read(h.now, ConnId(0), raw.as_bytes());
    h.run();
    assert!(matches!(&h.take_events()[..], [ClientEvent::Opened(_)]));
}

#[test]
fn messages_are_queued_until_open_then_batched_in_one_post() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.send(text("early"));
    h.send(Message::Binary(Bytes::from_static(&[1, 2, 3])));
    assert_eq!(h.conn_ids(), vec![ConnId(0)], "nothing sent before open");
    h.open_polling(OPEN_POLLING);
    // A second connection carries the POST.
    assert_eq!(h.conn_ids(), vec![ConnId(0), ConnId(1)]);
    let post = h.take_request(ConnId(1));
    assert_eq!(post.method, Method::Post);
    assert_eq!(post.query_param("sid").as_deref(), Some("abc"));
    assert_eq!(
        post.headers.get_str("content-type"),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(body_of(&post), "4early\u{1e}bAQID");
    // One POST at a time: the rest waits for "ok".
    h.send(text("a"));
    h.send(text("b"));
    assert!(!h.has_request(ConnId(1)));
    h.respond_text(ConnId(1), "ok");
    let post = h.take_request(ConnId(1));
    assert_eq!(body_of(&post), "4a\u{1e}4b");
    assert_eq!(h.conn_ids().len(), 2, "keep-alive reuse");
}

#[test]
fn post_batches_are_bounded_by_max_payload() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    let open =
        r#"0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":20}"#;
    h.open_polling(open);
    h.client.send(h.now, text("1234567")).unwrap(); // 8 bytes encoded: fits alone
                                                    // Queue more while the first POST is in flight.
    for _ in 0..4 {
        h.client.send(h.now, text("1234567")).unwrap();
    }
    assert_eq!(
        h.client.send(h.now, text(&"x".repeat(20))),
        Err(ClientSendError::TooLarge)
    );
    h.run();
    let mut bodies = Vec::new();
    while h.has_request(ConnId(1)) {
        let post = h.take_request(ConnId(1));
        assert!(post.body.len() <= 20, "{}", body_of(&post));
        bodies.push(body_of(&post).to_owned());
        h.respond_text(ConnId(1), "ok");
    }
    assert_eq!(
        bodies,
        vec![
            "41234567\u{1e}41234567",
            "41234567\u{1e}41234567",
            "41234567"
        ]
    );
}

#[test]
fn send_queue_is_bounded() {
    let mut config = config(ClientTransports::Polling);
    config.max_queued_messages = 3;
    let mut h = Harness::new(config);
    for _ in 0..3 {
        h.client.send(h.now, text("x")).unwrap();
    }
    assert_eq!(
        h.client.send(h.now, text("x")),
        Err(ClientSendError::QueueFull)
    );
    assert_eq!(h.client.queued_messages(), 3);
    assert_eq!(
        h.client.send(h.now, text("a\u{1e}b")),
        Err(ClientSendError::QueueFull)
    );
}

#[test]
fn record_separator_refused_over_polling() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    assert_eq!(
        h.client.send(h.now, text("a\u{1e}b")),
        Err(ClientSendError::RecordSeparator)
    );
}

#[test]
fn ping_is_answered_and_keeps_the_session_alive() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_POLLING);
    // interval 300 + timeout 200 = 500 ms from the open.
    assert_eq!(
        h.client.poll_timeout(),
        Some(h.start + Duration::from_millis(500))
    );
    for _ in 0..10 {
        h.advance(Duration::from_millis(300));
        h.take_request(ConnId(0));
        h.respond_text(ConnId(0), "2");
        assert_eq!(
            h.client.poll_timeout(),
            Some(h.now + Duration::from_millis(500))
        );
        let post = h.take_request(ConnId(1));
        assert_eq!(body_of(&post), "3");
        h.respond_text(ConnId(1), "ok");
    }
    assert!(h.take_events().is_empty());
    // Now the server goes quiet.
    h.advance(Duration::from_millis(499));
    assert!(h.take_events().is_empty());
    h.advance(Duration::from_millis(1));
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::PingTimeout)]
    ));
    assert!(h.closed_by_client(ConnId(0)) && h.closed_by_client(ConnId(1)));
}

#[test]
fn several_pings_get_one_pong_per_post() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_POLLING);
    h.take_request(ConnId(0));
    h.send(text("m"));
    h.respond_text(ConnId(0), "2\u{1e}2\u{1e}2");
    h.take_request(ConnId(0));
    h.respond_text(ConnId(0), "2");
    assert_eq!(body_of(&h.take_request(ConnId(1))), "4m");
    h.respond_text(ConnId(1), "ok");
    assert_eq!(body_of(&h.take_request(ConnId(1))), "3");
}

#[test]
fn server_close_packet_is_transport_close() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_POLLING);
    h.take_request(ConnId(0));
    h.respond_text(ConnId(0), "4bye\u{1e}1\u{1e}4after");
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [
                ClientEvent::Message(_),
                ClientEvent::Closed(ClientCloseReason::TransportClose)
            ]
        ),
        "{events:?}"
    );
}

#[test]
fn polling_error_status_after_open_ends_the_session() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_POLLING);
    h.take_request(ConnId(0));
    h.respond(ConnId(0), Response::new(400).with_body(&b"{}"[..]));
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
    ));
}

#[test]
fn connection_closing_response_opens_a_new_connection() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.take_request(ConnId(0));
    h.respond(
        ConnId(0),
        Response::new(200)
            .with_header("Connection", "close")
            .with_body(Bytes::from_static(OPEN_POLLING.as_bytes())),
    );
    assert!(h.closed_by_client(ConnId(0)));
    // The next GET goes on a new connection.
    let request = h.take_request(ConnId(1));
    assert_eq!(request.query_param("sid").as_deref(), Some("abc"));
}

#[test]
fn idle_connection_closed_by_server_is_replaced() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_POLLING);
    h.send(text("a"));
    h.take_request(ConnId(1));
    h.respond_text(ConnId(1), "ok");
    // The server drops the idle POST connection.
    h.client.handle_eof(h.now, ConnId(1));
    h.run();
    assert!(h.take_events().is_empty());
    h.send(text("b"));
    assert_eq!(body_of(&h.take_request(ConnId(2))), "4b");
}

#[test]
fn dropped_poll_is_transport_close() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_POLLING);
    h.client.handle_eof(h.now, ConnId(0));
    h.run();
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportClose)]
    ));
}

#[test]
fn failed_connect_is_a_transport_error() {
    let mut config = config(ClientTransports::Polling);
    config.connect_timeout = Duration::from_secs(5);
    let mut h = Harness::with(config, true);
    assert_eq!(h.pending_connects, vec![ConnId(0)]);
    h.client.handle_eof(h.now, ConnId(0));
    h.run();
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
    ));
}

#[test]
fn connect_timeout() {
    let mut config = config(ClientTransports::Polling);
    config.connect_timeout = Duration::from_secs(5);
    let mut h = Harness::new(config);
    assert_eq!(
        h.client.poll_timeout(),
        Some(h.start + Duration::from_secs(5))
    );
    h.advance(Duration::from_millis(4999));
    assert!(h.take_events().is_empty());
    h.advance(Duration::from_millis(1));
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::ConnectTimeout)]
    ));
    assert!(h.closed_by_client(ConnId(0)));
}

#[test]
fn body_over_the_limit_is_refused() {
    let mut config = config(ClientTransports::Polling);
    config.max_payload = 30;
    let mut h = Harness::new(config);
    h.take_request(ConnId(0));
    h.respond_text(ConnId(0), &format!("{OPEN_POLLING}{}", "x".repeat(100)));
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
    ));
}

#[test]
fn close_over_polling_waits_for_the_post_in_flight() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_POLLING);
    h.send(text("a"));
    assert_eq!(body_of(&h.take_request(ConnId(1))), "4a");
    h.send(text("b"));
    h.send(text("c"));
    h.client.close(h.now);
    h.run();
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::Closed)]
    ));
    assert_eq!(
        h.client.send(h.now, text("x")),
        Err(ClientSendError::NotOpen)
    );
    assert!(!h.has_request(ConnId(1)));
    assert!(
        !h.closed_by_client(ConnId(0)),
        "the GET stays until the close is acknowledged"
    );
    h.respond_text(ConnId(1), "ok");
    assert_eq!(body_of(&h.take_request(ConnId(1))), "4b\u{1e}4c\u{1e}1");
    assert!(!h.closed_by_client(ConnId(1)));
    // The server answers the pending GET with a noop, then the POST.
    h.take_request(ConnId(0));
    h.respond_text(ConnId(0), "6");
    assert!(!h.has_request(ConnId(0)), "no new poll after close");
    h.respond_text(ConnId(1), "ok");
    assert!(h.closed_by_client(ConnId(0)) && h.closed_by_client(ConnId(1)));
    assert_eq!(h.client.poll_timeout(), None);
    assert!(h.take_events().is_empty());
}

#[test]
fn close_over_polling_opens_a_post_connection_if_needed() {
    let mut h = Harness::with(config(ClientTransports::Polling), true);
    h.client.handle_connected(h.now, ConnId(0));
    h.run();
    h.open_polling(OPEN_POLLING);
    h.client.close(h.now);
    h.run();
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::Closed)]
    ));
    assert_eq!(h.pending_connects, vec![ConnId(0), ConnId(1)]);
    h.client.handle_connected(h.now, ConnId(1));
    h.run();
    assert_eq!(body_of(&h.take_request(ConnId(1))), "1");
    h.respond_text(ConnId(1), "ok");
    assert!(h.closed_by_client(ConnId(0)) && h.closed_by_client(ConnId(1)));
}

#[test]
fn unacknowledged_close_gives_up_after_ping_timeout() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_POLLING);
    h.client.close(h.now);
    h.run();
    assert_eq!(body_of(&h.take_request(ConnId(1))), "1");
    assert_eq!(
        h.client.poll_timeout(),
        Some(h.now + Duration::from_millis(200))
    );
    h.advance(Duration::from_millis(199));
    assert!(!h.closed_by_client(ConnId(1)));
    h.advance(Duration::from_millis(1));
    assert!(h.closed_by_client(ConnId(0)) && h.closed_by_client(ConnId(1)));
    assert_eq!(h.client.poll_timeout(), None);
    assert_eq!(h.take_events().len(), 1);
}

#[test]
fn close_before_open() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.client.close(h.now);
    h.run();
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::Closed)]
    ));
    assert!(h.closed_by_client(ConnId(0)));
    // Nothing more happens.
    h.client.close(h.now);
    h.client
        .handle_read(h.now, ConnId(0), b"HTTP/1.1 200 OK\r\n");
    h.client.handle_timeout(h.now + Duration::from_secs(100));
    h.run();
    assert!(h.take_events().is_empty());
}

// ----- WebSocket only -----

fn open_ws(h: &mut Harness) -> Request {
    let request = h.accept_ws(ConnId(0));
    h.ws_send(ConnId(0), OPEN_WS);
    let events = h.take_events();
    assert!(
        matches!(&events[..], [ClientEvent::Opened(_)]),
        "{events:?}"
    );
    request
}

#[test]
fn websocket_handshake_and_open() {
    let mut h = Harness::new(config(ClientTransports::WebSocket));
    assert_eq!(h.client.transport(), Some(Transport::WebSocket));
    let request = open_ws(&mut h);
    assert_eq!(request.path(), "/socket.io/");
    assert_eq!(request.query_param("EIO").as_deref(), Some("4"));
    assert_eq!(
        request.query_param("transport").as_deref(),
        Some("websocket")
    );
    assert_eq!(request.query_param("sid"), None);
    assert_eq!(request.headers.get_str("host"), Some("example.com:3000"));
    assert!(request.is_websocket_upgrade());
    assert_eq!(h.client.sid(), Some("abc"));
    assert_eq!(h.conn_ids(), vec![ConnId(0)]);
}

#[test]
fn websocket_messages_ping_and_close() {
    let mut h = Harness::new(config(ClientTransports::WebSocket));
    h.send(text("early"));
    open_ws(&mut h);
    assert_eq!(
        h.ws_received(ConnId(0)),
        vec![WsMessage::Text("4early".into())]
    );
    h.send(Message::Binary(Bytes::from_static(&[0, 1])));
    h.send(text("x"));
    assert_eq!(
        h.ws_received(ConnId(0)),
        vec![
            WsMessage::Binary(Bytes::from_static(&[0, 1])),
            WsMessage::Text("4x".into())
        ]
    );
    h.ws_send(ConnId(0), "4hi");
    h.ws_send(ConnId(0), "2");
    assert_eq!(h.ws_received(ConnId(0)), vec![WsMessage::Text("3".into())]);
    let fake = h.conns.get_mut(&ConnId(0)).unwrap();
    let ws = fake.ws.as_mut().unwrap();
    ws.send_binary(&[9]).unwrap();
    let bytes = ws.poll_transmit().unwrap();
    h.client.handle_read(h.now, ConnId(0), &bytes);
    h.run();
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Message(Message::Text(t)), ClientEvent::Message(Message::Binary(b))]
                if &**t == "hi" && b[..] == [9]
        ),
        "{events:?}"
    );
    h.client.close(h.now);
    h.run();
    let received = h.ws_received(ConnId(0));
    assert_eq!(received[0], WsMessage::Text("1".into()));
    assert!(matches!(received[1], WsMessage::Close(_)));
    assert!(h.closed_by_client(ConnId(0)));
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::Closed)]
    ));
}

#[test]
fn websocket_bad_accept_is_a_transport_error() {
    let mut h = Harness::new(config(ClientTransports::WebSocket));
    h.take_request(ConnId(0));
    let raw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n";
    h.client.handle_read(h.now, ConnId(0), raw.as_bytes());
    h.run();
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
    ));
    assert!(h.closed_by_client(ConnId(0)));
}

#[test]
fn websocket_refused_is_a_transport_error() {
    let mut h = Harness::new(config(ClientTransports::WebSocket));
    h.take_request(ConnId(0));
    h.respond(ConnId(0), Response::new(400).with_body(&b"{}"[..]));
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
    ));
}

#[test]
fn websocket_open_frame_in_the_same_read_as_the_101() {
    let mut h = Harness::new(config(ClientTransports::WebSocket));
    let request = h.take_request(ConnId(0));
    let upgrade = accept_upgrade(request.headers.iter()).unwrap();
    let mut raw = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        upgrade.accept()
    )
    .into_bytes();
    let mut server = WebSocket::server(WsConfig::default());
    server.send_text(OPEN_WS).unwrap();
    server.send_text("4hello").unwrap();
    raw.extend_from_slice(&server.poll_transmit().unwrap());
    h.client.handle_read(h.now, ConnId(0), &raw);
    h.run();
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Opened(_), ClientEvent::Message(_)]
        ),
        "{events:?}"
    );
}

#[test]
fn websocket_server_close_and_eof() {
    let mut h = Harness::new(config(ClientTransports::WebSocket));
    open_ws(&mut h);
    h.ws_send(ConnId(0), "1");
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportClose)]
    ));

    let mut h = Harness::new(config(ClientTransports::WebSocket));
    open_ws(&mut h);
    h.client.handle_eof(h.now, ConnId(0));
    h.run();
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportClose)]
    ));

    let mut h = Harness::new(config(ClientTransports::WebSocket));
    open_ws(&mut h);
    h.client.handle_read(h.now, ConnId(0), &[0x8f, 0x00]); // reserved opcode
    h.run();
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
    ));
}

#[test]
fn websocket_message_limit() {
    let mut config = config(ClientTransports::WebSocket);
    config.max_payload = 10;
    let mut h = Harness::new(config);
    h.accept_ws(ConnId(0));
    h.ws_send(ConnId(0), OPEN_WS);
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::TransportError(_))]
    ));
}

// ----- upgrade -----

#[test]
fn upgrade_probe_pause_and_switch() {
    let mut h = Harness::new(config(ClientTransports::Upgrade));
    h.open_polling(OPEN_UPGRADE);
    // GET pending on 0, probe connecting on 1.
    assert!(h.has_request(ConnId(0)));
    let probe = h.accept_ws(ConnId(1));
    assert_eq!(probe.query_param("sid").as_deref(), Some("abc"));
    assert_eq!(probe.query_param("transport").as_deref(), Some("websocket"));
    assert_eq!(
        h.ws_received(ConnId(1)),
        vec![WsMessage::Text("2probe".into())]
    );
    // Polling still carries messages during the probe.
    h.send(text("before"));
    assert_eq!(body_of(&h.take_request(ConnId(2))), "4before");
    h.ws_send(ConnId(1), "3probe");
    // Paused: the POST is in flight, the GET too. New messages wait.
    h.send(text("during"));
    assert!(h.ws_received(ConnId(1)).is_empty());
    h.respond_text(ConnId(2), "ok");
    assert!(!h.has_request(ConnId(2)));
    h.take_request(ConnId(0));
    h.respond_text(ConnId(0), "4last polled\u{1e}6");
    let events = h.take_events();
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Message(Message::Text(t)), ClientEvent::Upgraded] if &**t == "last polled"
        ),
        "{events:?}"
    );
    assert_eq!(
        h.ws_received(ConnId(1)),
        vec![
            WsMessage::Text("5".into()),
            WsMessage::Text("4during".into())
        ]
    );
    assert!(h.closed_by_client(ConnId(0)) && h.closed_by_client(ConnId(2)));
    assert!(!h.has_request(ConnId(0)));
    assert_eq!(h.client.transport(), Some(Transport::WebSocket));
    h.send(text("after"));
    assert_eq!(
        h.ws_received(ConnId(1)),
        vec![WsMessage::Text("4after".into())]
    );
    h.ws_send(ConnId(1), "2");
    assert_eq!(h.ws_received(ConnId(1)), vec![WsMessage::Text("3".into())]);
}

#[test]
fn upgrade_probe_refused_stays_on_polling() {
    let mut h = Harness::new(config(ClientTransports::Upgrade));
    h.open_polling(OPEN_UPGRADE);
    h.take_request(ConnId(1));
    h.respond(ConnId(1), Response::new(400).with_body(&b"{}"[..]));
    assert!(h.take_events().is_empty());
    assert!(h.closed_by_client(ConnId(1)));
    h.take_request(ConnId(0));
    h.respond_text(ConnId(0), "4still polling");
    assert_eq!(h.take_events().len(), 1);
    assert!(h.has_request(ConnId(0)));
    assert_eq!(h.client.transport(), Some(Transport::Polling));
}

#[test]
fn upgrade_probe_wrong_answer_stays_on_polling() {
    let mut h = Harness::new(config(ClientTransports::Upgrade));
    h.open_polling(OPEN_UPGRADE);
    h.accept_ws(ConnId(1));
    h.ws_send(ConnId(1), "3nope");
    assert!(h.closed_by_client(ConnId(1)));
    assert!(h.take_events().is_empty());
    h.send(text("x"));
    assert_eq!(body_of(&h.take_request(ConnId(2))), "4x");
}

#[test]
fn upgrade_probe_dies_while_pausing_resumes_polling() {
    let mut h = Harness::new(config(ClientTransports::Upgrade));
    h.open_polling(OPEN_UPGRADE);
    h.accept_ws(ConnId(1));
    h.ws_send(ConnId(1), "3probe");
    h.client.handle_eof(h.now, ConnId(1));
    h.run();
    h.take_request(ConnId(0));
    h.respond_text(ConnId(0), "6");
    assert!(h.has_request(ConnId(0)), "polling resumed");
    assert!(h.take_events().is_empty());
}

#[test]
fn upgrade_not_tried_when_polling_only() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_UPGRADE);
    assert_eq!(h.conn_ids(), vec![ConnId(0)]);
}

#[test]
fn close_during_upgrade() {
    let mut h = Harness::new(config(ClientTransports::Upgrade));
    h.open_polling(OPEN_UPGRADE);
    h.accept_ws(ConnId(1));
    h.manual_connect = true;
    h.client.close(h.now);
    h.run();
    assert!(h.closed_by_client(ConnId(1)));
    assert!(matches!(
        &h.take_events()[..],
        [ClientEvent::Closed(ClientCloseReason::Closed)]
    ));
}

#[test]
fn one_get_outstanding_at_a_time() {
    let mut h = Harness::new(config(ClientTransports::Polling));
    h.open_polling(OPEN_POLLING);
    let gets = |h: &mut Harness| {
        let mut count = 0;
        for conn in h.conn_ids() {
            while h.has_request(conn) {
                let request = h.take_request(conn);
                if request.method == Method::Get {
                    count += 1;
                } else {
                    h.respond_text(conn, "ok");
                }
            }
        }
        count
    };
    // The GET that follows the handshake, and no other while it waits,
    // whatever is sent and however long it takes.
    let request_conn = ConnId(0);
    assert_eq!(gets(&mut h), 1);
    h.send(text("a"));
    h.advance(Duration::from_millis(100));
    h.send(text("b"));
    assert_eq!(gets(&mut h), 0);
    // Once it is answered, exactly one new GET goes out.
    h.respond_text(request_conn, "4x");
    assert_eq!(gets(&mut h), 1);
    assert_eq!(gets(&mut h), 0);
}

#[test]
fn same_seed_same_bytes() {
    // Randomness (cache busters, WebSocket keys) comes only from the seeded
    // generator: two clients with the same seed write the same bytes.
    let run = || {
        let mut h = Harness::new(config(ClientTransports::Upgrade));
        let first = h.take_request(ConnId(0));
        h.respond_text(ConnId(0), OPEN_UPGRADE);
        let mut requests = vec![first.target.to_string()];
        for conn in h.conn_ids() {
            while h.has_request(conn) {
                let request = h.take_request(conn);
                requests.push(format!(
                    "{} {:?}",
                    request.target,
                    request.headers.get_str("sec-websocket-key")
                ));
            }
        }
        requests
    };
    let (a, b) = (run(), run());
    assert!(a.len() >= 3, "{a:?}");
    assert_eq!(a, b);
}
