//! Room membership of one namespace, and the selection of broadcast
//! receivers.
//!
//! This is the "adapter" seam of the reference implementation: the server
//! state machine only asks it who is in which room and who receives a
//! broadcast. [`LocalAdapter`] keeps everything in this process; a cluster
//! adapter (for example one speaking the `@socket.io/redis-adapter`
//! protocol) would keep the same local view and additionally forward
//! broadcasts and room operations to other nodes.
//!
//! Ordered maps keep every iteration deterministic (sans-IO: the same inputs
//! give the same outputs).

use std::collections::{BTreeMap, BTreeSet};

use crate::Str;

/// Who receives a broadcast, in room terms.
///
/// Every socket is in the room named by its own id, so excluding a socket is
/// excluding that room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomSelector {
    /// Receivers are the members of any of these rooms; empty means every
    /// socket of the namespace.
    pub rooms: Vec<Str>,
    /// Members of any of these rooms are left out.
    pub except: Vec<Str>,
}

impl RoomSelector {
    /// Whether a socket that is in `socket_rooms` is selected.
    pub fn includes<'a>(&self, mut socket_rooms: impl Iterator<Item = &'a Str> + Clone) -> bool {
        let included =
            self.rooms.is_empty() || socket_rooms.clone().any(|room| self.rooms.contains(room));
        included && !socket_rooms.any(|room| self.except.contains(room))
    }
}

/// In-memory room membership of one namespace.
#[derive(Debug, Default)]
pub struct LocalAdapter {
    /// Room name to its members.
    rooms: BTreeMap<Str, BTreeSet<Str>>,
    /// Socket id to the rooms it is in.
    socket_rooms: BTreeMap<Str, BTreeSet<Str>>,
    /// Rooms created (`true`) and deleted (`false`) since the last
    /// [`LocalAdapter::take_room_changes`], when tracked; the flag says
    /// whether a socket's own room counts.
    room_log: Option<(bool, Vec<(Str, bool)>)>,
}

impl LocalAdapter {
    /// An adapter with no socket.
    pub fn new() -> LocalAdapter {
        LocalAdapter::default()
    }

    /// Record rooms created and deleted from now on (a cluster format
    /// that gives rooms channels of their own listens on them), own rooms
    /// of sockets too when `own_ids`.
    pub fn track_rooms(&mut self, own_ids: bool) {
        self.room_log.get_or_insert((own_ids, Vec::new()));
    }

    /// Rooms created (`true`) and deleted (`false`) since the last call,
    /// in order.
    pub fn take_room_changes(&mut self) -> Vec<(Str, bool)> {
        self.room_log
            .as_mut()
            .map(|(_, log)| std::mem::take(log))
            .unwrap_or_default()
    }

    fn log_room(&mut self, socket: &Str, room: &Str, created: bool) {
        if let Some((own_ids, log)) = &mut self.room_log {
            if *own_ids || socket != room {
                log.push((room.clone(), created));
            }
        }
    }

    /// Put `socket` in `room` (idempotent).
    pub fn join(&mut self, socket: &Str, room: &Str) {
        if self.room_log.is_some() && !self.rooms.contains_key(room) {
            self.log_room(socket, room, true);
        }
        self.socket_rooms
            .entry(socket.clone())
            .or_default()
            .insert(room.clone());
        self.rooms
            .entry(room.clone())
            .or_default()
            .insert(socket.clone());
    }

