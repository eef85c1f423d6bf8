//! Reconcilers against a mocked API server (tower-test) and the in-memory store, with a fixed
//! clock. Each scenario lists the requests the reconciler must make, in order, and asserts
//! their method, path and body.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::{Client, Resource};
use serde_json::{Value, json};

use super::*;
use crate::api::v1alpha1::{
    Article6, ClassifyRuleSpec, DataController, EnforcementMode, HoldReason, HoldSelectSpec,
    LegalBasis, LegalHoldSpec, LocalRef, MatchSpec, PurposeSpec, RecordingBucketSpec,
    RetentionPolicySpec,
};
use crate::retention::RETENTION_TAG;
use crate::store::memory::MemoryStore;

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
            controller: DataController {
                legal_name: "Example Forsikring A/S".into(),
                org_number: None,
                contact: None,
            },
            description: None,
            purposes: vec![PurposeSpec {
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
        },
    );
    b.meta_mut().namespace = Some(NS.into());
    b.meta_mut().generation = Some(4);
    b
}

fn hold(deleting: bool) -> LegalHold {
    let mut h = LegalHold::new(
        "complaint-1",
        LegalHoldSpec {
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

/// One expected request: method, path (without query) and the JSON to answer with.
struct Expect {
    method: &'static str,
    path: String,
    status: u16,
    reply: Value,
}

fn expect(method: &'static str, path: &str, reply: Value) -> Expect {
    Expect {
        method,
        path: path.into(),
        status: 200,
        reply,
    }
}

fn not_found(method: &'static str, path: &str) -> Expect {
    Expect {
        method,
        path: path.into(),
        status: 404,
        reply: json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"not found","reason":"NotFound","code":404}),
    }
}

/// What the mocked API server saw: per request, `METHOD path?query`, unused, and the JSON body.
type Seen = Vec<(String, String, Value)>;

/// Plays the scenario; returns the JSON bodies of the requests, in order.
fn api_server(scenario: Vec<Expect>) -> (Client, tokio::task::JoinHandle<Seen>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        let mut handle = std::pin::pin!(handle);
        let mut seen = Vec::new();
        for (i, step) in scenario.into_iter().enumerate() {
            let (request, send) = handle.next_request().await.unwrap_or_else(|| {
                panic!(
                    "step {i}: expected {} {}, got no request",
                    step.method, step.path
                )
            });
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or_default().to_string();
            assert_eq!(
                (method.as_str(), path.as_str()),
                (step.method, step.path.as_str()),
                "step {i} (query {query})"
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
            seen.push((format!("{method} {path}?{query}"), String::new(), body));
            let response = Response::builder()
                .status(step.status)
                .body(Body::from(serde_json::to_vec(&reply).expect("json")))
                .expect("response");
            send.send_response(response);
        }
        seen
    });
    (Client::new(service, NS), task)
}

