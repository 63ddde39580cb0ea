//! ZMTP 3.0/3.1, ZeroMQ's wire protocol, as a sans-IO peer of one TCP
//! connection: the part a PUSH or SUB socket needs to talk to libzmq.
//!
//! Written from RFC 23 (ZMTP 3.0) and RFC 37 (ZMTP 3.1): the 64-byte
//! greeting (version 3.1 offered, 3.0 peers accepted), the NULL security
//! mechanism only (no PLAIN, no CURVE), the `READY` command with its
//! `Socket-Type` and `Identity` properties, subscriptions (the 3.1
//! `SUBSCRIBE`/`CANCEL` commands, or the 3.0 form, a message whose first
//! byte is 1 or 0, for a 3.0 peer: libzmq's PUB reads both), `PING`
//! answered with `PONG`, `ERROR`, and short and long frames with the MORE
//! flag making multipart messages.
//!
//! [`ZmtpSocket`] takes the peer's bytes in [`ZmtpSocket::handle_bytes`]
//! and gives back [`ZmtpEvent`]s ([`ZmtpSocket::poll_event`]) and the bytes
//! to write ([`ZmtpSocket::poll_transmit`]). The peer may be hostile: a
//! message over [`ZmtpLimits`] is skipped as it streams past (never held
//! whole) and reported as [`ZmtpEvent::Oversized`]; anything malformed is
//! a [`ZmtpError`] after which the connection is dead (the error stays).

use std::collections::VecDeque;
use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

#[cfg(test)]
mod tests;

/// Length of the greeting each side sends first.
pub const GREETING_LEN: usize = 64;

/// Flag bits of a frame's first byte.
const MORE: u8 = 0x01;
const LONG: u8 = 0x02;
const COMMAND: u8 = 0x04;

/// Longest `PING` context a `PONG` echoes (RFC 37).
const MAX_PING_CONTEXT: usize = 16;

/// The socket types of RFC 23 (the draft types of later libzmq are not
/// spoken here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketType {
    /// `PAIR`.
    Pair,
    /// `PUB`.
    Pub,
    /// `SUB`.
    Sub,
    /// `REQ`.
    Req,
    /// `REP`.
    Rep,
    /// `DEALER`.
    Dealer,
    /// `ROUTER`.
    Router,
    /// `PULL`.
    Pull,
    /// `PUSH`.
    Push,
    /// `XPUB`.
    XPub,
    /// `XSUB`.
    XSub,
}

impl SocketType {
    const ALL: [SocketType; 11] = [
        SocketType::Pair,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Pull,
        SocketType::Push,
        SocketType::XPub,
        SocketType::XSub,
    ];

    /// The name in the `Socket-Type` property.
    pub fn name(self) -> &'static str {
        match self {
            SocketType::Pair => "PAIR",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
            SocketType::Req => "REQ",
            SocketType::Rep => "REP",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
            SocketType::Pull => "PULL",
            SocketType::Push => "PUSH",
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
        }
    }

    /// The type named `name` (exact, as libzmq compares it).
    pub fn from_name(name: &[u8]) -> Option<SocketType> {
        SocketType::ALL
            .into_iter()
            .find(|t| t.name().as_bytes() == name)
    }

    /// Whether a socket of this type may talk to a peer of type `peer`
    /// (RFC 23's table of valid pairs).
    pub fn accepts(self, peer: SocketType) -> bool {
        use SocketType::*;
        match self {
            Pair => peer == Pair,
            Pub | XPub => matches!(peer, Sub | XSub),
            Sub | XSub => matches!(peer, Pub | XPub),
            Req => matches!(peer, Rep | Router),
            Rep => matches!(peer, Req | Dealer),
            Dealer => matches!(peer, Rep | Dealer | Router),
            Router => matches!(peer, Req | Dealer | Router),
            Pull => peer == Push,
            Push => peer == Pull,
        }
    }
}

/// Limits on what a [`ZmtpSocket`] accepts from its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZmtpLimits {
    /// Largest message, all its frames together; a larger one is skipped
    /// ([`ZmtpEvent::Oversized`]). No frame is held larger than this.
    pub max_message_bytes: u64,
    /// Most frames in one message; a message with more is skipped.
    pub max_parts: usize,
    /// Largest command (the `READY` metadata among them); a larger one is
    /// an error.
    pub max_command_bytes: usize,
}

