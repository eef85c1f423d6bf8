//! `gallring evidence` (issue 11 item 2): what the journal proves about a bucket over a period,
//! as files an auditor can take away. Every disposition (deleted by gallring and confirmed by
//! the store, or observed gone: expired by a lifecycle rule or removed by someone else), every
//! hold applied and released, every object still overdue, and a summary signed with the
//! journal's key (a certificate of disposition).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::cli::explain::ExplainError;
use crate::input::CompiledBucket;
use crate::reconcile::{engine_holds, fetch_object, is_state_key, trusted_view};
use crate::retention::{HoldLinker, ObjectPlan, Planner};
use crate::state::journal::{Fact, GoneCause, IntendedDeletion, Journal, VersionRef, records};
use crate::state::seal::Signer;
use crate::store::ObjectStore;

/// One version that left the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disposition {
    /// When it was confirmed gone (the journal record's time).
    pub at: DateTime<Utc>,
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub kind: Option<String>,
    pub purposes: Vec<String>,
    /// The purposes' lawful bases, from the policy.
    pub legal_basis: Vec<String>,
    pub controllers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// `gallring`, `lifecycle` or `others`.
    pub by: &'static str,
    /// The decision or rule that removed it.
    pub rule: String,
    /// How its absence is known.
    pub confirmation: String,
    /// The journal record that says so.
    pub seq: u64,
}

/// A hold applied or released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldEvent {
    pub at: DateTime<Utc>,
    /// `applied` or `released`.
    pub event: &'static str,
    pub hold: String,
    pub reason: String,
    pub case: String,
    pub seq: u64,
}

/// A data-subject request received, or an answer a pass gave to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestEvent {
    pub at: DateTime<Utc>,
    /// `received` or the phase of the answer (`Completed`, `PartiallyCompleted`, ...).
    pub event: String,
    pub request: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The case number (received) or what the answer came to (matched, deleted, kept).
    pub detail: String,
    /// Erasure: what keeps each kept object (Art. 17(3)).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
    /// Erasure: the recording ids (or keys) erased in this answer: the tombstone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<String>,
    pub seq: u64,
}

/// An object past its deadline and grace that is still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overdue {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub kind: Option<String>,
    pub purposes: Vec<String>,
    pub controllers: Vec<String>,
    pub deadline: Option<DateTime<Utc>>,
    pub reason: String,
}

/// The one-page summary: counts, the period and the chain it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub bucket: String,
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub journal_records: u64,
    /// The chain's hash after the last record read: ties the summary to the journal.
    pub journal_head: String,
    pub dispositions: u64,
    /// By `gallring`, `lifecycle`, `others`.
    pub dispositions_by: BTreeMap<String, u64>,
    pub dispositions_by_kind: BTreeMap<String, u64>,
    pub dispositions_by_purpose: BTreeMap<String, u64>,
    pub holds_applied: u64,
    pub holds_released: u64,
    pub overdue_now: u64,
    /// Data-subject requests received in the period, by type.
    pub requests_received: BTreeMap<String, u64>,
    /// Answers recorded in the period, by phase.
    pub request_answers: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummarySignature {
    pub public_key: String,
    /// Hex Ed25519 signature over the exact bytes of summary.json.
    pub value: String,
}

pub struct Evidence {
    pub dispositions: Vec<Disposition>,
    pub holds: Vec<HoldEvent>,
    pub requests: Vec<RequestEvent>,
    pub overdue: Vec<Overdue>,
    pub summary: Summary,
}

