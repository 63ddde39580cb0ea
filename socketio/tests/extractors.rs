//! Handlers with extractors and return-value acknowledgements, against our
//! own client, on each runtime: typed data (one argument, several, refused,
//! as a `Result`), binary parts, state, the event name in a catch-all, an
//! `AckSender` taken for a deferred answer, handlers of the old shape, the
//! auth payload on connect, sessions, `send`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use socketio::extract::{Ack, Auth, Bin, Data, Event, State, TryData};
use socketio::{
    AckSender, Args, Binary, Bytes, Client, ClientSocket, ClientTransports, ConnectRefusal, Error,
    RuntimeKind, Server, SocketRef, Str,
};

/// Answers are expected well within this; a refused event is never
/// answered, so its call fails after it.
const ANSWER: Duration = Duration::from_secs(5);
/// How long a call waits for an answer that must not come.
const NO_ANSWER: Duration = Duration::from_millis(400);

#[derive(Default)]
struct Hits(AtomicUsize);

#[derive(Deserialize)]
struct Token {
    token: String,
}

async fn server(kind: RuntimeKind) -> (Server, String) {
    let server = Server::builder()
        .runtime(kind)
        .with_state(Hits::default())
        .build();
    server.ns("/", |ns| {
        ns.on("echo", |Data(text): Data<String>| async move { text });
        ns.on(
            "sum-and-product",
            |Data((a, b)): Data<(i64, i64)>| async move { (a + b, a * b) },
        );
        ns.on("strict", |Data(n): Data<u32>| async move { n + 1 });
        ns.on("lenient", |TryData(n): TryData<u32>| async move {
            match n {
                Ok(n) => format!("number {n}"),
                Err(_) => "not a number".to_owned(),
            }
        });
        ns.on(
            "fails",
            || async move { Err::<&str, _>("the handler failed") },
        );
        ns.on("silent", || async move {});
        ns.on("hit", |State(hits): State<Hits>| async move {
            hits.0.fetch_add(1, Ordering::Relaxed) + 1
        });
        ns.on(
            "missing-state",
            |_: State<String>| async move { "unreachable" },
        );
        ns.on(
            "bin",
            |Bin(parts): Bin, Data(label): Data<String>| async move {
                (label, parts.len(), Binary(parts.concat().into()))
            },
        );
        // The AckSender taken first, data after: any order. The returned
        // value is not sent; the deferred answer is.
        ns.on("later", |ack: AckSender, Data(n): Data<u32>| async move {
            socketio::spawn(async move {
                socketio::sleep(Duration::from_millis(20)).await;
                ack.send(&(n * 10,)).unwrap();
            });
            "not sent"
        });
        // The shape every handler had before extractors.
        ns.on(
            "old",
            |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
                assert!(socket.connected());
                ack.unwrap().send(&args).unwrap();
            },
        );
        // Raw arguments before and after typed ones: the last reader may
        // take them, earlier ones leave them for the rest.
        ns.on(
            "raw-and-typed",
            |first: Args, Data(text): Data<String>, last: Args| async move {
                (text, first.len(), last.len())
            },
        );
        ns.on("count", |socket: SocketRef| async move {
            socket.with_data_mut(|n: &mut u32| {
                *n += 1;
                *n
            })
        });
        ns.on("peek", |socket: SocketRef| async move {
            let n = socket.with_data(|n: &u32| *n);
            Ack(n)
        });
        ns.on("greet-me", |socket: SocketRef| async move {
            assert!(socket.send(&("hello",)));
            assert!(socket.try_emit("message", &("again",)).is_ok());
        });
        ns.on_any(|Event(name): Event, args: Args| async move {
            (format!("caught {}", &*name), args.len())
        });
    });
    server.ns("/auth", |ns| {
        ns.on_connect(|Auth(auth): Auth<Token>| async move {
            match auth.token.as_str() {
                "open sesame" => Ok(()),
                _ => Err(ConnectRefusal::new("wrong token")),
            }
        });
        ns.on("who", |name: Str, socket: SocketRef| async move {
            format!("{} on {}", &*name, socket.ns())
        });
    });
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (server, format!("http://{addr}"))
}

fn builder(kind: RuntimeKind, url: &str) -> socketio::ClientBuilder {
    Client::builder(url)
        .runtime(kind)
        .transports(ClientTransports::WebSocket)
        .reconnection(false)
}

async fn call(
    client: &Client,
    event: &str,
    args: &impl serde::Serialize,
) -> socketio::Result<Args> {
    client.call(event, args, ANSWER).await
}

/// `future`'s output, or `None` once `deadline` passed.
async fn within<T>(deadline: Duration, future: impl std::future::Future<Output = T>) -> Option<T> {
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(socketio::sleep(deadline));
    match futures_util::future::select(future, timer).await {
        futures_util::future::Either::Left((value, _)) => Some(value),
        futures_util::future::Either::Right(_) => None,
    }
}

