//! The chat server: users with nicknames, in one room at a time.
//!
//! Events the client sends (each answered with a [`Reply`] when the client
//! asks for an acknowledgement):
//!
//! | event | arguments | reply |
//! |---|---|---|
//! | `join` | room name | the room's [`RoomInfo`] |
//! | `leave` | none | the room left |
//! | `rooms` | none | every [`RoomInfo`], by name |
//! | `nick` | new nickname | the new nickname |
//! | `message` | text | nothing (`null`) |
//!
//! Events the server sends: `welcome` (your nickname), `message`
//! ([`ChatMessage`]), `user joined` and `user left` ([`Notice`]),
//! `nick changed` ([`NickChange`]). The nickname comes from the connection's
//! auth object (`{"nick": "alice"}`), else a `guest-N` one is given.
//!
//! Everything here is plain `socketio` API: a class-style namespace
//! (`#[socketio::namespace]`: one `on_<event>` method per event, answering
//! with its return value), rooms (`join`, `leave`, `to(room)`), and a
//! little shared state of our own to list rooms and nicknames.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use socketio::extract::{Ack, AckSink, IntoAck, TryData};
use socketio::{ArgsError, ConnectRefusal, DisconnectReason, Server, SocketRef, Value};

/// A message said in a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The room.
    pub room: String,
    /// The sender's nickname.
    pub nick: String,
    /// What they said.
    pub text: String,
}

/// Someone joined or left a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// The room.
    pub room: String,
    /// Their nickname.
    pub nick: String,
}

/// Someone in your room changed nickname.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NickChange {
    /// The room.
    pub room: String,
    /// The old nickname.
    pub old: String,
    /// The new one.
    pub new: String,
}

/// A room and who is in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's name.
    pub name: String,
    /// The nicknames of its members, sorted.
    pub users: Vec<String>,
}

/// The answer to a request: `{"ok": value}` or `{"error": "why"}`, easy to
/// read from JavaScript or Python clients too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply<T> {
    /// Done.
    Ok(T),
    /// Refused, with the reason.
    Error(String),
}

/// One connected user.
struct User {
    nick: String,
    room: Option<String>,
}

/// What the server remembers besides the sockets: who is who, and where.
/// (Socket.IO rooms route the messages; this map only answers `rooms` and
/// keeps nicknames unique.)
#[derive(Default)]
struct Chat {
    /// By socket id.
    users: Mutex<HashMap<String, User>>,
    guests: AtomicU64,
}

impl Chat {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<String, User>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn room_info(&self, room: &str) -> RoomInfo {
        let mut users: Vec<String> = self
            .users()
            .values()
            .filter(|u| u.room.as_deref() == Some(room))
            .map(|u| u.nick.clone())
            .collect();
        users.sort();
        RoomInfo {
            name: room.to_owned(),
            users,
        }
    }

    fn all_rooms(&self) -> Vec<RoomInfo> {
        let mut rooms: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for user in self.users().values() {
            if let Some(room) = &user.room {
                rooms
                    .entry(room.clone())
                    .or_default()
                    .push(user.nick.clone());
            }
        }
        rooms
            .into_iter()
            .map(|(name, mut users)| {
                users.sort();
                RoomInfo { name, users }
            })
            .collect()
    }

    /// The user's nickname and room.
    fn whois(&self, socket: &SocketRef) -> Option<(String, Option<String>)> {
        let users = self.users();
        let user = users.get(socket.id())?;
        Some((user.nick.clone(), user.room.clone()))
    }

    /// Take the socket out of its room, telling the others there.
    fn leave_room(&self, socket: &SocketRef) -> Option<String> {
        let (nick, room) = {
            let mut users = self.users();
            let user = users.get_mut(socket.id())?;
            (user.nick.clone(), user.room.take()?)
        };
        let _ = socket.leave(&room);
        socket.to(&room).emit(
            "user left",
            &Notice {
                room: room.clone(),
                nick: nick.clone(),
            },
        );
        tracing::info!(%nick, %room, "left");
        Some(room)
    }
}

/// Nicknames and room names: 1 to 32 characters, no spaces.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.chars().count()) && !name.chars().any(char::is_whitespace)
}

/// A [`Reply`] answers as one argument: the handlers below return it.
impl<T: Serialize> IntoAck for Reply<T> {
    fn answer<S: AckSink>(self, sink: S) {
        Ack(self).answer(sink)
    }
}

/// The text argument, or an error for the reply.
fn text(arg: Result<String, ArgsError>, what: &str) -> Result<String, String> {
    arg.map_err(|_| format!("expected the {what} as a string"))
}

