//! Measurement: latency histograms, counters, CPU of the server and of
//! the load generator over the measured window, and the result lines.

use super::*;

/// utime+stime of a process, in ticks.
pub(super) fn cpu_ticks(pid: &str) -> u64 {
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
pub(super) const SUB_BUCKETS: u32 = 64;
pub(super) const BUCKETS: usize = (SUB_BUCKETS * 27) as usize;

/// Latencies in microseconds, log-linear buckets: recording is one
/// uncontended atomic add, no lock and no allocation.
pub(super) struct Histogram {
    pub(super) buckets: Vec<AtomicU64>,
}

impl Histogram {
    pub(super) fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(super) fn bucket(us: u32) -> usize {
        if us < 2 * SUB_BUCKETS {
            return us as usize;
        }
        // us >> shift lies in [SUB_BUCKETS, 2 * SUB_BUCKETS).
        let shift = 31 - us.leading_zeros() - SUB_BUCKETS.trailing_zeros();
        (SUB_BUCKETS * (shift + 1) + ((us >> shift) - SUB_BUCKETS)) as usize
    }

    /// The smallest latency of a bucket.
    pub(super) fn low(bucket: usize) -> u32 {
        let bucket = bucket as u32;
        if bucket < 2 * SUB_BUCKETS {
            return bucket;
        }
        let shift = bucket / SUB_BUCKETS - 1;
        (bucket % SUB_BUCKETS + SUB_BUCKETS) << shift
    }

    pub(super) fn record(&self, us: u32) {
        self.buckets[Self::bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn clear(&self) {
        for bucket in &self.buckets {
            bucket.store(0, Ordering::Relaxed);
        }
    }

    /// Quantiles `qs` (ascending) of what was recorded.
    pub(super) fn quantiles(&self, qs: &[f64]) -> Vec<u32> {
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

pub(super) struct Stats {
    /// Completed operations (round-trips or deliveries).
    pub(super) count: AtomicU64,
    /// Broadcasts every receiver has (broadcast and cluster workloads).
    pub(super) completed: AtomicU64,
    /// Latencies are recorded only inside the measured window.
    pub(super) measuring: AtomicBool,
    pub(super) latencies: Histogram,
    pub(super) ready: AtomicU64,
    /// Connections that could not be opened.
    pub(super) failed: AtomicU64,
    /// Clients whose connection broke after it was ready.
    pub(super) errors: AtomicU64,
}

impl Stats {
    pub(super) fn new() -> Self {
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
    pub(super) fn record(&self, since: Instant) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.record_latency(since);
    }

    pub(super) fn record_latency(&self, since: Instant) {
        if self.measuring.load(Ordering::Relaxed) {
            let us = since.elapsed().as_micros().min(u32::MAX as u128) as u32;
            self.latencies.record(us);
        }
    }

    pub(super) fn failed(&self, what: &str, e: &Failure) {
        if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("{what}: {e}");
        }
    }

    pub(super) fn broke(&self, e: &Failure) {
        if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("client error: {e}");
        }
    }
}

/// What one measured window saw.
pub(super) struct Window {
    pub(super) ops: u64,
    /// Broadcasts completed in the window.
    pub(super) completed: u64,
    pub(super) secs: f64,
    pub(super) server_cpu_secs: f64,
    pub(super) self_cpu_share: f64,
    pub(super) p50_us: u32,
    pub(super) p99_us: u32,
}

impl Window {
    pub(super) fn valid(&self) -> bool {
        self.self_cpu_share <= MAX_SELF_CPU
    }
    pub(super) fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    pub(super) fn cpu_us_per_op(&self) -> f64 {
        if self.ops == 0 {
            return f64::NAN;
        }
        self.server_cpu_secs * 1e6 / self.ops as f64
    }
}

pub(super) async fn measure(options: &Options, stats: &Stats) -> Window {
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
pub(super) fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// PUBLISH plus SPUBLISH calls so far, from Redis's `INFO commandstats`
/// (one inline command on a fresh connection, read as a RESP bulk string).
pub(super) async fn redis_publishes(addr: &str) -> Option<u64> {
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
pub(super) fn publish_calls(info: &str) -> u64 {
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
pub(super) async fn wait_ready(stats: &Stats, n: usize, limit: Duration) -> bool {
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
pub(super) fn emit(options: &Options, workload: &str, metrics: &[(&str, String)]) {
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

pub(super) fn validity(window: &Window) -> String {
    let share = format!("{:.0}%", window.self_cpu_share * 100.0);
    if window.valid() {
        share
    } else {
        format!("{share} INVALID")
    }
}

/// Start every ready client at once, let the load settle, measure, and
/// emit the echo figures under `workload`.
pub(super) async fn run_echo_window(
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

/// The measured window of a workload whose load is already running, taken
/// in a task of its own once the load has settled (2 s).
pub(super) fn spawn_window(
    options: &Options,
    stats: &Arc<Stats>,
) -> tokio::task::JoinHandle<Window> {
    let (options, stats) = (options.clone(), stats.clone());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        measure(&options, &stats).await
    })
}
