//! The index spec format (`index-specs/*.yaml`), parsed and linted with positions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mongodb::bson::{Bson, Document};

use crate::exit::usage;
use crate::yaml_tree::{self, Node, Value};

/// Where something was written, for messages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Issue {
    pub origin: Origin,
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// One index, in the form both specs and live indexes are compared in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexDef {
    /// Ordered key pattern; text fields folded into `_fts: "text", _ftsx: 1` as the server stores them.
    pub key: Vec<(String, Bson)>,
    /// None in a spec means "the server's default name".
    pub name: Option<String>,
    pub unique: bool,
    pub sparse: bool,
    pub hidden: bool,
    pub expire_after: Option<i64>,
    pub partial_filter: Option<Document>,
    pub collation: Option<Document>,
    /// Text indexes: field → weight.
    pub weights: Option<BTreeMap<String, i64>>,
    /// Text indexes: the text fields in the spec's order, which the server's default
    /// name follows (`title_text_body_text`). Empty for indexes read from a server.
    pub text_fields: Vec<String>,
    pub default_language: Option<String>,
    pub language_override: Option<String>,
    pub wildcard_projection: Option<Document>,
    pub origin: Option<Origin>,
}

#[derive(Debug, Clone, Default)]
pub struct Specs {
    /// database → collection → indexes, in file order.
    pub databases: BTreeMap<String, BTreeMap<String, Vec<IndexDef>>>,
}

const INDEX_FIELDS: &[&str] = &[
    "keys",
    "name",
    "unique",
    "sparse",
    "hidden",
    "partial_filter",
    "partialFilterExpression",
    "expire_after",
    "expireAfterSeconds",
    "collation",
    "weights",
    "default_language",
    "language_override",
    "wildcard_projection",
    "wildcardProjection",
];

fn origin(file: &str, n: &Node) -> Origin {
    Origin {
        file: file.to_string(),
        line: n.line,
        col: n.col,
    }
}

/// YAML scalar → BSON with YAML's plain-scalar typing (ints, floats, bools, null).
pub fn scalar(n: &Node) -> Bson {
    match &n.value {
        Value::Scalar(s, true) => Bson::String(s.clone()),
        Value::Scalar(s, false) => {
            if let Ok(i) = s.parse::<i64>() {
                if let Ok(i32v) = i32::try_from(i) {
                    Bson::Int32(i32v)
                } else {
                    Bson::Int64(i)
                }
            } else if let Ok(f) = s.parse::<f64>() {
                Bson::Double(f)
            } else {
                match s.as_str() {
                    "true" => Bson::Boolean(true),
                    "false" => Bson::Boolean(false),
                    "" | "~" | "null" => Bson::Null,
                    _ => Bson::String(s.clone()),
                }
            }
        }
        Value::Seq(items) => Bson::Array(items.iter().map(scalar).collect()),
        Value::Map(entries) => Bson::Document(
            entries
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), scalar(v))))
                .collect(),
        ),
    }
}

fn to_doc(n: &Node) -> Option<Document> {
    match scalar(n) {
        Bson::Document(d) => Some(d),
        _ => None,
    }
}

/// Load every `.yaml`/`.yml` under the given files or folders. Returns the specs and
/// every problem found; a file that cannot be parsed at all is an error.
pub fn load(paths: &[PathBuf]) -> Result<(Specs, Vec<Issue>)> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading spec folder {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect();
            found.sort();
            files.extend(found);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            return Err(usage(format!("index spec {} does not exist", p.display())));
        }
    }
    if files.is_empty() {
        return Err(usage(
            "no index spec files (*.yaml) found in the given paths",
        ));
    }
    let mut specs = Specs::default();
    let mut issues = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        parse_file(&text, &f, &mut specs, &mut issues)?;
    }
    lint_collections(&specs, &mut issues);
    issues.sort();
    issues.dedup();
    Ok((specs, issues))
}

