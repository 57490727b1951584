//! Fitting an input to the request budget as the sample's [`Truncation`] says: LongBench's
//! middle tokens, L-Eval's head words, or an error row for tasks that never truncate.

use longctx_backend::{truncate_middle_tokens, BackendError, LlmBackend};

use super::plan::chat_wrapper_tokens;
use crate::sample::{Sample, Truncation};

/// An input fitted to the budget.
pub(super) struct Fitted {
    pub(super) prompt: String,
    pub(super) truncated: bool,
}

/// Why an input could not be fitted: an error row (message, retryable) or a fatal error.
pub(super) enum FitError {
    Row(String, bool),
    Fatal(BackendError),
}

impl From<BackendError> for FitError {
    fn from(e: BackendError) -> Self {
        if e.is_fatal() {
            FitError::Fatal(e)
        } else {
            let retry = e.is_retryable();
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

/// The prompt text to send: as is when it fits (or there is no budget), else truncated.
pub(super) fn fit(
    backend: &dyn LlmBackend,
    s: &Sample,
    max_input: Option<usize>,
) -> Result<Fitted, FitError> {
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
pub(super) fn head_words(
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
