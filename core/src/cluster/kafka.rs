//! The subset of the Apache Kafka wire protocol the Kafka bus backend
//! speaks, sans-IO.
//!
//! python-socketio's `KafkaManager` publishes each pub/sub message as the
//! value of one record on a topic named by the channel, and every node
//! reads the whole topic (no consumer group). That takes five requests,
//! each at one version that Apache Kafka 4 and tansu both accept, all of
//! them "non-flexible" (no tagged fields):
//!
//! | request        | key | version |
//! |----------------|-----|---------|
//! | `Produce`      | 0   | 3       |
//! | `Fetch`        | 1   | 4       |
//! | `ListOffsets`  | 2   | 1       |
//! | `Metadata`     | 3   | 4       |
//! | `ApiVersions`  | 18  | 0       |
//!
//! - [`encode_request`] frames a [`Request`] (size, request header v1 with
//!   correlation id and client id, body).
//! - [`FrameDecoder`] cuts the broker's byte stream into response frames;
//!   [`decode_response`] reads one (response header v0, body) as the
//!   [`Response`] to the request it answers.
//! - [`encode_record_batch`] writes values as one uncompressed record
//!   batch (magic 2, CRC32C); [`decode_record_batches`] reads the record
//!   set of a fetch, checking every CRC.
//!
//! The broker is not trusted: every length is checked against the bytes
//! present and against [`KafkaLimits`] before anything is allocated, and
//! every malformed input is a [`KafkaError`], never a panic.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The API keys used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKey {
    /// Write records.
    Produce,
    /// Read records.
    Fetch,
    /// Find an offset (the latest, the earliest).
    ListOffsets,
    /// Brokers, topics, partitions and their leaders.
    Metadata,
    /// Which versions of each request the broker accepts.
    ApiVersions,
}

impl ApiKey {
    /// The key on the wire.
    pub fn code(self) -> i16 {
        match self {
            ApiKey::Produce => 0,
            ApiKey::Fetch => 1,
            ApiKey::ListOffsets => 2,
            ApiKey::Metadata => 3,
            ApiKey::ApiVersions => 18,
        }
    }

    /// The version of the request this codec speaks.
    pub fn version(self) -> i16 {
        match self {
            ApiKey::Produce => 3,
            ApiKey::Fetch => 4,
            ApiKey::ListOffsets => 1,
            ApiKey::Metadata => 4,
            ApiKey::ApiVersions => 0,
        }
    }

    /// Every key used, for checking the broker's [`ApiVersionsResponse`].
    pub const ALL: [ApiKey; 5] = [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
    ];
}

/// `ListOffsets` timestamp asking for the offset of the next record
/// written (the end of the log).
pub const LATEST: i64 = -1;
/// `ListOffsets` timestamp asking for the first offset still kept.
pub const EARLIEST: i64 = -2;

/// Kafka error codes the backend acts on (any other is reported as is).
pub mod error_code {
    /// No error.
    pub const NONE: i16 = 0;
    /// The fetch offset is before the log start or past its end.
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    /// A record failed its CRC check on the broker.
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// No such topic or partition.
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// The partition has no leader right now (an election).
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    /// The broker asked is not the partition's leader.
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    /// The request did not complete in time on the broker.
    pub const REQUEST_TIMED_OUT: i16 = 7;
    /// The record is larger than the broker accepts.
    pub const MESSAGE_TOO_LARGE: i16 = 10;
}

/// Limits on what is accepted from the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaLimits {
    /// Largest response frame, in bytes (its size prefix excluded).
    pub max_frame_bytes: usize,
    /// Most elements of any array (brokers, topics, partitions, records
    /// of a batch, headers of a record).
    pub max_array_len: usize,
    /// Longest string (topic and host names, client id).
    pub max_string_len: usize,
}

impl Default for KafkaLimits {
    fn default() -> Self {
        KafkaLimits {
            max_frame_bytes: 64 << 20,
            max_array_len: 1 << 20,
            max_string_len: 32 << 10,
        }
    }
}

/// Why bytes from the broker (or a request to encode) were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KafkaError {
    /// The input ends inside a field.
    Truncated(&'static str),
    /// A size exceeds a [`KafkaLimits`] limit.
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A field holds a value the protocol does not allow.
    Invalid(&'static str),
    /// A record batch fails its CRC32C check.
    Crc {
        /// The CRC in the batch.
        expected: u32,
        /// The CRC of its bytes.
        actual: u32,
    },
    /// Bytes left over after a response's last field.
    Trailing(usize),
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KafkaError::Truncated(what) => write!(f, "truncated {what}"),
            KafkaError::TooLarge { what, len, limit } => {
                write!(f, "{what} of {len} exceeds the limit of {limit}")
            }
            KafkaError::Invalid(what) => write!(f, "invalid {what}"),
            KafkaError::Crc { expected, actual } => write!(
                f,
                "record batch CRC mismatch (stored {expected:#010x}, computed {actual:#010x})"
            ),
            KafkaError::Trailing(n) => write!(f, "{n} bytes after the end of a response"),
        }
    }
}

impl std::error::Error for KafkaError {}

type Result<T> = std::result::Result<T, KafkaError>;

// ---------------------------------------------------------------- CRC32C

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32C: [u32; 256] = crc32c_table();

