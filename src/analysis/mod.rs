//! `analyze`: recorded operations (profiler, JSON logs) grouped into query shapes and
//! ranked, explained, turned into index recommendations by the Equality–Sort–Range rule
//! (written as index specs), and critical queries held to budgets in CI.

pub mod check;
pub mod esr;
pub mod explain;
pub mod hygiene;
pub mod op;
pub mod recommend;
pub mod shape;
pub mod shard_key;
pub mod sources;
pub mod stats;
