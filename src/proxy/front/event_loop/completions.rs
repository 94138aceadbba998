//! The way back from the workers to the loop: a queue of reports and a `mio::Waker`.
//!
//! OS concept: waking a thread that sleeps in `epoll_wait(2)`. A worker cannot touch the
//! loop's connections, so it leaves a report in a queue and wakes the loop through an
//! `eventfd(2)` the loop's epoll also watches (that is all `mio::Waker` is). Each wake
//! is a system call for the worker and, if the loop slept, a context switch for it, so
//! the design avoids them where it can:
//! - A worker that wrote the whole answer (nearly every answer) only marks it done in
//!   the connection's `AnswerSlot`, an atomic, and wakes nobody. The loop looks at the
//!   slot when it next has a reason to (the client's next request arrives, a timer
//!   fires). Only when the loop is already waiting on that answer (a pipelined request
//!   is queued behind it) does it ask to be woken (`AnswerSlot::watch`).
//! - A connection to close, or an unwritten rest (`Handback::unwritten`), is always
//!   reported: the loop must act on it.
//! - Several reports before the loop wakes cost one wake-up (`woken`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::Waker;
use parking_lot::Mutex;

use crate::http1::upgrade::OnUpgrade;
use crate::proxy::pool::handback::{Handback, Rest};

/// What a report asks the loop to do with its connection.
pub enum Report {
    /// Look at the connection's answer slot: its answer is out (or it must close).
    Look,
    /// Write the rest of an answer.
    Rest(Rest),
    /// Write this `101` head, then give the connection to its new protocol.
    Switched(Vec<u8>, Box<dyn OnUpgrade>),
}

/// The queue of one loop thread and the means to wake it.
pub struct Completions {
    /// Protects the reports the loop has not taken yet: `(slot, generation, report)`.
    /// Held only to push one or to swap the whole list out.
    queue: Mutex<Vec<(usize, u64, Report)>>,
    /// Set by the first report after the loop last emptied the queue; the reports after
    /// it need no wake-up of their own.
    woken: AtomicBool,
    waker: Waker,
    /// The origin of the `at` instants workers store as numbers in `AnswerSlot`s.
    epoch: Instant,
}

impl Completions {
    pub fn new(waker: Waker) -> Self {
        Completions {
            queue: Mutex::new(Vec::new()),
            woken: AtomicBool::new(false),
            waker,
            epoch: Instant::now(),
        }
    }

    fn report(&self, slot: usize, generation: u64, report: Report) {
        self.queue.lock().push((slot, generation, report));
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.wake();
        }
    }

    /// Wakes the loop (also used to tell it to stop).
    pub fn wake(&self) {
        if let Err(error) = self.waker.wake() {
            log::warn!("cannot wake the event loop: {error}");
        }
    }

    /// Every report since the last call, for the loop thread.
    pub fn take(&self, into: &mut Vec<(usize, u64, Report)>) {
        // Cleared before the queue is emptied: a report pushed after this wakes again.
        self.woken.store(false, Ordering::Release);
        std::mem::swap(&mut *self.queue.lock(), into);
    }
}

const PENDING: u8 = 0;
/// Pending, and the loop asked to be woken when it is done.
const WATCHED: u8 = 1;
const DONE_OPEN: u8 = 2;
const DONE_CLOSED: u8 = 3;

/// Whether a worker's answer on one connection is out, shared by the worker and the
/// loop through atomics: no lock, and no wake-up unless the loop asked for one.
pub struct AnswerSlot {
    state: AtomicU8,
    /// When the answer was out, in nanoseconds after `Completions::epoch`; written
    /// before `state` leaves PENDING (release), read after it (acquire).
    at: AtomicU64,
}

/// How an answer ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub keep_open: bool,
    /// When it was out: the keep-alive timeout counts from here.
    pub at: Instant,
}

impl AnswerSlot {
    pub fn new() -> Arc<Self> {
        Arc::new(AnswerSlot {
            state: AtomicU8::new(PENDING),
            at: AtomicU64::new(0),
        })
    }

