//! Client and server endpoints together.

use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::engine::{ClientCloseReason, ClientTransports, CloseReason, Transport};

const ALL_TRANSPORTS: [ClientTransports; 3] = [
    ClientTransports::Polling,
    ClientTransports::WebSocket,
    ClientTransports::Upgrade,
];
const ALL_CHUNKINGS: [Chunking; 3] = [Chunking::Whole, Chunking::Random, Chunking::ByteByByte];

fn server_config() -> ServerConfig {
    ServerConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    }
}

fn client_config(transports: ClientTransports) -> ClientConfig {
    ClientConfig {
        transports,
        ..ClientConfig::default()
    }
}

fn text(s: &str) -> Message {
    Message::Text(s.into())
}

fn binary(bytes: &[u8]) -> Message {
    Message::Binary(Bytes::copy_from_slice(bytes))
}

/// The transport a session settles on.
fn settled(transports: ClientTransports) -> Transport {
    match transports {
        ClientTransports::Polling => Transport::Polling,
        ClientTransports::WebSocket | ClientTransports::Upgrade => Transport::WebSocket,
    }
}

/// A pair whose client 0 completed its handshake (and upgrade).
fn open_pair(transports: ClientTransports) -> Pair {
    let mut pair = Pair::new(server_config(), client_config(transports));
    pair.drive();
    let events = pair.client_events(0);
    assert!(matches!(events[0], ClientEvent::Opened(_)), "{events:?}");
    if transports == ClientTransports::Upgrade {
        assert!(matches!(events[1..], [ClientEvent::Upgraded]), "{events:?}");
    } else {
        assert_eq!(events.len(), 1, "{events:?}");
    }
    let server_events = pair.server_events();
    assert!(
        matches!(&server_events[0], ServerEvent::Opened { sid, .. } if **sid == pair.sid(0)),
        "{server_events:?}"
    );
    pair
}

