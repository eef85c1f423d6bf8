//! Reconcilers against a mocked API server (tower-test) and the in-memory store, with a fixed
//! clock. Each test plays a named [`Scenario`]: the requests the reconciler must make, in
//! order, each with a name; assertions look requests up by that name.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::{Client, Resource};
use serde_json::{Value, json};

use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;

use super::*;
use crate::api::compile;
use crate::api::v1alpha1::{
    Article6, ClassifyRuleSpec, DataController, EnforcementMode, HoldReason, HoldSelectSpec,
    LegalBasis, LegalHold, LegalHoldSpec, LifecycleRulesOnDelete, LocalRef, MatchSpec, PurposeSpec,
    RecordingBucketSpec, RetentionPolicy, RetentionPolicySpec, S3Credentials,
};
use crate::api::v1alpha1::{RecordingBucket, S3Location};
use crate::metrics::Metrics;
use crate::reconcile;
use crate::reconcile::PassConfig;
use crate::retention::RETENTION_TAG;
use crate::store::Operation;
use crate::store::memory::Fault;
use crate::store::memory::MemoryStore;
use crate::store::s3::StaticCredentials;
use kube::core::DeserializeGuard;
use validate::engine_hold;

const NS: &str = "recordings";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid")
}

/// Hands out one shared in-memory store.
struct FakeFactory(Arc<MemoryStore>);

impl StoreFactory for FakeFactory {
    type Store = Arc<MemoryStore>;
    async fn make(&self, _: &S3Location, _: Option<StaticCredentials>) -> Arc<MemoryStore> {
        self.0.clone()
    }
}

fn policy() -> RetentionPolicy {
    let mut p = RetentionPolicy::new(
        "calls",
        RetentionPolicySpec {
            time_zone: None,
            controller: DataController {
                legal_name: "Example Forsikring A/S".into(),
                org_number: None,
                contact: None,
            },
            description: None,
            purposes: vec![PurposeSpec {
                retain_means: Default::default(),
                from: None,
                use_for: Default::default(),
                name: "documentation".into(),
                description: None,
                legal_basis: LegalBasis {
                    article6: Article6::LegitimateInterests,
                    article9: None,
                },
                withdrawable: false,
                retain: [("audio".to_string(), "P1Y".into())].into(),
                controller: None,
            }],
            hold_release: vec![],
        },
    );
    p.meta_mut().namespace = Some(NS.into());
    p
}

fn bucket(policy: &str) -> RecordingBucket {
    let mut b = RecordingBucket::new(
        "calls",
        RecordingBucketSpec {
            s3: S3Location {
                bucket: "calls".into(),
                prefix: None,
                region: None,
                endpoint: None,
                force_path_style: None,
                credentials: None,
            },
            policy_ref: LocalRef {
                name: policy.into(),
            },
            classify: vec![ClassifyRuleSpec {
                name: None,
                matches: MatchSpec {
                    prefix: Some("audio/".into()),
                    glob: None,
                    tags: Default::default(),
                },
                kind: "audio".into(),
                purposes: vec!["documentation".into()],
                purposes_from_tag: None,
            }],
            recording_id: Some(crate::api::v1alpha1::RecordingIdSpec {
                key_pattern: Some("^audio/(?P<id>[^.]+)".into()),
                tag: None,
            }),
            subject: None,
            recorded_at: None,
            enforcement: EnforcementMode::Both,
            grace_period: "P2D".into(),
            scan_interval: "PT1H".into(),
            verify_interval: "P7D".into(),
            lifecycle_rules_on_delete: LifecycleRulesOnDelete::Remove,
            state: None,
        },
    );
    b.meta_mut().namespace = Some(NS.into());
    b.meta_mut().generation = Some(4);
    b.meta_mut().finalizers = Some(vec![BUCKET_FINALIZER.into()]);
    b
}

/// The bucket with its credentials in a Secret.
fn bucket_with_secret(secret: &str) -> RecordingBucket {
    let mut b = bucket("calls");
    b.spec.s3.credentials = Some(S3Credentials {
        secret_ref: LocalRef {
            name: secret.into(),
        },
    });
    b
}

fn deleting<K: Resource>(mut obj: K) -> K {
    obj.meta_mut().deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(now().timestamp()).expect("in range"),
    ));
    obj
}

