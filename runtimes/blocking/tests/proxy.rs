//! The blocking client through a real HTTP proxy (tinyproxy, installed by
//! `tests/proxy/setup.sh` when missing) to our own server, plain and TLS:
//! both transports, the environment variables, `no_proxy`, the explicit
//! option over the environment, Basic authentication; and proxies that
//! misbehave (no answer, an endless response head).

#[path = "../../../tests/proxy/servers.rs"]
mod servers;
#[allow(dead_code)] // each test uses a part
#[path = "../../../tests/proxy/tinyproxy.rs"]
mod tinyproxy;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socketio::RuntimeKind;
use socketio_blocking::{
    Client, ClientOptions, ClientTransports, Error, Proxy, ProxyErrorKind, Transport,
};
use tinyproxy::{ProxyEnv, Tinyproxy};

const WAIT: Duration = Duration::from_secs(10);

/// Our server (the async one, on tokio), on a thread until dropped.
struct EchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    ca: String,
}

impl EchoServer {
    /// `tls`: listen with a certificate for `localhost` from a fresh CA.
    fn start(tls: bool) -> EchoServer {
        let (ca, config) = if tls {
            let (ca, chain, key) = servers::localhost_pki();
            (ca, Some(socketio::TlsServerConfig::from_pem(chain, key)))
        } else {
            (String::new(), None)
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            RuntimeKind::Tokio.block_on(async move {
                let server = servers::echo_server(RuntimeKind::Tokio);
                let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
                let addr = match &config {
                    Some(config) => server.listen_tls(any, config).await,
                    None => server.listen(any).await,
                }
                .expect("listen");
                tx.send(addr).unwrap();
                while !flag.load(Ordering::Relaxed) {
                    socketio::sleep(Duration::from_millis(20)).await;
                }
                server.shutdown().await;
            })
        });
        let addr = rx.recv_timeout(WAIT).expect("server listening");
        EchoServer {
            addr,
            stop,
            thread: Some(thread),
            ca,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn options(transports: ClientTransports) -> ClientOptions {
    ClientOptions::default()
        .transports(transports)
        .reconnection(false)
        .wait_timeout(WAIT)
}

/// Connect, check the transport, echo once with an acknowledgement.
fn echo(url: &str, options: ClientOptions) -> Result<(), Error> {
    let transports = options.transports;
    let client = Client::connect(url, options)?;
    let answer = client.call("echo", &("through", 7), WAIT)?;
    assert_eq!(answer.get::<String>(0).unwrap(), "through");
    assert_eq!(answer.get::<u32>(1).unwrap(), 7);
    if transports == ClientTransports::WebSocket {
        assert_eq!(client.transport(), Some(Transport::WebSocket));
    }
    client.disconnect()?;
    Ok(())
}

const TRANSPORTS: [ClientTransports; 3] = [
    ClientTransports::Polling,
    ClientTransports::WebSocket,
    ClientTransports::Upgrade,
];

#[test]
fn explicit_proxy_to_a_plain_server() {
    let _env = ProxyEnv::set(&[]);
    let proxy = Tinyproxy::start();
    let server = EchoServer::start(false);
    for transports in TRANSPORTS {
        let before = proxy.tunnels_to("127.0.0.1", server.port());
        let options = options(transports).proxy(Proxy::url(&proxy.url()).unwrap());
        echo(&server.url(), options).unwrap_or_else(|e| panic!("{transports:?}: {e}"));
        assert!(
            proxy.tunnels_to("127.0.0.1", server.port()) > before,
            "{transports:?} did not go through the proxy: {}",
            proxy.log()
        );
    }
}

#[cfg(feature = "tls")]
#[test]
fn explicit_proxy_to_a_tls_server() {
    let _env = ProxyEnv::set(&[]);
    let proxy = Tinyproxy::start();
    let server = EchoServer::start(true);
    let trust = || {
        socketio_blocking::TlsClientConfig::new()
            .roots(socketio_blocking::TlsRoots::None)
            .add_root_certificate_pem(server.ca.as_bytes())
    };
    for (scheme, transports) in [
        ("https", ClientTransports::Polling),
        ("wss", ClientTransports::WebSocket),
        ("https", ClientTransports::Upgrade),
    ] {
        let url = format!("{scheme}://localhost:{}", server.port());
        let before = proxy.tunnels_to("localhost", server.port());
        let options = options(transports)
            .proxy(Proxy::url(&proxy.url()).unwrap())
            .tls(trust());
        echo(&url, options).unwrap_or_else(|e| panic!("{url} {transports:?}: {e}"));
        assert!(proxy.tunnels_to("localhost", server.port()) > before);
    }
    // Directly too (TLS without a proxy), with messages larger than what
    // rustls buffers at once, both ways; and a CA we do not trust is a
    // typed TLS error at once.
    let url = format!("https://localhost:{}", server.port());
    echo(&url, options(ClientTransports::Upgrade).tls(trust())).expect("direct TLS");
    let big = "x".repeat(300_000);
    for transports in [ClientTransports::Polling, ClientTransports::WebSocket] {
        let client = Client::connect(&url, options(transports).tls(trust())).unwrap();
        let answer = client.call("echo", &(big.as_str(),), WAIT).unwrap();
        assert_eq!(answer.get::<String>(0).unwrap().len(), big.len());
        client.disconnect().unwrap();
    }
    let started = Instant::now();
    let err = echo(&url, options(ClientTransports::WebSocket)).unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err}");
    assert!(
        started.elapsed() < WAIT,
        "a rejected certificate fails at once"
    );
}

#[test]
fn environment_variables_and_no_proxy() {
    let proxy = Tinyproxy::start();
    let server = EchoServer::start(false);
    let tunnels = || proxy.tunnels_to("127.0.0.1", server.port());

    for var in ["http_proxy", "HTTP_PROXY"] {
        let _env = ProxyEnv::set(&[(var, &proxy.url())]);
        let before = tunnels();
        echo(&server.url(), options(ClientTransports::Upgrade)).unwrap();
        assert!(tunnels() > before, "{var} was not honoured");
    }

    // no_proxy (either case) lists the host: direct.
    for var in ["no_proxy", "NO_PROXY"] {
        let _env = ProxyEnv::set(&[("http_proxy", &proxy.url()), (var, "localhost,127.0.0.0/8")]);
        let before = tunnels();
        echo(&server.url(), options(ClientTransports::Upgrade)).unwrap();
        assert_eq!(tunnels(), before, "{var} was not honoured");
    }

    // https_proxy is for TLS servers only: a plain server is reached
    // directly.
    {
        let _env = ProxyEnv::set(&[("https_proxy", &proxy.url())]);
        let before = tunnels();
        echo(&server.url(), options(ClientTransports::WebSocket)).unwrap();
        assert_eq!(tunnels(), before);
    }
}

#[test]
fn the_explicit_option_overrides_the_environment() {
    let proxy = Tinyproxy::start();
    let server = EchoServer::start(false);
    // The environment names a proxy that is not there.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let _env = ProxyEnv::set(&[("http_proxy", &dead_url)]);

    let before = proxy.tunnels_to("127.0.0.1", server.port());
    let options_via = options(ClientTransports::Upgrade).proxy(Proxy::url(&proxy.url()).unwrap());
    echo(&server.url(), options_via).expect("the explicit proxy");
    assert!(proxy.tunnels_to("127.0.0.1", server.port()) > before);

    // "No proxy", explicitly: direct, although the environment has one.
    echo(
        &server.url(),
        options(ClientTransports::Upgrade).proxy(Proxy::Direct),
    )
    .expect("direct");

    // An explicit proxy with a bypass list.
    let bypassing = Proxy::url(&dead_url).unwrap().bypass("127.0.0.1");
    echo(
        &server.url(),
        options(ClientTransports::Polling).proxy(bypassing),
    )
    .expect("bypassed");

    // Without the override the environment's dead proxy is used: a typed
    // error naming it, at once.
    let started = Instant::now();
    let err = echo(&server.url(), options(ClientTransports::Polling)).unwrap_err();
    let Error::Proxy(e) = &err else {
        panic!("not a proxy error: {err}")
    };
    assert!(matches!(e.kind(), ProxyErrorKind::Unreachable(_)), "{err}");
    assert!(err.to_string().contains(&dead_url), "{err}");
    assert!(started.elapsed() < WAIT);
}

#[test]
fn basic_authentication() {
    let _env = ProxyEnv::set(&[]);
    let proxy = Tinyproxy::with_basic_auth("alice", "s3cret");
    let server = EchoServer::start(false);

    for transports in [ClientTransports::Polling, ClientTransports::WebSocket] {
        let options = options(transports).proxy(Proxy::url(&proxy.url_with_credentials()).unwrap());
        echo(&server.url(), options).unwrap_or_else(|e| panic!("{transports:?}: {e}"));
    }

    // No credentials, or wrong ones: 407, a typed error naming the proxy,
    // at once.
    for url in [
        proxy.url(),
        format!("http://alice:wrong@127.0.0.1:{}", proxy.port()),
    ] {
        let started = Instant::now();
        let options = options(ClientTransports::Polling).proxy(Proxy::url(&url).unwrap());
        let err = echo(&server.url(), options).unwrap_err();
        let Error::Proxy(proxy_error) = &err else {
            panic!("not a proxy error: {err}");
        };
        // tinyproxy answers wrong credentials with 401.
        let expected: &[u16] = if url.contains('@') {
            &[401, 407]
        } else {
            &[407]
        };
        assert!(
            expected.contains(&proxy_error.status().unwrap_or(0)),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("127.0.0.1:{}", proxy.port())),
            "{message}"
        );
        assert!(
            !message.contains("wrong"),
            "the password is not shown: {message}"
        );
        assert!(started.elapsed() < WAIT);
    }
}

