//! Raw Engine.IO over WebSocket for the load generators (`loadgen`,
//! `abuse`, `soak`): a hand-written client that stays far below one core
//! while the server saturates its own. HTTP/1.1 upgrade, a 4 KiB read
//! buffer per connection, a small parser for the server's frames, and
//! masked client frames (zero key) built into a reused buffer.

use std::ops::Range;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Any failure of a load generator.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Read buffer of every connection; grown only for a larger frame.
pub const READ_BUFFER: usize = 4096;

/// A connection's read buffer: `buf[start..end]` is received and not yet
/// consumed. 4 KiB unless one frame needs more.
pub struct ReadBuffer {
    /// The bytes.
    pub buf: Vec<u8>,
    /// Start of what is not consumed yet.
    pub start: usize,
    /// End of what was received.
    pub end: usize,
}

impl Default for ReadBuffer {
    fn default() -> Self {
        ReadBuffer::new()
    }
}

impl ReadBuffer {
    /// An empty buffer of `READ_BUFFER` bytes.
    pub fn new() -> Self {
        ReadBuffer {
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
        }
    }

    /// What was received and not consumed yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Make room for `total` bytes from `start`.
    pub fn reserve_frame(&mut self, total: usize) {
        if total > self.buf.len() - self.start {
            self.compact();
            if total > self.buf.len() {
                self.buf.resize(total, 0);
            }
        }
    }

    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }

    /// Read what the socket has. Cancel-safe (the read is the only await),
    /// so it can be one branch of a `select!`.
    pub async fn fill(&mut self, stream: &mut TcpStream) -> Result<(), Failure> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.compact();
        }
        let n = stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        self.end += n;
        Ok(())
    }

    /// The HTTP header at the front (through the blank line), if complete.
    pub fn take_http_header(&mut self) -> Option<Range<usize>> {
        let at = find(self.pending(), b"\r\n\r\n")?;
        let header = self.start..self.start + at + 4;
        self.start = header.end;
        Some(header)
    }

    /// The payload of the next complete text or binary frame sent by the
    /// server. Answers WebSocket pings into `out`; fragmented messages are
    /// refused (no server here fragments small messages).
    pub fn next_frame(&mut self, out: &mut Vec<u8>) -> Result<Option<Range<usize>>, Failure> {
        loop {
            let bytes = self.pending();
            if bytes.len() < 2 {
                return Ok(None);
            }
            let (first, second) = (bytes[0], bytes[1]);
            let (len, mut header) = match second & 0x7f {
                126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
                127 if bytes.len() >= 10 => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(&bytes[2..10]);
                    (usize::try_from(u64::from_be_bytes(be))?, 10)
                }
                126 | 127 => return Ok(None),
                short => (short as usize, 2),
            };
            let masked = second & 0x80 != 0;
            if masked {
                header += 4;
            }
            let total = header + len;
            if bytes.len() < total {
                self.reserve_frame(total);
                return Ok(None);
            }
            let payload = self.start + header..self.start + total;
            if masked {
                let key_at = self.start + header - 4;
                let mut key = [0u8; 4];
                key.copy_from_slice(&self.buf[key_at..key_at + 4]);
                for (i, byte) in self.buf[payload.clone()].iter_mut().enumerate() {
                    *byte ^= key[i % 4];
                }
            }
            self.start += total;
            if first & 0x80 == 0 || first & 0x0f == 0 {
                return Err("fragmented WebSocket message".into());
            }
            match first & 0x0f {
                1 | 2 => return Ok(Some(payload)),
                8 => return Err(close_reason(&self.buf[payload]).into()),
                9 => {
                    let ping = payload;
                    push_frame(out, 0x8a, &[&self.buf[ping]]);
                }
                _ => {} // pong or reserved: nothing to do
            }
        }
    }

    /// Like `next_frame`, also answering Engine.IO pings (`2` → `3`).
    pub fn next_packet(&mut self, out: &mut Vec<u8>) -> Result<Option<Range<usize>>, Failure> {
        while let Some(payload) = self.next_frame(out)? {
            if self.buf[payload.clone()] == *b"2" {
                push_frame(out, 0x81, &[b"3"]);
                continue;
            }
            return Ok(Some(payload));
        }
        Ok(None)
    }
}