/// CRC-32C (Castagnoli), as record batches v2 use.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC32C[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

// ---------------------------------------------------------------- writing

fn put_string(out: &mut BytesMut, s: &str) {
    // Callers bound names to i16::MAX (see `check_name`).
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

fn put_array_len(out: &mut BytesMut, n: usize) {
    out.put_i32(i32::try_from(n).unwrap_or(i32::MAX));
}

fn put_varint(out: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    out.put_u8(z as u8);
}

fn check_name(what: &'static str, s: &str) -> Result<()> {
    if s.len() > i16::MAX as usize {
        return Err(KafkaError::TooLarge {
            what,
            len: s.len() as u64,
            limit: i16::MAX as u64,
        });
    }
    Ok(())
}

/// The records of one partition in a [`Request::Produce`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartition {
    /// Partition index.
    pub partition: i32,
    /// A record set, e.g. from [`encode_record_batch`].
    pub records: Bytes,
}

/// One partition of a [`Request::Fetch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPartition {
    /// Partition index.
    pub partition: i32,
    /// The offset of the first record wanted.
    pub offset: i64,
    /// Most bytes returned for this partition (one batch larger than this
    /// still comes whole, so that the reader makes progress).
    pub max_bytes: i32,
}

/// A request the backend sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `ApiVersions` v0.
    ApiVersions,
    /// `Metadata` v4 for these topics, never creating them.
    Metadata {
        /// Topic names.
        topics: Vec<String>,
    },
    /// `ListOffsets` v1: for each partition, the offset at a timestamp
    /// ([`LATEST`], [`EARLIEST`]).
    ListOffsets {
        /// Topic name.
        topic: String,
        /// `(partition, timestamp)` pairs.
        partitions: Vec<(i32, i64)>,
    },
    /// `Produce` v3, not transactional.
    Produce {
        /// `0` (no answer), `1` (the leader wrote it), `-1` (all replicas).
        acks: i16,
        /// How long the broker may wait for replicas.
        timeout_ms: i32,
        /// Topic name.
        topic: String,
        /// Records per partition.
        partitions: Vec<ProducePartition>,
    },
    /// `Fetch` v4 (read uncommitted) of one topic's partitions.
    Fetch {
        /// How long the broker may wait for `min_bytes`.
        max_wait_ms: i32,
        /// Bytes the broker waits for before answering.
        min_bytes: i32,
        /// Most bytes in the whole response.
        max_bytes: i32,
        /// Topic name.
        topic: String,
        /// Partitions and offsets.
        partitions: Vec<FetchPartition>,
    },
}

impl Request {
    /// Its API key.
    pub fn api_key(&self) -> ApiKey {
        match self {
            Request::ApiVersions => ApiKey::ApiVersions,
            Request::Metadata { .. } => ApiKey::Metadata,
            Request::ListOffsets { .. } => ApiKey::ListOffsets,
            Request::Produce { .. } => ApiKey::Produce,
            Request::Fetch { .. } => ApiKey::Fetch,
        }
    }
}

/// Write `request` as one frame: size, request header v1
/// (`api_key`, `api_version`, `correlation_id`, `client_id`), body.
/// Fails only on names longer than the protocol allows.
pub fn encode_request(
    out: &mut BytesMut,
    correlation_id: i32,
    client_id: &str,
    request: &Request,
) -> Result<()> {
    check_name("client id", client_id)?;
    let start = out.len();
    out.put_i32(0);
    let key = request.api_key();
    out.put_i16(key.code());
    out.put_i16(key.version());
    out.put_i32(correlation_id);
    put_string(out, client_id);
    match request {
        Request::ApiVersions => {}
        Request::Metadata { topics } => {
            put_array_len(out, topics.len());
            for t in topics {
                check_name("topic name", t)?;
                put_string(out, t);
            }
            // allow_auto_topic_creation
            out.put_u8(0);
        }
        Request::ListOffsets { topic, partitions } => {
            check_name("topic name", topic)?;
            out.put_i32(-1); // replica_id: a client
            put_array_len(out, 1);
            put_string(out, topic);
            put_array_len(out, partitions.len());
            for (p, ts) in partitions {
                out.put_i32(*p);
                out.put_i64(*ts);
            }
        }
        Request::Produce {
            acks,
            timeout_ms,
            topic,
            partitions,
        } => {
            check_name("topic name", topic)?;
            out.put_i16(-1); // transactional_id: null
            out.put_i16(*acks);
            out.put_i32(*timeout_ms);
            put_array_len(out, 1);
            put_string(out, topic);
            put_array_len(out, partitions.len());
            for p in partitions {
                if p.records.len() > i32::MAX as usize {
                    return Err(KafkaError::TooLarge {
                        what: "record set",
                        len: p.records.len() as u64,
                        limit: i32::MAX as u64,
                    });
                }
                out.put_i32(p.partition);
                out.put_i32(p.records.len() as i32);
                out.put_slice(&p.records);
            }
        }
        Request::Fetch {
            max_wait_ms,
            min_bytes,
            max_bytes,
            topic,
            partitions,
        } => {
            check_name("topic name", topic)?;
            out.put_i32(-1); // replica_id: a client
            out.put_i32(*max_wait_ms);
            out.put_i32(*min_bytes);
            out.put_i32(*max_bytes);
            out.put_i8(0); // isolation_level: read uncommitted
            put_array_len(out, 1);
            put_string(out, topic);
            put_array_len(out, partitions.len());
            for p in partitions {
                out.put_i32(p.partition);
                out.put_i64(p.offset);
                out.put_i32(p.max_bytes);
            }
        }
    }
    let size = out.len() - start - 4;
    let size = i32::try_from(size).map_err(|_| KafkaError::TooLarge {
        what: "request",
        len: size as u64,
        limit: i32::MAX as u64,
    })?;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

// ---------------------------------------------------------------- framing

/// Cuts the broker's byte stream into response frames (each a 4-byte
/// big-endian size and that many bytes). After an error the decoder
/// stays failed: the connection must be closed.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    limits: KafkaLimits,
    failed: Option<KafkaError>,
}

