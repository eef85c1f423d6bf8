//! `gallring run`: the standalone host. Reads the same manifests as `plan`, reconciles every
//! RecordingBucket on its scan interval, serves metrics, and stops cleanly on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::{error, info, warn};

use crate::input::{CompiledBucket, InputError, Manifests};
use crate::metrics::Metrics;
use crate::reconcile::{self, LifecycleOutcome, PassConfig, PassReport, Progress};
use crate::retention::IsoDuration;
use crate::store::s3::{S3Settings, S3Store};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub once: bool,
    pub metrics_addr: Option<SocketAddr>,
    pub pass: PassConfig,
    pub max_attempts: u32,
    pub request_timeout: Duration,
    /// Each bucket's local index (issue 9).
    pub indexes: std::sync::Arc<crate::state::index::Indexes>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the manifests define no RecordingBucket")]
    NoBuckets,
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up metrics: {0}")]
    Registry(#[from] prometheus::Error),
    #[error(
        "{failed} of {total} bucket(s) could not be reconciled fully: a scan failed, or objects were left unreconciled or undeleted (see the log)"
    )]
    PassesFailed { failed: usize, total: usize },
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops gallring");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn interval(d: IsoDuration) -> Duration {
    d.approx_std().max(Duration::from_secs(1))
}

fn settings(b: &CompiledBucket, opts: &RunOptions) -> S3Settings {
    store_settings(b, opts.max_attempts, opts.request_timeout)
}

/// How the standalone commands reach a bucket's store (default AWS credential chain).
pub fn store_settings(
    b: &CompiledBucket,
    max_attempts: u32,
    request_timeout: Duration,
) -> S3Settings {
    if b.spec.s3.credentials.is_some() {
        warn!(
            bucket = %b.key,
            "spec.s3.credentials.secretRef is resolved by the Kubernetes operator only; the standalone host uses the default AWS credential chain (environment, profile, web identity)"
        );
    }
    store_settings_quiet(b, max_attempts, request_timeout)
}

/// The same, for a host that resolves `secretRef` itself.
pub fn store_settings_quiet(
    b: &CompiledBucket,
    max_attempts: u32,
    request_timeout: Duration,
) -> S3Settings {
    let s3 = &b.spec.s3;
    S3Settings {
        bucket: s3.bucket.clone(),
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        force_path_style: s3.force_path_style,
        static_credentials: None,
        max_attempts,
        request_timeout,
    }
}

/// A one-paragraph account of a pass, for people reading the log.
pub fn describe(bucket: &str, r: &PassReport) -> String {
    let s = &r.summary;
    let lifecycle = match &r.lifecycle {
        LifecycleOutcome::InSync { rules } => format!("lifecycle in sync ({rules} gallring rules)"),
        LifecycleOutcome::Updated { rules } => {
            format!("lifecycle updated ({rules} gallring rules written, other rules kept)")
        }
        LifecycleOutcome::NotWritten { drift } => format!(
            "lifecycle not written (Observe){}",
            if *drift {
                ", differs from the policy"
            } else {
                ""
            }
        ),
        LifecycleOutcome::Untouched { reason } => format!("lifecycle left untouched: {reason}"),
        LifecycleOutcome::Refused { reason, .. } => format!("lifecycle NOT written: {reason}"),
    };
    let kinds: Vec<String> = s.by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let held: Vec<String> = s
        .held_by_reason
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    format!(
        "{bucket}: {} objects ({}); {} kept, {} held{}, {} due, {} overdue, {} unclassified; tagged {}, deleted {}{}; {lifecycle}; next deadline {}{}",
        s.objects,
        if kinds.is_empty() {
            "none classified".into()
        } else {
            kinds.join(", ")
        },
        s.keep,
        s.held,
        if held.is_empty() {
            String::new()
        } else {
            format!(" ({})", held.join(", "))
        },
        s.delete.saturating_sub(s.overdue),
        s.overdue,
        s.unclassified,
        r.tags_written,
        r.deleted,
        if r.delete_failures > 0 {
            format!(" ({} failed)", r.delete_failures)
        } else {
            String::new()
        },
        s.next_deadline.map_or_else(
            || "none".into(),
            |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        ),
        if s.by_controller.len() > 1 {
            let per: Vec<String> = s
                .by_controller
                .iter()
                .map(|(c, n)| {
                    let o = s.overdue_by_controller.get(c).copied().unwrap_or(0);
                    format!("{c} {n} ({o} overdue)")
                })
                .collect();
            format!("; by controller: {}", per.join(", "))
        } else {
            String::new()
        },
    )
}

