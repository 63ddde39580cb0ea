//! What the broker buses (Redis, AMQP, Kafka, ZeroMQ) share: name
//! resolution and connection, the handle and its control channel, flush
//! tracking, the bounded queue of publishes kept while the broker is down,
//! the reconnection back-off, the options, random node ids, and the bus
//! task's loop.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use futures_util::{pin_mut, select, FutureExt};
use socketio_core::cluster::{BusCommand, BusInput};

use crate::runtime::{BoxStream, Runtime};

/// The errors of a bus that the shared parts raise.
pub(crate) trait BusError: Sized {
    /// The bus was stopped.
    fn stopped() -> Self;
    /// A step (named) did not finish in time.
    fn timeout(what: &'static str) -> Self;
    /// A connection failed.
    fn from_io(error: io::Error) -> Self;
    /// A host name did not resolve (`host: why`).
    fn dns(what: String) -> Self;
}

/// Resolve a host name off the async threads: the system resolver blocks.
pub(crate) async fn resolve<E: BusError>(host: &str, port: u16) -> Result<Vec<SocketAddr>, E> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = oneshot::channel();
    let name = host.to_string();
    std::thread::Builder::new()
        .name("socketio-dns".into())
        .spawn(move || {
            let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
        })
        .map_err(E::from_io)?;
    match rx.await {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(E::dns(format!("{host}: no address"))),
        Ok(Err(e)) => Err(E::dns(format!("{host}: {e}"))),
        Err(_) => Err(E::dns(format!("{host}: resolver thread died"))),
    }
}

/// A TCP connection to the first of `addrs` that accepts one.
pub(crate) async fn connect_any<E: BusError>(
    runtime: &Arc<dyn Runtime>,
    addrs: &[SocketAddr],
) -> Result<BoxStream, E> {
    let mut last = None;
    for addr in addrs {
        match runtime.connect(*addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => E::from_io(e),
        None => E::dns("no address".into()),
    })
}

/// Resolve `host` and connect to the first of its addresses that accepts.
pub(crate) async fn connect_host<E: BusError>(
    runtime: &Arc<dyn Runtime>,
    host: &str,
    port: u16,
) -> Result<BoxStream, E> {
    connect_any(runtime, &resolve::<E>(host, port).await?).await
}

/// `fut`, or a timeout error at `deadline`.
pub(crate) async fn with_deadline<T, E: BusError>(
    runtime: &Arc<dyn Runtime>,
    deadline: Instant,
    what: &'static str,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let fut = std::pin::pin!(fut);
    match select(fut, runtime.sleep_until(deadline)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(E::timeout(what)),
    }
}

/// How a backend names itself in its logs.
pub(crate) struct Names {
    /// `Redis link up`, `AMQP link up`, `ZeroMQ link up`.
    pub link: &'static str,
    /// `cannot connect to {broker}`, `while {broker} was unreachable`.
    pub broker: &'static str,
    /// The warning of the first publish dropped in an outage.
    pub queue_full: &'static str,
}

/// The options every bus has: reconnection back-off, deadlines, the
/// bound of the outage queue.
#[derive(Debug, Clone)]
pub(crate) struct BusOptions {
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub max_queued_bytes: usize,
}

impl BusOptions {
    /// The defaults: 100 ms to 5 s back-off, 10 s I/O deadline, 16 MiB.
    pub(crate) const fn new(connect_timeout: Duration) -> Self {
        BusOptions {
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            connect_timeout,
            io_timeout: Duration::from_secs(10),
            max_queued_bytes: 16 << 20,
        }
    }

    /// `min` at least 1 ms, `max` at least `min`.
    pub(crate) fn set_backoff(&mut self, min: Duration, max: Duration) {
        self.backoff_min = min.max(Duration::from_millis(1));
        self.backoff_max = max.max(self.backoff_min);
    }
}

