//! Load generator of the server benchmark (`bench/run.sh`).
//!
//! Speaks raw Engine.IO frames over WebSocket (tokio-tungstenite, 4 KiB
//! read buffers) on a current-thread tokio runtime, so that one core of
//! load outruns one core of server: `0{...}` open, `40` → `40{...}`, `2` →
//! `3`, then `42[...]` events. With `--raw` it skips the Socket.IO
//! handshake (for the plain WebSocket ceiling server).
//!
//! ```text
//! loadgen echo      --addr HOST:PORT --pid PID --clients 100 --inflight 8 [--secs 5] [--raw]
//! loadgen idle      --addr HOST:PORT --pid PID --clients 1000 [--raw]
//! loadgen broadcast --addr HOST:PORT --pid PID --clients 1000 --inflight 32 [--secs 5] [--raw]
//! loadgen burst     --addr HOST:PORT --pid PID --clients 1000 --inflight 400 [--raw]
//! loadgen report    --out FILE
//! ```
//!
//! Each measuring mode prints a summary and, with `--out FILE --label
//! NAME`, appends `workload<TAB>server<TAB>metric<TAB>value` lines that
//! `report` turns into one table per workload with ratios to `ours-tokio`.
//! Server CPU is utime+stime of `/proc/PID/stat` over the measured window;
//! the run is marked INVALID when the load generator's own CPU exceeds 90%
//! of its core (then throughput and latency measure the load generator).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;
type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Linux USER_HZ: the unit of utime and stime in `/proc/PID/stat`.
const TICKS_PER_SEC: f64 = 100.0;
/// Above this share of its core the load generator is the bottleneck.
const MAX_SELF_CPU: f64 = 0.90;

#[derive(Clone)]
struct Options {
    mode: String,
    addr: String,
    pid: u32,
    clients: usize,
    inflight: usize,
    secs: u64,
    raw: bool,
    out: Option<String>,
    label: String,
    workload: Option<String>,
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: loadgen echo|idle|broadcast|burst|report --addr HOST:PORT --pid PID [--clients N] [--inflight N] [--secs S] [--raw] [--out FILE --label NAME] [--workload NAME]");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| usage("mode missing"));
    let mut options = Options {
        mode,
        addr: String::from("127.0.0.1:3000"),
        pid: 0,
        clients: 100,
        inflight: 1,
        secs: 5,
        raw: false,
        out: None,
        label: String::from("server"),
        workload: None,
    };
    while let Some(flag) = args.next() {
        if flag == "--raw" {
            options.raw = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let number = || -> u64 { value.parse().unwrap_or_else(|_| usage("bad number")) };
        match flag.as_str() {
            "--addr" => options.addr = value.clone(),
            "--pid" => options.pid = number() as u32,
            "--clients" => options.clients = number() as usize,
            "--inflight" => options.inflight = number().max(1) as usize,
            "--secs" => options.secs = number(),
            "--out" => options.out = Some(value.clone()),
            "--label" => options.label = value.clone(),
            "--workload" => options.workload = Some(value.clone()),
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
            "idle" => idle(&options).await,
            "broadcast" => broadcast(&options, false).await,
            "burst" => broadcast(&options, true).await,
            other => usage(&format!("unknown mode {other}")),
        }
    });
    if let Err(e) = result {
        eprintln!("loadgen {}: {e}", options.mode);
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// Connections

/// Open a WebSocket; unless `raw`, complete the Engine.IO open and the
/// Socket.IO CONNECT to `/`.
async fn connect(addr: &str, raw: bool) -> Result<Ws, Failure> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let url = if raw {
        format!("ws://{addr}/")
    } else {
        format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    if raw {
        return Ok(ws);
    }
    let open = recv(&mut ws).await?;
    if !open.starts_with('0') {
        return Err(format!("expected an open packet, got {open:?}").into());
    }
    ws.send(Message::text("40")).await?;
    loop {
        let text = recv(&mut ws).await?;
        if text.starts_with("40") {
            return Ok(ws);
        }
        if text.starts_with("44") {
            return Err(format!("connect refused: {text}").into());
        }
    }
}

/// The next text frame other than an Engine.IO ping, which it answers.
async fn recv(ws: &mut Ws) -> Result<Utf8Bytes, Failure> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                if text.as_str() == "2" {
                    ws.send(Message::text("3")).await?;
                    continue;
                }
                return Ok(text);
            }
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// The id in `42["event",[ID,...` or `42["broadcast","room",[ID,...`.
fn parse_id(text: &str) -> Option<u64> {
    let start = text.find("\",[")? + 3;
    let digits = &text[start..];
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    digits[..end].parse().ok()
}

fn echo_frame(id: u64) -> Message {
    Message::text(format!("42[\"echo\",[{id},\"hello world\"]]"))
}

fn broadcast_frame(id: u64) -> Message {
    Message::text(format!("42[\"broadcast\",\"room\",[{id},\"hello world\"]]"))
}

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

/// A `/proc/PID/status` figure in kB (`VmRSS`, `VmHWM`).
fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Stats {
    /// Completed operations (round-trips or deliveries).
    count: AtomicU64,
    /// Latencies are recorded only inside the measured window.
    measuring: AtomicBool,
    latencies_us: Mutex<Vec<u32>>,
    ready: AtomicU64,
    failed: AtomicU64,
}

impl Stats {
    fn record(&self, since: Instant) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.measuring.load(Ordering::Relaxed) {
            let us = since.elapsed().as_micros().min(u32::MAX as u128) as u32;
            self.latencies_us.lock().unwrap().push(us);
        }
    }
}

