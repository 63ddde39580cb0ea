//! Echo server used by the interoperability tests.
//!
//! ```text
//! cargo run --release --example echo_server -- --port 3000 [--parser json|msgpack]
//!     [--state-recovery SECS] [--runtime tokio|async-std|smol]
//!     [--ping-interval MS] [--ping-timeout MS] [--max-payload BYTES]
//!     [--adapter redis-python|redis-node|redis-node-sharded|redis-streams --redis URL [--channel NAME]]
//!     [--adapter amqp --amqp URL [--channel NAME]]
//!     [--adapter kafka --kafka URL[,URL...] [--channel NAME]]
//!     [--adapter zmq --zmq zmq+tcp://HOST:PORT1+PORT2 [--channel NAME]]
//! ```
//!
//! Namespaces `/` and `/custom`. On connect it emits `auth` with the
//! handshake's auth (`{}` when none); auth `{"reject":true}` is refused
//! with `rejected by server` and data `{"code":42}`. `echo(...)` answers
//! `echo-back(...)` and acks with the same arguments; `ask(token)` asks the
//! client `question(token, <09 08 07>)` and acks `ask` with the answer;
//! `shout(...)` sends `shout-back(...)` to every socket of the namespace;
//! `disconnect-me` disconnects the socket. Prints `listening on PORT`.
//! `--ping-interval`, `--ping-timeout` (milliseconds) and `--max-payload`
//! override the Engine.IO defaults (25,000, 20,000, 1,000,000), so that a
//! test can make sessions expire quickly. `--help` prints the usage.
//!
//! With `--adapter` the server is one node of a cluster over Redis (python,
//! Node, sharded Node or Node streams format), RabbitMQ, Kafka or ZeroMQ
//! (python-socketio's `KombuManager`, `KafkaManager` and `ZmqManager`
//! formats) and
//! speaks the cluster contract of `tests/interop/README.md` too: `hello`
//! on connect; `join(room)`, `shout-to(room, data)`,
//! `shout-except(room, data)`, `enter-room(sid, room)`,
//! `leave-room(sid, room)`, `disconnect-sid(sid)`, `call-sid(sid, data)`,
//! `fetch-sockets(room)`, `server-side-emit(data)`,
//! `broadcast-ack(room, data, timeout_ms)` and `server-count`, each
//! reaching the sockets (or servers) of every node.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[path = "common/cli.rs"]
mod cli;
#[path = "common/log.rs"]
mod log;
#[path = "common/runtimes.rs"]
mod runtimes;

use socketio::extract::Data;
use socketio::{
    AmqpAdapter, AnyParser, Args, Binary, Bytes, ConnectRefusal, JsonParser, KafkaAdapter,
    MsgPackParser, RedisAdapter, Runtime, Server, SocketRef, Value, ZmqAdapter,
};

/// Options of the echo server.
#[derive(Clone)]
pub struct ServerOptions {
    /// TCP port on 127.0.0.1 (0: any).
    pub port: u16,
    /// Wire format.
    pub parser: AnyParser,
    /// Connection state recovery window, if on.
    pub state_recovery: Option<Duration>,
    /// The runtime.
    pub runtime: Arc<dyn Runtime>,
    /// The cluster adapter, if the server is one node of several.
    pub adapter: Option<ClusterAdapter>,
    /// Engine.IO ping interval, when not the default.
    pub ping_interval: Option<Duration>,
    /// Engine.IO ping timeout, when not the default.
    pub ping_timeout: Option<Duration>,
    /// Largest message or polling body, in bytes, when not the default.
    pub max_payload: Option<usize>,
}

/// The message bus of a clustered echo server.
#[derive(Clone, Debug)]
pub enum ClusterAdapter {
    /// Redis (python, Node, sharded Node or Node streams format).
    Redis(RedisAdapter),
    /// AMQP 0-9-1 / RabbitMQ (python format).
    Amqp(AmqpAdapter),
    /// Kafka (python format).
    Kafka(KafkaAdapter),
    /// ZeroMQ through python-socketio's broker (python format).
    Zmq(ZmqAdapter),
}

