//! The IO thread: it owns the [`ClientEndpoint`], the write halves of the
//! TCP connections and the clock.
//!
//! Everything reaches it through one bounded channel (its inbox): commands
//! from the application and what the per-connection reader threads saw
//! (connected, bytes read, end of stream). Its only wait is
//! `recv_timeout` on that inbox until the endpoint's next deadline, so it
//! never polls and never sleeps.

use std::collections::HashMap;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use socketio_core::endpoint::{ClientAction, ClientEndpoint};
use socketio_core::engine::{ConnId, Transport};
use socketio_core::parser::{AnyParser, Args};
use socketio_core::socket::{AckFailure, ClientEvent};
use socketio_core::{Bytes, Value};
use tracing::{debug, info, trace, warn};

use crate::dial::{DialFailure, Dialer, Reader, Writer, READ_CHUNK};
use crate::error::{Error, Result};
use crate::options::Handler;
use crate::Event;

/// How long the IO thread keeps going after it was told to stop, so that
/// the DISCONNECT and Engine.IO close packets get written.
const CLOSE_GRACE: Duration = Duration::from_millis(1000);

/// What the application asks of the IO thread.
pub(crate) enum Command {
    Emit {
        nsp: String,
        event: String,
        args: Args,
        reply: Sender<Result<()>>,
    },
    Call {
        nsp: String,
        event: String,
        args: Args,
        timeout: Duration,
        reply: Sender<Result<Args>>,
    },
    On {
        event: String,
        handler: Handler,
    },
    /// Leave every namespace, close the session and end the thread.
    Disconnect,
}

/// What a reader thread saw on its connection.
pub(crate) enum NetEvent {
    Connected(ConnId, Writer),
    Read(ConnId, Vec<u8>),
    /// End of stream, a read error or a failed connect (with why).
    Eof(ConnId, Option<DialFailure>),
}

/// One message in the IO thread's inbox.
pub(crate) enum Input {
    Command(Command),
    Net(NetEvent),
}

/// What the application can read without asking the IO thread.
#[derive(Debug, Default)]
pub(crate) struct Status {
    /// Socket id of each connected namespace.
    pub sids: HashMap<String, String>,
    pub transport: Option<Transport>,
    /// Whether every namespace asked for is connected.
    pub all_connected: bool,
    pub last_error: Option<String>,
}

/// Lock the status, whatever a panicking holder left (it holds plain data).
pub(crate) fn lock(status: &Mutex<Status>) -> std::sync::MutexGuard<'_, Status> {
    status.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Conn {
    /// The reader thread is connecting; writes wait here.
    Connecting {
        pending: Vec<Bytes>,
        close_after: bool,
    },
    Open(Writer),
}

/// Everything the IO thread needs, handed over at spawn.
pub(crate) struct IoSetup {
    pub endpoint: ClientEndpoint<AnyParser>,
    pub dialer: Dialer,
    pub write_timeout: Duration,
    pub namespaces: Vec<(String, Option<Value>)>,
    pub handlers: HashMap<String, Handler>,
    pub inbox_tx: SyncSender<Input>,
    pub events_tx: SyncSender<Event>,
    pub status: Arc<Mutex<Status>>,
    pub ready: Sender<Result<()>>,
}

struct Io {
    ep: ClientEndpoint<AnyParser>,
    dialer: Dialer,
    write_timeout: Duration,
    inbox_tx: SyncSender<Input>,
    conns: HashMap<ConnId, Conn>,
    handlers: HashMap<String, Handler>,
    calls: HashMap<(String, u64), Sender<Result<Args>>>,
    events_tx: SyncSender<Event>,
    status: Arc<Mutex<Status>>,
    /// Until `connect` has its answer.
    ready: Option<Sender<Result<()>>>,
    ready_outcome: Option<Result<()>>,
    namespaces: Vec<String>,
    /// When set, the thread ends at this instant at the latest.
    stop_by: Option<Instant>,
}

