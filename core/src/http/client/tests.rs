use super::*;
use crate::http::{ServerConn, ServerEvent};
use proptest::prelude::*;

fn get(target: &str) -> Request {
    Request::new(Method::Get, target.to_string()).with_header("Host", "localhost:3000")
}

fn sent(conn: &mut ClientConn, request: &Request) -> BytesMut {
    let mut out = BytesMut::new();
    conn.write_request(request, &mut out).unwrap();
    out
}

fn poll_all(
    conn: &mut ClientConn,
    chunks: &[&[u8]],
    eof: bool,
) -> Vec<Result<ClientEvent, HttpError>> {
    let mut events = Vec::new();
    let poll = |conn: &mut ClientConn, events: &mut Vec<_>| loop {
        match conn.poll_response() {
            Ok(Some(event)) => events.push(Ok(event)),
            Ok(None) => break,
            Err(err) => {
                events.push(Err(err));
                break;
            }
        }
    };
    for chunk in chunks {
        conn.feed(chunk);
        poll(conn, &mut events);
    }
    if eof {
        conn.feed_eof();
        poll(conn, &mut events);
    }
    events
}

#[test]
fn request_encoding() {
    let mut conn = ClientConn::default();
    let out = sent(
        &mut conn,
        &get("/socket.io/?EIO=4&transport=polling&t=N8hyd6w"),
    );
    assert_eq!(
        &out[..],
        b"GET /socket.io/?EIO=4&transport=polling&t=N8hyd6w HTTP/1.1\r\nHost: localhost:3000\r\n\r\n"
    );
    let post = Request::new(Method::Post, "/socket.io/?EIO=4&transport=polling&sid=s")
        .with_header("Host", "h")
        .with_header("Content-Type", "text/plain;charset=UTF-8")
        .with_body("4hello");
    let out = sent(&mut conn, &post);
    assert_eq!(
        &out[..],
        &b"POST /socket.io/?EIO=4&transport=polling&sid=s HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 6\r\n\r\n4hello"[..]
    );
    let empty_post = Request::new(Method::Post, "/").with_header("Host", "h");
    assert!(sent(&mut conn, &empty_post).ends_with(b"Content-Length: 0\r\n\r\n"));
    assert_eq!(conn.requests_in_flight(), 3);
}

#[test]
fn request_usage_errors() {
    let mut conn = ClientConn::default();
    let mut out = BytesMut::new();
    let cases = [
        (Request::new(Method::Get, "/"), UsageError::MissingHost),
        (get(""), UsageError::InvalidTarget),
        (get("/a b"), UsageError::InvalidTarget),
        (get("/a\r\nX: y"), UsageError::InvalidTarget),
        (
            Request::new(Method::Other("BAD METHOD".into()), "/").with_header("Host", "h"),
            UsageError::InvalidMethod,
        ),
        (
            get("/").with_header("Content-Length", "3"),
            UsageError::FramingHeader,
        ),
        (get("/").with_header("X", "a\nb"), UsageError::InvalidHeader),
    ];
    for (request, expected) in cases {
        assert_eq!(conn.write_request(&request, &mut out), Err(expected));
    }
    assert!(out.is_empty());
    let mut http10 = Request::new(Method::Get, "/");
    http10.version = Version::Http10;
    conn.write_request(&http10, &mut out).unwrap();
    assert_eq!(&out[..], b"GET / HTTP/1.0\r\n\r\n");
    // HTTP/1.0 without keep-alive closes after its response.
    assert!(!conn.can_send_request());
    assert_eq!(
        conn.write_request(&get("/"), &mut out),
        Err(UsageError::ConnectionClosed)
    );
}

