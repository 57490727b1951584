//! Control flow of every method against a scripted backend: the exact prompts sent, chunk
//! boundaries and budgets, parallel map order independent of completion order, the memory
//! budget, collapse when it must happen, errors surfaced with their step, cancellation.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use longctx_backend::{
    BackendError, BackendInfo, Capabilities, ChatRequest, Completion, CompletionRequest,
    LlmBackend, Sampling,
};
use longctx_pipelines::{run_method, Answer, Document, PipelineError, Progress, Query};

type Script = dyn Fn(&str, usize) -> Result<String, BackendError> + Send + Sync;

/// A backend whose tokens are whitespace-separated words and whose replies come from a
/// script given (prompt, call number).
struct Scripted {
    info: BackendInfo,
    window: Option<usize>,
    parallel: usize,
    script: Box<Script>,
    calls: AtomicUsize,
    log: Mutex<Vec<ChatRequest>>,
}

impl Scripted {
    fn new(
        window: Option<usize>,
        script: impl Fn(&str, usize) -> Result<String, BackendError> + Send + Sync + 'static,
    ) -> Scripted {
        Scripted {
            info: BackendInfo {
                model_id: "scripted".into(),
                context_window: 0,
                max_output_tokens: 0,
                caps: Capabilities {
                    chat: true,
                    ..Capabilities::default()
                },
            },
            window,
            parallel: 1,
            script: Box::new(script),
            calls: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        }
    }

    fn prompts(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.messages[0].content.clone())
            .collect()
    }
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

impl LlmBackend for Scripted {
    fn info(&self) -> &BackendInfo {
        &self.info
    }
    fn reading_window(&self) -> Option<usize> {
        self.window
    }
    fn parallelism(&self) -> usize {
        self.parallel
    }
    fn complete(&self, _: &CompletionRequest) -> longctx_backend::Result<Completion> {
        Err(BackendError::InvalidRequest("chat only".into()))
    }
    fn chat(&self, req: &ChatRequest) -> longctx_backend::Result<Completion> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.log.lock().expect("log lock").push(req.clone());
        let prompt = &req.messages[0].content;
        let text = (self.script)(prompt, n)?;
        Ok(Completion {
            prompt_tokens: words(prompt),
            completion_tokens: words(&text),
            text,
            ..Completion::default()
        })
    }
    fn count_tokens(&self, text: &str) -> longctx_backend::Result<usize> {
        Ok(words(text))
    }
}

/// `n` filler sentences of 6 words, with `needle` after sentence `at`.
fn document(n: usize, at: usize, needle: &str) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("Filler sentence number {i} says nothing. "));
        if i == at {
            s.push_str(needle);
            s.push(' ');
        }
        if i % 5 == 4 {
            s.push('\n');
        }
    }
    s
}

fn query(text: String, question: &str) -> Query {
    Query {
        documents: vec![Document {
            name: "doc.txt".into(),
            text,
        }],
        question: question.into(),
        sampling: Sampling::greedy(16),
    }
}

fn run(method: &str, options: &str, b: &Scripted, q: &Query) -> Result<Answer, PipelineError> {
    run_method(method, options, b, q, &mut |_| true)
}

const NEEDLE: &str = "The pass key is 71432.";
const QUESTION: &str = "What is the pass key?";

/// A map/collapse reply that answers when the prompt holds the needle or an answer.
fn structured(prompt: &str) -> String {
    if prompt.contains("71432") {
        "Extracted Information: the pass key\nRationale: stated\nAnswer: 71432\nConfidence Score: 5"
            .into()
    } else {
        "Extracted Information: none\nRationale: nothing here\nAnswer: [NO INFORMATION]\nConfidence Score: 0".into()
    }
}

#[test]
fn direct_sends_the_document_then_the_question() {
    let b = Scripted::new(Some(10_000), |_, _| Ok("71432".into()));
    let q = query("Some text. The pass key is 71432.".into(), QUESTION);
    let a = run("direct", "", &b, &q).unwrap();
    assert_eq!(a.text, "71432");
    assert_eq!(
        b.prompts(),
        vec![format!("Some text. The pass key is 71432.\n\nAnswer the question about the document above.\nQuestion: {QUESTION}")]
    );
    assert_eq!(
        b.log.lock().unwrap()[0].instruction.as_deref(),
        Some(QUESTION)
    );
    assert_eq!(a.calls, 1);
}

