//! A hand-written HTTP/1.1 and WebSocket peer over blocking TCP, for tests
//! that must send exactly the bytes a protocol test suite sends.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Longest a test waits for a single read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header");
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    (status, headers)
}

/// One request on a fresh connection (`Connection: close`).
pub fn request(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Response {
    request_with_headers(addr, method, target, &[], body)
}

/// One request with extra header fields, on a fresh connection
/// (`Connection: close`).
pub fn request_with_headers(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = connect(addr);
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let mut body = Vec::new();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>().unwrap());
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).expect("body");
        }
        None => {
            reader.read_to_end(&mut body).expect("body");
        }
    }
    Response {
        status,
        headers,
        body,
    }
}

/// `GET target`.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    request(addr, "GET", target, b"")
}

/// `POST target` with `body`.
pub fn post(addr: SocketAddr, target: &str, body: &[u8]) -> Response {
    request(addr, "POST", target, body)
}

/// A WebSocket message, or the end of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A close frame or the end of the stream.
    Closed,
    /// Nothing arrived before the read timeout.
    Timeout,
}

fn failed(e: std::io::Error) -> Frame {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Frame::Timeout,
        _ => Frame::Closed,
    }
}

/// A WebSocket client connection.
pub struct Ws {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Ws {
    /// Open a WebSocket on `target`; `Err` holds the refusal's status.
    pub fn connect(addr: SocketAddr, target: &str) -> Result<Ws, u16> {
        let mut stream = connect(addr);
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        if status != 101 {
            return Err(status);
        }
        let accept = headers
            .iter()
            .find(|(n, _)| n == "sec-websocket-accept")
            .map(|(_, v)| v.as_str());
        // RFC 6455's example key and its answer.
        assert_eq!(accept, Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        Ok(Ws { reader, writer })
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // The peer may have closed already: the test sees it on read.
        let _ = self.writer.write_all(&frame);
    }

    /// Send a text message.
    pub fn send_text(&mut self, text: &str) {
        self.send_frame(1, text.as_bytes());
    }

    /// Send a binary message.
    pub fn send_binary(&mut self, bytes: &[u8]) {
        self.send_frame(2, bytes);
    }

    /// The next message (pings answered, control frames skipped).
    pub fn recv(&mut self) -> Frame {
        loop {
            let mut head = [0u8; 2];
            if let Err(e) = self.reader.read_exact(&mut head) {
                return failed(e);
            }
            let opcode = head[0] & 0x0f;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.reader.read_exact(&mut b).unwrap();
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.reader.read_exact(&mut b).unwrap();
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            if let Err(e) = self.reader.read_exact(&mut payload) {
                return failed(e);
            }
            match opcode {
                1 => return Frame::Text(String::from_utf8(payload).expect("utf-8 text")),
                2 => return Frame::Binary(payload),
                8 => return Frame::Closed,
                9 => self.send_frame(10, &payload),
                _ => {}
            }
        }
    }

    /// The next message that is not an Engine.IO ping.
    pub fn recv_skip_pings(&mut self) -> Frame {
        loop {
            match self.recv() {
                Frame::Text(t) if t == "2" => continue,
                other => return other,
            }
        }
    }

    /// Whether the server closes the connection within `within` (messages
    /// before the close are skipped).
    pub fn closes_within(&mut self, within: Duration) -> bool {
        let give_up = Instant::now() + within;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.recv() {
                Frame::Closed => return true,
                Frame::Timeout => return false,
                _ => {}
            }
        }
    }
}
