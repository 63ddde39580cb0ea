//! Echo server used by the interoperability tests.
//!
//! ```text
//! cargo run --release --example echo_server -- --port 3000 [--parser json|msgpack]
//!     [--state-recovery SECS] [--runtime tokio|async-std|smol]
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

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socketio::{
    AckSender, AmqpAdapter, AnyParser, Args, Binary, Bytes, ConnectRefusal, JsonParser,
    KafkaAdapter, MsgPackParser, RedisAdapter, Runtime, Server, SocketRef, Value, ZmqAdapter,
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
                let _ = socket.emit("auth", &(auth,));
                if clustered {
                    let _ = socket.emit("hello", &(serde_json::json!({"sid": socket.id()}),));
                }
                Ok(())
            });
            if clustered {
                cluster_handlers(ns);
            }
            ns.on(
                "echo",
                |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
                    let _ = socket.emit("echo-back", &args);
                    if let Some(ack) = ack {
                        let _ = ack.send(&args);
                    }
                },
            );
            ns.on(
                "ask",
                |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
                    let token: Value = args.get(0).unwrap_or_default();
                    let question = (token, Binary(Bytes::from_static(&[9, 8, 7])));
                    let answer = socket
                        .call("question", &question, Duration::from_secs(10))
                        .await;
                    match (answer, ack) {
                        (Ok(answer), Some(ack)) => {
                            let _ = ack.send(&answer);
                        }
                        (Err(e), _) => eprintln!("question unanswered: {e}"),
                        _ => {}
                    }
                },
            );
            ns.on(
                "shout",
                |socket: SocketRef, args: Args, _ack: Option<AckSender>| async move {
                    let _ = socket.server().of(socket.ns()).emit("shout-back", &args);
                },
            );
            ns.on(
                "disconnect-me",
                |socket: SocketRef, _args: Args, _ack: Option<AckSender>| async move {
                    let _ = socket.disconnect();
                },
            );
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