impl FrameDecoder {
    /// A decoder with these limits.
    pub fn new(limits: KafkaLimits) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            limits,
            failed: None,
        }
    }

    /// Append bytes read from the broker.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes fed and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame (without its size), `None` until one is
    /// complete.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let error = if size < 4 {
            Some(KafkaError::Invalid("frame size"))
        } else if size as usize > self.limits.max_frame_bytes {
            Some(KafkaError::TooLarge {
                what: "response frame",
                len: size as u64,
                limit: self.limits.max_frame_bytes as u64,
            })
        } else {
            None
        };
        if let Some(e) = error {
            self.buf = BytesMut::new();
            self.failed = Some(e.clone());
            return Err(e);
        }
        let size = size as usize;
        if self.buf.len() < 4 + size {
            // Room for the rest, once: the size is within the limit.
            self.buf.reserve(4 + size - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(4);
        Ok(Some(self.buf.split_to(size).freeze()))
    }
}

// ---------------------------------------------------------------- reading

struct Reader<'a> {
    data: &'a [u8],
    /// The whole frame, to slice record sets out without copying.
    frame: &'a Bytes,
    pos: usize,
    limits: &'a KafkaLimits,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.data.len() - self.pos < n {
            return Err(KafkaError::Truncated(what));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn i8(&mut self, what: &'static str) -> Result<i8> {
        Ok(self.take(1, what)?[0] as i8)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn bool(&mut self, what: &'static str) -> Result<bool> {
        match self.i8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(KafkaError::Invalid(what)),
        }
    }

    fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>> {
        let len = self.i16(what)?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(KafkaError::Invalid(what));
        }
        let len = len as usize;
        if len > self.limits.max_string_len {
            return Err(KafkaError::TooLarge {
                what,
                len: len as u64,
                limit: self.limits.max_string_len as u64,
            });
        }
        let b = self.take(len, what)?;
        std::str::from_utf8(b)
            .map(|s| Some(s.to_string()))
            .map_err(|_| KafkaError::Invalid(what))
    }

    fn string(&mut self, what: &'static str) -> Result<String> {
        self.nullable_string(what)?.ok_or(KafkaError::Invalid(what))
    }

    /// An array length: `None` for a null array. Each element takes at
    /// least `min_elem` bytes, so a length the input cannot hold is refused
    /// before anything is allocated.
    fn nullable_array_len(&mut self, what: &'static str, min_elem: usize) -> Result<Option<usize>> {
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(KafkaError::Invalid(what));
        }
        let n = n as usize;
        if n > self.limits.max_array_len {
            return Err(KafkaError::TooLarge {
                what,
                len: n as u64,
                limit: self.limits.max_array_len as u64,
            });
        }
        if n.saturating_mul(min_elem) > self.data.len() - self.pos {
            return Err(KafkaError::Truncated(what));
        }
        Ok(Some(n))
    }

    fn array_len(&mut self, what: &'static str, min_elem: usize) -> Result<usize> {
        self.nullable_array_len(what, min_elem)?
            .ok_or(KafkaError::Invalid(what))
    }

    fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<Bytes>> {
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(KafkaError::Invalid(what));
        }
        let start = self.pos;
        self.take(n as usize, what)?;
        Ok(Some(self.frame.slice(start..self.pos)))
    }

    fn end(&self) -> Result<()> {
        match self.data.len() - self.pos {
            0 => Ok(()),
            n => Err(KafkaError::Trailing(n)),
        }
    }
}

/// One API's versions in an [`ApiVersionsResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    /// API key.
    pub api_key: i16,
    /// Oldest version accepted.
    pub min: i16,
    /// Newest version accepted.
    pub max: i16,
}

/// `ApiVersions` v0's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    /// Error code (35, `UNSUPPORTED_VERSION`, if v0 itself is refused).
    pub error_code: i16,
    /// The APIs the broker serves.
    pub apis: Vec<ApiVersionRange>,
}

impl ApiVersionsResponse {
    /// The first API this codec needs at a version the broker does not
    /// accept, if any.
    pub fn missing(&self) -> Option<ApiKey> {
        ApiKey::ALL.into_iter().find(|k| {
            !self
                .apis
                .iter()
                .any(|a| a.api_key == k.code() && a.min <= k.version() && k.version() <= a.max)
        })
    }
}

/// A broker in a [`MetadataResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Its id.
    pub node_id: i32,
    /// Host name to connect to.
    pub host: String,
    /// Port.
    pub port: i32,
}

