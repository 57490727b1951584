//! A sequence being read and written: the model, its KV store and policy, prefill in chunks,
//! and generation with sampling, stop strings and streaming.

use crate::kv::KvStore;
use crate::model::{LogitsWanted, Model, ModelError, Workspace};
use crate::policy::{CachePolicy, PolicyError};
use crate::sampling::{Sampler, SamplingError, SamplingParams};
use crate::tokenizer::StreamDecoder;

/// Errors from a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    #[error("generation was stopped by the caller")]
    Cancelled,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfText,
    /// A stop string appeared.
    StopString,
    /// `max_tokens` reached.
    MaxTokens,
}

/// Generation settings beyond sampling.
#[derive(Clone, Debug)]
pub struct GenerateParams {
    pub max_tokens: usize,
    pub stop: Vec<String>,
    pub sampling: SamplingParams,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_tokens: 256,
            stop: Vec::new(),
            sampling: SamplingParams::default(),
        }
    }
}

/// The result of [`Session::generate`].
#[derive(Clone, Debug)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    pub stop: StopReason,
}

/// A session's state without its borrow of the model, to keep between requests (a prefix
/// cache): [`Session::save`] takes it out, [`Session::restore`] puts it back over the same
/// model.
pub struct SavedSession {
    kv: KvStore,
    policy: Box<dyn CachePolicy>,
    ws: Workspace,
    tokens: Vec<u32>,
    next_pos: i64,
}

impl SavedSession {
    /// Every token the session has read.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }
}

/// One sequence's state over a shared model.
pub struct Session<'m> {
    model: &'m Model,
    kv: KvStore,
    policy: Box<dyn CachePolicy>,
    ws: Workspace,
    /// Every token fed so far (prompt and generated).
    tokens: Vec<u32>,
    next_pos: i64,
}

impl<'m> Session<'m> {
    pub fn new(model: &'m Model, policy: Box<dyn CachePolicy>) -> Session<'m> {
        Session {
            model,
            kv: model.new_kv(policy.as_ref()),
            policy,
            ws: Workspace::default(),
            tokens: Vec::new(),
            next_pos: 0,
        }
    }

    /// Detaches the state from the model borrow (see [`SavedSession`]).
    pub fn save(self) -> SavedSession {
        SavedSession {
            kv: self.kv,
            policy: self.policy,
            ws: self.ws,
            tokens: self.tokens,
            next_pos: self.next_pos,
        }
    }

    /// Resumes a saved state. `model` must be the model it was saved from (the KV rows only
    /// mean something for those weights).
    pub fn restore(model: &'m Model, saved: SavedSession) -> Session<'m> {
        Session {
            model,
            kv: saved.kv,
            policy: saved.policy,
            ws: saved.ws,
            tokens: saved.tokens,
            next_pos: saved.next_pos,
        }
    }

    pub fn model(&self) -> &Model {
        self.model
    }

    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// Gives the policy the question the input will be asked about (CItruS scores the cache
    /// by its attention); returns whether the policy uses it.
    pub fn set_instruction(&mut self, tokens: &[u32]) -> bool {
        self.policy.set_instruction(tokens)
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Feeds tokens in policy-sized chunks; returns the logits after the last one.
    /// `progress` is called with the number of tokens done after each chunk.
    pub fn feed(
        &mut self,
        tokens: &[u32],
        mut progress: impl FnMut(usize),
    ) -> Result<&[f32], SessionError> {
        self.feed_until(tokens, |done| {
            progress(done);
            true
        })
    }

    /// [`Session::feed`] that the caller can stop: `progress` gets the tokens done after each
    /// chunk and returns `false` to stop, which ends the call with
    /// [`SessionError::Cancelled`] within one chunk. The tokens read so far stay in the
    /// session (its state is consistent; [`Session::tokens`] says how far it got).
    pub fn feed_until(
        &mut self,
        tokens: &[u32],
        mut progress: impl FnMut(usize) -> bool,
    ) -> Result<&[f32], SessionError> {
        if tokens.is_empty() {
            return Err(ModelError::EmptyInput.into());
        }
        if let Some(limit) = self.policy.token_limit() {
            let needed = self.kv.len() + tokens.len();
            if needed > limit {
                return Err(ModelError::from(PolicyError::ContextExceeded {
                    policy: self.policy.name().into(),
                    needed,
                    limit,
                })
                .into());
            }
        }
        let chunk = self.policy.chunk_size().max(1);
        let mut done = 0;
        for piece in tokens.chunks(chunk) {
            let last = done + piece.len() == tokens.len();
            let want = if last {
                LogitsWanted::Last
            } else {
                LogitsWanted::None
            };
            self.model.forward(
                piece,
                self.next_pos,
                &mut self.kv,
                self.policy.as_mut(),
                want,
                &mut self.ws,
            )?;
            self.next_pos += piece.len() as i64;
            self.tokens.extend_from_slice(piece);
            done += piece.len();
            if !progress(done) && !last {
                return Err(SessionError::Cancelled);
            }
        }
        Ok(&self.ws.logits)
    }

    /// Logits of the last fed token.
    pub fn last_logits(&self) -> &[f32] {
        &self.ws.logits
    }

    /// Generates after what was fed. `on_text` is called once per generated token with the
    /// decoded text that became complete UTF-8 with it (often empty: text that may still turn
    /// into a stop string is held back) and returns `false` to cancel, which ends the call
    /// with [`SessionError::Cancelled`] before the next token is computed.
    pub fn generate(
        &mut self,
        params: &GenerateParams,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<Generation, SessionError> {
        if self.tokens.is_empty() {
            return Err(ModelError::EmptyInput.into());
        }
        let mut sampler = Sampler::new(params.sampling.clone())?;
        let tok = &self.model.tokenizer;
        let mut decoder = StreamDecoder::new(tok);
        let mut text = String::new();
        let mut emitted = 0usize; // bytes of `text` already handed to `on_text`
        let mut out_tokens = Vec::new();
        let hold_back = params.stop.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut reason = StopReason::MaxTokens;
        for _ in 0..params.max_tokens {
            let next = sampler.sample(&self.ws.logits, &self.tokens)?;
            if tok.is_eog(next) {
                reason = StopReason::EndOfText;
                break;
            }
            out_tokens.push(next);
            text.push_str(&decoder.push(next));
            if let Some(cut) = params
                .stop
                .iter()
                .filter_map(|s| text.find(s.as_str()))
                .min()
            {
                text.truncate(cut);
                reason = StopReason::StopString;
                break;
            }
            // Hold back text that could still become a stop string.
            let mut safe = text.len().saturating_sub(hold_back);
            while !text.is_char_boundary(safe) {
                safe -= 1;
            }
            let piece = if safe > emitted {
                &text[emitted..safe]
            } else {
                ""
            };
            if !on_text(piece) {
                return Err(SessionError::Cancelled);
            }
            emitted = emitted.max(safe);
            if out_tokens.len() == params.max_tokens {
                break;
            }
            self.feed(&[next], |_| {})?;
        }
        if reason != StopReason::StopString {
            text.push_str(&decoder.finish());
        }
        if text.len() > emitted {
            on_text(&text[emitted..]);
        }
        Ok(Generation {
            text,
            tokens: out_tokens,
            stop: reason,
        })
    }
}