fn context(client: Client, store: Arc<MemoryStore>) -> Context<FakeFactory> {
    let metrics = Arc::new(Metrics::new().expect("metrics"));
    let reporter = Reporter {
        controller: "gallring".into(),
        instance: Some("test".into()),
    };
    Context::new(client, FakeFactory(store), metrics, reporter).with_clock(Arc::new(now))
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

#[tokio::test]
async fn a_bucket_whose_policy_is_missing_gets_a_condition_and_an_event_and_no_s3_request() {
    let store = seeded_store(false);
    let b = bucket("missing");
    let (client, server) = api_server(vec![
        not_found("GET", &format!("{BASE}/retentionpolicies/missing")),
        expect(
            "PATCH",
            &format!("{BASE}/recordingbuckets/calls/status"),
            to_json(&b),
        ),
        expect("POST", EVENTS, Value::Null),
    ]);
    let ctx = context(client, store.clone());
    let action = reconcile_bucket(&b, &ctx, None)
        .await
        .expect("an invalid spec is not an error");
    assert_eq!(action, Action::await_change());
    let seen = server.await.expect("scenario");
    assert!(
        seen[1].0.contains("fieldManager=gallring") && seen[1].0.contains("force=true"),
        "{}",
        seen[1].0
    );
    let ready = condition(&seen[1].2, "Ready");
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
    assert_eq!(seen[1].2["status"]["observedGeneration"], 4);
    assert_eq!(seen[2].2["reason"], "PolicyNotFound");
    assert_eq!(seen[2].2["type"], "Warning");
    assert!(
        store.requests().is_empty(),
        "no S3 request for an invalid spec: {:?}",
        store.requests()
    );
}

#[tokio::test]
async fn first_reconcile_tags_objects_and_reports_counts_in_status() {
    let store = seeded_store(false);
    let b = bucket("calls");
    let (client, server) = api_server(vec![
        expect(
            "GET",
            &format!("{BASE}/retentionpolicies/calls"),
            to_json(&policy()),
        ),
        expect(
            "GET",
            &format!("{BASE}/legalholds"),
            json!({"apiVersion":"gallring.io/v1alpha1","kind":"LegalHoldList","metadata":{},"items":[]}),
        ),
        expect(
            "PATCH",
            &format!("{BASE}/recordingbuckets/calls/status"),
            to_json(&b),
        ),
        expect("POST", EVENTS, Value::Null), // LifecycleUpdated
        expect("POST", EVENTS, Value::Null), // ObjectsDeleted: r1 (2025-06-01 + P1Y) is past grace
    ]);
    let ctx = context(client, store.clone());
    let action = reconcile_bucket(&b, &ctx, None).await.expect("reconciles");
    let seen = server.await.expect("scenario");
    let status = &seen[2].2["status"];
    assert_eq!(status["objects"], 1, "r1 was deleted; r2 remains");
    assert_eq!(status["retained"], 1);
    assert_eq!(status["overdue"], 0);
    assert_eq!(status["nextDeadline"], "2027-06-01T09:00:00Z");
    assert_eq!(condition(&seen[2].2, "Ready")["status"], "True");
    assert_eq!(condition(&seen[2].2, "LifecycleSynced")["status"], "True");
    assert_eq!(condition(&seen[2].2, "Degraded")["status"], "False");
    assert_eq!(seen[3].2["reason"], "LifecycleUpdated");
    assert_eq!(seen[4].2["reason"], "ObjectsDeleted");
    assert_eq!(
        store
            .tags("audio/r2.wav")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
            .as_deref(),
        Some("expire-365d")
    );
    assert!(!store.live_keys().contains("audio/r1.wav"));
    // Requeued for the scan interval (the next deadline is months away).
    assert_eq!(action, Action::requeue(Duration::from_secs(3600)));
}

#[tokio::test]
async fn creating_a_hold_protects_the_objects_and_reports_it_on_the_hold() {
    let store = seeded_store(true);
    let b = bucket("calls");
    let h = hold(false);
    let (client, server) = api_server(vec![
        expect(
            "GET",
            &format!("{BASE}/retentionpolicies/calls"),
            to_json(&policy()),
        ),
        expect(
            "GET",
            &format!("{BASE}/legalholds"),
            json!({"apiVersion":"gallring.io/v1alpha1","kind":"LegalHoldList","metadata":{},"items":[to_json(&h)]}),
        ),
        expect(
            "PATCH",
            &format!("{BASE}/recordingbuckets/calls/status"),
            to_json(&b),
        ),
        expect("POST", EVENTS, Value::Null), // LifecycleUpdated
        expect(
            "PATCH",
            &format!("{BASE}/legalholds/complaint-1/status"),
            to_json(&h),
        ),
        expect("POST", EVENTS, Value::Null), // HoldApplied
    ]);
    let ctx = context(client, store.clone());
    reconcile_bucket(&b, &ctx, None).await.expect("reconciles");
    let seen = server.await.expect("scenario");
    assert_eq!(seen[2].2["status"]["held"], 1);
    assert_eq!(seen[4].2["status"]["matched"], 1);
    assert_eq!(condition(&seen[4].2, "Ready")["reason"], "Applied");
    assert_eq!(seen[5].2["reason"], "HoldApplied");
    assert!(
        store.legal_hold("audio/r1.wav"),
        "Object Lock legal hold set"
    );
    assert!(
        store.live_keys().contains("audio/r1.wav"),
        "a held object past its deadline is kept"
    );
    assert_eq!(
        store
            .tags("audio/r1.wav")
            .and_then(|t| t.get(RETENTION_TAG).cloned())
            .as_deref(),
        Some("held")
    );
}

#[tokio::test]
async fn deleting_a_hold_releases_the_objects_before_the_finalizer_is_removed() {
    let store = seeded_store(true);
    // The hold was applied earlier.
    let engine = engine_hold(&hold(false)).expect("valid hold");
    let compiled = compile::policy("p", &policy().spec).expect("valid");
    let rules = compile::bucket("b", &bucket("calls").spec, &compiled).expect("valid");
    reconcile::reconcile(
        &store,
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

    let h = hold(true);
    let b = bucket("calls");
    let mut released = to_json(&h);
    released["metadata"]["finalizers"] = json!([]);
    let (client, server) = api_server(vec![
        expect(
            "GET",
            &format!("{BASE}/recordingbuckets/calls"),
            to_json(&b),
        ),
        expect(
            "GET",
            &format!("{BASE}/retentionpolicies/calls"),
            to_json(&policy()),
        ),
        expect(
            "GET",
            &format!("{BASE}/legalholds"),
            json!({"apiVersion":"gallring.io/v1alpha1","kind":"LegalHoldList","metadata":{},"items":[to_json(&h)]}),
        ),
        expect(
            "PATCH",
            &format!("{BASE}/recordingbuckets/calls/status"),
            to_json(&b),
        ),
        expect("POST", EVENTS, Value::Null), // ObjectsDeleted: r1 is long past its deadline once released
        expect("POST", EVENTS, Value::Null), // HoldReleased
        expect("PATCH", &format!("{BASE}/legalholds/complaint-1"), released),
    ]);
    let ctx = context(client, store.clone());
    reconcile_hold(Arc::new(h), &ctx).await.expect("released");
    let seen = server.await.expect("scenario");
    assert_eq!(seen[3].2["status"]["held"], 0);
    assert_eq!(seen[4].2["reason"], "ObjectsDeleted");
    assert_eq!(seen[5].2["reason"], "HoldReleased");
    // The finalizer goes last, as a JSON patch that removes exactly it.
    let patch = seen[6].2.to_string();
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
async fn a_store_failure_marks_the_bucket_degraded_and_backs_off() {
    let store = Arc::new(MemoryStore::missing("calls"));
    let b = bucket("calls");
    let (client, server) = api_server(vec![
        expect(
            "GET",
            &format!("{BASE}/retentionpolicies/calls"),
            to_json(&policy()),
        ),
        expect(
            "GET",
            &format!("{BASE}/legalholds"),
            json!({"apiVersion":"gallring.io/v1alpha1","kind":"LegalHoldList","metadata":{},"items":[]}),
        ),
        expect(
            "PATCH",
            &format!("{BASE}/recordingbuckets/calls/status"),
            to_json(&b),
        ),
        expect("POST", EVENTS, Value::Null),
    ]);
    let ctx = Arc::new(context(client, store.clone()));
    let err = reconcile_bucket(&b, &ctx, None)
        .await
        .expect_err("the bucket is missing");
    assert_eq!(err.category(), "no_such_bucket");
    let seen = server.await.expect("scenario");
    let degraded = condition(&seen[2].2, "Degraded");
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("NoSuchBucket"))
    );
    assert_eq!(seen[3].2["reason"], "ScanFailed");
    let guard = Arc::new(DeserializeGuard(Ok(b.clone())));
    let first = error_policy(guard.clone(), &err, ctx.clone());
    let second = error_policy(guard, &err, ctx.clone());
    assert_eq!(first, Action::requeue(Duration::from_secs(10)));
    assert_eq!(second, Action::requeue(Duration::from_secs(20)));
    assert!(!store.requests().iter().any(|o| matches!(
        o,
        crate::store::Operation::DeleteObjects | crate::store::Operation::PutObjectTagging
    )));
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
