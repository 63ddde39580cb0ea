//! The upgrade from polling to WebSocket: probe, noop, switch, refusal, timeout.

use super::*;

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
