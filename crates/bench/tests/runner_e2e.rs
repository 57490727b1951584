//! End-to-end runs of tiny tasks through the local engine and through the OpenAI HTTP client
//! against an in-process OpenAI-compatible server backed by the same engine. Skipped (with a
//! message) when the default model is not in the models cache.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use longctx_backend::local::default_model_path;
use longctx_backend::{
    ChatRequest, CompletionRequest, LlmBackend, LocalBackend, Message, OpenAiBackend, OpenAiConfig,
    RetryPolicy, Role, Sampling,
};
use longctx_bench::runner::{
    chat_template_tokens, plan_task, run_samples, select_tasks, BackendCounter, PlanConfig,
    RunSettings,
};
use longctx_bench::store::{RunRecord, Store};
use longctx_bench::Sample;
use serde_json::{json, Value};

fn model() -> Option<Arc<LocalBackend>> {
    static MODEL: OnceLock<Option<Arc<LocalBackend>>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = default_model_path().ok()?;
            if !path.exists() {
                eprintln!(
                    "skipping: {} is missing (longctx model pull smollm2-135m)",
                    path.display()
                );
                return None;
            }
            Some(Arc::new(
                LocalBackend::load(&path, "auto", "").expect("load the default model"),
            ))
        })
        .clone()
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("longctx-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn record(key: &str) -> RunRecord {
    RunRecord {
        id: 0,
        config_key: key.into(),
        model: "SmolLM2-135M-Instruct.Q4_1.gguf".into(),
        model_sha: "test".into(),
        backend: "local".into(),
        policy: "auto".into(),
        policy_options: String::new(),
        chat_template: "gguf".into(),
        truncation: "none".into(),
        max_input_tokens: None,
        seed: 0,
        sampling: "greedy".into(),
        git_commit: "unknown".into(),
        version: "test".into(),
        started_at: String::new(),
        finished_at: None,
        status: String::new(),
        config: json!({}),
    }
}

/// Passkey (raw completion) and ruler/niah_single_1 (chat with an answer prefix) at 512
/// tokens, one depth, 2 samples each; niah's generation budget cut to 24 tokens.
/// `template_tokens`: the local engine's chat template size, also for the HTTP client (which
/// cannot render the server's template), so both plan the same samples.
fn tiny_samples(backend: &dyn LlmBackend, template_tokens: usize) -> Vec<Sample> {
    let cfg = PlanConfig {
        lengths: vec![512],
        depths: vec![50],
        samples: 2,
        seed: 0,
        limit: None,
        data_root: None,
        skip_bad_lines: false,
        template_tokens,
        // SmolLM2's vocabulary adds no BOS to raw prompts.
        raw_tokens: 0,
        max_new_tokens: None,
    };
    let counter = BackendCounter::new(backend);
    let mut out = Vec::new();
    for task in select_tasks(&["passkey,ruler/niah_single_1".into()]).unwrap() {
        out.extend(plan_task(task, &cfg, &counter).unwrap().samples);
    }
    assert!(counter.take_error().is_none());
    // RULER's length contract: the whole request as sent (chat template, prompt, answer
    // prefix) plus the answer budget fits the target length, and nearly fills it.
    for s in out.iter().filter(|s| s.chat) {
        let Ok(request) = backend.render_chat(&[Message::user(&s.prompt)], Some(&s.answer_prefix))
        else {
            continue;
        };
        let total = backend.count_tokens(&request).unwrap() + s.max_new_tokens;
        assert!((480..=512).contains(&total), "{}: {total} tokens", s.id);
    }
    for s in &mut out {
        s.max_new_tokens = s.max_new_tokens.min(24);
    }
    assert_eq!(out.len(), 4);
    out
}

// ---- a minimal OpenAI-compatible server over the engine ----

