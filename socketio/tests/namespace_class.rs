//! Class-style namespaces: `#[socketio::namespace]` routes `on_<event>`
//! methods by event name, with extractors and return-value acks, against
//! our client.
#![cfg(all(feature = "tokio", feature = "macros"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketio::extract::{Data, Event, State};
use socketio::{
    Args, Client, ClientAck, ClientSocket, DisconnectReason, RuntimeKind, Server, SocketRef,
};

const ANSWER: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Chat {
    messages: AtomicUsize,
    left: Mutex<Vec<String>>,
}

struct Prefix(&'static str);

#[socketio::namespace]
impl Chat {
    async fn on_connect(&self, socket: SocketRef) {
        socket.emit("welcome", &(self.greeting(),));
    }

    async fn on_my_event(&self, Data(text): Data<String>) -> (String, usize) {
        let n = self.messages.fetch_add(1, Ordering::Relaxed) + 1;
        (text.to_uppercase(), n)
    }

    #[event("set-nick")]
    fn nick(&self, Data(nick): Data<String>, State(prefix): State<Prefix>) -> String {
        format!("{}{nick}", prefix.0)
    }

    async fn on_any(&self, Event(name): Event) -> String {
        format!("no method for {}", &*name)
    }

    async fn on_disconnect(&self, socket: SocketRef, reason: DisconnectReason) {
        self.left
            .lock()
            .unwrap()
            .push(format!("{} {reason}", socket.id()));
    }

    /// Not a handler: no `on_` prefix.
    fn greeting(&self) -> &'static str {
        "hello"
    }
}

#[test]
fn on_methods_handle_their_events() {
    RuntimeKind::Tokio.block_on(async {
        let server = Server::builder()
            .runtime(RuntimeKind::Tokio)
            .with_state(Prefix("nick: "))
            .build();
        let chat = Arc::new(Chat::default());
        server.ns_class("/chat", chat.clone());
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (welcome_tx, welcome) = async_channel::bounded::<String>(1);
        let client = Client::builder(&format!("http://{addr}/chat"))
            .runtime(RuntimeKind::Tokio)
            .on(
                "welcome",
                move |_s: ClientSocket, args: Args, _ack: Option<ClientAck>| {
                    let tx = welcome_tx.clone();
                    async move {
                        let _ = tx.try_send(args.get::<String>(0).unwrap());
                    }
                },
            )
            .connect()
            .await
            .expect("connects");
        let chat_socket = client.socket("/chat");
        let sid = chat_socket.sid().expect("connected");
        assert_eq!(welcome.recv().await.unwrap(), "hello");

        for n in 1..=2usize {
            let answer = chat_socket
                .call("my_event", &("hi",), ANSWER)
                .await
                .unwrap();
            assert_eq!(
                answer.deserialize::<(String, usize)>().unwrap(),
                ("HI".into(), n)
            );
        }
        let answer = chat_socket
            .call("set-nick", &("ann",), ANSWER)
            .await
            .unwrap();
        assert_eq!(answer.deserialize::<String>().unwrap(), "nick: ann");
        let answer = chat_socket.call("greeting", &(), ANSWER).await.unwrap();
        assert_eq!(
            answer.deserialize::<String>().unwrap(),
            "no method for greeting"
        );
        assert_eq!(chat.messages.load(Ordering::Relaxed), 2);

        client.disconnect().await;
        let deadline = std::time::Instant::now() + ANSWER;
        while chat.left.lock().unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "no disconnect handler"
            );
            socketio::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            *chat.left.lock().unwrap(),
            [format!("{sid} client namespace disconnect")]
        );
        server.shutdown().await;
    });
}
