//! The Redis bus against a real `redis-server` (installed with apt-get
//! when missing and possible; the tests print a note and pass otherwise).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use socketio_core::cluster::{BusCommand, BusInput, ChannelKind, StreamEntry};
use socketio_core::Str;
use socketio_driver::redis::{spawn_redis_bus, RedisBus, RedisConfig};
use socketio_driver::Runtime;

mod common;
use common::{assert_never_up, free_port, garbage_broker, message};

// ---------------------------------------------------------------- server

/// Whether redis-server can be run here (installing it once if needed).
fn have_redis() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        let found = || {
            Command::new("redis-server")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if found() {
            return true;
        }
        eprintln!("redis-server missing: trying apt-get install redis-server redis-sentinel");
        let _ = Command::new("apt-get").arg("update").status();
        let _ = Command::new("apt-get")
            .args(["install", "-y", "redis-server", "redis-sentinel"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        let ok = found();
        if !ok {
            eprintln!("NOTE: no redis-server: Redis bus tests skipped");
        }
        ok
    })
}

/// Major version of redis-server (sharded pub/sub needs 7).
fn redis_major() -> u32 {
    let out = Command::new("redis-server")
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("v=")
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique(&format!("socketio-redis-{tag}")));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A redis-server child process, killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    program: &'static str,
}

impl RedisServer {
    fn start(extra: &[&str]) -> RedisServer {
        Self::start_program("redis-server", free_port(), extra, temp_dir("server"))
    }

