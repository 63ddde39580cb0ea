//! Load generator of the server benchmark (`bench/run.sh`).
//!
//! Speaks raw Engine.IO frames on a current-thread tokio runtime, so that
//! one core of load outruns one core of server. Over WebSocket it is a
//! minimal hand-written client (HTTP/1.1 upgrade, 4 KiB read buffer per
//! connection, masked client frames built into a reused buffer, every frame
//! of one turn in one write): `0{...}` open, `40` → `40{...}`, `2` → `3`,
//! then `42[...]` events. With `--raw` it skips the Socket.IO handshake
//! (for the plain WebSocket ceiling server). The `polling` mode speaks
//! Engine.IO v4 long-polling over two HTTP/1.1 keep-alive connections per
//! client, one for GETs and one for POSTs.
//!
//! ```text
//! loadgen echo      --addr HOST:PORT --pid PID --clients 100 --inflight 8 [--secs 5] [--raw]
//! loadgen polling   --addr HOST:PORT --pid PID --clients 100 --inflight 8 [--secs 5]
//! loadgen idle      --addr HOST:PORT --pid PID --clients 1000 [--raw]
//! loadgen broadcast --addr HOST:PORT --pid PID --clients 1000 --inflight 32 [--secs 5] [--raw]
//! loadgen burst     --addr HOST:PORT --pid PID --clients 1000 --inflight 400 [--raw]
//! loadgen cluster   --addr A,B,C --pid PA,PB,PC --clients 1000 --inflight 8 [--secs 5]
//!                   [--redis HOST:PORT --redis-pid PID]
//! loadgen report    --out FILE
//! ```
//!
//! Each measuring mode prints a summary and, with `--out FILE --label
//! NAME`, appends `workload<TAB>server<TAB>metric<TAB>value` lines that
//! `report` turns into one table per workload with ratios to `ours-tokio`,
//! a table of our three runtimes and a table of the targets of issue 6.
//! Server CPU is utime+stime of `/proc/PID/stat` over the measured window;
//! the run is marked INVALID when the load generator's own CPU exceeds 90%
//! of its core (then throughput and latency measure the load generator).
//!
//! `cluster` measures a cluster of nodes sharing a bus (`bench/cluster.sh`):
//! `--clients` connections to each address of `--addr` (opened round-robin),
//! the first connection to each node a sender; broadcasts (`shout`, which
//! every node answers with `shout-back` to the whole namespace) are sent by
//! the senders in turn, `--inflight` outstanding, each complete once every
//! connection (senders included) has it. Server CPU is summed over the
//! processes of `--pid`. After the window no broadcast is sent and what is
//! in flight must arrive within 10 s (else `lost_deliveries`); with
//! `--redis` Redis's `INFO commandstats` gives the PUBLISH and SPUBLISH
//! calls per broadcast and, with `--redis-pid`, `/proc/PID/schedstat` its
//! CPU per broadcast, both over every broadcast sent (from the first to
//! the drain).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use socketio_bench::flags::{usage_exit, Flags};
use socketio_bench::wire::{
    connect, digits, find, push_frame, status_kb, Conn, Failure, ReadBuffer, READ_BUFFER,
};

/// Linux USER_HZ: the unit of utime and stime in `/proc/PID/stat`.
const TICKS_PER_SEC: f64 = 100.0;
/// Above this share of its core the load generator is the bottleneck.
const MAX_SELF_CPU: f64 = 0.90;
/// Connections opened at once by the idle and broadcast workloads: enough
/// to connect 10,000 in seconds, few enough not to overflow a listen
/// backlog (which would show as connect latency, not as memory).
const CONNECT_PARALLELISM: usize = 128;

#[derive(Clone)]
struct Options {
    mode: String,
    addr: String,
    pid: u32,
    /// Every process whose CPU is the server's (`--pid A,B,C`).
    pids: Vec<u32>,
    /// Redis of the cluster workload, for its command statistics.
    redis: Option<String>,
    redis_pid: u32,
    clients: usize,
    inflight: usize,
    secs: u64,
    raw: bool,
    out: Option<String>,
    label: String,
    workload: Option<String>,
}

const USAGE: &str = "usage: loadgen echo|polling|idle|broadcast|burst|cluster|report --addr HOST:PORT[,HOST:PORT...] --pid PID[,PID...] [--clients N] [--inflight N] [--secs S] [--raw] [--redis HOST:PORT --redis-pid PID] [--out FILE --label NAME] [--workload NAME]";

fn usage(problem: &str) -> ! {
    usage_exit(USAGE, problem)
}

