//! The restore engine: where the data comes from (our backups, mongodump
//! directories and archives), how it is streamed into batches, and oplog replay. The
//! target side (creating, inserting, indexes, counts, resume state) is `crate::load`.

pub mod oplog_replay;
pub mod source;
pub mod stream;
