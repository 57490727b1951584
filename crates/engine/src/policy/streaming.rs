//! `streaming`: StreamingLLM — a few attention-sink tokens plus a rolling window of recent
//! tokens, positions renumbered by cache slot (engine-methods §2).

use crate::attention::AttnPlan;
use crate::kv::KvStore;
use crate::policy::{
    slot_renumbered_plan, CachePolicy, ModelFacts, OptionReader, PlanContext, PolicyError,
    PolicyInfo, PolicyOption,
};

pub(crate) const INFO: PolicyInfo = PolicyInfo {
    name: "streaming",
    summary: "attention sinks + recent window (StreamingLLM); constant memory, forgets the middle",
    options: &[
        PolicyOption {
            name: "budget",
            default: "2048",
            help: "most tokens kept (sinks + window); ≤ the trained context",
        },
        PolicyOption {
            name: "sinks",
            default: "4",
            help: "initial tokens always kept",
        },
        PolicyOption {
            name: "chunk",
            default: "512",
            help: "tokens per prefill pass (capped at budget − sinks)",
        },
    ],
    build: |opts, facts| Ok(Box::new(StreamingPolicy::from_options(opts, facts)?)),
};

/// Sinks + recent window with slot positions.
#[derive(Clone, Debug)]
pub struct StreamingPolicy {
    pub budget: usize,
    pub sinks: usize,
    pub chunk: usize,
}

impl StreamingPolicy {
    pub fn new(budget: usize, sinks: usize) -> Result<StreamingPolicy, PolicyError> {
        StreamingPolicy {
            budget,
            sinks,
            chunk: 512,
        }
        .validated()
    }

    fn validated(self) -> Result<StreamingPolicy, PolicyError> {
        if self.sinks >= self.budget {
            return Err(PolicyError::BadOption {
                policy: INFO.name.into(),
                option: "sinks".into(),
                value: self.sinks.to_string(),
                reason: format!("must be smaller than budget {}", self.budget),
            });
        }
        Ok(self)
    }

    /// Builds from parsed `key=value` options (as `build_policy` does), for callers that need
    /// the concrete type.
    pub fn from_options(
        opts: &[(String, String)],
        facts: ModelFacts,
    ) -> Result<StreamingPolicy, PolicyError> {
        let r = OptionReader::new(INFO.name, opts);
        StreamingPolicy {
            budget: r.budget(2048.min(facts.context_length), facts)?,
            sinks: r.count("sinks")?.unwrap_or(4),
            chunk: r.positive("chunk")?.unwrap_or(512),
        }
        .validated()
    }
}

/// Evicts the oldest non-pinned slots so `n_new` more fit in `budget`
/// (StreamingLLM's evict-for-space). Shared by the window-based policies.
pub(crate) fn evict_for_space(
    kv: &mut KvStore,
    pinned: usize,
    budget: usize,
    n_new: usize,
    policy: &str,
) -> Result<(), PolicyError> {
    let len = kv.len();
    if len + n_new <= budget {
        return Ok(());
    }
    let pinned = pinned.min(len);
    let excess = len + n_new - budget;
    if n_new + pinned > budget {
        return Err(PolicyError::BadOption {
            policy: policy.into(),
            option: "chunk".into(),
            value: n_new.to_string(),
            reason: format!("a chunk of {n_new} tokens does not fit next to {pinned} pinned tokens in a budget of {budget}"),
        });
    }
    kv.remove_range(pinned..pinned + excess);
    Ok(())
}

impl CachePolicy for StreamingPolicy {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn chunk_size(&self) -> usize {
        self.chunk.min(self.budget - self.sinks)
    }

    fn before_chunk(&mut self, kv: &mut KvStore, n_new: usize) -> Result<(), PolicyError> {
        evict_for_space(kv, self.sinks, self.budget, n_new, INFO.name)
    }

    fn plan(&mut self, ctx: &PlanContext, kv: &KvStore) -> AttnPlan {
        // Slot renumbering: the window is contiguous up to the chunk, so its slot distances
        // equal its true distances; the sinks sit at their slots. Before anything is evicted
        // the whole store is one run at true positions, which keeps it bit-identical to `full`
        // (a split softmax sums in another order, and int8 activation rounding can amplify
        // that last-bit difference).
        slot_renumbered_plan(ctx, kv.positions())
    }
}
