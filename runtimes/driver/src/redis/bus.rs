//! The bus task: commands in, pub/sub and replies out, reconnection.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::io::{ReadHalf, WriteHalf};
use futures_util::{pin_mut, select, AsyncReadExt, AsyncWriteExt, FutureExt};
use socketio_core::cluster::resp::{
    command_len, encode_command, PubSubReply, RespDecoder, RespValue,
};
use socketio_core::cluster::{BusCommand, BusInput, ChannelKind};
use socketio_core::Str;

use super::config::RedisConfig;
use super::conn::{self, Conn};
use super::stream::{follow, parse_range};
use super::RedisError;
use crate::bus::{
    bus_handle, connect_later, send_unless_killed, spawn_task, with_deadline, Acks, Handle, Names,
    OutageQueue, Reconnect, Task,
};
use crate::runtime::{BoxStream, Runtime};

type Inputs = Arc<dyn Fn(BusInput) + Send + Sync>;

const NAMES: Names = Names {
    link: "Redis",
    broker: "Redis",
    queue_full: "Redis unreachable and its queue is full: dropping publishes until it is back",
};

/// Most channels per `SUBSCRIBE` when restoring subscriptions.
const RESTORE_CHUNK: usize = 128;

bus_handle! {
    /// A running Redis bus (see [`spawn_redis_bus`]). Clones control the same
    /// bus; dropping every handle does not stop it (closing the commands
    /// channel or [`RedisBus::stop`] does).
    RedisBus, RedisError;
    /// Resolves once every command the bus received before this call was
    /// acknowledged by Redis (publishes and counts answered, subscriptions
    /// confirmed), for write-only emitters that exit after publishing.
    /// Publishes queued while Redis is unreachable are waited for; those
    /// dropped beyond the queue bound, or lost with a broken connection,
    /// count as done. Fails with [`RedisError::Timeout`] at `deadline`, or
    /// [`RedisError::Stopped`].
    flush;
    /// Stop the bus: its connections are closed, pending flushes fail.
    stop;
}

/// Start the bus: one task executes the node's [`BusCommand`]s on Redis and
/// reports [`BusInput`]s through `inputs` (called from the bus task: it
/// must not block). The bus connects at once and keeps reconnecting until
/// stopped; it stops when `commands` closes or on [`RedisBus::stop`].
pub fn spawn_redis_bus(
    runtime: Arc<dyn Runtime>,
    config: RedisConfig,
    commands: async_channel::Receiver<BusCommand>,
    inputs: Arc<dyn Fn(BusInput) + Send + Sync>,
) -> RedisBus {
    let (handle, control_rx) = Handle::new(runtime.clone());
    let (events_tx, events_rx) = async_channel::bounded(16);
    let task = BusTask {
        reconnect: Reconnect::new(&config.bus),
        runtime: runtime.clone(),
        config: Arc::new(config),
        inputs,
        events_tx,
        events_rx,
        subs: BTreeSet::new(),
        epoch: 0,
        live: None,
        queue: OutageQueue::default(),
        acks: Acks::default(),
        follows: HashMap::new(),
    };
    let events = task.events_rx.clone();
    spawn_task(&runtime, task, events, commands, control_rx);
    RedisBus { handle }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Sub,
    Cmd,
}

