//! The in-memory store: entries by key, bounded in bytes, evicting the least recently
//! used.
//!
//! OS concept: a bounded shared resource and a replacement policy. Memory is finite, so
//! like a page cache choosing which page to drop, the store drops the key that has gone
//! unused the longest (LRU) until the bytes fit `--cache-max-bytes` again. Recency is a
//! counter ("tick") bumped on every use; a `BTreeMap` from tick to key keeps the keys in
//! use order, so the victim is simply the first element (nginx keeps a linked list for
//! the same purpose; a tree avoids pointer juggling and `unsafe`).
//!
//! This type is plain data with no lock of its own: `Cache` wraps it in one mutex and
//! holds that only while calling these methods, never during network or disk I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use http::HeaderMap;

use super::entry::Entry;

/// Most variants kept under one key; an extra one replaces the oldest. Bounds the work a
/// lookup does for a response that varies on a header with many values.
const MAX_VARIANTS: usize = 16;

/// What a key holds: its variants and its place in the use order.
struct Slot {
    tick: u64,
    variants: Vec<Arc<Entry>>,
}

/// Entries that left the store, so the caller can delete their files outside the lock.
#[derive(Default)]
pub struct Removed {
    /// Dropped to make room (counted as evictions).
    pub evicted: Vec<Arc<Entry>>,
    /// Replaced by a newer copy of the same variant, or invalidated.
    pub replaced: Vec<Arc<Entry>>,
}

pub struct Store {
    max_bytes: usize,
    slots: HashMap<String, Slot>,
    /// Use order: the smallest tick is the least recently used key.
    recency: BTreeMap<u64, String>,
    next_tick: u64,
    bytes: usize,
    entries: usize,
}

impl Store {
    pub fn new(max_bytes: usize) -> Self {
        Store {
            max_bytes,
            slots: HashMap::new(),
            recency: BTreeMap::new(),
            next_tick: 0,
            bytes: 0,
            entries: 0,
        }
    }

    /// Bytes charged by all entries.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of entries (variants), not keys.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The variant under `key` stored for requests like `request`, marking the key used.
    pub fn find(&mut self, key: &str, request: &HeaderMap) -> Option<Arc<Entry>> {
        let tick = self.bump();
        let slot = self.slots.get_mut(key)?;
        let found = slot
            .variants
            .iter()
            .find(|entry| entry.matches(request))
            .cloned()?;
        self.recency.remove(&slot.tick);
        slot.tick = tick;
        self.recency.insert(tick, key.to_string());
        Some(found)
    }

    /// Every variant under `key` (to freshen them after a 304), without marking it used.
    pub fn variants(&self, key: &str) -> Vec<Arc<Entry>> {
        self.slots
            .get(key)
            .map_or_else(Vec::new, |slot| slot.variants.clone())
    }

    /// Stores `entry`, replacing the same variant if present, then evicts least recently
    /// used keys until the bytes fit. Returns what left the store. An entry larger than
    /// the whole store is refused (`None`).
    pub fn insert(&mut self, entry: Arc<Entry>) -> Option<Removed> {
        let size = entry.size();
        if size > self.max_bytes {
            return None;
        }
        let mut removed = Removed::default();
        let tick = self.bump();
        if let Some(slot) = self.slots.get(&entry.key) {
            self.recency.remove(&slot.tick);
        }
        self.recency.insert(tick, entry.key.clone());
        let slot = self.slots.entry(entry.key.clone()).or_insert_with(|| Slot {
            tick,
            variants: Vec::new(),
        });
        slot.tick = tick;
        if let Some(position) = slot.variants.iter().position(|old| old.variant == entry.variant) {
            removed.replaced.push(slot.variants.remove(position));
        } else if slot.variants.len() >= MAX_VARIANTS {
            removed.evicted.push(slot.variants.remove(0));
        }
        slot.variants.push(entry);
        for old in removed.replaced.iter().chain(&removed.evicted) {
            self.bytes -= old.size();
            self.entries -= 1;
        }
        self.bytes += size;
        self.entries += 1;
        while self.bytes > self.max_bytes {
            let Some((_, victim)) = self.recency.pop_first() else {
                break;
            };
            removed.evicted.extend(self.take(&victim));
        }
        Some(removed)
    }

    /// Removes every variant under `key` (invalidation after an unsafe method).
    pub fn remove(&mut self, key: &str) -> Vec<Arc<Entry>> {
        match self.slots.get(key) {
            Some(slot) => {
                let tick = slot.tick;
                self.recency.remove(&tick);
                self.take(key)
            }
            None => Vec::new(),
        }
    }

    /// Removes a key's slot and its accounting (its recency entry is the caller's job).
    fn take(&mut self, key: &str) -> Vec<Arc<Entry>> {
        let Some(slot) = self.slots.remove(key) else {
            return Vec::new();
        };
        for entry in &slot.variants {
            self.bytes -= entry.size();
            self.entries -= 1;
        }
        slot.variants
    }

    fn bump(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use http::{HeaderName, StatusCode, header};

    use super::*;
    use crate::proxy::cache::entry::Parts;

    fn entry(key: &str, accept: &str, body_len: usize) -> Arc<Entry> {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, "max-age=60".parse().unwrap());
        headers.insert(header::VARY, "accept".parse().unwrap());
        let mut request_headers = HeaderMap::new();
        request_headers.insert(header::ACCEPT, accept.parse().unwrap());
        let parts = Parts {
            key: key.into(),
            target: "/x".into(),
            status: StatusCode::OK,
            headers,
            body: vec![b'x'; body_len],
            request_headers,
            response_time: SystemTime::now(),
        };
        Arc::new(Entry::build(parts, Duration::ZERO, u64::MAX).unwrap())
    }

    fn accept(value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(HeaderName::from_static("accept"), value.parse().unwrap());
        map
    }

    #[test]
    fn evicts_least_recently_used_and_stays_under_the_limit() {
        let size = entry("a", "x", 1000).size();
        let mut store = Store::new(size * 3);
        for key in ["a", "b", "c"] {
            assert!(store.insert(entry(key, "x", 1000)).unwrap().evicted.is_empty());
        }
        // Using "a" makes "b" the least recently used.
        assert!(store.find("a", &accept("x")).is_some());
        let removed = store.insert(entry("d", "x", 1000)).unwrap();
        assert_eq!(removed.evicted.len(), 1);
        assert_eq!(removed.evicted[0].key, "b");
        assert!(store.bytes() <= size * 3);
        assert_eq!(store.len(), 3);
        assert!(store.find("b", &accept("x")).is_none());
        assert!(store.insert(entry("huge", "x", size * 4)).is_none());
    }

    #[test]
    fn variants_live_apart_and_replace_their_own_kind() {
        let mut store = Store::new(1 << 20);
        store.insert(entry("a", "json", 10));
        store.insert(entry("a", "html", 20));
        assert_eq!(store.len(), 2);
        assert_eq!(store.find("a", &accept("json")).unwrap().body.len(), 10);
        assert_eq!(store.find("a", &accept("html")).unwrap().body.len(), 20);
        assert!(store.find("a", &accept("xml")).is_none());
        let removed = store.insert(entry("a", "json", 30)).unwrap();
        assert_eq!(removed.replaced.len(), 1);
        assert_eq!(store.len(), 2);
        assert_eq!(store.remove("a").len(), 2);
        assert_eq!((store.len(), store.bytes()), (0, 0));
    }
}
