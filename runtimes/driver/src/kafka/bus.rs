//! The bus task (commands in, records and acknowledgements out,
//! reconnection) and its workers (a producer, a fetcher per channel).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures_util::future::{select, select_all};
use socketio_core::cluster::kafka::{
    crc32c, decode_record_batches, encode_record_batch, error_code, Batch, FetchPartition,
    ProducePartition, Request, Response, EARLIEST, LATEST,
};
use socketio_core::cluster::{BusCommand, BusInput, ChannelKind};
use socketio_core::Str;

use super::config::KafkaConfig;
use super::conn::Conn;
use super::KafkaBusError;
use crate::bus::{
    bus_handle, connect_later, refuse_redis_only, spawn_task, Acks, Handle, Names, OutageQueue,
    Reconnect, Task,
};
use crate::runtime::Runtime;

type Inputs = Arc<dyn Fn(BusInput) + Send + Sync>;

const NAMES: Names = Names {
    link: "Kafka",
    broker: "Kafka",
    queue_full: "Kafka unreachable and its queue is full: dropping publishes until it is back",
};

bus_handle! {
    /// A running Kafka bus (see [`spawn_kafka_bus`]). Clones control the same
    /// bus; dropping every handle does not stop it (closing the commands
    /// channel or [`KafkaBus::stop`] does).
    KafkaBus, KafkaBusError;
    /// Resolves once every command the bus received before this call is
    /// done: publishes written by the partition leader (`acks=1`),
    /// subscriptions reading from their start offsets. Publishes queued
    /// while Kafka is unreachable are waited for; those dropped beyond the
    /// queue bound, refused by the broker, or lost with a broken
    /// connection, count as done. Fails with [`KafkaBusError::Timeout`] at
    /// `deadline`, or [`KafkaBusError::Stopped`].
    flush;
    /// Stop the bus: its connections are closed, pending flushes fail.
    stop;
}

/// Start the bus: one task executes the node's [`BusCommand`]s on Kafka and
/// reports [`BusInput`]s through `inputs` (called from the bus task: it
/// must not block). The bus connects at once and keeps reconnecting until
/// stopped; it stops when `commands` closes or on [`KafkaBus::stop`].
pub fn spawn_kafka_bus(
    runtime: Arc<dyn Runtime>,
    config: KafkaConfig,
    commands: async_channel::Receiver<BusCommand>,
    inputs: Arc<dyn Fn(BusInput) + Send + Sync>,
) -> KafkaBus {
    let (handle, control_rx) = Handle::new(runtime.clone());
    let (events_tx, events_rx) = async_channel::bounded(64);
    let task = BusTask {
        reconnect: Reconnect::new(&config.bus),
        runtime: runtime.clone(),
        config: Arc::new(config),
        inputs,
        events_tx,
        events_rx,
        subs: BTreeSet::new(),
        offsets: HashMap::new(),
        epoch: 0,
        live: None,
        queue: OutageQueue::default(),
        acks: Acks::default(),
        next_fetcher: 0,
    };
    let events = task.events_rx.clone();
    spawn_task(&runtime, task, events, commands, control_rx);
    KafkaBus { handle }
}

/// Where a node is in a partition: the next offset to read, and what the
/// last record it read looked like (its timestamp and the CRC-32C of its
/// value), to notice a broker that lost its log and started it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    next: i64,
    last: Option<(i64, u32)>,
}

fn signature(r: &socketio_core::cluster::kafka::Record) -> (i64, u32) {
    (r.timestamp, crc32c(r.value.as_deref().unwrap_or_default()))
}

/// A publish on its way to the producer.
struct Publish {
    seq: u64,
    topic: Str,
    payload: Bytes,
}

enum Event {
    Connected {
        epoch: u64,
        conn: Box<Conn>,
    },
    Failed {
        epoch: u64,
        error: KafkaBusError,
    },
    /// A live worker failed: the session is over.
    Broken {
        epoch: u64,
        reason: String,
    },
    /// A fetcher has the start offsets of every partition.
    Ready {
        epoch: u64,
        fetcher: u64,
    },
    Records {
        epoch: u64,
        fetcher: u64,
        topic: Str,
        partition: i32,
        position: Position,
        values: Vec<Bytes>,
    },
    Produced {
        epoch: u64,
        seqs: Vec<u64>,
    },
}

