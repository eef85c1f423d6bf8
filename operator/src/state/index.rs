//! The index (issue 9): the last state gallring saw of every object version, in a local
//! embedded database, so that a steady pass costs a listing and a hold costs its own objects.
//!
//! **A cache, never a source of truth.** The index holds what the store said (ETag,
//! LastModified, size, tags, metadata) and what gallring derived from it (recording id,
//! subject, decision label), nothing else. It never holds a protection fact: holds applied or
//! released, floors, withdrawals and intended deletions live in the journal
//! ([`super::journal`]), which is durable in the object store before anything lowers
//! protection. So losing, corrupting or restoring a stale index costs one cold pass (every
//! object read again), never a decision. A file that cannot be opened may simply be removed.
//!
//! **Why redb** (pure Rust, ACID, one file, copy-on-write B-trees with crash-safe commits)
//! rather than SQLite through rusqlite: no C toolchain in the build (rusqlite's bundled SQLite
//! is a C compile, slow on a 2-core CI box); the index needs no SQL, only key-ordered reads for
//! a merge-join with a listing, and point reads for holds. redb's byte-ordered keys give S3's
//! listing order directly, and multimap tables give the secondary indexes in the same
//! transaction as the entries.
//!
//! **Layout.**
//! - `entries`: object key bytes, `0x00`, version id bytes (nothing for `None`) → the
//!   [`Entry`] in the binary form of [`value`] (key and version id not repeated). Byte order of this encoding is S3's listing order: UTF-8 binary order
//!   of the key, then the version id's bytes (`None` first). It relies on no key containing
//!   NUL, which S3 listings cannot carry (XML 1.0 has no NUL character, and the S3 API names
//!   keys as UTF-8 in XML), so a key with NUL is refused with [`IndexError::InvalidId`]. An
//!   empty version id is refused too: it would encode like `None`. Note that
//!   ListObjectVersions gives one key's versions newest first, not in version id order: a
//!   merge-join with a versions listing should join per key.
//! - `by_recording_id`, `by_subject`: recording id / subject → the `entries` keys that carry
//!   it, maintained in the same write transaction as `entries`, so a hold by recording id or
//!   subject reads its own objects, not the bucket.
//! - `meta`: the layout's version. An index written under another layout is emptied on open
//!   (a cold pass), not misread. Layout 1 stored entries as JSON; 2 in the binary form.
//!
//! **Costs.** [`Index::select`] by key, prefix, recording id or subject reads only what it
//! selects; by tag it scans every entry (tags change behind gallring's back, so a tag index
//! would be stale in exactly the case a tag hold is for). [`Index::due_for_verification`]
//! scans too. Every call is synchronous and may wait for a disk flush (each write transaction
//! is durable on commit) or for another write transaction: async callers run it where
//! blocking is acceptable.
//!
//! **Snapshots** ([`Index::snapshot`], [`Index::restore`]) copy the index to the state location
//! as JSON Lines parts of at most 5,000 entries and a manifest naming them, so that a new leader
//! or a new cluster starts warm; memory stays at one part whatever the index's size.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use redb::{
    Database, MultimapTableDefinition, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use serde::{Deserialize, Serialize};

use crate::store::{ObjectStore, StoreError};

mod value;

const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("entries");
const BY_RECORDING_ID: MultimapTableDefinition<&str, &[u8]> =
    MultimapTableDefinition::new("by_recording_id");
const BY_SUBJECT: MultimapTableDefinition<&str, &[u8]> = MultimapTableDefinition::new("by_subject");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Where the last complete listing was cut into ranges (`Index::cuts`), in order.
const CUTS: TableDefinition<u64, &str> = TableDefinition::new("cuts");
const LAYOUT_KEY: &str = "layout";
const LISTED_AT_KEY: &str = "listed_at";
/// Bump when the table layout or the stored [`Entry`] form changes incompatibly.
/// 2: entries in the binary form of [`value`] instead of JSON.
const LAYOUT: u64 = 2;
/// The snapshot's form (JSON Lines of [`Entry`], a manifest), versioned apart from the local
/// layout: the local encoding changed in layout 2, the snapshot did not, so a new host still
/// restores a snapshot written before.
const SNAPSHOT_LAYOUT: u64 = 1;
/// redb's page cache defaults to 1 GiB and grows as pages are read: bound it, so that the
/// operator's peak RSS stays flat with the bucket's size (issue 9: ≤ 64 MiB at 100k objects).
const CACHE_BYTES: usize = 16 * 1024 * 1024;
/// Entries per write transaction when restoring a snapshot: a listing page's worth.
const RESTORE_BATCH: usize = 1000;
/// Entries per snapshot part (a part is written and read whole: about 300 bytes an entry).
const SNAPSHOT_PART: usize = 5000;
/// Separates key and version in `entries` keys; below every byte a stored key can contain.
const SEP: u8 = 0x00;

/// The last state seen of one object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// As listed: without quotes (see [`crate::store::ListedObject::etag`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// As listed (milliseconds where the listing has them).
    pub last_modified: DateTime<Utc>,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The user metadata gallring read (empty when it read none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A free-text label of the last decision (e.g. `keep`): for reports, never acted on.
    pub decision: String,
    /// When the tags were last read from the store.
    pub verified_at: DateTime<Utc>,
    /// A bound on the store's clock right after gallring last wrote to this version (tags or
    /// legal hold): some stores (Ceph RGW 16) move `LastModified` on such writes, so the next
    /// listing may show it moved up to this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_before: Option<DateTime<Utc>>,
}

/// Which entries a hold selects: an entry matches when ANY selector matches (the engine's
/// `HoldSelector`). `tags` matches when every listed tag matches (`None`: present with any
/// value); an empty map selects nothing, as does an empty selection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub keys: BTreeSet<String>,
    pub prefix: Option<String>,
    pub recording_ids: BTreeSet<String>,
    pub subjects: BTreeSet<String>,
    pub tags: BTreeMap<String, Option<String>>,
}

/// A failed index operation. redb's errors are boxed: they are large, and errors travel by
/// value through every `?`.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {}: cannot open: {source}", path.display())]
    Open {
        path: PathBuf,
        source: Box<redb::DatabaseError>,
    },
    #[error("index: {op}: {source}")]
    Db {
        op: &'static str,
        source: Box<redb::Error>,
    },
    #[error("index: key {key:?}: {reason}")]
    InvalidId { key: String, reason: &'static str },
    #[error("index: stored entry for {key:?} is unreadable: {message}")]
    CorruptEntry { key: String, message: String },
    #[error("index: entry for {key:?} cannot be encoded: {message}")]
    Encode { key: String, message: String },
    #[error("index snapshot {key}: {source}")]
    Snapshot {
        key: String,
        source: Box<StoreError>,
    },
    #[error("index {}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("index snapshot {key} line {line}: {message}")]
    CorruptSnapshot {
        key: String,
        line: usize,
        message: String,
    },
}

/// Wraps any redb error with the operation that failed.
fn db<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> IndexError {
    move |e| IndexError::Db {
        op,
        source: Box::new(e.into()),
    }
}

/// The local index of one bucket. Cheap to share by reference across threads.
pub struct Index {
    db: Database,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").finish_non_exhaustive()
    }
}

impl Index {
    /// Opens the index file, creating it if missing.
    pub fn open(path: &Path) -> Result<Index, IndexError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|source| IndexError::Open {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        Index::init(db)
    }