fn read_request(stream: &mut TcpStream) -> Option<(String, Value)> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((path, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn sampling(body: &Value) -> Sampling {
    Sampling::greedy(body["max_tokens"].as_u64().unwrap_or(16) as usize)
}

fn answer(engine: &LocalBackend, path: &str, body: &Value) -> (u16, Value) {
    match path {
        "/tokenize" => {
            let text = body["content"].as_str().unwrap_or_default();
            (200, json!({"tokens": engine.tokenize(text).unwrap()}))
        }
        "/detokenize" => {
            let ids: Vec<u32> = serde_json::from_value(body["tokens"].clone()).unwrap();
            (200, json!({"content": engine.detokenize(&ids).unwrap()}))
        }
        "/v1/completions" => {
            let req = CompletionRequest {
                prompt: body["prompt"].as_str().unwrap_or_default().into(),
                sampling: sampling(body),
            };
            let c = engine.complete(&req).unwrap();
            (
                200,
                json!({"choices": [{"text": c.text, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens}}),
            )
        }
        "/v1/chat/completions" => {
            let mut messages: Vec<Message> = body["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    Message::new(
                        Role::parse(m["role"].as_str().unwrap()).unwrap(),
                        m["content"].as_str().unwrap(),
                    )
                })
                .collect();
            let prefill = if body["continue_final_message"] == json!(true) {
                messages.pop().map(|m| m.content)
            } else {
                None
            };
            let c = engine
                .chat(&ChatRequest {
                    messages,
                    prefill,
                    sampling: sampling(body),
                    instruction: None,
                })
                .unwrap();
            (
                200,
                json!({"choices": [{"message": {"role": "assistant", "content": c.text}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens}}),
            )
        }
        _ => (404, json!({"error": "not found"})),
    }
}

/// Serves forever on a background thread; returns the API base.
fn serve(engine: Arc<LocalBackend>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut stream) = conn else { continue };
            let engine = engine.clone();
            std::thread::spawn(move || {
                let Some((path, body)) = read_request(&mut stream) else {
                    return;
                };
                let (status, v) = answer(&engine, &path, &body);
                let body = v.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    format!("http://{addr}/v1")
}

fn client(base: &str) -> OpenAiBackend {
    let mut cfg = OpenAiConfig::new(vec![base.to_string()], "smollm2");
    cfg.retry = RetryPolicy {
        max_attempts: 1,
        initial_delay: Duration::from_millis(10),
        factor: 1.0,
        max_delay: Duration::from_millis(10),
    };
    cfg.connect_timeout = Duration::from_secs(2);
    OpenAiBackend::new(cfg).unwrap()
}

fn settings(c: usize) -> RunSettings {
    RunSettings {
        concurrency: c,
        max_input_tokens: None,
    }
}

#[test]
fn local_and_openai_runs_store_the_same_scored_rows() {
    let Some(engine) = model() else { return };
    let no = AtomicBool::new(false);
    let template_tokens = chat_template_tokens(engine.as_ref()).unwrap();
    let samples = tiny_samples(engine.as_ref(), template_tokens);

    // Local engine, 2 workers.
    let mut store = Store::open(&temp("local.sqlite")).unwrap();
    let run = store.begin_run(&record("local")).unwrap();
    let out = run_samples(
        engine.as_ref(),
        &mut store,
        run,
        &samples,
        &settings(2),
        &no,
        |_| {},
    )
    .unwrap();
    assert_eq!((out.ran, out.skipped, out.errors), (4, 0, 0));
    let local = store.results(run).unwrap();
    assert_eq!(local.len(), 4);
    for r in &local {
        let s = samples.iter().find(|s| s.id == r.sample_id).unwrap();
        assert_eq!(
            r.score,
            s.metric.score_sample(&r.prediction, s).unwrap(),
            "{r:?}"
        );
        assert!(
            r.prompt_tokens > 100 && r.prompt_tokens <= 512 + 40,
            "{r:?}"
        );
        assert!(r.completion_tokens >= 1 && r.error.is_none() && !r.truncated);
        assert_eq!(r.length, Some(512));
        assert_eq!(r.depth, Some(50));
    }
    // The 135M model finds the pass key at 512 tokens.
    assert!(
        local
            .iter()
            .filter(|r| r.task == "passkey")
            .all(|r| r.score == 1.0),
        "{local:?}"
    );
    // Re-running the same configuration runs nothing.
    let again = run_samples(
        engine.as_ref(),
        &mut store,
        run,
        &samples,
        &settings(2),
        &no,
        |_| {},
    )
    .unwrap();
    assert_eq!((again.ran, again.skipped), (0, 4));

    // The same samples through the OpenAI client and a server over the same engine: the
    // prompts (built with the server's /tokenize) and the greedy predictions are identical.
    let base = serve(engine.clone());
    let remote = client(&base);
    let remote_samples = tiny_samples(&remote, template_tokens);
    assert_eq!(remote_samples, samples);
    let mut rstore = Store::open(&temp("remote.sqlite")).unwrap();
    let rrun = rstore.begin_run(&record("remote")).unwrap();
    let out = run_samples(
        &remote,
        &mut rstore,
        rrun,
        &remote_samples,
        &settings(2),
        &no,
        |_| {},
    )
    .unwrap();
    assert_eq!((out.ran, out.errors), (4, 0));
    let rows = rstore.results(rrun).unwrap();
    let key = |r: &longctx_bench::store::ResultRow| {
        (
            r.sample_id.clone(),
            r.prompt_hash.clone(),
            r.prediction.clone(),
            r.score,
        )
    };
    assert_eq!(
        rows.iter().map(key).collect::<Vec<_>>(),
        local.iter().map(key).collect::<Vec<_>>()
    );

    // An unreachable endpoint stops the run with a clear error; stored rows stay.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        client(&format!("http://{a}/v1"))
    };
    let mut more = remote_samples.clone();
    let mut extra = more[0].clone();
    extra.id = "passkey/extra".into();
    more.push(extra);
    let err = run_samples(&dead, &mut rstore, rrun, &more, &settings(2), &no, |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot connect"), "{err}");
    assert_eq!(rstore.results(rrun).unwrap().len(), 4);
}

#[test]
fn max_input_budget_truncates_or_refuses_per_task() {
    let Some(engine) = model() else { return };
    let no = AtomicBool::new(false);
    let template_tokens = chat_template_tokens(engine.as_ref()).unwrap();
    let mut samples = tiny_samples(engine.as_ref(), template_tokens);
    samples.truncate(1); // one passkey sample (Truncation::None)
    let mut middle = samples[0].clone();
    middle.id = "passkey/middle".into();
    middle.truncation = longctx_bench::Truncation::MiddleTokens;
    samples.push(middle);
    let mut store = Store::open(&temp("budget.sqlite")).unwrap();
    let run = store.begin_run(&record("budget")).unwrap();
    let s = RunSettings {
        concurrency: 1,
        max_input_tokens: Some(300),
    };
    run_samples(engine.as_ref(), &mut store, run, &samples, &s, &no, |_| {}).unwrap();
    let rows = store.results(run).unwrap();
    let none = rows
        .iter()
        .find(|r| r.sample_id != "passkey/middle")
        .unwrap();
    assert!(
        none.error.as_deref().unwrap().contains("does not truncate"),
        "{none:?}"
    );
    let mid = rows
        .iter()
        .find(|r| r.sample_id == "passkey/middle")
        .unwrap();
    assert!(mid.truncated && mid.error.is_none(), "{mid:?}");
    assert!(mid.prompt_tokens <= 300 - 8, "{mid:?}");
}
