//! The fault suite (issue 8, "Done means"): the real `gallring run` binary against the real
//! Ceph RGW (`scripts/s3-up.sh`), through a fault-injecting proxy of the suite's own, with an
//! independent checker after every run.
//!
//! - `faults/proxy.rs`: an HTTP/1.1 proxy on 127.0.0.1 (the RecordingBucket's endpoint) that
//!   answers 500/503 without forwarding, resets connections, delays requests, and applies a
//!   request then resets the client instead of answering; faults are drawn per request from
//!   a seeded RNG. It can also hold one chosen request until the test lets it go, and move
//!   the `Date` of every answer (a store clock that is off).
//! - `faults/world.rs`: per scenario an Object Lock bucket (or a plain one) seeded straight into
//!   Ceph (recording times in metadata, up to 10 foreign tags, foreign legal holds, a foreign
//!   lifecycle rule), the manifests (policy, bucket, holds; a release is a hold taken out of
//!   them; optionally a withdrawable consent purpose), and runs of the binary, to the end or
//!   killed with SIGKILL, or started and finished apart so a test can act while one runs.
//! - `faults/model.rs` + `faults/checker.rs`: what must hold, computed from the seeded data and
//!   the hold timeline alone, and checked by reading the store directly with the AWS SDK.
//! - `faults/chaos.rs`: random faults and random SIGKILLs over random buckets.
//! - `faults/cases.rs`: the cases of issue 8, one named test each.
//! - `faults/trust.rs`: the cases of README "Trust and time" (re-uploads, holds added and
//!   clocks off mid-pass, withdrawals, unreadable tags, lost or refused delete batches).
//! - `faults/requests.rs`: data-subject requests (SubjectRequest manifests: an erasure, a
//!   withdrawal, a restriction) beside a LegalHold and a legal-obligation purpose, under
//!   random faults and under SIGKILL, and an erased recording restored after the request is
//!   gone (erased again from the journal); the checker also holds the journal to the store.
//! - `faults/explain.rs`: `gallring explain` on a kept, a held and a deleted recording.
//! - `faults/selftest.rs`: the proxy forwards byte for byte; the checker reports each kind of
//!   damage it guards against.
//!
//! ```sh
//! eval "$(scripts/s3-up.sh)"
//! cargo test -p gallring --test faults -- --nocapture
//! GALLRING_FAULT_SEED=123456 cargo test -p gallring --test faults -- --nocapture   # replay
//! ```
//!
//! Each scenario prints its seed first and a summary at the end, as lines starting with
//! `FAULTS:`. Logs of every run are kept under `target/tmp/faults/<scenario>-<time>/`.
//! Without GALLRING_S3_ENDPOINT the suite fails: it never skips silently.

#[path = "faults/checker.rs"]
mod checker;
#[path = "faults/model.rs"]
mod model;
#[path = "faults/proxy.rs"]
mod proxy;
#[path = "faults/rng.rs"]
mod rng;
#[path = "faults/world.rs"]
mod world;

#[path = "faults/cases.rs"]
mod cases;
#[path = "faults/chaos.rs"]
mod chaos;
#[path = "faults/evidence.rs"]
mod evidence;
#[path = "faults/explain.rs"]
mod explain;
#[path = "faults/report.rs"]
mod report;
#[path = "faults/requests.rs"]
mod requests;
#[path = "faults/selftest.rs"]
mod selftest;
#[path = "faults/trust.rs"]
mod trust;
