//! Holds without a scan (issue 9): a hold the journal has just recorded as applied (new, or
//! its selector changed) is put on the objects the index says it selects, with their linked
//! artifacts, before the pass lists the bucket. Its latency depends on the objects it selects,
//! not on the size of the bucket.
//!
//! This step only raises protection (legal hold first, then the `held` tag, each read from the
//! store just before: the index only says where to look). Anything the index does not know
//! yet (an object uploaded since the last listing) is protected by the listing that follows in
//! the same pass, as without an index.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::{
    ObjectContext, ObjectOutcome, PassConfig, PassError, PassReport, cache, dated, handle_object,
    set_deferred_legal_holds,
};
use crate::retention::{BucketRules, Decision, Hold, HoldLinker, Planner, Policy};
use crate::state::index::{Entry, Index, IndexError, Selection};
use crate::state::journal::Journal;
use crate::store::{ListedObject, ObjectStore};

/// The entries the holds select directly, and those linked to them by recording id.
fn targets(index: &Index, holds: &[&Hold], rules: &BucketRules) -> Result<Vec<Entry>, IndexError> {
    let mut found: BTreeMap<(String, Option<String>), Entry> = BTreeMap::new();
    for h in holds {
        let s = &h.select;
        let selection = Selection {
            keys: s.keys.clone(),
            prefix: s.prefix.clone(),
            recording_ids: s.recording_ids.clone(),
            subjects: s.subjects.clone(),
            tags: s.tags.clone(),
        };
        for e in index.select(&selection)? {
            found.insert((e.key.clone(), e.version_id.clone()), e);
        }
    }
    if rules.recording_id.is_some() {
        let ids: BTreeSet<String> = found
            .values()
            .filter_map(|e| e.recording_id.clone())
            .collect();
        if !ids.is_empty() {
            let linked = Selection {
                recording_ids: ids,
                ..Selection::default()
            };
            for e in index.select(&linked)? {
                found.insert((e.key.clone(), e.version_id.clone()), e);
            }
        }
    }
    Ok(found.into_values().collect())
}

/// First-seen shards one run of the hold-first step may hold in memory at once.
const SHARDS_PER_RUN: usize = 16;

/// `entries` (in key order) cut into runs that each need at most [`SHARDS_PER_RUN`] shards.
fn shard_runs<'e>(journal: &Journal, entries: &'e [Entry]) -> Vec<&'e [Entry]> {
    let seen = &journal.state().seen;
    let mut runs = Vec::new();
    let mut start = 0;
    let mut shards = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        let shard = seen.needed_for([e.key.as_str()]);
        let grown = shards.union(&shard).count();
        if grown > SHARDS_PER_RUN && i > start {
            runs.push(&entries[start..i]);
            start = i;
            shards.clear();
        }
        shards.extend(shard);
    }
    if start < entries.len() {
        runs.push(&entries[start..]);
    }
    runs
}

/// Links over `entries` (in key order) dated by their first-seen times, their shards loaded
/// a run at a time.
pub(super) async fn observe_dated<J: ObjectStore>(
    linker: &mut HoldLinker<'_>,
    journal: &mut Journal,
    state: &J,
    entries: &[Entry],
) -> Result<(), PassError> {
    for run in shard_runs(journal, entries) {
        journal
            .prepare_seen_for(state, run.iter().map(|e| e.key.as_str()))
            .await?;
        for e in run {
            let l = listed(e);
            linker.observe(&dated(journal.state(), cache::object_of(e, &l), &l));
        }
    }
    Ok(())
}

pub(super) fn listed(e: &Entry) -> ListedObject {
    ListedObject {
        key: e.key.clone(),
        version_id: e.version_id.clone(),
        last_modified: e.last_modified,
        size: e.size,
        delete_marker: false,
        is_latest: true,
        etag: e.etag.clone(),
    }
}