fn hold(deleting: bool) -> LegalHold {
    let mut h = LegalHold::new(
        "complaint-1",
        LegalHoldSpec {
            scope: None,
            limitation_start: None,
            bucket_ref: LocalRef {
                name: "calls".into(),
            },
            reason: HoldReason::Complaint,
            case: "KL-1".into(),
            owner: "complaints".into(),
            review_by: None,
            expires: None,
            select: HoldSelectSpec {
                recording_ids: vec!["r1".into()],
                ..Default::default()
            },
        },
    );
    h.meta_mut().namespace = Some(NS.into());
    h.meta_mut().finalizers = Some(vec![FINALIZER.into()]);
    if deleting {
        h.meta_mut().deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(now().timestamp()).expect("in range"),
            ));
    }
    h
}

fn seeded_store(object_lock: bool) -> Arc<MemoryStore> {
    let s = if object_lock {
        MemoryStore::new("calls").object_lock()
    } else {
        MemoryStore::new("calls")
    };
    s.put(
        "audio/r1.wav",
        Utc.with_ymd_and_hms(2025, 6, 1, 9, 0, 0)
            .single()
            .expect("valid"),
        100,
        &[],
    );
    s.put(
        "audio/r2.wav",
        Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0)
            .single()
            .expect("valid"),
        100,
        &[],
    );
    Arc::new(s)
}

/// One request the reconciler must make: a name for assertions, method, path (without query),
/// and the answer.
struct Step {
    name: &'static str,
    method: &'static str,
    path: String,
    status: u16,
    reply: Value,
}

/// The API server's side of a test, step by step. A request out of order fails the test with
/// the step's name.
#[derive(Default)]
struct Scenario(Vec<Step>);

const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"not found","reason":"NotFound","code":404}"#;

impl Scenario {
    fn step(
        mut self,
        name: &'static str,
        method: &'static str,
        path: String,
        reply: Value,
    ) -> Self {
        self.0.push(Step {
            name,
            method,
            path,
            status: 200,
            reply,
        });
        self
    }
    fn missing(mut self, name: &'static str, path: String) -> Self {
        self.0.push(Step {
            name,
            method: "GET",
            path,
            status: 404,
            reply: serde_json::from_str(NOT_FOUND).expect("json"),
        });
        self
    }
    fn policy(self) -> Self {
        self.step(
            "get policy",
            "GET",
            format!("{BASE}/retentionpolicies/calls"),
            to_json(&policy()),
        )
    }
    fn holds(self, holds: &[&LegalHold]) -> Self {
        let items: Vec<Value> = holds.iter().map(|h| to_json(*h)).collect();
        self.step(
            "list holds",
            "GET",
            format!("{BASE}/legalholds"),
            json!({"apiVersion":"gallring.io/v1alpha1","kind":"LegalHoldList","metadata":{},"items":items}),
        )
        .requests("list requests")
    }
    fn requests(self, name: &'static str) -> Self {
        self.step(
            name,
            "GET",
            format!("{BASE}/subjectrequests"),
            json!({"apiVersion":"gallring.io/v1alpha1","kind":"SubjectRequestList","metadata":{},"items":[]}),
        )
    }
    /// The pass reads the holds again right before deleting.
    fn reread_holds(self, holds: &[&LegalHold]) -> Self {
        let items: Vec<Value> = holds.iter().map(|h| to_json(*h)).collect();
        self.step(
            "re-read holds",
            "GET",
            format!("{BASE}/legalholds"),
            json!({"apiVersion":"gallring.io/v1alpha1","kind":"LegalHoldList","metadata":{},"items":items}),
        )
        .requests("re-read requests")
    }
    fn secret(self, name: &str) -> Self {
        self.step(
            "get secret",
            "GET",
            format!("/api/v1/namespaces/{NS}/secrets/{name}"),
            json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":name,"namespace":NS},
                   "data":{"AWS_ACCESS_KEY_ID":"YWtpZA==","AWS_SECRET_ACCESS_KEY":"c2VjcmV0"}}),
        )
    }
    fn bucket_status(self, b: &RecordingBucket) -> Self {
        self.step(
            "bucket status",
            "PATCH",
            format!("{BASE}/recordingbuckets/calls/status"),
            to_json(b),
        )
    }
    fn get_bucket(self, b: &RecordingBucket) -> Self {
        self.step(
            "get bucket",
            "GET",
            format!("{BASE}/recordingbuckets/calls"),
            to_json(b),
        )
    }
    fn hold_status(self, h: &LegalHold) -> Self {
        self.step(
            "hold status",
            "PATCH",
            format!("{BASE}/legalholds/complaint-1/status"),
            to_json(h),
        )
    }
    fn event(self, name: &'static str) -> Self {
        self.step(name, "POST", EVENTS.into(), Value::Null)
    }

    /// Serves the scenario; the handle yields what was played once every step has been.
    fn serve(self) -> (Client, tokio::task::JoinHandle<Played>) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let task = tokio::spawn(async move {
            let mut handle = std::pin::pin!(handle);
            let mut played = Vec::new();
            for step in self.0 {
                let (request, send) = handle.next_request().await.unwrap_or_else(|| {
                    panic!(
                        "step `{}`: expected {} {}, got no request",
                        step.name, step.method, step.path
                    )
                });
                let method = request.method().to_string();
                let path = request.uri().path().to_string();
                let query = request.uri().query().unwrap_or_default().to_string();
                assert_eq!(
                    (method.as_str(), path.as_str()),
                    (step.method, step.path.as_str()),
                    "step `{}` (query {query})",
                    step.name
                );
                let bytes = request
                    .into_body()
                    .collect_bytes()
                    .await
                    .expect("request body");
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let reply = if step.method == "POST" && step.reply.is_null() {
                    body.clone()
                } else {
                    step.reply
                };
                played.push((step.name, query, body));
                let response = Response::builder()
                    .status(step.status)
                    .body(Body::from(serde_json::to_vec(&reply).expect("json")))
                    .expect("response");
                send.send_response(response);
            }
            Played(played)
        });
        (Client::new(service, NS), task)
    }
}

