//! Recognising "prompt too long" answers of OpenAI-compatible servers (vLLM, llama.cpp's
//! server, OpenAI) so they become [`BackendError::ContextOverflow`] instead of a retry.

use crate::BackendError;

/// Phrases (lower-case) the servers use for a prompt that does not fit.
const MARKERS: &[&str] = &[
    "maximum context length",    // vLLM, OpenAI
    "context length",            // vLLM variants, "exceeds the context length"
    "context size",              // llama.cpp: "exceeds the available context size"
    "context window",            // other servers
    "too many tokens",           // generic
    "prompt is too long",        // Anthropic-style proxies
    "exceed_context_size_error", // llama.cpp's error type
    "context_length_exceeded",   // OpenAI's error code
];

/// The error message, type and code of an OpenAI-style error body
/// (`{"error": {"message", "type", "code"}}` or vLLM's older flat `{"message", "type"}`).
fn fields(body: &serde_json::Value) -> Vec<String> {
    let err = body.get("error").unwrap_or(body);
    let mut out = Vec::new();
    if let Some(s) = err.as_str() {
        out.push(s.to_string());
    }
    for key in ["message", "type", "code"] {
        if let Some(s) = err.get(key).and_then(|v| v.as_str()) {
            out.push(s.to_string());
        }
    }
    out
}

/// Whether an HTTP error answer means the prompt does not fit the context. Only 4xx answers
/// and 500 (older llama.cpp servers answer 500 for it) are considered.
pub fn is_context_overflow(status: u16, body: &str) -> bool {
    if !((400..500).contains(&status) || status == 500) {
        return false;
    }
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => fields(&v).join(" "),
        Err(_) => body.to_string(),
    };
    let text = text.to_lowercase();
    MARKERS.iter().any(|m| text.contains(m))
}

/// The first number after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> Option<usize> {
    let at = text.find(prefix)? + prefix.len();
    let digits: String = text[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// A [`BackendError::ContextOverflow`] from an error answer, with the token counts the server
/// gave (llama.cpp's `n_prompt_tokens`/`n_ctx`, vLLM's and OpenAI's message text).
pub fn overflow_error(endpoint: &str, body: &str) -> BackendError {
    let parsed = serde_json::from_str::<serde_json::Value>(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| fields(v).into_iter().next())
        .unwrap_or_else(|| body.trim().to_string());
    let err = parsed.as_ref().map(|v| v.get("error").unwrap_or(v));
    let int = |key: &str| {
        err.and_then(|e| e.get(key))
            .and_then(|v| v.as_u64())
            .map(|n| n as usize)
    };
    let lower = message.to_lowercase();
    let limit = int("n_ctx").or_else(|| number_after(&lower, "maximum context length is"));
    let needed = int("n_prompt_tokens")
        .or_else(|| number_after(&lower, "you requested"))
        .or_else(|| number_after(&lower, "your request has"))
        .or_else(|| number_after(&lower, "resulted in"));
    BackendError::ContextOverflow {
        endpoint: Some(endpoint.to_string()),
        message,
        needed,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // vLLM ≤ 0.9 (flat error object), chat completion with max_tokens.
    const VLLM_OLD: &str = r#"{"object":"error","message":"This model's maximum context length is 2048 tokens. However, you requested 2148 tokens (2048 in the messages, 100 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#;
    // vLLM ≥ 0.10 (nested under "error").
    const VLLM_NEW: &str = r#"{"error":{"message":"This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens. Please reduce the length of the input messages. None","type":"BadRequestError","param":null,"code":400}}"#;
    // vLLM when only max_tokens is too large.
    const VLLM_MAX_TOKENS: &str = r#"{"error":{"message":"'max_tokens' or 'max_completion_tokens' is too large: 3000. This model's maximum context length is 4096 tokens and your request has 1200 input tokens (3000 > 4096 - 1200). None","type":"BadRequestError","param":null,"code":400}}"#;
    // llama.cpp server (2025): HTTP 400.
    const LLAMA_CPP: &str = r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5213,"n_ctx":4096}}"#;
    // Older llama.cpp server: HTTP 500.
    const LLAMA_CPP_OLD: &str = r#"{"error":{"code":500,"message":"the request exceeds the available context size. try increasing the context size or enable context shift","type":"server_error"}}"#;
    // OpenAI.
    const OPENAI: &str = r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;

    fn counts(e: BackendError) -> (Option<usize>, Option<usize>) {
        match e {
            BackendError::ContextOverflow { needed, limit, .. } => (needed, limit),
            e => panic!("not an overflow: {e}"),
        }
    }

    #[test]
    fn real_server_bodies_are_overflows() {
        for (status, body) in [
            (400, VLLM_OLD),
            (400, VLLM_NEW),
            (400, VLLM_MAX_TOKENS),
            (400, LLAMA_CPP),
            (500, LLAMA_CPP_OLD),
            (400, OPENAI),
            (413, "Request too large: too many tokens"),
        ] {
            assert!(is_context_overflow(status, body), "{status} {body}");
        }
        assert_eq!(
            counts(overflow_error("e", VLLM_OLD)),
            (Some(2148), Some(2048))
        );
        assert_eq!(
            counts(overflow_error("e", VLLM_NEW)),
            (Some(5000), Some(4096))
        );
        assert_eq!(
            counts(overflow_error("e", LLAMA_CPP)),
            (Some(5213), Some(4096))
        );
        assert_eq!(
            counts(overflow_error("e", OPENAI)),
            (Some(9000), Some(8192))
        );
        let e = overflow_error("http://h/v1", LLAMA_CPP);
        assert!(e.to_string().contains("http://h/v1") && e.to_string().contains("context size"));
    }

    #[test]
    fn other_errors_are_not_overflows() {
        // vLLM: unknown model; llama.cpp: bad grammar; a 503 while loading.
        let not = [
            (
                404,
                r#"{"error":{"message":"The model `gpt-x` does not exist.","type":"NotFoundError","param":null,"code":404}}"#,
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"Failed to parse grammar","type":"invalid_request_error"}}"#,
            ),
            (
                503,
                r#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#,
            ),
            // A 5xx other than 500 never counts, whatever it says.
            (502, "maximum context length"),
            (200, LLAMA_CPP),
        ];
        for (status, body) in not {
            assert!(!is_context_overflow(status, body), "{status} {body}");
        }
    }
}
