//! Where handlers run (README, "where handlers run"): concurrently by
//! default, so a handler waiting for a late answer does not hold up the
//! next event of its socket (server and client, on every runtime); in
//! arrival order with `async_handlers(false)`; handlers that never wait in
//! arrival order in both modes; a disconnect handler after the connect
//! handler; the bounds on waiting handlers and on a `SimpleClient`'s queue.

mod raw;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_channel::mpsc;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use socketio::{
    AckSender, Args, Client, ClientAck, ClientSocket, DisconnectReason, RuntimeKind, Server,
    SocketRef, Value,
};

/// The longest any step may take.
const WAIT: Duration = Duration::from_secs(5);

type Log = Arc<Mutex<Vec<String>>>;

fn record(log: &Log, entry: impl Into<String>) {
    log.lock().unwrap().push(entry.into());
}

/// `future`'s output, or a panic once `WAIT` passed.
async fn within<T>(kind: RuntimeKind, what: &str, future: impl Future<Output = T>) -> T {
    within_for(kind, WAIT, what, future).await
}

/// `future`'s output, or a panic once `limit` passed.
async fn within_for<T>(
    kind: RuntimeKind,
    limit: Duration,
    what: &str,
    future: impl Future<Output = T>,
) -> T {
    let timeout = kind.runtime().sleep_until(Instant::now() + limit);
    futures_util::pin_mut!(future);
    match select(future, timeout).await {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("{what}: timed out"),
    }
}

/// Where one side's waiting handler parks the answer it is waiting for.
type Slot<T> = Arc<Mutex<Option<T>>>;

/// A server whose `ask` handler calls the client's `question` and acks
/// `ask` with the answer, and whose `next` handler acks at once; both log
/// when they answer. Its `question` handler parks its ack in the slot (for
/// the client-side test) and says so on the channel.
async fn asking_server(
    kind: RuntimeKind,
    concurrent: bool,
    log: &Log,
) -> (
    Server,
    SocketAddr,
    Slot<AckSender>,
    mpsc::UnboundedReceiver<()>,
) {
    let server = Server::builder()
        .runtime(kind)
        .async_handlers(concurrent)
        .build();
    let parked: Slot<AckSender> = Arc::default();
    let (asked_tx, asked) = mpsc::unbounded();
    let (log, slot) = (log.clone(), parked.clone());
    server.ns("/", move |ns| {
        let ask_log = log.clone();
        ns.on(
            "ask",
            move |socket: SocketRef, _args: Args, ack: Option<AckSender>| {
                let log = ask_log.clone();
                async move {
                    let answer = socket.call("question", &(), WAIT).await.unwrap();
                    record(&log, "ask");
                    ack.unwrap().send(&answer).unwrap();
                }
            },
        );
        let next_log = log.clone();
        ns.on(
            "next",
            move |_s: SocketRef, _args: Args, ack: Option<AckSender>| {
                let log = next_log.clone();
                async move {
                    record(&log, "next");
                    ack.unwrap().send(&("next",)).unwrap();
                }
            },
        );
        ns.on(
            "question",
            move |_s: SocketRef, _args: Args, ack: Option<AckSender>| {
                *slot.lock().unwrap() = ack;
                let _ = asked_tx.unbounded_send(());
                async {}
            },
        );
    });
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (server, addr, parked, asked)
}

