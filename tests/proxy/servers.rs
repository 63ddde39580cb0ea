//! What the proxy tests connect to: our own server answering `echo`
//! acknowledgements, and a CA and a certificate for `localhost` for its
//! TLS listener. Included with `#[path]`.

use socketio::{AckSender, Args, RuntimeKind, Server, SocketRef};

/// A server on `kind` whose `echo` event acknowledges with its arguments.
pub fn echo_server(kind: RuntimeKind) -> Server {
    let server = Server::builder().runtime(kind).build();
    server.ns("/", |ns| {
        ns.on(
            "echo",
            |_s: SocketRef, args: Args, ack: Option<AckSender>| async move {
                if let Some(ack) = ack {
                    let _ = ack.send(&args);
                }
            },
        );
    });
    server
}

/// `(CA certificate, server certificate, server key)`, all PEM.
pub fn localhost_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}
