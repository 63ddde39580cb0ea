//! The bus task: commands in, envelopes out through the sink, envelopes
//! of subscribed channels in from the publisher, reconnection.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::io::{ReadHalf, WriteHalf};
use futures_util::{pin_mut, select, AsyncReadExt, AsyncWriteExt, FutureExt};
use socketio_core::cluster::python::zmq::{unwrap, wrap, Unwrapped};
use socketio_core::cluster::zmtp::{SocketType, ZmtpEvent, ZmtpSocket};
use socketio_core::cluster::{BusCommand, BusInput, BusLimits, ChannelKind};
use socketio_core::Str;

use super::config::ZmqConfig;
use super::link::{self, Link};
use super::ZmqError;
use crate::bus::{
    bus_handle, connect_later, refuse_redis_only, send_unless_killed, spawn_task, weak_random_id,
    with_deadline, Acks, Handle, Names, OutageQueue, Reconnect, Task,
};
use crate::runtime::{BoxStream, Runtime};

type Inputs = Arc<dyn Fn(BusInput) + Send + Sync>;

/// How often the probe is pushed again until it comes back.
const PROBE_EVERY: Duration = Duration::from_millis(200);

bus_handle! {
    /// A running ZeroMQ bus (see [`spawn_zmq_bus`]). Clones control the same
    /// bus; dropping every handle does not stop it (closing the commands
    /// channel or [`ZmqBus::stop`] does).
    ZmqBus, ZmqError;
    /// Resolves once every publish the bus received before this call was
    /// written to the broker's sink (for write-only emitters that exit
    /// after publishing), and every subscription is in effect (the bus is
    /// up). Publishes queued while the broker is unreachable
    /// are waited for; those dropped beyond the queue bound, or lost with
    /// a broken connection, count as done. Fails with
    /// [`ZmqError::Timeout`] at `deadline`, or [`ZmqError::Stopped`].
    flush;
    /// Stop the bus: its connections are closed (ZeroMQ has no goodbye),
    /// pending flushes fail.
    stop;
}

const NAMES: Names = Names {
    link: "ZeroMQ",
    broker: "the ZeroMQ broker",
    queue_full:
        "ZeroMQ broker unreachable and the queue is full: dropping publishes until it is back",
};

/// Start the bus: one task executes the node's [`BusCommand`]s on the
/// broker and reports [`BusInput`]s through `inputs` (called from the bus
/// task: it must not block). The bus connects at once and keeps
/// reconnecting until stopped; it stops when `commands` closes or on
/// [`ZmqBus::stop`].
pub fn spawn_zmq_bus(
    runtime: Arc<dyn Runtime>,
    config: ZmqConfig,
    commands: async_channel::Receiver<BusCommand>,
    inputs: Arc<dyn Fn(BusInput) + Send + Sync>,
) -> ZmqBus {
    let (handle, control_rx) = Handle::new(runtime.clone());
    let (events_tx, events_rx) = async_channel::bounded(16);
    // Tells our probes from other nodes': a weak source is enough.
    let node_id = weak_random_id();
    // A `type` python's listener skips (it keeps `message` only).
    let probe = Bytes::from(format!(
        "{{\"type\": \"socketio-rs.probe\", \"channel\": \"{node_id}\"}}"
    ));
    let limits = BusLimits {
        max_message_bytes: config.max_message_bytes,
        ..BusLimits::default()
    };
    let task = BusTask {
        reconnect: Reconnect::new(&config.bus),
        runtime: runtime.clone(),
        config: Arc::new(config),
        inputs,
        events_tx,
        events_rx,
        probe,
        limits,
        subs: BTreeSet::new(),
        epoch: 0,
        live: None,
        queue: OutageQueue::default(),
        acks: Acks::default(),
        waiting_up: Vec::new(),
    };
    let events = task.events_rx.clone();
    spawn_task(&runtime, task, events, commands, control_rx);
    ZmqBus { handle }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// PUSH to the broker's sink.
    Push,
    /// SUB on the broker's publisher.
    Sub,
}

enum Event {
    Connected {
        epoch: u64,
        push: Box<Link>,
        sub: Box<Link>,
    },
    Failed {
        epoch: u64,
        error: ZmqError,
    },
    Bytes {
        epoch: u64,
        side: Side,
        data: Bytes,
    },
    Closed {
        epoch: u64,
        side: Side,
        error: ZmqError,
    },
}

/// A publish kept while the broker is unreachable: its envelope.
struct Queued {
    seq: u64,
    frame: Bytes,
}

