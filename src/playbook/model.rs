//! A playbook file read and checked before anything runs: its structure, each step's
//! kind and options, and every `${…}` reference, with errors at file:line:column.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::interpolate::{self, Ref, Scope};
use super::kinds::{self, OptionInfo};
use crate::exit::usage;
use crate::yaml_tree::{self, Node, Value};

/// Names a playbook may use without defining them.
pub const BUILTIN_VARS: &[&str] = &["playbook_dir", "run_id"];

#[derive(Debug, Clone)]
pub enum StepKind {
    /// A subcommand, by its path (`["backups", "verify"]`).
    Command(Vec<String>),
    Confirm,
    Wait,
    Exec,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    /// The kind as written (`backups_verify`).
    pub kind_name: String,
    pub kind: StepKind,
    /// The value under the kind key: options, a question, a duration, a command.
    pub body: Node,
    /// Run only when this step completed (an on_failure rollback after the cutover).
    pub only_after: Option<(String, usize, usize)>,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    /// The file as the user named it, for messages.
    pub file: String,
    /// Its folder, absolute: `${playbook_dir}`.
    pub dir: PathBuf,
    pub sha256: String,
    /// Each var's text as written (before interpolation), and where.
    pub vars: BTreeMap<String, (String, usize, usize)>,
    pub steps: Vec<Step>,
    pub on_failure: Vec<Step>,
    /// Structural mistakes `load_all` found; `check` reports them with its own, so that a
    /// file with many mistakes is fixed in one round.
    pub problems: Vec<String>,
    /// The ids of steps that could not be read (their mistake is in `problems`): references
    /// to them are not reported again as references to no step.
    pub broken_ids: Vec<String>,
}

/// An option's value once interpolated.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Switch(bool),
    One(String),
    Many(Vec<String>),
}

/// A command step's options, each with its value.
pub type Options = Vec<(OptionInfo, Val)>;

/// A `file:line:column: message` usage error.
fn at(file: &str, line: usize, col: usize, msg: impl std::fmt::Display) -> String {
    format!("{file}:{line}:{col}: {msg}")
}

fn node_err(file: &str, n: &Node, msg: impl std::fmt::Display) -> String {
    at(file, n.line, n.col, msg)
}

/// Read and parse `path`; every structural error is collected, then reported together.
pub fn load(path: &Path) -> Result<Playbook> {
    let pb = load_all(path)?;
    if !pb.problems.is_empty() {
        return Err(usage(pb.problems.join("\n")));
    }
    Ok(pb)
}

