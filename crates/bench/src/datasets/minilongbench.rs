//! LongBench (v1) tasks from MiniLongBench (`minilongbench/<dataset>.jsonl`): the prompts are
//! LongBench's per-task templates already rendered by MiniLongBench, used verbatim.
//!
//! Per task, as LongBench's `pred.py`/`eval.py` and `config/dataset2maxlen.json` (THUDM/LongBench
//! `LongBench/`): metric (`dataset2metric`), `max_new_tokens`, and whether the prompt goes
//! through the chat template (not for trec, triviaqa, samsum, lsht, lcc, repobench-p).
//! Truncation is LongBench's middle truncation. `question` is cut out of the rendered prompt
//! between the template's question cue and its answer cue (empty for tasks without a
//! question: summaries, passage_count, code). `meta.length` is the length of the rendered
//! prompt the way LongBench counts context length (whitespace words for English and code,
//! characters for Chinese) — MiniLongBench does not ship the context alone, so this is not
//! LongBench's own `length` field; `meta.language` is `en`, `zh` or `code`.

use std::path::Path;

use serde_json::json;

use super::util::{build_or_skip, join, read_jsonl, require_dir, Record};
use super::{DatasetError, LoadOptions, Loaded};
use crate::metrics::Metric;
use crate::sample::{Sample, Truncation};
use crate::task::{Source, Task};

/// One LongBench task's settings.
#[derive(Clone, Copy, Debug)]
pub struct TaskSpec {
    pub dataset: &'static str,
    pub metric: Metric,
    pub max_new_tokens: usize,
    pub chat: bool,
    pub language: &'static str,
    /// `(start, end)`: the question is the text after the last `start` and before `end`
    /// (searched after the start); `None` when the task has no question.
    pub question_cues: Option<(&'static str, &'static str)>,
}

const fn spec(
    dataset: &'static str,
    metric: Metric,
    max_new_tokens: usize,
    chat: bool,
    language: &'static str,
    question_cues: Option<(&'static str, &'static str)>,
) -> TaskSpec {
    TaskSpec {
        dataset,
        metric,
        max_new_tokens,
        chat,
        language,
        question_cues,
    }
}

const QA_EN: Option<(&str, &str)> = Some(("\n\nQuestion: ", "\nAnswer:"));

/// The 21 LongBench tasks in LongBench's order.
pub const SPECS: [TaskSpec; 21] = [
    spec(
        "narrativeqa",
        Metric::QaF1,
        128,
        true,
        "en",
        Some(("\n\nQuestion: ", "\n\nAnswer:")),
    ),
    spec("qasper", Metric::QaF1, 128, true, "en", QA_EN),
    spec("multifieldqa_en", Metric::QaF1, 64, true, "en", QA_EN),
    spec(
        "multifieldqa_zh",
        Metric::QaF1Zh,
        64,
        true,
        "zh",
        Some(("\n\n问题：", "\n回答：")),
    ),
    spec("hotpotqa", Metric::QaF1, 32, true, "en", QA_EN),
    spec("2wikimqa", Metric::QaF1, 32, true, "en", QA_EN),
    spec("musique", Metric::QaF1, 32, true, "en", QA_EN),
    spec(
        "dureader",
        Metric::RougeLZh,
        128,
        true,
        "zh",
        Some(("\n\n问题：", "\n回答：")),
    ),
    spec("gov_report", Metric::RougeL, 512, true, "en", None),
    spec(
        "qmsum",
        Metric::RougeL,
        512,
        true,
        "en",
        Some(("\n\nQuery: ", "\nAnswer:")),
    ),
    spec("multi_news", Metric::RougeL, 512, true, "en", None),
    spec("vcsum", Metric::RougeLZh, 512, true, "zh", None),
    spec(
        "trec",
        Metric::Classification,
        64,
        false,
        "en",
        Some(("\nQuestion: ", "\nType:")),
    ),
    spec(
        "triviaqa",
        Metric::QaF1,
        32,
        false,
        "en",
        Some(("Question:\n", "\nAnswer:")),
    ),
    spec(
        "samsum",
        Metric::RougeL,
        128,
        false,
        "en",
        Some(("\n\nDialogue: ", "\nSummary:")),
    ),
    spec(
        "lsht",
        Metric::Classification,
        64,
        false,
        "zh",
        Some(("新闻内容：\n", "\n类别：")),
    ),
    spec("passage_count", Metric::Count, 32, true, "en", None),
    spec(
        "passage_retrieval_en",
        Metric::Retrieval,
        32,
        true,
        "en",
        Some((
            "The following is an abstract.\n\n",
            "\n\nPlease enter the number",
        )),
    ),
    spec(
        "passage_retrieval_zh",
        Metric::RetrievalZh,
        32,
        true,
        "zh",
        Some(("下面是一个摘要\n\n", "\n\n请输入摘要所属段落的编号")),
    ),
    spec("lcc", Metric::CodeSim, 64, false, "code", None),
    spec("repobench-p", Metric::CodeSim, 64, false, "code", None),
];

