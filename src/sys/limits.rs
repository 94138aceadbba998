//! The descriptor limit: how many files and sockets this process may have open.
//!
//! OS concept: resource limits (`getrlimit(2)`, `setrlimit(2)`). Every socket is a file
//! descriptor, and the kernel refuses the next one past `RLIMIT_NOFILE` (`accept(2)` and
//! `connect(2)` fail with EMFILE). The limit has two values: the soft one in force, and
//! the hard ceiling up to which an unprivileged process may raise its own soft limit.
//! Shells start programs with a soft limit of 1,024 for the sake of old `select(2)`
//! code, whose descriptor sets hold no more; a server that waits with `epoll(7)` has no
//! such ceiling, so it raises the soft limit to the hard one at start, as Go's runtime
//! does for every program (since Go 1.19) and nginx does with `worker_rlimit_nofile`.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The descriptor limit after `raise_descriptor_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorLimit {
    /// The soft limit in force now: the most descriptors open at once.
    pub soft: u64,
    /// The hard limit: the soft one can go no higher without privilege.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns both. "Unlimited" is
/// reported as `u64::MAX`. When the raise is refused, the limit in force is returned:
/// the caller sizes itself to what it has, never to what it asked for.
pub fn raise_descriptor_limit() -> DescriptorLimit {
    let before = getrlimit(Resource::Nofile);
    let hard = before.maximum.unwrap_or(u64::MAX);
    let soft = before.current.unwrap_or(u64::MAX);
    if soft < hard {
        let raised = Rlimit {
            current: before.maximum,
            maximum: before.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            log::debug!("cannot raise RLIMIT_NOFILE from {soft} to {hard}: {error}");
        }
    }
    descriptor_limit()
}

/// The descriptor limit in force, without changing it.
pub fn descriptor_limit() -> DescriptorLimit {
    let now = getrlimit(Resource::Nofile);
    DescriptorLimit {
        soft: now.current.unwrap_or(u64::MAX),
        hard: now.maximum.unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let limit = raise_descriptor_limit();
        assert_eq!(limit.soft, limit.hard, "{limit:?}");
        assert_eq!(descriptor_limit(), limit);
    }
}
