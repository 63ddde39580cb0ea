//! Embedding the sans-IO Socket.IO server in your own event loop.
//!
//! `socketio-core` does no IO: it never touches a socket, a clock or a
//! thread. This example drives its [`ServerEndpoint`] from the plainest loop
//! there is: one thread, a non-blocking `std::net::TcpListener`, non-blocking
//! `TcpStream`s, and a short sleep when nothing happened. No async runtime,
//! no `mio`, no `epoll`: whatever loop you already have (a game loop, an
//! embedded main loop, a GUI's idle callback, your own `poll(2)` wrapper) can
//! host a Socket.IO server the same way.
//!
//! ```sh
//! cargo run --release --example custom_event_loop -- --port 3000 [--parser json|msgpack] [--redis redis://127.0.0.1:6379]
//! ```
//!
//! It prints `listening on PORT` and serves the interop echo contract
//! (`tests/interop/README.md`) on the namespaces `/` and `/custom`:
//! - on connect it emits `auth` with the client's auth (`{}` when none);
//!   auth `{"reject":true}` is refused with `rejected by server`;
//! - `echo(...args)` emits `echo-back(...args)` and acks with the same args;
//! - `ask(token)` emits `question(token, <bytes 09 08 07>)` asking for an
//!   ack, and acks `ask` with the client's answer;
//! - `shout(...args)` emits `shout-back(...args)` to the whole namespace;
//! - `disconnect-me` disconnects the socket from the server side.
//!
//! # The contract between the loop and the core
//! The loop owns the sockets and the clock; the core owns the protocol.
//! They meet through five inputs and four outputs:
//! - inputs: [`ServerEndpoint::handle_connection`] (a socket was
//!   accepted), [`ServerEndpoint::handle_read`] (bytes arrived),
//!   [`ServerEndpoint::handle_eof`] (the peer closed),
//!   [`ServerEndpoint::handle_timeout`] (the deadline passed), and the
//!   application's own calls through [`ServerEndpoint::socket`] followed by
//!   [`ServerEndpoint::pump`];
//! - outputs, drained after inputs in this order:
//!   [`ServerEndpoint::poll_event`] (what clients did: connect, events,
//!   acks, disconnects), [`ServerEndpoint::poll_ready`] +
//!   [`ServerEndpoint::poll_transmit`] (bytes to write, connections to
//!   close), and [`ServerEndpoint::poll_timeout`] (when to call
//!   `handle_timeout` next).
//!
//! Every input takes `now`: the core reads no clock, so tests can run it in
//! virtual time and this loop just passes `Instant::now()`.
//!
//! # Several servers (`--redis`)
//! With `--redis redis://host:port` the server is one node of a cluster
//! speaking python-socketio's format on the channel `socketio` (as
//! `socketio.RedisManager('redis://host:port')`), so `shout` reaches the
//! clients of every node. The same loop then also owns two TCP connections
//! to Redis, and the contract grows by one input and one output:
//! - input: [`ServerEndpoint::handle_bus`] (a message published by another
//!   node, or the answer to a count of subscribers);
//! - output: [`ServerEndpoint::poll_bus`], drained with the transmit side
//!   (subscribe, publish, count subscribers).
//!
//! The core never sees Redis: it asks for [`BusCommand`]s and takes
//! [`BusInput`]s. Turning those into Redis commands and back is the loop's
//! job, done below with the core's sans-IO RESP codec ([`resp`]).

#[path = "common/cli.rs"]
mod cli;

