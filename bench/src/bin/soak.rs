//! Soak and churn benchmark of issue 16 (not in CI): many raw WebSocket
//! clients connecting and disconnecting against the echo server
//! (`examples/echo_server.rs`, with connection state recovery on) for a
//! long time, while the server's RSS and open files are sampled.
//!
//! ```text
//! cargo build --release -p socketio --example echo_server
//! cargo run --release -p socketio-bench --bin soak -- --server PATH_TO_echo_server
//!     [--runtime tokio] [--clients 5000] [--minutes 30] [--warmup-minutes 2]
//!     [--sample-secs 10] [--session-secs 10-60] [--action-ms 2000]
//!     [--recovery-secs 10] [--broadcast-ms 1000] [--flood-every-secs 60]
//!     [--flood-events 50000] [--out target/soak]
//! ```
//!
//! Each client slot loops: open a session, live `--session-secs` (random
//! in the range), end it, start again. In a session it sends, every
//! `--action-ms` on average, an acked `echo` (the server acks) or an `ask`
//! (the server asks `question` and awaits the client's ack, which it
//! gives, then acks `ask`); half the sessions also join `/custom` and
//! leave it halfway (namespace churn). A session ends cleanly (`41`, then
//! the TCP close) or, one time in three, by dropping the connection; the
//! next session then asks to recover (`40{"pid":...,"offset":...}`) and
//! counts whether it got its old id back. One extra connection sends
//! `shout` every `--broadcast-ms`, which the server broadcasts to every
//! socket of `/`; every `--flood-every-secs` an abusive client sends
//! `--flood-events` acked events at once, reads nothing and leaves (0: no
//! floods).
//!
//! Every `--sample-secs` it prints the server's `VmRSS`, its open files
//! (`/proc/PID/fd`) and the clients' counters. After `--minutes` all
//! clients leave; after the recovery window and 5 s more the server's
//! RSS and open files are read once more. Passes when the RSS at the end
//! is less than 5% above the RSS at the end of the warm-up, and the open
//! files are back to their count before the first client. Writes the
//! samples (`soak-RUNTIME.tsv`) and a plot (`soak-RUNTIME.svg`) under
//! `--out`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::time::{sleep, sleep_until, timeout};

use socketio_bench::flags::{usage_exit, Flags};
use socketio_bench::process::ServerProcess;
use socketio_bench::wire::{acked_echoes, digits, find, open_files, push_frame, Conn, Failure};

/// Growth of RSS over the run, after warm-up, that fails the soak.
const MAX_GROWTH: f64 = 0.05;
/// Connections opened at once while the clients first connect.
const CONNECT_PARALLELISM: usize = 64;

#[derive(Clone)]
struct Options {
    server: PathBuf,
    runtime: String,
    clients: usize,
    duration: Duration,
    warmup: Option<Duration>,
    sample: Duration,
    session: (u64, u64),
    action: Duration,
    recovery_secs: u64,
    broadcast: Duration,
    flood_every: Duration,
    flood_events: u64,
    out: PathBuf,
}

const USAGE: &str = "usage: soak --server PATH_TO_echo_server [--runtime tokio|async-std|smol] [--clients N] [--minutes M] [--warmup-minutes M] [--sample-secs S] [--session-secs MIN-MAX] [--action-ms MS] [--recovery-secs S] [--broadcast-ms MS] [--flood-every-secs S] [--flood-events N] [--out DIR]";

fn usage(problem: &str) -> ! {
    usage_exit(USAGE, problem)
}

