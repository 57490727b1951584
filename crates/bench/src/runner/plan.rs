//! Planning: the samples of each selected task, generated to the target lengths (seeded
//! generators) or loaded from the data root (datasets), with token counts from the backend.

use std::path::PathBuf;
use std::sync::Mutex;

use longctx_backend::{BackendError, LlmBackend, Message};

use super::RunError;
use crate::data::default_data_root;
use crate::sample::Sample;
use crate::task::{GenConfig, LoadOptions, Source, Task, TokenCounter};

/// What samples to build.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    /// Target lengths of synthetic tasks, in tokens.
    pub lengths: Vec<usize>,
    /// Needle depths in percent; empty = each task's default.
    pub depths: Vec<u32>,
    /// Samples per (length, depth) cell of synthetic tasks.
    pub samples: usize,
    pub seed: u64,
    /// Most samples per dataset task (first N); `None` = all.
    pub limit: Option<usize>,
    /// The data folder; `None` = the default (`LONGCTX_DATA`, else `shared/data`).
    pub data_root: Option<PathBuf>,
    /// Skip malformed dataset lines (reported) instead of failing.
    pub skip_bad_lines: bool,
    /// Tokens the chat template adds around a chat sample's text ([`chat_template_tokens`]).
    /// Synthetic chat tasks count them, so that the whole request plus the answer budget
    /// fits the target length, as RULER's lengths do (its sizing includes the model template).
    pub template_tokens: usize,
    /// Tokens a raw completion request adds before the text (BOS, when the model's vocabulary
    /// adds one); synthetic raw tasks (passkey) count them.
    pub raw_tokens: usize,
    /// Answer budget override for the generators that size prompts by it (passkey); the
    /// caller sets every sample's budget afterwards.
    pub max_new_tokens: Option<usize>,
}

/// Tokens `backend` adds around the text of a one-turn chat request (template and BOS); a
/// margin of 16 when the backend cannot render its template.
pub fn chat_template_tokens(backend: &dyn LlmBackend) -> Result<usize, BackendError> {
    chat_wrapper_tokens(backend, None)
}

/// Tokens of a one-turn chat request with an empty user message and the assistant turn
/// started with `prefix`; 16 + the prefix when the backend cannot render its template.
pub(super) fn chat_wrapper_tokens(
    backend: &dyn LlmBackend,
    prefix: Option<&str>,
) -> Result<usize, BackendError> {
    match backend.render_chat(&[Message::user("")], prefix) {
        Ok(text) => Ok(backend.count_tokens(&text)? + 1),
        Err(BackendError::Unsupported { .. }) => {
            Ok(16 + prefix.map_or(Ok(0), |p| backend.count_tokens(p))?)
        }
        Err(e) => Err(e),
    }
}

/// Samples of one task, plus what a lenient dataset load skipped.
#[derive(Debug)]
pub struct Planned {
    pub samples: Vec<Sample>,
    /// `path, line N: reason` of dataset lines skipped under `skip_bad_lines`.
    pub skipped: Vec<String>,
}

/// Builds the samples of `task`; synthetic lengths are measured with `counter` plus the
/// request's own tokens (the chat template, or BOS for raw prompts).
pub fn plan_task(
    task: &Task,
    cfg: &PlanConfig,
    counter: &dyn TokenCounter,
) -> Result<Planned, RunError> {
    match task.source {
        Source::Generate { chat, .. } => {
            let overhead = if chat {
                cfg.template_tokens
            } else {
                cfg.raw_tokens
            };
            let request_tokens = |text: &str| counter.count_tokens(text) + overhead;
            let mut gen = GenConfig::new(1, &cfg.depths, cfg.samples.max(1));
            gen.seed = cfg.seed;
            gen.max_new_tokens = cfg.max_new_tokens;
            if let Some(root) = &cfg.data_root {
                gen.data_root = root.clone();
            }
            let mut samples = Vec::new();
            for &length in &cfg.lengths {
                gen.length = length;
                let more =
                    task.generate(&gen, &request_tokens)
                        .map_err(|error| RunError::Generate {
                            task: task.name.to_string(),
                            error,
                        })?;
                samples.extend(more);
            }
            Ok(Planned {
                samples,
                skipped: Vec::new(),
            })
        }
        Source::Load(_) => load_task(task, cfg),
    }
}

/// Loads a dataset task (the first `cfg.limit` samples).
fn load_task(task: &Task, cfg: &PlanConfig) -> Result<Planned, RunError> {
    let ds_err = |error| RunError::Dataset {
        task: task.name.to_string(),
        error,
    };
    let root = match &cfg.data_root {
        Some(r) => r.clone(),
        None => default_data_root().map_err(ds_err)?,
    };
    let opts = LoadOptions {
        skip_bad_lines: cfg.skip_bad_lines,
    };
    let loaded = task.load(&root, &opts).map_err(ds_err)?;
    let mut samples = loaded.samples;
    if let Some(n) = cfg.limit {
        samples.truncate(n);
    }
    Ok(Planned {
        samples,
        skipped: loaded
            .skipped
            .iter()
            .map(|s| format!("{}, line {}: {}", s.path.display(), s.line, s.reason))
            .collect(),
    })
}

/// A [`TokenCounter`] over a backend: counting errors are remembered (the first one) and
/// counted as ⌈bytes/4⌉ meanwhile, so generation can finish and the caller can report.
pub struct BackendCounter<'a> {
    backend: &'a dyn LlmBackend,
    error: Mutex<Option<BackendError>>,
}

impl<'a> BackendCounter<'a> {
    pub fn new(backend: &'a dyn LlmBackend) -> Self {
        BackendCounter {
            backend,
            error: Mutex::new(None),
        }
    }
    /// The first counting error, if any.
    pub fn take_error(&self) -> Option<BackendError> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }
}

impl TokenCounter for BackendCounter<'_> {
    fn count_tokens(&self, text: &str) -> usize {
        match self.backend.count_tokens(text) {
            Ok(n) => n,
            Err(e) => {
                if let Ok(mut slot) = self.error.lock() {
                    slot.get_or_insert(e);
                }
                text.len().div_ceil(4)
            }
        }
    }
}
