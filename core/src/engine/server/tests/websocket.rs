//! The WebSocket transport: its frames, shared buffers, permessage-deflate.

use super::*;

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
