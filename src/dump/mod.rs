//! The mongodump formats we read and write: the directory layout
//! (`<db>/<coll>.bson[.gz|.zst]`, `.metadata.json`), the BSON document stream,
//! and our own `manifest.json` commit marker.

pub mod archive;
pub mod bson_stream;
pub mod file_name;
pub mod layout;
pub mod manifest;
pub mod metadata;