fn main() {
    let mut flags = Flags::from_env(USAGE, &["--raw"]);
    let mode = flags.positional().unwrap_or_else(|| usage("mode missing"));
    let mut options = Options {
        mode,
        addr: String::from("127.0.0.1:3000"),
        pid: 0,
        pids: Vec::new(),
        redis: None,
        redis_pid: 0,
        clients: 100,
        inflight: 1,
        secs: 5,
        raw: false,
        out: None,
        label: String::from("server"),
        workload: None,
    };
    for (flag, value) in flags {
        let number = || -> u64 { value.parse().unwrap_or_else(|_| usage("bad number")) };
        match flag.as_str() {
            "--addr" => options.addr = value.clone(),
            "--pid" => {
                options.pids = value
                    .split(',')
                    .map(|p| p.parse().unwrap_or_else(|_| usage("bad pid")))
                    .collect();
                options.pid = options.pids[0];
            }
            "--redis" => options.redis = Some(value.clone()),
            "--redis-pid" => options.redis_pid = number() as u32,
            "--clients" => options.clients = number() as usize,
            "--inflight" => options.inflight = number().max(1) as usize,
            "--secs" => options.secs = number(),
            "--out" => options.out = Some(value.clone()),
            "--label" => options.label = value.clone(),
            "--workload" => options.workload = Some(value.clone()),
            "--raw" => options.raw = true,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if options.mode == "report" {
        report(options.out.as_deref().unwrap_or_else(|| usage("--out")));
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match options.mode.as_str() {
            "echo" => echo(&options).await,
            "polling" => polling(&options).await,
            "idle" => idle(&options).await,
            "broadcast" => broadcast(&options, false).await,
            "burst" => broadcast(&options, true).await,
            "cluster" => cluster(&options).await,
            other => usage(&format!("unknown mode {other}")),
        }
    });
    if let Err(e) = result {
        eprintln!("loadgen {}: {e}", options.mode);
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// Bytes in, bytes out

const ECHO_HEAD: &[u8] = b"42[\"echo\",[";
const BROADCAST_HEAD: &[u8] = b"42[\"broadcast\",\"room\",[";
const SHOUT_HEAD: &[u8] = b"42[\"shout\",[";
const EVENT_TAIL: &[u8] = b",\"hello world\"]]";

fn push_event(out: &mut Vec<u8>, head: &[u8], id: u64) {
    let mut scratch = [0u8; 20];
    push_frame(out, 0x81, &[head, digits(id, &mut scratch), EVENT_TAIL]);
}

/// The id in `42["event",[ID,...` or `42["broadcast","room",[ID,...`.
fn parse_id(payload: &[u8]) -> Option<u64> {
    let start = find(payload, b"\",[")? + 3;
    let mut id = 0u64;
    let mut seen = false;
    for &byte in &payload[start..] {
        if !byte.is_ascii_digit() {
            break;
        }
        id = id.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
        seen = true;
    }
    seen.then_some(id)
}

// ---------------------------------------------------------------------------
// WebSocket connections

// ---------------------------------------------------------------------------
// Measurement

/// utime+stime of a process, in ticks.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces: state is
    // field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Sub-buckets per power of two of the latency histogram (1.6% precision).
const SUB_BUCKETS: u32 = 64;
const BUCKETS: usize = (SUB_BUCKETS * 27) as usize;

/// Latencies in microseconds, log-linear buckets: recording is one
/// uncontended atomic add, no lock and no allocation.
struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn bucket(us: u32) -> usize {
        if us < 2 * SUB_BUCKETS {
            return us as usize;
        }
        // us >> shift lies in [SUB_BUCKETS, 2 * SUB_BUCKETS).
        let shift = 31 - us.leading_zeros() - SUB_BUCKETS.trailing_zeros();
        (SUB_BUCKETS * (shift + 1) + ((us >> shift) - SUB_BUCKETS)) as usize
    }

    /// The smallest latency of a bucket.
    fn low(bucket: usize) -> u32 {
        let bucket = bucket as u32;
        if bucket < 2 * SUB_BUCKETS {
            return bucket;
        }
        let shift = bucket / SUB_BUCKETS - 1;
        (bucket % SUB_BUCKETS + SUB_BUCKETS) << shift
    }

    fn record(&self, us: u32) {
        self.buckets[Self::bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    fn clear(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
    }

    /// Quantiles `qs` (ascending) of what was recorded.
    fn quantiles(&self, qs: &[f64]) -> Vec<u32> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        qs.iter()
            .map(|q| {
                if total == 0 {
                    return 0;
                }
                let rank = ((total - 1) as f64 * q) as u64;
                let mut seen = 0;
                for (bucket, count) in counts.iter().enumerate() {
                    seen += count;
                    if seen > rank {
                        return Self::low(bucket);
                    }
                }
                0
            })
            .collect()
    }
}

struct Stats {
    /// Completed operations (round-trips or deliveries).
    count: AtomicU64,
    /// Broadcasts every receiver has (broadcast and cluster workloads).
    completed: AtomicU64,
    /// Latencies are recorded only inside the measured window.
    measuring: AtomicBool,
    latencies: Histogram,
    ready: AtomicU64,
    /// Connections that could not be opened.
    failed: AtomicU64,
    /// Clients whose connection broke after it was ready.
    errors: AtomicU64,
}

impl Stats {
    fn new() -> Self {
        Stats {
            count: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            measuring: AtomicBool::new(false),
            latencies: Histogram::new(),
            ready: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// One operation completed, started at `since`.
    fn record(&self, since: Instant) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.record_latency(since);
    }

    fn record_latency(&self, since: Instant) {
        if self.measuring.load(Ordering::Relaxed) {
            let us = since.elapsed().as_micros().min(u32::MAX as u128) as u32;
            self.latencies.record(us);
        }
    }

    fn failed(&self, what: &str, e: &Failure) {
        if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("{what}: {e}");
        }
    }

    fn broke(&self, e: &Failure) {
        if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("client error: {e}");
        }
    }
}

/// What one measured window saw.
struct Window {
    ops: u64,
    /// Broadcasts completed in the window.
    completed: u64,
    secs: f64,
    server_cpu_secs: f64,
    self_cpu_share: f64,
    p50_us: u32,
    p99_us: u32,
}

impl Window {
    fn valid(&self) -> bool {
        self.self_cpu_share <= MAX_SELF_CPU
    }
    fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    fn cpu_us_per_op(&self) -> f64 {
        if self.ops == 0 {
            return f64::NAN;
        }
        self.server_cpu_secs * 1e6 / self.ops as f64
    }
}

async fn measure(options: &Options, stats: &Stats) -> Window {
    let server_ticks = || -> u64 { options.pids.iter().map(|p| cpu_ticks(&p.to_string())).sum() };
    stats.latencies.clear();
    let (server0, self0, ops0, completed0, t0) = (
        server_ticks(),
        cpu_ticks("self"),
        stats.count.load(Ordering::Relaxed),
        stats.completed.load(Ordering::Relaxed),
        Instant::now(),
    );
    stats.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(options.secs)).await;
    stats.measuring.store(false, Ordering::Relaxed);
    let (server1, self1, ops1, completed1, secs) = (
        server_ticks(),
        cpu_ticks("self"),
        stats.count.load(Ordering::Relaxed),
        stats.completed.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let quantiles = stats.latencies.quantiles(&[0.50, 0.99]);
    Window {
        ops: ops1 - ops0,
        completed: completed1 - completed0,
        secs,
        server_cpu_secs: (server1 - server0) as f64 / TICKS_PER_SEC,
        self_cpu_share: (self1 - self0) as f64 / TICKS_PER_SEC / secs,
        p50_us: quantiles[0],
        p99_us: quantiles[1],
    }
}

/// CPU time of a process so far in nanoseconds, from `/proc/PID/schedstat`
/// (Redis's share is too small for the 10 ms ticks of `/proc/PID/stat`).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// PUBLISH plus SPUBLISH calls so far, from Redis's `INFO commandstats`
/// (one inline command on a fresh connection, read as a RESP bulk string).
async fn redis_publishes(addr: &str) -> Option<u64> {
    let ask = async {
        let mut stream = connect(addr).await?;
        stream.write_all(b"INFO commandstats\r\n").await?;
        let mut reply = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err::<Vec<u8>, Failure>("redis closed the connection".into());
            }
            reply.extend_from_slice(&chunk[..n]);
            // `$LEN\r\n` then LEN bytes and `\r\n`.
            if let Some(eol) = find(&reply, b"\r\n") {
                let len: usize = std::str::from_utf8(&reply[1..eol])?.parse()?;
                if reply.len() >= eol + 2 + len {
                    return Ok(reply[eol + 2..eol + 2 + len].to_vec());
                }
            }
        }
    };
    let reply = match ask.await {
        Ok(reply) => reply,
        Err(e) => {
            eprintln!("redis INFO commandstats: {e}");
            return None;
        }
    };
    Some(publish_calls(&String::from_utf8_lossy(&reply)))
}

