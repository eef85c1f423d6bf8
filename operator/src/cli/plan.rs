//! `gallring plan`: the offline preview. Reads manifests and a listing, runs the engine, and
//! renders the result for people (table) or programs (JSON Lines).

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::input::{self, CompiledBucket, InputError};
use crate::retention::lifecycle::{self, LifecycleRule};
use crate::retention::{ObjectPlan, Summary, plan_bucket_with};

/// Everything `plan` shows.
#[derive(Debug)]
pub struct PlanReport {
    pub bucket: String,
    pub enforcement: &'static str,
    pub now: DateTime<Utc>,
    pub objects: Vec<ObjectPlan>,
    pub summary: Summary,
    pub lifecycle: Result<Vec<LifecycleRule>, lifecycle::LifecycleError>,
    /// The policy's time zone: the table shows local dates.
    pub time_zone: chrono_tz::Tz,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}")]
    Bucket(String),
}

/// Picks the bucket named by `--bucket`, or the only one.
pub fn select_bucket(
    buckets: Vec<CompiledBucket>,
    wanted: Option<&str>,
) -> Result<CompiledBucket, PlanError> {
    let names = || {
        buckets
            .iter()
            .map(|b| b.key.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(w) => {
            let found: Vec<&CompiledBucket> = buckets
                .iter()
                .filter(|b| b.key == w || b.key.split_once('/').is_some_and(|(_, n)| n == w))
                .collect();
            match found.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(PlanError::Bucket(format!(
                    "--bucket {w}: no such RecordingBucket; the manifests define: {}",
                    names()
                ))),
                _ => Err(PlanError::Bucket(format!(
                    "--bucket {w} is ambiguous; use namespace/name: {}",
                    names()
                ))),
            }
        }
        None => match buckets.len() {
            0 => Err(PlanError::Bucket(
                "the manifests define no RecordingBucket".into(),
            )),
            1 => Ok(buckets.into_iter().next().expect("length checked")),
            _ => Err(PlanError::Bucket(format!(
                "the manifests define several RecordingBuckets; pick one with --bucket: {}",
                names()
            ))),
        },
    }
}

pub fn run(
    manifests: &Path,
    objects: &Path,
    bucket: Option<&str>,
    now: DateTime<Utc>,
) -> Result<PlanReport, PlanError> {
    let compiled = input::Manifests::load(manifests)?.compile()?;
    let b = select_bucket(compiled, bucket)?;
    let mut listing = input::load_objects(objects)?;
    // Keys outside the bucket's prefix are not governed: the store listing never returns them.
    if let Some(prefix) = &b.rules.prefix {
        listing.retain(|o| o.key.starts_with(prefix.as_str()));
    }
    let plan = plan_bucket_with(
        &b.policy,
        &b.rules,
        b.holds.clone(),
        b.requests.clone(),
        &listing,
        now,
    );
    let versioned = listing.iter().any(|o| o.version_id.is_some());
    let mut objects = plan.objects;
    // People read by date: soonest deadline first; held and unclassified (no deadline) last.
    objects.sort_by(|a, b| {
        (a.deadline.is_none(), a.deadline, &a.key).cmp(&(b.deadline.is_none(), b.deadline, &b.key))
    });
    Ok(PlanReport {
        bucket: b.key.clone(),
        enforcement: b.rules.enforcement.as_str(),
        now,
        objects,
        summary: plan.summary,
        lifecycle: lifecycle::compile(&b.policy, &b.rules, versioned, 0),
        time_zone: b.policy.time_zone,
    })
}

fn day(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d").to_string())
}

/// A date on the policy's local calendar.
fn local_day(t: Option<DateTime<Utc>>, tz: chrono_tz::Tz) -> String {
    t.map_or_else(
        || "-".into(),
        |t| t.with_timezone(&tz).format("%Y-%m-%d").to_string(),
    )
}

pub fn summary_line(r: &PlanReport) -> String {
    let s = &r.summary;
    format!(
        "{} objects at {}: {} keep, {} held, {} delete ({} overdue), {} unclassified; next deadline {}",
        s.objects,
        r.now.format("%Y-%m-%dT%H:%M:%SZ"),
        s.keep,
        s.held,
        s.delete,
        s.overdue,
        s.unclassified,
        day(s.next_deadline)
    )
}

pub fn render_table(r: &PlanReport) -> String {
    let header = [
        "DEADLINE",
        "GONE BY",
        "DECISION",
        "KIND",
        "PURPOSES",
        "CONTROLLER",
        "FROM",
        "TAG",
        "KEY",
        "REASON",
    ];
    let tz = r.time_zone;
    let rows: Vec<[String; 10]> = r
        .objects
        .iter()
        .map(|o| {
            [
                local_day(o.deadline, tz),
                local_day(o.maximum, tz),
                if o.overdue {
                    "delete!".into()
                } else {
                    o.decision.as_str().into()
                },
                o.kind.clone().unwrap_or_else(|| "-".into()),
                if o.purposes.is_empty() {
                    "-".into()
                } else {
                    o.purposes.join(",")
                },
                if o.controllers.is_empty() {
                    "-".into()
                } else {
                    o.controllers.join(" + ")
                },
                match (&o.anchor, o.anchor_at) {
                    (Some(a), Some(t)) => format!("{a} {}", local_day(Some(t), tz)),
                    (Some(a), None) => a.clone(),
                    _ => "-".into(),
                },
                o.tag.clone().unwrap_or_else(|| "(no room)".into()),
                match &o.version_id {
                    Some(v) => format!("{}?versionId={v}", o.key),
                    None => o.key.clone(),
                },
                o.reason.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "RecordingBucket {} (enforcement {}; dates in {})",
        r.bucket, r.enforcement, r.time_zone
    );
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    let _ = writeln!(out);
    match &r.lifecycle {
        Ok(rules) if rules.is_empty() => {
            let _ = writeln!(out, "Lifecycle rules: none (enforcement {})", r.enforcement);
        }
        Ok(rules) => {
            let _ = writeln!(out, "Lifecycle rules the bucket should have:");
            for rule in rules {
                let _ = writeln!(out, "  {:<28} {}", rule.id, lifecycle::describe_rule(rule));
            }
        }
        Err(e) => {
            let _ = writeln!(out, "Lifecycle rules: cannot compile: {e}");
        }
    }
    let s = &r.summary;
    if s.operator_deletes + s.nobody_deletes > 0 {
        let _ = writeln!(
            out,
            "Lifecycle cannot express {} object(s) (deadline not a whole day class after creation, or no room for a tag): {}",
            s.operator_deletes + s.nobody_deletes,
            if s.nobody_deletes > 0 {
                "nobody deletes them in this enforcement mode"
            } else {
                "the operator deletes them itself"
            }
        );
    }
    if s.by_controller.len() > 1 {
        let per: Vec<String> = s
            .by_controller
            .iter()
            .map(|(c, n)| {
                let overdue = s.overdue_by_controller.get(c).copied().unwrap_or(0);
                format!("{c}: {n} ({overdue} overdue)")
            })
            .collect();
        let _ = writeln!(out, "By controller: {}", per.join("; "));
    }
    let _ = writeln!(out, "{}", summary_line(r));
    out
}

pub fn render_json(r: &PlanReport) -> String {
    let mut out = String::new();
    for o in &r.objects {
        match serde_json::to_string(o) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(e) => {
                // Serialising plain data cannot fail; say so rather than drop a line silently.
                let _ = writeln!(out, "{{\"key\":{:?},\"error\":{:?}}}", o.key, e.to_string());
            }
        }
    }
    out
}
