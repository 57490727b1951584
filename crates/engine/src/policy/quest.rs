//! `quest`: query-aware page selection (Quest, Tang et al. 2024, repo mit-han-lab/Quest; the
//! dense-head path of LServe, engine-methods §6). The store keeps every token up to
//! `capacity`; for each page of `page` slots and each KV head the policy keeps the channel-wise
//! min and max of the post-RoPE keys, folded in as keys arrive. At every decode step (or every
//! `reuse` steps) each layer scores the pages by the upper bound
//! `Σ_c max(q_c·max_c, q_c·min_c)` of `q·k`, summed over the query heads of a KV head's group,
//! and attends per KV head to its best pages ([`Slots::PerKvHead`]) plus the sinks and the local
//! window, all at true positions, in one softmax.
//!
//! Cost and memory. Decode attention reads at most `budget + page − 1` keys per KV head (the
//! window starts on a page boundary), whatever the context; choosing the pages reads two
//! `head_dim` vectors per page (1/`page` of the keys, and only every `reuse` steps). Prefill is
//! dense as in the repo (`q_len > 1` runs full attention) unless `prefill=sparse`. The store
//! holds at most `capacity` tokens (oldest pages after the sinks are evicted beyond it) plus
//! `2·head_dim` floats of page metadata per page, KV head and layer
//! ([`metadata_bytes`](QuestPolicy::metadata_bytes)). Positions stay true, so the policy is
//! meant for inputs within the model's trained context (the default capacity).

use std::sync::Arc;

use crate::attention::{dot, AttnPlan, Slots, Span, SpanMask};
use crate::kv::KvStore;
use crate::policy::{
    CachePolicy, ModelFacts, OptionReader, PlanContext, PolicyError, PolicyInfo, PolicyOption,
};

pub(crate) const INFO: PolicyInfo = PolicyInfo {
    name: "quest",
    summary: "query-aware top-k KV pages by key min/max bounds (Quest); decode cost bounded by the budget",
    options: &[
        PolicyOption {
            name: "budget",
            default: "min(2048, capacity)",
            help: "tokens each decode query attends to: sinks + local window + selected pages",
        },
        PolicyOption { name: "page", default: "16", help: "tokens per page (Quest paper and repo: 16)" },
        PolicyOption { name: "sinks", default: "4", help: "initial tokens always attended (not in Quest; StreamingLLM's 4)" },
        PolicyOption { name: "local", default: "64", help: "newest tokens always attended (LServe always keeps the newest 64-token page)" },
        PolicyOption { name: "reuse", default: "1", help: "decode steps a page selection is reused (Quest: 1; LServe: 4)" },
        PolicyOption {
            name: "dense_layers",
            default: "0",
            help: "first layers that always attend densely (Quest repo: 2; 0 keeps decode cost bounded by the budget)",
        },
        PolicyOption { name: "prefill", default: "dense", help: "dense (Quest: full attention for multi-token chunks) or sparse" },
        PolicyOption { name: "capacity", default: "model's trained context", help: "most tokens stored; oldest pages after the sinks are evicted" },
        PolicyOption { name: "chunk", default: "512", help: "tokens per prefill forward pass" },
    ],
    build: |opts, facts| Ok(Box::new(QuestPolicy::from_options(opts, facts)?)),
};

/// Per-page key bounds of one layer.
#[derive(Debug, Default)]
struct PageStats {
    /// Per KV head, `pages × head_dim` channel minima / maxima of post-RoPE keys.
    min: Vec<Vec<f32>>,
    max: Vec<Vec<f32>>,
    /// Slots after the sinks already folded in.
    covered: usize,
}

/// A layer's last page selection, reused for `reuse` decode steps.
#[derive(Debug)]
struct Selection {
    lists: Arc<[Vec<u32>]>,
    candidates: usize,
    age: usize,
}

/// Quest: sinks + per-KV-head top pages + local window.
#[derive(Debug)]
pub struct QuestPolicy {
    pub budget: usize,
    pub page: usize,
    pub sinks: usize,
    pub local: usize,
    pub reuse: usize,
    pub dense_layers: usize,
    pub sparse_prefill: bool,
    pub capacity: usize,
    pub chunk: usize,
    stats: Vec<PageStats>,
    cache: Vec<Option<Selection>>,
}

