//! The AMQP bus against a real RabbitMQ (`rabbitmq-server`, installed with
//! apt-get when missing and possible; the tests print a note and pass
//! otherwise), and against fake brokers sending garbage.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use socketio_core::cluster::amqp::broker;
use socketio_core::cluster::{BusCommand, BusInput, ChannelKind};
use socketio_core::Str;
use socketio_driver::amqp::{spawn_amqp_bus, AmqpBus, AmqpConfig};
use socketio_driver::Runtime;

mod common;
use common::{assert_never_up, free_port, garbage_broker, message, unique, PlainCommands};

// ---------------------------------------------------------------- broker

const RABBIT: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// Whether rabbitmq-server can be run here (installing it once if needed).
fn have_rabbit() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        let found = || std::path::Path::new(RABBIT).exists();
        if found() {
            return true;
        }
        eprintln!("rabbitmq-server missing: trying apt-get install rabbitmq-server");
        let _ = Command::new("sh")
            .args([
                "-c",
                "flock /tmp/socketio-apt.lock sh -c 'apt-get update && apt-get install -y rabbitmq-server'",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        let ok = found();
        if !ok {
            eprintln!("NOTE: no rabbitmq-server: AMQP bus tests skipped");
        }
        ok
    })
}

/// A rabbitmq-server child (in a process group of its own), killed on
/// drop.
struct Rabbit {
    child: Option<Child>,
    /// A shell that kills the broker's process group when its stdin (held
    /// here) closes: when this process ends, even if the guard never drops
    /// (the shared broker lives in a static).
    watchdog: Option<Child>,
    port: u16,
    dist_port: u16,
    dir: PathBuf,
    /// A `rabbitmq.conf` of its own (for a TLS listener).
    config: Option<PathBuf>,
}

impl Rabbit {
    fn start() -> Rabbit {
        Self::start_with(|_| None)
    }

