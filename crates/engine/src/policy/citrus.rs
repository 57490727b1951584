//! `citrus`: CItruS (Bai, Zou et al., EMNLP 2024, repo ybai-nlp/CItruS; engine-methods §5).
//! The input is read in chunks under a fixed budget; after each chunk the old cache is cut to
//! the `keep` states that matter most, chosen per layer (shared by all heads) by attention:
//! the instruction's attention when the question is known (`ask` passes it; the paper's
//! instruction-aware shared-cache variant, `instruction_aware_single`), otherwise the new
//! chunk's own attention (the paper's standard chunked state eviction). Positions are slot
//! numbers, as the repo's patched attention does.
//!
//! The instruction is run as a *probe* after each chunk: its queries attend to the old cache
//! only, placed right before it (as `forward(instruction, past=old cache)` in the repo), its
//! keys and values are dropped, and the attention it paid is summed over heads and rows.
//!
//! Differences from the repo, deliberate:
//! - Eviction is triggered by size: once the store exceeds `keep + chunk`, everything but the
//!   newest chunk is cut to `keep`. In prefill this is exactly the repo's per-chunk step; in
//!   decoding (which the repo does without eviction) generated tokens accumulate until a
//!   chunk's worth and are then evicted the same way, so memory stays bounded however long
//!   the output. Without an instruction, decoding rows' attention since the last eviction
//!   scores the cache.
//! - The repo's finalisation (evict with the instruction, drop it, re-run it on the kept
//!   states) happens naturally: the prompt's question sits in the last chunk, which is
//!   always kept, and it is encoded over the selected cache.
//!
//! Memory: at most `budget = keep + 2·chunk` slots per layer at any time.

use std::sync::Arc;

use crate::attention::{AttnPlan, KeyPos, LayerObs, Slots, Span, SpanMask};
use crate::kv::KvStore;
use crate::policy::{
    slot_renumbered_plan, CachePolicy, ModelFacts, OptionReader, PlanContext, PolicyError,
    PolicyInfo, PolicyOption,
};

pub(crate) const INFO: PolicyInfo = PolicyInfo {
    name: "citrus",
    summary: "chunked eviction keeping what the instruction attends to, per layer (CItruS); constant memory",
    options: &[
        PolicyOption {
            name: "budget",
            default: "keep + 2·chunk = 1280",
            help: "most tokens in the store (kept states + two chunks); sets keep = budget − 2·chunk",
        },
        PolicyOption {
            name: "chunk",
            default: "min(256, budget / 4)",
            help: "tokens per chunk, the eviction granularity (repo: 256)",
        },
        PolicyOption {
            name: "instruction",
            default: "on",
            help: "on: score by the instruction's attention when the caller gives one (ask does); off: the chunk's own attention",
        },
    ],
    build: |opts, facts| Ok(Box::new(CitrusPolicy::from_options(opts, facts)?)),
};

/// Instruction-aware chunked state eviction with per-layer keep sets and slot positions.
#[derive(Clone, Debug)]
pub struct CitrusPolicy {
    pub keep: usize,
    pub chunk: usize,
    pub use_instruction: bool,
    instruction: Option<Arc<[u32]>>,
    /// Per layer, attention paid to each slot since the last eviction (or by the probe).
    scores: Vec<Vec<f32>>,
    /// Slots of the newest chunk (never evicted by the step that follows it).
    newest: usize,
    /// Slots that were "old" when the probe was planned (it attends to these only).
    probing_old: Option<usize>,
}

impl CitrusPolicy {
    /// A policy keeping `keep` states between chunks of `chunk` tokens.
    pub fn new(keep: usize, chunk: usize) -> Result<CitrusPolicy, PolicyError> {
        if keep == 0 || chunk == 0 {
            let (name, v) = if keep == 0 {
                ("budget", keep)
            } else {
                ("chunk", chunk)
            };
            return Err(OptionReader::new(INFO.name, &[]).conflict(
                name,
                v,
                "leaves no room: need keep > 0 and chunk > 0 (budget > 2·chunk)".into(),
            ));
        }
        Ok(CitrusPolicy {
            keep,
            chunk,
            use_instruction: true,
            instruction: None,
            scores: Vec::new(),
            newest: 0,
            probing_old: None,
        })
    }

