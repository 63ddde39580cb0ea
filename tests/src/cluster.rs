//! Harness of the cluster tests: several Socket.IO servers acting as one over
//! Redis, with real parts only (see `tests/interop/README.md`, "Clusters").
//!
//! - [`RedisServer`]: a `redis-server` child on a free port (installed with
//!   apt-get when missing), restartable on the same port, with a raw RESP
//!   client to inject messages of our own ([`RedisServer::publish_raw`]).
//! - [`ClusterNode`]: one server of the cluster contract: the Node peer
//!   (`@socket.io/redis-adapter`, classic or sharded), the Python peer
//!   (`AsyncRedisManager`), or our `echo_server --adapter ...` example.
//! - [`ClusterClients`]: one Node or Python client process holding one
//!   Socket.IO client per URL, driven by JSON lines.
//! - [`run_emitter`]: one write-only emit (python `RedisManager(write_only)`,
//!   Node `@socket.io/redis-emitter`, or our `emit` example).
//!
//! Every process is killed when its guard drops, every wait has a deadline,
//! and every error carries the output of the process it concerns; tests add
//! the rest of the cluster's output with [`Cluster::output`].

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::{apt_install, relaunch, scratch_dir, Guarded};
use crate::{free_port, interop_dir, setup, workspace_dir, Proc, Runtime};

/// How long `redis-server` may take to answer PING.
const REDIS_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one RESP command may take.
const REDIS_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a cluster node may take to print `listening on`.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the clients may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The harness's limit on one acked call; the clients give up after 10 s and
/// say so, this only catches a client that hangs.
const CALL_TIMEOUT: Duration = Duration::from_secs(12);
/// How long one emitter run may take.
const EMITTER_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of a client process's output a failure message carries.
const CLIENT_LOG_TAIL: usize = 32 * 1024;

// ---------------------------------------------------------------------------
// Redis

/// Makes sure `redis-server` is on PATH: installs Debian's `redis-server`
/// with apt-get (after `apt-get update`) when it is not. Once per process,
/// and behind `flock` so that parallel test processes do not fight over
/// dpkg's lock; later calls return the first outcome.
pub fn ensure_redis_server() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            apt_install(
                "redis-server",
                "command -v redis-server >/dev/null 2>&1",
                redis_server_runs,
            )
        })
        .clone()
}

fn redis_server_runs() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// A reply to a RESP command (RESP2 types).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Status(String),
    /// `-...`
    Error(String),
    /// `:...`
    Integer(i64),
    /// `$...` (`None` for the null bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*...` (`None` for the null array).
    Array(Option<Vec<Reply>>),
}

