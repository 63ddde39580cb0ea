//! The async client through a real HTTP proxy (tinyproxy, installed by
//! `tests/proxy/setup.sh` when missing) to our own server, plain and (with
//! the `tls` feature) TLS: both transports, the environment variables,
//! `no_proxy`, the explicit option over the environment, Basic
//! authentication and its refusal.

#[allow(dead_code)] // each test uses a part
#[path = "../../tests/proxy/servers.rs"]
mod servers;
#[allow(dead_code)] // each test uses a part
#[path = "../../tests/proxy/tinyproxy.rs"]
mod tinyproxy;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use servers::echo_server;
use socketio::driver::proxy::Proxy;
use socketio::{Client, ClientBuilder, ClientTransports, Error, RuntimeKind, Transport};
use tinyproxy::{ProxyEnv, Tinyproxy};

const WAIT: Duration = Duration::from_secs(10);

const TRANSPORTS: [ClientTransports; 3] = [
    ClientTransports::Polling,
    ClientTransports::WebSocket,
    ClientTransports::Upgrade,
];

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn client(kind: RuntimeKind, url: &str, transports: ClientTransports) -> ClientBuilder {
    Client::builder(url)
        .runtime(kind)
        .transports(transports)
        .reconnection(false)
        .wait_timeout(WAIT)
}

/// Connect, echo once with an acknowledgement, disconnect.
async fn echo(builder: ClientBuilder, transports: ClientTransports) -> Result<(), Error> {
    let client = builder.connect().await?;
    let answer = client.call("echo", &("through", 7), WAIT).await?;
    assert_eq!(answer.get::<String>(0).unwrap(), "through");
    assert_eq!(answer.get::<u32>(1).unwrap(), 7);
    if transports == ClientTransports::WebSocket {
        assert_eq!(client.transport(), Some(Transport::WebSocket));
    }
    client.disconnect().await;
    Ok(())
}

fn explicit_proxy_matrix(kind: RuntimeKind) {
    let _env = ProxyEnv::set(&[]);
    let proxy = Tinyproxy::start();
    kind.block_on(async {
        let server = echo_server(kind);
        let addr = server.listen(any_port()).await.unwrap();
        let url = format!("http://127.0.0.1:{}", addr.port());
        for transports in TRANSPORTS {
            let before = proxy.tunnels_to("127.0.0.1", addr.port());
            let builder = client(kind, &url, transports).proxy(Proxy::url(&proxy.url()).unwrap());
            echo(builder, transports)
                .await
                .unwrap_or_else(|e| panic!("{} {transports:?}: {e}", kind.name()));
            assert!(
                proxy.tunnels_to("127.0.0.1", addr.port()) > before,
                "{transports:?} did not go through the proxy: {}",
                proxy.log()
            );
        }
        server.shutdown().await;
    });
}

#[test]
fn explicit_proxy_tokio() {
    explicit_proxy_matrix(RuntimeKind::Tokio);
}

#[cfg(feature = "smol")]
#[test]
fn explicit_proxy_smol() {
    explicit_proxy_matrix(RuntimeKind::Smol);
}

#[cfg(feature = "tls")]
#[test]
fn tls_through_a_proxy() {
    use socketio::{TlsClientConfig, TlsRoots, TlsServerConfig};

    let (ca, cert, key) = servers::localhost_pki();
    let trust = || {
        TlsClientConfig::new()
            .roots(TlsRoots::None)
            .add_root_certificate_pem(ca.as_bytes())
    };

    let proxy = Tinyproxy::start();
    let kind = RuntimeKind::Tokio;
    kind.block_on(async {
        let server = echo_server(kind);
        let config = TlsServerConfig::from_pem(cert, key);
        let addr = server.listen_tls(any_port(), &config).await.unwrap();
        let port = addr.port();
        {
            let _env = ProxyEnv::set(&[]);
            for (scheme, transports) in [
                ("https", ClientTransports::Polling),
                ("wss", ClientTransports::WebSocket),
                ("https", ClientTransports::Upgrade),
            ] {
                let url = format!("{scheme}://localhost:{port}");
                let before = proxy.tunnels_to("localhost", port);
                let builder = client(kind, &url, transports)
                    .tls(trust())
                    .proxy(Proxy::url(&proxy.url()).unwrap());
                echo(builder, transports)
                    .await
                    .unwrap_or_else(|e| panic!("{url} {transports:?}: {e}"));
                assert!(proxy.tunnels_to("localhost", port) > before);
            }
        }
        // https_proxy (upper case here) is the one for TLS servers.
        let url = format!("https://localhost:{port}");
        {
            let _env = ProxyEnv::set(&[("HTTPS_PROXY", &proxy.url())]);
            let before = proxy.tunnels_to("localhost", port);
            let builder = client(kind, &url, ClientTransports::Upgrade).tls(trust());
            echo(builder, ClientTransports::Upgrade).await.unwrap();
            assert!(proxy.tunnels_to("localhost", port) > before);
        }
        {
            let _env = ProxyEnv::set(&[("http_proxy", &proxy.url())]);
            let before = proxy.tunnels_to("localhost", port);
            let builder = client(kind, &url, ClientTransports::Upgrade).tls(trust());
            echo(builder, ClientTransports::Upgrade).await.unwrap();
            assert_eq!(proxy.tunnels_to("localhost", port), before);
        }
        server.shutdown().await;
    });
}

