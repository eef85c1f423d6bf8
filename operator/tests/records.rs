//! `gallring records`: the Art. 30(1)(f) retention record made from the RetentionPolicies.
//!
//! The main test diffs the record of each notice in `policies/` against that notice's README,
//! whose "Every retention clause" tables quote each clause next to the fields that implement it
//! (the "Implemented by" column). Both directions are checked, so the published notice (as the
//! README quotes it), the record and the enforcement (policy.yaml) cannot drift apart silently:
//!
//! - every (purpose, kind, retention) of the record is stated in one clause cell: a fragment of
//!   the cell (cells are split at `;`) names the purpose and the kind, and a statement in it
//!   (the text up to an ISO duration) names the purpose or the kind and ends with exactly that
//!   duration, and is not a `useFor` statement;
//! - every use limit likewise, by a `useFor` statement;
//! - a `DeleteBy` purpose is called `DeleteBy` in a fragment naming it, and no fragment calls a
//!   `KeepAtLeast` purpose `DeleteBy`;
//! - a purpose counted `from` an event names the event's tag or metadata key;
//! - every hold reason of `holdRelease` is stated after `holdRelease` with its `keep` as the
//!   next duration, and its `maxHold` after `maxHold`; every reason the README states after
//!   `holdRelease` is in the record;
//! - every purpose the README names (`purpose x`, `purposes x, y`, `x.retain…`, `x.useFor…`,
//!   `x.controller…`, …) is in the record; every controller's legal name (and number) is in
//!   the README.
//!
//! A deliberately altered copy of one notice (policy or README) shows the check fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gallring::api::v1alpha1::{HoldReason, RetainMeans};
use gallring::cli::records::{self, Anchor, Record};
use regex::Regex;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in operator/")
        .to_path_buf()
}

/// The five notices: `policies/00*`.
fn notices() -> Vec<PathBuf> {
    let dir = repo().join("policies");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("00"))
        })
        .collect();
    out.sort();
    assert_eq!(out.len(), 5, "five notices in policies/: {out:?}");
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn name_of(dir: &Path) -> String {
    dir.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

/// A scratch directory under the target dir, unique per test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("records")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

// ---------------------------------------------------------------------------------------------
// The README side

/// The "Implemented by" cells of the tables in a README's "Every retention clause" section, as
/// (clause number, cell).
fn implemented_by(readme: &str) -> Vec<(String, String)> {
    let start = readme
        .find("## Every retention clause")
        .expect("the README has an \"Every retention clause\" section");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let section = &section[..end];
    let mut out = Vec::new();
    let mut column: Option<usize> = None;
    for line in section.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            column = None;
            continue;
        }
        let cells = split_row(line);
        if let Some(i) = cells.iter().position(|c| c == "Implemented by") {
            column = Some(i);
            continue;
        }
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue; // the separator row
        }
        if let Some(i) = column
            && let Some(cell) = cells.get(i)
        {
            out.push((cells[0].clone(), cell.clone()));
        }
    }
    assert!(
        out.len() >= 5,
        "expected the clause tables' \"Implemented by\" cells, found {}",
        out.len()
    );
    out
}

/// The cells of a Markdown table row (`\|` is not a separator).
fn split_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    cells.push(cur.trim().to_string());
    cells
}

/// `name` (a purpose: lowercase, digits, `-`) occurs as a whole name: not inside a longer one
/// (`quality` is not found in `quality-bank`).
fn names_purpose(text: &str, name: &str) -> bool {
    occurrences(text, name, |c| c.is_ascii_alphanumeric() || c == '-')
        .next()
        .is_some()
}

/// `word` (a kind, a reason) occurs as a whole word; `-` and `/` separate words
/// (`inspection-not-relevant-audio/-transcript` names audio and transcript).
fn names_word(text: &str, word: &str) -> bool {
    occurrences(text, word, |c| c.is_ascii_alphanumeric())
        .next()
        .is_some()
}

