//! Data-subject requests in a pass: which the journal must record before the pass acts on
//! them, which are in effect (the host's, plus withdrawals and erasures the journal keeps after
//! their resources are gone), and what each pass made of them (the outcome, journaled when it
//! changes, and the access manifest written to the state location).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::retention::{
    AccessEntry, Policy, RequestException, RequestPhase, RequestTally, RequestType, SubjectRequest,
};
use crate::state::journal::{Fact, JournalState, RequestOutcome, RequestRecord};
use crate::store::ObjectStore;

/// What a pass reports of one request, for the host's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestReport {
    pub request: String,
    #[serde(rename = "type")]
    pub kind: RequestType,
    pub phase: RequestPhase,
    /// Selected objects present, by kind.
    pub matched: BTreeMap<String, u64>,
    /// Deleted under the request in all passes so far, by kind.
    pub deleted: BTreeMap<String, u64>,
    /// Kept as exceptions (erasure), by kind.
    pub kept: BTreeMap<String, u64>,
    pub exceptions: Vec<RequestException>,
    pub exceptions_total: u64,
    pub reappeared: u64,
    /// Objects deleted again in this pass after the erasure had completed.
    pub reappeared_now: u64,
    /// Objects of the subject recorded after `receivedAt`, which the request does not reach.
    pub recorded_after: u64,
    /// Access: `s3://bucket/key` of the manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    pub received_at: DateTime<Utc>,
    pub due_by: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// The facts the host's requests add to the journal: each new or changed request, before the
/// pass acts on it.
pub fn received_facts(state: &JournalState, host: &[SubjectRequest]) -> Vec<Fact> {
    host.iter()
        .map(RequestRecord::of)
        .filter(|r| {
            state
                .requests
                .get(&r.request)
                .is_none_or(|s| &s.record != r)
        })
        .map(Fact::SubjectRequestReceived)
        .collect()
}

/// The requests the pass plans with: the host's (with what the journal erased under them),
/// and every withdrawal, objection and erasure the journal keeps whose resource is gone.
pub fn in_effect(state: &JournalState, host: &[SubjectRequest]) -> Vec<SubjectRequest> {
    let mut out: Vec<SubjectRequest> = host
        .iter()
        .map(|r| match state.requests.get(&r.name) {
            Some(s) => {
                let mut r = r.clone();
                r.recording_ids.extend(s.tombstone_ids.iter().cloned());
                r.keys.extend(s.tombstone_keys.iter().cloned());
                r
            }
            None => r.clone(),
        })
        .collect();
    out.extend(
        state
            .requests
            .values()
            .filter(|s| s.record.kind.is_lasting())
            .filter(|s| !host.iter().any(|h| h.name == s.record.request))
            .map(|s| s.engine_request()),
    );
    out
}

/// The ids of `ids` that `known` does not hold yet.
fn not_in(
    ids: &std::collections::BTreeSet<String>,
    known: Option<&std::collections::BTreeSet<String>>,
) -> std::collections::BTreeSet<String> {
    ids.iter()
        .filter(|id| known.is_none_or(|k| !k.contains(*id)))
        .cloned()
        .collect()
}

/// Where an access request's manifest goes in the state location.
pub fn manifest_key(state_prefix: &str, request: &str) -> String {
    let safe: String = request
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' | '_' => c,
            _ => '_',
        })
        .collect();
    format!("{state_prefix}requests/{safe}.json")
}

/// An access manifest: what gallring keeps about the subject's recordings; no content.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    request: &'a str,
    reference: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subjects: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    recording_ids: Vec<&'a str>,
    received_at: DateTime<Utc>,
    generated_at: DateTime<Utc>,
    bucket: &'a str,
    controller: &'a str,
    recordings: &'a [AccessEntry],
}

/// Everything [`conclude`] needs from the pass.
pub struct Concluding<'a, J> {
    pub state_store: &'a J,
    pub state_prefix: &'a str,
    pub bucket: &'a str,
    pub policy: &'a Policy,
    pub now: DateTime<Utc>,
    /// Whether anything may be written (not `Observe`).
    pub writes: bool,
    /// Whether the pass's listing and deletions were complete enough to call a request done.
    pub complete: bool,
}