/// A `redis-server` child process on 127.0.0.1, without persistence, in a
/// directory of its own; killed (and its directory removed) on drop.
///
/// A watchdog shell holding a pipe from this process kills the server when
/// the test process dies before the guard drops.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    /// The server process and its watchdog.
    guarded: Guarded,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> Result<RedisServer, String> {
        ensure_redis_server()?;
        let dir = scratch_dir("redis");
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        let mut last_error = String::new();
        for _ in 0..3 {
            let mut server = RedisServer {
                port: free_port(),
                dir: dir.clone(),
                guarded: Guarded::default(),
            };
            match server.launch() {
                Ok(()) => return Ok(server),
                // Most likely lost the port to a parallel test: try another.
                Err(err) => {
                    last_error = err;
                    // Keep the directory for the next try.
                    server.dir = PathBuf::new();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error)
    }

    fn launch(&mut self) -> Result<(), String> {
        let words: Vec<OsString> = vec!["redis-server".into()];
        let args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &self.dir.to_string_lossy(),
        ]
        .iter()
        .map(|word| word.to_string())
        .collect();
        let proc = Proc::spawn(&words, &args, false)?;
        self.guarded.watch(proc, None)?;
        let deadline = Instant::now() + REDIS_READY_TIMEOUT;
        loop {
            match self.command(&[b"PING"]) {
                Ok(Reply::Status(status)) if status == "PONG" => return Ok(()),
                Ok(other) => {
                    return Err(format!(
                        "redis-server answered PING with {other:?}\n{}",
                        self.output()
                    ))
                }
                Err(err) => {
                    if let Some(status) = self.guarded.exited() {
                        let output = self.output();
                        self.stop();
                        return Err(format!(
                            "redis-server exited with {status} before answering PING\n{output}"
                        ));
                    }
                    if Instant::now() >= deadline {
                        let output = self.output();
                        self.stop();
                        return Err(format!(
                            "redis-server did not answer PING within \
                             {REDIS_READY_TIMEOUT:?}: {err}\n{output}"
                        ));
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Kills the watchdog, then the server; keeps the server's output.
    fn stop(&mut self) {
        self.guarded.stop();
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (a broker outage); [`RedisServer::restart`] brings it
    /// back on the same port.
    pub fn kill(&mut self) {
        self.stop();
    }

    /// Kills the server if it runs and starts it again on the same port
    /// (empty: nothing is persisted), waiting until it answers PING.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        let port = self.port;
        relaunch(
            "redis",
            port,
            Duration::from_secs(5),
            Duration::from_millis(200),
            || self.launch(),
        )
    }

    /// The running server's major version (from `INFO server`), e.g. 7:
    /// sharded pub/sub (SPUBLISH) needs 7 or later.
    pub fn version(&self) -> Result<u32, String> {
        let info = match self.command(&[b"INFO", b"server"])? {
            Reply::Bulk(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            other => return Err(format!("INFO server answered {other:?}")),
        };
        info.lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .and_then(|version| version.trim().split('.').next()?.parse().ok())
            .ok_or_else(|| format!("no redis_version in INFO server:\n{info}"))
    }

    /// Sends one command over a fresh connection and reads its reply.
    pub fn command(&self, words: &[&[u8]]) -> Result<Reply, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|err| format!("connect to redis on port {}: {err}", self.port))?;
        stream
            .set_read_timeout(Some(REDIS_COMMAND_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(REDIS_COMMAND_TIMEOUT)))
            .map_err(|err| err.to_string())?;
        let mut request = format!("*{}\r\n", words.len()).into_bytes();
        for word in words {
            request.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
            request.extend_from_slice(word);
            request.extend_from_slice(b"\r\n");
        }
        stream
            .write_all(&request)
            .map_err(|err| format!("write to redis: {err}"))?;
        let mut reader = BufReader::new(&stream);
        let reply = read_reply(&mut reader)?;
        let _ = stream.shutdown(Shutdown::Both);
        Ok(reply)
    }

    /// `PUBLISH channel payload` with any bytes (hostile messages included);
    /// returns how many subscribers received it.
    pub fn publish_raw(&self, channel: &str, payload: &[u8]) -> Result<i64, String> {
        match self.command(&[b"PUBLISH", channel.as_bytes(), payload])? {
            Reply::Integer(receivers) => Ok(receivers),
            other => Err(format!("PUBLISH answered {other:?}")),
        }
    }

    /// `SPUBLISH channel payload` (sharded pub/sub, Redis 7+).
    pub fn spublish_raw(&self, channel: &str, payload: &[u8]) -> Result<i64, String> {
        match self.command(&[b"SPUBLISH", channel.as_bytes(), payload])? {
            Reply::Integer(receivers) => Ok(receivers),
            other => Err(format!("SPUBLISH answered {other:?}")),
        }
    }

    /// How many connections subscribe to `channel` (`PUBSUB NUMSUB`).
    pub fn numsub(&self, channel: &str) -> Result<i64, String> {
        match self.command(&[b"PUBSUB", b"NUMSUB", channel.as_bytes()])? {
            Reply::Array(Some(items)) => match items.get(1) {
                Some(Reply::Integer(count)) => Ok(*count),
                other => Err(format!("PUBSUB NUMSUB item {other:?}")),
            },
            other => Err(format!("PUBSUB NUMSUB answered {other:?}")),
        }
    }

    /// How many connections subscribe to the shard channel `channel`
    /// (`PUBSUB SHARDNUMSUB`, Redis 7+).
    pub fn shard_numsub(&self, channel: &str) -> Result<i64, String> {
        match self.command(&[b"PUBSUB", b"SHARDNUMSUB", channel.as_bytes()])? {
            Reply::Array(Some(items)) => match items.get(1) {
                Some(Reply::Integer(count)) => Ok(*count),
                other => Err(format!("PUBSUB SHARDNUMSUB item {other:?}")),
            },
            other => Err(format!("PUBSUB SHARDNUMSUB answered {other:?}")),
        }
    }

    /// What the server printed, from every run since it first started.
    pub fn output(&self) -> String {
        self.guarded.output()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .map_err(|err| format!("read from redis: {err}"))?;
    if !line.ends_with(b"\r\n") {
        return Err(format!(
            "redis closed or sent a broken line: {:?}",
            String::from_utf8_lossy(&line)
        ));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn read_reply(reader: &mut impl BufRead) -> Result<Reply, String> {
    let line = read_line(reader)?;
    let (kind, rest) = line.split_at(1.min(line.len()));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| format!("bad RESP length/integer in {line:?}"))
    };
    match kind {
        "+" => Ok(Reply::Status(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => Ok(Reply::Integer(number()?)),
        "$" => {
            let len = number()?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            let mut bytes = vec![0; len as usize + 2];
            reader
                .read_exact(&mut bytes)
                .map_err(|err| format!("read from redis: {err}"))?;
            bytes.truncate(len as usize);
            Ok(Reply::Bulk(Some(bytes)))
        }
        "*" => {
            let len = number()?;
            if len < 0 {
                return Ok(Reply::Array(None));
            }
            (0..len)
                .map(|_| read_reply(reader))
                .collect::<Result<Vec<_>, _>>()
                .map(|items| Reply::Array(Some(items)))
        }
        _ => Err(format!("unexpected RESP line {line:?}")),
    }
}

// ---------------------------------------------------------------------------
// Our examples

/// Builds one of our examples once per process (`cargo build --release
/// --all-features --example NAME`) and returns its path.
pub fn our_example(name: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(outcome) = built.get(name) {
        return outcome.clone();
    }
    let outcome = build_example(name);
    built.insert(name.to_string(), outcome.clone());
    outcome
}

fn build_example(name: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let output = Command::new(cargo)
        .current_dir(workspace_dir())
        .args([
            "build",
            "--release",
            "--all-features",
            "--example",
            name,
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build --release --example {name} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == name
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("example {name} not found in cargo's output"))
}

// ---------------------------------------------------------------------------
// Cluster nodes

/// The bus format our `echo_server --adapter` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OurFormat {
    /// python-socketio's JSON on one channel (`--adapter redis-python`).
    Python,
    /// @socket.io/redis-adapter classic (`--adapter redis-node`).
    Node,
    /// @socket.io/redis-adapter sharded (`--adapter redis-node-sharded`).
    NodeSharded,
    /// @socket.io/redis-streams-adapter (`--adapter redis-streams`).
    Streams,
    /// python-socketio's JSON over RabbitMQ (`--adapter amqp`).
    Amqp,
    /// python-socketio's JSON as Kafka records (`--adapter kafka`).
    Kafka,
    /// python-socketio's JSON over ZeroMQ (`--adapter zmq`).
    Zmq,
}

impl OurFormat {
    /// The value of `echo_server --adapter`.
    pub fn adapter_flag(self) -> &'static str {
        match self {
            OurFormat::Python => "redis-python",
            OurFormat::Node => "redis-node",
            OurFormat::NodeSharded => "redis-node-sharded",
            OurFormat::Streams => "redis-streams",
            OurFormat::Amqp => "amqp",
            OurFormat::Kafka => "kafka",
            OurFormat::Zmq => "zmq",
        }
    }
}

/// One implementation of the cluster server contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// `node/cluster_server.js --adapter classic`.
    NodeClassic,
    /// `node/cluster_server.js --adapter sharded` (Redis 7+).
    NodeSharded,
    /// `node/cluster_server.js --adapter streams`.
    NodeStreams,
    /// `python/cluster_server.py` (AsyncRedisManager).
    Python,
    /// `python/cluster_server.py --amqp URL --client ...` (RabbitMQ).
    PythonAmqp(AmqpPeer),
    /// `python/cluster_server.py --kafka URL` (KafkaManager).
    PythonKafka,
    /// `python/cluster_server.py --zmq URL` (ZmqManager under eventlet).
    PythonZmq,
    /// Our `echo_server --adapter ...` example.
    Ours(Runtime, OurFormat),
}

impl NodeKind {
    /// Whether this kind needs sharded pub/sub (Redis 7+).
    pub fn needs_sharded_pubsub(self) -> bool {
        matches!(
            self,
            NodeKind::NodeSharded | NodeKind::Ours(_, OurFormat::NodeSharded)
        )
    }

    /// Whether the node implements the Node-only events of the contract
    /// (`fetch-sockets`, `server-side-emit`, `broadcast-ack`,
    /// `server-count`).
    pub fn has_node_requests(self) -> bool {
        matches!(
            self,
            NodeKind::NodeClassic
                | NodeKind::NodeSharded
                | NodeKind::NodeStreams
                | NodeKind::Ours(
                    _,
                    OurFormat::Node | OurFormat::NodeSharded | OurFormat::Streams
                )
        )
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeKind::NodeClassic => f.write_str("node-classic"),
            NodeKind::NodeSharded => f.write_str("node-sharded"),
            NodeKind::NodeStreams => f.write_str("node-streams"),
            NodeKind::Python => f.write_str("python"),
            NodeKind::PythonAmqp(peer) => write!(f, "python({})", peer.flag()),
            NodeKind::PythonKafka => f.write_str("python(kafka)"),
            NodeKind::PythonZmq => f.write_str("python(zmq)"),
            NodeKind::Ours(runtime, format) => {
                write!(f, "ours({}, {})", runtime.flag(), format.adapter_flag())
            }
        }
    }
}

/// The AMQP manager of a python node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmqpPeer {
    /// `KombuManager` on a threaded `socketio.Server`.
    Kombu,
    /// `AsyncAioPikaManager` on the `AsyncServer`.
    AioPika,
}

impl AmqpPeer {
    /// The value of `cluster_server.py --client`.
    pub fn flag(self) -> &'static str {
        match self {
            AmqpPeer::Kombu => "kombu",
            AmqpPeer::AioPika => "aiopika",
        }
    }
}

/// `--amqp` for an `amqp://` or `amqps://` URL, `--kafka` for a
/// `kafka://` one, `--zmq` for a `zmq+tcp://` one, else `--redis`.
fn bus_flag(url: &str) -> &'static str {
    if url.starts_with("amqp") {
        "--amqp"
    } else if url.starts_with("kafka://") {
        "--kafka"
    } else if url.starts_with("zmq") {
        "--zmq"
    } else {
        "--redis"
    }
}

/// A running cluster server; killed on drop.
pub struct ClusterNode {
    kind: NodeKind,
    port: u16,
    proc: Proc,
}

impl ClusterNode {
    /// Starts a node of `kind` on Redis `redis_url` with the default channel
    /// (python `socketio`) or prefix (Node `socket.io`).
    pub fn start(kind: NodeKind, redis_url: &str) -> Result<ClusterNode, String> {
        ClusterNode::start_with(kind, redis_url, None)
    }

    /// Like [`ClusterNode::start`] with another channel (python
    /// `--channel`) or prefix (Node `--prefix`; ours `--channel`).
    pub fn start_with(
        kind: NodeKind,
        redis_url: &str,
        channel: Option<&str>,
    ) -> Result<ClusterNode, String> {
        ClusterNode::start_options(kind, redis_url, channel, None)
    }

    /// Like [`ClusterNode::start`] with connection state recovery on
    /// (`--state-recovery SECS`, ours and Node's).
    pub fn start_recovering(
        kind: NodeKind,
        redis_url: &str,
        window: Duration,
    ) -> Result<ClusterNode, String> {
        ClusterNode::start_options(kind, redis_url, None, Some(window))
    }

    fn start_options(
        kind: NodeKind,
        redis_url: &str,
        channel: Option<&str>,
        recovery: Option<Duration>,
    ) -> Result<ClusterNode, String> {
        let mut last_error = String::new();
        for _ in 0..3 {
            match ClusterNode::start_on(kind, redis_url, channel, recovery, free_port()) {
                Ok(node) => return Ok(node),
                // Most likely lost the port to a parallel test: try another.
                Err(err) => last_error = err,
            }
        }
        Err(last_error)
    }

    fn start_on(
        kind: NodeKind,
        redis_url: &str,
        channel: Option<&str>,
        recovery: Option<Duration>,
        port: u16,
    ) -> Result<ClusterNode, String> {
        let mut args = vec![
            "--port".to_string(),
            port.to_string(),
            bus_flag(redis_url).into(),
            redis_url.into(),
        ];
        if let Some(window) = recovery {
            if matches!(kind, NodeKind::Python | NodeKind::PythonAmqp(_)) {
                return Err(format!("{kind} nodes have no connection state recovery"));
            }
            args.extend([
                "--state-recovery".into(),
                window.as_secs().max(1).to_string(),
            ]);
        }
        let words: Vec<OsString> = match kind {
            NodeKind::NodeClassic | NodeKind::NodeSharded | NodeKind::NodeStreams => {
                setup()?;
                let adapter = match kind {
                    NodeKind::NodeClassic => "classic",
                    NodeKind::NodeSharded => "sharded",
                    _ => "streams",
                };
                args.extend(["--adapter".into(), adapter.into()]);
                if let Some(prefix) = channel {
                    args.extend(["--prefix".into(), prefix.into()]);
                }
                vec![
                    "node".into(),
                    interop_dir().join("node/cluster_server.js").into(),
                ]
            }
            NodeKind::Python
            | NodeKind::PythonAmqp(_)
            | NodeKind::PythonKafka
            | NodeKind::PythonZmq => {
                setup()?;
                if let NodeKind::PythonAmqp(peer) = kind {
                    args.extend(["--client".into(), peer.flag().into()]);
                }
                if let Some(channel) = channel {
                    args.extend(["--channel".into(), channel.into()]);
                }
                vec![
                    interop_dir().join(".venv/bin/python").into(),
                    interop_dir().join("python/cluster_server.py").into(),
                ]
            }
            NodeKind::Ours(runtime, format) => {
                args.extend([
                    "--runtime".into(),
                    runtime.flag().into(),
                    "--adapter".into(),
                    format.adapter_flag().into(),
                ]);
                if let Some(channel) = channel {
                    args.extend(["--channel".into(), channel.into()]);
                }
                vec![our_example("echo_server")?.into()]
            }
        };
        let proc = Proc::spawn(&words, &args, true)?;
        let deadline = Instant::now() + NODE_READY_TIMEOUT;
        let port = loop {
            match proc.next_line(deadline) {
                Ok(Some(line)) => {
                    if let Some(rest) = line.strip_prefix("listening on") {
                        match rest.trim().parse::<u16>() {
                            Ok(listening) if listening != 0 => break listening,
                            _ => {
                                return Err(format!(
                                    "{kind} node printed a bad `{line}`\n{}",
                                    proc.output()
                                ))
                            }
                        }
                    }
                }
                Ok(None) => {
                    return Err(format!(
                        "{kind} node exited before listening\n{}",
                        proc.output()
                    ))
                }
                Err(err) => {
                    return Err(format!(
                        "{kind} node did not print `listening on`: {err}\n{}",
                        proc.output()
                    ))
                }
            }
        };
        Ok(ClusterNode { kind, port, proc })
    }

    /// The node's kind.
    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// The node's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the node printed so far.
    pub fn output(&self) -> String {
        self.proc.output()
    }
}

/// The bus a cluster's nodes share: a [`RedisServer`] or a
/// [`RabbitServer`](crate::rabbit::RabbitServer).
pub trait Bus {
    /// Its name in failure reports (`redis`, `rabbit`, `tansu`).
    const NAME: &'static str;
    /// How long a delivery may take on it.
    const DELIVERY: Duration = crate::scene::DELIVERY;
    /// How long to wait for duplicates or strays once the expected
    /// deliveries arrived.
    const QUIET: Duration = crate::scene::QUIET;
    /// The URL its nodes and emitters are given.
    fn url(&self) -> String;
    /// What its server printed.
    fn output(&self) -> String;
}

impl Bus for RedisServer {
    const NAME: &'static str = "redis";

    fn url(&self) -> String {
        RedisServer::url(self)
    }

    fn output(&self) -> String {
        RedisServer::output(self)
    }
}

/// A bus (Redis by default) and the nodes on it; the nodes are stopped
/// before the bus.
pub struct Cluster<B: Bus = RedisServer> {
    /// The nodes, in start order.
    pub nodes: Vec<ClusterNode>,
    /// The bus they share.
    pub bus: B,
}

impl Cluster {
    /// Starts Redis and the nodes of `kinds` on it, concurrently.
    pub fn start(kinds: &[NodeKind]) -> Result<Cluster, String> {
        Cluster::start_on(RedisServer::start()?, kinds)
    }
}

impl<B: Bus> Cluster<B> {
    /// Starts the nodes of `kinds`, concurrently, on a running bus.
    pub fn start_on(bus: B, kinds: &[NodeKind]) -> Result<Cluster<B>, String> {
        let url = bus.url();
        let started: Vec<Result<ClusterNode, String>> = thread::scope(|scope| {
            let handles: Vec<_> = kinds
                .iter()
                .map(|&kind| {
                    let url = &url;
                    scope.spawn(move || ClusterNode::start(kind, url))
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err("node start panicked".into()))
                })
                .collect()
        });
        let mut nodes = Vec::new();
        let mut errors = Vec::new();
        for outcome in started {
            match outcome {
                Ok(node) => nodes.push(node),
                Err(err) => errors.push(err),
            }
        }
        let cluster = Cluster { nodes, bus };
        if errors.is_empty() {
            Ok(cluster)
        } else {
            Err(format!("{}\n{}", errors.join("\n"), cluster.output()))
        }
    }

    /// The nodes' URLs, in order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(ClusterNode::url).collect()
    }

    /// The output of the bus and of every node.
    pub fn output(&self) -> String {
        let mut output = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            output.push_str(&format!(
                "----- node {i} ({}) -----\n{}\n",
                node.kind,
                node.output()
            ));
        }
        output.push_str(&format!("----- {} -----\n{}", B::NAME, self.bus.output()));
        output
    }
}

