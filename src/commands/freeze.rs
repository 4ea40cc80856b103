//! `mongoshift freeze`: block or allow user writes on a replica set (the cutover's freeze,
//! by hand), or show whether they are blocked. `switch` leaves OLD frozen and `rollback`
//! leaves NEW frozen, so that a client still on the cluster left behind cannot diverge;
//! this lifts it once nothing points there any more.

use anyhow::{Context, Result};
use clap::Args;

use crate::cli::{Ctx, TargetArgs};
use crate::config::ResolvedTarget;
use crate::mongo::write_block;

#[derive(Debug, Args)]
pub struct FreezeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Allow user writes again.
    #[arg(long, conflicts_with = "status")]
    pub off: bool,
    /// Only show whether user writes are blocked.
    #[arg(long)]
    pub status: bool,
}

/// A `mongoshift freeze` command we suggest, runnable as printed (see `cli::side_arg`),
/// with the note it needs when the password must come from the environment.
pub fn command_for(t: &ResolvedTarget, config: &crate::config::Config, off: bool) -> String {
    let arg = crate::cli::side_arg(t, config);
    let side = if t.name.is_some() || config.name_for(&t.uri, false).is_some() {
        format!("--target {arg}")
    } else {
        format!("--uri {arg}")
    };
    format!(
        "`mongoshift freeze {side}{}`{}",
        if off { " --off" } else { "" },
        crate::cli::side_arg_note(&arg)
    )
}

pub async fn run(ctx: &Ctx, args: FreezeArgs) -> Result<()> {
    let t = args.target.resolve(&ctx.config)?;
    let label = t.label();
    let client = crate::mongo::connect(&t, &args.target.connect_options())
        .await
        .with_context(|| label.clone())?;
    if !args.status {
        write_block::set(&client, !args.off, &label).await?;
    }
    let blocked = write_block::is_blocked(&client, &label).await?;
    if ctx.ui.json() {
        ctx.ui
            .result_json(&serde_json::json!({ "target": label, "writes_blocked": blocked }));
    } else {
        ctx.ui.result(format!(
            "user writes on {label}: {}",
            if blocked { "blocked" } else { "allowed" }
        ));
    }
    Ok(())
}
