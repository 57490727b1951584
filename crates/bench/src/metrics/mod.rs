//! Scoring functions of the benchmarks, each returning a score in `0.0..=1.0`, and the
//! [`Metric`] enum that names them for tasks, results and reports.

use crate::sample::Sample;

/// How a task's outputs are scored. Names follow the upstream code they port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The first integer in the output equals the answer ([`first_integer_eq`]); passkey.
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
}

/// Errors from scoring.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    #[error("metric '{0}' is not implemented yet")]
    NotImplemented(&'static str),
    #[error("sample '{sample}': {reason}")]
    BadSample { sample: String, reason: String },
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
        }
    }

    /// Scores one output against a single answer, in `0.0..=1.0` (metrics whose score
    /// depends on one reference only).
    pub fn score(self, output: &str, answer: &str) -> f64 {
        match self {
            Metric::FirstIntegerEq => first_integer_eq(output, answer),
            _ => 0.0,
        }
    }

    /// Scores a prediction for a sample, in `0.0..=1.0`, the way the upstream code does
    /// (e.g. the best score over the sample's answers for LongBench).
    pub fn score_sample(self, prediction: &str, sample: &Sample) -> Result<f64, MetricError> {
        match self {
            Metric::FirstIntegerEq => Ok(sample
                .answers
                .iter()
                .map(|a| first_integer_eq(prediction, a))
                .fold(0.0, f64::max)),
            other => Err(MetricError::NotImplemented(other.name())),
        }
    }
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
