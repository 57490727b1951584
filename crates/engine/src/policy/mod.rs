//! KV-cache policies: what a sequence keeps in its KV store and which spans each layer attends
//! to. One file per policy; [`REGISTRY`] lists them with their options for the CLI and docs.

mod block_memory;
mod citrus;
mod full;
mod infllm;
mod lm_infinite;
mod quest;
mod sirllm;
mod streaming;

pub use citrus::CitrusPolicy;
pub use full::FullPolicy;
pub use infllm::InfllmPolicy;
pub use lm_infinite::LmInfinitePolicy;
pub use quest::QuestPolicy;
pub use sirllm::SirllmPolicy;
pub use streaming::StreamingPolicy;

use std::sync::Arc;

use crate::attention::{AttnPlan, KeyPos, LayerObs, Slots, Span, SpanMask};
use crate::kv::KvStore;
use crate::rope::RopeParams;

/// Errors from building or running a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("unknown policy '{0}' (known: {known})", known = known_names())]
    Unknown(String),
    #[error("policy '{policy}': unknown option '{option}' (options: {options})")]
    UnknownOption {
        policy: String,
        option: String,
        options: String,
    },
    #[error("policy '{policy}': bad value '{value}' for option '{option}': {reason}")]
    BadOption {
        policy: String,
        option: String,
        value: String,
        reason: String,
    },
    #[error(
        "input needs {needed} tokens of context but policy '{policy}' allows {limit} \
         (the model's trained context); pick a long-context policy or raise the limit with \
         --policy-opt max_context=N"
    )]
    ContextExceeded {
        policy: String,
        needed: usize,
        limit: usize,
    },
    #[error("policy '{policy}': {what} failed: {source}")]
    Storage {
        policy: String,
        what: String,
        source: std::io::Error,
    },
}

/// Facts about the model a policy needs.
#[derive(Clone, Copy, Debug)]
pub struct ModelFacts {
    pub n_layers: usize,
    pub context_length: usize,
}

/// What a policy sees when it plans one layer's attention for a chunk.
pub struct PlanContext<'a> {
    pub layer: usize,
    /// The layer's own sliding window (Gemma 3 local layers), which every policy must respect.
    pub native_window: Option<usize>,
    /// The chunk's queries rotated at their true positions, `rows × (n_heads·head_dim)`.
    pub q: &'a [f32],
    /// The same queries before RoPE.
    pub q_pre: &'a [f32],
    /// True positions of the chunk's rows.
    pub q_pos: &'a [i64],
    pub n_heads: usize,
    pub head_dim: usize,
    /// The layer's RoPE, for policies that rotate queries themselves (InfLLM's fixed-angle
    /// retrieval query must use the same rotation as its `FixedDistance` span).
    pub rope: RopeParams,
}

/// A KV-cache policy. For each chunk the forward pass calls `before_chunk`, appends the
/// chunk's keys and values, asks `plan` for every layer (passing back what the layer observed
/// through `observe`), then calls `after_chunk`.
pub trait CachePolicy: Send {
    fn name(&self) -> &'static str;
    /// Most tokens the engine may feed in one forward pass under this policy.
    fn chunk_size(&self) -> usize;
    /// Whether the store should also keep un-rotated keys. Repositioned spans work without
    /// them (stored keys are rotated on by the difference); this trades memory for speed.
    fn needs_pre_rope(&self) -> bool {
        false
    }
    /// Most tokens the policy holds before it refuses input (full attention's context limit),
    /// so a session can refuse a long prompt before spending any compute on it.
    fn token_limit(&self) -> Option<usize> {
        None
    }
    /// Runs before `n_new` tokens are appended: evict for space or refuse.
    fn before_chunk(&mut self, kv: &mut KvStore, n_new: usize) -> Result<(), PolicyError>;
    /// Key spans one layer attends to for the current chunk (its keys already appended).
    fn plan(&mut self, ctx: &PlanContext, kv: &KvStore) -> AttnPlan;
    /// Attention-probability column sums the plan asked for.
    fn observe(&mut self, _layer: usize, _plan: &AttnPlan, _obs: &LayerObs, _kv: &KvStore) {}
    /// Runs after the whole chunk went through every layer (eviction, memory formation).
    fn after_chunk(&mut self, _kv: &mut KvStore) -> Result<(), PolicyError> {
        Ok(())
    }
    /// Whether the forward pass should report every token's surprisal (SirLLM's score);
    /// costs a language-model head over every row of the chunk.
    fn wants_surprisal(&self) -> bool {
        false
    }
    /// Surprisal `−log p(x_i | x_<i)` of the chunk's tokens after the first (`rest`, one
    /// fewer than `tokens`), and the log-probabilities the chunk's last row gives the next
    /// token (to score the next chunk's first token). Called after the chunk's keys were
    /// appended, before [`after_chunk`](Self::after_chunk).
    fn observe_surprisal(&mut self, _tokens: &[u32], _rest: &[f32], _next_logprobs: &[f32]) {}
    /// The instruction (question) tokens, for instruction-aware policies (CItruS); the
    /// others ignore it. Returns whether the policy uses it.
    fn set_instruction(&mut self, _tokens: &[u32]) -> bool {
        false
    }
    /// Tokens to run as a probe right after this chunk: the forward pass plans and observes
    /// them like a chunk, then drops their keys and values and calls
    /// [`after_probe`](Self::after_probe) (CItruS scores the cache by its instruction's
    /// attention this way).
    fn probe(&mut self, _kv: &KvStore) -> Option<Arc<[u32]>> {
        None
    }
    /// Runs after a probe pass; its keys and values are already gone.
    fn after_probe(&mut self, _kv: &mut KvStore) -> Result<(), PolicyError> {
        Ok(())
    }
}