macro_rules! entry {
    ($i:expr, $name:literal) => {
        Task {
            name: concat!("longbench/", $name),
            summary: concat!(
                "LongBench v1 ",
                $name,
                " (MiniLongBench subset, rendered prompts)"
            ),
            metric: SPECS[$i].metric,
            source: Source::Load(load_task),
        }
    };
}

/// Registry entries, `longbench/<dataset>`.
pub const TASKS: &[Task] = &[
    entry!(0, "narrativeqa"),
    entry!(1, "qasper"),
    entry!(2, "multifieldqa_en"),
    entry!(3, "multifieldqa_zh"),
    entry!(4, "hotpotqa"),
    entry!(5, "2wikimqa"),
    entry!(6, "musique"),
    entry!(7, "dureader"),
    entry!(8, "gov_report"),
    entry!(9, "qmsum"),
    entry!(10, "multi_news"),
    entry!(11, "vcsum"),
    entry!(12, "trec"),
    entry!(13, "triviaqa"),
    entry!(14, "samsum"),
    entry!(15, "lsht"),
    entry!(16, "passage_count"),
    entry!(17, "passage_retrieval_en"),
    entry!(18, "passage_retrieval_zh"),
    entry!(19, "lcc"),
    entry!(20, "repobench-p"),
];

/// The settings of a LongBench dataset by its name (`hotpotqa`).
pub fn spec_for(dataset: &str) -> Option<&'static TaskSpec> {
    SPECS.iter().find(|s| s.dataset == dataset)
}

/// The question inside a rendered prompt, by the task's cues (empty when not found).
pub fn extract_question(prompt: &str, spec: &TaskSpec) -> String {
    let Some((start, end)) = spec.question_cues else {
        return String::new();
    };
    let Some(pos) = prompt.rfind(start) else {
        return String::new();
    };
    let rest = &prompt[pos + start.len()..];
    match rest.find(end) {
        Some(e) => rest[..e].trim().to_string(),
        None => String::new(),
    }
}

/// LongBench's length unit: characters for Chinese, whitespace-separated words otherwise.
fn longbench_length(text: &str, language: &str) -> usize {
    if language == "zh" {
        text.chars().count()
    } else {
        text.split_whitespace().count()
    }
}

fn load_task(info: &Task, root: &Path, options: &LoadOptions) -> Result<Loaded, DatasetError> {
    let dataset = info.short_name();
    let spec = spec_for(dataset).ok_or_else(|| DatasetError::UnknownTask {
        name: info.name.to_string(),
        known: TASKS.iter().map(|t| t.name).collect::<Vec<_>>().join(", "),
    })?;
    let dir = join(root, &["minilongbench"]);
    require_dir(&dir)?;
    let path = dir.join(format!("{dataset}.jsonl"));
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
            Ok(Sample {
                id: rec.str("id")?.to_string(),
                task: info.name.to_string(),
                question: extract_question(&prompt, spec),
                chat: spec.chat,
                answer_prefix: String::new(),
                truncation: Truncation::MiddleTokens,
                answers: rec.str_list("answers")?,
                all_classes: rec.opt_str_list("all_classes")?,
                metric: spec.metric,
                max_new_tokens: spec.max_new_tokens,
                meta: json!({
                    "dataset": dataset,
                    "length": longbench_length(&prompt, spec.language),
                    "length_unit": if spec.language == "zh" { "chars" } else { "words" },
                    "language": spec.language,
                    "first_line_only": !spec.chat && spec.language != "code",
                }),
                prompt,
            })
        })?;
        loaded.samples.extend(sample);
    }
    Ok(loaded)
}