fn in_period(at: DateTime<Utc>, from: Option<DateTime<Utc>>, to: DateTime<Utc>) -> bool {
    from.is_none_or(|f| at >= f) && at < to
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reads the journal (every record, chain checked) and the bucket (for what is overdue now).
pub async fn collect<S: ObjectStore, J: ObjectStore>(
    store: &S,
    state: &J,
    b: &CompiledBucket,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Evidence, ExplainError> {
    let all = records(state, &b.state.prefix).await?;
    let basis = |purposes: &[String]| -> Vec<String> {
        purposes
            .iter()
            .filter_map(|p| b.policy.purposes.get(p))
            .map(|p| p.legal_basis.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let mut intended: BTreeMap<VersionRef, IntendedDeletion> = BTreeMap::new();
    let mut dispositions = Vec::new();
    let mut holds = Vec::new();
    let mut requests = Vec::new();
    for r in &all {
        match &r.fact {
            Fact::DeletionsIntended { objects } => {
                for o in objects {
                    let id = VersionRef {
                        key: o.key.clone(),
                        version_id: o.version_id.clone(),
                    };
                    intended.insert(id, o.clone());
                }
            }
            Fact::DeletionsConfirmed { objects } => {
                for o in objects {
                    let why = intended.remove(o);
                    if !in_period(r.at, from, to) {
                        continue;
                    }
                    let purposes = why.as_ref().map(|w| w.purposes.clone()).unwrap_or_default();
                    dispositions.push(Disposition {
                        at: r.at,
                        key: o.key.clone(),
                        version_id: o.version_id.clone(),
                        kind: why.as_ref().and_then(|w| w.kind.clone()),
                        legal_basis: basis(&purposes),
                        purposes,
                        controllers: why
                            .as_ref()
                            .map(|w| w.controllers.clone())
                            .unwrap_or_default(),
                        deadline: why.as_ref().and_then(|w| w.deadline),
                        by: "gallring",
                        rule: why
                            .map(|w| w.reason)
                            .unwrap_or_else(|| "(no intent recorded)".into()),
                        confirmation: "DeleteObjects: the store confirmed the deletion".into(),
                        seq: r.seq,
                    });
                }
            }
            Fact::ObjectsGoneObserved { since, objects } if in_period(r.at, from, to) => {
                for g in objects {
                    let (by, rule) = match g.cause {
                        GoneCause::Lifecycle => (
                            "lifecycle",
                            format!(
                                "lifecycle rule {} (tag {})",
                                g.rule.as_deref().unwrap_or("?"),
                                g.tag.as_deref().unwrap_or("?")
                            ),
                        ),
                        GoneCause::Others => (
                            "others",
                            format!(
                                "not gallring, and no gallring rule was due (tag {})",
                                g.tag.as_deref().unwrap_or("none")
                            ),
                        ),
                    };
                    dispositions.push(Disposition {
                        at: r.at,
                        key: g.key.clone(),
                        version_id: g.version_id.clone(),
                        kind: g.kind.clone(),
                        legal_basis: basis(&g.purposes),
                        purposes: g.purposes.clone(),
                        controllers: g.controllers.clone(),
                        deadline: None,
                        by,
                        rule,
                        confirmation: match since {
                            Some(s) => format!(
                                "absent from the complete listing of {}, present in the one of {}",
                                ts(r.at),
                                ts(*s)
                            ),
                            None => format!("absent from the complete listing of {}", ts(r.at)),
                        },
                        seq: r.seq,
                    });
                }
            }
            Fact::SubjectRequestReceived(q) if in_period(r.at, from, to) => {
                requests.push(RequestEvent {
                    at: r.at,
                    event: "received".into(),
                    request: q.request.clone(),
                    kind: q.kind.as_str().into(),
                    detail: format!("{} received {}", q.reference, ts(q.received_at)),
                    exceptions: Vec::new(),
                    erased: Vec::new(),
                    seq: r.seq,
                })
            }
            Fact::SubjectRequestOutcome(o) if in_period(r.at, from, to) => {
                let counts = crate::retention::answer::counts_text;
                requests.push(RequestEvent {
                    at: r.at,
                    event: o.phase.as_str().into(),
                    request: o.request.clone(),
                    kind: o.kind.as_str().into(),
                    detail: format!(
                        "present: {}; deleted: {}; kept: {}; reappeared: {}{}",
                        counts(&o.matched),
                        counts(&o.deleted),
                        o.exceptions_total,
                        o.reappeared,
                        o.manifest
                            .as_deref()
                            .map(|m| format!("; manifest {m}"))
                            .unwrap_or_default()
                    ),
                    exceptions: o
                        .exceptions
                        .iter()
                        .map(|e| format!("{}: {}", e.key, e.kept_by))
                        .collect(),
                    erased: o
                        .erased_recording_ids
                        .iter()
                        .chain(&o.erased_keys)
                        .cloned()
                        .collect(),
                    seq: r.seq,
                })
            }
            Fact::HoldApplied(h) if in_period(r.at, from, to) => holds.push(HoldEvent {
                at: r.at,
                event: "applied",
                hold: h.hold.clone(),
                reason: h.reason.clone(),
                case: h.case.clone(),
                seq: r.seq,
            }),
            Fact::HoldReleased { hold, released_at } if in_period(*released_at, from, to) => holds
                .push(HoldEvent {
                    at: *released_at,
                    event: "released",
                    hold: hold.hold.clone(),
                    reason: hold.reason.clone(),
                    case: hold.case.clone(),
                    seq: r.seq,
                }),
            _ => {}
        }
    }
    // The chain's head after the last record (and its seals, when there are) from a verify.
    let verified = crate::state::journal::verify(state, &b.state.prefix, None).await?;
    if let Some(p) = verified.problem {
        return Err(ExplainError::Segment {
            key: b.state.prefix.clone(),
            line: 0,
            message: p,
        });
    }
    let overdue = overdue_now(store, state, b, now).await?;

    let mut summary = Summary {
        bucket: b.key.clone(),
        from,
        to,
        generated_at: now,
        journal_records: verified.records,
        journal_head: verified.head,
        dispositions: dispositions.len() as u64,
        dispositions_by: BTreeMap::new(),
        dispositions_by_kind: BTreeMap::new(),
        dispositions_by_purpose: BTreeMap::new(),
        holds_applied: holds.iter().filter(|h| h.event == "applied").count() as u64,
        holds_released: holds.iter().filter(|h| h.event == "released").count() as u64,
        overdue_now: overdue.len() as u64,
        requests_received: BTreeMap::new(),
        request_answers: BTreeMap::new(),
    };
    for q in &requests {
        let counter = if q.event == "received" {
            summary.requests_received.entry(q.kind.clone())
        } else {
            summary.request_answers.entry(q.event.clone())
        };
        *counter.or_default() += 1;
    }
    for d in &dispositions {
        *summary.dispositions_by.entry(d.by.to_string()).or_default() += 1;
        *summary
            .dispositions_by_kind
            .entry(d.kind.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
        for p in &d.purposes {
            *summary
                .dispositions_by_purpose
                .entry(p.clone())
                .or_default() += 1;
        }
    }
    Ok(Evidence {
        dispositions,
        holds,
        requests,
        overdue,
        summary,
    })
}

/// Every object version in the bucket now, planned as a pass would plan it, without writing
/// anything (the journal's trusted view, holds linked over the whole listing).
pub async fn plan_now<S: ObjectStore, J: ObjectStore>(
    store: &S,
    state: &J,
    b: &CompiledBucket,
    now: DateTime<Utc>,
) -> Result<Vec<ObjectPlan>, ExplainError> {
    let mut journal = Journal::load(state, &b.state.prefix).await?;
    let info = store.bucket_info().await?;
    let own_prefix = (state.bucket() == store.bucket()).then_some(b.state.prefix.as_str());
    let holds = engine_holds(
        journal.state(),
        b.policy.cap_holds(b.holds.clone()),
        &b.policy,
        b.rules.grace,
        now,
        true,
    );
    let mut objects = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .list_page(b.rules.prefix.as_deref(), info.versioned, token, 1000)
            .await?;
        // The first-seen shards of this page's keys (listings are in key order).
        if let (Some(first), Some(last)) = (page.objects.first(), page.objects.last()) {
            journal
                .prepare_seen(state, &first.key, crate::state::seen::Upto::Key(&last.key))
                .await?;
        }
        let js = journal.state();
        for o in page
            .objects
            .iter()
            .filter(|o| !o.delete_marker && !is_state_key(&o.key, own_prefix))
        {
            let obj = fetch_object(store, &b.rules, o, true).await?;
            objects.push(trusted_view(&obj, o, js).0);
        }
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    let mut linker = HoldLinker::new(&b.rules, b.policy.time_zone, holds).with_requests(
        crate::reconcile::requests::in_effect(journal.state(), &b.requests),
    );
    for o in &objects {
        linker.observe(o);
    }
    let linked = linker.finish();
    let planner = Planner::new(&b.policy, &b.rules, &linked, now);
    Ok(objects.iter().map(|o| planner.plan(o)).collect())
}

/// Objects overdue now.
async fn overdue_now<S: ObjectStore, J: ObjectStore>(
    store: &S,
    state: &J,
    b: &CompiledBucket,
    now: DateTime<Utc>,
) -> Result<Vec<Overdue>, ExplainError> {
    Ok(plan_now(store, state, b, now)
        .await?
        .into_iter()
        .filter(|p| p.overdue)
        .map(|p| Overdue {
            key: p.key,
            version_id: p.version_id,
            kind: p.kind,
            purposes: p.purposes,
            controllers: p.controllers,
            deadline: p.deadline,
            reason: p.reason,
        })
        .collect())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(fields: &[String]) -> String {
    let cells: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    cells.join(",") + "\n"
}

fn opt(t: Option<DateTime<Utc>>) -> String {
    t.map(ts).unwrap_or_default()
}

fn jsonl<T: Serialize>(rows: &[T]) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    for r in rows {
        out.push_str(&serde_json::to_string(r)?);
        out.push('\n');
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Explain(#[from] ExplainError),
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot serialise: {0}")]
    Json(#[from] serde_json::Error),
}

fn header(names: &[&str]) -> String {
    csv_line(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

/// Writes the files into `dir` (created if missing) and returns the summary in words.
pub fn write(e: &Evidence, dir: &Path, signer: Option<&Signer>) -> Result<String, EvidenceError> {
    let put = |name: &str, text: String| -> Result<(), EvidenceError> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| EvidenceError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|source| EvidenceError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut csv = header(&[
        "at",
        "key",
        "versionId",
        "kind",
        "purposes",
        "legalBasis",
        "controllers",
        "deadline",
        "by",
        "rule",
        "confirmation",
        "seq",
    ]);
    for d in &e.dispositions {
        csv.push_str(&csv_line(&[
            ts(d.at),
            d.key.clone(),
            d.version_id.clone().unwrap_or_default(),
            d.kind.clone().unwrap_or_default(),
            d.purposes.join(" "),
            d.legal_basis.join("; "),
            d.controllers.join("; "),
            opt(d.deadline),
            d.by.to_string(),
            d.rule.clone(),
            d.confirmation.clone(),
            d.seq.to_string(),
        ]));
    }
    put("dispositions.csv", csv)?;
    put("dispositions.jsonl", jsonl(&e.dispositions)?)?;
    let mut csv = header(&["at", "event", "hold", "reason", "case", "seq"]);
    for h in &e.holds {
        csv.push_str(&csv_line(&[
            ts(h.at),
            h.event.to_string(),
            h.hold.clone(),
            h.reason.clone(),
            h.case.clone(),
            h.seq.to_string(),
        ]));
    }
    put("holds.csv", csv)?;
    put("holds.jsonl", jsonl(&e.holds)?)?;
    let mut csv = header(&[
        "at",
        "event",
        "request",
        "type",
        "detail",
        "exceptions",
        "erased",
        "seq",
    ]);
    for q in &e.requests {
        csv.push_str(&csv_line(&[
            ts(q.at),
            q.event.clone(),
            q.request.clone(),
            q.kind.clone(),
            q.detail.clone(),
            q.exceptions.join("; "),
            q.erased.join(" "),
            q.seq.to_string(),
        ]));
    }
    put("requests.csv", csv)?;
    put("requests.jsonl", jsonl(&e.requests)?)?;
    let mut csv = header(&[
        "key",
        "versionId",
        "kind",
        "purposes",
        "controllers",
        "deadline",
        "reason",
    ]);
    for o in &e.overdue {
        csv.push_str(&csv_line(&[
            o.key.clone(),
            o.version_id.clone().unwrap_or_default(),
            o.kind.clone().unwrap_or_default(),
            o.purposes.join(" "),
            o.controllers.join("; "),
            opt(o.deadline),
            o.reason.clone(),
        ]));
    }
    put("overdue.csv", csv)?;
    put("overdue.jsonl", jsonl(&e.overdue)?)?;
    // A detached signature over the exact bytes of summary.json.
    let body = serde_json::to_string_pretty(&e.summary)? + "\n";
    let signature = signer.map(|s| SummarySignature {
        public_key: s.public_hex(),
        value: s.sign_hex(body.as_bytes()),
    });
    put("summary.json", body)?;
    if let Some(sig) = &signature {
        put(
            "summary.json.sig",
            serde_json::to_string_pretty(sig)? + "\n",
        )?;
    }

    let s = &e.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "evidence for {} from {} to {}: {} dispositions ({}), {} holds applied, {} released, {} overdue now",
        s.bucket,
        s.from.map_or_else(|| "the first record".into(), ts),
        ts(s.to),
        s.dispositions,
        if s.dispositions_by.is_empty() {
            "none".to_string()
        } else {
            s.dispositions_by
                .iter()
                .map(|(k, v)| format!("{v} by {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        s.holds_applied,
        s.holds_released,
        s.overdue_now
    );
    if !s.requests_received.is_empty() || !s.request_answers.is_empty() {
        let list = crate::retention::answer::counts_text;
        let _ = writeln!(
            out,
            "data-subject requests: received {}; answers {}",
            list(&s.requests_received),
            list(&s.request_answers)
        );
    }
    let _ = writeln!(
        out,
        "journal: {} records, head {}; summary {}",
        s.journal_records,
        s.journal_head,
        match &signature {
            Some(sig) => format!("signed by {}", sig.public_key),
            None => "not signed (no --journal-signing-key)".into(),
        }
    );
    let _ = writeln!(
        out,
        "files: dispositions.csv/.jsonl, holds.csv/.jsonl, requests.csv/.jsonl, overdue.csv/.jsonl, summary.json(.sig) in {}",
        dir.display()
    );
    Ok(out)
}

/// Connects to the bucket (and its state bucket), collects the evidence and writes it.
pub async fn run(
    settings: crate::store::s3::S3Settings,
    b: &CompiledBucket,
    (from, to): (Option<DateTime<Utc>>, DateTime<Utc>),
    now: DateTime<Utc>,
    out: &Path,
    signer: Option<&Signer>,
) -> Result<String, EvidenceError> {
    let (store, state) = crate::cli::explain::connect(settings, b).await?;
    let state = state.as_ref().unwrap_or(&store);
    let evidence = collect(&store, state, b, from, to, now).await?;
    write(&evidence, out, signer)
}
