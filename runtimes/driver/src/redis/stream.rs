//! Redis streams for the bus: reading entries out of replies, and the
//! task that follows one stream (`XREAD BLOCK` in a loop on a connection
//! of its own, since a blocked connection can do nothing else).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use futures_util::AsyncWriteExt;
use socketio_core::cluster::resp::RespValue;
use socketio_core::cluster::{BusInput, StreamEntry};
use socketio_core::Str;

use super::config::RedisConfig;
use super::conn::{self, Conn};
use super::RedisError;
use crate::bus::with_deadline;
use crate::runtime::Runtime;

type Inputs = Arc<dyn Fn(BusInput) + Send + Sync>;

/// One entry of an `XRANGE`/`XREAD` reply: `[id, [field, value, ..]]`
/// (a deleted entry's fields read as none).
fn parse_entry(value: &RespValue) -> Option<StreamEntry> {
    let [id, fields] = value.as_elements()? else {
        return None;
    };
    let id = Str::try_from(id.as_bytes()?.clone()).ok()?;
    let fields = match fields {
        RespValue::Null => Vec::new(),
        other => {
            let items = other.as_elements()?;
            if items.len() % 2 != 0 {
                return None;
            }
            items
                .chunks(2)
                .map(|kv| Some((kv[0].as_bytes()?.clone(), kv[1].as_bytes()?.clone())))
                .collect::<Option<Vec<_>>>()?
        }
    };
    Some(StreamEntry { id, fields })
}

/// The entries of an `XRANGE` reply; `None` for anything else (an error
/// reply included).
pub(crate) fn parse_range(value: &RespValue) -> Option<Vec<StreamEntry>> {
    value.as_elements()?.iter().map(parse_entry).collect()
}

/// The entries of stream `stream` in an `XREAD` reply (none when it timed
/// out); `None` for anything else.
fn parse_read(value: &RespValue, stream: &str) -> Option<Vec<StreamEntry>> {
    match value {
        RespValue::Null => Some(Vec::new()),
        // RESP3 would be a map; the bus speaks RESP2.
        other => {
            let mut entries = Vec::new();
            for item in other.as_elements()? {
                let [name, list] = item.as_elements()? else {
                    return None;
                };
                if name.as_bytes()?.as_ref() == stream.as_bytes() {
                    entries.extend(parse_range(list)?);
                }
            }
            Some(entries)
        }
    }
}

/// Where a follower starts.
enum Position {
    /// The id of the stream's newest entry, read when first connected.
    Now,
    /// After this id.
    After(Str),
}

/// Follow `stream` until `stop` closes: report every entry after `from`
/// (or after the newest one at the first connection), in order; on any
/// failure reconnect with back-off and resume after the last entry
/// reported.
pub(crate) async fn follow(
    runtime: Arc<dyn Runtime>,
    config: Arc<RedisConfig>,
    stream: Str,
    from: Option<Str>,
    inputs: Inputs,
    stop: async_channel::Receiver<()>,
) {
    let mut position = match from {
        Some(id) => Position::After(id),
        None => Position::Now,
    };
    let mut backoff = config.bus.backoff_min;
    let mut failures: u32 = 0;
    loop {
        let run = follow_once(&runtime, &config, &stream, &mut position, &inputs);
        let stopping = stop.recv();
        let error = match select(std::pin::pin!(run), std::pin::pin!(stopping)).await {
            Either::Left((error, _)) => error,
            Either::Right(_) => return,
        };
        failures += 1;
        if failures == 1 || failures % 20 == 0 {
            tracing::warn!(%stream, attempts = failures, "following the Redis stream: {error}");
        } else {
            tracing::debug!(%stream, attempts = failures, "following the Redis stream: {error}");
        }
        if error.made_progress {
            backoff = config.bus.backoff_min;
            failures = 0;
        }
        let wait = runtime.sleep_until(Instant::now() + backoff);
        if let Either::Right(_) = select(wait, std::pin::pin!(stop.recv())).await {
            return;
        }
        backoff = (backoff * 2).min(config.bus.backoff_max);
    }
}

/// Why one connection's follow ended.
struct FollowEnded {
    error: RedisError,
    /// The connection worked for a while (reset the back-off).
    made_progress: bool,
}

impl std::fmt::Display for FollowEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