/// A partition in a [`MetadataResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Error code for this partition.
    pub error_code: i16,
    /// Partition index.
    pub partition: i32,
    /// Id of its leader (`-1`: none now).
    pub leader: i32,
}

/// A topic in a [`MetadataResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Error code ([`error_code::UNKNOWN_TOPIC_OR_PARTITION`] when it
    /// does not exist).
    pub error_code: i16,
    /// Topic name.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<PartitionMetadata>,
}

/// `Metadata` v4's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    /// The brokers of the cluster.
    pub brokers: Vec<Broker>,
    /// The topics asked for.
    pub topics: Vec<TopicMetadata>,
}

/// A partition in a [`ListOffsetsResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffset {
    /// Partition index.
    pub partition: i32,
    /// Error code.
    pub error_code: i16,
    /// The offset found.
    pub offset: i64,
}

/// `ListOffsets` v1's answer (one topic's partitions, flattened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOffsetsResponse {
    /// `(topic, partition)` answers.
    pub partitions: Vec<(String, PartitionOffset)>,
}

/// A partition in a [`ProduceResponse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducePartitionResponse {
    /// Partition index.
    pub partition: i32,
    /// Error code.
    pub error_code: i16,
    /// Offset given to the first record written.
    pub base_offset: i64,
}

/// `Produce` v3's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceResponse {
    /// `(topic, partition)` answers.
    pub partitions: Vec<(String, ProducePartitionResponse)>,
}

/// A partition in a [`FetchResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartitionResponse {
    /// Partition index.
    pub partition: i32,
    /// Error code.
    pub error_code: i16,
    /// The offset the next record written will get.
    pub high_watermark: i64,
    /// The record set, to read with [`decode_record_batches`] (may end
    /// with a partial batch).
    pub records: Bytes,
}

/// `Fetch` v4's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// `(topic, partition)` answers.
    pub partitions: Vec<(String, FetchPartitionResponse)>,
}

/// A response from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// To [`Request::ApiVersions`].
    ApiVersions(ApiVersionsResponse),
    /// To [`Request::Metadata`].
    Metadata(MetadataResponse),
    /// To [`Request::ListOffsets`].
    ListOffsets(ListOffsetsResponse),
    /// To [`Request::Produce`].
    Produce(ProduceResponse),
    /// To [`Request::Fetch`].
    Fetch(FetchResponse),
}

