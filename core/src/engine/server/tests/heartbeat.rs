//! The heartbeat: pings on time, ping timeouts exactly on time, bounded timers.

use super::*;

#[test]
fn ping_every_interval_over_polling() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let mut pong_at = 0;
    for round in 0..3u64 {
        let (conn, resp) = h.poll(&sid);
        assert!(resp.is_none());
        h.advance_to(pong_at + 299);
        assert!(h.take_response(conn).is_none(), "round {round}");
        h.advance_to(pong_at + 300);
        assert_eq!(h.take_response(conn).unwrap().text(), "2");
        // Answer a little later: the next ping is an interval after the pong.
        pong_at += 300 + 50;
        h.advance_to(pong_at);
        assert_eq!(h.post(&sid, b"3").status, 200);
    }
    assert!(h.closed_events().is_empty());
}

#[test]
fn ping_interval_grace_delays_pings() {
    let mut h = Harness::new(ServerConfig {
        ping_interval_grace: Duration::from_millis(100),
        ..config()
    });
    let sid = h.open();
    let (conn, _) = h.poll(&sid);
    h.advance_to(399);
    assert!(h.take_response(conn).is_none());
    h.advance_to(400);
    assert_eq!(h.take_response(conn).unwrap().text(), "2");
}

#[test]
fn ping_timeout_exactly_on_time() {
    let mut h = Harness::new(config());
    let sid = h.open();
    h.advance_to(499);
    assert!(h.closed_events().is_empty());
    assert_eq!(h.server.transport(&sid), Some(Transport::Polling));
    h.advance_to(500);
    assert_eq!(h.closed_events(), [(sid.clone(), CloseReason::PingTimeout)]);
    assert_eq!(h.poll(&sid).1.unwrap().status, 400);
    // Over WebSocket: the client sees the ping, then the close.
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    let start = 500;
    h.advance_to(start + 300);
    assert_eq!(h.ws_recv(&mut client), [text("2")]);
    h.ws_send(&mut client, "3");
    h.advance_to(start + 300 + 300);
    assert_eq!(h.ws_recv(&mut client), [text("2")]);
    h.advance_to(start + 300 + 300 + 199);
    assert_eq!(h.closed_events().len(), 1);
    h.advance_to(start + 300 + 300 + 200);
    assert_eq!(h.closed_events().len(), 2);
    assert!(matches!(&h.ws_recv(&mut client)[..], [WsMessage::Close(_)]));
}

#[test]
fn a_read_after_the_deadline_does_not_revive_the_session() {
    let mut h = Harness::new(config());
    let mut client = h.ws_open("EIO=4&transport=websocket");
    h.ws_recv(&mut client);
    h.advance_to(300);
    assert_eq!(h.ws_recv(&mut client), [text("2")]);
    // The pong arrives after interval + timeout, before the driver's timer
    // fired: the session is dead, whatever the read says.
    h.now = h.t0 + Duration::from_millis(500);
    h.ws_send(&mut client, "3");
    assert_eq!(h.closed_events().len(), 1);
    assert_eq!(h.closed_events()[0].1, CloseReason::PingTimeout);
}

#[test]
fn late_timer_does_not_extend_the_ping_timeout() {
    let mut h = Harness::new(config());
    let sid = h.open();
    // The driver's timer fires 10 ms late for the ping...
    h.now = h.t0 + Duration::from_millis(310);
    h.server.handle_timeout(h.now);
    h.drain();
    h.advance_to(499);
    assert!(h.closed_events().is_empty());
    // ...yet the session is dead interval + timeout after it opened.
    h.advance_to(500);
    assert_eq!(h.closed_events(), [(sid, CloseReason::PingTimeout)]);
}

#[test]
fn pending_get_gets_close_packet_on_ping_timeout() {
    let mut h = Harness::new(config());
    let sid = h.open();
    let (conn, _) = h.poll(&sid);
    h.advance_to(300);
    assert_eq!(h.take_response(conn).unwrap().text(), "2");
    let (conn, _) = h.poll(&sid);
    h.advance_to(500);
    assert_eq!(h.take_response(conn).unwrap().text(), "1");
    assert_eq!(h.closed_events(), [(sid, CloseReason::PingTimeout)]);
}

#[test]
fn many_sessions_timers_stay_bounded() {
    let mut h = Harness::new(config());
    let sids: Vec<Str> = (0..50).map(|_| h.open()).collect();
    // Pongs in a loop do not grow the timer heap.
    for _ in 0..100 {
        for sid in &sids[..5] {
            h.post(sid, b"3\x1e3\x1e3");
        }
        h.now += Duration::from_millis(1);
    }
    h.server.check_invariants();
    // All the others time out exactly on time.
    h.advance_to(500);
    assert_eq!(h.closed_events().len(), 45);
}
