//! [`LocalBackend`]: the longctx engine in this process. One loaded [`Model`] is shared
//! read-only; every request gets a fresh [`Session`] with its own KV-cache policy, so requests
//! may run concurrently from several threads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::catalog;
use longctx_engine::chat::{self, ChatMessage};
use longctx_engine::policy::{
    build_policy, parse_options, CachePolicy, ModelFacts, PolicyError, REGISTRY,
};
use longctx_engine::sampling::SamplingParams;
use longctx_engine::{GenerateParams, Model, ModelError, Session, SessionError, StopReason};

use crate::{
    BackendError, BackendInfo, Capabilities, ChatRequest, Completion, CompletionRequest,
    FinishReason, LlmBackend, Message, Result, Sampling,
};

/// `auto` → `full` when the input fits, else a long-context policy (the engine's rule).
pub use longctx_engine::policy::resolve_policy;

/// Path of the catalogue's default model in the models cache (it may not exist yet: the CLI's
/// `model pull` fetches it).
pub fn default_model_path() -> Result<PathBuf> {
    let entry =
        catalog::find(catalog::DEFAULT_MODEL).map_err(|e| BackendError::Config(e.to_string()))?;
    Ok(catalog::local_path(entry))
}

// The engine's model must be shareable across request threads.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Model>();
};

/// The local engine behind [`LlmBackend`].
pub struct LocalBackend {
    model: Arc<Model>,
    policy: String,
    policy_options: String,
    info: BackendInfo,
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

fn engine_err(e: impl std::fmt::Display) -> BackendError {
    BackendError::Engine(e.to_string())
}

fn overflow(needed: usize, limit: usize, policy: &str) -> BackendError {
    BackendError::ContextOverflow {
        endpoint: None,
        message: format!(
            "the request needs {needed} tokens (prompt + max_tokens) but policy '{policy}' \
             allows {limit}; truncate the input or use a long-context policy (or `auto`)"
        ),
        needed: Some(needed),
        limit: Some(limit),
    }
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
        let facts = ModelFacts {
            n_layers: model.cfg.n_layers,
            context_length: ctx,
        };
        for name in &candidates {
            build_policy(name, policy_options, facts)
                .map_err(|e| BackendError::Config(e.to_string()))?;
        }
        let mut b = LocalBackend {
            model,
            policy: policy.to_string(),
            policy_options: policy_options.to_string(),
            info: BackendInfo {
                model_id: model_id.into(),
                context_window: 0,
                max_output_tokens: 0,
                caps: Capabilities {
                    raw_completion: true,
                    chat: true,
                    assistant_prefill: true,
                    logprobs: false,
                    tokenize: true,
                },
            },
        };
        let window = if policy == "full" {
            b.full_limit()?
        } else {
            usize::MAX
        };
        b.info.context_window = window;
        b.info.max_output_tokens = window;
        Ok(b)
    }

