//! The client's bounded event queue over the wire: with a bound far below
//! a burst, reading pauses and resumes, and every event arrives, in order.
#![cfg(feature = "tokio")]

use std::time::Duration;

use socketio::{AckSender, Args, Client, ClientSocket, RuntimeKind, Server, SocketRef};

const BURST: u32 = 5_000;

#[test]
fn a_burst_beyond_the_queue_bound_arrives_whole_and_in_order() {
    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder().runtime(RuntimeKind::Tokio).build();
        server.ns("/", |ns| {
            ns.on(
                "burst",
                |socket: SocketRef, _a: Args, _ack: Option<AckSender>| async move {
                    for n in 0..BURST {
                        socket.try_emit("n", &(n,)).unwrap();
                    }
                },
            );
        });
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (tx, rx) = async_channel::unbounded();
        let client = Client::builder(&format!("http://{addr}"))
            .runtime(RuntimeKind::Tokio)
            .max_queued_events(2)
            // In order, one after another: the handlers keep arrival order.
            .async_handlers(false)
            .on("n", move |_s: ClientSocket, args: Args, _ack| {
                let n: u32 = args.deserialize().unwrap();
                tx.try_send(n).unwrap();
                async {}
            })
            .connect()
            .await
            .unwrap();
        client.emit("burst", &()).unwrap();
        for expected in 0..BURST {
            let next = socketio::sleep(Duration::from_secs(10));
            let got = match futures_util::future::select(Box::pin(rx.recv()), Box::pin(next)).await
            {
                futures_util::future::Either::Left((got, _)) => got.unwrap(),
                futures_util::future::Either::Right(_) => {
                    panic!("event {expected} did not arrive: reading never resumed?")
                }
            };
            assert_eq!(got, expected);
        }
        assert!(client.connected());
        client.disconnect().await;
        server.shutdown().await;
    });
}