    /// An index that lives in memory only (tests, and runs that must not touch the disk).
    pub fn in_memory() -> Result<Index, IndexError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|source| IndexError::Open {
                path: PathBuf::from("<memory>"),
                source: Box::new(source),
            })?;
        Index::init(db)
    }

    /// Creates the tables (a read transaction cannot open a table that was never created) and
    /// empties an index written under another layout.
    fn init(database: Database) -> Result<Index, IndexError> {
        let txn = database.begin_write().map_err(db("begin write"))?;
        {
            let mut meta = txn.open_table(META).map_err(db("open meta"))?;
            let layout = meta
                .get(LAYOUT_KEY)
                .map_err(db("read layout"))?
                .map(|g| g.value());
            if layout != Some(LAYOUT) {
                // Another (or no recorded) layout: it is a cache, so start cold.
                txn.delete_table(ENTRIES).map_err(db("drop entries"))?;
                txn.delete_multimap_table(BY_RECORDING_ID)
                    .map_err(db("drop by_recording_id"))?;
                txn.delete_multimap_table(BY_SUBJECT)
                    .map_err(db("drop by_subject"))?;
                meta.insert(LAYOUT_KEY, LAYOUT)
                    .map_err(db("write layout"))?;
            }
        }
        txn.open_table(ENTRIES).map_err(db("create entries"))?;
        txn.open_table(CUTS).map_err(db("create cuts"))?;
        txn.open_multimap_table(BY_RECORDING_ID)
            .map_err(db("create by_recording_id"))?;
        txn.open_multimap_table(BY_SUBJECT)
            .map_err(db("create by_subject"))?;
        txn.commit().map_err(db("commit"))?;
        Ok(Index { db: database })
    }

    /// The entry of one object version.
    pub fn get(&self, key: &str, version_id: Option<&str>) -> Result<Option<Entry>, IndexError> {
        let id = encode_id(key, version_id)?;
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let table = txn.open_table(ENTRIES).map_err(db("open entries"))?;
        let found = table.get(id.as_slice()).map_err(db("read entry"))?;
        found.map(|v| decode(&id, v.value())).transpose()
    }

    /// Writes (or replaces) entries in one write transaction: a listing page at a time. A
    /// replaced entry's old recording id and subject are unlinked in the same transaction.
    /// Nothing is written when any entry is refused.
    pub fn put_many(&self, entries: &[Entry]) -> Result<(), IndexError> {
        // A steady pass has nothing to write on most pages: no write transaction (and disk
        // flush) for nothing.
        if entries.is_empty() {
            return Ok(());
        }
        // Encode everything first, so that a refused entry fails the page before it writes.
        let encoded = entries
            .iter()
            .map(|e| {
                let id = encode_id(&e.key, e.version_id.as_deref())?;
                Ok((id, e, value::encode(e)))
            })
            .collect::<Result<Vec<_>, IndexError>>()?;
        let txn = self.db.begin_write().map_err(db("begin write"))?;
        {
            let mut tables = WriteTables::open(&txn)?;
            for (id, entry, value) in &encoded {
                let old = tables
                    .entries
                    .insert(id.as_slice(), value.as_slice())
                    .map_err(db("write entry"))?
                    .map(|g| g.value().to_vec());
                if let Some(old) = old {
                    tables.unlink(id, &old)?;
                }
                tables.link(id, entry)?;
            }
        }
        txn.commit().map_err(db("commit"))
    }

    /// Removes object versions (absent ones are no error) in one write transaction.
    pub fn remove_many(&self, ids: &[(String, Option<String>)]) -> Result<(), IndexError> {
        if ids.is_empty() {
            return Ok(());
        }
        let encoded = ids
            .iter()
            .map(|(k, v)| encode_id(k, v.as_deref()))
            .collect::<Result<Vec<_>, IndexError>>()?;
        let txn = self.db.begin_write().map_err(db("begin write"))?;
        {
            let mut tables = WriteTables::open(&txn)?;
            for id in &encoded {
                let old = tables
                    .entries
                    .remove(id.as_slice())
                    .map_err(db("remove entry"))?
                    .map(|g| g.value().to_vec());
                if let Some(old) = old {
                    tables.unlink(id, &old)?;
                }
            }
        }
        txn.commit().map_err(db("commit"))
    }

    /// Up to `limit` entries in listing order whose key sorts after `after` (every version of
    /// `after` itself excluded), from the start with `None`: the index side of a merge-join
    /// with a listing page. An `after` with NUL is refused (it cannot be a listed key).
    pub fn range_after(&self, after: Option<&str>, limit: usize) -> Result<Vec<Entry>, IndexError> {
        let start = match after {
            Some(a) => {
                // `a`'s versions are `a` 0x00 ...; the first key after all of them is `a` 0x01
                // (no stored key has NUL, so nothing lies between).
                let mut s = encode_id(a, None)?;
                if let Some(last) = s.last_mut() {
                    *last = SEP + 1;
                }
                s
            }
            None => Vec::new(),
        };
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let table = txn.open_table(ENTRIES).map_err(db("open entries"))?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for item in table.range(start.as_slice()..).map_err(db("range"))? {
            let (k, v) = item.map_err(db("range"))?;
            out.push(decode(k.value(), v.value())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Every entry, in listing order, whose key is at or after `from` and at or before
    /// `through` (every version of both; `None`: from the start, to the end), handed to `f`
    /// one at a time in one read transaction: the index side of a merge-join with one
    /// listing page. A bound with NUL is refused (it cannot be a listed key).
    pub fn for_each_between(
        &self,
        from: Option<&str>,
        through: Option<&str>,
        mut f: impl FnMut(Entry),
    ) -> Result<(), IndexError> {
        let start = match from {
            Some(k) => std::ops::Bound::Included(encode_id(k, None)?),
            None => std::ops::Bound::Unbounded,
        };
        let end = match through {
            // `k`'s versions are `k` 0x00 ...; everything before `k` 0x01 (no stored key has
            // NUL, so nothing else lies between).
            Some(k) => {
                let mut e = encode_id(k, None)?;
                if let Some(last) = e.last_mut() {
                    *last = SEP + 1;
                }
                std::ops::Bound::Excluded(e)
            }
            None => std::ops::Bound::Unbounded,
        };
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let table = txn.open_table(ENTRIES).map_err(db("open entries"))?;
        let range = (
            start.as_ref().map(Vec::as_slice),
            end.as_ref().map(Vec::as_slice),
        );
        for item in table.range::<&[u8]>(range).map_err(db("range"))? {
            let (k, v) = item.map_err(db("range"))?;
            f(decode(k.value(), v.value())?);
        }
        Ok(())
    }

    /// The keys a pass recorded, with [`Index::set_cuts`], to cut the next listing at: read
    /// at the start of each pass instead of every key ([`Index::split_keys`]).
    pub fn cuts(&self) -> Result<Vec<String>, IndexError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let table = txn.open_table(CUTS).map_err(db("open cuts"))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(db("read cuts"))? {
            let (_, key) = item.map_err(db("read cuts"))?;
            out.push(key.value().to_string());
        }
        Ok(out)
    }

    /// Replaces the recorded cuts (keys of a complete listing, in order).
    pub fn set_cuts(&self, cuts: &[String]) -> Result<(), IndexError> {
        let txn = self.db.begin_write().map_err(db("begin write"))?;
        {
            let mut table = txn.open_table(CUTS).map_err(db("open cuts"))?;
            table.retain(|_, _| false).map_err(db("clear cuts"))?;
            for (i, key) in cuts.iter().enumerate() {
                table
                    .insert(i as u64, key.as_str())
                    .map_err(db("write cuts"))?;
            }
        }
        txn.commit().map_err(db("commit"))
    }

    /// The key of every `every`-th entry in listing order (each key once): where a listing
    /// of the bucket as the index last saw it can be cut into ranges of about `every`
    /// entries, to list them side by side. Reads the keys only, not the entries.
    pub fn split_keys(&self, every: usize) -> Result<Vec<String>, IndexError> {
        let every = every.max(1);
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let table = txn.open_table(ENTRIES).map_err(db("open entries"))?;
        let mut out: Vec<String> = Vec::new();
        for (i, item) in table.iter().map_err(db("range"))?.enumerate() {
            if (i + 1) % every != 0 {
                continue;
            }
            let (k, _) = item.map_err(db("range"))?;
            let id = k.value();
            let key = id.split(|b| *b == SEP).next().unwrap_or_default();
            if out.last().is_some_and(|l| l.as_bytes() == key) {
                continue;
            }
            // Ids are written from `String`s; one that is not UTF-8 only loses its cut.
            if let Ok(key) = std::str::from_utf8(key) {
                out.push(key.to_string());
            }
        }
        Ok(out)
    }

    /// Up to `limit` entries in listing order strictly after the version `after` (from the
    /// start with `None`): resumable over keys with any number of versions, for sweeps.
    pub fn scan_after(
        &self,
        after: Option<(&str, Option<&str>)>,
        limit: usize,
    ) -> Result<Vec<Entry>, IndexError> {
        let start = match after {
            Some((k, v)) => std::ops::Bound::Excluded(encode_id(k, v)?),
            None => std::ops::Bound::Unbounded,
        };
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let table = txn.open_table(ENTRIES).map_err(db("open entries"))?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let range = (
            start.as_ref().map(Vec::as_slice),
            std::ops::Bound::<&[u8]>::Unbounded,
        );
        for item in table.range::<&[u8]>(range).map_err(db("range"))? {
            let (k, v) = item.map_err(db("range"))?;
            out.push(decode(k.value(), v.value())?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Every entry the selection selects, in listing order, each once. Keys, a prefix (a
    /// range scan), recording ids and subjects (secondary tables) read only what they select;
    /// tags scan every entry. A key or prefix with NUL selects nothing (no stored key has one).
    pub fn select(&self, q: &Selection) -> Result<Vec<Entry>, IndexError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let table = txn.open_table(ENTRIES).map_err(db("open entries"))?;
        let mut found: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();

        for key in &q.keys {
            let Ok(start) = encode_id(key, None) else {
                continue;
            };
            let mut end = start.clone();
            if let Some(last) = end.last_mut() {
                *last = SEP + 1;
            }
            for item in table
                .range(start.as_slice()..end.as_slice())
                .map_err(db("range key"))?
            {
                let (k, v) = item.map_err(db("range key"))?;
                found.insert(k.value().to_vec(), decode(k.value(), v.value())?);
            }
        }

        if let Some(prefix) = q.prefix.as_deref().filter(|p| !p.as_bytes().contains(&SEP)) {
            // Keys with the prefix are contiguous in key order, and so are their encodings;
            // a prefix without NUL matches the encoding exactly where it matches the key.
            let p = prefix.as_bytes();
            for item in table.range(p..).map_err(db("range prefix"))? {
                let (k, v) = item.map_err(db("range prefix"))?;
                if !k.value().starts_with(p) {
                    break;
                }
                found.insert(k.value().to_vec(), decode(k.value(), v.value())?);
            }
        }

        let recording_id: fn(&Entry) -> Option<&str> = |e| e.recording_id.as_deref();
        let subject: fn(&Entry) -> Option<&str> = |e| e.subject.as_deref();
        for (def, wanted, field) in [
            (BY_RECORDING_ID, &q.recording_ids, recording_id),
            (BY_SUBJECT, &q.subjects, subject),
        ] {
            found.extend(lookup(&txn, &table, def, wanted, field)?);
        }

        if !q.tags.is_empty() {
            for item in table.iter().map_err(db("scan"))? {
                let (k, v) = item.map_err(db("scan"))?;
                let e = decode(k.value(), v.value())?;
                if crate::retention::classify::tags_match(&q.tags, &e.tags) {
                    found.insert(k.value().to_vec(), e);
                }
            }
        }
        Ok(found.into_values().collect())
    }

    /// How many object versions the index holds.
    // The API the pass is wired against is fixed and small; `len()? == 0` says the same as an
    // `is_empty` would.
    /// When the last complete listing was swept into the index (`None` before the first).
    pub fn listed_at(&self) -> Result<Option<DateTime<Utc>>, IndexError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let meta = txn.open_table(META).map_err(db("open meta"))?;
        let millis = meta
            .get(LISTED_AT_KEY)
            .map_err(db("read listed_at"))?
            .map(|g| g.value());
        Ok(millis.and_then(|m| DateTime::from_timestamp_millis(i64::try_from(m).ok()?)))
    }

    /// Records the time of a complete listing.
    pub fn set_listed_at(&self, at: DateTime<Utc>) -> Result<(), IndexError> {
        let txn = self.db.begin_write().map_err(db("begin write"))?;
        {
            let mut meta = txn.open_table(META).map_err(db("open meta"))?;
            let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
            meta.insert(LISTED_AT_KEY, millis)
                .map_err(db("write listed_at"))?;
        }
        txn.commit().map_err(db("commit"))
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Result<u64, IndexError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let table = txn.open_table(ENTRIES).map_err(db("open entries"))?;
        table.len().map_err(db("count"))
    }

    /// Up to `limit` versions whose tags were last read before `before`, least recently read
    /// first (ties in listing order): the rotating verification's next batch. Scans every
    /// entry, keeping only `limit` in memory.
    pub fn due_for_verification(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(String, Option<String>)>, IndexError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let table = txn.open_table(ENTRIES).map_err(db("open entries"))?;
        // A max-heap on (verified_at, entries key, key, version id): when more than `limit`
        // are due, the most recently read of those kept is dropped first.
        type Due = (DateTime<Utc>, Vec<u8>, String, Option<String>);
        let mut heap: BinaryHeap<Due> = BinaryHeap::new();
        if limit == 0 {
            return Ok(Vec::new());
        }
        for item in table.iter().map_err(db("scan"))? {
            let (k, v) = item.map_err(db("scan"))?;
            let e = decode(k.value(), v.value())?;
            if e.verified_at >= before {
                continue;
            }
            if heap.len() == limit {
                match heap.peek() {
                    Some((newest, ..)) if e.verified_at < *newest => {
                        heap.pop();
                    }
                    _ => continue,
                }
            }
            heap.push((e.verified_at, k.value().to_vec(), e.key, e.version_id));
        }
        let mut due = heap.into_vec();
        due.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(due
            .into_iter()
            .map(|(_, _, key, version)| (key, version))
            .collect())
    }

    /// Copies every entry to the state location: parts of at most `SNAPSHOT_PART` entries
    /// under a new generation, then the manifest at `key` naming them (so a restore only ever
    /// sees a complete snapshot), then the previous generation's parts are removed. Memory
    /// stays at one part, whatever the index's size. Returns how many entries.
    pub async fn snapshot<S: ObjectStore>(&self, store: &S, key: &str) -> Result<u64, IndexError> {
        let failed = |k: &str| {
            let k = k.to_string();
            move |source| IndexError::Snapshot {
                key: k,
                source: Box::new(source),
            }
        };
        let previous = read_manifest(store, key).await.ok().flatten();
        let generation = previous.as_ref().map_or(0, |m| m.generation + 1);
        let mut manifest = Manifest {
            layout: SNAPSHOT_LAYOUT,
            generation,
            entries: 0,
            parts: Vec::new(),
        };
        let mut after: Option<(String, Option<String>)> = None;
        loop {
            let batch = self.scan_after(
                after.as_ref().map(|(k, v)| (k.as_str(), v.as_deref())),
                SNAPSHOT_PART,
            )?;
            let Some(last) = batch.last() else {
                break;
            };
            after = Some((last.key.clone(), last.version_id.clone()));
            let mut body = Vec::new();
            for e in &batch {
                serde_json::to_writer(&mut body, e).map_err(|err| IndexError::Encode {
                    key: e.key.clone(),
                    message: err.to_string(),
                })?;
                body.push(b'\n');
            }
            let part = format!(
                "{}{generation:08}/{:06}.jsonl",
                parts_prefix(key),
                manifest.parts.len()
            );
            store
                .put_object(&part, body, "application/x-ndjson", None)
                .await
                .map_err(failed(&part))?;
            manifest.entries += batch.len() as u64;
            manifest.parts.push(part);
        }
        let body = serde_json::to_vec(&manifest).map_err(|err| IndexError::Encode {
            key: key.to_string(),
            message: err.to_string(),
        })?;
        store
            .put_object(key, body, "application/json", None)
            .await
            .map_err(failed(key))?;
        // The old parts are garbage now; one that cannot be removed costs only space.
        if let Some(old) = previous {
            let ids: Vec<crate::store::ObjectId> = old
                .parts
                .into_iter()
                .filter(|p| !manifest.parts.contains(p))
                .map(|key| crate::store::ObjectId {
                    key,
                    version_id: None,
                })
                .collect();
            for chunk in ids.chunks(1000) {
                if let Err(e) = store.delete_objects(chunk).await {
                    tracing::warn!(error = %e, "an old index snapshot part could not be removed");
                }
            }
        }
        Ok(manifest.entries)
    }

    /// Loads the snapshot whose manifest is at `key` into `into` (restore into an empty
    /// index), part by part; returns how many entries. A missing snapshot is `Ok(0)`: a cold
    /// start. A corrupt or missing part names itself (and its first bad line) and leaves the
    /// index empty: nothing half-restored.
    pub async fn restore<S: ObjectStore>(
        store: &S,
        key: &str,
        into: &Index,
    ) -> Result<u64, IndexError> {
        let Some(manifest) = read_manifest(store, key).await? else {
            return Ok(0);
        };
        let mut count = 0u64;
        for part in &manifest.parts {
            let loaded = match store.get_object(part).await {
                Err(source) => Err(IndexError::Snapshot {
                    key: part.clone(),
                    source: Box::new(source),
                }),
                Ok(None) => Err(IndexError::CorruptSnapshot {
                    key: part.clone(),
                    line: 0,
                    message: format!("named by {key} but missing"),
                }),
                Ok(Some(body)) => into.load_lines(part, &body),
            };
            match loaded {
                Ok(n) => count += n,
                Err(e) => {
                    into.clear()?;
                    return Err(e);
                }
            }
        }
        Ok(count)
    }

    /// Removes every entry (and its secondary links).
    pub fn clear(&self) -> Result<(), IndexError> {
        loop {
            let batch = self.scan_after(None, RESTORE_BATCH)?;
            if batch.is_empty() {
                return Ok(());
            }
            let ids: Vec<(String, Option<String>)> =
                batch.into_iter().map(|e| (e.key, e.version_id)).collect();
            self.remove_many(&ids)?;
        }
    }

    fn load_lines(&self, key: &str, body: &[u8]) -> Result<u64, IndexError> {
        // Check every line of the part before writing any of it.
        for (line, text) in snapshot_lines(body) {
            parse_line(key, line, text)?;
        }
        let mut batch = Vec::with_capacity(RESTORE_BATCH);
        let mut count = 0u64;
        for (line, text) in snapshot_lines(body) {
            batch.push(parse_line(key, line, text)?);
            if batch.len() == RESTORE_BATCH {
                self.put_many(&batch)?;
                count += batch.len() as u64;
                batch.clear();
            }
        }
        self.put_many(&batch)?;
        count += batch.len() as u64;
        Ok(count)
    }

    /// Every (secondary table, value, entries key) pair, for the consistency tests.
    #[cfg(test)]
    fn secondary_pairs(&self) -> Result<BTreeSet<SecondaryPair>, IndexError> {
        use redb::ReadableMultimapTable;
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let mut out = BTreeSet::new();
        for (name, def) in [("recording", BY_RECORDING_ID), ("subject", BY_SUBJECT)] {
            let table = txn.open_multimap_table(def).map_err(db("open"))?;
            for item in table.iter().map_err(db("scan"))? {
                let (k, values) = item.map_err(db("scan"))?;
                for v in values {
                    let v = v.map_err(db("scan"))?;
                    out.insert((name, k.value().to_string(), v.value().to_vec()));
                }
            }
        }
        Ok(out)
    }
}

/// (secondary table, value, entries key), for the consistency tests.
#[cfg(test)]
type SecondaryPair = (&'static str, String, Vec<u8>);

/// The tables a write transaction changes together.
struct WriteTables<'txn> {
    entries: redb::Table<'txn, &'static [u8], &'static [u8]>,
    by_recording_id: redb::MultimapTable<'txn, &'static str, &'static [u8]>,
    by_subject: redb::MultimapTable<'txn, &'static str, &'static [u8]>,
}

impl<'txn> WriteTables<'txn> {
    fn open(txn: &'txn redb::WriteTransaction) -> Result<Self, IndexError> {
        Ok(WriteTables {
            entries: txn.open_table(ENTRIES).map_err(db("open entries"))?,
            by_recording_id: txn
                .open_multimap_table(BY_RECORDING_ID)
                .map_err(db("open by_recording_id"))?,
            by_subject: txn
                .open_multimap_table(BY_SUBJECT)
                .map_err(db("open by_subject"))?,
        })
    }

    fn link(&mut self, id: &[u8], e: &Entry) -> Result<(), IndexError> {
        if let Some(r) = &e.recording_id {
            self.by_recording_id
                .insert(r.as_str(), id)
                .map_err(db("write by_recording_id"))?;
        }
        if let Some(s) = &e.subject {
            self.by_subject
                .insert(s.as_str(), id)
                .map_err(db("write by_subject"))?;
        }
        Ok(())
    }

    /// Unlinks the entry that was stored under `id` (its stored bytes). One that no longer
    /// decodes is overwritten or removed all the same, so that it cannot wedge every later
    /// pass; its secondary pointers, unknown, stay behind and [`lookup`] ignores them.
    fn unlink(&mut self, id: &[u8], old: &[u8]) -> Result<(), IndexError> {
        let e = match decode(id, old) {
            Ok(e) => e,
            Err(err) => {
                tracing::warn!(error = %err, "index: replacing an unreadable entry");
                return Ok(());
            }
        };
        if let Some(r) = &e.recording_id {
            self.by_recording_id
                .remove(r.as_str(), id)
                .map_err(db("remove by_recording_id"))?;
        }
        if let Some(s) = &e.subject {
            self.by_subject
                .remove(s.as_str(), id)
                .map_err(db("remove by_subject"))?;
        }
        Ok(())
    }
}

/// The entries a secondary table points at for the wanted values. Each entry is checked
/// against the value again, so that a pointer left behind by a bug can never widen a hold's
/// selection beyond what the entries say.
fn lookup(
    txn: &redb::ReadTransaction,
    entries: &redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    def: MultimapTableDefinition<&'static str, &'static [u8]>,
    wanted: &BTreeSet<String>,
    field: fn(&Entry) -> Option<&str>,
) -> Result<Vec<(Vec<u8>, Entry)>, IndexError> {
    let mut out = Vec::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let table = txn.open_multimap_table(def).map_err(db("open secondary"))?;
    for value in wanted {
        for id in table.get(value.as_str()).map_err(db("read secondary"))? {
            let id = id.map_err(db("read secondary"))?.value().to_vec();
            let Some(v) = entries.get(id.as_slice()).map_err(db("read entry"))? else {
                continue;
            };
            let e = decode(&id, v.value())?;
            if field(&e) == Some(value.as_str()) {
                out.push((id, e));
            }
        }
    }
    Ok(out)
}

/// The `entries` key of an object version: key bytes, 0x00, version bytes.
fn encode_id(key: &str, version_id: Option<&str>) -> Result<Vec<u8>, IndexError> {
    if key.as_bytes().contains(&SEP) {
        return Err(IndexError::InvalidId {
            key: key.to_string(),
            reason: "contains NUL, which no S3 listing can carry and the index uses as separator",
        });
    }
    if version_id == Some("") {
        return Err(IndexError::InvalidId {
            key: key.to_string(),
            reason: "empty version id (an unversioned object has none)",
        });
    }
    let version = version_id.unwrap_or_default().as_bytes();
    let mut id = Vec::with_capacity(key.len() + 1 + version.len());
    id.extend_from_slice(key.as_bytes());
    id.push(SEP);
    id.extend_from_slice(version);
    Ok(id)
}

fn decode(id: &[u8], bytes: &[u8]) -> Result<Entry, IndexError> {
    value::decode(id, bytes).map_err(|message| IndexError::CorruptEntry {
        key: String::from_utf8_lossy(id.split(|b| *b == SEP).next().unwrap_or_default())
            .into_owned(),
        message: message.to_string(),
    })
}

/// The non-blank lines of a snapshot, numbered from 1.
fn snapshot_lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, text)| (i + 1, text))
        .filter(|(_, text)| !text.iter().all(u8::is_ascii_whitespace))
}