/// The IO thread's body.
pub(crate) fn run(setup: IoSetup, inbox: Receiver<Input>) {
    let mut io = Io {
        ep: setup.endpoint,
        dialer: setup.dialer,
        write_timeout: setup.write_timeout,
        inbox_tx: setup.inbox_tx,
        conns: HashMap::new(),
        handlers: setup.handlers,
        calls: HashMap::new(),
        events_tx: setup.events_tx,
        status: setup.status,
        ready: Some(setup.ready),
        ready_outcome: None,
        namespaces: setup.namespaces.iter().map(|(n, _)| n.clone()).collect(),
        stop_by: None,
    };
    let now = Instant::now();
    for (nsp, auth) in setup.namespaces {
        if let Err(e) = io.ep.socket().connect(now, &nsp, auth) {
            io.answer_ready(Err(e.into()));
            io.send_ready();
            return;
        }
    }
    io.ep.pump(now);
    loop {
        let now = Instant::now();
        if io.ep.poll_timeout().is_some_and(|t| t <= now) {
            io.ep.handle_timeout(now);
        }
        io.drain(now);
        if io.should_exit(now) {
            break;
        }
        let deadline = [io.ep.poll_timeout(), io.stop_by]
            .into_iter()
            .flatten()
            .min();
        let input = match deadline {
            Some(at) => inbox.recv_timeout(at.saturating_duration_since(Instant::now())),
            // Nothing is due: wait for an input (the thread holds a sender of
            // its own inbox, so this cannot hang on a dead channel).
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match input {
            Ok(input) => io.handle_input(input),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    io.finish();
}

impl Io {
    fn handle_input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Command(command) => self.handle_command(now, command),
            Input::Net(NetEvent::Connected(conn, stream)) => match self.conns.remove(&conn) {
                Some(Conn::Connecting {
                    pending,
                    close_after,
                }) => {
                    trace!(conn = conn.0, "connected");
                    let _ = stream.set_write_timeout(self.write_timeout);
                    self.conns.insert(conn, Conn::Open(stream));
                    self.ep.handle_connected(now, conn);
                    for bytes in pending {
                        self.write(now, conn, &bytes);
                    }
                    if close_after {
                        self.close(conn);
                    }
                }
                // Closed by the endpoint while connecting.
                _ => stream.shutdown(),
            },
            Input::Net(NetEvent::Read(conn, data)) => {
                if self.conns.contains_key(&conn) {
                    trace!(conn = conn.0, len = data.len(), "read");
                    self.ep.handle_read(now, conn, &data);
                }
            }
            Input::Net(NetEvent::Eof(conn, error)) => {
                if self.conns.remove(&conn).is_some() {
                    debug!(conn = conn.0, ?error, "connection ended");
                    if let Some(failure) = error {
                        lock(&self.status).last_error = Some(failure.message);
                        // A proxy that refused or a TLS handshake that
                        // failed ends `connect` at once, with the reason
                        // (ignored once `connect` has its answer).
                        if let Some(typed) = failure.typed {
                            self.answer_ready(Err(typed));
                        }
                    }
                    self.ep.handle_eof(now, conn);
                }
            }
        }
    }

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Emit {
                nsp,
                event,
                args,
                reply,
            } => {
                let result = self.ep.socket().emit(now, &nsp, &event, &args);
                self.ep.pump(now);
                let _ = reply.send(result.map_err(Error::from));
            }
            Command::Call {
                nsp,
                event,
                args,
                timeout,
                reply,
            } => {
                match self
                    .ep
                    .socket()
                    .emit_with_ack(now, &nsp, &event, &args, Some(timeout))
                {
                    Ok(id) => {
                        self.calls.insert((nsp, id), reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
                self.ep.pump(now);
            }
            Command::On { event, handler } => {
                self.handlers.insert(event, handler);
            }
            Command::Disconnect => {
                debug!("disconnect requested");
                self.ep.socket().disconnect_all(now);
                self.ep.pump(now);
                self.stop_by.get_or_insert(now + CLOSE_GRACE);
            }
        }
    }

    /// Hand everything the endpoint has to the application and the
    /// network, until it has nothing more.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(event) = self.ep.poll_event() {
                moved = true;
                self.handle_event(now, event);
            }
            while let Some(action) = self.ep.poll_action() {
                moved = true;
                self.handle_action(now, action);
            }
            if !moved {
                break;
            }
        }
        let transport = self
            .ep
            .engine()
            .filter(|e| e.sid().is_some())
            .and_then(|e| e.transport());
        let mut sids = HashMap::new();
        for nsp in &self.namespaces {
            if let Some(sid) = self.ep.socket().socket_id(nsp) {
                sids.insert(nsp.clone(), sid.to_owned());
            }
        }
        let mut status = lock(&self.status);
        status.all_connected = sids.len() == self.namespaces.len();
        status.transport = transport;
        status.sids = sids;
        drop(status);
        self.send_ready();
    }

    /// Record `connect`'s outcome (the first one counts); it is sent once
    /// the status is up to date, so `connect` returns to a consistent view.
    fn answer_ready(&mut self, result: Result<()>) {
        if self.ready.is_some() && self.ready_outcome.is_none() {
            self.ready_outcome = Some(result);
        }
    }

    fn send_ready(&mut self) {
        if let Some(outcome) = self.ready_outcome.take() {
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(outcome);
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: ClientEvent) {
        match event {
            ClientEvent::Connected {
                nsp,
                sid,
                recovered,
            } => {
                info!(%nsp, %sid, recovered, "namespace connected");
                if self.ready.is_some()
                    && self
                        .namespaces
                        .iter()
                        .all(|n| self.ep.socket().is_connected(n))
                {
                    self.answer_ready(Ok(()));
                }
            }
            ClientEvent::ConnectError { nsp, message, data } => {
                warn!(%nsp, %message, "namespace refused");
                self.answer_ready(Err(Error::ConnectRefused {
                    nsp: nsp.to_string(),
                    message,
                    data,
                }));
            }
            ClientEvent::Event {
                nsp,
                name,
                args,
                ack,
            } => {
                // The JSON parser checks arguments lazily: check them before
                // anyone relies on them, and treat invalid ones as the
                // protocol violation they are.
                if let Err(e) = args.validate() {
                    warn!(%nsp, %name, error = %e, "invalid event arguments: closing the session");
                    self.ep.socket().invalid_packet(now);
                    self.ep.pump(now);
                    return;
                }
                let answer = match self.handlers.get(&*name) {
                    Some(handler) => {
                        let handler = handler.clone();
                        match catch_unwind(AssertUnwindSafe(|| handler(&args))) {
                            Ok(answer) => answer,
                            Err(_) => {
                                warn!(%nsp, %name, "event handler panicked");
                                None
                            }
                        }
                    }
                    None => {
                        let event = Event {
                            nsp: nsp.to_string(),
                            name: name.to_string(),
                            args,
                        };
                        match self.events_tx.try_send(event) {
                            Ok(()) => {}
                            Err(TrySendError::Full(event)) => {
                                warn!(nsp = %event.nsp, name = %event.name, "receive queue full: event dropped");
                            }
                            // The application is gone: nobody to tell.
                            Err(TrySendError::Disconnected(_)) => {}
                        }
                        None
                    }
                };
                if let Some(id) = ack {
                    let answer = answer.unwrap_or_else(Args::empty);
                    if let Err(e) = self.ep.socket().ack(now, &nsp, id, &answer) {
                        warn!(%nsp, %name, error = %e, "could not answer the server's ack request");
                    }
                    self.ep.pump(now);
                }
            }
            ClientEvent::Ack { nsp, id, args } => {
                let reply = self.calls.remove(&(nsp.to_string(), id));
                if let Err(e) = args.validate() {
                    warn!(%nsp, id, error = %e, "invalid ack arguments: closing the session");
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(Error::Args(e)));
                    }
                    self.ep.socket().invalid_packet(now);
                    self.ep.pump(now);
                    return;
                }
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(args));
                }
            }
            ClientEvent::AckFailed { nsp, id, reason } => {
                if let Some(reply) = self.calls.remove(&(nsp.to_string(), id)) {
                    let _ = reply.send(Err(match reason {
                        AckFailure::Timeout => Error::Timeout,
                        AckFailure::Disconnected => Error::AckDisconnected,
                    }));
                }
            }
            ClientEvent::Disconnected { nsp, reason } => {
                info!(%nsp, reason = reason.as_str(), "namespace disconnected");
            }
            ClientEvent::OpenFailed { attempt, .. } => info!(attempt, "could not open a session"),
            ClientEvent::ReconnectScheduled { attempt, delay } => {
                info!(attempt, ?delay, "reconnection scheduled")
            }
            ClientEvent::Reconnecting { attempt } => info!(attempt, "reconnecting"),
            ClientEvent::Reconnected { attempt } => info!(attempt, "reconnected"),
            ClientEvent::ReconnectFailed => {
                warn!("gave up reconnecting");
                self.answer_ready(Err(Error::ConnectFailed));
            }
        }
    }

    fn handle_action(&mut self, now: Instant, action: ClientAction) {
        match action {
            ClientAction::Connect(conn) => {
                trace!(conn = conn.0, "connecting");
                self.conns.insert(
                    conn,
                    Conn::Connecting {
                        pending: Vec::new(),
                        close_after: false,
                    },
                );
                self.spawn_reader(conn);
            }
            ClientAction::Data(conn, bytes) => match self.conns.get_mut(&conn) {
                Some(Conn::Connecting { pending, .. }) => pending.push(bytes),
                Some(Conn::Open(_)) => self.write(now, conn, &bytes),
                None => {}
            },
            ClientAction::Close(conn) => match self.conns.get_mut(&conn) {
                Some(Conn::Connecting { close_after, .. }) => *close_after = true,
                Some(Conn::Open(_)) => self.close(conn),
                None => {}
            },
        }
    }

    /// Write on an open connection; a failure (the write timeout included)
    /// ends it.
    fn write(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(Conn::Open(stream)) = self.conns.get_mut(&conn) else {
            return;
        };
        trace!(conn = conn.0, len = bytes.len(), "write");
        if let Err(e) = stream.write_all(bytes) {
            debug!(conn = conn.0, error = %e, "write failed");
            lock(&self.status).last_error = Some(e.to_string());
            self.close(conn);
            self.ep.handle_eof(now, conn);
        }
    }

    /// Close a connection: its reader thread sees the end of stream and
    /// exits; what it reports afterwards names an unknown connection.
    fn close(&mut self, conn: ConnId) {
        if let Some(Conn::Open(stream)) = self.conns.remove(&conn) {
            trace!(conn = conn.0, "close");
            stream.shutdown();
        }
    }

    fn spawn_reader(&mut self, conn: ConnId) {
        let dialer = self.dialer.clone();
        let tx = self.inbox_tx.clone();
        let spawned = thread::Builder::new()
            .name(format!("socketio-conn-{}", conn.0))
            .spawn(move || read_loop(conn, &dialer, tx));
        if let Err(e) = spawned {
            warn!(error = %e, "could not spawn a connection thread");
            let _ = self
                .inbox_tx
                .try_send(Input::Net(NetEvent::Eof(conn, Some(e.into()))));
        }
    }

    fn should_exit(&mut self, now: Instant) -> bool {
        if self.stop_by.is_none() && !self.ep.socket().is_active() {
            // Every namespace is gone (refused, disconnected by the server,
            // reconnection given up): nothing more can happen.
            debug!("no namespace left: stopping");
            self.answer_ready(Err(Error::ConnectFailed));
            self.stop_by = Some(now + CLOSE_GRACE);
        }
        match self.stop_by {
            None => false,
            Some(at) => {
                let engine_done = self.ep.engine().map_or(true, |e| e.is_closed());
                now >= at || (engine_done && self.conns.is_empty())
            }
        }
    }

    fn finish(mut self) {
        for (_, conn) in self.conns.drain() {
            if let Conn::Open(stream) = conn {
                stream.shutdown();
            }
        }
        let mut status = lock(&self.status);
        status.sids.clear();
        status.all_connected = false;
        status.transport = None;
        drop(status);
        self.send_ready();
        // Dropping the event sender and the call replies tells the waiting
        // application calls that the client is gone.
        debug!("io thread done");
    }
}

/// A reader thread: connect, hand the write half to the IO thread, then
/// read until the end of the stream.
fn read_loop(conn: ConnId, dialer: &Dialer, tx: SyncSender<Input>) {
    let (mut reader, writer) = match dialer.open() {
        Ok(halves) => halves,
        Err(failure) => {
            let _ = tx.send(Input::Net(NetEvent::Eof(conn, Some(failure))));
            return;
        }
    };
    if tx
        .send(Input::Net(NetEvent::Connected(conn, writer)))
        .is_err()
    {
        return;
    }
    read_until_eof(conn, &mut reader, &tx);
}

fn read_until_eof(conn: ConnId, reader: &mut Reader, tx: &SyncSender<Input>) {
    let mut buf = vec![0; READ_CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Input::Net(NetEvent::Eof(conn, None)));
                return;
            }
            Ok(n) => {
                // Blocks while the inbox is full: the IO thread's pace
                // bounds what is read ahead.
                if tx
                    .send(Input::Net(NetEvent::Read(conn, buf[..n].to_vec())))
                    .is_err()
                {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Input::Net(NetEvent::Eof(conn, Some(e.into()))));
                return;
            }
        }
    }
}
