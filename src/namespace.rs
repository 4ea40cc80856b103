//! Namespaces (`db.collection`) and mongodump-style patterns (`predixi.*`, `*.users`).

use std::fmt;

use anyhow::Result;

use crate::exit::usage;

pub const BUCKETS_PREFIX: &str = "system.buckets.";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace {
    pub db: String,
    pub coll: String,
}

impl Namespace {
    pub fn new(db: impl Into<String>, coll: impl Into<String>) -> Namespace {
        Namespace {
            db: db.into(),
            coll: coll.into(),
        }
    }

    /// Where a time-series collection's data lives: mongodump reads (and names its file)
    /// `system.buckets.<name>`, and mongorestore inserts the buckets back there.
    pub fn buckets(&self) -> Namespace {
        Namespace::new(&self.db, format!("{BUCKETS_PREFIX}{}", self.coll))
    }

    /// The time-series collection whose buckets these are (an archive's or a dump folder's
    /// `system.buckets.<name>`), or the namespace itself.
    pub fn without_buckets_prefix(&self) -> Namespace {
        match self.coll.strip_prefix(BUCKETS_PREFIX) {
            Some(c) => Namespace::new(&self.db, c),
            None => self.clone(),
        }
    }

    /// Split at the first dot: database names cannot contain dots, collection names can.
    pub fn parse(s: &str) -> Option<Namespace> {
        let (db, coll) = s.split_once('.')?;
        (!db.is_empty() && !coll.is_empty()).then(|| Namespace::new(db, coll))
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.db, self.coll)
    }
}

/// A `*` wildcard pattern over full namespace strings, as mongodump's --nsInclude.
#[derive(Debug, Clone)]
pub struct Pattern {
    raw: String,
}

impl Pattern {
    pub fn parse(raw: &str) -> Result<Pattern> {
        if raw.is_empty() || !raw.contains('.') {
            return Err(usage(format!(
                "namespace pattern '{raw}' must look like db.collection, with * as a wildcard (e.g. 'predixi.*' or '*.users')"
            )));
        }
        Ok(Pattern {
            raw: raw.to_string(),
        })
    }

    pub fn matches(&self, ns: &Namespace) -> bool {
        glob(self.raw.as_bytes(), ns.to_string().as_bytes())
    }

    /// The pattern as given.
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

/// Include/exclude filtering. With no includes every namespace is included.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Vec<Pattern>,
    pub exclude: Vec<Pattern>,
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter> {
        Ok(Filter {
            include: include
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<_>>()?,
            exclude: exclude
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<_>>()?,
        })
    }

    pub fn allows(&self, ns: &Namespace) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p.matches(ns)))
            && !self.exclude.iter().any(|p| p.matches(ns))
    }
}

/// `*`-glob match of `text` against `pat` (the rule of namespace patterns).
pub fn glob_matches(pat: &str, text: &str) -> bool {
    glob(pat.as_bytes(), text.as_bytes())
}

/// Iterative glob with `*` only (no `?`, no classes), linear in practice.
fn glob(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() && pat[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pat.len() && pat[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_series_buckets_round_trip() {
        let ns = Namespace::new("iot", "ticks");
        assert_eq!(ns.buckets().to_string(), "iot.system.buckets.ticks");
        assert_eq!(ns.buckets().without_buckets_prefix(), ns);
        assert_eq!(ns.without_buckets_prefix(), ns);
    }

    #[test]
    fn patterns_match_like_mongodump() {
        let ns = Namespace::new("predixi", "users");
        assert!(Pattern::parse("predixi.*").unwrap().matches(&ns));
        assert!(Pattern::parse("*.users").unwrap().matches(&ns));
        assert!(Pattern::parse("pre*.u*s").unwrap().matches(&ns));
        assert!(!Pattern::parse("analytics.*").unwrap().matches(&ns));
        assert!(Pattern::parse("predixi").is_err());
        // Collection names may contain dots.
        assert!(Pattern::parse("predixi.system.*")
            .unwrap()
            .matches(&Namespace::new("predixi", "system.views")));
    }

    #[test]
    fn filter_include_exclude() {
        let f = Filter::new(&["predixi.*".into()], &["*.sessions".into()]).unwrap();
        assert!(f.allows(&Namespace::new("predixi", "users")));
        assert!(!f.allows(&Namespace::new("predixi", "sessions")));
        assert!(!f.allows(&Namespace::new("other", "users")));
        assert!(Filter::default().allows(&Namespace::new("x", "y")));
    }

    #[test]
    fn namespace_parse_splits_at_first_dot() {
        assert_eq!(
            Namespace::parse("db.a.b"),
            Some(Namespace::new("db", "a.b"))
        );
        assert_eq!(Namespace::parse("nodot"), None);
    }
}

/// mongorestore's `--nsFrom/--nsTo` renaming: `$name$` variables in the source pattern
/// capture text that the target pattern reuses; `*` is shorthand for an anonymous variable
/// (`'predixi.*'` → `'predixi_restore.*'`).
#[derive(Debug, Clone)]
pub struct Renamer {
    rules: Vec<(Vec<Part>, Vec<Part>)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var(String),
}

fn parse_rename_pattern(p: &str) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = p.chars().peekable();
    let mut stars = 0;
    while let Some(c) = chars.next() {
        match c {
            '$' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('$') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err(usage(format!(
                                "rename pattern '{p}' has an unclosed $variable$; write e.g. 'predixi.$coll$'"
                            )))
                        }
                    }
                }
                if name.is_empty() {
                    return Err(usage(format!(
                        "rename pattern '{p}' has an empty $$ variable"
                    )));
                }
                parts.push(Part::Lit(std::mem::take(&mut lit)));
                parts.push(Part::Var(name));
            }
            '*' => {
                stars += 1;
                parts.push(Part::Lit(std::mem::take(&mut lit)));
                parts.push(Part::Var(format!("*{stars}")));
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    lit.push(n);
                }
            }
            c => lit.push(c),
        }
    }
    parts.push(Part::Lit(lit));
    parts.retain(|p| !matches!(p, Part::Lit(l) if l.is_empty()));
    Ok(parts)
}