/// The cluster contract's events (see the module docs).
fn cluster_handlers(ns: &mut socketio::Namespace) {
    ns.on(
        "join",
        |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
            let room: String = args.get(0).unwrap_or_default();
            let _ = socket.join(&room);
            if let Some(ack) = ack {
                let _ = ack.send(&(true,));
            }
        },
    );
    ns.on(
        "shout-to",
        |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
            let (room, data): (String, Value) = args.deserialize().unwrap_or_default();
            let _ = socket
                .server()
                .of(socket.ns())
                .to(&room)
                .emit("shout-back", &(data,));
            if let Some(ack) = ack {
                let _ = ack.send(&(true,));
            }
        },
    );
    ns.on(
        "shout-except",
        |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
            let (room, data): (String, Value) = args.deserialize().unwrap_or_default();
            let _ = socket
                .server()
                .of(socket.ns())
                .except(&room)
                .emit("shout-back", &(data,));
            if let Some(ack) = ack {
                let _ = ack.send(&(true,));
            }
        },
    );
    for event in ["enter-room", "leave-room", "disconnect-sid"] {
        ns.on(
            event,
            move |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
                let sid: String = args.get(0).unwrap_or_default();
                let room: String = args.get(1).unwrap_or_default();
                let target = socket.server().of(socket.ns()).to(&sid);
                let result = match event {
                    "enter-room" => target.sockets_join(&room),
                    "leave-room" => target.sockets_leave(&room),
                    _ => target.disconnect_sockets(true),
                };
                if let Err(e) = result {
                    eprintln!("{event}: {e}");
                }
                let _ = socket.server().flush_cluster(FLUSH).await;
                if let Some(ack) = ack {
                    let _ = ack.send(&(true,));
                }
            },
        );
    }
    ns.on(
        "call-sid",
        |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
            let (sid, data): (String, Value) = args.deserialize().unwrap_or_default();
            let answer = socket
                .server()
                .of(socket.ns())
                .to(&sid)
                .emit_with_ack("question", &(data,), Duration::from_secs(5))
                .await;
            let reply = match answer {
                Ok(answers) if answers.complete => {
                    Value::Array(first_arguments(&answers.responses))
                }
                Ok(_) => {
                    serde_json::from_value(serde_json::json!({"error": "operation has timed out"}))
                        .unwrap_or_default()
                }
                Err(e) => serde_json::from_value(serde_json::json!({"error": e.to_string()}))
                    .unwrap_or_default(),
            };
            if let Some(ack) = ack {
                let _ = ack.send(&(reply,));
            }
        },
    );
    ns.on(
        "fetch-sockets",
        |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
            let room: String = args.get(0).unwrap_or_default();
            let sockets = socket
                .server()
                .of(socket.ns())
                .to(&room)
                .fetch_sockets()
                .await;
            let reply = match sockets {
                Ok(sockets) => {
                    let mut ids: Vec<String> =
                        sockets.into_iter().map(|s| s.id.to_string()).collect();
                    ids.sort();
                    serde_json::json!(ids)
                }
                Err(e) => serde_json::json!({"error": e.to_string()}),
            };
            if let Some(ack) = ack {
                let _ = ack.send(&(reply,));
            }
        },
    );
    ns.on(
        "server-side-emit",
        |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
            let data: Value = args.get(0).unwrap_or_default();
            let answers = socket
                .server()
                .server_side_call("ping-servers", &(data,))
                .await;
            let reply = match answers {
                Ok(answers) => Value::Array(sorted_by_json(
                    answers
                        .iter()
                        .map(|a| a.get::<Value>(0).unwrap_or_default())
                        .collect(),
                )),
                Err(e) => serde_json::from_value(serde_json::json!({"error": e.to_string()}))
                    .unwrap_or_default(),
            };
            if let Some(ack) = ack {
                let _ = ack.send(&(reply,));
            }
        },
    );
    ns.on(
        "server-count",
        |socket: SocketRef, _args: Args, ack: Option<AckSender>| async move {
            let reply = match socket.server().server_count(socket.ns()).await {
                Ok(count) => serde_json::json!(count),
                Err(e) => serde_json::json!({"error": e.to_string()}),
            };
            if let Some(ack) = ack {
                let _ = ack.send(&(reply,));
            }
        },
    );
    ns.on(
        "broadcast-ack",
        |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
            let (room, data, timeout_ms): (String, Value, u64) =
                args.deserialize().unwrap_or_default();
            let answers = socket
                .server()
                .of(socket.ns())
                .to(&room)
                .emit_with_ack("question", &(data,), Duration::from_millis(timeout_ms))
                .await;
            let reply = match answers {
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
                Err(e) => Value::Object(vec![("error".into(), Value::String(e.to_string()))]),
            };
            if let Some(ack) = ack {
                let _ = ack.send(&(reply,));
            }
        },
    );
}

fn parse_parser(name: &str) -> AnyParser {
    match name {
        "json" => JsonParser.into(),
        "msgpack" => MsgPackParser.into(),
        other => usage(&format!("unknown parser {other}")),
    }
}

/// The runtimes the examples offer, whatever features `socketio` was
/// built with: the adapters are dev-dependencies.
fn runtime_named(name: &str) -> Option<Arc<dyn Runtime>> {
    match name {
        "tokio" => Some(Arc::new(socketio_tokio::TokioRuntime::current_or_global())),
        "async-std" => Some(Arc::new(socketio_async_std::AsyncStdRuntime)),
        "smol" => Some(Arc::new(socketio_smol::SmolRuntime)),
        _ => None,
    }
}

