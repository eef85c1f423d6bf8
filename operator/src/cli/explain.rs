//! `gallring explain KEY`: why one recording is still there (kind, purposes, deadline and the
//! rule that sets it, holds and floors, the tag and the lifecycle rule that will expire it), or,
//! when it is gone, when and by whom, from the journal. Read-only: it never writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::input::CompiledBucket;
use crate::reconcile::{
    IndexReport, LinkListing, engine_holds, fetch_object, link_ranges, needs_tags, trusted_view,
};
use crate::retention::lifecycle::{self, LifecycleRule};
use crate::retention::{Decision, HoldLinker, ObjectInfo, Planner, RETENTION_TAG};
use crate::state::journal::{Fact, Journal, JournalError, Record};
use crate::store::{ListedObject, ObjectId, ObjectStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Plan(#[from] crate::cli::plan::PlanError),
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    #[error("cannot set up metrics: {0}")]
    Registry(#[from] prometheus::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Pass(#[from] crate::reconcile::PassError),
    #[error("cannot read {what} from the cluster: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot reach the cluster (KUBECONFIG, or in cluster): {0}")]
    Cluster(#[source] kube::Error),
    #[error("{kind} {namespace}/{name} not found{hint}")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
        hint: &'static str,
    },
    #[error("journal segment {key} line {line}: {message}")]
    Segment {
        key: String,
        line: usize,
        message: String,
    },
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Every journal record that names `key`, oldest first, as `(at, what)`.
async fn journal_lines<J: ObjectStore>(
    state: &J,
    prefix: &str,
    key: &str,
) -> Result<Vec<(DateTime<Utc>, String)>, ExplainError> {
    let segments = format!("{prefix}journal/");
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = state.list_page(Some(&segments), false, token, 1000).await?;
        for o in &page.objects {
            let Some(body) = state.get_object(&o.key).await? else {
                continue;
            };
            for (i, line) in String::from_utf8_lossy(&body).lines().enumerate() {
                let r: Record = serde_json::from_str(line).map_err(|e| ExplainError::Segment {
                    key: o.key.clone(),
                    line: i + 1,
                    message: e.to_string(),
                })?;
                if let Some(what) = describe_fact(&r.fact, key) {
                    out.push((r.at, format!("{what} (record {})", r.seq)));
                }
            }
        }
        token = page.next;
        if token.is_none() {
            return Ok(out);
        }
    }
}

fn version(v: &Option<String>) -> String {
    v.as_deref()
        .map(|v| format!(" version {v}"))
        .unwrap_or_default()
}

/// What a fact says about `key`, if anything.
fn describe_fact(fact: &Fact, key: &str) -> Option<String> {
    let mine = |k: &str| k == key;
    match fact {
        Fact::ObjectsFirstSeen { objects } => objects.iter().find(|o| mine(&o.key)).map(|o| {
            format!(
                "first seen{}: created {}",
                version(&o.version_id),
                ts(o.last_modified)
            )
        }),
        Fact::DeletionsIntended { objects } => objects.iter().find(|o| mine(&o.key)).map(|o| {
            format!(
                "deletion intended{} by gallring: {}",
                version(&o.version_id),
                o.reason
            )
        }),
        Fact::DeletionsConfirmed { objects } => objects.iter().find(|o| mine(&o.key)).map(|o| {
            format!(
                "deleted by gallring{} (the store confirmed)",
                version(&o.version_id)
            )
        }),
        Fact::LegalHoldsSet { objects } => objects.iter().find(|o| mine(&o.key)).map(|o| {
            format!(
                "Object Lock legal hold set by gallring{}",
                version(&o.version_id)
            )
        }),
        Fact::LegalHoldsLifted { objects } => objects.iter().find(|o| mine(&o.key)).map(|o| {
            format!(
                "Object Lock legal hold lifted by gallring{}",
                version(&o.version_id)
            )
        }),
        Fact::WithdrawalsObserved { objects } => objects.iter().find(|o| mine(&o.key)).map(|o| {
            let purposes: Vec<&str> = o.purposes.iter().map(String::as_str).collect();
            format!("consent withdrawn for {}", purposes.join(", "))
        }),
        Fact::ObjectsGoneObserved { since, objects } => {
            objects.iter().find(|o| mine(&o.key)).map(|o| {
                let window = since
                    .map(|s| format!(" since {}", ts(s)))
                    .unwrap_or_default();
                let by = match (o.cause, &o.rule) {
                    (crate::state::journal::GoneCause::Lifecycle, Some(r)) => {
                        format!("expired by lifecycle rule {r}")
                    }
                    (crate::state::journal::GoneCause::Lifecycle, None) => {
                        "expired by a lifecycle rule".to_string()
                    }
                    (crate::state::journal::GoneCause::Others, _) => {
                        "removed by someone other than gallring".to_string()
                    }
                };
                let tag = o
                    .tag
                    .as_deref()
                    .map(|t| format!(", last tag {RETENTION_TAG}={t}"))
                    .unwrap_or_default();
                format!("gone{}{window}: {by}{tag}", version(&o.version_id))
            })
        }
        Fact::SubjectRequestOutcome(o)
            if o.erased_keys.contains(key) || o.exceptions.iter().any(|e| e.key == key) =>
        {
            Some(format!(
                "{} {} ({}): {}",
                o.kind,
                o.request,
                o.phase.as_str(),
                o.exceptions
                    .iter()
                    .find(|e| e.key == key)
                    .map_or("erased".to_string(), |e| format!("kept by {}", e.kept_by))
            ))
        }
        Fact::ObjectsGone { .. }
        | Fact::HoldApplied(_)
        | Fact::HoldReleased { .. }
        | Fact::SubjectRequestReceived(_)
        | Fact::SubjectRequestOutcome(_) => None,
    }
}

/// The lifecycle rule gallring compiles for a tag value, if any.
fn rule_for<'a>(rules: &'a [LifecycleRule], tag: &str) -> Option<&'a LifecycleRule> {
    rules.iter().find(|r| {
        r.tag
            .as_ref()
            .is_some_and(|(k, v)| k == RETENTION_TAG && v == tag)
    })
}