fn assert_closed_on_server(events: &[ServerEvent], expected: &[CloseReason]) {
    let reasons: Vec<CloseReason> = events
        .iter()
        .filter_map(|event| match event {
            ServerEvent::Closed { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1, "{events:?}");
    assert!(expected.contains(&reasons[0]), "{events:?}");
}

#[test]
fn handshake_over_polling() {
    let mut pair = open_pair(ClientTransports::Polling);
    let sid = pair.sid(0);
    assert_eq!(pair.client(0).transport(), Some(Transport::Polling));
    assert_eq!(pair.server.transport(&sid), Some(Transport::Polling));
    let handshake = pair.client(0).handshake().unwrap().clone();
    assert_eq!(handshake.ping_interval, 300);
    assert_eq!(handshake.ping_timeout, 200);
    assert_eq!(handshake.upgrades, vec![crate::Str::from("websocket")]);
}

#[test]
fn handshake_over_websocket() {
    let mut pair = open_pair(ClientTransports::WebSocket);
    let sid = pair.sid(0);
    assert_eq!(pair.client(0).transport(), Some(Transport::WebSocket));
    assert_eq!(pair.server.transport(&sid), Some(Transport::WebSocket));
    assert!(pair.client(0).handshake().unwrap().upgrades.is_empty());
    assert_eq!(pair.open_conns(0).len(), 1);
}

#[test]
fn upgrade_from_polling() {
    let mut pair = Pair::new(server_config(), client_config(ClientTransports::Upgrade));
    pair.drive();
    let events = pair.client_events(0);
    assert!(
        matches!(&events[..], [ClientEvent::Opened(_), ClientEvent::Upgraded]),
        "{events:?}"
    );
    let server_events = pair.server_events();
    assert!(
        matches!(
            &server_events[..],
            [ServerEvent::Opened { .. }, ServerEvent::Upgraded { .. }]
        ),
        "{server_events:?}"
    );
    let sid = pair.sid(0);
    assert_eq!(pair.server.transport(&sid), Some(Transport::WebSocket));
    assert_eq!(pair.client(0).transport(), Some(Transport::WebSocket));
    // Only the WebSocket is left.
    assert_eq!(pair.open_conns(0).len(), 1);
}

#[test]
fn upgrade_refused_by_a_polling_only_server() {
    let config = ServerConfig {
        transports: vec![Transport::Polling],
        ..server_config()
    };
    let mut pair = Pair::new(config, client_config(ClientTransports::Upgrade));
    pair.drive();
    let events = pair.client_events(0);
    assert!(
        matches!(&events[..], [ClientEvent::Opened(_)]),
        "{events:?}"
    );
    assert_eq!(pair.client(0).transport(), Some(Transport::Polling));
    pair.client_send(0, text("still here"));
    pair.drive();
    assert_eq!(pair.server_messages(), vec![text("still here")]);
}

#[test]
fn message_order_is_kept_across_the_upgrade() {
    for chunking in ALL_CHUNKINGS {
        let mut pair = Pair::new(server_config(), client_config(ClientTransports::Upgrade));
        pair.chunking = chunking;
        let mut sent_by_client = Vec::new();
        let mut sent_by_server = Vec::new();
        let mut rounds = 0;
        // One message each way on every round, through the probe, the
        // pause and the switch.
        loop {
            let progressed = pair.step();
            let opened = pair.client(0).sid().is_some();
            if opened && sent_by_client.len() < 200 {
                let n = sent_by_client.len();
                let message = if n % 3 == 0 {
                    binary(&[n as u8, 1, 2])
                } else {
                    text(&format!("c{n}"))
                };
                pair.client_send(0, message.clone());
                sent_by_client.push(message);
                let message = text(&format!("s{n}"));
                pair.server_send(0, message.clone());
                sent_by_server.push(message);
            } else if !progressed {
                break;
            }
            rounds += 1;
            assert!(rounds < 100_000);
        }
        pair.drive();
        let client_events = pair.client_events(0);
        assert!(
            client_events
                .iter()
                .any(|e| matches!(e, ClientEvent::Upgraded)),
            "{chunking:?}: no upgrade"
        );
        let received: Vec<Message> = client_events
            .into_iter()
            .filter_map(|event| match event {
                ClientEvent::Message(message) => Some(message),
                _ => None,
            })
            .collect();
        assert_eq!(received, sent_by_server, "{chunking:?}");
        assert_eq!(pair.server_messages(), sent_by_client, "{chunking:?}");
    }
}

#[test]
fn messages_both_ways_on_every_transport_and_chunking() {
    for transports in ALL_TRANSPORTS {
        for chunking in ALL_CHUNKINGS {
            let mut pair = open_pair(transports);
            pair.chunking = chunking;
            pair.seed_chunking(42);
            let messages = vec![
                text("hello"),
                text(""),
                text("ünïcödé ✓ 😀"),
                binary(&[]),
                binary(&[0, 1, 2, 255]),
                binary(&vec![7; 5000]),
                text(&"x".repeat(70_000)),
            ];
            for message in &messages {
                pair.client_send(0, message.clone());
                pair.server_send(0, message.clone());
            }
            pair.drive();
            assert_eq!(
                pair.server_messages(),
                messages,
                "{transports:?} {chunking:?}"
            );
            assert_eq!(
                pair.client_messages(0),
                messages,
                "{transports:?} {chunking:?}"
            );
            assert_eq!(
                pair.client(0).transport(),
                Some(settled(transports)),
                "{transports:?} {chunking:?}"
            );
        }
    }
}

#[test]
fn random_chunkings_with_many_seeds() {
    for seed in 0..20 {
        for transports in ALL_TRANSPORTS {
            let mut pair = Pair::new(server_config(), client_config(transports));
            pair.chunking = Chunking::Random;
            pair.seed_chunking(seed);
            pair.client_send(0, text("queued before open"));
            pair.drive();
            pair.server_send(0, binary(&[seed as u8; 100]));
            pair.drive();
            assert_eq!(pair.server_messages(), vec![text("queued before open")]);
            assert_eq!(pair.client_messages(0), vec![binary(&[seed as u8; 100])]);
        }
    }
}

#[test]
fn heartbeat_keeps_the_session_alive_for_minutes() {
    for transports in ALL_TRANSPORTS {
        let mut pair = open_pair(transports);
        pair.advance_by_steps(Duration::from_millis(700), 3 * 60 * 10 / 7);
        assert!(pair.client_events(0).is_empty(), "{transports:?}");
        assert!(pair.server_events().is_empty(), "{transports:?}");
        pair.client_send(0, text("still there"));
        pair.drive();
        assert_eq!(pair.server_messages(), vec![text("still there")]);
    }
}

#[test]
fn client_detects_a_dead_server_after_interval_plus_timeout() {
    for transports in ALL_TRANSPORTS {
        let mut pair = open_pair(transports);
        // The first ping comes at 300 ms and is answered.
        pair.advance(Duration::from_millis(300));
        assert!(pair.client_events(0).is_empty());
        pair.blackhole(0);
        // From that ping, 300 + 200 ms of silence.
        pair.advance(Duration::from_millis(499));
        assert!(pair.client_events(0).is_empty(), "{transports:?}");
        pair.advance(Duration::from_millis(1));
        assert_eq!(pair.elapsed(), Duration::from_millis(800));
        assert!(
            matches!(
                &pair.client_events(0)[..],
                [ClientEvent::Closed(ClientCloseReason::PingTimeout)]
            ),
            "{transports:?}"
        );
    }
}

#[test]
fn server_closes_a_silent_client_at_interval_plus_timeout() {
    for transports in ALL_TRANSPORTS {
        let mut pair = open_pair(transports);
        pair.mute_client(0);
        // The session started at 0: ping at 300 ms, no pong by 500 ms.
        pair.advance(Duration::from_millis(499));
        assert!(pair.server_events().is_empty(), "{transports:?}");
        pair.advance(Duration::from_millis(1));
        let events = pair.server_events();
        assert_closed_on_server(&events, &[CloseReason::PingTimeout]);
    }
}

#[test]
fn client_close_over_each_transport() {
    for transports in ALL_TRANSPORTS {
        let mut pair = open_pair(transports);
        pair.client_send(0, text("last words"));
        let now = pair.now();
        pair.client(0).close(now);
        pair.drive();
        assert!(
            matches!(
                &pair.client_events(0)[..],
                [ClientEvent::Closed(ClientCloseReason::Closed)]
            ),
            "{transports:?}"
        );
        let events = pair.server_events();
        assert!(
            matches!(&events[0], ServerEvent::Message { message, .. } if *message == text("last words")),
            "{transports:?}: {events:?}"
        );
        assert_closed_on_server(
            &events,
            &[CloseReason::ClientClose, CloseReason::TransportClose],
        );
        assert!(pair.open_conns(0).is_empty(), "{transports:?}");
        // Nothing fires later.
        pair.advance(Duration::from_secs(5));
        assert!(pair.server_events().is_empty());
        assert!(pair.client_events(0).is_empty());
    }
}

#[test]
fn server_close_reaches_the_client() {
    for transports in ALL_TRANSPORTS {
        let mut pair = open_pair(transports);
        let sid = pair.sid(0);
        let now = pair.now();
        pair.server.close(now, &sid).unwrap();
        pair.drive();
        assert!(
            matches!(
                &pair.client_events(0)[..],
                [ClientEvent::Closed(ClientCloseReason::TransportClose)]
            ),
            "{transports:?}"
        );
        assert_closed_on_server(&pair.server_events(), &[CloseReason::ForcedClose]);
    }
}

#[test]
fn post_batches_respect_the_server_max_payload() {
    let config = ServerConfig {
        max_payload: 100,
        ..server_config()
    };
    let mut pair = Pair::new(config, client_config(ClientTransports::Polling));
    pair.drive();
    assert_eq!(pair.client(0).handshake().unwrap().max_payload, 100);
    let sent: Vec<Message> = (0..50).map(|i| text(&format!("message {i:03}"))).collect();
    for message in &sent {
        pair.client_send(0, message.clone());
    }
    pair.drive();
    let events = pair.server_events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ServerEvent::Closed { .. })),
        "{events:?}"
    );
    let received: Vec<Message> = events
        .into_iter()
        .filter_map(|event| match event {
            ServerEvent::Message { message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(received, sent);
}

#[test]
fn several_clients_at_once() {
    let mut pair = Pair::server_only(server_config());
    for transports in ALL_TRANSPORTS {
        pair.add_client(client_config(transports));
    }
    pair.drive();
    let sids: Vec<String> = (0..3).map(|i| pair.sid(i)).collect();
    assert_eq!(
        sids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    for index in 0..3 {
        pair.client_events(index);
        pair.server_send(index, text(&format!("to {index}")));
    }
    pair.drive();
    for index in 0..3 {
        assert_eq!(
            pair.client_messages(index),
            vec![text(&format!("to {index}"))]
        );
    }
    pair.advance(Duration::from_secs(10));
    for index in 0..3 {
        assert!(pair.client_events(index).is_empty());
    }
}

#[test]
fn cut_websocket_on_the_client_side_only() {
    let mut pair = open_pair(ClientTransports::WebSocket);
    let conn = pair.open_conns(0)[0];
    pair.cut_client_side(0, conn);
    pair.drive();
    assert!(matches!(
        &pair.client_events(0)[..],
        [ClientEvent::Closed(ClientCloseReason::TransportClose)]
    ));
    // The server finds out by the missing pong.
    pair.advance(Duration::from_millis(500));
    assert_closed_on_server(&pair.server_events(), &[CloseReason::PingTimeout]);
}

#[test]
fn cut_websocket_on_the_server_side_only() {
    let mut pair = open_pair(ClientTransports::WebSocket);
    let conn = pair.open_conns(0)[0];
    pair.cut_server_side(0, conn);
    pair.drive();
    // A WebSocket that ends without a close frame is a "transport close" in
    // engine.io, not a transport error.
    assert_closed_on_server(&pair.server_events(), &[CloseReason::TransportClose]);
    // The client finds out by the missing ping.
    pair.advance(Duration::from_millis(500));
    assert!(matches!(
        &pair.client_events(0)[..],
        [ClientEvent::Closed(ClientCloseReason::PingTimeout)]
    ));
}

#[test]
fn corrupted_bytes_end_the_session_cleanly() {
    for transports in ALL_TRANSPORTS {
        let mut pair = open_pair(transports);
        let conns = pair.open_conns(0);
        for conn in conns {
            pair.drop_to_client(0, conn, 3);
        }
        pair.server_send(0, text("mangled"));
        pair.drive();
        pair.advance(Duration::from_secs(2));
        // Whatever happened, both sides ended the session.
        assert!(pair.client(0).is_closed(), "{transports:?}");
        let events = pair.server_events();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ServerEvent::Closed { .. })),
            "{transports:?}: {events:?}"
        );
    }
}

