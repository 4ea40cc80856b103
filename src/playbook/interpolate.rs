//! `${…}` references in playbook values: `${NAME}` (a var), `${env.NAME}` (the
//! environment), `${steps.ID.FIELD…}` (a field of an earlier step's JSON result, with
//! `.N` for list items). `$${` writes a literal `${`.
//!
//! Parsing is separate from resolving so that every reference can be checked before
//! anything runs, and so that a dry run can show which values only a real run produces.

use std::collections::{BTreeMap, HashMap};

/// One `${…}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Var(String),
    Env(String),
    Step { id: String, path: Vec<String> },
}

impl Ref {
    pub fn text(&self) -> String {
        match self {
            Ref::Var(n) => format!("${{{n}}}"),
            Ref::Env(n) => format!("${{env.{n}}}"),
            Ref::Step { id, path } => format!("${{steps.{id}.{}}}", path.join(".")),
        }
    }
}

enum Piece {
    Text(String),
    Ref(Ref),
}

fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = vec![];
    let mut lit = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        lit.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(escaped) = after.strip_prefix("$${") {
            lit.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in \"{text}\""))?;
            if !lit.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut lit)));
            }
            out.push(Piece::Ref(reference(body[..end].trim())?));
            rest = &body[end + 1..];
        } else {
            lit.push('$');
            rest = &after[1..];
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Piece::Text(lit));
    }
    Ok(out)
}

fn reference(name: &str) -> Result<Ref, String> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["env", n] if ok(n) => Ok(Ref::Env(n.to_string())),
        ["steps", id] if ok(id) => Err(format!(
            "`${{{name}}}` names a step but no field of its result; write e.g. ${{steps.{id}.ok}}"
        )),
        ["steps", id, path @ ..] if ok(id) && !path.is_empty() && path.iter().all(|p| ok(p)) => {
            Ok(Ref::Step {
                id: id.to_string(),
                path: path.iter().map(|p| p.to_string()).collect(),
            })
        }
        [n] if ok(n) => Ok(Ref::Var(n.to_string())),
        _ => Err(format!(
            "`${{{name}}}` is not a reference; write ${{VAR}}, ${{env.NAME}} or ${{steps.ID.FIELD}}"
        )),
    }
}

/// A name that says its value is a secret (`DB_PASSWORD`, `api_token`, `S3_SECRET_KEY`):
/// its value is masked wherever the playbook shows or records it.
pub fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "private_key",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Every reference in `text`.
pub fn refs(text: &str) -> Result<Vec<Ref>, String> {
    Ok(parse(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Ref(r) => Some(r),
            Piece::Text(_) => None,
        })
        .collect())
}

/// What references resolve against.
pub struct Scope<'a> {
    /// Vars, already resolved.
    pub vars: &'a BTreeMap<String, String>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The JSON results of the steps that ran (or, on --resume, ran before).
    pub steps: &'a HashMap<String, serde_json::Value>,
}

/// The result of expanding a value: its text, and the step references that had no
/// value yet (only possible when `allow_pending` was set; they are left as written).
#[derive(Debug)]
pub struct Expanded {
    pub text: String,
    pub pending: Vec<Ref>,
}

pub fn expand(text: &str, scope: &Scope, allow_pending: bool) -> Result<Expanded, String> {
    let mut out = String::new();
    let mut pending = vec![];
    for piece in parse(text)? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Ref(r) => {
                match &r {
                    Ref::Var(n) => out.push_str(scope.vars.get(n).ok_or_else(|| {
                        format!("unknown var `{n}`; define it under vars: or pass --var {n}=VALUE")
                    })?),
                    Ref::Env(n) => {
                        let v = (scope.env)(n).ok_or_else(|| {
                        format!("the environment variable {n} is not set (referenced as ${{env.{n}}})")
                    })?;
                        if secret_name(n) {
                            crate::redact::register_secret(&v);
                        }
                        out.push_str(&v);
                    }
                    Ref::Step { id, path } => match scope.steps.get(id) {
                        Some(result) => out.push_str(&field(result, id, path)?),
                        None if allow_pending => {
                            out.push_str(&r.text());
                            pending.push(r.clone());
                        }
                        None => {
                            return Err(format!(
                                "{} refers to step `{id}`, which has no result in this run",
                                r.text()
                            ))
                        }
                    },
                }
            }
        }
    }
    Ok(Expanded { text: out, pending })
}

/// A field of a step's JSON result as text.
fn field(result: &serde_json::Value, id: &str, path: &[String]) -> Result<String, String> {
    let mut v = result;
    for (i, p) in path.iter().enumerate() {
        let next = match v {
            serde_json::Value::Object(m) => m.get(p),
            serde_json::Value::Array(a) => p.parse::<usize>().ok().and_then(|n| a.get(n)),
            _ => None,
        };
        v = next.ok_or_else(|| {
            let at = format!("steps.{id}.{}", path[..=i].join("."));
            let keys = match v {
                serde_json::Value::Object(m) => {
                    let k: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
                    format!("; it has: {}", k.join(", "))
                }
                _ => String::new(),
            };
            format!("the result of step `{id}` has no field `{at}`{keys}")
        })?;
    }
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        _ => Err(format!(
            "steps.{id}.{} is a list or an object; refer to one of its fields",
            path.join(".")
        )),
    }
}

