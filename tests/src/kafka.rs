//! Kafka for the cluster tests: a real Kafka-protocol broker (tansu, an
//! Apache Kafka-compatible broker from crates.io, in-memory storage) and the
//! nodes on it.
//!
//! tansu is installed once with `cargo install tansu --locked --features
//! dynostore --root ~/.cache/socketio-tansu` when missing (several minutes;
//! `$SOCKETIO_TANSU` names another binary). Topics are not created on
//! demand: [`TansuBroker::start`] creates the channel's topic, and again on
//! every [`TansuBroker::restart`] (the storage is in memory).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use socketio_core::cluster::kafka::{
    decode_response, encode_record_batch, encode_request, ApiKey, FrameDecoder, KafkaLimits,
    ProducePartition, Request, Response,
};

use crate::cluster::{start_nodes, ClusterNode, NodeKind};
use crate::{free_port, Proc};

/// How long tansu may take to accept connections and create a topic.
const BROKER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The tansu binary, installed once per process if missing.
pub fn ensure_tansu() -> Result<PathBuf, String> {
    static TANSU: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TANSU
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("SOCKETIO_TANSU") {
                return Ok(PathBuf::from(path));
            }
            let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
            let root = PathBuf::from(home).join(".cache/socketio-tansu");
            let bin = root.join("bin/tansu");
            if bin.exists() {
                return Ok(bin);
            }
            let lock = std::env::temp_dir().join("socketio-interop-tansu.lock");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let output = Command::new("flock")
                .arg(&lock)
                .arg(&cargo)
                .args(["install", "tansu", "--locked", "--features", "dynostore"])
                .arg("--root")
                .arg(&root)
                .stdin(Stdio::null())
                .output()
                .map_err(|err| format!("cannot run cargo install tansu: {err}"))?;
            if !output.status.success() || !bin.exists() {
                return Err(format!(
                    "cargo install tansu failed ({}):\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(bin)
        })
        .clone()
}

/// A tansu broker on 127.0.0.1 with in-memory storage; killed on drop.
pub struct TansuBroker {
    bin: PathBuf,
    port: u16,
    topics: Vec<String>,
    proc: Option<Proc>,
    /// Output of the previous runs (before restarts).
    past: String,
}

impl TansuBroker {
    /// Starts a broker and creates `topics` (one partition each).
    pub fn start(topics: &[&str]) -> Result<TansuBroker, String> {
        let mut broker = TansuBroker {
            bin: ensure_tansu()?,
            port: free_port(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            proc: None,
            past: String::new(),
        };
        broker.spawn()?;
        Ok(broker)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let words: Vec<OsString> = vec![
            "env".into(),
            "RUST_LOG=warn".into(),
            self.bin.clone().into(),
        ];
        let args: Vec<String> = [
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.proc = Some(Proc::spawn(&words, &args, false)?);
        let deadline = Instant::now() + BROKER_READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() >= deadline {
                return Err(format!("tansu did not listen\n{}", self.output()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for topic in self.topics.clone() {
            self.create_topic(&topic, deadline)?;
        }
        Ok(())
    }

    fn create_topic(&self, topic: &str, deadline: Instant) -> Result<(), String> {
        loop {
            let output = Command::new(&self.bin)
                .args(["topic", "create", topic, "--partitions", "1", "--broker"])
                .arg(format!("tcp://127.0.0.1:{}", self.port))
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .output()
                .map_err(|err| format!("cannot run tansu topic create: {err}"))?;
            if output.status.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "tansu topic create {topic} failed: {}\n{}",
                    String::from_utf8_lossy(&output.stderr),
                    self.output()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kafka://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("kafka://127.0.0.1:{}", self.port)
    }

    /// Stops the broker (the port stays reserved for [`TansuBroker::restart`]).
    pub fn kill(&mut self) {
        if let Some(proc) = self.proc.take() {
            self.past.push_str(&proc.output());
            drop(proc);
        }
    }

    /// Starts the broker again on the same port, with its topics (empty:
    /// the storage is in memory).
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    /// Writes `payload` as one record on partition 0 of `topic`, as any
    /// producer could (hostile records in the tests).
    pub fn publish_raw(&self, topic: &str, payload: &[u8]) -> Result<(), String> {
        let mut records = BytesMut::new();
        encode_record_batch(&mut records, 0, &[payload]).map_err(|e| e.to_string())?;
        let request = Request::Produce {
            acks: 1,
            timeout_ms: 5000,
            topic: topic.into(),
            partitions: vec![ProducePartition {
                partition: 0,
                records: records.freeze(),
            }],
        };
        let mut out = BytesMut::new();
        encode_request(&mut out, 1, "interop-test", &request).map_err(|e| e.to_string())?;
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        stream.write_all(&out).map_err(|e| e.to_string())?;
        let limits = KafkaLimits::default();
        let mut decoder = FrameDecoder::new(limits);
        let mut buf = [0u8; 4096];
        let frame: Bytes = loop {
            if let Some(frame) = decoder.next_frame().map_err(|e| e.to_string())? {
                break frame;
            }
            let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("broker closed the connection".into());
            }
            decoder.feed(&buf[..n]);
        };
        match decode_response(ApiKey::Produce, &frame, &limits) {
            Ok((_, Response::Produce(r)))
                if r.partitions.iter().all(|(_, p)| p.error_code == 0) =>
            {
                Ok(())
            }
            other => Err(format!("produce to {topic} answered {other:?}")),
        }
    }

    /// What the broker printed (all runs).
    pub fn output(&self) -> String {
        let mut out = self.past.clone();
        if let Some(proc) = &self.proc {
            out.push_str(&proc.output());
        }
        out
    }
}

/// A broker and the nodes on it; the nodes are stopped before the broker.
pub struct KafkaCluster {
    /// The nodes, in start order.
    pub nodes: Vec<ClusterNode>,
    /// The broker they share.
    pub broker: TansuBroker,
}

impl KafkaCluster {
    /// Starts the nodes of `kinds` ([`NodeKind::on_kafka`] ones) on `broker`.
    pub fn start_on(broker: TansuBroker, kinds: &[NodeKind]) -> Result<KafkaCluster, String> {
        let (nodes, errors) = start_nodes(&broker.url(), kinds);
        let cluster = KafkaCluster { nodes, broker };
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

    /// The output of the broker and of every node.
    pub fn output(&self) -> String {
        let mut output = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            output.push_str(&format!(
                "----- node {i} ({}) -----\n{}\n",
                node.kind(),
                node.output()
            ));
        }
        output.push_str(&format!("----- tansu -----\n{}", self.broker.output()));
        output
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        self.nodes.clear();
    }
}
