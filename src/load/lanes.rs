//! Which namespaces move documents at once. `--parallel N` bounds the namespaces sending
//! their second and later insert batches; everything else about a namespace runs outside
//! that bound: its bookkeeping before and after its data (the state record, drop, create,
//! index builds, the count) and its first batch. Across a network each of those is a
//! round trip the target would wait through: outside the bound they overlap other
//! namespaces' inserts. With many small collections that bookkeeping *is* the work: 200
//! collections of 1,000 documents restored at 50 ms RTT took 44.6 s with each namespace
//! holding one of 2 lanes from start to end, against stock mongorestore's 8.1 s.
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

/// Namespaces under way at once, at least (see `Lanes::started`).
const UNDER_WAY: usize = 16;

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

    /// One namespace's claim on a lane, shared by all its insert workers (and ranges).
    pub fn claim(&self) -> Arc<Claim> {
        Arc::new(Claim {
            lanes: Some(self.data.clone()),
            state: Mutex::new(State::default()),
        })
    }
}

/// A namespace's use of the lanes: its first batch goes at once, its second waits for a
/// lane, which it then holds until the claim is dropped (after its last insert).
pub struct Claim {
    /// None: unbounded (an archive feeds every namespace at once from one stream, so a
    /// namespace waiting for a lane would stall the others; see `free`).
    lanes: Option<Arc<Semaphore>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    batches: u64,
    held: Option<OwnedSemaphorePermit>,
    waited: Duration,
}

impl Claim {
    /// A claim that never waits.
    pub fn free() -> Arc<Claim> {
        Arc::new(Claim {
            lanes: None,
            state: Mutex::new(State::default()),
        })
    }

    /// Called before each batch is inserted; waits for a lane from the second batch on.
    pub async fn batch(&self) {
        let mut s = self.state.lock().await;
        s.batches += 1;
        if let (Some(lanes), true, None) = (&self.lanes, s.batches >= 2, &s.held) {
            let asked = Instant::now();
            let permit = lanes
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn within(ms: u64, f: impl std::future::Future<Output = ()>) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), f)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_first_batch_goes_at_once_and_the_second_waits_for_a_lane() {
        let lanes = Lanes::new(1);
        assert_eq!(lanes.started(), 16);
        assert_eq!(Lanes::new(12).started(), 24);
        let (a, b) = (lanes.claim(), lanes.claim());
        assert!(within(50, a.batch()).await);
        assert!(within(50, b.batch()).await, "a first batch waited");
        assert!(within(50, a.batch()).await, "the only lane was not free");
        assert!(
            within(50, a.batch()).await,
            "a held lane was asked for again"
        );
        assert!(
            !within(50, b.batch()).await,
            "a second lane was handed out with --parallel 1"
        );
        // Waiting in a task, b gets the lane when a is dropped, and counts the wait.
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.batch().await }
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
        let free = Claim::free();
        for _ in 0..3 {
            assert!(within(50, free.batch()).await, "an unbounded claim waited");
        }
    }
}
