//! The bus task: commands in, deliveries and confirms out, reconnection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::io::{ReadHalf, WriteHalf};
use futures_util::{pin_mut, select, AsyncReadExt, AsyncWriteExt, FutureExt};
use socketio_core::cluster::amqp::{
    encode_heartbeat, encode_method, encode_publish, AmqpDecoder, ClientMethod, CloseReason,
    FieldTable, FieldValue, Incoming, Method, Properties, REPLY_SUCCESS,
};
use socketio_core::cluster::{BusCommand, BusInput, ChannelKind};
use socketio_core::Str;

use super::config::AmqpConfig;
use super::conn::{self, Conn, CHANNEL};
use super::AmqpError;
use crate::bus::{
    bus_handle, connect_later, refuse_redis_only, send_unless_killed, spawn_task, weak_random_id,
    with_deadline, Acks, Handle, Names, OutageQueue, Reconnect, Task,
};
use crate::runtime::{BoxStream, Runtime};

type Inputs = Arc<dyn Fn(BusInput) + Send + Sync>;

const NAMES: Names = Names {
    link: "AMQP",
    broker: "the AMQP broker",
    queue_full:
        "AMQP broker unreachable and the queue is full: dropping publishes until it is back",
};

bus_handle! {
    /// A running AMQP bus (see [`spawn_amqp_bus`]). Clones control the same
    /// bus; dropping every handle does not stop it (closing the commands
    /// channel or [`AmqpBus::stop`] does).
    AmqpBus, AmqpError;
    /// Resolves once every command the bus received before this call was
    /// taken by the broker (publishes confirmed, subscriptions consuming),
    /// for write-only emitters that exit after publishing. Publishes
    /// queued while the broker is unreachable are waited for; those
    /// dropped beyond the queue bound, or lost with a broken connection,
    /// count as done. Fails with [`AmqpError::Timeout`] at `deadline`, or
    /// [`AmqpError::Stopped`].
    flush;
    /// Stop the bus: the connection is closed (politely when it is up),
    /// pending flushes fail.
    stop;
}

/// Start the bus: one task executes the node's [`BusCommand`]s on the
/// broker and reports [`BusInput`]s through `inputs` (called from the bus
/// task: it must not block). The bus connects at once and keeps
/// reconnecting until stopped; it stops when `commands` closes or on
/// [`AmqpBus::stop`].
pub fn spawn_amqp_bus(
    runtime: Arc<dyn Runtime>,
    config: AmqpConfig,
    commands: async_channel::Receiver<BusCommand>,
    inputs: Arc<dyn Fn(BusInput) + Send + Sync>,
) -> AmqpBus {
    let (handle, control_rx) = Handle::new(runtime.clone());
    let (events_tx, events_rx) = async_channel::bounded(16);
    // A clash only mixes two nodes' queues if both also share a channel
    // number: a weak random source is enough.
    let node_id = weak_random_id();
    let task = BusTask {
        reconnect: Reconnect::new(&config.bus),
        runtime: runtime.clone(),
        config: Arc::new(config),
        inputs,
        events_tx,
        events_rx,
        node_id,
        next_queue: 0,
        subs: BTreeMap::new(),
        epoch: 0,
        live: None,
        queue: OutageQueue::default(),
        acks: Acks::default(),
        properties: Arc::new(publish_properties()),
    };
    let events = task.events_rx.clone();
    spawn_task(&runtime, task, events, commands, control_rx);
    AmqpBus { handle }
}

// Moved through a channel of 16: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Event {
    /// Boxed: the decoder makes it large.
    Connected {
        epoch: u64,
        conn: Box<Conn>,
    },
    Failed {
        epoch: u64,
        error: AmqpError,
    },
    Item {
        epoch: u64,
        item: Incoming,
    },
    Closed {
        epoch: u64,
        error: AmqpError,
    },
}

/// The declaration (or deletion) whose `-ok` the broker owes, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Exchange,
    Queue,
    Bind,
    Consume,
    Delete,
}

struct Expect {
    reply: Reply,
    /// The command this reply completes.
    seq: Option<u64>,
    /// The last step of restoring a subscription.
    restore: bool,
}

