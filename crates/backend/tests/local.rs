//! LocalBackend on the real default model (SmolLM2-135M-Instruct): chat template, prefill,
//! raw completion, context overflow, concurrent requests, tokenizer round trips and LongBench
//! middle truncation.

mod common;

use std::sync::{Arc, OnceLock};

use longctx_backend::{
    truncate_middle_tokens, BackendError, ChatRequest, CompletionRequest, FinishReason, LlmBackend,
    LocalBackend, Message, Sampling,
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
        matches!(e, BackendError::Config(_)) && e.to_string().contains("nope"),
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