struct Fetcher {
    id: u64,
    /// Dropped with the fetcher: ends its task.
    _kill: async_channel::Sender<()>,
    ready: bool,
    /// Subscriptions acknowledged once ready.
    seqs: Vec<u64>,
}

/// Connected (or coming up).
struct Live {
    publish_tx: async_channel::Sender<Publish>,
    /// Kept to take back what the producer did not take when the link
    /// breaks.
    publish_rx: async_channel::Receiver<Publish>,
    /// Publishes handed to the producer and not yet acknowledged.
    sent: BTreeSet<u64>,
    _kill_producer: async_channel::Sender<()>,
    fetchers: HashMap<Str, Fetcher>,
    up: bool,
}

struct BusTask {
    runtime: Arc<dyn Runtime>,
    config: Arc<KafkaConfig>,
    inputs: Inputs,
    events_tx: async_channel::Sender<Event>,
    events_rx: async_channel::Receiver<Event>,
    /// Topics subscribed, restored on every reconnection.
    subs: BTreeSet<Str>,
    /// The next offset to read, per topic and partition: where a fetcher
    /// resumes after a reconnection.
    offsets: HashMap<Str, BTreeMap<i32, Position>>,
    /// Bumped when a session is dropped: older events are stale.
    epoch: u64,
    live: Option<Live>,
    queue: OutageQueue<Publish>,
    /// Commands received, and those not yet done.
    acks: Acks,
    reconnect: Reconnect,
    next_fetcher: u64,
}

impl Task for BusTask {
    type Event = Event;
    const NAME: &'static str = "Kafka";

    fn acks(&mut self) -> &mut Acks {
        &mut self.acks
    }

    fn connect_after(&self, delay: Duration) {
        let (runtime, config, epoch) = (self.runtime.clone(), self.config.clone(), self.epoch);
        // Each bootstrap broker is tried under the connect timeout.
        let brokers = self.config.bootstrap.len().clamp(1, 64) as u32;
        connect_later(
            &self.runtime,
            delay,
            self.config.bus.connect_timeout.saturating_mul(brokers),
            "connecting to Kafka",
            self.events_tx.clone(),
            async move { Conn::bootstrap(&runtime, &config).await },
            move |result| match result {
                Ok(conn) => Event::Connected {
                    epoch,
                    conn: Box::new(conn),
                },
                Err(error) => Event::Failed { epoch, error },
            },
        );
    }

    fn command(&mut self, command: BusCommand) {
        let seq = self.acks.next_seq();
        match command {
            BusCommand::Subscribe { channel, kind } => {
                if kind != ChannelKind::Plain {
                    tracing::warn!(%channel, ?kind, "Kafka has only plain channels (topics): subscription ignored");
                    return;
                }
                if self.subs.insert(channel.clone()) && self.live.is_some() {
                    self.acks.wait(seq);
                    self.start_fetcher(channel, Some(seq));
                }
            }
            BusCommand::Unsubscribe { channel, .. } => {
                if self.subs.remove(&channel) {
                    // A new subscription starts from the end again.
                    self.offsets.remove(&channel);
                    if let Some(live) = &mut self.live {
                        if let Some(f) = live.fetchers.remove(&channel) {
                            for s in f.seqs {
                                self.acks.ack(s);
                            }
                        }
                    }
                    self.maybe_up();
                }
            }
            BusCommand::Publish {
                channel, payload, ..
            } => {
                let publish = Publish {
                    seq,
                    topic: channel,
                    payload,
                };
                match &mut self.live {
                    Some(live) => {
                        // Unbounded: the core's command queue bounds it.
                        let _ = live.publish_tx.try_send(publish);
                        live.sent.insert(seq);
                        self.acks.wait(seq);
                    }
                    None => self.enqueue(publish),
                }
            }
            BusCommand::CountSubscribers { channel, .. } => {
                // Group-less consumers are invisible to the broker.
                (self.inputs)(BusInput::Subscribers { channel, count: 0 });
            }
            // Streams and keys are Redis's (the streams adapter); no format
            // asks them of Kafka.
            command => refuse_redis_only(command, &*self.inputs, &NAMES),
        }
    }

