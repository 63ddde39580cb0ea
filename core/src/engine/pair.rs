//! Test harness: a [`Server`] and some [`Client`]s wired together in
//! memory, on a virtual clock, in the style of quinn-proto's tests.
//!
//! [`Pair::drive`] moves bytes both ways until nothing happens any more;
//! [`Pair::advance`] moves the clock, firing each side's timer at its
//! deadline in order. The network can be made hostile: bytes delivered in
//! random chunks or one by one, connections cut on one side only, bytes
//! dropped, directions stalled.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::client::{Client, ClientAction, ClientEvent};
use super::config::{ClientConfig, ServerConfig};
use super::packet::Message;
use super::server::{ConnId, Server, ServerEvent, Transmit};

/// How bytes are handed to the receiving side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// Each write as one read.
    Whole,
    /// Each write cut into random pieces (from the pair's seeded generator).
    Random,
    /// One byte per read.
    ByteByByte,
}

/// What travels on one direction of a connection.
#[derive(Debug)]
enum Segment {
    Data(Bytes),
    Eof,
}

/// One TCP connection between a client and the server.
#[derive(Debug)]
struct Link {
    client: usize,
    client_conn: ConnId,
    server_conn: ConnId,
    to_server: VecDeque<Segment>,
    to_client: VecDeque<Segment>,
    /// Bytes in this direction wait (not lost) while set.
    stall_to_server: bool,
    stall_to_client: bool,
    /// Bytes in this direction vanish while set.
    mute_to_server: bool,
    mute_to_client: bool,
    /// The next this many bytes towards each side are lost.
    drop_to_server: usize,
    drop_to_client: usize,
    /// The client end is gone (it closed it, or was told of its end).
    client_done: bool,
    /// The server end is gone.
    server_done: bool,
}

/// One client and what it reported.
pub struct ClientSide {
    /// The endpoint.
    pub client: Client,
    /// Every event it produced, in order (tests drain it).
    pub events: Vec<ClientEvent>,
    /// New connections are never established (a dead server).
    blackholed: bool,
    /// New connections start with the client-to-server direction muted.
    muted: bool,
}

/// A server and its clients on a virtual clock.
pub struct Pair {
    /// The server endpoint.
    pub server: Server,
    /// The clients, by index.
    pub clients: Vec<ClientSide>,
    /// Every server event, in order (tests drain it).
    pub server_events: Vec<ServerEvent>,
    /// How bytes are delivered.
    pub chunking: Chunking,
    /// Bytes the clients wrote, all connections together.
    pub bytes_to_server: usize,
    /// Bytes the server wrote, all connections together.
    pub bytes_to_client: usize,
    epoch: Instant,
    offset: Duration,
    links: Vec<Link>,
    by_client: HashMap<(usize, ConnId), usize>,
    by_server: HashMap<ConnId, usize>,
    rng: ChaCha8Rng,
    seeds: u64,
}

/// Rounds of [`Pair::step`] after which [`Pair::drive`] assumes a livelock.
const MAX_ROUNDS: usize = 1_000_000;

impl Pair {
    /// A server with `server` options and one client with `client` options
    /// (client 0), not yet driven.
    pub fn new(server: ServerConfig, client: ClientConfig) -> Pair {
        let mut pair = Pair::server_only(server);
        pair.add_client(client);
        pair
    }

    /// A server with no client.
    pub fn server_only(config: ServerConfig) -> Pair {
        Pair {
            server: Server::new(config, Box::new(ChaCha8Rng::seed_from_u64(1))),
            clients: Vec::new(),
            server_events: Vec::new(),
            chunking: Chunking::Whole,
            bytes_to_server: 0,
            bytes_to_client: 0,
            epoch: Instant::now(),
            offset: Duration::ZERO,
            links: Vec::new(),
            by_client: HashMap::new(),
            by_server: HashMap::new(),
            rng: ChaCha8Rng::seed_from_u64(2),
            seeds: 100,
        }
    }

