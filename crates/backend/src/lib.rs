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
pub mod wire;

pub use error::{BackendError, Result, RetryAfter};
pub use local::LocalBackend;
pub use openai::{OpenAiBackend, OpenAiConfig, RetryPolicy};
pub use spec::BackendSpec;
pub use truncate::truncate_middle_tokens;
pub use types::{
    BackendInfo, Capabilities, ChatRequest, Completion, CompletionRequest, FinishReason, Flow,
    Message, OnEvent, Role, RunPlan, Sampling, StreamEvent,
};

/// A language model behind a blocking API.
pub trait LlmBackend: Send + Sync {
    /// What the backend is and can do.
    fn info(&self) -> &BackendInfo;

    /// Raw completion: the prompt goes to the model as is.
    fn complete(&self, req: &CompletionRequest) -> Result<Completion>;

    /// Chat completion with the model's chat template.
    fn chat(&self, req: &ChatRequest) -> Result<Completion>;

    /// [`LlmBackend::complete`], reporting each step to `on_event` as it happens; the
    /// callback's [`Flow::Stop`] ends the request with [`BackendError::Cancelled`] (checked
    /// after every prefill chunk and every generated token where the backend streams). The
    /// default, for backends that cannot stream, runs the whole request and reports its text
    /// once.
    fn complete_stream(
        &self,
        req: &CompletionRequest,
        on_event: &mut OnEvent<'_>,
    ) -> Result<Completion> {
        report_whole(self.complete(req)?, on_event)
    }

    /// [`LlmBackend::chat`], streamed as [`LlmBackend::complete_stream`] is.
    fn chat_stream(&self, req: &ChatRequest, on_event: &mut OnEvent<'_>) -> Result<Completion> {
        report_whole(self.chat(req)?, on_event)
    }

    /// The longest prompt + answer the model reads well in one call: its trained context
    /// locally (whatever the KV policy lets it hold), the configured window remotely;
    /// `None` when unknown. Pipelines size their chunks from it.
    fn reading_window(&self) -> Option<usize> {
        let w = self.info().context_window;
        (w > 0 && w < usize::MAX).then_some(w)
    }

    /// How many requests are worth sending at once (1 for the engine in this process, which
    /// already uses every core for one request; the concurrency limit for servers).
    fn parallelism(&self) -> usize {
        1
    }

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

/// The streaming fallback: one [`StreamEvent::Text`] with the whole answer.
fn report_whole(c: Completion, on_event: &mut OnEvent<'_>) -> Result<Completion> {
    if !c.text.is_empty() && on_event(StreamEvent::Text(&c.text)) == Flow::Stop {
        return Err(BackendError::Cancelled);
    }
    Ok(c)
}