#[test]
fn corrupted_bytes_towards_the_server_end_the_session_cleanly() {
    for transports in ALL_TRANSPORTS {
        let mut pair = open_pair(transports);
        let conns = pair.open_conns(0);
        for conn in conns {
            pair.drop_to_server(0, conn, 2);
        }
        pair.client_send(0, text("mangled"));
        pair.drive();
        pair.advance(Duration::from_secs(2));
        assert!(pair.client(0).is_closed(), "{transports:?}");
        let events = pair.server_events();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ServerEvent::Closed { .. })),
            "{transports:?}: {events:?}"
        );
    }
}

#[test]
fn stalled_poll_is_released() {
    let mut pair = open_pair(ClientTransports::Polling);
    let conns = pair.open_conns(0);
    for conn in &conns {
        pair.stall(0, *conn, true);
    }
    pair.server_send(0, text("held"));
    pair.drive();
    assert!(pair.client_messages(0).is_empty());
    for conn in &conns {
        pair.stall(0, *conn, false);
    }
    pair.drive();
    assert_eq!(pair.client_messages(0), vec![text("held")]);
}

/// A pair whose both sides want permessage-deflate.
#[cfg(feature = "deflate")]
fn deflate_pair(transports: ClientTransports, server_on: bool, client_on: bool) -> Pair {
    let server = ServerConfig {
        websocket_compression: server_on,
        ..server_config()
    };
    let client = ClientConfig {
        websocket_compression: client_on,
        ..client_config(transports)
    };
    let mut pair = Pair::new(server, client);
    pair.drive();
    assert!(!pair.client(0).is_closed(), "{transports:?}");
    pair.client_events(0);
    pair.server_events();
    pair
}