/// Explains `key` (the latest version, or `version_id`) of bucket `b` as of `now`.
pub async fn explain<S: ObjectStore, J: ObjectStore>(
    store: &S,
    state: &J,
    b: &CompiledBucket,
    key: &str,
    version_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, ExplainError> {
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
    let mut out = String::new();
    let _ = writeln!(out, "{:<11} {key}", "key");
    let _ = writeln!(out, "{:<11} {} ({})", "bucket", b.key, store.bucket());

    // The listing gives the version and its LastModified to the millisecond: one listing
    // under the key itself (an object outside the governed prefix is never decided).
    let mut found: Option<ListedObject> = None;
    if key.starts_with(b.rules.prefix.as_deref().unwrap_or("")) {
        let mut token = None;
        loop {
            let page = store
                .list_page(Some(key), info.versioned, token, 1000)
                .await?;
            found = found.or_else(|| {
                page.objects.into_iter().find(|o| {
                    !o.delete_marker
                        && o.key == key
                        && match version_id {
                            Some(v) => o.version_id.as_deref() == Some(v),
                            None => o.is_latest,
                        }
                })
            });
            token = page.next;
            if token.is_none() || found.is_some() {
                break;
            }
        }
    }
    // Linking holds to recording ids lists what the pass lists to link them (`link_ranges`),
    // and dates objects as the pass does, by when gallring first saw them.
    let with_tags = needs_tags(&b.rules, &holds);
    let requests = crate::reconcile::requests::in_effect(journal.state(), &b.requests);
    let requests_need_listing = b.rules.recording_id.is_some()
        && requests
            .iter()
            .any(|r| !r.subjects.is_empty() || !r.keys.is_empty());
    let mut linker =
        HoldLinker::new(&b.rules, b.policy.time_zone, holds.clone()).with_requests(requests);
    let ranges = link_ranges(
        linker.link_scope(),
        requests_need_listing,
        b.rules.prefix.as_deref(),
        None,
    );
    let unreadable = LinkListing {
        ranges: &ranges,
        versioned: info.versioned,
        page_size: 1000,
        by_time: true,
        with_tags,
        rules: &b.rules,
        own_prefix,
        index: None,
    }
    .observe(
        store,
        state,
        &mut journal,
        &mut linker,
        &mut IndexReport::default(),
    )
    .await?
    .unreadable;
    // As a pass would not delete on such a linking, the explanation says it may miss a hold.
    if unreadable > 0 {
        let _ = writeln!(
            out,
            "{:<11} {unreadable} object(s) could not be read to link holds to recordings: a hold that reaches this key through one of them is not shown",
            "incomplete"
        );
    }
    // The key's own first-seen time, after linking (whose pages replace the shards held).
    journal.prepare_seen_for(state, [key]).await?;
    let js = journal.state();
    let records = journal_lines(state, &b.state.prefix, key).await?;
    let Some(listed) = found else {
        let _ = writeln!(out, "{:<11} no: not in the bucket now", "present");
        if records.is_empty() {
            let _ = writeln!(
                out,
                "{:<11} gallring's journal has no record of this key (never listed by a pass, or outside the governed prefix)",
                "history"
            );
        }
        render_records(&mut out, &records);
        return Ok(out);
    };
    let linked = linker.finish();
    let planner = Planner::new(&b.policy, &b.rules, &linked, now);
    let obj: ObjectInfo = fetch_object(store, &b.rules, &listed, true).await?;
    let (view, pending) = trusted_view(&obj, &listed, js);
    let plan = planner.plan(&view);
    let _ = writeln!(
        out,
        "{:<11} yes{}: {} bytes, created {}{}",
        "present",
        version(&listed.version_id),
        listed.size,
        ts(view.last_modified),
        if view.last_modified < listed.last_modified {
            " (as gallring first saw it; LastModified has moved since)"
        } else {
            ""
        }
    );
    match (&plan.kind, &plan.rule) {
        (Some(kind), Some(rule)) => {
            let _ = writeln!(out, "{:<11} {kind} (classify rule {rule})", "kind");
        }
        _ => {
            let _ = writeln!(
                out,
                "{:<11} none: no classify rule matches (never deleted)",
                "kind"
            );
        }
    }
    if !plan.purposes.is_empty() {
        let purposes: Vec<String> = plan
            .purposes
            .iter()
            .map(|p| {
                let keep = plan
                    .kind
                    .as_ref()
                    .and_then(|k| b.policy.purposes.get(p)?.retain.get(k))
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                format!("{p}{keep}")
            })
            .collect();
        let _ = writeln!(out, "{:<11} {}", "purposes", purposes.join(", "));
    }
    if !plan.controllers.is_empty() {
        let _ = writeln!(out, "{:<11} {}", "controller", plan.controllers.join(" + "));
    }
    if let Some(r) = plan.recorded_at {
        let _ = writeln!(out, "{:<11} {}", "recorded", ts(r));
    }
    if let Some(a) = &plan.anchor {
        let at = plan
            .anchor_at
            .map(|t| format!(" {}", ts(t)))
            .unwrap_or_default();
        let _ = writeln!(out, "{:<11} {a}{at}", "counted");
    }
    let decision = match plan.decision {
        Decision::Keep => "keep",
        Decision::Held => "held",
        Decision::Delete => "delete",
        Decision::Unclassified => "unclassified",
    };
    let _ = writeln!(out, "{:<11} {decision}: {}", "decision", plan.reason);
    if let Some(d) = plan.deadline {
        let _ = writeln!(out, "{:<11} {}", "deadline", ts(d));
    }
    if let Some(m) = plan.maximum {
        let _ = writeln!(
            out,
            "{:<11} {} (the notice's maximum: overdue after it)",
            "gone by",
            ts(m)
        );
    }
    for u in &plan.uses {
        let _ = writeln!(
            out,
            "{:<11} {} may use it until {}",
            "use",
            u.purpose,
            ts(u.until)
        );
    }
    if !plan.holds.is_empty() {
        let _ = writeln!(out, "{:<11} {}", "holds", plan.holds.join(", "));
    }
    if !plan.requests.is_empty() {
        let _ = writeln!(out, "{:<11} {}", "requests", plan.requests.join(", "));
    }
    if let Some(floor) = plan.keep_until {
        let _ = writeln!(
            out,
            "{:<11} kept at least until {} (released holds)",
            "floor",
            ts(floor)
        );
    }
    if let Some(p) = pending {
        let purposes: Vec<&str> = p.purposes.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "{:<11} the object's tag asks to withdraw {}: not journaled yet, effective from the pass after the next",
            "withdrawal",
            purposes.join(", ")
        );
    }
    let current = obj.tags.get(RETENTION_TAG).cloned();
    let rules = lifecycle::compile(&b.policy, &b.rules, info.versioned, 0).unwrap_or_default();
    match (&current, &plan.tag) {
        (Some(t), _) => {
            let expiry = match (lifecycle::parse_expire_tag(t), rule_for(&rules, t)) {
                (Some(days), Some(r)) => format!(
                    ": lifecycle rule {} expires it {days} days after creation, about {}",
                    r.id,
                    ts(view.last_modified + chrono::Duration::days(i64::from(days)))
                ),
                (Some(_), None) => ": no gallring lifecycle rule matches it now".to_string(),
                (None, _) if t == lifecycle::OPERATOR_TAG_VALUE => {
                    ": no lifecycle rule matches it; gallring deletes it itself when due"
                        .to_string()
                }
                (None, _) if t == lifecycle::HELD_TAG_VALUE => {
                    ": no lifecycle rule matches it while it is held".to_string()
                }
                (None, _) => ": no lifecycle rule matches it".to_string(),
            };
            let _ = writeln!(out, "{:<11} {RETENTION_TAG}={t}{expiry}", "tag");
            if plan.tag.as_ref().is_some_and(|want| want != t) {
                let _ = writeln!(
                    out,
                    "{:<11} the next pass writes {RETENTION_TAG}={}",
                    "",
                    plan.tag.as_deref().unwrap_or_default()
                );
            }
        }
        (None, Some(want)) => {
            let _ = writeln!(
                out,
                "{:<11} none yet; the next pass writes {RETENTION_TAG}={want}",
                "tag"
            );
        }
        (None, None) => {
            let _ = writeln!(out, "{:<11} none", "tag");
        }
    }
    if info.object_lock {
        let id = ObjectId {
            key: listed.key.clone(),
            version_id: listed.version_id.clone(),
        };
        let on = store.get_legal_hold(&id).await?;
        let whose = if js.set_by_gallring(&id) {
            "set by gallring"
        } else if on {
            "set by someone else: gallring never lifts it"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<11} {}{}",
            "legal hold",
            if on { "on" } else { "off" },
            if whose.is_empty() {
                String::new()
            } else {
                format!(" ({whose})")
            }
        );
    }
    render_records(&mut out, &records);
    Ok(out)
}

