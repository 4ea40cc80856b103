//! Users and roles in a dump (`admin/system.users.bson`, `admin/system.roles.bson`, or
//! those namespaces in a mongodump archive), restored only when asked (`--users-and-roles`) the way mongorestore does it: the
//! documents go into temporary collections and the server merges them into its own auth
//! collections with `_mergeAuthzCollections`, which keeps the users' credentials as they
//! were dumped. Nothing here ever prints a document: they hold password hashes.

use anyhow::{Context, Result};
use mongodb::bson::{doc, Document, RawDocumentBuf};
use mongodb::Client;

use std::collections::HashMap;

use tokio::sync::mpsc;

use crate::codec::{self, Compression};
use crate::dump::bson_stream;
use crate::mongo::raw_write::Batch;
use crate::namespace::Namespace;
use crate::restore::source::{self, Source, SourceKind};
use crate::restore::stream;

const TEMP_USERS: &str = "mongoshift_restore_users";
const TEMP_ROLES: &str = "mongoshift_restore_roles";

/// The users and roles a dump holds (documents, never shown).
pub struct UsersAndRoles {
    pub users: Vec<RawDocumentBuf>,
    pub roles: Vec<RawDocumentBuf>,
    /// False for an archive whose documents were not read (only its prelude, which says
    /// the namespaces are there): the counts are then unknown.
    pub counted: bool,
}

impl UsersAndRoles {
    /// "3 users and 1 role" — or, uncounted, what the archive lists.
    pub fn describe(&self) -> String {
        if self.counted {
            format!("{} users and {} roles", self.users.len(), self.roles.len())
        } else {
            "users and roles (admin.system.users / admin.system.roles)".into()
        }
    }
}

async fn read(src: &Source, name: &str) -> Result<Vec<RawDocumentBuf>> {
    for (key, c) in [
        (format!("admin/{name}.bson"), Compression::None),
        (format!("admin/{name}.bson.gz"), Compression::Gzip),
    ] {
        if src.store.head(&key).await?.is_none() {
            continue;
        }
        let stored = src.store.get(&key).await?;
        let mut c = c;
        // mongodump --gzip keeps no .gz on some names; the bytes say.
        if stored.starts_with(&[0x1f, 0x8b]) {
            c = Compression::Gzip;
        }
        let bytes =
            codec::decompress_all(c, &stored).with_context(|| format!("decompressing {key}"))?;
        let mut out = Vec::new();
        bson_stream::walk(&bytes[..], &key, |d| {
            out.push(d.to_raw_document_buf());
            Ok(())
        })?;
        return Ok(out);
    }
    Ok(vec![])
}

/// What the source holds (None: no users nor roles, or a source that cannot hold them).
/// An archive's documents are read only with `load` (one more pass over the archive, made
/// only when they are to be restored); otherwise its prelude says whether it holds any.
pub async fn find(src: &Source, load: bool) -> Result<Option<UsersAndRoles>> {
    match src.kind {
        SourceKind::DumpDir => {
            let found = UsersAndRoles {
                users: read(src, "system.users").await?,
                roles: read(src, "system.roles").await?,
                counted: true,
            };
            Ok((!found.users.is_empty() || !found.roles.is_empty()).then_some(found))
        }
        SourceKind::Archive { compression } => {
            let prelude = source::read_prelude(src).await?;
            let listed = |c: &str| {
                prelude
                    .collections
                    .iter()
                    .any(|x| x.db == "admin" && x.collection == c)
            };
            if !listed("system.users") && !listed("system.roles") {
                return Ok(None);
            }
            if !load {
                return Ok(Some(UsersAndRoles {
                    users: vec![],
                    roles: vec![],
                    counted: false,
                }));
            }
            let (users_tx, users_rx) = mpsc::channel::<Batch>(4);
            let (roles_tx, roles_rx) = mpsc::channel::<Batch>(4);
            let routes = HashMap::from([
                (Namespace::new("admin", "system.users"), users_tx),
                (Namespace::new("admin", "system.roles"), roles_tx),
            ]);
            let key = src.archive_key.clone().unwrap_or_default();
            let demux =
                stream::archive_batches(&src.store, &key, compression, &src.describe, routes, None);
            let collect = |mut rx: mpsc::Receiver<Batch>| async move {
                let mut out = Vec::new();
                while let Some(b) = rx.recv().await {
                    out.extend(b.into_docs());
                }
                out
            };
            let (read, users, roles) = tokio::join!(demux, collect(users_rx), collect(roles_rx));
            read.with_context(|| format!("reading the users and roles of {}", src.describe))?;
            let found = UsersAndRoles {
                users,
                roles,
                counted: true,
            };
            Ok((!found.users.is_empty() || !found.roles.is_empty()).then_some(found))
        }
        SourceKind::Backup(_) => Ok(None),
    }
}

/// Merge them into the target's users and roles; with `drop`, the target's other users and
/// roles are removed (mongorestore --drop). Returns (users, roles) restored.
pub async fn restore(client: &Client, found: &UsersAndRoles, drop: bool) -> Result<(usize, usize)> {
    let admin = client.database("admin");
    for (coll, docs) in [(TEMP_USERS, &found.users), (TEMP_ROLES, &found.roles)] {
        let c = admin.collection::<RawDocumentBuf>(coll);
        c.drop()
            .await
            .with_context(|| format!("dropping admin.{coll}"))?;
        admin
            .create_collection(coll)
            .await
            .with_context(|| format!("creating admin.{coll}"))?;
        if !docs.is_empty() {
            c.insert_many(docs.iter().cloned())
                .await
                .with_context(|| format!("loading the dump's users and roles into admin.{coll}"))?;
        }
    }
    let merged = admin
        .run_command(doc! {
            "_mergeAuthzCollections": 1,
            "tempUsersCollection": format!("admin.{TEMP_USERS}"),
            "tempRolesCollection": format!("admin.{TEMP_ROLES}"),
            "drop": drop,
            "db": "",
        })
        .await
        .context("merging the dump's users and roles (_mergeAuthzCollections)");
    for coll in [TEMP_USERS, TEMP_ROLES] {
        let _ = admin.collection::<Document>(coll).drop().await;
    }
    merged?;
    Ok((found.users.len(), found.roles.len()))
}
