//! The server the official protocol test suites run against
//! (`docs/engine.io-protocol/v4-test-suite` and
//! `docs/socket.io-protocol/v5-test-suite` in the socket.io repository).
//!
//! ```text
//! cargo run --release --example conformance_server -- --port P [--runtime tokio|async-std|smol]
//! cargo run --release --features tower --example conformance_server -- --port P --mount axum
//! ```
//!
//! One port, two servers, routed by the path of each connection's first
//! request:
//! - `/engine.io/`: raw Engine.IO; every message is sent back as it came
//!   (text or binary);
//! - `/socket.io/`: Socket.IO, namespaces `/` and `/custom`. On connect it
//!   emits `auth` with the handshake's auth (`{}` when none); `message` is
//!   answered with `message-back` and the same arguments;
//!   `message-with-ack` is acknowledged with the same arguments.
//!
//! Ping interval 300 ms, ping timeout 200 ms, max payload 1,000,000 bytes,
//! connect timeout 1 s, any origin. Prints `listening on PORT`.
//!
//! With `--mount axum` (feature `tower`; tokio only) the same servers are
//! mounted in an axum router ([`socketio::SocketIoLayer`]) that also
//! answers `GET /health` with `ok`: the suites then run through hyper.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use socketio::core::engine::{self, CorsOrigins};
use socketio::driver::{os_rng, EngineDriver, Router};
#[path = "common/cli.rs"]
mod cli;
#[path = "common/log.rs"]
mod log;
#[path = "common/runtimes.rs"]
mod runtimes;

use socketio::{Args, Runtime, Server, SocketRef, Value};

/// Ping interval of both servers.
pub const PING_INTERVAL: Duration = Duration::from_millis(300);
/// Ping timeout of both servers.
pub const PING_TIMEOUT: Duration = Duration::from_millis(200);
/// Largest message or polling body, in bytes.
pub const MAX_PAYLOAD: usize = 1_000_000;

fn engine_config(path: &str) -> engine::ServerConfig {
    engine::ServerConfig {
        path: path.into(),
        ping_interval: PING_INTERVAL,
        ping_timeout: PING_TIMEOUT,
        max_payload: MAX_PAYLOAD,
        cors_allowed_origins: CorsOrigins::Any,
        ..engine::ServerConfig::default()
    }
}

/// The running servers.
pub struct Conformance {
    /// The Socket.IO server on `/socket.io/`.
    pub socketio: Server,
    /// The Engine.IO echo on `/engine.io/`.
    pub engineio: EngineDriver,
    /// The bound address.
    pub addr: SocketAddr,
}

/// Start both servers on 127.0.0.1:`port` (0: any) on `runtime`.
pub async fn start(port: u16, runtime: Arc<dyn Runtime>) -> std::io::Result<Conformance> {
    let (socketio, engineio) = servers(runtime.clone());
    let listener = runtime
        .listen(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?;
    let addr = listener.local_addr()?;
    let (to_engine, to_socket) = (engineio.clone(), socketio.clone());
    Router::new(runtime)
        .route("/engine.io/", move |stream, remote| {
            to_engine.handle_stream(stream, remote)
        })
        .route("/socket.io/", move |stream, remote| {
            to_socket.handle_stream(stream, remote)
        })
        .serve(listener);
    Ok(Conformance {
        socketio,
        engineio,
        addr,
    })
}

/// Start both servers mounted in an axum router (with `GET /health`) on
/// 127.0.0.1:`port` (0: any). Call it inside a tokio runtime.
#[cfg(feature = "tower")]
pub async fn start_mounted(port: u16) -> std::io::Result<Conformance> {
    use socketio::SocketIoLayer;

    let runtime: Arc<dyn Runtime> = Arc::new(socketio_tokio::TokioRuntime::current());
    let (socketio, engineio) = servers(runtime);
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .layer(SocketIoLayer::new(socketio.clone()))
        .layer(SocketIoLayer::engine_io(
            engineio.clone(),
            &engine_config("/engine.io/"),
        ));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "axum stopped");
        }
    });
    Ok(Conformance {
        socketio,
        engineio,
        addr,
    })
}