/// The `calls` of `cmdstat_publish` and `cmdstat_spublish` in an `INFO
/// commandstats` reply.
fn publish_calls(info: &str) -> u64 {
    info.lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("cmdstat_publish:")
                .or_else(|| line.strip_prefix("cmdstat_spublish:"))?;
            rest.split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Wait until `n` clients are ready (or have failed); false on timeout.
async fn wait_ready(stats: &Stats, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while (stats.ready.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed)) < n as u64 {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Append result lines for `report`.
fn emit(options: &Options, workload: &str, metrics: &[(&str, String)]) {
    let workload = options.workload.as_deref().unwrap_or(workload);
    let mut line = format!("{workload} {}:", options.label);
    for (name, value) in metrics {
        line += &format!(" {name}={value}");
    }
    println!("{line}");
    if let Some(path) = &options.out {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("results file");
        for (name, value) in metrics {
            let _ = writeln!(file, "{workload}\t{}\t{name}\t{value}", options.label);
        }
    }
}

fn validity(window: &Window) -> String {
    let share = format!("{:.0}%", window.self_cpu_share * 100.0);
    if window.valid() {
        share
    } else {
        format!("{share} INVALID")
    }
}

/// Start every ready client at once, let the load settle, measure, and
/// emit the echo figures under `workload`.
async fn run_echo_window(
    options: &Options,
    workload: &str,
    stats: &Stats,
    start: &tokio::sync::Notify,
) {
    wait_ready(stats, options.clients, Duration::from_secs(60)).await;
    let failed = stats.failed.load(Ordering::Relaxed);
    // notify_waiters reaches every task that created its `notified` future.
    start.notify_waiters();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = measure(options, stats).await;
    emit(
        options,
        workload,
        &[
            ("rt_per_s", format!("{:.0}", window.rate())),
            ("p50_us", window.p50_us.to_string()),
            ("p99_us", window.p99_us.to_string()),
            ("cpu_us_per_rt", format!("{:.2}", window.cpu_us_per_op())),
            ("loadgen_cpu", validity(&window)),
            ("failed_conns", failed.to_string()),
            ("errors", stats.errors.load(Ordering::Relaxed).to_string()),
        ],
    );
}

// ---------------------------------------------------------------------------
// Workloads

async fn echo(options: &Options) -> Result<(), Failure> {
    let stats = Arc::new(Stats::new());
    let start = Arc::new(tokio::sync::Notify::new());
    for _ in 0..options.clients {
        let (stats, start, options) = (stats.clone(), start.clone(), options.clone());
        tokio::spawn(async move {
            let notified = start.notified();
            let mut conn = match Conn::open(&options.addr, options.raw).await {
                Ok(conn) => conn,
                Err(e) => return stats.failed("connect", &e),
            };
            stats.ready.fetch_add(1, Ordering::Relaxed);
            notified.await;
            if let Err(e) = echo_client(&mut conn, &stats, options.inflight).await {
                stats.broke(&e);
            }
        });
    }
    run_echo_window(
        options,
        &format!("echo-{}", options.inflight),
        &stats,
        &start,
    )
    .await;
    Ok(())
}

/// Keep `inflight` echoes outstanding: every reply read in one turn is
/// answered by a new event, all written at once.
async fn echo_client(conn: &mut Conn, stats: &Stats, inflight: usize) -> Result<(), Failure> {
    let mut sent_at = vec![Instant::now(); inflight];
    for id in 0..inflight {
        push_event(&mut conn.out, ECHO_HEAD, id as u64);
    }
    conn.flush().await?;
    loop {
        conn.fill().await?;
        while let Some(payload) = conn.reader.next_packet(&mut conn.out)? {
            let Some(id) = parse_id(&conn.reader.buf[payload]) else {
                continue;
            };
            let Some(slot) = sent_at.get_mut(id as usize) else {
                continue;
            };
            stats.record(*slot);
            *slot = Instant::now();
            push_event(&mut conn.out, ECHO_HEAD, id);
        }
        conn.flush().await?;
    }
}

async fn idle(options: &Options) -> Result<(), Failure> {
    let stats = Arc::new(Stats::new());
    let before_kb = status_kb(options.pid, "VmRSS");
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECT_PARALLELISM));
    let started = Instant::now();
    for _ in 0..options.clients {
        let (stats, permits, options) = (stats.clone(), permits.clone(), options.clone());
        tokio::spawn(async move {
            let permit = permits.acquire_owned().await;
            let conn = match Conn::open(&options.addr, options.raw).await {
                Ok(conn) => conn,
                Err(e) => return stats.failed("connect", &e),
            };
            drop(permit);
            stats.ready.fetch_add(1, Ordering::Relaxed);
            let e = conn.hold().await;
            stats.broke(&e);
        });
    }
    wait_ready(&stats, options.clients, Duration::from_secs(240)).await;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_kb = status_kb(options.pid, "VmRSS");
    let connected = stats.ready.load(Ordering::Relaxed);
    let per_conn_kb = after_kb.saturating_sub(before_kb) as f64 / connected.max(1) as f64;
    emit(
        options,
        &format!("idle-{}", options.clients),
        &[
            ("kb_per_conn", format!("{per_conn_kb:.1}")),
            ("rss_before_kb", before_kb.to_string()),
            ("rss_after_kb", after_kb.to_string()),
            ("connected", connected.to_string()),
            (
                "failed_conns",
                stats.failed.load(Ordering::Relaxed).to_string(),
            ),
            ("connect_secs", format!("{connect_secs:.1}")),
        ],
    );
    Ok(())
}

/// Slots of broadcasts in flight, indexed by id modulo their number (more
/// than the most in flight, so a slot is reused only once its broadcast is
/// complete).
const PENDING_SLOTS: usize = 4096;

/// One broadcast in flight: shared by every receiver without a lock.
struct PendingSlot {
    /// The broadcast's id, `u64::MAX` when free.
    id: AtomicU64,
    /// Receivers that have not seen it yet.
    missing: AtomicU64,
    /// When it was sent, in ns since `Pending::epoch`.
    sent_ns: AtomicU64,
}

struct Pending {
    epoch: Instant,
    slots: Vec<PendingSlot>,
}

