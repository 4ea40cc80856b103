//! Critical queries with budgets (`index-specs/*.queries.yaml`), the CI gate of `analyze
//! check`: each query is explained with `executionStats` and held to its budgets.
//!
//! ```yaml
//! database: predixi
//! queries:
//!   - name: user login
//!     collection: users
//!     filter: { google_id: "g-000001" }
//!     limit: 1
//!     max_ms: 50
//!     must_use_index: true
//!     max_docs_examined_per_returned: 1
//! ```
//! Values are YAML, read as MongoDB Extended JSON (`{ $oid: … }`, `{ $date: … }`).

use std::path::Path;

use anyhow::{Context, Result};
use mongodb::bson::{Bson, Document};
use serde::Deserialize;

use super::explain::Explained;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryFile {
    pub database: String,
    pub queries: Vec<Critical>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Critical {
    pub name: String,
    pub collection: String,
    #[serde(default)]
    pub filter: Option<serde_json::Value>,
    #[serde(default)]
    pub sort: Option<serde_json::Value>,
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub pipeline: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub max_ms: Option<u64>,
    #[serde(default)]
    pub must_use_index: bool,
    #[serde(default)]
    pub max_docs_examined_per_returned: Option<f64>,
}

fn doc_of(v: &Option<serde_json::Value>, what: &str) -> Result<Document> {
    match v {
        None => Ok(Document::new()),
        Some(v) => match Bson::try_from(v.clone())
            .with_context(|| format!("{what} is not valid Extended JSON"))?
        {
            Bson::Document(d) => Ok(d),
            _ => anyhow::bail!("{what} must be a mapping"),
        },
    }
}

impl Critical {
    pub fn filter(&self) -> Result<Document> {
        doc_of(&self.filter, &format!("the filter of {:?}", self.name))
    }
    pub fn sort(&self) -> Result<Document> {
        doc_of(&self.sort, &format!("the sort of {:?}", self.name))
    }
    pub fn pipeline(&self) -> Result<Option<Vec<Bson>>> {
        self.pipeline
            .as_ref()
            .map(|p| {
                p.iter()
                    .map(|s| {
                        Bson::try_from(s.clone()).with_context(|| {
                            format!(
                                "a pipeline stage of {:?} is not valid Extended JSON",
                                self.name
                            )
                        })
                    })
                    .collect()
            })
            .transpose()
    }

    /// The budgets this explain breaks, described.
    pub fn breaches(&self, e: &Explained) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(max) = self.max_ms {
            if e.millis > max {
                out.push(format!("took {} ms, budget {max} ms", e.millis));
            }
        }
        if self.must_use_index && (e.collscan || e.indexes.is_empty()) {
            out.push(format!("uses no index ({})", e.plan));
        }
        if let Some(max) = self.max_docs_examined_per_returned {
            let ratio = e.docs_examined as f64 / e.returned.max(1) as f64;
            if ratio > max {
                // With nothing returned there is no ratio to show: say so.
                out.push(if e.returned == 0 {
                    format!(
                        "examined {} documents and returned none (budget {max} per returned)",
                        e.docs_examined
                    )
                } else {
                    format!(
                        "examined {} documents for {} returned ({ratio:.1} per returned, budget {max})",
                        e.docs_examined, e.returned
                    )
                });
            }
        }
        out
    }
}

/// Read and check a query file; errors name the file, and serde_yaml's line and column.
pub fn load(path: &Path) -> Result<QueryFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let f: QueryFile = serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        crate::exit::usage(format!("{}{at}: {e}", path.display()))
    })?;
    for q in &f.queries {
        if q.pipeline.is_some() && (q.filter.is_some() || q.sort.is_some()) {
            return Err(crate::exit::usage(format!(
                "{}: query {:?} has both a pipeline and a filter/sort; give one",
                path.display(),
                q.name
            )));
        }
        q.filter()
            .and(q.sort())
            .and(q.pipeline())
            .map_err(|e| crate::exit::usage(format!("{}: {e:#}", path.display())))?;
    }
    Ok(f)
}