/// What the mocked API server saw, by step name.
struct Played(Vec<(&'static str, String, Value)>);

impl Played {
    fn body(&self, name: &str) -> &Value {
        &self
            .0
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("no step `{name}` was played"))
            .2
    }
    fn query(&self, name: &str) -> &str {
        &self
            .0
            .iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("no step `{name}` was played"))
            .1
    }
}

fn context(client: Client, store: Arc<MemoryStore>) -> Context<FakeFactory> {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let reporter = Reporter {
        controller: "gallring".into(),
        instance: Some("test".into()),
    };
    Context::new(client, FakeFactory(store), metrics, reporter)
        .with_clock(Arc::new(now))
        .with_secret_access(SecretAccess {
            namespaces: vec![NS.into()],
            cluster_wide: false,
            allow_ambient: true,
        })
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("json")
}

const BASE: &str = "/apis/gallring.io/v1alpha1/namespaces/recordings";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/recordings/events";

fn condition<'a>(status_patch: &'a Value, type_: &str) -> &'a Value {
    status_patch["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status_patch}"))
}

fn retention_tag(store: &MemoryStore, key: &str) -> Option<String> {
    store.tags(key).and_then(|t| t.get(RETENTION_TAG).cloned())
}

#[tokio::test]
async fn a_bucket_whose_policy_is_missing_gets_a_condition_and_an_event_and_no_s3_request() {
    let store = seeded_store(false);
    let b = bucket("missing");
    let (client, server) = Scenario::default()
        .missing("get policy", format!("{BASE}/retentionpolicies/missing"))
        .bucket_status(&b)
        .event("warning event")
        .serve();
    let ctx = context(client, store.clone());
    let action = reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("an invalid spec is not an error");
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    let played = server.await.expect("scenario");
    let query = played.query("bucket status");
    assert!(
        query.contains("fieldManager=gallring") && query.contains("force=true"),
        "{query}"
    );
    let status = played.body("bucket status");
    let ready = condition(status, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("PolicyNotFound"))
    );
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.policyRef.name")
    );
    assert_eq!(status["status"]["observedGeneration"], 4);
    let event = played.body("warning event");
    assert_eq!(
        (event["reason"].as_str(), event["type"].as_str()),
        (Some("PolicyNotFound"), Some("Warning"))
    );
    assert!(
        store.requests().is_empty(),
        "no S3 request for an invalid spec: {:?}",
        store.requests()
    );
}

