//! The restore engine: a restore start to end (`run`), where the data comes from (our backups, mongodump directories and
//! archives), how it is streamed into batches, and oplog replay (transactions, the indexes
//! built after it). The target side (creating, inserting, counts, resume state) is
//! `crate::load`.

pub mod index_catalog;
pub mod legacy_indexes;
pub mod oplog_replay;
pub mod oplog_source;
pub mod oplog_txn;
mod replay;
pub mod run;
mod runner;
pub mod source;
pub mod stream;
pub mod users;
