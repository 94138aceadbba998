//! Every timeout of every connection in one structure, so the loop knows how long it
//! may sleep: until the earliest deadline.
//!
//! OS concept: timers without threads. A thread per connection can let the kernel time
//! each wait (`SO_RCVTIMEO`); one thread waiting on ten thousand sockets cannot, so it
//! keeps the deadlines itself and passes the nearest one to `epoll_wait(2)` as its
//! timeout. nginx keeps its timers in a red-black tree, Go's runtime in a 4-ary heap per
//! processor; this is a binary heap (`std::collections::BinaryHeap`).
//!
//! Deadlines move on every request (idle, then reading a head, then answering...), and
//! a heap cannot move an entry. So entries are never removed early ("lazy deletion", as
//! Go's timers do): a connection whose deadline moved later keeps its old, earlier
//! entry, which pops, finds the connection's real deadline still ahead, and is pushed
//! again for it. An entry is pushed only when a deadline moves earlier than the one in
//! the heap, so most requests cost no heap operation at all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// One entry: when, and for which connection (its slot and generation).
type Entry = Reverse<(Instant, usize, u64)>;

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Entry>,
}

impl Timers {
    /// Wakes connection (`slot`, `generation`) at `at`.
    pub fn schedule(&mut self, at: Instant, slot: usize, generation: u64) {
        self.heap.push(Reverse((at, slot, generation)));
    }

    /// The earliest deadline in the heap.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// An entry due by `now`, if any: `(at, slot, generation)`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, usize, u64)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every entry, for a rebuild from the connections' own deadlines (when stale
    /// entries pile up).
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_pop_in_deadline_order_and_only_when_due() {
        let start = Instant::now();
        let mut timers = Timers::default();
        for (offset, slot) in [(30, 3), (10, 1), (20, 2)] {
            timers.schedule(start + Duration::from_millis(offset), slot, 0);
        }
        assert_eq!(timers.next(), Some(start + Duration::from_millis(10)));
        assert_eq!(timers.pop_due(start), None, "nothing is due yet");
        let later = start + Duration::from_millis(25);
        let due: Vec<usize> = std::iter::from_fn(|| timers.pop_due(later))
            .map(|(_, slot, _)| slot)
            .collect();
        assert_eq!(due, [1, 2]);
        assert_eq!(timers.len(), 1);
    }
}