/// A hostile proxy on a thread: accepts one connection and runs `serve`.
fn hostile_proxy(
    serve: impl FnOnce(std::net::TcpStream) + Send + 'static,
) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let thread = thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            serve(stream);
        }
    });
    (url, thread)
}

#[test]
fn an_endless_response_head_is_refused() {
    let (url, thread) = hostile_proxy(|mut stream| {
        use std::io::Write;
        let mut request = [0; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
        // Headers, never the blank line; stops when the client hangs up.
        while stream
            .write_all(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaa\r\n")
            .is_ok()
        {}
    });
    let options = options(ClientTransports::Polling).proxy(Proxy::url(&url).unwrap());
    let err = echo("http://example.invalid:80", options).unwrap_err();
    let Error::Proxy(e) = &err else {
        panic!("not a proxy error: {err}")
    };
    assert!(
        matches!(
            e.kind(),
            ProxyErrorKind::Tunnel(socketio_blocking::TunnelError::HeadTooLarge)
        ),
        "{err}"
    );
    thread.join().unwrap();
}

#[test]
fn a_silent_proxy_times_out() {
    let (url, thread) = hostile_proxy(|mut stream| {
        let mut request = [0; 1024];
        let _ = stream.read(&mut request);
        // Never answers; returns once the client hangs up.
        let _ = stream.read(&mut request);
    });
    let mut options = options(ClientTransports::Polling).proxy(Proxy::url(&url).unwrap());
    options.connect_timeout = Duration::from_millis(500);
    let err = echo("http://example.invalid:80", options).unwrap_err();
    let Error::Proxy(e) = &err else {
        panic!("not a proxy error: {err}")
    };
    assert!(matches!(e.kind(), ProxyErrorKind::TimedOut), "{err}");
    thread.join().unwrap();
}
