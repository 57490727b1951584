//! The benchmark data model shared by generators, dataset loaders, the runner and metrics:
//! one [`Sample`] is one prompt with its reference answers and the [`Metric`] that scores it
//! (the scoring itself is in `metrics`).

use serde::{Deserialize, Serialize};

/// How a prompt longer than the model's window is shortened, as the benchmark's upstream
/// code does it (methods reference Part D2). The runner records the choice with each result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Truncation {
    /// Never shorten: a prompt that does not fit is an error for that sample (synthetic tasks
    /// are generated to fit their target length).
    None,
    /// LongBench: keep the first and last `max/2` tokens of the prompt, decoded separately.
    MiddleTokens,
    /// L-Eval: drop words from the end of the document until it fits.
    HeadWords,
}

/// One benchmark prompt with everything needed to run and score it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Stable within its task (dataset `_id`, or the generator's case key).
    pub id: String,
    /// Registry name of the task, e.g. `ruler/niah_single_1` or `longbench/hotpotqa`.
    pub task: String,
    /// The text the model reads: the user turn when `chat`, otherwise the raw completion
    /// prompt.
    pub prompt: String,
    /// Wrap `prompt` in the model's chat template (false for LongBench's few-shot tasks and
    /// other raw-completion prompts).
    pub chat: bool,
    /// Text the answer starts with, placed after the assistant header (RULER's
    /// `answer_prefix`, passkey's cue); empty when none.
    pub answer_prefix: String,
    /// The question or instruction alone, for policies that use it (CItruS) and for
    /// pipelines; empty when the task has none.
    pub question: String,
    pub truncation: Truncation,
    /// Reference answers; a metric takes the best score over them unless it says otherwise.
    pub answers: Vec<String>,
    /// Label set of classification tasks (LongBench `all_classes`); empty otherwise.
    pub all_classes: Vec<String>,
    pub metric: Metric,
    pub max_new_tokens: usize,
    /// Task-specific facts: target length, depth, needle count, dataset length, language…
    pub meta: serde_json::Value,
}

/// How a task's outputs are scored. Names follow the upstream code they port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The first integer in the output equals the answer ([`crate::metrics::first_integer_eq`]); passkey.
    FirstIntegerEq,
    /// LongBench `qa_f1_score`: token F1 after SQuAD normalisation.
    QaF1,
    /// LongBench `qa_f1_zh_score`: character/word F1 over jieba tokens.
    QaF1Zh,
    /// LongBench `rouge_score`: ROUGE-L F of the `rouge` package.
    RougeL,
    /// LongBench `rouge_zh_score`: ROUGE-L over jieba-segmented text.
    RougeLZh,
    /// LongBench `classification_score`.
    Classification,
    /// LongBench `retrieval_score` (passage_retrieval_en).
    Retrieval,
    /// LongBench `retrieval_zh_score`.
    RetrievalZh,
    /// LongBench `count_score` (passage_count).
    Count,
    /// LongBench `code_sim_score`: fuzz.ratio over the first code line.
    CodeSim,
    /// Normalised exact match.
    ExactMatch,
    /// RULER `string_match_all`: share of references found in the output.
    StringMatchAll,
    /// RULER `string_match_part`: 1 if any reference is found.
    StringMatchPart,
    /// Multiple choice: the chosen letter (A–D) equals the answer (LongBench v2 extraction).
    ChoiceLetter,
    /// L-Eval closed-ended exam scoring (exact match / option letters / numbers per task).
    LEvalExam,
    /// L-Eval open-ended F1.
    LEvalF1,
    /// L-Eval open-ended ROUGE-L.
    LEvalRouge,
    /// LongBench-Write length score S_l.
    LengthScore,
    /// LongProc's rule-based scorer of the sample's task (named in `meta.longproc_task`).
    LongProc,
    /// LongGenBench's rule-based completion check.
    LongGenBench,
    /// NeedleBench V2: the last `\boxed{}` answer, cleaned as OpenCompass does, equals the
    /// answer.
    BoxedExact,
    /// Needle Threading: the output (parsed as a Python string or list) starts with the answer.
    ThreadingPrefix,
}

impl Metric {
    /// The metric's name as it appears in reports (the upstream function's name).
    pub fn name(self) -> &'static str {
        match self {
            Metric::FirstIntegerEq => "first_integer_eq",
            Metric::QaF1 => "qa_f1_score",
            Metric::QaF1Zh => "qa_f1_zh_score",
            Metric::RougeL => "rouge_score",
            Metric::RougeLZh => "rouge_zh_score",
            Metric::Classification => "classification_score",
            Metric::Retrieval => "retrieval_score",
            Metric::RetrievalZh => "retrieval_zh_score",
            Metric::Count => "count_score",
            Metric::CodeSim => "code_sim_score",
            Metric::ExactMatch => "exact_match",
            Metric::StringMatchAll => "string_match_all",
            Metric::StringMatchPart => "string_match_part",
            Metric::ChoiceLetter => "choice_letter",
            Metric::LEvalExam => "leval_exam",
            Metric::LEvalF1 => "leval_f1",
            Metric::LEvalRouge => "leval_rouge",
            Metric::LengthScore => "length_score",
            Metric::LongProc => "longproc",
            Metric::LongGenBench => "longgenbench",
            Metric::BoxedExact => "boxed_exact",
            Metric::ThreadingPrefix => "threading_prefix",
        }
    }
}