/// One open link.
struct Half {
    write: WriteHalf<BoxStream>,
    socket: ZmtpSocket,
    last_heard: Instant,
    next_ping: Instant,
}

impl Half {
    fn new(link: Link, now: Instant, heartbeat: Duration) -> (Half, ReadHalf<BoxStream>) {
        let (read, write) = link.stream.split();
        let half = Half {
            write,
            socket: link.socket,
            last_heard: now,
            next_ping: now + heartbeat,
        };
        (half, read)
    }

    /// Whether this link is pinged (ZMTP 3.1 and a heartbeat set).
    fn pinged(&self, heartbeat: Duration) -> bool {
        !heartbeat.is_zero() && self.socket.minor() == Some(1)
    }
}

struct Live {
    push: Half,
    sub: Half,
    /// Dropped with `Live`: ends the reader tasks.
    _kill: async_channel::Sender<()>,
    up: bool,
    /// When to push the probe again (while not up).
    probe_due: Instant,
    /// When a probe not back means the link is broken.
    probe_deadline: Instant,
    /// Commands written with the next write: done once it succeeds.
    writing: Vec<u64>,
}

struct BusTask {
    runtime: Arc<dyn Runtime>,
    config: Arc<ZmqConfig>,
    inputs: Inputs,
    events_tx: async_channel::Sender<Event>,
    events_rx: async_channel::Receiver<Event>,
    /// This node's probe envelope.
    probe: Bytes,
    limits: BusLimits,
    /// Channels whose envelopes are delivered.
    subs: BTreeSet<Str>,
    /// Bumped when the links are dropped: older events are stale.
    epoch: u64,
    live: Option<Live>,
    queue: OutageQueue<Queued>,
    acks: Acks,
    /// Subscriptions made while down: done at the next `Up`.
    waiting_up: Vec<u64>,
    reconnect: Reconnect,
}

impl Task for BusTask {
    type Event = Event;
    const NAME: &'static str = "ZeroMQ";
    const BATCH_EVENTS: bool = true;

    fn acks(&mut self) -> &mut Acks {
        &mut self.acks
    }