fn parse_line(key: &str, line: usize, text: &[u8]) -> Result<Entry, IndexError> {
    let corrupt = |message: String| IndexError::CorruptSnapshot {
        key: key.to_string(),
        line,
        message,
    };
    let entry: Entry = serde_json::from_slice(text).map_err(|e| corrupt(e.to_string()))?;
    encode_id(&entry.key, entry.version_id.as_deref()).map_err(|e| corrupt(e.to_string()))?;
    Ok(entry)
}

/// The snapshot's manifest: which parts make it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    layout: u64,
    generation: u64,
    entries: u64,
    parts: Vec<String>,
}

/// Where a manifest's parts live: `<prefix>index/snapshot.json` → `<prefix>index/snapshot/`.
fn parts_prefix(manifest_key: &str) -> String {
    format!(
        "{}/",
        manifest_key.strip_suffix(".json").unwrap_or(manifest_key)
    )
}

async fn read_manifest<S: ObjectStore>(
    store: &S,
    key: &str,
) -> Result<Option<Manifest>, IndexError> {
    let Some(body) = store
        .get_object(key)
        .await
        .map_err(|source| IndexError::Snapshot {
            key: key.to_string(),
            source: Box::new(source),
        })?
    else {
        return Ok(None);
    };
    let manifest: Manifest =
        serde_json::from_slice(&body).map_err(|e| IndexError::CorruptSnapshot {
            key: key.to_string(),
            line: e.line(),
            message: e.to_string(),
        })?;
    // A snapshot written under another layout is not misread: a cold start instead.
    Ok((manifest.layout == SNAPSHOT_LAYOUT).then_some(manifest))
}

