//! The servers under test of the load benchmark (`bench/run.sh`).
//!
//! ```text
//! bench_server --impl ours|socketioxide|raw [--runtime tokio|async-std|smol] --port P
//!     [--adapter redis-python|redis-node --redis URL]
//! ```
//!
//! Every Socket.IO implementation answers the same events on `/`:
//! `echo(...)` emits `echo-back` with the same arguments, `join(room)` joins
//! `room` and emits `joined`, `broadcast(room, payload)` emits
//! `bcast(payload)` to every socket of `room`, `shout(...)` (ours only)
//! emits `shout-back(...)` to every socket of `/`. With `--adapter` (ours
//! only) the server is one node of a cluster over Redis, in python-socketio's
//! or `@socket.io/redis-adapter`'s format: its broadcasts reach the sockets
//! of every node (the `cluster` workload, `bench/cluster.sh`). `raw` is a plain
//! tokio-tungstenite server with 4 KiB read and write buffers, the ceiling:
//! it echoes every frame, except frames containing `"broadcast"`, which it
//! sends to every other connection; it has no long-polling. Prints
//! `listening on PORT` once bound.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use socketio_bench::flags::{usage_exit, Flags};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

const USAGE: &str = "usage: bench_server --impl ours|socketioxide|raw [--runtime tokio|async-std|smol] --port P [--adapter redis-python|redis-node --redis URL]";

fn usage(problem: &str) -> ! {
    usage_exit(USAGE, problem)
}

fn announce(addr: SocketAddr) {
    println!("listening on {}", addr.port());
    let _ = std::io::stdout().flush();
}

