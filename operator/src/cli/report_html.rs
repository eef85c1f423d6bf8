//! `gallring report` (issue 11 item 3): a report a person reads. One self-contained HTML page
//! per bucket and period: what is kept now and why, deletions per day and by whom, upcoming
//! deletions, holds by reason and age, and what is overdue, as inline SVG bar charts with the
//! tables under them.
//!
//! The page must open anywhere an auditor takes it (a laptop without network, an archive), so
//! it references nothing: no scripts, fonts, images or style sheets, only inline CSS and SVG,
//! and a Content-Security-Policy that forbids the browser to fetch anything should a future
//! edit add a reference by mistake. Every string from the store or the journal (keys, hold
//! reasons, case names, rules) is escaped, since a key is whatever the uploader chose.
//!
//! The facts come from [`evidence::collect`] (dispositions, holds applied and released,
//! overdue objects, the journal's head); the picture of the bucket now is one read-only
//! listing planned as a pass would plan it ([`crate::cli::evidence::plan_now`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeDelta, Utc};

use crate::cli::evidence::{self, Evidence};
use crate::cli::explain::ExplainError;
use crate::input::CompiledBucket;
use crate::retention::{Decision, IsoDuration, ObjectPlan, Summary};
use crate::state::journal::{Fact, records};
use crate::store::ObjectStore;

/// A hold in effect now, as the journal has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveHold {
    pub name: String,
    pub reason: String,
    pub case: String,
    /// When the journal first recorded it applied (since then uninterrupted by a release).
    pub since: DateTime<Utc>,
    /// Objects it holds now (from the plan).
    pub objects: u64,
}