/// Start the echo server; returns it and the bound address.
pub async fn start(options: &ServerOptions) -> Result<(Server, SocketAddr), socketio::Error> {
    let mut builder = Server::builder()
        .parser(options.parser)
        .custom_runtime(options.runtime.clone());
    if let Some(window) = options.state_recovery {
        builder = builder.max_disconnection_duration(window);
    }
    if let Some(interval) = options.ping_interval {
        builder = builder.ping_interval(interval);
    }
    if let Some(timeout) = options.ping_timeout {
        builder = builder.ping_timeout(timeout);
    }
    if let Some(bytes) = options.max_payload {
        builder = builder.max_payload(bytes);
    }
    let clustered = options.adapter.is_some();
    match options.adapter.clone() {
        Some(ClusterAdapter::Redis(adapter)) => builder = builder.adapter(adapter),
        Some(ClusterAdapter::Amqp(adapter)) => builder = builder.adapter(adapter),
        Some(ClusterAdapter::Kafka(adapter)) => builder = builder.adapter(adapter),
        Some(ClusterAdapter::Zmq(adapter)) => builder = builder.adapter(adapter),
        None => {}
    }
    let server = builder.build();
    if clustered {
        server.on_server_event(
            "ping-servers",
            |_server: Server, args: Args, ack: Option<socketio::ServerSideAck>| async move {
                let data: String = args.get(0).unwrap_or_default();
                if let Some(ack) = ack {
                    let _ = ack.send(&(format!("pong:{data}"),));
                }
            },
        );
    }
    for nsp in ["/", "/custom"] {
        server.ns(nsp, |ns| {
            ns.on_connect(move |socket: SocketRef, auth: Option<Value>| async move {
                let auth = auth.unwrap_or(Value::Object(Vec::new()));
                if auth.get("reject") == Some(&Value::Bool(true)) {
                    return Err(ConnectRefusal::new("rejected by server")
                        .with_data(&serde_json::json!({"code": 42})));
                }
                socket.emit("auth", &(auth,));
                if clustered {
                    socket.emit("hello", &(serde_json::json!({"sid": socket.id()}),));
                }
                Ok(())
            });
            if clustered {
                cluster_handlers(ns);
            }
            // Every argument back, as an event and as the answer.
            ns.on("echo", |socket: SocketRef, args: Args| async move {
                socket.emit("echo-back", &args);
                args
            });
            ns.on(
                "ask",
                |socket: SocketRef, Data(token): Data<Value>| async move {
                    let question = (token, Binary(Bytes::from_static(&[9, 8, 7])));
                    let answer = socket
                        .call("question", &question, Duration::from_secs(10))
                        .await;
                    // An unanswered question is logged, and answers nothing.
                    answer.map_err(|e| format!("question unanswered: {e}"))
                },
            );
            ns.on("shout", |socket: SocketRef, args: Args| async move {
                socket.server().of(socket.ns()).emit("shout-back", &args);
            });
            ns.on("disconnect-me", |socket: SocketRef| async move {
                let _ = socket.disconnect();
            });
        });
    }
    let addr = server
        .listen(SocketAddr::from(([127, 0, 0, 1], options.port)))
        .await?;
    Ok((server, addr))
}

/// How long a handler waits for the bus to take what it published before
/// acknowledging (so the next request a client makes, on any node, sees it).
const FLUSH: Duration = Duration::from_secs(5);

/// Answers sorted by their JSON text, so that the order in which nodes
/// answered does not matter.
fn sorted_by_json(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_cached_key(|v| serde_json::to_string(v).unwrap_or_default());
    values
}

/// The first argument of each answer (what JavaScript's `emitWithAck`
/// resolves a broadcast to).
fn first_arguments(responses: &[(String, Args)]) -> Vec<Value> {
    responses
        .iter()
        .map(|(_, args)| args.get::<Value>(0).unwrap_or_default())
        .collect()
}

