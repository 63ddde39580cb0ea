//! What the bus tests (Redis, AMQP, Kafka, ZeroMQ) share: a bus under test
//! with its command sender and what it reported, waits with deadlines,
//! ports.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{select, Either};
use socketio_core::cluster::{BusCommand, BusInput, ChannelKind};
use socketio_core::Str;
use socketio_driver::Runtime;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fake broker on a free port, on a thread of its own: it counts each
/// connection, reads once, answers `garbage(n)` (`n`: the connection's
/// number from 0) and closes it. Returns the port and the count.
pub fn garbage_broker(
    garbage: impl Fn(usize) -> Vec<u8> + Send + 'static,
) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 256];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(&garbage(i));
        }
    });
    (port, accepted)
}

/// A bus under test: its command sender and what it reported.
pub struct TestBus<B> {
    pub bus: B,
    pub commands: async_channel::Sender<BusCommand>,
    pub inputs: async_channel::Receiver<BusInput>,
    pub runtime: Arc<dyn Runtime>,
    /// How long [`TestBus::next`] waits.
    pub wait: Duration,
}

/// What a bus reports to.
pub type Inputs = Arc<dyn Fn(BusInput) + Send + Sync>;

impl<B> TestBus<B> {
    /// `start` the bus on a command channel, collecting its inputs.
    pub fn start(
        runtime: Arc<dyn Runtime>,
        wait: Duration,
        start: impl FnOnce(async_channel::Receiver<BusCommand>, Inputs) -> B,
    ) -> TestBus<B> {
        let (commands, rx) = async_channel::unbounded();
        let (tx, inputs) = async_channel::unbounded();
        let bus = start(
            rx,
            Arc::new(move |input| {
                let _ = tx.try_send(input);
            }),
        );
        TestBus {
            bus,
            commands,
            inputs,
            runtime,
            wait,
        }
    }

    pub fn send(&self, command: BusCommand) {
        self.commands.try_send(command).unwrap();
    }

    /// The next input, within `wait`.
    pub async fn next(&self) -> BusInput {
        self.next_within(self.wait)
            .await
            .expect("no bus input in time")
    }

    pub async fn next_within(&self, wait: Duration) -> Option<BusInput> {
        let recv = std::pin::pin!(self.inputs.recv());
        match select(recv, self.runtime.sleep_until(Instant::now() + wait)).await {
            Either::Left((input, _)) => Some(input.expect("bus inputs closed")),
            Either::Right(_) => None,
        }
    }

    pub async fn expect(&self, want: BusInput) {
        assert_eq!(self.next().await, want);
    }

    /// A backend that cannot count subscribers answers 0.
    pub async fn counts_zero(&self, channel: &str) {
        let channel = Str::from(channel);
        self.send(BusCommand::CountSubscribers {
            channel: channel.clone(),
            sharded: false,
        });
        self.expect(BusInput::Subscribers { channel, count: 0 })
            .await;
    }
}

/// Run `scenario` on the tokio runtime.
pub fn on_tokio<F: std::future::Future<Output = ()>>(scenario: impl FnOnce(Arc<dyn Runtime>) -> F) {
    socketio_tokio::TokioRuntime::block_on(async {
        let rt: Arc<dyn Runtime> = Arc::new(socketio_tokio::TokioRuntime::current());
        scenario(rt).await
    });
}

/// `tag-PID-N`: a name no other test (nor process) uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kill and reap the child, if any.
pub fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub fn message(channel: &str, payload: &[u8]) -> BusInput {
    BusInput::Message {
        channel: Str::from(channel),
        payload: Bytes::copy_from_slice(payload),
    }
}

/// Commands on plain channels, for the buses that have only those (AMQP,
/// Kafka, ZeroMQ).
pub trait PlainCommands {
    /// Subscribe to `channel`.
    fn subscribe(&self, channel: &str);
    /// Publish `payload` on `channel`.
    fn publish(&self, channel: &str, payload: &[u8]);
}

impl<B> PlainCommands for TestBus<B> {
    fn subscribe(&self, channel: &str) {
        self.send(BusCommand::Subscribe {
            channel: Str::from(channel),
            kind: ChannelKind::Plain,
        });
    }

    fn publish(&self, channel: &str, payload: &[u8]) {
        self.send(BusCommand::Publish {
            channel: Str::from(channel),
            payload: Bytes::copy_from_slice(payload),
            sharded: false,
        });
    }
}

/// On tokio: the bus `start` makes (against a fake broker) reports
/// nothing for 2 s, while the fake counted at least `at_least`
/// connections in `accepted` (the bus kept reconnecting); then `stop`.
pub fn assert_never_up<B>(
    accepted: &AtomicUsize,
    at_least: usize,
    start: impl FnOnce(Arc<dyn Runtime>) -> TestBus<B>,
    stop: impl FnOnce(&B),
) {
    on_tokio(|rt| async move {
        let bus = start(rt);
        assert_eq!(bus.next_within(Duration::from_secs(2)).await, None);
        let connections = accepted.load(Ordering::SeqCst);
        assert!(
            connections >= at_least,
            "the bus should have reconnected several times ({connections} connections)"
        );
        stop(&bus.bus);
    });
}

/// A certificate for `localhost` and the CA that signed it, made here, as
/// PEM files in `dir`; with the client configuration that trusts only that
/// CA.
#[cfg(feature = "tls")]
pub struct LocalhostPki {
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    pub trusting: Arc<rustls::ClientConfig>,
}

#[cfg(feature = "tls")]
impl LocalhostPki {
    pub fn new(dir: &std::path::Path) -> LocalhostPki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        use socketio_driver::tls::{TlsClientConfig, TlsRoots};

        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path.to_string_lossy().into_owned()
        };
        LocalhostPki {
            ca_file: write("ca.pem", ca.pem()),
            cert_file: write("cert.pem", cert.pem()),
            key_file: write("key.pem", key.serialize_pem()),
            trusting: TlsClientConfig::new()
                .roots(TlsRoots::None)
                .add_root_certificate_pem(ca.pem())
                .build()
                .unwrap(),
        }
    }
}
