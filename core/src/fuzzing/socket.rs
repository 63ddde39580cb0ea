//! The Socket.IO state machines (server, client, and the server with the
//! streams cluster seam) under arbitrary engine inputs, time steps and
//! application calls.

use bytes::Bytes;

use super::FuzzRng;
use crate::engine::Message;
use crate::parser::JsonParser;
use crate::Str;

/// Reads fuzz input as a sequence of small operations.
struct Ops<'a> {
    data: &'a [u8],
}

impl<'a> Ops<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    /// A length-prefixed chunk (length byte, then up to that many bytes).
    fn chunk(&mut self) -> &'a [u8] {
        let len = self.byte().unwrap_or(0) as usize;
        let len = len.min(self.data.len());
        let (chunk, rest) = self.data.split_at(len);
        self.data = rest;
        chunk
    }
    fn message(&mut self, binary: bool) -> Message {
        let chunk = self.chunk();
        match (binary, std::str::from_utf8(chunk)) {
            (false, Ok(s)) => Message::Text(Str::from(s)),
            _ => Message::Binary(Bytes::copy_from_slice(chunk)),
        }
    }
}

const REASONS: [crate::socket::DisconnectReason; 4] = [
    crate::socket::DisconnectReason::TransportClose,
    crate::socket::DisconnectReason::TransportError,
    crate::socket::DisconnectReason::PingTimeout,
    crate::socket::DisconnectReason::ForcedClose,
];

/// The Socket.IO server state machine fed arbitrary engine-level inputs,
/// time steps and application calls; it must never panic, and once every
/// session is closed and time has passed, no socket may remain.
pub fn socket_server(data: &[u8]) {
    use crate::socket::{Broadcast, RecoveryConfig, Server, ServerConfig, ServerEvent};
    use std::time::{Duration, Instant};

    let config = ServerConfig {
        recovery: data
            .first()
            .map(|b| b & 1 == 1)
            .unwrap_or(false)
            .then(RecoveryConfig::default),
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, JsonParser, Box::new(FuzzRng::new(7)));
    let start = Instant::now();
    let mut now = start;
    let sessions = ["s0", "s1", "s2", "s3"];
    let mut sockets: Vec<Str> = Vec::new();
    let mut ops = Ops { data };
    while let Some(op) = ops.byte() {
        let k = sessions[(op >> 4) as usize % sessions.len()];
        match op % 8 {
            0 => server.handle_engine_open(now, Str::from(k)),
            1 => {
                let m = ops.message(false);
                server.handle_engine_message(now, k, m)
            }
            2 => {
                let m = ops.message(true);
                server.handle_engine_message(now, k, m)
            }
            3 => server.handle_engine_closed(now, k, REASONS[(op >> 3) as usize % 4]),
            4 => {
                now += Duration::from_millis(u64::from(ops.byte().unwrap_or(1)) * 250);
                server.handle_timeout(now);
            }
            5 => {
                let _ = server.broadcast(now, &Broadcast::namespace("/"), "news", &(1, "x"));
            }
            6 => {
                if let Some(s) = sockets.get((op >> 3) as usize % sockets.len().max(1)) {
                    let _ = server.emit_with_ack(now, s, "q", &(), Duration::from_secs(1));
                    let _ = server.join(s, "room");
                }
            }
            _ => {
                if let Some(s) = sockets.get((op >> 3) as usize % sockets.len().max(1)) {
                    let _ = server.disconnect(now, s);
                }
            }
        }
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Connect { socket, .. } => {
                    let _ = server.accept(now, &socket);
                    sockets.push(socket);
                }
                ServerEvent::Event {
                    socket,
                    ack: Some(id),
                    ..
                } => {
                    let _ = server.ack(now, &socket, id, &("ok",));
                }
                ServerEvent::Disconnect { socket, .. } => sockets.retain(|s| *s != socket),
                _ => {}
            }
        }
        while let Some(command) = server.poll_command() {
            if let crate::socket::EngineCommand::Send { eio, message } = command {
                let len = match &message {
                    Message::Text(t) => t.len(),
                    Message::Binary(b) => b.len(),
                };
                server.handle_engine_drained(now, &eio, len);
            }
        }
    }
    for k in sessions {
        server.handle_engine_closed(now, k, crate::socket::DisconnectReason::TransportClose);
    }
    now += Duration::from_secs(3600);
    server.handle_timeout(now);
    while let Some(event) = server.poll_event() {
        if let ServerEvent::Disconnect { socket, .. } = event {
            sockets.retain(|s| *s != socket);
        }
    }
    while server.poll_command().is_some() {}
    assert!(
        sockets.is_empty(),
        "sockets left after every session closed: {sockets:?}"
    );
}