/// The hosts' indexes, one per bucket, each opened once per process (redb allows one open
/// database per file): files under `dir`, or in memory without one.
#[derive(Debug, Default)]
pub struct Indexes {
    dir: Option<PathBuf>,
    open: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Index>>>,
}

impl Indexes {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Indexes {
            dir,
            open: Default::default(),
        }
    }

    /// The index of the bucket named `key` (`namespace/name`). A file that cannot be opened
    /// (corrupt, written by something else) is removed and created again: the index is a
    /// cache, and a new one costs one cold pass.
    pub fn get(&self, key: &str) -> Result<std::sync::Arc<Index>, IndexError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ix) = open.get(key) {
            return Ok(ix.clone());
        }
        let index = match &self.dir {
            None => Index::in_memory()?,
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| IndexError::Io {
                    path: dir.clone(),
                    message: e.to_string(),
                })?;
                let path = dir.join(file_name(key));
                match Index::open(&path) {
                    Ok(ix) => ix,
                    Err(first) => {
                        tracing::warn!(path = %path.display(), error = %first, "index unreadable: starting a new one");
                        std::fs::remove_file(&path).map_err(|e| IndexError::Io {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                        Index::open(&path)?
                    }
                }
            }
        };
        let index = std::sync::Arc::new(index);
        open.insert(key.to_string(), index.clone());
        Ok(index)
    }
}

