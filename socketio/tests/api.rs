//! The public API end to end on tokio: rooms, broadcasts with acks, socket
//! data, handler order, server-side calls, request info, shutdown.
#![cfg(feature = "tokio")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketio::{
    AckSender, Args, Client, ClientAck, ClientSocket, ClientTransports, DisconnectReason, Error,
    RuntimeKind, Server, SocketRef, Value,
};

async fn server() -> (Server, String) {
    server_with(false).await
}

async fn server_with(async_handlers: bool) -> (Server, String) {
    let server = Server::builder()
        .runtime(RuntimeKind::Tokio)
        .async_handlers(async_handlers)
        .build();
    server.ns("/", |ns| {
        ns.on_connect(|socket: SocketRef, _auth: Option<Value>| async move {
            let room = socket
                .request()
                .and_then(|r| r.query("room"))
                .unwrap_or_default();
            if !room.is_empty() {
                socket.join(&room).unwrap();
            }
            Ok(())
        });
        ns.on(
            "whoami",
            |socket: SocketRef, _args: Args, ack: Option<AckSender>| async move {
                let request = socket.request().unwrap();
                let info = (
                    socket.id().to_owned(),
                    request.header("x-test").unwrap_or("").to_owned(),
                    request.remote_addr().unwrap().ip().to_string(),
                    socket.rooms().unwrap().len(),
                );
                ack.unwrap().send(&info).unwrap();
            },
        );
        ns.on(
            "count",
            |socket: SocketRef, _args: Args, ack: Option<AckSender>| async move {
                let n = socket.get::<u32>().unwrap_or(0) + 1;
                socket.insert(n).unwrap();
                ack.unwrap().send(&(n,)).unwrap();
            },
        );
        ns.on(
            "slow",
            |_s: SocketRef, args: Args, ack: Option<AckSender>| async move {
                let ms: u64 = args.deserialize().unwrap();
                socketio::sleep(Duration::from_millis(ms)).await;
                ack.unwrap().send(&(ms,)).unwrap();
            },
        );
    });
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (server, format!("http://{addr}"))
}

fn client(url: &str, room: &str) -> socketio::ClientBuilder {
    Client::builder(&format!("{url}/?room={room}"))
        .runtime(RuntimeKind::Tokio)
        .transports(ClientTransports::WebSocket)
        .header("x-test", "yes")
        .on(
            "ping-me",
            |_s: ClientSocket, args: Args, ack: Option<ClientAck>| async move {
                let n: u32 = args.deserialize().unwrap();
                ack.unwrap().send(&(n * 2,)).unwrap();
            },
        )
}

