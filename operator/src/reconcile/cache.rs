//! How a pass uses the index ([`crate::state::index`]): which listed objects it may decide
//! from what it saw last, without a request, and how the index follows the listing.
//!
//! An object is decided from its entry only when the listing shows it unchanged (same version,
//! ETag, LastModified and size), its tags were read within the verification interval, and the
//! decision from the entry needs no write: no tag to change (a tag write replaces the whole
//! set, so it is always merged into tags read just before), no legal hold to set or lift, no
//! hold on it, no deletion. Everything else is read from the store as in a cold pass. So the
//! index can only ever delay noticing a tag someone else changed (by at most the interval),
//! never decide a deletion or a write on what it remembers.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::retention::{BucketRules, Decision, ObjectInfo, ObjectPlan, RecordedAtSource, classify};
use crate::state::index::{Entry, Index, IndexError};
use crate::state::journal::VersionRef;
use crate::store::{ListedObject, ObjectId, ObjectStore};

/// The default `verifyInterval`: every object's tags are read at least this often.
pub const DEFAULT_VERIFY_INTERVAL_DAYS: i64 = 7;
/// The default minimum time between two snapshots of the index to the state location.
pub const DEFAULT_SNAPSHOT_INTERVAL_MINUTES: i64 = 60;

/// What the index did in one pass (all zero without an index).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexReport {
    /// Objects decided from the index, without a request.
    pub hits: u64,
    /// Objects read again because their verification was due (the rotating budget).
    pub verified: u64,
    /// Objects read because the listing showed them new or changed.
    pub changed: u64,
    /// Objects unchanged and not due, read anyway because their decision needs a write (or
    /// a hold selects by tags, which change behind gallring's back).
    pub read_for_writes: u64,
    /// Entries dropped because their version was not listed any more.
    pub swept: u64,
    /// Entries loaded from the snapshot in the state location (a cold local index).
    pub restored: u64,
    /// Entries written to the snapshot by this pass, when it wrote one.
    pub snapshot_entries: Option<u64>,
    /// Index operations that failed: the pass read the store instead.
    pub errors: u64,
    /// The first index error, for logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl IndexReport {
    pub(super) fn error(&mut self, e: &IndexError) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

/// The index and how a pass uses it.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    pub index: std::sync::Arc<Index>,
    /// Every object's tags are read at least this often (`verifyInterval`).
    pub verify_interval: chrono::Duration,
    /// A snapshot is written after a complete pass when the last one is older than this.
    pub snapshot_interval: chrono::Duration,
}

impl IndexConfig {
    pub fn new(index: std::sync::Arc<Index>) -> Self {
        IndexConfig {
            index,
            verify_interval: chrono::Duration::days(DEFAULT_VERIFY_INTERVAL_DAYS),
            snapshot_interval: chrono::Duration::minutes(DEFAULT_SNAPSHOT_INTERVAL_MINUTES),
        }
    }
}

impl IndexConfig {
    /// The bucket's index from the host's set, with the bucket's `verifyInterval`; `None` (a
    /// pass without an index, logged) when it cannot be opened.
    pub fn for_bucket(
        indexes: &crate::state::index::Indexes,
        key: &str,
        rules: &BucketRules,
    ) -> Option<IndexConfig> {
        match indexes.get(key) {
            Ok(index) => {
                let mut config = IndexConfig::new(index);
                if let Ok(d) = chrono::Duration::from_std(rules.verify_interval.approx_std()) {
                    config.verify_interval = d;
                }
                Some(config)
            }
            Err(e) => {
                tracing::warn!(bucket = key, error = %e, "no index for this pass: every object is read");
                None
            }
        }
    }
}

/// What the entry says about a listed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Usable: unchanged and verified recently enough.
    Fresh,
    /// Unchanged, but its verification is due.
    Due,
    /// No entry, or the listing shows another object.
    Changed,
}

