//! Deadlines by key, earliest first: the scheduler's settle and retry timers.
//!
//! One timer per key: setting a key again moves its deadline. The scheduler sleeps
//! until [`Deadlines::next`] and takes what is due with [`Deadlines::pop_due`].

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use tokio::time::Instant;

pub(crate) struct Deadlines<K> {
    /// Every deadline with its key, in time order (the key breaks ties).
    by_time: BTreeSet<(Instant, K)>,
    /// Each key's deadline, to find its place in `by_time`.
    by_key: HashMap<K, Instant>,
}

impl<K: Ord + Hash + Clone> Deadlines<K> {
    pub(crate) fn new() -> Self {
        Deadlines {
            by_time: BTreeSet::new(),
            by_key: HashMap::new(),
        }
    }

    /// Sets `key` due at `at`, replacing an earlier deadline of the same key.
    pub(crate) fn set(&mut self, key: K, at: Instant) {
        self.remove(&key);
        self.by_time.insert((at, key.clone()));
        self.by_key.insert(key, at);
    }

    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(at) = self.by_key.remove(key) {
            self.by_time.remove(&(at, key.clone()));
        }
    }

    pub(crate) fn contains(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns the keys due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Vec<K> {
        let mut due = Vec::new();
        while self.by_time.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, key)) = self.by_time.pop_first() {
                self.by_key.remove(&key);
                due.push(key);
            }
        }
        due
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keys_come_due_in_time_order_and_a_reset_moves_them() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut d = Deadlines::new();
        d.set("b", ms(20));
        d.set("a", ms(10));
        d.set("c", ms(30));
        assert_eq!(d.next(), Some(ms(10)));
        d.set("a", ms(40)); // moved, not added
        assert_eq!(d.next(), Some(ms(20)));
        assert_eq!(d.pop_due(ms(5)), Vec::<&str>::new());
        assert_eq!(d.pop_due(ms(30)), ["b", "c"]);
        assert!(d.contains(&"a") && !d.contains(&"b"));
        d.remove(&"a");
        assert!(d.is_empty() && d.next().is_none());
    }
}
