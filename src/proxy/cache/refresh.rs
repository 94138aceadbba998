//! Background revalidation for `stale-while-revalidate` (RFC 5861 section 3): the client
//! gets the stale copy at once, and a short-lived thread asks the backend for a new one.
//!
//! OS concept: work done after the answer, on a thread of its own. The connection thread
//! must not wait for the backend (that would undo the point of serving stale), and the
//! worker pool only runs requests someone queued; so one thread per refresh queues the
//! revalidation like any request and stores what comes back. Refreshes of one key are
//! coalesced through the same flight table as misses, so a popular stale entry costs one
//! backend request and one thread, however many clients read it meanwhile. The thread
//! holds the queue's sender only until its answer arrives, so a shutdown that drains the
//! queue waits for it at most one request (bounded by the upstream timeouts).

use std::sync::Arc;
use std::thread;

use http::Method;

use super::coalesce::Role;
use super::conditional;
use super::entry::Entry;
use super::{Cache, Upstream};
use crate::http1::Request;

/// Starts revalidating `entry` for `request`'s key, unless a fetch of it is under way.
pub fn in_background(
    cache: &Arc<Cache>,
    key: &str,
    request: &Request,
    entry: &Arc<Entry>,
    upstream: &Arc<dyn Upstream>,
) {
    if cache.flights.is_fetching(key) {
        return;
    }
    let mut refresh = Request {
        // A HEAD answered stale is refreshed with the GET the entry stands for.
        method: Method::GET,
        body: Vec::new(),
        spooled: None,
        // The client is answered already: no interim response can reach it.
        interim: None,
        ..request.clone()
    };
    // The client's own validators would make the backend's 304 theirs, not ours.
    conditional::strip_conditionals(&mut refresh.headers);
    let (cache, upstream, entry, owned_key) = (
        Arc::clone(cache),
        Arc::clone(upstream).background(),
        Arc::clone(entry),
        key.to_string(),
    );
    let spawned = thread::Builder::new()
        .name("cache-refresh".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            // Another refresh may have started since the check above: then it does the work.
            let Role::Leader(leader) = cache.flights.join_in_background(&owned_key) else {
                return;
            };
            let (_, outcome) = cache.fetch(&owned_key, refresh, Some(entry), &upstream);
            leader.finish(outcome);
        });
    if let Err(error) = spawned {
        // The stale answer stands; the next request will try again.
        log::warn!("cache: cannot start a thread to revalidate {key}: {error}");
    }
}
