//! The independent checker: reads the store directly with the AWS SDK (straight to Ceph, not
//! through the proxy, and not through gallring's store adapter) and judges what it finds
//! against the model alone. After every run it asserts:
//!
//! - no seeded object is gone (no version left, or hidden by a delete marker) before the end
//!   of its protection: its deadline, the floors of released holds, forever while a hold
//!   selects it or when it is unclassified;
//! - no object carries a `gallring.io/retention=expire-<N>d` tag that would let a lifecycle
//!   rule expire it before that (creation + N days < protection);
//! - every foreign tag is still there with its value, and no foreign tag was added;
//! - every foreign Object Lock legal hold is still on; a legal hold seen on a held object is
//!   not lifted while a hold still selects it;
//! - the foreign lifecycle rule is unchanged (its SDK form, field for field), no foreign rule
//!   was added, and every `gallring-` rule only expires its own `expire-<N>d` tag after N days.
//!
//! With data-subject requests in the model (`requests.rs`), the protection above already counts
//! them (an erasure never reaches a held, unselected or legally obliged object early; a
//! withdrawal leaves the other purposes' deadlines), and the checker also reads gallring's
//! journal straight from the bucket and asserts that it never claims what the store did not
//! see:
//!
//! - every version a `deletionsConfirmed` record names is gone from the store (a key named
//!   without a version is present only as an object written after that record);
//! - an erasure whose last journaled outcome is `Completed` or `PartiallyCompleted` left none
//!   of the seeded objects it selects that nothing kept at that moment; every seeded object it
//!   selects that something kept (a hold, a restriction, `bookkeeping`, no classify rule) and
//!   that is still there is named among its exceptions (never `Completed` with one), and every
//!   seeded object it names as an exception is one it selects that something kept.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_s3::Client;
use aws_sdk_s3::types::ObjectLockLegalHoldStatus;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;

use super::model::{Model, Obj, RequestKind};

pub const RETENTION_TAG: &str = "gallring.io/retention";
pub const KEEP_UNTIL_TAG: &str = "gallring.io/keep-until";
pub const FOREIGN_RULE_ID: &str = "foreign-nothing-expires";

type Tags = BTreeMap<String, String>;
/// Key and version id → LastModified.
type Versions = BTreeMap<(String, String), Option<DateTime<Utc>>>;
/// Key → version ids of its delete markers.
type Markers = BTreeMap<String, Vec<String>>;

/// What one object version looked like at a check.
#[derive(Debug, Clone)]
pub struct Seen {
    pub tags: BTreeMap<String, String>,
    pub legal_hold: bool,
    pub last_modified: Option<DateTime<Utc>>,
}

/// The store as of the last check.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at: Option<DateTime<Utc>>,
    /// Present seeded objects by key.
    pub present: BTreeMap<String, Seen>,
}

#[derive(Debug, Default)]
pub struct Checker {
    pub checks: u64,
    pub objects_checked: u64,
    /// Seeded keys found gone, with the check that first saw it.
    pub gone: BTreeMap<String, (DateTime<Utc>, String)>,
    /// Non-foreign keys whose legal hold was seen on (set by gallring).
    legal_hold_seen: BTreeSet<String>,
    /// The foreign lifecycle rule as first read back (Debug form of the SDK type).
    pub foreign_rule: String,
    /// The bucket has Object Lock (legal holds are read; a plain bucket has none).
    pub object_lock: bool,
    pub last: Snapshot,
}

fn service_code<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_string)
}

/// Every version and delete marker under the bucket (gallring's `.gallring/` state left out).
pub async fn list_versions(s3: &Client, bucket: &str) -> (Versions, Markers) {
    let mut versions = BTreeMap::new();
    let mut markers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut key_marker: Option<String> = None;
    let mut version_marker: Option<String> = None;
    loop {
        let out = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("checker: ListObjectVersions on {bucket}: {e:?}"));
        for v in out.versions() {
            let key = v.key().unwrap_or_default().to_string();
            if key.starts_with(".gallring/") {
                continue;
            }
            let lm = v
                .last_modified()
                .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
            versions.insert((key, v.version_id().unwrap_or("null").to_string()), lm);
        }
        for m in out.delete_markers() {
            let key = m.key().unwrap_or_default().to_string();
            if key.starts_with(".gallring/") {
                continue;
            }
            markers
                .entry(key)
                .or_default()
                .push(m.version_id().unwrap_or("null").to_string());
        }
        if out.is_truncated() == Some(true) {
            key_marker = out.next_key_marker().map(str::to_string);
            version_marker = out.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        } else {
            break;
        }
    }
    (versions, markers)
}

