//! First-seen creation times, kept out of memory (issue 9: memory flat at any bucket size).
//!
//! The journal remembers, per object version, the creation time gallring first saw for its
//! content: Ceph RGW moves `LastModified` when tags are written, and deadlines must count from
//! the first one. That is one entry per object, so the checkpoint keeps them in key-range
//! shards (JSON Lines objects under `seen/`, named in the checkpoint), and a pass holds only
//! the shards its current page needs, plus the changes since the checkpoint (`delta`).
//!
//! A pass walks the bucket in key order, so it loads each shard once, as the listing reaches
//! its range ([`SeenMap::needed`]); a hold's targeted write loads the shards of the keys it
//! selected. A lookup in a shard that is not loaded is [`Lookup::Unloaded`]: the callers treat
//! it as "not known", which can only make a deadline later (never early), and merging keeps
//! the earliest time seen for the same content, so a fact journaled twice never moves a
//! creation time later.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::store::ObjectId;

/// An object version named in a fact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRef {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

impl From<&ObjectId> for VersionRef {
    fn from(id: &ObjectId) -> Self {
        VersionRef {
            key: id.key.clone(),
            version_id: id.version_id.clone(),
        }
    }
}

/// An object version's creation time as gallring first saw it. Some stores (Ceph RGW) move
/// `LastModified` when tags are written; deadlines count from this one instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirstSeen {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

/// A first-seen creation time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

/// Entries per shard when a checkpoint writes one (a shard splits beyond this). The unit
/// tests use small shards, so that every pass they run crosses shards and checkpoints.
pub const SHARD_ENTRIES: usize = if cfg!(test) { 16 } else { 4000 };

/// One shard as the checkpoint names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardRef {
    /// The first key it covers (`""` for the first shard); it covers keys up to the next
    /// shard's `from`.
    pub from: String,
    /// The object holding its entries, one JSON line each.
    pub object: String,
    /// How many entries it holds.
    pub entries: u64,
}

/// The upper end of a key range a pass needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upto<'a> {
    /// Up to and including this key.
    Key(&'a str),
    /// Every key that starts with this prefix.
    Prefix(&'a str),
    /// To the end.
    End,
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Known(Option<&'a Seen>),
    /// Its shard is not in memory: the pass did not ask for it.
    Unloaded,
}

impl<'a> Lookup<'a> {
    /// The entry, treating a shard not loaded as no entry (deadlines count from the listed
    /// time then: later, never earlier).
    pub fn known(self) -> Option<&'a Seen> {
        match self {
            Lookup::Known(s) => s,
            Lookup::Unloaded => None,
        }
    }
}

/// The first-seen map: the checkpoint's shards (some in memory) and the changes since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenMap {
    shards: Vec<ShardRef>,
    loaded: BTreeMap<usize, BTreeMap<VersionRef, Seen>>,
    /// Changes since the checkpoint.
    delta: BTreeMap<VersionRef, Change>,
    /// Set for reads of the whole history (verify, records), which need no state.
    discard: bool,
    /// Entries per shard written.
    shard_entries: usize,
}

impl Default for SeenMap {
    fn default() -> Self {
        SeenMap {
            shards: Vec::new(),
            loaded: BTreeMap::new(),
            delta: BTreeMap::new(),
            discard: false,
            shard_entries: SHARD_ENTRIES,
        }
    }
}

/// A change since the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Forgotten (deleted, or gone from the listing).
    Forget,
    /// Seen after it was forgotten: replaces whatever the shard holds (new content, or the
    /// same content uploaded again, whose deadlines count from now).
    Set(Seen),
    /// Seen: merged with the shard's entry (the earlier time for the same content).
    Merge(Seen),
}

impl Change {
    fn seen(&self) -> Option<&Seen> {
        match self {
            Change::Forget => None,
            Change::Set(s) | Change::Merge(s) => Some(s),
        }
    }
}

/// The same content: equal ETags (an unknown ETag only matches an unknown one).
fn same(a: &Seen, b: &Seen) -> bool {
    a.etag == b.etag
}

/// The entry to keep of two for one version: the earlier time for the same content, the newer
/// fact for new content.
fn merged(old: Option<Seen>, new: Seen) -> Seen {
    match old {
        Some(o) if same(&o, &new) && o.last_modified <= new.last_modified => o,
        _ => new,
    }
}

