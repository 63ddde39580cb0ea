//! Invalid arguments close the session (server and client side), and the
//! class-based handlers ([`NamespaceHandler`], [`ClientHandler`]).
#![cfg(feature = "tokio")]

mod raw;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;
use raw::{post, Frame, Ws};
use socketio::{
    AckSender, Args, Client, ClientAck, ClientHandler, ClientSocket, ClientTransports,
    ConnectRefusal, DisconnectReason, Error, NamespaceHandler, RuntimeKind, Server, SocketRef, Str,
    Value,
};

const WAIT: Duration = Duration::from_secs(5);

async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    let timeout = socketio::sleep(WAIT);
    futures_util::pin_mut!(timeout);
    futures_util::pin_mut!(future);
    match futures_util::future::select(future, timeout).await {
        futures_util::future::Either::Left((value, _)) => value,
        futures_util::future::Either::Right(_) => panic!("timed out"),
    }
}

/// A server on `/` whose handlers report what they saw.
async fn reporting_server() -> (
    Server,
    SocketAddr,
    mpsc::UnboundedReceiver<String>,
    mpsc::UnboundedReceiver<(String, DisconnectReason)>,
) {
    let server = Server::builder().runtime(RuntimeKind::Tokio).build();
    let (seen_tx, seen) = mpsc::unbounded();
    let (gone_tx, gone) = mpsc::unbounded();
    server.ns("/", move |ns| {
        let seen_tx = seen_tx.clone();
        ns.on_any(
            move |_s: SocketRef, name: Str, _args: Args, _ack: Option<AckSender>| {
                let _ = seen_tx.unbounded_send(name.to_string());
                async {}
            },
        );
        ns.on_disconnect(move |s: SocketRef, reason: DisconnectReason| {
            let _ = gone_tx.unbounded_send((s.id().to_owned(), reason));
            async {}
        });
    });
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (server, addr, seen, gone)
}

/// Run blocking raw-peer code off the runtime's threads (started at once,
/// not when first polled).
fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl std::future::Future<Output = T> {
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    async move { rx.await.expect("blocking task") }
}