/// What one measured window saw.
struct Window {
    ops: u64,
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
    let pid = options.pid.to_string();
    stats.latencies_us.lock().unwrap().clear();
    let (server0, self0, ops0, t0) = (
        cpu_ticks(&pid),
        cpu_ticks("self"),
        stats.count.load(Ordering::Relaxed),
        Instant::now(),
    );
    stats.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(options.secs)).await;
    stats.measuring.store(false, Ordering::Relaxed);
    let (server1, self1, ops1, secs) = (
        cpu_ticks(&pid),
        cpu_ticks("self"),
        stats.count.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let mut latencies = std::mem::take(&mut *stats.latencies_us.lock().unwrap());
    latencies.sort_unstable();
    let quantile = |q: f64| {
        if latencies.is_empty() {
            return 0;
        }
        latencies[((latencies.len() - 1) as f64 * q) as usize]
    };
    Window {
        ops: ops1 - ops0,
        secs,
        server_cpu_secs: (server1 - server0) as f64 / TICKS_PER_SEC,
        self_cpu_share: (self1 - self0) as f64 / TICKS_PER_SEC / secs,
        p50_us: quantile(0.50),
        p99_us: quantile(0.99),
    }
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

// ---------------------------------------------------------------------------
// Workloads

async fn echo(options: &Options) -> Result<(), Failure> {
    let stats = Arc::new(Stats::default());
    let start = Arc::new(tokio::sync::Notify::new());
    for _ in 0..options.clients {
        let (stats, start, options) = (stats.clone(), start.clone(), options.clone());
        tokio::spawn(async move {
            let notified = start.notified();
            let mut ws = match connect(&options.addr, options.raw).await {
                Ok(ws) => ws,
                Err(e) => {
                    eprintln!("connect: {e}");
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            stats.ready.fetch_add(1, Ordering::Relaxed);
            notified.await;
            let mut sent_at = vec![Instant::now(); options.inflight];
            for id in 0..options.inflight {
                if ws.feed(echo_frame(id as u64)).await.is_err() {
                    return;
                }
            }
            if ws.flush().await.is_err() {
                return;
            }
            while let Ok(text) = recv(&mut ws).await {
                let Some(id) = parse_id(&text) else { continue };
                let Some(slot) = sent_at.get_mut(id as usize) else {
                    continue;
                };
                stats.record(*slot);
                *slot = Instant::now();
                if ws.send(echo_frame(id)).await.is_err() {
                    return;
                }
            }
        });
    }
    wait_ready(&stats, options.clients, Duration::from_secs(30)).await;
    let failed = stats.failed.load(Ordering::Relaxed);
    // notify_waiters reaches every task that created its `notified` future.
    start.notify_waiters();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = measure(options, &stats).await;
    emit(
        options,
        &format!("echo-{}", options.inflight),
        &[
            ("rt_per_s", format!("{:.0}", window.rate())),
            ("p50_us", window.p50_us.to_string()),
            ("p99_us", window.p99_us.to_string()),
            ("cpu_us_per_rt", format!("{:.2}", window.cpu_us_per_op())),
            ("loadgen_cpu", validity(&window)),
            ("failed_conns", failed.to_string()),
        ],
    );
    Ok(())
}

async fn idle(options: &Options) -> Result<(), Failure> {
    let stats = Arc::new(Stats::default());
    let before_kb = status_kb(options.pid, "VmRSS");
    // Connect a bounded number at a time: a listen backlog overflow would
    // show as connect latency, not as memory.
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
    for _ in 0..options.clients {
        let (stats, permits, options) = (stats.clone(), permits.clone(), options.clone());
        tokio::spawn(async move {
            let permit = permits.acquire_owned().await;
            let mut ws = match connect(&options.addr, options.raw).await {
                Ok(ws) => ws,
                Err(e) => {
                    if stats.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("connect: {e}");
                    }
                    return;
                }
            };
            drop(permit);
            stats.ready.fetch_add(1, Ordering::Relaxed);
            // Hold the connection open, answering pings.
            while recv(&mut ws).await.is_ok() {}
        });
    }
    wait_ready(&stats, options.clients, Duration::from_secs(240)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_kb = status_kb(options.pid, "VmRSS");
    let connected = stats.ready.load(Ordering::Relaxed).max(1);
    let per_conn_kb = after_kb.saturating_sub(before_kb) as f64 / connected as f64;
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
        ],
    );
    Ok(())
}

/// Broadcasts still being delivered: id → (deliveries missing, sent at).
type Pending = Mutex<HashMap<u64, (usize, Instant)>>;

/// One client broadcasts to a room of `clients` receivers, keeping
/// `inflight` broadcasts outstanding (a broadcast completes when every
/// receiver has it). `burst`: send `inflight` broadcasts at once, once, and
/// count what arrives.
async fn broadcast(options: &Options, burst: bool) -> Result<(), Failure> {
    let stats = Arc::new(Stats::default());
    let pending: Arc<Pending> = Arc::default();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let permits = Arc::new(tokio::sync::Semaphore::new(64));
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
                let mut ws = connect(&options.addr, options.raw).await?;
                if !options.raw {
                    ws.send(Message::text("42[\"join\",\"room\"]")).await?;
                    while !recv(&mut ws).await?.starts_with("42[\"joined\"") {}
                }
                Ok::<_, Failure>(ws)
            };
            let mut ws = match joined.await {
                Ok(ws) => ws,
                Err(e) => {
                    if stats.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("receiver: {e}");
                    }
                    return;
                }
            };
            drop(permit);
            stats.ready.fetch_add(1, Ordering::Relaxed);
            while let Ok(text) = recv(&mut ws).await {
                let Some(id) = parse_id(&text) else { continue };
                let mut pending = pending.lock().unwrap();
                let Some((missing, sent_at)) = pending.get_mut(&id) else {
                    continue;
                };
                stats.count.fetch_add(1, Ordering::Relaxed);
                *missing -= 1;
                if *missing == 0 {
                    let sent_at = *sent_at;
                    pending.remove(&id);
                    drop(pending);
                    // Fan-out latency: until the last receiver has it.
                    stats.count.fetch_sub(1, Ordering::Relaxed);
                    stats.record(sent_at);
                    let _ = done_tx.send(());
                }
            }
        });
    }
    drop(done_tx);
    wait_ready(&stats, options.clients, Duration::from_secs(120)).await;
    let receivers = stats.ready.load(Ordering::Relaxed) as usize;
    let mut sender = connect(&options.addr, options.raw).await?;
    let mut next_id = 0u64;
    let send_one = |id: u64| {
        pending
            .lock()
            .unwrap()
            .insert(id, (receivers, Instant::now()));
        broadcast_frame(id)
    };
    if burst {
        let hwm_before = status_kb(options.pid, "VmHWM");
        let started = Instant::now();
        for id in 0..options.inflight as u64 {
            sender.feed(send_one(id)).await?;
        }
        sender.flush().await?;
        let expected = (options.inflight * receivers) as u64;
        let mut last = (0, Instant::now());
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = recv(&mut sender) => {}
            }
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
        sender.feed(send_one(next_id)).await?;
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
                sender.feed(send_one(next_id)).await?;
                sender.flush().await?;
                next_id += 1;
            }
            frame = recv(&mut sender) => { frame?; }
            window = &mut window => break window?,
        }
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