/// A subscribed channel: its queue, whose name is also the consumer tag.
struct Sub {
    queue: String,
}

/// A publish kept while the broker is unreachable.
struct Queued {
    seq: u64,
    channel: Str,
    payload: Bytes,
}

struct Live {
    write: WriteHalf<BoxStream>,
    /// Dropped with `Live`: ends the reader task.
    _kill: async_channel::Sender<()>,
    out: BytesMut,
    fifo: VecDeque<Expect>,
    /// When the oldest owed reply is late.
    reply_deadline: Option<Instant>,
    /// Subscriptions not consuming again yet.
    restoring: usize,
    up: bool,
    frame_max: u32,
    /// Interval between our heartbeats (none when zero).
    heartbeat: Duration,
    next_heartbeat: Instant,
    /// Exchanges declared on this connection.
    declared: BTreeSet<Str>,
    /// Publisher-confirm sequence number of the last publish.
    publish_tag: u64,
    /// Publishes not confirmed yet: (tag, command).
    unconfirmed: VecDeque<(u64, u64)>,
    /// Deliveries to acknowledge (all up to this tag).
    ack_upto: Option<u64>,
}

struct BusTask {
    runtime: Arc<dyn Runtime>,
    config: Arc<AmqpConfig>,
    inputs: Inputs,
    events_tx: async_channel::Sender<Event>,
    events_rx: async_channel::Receiver<Event>,
    /// Names this node's queues.
    node_id: String,
    next_queue: u64,
    /// Subscriptions, restored on every reconnection.
    subs: BTreeMap<Str, Sub>,
    /// Bumped when a connection is dropped: older events are stale.
    epoch: u64,
    live: Option<Live>,
    queue: OutageQueue<Queued>,
    /// Commands received, and those not yet taken by the broker.
    acks: Acks,
    reconnect: Reconnect,
    /// What every publish carries.
    properties: Arc<Properties>,
}

/// kombu's message properties (aio-pika's differ only in sending no
/// content type and a message id).
fn publish_properties() -> Properties {
    Properties {
        content_type: Some("text/plain".into()),
        content_encoding: Some("utf-8".into()),
        headers: Some(Vec::new()),
        delivery_mode: Some(2),
        priority: Some(0),
        message_id: None,
    }
}

impl Task for BusTask {
    type Event = Event;
    const NAME: &'static str = "AMQP";
    const BATCH_EVENTS: bool = true;

    fn acks(&mut self) -> &mut Acks {
        &mut self.acks
    }

