//! The benchmark runner, by job: [`select`] resolves `--task` names against the registry,
//! [`plan`] builds each task's samples, [`fit`] fits an input to the budget, and [`run`] runs
//! the samples on an `LlmBackend` from a pool of worker threads, storing each result in the
//! `Store` as it finishes and skipping samples already stored.
//!
//! Prompt building: chat samples go through `LlmBackend::chat` as one user message with
//! `prefill = answer_prefix` (when non-empty) and `instruction = question`; raw samples through
//! `LlmBackend::complete_with_instruction` with `prompt + answer_prefix` and the question.
//! Inputs are fitted to `max_input_tokens − max_new_tokens` as each sample's `Truncation`
//! says. A sample that cannot run (context overflow, a prompt too long for a task that does
//! not truncate, a scoring failure) becomes an error row with score 0; an unreachable server
//! or a backend that cannot count tokens stops the run, keeping every stored row.

use longctx_backend::BackendError;

use crate::data::DatasetError;
use crate::error::BenchError;
use crate::store::StoreError;

pub mod fit;
pub mod plan;
pub mod run;
pub mod select;

pub use plan::{chat_template_tokens, plan_task, BackendCounter, PlanConfig, Planned};
pub use run::{prompt_hash, run_samples, Event, RunOutcome, RunSettings};
pub use select::select_tasks;

/// Errors that stop a run (per-sample failures are error rows instead).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("unknown task '{name}'; known tasks: {known}; families: {families}")]
    UnknownTask {
        name: String,
        known: String,
        families: String,
    },
    #[error("no task selected (use --task, e.g. --task ruler/niah_single_1; `longctx bench list` shows them)")]
    NoTasks,
    #[error("{task}: {error}")]
    Generate { task: String, error: BenchError },
    #[error("{task}: {error}")]
    Dataset { task: String, error: DatasetError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stopped at sample {sample}: {error}")]
    Backend { sample: String, error: BackendError },
    #[error("bad run settings: {0}")]
    Settings(String),
}

#[cfg(test)]
mod tests;