#[tokio::test]
async fn an_unchanged_refusal_writes_no_status_and_no_event() {
    let store = seeded_store(false);
    let mut b = bucket("missing");
    // The status already says so: the recheck must not write it again.
    b.status = Some(status::bucket_status(
        None,
        Some(4),
        &status::BucketOutcome::Invalid {
            reason: "PolicyNotFound",
            message:
                "spec.policyRef.name: RetentionPolicy `missing` not found in namespace `recordings`"
                    .into(),
        },
        now(),
    ));
    let (client, server) = Scenario::default()
        .missing("get policy", format!("{BASE}/retentionpolicies/missing"))
        .serve();
    let ctx = context(client, store);
    reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("refused quietly");
    let played = server.await.expect("scenario");
    assert_eq!(played.0.len(), 1, "only the policy lookup");
}

#[tokio::test]
async fn a_new_bucket_first_gets_its_finalizer_and_nothing_else() {
    let store = seeded_store(false);
    let mut b = bucket("calls");
    b.meta_mut().finalizers = None;
    let mut with_finalizer = to_json(&b);
    with_finalizer["metadata"]["finalizers"] = json!([BUCKET_FINALIZER]);
    let (client, server) = Scenario::default()
        .step(
            "add finalizer",
            "PATCH",
            format!("{BASE}/recordingbuckets/calls"),
            with_finalizer,
        )
        .serve();
    let ctx = context(client, store.clone());
    reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("finalizer added");
    let played = server.await.expect("scenario");
    assert!(
        played
            .body("add finalizer")
            .to_string()
            .contains(BUCKET_FINALIZER)
    );
    assert!(store.requests().is_empty());
}

#[tokio::test]
async fn first_reconcile_tags_objects_and_reports_counts_in_status() {
    let store = seeded_store(false);
    let b = bucket("calls");
    let (client, server) = Scenario::default()
        .policy()
        .holds(&[])
        .reread_holds(&[])
        .bucket_status(&b)
        .event("lifecycle updated")
        // r1 (2025-06-01 + P1Y) is past deadline and grace.
        .event("objects deleted")
        .serve();
    let ctx = context(client, store.clone());
    let action = reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("reconciles");
    let played = server.await.expect("scenario");
    let patch = played.body("bucket status");
    let status = &patch["status"];
    assert_eq!(status["objects"], 1, "r1 was deleted; r2 remains");
    assert_eq!(status["retained"], 1);
    assert_eq!(status["overdue"], 0);
    assert_eq!(status["nextDeadline"], "2027-06-01T09:00:00Z");
    assert_eq!(condition(patch, "Ready")["status"], "True");
    assert_eq!(condition(patch, "LifecycleSynced")["status"], "True");
    assert_eq!(condition(patch, "Degraded")["status"], "False");
    assert_eq!(condition(patch, "Conflict")["status"], "False");
    assert_eq!(
        played.body("lifecycle updated")["reason"],
        "LifecycleUpdated"
    );
    assert_eq!(played.body("objects deleted")["reason"], "ObjectsDeleted");
    assert_eq!(
        retention_tag(&store, "audio/r2.wav").as_deref(),
        Some("expire-365d")
    );
    assert!(!store.live_keys().contains("audio/r1.wav"));
    // Requeued for the scan interval (the next deadline is months away).
    assert_eq!(action, Action::requeue(Duration::from_secs(3600)));
}

#[tokio::test]
async fn credentials_come_from_the_referenced_secret() {
    let store = seeded_store(false);
    let b = bucket_with_secret("s3-keys");
    let (client, server) = Scenario::default()
        .policy()
        .holds(&[])
        .secret("s3-keys")
        .reread_holds(&[])
        .bucket_status(&b)
        .event("lifecycle updated")
        .event("objects deleted")
        .serve();
    let ctx = context(client, store.clone());
    reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("reconciles");
    let played = server.await.expect("scenario");
    assert_eq!(
        condition(played.body("bucket status"), "Ready")["status"],
        "True"
    );
}

