//! The Kafka bus against a real Kafka-protocol broker: tansu, an Apache
//! Kafka-compatible broker from crates.io, run with in-memory storage.
//! `tests/interop/tansu.sh` finds the binary (`$SOCKETIO_TANSU`, else
//! `~/.cache/socketio-tansu`) or installs it with `cargo install` (several
//! minutes, once); without it the broker tests fail. Fake brokers sending
//! garbage need nothing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use socketio_core::cluster::{BusCommand, BusInput, ChannelKind};
use socketio_core::Str;
use socketio_driver::kafka::{spawn_kafka_bus, KafkaBus, KafkaBusError, KafkaConfig};
use socketio_driver::Runtime;

mod common;
use common::{assert_never_up, free_port, garbage_broker, message, PlainCommands};

// ---------------------------------------------------------------- broker

/// The tansu binary (`tests/interop/tansu.sh`, installing it if missing).
fn tansu() -> PathBuf {
    static TANSU: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TANSU
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/tansu.sh");
            let output = Command::new("sh")
                .arg(&script)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
            if output.status.success() && !path.is_empty() {
                Ok(PathBuf::from(path))
            } else {
                Err(format!("{} failed ({})", script.display(), output.status))
            }
        })
        .clone()
        .unwrap_or_else(|e| panic!("no tansu, the Kafka broker of these tests: {e}"))
}

/// A tansu broker child process with in-memory storage, killed on drop.
struct Broker {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
}

impl Broker {
    fn start(topics: &[(&str, u32)]) -> Broker {
        let mut broker = Broker {
            bin: tansu(),
            child: None,
            port: free_port(),
        };
        broker.spawn(topics);
        broker
    }