fn main() {
    let mut implementation = String::from("ours");
    let mut runtime = String::from("tokio");
    let mut port = 0u16;
    let (mut adapter, mut redis) = (None::<String>, None::<String>);
    let flags = Flags::from_env(USAGE, &[]);
    for (flag, value) in flags {
        match flag.as_str() {
            "--impl" => implementation = value,
            "--runtime" => runtime = value,
            "--port" => port = value.parse().unwrap_or_else(|_| usage("bad port")),
            "--adapter" => adapter = Some(value),
            "--redis" => redis = Some(value),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let adapter = adapter.map(|kind| {
        if implementation != "ours" {
            usage("--adapter is for --impl ours");
        }
        let url = redis.unwrap_or_else(|| usage("--adapter needs --redis URL"));
        let made = match kind.as_str() {
            "redis-python" => socketio::RedisAdapter::python(&url),
            "redis-node" => socketio::RedisAdapter::node(&url),
            other => usage(&format!("unknown adapter {other}")),
        };
        made.unwrap_or_else(|e| usage(&format!("bad --redis: {e}")))
    });
    match implementation.as_str() {
        "ours" => ours(&runtime, addr, adapter),
        "socketioxide" => tokio_main(socketioxide_server(addr)),
        "raw" => tokio_main(raw_server(addr)),
        other => usage(&format!("unknown implementation {other}")),
    }
}

/// Our server, on the runtime named `runtime`; one node of a cluster with
/// `adapter`.
fn ours(runtime: &str, addr: SocketAddr, adapter: Option<socketio::RedisAdapter>) {
    use socketio::{AckSender, Args, RuntimeKind, Server, SocketRef, Value};
    let kind =
        RuntimeKind::from_name(runtime).unwrap_or_else(|| usage(&format!("unknown {runtime}")));
    kind.block_on(async move {
        let mut builder = Server::builder().runtime(kind);
        if let Some(adapter) = adapter {
            builder = builder.adapter(adapter);
        }
        let server = builder.build();
        server.ns("/", |ns| {
            ns.on(
                "echo",
                |socket: SocketRef, args: Args, _ack: Option<AckSender>| async move {
                    let _ = socket.emit("echo-back", &args);
                },
            );
            ns.on(
                "join",
                |socket: SocketRef, args: Args, _ack: Option<AckSender>| async move {
                    let room: String = args.get(0).unwrap_or_default();
                    let _ = socket.join(&room);
                    let _ = socket.emit("joined", &(room,));
                },
            );
            ns.on(
                "broadcast",
                |socket: SocketRef, args: Args, _ack: Option<AckSender>| async move {
                    let room: String = args.get(0).unwrap_or_default();
                    let payload: Value = args.get(1).unwrap_or_default();
                    let _ = socket.server().to(&room).emit("bcast", &(payload,));
                },
            );
            ns.on(
                "shout",
                |socket: SocketRef, args: Args, _ack: Option<AckSender>| async move {
                    let _ = socket.server().of("/").emit("shout-back", &args);
                },
            );
        });
        match server.listen(addr).await {
            Ok(addr) => announce(addr),
            Err(e) => {
                eprintln!("cannot listen: {e}");
                std::process::exit(1)
            }
        }
        std::future::pending::<()>().await;
    });
}

/// A tokio runtime like ours uses: multi-thread, one worker per core the
/// process may run on (one under `taskset -c 0`).
fn tokio_main(main: impl std::future::Future<Output = std::io::Result<()>>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(main) {
        eprintln!("server failed: {e}");
        std::process::exit(1);
    }
}

/// socketioxide (its published crate) on hyper's HTTP/1 server.
async fn socketioxide_server(addr: SocketAddr) -> std::io::Result<()> {
    use serde_json::Value;
    use socketioxide::extract::{Data, SocketRef};
    use socketioxide::SocketIo;

    let (service, io) = SocketIo::new_svc();
    io.ns("/", async |socket: SocketRef| {
        socket.on("echo", async |s: SocketRef, Data::<Value>(data)| {
            let _ = s.emit("echo-back", &data);
        });
        socket.on("join", async |s: SocketRef, Data::<String>(room)| {
            s.join(room.clone());
            let _ = s.emit("joined", &room);
        });
        socket.on(
            "broadcast",
            async |s: SocketRef, Data::<(String, Value)>((room, payload))| {
                let _ = s.within(room).emit("bcast", &payload).await;
            },
        );
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    announce(listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await;
        });
    }
}

type Peers = Arc<Mutex<Vec<(u64, tokio::sync::mpsc::UnboundedSender<Utf8Bytes>)>>>;

/// The ceiling: WebSocket frames echoed (or fanned out) with no protocol
/// on top, 4 KiB read and write buffers, and what a good server does: one
/// task per connection, every frame already received answered before one
/// flush, a broadcast's bytes shared (not copied) by every receiver.
async fn raw_server(addr: SocketAddr) -> std::io::Result<()> {
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    announce(listener.local_addr()?);
    let peers: Peers = Arc::default();
    let mut next_id = 0u64;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let peers = peers.clone();
        tokio::spawn(async move {
            let config = WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(4096);
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Utf8Bytes>();
            peers.lock().unwrap().push((id, tx));
            let _ = raw_connection(ws, rx, id, &peers).await;
            peers.lock().unwrap().retain(|(peer, _)| *peer != id);
        });
    }
}

/// What woke a raw connection.
enum Wake {
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Broadcast(Option<Utf8Bytes>),
}

async fn raw_connection(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Utf8Bytes>,
    id: u64,
    peers: &Peers,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    use futures_util::{FutureExt, SinkExt, StreamExt};
    loop {
        let wake = tokio::select! {
            frame = ws.next() => Wake::Frame(frame),
            text = rx.recv() => Wake::Broadcast(text),
        };
        let mut frame = match wake {
            Wake::Frame(None) => return Ok(()),
            Wake::Frame(frame) => frame,
            Wake::Broadcast(Some(text)) => {
                ws.feed(Message::Text(text)).await?;
                None
            }
            Wake::Broadcast(None) => return Ok(()),
        };
        // This frame and every one already buffered, then one flush.
        loop {
            match frame {
                Some(Ok(Message::Text(text))) => {
                    if text.as_str().contains("\"broadcast\"") {
                        for (peer, sender) in peers.lock().unwrap().iter() {
                            if *peer != id {
                                let _ = sender.send(text.clone());
                            }
                        }
                    } else {
                        ws.feed(Message::Text(text)).await?;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => break,
            }
            frame = ws.next().now_or_never().flatten();
        }
        while let Ok(text) = rx.try_recv() {
            ws.feed(Message::Text(text)).await?;
        }
        ws.flush().await?;
    }
}
