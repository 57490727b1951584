//! L-Eval's automatic metrics (OpenLMLab/LEval `Evaluation/{auto_eval,em,f1,rouge}.py`):
//! the closed-ended "exam" scoring with its per-task answer extraction, SQuAD F1 and
//! Google `rouge_score` ROUGE for the open-ended tasks.
//!
//! Upstream picks the extraction by substrings of the prediction file's name; here the
//! same substrings are looked for in the task name ([`exam_score`]'s `task`): `coursera`,
//! `quality`, `tpo` (options), `gsm` (numbers), `codeU` (program output), `sci_fi`
//! (two true/false judgements); anything else (e.g. `topic_retrieval_longchat`) is compared
//! raw.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use regex::Regex;

use super::{longbench, py};

/// `normalize_answer` of `em.py`: like LongBench's but *without* lower-casing.
pub fn normalize_exam(s: &str) -> String {
    let no_punc: String = s
        .chars()
        .filter(|&c| !py::is_ascii_punctuation(c))
        .collect();
    py::collapse_whitespace(&longbench::remove_articles(&no_punc))
}

/// `exact_match_score(prediction, ground_truth)`: option letters (gold made of A–D only
/// after normalisation): 1 on equality, 0.25 when the predicted letters are a subset of
/// the gold's, else 0; otherwise numeric equality when both parse as floats, else 1 when
/// the gold (lower-cased, spaces removed) is a substring of the prediction (same transform).
pub fn exact_match_score(prediction: &str, ground_truth: &str) -> f64 {
    let gold = normalize_exam(ground_truth);
    let options_only = gold.chars().all(|c| matches!(c, 'A' | 'B' | 'C' | 'D'));
    if options_only {
        let pred = normalize_exam(prediction);
        if pred == gold {
            1.0
        } else if pred.chars().all(|c| gold.contains(c)) {
            0.25
        } else {
            0.0
        }
    } else {
        match (py::parse_float(prediction), py::parse_float(ground_truth)) {
            (Some(p), Some(g)) => {
                if p == g {
                    1.0
                } else {
                    0.0
                }
            }
            _ => {
                let squash = |s: &str| s.to_lowercase().replace(' ', "");
                if squash(prediction).contains(&squash(ground_truth)) {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// `process_output_mc`: the option letters of a multiple-choice reply. Outside coursera
/// the first A–D character; coursera collects leading letters, then letters followed by
/// whitespace, `.` or `)` before any "Question", sorted and de-duplicated; fallback "A".
pub fn process_output_mc(response: &str, coursera: bool) -> String {
    if py::strip(response).is_empty() {
        return "None".to_string();
    }
    let is_option = |c: char| matches!(c, 'A' | 'B' | 'C' | 'D');
    if "ABCD".contains(response) {
        return response.to_string();
    }
    if !coursera {
        if let Some(c) = response.chars().find(|&c| is_option(c)) {
            return c.to_string();
        }
    }
    let leading: String = response.chars().take_while(|&c| is_option(c)).collect();
    let sorted_unique = |s: &str| {
        s.chars()
            .collect::<BTreeSet<char>>()
            .into_iter()
            .collect::<String>()
    };
    if leading.chars().count() > 1 {
        return sorted_unique(&leading);
    }
    let rest = &response[leading.len()..];
    let rest = rest.split("Question").next().unwrap_or("");
    // re.findall(r"\s*[A-Z](?=[\s.)])", rest), then only A–D kept: every option letter
    // followed by whitespace, '.' or ')'.
    let chars: Vec<char> = rest.chars().collect();
    let mut letters = leading.clone();
    for w in chars.windows(2) {
        if is_option(w[0]) && (py::is_space(w[1]) || w[1] == '.' || w[1] == ')') {
            letters.push(w[0]);
        }
    }
    let mut cleaned = sorted_unique(&letters);
    if cleaned.is_empty() {
        let mut has_answer = false;
        for c in rest.chars() {
            if is_option(c) {
                cleaned.push(c);
                has_answer = true;
            } else if has_answer {
                break;
            }
        }
    }
    if cleaned.is_empty() {
        cleaned.push('A');
    }
    cleaned
}

/// `process_gt_mc`: the A–D letters of the gold's first whitespace-separated token ("A" if
/// none). `None` for a blank gold (upstream raises IndexError).
pub fn process_gt_mc(response: &str) -> Option<String> {
    let first = py::split(response).next()?;
    let cleaned: String = first.chars().filter(|c| matches!(c, 'A'..='D')).collect();
    Some(if cleaned.is_empty() {
        "A".to_string()
    } else {
        cleaned
    })
}

/// Python's `str.isdigit` for the characters a model writes: Unicode decimal digits plus
/// the superscript, subscript and circled digits.
fn py_isdigit(c: char) -> bool {
    static ND: OnceLock<Regex> = OnceLock::new();
    if c.is_ascii_digit() {
        return true;
    }
    if c.is_ascii() {
        return false;
    }
    matches!(c, '\u{b2}' | '\u{b3}' | '\u{b9}' | '\u{2070}' | '\u{2074}'..='\u{2079}' | '\u{2080}'..='\u{2089}' | '\u{2460}'..='\u{2468}' | '\u{24ea}')
        || {
            let re = ND.get_or_init(|| Regex::new(r"^\p{Nd}$").expect("valid regex"));
            let mut buf = [0u8; 4];
            re.is_match(c.encode_utf8(&mut buf))
        }
}

/// `process_math`: the token after "The answer is", else the last space-separated token
/// with a digit in the first paragraph; then its digits up to the first `.`.
pub fn process_math(response: &str) -> String {
    const CUE: &str = "The answer is ";
    let mut ret: &str = "";
    let mut found = false;
    for (i, _) in response.match_indices(CUE) {
        let rest = &response[i + CUE.len()..];
        let end = rest.find(py::is_space).unwrap_or(rest.len());
        if end > 0 {
            ret = &rest[..end];
            found = true;
            break;
        }
    }
    if !found {
        let para = response.split("\n\n").next().unwrap_or("");
        ret = para
            .split(' ')
            .rev()
            .find(|s| s.chars().any(py_isdigit))
            .unwrap_or("");
    }
    let mut out = String::new();
    for c in ret.chars() {
        if py_isdigit(c) {
            out.push(c);
        }
        if c == '.' {
            break;
        }
    }
    out
}

/// `process_gt_code`: whitespace runs to one space, then the upstream replacements.
pub fn process_gt_code(response: &str) -> String {
    let mut s = replace_whitespace_runs(response);
    for (from, to) in [
        (",", ""),
        ("'", ""),
        ("\\", ""),
        (".0", ""),
        ("] [", "]["),
        ("[ [", "[["),
        ("] ]", "]]"),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// `re.sub(r'\s+', ' ', s)`.
fn replace_whitespace_runs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if py::is_space(c) {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

/// `re.split(r'\s+', s)`: empty pieces kept at both ends.
fn split_whitespace_runs(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if py::is_space(c) {
            out.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = iter.peek() {
                if !py::is_space(d) {
                    break;
                }
                end = j + d.len_utf8();
                iter.next();
            }
            start = end;
        }
    }
    out.push(&s[start..]);
    out
}

/// `process_output_code(response, gt)`: the program output a codeU reply states.
pub fn process_output_code(response: &str, gt: &str) -> String {
    let keep = py::split(gt).count() + 3;
    let mut s = process_gt_code(response);
    for from in [
        "will be",
        "of the code",
        "is",
        "would be",
        "the value of",
        "the result of",
        "printed",
    ] {
        s = s.replace(from, "");
    }
    const FINAL: &str = "the final output";
    let words: Vec<&str> = if s.contains(FINAL) {
        let tail = s.rsplit(FINAL).next().unwrap_or("");
        split_whitespace_runs(tail).into_iter().take(keep).collect()
    } else {
        let all = split_whitespace_runs(&s);
        let skip = all.len().saturating_sub(keep);
        all.into_iter().skip(skip).collect()
    };
    words.join(" ")
}

/// `process_gt_judge`: sci_fi's "loyalty [fact: fact]" lower-cased and split into the two
/// judgements. Without "[fact:" the fact part is empty (upstream raises IndexError, which
/// for a prediction aborts its whole run).
pub fn process_gt_judge(response: &str) -> (String, String) {
    let lower = response.to_lowercase();
    let mut parts = lower.split("[fact:");
    let loyalty = parts.next().unwrap_or("");
    let fact = parts.next().map_or("", |f| {
        // f[:-1]: drop the last character (the closing bracket).
        match f.char_indices().last() {
            Some((i, _)) => &f[..i],
            None => "",
        }
    });
    (py::strip(loyalty).to_string(), py::strip(fact).to_string())
}

/// `process_output_judge`: the first "true"/"false" word of each part, `<error>` if none.
pub fn process_output_judge(response: &str) -> (String, String) {
    let (loyalty, fact) = process_gt_judge(response);
    let pick = |part: &str| -> String {
        for word in py::split(part) {
            if word.contains("true") {
                return "true".to_string();
            } else if word.contains("false") {
                return "false".to_string();
            }
        }
        "<error>".to_string()
    };
    (pick(&loyalty), pick(&fact))
}

/// Whether L-Eval scores this task with option letters.
fn with_options(task: &str) -> bool {
    ["coursera", "quality", "tpo"]
        .iter()
        .any(|t| task.contains(t))
}

/// One sample's exam score for L-Eval task `task` (see the module doc), the best over
/// `answers`. sci_fi scores the mean of its loyalty and fact judgements (the task score,
/// the mean of the two accuracies, is the mean of these). `None` for a gold that upstream
/// cannot process (blank option gold) or no answers.
pub fn exam_score(prediction: &str, answers: &[String], task: &str) -> Option<f64> {
    let mut best: Option<f64> = None;
    for gt in answers {
        let score = if with_options(task) {
            let gold = process_gt_mc(gt)?;
            exact_match_score(
                &process_output_mc(prediction, task.contains("coursera")),
                &gold,
            )
        } else if task.contains("gsm") {
            exact_match_score(&process_math(prediction), &process_math(gt))
        } else if task.contains("codeU") {
            exact_match_score(&process_output_code(prediction, gt), &process_gt_code(gt))
        } else if task.contains("sci_fi") {
            let (gl, gf) = process_gt_judge(gt);
            let (pl, pf) = process_output_judge(prediction);
            (exact_match_score(&pl, &gl) + exact_match_score(&pf, &gf)) / 2.0
        } else {
            exact_match_score(prediction, gt)
        };
        best = Some(best.map_or(score, |b: f64| b.max(score)));
    }
    best
}

/// `f1.py`'s `f1_score`: SQuAD token F1 with lower-casing normalisation (the same function
/// as LongBench's `qa_f1_score`).
pub fn f1_score(prediction: &str, ground_truth: &str) -> f64 {
    longbench::qa_f1_score(prediction, ground_truth)
}

/// F-measures of `rouge_score`'s ROUGE-1, ROUGE-2 and ROUGE-L (no stemming).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RougeScores {
    pub rouge1: f64,
    pub rouge2: f64,
    pub rouge_l: f64,
}

/// `rouge_score`'s default tokenizer: lower-case, then the maximal runs of `[a-z0-9]`.
///
/// L-Eval first re-joins NLTK's sentences with newlines; that only changes whitespace, which
/// this tokenizer ignores, so ROUGE-1/2/L do not depend on it (only ROUGE-Lsum would).
pub fn rouge_tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    lower
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

fn fmeasure(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    }
}

fn rouge_n(target: &[String], prediction: &[String], n: usize) -> f64 {
    let ngrams = |tokens: &[String]| -> HashMap<Vec<String>, usize> {
        let mut m = HashMap::new();
        if tokens.len() >= n {
            for w in tokens.windows(n) {
                *m.entry(w.to_vec()).or_insert(0) += 1;
            }
        }
        m
    };
    let t = ngrams(target);
    let p = ngrams(prediction);
    let inter: usize = t
        .iter()
        .map(|(g, &c)| c.min(p.get(g).copied().unwrap_or(0)))
        .sum();
    let tc: usize = t.values().sum();
    let pc: usize = p.values().sum();
    let precision = inter as f64 / pc.max(1) as f64;
    let recall = inter as f64 / tc.max(1) as f64;
    fmeasure(precision, recall)
}

fn rouge_l(target: &[String], prediction: &[String]) -> f64 {
    if target.is_empty() || prediction.is_empty() {
        return 0.0;
    }
    let mut prev = vec![0usize; prediction.len() + 1];
    let mut cur = vec![0usize; prediction.len() + 1];
    for t in target {
        for (j, p) in prediction.iter().enumerate() {
            cur[j + 1] = if t == p {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let lcs = prev[prediction.len()] as f64;
    fmeasure(lcs / prediction.len() as f64, lcs / target.len() as f64)
}

/// `RougeScorer(["rouge1", "rouge2", "rougeL"]).score(target=reference, prediction)`
/// F-measures, as fractions (L-Eval reports them ×100).
pub fn rouge_scores(prediction: &str, reference: &str) -> RougeScores {
    let t = rouge_tokens(reference);
    let p = rouge_tokens(prediction);
    RougeScores {
        rouge1: rouge_n(&t, &p, 1),
        rouge2: rouge_n(&t, &p, 2),
        rouge_l: rouge_l(&t, &p),
    }
}

/// L-Eval's per-sample ROUGE: each of ROUGE-1/2/L maximised separately over the references.
/// The task's `LEval_score` is the geometric mean of the three task means.
pub fn rouge_scores_max(prediction: &str, references: &[String]) -> Option<RougeScores> {
    references
        .iter()
        .map(|r| rouge_scores(prediction, r))
        .reduce(|a, b| RougeScores {
            rouge1: a.rouge1.max(b.rouge1),
            rouge2: a.rouge2.max(b.rouge2),
            rouge_l: a.rouge_l.max(b.rouge_l),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_hand_checked() {
        assert_eq!(process_output_mc("", false), "None");
        assert_eq!(process_output_mc("BC", false), "BC");
        assert_eq!(process_output_mc("The answer is B", false), "B");
        assert_eq!(process_output_mc("xyz", false), "A");
        assert_eq!(process_output_mc("DB are right", true), "BD");
        assert_eq!(process_output_mc("Options A. and C) hold", true), "AC");
        assert_eq!(process_output_mc("Answer: AB", true), "A");
        assert_eq!(process_output_mc("B. Question 2: A. x", true), "B");
        assert_eq!(process_gt_mc("BD (multi)"), Some("BD".to_string()));
        assert_eq!(process_gt_mc("  "), None);
        assert_eq!(exact_match_score("BD", "BD"), 1.0);
        assert_eq!(exact_match_score("B", "BD"), 0.25);
        assert_eq!(exact_match_score("AB", "BD"), 0.0);
        assert_eq!(exact_match_score("None", "B"), 0.0);
    }

    #[test]
    fn raw_and_numbers_hand_checked() {
        assert_eq!(process_math("So The answer is 1,234.50 dollars"), "1234");
        assert_eq!(process_math("it costs 5 then 12\n\n 99"), "12");
        assert_eq!(process_math("none"), "");
        assert_eq!(exact_match_score("18", "18.0"), 1.0);
        assert_eq!(exact_match_score("", "18"), 0.0);
        assert_eq!(
            exact_match_score("The first topic is Jazz Music", "jazz music"),
            1.0
        );
        assert_eq!(
            exact_match_score("true", "true"),
            1.0,
            "words are compared as substrings"
        );
        assert_eq!(
            process_output_judge("True [fact: false]"),
            ("true".to_string(), "false".to_string())
        );
        assert_eq!(
            process_gt_judge("True [fact: False]"),
            ("true".to_string(), "false".to_string())
        );
        assert_eq!(
            process_output_judge("maybe"),
            ("<error>".to_string(), "<error>".to_string())
        );
        let gold = vec!["True [fact: False]".to_string()];
        assert_eq!(exam_score("True [fact: True]", &gold, "sci_fi"), Some(0.5));
        assert_eq!(exam_score("x", &[], "quality"), None);
    }

    #[test]
    fn code_hand_checked() {
        assert_eq!(process_gt_code("[1, 2]\n[3]"), "[1 2][3]");
        assert_eq!(split_whitespace_runs(" a  b "), ["", "a", "b", ""]);
        assert_eq!(
            process_output_code("The output will be 3 4", "3 4"),
            "The output 3 4"
        );
    }

    #[test]
    fn rouge_hand_checked() {
        // target "the cat sat", prediction "the cat": R1 P = 1, R = 2/3; R2 P = 1, R = 1/2;
        // L = 2 → same as R1.
        let s = rouge_scores("The cat!", "the cat sat");
        let f = |p: f64, r: f64| 2.0 * p * r / (p + r);
        assert_eq!(s.rouge1, f(1.0, 2.0 / 3.0));
        assert_eq!(s.rouge2, f(1.0, 0.5));
        assert_eq!(s.rouge_l, f(1.0, 2.0 / 3.0));
        assert_eq!(
            rouge_tokens("Café au-lait 3.5"),
            ["caf", "au", "lait", "3", "5"]
        );
        let z = rouge_scores("", "x");
        assert_eq!((z.rouge1, z.rouge2, z.rouge_l), (0.0, 0.0, 0.0));
    }
}
