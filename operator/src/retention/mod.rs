//! The pure retention engine: classification, deadlines, holds, plans and lifecycle
//! compilation.
//!
//! Nothing in this module performs I/O, reads the clock or knows about Kubernetes or S3 SDK
//! types: `now` is always a parameter. The hosts (the `plan` and `run` commands and the
//! Kubernetes operator) read the clock and do the I/O.

pub mod answer;
pub mod classify;
pub mod duration;
pub mod lifecycle;
pub mod model;
pub mod plan;
pub mod request;

pub use answer::{AccessEntry, RequestException, RequestPhase, RequestTally};
pub use classify::{RecordedAt, RecordedAtIssue};
pub use duration::{DurationError, IsoDuration};
pub use model::*;
pub use plan::{
    BucketPlan, Decision, Deleter, HoldLinker, LinkScope, LinkedHolds, ObjectPlan, Planner,
    Summary, UseLimit, plan_bucket, plan_bucket_with,
};
pub use request::{RequestType, SubjectRequest};

#[cfg(test)]
mod tests;
