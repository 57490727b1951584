//! The benchmark runner: selects tasks (synthetic generators, passkey and dataset loaders),
//! builds their samples, runs them on an [`LlmBackend`] from a pool of worker threads and
//! stores each result in the [`Store`] as it finishes, skipping samples already stored.
//!
//! Prompt building: chat samples go through [`LlmBackend::chat`] as one user message with
//! `prefill = answer_prefix` (when non-empty) and `instruction = question`; raw samples through
//! [`LlmBackend::complete`] with `prompt + answer_prefix`. Inputs are fitted to
//! `max_input_tokens − max_new_tokens` as each sample's [`Truncation`] says. A sample that
//! cannot run (context overflow, a prompt too long for a task that does not truncate, a
//! scoring failure) becomes an error row with score 0; an unreachable server or a backend that
//! cannot count tokens stops the run, keeping every stored row.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use longctx_backend::{
    truncate_middle_tokens, BackendError, ChatRequest, CompletionRequest, LlmBackend, Message,
    Sampling,
};
use sha2::{Digest, Sha256};

use crate::datasets::{self, DatasetError, DatasetInfo, LoadOptions};
use crate::store::{ResultRow, Store, StoreError};
use crate::tasks::passkey::{self, PasskeyCase, TokenCounter};
use crate::tasks::{GenConfig, SyntheticTask, SYNTHETIC};
use crate::{BenchError, Metric, Sample, Truncation};

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

/// A selectable task.
#[derive(Clone, Copy, Debug)]
pub enum TaskRef {
    /// The LM-Infinite passkey task (lengths × depths × samples).
    Passkey,
    /// A length-targeted generator.
    Synthetic(&'static SyntheticTask),
    /// A dataset loaded from the data root.
    Dataset(&'static DatasetInfo),
}

impl TaskRef {
    pub fn name(&self) -> &'static str {
        match self {
            TaskRef::Passkey => passkey::INFO.name,
            TaskRef::Synthetic(t) => t.name,
            TaskRef::Dataset(d) => d.name,
        }
    }
    pub fn summary(&self) -> &'static str {
        match self {
            TaskRef::Passkey => passkey::INFO.summary,
            TaskRef::Synthetic(t) => t.summary,
            TaskRef::Dataset(d) => d.summary,
        }
    }
    pub fn metric(&self) -> Metric {
        match self {
            TaskRef::Passkey => passkey::INFO.metric,
            TaskRef::Synthetic(t) => t.metric,
            TaskRef::Dataset(d) => d.metric,
        }
    }
    /// Whether samples are generated to target lengths (`--lengths`, `--depths`).
    pub fn is_synthetic(&self) -> bool {
        !matches!(self, TaskRef::Dataset(_))
    }
    /// The family: the part of the name before `/` (the name itself when none).
    pub fn family(&self) -> &'static str {
        let n = self.name();
        n.split_once('/').map_or(n, |(f, _)| f)
    }
}

/// Every task: passkey, the synthetic generators, then the datasets.
pub fn all_tasks() -> Vec<TaskRef> {
    let mut out = vec![TaskRef::Passkey];
    out.extend(SYNTHETIC.iter().map(TaskRef::Synthetic));
    out.extend(datasets::list().into_iter().map(TaskRef::Dataset));
    out
}

/// Resolves `--task` values (each may be a comma list): an exact name, or a family prefix
/// (`ruler` selects every `ruler/…` task). Order of first mention; duplicates dropped.
pub fn select_tasks(specs: &[String]) -> Result<Vec<TaskRef>, RunError> {
    let all = all_tasks();
    let mut out: Vec<TaskRef> = Vec::new();
    let mut seen = HashSet::new();
    for name in specs.iter().flat_map(|s| s.split(',')).map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let name = name.trim_end_matches('/');
        let matched: Vec<TaskRef> = match all.iter().find(|t| t.name() == name) {
            Some(t) => vec![*t],
            None => all
                .iter()
                .filter(|t| t.name().starts_with(&format!("{name}/")))
                .copied()
                .collect(),
        };
        if matched.is_empty() {
            let mut families: Vec<&str> = all.iter().map(TaskRef::family).collect();
            families.dedup();
            return Err(RunError::UnknownTask {
                name: name.to_string(),
                known: all.iter().map(TaskRef::name).collect::<Vec<_>>().join(", "),
                families: families.join(", "),
            });
        }
        for t in matched {
            if seen.insert(t.name()) {
                out.push(t);
            }
        }
    }
    if out.is_empty() {
        return Err(RunError::NoTasks);
    }
    Ok(out)
}

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
}

