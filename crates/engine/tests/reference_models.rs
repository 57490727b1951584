//! The real models against llama.cpp: prompt tokens, greedy continuations and last-position
//! logits recorded in `fixtures/reference.json` (see its `_about`, `greedy_method`).
//! SmolLM2 (the default model) always runs; Qwen2.5-Coder-0.5B and Gemma 3 270M run with
//! `cargo test -- --ignored` once pulled (`longctx model pull NAME`).

mod common;

use longctx_backend::catalog;
use longctx_engine::perplexity::{full_policy, perplexity};
use longctx_engine::policy::FullPolicy;
use longctx_engine::sampling::argmax;
use longctx_engine::{Model, Session};
use serde_json::Value;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// Largest logit gap we accept as a numerical near-tie when our argmax differs from
/// llama.cpp's choice. llama.cpp multiplies with Q8-quantized activations and keeps the KV
/// cache (and flash attention) in f16; our prefill runs in f32. Measured per-logit differences
/// are up to 0.34 after a batched prompt and about 0.2 after one-token steps, so a flip needs a
/// gap below that; a wrong model trails by whole logits.
const NEAR_TIE: f32 = 0.25;

/// Prompt tokenization and greedy continuations match llama.cpp. The reference continuation is
/// teacher-forced: at every step our argmax must be llama.cpp's token, or llama.cpp's token
/// must trail our argmax by less than [`NEAR_TIE`]; the free-running greedy output must agree
/// on at least `min_exact` leading tokens unless a near-tie came first.
fn check_greedy(model: &Model, reference: &Value, min_exact: usize) {
    let mut cases: Vec<&Value> = reference["greedy"]["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .collect();
    if reference["greedy"]["chat"].is_object() {
        cases.push(&reference["greedy"]["chat"]);
    }
    for case in cases {
        let prompt = case["prompt"]
            .as_str()
            .or(case["rendered_prompt"].as_str())
            .expect("prompt text");
        let want_prompt = ids(&case["prompt_ids"]);
        let got_prompt = model.tokenizer.encode(prompt, true, true);
        assert_eq!(got_prompt, want_prompt, "prompt tokens of {prompt:?}");
        let want = ids(&case["generated_ids"]);
        let mut s = Session::new(model, Box::new(FullPolicy::new(model.cfg.context_length)));
        s.feed(&got_prompt, |_| {}).expect("prompt fits");
        let (mut exact, mut first_tie) = (0usize, None);
        for (step, &w) in want.iter().enumerate() {
            let logits = s.last_logits();
            let ours = argmax(logits).expect("logits");
            if ours == w {
                if first_tie.is_none() {
                    exact += 1;
                }
            } else {
                let gap = logits[ours as usize] - logits[w as usize];
                assert!(
                    gap < NEAR_TIE,
                    "{prompt:?} step {step}: we pick {ours}, llama.cpp {w}, which trails by {gap:.3} (not a near-tie)"
                );
                first_tie.get_or_insert(step);
            }
            s.feed(&[w], |_| {}).expect("decode");
        }
        eprintln!("{prompt:?}: {exact}/{} leading greedy tokens identical to llama.cpp; first near-tie at {first_tie:?}", want.len());
        assert!(
            exact >= min_exact || first_tie == Some(exact),
            "{prompt:?}: only {exact} leading tokens match llama.cpp"
        );
    }
}

/// The last-position logits of the reference prompt are close to llama.cpp's.
fn check_logits(model: &Model, reference: &Value, tol: f32) {
    let r = &reference["logits_last_position"];
    let prompt = ids(&r["prompt_ids"]);
    let mut s = Session::new(model, Box::new(FullPolicy::new(model.cfg.context_length)));
    let logits = s.feed(&prompt, |_| {}).expect("prompt fits").to_vec();
    for entry in r["top10"]
        .as_array()
        .or(r["top5"].as_array())
        .expect("top logits")
    {
        let id = entry["id"].as_u64().expect("id") as usize;
        let want = entry["logit"].as_f64().expect("logit") as f32;
        assert!(
            (logits[id] - want).abs() < tol,
            "logit of token {id}: {} vs llama.cpp {want}",
            logits[id]
        );
    }
    assert_eq!(
        argmax(&logits),
        Some(r["top5"][0]["id"].as_u64().expect("id") as u32)
    );
}

/// The whole perplexity text tokenizes to exactly llama.cpp's ids.
fn check_text_tokens(model: &Model, name: &str) {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ppl_tokens.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("ppl_tokens.json"))
        .expect("json");
    let want = ids(&all[name]["ids"]);
    let got = model.tokenizer.encode(&common::essays_text(), true, false);
    let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(
        (got.len(), first_diff),
        (want.len(), None),
        "{name}: tokenization of the essays differs from llama.cpp"
    );
}

