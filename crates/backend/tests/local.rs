//! LocalBackend on the real default model (SmolLM2-135M-Instruct): chat template, prefill,
//! raw completion, context overflow, concurrent requests, tokenizer round trips and LongBench
//! middle truncation.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, OnceLock};

use longctx_backend::{
    truncate_middle_tokens, BackendError, ChatRequest, CompletionRequest, FinishReason, Flow,
    LlmBackend, LocalBackend, Message, RunPlan, Sampling, StreamEvent,
};
use longctx_engine::Model;

fn model() -> Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            Arc::new(Model::load(&common::default_model_path()).expect("default model loads"))
        })
        .clone()
}

fn backend(policy: &str, options: &str) -> LocalBackend {
    LocalBackend::new(model(), "smollm2", policy, options).expect("backend")
}

const QUESTION: &str = "What is the capital of France?";

#[test]
fn info_reflects_the_policy() {
    let full = backend("full", "");
    assert_eq!(full.info().context_window, 8192);
    assert!(full.info().caps.chat && full.info().caps.tokenize);
    assert_eq!(
        backend("full", "max_context=100").info().context_window,
        100
    );
    assert_eq!(backend("streaming", "").info().context_window, usize::MAX);
    assert_eq!(backend("auto", "").info().context_window, usize::MAX);
    let e = LocalBackend::new(model(), "m", "nope", "").unwrap_err();
    assert!(
        matches!(e, BackendError::Policy(_)) && e.to_string().contains("nope"),
        "{e}"
    );
    // `auto` may pick `infllm`, which has no `max_context`.
    let e = LocalBackend::new(model(), "m", "auto", "max_context=64").unwrap_err();
    assert!(e.to_string().contains("max_context"), "{e}");
}

