//! IP hash: the same client always goes to the same backend (session affinity), by
//! rendezvous hashing (highest random weight, Thaler and Ravishankar 1998).
//!
//! OS concept: processor affinity. A scheduler keeps a task on the CPU whose caches
//! hold its data; a balancer keeps a client on the backend that holds its session or
//! cache. And like a scheduler, it must give up affinity when that CPU is gone.
//!
//! How: every (client, backend) pair gets a pseudo-random score from a hash; the
//! client goes to the eligible backend with the highest score. When a backend goes
//! down or is removed, only its own clients move (each to its second-highest score),
//! about 1/N of them; nobody else's highest score changed. A plain `hash % N` would
//! move almost everyone.
//!
//! Why rendezvous and not a ring with virtual nodes (nginx `hash ... consistent`,
//! Envoy `RING_HASH`) or Maglev (Envoy `MAGLEV`): both of those build a table (a sorted
//! ring of ~100 points per backend, or a permutation table) that must be shared between
//! workers and rebuilt whenever health changes, i.e. a lock or an atomically swapped
//! pointer. Rendezvous needs no state at all: skipping an unhealthy backend is just
//! taking the next-highest score, computed on the spot. It costs one hash per backend
//! per pick, O(N), the same scan `least-conn` does, which is nothing for the tens or
//! hundreds of backends a balancer like this has; at many thousands a table wins.
//! Its spread is that of N independent random scores, with no virtual nodes to tune.
//!
//! A request without a client address (none known) goes to a random backend, as
//! nginx's `ip_hash` falls back to round-robin for non-IP clients.

use std::net::IpAddr;

use super::random::draw_eligible;
use super::{BackendsView, PickContext, Strategy};

#[derive(Debug, Default)]
pub struct IpHash;

impl Strategy for IpHash {
    fn name(&self) -> &'static str {
        "ip-hash"
    }

    fn pick(&self, backends: &dyn BackendsView, context: &mut PickContext) -> Option<usize> {
        let Some(client) = context.client else {
            return draw_eligible(backends, context, None);
        };
        let client = hash_address(client);
        (0..backends.len())
            .filter(|&index| context.is_eligible(backends, index))
            .max_by_key(|&index| score(client, backends.key(index)))
    }
}

/// The client's address folded into 64 bits, mixed so that neighbouring addresses
/// (10.0.0.1, 10.0.0.2) get unrelated hashes.
fn hash_address(address: IpAddr) -> u64 {
    let bits = match address {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            // Distinguish from IPv4 by folding in a constant as well as both halves.
            (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17) ^ 0x6e6f_7420_7634
        }
    };
    mix(bits)
}

/// The pair's score. Mixing the backend's key first keeps the backends' scores for one
/// client independent of each other even when keys are small consecutive numbers.
fn score(client: u64, backend_key: u64) -> u64 {
    mix(client ^ mix(backend_key.wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// The SplitMix64 finalizer (Steele, Lea and Flood 2014): a fixed, fast bijection whose
/// output bits each depend on all input bits. Fixed rather than std's `DefaultHasher`
/// (whose algorithm may change between Rust releases) so clients keep their backend
/// across upgrades and restarts.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::strategy::StaticView;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::net::Ipv4Addr;

    /// A view whose backends have explicit keys, so one can really be removed (the
    /// others keep their keys but move to new indices).
    struct Keyed(Vec<u64>);

    impl BackendsView for Keyed {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn in_flight(&self, _index: usize) -> u64 {
            0
        }
        fn weight(&self, _index: usize) -> u32 {
            1
        }
        fn is_healthy(&self, _index: usize) -> bool {
            true
        }
        fn key(&self, index: usize) -> u64 {
            self.0[index]
        }
    }

    fn client(number: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + number))
    }

    fn pick(view: &dyn BackendsView, client: Option<IpAddr>, exclude: &[usize]) -> Option<usize> {
        let mut rng = StdRng::seed_from_u64(5);
        let mut context = PickContext {
            client,
            exclude,
            rng: &mut rng,
        };
        IpHash.pick(view, &mut context)
    }

    #[test]
    fn a_client_always_gets_the_same_backend_and_clients_spread() {
        let view = StaticView::uniform(4);
        let mut counts = [0; 4];
        for number in 0..1000 {
            let first = pick(&view, Some(client(number)), &[]).unwrap();
            for _ in 0..3 {
                assert_eq!(pick(&view, Some(client(number)), &[]), Some(first));
            }
            counts[first] += 1;
        }
        for count in counts {
            assert!((200..300).contains(&count), "{counts:?}");
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(pick(&view, Some(v6), &[]), pick(&view, Some(v6), &[]));
    }

    #[test]
    fn removing_one_of_four_backends_moves_only_its_clients() {
        let before = Keyed(vec![101, 102, 103, 104]);
        // Backend 102 removed: 103 and 104 shift to indices 1 and 2 but keep their keys.
        let after = Keyed(vec![101, 103, 104]);
        let mut moved = 0;
        for number in 0..1000 {
            let old = before.0[pick(&before, Some(client(number)), &[]).unwrap()];
            let new = after.0[pick(&after, Some(client(number)), &[]).unwrap()];
            if old != new {
                assert_eq!(old, 102, "a client of a remaining backend moved");
                moved += 1;
            }
        }
        assert!((150..=350).contains(&moved), "{moved} of 1000 clients moved");
    }

    #[test]
    fn a_down_or_tried_backend_hands_its_clients_to_their_next_choice() {
        let mut view = StaticView::uniform(4);
        let mut moved = 0;
        let mut first_choice = Vec::new();
        for number in 0..1000 {
            first_choice.push(pick(&view, Some(client(number)), &[]).unwrap());
        }
        view.healthy[2] = false;
        for number in 0..1000 {
            let now = pick(&view, Some(client(number)), &[]).unwrap();
            assert_ne!(now, 2);
            if now != first_choice[number as usize] {
                assert_eq!(first_choice[number as usize], 2);
                moved += 1;
            }
            // A retry excluding its backend goes to another eligible one.
            let retry = pick(&view, Some(client(number)), &[now]).unwrap();
            assert!(retry != now && retry != 2);
        }
        assert!(moved <= 350, "{moved}");
        view.healthy = vec![false; 4];
        assert_eq!(pick(&view, Some(client(1)), &[]), None);
    }

    #[test]
    fn without_a_client_address_any_eligible_backend() {
        let mut view = StaticView::uniform(3);
        view.healthy[0] = false;
        let chosen = pick(&view, None, &[]).unwrap();
        assert!(chosen == 1 || chosen == 2);
    }
}