/// Byte offsets just after each whole occurrence of `needle`.
fn occurrences<'a>(
    text: &'a str,
    needle: &'a str,
    is_inner: impl Fn(char) -> bool + 'a,
) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(needle).filter_map(move |(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        let whole = !before.is_some_and(&is_inner) && !after.is_some_and(&is_inner);
        whole.then_some(i + needle.len())
    })
}

fn duration_re() -> Regex {
    Regex::new(r"P(?:[0-9]+[YMWD])+(?:T(?:[0-9]+[HMS])+)?|PT(?:[0-9]+[HMS])+").expect("regex")
}

/// The ISO durations in a text as (start, end, text), whole words only.
fn durations(text: &str) -> Vec<(usize, usize, String)> {
    duration_re()
        .find_iter(text)
        .filter(|m| {
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_alphanumeric())
        })
        .map(|m| (m.start(), m.end(), m.as_str().to_string()))
        .collect()
}

/// A fragment cut into statements, each ending with an ISO duration: `(text, duration)`.
fn statements(fragment: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    for (_, end, d) in durations(fragment) {
        out.push((fragment[from..end].to_string(), d));
        from = end;
    }
    out
}

/// The first ISO duration after byte `at`.
fn next_duration(text: &str, at: usize) -> Option<String> {
    durations(&text[at..]).into_iter().next().map(|(_, _, d)| d)
}

/// Purposes a README cell names: `purpose x`, `purposes x, y and z`, and `x.retain`,
/// `x.useFor`, `x.controller`, `x.legalBasis`, `x.retainMeans`, `x.from`, `x.withdrawable`.
fn purposes_named(cell: &str) -> Vec<String> {
    let field = Regex::new(
        r"`([a-z0-9][-a-z0-9]*)\.(?:retain|useFor|controller|legalBasis|retainMeans|from|withdrawable)\b",
    )
    .expect("regex");
    let list =
        Regex::new(r"\bpurposes? ((?:`[a-z0-9][-a-z0-9]*`(?:, | and | or |/)?)+)").expect("regex");
    let item = Regex::new(r"`([a-z0-9][-a-z0-9]*)`").expect("regex");
    let mut out: Vec<String> = field
        .captures_iter(cell)
        .map(|c| c[1].to_string())
        .filter(|n| n != "spec")
        .collect();
    for c in list.captures_iter(cell) {
        out.extend(item.captures_iter(&c[1]).map(|i| i[1].to_string()));
    }
    out
}

const REASONS: [HoldReason; 8] = [
    HoldReason::Complaint,
    HoldReason::Dispute,
    HoldReason::Claim,
    HoldReason::AccessRequest,
    HoldReason::PoliceReport,
    HoldReason::FraudInvestigation,
    HoldReason::AuthorityRequest,
    HoldReason::Restriction,
];