fn bad(option: &str, value: impl ToString, reason: impl Into<String>) -> PolicyError {
    PolicyError::BadOption {
        policy: INFO.name.into(),
        option: option.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl QuestPolicy {
    /// A policy with the given budget and capacity and the defaults its options list.
    pub fn new(budget: usize, capacity: usize) -> Result<QuestPolicy, PolicyError> {
        QuestPolicy::unchecked(budget, capacity).validated()
    }

    /// Checks the settings; call again after changing public fields.
    pub fn validated(self) -> Result<QuestPolicy, PolicyError> {
        for (name, v) in [
            ("budget", self.budget),
            ("page", self.page),
            ("reuse", self.reuse),
            ("capacity", self.capacity),
            ("chunk", self.chunk),
        ] {
            if v == 0 {
                return Err(bad(name, v, "must be a positive integer"));
            }
        }
        if self.sinks + self.local >= self.budget {
            return Err(bad(
                "budget",
                self.budget,
                format!("must exceed sinks {} + local {}", self.sinks, self.local),
            ));
        }
        if self.pages_budget() == 0 {
            return Err(bad(
                "budget",
                self.budget,
                format!(
                    "leaves no room for one page of {} next to sinks + local",
                    self.page
                ),
            ));
        }
        if self.budget > self.capacity {
            return Err(bad(
                "budget",
                self.budget,
                format!("exceeds capacity {}", self.capacity),
            ));
        }
        Ok(self)
    }

    /// Builds from parsed `key=value` options (as `build_policy` does), for callers that need
    /// the concrete type.
    pub fn from_options(
        opts: &[(String, String)],
        facts: ModelFacts,
    ) -> Result<QuestPolicy, PolicyError> {
        let opt = OptionReader::new(INFO.name, opts);
        let pos_opt = |name: &str| opt.positive(name);
        let capacity = pos_opt("capacity")?.unwrap_or(facts.context_length);
        // Apply every option before validating: defaults alone may not fit a tiny context.
        let mut p =
            QuestPolicy::unchecked(pos_opt("budget")?.unwrap_or(2048.min(capacity)), capacity);
        if let Some(v) = pos_opt("page")? {
            p.page = v;
        }
        if let Some(v) = opt.count("sinks")? {
            p.sinks = v;
        }
        if let Some(v) = opt.count("local")? {
            p.local = v;
        }
        if let Some(v) = pos_opt("reuse")? {
            p.reuse = v;
        }
        if let Some(v) = opt.count("dense_layers")? {
            p.dense_layers = v;
        }
        if let Some(v) = opt.text("prefill") {
            p.sparse_prefill = match v {
                "dense" => false,
                "sparse" => true,
                _ => return Err(bad("prefill", v, "must be 'dense' or 'sparse'")),
            };
        }
        if let Some(v) = pos_opt("chunk")? {
            p.chunk = v;
        }
        p.validated()
    }

    fn unchecked(budget: usize, capacity: usize) -> QuestPolicy {
        QuestPolicy {
            budget,
            page: 16,
            sinks: 4,
            local: 64,
            reuse: 1,
            dense_layers: 0,
            sparse_prefill: false,
            capacity,
            chunk: 512,
            stats: Vec::new(),
            cache: Vec::new(),
        }
    }

    /// Pages selected per KV head.
    pub fn pages_budget(&self) -> usize {
        self.budget.saturating_sub(self.sinks + self.local) / self.page
    }

    /// Bytes of page metadata held (min and max per page, KV head and layer).
    pub fn metadata_bytes(&self) -> usize {
        self.stats
            .iter()
            .map(|s| s.min.iter().chain(&s.max).map(Vec::len).sum::<usize>())
            .sum::<usize>()
            * std::mem::size_of::<f32>()
    }

    /// Folds keys appended since the last call into layer `il`'s page bounds.
    fn update_stats(&mut self, il: usize, kv: &KvStore) {
        let (d, n_kv) = (kv.head_dim(), kv.n_kv_heads());
        let st = &mut self.stats[il];
        st.min.resize_with(n_kv, Vec::new);
        st.max.resize_with(n_kv, Vec::new);
        let (s, len) = (self.sinks, kv.len());
        if len <= s {
            return;
        }
        let keys = &kv.layer(il).k;
        for ((keys, mn), mx) in keys.iter().zip(&mut st.min).zip(&mut st.max) {
            for slot in s + st.covered..len {
                let key = &keys[slot * d..(slot + 1) * d];
                if (slot - s).is_multiple_of(self.page) {
                    mn.extend_from_slice(key);
                    mx.extend_from_slice(key);
                } else {
                    let at = mn.len() - d;
                    mn[at..]
                        .iter_mut()
                        .zip(key)
                        .for_each(|(m, &k)| *m = m.min(k));
                    mx[at..]
                        .iter_mut()
                        .zip(key)
                        .for_each(|(m, &k)| *m = m.max(k));
                }
            }
        }
        st.covered = len - s;
    }

    /// Per KV head, the `k` best of the first `candidates` pages by the Quest bound, as slot
    /// lists in ascending order.
    fn select(
        &self,
        ctx: &PlanContext,
        kv: &KvStore,
        candidates: usize,
        k: usize,
    ) -> Arc<[Vec<u32>]> {
        let (d, n_kv) = (ctx.head_dim, kv.n_kv_heads().max(1));
        let group = (ctx.n_heads / n_kv).max(1);
        let qd = ctx.n_heads * d;
        // One query per head: the row itself when decoding, the chunk's mean otherwise.
        let rows = ctx.q.len() / qd.max(1);
        let mut q = vec![0.0f32; qd];
        for row in ctx.q.chunks_exact(qd) {
            q.iter_mut()
                .zip(row)
                .for_each(|(a, b)| *a += b / rows.max(1) as f32);
        }
        let st = &self.stats[ctx.layer];
        let mut lists = Vec::with_capacity(n_kv);
        let mut scores = vec![0.0f32; candidates];
        for g in 0..n_kv {
            // Σ_h Σ_c max(q_hc·max_c, q_hc·min_c) = (Σ_h q_h⁺)·max + (Σ_h q_h⁻)·min.
            let (mut pos, mut neg) = (vec![0.0f32; d], vec![0.0f32; d]);
            for h in g * group..(g + 1) * group {
                for (c, &x) in q[h * d..(h + 1) * d].iter().enumerate() {
                    if x > 0.0 {
                        pos[c] += x;
                    } else {
                        neg[c] += x;
                    }
                }
            }
            for (p, s) in scores.iter_mut().enumerate() {
                *s = dot(&pos, &st.max[g][p * d..(p + 1) * d])
                    + dot(&neg, &st.min[g][p * d..(p + 1) * d]);
            }
            let mut pages: Vec<u32> = (0..candidates as u32).collect();
            let by_score = |a: &u32, b: &u32| {
                scores[*b as usize]
                    .total_cmp(&scores[*a as usize])
                    .then(a.cmp(b))
            };
            pages.select_nth_unstable_by(k - 1, by_score);
            pages.truncate(k);
            pages.sort_unstable();
            let first = self.sinks as u32;
            lists.push(
                pages
                    .iter()
                    .flat_map(|&p| first + p * self.page as u32..first + (p + 1) * self.page as u32)
                    .collect(),
            );
        }
        lists.into()
    }
}

impl CachePolicy for QuestPolicy {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn chunk_size(&self) -> usize {
        self.chunk
            .min(self.capacity.saturating_sub(self.sinks))
            .max(1)
    }

    fn before_chunk(&mut self, kv: &mut KvStore, n_new: usize) -> Result<(), PolicyError> {
        let len = kv.len();
        if len + n_new <= self.capacity {
            return Ok(());
        }
        // Evict whole pages after the sinks so the page grid stays aligned.
        let s = self.sinks.min(len);
        let drop = (len + n_new - self.capacity).div_ceil(self.page) * self.page;
        let drop = drop.min(len - s);
        if len - drop + n_new > self.capacity {
            return Err(bad(
                "chunk",
                n_new,
                format!(
                    "a chunk of {n_new} tokens does not fit next to {s} sinks in capacity {}",
                    self.capacity
                ),
            ));
        }
        kv.remove_range(s..s + drop);
        for st in &mut self.stats {
            if drop.is_multiple_of(self.page) && st.covered >= drop && s == self.sinks {
                let n = drop / self.page * kv.head_dim();
                st.min.iter_mut().chain(&mut st.max).for_each(|m| {
                    m.drain(..n.min(m.len()));
                });
                st.covered -= drop;
            } else {
                // Misaligned (only when everything after the sinks went): rebuild lazily.
                *st = PageStats::default();
            }
        }
        self.cache.iter_mut().for_each(|c| *c = None);
        Ok(())
    }

    fn plan(&mut self, ctx: &PlanContext, kv: &KvStore) -> AttnPlan {
        let il = ctx.layer;
        if self.stats.len() <= il {
            self.stats.resize_with(il + 1, PageStats::default);
            self.cache.resize_with(il + 1, || None);
        }
        self.update_stats(il, kv);
        let len = kv.len();
        let n = ctx.q_pos.len();
        if let Some(w) = ctx.native_window {
            return AttnPlan {
                spans: vec![Span::original(0..len, SpanMask::Window(w))],
                observe: Vec::new(),
            };
        }
        let dense = AttnPlan {
            spans: vec![Span::original(0..len, SpanMask::Causal)],
            observe: Vec::new(),
        };
        if il < self.dense_layers || (n > 1 && !self.sparse_prefill) || len < self.sinks {
            return dense;
        }
        // Window: from the page boundary at or below `local` tokens before the chunk.
        let s = self.sinks;
        let raw = (len - n).saturating_sub(self.local).max(s);
        let w0 = s + (raw - s) / self.page * self.page;
        let candidates = (w0 - s) / self.page;
        let k = self.pages_budget();
        if candidates <= k {
            return dense;
        }
        let lists = match &mut self.cache[il] {
            Some(c) if n == 1 && c.age < self.reuse && c.candidates <= candidates => {
                c.age += 1;
                c.lists.clone()
            }
            _ => {
                let lists = self.select(ctx, kv, candidates, k);
                self.cache[il] = Some(Selection {
                    lists: lists.clone(),
                    candidates,
                    age: 1,
                });
                lists
            }
        };
        let mut spans = Vec::with_capacity(3);
        if s > 0 {
            spans.push(Span::original(0..s, SpanMask::Causal));
        }
        // Selected pages all precede the window, hence every row of the chunk.
        spans.push(Span {
            slots: Slots::PerKvHead(lists),
            pos: crate::attention::KeyPos::Original,
            mask: SpanMask::All,
        });
        spans.push(Span::original(w0..len, SpanMask::Causal));
        AttnPlan {
            spans,
            observe: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::build_policy;
    use crate::rope::RopeParams;

    const FACTS: ModelFacts = ModelFacts {
        n_layers: 1,
        context_length: 8192,
    };
    const ROPE: RopeParams = RopeParams {
        base: 10000.0,
        freq_scale: 1.0,
        n_rot: 4,
        neox: false,
    };

    fn err(opts: &str) -> String {
        build_policy("quest", opts, FACTS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn options_defaults_and_errors() {
        let p = QuestPolicy::from_options(&[], FACTS).expect("defaults");
        assert_eq!(
            (
                p.budget,
                p.page,
                p.sinks,
                p.local,
                p.reuse,
                p.capacity,
                p.pages_budget()
            ),
            (2048, 16, 4, 64, 1, 8192, 123)
        );
        let tiny = QuestPolicy::from_options(
            &[],
            ModelFacts {
                n_layers: 1,
                context_length: 32,
            },
        );
        assert!(
            tiny.is_err(),
            "a 32-token context leaves no page next to 4 sinks + 64 local"
        );
        assert!(err("budget=0").contains("positive integer"));
        assert!(err("page=0").contains("positive integer"));
        assert!(err("budget=60").contains("must exceed sinks"));
        assert!(err("budget=80").contains("no room for one page"));
        assert!(err("budget=9000").contains("exceeds capacity"));
        assert!(err("prefill=maybe").contains("'dense' or 'sparse'"));
        assert!(err("sinks=-1").contains("non-negative"));
        assert!(build_policy(
            "quest",
            "budget=256,page=32,local=32,sinks=0,reuse=4,prefill=sparse,capacity=1024",
            FACTS
        )
        .is_ok());
    }

    fn policy(opts: &str) -> QuestPolicy {
        QuestPolicy::from_options(
            &crate::policy::parse_options(&INFO, opts).expect("parses"),
            FACTS,
        )
        .expect("valid")
    }

    /// A one-layer store of `n` tokens, d = 4, two KV heads, keys given by `key(slot, head)`.
    fn store(n: usize, key: impl Fn(usize, usize) -> [f32; 4]) -> KvStore {
        let mut kv = KvStore::new(1, 2, 4, false);
        kv.begin_chunk(0..n as i64);
        let rows: Vec<f32> = (0..n)
            .flat_map(|s| [key(s, 0), key(s, 1)])
            .flatten()
            .collect();
        kv.append(0, &rows, &rows, &rows, n);
        kv.end_chunk();
        kv
    }

    #[test]
    fn page_bounds_cover_every_key_and_pick_the_matching_page() {
        let mut p = policy("budget=40,sinks=2,local=8,page=4");
        // Small noise everywhere; slot 21 (head 0) and slot 30 (head 1) point along the query.
        let kv = store(64, |s, h| {
            let x = ((s * 7 + h * 3) % 11) as f32 / 11.0 - 0.5;
            match (s, h) {
                (21, 0) | (30, 1) => [5.0, 0.0, 0.0, 0.0],
                _ => [x, -x, 0.5 * x, 0.1],
            }
        });
        // 4 query heads (2 per KV head), one decode row, all looking along channel 0.
        let q = [1.0f32, 0.0, 0.0, 0.0].repeat(4);
        let ctx = PlanContext {
            layer: 0,
            native_window: None,
            q: &q,
            q_pre: &q,
            q_pos: &[63],
            n_heads: 4,
            head_dim: 4,
            rope: ROPE,
        };
        let plan = p.plan(&ctx, &kv);
        // Bounds: every key of a page lies inside [min, max].
        let st = &p.stats[0];
        for slot in 2..64 {
            let page = (slot - 2) / 4;
            for h in 0..2 {
                for c in 0..4 {
                    let k = kv.layer(0).k[h][slot * 4 + c];
                    assert!(st.min[h][page * 4 + c] <= k && k <= st.max[h][page * 4 + c]);
                }
            }
        }
        assert_eq!(plan.spans.len(), 3);
        assert_eq!(plan.spans[0], Span::original(0..2, SpanMask::Causal));
        // Window from the page boundary at or below 63 − 8 = 55: slot 54.
        assert_eq!(plan.spans[2], Span::original(54..64, SpanMask::Causal));
        let Slots::PerKvHead(lists) = &plan.spans[1].slots else {
            panic!("per-head pages")
        };
        assert_eq!(lists[0].len(), p.pages_budget() * 4);
        assert!(lists[0].contains(&21) && !lists[0].contains(&30));
        assert!(lists[1].contains(&30));
        // Decode cost: keys attended per head stay within budget + page − 1.
        let attended: usize = plan.spans.iter().map(|s| s.slots.len()).sum();
        assert!(attended < p.budget + p.page, "{attended}");
    }

    #[test]
    fn eviction_keeps_sinks_and_page_alignment() {
        let mut p = policy("budget=20,sinks=2,local=4,page=4,capacity=40");
        let mut kv = store(38, |s, h| [s as f32, h as f32, 0.0, 0.0]);
        let q = vec![0.0f32; 16];
        let ctx = PlanContext {
            layer: 0,
            native_window: None,
            q: &q,
            q_pre: &q,
            q_pos: &[37],
            n_heads: 4,
            head_dim: 4,
            rope: ROPE,
        };
        p.plan(&ctx, &kv);
        p.before_chunk(&mut kv, 5).expect("fits");
        // 38 + 5 − 40 = 3 over: one page of 4 goes, right after the sinks.
        assert_eq!(kv.len(), 34);
        assert_eq!(&kv.positions()[..3], &[0, 1, 6]);
        assert_eq!(p.stats[0].covered, 32);
        // The first page's bounds now describe slots 2..6 = positions 6..9.
        assert_eq!(p.stats[0].min[0][0], 6.0);
        assert_eq!(p.stats[0].max[0][0], 9.0);
        assert!(p.before_chunk(&mut kv, 45).is_err());
    }
}
