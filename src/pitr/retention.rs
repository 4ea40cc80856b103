//! What `backups prune` may delete from a continuous backup: never a slice that a kept base
//! backup needs for its window, and (`--pitr-days N`) never a base or a slice that keeps the
//! last N days restorable.

use chrono::{DateTime, Utc};

use crate::pitr::chain::StreamChain;
use crate::pitr::layout;

/// The base backups that must survive so that every time in the last `days` stays
/// restorable: every base that ends inside the period, and the newest that ends before it
/// (the period's start is reached from it through the slices).
pub fn protected_bases(chain: &StreamChain, days: u32, now: DateTime<Utc>) -> Vec<String> {
    let cutoff = (now - chrono::Duration::days(days as i64)).timestamp();
    let cutoff = u32::try_from(cutoff.max(0)).unwrap_or(0);
    let mut out: Vec<String> = chain
        .bases
        .iter()
        .filter(|b| b.end.t >= cutoff)
        .map(|b| b.id.clone())
        .collect();
    if let Some(b) = chain
        .bases
        .iter()
        .filter(|b| b.end.t < cutoff)
        .max_by_key(|b| b.end)
    {
        out.push(b.id.clone());
    }
    out
}

/// Slice folders (relative to the location) no kept base needs: those that end at or
/// before the oldest kept base's oplog end. With no kept base of the stream, none.
pub fn prunable_slices(chain: &StreamChain, kept_bases: &[String]) -> Vec<String> {
    let Some(oldest) = chain
        .bases
        .iter()
        .filter(|b| kept_bases.contains(&b.id))
        .map(|b| b.end)
        .min()
    else {
        return Vec::new();
    };
    chain
        .slices
        .iter()
        .filter(|s| s.until <= oldest)
        .map(|s| {
            format!(
                "{}/{}",
                layout::stream_dir(&chain.stream),
                layout::slice_dir(s.after)
            )
        })
        .collect()
}