/// `load`, keeping what could be read when some steps could not: `check` then reports the
/// structural mistakes together with every other one. Only an unreadable file (missing,
/// not YAML, not a mapping) is an error here.
pub fn load_all(path: &Path) -> Result<Playbook> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the playbook {file}"))
        .map_err(|e| usage(format!("{e:#}; check the path")))?;
    let dir = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let root = yaml_tree::parse(&text, &file)?
        .ok_or_else(|| usage(format!("{file}: the playbook is empty")))?;
    let mut errors = vec![];
    let Some(map) = root.as_map() else {
        return Err(usage(node_err(
            &file,
            &root,
            "a playbook is a mapping with name, vars, steps and on_failure",
        )));
    };
    let mut pb = Playbook {
        name: String::new(),
        file: file.clone(),
        dir,
        sha256: crate::cutover::sink::sha256(text.as_bytes()),
        vars: BTreeMap::new(),
        steps: vec![],
        on_failure: vec![],
        problems: vec![],
        broken_ids: vec![],
    };
    for (k, v) in map {
        match k.as_str().unwrap_or_default() {
            "name" => match v.as_str() {
                Some(n) if valid_id(n) => pb.name = n.to_string(),
                _ => errors.push(node_err(
                    &file,
                    v,
                    "name: letters, digits, '-' and '_' only (it names the run records)",
                )),
            },
            "description" => {}
            "vars" => match v.as_map() {
                Some(vars) => {
                    for (vk, vv) in vars {
                        let name = vk.as_str().unwrap_or_default();
                        if !valid_id(name) || BUILTIN_VARS.contains(&name) {
                            errors.push(node_err(
                                &file,
                                vk,
                                format!("`{name}` cannot be a var name (letters, digits, '-', '_'; not {})", BUILTIN_VARS.join(" or ")),
                            ));
                        } else if let Some(s) = vv.as_str() {
                            pb.vars
                                .insert(name.to_string(), (s.to_string(), vv.line, vv.col));
                        } else {
                            errors.push(node_err(
                                &file,
                                vv,
                                format!("var `{name}` must be a single value (write a list in the step's option)"),
                            ));
                        }
                    }
                }
                None if v.is_null() => {}
                None => errors.push(node_err(&file, v, "vars: a mapping of names to values")),
            },
            "steps" | "on_failure" => {
                let list = match v.as_seq() {
                    Some(l) => l,
                    None if v.is_null() => &[][..],
                    None => {
                        errors.push(node_err(&file, v, "a list of steps"));
                        continue;
                    }
                };
                let main = k.as_str() == Some("steps");
                for (i, s) in list.iter().enumerate() {
                    match step(&file, s, main, i) {
                        Ok(st) if main => pb.steps.push(st),
                        Ok(st) => pb.on_failure.push(st),
                        Err(e) => {
                            errors.push(e);
                            let id = s.as_map().and_then(|m| {
                                m.iter()
                                    .find(|(k, _)| k.as_str() == Some("id"))
                                    .and_then(|(_, v)| v.as_str())
                            });
                            pb.broken_ids.extend(id.map(str::to_string));
                        }
                    }
                }
            }
            other => errors.push(node_err(
                &file,
                k,
                format!("unknown key `{other}`; a playbook has name, description, vars, steps, on_failure"),
            )),
        }
    }
    if pb.name.is_empty() && errors.is_empty() {
        errors.push(at(&file, root.line, root.col, "the playbook needs a name:"));
    }
    if pb.steps.is_empty() && errors.is_empty() {
        errors.push(at(&file, root.line, root.col, "the playbook has no steps:"));
    }
    let mut seen = HashSet::new();
    for s in pb.steps.iter().chain(&pb.on_failure) {
        if !seen.insert(s.id.clone()) {
            errors.push(at(
                &file,
                s.line,
                s.col,
                format!("step id `{}` is used twice", s.id),
            ));
        }
    }
    pb.problems = errors;
    Ok(pb)
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn step(file: &str, n: &Node, main: bool, index: usize) -> Result<Step, String> {
    let map = n.as_map().ok_or_else(|| {
        node_err(
            file,
            n,
            "a step is a mapping: `- id: NAME` and one kind, e.g. `status: { target: legacy }`",
        )
    })?;
    let mut id = None;
    let mut only_after = None;
    let mut kind: Option<(&Node, &Node)> = None;
    for (k, v) in map {
        match k.as_str().unwrap_or_default() {
            "id" => match v.as_str() {
                Some(s) if valid_id(s) => id = Some(s.to_string()),
                _ => {
                    return Err(node_err(
                        file,
                        v,
                        "id: letters, digits, '-' and '_' only",
                    ))
                }
            },
            "description" => {}
            "only_after" => match v.as_str() {
                Some(s) if valid_id(s) => only_after = Some((s.to_string(), v.line, v.col)),
                _ => return Err(node_err(file, v, "only_after: the id of a step")),
            },
            _ if kind.is_some() => {
                return Err(node_err(
                    file,
                    k,
                    format!(
                        "a step has one kind; `{}` already is this step's kind (start a new step with `- id:`)",
                        kind.unwrap().0.as_str().unwrap_or_default()
                    ),
                ))
            }
            _ => kind = Some((k, v)),
        }
    }
    let (k, body) = kind.ok_or_else(|| {
        node_err(
            file,
            n,
            "this step has no kind (e.g. `status:`, `backup:`, `confirm:`)",
        )
    })?;
    let kind_name = k.as_str().unwrap_or_default().to_string();
    let id = match id {
        Some(id) => id,
        None if !main => format!("on_failure-{}", index + 1),
        None => return Err(node_err(file, n, "this step has no `id:`")),
    };
    let kind = match kind_name.as_str() {
        "confirm" => StepKind::Confirm,
        "wait" => StepKind::Wait,
        "exec" => StepKind::Exec,
        other => StepKind::Command(kinds::command_path(other).map_err(|e| node_err(file, k, e))?),
    };
    Ok(Step {
        id,
        kind_name,
        kind,
        body: body.clone(),
        only_after,
        line: k.line,
        col: k.col,
    })
}

