//! When a failed attempt may be tried again on another backend, and how many retries
//! the whole balancer allows at once.
//!
//! OS concept: admission control again, this time for retries. When a cluster is dying,
//! every request fails, and retrying each one multiplies the load on what is left (a
//! retry storm). Envoy's retry budget caps retries in progress at a share of the
//! requests in progress (20%, at least 3); nginx's `proxy_next_upstream` decides which
//! failures are worth a retry at all.
//!
//! Only retries that repeat work are charged to the budget. A request whose connection
//! was never made reached no backend, so moving it to another one adds no load: it is
//! the same request, sent once. nginx never limits these (a refused connection just
//! moves on to the next server); Envoy charges every retry, which with a pool of four
//! workers lets a killed backend turn the fourth simultaneous refusal into a 502.

use std::sync::atomic::{AtomicU64, Ordering};

use http::Method;

use super::UpstreamError;

/// Whether a request with `method` that failed with `error` may go to another backend.
///
/// A request that never left (no connection) can always be retried. One that may have
/// reached the backend is retried only if repeating it is harmless (RFC 9110 section
/// 9.2.2: idempotent methods), and only if no part of the response arrived yet.
pub fn may_retry(method: &Method, error: &UpstreamError) -> bool {
    match error {
        UpstreamError::Connect(_) | UpstreamError::ConnectTimeout(_) | UpstreamError::Tls(_) => true,
        UpstreamError::Timeout(_) | UpstreamError::Broken(_) => is_idempotent(method),
        UpstreamError::Incomplete(_) | UpstreamError::Stalled(_) | UpstreamError::Protocol(_) => false,
    }
}

pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Whether retrying after `error` repeats work a backend may already have done, and so
/// must be paid for from the budget. A connect failure did no work anywhere.
pub fn repeats_work(error: &UpstreamError) -> bool {
    !matches!(
        error,
        UpstreamError::Connect(_) | UpstreamError::ConnectTimeout(_) | UpstreamError::Tls(_)
    )
}

/// Envoy-style retry budget: retries in progress ≤ max(minimum, percent × requests in
/// progress).
#[derive(Debug)]
pub struct RetryBudget {
    percent: u64,
    minimum: u64,
    active_requests: AtomicU64,
    active_retries: AtomicU64,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            percent: 20,
            minimum: 3,
            active_requests: AtomicU64::new(0),
            active_retries: AtomicU64::new(0),
        }
    }
}

/// Counts one request (or one retry) as in progress while alive.
pub struct Active<'a>(&'a AtomicU64);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RetryBudget {
    /// Marks a request in progress until the guard is dropped.
    pub fn start_request(&self) -> Active<'_> {
        self.active_requests.fetch_add(1, Ordering::Relaxed);
        Active(&self.active_requests)
    }

    /// A permit for one retry, or `None` when the budget is spent. The check and the
    /// increment are two steps, so a burst may overshoot by a few: a budget, not a lock.
    pub fn try_retry(&self) -> Option<Active<'_>> {
        let requests = self.active_requests.load(Ordering::Relaxed);
        let allowed = (requests * self.percent / 100).max(self.minimum);
        if self.active_retries.load(Ordering::Relaxed) >= allowed {
            return None;
        }
        self.active_retries.fetch_add(1, Ordering::Relaxed);
        Some(Active(&self.active_retries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_failures_are_retried() {
        let refused = UpstreamError::Connect("refused".into());
        let timeout = UpstreamError::Timeout("no answer".into());
        let cut = UpstreamError::Incomplete("closed mid-body".into());
        assert!(
            may_retry(&Method::POST, &refused),
            "a POST that never left can go elsewhere"
        );
        assert!(
            !may_retry(&Method::POST, &timeout),
            "a POST that may have arrived is not repeated"
        );
        assert!(may_retry(&Method::GET, &timeout));
        assert!(may_retry(&Method::PUT, &timeout));
        assert!(!may_retry(&Method::PATCH, &timeout));
        assert!(!may_retry(&Method::GET, &cut), "part of the answer already came");
    }

    #[test]
    fn only_retries_that_repeat_work_are_charged() {
        assert!(!repeats_work(&UpstreamError::Connect("refused".into())));
        assert!(!repeats_work(&UpstreamError::ConnectTimeout("no SYN-ACK".into())));
        assert!(repeats_work(&UpstreamError::Timeout("no answer".into())));
        assert!(repeats_work(&UpstreamError::Broken("reset".into())));
    }

    #[test]
    fn the_budget_allows_three_or_a_fifth_of_requests_in_progress() {
        let budget = RetryBudget::default();
        let requests: Vec<_> = (0..10).map(|_| budget.start_request()).collect();
        let permits: Vec<_> = (0..3)
            .map(|_| budget.try_retry().expect("minimum of 3"))
            .collect();
        assert!(
            budget.try_retry().is_none(),
            "10 requests x 20% = 2 < 3: the minimum rules"
        );
        let more: Vec<_> = (0..10).map(|_| budget.start_request()).collect();
        let fourth = budget.try_retry();
        assert!(fourth.is_some(), "20 requests x 20% = 4");
        assert!(budget.try_retry().is_none());
        drop(permits);
        assert!(
            budget.try_retry().is_some(),
            "finished retries give their slot back"
        );
        drop((requests, more, fourth));
    }
}
