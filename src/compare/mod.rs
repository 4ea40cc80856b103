//! Comparing and partitioning collections: `_id` ranges that split one collection for
//! parallel, resumable reads (migrate, verify), the `_id` index's sort order, and the
//! comparisons `verify` makes (documents range by range, options and indexes).

pub mod diff;
pub mod digest;
pub mod documents;
pub mod live;
pub mod metadata;
pub mod order;
pub mod ranges;
pub mod verdict;
