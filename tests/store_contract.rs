//! The object-store port's contract suite (`gallring::store::contract`) against the S3
//! adapter on two real S3 servers, so that both hold the same guarantees:
//! - Ceph RGW 16 (`ceph::…`), the one `scripts/s3-up.sh` starts on 127.0.0.1, which also
//!   executes lifecycle;
//! - moto 5.1.22 in server mode (`moto::…`), the one `scripts/moto-up.sh` starts on
//!   127.0.0.1, which answers with AWS S3's semantics where Ceph differs (issue 13).
//!
//! The same suite runs against the in-memory fake in the library's unit tests, so the fake
//! cannot drift from the real stores.
//!
//! Ceph needs `GALLRING_S3_ENDPOINT` and the AWS_* test credentials (`eval
//! "$(scripts/s3-env.sh)"`), moto needs `GALLRING_MOTO_ENDPOINT` (`eval
//! "$(scripts/moto-up.sh)"`); without them each test of that backend fails and says how to
//! start the server (never skips). Each test works in buckets of its own, written to behind
//! the adapter's back with plain aws-sdk-s3 calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types as sdk;
use chrono::{DateTime, Utc};
use gallring::store::NoopObserver;
use gallring::store::contract::{Backend, BucketKind, Seed};
use gallring::store::s3::{S3Settings, S3Store, StaticCredentials};
use gallring::store::{ObjectId, ObjectStore};

const CEPH_HOW_TO_START: &str = "start the test S3 server with `eval \"$(scripts/s3-up.sh)\"` \
     (Ceph RGW on 127.0.0.1; `eval \"$(scripts/s3-env.sh)\"` if it already runs) and run the \
     tests again";

const MOTO_HOW_TO_START: &str = "start the AWS-semantics test S3 server with `eval \
     \"$(scripts/moto-up.sh)\"` (moto 5.1.22 on 127.0.0.1; it prints the same line again if it \
     already runs) and run the tests again";

fn env(name: &str, how_to_start: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name} is not set: {how_to_start}"),
    }
}

/// A real S3 server behind the S3 adapter, with what the contracts must know of it.
struct S3Backend {
    endpoint: String,
    /// `None`: the default chain (the environment); moto accepts any key.
    credentials: Option<StaticCredentials>,
    /// For writes behind the adapter's back, configured as the adapter's own client.
    client: Client,
    tag_writes_move_last_modified: bool,
    delete_honours_if_match: bool,
    refused_lifecycle_write_keeps_configuration: bool,
}

impl S3Backend {
    /// Ceph RGW 16.2.15. Fails (never skips) when the server's environment is missing.
    async fn ceph() -> S3Backend {
        let endpoint = env("GALLRING_S3_ENDPOINT", CEPH_HOW_TO_START);
        env("AWS_ACCESS_KEY_ID", CEPH_HOW_TO_START);
        env("AWS_SECRET_ACCESS_KEY", CEPH_HOW_TO_START);
        S3Backend {
            client: client(&endpoint, None).await,
            endpoint,
            credentials: None,
            // RGW 16.2.15 stamps a version with the time of PutObjectTagging (issue 8, 11).
            tag_writes_move_last_modified: true,
            // RGW 16.2.15 ignores `If-Match` on DeleteObject: a wrong ETag deletes (204).
            delete_honours_if_match: false,
            refused_lifecycle_write_keeps_configuration: true,
        }
    }

    /// moto 5.1.22 in server mode. Fails (never skips) when its endpoint is not set.
    async fn moto() -> S3Backend {
        let endpoint = env("GALLRING_MOTO_ENDPOINT", MOTO_HOW_TO_START);
        // moto accepts any key; fixed ones keep it independent of the Ceph environment.
        let credentials = Some(StaticCredentials {
            access_key_id: "gallring-moto-access".to_string(),
            secret_access_key: "gallring-moto-secret".to_string(),
            session_token: None,
        });
        S3Backend {
            client: client(&endpoint, credentials.clone()).await,
            endpoint,
            credentials,
            // As AWS S3: tags are a subresource, LastModified stays.
            tag_writes_move_last_modified: false,
            // Unlike AWS S3, moto 5.1.22 ignores `If-Match` on DeleteObject by version id.
            delete_honours_if_match: false,
            // moto 5.1.22 empties the configuration before it refuses one (AWS does not).
            refused_lifecycle_write_keeps_configuration: false,
        }
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
        let settings = settings(&self.endpoint, self.credentials.clone(), bucket);
        S3Store::connect(settings, Arc::new(NoopObserver)).await
    }
}

/// Settings for a bucket on `endpoint`, as every test here uses them.
fn settings(endpoint: &str, credentials: Option<StaticCredentials>, bucket: &str) -> S3Settings {
    S3Settings {
        endpoint: Some(endpoint.to_string()),
        region: Some("us-east-1".to_string()),
        static_credentials: credentials,
        max_attempts: 3,
        request_timeout: Duration::from_secs(20),
        ..S3Settings::new(bucket)
    }
}

/// A plain SDK client configured as the adapter's own.
async fn client(endpoint: &str, credentials: Option<StaticCredentials>) -> Client {
    S3Store::connect(
        settings(endpoint, credentials, "any"),
        Arc::new(NoopObserver),
    )
    .await
    .client()
    .clone()
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

impl Backend for S3Backend {
    type Store = S3Store;

    async fn create(&self, label: &str, kind: BucketKind) -> S3Store {
        let bucket = S3Backend::unique_bucket(label);
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
        self.store(&S3Backend::unique_bucket(label)).await
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

    /// From HEAD's `x-amz-object-lock-*` headers: moto 5.1.22 has no GetObjectRetention (it
    /// answers with the object's body), and RGW and AWS give the same there.
    async fn retention(&self, store: &S3Store, id: &ObjectId) -> Option<(String, DateTime<Utc>)> {
        let out = self
            .client
            .head_object()
            .bucket(store.bucket())
            .key(&id.key)
            .set_version_id(id.version_id.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("head {id:?}: {}", DisplayErrorContext(e)));
        let mode = out.object_lock_mode()?.as_str().to_string();
        let until = out
            .object_lock_retain_until_date()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
            .expect("a retain-until date with a mode");
        Some((mode, until))
    }

    async fn tick(&self, _store: &S3Store) {
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    fn tag_writes_move_last_modified(&self) -> bool {
        self.tag_writes_move_last_modified
    }

    fn delete_honours_if_match(&self) -> bool {
        self.delete_honours_if_match
    }

    fn refused_lifecycle_write_keeps_configuration(&self) -> bool {
        self.refused_lifecycle_write_keeps_configuration
    }
}

/// Ceph RGW 16.2.15 (`GALLRING_S3_ENDPOINT`).
mod ceph {
    gallring::object_store_contract!(super::S3Backend::ceph().await);
}

/// moto 5.1.22, AWS S3's semantics (`GALLRING_MOTO_ENDPOINT`).
mod moto {
    gallring::object_store_contract!(super::S3Backend::moto().await);
}