#[tokio::test]
async fn a_bucket_without_credentials_does_not_borrow_the_operators_identity() {
    let store = seeded_store(false);
    let b = bucket("calls");
    let (client, server) = Scenario::default()
        .policy()
        .holds(&[])
        .bucket_status(&b)
        .event("warning event")
        .serve();
    let ctx = context(client, store.clone()).with_secret_access(SecretAccess::default());
    reconcile_bucket(Arc::new(b), &ctx).await.expect("refused");
    let played = server.await.expect("scenario");
    let ready = condition(played.body("bucket status"), "Ready");
    assert_eq!(ready["reason"], "CredentialsRequired");
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.s3.credentials.secretRef")
    );
    assert!(store.requests().is_empty());
}

#[tokio::test]
async fn a_secret_outside_the_allowed_namespaces_is_not_read() {
    let store = seeded_store(false);
    let b = bucket_with_secret("s3-keys");
    let (client, server) = Scenario::default()
        .policy()
        .holds(&[])
        .bucket_status(&b)
        .event("warning event")
        .serve();
    let ctx = context(client, store.clone()).with_secret_access(SecretAccess {
        namespaces: vec!["elsewhere".into()],
        ..SecretAccess::default()
    });
    reconcile_bucket(Arc::new(b), &ctx).await.expect("refused");
    let played = server.await.expect("scenario");
    assert_eq!(
        condition(played.body("bucket status"), "Ready")["reason"],
        "SecretNotAllowed"
    );
    assert!(store.requests().is_empty());
}

#[tokio::test]
async fn creating_a_hold_protects_the_objects_and_reports_it_on_the_hold() {
    let store = seeded_store(true);
    let b = bucket("calls");
    let h = hold(false);
    let (client, server) = Scenario::default()
        .policy()
        .holds(&[&h])
        .bucket_status(&b)
        .event("lifecycle updated")
        .hold_status(&h)
        .event("hold applied")
        .serve();
    let ctx = context(client, store.clone());
    reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("reconciles");
    let played = server.await.expect("scenario");
    assert_eq!(played.body("bucket status")["status"]["held"], 1);
    let hold_status = played.body("hold status");
    assert_eq!(hold_status["status"]["matched"], 1);
    assert_eq!(condition(hold_status, "Ready")["reason"], "Applied");
    assert_eq!(played.body("hold applied")["reason"], "HoldApplied");
    assert!(
        store.legal_hold("audio/r1.wav"),
        "Object Lock legal hold set"
    );
    assert!(
        store.live_keys().contains("audio/r1.wav"),
        "a held object past its deadline is kept"
    );
    assert_eq!(
        retention_tag(&store, "audio/r1.wav").as_deref(),
        Some("held")
    );
}

#[tokio::test]
async fn a_hold_that_matches_nothing_is_not_ready_and_warns() {
    let store = seeded_store(true);
    let b = bucket("calls");
    let mut h = hold(false);
    h.spec.select.recording_ids = vec!["mistyped".into()];
    let (client, server) = Scenario::default()
        .policy()
        .holds(&[&h])
        .reread_holds(&[&h])
        .bucket_status(&b)
        .event("lifecycle updated")
        .event("objects deleted")
        .hold_status(&h)
        .event("no match")
        .serve();
    let ctx = context(client, store);
    reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("reconciles");
    let played = server.await.expect("scenario");
    let ready = condition(played.body("hold status"), "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("NoMatch"))
    );
    let event = played.body("no match");
    assert_eq!(
        (event["reason"].as_str(), event["type"].as_str()),
        (Some("NoMatch"), Some("Warning"))
    );
}

#[tokio::test]
async fn an_invalid_hold_stops_every_write_to_its_bucket() {
    let store = seeded_store(true);
    let b = bucket("calls");
    let mut h = hold(false);
    h.spec.case = " ".into();
    let (client, server) = Scenario::default()
        .policy()
        .holds(&[&h])
        .bucket_status(&b)
        .event("warning event")
        .serve();
    let ctx = context(client, store.clone());
    reconcile_bucket(Arc::new(b), &ctx).await.expect("refused");
    let played = server.await.expect("scenario");
    assert_eq!(
        condition(played.body("bucket status"), "Ready")["reason"],
        "InvalidHold"
    );
    assert!(store.requests().is_empty(), "{:?}", store.requests());
}

