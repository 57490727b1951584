//! LongBench v1's `metrics.py` (THUDM/LongBench, `LongBench/metrics.py`) and the per-sample
//! rule of its `eval.py`: few-shot tasks keep only the first line of the prediction, and a
//! sample scores the best value over its reference answers.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

use super::{difflib, py, rouge_pltrdy, segment};

/// Datasets whose prediction `eval.py` cuts at the first newline before scoring.
pub const FIRST_LINE_DATASETS: [&str; 4] = ["trec", "triviaqa", "samsum", "lsht"];

/// `prediction.lstrip('\n').split('\n')[0]`.
pub fn first_line(prediction: &str) -> &str {
    let rest = prediction.trim_start_matches('\n');
    rest.split('\n').next().unwrap_or("")
}

/// `normalize_answer`: lower-case, drop `string.punctuation`, replace the whole words
/// `a`/`an`/`the` by a space, collapse whitespace.
pub fn normalize_answer(s: &str) -> String {
    let lowered = s.to_lowercase();
    let no_punc: String = lowered
        .chars()
        .filter(|&c| !py::is_ascii_punctuation(c))
        .collect();
    py::collapse_whitespace(&remove_articles(&no_punc))
}

/// `re.sub(r"\b(a|an|the)\b", " ", text)`: a match can only be a whole maximal run of `\w`
/// characters, since `\b` never falls inside such a run.
pub(crate) fn remove_articles(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run_start: Option<usize> = None;
    let flush = |out: &mut String, run: &str| {
        if matches!(run, "a" | "an" | "the") {
            out.push(' ');
        } else {
            out.push_str(run);
        }
    };
    for (i, c) in text.char_indices() {
        if py::is_word(c) {
            run_start.get_or_insert(i);
        } else {
            if let Some(start) = run_start.take() {
                flush(&mut out, &text[start..i]);
            }
            out.push(c);
        }
    }
    if let Some(start) = run_start {
        flush(&mut out, &text[start..]);
    }
    out
}

/// The Chinese punctuation `normalize_zh_answer` removes besides `string.punctuation`.
pub const CN_PUNCTUATION: &str = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏.";

/// `normalize_zh_answer`: lower-case, drop ASCII and Chinese punctuation, remove all
/// whitespace.
pub fn normalize_zh_answer(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|&c| {
            !py::is_ascii_punctuation(c) && !CN_PUNCTUATION.contains(c) && !py::is_space(c)
        })
        .collect()
}

