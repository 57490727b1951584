//! Request and response types shared by every backend (methods doc, Part D1, trimmed to what
//! the local engine and OpenAI-compatible servers both offer).

use std::time::Duration;

/// What a backend is and what it can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// The model's name (a GGUF file name locally, the served model name remotely).
    pub model_id: String,
    /// Total tokens (prompt + output) one request may use. `usize::MAX` means the backend has
    /// no hard limit (a local long-context policy such as `infllm` or `streaming`, or `auto`);
    /// `0` means unknown (a remote server whose window was not configured).
    pub context_window: usize,
    /// Most output tokens one request may ask for (`0` = unknown).
    pub max_output_tokens: usize,
    pub caps: Capabilities,
}

/// Capabilities a caller may rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Prompt-in/text-out without a chat template ([`crate::LlmBackend::complete`]).
    pub raw_completion: bool,
    /// [`crate::LlmBackend::chat`].
    pub chat: bool,
    /// The assistant turn can start with given text ([`ChatRequest::prefill`]).
    pub assistant_prefill: bool,
    /// Per-token log-probabilities of the output (no backend offers them yet).
    pub logprobs: bool,
    /// [`crate::LlmBackend::tokenize`] / [`crate::LlmBackend::detokenize`] work exactly.
    pub tokenize: bool,
}

/// Sampling settings of one request. The default is greedy decoding of up to 256 tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// 0 = greedy.
    pub temperature: f32,
    /// Nucleus sampling mass in (0, 1]; 1 = off.
    pub top_p: f32,
    /// Keep only the k most likely tokens; `None` = off (OpenAI semantics).
    pub top_k: Option<u32>,
    /// Most tokens to generate (≥ 1).
    pub max_tokens: usize,
    /// Generation stops before the first occurrence of any of these; the text excludes it.
    pub stop: Vec<String>,
    /// Random seed for sampled decoding; `None` = the backend's default.
    pub seed: Option<u64>,
    /// Repetition penalty (> 0; 1 = off); `None` = off. Sent to servers as both
    /// `repeat_penalty` (llama.cpp) and `repetition_penalty` (vLLM).
    pub repeat_penalty: Option<f32>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: None,
            max_tokens: 256,
            stop: Vec::new(),
            seed: None,
            repeat_penalty: None,
        }
    }
}

impl Sampling {
    /// Greedy decoding of at most `max_tokens` tokens.
    pub fn greedy(max_tokens: usize) -> Sampling {
        Sampling {
            max_tokens,
            ..Sampling::default()
        }
    }
}

/// Who speaks a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name in chat templates and the OpenAI API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// Parses `system`, `user` or `assistant`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Message {
        Message::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new(Role::Assistant, content)
    }
}

/// A chat request.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// The assistant turn starts with this text; the completion holds only what follows it.
    pub prefill: Option<String>,
    pub sampling: Sampling,
    /// The question alone, for query-aware KV-cache policies (e.g. CItruS) that need it apart
    /// from the long context. Remote servers ignore it; the local engine gives it to instruction-aware policies (citrus).
    pub instruction: Option<String>,
}

impl ChatRequest {
    /// A single user message with the given sampling.
    pub fn user(content: impl Into<String>, sampling: Sampling) -> ChatRequest {
        ChatRequest {
            messages: vec![Message::user(content)],
            prefill: None,
            sampling,
            instruction: None,
        }
    }
}

/// A raw completion request: the prompt goes to the model as is (no chat template).
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRequest {
    pub prompt: String,
    pub sampling: Sampling,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// End of text or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The server reported it aborted the generation.
    Error,
}

/// The result of a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub text: String,
    pub finish: FinishReason,
    /// Prompt tokens as the backend counted them (remote: the server's `usage`, 0 if absent).
    pub prompt_tokens: usize,
    /// Generated tokens (remote: the server's `usage`, 0 if absent).
    pub completion_tokens: usize,
    /// Wall time of the request, retries included.
    pub latency: Duration,
}
