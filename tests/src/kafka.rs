//! Kafka for the cluster tests: a real Kafka-protocol broker (tansu, an
//! Apache Kafka-compatible broker from crates.io, in-memory storage) as a
//! child on a free port, restartable on the same port, with a raw producer
//! to inject records of our own ([`TansuBroker::publish_raw`]).
//!
//! tansu is not a Debian, PyPI or npm package: `tests/interop/tansu.sh`
//! finds it (`$SOCKETIO_TANSU`, else `~/.cache/socketio-tansu`) or installs
//! it with `cargo install` (several minutes, once; `.ci/run` starts that
//! early, in the background). A test without it fails. Topics are not
//! created on demand: [`TansuBroker::start`] creates the channel's topic,
//! and again on every [`TansuBroker::restart`] (the storage is in memory).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use socketio_core::cluster::kafka::{
    decode_response, encode_record_batch, encode_request, ApiKey, FrameDecoder, KafkaLimits,
    ProducePartition, Request, Response,
};

use crate::broker::{relaunch, Guarded};
use crate::cluster::Bus;
use crate::scene::RawBus;
use crate::{free_port, interop_dir, Proc};

/// How long tansu may take to accept connections and create a topic.
const BROKER_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The tansu binary (`tests/interop/tansu.sh`, once per process).
pub fn ensure_tansu() -> Result<PathBuf, String> {
    static TANSU: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TANSU
        .get_or_init(|| {
            // The script's own deadline (an hour) bounds the install.
            let output = Command::new("sh")
                .arg(interop_dir().join("tansu.sh"))
                .stdin(Stdio::null())
                .output()
                .map_err(|err| format!("cannot run tests/interop/tansu.sh: {err}"))?;
            let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
            if !output.status.success() || path.is_empty() {
                return Err(format!(
                    "no tansu (the Kafka broker of the tests): tests/interop/tansu.sh \
                     failed ({}):\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(PathBuf::from(path))
        })
        .clone()
}

/// A tansu broker on 127.0.0.1 with in-memory storage, watched by a
/// watchdog (it dies with the test process); killed on drop.
pub struct TansuBroker {
    bin: PathBuf,
    port: u16,
    topics: Vec<String>,
    /// The broker's process and its watchdog.
    guarded: Guarded,
}

impl TansuBroker {
    /// Starts a broker and creates `topics` (one partition each).
    pub fn start(topics: &[&str]) -> Result<TansuBroker, String> {
        let mut broker = TansuBroker {
            bin: ensure_tansu()?,
            port: free_port(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            guarded: Guarded::default(),
        };
        broker.launch()?;
        Ok(broker)
    }

    fn launch(&mut self) -> Result<(), String> {
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
        self.guarded
            .watch(Proc::spawn(&words, &args, false)?, None)?;
        let deadline = Instant::now() + BROKER_READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.guarded.exited() {
                let output = self.output();
                self.guarded.stop();
                return Err(format!("tansu exited with {status}\n{output}"));
            }
            if Instant::now() >= deadline {
                let output = self.output();
                self.guarded.stop();
                return Err(format!("tansu did not listen\n{output}"));
            }
            thread::sleep(Duration::from_millis(20));
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

    /// Kills the broker (an outage); [`TansuBroker::restart`] brings it
    /// back on the same port.
    pub fn kill(&mut self) {
        self.guarded.stop();
    }

    /// Kills the broker if it runs and starts it again on the same port,
    /// with its topics (empty: the storage is in memory).
    pub fn restart(&mut self) -> Result<(), String> {
        self.guarded.stop();
        let port = self.port;
        relaunch(
            "tansu",
            port,
            Duration::from_secs(10),
            Duration::from_millis(200),
            || self.launch(),
        )
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
        self.guarded.output()
    }
}

impl Bus for TansuBroker {
    const NAME: &'static str = "tansu";
    const DELIVERY: Duration = Duration::from_secs(8);
    /// Longer than with Redis: a waiting fetch may be answered at its
    /// deadline rather than when a record arrives.
    const QUIET: Duration = Duration::from_millis(1000);

    fn url(&self) -> String {
        TansuBroker::url(self)
    }

    fn output(&self) -> String {
        TansuBroker::output(self)
    }
}

impl RawBus for TansuBroker {
    /// One record on partition 0 of topic `socketio`.
    fn inject(&self, message: &[u8]) -> Result<(), String> {
        self.publish_raw("socketio", message)
    }

    fn restart(&mut self) -> Result<(), String> {
        TansuBroker::restart(self)
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        self.guarded.stop();
    }
}
