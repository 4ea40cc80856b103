//! Recognising a restore source and listing what it holds.

use std::path::Path;

use anyhow::{bail, Context, Result};
use mongodb::bson::{Bson, Document};

use crate::codec::Compression;
use crate::commands::backups;
use crate::dump::archive::ArchiveReader;
use crate::dump::file_name;
use crate::dump::layout;
use crate::dump::manifest::Manifest;
use crate::exit::usage;
use crate::mongo::namespaces::Kind;
use crate::namespace::Namespace;
use crate::storage::{Location, ObjectMeta, S3Settings, Store};

/// Where one namespace's documents are.
#[derive(Debug, Clone)]
pub enum DataRef {
    /// A `.bson[.gz|.zst]` object; `sha256` when a manifest recorded it; its size as
    /// stored (listed or recorded), which orders the load biggest first.
    Object {
        key: String,
        compression: Compression,
        sha256: Option<String>,
        stored_bytes: u64,
    },
    /// Inside the archive, delivered by its demultiplexer.
    Archive,
}

#[derive(Debug, Clone)]
pub struct SourceNs {
    pub ns: Namespace,
    pub kind: Kind,
    pub options: Document,
    pub indexes: Vec<Document>,
    /// Documents the source says it holds (manifest), if it says.
    pub expected_docs: Option<u64>,
    pub data: Option<DataRef>,
    /// A dump folder's `.metadata.json[.gz]` object, as found in its listing.
    pub metadata_key: Option<String>,
    /// The collection's UUID as the metadata records it (32 hex digits), for --preserve-uuid.
    pub uuid: Option<String>,
}

#[derive(Debug, Clone)]
pub enum OplogRef {
    Object {
        key: String,
        compression: Compression,
        sha256: Option<String>,
    },
    /// Spooled from an archive to a temporary file during demultiplexing.
    Archive,
    /// A local file given with --oplog-file.
    File(std::path::PathBuf),
}

pub enum SourceKind {
    Backup(Box<Manifest>),
    DumpDir,
    Archive { compression: Compression },
}

pub struct Source {
    pub describe: String,
    /// Stable identity for resume state: backup id or the location.
    pub identity: String,
    pub store: Store,
    /// For archives: the object key.
    pub archive_key: Option<String>,
    pub kind: SourceKind,
    pub namespaces: Vec<SourceNs>,
    pub oplog: Option<OplogRef>,
}

impl SourceNs {
    /// What the load engine needs to create and fill the target.
    pub fn collection(&self) -> crate::load::Collection {
        crate::load::Collection {
            ns: self.ns.clone(),
            kind: self.kind,
            options: self.options.clone(),
            indexes: self.indexes.clone(),
            expected_docs: self.expected_docs,
            uuid: self.uuid.clone(),
        }
    }
}

/// Databases a dump may hold that are not the application's: the server's own, and
/// mongoshift's resume state (a dump of a cluster we once wrote to), which restored would
/// be taken for a run on the target.
fn is_system_db(db: &str) -> bool {
    matches!(db, "admin" | "config" | "local") || db == crate::load::state::DB
}