    async fn event(&mut self, event: Event) {
        match event {
            Event::Connected { epoch, conn } if epoch == self.epoch && self.live.is_none() => {
                self.on_connected(*conn)
            }
            Event::Failed { epoch, error } if epoch == self.epoch && self.live.is_none() => {
                let delay = self.reconnect.failed(&NAMES, &error);
                self.connect_after(delay);
            }
            Event::Broken { epoch, reason } if epoch == self.epoch => self.go_down(&reason),
            Event::Ready { epoch, fetcher } if epoch == self.epoch => {
                let Some(live) = &mut self.live else { return };
                let Some(f) = live.fetchers.values_mut().find(|f| f.id == fetcher) else {
                    return;
                };
                f.ready = true;
                for seq in std::mem::take(&mut f.seqs) {
                    self.acks.ack(seq);
                }
                self.maybe_up();
            }
            Event::Records {
                epoch,
                fetcher,
                topic,
                partition,
                position,
                values,
            } if epoch == self.epoch => {
                let current = self
                    .live
                    .as_ref()
                    .and_then(|l| l.fetchers.get(&topic))
                    .is_some_and(|f| f.id == fetcher);
                if !current {
                    return;
                }
                self.offsets
                    .entry(topic.clone())
                    .or_default()
                    .insert(partition, position);
                for payload in values {
                    (self.inputs)(BusInput::Message {
                        channel: topic.clone(),
                        payload,
                    });
                }
            }
            Event::Produced { epoch, seqs } if epoch == self.epoch => {
                if let Some(live) = &mut self.live {
                    for seq in &seqs {
                        live.sent.remove(seq);
                    }
                }
                for seq in seqs {
                    self.acks.ack(seq);
                }
            }
            _ => tracing::trace!("stale Kafka event ignored"),
        }
    }
}

impl BusTask {
    fn enqueue(&mut self, publish: Publish) {
        let len = publish.payload.len() + publish.topic.len();
        if !self
            .queue
            .admit(len, self.config.bus.max_queued_bytes, &NAMES)
        {
            return;
        }
        self.acks.wait(publish.seq);
        self.queue.push_back(publish, len);
    }

    fn start_fetcher(&mut self, topic: Str, seq: Option<u64>) {
        let Some(live) = &mut self.live else { return };
        self.next_fetcher += 1;
        let id = self.next_fetcher;
        let (kill_tx, kill_rx) = async_channel::bounded::<()>(1);
        let offsets = self.offsets.get(&topic).cloned().unwrap_or_default();
        live.fetchers.insert(
            topic.clone(),
            Fetcher {
                id,
                _kill: kill_tx,
                ready: false,
                seqs: seq.into_iter().collect(),
            },
        );
        let worker = FetchWorker {
            runtime: self.runtime.clone(),
            config: self.config.clone(),
            events: self.events_tx.clone(),
            epoch: self.epoch,
            id,
            topic,
            offsets: Arc::new(Mutex::new(offsets)),
        };
        self.runtime
            .spawn(Box::pin(until_killed(kill_rx, worker.run())));
    }

