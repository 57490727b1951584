//! A method's intermediate steps, kept for `--trace FILE`: the chunks it read, what each call
//! returned (map outputs with confidences, the memory after each step, retrieved units with
//! scores), so a user can see why an answer came out as it did.

use serde::Serialize;
use serde_json::Value;

/// Every step of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trace {
    pub method: String,
    /// The options in force, `key=value,...`.
    pub options: String,
    pub steps: Vec<TraceStep>,
}

/// One step: which phase, which item, what went in (briefly) and what came out.
#[derive(Clone, Debug, Serialize)]
pub struct TraceStep {
    pub phase: String,
    pub index: usize,
    /// Tokens of the input this step read (a chunk, a group of map outputs), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<usize>,
    /// The step's output text (a model answer, a memory, a retrieved unit).
    pub output: String,
    /// Method-specific details (confidence, score, dropped, ...).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

impl Trace {
    pub fn push(
        &mut self,
        phase: &str,
        index: usize,
        input_tokens: Option<usize>,
        output: &str,
        detail: Value,
    ) {
        self.steps.push(TraceStep {
            phase: phase.to_string(),
            index,
            input_tokens,
            output: output.to_string(),
            detail,
        });
    }

    /// The steps of one phase.
    pub fn phase<'a>(&'a self, phase: &'a str) -> impl Iterator<Item = &'a TraceStep> + 'a {
        self.steps.iter().filter(move |s| s.phase == phase)
    }
}
