//! OpenAiBackend end to end against in-process HTTP servers on 127.0.0.1: (a) an
//! OpenAI-compatible server backed by the real local engine, whose greedy answers must equal
//! LocalBackend's; (b) scripted servers for retries, context overflow, dead endpoints, garbage
//! answers, timeouts, the API key and the concurrency limit.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{dead_base, Gauge, Reply, Request, TestServer};
use longctx_backend::{
    truncate_middle_tokens, BackendError, ChatRequest, CompletionRequest, FinishReason, LlmBackend,
    LocalBackend, Message, OpenAiBackend, OpenAiConfig, RetryPolicy, Role, Sampling,
};
use serde_json::{json, Value};

fn local() -> Arc<LocalBackend> {
    static LOCAL: OnceLock<Arc<LocalBackend>> = OnceLock::new();
    LOCAL
        .get_or_init(|| {
            Arc::new(LocalBackend::load(&common::default_model_path(), "full", "").expect("load"))
        })
        .clone()
}

/// Fast test settings: short timeouts, three quick attempts.
fn config(endpoints: Vec<String>) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(endpoints, "smollm2");
    c.api_key_env = "LONGCTX_BACKEND_TEST_NO_KEY".into();
    c.connect_timeout = Duration::from_secs(2);
    c.read_timeout = Duration::from_secs(30);
    c.retry = RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        factor: 2.0,
        max_delay: Duration::from_secs(2),
    };
    c
}

fn client(endpoints: Vec<String>) -> OpenAiBackend {
    OpenAiBackend::new(config(endpoints)).expect("client")
}

fn sampling_of(v: &Value) -> Sampling {
    Sampling {
        temperature: v["temperature"].as_f64().unwrap_or(0.0) as f32,
        top_p: v["top_p"].as_f64().unwrap_or(1.0) as f32,
        top_k: v["top_k"].as_u64().map(|k| k as u32),
        max_tokens: v["max_tokens"].as_u64().unwrap_or(16) as usize,
        stop: v["stop"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        seed: v["seed"].as_u64(),
        repeat_penalty: v["repeat_penalty"].as_f64().map(|r| r as f32),
        repeat_last_n: v["repeat_last_n"].as_u64().map(|n| n as usize),
        min_p: v["min_p"].as_f64().map(|m| m as f32),
    }
}

/// An SSE body as llama.cpp streams a chat answer: a role chunk, one chunk per piece, a
/// finish chunk, the usage chunk, `[DONE]`.
fn sse_answer(pieces: &[String], c: &longctx_backend::Completion, chat: bool) -> String {
    let finish = match c.finish {
        FinishReason::Length => "length",
        _ => "stop",
    };
    let chunk = |text: Option<&str>, finish: Option<&str>| {
        let choice = if chat {
            json!({"index": 0, "delta": text.map_or(json!({"role": "assistant"}), |t| json!({"content": t})), "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text.unwrap_or(""), "finish_reason": finish})
        };
        format!("data: {}\n\n", json!({"id": "x", "choices": [choice]}))
    };
    let mut body = String::from(": ping\n\n");
    if chat {
        body += &chunk(None, None);
    }
    for p in pieces {
        body += &chunk(Some(p), None);
    }
    body += &chunk(Some(""), Some(finish));
    body += &format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id": "x", "choices": [], "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "total_tokens": c.prompt_tokens + c.completion_tokens}})
    );
    body
}

/// Runs a request on the engine, streamed when `stream` is set, as the server's body.
fn engine_answer(
    stream: bool,
    chat: bool,
    run: impl FnOnce(
        &mut longctx_backend::OnEvent<'_>,
    ) -> longctx_backend::Result<longctx_backend::Completion>,
) -> longctx_backend::Result<Reply> {
    let mut pieces = Vec::new();
    let c = run(&mut |e| {
        if let longctx_backend::StreamEvent::Text(t) = e {
            pieces.push(t.to_string());
        }
        longctx_backend::Flow::Continue
    })?;
    Ok(if stream {
        Reply::raw(200, sse_answer(&pieces, &c, chat))
            .with_header("Content-Type", "text/event-stream")
    } else {
        Reply::json(200, answer(&c, chat))
    })
}

