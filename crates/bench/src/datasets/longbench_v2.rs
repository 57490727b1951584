//! LongBench v2 multiple-choice questions (`longbench-v2/short.jsonl`, the "short" bucket).
//!
//! The prompt is LongBench v2's zero-shot template (`prompts/0shot.txt` in THUDM/LongBench,
//! reproduced here because the data folder does not ship it), filled as upstream `pred.py`
//! does: `$DOC$`, `$Q$` and `$C_A$`…`$C_D$` replaced by the stripped context, question and
//! choices. Metric `ChoiceLetter` (upstream `extract_answer`: "The correct answer is (X)",
//! then without parentheses, after removing `*`); answers = [the letter]. Truncation keeps
//! the head and tail tokens (upstream `ids[:L//2] + ids[-L//2:]`); 128 new tokens (0-shot).

use std::path::Path;

use serde_json::json;

use super::util::{build_or_skip, join, read_jsonl, require_dir, Record};
use super::{DatasetError, LoadOptions, Loaded};
use crate::metrics::Metric;
use crate::sample::{Sample, Truncation};
use crate::task::{Source, Task};

/// `prompts/0shot.txt` of THUDM/LongBench (commit 2e00731f8d0b), verbatim (no trailing newline).
pub const TEMPLATE_0SHOT: &str = "Please read the following text and answer the question below.\n\n<text>\n$DOC$\n</text>\n\nWhat is the correct answer to this question: $Q$\nChoices:\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n\nFormat your response as follows: \"The correct answer is (insert answer here)\".";

/// Upstream's 0-shot generation budget.
pub const MAX_NEW_TOKENS: usize = 128;

/// Registry entry.
pub const TASKS: &[Task] = &[Task {
    name: "longbench-v2/short",
    summary: "LongBench v2 four-choice questions, short bucket (subset, 0-shot prompt)",
    metric: Metric::ChoiceLetter,
    source: Source::Load(load_task),
}];

/// Fills the 0-shot template the way upstream `pred.py` chains `str.replace`.
pub fn build_prompt(context: &str, question: &str, choices: [&str; 4]) -> String {
    TEMPLATE_0SHOT
        .replace("$DOC$", context.trim())
        .replace("$Q$", question.trim())
        .replace("$C_A$", choices[0].trim())
        .replace("$C_B$", choices[1].trim())
        .replace("$C_C$", choices[2].trim())
        .replace("$C_D$", choices[3].trim())
}

fn load_task(info: &Task, root: &Path, options: &LoadOptions) -> Result<Loaded, DatasetError> {
    let dir = join(root, &["longbench-v2"]);
    require_dir(&dir)?;
    let path = dir.join("short.jsonl");
    let mut loaded = Loaded::default();
    let rows = read_jsonl(&path, options, &mut loaded.skipped)?;
    for (line, obj) in rows {
        let rec = Record {
            path: &path,
            at: format!("line {line}"),
            obj: &obj,
        };
        let sample = build_or_skip(options, &mut loaded.skipped, &path, line, || {
            let answer = rec.str("answer")?;
            if !matches!(answer, "A" | "B" | "C" | "D") {
                return Err(rec.err("answer", format!("expected A, B, C or D, found '{answer}'")));
            }
            let question = rec.str("question")?;
            let choices = [
                rec.str("choice_A")?,
                rec.str("choice_B")?,
                rec.str("choice_C")?,
                rec.str("choice_D")?,
            ];
            Ok(Sample {
                id: rec.str("_id")?.to_string(),
                task: info.name.to_string(),
                prompt: build_prompt(rec.str("context")?, question, choices),
                chat: true,
                answer_prefix: String::new(),
                question: question.trim().to_string(),
                truncation: Truncation::MiddleTokens,
                answers: vec![answer.to_string()],
                all_classes: vec!["A".into(), "B".into(), "C".into(), "D".into()],
                metric: Metric::ChoiceLetter,
                max_new_tokens: MAX_NEW_TOKENS,
                meta: json!({
                    "difficulty": rec.str("difficulty")?,
                    "length": rec.str("length")?,
                    "domain": rec.str("domain")?,
                    "sub_domain": rec.opt_str("sub_domain")?,
                }),
            })
        })?;
        loaded.samples.extend(sample);
    }
    Ok(loaded)
}
