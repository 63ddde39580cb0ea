//! The server-role HTTP/1.1 and WebSocket connections under arbitrary
//! byte streams.

/// A WebSocket byte stream into a server-role connection, fed whole and
/// then byte by byte: both must yield the same messages, errors and
/// outgoing bytes.
pub fn ws_server(data: &[u8]) {
    use crate::ws::{WebSocket, WsConfig};
    let config = WsConfig {
        max_frame_size: 4096,
        max_message_size: 8192,
    };
    let run = |chunk: usize| {
        let mut ws = WebSocket::server(config);
        let mut seen = Vec::new();
        let mut sent = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            ws.receive(piece);
            while let Some(m) = ws.poll_message() {
                seen.push(format!("{m:?}"));
            }
            while let Some(b) = ws.poll_transmit() {
                sent.extend_from_slice(&b);
            }
        }
        ws.receive_eof();
        while let Some(m) = ws.poll_message() {
            seen.push(format!("{m:?}"));
        }
        (seen, sent)
    };
    let whole = run(data.len());
    let bytewise = run(1);
    assert_eq!(whole, bytewise, "chunking changed the outcome");
}

/// An HTTP/1.1 request stream into a server connection, fed whole and then
/// byte by byte: both must yield the same events and errors. Each request
/// is answered so that pipelined ones are parsed too.
pub fn http_server(data: &[u8]) {
    use crate::http::{Limits, Response, ServerConn, ServerEvent};
    let limits = Limits {
        max_head_size: 2048,
        max_headers: 32,
        max_body_size: 4096,
    };
    let run = |chunk: usize| {
        let mut conn = ServerConn::new(limits.clone());
        let mut seen = Vec::new();
        let mut out = bytes::BytesMut::new();
        let mut pieces = data.chunks(chunk.max(1));
        let mut fed = 0;
        loop {
            match conn.poll_request() {
                Ok(Some(ServerEvent::Request(req))) => {
                    seen.push(format!("{:?} {} {:?}", req.method, req.target, req.body));
                    let _ = conn.write_response(&Response::new(200), &mut out);
                }
                Ok(Some(ServerEvent::Upgrade { request, leftover })) => {
                    // What follows the head belongs to the WebSocket: the part
                    // already fed comes back as `leftover`.
                    let rest = leftover.len() + (data.len() - fed);
                    seen.push(format!("upgrade {} {rest}", request.target));
                    break;
                }
                Ok(Some(other)) => seen.push(format!("{other:?}")),
                Ok(None) => match pieces.next() {
                    Some(piece) => {
                        fed += piece.len();
                        conn.feed(piece)
                    }
                    None => {
                        if conn.is_closed() {
                            break;
                        }
                        conn.feed_eof();
                        match conn.poll_request() {
                            Ok(Some(e)) => seen.push(format!("{e:?}")),
                            Ok(None) => {}
                            Err(e) => seen.push(format!("error {e:?}")),
                        }
                        break;
                    }
                },
                Err(e) => {
                    seen.push(format!("error {e:?}"));
                    break;
                }
            }
        }
        seen
    };
    let whole = run(data.len());
    let bytewise = run(1);
    assert_eq!(whole, bytewise, "chunking changed the outcome");
}