pub fn parse_file(
    text: &str,
    path: &Path,
    specs: &mut Specs,
    issues: &mut Vec<Issue>,
) -> Result<()> {
    let file = path.display().to_string();
    let Some(root) = yaml_tree::parse(text, &file)? else {
        issues.push(Issue {
            origin: Origin {
                file,
                line: 1,
                col: 1,
            },
            message: "empty spec file".into(),
        });
        return Ok(());
    };
    let mut issue = |n: &Node, msg: String| {
        issues.push(Issue {
            origin: origin(&file, n),
            message: msg,
        })
    };
    let Some(top) = root.as_map() else {
        issue(
            &root,
            "a spec file is a mapping with `database` and `collections`".into(),
        );
        return Ok(());
    };
    for (k, _) in top {
        if !matches!(k.as_str(), Some("database" | "collections")) {
            issue(
                k,
                format!(
                    "unknown field `{}` (expected `database` or `collections`)",
                    k.as_str().unwrap_or("?")
                ),
            );
        }
    }
    let Some(db) = root
        .get("database")
        .and_then(|d| d.as_str())
        .filter(|d| !d.is_empty())
    else {
        issue(&root, "missing `database: NAME`".into());
        return Ok(());
    };
    let Some(colls) = root.get("collections").and_then(|c| c.as_map()) else {
        issue(
            &root,
            "missing `collections:` mapping of collection name → list of indexes".into(),
        );
        return Ok(());
    };
    for (cname, list) in colls {
        let Some(cname_s) = cname.as_str() else {
            continue;
        };
        let entry = specs
            .databases
            .entry(db.to_string())
            .or_default()
            .entry(cname_s.to_string())
            .or_default();
        let Some(items) = list.as_seq() else {
            issue(
                list,
                format!("collection `{cname_s}` must be a list of indexes (`- keys: {{...}}`)"),
            );
            continue;
        };
        for item in items {
            if let Some(def) = parse_index(item, &file, &mut issue) {
                entry.push(def);
            }
        }
    }
    Ok(())
}