/// An error as the contract reports it: `{"error": message}`.
fn error_reply(message: impl std::fmt::Display) -> Value {
    Value::Object(vec![("error".into(), Value::String(message.to_string()))])
}

/// The cluster contract's events (see the module docs).
fn cluster_handlers(ns: &mut socketio::Namespace) {
    ns.on(
        "join",
        |socket: SocketRef, Data(room): Data<String>| async move {
            let _ = socket.join(&room);
            true
        },
    );
    ns.on(
        "shout-to",
        |socket: SocketRef, Data((room, data)): Data<(String, Value)>| async move {
            let everyone = socket.server().of(socket.ns());
            everyone.to(&room).emit("shout-back", &(data,));
            true
        },
    );
    ns.on(
        "shout-except",
        |socket: SocketRef, Data((room, data)): Data<(String, Value)>| async move {
            let everyone = socket.server().of(socket.ns());
            everyone.except(&room).emit("shout-back", &(data,));
            true
        },
    );
    for event in ["enter-room", "leave-room"] {
        ns.on(
            event,
            move |socket: SocketRef, Data((sid, room)): Data<(String, String)>| async move {
                let target = socket.server().of(socket.ns()).to(&sid);
                let result = if event == "enter-room" {
                    target.sockets_join(&room)
                } else {
                    target.sockets_leave(&room)
                };
                if let Err(e) = result {
                    eprintln!("{event}: {e}");
                }
                let _ = socket.server().flush_cluster(FLUSH).await;
                true
            },
        );
    }
    // One argument (the sid), unlike the two above.
    ns.on(
        "disconnect-sid",
        |socket: SocketRef, Data(sid): Data<String>| async move {
            let target = socket.server().of(socket.ns()).to(&sid);
            if let Err(e) = target.disconnect_sockets(true) {
                eprintln!("disconnect-sid: {e}");
            }
            let _ = socket.server().flush_cluster(FLUSH).await;
            true
        },
    );
    ns.on(
        "call-sid",
        |socket: SocketRef, Data((sid, data)): Data<(String, Value)>| async move {
            let answer = socket
                .server()
                .of(socket.ns())
                .to(&sid)
                .emit_with_ack("question", &(data,), Duration::from_secs(5))
                .await;
            match answer {
                Ok(answers) if answers.complete => {
                    Value::Array(first_arguments(&answers.responses))
                }
                Ok(_) => error_reply("operation has timed out"),
                Err(e) => error_reply(e),
            }
        },
    );
    ns.on(
        "fetch-sockets",
        |socket: SocketRef, Data(room): Data<String>| async move {
            let sockets = socket
                .server()
                .of(socket.ns())
                .to(&room)
                .fetch_sockets()
                .await;
            match sockets {
                Ok(sockets) => {
                    let mut ids: Vec<String> =
                        sockets.into_iter().map(|s| s.id.to_string()).collect();
                    ids.sort();
                    serde_json::json!(ids)
                }
                Err(e) => serde_json::json!({"error": e.to_string()}),
            }
        },
    );
    ns.on(
        "server-side-emit",
        |socket: SocketRef, Data(data): Data<Value>| async move {
            let answers = socket
                .server()
                .server_side_call("ping-servers", &(data,))
                .await;
            match answers {
                Ok(answers) => Value::Array(sorted_by_json(
                    answers
                        .iter()
                        .map(|a| a.get::<Value>(0).unwrap_or_default())
                        .collect(),
                )),
                Err(e) => error_reply(e),
            }
        },
    );
    ns.on("server-count", |socket: SocketRef| async move {
        match socket.server().server_count(socket.ns()).await {
            Ok(count) => serde_json::json!(count),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        }
    });
    ns.on(
        "broadcast-ack",
        |socket: SocketRef, Data((room, data, timeout_ms)): Data<(String, Value, u64)>| async move {
            let answers = socket
                .server()
                .of(socket.ns())
                .to(&room)
                .emit_with_ack("question", &(data,), Duration::from_millis(timeout_ms))
                .await;
            match answers {
                Ok(answers) => {
                    let responses =
                        Value::Array(sorted_by_json(first_arguments(&answers.responses)));
                    if answers.complete {
                        Value::Object(vec![("responses".into(), responses)])
                    } else {
                        Value::Object(vec![
                            ("error".into(), Value::String("timeout".into())),
                            ("responses".into(), responses),
                        ])
                    }
                }
                Err(e) => error_reply(e),
            }
        },
    );
}