    /// Take `socket` out of `room`; empty rooms are forgotten.
    pub fn leave(&mut self, socket: &Str, room: &Str) {
        if let Some(rooms) = self.socket_rooms.get_mut(socket) {
            rooms.remove(room);
            if rooms.is_empty() {
                self.socket_rooms.remove(socket);
            }
        }
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(socket);
            if members.is_empty() {
                self.rooms.remove(room);
                self.log_room(socket, room, false);
            }
        }
    }

    /// Take `socket` out of every room; returns the rooms it was in.
    pub fn leave_all(&mut self, socket: &Str) -> Vec<Str> {
        let rooms = self.socket_rooms.remove(socket).unwrap_or_default();
        for room in &rooms {
            if let Some(members) = self.rooms.get_mut(room) {
                members.remove(socket);
                if members.is_empty() {
                    self.rooms.remove(room);
                    self.log_room(socket, room, false);
                }
            }
        }
        rooms.into_iter().collect()
    }

    /// The rooms `socket` is in (sorted).
    pub fn rooms_of(&self, socket: &str) -> Vec<Str> {
        self.socket_rooms
            .get(socket)
            .map(|rooms| rooms.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The members of `room` (sorted).
    pub fn sockets_in(&self, room: &str) -> Vec<Str> {
        self.rooms
            .get(room)
            .map(|members| members.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every room that has a member (sorted).
    pub fn all_rooms(&self) -> Vec<Str> {
        self.rooms.keys().cloned().collect()
    }

    /// Whether no socket is in any room.
    pub fn is_empty(&self) -> bool {
        self.socket_rooms.is_empty()
    }

    /// The receivers of a broadcast: each selected socket exactly once, in
    /// id order, however many of the target rooms it is in.
    pub fn select(&self, selector: &RoomSelector) -> Vec<Str> {
        let mut excluded = BTreeSet::new();
        for room in &selector.except {
            if let Some(members) = self.rooms.get(room) {
                excluded.extend(members.iter());
            }
        }
        if selector.rooms.is_empty() {
            let mut selected = Vec::with_capacity(self.socket_rooms.len());
            selected.extend(
                self.socket_rooms
                    .keys()
                    .filter(|socket| !excluded.contains(socket))
                    .cloned(),
            );
            return selected;
        }
        if let [room] = selector.rooms.as_slice() {
            // One room (the common case, and every direct emit): its members
            // are already sorted and distinct, so they need no set.
            return self.rooms.get(room).map_or_else(Vec::new, |members| {
                let mut selected = Vec::with_capacity(members.len());
                selected.extend(
                    members
                        .iter()
                        .filter(|socket| !excluded.contains(socket))
                        .cloned(),
                );
                selected
            });
        }
        let mut selected = BTreeSet::new();
        for room in &selector.rooms {
            if let Some(members) = self.rooms.get(room) {
                selected.extend(members.iter().filter(|socket| !excluded.contains(socket)));
            }
        }
        selected.into_iter().cloned().collect()
    }

    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.rooms.len(), self.socket_rooms.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &'static str) -> Str {
        Str::from_static(text)
    }

    #[test]
    fn union_of_rooms_selects_each_socket_once() {
        let mut adapter = LocalAdapter::new();
        for socket in ["a", "b", "c"] {
            adapter.join(&s(socket), &s(socket));
        }
        for room in ["r1", "r2", "r3"] {
            adapter.join(&s("a"), &s(room));
        }
        adapter.join(&s("b"), &s("r2"));
        let selector = RoomSelector {
            rooms: vec![s("r1"), s("r2"), s("r3")],
            except: vec![],
        };
        assert_eq!(adapter.select(&selector), [s("a"), s("b")]);
        let all = RoomSelector::default();
        assert_eq!(adapter.select(&all), [s("a"), s("b"), s("c")]);
        let except = RoomSelector {
            rooms: vec![],
            except: vec![s("r2"), s("c")],
        };
        assert!(adapter.select(&except).is_empty());
        let except = RoomSelector {
            rooms: vec![s("r1"), s("b")],
            except: vec![s("a")],
        };
        assert_eq!(adapter.select(&except), [s("b")]);
    }

    #[test]
    fn leaving_forgets_empty_rooms() {
        let mut adapter = LocalAdapter::new();
        adapter.join(&s("a"), &s("a"));
        adapter.join(&s("a"), &s("r"));
        adapter.join(&s("b"), &s("r"));
        adapter.leave(&s("a"), &s("r"));
        assert_eq!(adapter.sockets_in("r"), [s("b")]);
        assert_eq!(adapter.rooms_of("a"), [s("a")]);
        assert_eq!(adapter.leave_all(&s("b")), [s("r")]);
        assert_eq!(adapter.leave_all(&s("a")), [s("a")]);
        assert_eq!(adapter.sizes(), (0, 0));
        assert!(adapter.is_empty());
    }

    #[test]
    fn selector_matches_room_lists() {
        let selector = RoomSelector {
            rooms: vec![s("r")],
            except: vec![s("x")],
        };
        assert!(selector.includes([s("a"), s("r")].iter()));
        assert!(!selector.includes([s("a")].iter()));
        assert!(!selector.includes([s("r"), s("x")].iter()));
        assert!(RoomSelector::default().includes([s("a")].iter()));
    }
}
