//! The `gallring` binary as a user meets it: `crd` output is committed, `plan` works on the
//! shipped example, and bad input gives one clear error naming file, line and field, a non-zero
//! exit, and never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proptest::prelude::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in operator/")
        .to_path_buf()
}

fn gallring(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("the gallring binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn committed_crds_are_current() {
    let generated = gallring::api::crds_yaml().expect("CRDs render");
    let committed = std::fs::read_to_string(repo().join("crds/gallring.yaml")).unwrap_or_default();
    assert!(
        generated == committed,
        "crds/gallring.yaml is stale: run `cargo run -p gallring -- crd > crds/gallring.yaml` and commit it"
    );
}

#[test]
fn crd_command_prints_the_committed_crds() {
    let out = gallring(&["crd"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let committed =
        std::fs::read_to_string(repo().join("crds/gallring.yaml")).expect("crds committed");
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

/// A scratch directory under the target dir, unique per test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const POLICY: &str = "apiVersion: gallring.io/v1alpha1
kind: RetentionPolicy
metadata:
  name: calls
spec:
  controller:
    legalName: Example Forsikring A/S
  purposes:
    - name: documentation
      legalBasis:
        article6: legitimateInterests
      retain:
        audio: P1Y
";

const BUCKET: &str = "apiVersion: gallring.io/v1alpha1
kind: RecordingBucket
metadata:
  name: calls
spec:
  s3:
    bucket: calls
  policyRef:
    name: calls
  classify:
    - match:
        prefix: audio/
      kind: audio
      purposes: [documentation]
";

const OBJECTS: &str = r#"{"key":"audio/1.wav","lastModified":"2026-01-31T10:00:00Z","size":10}
{"key":"other/1.bin","lastModified":"2026-01-31T10:00:00Z","size":10}
"#;

/// Writes the manifests and objects and runs `plan`.
fn plan_with(name: &str, manifests: &str, objects: &str, extra: &[&str]) -> Output {
    let dir = scratch(name);
    std::fs::write(dir.join("manifests.yaml"), manifests).expect("write");
    std::fs::write(dir.join("objects.jsonl"), objects).expect("write");
    let m = dir.join("manifests.yaml");
    let o = dir.join("objects.jsonl");
    let mut args = vec![
        "plan",
        "--manifests",
        m.to_str().expect("utf-8 path"),
        "--objects",
        o.to_str().expect("utf-8 path"),
        "--at",
        "2027-02-01T00:00:00Z",
    ];
    args.extend_from_slice(extra);
    gallring(&args)
}

fn assert_clean_failure(out: &Output, must_contain: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "should fail; stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    for needle in must_contain {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert!(out.stdout.is_empty(), "no partial output on error");
}

#[test]
fn plan_gives_the_deadline_and_leaves_unmatched_objects_alone() {
    let out = plan_with(
        "ok",
        &format!("{POLICY}---\n{BUCKET}"),
        OBJECTS,
        &["-o", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["key"], "audio/1.wav");
    assert_eq!(lines[0]["deadline"], "2027-01-31T10:00:00Z");
    assert_eq!(lines[0]["decision"], "delete");
    assert_eq!(lines[0]["kind"], "audio");
    assert_eq!(lines[0]["purposes"][0], "documentation");
    assert_eq!(lines[0]["recordedAt"], "2026-01-31T10:00:00Z");
    assert_eq!(lines[1]["decision"], "unclassified");
    for field in [
        "key",
        "kind",
        "purposes",
        "recordedAt",
        "deadline",
        "decision",
        "reason",
        "tag",
    ] {
        assert!(lines[0].get(field).is_some(), "missing {field}");
    }
}

#[test]
fn plan_table_has_a_summary_line() {
    let out = plan_with("table", &format!("{POLICY}---\n{BUCKET}"), OBJECTS, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 objects at 2027-02-01T00:00:00Z: 0 keep, 0 held, 1 delete (0 overdue), 1 unclassified"), "{text}");
    assert!(text.contains("gallring-expire-365d"), "{text}");
}

#[test]
fn a_wrong_type_names_file_document_and_field() {
    let bad = BUCKET.replace("purposes: [documentation]", "purposes: documentation");
    let out = plan_with("wrongtype", &format!("{POLICY}---\n{bad}"), OBJECTS, &[]);
    assert_clean_failure(
        &out,
        &["manifests.yaml", "document 2", "spec.classify[0].purposes"],
    );
}

#[test]
fn an_unknown_kind_is_rejected() {
    let bad = POLICY.replace("kind: RetentionPolicy", "kind: RetentionPolicyy");
    let out = plan_with("unknownkind", &bad, OBJECTS, &[]);
    assert_clean_failure(&out, &["document 1", "unknown kind `RetentionPolicyy`"]);
}

#[test]
fn a_negative_duration_names_the_field() {
    let bad = POLICY.replace("audio: P1Y", "audio: P-1Y");
    let out = plan_with("negative", &format!("{bad}---\n{BUCKET}"), OBJECTS, &[]);
    assert_clean_failure(&out, &["spec.purposes[0].retain.audio", "negative"]);
}

#[test]
fn an_unknown_field_is_rejected_by_name() {
    let bad = POLICY.replace("  purposes:", "  purpose:\n    - x\n  purposes:");
    let out = plan_with("unknownfield", &format!("{bad}---\n{BUCKET}"), OBJECTS, &[]);
    assert_clean_failure(&out, &["unknown field `purpose`"]);
}

#[test]
fn a_reference_to_a_missing_policy_is_named() {
    let bad = BUCKET.replace(
        "  policyRef:\n    name: calls",
        "  policyRef:\n    name: nope",
    );
    let out = plan_with("missingref", &format!("{POLICY}---\n{bad}"), OBJECTS, &[]);
    assert_clean_failure(&out, &["spec.policyRef.name", "`nope` not found"]);
}

#[test]
fn a_classify_rule_naming_an_undefined_purpose_is_named() {
    let bad = BUCKET.replace("purposes: [documentation]", "purposes: [marketing]");
    let out = plan_with(
        "undefinedpurpose",
        &format!("{POLICY}---\n{bad}"),
        OBJECTS,
        &[],
    );
    assert_clean_failure(
        &out,
        &["spec.classify[0].purposes[0]", "`marketing` is not defined"],
    );
}

#[test]
fn truncated_yaml_is_an_error_not_a_panic() {
    let text = format!("{POLICY}---\n{BUCKET}");
    let out = plan_with("truncated", &text[..text.len() - 30], OBJECTS, &[]);
    assert_clean_failure(&out, &["manifests.yaml"]);
}

#[test]
fn a_malformed_objects_line_names_the_line_and_field() {
    let objects = format!("{OBJECTS}{{\"key\":\"audio/2.wav\",\"lastModified\":\"yesterday\"}}\n");
    let out = plan_with("badline", &format!("{POLICY}---\n{BUCKET}"), &objects, &[]);
    assert_clean_failure(&out, &["objects.jsonl: line 3", "lastModified"]);
    let huge =
        r#"{"key":"a","lastModified":"2026-01-01T00:00:00Z","size":99999999999999999999999}"#;
    let out = plan_with("hugeline", &format!("{POLICY}---\n{BUCKET}"), huge, &[]);
    assert_clean_failure(&out, &["objects.jsonl: line 1", "size"]);
}

#[test]
fn a_missing_file_is_named() {
    let out = gallring(&[
        "plan",
        "--manifests",
        "/nonexistent/x.yaml",
        "--objects",
        "/nonexistent/o.jsonl",
    ]);
    assert_clean_failure(&out, &["/nonexistent/x.yaml", "cannot read"]);
}

#[test]
fn several_buckets_need_a_choice() {
    let second = BUCKET.replace("  name: calls\nspec", "  name: calls-2\nspec");
    let text = format!("{POLICY}---\n{BUCKET}---\n{second}");
    let out = plan_with("several", &text, OBJECTS, &[]);
    assert_clean_failure(&out, &["--bucket", "default/calls", "default/calls-2"]);
    let out = plan_with("several-pick", &text, OBJECTS, &["--bucket", "calls-2"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_as_manifests_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let mut m = gallring::input::Manifests::default();
        if m.add_text(Path::new("fuzz.yaml"), &text).is_ok() {
            let _ = m.compile();
        }
    }

    #[test]
    fn damaged_manifests_never_panic(cut in 0usize..600, junk in "[ -~\n]{0,12}") {
        let text = format!("{POLICY}---\n{BUCKET}");
        let cut = cut.min(text.len());
        let damaged = format!("{}{junk}{}", &text[..cut], &text[cut..]);
        let mut m = gallring::input::Manifests::default();
        if m.add_text(Path::new("fuzz.yaml"), &damaged).is_ok() {
            let _ = m.compile();
        }
    }

    #[test]
    fn random_objects_lines_never_panic(line in "\\PC{0,200}") {
        let _ = gallring::input::parse_objects(Path::new("fuzz.jsonl"), &line);
    }

    #[test]
    fn json_with_odd_values_never_panics(
        size in prop::sample::select(vec!["0", "-1", "1e400", "18446744073709551616", "\"10\"", "null"]),
        lm in prop::sample::select(vec!["\"2026-01-01T00:00:00Z\"", "\"+275760-09-13T00:00:00Z\"", "0", "\"\""]),
    ) {
        let line = format!(r#"{{"key":"k","lastModified":{lm},"size":{size}}}"#);
        let _ = gallring::input::parse_objects(Path::new("fuzz.jsonl"), &line);
    }
}

/// Two controllers, a maximum and an event-anchored purpose, in Stockholm time.
const NOTICE_POLICY: &str = "apiVersion: gallring.io/v1alpha1
kind: RetentionPolicy
metadata:
  name: calls
spec:
  controller:
    legalName: Exempel AB
  timeZone: Europe/Stockholm
  purposes:
    - name: survey
      legalBasis:
        article6: legitimateInterests
      retain:
        surveyResponse: P180D
      retainMeans: DeleteBy
    - name: assessed
      legalBasis:
        article6: legitimateInterests
      retain:
        inspection: P0D
      from:
        tag: assessed-at
      controller:
        legalName: Exempel Bank AB
";

const NOTICE_BUCKET: &str = "apiVersion: gallring.io/v1alpha1
kind: RecordingBucket
metadata:
  name: calls
spec:
  s3:
    bucket: calls
  policyRef:
    name: calls
  classify:
    - match:
        prefix: survey/
      kind: surveyResponse
      purposes: [survey]
    - match:
        prefix: inspection/
      kind: inspection
      purposes: [assessed]
";

#[test]
fn plan_shows_controller_maximum_and_anchor_per_object_in_table_and_json() {
    let manifests = format!("{NOTICE_POLICY}---\n{NOTICE_BUCKET}");
    let objects = r#"{"key":"survey/1.json","lastModified":"2026-08-01T10:00:00Z","size":10}
{"key":"inspection/1.wav","lastModified":"2026-08-01T10:00:00Z","size":10,"tags":{"assessed-at":"2026-08-19"}}
{"key":"inspection/2.wav","lastModified":"2026-08-01T10:00:00Z","size":10}
"#;
    let out = plan_with("notice-json", &manifests, objects, &["-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let by_key = |k: &str| {
        lines
            .iter()
            .find(|l| l["key"] == k)
            .cloned()
            .unwrap_or_else(|| panic!("{k} planned"))
    };
    let survey = by_key("survey/1.json");
    // Uploaded 1 August 12:00 in Stockholm (10:00 UTC, summer time): 180 local days later is
    // 28 January 12:00 in Stockholm, which is 11:00 UTC in winter time; two days' grace before.
    assert_eq!(survey["maximum"], "2027-01-28T11:00:00Z");
    assert_eq!(survey["deadline"], "2027-01-26T11:00:00Z");
    assert_eq!(survey["controllers"][0], "Exempel AB");
    assert_eq!(survey["anchor"], "recorded-at");
    let assessed = by_key("inspection/1.wav");
    // A date-only assessment is midnight in Stockholm (UTC+2 in August).
    assert_eq!(assessed["anchor"], "tag `assessed-at`");
    assert_eq!(assessed["anchorAt"], "2026-08-18T22:00:00Z");
    assert_eq!(assessed["deadline"], "2026-08-18T22:00:00Z");
    assert_eq!(assessed["controllers"][0], "Exempel Bank AB");
    let pending = by_key("inspection/2.wav");
    assert_eq!(pending["decision"], "keep");
    assert_eq!(pending["anchor"], "event pending");
    assert!(pending["deadline"].is_null(), "{pending}");

    let out = plan_with("notice-table", &manifests, objects, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for header in ["GONE BY", "CONTROLLER", "FROM"] {
        assert!(text.contains(header), "{header}: {text}");
    }
    assert!(text.contains("dates in Europe/Stockholm"), "{text}");
    assert!(text.contains("2027-01-28"), "{text}");
    assert!(text.contains("Exempel Bank AB"), "{text}");
    assert!(text.contains("By controller: Exempel AB: 1"), "{text}");
}

#[test]
fn an_unknown_time_zone_and_a_use_limit_beyond_the_retention_are_named() {
    let bad = NOTICE_POLICY
        .replace("Europe/Stockholm", "Europe/Atlantis")
        .replace(
            "      retainMeans: DeleteBy\n",
            "      retainMeans: DeleteBy\n      useFor:\n        surveyResponse: P1Y\n",
        );
    let out = plan_with(
        "bad-zone",
        &format!("{bad}---\n{NOTICE_BUCKET}"),
        OBJECTS,
        &[],
    );
    assert_clean_failure(
        &out,
        &[
            "spec.timeZone",
            "Europe/Atlantis",
            "spec.purposes[0].useFor.surveyResponse",
        ],
    );
}
