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
//! Options: `--port P` and `--host H` (server; `--host 0.0.0.0` to let
//! other machines in), `--connect URL`, `--nick NAME`, `--room ROOM`
//! (client; the room defaults to `lobby`), `--runtime tokio|async-std|smol`
//! (both; runtimes other than tokio need their feature:
//! `cargo run --release --example chat --features smol -- --runtime smol`).
//! `SOCKETIO_LOG=debug` shows the protocol's debug logs.
//!
//! The server is in `server.rs` (also used by `socketio/tests/chat.rs`),
//! the client in `client.rs`. Any Socket.IO client can join in, e.g. from
//! JavaScript: `io("http://127.0.0.1:3000", {auth: {nick: "carol"}})`, then
//! `socket.emitWithAck("join", "lobby")`, `socket.emit("message", "hi")`.

mod client;
mod server;
mod terminal;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socketio::RuntimeKind;

/// What to run, from the command line.
struct Options {
    host: IpAddr,
    port: u16,
    connect: Option<String>,
    nick: Option<String>,
    room: String,
    runtime: RuntimeKind,
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\n\
         usage: chat [--port 3000] [--host 127.0.0.1] [--runtime tokio|async-std|smol]\n\
         \x20      chat --connect http://127.0.0.1:3000 [--nick NAME] [--room lobby] [--runtime ...]"
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut options = Options {
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 3000,
        connect: None,
        nick: None,
        room: "lobby".into(),
        runtime: RuntimeKind::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--port" => options.port = value().parse().unwrap_or_else(|_| usage("bad port")),
            "--host" => options.host = value().parse().unwrap_or_else(|_| usage("bad host")),
            "--connect" => options.connect = Some(value()),
            "--nick" => options.nick = Some(value()),
            "--room" => options.room = value(),
            "--runtime" => {
                let name = value();
                options.runtime = RuntimeKind::from_name(&name).unwrap_or_else(|| {
                    usage(&format!(
                        "runtime {name} is not in this build: add `--features {name}`"
                    ))
                });
            }
            "--help" | "-h" => usage("a Socket.IO chat"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    options
}

fn main() {
    let options = parse_options();
    let level = match std::env::var("SOCKETIO_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        _ => tracing::Level::INFO,
    };
    // The server logs who connects, joins and leaves; the client only
    // prints the chat.
    if options.connect.is_none() || level == tracing::Level::DEBUG {
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .try_init();
    }
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
                let (_server, addr) = server::start(addr).await.unwrap_or_else(|e| {
                    eprintln!("cannot listen on {addr}: {e}");
                    std::process::exit(1);
                });
                println!(
                    "chat server on {} ({}); in other terminals run:\n  \
                     cargo run --release --example chat -- --connect http://{addr} --nick alice",
                    addr,
                    options.runtime.name()
                );
                std::future::pending::<()>().await
            }
        }
    });
}