#[cfg(feature = "deflate")]
#[test]
fn websocket_compression_round_trips_on_every_chunking() {
    for transports in [ClientTransports::WebSocket, ClientTransports::Upgrade] {
        for chunking in ALL_CHUNKINGS {
            let mut pair = deflate_pair(transports, true, true);
            pair.chunking = chunking;
            pair.seed_chunking(7);
            let messages = vec![
                text("short, under the threshold"),
                text(&"compressible text ".repeat(500)),
                binary(&vec![3; 20_000]),
                text("ünïcödé ✓ 😀"),
                text(&"again ".repeat(1000)),
            ];
            let (before_up, before_down) = (pair.bytes_to_server, pair.bytes_to_client);
            for message in &messages {
                pair.client_send(0, message.clone());
                pair.server_send(0, message.clone());
            }
            pair.drive();
            assert_eq!(
                pair.server_messages(),
                messages,
                "{transports:?} {chunking:?}"
            );
            assert_eq!(
                pair.client_messages(0),
                messages,
                "{transports:?} {chunking:?}"
            );
            // About 35 KB of messages each way; compressed they take little.
            let (up, down) = (
                pair.bytes_to_server - before_up,
                pair.bytes_to_client - before_down,
            );
            assert!(up < 2_000 && down < 2_000, "{up} {down}");
            assert_eq!(pair.client(0).transport(), Some(Transport::WebSocket));
        }
    }
}

#[cfg(feature = "deflate")]
#[test]
fn websocket_compression_needs_both_sides() {
    for (server_on, client_on) in [(true, false), (false, true), (false, false)] {
        let mut pair = deflate_pair(ClientTransports::WebSocket, server_on, client_on);
        let big = text(&"x".repeat(10_000));
        let before = pair.bytes_to_client;
        pair.server_send(0, big.clone());
        pair.drive();
        assert_eq!(pair.client_messages(0), vec![big]);
        assert!(
            pair.bytes_to_client - before > 10_000,
            "{server_on} {client_on}"
        );
    }
}

#[cfg(feature = "deflate")]
#[test]
fn websocket_compression_keeps_heartbeats_and_close() {
    let mut pair = deflate_pair(ClientTransports::Upgrade, true, true);
    pair.advance(Duration::from_secs(5));
    assert!(!pair.client(0).is_closed());
    let now = pair.now();
    pair.client(0).close(now);
    pair.drive();
    assert_closed_on_server(
        &pair.server_events(),
        &[CloseReason::ClientClose, CloseReason::TransportClose],
    );
}
