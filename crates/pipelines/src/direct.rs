//! `direct`: the whole document and the question in one call, through whatever KV policy the
//! backend runs (the baseline every other method is measured against).

use serde_json::Value;

use crate::{MethodInfo, Query, Result, Run};

pub const INFO: MethodInfo = MethodInfo {
    name: "direct",
    summary: "the whole document in one call, through the backend's KV policy (the baseline)",
    options: &[],
    run,
};

/// The user message: the document, then the question (what `longctx ask` always sent).
pub fn prompt(query: &Query) -> String {
    prompt_for(&query.joined_text(), &query.question)
}

/// The user message for `text` and `question`.
pub fn prompt_for(text: &str, question: &str) -> String {
    format!("{text}\n\nAnswer the question about the document above.\nQuestion: {question}")
}

fn run(r: &mut Run<'_>) -> Result<String> {
    let answer = r.ask("answer", prompt(r.query), r.query.sampling.max_tokens, true)?;
    r.answer.trace.push("answer", 0, None, &answer, Value::Null);
    Ok(answer)
}
