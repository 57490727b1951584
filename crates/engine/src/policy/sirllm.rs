//! `sirllm`: SirLLM (Yao, Li, Zhao 2024, repo Zoeyyao27/SirLLM; engine-methods §4). Keeps
//! the first tokens, the most recent ones and the tokens the model found most surprising,
//! with surprisal scores that fade by a decay factor at every eviction; positions are
//! renumbered by cache slot as in StreamingLLM.
//!
//! Score of token `x_i`: the paper's `−log p(x_i | x_<i)` (its "token entropy"), not the
//! repo's `_cal_selfinfo`, which scores each token with the previous token's probability
//! (a shift bug, engine-methods §4b). The very first token of a sequence has no prediction
//! and gets the highest score of its chunk, as the repo does for a segment's first token.
//!
//! Eviction follows `sir_llm/kv_cache.py`: before a chunk ("turn") of `m` tokens, if the
//! store cannot take it, keep the `entropy − m` highest-scoring tokens (besides the first
//! `start`), fill up to `budget − m` with the most recent tokens, and multiply every kept
//! score by `decay`. The store never exceeds `budget` slots.

use crate::attention::AttnPlan;
use crate::kv::KvStore;
use crate::policy::{
    slot_renumbered_plan, CachePolicy, ModelFacts, OptionReader, PlanContext, PolicyError,
    PolicyInfo, PolicyOption,
};

pub(crate) const INFO: PolicyInfo = PolicyInfo {
    name: "sirllm",
    summary: "first + recent + most surprising tokens, scores decaying per eviction (SirLLM); constant memory",
    options: &[
        PolicyOption {
            name: "budget",
            default: "min(2048, trained context)",
            help: "most tokens kept: start + recent + entropy-selected (repo: 4 + 1000 + 1000)",
        },
        PolicyOption {
            name: "start",
            default: "4",
            help: "initial tokens always kept (repo: 4)",
        },
        PolicyOption {
            name: "recent",
            default: "budget / 2",
            help: "most recent tokens kept; the rest of the budget holds the most surprising ones",
        },
        PolicyOption {
            name: "decay",
            default: "1.0",
            help: "factor applied to kept scores at each eviction (repo: 1; 0.7–0.9 per task)",
        },
        PolicyOption {
            name: "chunk",
            default: "min(256, budget / 4)",
            help: "tokens per prefill pass, the eviction granularity (SirLLM evicts per turn)",
        },
    ],
    build: |opts, facts| Ok(Box::new(SirllmPolicy::from_options(opts, facts)?)),
};

/// Surprisal-based retention with slot positions.
#[derive(Clone, Debug)]
pub struct SirllmPolicy {
    pub budget: usize,
    pub start: usize,
    pub recent: usize,
    pub decay: f32,
    pub chunk: usize,
    /// One score per stored slot, in slot order.
    scores: Vec<f32>,
    /// Log-probabilities the last fed row gave the next token.
    next_logprobs: Vec<f32>,
}

impl SirllmPolicy {
    /// A policy with the given budget and the defaults its options list.
    pub fn new(budget: usize) -> Result<SirllmPolicy, PolicyError> {
        SirllmPolicy::from_parts(budget, 4, budget / 2, 1.0, (budget / 4).clamp(1, 256))
    }

    fn from_parts(
        budget: usize,
        start: usize,
        recent: usize,
        decay: f32,
        chunk: usize,
    ) -> Result<SirllmPolicy, PolicyError> {
        let opts = [];
        let r = OptionReader::new(INFO.name, &opts);
        if start + recent > budget {
            return Err(r.conflict(
                "recent",
                recent,
                format!("start {start} + recent {recent} exceed budget {budget}"),
            ));
        }
        if start + chunk > budget {
            return Err(r.conflict(
                "chunk",
                chunk,
                format!("a chunk of {chunk} does not fit next to {start} start tokens in budget {budget}"),
            ));
        }
        Ok(SirllmPolicy {
            budget,
            start,
            recent,
            decay,
            chunk,
            scores: Vec::new(),
            next_logprobs: Vec::new(),
        })
    }

    pub fn from_options(
        opts: &[(String, String)],
        facts: ModelFacts,
    ) -> Result<SirllmPolicy, PolicyError> {
        let r = OptionReader::new(INFO.name, opts);
        let budget = r.budget(2048.min(facts.context_length), facts)?;
        let start = r.count("start")?.unwrap_or(4);
        let recent = r.count("recent")?.unwrap_or(budget / 2);
        let decay = r.fraction("decay", 0.0, 1.0)?.unwrap_or(1.0);
        let chunk = r.positive("chunk")?.unwrap_or((budget / 4).clamp(1, 256));
        SirllmPolicy::from_parts(budget, start, recent, decay, chunk)
    }

    /// The score of every stored slot, in slot order.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// Slots kept by the size the selection may use for surprising tokens.
    fn entropy_size(&self) -> usize {
        self.budget - self.start - self.recent
    }

