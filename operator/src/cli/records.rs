//! `gallring records`: the retention part of the record of processing activities (GDPR Art.
//! 30(1)(f), "the envisaged time limits for erasure of the different categories of data"),
//! generated from the RetentionPolicies gallring enforces, so that the published notice, the
//! record and the enforcement come from one source.
//!
//! Read-only and offline: it reads manifests and nothing else. One row per (controller,
//! purpose, artifact kind): legal basis, retention and what it promises (kept at least / deleted
//! by), what it counts from, any use limit and the time zone; then, per controller, the hold
//! reasons with what a released hold still keeps and how long a hold may last. Markdown for
//! people, CSV for spreadsheets and registers.

use std::fmt::Write as _;
use std::path::Path;

use crate::api::v1alpha1::{
    Article6, Article9, DataController, HoldReason, IfEventMissing, RetainMeans,
    RetentionPolicySpec,
};
use crate::input::{InputError, Loaded, Manifests};

/// Output format of `gallring records`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One section per controller with its retention and hold tables.
    Markdown,
    /// One line per retention row and per hold reason (column `record`: retention | hold).
    Csv,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0}: no RetentionPolicy in these manifests: the record is made from them")]
    NoPolicy(String),
}

/// The record: every controller named by a policy, in the order the manifests name them.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The RetentionPolicies it was made from.
    pub policies: Vec<PolicySource>,
    pub controllers: Vec<ControllerRecord>,
}

/// A RetentionPolicy the record was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySource {
    /// `namespace/name`.
    pub policy: String,
    /// The file it was read from.
    pub file: String,
    pub description: Option<String>,
}

/// One data controller's part of the record.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerRecord {
    pub legal_name: String,
    pub org_number: Option<String>,
    pub contact: Option<String>,
    /// One per (purpose, kind) of this controller, in the policy's purpose order and by kind.
    pub rows: Vec<RetentionRow>,
    /// The holdRelease entries of every policy with a purpose of this controller.
    pub holds: Vec<HoldRow>,
    /// The policies (`namespace/name`) with a purpose of this controller.
    pub policies: Vec<String>,
}

/// How long one purpose keeps one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionRow {
    /// `namespace/name` of the RetentionPolicy.
    pub policy: String,
    pub purpose: String,
    pub description: Option<String>,
    pub article6: Article6,
    pub article9: Option<Article9>,
    pub withdrawable: bool,
    /// The artifact kind (the category of data).
    pub kind: String,
    /// The retention as written in the policy (ISO 8601).
    pub retention: String,
    pub means: RetainMeans,
    pub anchor: Anchor,
    /// `useFor` of this kind, as written, when the purpose limits its use.
    pub use_limit: Option<String>,
    /// The IANA time zone the period is counted in.
    pub time_zone: String,
}

/// What a retention counts from.
#[derive(Debug, Clone, PartialEq)]
pub enum Anchor {
    RecordingTime,
    Tag {
        key: String,
        if_missing: IfEventMissing,
    },
    Metadata {
        key: String,
        if_missing: IfEventMissing,
    },
}

/// One hold reason's release rule in one policy.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRow {
    pub policy: String,
    pub reason: HoldReason,
    /// `holdRelease[].keep` as written.
    pub keep: String,
    /// `holdRelease[].maxHold` as written.
    pub max_hold: Option<String>,
    pub time_zone: String,
}

/// Reads and validates the manifests (every document, as `plan` and `run` would) and makes
/// the record from their RetentionPolicies.
pub fn load(path: &Path) -> Result<Record, RecordsError> {
    let manifests = Manifests::load(path)?;
    // Validation is the same as for enforcement: an invalid policy, bucket or hold is refused
    // with its file and field, and no record is made from manifests gallring would not run.
    manifests.compile()?;
    if manifests.policies.is_empty() {
        return Err(RecordsError::NoPolicy(path.display().to_string()));
    }
    Ok(record(&manifests.policies))
}

