//! What a step writes in a real run and what its checks read, for `playbook run --dry-run`:
//! a step whose rehearsal fails is discounted ("it may pass in a real run") only when an
//! earlier step that the dry run skipped or only rehearsed really writes something that
//! the failing step reads. Otherwise the dry run fails naming the step, as the real run
//! would.
//!
//! A place is a cluster (by its hosts, so that a config name and its URI are one place)
//! with a facet — its data, its indexes, or its state (a migration's run record, the write
//! freeze, the profiler) — or the backup storage, or the application's files. Reads are
//! what a step's *checks* depend on: `migrate` refuses because of what the target holds or
//! a run recorded there, never because of the source's indexes, so an `indexes_apply` on
//! the source does not excuse it.

use super::model::Val;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet {
    Data,
    Indexes,
    State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Cluster(String, Facet),
    Storage,
    Files,
    /// An `exec` step or a command we know nothing about: it may write anything.
    Anything,
}

const ALL: &[Facet] = &[Facet::Data, Facet::Indexes, Facet::State];

/// The clusters a command step names, by option: for a two-sided command `from` and `to`;
/// `backup --to` and `restore`/`backups … --from` name the storage instead.
fn clusters(path: &str, vals: &[(String, Val)], norm: &dyn Fn(&str) -> String) -> Clusters {
    let one = |name: &str| {
        vals.iter().find_map(|(n, v)| match v {
            Val::One(s) if n == name => Some(norm(s)),
            _ => None,
        })
    };
    let single = one("target").or_else(|| one("uri"));
    match path {
        "backup" | "restore" | "sample" | "freeze" | "status" | "indexes apply"
        | "indexes check" | "indexes plan" | "indexes export" | "indexes lint" => Clusters {
            from: None,
            to: single,
        },
        p if p.starts_with("analyze") || p.starts_with("backups") => Clusters {
            from: None,
            to: single,
        },
        _ => Clusters {
            from: one("from"),
            to: one("to").or(single),
        },
    }
}

struct Clusters {
    from: Option<String>,
    to: Option<String>,
}

fn on(c: &Option<String>, facets: &[Facet]) -> Vec<Place> {
    match c {
        Some(c) => facets
            .iter()
            .map(|f| Place::Cluster(c.clone(), *f))
            .collect(),
        // A side not named (a default from the config, a rollback's history): any cluster.
        None => facets
            .iter()
            .map(|f| Place::Cluster(String::new(), *f))
            .collect(),
    }
}

/// What a command step writes in a real run.
pub fn writes(
    path: &[String],
    vals: &[(String, Val)],
    norm: &dyn Fn(&str) -> String,
) -> Vec<Place> {
    let p = path.join(" ");
    let c = clusters(&p, vals, norm);
    match p.as_str() {
        "backup" | "backups prune" | "backups delete" => vec![Place::Storage],
        "backups verify" => on(&c.to, &[Facet::Data]),
        "restore" | "sample" => on(&c.to, &[Facet::Data, Facet::Indexes]),
        "migrate" => on(&c.to, ALL),
        "migrate stop" | "migrate finalize" => on(&c.to, &[Facet::State, Facet::Indexes]),
        "indexes apply" => on(&c.to, &[Facet::Indexes]),
        "freeze" | "analyze profile" => on(&c.to, &[Facet::State]),
        "indexes export" | "analyze queries" => vec![Place::Files],
        "switch" | "rollback" => {
            let mut v = on(&c.from, ALL);
            v.extend(on(&c.to, ALL));
            v.push(Place::Files);
            v
        }
        _ => vec![Place::Anything],
    }
}

/// What a command step's checks read: a change there may turn its failure into a pass.
pub fn reads(path: &[String], vals: &[(String, Val)], norm: &dyn Fn(&str) -> String) -> Vec<Place> {
    let p = path.join(" ");
    let c = clusters(&p, vals, norm);
    match p.as_str() {
        // The source's databases exist; the target holds none of the copy's collections,
        // or a run is recorded there to resume.
        "migrate" => {
            let mut v = on(&c.from, &[Facet::Data]);
            v.extend(on(&c.to, &[Facet::Data, Facet::State]));
            v
        }
        "indexes plan" | "indexes check" | "analyze check" | "analyze indexes" => {
            on(&c.to, &[Facet::Data, Facet::Indexes])
        }
        "status" | "migrate status" | "migrate stop" | "migrate finalize" | "freeze" => {
            on(&c.to, &[Facet::State, Facet::Data])
        }
        "backups verify" | "backups list" | "backups show" | "restore" => {
            let mut v = vec![Place::Storage];
            v.extend(on(&c.to, ALL));
            v
        }
        _ => {
            let mut v = on(&c.from, ALL);
            v.extend(on(&c.to, ALL));
            v.extend([Place::Storage, Place::Files]);
            v
        }
    }
}

/// Whether something written is something read. An unnamed cluster ("") is any cluster.
pub fn overlap(written: &[Place], read: &[Place]) -> bool {
    written.iter().any(|w| {
        read.iter().any(|r| match (w, r) {
            (Place::Anything, _) | (_, Place::Anything) => true,
            (Place::Cluster(a, f), Place::Cluster(b, g)) => {
                f == g && (a.is_empty() || b.is_empty() || a == b)
            }
            (a, b) => a == b,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pairs: &[(&str, &str)]) -> Vec<(String, Val)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Val::One(v.to_string())))
            .collect()
    }
    fn p(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn indexes_on_the_source_or_a_backup_do_not_excuse_a_refused_copy() {
        let id = |s: &str| s.to_string();
        let copy = reads(
            &p("migrate"),
            &v(&[("from", "legacy"), ("to", "atlas")]),
            &id,
        );
        let idx = writes(&p("indexes apply"), &v(&[("target", "legacy")]), &id);
        let backup = writes(&p("backup"), &v(&[("target", "legacy")]), &id);
        assert!(!overlap(&idx, &copy));
        assert!(!overlap(&backup, &copy));
        // A copy into atlas does excuse a check of atlas.
        let mig = writes(
            &p("migrate"),
            &v(&[("from", "legacy"), ("to", "atlas")]),
            &id,
        );
        let check = reads(&p("analyze check"), &v(&[("target", "atlas")]), &id);
        assert!(overlap(&mig, &check));
        // An exec step may write anything.
        assert!(overlap(&[Place::Anything], &copy));
        // Indexes built on the source do excuse a check of the source's indexes.
        let chk_src = reads(&p("indexes check"), &v(&[("target", "legacy")]), &id);
        assert!(overlap(&idx, &chk_src));
    }
}
