//! Between longctx's request types and the OpenAI wire structs ([`crate::wire`]): request
//! bodies, answers and stream chunks to [`Completion`]s; parse failures are described in
//! words for [`crate::BackendError::BadResponse`].

use std::time::Duration;

use crate::wire::{
    ChatCompletionRequest, ChatCompletionResponse, CompletionApiRequest, CompletionResponse,
    MessageContent, StopField, StreamOptions, Usage, WireMessage, WireSampling,
};
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
    if let Some(m) = s.min_p {
        if !(0.0..=1.0).contains(&m) {
            return Err(BackendError::InvalidRequest(format!(
                "min-p must be in [0, 1], got {m}"
            )));
        }
    }
    Ok(())
}

/// The wire form of `s`; `stream` asks for SSE with a final usage chunk.
fn wire_sampling(s: &Sampling, stream: bool) -> WireSampling {
    WireSampling {
        max_tokens: Some(s.max_tokens as u64),
        temperature: Some(f64::from(s.temperature)),
        top_p: Some(f64::from(s.top_p)),
        top_k: s.top_k.map(i64::from),
        min_p: s.min_p.map(f64::from),
        // Both spellings: llama.cpp reads the first, vLLM the second.
        repeat_penalty: s.repeat_penalty.map(f64::from),
        repetition_penalty: s.repeat_penalty.map(f64::from),
        repeat_last_n: s.repeat_last_n.map(|n| n as i64),
        stop: (!s.stop.is_empty()).then(|| StopField::Many(s.stop.clone())),
        seed: s.seed,
        stream: Some(stream),
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        ..WireSampling::default()
    }
}

/// `POST /completions` body.
pub fn completion_body(model: &str, req: &CompletionRequest, stream: bool) -> CompletionApiRequest {
    CompletionApiRequest {
        model: model.into(),
        prompt: req.prompt.clone(),
        sampling: wire_sampling(&req.sampling, stream),
        longctx: Default::default(),
    }
}

/// `POST /chat/completions` body. A prefill becomes a final assistant message that the server
/// continues (vLLM needs `continue_final_message` and no generation prompt; llama.cpp
/// continues a final assistant message by itself and ignores the extra fields).
pub fn chat_body(model: &str, req: &ChatRequest, stream: bool) -> ChatCompletionRequest {
    let message = |role: &str, content: &str| WireMessage {
        role: role.into(),
        content: Some(MessageContent::Text(content.into())),
    };
    let mut messages: Vec<WireMessage> = req
        .messages
        .iter()
        .map(|m| message(m.role.as_str(), &m.content))
        .collect();
    let prefill = req.prefill.as_deref();
    if let Some(p) = prefill {
        messages.push(message("assistant", p));
    }
    ChatCompletionRequest {
        model: model.into(),
        messages,
        sampling: wire_sampling(&req.sampling, stream),
        continue_final_message: prefill.map(|_| true),
        add_generation_prompt: prefill.map(|_| false),
        longctx: Default::default(),
    }
}

/// `finish_reason` as longctx reads it (`abort`/`error` are servers' aborted generations).
pub fn finish_reason(s: Option<&str>) -> FinishReason {
    match s {
        Some("length") => FinishReason::Length,
        Some("abort") | Some("error") => FinishReason::Error,
        _ => FinishReason::Stop,
    }
}

/// The counts of a `usage` object into `c`.
pub fn apply_usage(c: &mut Completion, usage: Option<&Usage>) {
    if let Some(u) = usage {
        c.prompt_tokens = u.prompt_tokens as usize;
        c.completion_tokens = u.completion_tokens as usize;
        c.cached_tokens = u
            .prompt_tokens_details
            .as_ref()
            .map_or(0, |d| d.cached_tokens as usize);
    }
}

/// A completion from the first choice's text and finish reason and the answer's usage.
fn first_choice(
    first: Option<(String, Option<&str>)>,
    usage: Option<&Usage>,
    latency: Duration,
) -> std::result::Result<Completion, String> {
    let (text, finish) = first.ok_or_else(|| "no \"choices\" in the answer".to_string())?;
    let mut c = Completion {
        text,
        finish: finish_reason(finish),
        latency,
        ..Completion::default()
    };
    apply_usage(&mut c, usage);
    Ok(c)
}

/// The first choice of a chat answer.
pub fn chat_completion(
    v: ChatCompletionResponse,
    latency: Duration,
) -> std::result::Result<Completion, String> {
    let first = v.choices.first().map(|c| {
        (
            c.message.content.clone().unwrap_or_default(),
            c.finish_reason.as_deref(),
        )
    });
    first_choice(first, v.usage.as_ref(), latency)
}

/// The first choice of a text-completion answer.
pub fn text_completion(
    v: CompletionResponse,
    latency: Duration,
) -> std::result::Result<Completion, String> {
    let first = v
        .choices
        .first()
        .map(|c| (c.text.clone(), c.finish_reason.as_deref()));
    first_choice(first, v.usage.as_ref(), latency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;
    use serde_json::{json, Value};

    fn to_value<T: serde::Serialize>(t: &T) -> Value {
        serde_json::to_value(t).unwrap()
    }

    #[test]
    fn bodies_carry_only_what_is_set() {
        let req = CompletionRequest {
            prompt: "Hi".into(),
            sampling: Sampling::greedy(8),
        };
        let b = to_value(&completion_body("m", &req, false));
        assert_eq!(
            b,
            json!({"model":"m","prompt":"Hi","max_tokens":8,"temperature":0.0,"top_p":1.0,"stream":false})
        );
        let s = to_value(&completion_body("m", &req, true));
        assert_eq!(s["stream"], json!(true));
        assert_eq!(s["stream_options"], json!({"include_usage": true}));
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
        let b = to_value(&chat_body("m", &req, false));
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
        let v = serde_json::from_str(r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Paris.","tool_calls":[]},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":12,"total_tokens":14,"completion_tokens":2}}"#).unwrap();
        let c = chat_completion(v, Duration::ZERO).unwrap();
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
        let v = serde_json::from_str(r#"{"choices":[{"text":" one two","index":0,"logprobs":null,"finish_reason":"length"}],"created":1,"model":"x","object":"text_completion","usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5},"id":"c"}"#).unwrap();
        let c = text_completion(v, Duration::ZERO).unwrap();
        assert_eq!(
            (c.text.as_str(), c.finish),
            (" one two", FinishReason::Length)
        );
        // Broken answers are described.
        let e = chat_completion(ChatCompletionResponse::default(), Duration::ZERO).unwrap_err();
        assert!(e.contains("no \"choices\""), "{e}");
        let e = serde_json::from_value::<ChatCompletionResponse>(
            json!({"choices": [{"message": {"content": 5}}]}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e = serde_json::from_value::<CompletionResponse>(json!({"choices": [{"message": {}}]}))
            .unwrap_err();
        assert!(e.to_string().contains("missing field `text`"), "{e}");
    }
}
