//! Reconnection as python-socketio's client documents it, over the wire
//! against our server, which is killed and started again on the same port
//! under a waiting `SimpleClient::receive`: the receive survives, the auth
//! and headers closures are evaluated again, and dropping a client
//! disconnects it cleanly.
#![cfg(feature = "tokio")]
//!
//! The restart under `receive` runs on every runtime enabled (async-std
//! and smol with their features).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socketio::{
    AckSender, Args, Client, DisconnectReason, Error, RuntimeKind, Server, SocketRef, Value,
};

/// A server on `addr` that greets each connection with `welcome` (the auth
/// token and `x-token` header it got) and records disconnection reasons.
async fn server_on(
    runtime: RuntimeKind,
    addr: SocketAddr,
    reasons: Arc<Mutex<Vec<DisconnectReason>>>,
) -> (Server, SocketAddr) {
    let server = Server::builder().runtime(runtime).build();
    server.ns("/", move |ns| {
        ns.on_connect(|socket: SocketRef, auth: Option<Value>| async move {
            let token = auth
                .as_ref()
                .and_then(|a| a.get("token"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let header = socket
                .request()
                .and_then(|r| r.header("x-token").map(str::to_owned))
                .unwrap_or_default();
            socket.try_emit("welcome", &(token, header)).unwrap();
            Ok(())
        });
        ns.on(
            "ping",
            |socket: SocketRef, args: Args, _ack: Option<AckSender>| async move {
                let n: u32 = args.deserialize().unwrap();
                socket.try_emit("pong", &(n,)).unwrap();
            },
        );
        let reasons = reasons.clone();
        ns.on_disconnect(move |_s: SocketRef, reason: DisconnectReason| {
            let reasons = reasons.clone();
            async move { reasons.lock().unwrap().push(reason) }
        });
    });
    let bound = server.listen(addr).await.unwrap();
    (server, bound)
}

/// Start a server again on `addr` (the old one's port may take a moment
/// to be free).
async fn restart_on(
    runtime: RuntimeKind,
    addr: SocketAddr,
    reasons: Arc<Mutex<Vec<DisconnectReason>>>,
) -> Server {
    let start = Instant::now();
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(probe) => {
                drop(probe);
                return server_on(runtime, addr, reasons).await.0;
            }
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                socketio::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("port {addr} still taken: {e}"),
        }
    }
}

fn fast_reconnect(
    runtime: RuntimeKind,
    builder: socketio::ClientBuilder,
) -> socketio::ClientBuilder {
    builder
        .runtime(runtime)
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(100))
}

#[test]
fn simple_client_receive_survives_a_server_restart_on_tokio() {
    receive_survives_a_server_restart(RuntimeKind::Tokio);
}

#[cfg(feature = "async-std")]
#[test]
fn simple_client_receive_survives_a_server_restart_on_async_std() {
    receive_survives_a_server_restart(RuntimeKind::AsyncStd);
}

#[cfg(feature = "smol")]
#[test]
fn simple_client_receive_survives_a_server_restart_on_smol() {
    receive_survives_a_server_restart(RuntimeKind::Smol);
}

fn receive_survives_a_server_restart(runtime: RuntimeKind) {
    runtime.block_on(async move {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let (server, addr) =
            server_on(runtime, "127.0.0.1:0".parse().unwrap(), reasons.clone()).await;
        let tokens = Arc::new(AtomicU32::new(0));
        let next_token = tokens.clone();
        let header_calls = Arc::new(AtomicU32::new(0));
        let header_count = header_calls.clone();
        let client = fast_reconnect(runtime, Client::builder(&format!("http://{addr}")))
            // Token refresh: a new token at every (re)connection.
            .auth_with(move || {
                let n = next_token.fetch_add(1, Ordering::SeqCst) + 1;
                serde_json::json!({ "token": format!("t{n}") })
            })
            .headers_with(move || {
                let n = header_count.fetch_add(1, Ordering::SeqCst) + 1;
                vec![("x-token".to_owned(), format!("h{n}"))]
            })
            .connect_simple()
            .await
            .unwrap();
        let limit = Some(Duration::from_secs(10));
        let (name, args) = client.receive(limit).await.unwrap();
        assert_eq!(name, "welcome");
        let (token, header): (String, String) = args.deserialize().unwrap();
        assert!(
            token.starts_with('t') && header.starts_with('h'),
            "{token} {header}"
        );
        let first_token = token;

        // A receive waits while the server dies and a new one comes up on
        // the same port: it is not ended by the lost connection.
        let waiting = {
            let client = client.clone();
            socketio::spawn(async move { client.receive(limit).await })
        };
        server.shutdown().await;
        drop(server);
        let server = restart_on(runtime, addr, reasons.clone()).await;
        let (name, args) = waiting
            .await
            .unwrap()
            .expect("receive survives the restart");
        assert_eq!(name, "welcome", "the new server's greeting");
        let (token, header): (String, String) = args.deserialize().unwrap();
        assert_ne!(token, first_token, "auth evaluated again at reconnection");
        assert!(header.starts_with('h') && header != "h1", "{header}");
        assert!(client.connected());
        client.emit("ping", &(7,)).unwrap();
        let (name, args) = client.receive(limit).await.unwrap();
        assert_eq!(
            (name.as_str(), args.deserialize::<(u32,)>().unwrap().0),
            ("pong", 7)
        );

        // An explicit disconnect ends receive.
        client.disconnect().await;
        assert!(matches!(
            client.receive(limit).await,
            Err(Error::Disconnected)
        ));
        server.shutdown().await;
    });
}