#[test]
fn mapreduce_maps_every_chunk_drops_the_empty_ones_and_reduces() {
    let b = Scripted::new(Some(100_000), |p, _| {
        Ok(if p.contains("Information of Chunk") {
            "Rationale: chunk 0 is sure\nAnswer: 71432".into()
        } else {
            structured(p)
        })
    });
    let q = query(document(400, 250, NEEDLE), QUESTION);
    let a = run("mapreduce", "chunk=1000,map_tokens=50", &b, &q).unwrap();
    assert_eq!(a.text, "71432");
    let maps: Vec<_> = a.trace.phase("map").collect();
    let map_prompts = &b.prompts()[..maps.len()];
    // Every chunk fits the budget: chunk − prompt − output − template margin.
    let fixed = words(&longctx_pipelines::mapreduce_map_prompt(QUESTION, ""));
    assert!(maps
        .iter()
        .all(|m| m.input_tokens.unwrap() <= 1000 - fixed - 50 - 64));
    assert!(maps.len() >= 3, "{}", maps.len());
    // Only the chunk with the needle survives into the reduce prompt.
    let kept: Vec<_> = maps
        .iter()
        .filter(|m| m.detail["dropped"] == false)
        .collect();
    assert_eq!(kept.len(), 1);
    let reduce = b.prompts().last().unwrap().clone();
    assert!(
        reduce.starts_with("You are given information extracted")
            && reduce.contains("Information of Chunk 0:\nExtracted Information: the pass key")
    );
    assert!(!reduce.contains("Information of Chunk 1:"));
    // The map prompts hold the whole document, in order, between the markers.
    let read: String = map_prompts
        .iter()
        .map(|p| {
            p.split("<text>\n")
                .nth(1)
                .unwrap()
                .split("\n</text>")
                .next()
                .unwrap()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(words(&read), words(&q.documents[0].text));
    assert_eq!(a.calls, maps.len() + 1);
}

#[test]
fn parallel_map_keeps_chunk_order_whatever_finishes_first() {
    let mut b = Scripted::new(Some(100_000), |p, n| {
        // Early calls finish last.
        std::thread::sleep(Duration::from_millis(40u64.saturating_sub(n as u64 * 10)));
        let i: usize = p
            .split("Filler sentence number ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(9999);
        Ok(format!("Answer: first sentence {i}\nConfidence Score: 3"))
    });
    b.parallel = 4;
    let q = query(document(200, 1000, ""), QUESTION);
    let a = run("mapreduce", "chunk=400,map_tokens=20", &b, &q).unwrap();
    let firsts: Vec<usize> = a
        .trace
        .phase("map")
        .map(|m| {
            m.output
                .rsplit(' ')
                .next()
                .unwrap()
                .split('\n')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let mut sorted = firsts.clone();
    sorted.sort_unstable();
    assert_eq!(firsts, sorted, "map outputs in chunk order");
    assert!(firsts.len() >= 4);
}

#[test]
fn mapreduce_collapses_when_the_outputs_do_not_fit_one_call() {
    let b = Scripted::new(Some(100_000), |p, _| {
        Ok(
            if p.contains("Information of Chunk") && p.contains("Combine") {
                "Answer: merged 71432\nConfidence Score: 4".into()
            } else if p.contains("Information of Chunk") {
                "Answer: 71432".into()
            } else {
                // Long map outputs so their sum exceeds one call.
                format!(
                    "Answer: 71432 {}\nConfidence Score: 4",
                    "padding ".repeat(40)
                )
            },
        )
    });
    let q = query(document(600, 10, NEEDLE), QUESTION);
    let a = run("mapreduce", "chunk=600,map_tokens=60", &b, &q).unwrap();
    assert!(a.trace.phase("collapse").count() >= 1, "{:?}", a.trace);
    assert_eq!(a.text, "71432");
}

#[test]
fn a_failing_map_call_is_an_error_naming_its_step() {
    let b = Scripted::new(Some(100_000), |_, n| {
        if n == 2 {
            Err(BackendError::Http {
                endpoint: "http://x".into(),
                status: 500,
                body: "boom".into(),
                retry_after: None,
            })
        } else {
            Ok("Answer: 1\nConfidence Score: 1".into())
        }
    });
    let q = query(document(400, 1000, ""), QUESTION);
    let e = run("mapreduce", "chunk=500,map_tokens=20", &b, &q).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("map 3/") && s.contains("boom"), "{s}");
}

#[test]
fn memagent_rewrites_a_bounded_memory_and_answers_from_it() {
    let b = Scripted::new(Some(3000), |p, n| {
        Ok(if p.contains("Updated memory:") {
            let old = p
                .split("<memory>\n")
                .nth(1)
                .unwrap()
                .split("\n</memory>")
                .next()
                .unwrap()
                .to_string();
            if p.contains("71432") {
                format!("memory {n}: pass key 71432")
            } else if old.contains("71432") {
                old
            } else {
                format!("memory {n}: nothing yet")
            }
        } else {
            "So the answer is 71432.".into()
        })
    });
    let q = query(document(500, 300, NEEDLE), QUESTION);
    let a = run("memagent", "chunk=800,memory=64", &b, &q).unwrap();
    assert_eq!(a.text, "71432");
    let log = b.log.lock().unwrap();
    let updates: Vec<_> = log
        .iter()
        .filter(|r| r.messages[0].content.contains("Updated memory:"))
        .collect();
    assert!(updates.len() >= 3);
    assert!(updates.iter().all(|r| r.sampling.max_tokens == 64));
    assert!(updates[0].messages[0]
        .content
        .contains("<memory>\nNo previous memory\n</memory>"));
    // Each step sees the memory the step before wrote.
    let memories: Vec<_> = a.trace.phase("memory").map(|s| s.output.clone()).collect();
    for (k, r) in updates.iter().enumerate().skip(1) {
        assert!(r.messages[0]
            .content
            .contains(&format!("<memory>\n{}\n</memory>", memories[k - 1])));
    }
    let last = log.last().unwrap();
    assert!(last.messages[0].content.contains(&format!(
        "<memory>\n{}\n</memory>",
        memories.last().unwrap()
    )));
    assert!(
        !last.messages[0].content.contains("Filler sentence"),
        "the answer sees only the memory"
    );
}

#[test]
fn rag_keeps_the_best_units_in_document_order_within_the_budget() {
    let b = Scripted::new(Some(100_000), |p, _| Ok(p.to_string()));
    let text = document(400, 321, NEEDLE);
    let q = query(text, "What is the pass key?");
    let a = run("rag", "unit=40,budget=120", &b, &q).unwrap();
    let kept: Vec<_> = a.trace.phase("retrieve").collect();
    let used: usize = kept.iter().map(|s| s.input_tokens.unwrap() + 3).sum();
    assert!(used <= 120, "{used}");
    assert!(
        kept.windows(2).all(|w| w[0].index < w[1].index),
        "document order"
    );
    let best = kept
        .iter()
        .max_by(|x, y| {
            x.detail["score"]
                .as_f64()
                .partial_cmp(&y.detail["score"].as_f64())
                .unwrap()
        })
        .unwrap();
    assert!(best.output.contains(NEEDLE), "{}", best.output);
    // The reader saw the needle and the question.
    assert!(a.text.contains(NEEDLE) && a.text.ends_with("Question: What is the pass key?"));
}

#[test]
fn auto_reads_directly_when_the_document_fits_and_in_pieces_when_not() {
    let b = Scripted::new(Some(2000), |p, _| Ok(structured(p)));
    let short = query("The pass key is 71432.".into(), QUESTION);
    assert_eq!(run("auto", "", &b, &short).unwrap().trace.method, "direct");
    let long = query(document(1000, 500, NEEDLE), QUESTION);
    let a = run("auto", "", &b, &long).unwrap();
    assert_eq!(a.trace.method, longctx_pipelines::AUTO_LONG_METHOD);
}

#[test]
fn bad_options_and_inputs_are_named_before_any_call() {
    let b = Scripted::new(Some(2000), |_, _| Ok(String::new()));
    let q = query("text".into(), QUESTION);
    let e = run("mapreduce", "chunks=5", &b, &q)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown option 'chunks'") && e.contains("chunk, map_tokens"),
        "{e}"
    );
    let e = run("memagent", "memory=-3", &b, &q)
        .unwrap_err()
        .to_string();
    assert!(e.contains("memory=-3"), "{e}");
    let e = run("magic", "", &b, &q).unwrap_err().to_string();
    assert!(
        e.contains("unknown method 'magic'") && e.contains("mapreduce"),
        "{e}"
    );
    assert!(matches!(
        run("direct", "", &b, &query(" ".into(), QUESTION)),
        Err(PipelineError::NoDocument)
    ));
    assert!(matches!(
        run("direct", "", &b, &query("x".into(), " ")),
        Err(PipelineError::EmptyQuestion)
    ));
    let tiny = Scripted::new(Some(100), |_, _| Ok(String::new()));
    let e = run(
        "mapreduce",
        "",
        &tiny,
        &query(document(100, 0, ""), QUESTION),
    )
    .unwrap_err();
    assert!(matches!(e, PipelineError::WindowTooSmall { .. }), "{e}");
    assert_eq!(b.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn the_caller_can_stop_a_run_between_steps() {
    let b = Scripted::new(Some(100_000), |p, _| Ok(structured(p)));
    let q = query(document(400, 1000, ""), QUESTION);
    let e = run_method("mapreduce", "chunk=500,map_tokens=20", &b, &q, &mut |p| {
        !matches!(p, Progress::Step { done: 2, .. })
    })
    .unwrap_err();
    assert!(matches!(e, PipelineError::Cancelled), "{e}");
    assert_eq!(b.calls.load(Ordering::SeqCst), 2);
}