#[test]
fn rooms_broadcast_acks_data_and_request_info() {
    RuntimeKind::Tokio.block_on(async {
        let (server, url) = server().await;
        let a = client(&url, "red").connect().await.unwrap();
        let b = client(&url, "red").connect().await.unwrap();
        let c = client(&url, "blue").connect().await.unwrap();

        let (id, header, ip, rooms): (String, String, String, usize) = a
            .call("whoami", &(), Duration::from_secs(5))
            .await
            .unwrap()
            .deserialize()
            .unwrap();
        assert_eq!(Some(id.clone()), a.sid("/"));
        assert_eq!(
            (header.as_str(), ip.as_str(), rooms),
            ("yes", "127.0.0.1", 2)
        );

        let mut red = server.of("/").to("red").sockets();
        red.sort();
        let mut expected = vec![a.sid("/").unwrap(), b.sid("/").unwrap()];
        expected.sort();
        assert_eq!(red, expected);
        assert_eq!(server.sockets_in("/", "blue"), vec![c.sid("/").unwrap()]);

        let answers = server
            .to("red")
            .emit_with_ack("ping-me", &(21,), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(answers.complete);
        assert_eq!(answers.responses.len(), 2);
        for (_, args) in &answers.responses {
            assert_eq!(args.deserialize::<u32>().unwrap(), 42);
        }

        // Server-side call to one socket.
        let socket = server.socket(&id).unwrap();
        let doubled: u32 = socket
            .call("ping-me", &(5,), Duration::from_secs(5))
            .await
            .unwrap()
            .deserialize()
            .unwrap();
        assert_eq!(doubled, 10);

        // Per-socket data.
        for expected in 1..=3u32 {
            let n: u32 = a
                .call("count", &(), Duration::from_secs(5))
                .await
                .unwrap()
                .deserialize()
                .unwrap();
            assert_eq!(n, expected);
        }

        server.close_room("/", "red");
        assert!(server.of("/").to("red").sockets().is_empty());

        // Disconnect by id ends the client (no reconnection after a
        // server disconnect).
        server.disconnect(&c.sid("/").unwrap()).unwrap();
        c.wait().await;
        assert!(matches!(server.disconnect("nope"), Err(Error::Server(_))));

        a.disconnect().await;
        b.disconnect().await;
        server.shutdown().await;
    });
}

#[test]
fn handlers_of_a_socket_run_in_order_unless_async_handlers() {
    for (async_handlers, expected) in [(false, [300, 10]), (true, [10, 300])] {
        handler_order(async_handlers, expected);
    }
}

fn handler_order(async_handlers: bool, expected: [u64; 2]) {
    RuntimeKind::Tokio.block_on(async move {
        let (_server, url) = server_with(async_handlers).await;
        let a = client(&url, "x").connect().await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut calls = Vec::new();
        for ms in [300u64, 10] {
            let call = a.call("slow", &(ms,), Duration::from_secs(5));
            let order = order.clone();
            calls.push(socketio::spawn(async move {
                call.await.unwrap();
                order.lock().unwrap().push(ms);
            }));
        }
        for call in calls {
            call.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), expected.to_vec());
        a.disconnect().await;
    });
}

