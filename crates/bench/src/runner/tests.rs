//! The runner's tests over a scripted backend: resume, cancel, error rows, truncation,
//! selection and dataset planning.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use longctx_backend::{BackendError, ChatRequest, CompletionRequest, LlmBackend};

use super::fit::head_words;
use super::*;
use crate::sample::{Metric, Sample, Truncation};
use crate::store::tests::{record, temp_db};
use crate::store::Store;
use longctx_backend::{BackendInfo, Capabilities, Completion, FinishReason};
use std::time::Duration;

/// A backend that answers with the first reference of the sample named in the prompt
/// (`answer:X`), counts whitespace words as tokens, and can fail after `fail_after` calls.
struct Scripted {
    info: BackendInfo,
    calls: AtomicUsize,
    fail_after: Option<usize>,
    overflow_over: usize,
    delay: Duration,
}

impl Scripted {
    fn new(fail_after: Option<usize>) -> Scripted {
        Scripted {
            info: BackendInfo {
                model_id: "scripted".into(),
                context_window: 0,
                max_output_tokens: 0,
                caps: Capabilities::default(),
            },
            calls: AtomicUsize::new(0),
            fail_after,
            overflow_over: usize::MAX,
            delay: Duration::ZERO,
        }
    }
    fn answer(&self, prompt: &str) -> longctx_backend::Result<Completion> {
        std::thread::sleep(self.delay);
        let k = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_after.is_some_and(|n| k >= n) {
            return Err(BackendError::Connect {
                endpoint: "http://127.0.0.1:9/v1".into(),
                detail: "connection refused".into(),
            });
        }
        let words = prompt.split_whitespace().count();
        if words > self.overflow_over {
            return Err(BackendError::ContextOverflow {
                endpoint: None,
                message: "too long".into(),
                needed: Some(words),
                limit: Some(self.overflow_over),
            });
        }
        let text = prompt
            .split_whitespace()
            .find_map(|w| w.strip_prefix("answer:"))
            .unwrap_or("")
            .to_string();
        Ok(Completion {
            text,
            finish: FinishReason::Stop,
            prompt_tokens: words,
            completion_tokens: 1,
            latency: Duration::ZERO,
            ..Completion::default()
        })
    }
}

impl LlmBackend for Scripted {
    fn info(&self) -> &BackendInfo {
        &self.info
    }
    fn complete(&self, req: &CompletionRequest) -> longctx_backend::Result<Completion> {
        self.answer(&req.prompt)
    }
    fn chat(&self, req: &ChatRequest) -> longctx_backend::Result<Completion> {
        self.answer(&req.messages[0].content)
    }
    fn count_tokens(&self, text: &str) -> longctx_backend::Result<usize> {
        Ok(text.split_whitespace().count())
    }
    fn tokenize(&self, text: &str) -> longctx_backend::Result<Vec<u32>> {
        Ok(text.split_whitespace().map(|w| w.len() as u32).collect())
    }
    fn detokenize(&self, tokens: &[u32]) -> longctx_backend::Result<String> {
        Ok(tokens
            .iter()
            .map(|&n| "x".repeat(n as usize) + " ")
            .collect())
    }
}

fn sample(i: usize, correct: bool) -> Sample {
    Sample {
        id: format!("s{i}"),
        task: "t/exact".into(),
        prompt: format!("doc {i} answer:{}", if correct { "yes" } else { "no" }),
        chat: i.is_multiple_of(2),
        answer_prefix: String::new(),
        question: String::new(),
        truncation: Truncation::None,
        answers: vec!["yes".into()],
        all_classes: Vec::new(),
        metric: Metric::ExactMatch,
        max_new_tokens: 4,
        meta: serde_json::json!({"length": 100, "depth": i * 10}),
    }
}

fn settings(c: usize) -> RunSettings {
    RunSettings {
        concurrency: c,
        max_input_tokens: None,
    }
}

fn table(store: &Store, run: i64) -> Vec<(String, f64, Option<String>)> {
    store
        .results(run)
        .unwrap()
        .into_iter()
        .map(|r| (r.sample_id, r.score, r.error))
        .collect()
}