/// Tags of one version; `None` when it went away meanwhile.
pub async fn tags_of(
    s3: &Client,
    bucket: &str,
    key: &str,
    version: &str,
) -> Option<BTreeMap<String, String>> {
    match s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
    {
        Ok(out) => Some(
            out.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        ),
        Err(e)
            if matches!(
                service_code(&e).as_deref(),
                Some("NoSuchKey" | "NoSuchVersion")
            ) =>
        {
            None
        }
        Err(e) => panic!("checker: GetObjectTagging {key}: {e:?}"),
    }
}

/// Whether the version's Object Lock legal hold is on.
pub async fn legal_hold_of(s3: &Client, bucket: &str, key: &str, version: &str) -> Option<bool> {
    match s3
        .get_object_legal_hold()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
    {
        Ok(out) => {
            Some(out.legal_hold().and_then(|h| h.status()) == Some(&ObjectLockLegalHoldStatus::On))
        }
        Err(e) => match service_code(&e).as_deref() {
            Some("NoSuchObjectLockConfiguration" | "ObjectLockConfigurationNotFoundError") => {
                Some(false)
            }
            Some("NoSuchKey" | "NoSuchVersion") => None,
            _ => panic!("checker: GetObjectLegalHold {key}: {e:?}"),
        },
    }
}

/// The bucket's lifecycle rules in their SDK form (empty when there is no configuration).
pub async fn lifecycle_rules(s3: &Client, bucket: &str) -> Vec<aws_sdk_s3::types::LifecycleRule> {
    match s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out.rules().to_vec(),
        Err(e) if service_code(&e).as_deref() == Some("NoSuchLifecycleConfiguration") => Vec::new(),
        Err(e) => panic!("checker: GetBucketLifecycleConfiguration: {e:?}"),
    }
}

/// The day count of an `expire-<N>d` value.
fn expire_days(v: &str) -> Option<i64> {
    v.strip_prefix("expire-")?.strip_suffix('d')?.parse().ok()
}

fn rule_tag(rule: &aws_sdk_s3::types::LifecycleRule) -> Option<(String, String)> {
    let f = rule.filter()?;
    if let Some(t) = f.tag() {
        return Some((t.key().to_string(), t.value().to_string()));
    }
    let and = f.and()?;
    let tags = and.tags();
    (tags.len() == 1).then(|| (tags[0].key().to_string(), tags[0].value().to_string()))
}

impl Checker {
    /// Reads the foreign rule back once: the reference every later check compares with.
    pub async fn baseline(&mut self, s3: &Client, bucket: &str) {
        let rules = lifecycle_rules(s3, bucket).await;
        let rule = rules
            .iter()
            .find(|r| r.id() == Some(FOREIGN_RULE_ID))
            .expect("the foreign lifecycle rule was written");
        self.foreign_rule = format!("{rule:?}");
    }