impl<B: Bus> Drop for Cluster<B> {
    fn drop(&mut self) {
        // Nodes first, so that they do not log the bus going away.
        self.nodes.clear();
    }
}

// ---------------------------------------------------------------------------
// Clients

/// An implementation of the cluster client contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// `node/cluster_client.js` (socket.io-client 4.8).
    Node,
    /// `python/cluster_client.py` (python-socketio AsyncClient).
    Python,
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKind::Node => f.write_str("node"),
            ClientKind::Python => f.write_str("python"),
        }
    }
}

/// What one client received: events in arrival order.
#[derive(Default)]
struct ClientState {
    sid: Option<String>,
    /// What each connection said of connection state recovery, in order.
    recovered: Vec<bool>,
    events: Vec<(String, Value)>,
    disconnects: Vec<String>,
    connect_errors: Vec<String>,
}

/// One client process holding one Socket.IO client per URL (client `i`
/// connects to the `i`-th URL); killed on drop. Everything it printed is
/// kept for failure messages.
pub struct ClusterClients {
    kind: ClientKind,
    proc: Proc,
    clients: Vec<ClientState>,
    acks: HashMap<u64, Result<Value, String>>,
    next_id: u64,
    exited: bool,
    /// Lines that were not understood (the clients' own complaints).
    strays: Vec<String>,
}