/// A fraction in [0, 0.5) fixed per object: objects first seen together fall due for
/// verification spread over half an interval, not all in the same pass.
fn spread(key: &str, version: Option<&str>) -> f64 {
    // FNV-1a: stable across builds and processes (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key
        .bytes()
        .chain(std::iter::once(0))
        .chain(version.unwrap_or("").bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 10_000) as f64 / 20_000.0
}

/// Compares the entry with the listing (and what the rules need read).
pub(super) fn lookup(
    entry: Option<&Entry>,
    listed: &ListedObject,
    rules: &BucketRules,
    now: DateTime<Utc>,
    verify_interval: chrono::Duration,
) -> Lookup {
    let Some(e) = entry else {
        return Lookup::Changed;
    };
    let same = e.version_id == listed.version_id
        && e.etag == listed.etag
        && e.size == listed.size
        && last_modified_agrees(e, listed);
    // An entry written when the rules read no metadata cannot answer for rules that do.
    let metadata_missing =
        matches!(rules.recorded_at, RecordedAtSource::Metadata(_)) && e.metadata.is_empty();
    if !same || metadata_missing {
        return Lookup::Changed;
    }
    let interval_ms = verify_interval.num_milliseconds() as f64;
    let due_after = chrono::Duration::milliseconds(
        (interval_ms * (1.0 - spread(&e.key, e.version_id.as_deref()))) as i64,
    );
    if now - e.verified_at >= due_after {
        Lookup::Due
    } else {
        Lookup::Fresh
    }
}

/// The listed `LastModified` is the entry's, or moved forward by gallring's own last write
/// (same version, content and size; no later than that write).
fn last_modified_agrees(e: &Entry, listed: &ListedObject) -> bool {
    e.last_modified == listed.last_modified
        || e.written_before.is_some_and(|bound| {
            listed.last_modified > e.last_modified && listed.last_modified <= bound
        })
}

/// The entry as the listing shows it now, when only a `LastModified` moved by gallring's own
/// write differs (to be stored, so the move is accepted once).
pub(super) fn moved(entry: &Entry, listed: &ListedObject) -> Option<Entry> {
    (entry.last_modified != listed.last_modified).then(|| Entry {
        last_modified: listed.last_modified,
        written_before: None,
        ..entry.clone()
    })
}

/// The object as the entry remembers it.
pub(super) fn object_of(entry: &Entry, listed: &ListedObject) -> ObjectInfo {
    ObjectInfo {
        key: listed.key.clone(),
        version_id: listed.version_id.clone(),
        last_modified: listed.last_modified,
        size: listed.size,
        tags: entry.tags.clone(),
        metadata: entry.metadata.clone(),
    }
}

/// The entry for an object read (and perhaps tagged) in this pass.
pub(super) fn entry_of(
    obj: &ObjectInfo,
    etag: Option<String>,
    listed_modified: DateTime<Utc>,
    rules: &BucketRules,
    plan: &ObjectPlan,
    verified_at: DateTime<Utc>,
    written_before: Option<DateTime<Utc>>,
) -> Entry {
    Entry {
        key: obj.key.clone(),
        version_id: obj.version_id.clone(),
        etag,
        last_modified: listed_modified,
        size: obj.size,
        tags: obj.tags.clone(),
        metadata: obj.metadata.clone(),
        recording_id: classify::recording_id(rules, obj),
        subject: classify::subject(rules, obj),
        decision: decision_label(plan.decision).to_string(),
        verified_at,
        written_before,
    }
}

fn decision_label(d: Decision) -> &'static str {
    match d {
        Decision::Keep => "keep",
        Decision::Held => "held",
        Decision::Delete => "delete",
        Decision::Unclassified => "unclassified",
    }
}

/// The keys a listing has shown completely so far, page by page: the merge-joins that find
/// versions gone (from the index, from the journal's memory) compare only complete keys,
/// because a version listing can split one key's versions over two pages.
#[derive(Debug, Default)]
pub(super) struct Coverage {
    /// The last key listed so far and its versions listed so far (it may go on next page).
    open: Option<(String, Vec<Option<String>>)>,
}

