//! `gallring explain KEY` on the real binary and the real store, after a real pass: a kept
//! recording, a held one (linked by recording id), one gallring deleted and one someone else
//! removed (journaled at the next pass), each explained from what the store and the journal
//! say.

use std::process::Command;

use super::cases::{FRESH, OLD, call, clean, key};
use super::model::{HoldDef, Reason};
use super::world::Scenario;

fn explain(s: &Scenario, key: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gallring"))
        .arg("explain")
        .arg("--manifests")
        .arg(s.dir.join("manifests"))
        .arg(key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("gallring runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "gallring explain {key} failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn line<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_tells_why_a_recording_is_kept_held_or_gone() {
    let mut s = Scenario::new("explain").await;
    let mut specs = call("r50", FRESH, 0, 0);
    specs.extend(call("r51", OLD, 0, 0));
    specs.extend(call("r52", OLD, 0, 0));
    s.seed(specs).await;
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r52"], &[]));
    s.write_manifests();
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());

    let kept = explain(&s, &key("r50", "audio"));
    assert!(line(&kept, "present").contains("yes"), "{kept}");
    assert!(
        line(&kept, "decision").starts_with("decision    keep"),
        "{kept}"
    );
    // Recorded-at comes from metadata here, which lifecycle cannot count from: gallring's own.
    assert!(
        line(&kept, "tag").contains(
            "gallring.io/retention=operator: no lifecycle rule matches it; gallring deletes it itself"
        ),
        "{kept}"
    );
    assert!(line(&kept, "deadline").contains('T'), "{kept}");
    assert!(line(&kept, "journal").contains("first seen"), "{kept}");

    // Held through its recording id: the transcript too.
    let held = explain(&s, &key("r52", "transcript"));
    assert!(line(&held, "decision").contains("held"), "{held}");
    assert!(line(&held, "holds").contains("complaint"), "{held}");
    assert!(
        line(&held, "legal hold").contains("on (set by gallring)"),
        "{held}"
    );

    let deleted = explain(&s, &key("r51", "audio"));
    assert!(line(&deleted, "present").contains("no"), "{deleted}");
    assert!(deleted.contains("deletion intended"), "{deleted}");
    assert!(deleted.contains("deleted by gallring"), "{deleted}");
}