impl Default for ZmtpLimits {
    /// 16 MiB messages (the cluster's [`super::BusLimits`] default), 64
    /// frames, 64 KiB commands.
    fn default() -> Self {
        ZmtpLimits {
            max_message_bytes: 16 << 20,
            max_parts: 64,
            max_command_bytes: 64 << 10,
        }
    }
}

/// Malformed or refused input from the peer; the connection cannot be
/// used after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZmtpError {
    /// The first bytes are not a ZMTP 3 signature (a ZMTP 1.0 peer, or no
    /// ZeroMQ at all).
    BadSignature,
    /// A ZMTP version before 3.0.
    UnsupportedVersion {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// The peer's security mechanism is not `NULL`.
    Mechanism(String),
    /// A frame's flags byte has reserved bits set.
    BadFlags(u8),
    /// A command larger than [`ZmtpLimits::max_command_bytes`].
    CommandTooLarge {
        /// Its announced size.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// The handshake did not start with `READY` (the name of what came).
    NotReady(String),
    /// The `READY` metadata is malformed, lacks `Socket-Type` or names a
    /// type this socket cannot talk to.
    BadMetadata(String),
    /// The peer's type cannot be paired with ours.
    IncompatiblePeer {
        /// Our type.
        ours: SocketType,
        /// The peer's.
        peer: SocketType,
    },
    /// The peer sent `ERROR` with this reason.
    Peer(String),
    /// A command frame is malformed (what is wrong).
    Malformed(&'static str),
}

impl fmt::Display for ZmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZmtpError::BadSignature => f.write_str("not a ZMTP 3 greeting"),
            ZmtpError::UnsupportedVersion { major, minor } => {
                write!(f, "ZMTP {major}.{minor} is not supported (3.0 or later)")
            }
            ZmtpError::Mechanism(m) => write!(f, "security mechanism {m:?} is not NULL"),
            ZmtpError::BadFlags(b) => write!(f, "ZMTP frame flags 0x{b:02x} have reserved bits"),
            ZmtpError::CommandTooLarge { size, limit } => {
                write!(
                    f,
                    "ZMTP command of {size} bytes exceeds the limit of {limit}"
                )
            }
            ZmtpError::NotReady(what) => write!(f, "ZMTP handshake: {what} where READY was due"),
            ZmtpError::BadMetadata(why) => write!(f, "ZMTP READY metadata: {why}"),
            ZmtpError::IncompatiblePeer { ours, peer } => write!(
                f,
                "a {} socket cannot talk to a {} peer",
                ours.name(),
                peer.name()
            ),
            ZmtpError::Peer(reason) => write!(f, "the peer sent ERROR: {reason}"),
            ZmtpError::Malformed(what) => write!(f, "malformed ZMTP command: {what}"),
        }
    }
}

impl std::error::Error for ZmtpError {}

/// What the peer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZmtpEvent {
    /// The handshake is done.
    Ready {
        /// The peer's socket type.
        peer: SocketType,
        /// The ZMTP minor version both use (0 or 1).
        minor: u8,
        /// The peer's metadata properties, in order (names as sent).
        metadata: Vec<(String, Bytes)>,
    },
    /// A message: its frames, in order.
    Message(Vec<Bytes>),
    /// A message over the limits went by unread.
    Oversized {
        /// Its size, all frames together.
        bytes: u64,
        /// Its frames.
        parts: usize,
    },
    /// The peer (a publisher's subscriber) subscribed to a prefix.
    Subscribe(Bytes),
    /// The peer cancelled a subscription.
    Cancel(Bytes),
    /// The answer to [`ZmtpSocket::ping`], with its context.
    Pong(Bytes),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Handshake,
    Open,
}

/// Frames of an oversized message still to discard.
#[derive(Debug, Clone, Copy)]
struct Skip {
    /// Bytes of the current frame's body still to come.
    remaining: u64,
    /// Whether more frames follow the current one.
    more: bool,
}

