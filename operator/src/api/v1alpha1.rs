//! `gallring.io/v1alpha1`: RetentionPolicy, RecordingBucket and LegalHold.
//!
//! Every field's doc comment becomes its CRD description (`kubectl explain`). Rules the schema
//! can express are in the schema (patterns, enums, CEL); `api::compile` checks the same rules
//! and the rest for the standalone host, which has no API server.

// kube's `printcolumn(...)` attributes repeat keys by design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// RE2-compatible pattern for the ISO-8601 durations gallring accepts. The empty forms `P` and
/// `PT` are rejected by a CEL rule and by the engine.
pub const DURATION_PATTERN: &str =
    r"^P([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+S)?)?$";
/// Purpose names are DNS-label-like so they fit in reports, tags and metric labels.
pub const NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// Artifact kinds: `audio`, `transcript`, `maskedTranscript`, `video`, `chat` or a custom kind.
pub const KIND_PATTERN: &str = r"^[a-z][a-zA-Z0-9]*$";

// Length bounds. Every string in the CRDs has a `maxLength` (and every list a `maxItems`): the API
// server then rejects oversized input before it reaches etcd or the operator, and CEL rules stay
// within their cost budget. Map keys cannot be bounded in a structural schema; `api::compile`
// checks those.

/// Kubernetes object names (DNS subdomain).
pub const NAME_MAX: usize = 253;
/// Purpose names and artifact kinds (DNS-label length).
pub const LABEL_MAX: usize = 63;
/// Short free text such as contact details (legal names, cases and owners keep their 200).
pub const SHORT_TEXT_MAX: usize = 256;
/// Longer free text: descriptions.
pub const TEXT_MAX: usize = 1024;
/// S3 object keys and key prefixes (S3 limit 1024 bytes).
pub const KEY_MAX: usize = 1024;
/// Globs and regular expressions over keys.
pub const PATTERN_MAX: usize = 1024;
/// S3 tag keys (S3 limit 128 characters).
pub const TAG_KEY_MAX: usize = 128;
/// S3 tag values (S3 limit 256 characters).
pub const TAG_VALUE_MAX: usize = 256;
/// S3 user-metadata keys.
pub const METADATA_KEY_MAX: usize = 128;
/// Region names.
pub const REGION_MAX: usize = 64;
/// Endpoint URLs.
pub const URL_MAX: usize = 2048;
/// RFC 3339 timestamps.
pub const TIMESTAMP_MAX: usize = 64;
/// Enum values (the longest is 25 characters).
pub const ENUM_MAX: usize = 32;
/// Exact keys, recording ids or subjects one LegalHold may list.
pub const HOLD_SELECT_MAX: usize = 1000;
/// Tags one match or selector may require (S3 allows 10 per object).
pub const TAGS_MAX: usize = 16;
/// Conditions in a status.
pub const CONDITIONS_MAX: usize = 32;

// ---------------------------------------------------------------------------------------------
// RetentionPolicy

/// Why recordings are kept and for how long: the executable form of one privacy notice (or one
/// controller's part of it).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "gallring.io",
    version = "v1alpha1",
    kind = "RetentionPolicy",
    namespaced,
    shortname = "rpol",
    category = "gallring",
    status = "RetentionPolicyStatus",
    doc = "Why recordings are kept and for how long: purposes, their legal basis and retention per artifact kind.",
    printcolumn(
        name = "Controller",
        type_ = "string",
        json_path = ".spec.controller.legalName"
    ),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionPolicySpec {
    /// The data controller responsible for the processing these purposes describe.
    pub controller: DataController,
    /// Free text: which notice (and version) this policy implements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TEXT_MAX))]
    pub description: Option<String>,
    /// The purposes recordings are kept for. An object is kept for the longest retention among
    /// its active purposes for its artifact kind.
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.name == p.name))").message("purpose names must be unique"))]
    pub purposes: Vec<PurposeSpec>,
    /// How long an object is still kept after a hold of a given reason ends, for example a
    /// limitation period after a dispute is closed. Reasons not listed keep nothing extra: the
    /// object keeps its normal deadline (or is deleted at once if that has passed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(r, self.exists_one(s, s.reason == r.reason))").message("each hold reason may appear once in holdRelease"))]
    pub hold_release: Vec<HoldReleaseSpec>,
    /// The IANA time zone the notice's dates are in, e.g. `Europe/Copenhagen` or
    /// `Europe/Stockholm`; default `UTC`. Date-only values (`2026-03-01` in a recorded-at,
    /// assessment or withdrawal tag) mean midnight there, and retentions are counted on its
    /// local calendar (`P1M` from 31 January local time ends on the last day of February local
    /// time; a day across a daylight-saving change is 23 or 25 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
}

