//! Prometheus metrics and the `/metrics`, `/healthz`, `/readyz` server.
//!
//! Naming follows Prometheus conventions: `gallring_` prefix, base units (seconds, bytes),
//! `_total` counters. Labels are small closed sets (namespace, bucket, state, kind, reason,
//! operation, outcome, category); an object key is never a label.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::reconcile::{PassError, PassReport};
use crate::store::{Operation, RequestObserver};

/// Every metric gallring exports.
pub struct Metrics {
    registry: Registry,
    objects: IntGaugeVec,
    bytes: IntGaugeVec,
    overdue_objects: IntGaugeVec,
    overdue_bytes: IntGaugeVec,
    oldest_overdue_age: GaugeVec,
    next_deadline: GaugeVec,
    held_objects: IntGaugeVec,
    objects_by_kind: IntGaugeVec,
    controller_objects: IntGaugeVec,
    controller_overdue: IntGaugeVec,
    deletions: IntCounterVec,
    gone: IntCounterVec,
    deletion_failures: IntCounterVec,
    tags_written: IntCounterVec,
    object_errors: IntCounterVec,
    s3_requests: IntCounterVec,
    s3_latency: HistogramVec,
    scan_duration: GaugeVec,
    last_success: GaugeVec,
    scan_failures: IntCounterVec,
    lifecycle_in_sync: IntGaugeVec,
    lifecycle_refused: IntGaugeVec,
    degraded: IntGaugeVec,
    holds_past_review: IntGaugeVec,
    requests_open: IntGaugeVec,
    requests_past_due: IntGaugeVec,
    requests_oldest_open: GaugeVec,
    untaggable: IntGaugeVec,
    scans: IntCounterVec,
    retry_backoff: GaugeVec,
    dangerous_rules: IntGaugeVec,
    unknown_objects: IntGaugeVec,
    index_objects: IntGaugeVec,
    deletions_blocked: IntGaugeVec,
    clock_skew: GaugeVec,
    last_modified_moved: IntGaugeVec,
    recorded_at_issues: IntGaugeVec,
    leader: prometheus::IntGauge,
    /// Kinds reported per bucket, so a kind that disappears is set to 0, not left stale.
    kinds_seen: std::sync::Mutex<
        std::collections::HashMap<(String, String), std::collections::BTreeSet<String>>,
    >,
    /// Controllers reported per bucket, for the same reason.
    controllers_seen: std::sync::Mutex<
        std::collections::HashMap<(String, String), std::collections::BTreeSet<String>>,
    >,
    ready: AtomicBool,
}

const BUCKET: &[&str] = &["namespace", "bucket"];
const REQUEST: &[&str] = &["namespace", "bucket", "type"];