    /// One check of the whole bucket. Returns the violations found (empty: all holds).
    pub async fn check(
        &mut self,
        s3: &Client,
        bucket: &str,
        model: &Model,
        label: &str,
    ) -> Vec<String> {
        let now = Utc::now();
        self.checks += 1;
        let mut violations = Vec::new();
        let (versions, markers) = list_versions(s3, bucket).await;

        // Present objects: tags and legal holds, read concurrently.
        let present: Vec<&Obj> = model
            .objs
            .iter()
            .filter(|o| versions.contains_key(&(o.key.clone(), o.version_id.clone())))
            .collect();
        let object_lock = self.object_lock;
        let reads: Vec<(String, Option<Tags>, Option<bool>)> =
            futures::stream::iter(present.iter().map(|o| async move {
                let tags = tags_of(s3, bucket, &o.key, &o.version_id).await;
                let lh = if object_lock {
                    legal_hold_of(s3, bucket, &o.key, &o.version_id).await
                } else {
                    Some(false)
                };
                (o.key.clone(), tags, lh)
            }))
            .buffer_unordered(16)
            .collect()
            .await;
        let mut snapshot = Snapshot {
            at: Some(now),
            present: BTreeMap::new(),
        };
        for (key, tags, lh) in reads {
            if let (Some(tags), Some(lh)) = (tags, lh) {
                let o = model.obj(&key).expect("seeded");
                let lm = versions
                    .get(&(key.clone(), o.version_id.clone()))
                    .copied()
                    .flatten();
                snapshot.present.insert(
                    key,
                    Seen {
                        tags,
                        legal_hold: lh,
                        last_modified: lm,
                    },
                );
            }
        }

        for o in &model.objs {
            self.objects_checked += 1;
            let protected = model.protected_until(o);
            let still_protected = protected.is_none_or(|t| now < t);
            let until = protected.map_or_else(
                || "for as long as it is held or unclassified".to_string(),
                |t| format!("until {}", t.format("%Y-%m-%d %H:%M:%S")),
            );
            let Some(seen) = snapshot.present.get(&o.key) else {
                if !self.gone.contains_key(&o.key) {
                    self.gone.insert(o.key.clone(), (now, label.to_string()));
                    if still_protected {
                        violations.push(format!(
                            "{}: deleted (version {} gone) by check `{label}` at {}, but protected {until} [{}]",
                            o.key,
                            o.version_id,
                            now.format("%H:%M:%S"),
                            model.why(o)
                        ));
                    }
                }
                continue;
            };
            if still_protected && markers.contains_key(&o.key) {
                violations.push(format!(
                    "{}: hidden by a delete marker ({:?}) while protected {until} [{}]",
                    o.key,
                    markers.get(&o.key),
                    model.why(o)
                ));
            }
            // Foreign tags: all there, same values, none added.
            for (k, v) in &o.foreign_tags {
                match seen.tags.get(k) {
                    Some(now_v) if now_v == v => {}
                    other => violations.push(format!(
                        "{}: foreign tag `{k}` was `{v}`, now {:?}",
                        o.key, other
                    )),
                }
            }
            for k in seen.tags.keys() {
                if !k.starts_with("gallring.io/") && !o.foreign_tags.contains_key(k) {
                    violations.push(format!("{}: a foreign tag `{k}` appeared", o.key));
                }
            }
            // A lifecycle rule may expire an `expire-<N>d` object N days after creation.
            if let Some(v) = seen.tags.get(RETENTION_TAG)
                && let Some(days) = expire_days(v)
            {
                let created = seen.last_modified.unwrap_or(now);
                let expires = created + TimeDelta::days(days);
                if protected.is_none_or(|t| expires < t) {
                    violations.push(format!(
                        "{}: tagged {RETENTION_TAG}={v}: lifecycle may expire it at {}, but it is protected {until} [{}]",
                        o.key,
                        expires.format("%Y-%m-%d %H:%M"),
                        model.why(o)
                    ));
                }
            }
            // Legal holds.
            if o.foreign_legal_hold {
                if !seen.legal_hold {
                    violations.push(format!(
                        "{}: its foreign Object Lock legal hold (set before gallring ran) was lifted [{}]",
                        o.key,
                        model.why(o)
                    ));
                }
            } else if seen.legal_hold {
                self.legal_hold_seen.insert(o.key.clone());
            } else if self.legal_hold_seen.contains(&o.key) && model.is_held(o) {
                violations.push(format!(
                    "{}: gallring's legal hold was lifted while a hold still selects it [{}]",
                    o.key,
                    model.why(o)
                ));
            }
        }

        // Lifecycle: the foreign rule unchanged, no foreign rule added, gallring's rules sane.
        let rules = lifecycle_rules(s3, bucket).await;
        match rules.iter().find(|r| r.id() == Some(FOREIGN_RULE_ID)) {
            None => violations.push(format!(
                "the foreign lifecycle rule {FOREIGN_RULE_ID} is gone"
            )),
            Some(r) if format!("{r:?}") != self.foreign_rule => violations.push(format!(
                "the foreign lifecycle rule changed:\n  was {}\n  now {r:?}",
                self.foreign_rule
            )),
            Some(_) => {}
        }
        for r in &rules {
            let id = r.id().unwrap_or_default();
            if id == FOREIGN_RULE_ID {
                continue;
            }
            if !id.starts_with("gallring-") {
                violations.push(format!("a foreign lifecycle rule `{id}` appeared: {r:?}"));
                continue;
            }
            let days = r.expiration().and_then(|e| e.days()).map(i64::from);
            let noncurrent = r
                .noncurrent_version_expiration()
                .and_then(|e| e.noncurrent_days())
                .map(i64::from);
            for d in [days, noncurrent].into_iter().flatten() {
                let want = (RETENTION_TAG.to_string(), format!("expire-{d}d"));
                if rule_tag(r).as_ref() != Some(&want) {
                    violations.push(format!(
                        "gallring rule `{id}` expires after {d} days without the filter {}={}: {r:?}",
                        want.0, want.1
                    ));
                }
            }
        }
        if !model.requests.is_empty() {
            let records = journal_records(s3, bucket).await;
            violations.extend(journal_violations(&records, &versions, model));
        }
        violations.extend(checkpoint_violations(s3, bucket).await);
        self.last = snapshot;
        violations
    }