/// Run `main` on the runtime named `name`, with that runtime current.
fn block_on<F: Future>(name: &str, main: F) -> F::Output {
    let main = async {
        let runtime = runtime_named(name).expect("runtime checked");
        socketio::set_current_runtime(runtime);
        main.await
    };
    match name {
        "async-std" => socketio_async_std::AsyncStdRuntime::block_on(main),
        "smol" => socketio_smol::SmolRuntime::block_on(main),
        _ => socketio_tokio::TokioRuntime::block_on(main),
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: echo_server --port P [--parser json|msgpack] [--state-recovery SECS] [--runtime tokio|async-std|smol] [--adapter redis-python|redis-node|redis-node-sharded|redis-streams --redis URL | --adapter amqp --amqp URL | --adapter kafka --kafka URL[,URL...] | --adapter zmq --zmq zmq+tcp://HOST:PORT1+PORT2] [--channel NAME] [--mount axum]");
    std::process::exit(2)
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

#[allow(dead_code)]
fn main() {
    let mut runtime = String::from("tokio");
    let mut options = ServerOptions {
        port: 0,
        parser: AnyParser::default(),
        state_recovery: None,
        runtime: Arc::new(socketio_smol::SmolRuntime),
        adapter: None,
    };
    let mut port = None;
    let mut mounted = false;
    let (mut adapter, mut redis, mut channel) = (None::<String>, None::<String>, None::<String>);
    let (mut amqp, mut kafka, mut zmq) = (None::<String>, None::<String>, None::<String>);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--port" => port = Some(value().parse().unwrap_or_else(|_| usage("bad port"))),
            "--parser" => options.parser = parse_parser(&value()),
            "--state-recovery" => {
                let secs: u64 = value().parse().unwrap_or_else(|_| usage("bad seconds"));
                options.state_recovery = Some(Duration::from_secs(secs));
            }
            "--runtime" => {
                runtime = value();
                if runtime_named(&runtime).is_none() {
                    usage(&format!("unknown runtime {runtime}"));
                }
            }
            "--adapter" => adapter = Some(value()),
            "--redis" => redis = Some(value()),
            "--amqp" => amqp = Some(value()),
            "--kafka" => kafka = Some(value()),
            "--zmq" => zmq = Some(value()),
            "--channel" => channel = Some(value()),
            "--mount" if value() == "axum" => mounted = true,
            "--mount" => usage("--mount takes axum"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    options.port = port.unwrap_or_else(|| usage("--port is required"));
    if mounted && (runtime != "tokio" || !cfg!(feature = "tower")) {
        usage("--mount axum runs on tokio with the tower feature");
    }
    // Mounted: our own listener takes any port, axum the requested one.
    let axum_port = options.port;
    if mounted {
        options.port = 0;
    }
    if adapter.as_deref() == Some("amqp") {
        let url = amqp.unwrap_or_else(|| usage("--adapter amqp needs --amqp URL"));
        let mut made =
            AmqpAdapter::python(&url).unwrap_or_else(|e| usage(&format!("bad --amqp: {e}")));
        if let Some(channel) = channel.take() {
            made = made.channel(&channel);
        }
        options.adapter = Some(ClusterAdapter::Amqp(made));
    } else if adapter.as_deref() == Some("kafka") {
        let urls = kafka.unwrap_or_else(|| usage("--adapter kafka needs --kafka URL"));
        let mut made =
            KafkaAdapter::python(&urls).unwrap_or_else(|e| usage(&format!("bad --kafka: {e}")));
        if let Some(channel) = channel.take() {
            made = made.channel(&channel);
        }
        options.adapter = Some(ClusterAdapter::Kafka(made));
    } else if adapter.as_deref() == Some("zmq") {
        let url = zmq.unwrap_or_else(|| usage("--adapter zmq needs --zmq URL"));
        let mut made =
            ZmqAdapter::python(&url).unwrap_or_else(|e| usage(&format!("bad --zmq: {e}")));
        if let Some(channel) = channel.take() {
            made = made.channel(&channel);
        }
        options.adapter = Some(ClusterAdapter::Zmq(made));
    } else if let Some(kind) = adapter {
        let url = redis.unwrap_or_else(|| usage("--adapter needs --redis URL"));
        let made = match kind.as_str() {
            "redis-python" => RedisAdapter::python(&url),
            "redis-node" => RedisAdapter::node(&url),
            "redis-node-sharded" => RedisAdapter::node_sharded(&url),
            "redis-streams" => RedisAdapter::node_streams(&url),
            other => usage(&format!("unknown adapter {other}")),
        };
        let mut made = made.unwrap_or_else(|e| usage(&format!("bad --redis: {e}")));
        if let Some(channel) = channel {
            made = made.channel(&channel);
        }
        options.adapter = Some(ClusterAdapter::Redis(made));
    }
    if std::env::var_os("SOCKETIO_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .try_init();
    }
    block_on(&runtime.clone(), async move {
        options.runtime = socketio::current_runtime();
        match start(&options).await {
            Ok((server, addr)) => {
                #[cfg(feature = "tower")]
                let addr = match mounted {
                    true => mount_in_axum(server.clone(), axum_port)
                        .await
                        .unwrap_or_else(|e| usage(&format!("cannot listen: {e}"))),
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