fn render_records(out: &mut String, records: &[(DateTime<Utc>, String)]) {
    let mut first = true;
    // Grouped by time, oldest first.
    let mut by_time: BTreeMap<DateTime<Utc>, Vec<&str>> = BTreeMap::new();
    for (at, what) in records {
        by_time.entry(*at).or_default().push(what);
    }
    for (at, whats) in by_time {
        for what in whats {
            let label = if first { "journal" } else { "" };
            first = false;
            let _ = writeln!(out, "{label:<11} {} {what}", ts(at));
        }
    }
}

/// The host side: the bucket from the manifests, its store (and state store) reached with the
/// default AWS credential chain, as `gallring run` does.
pub async fn run(
    manifests: &std::path::Path,
    bucket: Option<&str>,
    key: &str,
    version_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, ExplainError> {
    let compiled = crate::input::Manifests::load(manifests)?.compile()?;
    let b = crate::cli::plan::select_bucket(compiled, bucket)?;
    let settings = crate::cli::run::store_settings(&b, 4, std::time::Duration::from_secs(30));
    explain_at(settings, &b, key, version_id, now).await
}

/// The bucket's store and, when its journal is in another bucket, that bucket's store (same
/// endpoint and credentials). Callers use `state.as_ref().unwrap_or(&store)` for the journal.
pub async fn connect(
    settings: crate::store::s3::S3Settings,
    b: &CompiledBucket,
) -> Result<(crate::store::s3::S3Store, Option<crate::store::s3::S3Store>), ExplainError> {
    use crate::store::s3::S3Store;
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new()?);
    let store = S3Store::connect(settings.clone(), metrics.clone()).await;
    let state = match &b.state.bucket {
        Some(name) => {
            let mut s = settings;
            s.bucket = name.clone();
            Some(S3Store::connect(s, metrics).await)
        }
        None => None,
    };
    Ok((store, state))
}

