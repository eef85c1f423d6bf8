//! The stored form of an [`Entry`] in the `entries` table (layout 2): compact binary, because a
//! steady pass decodes one per listed object, and JSON with RFC 3339 times cost more CPU than
//! the rest of the decision (issue 9).
//!
//! Hand-written rather than serde with postcard or bincode: `Entry`'s serde attributes
//! (`skip_serializing_if`, for the snapshot's JSON) make a format without field names
//! unreadable, this form is pinned by its own tests rather than by the struct's field order,
//! and it adds no dependency. The key and version id are not repeated: they are the table key.
//!
//! In order: the form byte [`FORM`]; etag (optional string); last modified (time); size (u64);
//! tags and metadata (count, then key and value strings); recording id, subject (optional
//! strings); decision (string); verified at (time); written before (optional time). A string
//! is its byte length (LEB128) then UTF-8; an optional one byte 0 (none) or 1 then the value; a
//! time is whole seconds since the epoch (i64) and nanoseconds (u32), exact, so that a
//! `LastModified` compares equal after a round trip; integers are little-endian.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Entry, SEP};

/// The first byte of every value of this form (a JSON value of layout 1 starts with `{`).
const FORM: u8 = 2;

/// The value bytes of an entry (its key and version id are the table key).
pub(super) fn encode(e: &Entry) -> Vec<u8> {
    let strings: usize = e.etag.as_deref().map_or(0, str::len)
        + e.tags
            .iter()
            .chain(&e.metadata)
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>()
        + e.recording_id.as_deref().map_or(0, str::len)
        + e.subject.as_deref().map_or(0, str::len)
        + e.decision.len();
    let mut out = Vec::with_capacity(64 + strings);
    out.push(FORM);
    opt_str(&mut out, e.etag.as_deref());
    time(&mut out, e.last_modified);
    out.extend_from_slice(&e.size.to_le_bytes());
    map(&mut out, &e.tags);
    map(&mut out, &e.metadata);
    opt_str(&mut out, e.recording_id.as_deref());
    opt_str(&mut out, e.subject.as_deref());
    str(&mut out, &e.decision);
    time(&mut out, e.verified_at);
    match e.written_before {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            time(&mut out, t);
        }
    }
    out
}

/// The entry stored under `id` (key, NUL, version id) as `value`; the message says what is
/// wrong with a value that is not one.
pub(super) fn decode(id: &[u8], value: &[u8]) -> Result<Entry, &'static str> {
    let sep = id
        .iter()
        .position(|b| *b == SEP)
        .ok_or("table key without separator")?;
    let (key, version) = (&id[..sep], &id[sep + 1..]);
    let key = std::str::from_utf8(key)
        .map_err(|_| "table key is not UTF-8")?
        .to_string();
    let version_id = match version {
        [] => None,
        v => Some(
            std::str::from_utf8(v)
                .map_err(|_| "version id is not UTF-8")?
                .to_string(),
        ),
    };
    let mut r = Reader(value);
    match r.byte()? {
        FORM => {}
        b'{' => return Err("an entry of an earlier layout (JSON)"),
        _ => return Err("unknown entry form"),
    }
    let entry = Entry {
        key,
        version_id,
        etag: r.opt_str()?,
        last_modified: r.time()?,
        size: r.u64()?,
        tags: r.map()?,
        metadata: r.map()?,
        recording_id: r.opt_str()?,
        subject: r.opt_str()?,
        decision: r.str()?.to_string(),
        verified_at: r.time()?,
        written_before: match r.byte()? {
            0 => None,
            1 => Some(r.time()?),
            _ => return Err("bad option marker"),
        },
    };
    if !r.0.is_empty() {
        return Err("trailing bytes");
    }
    Ok(entry)
}

fn len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn str(out: &mut Vec<u8>, s: &str) {
    len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            str(out, s);
        }
    }
}

fn map(out: &mut Vec<u8>, m: &BTreeMap<String, String>) {
    len(out, m.len());
    for (k, v) in m {
        str(out, k);
        str(out, v);
    }
}

fn time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    out.extend_from_slice(&t.timestamp().to_le_bytes());
    out.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
}

/// The bytes not read yet.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        self.take(N)?.try_into().map_err(|_| "truncated")
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, &'static str> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                // A length longer than what is left is caught by `take`.
                return usize::try_from(n).map_err(|_| "length too large");
            }
        }
        Err("length too long")
    }

    fn str(&mut self) -> Result<&'a str, &'static str> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| "string is not UTF-8")
    }

    fn opt_str(&mut self) -> Result<Option<String>, &'static str> {
        match self.byte()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?.to_string())),
            _ => Err("bad option marker"),
        }
    }

    fn map(&mut self) -> Result<BTreeMap<String, String>, &'static str> {
        let n = self.len()?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = self.str()?.to_string();
            let v = self.str()?.to_string();
            m.insert(k, v);
        }
        Ok(m)
    }

    fn time(&mut self) -> Result<DateTime<Utc>, &'static str> {
        let secs = i64::from_le_bytes(self.array()?);
        let nanos = u32::from_le_bytes(self.array()?);
        DateTime::from_timestamp(secs, nanos).ok_or("time out of range")
    }
}
