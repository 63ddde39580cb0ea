use super::*;
use crate::http::{Headers, Method};
use proptest::prelude::*;

/// Feeds `chunks` one by one (then EOF if asked), polling after each, and
/// answers every request with `200 ok` so that pipelined requests proceed.
/// Returns the events and errors in order, plus everything written.
fn drive(
    conn: &mut ServerConn,
    chunks: &[&[u8]],
    eof: bool,
) -> (Vec<Result<ServerEvent, HttpError>>, BytesMut) {
    let mut events = Vec::new();
    let mut out = BytesMut::new();
    let poll_all = |conn: &mut ServerConn, events: &mut Vec<_>, out: &mut BytesMut| loop {
        match conn.poll_request() {
            Ok(Some(event)) => {
                if matches!(event, ServerEvent::Request(_)) {
                    let response = Response::new(200).with_body("ok");
                    conn.write_response(&response, out).unwrap();
                }
                events.push(Ok(event));
            }
            Ok(None) => break,
            Err(err) => {
                events.push(Err(err));
                break;
            }
        }
    };
    for chunk in chunks {
        conn.feed(chunk);
        poll_all(conn, &mut events, &mut out);
    }
    if eof {
        conn.feed_eof();
        poll_all(conn, &mut events, &mut out);
    }
    (events, out)
}

fn events_of(wire: &[u8]) -> Vec<Result<ServerEvent, HttpError>> {
    drive(&mut ServerConn::default(), &[wire], true).0
}