#[test]
fn chat_uses_the_gguf_template_and_prefill_continues_the_answer() {
    let b = backend("full", "");
    let msgs = [Message::user(QUESTION)];
    let text = b.render_chat(&msgs, None).unwrap();
    // SmolLM2's own template adds its default system prompt.
    assert!(text.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
    assert!(text.ends_with(&format!(
        "<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    )));
    let with = b.render_chat(&msgs, Some("The capital")).unwrap();
    assert_eq!(with, format!("{text}The capital"));

    let req = ChatRequest::user(QUESTION, Sampling::greedy(12));
    let a = b.chat(&req).unwrap();
    assert!(!a.text.trim().is_empty(), "{a:?}");
    assert_eq!(
        b.chat(&req).unwrap().text,
        a.text,
        "greedy is deterministic"
    );
    assert!(a.prompt_tokens > 5 && a.completion_tokens > 0 && a.completion_tokens <= 12);

    let pre = b
        .chat(&ChatRequest {
            prefill: Some("The capital of France is".into()),
            ..req.clone()
        })
        .unwrap();
    assert!(
        !pre.text.starts_with("The capital"),
        "only the continuation: {pre:?}"
    );
    assert!(pre.text.contains("Paris"), "{pre:?} vs {a:?}");
    assert!(pre.prompt_tokens > a.prompt_tokens);
}

#[test]
fn completion_reports_length_and_stop_strings() {
    let b = backend("full", "");
    let req = CompletionRequest {
        prompt: "One, two, three, four,".into(),
        sampling: Sampling::greedy(6),
    };
    let c = b.complete(&req).unwrap();
    assert_eq!((c.finish, c.completion_tokens), (FinishReason::Length, 6));
    let first = c.text.split(',').next().unwrap_or_default().to_string();
    let s = b
        .complete(&CompletionRequest {
            sampling: Sampling {
                stop: vec![",".into()],
                ..req.sampling.clone()
            },
            ..req.clone()
        })
        .unwrap();
    assert_eq!(
        (s.text.as_str(), s.finish),
        (first.as_str(), FinishReason::Stop)
    );
    let e = b
        .complete(&CompletionRequest {
            prompt: String::new(),
            sampling: Sampling::greedy(4),
        })
        .unwrap_err();
    assert!(matches!(e, BackendError::InvalidRequest(_)), "{e}");
}

#[test]
fn prompts_past_the_full_window_are_context_overflows() {
    let b = backend("full", "max_context=40");
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(6);
    let e = b
        .chat(&ChatRequest::user(long.clone(), Sampling::greedy(8)))
        .unwrap_err();
    match &e {
        BackendError::ContextOverflow {
            endpoint: None,
            needed: Some(n),
            limit: Some(40),
            ..
        } => assert!(*n > 40),
        e => panic!("expected a context overflow, got {e}"),
    }
    assert!(e.is_context_overflow());
    // A long-context policy takes the same prompt.
    let s = backend("streaming", "sinks=4,budget=24");
    let c = s
        .chat(&ChatRequest::user(long, Sampling::greedy(4)))
        .unwrap();
    assert!(c.prompt_tokens > 40 && c.completion_tokens > 0);
}

#[test]
fn concurrent_requests_match_sequential_ones() {
    let b = Arc::new(backend("full", ""));
    let prompts = ["Name a color.", QUESTION, "Say hello."];
    let want: Vec<String> = prompts
        .iter()
        .map(|p| {
            b.chat(&ChatRequest::user(*p, Sampling::greedy(8)))
                .unwrap()
                .text
        })
        .collect();
    let threads: Vec<_> = prompts
        .iter()
        .map(|p| {
            let b: Arc<dyn LlmBackend> = b.clone();
            let p = p.to_string();
            std::thread::spawn(move || b.chat(&ChatRequest::user(p, Sampling::greedy(8))))
        })
        .collect();
    let got: Vec<String> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap().text)
        .collect();
    assert_eq!(got, want);
}

#[test]
fn tokenizer_round_trips_and_rejects_bad_ids() {
    let b = backend("full", "");
    let text = "Long-context models read whole books.";
    let ids = b.tokenize(text).unwrap();
    assert_eq!(b.count_tokens(text).unwrap(), ids.len());
    assert!(ids.len() > 4);
    assert_eq!(b.detokenize(&ids).unwrap(), text);
    let e = b.detokenize(&[u32::MAX]).unwrap_err();
    assert!(matches!(e, BackendError::InvalidRequest(_)), "{e}");
}

#[test]
fn truncate_middle_keeps_both_ends_like_longbench() {
    let b = backend("full", "");
    let text: String = (1..=60).map(|i| format!("word{i} ")).collect();
    let ids = b.tokenize(&text).unwrap();
    assert!(ids.len() > 60, "{}", ids.len());
    // Short enough: unchanged.
    assert_eq!(truncate_middle_tokens(&b, &text, ids.len()).unwrap(), text);
    for max in [20, 21] {
        let half = max / 2;
        let want =
            b.detokenize(&ids[..half]).unwrap() + &b.detokenize(&ids[ids.len() - half..]).unwrap();
        let got = truncate_middle_tokens(&b, &text, max).unwrap();
        assert_eq!(got, want);
        assert!(
            got.starts_with("word1 word2") && got.ends_with("word60 "),
            "{got}"
        );
        assert!(!got.contains("word30 "), "{got}");
        assert!(b.count_tokens(&got).unwrap() <= max);
    }
}

/// What a streamed request reported, in order.
#[derive(Debug, Default)]
struct Seen {
    plans: Vec<RunPlan>,
    prefill: Vec<(usize, usize)>,
    text: Vec<String>,
}

/// Streams `req`, stopping when `stop` says so.
fn stream(
    b: &LocalBackend,
    req: &ChatRequest,
    mut stop: impl FnMut(&Seen) -> bool,
) -> (longctx_backend::Result<longctx_backend::Completion>, Seen) {
    let mut seen = Seen::default();
    let r = b.chat_stream(req, &mut |e| {
        match e {
            StreamEvent::Started(p) => seen.plans.push(p.clone()),
            StreamEvent::Prefill { done, total } => seen.prefill.push((done, total)),
            StreamEvent::Text(t) => seen.text.push(t.to_string()),
        }
        if stop(&seen) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    });
    (r, seen)
}

#[test]
fn streaming_reports_the_plan_prefill_and_text_of_the_whole_answer() {
    let b = backend("full", "chunk=16");
    let req = ChatRequest::user(QUESTION, Sampling::greedy(12));
    let whole = b.chat(&req).unwrap();
    let (r, seen) = stream(&b, &req, |_| false);
    let c = r.unwrap();
    assert_eq!(c.text, whole.text);
    assert_eq!(seen.text.concat(), whole.text);
    assert!(seen.text.len() > 2, "{:?}", seen.text);
    assert_eq!(seen.plans.len(), 1);
    let plan = &seen.plans[0];
    assert_eq!(
        (plan.prompt_tokens, plan.max_tokens, plan.policy.as_deref()),
        (c.prompt_tokens, 12, Some("full"))
    );
    // One progress report per 16-token chunk, ending at the whole prompt.
    assert_eq!(seen.prefill.len(), c.prompt_tokens.div_ceil(16));
    assert_eq!(
        seen.prefill.last(),
        Some(&(c.prompt_tokens, c.prompt_tokens))
    );
    assert_eq!(c.policy.as_deref(), Some("full"));
    assert!(
        c.prefill_time > std::time::Duration::ZERO && c.latency >= c.prefill_time + c.decode_time
    );
}

#[test]
fn a_stopped_request_ends_within_one_chunk_or_one_token() {
    let b = backend("full", "chunk=16");
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let req = ChatRequest::user(long, Sampling::greedy(50));
    // Stop at the first prefill report: nothing more is read.
    let (r, seen) = stream(&b, &req, |s| !s.prefill.is_empty());
    assert!(matches!(r, Err(BackendError::Cancelled)), "{r:?}");
    assert_eq!(seen.prefill, vec![(16, seen.plans[0].prompt_tokens)]);
    assert!(seen.text.is_empty());
    // Stop at the first piece of text: no second piece.
    let (r, seen) = stream(&b, &req, |s| !s.text.is_empty());
    assert!(matches!(r, Err(BackendError::Cancelled)), "{r:?}");
    assert_eq!(seen.text.len(), 1);
    // Stopping at the start runs nothing at all.
    let (r, seen) = stream(&b, &req, |s| !s.plans.is_empty());
    assert!(matches!(r, Err(BackendError::Cancelled)) && seen.prefill.is_empty());
}

#[test]
fn auto_caps_an_absurd_answer_budget_instead_of_leaving_full_attention() {
    let b = backend("auto", "");
    let req = ChatRequest::user("Hi", Sampling::greedy(1_000_000_000_000));
    let (r, seen) = stream(&b, &req, |s| !s.text.is_empty());
    assert!(matches!(r, Err(BackendError::Cancelled)), "{r:?}");
    let plan = &seen.plans[0];
    assert_eq!(plan.policy.as_deref(), Some("full"));
    assert_eq!(plan.capped_from, Some(1_000_000_000_000));
    assert_eq!(plan.max_tokens, 8192 - plan.prompt_tokens);
    // A prompt that does not fit goes to the long-context policy, with the reason.
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(900);
    let (_, seen) = stream(&b, &ChatRequest::user(long, Sampling::greedy(4)), |_| true);
    let plan = &seen.plans[0];
    assert_eq!(plan.policy.as_deref(), Some("infllm"));
    assert!(
        plan.policy_reason.as_deref().unwrap_or("").contains("8192"),
        "{plan:?}"
    );
}

#[test]
fn the_prefix_cache_reads_only_a_chat_turn_that_is_new() {
    let cached = backend("full", "").with_prefix_cache(true);
    let fresh = backend("full", "");
    let first = vec![Message::user(QUESTION)];
    let a = cached
        .chat(&ChatRequest {
            messages: first.clone(),
            ..ChatRequest::user("", Sampling::greedy(16))
        })
        .unwrap();
    assert_eq!(a.cached_tokens, 0);
    let mut second = first;
    second.push(Message::assistant(a.text.clone()));
    second.push(Message::user("And of Italy?"));
    let req = ChatRequest {
        messages: second,
        ..ChatRequest::user("", Sampling::greedy(16))
    };
    let b = cached.chat(&req).unwrap();
    let want = fresh.chat(&req).unwrap();
    assert!(
        b.cached_tokens >= a.prompt_tokens && b.cached_tokens < b.prompt_tokens,
        "{b:?} after {a:?}"
    );
    assert_eq!(b.text, want.text);
    assert_eq!(want.cached_tokens, 0);
}