    fn spawn(&mut self, topics: &[(&str, u32)]) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.bin)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        for (topic, partitions) in topics {
            self.create_topic(topic, *partitions);
        }
    }

    fn create_topic(&self, topic: &str, partitions: u32) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = Command::new(&self.bin)
                .args(["topic", "create", topic, "--broker"])
                .arg(format!("tcp://127.0.0.1:{}", self.port))
                .args(["--partitions", &partitions.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "cannot create topic {topic}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("kafka://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        common::kill(&mut self.child);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------- bus

type TestBus = common::TestBus<KafkaBus>;

fn config(url: &str) -> KafkaConfig {
    KafkaConfig::from_urls(url)
        .unwrap()
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
        .connect_timeout(Duration::from_secs(2))
        .io_timeout(Duration::from_secs(3))
        .fetch_wait(Duration::from_millis(100))
}

impl TestBus {
    fn new(runtime: Arc<dyn Runtime>, config: KafkaConfig) -> TestBus {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_test_writer()
            .try_init();
        TestBus::start(runtime.clone(), Duration::from_secs(10), |rx, inputs| {
            spawn_kafka_bus(runtime, config, rx, inputs)
        })
    }

    async fn flush(&self) {
        self.bus
            .flush(Instant::now() + Duration::from_secs(10))
            .await
            .expect("flush");
    }
}

// ------------------------------------------------------------- scenarios

async fn exchange_scenario(rt: Arc<dyn Runtime>, url: String) {
    // A message published before anyone subscribed is not seen.
    let early = TestBus::new(rt.clone(), config(&url));
    early.expect(BusInput::Up).await;
    early.publish("socketio", b"too early");
    early.flush().await;

    let a = TestBus::new(rt.clone(), config(&url));
    let b = TestBus::new(rt.clone(), config(&url));
    a.subscribe("socketio");
    b.subscribe("socketio");
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    a.flush().await;
    b.flush().await;
    b.publish("socketio", b"{\"method\":\"emit\"}");
    a.expect(message("socketio", b"{\"method\":\"emit\"}"))
        .await;
    b.expect(message("socketio", b"{\"method\":\"emit\"}"))
        .await;
    // Opaque bytes, in order.
    for i in 0..50u8 {
        a.publish("socketio", &[0x93, i, 0xff, b'\r', b'\n']);
    }
    for i in 0..50u8 {
        b.expect(message("socketio", &[0x93, i, 0xff, b'\r', b'\n']))
            .await;
        a.expect(message("socketio", &[0x93, i, 0xff, b'\r', b'\n']))
            .await;
    }
    // A group-less consumer is invisible: counts are 0.
    a.send(BusCommand::CountSubscribers {
        channel: Str::from("socketio"),
        sharded: false,
    });
    a.expect(BusInput::Subscribers {
        channel: Str::from("socketio"),
        count: 0,
    })
    .await;
    // Unsubscribed: nothing more.
    a.send(BusCommand::Unsubscribe {
        channel: Str::from("socketio"),
        kind: ChannelKind::Plain,
    });
    a.flush().await;
    b.publish("socketio", b"only b");
    b.expect(message("socketio", b"only b")).await;
    assert_eq!(a.next_within(Duration::from_millis(500)).await, None);
    // A topic that does not exist: the publish is dropped (logged), the
    // flush still completes, the bus stays up.
    b.publish("no-such-topic", b"lost");
    b.flush().await;
    b.publish("socketio", b"still up");
    b.expect(message("socketio", b"still up")).await;
    assert_eq!(early.next_within(Duration::from_millis(10)).await, None);
    for bus in [a, b, early] {
        bus.bus.stop();
    }
}

#[test]
fn exchange_tokio() {
    let broker = Broker::start(&[("socketio", 1)]);
    common::on_tokio(|rt| async move {
        exchange_scenario(rt, broker.url()).await;
    });
}

#[test]
fn exchange_async_std() {
    let broker = Broker::start(&[("socketio", 1)]);
    socketio_async_std::AsyncStdRuntime::block_on(exchange_scenario(
        Arc::new(socketio_async_std::AsyncStdRuntime),
        broker.url(),
    ));
}

#[test]
fn exchange_smol() {
    let broker = Broker::start(&[("socketio", 1)]);
    socketio_smol::SmolRuntime::block_on(exchange_scenario(
        Arc::new(socketio_smol::SmolRuntime),
        broker.url(),
    ));
}

/// Several partitions are all read (publishes go to partition 0), two
/// topics at once, and a second bootstrap URL that is down is skipped.
#[test]
fn partitions_and_bootstrap_list_tokio() {
    let broker = Broker::start(&[("multi", 3), ("other", 1)]);
    let dead = format!("kafka://127.0.0.1:{}", free_port());
    let urls = format!("{dead},{}", broker.url());
    common::on_tokio(|rt| async move {
        let a = TestBus::new(rt.clone(), config(&urls));
        a.subscribe("multi");
        a.subscribe("other");
        a.expect(BusInput::Up).await;
        a.flush().await;
        a.publish("multi", b"m");
        a.publish("other", b"o");
        let mut got = vec![a.next().await, a.next().await];
        got.sort_by_key(|m| format!("{m:?}"));
        assert_eq!(got, vec![message("multi", b"m"), message("other", b"o")]);
        a.bus.stop();
    });
}

async fn restart_scenario(rt: Arc<dyn Runtime>, broker: &mut Broker) {
    let url = broker.url();
    let a = TestBus::new(rt.clone(), config(&url));
    let b = TestBus::new(rt.clone(), config(&url));
    a.subscribe("socketio");
    b.subscribe("socketio");
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    a.flush().await;
    b.publish("socketio", b"before");
    a.expect(message("socketio", b"before")).await;
    b.expect(message("socketio", b"before")).await;

    broker.kill();
    a.expect(BusInput::Down).await;
    b.expect(BusInput::Down).await;
    // Publishes while down are queued; flush waits for them.
    b.publish("socketio", b"queued");
    let flushing = b
        .bus
        .flush(Instant::now() + Duration::from_millis(300))
        .await;
    assert!(
        flushing.is_err(),
        "flush cannot succeed while Kafka is down"
    );
    std::thread::sleep(Duration::from_millis(300));
    // In-memory storage: the restarted broker has lost the topic, and the
    // offsets start again from 0 (the buses read from the earliest).
    broker.spawn(&[("socketio", 1)]);
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    b.flush().await;
    a.expect(message("socketio", b"queued")).await;
    b.expect(message("socketio", b"queued")).await;
    a.publish("socketio", b"after");
    a.expect(message("socketio", b"after")).await;
    b.expect(message("socketio", b"after")).await;
    a.bus.stop();
    b.bus.stop();
}

#[test]
fn broker_restart_tokio() {
    let mut broker = Broker::start(&[("socketio", 1)]);
    common::on_tokio(|rt| async move {
        restart_scenario(rt, &mut broker).await;
    });
}

#[test]
fn broker_restart_smol() {
    let mut broker = Broker::start(&[("socketio", 1)]);
    socketio_smol::SmolRuntime::block_on(restart_scenario(
        Arc::new(socketio_smol::SmolRuntime),
        &mut broker,
    ));
}

#[test]
fn flush_after_many_publishes_tokio() {
    let broker = Broker::start(&[("socketio", 1)]);
    common::on_tokio(|rt| async move {
        let url = broker.url();
        let sub = TestBus::new(rt.clone(), config(&url));
        sub.subscribe("socketio");
        sub.expect(BusInput::Up).await;
        sub.flush().await;
        // A write-only emitter: publish (before it is up), flush, exit.
        let emitter = TestBus::new(rt.clone(), config(&url));
        for i in 0..2000u32 {
            emitter.publish("socketio", &i.to_be_bytes());
        }
        emitter.flush().await;
        drop(emitter.commands);
        for i in 0..2000u32 {
            sub.expect(message("socketio", &i.to_be_bytes())).await;
        }
        let big = vec![7u8; 256 << 10];
        sub.publish("socketio", &big);
        sub.expect(message("socketio", &big)).await;
        sub.bus.stop();
    });
}

#[test]
fn queue_bound_while_down_tokio() {
    let port = free_port();
    common::on_tokio(|rt| async move {
        let url = format!("kafka://127.0.0.1:{port}");
        let bus = TestBus::new(rt.clone(), config(&url).max_queued_bytes(100));
        for _ in 0..10 {
            bus.publish("c", &[0; 40]);
        }
        let r = bus
            .bus
            .flush(Instant::now() + Duration::from_millis(200))
            .await;
        assert!(matches!(r, Err(KafkaBusError::Timeout(_))), "{r:?}");
        assert_eq!(bus.next_within(Duration::from_millis(100)).await, None);
        bus.bus.stop();
        assert!(bus.bus.is_stopped());
        let r = bus
            .bus
            .flush(Instant::now() + Duration::from_millis(200))
            .await;
        assert!(matches!(r, Err(KafkaBusError::Stopped)), "{r:?}");
    });
}

/// A bus subscribed to `socketio`, against a fake broker on `port`.
fn subscribed_on(port: u16) -> impl FnOnce(Arc<dyn Runtime>) -> TestBus {
    move |rt| {
        let bus = TestBus::new(rt, config(&format!("kafka://127.0.0.1:{port}")));
        bus.subscribe("socketio");
        bus
    }
}

/// A valid `ApiVersions` v0 answer accepting every version, for fakes.
fn api_versions_frame(correlation_id: i32) -> Vec<u8> {
    let mut body = correlation_id.to_be_bytes().to_vec();
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&5i32.to_be_bytes());
    for key in [0i16, 1, 2, 3, 18] {
        body.extend_from_slice(&key.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&20i16.to_be_bytes());
    }
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// A fake broker answering garbage: the bus keeps trying, never comes up,
/// never panics.
#[test]
fn garbage_broker_tokio() {
    let (port, accepted) = garbage_broker(|i| match i % 5 {
        0 => b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        1 => vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3],
        2 => vec![0xff, 0xff, 0xff, 0xfe],
        // A valid answer to another request.
        3 => api_versions_frame(99),
        // A frame whose array length lies.
        _ => vec![0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff],
    });
    assert_never_up(&accepted, 5, subscribed_on(port), KafkaBus::stop);
}

/// A fake that passes `ApiVersions` and then answers the metadata with
/// garbage: the bus reconnects again and again, no panic, never up.
#[test]
fn garbage_after_handshake_tokio() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(&api_versions_frame(0));
                let _ = stream.read(&mut buf);
                // Correlation id 1, then a metadata body that ends early.
                let _ = stream.write_all(&[0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0]);
                std::thread::sleep(Duration::from_millis(200));
            });
        }
    });
    assert_never_up(&accepted, 4, subscribed_on(port), KafkaBus::stop);
}
