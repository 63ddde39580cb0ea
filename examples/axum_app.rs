//! An axum application with a JSON route of its own and the Socket.IO
//! server mounted in front of it (python-socketio's
//! `socketio.ASGIApp(sio, other_asgi_app=app, static_files=...)`).
//!
//! ```text
//! cargo run -p socketio --features tower --example axum_app -- [--port 3000] [--static DIR]
//! curl localhost:3000/api/status      # the axum route
//! curl localhost:3000/                # index.html from the static dir, if given
//! ```
//! Socket.IO clients connect to `http://localhost:3000` (both transports).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/log.rs"]
mod log;

use axum::routing::get;
use axum::{Json, Router};
use socketio::{Args, Server, SocketIoLayer, SocketRef, StaticFiles};

/// `axum_app --help`.
static HELP: cli::Help = cli::Help {
    name: "axum_app",
    about: "an axum application with a route of its own and the Socket.IO server mounted in front of it",
    usage: "[--port 3000] [--static DIR]",
    options: &[
        ("--port P", "port to listen on, on 127.0.0.1 (3000; 0 for any free one)"),
        ("--static DIR", "serve the files of DIR at / (index.html for directories)"),
        log::LOG_OPTION,
    ],
    notes: "Logs at info level unless --log or RUST_LOG says otherwise. GET /api/status is the axum route; Socket.IO clients connect to http://127.0.0.1:PORT.",
};

fn main() -> std::io::Result<()> {
    let (mut port, mut static_dir, mut log_filter) = (3000u16, None, None);
    let mut args = HELP.args();
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--port" => port = args.parse(&flag),
            "--static" => static_dir = Some(args.value(&flag)),
            "--log" => log_filter = Some(args.value(&flag)),
            _ => args.unknown(&flag),
        }
    }
    log::init(log_filter, Some("info"), &HELP);

    // hyper and axum run on tokio: so does the server here.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let mut builder = Server::builder().runtime(socketio::RuntimeKind::Tokio);
            if let Some(dir) = &static_dir {
                builder = builder.static_files(StaticFiles::new().dir("/", dir));
            }
            let server = builder.build();
            server.ns("/", |ns| {
                ns.on("echo", |socket: SocketRef, args: Args| async move {
                    socket.emit("echo", &args);
                    args // the answer, when the client asked for one
                });
            });

            let app = Router::new()
                .route(
                    "/api/status",
                    get(|| async { Json(serde_json::json!({ "ok": true })) }),
                )
                .layer(SocketIoLayer::new(server));

            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            println!("listening on http://{}", listener.local_addr()?);
            axum::serve(listener, app).await
        })
}
