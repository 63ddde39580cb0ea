//! Load generator of the server benchmark (`bench/run.sh`).
//!
//! Speaks raw Engine.IO frames on a current-thread tokio runtime, so that
//! one core of load outruns one core of server. Over WebSocket it is a
//! minimal hand-written client (HTTP/1.1 upgrade, 4 KiB read buffer per
//! connection, masked client frames built into a reused buffer, every frame
//! of one turn in one write): `0{...}` open, `40` → `40{...}`, `2` → `3`,
//! then `42[...]` events. With `--raw` it skips the Socket.IO handshake
//! (for the plain WebSocket ceiling server). The `polling` mode speaks
//! Engine.IO v4 long-polling over two HTTP/1.1 keep-alive connections per
//! client, one for GETs and one for POSTs.
//!
//! ```text
//! loadgen echo      --addr HOST:PORT --pid PID --clients 100 --inflight 8 [--secs 5] [--raw]
//! loadgen polling   --addr HOST:PORT --pid PID --clients 100 --inflight 8 [--secs 5]
//! loadgen idle      --addr HOST:PORT --pid PID --clients 1000 [--raw]
//! loadgen broadcast --addr HOST:PORT --pid PID --clients 1000 --inflight 32 [--secs 5] [--raw]
//! loadgen burst     --addr HOST:PORT --pid PID --clients 1000 --inflight 400 [--raw]
//! loadgen cluster   --addr A,B,C --pid PA,PB,PC --clients 1000 --inflight 8 [--secs 5]
//!                   [--redis HOST:PORT --redis-pid PID]
//! loadgen report    --out FILE
//! ```
//!
//! Each measuring mode prints a summary and, with `--out FILE --label
//! NAME`, appends `workload<TAB>server<TAB>metric<TAB>value` lines that
//! `report` turns into one table per workload with ratios to `ours-tokio`,
//! a table of our three runtimes and a table of the targets of issue 6.
//! Server CPU is utime+stime of `/proc/PID/stat` over the measured window;
//! the run is marked INVALID when the load generator's own CPU exceeds 90%
//! of its core (then throughput and latency measure the load generator).
//!
//! `cluster` measures a cluster of nodes sharing a bus (`bench/cluster.sh`):
//! `--clients` connections to each address of `--addr` (opened round-robin),
//! the first connection to each node a sender; broadcasts (`shout`, which
//! every node answers with `shout-back` to the whole namespace) are sent by
//! the senders in turn, `--inflight` outstanding, each complete once every
//! connection (senders included) has it. Server CPU is summed over the
//! processes of `--pid`. After the window no broadcast is sent and what is
//! in flight must arrive within 10 s (else `lost_deliveries`); with
//! `--redis` Redis's `INFO commandstats` gives the PUBLISH and SPUBLISH
//! calls per broadcast and, with `--redis-pid`, `/proc/PID/schedstat` its
//! CPU per broadcast, both over every broadcast sent (from the first to
//! the drain).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use socketio_bench::flags::{usage_exit, Flags};
use socketio_bench::wire::{
    connect, digits, find, push_frame, status_kb, Conn, Failure, ReadBuffer, READ_BUFFER,
};

/// Linux USER_HZ: the unit of utime and stime in `/proc/PID/stat`.
const TICKS_PER_SEC: f64 = 100.0;
/// Above this share of its core the load generator is the bottleneck.
const MAX_SELF_CPU: f64 = 0.90;
/// Connections opened at once by the idle and broadcast workloads: enough
/// to connect 10,000 in seconds, few enough not to overflow a listen
/// backlog (which would show as connect latency, not as memory).
const CONNECT_PARALLELISM: usize = 128;

#[derive(Clone)]
struct Options {
    mode: String,
    addr: String,
    pid: u32,
    /// Every process whose CPU is the server's (`--pid A,B,C`).
    pids: Vec<u32>,
    /// Redis of the cluster workload, for its command statistics.
    redis: Option<String>,
    redis_pid: u32,
    clients: usize,
    inflight: usize,
    secs: u64,
    raw: bool,
    out: Option<String>,
    label: String,
    workload: Option<String>,
}

const USAGE: &str = "usage: loadgen echo|polling|idle|broadcast|burst|cluster|report --addr HOST:PORT[,HOST:PORT...] --pid PID[,PID...] [--clients N] [--inflight N] [--secs S] [--raw] [--redis HOST:PORT --redis-pid PID] [--out FILE --label NAME] [--workload NAME]";

fn usage(problem: &str) -> ! {
    usage_exit(USAGE, problem)
}

