//! longctx-bench: long-context benchmarks for longctx.
//!
//! - [`registry`]: the one list of tasks; each [`Task`] names its [`Metric`] and its
//!   [`Source`] (a seeded generator in [`tasks`] or a dataset loader in [`datasets`]).
//! - [`metrics`]: scoring functions, each returning a score in `0.0..=1.0`.
//! - [`rng`]: the seeded generator whose stream is part of every benchmark's definition.
//! - [`runner`]: selects tasks, builds their samples and runs them on an `LlmBackend`
//!   concurrently and resumably; [`store`] is its SQLite results database; [`report`] and
//!   [`export`] read it back (tables, HTML, upstream prediction files).
//!
//! Generators and metrics run no model: callers pass a token counter for length-targeted
//! generation and score the text their model produced; [`runner`] drives a model through the
//! `longctx-backend` `LlmBackend` trait.

pub mod data;
pub mod datasets;
pub mod error;
pub mod export;
pub mod json;
pub mod metrics;
pub mod registry;
pub mod report;
pub mod rng;
pub mod runner;
pub mod sample;
pub mod store;
pub mod task;
pub mod tasks;

pub use data::DatasetError;
pub use error::BenchError;
pub use sample::{Metric, Sample, Truncation};
pub use task::{Source, Task};