enum Event {
    /// Boxed: the decoders make it large.
    Connected {
        epoch: u64,
        links: Box<(Conn, Conn)>,
    },
    Failed {
        epoch: u64,
        error: RedisError,
    },
    Value {
        epoch: u64,
        link: Link,
        value: RespValue,
    },
    Closed {
        epoch: u64,
        link: Link,
        error: RedisError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubOp {
    Subscribe,
    Unsubscribe,
    Ping,
}

/// A command on the subscriber link awaiting its confirmations.
struct SubPending {
    op: SubOp,
    kind: ChannelKind,
    /// Confirmations still due (one per channel).
    remaining: usize,
    seq: Option<u64>,
    /// Part of the restoration after a reconnection.
    restore: bool,
}

/// A command on the command link awaiting its reply.
enum CmdPending {
    /// `PUBLISH`, `SPUBLISH`, `SET`: no answer to the node.
    Publish {
        seq: u64,
    },
    Count {
        seq: u64,
        channel: Str,
        sharded: bool,
    },
    /// `XADD`: answered with its id.
    Append {
        seq: u64,
        token: u64,
    },
    /// `XRANGE`: answered with the entries; asked again after a
    /// reconnection (reading twice is harmless).
    Range {
        seq: u64,
        token: u64,
        command: Bytes,
    },
    /// `MULTI`, `GET`, `DEL` of a take: `+OK`, `+QUEUED`, `+QUEUED`.
    TakeStep,
    /// The `EXEC` of a take: answered with the value.
    Take {
        seq: u64,
        token: u64,
    },
    Ping,
}

/// What a queued command is, for its reply (or its answer when dropped).
#[derive(Clone)]
enum QueuedKind {
    Publish,
    Count(Str, bool),
    Append(u64),
    Range(u64),
    Take(u64),
}

/// A command kept while the broker is unreachable.
struct Queued {
    seq: u64,
    bytes: Bytes,
    kind: QueuedKind,
}

/// Both links up (or coming up).
struct Live {
    sub: WriteHalf<BoxStream>,
    cmd: WriteHalf<BoxStream>,
    /// Dropped with `Live`: ends both reader tasks.
    _kill: async_channel::Sender<()>,
    sub_out: BytesMut,
    cmd_out: BytesMut,
    sub_fifo: VecDeque<SubPending>,
    cmd_fifo: VecDeque<CmdPending>,
    /// Subscription confirmations due before `Up`.
    restoring: usize,
    restore_deadline: Instant,
    up: bool,
    next_ping: Instant,
    /// `PING`s sent and not answered, and the answer's deadline.
    pings: u8,
    ping_deadline: Option<Instant>,
}

struct BusTask {
    runtime: Arc<dyn Runtime>,
    config: Arc<RedisConfig>,
    inputs: Inputs,
    events_tx: async_channel::Sender<Event>,
    events_rx: async_channel::Receiver<Event>,
    /// Subscriptions to restore on every reconnection.
    subs: BTreeSet<(ChannelKind, Str)>,
    /// Bumped when a connection is dropped: older events are stale.
    epoch: u64,
    live: Option<Live>,
    queue: OutageQueue<Queued>,
    /// Commands received, and those not yet acknowledged.
    acks: Acks,
    /// Followed streams; dropping a sender ends its follower.
    follows: HashMap<Str, async_channel::Sender<()>>,
    reconnect: Reconnect,
}

fn sub_command(kind: ChannelKind, subscribe: bool) -> &'static [u8] {
    match (kind, subscribe) {
        (ChannelKind::Plain, true) => b"SUBSCRIBE",
        (ChannelKind::Pattern, true) => b"PSUBSCRIBE",
        (ChannelKind::Sharded, true) => b"SSUBSCRIBE",
        (ChannelKind::Plain, false) => b"UNSUBSCRIBE",
        (ChannelKind::Pattern, false) => b"PUNSUBSCRIBE",
        (ChannelKind::Sharded, false) => b"SUNSUBSCRIBE",
    }
}

fn count_args(channel: &Str, sharded: bool) -> [&[u8]; 3] {
    let sub: &[u8] = if sharded { b"SHARDNUMSUB" } else { b"NUMSUB" };
    [b"PUBSUB", sub, channel.as_bytes()]
}

impl Task for BusTask {
    type Event = Event;
    const NAME: &'static str = "Redis";

    fn acks(&mut self) -> &mut Acks {
        &mut self.acks
    }

    fn timer(&self) -> Option<Instant> {
        let live = self.live.as_ref()?;
        Some(if !live.up {
            live.restore_deadline
        } else {
            live.ping_deadline.unwrap_or(live.next_ping)
        })
    }

    fn connect_after(&self, delay: Duration) {
        let (runtime, config, epoch) = (self.runtime.clone(), self.config.clone(), self.epoch);
        let connect = async move {
            let target = conn::target(&runtime, &config).await?;
            let sub = conn::open(&runtime, &config, &target, false).await?;
            let cmd = conn::open(&runtime, &config, &target, true).await?;
            Ok((sub, cmd))
        };
        connect_later(
            &self.runtime,
            delay,
            self.config.bus.connect_timeout,
            "connecting to Redis",
            self.events_tx.clone(),
            connect,
            move |result| match result {
                Ok(links) => Event::Connected {
                    epoch,
                    links: Box::new(links),
                },
                Err(error) => Event::Failed { epoch, error },
            },
        );
    }

