//! Server endpoint benchmark: CPU of the sans-IO core per broadcast delivery
//! and per echo round-trip, driven exactly as the async driver drives it
//! (`runtimes/driver/src/server.rs`), without sockets or tasks.
//! Run: `cargo bench -p socketio-bench --bench endpoint`.
//!
//! 1,000 WebSocket clients are connected to `/` by feeding the core the raw
//! upgrade request and a masked `40` frame each, and join one room. Then:
//! - **broadcast**: the application broadcasts one event to the room and
//!   pumps; the driver drains `poll_ready`, and each connection's writer
//!   pulls `poll_transmit` until `None` and pumps (written-bytes
//!   accounting). Reported per delivery (one broadcast / 1,000).
//! - **echo**: one event arrives from one client, the application emits it
//!   back to that socket, and the driver drains as above.
//!
//! Variants run in interleaved rounds; medians are reported. The clients
//! never read: what the server writes is dropped after `poll_transmit`.

use std::time::{Duration, Instant};

use socketio_bench::{keep, Interleaved};
use socketio_core::endpoint::ServerEndpoint;
use socketio_core::engine::{self, ConnId, Transmit};
use socketio_core::fuzzing::FuzzRng;
use socketio_core::parser::JsonParser;
use socketio_core::socket::{self, Broadcast, ServerEvent};
use socketio_core::Str;

/// Receivers of each broadcast.
const CLIENTS: usize = 1_000;
const ROOM: &str = "room";

/// A client-to-server WebSocket text frame (masked with a zero key, which
/// leaves the payload as is).
fn client_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

const UPGRADE: &[u8] = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\
Host: localhost\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// One server with its connected clients, and the driver's side of it.
struct Rig {
    server: ServerEndpoint<JsonParser>,
    now: Instant,
    /// Each client's connection and socket id.
    clients: Vec<(ConnId, Str)>,
    /// Reused by [`Rig::drain`]: the connections whose writers were woken.
    woken: Vec<ConnId>,
    /// Application events seen (and dropped) while draining.
    events: Vec<ServerEvent>,
}

impl Rig {
    fn new(clients: usize) -> Rig {
        let mut rig = Rig {
            server: ServerEndpoint::new(
                engine::ServerConfig::default(),
                socket::ServerConfig::default(),
                JsonParser,
                Box::new(FuzzRng::new(1)),
                Box::new(FuzzRng::new(2)),
            ),
            now: Instant::now(),
            clients: Vec::with_capacity(clients),
            woken: Vec::new(),
            events: Vec::new(),
        };
        let connect = client_text_frame(b"40");
        for _ in 0..clients {
            let now = rig.now;
            let conn = rig.server.handle_connection(now, None);
            rig.server.handle_read(now, conn, UPGRADE);
            rig.server.handle_read(now, conn, &connect);
            let mut socket = None;
            while let Some(event) = rig.server.poll_event() {
                if let ServerEvent::Connect { socket: id, .. } = event {
                    socket = Some(id);
                }
            }
            let socket = socket.expect("CONNECT reported");
            rig.server.socket().accept(now, &socket).expect("accept");
            rig.server.socket().join(&socket, ROOM).expect("join");
            rig.server.pump(now);
            rig.drain();
            rig.clients.push((conn, socket));
        }
        rig.events.clear();
        assert_eq!(rig.server.engine().session_count(), clients);
        rig
    }

    /// What the driver does after every call into the endpoint: events out,
    /// writers woken, and each writer pulling its connection's bytes and
    /// pumping (written-bytes accounting). Returns the bytes written.
    fn drain(&mut self) -> usize {
        let now = self.now;
        self.events
            .extend(std::iter::from_fn(|| self.server.poll_event()));
        self.woken.clear();
        while let Some(conn) = self.server.poll_ready() {
            self.woken.push(conn);
        }
        let mut written = 0;
        for &conn in &self.woken {
            let mut pulled = false;
            while let Some(transmit) = self.server.poll_transmit(conn) {
                if let Transmit::Data(bytes) = transmit {
                    written += keep(bytes).len();
                    pulled = true;
                }
            }
            if pulled {
                self.server.pump(now);
            }
        }
        written
    }

    /// One broadcast to the room, fully written.
    fn broadcast(&mut self) {
        let now = self.now;
        let to = Broadcast::namespace("/").to(ROOM);
        let sent = self
            .server
            .socket()
            .broadcast(now, &to, "news", &("hello", 42))
            .expect("broadcast");
        debug_assert_eq!(sent, self.clients.len());
        self.server.pump(now);
        keep(self.drain());
    }

    /// One event in from the first client and the handler's emit back,
    /// fully written.
    fn echo(&mut self, frame: &[u8]) {
        let now = self.now;
        let conn = self.clients[0].0;
        self.server.handle_read(now, conn, frame);
        self.drain();
        for event in self.events.drain(..) {
            if let ServerEvent::Event { socket, args, .. } = event {
                self.server
                    .socket()
                    .emit(now, &socket, "echo", &args)
                    .expect("emit");
            }
        }
        self.server.pump(now);
        keep(self.drain());
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and
    // ignored (there are only two variants).
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let only = std::env::var("ONLY").ok();
    let start = Instant::now();
    let mut broadcast_rig = Rig::new(CLIENTS);
    let mut echo_rig = Rig::new(CLIENTS);
    eprintln!(
        "set up 2 x {CLIENTS} WebSocket clients in {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let frame = client_text_frame(br#"42["echo","hello",{"n":1}]"#);
    // A profile run (`ONLY=broadcast` or `ONLY=echo`): a fixed number of
    // operations, no timing, for callgrind or perf.
    if let Some(only) = only {
        let iterations: usize = std::env::var("ITERATIONS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(100);
        for _ in 0..iterations {
            match only.as_str() {
                "broadcast" => broadcast_rig.broadcast(),
                _ => echo_rig.echo(&frame),
            }
        }
        return;
    }
    let mut set = Interleaved::new(rounds, Duration::from_millis(100));
    set.add("broadcast to 1000", || broadcast_rig.broadcast());
    set.add("echo", || echo_rig.echo(&frame));
    let results = set.run();
    println!("{:<28} {:>14}", "endpoint (median of rounds)", "ns");
    let broadcast = &results[0];
    println!(
        "{:<28} {:>14.0}   ({:.0} ns per delivery)",
        broadcast.name,
        broadcast.median_ns,
        broadcast.median_ns / CLIENTS as f64
    );
    let echo = &results[1];
    println!(
        "{:<28} {:>14.0}   (ns per round-trip)",
        echo.name, echo.median_ns
    );
}
