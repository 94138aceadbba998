//! How many client connections the descriptor limit can hold.
//!
//! OS concept: a resource limit seen from the application. Each client connection is
//! one file descriptor in either front; so is each connection to a backend (two when
//! the backend runs in this same process: both ends), the listening socket, epoll's
//! own descriptor, log files and spooled bodies. If `--max-connections` asks for more
//! than the limit holds, the next `accept(2)` fails with EMFILE and the client waits
//! in the accept queue, or gives up, without an answer. So the front is held below
//! what fits and answers the client past it with `503 Retry-After`, which a client (or
//! another balancer) can act on. The descriptors kept back include room for those
//! refusals themselves: a refusal needs a descriptor to be written.

use crate::sys::limits::DescriptorLimit;

/// Descriptors kept for everything but client connections and backend connections:
/// standard streams, listeners, epoll and its waker, logs, cache and spool files, the
/// health checker's and load poller's connections, and refusals being written.
pub const RESERVED: u64 = 64;

/// The connection limit the front runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimit {
    /// `--max-connections`.
    pub configured: usize,
    /// What the front enforces: `configured`, or less when descriptors run short.
    pub effective: usize,
    /// The soft descriptor limit in force.
    pub descriptors: u64,
}

/// The limit for `configured` client connections when `backend_connections`
/// descriptors go to backends.
pub fn fit(configured: usize, backend_connections: u64, limit: DescriptorLimit) -> ConnectionLimit {
    let room = limit.soft.saturating_sub(RESERVED + backend_connections);
    let effective = configured.min(usize::try_from(room).unwrap_or(usize::MAX));
    ConnectionLimit {
        configured,
        effective,
        descriptors: limit.soft,
    }
}

impl ConnectionLimit {
    /// One line for the start-up banner when the limit cannot hold what was asked.
    pub fn shortfall(&self) -> Option<String> {
        (self.effective < self.configured).then(|| {
            format!(
                "the descriptor limit ({}) holds {} client connections, not --max-connections {}: \
                 past {} clients get 503 (raise the hard limit: ulimit -Hn, LimitNOFILE=)",
                self.descriptors, self.effective, self.configured, self.effective
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_does_not_fit_is_said() {
        let small = DescriptorLimit {
            soft: 1024,
            hard: 1024,
        };
        let limit = fit(4096, 24, small);
        assert_eq!(limit.effective, 1024 - 64 - 24);
        assert!(
            limit
                .shortfall()
                .unwrap()
                .contains("holds 936 client connections")
        );
        let large = DescriptorLimit {
            soft: 1 << 20,
            hard: 1 << 20,
        };
        assert_eq!(fit(4096, 24, large).effective, 4096);
        assert!(fit(4096, 24, large).shortfall().is_none());
    }
}