/// Every scalar of a step's body with its position, for reference checks.
fn scalars(n: &Node, out: &mut Vec<Node>) {
    match &n.value {
        Value::Scalar(..) => out.push(n.clone()),
        Value::Seq(items) => items.iter().for_each(|i| scalars(i, out)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| scalars(v, out)),
    }
}

/// Resolve the vars (the file's, overridden by `--var K=V`, plus the built-ins) and check
/// every step: options against the command's flags, references against vars, the
/// environment and earlier steps, and, where nothing waits on a step result, the whole
/// command line against the command's own parser. All errors together; nothing runs.
pub fn check(
    pb: &Playbook,
    cli_vars: &[(String, String)],
    run_id: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>> {
    let mut raw: BTreeMap<String, String> = pb
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in cli_vars {
        raw.insert(k.clone(), v.clone());
    }
    raw.insert(
        "playbook_dir".into(),
        pb.dir.display().to_string().replace('$', "$$"),
    );
    raw.insert("run_id".into(), run_id.into());
    let vars = interpolate::resolve_vars(&raw, env).map_err(|(name, e)| {
        usage(match pb.vars.get(&name) {
            Some((_, l, c)) => at(&pb.file, *l, *c, e),
            None => format!("--var {name}: {e}"),
        })
    })?;
    // Everything shown or recorded from here on is scrubbed of these.
    for (k, v) in &vars {
        crate::redact::register_uri(v);
        if interpolate::secret_name(k) {
            crate::redact::register_secret(v);
        }
    }
    let mut errors = pb.problems.clone();
    let ids: Vec<&str> = pb.steps.iter().map(|s| s.id.as_str()).collect();
    // Files the steps before this one write (spec files), and whether an `exec` ran before:
    // a file they may create is not missing yet.
    let mut produced: HashSet<PathBuf> = HashSet::new();
    let mut exec_before = false;
    for (i, s) in pb.steps.iter().chain(&pb.on_failure).enumerate() {
        let before = errors.len();
        // A main step may use the results of the steps before it; on_failure steps those
        // of any main step (whether it ran is known only then).
        let visible: HashSet<&str> = if i < pb.steps.len() {
            ids[..i].iter().copied().collect()
        } else {
            ids.iter().copied().collect()
        };
        if let Some((after, l, c)) = &s.only_after {
            if !visible.contains(after.as_str()) {
                errors.push(at(
                    &pb.file,
                    *l,
                    *c,
                    format!(
                        "only_after: `{after}` is not a step that runs before `{}`",
                        s.id
                    ),
                ));
            }
        }
        let mut all = vec![];
        scalars(&s.body, &mut all);
        for n in &all {
            let refs = match interpolate::refs(n.as_str().unwrap_or_default()) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(node_err(&pb.file, n, e));
                    continue;
                }
            };
            for r in refs {
                let problem = match &r {
                    Ref::Var(v) if !vars.contains_key(v) => Some(format!(
                        "unknown var `{v}`; define it under vars: or pass --var {v}=VALUE"
                    )),
                    Ref::Env(e) if env(e).is_none() => Some(format!(
                        "the environment variable {e} is not set (referenced as {})",
                        r.text()
                    )),
                    Ref::Step { id, .. } if pb.broken_ids.contains(id) => None,
                    Ref::Step { id, .. } if !visible.contains(id.as_str()) => {
                        Some(if id == &s.id {
                            format!("{} refers to this step itself (a cycle)", r.text())
                        } else if ids.contains(&id.as_str()) {
                            format!(
                                "{} refers to step `{id}`, which runs after `{}` (a cycle: a step can use only earlier steps' results)",
                                r.text(),
                                s.id
                            )
                        } else {
                            format!(
                                "{} refers to no step; the steps are {}",
                                r.text(),
                                ids.join(", ")
                            )
                        })
                    }
                    _ => None,
                };
                if let Some(p) = problem {
                    errors.push(node_err(&pb.file, n, p));
                }
            }
        }
        if errors.len() > before {
            continue;
        }
        let steps = HashMap::new();
        let scope = Scope {
            vars: &vars,
            env,
            steps: &steps,
        };
        if let Err(e) = check_body(pb, s, &scope) {
            errors.push(e);
            continue;
        }
        if let StepKind::Command(path) = &s.kind {
            if !exec_before {
                errors.extend(missing_inputs(pb, s, path, &scope, &produced));
            }
            produced.extend(outputs(pb, s, path, &scope));
        }
        exec_before |= matches!(s.kind, StepKind::Exec);
    }
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(usage(errors.join("\n")))
    }
}