impl SeenMap {
    pub fn from_shards(shards: Vec<ShardRef>) -> Self {
        SeenMap {
            shards,
            ..SeenMap::default()
        }
    }

    /// A map that records nothing (for reads of the chain that need no state).
    pub fn discarding() -> Self {
        SeenMap {
            discard: true,
            ..SeenMap::default()
        }
    }

    /// Writes shards of `n` entries from now on (tuning; the fault suite uses tiny shards so
    /// that every pass crosses several).
    pub fn set_shard_entries(&mut self, n: usize) {
        self.shard_entries = n.max(1);
    }

    pub fn shard_entries(&self) -> usize {
        self.shard_entries
    }

    pub fn shards(&self) -> &[ShardRef] {
        &self.shards
    }

    /// Changes since the checkpoint.
    pub fn pending(&self) -> usize {
        self.delta.len()
    }

    /// Entries in memory (loaded shards and changes), for reports and tests.
    pub fn in_memory(&self) -> usize {
        self.delta.len() + self.loaded.values().map(BTreeMap::len).sum::<usize>()
    }

    fn shard_of(&self, key: &str) -> Option<usize> {
        match self.shards.partition_point(|s| s.from.as_str() <= key) {
            0 => None,
            n => Some(n - 1),
        }
    }

    pub fn get(&self, id: &VersionRef) -> Lookup<'_> {
        let base = match self.shard_of(&id.key) {
            None => Lookup::Known(None),
            Some(i) => match self.loaded.get(&i) {
                Some(m) => Lookup::Known(m.get(id)),
                None => Lookup::Unloaded,
            },
        };
        match self.delta.get(id) {
            Some(Change::Forget) => Lookup::Known(None),
            Some(Change::Set(d)) => Lookup::Known(Some(d)),
            Some(Change::Merge(d)) => match base.known() {
                Some(b) if same(b, d) && b.last_modified < d.last_modified => {
                    Lookup::Known(Some(b))
                }
                _ => Lookup::Known(Some(d)),
            },
            None => base,
        }
    }

    /// Whether this version may still be remembered: false only when it is known to be
    /// absent (forgotten since the checkpoint, or missing from its loaded shard).
    pub fn may_contain(&self, id: &VersionRef) -> bool {
        !matches!(self.get(id), Lookup::Known(None))
    }

    pub fn insert(&mut self, id: VersionRef, seen: Seen) {
        if self.discard {
            return;
        }
        let change = match self.delta.remove(&id) {
            None => Change::Merge(seen),
            Some(Change::Forget) => Change::Set(seen),
            Some(Change::Set(old)) => Change::Set(merged(Some(old), seen)),
            // Other content since the shard's: the shard's entry no longer counts.
            Some(Change::Merge(old)) if !same(&old, &seen) => Change::Set(seen),
            Some(Change::Merge(old)) => Change::Merge(merged(Some(old), seen)),
        };
        self.delta.insert(id, change);
    }

    pub fn remove(&mut self, id: &VersionRef) {
        if self.discard {
            return;
        }
        self.delta.insert(id.clone(), Change::Forget);
    }

    /// Adds entries as the old single-object checkpoint held them (read once, then sharded
    /// by the next checkpoint).
    pub fn absorb(&mut self, entries: BTreeMap<VersionRef, Seen>) {
        for (id, seen) in entries {
            self.insert(id, seen);
        }
    }

    fn overlaps(&self, i: usize, lo: &str, upto: Upto<'_>) -> bool {
        let from = self.shards[i].from.as_str();
        let lo = match upto {
            Upto::Prefix(p) => lo.max(p),
            _ => lo,
        };
        let below_next = self.shards.get(i + 1).is_none_or(|n| n.from.as_str() > lo);
        let above_from = match upto {
            Upto::Key(k) => from <= k,
            Upto::Prefix(p) => from < p || from.starts_with(p),
            Upto::End => true,
        };
        below_next && above_from
    }

    /// The shards a page over `[lo, upto]` needs.
    pub fn needed(&self, lo: &str, upto: Upto<'_>) -> BTreeSet<usize> {
        (0..self.shards.len())
            .filter(|i| self.overlaps(*i, lo, upto))
            .collect()
    }

    /// The shards these keys fall in.
    pub fn needed_for<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> BTreeSet<usize> {
        keys.into_iter().filter_map(|k| self.shard_of(k)).collect()
    }

    /// Of `needed`, the shards not in memory yet (object keys to fetch); every other loaded
    /// shard is dropped, so memory holds only what the current step needs.
    pub fn keep_only(&mut self, needed: &BTreeSet<usize>) -> Vec<(usize, String)> {
        self.loaded.retain(|i, _| needed.contains(i));
        needed
            .iter()
            .filter(|i| !self.loaded.contains_key(i))
            .filter_map(|i| Some((*i, self.shards.get(*i)?.object.clone())))
            .collect()
    }

    pub fn put_loaded(&mut self, i: usize, entries: BTreeMap<VersionRef, Seen>) {
        if i < self.shards.len() {
            self.loaded.insert(i, entries);
        }
    }

    /// Versions remembered with a key in `[from, until)` (`until` `None`: to the end) that
    /// `keep` accepts, as far as the loaded shards and the changes tell. Only those are
    /// copied: a pass asks for the few its listing did not show, page after page.
    pub fn in_range(
        &self,
        from: &str,
        until: Option<&str>,
        keep: impl Fn(&VersionRef) -> bool,
    ) -> Vec<VersionRef> {
        let start = VersionRef {
            key: from.to_string(),
            version_id: None,
        };
        let before = |v: &VersionRef| until.is_none_or(|u| v.key.as_str() < u);
        let mut out: Vec<VersionRef> = self
            .delta
            .range(start.clone()..)
            .take_while(|(v, _)| before(v))
            .filter(|(v, c)| c.seen().is_some() && keep(v))
            .map(|(v, _)| v.clone())
            .collect();
        for m in self.loaded.values() {
            out.extend(
                m.range(start.clone()..)
                    .map(|(v, _)| v)
                    .take_while(|v| before(v))
                    .filter(|v| !self.delta.contains_key(*v) && keep(v))
                    .cloned(),
            );
        }
        out.sort();
        out
    }

    /// The shards the changes fall in (`None`: there are no shards yet).
    pub fn touched(&self) -> BTreeSet<Option<usize>> {
        self.delta.keys().map(|v| self.shard_of(&v.key)).collect()
    }

    /// The loaded entries of shard `i`, if in memory.
    pub fn loaded(&self, i: usize) -> Option<&BTreeMap<VersionRef, Seen>> {
        self.loaded.get(&i)
    }

    /// Shard `i`'s entries (or, for `None`, an empty base) with the changes in its range
    /// applied, split into chunks of at most `shard_entries` at key boundaries. Each chunk
    /// comes with the first key it covers; the first keeps the shard's own `from`.
    pub fn rewrite(
        &self,
        i: Option<usize>,
        mut base: BTreeMap<VersionRef, Seen>,
    ) -> Vec<(String, BTreeMap<VersionRef, Seen>)> {
        for (id, change) in self
            .delta
            .iter()
            .filter(|(v, _)| self.shard_of(&v.key) == i)
        {
            match change {
                Change::Forget => {
                    base.remove(id);
                }
                Change::Set(s) => {
                    base.insert(id.clone(), s.clone());
                }
                Change::Merge(s) => {
                    let old = base.remove(id);
                    base.insert(id.clone(), merged(old, s.clone()));
                }
            }
        }
        let from = i
            .and_then(|i| self.shards.get(i))
            .map_or(String::new(), |s| s.from.clone());
        let mut chunks: Vec<(String, BTreeMap<VersionRef, Seen>)> = Vec::new();
        let mut current: BTreeMap<VersionRef, Seen> = BTreeMap::new();
        let mut current_from = from;
        for (id, s) in base {
            // Versions of one key stay in one shard: split only where the key changes.
            let split = current.len() >= self.shard_entries
                && current
                    .last_key_value()
                    .is_some_and(|(l, _)| l.key != id.key);
            if split {
                let next_from = id.key.clone();
                chunks.push((
                    std::mem::replace(&mut current_from, next_from),
                    std::mem::take(&mut current),
                ));
            }
            current.insert(id, s);
        }
        if !current.is_empty() {
            chunks.push((current_from, current));
        }
        chunks
    }

    /// After a checkpoint named `shards`: the changes are in them now.
    pub fn checkpointed(
        &mut self,
        shards: Vec<ShardRef>,
        loaded: BTreeMap<usize, BTreeMap<VersionRef, Seen>>,
    ) {
        self.shards = shards;
        self.loaded = loaded;
        self.delta.clear();
    }
}

