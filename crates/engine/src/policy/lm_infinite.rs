//! `lm-infinite`: LM-Infinite's Λ-shaped attention — the first `n_global` tokens plus a local
//! window of `n_local`, with the starting tokens seen at a capped distance (engine-methods §1).

use crate::attention::{AttnPlan, KeyPos, Slots, Span, SpanMask};
use crate::kv::KvStore;
use crate::policy::streaming::evict_for_space;
use crate::policy::{
    CachePolicy, ModelFacts, OptionReader, PlanContext, PolicyError, PolicyInfo, PolicyOption,
};

pub(crate) const INFO: PolicyInfo = PolicyInfo {
    name: "lm-infinite",
    summary:
        "Λ-shaped attention: global start tokens at a capped distance + local window (LM-Infinite)",
    options: &[
        PolicyOption {
            name: "n_local",
            default: "min(2048, trained context)",
            help: "local window; also the distance cap L",
        },
        PolicyOption {
            name: "n_global",
            default: "10",
            help: "starting tokens always kept (repo's drop-in default)",
        },
        PolicyOption {
            name: "chunk",
            default: "512",
            help: "tokens per prefill pass (capped at n_local)",
        },
    ],
    build: |opts, facts| Ok(Box::new(LmInfinitePolicy::from_options(opts, facts)?)),
};

/// Global start tokens + local window; the middle is evicted.
#[derive(Clone, Debug)]
pub struct LmInfinitePolicy {
    pub n_local: usize,
    pub n_global: usize,
    pub chunk: usize,
}

impl LmInfinitePolicy {
    /// Builds from parsed `key=value` options (as `build_policy` does), for callers that need
    /// the concrete type.
    pub fn from_options(
        opts: &[(String, String)],
        facts: ModelFacts,
    ) -> Result<LmInfinitePolicy, PolicyError> {
        let r = OptionReader::new(INFO.name, opts);
        let n_local = r
            .positive("n_local")?
            .unwrap_or(2048.min(facts.context_length));
        if n_local > facts.context_length {
            return Err(r.conflict(
                "n_local",
                n_local,
                format!(
                    "exceeds the model's trained context {}",
                    facts.context_length
                ),
            ));
        }
        Ok(LmInfinitePolicy {
            n_local,
            n_global: r.positive("n_global")?.unwrap_or(10),
            chunk: r.positive("chunk")?.unwrap_or(512),
        })
    }

    fn budget(&self) -> usize {
        self.n_global + self.n_local
    }
}

impl CachePolicy for LmInfinitePolicy {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn chunk_size(&self) -> usize {
        self.chunk.min(self.n_local)
    }

    fn before_chunk(&mut self, kv: &mut KvStore, n_new: usize) -> Result<(), PolicyError> {
        // Keys older than the window (other than the starting tokens) are never attended again.
        evict_for_space(kv, self.n_global, self.budget(), n_new, INFO.name)
    }

    fn plan(&mut self, ctx: &PlanContext, kv: &KvStore) -> AttnPlan {
        let len = kv.len();
        if let Some(w) = ctx.native_window {
            return AttnPlan {
                spans: vec![Span::original(0..len, SpanMask::Window(w))],
                observe: Vec::new(),
            };
        }
        let g = self.n_global.min(len);
        // The repo caps the distance at min(L, kv_len − 1).
        let cap = self.n_local.min(len.saturating_sub(1)).max(1);
        AttnPlan {
            spans: vec![
                // Starting tokens outside the window: seen as exactly `cap` tokens away.
                Span {
                    slots: Slots::Range(0..g),
                    pos: KeyPos::FixedDistance(cap),
                    mask: SpanMask::OutsideWindow(self.n_local),
                },
                // Everything inside the window (starting tokens included) at true distance.
                Span::original(0..len, SpanMask::Window(self.n_local)),
            ],
            observe: Vec::new(),
        }
    }
}
