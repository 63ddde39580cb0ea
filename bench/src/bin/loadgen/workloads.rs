//! The WebSocket workloads: echo, idle, broadcast and burst, cluster.

use super::*;

pub(super) async fn echo(options: &Options) -> Result<(), Failure> {
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
pub(super) async fn echo_client(
    conn: &mut Conn,
    stats: &Stats,
    inflight: usize,
) -> Result<(), Failure> {
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

pub(super) async fn idle(options: &Options) -> Result<(), Failure> {
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
pub(super) const PENDING_SLOTS: usize = 4096;

/// One broadcast in flight: shared by every receiver without a lock.
pub(super) struct PendingSlot {
    /// The broadcast's id, `u64::MAX` when free.
    pub(super) id: AtomicU64,
    /// Receivers that have not seen it yet.
    pub(super) missing: AtomicU64,
    /// When it was sent, in ns since `Pending::epoch`.
    pub(super) sent_ns: AtomicU64,
}

pub(super) struct Pending {
    pub(super) epoch: Instant,
    pub(super) slots: Vec<PendingSlot>,
}

impl Pending {
    pub(super) fn new() -> Self {
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

    pub(super) fn start(&self, id: u64, receivers: usize) {
        let slot = &self.slots[id as usize % PENDING_SLOTS];
        slot.missing.store(receivers as u64, Ordering::Relaxed);
        let ns = self.epoch.elapsed().as_nanos() as u64;
        slot.sent_ns.store(ns, Ordering::Relaxed);
        slot.id.store(id, Ordering::Release);
    }

    /// One receiver got `id`: true (with the send time) when it was the
    /// last one.
    pub(super) fn delivered(&self, id: u64) -> Option<Option<Instant>> {
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
pub(super) async fn receive_broadcasts(
    conn: &mut Conn,
    stats: &Stats,
    pending: &Pending,
    done: &tokio::sync::mpsc::UnboundedSender<()>,
) -> Result<(), Failure> {
    loop {
        conn.fill().await?;
        count_deliveries(conn, stats, pending, done)?;
        conn.flush().await?;
    }
}

/// Count the broadcasts read into `conn`; the last receiver of one
/// records its fan-out latency (until the last receiver has it) and tells
/// the sender.
fn count_deliveries(
    conn: &mut Conn,
    stats: &Stats,
    pending: &Pending,
    done: &tokio::sync::mpsc::UnboundedSender<()>,
) -> Result<(), Failure> {
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
    Ok(())
}

/// One client broadcasts to a room of `clients` receivers, keeping
/// `inflight` broadcasts outstanding (a broadcast completes when every
/// receiver has it). `burst`: send `inflight` broadcasts at once, once, and
/// count what arrives.
pub(super) async fn broadcast(options: &Options, burst: bool) -> Result<(), Failure> {
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
    let window = spawn_window(options, &stats);
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
pub(super) async fn cluster_client(
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
                count_deliveries(conn, stats, pending, done)?;
            }
        }
        conn.flush().await?;
    }
}

/// `--clients` connections to each node of `--addr`, a namespace-wide
/// broadcast (`shout`) kept `--inflight` deep, sent by the first connection
/// of each node in turn; a broadcast completes when every connection has
/// it (its sender too: `shout-back` goes to the whole namespace).
pub(super) async fn cluster(options: &Options) -> Result<(), Failure> {
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
    let window = spawn_window(options, &stats);
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
