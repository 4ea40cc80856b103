//! Continuous point-in-time backups (issue #26): the replica set's oplog archived as
//! slices beside the base backups, the chain of restorable windows they form, and the
//! plan that `restore --to-time` follows.
//!
//! Layout under a backups location (`LOCATION/pitr/<replica set>/`):
//! - `stream.json`: the source and the selection this stream archives;
//! - `slices/<after t>.<after i>/oplog.bson[.gz|.zst]`: mongodump-format oplog entries;
//! - `slices/<after t>.<after i>/manifest.json`: written last (a slice is complete or absent);
//! - `gaps/<after t>.<after i>.json`: a stretch the oplog lost before it was archived.

pub mod archiver;
pub mod chain;
pub mod control;
pub mod layout;
pub mod planner;
pub mod retention;
pub mod select;
pub mod slice;
