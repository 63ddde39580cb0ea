//! Echo server used by the interoperability tests.
//!
//! ```text
//! cargo run --release --example echo_server -- --port 3000 [--parser json|msgpack]
//!     [--state-recovery SECS] [--runtime tokio|async-std|smol]
//! ```
//!
//! Namespaces `/` and `/custom`. On connect it emits `auth` with the
//! handshake's auth (`{}` when none); auth `{"reject":true}` is refused
//! with `rejected by server` and data `{"code":42}`. `echo(...)` answers
//! `echo-back(...)` and acks with the same arguments; `ask(token)` asks the
//! client `question(token, <09 08 07>)` and acks `ask` with the answer;
//! `shout(...)` sends `shout-back(...)` to every socket of the namespace;
//! `disconnect-me` disconnects the socket. Prints `listening on PORT`.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socketio::{
    AckSender, AnyParser, Args, Binary, Bytes, ConnectRefusal, JsonParser, MsgPackParser, Runtime,
    Server, SocketRef, Value,
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
}

/// Start the echo server; returns it and the bound address.
pub async fn start(options: &ServerOptions) -> Result<(Server, SocketAddr), socketio::Error> {
    let mut builder = Server::builder()
        .parser(options.parser)
        .custom_runtime(options.runtime.clone());
    if let Some(window) = options.state_recovery {
        builder = builder.max_disconnection_duration(window);
    }
    let server = builder.build();
    for nsp in ["/", "/custom"] {
        server.ns(nsp, |ns| {
            ns.on_connect(|socket: SocketRef, auth: Option<Value>| async move {
                let auth = auth.unwrap_or(Value::Object(Vec::new()));
                if auth.get("reject") == Some(&Value::Bool(true)) {
                    return Err(ConnectRefusal::new("rejected by server")
                        .with_data(&serde_json::json!({"code": 42})));
                }
                let _ = socket.emit("auth", &(auth,));
                Ok(())
            });
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
    eprintln!("{problem}\nusage: echo_server --port P [--parser json|msgpack] [--state-recovery SECS] [--runtime tokio|async-std|smol]");
    std::process::exit(2)
}

#[allow(dead_code)]
fn main() {
    let mut runtime = String::from("tokio");
    let mut options = ServerOptions {
        port: 0,
        parser: AnyParser::default(),
        state_recovery: None,
        runtime: Arc::new(socketio_smol::SmolRuntime),
    };
    let mut port = None;
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
            other => usage(&format!("unknown argument {other}")),
        }
    }
    options.port = port.unwrap_or_else(|| usage("--port is required"));
    if std::env::var_os("SOCKETIO_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .try_init();
    }
    block_on(&runtime.clone(), async move {
        options.runtime = socketio::current_runtime();
        match start(&options).await {
            Ok((_server, addr)) => {
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