fn parse_parser(name: &str) -> AnyParser {
    match name {
        "json" => JsonParser.into(),
        "msgpack" => MsgPackParser.into(),
        other => HELP.fail(format_args!("unknown parser {other}")),
    }
}

/// Serve `server` mounted in an axum router on 127.0.0.1:`port`, through
/// [`socketio::SocketIoLayer`] (the interop matrix's mounted variant).
#[cfg(feature = "tower")]
async fn mount_in_axum(server: Server, port: u16) -> std::io::Result<SocketAddr> {
    let app = axum::Router::new().layer(socketio::SocketIoLayer::new(server));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// `echo_server --help`.
static HELP: cli::Help = cli::Help {
    name: "echo_server",
    about: "the echo server of the interoperability tests (namespaces / and /custom), optionally one node of a cluster",
    usage: "--port P [options]",
    options: &[
        ("--port P", "port to listen on, on 127.0.0.1 (required; 0 for any free one)"),
        ("--parser json|msgpack", "wire format (json)"),
        ("--state-recovery SECS", "connection state recovery window (off)"),
        ("--runtime tokio|async-std|smol", "async runtime (tokio)"),
        log::LOG_OPTION,
        ("--ping-interval MS", "Engine.IO ping interval (25000)"),
        ("--ping-timeout MS", "Engine.IO ping timeout (20000)"),
        ("--max-payload BYTES", "largest message or polling body (1000000)"),
        ("--adapter KIND", "cluster bus: redis-python, redis-node, redis-node-sharded, redis-streams (with --redis), amqp, kafka or zmq"),
        ("--redis URL", "Redis server of a redis-* adapter (redis://host:port)"),
        ("--amqp URL", "RabbitMQ server of the amqp adapter (amqp://host:port)"),
        ("--kafka URL[,URL...]", "Kafka brokers of the kafka adapter"),
        ("--zmq URL", "ZeroMQ broker of the zmq adapter (zmq+tcp://HOST:PORT1+PORT2)"),
        ("--channel NAME", "cluster channel (python-socketio's default)"),
        ("--mount axum", "serve through an axum router (tokio, feature tower)"),
    ],
    notes: "Prints `listening on PORT` when ready.",
};

#[allow(dead_code)]
fn main() {
    let mut runtime = String::from("tokio");
    let mut options = ServerOptions {
        port: 0,
        parser: AnyParser::default(),
        state_recovery: None,
        runtime: Arc::new(socketio_smol::SmolRuntime),
        adapter: None,
        ping_interval: None,
        ping_timeout: None,
        max_payload: None,
    };
    let mut port = None;
    let mut mounted = false;
    let (mut adapter, mut redis, mut channel) = (None::<String>, None::<String>, None::<String>);
    let (mut amqp, mut kafka, mut zmq) = (None::<String>, None::<String>, None::<String>);
    let mut log_filter = None;
    let mut args = HELP.args();
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--port" => port = Some(args.parse(&flag)),
            "--parser" => options.parser = parse_parser(&args.value(&flag)),
            "--state-recovery" => {
                options.state_recovery = Some(Duration::from_secs(args.parse(&flag)));
            }
            "--runtime" => {
                runtime = args.value(&flag);
                if runtimes::runtime_named(&runtime).is_none() {
                    HELP.fail(format!("unknown runtime {runtime}"));
                }
            }
            "--adapter" => adapter = Some(args.value(&flag)),
            "--redis" => redis = Some(args.value(&flag)),
            "--amqp" => amqp = Some(args.value(&flag)),
            "--kafka" => kafka = Some(args.value(&flag)),
            "--zmq" => zmq = Some(args.value(&flag)),
            "--channel" => channel = Some(args.value(&flag)),
            "--mount" if args.value(&flag) == "axum" => mounted = true,
            "--mount" => HELP.fail("--mount takes axum"),
            "--ping-interval" => {
                options.ping_interval = Some(Duration::from_millis(args.parse(&flag)))
            }
            "--ping-timeout" => {
                options.ping_timeout = Some(Duration::from_millis(args.parse(&flag)))
            }
            "--max-payload" => options.max_payload = Some(args.parse(&flag)),
            "--log" => log_filter = Some(args.value(&flag)),
            _ => args.unknown(&flag),
        }
    }
    options.port = port.unwrap_or_else(|| HELP.fail("--port is required"));
    if mounted && (runtime != "tokio" || !cfg!(feature = "tower")) {
        HELP.fail("--mount axum runs on tokio with the tower feature");
    }
    // Mounted: our own listener takes any port, axum the requested one.
    let axum_port = options.port;
    if mounted {
        options.port = 0;
    }
    if adapter.as_deref() == Some("amqp") {
        let url = amqp.unwrap_or_else(|| HELP.fail("--adapter amqp needs --amqp URL"));
        let mut made =
            AmqpAdapter::python(&url).unwrap_or_else(|e| HELP.fail(format!("bad --amqp: {e}")));
        if let Some(channel) = channel.take() {
            made = made.channel(&channel);
        }
        options.adapter = Some(ClusterAdapter::Amqp(made));
    } else if adapter.as_deref() == Some("kafka") {
        let urls = kafka.unwrap_or_else(|| HELP.fail("--adapter kafka needs --kafka URL"));
        let mut made =
            KafkaAdapter::python(&urls).unwrap_or_else(|e| HELP.fail(format!("bad --kafka: {e}")));
        if let Some(channel) = channel.take() {
            made = made.channel(&channel);
        }
        options.adapter = Some(ClusterAdapter::Kafka(made));
    } else if adapter.as_deref() == Some("zmq") {
        let url = zmq.unwrap_or_else(|| HELP.fail("--adapter zmq needs --zmq URL"));
        let mut made =
            ZmqAdapter::python(&url).unwrap_or_else(|e| HELP.fail(format!("bad --zmq: {e}")));
        if let Some(channel) = channel.take() {
            made = made.channel(&channel);
        }
        options.adapter = Some(ClusterAdapter::Zmq(made));
    } else if let Some(kind) = adapter {
        let url = redis.unwrap_or_else(|| HELP.fail("--adapter needs --redis URL"));
        let made = match kind.as_str() {
            "redis-python" => RedisAdapter::python(&url),
            "redis-node" => RedisAdapter::node(&url),
            "redis-node-sharded" => RedisAdapter::node_sharded(&url),
            "redis-streams" => RedisAdapter::node_streams(&url),
            other => HELP.fail(format!("unknown adapter {other}")),
        };
        let mut made = made.unwrap_or_else(|e| HELP.fail(format!("bad --redis: {e}")));
        if let Some(channel) = channel {
            made = made.channel(&channel);
        }
        options.adapter = Some(ClusterAdapter::Redis(made));
    }
    log::init(log_filter, None, &HELP);
    runtimes::block_on(&runtime.clone(), async move {
        options.runtime = socketio::current_runtime();
        match start(&options).await {
            Ok((server, addr)) => {
                #[cfg(feature = "tower")]
                let addr = match mounted {
                    true => mount_in_axum(server.clone(), axum_port)
                        .await
                        .unwrap_or_else(|e| HELP.fail(format!("cannot listen: {e}"))),
                    false => addr,
                };
                let _ = axum_port;
                // A cluster node is ready once its bus subscription is
                // confirmed (at once without a cluster).
                let _ = server.flush_cluster(FLUSH).await;
                println!("listening on {}", addr.port());
                let _ = std::io::stdout().flush();
                std::future::pending::<()>().await;
            }
            Err(e) => {
                eprintln!("cannot listen: {e}");
                std::process::exit(1);
            }
        }
    });
}
