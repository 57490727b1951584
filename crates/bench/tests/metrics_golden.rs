//! Golden tests: every metric port against values computed by the upstream Python code
//! (`tests/fixtures/metrics/make_fixtures.py`), and jieba-rs against Python jieba.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use longctx_bench::metrics::segment::jieba_cut;
use longctx_bench::{Metric, Sample, Truncation};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/metrics/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn metric(name: &str) -> Metric {
    match name {
        "qa_f1" => Metric::QaF1,
        "qa_f1_zh" => Metric::QaF1Zh,
        "rouge_l" => Metric::RougeL,
        "rouge_l_zh" => Metric::RougeLZh,
        "classification" => Metric::Classification,
        "retrieval" => Metric::Retrieval,
        "retrieval_zh" => Metric::RetrievalZh,
        "count" => Metric::Count,
        "code_sim" => Metric::CodeSim,
        "exact_match" => Metric::ExactMatch,
        "string_match_all" => Metric::StringMatchAll,
        "string_match_part" => Metric::StringMatchPart,
        "choice_letter" => Metric::ChoiceLetter,
        "leval_exam" => Metric::LEvalExam,
        "leval_f1" => Metric::LEvalF1,
        "leval_rouge" => Metric::LEvalRouge,
        "length_score" => Metric::LengthScore,
        other => panic!("unknown fixture metric {other}"),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn metrics_match_the_python_reference() {
    let fx = fixture("metrics.json");
    let cases = fx["cases"].as_array().expect("cases");
    assert!(cases.len() > 200, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let m = metric(case["metric"].as_str().unwrap_or_default());
        let sample = Sample {
            id: format!("case-{i}"),
            task: String::new(),
            prompt: String::new(),
            chat: false,
            answer_prefix: String::new(),
            question: String::new(),
            truncation: Truncation::None,
            answers: strings(&case["answers"]),
            all_classes: strings(&case["all_classes"]),
            metric: m,
            max_new_tokens: 0,
            meta: case["meta"].clone(),
        };
        let prediction = case["prediction"].as_str().unwrap_or_default();
        let want = case["expected"].as_f64().expect("expected");
        // LongBench-Write's upstream value is S_l = 100·v; v·100 reproduces it exactly while
        // S_l/100 may differ from v in the last bit.
        let (scale, want) = match case["meta"].get("s_l").and_then(Value::as_f64) {
            Some(s_l) => (100.0, s_l),
            None => (1.0, want),
        };
        match m.score_sample(prediction, &sample) {
            // Same operations in the same order: the values must be bit-identical.
            Ok(got) if (scale * got).to_bits() == want.to_bits() => {}
            Ok(got) => failures.push(format!(
                "case {i} {} ({}): got {got:?}, want {want:?}",
                case["metric"], case["note"]
            )),
            Err(e) => failures.push(format!("case {i} {}: error {e}", case["metric"])),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn leval_rouge_1_and_2_match_rouge_score() {
    let fx = fixture("metrics.json");
    for case in fx["cases"].as_array().expect("cases") {
        if case["metric"] != "leval_rouge" {
            continue;
        }
        let refs = strings(&case["answers"]);
        let got = longctx_bench::metrics::leval::rouge_scores_max(
            case["prediction"].as_str().unwrap_or_default(),
            &refs,
        )
        .expect("references");
        assert_eq!(
            got.rouge1,
            case["meta"]["rouge1"].as_f64().unwrap(),
            "{case}"
        );
        assert_eq!(
            got.rouge2,
            case["meta"]["rouge2"].as_f64().unwrap(),
            "{case}"
        );
    }
}

#[test]
fn jieba_rs_matches_python_jieba_token_for_token() {
    let fx = fixture("jieba.json");
    let items = fx.as_array().expect("array");
    assert!(items.len() > 40);
    let mut failures = Vec::new();
    for item in items {
        let text = item["text"].as_str().unwrap_or_default();
        let want = strings(&item["tokens"]);
        let got = jieba_cut(text);
        if got != want {
            failures.push(format!("{text:?}\n  rust:   {got:?}\n  python: {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} texts segment differently:\n{}",
        failures.len(),
        items.len(),
        failures.join("\n")
    );
}

#[test]
fn recursion_budget_matches_the_measured_python_limit() {
    let fx = fixture("metrics.json");
    // A one-sentence hypothesis of k words against the reference "z" needs k + 1 frames.
    let max_words = fx["recursion_max_hypothesis_words"]
        .as_u64()
        .expect("measured");
    assert_eq!(
        max_words as usize + 1,
        longctx_bench::metrics::rouge_pltrdy::LONGBENCH_RECON_FRAMES
    );
}
