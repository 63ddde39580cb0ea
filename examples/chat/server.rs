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
//! Everything here is plain `socketio` API: handlers per event, rooms
//! (`join`, `leave`, `to(room)`), acknowledgements, and a little shared
//! state of our own to list rooms and nicknames.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use socketio::{AckSender, Args, ConnectRefusal, Server, SocketRef, Value};

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
        let _ = socket.to(&room).emit(
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

/// Answer the acknowledgement, if the client asked for one.
fn reply<T: Serialize>(ack: Option<AckSender>, reply: Reply<T>) {
    if let Some(ack) = ack {
        let _ = ack.send(&reply);
    }
}

/// The text argument at `index`, or an error for the reply.
fn text_arg(args: &Args, index: usize, what: &str) -> Result<String, String> {
    args.get::<String>(index)
        .map_err(|_| format!("expected the {what} as a string"))
}

/// Set up the chat on `server`'s main namespace.
pub fn install(server: &Server) {
    let chat = Arc::new(Chat::default());
    server.ns("/", |ns| {
        let state = chat.clone();
        ns.on_connect(move |socket: SocketRef, auth: Option<Value>| {
            let chat = state.clone();
            async move {
                let asked = auth.as_ref().and_then(|a| a.get("nick")).cloned();
                let nick = match asked {
                    None | Some(Value::Null) => {
                        format!("guest-{}", chat.guests.fetch_add(1, Ordering::Relaxed) + 1)
                    }
                    Some(Value::String(nick)) if valid_name(&nick) => nick,
                    Some(_) => return Err(ConnectRefusal::new("invalid nickname")),
                };
                {
                    // Check and take the nickname under one lock.
                    let mut users = chat.users();
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
                let _ = socket.emit("welcome", &(nick.as_str(),));
                Ok(())
            }
        });

        let state = chat.clone();
        ns.on(
            "join",
            move |socket: SocketRef, args: Args, ack: Option<AckSender>| {
                let chat = state.clone();
                async move {
                    let room = match text_arg(&args, 0, "room name") {
                        Ok(room) if valid_name(&room) => room,
                        Ok(_) => return reply::<()>(ack, Reply::Error("invalid room name".into())),
                        Err(why) => return reply::<()>(ack, Reply::Error(why)),
                    };
                    let Some((nick, current)) = chat.whois(&socket) else {
                        return;
                    };
                    if current.as_deref() != Some(room.as_str()) {
                        chat.leave_room(&socket);
                        let _ = socket.join(&room);
                        if let Some(user) = chat.users().get_mut(socket.id()) {
                            user.room = Some(room.clone());
                        }
                        let notice = Notice {
                            room: room.clone(),
                            nick: nick.clone(),
                        };
                        let _ = socket.to(&room).emit("user joined", &notice);
                        tracing::info!(%nick, %room, "joined");
                    }
                    reply(ack, Reply::Ok(chat.room_info(&room)));
                }
            },
        );

        let state = chat.clone();
        ns.on(
            "leave",
            move |socket: SocketRef, _args: Args, ack: Option<AckSender>| {
                let chat = state.clone();
                async move {
                    match chat.leave_room(&socket) {
                        Some(room) => reply(ack, Reply::Ok(room)),
                        None => reply::<()>(ack, Reply::Error("you are in no room".into())),
                    }
                }
            },
        );

        let state = chat.clone();
        ns.on(
            "rooms",
            move |_socket: SocketRef, _args: Args, ack: Option<AckSender>| {
                let chat = state.clone();
                async move { reply(ack, Reply::Ok(chat.all_rooms())) }
            },
        );

        let state = chat.clone();
        ns.on(
            "nick",
            move |socket: SocketRef, args: Args, ack: Option<AckSender>| {
                let chat = state.clone();
                async move {
                    let new = match text_arg(&args, 0, "nickname") {
                        Ok(nick) if valid_name(&nick) => nick,
                        Ok(_) => return reply::<()>(ack, Reply::Error("invalid nickname".into())),
                        Err(why) => return reply::<()>(ack, Reply::Error(why)),
                    };
                    let (old, room) = {
                        let mut users = chat.users();
                        if users.values().any(|u| u.nick == new) {
                            drop(users);
                            let taken = format!("nickname {new} is taken");
                            return reply::<()>(ack, Reply::Error(taken));
                        }
                        let Some(user) = users.get_mut(socket.id()) else {
                            return;
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
                        let _ = socket.to(&room).emit("nick changed", &change);
                    }
                    tracing::info!(%old, %new, "renamed");
                    reply(ack, Reply::Ok(new));
                }
            },
        );

        let state = chat.clone();
        ns.on(
            "message",
            move |socket: SocketRef, args: Args, ack: Option<AckSender>| {
                let chat = state.clone();
                async move {
                    let text = match text_arg(&args, 0, "message") {
                        Ok(text) => text,
                        Err(why) => return reply::<()>(ack, Reply::Error(why)),
                    };
                    let Some((nick, room)) = chat.whois(&socket) else {
                        return;
                    };
                    let Some(room) = room else {
                        let why = "join a room first (/join NAME)".into();
                        return reply::<()>(ack, Reply::Error(why));
                    };
                    // Everyone in the room but the sender, who knows what
                    // they said.
                    let message = ChatMessage { room, nick, text };
                    let _ = socket.to(&message.room).emit("message", &message);
                    reply(ack, Reply::Ok(()));
                }
            },
        );

        let state = chat.clone();
        ns.on_disconnect(
            move |socket: SocketRef, reason: socketio::DisconnectReason| {
                let chat = state.clone();
                async move {
                    chat.leave_room(&socket);
                    if let Some(user) = chat.users().remove(socket.id()) {
                        tracing::info!(nick = %user.nick, %reason, "disconnected");
                    }
                }
            },
        );
    });
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
