//! Scoring functions of the benchmarks, each returning a score in `0.0..=1.0`, and
//! [`Metric::score_sample`], which dispatches a [`Metric`] (named in `sample`, so that samples
//! carry it without depending on the scorers) to them. All scoring lives here.
//!
//! Each submodule ports one upstream scorer bit for bit (golden fixtures from the Python
//! originals are in `tests/fixtures/metrics/`):
//! - [`longbench`]: LongBench v1 `metrics.py` (F1, ROUGE-L via [`rouge_pltrdy`],
//!   classification, retrieval, count, code similarity via [`difflib`]); Chinese text is
//!   segmented by [`segment`] (jieba);
//! - [`ruler`]: RULER `string_match_all` / `string_match_part`;
//! - [`choice`]: LongBench v2 answer extraction;
//! - [`leval`]: L-Eval exam, F1 and ROUGE (`rouge_score`);
//! - [`longwrite`]: LongBench-Write length score;
//! - [`longproc`], [`longgenbench`]: LongProc's and LongGenBench's rule-based scorers;
//! - [`needlebench`]: NeedleBench V2's `\boxed{}` answer match; [`threading`]: Needle
//!   Threading's literal prefix match.
//!
//! [`Metric::score_sample`] reads these `Sample::meta` keys:
//! - `dataset` (string, optional): the LongBench dataset; `trec`, `triviaqa`, `samsum` and
//!   `lsht` keep only the prediction's first line. Without it, the last `/`-separated part
//!   of `Sample::task` is used (`longbench/trec` → `trec`).
//! - `leval_task` (string, optional): the L-Eval task for [`Metric::LEvalExam`] (`coursera`,
//!   `quality`, `tpo`, `gsm100`, `codeU`, `sci_fi`, `topic_retrieval_longchat`…); without it,
//!   the last part of `Sample::task`.
//! - `length` (number, required by [`Metric::LengthScore`]): LongBench-Write's required
//!   output length.

pub mod choice;
pub mod difflib;
pub mod leval;
pub mod longbench;
pub mod longgenbench;
pub mod longproc;
pub mod longwrite;
pub mod needlebench;
pub mod py;
pub mod rouge_pltrdy;
pub mod ruler;
pub mod segment;
pub mod threading;

pub use crate::sample::Metric;
use crate::sample::{Sample, Truncation};

/// Errors from scoring.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error("metric '{0}' is not implemented yet")]
    NotImplemented(&'static str),
    #[error("sample '{sample}': {reason}")]
    BadSample { sample: String, reason: String },
}

impl Metric {
    /// Scores one output against a single reference answer, in `0.0..=1.0`: a sample with
    /// that one answer, no class list and no meta (the task taken from nothing), scored by
    /// [`Metric::score_sample`]. Metrics that need more (classification's label set,
    /// LongBench-Write's required length) return [`MetricError::BadSample`].
    pub fn score(self, output: &str, answer: &str) -> Result<f64, MetricError> {
        let sample = Sample {
            id: String::new(),
            task: String::new(),
            prompt: String::new(),
            chat: false,
            answer_prefix: String::new(),
            question: String::new(),
            truncation: Truncation::None,
            answers: vec![answer.to_string()],
            all_classes: Vec::new(),
            metric: self,
            max_new_tokens: 0,
            meta: serde_json::Value::Null,
        };
        self.score_sample(output, &sample)
    }