/// Resolve vars that refer to other vars and to the environment (never to steps: vars are
/// fixed before the first step runs). A cycle is an error naming it.
pub fn resolve_vars(
    raw: &BTreeMap<String, String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, (String, String)> {
    fn visit(
        name: &str,
        raw: &BTreeMap<String, String>,
        env: &dyn Fn(&str) -> Option<String>,
        done: &mut BTreeMap<String, String>,
        path: &mut Vec<String>,
    ) -> Result<(), (String, String)> {
        if done.contains_key(name) {
            return Ok(());
        }
        if let Some(at) = path.iter().position(|p| p == name) {
            let mut cycle = path[at..].to_vec();
            cycle.push(name.to_string());
            return Err((
                path[at].clone(),
                format!("vars refer to each other in a cycle: {}", cycle.join(" → ")),
            ));
        }
        let text = &raw[name];
        path.push(name.to_string());
        let here = |e: String| (name.to_string(), e);
        for r in refs(text).map_err(here)? {
            match r {
                Ref::Var(n) if raw.contains_key(&n) => visit(&n, raw, env, done, path)?,
                Ref::Var(n) => {
                    return Err(here(format!(
                        "var `{name}` refers to `{n}`, which is not defined"
                    )))
                }
                Ref::Step { .. } => {
                    return Err(here(format!(
                        "var `{name}` refers to a step result; vars are fixed before the first step, so put {} in the step's options instead",
                        r.text()
                    )))
                }
                Ref::Env(_) => {}
            }
        }
        path.pop();
        let steps = HashMap::new();
        let scope = Scope {
            vars: done,
            env,
            steps: &steps,
        };
        let value = expand(text, &scope, false).map_err(here)?.text;
        done.insert(name.to_string(), value);
        Ok(())
    }
    let mut done = BTreeMap::new();
    for name in raw.keys() {
        visit(name, raw, env, &mut done, &mut vec![])?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(n: &str) -> Option<String> {
        (n == "HOME_DIR").then(|| "/home/x".to_string())
    }

    #[test]
    fn expands_vars_env_steps_and_escapes() {
        let vars = BTreeMap::from([("db".to_string(), "predixi".to_string())]);
        let steps = HashMap::from([(
            "backup".to_string(),
            json!({"backup_id": "2026-x", "n": [1, {"k": true}]}),
        )]);
        let s = Scope {
            vars: &vars,
            env: &env,
            steps: &steps,
        };
        let e = expand(
            "${db}/${env.HOME_DIR}/${steps.backup.backup_id}/${steps.backup.n.1.k} $${db} $x",
            &s,
            false,
        )
        .unwrap();
        assert_eq!(e.text, "predixi//home/x/2026-x/true ${db} $x");
        assert!(expand("${steps.backup.nope}", &s, false)
            .unwrap_err()
            .contains("it has: backup_id, n"));
        assert!(expand("${steps.backup.n}", &s, false)
            .unwrap_err()
            .contains("list or an object"));
        assert!(expand("${missing}", &s, false)
            .unwrap_err()
            .contains("--var missing="));
        assert!(expand("${env.NOPE}", &s, false)
            .unwrap_err()
            .contains("NOPE is not set"));
        let p = expand("id ${steps.later.x}", &s, true).unwrap();
        assert_eq!(p.pending.len(), 1);
        assert!(expand("${steps.later.x}", &s, false).is_err());
    }

    #[test]
    fn malformed_references() {
        assert!(refs("${unclosed").unwrap_err().contains("closing"));
        assert!(refs("${steps.x}").unwrap_err().contains("no field"));
        assert!(refs("${a b}").unwrap_err().contains("not a reference"));
        assert_eq!(refs("$${x}").unwrap(), vec![]);
    }

    #[test]
    fn vars_resolve_through_each_other_and_cycles_are_named() {
        let raw = BTreeMap::from([
            ("a".to_string(), "${b}-1".to_string()),
            ("b".to_string(), "${env.HOME_DIR}".to_string()),
        ]);
        let v = resolve_vars(&raw, &env).unwrap();
        assert_eq!(v["a"], "/home/x-1");
        let cyc = BTreeMap::from([
            ("a".to_string(), "${b}".to_string()),
            ("b".to_string(), "${a}".to_string()),
        ]);
        let (_, e) = resolve_vars(&cyc, &env).unwrap_err();
        assert!(e.contains("a → b → a"), "{e}");
        let step = BTreeMap::from([("a".to_string(), "${steps.x.y}".to_string())]);
        assert!(resolve_vars(&step, &env).unwrap_err().1.contains("fixed"));
    }
}