/// Read a response's `[topic [partition]]` arrays, each partition with
/// `read` (at least `min_partition` bytes each), flattened with the name of
/// its topic; at most `limits.max_array_len` partitions in all.
fn topic_partitions<T>(
    r: &mut Reader<'_>,
    limits: &KafkaLimits,
    min_partition: usize,
    mut read: impl FnMut(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<(String, T)>> {
    let n = r.array_len("topics", 6)?;
    let mut partitions = Vec::new();
    for _ in 0..n {
        let name = r.string("topic name")?;
        let np = r.array_len("partitions", min_partition)?;
        if partitions.len() + np > limits.max_array_len {
            return Err(KafkaError::TooLarge {
                what: "partitions",
                len: (partitions.len() + np) as u64,
                limit: limits.max_array_len as u64,
            });
        }
        for _ in 0..np {
            partitions.push((name.clone(), read(r)?));
        }
    }
    Ok(partitions)
}

/// Read a response frame (from [`FrameDecoder::next_frame`]) answering a
/// request of kind `api`: its correlation id and its body.
pub fn decode_response(
    api: ApiKey,
    frame: &Bytes,
    limits: &KafkaLimits,
) -> Result<(i32, Response)> {
    let mut r = Reader {
        data: frame,
        frame,
        pos: 0,
        limits,
    };
    let correlation_id = r.i32("correlation id")?;
    let response = match api {
        ApiKey::ApiVersions => {
            let error_code = r.i16("error code")?;
            let n = r.array_len("api versions", 6)?;
            let mut apis = Vec::with_capacity(n);
            for _ in 0..n {
                apis.push(ApiVersionRange {
                    api_key: r.i16("api key")?,
                    min: r.i16("min version")?,
                    max: r.i16("max version")?,
                });
            }
            // A v0 answer has nothing more, but a broker refusing v0 may
            // answer at v3+ (tagged fields): the error code says enough.
            if error_code == error_code::NONE {
                r.end()?;
            }
            Response::ApiVersions(ApiVersionsResponse { error_code, apis })
        }
        ApiKey::Metadata => {
            r.i32("throttle time")?;
            let n = r.array_len("brokers", 12)?;
            let mut brokers = Vec::with_capacity(n);
            for _ in 0..n {
                let node_id = r.i32("node id")?;
                let host = r.string("broker host")?;
                let port = r.i32("broker port")?;
                r.nullable_string("rack")?;
                brokers.push(Broker {
                    node_id,
                    host,
                    port,
                });
            }
            r.nullable_string("cluster id")?;
            r.i32("controller id")?;
            let n = r.array_len("topics", 9)?;
            let mut topics = Vec::with_capacity(n);
            for _ in 0..n {
                let error_code = r.i16("topic error code")?;
                let name = r.string("topic name")?;
                r.bool("is internal")?;
                let np = r.array_len("partitions", 18)?;
                let mut partitions = Vec::with_capacity(np);
                for _ in 0..np {
                    let error_code = r.i16("partition error code")?;
                    let partition = r.i32("partition index")?;
                    let leader = r.i32("leader id")?;
                    for what in ["replica nodes", "isr nodes"] {
                        let k = r.array_len(what, 4)?;
                        r.take(k * 4, what)?;
                    }
                    partitions.push(PartitionMetadata {
                        error_code,
                        partition,
                        leader,
                    });
                }
                topics.push(TopicMetadata {
                    error_code,
                    name,
                    partitions,
                });
            }
            r.end()?;
            Response::Metadata(MetadataResponse { brokers, topics })
        }
        ApiKey::ListOffsets => {
            let partitions = topic_partitions(&mut r, limits, 22, |r| {
                let partition = r.i32("partition index")?;
                let error_code = r.i16("error code")?;
                r.i64("timestamp")?;
                let offset = r.i64("offset")?;
                Ok(PartitionOffset {
                    partition,
                    error_code,
                    offset,
                })
            })?;
            r.end()?;
            Response::ListOffsets(ListOffsetsResponse { partitions })
        }
        ApiKey::Produce => {
            let partitions = topic_partitions(&mut r, limits, 22, |r| {
                let partition = r.i32("partition index")?;
                let error_code = r.i16("error code")?;
                let base_offset = r.i64("base offset")?;
                r.i64("log append time")?;
                Ok(ProducePartitionResponse {
                    partition,
                    error_code,
                    base_offset,
                })
            })?;
            r.i32("throttle time")?;
            r.end()?;
            Response::Produce(ProduceResponse { partitions })
        }
        ApiKey::Fetch => {
            r.i32("throttle time")?;
            let partitions = topic_partitions(&mut r, limits, 30, |r| {
                let partition = r.i32("partition index")?;
                let error_code = r.i16("error code")?;
                let high_watermark = r.i64("high watermark")?;
                r.i64("last stable offset")?;
                if let Some(k) = r.nullable_array_len("aborted transactions", 16)? {
                    r.take(k * 16, "aborted transactions")?;
                }
                let records = r.nullable_bytes("records")?.unwrap_or_default();
                Ok(FetchPartitionResponse {
                    partition,
                    error_code,
                    high_watermark,
                    records,
                })
            })?;
            r.end()?;
            Response::Fetch(FetchResponse { partitions })
        }
    };
    Ok((correlation_id, response))
}

// ---------------------------------------------------------------- records

/// Size of a record batch's header, up to and including the record count.
const BATCH_HEADER: usize = 61;
/// Offset of the CRC-covered part (attributes onwards).
const CRC_START: usize = 21;

/// Write `values` (keyless, header-less records) as one uncompressed
/// record batch v2, as a producer without idempotence does: base offset
/// 0 (the broker assigns offsets), no producer id, every record stamped
/// `timestamp_ms`.
pub fn encode_record_batch(out: &mut BytesMut, timestamp_ms: i64, values: &[&[u8]]) -> Result<()> {
    let mut records = BytesMut::new();
    let mut body = BytesMut::new();
    for (i, value) in values.iter().enumerate() {
        if value.len() > i32::MAX as usize / 2 {
            return Err(KafkaError::TooLarge {
                what: "record value",
                len: value.len() as u64,
                limit: (i32::MAX / 2) as u64,
            });
        }
        body.clear();
        body.put_i8(0); // attributes
        put_varint(&mut body, 0); // timestamp delta
        put_varint(&mut body, i as i64); // offset delta
        put_varint(&mut body, -1); // key: null
        put_varint(&mut body, value.len() as i64);
        body.put_slice(value);
        put_varint(&mut body, 0); // headers
        put_varint(&mut records, body.len() as i64);
        records.put_slice(&body);
    }
    let total = BATCH_HEADER + records.len();
    if total - 12 > i32::MAX as usize || values.len() > i32::MAX as usize {
        return Err(KafkaError::TooLarge {
            what: "record batch",
            len: total as u64,
            limit: i32::MAX as u64,
        });
    }
    let start = out.len();
    out.reserve(total);
    out.put_i64(0); // base offset
    out.put_i32((total - 12) as i32); // batch length
    out.put_i32(-1); // partition leader epoch
    out.put_i8(2); // magic
    out.put_u32(0); // crc, below
    out.put_i16(0); // attributes: no compression, create time
    out.put_i32(values.len().saturating_sub(1) as i32); // last offset delta
    out.put_i64(timestamp_ms); // base timestamp
    out.put_i64(timestamp_ms); // max timestamp
    out.put_i64(-1); // producer id
    out.put_i16(-1); // producer epoch
    out.put_i32(-1); // base sequence
    out.put_i32(values.len() as i32);
    out.put_slice(&records);
    let crc = crc32c(&out[start + CRC_START..]);
    out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// A record read from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp (milliseconds since the epoch).
    pub timestamp: i64,
    /// Its key.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Option<Bytes>,
}

/// A batch of a record set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// An uncompressed data batch, its records decoded.
    Records {
        /// Offset after the batch's last record.
        next_offset: i64,
        /// Its records.
        records: Vec<Record>,
    },
    /// A batch this codec does not read: skipped whole (compressed,
    /// control or old-format batches).
    Skipped {
        /// Offset after the batch.
        next_offset: i64,
        /// Why it was skipped.
        reason: &'static str,
    },
}

impl Batch {
    /// The offset after this batch.
    pub fn next_offset(&self) -> i64 {
        match self {
            Batch::Records { next_offset, .. } | Batch::Skipped { next_offset, .. } => *next_offset,
        }
    }
}

fn get_varint(b: &mut &[u8], what: &'static str) -> Result<i64> {
    let mut z: u64 = 0;
    for shift in (0..70).step_by(7) {
        let Some((&byte, rest)) = b.split_first() else {
            return Err(KafkaError::Truncated(what));
        };
        *b = rest;
        if shift == 63 && byte > 1 {
            return Err(KafkaError::Invalid(what));
        }
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    Err(KafkaError::Invalid(what))
}

/// A length-prefixed field; `b` is a suffix of `src`, so the bytes are
/// sliced out of `src` without copying.
fn get_varbytes(b: &mut &[u8], src: &Bytes, what: &'static str) -> Result<Option<Bytes>> {
    let len = get_varint(b, what)?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 || len as u64 > b.len() as u64 {
        return Err(if len < 0 {
            KafkaError::Invalid(what)
        } else {
            KafkaError::Truncated(what)
        });
    }
    let len = len as usize;
    let off = src.len() - b.len();
    let out = src.slice(off..off + len);
    *b = &b[len..];
    Ok(Some(out))
}

/// Read the batches of a record set (a fetch's `records`). A partial
/// batch at the end (the broker cuts at the size asked for) ends the set
/// without error. Every batch's CRC32C is checked. A batch with an
/// offset below `min_offset` is still returned: the caller skips the
/// records it already has.
pub fn decode_record_batches(set: &Bytes, limits: &KafkaLimits) -> Result<Vec<Batch>> {
    let mut batches = Vec::new();
    let mut pos = 0usize;
    while set.len() - pos >= 12 {
        let head = &set[pos..];
        let base_offset = i64::from_be_bytes(head[0..8].try_into().unwrap_or([0; 8]));
        let length = i32::from_be_bytes(head[8..12].try_into().unwrap_or([0; 4]));
        if length < 0 || base_offset < 0 {
            return Err(KafkaError::Invalid("record batch header"));
        }
        let end = 12 + length as usize;
        if head.len() < end {
            break; // partial batch at the end
        }
        if batches.len() >= limits.max_array_len {
            return Err(KafkaError::TooLarge {
                what: "batches",
                len: batches.len() as u64 + 1,
                limit: limits.max_array_len as u64,
            });
        }
        if end < 17 {
            return Err(KafkaError::Truncated("record batch"));
        }
        let magic = head[16] as i8;
        if magic != 2 {
            if !(0..2).contains(&magic) {
                return Err(KafkaError::Invalid("record batch magic"));
            }
            // A legacy message (set): one offset, skipped.
            batches.push(Batch::Skipped {
                next_offset: base_offset.saturating_add(1),
                reason: "legacy message format",
            });
            pos += end;
            continue;
        }
        let batch = set.slice(pos..pos + end);
        batches.push(decode_batch(base_offset, &batch, limits)?);
        pos += end;
    }
    Ok(batches)
}

fn decode_batch(base_offset: i64, batch: &Bytes, limits: &KafkaLimits) -> Result<Batch> {
    if batch.len() < BATCH_HEADER {
        return Err(KafkaError::Truncated("record batch header"));
    }
    let expected = u32::from_be_bytes(batch[17..21].try_into().unwrap_or([0; 4]));
    let actual = crc32c(&batch[CRC_START..]);
    if expected != actual {
        return Err(KafkaError::Crc { expected, actual });
    }
    let attributes = i16::from_be_bytes([batch[21], batch[22]]);
    let last_offset_delta = i32::from_be_bytes(batch[23..27].try_into().unwrap_or([0; 4]));
    if last_offset_delta < 0 {
        return Err(KafkaError::Invalid("last offset delta"));
    }
    let next_offset = base_offset
        .checked_add(i64::from(last_offset_delta) + 1)
        .ok_or(KafkaError::Invalid("record batch offsets"))?;
    let base_timestamp = i64::from_be_bytes(batch[27..35].try_into().unwrap_or([0; 8]));
    if attributes & 0x07 != 0 {
        return Ok(Batch::Skipped {
            next_offset,
            reason: "compressed batch",
        });
    }
    if attributes & 0x20 != 0 {
        return Ok(Batch::Skipped {
            next_offset,
            reason: "control batch",
        });
    }
    let count = i32::from_be_bytes(batch[57..61].try_into().unwrap_or([0; 4]));
    if count < 0 {
        return Err(KafkaError::Invalid("record count"));
    }
    let count = count as usize;
    // A record takes at least 7 bytes.
    if count > limits.max_array_len || count.saturating_mul(7) > batch.len() - BATCH_HEADER {
        return Err(KafkaError::TooLarge {
            what: "record count",
            len: count as u64,
            limit: limits.max_array_len.min((batch.len() - BATCH_HEADER) / 7) as u64,
        });
    }
    let mut records = Vec::with_capacity(count);
    let mut rest: &[u8] = &batch[BATCH_HEADER..];
    for _ in 0..count {
        let len = get_varint(&mut rest, "record length")?;
        if len < 0 || len as u64 > rest.len() as u64 {
            return Err(KafkaError::Truncated("record"));
        }
        let (mut rec, after) = rest.split_at(len as usize);
        rest = after;
        let rec_src =
            batch.slice(batch.len() - after.len() - len as usize..batch.len() - after.len());
        // attributes (unused)
        rec = rec
            .split_first()
            .map(|(_, r)| r)
            .ok_or(KafkaError::Truncated("record attributes"))?;
        let ts_delta = get_varint(&mut rec, "timestamp delta")?;
        let offset_delta = get_varint(&mut rec, "offset delta")?;
        if !(0..=i64::from(last_offset_delta)).contains(&offset_delta) {
            return Err(KafkaError::Invalid("offset delta"));
        }
        let key = get_varbytes(&mut rec, &rec_src, "record key")?;
        let value = get_varbytes(&mut rec, &rec_src, "record value")?;
        let headers = get_varint(&mut rec, "header count")?;
        if headers < 0 || headers as u64 > rec.len() as u64 / 2 {
            return Err(KafkaError::Invalid("header count"));
        }
        for _ in 0..headers {
            let k = get_varint(&mut rec, "header key")?;
            if k < 0 || k as u64 > rec.len() as u64 {
                return Err(KafkaError::Invalid("header key"));
            }
            rec = &rec[k as usize..];
            get_varbytes(&mut rec, &rec_src, "header value")?;
        }
        if !rec.is_empty() {
            return Err(KafkaError::Invalid("record length"));
        }
        records.push(Record {
            offset: base_offset + offset_delta,
            timestamp: base_timestamp.wrapping_add(ts_delta),
            key,
            value,
        });
    }
    if !rest.is_empty() {
        return Err(KafkaError::Trailing(rest.len()));
    }
    Ok(Batch::Records {
        next_offset,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> KafkaLimits {
        KafkaLimits::default()
    }

    #[test]
    fn crc32c_check_value() {
        // The check value of CRC-32C (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn request_header_and_body() {
        let mut out = BytesMut::new();
        encode_request(&mut out, 7, "sio", &Request::ApiVersions).unwrap();
        assert_eq!(
            &out[..],
            &[0, 0, 0, 13, 0, 18, 0, 0, 0, 0, 0, 7, 0, 3, b's', b'i', b'o'][..]
        );
        let mut out = BytesMut::new();
        encode_request(
            &mut out,
            1,
            "",
            &Request::Metadata {
                topics: vec!["ab".into()],
            },
        )
        .unwrap();
        assert_eq!(
            &out[..],
            &[0, 0, 0, 19, 0, 3, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 2, b'a', b'b', 0][..]
        );
        let long = "x".repeat(40_000);
        assert!(encode_request(&mut out, 1, &long, &Request::ApiVersions).is_err());
    }

    #[test]
    fn frames_are_cut_and_bounded() {
        let mut d = FrameDecoder::new(limits());
        d.feed(&[0, 0, 0, 5, 1, 2]);
        assert_eq!(d.next_frame(), Ok(None));
        d.feed(&[3, 4, 5, 0, 0]);
        assert_eq!(d.next_frame().unwrap().unwrap(), &[1, 2, 3, 4, 5][..]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.buffered(), 2);
        let mut d = FrameDecoder::new(KafkaLimits {
            max_frame_bytes: 10,
            ..limits()
        });
        d.feed(&[0, 0, 0, 11]);
        assert!(matches!(d.next_frame(), Err(KafkaError::TooLarge { .. })));
        // It stays failed.
        assert!(d.next_frame().is_err());
        let mut d = FrameDecoder::new(limits());
        d.feed(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(d.next_frame(), Err(KafkaError::Invalid("frame size")));
    }

    #[test]
    fn record_batch_round_trip() {
        let mut set = BytesMut::new();
        encode_record_batch(&mut set, 1_700_000_000_000, &[b"{\"a\":1}", b"", b"xyz"]).unwrap();
        // The broker rewrites the base offset (outside the CRC).
        set[0..8].copy_from_slice(&40i64.to_be_bytes());
        let one = set.len();
        encode_record_batch(&mut set, 5, &[b"next"]).unwrap();
        set[one..one + 8].copy_from_slice(&43i64.to_be_bytes());
        // A partial third batch, as a fetch cut at its byte limit ends.
        set.extend_from_slice(&set.clone()[..30]);
        let batches = decode_record_batches(&set.freeze(), &limits()).unwrap();
        assert_eq!(batches.len(), 2);
        let Batch::Records {
            next_offset,
            records,
        } = &batches[0]
        else {
            panic!("{batches:?}")
        };
        assert_eq!(*next_offset, 43);
        let values: Vec<_> = records
            .iter()
            .map(|r| (r.offset, r.key.clone(), r.value.clone().unwrap()))
            .collect();
        assert_eq!(
            values,
            vec![
                (40, None, Bytes::from_static(b"{\"a\":1}")),
                (41, None, Bytes::new()),
                (42, None, Bytes::from_static(b"xyz")),
            ]
        );
        assert_eq!(records[0].timestamp, 1_700_000_000_000);
        assert_eq!(batches[1].next_offset(), 44);
    }

    #[test]
    fn corrupt_batches_are_errors() {
        let mut set = BytesMut::new();
        encode_record_batch(&mut set, 0, &[b"hello"]).unwrap();
        let good = set.freeze();
        let mut bad = BytesMut::from(&good[..]);
        let last = bad.len() - 2;
        bad[last] ^= 1;
        assert!(matches!(
            decode_record_batches(&bad.freeze(), &limits()),
            Err(KafkaError::Crc { .. })
        ));
        // Every truncation is a partial batch (nothing) or an error.
        for n in 0..good.len() {
            assert_eq!(
                decode_record_batches(&good.slice(..n), &limits()),
                Ok(vec![])
            );
        }
        // Compressed batches are skipped whole.
        let mut gz = BytesMut::from(&good[..]);
        gz[22] |= 1;
        let crc = crc32c(&gz[CRC_START..]);
        gz[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            decode_record_batches(&gz.freeze(), &limits()),
            Ok(vec![Batch::Skipped {
                next_offset: 1,
                reason: "compressed batch"
            }])
        );
    }

    fn metadata_frame() -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i32(9); // correlation id
        b.put_i32(0); // throttle
        b.put_i32(1); // brokers
        b.put_i32(1);
        put_string(&mut b, "127.0.0.1");
        b.put_i32(9092);
        b.put_i16(-1); // rack
        b.put_i16(-1); // cluster id
        b.put_i32(1); // controller
        b.put_i32(1); // topics
        b.put_i16(0);
        put_string(&mut b, "socketio");
        b.put_u8(0);
        b.put_i32(1); // partitions
        b.put_i16(0);
        b.put_i32(0);
        b.put_i32(1);
        b.put_i32(1);
        b.put_i32(1);
        b.put_i32(1);
        b.put_i32(1);
        b.to_vec()
    }

    #[test]
    fn metadata_response() {
        let frame = Bytes::from(metadata_frame());
        let (id, r) = decode_response(ApiKey::Metadata, &frame, &limits()).unwrap();
        assert_eq!(id, 9);
        assert_eq!(
            r,
            Response::Metadata(MetadataResponse {
                brokers: vec![Broker {
                    node_id: 1,
                    host: "127.0.0.1".into(),
                    port: 9092
                }],
                topics: vec![TopicMetadata {
                    error_code: 0,
                    name: "socketio".into(),
                    partitions: vec![PartitionMetadata {
                        error_code: 0,
                        partition: 0,
                        leader: 1
                    }]
                }]
            })
        );
        // Any truncation, or a byte too many, is an error.
        for n in 0..frame.len() {
            assert!(decode_response(ApiKey::Metadata, &frame.slice(..n), &limits()).is_err());
        }
        let mut longer = metadata_frame();
        longer.push(0);
        assert_eq!(
            decode_response(ApiKey::Metadata, &Bytes::from(longer), &limits()),
            Err(KafkaError::Trailing(1))
        );
        // A huge array length is refused before any allocation.
        let mut huge = metadata_frame();
        huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_response(ApiKey::Metadata, &Bytes::from(huge), &limits()).is_err());
    }

    #[test]
    fn fetch_response_with_records() {
        let mut set = BytesMut::new();
        encode_record_batch(&mut set, 0, &[b"m"]).unwrap();
        let mut b = BytesMut::new();
        b.put_i32(3);
        b.put_i32(0); // throttle
        b.put_i32(1);
        put_string(&mut b, "t");
        b.put_i32(1);
        b.put_i32(0); // partition
        b.put_i16(0);
        b.put_i64(1); // high watermark
        b.put_i64(1); // last stable offset
        b.put_i32(-1); // aborted transactions
        b.put_i32(set.len() as i32);
        b.put_slice(&set);
        let frame = b.freeze();
        let (_, r) = decode_response(ApiKey::Fetch, &frame, &limits()).unwrap();
        let Response::Fetch(f) = r else { panic!() };
        assert_eq!(f.partitions[0].1.records, set);
        assert_eq!(f.partitions[0].1.high_watermark, 1);
    }

    #[test]
    fn empty_fetch_response() {
        // The smallest answer: one partition, no records (null and empty).
        for records in [-1i32, 0] {
            let mut b = BytesMut::new();
            b.put_i32(4);
            b.put_i32(0);
            b.put_i32(1);
            put_string(&mut b, "t");
            b.put_i32(1);
            b.put_i32(0);
            b.put_i16(0);
            b.put_i64(7);
            b.put_i64(7);
            b.put_i32(-1);
            b.put_i32(records);
            let (_, r) = decode_response(ApiKey::Fetch, &b.freeze(), &limits()).unwrap();
            let Response::Fetch(f) = r else { panic!() };
            assert!(f.partitions[0].1.records.is_empty());
        }
    }

    #[test]
    fn api_versions_check() {
        let mut r = ApiVersionsResponse {
            error_code: 0,
            apis: ApiKey::ALL
                .iter()
                .map(|k| ApiVersionRange {
                    api_key: k.code(),
                    min: 0,
                    max: 20,
                })
                .collect(),
        };
        assert_eq!(r.missing(), None);
        r.apis[1].min = 5;
        assert_eq!(r.missing(), Some(ApiKey::Fetch));
    }

    #[test]
    fn varints() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            let mut s: &[u8] = &b;
            assert_eq!(get_varint(&mut s, "v"), Ok(v));
            assert!(s.is_empty());
        }
        let mut s: &[u8] = &[0xff; 11];
        assert!(get_varint(&mut s, "v").is_err());
    }
}
