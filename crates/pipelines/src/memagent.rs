//! `memagent`: MemAgent's overwrite memory. The document is read chunk by chunk; after each
//! chunk the model rewrites a bounded memory given the question, the previous memory and the
//! chunk (the whole reply becomes the new memory); the answer comes from the memory alone.
//! Prompt structure after the paper's repo (`recurrent.py`): an instruction to keep old
//! relevant details, then `<problem>`, `<memory>`, `<section>` and an "Updated memory:" cue.

use serde_json::json;

use crate::{MethodInfo, MethodOption, PipelineError, Result, Run};

pub const INFO: MethodInfo = MethodInfo {
    name: "memagent",
    summary: "MemAgent: read chunk by chunk, overwrite a bounded memory each step, answer from the memory",
    options: &[
        MethodOption {
            name: "chunk",
            default: "5000",
            help: "tokens of document per step (lowered to what fits the reading window)",
        },
        MethodOption {
            name: "memory",
            default: "1024",
            help: "most tokens of memory (each rewrite's output budget)",
        },
    ],
    run,
};

const NO_MEMORY: &str = "No previous memory";

/// The prompt of one memory update (`chunk` empty: its fixed part, for budgeting).
pub fn update_prompt(question: &str, memory: &str, chunk: &str) -> String {
    format!(
        "You are given a problem, a section of an article that may contain the answer to the \
         problem, and a previous memory. Read the section and update the memory with the new \
         information that helps to answer the problem, while keeping every relevant detail of \
         the previous memory. Write only the updated memory.\n\n\
         <problem>\n{question}\n</problem>\n\n<memory>\n{memory}\n</memory>\n\n\
         <section>\n{chunk}\n</section>\n\nUpdated memory:"
    )
}

/// The prompt of the final answer.
pub fn answer_prompt(question: &str, memory: &str) -> String {
    format!(
        "You are given a problem and your memory of an article you read. Answer the problem \
         from the memory, directly and concisely.\n\n\
         <problem>\n{question}\n</problem>\n\n<memory>\n{memory}\n</memory>\n\nAnswer:"
    )
}

/// Reasoning models put their thinking before `</think>`; the memory is what follows.
fn strip_thinking(text: &str) -> &str {
    text.rsplit_once("</think>")
        .map_or(text, |(_, after)| after)
        .trim()
}

fn run(r: &mut Run<'_>) -> Result<String> {
    let question = r.query.question.clone();
    let memory_budget = r.options.positive("memory")?.unwrap_or(1024);
    let wanted = r.options.positive("chunk")?.unwrap_or(5000);
    let overhead = r.count(&update_prompt(&question, "", ""))? + memory_budget;
    let chunk = match r.backend.reading_window() {
        // The chat template adds a few dozen tokens; keep a margin for it.
        Some(window) => {
            let room = window.saturating_sub(overhead + memory_budget + 64);
            if room < 64 {
                return Err(PipelineError::WindowTooSmall {
                    method: INFO.name,
                    window,
                    overhead: overhead + memory_budget,
                });
            }
            wanted.min(room)
        }
        None => wanted,
    };
    r.answer.trace.options = format!("chunk={chunk},memory={memory_budget}");
    let chunks = r.chunks(&r.query.joined_text(), chunk)?;
    let mut memory = NO_MEMORY.to_string();
    let total = chunks.len();
    for (i, (c, n)) in chunks.iter().enumerate() {
        let prompt = update_prompt(&question, &memory, c.trim());
        let reply = r.ask(
            &format!("memory {}/{total}", i + 1),
            prompt,
            memory_budget,
            false,
        )?;
        let new = strip_thinking(&reply);
        // An empty rewrite would lose everything read so far: keep the old memory.
        if !new.is_empty() {
            memory = new.to_string();
        }
        r.answer.trace.push(
            "memory",
            i,
            Some(*n),
            &memory,
            json!({"empty_reply": new.is_empty()}),
        );
        r.step("memory", i + 1, total)?;
    }
    let reply = r.ask(
        "answer",
        answer_prompt(&question, &memory),
        r.query.sampling.max_tokens,
        true,
    )?;
    r.answer
        .trace
        .push("answer", 0, None, &reply, serde_json::Value::Null);
    Ok(extract_answer(&reply))
}

/// MemAgent's eval asks for "the answer is X"; when the model says so, that is the answer.
fn extract_answer(reply: &str) -> String {
    let lower = reply.to_lowercase();
    match lower.rfind("the answer is") {
        Some(i) => reply[i + "the answer is".len()..]
            .trim()
            .trim_end_matches('.')
            .trim_matches('*')
            .trim()
            .to_string(),
        None => reply.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_thinking_are_extracted() {
        assert_eq!(extract_answer("So, the answer is **42**."), "42");
        assert_eq!(extract_answer("Paris"), "Paris");
        assert_eq!(strip_thinking("<think>hmm</think>\nMemory: x"), "Memory: x");
    }
}