    fn command(&mut self, command: BusCommand) {
        let seq = self.acks.next_seq();
        match command {
            BusCommand::Subscribe { channel, kind } => {
                // Already subscribed: nothing to ask Redis.
                if self.subs.insert((kind, channel.clone())) {
                    self.send_sub(seq, kind, &channel, SubOp::Subscribe);
                }
            }
            BusCommand::Unsubscribe { channel, kind } => {
                if self.subs.remove(&(kind, channel.clone())) {
                    self.send_sub(seq, kind, &channel, SubOp::Unsubscribe);
                }
            }
            BusCommand::Publish {
                channel,
                payload,
                sharded,
            } => {
                let name: &[u8] = if sharded { b"SPUBLISH" } else { b"PUBLISH" };
                let args = [name, channel.as_bytes(), &payload];
                match &mut self.live {
                    Some(live) => {
                        encode_command(&mut live.cmd_out, &args);
                        live.cmd_fifo.push_back(CmdPending::Publish { seq });
                        self.acks.wait(seq);
                    }
                    None => self.enqueue(seq, &args, QueuedKind::Publish),
                }
            }
            BusCommand::CountSubscribers { channel, sharded } => {
                let args = count_args(&channel, sharded);
                match &mut self.live {
                    Some(live) => {
                        encode_command(&mut live.cmd_out, &args);
                        live.cmd_fifo.push_back(CmdPending::Count {
                            seq,
                            channel,
                            sharded,
                        });
                        self.acks.wait(seq);
                    }
                    None => {
                        let args = args.map(Bytes::copy_from_slice);
                        self.enqueue(seq, &args, QueuedKind::Count(channel, sharded));
                    }
                }
            }
            BusCommand::StreamAppend {
                stream,
                fields,
                max_len,
                token,
            } => {
                let max_len = max_len.map(|n| n.to_string());
                let mut args: Vec<&[u8]> = vec![b"XADD", stream.as_bytes()];
                if let Some(n) = &max_len {
                    args.extend([&b"MAXLEN"[..], b"~", n.as_bytes()]);
                }
                args.push(b"*");
                for (k, v) in &fields {
                    args.push(k);
                    args.push(v);
                }
                if fields.is_empty() {
                    // Redis needs one field at least.
                    (self.inputs)(BusInput::StreamAppended { token, id: None });
                    return;
                }
                self.send_cmd(seq, &args, QueuedKind::Append(token));
            }
            BusCommand::StreamRange {
                stream,
                start,
                end,
                count,
                token,
            } => {
                let count = count.map(|n| n.to_string());
                let mut args: Vec<&[u8]> = vec![
                    b"XRANGE",
                    stream.as_bytes(),
                    start.as_bytes(),
                    end.as_bytes(),
                ];
                if let Some(n) = &count {
                    args.extend([&b"COUNT"[..], n.as_bytes()]);
                }
                self.send_cmd(seq, &args, QueuedKind::Range(token));
            }
            BusCommand::SetKey { key, value, ttl } => {
                let ttl = ttl.map(|t| t.as_millis().max(1).to_string());
                let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), &value];
                if let Some(ms) = &ttl {
                    args.extend([&b"PX"[..], ms.as_bytes()]);
                }
                self.send_cmd(seq, &args, QueuedKind::Publish);
            }
            BusCommand::TakeKey { key, token } => {
                // GET and DEL in one transaction: GETDEL on any Redis.
                let mut bytes = BytesMut::new();
                encode_command(&mut bytes, &[&b"MULTI"[..]]);
                encode_command(&mut bytes, &[&b"GET"[..], key.as_bytes()]);
                encode_command(&mut bytes, &[&b"DEL"[..], key.as_bytes()]);
                encode_command(&mut bytes, &[&b"EXEC"[..]]);
                self.send_raw(seq, bytes.freeze(), QueuedKind::Take(token));
            }
            BusCommand::StreamFollow { stream, from } => {
                if self.follows.contains_key(&stream) {
                    return;
                }
                let (stop_tx, stop_rx) = async_channel::bounded(1);
                self.follows.insert(stream.clone(), stop_tx);
                self.runtime.spawn(Box::pin(follow(
                    self.runtime.clone(),
                    self.config.clone(),
                    stream,
                    from,
                    self.inputs.clone(),
                    stop_rx,
                )));
            }
            BusCommand::StreamUnfollow { stream } => {
                // Dropping the sender ends the follower.
                self.follows.remove(&stream);
            }
        }
    }

    async fn event(&mut self, event: Event) {
        match event {
            Event::Connected { epoch, links } if epoch == self.epoch && self.live.is_none() => {
                let (sub, cmd) = *links;
                self.on_connected(sub, cmd).await
            }
            Event::Failed { epoch, error } if epoch == self.epoch && self.live.is_none() => {
                let delay = self.reconnect.failed(&NAMES, &error);
                self.connect_after(delay);
            }
            Event::Value { epoch, link, value } if epoch == self.epoch => {
                self.on_value(link, value)
            }
            Event::Closed { epoch, link, error } if epoch == self.epoch => {
                let link = if link == Link::Sub {
                    "subscriber"
                } else {
                    "command"
                };
                self.go_down(&format!("{link} connection: {error}"));
            }
            _ => tracing::trace!("stale Redis connection event ignored"),
        }
    }

    /// Write what the commands produced, each link under a deadline.
    async fn write(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        let deadline = Instant::now() + self.config.bus.io_timeout;
        let mut result = Ok(());
        for (out, half) in [
            (&mut live.sub_out, &mut live.sub),
            (&mut live.cmd_out, &mut live.cmd),
        ] {
            if out.is_empty() {
                continue;
            }
            let buf = out.split();
            result = with_deadline(&self.runtime, deadline, "writing to Redis", async {
                half.write_all(&buf).await.map_err(RedisError::io)?;
                half.flush().await.map_err(RedisError::io)
            })
            .await;
            if result.is_err() {
                break;
            }
        }
        if let Err(e) = result {
            self.go_down(&e.to_string());
        }
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        let Some(live) = &mut self.live else { return };
        if !live.up {
            if now >= live.restore_deadline {
                self.go_down("subscriptions not confirmed in time");
            }
            return;
        }
        if let Some(deadline) = live.ping_deadline {
            if now >= deadline {
                self.go_down("no answer to PING in time");
            }
            return;
        }
        if now >= live.next_ping {
            encode_command(&mut live.sub_out, &[b"PING"]);
            live.sub_fifo.push_back(SubPending {
                op: SubOp::Ping,
                kind: ChannelKind::Plain,
                remaining: 1,
                seq: None,
                restore: false,
            });
            encode_command(&mut live.cmd_out, &[b"PING"]);
            live.cmd_fifo.push_back(CmdPending::Ping);
            live.pings = 2;
            live.ping_deadline = Some(now + self.config.bus.io_timeout);
            live.next_ping = now + self.config.ping_interval;
            self.write().await;
        }
    }
}