/// Label values of `gallring_objects_gone_total{cause}` and `gallring_index_objects{source}`.
const GONE_CAUSES: [&str; 2] = ["lifecycle", "others"];
const INDEX_SOURCES: [&str; 4] = ["hit", "verified", "changed", "read_for_writes"];

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn fgauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let s3_latency = HistogramVec::new(
            HistogramOpts::new(
                "gallring_s3_request_duration_seconds",
                "Latency of S3 requests by operation.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["operation"],
        )?;
        r.register(Box::new(s3_latency.clone()))?;
        Ok(Metrics {
            objects: gauge(
                &r,
                "gallring_objects",
                "Object versions by retention state (retained, held, due, overdue, unclassified) after the last scan.",
                &["namespace", "bucket", "state"],
            )?,
            bytes: gauge(
                &r,
                "gallring_bytes",
                "Total bytes of object versions governed, after the last scan.",
                BUCKET,
            )?,
            overdue_objects: gauge(
                &r,
                "gallring_overdue_objects",
                "Object versions not held, past deadline plus grace, that still exist. Alert when above 0.",
                BUCKET,
            )?,
            overdue_bytes: gauge(
                &r,
                "gallring_overdue_bytes",
                "Bytes of overdue object versions.",
                BUCKET,
            )?,
            oldest_overdue_age: fgauge(
                &r,
                "gallring_oldest_overdue_age_seconds",
                "Seconds since the deadline of the oldest overdue object passed (0 when none).",
                BUCKET,
            )?,
            next_deadline: fgauge(
                &r,
                "gallring_next_deadline_timestamp_seconds",
                "Unix time of the earliest upcoming deadline (0 when none).",
                BUCKET,
            )?,
            held_objects: gauge(
                &r,
                "gallring_held_objects",
                "Object versions under at least one active hold, by hold reason.",
                &["namespace", "bucket", "reason"],
            )?,
            objects_by_kind: gauge(
                &r,
                "gallring_classified_objects",
                "Object versions by artifact kind.",
                &["namespace", "bucket", "kind"],
            )?,
            controller_objects: gauge(
                &r,
                "gallring_controller_objects",
                "Object versions by the data controller of their purposes (legal name; an object serving purposes of two controllers counts for both).",
                &["namespace", "bucket", "controller"],
            )?,
            controller_overdue: gauge(
                &r,
                "gallring_controller_overdue_objects",
                "Overdue object versions by the data controller of their purposes: whose promise is broken.",
                &["namespace", "bucket", "controller"],
            )?,
            deletions: counter(
                &r,
                "gallring_deletions_total",
                "Object versions deleted by the operator, by artifact kind.",
                &["namespace", "bucket", "kind"],
            )?,
            gone: counter(
                &r,
                "gallring_objects_gone_total",
                "Object versions gallring did not delete that a complete listing no longer showed (with the index), by cause: lifecycle (expiry tag, its time had come) or others (anything else: alert on it). Each is journaled.",
                &["namespace", "bucket", "cause"],
            )?,
            deletion_failures: counter(
                &r,
                "gallring_deletion_failures_total",
                "Object versions the operator tried and failed to delete.",
                BUCKET,
            )?,
            tags_written: counter(
                &r,
                "gallring_tags_written_total",
                "Tag sets written (retention tag changes).",
                BUCKET,
            )?,
            object_errors: counter(
                &r,
                "gallring_object_errors_total",
                "Per-object failures (tagging, legal hold, reading tags).",
                BUCKET,
            )?,
            s3_requests: counter(
                &r,
                "gallring_s3_requests_total",
                "S3 requests by operation and outcome.",
                &["operation", "outcome"],
            )?,
            s3_latency,
            scan_duration: fgauge(
                &r,
                "gallring_scan_duration_seconds",
                "Duration of the last completed scan.",
                BUCKET,
            )?,
            last_success: fgauge(
                &r,
                "gallring_last_successful_scan_timestamp_seconds",
                "Unix time the last scan completed.",
                BUCKET,
            )?,
            scan_failures: counter(
                &r,
                "gallring_scan_failures_total",
                "Scans that could not run, by error category.",
                &["namespace", "bucket", "category"],
            )?,
            lifecycle_in_sync: gauge(
                &r,
                "gallring_lifecycle_in_sync",
                "1 when the bucket's operator-owned lifecycle rules match the policy.",
                BUCKET,
            )?,
            lifecycle_refused: gauge(
                &r,
                "gallring_lifecycle_write_refused",
                "1 while gallring refuses to write the bucket's lifecycle configuration because the store would lose part of the named rule(s), which gallring does not own.",
                &["namespace", "bucket", "rule"],
            )?,
            degraded: gauge(
                &r,
                "gallring_bucket_degraded",
                "1 when the last scan failed.",
                BUCKET,
            )?,
            requests_open: gauge(
                &r,
                "gallring_subject_requests_open",
                "Data-subject requests not yet answered (phase Pending, InProgress or Failed).",
                REQUEST,
            )?,
            requests_past_due: gauge(
                &r,
                "gallring_subject_requests_past_due",
                "Open data-subject requests past their due date (receivedAt + one month, GDPR Art. 12(3)).",
                REQUEST,
            )?,
            requests_oldest_open: fgauge(
                &r,
                "gallring_subject_request_oldest_open_age_seconds",
                "Age since receivedAt of the oldest open data-subject request (0 when none is open).",
                REQUEST,
            )?,
            holds_past_review: gauge(
                &r,
                "gallring_holds_past_review",
                "Active holds on the bucket whose reviewBy time has passed.",
                BUCKET,
            )?,
            untaggable: gauge(
                &r,
                "gallring_untaggable_objects",
                "Objects with no room for the retention tag (10 tags already): the operator deletes them itself.",
                BUCKET,
            )?,
            scans: counter(
                &r,
                "gallring_scans_total",
                "Reconcile passes started on the bucket, by outcome (ok, failed, fenced). With nothing changing, this grows once per scanInterval.",
                &["namespace", "bucket", "outcome"],
            )?,
            dangerous_rules: gauge(
                &r,
                "gallring_dangerous_lifecycle_rules",
                "Lifecycle rules gallring does not own that can expire governed recordings (or its journal) by S3's own clock, whatever their deadline or hold. Alert when above 0.",
                BUCKET,
            )?,
            unknown_objects: gauge(
                &r,
                "gallring_unknown_objects",
                "Objects whose state could not be read in the last pass (tags or metadata unreadable): neither decided nor counted as overdue; some may be. Alert when above 0 for long.",
                BUCKET,
            )?,
            index_objects: gauge(
                &r,
                "gallring_index_objects",
                "Objects of the last pass by how they were decided: hit (from the local index, no request), verified (read again: verifyInterval was due), changed (new or changed in the listing), read_for_writes (read because the decision needed a write, a hold or a deletion).",
                &["namespace", "bucket", "source"],
            )?,
            deletions_blocked: gauge(
                &r,
                "gallring_deletions_blocked",
                "1 when the last pass made no operator deletions on purpose (clock skew, holds changed or unreadable, holds that could not be linked); the reason is in the Degraded condition.",
                BUCKET,
            )?,
            clock_skew: fgauge(
                &r,
                "gallring_store_clock_skew_seconds",
                "Local clock minus the object store's (from response Date headers) at the last pass.",
                BUCKET,
            )?,
            last_modified_moved: gauge(
                &r,
                "gallring_last_modified_moved_objects",
                "Objects whose LastModified moved after gallring first saw them with the same content (a store that moves it on tag writes delays its own lifecycle expiry); deadlines count from the first.",
                BUCKET,
            )?,
            recorded_at_issues: gauge(
                &r,
                "gallring_recorded_at_issues",
                "Objects whose recordedAt (tag or metadata) was not used as given, by issue: future (after the upload; the upload time is used), too_old (before upload minus maxAgeAtUpload; the bound is used), unparsable, missing (the upload time is used).",
                &["namespace", "bucket", "issue"],
            )?,
            retry_backoff: fgauge(
                &r,
                "gallring_retry_backoff_seconds",
                "Seconds until a failing bucket is retried (exponential backoff); 0 when its last reconcile succeeded.",
                BUCKET,
            )?,
            leader: {
                let g = prometheus::IntGauge::new(
                    "gallring_leader",
                    "1 while this replica holds the leader Lease and may write to the stores.",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            kinds_seen: std::sync::Mutex::default(),
            controllers_seen: std::sync::Mutex::default(),
            ready: AtomicBool::new(false),
            registry: r,
        })
    }

    /// Records a completed pass. Gauges describe the bucket after the pass's deletions.
    pub fn record_pass(&self, namespace: &str, bucket: &str, report: &PassReport, seconds: f64) {
        let b = [namespace, bucket];
        let s = &report.summary;
        let due_not_overdue = s.delete.saturating_sub(s.overdue);
        for (state, n) in [
            ("retained", s.keep),
            ("held", s.held),
            ("due", due_not_overdue),
            ("overdue", s.overdue),
            ("unclassified", s.unclassified),
            ("unknown", report.unknown_objects),
        ] {
            self.objects
                .with_label_values(&[namespace, bucket, state])
                .set(clamp(n));
        }
        self.bytes.with_label_values(&b).set(clamp(s.bytes));
        self.untaggable
            .with_label_values(&b)
            .set(clamp(s.untaggable));
        self.overdue_objects
            .with_label_values(&b)
            .set(clamp(s.overdue));
        self.overdue_bytes
            .with_label_values(&b)
            .set(clamp(s.overdue_bytes));
        let age = s
            .oldest_overdue_age(report.now)
            .map_or(0.0, |d| d.num_milliseconds() as f64 / 1000.0);
        self.oldest_overdue_age.with_label_values(&b).set(age);
        self.next_deadline
            .with_label_values(&b)
            .set(s.next_deadline.map_or(0.0, timestamp));
        for reason in crate::retention::HoldReason::ALL {
            let n = s.held_by_reason.get(reason.as_str()).copied().unwrap_or(0);
            self.held_objects
                .with_label_values(&[namespace, bucket, reason.as_str()])
                .set(clamp(n));
        }
        if let Ok(mut seen) = self.kinds_seen.lock() {
            let kinds = seen
                .entry((namespace.to_string(), bucket.to_string()))
                .or_default();
            kinds.extend(s.by_kind.keys().cloned());
            for kind in kinds.iter() {
                let n = s.by_kind.get(kind).copied().unwrap_or(0);
                self.objects_by_kind
                    .with_label_values(&[namespace, bucket, kind])
                    .set(clamp(n));
            }
        }
        if let Ok(mut seen) = self.controllers_seen.lock() {
            let controllers = seen
                .entry((namespace.to_string(), bucket.to_string()))
                .or_default();
            controllers.extend(s.by_controller.keys().cloned());
            for c in controllers.iter() {
                let labels = [namespace, bucket, c.as_str()];
                let n = s.by_controller.get(c).copied().unwrap_or(0);
                self.controller_objects
                    .with_label_values(&labels)
                    .set(clamp(n));
                let o = s.overdue_by_controller.get(c).copied().unwrap_or(0);
                self.controller_overdue
                    .with_label_values(&labels)
                    .set(clamp(o));
            }
        }
        for (kind, n) in &report.deleted_by_kind {
            self.deletions
                .with_label_values(&[namespace, bucket, kind])
                .inc_by(*n);
        }
        for (cause, n) in GONE_CAUSES
            .into_iter()
            .zip([report.gone_by_lifecycle, report.gone_by_others])
        {
            self.gone
                .with_label_values(&[namespace, bucket, cause])
                .inc_by(n);
        }
        self.deletion_failures
            .with_label_values(&b)
            .inc_by(report.delete_failures);
        self.tags_written
            .with_label_values(&b)
            .inc_by(report.tags_written);
        self.object_errors
            .with_label_values(&b)
            .inc_by(report.object_errors);
        self.scan_duration.with_label_values(&b).set(seconds);
        self.last_success
            .with_label_values(&b)
            .set(timestamp(report.now));
        self.lifecycle_in_sync
            .with_label_values(&b)
            .set(i64::from(report.lifecycle.in_sync()));
        // Foreign rules that can expire governed objects by S3's own clock (the critical
        // GallringDangerousLifecycleRule alert reads this).
        self.dangerous_rules
            .with_label_values(&b)
            .set(clamp(report.dangerous_rules.len() as u64));
        // Only the rules refused in this pass stay at 1.
        for labels in self.label_sets("gallring_lifecycle_write_refused") {
            if labels.get("namespace").map(String::as_str) == Some(namespace)
                && labels.get("bucket").map(String::as_str) == Some(bucket)
                && let Some(rule) = labels.get("rule")
            {
                let _ = self
                    .lifecycle_refused
                    .remove_label_values(&[namespace, bucket, rule]);
            }
        }
        if let crate::reconcile::LifecycleOutcome::Refused { rules, .. } = &report.lifecycle {
            for rule in rules.split(',').filter(|r| !r.is_empty()) {
                self.lifecycle_refused
                    .with_label_values(&[namespace, bucket, rule])
                    .set(1);
            }
        }
        self.degraded.with_label_values(&b).set(0);
        self.unknown_objects
            .with_label_values(&b)
            .set(clamp(report.unknown_objects));
        self.deletions_blocked
            .with_label_values(&b)
            .set(i64::from(report.deletes_blocked.is_some()));
        let ix = &report.index;
        for (source, n) in
            INDEX_SOURCES
                .into_iter()
                .zip([ix.hits, ix.verified, ix.changed, ix.read_for_writes])
        {
            self.index_objects
                .with_label_values(&[namespace, bucket, source])
                .set(clamp(n));
        }
        self.clock_skew
            .with_label_values(&b)
            .set(report.clock_skew_seconds.map_or(0.0, |k| k as f64));
        self.last_modified_moved
            .with_label_values(&b)
            .set(clamp(report.last_modified_moved));
        for issue in crate::retention::RecordedAtIssue::ALL {
            let n = s
                .recorded_at_issues
                .get(issue.as_str())
                .copied()
                .unwrap_or(0);
            self.recorded_at_issues
                .with_label_values(&[namespace, bucket, issue.as_str()])
                .set(clamp(n));
        }
        self.scans
            .with_label_values(&[namespace, bucket, "ok"])
            .inc();
        self.retry_backoff.with_label_values(&b).set(0.0);
    }

    /// The backoff before a failing bucket's next attempt.
    pub fn set_retry_backoff(&self, namespace: &str, bucket: &str, seconds: f64) {
        self.retry_backoff
            .with_label_values(&[namespace, bucket])
            .set(seconds);
    }

    /// Whether this replica leads (and so may write).
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Creates the bucket's counters at 0 before its first pass, so that `increase()` in alerts
    /// also sees failures of the very first scan after a restart.
    pub fn touch_bucket(&self, namespace: &str, bucket: &str) {
        let b = [namespace, bucket];
        self.deletion_failures.with_label_values(&b).inc_by(0);
        self.tags_written.with_label_values(&b).inc_by(0);
        self.object_errors.with_label_values(&b).inc_by(0);
    }

    /// Buckets with series in the registry: the ones `record_pass`, `record_failure`,
    /// `record_invalid` or `touch_bucket` have seen.
    pub fn known_buckets(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .kinds_seen
            .lock()
            .map(|k| k.keys().cloned().collect())
            .unwrap_or_default();
        for family in [
            "gallring_bucket_degraded",
            "gallring_deletion_failures_total",
        ] {
            for labels in self.label_sets(family) {
                if let (Some(ns), Some(b)) = (labels.get("namespace"), labels.get("bucket")) {
                    out.push((ns.clone(), b.clone()));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Removes every series of a deleted bucket, so no alert fires for it (a stale scan
    /// timestamp would otherwise page forever).
    pub fn forget_bucket(&self, namespace: &str, bucket: &str) {
        let b = [namespace, bucket];
        let _ = self.bytes.remove_label_values(&b);
        let _ = self.overdue_objects.remove_label_values(&b);
        let _ = self.overdue_bytes.remove_label_values(&b);
        let _ = self.oldest_overdue_age.remove_label_values(&b);
        let _ = self.next_deadline.remove_label_values(&b);
        let _ = self.deletion_failures.remove_label_values(&b);
        let _ = self.tags_written.remove_label_values(&b);
        let _ = self.object_errors.remove_label_values(&b);
        let _ = self.scan_duration.remove_label_values(&b);
        let _ = self.last_success.remove_label_values(&b);
        let _ = self.lifecycle_in_sync.remove_label_values(&b);
        for labels in self.label_sets("gallring_lifecycle_write_refused") {
            if labels.get("namespace").map(String::as_str) == Some(namespace)
                && labels.get("bucket").map(String::as_str) == Some(bucket)
                && let Some(rule) = labels.get("rule")
            {
                let _ = self
                    .lifecycle_refused
                    .remove_label_values(&[namespace, bucket, rule]);
            }
        }
        let _ = self.degraded.remove_label_values(&b);
        let _ = self.holds_past_review.remove_label_values(&b);
        for t in crate::retention::RequestType::ALL {
            let labels = [namespace, bucket, t.as_str()];
            let _ = self.requests_open.remove_label_values(&labels);
            let _ = self.requests_past_due.remove_label_values(&labels);
            let _ = self.requests_oldest_open.remove_label_values(&labels);
        }
        let _ = self.untaggable.remove_label_values(&b);
        let _ = self.retry_backoff.remove_label_values(&b);
        let _ = self.dangerous_rules.remove_label_values(&b);
        let _ = self.unknown_objects.remove_label_values(&b);
        let _ = self.deletions_blocked.remove_label_values(&b);
        for cause in GONE_CAUSES {
            let _ = self.gone.remove_label_values(&[namespace, bucket, cause]);
        }
        for source in INDEX_SOURCES {
            let _ = self
                .index_objects
                .remove_label_values(&[namespace, bucket, source]);
        }
        let _ = self.clock_skew.remove_label_values(&b);
        let _ = self.last_modified_moved.remove_label_values(&b);
        for issue in crate::retention::RecordedAtIssue::ALL {
            let _ =
                self.recorded_at_issues
                    .remove_label_values(&[namespace, bucket, issue.as_str()]);
        }
        for outcome in ["ok", "failed", "fenced"] {
            let _ = self
                .scans
                .remove_label_values(&[namespace, bucket, outcome]);
        }
        for state in [
            "retained",
            "held",
            "due",
            "overdue",
            "unclassified",
            "unknown",
        ] {
            let _ = self
                .objects
                .remove_label_values(&[namespace, bucket, state]);
        }
        for reason in crate::retention::HoldReason::ALL {
            let _ = self
                .held_objects
                .remove_label_values(&[namespace, bucket, reason.as_str()]);
        }
        let kinds = self
            .kinds_seen
            .lock()
            .ok()
            .and_then(|mut k| k.remove(&(namespace.to_string(), bucket.to_string())))
            .unwrap_or_default();
        let controllers = self
            .controllers_seen
            .lock()
            .ok()
            .and_then(|mut k| k.remove(&(namespace.to_string(), bucket.to_string())))
            .unwrap_or_default();
        for c in controllers {
            let _ = self
                .controller_objects
                .remove_label_values(&[namespace, bucket, &c]);
            let _ = self
                .controller_overdue
                .remove_label_values(&[namespace, bucket, &c]);
        }
        for kind in kinds {
            let _ = self
                .objects_by_kind
                .remove_label_values(&[namespace, bucket, &kind]);
            let _ = self
                .deletions
                .remove_label_values(&[namespace, bucket, &kind]);
        }
        for labels in self.label_sets("gallring_scan_failures_total") {
            let is_this = labels.get("namespace").map(String::as_str) == Some(namespace)
                && labels.get("bucket").map(String::as_str) == Some(bucket);
            if is_this && let Some(c) = labels.get("category") {
                let _ = self
                    .scan_failures
                    .remove_label_values(&[namespace, bucket, c]);
            }
        }
    }

    /// The label sets of every series of one metric family.
    fn label_sets(&self, family: &str) -> Vec<std::collections::BTreeMap<String, String>> {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == family)
            .flat_map(|f| f.get_metric())
            .map(|m| {
                m.get_label()
                    .iter()
                    .map(|l| (l.name().to_string(), l.value().to_string()))
                    .collect()
            })
            .collect()
    }

    /// Marks a bucket whose spec cannot be reconciled (invalid spec, missing policy or Secret).
    pub fn record_invalid(&self, namespace: &str, bucket: &str) {
        self.degraded.with_label_values(&[namespace, bucket]).set(1);
    }

    /// Records a pass that could not run. Object gauges keep their last known values.
    pub fn record_failure(&self, namespace: &str, bucket: &str, error: &PassError) {
        let outcome = match error {
            PassError::Fenced => "fenced",
            PassError::Store(_) | PassError::Journal(_) => "failed",
        };
        self.scans
            .with_label_values(&[namespace, bucket, outcome])
            .inc();
        self.scan_failures
            .with_label_values(&[namespace, bucket, error.category()])
            .inc();
        self.degraded.with_label_values(&[namespace, bucket]).set(1);
    }

    /// The bucket's data-subject requests as (type, open, received at, due by): every type is
    /// set, so a type with nothing open reads 0 rather than a stale value.
    pub fn set_subject_requests(
        &self,
        namespace: &str,
        bucket: &str,
        requests: &[(
            crate::retention::RequestType,
            bool,
            DateTime<Utc>,
            DateTime<Utc>,
        )],
        now: DateTime<Utc>,
    ) {
        for t in crate::retention::RequestType::ALL {
            let open: Vec<_> = requests
                .iter()
                .filter(|(k, open, _, _)| *k == t && *open)
                .collect();
            let labels = [namespace, bucket, t.as_str()];
            let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            self.requests_open
                .with_label_values(&labels)
                .set(count(open.len()));
            self.requests_past_due.with_label_values(&labels).set(count(
                open.iter().filter(|(_, _, _, due)| *due <= now).count(),
            ));
            let oldest = open
                .iter()
                .map(|(_, _, received, _)| (now - *received).num_seconds().max(0))
                .max()
                .unwrap_or(0);
            self.requests_oldest_open
                .with_label_values(&labels)
                .set(oldest as f64);
        }
    }

    pub fn set_holds_past_review(&self, namespace: &str, bucket: &str, n: usize) {
        self.holds_past_review
            .with_label_values(&[namespace, bucket])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            return format!("# encoding failed: {e}\n");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// A gauge value for tests and the demo: `gallring_overdue_objects{namespace,bucket}`.
    pub fn overdue(&self, namespace: &str, bucket: &str) -> i64 {
        self.overdue_objects
            .with_label_values(&[namespace, bucket])
            .get()
    }
}

impl RequestObserver for Metrics {
    fn observe(&self, operation: Operation, outcome: &'static str, seconds: f64) {
        self.s3_requests
            .with_label_values(&[operation.as_str(), outcome])
            .inc();
        self.s3_latency
            .with_label_values(&[operation.as_str()])
            .observe(seconds);
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn timestamp(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn route(metrics: &Metrics, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.render(),
        ),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if metrics.is_ready() => respond(StatusCode::OK, "text/plain", "ready\n".into()),
        "/readyz" => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: first scan not finished\n".into(),
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Binds the metrics server; serve it with [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves `/metrics`, `/healthz` and `/readyz` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics server: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let resp = route(&metrics, &req);
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "metrics server: connection error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{LifecycleOutcome, PassReport};
    use crate::retention::Summary;

    fn report(by_kind: &[(&str, u64)], overdue: u64) -> PassReport {
        PassReport {
            journal_public_key: None,
            now: chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid"),
            decided_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid"),
            versioned: false,
            object_lock: false,
            summary: Summary {
                objects: by_kind.iter().map(|(_, n)| n).sum::<u64>(),
                delete: overdue,
                overdue,
                by_kind: by_kind.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
                ..Default::default()
            },
            lifecycle: LifecycleOutcome::InSync { rules: 1 },
            lifecycle_rules: vec![],
            tags_written: 0,
            legal_holds_set: 0,
            legal_holds_cleared: 0,
            deleted: 0,
            deleted_bytes: 0,
            delete_failures: 0,
            object_errors: 0,
            sample_errors: vec![],
            deleted_by_kind: Default::default(),
            deleted_by_controller: Default::default(),
            deleted_sample: vec![],
            journal_facts: 0,
            journal_settled: false,
            dangerous_rules: Vec::new(),
            unknown_objects: 0,
            unknown_bytes: 0,
            deletes_blocked: None,
            deletes_deferred: 0,
            deletes_skipped_changed: 0,
            clock_skew_seconds: None,
            last_modified_moved: 0,
            withdrawals_journaled: 0,
            index: Default::default(),
            protected_ahead: 0,
            gone_by_lifecycle: 0,
            gone_by_others: 0,
            requests: Default::default(),
            request_tallies: Default::default(),
        }
    }

    #[test]
    fn gauges_describe_the_last_pass_and_a_vanished_kind_drops_to_zero() {
        let m = Metrics::new().expect("registry");
        m.record_pass(
            "ns",
            "b",
            &report(&[("audio", 3), ("maskedTranscript", 4)], 2),
            1.0,
        );
        assert_eq!(m.overdue("ns", "b"), 2);
        m.record_pass("ns", "b", &report(&[("audio", 3)], 0), 1.0);
        assert_eq!(m.overdue("ns", "b"), 0);
        let text = m.render();
        assert!(text.contains(r#"gallring_classified_objects{bucket="b",kind="maskedTranscript",namespace="ns"} 0"#), "{text}");
        assert!(
            text.contains(
                r#"gallring_classified_objects{bucket="b",kind="audio",namespace="ns"} 3"#
            )
        );
        assert!(text.contains("gallring_lifecycle_in_sync"));
        assert_eq!(m.known_buckets(), vec![("ns".to_string(), "b".to_string())]);
        m.forget_bucket("ns", "b");
        let text = m.render();
        assert!(!text.contains(r#"bucket="b""#), "{text}");
        assert!(m.known_buckets().is_empty());
    }

    #[test]
    fn controllers_are_named_with_their_objects_and_overdue_and_a_vanished_one_drops_to_zero() {
        let m = Metrics::new().expect("registry");
        let mut r = report(&[("audio", 5)], 1);
        r.summary.by_controller = [
            ("Länsförsäkringar AB".to_string(), 2),
            ("Länsförsäkringar Stockholm".to_string(), 3),
        ]
        .into();
        r.summary.overdue_by_controller = [("Länsförsäkringar Stockholm".to_string(), 1)].into();
        m.record_pass("ns", "b", &r, 1.0);
        let text = m.render();
        assert!(
            text.contains(r#"gallring_controller_objects{bucket="b",controller="Länsförsäkringar AB",namespace="ns"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"gallring_controller_overdue_objects{bucket="b",controller="Länsförsäkringar Stockholm",namespace="ns"} 1"#),
            "{text}"
        );
        let mut later = report(&[("audio", 3)], 0);
        later.summary.by_controller = [("Länsförsäkringar Stockholm".to_string(), 3)].into();
        m.record_pass("ns", "b", &later, 1.0);
        let text = m.render();
        assert!(
            text.contains(r#"gallring_controller_objects{bucket="b",controller="Länsförsäkringar AB",namespace="ns"} 0"#),
            "{text}"
        );
        m.forget_bucket("ns", "b");
        assert!(!m.render().contains("gallring_controller_objects{"));
    }

    #[test]
    fn a_refused_lifecycle_write_names_the_rule_until_a_pass_writes_again() {
        let m = Metrics::new().expect("registry");
        let mut r = report(&[("audio", 1)], 0);
        r.lifecycle = LifecycleOutcome::Refused {
            rules: "owner-glacier".into(),
            reason: "not written".into(),
        };
        m.record_pass("ns", "b", &r, 1.0);
        let text = m.render();
        assert!(
            text.contains(r#"gallring_lifecycle_write_refused{bucket="b",namespace="ns",rule="owner-glacier"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"gallring_lifecycle_in_sync{bucket="b",namespace="ns"} 0"#));
        m.record_pass("ns", "b", &report(&[("audio", 1)], 0), 1.0);
        assert!(!m.render().contains("gallring_lifecycle_write_refused{"));
    }

    #[test]
    fn dangerous_foreign_rules_are_counted_for_their_alert() {
        let m = Metrics::new().expect("registry");
        let mut r = report(&[("audio", 1)], 0);
        r.dangerous_rules = vec!["owner-expire-everything".into()];
        m.record_pass("ns", "b", &r, 1.0);
        assert!(
            m.render()
                .contains(r#"gallring_dangerous_lifecycle_rules{bucket="b",namespace="ns"} 1"#),
            "{}",
            m.render()
        );
        m.record_pass("ns", "b", &report(&[("audio", 1)], 0), 1.0);
        assert!(
            m.render()
                .contains(r#"gallring_dangerous_lifecycle_rules{bucket="b",namespace="ns"} 0"#)
        );
    }
}
