//! Read-side flow control through the real driver on tokio: a TCP client
//! that floods acked events and never reads is no longer read once the
//! server owes it more than the soft bound (TCP pushes back on it), what
//! the server holds for it stays bounded, its slow-consumer deadline
//! still fires while it is paused, and a fresh client is served meanwhile.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use socketio_core::endpoint::ServerEndpoint;
use socketio_core::engine::{self, ConnId};
use socketio_core::parser::JsonParser;
use socketio_core::socket::{self, DisconnectReason, ServerEvent};
use socketio_driver::{os_rng, ServerDriver};

mod common;

/// What the server may owe one connection before it stops reading it.
const SOFT: usize = 64 * 1024;
/// Most a flooding client tries to send: far beyond what the kernel's
/// socket buffers hold, so a server that kept reading would take it all.
const FLOOD_CAP: usize = 256 << 20;

/// A raw Engine.IO WebSocket client on a blocking socket, connected to
/// `/` (the upgrade, the open packet and the CONNECT answer read).
fn ws_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    read_until(&mut stream, b"\"sid\"");
    stream.write_all(&frame("40")).unwrap();
    read_until(&mut stream, b"40{");
    stream
}

/// Reads until `needle` has been seen (bounded by the read timeout).
fn read_until(stream: &mut TcpStream, needle: &[u8]) {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = stream.read(&mut buf).expect("answer within the timeout");
        assert!(n > 0, "closed before {:?}", String::from_utf8_lossy(needle));
        seen.extend_from_slice(&buf[..n]);
    }
}

/// A masked (zero key) client text frame.
fn frame(text: &str) -> Vec<u8> {
    let mut frame = vec![0x81];
    if text.len() < 126 {
        frame.push(0x80 | text.len() as u8);
    } else {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(text.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(text.as_bytes());
    frame
}

/// Floods acked events without ever reading; reports the bytes written
/// and whether a write blocked past its timeout (the server stopped
/// reading and TCP pushed back), then keeps the connection open until
/// `hold` is dropped (the server's deadlines decide its end).
fn flood(mut stream: TcpStream, report: mpsc::Sender<(usize, bool)>, hold: mpsc::Receiver<()>) {
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut chunk = Vec::new();
    let mut id = 0u64;
    let mut sent = 0;
    while sent < FLOOD_CAP {
        chunk.clear();
        while chunk.len() < 64 * 1024 {
            chunk.extend_from_slice(&frame(&format!(r#"42{id}["echo","{}"]"#, "x".repeat(20))));
            id += 1;
        }
        match stream.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let _ = report.send((sent, true));
                let _ = hold.recv_timeout(Duration::from_secs(60));
                return;
            }
            Err(_) => break,
        }
    }
    let _ = report.send((sent, false));
}

#[test]
fn a_client_that_floods_and_never_reads_is_paused_and_bounded() {
    common::on_tokio(|rt| async move {
        let engine_config = engine::ServerConfig {
            ping_interval: Duration::from_secs(60),
            max_buffered_output: SOFT,
            ..Default::default()
        };
        let socket_config = socket::ServerConfig {
            max_buffered_bytes: SOFT,
            slow_consumer_grace: Duration::from_secs(6),
            ..Default::default()
        };
        let endpoint =
            ServerEndpoint::new(engine_config, socket_config, JsonParser, os_rng(), os_rng());
        let (server, mut events) = ServerDriver::new(rt.clone(), endpoint);
        let listener = rt.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        server.serve(listener);
        // The application: accept, ack and echo every event.
        let disconnects: Arc<Mutex<Vec<DisconnectReason>>> = Arc::default();
        let app = server.clone();
        let seen = disconnects.clone();
        rt.spawn(Box::pin(async move {
            while let Some(event) = events.next().await {
                app.with(|ep, now| match event {
                    ServerEvent::Connect { socket, .. } => {
                        let _ = ep.socket().accept(now, &socket);
                    }
                    ServerEvent::Event {
                        socket, args, ack, ..
                    } => {
                        if let Some(id) = ack {
                            let _ = ep.socket().ack(now, &socket, id, &args);
                        }
                        let _ = ep.socket().emit(now, &socket, "echo-back", &args);
                    }
                    ServerEvent::Disconnect { reason, .. } => {
                        seen.lock().unwrap().push(reason);
                    }
                    _ => {}
                });
            }
        }));

        let flooder = ws_client(addr);
        let (report, flooded_report) = mpsc::channel();
        let (hold, held) = mpsc::channel::<()>();
        let flooding = std::thread::spawn(move || flood(flooder, report, held));
        // What the server owes the flooder (its first connection), sampled
        // until the flood is pushed back.
        let flooded = ConnId(0);
        let mut most = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        let (sent, pushed_back) = loop {
            assert!(Instant::now() < deadline, "flood never pushed back");
            let owed = server.with(|ep, _| ep.engine().conn_buffered(flooded));
            most = most.max(owed.unwrap_or(0));
            if let Ok(result) = flooded_report.try_recv() {
                break result;
            }
            rt.sleep_until(Instant::now() + Duration::from_millis(5))
                .await;
        };
        // The flood blocks in TCP: the server stopped reading it.
        assert!(pushed_back, "the server read all {sent} bytes");
        // One read (16 KiB; 64 KiB at most) makes at most ~2.5 times its
        // size in acks and echoes on top of the soft bound.
        eprintln!("flood: {sent} bytes written before TCP pushed back; at most {most} bytes owed");
        assert!(most <= SOFT + 3 * 64 * 1024, "{most} bytes owed");
        // The flood's own time (a debug build on a busy machine) is not
        // taken from what follows.
        let deadline = Instant::now() + Duration::from_secs(60);

        // A fresh client is served meanwhile.
        let fresh = std::thread::spawn(move || {
            let mut client = ws_client(addr);
            client.write_all(&frame(r#"427["echo","hi"]"#)).unwrap();
            read_until(&mut client, br#"437["hi"]"#);
        });
        while !fresh.is_finished() {
            assert!(Instant::now() < deadline, "fresh client not served");
            rt.sleep_until(Instant::now() + Duration::from_millis(5))
                .await;
        }
        fresh.join().expect("fresh client served");

        // The paused flooder still meets its slow-consumer deadline.
        // (The fresh client's own end, `transport close`, may come first.)
        while !disconnects
            .lock()
            .unwrap()
            .contains(&DisconnectReason::SlowConsumer)
        {
            assert!(Instant::now() < deadline, "slow consumer never closed");
            rt.sleep_until(Instant::now() + Duration::from_millis(20))
                .await;
        }
        drop(hold);
        flooding.join().unwrap();
        server.close_all();
        server.stop();
    });
}