impl BusTask {
    /// A command on the command link: sent now, or queued while down.
    fn send_cmd(&mut self, seq: u64, args: &[&[u8]], kind: QueuedKind) {
        let mut bytes = BytesMut::with_capacity(command_len(args));
        encode_command(&mut bytes, args);
        self.send_raw(seq, bytes.freeze(), kind);
    }

    fn send_raw(&mut self, seq: u64, bytes: Bytes, kind: QueuedKind) {
        match &mut self.live {
            Some(live) => {
                live.cmd_out.extend_from_slice(&bytes);
                push_pending(&mut live.cmd_fifo, seq, kind, &bytes);
                self.acks.wait(seq);
            }
            None => self.enqueue_bytes(seq, bytes, kind),
        }
    }

    /// (Un)subscribe now if connected; otherwise the remembered set is
    /// restored on connection, and the command is done.
    fn send_sub(&mut self, seq: u64, kind: ChannelKind, channel: &Str, op: SubOp) {
        if let Some(live) = &mut self.live {
            let args = [
                sub_command(kind, op == SubOp::Subscribe),
                channel.as_bytes(),
            ];
            encode_command(&mut live.sub_out, &args);
            live.sub_fifo.push_back(SubPending {
                op,
                kind,
                remaining: 1,
                seq: Some(seq),
                restore: false,
            });
            self.acks.wait(seq);
        }
    }

    fn enqueue<A: AsRef<[u8]>>(&mut self, seq: u64, args: &[A], kind: QueuedKind) {
        let mut bytes = BytesMut::with_capacity(command_len(args));
        encode_command(&mut bytes, args);
        self.enqueue_bytes(seq, bytes.freeze(), kind);
    }

