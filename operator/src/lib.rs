//! gallring: retention enforcement for call recordings in object storage.
//!
//! - `retention`: the pure decision core (no I/O, no clock, no Kubernetes or S3 types).
//! - `api`: the custom resources and their validation into the engine's model.
//! - `input`: reading manifests and object listings from files (the standalone host's input).

pub mod api;
pub mod cli;
pub mod controller;
pub mod input;
pub mod metrics;
pub mod reconcile;
pub mod retention;
pub mod state;
pub mod store;