#[test]
fn simple_client_receive_ends_when_reconnection_gives_up() {
    RuntimeKind::Tokio.block_on(async {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let (server, addr) =
            server_on(RuntimeKind::Tokio, "127.0.0.1:0".parse().unwrap(), reasons).await;
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let seen = attempts.clone();
        let client = fast_reconnect(
            RuntimeKind::Tokio,
            Client::builder(&format!("http://{addr}")),
        )
        .reconnection_attempts(2)
        .on_reconnect_attempt(move |attempt, delay| {
            seen.lock().unwrap().push((attempt, delay));
            async {}
        })
        .connect_simple()
        .await
        .unwrap();
        let limit = Some(Duration::from_secs(10));
        assert_eq!(client.receive(limit).await.unwrap().0, "welcome");
        let waiting = {
            let client = client.clone();
            socketio::spawn(async move { client.receive(limit).await })
        };
        server.shutdown().await;
        drop(server);
        // Nothing comes back: two attempts, then the client gives up and
        // the waiting receive ends.
        let outcome = waiting.await.unwrap();
        assert!(matches!(outcome, Err(Error::Disconnected)), "{outcome:?}");
        let attempts = attempts.lock().unwrap().clone();
        assert_eq!(
            attempts.iter().map(|a| a.0).collect::<Vec<_>>(),
            [1, 2],
            "{attempts:?}"
        );
        assert!(!client.connected());
    });
}

#[test]
fn dropping_a_client_disconnects_it_cleanly() {
    RuntimeKind::Tokio.block_on(async {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let (server, addr) = server_on(
            RuntimeKind::Tokio,
            "127.0.0.1:0".parse().unwrap(),
            reasons.clone(),
        )
        .await;
        let url = format!("http://{addr}");
        let client = Client::builder(&url)
            .runtime(RuntimeKind::Tokio)
            .connect()
            .await
            .unwrap();
        drop(client);
        let simple = Client::builder(&url)
            .runtime(RuntimeKind::Tokio)
            .connect_simple()
            .await
            .unwrap();
        let copy = simple.clone();
        drop(simple);
        assert!(copy.connected(), "a clone keeps it connected");
        drop(copy);
        // The server hears a client-side disconnection for both, not a
        // transport close.
        let start = Instant::now();
        while reasons.lock().unwrap().len() < 2 {
            assert!(start.elapsed() < Duration::from_secs(5), "{reasons:?}");
            socketio::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            *reasons.lock().unwrap(),
            [
                DisconnectReason::ClientNamespaceDisconnect,
                DisconnectReason::ClientNamespaceDisconnect
            ]
        );
        server.shutdown().await;
    });
}

#[test]
fn the_url_closure_is_evaluated_again_at_reconnection() {
    RuntimeKind::Tokio.block_on(async {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let any = "127.0.0.1:0".parse().unwrap();
        let (first, first_addr) = server_on(RuntimeKind::Tokio, any, reasons.clone()).await;
        let (second, second_addr) = server_on(RuntimeKind::Tokio, any, reasons.clone()).await;
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        // The first connection goes to the first server, every later one
        // to the second (a server chosen anew at each attempt).
        let client = fast_reconnect(RuntimeKind::Tokio, Client::builder("http://unused.invalid"))
            .url_with(move || {
                let addr = if counted.load(Ordering::SeqCst) == 0 {
                    first_addr
                } else {
                    second_addr
                };
                format!("http://{addr}")
            })
            .connect_simple()
            .await
            .unwrap();
        let limit = Some(Duration::from_secs(10));
        assert_eq!(client.receive(limit).await.unwrap().0, "welcome");
        calls.store(1, Ordering::SeqCst);
        first.shutdown().await;
        drop(first);
        // Only the second server is left to greet it.
        assert_eq!(client.receive(limit).await.unwrap().0, "welcome");
        assert!(client.connected());
        client.disconnect().await;
        second.shutdown().await;
    });
}
