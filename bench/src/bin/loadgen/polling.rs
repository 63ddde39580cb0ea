//! Long-polling: a minimal HTTP/1.1 keep-alive client and the polling
//! echo workload.

use super::*;

/// Engine.IO's record separator between packets of one polling body.
pub(super) const RECORD_SEPARATOR: u8 = 0x1e;

/// One HTTP/1.1 keep-alive connection of a polling client.
pub(super) struct HttpConn {
    pub(super) stream: TcpStream,
    pub(super) reader: ReadBuffer,
    /// The request being written; reused.
    pub(super) out: Vec<u8>,
    /// The body of the last complete response; reused.
    pub(super) body: Vec<u8>,
    /// The response being read: its header was consumed, its body is
    /// `Some(length)` bytes or chunked (`None`).
    pub(super) header_read: Option<Option<usize>>,
}

impl HttpConn {
    pub(super) async fn connect(addr: &str) -> Result<HttpConn, Failure> {
        let stream = connect(addr).await?;
        Ok(HttpConn {
            stream,
            reader: ReadBuffer::new(),
            out: Vec::with_capacity(512),
            body: Vec::with_capacity(512),
            header_read: None,
        })
    }

    /// Queue a request for `path`; a POST when `body` is given.
    pub(super) fn push_request(&mut self, addr: &str, path: &str, body: Option<&[u8]>) {
        let method: &[u8] = if body.is_some() { b"POST " } else { b"GET " };
        self.out.extend_from_slice(method);
        self.out.extend_from_slice(path.as_bytes());
        self.out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.out.extend_from_slice(addr.as_bytes());
        if let Some(body) = body {
            let mut scratch = [0u8; 20];
            self.out.extend_from_slice(
                b"\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ",
            );
            self.out
                .extend_from_slice(digits(body.len() as u64, &mut scratch));
            self.out.extend_from_slice(b"\r\n\r\n");
            self.out.extend_from_slice(body);
        } else {
            self.out.extend_from_slice(b"\r\n\r\n");
        }
    }

    pub(super) async fn flush(&mut self) -> Result<(), Failure> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Parse the next complete response into `body`; false when more
    /// bytes are needed. Only 200 is accepted.
    pub(super) fn next_response(&mut self) -> Result<bool, Failure> {
        if self.header_read.is_none() {
            let Some(header) = self.reader.take_http_header() else {
                if self.reader.end - self.reader.start == self.reader.buf.len() {
                    self.reader.reserve_frame(self.reader.buf.len() * 2);
                }
                return Ok(false);
            };
            let header = &self.reader.buf[header];
            if !header.starts_with(b"HTTP/1.1 200") {
                let line = header.split(|&b| b == b'\r').next().unwrap_or_default();
                return Err(format!("polling: {}", String::from_utf8_lossy(line)).into());
            }
            let mut length = None;
            let mut chunked = false;
            for line in header.split(|&b| b == b'\n') {
                let line = line.to_ascii_lowercase();
                if let Some(value) = line.strip_prefix(b"content-length:") {
                    let value = String::from_utf8_lossy(value);
                    length = Some(value.trim().parse::<usize>()?);
                } else if line.starts_with(b"transfer-encoding:")
                    && find(&line, b"chunked").is_some()
                {
                    chunked = true;
                }
            }
            self.header_read = Some(if chunked {
                None
            } else {
                Some(length.unwrap_or(0))
            });
        }
        let pending = self.reader.pending();
        match self.header_read {
            Some(Some(length)) => {
                if pending.len() < length {
                    self.reader.reserve_frame(length);
                    return Ok(false);
                }
                self.body.clear();
                self.body.extend_from_slice(&pending[..length]);
                self.reader.start += length;
            }
            _ => {
                // Chunked: wait for the whole body, then decode it.
                let mut at = 0;
                let mut chunks = Vec::new();
                loop {
                    let Some(line_end) = find(&pending[at..], b"\r\n") else {
                        self.reader.reserve_frame(pending.len() + READ_BUFFER);
                        return Ok(false);
                    };
                    let size_text = String::from_utf8_lossy(&pending[at..at + line_end]);
                    let size_text = size_text.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size_text, 16)?;
                    let data = at + line_end + 2;
                    if pending.len() < data + size + 2 {
                        self.reader.reserve_frame(data + size + 2);
                        return Ok(false);
                    }
                    at = data + size + 2;
                    if size == 0 {
                        break;
                    }
                    chunks.push(data..data + size);
                }
                self.body.clear();
                for chunk in chunks {
                    self.body.extend_from_slice(&pending[chunk]);
                }
                self.reader.start += at;
            }
        }
        self.header_read = None;
        Ok(true)
    }

    /// One request and its response (setup only).
    pub(super) async fn exchange(
        &mut self,
        addr: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(), Failure> {
        self.push_request(addr, path, body);
        self.flush().await?;
        while !self.next_response()? {
            self.reader.fill(&mut self.stream).await?;
        }
        Ok(())
    }
}

/// A polling client after its handshake: a GET always pending on one
/// connection, POSTs on the other.
pub(super) struct PollingClient {
    pub(super) addr: String,
    pub(super) path: String,
    pub(super) get: HttpConn,
    pub(super) post: HttpConn,
    /// Packets waiting for the next POST, joined by the record separator.
    pub(super) queued: Vec<u8>,
    pub(super) post_in_flight: bool,
}