/// One line for a data-subject request's outcome.
pub fn describe_request(r: &reconcile::requests::RequestReport) -> String {
    let counts = crate::retention::answer::counts_text;
    let mut line = format!(
        "{} {}: {}; selected present: {}",
        r.kind,
        r.request,
        r.phase.as_str(),
        counts(&r.matched)
    );
    if !r.deleted.is_empty() {
        line.push_str(&format!("; deleted: {}", counts(&r.deleted)));
    }
    if r.exceptions_total > 0 {
        line.push_str(&format!("; kept (Art. 17(3)): {}", r.exceptions_total));
    }
    if r.recorded_after > 0 {
        line.push_str(&format!(
            "; recorded after receivedAt (not reached): {}",
            r.recorded_after
        ));
    }
    if let Some(m) = &r.manifest {
        line.push_str(&format!("; manifest {m}"));
    }
    line.push_str(&format!("; due {}", r.due_by.format("%Y-%m-%d")));
    line
}

/// The bucket's holds as the manifests say now: read again right before each delete batch,
/// so a hold added while a pass runs stops its deletions. Manifests that no longer compile
/// keep the pass from deleting.
fn manifest_holds(manifests: &Path, bucket: &str) -> reconcile::HoldsSource {
    let manifests = manifests.to_path_buf();
    let bucket = bucket.to_string();
    reconcile::HoldsSource(Arc::new(move || {
        let result = Manifests::load(&manifests)
            .and_then(|m| m.compile())
            .map_err(|e| e.to_string())
            .and_then(|buckets| {
                buckets
                    .into_iter()
                    .find(|b| b.key == bucket)
                    .map(|b| b.holds)
                    .ok_or_else(|| {
                        format!("RecordingBucket {bucket} is no longer in the manifests")
                    })
            });
        Box::pin(std::future::ready(result))
    }))
}

/// Reconciles one bucket once and records metrics. Returns whether the pass ran.
async fn pass_once(
    b: &CompiledBucket,
    store: &S3Store,
    state_store: Option<&S3Store>,
    metrics: &Metrics,
    opts: &RunOptions,
    manifests: &Path,
) -> bool {
    let (namespace, name) = b.key.split_once('/').unwrap_or(("default", b.key.as_str()));
    metrics.touch_bucket(namespace, name);
    let started = Instant::now();
    // The host reads the clock; the engine only ever gets `now` as a parameter.
    let now = Utc::now();
    let key = b.key.clone();
    let progress = move |p: Progress| {
        p.log_protected(&key);
        if p.pages > 1 && p.pages.is_multiple_of(10) {
            info!(bucket = %key, listed = p.listed, pages = p.pages, "scanning");
        }
    };
    let mut pass = opts.pass.clone();
    pass.holds_now = Some(manifest_holds(manifests, &b.key));
    pass.state = b.state.clone();
    pass.index = reconcile::IndexConfig::for_bucket(&opts.indexes, &b.key, &b.rules);
    pass.requests = b.requests.clone();
    // Boxed: the pass is a large future, kept off the caller's stack.
    match Box::pin(reconcile::reconcile_in(
        store,
        state_store.unwrap_or(store),
        &b.policy,
        &b.rules,
        b.holds.clone(),
        now,
        pass,
        &progress,
    ))
    .await
    {
        Ok(report) => {
            let secs = started.elapsed().as_secs_f64();
            metrics.record_pass(namespace, name, &report, secs);
            info!(
                bucket = %b.key,
                objects = report.summary.objects,
                overdue = report.summary.overdue,
                deleted = report.deleted,
                seconds = secs,
                index_hits = report.index.hits,
                index_verified = report.index.verified,
                "{}",
                describe(&b.key, &report)
            );
            if let Some(e) = &report.index.first_error {
                warn!(bucket = %b.key, errors = report.index.errors, error = %e, "index unusable for part of the pass: those objects were read");
            }
            if let LifecycleOutcome::Updated { .. } = report.lifecycle {
                for r in &report.lifecycle_rules {
                    info!(bucket = %b.key, rule = %r.id, "lifecycle rule: {}", crate::retention::lifecycle::describe_rule(r));
                }
            }
            for d in &report.deleted_sample {
                info!(bucket = %b.key, "deleted {d}");
            }
            if report.deleted > report.deleted_sample.len() as u64 {
                info!(bucket = %b.key, "... and {} more deleted", report.deleted - report.deleted_sample.len() as u64);
            }
            for e in &report.sample_errors {
                warn!(bucket = %b.key, error = %e, "object not reconciled");
            }
            if let Some(blocked) = &report.deletes_blocked {
                warn!(bucket = %b.key, reason = blocked.reason, deferred = report.deletes_deferred, "no deletions in this pass: {}", blocked.message);
            }
            if report.unknown_objects > 0 {
                warn!(bucket = %b.key, unknown = report.unknown_objects, "objects whose state could not be read (neither decided nor counted as overdue)");
            }
            if report.deletes_skipped_changed > 0 {
                info!(bucket = %b.key, skipped = report.deletes_skipped_changed, "planned deletions skipped: the object changed after it was listed");
            }
            if !report.summary.recorded_at_issues.is_empty() {
                let counts: Vec<String> = report
                    .summary
                    .recorded_at_issues
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect();
                warn!(bucket = %b.key, "recordedAt not used as given: {} (the safe side was used; gallring plan shows each object)", counts.join(", "));
            }
            if report.withdrawals_journaled > 0 {
                info!(bucket = %b.key, withdrawals = report.withdrawals_journaled, "withdrawals read from tags journaled; they take effect from the next pass");
            }
            for r in report.requests.values() {
                info!(bucket = %b.key, request = %r.request, phase = r.phase.as_str(), due_by = %r.due_by.to_rfc3339(), "{}", describe_request(r));
                for e in &r.exceptions {
                    info!(bucket = %b.key, request = %r.request, "kept {}: {}", e.key, e.kept_by);
                }
                if r.reappeared_now > 0 {
                    warn!(bucket = %b.key, request = %r.request, objects = r.reappeared_now, "recordings erased earlier reappeared and were deleted again");
                }
            }
            let now_open: Vec<_> = b
                .requests
                .iter()
                .map(|q| {
                    let open = report
                        .requests
                        .get(&q.name)
                        .is_none_or(|r| r.phase.is_open());
                    (q.kind, open, q.received_at, q.due_by(b.policy.time_zone))
                })
                .collect();
            metrics.set_subject_requests(namespace, name, &now_open, now);
            for id in &report.dangerous_rules {
                warn!(bucket = %b.key, rule = %id, "a lifecycle rule gallring does not own can expire governed recordings regardless of their deadline or hold");
            }
            // A pass with object errors, failed or blocked deletions, or objects of unknown
            // state did not do everything it should: `--once` reports it with a non-zero exit
            // (fail closed, never silently).
            report.object_errors == 0
                && report.delete_failures == 0
                && report.unknown_objects == 0
                && report.deletes_blocked.is_none()
        }
        Err(e) => {
            metrics.record_failure(namespace, name, &e);
            error!(bucket = %b.key, category = e.category(), error = %e, "pass failed; deletions made before the failure are in the journal (gallring explain, gallring evidence)");
            false
        }
    }
}

