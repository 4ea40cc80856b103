//! Which namespaces move documents at once. `--parallel N` bounds the namespaces whose
//! documents are being inserted; each one's bookkeeping before and after its data (the
//! state record, drop, create, index builds, the count) runs outside that bound. Across a
//! network each of those steps is a round trip the target waits through: outside the
//! bound they overlap another namespace's inserts instead of leaving the target idle
//! between two namespaces (at 10 ms RTT, 6–8 round trips and a count per namespace).
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

    /// Namespaces under way at once: one preparing or finishing beside each that inserts.
    /// (No more: with --drop, a namespace is dropped only shortly before it is loaded, so
    /// a run that fails part way has not emptied collections it never got to.)
    pub fn started(&self) -> usize {
        self.n * 2
    }

    /// Wait for a lane; the data moves while the permit is held. Lanes are handed out in
    /// the order they were asked for.
    pub async fn data(&self) -> OwnedSemaphorePermit {
        self.data
            .clone()
            .acquire_owned()
            .await
            .expect("the lanes' semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_most_n_hold_a_lane_and_twice_that_start() {
        let lanes = Lanes::new(2);
        assert_eq!(lanes.started(), 4);
        let a = lanes.data().await;
        let _b = lanes.data().await;
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), lanes.data()).await;
        assert!(
            third.is_err(),
            "a third lane was handed out while two were held"
        );
        drop(a);
        let third = tokio::time::timeout(std::time::Duration::from_millis(500), lanes.data()).await;
        assert!(third.is_ok(), "a freed lane was not handed out");
        assert_eq!(Lanes::new(0).started(), 2, "--parallel 0 means one lane");
    }
}