#[test]
fn invalid_event_arguments_close_the_session() {
    RuntimeKind::Tokio.block_on(async {
        let (_server, addr, mut seen, mut gone) = reporting_server().await;
        // Over WebSocket: a valid event first, then one whose arguments
        // only a full check finds invalid.
        let closed = blocking(move || {
            let mut ws = Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket").unwrap();
            assert!(matches!(ws.recv(), Frame::Text(t) if t.starts_with('0')));
            ws.send_text("40");
            assert!(matches!(ws.recv(), Frame::Text(t) if t.starts_with("40{")));
            ws.send_text(r#"42["fine",1]"#);
            ws.send_text(r#"42["ev",{"a":]"#);
            ws.closes_within(WAIT)
        })
        .await;
        assert!(closed);
        assert_eq!(within(seen.next()).await.as_deref(), Some("fine"));
        let (_, reason) = within(gone.next()).await.unwrap();
        assert_eq!(reason, DisconnectReason::ParseError);
        assert_eq!(reason.to_string(), "parse error");
        assert!(seen.try_recv().is_err(), "the invalid event was dispatched");

        // Over polling, with an ack id: same outcome.
        blocking(move || {
            let open = raw::get(addr, "/socket.io/?EIO=4&transport=polling");
            let sid = serde_json::from_str::<serde_json::Value>(&open.text()[1..]).unwrap()["sid"]
                .as_str()
                .unwrap()
                .to_owned();
            let target = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
            assert_eq!(post(addr, &target, b"40").status, 200);
            assert!(raw::get(addr, &target).text().starts_with("40{"));
            post(addr, &target, br#"421["ev",[1,}]"#);
        })
        .await;
        let (_, reason) = within(gone.next()).await.unwrap();
        assert_eq!(reason, DisconnectReason::ParseError);
        assert!(seen.try_recv().is_err(), "the invalid event was dispatched");
    });
}

#[test]
fn invalid_ack_arguments_close_the_session() {
    RuntimeKind::Tokio.block_on(async {
        let (server, addr, _seen, mut gone) = reporting_server().await;
        let peer = blocking(move || {
            let mut ws = Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket").unwrap();
            ws.recv();
            ws.send_text("40");
            let Frame::Text(reply) = ws.recv() else {
                panic!("no CONNECT reply")
            };
            let sid = serde_json::from_str::<serde_json::Value>(&reply[2..]).unwrap()["sid"]
                .as_str()
                .unwrap()
                .to_owned();
            (sid, ws)
        })
        .await;
        let (sid, mut ws) = peer;
        let call = server
            .socket(&sid)
            .unwrap()
            .call("question", &(), Duration::from_secs(5));
        blocking(move || {
            let request = ws.recv_skip_pings();
            assert_eq!(request, Frame::Text(r#"420["question"]"#.into()));
            ws.send_text(r#"430[{"a":]"#);
            assert!(ws.closes_within(WAIT));
        })
        .await;
        assert!(matches!(within(call).await, Err(Error::AckDisconnected)));
        let (_, reason) = within(gone.next()).await.unwrap();
        assert_eq!(reason, DisconnectReason::ParseError);
    });
}

/// A fake Socket.IO server over WebSocket that sends the client an event
/// with invalid arguments; returns whether the client then closed.
fn fake_server(listener: TcpListener) -> bool {
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut key = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("sec-websocket-key") {
                key = value.trim().to_owned();
            }
        }
    }
    let accept = socketio::core::ws::handshake::accept_key(key.as_bytes());
    write!(
        writer,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .unwrap();
    let send = |writer: &mut std::net::TcpStream, text: &str| {
        assert!(text.len() < 126);
        let mut frame = vec![0x81, text.len() as u8];
        frame.extend_from_slice(text.as_bytes());
        writer.write_all(&frame).unwrap();
    };
    // Reads one client frame (masked); `None` at the end of the stream or
    // on a close frame.
    let recv = |reader: &mut BufReader<std::net::TcpStream>| -> Option<String> {
        let mut head = [0u8; 2];
        reader.read_exact(&mut head).ok()?;
        let len = usize::from(head[1] & 0x7f);
        assert!(len < 126);
        let mut mask = [0u8; 4];
        reader.read_exact(&mut mask).ok()?;
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload).ok()?;
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        (head[0] & 0x0f != 8).then(|| String::from_utf8(payload).unwrap())
    };
    send(
        &mut writer,
        r#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
    );
    assert_eq!(recv(&mut reader).as_deref(), Some("40"));
    send(&mut writer, r#"40{"sid":"x"}"#);
    send(&mut writer, r#"42["ev",{"a":]"#);
    // The client closes: its close packet and/or close frame, then EOF.
    loop {
        match recv(&mut reader) {
            Some(t) if t == "1" => continue,
            Some(other) => panic!("unexpected {other}"),
            None => return true,
        }
    }
}

#[test]
fn client_closes_on_invalid_arguments() {
    RuntimeKind::Tokio.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = blocking(move || fake_server(listener));
        let (events_tx, mut events) = mpsc::unbounded();
        let (gone_tx, mut gone) = mpsc::unbounded();
        let _client = Client::builder(&format!("http://{addr}"))
            .runtime(RuntimeKind::Tokio)
            .transports(ClientTransports::WebSocket)
            .reconnection(false)
            .on_any(move |_s: ClientSocket, name: Str, _a: Args, _ack| {
                let _ = events_tx.unbounded_send(name.to_string());
                async {}
            })
            .on_disconnect(move |_s: ClientSocket, reason: DisconnectReason| {
                let _ = gone_tx.unbounded_send(reason);
                async {}
            })
            .connect()
            .await
            .unwrap();
        assert!(within(server).await);
        assert_eq!(
            within(gone.next()).await,
            Some(DisconnectReason::ParseError)
        );
        assert!(
            events.try_recv().is_err(),
            "the invalid event was dispatched"
        );
    });
}

/// python-socketio style: one value, its methods the handlers.
struct Chat {
    log: Mutex<Vec<String>>,
}

impl Chat {
    async fn say(&self, socket: SocketRef, args: Args) {
        let text: String = args.get(0).unwrap_or_default();
        self.log.lock().unwrap().push(format!("say {text}"));
        let _ = socket.emit("said", &(text,));
    }

    async fn add(&self, args: Args, ack: Option<AckSender>) {
        let (a, b): (i64, i64) = args.deserialize().unwrap();
        if let Some(ack) = ack {
            let _ = ack.send(&(a + b,));
        }
    }
}

impl NamespaceHandler for Chat {
    async fn on_connect(
        &self,
        socket: SocketRef,
        auth: Option<Value>,
    ) -> Result<(), ConnectRefusal> {
        if auth.as_ref().and_then(|a| a.get("name")).is_none() {
            return Err(ConnectRefusal::new("name required"));
        }
        self.log.lock().unwrap().push("connect".into());
        let _ = socket.emit("welcome", &());
        Ok(())
    }

    async fn on_event(&self, socket: SocketRef, event: Str, args: Args, ack: Option<AckSender>) {
        match &*event {
            "say" => self.say(socket, args).await,
            "add" => self.add(args, ack).await,
            other => self.log.lock().unwrap().push(format!("unknown {other}")),
        }
    }

    async fn on_disconnect(&self, _socket: SocketRef, reason: DisconnectReason) {
        self.log
            .lock()
            .unwrap()
            .push(format!("disconnect {reason}"));
    }
}

/// The client side: records what it got.
struct Recorder {
    got: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Recorder {
    async fn on_connect(&self, socket: ClientSocket) {
        let _ = self.got.unbounded_send(format!("connect {}", socket.ns()));
    }

    async fn on_connect_error(&self, _socket: ClientSocket, message: String, _data: Option<Value>) {
        let _ = self.got.unbounded_send(format!("refused {message}"));
    }

    async fn on_event(&self, socket: ClientSocket, event: Str, args: Args, ack: Option<ClientAck>) {
        let _ = self
            .got
            .unbounded_send(format!("{} {event} {}", socket.ns(), args.len()));
        if let Some(ack) = ack {
            let _ = ack.send(&("ok",));
        }
    }
}

#[test]
fn class_based_namespaces() {
    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder().runtime(RuntimeKind::Tokio).build();
        let chat = Arc::new(Chat {
            log: Mutex::new(Vec::new()),
        });
        // Registered through an `Arc`, to read its log afterwards.
        server.ns_handler("/chat", chat.clone());
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();

        let (got_tx, mut got) = mpsc::unbounded();
        let refused = Client::builder(&format!("http://{addr}/chat"))
            .runtime(RuntimeKind::Tokio)
            .reconnection(false)
            .handler(Recorder {
                got: got_tx.clone(),
            })
            .connect()
            .await;
        assert!(matches!(refused, Err(Error::ConnectRefused { .. })));
        assert_eq!(
            within(got.next()).await.as_deref(),
            Some("refused name required")
        );

        let client = Client::builder(&format!("http://{addr}/chat"))
            .runtime(RuntimeKind::Tokio)
            .auth(&serde_json::json!({"name": "ann"}))
            .handler(Recorder { got: got_tx })
            .connect()
            .await
            .unwrap();
        assert_eq!(within(got.next()).await.as_deref(), Some("connect /chat"));
        assert_eq!(within(got.next()).await.as_deref(), Some("/chat welcome 0"));
        let chat_socket = client.socket("/chat");
        chat_socket.emit("say", &("hi",)).unwrap();
        assert_eq!(within(got.next()).await.as_deref(), Some("/chat said 1"));
        let sum: i64 = within(chat_socket.call("add", &(2, 3), WAIT))
            .await
            .unwrap()
            .deserialize()
            .unwrap();
        assert_eq!(sum, 5);
        chat_socket.emit("shrug", &()).unwrap();

        // The server asks the client: its handler acknowledges.
        let sid = chat_socket.sid().unwrap();
        let answer: String = within(server.socket(&sid).unwrap().call("q", &(), WAIT))
            .await
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(answer, "ok");
        assert_eq!(within(got.next()).await.as_deref(), Some("/chat q 0"));

        client.disconnect().await;
        within(async {
            while chat.log.lock().unwrap().len() < 4 {
                socketio::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert_eq!(
            *chat.log.lock().unwrap(),
            [
                "connect",
                "say hi",
                "unknown shrug",
                "disconnect client namespace disconnect"
            ]
        );
    });
}

/// In ordered mode a socket's handlers run one after another in arrival
/// order, also when one waits; a handler that panics ends only its own call.
/// A panic with `()` as its type, so that a handler made of it answers
/// nothing (a bare `panic!` would leave its return type to inference).
fn panic_on_purpose(message: &str) {
    panic!("{message}")
}

#[test]
fn ordered_handlers_run_in_order_and_survive_a_panic() {
    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder()
            .runtime(RuntimeKind::Tokio)
            .async_handlers(false)
            .build();
        server.ns("/", |ns| {
            ns.on(
                "slow",
                |s: SocketRef, _args: Args, _ack: Option<AckSender>| async move {
                    socketio::sleep(Duration::from_millis(200)).await;
                    let _ = s.emit("done", &("slow",));
                },
            );
            ns.on(
                "fast",
                |s: SocketRef, _args: Args, _ack: Option<AckSender>| async move {
                    let _ = s.emit("done", &("fast",));
                },
            );
            ns.on(
                "boom",
                |_s: SocketRef, _args: Args, _ack: Option<AckSender>| async move {
                    panic_on_purpose("handler panics on purpose");
                },
            );
            ns.on(
                "boom-later",
                |_s: SocketRef, _args: Args, _ack: Option<AckSender>| async move {
                    socketio::sleep(Duration::from_millis(10)).await;
                    panic_on_purpose("handler panics on purpose after a wait");
                },
            );
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (done_tx, mut done) = mpsc::unbounded::<String>();
        let client = Client::builder(&format!("http://{addr}/"))
            .runtime(RuntimeKind::Tokio)
            .on("done", move |_s: ClientSocket, args: Args, _ack| {
                let _ = done_tx.unbounded_send(args.get::<String>(0).unwrap_or_default());
                async {}
            })
            .connect()
            .await
            .unwrap();
        let socket = client.socket("/");
        socket.emit("slow", &()).unwrap();
        socket.emit("fast", &()).unwrap();
        assert_eq!(within(done.next()).await.as_deref(), Some("slow"));
        assert_eq!(within(done.next()).await.as_deref(), Some("fast"));
        for event in ["boom", "fast", "boom-later", "fast", "slow", "fast"] {
            socket.emit(event, &()).unwrap();
        }
        for expected in ["fast", "fast", "slow", "fast"] {
            assert_eq!(within(done.next()).await.as_deref(), Some(expected));
        }
        client.disconnect().await;
    });
}
