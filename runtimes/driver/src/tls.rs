//! TLS over any [`AsyncStream`](crate::AsyncStream), with rustls (ring provider) through
//! `futures-rustls`: written once, so it works the same on every runtime.
//!
//! Client side: [`TlsClientConfig`] describes the trust (bundled or system
//! roots, extra CA certificates, or no verification at all) and an
//! optional client certificate; [`ClientTls`] is the built configuration
//! plus the server name (SNI and the name the certificate must carry) and
//! wraps a connected stream with [`ClientTls::connect`].
//!
//! Server side: [`TlsServerConfig`] holds the certificate chain and key
//! (and optionally the CA client certificates must chain to);
//! [`TlsListener`] wraps any [`Listener`] so that accepted streams are TLS
//! streams, running handshakes concurrently and with a time limit.
//!
//! Configuration is parsed when built, so the builders stay infallible and
//! every problem (unreadable file, PEM without a certificate, a key rustls
//! refuses, a host that is no valid server name) comes back as a
//! [`TlsError`], never a panic.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::runtime::{BoxFuture, BoxStream, Listener, Runtime};

/// The rustls crate, for callers building their own
/// [`rustls::ClientConfig`] or [`rustls::ServerConfig`].
pub use rustls;

/// Why a TLS configuration could not be built, or a handshake failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: Arc<io::Error>,
    },
    /// PEM input is malformed.
    Pem {
        /// What was being parsed (`CA certificates`, `private key`, ...).
        what: &'static str,
        /// The parser's message.
        message: String,
    },
    /// PEM input holds no certificate where at least one is needed.
    NoCertificate(&'static str),
    /// PEM input holds no private key (PKCS#8, PKCS#1 or SEC1).
    NoPrivateKey,
    /// The system's root certificates could not be loaded.
    NativeRoots(String),
    /// The host of the URL is not a valid TLS server name.
    InvalidServerName(String),
    /// rustls refused the configuration (a key that does not match the
    /// certificate, an unsupported key type, a bad CA certificate, ...).
    Config(rustls::Error),
    /// The handshake failed: the peer's certificate was rejected (unknown
    /// issuer, wrong host name, expired), the peer rejected ours, or the
    /// peer does not speak TLS.
    Handshake(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::ReadFile { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            TlsError::Pem { what, message } => write!(f, "bad PEM ({what}): {message}"),
            TlsError::NoCertificate(what) => write!(f, "no certificate in the PEM for {what}"),
            TlsError::NoPrivateKey => f.write_str("no private key in the PEM"),
            TlsError::NativeRoots(why) => write!(f, "cannot load the system roots: {why}"),
            TlsError::InvalidServerName(host) => write!(f, "invalid TLS server name {host:?}"),
            TlsError::Config(e) => write!(f, "TLS configuration refused: {e}"),
            TlsError::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::ReadFile { error, .. } => Some(&**error),
            TlsError::Config(e) | TlsError::Handshake(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Config(e)
    }
}

impl TlsError {
    /// The TLS error inside an I/O error from a handshake or a TLS stream,
    /// if it is one (rather than the transport failing).
    pub fn from_io(error: &io::Error) -> Option<TlsError> {
        let inner = error.get_ref()?.downcast_ref::<rustls::Error>()?;
        Some(TlsError::Handshake(inner.clone()))
    }
}

/// PEM input: bytes, or a file read when the configuration is built.
#[derive(Clone)]
enum Pem {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Pem {
    fn load(&self) -> Result<std::borrow::Cow<'_, [u8]>, TlsError> {
        match self {
            Pem::Bytes(b) => Ok(b.as_slice().into()),
            Pem::File(path) => {
                std::fs::read(path)
                    .map(Into::into)
                    .map_err(|e| TlsError::ReadFile {
                        path: path.clone(),
                        error: Arc::new(e),
                    })
            }
        }
    }

    fn certificates(&self, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let bytes = self.load()?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem {
                what,
                message: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate(what));
        }
        Ok(certs)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        let bytes = self.load()?;
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey,
            e => TlsError::Pem {
                what: "private key",
                message: e.to_string(),
            },
        })
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        match self {
            Pem::Bytes(b) => write!(f, "Pem({} bytes)", b.len()),
            Pem::File(p) => write!(f, "Pem({})", p.display()),
        }
    }
}

