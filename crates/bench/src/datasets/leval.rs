//! L-Eval tasks (`leval/closed-ended/*.jsonl`, `leval/open-ended/*.jsonl`): one sample per
//! (instruction, reference) pair of each document.
//!
//! Prompts follow L-Eval's Llama-2 baseline (`Baselines/llama2-chat-test.py` with
//! `LEval_config.get_sys_prompt`, OpenLMLab/LEval): the task's system prompt, then
//! - gsm100 and topic_retrieval_longchat: `document + "\n\n" + instruction`;
//! - other closed-ended (exam) tasks: `Document is as follows. {document} \nQuestion: {inst}.
//!   Please directly give the answer without any additional output or explanation `, with the
//!   answer cue `Answer:` after the assistant header ([`Sample::answer_prefix`]);
//! - open-ended tasks: `Document is as follows. {document} Instruction: {inst} \nAnswer this
//!   question with N words.` with N the reference's whitespace word count (the
//!   length-instruction-enhanced protocol).
//!
//! [`Sample`] has no system turn, so the system prompt opens the user turn, separated by a
//! blank line (upstream puts it in the Llama-2 `<<SYS>>` block of the same `[INST]`).
//! Upstream substitutes with `str.format`, which silently skips substitution when the
//! document contains braces; here the text is always substituted.
//! Metric: `LEvalExam` for closed-ended tasks; for open-ended ones `LEvalF1` for the QA tasks
//! and `LEvalRouge` for the summarisation/writing tasks (upstream's `f1`/`rouge` configs; the
//! record's own `evaluation` tag, which may be `LLM` or `human`, is kept in
//! `meta.evaluation`). Truncation: head words (codeU, which keeps the tail, is not in the
//! data). `max_new_tokens` 512.

use std::path::Path;

use serde_json::json;

use super::util::{build_or_skip, join, read_jsonl, require_dir, Record};
use super::{DatasetError, LoadOptions, Loaded};
use crate::metrics::Metric;
use crate::sample::{Sample, Truncation};
use crate::task::{Source, Task};

/// L-Eval's generation budget.
pub const MAX_NEW_TOKENS: usize = 512;

macro_rules! closed {
    ($name:literal) => {
        Task {
            name: concat!("leval/", $name),
            summary: concat!("L-Eval closed-ended ", $name, " (subset)"),
            metric: Metric::LEvalExam,
            source: Source::Load(load_task),
        }
    };
}
macro_rules! open {
    ($name:literal, $metric:expr) => {
        Task {
            name: concat!("leval/", $name),
            summary: concat!("L-Eval open-ended ", $name, " (subset)"),
            metric: $metric,
            source: Source::Load(load_task),
        }
    };
}

/// The closed-ended task names present in the data.
pub const CLOSED_ENDED: [&str; 6] = [
    "coursera",
    "gsm100",
    "quality",
    "sci_fi",
    "topic_retrieval_longchat",
    "tpo",
];

/// Registry entries, `leval/<task>`.
pub const TASKS: &[Task] = &[
    closed!("coursera"),
    closed!("gsm100"),
    closed!("quality"),
    closed!("sci_fi"),
    closed!("topic_retrieval_longchat"),
    closed!("tpo"),
    open!("financial_qa", Metric::LEvalF1),
    open!("gov_report_summ", Metric::LEvalRouge),
    open!("legal_contract_qa", Metric::LEvalF1),
    open!("meeting_summ", Metric::LEvalRouge),
    open!("multidoc_qa", Metric::LEvalF1),
    open!("natural_question", Metric::LEvalF1),
    open!("news_summ", Metric::LEvalRouge),
    open!("paper_assistant", Metric::LEvalRouge),
    open!("patent_summ", Metric::LEvalRouge),
    open!("review_summ", Metric::LEvalRouge),
    open!("scientific_qa", Metric::LEvalF1),
    open!("tv_show_summ", Metric::LEvalRouge),
];

