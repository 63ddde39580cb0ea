//! Output handed out and backpressure: the drained list, soft and hard bounds.

use super::*;

#[test]
fn drained_sessions_are_reported_once_with_the_bytes_written() {
    let mut h = Harness::new(config());
    let (a, sid_a) = ws_session(&mut h);
    let (_b, sid_b) = ws_session(&mut h);
    // The open packets are the engine's own: nothing to report.
    assert_eq!(h.server.poll_drained(), None);
    for text in ["a", "bbbbbbbbbb"] {
        h.server
            .send(h.now, &sid_a, Message::Text(text.into()))
            .unwrap();
    }
    h.server
        .send(h.now, &sid_b, Message::Text("ccc".into()))
        .unwrap();
    // Nothing handed out yet.
    assert_eq!(h.server.poll_drained(), None);
    // The first frame out: the second (13 bytes framed) still waits, more
    // than the 11 bytes sent, so nothing counts as written yet.
    let Some(Transmit::Data(_)) = h.server.poll_transmit(a.conn) else {
        panic!("a frame")
    };
    assert_eq!(h.server.poll_drained(), None);
    pull(&mut h, a.conn);
    assert_eq!(h.server.poll_drained(), Some((sid_a.clone(), 11)));
    assert_eq!(h.server.poll_drained(), None);
    // Everything else, in the order the sessions were handed out.
    h.drain();
    assert_eq!(h.server.poll_drained(), Some((sid_b.clone(), 3)));
    assert_eq!(h.server.poll_drained(), None);
    // Long-polling: named when a GET takes the queue.
    let sid = h.open();
    assert_eq!(h.server.poll_drained(), None);
    for text in ["xy", "z"] {
        h.server
            .send(h.now, &sid, Message::Text(text.into()))
            .unwrap();
    }
    assert_eq!(h.server.poll_drained(), None);
    assert_eq!(h.poll(&sid).1.unwrap().text(), "4xy\x1e4z");
    assert_eq!(h.server.poll_drained(), Some((sid.clone(), 3)));
    // A session that ends is not named: its `Closed` settles it.
    h.server
        .send(h.now, &sid_b, Message::Text("d".into()))
        .unwrap();
    h.server.close(h.now, &sid_b).unwrap();
    h.drain();
    assert_eq!(h.server.poll_drained(), None);
}

#[test]
fn drained_list_stays_bounded_when_nobody_drains_it() {
    let mut h = Harness::new(config());
    for _ in 0..300 {
        let (client, sid) = ws_session(&mut h);
        h.server
            .send(h.now, &sid, Message::Text("m".into()))
            .unwrap();
        h.drain();
        h.eof(client.conn);
        let polling = h.open();
        h.server
            .send(h.now, &polling, Message::Text("m".into()))
            .unwrap();
        let (get, _) = h.poll(&polling);
        h.server.close(h.now, &polling).unwrap();
        let (last_get, resp) = h.poll(&polling);
        assert_eq!(resp.unwrap().text(), "1");
        h.eof(get);
        h.eof(last_get);
        // Nothing is left alive, so the list must not keep growing.
        h.server.check_invariants();
    }
}