/// The legal person responsible for the processing (GDPR Art. 4(7)).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataController {
    /// Registered legal name, e.g. "Tryg Forsikring A/S".
    #[schemars(length(min = 1, max = 200))]
    pub legal_name: String,
    /// Company registration number (CVR, organisationsnummer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub org_number: Option<String>,
    /// Where data subjects exercise their rights (e-mail or address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = SHORT_TEXT_MAX))]
    pub contact: Option<String>,
}

/// One purpose of processing.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.legalBasis.article6 != 'consent' || self.withdrawable").message("a purpose based on consent must be withdrawable (GDPR Art. 7(3))"))]
pub struct PurposeSpec {
    /// Short name, referenced by classify rules and the `gallring.io/withdrawn` tag
    /// (lowercase letters, digits and '-').
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// What the purpose is, in the notice's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TEXT_MAX))]
    pub description: Option<String>,
    /// The lawful basis for processing under this purpose.
    pub legal_basis: LegalBasis,
    /// True when the data subject can end this purpose (withdrawn consent, an opt-out or an
    /// objection). A withdrawn purpose no longer counts towards an object's retention.
    #[serde(default)]
    pub withdrawable: bool,
    /// Retention per artifact kind (`audio`, `transcript`, `maskedTranscript`, `video`, `chat`
    /// or a custom kind) as an ISO-8601 duration counted from the recording time: `P30D`,
    /// `P6M`, `P1Y`, `P3Y`. `P0D` means the purpose ends at once.
    // Kinds are checked by the operator, not by CEL: map keys have no length bound in a
    // structural schema, so a CEL rule over them would exceed the API server's cost budget.
    #[schemars(length(min = 1), extend("maxProperties" = 32))]
    pub retain: BTreeMap<String, DurationText>,
    /// A different data controller for this purpose, where it is not the policy's. Plans,
    /// status, Events and metrics name each object's controllers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<DataController>,
    /// What `retain` promises:
    ///
    /// - `KeepAtLeast` (default): the purpose needs the object this long; it may be deleted
    ///   from then on and is overdue once the bucket's gracePeriod has passed too.
    /// - `DeleteBy`: the notice promises it is gone by then ("not kept more than 180 days").
    ///   gallring plans deletion a gracePeriod earlier (one scanInterval earlier, deleting it
    ///   itself, where the period is shorter than the grace), counts the period from the
    ///   earliest trustworthy recording time (a missing or implausible recorded-at value
    ///   counts from the upload minus `recordedAt.maxAgeAtUpload`), and the object is overdue
    ///   as soon as the period has passed.
    #[serde(default)]
    pub retain_means: RetainMeans,
    /// Count `retain` (and `useFor`) from an event read from the object instead of the
    /// recording time: an assessment, a contract's end. The time is never taken as earlier
    /// than the recording, and nothing is overdue before the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<EventTimeSpec>,
    /// How long the purpose may use each artifact kind, where that is shorter than `retain`
    /// keeps it (e.g. audio used for quality for 1 year within 3 years of storage), as an
    /// ISO-8601 duration counted like `retain`. Reported in plans (when each use ends), not
    /// enforced: storage is what gallring enforces.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub use_for: BTreeMap<String, DurationText>,
}

/// What a purpose's `retain` promises: see `purposes[].retainMeans`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[schemars(extend("maxLength" = ENUM_MAX))]
pub enum RetainMeans {
    /// Kept at least this long; deletable from then on.
    #[default]
    KeepAtLeast,
    /// Gone by then.
    DeleteBy,
}

/// Where the time of the event a purpose counts from is read: exactly one of tag and metadata.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.tag) != has(self.metadata)").message("set exactly one of tag and metadata"))]
pub struct EventTimeSpec {
    /// An object tag with an RFC 3339 timestamp or YYYY-MM-DD date, e.g. `assessed-at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = TAG_KEY_MAX))]
    pub tag: Option<String>,
    /// A user-metadata key (without `x-amz-meta-`), e.g. `contract-ended-at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = METADATA_KEY_MAX))]
    pub metadata: Option<String>,
    /// While the value is absent or not a date:
    ///
    /// - `Wait` (default): the event has not happened; this purpose keeps the object with no
    ///   deadline (the contract is still running).
    /// - `RecordingTime`: count from the recording time, as without `from`.
    #[serde(default)]
    pub if_missing: IfEventMissing,
}