fn main() {
    let mut options = Options {
        server: PathBuf::new(),
        runtime: "tokio".to_owned(),
        clients: 5000,
        duration: Duration::from_secs(30 * 60),
        warmup: None,
        sample: Duration::from_secs(10),
        session: (10, 60),
        action: Duration::from_millis(2000),
        recovery_secs: 10,
        broadcast: Duration::from_millis(1000),
        flood_every: Duration::from_secs(60),
        flood_events: 50_000,
        out: PathBuf::from("target/soak"),
    };
    let flags = Flags::from_env(USAGE, &[]);
    for (flag, value) in flags {
        let number = || -> u64 { value.parse().unwrap_or_else(|_| usage("bad number")) };
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(&value),
            "--runtime" => options.runtime = value.clone(),
            "--clients" => options.clients = number() as usize,
            "--minutes" => options.duration = minutes(&value),
            "--warmup-minutes" => options.warmup = Some(minutes(&value)),
            "--sample-secs" => options.sample = Duration::from_secs(number().max(1)),
            "--session-secs" => {
                let (low, high) = value.split_once('-').unwrap_or((&value, &value));
                let parse = |s: &str| s.parse::<u64>().unwrap_or_else(|_| usage("bad range"));
                options.session = (parse(low).max(1), parse(high).max(parse(low).max(1)));
            }
            "--action-ms" => options.action = Duration::from_millis(number().max(1)),
            "--recovery-secs" => options.recovery_secs = number(),
            "--broadcast-ms" => options.broadcast = Duration::from_millis(number().max(1)),
            "--flood-every-secs" => options.flood_every = Duration::from_secs(number()),
            "--flood-events" => options.flood_events = number(),
            "--out" => options.out = PathBuf::from(&value),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if options.server.as_os_str().is_empty() {
        usage("--server is required");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, soak(&options)) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    }
}

fn minutes(value: &str) -> Duration {
    let minutes: f64 = value.parse().unwrap_or_else(|_| usage("bad minutes"));
    Duration::from_secs_f64(minutes * 60.0)
}

/// The clients' counters, shared by every task (one thread).
#[derive(Default)]
struct Stats {
    connected: AtomicI64,
    sessions: AtomicU64,
    failed_sessions: AtomicU64,
    acks: AtomicU64,
    questions_answered: AtomicU64,
    broadcasts: AtomicU64,
    namespace_joins: AtomicU64,
    recovered: AtomicU64,
    not_recovered: AtomicU64,
    kicked: AtomicU64,
    floods: AtomicU64,
}

/// One row of the samples.
struct Sample {
    secs: f64,
    rss_kb: u64,
    fds: usize,
    connected: i64,
}