/// One ZMTP connection, sans-IO: see the [module](self) documentation.
#[derive(Debug)]
pub struct ZmtpSocket {
    kind: SocketType,
    limits: ZmtpLimits,
    state: State,
    error: Option<ZmtpError>,
    input: BytesMut,
    output: BytesMut,
    events: VecDeque<ZmtpEvent>,
    /// The peer's minor version, once its greeting is read.
    minor: Option<u8>,
    peer: Option<SocketType>,
    /// Frames of the message being received.
    parts: Vec<Bytes>,
    /// Their size, and that of the frames of a message being skipped.
    message_bytes: u64,
    /// Frames seen of the current message (kept or skipped).
    message_parts: usize,
    skip: Option<Skip>,
    /// Subscriptions asked before the handshake was done: (subscribe,
    /// topic).
    pending: Vec<(bool, Bytes)>,
    /// Messages queued before the handshake was done, encoded.
    held: BytesMut,
}

impl ZmtpSocket {
    /// A connection of our socket type `kind`, its greeting and `READY`
    /// (with `identity`, at most 255 bytes, when given) already queued for
    /// [`ZmtpSocket::poll_transmit`].
    pub fn new(kind: SocketType, identity: Option<&[u8]>, limits: ZmtpLimits) -> ZmtpSocket {
        let mut output = BytesMut::with_capacity(GREETING_LEN + 64);
        output.put_u8(0xff);
        output.put_bytes(0, 8);
        output.put_u8(0x7f);
        output.put_slice(&[3, 1]);
        let mut mechanism = [0u8; 20];
        mechanism[..4].copy_from_slice(b"NULL");
        output.put_slice(&mechanism);
        // as-server: we connect; NULL ignores it anyway.
        output.put_u8(0);
        output.put_bytes(0, 31);
        let mut ready = BytesMut::new();
        put_property(&mut ready, "Socket-Type", kind.name().as_bytes());
        if let Some(id) = identity {
            put_property(&mut ready, "Identity", &id[..id.len().min(255)]);
        }
        put_command(&mut output, "READY", &ready);
        ZmtpSocket {
            kind,
            limits,
            state: State::Greeting,
            error: None,
            input: BytesMut::new(),
            output,
            events: VecDeque::new(),
            minor: None,
            peer: None,
            parts: Vec::new(),
            message_bytes: 0,
            message_parts: 0,
            skip: None,
            pending: Vec::new(),
            held: BytesMut::new(),
        }
    }

    /// Our socket type.
    pub fn kind(&self) -> SocketType {
        self.kind
    }

    /// The peer's socket type, once its `READY` is read.
    pub fn peer(&self) -> Option<SocketType> {
        self.peer
    }

    /// The ZMTP minor version spoken (the lower of both), once the peer's
    /// greeting is read.
    pub fn minor(&self) -> Option<u8> {
        self.minor
    }

    /// Whether the handshake is done.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Bytes received and not consumed yet (at most one frame's header
    /// and body within the limits).
    pub fn buffered(&self) -> usize {
        self.input.len()
    }