/// See `from.ifMissing`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[schemars(extend("maxLength" = ENUM_MAX))]
pub enum IfEventMissing {
    /// No deadline for this purpose until the event time is there.
    #[default]
    Wait,
    /// Count from the recording time.
    RecordingTime,
}

/// The GDPR basis of a purpose.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegalBasis {
    /// Art. 6(1): consent (a), contract (b), legalObligation (c), vitalInterests (d),
    /// publicTask (e) or legitimateInterests (f).
    // maxLength bounds the CEL cost estimate of rules that compare it.
    #[schemars(length(max = 32))]
    pub article6: Article6,
    /// Art. 9(2) condition, when special categories (e.g. health data) are processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub article9: Option<Article9>,
}

/// GDPR Art. 6(1) lawful bases, (a) to (f).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("maxLength" = ENUM_MAX))]
pub enum Article6 {
    Consent,
    Contract,
    LegalObligation,
    VitalInterests,
    PublicTask,
    LegitimateInterests,
}

/// GDPR Art. 9(2) conditions, (a) to (j).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("maxLength" = ENUM_MAX))]
pub enum Article9 {
    ExplicitConsent,
    Employment,
    VitalInterests,
    NotForProfit,
    MadePublic,
    LegalClaims,
    SubstantialPublicInterest,
    HealthOrSocialCare,
    PublicHealth,
    ArchivingOrResearch,
}

/// How long an object is still kept after a hold of one reason ends.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HoldReleaseSpec {
    /// The hold reason this applies to.
    #[schemars(extend("maxLength" = 32))]
    pub reason: HoldReason,
    /// ISO-8601 duration counted from the hold's `limitationStart` when it has one (the
    /// limitation period runs from then), else from its release (or expiry). The object keeps
    /// the later of its normal deadline and that time + keep.
    pub keep: DurationText,
    /// The longest a hold of this reason protects (ISO 8601), counted from its
    /// `limitationStart`, else its creation: its `expires` is capped there ("kept for up to
    /// one year", "at the latest under the limitation rules"). A hold with neither time is
    /// not capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hold: Option<DurationText>,
}

/// An ISO-8601 duration such as `P30D`, `P2W`, `P6M`, `P1Y` or `P1Y6M`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl JsonSchema for DurationText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DurationText".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 40,
            "x-kubernetes-validations": [
                {"rule": "self != 'P' && self != 'PT' && !self.endsWith('T')", "message": "a duration needs at least one part, e.g. P30D"}
            ]
        })
    }
}

impl From<&str> for DurationText {
    fn from(s: &str) -> Self {
        DurationText(s.to_string())
    }
}

/// Observed state of a RetentionPolicy.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicyStatus {
    /// `Ready` is True when the policy is valid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// RecordingBucket