/// The record of already validated policies.
pub fn record(policies: &[Loaded<RetentionPolicySpec>]) -> Record {
    let mut controllers: Vec<ControllerRecord> = Vec::new();
    let mut sources = Vec::new();
    for p in policies {
        let policy = p.key();
        sources.push(PolicySource {
            policy: policy.clone(),
            file: p.origin.path.display().to_string(),
            description: p.spec.description.clone(),
        });
        let time_zone = p.spec.time_zone.clone().unwrap_or_else(|| "UTC".into());
        for purpose in &p.spec.purposes {
            let who = purpose.controller.as_ref().unwrap_or(&p.spec.controller);
            let c = controller_entry(&mut controllers, who);
            if !c.policies.contains(&policy) {
                c.policies.push(policy.clone());
                c.holds.extend(p.spec.hold_release.iter().map(|h| HoldRow {
                    policy: policy.clone(),
                    reason: h.reason,
                    keep: h.keep.0.clone(),
                    max_hold: h.max_hold.as_ref().map(|m| m.0.clone()),
                    time_zone: time_zone.clone(),
                }));
            }
            let anchor = match &purpose.from {
                None => Anchor::RecordingTime,
                Some(f) => match (&f.tag, &f.metadata) {
                    (Some(key), _) => Anchor::Tag {
                        key: key.clone(),
                        if_missing: f.if_missing,
                    },
                    (None, Some(key)) => Anchor::Metadata {
                        key: key.clone(),
                        if_missing: f.if_missing,
                    },
                    // Refused by validation; the recording time is what the engine would use.
                    (None, None) => Anchor::RecordingTime,
                },
            };
            for (kind, d) in &purpose.retain {
                c.rows.push(RetentionRow {
                    policy: policy.clone(),
                    purpose: purpose.name.clone(),
                    description: purpose.description.clone(),
                    article6: purpose.legal_basis.article6,
                    article9: purpose.legal_basis.article9,
                    withdrawable: purpose.withdrawable,
                    kind: kind.clone(),
                    retention: d.0.clone(),
                    means: purpose.retain_means,
                    anchor: anchor.clone(),
                    use_limit: purpose.use_for.get(kind).map(|u| u.0.clone()),
                    time_zone: time_zone.clone(),
                });
            }
        }
    }
    Record {
        policies: sources,
        controllers,
    }
}

/// The controller's entry, created on first sight. A controller is its legal name and
/// registration number; the first contact given is kept.
fn controller_entry<'a>(
    controllers: &'a mut Vec<ControllerRecord>,
    who: &DataController,
) -> &'a mut ControllerRecord {
    let name = who.legal_name.trim();
    let org = who.org_number.as_deref().map(str::trim);
    let i = match controllers
        .iter()
        .position(|c| c.legal_name == name && c.org_number.as_deref() == org)
    {
        Some(i) => i,
        None => {
            controllers.push(ControllerRecord {
                legal_name: name.to_string(),
                org_number: org.map(str::to_string),
                contact: None,
                rows: Vec::new(),
                holds: Vec::new(),
                policies: Vec::new(),
            });
            controllers.len() - 1
        }
    };
    let c = &mut controllers[i];
    if c.contact.is_none() {
        c.contact = who.contact.clone().filter(|s| !s.trim().is_empty());
    }
    c
}

/// `gallring records`: the record in the chosen format. Nothing is printed on an error.
pub fn run(path: &Path, format: Format) -> Result<String, RecordsError> {
    let record = load(path)?;
    Ok(match format {
        Format::Markdown => render_markdown(&record),
        Format::Csv => render_csv(&record),
    })
}

// ---------------------------------------------------------------------------------------------
// Words