impl ClusterClients {
    /// Starts `kind`'s client process on `urls`, namespace `/`, WebSocket.
    pub fn spawn(kind: ClientKind, urls: &[String]) -> Result<ClusterClients, String> {
        ClusterClients::spawn_with(kind, urls, "/", "websocket")
    }

    /// Starts `kind`'s client process on `urls` with a namespace and
    /// `--transports websocket|polling`.
    pub fn spawn_with(
        kind: ClientKind,
        urls: &[String],
        nsp: &str,
        transports: &str,
    ) -> Result<ClusterClients, String> {
        setup()?;
        let words: Vec<OsString> = match kind {
            ClientKind::Node => vec![
                "node".into(),
                interop_dir().join("node/cluster_client.js").into(),
            ],
            ClientKind::Python => vec![
                interop_dir().join(".venv/bin/python").into(),
                interop_dir().join("python/cluster_client.py").into(),
            ],
        };
        let mut args = Vec::new();
        for url in urls {
            args.extend(["--url".to_string(), url.clone()]);
        }
        args.extend([
            "--nsp".into(),
            nsp.into(),
            "--transports".into(),
            transports.into(),
        ]);
        let proc = Proc::spawn(&words, &args, true)?;
        Ok(ClusterClients {
            kind,
            proc,
            clients: urls.iter().map(|_| ClientState::default()).collect(),
            acks: HashMap::new(),
            next_id: 1,
            exited: false,
            strays: Vec::new(),
        })
    }