/// Open SOURCE: `LOCATION/ID`, `LOCATION/latest`, a mongodump folder or an archive file
/// (the restore command spools stdin to a file first, so `-` never gets here).
pub async fn open(spec: &str, s3: &S3Settings) -> Result<Source> {
    let loc = Location::parse(spec)?;
    // `.../latest` is the newest complete backup in the parent location.
    if let Some(parent) = spec.strip_suffix("/latest") {
        let ploc = Location::parse(parent)?;
        let pstore = Store::open(&ploc, s3).await?;
        pstore.check_readable().await?;
        let (id, m) = backups::load_manifest(&pstore, &ploc, "latest").await?;
        return Ok(from_manifest(pstore.child(&id), format!("{ploc}/{id}"), m));
    }
    // A single object: an archive.
    if let Some((parent, name)) = split_last(&loc) {
        let pstore = Store::open(&parent, s3).await?;
        let is_file = match &loc {
            Location::Local(p) => p.is_file(),
            Location::S3 { .. } => pstore.head(&name).await.unwrap_or(None).is_some(),
        };
        if is_file && is_bson_name(&name) {
            return single_bson(&parent, &name, s3, spec).await;
        }
        if is_file {
            return open_archive(pstore, name, spec).await;
        }
    }
    let store = Store::open(&loc, s3).await?;
    if store.head(layout::MANIFEST).await?.is_some() {
        let m = Manifest::parse(
            &store.get(layout::MANIFEST).await?,
            &format!("{loc}/{}", layout::MANIFEST),
        )?;
        return Ok(from_manifest(store, loc.to_string(), m));
    }
    let objects = store.list("").await?;
    if objects.is_empty() {
        return Err(usage(format!(
            "restore source {spec} is empty or does not exist; give a backup (LOCATION/ID or LOCATION/latest), \
             a mongodump folder or a mongodump archive"
        )));
    }
    // A database's folder (mongorestore --db NAME dump/NAME): its files are that database's.
    let top_level_data = objects.iter().all(|o| !o.key.contains('/'))
        && objects
            .iter()
            .any(|o| o.key != "oplog.bson" && is_bson_name(&o.key));
    if top_level_data {
        if let Some((parent, db)) = split_last(&loc) {
            let keys: Vec<ObjectMeta> = objects
                .iter()
                .filter(|o| !o.key.starts_with("oplog.bson"))
                .map(|o| ObjectMeta {
                    key: format!("{db}/{}", o.key),
                    size: o.size,
                })
                .collect();
            return dump_dir(Store::open(&parent, s3).await?, loc.to_string(), &keys).await;
        }
    }
    if objects.iter().any(|o| o.key == layout::STARTED) {
        return Err(usage(format!(
            "{spec} is an incomplete mongoshift backup: it has no manifest.json, so it was interrupted or failed. \
             Restore a complete one (`mongoshift backups list`)"
        )));
    }
    dump_dir(store, loc.to_string(), &objects).await
}