/// One bucket (or key prefix) of recordings under one RetentionPolicy.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "gallring.io",
    version = "v1alpha1",
    kind = "RecordingBucket",
    namespaced,
    shortname = "rbkt",
    category = "gallring",
    status = "RecordingBucketStatus",
    doc = "A bucket or prefix of call recordings governed by one RetentionPolicy.",
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policyRef.name"),
    printcolumn(
        name = "Enforcement",
        type_ = "string",
        json_path = ".spec.enforcement"
    ),
    printcolumn(name = "Objects", type_ = "integer", json_path = ".status.objects"),
    printcolumn(name = "Held", type_ = "integer", json_path = ".status.held"),
    printcolumn(name = "Overdue", type_ = "integer", json_path = ".status.overdue"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordingBucketSpec {
    /// Where the recordings are.
    pub s3: S3Location,
    /// The RetentionPolicy (same namespace) that governs these recordings.
    pub policy_ref: LocalRef,
    /// Ordered rules, first match wins, that give each object an artifact kind and the purposes
    /// it serves. Objects no rule matches are unclassified: reported and alerted on, never
    /// deleted.
    #[schemars(length(min = 1, max = 100))]
    pub classify: Vec<ClassifyRuleSpec>,
    /// How to read the recording id, which links the audio, transcripts and masked transcripts
    /// of one call so that a hold on one reaches all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<RecordingIdSpec>,
    /// Where the pseudonymous data-subject id is, so holds can select by subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectSpec>,
    /// Where the recording time is; default: the object's creation time (LastModified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<RecordedAtSpec>,
    /// Observe: report only, write nothing. Lifecycle: tags and lifecycle rules; the operator
    /// deletes nothing. Operator: the operator deletes at the deadline (stores without
    /// tag-filtered lifecycle). Both (default): lifecycle does the bulk, the operator deletes
    /// what lifecycle cannot express.
    #[serde(default)]
    pub enforcement: EnforcementMode,
    /// How long past its deadline an object may still exist before it counts as overdue. S3
    /// lifecycle runs about daily and rounds to midnight UTC, so keep at least P2D when
    /// lifecycle deletes.
    #[serde(default = "default_grace")]
    pub grace_period: DurationText,
    /// How often the bucket is listed and reconciled.
    #[serde(default = "default_scan_interval")]
    pub scan_interval: DurationText,
    /// How long gallring may decide an unchanged object from its local index before it reads
    /// the object's tags again (ISO 8601, default `P7D`). A tag someone else changes without
    /// changing the object (consent given, a retention tag removed) is noticed within this
    /// time; deletions, holds and tag writes are always decided on tags read just before.
    #[serde(default = "default_verify_interval")]
    pub verify_interval: DurationText,
    /// What happens to the bucket's lifecycle rules when this RecordingBucket is deleted:
    ///
    /// - `Remove` (default): gallring removes the lifecycle rules it owns (ids starting
    ///   `gallring-`) from the bucket. That can only make expiry later; object tags are left.
    /// - `Retain`: the rules stay in the bucket and keep expiring tagged objects.
    #[serde(default)]
    pub lifecycle_rules_on_delete: LifecycleRulesOnDelete,
    /// Where gallring keeps this bucket's journal (holds applied and released, legal holds it
    /// set, deletions and their reasons): default, the prefix `.gallring/` in the recordings
    /// bucket itself. A new cluster, or `gallring run`, pointed at the same location inherits
    /// every floor and every gallring-owned legal hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSpec>,
}

/// The journal's location.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateSpec {
    /// Another bucket at the same endpoint, reached with the same credentials; default: the
    /// recordings bucket. Its lifecycle rules are not checked by gallring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    )]
    pub bucket: Option<String>,
    /// Key prefix of the journal, ending with `/`; default `.gallring/`. In the recordings
    /// bucket, keys under it are never classified, counted or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = KEY_MAX), regex(pattern = r"/$"))]
    pub prefix: Option<String>,
    /// Object Lock retention (GOVERNANCE mode) given to every journal segment and checkpoint,
    /// ISO 8601, e.g. `P10Y`: no one without the bypass permission can delete or overwrite the
    /// evidence before then. The state bucket must have Object Lock enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<DurationText>,
}

fn default_grace() -> DurationText {
    DurationText("P2D".into())
}
fn default_scan_interval() -> DurationText {
    DurationText("PT1H".into())
}
fn default_verify_interval() -> DurationText {
    DurationText("P7D".into())
}

/// A reference to an object in the same namespace.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRef {
    /// Name of the referenced object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// An S3 bucket, optionally a prefix in it, and how to reach it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Location {
    /// Bucket name.
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    )]
    pub bucket: String,
    /// Only keys under this prefix are governed; others are never listed or touched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = KEY_MAX))]
    pub prefix: Option<String>,
    /// Region; default: from the AWS configuration chain (AWS_REGION, profile), else
    /// us-east-1. A bucket in another region is found from the store's `x-amz-bucket-region`
    /// answer; where a store gives none, the error names the region tried: set this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = REGION_MAX))]
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible stores (MinIO, Ceph RGW), e.g. http://rgw.storage:7480.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = URL_MAX), regex(pattern = r"^https?://"))]
    pub endpoint: Option<String>,
    /// Path-style addressing (bucket in the path, not the host name); needed by most
    /// S3-compatible stores. Defaults to true when an endpoint is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_path_style: Option<bool>,
    /// Credentials. Absent: the default AWS chain (environment, web identity / IRSA, instance
    /// profile). Credentials are never written inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<S3Credentials>,
}

/// Where S3 credentials come from.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3Credentials {
    /// A Secret in the bucket's namespace with keys `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN`.
    pub secret_ref: LocalRef,
}

/// One classify rule. All given conditions must hold for the rule to match.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("(has(self.purposes) && size(self.purposes) > 0) || has(self.purposesFromTag)").message("a classify rule needs purposes or purposesFromTag"))]
pub struct ClassifyRuleSpec {
    /// A name shown in plans and reasons; default `classify[<index>]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = NAME_MAX))]
    pub name: Option<String>,
    /// The conditions; an empty match matches every object.
    #[serde(default, rename = "match")]
    pub matches: MatchSpec,
    /// The artifact kind the matched objects are (`audio`, `transcript`, `maskedTranscript`,
    /// `video`, `chat` or a custom kind named in the policy's `retain`).
    #[schemars(length(min = 1, max = LABEL_MAX), regex(pattern = r"^[a-z][a-zA-Z0-9]*$"))]
    pub kind: String,
    /// Purposes every matched object serves (names from the policy).
    #[serde(default)]
    #[schemars(length(max = 32), inner(length(max = LABEL_MAX)))]
    pub purposes: Vec<String>,
    /// Purposes read from a tag written by the recorder, e.g. a consent choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purposes_from_tag: Option<PurposesFromTagSpec>,
}