    /// The client implementation.
    pub fn kind(&self) -> ClientKind {
        self.kind
    }

    /// How many clients the process holds.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether the process holds no client.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Reads the process's output up to `deadline` or until `done` holds;
    /// `Ok(false)` when the deadline passed first.
    fn pump_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<bool, String> {
        loop {
            if done(self) {
                return Ok(true);
            }
            if self.exited {
                return Err(self.fail("the client process exited"));
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            match self.proc.next_line(deadline) {
                Ok(Some(line)) => self.take(&line),
                Ok(None) => self.exited = true,
                Err(_) => return Ok(done(self)),
            }
        }
    }

    /// Reads what has already arrived, without waiting.
    fn pump(&mut self) -> Result<(), String> {
        self.pump_until(Instant::now(), |_| false).map(|_| ())
    }

    fn take(&mut self, line: &str) {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            self.strays.push(line.to_string());
            return;
        };
        if let Some(id) = message.get("id").and_then(Value::as_u64) {
            if let Some(ack) = message.get("ack") {
                self.acks.insert(id, Ok(ack.clone()));
                return;
            }
            if let Some(error) = message.get("error") {
                let error = error
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_string);
                self.acks.insert(id, Err(error));
                return;
            }
        }
        let client = message
            .get("client")
            .and_then(Value::as_u64)
            .and_then(|i| self.clients.get_mut(i as usize));
        let Some(client) = client else {
            self.strays.push(line.to_string());
            return;
        };
        if let Some(sid) = message.get("connected").and_then(Value::as_str) {
            client.sid = Some(sid.to_string());
            let recovered = message.get("recovered").and_then(Value::as_bool);
            client.recovered.push(recovered == Some(true));
        } else if let Some(name) = message.get("event").and_then(Value::as_str) {
            let args = message.get("args").cloned().unwrap_or(Value::Null);
            client.events.push((name.to_string(), args));
        } else if let Some(reason) = message.get("disconnected") {
            client.sid = None;
            client.disconnects.push(
                reason
                    .as_str()
                    .map_or_else(|| reason.to_string(), str::to_string),
            );
        } else if let Some(error) = message.get("connect_error") {
            client.connect_errors.push(
                error
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_string),
            );
        } else {
            self.strays.push(line.to_string());
        }
    }

    /// An error message: `reason` and the client process's output.
    pub fn fail(&self, reason: impl fmt::Display) -> String {
        format!(
            "{} clients: {reason}\n----- {} clients -----\n{}",
            self.kind,
            self.kind,
            self.output()
        )
    }

    /// What the client process printed so far (the last 32 KiB).
    pub fn output(&self) -> String {
        self.proc.output_tail(CLIENT_LOG_TAIL)
    }

    /// Waits until every client is connected; returns their sids in order.
    pub fn wait_connected(&mut self) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        if !self.pump_until(deadline, |me| me.clients.iter().all(|c| c.sid.is_some()))? {
            let missing: Vec<usize> = (0..self.clients.len())
                .filter(|&i| self.clients[i].sid.is_none())
                .collect();
            return Err(self.fail(format!(
                "clients {missing:?} not connected within {CONNECT_TIMEOUT:?}"
            )));
        }
        Ok(self.sids())
    }

    /// The current sid of every client (empty while disconnected).
    pub fn sids(&self) -> Vec<String> {
        self.clients
            .iter()
            .map(|c| c.sid.clone().unwrap_or_default())
            .collect()
    }

    /// Client `client`'s current sid.
    pub fn sid(&self, client: usize) -> Result<String, String> {
        self.clients
            .get(client)
            .and_then(|c| c.sid.clone())
            .ok_or_else(|| self.fail(format!("client {client} is not connected")))
    }

    fn send(
        &mut self,
        client: usize,
        event: &str,
        args: &[Value],
        ack: bool,
    ) -> Result<u64, String> {
        let line = json!({"client": client, "emit": event, "args": args, "ack": ack});
        self.command(client, line)
    }

    /// Writes `line` (an object) with a fresh `id`, which it returns.
    fn command(&mut self, client: usize, mut line: Value) -> Result<u64, String> {
        if client >= self.clients.len() {
            return Err(self.fail(format!("no client {client}")));
        }
        let id = self.next_id;
        self.next_id += 1;
        line["id"] = json!(id);
        let written = match self.proc.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin is closed")),
        };
        written.map_err(|err| self.fail(format!("cannot write `{line}`: {err}")))?;
        Ok(id)
    }

    /// Sends a command of the Node client's own (`cut`, `reconnect`) and
    /// waits for its ack.
    fn control(&mut self, client: usize, line: Value) -> Result<(), String> {
        if self.kind != ClientKind::Node {
            return Err(self.fail(format!("{line} is a command of the Node client only")));
        }
        let id = self.command(client, line.clone())?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        if !self.pump_until(deadline, |me| me.acks.contains_key(&id))? {
            return Err(self.fail(format!("no answer to {line} within {CALL_TIMEOUT:?}")));
        }
        match self.acks.remove(&id).expect("checked above") {
            Ok(_) => Ok(()),
            Err(error) => Err(self.fail(format!("{line} failed: {error}"))),
        }
    }

    /// Cuts client `client`'s transport (as a network failure would) and
    /// keeps it from reconnecting by itself; returns once it saw the
    /// disconnection. Node client only.
    pub fn cut(&mut self, client: usize) -> Result<(), String> {
        self.control(client, json!({"client": client, "cut": true}))
    }

    /// Connects client `client` again, to `url`, and waits until it is
    /// connected: its sid and whether the server said it recovered the
    /// session. Node client only.
    pub fn reconnect(&mut self, client: usize, url: &str) -> Result<(String, bool), String> {
        let before = self.clients.get(client).map_or(0, |c| c.recovered.len());
        self.control(client, json!({"client": client, "reconnect": url}))?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let connected = self.pump_until(deadline, |me| {
            me.clients[client].recovered.len() > before && me.clients[client].sid.is_some()
        })?;
        if !connected {
            return Err(self.fail(format!(
                "client {client} did not connect to {url} within {CONNECT_TIMEOUT:?}"
            )));
        }
        let state = &self.clients[client];
        Ok((state.sid.clone().expect("checked"), state.recovered[before]))
    }

    /// Waits until client `client` has received `count` `name` events (at
    /// most `within`); returns the arguments of all it received.
    pub fn wait_events(
        &mut self,
        client: usize,
        name: &str,
        count: usize,
        within: Duration,
    ) -> Result<Vec<Value>, String> {
        let deadline = Instant::now() + within;
        let enough = self.pump_until(deadline, |me| {
            me.clients.get(client).is_some_and(|state| {
                state
                    .events
                    .iter()
                    .filter(|(event, _)| event == name)
                    .count()
                    >= count
            })
        })?;
        let received = self.events(client, name)?;
        if enough {
            Ok(received)
        } else {
            Err(self.fail(format!(
                "client {client} received {received:?} of {name}, want {count} within {within:?}"
            )))
        }
    }

    /// Client `client` emits `event(args...)` without asking for an ack.
    pub fn emit(&mut self, client: usize, event: &str, args: &[Value]) -> Result<(), String> {
        self.send(client, event, args, false).map(|_| ())
    }

    /// Client `client` emits `event(args...)` asking for an ack and waits for
    /// it: `Ok` with the ack's arguments as an array, `Err` with the
    /// client's error (its 10 s timeout) or the harness's deadline, and the
    /// output.
    pub fn call(&mut self, client: usize, event: &str, args: &[Value]) -> Result<Value, String> {
        let id = self.send(client, event, args, true)?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        if !self.pump_until(deadline, |me| me.acks.contains_key(&id))? {
            return Err(self.fail(format!(
                "no answer to {event}{} (id {id}) from client {client} within {CALL_TIMEOUT:?}",
                Value::from(args.to_vec())
            )));
        }
        match self.acks.remove(&id).expect("checked above") {
            Ok(ack) => Ok(ack),
            Err(error) => Err(self.fail(format!(
                "{event}{} (id {id}) from client {client} failed: {error}",
                Value::from(args.to_vec())
            ))),
        }
    }

    /// The arguments of every `name` event client `client` received so far,
    /// in order.
    pub fn events(&mut self, client: usize, name: &str) -> Result<Vec<Value>, String> {
        self.pump()?;
        let state = self
            .clients
            .get(client)
            .ok_or_else(|| format!("no client {client}"))?;
        Ok(state
            .events
            .iter()
            .filter(|(event, _)| event == name)
            .map(|(_, args)| args.clone())
            .collect())
    }

    /// How many `name(args...)` events client `client` received so far.
    pub fn count(&mut self, client: usize, name: &str, args: &Value) -> Result<usize, String> {
        Ok(self
            .events(client, name)?
            .iter()
            .filter(|received| *received == args)
            .count())
    }

    /// Waits until client `client` has received `name(args...)` (`args` a
    /// JSON array), at most `within`.
    pub fn expect_event(
        &mut self,
        client: usize,
        name: &str,
        args: &Value,
        within: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let seen = self.pump_until(deadline, |me| {
            me.clients.get(client).is_some_and(|state| {
                state
                    .events
                    .iter()
                    .any(|(event, received)| event == name && received == args)
            })
        })?;
        if seen {
            Ok(())
        } else {
            Err(self.fail(format!(
                "client {client} did not receive {name}{args} within {within:?}"
            )))
        }
    }

    /// Waits `quiet` and fails if client `client` received any `name` event
    /// (since it started, or since [`ClusterClients::clear_events`]).
    pub fn expect_no_event(
        &mut self,
        client: usize,
        name: &str,
        quiet: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + quiet;
        self.pump_until(deadline, |_| false)?;
        let received = self.events(client, name)?;
        if received.is_empty() {
            Ok(())
        } else {
            Err(self.fail(format!(
                "client {client} received {name} {received:?}, expected none"
            )))
        }
    }

    /// Lets `quiet` pass while reading the output (for counts afterwards).
    pub fn settle(&mut self, quiet: Duration) -> Result<(), String> {
        let deadline = Instant::now() + quiet;
        self.pump_until(deadline, |_| false).map(|_| ())
    }

    /// Forgets the events received so far (not the connection state).
    pub fn clear_events(&mut self) -> Result<(), String> {
        self.pump()?;
        for client in &mut self.clients {
            client.events.clear();
        }
        Ok(())
    }

    /// The disconnect reasons client `client` saw, in order.
    pub fn disconnects(&mut self, client: usize) -> Result<Vec<String>, String> {
        self.pump()?;
        Ok(self
            .clients
            .get(client)
            .map(|c| c.disconnects.clone())
            .unwrap_or_default())
    }

    /// Waits until client `client` saw a disconnect, at most `within`;
    /// returns the reasons so far.
    pub fn wait_disconnected(
        &mut self,
        client: usize,
        within: Duration,
    ) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + within;
        let seen = self.pump_until(deadline, |me| {
            me.clients
                .get(client)
                .is_some_and(|c| !c.disconnects.is_empty())
        })?;
        if seen {
            self.disconnects(client)
        } else {
            Err(self.fail(format!(
                "client {client} was not disconnected within {within:?}"
            )))
        }
    }
}