async fn soak(options: &Options) -> Result<bool, Failure> {
    let log = options
        .out
        .join(format!("soak-{}-server.log", options.runtime));
    let recovery = options.recovery_secs.to_string();
    let mut server = ServerProcess::start(
        &options.server,
        &[
            "--port",
            "0",
            "--runtime",
            &options.runtime,
            "--state-recovery",
            &recovery,
        ],
        &log,
    )?;
    let addr: Rc<str> = server.addr.clone().into();
    // One client served and gone first: the runtime's lazily opened files
    // (epoll, event fds, worker threads) are in the baseline.
    drop(Conn::open(&addr, false).await?);
    sleep(Duration::from_millis(500)).await;
    let (start_rss, start_fds) = (server.rss_kb(), open_files(server.pid));
    println!(
        "server pid {} on {addr} ({}), RSS {:.1} MB, {start_fds} open files; {} clients for {:.1} min",
        server.pid,
        options.runtime,
        mb(start_rss),
        options.clients,
        options.duration.as_secs_f64() / 60.0
    );
    let stats = Rc::new(Stats::default());
    let started = Instant::now();
    let end = tokio::time::Instant::now() + options.duration;
    let mut tasks = tokio::task::JoinSet::new();
    let gate = Rc::new(tokio::sync::Semaphore::new(CONNECT_PARALLELISM));
    for slot in 0..options.clients {
        let (addr, stats, options, gate) =
            (addr.clone(), stats.clone(), options.clone(), gate.clone());
        tasks.spawn_local(async move { client(slot as u64, &addr, &stats, &options, &gate).await });
    }
    tasks.spawn_local(broadcaster(addr.clone(), options.broadcast));
    tasks.spawn_local(flooder(
        addr.clone(),
        stats.clone(),
        options.flood_every,
        options.flood_events,
    ));

    let mut samples = vec![Sample {
        secs: 0.0,
        rss_kb: start_rss,
        fds: start_fds,
        connected: 0,
    }];
    let mut next = tokio::time::Instant::now();
    let mut alive = true;
    while next < end {
        next += options.sample;
        sleep_until(next.min(end)).await;
        if !server.running() {
            alive = false;
            eprintln!("the server exited (see {})", log.display());
            break;
        }
        let sample = Sample {
            secs: started.elapsed().as_secs_f64(),
            rss_kb: server.rss_kb(),
            fds: open_files(server.pid),
            connected: stats.connected.load(Relaxed),
        };
        println!(
            "{:>6.0} s  RSS {:>7.1} MB  files {:>5}  connected {:>5}  sessions {} (failed {})  acks {}  questions {}  broadcasts {}  /custom joins {}  recovered {} (not {})  kicked {}  floods {}",
            sample.secs,
            mb(sample.rss_kb),
            sample.fds,
            sample.connected,
            stats.sessions.load(Relaxed),
            stats.failed_sessions.load(Relaxed),
            stats.acks.load(Relaxed),
            stats.questions_answered.load(Relaxed),
            stats.broadcasts.load(Relaxed),
            stats.namespace_joins.load(Relaxed),
            stats.recovered.load(Relaxed),
            stats.not_recovered.load(Relaxed),
            stats.kicked.load(Relaxed),
            stats.floods.load(Relaxed),
        );
        samples.push(sample);
    }
    // Every client leaves at once (their connections dropped).
    tasks.shutdown().await;
    let left_at = started.elapsed().as_secs_f64();
    // Dropped sessions are kept for the recovery window.
    sleep(Duration::from_secs(options.recovery_secs + 5)).await;
    let (final_rss, final_fds) = (server.rss_kb(), open_files(server.pid));
    samples.push(Sample {
        secs: started.elapsed().as_secs_f64(),
        rss_kb: final_rss,
        fds: final_fds,
        connected: 0,
    });
    drop(server);

    let warmup = options
        .warmup
        .unwrap_or_else(|| Duration::from_secs(120).min(options.duration / 2));
    let warm = samples
        .iter()
        .find(|s| s.secs >= warmup.as_secs_f64())
        .map_or(0, |s| s.rss_kb);
    let loaded = samples.len().checked_sub(2).map(|i| &samples[i]);
    let end_rss = loaded.map_or(0, |s| s.rss_kb);
    let growth = if warm > 0 {
        end_rss as f64 / warm as f64 - 1.0
    } else {
        f64::NAN
    };
    let rss_ok = alive && growth < MAX_GROWTH;
    let fds_ok = alive && final_fds <= start_fds;
    println!(
        "RSS: {:.1} MB at start, {:.1} MB after warm-up ({:.0} s), {:.1} MB at the end with clients ({:+.1}%: {}), {:.1} MB after they left",
        mb(start_rss),
        mb(warm),
        warmup.as_secs_f64(),
        mb(end_rss),
        growth * 100.0,
        if rss_ok { "pass" } else { "FAIL" },
        mb(final_rss)
    );
    println!(
        "open files: {start_fds} at start, {} at the end with clients, {final_fds} after they left ({})",
        loaded.map_or(0, |s| s.fds),
        if fds_ok { "pass" } else { "FAIL" }
    );
    std::fs::create_dir_all(&options.out)?;
    let stem = options.out.join(format!("soak-{}", options.runtime));
    let mut tsv = String::from("secs\trss_kb\topen_files\tconnected\n");
    for s in &samples {
        let _ = writeln!(
            tsv,
            "{:.1}\t{}\t{}\t{}",
            s.secs, s.rss_kb, s.fds, s.connected
        );
    }
    std::fs::write(stem.with_extension("tsv"), tsv)?;
    let svg = plot(
        &samples,
        warmup.as_secs_f64(),
        left_at,
        warm,
        &options.runtime,
    );
    std::fs::write(stem.with_extension("svg"), svg)?;
    println!(
        "samples and plot: {}.tsv, {}.svg",
        stem.display(),
        stem.display()
    );
    Ok(rss_ok && fds_ok)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// A small xorshift generator: each client its own, seeded by its slot.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_millis() as u64;
        low + Duration::from_millis(self.below(span + 1))
    }
}