/// `namespace/name` as a file name: Kubernetes names have no `_`, so `/` becomes `__`; any
/// other character outside `[A-Za-z0-9.-]` becomes `_`.
fn file_name(key: &str) -> String {
    let mut name: String = key
        .replace('/', "__")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.push_str(".redb");
    name
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    fn entry(key: &str, version: Option<&str>) -> Entry {
        Entry {
            key: key.to_string(),
            version_id: version.map(str::to_string),
            etag: Some("9b2cf535f27731c974343645a3985328".to_string()),
            last_modified: at(0),
            size: 1234,
            tags: BTreeMap::new(),
            metadata: BTreeMap::new(),
            recording_id: None,
            subject: None,
            decision: "keep".to_string(),
            verified_at: at(0),
            written_before: None,
        }
    }

    fn with(mut e: Entry, f: impl FnOnce(&mut Entry)) -> Entry {
        f(&mut e);
        e
    }

    fn ids(entries: &[Entry]) -> Vec<(String, Option<String>)> {
        entries
            .iter()
            .map(|e| (e.key.clone(), e.version_id.clone()))
            .collect()
    }

    fn id(key: &str, version: Option<&str>) -> (String, Option<String>) {
        (key.to_string(), version.map(str::to_string))
    }

    #[test]
    fn put_then_get_round_trips_every_field() {
        let index = Index::in_memory().unwrap();
        let full = with(entry("samtaler/2026/t-1/audio.wav", Some("v2")), |e| {
            e.tags
                .insert("gallring.io/retain".into(), "2027-01-01".into());
            e.tags.insert("consent".into(), "given".into());
            e.metadata
                .insert("call-start".into(), "2026-01-01T10:00:00Z".into());
            e.recording_id = Some("t-1".into());
            e.subject = Some("kunde-77".into());
            e.verified_at = at(60);
            e.last_modified = Utc.timestamp_millis_opt(1_800_000_000_123).unwrap();
        });
        let bare = with(entry("samtaler/2026/t-1/audio.wav", None), |e| {
            e.etag = None;
        });
        index.put_many(&[full.clone(), bare.clone()]).unwrap();
        assert_eq!(
            index
                .get("samtaler/2026/t-1/audio.wav", Some("v2"))
                .unwrap(),
            Some(full)
        );
        assert_eq!(
            index.get("samtaler/2026/t-1/audio.wav", None).unwrap(),
            Some(bare)
        );
        assert_eq!(
            index
                .get("samtaler/2026/t-1/audio.wav", Some("v1"))
                .unwrap(),
            None
        );
        assert_eq!(index.len().unwrap(), 2);
        index
            .remove_many(&[
                id("samtaler/2026/t-1/audio.wav", Some("v2")),
                id("not/there", None),
            ])
            .unwrap();
        assert_eq!(index.len().unwrap(), 1);
    }

    #[test]
    fn the_json_form_is_camel_case() {
        let e = with(entry("a", Some("v1")), |e| {
            e.recording_id = Some("r".into())
        });
        let json = serde_json::to_string(&e).unwrap();
        for field in [
            "\"versionId\"",
            "\"lastModified\"",
            "\"recordingId\"",
            "\"verifiedAt\"",
        ] {
            assert!(json.contains(field), "{json}");
        }
    }

    #[test]
    fn a_key_with_nul_or_an_empty_version_is_refused_and_nothing_of_the_page_is_written() {
        let index = Index::in_memory().unwrap();
        let err = index
            .put_many(&[entry("fine", None), entry("bad\0key", None)])
            .err()
            .unwrap();
        assert!(matches!(err, IndexError::InvalidId { ref key, .. } if key == "bad\0key"));
        assert_eq!(index.len().unwrap(), 0);
        let err = index.put_many(&[entry("k", Some(""))]).err().unwrap();
        assert!(matches!(err, IndexError::InvalidId { .. }), "{err}");
        assert!(index.get("bad\0key", None).is_err());
        // A hold naming such a key selects nothing rather than failing its other selectors.
        index.put_many(&[entry("fine", None)]).unwrap();
        let q = Selection {
            keys: ["bad\0key".to_string(), "fine".to_string()].into(),
            prefix: Some("x\0".into()),
            ..Selection::default()
        };
        assert_eq!(ids(&index.select(&q).unwrap()), vec![id("fine", None)]);
    }

    /// S3 lists in UTF-8 binary order of the key (not UTF-16 order, not locale order).
    #[test]
    fn listing_order_is_s3_byte_order() {
        let index = Index::in_memory().unwrap();
        let keys = [
            "a", "a-", "a/", "a/b", "a\u{1}", "ab", "Z", "z", "é", "ä", "\u{FF5E}", "😀", "a b",
        ];
        let mut entries: Vec<Entry> = keys.iter().map(|k| entry(k, None)).collect();
        entries.push(entry("a", Some("v2")));
        entries.push(entry("a", Some("v10")));
        entries.push(entry("a/", Some("3")));
        index.put_many(&entries).unwrap();

        let listed = ids(&index.range_after(None, 100).unwrap());
        let expected = vec![
            id("Z", None),
            id("a", None),
            id("a", Some("v10")),
            id("a", Some("v2")),
            id("a\u{1}", None),
            id("a b", None),
            id("a-", None),
            id("a/", None),
            id("a/", Some("3")),
            id("a/b", None),
            id("ab", None),
            id("z", None),
            id("ä", None),
            id("é", None),
            // U+FF5E is EF BD 9E, the emoji F0 9F 98 80: the other way round in UTF-16.
            id("\u{FF5E}", None),
            id("😀", None),
        ];
        assert_eq!(listed, expected);
        let mut by_bytes = expected.clone();
        by_bytes.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1)));
        assert_eq!(listed, by_bytes);

        // `after` excludes every version of that key; `limit` pages.
        assert_eq!(
            ids(&index.range_after(Some("a"), 3).unwrap()),
            vec![id("a\u{1}", None), id("a b", None), id("a-", None)]
        );
        assert_eq!(
            ids(&index.range_after(Some("a-"), 2).unwrap()),
            vec![id("a/", None), id("a/", Some("3"))]
        );
        // A key between stored keys, and one after all of them.
        assert_eq!(
            ids(&index.range_after(Some("a/a"), 1).unwrap()),
            vec![id("a/b", None)]
        );
        assert!(index.range_after(Some("😀"), 10).unwrap().is_empty());
        assert!(index.range_after(None, 0).unwrap().is_empty());
    }

    fn held_fixture(index: &Index) {
        index
            .put_many(&[
                with(entry("calls/1/audio.wav", None), |e| {
                    e.recording_id = Some("r1".into());
                    e.subject = Some("s1".into());
                }),
                with(entry("calls/1/transcript.txt", None), |e| {
                    e.recording_id = Some("r1".into());
                    e.subject = Some("s1".into());
                    e.tags.insert("kind".into(), "transcript".into());
                }),
                with(entry("calls/2/audio.wav", Some("v1")), |e| {
                    e.recording_id = Some("r2".into());
                    e.subject = Some("s1".into());
                    e.tags.insert("consent".into(), "given".into());
                }),
                with(entry("calls/2/audio.wav", Some("v2")), |e| {
                    e.recording_id = Some("r2".into());
                    e.tags.insert("consent".into(), "withdrawn".into());
                }),
                with(entry("calls-old/3/audio.wav", None), |e| {
                    e.recording_id = Some("r3".into());
                    e.subject = Some("s2".into());
                }),
                entry("other/readme", None),
            ])
            .unwrap();
    }

    fn select(index: &Index, f: impl FnOnce(&mut Selection)) -> Vec<(String, Option<String>)> {
        let mut q = Selection::default();
        f(&mut q);
        ids(&index.select(&q).unwrap())
    }

    #[test]
    fn each_selector_selects_its_objects() {
        let index = Index::in_memory().unwrap();
        held_fixture(&index);
        assert!(select(&index, |_| {}).is_empty());
        assert_eq!(
            select(&index, |q| {
                q.keys.insert("calls/2/audio.wav".into());
            }),
            vec![
                id("calls/2/audio.wav", Some("v1")),
                id("calls/2/audio.wav", Some("v2"))
            ]
        );
        // `calls/` is not `calls-old/`, and the prefix is a key prefix, not a path segment.
        assert_eq!(
            select(&index, |q| q.prefix = Some("calls/".into())),
            vec![
                id("calls/1/audio.wav", None),
                id("calls/1/transcript.txt", None),
                id("calls/2/audio.wav", Some("v1")),
                id("calls/2/audio.wav", Some("v2")),
            ]
        );
        assert_eq!(select(&index, |q| q.prefix = Some("calls".into())).len(), 5);
        assert_eq!(select(&index, |q| q.prefix = Some(String::new())).len(), 6);
        assert!(select(&index, |q| q.prefix = Some("zzz".into())).is_empty());
        assert_eq!(
            select(&index, |q| {
                q.recording_ids.insert("r1".into());
            }),
            vec![
                id("calls/1/audio.wav", None),
                id("calls/1/transcript.txt", None)
            ]
        );
        assert_eq!(
            select(&index, |q| {
                q.subjects.insert("s1".into());
            }),
            vec![
                id("calls/1/audio.wav", None),
                id("calls/1/transcript.txt", None),
                id("calls/2/audio.wav", Some("v1")),
            ]
        );
        assert_eq!(
            select(&index, |q| {
                q.tags.insert("consent".into(), None);
            }),
            vec![
                id("calls/2/audio.wav", Some("v1")),
                id("calls/2/audio.wav", Some("v2"))
            ]
        );
        assert_eq!(
            select(&index, |q| {
                q.tags.insert("consent".into(), Some("withdrawn".into()));
            }),
            vec![id("calls/2/audio.wav", Some("v2"))]
        );
        // All listed tags must match.
        assert!(
            select(&index, |q| {
                q.tags.insert("consent".into(), None);
                q.tags.insert("kind".into(), None);
            })
            .is_empty()
        );
        // Any selector: the union, each object once, in listing order.
        assert_eq!(
            select(&index, |q| {
                q.recording_ids.insert("r3".into());
                q.subjects.insert("s2".into());
                q.keys.insert("other/readme".into());
                q.tags.insert("kind".into(), Some("transcript".into()));
            }),
            vec![
                id("calls-old/3/audio.wav", None),
                id("calls/1/transcript.txt", None),
                id("other/readme", None),
            ]
        );
    }

    #[test]
    fn secondary_tables_follow_removals_and_changed_ids() {
        let index = Index::in_memory().unwrap();
        held_fixture(&index);
        index
            .remove_many(&[
                id("calls/1/audio.wav", None),
                id("calls/2/audio.wav", Some("v1")),
            ])
            .unwrap();
        assert_eq!(
            select(&index, |q| {
                q.recording_ids.insert("r1".into());
                q.recording_ids.insert("r2".into());
            }),
            vec![
                id("calls/1/transcript.txt", None),
                id("calls/2/audio.wav", Some("v2"))
            ]
        );
        assert_eq!(
            select(&index, |q| {
                q.subjects.insert("s1".into());
            }),
            vec![id("calls/1/transcript.txt", None)]
        );

        // The same version put again with another recording id and no subject.
        index
            .put_many(&[with(entry("calls/1/transcript.txt", None), |e| {
                e.recording_id = Some("r9".into());
            })])
            .unwrap();
        assert!(
            select(&index, |q| {
                q.recording_ids.insert("r1".into());
            })
            .is_empty()
        );
        assert!(
            select(&index, |q| {
                q.subjects.insert("s1".into());
            })
            .is_empty()
        );
        assert_eq!(
            select(&index, |q| {
                q.recording_ids.insert("r9".into());
            }),
            vec![id("calls/1/transcript.txt", None)]
        );
        let expected_key = |k: &str| encode_id(k, None).unwrap();
        let pairs = index.secondary_pairs().unwrap();
        assert_eq!(
            pairs,
            [
                (
                    "recording",
                    "r2".to_string(),
                    encode_id("calls/2/audio.wav", Some("v2")).unwrap()
                ),
                (
                    "recording",
                    "r3".to_string(),
                    expected_key("calls-old/3/audio.wav")
                ),
                (
                    "recording",
                    "r9".to_string(),
                    expected_key("calls/1/transcript.txt")
                ),
                (
                    "subject",
                    "s2".to_string(),
                    expected_key("calls-old/3/audio.wav")
                ),
            ]
            .into_iter()
            .collect()
        );
    }

    #[test]
    fn an_unreadable_entry_is_named_and_can_be_overwritten() {
        let index = Index::in_memory().unwrap();
        let k = encode_id("k", None).unwrap();
        {
            // As a bug could leave it: bytes that are no entry, and a pointer to them.
            let txn = index.db.begin_write().unwrap();
            let mut tables = WriteTables::open(&txn).unwrap();
            tables
                .entries
                .insert(k.as_slice(), b"not json".as_slice())
                .unwrap();
            tables.by_recording_id.insert("r1", k.as_slice()).unwrap();
            drop(tables);
            txn.commit().unwrap();
        }
        let err = index.get("k", None).err().unwrap();
        assert!(
            matches!(err, IndexError::CorruptEntry { ref key, .. } if key == "k"),
            "{err}"
        );
        index
            .put_many(&[with(entry("k", None), |e| {
                e.recording_id = Some("r2".into())
            })])
            .unwrap();
        // The stale pointer to r1 cannot widen a selection: the entry says r2.
        assert!(
            select(&index, |q| {
                q.recording_ids.insert("r1".into());
            })
            .is_empty()
        );
        assert_eq!(
            select(&index, |q| {
                q.recording_ids.insert("r2".into());
            }),
            vec![id("k", None)]
        );
    }

    #[test]
    fn due_for_verification_gives_the_least_recently_read_first() {
        let index = Index::in_memory().unwrap();
        index
            .put_many(&[
                with(entry("a", None), |e| e.verified_at = at(30)),
                with(entry("b", None), |e| e.verified_at = at(10)),
                with(entry("c", Some("v1")), |e| e.verified_at = at(20)),
                with(entry("d", None), |e| e.verified_at = at(10)),
                with(entry("e", None), |e| e.verified_at = at(100)),
            ])
            .unwrap();
        assert_eq!(
            index.due_for_verification(at(50), 10).unwrap(),
            vec![
                id("b", None),
                id("d", None),
                id("c", Some("v1")),
                id("a", None)
            ]
        );
        assert_eq!(
            index.due_for_verification(at(50), 2).unwrap(),
            vec![id("b", None), id("d", None)]
        );
        assert_eq!(
            index.due_for_verification(at(20), 10).unwrap(),
            vec![id("b", None), id("d", None)]
        );
        assert!(index.due_for_verification(at(50), 0).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_snapshot_restores_the_same_entries_and_secondaries() {
        let store = MemoryStore::new("calls");
        let index = Index::in_memory().unwrap();
        held_fixture(&index);
        let key = ".gallring/index/snapshot.json";
        assert_eq!(index.snapshot(&store, key).await.unwrap(), 6);
        assert!(
            store
                .get_object(".gallring/index/snapshot/00000000/000000.jsonl")
                .await
                .unwrap()
                .is_some()
        );

        let warm = Index::in_memory().unwrap();
        assert_eq!(Index::restore(&store, key, &warm).await.unwrap(), 6);
        assert_eq!(
            warm.range_after(None, 100).unwrap(),
            index.range_after(None, 100).unwrap()
        );
        assert_eq!(
            warm.secondary_pairs().unwrap(),
            index.secondary_pairs().unwrap()
        );

        // No snapshot yet: a cold start.
        let cold = Index::in_memory().unwrap();
        assert_eq!(
            Index::restore(&store, "absent.jsonl", &cold).await.unwrap(),
            0
        );
        assert_eq!(cold.len().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_snapshot_of_several_parts_restores_whole_and_replaces_the_last() {
        let store = MemoryStore::new("calls");
        let index = Index::in_memory().unwrap();
        let entries: Vec<Entry> = (0..SNAPSHOT_PART * 2 + 7)
            .map(|i| entry(&format!("k/{i:05}"), None))
            .collect();
        index.put_many(&entries).unwrap();
        index.snapshot(&store, "s.json").await.unwrap();
        async fn parts(store: &MemoryStore) -> Vec<String> {
            let page = store
                .list_page(Some("s/"), false, None, 1000)
                .await
                .unwrap();
            page.objects.into_iter().map(|o| o.key).collect()
        }
        assert_eq!(
            parts(&store).await,
            vec![
                "s/00000000/000000.jsonl",
                "s/00000000/000001.jsonl",
                "s/00000000/000002.jsonl"
            ]
        );
        let warm = Index::in_memory().unwrap();
        let n = Index::restore(&store, "s.json", &warm).await.unwrap();
        assert_eq!(n, entries.len() as u64);
        assert_eq!(warm.range_after(None, usize::MAX).unwrap(), entries);

        // The next snapshot is a new generation; the old parts go once it is complete.
        index.remove_many(&[("k/00000".into(), None)]).unwrap();
        assert_eq!(
            index.snapshot(&store, "s.json").await.unwrap(),
            entries.len() as u64 - 1
        );
        assert_eq!(
            parts(&store).await,
            vec![
                "s/00000001/000000.jsonl",
                "s/00000001/000001.jsonl",
                "s/00000001/000002.jsonl"
            ]
        );
        let again = Index::in_memory().unwrap();
        let n = Index::restore(&store, "s.json", &again).await.unwrap();
        assert_eq!(n, entries.len() as u64 - 1);
    }

    #[tokio::test]
    async fn a_corrupt_snapshot_names_its_line_and_restores_nothing() {
        let store = MemoryStore::new("calls");
        let index = Index::in_memory().unwrap();
        held_fixture(&index);
        index.snapshot(&store, "s.json").await.unwrap();
        let part = "s/00000000/000000.jsonl";
        let body = store.get_object(part).await.unwrap().unwrap();
        let mut lines: Vec<String> = String::from_utf8(body)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines[3] = lines[3].replace("\"size\":1234", "\"size\":\"big\"");
        store
            .put_object(
                part,
                lines.join("\n").into_bytes(),
                "application/x-ndjson",
                None,
            )
            .await
            .unwrap();
        let into = Index::in_memory().unwrap();
        let err = Index::restore(&store, "s.json", &into).await.err().unwrap();
        assert!(
            matches!(err, IndexError::CorruptSnapshot { line: 4, .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{part} line 4")), "{err}");
        assert_eq!(into.len().unwrap(), 0);

        // A part the manifest names but the store lost: nothing restored, the part named.
        held_fixture(&index);
        index.snapshot(&store, "m.json").await.unwrap();
        let lost = crate::store::ObjectId {
            key: "m/00000000/000000.jsonl".into(),
            version_id: None,
        };
        store.delete_objects(&[lost]).await.unwrap();
        let err = Index::restore(&store, "m.json", &into).await.err().unwrap();
        assert!(err.to_string().contains("m/00000000/000000.jsonl"), "{err}");
        assert_eq!(into.len().unwrap(), 0);

        // A line that parses but names a key the index cannot hold is corrupt too.
        let nul = serde_json::to_string(&entry("x\0y", None)).unwrap();
        store
            .put_object(
                "s/00000000/000000.jsonl",
                format!("\n{nul}\n").into_bytes(),
                "application/x-ndjson",
                None,
            )
            .await
            .unwrap();
        let err = Index::restore(&store, "s.json", &into).await.err().unwrap();
        assert!(
            matches!(err, IndexError::CorruptSnapshot { line: 2, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failed_snapshot_write_names_the_key() {
        let store = MemoryStore::new("calls");
        store.inject(crate::store::memory::Fault {
            operation: crate::store::Operation::PutObject,
            key: None,
            category: crate::store::ErrorCategory::ServerError,
            times: 1,
        });
        let index = Index::in_memory().unwrap();
        let err = index.snapshot(&store, "s.json").await.err().unwrap();
        assert!(matches!(err, IndexError::Snapshot { ref key, .. } if key == "s.json"));
    }

    #[test]
    fn snapshot_and_restore_futures_are_send() {
        fn send<T: Send>(_: T) {}
        let store = MemoryStore::new("calls");
        let index = Index::in_memory().unwrap();
        send(index.snapshot(&store, "s"));
        send(Index::restore(&store, "s", &index));
    }

    #[test]
    fn a_file_index_survives_reopening_and_a_foreign_layout_is_emptied() {
        let path = std::env::temp_dir().join(format!(
            "gallring-index-test-{}-{}.redb",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        {
            let index = Index::open(&path).unwrap();
            index
                .put_many(&[with(entry("a", None), |e| e.subject = Some("s".into()))])
                .unwrap();
        }
        {
            let index = Index::open(&path).unwrap();
            assert_eq!(index.len().unwrap(), 1);
            assert_eq!(
                select(&index, |q| {
                    q.subjects.insert("s".into());
                }),
                vec![id("a", None)]
            );
        }
        {
            // Another layout version on disk: the index starts cold instead of misreading.
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(LAYOUT_KEY, LAYOUT + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        {
            let index = Index::open(&path).unwrap();
            assert_eq!(index.len().unwrap(), 0);
            assert!(index.secondary_pairs().unwrap().is_empty());
        }
        std::fs::remove_file(&path).unwrap();
    }

    // ---- property: select equals a brute-force filter over a model ----

    #[derive(Debug, Clone)]
    enum Op {
        Put(Vec<Entry>),
        Remove(Vec<(String, Option<String>)>),
    }

    fn small_key() -> impl Strategy<Value = String> {
        // Few distinct keys, so puts replace and removes hit; multibyte and '/' vs '-'.
        prop::sample::select(vec!["a", "a/", "a-", "a/b", "ab", "é", "é/x", "😀", "b"])
            .prop_map(str::to_string)
    }

    fn small_version() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop::sample::select(vec!["1", "10", "2"]).prop_map(str::to_string))
    }

    fn small_label(values: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop::sample::select(values).prop_map(str::to_string))
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            small_key(),
            small_version(),
            small_label(&["r1", "r2", "r3"]),
            small_label(&["s1", "s2"]),
            prop::collection::btree_map(
                prop::sample::select(vec!["t1", "t2"]).prop_map(str::to_string),
                prop::sample::select(vec!["x", "y"]).prop_map(str::to_string),
                0..3,
            ),
            0i64..100,
        )
            .prop_map(|(key, version, rid, subject, tags, secs)| Entry {
                key,
                version_id: version,
                etag: None,
                last_modified: at(secs),
                size: secs as u64,
                tags,
                metadata: BTreeMap::new(),
                recording_id: rid,
                subject,
                decision: "keep".to_string(),
                verified_at: at(secs),
                written_before: None,
            })
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => prop::collection::vec(arb_entry(), 1..5).prop_map(Op::Put),
            1 => prop::collection::vec((small_key(), small_version()), 1..4).prop_map(Op::Remove),
        ]
    }

    fn arb_selection() -> impl Strategy<Value = Selection> {
        (
            prop::collection::btree_set(small_key(), 0..3),
            prop::option::of(
                prop::sample::select(vec!["", "a", "a/", "é", "😀", "c"]).prop_map(str::to_string),
            ),
            prop::collection::btree_set(
                prop::sample::select(vec!["r1", "r2", "r3", "r4"]).prop_map(str::to_string),
                0..3,
            ),
            prop::collection::btree_set(
                prop::sample::select(vec!["s1", "s2", "s3"]).prop_map(str::to_string),
                0..2,
            ),
            prop::collection::btree_map(
                prop::sample::select(vec!["t1", "t2"]).prop_map(str::to_string),
                small_label(&["x", "y"]),
                0..3,
            ),
        )
            .prop_map(|(keys, prefix, recording_ids, subjects, tags)| Selection {
                keys,
                prefix,
                recording_ids,
                subjects,
                tags,
            })
    }

    /// The engine's rule (`plan::selects_directly`), written out plainly.
    fn brute_force(q: &Selection, e: &Entry) -> bool {
        q.keys.contains(&e.key)
            || q.prefix.as_deref().is_some_and(|p| e.key.starts_with(p))
            || e.recording_id
                .as_ref()
                .is_some_and(|r| q.recording_ids.contains(r))
            || e.subject.as_ref().is_some_and(|s| q.subjects.contains(s))
            || (!q.tags.is_empty()
                && q.tags.iter().all(|(k, v)| match (e.tags.get(k), v) {
                    (Some(_), None) => true,
                    (Some(actual), Some(want)) => actual == want,
                    (None, _) => false,
                }))
    }

    proptest! {
        #[test]
        fn select_equals_a_brute_force_filter_over_a_model(
            ops in prop::collection::vec(arb_op(), 1..25),
            queries in prop::collection::vec(arb_selection(), 1..6),
        ) {
            // Creating a database costs ~0.3 s in a debug build: one for all cases, emptied
            // through the API first (which also checks that emptying leaves nothing behind).
            static SHARED: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
            let index = SHARED.get_or_init(|| Index::in_memory().unwrap());
            index.remove_many(&ids(&index.range_after(None, usize::MAX).unwrap())).unwrap();
            prop_assert_eq!(index.len().unwrap(), 0);
            prop_assert!(index.secondary_pairs().unwrap().is_empty());
            // (key, version) in Rust's String order is byte order, None first: S3's order.
            let mut model: BTreeMap<(String, Option<String>), Entry> = BTreeMap::new();
            for op in &ops {
                match op {
                    Op::Put(entries) => {
                        index.put_many(entries).unwrap();
                        for e in entries {
                            model.insert((e.key.clone(), e.version_id.clone()), e.clone());
                        }
                    }
                    Op::Remove(ids) => {
                        index.remove_many(ids).unwrap();
                        for id in ids {
                            model.remove(id);
                        }
                    }
                }
            }
            prop_assert_eq!(index.len().unwrap(), model.len() as u64);
            let all: Vec<Entry> = model.values().cloned().collect();
            prop_assert_eq!(&index.range_after(None, usize::MAX).unwrap(), &all);
            for q in &queries {
                let want: Vec<Entry> = all.iter().filter(|e| brute_force(q, e)).cloned().collect();
                prop_assert_eq!(index.select(q).unwrap(), want);
            }
            // The secondary tables hold exactly the model's pairs: no stale pointer is left.
            let mut pairs = BTreeSet::new();
            for e in &all {
                let id = encode_id(&e.key, e.version_id.as_deref()).unwrap();
                if let Some(r) = &e.recording_id {
                    pairs.insert(("recording", r.clone(), id.clone()));
                }
                if let Some(s) = &e.subject {
                    pairs.insert(("subject", s.clone(), id));
                }
            }
            prop_assert_eq!(index.secondary_pairs().unwrap(), pairs);
        }
    }

    // ---- the binary entry value (layout 2) ----

    fn full_entry() -> Entry {
        with(entry("samtaler/2026/t-1/audio.wav", Some("v2")), |e| {
            e.last_modified = Utc.timestamp_opt(1_800_000_000, 123_000_000).unwrap();
            e.verified_at = Utc.timestamp_opt(1_800_000_001, 987_654_321).unwrap();
            e.written_before = Some(Utc.timestamp_opt(-1, 5).unwrap());
            e.size = u64::MAX;
            e.tags
                .insert("gallring.io/retention".into(), "expire-365d".into());
            e.tags.insert("ünïcode".into(), String::new());
            e.metadata
                .insert("recorded-at".into(), "2026-01-02T03:04:05Z".into());
            e.recording_id = Some("r-1".into());
            e.subject = Some("s-1".into());
            e.decision = "unclassified".into();
        })
    }

    fn round_trip(e: &Entry) -> Result<Entry, &'static str> {
        let id = encode_id(&e.key, e.version_id.as_deref()).unwrap();
        value::decode(&id, &value::encode(e))
    }

    #[test]
    fn the_binary_value_round_trips_every_field_exactly() {
        let e = full_entry();
        assert_eq!(round_trip(&e), Ok(e.clone()));
        let bare = with(entry("k", None), |e| e.etag = None);
        assert_eq!(round_trip(&bare), Ok(bare.clone()));
        // Smaller than the JSON it replaces.
        assert!(value::encode(&e).len() < serde_json::to_vec(&e).unwrap().len());
    }

    #[test]
    fn a_truncated_extended_or_foreign_value_is_a_typed_error() {
        let e = full_entry();
        let id = encode_id(&e.key, e.version_id.as_deref()).unwrap();
        let bytes = value::encode(&e);
        for n in 0..bytes.len() {
            assert!(
                value::decode(&id, &bytes[..n]).is_err(),
                "prefix of {n} bytes"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(value::decode(&id, &longer), Err("trailing bytes"));
        // What layout 1 stored: JSON.
        let json = serde_json::to_vec(&e).unwrap();
        assert_eq!(
            value::decode(&id, &json),
            Err("an entry of an earlier layout (JSON)")
        );
        // A string that is not UTF-8 (the etag's first byte).
        let mut bad = bytes.clone();
        let at = 3; // form, option marker, length
        bad[at] = 0xff;
        assert_eq!(value::decode(&id, &bad), Err("string is not UTF-8"));
        // Through the index: named, typed.
        let index = Index::in_memory().unwrap();
        {
            let txn = index.db.begin_write().unwrap();
            let mut tables = WriteTables::open(&txn).unwrap();
            tables
                .entries
                .insert(id.as_slice(), &bytes[..bytes.len() - 1])
                .unwrap();
            drop(tables);
            txn.commit().unwrap();
        }
        let err = index.get(&e.key, e.version_id.as_deref()).err().unwrap();
        assert!(
            matches!(err, IndexError::CorruptEntry { ref key, .. } if key == &e.key),
            "{err}"
        );
    }

    /// An index file as layout 1 left it (JSON entries, layout 1 in `meta`) is emptied on
    /// open and then works: a cold pass, never a misread entry. Its snapshot form did not
    /// change, so a snapshot written before is still restored.
    #[tokio::test]
    async fn a_layout_1_index_is_emptied_and_its_snapshot_still_restores() {
        let path = std::env::temp_dir().join(format!(
            "gallring-index-layout1-{}-{}.redb",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        let old = with(entry("a", None), |e| e.subject = Some("s".into()));
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert(LAYOUT_KEY, 1).unwrap();
            let id = encode_id("a", None).unwrap();
            let json = serde_json::to_vec(&old).unwrap();
            txn.open_table(ENTRIES)
                .unwrap()
                .insert(id.as_slice(), json.as_slice())
                .unwrap();
            txn.open_multimap_table(BY_SUBJECT)
                .unwrap()
                .insert("s", id.as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let index = Index::open(&path).unwrap();
        assert_eq!(index.len().unwrap(), 0);
        assert!(index.secondary_pairs().unwrap().is_empty());
        assert_eq!(index.get("a", None).unwrap(), None);

        // A snapshot in the form layout 1 wrote (its manifest says layout 1).
        let store = MemoryStore::new("calls");
        let line = serde_json::to_vec(&old).unwrap();
        store
            .put_object(
                "s/00000000/000000.jsonl",
                line,
                "application/x-ndjson",
                None,
            )
            .await
            .unwrap();
        let manifest = serde_json::json!({
            "layout": 1, "generation": 0, "entries": 1,
            "parts": ["s/00000000/000000.jsonl"],
        });
        store
            .put_object(
                "s.json",
                serde_json::to_vec(&manifest).unwrap(),
                "application/json",
                None,
            )
            .await
            .unwrap();
        assert_eq!(Index::restore(&store, "s.json", &index).await.unwrap(), 1);
        assert_eq!(index.get("a", None).unwrap(), Some(old));
        drop(index);
        std::fs::remove_file(&path).unwrap();
    }

    fn any_text() -> impl Strategy<Value = String> {
        ".{0,12}"
    }

    fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
        (
            -8_000_000_000_000i64..8_000_000_000_000,
            0u32..1_000_000_000,
        )
            .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap_or_default())
    }

    fn any_entry() -> impl Strategy<Value = Entry> {
        let texts = || prop::collection::btree_map(any_text(), any_text(), 0..4);
        (
            ("[^\\x00]{0,12}", prop::option::of(".{1,8}")),
            prop::option::of(any_text()),
            (any_time(), any_time(), prop::option::of(any_time())),
            any::<u64>(),
            (texts(), texts()),
            (prop::option::of(any_text()), prop::option::of(any_text())),
            any_text(),
        )
            .prop_map(
                |(
                    (key, version_id),
                    etag,
                    (last_modified, verified_at, written_before),
                    size,
                    (tags, metadata),
                    (recording_id, subject),
                    decision,
                )| Entry {
                    key,
                    version_id,
                    etag,
                    last_modified,
                    size,
                    tags,
                    metadata,
                    recording_id,
                    subject,
                    decision,
                    verified_at,
                    written_before,
                },
            )
    }

    proptest! {
        #[test]
        fn any_entry_round_trips_through_the_binary_value(e in any_entry()) {
            prop_assert_eq!(round_trip(&e), Ok(e.clone()));
        }

        #[test]
        fn any_bytes_decode_to_an_entry_or_an_error_never_a_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = value::decode(b"k\0", &bytes);
            let mut formed = vec![2u8];
            formed.extend_from_slice(&bytes);
            let _ = value::decode(b"k\0v", &formed);
        }
    }
}