/// What one page completed: every key at or after `from` (from the start with `None`) and
/// before `until` (to the end with `None`) has been listed in full, as `listed`.
#[derive(Debug)]
pub(super) struct Window {
    pub from: Option<String>,
    pub until: Option<String>,
    pub listed: HashSet<VersionRef>,
}

impl Window {
    pub fn contains_key(&self, key: &str) -> bool {
        self.from.as_deref().is_none_or(|f| key >= f)
            && self.until.as_deref().is_none_or(|u| key < u)
    }

    /// A version whose key this window completed and that the listing did not show.
    pub fn gone(&self, v: &VersionRef) -> bool {
        self.contains_key(&v.key) && !self.listed.contains(v)
    }
}

impl Coverage {
    /// The window a page completes (`objects` in listing order; `last` for the final page).
    pub fn next(&mut self, objects: &[ListedObject], last: bool) -> Window {
        let (from, carried) = match self.open.take() {
            Some((k, versions)) => (Some(k), versions),
            None => (None, Vec::new()),
        };
        let mut listed: HashSet<VersionRef> = carried
            .into_iter()
            .filter_map(|version_id| {
                Some(VersionRef {
                    key: from.clone()?,
                    version_id,
                })
            })
            .collect();
        listed.extend(objects.iter().map(|o| VersionRef {
            key: o.key.clone(),
            version_id: o.version_id.clone(),
        }));
        if last {
            return Window {
                from,
                until: None,
                listed,
            };
        }
        // The page's last key may go on: it stays open. An empty page completes nothing.
        let until = objects
            .last()
            .map(|o| o.key.clone())
            .or_else(|| from.clone())
            .unwrap_or_default();
        let open_versions: Vec<Option<String>> = listed
            .iter()
            .filter(|v| v.key == until)
            .map(|v| v.version_id.clone())
            .collect();
        listed.retain(|v| v.key < until);
        self.open = Some((until.clone(), open_versions));
        Window {
            from,
            until: Some(until),
            listed,
        }
    }
}

/// The entries of one listing page (`None` where the index has none), read in one range with
/// the page's window, and the entries of versions the window completed without listing them
/// (gone: deleted by gallring, by a lifecycle rule or by others, or outside the governed
/// prefix now).
pub(super) fn join_page(
    index: &Index,
    objects: &[ListedObject],
    window: &Window,
) -> Result<(Vec<Option<Entry>>, Vec<Entry>), IndexError> {
    // Through the page's last key (which may go on), or to the end on the last page.
    let through = window
        .until
        .as_ref()
        .map(|u| objects.last().map_or(u.as_str(), |o| o.key.as_str()));
    let mut in_range: Vec<Entry> = Vec::with_capacity(objects.len());
    index.for_each_between(window.from.as_deref(), through, |e| in_range.push(e))?;
    // The index gives entries in (key, version id) order: each object finds its entry by a
    // binary search, without a key copied per object. Were the order ever not so, an object
    // would only miss its entry and be read from the store.
    let at: Vec<Option<usize>> = objects
        .iter()
        .map(|o| {
            let wanted = (o.key.as_str(), o.version_id.as_deref());
            in_range
                .binary_search_by(|e| (e.key.as_str(), e.version_id.as_deref()).cmp(&wanted))
                .ok()
        })
        .collect();
    let mut slots: Vec<Option<Entry>> = in_range.into_iter().map(Some).collect();
    let entries = at
        .into_iter()
        .map(|i| i.and_then(|i| slots.get_mut(i).and_then(Option::take)))
        .collect();
    // A listed version is never gone from its window, so only the entries left are checked.
    let gone = slots
        .into_iter()
        .flatten()
        .filter(|e| {
            window.gone(&VersionRef {
                key: e.key.clone(),
                version_id: e.version_id.clone(),
            })
        })
        .collect();
    Ok((entries, gone))
}