    /// Scores a prediction for a sample, in `0.0..=1.0`, the way the upstream code does
    /// (e.g. the best score over the sample's answers for LongBench). The meta keys read are
    /// listed in the [module documentation](self).
    pub fn score_sample(self, prediction: &str, sample: &Sample) -> Result<f64, MetricError> {
        let bad = |reason: String| MetricError::BadSample {
            sample: sample.id.clone(),
            reason,
        };
        let best = |f: &dyn Fn(&str, &str) -> f64, pred: &str| {
            sample
                .answers
                .iter()
                .map(|a| f(pred, a))
                .fold(0.0, f64::max)
        };
        // LongBench's eval.py: few-shot tasks keep the first line only.
        let longbench_prediction = || {
            let dataset = meta_str(sample, "dataset").unwrap_or_else(|| task_leaf(sample));
            let dataset = dataset.strip_suffix("_e").unwrap_or(dataset);
            if longbench::FIRST_LINE_DATASETS.contains(&dataset) {
                longbench::first_line(prediction)
            } else {
                prediction
            }
        };
        let need_answers = || {
            if sample.answers.is_empty() {
                Err(bad("no reference answers".to_string()))
            } else {
                Ok(())
            }
        };
        match self {
            Metric::FirstIntegerEq => Ok(best(&first_integer_eq, prediction)),
            Metric::QaF1 => Ok(best(&longbench::qa_f1_score, longbench_prediction())),
            Metric::QaF1Zh => Ok(best(&longbench::qa_f1_zh_score, longbench_prediction())),
            Metric::RougeL => Ok(best(&longbench::rouge_score, longbench_prediction())),
            Metric::RougeLZh => Ok(best(&longbench::rouge_zh_score, longbench_prediction())),
            Metric::Classification => {
                if sample.all_classes.is_empty() {
                    return Err(bad("classification needs all_classes".to_string()));
                }
                let classes = &sample.all_classes;
                Ok(best(
                    &|p, a| longbench::classification_score(p, a, classes),
                    longbench_prediction(),
                ))
            }
            Metric::Retrieval | Metric::RetrievalZh => {
                let f = if self == Metric::Retrieval {
                    longbench::retrieval_score
                } else {
                    longbench::retrieval_zh_score
                };
                let pred = longbench_prediction();
                let mut score = 0.0f64;
                for a in &sample.answers {
                    let s = f(pred, a)
                        .ok_or_else(|| bad(format!("answer {a:?} names no paragraph")))?;
                    score = score.max(s);
                }
                Ok(score)
            }
            Metric::Count => Ok(best(&longbench::count_score, longbench_prediction())),
            Metric::CodeSim => Ok(best(&longbench::code_sim_score, longbench_prediction())),
            Metric::ExactMatch => Ok(best(&longbench::exact_match, prediction)),
            Metric::StringMatchAll => ruler::string_match_all(prediction, &sample.answers)
                .ok_or_else(|| bad("no reference answers".to_string())),
            Metric::StringMatchPart => ruler::string_match_part(prediction, &sample.answers)
                .ok_or_else(|| bad("no reference answers".to_string())),
            Metric::ChoiceLetter => Ok(best(&choice::choice_letter, prediction)),
            Metric::LEvalExam => {
                let task = meta_str(sample, "leval_task").unwrap_or_else(|| task_leaf(sample));
                leval::exam_score(prediction, &sample.answers, task).ok_or_else(|| {
                    bad("no answers, or a blank option answer, for an L-Eval exam".to_string())
                })
            }
            Metric::LEvalF1 => {
                need_answers()?;
                Ok(best(&leval::f1_score, prediction))
            }
            Metric::LEvalRouge => leval::rouge_scores_max(prediction, &sample.answers)
                .map(|s| s.rouge_l)
                .ok_or_else(|| bad("no reference answers".to_string())),
            Metric::LengthScore => {
                let required = sample
                    .meta
                    .get("length")
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(|| {
                        bad("meta.length (the required length) is missing".to_string())
                    })?;
                longwrite::length_score(required, longwrite::count_words(prediction) as f64)
                    .ok_or_else(|| bad(format!("meta.length {required} is not positive")))
            }
            Metric::LongProc => longproc::score(prediction, sample),
            Metric::LongGenBench => longgenbench::score(prediction, sample),
            Metric::BoxedExact => Ok(needlebench::score_boxed_exact(prediction, sample)),
            Metric::ThreadingPrefix => Ok(threading::score(prediction, sample)),
        }
    }
}

/// A string value of the sample's meta.
fn meta_str<'a>(sample: &'a Sample, key: &str) -> Option<&'a str> {
    sample.meta.get(key).and_then(serde_json::Value::as_str)
}

/// The last `/`-separated part of the sample's task name.
fn task_leaf(sample: &Sample) -> &str {
    sample.task.rsplit('/').next().unwrap_or("")
}

/// The first run of ASCII digits in `text` (the regex `\d+` restricted to `0-9`), if any.
pub fn first_integer(text: &str) -> Option<&str> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let len = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some(&rest[..len])
}

/// Passkey retrieval's metric (LM-Infinite `passkey_retrieval_accuracy`): 1.0 when the first
/// integer in `output` equals the integer in `answer`, else 0.0 (also when `output` has no
/// digits). Integers are compared by value, as Python's `int(...)` does, so leading zeros do
/// not matter; digit strings of any length are compared without overflow.
pub fn first_integer_eq(output: &str, answer: &str) -> f64 {
    let value = |digits: &str| {
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        }
    };
    match (first_integer(output), first_integer(answer)) {
        (Some(got), Some(want)) if value(got) == value(want) => 1.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_integer_finds_the_first_digit_run() {
        assert_eq!(first_integer("68420."), Some("68420"));
        assert_eq!(first_integer(" 6842"), Some("6842"));
        assert_eq!(first_integer("The pass key is 68420"), Some("68420"));
        assert_eq!(first_integer("a1b22"), Some("1"));
        assert_eq!(first_integer("no digits"), None);
        assert_eq!(first_integer(""), None);
        // Non-ASCII digits (Arabic-Indic) are not integers here.
        assert_eq!(first_integer("٣٤ 5"), Some("5"));
    }

    #[test]
    fn first_integer_eq_hand_checked_cases() {
        let cases = [
            ("68420.", 1.0),
            (" 68420", 1.0),
            ("68420. Remember it. 68420", 1.0),
            ("The pass key is 68420", 1.0),
            ("068420", 1.0),
            (" 6842", 0.0),
            ("684201", 0.0),
            ("6842 0", 0.0),
            ("The pass key is 1. 68420", 0.0),
            ("no digits", 0.0),
            ("", 0.0),
            ("-68420", 1.0),
            ("68,420", 0.0),
        ];
        for (output, want) in cases {
            assert_eq!(first_integer_eq(output, "68420"), want, "output {output:?}");
        }
        // Longer than u64 is fine.
        assert_eq!(
            first_integer_eq(
                "123456789012345678901234567890",
                "123456789012345678901234567890"
            ),
            1.0
        );
        // An answer without digits can never be matched.
        assert_eq!(first_integer_eq("5", "none"), 0.0);
        assert_eq!(first_integer_eq("0", "000"), 1.0);
    }
}
