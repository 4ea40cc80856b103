//! `explain` with `executionStats` of a find or an aggregation, read down to what a person
//! (and a CI budget) needs: the winning plan's stages and index, time, keys and documents
//! examined, documents returned, and whether it sorted in memory.

use anyhow::{Context, Result};
use mongodb::bson::{doc, Bson, Document};
use mongodb::Client;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    /// The winning plan as a chain of stages, e.g. `LIMIT ← FETCH ← IXSCAN status_1_created_at_-1`.
    pub plan: String,
    pub indexes: Vec<String>,
    pub collscan: bool,
    pub in_memory_sort: bool,
    pub millis: u64,
    pub keys_examined: u64,
    pub docs_examined: u64,
    pub returned: u64,
}

/// What to explain: a find (filter, sort, projection, limit), a distinct (its key and
/// filter) or a pipeline.
pub struct Query<'a> {
    /// A distinct's key: explained as the distinct it was (a `DISTINCT_SCAN` is not a find's plan).
    pub distinct: Option<&'a str>,
    pub db: &'a str,
    pub coll: &'a str,
    pub filter: &'a Document,
    pub sort: &'a Document,
    pub limit: Option<i64>,
    pub pipeline: Option<&'a [Bson]>,
}

fn find_key<'a>(d: &'a Document, key: &str) -> Option<&'a Document> {
    if let Ok(x) = d.get_document(key) {
        return Some(x);
    }
    for (_, v) in d {
        let found = match v {
            Bson::Document(inner) => find_key(inner, key),
            Bson::Array(a) => a
                .iter()
                .filter_map(|x| x.as_document())
                .find_map(|x| find_key(x, key)),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn num(d: &Document, k: &str) -> u64 {
    super::count(d.get(k))
}

/// The stages of a plan, top first; collects index names.
fn stages(plan: &Document, out: &mut Vec<String>, indexes: &mut Vec<String>) {
    let stage = plan.get_str("stage").unwrap_or("?");
    match plan.get_str("indexName") {
        Ok(i) => {
            out.push(format!("{stage} {i}"));
            indexes.push(i.to_string());
        }
        Err(_) => out.push(stage.to_string()),
    }
    if let Ok(c) = plan.get_document("inputStage") {
        stages(c, out, indexes);
    }
    if let Ok(cs) = plan.get_array("inputStages") {
        for c in cs.iter().filter_map(|c| c.as_document()) {
            stages(c, out, indexes);
        }
    }
}

pub async fn explain(client: &Client, q: &Query<'_>) -> Result<Explained> {
    let inner = match (q.pipeline, q.distinct) {
        (Some(p), _) => doc! { "aggregate": q.coll, "pipeline": p.to_vec(), "cursor": {} },
        (None, Some(key)) => doc! { "distinct": q.coll, "key": key, "query": q.filter.clone() },
        (None, None) => {
            let mut f = doc! { "find": q.coll, "filter": q.filter.clone() };
            if !q.sort.is_empty() {
                f.insert("sort", q.sort.clone());
            }
            if let Some(l) = q.limit {
                f.insert("limit", l);
            }
            f
        }
    };
    let r = client
        .database(q.db)
        .run_command(doc! { "explain": inner, "verbosity": "executionStats" })
        .await
        .with_context(|| format!("explaining a query on {}.{}", q.db, q.coll))?;
    let planner = find_key(&r, "queryPlanner").with_context(|| {
        format!(
            "no queryPlanner in the explain output of {}.{}",
            q.db, q.coll
        )
    })?;
    let winning = planner
        .get_document("winningPlan")
        .cloned()
        .unwrap_or_default();
    // A plan cached by the SBE engine nests the tree under queryPlan.
    let winning = winning
        .get_document("queryPlan")
        .cloned()
        .unwrap_or(winning);
    let mut chain = Vec::new();
    let mut indexes = Vec::new();
    stages(&winning, &mut chain, &mut indexes);
    let stats = find_key(&r, "executionStats").cloned().unwrap_or_default();
    // An aggregation's $sort that is not pushed into the plan sorts in memory too.
    let agg_sort = q.pipeline.is_some()
        && r.get_array("stages").is_ok_and(|s| {
            s.iter()
                .filter_map(|x| x.as_document())
                .any(|x| x.contains_key("$sort"))
        });
    Ok(Explained {
        collscan: chain.iter().any(|s| s.starts_with("COLLSCAN")),
        in_memory_sort: chain.iter().any(|s| s == "SORT") || agg_sort,
        plan: chain.join(" ← "),
        indexes,
        millis: num(&stats, "executionTimeMillis"),
        keys_examined: num(&stats, "totalKeysExamined"),
        docs_examined: num(&stats, "totalDocsExamined"),
        returned: num(&stats, "nReturned"),
    })
}