#[test]
fn ping_flood_from_a_peer_that_never_reads_stops_reading_at_the_soft_bound() {
    let soft = 256 * 1024;
    let mut h = harness_with_output_bound(soft);
    let (mut client, _sid) = ws_session(&mut h);
    let read = ping_flood_read(&mut client);
    // The peer reads nothing: nothing is pulled. The driver reads only
    // while the core wants it.
    let mut reads = 0;
    while h.server.wants_read(client.conn) {
        h.server.handle_read(h.now, client.conn, &read);
        reads += 1;
        let buffered = h.server.conn_buffered(client.conn).unwrap();
        assert!(
            buffered <= soft + read.len(),
            "{buffered} bytes owed after {reads} reads"
        );
        assert!(reads < 1000, "never paused");
    }
    assert!(h.server.conn_buffered(client.conn).unwrap() > soft);
    // Every pong is owed, in order, once the peer reads again.
    assert!(reads >= soft / read.len());
    h.drain();
    assert!(h.server.wants_read(client.conn), "readable once drained");
    let pongs = h.ws_recv(&mut client);
    assert!(pongs.is_empty(), "pongs are not messages: {pongs:?}");
    assert_eq!(h.server.conn_buffered(client.conn), Some(0));
    // Its queues give the burst's memory back.
    let (entries, bytes) = h.server.conn_capacity(client.conn).unwrap();
    assert!(
        entries <= crate::memory::KEEP_QUEUE_CAPACITY,
        "{entries} queue entries kept"
    );
    assert!(
        bytes <= 2 * crate::memory::KEEP_BUFFER_CAPACITY,
        "{bytes} buffer bytes kept"
    );
    assert_eq!(h.closed_events(), []);
}

#[test]
fn ping_flood_past_the_hard_bound_closes_the_session_as_slow_consumer() {
    let mut h = Harness::new(ServerConfig {
        ping_interval: Duration::from_secs(25),
        max_buffered_output: 64 * 1024,
        max_buffered_output_hard: 256 * 1024,
        ..ServerConfig::default()
    });
    let (mut client, sid) = ws_session(&mut h);
    let read = ping_flood_read(&mut client);
    // A driver that ignores `wants_read`.
    for _ in 0..8 {
        h.server.handle_read(h.now, client.conn, &read);
    }
    h.drain();
    assert_eq!(h.closed_events(), [(sid, CloseReason::SlowConsumer)]);
    assert!(h.closed.contains(&client.conn), "connection closed");
    assert_eq!(h.server.connection_count(), 0);
}

#[test]
fn pipelined_posts_from_a_peer_that_never_reads_stop_at_the_soft_bound() {
    let soft = 16 * 1024;
    let mut h = harness_with_output_bound(soft);
    let sid = h.open();
    let conn = h.connect();
    let post = post_request(&sid, "4hello");
    let read: Vec<u8> = post.repeat(4096 / post.len()).into_bytes();
    let mut reads = 0;
    while h.server.wants_read(conn) {
        h.server.handle_read(h.now, conn, &read);
        reads += 1;
        // Each request's answer (`ok`) is owed to the peer.
        let buffered = h.server.conn_buffered(conn).unwrap();
        assert!(
            buffered <= soft + 2 * read.len(),
            "{buffered} after {reads}"
        );
        assert!(reads < 1000, "never paused");
    }
    h.drain();
    assert!(h.server.wants_read(conn), "readable once its answers left");
    let (entries, _) = h.server.conn_capacity(conn).unwrap();
    assert!(
        entries <= crate::memory::KEEP_QUEUE_CAPACITY,
        "{entries} queue entries kept"
    );
}

#[test]
fn a_post_connection_is_read_while_its_session_queue_is_over_the_soft_bound() {
    // The GET that drains the queue may come on the connection the POSTs
    // came on (a browser reuses its connections): pausing that connection
    // for the queue would stall the session until its slow-consumer end.
    let soft = 4 * 1024;
    let mut h = harness_with_output_bound(soft);
    let sid = h.open();
    let conn = h.connect();
    let post = post_request(&sid, "4x");
    h.feed(conn, post.as_bytes());
    assert_eq!(h.take_response(conn).unwrap().text(), "ok");
    h.server
        .send(h.now, &sid, Message::Text("y".repeat(2 * soft).into()))
        .unwrap();
    h.drain();
    assert!(
        h.server.wants_read(conn),
        "a GET may come on this connection"
    );
    let get =
        format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n");
    h.feed(conn, get.as_bytes());
    assert!(h.take_response(conn).unwrap().text().starts_with("4yyy"));
    assert_eq!(h.server.buffered(&sid), Some(0));
}
