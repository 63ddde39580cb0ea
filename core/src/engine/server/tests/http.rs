//! HTTP connections: keep-alive, pipelining, partial input, idle and bad connections.

use super::*;

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
