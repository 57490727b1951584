//! Behaviour of the synthetic generators: determinism, pinned prompts, seeds, depth
//! placement, length fitting, scoring of gold and wrong answers, and config errors.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use longctx_bench::sample::Sample;
use longctx_bench::tasks::common::fnv1a64;
use longctx_bench::tasks::{default_data_root, GenConfig};
use longctx_bench::{registry, BenchError, Task};

/// The length-targeted generators other than passkey (tested in its own module).
fn synthetic() -> impl Iterator<Item = &'static Task> {
    registry::all().filter(|t| t.is_generated() && t.name != "passkey")
}

fn find_synthetic(name: &str) -> Result<&'static Task, BenchError> {
    registry::find(name)
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

fn bytes4(text: &str) -> usize {
    1 + text.len().div_ceil(4)
}

fn cfg(length: usize, depths: &[u32], num_samples: usize, seed: u64) -> GenConfig {
    let mut cfg = GenConfig::new(length, depths, num_samples);
    cfg.seed = seed;
    cfg.data_root = default_data_root().expect("shared/data is found above the crate");
    cfg
}

fn is_qa(task: &Task) -> bool {
    task.name.starts_with("ruler/qa")
}

fn is_ruler(task: &Task) -> bool {
    task.name.starts_with("ruler/")
}

/// The text whose length a task bounds: the prompt with its answer prefix.
fn counted(sample: &Sample) -> String {
    format!("{}{}", sample.prompt, sample.answer_prefix)
}

fn gold_output(task: &Task, sample: &Sample) -> String {
    if task.name.starts_with("needlebench") {
        format!("So the answer is \\boxed{{{}}}.", sample.answers[0])
    } else {
        sample.answers.join(", ")
    }
}

#[test]
fn data_root_resolves_to_the_shared_data() {
    let root = default_data_root().unwrap();
    assert!(root.join("paul-graham-essays/niah").is_dir(), "{root:?}");
    assert!(root
        .join("paul-graham-essays/ruler/PaulGrahamEssays.json")
        .is_file());
}

#[test]
fn registry_is_complete_and_named_as_upstream() {
    let names: Vec<&str> = synthetic().map(|t| t.name).collect();
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    for ruler in [
        "niah_single_1",
        "niah_single_2",
        "niah_single_3",
        "niah_multikey_1",
        "niah_multikey_2",
        "niah_multikey_3",
        "niah_multivalue",
        "niah_multiquery",
        "vt",
        "cwe",
        "fwe",
        "qa_1",
        "qa_2",
    ] {
        let task = find_synthetic(&format!("ruler/{ruler}")).unwrap();
        let want = match ruler {
            "vt" => 30,
            "cwe" => 120,
            "fwe" => 50,
            "qa_1" | "qa_2" => 32,
            _ => 128,
        };
        assert_eq!(task.max_new_tokens(), want, "{ruler}");
        let metric = if ruler.starts_with("qa") {
            "string_match_part"
        } else {
            "string_match_all"
        };
        assert_eq!(task.metric.name(), metric);
    }
    assert!(find_synthetic("niah").is_ok());
    assert!(find_synthetic("needle_threading/multi_threading").is_ok());
    assert!(find_synthetic("needlebench_v2/atc_nth_ancestor_en").is_ok());
    assert!(matches!(
        find_synthetic("nope"),
        Err(BenchError::UnknownTask { .. })
    ));
}

#[test]
fn every_task_is_deterministic_fits_and_scores_gold_as_one() {
    for task in synthetic().filter(|t| !is_qa(t)) {
        for (length, counter) in [
            (1500usize, &words as &dyn Fn(&str) -> usize),
            (2500, &bytes4),
        ] {
            let c = cfg(length, &[30], 2, 7);
            let a = task.generate(&c, &counter).unwrap();
            let b = task.generate(&c, &counter).unwrap();
            assert_eq!(a, b, "{}", task.name);
            assert_eq!(a.len(), 2, "{}", task.name);
            for s in &a {
                assert_eq!(s.task, task.name);
                assert_eq!(s.max_new_tokens, task.max_new_tokens());
                assert_eq!(s.metric, task.metric);
                // RULER and NIAH keep the answer budget inside the length.
                let budget = if is_ruler(task) || task.name == "niah" {
                    length - task.max_new_tokens()
                } else {
                    length
                };
                let used = counter(&counted(s));
                assert!(used <= budget, "{}: {used} > {budget}", task.name);
                // Close to the target: within one haystack unit (an essay sentence, a noise
                // line, a kinship sentence, a KV pair) or a few percent.
                let slack = 60 + budget / 25;
                assert!(budget - used <= slack, "{}: {used} of {budget}", task.name);
                let gold = gold_output(task, s);
                assert_eq!(task.score(&gold, s).unwrap(), 1.0, "{}: {gold}", task.name);
                assert_eq!(
                    task.score("I do not know.", s).unwrap(),
                    0.0,
                    "{}",
                    task.name
                );
                for answer in &s.answers {
                    if !task.name.starts_with("needlebench_v2/atc_relationship")
                        && !task.name.starts_with("needle_threading/multi")
                    {
                        assert!(
                            s.prompt.contains(answer.as_str()),
                            "{}: {answer}",
                            task.name
                        );
                    }
                }
            }
            assert_ne!(a[0].id, a[1].id);
        }
    }
}