/// The handlers: `on_<event>` methods (see the module docs for the events).
#[socketio::namespace]
impl Chat {
    async fn on_connect(
        &self,
        socket: SocketRef,
        auth: Option<Value>,
    ) -> Result<(), ConnectRefusal> {
        let asked = auth.as_ref().and_then(|a| a.get("nick")).cloned();
        let nick = match asked {
            None | Some(Value::Null) => {
                format!("guest-{}", self.guests.fetch_add(1, Ordering::Relaxed) + 1)
            }
            Some(Value::String(nick)) if valid_name(&nick) => nick,
            Some(_) => return Err(ConnectRefusal::new("invalid nickname")),
        };
        {
            // Check and take the nickname under one lock.
            let mut users = self.users();
            if users.values().any(|u| u.nick == nick) {
                return Err(ConnectRefusal::new(format!("nickname {nick} is taken")));
            }
            let user = User {
                nick: nick.clone(),
                room: None,
            };
            users.insert(socket.id().to_owned(), user);
        }
        tracing::info!(%nick, id = socket.id(), "connected");
        socket.emit("welcome", &(nick.as_str(),));
        Ok(())
    }

    async fn on_join(&self, socket: SocketRef, TryData(room): TryData<String>) -> Reply<RoomInfo> {
        let room = match text(room, "room name") {
            Ok(room) if valid_name(&room) => room,
            Ok(_) => return Reply::Error("invalid room name".into()),
            Err(why) => return Reply::Error(why),
        };
        let Some((nick, current)) = self.whois(&socket) else {
            return Reply::Error("unknown user".into());
        };
        if current.as_deref() != Some(room.as_str()) {
            self.leave_room(&socket);
            let _ = socket.join(&room);
            if let Some(user) = self.users().get_mut(socket.id()) {
                user.room = Some(room.clone());
            }
            let notice = Notice {
                room: room.clone(),
                nick: nick.clone(),
            };
            socket.to(&room).emit("user joined", &notice);
            tracing::info!(%nick, %room, "joined");
        }
        Reply::Ok(self.room_info(&room))
    }

    async fn on_leave(&self, socket: SocketRef) -> Reply<String> {
        match self.leave_room(&socket) {
            Some(room) => Reply::Ok(room),
            None => Reply::Error("you are in no room".into()),
        }
    }

    async fn on_rooms(&self) -> Reply<Vec<RoomInfo>> {
        Reply::Ok(self.all_rooms())
    }

    async fn on_nick(&self, socket: SocketRef, TryData(new): TryData<String>) -> Reply<String> {
        let new = match text(new, "nickname") {
            Ok(nick) if valid_name(&nick) => nick,
            Ok(_) => return Reply::Error("invalid nickname".into()),
            Err(why) => return Reply::Error(why),
        };
        let (old, room) = {
            let mut users = self.users();
            if users.values().any(|u| u.nick == new) {
                return Reply::Error(format!("nickname {new} is taken"));
            }
            let Some(user) = users.get_mut(socket.id()) else {
                return Reply::Error("unknown user".into());
            };
            let old = std::mem::replace(&mut user.nick, new.clone());
            (old, user.room.clone())
        };
        if let Some(room) = room {
            let change = NickChange {
                room: room.clone(),
                old: old.clone(),
                new: new.clone(),
            };
            socket.to(&room).emit("nick changed", &change);
        }
        tracing::info!(%old, %new, "renamed");
        Reply::Ok(new)
    }

    async fn on_message(&self, socket: SocketRef, TryData(text_arg): TryData<String>) -> Reply<()> {
        let text = match text(text_arg, "message") {
            Ok(text) => text,
            Err(why) => return Reply::Error(why),
        };
        let Some((nick, room)) = self.whois(&socket) else {
            return Reply::Error("unknown user".into());
        };
        let Some(room) = room else {
            return Reply::Error("join a room first (/join NAME)".into());
        };
        // Everyone in the room but the sender, who knows what they said.
        let message = ChatMessage { room, nick, text };
        socket.to(&message.room).emit("message", &message);
        Reply::Ok(())
    }

    async fn on_disconnect(&self, socket: SocketRef, reason: DisconnectReason) {
        self.leave_room(&socket);
        if let Some(user) = self.users().remove(socket.id()) {
            tracing::info!(nick = %user.nick, %reason, "disconnected");
        }
    }
}

/// Set up the chat on `server`'s main namespace.
pub fn install(server: &Server) {
    server.ns_class("/", Chat::default());
}

/// Build the chat server and serve it on `addr`; returns it and the bound
/// address (useful with port 0). The tests' server; `chat` itself starts
/// the one of `web.rs`, with the page.
#[cfg_attr(not(test), allow(dead_code))]
pub async fn start(addr: SocketAddr) -> socketio::Result<(Server, SocketAddr)> {
    let server = Server::builder().build();
    install(&server);
    let bound = server.listen(addr).await?;
    Ok((server, bound))
}
