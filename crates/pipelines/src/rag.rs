//! `rag`: LongRAG-style retrieval. The document is split into retrieval units (sentences
//! grouped up to `unit` tokens), each scored against the question with BM25; the best units
//! are kept, in document order, up to a token budget, and answered as `direct` would answer
//! the whole document.

use serde_json::json;

use crate::bm25::Bm25;
use crate::direct;
use crate::{MethodInfo, MethodOption, PipelineError, Result, Run};

pub const INFO: MethodInfo = MethodInfo {
    name: "rag",
    summary: "retrieval: BM25 over sentence-grouped units, the best kept in document order up to a budget, then answered",
    options: &[
        MethodOption {
            name: "unit",
            default: "200",
            help: "tokens per retrieval unit (sentences grouped)",
        },
        MethodOption {
            name: "budget",
            default: "2048",
            help: "tokens of retrieved text given to the reader (lowered to the reading window)",
        },
    ],
    run,
};

/// Marks the gap between two retrieved units that were not adjacent in the document.
const GAP: &str = "\n[...]\n";

fn run(r: &mut Run<'_>) -> Result<String> {
    let question = r.query.question.clone();
    let unit = r.options.positive("unit")?.unwrap_or(200);
    let mut budget = r.options.positive("budget")?.unwrap_or(2048);
    if let Some(window) = r.backend.reading_window() {
        let overhead =
            r.count(&direct::prompt_for("", &question))? + r.query.sampling.max_tokens + 64;
        let room = window.saturating_sub(overhead);
        if room < unit.min(64) {
            return Err(PipelineError::WindowTooSmall {
                method: INFO.name,
                window,
                overhead,
            });
        }
        budget = budget.min(room);
    }
    r.answer.trace.options = format!("unit={unit},budget={budget}");
    let units = r.chunks(&r.query.joined_text(), unit)?;
    let scores =
        Bm25::new(&units.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>()).scores(&question);
    let mut order: Vec<usize> = (0..units.len()).collect();
    // Best first; equal scores keep document order.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    // Units the question shares no term with still fill the budget (best-scored first, then
    // document order): measured on the needle probe, a reader with some context around the
    // match answered 12/18, one with the matching units alone 10/18.
    let mut chosen = Vec::new();
    let mut used = 0;
    for i in order {
        let n = units[i].1 + 3; // the gap marker's tokens, roughly
        if used + n > budget {
            continue;
        }
        used += n;
        chosen.push(i);
    }
    chosen.sort_unstable();
    for (rank, &i) in chosen.iter().enumerate() {
        r.answer.trace.push(
            "retrieve",
            i,
            Some(units[i].1),
            &units[i].0,
            json!({"score": scores[i], "position": rank}),
        );
    }
    r.step("retrieve", 1, 1)?;
    let mut context = String::new();
    for (k, &i) in chosen.iter().enumerate() {
        if k > 0 && chosen[k - 1] + 1 != i {
            context.push_str(GAP);
        }
        context.push_str(&units[i].0);
    }
    let answer = r.ask(
        "answer",
        direct::prompt_for(context.trim(), &question),
        r.query.sampling.max_tokens,
        true,
    )?;
    r.answer
        .trace
        .push("answer", 0, Some(used), &answer, serde_json::Value::Null);
    Ok(answer)
}
