//! `streaming`: StreamingLLM — a few attention-sink tokens plus a rolling window of recent
//! tokens, positions renumbered by cache slot (engine-methods §2).

use crate::attention::AttnPlan;
use crate::kv::KvStore;
use crate::policy::{
    positive, slot_renumbered_plan, CachePolicy, ModelFacts, PlanContext, PolicyError, PolicyInfo,
    PolicyOption,
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

    pub(crate) fn from_options(
        opts: &[(String, String)],
        facts: ModelFacts,
    ) -> Result<StreamingPolicy, PolicyError> {
        let mut p = StreamingPolicy {
            budget: 2048.min(facts.context_length),
            sinks: 4,
            chunk: 512,
        };
        for (k, v) in opts {
            match k.as_str() {
                "budget" => p.budget = positive(INFO.name, k, v)?,
                "sinks" => {
                    p.sinks = v.parse().map_err(|_| PolicyError::BadOption {
                        policy: INFO.name.into(),
                        option: k.clone(),
                        value: v.clone(),
                        reason: "must be a non-negative integer".into(),
                    })?
                }
                "chunk" => p.chunk = positive(INFO.name, k, v)?,
                _ => unreachable!("parse_options validated the name"),
            }
        }
        if p.budget > facts.context_length {
            return Err(PolicyError::BadOption {
                policy: INFO.name.into(),
                option: "budget".into(),
                value: p.budget.to_string(),
                reason: format!(
                    "exceeds the model's trained context {}",
                    facts.context_length
                ),
            });
        }
        p.validated()
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