/// The Engine.IO echo and the Socket.IO server, with their handlers.
fn servers(runtime: Arc<dyn Runtime>) -> (Server, EngineDriver) {
    // Engine.IO: echo every message on its session.
    let (engineio, mut events) = EngineDriver::new(
        runtime.clone(),
        engine::Server::new(engine_config("/engine.io/"), os_rng()),
    );
    let echo = engineio.clone();
    runtime.spawn(Box::pin(async move {
        while let Some(event) = events.next().await {
            if let engine::ServerEvent::Message { sid, message } = event {
                // The session may have closed meanwhile: nothing to echo to.
                let _ = echo.with(|server, now| server.send(now, &sid, message));
            }
        }
    }));

    // Socket.IO.
    let socketio = Server::builder()
        .custom_runtime(runtime.clone())
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(MAX_PAYLOAD)
        .connect_timeout(Duration::from_secs(1))
        .cors_allowed_origins(CorsOrigins::Any)
        .build();
    for nsp in ["/", "/custom"] {
        socketio.ns(nsp, |ns| {
            ns.on_connect(|socket: SocketRef, auth: Option<Value>| async move {
                let auth = auth.unwrap_or(Value::Object(Vec::new()));
                socket.emit("auth", &(auth,));
            });
            ns.on("message", |socket: SocketRef, args: Args| async move {
                socket.emit("message-back", &args);
            });
            // The arguments are the answer.
            ns.on("message-with-ack", |args: Args| async move { args });
        });
    }

    (socketio, engineio)
}

/// `conformance_server --help`.
static HELP: cli::Help = cli::Help {
    name: "conformance_server",
    about: "the server the official Engine.IO v4 and Socket.IO v5 test suites run against (/engine.io/ and /socket.io/ on one port)",
    usage: "--port P [--runtime tokio|async-std|smol] [--mount axum]",
    options: &[
        ("--port P", "port to listen on, on 127.0.0.1 (required; 0 for any free one)"),
        ("--runtime tokio|async-std|smol", "async runtime (tokio)"),
        log::LOG_OPTION,
        ("--mount axum", "serve through an axum router that also answers GET /health (tokio, feature tower)"),
    ],
    notes: "Prints `listening on PORT` when ready.",
};

#[allow(dead_code)]
fn main() {
    let mut runtime = String::from("tokio");
    let mut port = None;
    let mut mounted = false;
    let mut log_filter = None;
    let mut args = HELP.args();
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--port" => port = Some(args.parse(&flag)),
            "--runtime" => {
                runtime = args.value(&flag);
                if runtimes::runtime_named(&runtime).is_none() {
                    HELP.fail(format!("unknown runtime {runtime}"));
                }
            }
            "--mount" => match args.value(&flag).as_str() {
                "axum" if cfg!(feature = "tower") => mounted = true,
                "axum" => HELP.fail("--mount axum needs the tower feature"),
                other => HELP.fail(format!("unknown framework {other}")),
            },
            "--log" => log_filter = Some(args.value(&flag)),
            _ => args.unknown(&flag),
        }
    }
    let port: u16 = port.unwrap_or_else(|| HELP.fail("--port is required"));
    if mounted && runtime != "tokio" {
        HELP.fail("--mount axum runs on tokio only");
    }
    log::init(log_filter, None, &HELP);
    runtimes::block_on(&runtime.clone(), async move {
        let started = match mounted {
            #[cfg(feature = "tower")]
            true => start_mounted(port).await,
            _ => start(port, socketio::current_runtime()).await,
        };
        match started {
            Ok(servers) => {
                println!("listening on {}", servers.addr.port());
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
