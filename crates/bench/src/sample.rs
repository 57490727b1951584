//! The benchmark data model shared by generators, dataset loaders, the runner and metrics:
//! one [`Sample`] is one prompt with its reference answers and how to score it.

use serde::{Deserialize, Serialize};

use crate::metrics::Metric;

/// How a prompt longer than the model's window is shortened, as the benchmark's upstream
/// code does it (methods reference Part D2). The runner records the choice with each result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Truncation {
    /// Never shorten: a prompt that does not fit is an error for that sample (synthetic tasks
    /// are generated to fit their target length).
    None,
    /// LongBench: keep the first and last `max/2` tokens of the prompt, decoded separately.
    MiddleTokens,
    /// L-Eval: drop words from the end of the document until it fits.
    HeadWords,
}

/// One benchmark prompt with everything needed to run and score it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Stable within its task (dataset `_id`, or the generator's case key).
    pub id: String,
    /// Registry name of the task, e.g. `ruler/niah_single_1` or `longbench/hotpotqa`.
    pub task: String,
    /// The text the model reads: the user turn when `chat`, otherwise the raw completion
    /// prompt.
    pub prompt: String,
    /// Wrap `prompt` in the model's chat template (false for LongBench's few-shot tasks and
    /// other raw-completion prompts).
    pub chat: bool,
    /// Text the answer starts with, placed after the assistant header (RULER's
    /// `answer_prefix`, passkey's cue); empty when none.
    pub answer_prefix: String,
    /// The question or instruction alone, for policies that use it (CItruS) and for
    /// pipelines; empty when the task has none.
    pub question: String,
    pub truncation: Truncation,
    /// Reference answers; a metric takes the best score over them unless it says otherwise.
    pub answers: Vec<String>,
    /// Label set of classification tasks (LongBench `all_classes`); empty otherwise.
    pub all_classes: Vec<String>,
    pub metric: Metric,
    pub max_new_tokens: usize,
    /// Task-specific facts: target length, depth, needle count, dataset length, language…
    pub meta: serde_json::Value,
}