/// Everything the page shows.
pub struct Report {
    pub evidence: Evidence,
    /// Every object version in the bucket now, planned read-only.
    pub plans: Vec<ObjectPlan>,
    pub summary: Summary,
    pub active_holds: Vec<ActiveHold>,
    /// The bucket's grace after a deadline before an object counts as overdue.
    pub grace: IsoDuration,
    pub now: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Explain(#[from] ExplainError),
    #[error("--from must be before --to")]
    Period,
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Holds in effect with the time the journal first recorded each applied. A hold re-applied
/// (its selector edited) keeps its first time; a release ends it, and a later application
/// starts a new age.
async fn active_holds<J: ObjectStore>(
    state: &J,
    b: &CompiledBucket,
    summary: &Summary,
) -> Result<Vec<ActiveHold>, ExplainError> {
    let mut since: BTreeMap<String, ActiveHold> = BTreeMap::new();
    for r in records(state, &b.state.prefix).await? {
        match r.fact {
            Fact::HoldApplied(h) => {
                let e = since.entry(h.hold.clone()).or_insert_with(|| ActiveHold {
                    name: h.hold.clone(),
                    reason: String::new(),
                    case: String::new(),
                    since: r.at,
                    objects: 0,
                });
                e.reason = h.reason;
                e.case = h.case;
            }
            Fact::HoldReleased { hold, .. } => {
                since.remove(&hold.hold);
            }
            _ => {}
        }
    }
    Ok(since
        .into_values()
        .map(|mut h| {
            h.objects = summary.held_by_hold.get(&h.name).copied().unwrap_or(0);
            h
        })
        .collect())
}

/// Reads the journal (through `evidence::collect`) and the bucket now.
pub async fn collect<S: ObjectStore, J: ObjectStore>(
    store: &S,
    state: &J,
    b: &CompiledBucket,
    (from, to): (Option<DateTime<Utc>>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> Result<Report, ExplainError> {
    let evidence = evidence::collect(store, state, b, from, to, now).await?;
    let plans = crate::cli::evidence::plan_now(store, state, b, now).await?;
    let mut summary = Summary::default();
    for p in &plans {
        summary.add(p);
    }
    let active_holds = active_holds(state, b, &summary).await?;
    Ok(Report {
        evidence,
        plans,
        summary,
        active_holds,
        grace: b.rules.grace,
        now,
    })
}

/// From manifests (default AWS credential chain) or the cluster (the RecordingBucket and its
/// Secret), collects the report and writes the page to `out`.
pub async fn run(
    manifests: Option<&Path>,
    bucket: Option<&str>,
    namespace: Option<&str>,
    period: (Option<DateTime<Utc>>, DateTime<Utc>),
    now: DateTime<Utc>,
    out: &Path,
) -> Result<String, ReportError> {
    if period.0.is_some_and(|f| f >= period.1) {
        return Err(ReportError::Period);
    }
    let (b, settings, _) = crate::cli::explain::resolve(manifests, bucket, namespace).await?;
    let (store, state) = crate::cli::explain::connect(settings, &b).await?;
    let report = collect(&store, state.as_ref().unwrap_or(&store), &b, period, now).await?;
    let html = render(&report);
    std::fs::write(out, &html).map_err(|source| ReportError::Write {
        path: out.display().to_string(),
        source,
    })?;
    let s = &report.summary;
    Ok(format!(
        "report for {} from {} to {}: {} objects ({}) now, {} held, {} overdue; {} dispositions, {} holds in effect\nwrote {} ({} bytes)\n",
        report.evidence.summary.bucket,
        report
            .evidence
            .summary
            .from
            .map_or_else(|| "the first record".into(), ts),
        ts(report.evidence.summary.to),
        s.objects,
        bytes(s.bytes),
        s.held,
        s.overdue,
        report.evidence.dispositions.len(),
        report.active_holds.len(),
        out.display(),
        html.len()
    ))
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// Escapes text for HTML and SVG, in element content and in quoted attributes alike.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (a key may carry them) would make the document invalid.
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "&#xFFFD;");
            }
            c => out.push(c),
        }
    }
    out
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> String {
    t.map(ts).unwrap_or_else(|| "—".into())
}

/// Bytes in binary units, for people.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

fn count(n: u64) -> String {
    n.to_string()
}

/// One bar series: its name (legend, tooltips) and colour.
struct Series {
    name: &'static str,
    color: &'static str,
}

const ONE: &[Series] = &[Series {
    name: "objects",
    color: "#2b6cb0",
}];
const BYTES: &[Series] = &[Series {
    name: "bytes",
    color: "#6b46c1",
}];
const WHO: &[Series] = &[
    Series {
        name: "gallring",
        color: "#2b6cb0",
    },
    Series {
        name: "lifecycle",
        color: "#38a169",
    },
    Series {
        name: "others",
        color: "#dd6b20",
    },
];

/// A bar: its label and one value per series (stacked).
struct Bar {
    label: String,
    /// Longer text for the tooltip (e.g. the full date); the label when empty.
    detail: String,
    values: Vec<u64>,
}

impl Bar {
    fn new(label: impl Into<String>, values: Vec<u64>) -> Self {
        Bar {
            label: label.into(),
            detail: String::new(),
            values,
        }
    }
}

fn legend(series: &[Series]) -> String {
    if series.len() < 2 {
        return String::new();
    }
    let mut out = String::from("<p class=\"legend\">");
    for s in series {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{}</span>",
            s.color,
            esc(s.name)
        );
    }
    out.push_str("</p>");
    out
}