#[tokio::test]
async fn a_hold_on_a_missing_bucket_says_so() {
    let store = seeded_store(false);
    let mut h = hold(false);
    h.spec.bucket_ref.name = "nope".into();
    let (client, server) = Scenario::default()
        .missing("get bucket", format!("{BASE}/recordingbuckets/nope"))
        .hold_status(&h)
        .event("warning event")
        .serve();
    let ctx = context(client, store);
    let action = reconcile_hold(Arc::new(h), &ctx).await.expect("reported");
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    let played = server.await.expect("scenario");
    let ready = condition(played.body("hold status"), "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("BucketNotFound"))
    );
    assert_eq!(played.body("warning event")["reason"], "BucketNotFound");
}

/// The hold was applied by an earlier pass.
async fn applied(store: &Arc<MemoryStore>) {
    let engine = engine_hold(&hold(false)).expect("valid hold");
    let compiled = compile::policy("p", &policy().spec).expect("valid");
    let rules = compile::bucket("b", &bucket("calls").spec, &compiled).expect("valid");
    reconcile::reconcile(
        store,
        &compiled,
        &rules,
        vec![engine],
        now(),
        PassConfig::default(),
        &|_| {},
    )
    .await
    .expect("applied");
    assert!(store.legal_hold("audio/r1.wav"));
}

#[tokio::test]
async fn deleting_a_hold_releases_the_objects_before_the_finalizer_is_removed() {
    let store = seeded_store(true);
    applied(&store).await;
    let h = deleting(hold(false));
    let b = bucket("calls");
    let mut released = to_json(&h);
    released["metadata"]["finalizers"] = json!([]);
    let (client, server) = Scenario::default()
        // The finalizer waits: only the bucket controller writes to the bucket.
        .get_bucket(&b)
        // The bucket's pass sees the hold being deleted and journals the release first.
        .policy()
        .holds(&[&h])
        .reread_holds(&[&h])
        .bucket_status(&b)
        // r1 is long past its deadline once released.
        .event("objects deleted")
        .get_bucket(&b)
        .event("hold released")
        .step(
            "remove finalizer",
            "PATCH",
            format!("{BASE}/legalholds/complaint-1"),
            released,
        )
        .serve();
    let ctx = context(client, store.clone());
    let err = reconcile_hold(Arc::new(h.clone()), &ctx)
        .await
        .expect_err("the release is not journaled yet");
    assert_eq!(err.category(), "release_pending");
    assert!(store.legal_hold("audio/r1.wav"), "nothing lowered yet");
    reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("reconciles");
    reconcile_hold(Arc::new(h), &ctx).await.expect("released");
    let played = server.await.expect("scenario");
    assert_eq!(played.body("bucket status")["status"]["held"], 0);
    assert_eq!(played.body("hold released")["reason"], "HoldReleased");
    // The finalizer goes last, as a JSON patch that removes exactly it.
    let patch = played.body("remove finalizer").to_string();
    assert!(
        patch.contains("/metadata/finalizers") && patch.contains("remove"),
        "{patch}"
    );
    assert!(
        !store.live_keys().contains("audio/r1.wav"),
        "released and past its deadline (no holdRelease for Complaint)"
    );
}

#[tokio::test]
async fn a_release_is_journaled_before_the_finalizer_goes_even_when_tag_writes_fail() {
    let store = seeded_store(true);
    applied(&store).await;
    store.inject(Fault {
        operation: Operation::PutObjectTagging,
        key: Some("audio/r1.wav".into()),
        category: crate::store::ErrorCategory::ServerError,
        times: 1,
    });
    let h = deleting(hold(false));
    let b = bucket("calls");
    let mut released = to_json(&h);
    released["metadata"]["finalizers"] = json!([]);
    let (client, server) = Scenario::default()
        .policy()
        .holds(&[&h])
        .bucket_status(&b)
        // r1's re-tag failed: reported; it is due at the release, not yet overdue.
        .event("object errors")
        .get_bucket(&b)
        .event("hold released")
        .step(
            "remove finalizer",
            "PATCH",
            format!("{BASE}/legalholds/complaint-1"),
            released,
        )
        .serve();
    let ctx = context(client, store.clone());
    reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("reconciles");
    reconcile_hold(Arc::new(h), &ctx).await.expect("released");
    let played = server.await.expect("scenario");
    assert_eq!(played.body("object errors")["reason"], "ObjectErrors");
    let journal = crate::state::Journal::load(&*store, crate::state::journal::DEFAULT_PREFIX)
        .await
        .expect("journal");
    assert_eq!(journal.state().released.len(), 1, "the release is durable");
    assert!(journal.state().applied.is_empty());
    // The tag write failed, so the legal hold stays on: never lifted under a `held` tag.
    assert!(store.legal_hold("audio/r1.wav"));
}