#[test]
fn connect_refusal_and_disconnect_reason_reach_the_client() {
    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder().runtime(RuntimeKind::Tokio).build();
        server.ns("*", |ns| {
            ns.on_connect(|_s: SocketRef, auth: Option<Value>| async move {
                match auth.as_ref().and_then(|a| a.get("ok")) {
                    Some(Value::Bool(true)) => Ok(()),
                    _ => Err(socketio::ConnectRefusal::new("nope").with_data(&(1, 2))),
                }
            });
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let url = format!("http://{addr}");
        let refused = Client::builder(&url)
            .namespace_with_auth("/any", &serde_json::json!({"ok": false}))
            .connect()
            .await;
        match refused {
            Err(Error::ConnectRefused { nsp, message, data }) => {
                assert_eq!((nsp.as_str(), message.as_str()), ("/any", "nope"));
                assert_eq!(
                    data,
                    Some(Value::Array(vec![Value::from(1u64), Value::from(2u64)]))
                );
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("connected"),
        }
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let seen = reasons.clone();
        let client = Client::builder(&url)
            .namespace_with_auth("/dyn/1", &serde_json::json!({"ok": true}))
            .on_disconnect(move |s: ClientSocket, reason: DisconnectReason| {
                let seen = seen.clone();
                async move { seen.lock().unwrap().push((s.ns().to_owned(), reason)) }
            })
            .connect()
            .await
            .unwrap();
        assert!(client.sid("/dyn/1").is_some());
        server.shutdown().await;
        // Reconnection is on by default: the client keeps trying; stop it.
        socketio::sleep(Duration::from_millis(100)).await;
        client.disconnect().await;
        let reasons = reasons.lock().unwrap().clone();
        assert_eq!(reasons.first().map(|r| r.0.as_str()), Some("/dyn/1"));
    });
}

#[test]
fn simple_client_receives_events_in_order() {
    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder().runtime(RuntimeKind::Tokio).build();
        server.ns("/custom", |ns| {
            ns.on(
                "hello",
                |s: SocketRef, args: Args, ack: Option<AckSender>| async move {
                    s.try_emit("one", &(1,)).unwrap();
                    s.try_emit("two", &args).unwrap();
                    if let Some(ack) = ack {
                        ack.send(&("ok",)).unwrap();
                    }
                },
            );
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = Client::builder(&format!("http://{addr}/custom"))
            .transports(ClientTransports::Polling)
            .connect_simple()
            .await
            .unwrap();
        assert!(client.sid().is_some());
        let ok: String = client
            .call("hello", &("x",), Duration::from_secs(5))
            .await
            .unwrap()
            .deserialize()
            .unwrap();
        assert_eq!(ok, "ok");
        let (name, args) = client.receive(Some(Duration::from_secs(5))).await.unwrap();
        assert_eq!(
            (name.as_str(), args.deserialize::<u32>().unwrap()),
            ("one", 1)
        );
        let (name, args) = client.receive(Some(Duration::from_secs(5))).await.unwrap();
        assert_eq!(
            (
                name.as_str(),
                args.deserialize::<String>().unwrap().as_str()
            ),
            ("two", "x")
        );
        assert!(matches!(
            client.receive(Some(Duration::from_millis(50))).await,
            Err(Error::Timeout)
        ));
        client.disconnect().await;
        assert!(matches!(
            client.receive(None).await,
            Err(Error::Disconnected)
        ));
    });
}

#[test]
fn client_disconnect_reaches_the_server_before_it_returns() {
    RuntimeKind::Tokio.block_on(async {
        for transports in [
            ClientTransports::Polling,
            ClientTransports::WebSocket,
            ClientTransports::Upgrade,
        ] {
            let server = Server::builder().runtime(RuntimeKind::Tokio).build();
            let reasons = Arc::new(Mutex::new(Vec::new()));
            let seen = reasons.clone();
            server.ns("/", move |ns| {
                let seen = seen.clone();
                ns.on_disconnect(move |_s: SocketRef, reason: DisconnectReason| {
                    let seen = seen.clone();
                    async move { seen.lock().unwrap().push(reason) }
                });
            });
            let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let client = Client::builder(&format!("http://{addr}"))
                .runtime(RuntimeKind::Tokio)
                .transports(transports)
                .connect()
                .await
                .unwrap();
            let started = std::time::Instant::now();
            client.disconnect().await;
            let took = started.elapsed();
            // Give the server's dispatcher a moment to run the handler.
            socketio::sleep(Duration::from_millis(100)).await;
            assert_eq!(
                *reasons.lock().unwrap(),
                [DisconnectReason::ClientNamespaceDisconnect],
                "{transports:?}"
            );
            assert!(
                took < Duration::from_millis(1500),
                "{transports:?}: {took:?}"
            );
            server.shutdown().await;
        }
    });
}

#[test]
fn shutdown_disconnects_sockets_with_server_shutting_down() {
    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder().runtime(RuntimeKind::Tokio).build();
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let seen = reasons.clone();
        server.ns("/", move |ns| {
            let seen = seen.clone();
            ns.on_disconnect(move |_s: SocketRef, reason: DisconnectReason| {
                let seen = seen.clone();
                async move { seen.lock().unwrap().push(reason) }
            });
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut clients = Vec::new();
        for transports in [ClientTransports::Polling, ClientTransports::WebSocket] {
            clients.push(
                Client::builder(&format!("http://{addr}"))
                    .runtime(RuntimeKind::Tokio)
                    .transports(transports)
                    .reconnection(false)
                    .connect()
                    .await
                    .unwrap(),
            );
        }
        server.shutdown().await;
        socketio::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            *reasons.lock().unwrap(),
            [
                DisconnectReason::ServerShuttingDown,
                DisconnectReason::ServerShuttingDown
            ]
        );
    });
}