/// Conditions on an object's key and tags.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchSpec {
    /// The key starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = KEY_MAX))]
    pub prefix: Option<String>,
    /// The whole key matches this glob (`*` within one path segment, `**` across segments,
    /// `?`, `[abc]`, `{a,b}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = PATTERN_MAX))]
    pub glob: Option<String>,
    /// Each tag is present with this value; the value `*` accepts any value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = TAGS_MAX,
        "additionalProperties" = {"type": "string", "maxLength": TAG_VALUE_MAX}
    ))]
    pub tags: BTreeMap<String, String>,
}

/// Purposes chosen by one tag's value.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurposesFromTagSpec {
    /// The tag key, e.g. `consent`.
    #[schemars(length(min = 1, max = TAG_KEY_MAX))]
    pub key: String,
    /// Tag value → purposes it adds. A value not listed (or a missing tag) adds none.
    #[schemars(extend(
        "maxProperties" = 64,
        "additionalProperties" = {
            "type": "array",
            "maxItems": 32,
            "items": {"type": "string", "maxLength": LABEL_MAX}
        }
    ))]
    pub values: BTreeMap<String, Vec<String>>,
}

/// Exactly one source of the recording id.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.keyPattern) != has(self.tag)").message("set exactly one of keyPattern and tag"))]
pub struct RecordingIdSpec {
    /// A regular expression on the key with a named group `id`, e.g.
    /// `^calls/(?P<id>[^/]+)/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = PATTERN_MAX))]
    pub key_pattern: Option<String>,
    /// An object tag holding the recording id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TAG_KEY_MAX))]
    pub tag: Option<String>,
}

/// Where the data-subject id is.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectSpec {
    /// An object tag holding a pseudonymous data-subject id.
    #[schemars(length(max = TAG_KEY_MAX))]
    pub tag: String,
}

/// At most one source of the recording time.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!(has(self.tag) && has(self.metadata))").message("set at most one of tag and metadata"))]
pub struct RecordedAtSpec {
    /// An object tag with an RFC 3339 timestamp or YYYY-MM-DD date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TAG_KEY_MAX))]
    pub tag: Option<String>,
    /// A user-metadata key (without `x-amz-meta-`) with an RFC 3339 timestamp or date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = METADATA_KEY_MAX))]
    pub metadata: Option<String>,
    /// How long after the call a recording may be uploaded (ISO 8601, e.g. `P30D`). A
    /// recorded-at value earlier than the object's creation time minus this is not trusted: the
    /// deadline counts from creation minus this instead, so a wrong date years in the past
    /// cannot make a recording deletable at once (reported as `too_old`). Set it large, e.g.
    /// `P10Y`, when importing an archive. Absent: no lower bound. A value after the creation
    /// time is always replaced by the creation time (reported as `future` beyond 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_at_upload: Option<DurationText>,
}

/// Who deletes: see `spec.enforcement`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[schemars(extend("maxLength" = ENUM_MAX))]
pub enum EnforcementMode {
    Observe,
    Lifecycle,
    Operator,
    #[default]
    Both,
}

/// What happens to the bucket's gallring lifecycle rules when its RecordingBucket is deleted: see
/// `spec.lifecycleRulesOnDelete`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema)]
#[schemars(extend("maxLength" = ENUM_MAX))]
pub enum LifecycleRulesOnDelete {
    /// On deletion of the RecordingBucket, gallring removes the lifecycle rules it owns (ids
    /// starting `gallring-`) from the bucket. That can only make expiry later, never earlier.
    /// Object tags are left as they are.
    #[default]
    Remove,
    /// The lifecycle rules stay in the bucket and keep expiring tagged objects after the
    /// RecordingBucket is gone.
    Retain,
}