#[test]
fn seeds_change_samples_except_seed_free_niah() {
    for task in synthetic().filter(|t| !is_qa(t)) {
        let a = task.generate(&cfg(1200, &[50], 1, 1), &words).unwrap();
        let b = task.generate(&cfg(1200, &[50], 1, 2), &words).unwrap();
        if task.name == "niah" {
            // Kamradt's harness has no randomness: the haystack and needle are fixed.
            assert_eq!(a, b);
        } else {
            assert_ne!(a[0].prompt, b[0].prompt, "{}", task.name);
        }
    }
}

/// Position of `needle` in `prompt` as a share of the span between `start` and `end` markers.
fn share(prompt: &str, needle: &str, start: &str, end: &str) -> f64 {
    let s = prompt.find(start).unwrap() + start.len();
    let e = prompt.rfind(end).unwrap();
    let at = prompt.find(needle).unwrap();
    (at - s) as f64 / (e - s) as f64
}

#[test]
fn needles_sit_at_the_requested_depth() {
    for depth in [0u32, 25, 50, 75, 100] {
        let want = f64::from(depth) / 100.0;
        let c = cfg(6000, &[depth], 1, 3);
        let s = &find_synthetic("niah")
            .unwrap()
            .generate(&c, &words)
            .unwrap()[0];
        let got = share(
            &s.prompt,
            "The best thing to do in San Francisco",
            "direct\n\n",
            "\n\nWhat is",
        );
        assert!((got - want).abs() < 0.03, "niah {depth}: {got}");

        for name in [
            "ruler/niah_single_1",
            "ruler/niah_single_2",
            "ruler/niah_multikey_3",
        ] {
            let s = &find_synthetic(name).unwrap().generate(&c, &words).unwrap()[0];
            let got = share(&s.prompt, &s.answers[0], "afterwards.\n", "\nWhat is");
            assert!((got - want).abs() < 0.03, "{name} {depth}: {got}");
        }

        let s = &find_synthetic("needlebench_v2/reasoning_3needle_en")
            .unwrap()
            .generate(&c, &words)
            .unwrap()[0];
        let first = s.prompt.find("<Document>\n").unwrap();
        let body = &s.prompt[first..];
        let names = s.meta["names"].as_array().unwrap();
        // The first needle placed is the first (shuffled) kinship sentence found in the text.
        let at = names
            .iter()
            .filter_map(|n| body.find(n.as_str().unwrap()))
            .min()
            .unwrap();
        let end = body.find("\n</Document>").unwrap();
        let got = at as f64 / end as f64;
        assert!((got - want).abs() < 0.03, "needlebench {depth}: {got}");

        let s = &find_synthetic("needle_threading/single_needle")
            .unwrap()
            .generate(&c, &words)
            .unwrap()[0];
        let got = share(&s.prompt, &s.answers[0], "{", "}\n");
        assert!((got - want).abs() < 0.03, "threading {depth}: {got}");
    }
}

#[test]
fn pinned_prompts() {
    // FNV-1a of the first prompt at length 700, depth 50, seed 0 with a word counter. A
    // change here means the generator changed: bump its GENERATOR_VERSION and re-pin.
    let mut got = Vec::new();
    for task in synthetic().filter(|t| !is_qa(t)) {
        let s = &task.generate(&cfg(700, &[50], 1, 0), &words).unwrap()[0];
        got.push((task.name, format!("{:016x}", fnv1a64(&counted(s)))));
    }
    let listing: String = got
        .iter()
        .map(|(n, h)| format!("(\"{n}\", \"{h}\"),\n"))
        .collect();
    assert_eq!(
        got,
        PINNED
            .iter()
            .map(|(n, h)| (*n, h.to_string()))
            .collect::<Vec<_>>(),
        "\n{listing}"
    );
}