#[tokio::test]
async fn a_store_failure_marks_the_bucket_degraded_and_backs_off() {
    let store = Arc::new(MemoryStore::missing("calls"));
    let b = bucket("calls");
    let (client, server) = Scenario::default()
        .policy()
        .holds(&[])
        .bucket_status(&b)
        .event("scan failed")
        .serve();
    let ctx = Arc::new(context(client, store.clone()));
    let err = reconcile_bucket(Arc::new(b.clone()), &ctx)
        .await
        .expect_err("the bucket is missing");
    assert_eq!(err.category(), "no_such_bucket");
    let played = server.await.expect("scenario");
    let degraded = condition(played.body("bucket status"), "Degraded");
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("NoSuchBucket"))
    );
    assert_eq!(played.body("scan failed")["reason"], "ScanFailed");
    let guard = Arc::new(DeserializeGuard(Ok(b)));
    let first = error_policy(guard.clone(), &err, ctx.clone());
    let second = error_policy(guard, &err, ctx.clone());
    assert_eq!(first, Action::requeue(Duration::from_secs(10)));
    assert_eq!(second, Action::requeue(Duration::from_secs(20)));
    assert!(
        !store
            .requests()
            .iter()
            .any(|o| matches!(o, Operation::DeleteObjects | Operation::PutObjectTagging))
    );
}

#[tokio::test]
async fn a_fenced_pass_writes_nothing_and_reports_nothing() {
    let store = seeded_store(true);
    let b = bucket("calls");
    let (client, server) = Scenario::default().policy().holds(&[]).serve();
    // Leadership lapsed: the fence never opened.
    let ctx = context(client, store.clone()).with_pass(PassConfig {
        fence: reconcile::Fence::closed(),
        ..PassConfig::default()
    });
    let err = reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect_err("fenced");
    assert_eq!(err.category(), "fenced");
    server.await.expect("scenario");
    assert!(
        !store.requests().iter().any(|o| matches!(
            o,
            Operation::PutObjectTagging
                | Operation::DeleteObjects
                | Operation::PutBucketLifecycle
                | Operation::PutObjectLegalHold
        )),
        "{:?}",
        store.requests()
    );
}

/// Plays the deletion of a bucket: one Event about its rules, then the finalizer goes.
/// Returns the Event.
async fn delete_bucket(b: RecordingBucket, store: &Arc<MemoryStore>) -> Value {
    let mut gone = to_json(&b);
    gone["metadata"]["finalizers"] = json!([]);
    let (client, server) = Scenario::default()
        .event("rules event")
        .step(
            "remove finalizer",
            "PATCH",
            format!("{BASE}/recordingbuckets/calls"),
            gone,
        )
        .serve();
    let ctx = context(client, store.clone());
    reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("cleaned up");
    let played = server.await.expect("scenario");
    played.body("rules event").clone()
}

#[tokio::test]
async fn deleting_a_bucket_removes_only_its_own_lifecycle_rules() {
    let store = seeded_store(false);
    let b = bucket("calls");
    // A pass wrote gallring's rules; the owner has one of their own.
    let compiled = compile::policy("p", &policy().spec).expect("valid");
    let rules = compile::bucket("b", &b.spec, &compiled).expect("valid");
    reconcile::reconcile(
        &store,
        &compiled,
        &rules,
        vec![],
        now(),
        PassConfig::default(),
        &|_| {},
    )
    .await
    .expect("pass");
    let mut existing = store.lifecycle().expect("rules written");
    let raw = aws_sdk_s3::types::LifecycleRule::builder()
        .id("owner-archive")
        .status(aws_sdk_s3::types::ExpirationStatus::Enabled)
        .build()
        .expect("rule");
    existing.push(crate::store::StoredRule::Foreign(
        crate::store::ForeignRule {
            id: Some("owner-archive".into()),
            raw,
        },
    ));
    store.set_lifecycle(Some(existing));
    let event = delete_bucket(deleting(b), &store).await;
    assert_eq!(event["reason"], "LifecycleRulesRemoved");
    let left = store.lifecycle().unwrap_or_default();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(matches!(&left[0], crate::store::StoredRule::Foreign(_)));
}