/// Everything in the record that the README's clause tables do not state, and everything
/// they state that the record lacks. Empty when they agree.
fn readme_diff(record: &Record, readme: &str) -> Vec<String> {
    let cells = implemented_by(readme);
    // (clause, fragment)
    let fragments: Vec<(&str, &str)> = cells
        .iter()
        .flat_map(|(n, c)| c.split(';').map(move |f| (n.as_str(), f)))
        .collect();
    let rows: Vec<_> = record.controllers.iter().flat_map(|c| &c.rows).collect();
    let holds: Vec<_> = record.controllers.iter().flat_map(|c| &c.holds).collect();
    let mut problems = Vec::new();

    // Retention and use limits.
    for r in &rows {
        let stated = |duration: &str, use_limit: bool| {
            fragments.iter().any(|(_, f)| {
                names_purpose(f, &r.purpose)
                    && names_word(f, &r.kind)
                    && statements(f).iter().any(|(s, d)| {
                        d == duration
                            && s.contains("useFor") == use_limit
                            && (names_purpose(s, &r.purpose) || names_word(s, &r.kind))
                    })
            })
        };
        if !stated(&r.retention, false) {
            problems.push(format!(
                "retention: purpose `{}` keeps `{}` {} ({}), which no \"Implemented by\" cell states",
                r.purpose,
                r.kind,
                r.retention,
                r.means()
            ));
        }
        if let Some(u) = &r.use_limit
            && !stated(u, true)
        {
            problems.push(format!(
                "use limit: purpose `{}` uses `{}` for {u}, which no \"Implemented by\" cell states as useFor",
                r.purpose, r.kind
            ));
        }
    }

    // Minimum or maximum, and the event a period counts from: per purpose.
    let mut purposes: Vec<(&str, RetainMeans, &Anchor)> = Vec::new();
    for r in &rows {
        if !purposes.iter().any(|(p, _, _)| *p == r.purpose) {
            purposes.push((&r.purpose, r.means, &r.anchor));
        }
    }
    for (p, means, anchor) in &purposes {
        if *means == RetainMeans::DeleteBy
            && !fragments
                .iter()
                .any(|(_, f)| names_purpose(f, p) && f.contains("DeleteBy"))
        {
            problems.push(format!(
                "retainMeans: purpose `{p}` is DeleteBy (a maximum), which no \"Implemented by\" cell says"
            ));
        }
        let key = match anchor {
            Anchor::RecordingTime => None,
            Anchor::Tag { key, .. } | Anchor::Metadata { key, .. } => Some(key),
        };
        if let Some(key) = key
            && !fragments
                .iter()
                .any(|(_, f)| names_purpose(f, p) && f.contains(key.as_str()))
        {
            problems.push(format!(
                "from: purpose `{p}` counts from `{key}`, which no \"Implemented by\" cell names with it"
            ));
        }
    }
    for (clause, f) in &fragments {
        if !f.contains("DeleteBy") {
            continue;
        }
        for (p, means, _) in &purposes {
            if *means == RetainMeans::KeepAtLeast && names_purpose(f, p) {
                problems.push(format!(
                    "retainMeans: clause {clause} calls `{p}` DeleteBy, but the policy keeps it at least (KeepAtLeast)"
                ));
            }
        }
    }

    // Hold reasons.
    for h in &holds {
        let reason = records::reason_name(h.reason);
        let keep_stated = fragments.iter().any(|(_, f)| {
            f.find("holdRelease").is_some_and(|at| {
                occurrences(&f[at..], reason, |c| c.is_ascii_alphanumeric())
                    .any(|end| next_duration(&f[at..], end).as_deref() == Some(h.keep.as_str()))
            })
        });
        if !keep_stated {
            problems.push(format!(
                "holdRelease: `{reason}` keeps {} after the hold, which no \"Implemented by\" cell states",
                h.keep
            ));
        }
        if let Some(max) = &h.max_hold {
            let max_stated = fragments.iter().any(|(_, f)| {
                f.contains("holdRelease")
                    && names_word(f, reason)
                    && occurrences(f, "maxHold", |c| c.is_ascii_alphanumeric())
                        .any(|end| next_duration(f, end).as_deref() == Some(max.as_str()))
            });
            if !max_stated {
                problems.push(format!(
                    "holdRelease: `{reason}` has maxHold {max}, which no \"Implemented by\" cell states"
                ));
            }
        }
    }
    for (clause, f) in &fragments {
        let Some(at) = f.find("holdRelease") else {
            continue;
        };
        for reason in REASONS {
            let name = records::reason_name(reason);
            if names_word(&f[at..], name) && !holds.iter().any(|h| h.reason == reason) {
                problems.push(format!(
                    "holdRelease: clause {clause} states a release rule for `{name}`, which the policy does not have"
                ));
            }
        }
    }

    // Purposes the README names, and controllers the record names.
    for (clause, cell) in &cells {
        for p in purposes_named(cell) {
            if !purposes.iter().any(|(q, _, _)| *q == p) {
                problems.push(format!(
                    "purpose: clause {clause} names purpose `{p}`, which the policy does not have"
                ));
            }
        }
    }
    for c in &record.controllers {
        if !readme.contains(&c.legal_name) {
            problems.push(format!(
                "controller: `{}` is not named in the README",
                c.legal_name
            ));
        }
        if let Some(n) = &c.org_number
            && !readme.contains(n.as_str())
        {
            problems.push(format!(
                "controller: `{}`'s number {n} is not in the README",
                c.legal_name
            ));
        }
    }
    problems
}

