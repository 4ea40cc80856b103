//! A tail with no copy, started in the background: `switch --reverse-sync` follows the
//! new cluster back into the old one from the switch's position.

use anyhow::Result;
use mongodb::bson::Bson;
use mongodb::Client;

use super::{detach, identity};
use crate::follow::record::{Phase, Record, Run};

/// Start following `from` into `to` in the background from `token`, without a copy (the
/// two sides hold the same data): `switch --reverse-sync`. `from_arg`/`to_arg` are the
/// sides as the user gave them (config names or URIs; they reach the child through the
/// environment, never its command line). Returns the run's identity, pid and log.
#[allow(clippy::too_many_arguments)]
pub async fn follow_detached(
    config: &crate::config::Config,
    (from_arg, from): (&str, &crate::config::ResolvedTarget),
    (to_arg, to, to_client): (&str, &crate::config::ResolvedTarget, &Client),
    dbs: &[String],
    token: Bson,
) -> Result<(String, u32, std::path::PathBuf)> {
    let identity = identity(&from.uri, dbs, &[]);
    let record = Record::new(to_client, &identity);
    // Owned by this process until the child takes over (see `handed_over` in `migrate`).
    let mut run = Run::start(identity.clone(), from.label(), to.label(), dbs, Some(token));
    run.phase = Phase::Following;
    run.follow = true;
    run.copied = true;
    record.put(&run).await?;
    let mut argv = vec![std::env::args()
        .next()
        .unwrap_or_else(|| "mongoshift".into())];
    if let Some(c) = &config.source {
        argv.extend(["--config".to_string(), c.display().to_string()]);
    }
    argv.extend(
        ["migrate", "--from", from_arg, "--to", to_arg]
            .iter()
            .map(|s| s.to_string()),
    );
    for d in dbs {
        argv.extend(["--db".to_string(), d.clone()]);
    }
    argv.extend(
        ["--follow", "--resume", "--yes", "--no-progress"]
            .iter()
            .map(|s| s.to_string()),
    );
    let (pid, log) = detach::start(argv, &detach::default_log(), &record).await?;
    Ok((identity, pid, log))
}