    /// Objects whose legal hold is on although nothing holds them and nobody but gallring set
    /// it: gallring lost track of a legal hold it set (it will never lift it).
    pub fn leaked_legal_holds(&self, model: &Model) -> Vec<String> {
        model
            .objs
            .iter()
            .filter(|o| !o.foreign_legal_hold && !model.is_held(o))
            .filter(|o| self.last.present.get(&o.key).is_some_and(|s| s.legal_hold))
            .map(|o| o.key.clone())
            .collect()
    }

    /// The true overdue count as of the last check.
    pub fn true_overdue(&self, model: &Model) -> u64 {
        let now = self.last.at.unwrap_or_else(Utc::now);
        model
            .objs
            .iter()
            .filter(|o| self.last.present.contains_key(&o.key) && model.overdue(o, now))
            .count() as u64
    }

    /// Present objects past their protection (due: gallring may delete them).
    pub fn due_and_present(&self, model: &Model) -> Vec<String> {
        let now = self.last.at.unwrap_or_else(Utc::now);
        model
            .objs
            .iter()
            .filter(|o| self.last.present.contains_key(&o.key))
            .filter(|o| model.protected_until(o).is_some_and(|t| t <= now))
            .map(|o| o.key.clone())
            .collect()
    }
}

async fn read_object(s3: &Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let out = match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) if service_code(&e).as_deref() == Some("NoSuchKey") => return None,
        Err(e) => panic!("checker: reading {key}: {e:?}"),
    };
    Some(
        out.body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("checker: reading {key}: {e}"))
            .into_bytes()
            .to_vec(),
    )
}

/// The checkpoint's first-seen shards, read straight from the bucket: every shard it names
/// exists (a checkpoint never names a shard removed or not yet written, whatever was killed
/// when), holds the entries it says, and only keys of its own range, in order.
async fn checkpoint_violations(s3: &Client, bucket: &str) -> Vec<String> {
    let key = ".gallring/checkpoint.json";
    let Some(body) = read_object(s3, bucket, key).await else {
        return Vec::new();
    };
    let checkpoint: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return vec![format!("{key}: not JSON: {e}")],
    };
    let shards = checkpoint["seen"].as_array().cloned().unwrap_or_default();
    let mut violations = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let (Some(from), Some(object)) = (shard["from"].as_str(), shard["object"].as_str()) else {
            violations.push(format!("{key}: shard {i} without from/object: {shard}"));
            continue;
        };
        if i == 0 && !from.is_empty() {
            violations.push(format!(
                "{key}: the first shard starts at {from:?}, not \"\""
            ));
        }
        let until = shards.get(i + 1).and_then(|n| n["from"].as_str());
        let Some(body) = read_object(s3, bucket, object).await else {
            violations.push(format!("{key} names shard {object}, which is missing"));
            continue;
        };
        let keys: Vec<String> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_slice::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["key"].as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        if shard["entries"].as_u64() != Some(keys.len() as u64) {
            violations.push(format!(
                "shard {object}: {} entries, the checkpoint says {}",
                keys.len(),
                shard["entries"]
            ));
        }
        if keys.windows(2).any(|w| w[0] > w[1]) {
            violations.push(format!("shard {object}: keys out of order"));
        }
        if let Some(k) = keys
            .iter()
            .find(|k| k.as_str() < from || until.is_some_and(|u| k.as_str() >= u))
        {
            violations.push(format!(
                "shard {object}: key {k} outside its range [{from:?}, {until:?})"
            ));
        }
    }
    violations
}

/// Every record of gallring's journal, read straight from the bucket (`.gallring/journal/`).
pub async fn journal_records(s3: &Client, bucket: &str) -> Vec<serde_json::Value> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(".gallring/journal/")
            .set_continuation_token(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("checker: listing the journal: {e:?}"));
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = out.next_continuation_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    keys.sort();
    let mut records = Vec::new();
    for key in keys {
        let out = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("checker: reading {key}: {e:?}"));
        let bytes = out
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("checker: reading {key}: {e}"))
            .into_bytes();
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line)
                .unwrap_or_else(|e| panic!("checker: {key}: a line is not JSON: {e}"));
            records.push(v);
        }
    }
    records
}

/// Records of one fact kind for one case.
pub fn facts_for<'a>(
    records: &'a [serde_json::Value],
    fact: &str,
    case: &str,
) -> Vec<&'a serde_json::Value> {
    records
        .iter()
        .filter(|r| r.get("fact").and_then(|f| f.as_str()) == Some(fact))
        .filter(|r| r.get("case").and_then(|c| c.as_str()) == Some(case))
        .collect()
}

