//! The Kubernetes host: controllers for RecordingBucket, LegalHold and RetentionPolicy, run by
//! kube-runtime behind a Lease-based leader election.
//!
//! A bucket reconcile is a pipeline, one module per step:
//! [`dereference`] (policy, holds, Secret: needs the client) → [`validate`] (pure) → the
//! reconcile pass (the same one the standalone host runs, fenced by leadership) → [`report`]
//! (status as data from [`status`], Events, hold statuses). Each step has its own error type;
//! its `reason()` / `category()` is the closed set used in conditions, Events and metrics.

pub mod bucket;
mod context;
pub mod dereference;
pub mod hold;
pub mod key;
pub mod leader;
mod operator;
pub mod policy;
mod report;
pub mod request;
pub mod status;
pub mod validate;

pub use bucket::{BUCKET_FINALIZER, reconcile_bucket};
pub use context::{Context, Error, FIELD_MANAGER, S3Factory, StoreFactory, error_policy};
pub use dereference::{
    SECRET_ACCESS_KEY_ID, SECRET_SECRET_ACCESS_KEY, SECRET_SESSION_TOKEN, SecretAccess,
};
pub use hold::{FINALIZER, reconcile_hold};
pub use key::ResourceKey;
pub use operator::{OperatorOptions, run};
pub use policy::{buckets_for_policy, reconcile_policy};
pub use request::reconcile_request;

#[cfg(test)]
mod tests;