/// A client whose `question` handler parks its ack and says so; its `ask`
/// and `next` handlers mirror the server's.
async fn asking_client(
    kind: RuntimeKind,
    addr: SocketAddr,
    log: &Log,
) -> (Client, Slot<ClientAck>, mpsc::UnboundedReceiver<()>) {
    let parked: Slot<ClientAck> = Arc::default();
    let (asked_tx, asked) = mpsc::unbounded();
    let slot = parked.clone();
    let (ask_log, next_log) = (log.clone(), log.clone());
    let client = Client::builder(&format!("http://{addr}"))
        .runtime(kind)
        .on(
            "question",
            move |_s: ClientSocket, _args: Args, ack: Option<ClientAck>| {
                *slot.lock().unwrap() = ack;
                let _ = asked_tx.unbounded_send(());
                async {}
            },
        )
        .on(
            "ask",
            move |socket: ClientSocket, _args: Args, ack: Option<ClientAck>| {
                let log = ask_log.clone();
                async move {
                    let answer = socket.call("question", &(), WAIT).await.unwrap();
                    record(&log, "client ask");
                    ack.unwrap().send(&answer).unwrap();
                }
            },
        )
        .on(
            "next",
            move |_s: ClientSocket, _args: Args, ack: Option<ClientAck>| {
                let log = next_log.clone();
                async move {
                    record(&log, "client next");
                    ack.unwrap().send(&("next",)).unwrap();
                }
            },
        )
        .connect()
        .await
        .unwrap();
    (client, parked, asked)
}

/// The server's `ask` handler waits for the client's answer, which comes
/// only after the client got the answer to `next`, sent after `ask`: with
/// handlers waiting one after another this could never complete. Then the
/// same with the roles swapped (the client's handler waits for the
/// server's late answer).
fn waiting_handler_is_overtaken(kind: RuntimeKind) {
    kind.block_on(async move {
        let log: Log = Arc::default();
        let (server, addr, server_parked, mut server_asked) = asking_server(kind, true, &log).await;
        let (client, client_parked, mut client_asked) = asking_client(kind, addr, &log).await;

        // Server side: `ask` waits on the client; `next` overtakes it.
        let ask = client.call("ask", &(), WAIT);
        within(kind, "question", client_asked.next()).await;
        let next = within(kind, "next", client.call("next", &(), WAIT)).await;
        assert_eq!(next.unwrap().get::<String>(0).unwrap(), "next");
        let late = client_parked.lock().unwrap().take().expect("ack parked");
        late.send(&("late",)).unwrap();
        let answer = within(kind, "ask", ask).await.unwrap();
        assert_eq!(answer.get::<String>(0).unwrap(), "late");
        assert_eq!(*log.lock().unwrap(), ["next", "ask"]);

        // Client side: its `ask` handler waits on the server; `next`
        // overtakes it.
        let sid = client.sid("/").unwrap();
        let socket = server.socket(&sid).unwrap();
        let ask = socket.call("ask", &(), WAIT);
        within(kind, "client's question", server_asked.next()).await;
        let next = within(kind, "client next", socket.call("next", &(), WAIT)).await;
        assert_eq!(next.unwrap().get::<String>(0).unwrap(), "next");
        let late = server_parked.lock().unwrap().take().expect("ack parked");
        late.send(&("late",)).unwrap();
        let answer = within(kind, "client ask", ask).await.unwrap();
        assert_eq!(answer.get::<String>(0).unwrap(), "late");
        assert_eq!(
            *log.lock().unwrap(),
            ["next", "ask", "client next", "client ask"]
        );

        client.disconnect().await;
        server.shutdown().await;
    });
}

#[cfg(feature = "tokio")]
#[test]
fn a_waiting_handler_is_overtaken_on_tokio() {
    waiting_handler_is_overtaken(RuntimeKind::Tokio);
}

#[cfg(feature = "async-std")]
#[test]
fn a_waiting_handler_is_overtaken_on_async_std() {
    waiting_handler_is_overtaken(RuntimeKind::AsyncStd);
}

#[cfg(feature = "smol")]
#[test]
fn a_waiting_handler_is_overtaken_on_smol() {
    waiting_handler_is_overtaken(RuntimeKind::Smol);
}