/// What removed a version gallring did not delete, from what it last knew of it.
pub(super) fn gone_object(
    e: &Entry,
    created: DateTime<Utc>,
    rules: &[crate::retention::lifecycle::LifecycleRule],
    (bucket, policy): (&crate::retention::BucketRules, &crate::retention::Policy),
    day: chrono::Duration,
    now: DateTime<Utc>,
) -> crate::state::journal::GoneObject {
    let known = crate::retention::ObjectInfo {
        key: e.key.clone(),
        version_id: e.version_id.clone(),
        last_modified: created,
        size: e.size,
        tags: e.tags.clone(),
        metadata: e.metadata.clone(),
    };
    let class = crate::retention::classify::classify(bucket, &known);
    let controllers: std::collections::BTreeSet<String> = class
        .iter()
        .flat_map(|c| c.purposes.iter())
        .map(|p| policy.controller_of(p).to_string())
        .collect();
    use crate::state::journal::{GoneCause, GoneObject};
    let tag = e.tags.get(crate::retention::RETENTION_TAG).cloned();
    let days = tag
        .as_deref()
        .and_then(crate::retention::lifecycle::parse_expire_tag);
    let rule = tag.as_ref().and_then(|t| {
        rules
            .iter()
            .find(|r| {
                r.tag
                    .as_ref()
                    .is_some_and(|(k, v)| k == crate::retention::RETENTION_TAG && v == t)
            })
            .map(|r| r.id.clone())
    });
    // Lifecycle counts whole days from creation and runs about daily: never before N days.
    let due = days.is_some_and(|d| now >= created + day * i32::try_from(d).unwrap_or(i32::MAX));
    GoneObject {
        key: e.key.clone(),
        version_id: e.version_id.clone(),
        etag: e.etag.clone(),
        cause: if due {
            GoneCause::Lifecycle
        } else {
            GoneCause::Others
        },
        tag,
        rule,
        kind: class.as_ref().map(|c| c.kind.clone()),
        purposes: class.map(|c| c.purposes).unwrap_or_default(),
        controllers: controllers.into_iter().collect(),
    }
}

/// Where the snapshot's manifest lives in the state location (its parts under
/// `index/snapshot/`).
pub fn snapshot_key(state_prefix: &str) -> String {
    format!("{state_prefix}index/snapshot.json")
}

/// Loads the snapshot into an empty index (a new leader, a new host, a lost disk).
pub(super) async fn restore_if_empty<J: ObjectStore>(
    index: &Index,
    state: &J,
    key: &str,
) -> Result<u64, IndexError> {
    if index.len()? > 0 {
        return Ok(0);
    }
    Index::restore(state, key, index).await
}

