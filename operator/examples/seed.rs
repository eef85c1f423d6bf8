//! Fills a bucket on the local S3 server with synthetic recordings, for the demo and the
//! benchmark. Talks only to the endpoint in GALLRING_S3_ENDPOINT (loopback in this project).
//!
//! cargo run --example seed -- --bucket tryg-opkald --layout tryg --calls 80 --recreate
//! cargo run --example seed -- --bucket bench --layout flat --count 20000 --recreate

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{TimeDelta, Utc};
use clap::{Parser, ValueEnum};
use futures::StreamExt;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    bucket: String,
    #[arg(long, value_enum, default_value_t = Layout::Tryg)]
    layout: Layout,
    /// Calls to create (tryg layout); each makes 1–4 objects.
    #[arg(long, default_value_t = 80)]
    calls: u32,
    /// Objects to create (flat layout).
    #[arg(long, default_value_t = 20_000)]
    count: u32,
    /// Delete and re-create the bucket first.
    #[arg(long)]
    recreate: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Create the bucket with Object Lock (so that holds set legal holds). Needs a bucket
    /// that does not exist yet: objects under a legal hold cannot be deleted to re-create it.
    #[arg(long, conflicts_with = "recreate")]
    object_lock: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Layout {
    /// The Tryg notice (policies/002-tryg): archive audio and transcripts, quality copies,
    /// masked advisory text; calls from the last four years, some with consent.
    Tryg,
    /// Small untagged objects under bench/, for the benchmark.
    Flat,
}

struct Obj {
    key: String,
    body: Vec<u8>,
    tags: Vec<(String, String)>,
    call_start: Option<String>,
}

/// Calls under a case in the demo (`demo/manifests` holds them by subject): call index, age in
/// days, case. Both are older than the archive audio's one year, so only the hold keeps them:
/// 30 (consent given: audio, transcript and quality copy) has an open complaint; 41 (audio
/// only) an access request that the demo answers while it runs.
const CASE_CALLS: [(u32, i64, &str); 2] = [(30, 400, "complaint"), (41, 380, "access-request")];

