//! Comparing and partitioning collections: `_id` ranges that split one collection for
//! parallel, resumable reads (migrate, verify), the `_id` index's sort order, and the
//! comparisons `verify` makes (documents range by range, options and indexes, what exists
//! only on the target), all on undecoded BSON where they compare values.

pub mod diff;
pub mod digest;
pub mod documents;
pub mod extras;
pub mod live;
pub mod metadata;
pub mod order;
pub mod ranges;
pub mod raw;
pub mod verdict;