    fn on_connected(&mut self, conn: Conn) {
        tracing::debug!(broker = %conn.addr, "Kafka bootstrap broker connected");
        let (publish_tx, publish_rx) = async_channel::unbounded();
        let (kill_tx, kill_rx) = async_channel::bounded::<()>(1);
        let producer = Producer {
            runtime: self.runtime.clone(),
            config: self.config.clone(),
            bootstrap: conn,
            leaders: HashMap::new(),
            brokers: HashMap::new(),
            conns: HashMap::new(),
            next: 0,
        };
        self.runtime.spawn(Box::pin(until_killed(
            kill_rx,
            producer.run(publish_rx.clone(), self.events_tx.clone(), self.epoch),
        )));
        let mut live = Live {
            publish_tx,
            publish_rx,
            sent: BTreeSet::new(),
            _kill_producer: kill_tx,
            fetchers: HashMap::new(),
            up: false,
        };
        // What was queued while down, in order (already pending).
        for p in self.queue.drain() {
            live.sent.insert(p.seq);
            let _ = live.publish_tx.try_send(p);
        }
        self.live = Some(live);
        for topic in self.subs.clone() {
            self.start_fetcher(topic, None);
        }
        self.maybe_up();
    }

    fn maybe_up(&mut self) {
        let Some(live) = &mut self.live else { return };
        if live.up || !live.fetchers.values().all(|f| f.ready) {
            return;
        }
        live.up = true;
        let limit = self.config.bus.max_queued_bytes;
        self.reconnect
            .link_up(&NAMES, &mut self.queue, limit, &*self.inputs);
    }

    /// End the session (if any), report `Down` if it was up, reconnect.
    fn go_down(&mut self, reason: &str) {
        let Some(mut live) = self.live.take() else {
            return;
        };
        self.epoch += 1;
        // What the producer did not take goes back to the queue.
        while let Ok(p) = live.publish_rx.try_recv() {
            live.sent.remove(&p.seq);
            let len = p.payload.len() + p.topic.len();
            self.queue.push_back(p, len);
        }
        let lost = live.sent.len();
        for seq in &live.sent {
            self.acks.ack(*seq);
        }
        for f in live.fetchers.values() {
            for seq in &f.seqs {
                self.acks.ack(*seq);
            }
        }
        let delay = self
            .reconnect
            .link_lost(&NAMES, live.up, lost as u64, reason, &*self.inputs);
        self.connect_after(delay);
    }
}