    /// Loads a GGUF file; the model id is the file name.
    pub fn load(path: &Path, policy: &str, policy_options: &str) -> Result<LocalBackend> {
        let model = Model::load(path)
            .map_err(|e| engine_err(format!("loading {}: {e}", path.display())))?;
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        LocalBackend::new(Arc::new(model), id, policy, policy_options)
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// The requested policy name (possibly `auto`).
    pub fn policy(&self) -> &str {
        &self.policy
    }

    /// The policy a request needing `needed` tokens (prompt + output) runs under.
    pub fn policy_for(&self, needed: usize) -> String {
        resolve_policy(&self.policy, self.model.cfg.context_length, needed)
    }

    /// `full`'s limit: its `max_context` option, else the trained context.
    fn full_limit(&self) -> Result<usize> {
        let info = REGISTRY
            .iter()
            .find(|p| p.name == "full")
            .ok_or_else(|| engine_err("the engine has no `full` policy"))?;
        let opts = parse_options(info, &self.policy_options)
            .map_err(|e| BackendError::Config(e.to_string()))?;
        match opts.iter().rev().find(|(k, _)| k == "max_context") {
            Some((_, v)) => v
                .parse()
                .map_err(|_| BackendError::Config(format!("bad max_context '{v}'"))),
            None => Ok(self.model.cfg.context_length),
        }
    }

    fn make_policy(&self, name: &str) -> Result<Box<dyn CachePolicy>> {
        let facts = ModelFacts {
            n_layers: self.model.cfg.n_layers,
            context_length: self.model.cfg.context_length,
        };
        build_policy(name, &self.policy_options, facts)
            .map_err(|e| BackendError::Config(e.to_string()))
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

    /// Runs one request on a fresh session.
    fn run(
        &self,
        prompt: &[u32],
        sampling: &Sampling,
        instruction: Option<&str>,
        started: Instant,
    ) -> Result<Completion> {
        let params = gen_params(sampling)?;
        if prompt.is_empty() {
            return Err(BackendError::InvalidRequest("the prompt is empty".into()));
        }
        let needed = prompt.len().saturating_add(params.max_tokens);
        let policy = self.policy_for(needed);
        if policy == "full" {
            let limit = self.full_limit()?;
            if needed > limit {
                return Err(overflow(needed, limit, &policy));
            }
        }
        let mut session = Session::new(&self.model, self.make_policy(&policy)?);
        if let Some(question) = instruction.filter(|q| !q.trim().is_empty()) {
            // Instruction-aware policies (citrus) score the cache by the question's attention.
            let tokens = self.model.tokenizer.encode(question.trim(), false, false);
            session.set_instruction(&tokens);
        }
        session.feed(prompt, |_| {}).map_err(session_err)?;
        let g = session.generate(&params, |_| true).map_err(session_err)?;
        Ok(Completion {
            text: g.text,
            finish: match g.stop {
                StopReason::EndOfText | StopReason::StopString => FinishReason::Stop,
                StopReason::MaxTokens => FinishReason::Length,
            },
            prompt_tokens: prompt.len(),
            completion_tokens: g.tokens.len(),
            latency: started.elapsed(),
        })
    }
}

fn session_err(e: SessionError) -> BackendError {
    match e {
        SessionError::Model(ModelError::Policy(PolicyError::ContextExceeded {
            policy,
            needed,
            limit,
        })) => overflow(needed, limit, &policy),
        SessionError::Sampling(e) => BackendError::InvalidRequest(e.to_string()),
        e => engine_err(e),
    }
}

/// The engine's generation settings for a request. Unset OpenAI-style options are off (no
/// top-k, no min-p, no repeat penalty), so local and remote sampling mean the same.
fn gen_params(s: &Sampling) -> Result<GenerateParams> {
    if s.max_tokens == 0 {
        return Err(BackendError::InvalidRequest(
            "max_tokens must be at least 1".into(),
        ));
    }
    let sampling = SamplingParams {
        temperature: s.temperature,
        top_k: s.top_k.map_or(0, |k| k as usize),
        top_p: s.top_p,
        min_p: 0.0,
        repeat_penalty: s.repeat_penalty.unwrap_or(1.0),
        repeat_last_n: SamplingParams::default().repeat_last_n,
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

impl LlmBackend for LocalBackend {
    fn info(&self) -> &BackendInfo {
        &self.info
    }

    /// The prompt is tokenized as plain text (BOS added as the vocabulary says; special-token
    /// text such as `<|im_start|>` is not parsed), like the CLI's `generate`.
    fn complete(&self, req: &CompletionRequest) -> Result<Completion> {
        self.complete_with_instruction(req, None)
    }

    fn complete_with_instruction(
        &self,
        req: &CompletionRequest,
        instruction: Option<&str>,
    ) -> Result<Completion> {
        let started = Instant::now();
        let tokens = self.model.tokenizer.encode(&req.prompt, true, false);
        self.run(&tokens, &req.sampling, instruction, started)
    }

    fn chat(&self, req: &ChatRequest) -> Result<Completion> {
        let started = Instant::now();
        if req.messages.is_empty() {
            return Err(BackendError::InvalidRequest("no messages".into()));
        }
        let text = self.render_chat(&req.messages, req.prefill.as_deref())?;
        let tokens = self.chat_tokens(&text);
        self.run(&tokens, &req.sampling, req.instruction.as_deref(), started)
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
            chat::render_chat(self.model.chat_template.as_deref(), &msgs, true, &bos, &eos)
                .map_err(engine_err)?;
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