/// `f1_score` over two token lists: multiset overlap, 0 when nothing is shared.
pub fn f1_tokens<S: AsRef<str>>(prediction: &[S], ground_truth: &[S]) -> f64 {
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in ground_truth {
        *counts.entry(t.as_ref()).or_default() += 1;
    }
    let mut same = 0usize;
    for t in prediction {
        if let Some(c) = counts.get_mut(t.as_ref()) {
            if *c > 0 {
                *c -= 1;
                same += 1;
            }
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = 1.0 * same as f64 / prediction.len() as f64;
    let recall = 1.0 * same as f64 / ground_truth.len() as f64;
    (2.0 * precision * recall) / (precision + recall)
}

/// `qa_f1_score`: token F1 of the normalised strings split on whitespace.
pub fn qa_f1_score(prediction: &str, ground_truth: &str) -> f64 {
    let p = normalize_answer(prediction);
    let g = normalize_answer(ground_truth);
    let pt: Vec<&str> = py::split(&p).collect();
    let gt: Vec<&str> = py::split(&g).collect();
    f1_tokens(&pt, &gt)
}

/// `qa_f1_zh_score`: F1 over jieba tokens, each normalised by [`normalize_zh_answer`], empty
/// ones dropped.
pub fn qa_f1_zh_score(prediction: &str, ground_truth: &str) -> f64 {
    let tokens = |s: &str| -> Vec<String> {
        segment::jieba_cut(s)
            .into_iter()
            .map(normalize_zh_answer)
            .filter(|t| !t.is_empty())
            .collect()
    };
    f1_tokens(&tokens(prediction), &tokens(ground_truth))
}

/// `rouge_score`: ROUGE-L F of the `rouge` 1.0.1 package, 0 where it raises.
pub fn rouge_score(prediction: &str, ground_truth: &str) -> f64 {
    rouge_pltrdy::rouge_l_f(
        prediction,
        ground_truth,
        rouge_pltrdy::LONGBENCH_RECON_FRAMES,
    )
    .unwrap_or(0.0)
}

/// `rouge_zh_score`: both texts jieba-cut and joined with spaces, then `rouge_score` (called
/// one frame deeper, so with one recursion frame less).
pub fn rouge_zh_score(prediction: &str, ground_truth: &str) -> f64 {
    let p = segment::jieba_cut(prediction).join(" ");
    let g = segment::jieba_cut(ground_truth).join(" ");
    rouge_pltrdy::rouge_l_f(&p, &g, rouge_pltrdy::LONGBENCH_RECON_FRAMES - 1).unwrap_or(0.0)
}

/// `classification_score`: the classes found in the prediction, minus those that are
/// substrings of (but not equal to) the gold label, removed the way upstream's
/// remove-while-iterating loop does (the element after each removal is skipped); 1/k when
/// the gold label is among the k left, else 0.
pub fn classification_score(prediction: &str, ground_truth: &str, all_classes: &[String]) -> f64 {
    let mut matches: Vec<&str> = all_classes
        .iter()
        .map(String::as_str)
        .filter(|c| prediction.contains(c))
        .collect();
    let mut idx = 0;
    while idx < matches.len() {
        let term = matches[idx];
        if ground_truth.contains(term) && term != ground_truth {
            if let Some(pos) = matches.iter().position(|m| *m == term) {
                matches.remove(pos);
            }
        }
        idx += 1;
    }
    if matches.contains(&ground_truth) {
        1.0 / matches.len() as f64
    } else {
        0.0
    }
}

fn digits_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Python's `\d` on str is Unicode decimal digits, as is the regex crate's.
    RE.get_or_init(|| Regex::new(r"\d+").expect("valid regex"))
}

/// Share of the `\d+` runs in `prediction` equal (as strings) to `id`; 0 when there is none.
fn share_equal(prediction: &str, id: &str) -> f64 {
    let mut total = 0usize;
    let mut right = 0usize;
    for m in digits_re().find_iter(prediction) {
        total += 1;
        if m.as_str() == id {
            right += 1;
        }
    }
    if total == 0 {
        0.0
    } else {
        right as f64 / total as f64
    }
}

/// The first `prefix(\d+)` capture in `ground_truth`.
fn gold_id(ground_truth: &str, re: &Regex) -> Option<String> {
    re.captures(ground_truth)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
}

/// `retrieval_score`: gold id from `Paragraph (\d+)`; share of numbers in the prediction
/// equal to it. `None` when the gold has no such id (upstream raises IndexError).
pub fn retrieval_score(prediction: &str, ground_truth: &str) -> Option<f64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"Paragraph (\d+)").expect("valid regex"));
    gold_id(ground_truth, re).map(|id| share_equal(prediction, &id))
}

/// `retrieval_zh_score`: as [`retrieval_score`] with `段落(\d+)`.
pub fn retrieval_zh_score(prediction: &str, ground_truth: &str) -> Option<f64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"段落(\d+)").expect("valid regex"));
    gold_id(ground_truth, re).map(|id| share_equal(prediction, &id))
}

/// `count_score`: share of numbers in the prediction equal to the gold (as strings).
pub fn count_score(prediction: &str, ground_truth: &str) -> f64 {
    share_equal(prediction, ground_truth)
}