    pub fn from_options(
        opts: &[(String, String)],
        facts: ModelFacts,
    ) -> Result<CitrusPolicy, PolicyError> {
        let r = OptionReader::new(INFO.name, opts);
        let budget = r.budget(1280.min(facts.context_length), facts)?;
        let chunk = r.positive("chunk")?.unwrap_or((budget / 4).clamp(1, 256));
        if 2 * chunk >= budget {
            return Err(r.conflict(
                "chunk",
                chunk,
                format!("two chunks must fit in budget {budget} with room to keep states"),
            ));
        }
        let mut p = CitrusPolicy::new(budget - 2 * chunk, chunk)?;
        p.use_instruction = match r.text("instruction") {
            None | Some("on") => true,
            Some("off") => false,
            Some(v) => return Err(r.bad("instruction", v, "must be on or off")),
        };
        p.scores = vec![Vec::new(); facts.n_layers];
        Ok(p)
    }

    /// Most slots the store holds at any time.
    pub fn budget(&self) -> usize {
        self.keep + 2 * self.chunk
    }

    fn eviction_due(&self, kv: &KvStore) -> bool {
        kv.len() > self.keep + self.chunk && kv.len() - self.newest > self.keep
    }

    /// Keeps, per layer, the `keep` best-scored old slots and every slot of the newest chunk.
    fn evict(&mut self, kv: &mut KvStore) {
        let len = kv.len();
        let old = len - self.newest;
        let n_layers = kv.n_layers();
        self.scores.resize(n_layers, Vec::new());
        let keep: Vec<Vec<usize>> = (0..n_layers)
            .map(|il| {
                let s = &self.scores[il];
                let score = |i: usize| s.get(i).copied().unwrap_or(0.0);
                let mut order: Vec<usize> = (0..old).collect();
                // Highest attention first; ties keep the later slot.
                order.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(b.cmp(&a)));
                order.truncate(self.keep);
                order.sort_unstable();
                order.extend(old..len);
                order
            })
            .collect();
        kv.retain_slots_per_layer(&keep);
        self.scores.iter_mut().for_each(Vec::clear);
    }
}

impl CachePolicy for CitrusPolicy {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn chunk_size(&self) -> usize {
        self.chunk
    }

    fn before_chunk(&mut self, _kv: &mut KvStore, n_new: usize) -> Result<(), PolicyError> {
        self.newest = n_new;
        Ok(())
    }

    fn plan(&mut self, ctx: &PlanContext, kv: &KvStore) -> AttnPlan {
        let pos = kv.layer_positions(ctx.layer);
        let len = pos.len();
        if let Some(w) = ctx.native_window {
            return AttnPlan {
                spans: vec![Span::original(0..len, SpanMask::Window(w))],
                observe: Vec::new(),
            };
        }
        let n = ctx.q_pos.len();
        if let Some(old) = self.probing_old {
            // The instruction right after the old cache, which sits at slots just before it.
            let first = ctx.q_pos[0] - old as i64;
            let virt: Arc<[i64]> = (0..old as i64).map(|j| first + j).collect();
            return AttnPlan {
                spans: vec![
                    Span {
                        slots: Slots::Range(0..old),
                        pos: KeyPos::Virtual(virt),
                        mask: SpanMask::Causal,
                    },
                    Span::original(len - n..len, SpanMask::Causal),
                ],
                observe: vec![0],
            };
        }
        let mut plan = slot_renumbered_plan(ctx, pos);
        if self.instruction.is_none() {
            plan.observe = (0..plan.spans.len()).collect();
        }
        plan
    }