/// The objects, and for each case call present `(case, subject, key prefix of the call)`.
fn tryg_objects(calls: u32) -> (Vec<Obj>, Vec<(&'static str, String, String)>) {
    let now = Utc::now();
    let mut out = Vec::new();
    let mut cases = Vec::new();
    for i in 0..calls {
        let case = CASE_CALLS.iter().find(|(n, _, _)| *n == i);
        // Spread calls over four years; every fifth call is from the last minutes, so its
        // deadline is lifecycle-expressible and RGW's fast lifecycle days can act on it.
        let age = if let Some((_, days, _)) = case {
            TimeDelta::days(*days)
        } else if i % 5 == 0 {
            TimeDelta::minutes(i64::from(i % 7) + 1)
        } else {
            TimeDelta::days(i64::from((i * 17) % 1460))
        };
        let start = now - age;
        let date = start.format("%Y/%m/%d");
        let id = format!("t-{}-{i:04}", start.format("%Y%m%d"));
        let consent = if i % 3 == 0 { "given" } else { "refused" };
        let subject = format!("tryg-k-{:06x}", i * 7919);
        if let Some((_, _, name)) = case {
            cases.push((*name, subject.clone(), format!("samtaler/{date}/{id}/")));
        }
        let cs = Some(start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let tags = |extra: &[(&str, &str)]| {
            let mut t = vec![("consent".to_string(), consent.to_string())];
            t.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            t
        };
        out.push(Obj {
            key: format!("samtaler/{date}/{id}/audio.wav"),
            body: vec![b'a'; 512],
            tags: tags(&[("subject", &subject), ("source", "telephony")]),
            call_start: cs.clone(),
        });
        if consent == "given" {
            out.push(Obj {
                key: format!("samtaler/{date}/{id}/transcript.json"),
                body: br#"{"text":"..."}"#.to_vec(),
                tags: tags(&[("subject", &subject)]),
                call_start: cs.clone(),
            });
            out.push(Obj {
                key: format!("kvalitet/{date}/{id}/audio.wav"),
                body: vec![b'q'; 256],
                tags: tags(&[]),
                call_start: cs.clone(),
            });
        }
        if i % 4 == 0 {
            out.push(Obj {
                key: format!("raadgivning/{date}/{id}/seg-1.masked.json"),
                body: br#"{"text":"[MASKED] ..."}"#.to_vec(),
                tags: vec![],
                call_start: cs.clone(),
            });
        }
    }
    // Something no rule covers: reported as unclassified, never deleted.
    out.push(Obj {
        key: "eksport/2024-rapport.csv".into(),
        body: b"a,b\n".to_vec(),
        tags: vec![],
        call_start: None,
    });
    (out, cases)
}

fn flat_objects(count: u32) -> Vec<Obj> {
    (0..count)
        .map(|i| Obj {
            key: format!("bench/{:03}/{i:08}.wav", i % 256),
            body: vec![b'b'; 64],
            tags: vec![],
            call_start: None,
        })
        .collect()
}

async fn recreate(client: &Client, bucket: &str) -> Result<(), String> {
    // Empty the bucket (all versions) and delete it; missing is fine.
    let mut token = None;
    loop {
        let page = match client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
        {
            Ok(p) => p,
            Err(_) => break,
        };
        let ids: Vec<_> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| {
                aws_sdk_s3::types::ObjectIdentifier::builder()
                    .key(k)
                    .build()
                    .ok()
            })
            .collect();
        if !ids.is_empty() {
            let del = aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(ids))
                .build()
                .map_err(|e| e.to_string())?;
            client
                .delete_objects()
                .bucket(bucket)
                .delete(del)
                .send()
                .await
                .map_err(|e| format!("emptying {bucket}: {e:?}"))?;
        }
        token = page.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let _ = client.delete_bucket_lifecycle().bucket(bucket).send().await;
    let _ = client.delete_bucket().bucket(bucket).send().await;
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| format!("creating bucket {bucket}: {e:?}"))?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let Ok(endpoint) = std::env::var("GALLRING_S3_ENDPOINT") else {
        eprintln!(
            "seed: GALLRING_S3_ENDPOINT is not set: run `eval \"$(scripts/s3-up.sh)\"` first"
        );
        return std::process::ExitCode::FAILURE;
    };
    let client = gallring::store::s3::S3Store::sdk_client(Some(endpoint)).await;
    if args.recreate
        && let Err(e) = recreate(&client, &args.bucket).await
    {
        eprintln!("seed: {e}");
        return std::process::ExitCode::FAILURE;
    }
    if args.object_lock
        && let Err(e) = client
            .create_bucket()
            .bucket(&args.bucket)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
    {
        eprintln!(
            "seed: creating bucket {} with Object Lock (it must not exist yet): {e:?}",
            args.bucket
        );
        return std::process::ExitCode::FAILURE;
    }
    let (objects, cases) = match args.layout {
        Layout::Tryg => tryg_objects(args.calls),
        Layout::Flat => (flat_objects(args.count), Vec::new()),
    };
    let total = objects.len();
    let started = std::time::Instant::now();
    let results: Vec<Result<(), String>> = futures::stream::iter(objects)
        .map(|o| {
            let client = client.clone();
            let bucket = args.bucket.clone();
            async move {
                let mut req = client
                    .put_object()
                    .bucket(&bucket)
                    .key(&o.key)
                    .body(ByteStream::from(o.body));
                if let Some(cs) = &o.call_start {
                    req = req.metadata("call-start", cs);
                }
                if !o.tags.is_empty() {
                    // Tags at upload, as a recorder writes them (URL-encoded query form).
                    let q: Vec<String> = o.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    req = req.tagging(q.join("&"));
                }
                req.send().await.map_err(|e| format!("{}: {e:?}", o.key))?;
                Ok(())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if let Some(first) = failed.first() {
        eprintln!(
            "seed: {} of {total} uploads failed; first: {first}",
            failed.len()
        );
        return std::process::ExitCode::FAILURE;
    }
    eprintln!(
        "seed: {total} objects in bucket {} ({:.1}s)",
        args.bucket,
        started.elapsed().as_secs_f64()
    );
    // On stdout, for scripts (the demo): which calls its holds are about.
    for (case, subject, prefix) in cases {
        println!("{case} {subject} {prefix}");
    }
    std::process::ExitCode::SUCCESS
}