/// L-Eval's system prompt for a task (`get_sys_prompt`; closed-ended tasks use the exam
/// protocol's prompts, open-ended ones the n-gram protocol's).
pub fn system_prompt(task: &str) -> &'static str {
    match task {
        "gsm100" => "Given several question answer pairs, you need to follow a similar format to answer the last question. Make sure the response is end with The answer is _ . ",
        "topic_retrieval_longchat" => "Below is a record of our previous conversation on many different topics. You are the ASSISTANT, and I am the USER. At the beginning of each topic, the USER will say 'I would like to discuss the topic of <TOPIC>'. Memorize each <TOPIC>. At the end of the record, I will ask you to retrieve the first/second/third topic names. Now the record start. ",
        "coursera" => "Now you are given a very long document. Please follow the instruction based on this document. For multi-choice questions, there could be a sinlge correct option or multiple correct options. Please only provide the letter corresponding to the answer (like A or AB) when answering. ",
        "codeU" => "Now you are given a code base consisting of a large amount of functions and the corresponding comments. In the end, I will call some functions defined in the code base. Please carefully read these codes and comments and answer the question.",
        "sci_fi" => "Now you are given a scientific fiction. I will ask you some questions and the answer should be \"True\" or \"False\". Notice that you should answer the question based on the evidence in the document instead of your background knowledge.",
        t if CLOSED_ENDED.contains(&t) => "Now you are given a very long document. Please follow the instruction based on this document. For multi-choice questions, there is only a sinlge correct option. Please only provide the letter corresponding to the answer (like A or B) when answering. For other questions, please directly give the concise and accurate answer. ",
        _ => "Now you are given a very long document. Please follow the instruction after this document. These instructions may include summarizing a document, answering questions based on the document, or writing a required paragraph. ",
    }
}

/// The user turn for one instruction, and the answer prefix (see the module docs).
pub fn build_prompt(
    task: &str,
    document: &str,
    instruction: &str,
    reference: &str,
) -> (String, String) {
    let sys = system_prompt(task);
    if task == "gsm100" || task == "topic_retrieval_longchat" || task == "codeU" {
        (
            format!("{sys}\n\n{document}\n\n{instruction}"),
            String::new(),
        )
    } else if CLOSED_ENDED.contains(&task) {
        (
            format!("{sys}\n\nDocument is as follows. {document} \nQuestion: {instruction}.  Please directly give the answer without any additional output or explanation "),
            "Answer:".to_string(),
        )
    } else {
        let words = reference.split_whitespace().count();
        (
            format!("{sys}\n\nDocument is as follows. {document} Instruction: {instruction} \nAnswer this question with {words} words."),
            String::new(),
        )
    }
}

fn load_task(info: &Task, root: &Path, options: &LoadOptions) -> Result<Loaded, DatasetError> {
    let task = info.short_name();
    let closed = CLOSED_ENDED.contains(&task);
    let dir = join(
        root,
        &["leval", if closed { "closed-ended" } else { "open-ended" }],
    );
    require_dir(&dir)?;
    let path = dir.join(format!("{task}.jsonl"));
    let mut loaded = Loaded::default();
    let rows = read_jsonl(&path, options, &mut loaded.skipped)?;
    for (line, obj) in rows {
        let rec = Record {
            path: &path,
            at: format!("line {line}"),
            obj: &obj,
        };
        let samples = build_or_skip(options, &mut loaded.skipped, &path, line, || {
            let document = rec.str("input")?;
            let instructions = rec.str_list("instructions")?;
            let outputs = rec.str_list("outputs")?;
            if instructions.len() != outputs.len() {
                return Err(rec.err(
                    "outputs",
                    format!(
                        "{} references for {} instructions",
                        outputs.len(),
                        instructions.len()
                    ),
                ));
            }
            let evaluation = rec.str("evaluation")?;
            let source = rec.opt_str("source")?;
            let mut out = Vec::with_capacity(instructions.len());
            for (k, (inst, reference)) in instructions.iter().zip(&outputs).enumerate() {
                let (prompt, answer_prefix) = build_prompt(task, document, inst, reference);
                out.push(Sample {
                    id: format!("{task}-{line}-{k}"),
                    task: info.name.to_string(),
                    prompt,
                    chat: true,
                    answer_prefix,
                    question: inst.clone(),
                    truncation: Truncation::HeadWords,
                    answers: vec![reference.clone()],
                    all_classes: Vec::new(),
                    metric: info.metric,
                    max_new_tokens: MAX_NEW_TOKENS,
                    meta: json!({
                        "leval_task": task,
                        "evaluation": evaluation,
                        "source": source,
                        "document_line": line,
                        "instruction_index": k,
                        "document_words": document.split_whitespace().count(),
                    }),
                });
            }
            Ok(out)
        })?;
        loaded.samples.extend(samples.into_iter().flatten());
    }
    Ok(loaded)
}