/// The ring provider, explicitly: the process-wide default may be unset
/// or be another provider.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which root certificates a client trusts (besides the ones added with
/// [`TlsClientConfig::add_root_certificate_pem`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsRoots {
    /// Mozilla's roots bundled in the binary (`webpki-roots`): the same on
    /// every machine, even without a system store. The default.
    #[default]
    Bundled,
    /// The operating system's store (`rustls-native-certs`), as loaded
    /// when the configuration is built.
    System,
    /// Only the certificates added explicitly.
    None,
}

/// How a client sets up TLS for `https://` and `wss://` URLs.
#[derive(Debug, Clone, Default)]
pub struct TlsClientConfig {
    roots: TlsRoots,
    extra_roots: Vec<Pem>,
    client_cert: Option<(Pem, Pem)>,
    accept_invalid_certs: bool,
    custom: Option<Arc<rustls::ClientConfig>>,
}

impl TlsClientConfig {
    /// Bundled roots, no client certificate, verification on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Which root store to start from ([`TlsRoots::Bundled`] by default).
    pub fn roots(mut self, roots: TlsRoots) -> Self {
        self.roots = roots;
        self
    }

    /// Also trust the CA certificates in this PEM (one or more
    /// `CERTIFICATE` blocks), for servers with a private CA.
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots.push(Pem::Bytes(pem.into()));
        self
    }

    /// Also trust the CA certificates in this PEM file (read when the
    /// configuration is built).
    pub fn add_root_certificate_pem_file(mut self, path: impl AsRef<Path>) -> Self {
        self.extra_roots.push(Pem::File(path.as_ref().to_owned()));
        self
    }

    /// Present this certificate chain (leaf first) and private key to
    /// servers that ask for a client certificate.
    pub fn client_certificate_pem(
        mut self,
        chain: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_cert = Some((Pem::Bytes(chain.into()), Pem::Bytes(key.into())));
        self
    }

    /// [`TlsClientConfig::client_certificate_pem`] from files.
    pub fn client_certificate_pem_files(
        mut self,
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Self {
        self.client_cert = Some((
            Pem::File(chain.as_ref().to_owned()),
            Pem::File(key.as_ref().to_owned()),
        ));
        self
    }

    /// Skip verifying the server's certificate and host name.
    ///
    /// # Warning
    /// **This makes TLS useless against an active attacker**: anyone on
    /// the path can impersonate the server, read and change everything.
    /// Only for tests and development against self-signed certificates;
    /// prefer [`TlsClientConfig::add_root_certificate_pem`] with the
    /// self-signed certificate, which keeps verification on.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Use this rustls configuration as is (every other option here is
    /// then ignored). Build it with the `ring` provider or another one.
    pub fn rustls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.custom = Some(config);
        self
    }

    /// Whether [`TlsClientConfig::danger_accept_invalid_certs`] is on.
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid_certs && self.custom.is_none()
    }

    /// Load the roots and certificates and build the rustls
    /// configuration.
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        if let Some(config) = &self.custom {
            return Ok(config.clone());
        }
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if self.accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            match self.roots {
                TlsRoots::Bundled => {
                    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                }
                TlsRoots::System => {
                    let loaded = rustls_native_certs::load_native_certs();
                    if loaded.certs.is_empty() {
                        let why = match loaded.errors.first() {
                            Some(e) => e.to_string(),
                            None => "the store is empty".to_owned(),
                        };
                        return Err(TlsError::NativeRoots(why));
                    }
                    // Some stores hold certificates webpki cannot parse;
                    // the others are still usable.
                    let _ = roots.add_parsable_certificates(loaded.certs);
                }
                TlsRoots::None => {}
            }
            for pem in &self.extra_roots {
                for cert in pem.certificates("root certificates")? {
                    roots.add(cert)?;
                }
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match &self.client_cert {
            Some((chain, key)) => builder.with_client_auth_cert(
                chain.certificates("client certificate")?,
                key.private_key()?,
            )?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Accepts any certificate, for
/// [`TlsClientConfig::danger_accept_invalid_certs`]. Handshake signatures
/// are still checked (against the presented certificate), so the
/// connection is at least a proper TLS session.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A built client configuration and the server name to connect to.
#[derive(Clone)]
pub struct ClientTls {
    connector: futures_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// TLS to `host` (a DNS name, sent as SNI and checked against the
    /// certificate, or an IP address, checked against its IP names).
    pub fn new(config: Arc<rustls::ClientConfig>, host: &str) -> Result<Self, TlsError> {
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| TlsError::InvalidServerName(host.to_owned()))?;
        Ok(ClientTls {
            connector: futures_rustls::TlsConnector::from(config),
            server_name,
        })
    }

    /// Run the client handshake over `stream`. A handshake failure is an
    /// I/O error wrapping the rustls error ([`TlsError::from_io`]).
    pub async fn connect(&self, stream: BoxStream) -> io::Result<BoxStream> {
        let tls = self
            .connector
            .connect(self.server_name.clone(), stream)
            .await?;
        Ok(Box::new(tls))
    }
}

/// How a server sets up TLS: its certificate chain and key, and
/// optionally client certificate verification.
#[derive(Debug, Clone)]
pub struct TlsServerConfig {
    chain: Option<Pem>,
    key: Option<Pem>,
    client_ca: Option<(Pem, bool)>,
    custom: Option<Arc<rustls::ServerConfig>>,
}

impl TlsServerConfig {
    /// This certificate chain (PEM, leaf first) and private key (PEM:
    /// PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(chain: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        Self::with(Pem::Bytes(chain.into()), Pem::Bytes(key.into()))
    }

    /// [`TlsServerConfig::from_pem`] from files (read when built).
    pub fn from_pem_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        Self::with(
            Pem::File(chain.as_ref().to_owned()),
            Pem::File(key.as_ref().to_owned()),
        )
    }

    /// This rustls configuration as is (client verification options here
    /// are then ignored).
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        TlsServerConfig {
            chain: None,
            key: None,
            client_ca: None,
            custom: Some(config),
        }
    }

    fn with(chain: Pem, key: Pem) -> Self {
        TlsServerConfig {
            chain: Some(chain),
            key: Some(key),
            client_ca: None,
            custom: None,
        }
    }

    /// Require a client certificate issued by one of the CAs in this PEM;
    /// handshakes without one fail.
    pub fn require_client_certificate_pem(mut self, ca: impl Into<Vec<u8>>) -> Self {
        self.client_ca = Some((Pem::Bytes(ca.into()), true));
        self
    }

    /// Verify a client certificate against the CAs in this PEM when the
    /// client presents one, but accept clients without.
    pub fn optional_client_certificate_pem(mut self, ca: impl Into<Vec<u8>>) -> Self {
        self.client_ca = Some((Pem::Bytes(ca.into()), false));
        self
    }

    /// Load the certificates and key and build the rustls configuration.
    pub fn build(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        if let Some(config) = &self.custom {
            return Ok(config.clone());
        }
        let (Some(chain), Some(key)) = (&self.chain, &self.key) else {
            return Err(TlsError::NoCertificate("server certificate"));
        };
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some((ca, required)) => {
                let mut roots = RootCertStore::empty();
                for cert in ca.certificates("client CA certificates")? {
                    roots.add(cert)?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.into(),
                    provider,
                );
                let verifier = if *required {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(
            chain.certificates("server certificate")?,
            key.private_key()?,
        )?;
        Ok(Arc::new(config))
    }
}

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at most; beyond that the listener stops
/// accepting TCP connections until one finishes.
const MAX_PENDING_HANDSHAKES: usize = 1024;

type Handshake = BoxFuture<'static, Option<(BoxStream, SocketAddr)>>;

/// A [`Listener`] whose streams are TLS server streams over another
/// listener's (TCP) streams.
///
/// Handshakes run concurrently inside [`Listener::accept`] (a slow client
/// does not hold up the others) and are dropped after the handshake
/// timeout; failed handshakes are logged and skipped.
pub struct TlsListener {
    inner: Box<dyn Listener>,
    acceptor: futures_rustls::TlsAcceptor,
    runtime: Arc<dyn Runtime>,
    timeout: Duration,
    pending: FuturesUnordered<Handshake>,
}

impl TlsListener {
    /// Wrap `inner` (build `config` with [`TlsServerConfig::build`]);
    /// `runtime` times the handshakes.
    pub fn new(
        inner: Box<dyn Listener>,
        config: Arc<rustls::ServerConfig>,
        runtime: Arc<dyn Runtime>,
    ) -> Self {
        TlsListener {
            inner,
            acceptor: futures_rustls::TlsAcceptor::from(config),
            runtime,
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            pending: FuturesUnordered::new(),
        }
    }

    /// How long a client may take to complete the handshake (10 s);
    /// slower ones are dropped.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn handshake(&self, stream: BoxStream, remote: SocketAddr) -> Handshake {
        let accepting = self.acceptor.accept(stream);
        let deadline = self.runtime.sleep_until(Instant::now() + self.timeout);
        Box::pin(async move {
            match select(accepting, deadline).await {
                Either::Left((Ok(tls), _)) => Some((Box::new(tls) as BoxStream, remote)),
                Either::Left((Err(e), _)) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    None
                }
                Either::Right(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    None
                }
            }
        })
    }
}

