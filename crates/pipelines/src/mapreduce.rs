//! `mapreduce`: LLM×MapReduce (v1). The document is cut into chunks that fit the window; each
//! chunk is answered on its own (map, in parallel) in the structured information protocol —
//! extracted information, rationale, answer or `[NO INFORMATION]`, confidence out of 5 — with
//! the same calibration example in every prompt so confidences compare across chunks; chunks
//! with no information are dropped; outputs that do not fit one call are merged group by
//! group (collapse) until they do; a last call weighs them by confidence (reduce).
//! Prompt structure and budgets after the authors' `LLMxMapReduce_V1` code; wording our own.

use serde_json::json;

use crate::{MethodInfo, MethodOption, PipelineError, Result, Run};

pub const INFO: MethodInfo = MethodInfo {
    name: "mapreduce",
    summary:
        "LLM×MapReduce: answer every chunk in a structured format with confidence, collapse, reduce",
    options: &[
        MethodOption {
            name: "chunk",
            default: "4096",
            help: "tokens per call: chunk + prompt + output (lowered to the reading window)",
        },
        MethodOption {
            name: "map_tokens",
            default: "300",
            help: "output budget of each map and collapse call",
        },
        MethodOption {
            name: "workers",
            default: "auto",
            help: "map calls at once (auto: the backend's parallelism)",
        },
        MethodOption {
            name: "max_rounds",
            default: "5",
            help: "most collapse rounds before the least confident outputs are dropped",
        },
    ],
    run,
};

/// The sentinel of a chunk that says nothing about the question.
pub const NO_INFORMATION: &str = "[NO INFORMATION]";

const CALIBRATION: &str = "How to score confidence, an example. Text: \"The museum opened in \
1901 and was enlarged in 1954.\" Claims: \"The museum opened in 1901.\" — 5 (stated in the \
text). \"The museum is more than a century old.\" — 3.5 (a reasonable inference). \"The city \
founded the museum.\" — 0 (not supported). Give 5 only to an answer copied from the text, never \
to [NO INFORMATION], and at most 4.5 otherwise.";

const FIELDS: &str = "Reply in exactly this format:\nExtracted Information: ...\nRationale: \
...\nAnswer: ...\nConfidence Score: ...";

/// The map prompt for one chunk (`chunk` empty: its fixed part, for budgeting).
pub fn map_prompt(question: &str, chunk: &str) -> String {
    format!(
        "You are given one part of a longer text and a question about the whole text.\n\n\
         The part of the text:\n<text>\n{chunk}\n</text>\n\nQuestion: {question}\n\n\
         Instructions:\n\
         1. Extract the information in this part that is relevant to the question.\n\
         2. Explain your reasoning. Only this part of the text is visible to you.\n\
         3. Answer the question from this part. If it contains nothing relevant, answer \
         exactly {NO_INFORMATION}.\n\
         4. Give a confidence score from 0 to 5 for your answer.\n\n{CALIBRATION}\n\n{FIELDS}"
    )
}

/// The collapse prompt for a group of formatted map outputs.
pub fn collapse_prompt(question: &str, infos: &str) -> String {
    format!(
        "You are given information extracted from several parts of a long text, each with an \
         answer and a confidence score, and a question about the text.\n\n{infos}\n\
         Question: {question}\n\nInstructions:\n\
         1. Combine the extracted information, trusting higher confidence scores more.\n\
         2. Explain your reasoning.\n\
         3. Answer the question, or answer exactly {NO_INFORMATION} if nothing is relevant.\n\
         4. Give a confidence score from 0 to 5 informed by the scores you were given.\n\n\
         {CALIBRATION}\n\n{FIELDS}"
    )
}

/// The reduce prompt over every remaining output.
pub fn reduce_prompt(question: &str, infos: &str) -> String {
    format!(
        "You are given information extracted from several parts of a long text, each with an \
         answer and a confidence score, and a question about the text.\n\n{infos}\n\
         Question: {question}\n\nWhere the parts disagree, trust the answers with higher \
         confidence scores. Reply in exactly this format:\nRationale: ...\nAnswer: ..."
    )
}

