//! The way back: a one-shot slot where a worker leaves the response and the connection
//! thread that queued the request waits for it. Used when the connection thread must see
//! the response (the cache stores it); otherwise the worker answers the client itself
//! (`pool::direct`).
//!
//! OS concept: a condition variable guarding a state. The connection thread sleeps on
//! the condition variable until the state under the mutex says "ready" (or "the worker
//! is gone"); the worker changes the state and signals. The waiter always re-checks the
//! state after waking, so a signal that comes before the wait, or a spurious wake-up,
//! cannot lose the answer: the state, not the signal, is the truth.
//!
//! Why not a one-slot channel: a crossbeam channel's receiver first spins and then
//! calls `sched_yield` a few times before it sleeps. A forwarded request takes tens of
//! microseconds, so every wait for an answer went through the whole spin-and-yield
//! dance first, and on a busy two-core machine each yield is a context switch.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use thiserror::Error;

use crate::http1::Response;

enum State {
    Waiting,
    /// Boxed: a response is a few hundred bytes, the other states nothing.
    Ready(Box<Response>),
    /// The worker dropped its end without answering (it panicked).
    Abandoned,
}

struct Slot {
    /// Protects the state; held only to read or change it, never during I/O.
    state: Mutex<State>,
    /// Signalled when the state leaves `Waiting`.
    changed: Condvar,
}

/// The worker's end: answer once, or drop.
pub struct ReplySender {
    slot: Arc<Slot>,
    answered: bool,
}

/// The connection thread's end.
pub struct ReplyReceiver {
    slot: Arc<Slot>,
}

/// The worker went away without answering.
#[derive(Debug, Error)]
#[error("the worker dropped the request without answering")]
pub struct WorkerGone;

/// A new, empty reply slot and its two ends.
pub fn reply_slot() -> (ReplySender, ReplyReceiver) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting),
        changed: Condvar::new(),
    });
    (
        ReplySender {
            slot: Arc::clone(&slot),
            answered: false,
        },
        ReplyReceiver { slot },
    )
}

impl ReplySender {
    /// Leaves the response and wakes the waiting connection thread. If that thread is
    /// gone (its client hung up), the response is simply dropped with the slot.
    pub fn send(mut self, response: Response) {
        self.finish(State::Ready(Box::new(response)));
        self.answered = true;
    }

    fn finish(&self, state: State) {
        *self.slot.state.lock() = state;
        // Signal after unlocking, so the woken thread does not at once block on the
        // mutex we still hold.
        self.slot.changed.notify_one();
    }
}

impl Drop for ReplySender {
    fn drop(&mut self) {
        if !self.answered {
            self.finish(State::Abandoned);
        }
    }
}

impl ReplyReceiver {
    /// Sleeps until the worker answers or goes away.
    pub fn recv(self) -> Result<Response, WorkerGone> {
        let mut state = self.slot.state.lock();
        loop {
            match std::mem::replace(&mut *state, State::Waiting) {
                State::Ready(response) => return Ok(*response),
                State::Abandoned => return Err(WorkerGone),
                State::Waiting => self.slot.changed.wait(&mut state),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use std::thread;

    #[test]
    fn answer_sent_before_or_after_the_wait_arrives() {
        let (sender, receiver) = reply_slot();
        sender.send(Response::new(StatusCode::OK));
        assert_eq!(receiver.recv().unwrap().status, StatusCode::OK);

        let (sender, receiver) = reply_slot();
        let worker = thread::spawn(move || sender.send(Response::new(StatusCode::CREATED)));
        assert_eq!(receiver.recv().unwrap().status, StatusCode::CREATED);
        worker.join().unwrap();
    }

    #[test]
    fn a_worker_that_dies_without_answering_wakes_the_waiter() {
        let (sender, receiver) = reply_slot();
        let worker = thread::spawn(move || {
            let _owned = sender;
            panic!("worker failed");
        });
        assert!(receiver.recv().is_err());
        assert!(worker.join().is_err());
    }

    #[test]
    fn sending_to_a_gone_receiver_is_harmless() {
        let (sender, receiver) = reply_slot();
        drop(receiver);
        sender.send(Response::new(StatusCode::OK));
    }
}
