//! A chat with rooms, server and terminal client in one program: the
//! example to run first.
//!
//! ```text
//! # terminal 1: the server (port 3000 by default)
//! cargo run --release --example chat
//! # terminals 2 and 3: two users
//! cargo run --release --example chat -- --connect http://127.0.0.1:3000 --nick alice
//! cargo run --release --example chat -- --connect http://127.0.0.1:3000 --nick bob
//! ```
//!
//! In the client, type a line to say it in your room, or a command:
//! `/join ROOM`, `/leave`, `/rooms`, `/nick NAME`, `/quit`.
//!
//! The server also serves a chat page at `/` (`static/`: plain HTML and
//! JavaScript over the official `socket.io-client` browser bundle, which
//! the server serves too: `bash tests/browser/setup.sh` installs it, or
//! give its path with `--client-js`), so that browser and terminal users
//! chat together. With `--admin USER:PASS` the server is instrumented for
//! the Socket.IO Admin UI, served at `/admin-ui/`.
//!
//! `chat --help` lists every option. `--log debug` (or `RUST_LOG=debug`)
//! shows the protocol's debug logs (see `socketio::logging`).
//!
//! The server is in `server.rs` (also used by `socketio/tests/chat.rs`),
//! the client in `client.rs`. Any Socket.IO client can join in, e.g. from
//! JavaScript: `io("http://127.0.0.1:3000", {auth: {nick: "carol"}})`, then
//! `socket.emitWithAck("join", "lobby")`, `socket.emit("message", "hi")`.

#[path = "../common/cli.rs"]
mod cli;
#[path = "../common/log.rs"]
mod log;

mod admin;
mod client;
mod server;
mod terminal;
mod web;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use socketio::RuntimeKind;

use web::WebOptions;

/// What to run, from the command line.
struct Options {
    host: IpAddr,
    port: u16,
    connect: Option<String>,
    nick: Option<String>,
    room: String,
    runtime: RuntimeKind,
    web: WebOptions,
    log: Option<String>,
}

/// `chat --help`.
static HELP: cli::Help = cli::Help {
    name: "chat",
    about: "a Socket.IO chat with rooms: the server (serving a chat page at /), or with --connect the terminal client",
    usage: "[--port 3000] [--host 127.0.0.1] [server options] | --connect URL [--nick NAME] [--room lobby]",
    options: &[
        ("--port P", "server: port to listen on (3000; 0 for any free one)"),
        ("--host H", "server: address to listen on (127.0.0.1; 0.0.0.0 for every one)"),
        ("--client-js FILE", "server: the socket.io-client browser bundle the page loads (socket.io.min.js; else $SOCKETIO_CLIENT_JS, else the one tests/browser/setup.sh installs)"),
        ("--allow-origin O", "server: let pages of origin O (e.g. http://localhost:8080) connect too; repeatable; `*` for any (default: the server's own origin only)"),
        ("--recover SECONDS", "server: connection state recovery, a client back within SECONDS gets what it missed (off)"),
        ("--admin USER:PASS", "server: instrument for the Socket.IO Admin UI (namespace /admin) and serve the UI at /admin-ui/ behind these credentials; needs `--features admin`"),
        ("--admin-ui DIR", "server: the Admin UI's built files (else $SOCKETIO_ADMIN_UI, else the @socket.io/admin-ui that tests/browser/setup.sh installs)"),
        ("--connect URL", "client: run the terminal client against the server at URL"),
        ("--nick NAME", "client: nickname (else the server gives a guest one)"),
        ("--room ROOM", "client: room to join first (lobby)"),
        ("--runtime R", "tokio, async-std or smol (others than tokio need their feature: --features smol)"),
        log::LOG_OPTION,
    ],
    notes: "The server logs at info level (who connects, joins and leaves), the client not at all, unless --log or RUST_LOG says otherwise.",
};

fn parse_options() -> Options {
    let mut options = Options {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 3000,
        connect: None,
        nick: None,
        room: "lobby".into(),
        runtime: RuntimeKind::default(),
        web: WebOptions::default(),
        log: None,
    };
    let mut args = HELP.args();
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--port" => options.port = args.parse(&flag),
            "--host" => options.host = args.parse(&flag),
            "--connect" => options.connect = Some(args.value(&flag)),
            "--nick" => options.nick = Some(args.value(&flag)),
            "--room" => options.room = args.value(&flag),
            "--client-js" => options.web.client_js = Some(PathBuf::from(args.value(&flag))),
            "--allow-origin" => options.web.allowed_origins.push(args.value(&flag)),
            "--recover" => {
                options.web.recover = Some(Duration::from_secs(args.parse(&flag)));
            }
            "--admin" => {
                let credentials = args.value(&flag);
                let Some((user, password)) = credentials.split_once(':') else {
                    HELP.fail("--admin takes USER:PASS")
                };
                options.web.admin = Some((user.to_owned(), password.to_owned()));
            }
            "--admin-ui" => options.web.admin_ui = Some(PathBuf::from(args.value(&flag))),
            "--runtime" => {
                let name = args.value(&flag);
                options.runtime = RuntimeKind::from_name(&name).unwrap_or_else(|| {
                    HELP.fail(format!(
                        "runtime {name} is not in this build: add `--features {name}`"
                    ))
                });
            }
            "--log" => options.log = Some(args.value(&flag)),
            _ => args.unknown(&flag),
        }
    }
    options
}

fn main() {
    let mut options = parse_options();
    // The server logs who connects, joins and leaves; the client only
    // prints the chat.
    let default = options.connect.is_none().then_some("info");
    log::init(options.log.take(), default, &HELP);
    options.runtime.block_on(async {
        match &options.connect {
            Some(url) => {
                if let Err(why) = client::run(url, options.nick.as_deref(), &options.room).await {
                    eprintln!("{why}");
                    std::process::exit(1);
                }
            }
            None => {
                let addr = SocketAddr::new(options.host, options.port);
                let (_server, addr) = web::start(addr, &options.web).await.unwrap_or_else(|e| {
                    eprintln!("{e}");
                    std::process::exit(1);
                });
                println!(
                    "chat server on {} ({}): open http://{addr}/ in a browser, or in other terminals run:\n  \
                     cargo run --release --example chat -- --connect http://{addr} --nick alice",
                    addr,
                    options.runtime.name()
                );
                if options.web.admin.is_some() {
                    println!("Admin UI: http://{addr}/admin-ui/ (server URL http://{addr}, namespace /admin)");
                }
                std::future::pending::<()>().await
            }
        }
    });
}