/// Map outputs as the collapse and reduce prompts show them.
fn format_infos(outputs: &[String]) -> String {
    outputs
        .iter()
        .enumerate()
        .map(|(i, o)| format!("Information of Chunk {i}:\n{}\n", o.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text after the last `label` (up to `until`, if given), trimmed.
fn field<'a>(text: &'a str, label: &str, until: Option<&str>) -> Option<&'a str> {
    let start = text.rfind(label)? + label.len();
    let rest = &text[start..];
    let end = until.and_then(|u| rest.find(u)).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// The confidence a reply gives itself (0 when it gives none).
pub fn confidence(reply: &str) -> f64 {
    field(reply, "Confidence Score:", None)
        .and_then(|s| {
            let num: String = s
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            num.parse::<f64>().ok()
        })
        .map_or(0.0, |c| c.clamp(0.0, 5.0))
}

/// The answer of a reply: after the last `Answer:`, before any `Confidence Score:`; the whole
/// reply when it has no `Answer:` (small models drop the format).
pub fn answer_of(reply: &str) -> String {
    field(reply, "Answer:", Some("Confidence Score:"))
        .unwrap_or(reply.trim())
        .to_string()
}

fn says_nothing(reply: &str, question: &str) -> bool {
    !question.to_uppercase().contains(NO_INFORMATION)
        && answer_of(reply).to_uppercase().contains(NO_INFORMATION)
}

fn run(r: &mut Run<'_>) -> Result<String> {
    let question = r.query.question.clone();
    let map_tokens = r.options.positive("map_tokens")?.unwrap_or(300);
    let max_rounds = r.options.positive("max_rounds")?.unwrap_or(5);
    let mut chunk_size = r.options.positive("chunk")?.unwrap_or(4096);
    if let Some(window) = r.backend.reading_window() {
        chunk_size = chunk_size.min(window);
    }
    // The chat template adds a few dozen tokens; keep a margin for it.
    let overhead = r.count(&map_prompt(&question, ""))? + map_tokens + 64;
    let budget = chunk_size
        .checked_sub(overhead)
        .filter(|b| *b >= 64)
        .ok_or(PipelineError::WindowTooSmall {
            method: INFO.name,
            window: chunk_size,
            overhead,
        })?;
    r.answer.trace.options =
        format!("chunk={chunk_size},map_tokens={map_tokens},max_rounds={max_rounds}");
    let chunks = r.chunks(&r.query.joined_text(), budget)?;
    let prompts = chunks
        .iter()
        .map(|(c, _)| map_prompt(&question, c.trim()))
        .collect();
    let replies = r.ask_all("map", prompts, map_tokens)?;
    let mut kept = Vec::new();
    for (i, (reply, (_, n))) in replies.into_iter().zip(&chunks).enumerate() {
        let dropped = says_nothing(&reply, &question);
        r.answer.trace.push(
            "map",
            i,
            Some(*n),
            &reply,
            json!({"confidence": confidence(&reply), "dropped": dropped}),
        );
        if !dropped {
            kept.push(reply);
        }
    }
    if kept.is_empty() {
        return Ok(format!(
            "The document does not seem to answer this: every one of its {} parts was read and \
             none had relevant information.",
            chunks.len()
        ));
    }
    let kept = collapse(r, &question, kept, chunk_size, map_tokens, max_rounds)?;
    let infos = format_infos(&kept);
    let reply = r.ask(
        "reduce",
        reduce_prompt(&question, &infos),
        r.query.sampling.max_tokens,
        true,
    )?;
    r.answer.trace.push("reduce", 0, None, &reply, json!(null));
    Ok(answer_of(&reply))
}

/// Merges outputs group by group until they fit one reduce call.
fn collapse(
    r: &mut Run<'_>,
    question: &str,
    mut outputs: Vec<String>,
    chunk_size: usize,
    map_tokens: usize,
    max_rounds: usize,
) -> Result<Vec<String>> {
    let limit =
        chunk_size.saturating_sub(r.count(&collapse_prompt(question, ""))? + map_tokens + 64);
    for round in 0..max_rounds {
        if r.count(&format_infos(&outputs))? <= limit {
            return Ok(outputs);
        }
        // Consecutive groups whose formatted length fits the limit.
        let mut groups: Vec<Vec<String>> = Vec::new();
        let mut current: Vec<String> = Vec::new();
        for o in outputs {
            current.push(o);
            if current.len() > 1 && r.count(&format_infos(&current))? > limit {
                let last = current.pop().unwrap_or_default();
                groups.push(std::mem::take(&mut current));
                current.push(last);
            }
        }
        groups.push(current);
        let prompts = groups
            .iter()
            .map(|g| collapse_prompt(question, &format_infos(g)))
            .collect();
        let merged = r.ask_all("collapse", prompts, map_tokens)?;
        outputs = Vec::new();
        for (i, reply) in merged.into_iter().enumerate() {
            let dropped = says_nothing(&reply, question);
            r.answer.trace.push(
                "collapse",
                i,
                None,
                &reply,
                json!({"round": round, "confidence": confidence(&reply), "dropped": dropped}),
            );
            if !dropped {
                outputs.push(reply);
            }
        }
        if outputs.is_empty() {
            outputs.push(NO_INFORMATION.to_string());
        }
    }
    // Still too long after every round: keep the most confident outputs that fit.
    outputs.sort_by(|a, b| confidence(b).total_cmp(&confidence(a)));
    let mut kept = Vec::new();
    for o in outputs {
        kept.push(o);
        if r.count(&format_infos(&kept))? > limit && kept.len() > 1 {
            kept.pop();
            break;
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_replies_are_read_leniently() {
        let reply = "Extracted Information: the key is 123\nRationale: stated\nAnswer: 123\nConfidence Score: 4.5/5";
        assert_eq!(
            (answer_of(reply), confidence(reply)),
            ("123".to_string(), 4.5)
        );
        assert_eq!(answer_of("just 7"), "just 7");
        assert_eq!(confidence("Answer: x"), 0.0);
        assert_eq!(confidence("Confidence Score: 9"), 5.0);
        assert!(says_nothing(
            "Answer: [No Information]\nConfidence Score: 0",
            "q?"
        ));
        assert!(!says_nothing("Answer: 5", "q?"));
        assert!(!says_nothing(
            "Answer: [NO INFORMATION]",
            "Is [NO INFORMATION] a sentinel?"
        ));
        assert_eq!(
            format_infos(&["a".into(), "b\n".into()]),
            "Information of Chunk 0:\na\n\nInformation of Chunk 1:\nb\n"
        );
    }
}