async fn follow_once(
    runtime: &Arc<dyn Runtime>,
    config: &Arc<RedisConfig>,
    stream: &Str,
    position: &mut Position,
    inputs: &Inputs,
) -> FollowEnded {
    let ended = |error| FollowEnded {
        error,
        made_progress: false,
    };
    let deadline = Instant::now() + config.bus.connect_timeout;
    let mut conn = match with_deadline(runtime, deadline, "connecting to Redis", async {
        let target = conn::target(runtime, config).await?;
        conn::open(runtime, config, &target, true).await
    })
    .await
    {
        Ok(conn) => conn,
        Err(e) => return ended(e),
    };
    let io = config.bus.io_timeout;
    let mut last = match position {
        Position::After(id) => id.clone(),
        Position::Now => {
            // Pin "now" to an id, so that a reconnection before the first
            // entry misses nothing.
            let reply = request(
                runtime,
                &mut conn,
                io,
                &[b"XREVRANGE", stream.as_bytes(), b"+", b"-", b"COUNT", b"1"],
            )
            .await;
            let id = match reply.as_ref().map(parse_range) {
                Ok(Some(entries)) => match entries.into_iter().next() {
                    Some(entry) => entry.id,
                    None => Str::from_static("0-0"),
                },
                Ok(None) => {
                    let _ = conn.stream.close().await;
                    return ended(RedisError::Unexpected(format!("{reply:?}")));
                }
                Err(e) => return ended(e.clone()),
            };
            *position = Position::After(id.clone());
            id
        }
    };
    let block = config.stream_block.as_millis().to_string();
    let count = config.stream_read_count.to_string();
    let mut made_progress = false;
    loop {
        let args: [&[u8]; 7] = [
            b"XREAD",
            b"COUNT",
            count.as_bytes(),
            b"BLOCK",
            block.as_bytes(),
            b"STREAMS",
            stream.as_bytes(),
        ];
        let mut all: Vec<&[u8]> = args.to_vec();
        all.push(last.as_bytes());
        let reply = match request(runtime, &mut conn, config.stream_block + io, &all).await {
            Ok(reply) => reply,
            Err(error) => {
                return FollowEnded {
                    error,
                    made_progress,
                }
            }
        };
        let Some(entries) = parse_read(&reply, stream) else {
            let _ = conn.stream.close().await;
            return FollowEnded {
                error: match reply {
                    RespValue::Error(e) => RedisError::Server(String::from_utf8_lossy(&e).into()),
                    other => RedisError::Unexpected(format!("{other:?}")),
                },
                made_progress,
            };
        };
        made_progress = true;
        for entry in entries {
            last = entry.id.clone();
            *position = Position::After(last.clone());
            inputs(BusInput::StreamEntry {
                stream: stream.clone(),
                entry,
            });
        }
    }
}

async fn request(
    runtime: &Arc<dyn Runtime>,
    conn: &mut Conn,
    timeout: Duration,
    args: &[&[u8]],
) -> Result<RespValue, RedisError> {
    let deadline = Instant::now() + timeout;
    with_deadline(
        runtime,
        deadline,
        "reading a Redis stream",
        conn::request(conn, args),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn bulk(s: &str) -> RespValue {
        RespValue::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn replies_to_entries() {
        let entry = RespValue::Array(vec![
            bulk("1-0"),
            RespValue::Array(vec![bulk("a"), bulk("b")]),
        ]);
        let deleted = RespValue::Array(vec![bulk("2-0"), RespValue::Null]);
        let range = RespValue::Array(vec![entry.clone(), deleted]);
        let entries = parse_range(&range).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "1-0");
        assert_eq!(
            entries[0].fields,
            vec![(Bytes::from_static(b"a"), Bytes::from_static(b"b"))]
        );
        assert!(entries[1].fields.is_empty());
        let read = RespValue::Array(vec![RespValue::Array(vec![
            bulk("s"),
            RespValue::Array(vec![entry]),
        ])]);
        assert_eq!(parse_read(&read, "s").unwrap().len(), 1);
        assert_eq!(parse_read(&read, "other").unwrap().len(), 0);
        assert_eq!(parse_read(&RespValue::Null, "s"), Some(Vec::new()));
        // Garbage is refused, not guessed at.
        for bad in [
            RespValue::Integer(1),
            RespValue::Error(Bytes::from_static(b"ERR")),
            RespValue::Array(vec![RespValue::Array(vec![bulk("1-0")])]),
            RespValue::Array(vec![RespValue::Array(vec![
                bulk("1-0"),
                RespValue::Array(vec![bulk("odd")]),
            ])]),
            RespValue::Array(vec![RespValue::Array(vec![
                RespValue::Bulk(Bytes::from_static(&[0xff])),
                RespValue::Null,
            ])]),
        ] {
            assert_eq!(parse_range(&bad), None, "{bad:?}");
        }
        assert_eq!(parse_read(&RespValue::Integer(1), "s"), None);
    }
}