    /// The retained slot set before a chunk of `m` tokens (kv_cache.py's eviction).
    fn select(&self, len: usize, m: usize) -> Vec<usize> {
        let start = self.start.min(len);
        let target = self.budget - m; // slots that may stay
        let e = self.entropy_size().saturating_sub(m).min(target - start);
        let mut keep = vec![false; len];
        keep[..start].iter_mut().for_each(|k| *k = true);
        let mut by_score: Vec<usize> = (start..len).collect();
        // Highest score first; ties keep the later token (more recent context).
        by_score.sort_by(|&a, &b| self.scores[b].total_cmp(&self.scores[a]).then(b.cmp(&a)));
        for &i in by_score.iter().take(e) {
            keep[i] = true;
        }
        let mut kept = start + e.min(len - start);
        for i in (start..len).rev() {
            if kept >= target {
                break;
            }
            if !keep[i] {
                keep[i] = true;
                kept += 1;
            }
        }
        (0..len).filter(|&i| keep[i]).collect()
    }
}

impl CachePolicy for SirllmPolicy {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn chunk_size(&self) -> usize {
        self.chunk
    }

    fn before_chunk(&mut self, kv: &mut KvStore, n_new: usize) -> Result<(), PolicyError> {
        let len = kv.len();
        debug_assert_eq!(len, self.scores.len());
        if len + n_new <= self.budget {
            return Ok(());
        }
        if n_new + self.start.min(len) > self.budget {
            return Err(OptionReader::new(INFO.name, &[]).conflict(
                "chunk",
                n_new,
                format!(
                    "a chunk of {n_new} tokens does not fit next to {} start tokens in budget {}",
                    self.start, self.budget
                ),
            ));
        }
        let keep = self.select(len, n_new);
        kv.retain_slots(&keep);
        let decay = self.decay;
        self.scores = keep.iter().map(|&i| self.scores[i] * decay).collect();
        Ok(())
    }

    fn plan(&mut self, ctx: &PlanContext, kv: &KvStore) -> AttnPlan {
        slot_renumbered_plan(ctx, kv.positions())
    }

    fn wants_surprisal(&self) -> bool {
        true
    }

    fn observe_surprisal(&mut self, tokens: &[u32], rest: &[f32], next_logprobs: &[f32]) {
        let first = match self.next_logprobs.get(tokens[0] as usize) {
            Some(&lp) => -lp,
            // No prediction for the sequence's first token: the chunk's highest score.
            None => rest.iter().copied().fold(0.0, f32::max),
        };
        self.scores.push(first);
        self.scores.extend_from_slice(rest);
        self.next_logprobs.clear();
        self.next_logprobs.extend_from_slice(next_logprobs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_keeps_start_top_scores_and_recent() {
        // budget 8 = start 1 + recent 3 + entropy 4; before a chunk of 2 the store of 8
        // keeps 6: slot 0, the 2 (= 4 − 2) most surprising, then the most recent.
        let mut p = SirllmPolicy::from_parts(8, 1, 3, 0.5, 2).unwrap();
        p.scores = vec![0.1, 9.0, 0.2, 8.0, 0.3, 0.4, 0.5, 0.6];
        let keep = p.select(8, 2);
        assert_eq!(keep, vec![0, 1, 3, 5, 6, 7]);
    }

    #[test]
    fn eviction_bounds_the_store_and_decays_scores() {
        let mut p = SirllmPolicy::from_parts(8, 1, 3, 0.5, 2).unwrap();
        let mut kv = KvStore::new(1, 1, 1, false);
        kv.begin_chunk(0..8);
        let rows: Vec<f32> = (0..8).map(|x| x as f32).collect();
        kv.append(0, &rows, &[], &rows, 8);
        kv.end_chunk();
        p.scores = vec![0.1, 9.0, 0.2, 8.0, 0.3, 0.4, 0.5, 0.6];
        p.before_chunk(&mut kv, 2).unwrap();
        assert_eq!(kv.positions(), &[0, 1, 3, 5, 6, 7]);
        assert_eq!(p.scores, vec![0.05, 4.5, 4.0, 0.2, 0.25, 0.3]);
        assert!(kv.len() + 2 <= p.budget);
    }

    #[test]
    fn options_are_validated() {
        let facts = ModelFacts {
            n_layers: 1,
            context_length: 4096,
        };
        let opts = |s: &str| crate::policy::parse_options(&INFO, s).unwrap();
        let e = SirllmPolicy::from_options(&opts("budget=64,recent=80"), facts).unwrap_err();
        assert!(e.to_string().contains("exceed budget"), "{e}");
        let e = SirllmPolicy::from_options(&opts("decay=1.5"), facts).unwrap_err();
        assert!(e.to_string().contains("0..=1"), "{e}");
        let e = SirllmPolicy::from_options(&opts("budget=0"), facts).unwrap_err();
        assert!(e.to_string().contains("positive"), "{e}");
        let e = SirllmPolicy::from_options(&opts("budget=8192"), facts).unwrap_err();
        assert!(e.to_string().contains("trained context"), "{e}");
        let p = SirllmPolicy::from_options(&opts(""), facts).unwrap();
        assert_eq!((p.budget, p.start, p.recent, p.chunk), (2048, 4, 1024, 256));
    }
}
