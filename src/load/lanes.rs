//! Which namespaces move documents at once. `--parallel N` bounds the namespaces moving
//! more than their first MiB of documents; everything else about a namespace runs outside
//! that bound: its bookkeeping before and after its data (the state record, drop, create,
//! index builds, the count) and a namespace of at most a MiB. Across a network each of
//! those is a round trip the target would wait through: outside the bound they overlap
//! other namespaces' inserts. With many small collections that bookkeeping *is* the work: 200
//! collections of 1,000 documents restored at 50 ms RTT took 44.6 s with each namespace
//! holding one of 2 lanes from start to end, against stock mongorestore's 8.1 s.
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

/// Namespaces under way at once, at least (see `Lanes::started`).
const UNDER_WAY: usize = 16;

/// What a namespace may read and insert before it needs a lane. Small, so that the
/// namespaces waiting for a lane hold little (16 under way hold at most 16 MiB this way;
/// letting each send a whole first 4 MB batch cost 30 MB more peak RSS in a 5-collection
/// restore), and big enough that a typical small collection never waits.
pub const FREE_BYTES: u64 = 1 << 20;

pub struct Lanes {
    data: Arc<Semaphore>,
    n: usize,
}

impl Lanes {
    pub fn new(n: usize) -> Lanes {
        let n = n.max(1);
        Lanes {
            data: Arc::new(Semaphore::new(n)),
            n,
        }
    }

    /// Namespaces under way at once: at least 16, so that small namespaces' round trips
    /// overlap, and at least one preparing or finishing beside each lane. (Not
    /// unbounded: with --drop a namespace is dropped shortly before its data comes, so a
    /// run that fails part way has not emptied every collection it never got to; and
    /// each one under way may hold one batch in flight.)
    pub fn started(&self) -> usize {
        (self.n * 2).max(UNDER_WAY)
    }

    /// One namespace's claim on a lane.
    pub fn claim(&self) -> Arc<Claim> {
        Arc::new(Claim {
            lanes: self.data.clone(),
            state: Mutex::new(State::default()),
        })
    }
}

/// A namespace's use of the lanes: taken when the namespace has shown it is more than
/// `FREE_BYTES` (or known to be, up front), held until `release` or until the claim is
/// dropped.
pub struct Claim {
    lanes: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    held: Option<OwnedSemaphorePermit>,
    waited: Duration,
}

impl Claim {
    /// Take a lane, if not held yet: waits while all `--parallel` lanes are held.
    pub async fn lane(&self) {
        let mut s = self.state.lock().await;
        if s.held.is_none() {
            let asked = Instant::now();
            let permit = self
                .lanes
                .clone()
                .acquire_owned()
                .await
                .expect("the lanes' semaphore is never closed");
            s.held = Some(permit);
            s.waited += asked.elapsed();
        }
    }

    /// Give the lane back once the data is in (before the checks after it).
    pub async fn release(&self) {
        self.state.lock().await.held = None;
    }

    /// How long this namespace waited for a lane (not its own time).
    pub async fn waited(&self) -> Duration {
        self.state.lock().await.waited
    }
}

/// Order namespaces biggest first (the name breaks ties: a stable sort of a sorted list).
/// A load ends when its longest namespace does: started last, a big one finishes alone
/// with every other lane idle; started first, the small ones fill the other lanes around
/// it (longest-processing-time-first scheduling). The order is the order namespaces start
/// in, not strictly the order of the lanes: a namespace asks for its lane after its first
/// MiB (restore) or once its target is prepared (migrate), so among those under way at
/// once, whichever gets there first is served first.
pub fn biggest_first<T>(items: &mut [T], bytes: impl Fn(&T) -> u64) {
    items.sort_by_key(|t| std::cmp::Reverse(bytes(t)));
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn within(ms: u64, f: impl std::future::Future<Output = ()>) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), f)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_claim_waits_while_every_lane_is_held_and_counts_its_wait() {
        let lanes = Lanes::new(1);
        assert_eq!(lanes.started(), 16);
        assert_eq!(Lanes::new(12).started(), 24);
        let (a, b) = (lanes.claim(), lanes.claim());
        assert!(within(50, a.lane()).await, "the only lane was not free");
        assert!(
            within(50, a.lane()).await,
            "a held lane was asked for again"
        );
        assert!(
            !within(50, b.lane()).await,
            "a second lane was handed out with --parallel 1"
        );
        // Waiting in a task, b gets the lane when a is dropped, and counts the wait.
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.lane().await }
        });
        tokio::time::sleep(Duration::from_millis(60)).await;
        drop(a);
        assert!(
            tokio::time::timeout(Duration::from_millis(500), waiting)
                .await
                .is_ok(),
            "a freed lane was not handed out"
        );
        assert!(b.waited().await >= Duration::from_millis(50));
        let c = lanes.claim();
        assert!(!within(50, c.lane()).await, "a held lane was handed out");
        b.release().await;
        assert!(
            within(500, c.lane()).await,
            "a released lane was not handed out"
        );
    }

    #[test]
    fn the_biggest_namespace_goes_first_and_ties_keep_their_order() {
        let mut v = vec![("a", 1), ("b", 9), ("c", 1), ("d", 5)];
        biggest_first(&mut v, |x| x.1);
        assert_eq!(v, [("b", 9), ("d", 5), ("a", 1), ("c", 1)]);
    }
}