fn tooltip(b: &Bar, series: &[Series], fmt: fn(u64) -> String) -> String {
    let head = if b.detail.is_empty() {
        &b.label
    } else {
        &b.detail
    };
    let parts: Vec<String> = series
        .iter()
        .zip(&b.values)
        .map(|(s, v)| format!("{} {}", fmt(*v), s.name))
        .collect();
    esc(&format!("{head}: {}", parts.join(", ")))
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Horizontal stacked bars: one row per category (kind, purpose, reason, hold).
fn hbar(id: &str, title: &str, bars: &[Bar], series: &[Series], fmt: fn(u64) -> String) -> String {
    const LABEL_W: usize = 230;
    const BAR_W: f64 = 420.0;
    const ROW: usize = 24;
    let max = bars
        .iter()
        .map(|b| b.values.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let height = ROW * bars.len().max(1) + 8;
    let width = LABEL_W + BAR_W as usize + 110;
    let mut out = String::new();
    let _ = write!(
        out,
        "<figure id=\"{id}\"><figcaption>{}</figcaption>{}<svg class=\"chart hbar\" role=\"img\" aria-label=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">",
        esc(title),
        legend(series),
        esc(title)
    );
    if bars.is_empty() {
        let _ = write!(
            out,
            "<text x=\"4\" y=\"18\" class=\"none\">none</text></svg></figure>"
        );
        return out;
    }
    for (i, b) in bars.iter().enumerate() {
        let y = i * ROW + 4;
        let total: u64 = b.values.iter().sum();
        let _ = write!(
            out,
            "<g class=\"bar\"><title>{}</title><text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"label\">{}</text>",
            tooltip(b, series, fmt),
            LABEL_W - 6,
            y + 15,
            esc(&shorten(&b.label, 34))
        );
        let mut x = LABEL_W as f64;
        for (s, v) in series.iter().zip(&b.values) {
            let w = if max == 0 {
                0.0
            } else {
                BAR_W * (*v as f64) / (max as f64)
            };
            if *v > 0 {
                let _ = write!(
                    out,
                    "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/>",
                    w.max(1.0),
                    ROW - 6,
                    s.color
                );
            }
            x += w;
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" class=\"value\">{}</text></g>",
            x + 6.0,
            y + 15,
            esc(&fmt(total))
        );
    }
    out.push_str("</svg></figure>");
    out
}

/// Vertical stacked bars over time (days, weeks, months), with a light scale.
fn vbar(id: &str, title: &str, bars: &[Bar], series: &[Series], fmt: fn(u64) -> String) -> String {
    const LEFT: usize = 48;
    const PLOT_H: f64 = 180.0;
    const TOP: usize = 10;
    const BOTTOM: usize = 64;
    let col = if bars.len() > 60 { 12 } else { 26 };
    let max = bars
        .iter()
        .map(|b| b.values.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let width = LEFT + col * bars.len().max(1) + 16;
    let height = TOP + PLOT_H as usize + BOTTOM;
    let base = TOP as f64 + PLOT_H;
    let mut out = String::new();
    let _ = write!(
        out,
        "<figure id=\"{id}\"><figcaption>{}</figcaption>{}<div class=\"scroll\"><svg class=\"chart vbar\" role=\"img\" aria-label=\"{}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">",
        esc(title),
        legend(series),
        esc(title)
    );
    // Scale: 0, half and the maximum.
    for frac in [0.0, 0.5, 1.0] {
        let y = base - PLOT_H * frac;
        let v = (max as f64 * frac).round() as u64;
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" class=\"axis\">{}</text>",
            width - 8,
            LEFT - 4,
            y + 4.0,
            esc(&fmt(v))
        );
    }
    if bars.is_empty() || max == 0 {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" class=\"none\">none in this period</text>",
            LEFT + 8,
            base - 20.0
        );
    }
    // Every label when they fit, else every k-th.
    let every = bars.len().div_ceil(30).max(1);
    for (i, b) in bars.iter().enumerate() {
        let x = (LEFT + i * col) as f64 + 2.0;
        let _ = write!(
            out,
            "<g class=\"bar\"><title>{}</title>",
            tooltip(b, series, fmt)
        );
        let mut y = base;
        for (s, v) in series.iter().zip(&b.values) {
            if *v == 0 || max == 0 {
                continue;
            }
            let h = PLOT_H * (*v as f64) / (max as f64);
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{}\" height=\"{h:.1}\" fill=\"{}\"/>",
                col - 4,
                s.color
            );
        }
        if i % every == 0 {
            let lx = x + (col as f64 - 4.0) / 2.0;
            let _ = write!(
                out,
                "<text class=\"label\" transform=\"translate({lx:.1},{:.1}) rotate(-55)\" text-anchor=\"end\">{}</text>",
                base + 12.0,
                esc(&b.label)
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg></div></figure>");
    out
}

fn table(headers: &[&str], rows: &[Vec<String>], limit: usize) -> String {
    if rows.is_empty() {
        return "<p class=\"none\">none</p>".into();
    }
    let mut out = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows.iter().take(limit) {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if rows.len() > limit {
        let _ = write!(
            out,
            "<p class=\"note\">{} more not shown here; `gallring evidence` writes every row as CSV.</p>",
            rows.len() - limit
        );
    }
    out
}

/// Time buckets for the deletions chart: days, or months when the period is long enough that
/// days would not be readable.
enum Step {
    Day,
    Month,
}

fn period_bars(
    start: NaiveDate,
    end: NaiveDate,
    step: &Step,
    series: usize,
) -> Vec<(NaiveDate, Bar)> {
    let mut out = Vec::new();
    let mut d = start;
    while d <= end {
        let (label, next) = match step {
            Step::Day => (d.format("%m-%d").to_string(), d.succ_opt()),
            Step::Month => (
                d.format("%Y-%m").to_string(),
                d.with_day(1)
                    .and_then(|f| f.checked_add_months(chrono::Months::new(1))),
            ),
        };
        let mut bar = Bar::new(label, vec![0; series]);
        bar.detail = match step {
            Step::Day => d.format("%Y-%m-%d").to_string(),
            Step::Month => d.format("%Y-%m").to_string(),
        };
        out.push((d, bar));
        match next {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

fn bucket_of(bars: &mut [(NaiveDate, Bar)], at: NaiveDate) -> Option<&mut Bar> {
    // The last bucket starting on or before the date.
    let i = bars.partition_point(|(start, _)| *start <= at);
    i.checked_sub(1).map(|i| &mut bars[i].1)
}

fn late(d: &evidence::Disposition, grace: &IsoDuration) -> bool {
    d.by == "gallring"
        && d.deadline
            .and_then(|dl| grace.add_to(dl))
            .is_some_and(|due| d.at > due)
}

fn section(out: &mut String, id: &str, title: &str) {
    let _ = write!(out, "<section id=\"{id}\"><h2>{}</h2>", esc(title));
}

/// The page.
pub fn render(r: &Report) -> String {
    let e = &r.evidence;
    let s = &r.summary;
    let es = &e.summary;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>gallring report: {}</title><style>{CSS}</style></head><body>",
        esc(&es.bucket)
    );
    let from = es
        .from
        .map_or_else(|| "the journal's first record".into(), ts);
    let _ = write!(
        out,
        "<header><h1>Retention report: <span class=\"bucket\">{}</span></h1>\
<p>Period: from {} to {} (exclusive). The bucket as it is at {}. Read from gallring's journal \
({} records, chain head <code>{}</code>) and one read-only listing of the bucket.</p>",
        esc(&es.bucket),
        esc(&from),
        esc(&ts(es.to)),
        esc(&ts(r.now)),
        es.journal_records,
        esc(&es.journal_head)
    );
    out.push_str("<dl class=\"cards\">");
    for (k, v) in [
        ("objects now", s.objects.to_string()),
        ("bytes now", bytes(s.bytes)),
        ("held now", s.held.to_string()),
        ("overdue now", s.overdue.to_string()),
        ("deleted in the period", e.dispositions.len().to_string()),
        ("holds in effect", r.active_holds.len().to_string()),
    ] {
        let _ = write!(out, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(&v));
    }
    out.push_str("</dl></header>");

    kept(&mut out, r);
    deletions(&mut out, r);
    upcoming(&mut out, r);
    holds(&mut out, r);
    requests(&mut out, r);
    overdue(&mut out, r);

    let _ = writeln!(
        out,
        "<footer id=\"end\"><p>Generated by gallring {} at {}. Kind and purposes of a deletion \
are those recorded with it; legal bases come from the current policy. This page makes no \
network requests: everything it shows is in this file.</p></footer></body></html>",
        env!("CARGO_PKG_VERSION"),
        esc(&ts(es.generated_at))
    );
    out
}

fn kept(out: &mut String, r: &Report) {
    let s = &r.summary;
    section(out, "kept", "What is kept now, and why");
    out.push_str(
        "<p>Every object version in the bucket now, decided as a pass would decide it. \
An object kept for several purposes counts once for each.</p>",
    );
    let decisions: Vec<Bar> = [
        (Decision::Keep, s.keep),
        (Decision::Held, s.held),
        (Decision::Delete, s.delete),
        (Decision::Unclassified, s.unclassified),
    ]
    .into_iter()
    .map(|(d, n)| Bar::new(d.as_str(), vec![n]))
    .collect();
    out.push_str(&hbar(
        "chart-decision",
        "Objects by decision",
        &decisions,
        ONE,
        count,
    ));
    let mut by_kind: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut by_purpose: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in &r.plans {
        let k = by_kind
            .entry(p.kind.clone().unwrap_or_else(|| "(unclassified)".into()))
            .or_default();
        k.0 += 1;
        k.1 += p.size;
        if p.purposes.is_empty() {
            let e = by_purpose.entry("(no purpose)".into()).or_default();
            e.0 += 1;
            e.1 += p.size;
        }
        for purpose in &p.purposes {
            let e = by_purpose.entry(purpose.clone()).or_default();
            e.0 += 1;
            e.1 += p.size;
        }
    }
    let bars = |m: &BTreeMap<String, (u64, u64)>, bytes: bool| -> Vec<Bar> {
        m.iter()
            .map(|(k, (n, b))| Bar::new(k.clone(), vec![if bytes { *b } else { *n }]))
            .collect()
    };
    out.push_str("<div class=\"pair\">");
    out.push_str(&hbar(
        "chart-kind-objects",
        "Objects per kind",
        &bars(&by_kind, false),
        ONE,
        count,
    ));
    out.push_str(&hbar(
        "chart-kind-bytes",
        "Bytes per kind",
        &bars(&by_kind, true),
        BYTES,
        bytes,
    ));
    out.push_str(&hbar(
        "chart-purpose-objects",
        "Objects per purpose",
        &bars(&by_purpose, false),
        ONE,
        count,
    ));
    out.push_str(&hbar(
        "chart-purpose-bytes",
        "Bytes per purpose",
        &bars(&by_purpose, true),
        BYTES,
        bytes,
    ));
    out.push_str("</div>");
    if !s.by_controller.is_empty() {
        let rows: Vec<Bar> = s
            .by_controller
            .iter()
            .map(|(c, n)| Bar::new(c.clone(), vec![*n]))
            .collect();
        out.push_str(&hbar(
            "chart-controller",
            "Objects per data controller",
            &rows,
            ONE,
            count,
        ));
    }
    let rows: Vec<Vec<String>> = by_kind
        .iter()
        .map(|(k, (n, b))| vec![k.clone(), n.to_string(), bytes(*b)])
        .collect();
    out.push_str(&table(&["kind", "objects", "bytes"], &rows, 200));
    out.push_str("</section>");
}

fn deletions(out: &mut String, r: &Report) {
    let e = &r.evidence;
    section(out, "deletions", "Deletions in the period, and by whom");
    out.push_str(
        "<p><b>gallring</b>: deleted by gallring and confirmed by the store; \
<b>lifecycle</b>: expired by an S3 lifecycle rule, seen absent between two listings; \
<b>others</b>: gone, and neither.</p>",
    );
    let end = (e.summary.to - TimeDelta::seconds(1)).date_naive();
    let start = e
        .summary
        .from
        .map(|f| f.date_naive())
        .or_else(|| e.dispositions.iter().map(|d| d.at.date_naive()).min())
        .unwrap_or(end)
        .min(end);
    let step = if (end - start).num_days() > 92 {
        Step::Month
    } else {
        Step::Day
    };
    let mut bars = period_bars(start, end, &step, WHO.len());
    for d in &e.dispositions {
        let i = WHO.iter().position(|w| w.name == d.by).unwrap_or(2);
        if let Some(b) = bucket_of(&mut bars, d.at.date_naive()) {
            b.values[i] += 1;
        }
    }
    let bars: Vec<Bar> = bars.into_iter().map(|(_, b)| b).collect();
    let title = match step {
        Step::Day => "Deletions per day (UTC)",
        Step::Month => "Deletions per month (UTC)",
    };
    out.push_str(&vbar("chart-deletions", title, &bars, WHO, count));
    let by: Vec<Bar> = WHO
        .iter()
        .map(|w| {
            Bar::new(
                w.name,
                vec![e.dispositions.iter().filter(|d| d.by == w.name).count() as u64],
            )
        })
        .collect();
    out.push_str(&hbar(
        "chart-deletions-by",
        "Deletions by whom",
        &by,
        ONE,
        count,
    ));
    let rows: Vec<Vec<String>> = e
        .dispositions
        .iter()
        .map(|d| {
            vec![
                ts(d.at),
                d.key.clone(),
                d.kind.clone().unwrap_or_default(),
                d.purposes.join(" "),
                opt_ts(d.deadline),
                d.by.to_string(),
                d.rule.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["at", "key", "kind", "purposes", "deadline", "by", "rule"],
        &rows,
        500,
    ));
    out.push_str("</section>");
}

fn upcoming(out: &mut String, r: &Report) {
    section(out, "upcoming", "Upcoming deletions");
    let now = r.now;
    let today = now.date_naive();
    let mut due_now = 0u64;
    let mut weeks = [0u64; 13];
    let mut months = [0u64; 12];
    let mut later = 0u64;
    let mut next: Vec<&ObjectPlan> = Vec::new();
    for p in &r.plans {
        match (p.decision, p.deadline) {
            (Decision::Delete, _) => due_now += 1,
            (Decision::Keep, Some(d)) => {
                next.push(p);
                let days = (d.date_naive() - today).num_days().max(0);
                if let Some(w) = usize::try_from(days / 7)
                    .ok()
                    .and_then(|i| weeks.get_mut(i))
                {
                    *w += 1;
                }
                let m = (d.year() - now.year()) * 12 + d.month() as i32 - now.month() as i32;
                match usize::try_from(m).ok().and_then(|i| months.get_mut(i)) {
                    Some(slot) => *slot += 1,
                    None => later += 1,
                }
            }
            _ => {}
        }
    }
    out.push_str(
        "<p>Kept objects by the time their deadline passes (held and unclassified objects have \
none); <b>due now</b> are past their deadline and will go at the next pass.</p>",
    );
    let mut wbars = vec![Bar::new("due now", vec![due_now])];
    for (i, n) in weeks.iter().enumerate() {
        let start = today + TimeDelta::days(7 * i as i64);
        let mut b = Bar::new(format!("wk {}", i + 1), vec![*n]);
        b.detail = format!("week from {}", start.format("%Y-%m-%d"));
        wbars.push(b);
    }
    out.push_str(&vbar(
        "chart-upcoming-weeks",
        "Deadlines per week, next 13 weeks",
        &wbars,
        ONE,
        count,
    ));
    let mut mbars = vec![Bar::new("due now", vec![due_now])];
    for (i, n) in months.iter().enumerate() {
        let label = now
            .date_naive()
            .with_day(1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(i as u32)))
            .map_or_else(|| format!("+{i}"), |d| d.format("%Y-%m").to_string());
        mbars.push(Bar::new(label, vec![*n]));
    }
    mbars.push(Bar::new("later", vec![later]));
    out.push_str(&vbar(
        "chart-upcoming-months",
        "Deadlines per month, next 12 months",
        &mbars,
        ONE,
        count,
    ));
    next.sort_by_key(|p| p.deadline);
    let rows: Vec<Vec<String>> = next
        .iter()
        .take(50)
        .map(|p| {
            vec![
                opt_ts(p.deadline),
                p.key.clone(),
                p.kind.clone().unwrap_or_default(),
                p.purposes.join(" "),
                p.reason.clone(),
            ]
        })
        .collect();
    out.push_str("<h3>The next 50 deadlines</h3>");
    out.push_str(&table(
        &["deadline", "key", "kind", "purposes", "why"],
        &rows,
        50,
    ));
    out.push_str("</section>");
}

fn holds(out: &mut String, r: &Report) {
    let s = &r.summary;
    section(out, "holds", "Holds by reason and age");
    let reasons: Vec<Bar> = s
        .held_by_reason
        .iter()
        .map(|(k, n)| Bar::new(k.clone(), vec![*n]))
        .collect();
    out.push_str(&hbar(
        "chart-held-reason",
        "Objects held now, per reason",
        &reasons,
        ONE,
        count,
    ));
    let ages: Vec<Bar> = r
        .active_holds
        .iter()
        .map(|h| {
            let days = (r.now - h.since).num_days().max(0) as u64;
            let mut b = Bar::new(format!("{} ({})", h.name, h.reason), vec![days]);
            b.detail = format!("{} ({}, case {})", h.name, h.reason, h.case);
            b
        })
        .collect();
    fn days(n: u64) -> String {
        format!("{n} d")
    }
    out.push_str(&hbar(
        "chart-hold-age",
        "Holds in effect: age in days since applied",
        &ages,
        &[Series {
            name: "since applied",
            color: "#805ad5",
        }],
        days,
    ));
    let rows: Vec<Vec<String>> = r
        .active_holds
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                h.reason.clone(),
                h.case.clone(),
                ts(h.since),
                format!("{} d", (r.now - h.since).num_days().max(0)),
                h.objects.to_string(),
            ]
        })
        .collect();
    out.push_str("<h3>Holds in effect</h3>");
    out.push_str(&table(
        &["hold", "reason", "case", "applied", "age", "objects held"],
        &rows,
        500,
    ));
    let rows: Vec<Vec<String>> = r
        .evidence
        .holds
        .iter()
        .map(|h| {
            vec![
                ts(h.at),
                h.event.to_string(),
                h.hold.clone(),
                h.reason.clone(),
                h.case.clone(),
            ]
        })
        .collect();
    out.push_str("<h3>Holds applied and released in the period</h3>");
    out.push_str(&table(
        &["at", "event", "hold", "reason", "case"],
        &rows,
        500,
    ));
    out.push_str("</section>");
}

/// Data-subject requests received and answered in the period, from the journal.
fn requests(out: &mut String, r: &Report) {
    let e = &r.evidence;
    section(out, "requests", "Data-subject requests");
    let es = &e.summary;
    let list = crate::retention::answer::counts_text;
    let _ = write!(
        out,
        "<p>Received in the period: {}. Answers recorded: {}. Each answer is what a pass found; the request's status in the cluster shows the latest.</p>",
        esc(&list(&es.requests_received)),
        esc(&list(&es.request_answers))
    );
    let rows: Vec<Vec<String>> = e
        .requests
        .iter()
        .map(|q| {
            vec![
                ts(q.at),
                q.event.clone(),
                q.request.clone(),
                q.kind.clone(),
                q.detail.clone(),
                q.exceptions.join("; "),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "at",
            "event",
            "request",
            "type",
            "detail",
            "kept (Art. 17(3))",
        ],
        &rows,
        500,
    ));
    out.push_str("</section>");
}

fn overdue(out: &mut String, r: &Report) {
    let s = &r.summary;
    let e = &r.evidence;
    section(out, "overdue", "Overdue");
    let _ = write!(
        out,
        "<p><b>{}</b> objects ({}) are past their deadline and grace and still in the bucket now{}.</p>",
        s.overdue,
        esc(&bytes(s.overdue_bytes)),
        s.oldest_overdue_deadline
            .map(|d| format!(
                "; the oldest deadline passed {} days ago",
                (r.now - d).num_days()
            ))
            .unwrap_or_default()
    );
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for o in &e.overdue {
        *by_kind
            .entry(o.kind.clone().unwrap_or_else(|| "(unknown)".into()))
            .or_default() += 1;
    }
    let bars: Vec<Bar> = by_kind
        .iter()
        .map(|(k, n)| Bar::new(k.clone(), vec![*n]))
        .collect();
    out.push_str(&hbar(
        "chart-overdue-kind",
        "Overdue now, per kind",
        &bars,
        ONE,
        count,
    ));
    // Over time, only what the journal records: gallring's deletions carry their deadline, so
    // a deletion after deadline + grace shows an object that was overdue until that day.
    out.push_str(
        "<p class=\"note\">The journal does not record how many objects were overdue on each \
past day, so this page does not draw that line. What it can show over time: gallring's \
deletions made after the object's deadline and grace (each was overdue until then), per \
day. Expiries by lifecycle and removals by others carry no recorded deadline and are not \
counted here.</p>",
    );
    let end = (e.summary.to - TimeDelta::seconds(1)).date_naive();
    let start = e
        .summary
        .from
        .map(|f| f.date_naive())
        .or_else(|| e.dispositions.iter().map(|d| d.at.date_naive()).min())
        .unwrap_or(end)
        .min(end);
    let step = if (end - start).num_days() > 92 {
        Step::Month
    } else {
        Step::Day
    };
    let mut bars = period_bars(start, end, &step, 1);
    let mut late_rows = Vec::new();
    for d in e.dispositions.iter().filter(|d| late(d, &r.grace)) {
        if let Some(b) = bucket_of(&mut bars, d.at.date_naive()) {
            b.values[0] += 1;
        }
        late_rows.push(vec![
            ts(d.at),
            d.key.clone(),
            opt_ts(d.deadline),
            d.kind.clone().unwrap_or_default(),
        ]);
    }
    let bars: Vec<Bar> = bars.into_iter().map(|(_, b)| b).collect();
    out.push_str(&vbar(
        "chart-late-deletions",
        "gallring's deletions made after deadline + grace",
        &bars,
        &[Series {
            name: "late deletions",
            color: "#c53030",
        }],
        count,
    ));
    out.push_str(&table(
        &["deleted at", "key", "deadline", "kind"],
        &late_rows,
        200,
    ));
    let rows: Vec<Vec<String>> = e
        .overdue
        .iter()
        .map(|o| {
            vec![
                o.key.clone(),
                o.kind.clone().unwrap_or_default(),
                o.purposes.join(" "),
                opt_ts(o.deadline),
                o.reason.clone(),
            ]
        })
        .collect();
    out.push_str("<h3>Overdue now</h3>");
    out.push_str(&table(
        &["key", "kind", "purposes", "deadline", "why"],
        &rows,
        500,
    ));
    out.push_str("</section>");
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1a202c;\
margin:0 auto;max-width:1180px;padding:24px}h1{font-size:22px;margin:0 0 6px}\
h2{font-size:18px;border-bottom:1px solid #cbd5e0;padding-bottom:4px;margin-top:36px}\
h3{font-size:15px;margin:18px 0 6px}.bucket{font-family:ui-monospace,monospace}\
code{font-size:12px;word-break:break-all}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}\
.cards div{border:1px solid #cbd5e0;border-radius:6px;padding:8px 14px;min-width:120px}\
.cards dt{color:#4a5568;font-size:12px}.cards dd{margin:0;font-size:20px;font-weight:600}\
figure{margin:14px 0}figcaption{font-weight:600;margin-bottom:4px}.pair{display:flex;\
flex-wrap:wrap;gap:0 24px}.scroll{overflow-x:auto}svg.chart text{font-size:11px;fill:#2d3748}\
svg.chart .axis{fill:#718096}svg.chart .grid{stroke:#e2e8f0}svg.chart .none{fill:#718096;\
font-style:italic}.legend{margin:2px 0 4px;font-size:12px}.legend span{margin-right:14px}\
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}\
table{border-collapse:collapse;font-size:12px;margin:8px 0;width:100%}\
th,td{border:1px solid #e2e8f0;padding:3px 6px;text-align:left;vertical-align:top;\
word-break:break-all}th{background:#f7fafc}.note{color:#4a5568;font-size:12px}\
p.none{color:#718096;font-style:italic}@media print{.scroll{overflow:visible}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<img src=x onerror='a'>&\"b\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;b&quot;"
        );
        assert_eq!(esc("a\u{1}b"), "a&#xFFFD;b");
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let svg = hbar(
            "c",
            "t",
            &[Bar::new("<a>", vec![2]), Bar::new("b", vec![4])],
            ONE,
            count,
        );
        assert!(svg.contains("&lt;a&gt;"), "{svg}");
        assert!(!svg.contains("<a>"), "{svg}");
        assert!(svg.contains("width=\"210.0\""), "half of 420: {svg}");
        assert!(svg.contains("width=\"420.0\""), "{svg}");
    }

    #[test]
    fn days_of_a_period_and_their_buckets() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let mut bars = period_bars(d("2026-01-30"), d("2026-02-02"), &Step::Day, 1);
        assert_eq!(bars.len(), 4);
        bucket_of(&mut bars, d("2026-02-01")).expect("in").values[0] += 1;
        assert!(bucket_of(&mut bars, d("2026-01-29")).is_none());
        assert_eq!(bars[2].1.values, vec![1]);
        assert_eq!(bars[2].1.detail, "2026-02-01");
        let months = period_bars(d("2025-11-15"), d("2026-02-02"), &Step::Month, 1);
        let labels: Vec<&str> = months.iter().map(|(_, b)| b.label.as_str()).collect();
        assert_eq!(labels, ["2025-11", "2025-12", "2026-01", "2026-02"]);
    }
}
