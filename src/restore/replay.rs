//! The oplog replay step of a restore: walked once before anything is written (the plan),
//! then applied after the data, with the indexes built from the catalog it leaves.

use anyhow::Result;
use mongodb::Client;

use crate::cli::Ctx;
use crate::load::NsResult;
use crate::mongo::namespaces::Kind;
use crate::mongo::schema;
use crate::namespace::{Filter, Renamer};
use crate::restore::index_catalog::IndexCatalog;
use crate::restore::legacy_indexes::Rewrite;
use crate::restore::oplog_replay::{self, ReplayStats, Replayer};
use crate::restore::oplog_source::OplogFile;
use crate::restore::source::{Source, SourceNs};

/// The index catalog the replay starts from: each restored collection's dumped indexes,
/// under its target name.
pub(super) fn seed_catalog(selected: &[SourceNs], renamer: &Renamer) -> IndexCatalog {
    let mut catalog = IndexCatalog::default();
    for n in selected.iter().filter(|n| n.kind != Kind::View) {
        catalog.set_collection(&renamer.map(&n.ns), &n.options, &n.indexes);
    }
    catalog
}

/// Walk the oplog: planned (no client: nothing is written) or applied.
pub(super) async fn replay_oplog(
    client: Option<&Client>,
    file: &OplogFile,
    src: &Source,
    selected: &[SourceNs],
    (filter, renamer, whole): (&Filter, &Renamer, bool),
    limit: Option<mongodb::bson::Timestamp>,
    preserve_uuid: bool,
) -> Result<Replayed> {
    let known = src.namespaces.iter().map(|n| n.ns.clone()).collect();
    let replayer = Replayer::new(
        client,
        filter,
        renamer,
        whole,
        limit,
        seed_catalog(selected, renamer),
        known,
    )
    .preserve_uuid(preserve_uuid);
    let (rx, reader_task) = oplog_replay::spawn_reader(file.reader()?, file.what.clone());
    let outcome = replayer.run(rx).await;
    // A reader error (truncated oplog) is the root cause when both fail; the reader
    // stopping because replay ended at --oplog-limit is not an error.
    match (reader_task.await?, &outcome) {
        // Stopped at --oplog-limit: every entry before the limit was read intact, whatever
        // the reader (which reads ahead) met after it. Also when the damage comes right
        // after the last intact entry and the limit is its successor: oplog times only
        // grow, so nothing unread can be before the limit.
        (Err(_), Ok(r))
            if r.stats.stopped_at.is_some()
                || matches!((limit, r.stats.last), (Some(l), Some(last))
                    if l <= mongodb::bson::Timestamp { time: last.time, increment: last.increment + 1 }) =>
        {
            outcome.map(|r| Replayed {
                stats: r.stats,
                catalog: r.catalog,
            })
        }
        (Err(e), Ok(r)) if !e.is::<crate::pipeline::PipelineClosed>() => {
            let Some(last) = r.stats.last else {
                return Err(e);
            };
            Err(anyhow::anyhow!(
                "{}; its last intact entry is ts {}:{} (--oplog-limit {}:{} replays up to it)",
                crate::mongo::errors::chain_text(&e),
                last.time,
                last.increment,
                last.time,
                last.increment + 1
            ))
        }
        (Err(e), _) if !e.is::<crate::pipeline::PipelineClosed>() => Err(e),
        _ => outcome.map(|r| Replayed {
            stats: r.stats,
            catalog: r.catalog,
        }),
    }
}

pub(super) struct Replayed {
    pub(super) stats: ReplayStats,
    pub(super) catalog: IndexCatalog,
}

/// Build the indexes after the replay: the dump's, as the oplog left them. A failure marks
/// the namespace's result; one on a collection the oplog created fails the restore.
pub(super) async fn build_indexes(
    ctx: &Ctx,
    client: &Client,
    catalog: &IndexCatalog,
    rewrite: Rewrite,
    results: &mut [NsResult],
) -> Result<()> {
    let mut failed = Vec::new();
    for (t, specs) in catalog.to_build() {
        // The oplog's index specs get what the dump's got (the dump's are already
        // rewritten; rewriting twice changes nothing).
        let specs = rewrite.apply(&specs);
        let built = tokio::select! {
            r = schema::create_indexes(client, &t, specs) => r,
            _ = schema::watch_build(&ctx.ui, client, &t.db, &t.coll) => unreachable!("the watcher never ends"),
        };
        let name = t.to_string();
        match (built, results.iter_mut().find(|r| r.target == name)) {
            (Ok(k), Some(r)) => r.indexes += k,
            (Ok(_), None) => {}
            (Err(e), Some(r)) => {
                r.ok = false;
                r.problem = Some(crate::load::index_failure(&t, &e));
            }
            (Err(e), None) => failed.push(crate::load::index_failure(&t, &e)),
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "after the oplog replay, index builds failed on collections the oplog created: {}",
            failed.join("; ")
        );
    }
    Ok(())
}