use std::collections::{HashMap, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;
use socketio_core::cluster::resp::{self, PubSubReply, RespDecoder, RespValue};
use socketio_core::cluster::{BusCommand, BusInput, ChannelKind};
use socketio_core::endpoint::ServerEndpoint;
use socketio_core::engine::{self, ConnId, Transmit};
use socketio_core::parser::{AnyParser, JsonParser, MsgPackParser};
use socketio_core::socket::{
    self, AckOutcome, Broadcast, ClusterConfig, ClusterFormat, NamespaceMatcher, ServerEvent,
};
use socketio_core::{Bytes, Str, Value};

/// How long the loop sleeps when an iteration found nothing to do. It is
/// the added latency of an idle server, and the price of not using a
/// readiness API (`poll`, `epoll`, `kqueue`): with one, the loop would
/// instead block until a socket is ready or the core's deadline passes.
const IDLE_SLEEP: Duration = Duration::from_millis(1);

/// Stop pulling bytes out of the core for a connection once this much is
/// waiting for the socket to become writable. What stays in the core is
/// counted by its own backpressure (slow consumers get disconnected), so a
/// client that stops reading cannot make this loop's memory grow.
const HIGH_WATER: usize = 256 * 1024;

/// One accepted TCP connection.
struct Conn {
    stream: TcpStream,
    /// Bytes taken from the core that the socket did not accept yet
    /// (`write` returned `WouldBlock` or wrote part of them).
    pending: VecDeque<Bytes>,
    pending_len: usize,
    /// The core reported output for this connection that we have not
    /// pulled yet ([`ServerEndpoint::poll_ready`] names each connection once
    /// per batch, so the loop must remember it).
    has_output: bool,
    /// The core said [`Transmit::Close`]: close once `pending` is written.
    /// The core has forgotten the connection at that point.
    closing: bool,
}

/// The echo application's memory: `ask` acks waiting for the client's
/// answer to `question`, keyed by the socket and the question's ack id.
#[derive(Default)]
struct App {
    asks: HashMap<(Str, u64), u64>,
}

/// Serve the echo contract on `listener` until `stop` is set, as one node of
/// a cluster when `redis` names a Redis (`redis://host:port`). The tests
/// run this on a thread; `main` below runs it forever.
///
/// Fails at once when Redis cannot be reached, and later when the link to
/// it breaks.
pub fn serve(
    listener: TcpListener,
    parser: AnyParser,
    redis: Option<&str>,
    stop: &AtomicBool,
) -> io::Result<()> {
    // Non-blocking everything: every call below returns at once, with
    // `WouldBlock` when there is nothing to do.
    listener.set_nonblocking(true)?;

    // The two layers draw session ids and socket ids from generators the
    // driver provides, seeded from the OS: ids must not be guessable.
    let engine_rng = ChaCha12Rng::try_from_os_rng().map_err(io::Error::other)?;
    let socket_rng = ChaCha12Rng::try_from_os_rng().map_err(io::Error::other)?;
    let mut endpoint = ServerEndpoint::new(
        engine::ServerConfig::default(),
        socket::ServerConfig {
            // `/` is always served; `/custom` too.
            namespaces: vec![NamespaceMatcher::Exact(Str::from("/custom"))],
            ..Default::default()
        },
        parser,
        Box::new(engine_rng),
        Box::new(socket_rng),
    );

    let mut buf = vec![0u8; 16 * 1024];

    // A node of a cluster: the core starts asking for bus commands (its
    // first is `SUBSCRIBE socketio`). Connect to Redis and wait until it
    // confirmed the subscription, so that this node hears what the others
    // publish before it serves its first client (clients connecting
    // meanwhile wait in the listener's backlog).
    let mut redis = match redis {
        Some(url) => {
            endpoint
                .socket()
                .enable_cluster(ClusterConfig::new(ClusterFormat::python()));
            let mut redis = Redis::connect(url)?;
            while let Some(command) = endpoint.poll_bus() {
                redis.send(command);
            }
            redis.wait_subscribed(&mut buf)?;
            endpoint.handle_bus(Instant::now(), BusInput::Up);
            Some(redis)
        }
        None => None,
    };

    let mut conns: HashMap<ConnId, Conn> = HashMap::new();
    let mut app = App::default();

    while !stop.load(Ordering::Relaxed) {
        // One clock reading per iteration: every input of this round
        // happens "at" this instant.
        let now = Instant::now();
        let mut busy = false;

        // 1. Accept every waiting connection and announce it to the core,
        //    which gives it an id. The id is how the core names the
        //    connection in everything it asks of us.
        loop {
            match listener.accept() {
                Ok((stream, remote)) => {
                    busy = true;
                    stream.set_nonblocking(true)?;
                    let _ = stream.set_nodelay(true);
                    let id = endpoint.handle_connection(now, Some(remote));
                    conns.insert(
                        id,
                        Conn {
                            stream,
                            pending: VecDeque::new(),
                            pending_len: 0,
                            has_output: false,
                            closing: false,
                        },
                    );
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // Out of file descriptors and the like: try again next
                // round rather than die.
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    break;
                }
            }
        }

        // 2. Read what every connection has and feed it to the core. A
        //    connection the core is closing is not read any more, nor one
        //    whose pipelined requests already fill the core's buffer
        //    (`wants_read`): the bytes wait in the kernel, which is the
        //    backpressure TCP gives us for free.
        let mut ended = Vec::new();
        for (&id, conn) in conns.iter_mut() {
            if conn.closing {
                continue;
            }
            while endpoint.engine().wants_read(id) {
                match conn.stream.read(&mut buf) {
                    Ok(0) => {
                        ended.push(id);
                        break;
                    }
                    Ok(n) => {
                        busy = true;
                        endpoint.handle_read(now, id, &buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        ended.push(id);
                        break;
                    }
                }
            }
        }
        // The peer closed or the connection failed: tell the core (it
        // still handles what arrived before) and drop the socket.
        for id in ended {
            busy = true;
            conns.remove(&id);
            endpoint.handle_eof(now, id);
        }

        // 2b. Read what Redis sent: messages other nodes published, and
        //     the answers to our counts. `Redis::read` turns the RESP
        //     replies into `BusInput`s; the core takes them like reads. A
        //     broken link ends the loop with an error: this example does
        //     not reconnect. (The driver's Redis backend does: it reconnects
        //     with back-off, subscribes again, queues publishes meanwhile
        //     and tells the core `BusInput::Down` / `Up`.)
        if let Some(redis) = redis.as_mut() {
            busy |= redis.read(&mut buf)?;
            while let Some(input) = redis.inputs.pop_front() {
                endpoint.handle_bus(now, input);
            }
        }

        // 3. Timers. The core keeps every deadline it has (heartbeats,
        //    connect timeouts, ack timeouts, idle HTTP connections) and
        //    tells us only the earliest. Call `handle_timeout` once it has
        //    passed; calling it early is harmless, late is what matters.
        if endpoint.poll_timeout().is_some_and(|at| at <= now) {
            busy = true;
            endpoint.handle_timeout(now);
        }

        // 4. Application events. This is where your application code goes.
        //    Calls on `endpoint.socket()` only queue work; `pump` moves it
        //    down to the Engine.IO layer so that step 5 sees the bytes.
        while let Some(event) = endpoint.poll_event() {
            busy = true;
            app.handle(&mut endpoint, now, event);
            endpoint.pump(now);
        }

        // 5. Transmit. `poll_ready` names the connections that have
        //    something for us; pull their output with `poll_transmit` into
        //    the pending buffer, up to the high-water mark.
        while let Some(id) = endpoint.poll_ready() {
            if let Some(conn) = conns.get_mut(&id) {
                conn.has_output = true;
            }
        }
        for (&id, conn) in conns.iter_mut() {
            while conn.has_output && conn.pending_len < HIGH_WATER {
                match endpoint.poll_transmit(id) {
                    Some(Transmit::Data(bytes)) => {
                        conn.pending_len += bytes.len();
                        conn.pending.push_back(bytes);
                    }
                    // The core is done with this connection (an HTTP
                    // response that ends it, a WebSocket close, a session
                    // that ended): close it once the bytes before are out.
                    Some(Transmit::Close) => {
                        conn.closing = true;
                        conn.has_output = false;
                    }
                    None => conn.has_output = false,
                }
            }
        }

        // 5b. Bus commands, drained after the connections' output, as the
        //     drain order says. A `shout` handled in step 4 is here as a
        //     PUBLISH; `Redis::send` encodes each command on its connection.
        if let Some(redis) = redis.as_mut() {
            while let Some(command) = endpoint.poll_bus() {
                redis.send(command);
            }
        }

        // 6. Write what is pending, as far as each socket takes it. A
        //    `WouldBlock` leaves the rest for a later round; a hard error
        //    ends the connection like an end of stream.
        let mut dead = Vec::new();
        for (&id, conn) in conns.iter_mut() {
            match flush(conn) {
                Ok(wrote) => busy |= wrote,
                Err(_) => {
                    dead.push(id);
                    continue;
                }
            }
            if conn.closing && conn.pending.is_empty() {
                dead.push(id);
            }
        }
        for id in dead {
            if let Some(conn) = conns.remove(&id) {
                let _ = conn.stream.shutdown(Shutdown::Both);
                // A connection the core asked us to close is already
                // forgotten there; any other one ended under its feet.
                if !conn.closing {
                    endpoint.handle_eof(now, id);
                }
            }
        }
        // The same for Redis, but a hard error there ends the loop.
        if let Some(redis) = redis.as_mut() {
            busy |= redis.flush()?;
        }

        // 7. Nothing happened: sleep a little, but never past the core's
        //    next deadline (heartbeats must go out on time).
        if !busy {
            let mut nap = IDLE_SLEEP;
            if let Some(at) = endpoint.poll_timeout() {
                nap = nap.min(at.saturating_duration_since(Instant::now()));
            }
            thread::sleep(nap);
        }
    }
    // Dropping the streams closes every connection.
    Ok(())
}

/// Write pending bytes until the socket would block; whether anything was
/// written.
fn flush(conn: &mut Conn) -> io::Result<bool> {
    let mut wrote = false;
    while let Some(front) = conn.pending.front_mut() {
        match conn.stream.write(front) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                wrote = true;
                conn.pending_len -= n;
                if n == front.len() {
                    conn.pending.pop_front();
                } else {
                    // `Bytes` slices without copying.
                    let rest = front.slice(n..);
                    *front = rest;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(wrote)
}

/// How long connecting to Redis and the confirmation of the subscription
/// may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// The loop's side of the cluster (`--redis`): two connections to Redis,
/// read and written like the clients' ones, and the translation between
/// the core's [`BusCommand`]s / [`BusInput`]s and Redis commands / replies.
struct Redis {
    /// The subscriber connection. Once it subscribed, Redis accepts only
    /// (un)subscriptions and PING on it, and pushes every message of its
    /// channels; hence the second connection for everything else.
    sub: RedisLink,
    /// The command connection: PUBLISH and PUBSUB NUMSUB.
    cmd: RedisLink,
    /// What each reply still expected on `cmd` answers, oldest first:
    /// Redis answers a connection's commands in the order it got them.
    awaiting: VecDeque<Awaiting>,
    /// Subscriptions sent and not confirmed yet.
    unconfirmed: usize,
    /// What Redis said, for [`ServerEndpoint::handle_bus`].
    inputs: VecDeque<BusInput>,
}

/// One TCP connection to Redis.
struct RedisLink {
    stream: TcpStream,
    /// Fed whatever the socket gives; yields whole replies.
    decoder: RespDecoder,
    /// Encoded commands the socket did not take yet. Unbounded here: the
    /// driver's backend caps it and drops the oldest publishes beyond.
    out: BytesMut,
}

/// The command a reply on [`Redis::cmd`] answers.
enum Awaiting {
    Publish,
    Count(Str),
}

impl Redis {
    /// Connects both links to `url`: `redis://host[:port][/db]`, as
    /// python-socketio takes it (pub/sub ignores the database; no password
    /// or TLS in this example).
    fn connect(url: &str) -> io::Result<Redis> {
        let invalid = || {
            io::Error::new(
                ErrorKind::InvalidInput,
                format!("unsupported Redis URL {url:?}: expected redis://host[:port]"),
            )
        };
        let rest = url.strip_prefix("redis://").ok_or_else(invalid)?;
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid());
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        let address = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:6379")
        };
        // Blocking name resolution and connects, once, before serving.
        let context = |e: io::Error| io::Error::new(e.kind(), format!("Redis at {address}: {e}"));
        let target = address
            .to_socket_addrs()
            .map_err(context)?
            .next()
            .ok_or_else(invalid)?;
        let link = || -> io::Result<RedisLink> {
            let stream = TcpStream::connect_timeout(&target, REDIS_TIMEOUT).map_err(context)?;
            stream.set_nonblocking(true)?;
            let _ = stream.set_nodelay(true);
            Ok(RedisLink {
                stream,
                decoder: RespDecoder::default(),
                out: BytesMut::new(),
            })
        };
        Ok(Redis {
            sub: link()?,
            cmd: link()?,
            awaiting: VecDeque::new(),
            unconfirmed: 0,
            inputs: VecDeque::new(),
        })
    }

    /// Encodes one of the core's commands on the connection it belongs to.
    fn send(&mut self, command: BusCommand) {
        match command {
            BusCommand::Subscribe { channel, kind } => {
                self.unconfirmed += 1;
                let verb = subscription_verb(kind, true);
                resp::encode_command(&mut self.sub.out, &[verb, channel.as_bytes()]);
            }
            BusCommand::Unsubscribe { channel, kind } => {
                let verb = subscription_verb(kind, false);
                resp::encode_command(&mut self.sub.out, &[verb, channel.as_bytes()]);
            }
            BusCommand::Publish {
                channel,
                payload,
                sharded,
            } => {
                let verb: &[u8] = if sharded { b"SPUBLISH" } else { b"PUBLISH" };
                resp::encode_command(&mut self.cmd.out, &[verb, channel.as_bytes(), &payload]);
                self.awaiting.push_back(Awaiting::Publish);
            }
            // The core asks how many nodes listen before it waits for
            // their answers (broadcasts with acks, requests).
            BusCommand::CountSubscribers { channel, sharded } => {
                let verb: &[u8] = if sharded { b"SHARDNUMSUB" } else { b"NUMSUB" };
                resp::encode_command(&mut self.cmd.out, &[b"PUBSUB", verb, channel.as_bytes()]);
                self.awaiting.push_back(Awaiting::Count(channel));
            }
            // Streams and keys are for the streams adapter's format, which
            // this example does not speak: answered as failed so that
            // nothing waits.
            BusCommand::StreamAppend { token, .. } => {
                self.inputs
                    .push_back(BusInput::StreamAppended { token, id: None });
            }
            BusCommand::StreamRange { token, .. } => self.inputs.push_back(BusInput::StreamRange {
                token,
                entries: None,
            }),
            BusCommand::TakeKey { token, .. } => {
                self.inputs
                    .push_back(BusInput::KeyTaken { token, value: None });
            }
            BusCommand::StreamFollow { .. }
            | BusCommand::StreamUnfollow { .. }
            | BusCommand::SetKey { .. } => {}
        }
    }

    /// Reads both connections until they would block, and turns what came
    /// into [`Redis::inputs`]; whether anything came.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let got_pushes = self.sub.read(buf)?;
        while let Some(value) = self.sub.next()? {
            self.on_push(value)?;
        }
        let got_replies = self.cmd.read(buf)?;
        while let Some(value) = self.cmd.next()? {
            self.on_reply(value)?;
        }
        Ok(got_pushes || got_replies)
    }

    /// Something on the subscriber connection.
    fn on_push(&mut self, value: RespValue) -> io::Result<()> {
        match PubSubReply::from_value(&value) {
            Some(
                PubSubReply::Message { channel, payload }
                | PubSubReply::SMessage { channel, payload }
                | PubSubReply::PMessage {
                    channel, payload, ..
                },
            ) => {
                // Channel names are text to the core; a channel that is not
                // UTF-8 is none of ours.
                if let Ok(channel) = Str::try_from(channel) {
                    self.inputs
                        .push_back(BusInput::Message { channel, payload });
                }
            }
            Some(PubSubReply::Subscribed { .. }) => {
                self.unconfirmed = self.unconfirmed.saturating_sub(1);
            }
            Some(PubSubReply::Unsubscribed { .. } | PubSubReply::Pong(_)) => {}
            // An error reply (a refused subscription) or garbage.
            None => {
                return Err(io::Error::other(format!(
                    "Redis: unexpected on the subscriber connection: {value:?}"
                )))
            }
        }
        Ok(())
    }

    /// A reply on the command connection: it answers the oldest command
    /// not answered yet.
    fn on_reply(&mut self, value: RespValue) -> io::Result<()> {
        match self.awaiting.pop_front() {
            // PUBLISH answers how many subscribers got the message: nothing
            // to do, unless Redis refused it.
            Some(Awaiting::Publish) => {
                if value.is_error() {
                    eprintln!("Redis refused a publish: {value:?}");
                }
            }
            // `PUBSUB NUMSUB channel` answers `[channel, count]`. The core
            // waits for an answer to each count it asked: give one, zero if
            // Redis said something else.
            Some(Awaiting::Count(channel)) => {
                let count = value
                    .as_elements()
                    .and_then(|items| items.get(1))
                    .and_then(RespValue::as_integer)
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0);
                self.inputs
                    .push_back(BusInput::Subscribers { channel, count });
            }
            None => {
                return Err(io::Error::other(format!(
                    "Redis: a reply to no command: {value:?}"
                )))
            }
        }
        Ok(())
    }

    /// Writes what both connections have pending, as far as they take it;
    /// whether anything was written.
    fn flush(&mut self) -> io::Result<bool> {
        Ok(self.sub.flush()? | self.cmd.flush()?)
    }

    /// Before serving: flushes and reads until Redis confirmed every
    /// subscription sent.
    fn wait_subscribed(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let deadline = Instant::now() + REDIS_TIMEOUT;
        while self.unconfirmed > 0 {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "Redis did not confirm the subscription",
                ));
            }
            let wrote = self.flush()?;
            if !self.read(buf)? && !wrote {
                thread::sleep(IDLE_SLEEP);
            }
        }
        Ok(())
    }
}

