//! The ZeroMQ bus against a real broker: python-socketio's forwarder
//! (`tests/interop/python/zmq_broker.py`, pyzmq with its bundled libzmq,
//! from the interop venv that `tests/interop/setup.sh` installs), killed
//! and restarted mid-test; and against fake brokers sending garbage.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use socketio_core::cluster::zmtp::{SocketType, ZmtpLimits, ZmtpSocket};
use socketio_core::cluster::{BusCommand, BusInput, ChannelKind};
use socketio_core::Str;
use socketio_driver::zmq::{spawn_zmq_bus, ZmqBus, ZmqConfig, ZmqError};
use socketio_driver::Runtime;

mod common;
use common::{free_port, message, unique, PlainCommands};

// ---------------------------------------------------------------- broker

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// The interop venv's python, set up once (the test fails without it).
fn python() -> PathBuf {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    let setup = SETUP.get_or_init(|| {
        let out = Command::new("bash")
            .arg(interop_dir().join("setup.sh"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = setup {
        panic!("tests/interop/setup.sh failed: {e}");
    }
    interop_dir().join(".venv/bin/python")
}

/// `zmq_broker.py` on two free ports, killed on drop; restartable on the
/// same ports.
struct Broker {
    child: Option<Child>,
    sink: u16,
    publisher: u16,
}

impl Broker {
    fn start() -> Broker {
        let mut b = Broker {
            child: None,
            sink: free_port(),
            publisher: free_port(),
        };
        b.spawn();
        b
    }

    fn url(&self) -> String {
        format!("zmq+tcp://127.0.0.1:{}+{}", self.sink, self.publisher)
    }

    fn spawn(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(python())
                .arg(interop_dir().join("python/zmq_broker.py"))
                .args(["--sink", &self.sink.to_string()])
                .args(["--pub", &self.publisher.to_string()])
                .env("INTEROP_EXIT_ON_STDIN_EOF", "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start zmq_broker.py");
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if line.trim() == "broker ready" {
                self.child = Some(child);
                return;
            }
            // The ports may linger a moment after a kill.
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "zmq_broker.py did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kill(&mut self) {
        common::kill(&mut self.child);
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Push raw frames to the sink as a PUSH peer of our own (the core's
    /// codec over a blocking socket), then close.
    fn push_raw(&self, frames: &[&[u8]]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.sink)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut socket = ZmtpSocket::new(SocketType::Push, None, ZmtpLimits::default());
        let mut buf = [0u8; 1024];
        while !socket.is_open() {
            while let Some(b) = socket.poll_transmit() {
                s.write_all(&b).unwrap();
            }
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the broker closed the connection");
            socket.handle_bytes(&buf[..n]).unwrap();
        }
        for frame in frames {
            socket.send(&[frame]);
        }
        while let Some(b) = socket.poll_transmit() {
            s.write_all(&b).unwrap();
        }
        // Let the broker read them before the FIN.
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------- bus

type TestBus = common::TestBus<ZmqBus>;

impl TestBus {
    fn new(runtime: Arc<dyn Runtime>, config: ZmqConfig) -> TestBus {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_test_writer()
            .try_init();
        let config = config
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
            .connect_timeout(Duration::from_secs(3));
        TestBus::start(runtime.clone(), Duration::from_secs(10), |rx, inputs| {
            spawn_zmq_bus(runtime, config, rx, inputs)
        })
    }

    fn url(runtime: &Arc<dyn Runtime>, url: &str) -> TestBus {
        TestBus::new(runtime.clone(), ZmqConfig::from_url(url).unwrap())
    }

    async fn flush(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        self.bus.flush(deadline).await.expect("flush");
    }
}

fn json(i: u32) -> Vec<u8> {
    format!("{{\"method\": \"emit\", \"n\": {i}}}").into_bytes()
}

// ------------------------------------------------------------- scenarios

async fn pubsub_scenario(rt: Arc<dyn Runtime>) {
    let broker = Broker::start();
    let ch = unique("socketio");
    let a = TestBus::url(&rt, &broker.url());
    let b = TestBus::url(&rt, &broker.url());
    a.subscribe(&ch);
    b.subscribe(&ch);
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    // Every node gets every message of its channel, its own included.
    b.publish(&ch, &json(0));
    a.expect(message(&ch, &json(0))).await;
    b.expect(message(&ch, &json(0))).await;
    // Another channel on the same broker: nobody here listens.
    a.publish("elsewhere", &json(1));
    // Not JSON: python could not read it, so it is not published.
    a.publish(&ch, &[0x93, 0, 0xff]);
    // In order, many (fewer than the broker's PUB queues per subscriber,
    // 1000 by default, past which libzmq drops).
    for i in 2..502 {
        a.publish(&ch, &json(i));
    }
    a.flush().await;
    for i in 2..502 {
        b.expect(message(&ch, &json(i))).await;
    }
    for i in 2..502 {
        a.expect(message(&ch, &json(i))).await;
    }
    // A large one (long frames, many reads).
    let big = format!(
        "{{\"method\": \"emit\", \"data\": \"{}\"}}",
        "x".repeat(3 << 20)
    );
    b.publish(&ch, big.as_bytes());
    a.expect(message(&ch, big.as_bytes())).await;
    b.expect(message(&ch, big.as_bytes())).await;
    // Counting is not a thing on ZeroMQ.
    a.counts_zero(&ch).await;
    // Unsubscribed: nothing more.
    a.send(BusCommand::Unsubscribe {
        channel: Str::from(ch.as_str()),
        kind: ChannelKind::Plain,
    });
    a.flush().await;
    b.publish(&ch, b"{\"only\": \"b\"}");
    b.expect(message(&ch, b"{\"only\": \"b\"}")).await;
    assert_eq!(a.next_within(Duration::from_millis(300)).await, None);
    a.bus.stop();
    b.bus.stop();
}

#[test]
fn pubsub_tokio() {
    common::on_tokio(pubsub_scenario);
}

#[test]
fn pubsub_async_std() {
    socketio_async_std::AsyncStdRuntime::block_on(pubsub_scenario(Arc::new(
        socketio_async_std::AsyncStdRuntime,
    )));
}

#[test]
fn pubsub_smol() {
    socketio_smol::SmolRuntime::block_on(pubsub_scenario(Arc::new(socketio_smol::SmolRuntime)));
}

/// Frames that are no envelope, envelopes of other kinds, an oversized
/// frame: skipped, and the link stays up.
#[test]
fn hostile_frames_through_the_broker() {
    let broker = Broker::start();
    common::on_tokio(|rt| async move {
        let config = ZmqConfig::from_url(&broker.url())
            .unwrap()
            .max_message_bytes(4096);
        let a = TestBus::new(rt.clone(), config);
        a.subscribe("socketio");
        a.expect(BusInput::Up).await;
        let big = vec![b'{'; 10_000];
        broker.push_raw(&[
            b"not json",
            b"\xff\xfe",
            b"",
            b"[1,2]",
            br#"{"type":"message","channel":"socketio"}"#,
            br#"{"type":"message","channel":7,"data":{}}"#,
            br#"{"type":"subscribe","channel":"socketio","data":{}}"#,
            &big,
            br#"{"type": "message", "channel": "socketio", "data": {"method": "ok"}}"#,
        ]);
        a.expect(message("socketio", br#"{"method": "ok"}"#)).await;
        assert_eq!(a.next_within(Duration::from_millis(300)).await, None);
        a.bus.stop();
    });
}

#[test]
fn broker_restart() {
    let mut broker = Broker::start();
    common::on_tokio(|rt| async move {
        let url = broker.url();
        let ch = unique("socketio");
        let config = ZmqConfig::from_url(&url)
            .unwrap()
            .heartbeat(Duration::from_millis(500));
        let a = TestBus::new(rt.clone(), config);
        let b = TestBus::url(&rt, &url);
        a.subscribe(&ch);
        a.expect(BusInput::Up).await;
        b.expect(BusInput::Up).await;
        b.publish(&ch, br#"{"m": "before"}"#);
        a.expect(message(&ch, br#"{"m": "before"}"#)).await;

        broker.kill();
        a.expect(BusInput::Down).await;
        b.expect(BusInput::Down).await;
        b.publish(&ch, br#"{"m": "queued"}"#);
        let flushing = b
            .bus
            .flush(Instant::now() + Duration::from_millis(300))
            .await;
        assert!(
            matches!(flushing, Err(ZmqError::Timeout(_))),
            "flush cannot succeed while the broker is down: {flushing:?}"
        );
        broker.restart();
        a.expect(BusInput::Up).await;
        b.expect(BusInput::Up).await;
        b.flush().await;
        // The queued publish went out once b was up; a hears it if it was
        // up first (at most once), then what follows.
        b.publish(&ch, br#"{"m": "after"}"#);
        loop {
            match a.next().await {
                m if m == message(&ch, br#"{"m": "queued"}"#) => continue,
                m => {
                    assert_eq!(m, message(&ch, br#"{"m": "after"}"#));
                    break;
                }
            }
        }
        a.bus.stop();
        b.bus.stop();
    });
}

#[test]
fn queue_bound_while_down() {
    let port = free_port();
    common::on_tokio(|rt| async move {
        let url = format!("zmq+tcp://127.0.0.1:{port}+{port}");
        let config = ZmqConfig::from_url(&url).unwrap().max_queued_bytes(300);
        let bus = TestBus::new(rt.clone(), config);
        for i in 0..10 {
            bus.publish("c", &json(i));
        }
        let r = bus
            .bus
            .flush(Instant::now() + Duration::from_millis(200))
            .await;
        assert!(matches!(r, Err(ZmqError::Timeout(_))), "{r:?}");
        assert_eq!(bus.next_within(Duration::from_millis(100)).await, None);
        bus.bus.stop();
        assert!(bus.bus.is_stopped());
        let r = bus
            .bus
            .flush(Instant::now() + Duration::from_millis(200))
            .await;
        assert!(matches!(r, Err(ZmqError::Stopped)), "{r:?}");
    });
}

/// Fake brokers answering garbage, or a ZMTP peer of the wrong type, or
/// one that never relays the probe: the bus keeps trying, never comes up,
/// never panics.
#[test]
fn garbage_brokers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 256];
                let _ = stream.read(&mut buf);
                let garbage: Vec<u8> = match i % 4 {
                    0 => b"-ERR not zeromq\r\n".to_vec(),
                    // A ZMTP peer of the wrong type (PUSH to PUSH).
                    1 | 2 => {
                        let mut p = ZmtpSocket::new(SocketType::Push, None, ZmtpLimits::default());
                        p.poll_transmit().unwrap().to_vec()
                    }
                    // A long frame of 2^63 bytes after a good handshake.
                    _ => {
                        let mut p = ZmtpSocket::new(SocketType::Pull, None, ZmtpLimits::default());
                        let mut g = p.poll_transmit().unwrap().to_vec();
                        g.extend([0x06, 0x80, 0, 0, 0, 0, 0, 0, 0]);
                        g
                    }
                };
                let _ = stream.write_all(&garbage);
                std::thread::sleep(Duration::from_millis(300));
            });
        }
    });
    common::on_tokio(|rt| async move {
        let bus = TestBus::url(&rt, &format!("zmq+tcp://127.0.0.1:{port}+{port}"));
        assert_eq!(bus.next_within(Duration::from_secs(3)).await, None);
        assert!(
            accepted.load(Ordering::SeqCst) >= 4,
            "the bus should have reconnected several times"
        );
        bus.bus.stop();
    });
}

/// ZMTP 3.1 heartbeats with libzmq: PINGs are answered, so a quiet link
/// stays up across many silence windows.
#[test]
fn heartbeats_keep_a_quiet_link_up() {
    let broker = Broker::start();
    common::on_tokio(|rt| async move {
        let config = ZmqConfig::from_url(&broker.url())
            .unwrap()
            .heartbeat(Duration::from_millis(100));
        let a = TestBus::new(rt.clone(), config);
        a.subscribe("socketio");
        a.expect(BusInput::Up).await;
        // Ten times the silence that breaks a link without PONGs.
        assert_eq!(a.next_within(Duration::from_secs(3)).await, None);
        a.publish("socketio", br#"{"still": "up"}"#);
        a.expect(message("socketio", br#"{"still": "up"}"#)).await;
        a.bus.stop();
    });
}