fn main() {
    let mut flags = Flags::from_env(USAGE, &["--raw"]);
    let mode = flags.positional().unwrap_or_else(|| usage("mode missing"));
    let mut options = Options {
        mode,
        addr: String::from("127.0.0.1:3000"),
        pid: 0,
        pids: Vec::new(),
        redis: None,
        redis_pid: 0,
        clients: 100,
        inflight: 1,
        secs: 5,
        raw: false,
        out: None,
        label: String::from("server"),
        workload: None,
    };
    for (flag, value) in flags {
        let number = || -> u64 { value.parse().unwrap_or_else(|_| usage("bad number")) };
        match flag.as_str() {
            "--addr" => options.addr = value.clone(),
            "--pid" => {
                options.pids = value
                    .split(',')
                    .map(|p| p.parse().unwrap_or_else(|_| usage("bad pid")))
                    .collect();
                options.pid = options.pids[0];
            }
            "--redis" => options.redis = Some(value.clone()),
            "--redis-pid" => options.redis_pid = number() as u32,
            "--clients" => options.clients = number() as usize,
            "--inflight" => options.inflight = number().max(1) as usize,
            "--secs" => options.secs = number(),
            "--out" => options.out = Some(value.clone()),
            "--label" => options.label = value.clone(),
            "--workload" => options.workload = Some(value.clone()),
            "--raw" => options.raw = true,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if options.mode == "report" {
        report(options.out.as_deref().unwrap_or_else(|| usage("--out")));
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match options.mode.as_str() {
            "echo" => echo(&options).await,
            "polling" => polling(&options).await,
            "idle" => idle(&options).await,
            "broadcast" => broadcast(&options, false).await,
            "burst" => broadcast(&options, true).await,
            "cluster" => cluster(&options).await,
            other => usage(&format!("unknown mode {other}")),
        }
    });
    if let Err(e) = result {
        eprintln!("loadgen {}: {e}", options.mode);
        std::process::exit(1);
    }
}

mod frames;
mod measurement;
mod polling;
mod report;
mod workloads;

use frames::*;
use measurement::*;
use polling::*;
use report::*;
use workloads::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for us in [
            0u32,
            1,
            127,
            128,
            129,
            255,
            256,
            1000,
            65_535,
            1 << 30,
            u32::MAX,
        ] {
            let bucket = Histogram::bucket(us);
            assert!(bucket >= last && bucket < BUCKETS, "{us}");
            last = bucket;
            let low = Histogram::low(bucket);
            assert!(low <= us && us - low <= us / 64 + 1, "{us} {low}");
        }
    }

    #[test]
    fn events_are_masked_frames_with_hand_written_ids() {
        let mut out = Vec::new();
        push_event(&mut out, ECHO_HEAD, 907);
        let payload = b"42[\"echo\",[907,\"hello world\"]]";
        assert_eq!(out[0], 0x81);
        assert_eq!(out[1] as usize, 0x80 | payload.len());
        assert_eq!(&out[6..], payload);
        assert_eq!(parse_id(payload), Some(907));
        assert_eq!(parse_id(b"42[\"echo-back\",[0,\"x\"]]"), Some(0));
    }

    #[test]
    fn publish_calls_of_info_commandstats() {
        let info = "# Commandstats\r\ncmdstat_ping:calls=3,usec=1,usec_per_call=0.33\r\n\
                    cmdstat_publish:calls=1200,usec=900,usec_per_call=0.75,rejected_calls=0\r\n\
                    cmdstat_spublish:calls=7,usec=5\r\n";
        assert_eq!(publish_calls(info), 1207);
        assert_eq!(publish_calls("# Commandstats\r\n"), 0);
        let shout = {
            let mut out = Vec::new();
            push_event(&mut out, SHOUT_HEAD, 42);
            out
        };
        assert_eq!(&shout[6..], b"42[\"shout\",[42,\"hello world\"]]");
        assert_eq!(
            parse_id(b"42[\"shout-back\",[42,\"hello world\"]]"),
            Some(42)
        );
    }

    #[test]
    fn chunked_and_sized_http_responses() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let mut conn = HttpConn::connect(&addr).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let wire: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\
                      Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
            server.write_all(wire).await.unwrap();
            while conn.reader.end < wire.len() {
                conn.reader.fill(&mut conn.stream).await.unwrap();
            }
            assert!(conn.next_response().unwrap());
            assert_eq!(conn.body, b"ok");
            assert!(conn.next_response().unwrap());
            assert_eq!(conn.body, b"abcde");
            assert!(!conn.next_response().unwrap());
        });
    }
}