fn single_request(wire: &[u8]) -> Request {
    let mut conn = ServerConn::default();
    conn.feed(wire);
    match conn.poll_request() {
        Ok(Some(ServerEvent::Request(request))) => request,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn first_error(wire: &[u8]) -> HttpError {
    let mut conn = ServerConn::default();
    conn.feed(wire);
    loop {
        match conn.poll_request() {
            Err(err) => return err,
            Ok(Some(ServerEvent::Request(_))) => {
                conn.write_response(&Response::new(200), &mut BytesMut::new())
                    .unwrap();
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

#[test]
fn polling_get() {
    let request = single_request(
        b"GET /socket.io/?EIO=4&transport=polling&t=N8hyd6w HTTP/1.1\r\nHost: localhost:3000\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(request.method, Method::Get);
    assert_eq!(request.version, Version::Http11);
    assert_eq!(request.path(), "/socket.io/");
    assert_eq!(request.query_param("EIO").as_deref(), Some("4"));
    assert_eq!(request.query_param("transport").as_deref(), Some("polling"));
    assert_eq!(request.query_param("t").as_deref(), Some("N8hyd6w"));
    assert_eq!(request.headers.get_str("host"), Some("localhost:3000"));
    assert_eq!(request.headers.len(), 2);
    assert!(request.body.is_empty());
}

#[test]
fn post_with_content_length_and_response() {
    let mut conn = ServerConn::default();
    conn.feed(b"POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n4hel");
    assert_eq!(conn.poll_request(), Ok(None));
    assert!(!conn.awaiting_response());
    conn.feed(b"lo\x1e");
    let Ok(Some(ServerEvent::Request(request))) = conn.poll_request() else {
        panic!()
    };
    assert_eq!(request.method, Method::Post);
    assert_eq!(&request.body[..], b"4hello\x1e");
    assert!(conn.awaiting_response());
    let mut out = BytesMut::new();
    let response = Response::new(200)
        .with_header("Content-Type", "text/html")
        .with_body("ok");
    assert_eq!(
        conn.write_response(&response, &mut out),
        Ok(AfterResponse::KeepAlive)
    );
    assert_eq!(
        &out[..],
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok"
    );
    assert!(!conn.awaiting_response());
    assert!(!conn.is_closed());
}

#[test]
fn byte_by_byte_equals_whole() {
    let wire: &[u8] = b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n";
    let whole = events_of(wire);
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    let (split, _) = drive(&mut ServerConn::default(), &bytes, true);
    assert_eq!(whole, split);
    assert_eq!(whole.len(), 3);
    assert_eq!(whole[2], Ok(ServerEvent::PeerClosed));
}

#[test]
fn pipelined_requests_wait_for_responses() {
    let mut conn = ServerConn::default();
    conn.feed(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nPOST /3 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx");
    let mut out = BytesMut::new();
    for path in ["/1", "/2", "/3"] {
        let Ok(Some(ServerEvent::Request(request))) = conn.poll_request() else {
            panic!()
        };
        assert_eq!(request.path(), path);
        // Paused until answered.
        assert_eq!(conn.poll_request(), Ok(None));
        conn.write_response(&Response::new(204), &mut out).unwrap();
    }
    assert_eq!(conn.poll_request(), Ok(None));
    assert_eq!(out.windows(12).filter(|w| w == b"HTTP/1.1 204").count(), 3);
    // 204 carries no Content-Length.
    assert!(!out
        .windows(14)
        .any(|w| w.eq_ignore_ascii_case(b"content-length")));
}

#[test]
fn blank_lines_between_requests_are_ignored() {
    let events = events_of(
        b"\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    );
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events[..2]
        .iter()
        .all(|e| matches!(e, Ok(ServerEvent::Request(_)))));
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let request = single_request(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;foo=bar;baz=\"q u\"\r\nhello\r\n1 ; x\r\n \r\n5\r\nworld\r\n0;last\r\nExpires: never\r\nX-Checksum: 1\r\n\r\n",
    );
    assert_eq!(&request.body[..], b"hello world");
    let request = single_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert!(request.body.is_empty());
}

#[test]
fn keep_alive_rules() {
    // HTTP/1.1 default: keep-alive, no Connection header written.
    let (_, out) = drive(
        &mut ServerConn::default(),
        &[b"GET / HTTP/1.1\r\n\r\n"],
        false,
    );
    assert!(!out.windows(10).any(|w| w == b"Connection"));

    // HTTP/1.1 with Connection: close.
    let mut conn = ServerConn::default();
    conn.feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /ignored HTTP/1.1\r\n\r\n");
    assert!(matches!(
        conn.poll_request(),
        Ok(Some(ServerEvent::Request(_)))
    ));
    assert!(conn.will_close());
    let mut out = BytesMut::new();
    assert_eq!(
        conn.write_response(&Response::new(200), &mut out),
        Ok(AfterResponse::Close)
    );
    assert!(out.windows(19).any(|w| w == b"Connection: close\r\n"));
    assert!(conn.is_closed());
    assert_eq!(conn.poll_request(), Ok(None));
    assert_eq!(
        conn.write_response(&Response::new(200), &mut out),
        Err(UsageError::ConnectionClosed)
    );

    // HTTP/1.0 default: close.
    let mut conn = ServerConn::default();
    conn.feed(b"GET / HTTP/1.0\r\n\r\n");
    let Ok(Some(ServerEvent::Request(request))) = conn.poll_request() else {
        panic!()
    };
    assert_eq!(request.version, Version::Http10);
    let mut out = BytesMut::new();
    assert_eq!(
        conn.write_response(&Response::new(200), &mut out),
        Ok(AfterResponse::Close)
    );
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\nConnection: close\r\n"));

    // HTTP/1.0 with keep-alive: kept, and said so.
    let mut conn = ServerConn::default();
    conn.feed(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(matches!(
        conn.poll_request(),
        Ok(Some(ServerEvent::Request(_)))
    ));
    let mut out = BytesMut::new();
    assert_eq!(
        conn.write_response(&Response::new(200), &mut out),
        Ok(AfterResponse::KeepAlive)
    );
    assert!(out.windows(24).any(|w| w == b"Connection: keep-alive\r\n"));

    // The application closing with its own header.
    let mut conn = ServerConn::default();
    conn.feed(b"GET / HTTP/1.1\r\n\r\n");
    conn.poll_request().unwrap();
    let mut out = BytesMut::new();
    let response = Response::new(400).with_header("Connection", "close");
    assert_eq!(
        conn.write_response(&response, &mut out),
        Ok(AfterResponse::Close)
    );
    assert_eq!(out.windows(10).filter(|w| w == b"Connection").count(), 1);
}

#[test]
fn head_too_large_is_bounded() {
    let limits = Limits {
        max_head_size: 1024,
        ..Limits::default()
    };
    let mut conn = ServerConn::new(limits);
    conn.feed(b"GET / HTTP/1.1\r\n");
    let filler = [b'a'; 100];
    let mut fed = 16;
    loop {
        conn.feed(b"X-Filler: ");
        conn.feed(&filler);
        fed += 110;
        match conn.poll_request() {
            Ok(None) => assert!(fed <= 1024 + 110, "kept buffering past the limit"),
            Err(err) => {
                assert_eq!(err, HttpError::HeadTooLarge);
                assert_eq!(err.status_code(), 431);
                break;
            }
            Ok(Some(event)) => panic!("{event:?}"),
        }
    }
    assert!(fed <= 1024 + 110);
    // The connection fails for good; data is no longer kept.
    conn.feed(&[0; 4096]);
    assert_eq!(conn.take_buffered().len(), 0);
    assert!(conn.is_closed());
    // One error response may still be written, and it closes.
    let mut out = BytesMut::new();
    let response = HttpError::HeadTooLarge.to_response();
    assert_eq!(
        conn.write_response(&response, &mut out),
        Ok(AfterResponse::Close)
    );
    assert!(out.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_eq!(
        conn.write_response(&response, &mut out),
        Err(UsageError::ConnectionClosed)
    );

    // A complete head larger than the limit, fed at once.
    let mut wire = b"GET / HTTP/1.1\r\nX: ".to_vec();
    wire.extend_from_slice(&[b'a'; 2000]);
    wire.extend_from_slice(b"\r\n\r\n");
    let mut conn = ServerConn::new(Limits {
        max_head_size: 1024,
        ..Limits::default()
    });
    conn.feed(&wire);
    assert_eq!(conn.poll_request(), Err(HttpError::HeadTooLarge));
}

#[test]
fn too_many_headers() {
    let mut conn = ServerConn::new(Limits {
        max_headers: 3,
        ..Limits::default()
    });
    conn.feed(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
    let err = conn.poll_request().unwrap_err();
    assert_eq!(err, HttpError::TooManyHeaders);
    assert_eq!(err.status_code(), 431);
}

#[test]
fn body_too_large() {
    let limits = Limits {
        max_body_size: 10,
        ..Limits::default()
    };
    // Refused from the declared length, before the body arrives.
    let mut conn = ServerConn::new(limits.clone());
    conn.feed(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
    let err = conn.poll_request().unwrap_err();
    assert_eq!(
        (err.clone(), err.status_code()),
        (HttpError::BodyTooLarge, 413)
    );
    let mut out = BytesMut::new();
    conn.write_response(&err.to_response(), &mut out).unwrap();
    assert!(out.starts_with(b"HTTP/1.1 413 Payload Too Large\r\n"));

    // Exactly at the limit is fine.
    let mut conn = ServerConn::new(limits.clone());
    conn.feed(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789");
    assert!(matches!(
        conn.poll_request(),
        Ok(Some(ServerEvent::Request(_)))
    ));

    // Chunked: refused as soon as a chunk size crosses the limit.
    let mut conn = ServerConn::new(limits.clone());
    conn.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n");
    assert_eq!(conn.poll_request(), Err(HttpError::BodyTooLarge));

    // A huge declared length does not allocate.
    let mut conn = ServerConn::new(limits);
    conn.feed(b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n");
    assert_eq!(conn.poll_request(), Err(HttpError::BodyTooLarge));
}

#[test]
fn smuggling_is_refused() {
    let cases: &[(&[u8], HttpError)] = &[
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            HttpError::ContentLengthWithTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
            HttpError::ContentLengthWithTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            HttpError::InvalidContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 0x1\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
            HttpError::InvalidChunk("chunk size is not hexadecimal"),
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
            HttpError::InvalidChunk("chunk size is not hexadecimal"),
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\n",
            HttpError::InvalidChunk("garbage after chunk size"),
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000000000\r\n",
            HttpError::InvalidChunk("chunk size overflows"),
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            HttpError::InvalidChunk("missing CRLF after chunk data"),
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n",
            HttpError::InvalidChunk("garbage after chunk size"),
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            HttpError::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            HttpError::BadTransferEncoding,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            HttpError::UnsupportedTransferEncoding,
        ),
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            HttpError::BadTransferEncoding,
        ),
        (
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            HttpError::MalformedHead("invalid header name"),
        ),
        (
            b"GET / HTTP/1.1\r\n Folded: x\r\n\r\n",
            HttpError::MalformedHead("invalid header name"),
        ),
        (
            b"GET  / HTTP/1.1\r\n\r\n",
            HttpError::MalformedHead("invalid token in start line"),
        ),
        (
            b"GET / HTTP/2.0\r\n\r\n",
            HttpError::MalformedHead("unsupported HTTP version"),
        ),
    ];
    for (wire, expected) in cases {
        let err = first_error(wire);
        assert_eq!(&err, expected, "{}", String::from_utf8_lossy(wire));
        let status = err.status_code();
        assert!(status == 400 || status == 501, "{err:?}");
    }
    // Same value repeated is not ambiguous.
    let request =
        single_request(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(&request.body[..], b"abc");
}

#[test]
fn upgrade_hands_back_leftover_bytes() {
    let mut conn = ServerConn::default();
    conn.feed(b"GET /socket.io/?EIO=4&transport=websocket&sid=xyz HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\x81\x85frame");
    let Ok(Some(ServerEvent::Upgrade { request, leftover })) = conn.poll_request() else {
        panic!()
    };
    assert_eq!(
        request.query_param("transport").as_deref(),
        Some("websocket")
    );
    assert_eq!(&leftover[..], b"\x81\x85frame");
    assert!(!conn.wants_read());
    let mut out = BytesMut::new();
    let accept = Response::new(101)
        .with_header("Upgrade", "websocket")
        .with_header("Connection", "Upgrade")
        .with_header("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(
        conn.write_response(&accept, &mut out),
        Ok(AfterResponse::Upgraded)
    );
    assert_eq!(
        &out[..],
        &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"[..]
    );
    assert!(conn.is_upgraded());
    assert_eq!(conn.poll_request(), Ok(None));
    conn.feed(b"more");
    assert_eq!(&conn.take_buffered()[..], b"more");
    assert_eq!(
        conn.write_response(&Response::new(200), &mut out),
        Err(UsageError::ConnectionClosed)
    );
}

#[test]
fn refused_upgrade_closes() {
    let mut conn = ServerConn::default();
    conn.feed(b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    let Ok(Some(ServerEvent::Upgrade { leftover, .. })) = conn.poll_request() else {
        panic!()
    };
    assert!(leftover.is_empty());
    let mut out = BytesMut::new();
    assert_eq!(
        conn.write_response(&Response::new(400), &mut out),
        Ok(AfterResponse::Close)
    );
    assert!(out.windows(17).any(|w| w == b"Connection: close"));
    assert!(conn.is_closed());
}

#[test]
fn switching_protocols_needs_an_upgrade_request() {
    let mut conn = ServerConn::default();
    conn.feed(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    // No `Connection: upgrade`: an ordinary request.
    assert!(matches!(
        conn.poll_request(),
        Ok(Some(ServerEvent::Request(_)))
    ));
    let mut out = BytesMut::new();
    assert_eq!(
        conn.write_response(&Response::new(101), &mut out),
        Err(UsageError::InvalidInformational)
    );
    assert_eq!(
        conn.write_response(&Response::new(100), &mut out),
        Err(UsageError::InvalidInformational)
    );
    assert!(out.is_empty());
}

#[test]
fn expect_continue() {
    let mut conn = ServerConn::default();
    conn.feed(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(conn.poll_request(), Ok(None));
    assert!(conn.wants_continue());
    let mut out = BytesMut::new();
    conn.write_continue(&mut out).unwrap();
    assert_eq!(&out[..], b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(!conn.wants_continue());
    assert_eq!(
        conn.write_continue(&mut out),
        Err(UsageError::NoContinueExpected)
    );
    conn.feed(b"abc");
    let Ok(Some(ServerEvent::Request(request))) = conn.poll_request() else {
        panic!()
    };
    assert_eq!(&request.body[..], b"abc");

    // Body already there: no need to ask for it.
    let mut conn = ServerConn::default();
    conn.feed(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\na");
    assert_eq!(conn.poll_request(), Ok(None));
    assert!(!conn.wants_continue());
}

#[test]
fn peer_close_between_and_during_requests() {
    // Clean close between requests.
    let events = events_of(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], Ok(ServerEvent::PeerClosed));

    // Close in the middle of a head or body.
    assert_eq!(
        events_of(b"GET / HTTP/1.1\r\nHo").last(),
        Some(&Err(HttpError::UnexpectedEof))
    );
    assert_eq!(
        events_of(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab").last(),
        Some(&Err(HttpError::UnexpectedEof))
    );

    // Client gives up on a pending long-polling GET.
    let mut conn = ServerConn::default();
    conn.feed(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n");
    assert!(matches!(
        conn.poll_request(),
        Ok(Some(ServerEvent::Request(_)))
    ));
    assert!(!conn.will_close());
    conn.feed_eof();
    assert_eq!(conn.poll_request(), Ok(Some(ServerEvent::PeerClosed)));
    assert_eq!(conn.poll_request(), Ok(None));
    assert!(conn.will_close());
    let mut out = BytesMut::new();
    assert_eq!(
        conn.write_response(&Response::new(200), &mut out),
        Ok(AfterResponse::Close)
    );
    assert!(conn.is_closed());

    // Pipelined requests before a half-close are all served.
    let (events, _) = drive(
        &mut ServerConn::default(),
        &[b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"],
        true,
    );
    assert_eq!(events.len(), 3);
}

#[test]
fn head_request_gets_no_body() {
    let mut conn = ServerConn::default();
    conn.feed(b"HEAD / HTTP/1.1\r\n\r\n");
    conn.poll_request().unwrap();
    let mut out = BytesMut::new();
    conn.write_response(&Response::new(200).with_body("hello"), &mut out)
        .unwrap();
    assert_eq!(&out[..], b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
}

#[test]
fn usage_errors() {
    let mut conn = ServerConn::default();
    let mut out = BytesMut::new();
    assert_eq!(
        conn.write_response(&Response::new(200), &mut out),
        Err(UsageError::NoRequestPending)
    );
    assert_eq!(
        conn.write_chunk(b"x", &mut out),
        Err(UsageError::ChunkedResponseState)
    );
    conn.feed(b"GET / HTTP/1.1\r\n\r\n");
    conn.poll_request().unwrap();
    let cases = [
        (
            Response::new(200).with_header("Content-Length", "1"),
            UsageError::FramingHeader,
        ),
        (
            Response::new(200).with_header("transfer-encoding", "chunked"),
            UsageError::FramingHeader,
        ),
        (
            Response::new(200).with_header("X-Evil", "a\r\nb: c"),
            UsageError::InvalidHeader,
        ),
        (
            Response::new(200).with_header("", "a"),
            UsageError::InvalidHeader,
        ),
        (
            Response::new(204).with_body("x"),
            UsageError::BodyNotAllowed,
        ),
        (Response::new(42), UsageError::InvalidStatus),
        (Response::new(1000), UsageError::InvalidStatus),
    ];
    for (response, expected) in cases {
        assert_eq!(conn.write_response(&response, &mut out), Err(expected));
    }
    let mut bad_reason = Response::new(200);
    bad_reason.reason = "OK\r\nX: y".into();
    assert_eq!(
        conn.write_response(&bad_reason, &mut out),
        Err(UsageError::InvalidHeader)
    );
    assert!(out.is_empty(), "nothing written on error");
    assert!(conn.awaiting_response());
}

#[test]
fn chunked_responses() {
    let mut conn = ServerConn::default();
    conn.feed(b"GET / HTTP/1.1\r\n\r\n");
    conn.poll_request().unwrap();
    let mut out = BytesMut::new();
    conn.start_chunked_response(&Response::new(200).with_body("first"), &mut out)
        .unwrap();
    assert_eq!(
        conn.write_response(&Response::new(200), &mut out),
        Err(UsageError::ChunkedResponseState)
    );
    conn.write_chunk(b"", &mut out).unwrap();
    conn.write_chunk(b"second!", &mut out).unwrap();
    assert_eq!(
        conn.finish_chunked_response(&mut out),
        Ok(AfterResponse::KeepAlive)
    );
    assert_eq!(
        &out[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n7\r\nsecond!\r\n0\r\n\r\n"
    );
    assert_eq!(
        conn.finish_chunked_response(&mut out),
        Err(UsageError::ChunkedResponseState)
    );

    // HTTP/1.0 cannot read chunked: the body is delimited by closing.
    let mut conn = ServerConn::default();
    conn.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    conn.poll_request().unwrap();
    let mut out = BytesMut::new();
    conn.start_chunked_response(&Response::new(200), &mut out)
        .unwrap();
    conn.write_chunk(b"data", &mut out).unwrap();
    assert_eq!(
        conn.finish_chunked_response(&mut out),
        Ok(AfterResponse::Close)
    );
    assert_eq!(
        &out[..],
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\ndata"
    );
}

#[test]
fn wants_read_bounds_pipelining() {
    let mut conn = ServerConn::new(Limits {
        max_head_size: 64,
        ..Limits::default()
    });
    assert!(conn.wants_read());
    conn.feed(b"GET / HTTP/1.1\r\n\r\n");
    conn.poll_request().unwrap();
    assert!(conn.wants_read());
    conn.feed(&[b'G'; 64]);
    assert!(!conn.wants_read());
}

/// A request as the generator describes it, with the choice of framing.
#[derive(Debug, Clone)]
struct Generated {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunk_sizes: Option<Vec<usize>>,
}

impl Generated {
    fn wire(&self) -> Vec<u8> {
        let mut wire = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        for (name, value) in &self.headers {
            wire.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        match &self.chunk_sizes {
            None => {
                if !self.body.is_empty() {
                    wire.extend_from_slice(
                        format!("Content-Length: {}\r\n", self.body.len()).as_bytes(),
                    );
                }
                wire.extend_from_slice(b"\r\n");
                wire.extend_from_slice(&self.body);
            }
            Some(sizes) => {
                wire.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &self.body[..];
                let mut sizes = sizes.iter().cycle();
                while !rest.is_empty() {
                    let size = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
                    wire.extend_from_slice(format!("{size:x};ext=1\r\n").as_bytes());
                    wire.extend_from_slice(&rest[..size]);
                    wire.extend_from_slice(b"\r\n");
                    rest = &rest[size..];
                }
                wire.extend_from_slice(b"0\r\nTrailer: x\r\n\r\n");
            }
        }
        wire
    }

    fn check(&self, request: &Request) {
        assert_eq!(request.method.as_str(), self.method);
        assert_eq!(&request.target[..], self.target);
        assert_eq!(&request.body[..], &self.body[..]);
        for (name, value) in &self.headers {
            assert_eq!(
                request.headers.get_str(&name.to_uppercase()),
                Some(value.trim())
            );
        }
    }
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "OPTIONS"]),
        "/[a-z0-9/._-]{0,20}(\\?[a-zA-Z0-9=&%+]{0,30})?",
        prop::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[ -~]{0,20}"), 0..5),
        prop::collection::vec(any::<u8>(), 0..200),
        prop::option::of(prop::collection::vec(1usize..50, 1..5)),
    )
        .prop_map(|(method, target, headers, body, chunk_sizes)| {
            // Distinct names so that lookups are unambiguous.
            let mut seen = Vec::new();
            let headers = headers
                .into_iter()
                .enumerate()
                .filter_map(|(i, (name, value))| {
                    let name = format!("{name}-{i}");
                    (!seen.contains(&name)).then(|| {
                        seen.push(name.clone());
                        (name, value.trim().to_string())
                    })
                })
                .collect();
            Generated {
                method,
                target,
                headers,
                body,
                chunk_sizes,
            }
        })
}

/// Cuts `wire` at the given points.
fn split_at_points<'a>(wire: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (wire.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&wire[start..cut]);
        start = cut;
    }
    chunks.push(&wire[start..]);
    chunks
}

proptest! {
    #[test]
    fn any_split_gives_the_same_requests(
        requests in prop::collection::vec(generated(), 1..4),
        points in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let wire: Vec<u8> = requests.iter().flat_map(Generated::wire).collect();
        let whole = drive(&mut ServerConn::default(), &[&wire], true);
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        let byte_by_byte = drive(&mut ServerConn::default(), &bytes, true);
        let random = drive(&mut ServerConn::default(), &split_at_points(&wire, &points), true);
        prop_assert_eq!(&whole, &byte_by_byte);
        prop_assert_eq!(&whole, &random);
        let (events, _) = whole;
        prop_assert_eq!(events.len(), requests.len() + 1);
        for (event, generated) in events.iter().zip(&requests) {
            match event {
                Ok(ServerEvent::Request(request)) => generated.check(request),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(events.last(), Some(&Ok(ServerEvent::PeerClosed)));
    }

    #[test]
    fn garbage_never_panics(
        wire in prop::collection::vec(any::<u8>(), 0..300),
        points in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let limits = Limits { max_head_size: 128, max_headers: 4, max_body_size: 64 };
        let whole = drive(&mut ServerConn::new(limits.clone()), &[&wire], true);
        let split = drive(&mut ServerConn::new(limits), &split_at_points(&wire, &points), true);
        prop_assert_eq!(whole.0, split.0);
    }

    #[test]
    fn mutated_requests_behave_the_same_under_any_split(
        requests in prop::collection::vec(generated(), 1..3),
        mutations in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        points in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut wire: Vec<u8> = requests.iter().flat_map(Generated::wire).collect();
        for (at, byte) in mutations {
            let at = at % wire.len();
            wire[at] = byte;
        }
        let limits = Limits { max_head_size: 256, max_headers: 8, max_body_size: 150 };
        let whole = drive(&mut ServerConn::new(limits.clone()), &[&wire], true);
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        let byte_by_byte = drive(&mut ServerConn::new(limits.clone()), &bytes, true);
        let random = drive(&mut ServerConn::new(limits), &split_at_points(&wire, &points), true);
        prop_assert_eq!(&whole, &byte_by_byte);
        prop_assert_eq!(&whole, &random);
    }

    #[test]
    fn client_encoding_round_trips_through_server(generated in generated()) {
        let mut request = Request::new(Method::from(generated.method), generated.target.clone())
            .with_body(generated.body.clone());
        request.headers = Headers::new();
        request.headers.append("Host", "example.com");
        for (name, value) in &generated.headers {
            request.headers.append(name.clone(), value.clone().into_bytes());
        }
        let mut out = BytesMut::new();
        crate::http::ClientConn::default().write_request(&request, &mut out).unwrap();
        let mut conn = ServerConn::default();
        conn.feed(&out);
        let Ok(Some(ServerEvent::Request(parsed))) = conn.poll_request() else {
            return Err(TestCaseError::fail("no request"));
        };
        prop_assert_eq!(&parsed.body, &request.body);
        prop_assert_eq!(&parsed.target, &request.target);
        prop_assert_eq!(&parsed.method, &request.method);
        for (name, value) in request.headers.iter() {
            prop_assert_eq!(parsed.headers.get(name), Some(value));
        }
    }
}