    fn enqueue_bytes(&mut self, seq: u64, bytes: Bytes, kind: QueuedKind) {
        let len = bytes.len();
        if !self
            .queue
            .admit(len, self.config.bus.max_queued_bytes, &NAMES)
        {
            // Whoever waits for an answer gets a failure now.
            match kind {
                QueuedKind::Append(token) => {
                    (self.inputs)(BusInput::StreamAppended { token, id: None })
                }
                QueuedKind::Range(token) => (self.inputs)(BusInput::StreamRange {
                    token,
                    entries: None,
                }),
                QueuedKind::Take(token) => (self.inputs)(BusInput::KeyTaken { token, value: None }),
                QueuedKind::Publish | QueuedKind::Count(..) => {}
            }
            return;
        }
        self.queue.push_back(Queued { seq, bytes, kind }, len);
        self.acks.wait(seq);
    }

    async fn on_connected(&mut self, sub: Conn, cmd: Conn) {
        let (kill_tx, kill_rx) = async_channel::bounded::<()>(1);
        let (sub_read, sub_write) = sub.stream.split();
        let (cmd_read, cmd_write) = cmd.stream.split();
        for (read, decoder, link) in [
            (sub_read, sub.decoder, Link::Sub),
            (cmd_read, cmd.decoder, Link::Cmd),
        ] {
            self.runtime.spawn(Box::pin(reader(
                read,
                decoder,
                self.epoch,
                link,
                self.events_tx.clone(),
                kill_rx.clone(),
            )));
        }
        let now = Instant::now();
        let mut live = Live {
            sub: sub_write,
            cmd: cmd_write,
            _kill: kill_tx,
            sub_out: BytesMut::new(),
            cmd_out: BytesMut::new(),
            sub_fifo: VecDeque::new(),
            cmd_fifo: VecDeque::new(),
            restoring: 0,
            restore_deadline: now + self.config.bus.io_timeout,
            up: false,
            next_ping: now + self.config.ping_interval,
            pings: 0,
            ping_deadline: None,
        };
        // Restore the subscriptions, a few channels per command.
        let subs: Vec<&(ChannelKind, Str)> = self.subs.iter().collect();
        for group in subs.chunk_by(|a, b| a.0 == b.0) {
            for chunk in group.chunks(RESTORE_CHUNK) {
                let kind = chunk[0].0;
                let mut args: Vec<&[u8]> = vec![sub_command(kind, true)];
                args.extend(chunk.iter().map(|(_, c)| str::as_bytes(c)));
                encode_command(&mut live.sub_out, &args);
                live.sub_fifo.push_back(SubPending {
                    op: SubOp::Subscribe,
                    kind,
                    remaining: chunk.len(),
                    seq: None,
                    restore: true,
                });
                live.restoring += chunk.len();
            }
        }
        // Then what was queued while down, in order.
        for q in self.queue.drain() {
            live.cmd_out.extend_from_slice(&q.bytes);
            push_pending(&mut live.cmd_fifo, q.seq, q.kind, &q.bytes);
        }
        let restoring = live.restoring;
        self.live = Some(live);
        tracing::debug!(
            subscriptions = restoring,
            "Redis connected, restoring subscriptions"
        );
        if restoring == 0 {
            self.go_up();
        }
        self.write().await;
    }

    fn go_up(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        live.up = true;
        live.next_ping = Instant::now() + self.config.ping_interval;
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
        for p in &live.sub_fifo {
            if let Some(seq) = p.seq {
                self.acks.ack(seq);
            }
        }
        let mut lost = 0u64;
        let mut again = Vec::new();
        for p in live.cmd_fifo {
            match p {
                CmdPending::Publish { seq } => {
                    lost += 1;
                    self.acks.ack(seq);
                }
                // Asking again is harmless: counts are kept.
                CmdPending::Count {
                    seq,
                    channel,
                    sharded,
                } => {
                    let args = count_args(&channel, sharded);
                    let mut bytes = BytesMut::new();
                    encode_command(&mut bytes, &args);
                    again.push(Queued {
                        seq,
                        bytes: bytes.freeze(),
                        kind: QueuedKind::Count(channel, sharded),
                    });
                }
                CmdPending::Range {
                    seq,
                    token,
                    command,
                } => again.push(Queued {
                    seq,
                    bytes: command,
                    kind: QueuedKind::Range(token),
                }),
                // Not sent again: the entry may have been added, or the
                // key taken.
                CmdPending::Append { seq, token } => {
                    lost += 1;
                    (self.inputs)(BusInput::StreamAppended { token, id: None });
                    self.acks.ack(seq);
                }
                CmdPending::Take { seq, token } => {
                    (self.inputs)(BusInput::KeyTaken { token, value: None });
                    self.acks.ack(seq);
                }
                CmdPending::TakeStep | CmdPending::Ping => {}
            }
        }
        for q in again.into_iter().rev() {
            let len = q.bytes.len();
            self.queue.push_front(q, len);
        }
        let delay = self
            .reconnect
            .link_lost(&NAMES, live.up, lost, reason, &*self.inputs);
        self.connect_after(delay);
    }