impl Listener for TlsListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, SocketAddr)>> {
        Box::pin(async move {
            loop {
                // Cancel safe: handshakes in progress stay in `pending`.
                let accepted = if self.pending.len() >= MAX_PENDING_HANDSHAKES {
                    Either::Right(self.pending.next().await)
                } else if self.pending.is_empty() {
                    Either::Left(self.inner.accept().await)
                } else {
                    match select(self.inner.accept(), self.pending.next()).await {
                        Either::Left((accepted, _)) => Either::Left(accepted),
                        Either::Right((done, _)) => Either::Right(done),
                    }
                };
                match accepted {
                    Either::Left(Ok((stream, remote))) => {
                        let handshake = self.handshake(stream, remote);
                        self.pending.push(handshake);
                    }
                    Either::Left(Err(e)) => return Err(e),
                    Either::Right(Some(Some(done))) => return Ok(done),
                    Either::Right(_) => {}
                }
            }
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_typed_errors() {
        let err = TlsServerConfig::from_pem("nothing", "nothing")
            .build()
            .unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");
        let err = TlsClientConfig::new()
            .add_root_certificate_pem(
                "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
            )
            .build()
            .unwrap_err();
        assert!(matches!(err, TlsError::Pem { .. }), "{err}");
        let err = TlsClientConfig::new()
            .add_root_certificate_pem_file("/nonexistent/ca.pem")
            .build()
            .unwrap_err();
        assert!(matches!(err, TlsError::ReadFile { .. }), "{err}");
        let config = TlsClientConfig::new().build().unwrap();
        let err = ClientTls::new(config, "bad host!").unwrap_err();
        assert!(matches!(err, TlsError::InvalidServerName(_)), "{err}");
    }

    #[test]
    fn default_and_dangerous_configs_build() {
        assert!(TlsClientConfig::new().build().is_ok());
        assert!(TlsClientConfig::new()
            .roots(TlsRoots::None)
            .danger_accept_invalid_certs(true)
            .build()
            .is_ok());
    }
}