/// The Socket.IO client state machine fed arbitrary server messages, engine
/// opens and closes, time steps and application calls: it must never panic.
pub fn socket_client(data: &[u8]) {
    use crate::engine::Handshake;
    use crate::socket::{Client, ClientConfig};
    use std::time::{Duration, Instant};

    let mut client = Client::new(
        ClientConfig::default(),
        JsonParser,
        Box::new(FuzzRng::new(9)),
    );
    let start = Instant::now();
    let mut now = start;
    let handshake = Handshake {
        sid: Str::from("abc"),
        upgrades: Vec::new(),
        ping_interval: 25_000,
        ping_timeout: 20_000,
        max_payload: 1_000_000,
    };
    let _ = client.connect(now, "/", None);
    let mut ops = Ops { data };
    while let Some(op) = ops.byte() {
        let nsp = ["/", "/custom"][(op >> 4) as usize % 2];
        match op % 8 {
            0 => client.handle_engine_opened(now, &handshake),
            1 => {
                let m = ops.message(false);
                client.handle_message(now, m)
            }
            2 => {
                let m = ops.message(true);
                client.handle_message(now, m)
            }
            3 => client.handle_engine_closed(now, REASONS[(op >> 3) as usize % 4]),
            4 => {
                now += Duration::from_millis(u64::from(ops.byte().unwrap_or(1)) * 250);
                client.handle_timeout(now);
            }
            5 => {
                let _ = client.connect(now, nsp, None);
            }
            6 => {
                let _ = client.emit_with_ack(now, nsp, "q", &(1,), Some(Duration::from_secs(1)));
            }
            _ => {
                let _ = client.disconnect(now, nsp);
            }
        }
        while client.poll_event().is_some() {}
        while client.poll_output().is_some() {}
    }
}