/// What a session hands to the next one: the recovery it may ask for.
struct Recovery {
    sid: String,
    pid: String,
    offset: Option<String>,
}

/// One client slot, session after session, until the task is dropped.
async fn client(
    slot: u64,
    addr: &str,
    stats: &Stats,
    options: &Options,
    gate: &tokio::sync::Semaphore,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (slot + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut recovery = None;
    let mut first = true;
    loop {
        let (low, high) = options.session;
        let length = rng.between(Duration::from_secs(low), Duration::from_secs(high));
        // The first sessions are spread over one session length, so that
        // the slots do not all churn in step.
        let length = if first {
            first = false;
            rng.between(Duration::ZERO, length)
        } else {
            length
        };
        let connecting = gate.acquire().await.ok();
        match session(
            addr,
            stats,
            options,
            &mut rng,
            &mut recovery,
            length,
            connecting,
        )
        .await
        {
            Ok(()) => {}
            Err(_) => {
                stats.failed_sessions.fetch_add(1, Relaxed);
                recovery = None;
                sleep(rng.between(Duration::from_millis(100), Duration::from_secs(1))).await;
            }
        }
    }
}

/// The value of `"key":"..."` in a JSON text.
fn json_str(text: &[u8], key: &str) -> Option<String> {
    let pattern = format!("\"{key}\":\"");
    let start = find(text, pattern.as_bytes())? + pattern.len();
    let len = find(&text[start..], b"\"")?;
    Some(String::from_utf8_lossy(&text[start..start + len]).into_owned())
}

/// The last argument of an event, when it is a string (the recovery offset
/// on every event without ack while recovery is on).
fn last_string_argument(payload: &[u8]) -> Option<&[u8]> {
    let body = payload.strip_suffix(b"\"]")?;
    let start = body.iter().rposition(|&b| b == b'"')? + 1;
    Some(&body[start..])
}

/// One connection's life: connect (recovering if `recovery` says so),
/// events for `length`, and an end, clean or abrupt.
async fn session(
    addr: &str,
    stats: &Stats,
    options: &Options,
    rng: &mut Rng,
    recovery: &mut Option<Recovery>,
    length: Duration,
    connecting: Option<tokio::sync::SemaphorePermit<'_>>,
) -> Result<(), Failure> {
    let limit = Duration::from_secs(10);
    let mut conn = timeout(limit, Conn::engine(addr)).await??;
    let connect = match recovery.as_ref() {
        Some(r) => match &r.offset {
            Some(offset) => format!("40{{\"pid\":\"{}\",\"offset\":\"{offset}\"}}", r.pid),
            None => format!("40{{\"pid\":\"{}\"}}", r.pid),
        },
        None => "40".to_owned(),
    };
    let reply = timeout(limit, conn.connect_namespace(connect.as_bytes())).await??;
    drop(connecting);
    let sid = json_str(&reply, "sid").ok_or("no sid in the CONNECT reply")?;
    let pid = json_str(&reply, "pid");
    if let Some(old) = recovery.take() {
        let counter = if old.sid == sid {
            &stats.recovered
        } else {
            &stats.not_recovered
        };
        counter.fetch_add(1, Relaxed);
    }
    stats.sessions.fetch_add(1, Relaxed);
    stats.connected.fetch_add(1, Relaxed);
    let result = live(&mut conn, stats, options, rng, length).await;
    stats.connected.fetch_sub(1, Relaxed);
    let offset = result?;
    if rng.below(3) == 0 {
        // Dropped without a word: the next session asks to recover.
        *recovery = pid.map(|pid| Recovery { sid, pid, offset });
    } else {
        push_frame(&mut conn.out, 0x81, &[b"41"]);
        conn.flush().await?;
    }
    Ok(())
}

/// Events until `length` is over or the server disconnects the socket;
/// returns the last recovery offset received on `/`.
async fn live(
    conn: &mut Conn,
    stats: &Stats,
    options: &Options,
    rng: &mut Rng,
    length: Duration,
) -> Result<Option<String>, Failure> {
    let started = tokio::time::Instant::now();
    let end = started + length;
    let custom = rng.below(2) == 0;
    let mut leave_custom = custom.then_some(started + length / 2);
    if custom {
        push_frame(&mut conn.out, 0x81, &[b"40/custom,"]);
        stats.namespace_joins.fetch_add(1, Relaxed);
    }
    let mut next_action = started + rng.between(Duration::ZERO, options.action * 2);
    let mut offset = None;
    let mut id = 0u64;
    let mut scratch = [0u8; 20];
    loop {
        while let Some(payload) = conn.reader.next_packet(&mut conn.out)? {
            let packet = &conn.reader.buf[payload];
            if packet == b"41" {
                stats.kicked.fetch_add(1, Relaxed);
                return Ok(None);
            } else if packet.starts_with(b"43") {
                stats.acks.fetch_add(1, Relaxed);
            } else if let Some(rest) = packet.strip_prefix(b"451-") {
                // `451-ID["question",...]`: answered at once.
                let ack_id = &rest[..rest.iter().position(|&b| b == b'[').unwrap_or(0)];
                push_frame(&mut conn.out, 0x81, &[b"43", ack_id, b"[\"answer\"]"]);
                stats.questions_answered.fetch_add(1, Relaxed);
            } else if packet.starts_with(b"42[") {
                if find(packet, b"\"shout-back\"").is_some() {
                    stats.broadcasts.fetch_add(1, Relaxed);
                }
                if let Some(at) = last_string_argument(packet) {
                    offset = Some(String::from_utf8_lossy(at).into_owned());
                }
            }
        }
        conn.flush().await?;
        let wake = leave_custom.unwrap_or(end).min(next_action).min(end);
        tokio::select! {
            filled = conn.fill() => filled?,
            _ = sleep_until(wake) => {
                let now = tokio::time::Instant::now();
                if now >= end {
                    return Ok(offset);
                }
                if leave_custom.is_some_and(|at| now >= at) {
                    leave_custom = None;
                    push_frame(&mut conn.out, 0x81, &[b"41/custom,"]);
                }
                if now >= next_action {
                    next_action = now + rng.between(Duration::ZERO, options.action * 2);
                    id += 1;
                    let id = digits(id, &mut scratch);
                    let event: &[u8] = match rng.below(3) {
                        0 => b"[\"ask\",\"token\"]",
                        _ => b"[\"echo\",\"soak\",1]",
                    };
                    push_frame(&mut conn.out, 0x81, &[b"42", id, event]);
                }
            }
        }
    }
}

/// One connection that asks the server to broadcast `shout-back` to every
/// socket of `/`, every `period`; reconnects if it loses its connection.
async fn broadcaster(addr: Rc<str>, period: Duration) {
    loop {
        let Ok(mut conn) = Conn::open(&addr, false).await else {
            sleep(period).await;
            continue;
        };
        let mut next = tokio::time::Instant::now() + period;
        let mut n = 0u64;
        let mut scratch = [0u8; 20];
        let failed: Result<(), Failure> = async {
            loop {
                while conn.reader.next_packet(&mut conn.out)?.is_some() {}
                conn.flush().await?;
                tokio::select! {
                    filled = conn.fill() => filled?,
                    _ = sleep_until(next) => {
                        next += period;
                        n += 1;
                        let n = digits(n, &mut scratch);
                        push_frame(&mut conn.out, 0x81, &[b"42[\"shout\",", n, b"]"]);
                    }
                }
            }
        }
        .await;
        drop(failed);
    }
}

/// Every `every`, an abusive client: `events` acked events at once,
/// nothing read, gone 2 s later. None when `every` is zero.
async fn flooder(addr: Rc<str>, stats: Rc<Stats>, every: Duration, events: u64) {
    if every.is_zero() {
        return;
    }
    let flood = acked_echoes(events);
    loop {
        sleep(every).await;
        let Ok(mut conn) = Conn::open(&addr, false).await else {
            continue;
        };
        stats.floods.fetch_add(1, Relaxed);
        let _ = timeout(Duration::from_secs(5), conn.stream.write_all(&flood)).await;
        sleep(Duration::from_secs(2)).await;
    }
}

/// The samples as an SVG line plot: RSS (MB, left scale) and open files
/// (right scale) over time, the end of the warm-up, the 5% growth limit
/// and the moment the clients left.
fn plot(samples: &[Sample], warmup: f64, left_at: f64, warm_kb: u64, runtime: &str) -> String {
    let (width, height, margin) = (800.0, 360.0, 60.0);
    let max_secs = samples.iter().map(|s| s.secs).fold(1.0, f64::max);
    let max_mb = samples
        .iter()
        .map(|s| mb(s.rss_kb))
        .fold(mb(warm_kb) * (1.0 + MAX_GROWTH), f64::max)
        * 1.1;
    let max_fds = samples.iter().map(|s| s.fds as f64).fold(1.0, f64::max) * 1.1;
    let x = |secs: f64| margin + secs / max_secs * (width - 2.0 * margin);
    let y = |value: f64, max: f64| height - margin - value / max * (height - 2.0 * margin);
    let line = |points: Vec<(f64, f64)>| {
        points
            .iter()
            .map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let rss = line(
        samples
            .iter()
            .map(|s| (x(s.secs), y(mb(s.rss_kb), max_mb)))
            .collect(),
    );
    let fds = line(
        samples
            .iter()
            .map(|s| (x(s.secs), y(s.fds as f64, max_fds)))
            .collect(),
    );
    let limit = y(mb(warm_kb) * (1.0 + MAX_GROWTH), max_mb);
    let (bottom, right) = (height - margin, width - margin);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{margin}" y="20">soak ({runtime}): server RSS (blue, MB, left) and open files (orange, right) over {max_secs:.0} s</text>
<line x1="{margin}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/>
<line x1="{margin}" y1="{margin}" x2="{margin}" y2="{bottom}" stroke="black"/>
<line x1="{right}" y1="{margin}" x2="{right}" y2="{bottom}" stroke="black"/>
<text x="{margin}" y="{}" text-anchor="middle">0</text>
<text x="{right}" y="{}" text-anchor="middle">{max_secs:.0} s</text>
<text x="{}" y="{margin}" text-anchor="end">{max_mb:.0} MB</text>
<text x="{}" y="{margin}">{max_fds:.0}</text>
<line x1="{margin}" y1="{limit:.1}" x2="{right}" y2="{limit:.1}" stroke="red" stroke-dasharray="4 4"/>
<text x="{}" y="{:.1}" fill="red">warm-up RSS + 5%</text>
"##,
        bottom + 16.0,
        bottom + 16.0,
        margin - 4.0,
        right + 4.0,
        margin + 4.0,
        limit - 4.0,
    );
    for (at, label) in [(warmup, "warm-up"), (left_at, "clients left")] {
        let px = x(at);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{margin}" x2="{px:.1}" y2="{bottom}" stroke="gray" stroke-dasharray="2 4"/><text x="{:.1}" y="{}" fill="gray">{label}</text>"##,
            px + 3.0,
            margin + 14.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{rss}"/>
<polyline fill="none" stroke="#ff7f0e" stroke-width="2" points="{fds}"/>
</svg>"##
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_replies_and_offsets_are_read() {
        let reply = br#"40{"sid":"abc","pid":"p1"}"#;
        assert_eq!(json_str(reply, "sid").as_deref(), Some("abc"));
        assert_eq!(json_str(reply, "pid").as_deref(), Some("p1"));
        assert_eq!(json_str(b"40{}", "pid"), None);
        let event = br#"42["shout-back",7,"12"]"#;
        assert_eq!(last_string_argument(event), Some(&b"12"[..]));
        assert_eq!(last_string_argument(br#"42["auth",{}]"#), None);
    }

    #[test]
    fn the_plot_has_both_curves() {
        let samples: Vec<Sample> = (0..5)
            .map(|i| Sample {
                secs: f64::from(i) * 10.0,
                rss_kb: 10_000 + i as u64,
                fds: 20,
                connected: 5,
            })
            .collect();
        let svg = plot(&samples, 10.0, 40.0, 10_000, "tokio");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.ends_with("</svg>\n"));
    }
}
