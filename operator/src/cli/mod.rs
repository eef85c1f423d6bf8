//! Command implementations shared by the binary and tests.

pub mod explain;
pub mod journal;
pub mod plan;
pub mod run;
