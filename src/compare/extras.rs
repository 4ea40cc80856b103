//! What exists only on the target: collections and views in the databases being verified
//! (after renaming), and, when every database is verified, whole databases the source does
//! not have. Comparing only the source's namespaces cannot see these, and a target with
//! an extra collection (or view) does not hold "exactly our data".

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::Client;

use super::verdict::NsVerdict;
use crate::mongo::namespaces::{self, CollectionInfo};
use crate::namespace::{Filter, Namespace, Renamer};

/// What was verified, to tell what on the target is outside it.
pub struct Scope<'a> {
    /// The source databases looked at.
    pub source_dbs: &'a [String],
    /// The source collections compared.
    pub colls: &'a [CollectionInfo],
    /// The namespace filter (on source names).
    pub filter: &'a Filter,
    /// Source → target names, and its inverse (target → source names).
    pub renamer: &'a Renamer,
    pub back: &'a Renamer,
    /// Every database of the source was verified (no `--db`): extra databases count too.
    pub everything: bool,
}

/// The target's collections of `db`: (name, type), without the server's own
/// (`system.*`, except `system.js`, which holds user functions; time-series buckets).
async fn listed(dst: &Client, db: &str) -> Result<Vec<(String, String)>> {
    let specs: Vec<Document> = dst
        .database(db)
        .run_cursor_command(doc! { "listCollections": 1, "nameOnly": true })
        .await
        .with_context(|| format!("listing collections of {db} on the target"))?
        .try_collect()
        .await
        .with_context(|| format!("listing collections of {db} on the target"))?;
    Ok(specs
        .into_iter()
        .filter_map(|s| {
            let name = s.get_str("name").ok()?.to_string();
            let kind = s.get_str("type").unwrap_or("collection").to_string();
            (!name.starts_with("system.") || name == "system.js").then_some((name, kind))
        })
        .collect())
}

fn extra(target: String, kind: &str, what: String) -> NsVerdict {
    NsVerdict {
        source: String::new(),
        target,
        kind: kind.to_string(),
        metadata: vec![what],
        extra_on_target: true,
        ..Default::default()
    }
}

/// Everything in scope on the target that the source does not have, one verdict each.
pub async fn on_target(dst: &Client, scope: &Scope<'_>) -> Result<Vec<NsVerdict>> {
    let expected: BTreeSet<String> = scope
        .colls
        .iter()
        .map(|c| scope.renamer.map(&c.ns).to_string())
        .collect();
    // The target databases the verified source databases map to.
    let mut dbs: BTreeSet<String> = scope
        .colls
        .iter()
        .map(|c| scope.renamer.map(&c.ns).db)
        .collect();
    for d in scope.source_dbs {
        dbs.insert(scope.renamer.map(&Namespace::new(d, "x")).db);
    }
    let in_scope = |t: &Namespace| {
        let s = scope.back.map(t);
        scope.filter.allows(&s) && (scope.everything || scope.source_dbs.contains(&s.db))
    };
    let mut out = Vec::new();
    for db in &dbs {
        for (name, kind) in listed(dst, db).await? {
            let t = Namespace::new(db, &name);
            if !expected.contains(&t.to_string()) && in_scope(&t) {
                out.push(extra(
                    t.to_string(),
                    &kind,
                    format!("{t} exists only on the target (a {kind})"),
                ));
            }
        }
    }
    if scope.everything {
        let all = namespaces::databases(dst, &[])
            .await
            .context("listing the databases of the target")?;
        for db in all {
            if dbs.contains(&db) || db == crate::load::state::DB {
                continue;
            }
            let colls = listed(dst, &db).await?;
            let n = colls
                .iter()
                .filter(|(c, _)| in_scope(&Namespace::new(&db, c)))
                .count();
            if n > 0 {
                out.push(extra(
                    db.clone(),
                    "database",
                    format!(
                        "database {db} exists only on the target ({n} collection(s) and view(s))"
                    ),
                ));
            }
        }
    }
    Ok(out)
}