/// Run `fut` until it ends or `kill` closes (or receives).
async fn until_killed(kill: async_channel::Receiver<()>, fut: impl Future<Output = ()>) {
    let fut = std::pin::pin!(fut);
    let killed = std::pin::pin!(kill.recv());
    let _ = select(fut, killed).await;
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn retriable(code: i16) -> bool {
    matches!(
        code,
        error_code::UNKNOWN_TOPIC_OR_PARTITION
            | error_code::LEADER_NOT_AVAILABLE
            | error_code::NOT_LEADER_OR_FOLLOWER
            | error_code::REQUEST_TIMED_OUT
    )
}

/// Writes publishes to partition 0 of their topic, at its leader.
struct Producer {
    runtime: Arc<dyn Runtime>,
    config: Arc<KafkaConfig>,
    /// For metadata.
    bootstrap: Conn,
    /// Leader of partition 0, per topic.
    leaders: HashMap<Str, i32>,
    brokers: HashMap<i32, (String, u16)>,
    conns: HashMap<i32, Conn>,
    next: usize,
}

impl Producer {
    async fn run(
        mut self,
        publishes: async_channel::Receiver<Publish>,
        events: async_channel::Sender<Event>,
        epoch: u64,
    ) {
        while let Ok(first) = publishes.recv().await {
            let mut bytes = first.payload.len();
            let mut batch = vec![first];
            while bytes < self.config.produce_batch_bytes {
                match publishes.try_recv() {
                    Ok(p) => {
                        bytes += p.payload.len();
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            let seqs: Vec<u64> = batch.iter().map(|p| p.seq).collect();
            // Topics in order of first appearance, messages in order.
            let mut topics: Vec<(Str, Vec<Bytes>)> = Vec::new();
            for p in batch {
                match topics.iter_mut().find(|(t, _)| *t == p.topic) {
                    Some((_, v)) => v.push(p.payload),
                    None => topics.push((p.topic, vec![p.payload])),
                }
            }
            for (topic, values) in topics {
                if let Err(e) = self.produce(&topic, &values).await {
                    let reason = format!("producing to {topic}: {e}");
                    let _ = events.send(Event::Broken { epoch, reason }).await;
                    return;
                }
            }
            let _ = events.send(Event::Produced { epoch, seqs }).await;
        }
    }

    /// Write `values` to the topic; broker refusals are logged (the
    /// messages are dropped), connection failures returned.
    async fn produce(&mut self, topic: &Str, values: &[Bytes]) -> Result<(), KafkaBusError> {
        let refs: Vec<&[u8]> = values.iter().map(|v| &v[..]).collect();
        let mut records = BytesMut::new();
        encode_record_batch(&mut records, now_ms(), &refs)?;
        let records = records.freeze();
        let mut last = error_code::NONE;
        // A missing topic or leader (an election, a broker that just
        // started) is waited for up to the I/O timeout.
        let deadline = Instant::now() + self.config.bus.io_timeout;
        let mut pause = self.config.bus.backoff_min;
        for attempt in 0u32.. {
            if attempt > 0 {
                if Instant::now() + pause > deadline {
                    break;
                }
                self.runtime.sleep_until(Instant::now() + pause).await;
                pause = (pause * 2).min(self.config.bus.backoff_max);
            }
            let Some(leader) = self.leader(topic).await? else {
                last = error_code::UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            };
            let timeout_ms = self.config.bus.io_timeout.as_millis().min(i32::MAX as u128) as i32;
            let conn = self.conn(leader).await?;
            let request = Request::Produce {
                acks: 1,
                timeout_ms,
                topic: topic.to_string(),
                partitions: vec![ProducePartition {
                    partition: 0,
                    records: records.clone(),
                }],
            };
            let response = match conn.request(&request, Duration::ZERO).await {
                Ok(Response::Produce(r)) => r,
                Ok(_) => return Err(KafkaBusError::Unsupported("Produce answered".into())),
                Err(e) => {
                    self.conns.remove(&leader);
                    return Err(e);
                }
            };
            let code = response
                .partitions
                .iter()
                .find(|(t, p)| t == &**topic && p.partition == 0)
                .map(|(_, p)| p.error_code)
                .unwrap_or(error_code::UNKNOWN_TOPIC_OR_PARTITION);
            if code == error_code::NONE {
                return Ok(());
            }
            last = code;
            if !retriable(code) {
                break;
            }
            self.leaders.remove(topic);
        }
        tracing::warn!(
            %topic,
            error_code = last,
            messages = values.len(),
            "Kafka refused a publish; messages dropped"
        );
        Ok(())
    }

    /// The leader of the topic's partition 0 (`None`: no such topic, or no
    /// leader now).
    async fn leader(&mut self, topic: &Str) -> Result<Option<i32>, KafkaBusError> {
        if let Some(l) = self.leaders.get(topic) {
            return Ok(Some(*l));
        }
        let request = Request::Metadata {
            topics: vec![topic.to_string()],
        };
        let Response::Metadata(md) = self.bootstrap.request(&request, Duration::ZERO).await? else {
            return Err(KafkaBusError::Unsupported("Metadata answered".into()));
        };
        for b in md.brokers {
            if let Ok(port) = u16::try_from(b.port) {
                self.brokers.insert(b.node_id, (b.host, port));
            }
        }
        let leader = md
            .topics
            .iter()
            .find(|t| t.name == **topic && t.error_code == error_code::NONE)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == 0))
            .map(|p| p.leader)
            .filter(|l| *l >= 0);
        match leader {
            Some(l) => {
                self.leaders.insert(topic.clone(), l);
            }
            None => {
                self.next += 1;
                if self.next % 20 == 1 {
                    tracing::warn!(%topic, "Kafka topic missing or without a leader (topics are not created: create it)");
                }
            }
        }
        Ok(leader)
    }

    async fn conn(&mut self, node: i32) -> Result<&mut Conn, KafkaBusError> {
        if !self.conns.contains_key(&node) {
            let Some((host, port)) = self.brokers.get(&node).cloned() else {
                return Err(KafkaBusError::Unsupported(format!(
                    "leader {node} is not among the brokers"
                )));
            };
            let conn = Conn::open(&self.runtime, &self.config, &host, port).await?;
            self.conns.insert(node, conn);
        }
        self.conns.get_mut(&node).ok_or(KafkaBusError::Stopped)
    }
}

/// Reads every partition of one topic.
struct FetchWorker {
    runtime: Arc<dyn Runtime>,
    config: Arc<KafkaConfig>,
    events: async_channel::Sender<Event>,
    epoch: u64,
    id: u64,
    topic: Str,
    /// Next offset per partition (shared by the per-leader loops).
    offsets: Arc<Mutex<BTreeMap<i32, Position>>>,
}

/// Why a round of fetching ended without a broken connection: look the
/// topic's leaders up again.
struct Stale(String);

impl FetchWorker {
    async fn run(self) {
        let mut ready = false;
        let mut validated = false;
        let mut pause = self.config.bus.backoff_min;
        let mut misses = 0u32;
        loop {
            match self.round(&mut ready, &mut validated).await {
                Err(e) => {
                    let reason = format!("fetching {}: {e}", self.topic);
                    let _ = self
                        .events
                        .send(Event::Broken {
                            epoch: self.epoch,
                            reason,
                        })
                        .await;
                    return;
                }
                Ok(Stale(why)) => {
                    misses += 1;
                    if misses == 1 || misses % 20 == 0 {
                        tracing::warn!(topic = %self.topic, "Kafka fetch: {why}; looking the topic up again");
                    } else {
                        tracing::debug!(topic = %self.topic, "Kafka fetch: {why}");
                    }
                }
            }
            self.runtime.sleep_until(Instant::now() + pause).await;
            pause = (pause * 2).min(self.config.bus.backoff_max);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Position>> {
        self.offsets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Metadata, start offsets, then fetch until a partition moves.
    async fn round(&self, ready: &mut bool, validated: &mut bool) -> Result<Stale, KafkaBusError> {
        let mut meta = Conn::bootstrap(&self.runtime, &self.config).await?;
        let request = Request::Metadata {
            topics: vec![self.topic.to_string()],
        };
        let Response::Metadata(md) = meta.request(&request, Duration::ZERO).await? else {
            return Err(KafkaBusError::Unsupported("Metadata answered".into()));
        };
        drop(meta);
        let Some(topic) = md.topics.iter().find(|t| t.name == *self.topic) else {
            return Ok(Stale("topic not in the metadata".into()));
        };
        if topic.error_code != error_code::NONE {
            return Ok(Stale(format!(
                "topic unavailable (error {}; topics are not created: create it)",
                topic.error_code
            )));
        }
        if topic.partitions.is_empty() {
            return Ok(Stale("topic without partitions".into()));
        }
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in &topic.partitions {
            if p.leader < 0 || p.error_code == error_code::LEADER_NOT_AVAILABLE {
                return Ok(Stale(format!("partition {} has no leader", p.partition)));
            }
            by_leader.entry(p.leader).or_default().push(p.partition);
        }
        // A connection per leader, and the start offsets.
        let mut loops = Vec::new();
        for (leader, partitions) in by_leader {
            let Some(b) = md.brokers.iter().find(|b| b.node_id == leader) else {
                return Ok(Stale(format!("leader {leader} is not among the brokers")));
            };
            let port = u16::try_from(b.port)
                .map_err(|_| KafkaBusError::Unsupported(format!("broker port {}", b.port)))?;
            let mut conn = Conn::open(&self.runtime, &self.config, &b.host, port).await?;
            let missing: Vec<i32> = {
                let offsets = self.lock();
                partitions
                    .iter()
                    .copied()
                    .filter(|p| !offsets.contains_key(p))
                    .collect()
            };
            if !missing.is_empty() {
                if let Some(stale) = self.list_offsets(&mut conn, &missing, LATEST).await? {
                    return Ok(stale);
                }
            }
            if !*validated {
                if let Some(stale) = self.validate(&mut conn, &partitions).await? {
                    return Ok(stale);
                }
            }
            loops.push(Box::pin(self.fetch_loop(conn, partitions)));
        }
        *validated = true;
        if !*ready {
            *ready = true;
            let _ = self
                .events
                .send(Event::Ready {
                    epoch: self.epoch,
                    fetcher: self.id,
                })
                .await;
        }
        let (result, _, _) = select_all(loops).await;
        result
    }

    /// After a reconnection: is the record before each remembered offset
    /// still the one this node read? A broker that lost its log (or a
    /// topic deleted and created again) starts its offsets from 0 again;
    /// then the node reads the new log from its start.
    async fn validate(
        &self,
        conn: &mut Conn,
        partitions: &[i32],
    ) -> Result<Option<Stale>, KafkaBusError> {
        let known: Vec<(i32, Position)> = {
            let offsets = self.lock();
            partitions
                .iter()
                .filter_map(|p| offsets.get(p).map(|o| (*p, *o)))
                .filter(|(_, o)| o.last.is_some() && o.next > 0)
                .collect()
        };
        if known.is_empty() {
            return Ok(None);
        }
        let part_max = self.config.fetch_max_bytes.min(i32::MAX as usize) as i32;
        let request = Request::Fetch {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: part_max,
            topic: self.topic.to_string(),
            partitions: known
                .iter()
                .map(|(p, o)| FetchPartition {
                    partition: *p,
                    offset: o.next - 1,
                    max_bytes: part_max,
                })
                .collect(),
        };
        let Response::Fetch(response) = conn.request(&request, Duration::ZERO).await? else {
            return Err(KafkaBusError::Unsupported("Fetch answered".into()));
        };
        let mut replaced = Vec::new();
        for (p, o) in &known {
            let Some((_, answer)) = response
                .partitions
                .iter()
                .find(|(t, a)| *t == *self.topic && a.partition == *p)
            else {
                continue;
            };
            let same = match answer.error_code {
                error_code::OFFSET_OUT_OF_RANGE => false,
                error_code::NONE
                    if answer.high_watermark >= 0 && answer.high_watermark < o.next =>
                {
                    false
                }
                error_code::NONE => {
                    let batches = decode_record_batches(&answer.records, &self.config.limits)?;
                    let seen = batches.iter().find_map(|b| match b {
                        Batch::Records { records, .. } => {
                            records.iter().find(|r| r.offset == o.next - 1)
                        }
                        Batch::Skipped { .. } => None,
                    });
                    // Not there (compacted, skipped): nothing to compare.
                    seen.map_or(true, |r| Some(signature(r)) == o.last)
                }
                _ => true,
            };
            if !same {
                replaced.push(*p);
            }
        }
        if replaced.is_empty() {
            return Ok(None);
        }
        tracing::warn!(topic = %self.topic, partitions = ?replaced, "Kafka log replaced while this node was away (the broker lost it?); reading it from the start");
        self.list_offsets(conn, &replaced, EARLIEST).await
    }

    /// Set the offsets of `partitions` to those at `timestamp`.
    async fn list_offsets(
        &self,
        conn: &mut Conn,
        partitions: &[i32],
        timestamp: i64,
    ) -> Result<Option<Stale>, KafkaBusError> {
        let request = Request::ListOffsets {
            topic: self.topic.to_string(),
            partitions: partitions.iter().map(|p| (*p, timestamp)).collect(),
        };
        let Response::ListOffsets(r) = conn.request(&request, Duration::ZERO).await? else {
            return Err(KafkaBusError::Unsupported("ListOffsets answered".into()));
        };
        let mut offsets = self.lock();
        for p in partitions {
            let answer = r
                .partitions
                .iter()
                .find(|(t, o)| *t == *self.topic && o.partition == *p);
            match answer {
                Some((_, o)) if o.error_code == error_code::NONE && o.offset >= 0 => {
                    offsets.insert(
                        *p,
                        Position {
                            next: o.offset,
                            last: None,
                        },
                    );
                }
                Some((_, o)) => {
                    return Ok(Some(Stale(format!(
                        "no offset for partition {p} (error {})",
                        o.error_code
                    ))))
                }
                None => return Ok(Some(Stale(format!("no offset for partition {p}")))),
            }
        }
        Ok(None)
    }

    /// Long-poll one leader for its partitions until one of them moves.
    async fn fetch_loop(
        &self,
        mut conn: Conn,
        partitions: Vec<i32>,
    ) -> Result<Stale, KafkaBusError> {
        let wait = self.config.fetch_wait;
        let part_max = self.config.fetch_max_bytes.min(i32::MAX as usize) as i32;
        loop {
            let request = {
                let offsets = self.lock();
                Request::Fetch {
                    max_wait_ms: wait.as_millis() as i32,
                    min_bytes: 1,
                    max_bytes: part_max,
                    topic: self.topic.to_string(),
                    partitions: partitions
                        .iter()
                        .map(|p| FetchPartition {
                            partition: *p,
                            offset: offsets.get(p).map_or(0, |o| o.next),
                            max_bytes: part_max,
                        })
                        .collect(),
                }
            };
            let Response::Fetch(response) = conn.request(&request, wait).await? else {
                return Err(KafkaBusError::Unsupported("Fetch answered".into()));
            };
            for (topic, p) in response.partitions {
                if topic != *self.topic || !partitions.contains(&p.partition) {
                    tracing::debug!(%topic, partition = p.partition, "Kafka fetch: partition not asked for, ignored");
                    continue;
                }
                let from = self.lock().get(&p.partition).map_or(0, |o| o.next);
                let behind = p.high_watermark >= 0 && p.high_watermark < from;
                match p.error_code {
                    error_code::NONE if !behind => {}
                    error_code::NONE | error_code::OFFSET_OUT_OF_RANGE => {
                        // The log was truncated or recreated: what it
                        // holds now is new to this node.
                        tracing::warn!(topic = %self.topic, partition = p.partition, high_watermark = p.high_watermark, "Kafka offset out of range; reading from the earliest offset");
                        if let Some(stale) = self
                            .list_offsets(&mut conn, &[p.partition], EARLIEST)
                            .await?
                        {
                            return Ok(stale);
                        }
                        continue;
                    }
                    code if retriable(code) => {
                        return Ok(Stale(format!(
                            "partition {} moved (error {code})",
                            p.partition
                        )))
                    }
                    code => return Ok(Stale(format!("partition {} error {code}", p.partition))),
                }
                if p.records.is_empty() {
                    continue;
                }
                let batches = decode_record_batches(&p.records, &self.config.limits)?;
                let mut next = from;
                let mut last = None;
                let mut values = Vec::new();
                for batch in batches {
                    next = next.max(batch.next_offset());
                    match batch {
                        Batch::Records { records, .. } => {
                            for r in records.into_iter().filter(|r| r.offset >= from) {
                                last = Some(signature(&r));
                                values.extend(r.value);
                            }
                        }
                        Batch::Skipped { reason, .. } => tracing::warn!(
                            topic = %self.topic,
                            partition = p.partition,
                            "Kafka records skipped: {reason}"
                        ),
                    }
                }
                if next == from {
                    // Records, but no whole batch past the offset: the
                    // broker cannot make progress with this fetch size.
                    return Err(KafkaBusError::Unsupported(format!(
                        "no whole record batch at offset {from} of partition {} in {} bytes",
                        p.partition,
                        p.records.len()
                    )));
                }
                let position = {
                    let mut offsets = self.lock();
                    let previous = offsets.get(&p.partition).and_then(|o| o.last);
                    let position = Position {
                        next,
                        last: last.or(previous),
                    };
                    offsets.insert(p.partition, position);
                    position
                };
                let event = Event::Records {
                    epoch: self.epoch,
                    fetcher: self.id,
                    topic: self.topic.clone(),
                    partition: p.partition,
                    position,
                    values,
                };
                if self.events.send(event).await.is_err() {
                    return Err(KafkaBusError::Stopped);
                }
            }
        }
    }
}