/// A command step's option values as written (node) and interpolated (None while they wait
/// on an earlier step's result), for the options named.
fn file_values(
    pb: &Playbook,
    s: &Step,
    scope: &Scope,
    names: &[&str],
) -> Vec<(Node, Option<PathBuf>)> {
    let Value::Map(entries) = &s.body.value else {
        return vec![];
    };
    let mut out = vec![];
    for (k, v) in entries {
        if !names.contains(&k.as_str().unwrap_or_default()) {
            continue;
        }
        let items: Vec<&Node> = match &v.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![v],
        };
        for n in items {
            let e = interpolate::expand(n.as_str().unwrap_or_default(), scope, true);
            let path = e
                .ok()
                .filter(|e| e.pending.is_empty())
                .map(|e| PathBuf::from(e.text));
            out.push((n.clone(), path));
        }
    }
    let _ = pb;
    out
}

/// Every input file a command step names that does not exist, found by `plan` (and before
/// `run` starts) instead of when the step runs, after the backup and the copy. Relative
/// paths are from the current directory, where the steps run.
fn missing_inputs(
    pb: &Playbook,
    s: &Step,
    path: &[String],
    scope: &Scope,
    produced: &HashSet<PathBuf>,
) -> Vec<String> {
    let names = kinds::input_files(path);
    file_values(pb, s, scope, names)
        .into_iter()
        .filter_map(|(n, p)| {
            let p = p?;
            if p.exists() || produced.contains(&p) || p.as_os_str() == "-" {
                return None;
            }
            Some(node_err(
                &pb.file,
                &n,
                format!(
                    "step `{}`: {} does not exist (relative paths are from the current directory; ${{playbook_dir}} is the playbook's folder)",
                    s.id,
                    p.display()
                ),
            ))
        })
        .collect()
}

/// The files a command step writes (a spec a later step may read).
fn outputs(pb: &Playbook, s: &Step, path: &[String], scope: &Scope) -> Vec<PathBuf> {
    file_values(pb, s, scope, kinds::output_files(path))
        .into_iter()
        .filter_map(|(_, p)| p)
        .collect()
}

fn check_body(pb: &Playbook, s: &Step, scope: &Scope) -> Result<(), String> {
    let here = |msg: String| at(&pb.file, s.line, s.col, format!("step `{}`: {msg}", s.id));
    match &s.kind {
        StepKind::Command(path) => {
            let (vals, pending) = values(pb, s, path, scope, true)?;
            if pending.is_empty() {
                let argv = argv(path, &vals);
                kinds_parse(&argv).map_err(here)?;
            }
            Ok(())
        }
        StepKind::Confirm | StepKind::Exec => match s.body.as_str() {
            Some(t) if !t.trim().is_empty() => Ok(()),
            _ => Err(node_err(
                &pb.file,
                &s.body,
                format!("`{}:` takes one line of text", s.kind_name),
            )),
        },
        StepKind::Wait => super::wait::Wait::parse(pb, s, scope).map(|_| ()),
    }
}

/// Run clap on a step's command line: missing required flags, conflicts, bad values.
fn kinds_parse(argv: &[String]) -> Result<(), String> {
    use clap::Parser;
    let full = std::iter::once("mongoshift".to_string()).chain(argv.iter().cloned());
    match crate::cli::Cli::try_parse_from(full) {
        Ok(_) => Ok(()),
        Err(e) => {
            // clap's message up to its usage block, on one line.
            let text = e.to_string();
            let head = text.split("\n\n").next().unwrap_or_default();
            let words: Vec<&str> = head.split_whitespace().collect();
            Err(words.join(" ").trim_start_matches("error: ").to_string())
        }
    }
}