// ---------------------------------------------------------------------------
// Report

/// The figure each workload's ratio column compares.
fn primary_metric(workload: &str) -> &'static str {
    match workload.split('-').next() {
        Some("echo") | Some("polling") => "cpu_us_per_rt",
        Some("idle") => "kb_per_conn",
        Some("broadcast") => "cpu_us_per_delivery",
        Some("burst") => "peak_rss_kb",
        _ => "",
    }
}

fn report(path: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| usage(&format!("{path}: {e}")));
    // workload → (metric names in order, server → metric → value), in
    // order of appearance.
    let mut workloads: Vec<String> = Vec::new();
    let mut metrics: HashMap<String, Vec<String>> = HashMap::new();
    let mut servers: HashMap<String, Vec<String>> = HashMap::new();
    let mut values: HashMap<(String, String, String), String> = HashMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('\t').collect();
        let [workload, server, metric, value] = parts[..] else {
            continue;
        };
        if !workloads.iter().any(|w| w == workload) {
            workloads.push(workload.to_string());
        }
        let names = metrics.entry(workload.to_string()).or_default();
        if !names.iter().any(|m| m == metric) {
            names.push(metric.to_string());
        }
        let list = servers.entry(workload.to_string()).or_default();
        if !list.iter().any(|s| s == server) {
            list.push(server.to_string());
        }
        values.insert(
            (workload.to_string(), server.to_string(), metric.to_string()),
            value.to_string(),
        );
    }
    for workload in &workloads {
        let primary = primary_metric(workload);
        let names = &metrics[workload];
        println!("\n### {workload} (ratio: {primary} / ours-tokio's)\n");
        println!("| server | {} | ratio |", names.join(" | "));
        println!("|---{}|---|", "|---".repeat(names.len()));
        let get = |server: &str, metric: &str| {
            values
                .get(&(workload.clone(), server.to_string(), metric.to_string()))
                .cloned()
        };
        let base = get("ours-tokio", primary).and_then(|v| v.parse::<f64>().ok());
        for server in &servers[workload] {
            let cells: Vec<String> = names
                .iter()
                .map(|m| get(server, m).unwrap_or_else(|| "-".into()))
                .collect();
            let ratio = match (
                get(server, primary).and_then(|v| v.parse::<f64>().ok()),
                base,
            ) {
                (Some(v), Some(b)) if b > 0.0 => format!("{:.2}", v / b),
                _ => "-".into(),
            };
            println!("| {server} | {} | {ratio} |", cells.join(" | "));
        }
    }
}