fn str_of<'a>(v: &'a serde_json::Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(|f| f.as_str())
}

/// A record's `at`.
pub fn record_at(r: &serde_json::Value) -> Option<DateTime<Utc>> {
    str_of(r, "at")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The last journaled outcome of each data-subject request, by the journal's request name.
pub fn latest_outcomes(records: &[serde_json::Value]) -> BTreeMap<String, &serde_json::Value> {
    let mut out = BTreeMap::new();
    for r in records {
        if str_of(r, "fact") == Some("subjectRequestOutcome")
            && let Some(name) = str_of(r, "request")
        {
            out.insert(name.to_string(), r);
        }
    }
    out
}

/// `(key, versionId)` of each object a fact names (`objects[]`), with the record's time.
pub fn journaled_objects(
    records: &[serde_json::Value],
    fact: &str,
) -> Vec<(String, Option<String>, Option<DateTime<Utc>>)> {
    records
        .iter()
        .filter(|r| str_of(r, "fact") == Some(fact))
        .flat_map(|r| {
            let at = record_at(r);
            r.get("objects")
                .and_then(|o| o.as_array())
                .into_iter()
                .flatten()
                .filter_map(move |o| {
                    Some((
                        str_of(o, "key")?.to_string(),
                        str_of(o, "versionId").map(str::to_string),
                        at,
                    ))
                })
        })
        .collect()
}

/// What the journal claims against what the store holds (see the module's doc).
fn journal_violations(
    records: &[serde_json::Value],
    versions: &Versions,
    model: &Model,
) -> Vec<String> {
    let mut violations = Vec::new();
    for (key, version, at) in journaled_objects(records, "deletionsConfirmed") {
        match version {
            Some(v) => {
                if versions.contains_key(&(key.clone(), v.clone())) {
                    violations.push(format!(
                        "{key}: the journal confirms the deletion of version {v} (at {at:?}), but the store still has it"
                    ));
                }
            }
            None => {
                for ((k, v), lm) in versions.range((key.clone(), String::new())..) {
                    if k != &key {
                        break;
                    }
                    if lm.zip(at).is_none_or(|(lm, at)| lm <= at) {
                        violations.push(format!(
                            "{key}: the journal confirms its deletion (at {at:?}), but the store still has version {v} written {lm:?}"
                        ));
                    }
                }
            }
        }
    }
    let outcomes = latest_outcomes(records);
    for r in model
        .requests
        .iter()
        .filter(|r| r.kind == RequestKind::Erasure)
    {
        let Some((name, outcome)) = outcomes.iter().find(|(n, _)| r.is_named(n)) else {
            continue;
        };
        let phase = str_of(outcome, "phase").unwrap_or_default();
        if !matches!(phase, "Completed" | "PartiallyCompleted") {
            continue;
        }
        let Some(at) = record_at(outcome) else {
            violations.push(format!("{name}: an outcome without `at`: {outcome}"));
            continue;
        };
        let named: BTreeSet<(String, Option<String>)> = outcome
            .get("exceptions")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    str_of(e, "key")?.to_string(),
                    str_of(e, "versionId").map(str::to_string),
                ))
            })
            .collect();
        let total = outcome
            .get("exceptionsTotal")
            .and_then(|t| t.as_u64())
            .unwrap_or(0);
        for o in &model.objs {
            let selected = model.request_selects(r, o);
            let present = versions.contains_key(&(o.key.clone(), o.version_id.clone()));
            let kept = model.protected_until(o).is_none_or(|t| at < t);
            let is_named = named.contains(&(o.key.clone(), Some(o.version_id.clone())))
                || named.contains(&(o.key.clone(), None));
            if selected && present && !kept {
                violations.push(format!(
                    "{}: the journal says erasure {name} is {phase} (at {}), but this object it selects and nothing kept is still there [{}]",
                    o.key,
                    at.format("%H:%M:%S"),
                    model.why(o)
                ));
            }
            if selected && present && kept && !is_named && total <= 100 {
                violations.push(format!(
                    "{}: erasure {name} is {phase} (at {}) and keeps this object it selects, but does not name it as an exception (exceptions: {named:?}) [{}]",
                    o.key,
                    at.format("%H:%M:%S"),
                    model.why(o)
                ));
            }
            if is_named && !(selected && kept) {
                violations.push(format!(
                    "{}: erasure {name} (at {}) names it as an exception, but it {} [{}]",
                    o.key,
                    at.format("%H:%M:%S"),
                    if selected {
                        "is kept by nothing"
                    } else {
                        "is not selected by the request"
                    },
                    model.why(o)
                ));
            }
        }
    }
    violations
}