fn answer(c: &longctx_backend::Completion, chat: bool) -> Value {
    let finish = match c.finish {
        FinishReason::Length => "length",
        _ => "stop",
    };
    let choice = if chat {
        json!({"index": 0, "message": {"role": "assistant", "content": c.text}, "finish_reason": finish})
    } else {
        json!({"index": 0, "text": c.text, "finish_reason": finish})
    };
    json!({"choices": [choice], "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens}})
}

/// An OpenAI-compatible server (llama.cpp flavour) over the local engine.
fn engine_server(b: Arc<LocalBackend>) -> TestServer {
    TestServer::start(move |req: &Request| {
        let v = req.json();
        let stream = v["stream"] == json!(true);
        let result = match req.path.as_str() {
            "/v1/chat/completions" => {
                let mut messages: Vec<Message> = v["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        let role = Role::parse(m["role"].as_str().unwrap_or("")).expect("role");
                        Message::new(role, m["content"].as_str().unwrap_or(""))
                    })
                    .collect();
                let prefill = match messages.last() {
                    Some(m) if m.role == Role::Assistant => messages.pop().map(|m| m.content),
                    _ => None,
                };
                let r = ChatRequest {
                    messages,
                    prefill,
                    sampling: sampling_of(&v),
                    instruction: None,
                };
                engine_answer(stream, true, |on| b.chat_stream(&r, on))
            }
            "/v1/completions" => {
                let r = CompletionRequest {
                    prompt: v["prompt"].as_str().unwrap_or("").into(),
                    sampling: sampling_of(&v),
                };
                engine_answer(stream, false, |on| b.complete_stream(&r, on))
            }
            "/tokenize" => b
                .tokenize(v["content"].as_str().unwrap_or(""))
                .map(|t| Reply::json(200, json!({"tokens": t}))),
            "/detokenize" => {
                let ids: Vec<u32> = v["tokens"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_u64().map(|t| t as u32))
                    .collect();
                b.detokenize(&ids)
                    .map(|s| Reply::json(200, json!({"content": s})))
            }
            _ => return Some(Reply::raw(404, "File Not Found")),
        };
        Some(match result {
            Ok(reply) => reply,
            Err(BackendError::ContextOverflow { needed, limit, .. }) => Reply::json(
                400,
                json!({"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": needed, "n_ctx": limit}}),
            ),
            Err(e) => Reply::json(
                500,
                json!({"error": {"code": 500, "message": e.to_string()}}),
            ),
        })
    })
}

#[test]
fn http_answers_equal_the_local_engine() {
    let local = local();
    let server = engine_server(local.clone());
    let remote = client(vec![server.base()]);

    let chat = ChatRequest::user("What is the capital of France?", Sampling::greedy(8));
    let want = local.chat(&chat).unwrap();
    let got = remote.chat(&chat).unwrap();
    assert_eq!(got.text, want.text);
    assert!(!got.text.is_empty());
    assert_eq!(
        (got.finish, got.prompt_tokens, got.completion_tokens),
        (want.finish, want.prompt_tokens, want.completion_tokens)
    );

    let pre = ChatRequest {
        prefill: Some("The capital of France is".into()),
        ..chat.clone()
    };
    assert_eq!(
        remote.chat(&pre).unwrap().text,
        local.chat(&pre).unwrap().text
    );

    let comp = CompletionRequest {
        prompt: "One, two, three,".into(),
        sampling: Sampling {
            stop: vec!["six".into()],
            ..Sampling::greedy(10)
        },
    };
    let (got, want) = (
        remote.complete(&comp).unwrap(),
        local.complete(&comp).unwrap(),
    );
    assert_eq!(
        (
            got.text,
            got.finish,
            got.prompt_tokens,
            got.completion_tokens
        ),
        (
            want.text,
            want.finish,
            want.prompt_tokens,
            want.completion_tokens
        )
    );

    let text: String = (1..=40).map(|i| format!("item{i} ")).collect();
    assert_eq!(
        remote.count_tokens(&text).unwrap(),
        local.count_tokens(&text).unwrap()
    );
    assert_eq!(
        truncate_middle_tokens(&remote, &text, 16).unwrap(),
        truncate_middle_tokens(local.as_ref(), &text, 16).unwrap()
    );
    // The request on the wire: model, greedy, max_tokens, no streaming.
    let reqs = server.requests.lock().unwrap();
    let first = reqs
        .iter()
        .find(|r| r.path == "/v1/chat/completions")
        .unwrap()
        .json();
    assert_eq!(first["model"], "smollm2");
    assert_eq!(first["max_tokens"], 8);
    assert_eq!(first["stream"], false);
}