impl Pending {
    fn new() -> Self {
        Pending {
            epoch: Instant::now(),
            slots: (0..PENDING_SLOTS)
                .map(|_| PendingSlot {
                    id: AtomicU64::new(u64::MAX),
                    missing: AtomicU64::new(0),
                    sent_ns: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    fn start(&self, id: u64, receivers: usize) {
        let slot = &self.slots[id as usize % PENDING_SLOTS];
        slot.missing.store(receivers as u64, Ordering::Relaxed);
        let ns = self.epoch.elapsed().as_nanos() as u64;
        slot.sent_ns.store(ns, Ordering::Relaxed);
        slot.id.store(id, Ordering::Release);
    }

    /// One receiver got `id`: true (with the send time) when it was the
    /// last one.
    fn delivered(&self, id: u64) -> Option<Option<Instant>> {
        let slot = &self.slots[id as usize % PENDING_SLOTS];
        if slot.id.load(Ordering::Acquire) != id {
            return None;
        }
        if slot.missing.fetch_sub(1, Ordering::Relaxed) != 1 {
            return Some(None);
        }
        slot.id.store(u64::MAX, Ordering::Relaxed);
        let ns = slot.sent_ns.load(Ordering::Relaxed);
        Some(Some(self.epoch + Duration::from_nanos(ns)))
    }
}

/// A receiver of the broadcast workloads: count every delivery; the last
/// receiver of a broadcast records its fan-out latency and tells the
/// sender.
async fn receive_broadcasts(
    conn: &mut Conn,
    stats: &Stats,
    pending: &Pending,
    done: &tokio::sync::mpsc::UnboundedSender<()>,
) -> Result<(), Failure> {
    loop {
        conn.fill().await?;
        while let Some(payload) = conn.reader.next_packet(&mut conn.out)? {
            let Some(id) = parse_id(&conn.reader.buf[payload]) else {
                continue;
            };
            let Some(completed) = pending.delivered(id) else {
                continue;
            };
            stats.count.fetch_add(1, Ordering::Relaxed);
            if let Some(sent_at) = completed {
                // Fan-out latency: until the last receiver has it.
                stats.record_latency(sent_at);
                stats.completed.fetch_add(1, Ordering::Relaxed);
                let _ = done.send(());
            }
        }
        conn.flush().await?;
    }
}

/// One client broadcasts to a room of `clients` receivers, keeping
/// `inflight` broadcasts outstanding (a broadcast completes when every
/// receiver has it). `burst`: send `inflight` broadcasts at once, once, and
/// count what arrives.
async fn broadcast(options: &Options, burst: bool) -> Result<(), Failure> {
    let stats = Arc::new(Stats::new());
    let pending = Arc::new(Pending::new());
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECT_PARALLELISM));
    for _ in 0..options.clients {
        let (stats, pending, done_tx, permits, options) = (
            stats.clone(),
            pending.clone(),
            done_tx.clone(),
            permits.clone(),
            options.clone(),
        );
        tokio::spawn(async move {
            let permit = permits.acquire_owned().await;
            let joined = async {
                let mut conn = Conn::open(&options.addr, options.raw).await?;
                if !options.raw {
                    push_frame(&mut conn.out, 0x81, &[b"42[\"join\",\"room\"]"]);
                    conn.flush().await?;
                    while !conn.recv().await?.starts_with(b"42[\"joined\"") {}
                }
                Ok::<_, Failure>(conn)
            };
            let mut conn = match joined.await {
                Ok(conn) => conn,
                Err(e) => return stats.failed("receiver", &e),
            };
            drop(permit);
            stats.ready.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = receive_broadcasts(&mut conn, &stats, &pending, &done_tx).await {
                stats.broke(&e);
            }
        });
    }
    drop(done_tx);
    wait_ready(&stats, options.clients, Duration::from_secs(120)).await;
    let receivers = stats.ready.load(Ordering::Relaxed) as usize;
    let mut sender = Conn::open(&options.addr, options.raw).await?;
    let mut next_id = 0u64;
    if burst {
        let hwm_before = status_kb(options.pid, "VmHWM");
        let started = Instant::now();
        for id in 0..options.inflight as u64 {
            pending.start(id, receivers);
            push_event(&mut sender.out, BROADCAST_HEAD, id);
        }
        sender.flush().await?;
        let expected = (options.inflight * receivers) as u64;
        let mut last = (0, Instant::now());
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                read = sender.fill() => {
                    read?;
                    while sender.reader.next_packet(&mut sender.out)?.is_some() {}
                }
            }
            sender.flush().await?;
            let delivered = stats.count.load(Ordering::Relaxed);
            if delivered >= expected {
                break;
            }
            if delivered != last.0 {
                last = (delivered, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let delivered = stats.count.load(Ordering::Relaxed);
        emit(
            options,
            &format!("burst-{}", options.inflight),
            &[
                ("delivered", delivered.to_string()),
                ("expected", expected.to_string()),
                (
                    "delivered_pct",
                    format!("{:.1}", delivered as f64 * 100.0 / expected.max(1) as f64),
                ),
                ("secs_to_last", format!("{secs:.2}")),
                ("peak_rss_kb", status_kb(options.pid, "VmHWM").to_string()),
                ("hwm_before_kb", hwm_before.to_string()),
            ],
        );
        return Ok(());
    }
    for _ in 0..options.inflight {
        pending.start(next_id, receivers);
        push_event(&mut sender.out, BROADCAST_HEAD, next_id);
        next_id += 1;
    }
    sender.flush().await?;
    let stats_for_window = stats.clone();
    let options_for_window = options.clone();
    let window = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        measure(&options_for_window, &stats_for_window).await
    });
    tokio::pin!(window);
    let window = loop {
        tokio::select! {
            done = done_rx.recv() => {
                if done.is_none() {
                    return Err("receivers gone".into());
                }
                let mut completed = 1;
                while done_rx.try_recv().is_ok() {
                    completed += 1;
                }
                for _ in 0..completed {
                    pending.start(next_id, receivers);
                    push_event(&mut sender.out, BROADCAST_HEAD, next_id);
                    next_id += 1;
                }
            }
            read = sender.fill() => {
                read?;
                while sender.reader.next_packet(&mut sender.out)?.is_some() {}
            }
            window = &mut window => break window?,
        }
        sender.flush().await?;
    };
    emit(
        options,
        &format!("broadcast-{}", options.inflight),
        &[
            ("deliveries_per_s", format!("{:.0}", window.rate())),
            ("fanout_p50_us", window.p50_us.to_string()),
            ("fanout_p99_us", window.p99_us.to_string()),
            (
                "cpu_us_per_delivery",
                format!("{:.3}", window.cpu_us_per_op()),
            ),
            ("loadgen_cpu", validity(&window)),
            ("receivers", receivers.to_string()),
        ],
    );
    Ok(())
}

/// A connection of the cluster workload: counts deliveries like
/// `receive_broadcasts`; a sender also writes `shout(id)` for every id the
/// coordinator hands it.
async fn cluster_client(
    conn: &mut Conn,
    stats: &Stats,
    pending: &Pending,
    done: &tokio::sync::mpsc::UnboundedSender<()>,
    mut sends: Option<tokio::sync::mpsc::UnboundedReceiver<u64>>,
) -> Result<(), Failure> {
    let Some(commands) = sends.as_mut() else {
        return receive_broadcasts(conn, stats, pending, done).await;
    };
    loop {
        tokio::select! {
            id = commands.recv() => {
                let Some(id) = id else { return Ok(()) };
                push_event(&mut conn.out, SHOUT_HEAD, id);
                while let Ok(id) = commands.try_recv() {
                    push_event(&mut conn.out, SHOUT_HEAD, id);
                }
            }
            read = conn.fill() => {
                read?;
                while let Some(payload) = conn.reader.next_packet(&mut conn.out)? {
                    let Some(id) = parse_id(&conn.reader.buf[payload]) else {
                        continue;
                    };
                    let Some(completed) = pending.delivered(id) else {
                        continue;
                    };
                    stats.count.fetch_add(1, Ordering::Relaxed);
                    if let Some(sent_at) = completed {
                        stats.record_latency(sent_at);
                        stats.completed.fetch_add(1, Ordering::Relaxed);
                        let _ = done.send(());
                    }
                }
            }
        }
        conn.flush().await?;
    }
}

/// `--clients` connections to each node of `--addr`, a namespace-wide
/// broadcast (`shout`) kept `--inflight` deep, sent by the first connection
/// of each node in turn; a broadcast completes when every connection has
/// it (its sender too: `shout-back` goes to the whole namespace).
async fn cluster(options: &Options) -> Result<(), Failure> {
    let addrs: Vec<String> = options.addr.split(',').map(str::to_string).collect();
    let total = options.clients * addrs.len();
    let stats = Arc::new(Stats::new());
    let pending = Arc::new(Pending::new());
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let permits = Arc::new(tokio::sync::Semaphore::new(CONNECT_PARALLELISM));
    let mut senders = Vec::new();
    let started = Instant::now();
    for i in 0..total {
        let addr = addrs[i % addrs.len()].clone();
        let sends = if i < addrs.len() {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            senders.push(tx);
            Some(rx)
        } else {
            None
        };
        let (stats, pending, done_tx, permits) = (
            stats.clone(),
            pending.clone(),
            done_tx.clone(),
            permits.clone(),
        );
        tokio::spawn(async move {
            let permit = permits.acquire_owned().await;
            let mut conn = match Conn::open(&addr, false).await {
                Ok(conn) => conn,
                Err(e) => return stats.failed(&format!("connect to {addr}"), &e),
            };
            drop(permit);
            stats.ready.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = cluster_client(&mut conn, &stats, &pending, &done_tx, sends).await {
                stats.broke(&e);
            }
        });
    }
    drop(done_tx);
    wait_ready(&stats, total, Duration::from_secs(180)).await;
    let connect_secs = started.elapsed().as_secs_f64();
    let receivers = stats.ready.load(Ordering::Relaxed) as usize;
    let failed = stats.failed.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("cluster: {failed} of {total} connections failed");
    }
    // Let every node see its last connections settle before the first
    // broadcast, and take Redis's idle CPU (its timers, the nodes' health
    // checks) meanwhile: it is subtracted from its CPU per broadcast.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (idle_ns, idle_since) = (cpu_ns(options.redis_pid), Instant::now());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let redis_idle_ns_per_s = cpu_ns(options.redis_pid).saturating_sub(idle_ns) as f64
        / idle_since.elapsed().as_secs_f64();
    // Redis's figures cover every broadcast: from the first one sent until
    // all have arrived (the window alone holds too few of a slow server's).
    let redis_before = match &options.redis {
        Some(addr) => redis_publishes(addr).await,
        None => None,
    };
    let (redis_cpu_before, busy_since) = (cpu_ns(options.redis_pid), Instant::now());
    let mut next_id = 0u64;
    let send = |next_id: &mut u64| {
        pending.start(*next_id, receivers);
        let _ = senders[*next_id as usize % senders.len()].send(*next_id);
        *next_id += 1;
    };
    for _ in 0..options.inflight {
        send(&mut next_id);
    }
    let stats_for_window = stats.clone();
    let options_for_window = options.clone();
    let window = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        measure(&options_for_window, &stats_for_window).await
    });
    tokio::pin!(window);
    let window = loop {
        tokio::select! {
            done = done_rx.recv() => {
                if done.is_none() {
                    return Err("receivers gone".into());
                }
                send(&mut next_id);
                while done_rx.try_recv().is_ok() {
                    send(&mut next_id);
                }
            }
            window = &mut window => break window?,
        }
    };
    // Stop sending; wait for what is in flight (a lost delivery shows as a
    // broadcast that never completes).
    let drain_until = Instant::now() + Duration::from_secs(10);
    while stats.completed.load(Ordering::Relaxed) < next_id {
        tokio::select! {
            done = done_rx.recv() => if done.is_none() { break },
            _ = tokio::time::sleep_until(drain_until.into()) => break,
        }
    }
    // A node may deliver to its own sockets before its PUBLISH has left it
    // (always so with one node): give the last ones time to reach Redis.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = next_id;
    let expected = sent * receivers as u64;
    let lost = expected.saturating_sub(stats.count.load(Ordering::Relaxed));
    let redis_busy_ns = cpu_ns(options.redis_pid).saturating_sub(redis_cpu_before) as f64;
    let redis_idle_ns = redis_idle_ns_per_s * busy_since.elapsed().as_secs_f64();
    let redis_cpu_us = (redis_busy_ns - redis_idle_ns).max(0.0) / 1e3;
    let publishes = match (&options.redis, redis_before) {
        (Some(addr), Some(before)) => redis_publishes(addr)
            .await
            .map(|after| after.saturating_sub(before)),
        _ => None,
    };
    if lost > 0 {
        eprintln!(
            "cluster {}: {lost} of {expected} deliveries missing 10 s after the last broadcast",
            options.label
        );
    }
    if window.completed == 0 {
        eprintln!(
            "cluster {}: no broadcast completed in the window: deliveries were lost \
             (does every node deliver the others' broadcasts?)",
            options.label
        );
    }
    let per_bcast = |x: f64| {
        if sent == 0 {
            "-".to_string()
        } else {
            format!("{:.2}", x / sent as f64)
        }
    };
    emit(
        options,
        &format!("cluster-{}", options.inflight),
        &[
            ("deliveries_per_s", format!("{:.0}", window.rate())),
            (
                "bcasts_per_s",
                format!("{:.0}", window.completed as f64 / window.secs),
            ),
            ("fanout_p50_us", window.p50_us.to_string()),
            ("fanout_p99_us", window.p99_us.to_string()),
            (
                "cpu_us_per_delivery",
                format!("{:.3}", window.cpu_us_per_op()),
            ),
            (
                "nodes_cpu",
                format!("{:.0}%", window.server_cpu_secs * 100.0 / window.secs),
            ),
            ("redis_cpu_us_per_bcast", per_bcast(redis_cpu_us)),
            (
                "publishes_per_bcast",
                publishes.map_or_else(|| "-".to_string(), |p| per_bcast(p as f64)),
            ),
            ("loadgen_cpu", validity(&window)),
            ("receivers", receivers.to_string()),
            ("bcasts_sent", sent.to_string()),
            ("lost_deliveries", lost.to_string()),
            ("failed_conns", failed.to_string()),
            ("errors", stats.errors.load(Ordering::Relaxed).to_string()),
            ("connect_secs", format!("{connect_secs:.1}")),
        ],
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Long-polling

/// Engine.IO's record separator between packets of one polling body.
const RECORD_SEPARATOR: u8 = 0x1e;

/// One HTTP/1.1 keep-alive connection of a polling client.
struct HttpConn {
    stream: TcpStream,
    reader: ReadBuffer,
    /// The request being written; reused.
    out: Vec<u8>,
    /// The body of the last complete response; reused.
    body: Vec<u8>,
    /// The response being read: its header was consumed, its body is
    /// `Some(length)` bytes or chunked (`None`).
    header_read: Option<Option<usize>>,
}

impl HttpConn {
    async fn connect(addr: &str) -> Result<HttpConn, Failure> {
        let stream = connect(addr).await?;
        Ok(HttpConn {
            stream,
            reader: ReadBuffer::new(),
            out: Vec::with_capacity(512),
            body: Vec::with_capacity(512),
            header_read: None,
        })
    }

    /// Queue a request for `path`; a POST when `body` is given.
    fn push_request(&mut self, addr: &str, path: &str, body: Option<&[u8]>) {
        let method: &[u8] = if body.is_some() { b"POST " } else { b"GET " };
        self.out.extend_from_slice(method);
        self.out.extend_from_slice(path.as_bytes());
        self.out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.out.extend_from_slice(addr.as_bytes());
        if let Some(body) = body {
            let mut scratch = [0u8; 20];
            self.out.extend_from_slice(
                b"\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ",
            );
            self.out
                .extend_from_slice(digits(body.len() as u64, &mut scratch));
            self.out.extend_from_slice(b"\r\n\r\n");
            self.out.extend_from_slice(body);
        } else {
            self.out.extend_from_slice(b"\r\n\r\n");
        }
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Parse the next complete response into `body`; false when more
    /// bytes are needed. Only 200 is accepted.
    fn next_response(&mut self) -> Result<bool, Failure> {
        if self.header_read.is_none() {
            let Some(header) = self.reader.take_http_header() else {
                if self.reader.end - self.reader.start == self.reader.buf.len() {
                    self.reader.reserve_frame(self.reader.buf.len() * 2);
                }
                return Ok(false);
            };
            let header = &self.reader.buf[header];
            if !header.starts_with(b"HTTP/1.1 200") {
                let line = header.split(|&b| b == b'\r').next().unwrap_or_default();
                return Err(format!("polling: {}", String::from_utf8_lossy(line)).into());
            }
            let mut length = None;
            let mut chunked = false;
            for line in header.split(|&b| b == b'\n') {
                let line = line.to_ascii_lowercase();
                if let Some(value) = line.strip_prefix(b"content-length:") {
                    let value = String::from_utf8_lossy(value);
                    length = Some(value.trim().parse::<usize>()?);
                } else if line.starts_with(b"transfer-encoding:")
                    && find(&line, b"chunked").is_some()
                {
                    chunked = true;
                }
            }
            self.header_read = Some(if chunked {
                None
            } else {
                Some(length.unwrap_or(0))
            });
        }
        let pending = self.reader.pending();
        match self.header_read {
            Some(Some(length)) => {
                if pending.len() < length {
                    self.reader.reserve_frame(length);
                    return Ok(false);
                }
                self.body.clear();
                self.body.extend_from_slice(&pending[..length]);
                self.reader.start += length;
            }
            _ => {
                // Chunked: wait for the whole body, then decode it.
                let mut at = 0;
                let mut chunks = Vec::new();
                loop {
                    let Some(line_end) = find(&pending[at..], b"\r\n") else {
                        self.reader.reserve_frame(pending.len() + READ_BUFFER);
                        return Ok(false);
                    };
                    let size_text = String::from_utf8_lossy(&pending[at..at + line_end]);
                    let size_text = size_text.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size_text, 16)?;
                    let data = at + line_end + 2;
                    if pending.len() < data + size + 2 {
                        self.reader.reserve_frame(data + size + 2);
                        return Ok(false);
                    }
                    at = data + size + 2;
                    if size == 0 {
                        break;
                    }
                    chunks.push(data..data + size);
                }
                self.body.clear();
                for chunk in chunks {
                    self.body.extend_from_slice(&pending[chunk]);
                }
                self.reader.start += at;
            }
        }
        self.header_read = None;
        Ok(true)
    }

    /// One request and its response (setup only).
    async fn exchange(
        &mut self,
        addr: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(), Failure> {
        self.push_request(addr, path, body);
        self.flush().await?;
        while !self.next_response()? {
            self.reader.fill(&mut self.stream).await?;
        }
        Ok(())
    }
}

/// A polling client after its handshake: a GET always pending on one
/// connection, POSTs on the other.
struct PollingClient {
    addr: String,
    path: String,
    get: HttpConn,
    post: HttpConn,
    /// Packets waiting for the next POST, joined by the record separator.
    queued: Vec<u8>,
    post_in_flight: bool,
}

impl PollingClient {
    /// Engine.IO open over polling, then the Socket.IO CONNECT to `/`.
    async fn open(addr: &str) -> Result<PollingClient, Failure> {
        let mut get = HttpConn::connect(addr).await?;
        get.exchange(addr, "/socket.io/?EIO=4&transport=polling", None)
            .await?;
        let open = &get.body;
        let sid_at = find(open, b"\"sid\":\"").ok_or("no sid in the open packet")? + 7;
        let sid_len = open[sid_at..]
            .iter()
            .position(|&b| b == b'"')
            .ok_or("bad sid")?;
        let sid = String::from_utf8_lossy(&open[sid_at..sid_at + sid_len]).into_owned();
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let mut post = HttpConn::connect(addr).await?;
        post.exchange(addr, &path, Some(b"40")).await?;
        let mut client = PollingClient {
            addr: addr.to_string(),
            path,
            get,
            post,
            queued: Vec::with_capacity(512),
            post_in_flight: false,
        };
        loop {
            client
                .get
                .exchange(&client.addr, &client.path, None)
                .await?;
            let (mut connected, mut pinged) = (false, false);
            for packet in client.get.body.split(|&b| b == RECORD_SEPARATOR) {
                if packet.starts_with(b"40") {
                    connected = true;
                } else if packet.starts_with(b"44") {
                    let packet = String::from_utf8_lossy(packet);
                    return Err(format!("connect refused: {packet}").into());
                } else if packet == b"2" {
                    pinged = true;
                }
            }
            if pinged {
                client.queue(b"3");
            }
            client.send_queued().await?;
            if connected {
                return Ok(client);
            }
        }
    }

    fn queue(&mut self, packet: &[u8]) {
        if !self.queued.is_empty() {
            self.queued.push(RECORD_SEPARATOR);
        }
        self.queued.extend_from_slice(packet);
    }

    fn queue_echo(&mut self, id: u64) {
        if !self.queued.is_empty() {
            self.queued.push(RECORD_SEPARATOR);
        }
        let mut scratch = [0u8; 20];
        self.queued.extend_from_slice(ECHO_HEAD);
        self.queued.extend_from_slice(digits(id, &mut scratch));
        self.queued.extend_from_slice(EVENT_TAIL);
    }

    /// POST what is queued unless a POST is still in flight.
    async fn send_queued(&mut self) -> Result<(), Failure> {
        if self.post_in_flight || self.queued.is_empty() {
            return Ok(());
        }
        self.post
            .push_request(&self.addr, &self.path, Some(&self.queued));
        self.queued.clear();
        self.post_in_flight = true;
        self.post.flush().await
    }

    /// Keep `inflight` echoes outstanding until the connection fails.
    async fn echo(&mut self, stats: &Stats, inflight: usize) -> Result<(), Failure> {
        let mut sent_at = vec![Instant::now(); inflight];
        for id in 0..inflight {
            self.queue_echo(id as u64);
        }
        self.send_queued().await?;
        self.get.push_request(&self.addr, &self.path, None);
        self.get.flush().await?;
        loop {
            tokio::select! {
                read = self.get.reader.fill(&mut self.get.stream) => {
                    read?;
                    while self.get.next_response()? {
                        let body = std::mem::take(&mut self.get.body);
                        for packet in body.split(|&b| b == RECORD_SEPARATOR) {
                            match packet.first() {
                                Some(b'2') => self.queue(b"3"),
                                Some(b'1') => return Err("closed by the server".into()),
                                Some(b'4') => {
                                    let Some(id) = parse_id(packet) else { continue };
                                    let Some(slot) = sent_at.get_mut(id as usize) else {
                                        continue;
                                    };
                                    stats.record(*slot);
                                    *slot = Instant::now();
                                    self.queue_echo(id);
                                }
                                _ => {}
                            }
                        }
                        self.get.body = body;
                        // The next long-poll at once.
                        self.get.push_request(&self.addr, &self.path, None);
                    }
                }
                read = self.post.reader.fill(&mut self.post.stream) => {
                    read?;
                    while self.post.next_response()? {
                        if self.post.body != b"ok" {
                            let body = String::from_utf8_lossy(&self.post.body);
                            return Err(format!("POST answered {body:?}").into());
                        }
                        self.post_in_flight = false;
                    }
                }
            }
            self.get.flush().await?;
            self.send_queued().await?;
        }
    }
}

async fn polling(options: &Options) -> Result<(), Failure> {
    let stats = Arc::new(Stats::new());
    let start = Arc::new(tokio::sync::Notify::new());
    for _ in 0..options.clients {
        let (stats, start, options) = (stats.clone(), start.clone(), options.clone());
        tokio::spawn(async move {
            let notified = start.notified();
            let mut client = match PollingClient::open(&options.addr).await {
                Ok(client) => client,
                Err(e) => return stats.failed("polling connect", &e),
            };
            stats.ready.fetch_add(1, Ordering::Relaxed);
            notified.await;
            if let Err(e) = client.echo(&stats, options.inflight).await {
                stats.broke(&e);
            }
        });
    }
    run_echo_window(
        options,
        &format!("polling-{}", options.inflight),
        &stats,
        &start,
    )
    .await;
    Ok(())
}

// ---------------------------------------------------------------------------
// Report

/// The figure each workload's ratio column compares.
fn primary_metric(workload: &str) -> &'static str {
    match workload.split('-').next() {
        Some("echo") | Some("polling") => "cpu_us_per_rt",
        Some("idle") => "kb_per_conn",
        Some("broadcast") | Some("cluster") => "cpu_us_per_delivery",
        Some("burst") => "peak_rss_kb",
        _ => "",
    }
}

/// Results read back from the file the measuring modes append to.
struct Results {
    /// Workloads in order of appearance.
    workloads: Vec<String>,
    /// workload → metric names in order.
    metrics: HashMap<String, Vec<String>>,
    /// workload → servers in order.
    servers: HashMap<String, Vec<String>>,
    values: HashMap<(String, String, String), String>,
}

impl Results {
    fn parse(text: &str) -> Results {
        let mut results = Results {
            workloads: Vec::new(),
            metrics: HashMap::new(),
            servers: HashMap::new(),
            values: HashMap::new(),
        };
        for line in text.lines() {
            let parts: Vec<&str> = line.split('\t').collect();
            let [workload, server, metric, value] = parts[..] else {
                continue;
            };
            if !results.workloads.iter().any(|w| w == workload) {
                results.workloads.push(workload.to_string());
            }
            let names = results.metrics.entry(workload.to_string()).or_default();
            if !names.iter().any(|m| m == metric) {
                names.push(metric.to_string());
            }
            let list = results.servers.entry(workload.to_string()).or_default();
            if !list.iter().any(|s| s == server) {
                list.push(server.to_string());
            }
            results.values.insert(
                (workload.to_string(), server.to_string(), metric.to_string()),
                value.to_string(),
            );
        }
        results
    }

    /// The server a workload's ratios are against: `ours-tokio`, else the
    /// first of ours with a figure (the cluster workload's `ours-node`, or
    /// `ours-python` while that has none).
    fn base(&self, workload: &str) -> Option<&str> {
        let servers = self.servers.get(workload)?;
        servers
            .iter()
            .find(|s| *s == "ours-tokio")
            .or_else(|| {
                servers.iter().find(|s| {
                    s.starts_with("ours") && self.primary(workload, s).is_some_and(|v| v > 0.0)
                })
            })
            .map(String::as_str)
    }

    fn get(&self, workload: &str, server: &str, metric: &str) -> Option<&str> {
        self.values
            .get(&(workload.to_string(), server.to_string(), metric.to_string()))
            .map(String::as_str)
    }

    /// A server's primary figure, if it is a number.
    fn primary(&self, workload: &str, server: &str) -> Option<f64> {
        self.get(workload, server, primary_metric(workload))?
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
    }

    /// False when the load generator was the bottleneck for this server.
    fn valid(&self, workload: &str, server: &str) -> bool {
        !self
            .get(workload, server, "loadgen_cpu")
            .is_some_and(|v| v.contains("INVALID"))
    }
}

const RUNTIMES: [&str; 3] = ["ours-tokio", "ours-async-std", "ours-smol"];
/// The largest spread allowed between our three runtimes.
const RUNTIME_SPREAD: f64 = 0.15;

fn report(path: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| usage(&format!("{path}: {e}")));
    let results = Results::parse(&text);
    for workload in &results.workloads {
        let primary = primary_metric(workload);
        let names = &results.metrics[workload];
        let base_name = results.base(workload).unwrap_or("ours-tokio");
        println!("\n### {workload} (ratio: {primary} / {base_name}'s)\n");
        println!("| server | {} | ratio |", names.join(" | "));
        println!("|---{}|---|", "|---".repeat(names.len()));
        let base = results.primary(workload, base_name);
        for server in &results.servers[workload] {
            let cells: Vec<&str> = names
                .iter()
                .map(|m| results.get(workload, server, m).unwrap_or("-"))
                .collect();
            let ratio = match (results.primary(workload, server), base) {
                (Some(v), Some(b)) if b > 0.0 => format!("{:.2}", v / b),
                _ => "-".into(),
            };
            println!("| {server} | {} | {ratio} |", cells.join(" | "));
        }
    }
    let spreads = report_runtimes(&results);
    report_targets(&results, &spreads);
}

