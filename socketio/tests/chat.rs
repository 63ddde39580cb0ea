//! The `chat` example's server, run in-process and driven by our clients:
//! room messages, join/leave notices, nicknames, and no leaks between
//! rooms.

#[path = "../../examples/chat/server.rs"]
#[allow(dead_code)]
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::json;
use server::{ChatMessage, NickChange, Notice, Reply, RoomInfo};
use socketio::{Client, Error, RuntimeKind, SimpleClient};

const WAIT: Duration = Duration::from_secs(5);
/// How long a message that must not arrive is waited for.
const QUIET: Duration = Duration::from_millis(300);

async fn connect(addr: SocketAddr, nick: Option<&str>) -> SimpleClient {
    let mut builder = Client::builder(&format!("http://{addr}")).reconnection(false);
    if let Some(nick) = nick {
        builder = builder.auth(&json!({ "nick": nick }));
    }
    builder.connect_simple().await.expect("connect")
}

/// Send a request and unwrap its `{"ok": ...}` reply.
async fn request<T: DeserializeOwned>(
    client: &SimpleClient,
    event: &str,
    args: &(impl serde::Serialize + ?Sized),
) -> Reply<T> {
    let answer = client.call(event, args, WAIT).await.expect("answered");
    answer.get::<Reply<T>>(0).expect("a Reply")
}

/// The next event, which must be `name`, with its one argument.
async fn next<T: DeserializeOwned>(client: &SimpleClient, name: &str) -> T {
    let (event, args) = client.receive(Some(WAIT)).await.expect("an event");
    assert_eq!(event, name, "unexpected event {event} {args:?}");
    args.get::<T>(0).expect("argument of the expected type")
}

async fn nothing_more(client: &SimpleClient) {
    match client.receive(Some(QUIET)).await {
        Err(Error::Timeout) => {}
        other => panic!("expected nothing, got {other:?}"),
    }
}

fn notice(room: &str, nick: &str) -> Notice {
    Notice {
        room: room.into(),
        nick: nick.into(),
    }
}

fn room(name: &str, users: &[&str]) -> RoomInfo {
    RoomInfo {
        name: name.into(),
        users: users.iter().map(|u| u.to_string()).collect(),
    }
}

#[test]
fn rooms_messages_and_notices() {
    RuntimeKind::default().block_on(async {
        let (_server, addr) = server::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("listen");

        let alice = connect(addr, Some("alice")).await;
        assert_eq!(next::<String>(&alice, "welcome").await, "alice");
        assert_eq!(
            request::<RoomInfo>(&alice, "join", &("lobby",)).await,
            Reply::Ok(room("lobby", &["alice"]))
        );

        let bob = connect(addr, Some("bob")).await;
        assert_eq!(next::<String>(&bob, "welcome").await, "bob");
        assert_eq!(
            request::<RoomInfo>(&bob, "join", &("lobby",)).await,
            Reply::Ok(room("lobby", &["alice", "bob"]))
        );
        assert_eq!(
            next::<Notice>(&alice, "user joined").await,
            notice("lobby", "bob")
        );

        // No nickname in the auth: a guest one, changed with `nick`.
        let carol = connect(addr, None).await;
        let guest = next::<String>(&carol, "welcome").await;
        assert!(guest.starts_with("guest-"), "{guest}");
        assert_eq!(
            request::<String>(&carol, "nick", &("carol",)).await,
            Reply::Ok("carol".into())
        );
        assert_eq!(
            request::<()>(&carol, "nick", &("alice",)).await,
            Reply::Error("nickname alice is taken".into())
        );
        assert_eq!(
            request::<RoomInfo>(&carol, "join", &("rust",)).await,
            Reply::Ok(room("rust", &["carol"]))
        );
        assert_eq!(
            request::<Vec<RoomInfo>>(&carol, "rooms", &()).await,
            Reply::Ok(vec![
                room("lobby", &["alice", "bob"]),
                room("rust", &["carol"])
            ])
        );

        // A message reaches the room, not the sender, not another room.
        assert_eq!(
            request::<()>(&bob, "message", &("hi alice",)).await,
            Reply::Ok(())
        );
        assert_eq!(
            next::<ChatMessage>(&alice, "message").await,
            ChatMessage {
                room: "lobby".into(),
                nick: "bob".into(),
                text: "hi alice".into(),
            }
        );
        nothing_more(&bob).await;
        nothing_more(&carol).await;

        // A nickname change is announced in the room.
        assert_eq!(
            request::<String>(&bob, "nick", &("robert",)).await,
            Reply::Ok("robert".into())
        );
        assert_eq!(
            next::<NickChange>(&alice, "nick changed").await,
            NickChange {
                room: "lobby".into(),
                old: "bob".into(),
                new: "robert".into(),
            }
        );

        // Moving to another room: left in the old one, joined in the new.
        assert_eq!(
            request::<RoomInfo>(&bob, "join", &("rust",)).await,
            Reply::Ok(room("rust", &["carol", "robert"]))
        );
        assert_eq!(
            next::<Notice>(&alice, "user left").await,
            notice("lobby", "robert")
        );
        assert_eq!(
            next::<Notice>(&carol, "user joined").await,
            notice("rust", "robert")
        );
        carol.emit("message", &("hello rust",)).unwrap();
        assert_eq!(
            next::<ChatMessage>(&bob, "message").await.text,
            "hello rust"
        );
        nothing_more(&alice).await;

        // Leaving, and the errors of a user in no room.
        assert_eq!(
            request::<String>(&carol, "leave", &()).await,
            Reply::Ok("rust".into())
        );
        assert_eq!(
            next::<Notice>(&bob, "user left").await,
            notice("rust", "carol")
        );
        assert_eq!(
            request::<()>(&carol, "leave", &()).await,
            Reply::Error("you are in no room".into())
        );
        assert!(matches!(
            request::<()>(&carol, "message", &("anyone?",)).await,
            Reply::Error(_)
        ));
        assert!(matches!(
            request::<()>(&carol, "join", &("two words",)).await,
            Reply::Error(_)
        ));

        // Disconnecting leaves the room too (once the server has seen
        // the disconnection).
        bob.disconnect().await;
        let expected = Reply::Ok(vec![room("lobby", &["alice"])]);
        let mut rooms = request::<Vec<RoomInfo>>(&alice, "rooms", &()).await;
        for _ in 0..50 {
            if rooms == expected {
                break;
            }
            socketio::sleep(Duration::from_millis(20)).await;
            rooms = request::<Vec<RoomInfo>>(&alice, "rooms", &()).await;
        }
        assert_eq!(rooms, expected);
        alice.disconnect().await;
        carol.disconnect().await;
    });
}

#[test]
fn nicknames_are_checked_at_connection() {
    RuntimeKind::default().block_on(async {
        let (_server, addr) = server::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("listen");
        let dave = connect(addr, Some("dave")).await;
        let url = format!("http://{addr}");
        for (auth, why) in [
            (json!({ "nick": "dave" }), "nickname dave is taken"),
            (json!({ "nick": "" }), "invalid nickname"),
            (json!({ "nick": 7 }), "invalid nickname"),
        ] {
            let refused = Client::builder(&url)
                .reconnection(false)
                .auth(&auth)
                .connect()
                .await;
            match refused {
                Err(Error::ConnectRefused { message, .. }) => assert_eq!(message, why),
                Err(e) => panic!("{auth}: {e}"),
                Ok(_) => panic!("{auth} accepted"),
            }
        }
        dave.disconnect().await;
    });
}
