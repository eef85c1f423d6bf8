//! Command implementations shared by the binary and tests.

pub mod plan;
