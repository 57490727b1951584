//! Running samples: a pool of worker threads sends each sample not yet stored to the
//! backend, scores the answer and stores the row as it finishes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use longctx_backend::{
    BackendError, ChatRequest, CompletionRequest, LlmBackend, Message, Sampling,
};
use sha2::{Digest, Sha256};

use super::fit::{fit, FitError};
use super::RunError;
use crate::sample::Sample;
use crate::store::{ResultRow, Store};

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
        backend.complete_with_instruction(
            &CompletionRequest {
                prompt: fitted.prompt + &s.answer_prefix,
                sampling,
            },
            (!s.question.is_empty()).then_some(s.question.as_str()),
        )
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
        Err(e) if e.is_fatal() => return Err(e),
        Err(e) => {
            row.retryable = e.is_retryable();
            row.error = Some(e.to_string());
        }
    }
    Ok(finish(row))
}