pub async fn run(manifests: &Path, opts: RunOptions) -> Result<(), RunError> {
    let buckets = Manifests::load(manifests)?.compile()?;
    if buckets.is_empty() {
        return Err(RunError::NoBuckets);
    }
    let metrics = Arc::new(Metrics::new()?);
    let server = match opts.metrics_addr {
        Some(addr) => {
            let listener = crate::metrics::bind(addr)
                .await
                .map_err(|source| RunError::Metrics { addr, source })?;
            info!(%addr, "serving /metrics, /healthz, /readyz");
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                metrics.clone(),
            )))
        }
        None => None,
    };
    let mut stores = Vec::new();
    for b in &buckets {
        let store = S3Store::connect(settings(b, &opts), metrics.clone()).await;
        // The journal in another bucket: same endpoint, same credentials.
        let state = match &b.state.bucket {
            Some(name) => {
                let mut s = settings(b, &opts);
                s.bucket = name.clone();
                Some(S3Store::connect(s, metrics.clone()).await)
            }
            None => None,
        };
        stores.push((store, state));
    }
    let result = if opts.once {
        let mut failed = 0;
        for (b, (store, state)) in buckets.iter().zip(&stores) {
            if !pass_once(b, store, state.as_ref(), &metrics, &opts, manifests).await {
                failed += 1;
            }
        }
        metrics.set_ready();
        if failed > 0 {
            Err(RunError::PassesFailed {
                failed,
                total: buckets.len(),
            })
        } else {
            Ok(())
        }
    } else {
        let mut next_due: Vec<Instant> = vec![Instant::now(); buckets.len()];
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            let now = Instant::now();
            for (i, (b, (store, state))) in buckets.iter().zip(&stores).enumerate() {
                if next_due[i] <= now {
                    tokio::select! {
                        _ = pass_once(b, store, state.as_ref(), &metrics, &opts, manifests) => {}
                        _ = &mut shutdown => {
                            info!("shutting down (a scan was interrupted; every write so far is safe to resume)");
                            return finish(server);
                        }
                    }
                    next_due[i] = Instant::now() + interval(b.rules.scan_interval);
                }
            }
            metrics.set_ready();
            let wake = next_due.iter().min().copied().unwrap_or_else(Instant::now);
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = &mut shutdown => {
                    info!("shutting down");
                    break;
                }
            }
        }
        Ok(())
    };
    let _ = finish(server);
    result
}

fn finish(server: Option<tokio::task::JoinHandle<()>>) -> Result<(), RunError> {
    if let Some(s) = server {
        s.abort();
    }
    Ok(())
}