/// A command step's options, interpolated, checked against the command's flags. With
/// `allow_pending`, step results not yet known are left as written and listed.
pub fn values(
    pb: &Playbook,
    s: &Step,
    path: &[String],
    scope: &Scope,
    allow_pending: bool,
) -> Result<(Options, Vec<Ref>), String> {
    let known = kinds::options(path);
    let entries: &[(Node, Node)] = match &s.body.value {
        Value::Map(m) => m,
        _ if s.body.is_null() => &[],
        _ => {
            return Err(node_err(
                &pb.file,
                &s.body,
                format!(
                    "`{}:` takes a mapping of options, e.g. {{ {}: … }}",
                    s.kind_name,
                    known.first().map_or("target", |o| o.name.as_str())
                ),
            ))
        }
    };
    let mut pending = vec![];
    let mut expand = |n: &Node| -> Result<String, String> {
        let e = interpolate::expand(n.as_str().unwrap_or_default(), scope, allow_pending)
            .map_err(|e| node_err(&pb.file, n, e))?;
        pending.extend(e.pending);
        // A URI's password, wherever the value came from, is masked when shown.
        crate::redact::register_uri(&e.text);
        Ok(e.text)
    };
    let mut out = vec![];
    // Every bad option of the step, not only the first.
    let mut errors: Vec<String> = vec![];
    for (k, v) in entries {
        let name = k.as_str().unwrap_or_default();
        let Some(info) = known.iter().find(|o| o.name == name) else {
            let names: Vec<&str> = known.iter().map(|o| o.name.as_str()).collect();
            errors.push(node_err(
                &pb.file,
                k,
                format!(
                    "`{}` has no option `{name}`; its options are {}",
                    s.kind_name,
                    names.join(", ")
                ),
            ));
            continue;
        };
        let val = match &v.value {
            Value::Scalar(t, quoted) if info.switch => match (t.as_str(), quoted) {
                ("true", false) => Val::Switch(true),
                ("false", false) => Val::Switch(false),
                _ => {
                    errors.push(node_err(
                        &pb.file,
                        v,
                        format!("`{name}` is a switch: true or false"),
                    ));
                    continue;
                }
            },
            Value::Scalar(..) => match expand(v) {
                Ok(t) => Val::One(t),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            Value::Seq(items) if info.list => {
                let all: Result<Vec<String>, String> = items
                    .iter()
                    .map(|i| match i.value {
                        Value::Scalar(..) => expand(i),
                        _ => Err(node_err(&pb.file, i, "a list of plain values")),
                    })
                    .collect();
                match all {
                    Ok(l) => Val::Many(l),
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                }
            }
            _ => {
                errors.push(node_err(
                    &pb.file,
                    v,
                    format!(
                        "`{name}` takes {}",
                        if info.list {
                            "a value or a list of values"
                        } else {
                            "one value"
                        }
                    ),
                ));
                continue;
            }
        };
        out.push((info.clone(), val));
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    Ok((out, pending))
}

/// The command line of a command step: flags as `--flag=value` (a value starting with
/// `-` stays a value), positionals last after `--`.
pub fn argv(path: &[String], vals: &[(OptionInfo, Val)]) -> Vec<String> {
    let mut out: Vec<String> = path.to_vec();
    let mut positional = vec![];
    for (info, v) in vals {
        let items: Vec<&String> = match v {
            Val::Switch(true) => {
                out.extend(info.long.clone());
                continue;
            }
            Val::Switch(false) => continue,
            Val::One(s) => vec![s],
            Val::Many(l) => l.iter().collect(),
        };
        match &info.long {
            Some(long) => out.extend(items.iter().map(|i| format!("{long}={i}"))),
            None => positional.extend(items.into_iter().cloned()),
        }
    }
    if !positional.is_empty() {
        out.push("--".into());
        out.extend(positional);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("p.yaml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    fn err(text: &str) -> String {
        let (_d, p) = write(text);
        let e = match load(&p) {
            Err(e) => e,
            Ok(pb) => check(&pb, &[], "r1", &|n| (n == "SET").then(|| "x".into())).unwrap_err(),
        };
        e.to_string().replace(&p.display().to_string(), "p.yaml")
    }

    #[test]
    fn a_good_playbook_checks_and_builds_command_lines() {
        let (_d, p) = write(
            "name: t\nvars: { db: predixi, src: legacy }\nsteps:\n  - id: b\n    backup: { target: \"${src}\", db: [\"${db}\", other], oplog: true, tag: x }\n  - id: v\n    backups_verify: { id: \"${steps.b.backup_id}\", restore_test: false }\n  - id: go\n    confirm: sure?\n  - id: a\n    indexes_apply: { specs: index-specs/, target: atlas }\non_failure:\n  - exec: echo failed\n",
        );
        let pb = load(&p).unwrap();
        assert_eq!(pb.on_failure[0].id, "on_failure-1");
        let vars = check(&pb, &[("db".into(), "other_db".into())], "r1", &|_| None).unwrap();
        assert_eq!(vars["db"], "other_db");
        let steps = HashMap::new();
        let scope = Scope {
            vars: &vars,
            env: &|_| None,
            steps: &steps,
        };
        let s = &pb.steps[0];
        let StepKind::Command(path) = &s.kind else {
            panic!()
        };
        let (v, pending) = values(&pb, s, path, &scope, false).unwrap();
        assert!(pending.is_empty());
        assert_eq!(
            argv(path, &v),
            [
                "backup",
                "--target=legacy",
                "--db=other_db",
                "--db=other",
                "--oplog",
                "--tag=x"
            ]
        );
        let s = &pb.steps[3];
        let StepKind::Command(path) = &s.kind else {
            panic!()
        };
        let (v, _) = values(&pb, s, path, &scope, false).unwrap();
        assert_eq!(
            argv(path, &v),
            ["indexes", "apply", "--target=atlas", "--", "index-specs/"]
        );
    }

    #[test]
    fn every_mistake_has_a_position() {
        assert!(err("name: t\nsteps:\n  - id: a\n    bakup: {}\n")
            .starts_with("p.yaml:4:5: unknown step kind `bakup`"));
        let e = err("name: t\nsteps:\n  - id: a\n    backup: { target: x, tga: y }\n");
        assert!(
            e.starts_with("p.yaml:4:26: `backup` has no option `tga`"),
            "{e}"
        );
        let e = err("name: t\nsteps:\n  - id: a\n    backup: { oplog: yes please }\n");
        assert!(e.contains("4:22: `oplog` is a switch"), "{e}");
        let e = err("name: t\nsteps:\n  - id: a\n    status: { target: \"${steps.b.ok}\" }\n  - id: b\n    status: { target: x }\n");
        assert!(
            e.contains("4:23:") && e.contains("runs after `a` (a cycle"),
            "{e}"
        );
        let e = err("name: t\nsteps:\n  - id: a\n    status: { target: \"${steps.a.ok}\" }\n");
        assert!(e.contains("this step itself"), "{e}");
        let e = err("name: t\nsteps:\n  - id: a\n    status: { target: \"${nope}\" }\n");
        assert!(e.contains("unknown var `nope`"), "{e}");
        let e = err("name: t\nsteps:\n  - id: a\n    status: { target: \"${env.UNSET_X}\" }\n");
        assert!(e.contains("UNSET_X is not set"), "{e}");
        let e = err(
            "name: t\nsteps:\n  - id: a\n    status: { target: x }\n  - id: a\n    status: {}\n",
        );
        assert!(e.contains("6:5: step id `a` is used twice"), "{e}");
        // clap's own checks: a required flag missing.
        let e = err("name: t\nsteps:\n  - id: m\n    migrate: { from: legacy }\n");
        assert!(e.contains("4:5: step `m`:") && e.contains("--to"), "{e}");
        let e = err("name: t\nsteps:\n  - id: a\n    status: { target: x }\n    backup: {}\n");
        assert!(e.contains("5:5: a step has one kind"), "{e}");
        let e = err("name: t\nsteps: [ {id: a, status: {target: x}\n");
        assert!(e.starts_with("p.yaml:"), "{e}");
        let e =
            err("name: t\nvars: { a: \"${b}\", b: \"${a}\" }\nsteps:\n  - id: a\n    status: {}\n");
        assert!(e.contains("2:") && e.contains("cycle"), "{e}");
        let e = err("name: t\nstepz: []\n");
        assert!(e.contains("2:1: unknown key `stepz`"), "{e}");
    }
}