    fn start_program(program: &'static str, port: u16, extra: &[&str], dir: PathBuf) -> Self {
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            program,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(self.program);
        if self.program == "redis-sentinel" {
            // The sentinel rewrites its configuration file: one of its own.
            cmd.arg(self.dir.join("sentinel.conf"));
        }
        cmd.args(["--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("start redis-server"));
        self.wait_ready();
    }

    /// Ready when a PING gets any answer (`+PONG`, or `-NOAUTH`).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let unix = self
            .extra
            .iter()
            .position(|a| a == "--unixsocket")
            .map(|i| PathBuf::from(&self.extra[i + 1]));
        while Instant::now() < deadline {
            let answered = if self.port == 0 {
                let path = unix.as_ref().unwrap();
                std::os::unix::net::UnixStream::connect(path)
                    .ok()
                    .and_then(|s| ping(s).ok())
            } else {
                TcpStream::connect(("127.0.0.1", self.port))
                    .ok()
                    .and_then(|s| ping(s).ok())
            };
            if answered.is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} did not start", self.program);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        common::kill(&mut self.child);
    }

    fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping<S: Read + Write>(mut s: S) -> std::io::Result<()> {
    s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut buf = [0u8; 64];
    match s.read(&mut buf)? {
        0 => Err(std::io::ErrorKind::UnexpectedEof.into()),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- bus

type TestBus = common::TestBus<RedisBus>;

fn quick(config: RedisConfig) -> RedisConfig {
    config
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(2))
}

impl TestBus {
    fn new(runtime: Arc<dyn Runtime>, config: RedisConfig) -> TestBus {
        TestBus::start(runtime.clone(), Duration::from_secs(5), |rx, inputs| {
            spawn_redis_bus(runtime, quick(config), rx, inputs)
        })
    }

    fn subscribe(&self, channel: &str, kind: ChannelKind) {
        self.send(BusCommand::Subscribe {
            channel: Str::from(channel),
            kind,
        });
    }

    fn publish(&self, channel: &str, payload: &[u8], sharded: bool) {
        self.send(BusCommand::Publish {
            channel: Str::from(channel),
            payload: Bytes::copy_from_slice(payload),
            sharded,
        });
    }

    async fn flush(&self) {
        self.bus
            .flush(Instant::now() + Duration::from_secs(5))
            .await
            .expect("flush");
    }

    async fn count(&self, channel: &str, sharded: bool) -> u64 {
        self.send(BusCommand::CountSubscribers {
            channel: Str::from(channel),
            sharded,
        });
        match self.next().await {
            BusInput::Subscribers { channel: c, count } if c == channel => count,
            other => panic!("expected a count, got {other:?}"),
        }
    }
}

// ------------------------------------------------------------- scenarios

async fn pubsub_scenario(runtime: Arc<dyn Runtime>, url: String) {
    pubsub_scenario_with(runtime, || RedisConfig::from_url(&url).unwrap()).await
}

async fn pubsub_scenario_with(runtime: Arc<dyn Runtime>, config: impl Fn() -> RedisConfig) {
    let a = TestBus::new(runtime.clone(), config());
    let b = TestBus::new(runtime.clone(), config());
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    a.subscribe("socketio", ChannelKind::Plain);
    b.subscribe("sock*", ChannelKind::Pattern);
    a.flush().await;
    b.flush().await;
    b.publish("socketio", b"{\"method\":\"emit\"}", false);
    a.expect(message("socketio", b"{\"method\":\"emit\"}"))
        .await;
    b.expect(message("socketio", b"{\"method\":\"emit\"}"))
        .await;
    // Binary payloads are opaque bytes.
    a.publish("socketio", &[0x93, 0, 0xff, b'\r', b'\n'], false);
    a.expect(message("socketio", &[0x93, 0, 0xff, b'\r', b'\n']))
        .await;
    b.expect(message("socketio", &[0x93, 0, 0xff, b'\r', b'\n']))
        .await;
    // NUMSUB counts plain subscribers only.
    assert_eq!(b.count("socketio", false).await, 1);
    b.subscribe("socketio", ChannelKind::Plain);
    // The subscription and the count go on different links: wait for it.
    b.flush().await;
    assert_eq!(b.count("socketio", false).await, 2);
    a.send(BusCommand::Unsubscribe {
        channel: Str::from("socketio"),
        kind: ChannelKind::Plain,
    });
    a.flush().await;
    assert_eq!(b.count("socketio", false).await, 1);
    assert_eq!(a.count("nobody", false).await, 0);
    a.bus.stop();
    b.bus.stop();
}

#[test]
fn pubsub_tokio() {
    if !have_redis() {
        return;
    }
    let server = RedisServer::start(&[]);
    common::on_tokio(|rt| async move {
        pubsub_scenario(rt, server.url()).await;
    });
}

/// `rediss://`: the bus over TLS to a redis-server that listens on a TLS
/// port only, its certificate signed by a CA made here; a bus that does
/// not trust that CA never comes up (and keeps trying).
#[cfg(feature = "tls")]
#[test]
fn rediss_tokio() {
    use socketio_driver::tls::TlsClientConfig;

    if !have_redis() {
        return;
    }
    let dir = temp_dir("tls");
    let pki = common::LocalhostPki::new(&dir);
    let tls_port = free_port().to_string();
    let unix = dir.join("redis.sock").to_string_lossy().into_owned();
    // No plain TCP port: readiness is checked over the Unix socket.
    let _server = RedisServer::start_program(
        "redis-server",
        0,
        &[
            "--unixsocket",
            &unix,
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &pki.cert_file,
            "--tls-key-file",
            &pki.key_file,
            "--tls-ca-cert-file",
            &pki.ca_file,
            "--tls-auth-clients",
            "no",
        ],
        dir.clone(),
    );
    let url = format!("rediss://localhost:{tls_port}");
    let url = &url;
    common::on_tokio(|rt| async move {
        pubsub_scenario_with(rt, || {
            RedisConfig::from_url(url)
                .unwrap()
                .tls_config(pki.trusting.clone())
        })
        .await;
    });
    // The bundled web roots do not know this CA.
    let stranger = TlsClientConfig::new().build().unwrap();
    common::on_tokio(|rt| async move {
        let bus = TestBus::new(rt, RedisConfig::from_url(url).unwrap().tls_config(stranger));
        assert_eq!(bus.next_within(Duration::from_secs(2)).await, None);
        bus.bus.stop();
    });
}

#[test]
fn pubsub_async_std() {
    if !have_redis() {
        return;
    }
    let server = RedisServer::start(&[]);
    socketio_async_std::AsyncStdRuntime::block_on(pubsub_scenario(
        Arc::new(socketio_async_std::AsyncStdRuntime),
        server.url(),
    ));
}

#[test]
fn pubsub_smol() {
    if !have_redis() {
        return;
    }
    let server = RedisServer::start(&[]);
    socketio_smol::SmolRuntime::block_on(pubsub_scenario(
        Arc::new(socketio_smol::SmolRuntime),
        server.url(),
    ));
}

#[test]
fn sharded_tokio() {
    if !have_redis() {
        return;
    }
    if redis_major() < 7 {
        println!("NOTE: redis-server < 7: sharded pub/sub not tested");
        return;
    }
    let server = RedisServer::start(&[]);
    common::on_tokio(|rt| async move {
        let url = server.url();
        let a = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        let b = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        a.expect(BusInput::Up).await;
        b.expect(BusInput::Up).await;
        a.subscribe("socket.io#/#", ChannelKind::Sharded);
        a.flush().await;
        b.publish("socket.io#/#", b"shard", true);
        a.expect(message("socket.io#/#", b"shard")).await;
        assert_eq!(b.count("socket.io#/#", true).await, 1);
        assert_eq!(b.count("socket.io#/#", false).await, 0);
    });
}

#[test]
fn auth_and_db_tokio() {
    if !have_redis() {
        return;
    }
    let server = RedisServer::start(&[
        "--requirepass",
        "s3cr:t@",
        "--user",
        "alice",
        "on",
        ">w0nder",
        "+@all",
        "~*",
        "&*",
    ]);
    common::on_tokio(|rt| async move {
        let port = server.port;
        // Default user with the password (percent-encoded), db 3.
        let url = format!("redis://:s3cr%3At%40@127.0.0.1:{port}/3");
        let a = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        // A named user (ACL, Redis 6+).
        let url = format!("redis://alice:w0nder@127.0.0.1:{port}");
        let b = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        a.expect(BusInput::Up).await;
        b.expect(BusInput::Up).await;
        a.subscribe("c", ChannelKind::Plain);
        a.flush().await;
        b.publish("c", b"x", false);
        a.expect(message("c", b"x")).await;
        // A wrong password never comes up.
        let url = format!("redis://:wrong@127.0.0.1:{port}");
        let c = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        assert_eq!(c.next_within(Duration::from_millis(500)).await, None);
        c.bus.stop();
    });
}

#[test]
fn unix_socket_all_runtimes() {
    if !have_redis() {
        return;
    }
    let dir = temp_dir("unix");
    let sock = dir.join("redis.sock");
    let sock_arg = sock.to_str().unwrap().to_string();
    let server = RedisServer::start_program(
        "redis-server",
        0,
        &["--unixsocket", &sock_arg, "--unixsocketperm", "700"],
        dir,
    );
    let url = format!("unix://{}?db=1", sock.display());
    socketio_tokio::TokioRuntime::block_on(pubsub_scenario(
        Arc::new(socketio_tokio::TokioRuntime::current_or_global()),
        url.clone(),
    ));
    socketio_async_std::AsyncStdRuntime::block_on(pubsub_scenario(
        Arc::new(socketio_async_std::AsyncStdRuntime),
        url.clone(),
    ));
    socketio_smol::SmolRuntime::block_on(pubsub_scenario(
        Arc::new(socketio_smol::SmolRuntime),
        url,
    ));
    drop(server);
}

async fn restart_scenario(rt: Arc<dyn Runtime>, server: &mut RedisServer) {
    let url = server.url();
    let a = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
    let b = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    a.subscribe("socketio", ChannelKind::Plain);
    a.subscribe("p*", ChannelKind::Pattern);
    a.flush().await;
    b.publish("socketio", b"before", false);
    a.expect(message("socketio", b"before")).await;

    server.kill();
    a.expect(BusInput::Down).await;
    b.expect(BusInput::Down).await;
    // Publishes while down are queued, flush waits for them.
    b.publish("nobody-listens", b"queued", false);
    let flushing = b
        .bus
        .flush(Instant::now() + Duration::from_millis(300))
        .await;
    assert!(
        flushing.is_err(),
        "flush cannot succeed while Redis is down"
    );
    std::thread::sleep(Duration::from_millis(300));
    server.restart();
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    b.flush().await;
    // Subscriptions were restored.
    b.publish("socketio", b"after", false);
    a.expect(message("socketio", b"after")).await;
    b.publish("pattern", b"p", false);
    a.expect(message("pattern", b"p")).await;
    assert_eq!(b.count("socketio", false).await, 1);
}

#[test]
fn broker_restart_tokio() {
    if !have_redis() {
        return;
    }
    let mut server = RedisServer::start(&[]);
    common::on_tokio(|rt| async move {
        restart_scenario(rt, &mut server).await;
    });
}

#[test]
fn broker_restart_smol() {
    if !have_redis() {
        return;
    }
    let mut server = RedisServer::start(&[]);
    socketio_smol::SmolRuntime::block_on(restart_scenario(
        Arc::new(socketio_smol::SmolRuntime),
        &mut server,
    ));
}

#[test]
fn flush_after_many_publishes_tokio() {
    if !have_redis() {
        return;
    }
    let server = RedisServer::start(&[]);
    common::on_tokio(|rt| async move {
        let url = server.url();
        let sub = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        sub.expect(BusInput::Up).await;
        sub.subscribe("socketio", ChannelKind::Plain);
        sub.flush().await;
        // A write-only emitter: publish, flush, exit. Publishing starts
        // before the link is up, so the first ones are queued.
        let emitter = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        for i in 0..2000u32 {
            emitter.publish("socketio", &i.to_be_bytes(), false);
        }
        emitter.flush().await;
        drop(emitter.commands);
        for i in 0..2000u32 {
            sub.expect(message("socketio", &i.to_be_bytes())).await;
        }
        // A large message crosses intact.
        let big = vec![7u8; 4 << 20];
        let tx = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        tx.publish("socketio", &big, false);
        tx.flush().await;
        sub.expect(message("socketio", &big)).await;
    });
}

#[test]
fn queue_bound_while_down_tokio() {
    // Nobody listens on this port: the bus stays down.
    let port = free_port();
    common::on_tokio(|rt| async move {
        let url = format!("redis://127.0.0.1:{port}");
        let config = RedisConfig::from_url(&url).unwrap().max_queued_bytes(100);
        let bus = TestBus::new(rt.clone(), config);
        for _ in 0..10 {
            bus.publish("c", &[0; 40], false);
        }
        // Two fit in 100 bytes; the rest are dropped: flush still waits
        // for the two queued ones.
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
        assert!(matches!(
            r,
            Err(socketio_driver::redis::RedisError::Stopped)
        ));
    });
}

/// A fake "redis" that answers with garbage: the bus must keep trying,
/// never come up, never panic.
#[test]
fn garbage_broker_tokio() {
    let (port, accepted) = garbage_broker(|i| {
        match i % 4 {
                0 => b"?what\r\n".to_vec(),
                1 => b"$99999999999\r\n".to_vec(),
                2 => b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n".to_vec(),
                _ => b"+PONG\n".to_vec(),
    }
    });
    let url = format!("redis://127.0.0.1:{port}");
    assert_never_up(
        &accepted,
        4,
        |rt| TestBus::new(rt, RedisConfig::from_url(&url).unwrap()),
        RedisBus::stop,
    );
}

/// A fake that passes the handshake and then sends garbage: the bus comes
/// up, goes down, and reconnects.
#[test]
fn garbage_after_handshake_tokio() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                // Answer the handshake PING.
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"+PONG\r\n");
                std::thread::sleep(Duration::from_millis(200));
                let _ = stream.write_all(b"\x00\x01garbage\r\n");
                std::thread::sleep(Duration::from_millis(200));
            });
        }
    });
    common::on_tokio(|rt| async move {
        let url = format!("redis://127.0.0.1:{port}");
        let bus = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        bus.expect(BusInput::Up).await;
        bus.expect(BusInput::Down).await;
        bus.expect(BusInput::Up).await;
        bus.bus.stop();
    });
}

