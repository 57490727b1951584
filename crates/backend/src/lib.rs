//! longctx-backend: one blocking API, [`LlmBackend`], over the local longctx engine
//! ([`LocalBackend`]) and OpenAI-compatible HTTP servers such as vLLM and llama.cpp's
//! `llama-server` ([`OpenAiBackend`]), plus helpers every pipeline needs
//! ([`truncate_middle_tokens`]) and the CLI's [`BackendSpec`].
//!
//! Calls block; callers run requests from several threads (the trait is `Send + Sync` and
//! dyn-compatible, so pipelines hold an `Arc<dyn LlmBackend>`).

pub mod catalog;
mod error;
pub mod local;
pub mod openai;
mod spec;
mod truncate;
mod types;

pub use error::{BackendError, Result, RetryAfter};
pub use local::LocalBackend;
pub use openai::{OpenAiBackend, OpenAiConfig, RetryPolicy};
pub use spec::BackendSpec;
pub use truncate::truncate_middle_tokens;
pub use types::{
    BackendInfo, Capabilities, ChatRequest, Completion, CompletionRequest, FinishReason, Message,
    Role, Sampling,
};

/// A language model behind a blocking API.
pub trait LlmBackend: Send + Sync {
    /// What the backend is and can do.
    fn info(&self) -> &BackendInfo;

    /// Raw completion: the prompt goes to the model as is.
    fn complete(&self, req: &CompletionRequest) -> Result<Completion>;

    /// Chat completion with the model's chat template.
    fn chat(&self, req: &ChatRequest) -> Result<Completion>;

    /// Raw completion plus the question alone for query-aware KV-cache policies (CItruS), as
    /// [`ChatRequest::instruction`] is for chat; backends without such policies ignore it.
    fn complete_with_instruction(
        &self,
        req: &CompletionRequest,
        _instruction: Option<&str>,
    ) -> Result<Completion> {
        self.complete(req)
    }

    /// Tokens `text` is in the model's vocabulary (no BOS/EOS added).
    fn count_tokens(&self, text: &str) -> Result<usize>;

    /// Token ids of `text` (no BOS/EOS added); [`BackendError::Unsupported`] where the
    /// backend has no tokenizer.
    fn tokenize(&self, _text: &str) -> Result<Vec<u32>> {
        Err(BackendError::unsupported("tokenize"))
    }

    /// Text of token ids, special tokens skipped; [`BackendError::Unsupported`] where the
    /// backend has no tokenizer.
    fn detokenize(&self, _tokens: &[u32]) -> Result<String> {
        Err(BackendError::unsupported("detokenize"))
    }

    /// The exact prompt text [`LlmBackend::chat`] would feed the model (template applied,
    /// generation prompt added, then `prefill`); [`BackendError::Unsupported`] where the
    /// template is the server's business.
    fn render_chat(&self, _messages: &[Message], _prefill: Option<&str>) -> Result<String> {
        Err(BackendError::unsupported("render_chat"))
    }
}
