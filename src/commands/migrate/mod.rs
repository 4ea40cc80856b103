//! `mongoshift migrate`: copy databases straight from one cluster to another, then with
//! `--follow` keep the target in sync until stopped. The work is the migration engine's
//! (`crate::migration`); this file is the command line. `migrate status|stop|finalize`
//! (see `control`) work on the record the run keeps in the target.

mod control;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cli::Ctx;
pub use crate::migration::CopyArgs;
pub use control::ControlArgs;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,
    #[command(flatten)]
    pub copy: CopyArgs,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// A migration's phase, copy progress per namespace, tail lag and events; works from
    /// another terminal while it runs.
    Status(ControlArgs),
    /// Stop a running tail cleanly (position saved; continue later with --resume --follow).
    Stop(ControlArgs),
    /// After the tail stopped (the cutover): give the target back the TTL and unique
    /// indexes that were relaxed while following, and clear the migration's state.
    Finalize(ControlArgs),
}

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<()> {
    match args.action {
        Some(MigrateAction::Status(a)) => control::status(ctx, a).await,
        Some(MigrateAction::Stop(a)) => control::stop(ctx, a).await,
        Some(MigrateAction::Finalize(a)) => control::finalize(ctx, a).await,
        None => crate::migration::run(ctx, args.copy).await,
    }
}
