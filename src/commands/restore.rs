//! `mongoshift restore`: from our backups, mongodump folders and archives —
//! plan first, parallel raw inserts, checksums on the fly, counts verified after.
//! The work is the restore engine's (`crate::restore::run`).

use anyhow::Result;

use crate::cli::Ctx;
pub use crate::restore::run::RestoreArgs;

pub async fn run(ctx: &Ctx, args: RestoreArgs) -> Result<()> {
    crate::restore::run::run(ctx, args).await
}