    fn on_value(&mut self, link: Link, value: RespValue) {
        match link {
            Link::Sub => self.on_sub_value(value),
            Link::Cmd => self.on_cmd_value(value),
        }
    }

    fn deliver(&self, channel: Bytes, payload: Bytes) {
        match Str::try_from(channel) {
            Ok(channel) => (self.inputs)(BusInput::Message { channel, payload }),
            Err(_) => tracing::warn!("Redis message on a channel that is not UTF-8 skipped"),
        }
    }

    fn on_sub_value(&mut self, value: RespValue) {
        match PubSubReply::from_value(&value) {
            Some(PubSubReply::Message { channel, payload })
            | Some(PubSubReply::SMessage { channel, payload })
            | Some(PubSubReply::PMessage {
                channel, payload, ..
            }) => self.deliver(channel, payload),
            Some(PubSubReply::Subscribed { kind, .. }) => self.confirm(SubOp::Subscribe, kind),
            Some(PubSubReply::Unsubscribed { kind, .. }) => self.confirm(SubOp::Unsubscribe, kind),
            Some(PubSubReply::Pong(_)) => self.confirm(SubOp::Ping, ChannelKind::Plain),
            None => match &value {
                // PING before any subscription: a plain reply.
                RespValue::Simple(s) if &s[..] == b"PONG" => {
                    self.confirm(SubOp::Ping, ChannelKind::Plain)
                }
                // An error answers a whole command (an unknown
                // SSUBSCRIBE before Redis 7, a refused pattern).
                RespValue::Error(e) => {
                    tracing::warn!(
                        "Redis refused a subscription: {}",
                        String::from_utf8_lossy(e)
                    );
                    let Some(live) = &mut self.live else { return };
                    if let Some(p) = live.sub_fifo.pop_front() {
                        if p.restore {
                            live.restoring = live.restoring.saturating_sub(p.remaining);
                        }
                        if p.op == SubOp::Ping {
                            live.pings = live.pings.saturating_sub(1);
                        }
                        if let Some(seq) = p.seq {
                            self.acks.ack(seq);
                        }
                        self.maybe_up();
                    }
                }
                other => {
                    let reason =
                        format!("unexpected reply on the subscriber connection: {other:?}");
                    self.go_down(&reason)
                }
            },
        }
    }

    /// One confirmation for the oldest subscriber-link command.
    fn confirm(&mut self, op: SubOp, kind: ChannelKind) {
        let Some(live) = &mut self.live else { return };
        let matches = live
            .sub_fifo
            .front()
            .is_some_and(|p| p.op == op && (op == SubOp::Ping || p.kind == kind));
        if !matches {
            // E.g. a shard channel unsubscribed by a cluster.
            tracing::debug!(?op, ?kind, "unsolicited Redis pub/sub confirmation ignored");
            return;
        }
        let Some(front) = live.sub_fifo.front_mut() else {
            return;
        };
        front.remaining -= 1;
        if front.restore {
            live.restoring = live.restoring.saturating_sub(1);
        }
        if front.remaining > 0 {
            return;
        }
        let done = live.sub_fifo.pop_front();
        if op == SubOp::Ping {
            live.pings = live.pings.saturating_sub(1);
            if live.pings == 0 {
                live.ping_deadline = None;
            }
        }
        if let Some(seq) = done.and_then(|p| p.seq) {
            self.acks.ack(seq);
        }
        self.maybe_up();
    }

    fn maybe_up(&mut self) {
        if self
            .live
            .as_ref()
            .is_some_and(|l| !l.up && l.restoring == 0)
        {
            self.go_up();
        }
    }

