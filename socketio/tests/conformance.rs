//! The `conformance_server` example against the behaviours the official
//! Engine.IO v4 and Socket.IO v5 test suites check, with hand-written
//! HTTP and WebSocket exchanges (the suites' cases, rewritten).

#[path = "../../examples/conformance_server.rs"]
#[allow(dead_code)]
mod conformance_server;

mod raw;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use raw::{get, post, request, Frame, Ws};
use socketio::Runtime;

/// One server for the whole file, on `runtime` in a thread of its own.
fn start_on(
    block_on: fn(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
    runtime: fn() -> Arc<dyn Runtime>,
) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        block_on(Box::pin(async move {
            let servers = conformance_server::start(0, runtime())
                .await
                .expect("server starts");
            tx.send(servers.addr).unwrap();
            std::future::pending::<()>().await;
        }))
    });
    rx.recv().expect("server address")
}

fn tokio_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        start_on(socketio_tokio::TokioRuntime::block_on, || {
            Arc::new(socketio_tokio::TokioRuntime::current_or_global())
        })
    })
}

/// The same servers mounted in an axum router, on tokio.
#[cfg(feature = "tower")]
fn axum_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            socketio_tokio::TokioRuntime::block_on(async move {
                let servers = conformance_server::start_mounted(0)
                    .await
                    .expect("server starts");
                tx.send(servers.addr).unwrap();
                std::future::pending::<()>().await;
            })
        });
        rx.recv().expect("server address")
    })
}

const EIO: &str = "/engine.io/?EIO=4";
const SIO: &str = "/socket.io/?EIO=4";

/// The open packet's JSON, checked against the configuration.
fn check_open(packet: &str, upgrades: &[&str]) -> String {
    assert!(packet.starts_with('0'), "{packet}");
    let open: serde_json::Value = serde_json::from_str(&packet[1..]).unwrap();
    let keys: Vec<&str> = open
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "maxPayload",
            "pingInterval",
            "pingTimeout",
            "sid",
            "upgrades"
        ]
    );
    assert_eq!(open["upgrades"], serde_json::json!(upgrades));
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    assert_eq!(open["maxPayload"], 1_000_000);
    open["sid"].as_str().expect("sid is a string").to_owned()
}

/// A new polling session on `base`; returns its sid.
fn polling_session(addr: SocketAddr, base: &str) -> String {
    let response = get(addr, &format!("{base}&transport=polling"));
    assert_eq!(response.status, 200);
    check_open(&response.text(), &["websocket"])
}

fn ws_session(addr: SocketAddr, base: &str) -> Ws {
    let mut ws = Ws::connect(addr, &format!("{base}&transport=websocket")).expect("websocket");
    match ws.recv() {
        Frame::Text(open) => {
            check_open(&open, &[]);
        }
        other => panic!("expected the open packet, got {other:?}"),
    }
    ws
}

fn text(frame: Frame) -> String {
    match frame {
        Frame::Text(t) => t,
        other => panic!("expected text, got {other:?}"),
    }
}

// ----- Engine.IO -----

fn engine_polling_handshake(addr: SocketAddr) {
    polling_session(addr, EIO);
}

fn engine_handshake_refusals(addr: SocketAddr) {
    for target in [
        "/engine.io/?transport=polling",
        "/engine.io/?EIO=abc&transport=polling",
        "/engine.io/?EIO=4",
        "/engine.io/?EIO=4&transport=abc",
    ] {
        assert_eq!(get(addr, target).status, 400, "{target}");
    }
    for method in ["POST", "PUT"] {
        let target = "/engine.io/?EIO=4&transport=polling";
        assert_eq!(request(addr, method, target, b"").status, 400, "{method}");
    }
    for target in [
        "/engine.io/?transport=websocket",
        "/engine.io/?EIO=abc&transport=websocket",
        "/engine.io/?EIO=4",
        "/engine.io/?EIO=4&transport=abc",
    ] {
        assert!(Ws::connect(addr, target).is_err(), "{target}");
    }
}

fn engine_websocket_handshake(addr: SocketAddr) {
    ws_session(addr, EIO);
}

fn engine_polling_echo(addr: SocketAddr) {
    for body in [
        "4hello",
        "4test1\x1e4test2\x1e4test3",
        "4hello\x1ebAQIDBA==",
    ] {
        let sid = polling_session(addr, EIO);
        let target = format!("{EIO}&transport=polling&sid={sid}");
        let pushed = post(addr, &target, body.as_bytes());
        assert_eq!((pushed.status, pushed.text().as_str()), (200, "ok"));
        // The echo is sent by an application task: the first GET may come
        // back as soon as the first packet is queued, so poll until every
        // packet is back, in order.
        let mut echoed: Vec<String> = Vec::new();
        for _ in 0..10 {
            let polled = get(addr, &target);
            assert_eq!(polled.status, 200);
            echoed.extend(polled.text().split('\x1e').map(str::to_owned));
            if echoed.len() >= body.split('\x1e').count() {
                break;
            }
        }
        assert_eq!(echoed.join("\x1e"), body);
    }
}

