//! Abuse measurements of issue 16: four attacks on the echo server
//! (`examples/echo_server.rs`), each against a fresh server process.
//!
//! ```text
//! cargo build --release -p socketio --example echo_server
//! cargo run --release -p socketio-bench --bin abuse -- --server PATH_TO_echo_server
//!     [--runtime tokio|async-std|smol|all|A,B] [--only 1,3] [--window-secs 3]
//! ```
//!
//! 1. `flood`: one client sends 200,000 acked `echo` events at once and
//!    reads nothing.
//! 2. `partial-binary`: 16 clients each announce a BINARY_EVENT with 10
//!    attachments and send 9 of 512 KiB, never the 10th.
//! 3. `ping-flood`: 200,000 WebSocket pings (125-byte payload) from a
//!    client that reads nothing.
//! 4. `ask`: 10,000 `ask` events, whose handler asks the client `question`
//!    and awaits its ack (`socket.call`); the client answers none. Counts
//!    the questions received within `--window-secs`: the handlers started.
//!
//! The server's `VmRSS` is sampled every 10 ms: its baseline (after one
//! client was served), its peak from the first abusive connection to the
//! end of the attack, and 1.5 s after the abusive clients are gone. Then a
//! fresh client must get an `echo` acked within 5 s. `closed?` says how
//! the server ended the abusive connections, as far as the client could
//! see it (a close frame's code and reason, an Engine.IO or Socket.IO
//! close packet, EOF or reset). Prints one table; the servers' stderr goes
//! to `target/abuse/`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::io::AsyncWriteExt;
use tokio::time::{sleep, timeout, timeout_at};

use socketio_bench::flags::{usage_exit, Flags};
use socketio_bench::process::{RssSampler, ServerProcess};
use socketio_bench::wire::{acked_echoes, digits, push_frame, Conn, Failure};

/// The attacks, by number.
const ATTACKS: [&str; 4] = ["flood", "partial-binary", "ping-flood", "ask"];
/// The issue's target for each attack (and a fresh client served).
const TARGETS: [&str; 4] = [
    "peak <= 4 MB, after <= 2 MB",
    "all closed, peak <= 16 MB",
    "peak <= 4 MB",
    "all 10000 handlers start",
];
/// How long the attack's writes may take before they count as stalled
/// (the server stopped reading: back-pressure).
const WRITE_LIMIT: Duration = Duration::from_secs(5);
/// How long the abusive clients stay, not reading, after their writes.
const LINGER: Duration = Duration::from_secs(1);
/// How long `closed?` reads what the server sent to find its end.
const CLOSE_LIMIT: Duration = Duration::from_secs(3);
/// When "after" is measured, once the abusive clients are gone.
const SETTLE: Duration = Duration::from_millis(1500);
/// How long a fresh client may take to get its `echo` acked.
const FRESH_LIMIT: Duration = Duration::from_secs(5);

struct Options {
    server: PathBuf,
    runtimes: Vec<String>,
    attacks: Vec<usize>,
    window: Duration,
}

/// One row of the table.
struct Row {
    attack: usize,
    runtime: String,
    baseline_kb: u64,
    peak_kb: u64,
    after_kb: u64,
    closed: String,
    fresh: String,
    note: String,
    target: String,
}

/// What an attack saw from the client side.
struct Outcome {
    closed: String,
    note: String,
    /// Whether the attack's own part of the target was met: every
    /// abusive connection closed (2), every handler started (4).
    met: bool,
}

const USAGE: &str = "usage: abuse --server PATH_TO_echo_server [--runtime tokio|async-std|smol|all|A,B] [--only 1,2,3,4] [--window-secs S]";

fn usage(problem: &str) -> ! {
    usage_exit(USAGE, problem)
}