/// One option of a policy, for help text and validation.
#[derive(Clone, Copy, Debug)]
pub struct PolicyOption {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Builds a policy from options already checked against its [`PolicyInfo::options`].
pub type BuildFn = fn(&[(String, String)], ModelFacts) -> Result<Box<dyn CachePolicy>, PolicyError>;

/// A registry entry: the policy's name, help and constructor, so adding a policy touches only
/// its own file and [`REGISTRY`].
#[derive(Clone, Copy, Debug)]
pub struct PolicyInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub options: &'static [PolicyOption],
    /// The constructor [`build_policy`] calls with the parsed options.
    pub build: BuildFn,
}

/// Every policy the engine offers, in the order the CLI lists them.
pub const REGISTRY: &[PolicyInfo] = &[
    full::INFO,
    streaming::INFO,
    lm_infinite::INFO,
    infllm::INFO,
    quest::INFO,
    sirllm::INFO,
    citrus::INFO,
];

fn known_names() -> String {
    REGISTRY
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `key=value,key=value` option strings.
pub fn parse_options(
    policy: &PolicyInfo,
    spec: &str,
) -> Result<Vec<(String, String)>, PolicyError> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| PolicyError::BadOption {
            policy: policy.name.into(),
            option: part.into(),
            value: String::new(),
            reason: "expected key=value".into(),
        })?;
        if !policy.options.iter().any(|o| o.name == k) {
            return Err(PolicyError::UnknownOption {
                policy: policy.name.into(),
                option: k.into(),
                options: policy
                    .options
                    .iter()
                    .map(|o| o.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Spans for a cache whose slots are renumbered (StreamingLLM's positions, also SirLLM and
/// CItruS): slot `j` sits at slot distance from the chunk's rows, which occupy the last
/// `n_rows` slots. The longest run of consecutive true positions ending at the chunk keeps
/// its true positions (there slot and true distances agree, and keys need no re-rotation);
/// the slots before it are rotated at their slot positions. `positions` are the layer's.
pub(crate) fn slot_renumbered_spans(positions: &[i64], n_rows: usize, q_pos0: i64) -> Vec<Span> {
    let len = positions.len();
    let mut run_start = len.saturating_sub(n_rows.max(1));
    while run_start > 0 && positions[run_start - 1] + 1 == positions[run_start] {
        run_start -= 1;
    }
    let mut spans = Vec::with_capacity(2);
    if run_start > 0 {
        let shift = q_pos0 - (len - n_rows) as i64;
        let virt: Arc<[i64]> = (0..run_start as i64).map(|j| j + shift).collect();
        spans.push(Span {
            slots: Slots::Range(0..run_start),
            pos: KeyPos::Virtual(virt),
            mask: SpanMask::Causal,
        });
    }
    spans.push(Span::original(run_start..len, SpanMask::Causal));
    spans
}

/// The plan of a slot-renumbered cache ([`slot_renumbered_spans`] over the layer's
/// positions); native sliding-window layers (Gemma 3) keep their own window at true positions.
pub(crate) fn slot_renumbered_plan(ctx: &PlanContext, positions: &[i64]) -> AttnPlan {
    let spans = match ctx.native_window {
        Some(w) => vec![Span::original(0..positions.len(), SpanMask::Window(w))],
        None => slot_renumbered_spans(positions, ctx.q_pos.len(), ctx.q_pos[0]),
    };
    AttnPlan {
        spans,
        observe: Vec::new(),
    }
}

/// Reads a policy's `key=value` options with typed, named errors.
pub(crate) struct OptionReader<'a> {
    policy: &'static str,
    opts: &'a [(String, String)],
}

impl<'a> OptionReader<'a> {
    pub(crate) fn new(policy: &'static str, opts: &'a [(String, String)]) -> OptionReader<'a> {
        OptionReader { policy, opts }
    }

    /// A text option as given, if given.
    pub(crate) fn text(&self, name: &str) -> Option<&'a str> {
        self.raw(name)
    }

    fn raw(&self, name: &str) -> Option<&'a str> {
        self.opts
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An error for option `name`'s given `value`.
    pub(crate) fn bad(&self, name: &str, value: &str, reason: &str) -> PolicyError {
        PolicyError::BadOption {
            policy: self.policy.into(),
            option: name.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// A positive integer option, if given.
    pub(crate) fn positive(&self, name: &str) -> Result<Option<usize>, PolicyError> {
        self.raw(name)
            .map(|v| match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(self.bad(name, v, "must be a positive integer")),
            })
            .transpose()
    }

    /// A non-negative integer option, if given.
    pub(crate) fn count(&self, name: &str) -> Result<Option<usize>, PolicyError> {
        self.raw(name)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| self.bad(name, v, "must be a non-negative integer"))
            })
            .transpose()
    }

    /// A number in `lo..=hi`, if given.
    pub(crate) fn fraction(
        &self,
        name: &str,
        lo: f32,
        hi: f32,
    ) -> Result<Option<f32>, PolicyError> {
        self.raw(name)
            .map(|v| match v.parse::<f32>() {
                Ok(x) if x.is_finite() && (lo..=hi).contains(&x) => Ok(x),
                _ => Err(self.bad(name, v, &format!("must be a number in {lo}..={hi}"))),
            })
            .transpose()
    }

    /// The `budget` option (default `default`), which may not exceed the trained context.
    pub(crate) fn budget(&self, default: usize, facts: ModelFacts) -> Result<usize, PolicyError> {
        let budget = self.positive("budget")?.unwrap_or(default);
        if budget > facts.context_length {
            return Err(self.conflict(
                "budget",
                budget,
                format!(
                    "exceeds the model's trained context {}",
                    facts.context_length
                ),
            ));
        }
        Ok(budget)
    }

    /// An error for an option whose value conflicts with the others.
    pub(crate) fn conflict(&self, name: &str, value: usize, reason: String) -> PolicyError {
        self.bad(name, &value.to_string(), &reason)
    }
}

