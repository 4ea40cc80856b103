//! Object names inside one backup, exactly as mongodump lays out a dump directory.

use crate::codec::Compression;
use crate::dump::file_name;
use crate::namespace::Namespace;

pub const MANIFEST: &str = "manifest.json";
/// Written first: marks the folder as a backup in progress (or an interrupted one)
/// so that `backups list` can show it even when no data object was completed.
pub const STARTED: &str = "backup-started.json";

/// The database is a folder named as is (mongodump does not escape it: database names
/// cannot hold `/\. "$`); the collection is escaped and, when long, truncated.
pub fn data_key(ns: &Namespace, c: Compression) -> String {
    format!("{}/{}.bson{}", ns.db, stem(&ns.coll, c), c.suffix())
}

pub fn metadata_key(ns: &Namespace, c: Compression) -> String {
    format!(
        "{}/{}.metadata.json{}",
        ns.db,
        stem(&ns.coll, c),
        c.suffix()
    )
}

/// One stem for a collection's data and metadata: the truncation of a long name must leave
/// room for the longer of the two names, `.metadata.json<suffix>`.
fn stem(coll: &str, c: Compression) -> String {
    file_name::stem(coll, ".metadata.json".len() + c.suffix().len())
}

/// mongodump --gzip writes gzip data to a file still named `oplog.bson`, and mongorestore
/// finds the oplog only by that exact name (then gunzips it under --gzip): a `.gz` suffix
/// would make `mongorestore --gzip --oplogReplay` skip it and silently lose the point in time.
/// zstd keeps its suffix; no stock tool reads it anyway.
pub fn oplog_key(c: Compression) -> String {
    match c {
        Compression::Gzip | Compression::None => "oplog.bson".to_string(),
        Compression::Zstd => format!("oplog.bson{}", c.suffix()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_mongodump() {
        let ns = Namespace::new("predixi", "comentários_日志");
        assert_eq!(
            data_key(&ns, Compression::Gzip),
            "predixi/coment%C3%A1rios_%E6%97%A5%E5%BF%97.bson.gz"
        );
        assert_eq!(
            metadata_key(&Namespace::new("predixi", "users"), Compression::None),
            "predixi/users.metadata.json"
        );
        assert_eq!(
            data_key(&Namespace::new("d", "with space+plus"), Compression::None),
            "d/with+space%2Bplus.bson"
        );
        assert_eq!(oplog_key(Compression::Zstd), "oplog.bson.zst");
        assert_eq!(oplog_key(Compression::Gzip), "oplog.bson");
    }
}
