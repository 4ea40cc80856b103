//! Step kinds: every subcommand of the CLI is one (`backups verify` → `backups_verify`),
//! with its flags as options (`--freeze-writes` → `freeze_writes`), read from the clap
//! definition itself so that a playbook can never drift from the commands. Plus the
//! playbook's own kinds: `confirm`, `wait` and `exec`.

use clap::{ArgAction, CommandFactory};

use crate::cli::Cli;

/// The playbook's own step kinds.
pub const GATES: &[&str] = &["confirm", "wait", "exec"];

/// Subcommands that are not steps: a playbook does not run playbooks.
const NOT_STEPS: &[&str] = &["playbook", "help"];

/// A subcommand's path (`["backups", "verify"]`) for a step kind, or why there is none.
pub fn command_path(kind: &str) -> Result<Vec<String>, String> {
    fn walk(cmd: &clap::Command, kind: &str, path: &mut Vec<String>) -> bool {
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            if NOT_STEPS.contains(&name) {
                continue;
            }
            let snake = name.replace('-', "_");
            if kind == snake && !sub.is_subcommand_required_set() {
                path.push(name.to_string());
                return true;
            }
            if let Some(rest) = kind.strip_prefix(&format!("{snake}_")) {
                path.push(name.to_string());
                if walk(sub, rest, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![];
    if walk(&Cli::command(), kind, &mut path) {
        Ok(path)
    } else {
        Err(format!(
            "unknown step kind `{kind}`; the kinds are {}",
            all_kinds().join(", ")
        ))
    }
}

/// Every step kind, for error messages and the README.
pub fn all_kinds() -> Vec<String> {
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands() {
            if NOT_STEPS.contains(&sub.get_name()) {
                continue;
            }
            let k = format!("{prefix}{}", sub.get_name().replace('-', "_"));
            if !sub.is_subcommand_required_set() {
                out.push(k.clone());
            }
            walk(sub, &format!("{k}_"), out);
        }
    }
    let mut out = vec![];
    walk(&Cli::command(), "", &mut out);
    out.extend(GATES.iter().map(|g| g.to_string()));
    out
}

/// One option of a command step.
#[derive(Debug, Clone)]
pub struct OptionInfo {
    /// The option's name in a playbook (clap's id: the flag in snake_case).
    pub name: String,
    /// `--flag`, or None for a positional argument.
    pub long: Option<String>,
    /// A switch: true adds the flag, false leaves it out.
    pub switch: bool,
    /// May be given a list (a repeatable flag, or a positional taking several values).
    pub list: bool,
}

fn leaf(path: &[String]) -> clap::Command {
    let mut cmd = Cli::command();
    for p in path {
        cmd = cmd
            .find_subcommand(p)
            .cloned()
            .expect("a path from command_path");
    }
    cmd
}

/// The options a command step takes, positionals in their order.
pub fn options(path: &[String]) -> Vec<OptionInfo> {
    leaf(path)
        .get_arguments()
        .filter(|a| !a.is_hide_set() && a.get_id() != "help" && a.get_id() != "version")
        .map(|a| OptionInfo {
            // The flag's own name (`--db` → `db`, whatever the field is called); a
            // positional's id.
            name: a
                .get_long()
                .map_or_else(|| a.get_id().to_string(), |l| l.replace('-', "_")),
            long: a.get_long().map(|l| format!("--{l}")),
            switch: matches!(a.get_action(), ArgAction::SetTrue),
            list: matches!(a.get_action(), ArgAction::Append)
                || a.get_num_args().is_some_and(|n| n.max_values() > 1),
        })
        .collect()
}

/// The options of a command that name files it reads: `playbook plan` checks that they
/// exist before anything runs.
pub fn input_files(path: &[String]) -> &'static [&'static str] {
    match path.join(" ").as_str() {
        "indexes lint" | "indexes plan" | "indexes check" | "indexes apply" => &["specs"],
        "analyze check" => &["queries"],
        "analyze queries" | "analyze profile" => &["log"],
        "restore" => &["oplog_file"],
        "rollback" => &["history"],
        _ => &[],
    }
}

/// The options of a command that name files it writes (which later steps may read).
pub fn output_files(path: &[String]) -> &'static [&'static str] {
    match path.join(" ").as_str() {
        "indexes export" => &["out"],
        "analyze queries" => &["write_spec"],
        _ => &[],
    }
}