async fn scenario(kind: RuntimeKind) {
    let (server, url) = server(kind).await;
    let (messages_tx, messages_rx) = async_channel::bounded::<String>(4);
    let client = builder(kind, &url)
        .on(
            "message",
            move |_s: ClientSocket, args: Args, _ack: Option<socketio::ClientAck>| {
                let tx = messages_tx.clone();
                async move {
                    let _ = tx.send(args.get::<String>(0).unwrap()).await;
                }
            },
        )
        .connect()
        .await
        .expect("connects");

    // One argument in, one out; several in, several out.
    let answer = call(&client, "echo", &("hi",)).await.unwrap();
    assert_eq!(answer.deserialize::<String>().unwrap(), "hi");
    let answer = call(&client, "sum-and-product", &(3, 4)).await.unwrap();
    assert_eq!(answer.deserialize::<(i64, i64)>().unwrap(), (7, 12));

    // Arguments that do not fit: the event is dropped, nothing answers.
    let refused = client.call("strict", &("seven",), NO_ANSWER).await;
    assert!(matches!(refused, Err(Error::AckTimeout)), "{refused:?}");
    let answer = call(&client, "strict", &(7,)).await.unwrap();
    assert_eq!(answer.deserialize::<u32>().unwrap(), 8);
    let answer = call(&client, "lenient", &("seven",)).await.unwrap();
    assert_eq!(answer.deserialize::<String>().unwrap(), "not a number");
    let answer = call(&client, "lenient", &(7,)).await.unwrap();
    assert_eq!(answer.deserialize::<String>().unwrap(), "number 7");

    // An error is logged, not sent; `()` answers nothing.
    let failed = client.call("fails", &(), NO_ANSWER).await;
    assert!(matches!(failed, Err(Error::AckTimeout)), "{failed:?}");
    let silent = client.call("silent", &(), NO_ANSWER).await;
    assert!(matches!(silent, Err(Error::AckTimeout)), "{silent:?}");

    // State shared by every socket; a state never registered drops.
    for expected in 1..=2usize {
        let answer = call(&client, "hit", &()).await.unwrap();
        assert_eq!(answer.deserialize::<usize>().unwrap(), expected);
    }
    assert_eq!(server.state::<Hits>().unwrap().0.load(Ordering::Relaxed), 2);
    let missing = client.call("missing-state", &(), NO_ANSWER).await;
    assert!(matches!(missing, Err(Error::AckTimeout)), "{missing:?}");

    // Binary parts.
    let parts = (
        "two parts",
        Binary(Bytes::from_static(b"ab")),
        Binary(Bytes::from_static(b"cd")),
    );
    let answer = call(&client, "bin", &parts).await.unwrap();
    let (label, count, joined): (String, usize, Binary) = answer.deserialize().unwrap();
    assert_eq!((label.as_str(), count), ("two parts", 2));
    assert_eq!(&joined.0[..], b"abcd");

    // A deferred answer through the AckSender; the return value is not sent.
    let answer = call(&client, "later", &(4,)).await.unwrap();
    assert_eq!(answer.len(), 1);
    assert_eq!(answer.deserialize::<u32>().unwrap(), 40);

    // The old shape still works.
    let answer = call(&client, "old", &("a", 1)).await.unwrap();
    assert_eq!(
        answer.deserialize::<(String, u32)>().unwrap(),
        ("a".into(), 1)
    );

    let answer = call(&client, "raw-and-typed", &("x", 2)).await.unwrap();
    assert_eq!(
        answer.deserialize::<(String, usize, usize)>().unwrap(),
        ("x".into(), 2, 2)
    );

    // Sessions: updated in place, read without Clone.
    let none = call(&client, "peek", &()).await.unwrap();
    assert_eq!(none.deserialize::<Option<u32>>().unwrap(), None);
    for expected in 1..=3u32 {
        let answer = call(&client, "count", &()).await.unwrap();
        assert_eq!(answer.deserialize::<u32>().unwrap(), expected);
    }
    let three = call(&client, "peek", &()).await.unwrap();
    assert_eq!(three.deserialize::<Option<u32>>().unwrap(), Some(3));

    // `send` is the `message` event.
    client.emit("greet-me", &()).unwrap();
    for expected in ["hello", "again"] {
        let got = within(ANSWER, messages_rx.recv()).await;
        assert_eq!(got.and_then(Result::ok).as_deref(), Some(expected));
    }

    // A catch-all gets the event name.
    let answer = call(&client, "anything", &(1, 2, 3)).await.unwrap();
    assert_eq!(
        answer.deserialize::<(String, usize)>().unwrap(),
        ("caught anything".into(), 3)
    );

    // The auth payload on connect: accepted, refused, and one that does
    // not fit (refused by the extractor, with its reason).
    let accepted = builder(kind, &format!("{url}/auth"))
        .auth(&serde_json::json!({ "token": "open sesame" }))
        .connect()
        .await
        .expect("accepted");
    let answer = accepted
        .socket("/auth")
        .call("who", &(), ANSWER)
        .await
        .unwrap();
    assert_eq!(answer.deserialize::<String>().unwrap(), "who on /auth");
    accepted.disconnect().await;
    for (auth, expected) in [
        (serde_json::json!({ "token": "wrong" }), "wrong token"),
        (
            serde_json::json!({ "nothing": true }),
            "invalid auth payload",
        ),
    ] {
        let refused = builder(kind, &format!("{url}/auth"))
            .auth(&auth)
            .connect()
            .await;
        match refused {
            Err(Error::ConnectRefused { message, .. }) => {
                assert!(message.starts_with(expected), "{message}")
            }
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
    }

    client.disconnect().await;
    server.shutdown().await;
}

#[cfg(feature = "tokio")]
#[test]
fn extractors_and_return_value_acks_on_tokio() {
    RuntimeKind::Tokio.block_on(scenario(RuntimeKind::Tokio));
}

#[cfg(feature = "async-std")]
#[test]
fn extractors_and_return_value_acks_on_async_std() {
    RuntimeKind::AsyncStd.block_on(scenario(RuntimeKind::AsyncStd));
}

#[cfg(feature = "smol")]
#[test]
fn extractors_and_return_value_acks_on_smol() {
    RuntimeKind::Smol.block_on(scenario(RuntimeKind::Smol));
}