/// Each request's outcome after the pass, the facts that record changed outcomes, and the
/// reports for the host. Access manifests are written here (before their outcome is
/// journaled).
pub async fn conclude<J: ObjectStore>(
    cx: Concluding<'_, J>,
    journal: &JournalState,
    host: &[SubjectRequest],
    requests: &[SubjectRequest],
    mut tallies: BTreeMap<String, RequestTally>,
) -> (Vec<Fact>, BTreeMap<String, RequestReport>) {
    let mut facts = Vec::new();
    let mut reports = BTreeMap::new();
    for r in requests {
        let from_host = host.iter().any(|h| h.name == r.name);
        let tally = tallies.remove(&r.name).unwrap_or_default();
        let known = journal.requests.get(&r.name);
        let previous = known.and_then(|s| s.outcome.as_ref());
        let deleted_now: u64 = tally.deleted.values().sum();
        // Only the host's requests are answered; one the journal keeps is reported when it
        // erases a recording again.
        let settled = previous.is_none_or(|p| {
            matches!(
                p.phase,
                RequestPhase::Completed | RequestPhase::PartiallyCompleted
            )
        });
        if !from_host && deleted_now == 0 && settled {
            continue;
        }
        let completed_before = known.and_then(|s| s.completed_at);
        let reappeared_now = tally.reappeared;
        let mut manifest = previous.and_then(|p| p.manifest.clone());
        if r.kind == RequestType::Access && manifest.is_none() && cx.writes && cx.complete {
            let key = manifest_key(cx.state_prefix, &r.name);
            // A manifest not written leaves the request in progress: the next pass tries again.
            match write_manifest(&cx, r, &tally, &key).await {
                Ok(()) => manifest = Some(key),
                Err(e) => {
                    tracing::warn!(request = %r.name, error = %e, "access manifest not written")
                }
            }
        }
        let mut deleted = previous.map(|p| p.deleted.clone()).unwrap_or_default();
        for (k, n) in &tally.deleted {
            *deleted.entry(k.clone()).or_default() += n;
        }
        let lifted = r.lifted_at.is_some_and(|l| l <= cx.now);
        let mut phase = tally.phase_at(r.kind, cx.writes, manifest.is_some(), lifted);
        // A pass that could not see or act on everything cannot call a request done.
        if !cx.complete && phase != RequestPhase::Failed {
            phase = RequestPhase::InProgress;
        }
        let outcome = RequestOutcome {
            request: r.name.clone(),
            kind: r.kind,
            phase,
            matched: tally.matched.clone(),
            deleted: deleted.clone(),
            exceptions: tally.exceptions.clone(),
            exceptions_total: tally.exceptions_total,
            reappeared: previous.map_or(0, |p| p.reappeared) + reappeared_now,
            // Only an erasure's tally names ids; the tombstone grows by what is new.
            erased_recording_ids: not_in(&tally.recording_ids, known.map(|s| &s.tombstone_ids)),
            erased_keys: not_in(&tally.keys, known.map(|s| &s.tombstone_keys)),
            manifest: manifest.clone(),
            kept_ids: tally.kept_ids.clone(),
        };
        let changed = previous.is_none_or(|p| !p.same_answer(&outcome))
            || !outcome.erased_recording_ids.is_empty()
            || !outcome.erased_keys.is_empty();
        let completed_at = completed_before.or_else(|| {
            matches!(
                phase,
                RequestPhase::Completed | RequestPhase::PartiallyCompleted
            )
            .then_some(cx.now)
        });
        let mut kept: BTreeMap<String, u64> = BTreeMap::new();
        for e in &tally.exceptions {
            *kept
                .entry(e.kind.clone().unwrap_or_else(|| "unclassified".into()))
                .or_default() += 1;
        }
        reports.insert(
            r.name.clone(),
            RequestReport {
                request: r.name.clone(),
                kind: r.kind,
                phase,
                matched: tally.matched,
                deleted,
                kept,
                exceptions: tally.exceptions,
                exceptions_total: tally.exceptions_total,
                reappeared: outcome.reappeared,
                reappeared_now,
                recorded_after: tally.recorded_after,
                manifest: manifest.map(|k| format!("s3://{}/{k}", cx.state_store.bucket())),
                received_at: r.received_at,
                due_by: r.due_by(cx.policy.time_zone),
                completed_at,
            },
        );
        if changed && cx.writes {
            facts.push(Fact::SubjectRequestOutcome(outcome));
        }
    }
    (facts, reports)
}

async fn write_manifest<J: ObjectStore>(
    cx: &Concluding<'_, J>,
    r: &SubjectRequest,
    tally: &RequestTally,
    key: &str,
) -> Result<(), String> {
    let manifest = Manifest {
        request: &r.name,
        reference: &r.reference,
        subjects: r.subjects.iter().map(String::as_str).collect(),
        recording_ids: r.recording_ids.iter().map(String::as_str).collect(),
        received_at: r.received_at,
        generated_at: cx.now,
        bucket: cx.bucket,
        controller: &cx.policy.controller,
        recordings: &tally.entries,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    cx.state_store
        .put_object(key, body, "application/json", None)
        .await
        .map_err(|e| e.to_string())
}
