//! Ending sessions: the client, the transport, the application, a shutdown.

use super::*;

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