/// The runtimes table; returns (workload, spread, valid) per workload
/// measured on all three runtimes.
fn report_runtimes(results: &Results) -> Vec<(String, f64, bool)> {
    let mut spreads = Vec::new();
    println!("\n### runtimes (primary metric of ours on each runtime)\n");
    println!(
        "| workload | metric | ours-tokio | ours-async-std | ours-smol | spread | within 15% |"
    );
    println!("|---|---|---|---|---|---|---|");
    for workload in &results.workloads {
        let figures: Vec<Option<f64>> = RUNTIMES
            .iter()
            .map(|r| results.primary(workload, r))
            .collect();
        if figures.iter().all(Option::is_none) {
            continue;
        }
        let cells: Vec<&str> = RUNTIMES
            .iter()
            .map(|r| {
                results
                    .get(workload, r, primary_metric(workload))
                    .unwrap_or("-")
            })
            .collect();
        let (spread, verdict) =
            if let Some(all) = figures.iter().copied().collect::<Option<Vec<f64>>>() {
                let max = all.iter().copied().fold(f64::MIN, f64::max);
                let min = all.iter().copied().fold(f64::MAX, f64::min);
                let spread = max / min - 1.0;
                let valid = RUNTIMES.iter().all(|r| results.valid(workload, r));
                spreads.push((workload.clone(), spread, valid));
                let verdict = match (valid, spread <= RUNTIME_SPREAD) {
                    (false, _) => "not valid (loadgen INVALID)",
                    (true, true) => "yes",
                    (true, false) => "no",
                };
                (format!("{:.0}%", spread * 100.0), verdict)
            } else {
                ("-".into(), "n/a")
            };
        println!(
            "| {workload} | {} | {} | {spread} | {verdict} |",
            primary_metric(workload),
            cells.join(" | ")
        );
    }
    spreads
}

