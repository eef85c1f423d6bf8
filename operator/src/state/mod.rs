//! gallring's memory, kept in the object store next to the recordings (DESIGN.md, "Memory").
//!
//! - [`journal`]: an append-only, hash-chained journal of facts (JSON Lines segments plus a
//!   checkpoint, whose first-seen times are in key-range shards: [`seen`]). Anything that lowers protection is justified by a fact that is durable here
//!   first; a new cluster or the standalone host pointed at the same bucket inherits it.
//!
//! The pass turns journal facts into plain engine inputs (released holds as floors, which
//! legal holds gallring set); `retention/` never sees the journal.

pub mod index;
pub mod journal;
pub mod seal;
pub mod seen;

pub use journal::{Fact, Journal, JournalError, JournalState};