    /// The outcome, once the worker has written the whole answer.
    pub fn outcome(&self, completions: &Completions) -> Option<Outcome> {
        let keep_open = match self.state.load(Ordering::Acquire) {
            DONE_OPEN => true,
            DONE_CLOSED => false,
            _ => return None,
        };
        let at = completions.epoch + Duration::from_nanos(self.at.load(Ordering::Relaxed));
        Some(Outcome { keep_open, at })
    }

    /// Asks to be woken when the answer is out. False when it already is (look at
    /// `outcome` now): then no report will come.
    pub fn watch(&self) -> bool {
        match self
            .state
            .compare_exchange(PENDING, WATCHED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == WATCHED,
        }
    }
}

/// A worker's way back to one connection of one loop.
pub struct LoopHandback {
    completions: Arc<Completions>,
    answer: Arc<AnswerSlot>,
    slot: usize,
    generation: u64,
    reported: bool,
}

impl LoopHandback {
    pub fn new(
        completions: &Arc<Completions>,
        answer: &Arc<AnswerSlot>,
        slot: usize,
        generation: u64,
    ) -> Box<Self> {
        Box::new(LoopHandback {
            completions: Arc::clone(completions),
            answer: Arc::clone(answer),
            slot,
            generation,
            reported: false,
        })
    }

    fn finish(&mut self, keep_open: bool) {
        self.reported = true;
        let since = self.completions.epoch.elapsed();
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        self.answer.at.store(nanos, Ordering::Relaxed);
        let state = if keep_open { DONE_OPEN } else { DONE_CLOSED };
        let before = self.answer.state.swap(state, Ordering::AcqRel);
        if before == WATCHED || !keep_open {
            self.completions.report(self.slot, self.generation, Report::Look);
        }
    }
}

impl Handback for LoopHandback {
    fn written(mut self: Box<Self>, keep_open: bool) {
        self.finish(keep_open);
    }

    fn unwritten(mut self: Box<Self>, rest: Rest) {
        self.reported = true;
        self.completions
            .report(self.slot, self.generation, Report::Rest(rest));
    }

    fn taken_back(mut self: Box<Self>) {
        self.reported = true;
    }

    fn switched(mut self: Box<Self>, head: Vec<u8>, upgrade: Box<dyn OnUpgrade>) {
        self.reported = true;
        self.completions
            .report(self.slot, self.generation, Report::Switched(head, upgrade));
    }
}

impl Drop for LoopHandback {
    /// A worker that died with the answer (or a relay dropped on the way): the loop
    /// closes the connection rather than wait for a report that will never come.
    fn drop(&mut self) {
        if !self.reported {
            self.finish(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Poll, Token};

    fn completions() -> (Poll, Arc<Completions>) {
        let poll = Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), Token(0)).unwrap();
        (poll, Arc::new(Completions::new(waker)))
    }

    #[test]
    fn an_unwatched_answer_reports_nothing_a_watched_one_does() {
        let (_poll, completions) = completions();
        let mut reports = Vec::new();
        let quiet = AnswerSlot::new();
        LoopHandback::new(&completions, &quiet, 1, 0).written(true);
        completions.take(&mut reports);
        assert!(
            reports.is_empty(),
            "a written answer the loop did not wait for wakes nobody"
        );
        assert!(quiet.outcome(&completions).unwrap().keep_open);
        assert!(!quiet.watch(), "already done: nothing to watch");

        let watched = AnswerSlot::new();
        assert!(watched.watch());
        LoopHandback::new(&completions, &watched, 2, 7).written(true);
        completions.take(&mut reports);
        assert!(matches!(reports.as_slice(), [(2, 7, Report::Look)]));
    }

    #[test]
    fn a_close_and_a_dropped_handback_are_always_reported() {
        let (_poll, completions) = completions();
        let mut reports = Vec::new();
        let closing = AnswerSlot::new();
        LoopHandback::new(&completions, &closing, 3, 0).written(false);
        let abandoned = AnswerSlot::new();
        drop(LoopHandback::new(&completions, &abandoned, 4, 0));
        completions.take(&mut reports);
        assert_eq!(reports.len(), 2);
        assert!(!closing.outcome(&completions).unwrap().keep_open);
        assert!(
            !abandoned.outcome(&completions).unwrap().keep_open,
            "a worker that died closes"
        );
    }
}