/// A bucket and its store settings for the read-only commands: from manifests (default AWS
/// credential chain), else from the cluster (its Secret's credentials), with the resource.
pub async fn resolve(
    manifests: Option<&std::path::Path>,
    bucket: Option<&str>,
    namespace: Option<&str>,
) -> Result<
    (
        CompiledBucket,
        crate::store::s3::S3Settings,
        Option<crate::api::v1alpha1::RecordingBucket>,
    ),
    ExplainError,
> {
    match manifests {
        Some(m) => {
            let compiled = crate::input::Manifests::load(m)?.compile()?;
            let b = crate::cli::plan::select_bucket(compiled, bucket)?;
            let settings =
                crate::cli::run::store_settings_quiet(&b, 4, std::time::Duration::from_secs(30));
            Ok((b, settings, None))
        }
        None => {
            let (b, settings, rb) = cluster_bucket(namespace, bucket.unwrap_or_default()).await?;
            Ok((b, settings, Some(rb)))
        }
    }
}

/// Connects to the bucket (and its state bucket, when elsewhere) and explains `key`.
async fn explain_at(
    settings: crate::store::s3::S3Settings,
    b: &CompiledBucket,
    key: &str,
    version_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, ExplainError> {
    let (store, state) = connect(settings, b).await?;
    explain(
        &store,
        state.as_ref().unwrap_or(&store),
        b,
        key,
        version_id,
        now,
    )
    .await
}

/// The kubectl form (`kubectl gallring explain KEY --bucket NAME -n NAMESPACE`, with the binary
/// installed as `kubectl-gallring`): the RecordingBucket, its RetentionPolicy, the LegalHolds
/// that name it and its credentials Secret as the cluster has them, read with the current
/// kubeconfig (or in cluster). Without permission to read the Secret, the default AWS chain.
pub async fn run_cluster(
    namespace: Option<&str>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, ExplainError> {
    let (b, settings, _) = cluster_bucket(namespace, bucket).await?;
    explain_at(settings, &b, key, version_id, now).await
}

/// A RecordingBucket as the cluster has it (current kubeconfig, or in cluster): compiled with
/// its policy and holds, the store settings with its Secret's credentials, and the resource.
pub async fn cluster_bucket(
    namespace: Option<&str>,
    bucket: &str,
) -> Result<
    (
        CompiledBucket,
        crate::store::s3::S3Settings,
        crate::api::v1alpha1::RecordingBucket,
    ),
    ExplainError,
> {
    use crate::api::v1alpha1::{LegalHold, RecordingBucket, RetentionPolicy, SubjectRequest};
    use crate::input::{Loaded, Manifests, Origin};
    use kube::api::{Api, ListParams};

    let client = kube::Client::try_default()
        .await
        .map_err(ExplainError::Cluster)?;
    let ns = namespace
        .map(str::to_string)
        .unwrap_or_else(|| client.default_namespace().to_string());
    let read = |what: String| move |source| ExplainError::Kube { what, source };
    let rb = Api::<RecordingBucket>::namespaced(client.clone(), &ns)
        .get_opt(bucket)
        .await
        .map_err(read(format!("RecordingBucket {ns}/{bucket}")))?
        .ok_or_else(|| ExplainError::NotFound {
            kind: "RecordingBucket",
            namespace: ns.clone(),
            name: bucket.to_string(),
            hint: " (--bucket names a RecordingBucket; -n its namespace)",
        })?;
    let policy_name = rb.spec.policy_ref.name.clone();
    let policy = Api::<RetentionPolicy>::namespaced(client.clone(), &ns)
        .get_opt(&policy_name)
        .await
        .map_err(read(format!("RetentionPolicy {ns}/{policy_name}")))?
        .ok_or_else(|| ExplainError::NotFound {
            kind: "RetentionPolicy",
            namespace: ns.clone(),
            name: policy_name.clone(),
            hint: " (named by the RecordingBucket's spec.policyRef)",
        })?;
    let holds = Api::<LegalHold>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(read(format!("LegalHolds in {ns}")))?
        .items
        .into_iter()
        .filter(|h| h.spec.bucket_ref.name == bucket);
    let origin = |kind: &str, name: &str| Origin {
        path: std::path::PathBuf::from(format!("{kind} {ns}/{name} (cluster)")),
        doc: 1,
        line: 1,
    };
    let loaded = |kind: &str, name: String| (origin(kind, &name), name);
    let manifests = Manifests {
        policies: vec![{
            let (origin, name) = loaded("RetentionPolicy", policy_name.clone());
            Loaded {
                namespace: ns.clone(),
                name,
                origin,
                created: None,
                spec: policy.spec,
            }
        }],
        buckets: vec![{
            let (origin, name) = loaded("RecordingBucket", bucket.to_string());
            Loaded {
                namespace: ns.clone(),
                name,
                origin,
                created: None,
                spec: rb.spec.clone(),
            }
        }],
        holds: Vec::new(),
        requests: Vec::new(),
    };
    let mut b = crate::cli::plan::select_bucket(manifests.compile()?, Some(bucket))?;
    // Requests as the operator takes them (restrictions are holds).
    let requests: Vec<SubjectRequest> = Api::<SubjectRequest>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(read(format!("SubjectRequests in {ns}")))?
        .items
        .into_iter()
        .filter(|r| r.spec.bucket_ref.name == bucket)
        .collect();
    let (requests, restrictions) =
        crate::controller::validate::engine_requests(&requests, Some(&b.policy));
    b.requests = requests;
    b.holds.extend(restrictions);
    // Holds exactly as the operator names and applies them (a hold being deleted is released).
    for h in holds {
        match crate::controller::validate::engine_hold(&h) {
            Ok(hold) => b.holds.push(hold),
            Err(e) => eprintln!(
                "gallring explain: LegalHold {ns}/{} is invalid and protects nothing: {e}",
                kube::ResourceExt::name_any(&h)
            ),
        }
    }
    let access = crate::controller::dereference::SecretAccess {
        namespaces: vec![ns.clone()],
        cluster_wide: false,
        allow_ambient: true,
    };
    let credentials = match crate::controller::dereference::credentials(&client, &rb, &access).await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gallring explain: {e}; using the default AWS credential chain instead");
            None
        }
    };
    let mut settings =
        crate::cli::run::store_settings_quiet(&b, 4, std::time::Duration::from_secs(30));
    settings.static_credentials = credentials;
    Ok((b, settings, rb))
}