    /// Take bytes from the peer: events become ready. After an error every
    /// call returns it again.
    pub fn handle_bytes(&mut self, data: &[u8]) -> Result<(), ZmtpError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let mut data = data;
        // Bytes of a skipped frame are dropped as they come, unbuffered.
        while !data.is_empty() {
            if let Some(skip) = &mut self.skip {
                if skip.remaining > 0 && self.input.is_empty() {
                    let n = (skip.remaining.min(data.len() as u64)) as usize;
                    skip.remaining -= n as u64;
                    data = &data[n..];
                    self.finish_skip_frame();
                    continue;
                }
            }
            // Feed at most what completes the next header or body, so that
            // a skip starting inside `data` sees the rest unbuffered.
            let want = self.wanted().max(1);
            let n = want.min(data.len());
            self.input.extend_from_slice(&data[..n]);
            data = &data[n..];
            if let Err(e) = self.decode() {
                self.error = Some(e.clone());
                self.input.clear();
                self.parts.clear();
                return Err(e);
            }
        }
        Ok(())
    }

    /// How many more input bytes the decoder needs for its next step.
    fn wanted(&self) -> usize {
        match self.state {
            State::Greeting => GREETING_LEN.saturating_sub(self.input.len()),
            _ => match frame_header(&self.input) {
                None => {
                    let header: usize = if self.input.first().is_some_and(|f| f & LONG != 0) {
                        9
                    } else {
                        2
                    };
                    header.saturating_sub(self.input.len())
                }
                Some((_, size, header)) => {
                    // Oversized frames are skipped once the header is in.
                    let body = size.min(self.limits.max_message_bytes) as usize;
                    (header + body).saturating_sub(self.input.len())
                }
            },
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ZmtpEvent> {
        self.events.pop_front()
    }

    /// Bytes to write to the peer, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.output.is_empty()).then(|| self.output.split().freeze())
    }

    /// Queue a message of `parts` (at least one; an empty list sends one
    /// empty frame). Held until the handshake is done: libzmq drops a
    /// connection on which a message comes before it has sent its own
    /// `READY`.
    pub fn send(&mut self, parts: &[&[u8]]) {
        let out = if self.state == State::Open {
            &mut self.output
        } else {
            &mut self.held
        };
        if parts.is_empty() {
            put_frame(out, 0, &[]);
            return;
        }
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            put_frame(out, if i < last { MORE } else { 0 }, part);
        }
    }

    /// Subscribe to messages starting with `topic` (empty: all), in the
    /// form the peer's version reads; held until the handshake is done.
    pub fn subscribe(&mut self, topic: &[u8]) {
        self.subscription(true, Bytes::copy_from_slice(topic));
    }

    /// Cancel a subscription made with [`ZmtpSocket::subscribe`].
    pub fn cancel(&mut self, topic: &[u8]) {
        self.subscription(false, Bytes::copy_from_slice(topic));
    }

    fn subscription(&mut self, subscribe: bool, topic: Bytes) {
        if self.state != State::Open {
            self.pending.push((subscribe, topic));
            return;
        }
        match self.minor {
            None => self.pending.push((subscribe, topic)),
            // ZMTP 3.1: a command.
            Some(1..) => put_command(
                &mut self.output,
                if subscribe { "SUBSCRIBE" } else { "CANCEL" },
                &topic,
            ),
            // ZMTP 3.0: a message, 1 or 0 then the prefix.
            Some(0) => {
                let mut body = Vec::with_capacity(topic.len() + 1);
                body.push(u8::from(subscribe));
                body.extend_from_slice(&topic);
                put_frame(&mut self.output, 0, &body);
            }
        }
    }

    /// Queue a `PING` with `context` (at most 16 bytes kept) and a TTL in
    /// tenths of a second; the peer answers [`ZmtpEvent::Pong`]. Only ZMTP
    /// 3.1 has it: returns whether it was queued (not before the handshake
    /// is done, nor to a 3.0 peer).
    pub fn ping(&mut self, ttl_deciseconds: u16, context: &[u8]) -> bool {
        if self.state != State::Open || !matches!(self.minor, Some(1..)) {
            return false;
        }
        let mut body = Vec::with_capacity(2 + MAX_PING_CONTEXT);
        body.extend_from_slice(&ttl_deciseconds.to_be_bytes());
        body.extend_from_slice(&context[..context.len().min(MAX_PING_CONTEXT)]);
        put_command(&mut self.output, "PING", &body);
        true
    }

    fn decode(&mut self) -> Result<(), ZmtpError> {
        loop {
            match self.state {
                State::Greeting => {
                    if self.input.len() < GREETING_LEN {
                        return Ok(());
                    }
                    let greeting = self.input.split_to(GREETING_LEN);
                    self.greeting(&greeting)?;
                }
                State::Handshake | State::Open => {
                    self.check_flags()?;
                    let Some((flags, size, header)) = frame_header(&self.input) else {
                        return Ok(());
                    };
                    if flags & COMMAND != 0 {
                        if size > self.limits.max_command_bytes as u64 {
                            return Err(ZmtpError::CommandTooLarge {
                                size,
                                limit: self.limits.max_command_bytes,
                            });
                        }
                        if self.input.len() < header + size as usize {
                            return Ok(());
                        }
                        self.input.advance(header);
                        let body = self.input.split_to(size as usize).freeze();
                        self.command(flags, body)?;
                    } else {
                        if self.state == State::Handshake {
                            return Err(ZmtpError::NotReady("a message".into()));
                        }
                        if !self.message_frame(flags, size, header) {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }

    /// Reserved flag bits are refused as soon as the flags byte is in.
    fn check_flags(&self) -> Result<(), ZmtpError> {
        match self.input.first() {
            Some(&f) if f & !(MORE | LONG | COMMAND) != 0 => Err(ZmtpError::BadFlags(f)),
            _ => Ok(()),
        }
    }

    fn greeting(&mut self, g: &[u8]) -> Result<(), ZmtpError> {
        if g[0] != 0xff || g[9] & 1 == 0 {
            return Err(ZmtpError::BadSignature);
        }
        let (major, minor) = (g[10], g[11]);
        if major < 3 {
            return Err(ZmtpError::UnsupportedVersion { major, minor });
        }
        // A later version talks down to ours (3.1).
        let minor = if major > 3 { 1 } else { minor.min(1) };
        let mechanism = &g[12..32];
        let end = mechanism.iter().position(|&b| b == 0).unwrap_or(20);
        if &mechanism[..end] != b"NULL" || mechanism[end..].iter().any(|&b| b != 0) {
            return Err(ZmtpError::Mechanism(
                String::from_utf8_lossy(&mechanism[..end]).into_owned(),
            ));
        }
        self.minor = Some(minor);
        self.state = State::Handshake;
        Ok(())
    }

    fn command(&mut self, flags: u8, body: Bytes) -> Result<(), ZmtpError> {
        if flags & MORE != 0 {
            return Err(ZmtpError::Malformed("a command with the MORE flag"));
        }
        let (&len, rest) = body
            .split_first()
            .ok_or(ZmtpError::Malformed("empty command"))?;
        let len = len as usize;
        if len == 0 || rest.len() < len {
            return Err(ZmtpError::Malformed("bad command name"));
        }
        let name = &rest[..len];
        let data = body.slice(1 + len..);
        if name == b"ERROR" {
            let reason = match data.split_first() {
                Some((&n, r)) if r.len() >= n as usize => &r[..n as usize],
                _ => &data[..],
            };
            return Err(ZmtpError::Peer(
                String::from_utf8_lossy(reason).into_owned(),
            ));
        }
        if self.state == State::Handshake {
            if name != b"READY" {
                return Err(ZmtpError::NotReady(format!(
                    "command {}",
                    String::from_utf8_lossy(name)
                )));
            }
            return self.ready(&data);
        }
        match name {
            b"PING" => {
                if data.len() < 2 {
                    return Err(ZmtpError::Malformed("PING without a TTL"));
                }
                let context = &data[2..];
                let context = &context[..context.len().min(MAX_PING_CONTEXT)];
                put_command(&mut self.output, "PONG", context);
            }
            b"PONG" => self.events.push_back(ZmtpEvent::Pong(data)),
            b"SUBSCRIBE" => self.events.push_back(ZmtpEvent::Subscribe(data)),
            b"CANCEL" => self.events.push_back(ZmtpEvent::Cancel(data)),
            b"READY" => return Err(ZmtpError::Malformed("a second READY")),
            // Commands of later versions or mechanisms: ignored (RFC 37).
            _ => {}
        }
        Ok(())
    }

    fn ready(&mut self, mut data: &[u8]) -> Result<(), ZmtpError> {
        let bad = |why: &str| ZmtpError::BadMetadata(why.into());
        let mut metadata = Vec::new();
        let mut peer = None;
        while let Some((&n, rest)) = data.split_first() {
            let n = n as usize;
            if n == 0 || rest.len() < n + 4 {
                return Err(bad("truncated property"));
            }
            let name = std::str::from_utf8(&rest[..n]).map_err(|_| bad("name not UTF-8"))?;
            let size = u32::from_be_bytes([rest[n], rest[n + 1], rest[n + 2], rest[n + 3]]);
            let rest = &rest[n + 4..];
            let size = size as usize;
            if rest.len() < size {
                return Err(bad("truncated value"));
            }
            let value = Bytes::copy_from_slice(&rest[..size]);
            if name.eq_ignore_ascii_case("Socket-Type") {
                let t = SocketType::from_name(&value).ok_or_else(|| {
                    ZmtpError::BadMetadata(format!(
                        "unknown Socket-Type {:?}",
                        String::from_utf8_lossy(&value)
                    ))
                })?;
                peer = Some(t);
            }
            metadata.push((name.to_string(), value));
            data = &rest[size..];
        }
        let peer = peer.ok_or_else(|| bad("no Socket-Type"))?;
        if !self.kind.accepts(peer) {
            return Err(ZmtpError::IncompatiblePeer {
                ours: self.kind,
                peer,
            });
        }
        self.peer = Some(peer);
        self.state = State::Open;
        for (subscribe, topic) in std::mem::take(&mut self.pending) {
            self.subscription(subscribe, topic);
        }
        let held = self.held.split();
        self.output.extend_from_slice(&held);
        self.events.push_back(ZmtpEvent::Ready {
            peer,
            minor: self.minor.unwrap_or(0),
            metadata,
        });
        Ok(())
    }

    /// One message frame whose header is in: kept, skipped, or waited for
    /// (false: more input needed).
    fn message_frame(&mut self, flags: u8, size: u64, header: usize) -> bool {
        let more = flags & MORE != 0;
        let total = self.message_bytes.saturating_add(size);
        let over = self.skip.is_some()
            || total > self.limits.max_message_bytes
            || self.message_parts >= self.limits.max_parts;
        if over {
            self.input.advance(header);
            // Whatever of the body is already buffered goes now.
            let buffered = (self.input.len() as u64).min(size);
            self.input.advance(buffered as usize);
            self.parts.clear();
            self.message_bytes = total;
            self.message_parts += 1;
            self.skip = Some(Skip {
                remaining: size - buffered,
                more,
            });
            self.finish_skip_frame();
            return true;
        }
        if self.input.len() < header + size as usize {
            return false;
        }
        self.input.advance(header);
        self.parts.push(self.input.split_to(size as usize).freeze());
        self.message_bytes = total;
        self.message_parts += 1;
        if !more {
            self.message_bytes = 0;
            self.message_parts = 0;
            self.events
                .push_back(ZmtpEvent::Message(std::mem::take(&mut self.parts)));
        }
        true
    }

    /// The skipped frame is over: if it was the last, report the message.
    fn finish_skip_frame(&mut self) {
        let Some(skip) = self.skip else { return };
        if skip.remaining > 0 {
            return;
        }
        if skip.more {
            // The next frame's header decides; keep skipping.
            self.skip = Some(Skip {
                remaining: 0,
                more: true,
            });
            return;
        }
        self.skip = None;
        self.events.push_back(ZmtpEvent::Oversized {
            bytes: self.message_bytes,
            parts: self.message_parts,
        });
        self.message_bytes = 0;
        self.message_parts = 0;
    }
}

/// A frame's flags, body size and header length, once the header is in.
fn frame_header(input: &[u8]) -> Option<(u8, u64, usize)> {
    let &flags = input.first()?;
    if flags & LONG != 0 {
        let size: [u8; 8] = input.get(1..9)?.try_into().ok()?;
        Some((flags, u64::from_be_bytes(size), 9))
    } else {
        Some((flags, *input.get(1)? as u64, 2))
    }
}

fn put_frame(out: &mut BytesMut, flags: u8, body: &[u8]) {
    if body.len() > 255 {
        out.put_u8(flags | LONG);
        out.put_u64(body.len() as u64);
    } else {
        out.put_u8(flags);
        out.put_u8(body.len() as u8);
    }
    out.put_slice(body);
}

fn put_command(out: &mut BytesMut, name: &str, data: &[u8]) {
    let mut body = Vec::with_capacity(1 + name.len() + data.len());
    body.push(name.len() as u8);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    put_frame(out, COMMAND, &body);
}

fn put_property(out: &mut BytesMut, name: &str, value: &[u8]) {
    out.put_u8(name.len() as u8);
    out.put_slice(name.as_bytes());
    out.put_u32(value.len() as u32);
    out.put_slice(value);
}
