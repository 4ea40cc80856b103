//! Creating collections, views and indexes from mongodump metadata.

use anyhow::{Context, Result};
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use mongodb::Client;

use crate::namespace::Namespace;

/// Create `ns` with the dumped options (capped, validator, collation, view definition…).
pub async fn create(client: &Client, ns: &Namespace, options: &Document) -> Result<()> {
    client
        .database(&ns.db)
        .run_command(create_command(ns, options))
        .await
        .with_context(|| format!("creating {ns}"))?;
    Ok(())
}

/// The create command for `options` as listCollections or a dump's metadata gives them.
fn create_command(ns: &Namespace, options: &Document) -> Document {
    let mut cmd = doc! { "create": &ns.coll };
    for (k, v) in options {
        // Not accepted by create, or meaningless on another server.
        if matches!(k.as_str(), "uuid" | "idIndex") {
            continue;
        }
        // Kept as the server stores it; `false` (no _id index) is refused since 4.0 outside
        // `local`, and mongorestore turns it into `true`, as the server allows.
        if k == "autoIndexId" && ns.db != "local" {
            cmd.insert(k.clone(), true);
            continue;
        }
        cmd.insert(k.clone(), v.clone());
    }
    cmd
}

/// Create `ns` with the UUID `uuid_hex` (32 hex digits, as mongodump's metadata records
/// it): the create command goes through applyOps with `ui`, the one way a server takes a
/// given UUID (mongorestore --preserveUUID does the same).
///
/// Created through applyOps, a collection given no `idIndex` gets a v:1 `_id` index, so the
/// dump's `_id` index spec goes along as `idIndex` (as mongorestore sends it, its version
/// kept), except for a clustered collection, whose `_id` is its clustered index.
pub async fn create_with_uuid(
    client: &Client,
    ns: &Namespace,
    options: &Document,
    uuid_hex: &str,
    id_index: Option<&Document>,
) -> Result<()> {
    let bytes = (uuid_hex.len() == 32)
        .then(|| {
            (0..16)
                .map(|i| u8::from_str_radix(&uuid_hex[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
        .ok_or_else(|| {
            crate::exit::usage(format!(
                "--preserve-uuid: the metadata of {ns} records the UUID '{uuid_hex}', which is not 32 hex digits; restore it without --preserve-uuid"
            ))
        })?;
    let mut create = create_command(ns, options);
    if let (Some(id), false) = (id_index, options.contains_key("clusteredIndex")) {
        let mut id = id.clone();
        id.remove("ns");
        // The server creates the _id index itself from idIndex: autoIndexId is moot.
        create.remove("autoIndexId");
        create.insert("idIndex", id);
    }
    let op = doc! {
        "op": "c",
        "ns": format!("{}.$cmd", ns.db),
        "o": create,
        "ui": Binary { subtype: BinarySubtype::Uuid, bytes },
    };
    client
        .database("admin")
        .run_command(doc! { "applyOps": [op] })
        .await
        .with_context(|| format!("creating {ns} with the UUID {uuid_hex} (--preserve-uuid)"))?;
    Ok(())
}

/// Index specs to build: everything but `_id_` and a clustered index (both made by
/// create, the clustered one from the `clusteredIndex` option whatever its name), without
/// the legacy `ns` field.
pub fn buildable(indexes: &[Document]) -> Vec<Document> {
    indexes
        .iter()
        .filter(|i| i.get_str("name").ok() != Some("_id_"))
        .filter(|i| !i.get_bool("clustered").unwrap_or(false))
        .map(|i| {
            let mut i = i.clone();
            i.remove("ns");
            i
        })
        .collect()
}

/// How many of `indexes` come with the collection itself (`_id_`, a clustered index) and
/// are never built. Index counts everywhere (backups show, plans, results) count every index
/// the collection has, as `listIndexes` does: built ones plus these.
pub fn implicit(indexes: &[Document]) -> usize {
    indexes.len() - buildable(indexes).len()
}

/// Build all of a collection's indexes in one createIndexes.
///
/// An index with the simple collation on a collection with a default collation has no
/// `collation` field in listIndexes (and so in mongodump's metadata and the oplog); built
/// as it is, it would take the collection's collation — a text index then fails, a unique
/// index refuses "A" beside "a", a plain one silently sorts differently. So, as mongorestore
/// does (common/idx/index_catalog.go), such specs get `collation: {locale: "simple"}`,
/// judged against the collection as it stands on the target, which every path (restore,
/// migrate, the tail) created from the source's options.
pub async fn create_indexes(
    client: &Client,
    ns: &Namespace,
    mut indexes: Vec<Document>,
) -> Result<usize> {
    if indexes.is_empty() {
        return Ok(0);
    }
    if indexes.iter().any(|i| !i.contains_key("collation"))
        && has_default_collation(client, ns).await?
    {
        add_simple_collation(&mut indexes);
    }
    let n = indexes.len();
    let names: Vec<String> = indexes
        .iter()
        .filter_map(|i| i.get_str("name").ok().map(str::to_string))
        .collect();
    client
        .database(&ns.db)
        .run_command(doc! { "createIndexes": &ns.coll, "indexes": indexes.into_iter().map(Bson::Document).collect::<Vec<_>>() })
        .await
        .with_context(|| format!("building the indexes of {ns} ({})", names.join(", ")))?;
    Ok(n)
}

/// Whether `ns` has a default collation other than simple. Read as plain BSON: the
/// driver's typed collection options fail on options it does not model.
async fn has_default_collation(client: &Client, ns: &Namespace) -> Result<bool> {
    let r = client
        .database(&ns.db)
        .run_command(doc! { "listCollections": 1, "filter": { "name": &ns.coll } })
        .await
        .with_context(|| format!("reading the options of {ns}"))?;
    let locale = r
        .get_document("cursor")
        .ok()
        .and_then(|c| c.get_array("firstBatch").ok())
        .and_then(|b| b.first())
        .and_then(Bson::as_document)
        .and_then(|spec| spec.get_document("options").ok())
        .and_then(|o| o.get_document("collation").ok())
        .and_then(|c| c.get_str("locale").ok().map(str::to_string));
    Ok(locale.is_some_and(|l| l != "simple"))
}

/// Give every spec without a collation the simple one (see `create_indexes`).
fn add_simple_collation(indexes: &mut [Document]) {
    for i in indexes.iter_mut() {
        if !i.contains_key("collation") {
            i.insert("collation", doc! { "locale": "simple" });
        }
    }
}

pub async fn exists(client: &Client, ns: &Namespace) -> Result<bool> {
    let names = client
        .database(&ns.db)
        .list_collection_names()
        .filter(doc! { "name": &ns.coll })
        .await
        .with_context(|| format!("listing collections of {}", ns.db))?;
    Ok(!names.is_empty())
}

/// Progress of long index builds from currentOp, every few seconds; runs until dropped
/// (callers race it against the build).
pub async fn watch_build(ui: &crate::report::Ui, client: &Client, db: &str, coll: &str) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.tick().await;
    loop {
        tick.tick().await;
        let ops = client
            .database("admin")
            .run_command(doc! { "currentOp": true, "ns": format!("{db}.{coll}"), "command.createIndexes": { "$exists": true } })
            .await;
        if let Ok(r) = ops {
            for op in r
                .get_array("inprog")
                .map(|a| a.iter().filter_map(Bson::as_document).collect::<Vec<_>>())
                .unwrap_or_default()
            {
                ui.info(format!(
                    "{db}.{coll}: {}",
                    op.get_str("msg").unwrap_or("building indexes")
                ));
            }
        }
    }
}

/// Kill in-progress writes on `ns` (e.g. an insertMany of a restore that was killed)
/// and wait until none are left, at most ~30 s.
pub async fn kill_writes(client: &Client, ns: &Namespace) -> Result<()> {
    let admin = client.database("admin");
    for _ in 0..300 {
        let r = admin
            .run_command(doc! { "currentOp": true, "active": true, "ns": ns.to_string(), "op": { "$in": ["insert", "update", "remove"] } })
            .await
            .with_context(|| format!("listing operations on {ns}"))?;
        let ops: Vec<Bson> = r
            .get_array("inprog")
            .map(|a| {
                a.iter()
                    .filter_map(|o| o.as_document()?.get("opid").cloned())
                    .collect()
            })
            .unwrap_or_default();
        if ops.is_empty() {
            return Ok(());
        }
        for opid in ops {
            let _ = admin.run_command(doc! { "killOp": 1, "op": opid }).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("writes on {ns} from an earlier run are still in progress after 30 s; wait for them and re-run with --resume")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_specs_without_a_collation_get_the_simple_one() {
        let mut specs = vec![
            doc! { "key": { "a": 1 }, "name": "a_1" },
            doc! { "key": { "t": "text" }, "name": "t_text" },
            doc! { "key": { "b": 1 }, "name": "b_1", "collation": { "locale": "fr", "strength": 1 } },
        ];
        add_simple_collation(&mut specs);
        assert_eq!(
            specs[0].get_document("collation").unwrap(),
            &doc! { "locale": "simple" }
        );
        assert_eq!(
            specs[1].get_document("collation").unwrap(),
            &doc! { "locale": "simple" }
        );
        assert_eq!(
            specs[2]
                .get_document("collation")
                .unwrap()
                .get_str("locale")
                .unwrap(),
            "fr"
        );
    }
}