    fn timer(&self) -> Option<Instant> {
        let live = self.live.as_ref()?;
        let heartbeat = (!live.heartbeat.is_zero()).then_some(live.next_heartbeat);
        match (heartbeat, live.reply_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn connect_after(&self, delay: Duration) {
        let (runtime, config, epoch) = (self.runtime.clone(), self.config.clone(), self.epoch);
        connect_later(
            &self.runtime,
            delay,
            self.config.bus.connect_timeout,
            "connecting to the AMQP broker",
            self.events_tx.clone(),
            async move { conn::open(&runtime, &config).await },
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
        let properties = self.properties.clone();
        let properties = &*properties;
        let seq = self.acks.next_seq();
        match command {
            BusCommand::Subscribe { channel, kind } => {
                if kind != ChannelKind::Plain {
                    tracing::warn!(%channel, ?kind, "AMQP has plain channels only: subscribed as one");
                }
                if channel.len() > 255 {
                    tracing::warn!(
                        "AMQP exchange names are at most 255 bytes: subscription skipped"
                    );
                    return;
                }
                if self.subs.contains_key(&channel) {
                    return;
                }
                self.next_queue += 1;
                let queue = format!("socketio-rs.{}.{}", self.node_id, self.next_queue);
                if let Some(live) = &mut self.live {
                    declare_sub(live, &self.config, &channel, &queue, Some(seq), false);
                    self.acks.wait(seq);
                }
                self.subs.insert(channel, Sub { queue });
            }
            BusCommand::Unsubscribe { channel, .. } => {
                let Some(sub) = self.subs.remove(&channel) else {
                    return;
                };
                if let Some(live) = &mut self.live {
                    encode_method(
                        &mut live.out,
                        CHANNEL,
                        &ClientMethod::BasicCancel {
                            consumer_tag: &sub.queue,
                        },
                    );
                    // Not awaited: RabbitMQ may answer it after the
                    // queue.delete that follows.
                    encode_method(
                        &mut live.out,
                        CHANNEL,
                        &ClientMethod::QueueDelete { queue: &sub.queue },
                    );
                    live.expect(Reply::Delete, Some(seq), false, self.config.bus.io_timeout);
                    self.acks.wait(seq);
                }
            }
            BusCommand::Publish {
                channel, payload, ..
            } => {
                if payload.len() > self.config.max_message_bytes {
                    tracing::warn!(
                        %channel,
                        bytes = payload.len(),
                        limit = self.config.max_message_bytes,
                        "message too large for the AMQP bus: not published"
                    );
                    return;
                }
                if channel.len() > 255 {
                    tracing::warn!("AMQP exchange names are at most 255 bytes: not published");
                    return;
                }
                match &mut self.live {
                    Some(live) => {
                        live.publish(&self.config, &channel, &payload, seq, properties);
                        self.acks.wait(seq);
                    }
                    None => self.enqueue(seq, channel, payload),
                }
            }
            BusCommand::CountSubscribers { channel, .. } => {
                // AMQP cannot count a fanout's queues; the python format
                // never asks.
                (self.inputs)(BusInput::Subscribers { channel, count: 0 });
            }
            // Streams and keys are Redis's (the streams adapter); no format
            // asks them of AMQP.
            command => refuse_redis_only(command, &*self.inputs, &NAMES),
        }
    }

    async fn event(&mut self, event: Event) {
        let properties = self.properties.clone();
        let properties = &*properties;
        match event {
            Event::Connected { epoch, conn } if epoch == self.epoch && self.live.is_none() => {
                self.on_connected(*conn, properties)
            }
            Event::Failed { epoch, error } if epoch == self.epoch && self.live.is_none() => {
                let delay = self.reconnect.failed(&NAMES, &error);
                self.connect_after(delay);
            }
            Event::Item { epoch, item } if epoch == self.epoch => self.on_item(item),
            Event::Closed { epoch, error } if epoch == self.epoch => {
                self.go_down(&error.to_string())
            }
            _ => tracing::trace!("stale AMQP connection event ignored"),
        }
    }

    /// Write what is due, under a deadline.
    async fn write(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        if let Some(tag) = live.ack_upto.take() {
            encode_method(
                &mut live.out,
                CHANNEL,
                &ClientMethod::BasicAck {
                    delivery_tag: tag,
                    multiple: true,
                },
            );
        }
        if live.out.is_empty() {
            return;
        }
        let deadline = Instant::now() + self.config.bus.io_timeout;
        let buf = live.out.split();
        let write = &mut live.write;
        let result = with_deadline(
            &self.runtime,
            deadline,
            "writing to the AMQP broker",
            async {
                write.write_all(&buf).await.map_err(AmqpError::io)?;
                write.flush().await.map_err(AmqpError::io)
            },
        )
        .await;
        if let Err(e) = result {
            self.go_down(&e.to_string());
        }
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        let Some(live) = &mut self.live else { return };
        if live.reply_deadline.is_some_and(|d| now >= d) {
            return self.go_down("the broker did not answer in time");
        }
        if !live.heartbeat.is_zero() && now >= live.next_heartbeat {
            encode_heartbeat(&mut live.out);
            live.next_heartbeat = now + live.heartbeat;
            self.write().await;
        }
    }

    /// A polite `connection.close`, not waiting for its answer.
    async fn finish(&mut self) {
        let Some(live) = &mut self.live else { return };
        encode_method(
            &mut live.out,
            0,
            &ClientMethod::ConnectionClose(&CloseReason {
                reply_code: REPLY_SUCCESS,
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            }),
        );
        let deadline = Instant::now() + self.config.bus.io_timeout.min(Duration::from_secs(1));
        let buf = live.out.split();
        let write = &mut live.write;
        let _ = with_deadline(&self.runtime, deadline, "closing", async {
            write.write_all(&buf).await.map_err(AmqpError::io)?;
            write.flush().await.map_err(AmqpError::io)
        })
        .await;
        self.live = None;
    }
}

impl BusTask {
    fn enqueue(&mut self, seq: u64, channel: Str, payload: Bytes) {
        let len = payload.len() + channel.len();
        if !self
            .queue
            .admit(len, self.config.bus.max_queued_bytes, &NAMES)
        {
            return;
        }
        let queued = Queued {
            seq,
            channel,
            payload,
        };
        self.queue.push_back(queued, len);
        self.acks.wait(seq);
    }

    fn on_connected(&mut self, conn: Conn, properties: &Properties) {
        let (kill_tx, kill_rx) = async_channel::bounded::<()>(1);
        let (read, write) = conn.stream.split();
        let heartbeat = Duration::from_secs(conn.heartbeat as u64);
        self.runtime.spawn(Box::pin(reader(
            self.runtime.clone(),
            read,
            conn.decoder,
            self.epoch,
            heartbeat * 2,
            self.events_tx.clone(),
            kill_rx,
        )));
        let now = Instant::now();
        let mut live = Live {
            write,
            _kill: kill_tx,
            out: BytesMut::new(),
            fifo: VecDeque::new(),
            reply_deadline: None,
            restoring: 0,
            up: false,
            frame_max: conn.frame_max,
            heartbeat: heartbeat / 2,
            next_heartbeat: now + heartbeat / 2,
            declared: BTreeSet::new(),
            publish_tag: 0,
            unconfirmed: VecDeque::new(),
            ack_upto: None,
        };
        for (channel, sub) in &self.subs {
            declare_sub(&mut live, &self.config, channel, &sub.queue, None, true);
            live.restoring += 1;
        }
        // Then what was queued while down, in order.
        for q in self.queue.drain() {
            live.publish(&self.config, &q.channel, &q.payload, q.seq, properties);
        }
        let restoring = live.restoring;
        self.live = Some(live);
        tracing::debug!(
            subscriptions = restoring,
            "AMQP broker connected, restoring subscriptions"
        );
        if restoring == 0 {
            self.go_up();
        }
    }

    fn go_up(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        live.up = true;
        let limit = self.config.bus.max_queued_bytes;
        self.reconnect
            .link_up(&NAMES, &mut self.queue, limit, &*self.inputs);
    }

    /// Drop the link (if any), report `Down` if it was up, reconnect.
    fn go_down(&mut self, reason: &str) {
        let Some(live) = self.live.take() else {
            return;
        };
        self.epoch += 1;
        for e in &live.fifo {
            if let Some(seq) = e.seq {
                self.acks.ack(seq);
            }
        }
        let lost = live.unconfirmed.len();
        for (_, seq) in &live.unconfirmed {
            self.acks.ack(*seq);
        }
        let delay = self
            .reconnect
            .link_lost(&NAMES, live.up, lost as u64, reason, &*self.inputs);
        self.connect_after(delay);
    }

    fn on_item(&mut self, item: Incoming) {
        let Some(live) = &mut self.live else { return };
        match item {
            Incoming::Content {
                method: Method::BasicDeliver(d),
                body,
                ..
            } => {
                live.ack_upto = Some(d.delivery_tag);
                match self.subs.iter().find(|(_, s)| s.queue == d.consumer_tag) {
                    Some((channel, _)) => (self.inputs)(BusInput::Message {
                        channel: channel.clone(),
                        payload: body,
                    }),
                    None => tracing::debug!("AMQP delivery for a cancelled consumer skipped"),
                }
            }
            Incoming::Oversized {
                method: Method::BasicDeliver(d),
                size,
                ..
            } => {
                live.ack_upto = Some(d.delivery_tag);
                tracing::warn!(
                    size,
                    limit = self.config.max_message_bytes,
                    exchange = %d.exchange,
                    "AMQP message too large: skipped"
                );
            }
            Incoming::Content { .. } | Incoming::Oversized { .. } => {
                tracing::debug!("returned AMQP message ignored")
            }
            Incoming::Heartbeat => {}
            Incoming::Method { method, .. } => self.on_method(method),
        }
    }

    fn on_method(&mut self, method: Method) {
        tracing::trace!("AMQP method {method:?}");
        let Some(live) = &mut self.live else { return };
        let reply = match method {
            Method::BasicAck {
                delivery_tag,
                multiple,
            } => return self.confirm(delivery_tag, multiple, false),
            Method::BasicNack {
                delivery_tag,
                multiple,
            } => return self.confirm(delivery_tag, multiple, true),
            Method::ExchangeDeclareOk => Reply::Exchange,
            Method::QueueDeclareOk { .. } => Reply::Queue,
            Method::QueueBindOk => Reply::Bind,
            Method::BasicConsumeOk { .. } => Reply::Consume,
            Method::BasicCancelOk { .. } => return,
            Method::QueueDeleteOk { .. } => Reply::Delete,
            Method::BasicCancel { consumer_tag } => {
                if !self.subs.values().any(|s| s.queue == consumer_tag) {
                    return;
                }
                let reason = format!("the broker cancelled consumer {consumer_tag}");
                return self.go_down(&reason);
            }
            Method::ChannelFlow { active } => {
                encode_method(
                    &mut live.out,
                    CHANNEL,
                    &ClientMethod::ChannelFlowOk { active },
                );
                return;
            }
            Method::ConnectionBlocked { reason } => {
                tracing::warn!("the AMQP broker blocks publishes: {reason}");
                return;
            }
            Method::ConnectionUnblocked => {
                tracing::info!("the AMQP broker takes publishes again");
                return;
            }
            Method::ConnectionClose(reason) => {
                encode_method(&mut live.out, 0, &ClientMethod::ConnectionCloseOk);
                return self.go_down(&format!("connection closed by the broker: {reason}"));
            }
            Method::ChannelClose(reason) => {
                return self.go_down(&format!("channel closed by the broker: {reason}"));
            }
            other => {
                tracing::debug!("AMQP method ignored: {other:?}");
                return;
            }
        };
        let Some(front) = live.fifo.pop_front() else {
            return self.go_down(&format!("an answer to {reply:?} nobody asked for"));
        };
        if front.reply != reply {
            let reason = format!("the answer to {reply:?} where {:?}'s was due", front.reply);
            return self.go_down(&reason);
        }
        live.reply_deadline =
            (!live.fifo.is_empty()).then(|| Instant::now() + self.config.bus.io_timeout);
        if front.restore {
            live.restoring = live.restoring.saturating_sub(1);
        }
        if let Some(seq) = front.seq {
            self.acks.ack(seq);
        }
        if self
            .live
            .as_ref()
            .is_some_and(|l| !l.up && l.restoring == 0)
        {
            self.go_up();
        }
    }

    /// Publisher confirms up to `tag`.
    fn confirm(&mut self, tag: u64, multiple: bool, nack: bool) {
        let Some(live) = &mut self.live else { return };
        let mut done = Vec::new();
        while let Some(&(t, seq)) = live.unconfirmed.front() {
            if t > tag || (!multiple && t != tag) {
                break;
            }
            live.unconfirmed.pop_front();
            done.push(seq);
        }
        if nack {
            tracing::warn!(
                count = done.len(),
                "the AMQP broker refused publishes (basic.nack)"
            );
        }
        for seq in done {
            self.acks.ack(seq);
        }
    }
}

impl Live {
    fn expect(&mut self, reply: Reply, seq: Option<u64>, restore: bool, timeout: Duration) {
        if self.fifo.is_empty() {
            self.reply_deadline = Some(Instant::now() + timeout);
        }
        self.fifo.push_back(Expect {
            reply,
            seq,
            restore,
        });
    }

    fn declare_exchange(&mut self, config: &AmqpConfig, channel: &Str) {
        if self.declared.contains(channel) {
            return;
        }
        // kombu: Exchange(channel, type='fanout', durable=False); aio-pika:
        // declare_exchange(channel, FANOUT) (durable=False by default).
        // Neither auto-deletes.
        encode_method(
            &mut self.out,
            CHANNEL,
            &ClientMethod::ExchangeDeclare {
                exchange: channel,
                kind: "fanout",
                durable: false,
                auto_delete: false,
                arguments: &Vec::new(),
            },
        );
        self.expect(Reply::Exchange, None, false, config.bus.io_timeout);
        self.declared.insert(channel.clone());
    }

    fn publish(
        &mut self,
        config: &AmqpConfig,
        channel: &Str,
        payload: &[u8],
        seq: u64,
        properties: &Properties,
    ) {
        self.declare_exchange(config, channel);
        encode_publish(
            &mut self.out,
            CHANNEL,
            channel,
            "",
            properties,
            payload,
            self.frame_max,
        );
        self.publish_tag += 1;
        self.unconfirmed.push_back((self.publish_tag, seq));
    }
}

/// Exchange, queue, binding, consumer: the reply to the last completes
/// the command `seq`.
fn declare_sub(
    live: &mut Live,
    config: &AmqpConfig,
    channel: &Str,
    queue: &str,
    seq: Option<u64>,
    restore: bool,
) {
    live.declare_exchange(config, channel);
    let arguments: FieldTable = vec![(
        "x-expires".into(),
        FieldValue::I32(config.queue_expires_ms.min(i32::MAX as u32) as i32),
    )];
    encode_method(
        &mut live.out,
        CHANNEL,
        &ClientMethod::QueueDeclare {
            queue,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: &arguments,
        },
    );
    live.expect(Reply::Queue, None, false, config.bus.io_timeout);
    encode_method(
        &mut live.out,
        CHANNEL,
        &ClientMethod::QueueBind {
            queue,
            exchange: channel,
            routing_key: "",
            arguments: &Vec::new(),
        },
    );
    live.expect(Reply::Bind, None, false, config.bus.io_timeout);
    encode_method(
        &mut live.out,
        CHANNEL,
        &ClientMethod::BasicConsume {
            queue,
            consumer_tag: queue,
            no_ack: false,
            arguments: &Vec::new(),
        },
    );
    live.expect(Reply::Consume, seq, restore, config.bus.io_timeout);
}

/// Read the connection, decode, hand items to the bus task; a link silent
/// for `silence` (two heartbeat intervals; never when zero) is dead. Ends
/// on `kill`.
async fn reader(
    runtime: Arc<dyn Runtime>,
    mut read: ReadHalf<BoxStream>,
    mut decoder: AmqpDecoder,
    epoch: u64,
    silence: Duration,
    events: async_channel::Sender<Event>,
    kill: async_channel::Receiver<()>,
) {
    let send = |event: Event| send_unless_killed(&events, &kill, event);
    let mut buf = vec![0u8; 16 << 10];
    let error = 'read: loop {
        loop {
            match decoder.next() {
                Ok(Some(Incoming::Heartbeat)) => {}
                Ok(Some(item)) => {
                    if !send(Event::Item { epoch, item }).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => break 'read AmqpError::Protocol(e),
            }
        }
        let result = {
            let reading = read.read(&mut buf).fuse();
            let killed = kill.recv().fuse();
            let runtime = runtime.clone();
            let silent = async move {
                if silence.is_zero() {
                    std::future::pending::<()>().await
                } else {
                    runtime.sleep_until(Instant::now() + silence).await
                }
            }
            .fuse();
            pin_mut!(reading, killed, silent);
            select! {
                r = reading => r,
                _ = killed => return,
                _ = silent => break 'read AmqpError::Timeout("no heartbeat from the broker"),
            }
        };
        match result {
            Ok(0) => break AmqpError::Closed,
            Ok(n) => decoder.feed(&buf[..n]),
            Err(e) => break AmqpError::io(e),
        }
    };
    let _ = send(Event::Closed { epoch, error }).await;
}