/// `async_handlers(false)`: `next`, sent after `ask` but before the
/// question is answered, is handled only once `ask`'s handler finished.
#[cfg(feature = "tokio")]
#[test]
fn ordered_handlers_keep_arrival_order() {
    let kind = RuntimeKind::Tokio;
    kind.block_on(async move {
        let log: Log = Arc::default();
        let (server, addr, _parked, _asked) = asking_server(kind, false, &log).await;
        let (client, client_parked, mut client_asked) = asking_client(kind, addr, &log).await;
        let ask = client.call("ask", &(), WAIT);
        within(kind, "question", client_asked.next()).await;
        let next = client.call("next", &(), WAIT);
        // `next` reached the server before this answer (one connection, in
        // order), so concurrently it would be logged first.
        let late = client_parked.lock().unwrap().take().expect("ack parked");
        late.send(&("late",)).unwrap();
        within(kind, "ask", ask).await.unwrap();
        within(kind, "next", next).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["ask", "next"]);
        client.disconnect().await;
        server.shutdown().await;
    });
}

/// Handlers that never wait run in arrival order with concurrent
/// handlers too, on WebSocket and on polling (where one POST carries many
/// events), and the answers they emit leave in that order.
#[cfg(feature = "tokio")]
#[test]
fn handlers_that_never_wait_keep_arrival_order_when_concurrent() {
    let kind = RuntimeKind::Tokio;
    kind.block_on(async move {
        const EVENTS: u32 = 300;
        let server = Server::builder().runtime(kind).build();
        let seen: Arc<Mutex<Vec<u32>>> = Arc::default();
        let log = seen.clone();
        server.ns("/", move |ns| {
            let log = log.clone();
            ns.on(
                "n",
                move |s: SocketRef, args: Args, _ack: Option<AckSender>| {
                    let log = log.clone();
                    async move {
                        let n: u32 = args.get(0).unwrap();
                        log.lock().unwrap().push(n);
                        let _ = s.emit("n-back", &(n,));
                    }
                },
            );
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        for transports in [
            socketio::ClientTransports::WebSocket,
            socketio::ClientTransports::Polling,
        ] {
            seen.lock().unwrap().clear();
            let (back_tx, back) = mpsc::unbounded::<u32>();
            let client = Client::builder(&format!("http://{addr}"))
                .runtime(kind)
                .transports(transports)
                .on("n-back", move |_s: ClientSocket, args: Args, _ack| {
                    let _ = back_tx.unbounded_send(args.get(0).unwrap());
                    async {}
                })
                .connect()
                .await
                .unwrap();
            for n in 0..EVENTS {
                client.emit("n", &(n,)).unwrap();
            }
            let back: Vec<u32> = within(
                kind,
                "answers",
                back.take(EVENTS as usize).collect::<Vec<u32>>(),
            )
            .await;
            let expected: Vec<u32> = (0..EVENTS).collect();
            assert_eq!(back, expected, "{transports:?}: answers out of order");
            assert_eq!(*seen.lock().unwrap(), expected, "{transports:?}");
            client.disconnect().await;
        }
        server.shutdown().await;
    });
}

/// A socket that leaves while its connect handler still waits gets its
/// disconnect handler only after the connect handler finished (concurrent
/// handlers too).
#[cfg(feature = "tokio")]
#[test]
fn disconnect_handler_runs_after_the_connect_handler() {
    let kind = RuntimeKind::Tokio;
    kind.block_on(async move {
        let server = Server::builder().runtime(kind).build();
        let log: Log = Arc::default();
        let (release_tx, release) = async_channel::bounded::<()>(1);
        let (started_tx, mut started) = mpsc::unbounded::<()>();
        let (gone_tx, mut gone) = mpsc::unbounded::<()>();
        let (connect_log, disconnect_log) = (log.clone(), log.clone());
        server.ns("/", move |ns| {
            ns.on_connect(move |_s: SocketRef, _auth: Option<Value>| {
                let (log, release) = (connect_log.clone(), release.clone());
                let _ = started_tx.unbounded_send(());
                async move {
                    record(&log, "connect start");
                    let _ = release.recv().await;
                    record(&log, "connect end");
                    Ok(())
                }
            });
            ns.on_disconnect(move |_s: SocketRef, reason: DisconnectReason| {
                record(&disconnect_log, format!("disconnect {reason}"));
                let _ = gone_tx.unbounded_send(());
                async {}
            });
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        // A raw peer asks for `/`, then closes its connection at once.
        let peer = std::thread::spawn(move || {
            let mut ws = raw::Ws::connect(addr, "/socket.io/?EIO=4&transport=websocket").unwrap();
            ws.recv();
            ws.send_text("40");
        });
        within(kind, "connect handler", started.next()).await;
        peer.join().unwrap();
        // Give the close every chance to be handled before the release:
        // the disconnect handler must still wait for the connect handler.
        socketio::sleep(Duration::from_millis(100)).await;
        assert_eq!(*log.lock().unwrap(), ["connect start"]);
        release_tx.send(()).await.unwrap();
        within(kind, "disconnect handler", gone.next()).await;
        assert_eq!(
            *log.lock().unwrap(),
            ["connect start", "connect end", "disconnect transport close"]
        );
        server.shutdown().await;
    });
}

/// A client that sends more events than `max_pending_handlers` while
/// every handler waits is disconnected at the bound: exactly `bound`
/// handlers started, in either mode.
#[cfg(feature = "tokio")]
#[test]
fn waiting_handlers_are_bounded_per_socket() {
    let kind = RuntimeKind::Tokio;
    for (concurrent, started_at_bound) in [(true, 3), (false, 1)] {
        kind.block_on(async move {
            const BOUND: usize = 3;
            let server = Server::builder()
                .runtime(kind)
                .async_handlers(concurrent)
                .max_pending_handlers(BOUND)
                .build();
            let started: Arc<Mutex<usize>> = Arc::default();
            let (release_tx, release) = async_channel::bounded::<()>(1);
            let (gone_tx, mut gone) = mpsc::unbounded::<DisconnectReason>();
            let count = started.clone();
            server.ns("/", move |ns| {
                let (count, release) = (count.clone(), release.clone());
                ns.on(
                    "hold",
                    move |_s: SocketRef, _args: Args, _ack: Option<AckSender>| {
                        let (count, release) = (count.clone(), release.clone());
                        async move {
                            *count.lock().unwrap() += 1;
                            let _ = release.recv().await;
                        }
                    },
                );
                ns.on_disconnect(move |_s: SocketRef, reason: DisconnectReason| {
                    let _ = gone_tx.unbounded_send(reason);
                    async {}
                });
            });
            let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let (left_tx, mut left) = mpsc::unbounded::<DisconnectReason>();
            let client = Client::builder(&format!("http://{addr}"))
                .runtime(kind)
                .on_disconnect(move |_s: ClientSocket, reason| {
                    let _ = left_tx.unbounded_send(reason);
                    async {}
                })
                .connect()
                .await
                .unwrap();
            // Concurrent: 3 handlers wait, the 4th event is one too many.
            // Ordered: 1 waits, 3 queue, the 5th is one too many.
            for _ in 0..BOUND + 2 {
                client.emit("hold", &()).unwrap();
            }
            let reason = within(kind, "client disconnect", left.next()).await;
            assert_eq!(reason, Some(DisconnectReason::ServerDisconnect));
            assert_eq!(*started.lock().unwrap(), started_at_bound);
            // Ordered, the disconnect handler waits behind the handlers.
            release_tx.close();
            let reason = within(kind, "server disconnect", gone.next()).await;
            assert_eq!(reason, Some(DisconnectReason::ServerNamespaceDisconnect));
            client.disconnect().await;
            server.shutdown().await;
        });
    }
}

/// A `SimpleClient` that does not receive while the server sends is
/// disconnected once `max_received_events` events wait; those are still
/// handed out, in order, then `Disconnected`.
#[cfg(feature = "tokio")]
#[test]
fn simple_client_receive_queue_is_bounded() {
    let kind = RuntimeKind::Tokio;
    kind.block_on(async move {
        let server = Server::builder().runtime(kind).build();
        let (gone_tx, mut gone) = mpsc::unbounded::<DisconnectReason>();
        server.ns("/", move |ns| {
            ns.on(
                "flood",
                |s: SocketRef, args: Args, _ack: Option<AckSender>| {
                    let count: u32 = args.get(0).unwrap();
                    for n in 0..count {
                        let _ = s.emit("n", &(n,));
                    }
                    async {}
                },
            );
            ns.on_disconnect(move |_s: SocketRef, reason: DisconnectReason| {
                let _ = gone_tx.unbounded_send(reason);
                async {}
            });
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let simple = Client::builder(&format!("http://{addr}"))
            .runtime(kind)
            .max_received_events(3)
            .connect_simple()
            .await
            .unwrap();
        simple.emit("flood", &(5,)).unwrap();
        let reason = within(kind, "disconnect", gone.next()).await;
        assert_eq!(reason, Some(DisconnectReason::ClientNamespaceDisconnect));
        for n in 0..3u32 {
            let (name, args) = simple.receive(Some(WAIT)).await.unwrap();
            assert_eq!((name.as_str(), args.get::<u32>(0).unwrap()), ("n", n));
        }
        let after = simple.receive(Some(WAIT)).await;
        assert!(
            matches!(after, Err(socketio::Error::Disconnected)),
            "{after:?}"
        );
        server.shutdown().await;
    });
}

/// The measurement: 10,000 `ask` events whose handlers all wait
/// for the client's answer to their `question`, which the client gives
/// only once every question arrived. All 10,000 handlers wait at once
/// (within the default `max_pending_handlers`) and all answer.
#[cfg(feature = "tokio")]
#[test]
fn ten_thousand_waiting_handlers_all_answer() {
    const ASKS: usize = 10_000;
    // A deadline for a slow debug build on a busy machine, not a speed test.
    const LONG: Duration = Duration::from_secs(120);
    let kind = RuntimeKind::Tokio;
    kind.block_on(async move {
        // Past the core's default bounds on calls awaiting an answer and
        // calls not answered yet (per socket: 1,024 each on the server,
        // 4,096 each on the client).
        let server = Server::builder()
            .runtime(kind)
            .socket_config(|c| {
                c.max_pending_acks = ASKS;
                c.max_unanswered_acks = ASKS;
            })
            .build();
        server.ns("/", |ns| {
            ns.on(
                "ask",
                |socket: SocketRef, args: Args, ack: Option<AckSender>| async move {
                    let n: u32 = args.get(0).unwrap();
                    let answer = socket.call("question", &(n,), LONG).await.unwrap();
                    ack.unwrap().send(&answer).unwrap();
                },
            );
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let parked: Arc<Mutex<Vec<(u32, ClientAck)>>> = Arc::default();
        let (all_asked_tx, mut all_asked) = mpsc::unbounded::<()>();
        let slot = parked.clone();
        let client = Client::builder(&format!("http://{addr}"))
            .runtime(kind)
            .socket_config(|c| {
                c.max_pending_acks = ASKS;
                c.max_unanswered_acks = ASKS;
            })
            .on(
                "question",
                move |_s: ClientSocket, args: Args, ack: Option<ClientAck>| {
                    let mut parked = slot.lock().unwrap();
                    parked.push((args.get(0).unwrap(), ack.unwrap()));
                    if parked.len() == ASKS {
                        let _ = all_asked_tx.unbounded_send(());
                    }
                    async {}
                },
            )
            .connect()
            .await
            .unwrap();
        let calls: Vec<_> = (0..ASKS as u32)
            .map(|n| client.call("ask", &(n,), LONG))
            .collect();
        within_for(kind, LONG, "every question", all_asked.next()).await;
        for (n, ack) in parked.lock().unwrap().drain(..) {
            ack.send(&(n,)).unwrap();
        }
        let answers = futures_util::future::join_all(calls);
        let answers = within_for(kind, LONG, "every answer", answers).await;
        for (n, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.unwrap().get::<usize>(0).unwrap(), n);
        }
        client.disconnect().await;
        server.shutdown().await;
    });
}
