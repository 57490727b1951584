//! JSON bodies of the OpenAI-compatible API and the parsing of answers; parse failures are
//! described in words for [`crate::BackendError::BadResponse`].

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::{
    BackendError, ChatRequest, Completion, CompletionRequest, FinishReason, Result, Sampling,
};

/// Rejects what no server would accept, before any traffic.
pub fn check_sampling(s: &Sampling) -> Result<()> {
    if s.max_tokens == 0 {
        return Err(BackendError::InvalidRequest(
            "max_tokens must be at least 1".into(),
        ));
    }
    if !(s.temperature.is_finite() && s.temperature >= 0.0) {
        return Err(BackendError::InvalidRequest(format!(
            "temperature must be a finite number ≥ 0, got {}",
            s.temperature
        )));
    }
    if !(s.top_p > 0.0 && s.top_p <= 1.0) {
        return Err(BackendError::InvalidRequest(format!(
            "top-p must be in (0, 1], got {}",
            s.top_p
        )));
    }
    if let Some(r) = s.repeat_penalty {
        if !(r.is_finite() && r > 0.0) {
            return Err(BackendError::InvalidRequest(format!(
                "repeat penalty must be a finite number > 0, got {r}"
            )));
        }
    }
    Ok(())
}

fn sampling_fields(out: &mut Map<String, Value>, s: &Sampling) {
    out.insert("max_tokens".into(), json!(s.max_tokens));
    out.insert("temperature".into(), json!(s.temperature));
    out.insert("top_p".into(), json!(s.top_p));
    out.insert("stream".into(), json!(false));
    if !s.stop.is_empty() {
        out.insert("stop".into(), json!(s.stop));
    }
    if let Some(seed) = s.seed {
        out.insert("seed".into(), json!(seed));
    }
    if let Some(k) = s.top_k {
        out.insert("top_k".into(), json!(k));
    }
    if let Some(r) = s.repeat_penalty {
        out.insert("repeat_penalty".into(), json!(r)); // llama.cpp
        out.insert("repetition_penalty".into(), json!(r)); // vLLM
    }
}

/// `POST /completions` body.
pub fn completion_body(model: &str, req: &CompletionRequest) -> Value {
    let mut m = Map::new();
    m.insert("model".into(), json!(model));
    m.insert("prompt".into(), json!(req.prompt));
    sampling_fields(&mut m, &req.sampling);
    Value::Object(m)
}

/// `POST /chat/completions` body. A prefill becomes a final assistant message that the server
/// continues (vLLM needs `continue_final_message` and no generation prompt; llama.cpp
/// continues a final assistant message by itself and ignores the extra fields).
pub fn chat_body(model: &str, req: &ChatRequest) -> Value {
    let mut messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let mut m = Map::new();
    m.insert("model".into(), json!(model));
    if let Some(p) = &req.prefill {
        messages.push(json!({"role": "assistant", "content": p}));
        m.insert("continue_final_message".into(), json!(true));
        m.insert("add_generation_prompt".into(), json!(false));
    }
    m.insert("messages".into(), Value::Array(messages));
    sampling_fields(&mut m, &req.sampling);
    Value::Object(m)
}

/// `/tokenize` body understood by both servers: llama.cpp reads `content` (and `add_special`),
/// vLLM reads `model`, `prompt` (and `add_special_tokens`); each ignores the other's fields.
pub fn tokenize_body(model: &str, text: &str) -> Value {
    json!({
        "model": model,
        "prompt": text,
        "content": text,
        "add_special": false,
        "add_special_tokens": false,
    })
}

/// `/detokenize` body (both servers read `tokens`).
pub fn detokenize_body(model: &str, tokens: &[u32]) -> Value {
    json!({"model": model, "tokens": tokens})
}

/// `{"tokens": [ids]}` (llama.cpp, vLLM) or llama.cpp's `with_pieces` form
/// `{"tokens": [{"id": n, "piece": ..}]}`.
pub fn parse_tokens(v: &Value) -> std::result::Result<Vec<u32>, String> {
    let arr = v
        .get("tokens")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no \"tokens\" array in {}", short(v)))?;
    arr.iter()
        .map(|t| {
            t.as_u64()
                .or_else(|| t.get("id").and_then(Value::as_u64))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("token {t} is not a token id"))
        })
        .collect()
}