/// A server of the streams cluster format with recovery on, fed arbitrary
/// engine inputs, application calls and broker answers (stream entries,
/// append answers, range answers, taken keys) in any order, with tokens it
/// asked for or made up; it must never panic, and once every session is
/// closed and the request timeout passed, nothing waits any more (no
/// deadline left).
pub fn streams_seam(data: &[u8]) {
    use crate::cluster::{BusCommand, BusInput, StreamEntry};
    use crate::socket::{
        Broadcast, ClusterConfig, ClusterFormat, RecoveryConfig, Server, ServerConfig, ServerEvent,
    };
    use std::time::{Duration, Instant};

    let config = ServerConfig {
        recovery: Some(RecoveryConfig::default()),
        ..ServerConfig::default()
    };
    let mut server = Server::new(config, JsonParser, Box::new(FuzzRng::new(11)));
    server.enable_cluster(ClusterConfig::new(ClusterFormat::streams()));
    let stream = Str::from_static("socket.io");
    let mut now = Instant::now();
    let sessions = ["s0", "s1", "s2", "s3"];
    let mut sockets: Vec<Str> = Vec::new();
    let mut tokens: Vec<u64> = Vec::new();
    let mut next_id = 1u64;
    let mut ops = Ops { data };
    let entry = |ops: &mut Ops<'_>, next_id: &mut u64| {
        let chunk = ops.chunk();
        let fields = chunk
            .split(|&b| b == 0xFE)
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|pair| {
                (
                    Bytes::copy_from_slice(pair[0]),
                    Bytes::copy_from_slice(pair.get(1).copied().unwrap_or_default()),
                )
            })
            .collect();
        *next_id += u64::from(ops.byte().unwrap_or(1) % 4);
        StreamEntry {
            id: Str::from(format!("{next_id}-0")),
            fields,
        }
    };
    while let Some(op) = ops.byte() {
        let k = sessions[(op >> 4) as usize % sessions.len()];
        let token = |ops: &mut Ops<'_>, tokens: &[u64]| {
            let b = ops.byte().unwrap_or(0);
            match tokens.len() {
                0 => u64::from(b),
                n if b & 0x80 == 0 => tokens[b as usize % n],
                _ => u64::from(b),
            }
        };
        match op % 10 {
            0 => server.handle_engine_open(now, Str::from(k)),
            1 => {
                let m = ops.message(false);
                server.handle_engine_message(now, k, m)
            }
            2 => server.handle_engine_closed(now, k, REASONS[(op >> 3) as usize % 4]),
            3 => {
                now += Duration::from_millis(u64::from(ops.byte().unwrap_or(1)) * 100);
                server.handle_timeout(now);
            }
            4 => {
                let to = Broadcast::namespace("/");
                let to = if op & 0x10 == 0 { to } else { to.to("room") };
                let _ = server.broadcast(now, &to, "news", &(1, "x"));
            }
            5 => {
                if let Some(s) = sockets.get((op >> 3) as usize % sockets.len().max(1)) {
                    let _ = server.emit(now, s, "direct", &());
                    let _ = server.join(s, "room");
                }
            }
            6 => {
                let entry = entry(&mut ops, &mut next_id);
                let input = BusInput::StreamEntry {
                    stream: stream.clone(),
                    entry,
                };
                server.handle_bus(now, input);
            }
            7 => {
                let token = token(&mut ops, &tokens);
                let id = (op & 0x10 == 0).then(|| Str::from(format!("{next_id}-0")));
                server.handle_bus(now, BusInput::StreamAppended { token, id });
            }
            8 => {
                let token = token(&mut ops, &tokens);
                let count = ops.byte().unwrap_or(0) % 4;
                let entries = (op & 0x10 == 0).then(|| {
                    (0..count)
                        .map(|_| entry(&mut ops, &mut next_id))
                        .collect::<Vec<_>>()
                });
                server.handle_bus(now, BusInput::StreamRange { token, entries });
            }
            _ => {
                let token = token(&mut ops, &tokens);
                let value = (op & 0x10 == 0).then(|| Bytes::copy_from_slice(ops.chunk()));
                server.handle_bus(now, BusInput::KeyTaken { token, value });
            }
        }
        while let Some(command) = server.poll_bus() {
            match command {
                BusCommand::StreamAppend { token, .. }
                | BusCommand::StreamRange { token, .. }
                | BusCommand::TakeKey { token, .. } => {
                    tokens.push(token);
                    if tokens.len() > 64 {
                        tokens.remove(0);
                    }
                }
                _ => {}
            }
        }
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Connect { socket, .. } => {
                    let _ = server.accept(now, &socket);
                    sockets.push(socket);
                }
                ServerEvent::Disconnect { socket, .. } => sockets.retain(|s| *s != socket),
                _ => {}
            }
        }
        while server.poll_command().is_some() {}
    }
    for k in sessions {
        server.handle_engine_closed(now, k, REASONS[0]);
    }
    now += Duration::from_secs(600);
    server.handle_timeout(now);
    while server.poll_bus().is_some() {}
    while server.poll_event().is_some() {}
    assert_eq!(server.poll_timeout(), None, "something still waits");
}
