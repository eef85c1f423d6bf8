//! The journal as evidence (issue 11) on the real binary and the real store: passes that seal
//! every segment with the host's key, `gallring journal verify` that accepts the journal under
//! that key, and catches a segment rewritten on Ceph behind gallring's back, even with its hash
//! chain recomputed, and a journal checked against another key.

use std::process::{Command, Output};

use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};

use super::cases::{OLD, call, clean};
use super::model::{HoldDef, Reason};
use super::world::{Options, Scenario};

fn gallring(args: &[&str], s: &Scenario) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(args)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(&s.dir)
        .output()
        .expect("gallring runs")
}

fn verify(s: &Scenario, public_key: &str) -> Output {
    let manifests = s.dir.join("manifests");
    gallring(
        &[
            "journal",
            "verify",
            "--manifests",
            manifests.to_str().expect("utf-8"),
            "--public-key",
            public_key,
        ],
        s,
    )
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_journal_verifies_and_a_rewritten_segment_is_caught_even_rechained() {
    let dir = std::env::temp_dir().join(format!("gallring-evidence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key_file = dir.join("journal.key");
    let _ = std::fs::remove_file(&key_file);
    let out = Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(["journal", "keygen", "--out"])
        .arg(&key_file)
        .output()
        .expect("keygen runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let public = printed
        .lines()
        .find_map(|l| l.strip_prefix("public key "))
        .unwrap_or_else(|| panic!("no public key in {printed}"))
        .to_string();
    // Never over an existing key.
    let again = Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(["journal", "keygen", "--out"])
        .arg(&key_file)
        .output()
        .expect("keygen runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));

    let mut s = Scenario::with(
        "evidence",
        Options {
            journal_signing_key: Some(key_file.clone()),
            ..Options::default()
        },
    )
    .await;
    let mut specs = call("r60", OLD, 0, 0);
    specs.extend(call("r61", OLD, 0, 0));
    s.seed(specs).await;
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r61"], &[]));
    s.write_manifests();
    assert!(clean(&mut s, "sealed").await, "log {}", s.last_log());
    assert!(clean(&mut s, "sealed-again").await, "log {}", s.last_log());

    let ok = verify(&s, &public);
    let text = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(
        ok.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("verified    yes"), "{text}");
    assert!(
        text.contains("(checked against the expected key)"),
        "{text}"
    );
    assert!(
        !text.contains("unsealed"),
        "every segment is sealed: {text}"
    );

    // Another key: refused, naming it; a value that is no key at all: named as such.
    let other = gallring::state::seal::Signer::from_seed([4; 32]).public_hex();
    let wrong = verify(&s, &other);
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr).to_string();
    assert!(
        err.contains(&format!("does not verify under {other}")),
        "{err}"
    );
    let junk = verify(&s, "not-a-key");
    assert!(!junk.status.success());
    assert!(
        String::from_utf8_lossy(&junk.stderr).contains("public key `not-a-key`"),
        "{}",
        String::from_utf8_lossy(&junk.stderr)
    );

    // Someone with write access to the bucket, but not the key, rewrites the first segment
    // (the complaint's case number) and recomputes every later `prev` so the chain holds.
    let prefix = ".gallring/journal/";
    let listed =
        s.s3.list_objects_v2()
            .bucket(&s.bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list the journal");
    let mut keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    keys.sort();
    assert!(keys.len() >= 2, "segments: {keys:?}");
    let mut head = "0".repeat(64);
    let mut changed = false;
    for key in &keys {
        let body =
            s.s3.get_object()
                .bucket(&s.bucket)
                .key(key)
                .send()
                .await
                .expect("read a segment")
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes();
        let mut out = Vec::new();
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let mut v: serde_json::Value = serde_json::from_slice(line).expect("a record");
            if v["fact"] == "holdApplied" && !changed {
                v["case"] = serde_json::Value::String("FORGED-1".into());
                changed = true;
            }
            v["prev"] = serde_json::Value::String(head.clone());
            let new = serde_json::to_vec(&v).expect("json");
            head = hex_sha256(&new);
            out.extend_from_slice(&new);
            out.push(b'\n');
        }
        // Object Lock (GOVERNANCE) protects journal objects only when the state sets a
        // retention; here a new version replaces the current one, as an intruder's would.
        s.s3.put_object()
            .bucket(&s.bucket)
            .key(key)
            .body(ByteStream::from(out))
            .send()
            .await
            .expect("rewrite a segment");
    }
    assert!(changed, "the journal records the complaint hold");
    let forged = verify(&s, &public);
    assert!(
        !forged.status.success(),
        "{}",
        String::from_utf8_lossy(&forged.stdout)
    );
    let err = String::from_utf8_lossy(&forged.stderr).to_string();
    assert!(err.contains("was changed after it was sealed"), "{err}");
    assert!(err.contains(".gallring/seals/"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_lists_what_gallring_deleted_and_held_with_a_signed_summary() {
    let dir = std::env::temp_dir().join(format!("gallring-evidence2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let key_file = dir.join("journal.key");
    std::fs::write(&key_file, format!("{}\n", "5a".repeat(32))).expect("key");
    let signer = gallring::state::seal::Signer::load(&key_file).expect("key");
    let mut s = Scenario::new("evidence-files").await;
    let mut specs = call("r70", OLD, 0, 0);
    specs.extend(call("r71", OLD, 0, 0));
    s.seed(specs).await;
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r71"], &[]));
    s.write_manifests();
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());

    let out_dir = dir.join("evidence");
    let manifests = s.dir.join("manifests");
    let out = gallring(
        &[
            "evidence",
            "--manifests",
            manifests.to_str().expect("utf-8"),
            "--out",
            out_dir.to_str().expect("utf-8"),
            "--journal-signing-key",
            key_file.to_str().expect("utf-8"),
        ],
        &s,
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(out_dir.join(name)).expect(name);
    // r70 is past its deadline: deleted by gallring, confirmed by the store, with what it was.
    let dispositions = read("dispositions.csv");
    let audio = super::cases::key("r70", "audio");
    let row = dispositions
        .lines()
        .find(|l| l.contains(&audio))
        .unwrap_or_else(|| panic!("{audio} not in\n{dispositions}"));
    for want in [
        ",audio,",
        "documentation",
        "Art. 6(1)(f) legitimate interests",
        ",gallring,",
        "the store confirmed the deletion",
    ] {
        assert!(row.contains(want), "{want}: {row}");
    }
    let held = super::cases::key("r71", "audio");
    assert!(!dispositions.contains(&held), "{held} is held, not gone");
    let holds = read("holds.csv");
    assert!(
        holds.contains(",applied,") && holds.contains("complaint"),
        "{holds}"
    );
    let jsonl = read("dispositions.jsonl");
    assert_eq!(
        jsonl.lines().count(),
        dispositions.lines().count() - 1,
        "one JSON line per CSV row"
    );
    // The summary is signed over its exact bytes; any change breaks it.
    let summary = read("summary.json");
    let sig: serde_json::Value =
        serde_json::from_str(&read("summary.json.sig")).expect("signature file");
    let public =
        gallring::state::seal::PublicKey::parse(sig["publicKey"].as_str().expect("public key"))
            .expect("valid key");
    assert_eq!(public.hex(), signer.public_hex());
    let value = sig["value"].as_str().expect("signature");
    assert!(public.verifies_bytes(summary.as_bytes(), value));
    assert!(
        !public.verifies_bytes(
            summary
                .replace("\"holdsApplied\": 1", "\"holdsApplied\": 0")
                .as_bytes(),
            value
        )
    );
    let parsed: serde_json::Value = serde_json::from_str(&summary).expect("json");
    assert_eq!(parsed["overdueNow"], 0, "{summary}");
    assert!(
        parsed["dispositions"].as_u64().unwrap_or(0) >= 2,
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Copies every object under the state prefix to `dir`, keeping the key's layout.
async fn download_state(s: &Scenario, dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut token: Option<String> = None;
    loop {
        let page =
            s.s3.list_objects_v2()
                .bucket(&s.bucket)
                .prefix(".gallring/")
                .set_continuation_token(token.clone())
                .send()
                .await
                .expect("list the state prefix");
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            let body =
                s.s3.get_object()
                    .bucket(&s.bucket)
                    .key(key)
                    .send()
                    .await
                    .expect("read a state object")
                    .body
                    .collect()
                    .await
                    .expect("body")
                    .into_bytes();
            let path = dir.join(key.trim_start_matches(".gallring/"));
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("dir");
            std::fs::write(&path, &body).expect("write");
            n += 1;
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    n
}

/// The journal and the index snapshot are plain JSON Lines: DuckDB alone (no gallring code)
/// answers "what was deleted on day X, under which purpose" with the counts
/// `gallring evidence` gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_the_journal_and_the_snapshot_to_the_counts_of_gallring_evidence() {
    let dir = std::env::temp_dir().join(format!("gallring-duckdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut s = Scenario::new("evidence-duckdb").await;
    let mut specs = call("r80", OLD, 0, 0);
    specs.extend(call("r81", OLD, 0, 0));
    specs.extend(call("r82", OLD, 0, 0));
    s.seed(specs).await;
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r82"], &[]));
    s.write_manifests();
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());
    // A second pass writes the index snapshot once the first listing was complete.
    assert!(clean(&mut s, "again").await, "log {}", s.last_log());

    let out_dir = dir.join("evidence");
    let manifests = s.dir.join("manifests");
    let out = gallring(
        &[
            "evidence",
            "--manifests",
            manifests.to_str().expect("utf-8"),
            "--out",
            out_dir.to_str().expect("utf-8"),
        ],
        &s,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(out_dir.join("dispositions.csv")).expect("csv");
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    // gallring's own count per purpose for deletions it made today.
    let mut want: std::collections::BTreeMap<String, u64> = Default::default();
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(out_dir.join("dispositions.jsonl"))
        .expect("jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a row"))
        .collect();
    for r in rows
        .iter()
        .filter(|r| r["by"] == "gallring" && r["at"].as_str().is_some_and(|a| a.starts_with(&day)))
    {
        for p in r["purposes"].as_array().expect("purposes") {
            *want
                .entry(p.as_str().expect("a name").to_string())
                .or_default() += 1;
        }
    }
    assert!(!want.is_empty(), "gallring deleted something today: {csv}");

    let state = dir.join("state");
    assert!(
        download_state(&s, &state).await > 0,
        "the state prefix has objects"
    );
    let python = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/duckdb-python.sh"
        ))
        .output()
        .expect("duckdb-python.sh runs");
    assert!(
        python.status.success(),
        "no Python with DuckDB: {}",
        String::from_utf8_lossy(&python.stderr)
    );
    let python = String::from_utf8_lossy(&python.stdout).trim().to_string();
    let answer = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/duckdb/journal.py"
        ))
        .arg(&state)
        .arg(&day)
        .output()
        .expect("the DuckDB script runs");
    assert!(
        answer.status.success(),
        "{}",
        String::from_utf8_lossy(&answer.stderr)
    );
    let got: serde_json::Value =
        serde_json::from_slice(&answer.stdout).expect("the script prints JSON");
    let got_deleted: std::collections::BTreeMap<String, u64> = got["deletedByPurpose"]
        .as_object()
        .expect("deletedByPurpose")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().expect("a count")))
        .collect();
    assert_eq!(
        got_deleted, want,
        "DuckDB over the journal vs gallring evidence"
    );
    // The index snapshot answers too: every listed object has a recorded decision.
    let index = got["indexByDecision"].as_object().expect("indexByDecision");
    assert!(
        index.values().filter_map(|v| v.as_u64()).sum::<u64>() > 0,
        "the index snapshot read by DuckDB: {got}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