    /// Seeds the generator behind [`Chunking::Random`].
    pub fn seed_chunking(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Adds a client; returns its index.
    pub fn add_client(&mut self, config: ClientConfig) -> usize {
        self.seeds += 1;
        let rng = Box::new(ChaCha8Rng::seed_from_u64(self.seeds));
        let client = Client::new(config, rng, self.now());
        self.clients.push(ClientSide {
            client,
            events: Vec::new(),
            blackholed: false,
            muted: false,
        });
        self.clients.len() - 1
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.epoch + self.offset
    }

    /// Time since the pair was created.
    pub fn elapsed(&self) -> Duration {
        self.offset
    }

    /// Client `index`.
    pub fn client(&mut self, index: usize) -> &mut Client {
        &mut self.clients[index].client
    }

    /// Takes the events client `index` reported so far.
    pub fn client_events(&mut self, index: usize) -> Vec<ClientEvent> {
        std::mem::take(&mut self.clients[index].events)
    }

    /// Takes the server events so far.
    pub fn server_events(&mut self) -> Vec<ServerEvent> {
        std::mem::take(&mut self.server_events)
    }

    /// Messages client `index` received so far, taking its events.
    pub fn client_messages(&mut self, index: usize) -> Vec<Message> {
        self.client_events(index)
            .into_iter()
            .filter_map(|event| match event {
                ClientEvent::Message(message) => Some(message),
                _ => None,
            })
            .collect()
    }

    /// Messages the server received so far (on any session), taking its
    /// events.
    pub fn server_messages(&mut self) -> Vec<Message> {
        self.server_events()
            .into_iter()
            .filter_map(|event| match event {
                ServerEvent::Message { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    }

    /// The session id of client `index` (panics before its handshake).
    pub fn sid(&self, index: usize) -> String {
        self.clients[index]
            .client
            .sid()
            .expect("client is open")
            .to_owned()
    }

    /// Queues a message on client `index` (not driven).
    pub fn client_send(&mut self, index: usize, message: Message) {
        let now = self.now();
        self.clients[index]
            .client
            .send(now, message)
            .expect("client accepts the message");
    }

    /// Queues a message from the server to client `index`'s session.
    pub fn server_send(&mut self, index: usize, message: Message) {
        let now = self.now();
        let sid = self.sid(index);
        self.server
            .send(now, &sid, message)
            .expect("server accepts the message");
    }

    /// Runs [`Pair::step`] until nothing moves.
    pub fn drive(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.step() {
                return;
            }
        }
        panic!("no quiescence after {MAX_ROUNDS} rounds: livelock");
    }

    /// One round: clients' events and actions, bytes to the server, the
    /// server's events and transmissions, bytes to the clients. Returns
    /// whether anything happened.
    pub fn step(&mut self) -> bool {
        let mut progress = false;
        let now = self.now();
        for index in 0..self.clients.len() {
            progress |= self.drain_client(index, now);
        }
        progress |= self.deliver_to_server(now);
        progress |= self.drain_server();
        progress |= self.deliver_to_clients(now);
        for index in 0..self.clients.len() {
            let side = &mut self.clients[index];
            while let Some(event) = side.client.poll_event() {
                side.events.push(event);
                progress = true;
            }
        }
        progress
    }

    fn drain_client(&mut self, index: usize, now: Instant) -> bool {
        let mut progress = false;
        loop {
            let side = &mut self.clients[index];
            while let Some(event) = side.client.poll_event() {
                side.events.push(event);
                progress = true;
            }
            let Some(action) = side.client.poll_action() else {
                return progress;
            };
            progress = true;
            match action {
                ClientAction::Connect(client_conn) => {
                    if side.blackholed {
                        // The connection attempt hangs forever.
                        continue;
                    }
                    let muted = side.muted;
                    let server_conn = self.server.handle_connection(now, None);
                    let link = self.links.len();
                    self.links.push(Link {
                        client: index,
                        client_conn,
                        server_conn,
                        to_server: VecDeque::new(),
                        to_client: VecDeque::new(),
                        stall_to_server: false,
                        stall_to_client: false,
                        mute_to_server: muted,
                        mute_to_client: false,
                        drop_to_server: 0,
                        drop_to_client: 0,
                        client_done: false,
                        server_done: false,
                    });
                    self.by_client.insert((index, client_conn), link);
                    self.by_server.insert(server_conn, link);
                    self.clients[index]
                        .client
                        .handle_connected(now, client_conn);
                }
                ClientAction::Data(client_conn, bytes) => {
                    let len = bytes.len();
                    if let Some(link) = self.link_of_client(index, client_conn) {
                        if !link.client_done && !link.mute_to_server {
                            link.to_server.push_back(Segment::Data(bytes));
                            self.bytes_to_server += len;
                        }
                    }
                }
                ClientAction::Close(client_conn) => {
                    if let Some(link) = self.link_of_client(index, client_conn) {
                        if !link.client_done {
                            link.client_done = true;
                            link.to_client.clear();
                            if !link.mute_to_server {
                                link.to_server.push_back(Segment::Eof);
                            }
                        }
                    }
                }
            }
        }
    }

    fn link_of_client(&mut self, index: usize, conn: ConnId) -> Option<&mut Link> {
        let link = *self.by_client.get(&(index, conn))?;
        Some(&mut self.links[link])
    }

    fn drain_server(&mut self) -> bool {
        let mut progress = false;
        while let Some(event) = self.server.poll_event() {
            self.server_events.push(event);
            progress = true;
        }
        while let Some(server_conn) = self.server.poll_ready() {
            while let Some(transmit) = self.server.poll_transmit(server_conn) {
                progress = true;
                let Some(&link) = self.by_server.get(&server_conn) else {
                    continue;
                };
                let link = &mut self.links[link];
                if link.server_done {
                    continue;
                }
                match transmit {
                    Transmit::Data(bytes) => {
                        if !link.client_done && !link.mute_to_client {
                            self.bytes_to_client += bytes.len();
                            link.to_client.push_back(Segment::Data(bytes));
                        }
                    }
                    Transmit::Close => {
                        link.server_done = true;
                        link.to_server.clear();
                        if !link.mute_to_client {
                            link.to_client.push_back(Segment::Eof);
                        }
                    }
                }
            }
        }
        while let Some(event) = self.server.poll_event() {
            self.server_events.push(event);
            progress = true;
        }
        progress
    }

    fn deliver_to_server(&mut self, now: Instant) -> bool {
        let mut progress = false;
        for link in 0..self.links.len() {
            while !self.links[link].stall_to_server {
                let Some(segment) = self.links[link].to_server.pop_front() else {
                    break;
                };
                progress = true;
                let server_conn = self.links[link].server_conn;
                match segment {
                    Segment::Data(bytes) => {
                        let bytes = cut_front(&mut self.links[link].drop_to_server, bytes);
                        for chunk in chunks(self.chunking, &mut self.rng, &bytes) {
                            if self.links[link].server_done {
                                break;
                            }
                            self.server.handle_read(now, server_conn, chunk);
                        }
                    }
                    Segment::Eof => {
                        if !self.links[link].server_done {
                            self.links[link].server_done = true;
                            self.server.handle_eof(now, server_conn);
                        }
                    }
                }
                // The server may have answered: move its output first so
                // bytes keep their order relative to later input.
                self.drain_server();
            }
        }
        progress
    }

    fn deliver_to_clients(&mut self, now: Instant) -> bool {
        let mut progress = false;
        for link in 0..self.links.len() {
            while !self.links[link].stall_to_client {
                let Some(segment) = self.links[link].to_client.pop_front() else {
                    break;
                };
                progress = true;
                let Link {
                    client,
                    client_conn,
                    ..
                } = self.links[link];
                match segment {
                    Segment::Data(bytes) => {
                        let bytes = cut_front(&mut self.links[link].drop_to_client, bytes);
                        for chunk in chunks(self.chunking, &mut self.rng, &bytes) {
                            if self.links[link].client_done {
                                break;
                            }
                            self.clients[client]
                                .client
                                .handle_read(now, client_conn, chunk);
                        }
                    }
                    Segment::Eof => {
                        if !self.links[link].client_done {
                            self.links[link].client_done = true;
                            self.clients[client].client.handle_eof(now, client_conn);
                        }
                    }
                }
            }
        }
        progress
    }

    /// Moves the clock forward by `by`, stopping at every deadline on the
    /// way (server's and clients', earliest first) to fire it, driving after
    /// each.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now() + by;
        self.drive();
        let mut fired_at_same_time = 0;
        let mut last = None;
        loop {
            let next = self
                .clients
                .iter()
                .filter_map(|side| side.client.poll_timeout())
                .chain(self.server.poll_timeout())
                .min();
            let Some(deadline) = next.filter(|deadline| *deadline <= target) else {
                break;
            };
            if deadline > self.now() {
                self.offset = deadline - self.epoch;
            }
            if last == Some(deadline) {
                fired_at_same_time += 1;
                assert!(
                    fired_at_same_time < 10_000,
                    "a deadline fires without moving: timer livelock"
                );
            } else {
                fired_at_same_time = 0;
                last = Some(deadline);
            }
            let now = self.now();
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
            for side in &mut self.clients {
                if side.client.poll_timeout().is_some_and(|t| t <= now) {
                    side.client.handle_timeout(now);
                }
            }
            self.drive();
        }
        self.offset = target - self.epoch;
        self.drive();
    }

    /// Advances by `step` `count` times.
    pub fn advance_by_steps(&mut self, step: Duration, count: usize) {
        for _ in 0..count {
            self.advance(step);
        }
    }

    fn links_of(&mut self, index: usize) -> impl Iterator<Item = &mut Link> {
        self.links
            .iter_mut()
            .filter(move |link| link.client == index)
    }

    /// The client's connections that are open on the client side.
    pub fn open_conns(&self, index: usize) -> Vec<ConnId> {
        self.links
            .iter()
            .filter(|link| link.client == index && !link.client_done)
            .map(|link| link.client_conn)
            .collect()
    }

    /// The client learns that `conn` died; the server is not told.
    pub fn cut_client_side(&mut self, index: usize, conn: ConnId) {
        let now = self.now();
        if let Some(link) = self.link_of_client(index, conn) {
            link.client_done = true;
            link.to_client.clear();
            link.mute_to_server = true;
            link.to_server.clear();
        }
        self.clients[index].client.handle_eof(now, conn);
    }

    /// The server learns that `conn` (client side id) died; the client is
    /// not told.
    pub fn cut_server_side(&mut self, index: usize, conn: ConnId) {
        let now = self.now();
        let Some(link) = self.link_of_client(index, conn) else {
            return;
        };
        if link.server_done {
            return;
        }
        link.server_done = true;
        link.to_server.clear();
        link.mute_to_client = true;
        link.to_client.clear();
        let server_conn = link.server_conn;
        self.server.handle_eof(now, server_conn);
    }

    /// The next `count` bytes the server sends on `conn` are lost.
    pub fn drop_to_client(&mut self, index: usize, conn: ConnId, count: usize) {
        if let Some(link) = self.link_of_client(index, conn) {
            link.drop_to_client += count;
        }
    }

    /// The next `count` bytes the client sends on `conn` are lost.
    pub fn drop_to_server(&mut self, index: usize, conn: ConnId, count: usize) {
        if let Some(link) = self.link_of_client(index, conn) {
            link.drop_to_server += count;
        }
    }

    /// Holds (or releases) bytes on `conn` in both directions.
    pub fn stall(&mut self, index: usize, conn: ConnId, stalled: bool) {
        if let Some(link) = self.link_of_client(index, conn) {
            link.stall_to_server = stalled;
            link.stall_to_client = stalled;
        }
    }

    /// The server vanishes for client `index` without a word: every
    /// connection, current and future, carries nothing any more.
    pub fn blackhole(&mut self, index: usize) {
        self.clients[index].blackholed = true;
        for link in self.links_of(index) {
            link.mute_to_server = true;
            link.mute_to_client = true;
            link.to_server.clear();
            link.to_client.clear();
        }
    }

    /// Client `index` stops being heard: what it sends, now and on future
    /// connections, is lost; it still receives.
    pub fn mute_client(&mut self, index: usize) {
        self.clients[index].muted = true;
        for link in self.links_of(index) {
            link.mute_to_server = true;
            link.to_server.clear();
        }
    }
}

/// Drops up to `*count` bytes from the front of `bytes`.
fn cut_front(count: &mut usize, mut bytes: Bytes) -> Bytes {
    let cut = (*count).min(bytes.len());
    *count -= cut;
    let _ = bytes.split_to(cut);
    bytes
}

/// Splits `bytes` into the reads the receiver gets.
fn chunks<'a>(mode: Chunking, rng: &mut ChaCha8Rng, bytes: &'a [u8]) -> Vec<&'a [u8]> {
    match mode {
        Chunking::Whole => vec![bytes],
        Chunking::ByteByByte => bytes.chunks(1).collect(),
        Chunking::Random => {
            let mut out = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                let len = 1 + (rng.next_u32() as usize) % rest.len();
                let (head, tail) = rest.split_at(len);
                out.push(head);
                rest = tail;
            }
            out
        }
    }
}

#[cfg(test)]
mod tests;