fn parse_index(item: &Node, file: &str, issue: &mut impl FnMut(&Node, String)) -> Option<IndexDef> {
    let Some(fields) = item.as_map() else {
        issue(item, "an index is a mapping with at least `keys`".into());
        return None;
    };
    let mut seen = Vec::new();
    for (k, _) in fields {
        let name = k.as_str().unwrap_or("?");
        if !INDEX_FIELDS.contains(&name) {
            issue(
                k,
                format!(
                    "unknown index field `{name}` (expected one of: {})",
                    INDEX_FIELDS.join(", ")
                ),
            );
        }
        if seen.contains(&name) {
            issue(k, format!("`{name}` is given twice"));
        }
        seen.push(name);
    }
    let mut def = IndexDef {
        origin: Some(origin(file, item)),
        ..Default::default()
    };
    let Some(keys) = item.get("keys") else {
        issue(item, "index without `keys`".into());
        return None;
    };
    let Some(key_entries) = keys.as_map().filter(|m| !m.is_empty()) else {
        issue(
            keys,
            "`keys` must be a non-empty mapping such as { created_at: -1 }".into(),
        );
        return None;
    };
    let mut text_fields = Vec::new();
    for (field, dir) in key_entries {
        let fname = field.as_str().unwrap_or_default().to_string();
        if def.key.iter().any(|(f, _)| *f == fname) || text_fields.contains(&fname) {
            issue(field, format!("field `{fname}` appears twice in `keys`"));
        }
        let v = scalar(dir);
        let ok = match &v {
            Bson::Int32(1 | -1) | Bson::Int64(1 | -1) => true,
            Bson::Double(d) if *d == 1.0 || *d == -1.0 => true,
            Bson::String(s) if matches!(s.as_str(), "hashed" | "2dsphere" | "2d") => true,
            Bson::String(s) if s == "text" => {
                text_fields.push(fname.clone());
                continue;
            }
            _ => false,
        };
        if !ok {
            issue(
                dir,
                format!(
                    "bad direction {} for `{fname}`: use 1, -1, hashed, text, 2dsphere or 2d",
                    dir.as_str().unwrap_or("?")
                ),
            );
            continue;
        }
        let v = match v {
            Bson::Int64(i) => Bson::Int32(i as i32),
            Bson::Double(d) => Bson::Int32(d as i32),
            other => other,
        };
        def.key.push((fname, v));
    }
    let flag = |name: &str| {
        item.get(name)
            .map(|n| scalar(n) == Bson::Boolean(true))
            .unwrap_or(false)
    };
    def.unique = flag("unique");
    def.sparse = flag("sparse");
    def.hidden = flag("hidden");
    def.name = item
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    def.partial_filter = item
        .get("partial_filter")
        .or_else(|| item.get("partialFilterExpression"))
        .and_then(to_doc);
    def.collation = item.get("collation").and_then(to_doc);
    def.wildcard_projection = item
        .get("wildcard_projection")
        .or_else(|| item.get("wildcardProjection"))
        .and_then(to_doc);
    def.default_language = item
        .get("default_language")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    def.language_override = item
        .get("language_override")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    if let Some(ttl) = item
        .get("expire_after")
        .or_else(|| item.get("expireAfterSeconds"))
    {
        match parse_ttl(ttl) {
            Some(s) => def.expire_after = Some(s),
            None => issue(
                ttl,
                "expire_after must be whole seconds or a duration such as 30d or 12h".into(),
            ),
        }
    }
    let weights: BTreeMap<String, i64> = item
        .get("weights")
        .and_then(|w| w.as_map())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.parse().ok()?)))
                .collect()
        })
        .unwrap_or_default();
    if !text_fields.is_empty() {
        let mut w: BTreeMap<String, i64> = text_fields.iter().map(|f| (f.clone(), 1)).collect();
        w.extend(weights);
        def.weights = Some(w);
        def.text_fields = text_fields.clone();
        // The server stores text keys as _fts/_ftsx where the first text field was.
        let pos = key_entries
            .iter()
            .position(|(_, d)| d.as_str() == Some("text"))
            .unwrap_or(0)
            .min(def.key.len());
        def.key
            .insert(pos, ("_fts".into(), Bson::String("text".into())));
        def.key.insert(pos + 1, ("_ftsx".into(), Bson::Int32(1)));
    } else if item.get("weights").is_some() {
        issue(
            item.get("weights").unwrap_or(item),
            "`weights` only applies to text indexes".into(),
        );
    }
    // Rules the server would reject at build time, caught before anything runs.
    let is_compound = def.key.len() > 1 && text_fields.is_empty();
    if def.expire_after.is_some() && is_compound {
        issue(
            item,
            "a TTL index (expire_after) must have a single field".into(),
        );
    }
    if def.unique && def.key.iter().any(|(_, v)| v.as_str() == Some("hashed")) {
        issue(item, "a hashed index cannot be unique".into());
    }
    if def.sparse && def.partial_filter.is_some() {
        issue(
            item,
            "`sparse` and `partial_filter` cannot be combined".into(),
        );
    }
    if def.wildcard_projection.is_some() && !def.key.iter().any(|(k, _)| k == "$**") {
        issue(item, "`wildcard_projection` needs the key `$**`".into());
    }
    Some(def)
}

fn parse_ttl(n: &Node) -> Option<i64> {
    let s = n.as_str()?;
    s.parse::<i64>().ok().filter(|v| *v >= 0).or_else(|| {
        humantime::parse_duration(s)
            .ok()
            .map(|d| d.as_secs() as i64)
    })
}