/// Observed state of a RecordingBucket, from the last completed scan.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordingBucketStatus {
    /// `Ready`, `LifecycleSynced`, `Degraded` and `Conflict`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Object versions seen in the last scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// Their total size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Objects kept until a future deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained: Option<u64>,
    /// Objects under at least one active hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<u64>,
    /// Objects past deadline + grace that still exist. Should be 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue: Option<u64>,
    /// Objects no classify rule matches (never deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unclassified: Option<u64>,
    /// The earliest upcoming deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub next_deadline: Option<DateTime<Utc>>,
    /// Objects and overdue objects per data controller of their purposes (legal name), from
    /// the policy's and its purposes' `controller`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub controllers: Vec<ControllerCount>,
    /// The Ed25519 public key (hex) the journal's seals verify under, when the operator signs
    /// them: `gallring journal verify --bucket NAME -n NAMESPACE` checks against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub journal_public_key: Option<String>,
    /// When the last completed scan started (this host's clock); it is written when the scan
    /// ends. Its decisions are as of decidedAt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub last_scan: Option<DateTime<Utc>>,
    /// The time the last scan decided by: the earlier of this host's clock and the store's
    /// (whole seconds), never before the journal's last record. Deadlines are compared with
    /// it, so an object due between it and lastScan waits for the next scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub decided_at: Option<DateTime<Utc>>,
}

/// One data controller's share of a bucket.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControllerCount {
    /// The controller's legal name.
    #[schemars(length(max = 200))]
    pub legal_name: String,
    /// Object versions serving its purposes.
    pub objects: u64,
    /// Of those, overdue.
    pub overdue: u64,
}

// ---------------------------------------------------------------------------------------------
// LegalHold

/// Pauses expiry of the recordings it selects until it is deleted or expires.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "gallring.io",
    version = "v1alpha1",
    kind = "LegalHold",
    namespaced,
    shortname = "lhold",
    category = "gallring",
    status = "LegalHoldStatus",
    doc = "Pauses expiry of selected recordings while a complaint, dispute, claim or other case needs them.",
    printcolumn(name = "Bucket", type_ = "string", json_path = ".spec.bucketRef.name"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".spec.reason"),
    printcolumn(name = "Case", type_ = "string", json_path = ".spec.case"),
    printcolumn(name = "Matched", type_ = "integer", json_path = ".status.matched"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    // `type: date` renders an age, and a future time as `<invalid>`: expiry is shown as written.
    printcolumn(
        name = "Expires",
        type_ = "string",
        json_path = ".spec.expires",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegalHoldSpec {
    /// The RecordingBucket (same namespace) whose objects are held.
    pub bucket_ref: LocalRef,
    /// Why the recordings are needed; the policy's holdRelease for this reason applies on
    /// release.
    pub reason: HoldReason,
    /// The case reference in the case system, e.g. "CLM-2026-0042".
    #[schemars(length(min = 1, max = 200))]
    pub case: String,
    /// Who is responsible for the hold (person or team).
    #[schemars(length(min = 1, max = 200))]
    pub owner: String,
    /// After this time the hold is flagged for review (it stays active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub review_by: Option<DateTime<Utc>>,
    /// The hold ends by itself at this time, as if deleted then (e.g. an access request: one
    /// year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub expires: Option<DateTime<Utc>>,
    /// Which objects are held. An object is held when any selector matches it, and then every
    /// object with the same recording id is held too.
    pub select: HoldSelectSpec,
    /// Limits what `select` holds, including linked artifacts: only these kinds, only
    /// recordings made in a time window ("the calls about this dispute", not every later call
    /// of the same customer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<HoldScopeSpec>,
    /// When the limitation period of the case began to run (e.g. when the claim fell due,
    /// forældelsesloven § 2), RFC 3339. After release the policy's `holdRelease.keep` counts
    /// from here instead of from the release, and its `maxHold` caps the hold from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub limitation_start: Option<DateTime<Utc>>,
}

/// Limits on what a hold keeps. Unclassified objects (kind unknown) stay in scope.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("!has(self.recordedAfter) || !has(self.recordedBefore) || self.recordedAfter < self.recordedBefore").message("recordedAfter must be before recordedBefore"))]
pub struct HoldScopeSpec {
    /// Only objects of these artifact kinds (empty: every kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = LABEL_MAX)))]
    pub kinds: Vec<String>,
    /// Only recordings made at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub recorded_after: Option<DateTime<Utc>>,
    /// Only recordings made before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub recorded_before: Option<DateTime<Utc>>,
}

/// Why a hold exists.
#[derive(
    Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[schemars(extend("maxLength" = ENUM_MAX))]
pub enum HoldReason {
    Complaint,
    Dispute,
    Claim,
    AccessRequest,
    PoliceReport,
    FraudInvestigation,
    AuthorityRequest,
    /// A restriction of processing (GDPR Art. 18).
    Restriction,
}

/// What a hold selects. At least one selector must be set.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("(has(self.keys) && size(self.keys) > 0) || has(self.prefix) || (has(self.recordingIds) && size(self.recordingIds) > 0) || (has(self.subjects) && size(self.subjects) > 0) || (has(self.tags) && size(self.tags) > 0)").message("a hold must select something: set keys, prefix, recordingIds, subjects or tags"))]
pub struct HoldSelectSpec {
    /// Exact object keys.
    #[serde(default)]
    #[schemars(length(max = HOLD_SELECT_MAX), inner(length(max = KEY_MAX)))]
    pub keys: Vec<String>,
    /// Every key under this prefix (not empty: a hold names what it keeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = KEY_MAX))]
    pub prefix: Option<String>,
    /// Recording ids (see the bucket's recordingId).
    #[serde(default)]
    #[schemars(length(max = HOLD_SELECT_MAX), inner(length(max = KEY_MAX)))]
    pub recording_ids: Vec<String>,
    /// Data-subject ids (see the bucket's subject).
    #[serde(default)]
    #[schemars(
        length(max = HOLD_SELECT_MAX),
        inner(length(max = TAG_VALUE_MAX))
    )]
    pub subjects: Vec<String>,
    /// Objects carrying all these tags; the value `*` accepts any value.
    #[serde(default)]
    #[schemars(extend(
        "maxProperties" = TAGS_MAX,
        "additionalProperties" = {"type": "string", "maxLength": TAG_VALUE_MAX}
    ))]
    pub tags: BTreeMap<String, String>,
}

