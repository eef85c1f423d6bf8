//! Manifests and seed objects for the scenarios.

use chrono::{TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::harness::{E2e, SECRET, repo};

/// A small policy: audio kept `audio` for documentation, 3 years after a complaint closes.
pub fn policy(name: &str, audio: &str) -> Value {
    json!({
        "kind": "RetentionPolicy",
        "metadata": {"name": name},
        "spec": {
            "controller": {"legalName": "E2E Forsikring A/S"},
            "purposes": [{
                "name": "documentation",
                "legalBasis": {"article6": "legitimateInterests"},
                "retain": {"audio": audio, "transcript": audio}
            }],
            "holdRelease": [{"reason": "Complaint", "keep": "P3Y"}]
        }
    })
}

/// A RecordingBucket over `s3_bucket` through `endpoint`, with the test's credentials Secret,
/// calls laid out as `calls/<id>/audio.wav` and `calls/<id>/transcript.json`.
pub fn bucket(name: &str, s3_bucket: &str, endpoint: &str, policy: &str, scan: &str) -> Value {
    json!({
        "kind": "RecordingBucket",
        "metadata": {"name": name},
        "spec": {
            "s3": {
                "bucket": s3_bucket,
                "endpoint": endpoint,
                "region": "us-east-1",
                "forcePathStyle": true,
                "credentials": {"secretRef": {"name": SECRET}}
            },
            "policyRef": {"name": policy},
            "classify": [
                {"match": {"glob": "calls/**/audio.*"}, "kind": "audio", "purposes": ["documentation"]},
                {"match": {"glob": "calls/**/transcript.*"}, "kind": "transcript", "purposes": ["documentation"]}
            ],
            "recordingId": {"keyPattern": "^calls/(?P<id>[^/]+)/"},
            "scanInterval": scan
        }
    })
}

pub fn hold(name: &str, bucket: &str, select: Value) -> Value {
    json!({
        "kind": "LegalHold",
        "metadata": {"name": name},
        "spec": {
            "bucketRef": {"name": bucket},
            "reason": "Complaint",
            "case": format!("E2E-{name}"),
            "owner": "e2e",
            "select": select
        }
    })
}

/// Puts the audio and transcript of each call id (`calls/<id>/...`).
pub async fn seed_calls(e: &E2e, ids: &[&str]) -> Vec<String> {
    let mut keys = Vec::new();
    for id in ids {
        for file in ["audio.wav", "transcript.json"] {
            let key = format!("calls/{id}/{file}");
            e.put(&key, b"recording", &[("source", "e2e")], &[]).await;
            keys.push(key);
        }
    }
    keys
}

fn yaml_docs(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join(path)).expect("manifest");
    serde_norway::Deserializer::from_str(&text)
        .filter_map(|d| Value::deserialize(d).ok())
        .filter(|v| !v.is_null())
        .collect()
}

/// The Tryg manifests (`policies/002-tryg/`), moved into the test's namespace and bucket and
/// pointed at `endpoint`: (policy, bucket).
pub fn tryg(e: &E2e, endpoint: &str) -> (Value, Value) {
    let mut policy = yaml_docs("policies/002-tryg/policy.yaml").remove(0);
    let mut bucket = yaml_docs("policies/002-tryg/bucket.yaml").remove(0);
    for m in [&mut policy, &mut bucket] {
        m["metadata"]["namespace"] = json!(e.ns);
    }
    bucket["spec"]["s3"]["bucket"] = json!(e.bucket);
    bucket["spec"]["s3"]["endpoint"] = json!(endpoint);
    bucket["spec"]["s3"]["credentials"]["secretRef"]["name"] = json!(SECRET);
    (policy, bucket)
}

/// Recordings laid out as Tryg's notice describes (as `operator/examples/seed.rs` does): calls
/// spread over the last four years, archive audio for every call, a transcript and a quality
/// copy with consent, masked advisory text for some, an unmasked advisory segment (kept 0
/// days), and one file no rule covers. Returns the keys.
pub async fn seed_tryg(e: &E2e, calls: u32) -> Vec<String> {
    let now = Utc::now();
    let mut keys = Vec::new();
    for i in 0..calls {
        let age = if i % 5 == 0 {
            TimeDelta::minutes(i64::from(i % 7) + 1)
        } else {
            TimeDelta::days(i64::from((i * 17) % 1460))
        };
        let start = now - age;
        let date = start.format("%Y/%m/%d");
        let id = format!("t-{}-{i:04}", start.format("%Y%m%d"));
        let consent = if i % 3 == 0 { "given" } else { "refused" };
        let subject = format!("tryg-k-{:06x}", i * 7919);
        let cs = start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let meta = [("call-start", cs.as_str())];
        let key = format!("samtaler/{date}/{id}/audio.wav");
        e.put(
            &key,
            &[b'a'; 512],
            &[
                ("consent", consent),
                ("subject", &subject),
                ("source", "telephony"),
            ],
            &meta,
        )
        .await;
        keys.push(key);
        if consent == "given" {
            let key = format!("samtaler/{date}/{id}/transcript.json");
            e.put(
                &key,
                br#"{"text":"..."}"#,
                &[("consent", consent), ("subject", &subject)],
                &meta,
            )
            .await;
            keys.push(key);
            let key = format!("kvalitet/{date}/{id}/audio.wav");
            e.put(&key, &[b'q'; 256], &[("consent", consent)], &meta)
                .await;
            keys.push(key);
        }
        if i % 4 == 0 {
            let key = format!("raadgivning/{date}/{id}/seg-1.masked.json");
            e.put(&key, br#"{"text":"[MASKED]"}"#, &[], &meta).await;
            keys.push(key);
        }
    }
    let unmasked = format!(
        "raadgivning/{}/t-unmasked/seg-9.json",
        now.format("%Y/%m/%d")
    );
    e.put(&unmasked, br#"{"text":"unmasked"}"#, &[], &[]).await;
    keys.push(unmasked);
    e.put("eksport/2024-rapport.csv", b"a,b\n", &[], &[]).await;
    keys.push("eksport/2024-rapport.csv".into());
    keys
}