#[tokio::test]
async fn deleting_a_bucket_that_retains_its_rules_leaves_them() {
    let store = seeded_store(false);
    let mut b = bucket("calls");
    b.spec.lifecycle_rules_on_delete = LifecycleRulesOnDelete::Retain;
    let event = delete_bucket(deleting(b), &store).await;
    assert_eq!(event["reason"], "LifecycleRulesLeft");
    assert!(store.requests().is_empty());
}

#[test]
fn two_buckets_on_the_same_objects_conflict_and_disjoint_prefixes_do_not() {
    let mut a = bucket("calls");
    a.spec.s3.prefix = Some("audio/".into());
    let mut b = bucket("calls");
    b.meta_mut().name = Some("calls-2".into());
    b.spec.s3.prefix = Some("audio/2026/".into());
    let mut c = bucket("calls");
    c.meta_mut().name = Some("chat".into());
    c.spec.s3.prefix = Some("chat/".into());
    let mut d = bucket("calls");
    d.meta_mut().name = Some("other-store".into());
    d.spec.s3.endpoint = Some("http://127.0.0.1:9000".into());
    let peers = vec![a.clone(), b.clone(), c.clone(), d];
    assert_eq!(validate::conflicts(&a, &peers), vec![ResourceKey::of(&b)]);
    assert_eq!(validate::conflicts(&b, &peers), vec![ResourceKey::of(&a)]);
    assert!(validate::conflicts(&c, &peers).is_empty());
    // A peer on its way out no longer conflicts.
    let peers = vec![a.clone(), deleting(b)];
    assert!(validate::conflicts(&a, &peers).is_empty());
}

#[test]
fn a_policy_change_requeues_exactly_the_buckets_that_reference_it() {
    let mut other = bucket("other-policy");
    other.meta_mut().name = Some("other".into());
    let mut elsewhere = bucket("calls");
    elsewhere.meta_mut().namespace = Some("elsewhere".into());
    let buckets: Vec<Arc<DeserializeGuard<RecordingBucket>>> = [bucket("calls"), other, elsewhere]
        .into_iter()
        .map(|b| Arc::new(DeserializeGuard(Ok(b))))
        .collect();
    let refs = buckets_for_policy(&buckets, &policy());
    assert_eq!(refs, vec![ObjectRef::new("calls").within(NS)]);
}

#[tokio::test]
async fn a_finalizer_patch_that_loses_a_race_with_the_cache_is_retried_not_failed() {
    let store = seeded_store(false);
    let mut b = bucket("calls");
    b.meta_mut().finalizers = None;
    let mut scenario = Scenario::default();
    scenario.0.push(Step {
        name: "add finalizer",
        method: "PATCH",
        path: format!("{BASE}/recordingbuckets/calls"),
        status: 422,
        reply: json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                      "message":"the server rejected our request","reason":"Invalid","code":422}),
    });
    let (client, server) = scenario.serve();
    let ctx = context(client, store.clone());
    let action = reconcile_bucket(Arc::new(b), &ctx)
        .await
        .expect("a stale cache is not an error");
    assert_eq!(action, Action::requeue(Duration::from_secs(1)));
    server.await.expect("scenario");
    assert!(store.requests().is_empty());
}

#[tokio::test]
async fn a_hold_on_a_bucket_that_never_completed_a_pass_says_it_is_not_applied_yet() {
    let store = seeded_store(false);
    let h = hold(false);
    let mut b = bucket("calls");
    b.status = Some(status::bucket_status(
        None,
        Some(4),
        &status::BucketOutcome::Invalid {
            reason: "SecretNotFound",
            message: "spec.s3.credentials.secretRef.name: Secret `s3` not found".into(),
        },
        now(),
    ));
    let (client, server) = Scenario::default().get_bucket(&b).hold_status(&h).serve();
    let ctx = context(client, store);
    reconcile_hold(Arc::new(h), &ctx).await.expect("reported");
    let played = server.await.expect("scenario");
    let ready = condition(played.body("hold status"), "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("BucketNotReady"))
    );
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("SecretNotFound")
    );
}
