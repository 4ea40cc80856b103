//! The restore engine: where the data comes from (our backups, mongodump
//! directories and archives), how it is streamed into batches, oplog replay,
//! and the state that makes an interrupted restore resumable.

pub mod oplog_replay;
pub mod source;
pub mod state;
pub mod stream;