/// Tokens `backend` adds around the text of a one-turn chat request (template and BOS); a
/// margin of 16 when the backend cannot render its template.
pub fn chat_template_tokens(backend: &dyn LlmBackend) -> Result<usize, BackendError> {
    chat_wrapper_tokens(backend, None)
}

/// Tokens of a one-turn chat request with an empty user message and the assistant turn
/// started with `prefix`; 16 + the prefix when the backend cannot render its template.
fn chat_wrapper_tokens(
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

/// Passkey samples as [`Sample`]s: raw completion (the prompt ends with the answer cue),
/// `first_integer_eq`, ids `passkey/LENGTH/DEPTH/INDEX`.
fn passkey_samples(
    cfg: &PlanConfig,
    counter: &dyn TokenCounter,
) -> Result<Vec<Sample>, BenchError> {
    let depths = if cfg.depths.is_empty() {
        crate::tasks::DEFAULT_DEPTHS.to_vec()
    } else {
        cfg.depths.clone()
    };
    const MAX_NEW: usize = 8;
    let mut out = Vec::new();
    for &length in &cfg.lengths {
        for &depth in &depths {
            for i in 0..cfg.samples {
                let case = PasskeyCase::new(
                    length.saturating_sub(MAX_NEW).max(1),
                    depth,
                    i as u64,
                    cfg.seed,
                )?;
                let s = passkey::generate_sample(&case, counter)?;
                out.push(Sample {
                    id: format!("passkey/{length}/{depth}/{i}"),
                    task: "passkey".into(),
                    prompt: s.prompt,
                    chat: false,
                    answer_prefix: String::new(),
                    question: passkey::QUESTION.into(),
                    truncation: Truncation::None,
                    answers: vec![s.answer],
                    all_classes: Vec::new(),
                    metric: Metric::FirstIntegerEq,
                    max_new_tokens: MAX_NEW,
                    meta: serde_json::json!({
                        "length": length,
                        "depth": depth,
                        "generator_version": passkey::GENERATOR_VERSION,
                        "prompt_tokens": s.prompt_tokens,
                    }),
                });
            }
        }
    }
    Ok(out)
}

/// Builds the samples of `task`; synthetic lengths are measured with `counter`.
pub fn plan_task(
    task: TaskRef,
    cfg: &PlanConfig,
    counter: &dyn TokenCounter,
) -> Result<Planned, RunError> {
    let gen_err = |error| RunError::Generate {
        task: task.name().to_string(),
        error,
    };
    let samples = match task {
        TaskRef::Passkey => passkey_samples(cfg, counter).map_err(gen_err)?,
        TaskRef::Synthetic(t) => {
            let mut gen = GenConfig::new(1, &cfg.depths, cfg.samples.max(1));
            gen.seed = cfg.seed;
            if let Some(root) = &cfg.data_root {
                gen.data_root = root.clone();
            }
            let templated = |text: &str| counter.count_tokens(text) + cfg.template_tokens;
            crate::tasks::generate_grid(t, &cfg.lengths, &gen, &templated).map_err(gen_err)?
        }
        TaskRef::Dataset(d) => {
            let ds_err = |error| RunError::Dataset {
                task: d.name.to_string(),
                error,
            };
            let root = match &cfg.data_root {
                Some(r) => r.clone(),
                None => datasets::default_data_root().map_err(ds_err)?,
            };
            let opts = LoadOptions {
                skip_bad_lines: cfg.skip_bad_lines,
            };
            let loaded = d.load(&root, &opts).map_err(ds_err)?;
            let mut samples = loaded.samples;
            if let Some(n) = cfg.limit {
                samples.truncate(n);
            }
            return Ok(Planned {
                samples,
                skipped: loaded
                    .skipped
                    .iter()
                    .map(|s| format!("{}, line {}: {}", s.path.display(), s.line, s.reason))
                    .collect(),
            });
        }
    };
    Ok(Planned {
        samples,
        skipped: Vec::new(),
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

/// The identity of a sample's input: sha256 (first 16 bytes, hex) of everything that goes into
/// its request.
pub fn prompt_hash(s: &Sample) -> String {
    let mut h = Sha256::new();
    for part in [
        s.prompt.as_str(),
        s.answer_prefix.as_str(),
        s.question.as_str(),
        if s.chat { "chat" } else { "raw" },
        &s.max_new_tokens.to_string(),
        &format!("{:?}", s.truncation),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How a run executes.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// Worker threads (requests in flight).
    pub concurrency: usize,
    /// Prompt + output budget per request; `None` = no truncation.
    pub max_input_tokens: Option<usize>,
}

/// What [`run_samples`] reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// Before the first request: samples to run and samples already stored.
    Start { to_run: usize, skipped: usize },
    /// A sample finished and is stored.
    Done(&'a ResultRow),
}

/// The totals of one call of [`run_samples`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOutcome {
    pub ran: usize,
    pub skipped: usize,
    pub errors: usize,
    /// The cancel flag stopped the run before every sample ran.
    pub cancelled: bool,
    /// Sum of the scores of the samples run in this call.
    pub score_sum: f64,
}

/// A worker's answer: a row to store, or an error that stops the run.
type WorkerResult = Result<ResultRow, (String, BackendError)>;

/// Runs every sample of `samples` not already stored under `run_id`, storing each result as
/// it finishes. Raising `cancel` stops handing out samples; those in flight finish and are
/// stored. A fatal backend error stops the run the same way and is returned after the
/// in-flight samples are stored.
pub fn run_samples(
    backend: &dyn LlmBackend,
    store: &mut Store,
    run_id: i64,
    samples: &[Sample],
    settings: &RunSettings,
    cancel: &AtomicBool,
    mut on_event: impl FnMut(Event),
) -> Result<RunOutcome, RunError> {
    if settings.concurrency == 0 {
        return Err(RunError::Settings("concurrency must be at least 1".into()));
    }
    let done = store.done(run_id)?;
    let mut todo: Vec<(&Sample, String)> = Vec::new();
    let mut skipped = 0;
    let mut seen = HashSet::new();
    for s in samples {
        if !seen.insert((s.task.as_str(), s.id.as_str())) {
            continue;
        }
        let hash = prompt_hash(s);
        if done.get(&(s.task.clone(), s.id.clone())) == Some(&hash) {
            skipped += 1;
        } else {
            todo.push((s, hash));
        }
    }
    on_event(Event::Start {
        to_run: todo.len(),
        skipped,
    });
    let mut outcome = RunOutcome {
        skipped,
        ..RunOutcome::default()
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut fatal: Option<RunError> = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<WorkerResult>();
        for _ in 0..settings.concurrency.min(todo.len().max(1)) {
            let tx = tx.clone();
            let (todo, next, stop) = (&todo, &next, &stop);
            scope.spawn(move || loop {
                if cancel.load(Ordering::SeqCst) || stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((sample, hash)) = todo.get(i) else {
                    break;
                };
                let result = run_one(backend, sample, hash, settings.max_input_tokens)
                    .map_err(|e| (sample.id.clone(), e));
                if tx.send(result).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for result in rx {
            match result {
                Ok(row) => {
                    if fatal.is_some() && matches!(fatal, Some(RunError::Store(_))) {
                        continue;
                    }
                    if let Err(e) = store.insert(run_id, &row) {
                        stop.store(true, Ordering::SeqCst);
                        fatal.get_or_insert(RunError::Store(e));
                        continue;
                    }
                    outcome.ran += 1;
                    outcome.errors += usize::from(row.error.is_some());
                    outcome.score_sum += row.score;
                    on_event(Event::Done(&row));
                }
                Err((sample, error)) => {
                    stop.store(true, Ordering::SeqCst);
                    fatal.get_or_insert(RunError::Backend { sample, error });
                }
            }
        }
    });
    if let Some(e) = fatal {
        return Err(e);
    }
    outcome.cancelled = outcome.ran + outcome.skipped < todo.len() + skipped;
    Ok(outcome)
}

/// Errors that stop the run rather than becoming an error row: the server is unreachable, or
/// the backend cannot do what the run needs (count tokens) or is misconfigured.
fn is_fatal(e: &BackendError) -> bool {
    match e {
        BackendError::Connect { .. }
        | BackendError::Unsupported { .. }
        | BackendError::Config(_) => true,
        BackendError::RetriesExhausted { last, .. } => is_fatal(last),
        _ => false,
    }
}

/// Transient failures worth another try on the next run.
fn is_retryable(e: &BackendError) -> bool {
    match e {
        BackendError::Io { .. } | BackendError::BadResponse { .. } => true,
        BackendError::Http { status, .. } => *status >= 500 || *status == 429,
        BackendError::RetriesExhausted { last, .. } => is_retryable(last),
        _ => false,
    }
}

/// An input fitted to the budget.
struct Fitted {
    prompt: String,
    truncated: bool,
}

/// Why an input could not be fitted: an error row (message, retryable) or a fatal error.
enum FitError {
    Row(String, bool),
    Fatal(BackendError),
}

impl From<BackendError> for FitError {
    fn from(e: BackendError) -> Self {
        if is_fatal(&e) {
            FitError::Fatal(e)
        } else {
            let retry = is_retryable(&e);
            FitError::Row(e.to_string(), retry)
        }
    }
}

/// Tokens a request adds around the prompt text: the chat template (when the backend can
/// render it; else a margin of 16) or BOS, plus the answer prefix.
fn overhead(backend: &dyn LlmBackend, s: &Sample) -> Result<usize, BackendError> {
    let prefix = (!s.answer_prefix.is_empty()).then_some(s.answer_prefix.as_str());
    if s.chat {
        chat_wrapper_tokens(backend, prefix)
    } else {
        Ok(1 + backend.count_tokens(&s.answer_prefix)?)
    }
}

fn fit(backend: &dyn LlmBackend, s: &Sample, max_input: Option<usize>) -> Result<Fitted, FitError> {
    let as_is = || Fitted {
        prompt: s.prompt.clone(),
        truncated: false,
    };
    let Some(max_input) = max_input else {
        return Ok(as_is());
    };
    let overhead = overhead(backend, s)?;
    let allowed = max_input
        .checked_sub(s.max_new_tokens + overhead)
        .filter(|&a| a > 0)
        .ok_or_else(|| {
            FitError::Row(
                format!(
                    "max-input-tokens {max_input} leaves no room for the prompt \
                     ({} new tokens + {overhead} template tokens)",
                    s.max_new_tokens
                ),
                false,
            )
        })?;
    let n = backend.count_tokens(&s.prompt)?;
    if n <= allowed {
        return Ok(as_is());
    }
    let prompt = match s.truncation {
        Truncation::None => {
            return Err(FitError::Row(
                format!(
                "the prompt has {n} tokens but only {allowed} fit (max-input-tokens {max_input} \
                     - {} new - {overhead} template); this task does not truncate",
                s.max_new_tokens
            ),
                false,
            ))
        }
        Truncation::MiddleTokens => truncate_middle_tokens(backend, &s.prompt, allowed)?,
        Truncation::HeadWords => head_words(backend, s, n, allowed)?,
    };
    Ok(Fitted {
        prompt,
        truncated: true,
    })
}

/// L-Eval's head truncation: the document part is the prompt before the question (minus a
/// trailing `Label:` cue such as `Question:`); words are dropped from its end, first as many
/// as tokens are over, then 250 more at a time (L-Eval's step) until the prompt fits.
fn head_words(
    backend: &dyn LlmBackend,
    s: &Sample,
    n: usize,
    allowed: usize,
) -> Result<String, FitError> {
    let prompt = s.prompt.as_str();
    let split = (!s.question.is_empty())
        .then(|| prompt.rfind(s.question.as_str()))
        .flatten()
        .unwrap_or(prompt.len());
    let (mut head, tail) = prompt.split_at(split);
    // Keep a short trailing cue (`Question: `, `Instruction: `) with the tail.
    let trimmed = head.trim_end();
    let mut cue_start = head.len();
    if let Some(last) = trimmed.split_whitespace().last() {
        if last.ends_with(':') && last.len() <= 20 {
            cue_start = trimmed.len() - last.len();
        }
    }
    let cue = &head[cue_start..];
    head = &head[..cue_start];
    // Byte offsets where each word of the head ends.
    let ends: Vec<usize> = head
        .char_indices()
        .zip(head.chars().skip(1).map(Some).chain(std::iter::once(None)))
        .filter(|((_, c), next)| !c.is_whitespace() && next.is_none_or(char::is_whitespace))
        .map(|((i, c), _)| i + c.len_utf8())
        .collect();
    let mut drop = n - allowed;
    loop {
        if drop >= ends.len() {
            return Err(FitError::Row(
                format!(
                    "head-word truncation cannot fit the prompt into {allowed} tokens: the part \
                     after the document alone is too long"
                ),
                false,
            ));
        }
        let keep = ends.len() - drop;
        let candidate = format!("{} {cue}{tail}", &head[..ends[keep - 1]]);
        if backend.count_tokens(&candidate)? <= allowed {
            return Ok(candidate);
        }
        drop += 250;
    }
}

/// `(length, depth)` of a synthetic sample: from `meta` when it has a `depth` key (every
/// generator records one, `null` for random placement).
fn cell(s: &Sample) -> (Option<u64>, Option<u32>) {
    let Some(meta) = s.meta.as_object() else {
        return (None, None);
    };
    if !meta.contains_key("depth") {
        return (None, None);
    }
    (
        meta.get("length").and_then(serde_json::Value::as_u64),
        meta.get("depth")
            .and_then(serde_json::Value::as_u64)
            .and_then(|d| u32::try_from(d).ok()),
    )
}

/// Runs one sample: fit, request, score. `Err` only for fatal backend errors.
fn run_one(
    backend: &dyn LlmBackend,
    s: &Sample,
    hash: &str,
    max_input: Option<usize>,
) -> Result<ResultRow, BackendError> {
    let started = Instant::now();
    let (length, depth) = cell(s);
    let mut row = ResultRow {
        task: s.task.clone(),
        sample_id: s.id.clone(),
        prompt_hash: hash.to_string(),
        length,
        depth,
        prediction: String::new(),
        score: 0.0,
        latency_ms: 0,
        prompt_tokens: 0,
        completion_tokens: 0,
        truncated: false,
        error: None,
        retryable: false,
        metric: s.metric.name().to_string(),
        question: s.question.clone(),
        answers: s.answers.clone(),
        all_classes: s.all_classes.clone(),
        meta: s.meta.clone(),
    };
    let finish = |mut row: ResultRow| {
        row.latency_ms = started.elapsed().as_millis() as u64;
        row
    };
    let fitted = match fit(backend, s, max_input) {
        Ok(f) => f,
        Err(FitError::Fatal(e)) => return Err(e),
        Err(FitError::Row(msg, retry)) => {
            row.error = Some(msg);
            row.retryable = retry;
            return Ok(finish(row));
        }
    };
    row.truncated = fitted.truncated;
    let sampling = Sampling::greedy(s.max_new_tokens.max(1));
    let result = if s.chat {
        backend.chat(&ChatRequest {
            messages: vec![Message::user(fitted.prompt)],
            prefill: (!s.answer_prefix.is_empty()).then(|| s.answer_prefix.clone()),
            sampling,
            instruction: (!s.question.is_empty()).then(|| s.question.clone()),
        })
    } else {
        backend.complete(&CompletionRequest {
            prompt: fitted.prompt + &s.answer_prefix,
            sampling,
        })
    };
    match result {
        Ok(c) => {
            row.prompt_tokens = c.prompt_tokens as u64;
            row.completion_tokens = c.completion_tokens as u64;
            match s.metric.score_sample(&c.text, s) {
                Ok(score) => row.score = score,
                Err(e) => row.error = Some(format!("scoring: {e}")),
            }
            row.prediction = c.text;
        }
        Err(e) if is_fatal(&e) => return Err(e),
        Err(e) => {
            row.retryable = is_retryable(&e);
            row.error = Some(e.to_string());
        }
    }
    Ok(finish(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{record, temp_db};
    use longctx_backend::{BackendInfo, Capabilities, Completion, FinishReason};
    use std::time::Duration;

    /// A backend that answers with the first reference of the sample named in the prompt
    /// (`answer:X`), counts whitespace words as tokens, and can fail after `fail_after` calls.
    struct Scripted {
        info: BackendInfo,
        calls: AtomicUsize,
        fail_after: Option<usize>,
        overflow_over: usize,
        delay: Duration,
    }

    impl Scripted {
        fn new(fail_after: Option<usize>) -> Scripted {
            Scripted {
                info: BackendInfo {
                    model_id: "scripted".into(),
                    context_window: 0,
                    max_output_tokens: 0,
                    caps: Capabilities::default(),
                },
                calls: AtomicUsize::new(0),
                fail_after,
                overflow_over: usize::MAX,
                delay: Duration::ZERO,
            }
        }
        fn answer(&self, prompt: &str) -> longctx_backend::Result<Completion> {
            std::thread::sleep(self.delay);
            let k = self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail_after.is_some_and(|n| k >= n) {
                return Err(BackendError::Connect {
                    endpoint: "http://127.0.0.1:9/v1".into(),
                    detail: "connection refused".into(),
                });
            }
            let words = prompt.split_whitespace().count();
            if words > self.overflow_over {
                return Err(BackendError::ContextOverflow {
                    endpoint: None,
                    message: "too long".into(),
                    needed: Some(words),
                    limit: Some(self.overflow_over),
                });
            }
            let text = prompt
                .split_whitespace()
                .find_map(|w| w.strip_prefix("answer:"))
                .unwrap_or("")
                .to_string();
            Ok(Completion {
                text,
                finish: FinishReason::Stop,
                prompt_tokens: words,
                completion_tokens: 1,
                latency: Duration::ZERO,
            })
        }
    }

    impl LlmBackend for Scripted {
        fn info(&self) -> &BackendInfo {
            &self.info
        }
        fn complete(&self, req: &CompletionRequest) -> longctx_backend::Result<Completion> {
            self.answer(&req.prompt)
        }
        fn chat(&self, req: &ChatRequest) -> longctx_backend::Result<Completion> {
            self.answer(&req.messages[0].content)
        }
        fn count_tokens(&self, text: &str) -> longctx_backend::Result<usize> {
            Ok(text.split_whitespace().count())
        }
        fn tokenize(&self, text: &str) -> longctx_backend::Result<Vec<u32>> {
            Ok(text.split_whitespace().map(|w| w.len() as u32).collect())
        }
        fn detokenize(&self, tokens: &[u32]) -> longctx_backend::Result<String> {
            Ok(tokens
                .iter()
                .map(|&n| "x".repeat(n as usize) + " ")
                .collect())
        }
    }

    fn sample(i: usize, correct: bool) -> Sample {
        Sample {
            id: format!("s{i}"),
            task: "t/exact".into(),
            prompt: format!("doc {i} answer:{}", if correct { "yes" } else { "no" }),
            chat: i.is_multiple_of(2),
            answer_prefix: String::new(),
            question: String::new(),
            truncation: Truncation::None,
            answers: vec!["yes".into()],
            all_classes: Vec::new(),
            metric: Metric::ExactMatch,
            max_new_tokens: 4,
            meta: serde_json::json!({"length": 100, "depth": i * 10}),
        }
    }

    fn settings(c: usize) -> RunSettings {
        RunSettings {
            concurrency: c,
            max_input_tokens: None,
        }
    }

    fn table(store: &Store, run: i64) -> Vec<(String, f64, Option<String>)> {
        store
            .results(run)
            .unwrap()
            .into_iter()
            .map(|r| (r.sample_id, r.score, r.error))
            .collect()
    }

    #[test]
    fn interrupted_run_resumes_exactly_the_missing_samples() {
        let samples: Vec<Sample> = (0..10).map(|i| sample(i, i % 3 != 0)).collect();
        let no = AtomicBool::new(false);

        // Uninterrupted reference.
        let mut reference = Store::open(&temp_db("ref.sqlite")).unwrap();
        let r = reference.begin_run(&record("k")).unwrap();
        let ok = Scripted::new(None);
        let out = run_samples(&ok, &mut reference, r, &samples, &settings(3), &no, |_| {}).unwrap();
        assert_eq!((out.ran, out.skipped, out.errors), (10, 0, 0));
        assert!((out.score_sum - 6.0).abs() < 1e-9);

        // A server that goes away after 4 requests: the run stops with a clear error.
        let mut store = Store::open(&temp_db("resume.sqlite")).unwrap();
        let run = store.begin_run(&record("k")).unwrap();
        let failing = Scripted::new(Some(4));
        let err = run_samples(
            &failing,
            &mut store,
            run,
            &samples,
            &settings(1),
            &no,
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cannot connect") && err.contains("stopped at sample"),
            "{err}"
        );
        assert_eq!(store.results(run).unwrap().len(), 4);

        // Resume: exactly the 6 missing ones run.
        let ok2 = Scripted::new(None);
        let mut ran = Vec::new();
        let out = run_samples(&ok2, &mut store, run, &samples, &settings(2), &no, |e| {
            if let Event::Done(r) = e {
                ran.push(r.sample_id.clone());
            }
        })
        .unwrap();
        assert_eq!((out.ran, out.skipped), (6, 4));
        assert_eq!(ok2.calls.load(Ordering::SeqCst), 6);
        ran.sort();
        assert_eq!(ran, ["s4", "s5", "s6", "s7", "s8", "s9"]);
        assert_eq!(table(&store, run), table(&reference, r));

        // Same config again: nothing runs.
        let ok3 = Scripted::new(None);
        let out = run_samples(&ok3, &mut store, run, &samples, &settings(2), &no, |_| {}).unwrap();
        assert_eq!((out.ran, out.skipped), (0, 10));
        assert_eq!(ok3.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn cancel_flag_stops_handing_out_samples() {
        let samples: Vec<Sample> = (0..8).map(|i| sample(i, true)).collect();
        let mut store = Store::open(&temp_db("cancel.sqlite")).unwrap();
        let run = store.begin_run(&record("k")).unwrap();
        let cancel = AtomicBool::new(false);
        let mut b = Scripted::new(None);
        b.delay = Duration::from_millis(30);
        let mut n = 0;
        let out = run_samples(&b, &mut store, run, &samples, &settings(1), &cancel, |e| {
            if let Event::Done(_) = e {
                n += 1;
                if n == 3 {
                    cancel.store(true, Ordering::SeqCst);
                }
            }
        })
        .unwrap();
        assert!(out.cancelled);
        // One worker: at most one more sample was in flight when the flag went up.
        let stored = store.results(run).unwrap().len();
        assert!((3..=4).contains(&stored), "{stored}");
        let out = run_samples(
            &b,
            &mut store,
            run,
            &samples,
            &settings(4),
            &AtomicBool::new(false),
            |_| {},
        )
        .unwrap();
        assert_eq!(out.ran + out.skipped, 8);
        assert_eq!(out.skipped, stored);
        assert!(!out.cancelled);
    }

    #[test]
    fn overflow_and_untruncatable_prompts_become_error_rows() {
        let mut store = Store::open(&temp_db("errors.sqlite")).unwrap();
        let run = store.begin_run(&record("k")).unwrap();
        let mut long = sample(0, true);
        long.id = "long".into();
        long.prompt = format!("{} answer:yes", "w ".repeat(50));
        let short = sample(1, true);
        let mut middle = long.clone();
        middle.id = "middle".into();
        middle.truncation = Truncation::MiddleTokens;
        let mut b = Scripted::new(None);
        b.overflow_over = 30;
        let no = AtomicBool::new(false);
        // No budget: the long prompt reaches the backend, which refuses it.
        let out = run_samples(
            &b,
            &mut store,
            run,
            &[long.clone(), short],
            &settings(1),
            &no,
            |_| {},
        )
        .unwrap();
        assert_eq!((out.ran, out.errors), (2, 1));
        let rows = store.results(run).unwrap();
        let err = rows[0].error.as_deref().unwrap();
        assert!(err.contains("context overflow"), "{err}");
        assert_eq!(rows[0].score, 0.0);

        // With a budget: `None` truncation is an error row, middle truncation fits and says so.
        let run2 = store.begin_run(&record("k2")).unwrap();
        let s = RunSettings {
            concurrency: 2,
            max_input_tokens: Some(30),
        };
        run_samples(&b, &mut store, run2, &[long, middle], &s, &no, |_| {}).unwrap();
        let rows = store.results(run2).unwrap();
        let by = |id: &str| rows.iter().find(|r| r.sample_id == id).unwrap().clone();
        assert!(by("long").error.unwrap().contains("does not truncate"));
        let m = by("middle");
        assert!(m.truncated && m.error.is_none(), "{m:?}");
    }

    #[test]
    fn head_words_drop_the_end_of_the_document() {
        let b = Scripted::new(None);
        let mut s = sample(0, true);
        s.truncation = Truncation::HeadWords;
        s.question = "What is it?".into();
        let doc: Vec<String> = (0..40).map(|i| format!("d{i}")).collect();
        s.prompt = format!(
            "System. Document is as follows. {} \nQuestion: What is it?",
            doc.join(" ")
        );
        let n = b.count_tokens(&s.prompt).unwrap();
        let out = head_words(&b, &s, n, 20).unwrap_or_else(|_| panic!("fits"));
        assert!(out.ends_with("Question: What is it?"), "{out}");
        assert!(
            out.starts_with("System. Document is as follows. d0 d1"),
            "{out}"
        );
        assert!(b.count_tokens(&out).unwrap() <= 20);
        assert!(!out.contains("d39"));
    }

    #[test]
    fn tasks_select_by_name_family_and_list_known_ones() {
        let t = select_tasks(&["ruler".into()]).unwrap();
        assert_eq!(t.len(), 13);
        assert!(t.iter().all(|t| t.name().starts_with("ruler/")));
        let t = select_tasks(&["passkey,ruler/vt".into(), "passkey".into()]).unwrap();
        assert_eq!(
            t.iter().map(TaskRef::name).collect::<Vec<_>>(),
            ["passkey", "ruler/vt"]
        );
        let err = select_tasks(&["nope".into()]).unwrap_err().to_string();
        assert!(
            err.contains("unknown task 'nope'") && err.contains("ruler/niah_single_1"),
            "{err}"
        );
        assert!(err.contains("families: passkey, niah, ruler"), "{err}");
        assert!(matches!(select_tasks(&[]), Err(RunError::NoTasks)));
    }

    #[test]
    fn missing_and_malformed_datasets_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("longctx-runner-data-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = PlanConfig {
            lengths: vec![],
            depths: vec![],
            samples: 1,
            seed: 0,
            limit: Some(2),
            data_root: Some(dir.clone()),
            skip_bad_lines: false,
            template_tokens: 0,
        };
        let counter = |t: &str| t.len();
        let task = select_tasks(&["leval/coursera".into()]).unwrap()[0];
        let err = plan_task(task, &cfg, &counter).unwrap_err().to_string();
        assert!(
            err.contains("leval/coursera") && err.contains("missing"),
            "{err}"
        );
        std::fs::create_dir_all(dir.join("leval/closed-ended")).unwrap();
        std::fs::write(dir.join("leval/closed-ended/coursera.jsonl"), "{not json\n").unwrap();
        let err = plan_task(task, &cfg, &counter).unwrap_err().to_string();
        assert!(err.contains("coursera.jsonl, line 1"), "{err}");
        let lenient = PlanConfig {
            skip_bad_lines: true,
            ..cfg
        };
        let planned = plan_task(task, &lenient, &counter).unwrap();
        assert!(planned.samples.is_empty() && planned.skipped.len() == 1);
    }
}
