//! One timer scheme for every machine of the core.
//!
//! A machine keeps its deadlines in a [`TimerTable`] keyed by what each
//! deadline is for: an enum of timer kinds for a machine with a fixed set
//! (`Ping`, `PongTimeout`, `Upgrade`...), or a key that names the entity as
//! well when one machine serves many (`(SessionKey, Kind)`, an ack id). A key
//! has at most one deadline: setting it again moves it, stopping it removes
//! it. The machine's `poll_timeout` is [`TimerTable::next_deadline`], and its
//! `handle_timeout(now)` drains [`TimerTable::pop_expired`] in deadline order
//! (ties in key order), so expiry is deterministic in virtual time.
//!
//! Both indexes are ordered maps: every operation is O(log n) and exact (no
//! stale entries to skip, no memory held by cancelled deadlines), which keeps
//! the table bounded by the number of live keys.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;
use std::time::Instant;

/// Deadlines keyed by what they are for; see the module documentation.
#[derive(Debug, Clone)]
pub struct TimerTable<K: Ord + Clone> {
    by_deadline: BTreeSet<(Instant, K)>,
    by_key: BTreeMap<K, Instant>,
}

impl<K: Ord + Clone> Default for TimerTable<K> {
    fn default() -> Self {
        TimerTable {
            by_deadline: BTreeSet::new(),
            by_key: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> TimerTable<K> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `key` to expire at `at`, replacing its previous deadline.
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            if old == at {
                return;
            }
            self.by_deadline.remove(&(old, key.clone()));
        }
        self.by_deadline.insert((at, key));
    }

    /// Disarms `key`; returns the deadline it had.
    pub fn stop(&mut self, key: &K) -> Option<Instant> {
        let at = self.by_key.remove(key)?;
        self.by_deadline.remove(&(at, key.clone()));
        Some(at)
    }

    /// Disarms every key in `range` (all timers of one session, say, when
    /// keys start with the session).
    pub fn stop_range<R: RangeBounds<K>>(&mut self, range: R) {
        let keys: Vec<(K, Instant)> = self
            .by_key
            .range(range)
            .map(|(k, at)| (k.clone(), *at))
            .collect();
        for (key, at) in keys {
            self.by_key.remove(&key);
            self.by_deadline.remove(&(at, key));
        }
    }

    /// The deadline of `key`, if armed.
    pub fn get(&self, key: &K) -> Option<Instant> {
        self.by_key.get(key).copied()
    }

    /// Whether `key` is armed.
    pub fn is_set(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }

    /// The earliest deadline: what the machine's `poll_timeout` returns.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// Disarms and returns the earliest key whose deadline is at or before
    /// `now`; `None` once nothing more has expired.
    pub fn pop_expired(&mut self, now: Instant) -> Option<K> {
        self.pop_expired_entry(now).map(|(_, key)| key)
    }

    /// Like [`TimerTable::pop_expired`], with the deadline the key had: a
    /// machine that counts the next deadline from when this one was due
    /// (not from when a late timer fired) needs it.
    pub fn pop_expired_entry(&mut self, now: Instant) -> Option<(Instant, K)> {
        let (at, _) = self.by_deadline.first()?;
        if *at > now {
            return None;
        }
        let (at, key) = self.by_deadline.pop_first()?;
        self.by_key.remove(&key);
        Some((at, key))
    }

    /// The armed keys, in key order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.by_key.keys()
    }

    /// How many keys are armed.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no key is armed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Disarms everything.
    pub fn clear(&mut self) {
        self.by_key.clear();
        self.by_deadline.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Kind {
        Ping,
        Pong,
        Upgrade,
    }

    #[test]
    fn expires_in_deadline_order_then_key_order() {
        let t0 = Instant::now();
        let mut table = TimerTable::new();
        table.set(Kind::Upgrade, t0 + Duration::from_secs(2));
        table.set(Kind::Pong, t0 + Duration::from_secs(1));
        table.set(Kind::Ping, t0 + Duration::from_secs(1));
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(table.pop_expired(t0), None);
        let now = t0 + Duration::from_secs(5);
        assert_eq!(table.pop_expired(now), Some(Kind::Ping));
        assert_eq!(table.pop_expired(now), Some(Kind::Pong));
        assert_eq!(
            table.pop_expired_entry(now),
            Some((t0 + Duration::from_secs(2), Kind::Upgrade))
        );
        assert_eq!(table.pop_expired(now), None);
        assert!(table.is_empty());
    }

    #[test]
    fn set_moves_and_stop_removes() {
        let t0 = Instant::now();
        let mut table = TimerTable::new();
        table.set(Kind::Ping, t0 + Duration::from_secs(1));
        table.set(Kind::Ping, t0 + Duration::from_secs(3));
        assert_eq!(table.len(), 1);
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(2)), None);
        assert_eq!(table.get(&Kind::Ping), Some(t0 + Duration::from_secs(3)));
        assert_eq!(table.stop(&Kind::Ping), Some(t0 + Duration::from_secs(3)));
        assert_eq!(table.next_deadline(), None);
        assert_eq!(table.stop(&Kind::Ping), None);
    }

    #[test]
    fn stop_range_clears_one_entity() {
        let t0 = Instant::now();
        let mut table = TimerTable::new();
        for session in 0..3u32 {
            table.set((session, Kind::Ping), t0);
            table.set((session, Kind::Upgrade), t0);
        }
        table.stop_range((1, Kind::Ping)..=(1, Kind::Upgrade));
        assert_eq!(table.len(), 4);
        assert!(!table.is_set(&(1, Kind::Ping)));
        assert!(table.is_set(&(2, Kind::Ping)));
    }
}