    fn observe(&mut self, layer: usize, plan: &AttnPlan, obs: &LayerObs, kv: &KvStore) {
        if layer >= self.scores.len() {
            self.scores.resize(layer + 1, Vec::new());
        }
        let scores = &mut self.scores[layer];
        scores.resize(kv.len(), 0.0);
        for (sums, &si) in obs.col_sums.iter().zip(&plan.observe) {
            let Slots::Range(range) = &plan.spans[si].slots else {
                continue;
            };
            let width = range.len();
            if width == 0 {
                continue;
            }
            // Summed over query heads: the repo averages over heads, same ranking.
            for head in sums.chunks_exact(width) {
                for (j, &p) in head.iter().enumerate() {
                    scores[range.start + j] += p;
                }
            }
        }
    }

    fn after_chunk(&mut self, kv: &mut KvStore) -> Result<(), PolicyError> {
        if self.probe_wanted() || !self.eviction_due(kv) {
            return Ok(());
        }
        self.evict(kv);
        Ok(())
    }

    fn set_instruction(&mut self, tokens: &[u32]) -> bool {
        if !self.use_instruction || tokens.is_empty() {
            return false;
        }
        self.instruction = Some(tokens.into());
        true
    }

    fn probe(&mut self, kv: &KvStore) -> Option<Arc<[u32]>> {
        if !self.probe_wanted() || !self.eviction_due(kv) {
            return None;
        }
        self.probing_old = Some(kv.len() - self.newest);
        self.scores.iter_mut().for_each(Vec::clear);
        self.instruction.clone()
    }

    fn after_probe(&mut self, kv: &mut KvStore) -> Result<(), PolicyError> {
        self.probing_old = None;
        self.evict(kv);
        Ok(())
    }
}

impl CitrusPolicy {
    fn probe_wanted(&self) -> bool {
        self.use_instruction && self.instruction.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let facts = ModelFacts {
            n_layers: 2,
            context_length: 4096,
        };
        let opts = |s: &str| crate::policy::parse_options(&INFO, s).unwrap();
        let p = CitrusPolicy::from_options(&opts(""), facts).unwrap();
        assert_eq!((p.keep, p.chunk, p.budget()), (768, 256, 1280));
        let p = CitrusPolicy::from_options(&opts("budget=512"), facts).unwrap();
        assert_eq!((p.keep, p.chunk), (256, 128));
        let e = CitrusPolicy::from_options(&opts("budget=512,chunk=256"), facts).unwrap_err();
        assert!(e.to_string().contains("two chunks"), "{e}");
        let e = CitrusPolicy::from_options(&opts("instruction=maybe"), facts).unwrap_err();
        assert!(e.to_string().contains("on or off"), "{e}");
        let e = CitrusPolicy::from_options(&opts("budget=0"), facts).unwrap_err();
        assert!(e.to_string().contains("positive"), "{e}");
    }

    #[test]
    fn eviction_keeps_the_most_attended_old_slots_per_layer() {
        let mut p = CitrusPolicy::new(2, 2).unwrap();
        p.scores = vec![vec![0.0; 6]; 2];
        let mut kv = KvStore::new(2, 1, 1, false);
        kv.begin_chunk(0..6);
        let rows: Vec<f32> = (0..6).map(|x| x as f32).collect();
        kv.append(0, &rows, &[], &rows, 6);
        kv.append(1, &rows, &[], &rows, 6);
        kv.end_chunk();
        p.newest = 2;
        p.scores[0] = vec![0.9, 0.1, 0.8, 0.2, 0.0, 0.0];
        p.scores[1] = vec![0.1, 0.7, 0.2, 0.6, 0.0, 0.0];
        assert!(p.eviction_due(&kv));
        p.evict(&mut kv);
        assert_eq!(kv.layer_positions(0), &[0, 2, 4, 5]);
        assert_eq!(kv.layer_positions(1), &[1, 3, 4, 5]);
        assert_eq!(kv.layer(1).k[0], vec![1.0, 3.0, 4.0, 5.0]);
        assert!(!p.eviction_due(&kv));
    }
}