fn check_perplexity(model: &Model, reference: &Value) {
    let want = reference["perplexity"]["ppl"].as_f64().expect("ppl");
    let want_tokens = reference["perplexity"]["n_tokens"]
        .as_u64()
        .expect("n_tokens") as usize;
    let tokens = model.tokenizer.encode(&common::essays_text(), true, false);
    assert_eq!(
        tokens.len(),
        want_tokens,
        "token count of the perplexity text differs from llama.cpp"
    );
    let r = perplexity(model, &tokens, 512, &full_policy(512), |_| {}).expect("perplexity");
    let rel = (r.ppl - want).abs() / want;
    eprintln!(
        "PPL {:.4} ± {:.4} vs llama.cpp {want} ({:.3}% off)",
        r.ppl,
        r.error,
        rel * 100.0
    );
    assert!(
        rel < 0.01,
        "PPL {:.4} is {:.2}% from llama.cpp's {want}",
        r.ppl,
        rel * 100.0
    );
}

fn catalogue_model(name: &str) -> Option<Model> {
    let path = catalog::local_path(catalog::find(name).expect("catalogue entry"));
    if !path.exists() {
        eprintln!(
            "skipping: {} not pulled (longctx model pull {name})",
            path.display()
        );
        return None;
    }
    Some(Model::load(&path).expect("model loads"))
}

#[test]
fn smollm2_tokenizes_the_essays_like_llama_cpp() {
    check_text_tokens(common::default_model(), "smollm2-135m");
}

#[test]
fn smollm2_greedy_matches_llama_cpp() {
    check_greedy(
        common::default_model(),
        &common::reference()["smollm2-135m"],
        16,
    );
}

#[test]
fn smollm2_logits_match_llama_cpp() {
    // llama.cpp quantizes activations to Q8 for every product and keeps the KV cache in f16;
    // our prefill runs in f32, so logits differ by a few tenths (measured max 0.34).
    check_logits(
        common::default_model(),
        &common::reference()["smollm2-135m"],
        0.4,
    );
}

#[test]
#[ignore = "needs `longctx model pull qwen2.5-coder-0.5b` (491 MB) and ~2 minutes"]
fn qwen2_matches_llama_cpp() {
    let Some(model) = catalogue_model("qwen2.5-coder-0.5b") else {
        return;
    };
    let r = &common::reference()["qwen2.5-coder-0.5b"];
    check_text_tokens(&model, "qwen2.5-coder-0.5b");
    check_perplexity(&model, r);
    check_logits(&model, r, 0.35);
    check_greedy(&model, r, 16);
}

#[test]
#[ignore = "needs `longctx model pull gemma3-270m` (253 MB) and ~2 minutes"]
fn gemma3_matches_llama_cpp() {
    let Some(model) = catalogue_model("gemma3-270m") else {
        return;
    };
    let r = &common::reference()["gemma3-270m"];
    check_text_tokens(&model, "gemma3-270m");
    check_perplexity(&model, r);
    check_logits(&model, r, 0.35);
    check_greedy(&model, r, 16);
}

#[test]
fn smollm2_chat_template_renders_like_llama_cpp() {
    use longctx_engine::chat::{render_chat, ChatMessage};
    let model = common::default_model();
    let chat = &common::reference()["smollm2-135m"]["greedy"]["chat"];
    let user = chat["user_message"].as_str().expect("user message");
    let text = render_chat(
        model.chat_template.as_deref(),
        &[ChatMessage::new("user", user)],
        true,
        "",
        "",
    )
    .expect("template renders");
    assert_eq!(
        text,
        chat["rendered_prompt"].as_str().expect("rendered prompt")
    );
}