    fn timer(&self) -> Option<Instant> {
        let live = self.live.as_ref()?;
        let heartbeat = self.config.heartbeat;
        let mut next = (!live.up).then(|| live.probe_deadline.min(live.probe_due));
        for half in [&live.push, &live.sub] {
            if half.pinged(heartbeat) {
                let due = half.next_ping.min(half.last_heard + heartbeat * 3);
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }

    fn connect_after(&self, delay: Duration) {
        let (runtime, config, epoch) = (self.runtime.clone(), self.config.clone(), self.epoch);
        let timeout = config.bus.connect_timeout;
        let connect = async move {
            let limits = config.limits();
            let (host, sink, publisher) = (&config.host, config.sink_port, config.pub_port);
            let push = link::open(&runtime, host, sink, SocketType::Push, limits).await?;
            let sub = link::open(&runtime, host, publisher, SocketType::Sub, limits).await?;
            Ok((push, sub))
        };
        connect_later(
            &self.runtime,
            delay,
            timeout,
            "connecting to the ZeroMQ broker",
            self.events_tx.clone(),
            connect,
            move |result| match result {
                Ok((push, sub)) => Event::Connected {
                    epoch,
                    push: Box::new(push),
                    sub: Box::new(sub),
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
                    tracing::warn!(%channel, ?kind, "ZeroMQ has plain channels only: subscribed as one");
                }
                // Every link already receives everything (python's SUB
                // subscribes to all): the channel only selects. Done once
                // the bus is up: what is published from then on arrives.
                self.subs.insert(channel);
                if !self.live.as_ref().is_some_and(|l| l.up) {
                    self.acks.wait(seq);
                    self.waiting_up.push(seq);
                }
            }
            BusCommand::Unsubscribe { channel, .. } => {
                self.subs.remove(&channel);
            }
            BusCommand::Publish {
                channel, payload, ..
            } => {
                if payload.len() > self.config.max_message_bytes {
                    tracing::warn!(
                        %channel,
                        bytes = payload.len(),
                        limit = self.config.max_message_bytes,
                        "message too large for the ZeroMQ bus: not published"
                    );
                    return;
                }
                let frame = match wrap(&channel, &payload) {
                    Ok(frame) => frame,
                    Err(e) => {
                        tracing::warn!(%channel, "not published on the ZeroMQ bus: {e}");
                        return;
                    }
                };
                match &mut self.live {
                    Some(live) if live.up => {
                        live.push.socket.send(&[&frame]);
                        live.writing.push(seq);
                        self.acks.wait(seq);
                    }
                    _ => self.enqueue(seq, frame),
                }
            }
            BusCommand::CountSubscribers { channel, .. } => {
                // A PUSH/SUB broker does not say who listens; the python
                // format never asks.
                (self.inputs)(BusInput::Subscribers { channel, count: 0 });
            }
            // Streams and keys are Redis's (the streams adapter); no format
            // asks them of ZeroMQ.
            command => refuse_redis_only(command, &*self.inputs, &NAMES),
        }
    }

    async fn event(&mut self, event: Event) {
        match event {
            Event::Connected { epoch, push, sub } if epoch == self.epoch && self.live.is_none() => {
                self.on_connected(*push, *sub)
            }
            Event::Failed { epoch, error } if epoch == self.epoch && self.live.is_none() => {
                let delay = self.reconnect.failed(&NAMES, &error);
                self.connect_after(delay);
            }
            Event::Bytes { epoch, side, data } if epoch == self.epoch => self.on_bytes(side, &data),
            Event::Closed { epoch, side, error } if epoch == self.epoch => {
                self.go_down(&format!("{side:?} link: {error}"))
            }
            _ => tracing::trace!("stale ZeroMQ connection event ignored"),
        }
    }

    /// Write what both links owe, under a deadline; the commands written
    /// are then done.
    async fn write(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        let deadline = Instant::now() + self.config.bus.io_timeout;
        let mut result = Ok(());
        for half in [&mut live.push, &mut live.sub] {
            let mut out = Vec::new();
            while let Some(bytes) = half.socket.poll_transmit() {
                out.extend_from_slice(&bytes);
            }
            if out.is_empty() {
                continue;
            }
            let write = &mut half.write;
            result = with_deadline(
                &self.runtime,
                deadline,
                "writing to the ZeroMQ broker",
                async {
                    write.write_all(&out).await.map_err(ZmqError::io)?;
                    write.flush().await.map_err(ZmqError::io)
                },
            )
            .await;
            if result.is_err() {
                break;
            }
        }
        match result {
            Ok(()) => {
                for seq in std::mem::take(&mut live.writing) {
                    self.acks.ack(seq);
                }
            }
            Err(e) => self.go_down(&e.to_string()),
        }
    }

    async fn tick(&mut self) {
        self.check_timers();
        self.write().await;
    }

    /// ZeroMQ has no goodbye: the connections close.
    async fn finish(&mut self) {
        self.live = None;
    }
}

impl BusTask {
    fn enqueue(&mut self, seq: u64, frame: Bytes) {
        let len = frame.len();
        if !self
            .queue
            .admit(len, self.config.bus.max_queued_bytes, &NAMES)
        {
            return;
        }
        self.queue.push_back(Queued { seq, frame }, len);
        self.acks.wait(seq);
    }

    fn on_connected(&mut self, mut push: Link, mut sub: Link) {
        let (kill_tx, kill_rx) = async_channel::bounded::<()>(1);
        let now = Instant::now();
        let heartbeat = self.config.heartbeat;
        let early = [
            (Side::Push, std::mem::take(&mut push.early)),
            (Side::Sub, std::mem::take(&mut sub.early)),
        ];
        let (push, push_read) = Half::new(push, now, heartbeat);
        let (sub, sub_read) = Half::new(sub, now, heartbeat);
        for (side, read) in [(Side::Push, push_read), (Side::Sub, sub_read)] {
            self.runtime.spawn(Box::pin(reader(
                read,
                self.epoch,
                side,
                self.events_tx.clone(),
                kill_rx.clone(),
            )));
        }
        let mut live = Live {
            push,
            sub,
            _kill: kill_tx,
            up: false,
            probe_due: now + PROBE_EVERY,
            probe_deadline: now + self.config.bus.io_timeout,
            writing: Vec::new(),
        };
        live.push.socket.send(&[&self.probe]);
        self.live = Some(live);
        tracing::debug!("ZeroMQ broker connected, waiting for the probe to come back");
        for (side, events) in early {
            self.on_zmtp_events(side, events);
        }
    }

    fn on_bytes(&mut self, side: Side, data: &[u8]) {
        let Some(live) = &mut self.live else { return };
        let half = match side {
            Side::Push => &mut live.push,
            Side::Sub => &mut live.sub,
        };
        half.last_heard = Instant::now();
        if let Err(e) = half.socket.handle_bytes(data) {
            return self.go_down(&format!("{side:?} link: {e}"));
        }
        let mut events = Vec::new();
        while let Some(event) = half.socket.poll_event() {
            events.push(event);
        }
        self.on_zmtp_events(side, events);
    }

    fn on_zmtp_events(&mut self, side: Side, events: Vec<ZmtpEvent>) {
        for event in events {
            match (side, event) {
                (Side::Sub, ZmtpEvent::Message(parts)) => {
                    // pyzmq's recv() gives one frame at a time: so do we.
                    for part in parts {
                        self.on_frame(&part);
                    }
                }
                (_, ZmtpEvent::Oversized { bytes, .. }) => tracing::warn!(
                    bytes,
                    limit = self.config.max_message_bytes,
                    "ZeroMQ message too large: skipped"
                ),
                (_, ZmtpEvent::Pong(_)) => {}
                (side, other) => tracing::debug!(?side, "ZeroMQ event ignored: {other:?}"),
            }
        }
    }

    fn on_frame(&mut self, frame: &Bytes) {
        if *frame == self.probe {
            if self.live.as_ref().is_some_and(|l| !l.up) {
                self.go_up();
            }
            return;
        }
        match unwrap(frame, &self.limits) {
            Ok(Unwrapped::Message { channel, payload }) => match self.subs.get(channel.as_str()) {
                Some(channel) => (self.inputs)(BusInput::Message {
                    channel: channel.clone(),
                    payload,
                }),
                None => tracing::trace!(%channel, "ZeroMQ message of another channel"),
            },
            Ok(Unwrapped::Skipped) => tracing::trace!("ZeroMQ frame of another kind skipped"),
            Err(e) => tracing::debug!("ZeroMQ frame skipped: {e}"),
        }
    }

    fn go_up(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        live.up = true;
        // Publishes queued while down, in order.
        for q in self.queue.drain() {
            live.push.socket.send(&[&q.frame]);
            live.writing.push(q.seq);
        }
        for seq in std::mem::take(&mut self.waiting_up) {
            self.acks.ack(seq);
        }
        let limit = self.config.bus.max_queued_bytes;
        self.reconnect
            .link_up(&NAMES, &mut self.queue, limit, &*self.inputs);
    }

    /// Drop the links (if any), report `Down` if they were up, reconnect.
    fn go_down(&mut self, reason: &str) {
        let Some(live) = self.live.take() else {
            return;
        };
        self.epoch += 1;
        let lost = live.writing.len();
        for seq in live.writing {
            self.acks.ack(seq);
        }
        let delay = self
            .reconnect
            .link_lost(&NAMES, live.up, lost as u64, reason, &*self.inputs);
        self.connect_after(delay);
    }

    fn check_timers(&mut self) {
        let now = Instant::now();
        let heartbeat = self.config.heartbeat;
        let Some(live) = &mut self.live else { return };
        if !live.up {
            if now >= live.probe_deadline {
                return self.go_down("the broker did not relay the probe in time");
            }
            if now >= live.probe_due {
                live.push.socket.send(&[&self.probe]);
                live.probe_due = now + PROBE_EVERY;
            }
        }
        let mut silent = None;
        for (side, half) in [(Side::Push, &mut live.push), (Side::Sub, &mut live.sub)] {
            if !half.pinged(heartbeat) {
                continue;
            }
            if now >= half.last_heard + heartbeat * 3 {
                silent = Some(side);
                break;
            }
            if now >= half.next_ping {
                let ttl = (heartbeat * 3).as_millis() / 100;
                half.socket.ping(ttl.min(u16::MAX as u128) as u16, b"");
                half.next_ping = now + heartbeat;
            }
        }
        if let Some(side) = silent {
            self.go_down(&format!("{side:?} link silent for {:?}", heartbeat * 3));
        }
    }
}

/// Read one link and hand its bytes to the bus task. Ends on `kill`.
async fn reader(
    mut read: ReadHalf<BoxStream>,
    epoch: u64,
    side: Side,
    events: async_channel::Sender<Event>,
    kill: async_channel::Receiver<()>,
) {
    let mut buf = vec![0u8; 16 << 10];
    let error = loop {
        let result = {
            let reading = read.read(&mut buf).fuse();
            let killed = kill.recv().fuse();
            pin_mut!(reading, killed);
            select! {
                r = reading => r,
                _ = killed => return,
            }
        };
        match result {
            Ok(0) => break ZmqError::Closed,
            Ok(n) => {
                let data = Bytes::copy_from_slice(&buf[..n]);
                if !send_unless_killed(&events, &kill, Event::Bytes { epoch, side, data }).await {
                    return;
                }
            }
            Err(e) => break ZmqError::io(e),
        }
    };
    let _ = send_unless_killed(&events, &kill, Event::Closed { epoch, side, error }).await;
}