    fn on_cmd_value(&mut self, value: RespValue) {
        let Some(live) = &mut self.live else { return };
        let Some(front) = live.cmd_fifo.pop_front() else {
            let reason = format!("reply nobody asked for: {value:?}");
            return self.go_down(&reason);
        };
        match front {
            CmdPending::Publish { seq } => {
                if let RespValue::Error(e) = &value {
                    tracing::warn!("Redis refused a publish: {}", String::from_utf8_lossy(e));
                }
                self.acks.ack(seq);
            }
            CmdPending::Count { seq, channel, .. } => {
                let count = match &value {
                    RespValue::Array(items) if items.len() == 2 => items[1].as_integer(),
                    _ => None,
                };
                let count = match count.and_then(|n| u64::try_from(n).ok()) {
                    Some(n) => n,
                    None => {
                        // The node waits for an answer: zero, logged.
                        tracing::warn!(%channel, "Redis could not count subscribers: {value:?}");
                        0
                    }
                };
                (self.inputs)(BusInput::Subscribers { channel, count });
                self.acks.ack(seq);
            }
            CmdPending::Append { seq, token } => {
                let id = match &value {
                    RespValue::Bulk(b) => Str::try_from(b.clone()).ok(),
                    _ => None,
                };
                if id.is_none() {
                    tracing::warn!("Redis refused a stream entry: {value:?}");
                }
                (self.inputs)(BusInput::StreamAppended { token, id });
                self.acks.ack(seq);
            }
            CmdPending::Range { seq, token, .. } => {
                let entries = parse_range(&value);
                if entries.is_none() {
                    tracing::warn!("Redis could not read a stream range: {value:?}");
                }
                (self.inputs)(BusInput::StreamRange { token, entries });
                self.acks.ack(seq);
            }
            CmdPending::TakeStep => {
                if value.is_error() {
                    // EXEC then fails with EXECABORT: answered there.
                    tracing::warn!("Redis refused part of a key take: {value:?}");
                }
            }
            CmdPending::Take { seq, token } => {
                let value = match &value {
                    // [GET's reply, DEL's count]; nil when aborted.
                    RespValue::Array(items) => match items.first() {
                        Some(RespValue::Bulk(b)) => Some(b.clone()),
                        Some(RespValue::Null) => None,
                        _ => {
                            tracing::warn!("Redis could not take a key: {value:?}");
                            None
                        }
                    },
                    other => {
                        tracing::warn!("Redis could not take a key: {other:?}");
                        None
                    }
                };
                (self.inputs)(BusInput::KeyTaken { token, value });
                self.acks.ack(seq);
            }
            CmdPending::Ping => {
                live.pings = live.pings.saturating_sub(1);
                if live.pings == 0 {
                    live.ping_deadline = None;
                }
            }
        }
    }
}

/// What the command link owes for a command of `kind` (`bytes`: the
/// command, kept to ask a range again).
fn push_pending(fifo: &mut VecDeque<CmdPending>, seq: u64, kind: QueuedKind, bytes: &Bytes) {
    match kind {
        QueuedKind::Publish => fifo.push_back(CmdPending::Publish { seq }),
        QueuedKind::Count(channel, sharded) => fifo.push_back(CmdPending::Count {
            seq,
            channel,
            sharded,
        }),
        QueuedKind::Append(token) => fifo.push_back(CmdPending::Append { seq, token }),
        QueuedKind::Range(token) => fifo.push_back(CmdPending::Range {
            seq,
            token,
            command: bytes.clone(),
        }),
        QueuedKind::Take(token) => {
            fifo.extend([
                CmdPending::TakeStep,
                CmdPending::TakeStep,
                CmdPending::TakeStep,
            ]);
            fifo.push_back(CmdPending::Take { seq, token });
        }
    }
}

/// Read one link, decode, hand values to the bus task; ends on `kill`.
async fn reader(
    mut read: ReadHalf<BoxStream>,
    mut decoder: RespDecoder,
    epoch: u64,
    link: Link,
    events: async_channel::Sender<Event>,
    kill: async_channel::Receiver<()>,
) {
    let send = |event: Event| send_unless_killed(&events, &kill, event);
    let mut buf = vec![0u8; 16 << 10];
    let error = 'read: loop {
        loop {
            match decoder.next() {
                Ok(Some(value)) => {
                    if !send(Event::Value { epoch, link, value }).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => break 'read RedisError::Protocol(e),
            }
        }
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
            Ok(0) => break RedisError::Closed,
            Ok(n) => decoder.feed(&buf[..n]),
            Err(e) => break RedisError::io(e),
        }
    };
    let _ = send(Event::Closed { epoch, link, error }).await;
}