/// `SUBSCRIBE` and its kin.
fn subscription_verb(kind: ChannelKind, subscribe: bool) -> &'static [u8] {
    match (kind, subscribe) {
        (ChannelKind::Plain, true) => b"SUBSCRIBE",
        (ChannelKind::Pattern, true) => b"PSUBSCRIBE",
        (ChannelKind::Sharded, true) => b"SSUBSCRIBE",
        (ChannelKind::Plain, false) => b"UNSUBSCRIBE",
        (ChannelKind::Pattern, false) => b"PUNSUBSCRIBE",
        (ChannelKind::Sharded, false) => b"SUNSUBSCRIBE",
    }
}

impl RedisLink {
    /// Feeds the decoder what the socket has. The end of the stream is an
    /// error: this example does not reconnect.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut got = false;
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "Redis closed the connection",
                    ))
                }
                Ok(n) => {
                    got = true;
                    self.decoder.feed(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(got),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("Redis: {e}"))),
            }
        }
    }

    /// The next whole reply decoded. Malformed input cannot be skipped (the
    /// stream cannot be resynchronised): it ends the link.
    fn next(&mut self) -> io::Result<Option<RespValue>> {
        self.decoder
            .next()
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, format!("Redis: {e}")))
    }

    /// Writes `out` until the socket would block; whether anything was
    /// written.
    fn flush(&mut self) -> io::Result<bool> {
        let mut wrote = false;
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    wrote = true;
                    self.out.advance(n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(io::Error::new(e.kind(), format!("Redis: {e}"))),
            }
        }
        Ok(wrote)
    }
}

