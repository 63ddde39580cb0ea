//! TLS end to end, on every runtime: our TLS listener and our client over
//! `https://localhost:P`, with a CA and certificates generated here.
#![cfg(feature = "tls")]

use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use socketio::{
    AckSender, Args, Client, ClientTransports, Error, RuntimeKind, Server, SocketRef,
    TlsClientConfig, TlsError, TlsRoots, TlsServerConfig,
};

/// A CA, a server certificate for `localhost` and a client certificate,
/// all in PEM.
struct Pki {
    ca: String,
    server_chain: String,
    server_key: String,
    client_chain: String,
    client_key: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn pki() -> Pki {
    let ca = ca("socketio test CA");
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params.signed_by(&server_key, &ca).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["client.test".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca: ca.pem(),
        server_chain: server.pem(),
        server_key: server_key.serialize_pem(),
        client_chain: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

fn echo_server(kind: RuntimeKind) -> Server {
    let server = Server::builder().runtime(kind).build();
    server.ns("/", |ns| {
        ns.on(
            "echo",
            |_socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
                if let Some(ack) = ack {
                    let _ = ack.send(&args);
                }
            },
        );
    });
    server
}

fn trusting(pki: &Pki) -> TlsClientConfig {
    TlsClientConfig::new()
        .roots(TlsRoots::None)
        .add_root_certificate_pem(pki.ca.as_bytes())
}

/// Connect, echo once with an acknowledgement, disconnect.
async fn echo_once(
    kind: RuntimeKind,
    url: &str,
    transports: ClientTransports,
    tls: TlsClientConfig,
) -> Result<(), Error> {
    let client = Client::builder(url)
        .runtime(kind)
        .transports(transports)
        .reconnection(false)
        .wait_timeout(Duration::from_secs(5))
        .tls(tls)
        .connect()
        .await?;
    let answer = client
        .call("echo", &("over tls", 7), Duration::from_secs(5))
        .await?;
    assert_eq!(answer.get::<String>(0).unwrap(), "over tls");
    assert_eq!(answer.get::<u32>(1).unwrap(), 7);
    client.disconnect().await;
    Ok(())
}

/// Every scenario on one runtime; returns how many passed.
fn tls_matrix(kind: RuntimeKind) -> usize {
    let pki = pki();
    kind.block_on(async move {
        let mut passed = 0;
        let server = echo_server(kind);
        let config = TlsServerConfig::from_pem(pki.server_chain.clone(), pki.server_key.clone());
        let addr = server
            .listen_tls("127.0.0.1:0".parse().unwrap(), &config)
            .await
            .expect("listens");
        let url = format!("https://localhost:{}", addr.port());

        for transports in [
            ClientTransports::Polling,
            ClientTransports::WebSocket,
            ClientTransports::Upgrade,
        ] {
            echo_once(kind, &url, transports, trusting(&pki))
                .await
                .unwrap_or_else(|e| panic!("{} {transports:?}: {e}", kind.name()));
            passed += 1;
        }
        // `wss://` is the same thing.
        let wss = format!("wss://localhost:{}", addr.port());
        echo_once(kind, &wss, ClientTransports::WebSocket, trusting(&pki))
            .await
            .expect("wss");
        passed += 1;

        // Another CA: the certificate is refused, at once and clearly.
        let other = TlsClientConfig::new()
            .roots(TlsRoots::None)
            .add_root_certificate_pem(ca("another CA").pem());
        let started = Instant::now();
        let err = echo_once(kind, &url, ClientTransports::WebSocket, other)
            .await
            .expect_err("unknown CA");
        assert!(
            matches!(
                err,
                Error::Tls(TlsError::Handshake(
                    socketio::rustls::Error::InvalidCertificate(
                        socketio::rustls::CertificateError::UnknownIssuer
                    )
                ))
            ),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        passed += 1;

        // The bundled roots do not know our CA either.
        let err = echo_once(
            kind,
            &url,
            ClientTransports::Polling,
            TlsClientConfig::new(),
        )
        .await
        .expect_err("bundled roots");
        assert!(matches!(err, Error::Tls(TlsError::Handshake(_))), "{err}");
        passed += 1;

        // The host name is checked: the certificate names localhost only.
        let by_ip = format!("https://127.0.0.1:{}", addr.port());
        let err = echo_once(kind, &by_ip, ClientTransports::WebSocket, trusting(&pki))
            .await
            .expect_err("wrong name");
        assert!(
            matches!(
                err,
                Error::Tls(TlsError::Handshake(
                    socketio::rustls::Error::InvalidCertificate(
                        socketio::rustls::CertificateError::NotValidForName
                            | socketio::rustls::CertificateError::NotValidForNameContext { .. }
                    )
                ))
            ),
            "{err}"
        );
        passed += 1;

        // Without verification, anything goes (even the wrong name).
        let blind = TlsClientConfig::new()
            .roots(TlsRoots::None)
            .danger_accept_invalid_certs(true);
        echo_once(kind, &by_ip, ClientTransports::Upgrade, blind)
            .await
            .expect("danger_accept_invalid_certs");
        passed += 1;

        // Plain http:// to a TLS port does not connect.
        let plain = format!("http://localhost:{}", addr.port());
        let client = Client::builder(&plain)
            .runtime(kind)
            .reconnection(false)
            .wait_timeout(Duration::from_millis(500))
            .connect()
            .await;
        assert!(client.is_err());
        passed += 1;

        // A server requiring client certificates.
        let mutual = TlsServerConfig::from_pem(pki.server_chain.clone(), pki.server_key.clone())
            .require_client_certificate_pem(pki.ca.clone());
        let mutual_addr = server
            .listen_tls("127.0.0.1:0".parse().unwrap(), &mutual)
            .await
            .expect("listens");
        let mutual_url = format!("https://localhost:{}", mutual_addr.port());
        let with_cert =
            trusting(&pki).client_certificate_pem(pki.client_chain.clone(), pki.client_key.clone());
        for transports in [ClientTransports::Polling, ClientTransports::WebSocket] {
            echo_once(kind, &mutual_url, transports, with_cert.clone())
                .await
                .unwrap_or_else(|e| panic!("{} client cert {transports:?}: {e}", kind.name()));
            passed += 1;
        }
        let without = Client::builder(&mutual_url)
            .runtime(kind)
            .transports(ClientTransports::WebSocket)
            .reconnection(false)
            .wait_timeout(Duration::from_secs(1))
            .tls(trusting(&pki))
            .connect()
            .await;
        // With TLS 1.3 the refusal arrives after our side of the
        // handshake, as an alert: still reported as a TLS error.
        let err = without.expect_err("connected without a client certificate");
        assert!(
            matches!(
                err,
                Error::Tls(TlsError::Handshake(socketio::rustls::Error::AlertReceived(
                    socketio::rustls::AlertDescription::CertificateRequired
                )))
            ),
            "{err}"
        );
        passed += 1;

        server.shutdown().await;
        passed
    })
}

const SCENARIOS: usize = 12;

#[cfg(feature = "tokio")]
#[test]
fn tls_on_tokio() {
    assert_eq!(tls_matrix(RuntimeKind::Tokio), SCENARIOS);
}

#[cfg(feature = "async-std")]
#[test]
fn tls_on_async_std() {
    assert_eq!(tls_matrix(RuntimeKind::AsyncStd), SCENARIOS);
}

#[cfg(feature = "smol")]
#[test]
fn tls_on_smol() {
    assert_eq!(tls_matrix(RuntimeKind::Smol), SCENARIOS);
}

#[test]
fn bad_server_certificates_are_errors() {
    let pki = pki();
    let kind = RuntimeKind::default();
    kind.block_on(async move {
        let server = Server::builder().runtime(kind).build();
        let addr = "127.0.0.1:0".parse().unwrap();
        // A key that does not parse.
        let config = TlsServerConfig::from_pem(pki.server_chain.clone(), "not a key");
        let err = server.listen_tls(addr, &config).await.unwrap_err();
        assert!(matches!(err, Error::Tls(TlsError::NoPrivateKey)), "{err}");
        // A key that is not the certificate's.
        let config = TlsServerConfig::from_pem(pki.server_chain.clone(), pki.client_key.clone());
        let err = server.listen_tls(addr, &config).await.unwrap_err();
        assert!(matches!(err, Error::Tls(TlsError::Config(_))), "{err}");
        // Missing files.
        let config = TlsServerConfig::from_pem_files("/nonexistent/c.pem", "/nonexistent/k.pem");
        let err = server.listen_tls(addr, &config).await.unwrap_err();
        assert!(
            matches!(err, Error::Tls(TlsError::ReadFile { .. })),
            "{err}"
        );
        // A client certificate without its key.
        let err = Client::builder("https://localhost:1")
            .runtime(kind)
            .tls(TlsClientConfig::new().client_certificate_pem(pki.client_chain.clone(), ""))
            .connect()
            .await
            .expect_err("no key");
        assert!(matches!(err, Error::Tls(TlsError::NoPrivateKey)), "{err}");
    });
}