// ---------------------------------------------------------------------------
// Emitters

/// A write-only emitter implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitterKind {
    /// `python/cluster_emit.py` (`RedisManager(write_only=True)`).
    Python,
    /// `node/cluster_emit.js` (`@socket.io/redis-emitter`, classic format).
    Node,
    /// Our `emit` example with `--format python`.
    OursPython,
    /// Our `emit` example with `--format node`.
    OursNode,
    /// Our `emit` example with `--format node-sharded`.
    OursNodeSharded,
    /// Our `emit` example with `--format streams`.
    OursStreams,
}

impl fmt::Display for EmitterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitterKind::Python => f.write_str("python emitter"),
            EmitterKind::Node => f.write_str("node emitter"),
            EmitterKind::OursPython => f.write_str("our emitter (python format)"),
            EmitterKind::OursNode => f.write_str("our emitter (node format)"),
            EmitterKind::OursNodeSharded => f.write_str("our emitter (node sharded format)"),
            EmitterKind::OursStreams => f.write_str("our emitter (streams format)"),
        }
    }
}

/// Where an emit goes besides the event itself.
#[derive(Clone, Debug, Default)]
pub struct EmitTarget {
    /// `--nsp` (default `/`).
    pub nsp: Option<String>,
    /// `--room`.
    pub room: Option<String>,
    /// python `--channel`, Node `--prefix`, ours `--channel`.
    pub channel: Option<String>,
}