/// Observed state of a LegalHold.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegalHoldStatus {
    /// `Ready` (applied; reasons include `NoMatch` when the hold selects no object and
    /// `BucketNotFound` when its RecordingBucket does not exist), `NeedsReview` (past reviewBy),
    /// `Expired`. Types and reasons are free-form strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Objects the hold selects (including linked artifacts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<u64>,
    /// Of those, objects whose protection (tag, Object Lock legal hold) is in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// SubjectRequest

/// A data subject's request about their recordings: a withdrawal of consent, an objection, an
/// erasure, a restriction or an access request.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "gallring.io",
    version = "v1alpha1",
    kind = "SubjectRequest",
    namespaced,
    shortname = "sreq",
    category = "gallring",
    status = "SubjectRequestStatus",
    doc = "A data subject's request (GDPR Art. 7(3), 15, 17, 18, 21) carried out on a bucket's recordings: withdrawal, objection, erasure, restriction or access.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Bucket", type_ = "string", json_path = ".spec.bucketRef.name"),
    printcolumn(name = "Reference", type_ = "string", json_path = ".spec.reference"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    // Shown as written (`type: date` renders an age, and a future time as `<invalid>`).
    printcolumn(name = "Due", type_ = "string", json_path = ".status.dueBy"),
    printcolumn(name = "Matched", type_ = "integer", json_path = ".status.matched"),
    printcolumn(
        name = "Received",
        type_ = "string",
        json_path = ".spec.receivedAt",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.subject) || (has(self.recordingIds) && size(self.recordingIds) > 0)").message("a request must select recordings: set subject or recordingIds"))]
#[x_kube(validation = Rule::new("!has(self.purposes) || size(self.purposes) == 0 || self.type == 'Withdrawal' || self.type == 'Objection'").message("purposes applies to Withdrawal and Objection only"))]
#[x_kube(validation = Rule::new("!has(self.liftedAt) || self.type == 'Restriction'").message("liftedAt applies to Restriction only"))]
pub struct SubjectRequestSpec {
    /// The RecordingBucket (same namespace) whose recordings the request is about.
    pub bucket_ref: LocalRef,
    /// The right exercised: `Withdrawal` (Art. 7(3)) and `Objection` (Art. 21) end the
    /// withdrawable purposes of the selected recordings from `receivedAt`; `Erasure` (Art. 17)
    /// deletes every artifact and version of them except what a hold or a purpose with a legal
    /// obligation keeps (each named in the status), and erases them again if they reappear;
    /// `Restriction` (Art. 18) holds them with reason `Restriction` while the request lasts;
    /// `Access` (Art. 15) writes a manifest of them (keys, kinds, purposes, legal basis,
    /// deadlines, holds; no content) to the bucket's state location.
    #[serde(rename = "type")]
    pub type_: SubjectRequestType,
    /// The data subject's pseudonymous id, as the bucket's `subject` source gives it: selects
    /// every artifact of the subject's recordings made up to `receivedAt` (Access: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = TAG_VALUE_MAX))]
    pub subject: Option<String>,
    /// Recording ids (see the bucket's `recordingId`): every artifact and version of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = HOLD_SELECT_MAX), inner(length(min = 1, max = KEY_MAX)))]
    pub recording_ids: Vec<String>,
    /// Withdrawal and Objection: the purposes that end (names from the policy; each must be
    /// withdrawable). Empty: every withdrawable purpose of the selected recordings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = LABEL_MAX)))]
    pub purposes: Vec<String>,
    /// When the request was received (RFC 3339): purposes end from here, and the answer is due
    /// one month later (GDPR Art. 12(3)).
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub received_at: DateTime<Utc>,
    /// The case number in the privacy team's system, e.g. "DSR-2026-0113".
    #[schemars(length(min = 1, max = 200))]
    pub reference: String,
    /// Who handles the request (person or team).
    #[schemars(length(min = 1, max = 200))]
    pub owner: String,
    /// Restriction only: when the restriction ends (RFC 3339); deleting the request ends it
    /// too. The policy's `holdRelease` for reason `Restriction` applies from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub lifted_at: Option<DateTime<Utc>>,
}

/// The rights a SubjectRequest exercises.
#[derive(
    Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[schemars(extend("maxLength" = ENUM_MAX))]
pub enum SubjectRequestType {
    /// Consent withdrawn (Art. 7(3)).
    Withdrawal,
    /// Objection to processing (Art. 21).
    Objection,
    /// Erasure (Art. 17).
    Erasure,
    /// Restriction of processing (Art. 18).
    Restriction,
    /// Access (Art. 15).
    Access,
}

/// Observed state of a SubjectRequest.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubjectRequestStatus {
    /// `Pending` (no pass over its bucket yet), `InProgress`, `Completed`,
    /// `PartiallyCompleted` (done except the exceptions listed) or `Failed` (see conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = ENUM_MAX))]
    pub phase: Option<String>,
    /// When the answer is due: `receivedAt` + one month (GDPR Art. 12(3)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub due_by: Option<DateTime<Utc>>,
    /// Objects the request selects that are still present (every artifact and version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<u64>,
    /// Per artifact kind: selected objects present, deleted (Erasure, in all passes so far)
    /// and kept as exceptions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub kinds: BTreeMap<String, SubjectRequestKindCount>,
    /// Erasure: objects kept, each with what keeps it (a hold, a purpose with a legal
    /// obligation, a released hold's floor); at most 100 are listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub exceptions: Vec<SubjectRequestException>,
    /// Erasure: how many objects are kept in all (the list above may be cut short).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptions_total: Option<u64>,
    /// Erasure: objects that reappeared (a restore, replication) after the erasure and were
    /// deleted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reappeared: Option<u64>,
    /// Access: where the manifest was written (`s3://bucket/key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = URL_MAX))]
    pub manifest: Option<String>,
    /// When the request reached Completed or PartiallyCompleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = TIMESTAMP_MAX))]
    pub completed_at: Option<DateTime<Utc>>,
    /// `Ready` (reasons: `Completed`, `InProgress`, `Invalid`, `BucketNotFound`, …) and
    /// `PastDue` once `dueBy` has passed while the request is open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Counts for one artifact kind.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubjectRequestKindCount {
    /// Selected objects present.
    #[serde(default)]
    pub matched: u64,
    /// Deleted by gallring under this request.
    #[serde(default)]
    pub deleted: u64,
    /// Kept as exceptions (Erasure).
    #[serde(default)]
    pub kept: u64,
}

/// An object an erasure keeps, and what keeps it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubjectRequestException {
    /// The object's key.
    #[schemars(length(max = KEY_MAX))]
    pub key: String,
    /// Its version, in a versioned bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = KEY_MAX))]
    pub version_id: Option<String>,
    /// Its artifact kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = LABEL_MAX))]
    pub kind: Option<String>,
    /// What keeps it: a hold, a purpose (with its legal basis) or a released hold's floor.
    #[schemars(length(max = TEXT_MAX))]
    pub kept_by: String,
}

/// Schema of a status' `conditions`: `metav1.Condition` with the bounds Kubernetes declares for it
/// (k8s-openapi's schema has none): `type` 316, `reason` 1024 and `message` 32768 characters.
/// Types and reasons are free-form CamelCase strings.
fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("maxItems".into(), CONDITIONS_MAX.into());
    for (field, max) in [
        ("type", 316),
        ("status", 16),
        ("reason", 1024),
        ("message", 32768),
        ("lastTransitionTime", TIMESTAMP_MAX),
    ] {
        if let Some(serde_json::Value::Object(p)) =
            schema.pointer_mut(&format!("/items/properties/{field}"))
        {
            p.insert("maxLength".into(), max.into());
        }
    }
    schema
}
