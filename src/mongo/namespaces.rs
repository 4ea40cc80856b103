//! Which collections exist and what mongodump's metadata.json needs about them:
//! options, indexes, UUID, type, and size estimates for planning.

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, spec::BinarySubtype, Bson, Document};
use mongodb::Client;

use crate::namespace::{Filter, Namespace};

/// Databases that hold the server's own state; never backed up or restored as user data.
pub const SYSTEM_DATABASES: [&str; 3] = ["admin", "config", "local"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Collection,
    View,
    Timeseries,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Collection => "collection",
            Kind::View => "view",
            Kind::Timeseries => "timeseries",
        }
    }

    /// Where a collection of this kind keeps its documents: a time-series collection's are
    /// its buckets in `system.buckets.<name>`, which mongodump reads and mongorestore fills.
    pub fn data_ns(self, ns: &Namespace) -> Namespace {
        match self {
            Kind::Timeseries => ns.buckets(),
            Kind::Collection | Kind::View => ns.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CollectionInfo {
    pub ns: Namespace,
    pub kind: Kind,
    pub options: Document,
    /// Hex UUID, as mongodump writes it; None for views.
    pub uuid: Option<String>,
    /// listIndexes output, as the server returned it.
    pub indexes: Vec<Document>,
    pub estimated_count: u64,
    /// Uncompressed BSON size estimate (collStats.size).
    pub estimated_bytes: u64,
    /// Read in one natural-order scan rather than in `_id` ranges, however big: set by
    /// `migrate --read-order natural` (see `compare::ranges::natural_scans`). False
    /// elsewhere.
    pub natural_scan: bool,
}

/// Database names to consider: `dbs` if given, else every user database: not the
/// server's own, and not mongoshift's state (`load::state::DB`, which stays on a cluster
/// we wrote to; a backup of it must not carry our resume records elsewhere).
pub async fn databases(client: &Client, dbs: &[String]) -> Result<Vec<String>> {
    if !dbs.is_empty() {
        return Ok(dbs.to_vec());
    }
    let names = client
        .list_database_names()
        .await
        .context("listing databases")?;
    Ok(names
        .into_iter()
        .filter(|n| !SYSTEM_DATABASES.contains(&n.as_str()) && n != crate::load::state::DB)
        .collect())
}

/// Collections and views of `db` allowed by `filter`, with their metadata.
/// The collections of `dbs` (every user database when empty) that `filter` keeps, without
/// mongoshift's own state database; errors name `side` ("the source (legacy)").
pub async fn selected(
    client: &Client,
    dbs: &[String],
    filter: &Filter,
    side: &str,
) -> Result<Vec<CollectionInfo>> {
    let mut out = Vec::new();
    for db in databases(client, dbs)
        .await
        .with_context(|| side.to_string())?
    {
        if db == crate::load::state::DB {
            continue;
        }
        out.extend(
            collections(client, &db, filter)
                .await
                .with_context(|| side.to_string())?,
        );
    }
    Ok(out)
}

pub async fn collections(
    client: &Client,
    db: &str,
    filter: &Filter,
) -> Result<Vec<CollectionInfo>> {
    let database = client.database(db);
    let specs: Vec<Document> = database
        .run_cursor_command(doc! { "listCollections": 1 })
        .await
        .with_context(|| format!("listing collections of {db}"))?
        .try_collect()
        .await
        .with_context(|| format!("listing collections of {db}"))?;
    let mut out = Vec::new();
    for spec in specs {
        let name = spec.get_str("name").unwrap_or_default().to_string();
        // system.views is carried by the views' own metadata; system.profile and the
        // time-series buckets are server-managed. system.js holds user functions.
        if name.starts_with("system.") && name != "system.js" {
            continue;
        }
        let ns = Namespace::new(db, &name);
        if !filter.allows(&ns) {
            continue;
        }
        let kind = match spec.get_str("type").unwrap_or("collection") {
            "view" => Kind::View,
            "timeseries" => Kind::Timeseries,
            _ => Kind::Collection,
        };
        let options = spec.get_document("options").cloned().unwrap_or_default();
        let uuid = spec
            .get_document("info")
            .ok()
            .and_then(|i| i.get("uuid"))
            .and_then(|u| match u {
                Bson::Binary(b) if b.subtype == BinarySubtype::Uuid => Some(hex(&b.bytes)),
                _ => None,
            });
        let mut info = CollectionInfo {
            ns,
            kind,
            options,
            uuid,
            indexes: Vec::new(),
            estimated_count: 0,
            estimated_bytes: 0,
            natural_scan: false,
        };
        if kind != Kind::View {
            info.indexes = match indexes(client, db, &name).await {
                Ok(i) => i,
                // Dropped or renamed since it was listed: it is not there to copy (a tail
                // following the source brings whatever replaced it).
                Err(e) if vanished(&e) => continue,
                Err(e) => return Err(e),
            };
            let data = kind.data_ns(&info.ns);
            let (count, bytes) = size_estimate(client, db, &data.coll).await;
            info.estimated_count = count;
            info.estimated_bytes = bytes;
        }
        out.push(info);
    }
    out.sort_by(|a, b| a.ns.cmp(&b.ns));
    Ok(out)
}

/// The UUID of the collection now named `ns` (hex), None when there is none by that name.
pub async fn uuid_of(client: &Client, ns: &Namespace) -> Result<Option<String>> {
    let specs: Vec<Document> = client
        .database(&ns.db)
        .run_cursor_command(doc! { "listCollections": 1, "filter": { "name": &ns.coll } })
        .await
        .with_context(|| format!("looking up {ns}"))?
        .try_collect()
        .await
        .with_context(|| format!("looking up {ns}"))?;
    Ok(specs
        .first()
        .and_then(|s| match s.get_document("info").ok()?.get("uuid")? {
            Bson::Binary(b) if b.subtype == BinarySubtype::Uuid => Some(hex(&b.bytes)),
            _ => None,
        }))
}

/// The exact number of documents in `ns` on one `side` ("source" / "target").
pub async fn exact_count(client: &Client, ns: &Namespace, side: &str) -> Result<u64> {
    client
        .database(&ns.db)
        .collection::<Document>(&ns.coll)
        .count_documents(doc! {})
        .await
        .with_context(|| format!("counting {ns} on the {side}"))
}

/// Whether an error says the collection no longer exists.
pub fn vanished(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<mongodb::error::Error>())
        .any(|m| crate::mongo::errors::code(m) == Some(26))
}

pub async fn indexes(client: &Client, db: &str, coll: &str) -> Result<Vec<Document>> {
    client
        .database(db)
        .run_cursor_command(doc! { "listIndexes": coll })
        .await
        .with_context(|| format!("listing indexes of {db}.{coll}"))?
        .try_collect()
        .await
        .with_context(|| format!("listing indexes of {db}.{coll}"))
}

/// (document count, data size) from collStats; zeros when the server will not say,
/// which only makes progress bars and part sizes less well tuned.
pub async fn size_estimate(client: &Client, db: &str, coll: &str) -> (u64, u64) {
    match client
        .database(db)
        .run_command(doc! { "collStats": coll })
        .await
    {
        Ok(s) => (
            crate::mongo::health::number(s.get("count")).unwrap_or(0.0) as u64,
            crate::mongo::health::number(s.get("size")).unwrap_or(0.0) as u64,
        ),
        Err(_) => (0, 0),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