/// What the READMEs do not state today (reported; `policies/` is not edited here). Each entry
/// must still be a gap: once a README states it, the entry has to go.
const KNOWN_GAPS: [(&str, &str); 0] = [];

fn record_of(dir: &Path) -> Record {
    records::load(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

#[test]
fn each_notices_record_matches_its_readme() {
    let mut unexpected = Vec::new();
    let mut gaps_seen = Vec::new();
    for dir in notices() {
        let name = name_of(&dir);
        let record = record_of(&dir);
        assert!(!record.controllers.is_empty(), "{name}: a record");
        let readme = read(&dir.join("README.md"));
        for p in readme_diff(&record, &readme) {
            match KNOWN_GAPS
                .iter()
                .find(|(n, prefix)| *n == name && p.starts_with(prefix))
            {
                Some(gap) => gaps_seen.push(*gap),
                None => unexpected.push(format!("policies/{name}: {p}")),
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "the record (from policy.yaml) and the README's clause tables disagree:\n  {}",
        unexpected.join("\n  ")
    );
    let stale: Vec<_> = KNOWN_GAPS
        .iter()
        .filter(|g| !gaps_seen.contains(g))
        .collect();
    assert!(
        stale.is_empty(),
        "these README gaps are closed now; remove them from KNOWN_GAPS: {stale:?}"
    );
}

/// A copy of policies/003-lansforsakringar, each file's text passed through `edit(file, text)`.
fn altered(test: &str, edit: impl Fn(&str, String) -> String) -> (Record, String) {
    let src = repo().join("policies/003-lansforsakringar");
    let dir = scratch(test);
    for f in ["policy.yaml", "bucket.yaml", "holds.yaml", "README.md"] {
        let text = read(&src.join(f));
        std::fs::write(dir.join(f), edit(f, text)).expect("write the copy");
    }
    (record_of(&dir), read(&dir.join("README.md")))
}

/// An edit replacing `from` (which must be there) by `to` once, in `file` only.
fn replace_in(
    file: &'static str,
    from: &'static str,
    to: &'static str,
) -> impl Fn(&str, String) -> String {
    move |f, text| {
        if f != file {
            return text;
        }
        assert!(text.contains(from), "{f} contains {from:?}");
        text.replacen(from, to, 1)
    }
}

#[test]
fn the_readme_check_fails_when_a_notice_and_its_policy_drift() {
    // The unaltered copy agrees (the control).
    let (record, readme) = altered("control", |_, text| text);
    assert_eq!(readme_diff(&record, &readme), Vec::<String>::new());

    type Edit = Box<dyn Fn(&str, String) -> String>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        // The policy keeps camera footage longer than the notice says.
        (
            "policy-longer",
            Box::new(replace_in(
                "policy.yaml",
                "cameraFootage: P14D",
                "cameraFootage: P21D",
            )),
            "retention: purpose `cctv` keeps `cameraFootage` P21D",
        ),
        // A kind the notice does not mention.
        (
            "policy-new-kind",
            Box::new(replace_in(
                "policy.yaml",
                "        email: P30D\n    - name: quality\n",
                "        email: P30D\n        sms: P30D\n    - name: quality\n",
            )),
            "retention: purpose `threat` keeps `sms` P30D",
        ),
        // A maximum turned into a minimum: the README still says DeleteBy.
        (
            "policy-means",
            Box::new(replace_in(
                "policy.yaml",
                "      retainMeans: DeleteBy\n      retain:\n        visitorRecord: P1D",
                "      retain:\n        visitorRecord: P1D",
            )),
            "retainMeans: clause 5 calls `visitors` DeleteBy",
        ),
        // A minimum turned into a maximum: the README does not say so.
        (
            "policy-means-max",
            Box::new(replace_in(
                "policy.yaml",
                "      retain:\n        cameraFootage: P14D",
                "      retainMeans: DeleteBy\n      retain:\n        cameraFootage: P14D",
            )),
            "retainMeans: purpose `cctv` is DeleteBy",
        ),
        // A released police report keeping a year.
        (
            "policy-hold",
            Box::new(replace_in(
                "policy.yaml",
                "    - reason: PoliceReport\n      keep: P0D",
                "    - reason: PoliceReport\n      keep: P1Y",
            )),
            "holdRelease: `PoliceReport` keeps P1Y",
        ),
        // The release rule dropped from the policy.
        (
            "policy-no-hold",
            Box::new(replace_in(
                "policy.yaml",
                "  holdRelease:\n    - reason: PoliceReport\n      keep: P0D\n",
                "",
            )),
            "holdRelease: clause 10 states a release rule for `PoliceReport`",
        ),
        // A purpose renamed in the policy and the bucket's classify rules.
        (
            "policy-renamed",
            Box::new(|f: &str, text: String| {
                if f == "README.md" {
                    text
                } else {
                    text.replace("feedback-bank", "feedback-lf-bank")
                }
            }),
            "purpose: clause 19 names purpose `feedback-bank`",
        ),
        // The README's period edited.
        (
            "readme-period",
            Box::new(replace_in(
                "README.md",
                "`cctv.retain.cameraFootage: P14D`",
                "`cctv.retain.cameraFootage: P7D`",
            )),
            "retention: purpose `cctv` keeps `cameraFootage` P14D",
        ),
        // The README names a purpose the policy does not have.
        (
            "readme-purpose",
            Box::new(replace_in(
                "README.md",
                "purposes `cctv`, `cctv-tegeluddsvagen`",
                "purposes `cctv`, `cctv-tegeluddsvagen`, `cctv-kista`",
            )),
            "purpose: clause 1 names purpose `cctv-kista`",
        ),
        // The README no longer names a controller.
        (
            "readme-controller",
            Box::new(|f: &str, text: String| {
                if f == "README.md" {
                    text.replace("Länsförsäkringar Bank AB (publ)", "the bank")
                } else {
                    text
                }
            }),
            "controller: `Länsförsäkringar Bank AB (publ)` is not named",
        ),
    ];
    for (test, edit, expected) in cases {
        let (record, readme) = altered(test, edit);
        let problems = readme_diff(&record, &readme);
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{test}: expected a problem starting {expected:?}, got {problems:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The rendered record

/// Parses CSV (RFC 4180: quoted fields, doubled quotes, line breaks inside quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "an unterminated quoted field");
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[test]
fn markdown_and_csv_carry_every_row_and_hold_of_each_notice() {
    for dir in notices() {
        let name = name_of(&dir);
        let record = record_of(&dir);
        let md = records::render_markdown(&record);
        assert!(
            md.starts_with("# Retention record (GDPR Art. 30(1)(f))\n"),
            "{name}: {md}"
        );
        for c in &record.controllers {
            assert!(
                md.contains(&format!("\n## {}\n", c.name_with_number())),
                "{name}: a section for {}",
                c.legal_name
            );
        }
        let lines: Vec<&str> = md.lines().collect();
        for r in record.controllers.iter().flat_map(|c| &c.rows) {
            let wanted = [
                format!("| `{}` |", r.purpose),
                format!("| {} |", r.kind),
                format!("({}) | {} |", r.retention, r.means()),
                r.legal_basis(),
            ];
            assert!(
                lines
                    .iter()
                    .any(|l| wanted.iter().all(|w| l.contains(w.as_str()))),
                "{name}: no Markdown row with {wanted:?}"
            );
        }

        let csv = parse_csv(&records::render_csv(&record));
        let header = &csv[0];
        assert_eq!(header[0], "record");
        assert!(
            csv.iter().all(|row| row.len() == header.len()),
            "{name}: ragged CSV"
        );
        let col = |h: &str| {
            header
                .iter()
                .position(|x| x == h)
                .unwrap_or_else(|| panic!("CSV column {h}"))
        };
        let body = &csv[1..];
        let n_rows: usize = record.controllers.iter().map(|c| c.rows.len()).sum();
        let n_holds: usize = record.controllers.iter().map(|c| c.holds.len()).sum();
        assert_eq!(
            body.iter().filter(|r| r[0] == "retention").count(),
            n_rows,
            "{name}: one CSV line per retention row"
        );
        assert_eq!(
            body.iter().filter(|r| r[0] == "hold").count(),
            n_holds,
            "{name}: one CSV line per hold reason and controller"
        );
        for c in &record.controllers {
            for r in &c.rows {
                assert!(
                    body.iter()
                        .any(|line| line[col("controller")] == c.legal_name
                            && line[col("purpose")] == r.purpose
                            && line[col("category")] == r.kind
                            && line[col("retention_iso")] == r.retention
                            && line[col("means")] == r.means()
                            && line[col("use_limit_iso")]
                                == r.use_limit.clone().unwrap_or_default()),
                    "{name}: no CSV line for {} {} {}",
                    c.legal_name,
                    r.purpose,
                    r.kind
                );
            }
            for h in &c.holds {
                assert!(
                    body.iter()
                        .any(|line| line[col("controller")] == c.legal_name
                            && line[col("hold_reason")] == records::reason_name(h.reason)
                            && line[col("kept_after_hold_iso")] == h.keep
                            && line[col("max_hold_iso")] == h.max_hold.clone().unwrap_or_default()),
                    "{name}: no CSV line for hold {:?} of {}",
                    h.reason,
                    c.legal_name
                );
            }
        }
    }
}

#[test]
fn lansforsakringar_names_three_controllers_with_their_purposes() {
    let record = record_of(&repo().join("policies/003-lansforsakringar"));
    let purposes = |name: &str| -> Vec<String> {
        let c = record
            .controllers
            .iter()
            .find(|c| c.legal_name == name)
            .unwrap_or_else(|| panic!("controller {name}"));
        let mut p: Vec<String> = c.rows.iter().map(|r| r.purpose.clone()).collect();
        p.dedup();
        p
    };
    assert_eq!(
        record
            .controllers
            .iter()
            .map(|c| c.legal_name.as_str())
            .collect::<Vec<_>>(),
        [
            "Länsförsäkringar Stockholm",
            "Länsförsäkringar AB",
            "Länsförsäkringar Bank AB (publ)"
        ]
    );
    assert_eq!(
        purposes("Länsförsäkringar Stockholm"),
        ["cctv", "visitors", "threat", "quality", "feedback"]
    );
    assert_eq!(
        purposes("Länsförsäkringar AB"),
        ["cctv-tegeluddsvagen", "visitors-tegeluddsvagen"]
    );
    assert_eq!(
        purposes("Länsförsäkringar Bank AB (publ)"),
        ["quality-bank", "feedback-bank"]
    );
    // The policy's hold release applies to every controller of its purposes.
    for c in &record.controllers {
        assert_eq!(c.holds.len(), 1, "{}", c.legal_name);
        assert_eq!(c.holds[0].reason, HoldReason::PoliceReport);
    }
    let visitors = record.controllers[0]
        .rows
        .iter()
        .find(|r| r.purpose == "visitors")
        .expect("visitors");
    assert_eq!(visitors.means(), "deleted by");
    assert_eq!(visitors.time_zone, "Europe/Stockholm");
}

// ---------------------------------------------------------------------------------------------
// The command

fn gallring(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the gallring binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn records_command_prints_markdown_and_csv() {
    let out = gallring(&["records", "-m", "policies/003-lansforsakringar"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert_eq!(
        md,
        records::render_markdown(&record_of(&repo().join("policies/003-lansforsakringar")))
            .replace(&format!("{}/", repo().display()), ""),
        "the command prints the library's Markdown"
    );
    assert!(md.contains("## Länsförsäkringar Bank AB (publ)\n"), "{md}");
    assert!(
        md.contains("| `visitors` |")
            && md.contains("| visitorRecord | 1 day (P1D) | deleted by |"),
        "{md}"
    );
    assert!(
        md.contains("| police report (`PoliceReport`) | nothing (P0D) |"),
        "{md}"
    );

    let out = gallring(&["records", "-m", "policies/004-claims-link", "-o", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = parse_csv(&stdout(&out));
    assert_eq!(csv.len(), 2, "a header and one row: {csv:?}");
    let row: std::collections::BTreeMap<&str, &str> = csv[0]
        .iter()
        .map(String::as_str)
        .zip(csv[1].iter().map(String::as_str))
        .collect();
    assert_eq!(row["record"], "retention");
    assert_eq!(row["controller"], "Claims Link AB");
    assert_eq!(row["org_number"], "559052-1984");
    assert_eq!(row["contact"], "dpo@claimslink.se");
    assert_eq!(row["purpose"], "customer-survey");
    assert_eq!(row["legal_basis"], "Art. 6(1)(f) legitimate interests");
    assert_eq!(row["category"], "surveyResponse");
    assert_eq!(row["retention"], "180 days");
    assert_eq!(row["retention_iso"], "P180D");
    assert_eq!(row["means"], "deleted by");
    assert_eq!(row["counted_from"], "recording time");
    assert_eq!(row["time_zone"], "Europe/Stockholm");
}

const SHARED: &str = "apiVersion: gallring.io/v1alpha1
kind: RetentionPolicy
metadata: {name: inspectors, namespace: ns}
spec:
  controller: {legalName: Example Forsikring A/S, orgNumber: '12345678', contact: dpo@example.dk}
  purposes:
    - name: call-centre
      description: 'Training, analysis | documentation'
      legalBasis: {article6: consent, article9: explicitConsent}
      withdrawable: true
      retain: {audio: P30D, transcript: P30D}
    - name: not-relevant
      legalBasis: {article6: legitimateInterests, article9: legalClaims}
      from: {tag: assessed-at, ifMissing: RecordingTime}
      retain: {audio: P0D}
    - name: contract
      legalBasis: {article6: contract}
      from: {metadata: contract-ended-at}
      retain: {audio: P5Y}
      useFor: {audio: P1Y}
      controller: {legalName: Example Pension A/S}
  holdRelease:
    - {reason: AccessRequest, keep: P0D, maxHold: P1Y}
    - {reason: Dispute, keep: P3Y}
---
apiVersion: gallring.io/v1alpha1
kind: RetentionPolicy
metadata: {name: quality, namespace: other}
spec:
  controller: {legalName: Example Forsikring A/S, orgNumber: '12345678'}
  timeZone: Europe/Copenhagen
  purposes:
    - name: quality
      legalBasis: {article6: legitimateInterests}
      retainMeans: DeleteBy
      retain: {chat: P6M}
";

#[test]
fn several_policies_share_a_controller_section_and_name_their_policy() {
    let dir = scratch("shared");
    std::fs::write(dir.join("policies.yaml"), SHARED).expect("write");
    let out = gallring(&["records", "-m", dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let md = stdout(&out);
    assert_eq!(
        md.matches("\n## Example Forsikring A/S (12345678)\n")
            .count(),
        1,
        "one section per controller: {md}"
    );
    assert!(md.contains("\n## Example Pension A/S\n"), "{md}");
    assert!(md.contains("Contact: dpo@example.dk"), "{md}");
    for needle in [
        "| `ns/inspectors` | `call-centre` | Training, analysis \\| documentation | Art. 6(1)(a) consent; Art. 9(2)(a) explicit consent | yes | audio | 30 days (P30D) | kept at least | recording time | - | UTC |",
        "| `ns/inspectors` | `call-centre` | as above |",
        "| `ns/inspectors` | `not-relevant` | - | Art. 6(1)(f) legitimate interests; Art. 9(2)(f) legal claims | no | audio | none (P0D) | kept at least | tag assessed-at (the recording time when it is missing) |",
        "| `ns/inspectors` | `contract` | - | Art. 6(1)(b) contract | no | audio | 5 years (P5Y) | kept at least | metadata contract-ended-at (no deadline until it is set) | 1 year (P1Y) | UTC |",
        "| `other/quality` | `quality` | - | Art. 6(1)(f) legitimate interests | no | chat | 6 months (P6M) | deleted by | recording time | - | Europe/Copenhagen |",
        "| `ns/inspectors` | access request (`AccessRequest`) | nothing (P0D) | 1 year (P1Y) after the hold's limitation start, else its creation |",
        "| `ns/inspectors` | dispute (`Dispute`) | 3 years (P3Y) from the hold's limitation start, else from its end | no limit: while the case needs it |",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    // The pension company's section lists the release rules of the policy its purpose is in,
    // and not the other policy's (which has none).
    let pension = &md[md.find("## Example Pension A/S").expect("section")..];
    assert!(
        pension.contains("| `ns/inspectors` | dispute (`Dispute`)"),
        "{pension}"
    );

    let out = gallring(&["records", "-m", dir.to_str().expect("utf-8"), "-o", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = parse_csv(&stdout(&out));
    // 2 + 1 + 1 + 1 retention rows; 2 holds for each controller of ns/inspectors.
    assert_eq!(csv.len(), 1 + 5 + 4, "{csv:#?}");
    assert!(
        csv.iter()
            .any(|r| r.contains(&"Training, analysis | documentation".to_string())),
        "descriptions are one CSV field: {csv:#?}"
    );
}

#[test]
fn bad_input_is_named_by_file_and_field_and_prints_nothing() {
    let dir = scratch("bad");
    let bad = SHARED.replacen("retain: {audio: P5Y}", "retain: {audio: P5Q}", 1);
    std::fs::write(dir.join("policies.yaml"), bad).expect("write");
    let out = gallring(&["records", "-m", dir.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "a bad duration fails");
    assert!(out.stdout.is_empty(), "nothing written: {}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("policies.yaml") && err.contains("spec.purposes[2].retain.audio"),
        "names the file and the field: {err}"
    );

    let dir = scratch("unknown-field");
    std::fs::write(
        dir.join("p.yaml"),
        SHARED.replacen("retainMeans: DeleteBy", "retainMeans: Sometimes", 1),
    )
    .expect("write");
    let out = gallring(&["records", "-m", dir.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("p.yaml") && err.contains("spec.purposes[0].retainMeans"),
        "{err}"
    );

    let dir = scratch("no-policy");
    std::fs::write(dir.join("empty.yaml"), "---\n").expect("write");
    let out = gallring(&["records", "-m", dir.to_str().expect("utf-8")]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("no RetentionPolicy"),
        "{}",
        stderr(&out)
    );

    let out = gallring(&["records", "-m", "no/such/dir"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("no/such/dir"), "{}", stderr(&out));
}
