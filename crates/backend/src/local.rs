//! [`LocalBackend`]: the longctx engine in this process, and the one road to it. Everything
//! that runs the local model — the CLI's `generate`, `chat` and `ask`, the benchmarks, the
//! server — comes through here: model loading, the policy (`auto` resolved per request), the
//! chat template, token limits, sampling, streaming with cancellation, and an optional prefix
//! cache. One loaded [`Model`] is shared read-only; every request gets its own [`Session`],
//! so requests may run concurrently from several threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use longctx_engine::chat::{self, ChatMessage};
use longctx_engine::policy::{build_policy, CachePolicy, PolicyError};
use longctx_engine::sampling::SamplingParams;
use longctx_engine::{
    GenerateParams, Model, ModelError, SavedSession, Session, SessionError, StopReason,
};

use crate::catalog;
use crate::{
    BackendError, BackendInfo, Capabilities, ChatRequest, Completion, CompletionRequest,
    FinishReason, Flow, LlmBackend, Message, OnEvent, Result, RunPlan, Sampling, StreamEvent,
};

/// `auto` → `full` when the input fits, else a long-context policy (the engine's rule).
pub use longctx_engine::policy::resolve_policy;

/// The answer room `auto` keeps beside the prompt when it decides whether full attention
/// fits: a request for more (e.g. `-n 1000000`) does not push a short prompt onto a
/// long-context policy; its budget is capped to what full attention can still generate.
pub const AUTO_ANSWER_RESERVE: usize = 512;

/// Path of the catalogue's default model in the models cache (it may not exist yet:
/// [`catalog::resolve`] or `model pull` fetches it).
pub fn default_model_path() -> Result<PathBuf> {
    Ok(catalog::local_path(catalog::find(catalog::DEFAULT_MODEL)?))
}

// The engine's model must be shareable across request threads.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Model>();
};

/// A session kept after a request, reused when the next prompt extends what it read.
struct CachedSession {
    policy: String,
    instruction: Option<Vec<u32>>,
    saved: SavedSession,
}

/// The local engine behind [`LlmBackend`].
pub struct LocalBackend {
    model: Arc<Model>,
    policy: String,
    policy_options: String,
    /// `full`'s token limit under these options, when `full` is a policy requests may run.
    full_limit: Option<usize>,
    info: BackendInfo,
    /// `Some` when the prefix cache is on: the last request's session.
    prefix_cache: Option<Mutex<Option<CachedSession>>>,
}

impl std::fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBackend")
            .field("model_id", &self.info.model_id)
            .field("policy", &self.policy)
            .field("policy_options", &self.policy_options)
            .finish()
    }
}

fn overflow(needed: usize, limit: usize, policy: &str, trained: usize) -> BackendError {
    let what = if limit == trained {
        format!("which exceeds the model's trained context of {limit} tokens (policy '{policy}')")
    } else {
        format!("but policy '{policy}' allows {limit} (its max_context)")
    };
    BackendError::ContextOverflow {
        endpoint: None,
        message: format!(
            "the request needs {needed} tokens (prompt + answer budget), {what}; use a shorter \
             input or a long-context policy (`auto` picks one)"
        ),
        needed: Some(needed),
        limit: Some(limit),
    }
}

/// What one request runs: its policy, answer budget and the reason `auto` gave.
struct Resolved {
    policy: String,
    max_tokens: usize,
    capped_from: Option<usize>,
    reason: Option<String>,
}

impl LocalBackend {
    /// Wraps a loaded model. `policy` is a registry name or `auto` (full attention while the
    /// request fits the trained context, else a long-context policy); `policy_options` is
    /// `key=value,...` for that policy. `model_id` names the model in [`BackendInfo`].
    pub fn new(
        model: Arc<Model>,
        model_id: impl Into<String>,
        policy: &str,
        policy_options: &str,
    ) -> Result<LocalBackend> {
        let ctx = model.cfg.context_length;
        let facts = model.policy_facts();
        // Validate the name and options now rather than on the first request. For `auto`
        // the options must suit every policy it may pick.
        let candidates: Vec<String> = if policy == "auto" {
            vec![
                resolve_policy(policy, ctx, 0),
                resolve_policy(policy, ctx, usize::MAX),
            ]
        } else {
            vec![policy.to_string()]
        };
        let mut full_limit = None;
        for name in &candidates {
            let built = build_policy(name, policy_options, facts)?;
            if name == "full" {
                full_limit = built.token_limit();
            }
        }
        let window = if policy == "full" {
            full_limit.unwrap_or(ctx)
        } else {
            usize::MAX
        };
        Ok(LocalBackend {
            model,
            policy: policy.to_string(),
            policy_options: policy_options.to_string(),
            full_limit,
            info: BackendInfo {
                model_id: model_id.into(),
                context_window: window,
                max_output_tokens: window,
                caps: Capabilities {
                    raw_completion: true,
                    chat: true,
                    assistant_prefill: true,
                    logprobs: false,
                    tokenize: true,
                },
            },
            prefix_cache: None,
        })
    }