/// `{"content": ..}` (llama.cpp) or `{"prompt": ..}` (vLLM).
pub fn parse_detokenized(v: &Value) -> std::result::Result<String, String> {
    v.get("content")
        .or_else(|| v.get("prompt"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("no \"content\" or \"prompt\" text in {}", short(v)))
}

fn short(v: &Value) -> String {
    super::snippet(&v.to_string(), 200)
}

/// The first choice of a (chat) completion answer.
pub fn parse_completion(
    v: &Value,
    chat: bool,
    latency: Duration,
) -> std::result::Result<Completion, String> {
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| format!("no \"choices\" in {}", short(v)))?;
    let text = if chat {
        let msg = choice
            .get("message")
            .ok_or_else(|| format!("choice has no \"message\": {}", short(choice)))?;
        match msg.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => return Err(format!("message content is not text: {other}")),
        }
    } else {
        choice
            .get("text")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("choice has no \"text\": {}", short(choice)))?
            .to_string()
    };
    let finish = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => FinishReason::Length,
        Some("abort") | Some("error") => FinishReason::Error,
        _ => FinishReason::Stop,
    };
    let usage = |key: &str| {
        v.get("usage")
            .and_then(|u| u.get(key))
            .and_then(Value::as_u64)
            .map_or(0, |n| n as usize)
    };
    Ok(Completion {
        text,
        finish,
        prompt_tokens: usage("prompt_tokens"),
        completion_tokens: usage("completion_tokens"),
        latency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn bodies_carry_only_what_is_set() {
        let req = CompletionRequest {
            prompt: "Hi".into(),
            sampling: Sampling::greedy(8),
        };
        let b = completion_body("m", &req);
        assert_eq!(
            b,
            json!({"model":"m","prompt":"Hi","max_tokens":8,"temperature":0.0,"top_p":1.0,"stream":false})
        );
        let req = ChatRequest {
            messages: vec![Message::system("S"), Message::user("U")],
            prefill: Some("The answer is".into()),
            sampling: Sampling {
                stop: vec!["\n".into()],
                seed: Some(3),
                top_k: Some(5),
                repeat_penalty: Some(1.5),
                ..Sampling::greedy(4)
            },
            instruction: Some("ignored".into()),
        };
        let b = chat_body("m", &req);
        assert_eq!(b["messages"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            b["messages"][2],
            json!({"role":"assistant","content":"The answer is"})
        );
        assert_eq!(b["continue_final_message"], json!(true));
        assert_eq!(b["add_generation_prompt"], json!(false));
        assert_eq!(b["stop"], json!(["\n"]));
        assert_eq!(
            (b["seed"].clone(), b["top_k"].clone()),
            (json!(3), json!(5))
        );
        assert_eq!(b["repeat_penalty"], b["repetition_penalty"]);
        assert!(b.get("instruction").is_none());
    }

    #[test]
    fn answers_of_both_servers_parse() {
        // vLLM chat completion.
        let v: Value = serde_json::from_str(r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Paris.","tool_calls":[]},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":12,"total_tokens":14,"completion_tokens":2}}"#).unwrap();
        let c = parse_completion(&v, true, Duration::ZERO).unwrap();
        assert_eq!(
            (
                c.text.as_str(),
                c.finish,
                c.prompt_tokens,
                c.completion_tokens
            ),
            ("Paris.", FinishReason::Stop, 12, 2)
        );
        // llama.cpp text completion cut by max_tokens.
        let v: Value = serde_json::from_str(r#"{"choices":[{"text":" one two","index":0,"logprobs":null,"finish_reason":"length"}],"created":1,"model":"x","object":"text_completion","usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5},"id":"c"}"#).unwrap();
        let c = parse_completion(&v, false, Duration::ZERO).unwrap();
        assert_eq!(
            (c.text.as_str(), c.finish),
            (" one two", FinishReason::Length)
        );
        // Broken answers are described.
        let e = parse_completion(&json!({"choices": []}), true, Duration::ZERO).unwrap_err();
        assert!(e.contains("no \"choices\""), "{e}");
        let e = parse_completion(
            &json!({"choices": [{"message": {"content": 5}}]}),
            true,
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(e.contains("not text"), "{e}");
        let e = parse_completion(
            &json!({"choices": [{"message": {}}]}),
            false,
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(e.contains("no \"text\""), "{e}");
    }

    #[test]
    fn tokenize_answers_of_both_servers_parse() {
        assert_eq!(
            parse_tokens(&json!({"tokens": [1, 2, 3]})),
            Ok(vec![1, 2, 3])
        );
        assert_eq!(
            parse_tokens(&json!({"count": 2, "max_model_len": 8192, "tokens": [9, 8]})),
            Ok(vec![9, 8])
        );
        assert_eq!(
            parse_tokens(&json!({"tokens": [{"id": 7, "piece": "a"}]})),
            Ok(vec![7])
        );
        assert!(parse_tokens(&json!({"tokens": [-1]})).is_err());
        assert!(parse_tokens(&json!({"ids": []})).is_err());
        assert_eq!(parse_detokenized(&json!({"content": "x"})), Ok("x".into()));
        assert_eq!(parse_detokenized(&json!({"prompt": "y"})), Ok("y".into()));
        assert!(parse_detokenized(&json!({})).is_err());
    }
}