/// Protects what the newly applied holds (`new`, by name) select according to the index.
/// Returns how many objects it protected (legal hold and `held` tag in place).
#[allow(clippy::too_many_arguments)]
pub(super) async fn protect_new_holds<S: ObjectStore, J: ObjectStore>(
    store: &S,
    state: &J,
    journal: &mut Journal,
    policy: &Policy,
    rules: &BucketRules,
    holds: &[Hold],
    new: &BTreeSet<String>,
    index: &Index,
    early: DateTime<Utc>,
    object_lock: bool,
    config: &PassConfig,
    report: &mut PassReport,
) -> Result<u64, PassError> {
    let fresh: Vec<&Hold> = holds
        .iter()
        .filter(|h| new.contains(&h.name) && h.is_active(early))
        .collect();
    if fresh.is_empty() {
        return Ok(0);
    }
    let entries = match targets(index, &fresh, rules) {
        Ok(e) => e,
        Err(e) => {
            // The listing that follows protects them instead.
            report.index.error(&e);
            return Ok(0);
        }
    };
    tracing::debug!(
        bucket = store.bucket(),
        objects = entries.len(),
        "pass: new holds select these objects in the index"
    );
    if entries.is_empty() {
        return Ok(0);
    }
    // First-seen times (an object's creation, when a tag write has moved its `LastModified`)
    // only change what a hold scoped by recording time selects: a held object's tag does not
    // depend on them. Without such a hold among the new ones no shard is read, so the step
    // costs its own objects at any bucket size (1,000 keys spread over 10 M objects would
    // touch 1,000 shards).
    let by_time = fresh.iter().any(|h| h.select.scoped_by_time());
    // Link over the selected objects as the index knows them; every decision below is made
    // on tags read again from the store.
    let mut linker = HoldLinker::new(rules, policy.time_zone, holds.to_vec());
    if by_time {
        observe_dated(&mut linker, journal, state, &entries).await?;
    } else {
        for e in &entries {
            linker.observe(&cache::object_of(e, &listed(e)));
        }
    }
    let linked = linker.finish();
    let planner = Planner::new(policy, rules, &linked, early);
    let mut outcomes: Vec<ObjectOutcome> = Vec::new();
    let runs = if by_time {
        // In runs of keys whose first-seen shards fit in memory together (entries are in key
        // order), each run's shards loaded before its objects are handled.
        shard_runs(journal, &entries)
    } else {
        vec![&entries[..]]
    };
    for run in runs {
        if by_time {
            journal
                .prepare_seen_for(state, run.iter().map(|e| e.key.as_str()))
                .await?;
        }
        let cx = &ObjectContext {
            store,
            planner: &planner,
            rules,
            object_lock,
            writes: true,
            fence: &config.fence,
            journal: journal.state(),
            protect_only: true,
        };
        // Unordered (a slow object holds back no other), then in key order again.
        let done: Vec<ObjectOutcome> = futures::stream::iter(run.iter().map(listed))
            .map(move |o| async move { handle_object(cx, &o).await })
            .buffer_unordered(config.concurrency.max(1))
            .filter_map(futures::future::ready)
            .collect()
            .await;
        outcomes.extend(done);
    }
    outcomes
        .sort_by(|a, b| (&a.plan.key, &a.plan.version_id).cmp(&(&b.plan.key, &b.plan.version_id)));
    if outcomes.iter().any(|o| o.fenced) {
        return Err(PassError::Fenced);
    }
    report.journal_facts += set_deferred_legal_holds(
        store,
        state,
        journal,
        &mut outcomes,
        early,
        object_lock,
        config,
    )
    .await?;
    let mut protected = 0u64;
    for o in &outcomes {
        report.tags_written += u64::from(o.tags_written);
        report.legal_holds_set += u64::from(o.legal_hold_set);
        if let Some(e) = &o.error {
            report.object_errors += 1;
            if report.sample_errors.len() < super::MAX_SAMPLE_ERRORS {
                report.sample_errors.push(e.to_string());
            }
        } else if o.plan.decision == Decision::Held && !o.unknown {
            protected += 1;
        }
    }
    Ok(protected)
}
