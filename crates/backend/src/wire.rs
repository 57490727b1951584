//! The OpenAI-compatible API on the wire: typed, serde-derived request, response, stream
//! chunk, usage and error-envelope structs, shared by the client ([`crate::OpenAiBackend`])
//! and the server. Requests read leniently (every optional field may be absent; the extra
//! fields llama.cpp and vLLM users send are understood); answers of both servers parse.
//! Nothing here does I/O.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A chat message as sent: `content` is text, an array of parts (only text parts are
/// understood) or null (an assistant turn with tool calls).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<MessageContent>,
}

/// The two shapes of a message's `content`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One part of an array `content`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl MessageContent {
    /// The text of the content: the string, or the text parts joined; `Err` names the first
    /// part that is not text.
    pub fn text(&self) -> Result<String, String> {
        match self {
            MessageContent::Text(s) => Ok(s.clone()),
            MessageContent::Parts(parts) => parts
                .iter()
                .map(|p| match (&*p.kind, &p.text) {
                    ("text", Some(t)) => Ok(t.as_str()),
                    (kind, _) => Err(format!("content part of type '{kind}' is not supported")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|t| t.join("")),
        }
    }
}

/// `stop`: one string or a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    One(String),
    Many(Vec<String>),
}

impl StopField {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopField::One(s) => vec![s],
            StopField::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// Sampling and streaming fields common to both generation endpoints, with the extras
/// llama.cpp (`top_k`, `min_p`, `repeat_penalty`, `repeat_last_n`) and vLLM
/// (`repetition_penalty`) users send.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WireSampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_last_n: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

/// longctx's own per-request fields (ignored by other servers).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LongctxFields {
    /// KV-cache policy for this request (`auto`, `full`, `infllm`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The policy's options as a JSON object of `key: value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_options: Option<Map<String, Value>>,
    /// A reading method (pipelines) for this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_options: Option<Map<String, Value>>,
}

/// `POST /v1/chat/completions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    #[serde(default)]
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(flatten)]
    pub sampling: WireSampling,
    /// vLLM: continue the final assistant message instead of starting a new turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_final_message: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_generation_prompt: Option<bool>,
    #[serde(flatten)]
    pub longctx: LongctxFields,
}

/// `POST /v1/completions` (`prompt` as one string; arrays of prompts are not supported).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionApiRequest {
    #[serde(default)]
    pub model: String,
    pub prompt: String,
    #[serde(flatten)]
    pub sampling: WireSampling,
    #[serde(flatten)]
    pub longctx: LongctxFields,
}

/// `usage.prompt_tokens_details`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
}

/// `usage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// longctx's timings beside `usage` (llama.cpp's server reports similar `timings`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub prompt_ms: f64,
    pub decode_ms: f64,
    /// Generated tokens per second of decode time.
    pub decode_per_second: f64,
}

/// The message of a chat answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub role: String,
    /// Text, or null when the server answered with tool calls only.
    #[serde(default)]
    pub content: Option<String>,
}

/// One choice of a chat answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    #[serde(default)]
    pub index: u32,
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// One choice of a text completion (also the shape of a streamed completion chunk).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TextChoice {
    #[serde(default)]
    pub index: u32,
    pub text: String,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// What longctx's server adds to an answer: what ran, and that nothing was cut.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

/// Every answer of the two generation endpoints, whole or streamed, with its choice type:
/// [`ChatCompletionResponse`], [`CompletionResponse`] (also a streamed text chunk) and
/// [`ChatCompletionChunk`] (the final usage chunk of a stream has no choices).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer<C> {
    #[serde(default)]
    pub id: String,
    /// `chat.completion`, `text_completion` or `chat.completion.chunk`.
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default = "Vec::new")]
    pub choices: Vec<C>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub report: RunReport,
}

/// A chat answer (`object: "chat.completion"`).
pub type ChatCompletionResponse = Answer<ChatChoice>;
/// A text-completion answer (`object: "text_completion"`), streamed or not.
pub type CompletionResponse = Answer<TextChoice>;
/// A streamed chat chunk (`object: "chat.completion.chunk"`).
pub type ChatCompletionChunk = Answer<ChunkChoice>;

/// The `delta` of a streamed chat chunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a streamed chat chunk.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    /// Null on every chunk but the one that ends the choice (OpenAI sends the null).
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The body of an error answer: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The inside of an [`ErrorEnvelope`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub param: Option<String>,
    /// A string (OpenAI, vLLM) or the HTTP status as a number (llama.cpp).
    #[serde(default)]
    pub code: Option<Value>,
}

