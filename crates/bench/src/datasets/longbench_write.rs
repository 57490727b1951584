//! LongBench-Write and LongWrite-Ruler writing requests (`longbench-write/*.jsonl`, from
//! THUDM/LongWriter `evaluation/`).
//!
//! The prompt is the request itself, sent through the chat template; `meta.required_length`
//! is the record's `length` field, which upstream `eval_length.py` uses as the required
//! length directly (words for English, characters for Chinese; `meta.language` is `zh` when
//! the request has CJK ideographs, else `en`). Metric `LengthScore` (S_l); the quality score
//! S_q needs an LLM judge (`judge.txt`) and is not computed here. Upstream generates with
//! `max_new_tokens` 32768 so that the model, not the cap, decides the length.

use std::path::Path;

use serde_json::json;

use super::util::{build_or_skip, has_cjk, join, read_jsonl, require_dir, Record};
use super::{DatasetError, LoadOptions, Loaded};
use crate::metrics::Metric;
use crate::sample::{Sample, Truncation};
use crate::task::{Source, Task};

/// Upstream's generation budget.
pub const MAX_NEW_TOKENS: usize = 32768;

macro_rules! entry {
    ($name:literal, $summary:literal) => {
        Task {
            name: concat!("longbench-write/", $name),
            summary: $summary,
            metric: Metric::LengthScore,
            source: Source::Load(load_task),
        }
    };
}

/// Registry entries: `longbench-write/{longbench_write, longbench_write_en, longwrite_ruler}`.
pub const TASKS: &[Task] = &[
    entry!(
        "longbench_write",
        "LongBench-Write writing requests, en+zh (subset); length score"
    ),
    entry!(
        "longbench_write_en",
        "LongBench-Write English requests (subset); length score"
    ),
    entry!(
        "longwrite_ruler",
        "LongWrite-Ruler fixed-length writing requests (subset); length score"
    ),
];

/// LongBench-Write's word count: CJK ideographs (U+4E00–U+9FFF) plus ASCII-letter words
/// (`\b[a-zA-Z]+\b`; a letter run touching a digit, `_` or another word character is not a
/// word, as with Python's `\b`).
pub fn word_count(text: &str) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut count = chars
        .iter()
        .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(*c))
        .count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            let before_ok = start == 0 || !is_word(chars[start - 1]);
            let after_ok = i == chars.len() || !is_word(chars[i]);
            if before_ok && after_ok {
                count += 1;
            }
        } else {
            i += 1;
        }
    }
    count
}

/// LongBench-Write's length score S_l in `0.0..=1.0` (upstream reports ×100) for required
/// length `x` and produced length `y`; 0 for an empty output.
pub fn length_score(required: usize, produced: usize) -> f64 {
    if required == 0 || produced == 0 {
        return 0.0;
    }
    let (x, y) = (required as f64, produced as f64);
    if y > x {
        (1.0 - (y / x - 1.0) / 3.0).max(0.0)
    } else {
        (1.0 - (x / y - 1.0) / 2.0).max(0.0)
    }
}

fn load_task(info: &Task, root: &Path, options: &LoadOptions) -> Result<Loaded, DatasetError> {
    let file = info.short_name();
    let dir = join(root, &["longbench-write"]);
    require_dir(&dir)?;
    let path = dir.join(format!("{file}.jsonl"));
    let mut loaded = Loaded::default();
    let rows = read_jsonl(&path, options, &mut loaded.skipped)?;
    for (line, obj) in rows {
        let rec = Record {
            path: &path,
            at: format!("line {line}"),
            obj: &obj,
        };
        let sample = build_or_skip(options, &mut loaded.skipped, &path, line, || {
            let prompt = rec.str("prompt")?.to_string();
            let required = rec.u64("length")?;
            Ok(Sample {
                id: format!("{file}-{line}"),
                task: info.name.to_string(),
                question: prompt.clone(),
                chat: true,
                answer_prefix: String::new(),
                truncation: Truncation::None,
                answers: Vec::new(),
                all_classes: Vec::new(),
                metric: Metric::LengthScore,
                max_new_tokens: MAX_NEW_TOKENS,
                meta: json!({
                    "required_length": required,
                    "language": if has_cjk(&prompt) { "zh" } else { "en" },
                    "type": rec.str("type")?,
                }),
                prompt,
            })
        })?;
        loaded.samples.extend(sample);
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_count_and_length_score() {
        assert_eq!(word_count("Hello, world! 42 abc1 x_y 你好"), 2 + 2);
        assert_eq!(word_count("It's fine"), 3);
        assert_eq!(length_score(1000, 1000), 1.0);
        assert!((length_score(1000, 2500) - 0.5).abs() < 1e-12);
        assert_eq!(length_score(1000, 4000), 0.0);
        assert!((length_score(1000, 500) - 0.5).abs() < 1e-12);
        assert_eq!(length_score(900, 300), 0.0);
        assert_eq!(length_score(1000, 0), 0.0);
    }
}