/// An ISO-8601 duration in words: `P18M` is "18 months", `P1Y6M` "1 year 6 months", `P0D`
/// "none". Anything it cannot read is returned as written.
pub fn duration_words(iso: &str) -> String {
    let re = regex::Regex::new(
        r"^P(?:([0-9]+)Y)?(?:([0-9]+)M)?(?:([0-9]+)W)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)S)?)?$",
    )
    .expect("a valid regex");
    let Some(caps) = re.captures(iso) else {
        return iso.to_string();
    };
    let units = [
        ("year", "years"),
        ("month", "months"),
        ("week", "weeks"),
        ("day", "days"),
        ("hour", "hours"),
        ("minute", "minutes"),
        ("second", "seconds"),
    ];
    let mut parts = Vec::new();
    for (i, (one, many)) in units.iter().enumerate() {
        let Some(n) = caps.get(i + 1).and_then(|m| m.as_str().parse::<u64>().ok()) else {
            continue;
        };
        match n {
            0 => {}
            1 => parts.push(format!("1 {one}")),
            n => parts.push(format!("{n} {many}")),
        }
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

/// "14 days (P14D)"; "none (P0D)".
fn period(iso: &str) -> String {
    format!("{} ({iso})", duration_words(iso))
}

/// GDPR Art. 6(1) in words.
pub fn article6_words(a: Article6) -> &'static str {
    match a {
        Article6::Consent => "Art. 6(1)(a) consent",
        Article6::Contract => "Art. 6(1)(b) contract",
        Article6::LegalObligation => "Art. 6(1)(c) legal obligation",
        Article6::VitalInterests => "Art. 6(1)(d) vital interests",
        Article6::PublicTask => "Art. 6(1)(e) public task",
        Article6::LegitimateInterests => "Art. 6(1)(f) legitimate interests",
    }
}

/// GDPR Art. 9(2) in words.
pub fn article9_words(a: Article9) -> &'static str {
    match a {
        Article9::ExplicitConsent => "Art. 9(2)(a) explicit consent",
        Article9::Employment => "Art. 9(2)(b) employment and social protection law",
        Article9::VitalInterests => "Art. 9(2)(c) vital interests",
        Article9::NotForProfit => "Art. 9(2)(d) not-for-profit body",
        Article9::MadePublic => "Art. 9(2)(e) made public by the data subject",
        Article9::LegalClaims => "Art. 9(2)(f) legal claims",
        Article9::SubstantialPublicInterest => "Art. 9(2)(g) substantial public interest",
        Article9::HealthOrSocialCare => "Art. 9(2)(h) health or social care",
        Article9::PublicHealth => "Art. 9(2)(i) public health",
        Article9::ArchivingOrResearch => "Art. 9(2)(j) archiving, research or statistics",
    }
}

impl RetentionRow {
    /// "Art. 6(1)(f) legitimate interests; Art. 9(2)(f) legal claims".
    pub fn legal_basis(&self) -> String {
        match self.article9 {
            Some(a9) => format!("{}; {}", article6_words(self.article6), article9_words(a9)),
            None => article6_words(self.article6).to_string(),
        }
    }

    /// "kept at least" (a minimum, then deleted) or "deleted by" (a maximum).
    pub fn means(&self) -> &'static str {
        match self.means {
            RetainMeans::KeepAtLeast => "kept at least",
            RetainMeans::DeleteBy => "deleted by",
        }
    }

    /// What the period counts from, in words.
    pub fn counted_from(&self) -> String {
        let missing = |m: IfEventMissing| match m {
            IfEventMissing::Wait => "no deadline until it is set",
            IfEventMissing::RecordingTime => "the recording time when it is missing",
        };
        match &self.anchor {
            Anchor::RecordingTime => "recording time".into(),
            Anchor::Tag { key, if_missing } => format!("tag {key} ({})", missing(*if_missing)),
            Anchor::Metadata { key, if_missing } => {
                format!("metadata {key} ({})", missing(*if_missing))
            }
        }
    }
}