impl PollingClient {
    /// Engine.IO open over polling, then the Socket.IO CONNECT to `/`.
    pub(super) async fn open(addr: &str) -> Result<PollingClient, Failure> {
        let mut get = HttpConn::connect(addr).await?;
        get.exchange(addr, "/socket.io/?EIO=4&transport=polling", None)
            .await?;
        let open = &get.body;
        let sid_at = find(open, b"\"sid\":\"").ok_or("no sid in the open packet")? + 7;
        let sid_len = open[sid_at..]
            .iter()
            .position(|&b| b == b'"')
            .ok_or("bad sid")?;
        let sid = String::from_utf8_lossy(&open[sid_at..sid_at + sid_len]).into_owned();
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let mut post = HttpConn::connect(addr).await?;
        post.exchange(addr, &path, Some(b"40")).await?;
        let mut client = PollingClient {
            addr: addr.to_string(),
            path,
            get,
            post,
            queued: Vec::with_capacity(512),
            post_in_flight: false,
        };
        loop {
            client
                .get
                .exchange(&client.addr, &client.path, None)
                .await?;
            let (mut connected, mut pinged) = (false, false);
            for packet in client.get.body.split(|&b| b == RECORD_SEPARATOR) {
                if packet.starts_with(b"40") {
                    connected = true;
                } else if packet.starts_with(b"44") {
                    let packet = String::from_utf8_lossy(packet);
                    return Err(format!("connect refused: {packet}").into());
                } else if packet == b"2" {
                    pinged = true;
                }
            }
            if pinged {
                client.queue(b"3");
            }
            client.send_queued().await?;
            if connected {
                return Ok(client);
            }
        }
    }

    pub(super) fn queue(&mut self, packet: &[u8]) {
        if !self.queued.is_empty() {
            self.queued.push(RECORD_SEPARATOR);
        }
        self.queued.extend_from_slice(packet);
    }

    pub(super) fn queue_echo(&mut self, id: u64) {
        if !self.queued.is_empty() {
            self.queued.push(RECORD_SEPARATOR);
        }
        let mut scratch = [0u8; 20];
        self.queued.extend_from_slice(ECHO_HEAD);
        self.queued.extend_from_slice(digits(id, &mut scratch));
        self.queued.extend_from_slice(EVENT_TAIL);
    }

    /// POST what is queued unless a POST is still in flight.
    pub(super) async fn send_queued(&mut self) -> Result<(), Failure> {
        if self.post_in_flight || self.queued.is_empty() {
            return Ok(());
        }
        self.post
            .push_request(&self.addr, &self.path, Some(&self.queued));
        self.queued.clear();
        self.post_in_flight = true;
        self.post.flush().await
    }

    /// Keep `inflight` echoes outstanding until the connection fails.
    pub(super) async fn echo(&mut self, stats: &Stats, inflight: usize) -> Result<(), Failure> {
        let mut sent_at = vec![Instant::now(); inflight];
        for id in 0..inflight {
            self.queue_echo(id as u64);
        }
        self.send_queued().await?;
        self.get.push_request(&self.addr, &self.path, None);
        self.get.flush().await?;
        loop {
            tokio::select! {
                read = self.get.reader.fill(&mut self.get.stream) => {
                    read?;
                    while self.get.next_response()? {
                        let body = std::mem::take(&mut self.get.body);
                        for packet in body.split(|&b| b == RECORD_SEPARATOR) {
                            match packet.first() {
                                Some(b'2') => self.queue(b"3"),
                                Some(b'1') => return Err("closed by the server".into()),
                                Some(b'4') => {
                                    let Some(id) = parse_id(packet) else { continue };
                                    let Some(slot) = sent_at.get_mut(id as usize) else {
                                        continue;
                                    };
                                    stats.record(*slot);
                                    *slot = Instant::now();
                                    self.queue_echo(id);
                                }
                                _ => {}
                            }
                        }
                        self.get.body = body;
                        // The next long-poll at once.
                        self.get.push_request(&self.addr, &self.path, None);
                    }
                }
                read = self.post.reader.fill(&mut self.post.stream) => {
                    read?;
                    while self.post.next_response()? {
                        if self.post.body != b"ok" {
                            let body = String::from_utf8_lossy(&self.post.body);
                            return Err(format!("POST answered {body:?}").into());
                        }
                        self.post_in_flight = false;
                    }
                }
            }
            self.get.flush().await?;
            self.send_queued().await?;
        }
    }
}

pub(super) async fn polling(options: &Options) -> Result<(), Failure> {
    let stats = Arc::new(Stats::new());
    let start = Arc::new(tokio::sync::Notify::new());
    for _ in 0..options.clients {
        let (stats, start, options) = (stats.clone(), start.clone(), options.clone());
        tokio::spawn(async move {
            let notified = start.notified();
            let mut client = match PollingClient::open(&options.addr).await {
                Ok(client) => client,
                Err(e) => return stats.failed("polling connect", &e),
            };
            stats.ready.fetch_add(1, Ordering::Relaxed);
            notified.await;
            if let Err(e) = client.echo(&stats, options.inflight).await {
                stats.broke(&e);
            }
        });
    }
    run_echo_window(
        options,
        &format!("polling-{}", options.inflight),
        &stats,
        &start,
    )
    .await;
    Ok(())
}