#[test]
fn content_length_response() {
    let mut conn = ClientConn::default();
    sent(&mut conn, &get("/"));
    let events = poll_all(
        &mut conn,
        &[b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 8\r\n\r\n0{\"si", b"d\"}"],
        false,
    );
    let [Ok(ClientEvent::Response(response))] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(response.status, 200);
    assert_eq!(response.reason, "OK");
    assert_eq!(&response.body[..], b"0{\"sid\"}");
    assert_eq!(
        response.headers.get_str("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(conn.requests_in_flight(), 0);
    assert!(!conn.is_closed());
}

#[test]
fn chunked_response_any_split() {
    let wire: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n";
    let mut whole = ClientConn::default();
    sent(&mut whole, &get("/"));
    let expected = poll_all(&mut whole, &[wire], false);
    let [Ok(ClientEvent::Response(response))] = &expected[..] else {
        panic!("{expected:?}")
    };
    assert_eq!(&response.body[..], b"Wikipedia");
    let mut split = ClientConn::default();
    sent(&mut split, &get("/"));
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(poll_all(&mut split, &bytes, false), expected);
}

#[test]
fn read_until_close() {
    let mut conn = ClientConn::default();
    sent(&mut conn, &get("/"));
    let events = poll_all(
        &mut conn,
        &[b"HTTP/1.0 200 OK\r\n\r\nall of ", b"this"],
        false,
    );
    assert!(events.is_empty());
    let events = poll_all(&mut conn, &[], true);
    let [Ok(ClientEvent::Response(response))] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(&response.body[..], b"all of this");
    assert!(conn.is_closed());

    // Bounded by the body limit.
    let mut conn = ClientConn::new(Limits {
        max_body_size: 4,
        ..Limits::default()
    });
    sent(&mut conn, &get("/"));
    let events = poll_all(&mut conn, &[b"HTTP/1.1 200 OK\r\n\r\n12345"], false);
    assert_eq!(events, [Err(HttpError::BodyTooLarge)]);
}

#[test]
fn switching_protocols_with_leftover() {
    let mut conn = ClientConn::default();
    let upgrade = get("/socket.io/?EIO=4&transport=websocket")
        .with_header("Connection", "Upgrade")
        .with_header("Upgrade", "websocket")
        .with_header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .with_header("Sec-WebSocket-Version", "13");
    sent(&mut conn, &upgrade);
    assert!(!conn.can_send_request());
    let events = poll_all(
        &mut conn,
        &[b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x020{"],
        false,
    );
    let [Ok(ClientEvent::Upgrade { response, leftover })] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(response.status, 101);
    assert_eq!(
        response.headers.get_str("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(&leftover[..], b"\x81\x020{");
    assert!(conn.is_upgraded());
    assert_eq!(conn.poll_response(), Ok(None));
}

#[test]
fn unsolicited_upgrade_and_interim_responses() {
    let mut conn = ClientConn::default();
    sent(&mut conn, &get("/"));
    let events = poll_all(
        &mut conn,
        &[b"HTTP/1.1 101 Switching Protocols\r\n\r\n"],
        false,
    );
    assert_eq!(events, [Err(HttpError::UnsolicitedUpgrade)]);
    assert!(conn.is_closed());

    let mut conn = ClientConn::default();
    sent(&mut conn, &get("/"));
    let events = poll_all(
        &mut conn,
        &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"],
        false,
    );
    let [Ok(ClientEvent::Response(response))] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(response.status, 204);
}

#[test]
fn pipelined_responses_and_head() {
    let mut conn = ClientConn::default();
    sent(&mut conn, &get("/1"));
    let mut head = get("/2");
    head.method = Method::Head;
    sent(&mut conn, &head);
    sent(&mut conn, &get("/3"));
    let events = poll_all(
        &mut conn,
        &[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"],
        false,
    );
    let bodies: Vec<_> = events
        .iter()
        .map(|e| match e {
            Ok(ClientEvent::Response(r)) => (r.status, r.body.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        bodies,
        [
            (200, Bytes::from("a")),
            (200, Bytes::new()),
            (304, Bytes::new())
        ]
    );
    assert_eq!(conn.requests_in_flight(), 0);
}

#[test]
fn response_errors_and_eof() {
    // No request outstanding.
    let mut conn = ClientConn::default();
    assert_eq!(
        poll_all(&mut conn, &[b"HTTP/1.1 200 OK\r\n\r\n"], false),
        [Err(HttpError::UnexpectedResponse)]
    );

    // Idle connection closed by the server.
    let mut conn = ClientConn::default();
    assert_eq!(
        poll_all(&mut conn, &[], true),
        [Ok(ClientEvent::PeerClosed)]
    );

    // Closed before answering.
    let mut conn = ClientConn::default();
    sent(&mut conn, &get("/"));
    assert_eq!(
        poll_all(&mut conn, &[], true),
        [Err(HttpError::UnexpectedEof)]
    );

    // Framing attacks are refused as on the server side.
    for (wire, expected) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            HttpError::ContentLengthWithTransferEncoding,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
            HttpError::InvalidChunk("chunk size overflows"),
        ),
        (
            b"HTTP/1.1 2000 OK\r\n\r\n",
            HttpError::MalformedHead("invalid status code"),
        ),
    ] {
        let mut conn = ClientConn::default();
        sent(&mut conn, &get("/"));
        assert_eq!(poll_all(&mut conn, &[wire], false), [Err(expected)]);
    }

    // Oversized head.
    let mut conn = ClientConn::new(Limits {
        max_head_size: 64,
        ..Limits::default()
    });
    sent(&mut conn, &get("/"));
    let events = poll_all(&mut conn, &[b"HTTP/1.1 200 OK\r\n", &[b'X'; 100]], false);
    assert_eq!(events, [Err(HttpError::HeadTooLarge)]);
}

#[test]
fn connection_close_response_ends_the_connection() {
    let mut conn = ClientConn::default();
    sent(&mut conn, &get("/1"));
    sent(&mut conn, &get("/2"));
    let events = poll_all(
        &mut conn,
        &[b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"],
        false,
    );
    assert_eq!(events.len(), 1);
    assert!(conn.is_closed());
    assert_eq!(
        conn.requests_in_flight(),
        1,
        "the second request must be retried"
    );
}

proptest! {
    #[test]
    fn server_responses_parse_back(
        status in prop::sample::select(vec![200u16, 201, 400, 403, 404, 413, 500]),
        body in prop::collection::vec(any::<u8>(), 0..300),
        chunked in any::<bool>(),
        parts in prop::collection::vec(1usize..64, 1..6),
        points in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut server = ServerConn::default();
        server.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        prop_assert!(matches!(server.poll_request(), Ok(Some(ServerEvent::Request(_)))));
        let response = Response::new(status).with_header("Content-Type", "application/octet-stream");
        let mut wire = BytesMut::new();
        if chunked {
            server.start_chunked_response(&response, &mut wire).unwrap();
            let mut rest = &body[..];
            for size in parts.iter().cycle() {
                if rest.is_empty() { break; }
                let size = (*size).min(rest.len());
                server.write_chunk(&rest[..size], &mut wire).unwrap();
                rest = &rest[size..];
            }
            server.finish_chunked_response(&mut wire).unwrap();
        } else {
            server.write_response(&response.clone().with_body(body.clone()), &mut wire).unwrap();
        }
        let mut cuts: Vec<usize> = points.iter().map(|p| p % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts {
            chunks.push(&wire[start..cut]);
            start = cut;
        }
        chunks.push(&wire[start..]);

        let mut client = ClientConn::default();
        sent(&mut client, &get("/"));
        let events = poll_all(&mut client, &chunks, false);
        prop_assert_eq!(events.len(), 1);
        let Ok(ClientEvent::Response(parsed)) = &events[0] else {
            return Err(TestCaseError::fail(format!("{:?}", events)));
        };
        prop_assert_eq!(parsed.status, status);
        prop_assert_eq!(&parsed.body[..], &body[..]);
        prop_assert_eq!(parsed.headers.get_str("content-type"), Some("application/octet-stream"));
    }
}
