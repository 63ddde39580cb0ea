//! The terminal chat client: reads commands and messages from stdin,
//! prints what happens in the room.

use std::time::Duration;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use socketio::{Args, Client, ClientAck, ClientSocket};

use crate::server::{ChatMessage, NickChange, Notice, Reply, RoomInfo};

/// How long to wait for the server's answer to a command.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

const HELP: &str =
    "commands: /join ROOM, /leave, /rooms, /nick NAME, /quit; anything else is a message";

/// What the user typed.
#[derive(Debug, PartialEq)]
enum Command<'a> {
    Join(&'a str),
    Leave,
    Rooms,
    Nick(&'a str),
    Quit,
    Help,
    Say(&'a str),
}

fn parse(line: &str) -> Command<'_> {
    let line = line.trim();
    let (word, rest) = match line.split_once(' ') {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    };
    match word {
        "/join" if !rest.is_empty() => Command::Join(rest),
        "/leave" => Command::Leave,
        "/rooms" => Command::Rooms,
        "/nick" if !rest.is_empty() => Command::Nick(rest),
        "/quit" | "/exit" => Command::Quit,
        _ if word.starts_with('/') => Command::Help,
        _ => Command::Say(line),
    }
}

/// Print an event's argument as `T`, or say it was not understood.
fn on_event<T, F>(
    name: &'static str,
    show: F,
) -> impl Fn(ClientSocket, Args, Option<ClientAck>) -> std::future::Ready<()> + Send + Sync + 'static
where
    T: DeserializeOwned,
    F: Fn(T) + Send + Sync + 'static,
{
    move |_socket: ClientSocket, args: Args, _ack: Option<ClientAck>| {
        match args.get::<T>(0) {
            Ok(value) => show(value),
            Err(e) => eprintln!("(unexpected `{name}` from the server: {e})"),
        }
        std::future::ready(())
    }
}

/// Send a request and wait for its [`Reply`].
async fn request<A, T>(socket: &ClientSocket, event: &str, args: &A) -> Result<T, String>
where
    A: Serialize + ?Sized,
    T: DeserializeOwned,
{
    let answer = socket
        .call(event, args, ANSWER_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    match answer.get::<Reply<T>>(0) {
        Ok(Reply::Ok(value)) => Ok(value),
        Ok(Reply::Error(why)) => Err(why),
        Err(e) => Err(format!("unexpected answer: {e}")),
    }
}

fn show_room(room: &RoomInfo) {
    println!("* #{}: {}", room.name, room.users.join(", "));
}

/// Connect to `url` as `nick`, join `room`, then chat until stdin ends or
/// `/quit`.
pub async fn run(url: &str, nick: Option<&str>, room: &str) -> Result<(), String> {
    let mut builder = Client::builder(url)
        .on(
            "welcome",
            on_event("welcome", |nick: String| {
                println!("* connected as {nick} ({HELP})")
            }),
        )
        .on(
            "message",
            on_event("message", |m: ChatMessage| {
                println!("[#{}] <{}> {}", m.room, m.nick, m.text)
            }),
        )
        .on(
            "user joined",
            on_event("user joined", |n: Notice| {
                println!("* {} joined #{}", n.nick, n.room)
            }),
        )
        .on(
            "user left",
            on_event("user left", |n: Notice| {
                println!("* {} left #{}", n.nick, n.room)
            }),
        )
        .on(
            "nick changed",
            on_event("nick changed", |c: NickChange| {
                println!("* {} is now known as {} (#{})", c.old, c.new, c.room)
            }),
        )
        .on_disconnect(|_socket: ClientSocket, reason| async move {
            println!("* disconnected: {reason} (reconnecting unless the server said so)");
        });
    if let Some(nick) = nick {
        builder = builder.auth(&serde_json::json!({ "nick": nick }));
    }
    let client = builder
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let socket = client.socket("/");
    match request::<_, RoomInfo>(&socket, "join", &(room,)).await {
        Ok(info) => show_room(&info),
        Err(why) => println!("* cannot join #{room}: {why}"),
    }

    // stdin blocks: read it on a thread of its own and pass lines over.
    let (lines_tx, mut lines) = futures_channel::mpsc::unbounded::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines_tx.unbounded_send(line).is_err() {
                break;
            }
        }
    });

    while let Some(line) = lines.next().await {
        let outcome = match parse(&line) {
            Command::Say("") => Ok(()),
            Command::Say(text) => request::<_, ()>(&socket, "message", &(text,)).await,
            Command::Join(room) => request(&socket, "join", &(room,))
                .await
                .map(|i| show_room(&i)),
            Command::Leave => request::<_, String>(&socket, "leave", &())
                .await
                .map(|room| println!("* you left #{room}")),
            Command::Rooms => request::<_, Vec<RoomInfo>>(&socket, "rooms", &())
                .await
                .map(|rooms| {
                    if rooms.is_empty() {
                        println!("* no rooms yet: /join one");
                    }
                    rooms.iter().for_each(show_room);
                }),
            Command::Nick(nick) => request::<_, String>(&socket, "nick", &(nick,))
                .await
                .map(|nick| println!("* you are now {nick}")),
            Command::Help => {
                println!("* {HELP}");
                Ok(())
            }
            Command::Quit => break,
        };
        if let Err(why) = outcome {
            println!("! {why}");
        }
    }
    client.disconnect().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_commands_or_messages() {
        assert_eq!(parse("/join  rust "), Command::Join("rust"));
        assert_eq!(parse("/join"), Command::Help);
        assert_eq!(parse("/leave"), Command::Leave);
        assert_eq!(parse("/rooms"), Command::Rooms);
        assert_eq!(parse("/nick bob"), Command::Nick("bob"));
        assert_eq!(parse("/quit"), Command::Quit);
        assert_eq!(parse("/what"), Command::Help);
        assert_eq!(parse(" hello there "), Command::Say("hello there"));
    }
}