/// The targets table: each target of issue 6 checked on this run.
fn report_targets(results: &Results, spreads: &[(String, f64, bool)]) {
    println!("\n### targets (issues 6 and 11, ratios in this run; ours = ours-tokio)\n");
    println!("| target | ours | peer | ratio | limit | result |");
    println!("|---|---|---|---|---|---|");
    let row = |workload: &str, peer: &str, limit: f64| {
        let metric = primary_metric(workload);
        let name = format!("{workload} {metric}: ours <= {limit} x {peer}");
        let (Some(ours), Some(theirs)) = (
            results.primary(workload, "ours-tokio"),
            results.primary(workload, peer),
        ) else {
            println!("| {name} | - | - | - | {limit} | n/a (not measured) |");
            return;
        };
        let ratio = ours / theirs;
        let result = if !results.valid(workload, "ours-tokio") || !results.valid(workload, peer) {
            "not valid (loadgen INVALID)"
        } else if ratio <= limit {
            "met"
        } else {
            "missed"
        };
        println!("| {name} | {ours} | {theirs} | {ratio:.2} | {limit} | {result} |");
    };
    let idle: Vec<&String> = results
        .workloads
        .iter()
        .filter(|w| w.starts_with("idle"))
        .collect();
    if idle.is_empty() {
        row("idle-10000", "socketioxide", 0.4);
    }
    for workload in idle {
        row(workload, "socketioxide", 0.4);
    }
    for workload in ["echo-1", "echo-8"] {
        row(workload, "socketioxide", 0.75);
        row(workload, "raw", 1.2);
    }
    for workload in ["broadcast-1", "broadcast-32"] {
        row(workload, "socketioxide", 0.7);
    }
    // Issue 11: a broadcast costs the bus one publish, not one per receiver.
    for workload in results
        .workloads
        .iter()
        .filter(|w| w.starts_with("cluster"))
    {
        for server in &results.servers[workload] {
            let name = format!("{workload} {server}: publishes per broadcast");
            let Some(per) = results
                .get(workload, server, "publishes_per_bcast")
                .and_then(|v| v.parse::<f64>().ok())
            else {
                println!("| {name} | - | - | - | 1 | n/a (not measured) |");
                continue;
            };
            let lost = results
                .get(workload, server, "lost_deliveries")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let result = if lost > 0 {
                "missed (deliveries lost)"
            } else if (0.95..=1.05).contains(&per) {
                "met"
            } else {
                "missed"
            };
            println!("| {name} | {per} | - | - | 1 | {result} |");
        }
    }
    // Burst's peak memory depends on the backpressure policy, not speed.
    let worst = spreads
        .iter()
        .filter(|(w, _, _)| !w.starts_with("burst"))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let name = "runtimes within 15% (worst workload)";
    match worst {
        None => println!("| {name} | - | - | - | 15% | n/a (not measured) |"),
        Some((workload, spread, _)) => {
            let all_valid = spreads.iter().all(|(_, _, valid)| *valid);
            let result = if !all_valid {
                "not valid (loadgen INVALID)"
            } else if *spread <= RUNTIME_SPREAD {
                "met"
            } else {
                "missed"
            };
            println!(
                "| {name} | {workload}: {:.0}% | - | - | 15% | {result} |",
                spread * 100.0
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in [
            0u32,
            1,
            127,
            128,
            129,
            255,
            256,
            1000,
            65_535,
            1 << 30,
            u32::MAX,
        ] {
            let bucket = Histogram::bucket(us);
            assert!(bucket >= last && bucket < BUCKETS, "{us}");
            last = bucket;
            let low = Histogram::low(bucket);
            assert!(low <= us && us - low <= us / 64 + 1, "{us} {low}");
        }
    }

    #[test]
    fn events_are_masked_frames_with_hand_written_ids() {
        let mut out = Vec::new();
        push_event(&mut out, ECHO_HEAD, 907);
        let payload = b"42[\"echo\",[907,\"hello world\"]]";
        assert_eq!(out[0], 0x81);
        assert_eq!(out[1] as usize, 0x80 | payload.len());
        assert_eq!(&out[6..], payload);
        assert_eq!(parse_id(payload), Some(907));
        assert_eq!(parse_id(b"42[\"echo-back\",[0,\"x\"]]"), Some(0));
    }

    #[test]
    fn publish_calls_of_info_commandstats() {
        let info = "# Commandstats\r\ncmdstat_ping:calls=3,usec=1,usec_per_call=0.33\r\n\
                    cmdstat_publish:calls=1200,usec=900,usec_per_call=0.75,rejected_calls=0\r\n\
                    cmdstat_spublish:calls=7,usec=5\r\n";
        assert_eq!(publish_calls(info), 1207);
        assert_eq!(publish_calls("# Commandstats\r\n"), 0);
        let shout = {
            let mut out = Vec::new();
            push_event(&mut out, SHOUT_HEAD, 42);
            out
        };
        assert_eq!(&shout[6..], b"42[\"shout\",[42,\"hello world\"]]");
        assert_eq!(
            parse_id(b"42[\"shout-back\",[42,\"hello world\"]]"),
            Some(42)
        );
    }

    #[test]
    fn chunked_and_sized_http_responses() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let mut conn = HttpConn::connect(&addr).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let wire: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\
                      Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
            server.write_all(wire).await.unwrap();
            while conn.reader.end < wire.len() {
                conn.reader.fill(&mut conn.stream).await.unwrap();
            }
            assert!(conn.next_response().unwrap());
            assert_eq!(conn.body, b"ok");
            assert!(conn.next_response().unwrap());
            assert_eq!(conn.body, b"abcde");
            assert!(!conn.next_response().unwrap());
        });
    }
}