impl App {
    /// The echo contract. Everything here is ordinary Socket.IO server
    /// code: only the loop above is specific to this example.
    fn handle(
        &mut self,
        endpoint: &mut ServerEndpoint<AnyParser>,
        now: Instant,
        event: ServerEvent,
    ) {
        let io = endpoint.socket();
        match event {
            // A client joins a namespace: check its auth, then accept (the
            // CONNECT reply goes out before anything emitted afterwards).
            ServerEvent::Connect { socket, auth, .. } => {
                let rejected = auth
                    .as_ref()
                    .and_then(|a| a.get("reject"))
                    .is_some_and(|r| *r == Value::Bool(true));
                if rejected {
                    let data = Value::Object(vec![("code".into(), Value::from(42i64))]);
                    let _ = io.reject(now, &socket, "rejected by server", Some(&data));
                    return;
                }
                if io.accept(now, &socket).is_ok() {
                    let auth = auth.unwrap_or(Value::Object(Vec::new()));
                    // A one-element tuple: one argument, the auth object.
                    let _ = io.emit(now, &socket, "auth", &(auth,));
                }
            }
            ServerEvent::Event {
                socket,
                nsp,
                name,
                args,
                ack,
            } => {
                // The JSON parser checks an event's arguments lazily. Before
                // relying on them, make sure the client sent valid JSON; if
                // not, that is a protocol violation and the session closes
                // with `parse error`.
                if args.validate().is_err() {
                    let _ = io.invalid_packet(now, &socket);
                    return;
                }
                match &*name {
                    // `Args` serializes as the argument list it holds, so it
                    // can be sent back as is, binary included.
                    "echo" => {
                        let _ = io.emit(now, &socket, "echo-back", &args);
                        if let Some(id) = ack {
                            let _ = io.ack(now, &socket, id, &args);
                        }
                    }
                    "ask" => {
                        let token: Value = args.get(0).unwrap_or(Value::Null);
                        let question = (token, Bytes::from_static(&[9, 8, 7]));
                        match io.emit_with_ack(
                            now,
                            &socket,
                            "question",
                            &question,
                            Duration::from_secs(10),
                        ) {
                            Ok(qid) => {
                                if let Some(id) = ack {
                                    self.asks.insert((socket, qid), id);
                                }
                            }
                            Err(e) => eprintln!("ask: {e}"),
                        }
                    }
                    "shout" => {
                        let _ = io.broadcast(now, &Broadcast::namespace(nsp), "shout-back", &args);
                    }
                    "disconnect-me" => {
                        let _ = io.disconnect(now, &socket);
                    }
                    _ => {}
                }
            }
            // The client answered a `question`: pass the answer on as the
            // ack of its `ask`.
            ServerEvent::Ack {
                socket,
                id,
                outcome,
                ..
            } => {
                if let Some(ask) = self.asks.remove(&(socket.clone(), id)) {
                    if let AckOutcome::Answered(answer) = outcome {
                        if answer.validate().is_err() {
                            let _ = io.invalid_packet(now, &socket);
                            return;
                        }
                        let _ = io.ack(now, &socket, ask, &answer);
                    }
                }
            }
            ServerEvent::Disconnect { socket, .. } => {
                self.asks.retain(|(s, _), _| *s != socket);
            }
            // No broadcast with acks here, and no requests to other nodes
            // (server-side emits, fetches): python-socketio's format on the
            // bus has neither.
            ServerEvent::BroadcastAck { .. }
            | ServerEvent::Writable { .. }
            | ServerEvent::ServerSideEmit { .. }
            | ServerEvent::ClusterReply { .. } => {}
        }
    }
}