#[test]
fn streamed_answers_equal_whole_ones_and_carry_usage() {
    let local = local();
    let server = engine_server(local.clone());
    let remote = client(vec![server.base()]);
    let chat = ChatRequest::user("Name three colors.", Sampling::greedy(12));
    let whole = remote.chat(&chat).unwrap();
    let mut pieces = Vec::new();
    let streamed = remote
        .chat_stream(&chat, &mut |e| {
            if let longctx_backend::StreamEvent::Text(t) = e {
                pieces.push(t.to_string());
            }
            longctx_backend::Flow::Continue
        })
        .unwrap();
    assert_eq!(streamed.text, whole.text);
    assert_eq!(pieces.concat(), whole.text);
    assert!(pieces.len() > 2, "{pieces:?}");
    assert_eq!(
        (
            streamed.finish,
            streamed.prompt_tokens,
            streamed.completion_tokens
        ),
        (whole.finish, whole.prompt_tokens, whole.completion_tokens)
    );
    let comp = CompletionRequest {
        prompt: "One, two, three,".into(),
        sampling: Sampling::greedy(6),
    };
    let streamed = remote.complete_stream(&comp, &mut |_| longctx_backend::Flow::Continue);
    assert_eq!(streamed.unwrap().text, local.complete(&comp).unwrap().text);
    // The streamed request asks for SSE with a usage chunk.
    let reqs = server.requests.lock().unwrap();
    let sent = reqs
        .iter()
        .map(|r| r.json())
        .find(|v| v["stream"] == true)
        .unwrap();
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        reqs.iter()
            .find(|r| r.json()["stream"] == true)
            .and_then(|r| r.header("Accept")),
        Some("text/event-stream")
    );
}

#[test]
fn overflow_from_the_engine_server_is_typed() {
    // The same model served with a 48-token window.
    let small = LocalBackend::new(local().model().clone(), "smollm2", "full", "max_context=48");
    let server = engine_server(Arc::new(small.unwrap()));
    let remote = client(vec![server.base()]);
    let long = "The quick brown fox jumps over the lazy dog. ".repeat(6);
    let e = remote
        .chat(&ChatRequest::user(long, Sampling::greedy(4)))
        .unwrap_err();
    match &e {
        BackendError::ContextOverflow {
            endpoint: Some(ep),
            limit: Some(48),
            needed: Some(n),
            ..
        } => assert!(ep.contains(&server.addr.to_string()) && *n > 48, "{e}"),
        e => panic!("expected a context overflow, got {e}"),
    }
    assert_eq!(server.hits(), 1, "an overflow is not retried");
}

const CANNED: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#;

fn hi() -> ChatRequest {
    ChatRequest::user("hi", Sampling::greedy(4))
}