/// `/tokenize` body understood by both servers: llama.cpp reads `content` (and `add_special`),
/// vLLM reads `model`, `prompt` (and `add_special_tokens`); each ignores the other's fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenizeRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_special: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_special_tokens: Option<bool>,
}

impl TokenizeRequest {
    /// The text to tokenize, from whichever field the client used.
    pub fn text(&self) -> Option<&str> {
        self.content.as_deref().or(self.prompt.as_deref())
    }
}

/// A token in a `/tokenize` answer: an id, or llama.cpp's `with_pieces` form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireToken {
    Id(u32),
    Piece { id: u32, piece: Value },
}

impl WireToken {
    pub fn id(&self) -> u32 {
        match self {
            WireToken::Id(id) | WireToken::Piece { id, .. } => *id,
        }
    }
}

/// A `/tokenize` answer (`{"tokens": [...]}`; vLLM adds `count` and `max_model_len`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenizeResponse {
    pub tokens: Vec<WireToken>,
}

/// `/detokenize` body (both servers read `tokens`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DetokenizeRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    pub tokens: Vec<u32>,
}

/// A `/detokenize` answer: `content` (llama.cpp) or `prompt` (vLLM).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DetokenizeResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

impl DetokenizeResponse {
    pub fn text(&self) -> Option<&str> {
        self.content.as_deref().or(self.prompt.as_deref())
    }
}

/// One entry of `GET /v1/models`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub owned_by: String,
    /// vLLM's context window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u64>,
    /// longctx: the model's trained context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// longctx: the KV-cache policies a request may name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<String>>,
}

/// `GET /v1/models`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub data: Vec<ModelEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_read_what_clients_send() {
        let r: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null}
            ],
            "max_completion_tokens": 5, "stop": "x", "top_k": 3, "repetition_penalty": 1.1,
            "stream": true, "stream_options": {"include_usage": true},
            "policy": "infllm", "policy_options": {"topk": 4},
            "logit_bias": {}
        }))
        .unwrap();
        assert_eq!(
            r.messages[1].content.as_ref().map(|c| c.text()),
            Some(Ok("ab".into()))
        );
        assert_eq!(r.messages[2].content, None);
        assert_eq!(r.sampling.max_completion_tokens, Some(5));
        assert_eq!(
            r.sampling.stop.clone().map(StopField::into_vec),
            Some(vec!["x".into()])
        );
        assert_eq!(
            (r.sampling.top_k, r.sampling.repetition_penalty),
            (Some(3), Some(1.1))
        );
        assert_eq!(
            r.sampling.stream_options,
            Some(StreamOptions {
                include_usage: true
            })
        );
        assert_eq!(r.longctx.policy.as_deref(), Some("infllm"));
        let image = MessageContent::Parts(vec![ContentPart {
            kind: "image_url".into(),
            text: None,
        }]);
        assert!(image.text().unwrap_err().contains("image_url"));
    }

    #[test]
    fn unset_fields_are_not_sent() {
        let r = CompletionApiRequest {
            model: "m".into(),
            prompt: "Hi".into(),
            sampling: WireSampling {
                max_tokens: Some(8),
                ..WireSampling::default()
            },
            longctx: LongctxFields::default(),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"model": "m", "prompt": "Hi", "max_tokens": 8})
        );
    }

    #[test]
    fn stream_chunks_and_errors_of_both_servers_parse() {
        // vLLM's final usage chunk (no choices) and a content chunk with a null finish_reason.
        let c: ChatCompletionChunk = serde_json::from_str(r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"total_tokens":7,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":3}}}"#).unwrap();
        assert_eq!(
            c.usage
                .and_then(|u| u.prompt_tokens_details)
                .map(|d| d.cached_tokens),
            Some(3)
        );
        let c: ChatCompletionChunk = serde_json::from_str(r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"created":1,"id":"x","model":"m","object":"chat.completion.chunk"}"#).unwrap();
        assert_eq!(c.choices[0].delta.content.as_deref(), Some("Hi"));
        // llama.cpp's error envelope has a numeric code.
        let e: ErrorEnvelope = serde_json::from_str(
            r#"{"error":{"code":400,"message":"bad","type":"invalid_request_error"}}"#,
        )
        .unwrap();
        assert_eq!(
            (e.error.kind.as_str(), e.error.code),
            ("invalid_request_error", Some(json!(400)))
        );
        let t: TokenizeResponse =
            serde_json::from_str(r#"{"tokens":[1,{"id":7,"piece":"a"}]}"#).unwrap();
        assert_eq!(
            t.tokens.iter().map(WireToken::id).collect::<Vec<_>>(),
            vec![1, 7]
        );
    }
}
