//! The object-store port's contract suite (`gallring::store::contract`) against the S3
//! adapter on a real Ceph RADOS Gateway, the one `scripts/s3-up.sh` starts on 127.0.0.1. The
//! same suite runs against the in-memory fake in the library's unit tests, so the fake cannot
//! drift from the real store.
//!
//! `GALLRING_S3_ENDPOINT` and the AWS_* test credentials must be set (`eval
//! "$(scripts/s3-env.sh)"`); without them every test fails and says how to start the server.
//! Each test works in buckets of its own, written to behind the adapter's back with plain
//! aws-sdk-s3 calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types as sdk;
use chrono::{DateTime, Utc};
use gallring::store::NoopObserver;
use gallring::store::contract::{Backend, BucketKind, Seed};
use gallring::store::s3::{S3Settings, S3Store};
use gallring::store::{ObjectId, ObjectStore};

const HOW_TO_START: &str = "start the test S3 server with `eval \"$(scripts/s3-up.sh)\"` \
     (Ceph RGW on 127.0.0.1; `eval \"$(scripts/s3-env.sh)\"` if it already runs) and run the \
     tests again";

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name} is not set: {HOW_TO_START}"),
    }
}

/// Ceph RGW 16 behind the S3 adapter.
struct Ceph {
    endpoint: String,
    /// For writes behind the adapter's back, configured as the adapter's own client.
    client: Client,
}

impl Ceph {
    /// Fails (never skips) when the server's environment is missing.
    async fn from_env() -> Ceph {
        let endpoint = env("GALLRING_S3_ENDPOINT");
        env("AWS_ACCESS_KEY_ID");
        env("AWS_SECRET_ACCESS_KEY");
        let client = S3Store::sdk_client(Some(endpoint.clone())).await;
        Ceph { endpoint, client }
    }

    /// A bucket name no other test (or earlier run) uses: at most 63 characters.
    fn unique_bucket(label: &str) -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let name = format!(
            "gc-{label}-{:x}-{}-{}",
            nanos & 0xffff_ffff_ffff,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        assert!(name.len() <= 63, "bucket name {name} is too long");
        name
    }

    async fn store(&self, bucket: &str) -> S3Store {
        let settings = S3Settings {
            endpoint: Some(self.endpoint.clone()),
            max_attempts: 3,
            request_timeout: Duration::from_secs(20),
            ..S3Settings::new(bucket)
        };
        S3Store::connect(settings, Arc::new(NoopObserver)).await
    }
}

/// `application/x-www-form-urlencoded` for the `x-amz-tagging` header.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Backend for Ceph {
    type Store = S3Store;

    async fn create(&self, label: &str, kind: BucketKind) -> S3Store {
        let bucket = Ceph::unique_bucket(label);
        self.client
            .create_bucket()
            .bucket(&bucket)
            .object_lock_enabled_for_bucket(kind == BucketKind::ObjectLock)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {bucket}: {}", DisplayErrorContext(e)));
        if kind == BucketKind::Versioned {
            self.client
                .put_bucket_versioning()
                .bucket(&bucket)
                .versioning_configuration(
                    sdk::VersioningConfiguration::builder()
                        .status(sdk::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!("enable versioning on {bucket}: {}", DisplayErrorContext(e))
                });
        }
        self.store(&bucket).await
    }

    async fn missing(&self, label: &str) -> S3Store {
        self.store(&Ceph::unique_bucket(label)).await
    }

    async fn seed(&self, store: &S3Store, seed: Seed<'_>) -> Option<String> {
        let tagging = seed
            .tags
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let metadata: HashMap<String, String> = seed
            .metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.client
            .put_object()
            .bucket(store.bucket())
            .key(seed.key)
            .body(ByteStream::from(seed.body.to_vec()))
            .set_tagging((!tagging.is_empty()).then_some(tagging))
            .set_metadata((!metadata.is_empty()).then_some(metadata))
            .send()
            .await
            .unwrap_or_else(|e| panic!("seed {}: {}", seed.key, DisplayErrorContext(e)))
            .version_id()
            .map(str::to_string)
    }

    async fn seed_lifecycle(&self, store: &S3Store, rules: Vec<sdk::LifecycleRule>) {
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(store.bucket())
            .lifecycle_configuration(
                sdk::BucketLifecycleConfiguration::builder()
                    .set_rules(Some(rules))
                    .build()
                    .expect("a valid configuration"),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("seed lifecycle: {}", DisplayErrorContext(e)));
    }

    async fn retention(&self, store: &S3Store, id: &ObjectId) -> Option<(String, DateTime<Utc>)> {
        let out = self
            .client
            .get_object_retention()
            .bucket(store.bucket())
            .key(&id.key)
            .set_version_id(id.version_id.clone())
            .send()
            .await;
        let retention = match out {
            Ok(out) => out.retention().cloned()?,
            // A version without a retention.
            Err(e)
                if matches!(
                    e.as_service_error().and_then(|e| e.code()),
                    Some("NoSuchObjectLockConfiguration" | "ObjectLockConfigurationNotFoundError")
                ) =>
            {
                return None;
            }
            Err(e) => panic!("retention of {id:?}: {}", DisplayErrorContext(e)),
        };
        let until = retention
            .retain_until_date()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .expect("a retain-until date");
        Some((retention.mode()?.as_str().to_string(), until))
    }

    async fn tick(&self, _store: &S3Store) {
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    /// RGW 16.2.15 stamps a version with the time of PutObjectTagging (issue 8, item 11).
    fn tag_writes_move_last_modified(&self) -> bool {
        true
    }

    /// RGW 16.2.15 ignores `If-Match` on DeleteObject: a wrong ETag deletes all the same (204).
    fn delete_honours_if_match(&self) -> bool {
        false
    }
}

gallring::object_store_contract!(Ceph::from_env().await);
