//! The errors a newcomer meets when connecting (tokio, over the wire):
//! nothing listening, a name that does not resolve, a URL without a scheme;
//! `retry` and `wait(false)`.
#![cfg(feature = "tokio")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socketio::{Client, ClientSocket, Error, RuntimeKind};

/// A local port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn nothing_listening_is_a_plain_error_at_the_first_attempt() {
    RuntimeKind::Tokio.block_on(async {
        let url = format!("http://127.0.0.1:{}", closed_port());
        let failures = Arc::new(Mutex::new(Vec::new()));
        let seen = failures.clone();
        // The wait timeout is far longer than the test may take: only an
        // answer at the first failed attempt meets the `matches!` below
        // before it (a timeout is `ConnectFailed`, not `CannotConnect`).
        let result = Client::builder(&url)
            .runtime(RuntimeKind::Tokio)
            .wait_timeout(Duration::from_secs(600))
            .on_connect_error(move |s: ClientSocket, message: String, data| {
                assert!(data.is_none());
                seen.lock().unwrap().push((s.ns().to_owned(), message));
                async {}
            })
            .connect()
            .await;
        let error = result.expect_err("nothing listens there");
        assert!(matches!(error, Error::CannotConnect { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains(&url), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        // The transport failure reaches connect_error too (python's).
        socketio::sleep(Duration::from_millis(100)).await;
        let failures = failures.lock().unwrap();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].0, "/");
        assert!(failures[0].1.contains("connection refused"), "{failures:?}");
    });
}

#[test]
fn a_name_that_does_not_resolve_is_a_lookup_failure() {
    RuntimeKind::Tokio.block_on(async {
        // `.invalid` never resolves (RFC 2606).
        let result = Client::builder("http://no-such-host.invalid:3000")
            .runtime(RuntimeKind::Tokio)
            .wait_timeout(Duration::from_secs(600))
            .connect()
            .await;
        match result {
            Err(Error::Lookup { host, .. }) => assert_eq!(host, "no-such-host.invalid"),
            other => panic!("expected a lookup failure, got {other:?}"),
        }
    });
}

#[test]
fn a_url_without_scheme_gets_a_hint() {
    RuntimeKind::Tokio.block_on(async {
        let error = Client::builder("localhost:3000")
            .runtime(RuntimeKind::Tokio)
            .connect()
            .await
            .unwrap_err();
        assert!(matches!(error, Error::InvalidUrl(_)));
        assert!(
            error.to_string().contains("http://localhost:3000"),
            "{error}"
        );
    });
}

#[test]
fn with_retry_the_first_connection_waits_for_a_server_that_comes_up() {
    RuntimeKind::Tokio.block_on(async {
        let port = closed_port();
        let url = format!("http://127.0.0.1:{port}");
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(0));
        let (seen, failed) = (attempts.clone(), failures.clone());
        let connecting = socketio::spawn(
            Client::builder(&url)
                .runtime(RuntimeKind::Tokio)
                .retry(true)
                .reconnection_delay(Duration::from_millis(50))
                .reconnection_delay_max(Duration::from_millis(100))
                .wait_timeout(Duration::from_secs(20))
                .on_reconnect_attempt(move |attempt, delay| {
                    seen.lock().unwrap().push((attempt, delay));
                    async {}
                })
                .on_connect_error(move |_s, _m, _d| {
                    *failed.lock().unwrap() += 1;
                    async {}
                })
                .connect(),
        );
        // Let a few attempts fail before the server comes up.
        let start = Instant::now();
        while attempts.lock().unwrap().len() < 3 {
            assert!(start.elapsed() < Duration::from_secs(10), "no attempts");
            socketio::sleep(Duration::from_millis(20)).await;
        }
        let server = socketio::Server::builder()
            .runtime(RuntimeKind::Tokio)
            .build();
        server
            .listen(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap();
        let client = connecting
            .await
            .unwrap()
            .expect("connected once it listens");
        assert!(client.connected());
        let attempts = attempts.lock().unwrap().clone();
        for (i, (attempt, delay)) in attempts.iter().enumerate() {
            assert_eq!(*attempt as usize, i + 1, "{attempts:?}");
            assert!(*delay <= Duration::from_millis(150), "{attempts:?}");
        }
        // Every failed attempt was a connect error: the first connection's
        // and each reconnection's but the one that succeeded.
        assert_eq!(*failures.lock().unwrap(), attempts.len(), "{attempts:?}");
        client.disconnect().await;
        server.shutdown().await;
    });
}

#[test]
fn without_wait_connect_returns_at_once() {
    RuntimeKind::Tokio.block_on(async {
        // The server accepts the namespace only when the test says so: a
        // connect that waited could not return before that.
        let (accept, accepted) = async_channel::bounded::<()>(1);
        let server = socketio::Server::builder()
            .runtime(RuntimeKind::Tokio)
            .build();
        server.ns("/", move |ns| {
            let accepted = accepted.clone();
            ns.on_connect(
                move |_s: socketio::SocketRef, _auth: Option<socketio::Value>| {
                    let accepted = accepted.clone();
                    async move {
                        accepted.recv().await.unwrap();
                        Ok(())
                    }
                },
            );
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (tx, rx) = async_channel::bounded(1);
        let client = Client::builder(&format!("http://{addr}"))
            .runtime(RuntimeKind::Tokio)
            .wait(false)
            .on_connect(move |_s| {
                let tx = tx.clone();
                async move { tx.send(()).await.unwrap() }
            })
            .connect()
            .await
            .unwrap();
        assert!(!client.connected());
        accept.send(()).await.unwrap();
        rx.recv().await.unwrap();
        assert!(client.connected());
        client.disconnect().await;
        // Where nothing listens, the failure comes to connect_error.
        let (tx, rx) = async_channel::bounded(1);
        let client = Client::builder(&format!("http://127.0.0.1:{}", closed_port()))
            .runtime(RuntimeKind::Tokio)
            .wait(false)
            .on_connect_error(move |_s, message: String, _d| {
                let tx = tx.clone();
                async move { tx.send(message).await.unwrap() }
            })
            .connect()
            .await
            .unwrap();
        assert!(rx.recv().await.unwrap().contains("connection refused"));
        client.wait().await;
        server.shutdown().await;
    });
}