    /// Loads a GGUF file; the model id is the file name.
    pub fn load(path: &Path, policy: &str, policy_options: &str) -> Result<LocalBackend> {
        let model = Model::load(path).map_err(|source| BackendError::Load {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        LocalBackend::new(Arc::new(model), id, policy, policy_options)
    }

    /// Loads a catalogue model by name (fetching it on first use, `log` gets pip's progress)
    /// or a GGUF file by path.
    pub fn open(
        spec: &str,
        policy: &str,
        policy_options: &str,
        log: impl FnMut(&str),
    ) -> Result<LocalBackend> {
        let path = catalog::resolve(spec, log)?;
        LocalBackend::load(&path, policy, policy_options)
    }

    /// Keeps the last request's session and reuses it when the next prompt starts with
    /// everything it read under the same policy (a chat's next turn reads only the new
    /// message). Off by default: the kept session holds its KV cache between requests.
    pub fn with_prefix_cache(mut self, on: bool) -> LocalBackend {
        self.prefix_cache = on.then(|| Mutex::new(None));
        self
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// The requested policy name (possibly `auto`).
    pub fn policy(&self) -> &str {
        &self.policy
    }

    pub fn policy_options(&self) -> &str {
        &self.policy_options
    }

    /// The policy a request needing `needed` tokens (prompt + output) runs under.
    pub fn policy_for(&self, needed: usize) -> String {
        resolve_policy(&self.policy, self.model.cfg.context_length, needed)
    }

    fn make_policy(&self, name: &str) -> Result<Box<dyn CachePolicy>> {
        Ok(build_policy(
            name,
            &self.policy_options,
            self.model.policy_facts(),
        )?)
    }

    /// Picks the policy and answer budget of a request with `prompt` tokens.
    fn resolve(&self, prompt: usize, max_tokens: usize) -> Result<Resolved> {
        let ctx = self.model.cfg.context_length;
        let full_limit = self.full_limit.unwrap_or(ctx);
        if self.policy == "auto" {
            let reserve = max_tokens.min(AUTO_ANSWER_RESERVE);
            if prompt.saturating_add(reserve) <= full_limit {
                let room = full_limit - prompt;
                return Ok(Resolved {
                    policy: "full".into(),
                    max_tokens: max_tokens.min(room),
                    capped_from: (max_tokens > room).then_some(max_tokens),
                    reason: None,
                });
            }
            return Ok(Resolved {
                policy: self.policy_for(usize::MAX),
                max_tokens,
                capped_from: None,
                reason: Some(format!(
                    "auto: the input exceeds the {full_limit}-token trained context"
                )),
            });
        }
        if self.policy == "full" {
            let needed = prompt.saturating_add(max_tokens);
            if needed > full_limit {
                return Err(overflow(needed, full_limit, "full", ctx));
            }
        }
        Ok(Resolved {
            policy: self.policy.clone(),
            max_tokens,
            capped_from: None,
            reason: None,
        })
    }

    fn special_text(&self, id: Option<u32>) -> String {
        id.map(|t| self.model.tokenizer.decode(&[t], true))
            .unwrap_or_default()
    }

    /// Prompt text → tokens for chat (specials parsed; BOS added unless the template wrote it).
    fn chat_tokens(&self, text: &str) -> Vec<u32> {
        let bos = self.special_text(self.model.tokenizer.bos());
        let template_has_bos = !bos.is_empty() && text.starts_with(&bos);
        self.model.tokenizer.encode(text, !template_has_bos, true)
    }

    /// Tokens of a chat request as [`LlmBackend::chat`] feeds them.
    pub fn chat_prompt_tokens(
        &self,
        messages: &[Message],
        prefill: Option<&str>,
    ) -> Result<Vec<u32>> {
        Ok(self.chat_tokens(&self.render_chat(messages, prefill)?))
    }

    /// A session for `policy`, resumed from the prefix cache when it read a prefix of
    /// `prompt` under the same policy and question. Returns it with the tokens it had read.
    fn session_for(
        &self,
        policy: &str,
        instruction: Option<&[u32]>,
        prompt: &[u32],
    ) -> Result<(Session<'_>, usize)> {
        if let Some(slot) = &self.prefix_cache {
            let cached = slot.lock().map_or(None, |mut s| s.take());
            if let Some(c) = cached {
                let read = c.saved.tokens().len();
                if c.policy == policy
                    && c.instruction.as_deref() == instruction
                    && read < prompt.len()
                    && prompt.starts_with(c.saved.tokens())
                {
                    return Ok((Session::restore(&self.model, c.saved), read));
                }
            }
        }
        let mut session = Session::new(&self.model, self.make_policy(policy)?);
        if let Some(q) = instruction {
            // Instruction-aware policies (citrus) score the cache by the question's attention.
            session.set_instruction(q);
        }
        Ok((session, 0))
    }

    fn session_err(&self, e: SessionError) -> BackendError {
        match e {
            SessionError::Model(ModelError::Policy(PolicyError::ContextExceeded {
                policy,
                needed,
                limit,
            })) => overflow(needed, limit, &policy, self.model.cfg.context_length),
            SessionError::Sampling(e) => BackendError::InvalidRequest(e.to_string()),
            SessionError::Cancelled => BackendError::Cancelled,
            e => BackendError::Engine(Box::new(e)),
        }
    }

    /// Runs one request on a session, reporting to `on_event`.
    fn run(
        &self,
        prompt: &[u32],
        sampling: &Sampling,
        instruction: Option<&str>,
        on_event: &mut OnEvent<'_>,
    ) -> Result<Completion> {
        let started = Instant::now();
        let mut params = gen_params(sampling)?;
        if prompt.is_empty() {
            return Err(BackendError::InvalidRequest("the prompt is empty".into()));
        }
        let resolved = self.resolve(prompt.len(), params.max_tokens)?;
        params.max_tokens = resolved.max_tokens;
        let question = instruction
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(|q| self.model.tokenizer.encode(q, false, false));
        let (mut session, cached) =
            self.session_for(&resolved.policy, question.as_deref(), prompt)?;
        let plan = RunPlan {
            prompt_tokens: prompt.len(),
            cached_tokens: cached,
            max_tokens: params.max_tokens,
            capped_from: resolved.capped_from,
            policy: Some(resolved.policy.clone()),
            policy_reason: resolved.reason,
        };
        if on_event(StreamEvent::Started(&plan)) == Flow::Stop {
            return Err(BackendError::Cancelled);
        }
        let total = prompt.len();
        session
            .feed_until(&prompt[cached..], |done| {
                let done = cached + done;
                on_event(StreamEvent::Prefill { done, total }) == Flow::Continue
            })
            .map_err(|e| self.session_err(e))?;
        let prefill_time = started.elapsed();
        let g = session
            .generate(&params, |text| {
                text.is_empty() || on_event(StreamEvent::Text(text)) == Flow::Continue
            })
            .map_err(|e| self.session_err(e))?;
        let decode_time = started.elapsed().saturating_sub(prefill_time);
        if let Some(slot) = &self.prefix_cache {
            if let Ok(mut s) = slot.lock() {
                *s = Some(CachedSession {
                    policy: resolved.policy.clone(),
                    instruction: question,
                    saved: session.save(),
                });
            }
        }
        Ok(Completion {
            text: g.text,
            finish: match g.stop {
                StopReason::EndOfText | StopReason::StopString => FinishReason::Stop,
                StopReason::MaxTokens => FinishReason::Length,
            },
            prompt_tokens: prompt.len(),
            cached_tokens: cached,
            completion_tokens: g.tokens.len(),
            latency: started.elapsed(),
            prefill_time,
            decode_time,
            policy: Some(resolved.policy),
        })
    }
}

/// The engine's generation settings for a request. Unset OpenAI-style options are off (no
/// top-k, no min-p, no repeat penalty), so local and remote sampling mean the same.
pub fn gen_params(s: &Sampling) -> Result<GenerateParams> {
    if s.max_tokens == 0 {
        return Err(BackendError::InvalidRequest(
            "max_tokens must be at least 1".into(),
        ));
    }
    let sampling = SamplingParams {
        temperature: s.temperature,
        top_k: s.top_k.map_or(0, |k| k as usize),
        top_p: s.top_p,
        min_p: s.min_p.unwrap_or(0.0),
        repeat_penalty: s.repeat_penalty.unwrap_or(1.0),
        repeat_last_n: s
            .repeat_last_n
            .unwrap_or(SamplingParams::default().repeat_last_n),
        seed: s.seed.unwrap_or(0),
    };
    sampling
        .validate()
        .map_err(|e| BackendError::InvalidRequest(e.to_string()))?;
    Ok(GenerateParams {
        max_tokens: s.max_tokens,
        stop: s.stop.clone(),
        sampling,
    })
}

fn ignore_events(_: StreamEvent<'_>) -> Flow {
    Flow::Continue
}

impl LlmBackend for LocalBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    /// The prompt is tokenized as plain text (BOS added as the vocabulary says; special-token
    /// text such as `<|im_start|>` is not parsed), like the CLI's `generate`.
    fn complete(&self, req: &CompletionRequest) -> Result<Completion> {
        self.complete_stream(req, &mut ignore_events)
    }

    fn complete_with_instruction(
        &self,
        req: &CompletionRequest,
        instruction: Option<&str>,
    ) -> Result<Completion> {
        let tokens = self.model.tokenizer.encode(&req.prompt, true, false);
        self.run(&tokens, &req.sampling, instruction, &mut ignore_events)
    }

    fn chat(&self, req: &ChatRequest) -> Result<Completion> {
        self.chat_stream(req, &mut ignore_events)
    }

    fn complete_stream(
        &self,
        req: &CompletionRequest,
        on_event: &mut OnEvent<'_>,
    ) -> Result<Completion> {
        let tokens = self.model.tokenizer.encode(&req.prompt, true, false);
        self.run(&tokens, &req.sampling, None, on_event)
    }

    fn chat_stream(&self, req: &ChatRequest, on_event: &mut OnEvent<'_>) -> Result<Completion> {
        if req.messages.is_empty() {
            return Err(BackendError::InvalidRequest("no messages".into()));
        }
        let tokens = self.chat_prompt_tokens(&req.messages, req.prefill.as_deref())?;
        self.run(&tokens, &req.sampling, req.instruction.as_deref(), on_event)
    }

    fn reading_window(&self) -> Option<usize> {
        Some(self.full_limit.unwrap_or(self.model.cfg.context_length))
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.model.tokenizer.encode(text, false, false).len())
    }

    fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.model.tokenizer.encode(text, false, false))
    }

    fn detokenize(&self, tokens: &[u32]) -> Result<String> {
        let vocab = self.model.tokenizer.vocab_size();
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(BackendError::InvalidRequest(format!(
                "token id {bad} is outside the vocabulary (size {vocab})"
            )));
        }
        Ok(self.model.tokenizer.decode(tokens, false))
    }

    fn render_chat(&self, messages: &[Message], prefill: Option<&str>) -> Result<String> {
        let msgs: Vec<ChatMessage> = messages
            .iter()
            .map(|m| ChatMessage::new(m.role.as_str(), &m.content))
            .collect();
        let bos = self.special_text(self.model.tokenizer.bos());
        let eos = self.special_text(self.model.tokenizer.eos());
        let mut text =
            chat::render_chat(self.model.chat_template.as_deref(), &msgs, true, &bos, &eos)?;
        if let Some(p) = prefill {
            text.push_str(p);
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_switches_only_past_the_trained_context() {
        assert_eq!(resolve_policy("auto", 8192, 8192), "full");
        assert_eq!(resolve_policy("auto", 8192, 8193), "infllm");
        assert_eq!(resolve_policy("streaming", 8192, 100_000), "streaming");
    }

    #[test]
    fn unset_options_mean_off_and_bad_values_are_invalid_requests() {
        let p = gen_params(&Sampling::greedy(4)).unwrap();
        assert_eq!(
            (
                p.sampling.top_k,
                p.sampling.min_p,
                p.sampling.repeat_penalty
            ),
            (0, 0.0, 1.0)
        );
        let e = gen_params(&Sampling::greedy(0)).unwrap_err();
        assert!(matches!(e, BackendError::InvalidRequest(_)), "{e}");
        let e = gen_params(&Sampling {
            top_p: 0.0,
            ..Sampling::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("top-p"), "{e}");
    }
}