/// Commands that change nothing anywhere: a dry run runs them as they are.
const READ_ONLY: &[&str] = &[
    "status",
    "verify",
    "backups list",
    "backups show",
    "indexes lint",
    "indexes plan",
    "indexes check",
    "analyze check",
    "analyze indexes",
    "analyze shard-key",
    "migrate status",
];

fn read_only(path: &[String]) -> bool {
    READ_ONLY.contains(&path.join(" ").as_str())
}

/// What a step of this command changes, for `playbook plan`.
pub fn effect(path: &[String]) -> &'static str {
    if read_only(path) {
        return "reads only";
    }
    match path.join(" ").as_str() {
        "freeze" => "blocks (with off: allows) user writes on the target",
        "backups verify" => "reads the backup; with restore_test, restores it into a scratch database and drops it",
        "indexes export" => "reads; with out, writes the spec file",
        "analyze queries" => "reads; with write_spec, writes the spec file",
        "backup" => "writes a new backup to the backup location",
        "backups prune" => "deletes old backups",
        "restore" => "writes the backup's collections into the target",
        "migrate" => "copies into the target (and, with follow, keeps applying the source's writes)",
        "migrate stop" => "stops a running tail",
        "migrate finalize" => "restores the target's TTL and unique indexes relaxed for the copy",
        "indexes apply" => "builds (and with prune drops) indexes on the target",
        "switch" => "freezes OLD's writes, drains the tail, rewrites the connection-string files, runs hooks",
        "rollback" => "writes the old connection string back (after draining the reverse sync)",
        "sample" => "loads sample data into the target",
        "analyze profile" => "sets the profiler level on the target",
        _ => "see the command's --help",
    }
}

/// How a command step runs in `playbook run --dry-run`, which must write nothing.
pub enum DryRun {
    /// The command's own `--dry-run`.
    Flag,
    /// It only reads: run it as it is.
    AsIs,
    /// Run another, read-only command with the same options (`indexes apply` → `indexes plan`).
    Instead(Vec<String>),
    /// Run it without these options, which would write (`backups verify --restore-test`).
    Without(&'static [&'static str]),
    /// Not run: it would write and has no dry-run mode.
    Skip,
}

pub fn dry_run(path: &[String]) -> DryRun {
    if options(path).iter().any(|o| o.name == "dry_run") {
        return DryRun::Flag;
    }
    match path.join(" ").as_str() {
        "indexes apply" => DryRun::Instead(vec!["indexes".into(), "plan".into()]),
        "backups verify" => DryRun::Without(&["restore_test"]),
        "indexes export" => DryRun::Without(&["out"]),
        "analyze queries" => DryRun::Without(&["write_spec"]),
        _ if read_only(path) => DryRun::AsIs,
        _ => DryRun::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_subcommands_in_snake_case() {
        assert_eq!(command_path("status").unwrap(), ["status"]);
        assert_eq!(
            command_path("backups_verify").unwrap(),
            ["backups", "verify"]
        );
        assert_eq!(
            command_path("analyze_shard_key").unwrap(),
            ["analyze", "shard-key"]
        );
        assert_eq!(command_path("migrate").unwrap(), ["migrate"]);
        assert_eq!(command_path("migrate_stop").unwrap(), ["migrate", "stop"]);
        // `backups` alone needs a subcommand; playbooks do not nest.
        assert!(command_path("backups").is_err());
        let e = command_path("playbook_run").unwrap_err();
        assert!(e.contains("backups_verify") && e.contains("confirm"), "{e}");
    }

    #[test]
    fn options_come_from_the_flags() {
        let o = options(&command_path("switch").unwrap());
        let fw = o.iter().find(|o| o.name == "freeze_writes").unwrap();
        assert!(fw.switch && fw.long.as_deref() == Some("--freeze-writes"));
        assert!(o.iter().find(|o| o.name == "env_file").unwrap().list);
        let spec = options(&command_path("indexes_apply").unwrap());
        let s = spec.iter().find(|o| o.long.is_none()).unwrap();
        assert!(s.list, "{s:?}");
        assert!(matches!(
            dry_run(&command_path("migrate").unwrap()),
            DryRun::Flag
        ));
        assert!(matches!(
            dry_run(&command_path("backup").unwrap()),
            DryRun::Skip
        ));
        assert!(matches!(
            dry_run(&command_path("verify").unwrap()),
            DryRun::AsIs
        ));
    }
}