/// Writes a snapshot when none is there or the last one is older than `interval`.
pub(super) async fn snapshot_if_stale<J: ObjectStore>(
    index: &Index,
    state: &J,
    key: &str,
    now: DateTime<Utc>,
    interval: chrono::Duration,
) -> Result<Option<u64>, IndexError> {
    let id = ObjectId {
        key: key.to_string(),
        version_id: None,
    };
    let head = state
        .head_object(&id)
        .await
        .map_err(|source| IndexError::Snapshot {
            key: key.to_string(),
            source: Box::new(source),
        })?;
    if head.is_some_and(|h| now - h.last_modified < interval) {
        return Ok(None);
    }
    index.snapshot(state, key).await.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(key: &str, version: Option<&str>) -> ListedObject {
        ListedObject {
            key: key.into(),
            version_id: version.map(str::to_string),
            last_modified: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            size: 1,
            delete_marker: false,
            is_latest: true,
            etag: Some("e".into()),
        }
    }

    fn vref(key: &str, version: Option<&str>) -> VersionRef {
        VersionRef {
            key: key.into(),
            version_id: version.map(str::to_string),
        }
    }

    /// Pages of a version listing where `b`'s versions span three pages (one of them holds
    /// nothing else), and an empty page: every remembered version is judged exactly once,
    /// gone only when its key was completed without it.
    #[test]
    fn windows_judge_each_key_once_and_only_when_complete() {
        let pages: Vec<Vec<ListedObject>> = vec![
            vec![listed("a", Some("1")), listed("b", Some("3"))],
            vec![listed("b", Some("2"))],
            vec![],
            vec![listed("b", Some("1")), listed("d", Some("1"))],
            vec![listed("f", Some("1"))],
        ];
        let remembered = [
            vref("0", Some("1")), // before the first listed key: gone
            vref("a", Some("1")),
            vref("a", Some("0")), // an older version of a listed key: gone
            vref("b", Some("1")), // listed on the fourth page
            vref("b", Some("3")),
            vref("c", Some("1")), // between two listed keys: gone
            vref("d", Some("1")),
            vref("e", None),      // between the last two pages: gone
            vref("g", Some("1")), // after the last listed key: gone
        ];
        let mut coverage = Coverage::default();
        let mut judged: Vec<(VersionRef, bool)> = Vec::new();
        let last = pages.len() - 1;
        for (i, page) in pages.iter().enumerate() {
            let w = coverage.next(page, i == last);
            for v in remembered.iter().filter(|v| w.contains_key(&v.key)) {
                judged.push((v.clone(), w.gone(v)));
            }
        }
        let gone: Vec<&VersionRef> = judged.iter().filter(|(_, g)| *g).map(|(v, _)| v).collect();
        assert_eq!(
            gone,
            vec![
                &vref("0", Some("1")),
                &vref("a", Some("0")),
                &vref("c", Some("1")),
                &vref("e", None),
                &vref("g", Some("1"))
            ]
        );
        // Each remembered version was judged by exactly one window.
        assert_eq!(judged.len(), remembered.len());
    }

    #[test]
    fn an_empty_first_page_completes_nothing() {
        let mut coverage = Coverage::default();
        let w = coverage.next(&[], false);
        assert!(!w.contains_key("a") && !w.contains_key(""));
        let w = coverage.next(&[listed("b", None)], true);
        assert!(w.gone(&vref("a", None)) && !w.gone(&vref("b", None)));
    }

    #[test]
    fn a_page_join_reads_the_entries_and_the_gone_of_its_window() {
        let index = Index::in_memory().expect("index");
        let entry = |key: &str| Entry {
            key: key.into(),
            version_id: None,
            etag: Some("e".into()),
            last_modified: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            size: 1,
            tags: Default::default(),
            metadata: Default::default(),
            recording_id: None,
            subject: None,
            decision: "keep".into(),
            verified_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            written_before: None,
        };
        index
            .put_many(&["a", "b", "c", "d", "e"].map(entry))
            .expect("put");
        let mut coverage = Coverage::default();
        let page1 = [listed("b", None), listed("c", None)];
        let (entries, gone) =
            join_page(&index, &page1, &coverage.next(&page1, false)).expect("join");
        assert_eq!(
            entries
                .iter()
                .map(|e| e.as_ref().map(|e| e.key.as_str()))
                .collect::<Vec<_>>(),
            vec![Some("b"), Some("c")]
        );
        assert_eq!(
            gone.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            vec!["a"]
        );
        let page2 = [listed("e", None), listed("f", None)];
        let (entries, gone) =
            join_page(&index, &page2, &coverage.next(&page2, true)).expect("join");
        assert_eq!(
            entries
                .iter()
                .map(|e| e.as_ref().map(|e| e.key.as_str()))
                .collect::<Vec<_>>(),
            vec![Some("e"), None]
        );
        assert_eq!(
            gone.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            vec!["d"]
        );
    }

    #[test]
    fn the_spread_is_below_half_and_differs_between_keys() {
        let values: Vec<f64> = (0..200)
            .map(|i| spread(&format!("calls/{i}.wav"), None))
            .collect();
        assert!(values.iter().all(|v| (0.0..0.5).contains(v)));
        let distinct: std::collections::BTreeSet<u64> =
            values.iter().map(|v| (v * 1e6) as u64).collect();
        assert!(distinct.len() > 150, "{} distinct of 200", distinct.len());
        assert_eq!(spread("a", Some("v1")), spread("a", Some("v1")));
    }
}
