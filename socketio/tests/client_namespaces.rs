//! The client's namespaces over the wire (tokio, our server): handlers of
//! a namespace's own, the namespaces connected without being named,
//! `connected()` / `namespaces()`, and `send`.
#![cfg(feature = "tokio")]

use std::time::Duration;

use socketio::{
    AckSender, Args, Client, ClientAck, ClientSocket, RuntimeKind, Server, SocketRef, Value,
};

/// A server whose `/`, `/chat` and `/news` answer `hello` with an event
/// naming the namespace, and echo `message` events back as `echo`.
async fn server() -> (Server, String) {
    let server = Server::builder().runtime(RuntimeKind::Tokio).build();
    for nsp in ["/", "/chat", "/news"] {
        server.ns(nsp, |ns| {
            ns.on(
                "hello",
                move |socket: SocketRef, _a: Args, _ack: Option<AckSender>| async move {
                    socket.try_emit("from", &(socket.ns(),)).unwrap();
                },
            );
            ns.on(
                "message",
                |socket: SocketRef, args: Args, _ack: Option<AckSender>| async move {
                    let text: String = args.deserialize().unwrap();
                    socket.try_emit("echo", &(text,)).unwrap();
                },
            );
        });
    }
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (server, format!("http://{addr}"))
}

type Seen = async_channel::Sender<(String, String)>;

/// A handler that reports `(label, first argument)`.
fn report(
    tx: &Seen,
    label: &'static str,
) -> impl Fn(ClientSocket, Args, Option<ClientAck>) -> std::future::Ready<()> + Send + Sync + 'static
{
    let tx = tx.clone();
    move |_s, args, _ack| {
        let first: (String,) = args.deserialize().unwrap();
        tx.try_send((label.to_owned(), first.0)).unwrap();
        std::future::ready(())
    }
}

async fn next(rx: &async_channel::Receiver<(String, String)>) -> (String, String) {
    let timeout = socketio::sleep(Duration::from_secs(5));
    match futures_util::future::select(Box::pin(rx.recv()), Box::pin(timeout)).await {
        futures_util::future::Either::Left((got, _)) => got.unwrap(),
        futures_util::future::Either::Right(_) => panic!("nothing arrived within 5 s"),
    }
}

#[test]
fn namespaces_with_handlers_of_their_own_are_connected_and_dispatched_apart() {
    RuntimeKind::Tokio.block_on(async {
        let (_server, url) = server().await;
        let (tx, rx) = async_channel::unbounded();
        let client = Client::builder(&url)
            .runtime(RuntimeKind::Tokio)
            .on_ns("/chat", "from", report(&tx, "chat handler"))
            .on_namespace("/news", |h| h.on("from", report(&tx, "news handler")))
            .on("from", report(&tx, "every namespace's handler"))
            .connect()
            .await
            .unwrap();
        // Without `namespace(..)`, python's rule: those with handlers of
        // their own, and not `/`.
        let mut namespaces = client.namespaces();
        namespaces.sort();
        assert_eq!(namespaces, ["/chat", "/news"]);
        assert!(client.connected());
        client.socket("/chat").emit("hello", &()).unwrap();
        assert_eq!(next(&rx).await, ("chat handler".into(), "/chat".into()));
        client.socket("/news").emit("hello", &()).unwrap();
        assert_eq!(next(&rx).await, ("news handler".into(), "/news".into()));
        client.disconnect().await;
        assert!(!client.connected());
        assert!(client.namespaces().is_empty());
    });
}

#[test]
fn handlers_for_every_namespace_serve_those_without_their_own() {
    RuntimeKind::Tokio.block_on(async {
        let (_server, url) = server().await;
        let (tx, rx) = async_channel::unbounded();
        let client = Client::builder(&url)
            .runtime(RuntimeKind::Tokio)
            .namespace("/")
            .namespace("/news")
            .on_ns("/chat", "from", report(&tx, "chat handler"))
            .on("from", report(&tx, "every namespace's handler"))
            .connect()
            .await
            .unwrap();
        // Named namespaces win over the handlers' rule.
        assert_eq!(client.namespaces(), ["/", "/news"]);
        client.socket("/news").emit("hello", &()).unwrap();
        assert_eq!(
            next(&rx).await,
            ("every namespace's handler".into(), "/news".into())
        );
        client.disconnect().await;
    });
}

#[test]
fn without_handlers_of_a_namespace_the_url_namespace_is_connected() {
    RuntimeKind::Tokio.block_on(async {
        let (_server, url) = server().await;
        let root = Client::builder(&url)
            .runtime(RuntimeKind::Tokio)
            .connect()
            .await
            .unwrap();
        assert_eq!(root.namespaces(), ["/"]);
        let news = Client::builder(&format!("{url}/news"))
            .runtime(RuntimeKind::Tokio)
            .on_ns("/chat", "from", |_s: ClientSocket, _a: Args, _k| async {})
            .connect()
            .await
            .unwrap();
        let mut namespaces = news.namespaces();
        namespaces.sort();
        assert_eq!(
            namespaces,
            ["/chat", "/news"],
            "the URL's and the handlers'"
        );
        root.disconnect().await;
        news.disconnect().await;
    });
}

#[test]
fn send_emits_the_message_event() {
    RuntimeKind::Tokio.block_on(async {
        let (_server, url) = server().await;
        let (tx, rx) = async_channel::unbounded();
        let client = Client::builder(&url)
            .runtime(RuntimeKind::Tokio)
            .namespace("/")
            .namespace("/chat")
            .on("echo", report(&tx, "echo"))
            .connect()
            .await
            .unwrap();
        client.send(&"to root").unwrap();
        assert_eq!(next(&rx).await, ("echo".into(), "to root".into()));
        client.socket("/chat").send(&"to chat").unwrap();
        assert_eq!(next(&rx).await, ("echo".into(), "to chat".into()));
        client.disconnect().await;
    });
}

#[test]
fn a_refused_namespace_reaches_its_own_connect_error_handler() {
    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder().runtime(RuntimeKind::Tokio).build();
        server.ns("/private", |ns| {
            ns.on_connect(|_s: SocketRef, _auth: Option<Value>| async move {
                Err(socketio::ConnectRefusal::new("not you"))
            });
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (tx, rx) = async_channel::unbounded();
        let own = tx.clone();
        let result = Client::builder(&format!("http://{addr}"))
            .runtime(RuntimeKind::Tokio)
            .on_namespace("/private", move |h| {
                h.on_connect_error(move |s: ClientSocket, message: String, _d| {
                    own.try_send((s.ns().to_owned(), message)).unwrap();
                    async {}
                })
            })
            .on_connect_error(move |_s, _m, _d| {
                tx.try_send(("every".into(), String::new())).unwrap();
                async {}
            })
            .connect()
            .await;
        assert!(matches!(
            result,
            Err(socketio::Error::ConnectRefused { .. })
        ));
        assert_eq!(next(&rx).await, ("/private".into(), "not you".into()));
        assert!(rx.try_recv().is_err(), "only the namespace's own handler");
    });
}