const PINNED: &[(&str, &str)] = &[
    ("niah", "49eca45be8d7c1c9"),
    ("ruler/niah_single_1", "1321b56cf1e8cee8"),
    ("ruler/niah_single_2", "97d7c3de51cdb95a"),
    ("ruler/niah_single_3", "5c1ca2d97dbf1a58"),
    ("ruler/niah_multikey_1", "797265d70e38c3fd"),
    ("ruler/niah_multikey_2", "d2bbab7959c9449a"),
    ("ruler/niah_multikey_3", "b9ba2f3ed361adc5"),
    ("ruler/niah_multivalue", "d34a4cdb2b132975"),
    ("ruler/niah_multiquery", "48a22b25de2bb0b1"),
    ("ruler/vt", "416c7544a9b5b479"),
    ("ruler/cwe", "632c215e3c4ab3f9"),
    ("ruler/fwe", "61858982daa0fc6e"),
    ("needles/passkey", "0267553f339af1fd"),
    ("needles/word", "27f1c623c98db192"),
    ("needles/fact", "13014bb6ec211298"),
    ("needles/uuid", "cbe1c88baa0e8310"),
    ("needlebench_v2/reasoning_2needle_en", "1a9dfc883846af2a"),
    ("needlebench_v2/reasoning_3needle_en", "931982ed61981b52"),
    ("needlebench_v2/reasoning_4needle_en", "d87562a7a322e197"),
    ("needlebench_v2/reasoning_5needle_en", "ba7ebfc5f51dd856"),
    ("needlebench_v2/atc_eldest_ancestor_en", "fe6dd57bf2624848"),
    ("needlebench_v2/atc_nth_ancestor_en", "35c8543ccf7786b5"),
    ("needlebench_v2/atc_nth_descendant_en", "3c15bc86d2e5b654"),
    (
        "needlebench_v2/atc_relationship_distance_en",
        "98acdda4507d124e",
    ),
    ("needle_threading/single_needle", "80bc2b4c1da45ccf"),
    ("needle_threading/multiple_needles", "7ac35f15738ecc30"),
    ("needle_threading/threading_forward", "998112375681518b"),
    ("needle_threading/threading_backward", "fac135cab31f3e50"),
    ("needle_threading/multi_threading", "76d5ce2453c54daa"),
];

#[test]
fn bad_configs_are_errors() {
    let task = find_synthetic("ruler/niah_single_2").unwrap();
    assert!(matches!(
        task.generate(&cfg(0, &[], 1, 0), &words),
        Err(BenchError::ZeroLength)
    ));
    assert!(matches!(
        task.generate(&cfg(1000, &[101], 1, 0), &words),
        Err(BenchError::DepthOutOfRange(101))
    ));
    let err = task.generate(&cfg(1000, &[], 0, 0), &words).unwrap_err();
    assert!(err.to_string().contains("number of samples"), "{err}");
    for task in synthetic().filter(|t| !is_qa(t)) {
        let err = task.generate(&cfg(10, &[50], 1, 0), &words).unwrap_err();
        assert!(
            matches!(err, BenchError::LengthTooShort { length: 10, .. }),
            "{}: {err}",
            task.name
        );
    }
    let mut missing = cfg(1000, &[50], 1, 0);
    missing.data_root = "/nonexistent/data".into();
    for name in [
        "niah",
        "ruler/niah_single_2",
        "needlebench_v2/reasoning_2needle_en",
        "ruler/qa_1",
    ] {
        let err = find_synthetic(name)
            .unwrap()
            .generate(&missing, &words)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/data/") && err.contains("LONGCTX_DATA"),
            "{name}: {err}"
        );
    }
    let err = find_synthetic("ruler/qa_2")
        .unwrap()
        .generate(&cfg(1000, &[], 1, 0), &words)
        .unwrap_err()
        .to_string();
    assert!(err.contains("hotpotqa.json"), "{err}");
}

#[test]
fn ruler_answers_have_the_upstream_shape() {
    let c = cfg(3000, &[], 1, 11);
    let s = &find_synthetic("ruler/niah_multivalue")
        .unwrap()
        .generate(&c, &words)
        .unwrap()[0];
    assert_eq!(s.answers.len(), 4);
    assert!(s
        .answers
        .iter()
        .all(|a| a.len() == 7 && a.parse::<u64>().is_ok()));
    assert!(s
        .answer_prefix
        .ends_with("mentioned in the provided text are"));
    let s = &find_synthetic("ruler/niah_multiquery")
        .unwrap()
        .generate(&c, &words)
        .unwrap()[0];
    assert_eq!(s.answers.len(), 4);
    assert!(s.prompt.contains(", and "));
    let s = &find_synthetic("ruler/niah_single_3")
        .unwrap()
        .generate(&c, &words)
        .unwrap()[0];
    assert_eq!(s.answers[0].len(), 36);
    let s = &find_synthetic("ruler/vt")
        .unwrap()
        .generate(&c, &words)
        .unwrap()[0];
    assert_eq!(s.answers.len(), 5);
    assert!(s
        .answer_prefix
        .contains("5 variables are assigned the value"));
    assert!(s.prompt.contains(&format!("VAR {} = ", s.answers[0])));
    let s = &find_synthetic("ruler/cwe")
        .unwrap()
        .generate(&c, &words)
        .unwrap()[0];
    assert_eq!(s.answers.len(), 10);
    // Below 4096 tokens the common words appear 6 times in the list being asked about.
    let main = &s.prompt[s.prompt.rfind("Below is a numbered list").unwrap()..];
    for w in &s.answers {
        assert_eq!(
            main.matches(&format!(". {w} ")).count() + main.matches(&format!(". {w}\n")).count(),
            6,
            "{w}"
        );
    }
    let s = &find_synthetic("ruler/fwe")
        .unwrap()
        .generate(&c, &words)
        .unwrap()[0];
    assert_eq!(s.answers.len(), 3);
    let counts: Vec<usize> = s
        .answers
        .iter()
        .map(|w| s.prompt.matches(w.as_str()).count())
        .collect();
    assert!(counts[0] > counts[1] && counts[1] > counts[2], "{counts:?}");
}
