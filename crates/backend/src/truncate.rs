//! Middle truncation as LongBench v1 does it: keep the first and last `max/2` tokens, decode
//! each half separately (special tokens skipped) and concatenate.

use crate::{LlmBackend, Result};

/// `text` unchanged when it has at most `max_tokens` tokens; otherwise the decoded first
/// `max_tokens / 2` tokens followed by the decoded last `max_tokens / 2` tokens (LongBench v1's
/// `half = int(max_length / 2)`, so an odd `max_tokens` keeps `max_tokens - 1`). Needs a
/// backend that can tokenize.
pub fn truncate_middle_tokens(
    backend: &dyn LlmBackend,
    text: &str,
    max_tokens: usize,
) -> Result<String> {
    let ids = backend.tokenize(text)?;
    if ids.len() <= max_tokens {
        return Ok(text.to_string());
    }
    let half = max_tokens / 2;
    let head = backend.detokenize(&ids[..half])?;
    let tail = backend.detokenize(&ids[ids.len() - half..])?;
    Ok(head + &tail)
}
