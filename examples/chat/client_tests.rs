//! The terminal client against the chat server, in-process: commands,
//! and what it takes back after the server restarts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use serde_json::json;
use socketio::{JoinHandle, RuntimeKind};

use super::*;
use crate::server;

/// How long a line the test waits for may take.
const WAIT: Duration = Duration::from_secs(15);

#[test]
fn lines_are_commands_or_messages() {
    assert_eq!(parse("/join  rust "), Command::Join("rust"));
    assert_eq!(parse("/join"), Command::Usage("/join ROOM"));
    assert_eq!(parse("/leave"), Command::Leave);
    assert_eq!(parse("/rooms"), Command::Rooms);
    assert_eq!(parse("/nick bob"), Command::Nick("bob"));
    assert_eq!(parse("/nick"), Command::Usage("/nick NAME"));
    assert_eq!(parse("/quit"), Command::Quit);
    assert_eq!(parse("/help"), Command::Help);
    assert_eq!(parse("/foo bar"), Command::Unknown("/foo"));
    assert_eq!(parse(" hello there "), Command::Say("hello there"));
}

/// The client running in the background, typed into and watched.
struct Typist {
    keys: UnboundedSender<String>,
    screen: UnboundedReceiver<String>,
    seen: Vec<String>,
    done: JoinHandle<Result<(), String>>,
}

impl Typist {
    fn start(addr: SocketAddr, nick: &str, room: &str) -> Typist {
        let (screen, lines) = Screen::capture();
        let (keys, typed) = unbounded();
        let done = socketio::spawn(chat(
            format!("http://{addr}"),
            Some(nick.to_owned()),
            room.to_owned(),
            screen,
            typed,
        ));
        Typist {
            keys,
            screen: lines,
            seen: Vec::new(),
            done,
        }
    }

    fn type_line(&self, line: &str) {
        self.keys
            .unbounded_send(line.to_owned())
            .expect("client running");
    }

    /// Wait for the screen to show `expected` (lines before it are kept
    /// for the failure message).
    async fn shows(&mut self, expected: &str) {
        let give_up = Instant::now() + WAIT;
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            let next = self.screen.next();
            let timer = Box::pin(socketio::sleep(left));
            match select(next, timer).await {
                Either::Left((Some(line), _)) if line == expected => return,
                Either::Left((Some(line), _)) => self.seen.push(line),
                Either::Left((None, _)) => panic!("screen closed; saw {:?}", self.seen),
                Either::Right(_) => panic!("no {expected:?} in time; saw {:?}", self.seen),
            }
        }
    }
}

async fn start_server(addr: SocketAddr) -> (socketio::Server, SocketAddr) {
    // A restarted server may wait for its port to be free again.
    let give_up = Instant::now() + Duration::from_secs(5);
    loop {
        match server::start(addr).await {
            Ok(started) => return started,
            Err(e) if Instant::now() > give_up => panic!("cannot listen on {addr}: {e}"),
            Err(_) => socketio::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[test]
fn unknown_commands_are_named_and_quit_is_quiet() {
    RuntimeKind::default().block_on(async {
        let (_server, addr) = start_server("127.0.0.1:0".parse().unwrap()).await;
        let mut alice = Typist::start(addr, "alice", "lobby");
        alice.shows(&format!("* connected as alice ({HELP})")).await;
        alice.shows("* #lobby: alice").await;
        alice.type_line("/foo bar");
        alice
            .shows(&format!("! unknown command /foo ({HELP})"))
            .await;
        alice.type_line("/join");
        alice.shows("! usage: /join ROOM").await;
        alice.type_line("/quit");
        let outcome = alice.done.await.expect("the client task ends");
        assert_eq!(outcome, Ok(()));
        let after: Vec<String> = std::iter::from_fn(|| alice.screen.try_recv().ok()).collect();
        assert!(after.is_empty(), "/quit printed {after:?}");
    });
}

#[test]
fn after_a_server_restart_nick_room_and_typed_lines_come_back() {
    RuntimeKind::default().block_on(async {
        let (server, addr) = start_server("127.0.0.1:0".parse().unwrap()).await;
        let mut alice = Typist::start(addr, "alice", "lobby");
        alice.shows("* #lobby: alice").await;
        alice.type_line("/nick alice2");
        alice.shows("* you are now alice2").await;
        alice.type_line("/join rust");
        alice.shows("* #rust: alice2").await;

        server.shutdown().await;
        drop(server);
        let disconnected = alice
            .screen
            .next()
            .await
            .expect("a line about the disconnection");
        assert!(
            disconnected.starts_with("* disconnected (")
                && disconnected.ends_with("what you type waits)"),
            "{disconnected}"
        );
        // Typed while disconnected: waits, then runs after the restore.
        alice.type_line("/rooms");
        alice.shows("* not connected: sent when reconnected").await;

        let (_server, _) = start_server(addr).await;
        alice.shows("* reconnected as alice2").await;
        alice.shows("* #rust: alice2").await; // the room taken back
        alice.shows("* #rust: alice2").await; // the `/rooms` that waited

        // The server agrees: bob finds alice2 in #rust and hears her.
        let bob = socketio::Client::builder(&format!("http://{addr}"))
            .reconnection(false)
            .auth(&json!({ "nick": "bob" }))
            .connect_simple()
            .await
            .expect("bob connects");
        let _welcome = bob.receive(Some(WAIT)).await.expect("welcome");
        let joined = bob.call("join", &("rust",), WAIT).await.expect("answered");
        assert_eq!(
            joined.get::<Reply<RoomInfo>>(0).expect("a Reply"),
            Reply::Ok(RoomInfo {
                name: "rust".into(),
                users: vec!["alice2".into(), "bob".into()],
            })
        );
        alice.shows("* bob joined #rust").await;
        alice.type_line("hi bob");
        let (event, args) = bob.receive(Some(WAIT)).await.expect("alice's message");
        assert_eq!(event, "message");
        assert_eq!(
            args.get::<ChatMessage>(0).expect("a ChatMessage"),
            ChatMessage {
                room: "rust".into(),
                nick: "alice2".into(),
                text: "hi bob".into(),
            }
        );
        bob.disconnect().await;
        alice.type_line("/quit");
        assert_eq!(alice.done.await, Some(Ok(())));
    });
}
