//! Perplexity exactly as llama.cpp's `llama-perplexity` computes it: tokenize the whole text
//! once, split into chunks of `n_ctx`, set each chunk's first token to BOS when the model adds
//! BOS, score only the second half of every chunk.

use crate::model::{LogitsWanted, Model, ModelError, Workspace};
use crate::ops::log_softmax_at;
use crate::policy::{CachePolicy, FullPolicy};

/// Running or final result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerplexityEstimate {
    pub ppl: f64,
    /// llama.cpp's "±" term: ppl × standard error of the mean negative log-likelihood.
    pub error: f64,
    /// Tokens scored so far.
    pub count: usize,
    pub chunks_done: usize,
    pub chunks_total: usize,
}

/// Errors specific to perplexity runs.
#[derive(Debug, thiserror::Error)]
pub enum PerplexityError {
    #[error("need at least {needed} tokens for a context of {n_ctx}, the text has {got}")]
    TooShort {
        needed: usize,
        n_ctx: usize,
        got: usize,
    },
    #[error("context must be at least 4 tokens, got {0}")]
    BadContext(usize),
    #[error(transparent)]
    Model(#[from] ModelError),
}

fn estimate(
    nll: f64,
    nll2: f64,
    count: usize,
    chunks_done: usize,
    chunks_total: usize,
) -> PerplexityEstimate {
    let mean = nll / count as f64;
    let var = nll2 / count as f64 - mean * mean;
    let ppl = mean.exp();
    let error = if var > 0.0 && count > 1 {
        (var / (count as f64 - 1.0)).sqrt() * ppl
    } else {
        0.0
    };
    PerplexityEstimate {
        ppl,
        error,
        count,
        chunks_done,
        chunks_total,
    }
}

/// Computes perplexity over `tokens` (already tokenized with the model's BOS rule) with
/// chunks of `n_ctx`; `progress` sees the running estimate after each chunk.
pub fn perplexity(
    model: &Model,
    tokens: &[u32],
    n_ctx: usize,
    policy_factory: &dyn Fn() -> Box<dyn CachePolicy>,
    mut progress: impl FnMut(&PerplexityEstimate),
) -> Result<PerplexityEstimate, PerplexityError> {
    if n_ctx < 4 {
        return Err(PerplexityError::BadContext(n_ctx));
    }
    if tokens.len() < 2 * n_ctx {
        return Err(PerplexityError::TooShort {
            needed: 2 * n_ctx,
            n_ctx,
            got: tokens.len(),
        });
    }
    let n_chunks = tokens.len() / n_ctx;
    let first = n_ctx / 2;
    let bos = if model.tokenizer.add_bos() {
        model.tokenizer.bos()
    } else {
        None
    };
    let vocab = model.vocab_size();
    let mut ws = Workspace::default();
    let (mut nll, mut nll2, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut chunk_tokens = Vec::with_capacity(n_ctx);
    let mut last = None;
    for c in 0..n_chunks {
        chunk_tokens.clear();
        chunk_tokens.extend_from_slice(&tokens[c * n_ctx..(c + 1) * n_ctx]);
        if let Some(b) = bos {
            chunk_tokens[0] = b;
        }
        let mut policy = policy_factory();
        let mut kv = model.new_kv(policy.as_ref());
        // The whole chunk in pieces of the policy's size; logits only where they are scored.
        let step = policy.chunk_size().max(1);
        let mut start = 0;
        let mut logits = Vec::with_capacity((n_ctx - first) * vocab);
        while start < n_ctx {
            let end = (start + step).min(n_ctx);
            let want = if end > first {
                LogitsWanted::From(first.saturating_sub(start))
            } else {
                LogitsWanted::None
            };
            model.forward(
                &chunk_tokens[start..end],
                start as i64,
                &mut kv,
                policy.as_mut(),
                want,
                &mut ws,
            )?;
            if end > first {
                logits.extend_from_slice(&ws.logits);
            }
            start = end;
        }
        // Row r of `logits` is position first + r and predicts the token after it.
        for j in first..n_ctx - 1 {
            let row = &logits[(j - first) * vocab..(j - first + 1) * vocab];
            let target = tokens[c * n_ctx + j + 1] as usize;
            let v = -log_softmax_at(row, target);
            nll += v;
            nll2 += v * v;
            count += 1;
        }
        let e = estimate(nll, nll2, count, c + 1, n_chunks);
        progress(&e);
        last = Some(e);
    }
    last.ok_or(PerplexityError::TooShort {
        needed: 2 * n_ctx,
        n_ctx,
        got: tokens.len(),
    })
}

/// The default policy factory: full attention with the chunk as its context.
pub fn full_policy(n_ctx: usize) -> impl Fn() -> Box<dyn CachePolicy> {
    move || {
        Box::new(FullPolicy {
            max_context: n_ctx,
            chunk: n_ctx.min(512),
        }) as Box<dyn CachePolicy>
    }
}