/// `code_sim_score`: the first line (after leading newlines) containing none of `` ` ``,
/// `#`, `//` (empty if none), then `fuzz.ratio(line, gold) / 100`.
pub fn code_sim_score(prediction: &str, ground_truth: &str) -> f64 {
    let line = prediction
        .trim_start_matches('\n')
        .split('\n')
        .find(|l| !l.contains('`') && !l.contains('#') && !l.contains("//"))
        .unwrap_or("");
    difflib::fuzz_ratio(line, ground_truth) as f64 / 100.0
}

/// Normalised exact match: 1 when [`normalize_answer`] makes both strings equal.
pub fn exact_match(prediction: &str, ground_truth: &str) -> f64 {
    if normalize_answer(prediction) == normalize_answer(ground_truth) {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_hand_checked() {
        assert_eq!(
            normalize_answer("The Cat, a dog & an apple!"),
            "cat dog apple"
        );
        // Articles only as whole words; "theory" and "another" stay.
        assert_eq!(normalize_answer("theory of another"), "theory of another");
        // Punctuation goes first, so "a." becomes the article "a".
        assert_eq!(normalize_answer("plan a."), "plan");
        // Underscore is punctuation; unicode letters glue to articles ("aé" is one word).
        assert_eq!(normalize_answer("a_b aé"), "ab aé");
        assert_eq!(normalize_answer("  "), "");
        assert_eq!(normalize_zh_answer("你好，World！ 。"), "你好world");
    }

    #[test]
    fn f1_hand_checked() {
        // pred {paris, france}, gold {paris}: P = 1/2, R = 1, F1 = 2/3.
        assert_eq!(qa_f1_score("Paris, France", "paris"), 2.0 * 0.5 / 1.5);
        assert_eq!(qa_f1_score("the", "a"), 0.0);
        assert_eq!(qa_f1_score("", "x"), 0.0);
        // Repeated tokens count as a multiset: pred [x, x], gold [x]: P = 1/2, R = 1.
        assert_eq!(qa_f1_score("x x", "x"), 2.0 * 0.5 / 1.5);
        assert_eq!(exact_match("The  Answer.", "answer"), 1.0);
    }

    #[test]
    fn classification_hand_checked() {
        let classes: Vec<String> = ["Location", "Other location", "City"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Class names are matched case-sensitively: "Other location" is not in "Location".
        assert_eq!(classification_score("Location", "Location", &classes), 1.0);
        // "City" and "Location" found; gold "City" → 1/2.
        assert_eq!(classification_score("City Location", "City", &classes), 0.5);
        assert_eq!(classification_score("nothing", "City", &classes), 0.0);
        // Remove-while-iterating: with gold "abc", matches [a, b, abc]: "a" is removed,
        // which skips "b"; left [b, abc] → 1/2 (a correct loop would give 1).
        let c: Vec<String> = ["a", "b", "abc"].iter().map(|s| s.to_string()).collect();
        assert_eq!(classification_score("abc", "abc", &c), 0.5);
    }

    #[test]
    fn retrieval_count_code_hand_checked() {
        assert_eq!(
            retrieval_score("Paragraph 3, not 4", "Paragraph 3"),
            Some(0.5)
        );
        assert_eq!(retrieval_score("none", "Paragraph 3"), Some(0.0));
        assert_eq!(retrieval_score("3", "no id"), None);
        assert_eq!(retrieval_zh_score("段落12", "段落12"), Some(1.0));
        // Full-width digits are \d too, and differ from "12" as strings.
        assert_eq!(retrieval_zh_score("段落１２ 段落12", "段落12"), Some(0.5));
        assert_eq!(count_score("There are 07 or 7 paragraphs", "7"), 0.5);
        assert_eq!(code_sim_score("```python\n# c\nx = 1\n", "x = 1"), 1.0);
        assert_eq!(code_sim_score("# only comments", "x"), 0.0);
        assert_eq!(first_line("\n\nfirst\nsecond"), "first");
        assert_eq!(first_line(""), "");
    }
}
