//! The driver's proxy tunnels on tokio: a proxy's refusal reaches
//! [`ClientDriver::last_connect_error`] as a typed [`ProxyError`] naming
//! the proxy (real tinyproxy, with Basic authentication), bytes flow
//! through an open tunnel, and a silent proxy meets the deadline.

#[allow(dead_code)] // each test uses a part
#[path = "../../../tests/proxy/tinyproxy.rs"]
mod tinyproxy;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{AsyncReadExt, AsyncWriteExt};
use socketio_core::endpoint::ClientEndpoint;
use socketio_core::engine;
use socketio_core::parser::JsonParser;
use socketio_core::socket;
use socketio_driver::proxy::{Proxy, ProxyError, ProxyErrorKind, TunnelRuntime};
use socketio_driver::{
    os_rng_factory, ClientDriver, ClientTarget, ConnectError, Runtime, DEFAULT_MAX_QUEUED_EVENTS,
};
use socketio_tokio::TokioRuntime;
use tinyproxy::Tinyproxy;

const TIMEOUT: Duration = Duration::from_secs(10);

fn proxy_addr(proxy: &Tinyproxy) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], proxy.port()))
}

#[test]
fn a_refusal_is_a_typed_error_naming_the_proxy() {
    let proxy = Tinyproxy::with_basic_auth("alice", "s3cret");
    TokioRuntime::block_on(async {
        let runtime: Arc<dyn Runtime> = Arc::new(TokioRuntime::current());
        let tunnel = Proxy::url(&proxy.url())
            .unwrap()
            .route(false, "127.0.0.1", 9, TIMEOUT)
            .unwrap()
            .expect("an explicit proxy is always used");
        let dialer = Arc::new(TunnelRuntime::new(runtime, tunnel));
        let endpoint = ClientEndpoint::new(
            engine::ClientConfig {
                host: "127.0.0.1:9".into(),
                ..Default::default()
            },
            socket::ClientConfig {
                reconnection: false,
                ..Default::default()
            },
            JsonParser,
            os_rng_factory(),
        );
        let target = ClientTarget {
            host: proxy_addr(&proxy).ip().to_string(),
            port: proxy_addr(&proxy).port(),
            #[cfg(feature = "tls")]
            tls: None,
        };
        let (driver, _events) =
            ClientDriver::new(dialer, target, endpoint, DEFAULT_MAX_QUEUED_EVENTS);
        driver
            .with(|ep, now| ep.socket().connect(now, "/", None))
            .unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let error = loop {
            if let Some(error) = driver.last_connect_error() {
                break error;
            }
            assert!(Instant::now() < deadline, "no connection error");
            socketio_driver::Runtime::sleep_until(
                &TokioRuntime::current(),
                Instant::now() + Duration::from_millis(20),
            )
            .await;
        };
        let ConnectError::Tcp(io) = &error else {
            panic!("{error}");
        };
        let refusal = ProxyError::from_io(io).unwrap_or_else(|| panic!("{error}"));
        assert_eq!(refusal.status(), Some(407), "{refusal}");
        assert_eq!(refusal.target(), "127.0.0.1:9");
        assert_eq!(refusal.proxy().port(), proxy.port());
        let message = error.to_string();
        assert!(message.contains(&proxy.url()), "{message}");
        assert!(message.contains("no credentials"), "{message}");
    });
}

#[test]
fn bytes_flow_through_an_open_tunnel() {
    let proxy = Tinyproxy::start();
    // A TCP echo server, one connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let echo = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0; 5];
        stream.read_exact(&mut buf).unwrap();
        stream.write_all(&buf).unwrap();
    });
    TokioRuntime::block_on(async {
        let runtime = TokioRuntime::current();
        let tunnel = Proxy::url(&proxy.url())
            .unwrap()
            .route(false, "127.0.0.1", port, TIMEOUT)
            .unwrap()
            .unwrap();
        let mut stream = runtime.connect(proxy_addr(&proxy)).await.unwrap();
        tunnel.open(&mut stream, &runtime).await.unwrap();
        stream.write_all(b"hello").await.unwrap();
        let mut buf = [0; 5];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
    });
    echo.join().unwrap();
    assert_eq!(proxy.tunnels_to("127.0.0.1", port), 1, "{}", proxy.log());
}

#[test]
fn a_silent_proxy_meets_the_deadline() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    TokioRuntime::block_on(async {
        let runtime = TokioRuntime::current();
        let tunnel = Proxy::url(&format!("http://{addr}"))
            .unwrap()
            .route(false, "example.invalid", 80, Duration::from_millis(400))
            .unwrap()
            .unwrap();
        let mut stream = runtime.connect(addr).await.unwrap();
        let started = Instant::now();
        let err = tunnel.open(&mut stream, &runtime).await.unwrap_err();
        assert!(matches!(err.kind(), ProxyErrorKind::TimedOut), "{err}");
        assert!(started.elapsed() < TIMEOUT);
    });
    drop(silent);
}