/// Runs one emitter to its end: `event(args...)` (`args` a JSON array,
/// binary as `{"$bin":hex}`). `Ok` with its output when it exited 0 within
/// the deadline, else `Err` with the reason and the output.
pub fn run_emitter(
    kind: EmitterKind,
    redis_url: &str,
    event: &str,
    args: &Value,
    target: &EmitTarget,
) -> Result<String, String> {
    let mut cli = vec![bus_flag(redis_url).to_string(), redis_url.to_string()];
    let words: Vec<OsString> = match kind {
        EmitterKind::Python => {
            setup()?;
            vec![
                interop_dir().join(".venv/bin/python").into(),
                interop_dir().join("python/cluster_emit.py").into(),
            ]
        }
        EmitterKind::Node => {
            setup()?;
            vec![
                "node".into(),
                interop_dir().join("node/cluster_emit.js").into(),
            ]
        }
        EmitterKind::OursPython
        | EmitterKind::OursNode
        | EmitterKind::OursNodeSharded
        | EmitterKind::OursStreams => {
            let format = match kind {
                EmitterKind::OursPython => "python",
                EmitterKind::OursNode => "node",
                EmitterKind::OursStreams => "streams",
                _ => "node-sharded",
            };
            cli.extend(["--format".into(), format.into()]);
            vec![our_example("emit")?.into()]
        }
    };
    if let Some(channel) = &target.channel {
        let flag = if kind == EmitterKind::Node {
            "--prefix"
        } else {
            "--channel"
        };
        cli.extend([flag.into(), channel.clone()]);
    }
    if let Some(nsp) = &target.nsp {
        cli.extend(["--nsp".into(), nsp.clone()]);
    }
    if let Some(room) = &target.room {
        cli.extend(["--room".into(), room.clone()]);
    }
    cli.extend([event.to_string(), args.to_string()]);
    let mut proc = Proc::spawn(&words, &cli, false)?;
    let status = proc.wait(Instant::now() + EMITTER_TIMEOUT);
    // The output threads finish once the pipes close.
    let drained = Instant::now() + Duration::from_millis(500);
    while proc.next_line(drained).is_ok_and(|line| line.is_some()) {}
    match status {
        Ok(status) if status.success() => Ok(proc.output()),
        Ok(status) => Err(format!("{kind} exited with {status}\n{}", proc.output())),
        Err(err) => Err(format!("{kind} {err}\n{}", proc.output())),
    }
}
