//! The terminal chat client: reads commands and messages from the keyboard,
//! prints what happens in the room.
//!
//! It survives the server going away: while disconnected, what is typed
//! waits (up to [`MAX_WAITING`] lines) and is sent once reconnected, and on
//! every (re)connection it takes back its nickname and its room.

use std::collections::VecDeque;
use std::time::Duration;

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::{stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use socketio::{Args, Client, ClientAck, ClientSocket, DisconnectReason};

use crate::server::{ChatMessage, NickChange, Notice, Reply, RoomInfo};
use crate::terminal::{Lines, Screen};

/// How long to wait for the server's answer to a command.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines typed while disconnected that wait for the connection.
const MAX_WAITING: usize = 100;

const HELP: &str =
    "commands: /join ROOM, /leave, /rooms, /nick NAME, /help, /quit; anything else is a message";

/// What the user typed.
#[derive(Debug, PartialEq)]
enum Command<'a> {
    Join(&'a str),
    Leave,
    Rooms,
    Nick(&'a str),
    Quit,
    Help,
    /// A known command without its argument: how to use it.
    Usage(&'static str),
    Unknown(&'a str),
    Say(&'a str),
}

fn parse(line: &str) -> Command<'_> {
    let line = line.trim();
    let (word, rest) = match line.split_once(' ') {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    };
    match word {
        "/join" if rest.is_empty() => Command::Usage("/join ROOM"),
        "/join" => Command::Join(rest),
        "/leave" => Command::Leave,
        "/rooms" => Command::Rooms,
        "/nick" if rest.is_empty() => Command::Usage("/nick NAME"),
        "/nick" => Command::Nick(rest),
        "/quit" | "/exit" => Command::Quit,
        "/help" => Command::Help,
        _ if word.starts_with('/') => Command::Unknown(word),
        _ => Command::Say(line),
    }
}

/// What the socket's handlers tell the client's loop.
enum Happening {
    /// (Re)connected: the server's `welcome`, with the nickname it gave.
    Welcome(String),
    Disconnected(DisconnectReason),
    Refused(String),
}

/// What the loop reads: typed lines and happenings, in one stream.
enum Input {
    Line(String),
    /// Stdin ended, or Ctrl-C / Ctrl-D.
    End,
    Happening(Happening),
}

/// Print an event's argument as `T` with `show`, or say it was not
/// understood.
fn on_event<T, F>(
    name: &'static str,
    screen: &Screen,
    show: F,
) -> impl Fn(ClientSocket, Args, Option<ClientAck>) -> std::future::Ready<()> + Send + Sync + 'static
where
    T: DeserializeOwned,
    F: Fn(T) -> String + Send + Sync + 'static,
{
    let screen = screen.clone();
    move |_socket: ClientSocket, args: Args, _ack: Option<ClientAck>| {
        match args.get::<T>(0) {
            Ok(value) => screen.print(&show(value)),
            Err(e) => screen.print(&format!("! unexpected `{name}` from the server: {e}")),
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

fn room_line(room: &RoomInfo) -> String {
    format!("* #{}: {}", room.name, room.users.join(", "))
}

/// Whether the loop goes on.
#[derive(PartialEq)]
enum Flow {
    Continue,
    Quit,
}

/// The client's state: who it wants to be and where, kept across
/// reconnections.
struct Session {
    socket: ClientSocket,
    screen: Screen,
    /// The nickname to have; `None` until the first `welcome` when no
    /// `--nick` was given (then the server's `guest-N` is kept).
    nick: Option<String>,
    /// The room to be in.
    room: Option<String>,
    connected: bool,
    ever_connected: bool,
    /// Lines typed while disconnected, sent once reconnected.
    waiting: VecDeque<String>,
}

impl Session {
    async fn happened(&mut self, happening: Happening) -> Flow {
        match happening {
            Happening::Welcome(given) => self.restore(given).await,
            Happening::Disconnected(DisconnectReason::ClientDisconnect) => {}
            Happening::Disconnected(DisconnectReason::ServerDisconnect) => {
                self.screen.print("* the server disconnected you");
                return Flow::Quit;
            }
            Happening::Disconnected(reason) => {
                self.connected = false;
                self.screen.print(&format!(
                    "* disconnected ({reason}); reconnecting... (what you type waits)"
                ));
            }
            Happening::Refused(why) => self.screen.print(&format!("! refused: {why}")),
        }
        Flow::Continue
    }

    /// On every connection: take back the nickname and the room, then send
    /// what waited.
    async fn restore(&mut self, given: String) {
        let mut nick = given;
        if let Some(wanted) = self.nick.clone().filter(|wanted| *wanted != nick) {
            match request::<_, String>(&self.socket, "nick", &(wanted.as_str(),)).await {
                Ok(taken) => nick = taken,
                Err(why) => self.screen.print(&format!("! cannot be {wanted}: {why}")),
            }
        }
        self.nick = Some(nick.clone());
        if self.ever_connected {
            self.screen.print(&format!("* reconnected as {nick}"));
        } else {
            self.screen
                .print(&format!("* connected as {nick} ({HELP})"));
        }
        self.connected = true;
        self.ever_connected = true;
        if let Some(room) = self.room.clone() {
            match request::<_, RoomInfo>(&self.socket, "join", &(room.as_str(),)).await {
                Ok(info) => self.screen.print(&room_line(&info)),
                Err(why) => {
                    self.screen.print(&format!("! cannot join #{room}: {why}"));
                    self.room = None;
                }
            }
        }
        while self.connected {
            let Some(line) = self.waiting.pop_front() else {
                break;
            };
            self.typed(&line).await;
        }
    }

    async fn typed(&mut self, line: &str) -> Flow {
        let command = parse(line);
        let outcome = match command {
            Command::Say("") => Ok(()),
            Command::Quit => return Flow::Quit,
            Command::Help => {
                self.screen.print(&format!("* {HELP}"));
                Ok(())
            }
            Command::Usage(usage) => Err(format!("usage: {usage}")),
            Command::Unknown(word) => Err(format!("unknown command {word} ({HELP})")),
            _ if !self.connected => {
                if self.waiting.len() < MAX_WAITING {
                    self.waiting.push_back(line.to_owned());
                    self.screen.print("* not connected: sent when reconnected");
                    Ok(())
                } else {
                    Err(format!(
                        "not connected, and {MAX_WAITING} lines already wait: not sent"
                    ))
                }
            }
            Command::Say(text) => request::<_, ()>(&self.socket, "message", &(text,)).await,
            Command::Join(room) => {
                request(&self.socket, "join", &(room,))
                    .await
                    .map(|info: RoomInfo| {
                        self.screen.print(&room_line(&info));
                        self.room = Some(info.name);
                    })
            }
            Command::Leave => request::<_, String>(&self.socket, "leave", &())
                .await
                .map(|room| {
                    self.screen.print(&format!("* you left #{room}"));
                    self.room = None;
                }),
            Command::Rooms => request::<_, Vec<RoomInfo>>(&self.socket, "rooms", &())
                .await
                .map(|rooms| {
                    if rooms.is_empty() {
                        self.screen.print("* no rooms yet: /join one");
                    }
                    rooms.iter().for_each(|r| self.screen.print(&room_line(r)));
                }),
            Command::Nick(nick) => request::<_, String>(&self.socket, "nick", &(nick,))
                .await
                .map(|nick| {
                    self.screen.print(&format!("* you are now {nick}"));
                    self.nick = Some(nick);
                }),
        };
        if let Err(why) = outcome {
            self.screen.print(&format!("! {why}"));
        }
        Flow::Continue
    }
}

/// Connect to `url`, take `nick`, join `room`, then chat until stdin ends
/// or `/quit`.
pub async fn run(url: &str, nick: Option<&str>, room: &str) -> Result<(), String> {
    let screen = Screen::terminal();
    let (lines_tx, lines) = unbounded();
    screen.read_input(lines_tx);
    let result = chat(
        url.to_owned(),
        nick.map(str::to_owned),
        room.to_owned(),
        screen.clone(),
        lines,
    )
    .await;
    screen.close();
    result
}

/// The client on any screen and input (the tests give their own).
async fn chat(
    url: String,
    nick: Option<String>,
    room: String,
    screen: Screen,
    lines: Lines,
) -> Result<(), String> {
    let (happenings_tx, happenings) = unbounded::<Happening>();
    let tell = |happenings: &UnboundedSender<Happening>| {
        let happenings = happenings.clone();
        move |happening| {
            let _ = happenings.unbounded_send(happening);
        }
    };
    let welcome = tell(&happenings_tx);
    let disconnected = tell(&happenings_tx);
    let refused = tell(&happenings_tx);
    // No nickname in the auth: the auth is fixed for every reconnection,
    // while the nickname may change; it is asked for after `welcome`.
    let client = Client::builder(&url)
        .on(
            "welcome",
            move |_socket: ClientSocket, args: Args, _ack: Option<ClientAck>| {
                if let Ok(nick) = args.get::<String>(0) {
                    welcome(Happening::Welcome(nick));
                }
                std::future::ready(())
            },
        )
        .on(
            "message",
            on_event("message", &screen, |m: ChatMessage| {
                format!("[#{}] <{}> {}", m.room, m.nick, m.text)
            }),
        )
        .on(
            "user joined",
            on_event("user joined", &screen, |n: Notice| {
                format!("* {} joined #{}", n.nick, n.room)
            }),
        )
        .on(
            "user left",
            on_event("user left", &screen, |n: Notice| {
                format!("* {} left #{}", n.nick, n.room)
            }),
        )
        .on(
            "nick changed",
            on_event("nick changed", &screen, |c: NickChange| {
                format!("* {} is now known as {} (#{})", c.old, c.new, c.room)
            }),
        )
        .on_disconnect(move |_socket: ClientSocket, reason| {
            disconnected(Happening::Disconnected(reason));
            std::future::ready(())
        })
        .on_connect_error(move |_socket: ClientSocket, message, _data| {
            refused(Happening::Refused(message));
            std::future::ready(())
        })
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let mut session = Session {
        socket: client.socket("/"),
        screen,
        nick,
        room: Some(room),
        connected: false,
        ever_connected: false,
        waiting: VecDeque::new(),
    };
    let typed = lines.map(Input::Line).chain(stream::iter([Input::End]));
    let mut inputs = stream::select(typed, happenings.map(Input::Happening));
    while let Some(input) = inputs.next().await {
        let flow = match input {
            Input::Line(line) => session.typed(&line).await,
            Input::End => Flow::Quit,
            Input::Happening(happening) => session.happened(happening).await,
        };
        if flow == Flow::Quit {
            break;
        }
    }
    client.disconnect().await;
    Ok(())
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