/// A hold reason in words.
pub fn reason_words(r: HoldReason) -> &'static str {
    match r {
        HoldReason::Complaint => "complaint",
        HoldReason::Dispute => "dispute",
        HoldReason::Claim => "claim",
        HoldReason::AccessRequest => "access request",
        HoldReason::PoliceReport => "police report",
        HoldReason::FraudInvestigation => "fraud investigation",
        HoldReason::AuthorityRequest => "authority request",
        HoldReason::Restriction => "restriction of processing (Art. 18)",
    }
}

/// The reason as the API spells it (`AccessRequest`).
pub fn reason_name(r: HoldReason) -> &'static str {
    match r {
        HoldReason::Complaint => "Complaint",
        HoldReason::Dispute => "Dispute",
        HoldReason::Claim => "Claim",
        HoldReason::AccessRequest => "AccessRequest",
        HoldReason::PoliceReport => "PoliceReport",
        HoldReason::FraudInvestigation => "FraudInvestigation",
        HoldReason::AuthorityRequest => "AuthorityRequest",
        HoldReason::Restriction => "Restriction",
    }
}

fn is_zero(iso: &str) -> bool {
    duration_words(iso) == "none"
}

impl HoldRow {
    /// What a released hold still keeps.
    pub fn kept_after(&self) -> String {
        if is_zero(&self.keep) {
            format!("nothing ({})", self.keep)
        } else {
            format!(
                "{} from the hold's limitation start, else from its end",
                period(&self.keep)
            )
        }
    }

    /// How long a hold of this reason may last.
    pub fn ends_at_latest(&self) -> String {
        match &self.max_hold {
            Some(m) => format!(
                "{} after the hold's limitation start, else its creation",
                period(m)
            ),
            None => "no limit: while the case needs it".into(),
        }
    }
}