#[test]
fn sentinel_tokio() {
    if !have_redis() {
        return;
    }
    if Command::new("redis-sentinel")
        .arg("--version")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        println!("NOTE: no redis-sentinel: sentinel only unit-tested (URL parsing)");
        return;
    }
    let master = RedisServer::start(&[]);
    let dir = temp_dir("sentinel");
    std::fs::write(
        dir.join("sentinel.conf"),
        format!(
            "sentinel monitor mymaster 127.0.0.1 {} 1\nsentinel down-after-milliseconds mymaster 60000\n",
            master.port
        ),
    )
    .unwrap();
    let sentinel = RedisServer {
        child: None,
        port: free_port(),
        dir,
        extra: Vec::new(),
        program: "redis-sentinel",
    };
    let mut sentinel = sentinel;
    spawn_sentinel(&mut sentinel);
    // A dead sentinel first: the next one is asked.
    let dead = free_port();
    common::on_tokio(|rt| async move {
        let url = format!(
            "redis+sentinel://127.0.0.1:{dead},127.0.0.1:{}/0/mymaster",
            sentinel.port
        );
        pubsub_scenario(rt.clone(), url).await;
        // An unknown service never comes up.
        let url = format!("redis+sentinel://127.0.0.1:{}/0/other", sentinel.port);
        let bus = TestBus::new(rt.clone(), RedisConfig::from_url(&url).unwrap());
        assert_eq!(bus.next_within(Duration::from_millis(500)).await, None);
    });
    drop(master);
}