    /// Started with the `rabbitmq.conf` that `config` writes in the
    /// broker's directory (if any).
    fn start_with(config: impl FnOnce(&std::path::Path) -> Option<String>) -> Rabbit {
        let dir = std::env::temp_dir().join(unique("socketio-amqp"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("plugins"), "[].\n").unwrap();
        let config = config(&dir).map(|text| {
            let path = dir.join("rabbitmq.conf");
            std::fs::write(&path, text).unwrap();
            path
        });
        let mut r = Rabbit {
            child: None,
            watchdog: None,
            port: free_port(),
            dist_port: free_port(),
            dir,
            config,
        };
        r.spawn();
        r
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn spawn(&mut self) {
        let d = &self.dir;
        let mut command = Command::new(RABBIT);
        if let Some(config) = &self.config {
            command.env("RABBITMQ_CONFIG_FILE", config);
        }
        let child = command
            .env("HOME", d)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_NODENAME", format!("rmq{}@localhost", self.port))
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("plugins"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start rabbitmq-server");
        let watchdog = Command::new("sh")
            .args([
                "-c",
                &format!("cat >/dev/null; kill -9 -{} 2>/dev/null", child.id()),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the broker's watchdog");
        self.child = Some(child);
        self.watchdog = Some(watchdog);
        self.wait_ready();
    }

    /// Ready when the protocol header gets `connection.start` back.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 16];
                if s.write_all(b"AMQP\x00\x00\x09\x01").is_ok()
                    && s.read(&mut buf).is_ok_and(|n| n > 0 && buf[0] == 1)
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("rabbitmq-server did not come up on port {}", self.port);
    }

    fn kill(&mut self) {
        // The watchdog first (it kills nothing when killed itself).
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if let Some(mut child) = self.child.take() {
            // The whole group: the script and the Erlang VM under it.
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One broker shared by the tests that do not restart it.
fn shared() -> Option<String> {
    static SHARED: OnceLock<Option<Mutex<Rabbit>>> = OnceLock::new();
    SHARED
        .get_or_init(|| have_rabbit().then(|| Mutex::new(Rabbit::start())))
        .as_ref()
        .map(|r| r.lock().unwrap().url())
}

// ---------------------------------------------------------------- bus

type TestBus = common::TestBus<AmqpBus>;

fn quick(config: AmqpConfig) -> AmqpConfig {
    config
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
        .connect_timeout(Duration::from_secs(3))
}

impl TestBus {
    fn new(runtime: Arc<dyn Runtime>, config: AmqpConfig) -> TestBus {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_test_writer()
            .try_init();
        TestBus::start(runtime.clone(), Duration::from_secs(10), |rx, inputs| {
            spawn_amqp_bus(runtime, quick(config), rx, inputs)
        })
    }

    fn url(runtime: &Arc<dyn Runtime>, url: &str) -> TestBus {
        TestBus::new(runtime.clone(), AmqpConfig::from_url(url).unwrap())
    }

    async fn flush(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        self.bus.flush(deadline).await.expect("flush");
    }
}

// ------------------------------------------------------------- scenarios

async fn pubsub_scenario(rt: Arc<dyn Runtime>, url: String) {
    let ch = unique("socketio");
    let a = TestBus::url(&rt, &url);
    let b = TestBus::url(&rt, &url);
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    a.subscribe(&ch);
    b.subscribe(&ch);
    a.flush().await;
    b.flush().await;
    b.publish(&ch, b"{\"method\":\"emit\"}");
    a.expect(message(&ch, b"{\"method\":\"emit\"}")).await;
    b.expect(message(&ch, b"{\"method\":\"emit\"}")).await;
    // Opaque bytes.
    a.publish(&ch, &[0x93, 0, 0xff, 0xce]);
    a.expect(message(&ch, &[0x93, 0, 0xff, 0xce])).await;
    b.expect(message(&ch, &[0x93, 0, 0xff, 0xce])).await;
    // Many publishes in order, more than the prefetch window; then a
    // large one split over many frames.
    for i in 0..1000u32 {
        a.publish(&ch, &i.to_be_bytes());
    }
    a.flush().await;
    for i in 0..1000u32 {
        b.expect(message(&ch, &i.to_be_bytes())).await;
    }
    for i in 0..1000u32 {
        a.expect(message(&ch, &i.to_be_bytes())).await;
    }
    let big = vec![7u8; 3 << 20];
    b.publish(&ch, &big);
    a.expect(message(&ch, &big)).await;
    b.expect(message(&ch, &big)).await;
    // Counting is not a thing on AMQP.
    a.counts_zero(&ch).await;
    // Unsubscribed: nothing more.
    a.send(BusCommand::Unsubscribe {
        channel: Str::from(ch.as_str()),
        kind: ChannelKind::Plain,
    });
    a.flush().await;
    b.publish(&ch, b"only b");
    b.expect(message(&ch, b"only b")).await;
    assert_eq!(a.next_within(Duration::from_millis(300)).await, None);
    a.bus.stop();
    b.bus.stop();
}

#[test]
fn pubsub_tokio() {
    let Some(url) = shared() else { return };
    common::on_tokio(|rt| async move {
        pubsub_scenario(rt, url).await;
    });
}

#[test]
fn pubsub_async_std() {
    let Some(url) = shared() else { return };
    socketio_async_std::AsyncStdRuntime::block_on(pubsub_scenario(
        Arc::new(socketio_async_std::AsyncStdRuntime),
        url,
    ));
}

#[test]
fn pubsub_smol() {
    let Some(url) = shared() else { return };
    socketio_smol::SmolRuntime::block_on(pubsub_scenario(
        Arc::new(socketio_smol::SmolRuntime),
        url,
    ));
}

/// `amqps://`: the bus over TLS to a RabbitMQ TLS listener whose
/// certificate a CA made here signed; a bus that does not trust that CA
/// never comes up.
#[cfg(feature = "tls")]
#[test]
fn amqps_tokio() {
    use socketio_driver::tls::TlsClientConfig;

    if !have_rabbit() {
        return;
    }
    let tls_port = free_port();
    let mut pki = None;
    let _rabbit = Rabbit::start_with(|dir| {
        let made = common::LocalhostPki::new(dir);
        let config = format!(
            "listeners.ssl.default = 127.0.0.1:{tls_port}\n\
             ssl_options.cacertfile = {}\n\
             ssl_options.certfile = {}\n\
             ssl_options.keyfile = {}\n\
             ssl_options.verify = verify_none\n\
             ssl_options.fail_if_no_peer_cert = false\n",
            made.ca_file, made.cert_file, made.key_file
        );
        pki = Some(made);
        Some(config)
    });
    let trusting = pki.unwrap().trusting;
    let url = format!("amqps://guest:guest@localhost:{tls_port}/%2f");
    let url = &url;
    common::on_tokio(|rt| async move {
        let config = || {
            AmqpConfig::from_url(url)
                .unwrap()
                .tls_config(trusting.clone())
        };
        let a = TestBus::new(rt.clone(), config());
        let b = TestBus::new(rt, config());
        a.expect(BusInput::Up).await;
        b.expect(BusInput::Up).await;
        a.subscribe("socketio");
        a.flush().await;
        b.publish("socketio", b"{\"method\":\"emit\"}");
        a.expect(message("socketio", b"{\"method\":\"emit\"}"))
            .await;
        a.bus.stop();
        b.bus.stop();
    });
    // The bundled web roots do not know this CA.
    let stranger = TlsClientConfig::new().build().unwrap();
    common::on_tokio(|rt| async move {
        let bus = TestBus::new(rt, AmqpConfig::from_url(url).unwrap().tls_config(stranger));
        assert_eq!(bus.next_within(Duration::from_secs(2)).await, None);
        bus.bus.stop();
    });
}

#[test]
fn wrong_password_and_vhost_keep_retrying() {
    let Some(url) = shared() else { return };
    common::on_tokio(|rt| async move {
        let bad = url.replace("guest:guest", "guest:wrong");
        let a = TestBus::url(&rt, &bad);
        let vhost = url.replace("/%2f", "/nope");
        let b = TestBus::url(&rt, &vhost);
        assert_eq!(a.next_within(Duration::from_secs(1)).await, None);
        assert_eq!(b.next_within(Duration::from_millis(100)).await, None);
        a.bus.stop();
        b.bus.stop();
    });
}

async fn restart_scenario(rt: Arc<dyn Runtime>, server: &mut Rabbit) {
    let url = server.url();
    let ch = unique("socketio");
    let a = TestBus::new(rt.clone(), AmqpConfig::from_url(&url).unwrap().heartbeat(2));
    let b = TestBus::url(&rt, &url);
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    a.subscribe(&ch);
    a.flush().await;
    b.publish(&ch, b"before");
    a.expect(message(&ch, b"before")).await;

    let t = Instant::now();
    server.kill();
    a.expect(BusInput::Down).await;
    b.expect(BusInput::Down).await;
    b.publish(&ch, b"queued");
    let flushing = b
        .bus
        .flush(Instant::now() + Duration::from_millis(300))
        .await;
    assert!(
        flushing.is_err(),
        "flush cannot succeed while the broker is down"
    );
    server.restart();
    eprintln!("broker back after {:?}", t.elapsed());
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    b.flush().await;
    // The subscription was restored; the queued publish went out once the
    // link was back (after or before the queue was declared again: at
    // most once).
    b.publish(&ch, b"after");
    loop {
        match a.next().await {
            m if m == message(&ch, b"queued") => continue,
            m => {
                assert_eq!(m, message(&ch, b"after"));
                break;
            }
        }
    }
    a.bus.stop();
    b.bus.stop();
}

#[test]
fn broker_restart_tokio() {
    if !have_rabbit() {
        return;
    }
    let mut server = Rabbit::start();
    common::on_tokio(|rt| async move {
        restart_scenario(rt, &mut server).await;
    });
}

#[test]
fn queue_bound_while_down() {
    let port = free_port();
    common::on_tokio(|rt| async move {
        let url = format!("amqp://127.0.0.1:{port}//");
        let config = AmqpConfig::from_url(&url).unwrap().max_queued_bytes(100);
        let bus = TestBus::new(rt.clone(), config);
        for _ in 0..10 {
            bus.publish("c", &[0; 40]);
        }
        let r = bus
            .bus
            .flush(Instant::now() + Duration::from_millis(200))
            .await;
        assert!(r.is_err());
        assert_eq!(bus.next_within(Duration::from_millis(100)).await, None);
        bus.bus.stop();
        assert!(bus.bus.is_stopped());
        let r = bus
            .bus
            .flush(Instant::now() + Duration::from_millis(200))
            .await;
        assert!(matches!(r, Err(socketio_driver::amqp::AmqpError::Stopped)));
    });
}

/// A fake broker answering garbage: the bus keeps trying, never comes up,
/// never panics.
#[test]
fn garbage_broker_tokio() {
    let (port, accepted) = garbage_broker(|i| match i % 5 {
        0 => b"-ERR not amqp\r\n".to_vec(),
        1 => b"AMQP\x00\x00\x09\x00".to_vec(),
        // A frame claiming 4 GiB.
        2 => vec![1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 10, 0, 10],
        // A start with a table of bad type.
        3 => {
            let mut out = BytesMut::new();
            broker::method(&mut out, 0, 10, 10, &[0, 9, 0, 0, 0, 3, 1, b'a', b'?']);
            out.to_vec()
        }
        _ => Vec::new(),
    });
    assert_never_up(
        &accepted,
        5,
        |rt| TestBus::url(&rt, &format!("amqp://127.0.0.1:{port}")),
        AmqpBus::stop,
    );
}

/// Read whatever the client sent (sloppy: for a fake broker).
fn drain(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 4096];
    let _ = stream.read(&mut buf);
}

/// A fake broker that passes the handshake, then sends garbage: the bus
/// comes up, goes down, comes up again.
#[test]
fn garbage_after_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut out = BytesMut::new();
                drain(&mut stream);
                broker::connection_start(&mut out);
                let _ = stream.write_all(&out.split());
                drain(&mut stream);
                broker::connection_tune(&mut out, 0, 0, 0);
                let _ = stream.write_all(&out.split());
                drain(&mut stream);
                broker::method(&mut out, 0, 10, 41, &[0]);
                let _ = stream.write_all(&out.split());
                drain(&mut stream);
                broker::method(&mut out, 1, 20, 11, &[0, 0, 0, 0]);
                broker::method(&mut out, 1, 85, 11, &[]);
                broker::method(&mut out, 1, 60, 11, &[]);
                let _ = stream.write_all(&out.split());
                std::thread::sleep(Duration::from_millis(200));
                // A body frame nobody announced.
                let _ = stream.write_all(&[3, 0, 1, 0, 0, 0, 1, b'x', 0xce]);
                std::thread::sleep(Duration::from_millis(200));
            });
        }
    });
    common::on_tokio(|rt| async move {
        let bus = TestBus::url(&rt, &format!("amqp://127.0.0.1:{port}"));
        bus.expect(BusInput::Up).await;
        bus.expect(BusInput::Down).await;
        bus.expect(BusInput::Up).await;
        bus.bus.stop();
    });
}