/// `custom_event_loop --help`.
static HELP: cli::Help = cli::Help {
    name: "custom_event_loop",
    about: "a Socket.IO server driven by a plain single-threaded loop over std::net, with no async runtime",
    usage: "--port P [--parser json|msgpack] [--redis redis://host:port]",
    options: &[
        ("--port P", "port to listen on, on 127.0.0.1 (required; 0 for any free one)"),
        ("--parser json|msgpack", "wire format (json)"),
        ("--redis URL", "also be one node of a cluster over this Redis (python-socketio's format)"),
    ],
    notes: "Prints `listening on PORT` when ready and serves the interop echo contract on / and /custom.",
};

#[allow(dead_code)] // The tests include this file as a module and use `serve`.
fn main() {
    let mut port = None;
    let mut parser = AnyParser::from(JsonParser);
    let mut redis = None;
    let mut args = HELP.args();
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--port" => port = Some(args.parse::<u16>(&flag)),
            "--parser" => match args.value(&flag).as_str() {
                "json" => parser = JsonParser.into(),
                "msgpack" => parser = MsgPackParser.into(),
                other => args.fail(format_args!("unknown parser {other}")),
            },
            "--redis" => redis = Some(args.value(&flag)),
            _ => args.unknown(&flag),
        }
    }
    let Some(port) = port else {
        HELP.fail("--port is required")
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("custom_event_loop: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("listening on {port}");
    if let Err(e) = serve(listener, parser, redis.as_deref(), &AtomicBool::new(false)) {
        eprintln!("custom_event_loop: {e}");
        std::process::exit(1);
    }
}