fn main() {
    let mut options = Options {
        server: PathBuf::new(),
        runtimes: vec!["tokio".to_owned()],
        attacks: vec![1, 2, 3, 4],
        window: Duration::from_secs(3),
    };
    let flags = Flags::from_env(USAGE, &[]);
    for (flag, value) in flags {
        match flag.as_str() {
            "--server" => options.server = PathBuf::from(value),
            "--runtime" if value == "all" => {
                options.runtimes = ["tokio", "async-std", "smol"].map(String::from).to_vec();
            }
            "--runtime" => options.runtimes = value.split(',').map(String::from).collect(),
            "--only" => {
                options.attacks = value
                    .split(',')
                    .map(|n| match n.parse() {
                        Ok(n @ 1..=4) => n,
                        _ => usage("--only takes attack numbers 1 to 4"),
                    })
                    .collect();
            }
            "--window-secs" => {
                options.window =
                    Duration::from_secs(value.parse().unwrap_or_else(|_| usage("bad seconds")));
            }
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
    let mut rows = Vec::new();
    for server_runtime in &options.runtimes {
        for &attack in &options.attacks {
            match runtime.block_on(measure(&options, server_runtime, attack)) {
                Ok(row) => {
                    eprintln!("{}", format_row(&row));
                    rows.push(row);
                }
                Err(e) => eprintln!("attack {attack} on {server_runtime}: {e}"),
            }
        }
    }
    println!("| attack | runtime | baseline MB | peak over baseline MB | after over baseline MB | closed? | fresh client served | target | notes |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        println!("{}", format_row(row));
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn format_row(row: &Row) -> String {
    format!(
        "| {} {} | {} | {:.1} | {:+.1} | {:+.1} | {} | {} | {} | {} |",
        row.attack,
        ATTACKS[row.attack - 1],
        row.runtime,
        mb(row.baseline_kb),
        mb(row.peak_kb) - mb(row.baseline_kb),
        mb(row.after_kb) - mb(row.baseline_kb),
        row.closed,
        row.fresh,
        row.target,
        row.note
    )
}

/// One attack against a fresh server on `runtime`.
async fn measure(options: &Options, runtime: &str, attack: usize) -> Result<Row, Failure> {
    let log = PathBuf::from(format!(
        "target/abuse/{runtime}-{}.log",
        ATTACKS[attack - 1]
    ));
    let mut server = ServerProcess::start(
        &options.server,
        &["--port", "0", "--runtime", runtime],
        &log,
    )?;
    let sampler = RssSampler::start(server.pid, Duration::from_millis(10));
    // One client served first, so that lazily built state is in the
    // baseline, not in the attack's peak.
    let warm = fresh_client(&server.addr).await;
    if !warm.starts_with("yes") {
        return Err(format!("the fresh server did not serve a client: {warm}").into());
    }
    sleep(Duration::from_millis(500)).await;
    let baseline_kb = sampler.reset_peak();
    let outcome = match attack {
        1 => flood(&server.addr).await,
        2 => partial_binary(&server.addr).await,
        3 => ping_flood(&server.addr).await,
        _ => ask(&server.addr, options.window).await,
    };
    let peak_kb = sampler.peak_kb();
    // The abusive connections are dropped by now.
    sleep(SETTLE).await;
    let after_kb = server.rss_kb();
    let fresh = if server.running() {
        fresh_client(&server.addr).await
    } else {
        "no: the server exited".to_owned()
    };
    let outcome = outcome.unwrap_or_else(|e| Outcome {
        closed: "?".to_owned(),
        note: format!("attack failed: {e}"),
        met: false,
    });
    let (peak_mb, after_mb) = (
        mb(peak_kb.max(after_kb)) - mb(baseline_kb),
        mb(after_kb) - mb(baseline_kb),
    );
    let met = outcome.met
        && fresh.starts_with("yes")
        && match attack {
            1 => peak_mb <= 4.0 && after_mb <= 2.0,
            2 => peak_mb <= 16.0,
            3 => peak_mb <= 4.0,
            _ => true,
        };
    let target = if met { "met" } else { "missed" };
    Ok(Row {
        attack,
        runtime: runtime.to_owned(),
        baseline_kb,
        peak_kb: peak_kb.max(after_kb),
        after_kb,
        closed: outcome.closed,
        fresh,
        note: outcome.note,
        target: format!("{target}: {}", TARGETS[attack - 1]),
    })
}

/// Whether a new client gets an `echo` acked, and how fast.
async fn fresh_client(addr: &str) -> String {
    let started = Instant::now();
    let served = timeout(FRESH_LIMIT, async {
        let mut conn = Conn::open(addr, false).await?;
        push_frame(&mut conn.out, 0x81, &[b"421[\"echo\",\"fresh\"]"]);
        conn.flush().await?;
        loop {
            if conn.recv().await?.starts_with(b"431") {
                return Ok::<_, Failure>(());
            }
        }
    })
    .await;
    match served {
        Ok(Ok(())) => format!("yes ({} ms)", started.elapsed().as_millis()),
        Ok(Err(e)) => format!("no: {e}"),
        Err(_) => format!("no: nothing within {} s", FRESH_LIMIT.as_secs()),
    }
}

/// How an attack's writes went.
struct Written {
    bytes: usize,
    secs: f64,
    /// Why they stopped short, if they did.
    problem: Option<String>,
}

impl Written {
    /// `sent N MB in S s`, or where the writes stopped.
    fn note(&self) -> String {
        match &self.problem {
            None => format!("sent {} in {:.2} s", size(self.bytes), self.secs),
            Some(problem) => format!("{problem} after {}", size(self.bytes)),
        }
    }
}

/// Write `bytes` within `WRITE_LIMIT`.
async fn write_all_for(conn: &mut Conn, bytes: &[u8]) -> Written {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + WRITE_LIMIT;
    let mut written = Written {
        bytes: 0,
        secs: 0.0,
        problem: None,
    };
    for chunk in bytes.chunks(64 * 1024) {
        match timeout_at(deadline, conn.stream.write_all(chunk)).await {
            Ok(Ok(())) => written.bytes += chunk.len(),
            Ok(Err(e)) => written.problem = Some(format!("write failed ({e})")),
            Err(_) => written.problem = Some("writes stalled".to_owned()),
        }
        if written.problem.is_some() {
            break;
        }
    }
    written.secs = started.elapsed().as_secs_f64();
    written
}

fn size(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// How the server ended the connection, reading (and discarding) what it
/// sent for at most `CLOSE_LIMIT`; `no` if it is still open.
async fn closing(conn: &mut Conn) -> String {
    let deadline = tokio::time::Instant::now() + CLOSE_LIMIT;
    let mut packet = "";
    loop {
        loop {
            match conn.reader.next_frame(&mut conn.out) {
                Ok(Some(payload)) => {
                    let payload = &conn.reader.buf[payload];
                    if payload == b"1" {
                        packet = "Engine.IO close, ";
                    } else if payload.starts_with(b"41") {
                        packet = "Socket.IO disconnect, ";
                    }
                }
                Ok(None) => break,
                Err(e) => return format!("yes: {packet}{e}"),
            }
        }
        // Pings are not answered: the client reads nothing of its own.
        conn.out.clear();
        match timeout_at(deadline, conn.fill()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.to_string() == "connection closed" => {
                return format!("yes: {packet}EOF without a close frame")
            }
            Ok(Err(e)) => return format!("yes: {packet}{e}"),
            Err(_) => return format!("no{}", packet.trim_end_matches(", ")),
        }
    }
}

/// Attack 1: 200,000 acked events at once, nothing read.
async fn flood(addr: &str) -> Result<Outcome, Failure> {
    unread_writes(addr, &acked_echoes(200_000)).await
}

/// One client writes `frames` at once and reads nothing.
async fn unread_writes(addr: &str, frames: &[u8]) -> Result<Outcome, Failure> {
    let mut conn = Conn::open(addr, false).await?;
    let note = write_all_for(&mut conn, frames).await.note();
    sleep(LINGER).await;
    let closed = closing(&mut conn).await;
    Ok(Outcome {
        closed,
        note,
        met: true,
    })
}

/// Attack 2: 16 clients each announce 10 attachments and send 9 of
/// 512 KiB.
async fn partial_binary(addr: &str) -> Result<Outcome, Failure> {
    let mut header = b"4510-[\"echo\"".to_vec();
    for num in 0..10 {
        header.extend_from_slice(format!(",{{\"_placeholder\":true,\"num\":{num}}}").as_bytes());
    }
    header.push(b']');
    let attachment = vec![0x5a_u8; 512 * 1024];
    let mut frames = Vec::new();
    push_frame(&mut frames, 0x81, &[&header]);
    for _ in 0..9 {
        push_frame(&mut frames, 0x82, &[&attachment]);
    }
    let conns = join_all((0..16).map(|_| Conn::open(addr, false))).await;
    let mut conns = conns.into_iter().collect::<Result<Vec<_>, _>>()?;
    let written = join_all(conns.iter_mut().map(|c| write_all_for(c, &frames))).await;
    // One note for all: the average sent, the slowest, and any that stopped.
    let slowest = written.iter().map(|w| w.secs).fold(0.0, f64::max);
    let sent = written.iter().map(|w| w.bytes).sum::<usize>() / written.len().max(1);
    let problems: Vec<String> = written.iter().filter_map(|w| w.problem.clone()).collect();
    let mut note = format!(
        "{} clients sent {} of {} each (on average), the slowest in {slowest:.2} s",
        written.len(),
        size(sent),
        size(frames.len())
    );
    if !problems.is_empty() {
        note = format!("{note}; {}", summary(&problems));
    }
    sleep(LINGER).await;
    let closed = join_all(conns.iter_mut().map(closing)).await;
    Ok(Outcome {
        met: closed.iter().all(|c| c.starts_with("yes")),
        closed: summary(&closed),
        note,
    })
}

/// `N x text` for each distinct text, most frequent first.
fn summary(texts: &[String]) -> String {
    let mut counts: Vec<(usize, &String)> = Vec::new();
    for text in texts {
        match counts.iter_mut().find(|(_, t)| *t == text) {
            Some((n, _)) => *n += 1,
            None => counts.push((1, text)),
        }
    }
    counts.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    counts
        .iter()
        .map(|(n, t)| format!("{n} x {t}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Attack 3: 200,000 WebSocket pings of 125 bytes, nothing read.
async fn ping_flood(addr: &str) -> Result<Outcome, Failure> {
    let payload = [b'p'; 125];
    let mut frames = Vec::with_capacity(200_000 * 131);
    for _ in 0..200_000 {
        push_frame(&mut frames, 0x89, &[&payload]);
    }
    unread_writes(addr, &frames).await
}

/// Attack 4: 10,000 `ask` events, whose handlers each await the client's
/// ack of a `question` that never comes; counts the questions received
/// within `window`.
async fn ask(addr: &str, window: Duration) -> Result<Outcome, Failure> {
    const ASKS: u64 = 10_000;
    let mut conn = Conn::open(addr, false).await?;
    let mut frames = Vec::new();
    let mut scratch = [0u8; 20];
    for token in 1..=ASKS {
        push_frame(
            &mut frames,
            0x81,
            &[b"42[\"ask\",", digits(token, &mut scratch), b"]"],
        );
    }
    let sent = write_all_for(&mut conn, &frames).await.note();
    let deadline = tokio::time::Instant::now() + window;
    let mut questions = 0u64;
    let mut ended = None;
    while ended.is_none() {
        loop {
            match conn.reader.next_packet(&mut conn.out) {
                Ok(Some(payload)) => {
                    let payload = &conn.reader.buf[payload];
                    // `451-ID["question",TOKEN,{"_placeholder"...}]`; its
                    // attachment is a binary frame, not counted.
                    if payload.starts_with(b"451-")
                        && payload.windows(10).any(|w| w == b"\"question\"")
                    {
                        questions += 1;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    ended = Some(format!("yes: {e}"));
                    break;
                }
            }
        }
        if ended.is_some() {
            break;
        }
        let step = async {
            conn.flush().await?;
            conn.fill().await
        };
        match timeout_at(deadline, step).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => ended = Some(format!("yes: {e}")),
            Err(_) => ended = Some("no".to_owned()),
        }
    }
    Ok(Outcome {
        met: questions == ASKS,
        closed: ended.unwrap_or_default(),
        note: format!(
            "handlers started within {} s: {questions} of {ASKS}; {sent}",
            window.as_secs()
        ),
    })
}