/// Long-context policies `--policy auto` falls back to, best first.
pub const AUTO_LONG_POLICIES: &[&str] = &["infllm", "lm-infinite"];

/// Resolves `auto`: `full` when `needed` tokens fit `context_length`, else the first registered
/// long-context policy of [`AUTO_LONG_POLICIES`]; any other name is returned unchanged.
pub fn resolve_policy(requested: &str, context_length: usize, needed: usize) -> String {
    if requested != "auto" {
        return requested.to_string();
    }
    if needed <= context_length {
        return "full".to_string();
    }
    AUTO_LONG_POLICIES
        .iter()
        .find(|name| REGISTRY.iter().any(|p| p.name == **name))
        .map_or("full", |name| name)
        .to_string()
}

/// The registry entry named `name`.
pub fn find_policy(name: &str) -> Result<&'static PolicyInfo, PolicyError> {
    REGISTRY
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| PolicyError::Unknown(name.to_string()))
}

/// Builds a policy by registry name with `key=value,...` options.
pub fn build_policy(
    name: &str,
    options: &str,
    facts: ModelFacts,
) -> Result<Box<dyn CachePolicy>, PolicyError> {
    let info = find_policy(name)?;
    let opts = parse_options(info, options)?;
    (info.build)(&opts, facts)
}

/// The most tokens policy `name` with these options holds before it refuses input
/// ([`CachePolicy::token_limit`]; `None` = unbounded), e.g. `full`'s `max_context`, so callers
/// can size requests without parsing a policy's options themselves.
pub fn token_limit(
    name: &str,
    options: &str,
    facts: ModelFacts,
) -> Result<Option<usize>, PolicyError> {
    Ok(build_policy(name, options, facts)?.token_limit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FACTS: ModelFacts = ModelFacts {
        n_layers: 2,
        context_length: 8,
    };

    #[test]
    fn unknown_policy_and_option_are_named() {
        let e = build_policy("nope", "", FACTS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("unknown policy 'nope'") && e.contains("full"),
            "{e}"
        );
        let e = build_policy("full", "window=3", FACTS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("unknown option 'window'"), "{e}");
        let e = build_policy("full", "max_context=0", FACTS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("positive integer"), "{e}");
        let e = build_policy("full", "max_context", FACTS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("key=value"), "{e}");
    }

    #[test]
    fn every_entry_builds_its_own_policy() {
        let facts = ModelFacts {
            n_layers: 2,
            context_length: 8192,
        };
        for info in REGISTRY {
            let p = build_policy(info.name, "", facts).expect("defaults build");
            assert_eq!(p.name(), info.name);
        }
    }

    #[test]
    fn token_limit_asks_the_built_policy() {
        assert_eq!(token_limit("full", "", FACTS).ok(), Some(Some(8)));
        assert_eq!(
            token_limit("full", "max_context=5", FACTS).ok(),
            Some(Some(5))
        );
        let streaming = token_limit("streaming", "budget=4,sinks=1,chunk=2", FACTS);
        assert_eq!(streaming.ok(), Some(None));
        assert!(token_limit("full", "max_context=x", FACTS).is_err());
        assert!(token_limit("nope", "", FACTS).is_err());
    }
}