#[test]
fn interrupted_run_resumes_exactly_the_missing_samples() {
    let samples: Vec<Sample> = (0..10).map(|i| sample(i, i % 3 != 0)).collect();
    let no = AtomicBool::new(false);

    // Uninterrupted reference.
    let mut reference = Store::open(&temp_db("ref.sqlite")).unwrap();
    let r = reference.begin_run(&record("k")).unwrap();
    let ok = Scripted::new(None);
    let out = run_samples(&ok, &mut reference, r, &samples, &settings(3), &no, |_| {}).unwrap();
    assert_eq!((out.ran, out.skipped, out.errors), (10, 0, 0));
    assert!((out.score_sum - 6.0).abs() < 1e-9);

    // A server that goes away after 4 requests: the run stops with a clear error.
    let mut store = Store::open(&temp_db("resume.sqlite")).unwrap();
    let run = store.begin_run(&record("k")).unwrap();
    let failing = Scripted::new(Some(4));
    let err = run_samples(
        &failing,
        &mut store,
        run,
        &samples,
        &settings(1),
        &no,
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cannot connect") && err.contains("stopped at sample"),
        "{err}"
    );
    assert_eq!(store.results(run).unwrap().len(), 4);

    // Resume: exactly the 6 missing ones run.
    let ok2 = Scripted::new(None);
    let mut ran = Vec::new();
    let out = run_samples(&ok2, &mut store, run, &samples, &settings(2), &no, |e| {
        if let Event::Done(r) = e {
            ran.push(r.sample_id.clone());
        }
    })
    .unwrap();
    assert_eq!((out.ran, out.skipped), (6, 4));
    assert_eq!(ok2.calls.load(Ordering::SeqCst), 6);
    ran.sort();
    assert_eq!(ran, ["s4", "s5", "s6", "s7", "s8", "s9"]);
    assert_eq!(table(&store, run), table(&reference, r));

    // Same config again: nothing runs.
    let ok3 = Scripted::new(None);
    let out = run_samples(&ok3, &mut store, run, &samples, &settings(2), &no, |_| {}).unwrap();
    assert_eq!((out.ran, out.skipped), (0, 10));
    assert_eq!(ok3.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn cancel_flag_stops_handing_out_samples() {
    let samples: Vec<Sample> = (0..8).map(|i| sample(i, true)).collect();
    let mut store = Store::open(&temp_db("cancel.sqlite")).unwrap();
    let run = store.begin_run(&record("k")).unwrap();
    let cancel = AtomicBool::new(false);
    let mut b = Scripted::new(None);
    b.delay = Duration::from_millis(30);
    let mut n = 0;
    let out = run_samples(&b, &mut store, run, &samples, &settings(1), &cancel, |e| {
        if let Event::Done(_) = e {
            n += 1;
            if n == 3 {
                cancel.store(true, Ordering::SeqCst);
            }
        }
    })
    .unwrap();
    assert!(out.cancelled);
    // One worker: at most one more sample was in flight when the flag went up.
    let stored = store.results(run).unwrap().len();
    assert!((3..=4).contains(&stored), "{stored}");
    let out = run_samples(
        &b,
        &mut store,
        run,
        &samples,
        &settings(4),
        &AtomicBool::new(false),
        |_| {},
    )
    .unwrap();
    assert_eq!(out.ran + out.skipped, 8);
    assert_eq!(out.skipped, stored);
    assert!(!out.cancelled);
}

#[test]
fn overflow_and_untruncatable_prompts_become_error_rows() {
    let mut store = Store::open(&temp_db("errors.sqlite")).unwrap();
    let run = store.begin_run(&record("k")).unwrap();
    let mut long = sample(0, true);
    long.id = "long".into();
    long.prompt = format!("{} answer:yes", "w ".repeat(50));
    let short = sample(1, true);
    let mut middle = long.clone();
    middle.id = "middle".into();
    middle.truncation = Truncation::MiddleTokens;
    let mut b = Scripted::new(None);
    b.overflow_over = 30;
    let no = AtomicBool::new(false);
    // No budget: the long prompt reaches the backend, which refuses it.
    let out = run_samples(
        &b,
        &mut store,
        run,
        &[long.clone(), short],
        &settings(1),
        &no,
        |_| {},
    )
    .unwrap();
    assert_eq!((out.ran, out.errors), (2, 1));
    let rows = store.results(run).unwrap();
    let err = rows[0].error.as_deref().unwrap();
    assert!(err.contains("context overflow"), "{err}");
    assert_eq!(rows[0].score, 0.0);

    // With a budget: `None` truncation is an error row, middle truncation fits and says so.
    let run2 = store.begin_run(&record("k2")).unwrap();
    let s = RunSettings {
        concurrency: 2,
        max_input_tokens: Some(30),
    };
    run_samples(&b, &mut store, run2, &[long, middle], &s, &no, |_| {}).unwrap();
    let rows = store.results(run2).unwrap();
    let by = |id: &str| rows.iter().find(|r| r.sample_id == id).unwrap().clone();
    assert!(by("long").error.unwrap().contains("does not truncate"));
    let m = by("middle");
    assert!(m.truncated && m.error.is_none(), "{m:?}");
}

#[test]
fn head_words_drop_the_end_of_the_document() {
    let b = Scripted::new(None);
    let mut s = sample(0, true);
    s.truncation = Truncation::HeadWords;
    s.question = "What is it?".into();
    let doc: Vec<String> = (0..40).map(|i| format!("d{i}")).collect();
    s.prompt = format!(
        "System. Document is as follows. {} \nQuestion: What is it?",
        doc.join(" ")
    );
    let n = b.count_tokens(&s.prompt).unwrap();
    let out = head_words(&b, &s, n, 20).unwrap_or_else(|_| panic!("fits"));
    assert!(out.ends_with("Question: What is it?"), "{out}");
    assert!(
        out.starts_with("System. Document is as follows. d0 d1"),
        "{out}"
    );
    assert!(b.count_tokens(&out).unwrap() <= 20);
    assert!(!out.contains("d39"));
}

#[test]
fn tasks_select_by_name_family_and_list_known_ones() {
    let t = select_tasks(&["ruler".into()]).unwrap();
    assert_eq!(t.len(), 13);
    assert!(t.iter().all(|t| t.name.starts_with("ruler/")));
    let t = select_tasks(&["passkey,ruler/vt".into(), "passkey".into()]).unwrap();
    assert_eq!(
        t.iter().map(|t| t.name).collect::<Vec<_>>(),
        ["passkey", "ruler/vt"]
    );
    let err = select_tasks(&["nope".into()]).unwrap_err().to_string();
    assert!(
        err.contains("unknown task 'nope'") && err.contains("ruler/niah_single_1"),
        "{err}"
    );
    assert!(err.contains("families: passkey, niah, ruler"), "{err}");
    assert!(matches!(select_tasks(&[]), Err(RunError::NoTasks)));
}

#[test]
fn missing_and_malformed_datasets_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("longctx-runner-data-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = PlanConfig {
        lengths: vec![],
        depths: vec![],
        samples: 1,
        seed: 0,
        limit: Some(2),
        data_root: Some(dir.clone()),
        skip_bad_lines: false,
        template_tokens: 0,
        raw_tokens: 0,
        max_new_tokens: None,
    };
    let counter = |t: &str| t.len();
    let task = select_tasks(&["leval/coursera".into()]).unwrap()[0];
    let err = plan_task(task, &cfg, &counter).unwrap_err().to_string();
    assert!(
        err.contains("leval/coursera") && err.contains("missing"),
        "{err}"
    );
    std::fs::create_dir_all(dir.join("leval/closed-ended")).unwrap();
    std::fs::write(dir.join("leval/closed-ended/coursera.jsonl"), "{not json\n").unwrap();
    let err = plan_task(task, &cfg, &counter).unwrap_err().to_string();
    assert!(err.contains("coursera.jsonl, line 1"), "{err}");
    let lenient = PlanConfig {
        skip_bad_lines: true,
        ..cfg
    };
    let planned = plan_task(task, &lenient, &counter).unwrap();
    assert!(planned.samples.is_empty() && planned.skipped.len() == 1);
}