/// A TCP connection without Nagle's delay. The address is parsed here:
/// given a string, tokio would resolve it on its blocking thread pool.
pub async fn connect(addr: &str) -> Result<TcpStream, Failure> {
    let addr: std::net::SocketAddr = addr.parse()?;
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Append one masked client frame (`opcode_byte` holds FIN and the opcode)
/// whose payload is `parts` concatenated. RFC 6455 requires the mask bit on
/// client frames; a zero key leaves the payload as is, so no copy is XORed.
pub fn push_frame(out: &mut Vec<u8>, opcode_byte: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(opcode_byte);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// The decimal digits of `n`, written into `scratch` (no allocation).
pub fn digits(mut n: u64, scratch: &mut [u8; 20]) -> &[u8] {
    let mut at = scratch.len();
    loop {
        at -= 1;
        scratch[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &scratch[at..];
        }
    }
}

/// `count` acked `echo` events, `421["echo",1]` to
/// `42COUNT["echo",COUNT]`, as masked client frames: the flood of an
/// abusive client that never reads the acks (`abuse`, `soak`).
pub fn acked_echoes(count: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(count as usize * 30);
    let mut scratch = [0u8; 20];
    for id in 1..=count {
        let id = digits(id, &mut scratch);
        push_frame(&mut out, 0x81, &[b"42", id, b"[\"echo\",", id, b"]"]);
    }
    out
}

/// One WebSocket connection of a load generator.
pub struct Conn {
    /// The TCP connection.
    pub stream: TcpStream,
    /// What was received and not consumed yet.
    pub reader: ReadBuffer,
    /// Frames to send, written at once by `flush`.
    pub out: Vec<u8>,
}

impl Conn {
    /// Open a WebSocket; unless `raw`, complete the Engine.IO open and the
    /// Socket.IO CONNECT to `/`.
    pub async fn open(addr: &str, raw: bool) -> Result<Conn, Failure> {
        if raw {
            return Conn::upgrade(addr, "/").await;
        }
        let mut conn = Conn::engine(addr).await?;
        conn.connect_namespace(b"40").await?;
        Ok(conn)
    }

    /// Open a WebSocket and read Engine.IO's open packet.
    pub async fn engine(addr: &str) -> Result<Conn, Failure> {
        let mut conn = Conn::upgrade(addr, "/socket.io/?EIO=4&transport=websocket").await?;
        let open = conn.recv().await?;
        if !open.starts_with(b"0") {
            let open = String::from_utf8_lossy(&open);
            return Err(format!("expected an open packet, got {open:?}").into());
        }
        Ok(conn)
    }

    /// Send a Socket.IO CONNECT (`40`, `40/nsp,{auth}`...) and return the
    /// server's CONNECT reply; events that come first are skipped.
    pub async fn connect_namespace(&mut self, connect: &[u8]) -> Result<Vec<u8>, Failure> {
        push_frame(&mut self.out, 0x81, &[connect]);
        self.flush().await?;
        // `40` or `40/nsp,`: the reply starts the same way.
        let prefix = match connect.iter().position(|&b| b == b',') {
            Some(comma) if connect.get(2) == Some(&b'/') => &connect[..=comma],
            _ => &connect[..2],
        };
        let mut refused = prefix.to_vec();
        refused[1] = b'4';
        loop {
            let packet = self.recv().await?;
            if packet.starts_with(prefix) {
                return Ok(packet);
            }
            if packet.starts_with(&refused) {
                let packet = String::from_utf8_lossy(&packet);
                return Err(format!("connect refused: {packet}").into());
            }
        }
    }

    /// Open a TCP connection and upgrade it to a WebSocket at `path`.
    pub async fn upgrade(addr: &str, path: &str) -> Result<Conn, Failure> {
        let stream = connect(addr).await?;
        let mut conn = Conn {
            stream,
            reader: ReadBuffer::new(),
            out: Vec::with_capacity(512),
        };
        // A fixed key: the load generator does not check the accept hash.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        conn.stream.write_all(request.as_bytes()).await?;
        let header = loop {
            if let Some(header) = conn.reader.take_http_header() {
                break header;
            }
            if conn.reader.end - conn.reader.start == conn.reader.buf.len() {
                return Err("upgrade response header too large".into());
            }
            conn.reader.fill(&mut conn.stream).await?;
        };
        let status = &conn.reader.buf[header];
        if !status.starts_with(b"HTTP/1.1 101") {
            let line = status.split(|&b| b == b'\r').next().unwrap_or_default();
            return Err(format!("upgrade refused: {}", String::from_utf8_lossy(line)).into());
        }
        Ok(conn)
    }

    /// The next packet other than an Engine.IO ping, copied (setup only).
    pub async fn recv(&mut self) -> Result<Vec<u8>, Failure> {
        loop {
            if let Some(payload) = self.reader.next_packet(&mut self.out)? {
                self.flush().await?;
                return Ok(self.reader.buf[payload].to_vec());
            }
            self.flush().await?;
            self.reader.fill(&mut self.stream).await?;
        }
    }

    /// Wait for bytes (cancel-safe).
    pub async fn fill(&mut self) -> Result<(), Failure> {
        self.reader.fill(&mut self.stream).await
    }

    /// Write every queued frame in one write.
    pub async fn flush(&mut self) -> Result<(), Failure> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Hold the connection, answering pings, until it fails.
    pub async fn hold(mut self) -> Failure {
        loop {
            let step = async {
                self.fill().await?;
                while self.reader.next_packet(&mut self.out)?.is_some() {}
                self.flush().await
            };
            if let Err(e) = step.await {
                return e;
            }
        }
    }
}

/// A `/proc/PID/status` figure in kB (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The open file descriptors of a process (`/proc/PID/fd`).
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// The failure a WebSocket close frame's payload stands for: its status
/// code and reason, when it has them.
fn close_reason(payload: &[u8]) -> String {
    match payload {
        [high, low, reason @ ..] => format!(
            "closed by the server ({} {})",
            u16::from_be_bytes([*high, *low]),
            String::from_utf8_lossy(reason)
        ),
        _ => "closed by the server".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_and_several_per_read() {
        let mut reader = ReadBuffer::new();
        let mut out = Vec::new();
        let mut wire = vec![0x81, 3, b'a', b'b', b'c', 0x89, 1, b'p', 0x81, 126, 0, 200];
        wire.extend(std::iter::repeat_n(b'x', 200));
        reader.buf[..5].copy_from_slice(&wire[..5]);
        reader.end = 5;
        let first = reader.next_frame(&mut out).unwrap().unwrap();
        assert_eq!(&reader.buf[first], b"abc");
        assert!(reader.next_frame(&mut out).unwrap().is_none());
        let rest = &wire[5..];
        reader.buf[5..5 + rest.len()].copy_from_slice(rest);
        reader.end += rest.len();
        let big = reader.next_frame(&mut out).unwrap().unwrap();
        assert_eq!(big.len(), 200);
        assert_eq!(out, [0x8a, 0x81, 0, 0, 0, 0, b'p']);
    }

    #[test]
    fn large_frame_grows_the_buffer() {
        let mut reader = ReadBuffer::new();
        let mut out = Vec::new();
        reader.buf[..10].copy_from_slice(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0x20, 0]);
        reader.end = 10;
        assert!(reader.next_frame(&mut out).unwrap().is_none());
        assert!(reader.buf.len() >= 10 + 8192);
    }

    #[test]
    fn close_frames_give_their_code_and_reason() {
        let mut reader = ReadBuffer::new();
        let wire = [0x88, 6, 0x03, 0xf0, b'b', b'u', b's', b'y'];
        reader.buf[..wire.len()].copy_from_slice(&wire);
        reader.end = wire.len();
        let e = reader.next_frame(&mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "closed by the server (1008 busy)");
    }
}
