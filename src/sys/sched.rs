//! Scheduling policy of the worker threads.
//!
//! OS concept: the scheduler's wake-up preemption. When a thread blocked in `read(2)`
//! or on a condition variable becomes runnable, Linux's fair scheduler may preempt the
//! thread running on that core in its favour, which is good for a shell and costly for
//! a proxy: every hand-off between a connection thread and a worker can become an
//! extra context switch. `SCHED_BATCH` (sched(7)) tells the scheduler a thread is
//! throughput work: when it wakes up it does not preempt the running thread but waits
//! for that thread's turn to end. Fairness and the nice value are unchanged.
//!
//! The system call needs `unsafe` in Rust; the maintained `thread-priority` crate wraps
//! it in a safe function, so roundhouse itself stays free of `unsafe`.

use thread_priority::unix::{
    NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
};
use thread_priority::{ThreadPriority, ThreadPriorityOsValue};

/// Puts the calling thread under `SCHED_BATCH` at nice 0. Where the policy does not
/// exist or is refused, the thread simply stays as it was: this is a speed-up, never a
/// requirement.
pub fn batch_current_thread() {
    let result = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Os(ThreadPriorityOsValue::default()),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    );
    if let Err(error) = result {
        log::debug!("SCHED_BATCH not applied: {error:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thread_priority::unix::thread_schedule_policy;

    #[test]
    fn the_calling_thread_becomes_batch() {
        std::thread::spawn(|| {
            batch_current_thread();
            assert_eq!(
                thread_schedule_policy().unwrap(),
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch)
            );
        })
        .join()
        .unwrap();
    }
}