fn engine_polling_invalid_packet_closes(addr: SocketAddr) {
    let sid = polling_session(addr, EIO);
    let target = format!("{EIO}&transport=polling&sid={sid}");
    assert_eq!(post(addr, &target, b"abc").status, 400);
    assert_eq!(get(addr, &target).status, 400);
}

fn engine_duplicate_poll_closes(addr: SocketAddr) {
    let sid = polling_session(addr, EIO);
    let target = format!("{EIO}&transport=polling&sid={sid}");
    let first = {
        let target = target.clone();
        thread::spawn(move || get(addr, &target))
    };
    thread::sleep(Duration::from_millis(50));
    let second = get(addr, &format!("{target}&t=burst"));
    let first = first.join().unwrap();
    assert_eq!((first.status, first.text().as_str()), (200, "1"));
    assert!(matches!(second.status, 400 | 500), "{}", second.status);
    assert_eq!(get(addr, &target).status, 400);
}

fn engine_websocket_echo(addr: SocketAddr) {
    let mut ws = ws_session(addr, EIO);
    ws.send_text("4hello");
    assert_eq!(ws.recv_skip_pings(), Frame::Text("4hello".into()));
    ws.send_binary(&[1, 2, 3, 4]);
    assert_eq!(ws.recv_skip_pings(), Frame::Binary(vec![1, 2, 3, 4]));
    ws.send_text("abc");
    assert!(ws.closes_within(Duration::from_secs(2)));
}

fn engine_polling_heartbeat(addr: SocketAddr) {
    let sid = polling_session(addr, EIO);
    let target = format!("{EIO}&transport=polling&sid={sid}");
    for _ in 0..3 {
        let polled = get(addr, &target);
        assert_eq!((polled.status, polled.text().as_str()), (200, "2"));
        assert_eq!(post(addr, &target, b"3").status, 200);
    }
    // No pong: dead after interval + timeout.
    let sid = polling_session(addr, EIO);
    thread::sleep(Duration::from_millis(500));
    let target = format!("{EIO}&transport=polling&sid={sid}");
    assert_eq!(get(addr, &target).status, 400);
}

fn engine_websocket_heartbeat(addr: SocketAddr) {
    let mut ws = ws_session(addr, EIO);
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(ws.recv(), Frame::Text("2".into()));
        assert!(started.elapsed() < Duration::from_millis(400));
        ws.send_text("3");
    }
    let mut silent = ws_session(addr, EIO);
    let started = Instant::now();
    assert!(silent.closes_within(Duration::from_secs(2)));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(900),
        "{took:?}"
    );
}

fn engine_close(addr: SocketAddr) {
    let sid = polling_session(addr, EIO);
    let target = format!("{EIO}&transport=polling&sid={sid}");
    let pending = {
        let target = target.clone();
        thread::spawn(move || get(addr, &target))
    };
    thread::sleep(Duration::from_millis(50));
    assert_eq!(post(addr, &target, b"1").status, 200);
    let pending = pending.join().unwrap();
    assert_eq!((pending.status, pending.text().as_str()), (200, "6"));
    assert_eq!(get(addr, &target).status, 400);

    let mut ws = ws_session(addr, EIO);
    ws.send_text("1");
    assert!(ws.closes_within(Duration::from_secs(2)));
}

fn engine_upgrade(addr: SocketAddr) {
    for base in [EIO, SIO] {
        let sid = polling_session(addr, base);
        let ws_target = format!("{base}&transport=websocket&sid={sid}");
        let mut ws = Ws::connect(addr, &ws_target).expect("upgrade");
        ws.send_text("2probe");
        assert_eq!(ws.recv(), Frame::Text("3probe".into()));
        ws.send_text("5");
        // Give the upgrade a moment to land before polling again.
        thread::sleep(Duration::from_millis(50));
        let polled = get(addr, &format!("{base}&transport=polling&sid={sid}"));
        assert_eq!(polled.status, 400);
        // A second WebSocket for the same session is accepted, then closed.
        if let Ok(mut second) = Ws::connect(addr, &ws_target) {
            assert!(second.closes_within(Duration::from_secs(2)));
        }
        if base == EIO {
            ws.send_text("4upgraded");
            assert_eq!(ws.recv_skip_pings(), Frame::Text("4upgraded".into()));
        }
    }
}

// ----- Socket.IO -----

