//! Answers remembered for a while: what listeners would otherwise ask the database
//! on every request (does this tenant exist, is this key unknown, is this tenant's
//! rejection sample full). Each answer keeps for its own time; past `max` answers
//! the memory starts over, so a flood of distinct questions cannot grow it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub struct Recent<K, V> {
    max: usize,
    entries: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    pub fn new(max: usize) -> Self {
        Recent {
            max,
            entries: RwLock::default(),
        }
    }

    /// The answer to `key`, unless it was never given or has expired.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let (value, until) = entries.get(key)?;
        (Instant::now() < *until).then(|| value.clone())
    }

    /// Remembers `value` for `ttl`.
    pub fn put(&self, key: K, value: V, ttl: Duration) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.max {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now() + ttl));
    }
}

impl<K: Eq + Hash, V: Clone> Default for Recent<K, V> {
    fn default() -> Self {
        Recent::new(10_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_the_memory_is_bounded() {
        let recent: Recent<String, bool> = Recent::new(2);
        recent.put("a".into(), true, Duration::from_secs(60));
        recent.put("b".into(), false, Duration::ZERO);
        assert_eq!(recent.get("a"), Some(true));
        assert_eq!(recent.get("b"), None, "expired at once");
        recent.put("c".into(), true, Duration::from_secs(60));
        assert_eq!(recent.get("a"), None, "a third answer starts over");
        assert_eq!(recent.get("c"), Some(true));
    }
}