/// A shard's body: one JSON line per entry, in key order.
pub fn encode(entries: &BTreeMap<VersionRef, Seen>) -> Result<Vec<u8>, serde_json::Error> {
    let mut body = Vec::new();
    for (v, s) in entries {
        serde_json::to_writer(
            &mut body,
            &FirstSeen {
                key: v.key.clone(),
                version_id: v.version_id.clone(),
                etag: s.etag.clone(),
                last_modified: s.last_modified,
            },
        )?;
        body.push(b'\n');
    }
    Ok(body)
}

/// Parses a shard's body; the error names the line.
pub fn decode(body: &[u8]) -> Result<BTreeMap<VersionRef, Seen>, (usize, String)> {
    let mut out = BTreeMap::new();
    for (i, line) in body
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        // A line is a first-seen fact's object, as in the segments.
        let l: FirstSeen = serde_json::from_slice(line).map_err(|e| (i + 1, e.to_string()))?;
        out.insert(
            VersionRef {
                key: l.key,
                version_id: l.version_id,
            },
            Seen {
                etag: l.etag,
                last_modified: l.last_modified,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn v(key: &str) -> VersionRef {
        VersionRef {
            key: key.into(),
            version_id: None,
        }
    }

    fn seen(etag: &str, day: u32) -> Seen {
        Seen {
            etag: Some(etag.into()),
            last_modified: Utc
                .with_ymd_and_hms(2026, 1, day, 0, 0, 0)
                .single()
                .expect("valid"),
        }
    }

    #[test]
    fn the_same_content_keeps_its_earliest_time_new_content_replaces_it() {
        let mut m = SeenMap::default();
        m.insert(v("a"), seen("e1", 5));
        m.insert(v("a"), seen("e1", 9));
        assert_eq!(m.get(&v("a")), Lookup::Known(Some(&seen("e1", 5))));
        m.insert(v("a"), seen("e1", 2));
        assert_eq!(m.get(&v("a")), Lookup::Known(Some(&seen("e1", 2))));
        m.insert(v("a"), seen("e2", 20));
        assert_eq!(m.get(&v("a")), Lookup::Known(Some(&seen("e2", 20))));
        m.remove(&v("a"));
        assert_eq!(m.get(&v("a")), Lookup::Known(None));
    }

    #[test]
    fn a_shard_not_loaded_is_not_known_and_a_loaded_one_is() {
        let mut m = SeenMap::from_shards(vec![
            ShardRef {
                from: String::new(),
                object: "s0".into(),
                entries: 1,
            },
            ShardRef {
                from: "m".into(),
                object: "s1".into(),
                entries: 1,
            },
        ]);
        assert_eq!(m.get(&v("b")), Lookup::Unloaded);
        assert!(m.may_contain(&v("b")));
        let needed = m.needed("a", Upto::Key("c"));
        assert_eq!(needed, BTreeSet::from([0]));
        assert_eq!(m.keep_only(&needed), vec![(0, "s0".to_string())]);
        m.put_loaded(0, BTreeMap::from([(v("b"), seen("e", 1))]));
        assert_eq!(m.get(&v("b")), Lookup::Known(Some(&seen("e", 1))));
        assert_eq!(m.get(&v("c")), Lookup::Known(None));
        assert_eq!(m.get(&v("x")), Lookup::Unloaded);
        // The earlier time of the shard wins over a later one journaled for the same content.
        m.insert(v("b"), seen("e", 3));
        assert_eq!(m.get(&v("b")), Lookup::Known(Some(&seen("e", 1))));
        // Moving on drops what the next step does not need.
        let next = m.needed("n", Upto::End);
        assert_eq!(next, BTreeSet::from([1]));
        assert_eq!(m.keep_only(&next), vec![(1, "s1".to_string())]);
        assert_eq!(m.get(&v("b")), Lookup::Known(Some(&seen("e", 3))));
    }

    #[test]
    fn ranges_and_prefixes_select_the_shards_that_can_hold_them() {
        let m = SeenMap::from_shards(
            ["", "audio/2", "audio/5", "text/"]
                .iter()
                .enumerate()
                .map(|(i, f)| ShardRef {
                    from: f.to_string(),
                    object: format!("s{i}"),
                    entries: 1,
                })
                .collect(),
        );
        assert_eq!(m.needed("", Upto::Prefix("audio/3")), BTreeSet::from([1]));
        assert_eq!(
            m.needed("", Upto::Prefix("audio/")),
            BTreeSet::from([0, 1, 2])
        );
        assert_eq!(
            m.needed("audio/4", Upto::Key("audio/6")),
            BTreeSet::from([1, 2])
        );
        assert_eq!(m.needed("text/a", Upto::End), BTreeSet::from([3]));
        assert_eq!(m.needed("", Upto::Prefix("video/")), BTreeSet::from([3]));
        assert_eq!(m.needed_for(["a", "text/x"]), BTreeSet::from([0, 3]));
    }

    /// `m` with `base` as its one shard, loaded.
    fn with_base(m: &SeenMap, base: &BTreeMap<VersionRef, Seen>) -> SeenMap {
        let mut with = m.clone();
        with.shards = vec![ShardRef {
            from: String::new(),
            object: "s".into(),
            entries: base.len() as u64,
        }];
        with.loaded.insert(0, base.clone());
        with
    }

    #[test]
    fn content_seen_again_after_it_was_forgotten_counts_from_then() {
        let mut m = SeenMap::from_shards(vec![ShardRef {
            from: String::new(),
            object: "s0".into(),
            entries: 1,
        }]);
        m.put_loaded(0, BTreeMap::from([(v("a"), seen("e", 1))]));
        m.remove(&v("a"));
        m.insert(v("a"), seen("e", 9));
        assert_eq!(m.get(&v("a")), Lookup::Known(Some(&seen("e", 9))));
        let chunks = m.rewrite(Some(0), BTreeMap::from([(v("a"), seen("e", 1))]));
        assert_eq!(chunks[0].1.get(&v("a")), Some(&seen("e", 9)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Sharding loses nothing and keeps key order: rewriting any map with any changes
        /// gives chunks that together are the map with the changes applied, each within the
        /// size limit (unless one key has more versions), each starting at its own `from`.
        #[test]
        fn rewrite_is_the_map_with_the_changes(
            base in proptest::collection::btree_map("[a-e]{1,3}", 1u32..28, 0..9000),
            changes in proptest::collection::vec(
                ("[a-e]{1,3}", proptest::option::of((1u32..28, "[ef]"))),
                0..200,
            ),
        ) {
            let base: BTreeMap<VersionRef, Seen> =
                base.into_iter().map(|(k, d)| (v(&k), seen("e", d))).collect();
            let mut m = SeenMap::default();
            // The model: one map, changed in order; what was forgotten starts afresh.
            let mut expected = base.clone();
            for (k, d) in &changes {
                match d {
                    Some((d, etag)) => {
                        m.insert(v(k), seen(etag, *d));
                        let old = expected.remove(&v(k));
                        expected.insert(v(k), merged(old, seen(etag, *d)));
                    }
                    None => {
                        m.remove(&v(k));
                        expected.remove(&v(k));
                    }
                }
            }
            let with = with_base(&m, &base);
            for (k, _) in &changes {
                prop_assert_eq!(with.get(&v(k)).known(), expected.get(&v(k)));
            }
            let chunks = m.rewrite(None, base.clone());
            let mut joined = BTreeMap::new();
            let mut last_from: Option<String> = None;
            for (i, (from, entries)) in chunks.iter().enumerate() {
                prop_assert!(entries.len() <= SHARD_ENTRIES);
                prop_assert!(!entries.is_empty());
                if i == 0 {
                    prop_assert_eq!(from.as_str(), "");
                } else {
                    prop_assert_eq!(Some(from), entries.keys().next().map(|v| &v.key));
                }
                prop_assert!(last_from.as_ref().is_none_or(|l| l < from));
                last_from = Some(from.clone());
                joined.extend(entries.clone());
            }
            prop_assert_eq!(joined, expected);
        }

        #[test]
        fn a_shard_body_round_trips(
            entries in proptest::collection::btree_map(("[a-z/]{1,12}", proptest::option::of("[0-9a-f]{4}")), 1u32..28, 0..50),
        ) {
            let entries: BTreeMap<VersionRef, Seen> = entries
                .into_iter()
                .map(|((k, ver), d)| (VersionRef { key: k, version_id: ver }, seen("x", d)))
                .collect();
            let body = encode(&entries).expect("serialisable");
            prop_assert_eq!(decode(&body).expect("parses"), entries);
        }
    }

    #[test]
    fn a_corrupt_shard_names_its_line() {
        let err = decode(b"{\"key\":\"a\",\"lastModified\":\"2026-01-01T00:00:00Z\"}\nnot json\n")
            .expect_err("corrupt");
        assert_eq!(err.0, 2);
    }
}
