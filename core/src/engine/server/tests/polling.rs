//! Long-polling: held GETs, POSTs, compression, requests from another HTTP stack.

use super::*;

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
