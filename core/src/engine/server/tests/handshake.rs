//! Opening sessions: the polling and WebSocket handshakes, error codes, CORS, cookies, options.

use super::*;

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
fn server_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Server>();
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
