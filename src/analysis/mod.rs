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
pub mod textlog;

/// A counter from a server document, whatever its numeric type (profiler entries, logs,
/// explain output and `$indexStats` mix int, long and double); 0 when absent.
pub fn count(v: Option<&mongodb::bson::Bson>) -> u64 {
    use mongodb::bson::Bson;
    match v {
        Some(Bson::Int32(n)) => (*n).max(0) as u64,
        Some(Bson::Int64(n)) => (*n).max(0) as u64,
        Some(Bson::Double(n)) => n.max(0.0) as u64,
        _ => 0,
    }
}