fn match_parts(parts: &[Part], text: &str, vars: &mut Vec<(String, String)>) -> bool {
    match parts.split_first() {
        None => text.is_empty(),
        Some((Part::Lit(l), rest)) => text
            .strip_prefix(l.as_str())
            .is_some_and(|t| match_parts(rest, t, vars)),
        Some((Part::Var(name), rest)) => {
            // Shortest capture first, as mongorestore's non-greedy regex does.
            let mut ends: Vec<usize> = text.char_indices().map(|(i, _)| i).skip(1).collect();
            ends.push(text.len());
            for end in ends {
                vars.push((name.clone(), text[..end].to_string()));
                if match_parts(rest, &text[end..], vars) {
                    return true;
                }
                vars.pop();
            }
            false
        }
    }
}

impl Renamer {
    pub fn new(from: &[String], to: &[String]) -> Result<Renamer> {
        if from.len() != to.len() {
            return Err(usage(format!(
                "--ns-from and --ns-to come in pairs: got {} --ns-from and {} --ns-to",
                from.len(),
                to.len()
            )));
        }
        let mut rules = Vec::new();
        for (f, t) in from.iter().zip(to) {
            let (fp, tp) = (parse_rename_pattern(f)?, parse_rename_pattern(t)?);
            let vars_of = |ps: &[Part]| -> Vec<String> {
                let mut v: Vec<String> = ps
                    .iter()
                    .filter_map(|p| match p {
                        Part::Var(n) => Some(n.clone()),
                        _ => None,
                    })
                    .collect();
                v.sort();
                v
            };
            if vars_of(&fp) != vars_of(&tp) {
                return Err(usage(format!(
                    "--ns-from '{f}' and --ns-to '{t}' must use the same variables (or the same number of *)"
                )));
            }
            rules.push((fp, tp));
        }
        Ok(Renamer { rules })
    }

    /// The target namespace for `ns`: the first matching rule's rewrite, else `ns` itself.
    pub fn map(&self, ns: &Namespace) -> Namespace {
        let text = ns.to_string();
        for (from, to) in &self.rules {
            let mut vars = Vec::new();
            if match_parts(from, &text, &mut vars) {
                let out: String = to
                    .iter()
                    .map(|p| match p {
                        Part::Lit(l) => l.clone(),
                        Part::Var(n) => vars
                            .iter()
                            .find(|(k, _)| k == n)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default(),
                    })
                    .collect();
                if let Some(mapped) = Namespace::parse(&out) {
                    return mapped;
                }
            }
        }
        ns.clone()
    }
}

#[cfg(test)]
mod rename_tests {
    use super::*;

    fn r(from: &str, to: &str) -> Renamer {
        Renamer::new(&[from.into()], &[to.into()]).unwrap()
    }

    #[test]
    fn variables_and_star_shorthand() {
        let ns = Namespace::new("predixi", "users");
        assert_eq!(
            r("predixi.$coll$", "predixi_restore.$coll$").map(&ns),
            Namespace::new("predixi_restore", "users")
        );
        assert_eq!(
            r("predixi.*", "predixi_restore.*").map(&ns),
            Namespace::new("predixi_restore", "users")
        );
        assert_eq!(
            r("$db$.$coll$", "$db$_bak.old_$coll$").map(&ns),
            Namespace::new("predixi_bak", "old_users")
        );
        // Non-matching namespaces are unchanged.
        assert_eq!(r("other.*", "x.*").map(&ns), ns);
        // Collection names with dots keep them.
        let dotted = Namespace::new("predixi", "a.b");
        assert_eq!(
            r("predixi.*", "p2.*").map(&dotted),
            Namespace::new("p2", "a.b")
        );
    }

    #[test]
    fn mismatched_patterns_are_usage_errors() {
        assert!(Renamer::new(&["a.$x$".into()], &["b.$y$".into()]).is_err());
        assert!(Renamer::new(&["a.*".into()], &[]).is_err());
        assert!(Renamer::new(&["a.$x".into()], &["b.$x".into()]).is_err());
    }
}
