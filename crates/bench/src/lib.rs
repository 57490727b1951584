//! longctx-bench: long-context benchmarks for longctx.
//!
//! - [`tasks`]: sample generators, one module per benchmark (today: [`tasks::passkey`]).
//! - [`metrics`]: scoring functions, each returning a score in `0.0..=1.0`.
//! - [`journal`]: append-only JSONL result files that make runs resumable.
//! - [`rng`]: the seeded generator whose stream is part of every benchmark's definition.
//! - [`runner`]: runs tasks on an `LlmBackend` concurrently and resumably; [`store`] is its
//!   SQLite results database; [`report`] and [`export`] read it back (tables, HTML,
//!   upstream prediction files).
//!
//! [`TASKS`] lists the benchmarks with their metric; the CLI looks tasks up by name there.
//! Generators and metrics run no model: callers pass a token counter for length-targeted
//! generation and score the text their model produced; [`runner`] drives a model through the
//! `longctx-backend` `LlmBackend` trait.

pub mod datasets;
pub mod export;
pub mod journal;
pub mod metrics;
pub mod report;
pub mod rng;
pub mod runner;
pub mod sample;
pub mod store;
pub mod tasks;

pub use metrics::Metric;
pub use sample::{Sample, Truncation};

use std::path::PathBuf;

/// Errors from generating samples or reading and writing results.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("unknown task '{0}' (known: {known})", known = TASKS.iter().map(|t| t.name).collect::<Vec<_>>().join(", "))]
    UnknownTask(String),
    #[error("the target length must be at least 1 token")]
    ZeroLength,
    #[error("depth {0}% is outside 0..=100")]
    DepthOutOfRange(u32),
    #[error("a target length of {length} tokens is too short: the shortest prompt (one filler) is {minimum} tokens")]
    LengthTooShort { length: usize, minimum: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: not a valid result record: {reason}")]
    MalformedLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// A registry entry.
#[derive(Clone, Copy, Debug)]
pub struct TaskInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub metric: Metric,
}

/// Every benchmark task, in the order the CLI lists them.
pub const TASKS: &[TaskInfo] = &[tasks::passkey::INFO];

/// Looks a task up by name.
pub fn find_task(name: &str) -> Result<&'static TaskInfo, BenchError> {
    TASKS
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| BenchError::UnknownTask(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_finds_passkey_and_names_unknown_tasks() {
        let task = find_task("passkey").unwrap();
        assert_eq!(task.metric, Metric::FirstIntegerEq);
        assert_eq!(task.metric.name(), "first_integer_eq");
        assert_eq!(task.metric.score("The pass key is 12.", "12").unwrap(), 1.0);
        let err = find_task("ruler").unwrap_err().to_string();
        assert!(
            err.contains("unknown task 'ruler'") && err.contains("passkey"),
            "{err}"
        );
    }
}