/// The server's default index name: `field_1_other_-1`, `loc_2dsphere`. Text fields are
/// listed in weight (alphabetical) order here; only duplicate detection uses this name,
/// never the comparison with live indexes, which goes by key pattern.
pub fn default_name(def: &IndexDef) -> String {
    let mut parts = Vec::new();
    for (k, v) in &def.key {
        match (k.as_str(), v) {
            ("_fts", _) => {
                let fields = if def.text_fields.is_empty() {
                    def.weights
                        .as_ref()
                        .map(|w| w.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                } else {
                    def.text_fields.clone()
                };
                for f in fields {
                    parts.push(format!("{f}_text"));
                }
            }
            ("_ftsx", _) => {}
            (k, Bson::String(s)) => parts.push(format!("{k}_{s}")),
            (k, Bson::Int32(i)) => parts.push(format!("{k}_{i}")),
            (k, other) => parts.push(format!("{k}_{other}")),
        }
    }
    parts.join("_")
}

/// Warnings, not errors: two indexes of a collection whose keys are the same fields and
/// directions in another order (`{a: 1, b: 1}` and `{b: 1, a: 1}`). For equality queries
/// on both fields either serves, so one is likely enough; each still serves a sort or a
/// range on its own second field, which is why lint does not refuse them.
pub fn permuted_duplicates(specs: &Specs) -> Vec<Issue> {
    let mut out = Vec::new();
    for (db, colls) in &specs.databases {
        for (coll, defs) in colls {
            for (i, d) in defs.iter().enumerate() {
                let mut mine: Vec<String> = d.key.iter().map(|(f, v)| format!("{f}:{v}")).collect();
                mine.sort();
                let earlier = defs[..i].iter().find(|p| {
                    let mut theirs: Vec<String> =
                        p.key.iter().map(|(f, v)| format!("{f}:{v}")).collect();
                    theirs.sort();
                    p.key != d.key
                        && theirs == mine
                        && p.collation == d.collation
                        && p.partial_filter == d.partial_filter
                });
                if let Some(p) = earlier {
                    out.push(Issue {
                        origin: d.origin.clone().unwrap_or(Origin {
                            file: "?".into(),
                            line: 0,
                            col: 0,
                        }),
                        message: format!(
                            "{db}.{coll}: the same fields as the index at {} in another order: for equality matches on them one serves; keep both only if each serves a sort or range the other cannot",
                            p.origin.clone().map(|o| o.to_string()).unwrap_or_default()
                        ),
                    });
                }
            }
        }
    }
    out
}

fn lint_collections(specs: &Specs, issues: &mut Vec<Issue>) {
    for (db, colls) in &specs.databases {
        for (coll, defs) in colls {
            for (i, d) in defs.iter().enumerate() {
                let o = d.origin.clone().unwrap_or(Origin {
                    file: "?".into(),
                    line: 0,
                    col: 0,
                });
                let name = d.name.clone().unwrap_or_else(|| default_name(d));
                for prev in &defs[..i] {
                    if prev.key == d.key
                        && prev.collation == d.collation
                        && prev.partial_filter == d.partial_filter
                    {
                        issues.push(Issue {
                            origin: o.clone(),
                            message: format!(
                                "{db}.{coll}: the same key pattern is already specified at {}",
                                prev.origin
                                    .clone()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default()
                            ),
                        });
                    }
                    if prev.name.clone().unwrap_or_else(|| default_name(prev)) == name {
                        issues.push(Issue {
                            origin: o.clone(),
                            message: format!("{db}.{coll}: index name `{name}` is used twice"),
                        });
                    }
                }
                if d.weights.is_some() && defs[..i].iter().any(|p| p.weights.is_some()) {
                    issues.push(Issue {
                        origin: o.clone(),
                        message: format!("{db}.{coll}: a collection can have only one text index"),
                    });
                }
                if name == "_id_" {
                    issues.push(Issue {
                        origin: o.clone(),
                        message: "`_id_` is created by MongoDB; do not list it".into(),
                    });
                }
            }
            if defs.len() + 1 > 64 {
                let o = defs[64 - 1].origin.clone().unwrap_or(Origin {
                    file: "?".into(),
                    line: 0,
                    col: 0,
                });
                issues.push(Issue {
                    origin: o,
                    message: format!(
                        "{db}.{coll}: {} indexes plus _id exceed MongoDB's limit of 64",
                        defs.len()
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint(text: &str) -> (Specs, Vec<Issue>) {
        let mut specs = Specs::default();
        let mut issues = Vec::new();
        parse_file(text, Path::new("s.yaml"), &mut specs, &mut issues).unwrap();
        lint_collections(&specs, &mut issues);
        (specs, issues)
    }

    #[test]
    fn parses_the_documented_example() {
        let (s, issues) = lint(
            "database: predixi\ncollections:\n  users:\n    - keys: { google_id: 1 }\n      unique: true\n    - keys: { email: 1 }\n  markets:\n    - keys: { status: 1, created_at: -1 }\n  sessions:\n    - keys: { last_seen: 1 }\n      expire_after: 30d\n",
        );
        assert!(issues.is_empty(), "{issues:?}");
        let m = &s.databases["predixi"]["markets"][0];
        assert_eq!(m.key[0].0, "status");
        assert_eq!(m.key[1], ("created_at".to_string(), Bson::Int32(-1)));
        assert_eq!(default_name(m), "status_1_created_at_-1");
        assert_eq!(
            s.databases["predixi"]["sessions"][0].expire_after,
            Some(30 * 86400)
        );
        assert!(s.databases["predixi"]["users"][0].unique);
    }

    #[test]
    fn lint_rules_with_positions() {
        let (_, issues) = lint(
            "database: d\ncollections:\n  c:\n    - keys: { a: 2 }\n    - keys: { b: 1 }\n      uniq: true\n    - keys: { b: 1 }\n    - keys: { x: 1, y: 1 }\n      expire_after: 1h\n    - keys: { h: hashed }\n      unique: true\n",
        );
        let text: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", i.origin, i.message))
            .collect();
        let has = |needle: &str| text.iter().any(|t| t.contains(needle));
        assert!(has("s.yaml:4:18: bad direction"), "{text:?}");
        assert!(has("s.yaml:6:7: unknown index field `uniq`"), "{text:?}");
        assert!(has("same key pattern"), "{text:?}");
        assert!(has("TTL index"), "{text:?}");
        assert!(has("hashed index cannot be unique"), "{text:?}");
    }

    #[test]
    fn permuted_duplicates_are_warned_about() {
        let (s, issues) = lint(
            "database: d\ncollections:\n  c:\n    - keys: { a: 1, b: 1 }\n    - keys: { b: 1, a: 1 }\n    - keys: { b: 1, a: -1 }\n    - keys: { a: 1 }\n",
        );
        assert!(issues.is_empty(), "{issues:?}");
        let w = permuted_duplicates(&s);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].to_string().contains("s.yaml:5"), "{w:?}");
        assert!(w[0].message.contains("another order"));
    }

    #[test]
    fn text_and_mongo_spellings() {
        let (s, issues) = lint(
            "database: d\ncollections:\n  c:\n    - keys: { title: text, body: text }\n      weights: { title: 10 }\n    - keys: { s: 1 }\n      partialFilterExpression: { status: pending }\n      expireAfterSeconds: 3600\n",
        );
        assert!(issues.is_empty(), "{issues:?}");
        let t = &s.databases["d"]["c"][0];
        assert_eq!(t.key[0].0, "_fts");
        assert_eq!(t.weights.as_ref().unwrap()["title"], 10);
        assert_eq!(t.weights.as_ref().unwrap()["body"], 1);
        // As mongod names it: the text fields in key order.
        assert_eq!(default_name(t), "title_text_body_text");
        assert_eq!(s.databases["d"]["c"][1].expire_after, Some(3600));
    }
}