fn is_bson_name(name: &str) -> bool {
    [".bson", ".bson.gz", ".bson.zst"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// One collection's `.bson` (mongorestore's `dump/DB/COLL.bson`): the collection is named
/// by the file, its database by the folder the file is in; its metadata file beside it is
/// read when there is one.
async fn single_bson(folder: &Location, name: &str, s3: &S3Settings, spec: &str) -> Result<Source> {
    let Some((root, db)) = split_last(folder) else {
        return Err(usage(format!(
            "{spec}: a single .bson file is restored into the database named by its folder (DB/COLL.bson); this one has no folder"
        )));
    };
    let store = Store::open(&root, s3).await?;
    // A single collection: its size orders nothing.
    let mut keys = vec![ObjectMeta {
        key: format!("{db}/{name}"),
        size: 0,
    }];
    let stem = name
        .trim_end_matches(".gz")
        .trim_end_matches(".zst")
        .trim_end_matches(".bson");
    for meta in [
        format!("{db}/{stem}.metadata.json"),
        format!("{db}/{stem}.metadata.json.gz"),
    ] {
        if let Some(size) = store.head(&meta).await? {
            keys.push(ObjectMeta { key: meta, size });
        }
    }
    dump_dir(store, spec.to_string(), &keys).await
}

fn split_last(loc: &Location) -> Option<(Location, String)> {
    match loc {
        Location::Local(p) => {
            let name = p.file_name()?.to_string_lossy().into_owned();
            let parent = p
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| ".".into());
            Some((
                Location::Local(if parent.as_os_str().is_empty() {
                    ".".into()
                } else {
                    parent
                }),
                name,
            ))
        }
        Location::S3 { bucket, prefix } => {
            let (parent, name) = prefix.rsplit_once('/').unwrap_or(("", prefix));
            (!name.is_empty()).then(|| {
                (
                    Location::S3 {
                        bucket: bucket.clone(),
                        prefix: parent.to_string(),
                    },
                    name.to_string(),
                )
            })
        }
    }
}

fn from_manifest(store: Store, describe: String, m: Manifest) -> Source {
    let namespaces = m
        .namespaces
        .iter()
        .map(|n| SourceNs {
            ns: n.ns(),
            kind: kind_of(&n.kind),
            options: Document::new(),
            indexes: vec![],
            expected_docs: Some(n.documents),
            metadata_key: None,
            uuid: None,
            data: n.data.as_ref().map(|d| DataRef::Object {
                key: d.key.clone(),
                compression: m.compression,
                sha256: Some(d.sha256.clone()),
                stored_bytes: d.stored_bytes,
            }),
        })
        .collect();
    let oplog = m.oplog.as_ref().map(|o| OplogRef::Object {
        key: o.object.key.clone(),
        compression: m.compression,
        sha256: Some(o.object.sha256.clone()),
    });
    Source {
        describe,
        identity: format!("backup:{}", m.backup_id),
        store,
        archive_key: None,
        kind: SourceKind::Backup(Box::new(m)),
        namespaces,
        oplog,
    }
}

fn kind_of(s: &str) -> Kind {
    match s {
        "view" => Kind::View,
        "timeseries" => Kind::Timeseries,
        _ => Kind::Collection,
    }
}

/// Fill options and indexes from the metadata objects (our backups and dump folders), for
/// the namespaces `selected` allows only: an unselected namespace's metadata is never read.
/// A dump folder's `.bson` without a `.metadata.json`, or with an empty one, is a plain
/// collection with no options and no indexes besides `_id`, as mongorestore takes it.
pub async fn load_metadata(src: &mut Source, selected: &crate::namespace::Filter) -> Result<()> {
    if matches!(src.kind, SourceKind::Archive { .. }) {
        return Ok(());
    }
    let backup_meta: Vec<Option<(String, String)>> = match &src.kind {
        SourceKind::Backup(m) => m
            .namespaces
            .iter()
            .map(|n| Some((n.metadata.key.clone(), n.metadata.sha256.clone())))
            .collect(),
        _ => vec![None; src.namespaces.len()],
    };
    for (n, meta) in src.namespaces.iter_mut().zip(backup_meta) {
        if !selected.allows(&n.ns) {
            continue;
        }
        let key = match (&meta, &n.metadata_key) {
            (Some((k, _)), _) => k.clone(),
            (None, Some(k)) => k.clone(),
            _ => {
                let c = match &n.data {
                    Some(DataRef::Object { compression, .. }) => *compression,
                    _ => Compression::None,
                };
                // Dumps store metadata with the same compression as the data; views have no data.
                let k = layout::metadata_key(&n.ns, c);
                let other = layout::metadata_key(
                    &n.ns,
                    if c == Compression::None {
                        Compression::Gzip
                    } else {
                        Compression::None
                    },
                );
                if src.store.head(&k).await?.is_some() {
                    k
                } else if src.store.head(&other).await?.is_some() {
                    other
                } else {
                    continue;
                }
            }
        };
        let stored = src
            .store
            .get(&key)
            .await
            .with_context(|| format!("reading {key}"))?;
        if let Some((_, sha)) = &meta {
            let got = crate::pipeline::sha256_hex(&stored);
            if &got != sha {
                bail!("{key} is corrupt: its sha256 is {got}, the manifest records {sha}");
            }
        }
        if stored.is_empty() && meta.is_none() {
            continue;
        }
        let json = crate::codec::decompress_all(Compression::from_name(&key), &stored)
            .with_context(|| format!("decompressing {key}"))?;
        if json.iter().all(u8::is_ascii_whitespace) && meta.is_none() {
            continue;
        }
        apply_metadata(n, &json, &key)?;
    }
    Ok(())
}

/// Parse metadata.json (canonical Extended JSON) into options, indexes and kind.
pub fn apply_metadata(n: &mut SourceNs, json: &[u8], what: &str) -> Result<()> {
    let v: serde_json::Value =
        serde_json::from_slice(json).with_context(|| format!("{what} is not valid JSON"))?;
    let b = Bson::try_from(v).with_context(|| format!("{what} is not valid Extended JSON"))?;
    let Bson::Document(d) = b else {
        bail!("{what} is not a JSON object")
    };
    n.options = d.get_document("options").cloned().unwrap_or_default();
    n.indexes = d
        .get_array("indexes")
        .map(|a| a.iter().filter_map(|i| i.as_document().cloned()).collect())
        .unwrap_or_default();
    if let Ok(t) = d.get_str("type") {
        n.kind = kind_of(t);
    }
    n.uuid = d
        .get_str("uuid")
        .ok()
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    Ok(())
}

async fn dump_dir(store: Store, describe: String, keys: &[ObjectMeta]) -> Result<Source> {
    let mut namespaces: Vec<SourceNs> = Vec::new();
    let mut oplog = None;
    // mongorestore's second choice: a dump of the local database's oplog.
    let mut local_oplog = None;
    // Users and roles (restored on request, see restore::users).
    let mut saw_auth = false;
    let mut saw_gzip = false;
    let mut saw_plain = false;
    for ObjectMeta { key, size } in keys {
        if let Some(rest) = key.strip_prefix("oplog.bson") {
            if !key.contains('/') && matches!(rest, "" | ".gz" | ".zst") {
                oplog = Some(OplogRef::Object {
                    key: key.clone(),
                    compression: Compression::from_name(key),
                    sha256: None,
                });
            }
            continue;
        }
        let Some((db, file)) = key.split_once('/') else {
            continue;
        };
        saw_auth |= db == "admin"
            && (file.starts_with("system.users.bson") || file.starts_with("system.roles.bson"));
        if db == "local" {
            if let Some(rest) = file.strip_prefix("oplog.rs.bson") {
                if matches!(rest, "" | ".gz" | ".zst") {
                    local_oplog = Some(OplogRef::Object {
                        key: key.clone(),
                        compression: Compression::from_name(key),
                        sha256: None,
                    });
                }
            }
        }
        if file.contains('/') || is_system_db(db) {
            continue;
        }
        let compression = Compression::from_name(file);
        saw_gzip |= compression == Compression::Gzip;
        saw_plain |= compression == Compression::None;
        let base = file.strip_suffix(compression.suffix()).unwrap_or(file);
        let (stem, is_data) = if let Some(c) = base.strip_suffix(".bson") {
            (c, true)
        } else if let Some(c) = base.strip_suffix(".metadata.json") {
            (c, false)
        } else {
            continue;
        };
        let coll = collection_name(&store, keys, db, stem, key).await?;
        // mongodump names a time-series collection's data system.buckets.<name>.bson.
        let ns = Namespace::new(db, coll).without_buckets_prefix();
        let idx = match namespaces.iter().position(|n| n.ns == ns) {
            Some(i) => i,
            None => {
                namespaces.push(SourceNs {
                    ns,
                    kind: Kind::Collection,
                    options: Document::new(),
                    indexes: vec![],
                    expected_docs: None,
                    data: None,
                    metadata_key: None,
                    uuid: None,
                });
                namespaces.len() - 1
            }
        };
        if is_data {
            namespaces[idx].data = Some(DataRef::Object {
                key: key.clone(),
                compression,
                sha256: None,
                stored_bytes: *size,
            });
        } else {
            namespaces[idx].metadata_key = Some(key.clone());
        }
    }
    // mongodump --gzip gzips the oplog but keeps the name `oplog.bson`; --gzip is all or
    // nothing, so the collection files tell which it was.
    if let Some(OplogRef::Object {
        key, compression, ..
    }) = &mut oplog
    {
        if key == "oplog.bson" && saw_gzip && !saw_plain {
            *compression = Compression::Gzip;
        }
    }
    let oplog = oplog.or(local_oplog);
    namespaces.sort_by(|a, b| a.ns.cmp(&b.ns));
    if namespaces.is_empty() && oplog.is_none() && !saw_auth {
        return Err(usage(format!(
            "{describe} holds no <db>/<collection>.bson or .metadata.json files nor an oplog.bson: it is not a mongodump folder or backup"
        )));
    }
    Ok(Source {
        identity: format!("dump:{describe}"),
        describe,
        store,
        archive_key: None,
        kind: SourceKind::DumpDir,
        namespaces,
        oplog,
    })
}

/// The collection a dump file `key` (`<db>/<stem>.…`) belongs to, as mongorestore 100.8.0
/// reads it (mongorestore/filepath.go getInfoFromFile): the unescaped stem, or, for a long
/// name mongodump truncated to `…%24<hash>`, the `collectionName` of the stem's metadata
/// file. Unlike mongorestore we take `collectionName` as written: it is the real name, not
/// an escaped one, so unescaping it would turn a `+` into a space.
async fn collection_name(
    store: &Store,
    keys: &[ObjectMeta],
    db: &str,
    stem: &str,
    key: &str,
) -> Result<String> {
    if file_name::maybe_truncated(stem) {
        let meta = [".metadata.json", ".metadata.json.gz", ".metadata.json.zst"]
            .iter()
            .map(|suffix| format!("{db}/{stem}{suffix}"))
            .find(|k| keys.iter().any(|o| o.key == *k));
        let Some(meta) = meta else {
            return Err(usage(format!(
                "{key} has a truncated long name (…%24<hash>, as mongodump writes names longer than a file name may be), \
                 but there is no {db}/{stem}.metadata.json[.gz] to read the collection's real name from; \
                 copy that file from the dump too"
            )));
        };
        let stored = store
            .get(&meta)
            .await
            .with_context(|| format!("reading {meta}"))?;
        let json = crate::codec::decompress_all(Compression::from_name(&meta), &stored)
            .with_context(|| format!("decompressing {meta}"))?;
        let v: serde_json::Value =
            serde_json::from_slice(&json).with_context(|| format!("{meta} is not valid JSON"))?;
        return match v.get("collectionName").and_then(|c| c.as_str()) {
            Some(name) if !name.is_empty() => Ok(name.to_string()),
            _ => Err(usage(format!(
                "{meta} has no collectionName, and its file name is a truncated long name: the \
                 collection's real name is unknown. Re-create the dump with mongodump 100.x"
            ))),
        };
    }
    file_name::unescape(stem).with_context(|| format!("file name {key}"))
}

async fn open_archive(store: Store, key: String, spec: &str) -> Result<Source> {
    // Peek at the first bytes: gzip (1f 8b) or a bare archive.
    let compression = {
        let mut r = store.open_read(&key).await?;
        let mut head = [0u8; 2];
        let _ = tokio::io::AsyncReadExt::read(&mut r, &mut head).await;
        if head == [0x1f, 0x8b] {
            Compression::Gzip
        } else {
            Compression::None
        }
    };
    let mut src = Source {
        describe: spec.to_string(),
        identity: format!("archive:{spec}"),
        store,
        archive_key: Some(key),
        kind: SourceKind::Archive { compression },
        namespaces: vec![],
        oplog: None,
    };
    let prelude = read_prelude(&src).await?;
    set_archive_namespaces(&mut src, &prelude)?;
    Ok(src)
}

/// Read just the prelude of an archive object.
pub async fn read_prelude(src: &Source) -> Result<crate::dump::archive::Prelude> {
    let SourceKind::Archive { compression } = src.kind else {
        bail!("not an archive")
    };
    let key = src.archive_key.clone().unwrap_or_default();
    let reader = src.store.open_read(&key).await?;
    let what = src.describe.clone();
    tokio::task::spawn_blocking(move || {
        let bridge = tokio_util::io::SyncIoBridge::new(reader);
        let decoded = crate::codec::decoder(compression, std::io::BufReader::new(bridge))?;
        ArchiveReader::new(decoded, &what).prelude()
    })
    .await?
}

pub fn set_archive_namespaces(
    src: &mut Source,
    prelude: &crate::dump::archive::Prelude,
) -> Result<()> {
    for c in &prelude.collections {
        if c.db.is_empty() && c.collection == "oplog" {
            src.oplog = Some(OplogRef::Archive);
            continue;
        }
        if is_system_db(&c.db) {
            continue;
        }
        let mut n = SourceNs {
            ns: Namespace::new(&c.db, &c.collection),
            kind: Kind::Collection,
            options: Document::new(),
            indexes: vec![],
            expected_docs: None,
            data: Some(DataRef::Archive),
            metadata_key: None,
            uuid: None,
        };
        apply_metadata(
            &mut n,
            c.metadata.as_bytes(),
            &format!("{}: metadata of {}.{}", src.describe, c.db, c.collection),
        )?;
        if n.kind == Kind::View {
            n.data = None;
        }
        src.namespaces.push(n);
    }
    src.namespaces.sort_by(|a, b| a.ns.cmp(&b.ns));
    Ok(())
}