impl ControllerRecord {
    /// "Claims Link AB (559052-1984)".
    pub fn name_with_number(&self) -> String {
        match &self.org_number {
            Some(n) => format!("{} ({n})", self.legal_name),
            None => self.legal_name.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown

/// Text on one line: runs of white space (line breaks included) become one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A Markdown table cell: one line, `|` escaped.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

pub fn render_markdown(record: &Record) -> String {
    let several = record.policies.len() > 1;
    let mut out = String::new();
    out.push_str("# Retention record (GDPR Art. 30(1)(f))\n\n");
    out.push_str(
        "The envisaged time limits for erasure, per controller, purpose and category of data \
         (artifact kind), generated by `gallring records` from the RetentionPolicies gallring \
         enforces. A period counts from its anchor on the policy's time zone. \"Kept at \
         least\": kept for the period, then deleted (within the bucket's grace period). \
         \"Deleted by\": gone when the period ends.\n\n",
    );
    out.push_str("Made from:\n\n");
    for p in &record.policies {
        let _ = write!(out, "- RetentionPolicy `{}` ({})", p.policy, p.file);
        if let Some(d) = &p.description {
            let _ = write!(out, ": {}", cell(d));
        }
        out.push('\n');
    }
    for c in &record.controllers {
        let _ = write!(out, "\n## {}\n\n", cell(&c.name_with_number()));
        if let Some(contact) = &c.contact {
            let _ = writeln!(out, "Contact: {}\n", cell(contact));
        }
        let policy_col = if several { "| policy " } else { "" };
        let _ = writeln!(
            out,
            "{policy_col}| purpose | description | legal basis | withdrawable | category | retention | kept at least / deleted by | counted from | use limited to | time zone |"
        );
        let _ = writeln!(
            out,
            "{}| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            if several { "| --- " } else { "" }
        );
        let mut previous: Option<(&str, &str)> = None;
        for r in &c.rows {
            let policy = if several {
                format!("| `{}` ", r.policy)
            } else {
                String::new()
            };
            // A purpose's description once, on its first kind.
            let same_purpose = previous == Some((r.policy.as_str(), r.purpose.as_str()));
            previous = Some((r.policy.as_str(), r.purpose.as_str()));
            let description = match (&r.description, same_purpose) {
                (_, true) => "as above".to_string(),
                (Some(d), false) => cell(d),
                (None, false) => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "{policy}| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.purpose,
                description,
                r.legal_basis(),
                if r.withdrawable { "yes" } else { "no" },
                r.kind,
                period(&r.retention),
                r.means(),
                cell(&r.counted_from()),
                r.use_limit.as_deref().map_or_else(|| "-".into(), period),
                r.time_zone,
            );
        }
        out.push_str("\n### Holds\n\n");
        out.push_str(
            "A LegalHold keeps what it selects, whatever the retention above, while it is \
             active. After it ends:\n\n",
        );
        let _ = writeln!(
            out,
            "{}| hold reason | kept after the hold ends | the hold ends at the latest |",
            if several { "| policy " } else { "" }
        );
        let _ = writeln!(
            out,
            "{}| --- | --- | --- |",
            if several { "| --- " } else { "" }
        );
        for h in &c.holds {
            let policy = if several {
                format!("| `{}` ", h.policy)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{policy}| {} (`{}`) | {} | {} |",
                reason_words(h.reason),
                reason_name(h.reason),
                h.kept_after(),
                h.ends_at_latest(),
            );
        }
        let others = if several { "| (every policy) " } else { "" };
        let _ = writeln!(
            out,
            "{others}| any other reason | nothing: the normal deadline applies | no limit: while the case needs it |"
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// CSV

const CSV_HEADER: [&str; 22] = [
    "record",
    "controller",
    "org_number",
    "contact",
    "policy",
    "purpose",
    "description",
    "legal_basis",
    "withdrawable",
    "category",
    "retention",
    "retention_iso",
    "means",
    "counted_from",
    "use_limit",
    "use_limit_iso",
    "hold_reason",
    "kept_after_hold",
    "kept_after_hold_iso",
    "hold_ends_at_latest",
    "max_hold_iso",
    "time_zone",
];

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. A field
/// that a spreadsheet would read as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_line(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    out.push_str(&line.join(","));
    out.push('\n');
}

pub fn render_csv(record: &Record) -> String {
    let mut out = String::new();
    csv_line(
        &mut out,
        &CSV_HEADER.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    );
    for c in &record.controllers {
        let org = c.org_number.clone().unwrap_or_default();
        let contact = c.contact.clone().unwrap_or_default();
        for r in &c.rows {
            csv_line(
                &mut out,
                &[
                    "retention".into(),
                    c.legal_name.clone(),
                    org.clone(),
                    contact.clone(),
                    r.policy.clone(),
                    r.purpose.clone(),
                    r.description.as_deref().map(one_line).unwrap_or_default(),
                    r.legal_basis(),
                    if r.withdrawable { "yes" } else { "no" }.into(),
                    r.kind.clone(),
                    duration_words(&r.retention),
                    r.retention.clone(),
                    r.means().into(),
                    r.counted_from(),
                    r.use_limit
                        .as_deref()
                        .map(duration_words)
                        .unwrap_or_default(),
                    r.use_limit.clone().unwrap_or_default(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    r.time_zone.clone(),
                ],
            );
        }
        for h in &c.holds {
            csv_line(
                &mut out,
                &[
                    "hold".into(),
                    c.legal_name.clone(),
                    org.clone(),
                    contact.clone(),
                    h.policy.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    reason_name(h.reason).into(),
                    h.kept_after(),
                    h.keep.clone(),
                    h.ends_at_latest(),
                    h.max_hold.clone().unwrap_or_default(),
                    h.time_zone.clone(),
                ],
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_words() {
        for (iso, words) in [
            ("P14D", "14 days"),
            ("P1D", "1 day"),
            ("P18M", "18 months"),
            ("P1Y6M", "1 year 6 months"),
            ("P0D", "none"),
            ("PT1H", "1 hour"),
            ("P2W", "2 weeks"),
            ("nonsense", "nonsense"),
        ] {
            assert_eq!(duration_words(iso), words, "{iso}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field(""), "");
    }
}