/// The builder methods of [`BusOptions`] on a config with a `bus` field,
/// each with its backend's documentation.
macro_rules! bus_option_setters {
    (
        $(#[$backoff:meta])* reconnect_backoff;
        $(#[$connect:meta])* connect_timeout;
        $(#[$io:meta])* io_timeout;
        $(#[$queued:meta])* max_queued_bytes;
    ) => {
        $(#[$backoff])*
        pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
            self.bus.set_backoff(min, max);
            self
        }

        $(#[$connect])*
        pub fn connect_timeout(mut self, timeout: Duration) -> Self {
            self.bus.connect_timeout = timeout;
            self
        }

        $(#[$io])*
        pub fn io_timeout(mut self, timeout: Duration) -> Self {
            self.bus.io_timeout = timeout;
            self
        }

        $(#[$queued])*
        pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
            self.bus.max_queued_bytes = bytes;
            self
        }
    };
}
pub(crate) use bus_option_setters;

/// After `delay`, unless the bus task is gone (`events` closed), run
/// `connect` under `timeout` (a [`BusError::timeout`] naming `what`) and
/// hand the task the event `event` makes of the outcome.
pub(crate) fn connect_later<T, E, Ev>(
    runtime: &Arc<dyn Runtime>,
    delay: Duration,
    timeout: Duration,
    what: &'static str,
    events: async_channel::Sender<Ev>,
    connect: impl Future<Output = Result<T, E>> + Send + 'static,
    event: impl FnOnce(Result<T, E>) -> Ev + Send + 'static,
) where
    T: Send + 'static,
    E: BusError + Send + 'static,
    Ev: Send + 'static,
{
    let rt = runtime.clone();
    runtime.spawn(Box::pin(async move {
        if !delay.is_zero() {
            rt.sleep_until(Instant::now() + delay).await;
        }
        if events.is_closed() {
            return;
        }
        let result = with_deadline(&rt, Instant::now() + timeout, what, connect).await;
        let _ = events.send(event(result)).await;
    }));
}

/// A backend's public bus type over a [`Handle`]: the struct (documented
/// by the caller), its `Debug`, and `flush` (documented by the caller),
/// `stop` and `is_stopped`.
macro_rules! bus_handle {
    (
        $(#[$doc:meta])* $bus:ident, $error:ty;
        $(#[$flush:meta])* flush;
        $(#[$stop:meta])* stop;
    ) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $bus {
            handle: $crate::bus::Handle,
        }

        impl std::fmt::Debug for $bus {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.handle.debug(f, stringify!($bus))
            }
        }

        impl $bus {
            $(#[$flush])*
            pub async fn flush(&self, deadline: std::time::Instant) -> Result<(), $error> {
                self.handle.flush(deadline).await
            }

            $(#[$stop])*
            pub fn stop(&self) {
                self.handle.stop()
            }

            /// Whether the bus has stopped (or been told to).
            pub fn is_stopped(&self) -> bool {
                self.handle.is_stopped()
            }
        }
    };
}
pub(crate) use bus_handle;

/// What the handles send the bus task.
pub(crate) enum Control {
    Flush(oneshot::Sender<()>),
    Stop,
}

/// The handle of a running bus. Clones control the same bus.
#[derive(Clone)]
pub(crate) struct Handle {
    runtime: Arc<dyn Runtime>,
    control: async_channel::Sender<Control>,
}

impl Handle {
    /// A handle, and the task's end of its control channel.
    pub(crate) fn new(runtime: Arc<dyn Runtime>) -> (Handle, async_channel::Receiver<Control>) {
        let (control, rx) = async_channel::unbounded();
        (Handle { runtime, control }, rx)
    }

    pub(crate) async fn flush<E: BusError>(&self, deadline: Instant) -> Result<(), E> {
        let (tx, rx) = oneshot::channel();
        self.control
            .try_send(Control::Flush(tx))
            .map_err(|_| E::stopped())?;
        with_deadline(&self.runtime, deadline, "flush", async {
            rx.await.map_err(|_| E::stopped())
        })
        .await
    }

    pub(crate) fn stop(&self) {
        let _ = self.control.try_send(Control::Stop);
        self.control.close();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.control.is_closed()
    }

    /// `Name { stopped: .., .. }`.
    pub(crate) fn debug(&self, f: &mut std::fmt::Formatter<'_>, name: &str) -> std::fmt::Result {
        f.debug_struct(name)
            .field("stopped", &self.is_stopped())
            .finish_non_exhaustive()
    }
}

/// Commands numbered as received, those not yet done, and the flushes
/// waiting for them.
#[derive(Default)]
pub(crate) struct Acks {
    /// Commands received.
    seq: u64,
    /// Commands not yet done.
    pending: BTreeSet<u64>,
    flushes: Vec<(u64, oneshot::Sender<()>)>,
}

impl Acks {
    /// Number the next command.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Command `seq` is under way: flushes wait for it.
    pub(crate) fn wait(&mut self, seq: u64) {
        self.pending.insert(seq);
    }

    /// Command `seq` is done.
    pub(crate) fn ack(&mut self, seq: u64) {
        self.pending.remove(&seq);
        self.check_flushes();
    }

    /// Answer `tx` once every command received so far is done.
    pub(crate) fn flush(&mut self, tx: oneshot::Sender<()>) {
        self.flushes.push((self.seq, tx));
        self.check_flushes();
    }

    fn check_flushes(&mut self) {
        let first = self.pending.first().copied();
        let mut i = 0;
        while i < self.flushes.len() {
            if first.map_or(true, |f| f > self.flushes[i].0) {
                let (_, tx) = self.flushes.swap_remove(i);
                let _ = tx.send(());
            } else {
                i += 1;
            }
        }
    }
}

/// The publishes kept while the broker is unreachable, bounded in bytes;
/// those beyond the bound are dropped and counted.
pub(crate) struct OutageQueue<T> {
    items: VecDeque<T>,
    bytes: usize,
    /// Publishes dropped during this outage (queue full).
    dropped: u64,
}

impl<T> Default for OutageQueue<T> {
    fn default() -> Self {
        OutageQueue {
            items: VecDeque::new(),
            bytes: 0,
            dropped: 0,
        }
    }
}

impl<T> OutageQueue<T> {
    /// Whether `len` more bytes fit under `limit`; if not, the drop is
    /// counted (and the first of an outage logged).
    pub(crate) fn admit(&mut self, len: usize, limit: usize, names: &Names) -> bool {
        if self.bytes + len <= limit {
            return true;
        }
        self.dropped += 1;
        if self.dropped == 1 {
            tracing::warn!(limit, "{}", names.queue_full);
        }
        false
    }

    pub(crate) fn push_back(&mut self, item: T, len: usize) {
        self.bytes += len;
        self.items.push_back(item);
    }

    pub(crate) fn push_front(&mut self, item: T, len: usize) {
        self.bytes += len;
        self.items.push_front(item);
    }

    /// Everything queued, in order; the queue is then empty.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.bytes = 0;
        self.items.drain(..)
    }

    /// Log (and forget) the publishes dropped during the outage that ended.
    pub(crate) fn report_dropped(&mut self, limit: usize, names: &Names) {
        if self.dropped > 0 {
            tracing::warn!(
                dropped = self.dropped,
                limit,
                "publishes were dropped while {} was unreachable (queue full)",
                names.broker
            );
            self.dropped = 0;
        }
    }
}

/// The reconnection schedule: a back-off doubling from `min` to `max`,
/// failures in a row, and when the link went down.
pub(crate) struct Reconnect {
    backoff: Duration,
    min: Duration,
    max: Duration,
    down_since: Option<Instant>,
    /// Failed connection attempts in a row.
    failures: u32,
}

impl Reconnect {
    pub(crate) fn new(options: &BusOptions) -> Self {
        Reconnect {
            backoff: options.backoff_min,
            min: options.backoff_min,
            max: options.backoff_max,
            down_since: None,
            failures: 0,
        }
    }

    /// The delay before the next attempt (the back-off then doubles).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(self.max);
        delay
    }

    /// A connection attempt failed: logged (not one line per attempt
    /// through a long outage); the delay before the next one.
    pub(crate) fn failed(&mut self, names: &Names, error: &dyn std::fmt::Display) -> Duration {
        self.failures += 1;
        if self.failures == 1 || self.failures % 20 == 0 {
            tracing::warn!(
                attempts = self.failures,
                retry_in_ms = self.backoff.as_millis() as u64,
                "cannot connect to {}: {error}",
                names.broker
            );
        } else {
            tracing::debug!(
                attempts = self.failures,
                "cannot connect to {}: {error}",
                names.broker
            );
        }
        self.next_delay()
    }

    /// The link is up: the schedule starts over; logged.
    pub(crate) fn up(&mut self, names: &Names) {
        self.backoff = self.min;
        self.failures = 0;
        match self.down_since.take() {
            Some(since) => tracing::info!(
                gap_ms = since.elapsed().as_millis() as u64,
                "{} link back, subscriptions restored",
                names.link
            ),
            None => tracing::info!("{} link up", names.link),
        }
    }

    /// A link that was up is lost.
    pub(crate) fn down(&mut self) {
        self.down_since = Some(Instant::now());
    }

    /// The link is up (all subscriptions restored): the schedule starts
    /// over, the publishes dropped during the outage are reported, `Up`
    /// goes to `inputs`.
    pub(crate) fn link_up<T>(
        &mut self,
        names: &Names,
        queue: &mut OutageQueue<T>,
        limit: usize,
        inputs: &dyn Fn(BusInput),
    ) {
        self.up(names);
        queue.report_dropped(limit, names);
        inputs(BusInput::Up);
    }

    /// The link broke (`was_up`) or failed while coming up: logged with
    /// `reason` and the publishes `in_flight` (which may be lost), `Down`
    /// to `inputs` if it was up; the delay before the next attempt.
    pub(crate) fn link_lost(
        &mut self,
        names: &Names,
        was_up: bool,
        in_flight: u64,
        reason: &str,
        inputs: &dyn Fn(BusInput),
    ) -> Duration {
        if was_up {
            tracing::warn!(
                in_flight_publishes = in_flight,
                "{} link lost ({reason}); reconnecting",
                names.link
            );
            self.down();
            inputs(BusInput::Down);
        } else {
            tracing::warn!(
                "{} link failed while coming up ({reason}); reconnecting",
                names.link
            );
        }
        self.next_delay()
    }
}

/// Answer a command only Redis carries (streams and keys, for the streams
/// adapter) on a bus that has none: requests are answered as failed so
/// that nothing waits for them, the others are ignored with a warning.
pub(crate) fn refuse_redis_only(command: BusCommand, inputs: &dyn Fn(BusInput), names: &Names) {
    match command {
        BusCommand::StreamAppend { token, .. } => {
            inputs(BusInput::StreamAppended { token, id: None });
        }
        BusCommand::StreamRange { token, .. } => {
            inputs(BusInput::StreamRange {
                token,
                entries: None,
            });
        }
        BusCommand::TakeKey { token, .. } => {
            inputs(BusInput::KeyTaken { token, value: None });
        }
        command => {
            tracing::warn!(?command, "{} has no streams or keys: ignored", names.link);
        }
    }
}

/// Most commands (and, where the backend batches them, events) taken from
/// their channel before the batch is written: pipelining without starving
/// the replies.
const BATCH: usize = 256;

/// What a backend's bus task does at each step of [`run_task`], the loop
/// every backend shares.
pub(crate) trait Task: Send + Sized {
    /// What its connection tasks report.
    type Event: Send;
    /// `Redis`, `AMQP`, `Kafka`, `ZeroMQ`, in logs.
    const NAME: &'static str;
    /// Whether the events that arrived together are all taken before
    /// writing out (acknowledgements in one batch).
    const BATCH_EVENTS: bool = false;

    fn acks(&mut self) -> &mut Acks;
    /// When [`Task::tick`] is due next, if ever.
    fn timer(&self) -> Option<Instant> {
        None
    }
    /// Connect after `delay` (the outcome comes back as an event).
    fn connect_after(&self, delay: Duration);
    fn command(&mut self, command: BusCommand);
    fn event(&mut self, event: Self::Event) -> impl Future<Output = ()> + Send;
    /// Write what the steps queued for the broker.
    fn write(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
    fn tick(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// The bus stops.
    fn finish(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Spawn [`run_task`] for `task`, whose connection tasks report on
/// `events`.
pub(crate) fn spawn_task<T: Task + 'static>(
    runtime: &Arc<dyn Runtime>,
    task: T,
    events: async_channel::Receiver<T::Event>,
    commands: async_channel::Receiver<BusCommand>,
    control: async_channel::Receiver<Control>,
) {
    let run = run_task(task, runtime.clone(), events, commands, control);
    runtime.spawn(Box::pin(run));
}

/// The bus task: connects, then takes commands, connection events (on
/// `events`),
/// control messages and timer ticks until the commands close or the bus
/// is stopped.
async fn run_task<T: Task>(
    mut task: T,
    runtime: Arc<dyn Runtime>,
    events: async_channel::Receiver<T::Event>,
    commands: async_channel::Receiver<BusCommand>,
    control: async_channel::Receiver<Control>,
) {
    let mut control_open = true;
    task.connect_after(Duration::ZERO);
    loop {
        let timer = task.timer();
        match next_step(&runtime, &commands, &events, &control, control_open, timer).await {
            Step::Command(Some(c)) => {
                task.command(c);
                for _ in 1..BATCH {
                    match commands.try_recv() {
                        Ok(c) => task.command(c),
                        Err(_) => break,
                    }
                }
                task.write().await;
            }
            Step::Command(None) => {
                tracing::debug!("bus commands closed: {} bus stops", T::NAME);
                break;
            }
            Step::Control(Some(Control::Flush(tx))) => {
                // Everything sent before the flush is in the channel.
                while let Ok(c) = commands.try_recv() {
                    task.command(c);
                }
                task.write().await;
                task.acks().flush(tx);
            }
            Step::Control(Some(Control::Stop)) => {
                tracing::debug!("{} bus stopped", T::NAME);
                break;
            }
            // Every handle dropped: keep running on the commands.
            Step::Control(None) => control_open = false,
            Step::Event(e) => {
                task.event(e).await;
                if T::BATCH_EVENTS {
                    for _ in 1..BATCH {
                        match events.try_recv() {
                            Ok(e) => task.event(e).await,
                            Err(_) => break,
                        }
                    }
                    task.write().await;
                }
            }
            Step::Tick => task.tick().await,
        }
    }
    task.finish().await;
    control.close();
}

/// What the bus task does next.
enum Step<E> {
    Command(Option<BusCommand>),
    Event(E),
    Control(Option<Control>),
    Tick,
}

/// Wait for a command, a connection event, a control message (while
/// `control_open`) or the `timer`.
async fn next_step<E>(
    runtime: &Arc<dyn Runtime>,
    commands: &async_channel::Receiver<BusCommand>,
    events: &async_channel::Receiver<E>,
    control: &async_channel::Receiver<Control>,
    control_open: bool,
    timer: Option<Instant>,
) -> Step<E> {
    loop {
        let cmd = commands.recv().fuse();
        let ev = events.recv().fuse();
        let ctl = async {
            if control_open {
                control.recv().await.ok()
            } else {
                std::future::pending().await
            }
        }
        .fuse();
        let tick = async {
            match timer {
                Some(t) => runtime.sleep_until(t).await,
                None => std::future::pending().await,
            }
        }
        .fuse();
        pin_mut!(cmd, ev, ctl, tick);
        return select! {
            c = cmd => Step::Command(c.ok()),
            e = ev => match e {
                Ok(e) => Step::Event(e),
                // The task holds a sender: never closed.
                Err(_) => continue,
            },
            c = ctl => Step::Control(c),
            _ = tick => Step::Tick,
        };
    }
}

/// Hand `event` to the bus task, unless `kill` fires first; whether it
/// was sent.
pub(crate) async fn send_unless_killed<E>(
    events: &async_channel::Sender<E>,
    kill: &async_channel::Receiver<()>,
    event: E,
) -> bool {
    let sending = events.send(event).fuse();
    let killed = kill.recv().fuse();
    pin_mut!(sending, killed);
    select! {
        r = sending => r.is_ok(),
        _ = killed => false,
    }
}

/// 32 hex digits from the OS's randomness (or the clock, if that fails:
/// the callers only need names unlikely to clash).
pub(crate) fn weak_random_id() -> String {
    let mut id = [0u8; 16];
    if getrandom::fill(&mut id).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        id = nanos.to_le_bytes();
    }
    id.iter().map(|b| format!("{b:02x}")).collect()
}