#[test]
fn environment_no_proxy_and_the_explicit_override() {
    let proxy = Tinyproxy::start();
    // A proxy that is not there.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let kind = RuntimeKind::Tokio;
    kind.block_on(async {
        let server = echo_server(kind);
        let addr = server.listen(any_port()).await.unwrap();
        let url = format!("http://127.0.0.1:{}", addr.port());
        let tunnels = || proxy.tunnels_to("127.0.0.1", addr.port());

        for var in ["http_proxy", "HTTP_PROXY"] {
            let _env = ProxyEnv::set(&[(var, &proxy.url())]);
            let before = tunnels();
            echo(
                client(kind, &url, ClientTransports::Upgrade),
                ClientTransports::Upgrade,
            )
            .await
            .unwrap();
            assert!(tunnels() > before, "{var} was not honoured");
        }
        for var in ["no_proxy", "NO_PROXY"] {
            let _env = ProxyEnv::set(&[("http_proxy", &proxy.url()), (var, "127.0.0.1")]);
            let before = tunnels();
            echo(
                client(kind, &url, ClientTransports::Upgrade),
                ClientTransports::Upgrade,
            )
            .await
            .unwrap();
            assert_eq!(tunnels(), before, "{var} was not honoured");
        }

        let _env = ProxyEnv::set(&[("http_proxy", &dead_url)]);
        // The explicit proxy wins over the environment's.
        let before = tunnels();
        let builder = client(kind, &url, ClientTransports::WebSocket)
            .proxy(Proxy::url(&proxy.url()).unwrap());
        echo(builder, ClientTransports::WebSocket).await.unwrap();
        assert!(tunnels() > before);
        // So does "no proxy".
        let builder = client(kind, &url, ClientTransports::Polling).proxy(Proxy::Direct);
        echo(builder, ClientTransports::Polling).await.unwrap();
        // Left to the environment, the dead proxy is used, and named (with
        // reconnection on, the connect timeout reports the last failure).
        let builder = client(kind, &url, ClientTransports::Polling)
            .reconnection(true)
            .wait_timeout(Duration::from_secs(2));
        let err = echo(builder, ClientTransports::Polling).await.unwrap_err();
        assert!(err.to_string().contains(&dead_url), "{err}");
        server.shutdown().await;
    });
}

#[test]
fn basic_authentication() {
    let _env = ProxyEnv::set(&[]);
    let proxy = Tinyproxy::with_basic_auth("alice", "s3cret");
    let kind = RuntimeKind::Tokio;
    kind.block_on(async {
        let server = echo_server(kind);
        let addr = server.listen(any_port()).await.unwrap();
        let url = format!("http://127.0.0.1:{}", addr.port());
        for transports in [ClientTransports::Polling, ClientTransports::WebSocket] {
            let builder = client(kind, &url, transports)
                .proxy(Proxy::url(&proxy.url_with_credentials()).unwrap());
            echo(builder, transports)
                .await
                .unwrap_or_else(|e| panic!("{transports:?}: {e}"));
        }
        // Without credentials: the proxy's 407, naming the proxy.
        let builder = client(kind, &url, ClientTransports::WebSocket)
            .reconnection(true)
            .wait_timeout(Duration::from_secs(2))
            .proxy(Proxy::url(&proxy.url()).unwrap());
        let err = echo(builder, ClientTransports::WebSocket)
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("407"), "{message}");
        assert!(
            message.contains(&format!("127.0.0.1:{}", proxy.port())),
            "{message}"
        );
        server.shutdown().await;
    });
}
