//! The targets `socketio::logging` documents are where the logs come from:
//! a server and a client talk with every event captured, and each layer's
//! targets (Socket.IO, Engine.IO, driver) must have said something that
//! its filter lets through. The cluster layer needs a broker: the
//! `socketio-driver` bus tests run there.
#![cfg(feature = "logging")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketio::logging::{filter, Layer, Level};
use socketio::{Client, ClientTransports, RuntimeKind, Server};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Every event's target and level.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(String, Level)>>>);

impl<S: Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((metadata.target().to_owned(), *metadata.level()));
    }
}

#[test]
fn each_layer_logs_under_its_documented_targets() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(capture.clone())
        .with(filter("trace").expect("a level parses"));
    // Global: the server's tasks run on the runtime's threads.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder().build();
        server.ns("/", |ns| {
            ns.on("ping", || async { "pong" });
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = Client::builder(&format!("http://{addr}"))
            .transports(ClientTransports::Upgrade)
            .reconnection(false)
            .connect()
            .await
            .expect("connects");
        client
            .call("ping", &("hi",), Duration::from_secs(10))
            .await
            .expect("answered");
        // No handler for it: the Socket.IO layer says so.
        client.emit("nobody-listens", &(1,)).expect("sent");
        client.disconnect().await;
        server.shutdown().await;
    });

    let seen = capture.0.lock().unwrap().clone();
    for layer in [Layer::SocketIo, Layer::EngineIo, Layer::Driver] {
        let layer_filter = filter(&layer.at(Level::TRACE)).unwrap();
        let said = seen.iter().find(|(target, level)| {
            layer
                .targets()
                .iter()
                .any(|prefix| target.starts_with(prefix))
                && layer_filter.would_enable(target, level)
        });
        assert!(
            said.is_some(),
            "{layer:?} ({:?}) said nothing; targets seen: {:?}",
            layer.targets(),
            seen.iter()
                .map(|(target, _)| target)
                .collect::<std::collections::BTreeSet<_>>()
        );
    }
    // The Engine.IO layer is not the Socket.IO one: a filter for one lets
    // none of the other's events through.
    let socketio_only = filter(&Layer::SocketIo.at(Level::TRACE)).unwrap();
    assert!(seen
        .iter()
        .filter(|(target, _)| target.starts_with("socketio_core::engine"))
        .all(|(target, level)| !socketio_only.would_enable(target, level)));
}
