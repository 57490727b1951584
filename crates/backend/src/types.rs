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
    /// How many recent tokens the repetition penalty looks at; `None` = the backend's default
    /// (64 locally, as llama.cpp).
    pub repeat_last_n: Option<usize>,
    /// Drop tokens less likely than `min_p` × the most likely one; `None` = off.
    pub min_p: Option<f32>,
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
            repeat_last_n: None,
            min_p: None,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FinishReason {
    /// End of text or a stop string.
    #[default]
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The server reported it aborted the generation.
    Error,
}

/// The result of a request, with its statistics.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Completion {
    pub text: String,
    pub finish: FinishReason,
    /// Prompt tokens as the backend counted them (remote: the server's `usage`, 0 if absent).
    pub prompt_tokens: usize,
    /// Prompt tokens served from a cache instead of being read again (local: the prefix
    /// cache; remote: `usage.prompt_tokens_details.cached_tokens`, 0 if absent).
    pub cached_tokens: usize,
    /// Generated tokens (remote: the server's `usage`, 0 if absent).
    pub completion_tokens: usize,
    /// Wall time of the request, retries included.
    pub latency: Duration,
    /// Time spent reading the prompt (local; remote when streaming: time to the first token).
    pub prefill_time: Duration,
    /// Time spent generating after the prompt was read.
    pub decode_time: Duration,
    /// The KV-cache policy that ran (local backends; `auto` resolved), `None` remotely.
    pub policy: Option<String>,
}

/// What a backend is about to run, reported once per streamed request before any work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPlan {
    /// Prompt tokens (0 when the backend cannot tell before the server answers).
    pub prompt_tokens: usize,
    /// Of which served from a cache.
    pub cached_tokens: usize,
    /// The output budget that applies (after any cap, see `capped_from`).
    pub max_tokens: usize,
    /// The requested `max_tokens` when the backend lowered it to what the model can generate.
    pub capped_from: Option<usize>,
    /// The KV-cache policy that runs (local backends), with why `auto` chose it.
    pub policy: Option<String>,
    pub policy_reason: Option<String>,
}

/// One step of a streamed request.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent<'a> {
    /// The request starts (local backends: after tokenizing, before reading the prompt).
    Started(&'a RunPlan),
    /// Prompt tokens read so far, of `total` (local backends, after each chunk).
    Prefill { done: usize, total: usize },
    /// The next piece of generated text (complete UTF-8; stop strings already held back).
    Text(&'a str),
}

/// The consumer's answer to each [`StreamEvent`]: go on, or stop the request. A stopped
/// request ends with [`crate::BackendError::Cancelled`] within one prefill chunk or one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// The callback a streaming call reports to.
pub type OnEvent<'f> = dyn FnMut(StreamEvent<'_>) -> Flow + 'f;