fn spawn_sentinel(s: &mut RedisServer) {
    let child = Command::new("redis-sentinel")
        .arg(s.dir.join("sentinel.conf"))
        .args(["--port", &s.port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-sentinel");
    s.child = Some(child);
    s.wait_ready();
}

// ------------------------------------------------------- streams and keys

fn field(k: &str, v: &[u8]) -> (Bytes, Bytes) {
    (
        Bytes::copy_from_slice(k.as_bytes()),
        Bytes::copy_from_slice(v),
    )
}

impl TestBus {
    fn append(&self, stream: &str, fields: Vec<(Bytes, Bytes)>, max_len: Option<u64>, token: u64) {
        self.send(BusCommand::StreamAppend {
            stream: Str::from(stream),
            fields,
            max_len,
            token,
        });
    }

    /// The next input that is not `Up`/`Down`.
    async fn next_answer(&self) -> BusInput {
        loop {
            match self.next().await {
                BusInput::Up | BusInput::Down => continue,
                other => return other,
            }
        }
    }

    async fn appended(&self, token: u64) -> Option<Str> {
        match self.next_answer().await {
            BusInput::StreamAppended { token: t, id } if t == token => id,
            other => panic!("expected StreamAppended {token}, got {other:?}"),
        }
    }

    async fn entry(&self, stream: &str) -> StreamEntry {
        match self.next_answer().await {
            BusInput::StreamEntry { stream: s, entry } if s == stream => entry,
            other => panic!("expected an entry of {stream}, got {other:?}"),
        }
    }

    async fn range(
        &self,
        stream: &str,
        start: &str,
        end: &str,
        count: Option<u64>,
    ) -> Option<Vec<StreamEntry>> {
        self.send(BusCommand::StreamRange {
            stream: Str::from(stream),
            start: Str::from(start),
            end: Str::from(end),
            count,
            token: 77,
        });
        match self.next_answer().await {
            BusInput::StreamRange { token: 77, entries } => entries,
            other => panic!("expected a range, got {other:?}"),
        }
    }

    async fn take(&self, key: &str) -> Option<Bytes> {
        self.send(BusCommand::TakeKey {
            key: Str::from(key),
            token: 88,
        });
        match self.next_answer().await {
            BusInput::KeyTaken { token: 88, value } => value,
            other => panic!("expected a taken key, got {other:?}"),
        }
    }
}

async fn streams_scenario(runtime: Arc<dyn Runtime>, url: String) {
    let config = || {
        RedisConfig::from_url(&url)
            .unwrap()
            .stream_read(Duration::from_millis(200), 3)
    };
    let a = TestBus::new(runtime.clone(), config());
    let b = TestBus::new(runtime.clone(), config());
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;

    // An entry from before the follow is not reported with `from: None`.
    b.append("s", vec![field("k", b"before")], None, 1);
    let before = b.appended(1).await.expect("appended");
    a.send(BusCommand::StreamFollow {
        stream: Str::from("s"),
        from: None,
    });
    // Give the follower time to pin its start.
    runtime
        .sleep_until(Instant::now() + Duration::from_millis(300))
        .await;
    // Binary-safe fields, in order, repeated names kept.
    let fields = vec![
        field("uid", b"u1"),
        field("nsp", b"/"),
        field("data", &[0, 0xff, b'\r', b'\n']),
        field("nsp", b"/x"),
    ];
    b.append("s", fields.clone(), Some(1000), 2);
    let id = b.appended(2).await.expect("appended");
    assert!(
        id.parse::<socketio_core::cluster::node::streams::StreamId>()
            .unwrap()
            > before.parse().unwrap()
    );
    assert_eq!(
        a.entry("s").await,
        StreamEntry {
            id: id.clone(),
            fields: fields.clone()
        }
    );
    // More than one XREAD's worth (count 3), in order.
    let mut ids = Vec::new();
    for i in 0..10u64 {
        b.append(
            "s",
            vec![field("i", i.to_string().as_bytes())],
            None,
            10 + i,
        );
        ids.push(b.appended(10 + i).await.unwrap());
    }
    for want in &ids {
        assert_eq!(&a.entry("s").await.id, want);
    }
    // A second follower from a given id gets what followed it.
    b.send(BusCommand::StreamFollow {
        stream: Str::from("s"),
        from: Some(ids[7].clone()),
    });
    assert_eq!(b.entry("s").await.id, ids[8]);
    assert_eq!(b.entry("s").await.id, ids[9]);
    // Following twice changes nothing; unfollowing stops the entries.
    b.send(BusCommand::StreamFollow {
        stream: Str::from("s"),
        from: None,
    });
    b.send(BusCommand::StreamUnfollow {
        stream: Str::from("s"),
    });
    b.flush().await;
    runtime
        .sleep_until(Instant::now() + Duration::from_millis(300))
        .await;
    a.append("s", vec![field("after", b"unfollow")], None, 30);
    // The answer and the entry come over different connections: any order.
    let (mut appended, mut read) = (None, None);
    for _ in 0..2 {
        match a.next_answer().await {
            BusInput::StreamAppended { token: 30, id } => appended = id,
            BusInput::StreamEntry { entry, .. } => read = Some(entry.id),
            other => panic!("{other:?}"),
        }
    }
    assert!(appended.is_some());
    assert_eq!(appended, read);
    assert_eq!(b.next_within(Duration::from_millis(500)).await, None);

    // Ranges: inclusive, counted, in order.
    let all = a.range("s", "-", "+", None).await.unwrap();
    assert_eq!(all.len(), 13);
    assert_eq!(
        all[1],
        StreamEntry {
            id: id.clone(),
            fields
        }
    );
    let some = a.range("s", &ids[2], "+", Some(2)).await.unwrap();
    assert_eq!(
        some.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids[2..4]
    );
    assert_eq!(a.range("s", &id, &id, Some(1)).await.unwrap().len(), 1);
    assert_eq!(a.range("nothing", "-", "+", None).await, Some(Vec::new()));
    assert_eq!(a.range("s", "not-an-id", "+", None).await, None);

    // MAXLEN ~ trims (by whole macro nodes: about, not exactly).
    for i in 0..300u64 {
        a.append(
            "trimmed",
            vec![field("i", i.to_string().as_bytes())],
            Some(10),
            1000 + i,
        );
    }
    for i in 0..300u64 {
        assert!(a.appended(1000 + i).await.is_some());
    }
    let kept = a.range("trimmed", "-", "+", None).await.unwrap().len();
    assert!((10..300).contains(&kept), "kept {kept}");

    // Keys: set with a TTL, taken once.
    a.send(BusCommand::SetKey {
        key: Str::from("sio:session:p1"),
        value: Bytes::from_static(b"hKNz\x00"),
        ttl: Some(Duration::from_secs(60)),
    });
    // Another connection: wait for the SET to be done first.
    a.flush().await;
    assert_eq!(
        b.take("sio:session:p1").await,
        Some(Bytes::from_static(b"hKNz\x00"))
    );
    assert_eq!(b.take("sio:session:p1").await, None);
    a.send(BusCommand::SetKey {
        key: Str::from("short"),
        value: Bytes::from_static(b"v"),
        ttl: Some(Duration::from_millis(50)),
    });
    a.flush().await;
    runtime
        .sleep_until(Instant::now() + Duration::from_millis(200))
        .await;
    assert_eq!(a.take("short").await, None);

    // Refusals are answers, not silence: a key of another type.
    a.send(BusCommand::SetKey {
        key: Str::from("plain"),
        value: Bytes::from_static(b"v"),
        ttl: None,
    });
    a.append("plain", vec![field("k", b"v")], None, 99);
    assert_eq!(a.appended(99).await, None);
    assert_eq!(a.range("plain", "-", "+", None).await, None);
    a.append("s", Vec::new(), None, 100);
    assert_eq!(a.appended(100).await, None);
    // The bus still works after them.
    assert_eq!(a.take("plain").await, Some(Bytes::from_static(b"v")));
    a.bus.stop();
    b.bus.stop();
}

#[test]
fn streams_tokio() {
    if !have_redis() {
        return;
    }
    let server = RedisServer::start(&[]);
    common::on_tokio(|rt| async move {
        streams_scenario(rt, server.url()).await;
    });
}

#[test]
fn streams_smol() {
    if !have_redis() {
        return;
    }
    let server = RedisServer::start(&[]);
    socketio_smol::SmolRuntime::block_on(streams_scenario(
        Arc::new(socketio_smol::SmolRuntime),
        server.url(),
    ));
}

#[test]
fn streams_async_std() {
    if !have_redis() {
        return;
    }
    let server = RedisServer::start(&[]);
    socketio_async_std::AsyncStdRuntime::block_on(streams_scenario(
        Arc::new(socketio_async_std::AsyncStdRuntime),
        server.url(),
    ));
}

/// Through a broker restart: the follower resumes after the last entry it
/// reported, an append made while down is sent once back, a range in
/// flight is asked again.
async fn streams_restart_scenario(rt: Arc<dyn Runtime>, server: &mut RedisServer) {
    let url = server.url();
    let config = || {
        quick(RedisConfig::from_url(&url).unwrap())
            .stream_read(Duration::from_millis(200), 10)
            .io_timeout(Duration::from_secs(2))
    };
    let a = TestBus::new(rt.clone(), config());
    let b = TestBus::new(rt.clone(), config());
    a.expect(BusInput::Up).await;
    b.expect(BusInput::Up).await;
    a.send(BusCommand::StreamFollow {
        stream: Str::from("s"),
        from: Some(Str::from("0-0")),
    });
    b.append("s", vec![field("n", b"1")], None, 1);
    let first = b.appended(1).await.unwrap();
    assert_eq!(a.entry("s").await.id, first);

    server.kill();
    a.expect(BusInput::Down).await;
    b.expect(BusInput::Down).await;
    b.append("s", vec![field("n", b"2")], None, 2);
    b.send(BusCommand::TakeKey {
        key: Str::from("k"),
        token: 3,
    });
    std::thread::sleep(Duration::from_millis(300));
    server.restart();
    // The queued append is answered once the link is back.
    let second = b.appended(2).await.expect("appended after the restart");
    match b.next_answer().await {
        BusInput::KeyTaken {
            token: 3,
            value: None,
        } => {}
        other => panic!("{other:?}"),
    }
    // The (emptied) broker's new ids are later in time: the follower,
    // resuming after `first`, reports the new entry once.
    assert_eq!(a.entry("s").await.id, second);
    b.append("s", vec![field("n", b"3")], None, 4);
    let third = b.appended(4).await.unwrap();
    assert_eq!(a.entry("s").await.id, third);
    // Nothing more. The follower reads on a connection of its own, so the
    // main links' `Up` may come before or after its entries.
    while let Some(input) = a.next_within(Duration::from_millis(300)).await {
        assert_eq!(input, BusInput::Up);
    }
    a.bus.stop();
    b.bus.stop();
}

#[test]
fn streams_broker_restart_tokio() {
    if !have_redis() {
        return;
    }
    let mut server = RedisServer::start(&[]);
    common::on_tokio(|rt| async move {
        streams_restart_scenario(rt, &mut server).await;
    });
}

#[test]
fn streams_broker_restart_smol() {
    if !have_redis() {
        return;
    }
    let mut server = RedisServer::start(&[]);
    socketio_smol::SmolRuntime::block_on(streams_restart_scenario(
        Arc::new(socketio_smol::SmolRuntime),
        &mut server,
    ));
}

/// While Redis is unreachable and the queue is full, commands waiting for
/// an answer are answered at once with a failure.
#[test]
fn streams_queue_bound_while_down_tokio() {
    let port = free_port();
    common::on_tokio(|rt| async move {
        let url = format!("redis://127.0.0.1:{port}");
        let bus = TestBus::new(
            rt,
            RedisConfig::from_url(&url).unwrap().max_queued_bytes(10),
        );
        bus.append("s", vec![field("k", &[0; 40])], Some(5), 1);
        assert_eq!(bus.appended(1).await, None);
        assert_eq!(bus.range("s", "-", "+", Some(10)).await, None);
        assert_eq!(bus.take("some-long-key-name").await, None);
        bus.bus.stop();
    });
}