/// A session with `/` joined (the CONNECT reply and `auth` consumed).
fn sio_connected(addr: SocketAddr) -> Ws {
    let mut ws = ws_session(addr, SIO);
    ws.send_text("40");
    assert!(text(ws.recv_skip_pings()).starts_with("40{"));
    assert_eq!(text(ws.recv_skip_pings()), r#"42["auth",{}]"#);
    ws
}

fn socketio_handshakes(addr: SocketAddr) {
    polling_session(addr, SIO);
    ws_session(addr, SIO);
}

fn socketio_connect(addr: SocketAddr) {
    for (connect, prefix, auth) in [
        ("40", "40", r#"42["auth",{}]"#),
        (
            r#"40{"token":"123"}"#,
            "40",
            r#"42["auth",{"token":"123"}]"#,
        ),
        ("40/custom,", "40/custom,", r#"42/custom,["auth",{}]"#),
        (
            r#"40/custom,{"token":"abc"}"#,
            "40/custom,",
            r#"42/custom,["auth",{"token":"abc"}]"#,
        ),
    ] {
        let mut ws = ws_session(addr, SIO);
        ws.send_text(connect);
        let reply = text(ws.recv_skip_pings());
        assert!(reply.starts_with(prefix), "{reply}");
        let handshake: serde_json::Value = serde_json::from_str(&reply[prefix.len()..]).unwrap();
        let keys: Vec<&String> = handshake.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["sid"]);
        assert!(handshake["sid"].is_string());
        assert_eq!(text(ws.recv_skip_pings()), auth);
    }
}

fn socketio_connect_refusals(addr: SocketAddr) {
    let mut ws = ws_session(addr, SIO);
    ws.send_text("40/random");
    assert_eq!(
        text(ws.recv_skip_pings()),
        r#"44/random,{"message":"Invalid namespace"}"#
    );

    let mut ws = ws_session(addr, SIO);
    ws.send_text("4abc");
    assert!(ws.closes_within(Duration::from_secs(2)));

    // No CONNECT: closed after the 1 s connect timeout (pings answered
    // meanwhile, so the heartbeat is not what closes it).
    let mut ws = ws_session(addr, SIO);
    let started = Instant::now();
    loop {
        match ws.recv() {
            Frame::Text(t) if t == "2" => ws.send_text("3"),
            // The Engine.IO close packet, then the close frame.
            Frame::Text(t) if t == "1" => {}
            Frame::Closed => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

fn socketio_disconnect(addr: SocketAddr) {
    let mut ws = sio_connected(addr);
    ws.send_text("41");
    // No reply; the session stays up: the next packet is a ping.
    assert_eq!(ws.recv(), Frame::Text("2".into()));

    let mut ws = sio_connected(addr);
    ws.send_text("40/custom");
    assert!(text(ws.recv_skip_pings()).starts_with("40/custom,"));
    assert_eq!(text(ws.recv_skip_pings()), r#"42/custom,["auth",{}]"#);
    ws.send_text("41/custom");
    ws.send_text(r#"42["message","message to main namespace"]"#);
    assert_eq!(
        text(ws.recv_skip_pings()),
        r#"42["message-back","message to main namespace"]"#
    );
}

fn socketio_messages(addr: SocketAddr) {
    let mut ws = sio_connected(addr);
    ws.send_text(r#"42["message",1,"2",{"3":[true]}]"#);
    assert_eq!(
        text(ws.recv_skip_pings()),
        r#"42["message-back",1,"2",{"3":[true]}]"#
    );

    let placeholders = r#"{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}"#;
    ws.send_text(&format!(r#"452-["message",{placeholders}]"#));
    ws.send_binary(&[1, 2, 3]);
    ws.send_binary(&[4, 5, 6]);
    assert_eq!(
        text(ws.recv_skip_pings()),
        format!(r#"452-["message-back",{placeholders}]"#)
    );
    assert_eq!(ws.recv_skip_pings(), Frame::Binary(vec![1, 2, 3]));
    assert_eq!(ws.recv_skip_pings(), Frame::Binary(vec![4, 5, 6]));

    ws.send_text(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#);
    assert_eq!(text(ws.recv_skip_pings()), r#"43456[1,"2",{"3":[false]}]"#);

    ws.send_text(&format!(r#"452-789["message-with-ack",{placeholders}]"#));
    ws.send_binary(&[1, 2, 3]);
    ws.send_binary(&[4, 5, 6]);
    assert_eq!(
        text(ws.recv_skip_pings()),
        format!(r#"462-789[{placeholders}]"#)
    );
    assert_eq!(ws.recv_skip_pings(), Frame::Binary(vec![1, 2, 3]));
    assert_eq!(ws.recv_skip_pings(), Frame::Binary(vec![4, 5, 6]));

    // The custom namespace answers with its prefix.
    ws.send_text("40/custom,");
    assert!(text(ws.recv_skip_pings()).starts_with("40/custom,"));
    assert_eq!(text(ws.recv_skip_pings()), r#"42/custom,["auth",{}]"#);
    ws.send_text(r#"42/custom,7["message-with-ack","x"]"#);
    assert_eq!(text(ws.recv_skip_pings()), r#"43/custom,7["x"]"#);
}

fn socketio_invalid_packets_close(addr: SocketAddr) {
    for packet in [
        "4abc",
        "42{}",
        r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#,
        // Arguments found invalid only when checked (the lazy JSON path).
        r#"42["message",{"a":]"#,
    ] {
        let mut ws = sio_connected(addr);
        ws.send_text(packet);
        assert!(ws.closes_within(Duration::from_secs(2)), "{packet}");
    }
}

fn unknown_paths_get_404(addr: SocketAddr) {
    assert_eq!(get(addr, "/elsewhere/?EIO=4&transport=polling").status, 404);
}

/// The same server on the other runtimes: a handshake, an echo and a
/// Socket.IO exchange each.
#[test]
fn other_runtimes() {
    let servers = [
        start_on(socketio_smol::SmolRuntime::block_on, || {
            Arc::new(socketio_smol::SmolRuntime)
        }),
        start_on(socketio_async_std::AsyncStdRuntime::block_on, || {
            Arc::new(socketio_async_std::AsyncStdRuntime)
        }),
    ];
    for addr in servers {
        let sid = polling_session(addr, EIO);
        let target = format!("{EIO}&transport=polling&sid={sid}");
        assert_eq!(post(addr, &target, b"4hi\x1ebAQI=").status, 200);
        assert_eq!(get(addr, &target).text(), "4hi\x1ebAQI=");
        let mut ws = sio_connected(addr);
        ws.send_text(r#"421["message-with-ack",true]"#);
        assert_eq!(text(ws.recv_skip_pings()), "431[true]");
    }
}

/// The suites' cases as tests against one server: our own listener on
/// tokio, or the same handlers mounted in axum (`--mount axum`).
macro_rules! suite {
    ($server:ident) => {
        #[test]
        fn engine_polling_handshake() {
            super::super::engine_polling_handshake(super::super::$server());
        }

        #[test]
        fn engine_handshake_refusals() {
            super::super::engine_handshake_refusals(super::super::$server());
        }

        #[test]
        fn engine_websocket_handshake() {
            super::super::engine_websocket_handshake(super::super::$server());
        }

        #[test]
        fn engine_polling_echo() {
            super::super::engine_polling_echo(super::super::$server());
        }

        #[test]
        fn engine_polling_invalid_packet_closes() {
            super::super::engine_polling_invalid_packet_closes(super::super::$server());
        }

        #[test]
        fn engine_duplicate_poll_closes() {
            super::super::engine_duplicate_poll_closes(super::super::$server());
        }

        #[test]
        fn engine_websocket_echo() {
            super::super::engine_websocket_echo(super::super::$server());
        }

        #[test]
        fn engine_polling_heartbeat() {
            super::super::engine_polling_heartbeat(super::super::$server());
        }

        #[test]
        fn engine_websocket_heartbeat() {
            super::super::engine_websocket_heartbeat(super::super::$server());
        }

        #[test]
        fn engine_close() {
            super::super::engine_close(super::super::$server());
        }

        #[test]
        fn engine_upgrade() {
            super::super::engine_upgrade(super::super::$server());
        }

        #[test]
        fn socketio_handshakes() {
            super::super::socketio_handshakes(super::super::$server());
        }

        #[test]
        fn socketio_connect() {
            super::super::socketio_connect(super::super::$server());
        }

        #[test]
        fn socketio_connect_refusals() {
            super::super::socketio_connect_refusals(super::super::$server());
        }

        #[test]
        fn socketio_disconnect() {
            super::super::socketio_disconnect(super::super::$server());
        }

        #[test]
        fn socketio_messages() {
            super::super::socketio_messages(super::super::$server());
        }

        #[test]
        fn socketio_invalid_packets_close() {
            super::super::socketio_invalid_packets_close(super::super::$server());
        }

        #[test]
        fn unknown_paths_get_404() {
            super::super::unknown_paths_get_404(super::super::$server());
        }
    };
}

mod own_listener {
    mod tokio {
        suite!(tokio_server);
    }
}

#[cfg(feature = "tower")]
mod mounted {
    mod axum {
        suite!(axum_server);

        /// The axum router's own route still answers.
        #[test]
        fn axum_route_beside_the_servers() {
            let response = super::super::get(super::super::axum_server(), "/health");
            assert_eq!((response.status, response.text().as_str()), (200, "ok"));
        }
    }
}
