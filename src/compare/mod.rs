//! Comparing and partitioning collections: `_id` ranges that split one collection for
//! parallel, resumable reads (migrate now; verify's range hashing later).

pub mod ranges;