#[test]
fn a_503_is_retried_and_retry_after_is_honoured() {
    let n = Arc::new(AtomicUsize::new(0));
    let server = {
        let n = n.clone();
        TestServer::start(move |_| {
            Some(match n.fetch_add(1, Ordering::SeqCst) {
                0 => Reply::raw(
                    503,
                    r#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#,
                ),
                1 => Reply::raw(429, r#"{"error":{"message":"rate limited"}}"#)
                    .with_header("Retry-After", "1"),
                _ => Reply::raw(200, CANNED),
            })
        })
    };
    let started = Instant::now();
    let c = client(vec![server.base()]).chat(&hi()).unwrap();
    assert_eq!((c.text.as_str(), c.prompt_tokens), ("ok", 3));
    assert_eq!(server.hits(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was ignored"
    );

    // Without retries the 503 surfaces as an HTTP error naming the endpoint.
    n.store(0, Ordering::SeqCst);
    let mut cfg = config(vec![server.base()]);
    cfg.retry = RetryPolicy::none();
    let e = OpenAiBackend::new(cfg).unwrap().chat(&hi()).unwrap_err();
    assert!(matches!(e, BackendError::Http { status: 503, .. }), "{e}");
    assert!(
        e.to_string().contains(&server.addr.to_string()) && e.to_string().contains("Loading model")
    );
}

#[test]
fn a_400_context_overflow_from_vllm_is_typed_and_not_retried() {
    let server = TestServer::start(|_| {
        Some(Reply::raw(
            400,
            r#"{"object":"error","message":"This model's maximum context length is 2048 tokens. However, you requested 2148 tokens (2048 in the messages, 100 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#,
        ))
    });
    let e = client(vec![server.base()]).chat(&hi()).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::ContextOverflow {
                limit: Some(2048),
                needed: Some(2148),
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(server.hits(), 1);
}

#[test]
fn a_dead_endpoint_is_skipped() {
    let live = TestServer::start(|_| Some(Reply::raw(200, CANNED)));
    let dead = dead_base();
    let remote = client(vec![dead.clone(), live.base()]);
    for _ in 0..4 {
        assert_eq!(remote.chat(&hi()).unwrap().text, "ok");
    }
    assert_eq!(live.hits(), 4);
    // Alone, the dead endpoint makes the client give up quickly with a connect error naming it.
    let alone = client(vec![dead.clone()]);
    let started = Instant::now();
    let e = alone.chat(&hi()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &e {
        BackendError::RetriesExhausted { attempts: 3, last } => {
            assert!(matches!(**last, BackendError::Connect { .. }), "{last}");
        }
        e => panic!("expected exhausted retries, got {e}"),
    }
    assert!(
        e.to_string().contains(&dead) && e.to_string().contains("cannot connect"),
        "{e}"
    );
}

#[test]
fn spreads_requests_over_endpoints() {
    let a = TestServer::start(|_| Some(Reply::raw(200, CANNED)));
    let b = TestServer::start(|_| Some(Reply::raw(200, CANNED)));
    let remote = client(vec![a.base(), b.base()]);
    for _ in 0..6 {
        remote.chat(&hi()).unwrap();
    }
    assert_eq!((a.hits(), b.hits()), (3, 3));
}

#[test]
fn garbage_answers_are_clear_errors() {
    let server = TestServer::start(|req| {
        Some(match req.path.as_str() {
            "/v1/chat/completions" => Reply::raw(200, "<html>502 Bad Gateway</html>"),
            "/v1/completions" => Reply::raw(200, r#"{"choices": []}"#),
            _ => Reply::raw(200, r#"{"ids": [1]}"#),
        })
    });
    let remote = client(vec![server.base()]);
    let e = remote.chat(&hi()).unwrap_err();
    assert!(matches!(e, BackendError::BadResponse { .. }), "{e}");
    let s = e.to_string();
    assert!(
        s.contains("/v1/chat/completions") && s.contains("not JSON") && s.contains("<html>"),
        "{s}"
    );
    let e = remote
        .complete(&CompletionRequest {
            prompt: "x".into(),
            sampling: Sampling::greedy(2),
        })
        .unwrap_err();
    assert!(e.to_string().contains("no \"choices\""), "{e}");
    let e = remote.count_tokens("x").unwrap_err();
    assert!(
        e.to_string().contains("/tokenize") && e.to_string().contains("`tokens`"),
        "{e}"
    );
    assert_eq!(server.hits(), 3, "malformed answers are not retried");
}

#[test]
fn a_silent_server_times_out_quickly() {
    let server = TestServer::start(|_| {
        std::thread::sleep(Duration::from_secs(3));
        Some(Reply::raw(200, CANNED))
    });
    let mut cfg = config(vec![server.base()]);
    cfg.read_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let e = OpenAiBackend::new(cfg).unwrap().chat(&hi()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, BackendError::Io { .. }), "{e}");
    assert!(
        e.to_string().contains("timed out") && e.to_string().contains(&server.addr.to_string()),
        "{e}"
    );
}

#[test]
fn tokenize_falls_back_only_when_configured() {
    let server = TestServer::start(|_| Some(Reply::raw(404, "File Not Found")));
    let e = client(vec![server.base()])
        .count_tokens("abcdefgh")
        .unwrap_err();
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
    let mut cfg = config(vec![server.base()]);
    cfg.estimate_tokens = true;
    assert_eq!(
        OpenAiBackend::new(cfg)
            .unwrap()
            .count_tokens("abcdefgh")
            .unwrap(),
        2
    );
    // vLLM's answer shape.
    let vllm = TestServer::start(|req| {
        let v = req.json();
        assert_eq!(v["prompt"], "abc");
        assert_eq!(req.path, "/tokenize");
        Some(Reply::json(
            200,
            json!({"count": 2, "max_model_len": 4096, "tokens": [5, 6]}),
        ))
    });
    assert_eq!(
        client(vec![vllm.base()]).tokenize("abc").unwrap(),
        vec![5, 6]
    );
}

#[test]
fn the_api_key_is_sent_as_a_bearer_token() {
    let server = TestServer::start(|_| Some(Reply::raw(200, CANNED)));
    let var = "LONGCTX_BACKEND_TEST_KEY_E2E";
    std::env::set_var(var, "sk-test-42");
    let mut cfg = config(vec![server.base()]);
    cfg.api_key_env = var.into();
    OpenAiBackend::new(cfg).unwrap().chat(&hi()).unwrap();
    client(vec![server.base()]).chat(&hi()).unwrap();
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs[0].header("Authorization"), Some("Bearer sk-test-42"));
    assert_eq!(reqs[1].header("Authorization"), None);
}

#[test]
fn concurrency_is_limited_across_threads() {
    let gauge = Arc::new(Gauge::default());
    let server = {
        let gauge = gauge.clone();
        TestServer::start(move |_| {
            gauge.enter();
            std::thread::sleep(Duration::from_millis(80));
            gauge.leave();
            Some(Reply::raw(200, CANNED))
        })
    };
    let mut cfg = config(vec![server.base()]);
    cfg.max_concurrency = 2;
    let remote: Arc<dyn LlmBackend> = Arc::new(OpenAiBackend::new(cfg).unwrap());
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let r = remote.clone();
            std::thread::spawn(move || r.chat(&hi()).map(|c| c.text))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap(), "ok");
    }
    assert_eq!(server.hits(), 6);
    assert_eq!(gauge.peak.load(Ordering::SeqCst), 2);
}

#[test]
fn served_models_are_listed() {
    let server = TestServer::start(|req| {
        Some(match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v1/models") => Reply::raw(
                200,
                r#"{"object":"list","data":[{"id":"Qwen/Qwen2.5-7B-Instruct","object":"model","created":1,"owned_by":"vllm","root":"Qwen/Qwen2.5-7B-Instruct","max_model_len":32768,"permission":[]}]}"#,
            ),
            _ => Reply::raw(404, "File Not Found"),
        })
    });
    let models = client(vec![server.base()]).served_models().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(
        (models[0].id.as_str(), models[0].max_model_len),
        ("Qwen/Qwen2.5-7B-Instruct", Some(32768))
    );
}
