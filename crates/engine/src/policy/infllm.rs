//! `infllm`: InfLLM (Xiao et al. 2024, repo thunlp/InfLLM; engine-methods §3). Initial tokens
//! plus a local window at true distances, and a block memory of the evicted context: tokens
//! that leave the window are packed into blocks of `block` tokens, each summarised per query
//! head by the mean of its `repr_topk` most-attended keys. Every chunk retrieves the `topk`
//! blocks whose representatives best match the chunk's averaged fixed-angle query and attends
//! to them, to the initial tokens and to the not-yet-blocked remainder at one fixed distance
//! (`n_local`), in a single softmax with the local window.
//!
//! Memory accounting. The hot [`KvStore`] keeps only the initial tokens, the remainder (< one
//! block), the local window and the chunk in flight: at most
//! [`kv_bound_tokens`](InfllmPolicy::kv_bound_tokens) slots, whatever the input length. Blocks
//! leave the store and live in the policy as compact per-layer copies (pre-RoPE keys, values,
//! one representative per query head); the selected ones are gathered per layer into a scratch
//! span ([`Slots::External`]). InfLLM keeps every block (the repo offloads them from GPU to
//! CPU RAM), so the block memory grows linearly with the input; here it stays in RAM up to
//! `offload` MiB and moves to an anonymous temporary file beyond that ([`BlockMemory`]), which
//! bounds RAM ([`memory_bytes`](InfllmPolicy::memory_bytes)) by the limit plus the per-block
//! representatives. `max_blocks` instead caps the blocks themselves, dropping the least
//! recently retrieved one. Each query attends to at most `n_init + n_local + topk·block` keys
//! plus the remainder (< `block`).

use std::sync::Arc;

use crate::attention::{AttnPlan, ExternalKv, KeyPos, LayerObs, Slots, Span, SpanMask};
use crate::kv::KvStore;
use crate::policy::block_memory::BlockMemory;
use crate::policy::{
    CachePolicy, ModelFacts, OptionReader, PlanContext, PolicyError, PolicyInfo, PolicyOption,
};
use crate::rope::{self, RopeParams};

pub(crate) const INFO: PolicyInfo = PolicyInfo {
    name: "infllm",
    summary: "init tokens + local window + retrieved blocks of evicted context (InfLLM); bounded hot KV",
    options: &[
        PolicyOption {
            name: "budget",
            default: "n_init + n_local + topk·block",
            help: "tokens each query attends to (init + window + retrieved blocks); when set, the others default to fractions of it",
        },
        PolicyOption {
            name: "n_local",
            default: "min(4096, trained context / 2), or budget / 2",
            help: "local window at true distances; memory sits at this distance (repo: half the trained context)",
        },
        PolicyOption { name: "n_init", default: "128, or min(128, budget / 16)", help: "initial tokens always kept (repo: 128)" },
        PolicyOption { name: "block", default: "128, or min(128, budget / 32)", help: "tokens per memory block (repo and paper: 128)" },
        PolicyOption {
            name: "topk",
            default: "16, or what the budget leaves / block",
            help: "blocks retrieved per chunk (repo: 16; paper: 32–96)",
        },
        PolicyOption { name: "repr_topk", default: "4", help: "representative keys per block and head (repo and paper: 4)" },
        PolicyOption {
            name: "chunk",
            default: "min(512, n_local / 4)",
            help: "execution chunk: tokens per forward pass and retrieval granularity (repo exc_block_size: 512 for windows of 2048–4096)",
        },
        PolicyOption {
            name: "max_blocks",
            default: "0 (keep all)",
            help: "cap on stored blocks, least recently retrieved dropped first; bounds the block memory",
        },
        PolicyOption {
            name: "offload",
            default: "256",
            help: "MiB of block memory kept in RAM; beyond it blocks move to an unlinked temporary file in TMPDIR (off: all in RAM)",
        },
    ],
    build: |opts, facts| Ok(Box::new(InfllmPolicy::from_options(opts, facts)?)),
};

/// Head geometry, learnt from the first planned layer.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n_heads: usize,
    n_kv: usize,
    d: usize,
}

/// One layer's share of the block memory.
#[derive(Debug, Default)]
struct LayerMem {
    /// False for native sliding-window layers: they keep their own window and no memory.
    active: bool,
    rope: Option<RopeParams>,
    /// Representatives, `n_blocks × (n_heads·d)`: per query head, so GQA heads sharing a KV
    /// head may pick different representative tokens.
    repr: Vec<f32>,
    /// Local attention each store slot has received while in the window, `slots × n_heads`.
    score: Vec<f32>,
    /// Last selection and its gathered span, reused while the selection is unchanged.
    cache: Option<(Vec<u32>, Arc<ExternalKv>)>,
}

/// InfLLM: init + local window + top-k retrieved memory blocks.
#[derive(Debug)]
pub struct InfllmPolicy {
    pub n_local: usize,
    pub n_init: usize,
    pub block: usize,
    pub topk: usize,
    pub repr_topk: usize,
    pub chunk: usize,
    /// Most blocks kept (0 = all).
    pub max_blocks: usize,
    /// Bytes of block keys and values kept in RAM before they move to disk (`None`: no limit).
    /// Read when the first block is stored.
    pub offload_bytes: Option<usize>,
    geom: Option<Geom>,
    layers: Vec<LayerMem>,
    /// Block keys (pre-RoPE) and values of every layer; created with the first block.
    blocks: Option<BlockMemory>,
    /// A block-memory I/O error met while planning, reported by the next `after_chunk`.
    failure: Option<std::io::Error>,
    /// First position of each block (shared by all layers).
    block_pos: Vec<i64>,
    /// Chunk counter at each block's last retrieval, for `max_blocks`.
    last_used: Vec<u64>,
    tick: u64,
}

/// Block memory kept in RAM by default before it moves to disk: 256 MiB holds about 5.8k
/// tokens of SmolLM2-135M's block keys and values (45 KiB per token), so short inputs never
/// touch the disk and long ones add only the representatives (under 1/40 of that) to RAM.
const DEFAULT_OFFLOAD_MIB: usize = 256;

fn bad(option: &str, value: impl ToString, reason: impl Into<String>) -> PolicyError {
    PolicyError::BadOption {
        policy: INFO.name.into(),
        option: option.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl InfllmPolicy {
    /// A policy with the repo's `repr_topk` (4, or the block size if smaller), the default
    /// execution chunk (`min(512, n_local / 4)`) and no block cap.
    pub fn new(
        n_local: usize,
        n_init: usize,
        block: usize,
        topk: usize,
    ) -> Result<InfllmPolicy, PolicyError> {
        InfllmPolicy {
            n_local,
            n_init,
            block,
            topk,
            repr_topk: 4.min(block),
            chunk: (n_local / 4).clamp(1, 512),
            max_blocks: 0,
            offload_bytes: Some(DEFAULT_OFFLOAD_MIB << 20),
            geom: None,
            layers: Vec::new(),
            blocks: None,
            failure: None,
            block_pos: Vec::new(),
            last_used: Vec::new(),
            tick: 0,
        }
        .validated()
    }

    /// Checks the settings; call again after changing public fields.
    pub fn validated(self) -> Result<InfllmPolicy, PolicyError> {
        for (name, v) in [
            ("n_local", self.n_local),
            ("block", self.block),
            ("topk", self.topk),
            ("repr_topk", self.repr_topk),
            ("chunk", self.chunk),
        ] {
            if v == 0 {
                return Err(bad(name, v, "must be a positive integer"));
            }
        }
        if self.repr_topk > self.block {
            return Err(bad(
                "repr_topk",
                self.repr_topk,
                format!("cannot exceed the block size {}", self.block),
            ));
        }
        if self.max_blocks != 0 && self.max_blocks < self.topk {
            return Err(bad(
                "max_blocks",
                self.max_blocks,
                format!("must be 0 (keep all) or at least topk = {}", self.topk),
            ));
        }
        Ok(self)
    }

    /// Builds from parsed `key=value` options (as `build_policy` does), for callers that need
    /// the concrete type.
    pub fn from_options(
        opts: &[(String, String)],
        facts: ModelFacts,
    ) -> Result<InfllmPolicy, PolicyError> {
        let opt = OptionReader::new(INFO.name, opts);
        let pos_opt = |name: &str| opt.positive(name);
        let budget = pos_opt("budget")?;
        let n_init = opt.count("n_init")?;
        let (n_local, n_init, block) = match budget {
            // Defaults from the repo: the Llama-3-8B config (8K trained context, as SmolLM2)
            // and MiniCPM (4K) both use a window of half the trained context.
            None => (
                pos_opt("n_local")?.unwrap_or(4096.min(facts.context_length / 2).max(1)),
                n_init.unwrap_or(128),
                pos_opt("block")?.unwrap_or(128),
            ),
            // With a budget: half of it is the window; init and block size shrink from the
            // repo's 128 (reached at budgets 2048 / 4096) so small budgets still retrieve ~14
            // blocks, close to the repo's 16 (finer blocks retrieved better on SmolLM2).
            Some(b) => (
                pos_opt("n_local")?.unwrap_or((b / 2).max(1)),
                n_init.unwrap_or((b / 16).min(128)),
                pos_opt("block")?.unwrap_or((b / 32).clamp(1, 128)),
            ),
        };
        let topk = match (pos_opt("topk")?, budget) {
            (Some(k), _) => k,
            (None, None) => 16,
            (None, Some(b)) => {
                if n_local > b {
                    return Err(bad(
                        "n_local",
                        n_local,
                        format!("the window is larger than the budget {b}"),
                    ));
                }
                let k = b.saturating_sub(n_init + n_local) / block;
                if k == 0 {
                    return Err(bad("budget", b, format!("leaves no room for one block of {block} next to n_init {n_init} + n_local {n_local}")));
                }
                k
            }
        };
        if let Some(b) = budget {
            let need = n_init + n_local + topk * block;
            if n_local > b {
                return Err(bad(
                    "n_local",
                    n_local,
                    format!("the window is larger than the budget {b}"),
                ));
            }
            if need > b {
                return Err(bad("budget", b, format!("n_init {n_init} + n_local {n_local} + topk {topk} × block {block} = {need} exceeds it")));
            }
        }
        if n_local >= facts.context_length {
            return Err(bad(
                "n_local",
                n_local,
                format!(
                    "must be below the model's trained context {}",
                    facts.context_length
                ),
            ));
        }
        let mut p = InfllmPolicy::new(n_local, n_init, block, topk)?;
        if let Some(v) = pos_opt("repr_topk")? {
            p.repr_topk = v;
        }
        // The repo's execution chunk is 512 against windows of 2048–4096 (1/4 to 1/8 of the
        // window); keep at least that ratio so averaged retrieval queries stay sharp.
        p.chunk = pos_opt("chunk")?.unwrap_or((n_local / 4).clamp(1, 512));
        if let Some(v) = opt.count("max_blocks")? {
            p.max_blocks = v;
        }
        p.offload_bytes = match opt.text("offload") {
            None => p.offload_bytes,
            Some("off") => None,
            Some(v) => match v.parse::<usize>() {
                Ok(mib) if mib <= 1 << 40 => Some(mib << 20),
                _ => {
                    return Err(bad(
                        "offload",
                        v,
                        "must be a size in MiB (0 = straight to disk) or off",
                    ))
                }
            },
        };
        p.validated()
    }

    /// Most slots the hot KV store ever holds: init + remainder (< block) + window + chunk.
    pub fn kv_bound_tokens(&self) -> usize {
        self.n_init + self.block + self.n_local + self.chunk_size()
    }

    /// Blocks currently stored.
    pub fn n_blocks(&self) -> usize {
        self.block_pos.len()
    }

    /// Bytes of RAM the policy holds outside the KV store: blocks not offloaded,
    /// representatives, scores and the gathered retrieval spans.
    pub fn memory_bytes(&self) -> usize {
        let f = std::mem::size_of::<f32>();
        let planes = self.blocks.as_ref().map_or(0, BlockMemory::ram_bytes);
        let layers: usize = self
            .layers
            .iter()
            .map(|m| {
                let cache = m.cache.as_ref().map_or(0, |(sel, e)| {
                    sel.len()
                        + e.k.iter().chain(&e.v).map(Vec::len).sum::<usize>()
                        + 2 * e.pos.len()
                });
                (m.repr.len() + m.score.len() + cache) * f
            })
            .sum();
        planes + layers + (self.block_pos.len() + self.last_used.len()) * 8
    }

    /// Bytes of block keys and values moved to the temporary file.
    pub fn offloaded_bytes(&self) -> usize {
        self.blocks.as_ref().map_or(0, BlockMemory::disk_bytes)
    }

    /// Upper bound of [`memory_bytes`](Self::memory_bytes) for `n_blocks` stored blocks.
    pub fn memory_bound_bytes(
        &self,
        n_blocks: usize,
        n_layers: usize,
        n_heads: usize,
        n_kv: usize,
        d: usize,
    ) -> usize {
        let per_block = self.block * n_kv * d * 2 + n_heads * d;
        let scores = self.kv_bound_tokens() * n_heads;
        let cache = self.topk * self.block * (n_kv * d * 2 + 3) + self.topk;
        (n_layers * (n_blocks * per_block + scores + cache)) * 4 + n_blocks * 16
    }

    /// The blocks one layer attends to: all while they fit in `topk`, otherwise the best by
    /// averaged fixed-angle query · representative, summed over heads (one choice for all heads).
    fn retrieve(&mut self, ctx: &PlanContext) -> Arc<ExternalKv> {
        let Some(g) = self.geom else {
            return Arc::default();
        };
        let nb = self.block_pos.len();
        let hd = g.n_heads * g.d;
        let mem = &mut self.layers[ctx.layer];
        let mut sel: Vec<u32> = (0..nb as u32).collect();
        if nb > self.topk {
            let mut q = vec![0.0f32; hd];
            let rows = ctx.q_pos.len().max(1);
            for row in ctx.q_pre.chunks_exact(hd) {
                q.iter_mut()
                    .zip(row)
                    .for_each(|(a, b)| *a += b / rows as f32);
            }
            // The memory is seen at distance n_local: rotate the query by that angle (linear,
            // so rotating the mean equals averaging rotated queries).
            let half = ctx.rope.n_rot / 2;
            let (mut cos, mut sin) = (vec![0.0; half], vec![0.0; half]);
            rope::cos_sin(&ctx.rope, self.n_local as f64, &mut cos, &mut sin);
            q.chunks_exact_mut(g.d)
                .for_each(|h| rope::apply(&ctx.rope, h, &cos, &sin));
            let scores: Vec<f32> = (0..nb)
                .map(|b| crate::attention::dot(&q, &mem.repr[b * hd..(b + 1) * hd]))
                .collect();
            let by_score = |a: &u32, b: &u32| {
                scores[*b as usize]
                    .total_cmp(&scores[*a as usize])
                    .then(a.cmp(b))
            };
            sel.select_nth_unstable_by(self.topk - 1, by_score);
            sel.truncate(self.topk);
            sel.sort_unstable();
        }
        for &b in &sel {
            self.last_used[b as usize] = self.tick;
        }
        if let Some((prev, ext)) = &mem.cache {
            if *prev == sel {
                return ext.clone();
            }
        }
        let (bs, d, block_pos) = (self.block, g.d, &self.block_pos);
        let plane = bs * d;
        let mut k = vec![Vec::with_capacity(sel.len() * plane); g.n_kv];
        let mut v = k.clone();
        let mut record = Vec::new();
        for &b in &sel {
            let read = match self.blocks.as_mut() {
                Some(blocks) => blocks.read(ctx.layer, b as usize, &mut record),
                None => Err(std::io::Error::other("no block memory")),
            };
            if let Err(e) = read {
                // Planning cannot fail; `after_chunk` reports it once this pass ends.
                self.failure.get_or_insert(e);
                return Arc::default();
            }
            for (h, piece) in record.chunks_exact(plane).enumerate() {
                let dst = if h < g.n_kv {
                    &mut k[h]
                } else {
                    &mut v[h - g.n_kv]
                };
                dst.extend_from_slice(piece);
            }
        }
        let ext = Arc::new(ExternalKv {
            k,
            v,
            pos: sel
                .iter()
                .flat_map(|&b| (0..bs as i64).map(move |i| block_pos[b as usize] + i))
                .collect(),
            pre_rope: true,
        });
        mem.cache = Some((sel, ext.clone()));
        ext
    }

    /// Moves store slots `start..start + count·block` into `count` new blocks of every active
    /// layer (one store compaction for all of them).
    fn form_blocks(&mut self, kv: &mut KvStore, start: usize, count: usize) -> std::io::Result<()> {
        let Some(g) = self.geom else { return Ok(()) };
        let (bs, d, nh) = (self.block, g.d, g.n_heads);
        let group = (g.n_heads / g.n_kv).max(1);
        let end = start + count * bs;
        let positions = &kv.positions()[start..end];
        let blocks = self
            .blocks
            .get_or_insert_with(|| BlockMemory::new(self.offload_bytes));
        for (l, mem) in self.layers.iter_mut().enumerate() {
            if !mem.active {
                continue;
            }
            let lkv = kv.layer(l);
            // The new blocks' pre-RoPE keys and values per KV head, `count·block × d`.
            let mut keys: Vec<Vec<f32>> = vec![Vec::with_capacity(count * bs * d); g.n_kv];
            for (h, k) in keys.iter_mut().enumerate() {
                if lkv.k_pre.len() == g.n_kv {
                    k.extend_from_slice(&lkv.k_pre[h][start * d..end * d]);
                } else if let Some(rope) = mem.rope {
                    // No pre-RoPE plane: un-rotate in f32 (engine-methods §3 pitfall).
                    let half = rope.n_rot / 2;
                    let (mut cos, mut sin) = (vec![0.0; half], vec![0.0; half]);
                    for (row, &p) in lkv.k[h][start * d..end * d].chunks_exact(d).zip(positions) {
                        let mut row = row.to_vec();
                        rope::cos_sin(&rope, -(p as f64), &mut cos, &mut sin);
                        rope::apply(&rope, &mut row, &cos, &sin);
                        k.extend_from_slice(&row);
                    }
                }
            }
            let plane = bs * d;
            for b in 0..count {
                let record: Vec<f32> = keys
                    .iter()
                    .map(Vec::as_slice)
                    .chain(lkv.v.iter().map(|v| &v[start * d..end * d]))
                    .flat_map(|p| &p[b * plane..(b + 1) * plane])
                    .copied()
                    .collect();
                blocks.push(l, record)?;
            }
            // Representative per block and query head: mean of its top-scored keys.
            let score =
                |i: usize, qh: usize| mem.score.get((start + i) * nh + qh).copied().unwrap_or(0.0);
            let mut order: Vec<usize> = Vec::with_capacity(bs);
            for b in 0..count {
                for qh in 0..nh {
                    let kvh = qh / group;
                    order.clear();
                    order.extend(b * bs..(b + 1) * bs);
                    order.sort_by(|&x, &y| score(y, qh).total_cmp(&score(x, qh)).then(x.cmp(&y)));
                    let mut rep = vec![0.0f32; d];
                    for &i in &order[..self.repr_topk] {
                        let key = &keys[kvh][i * d..(i + 1) * d];
                        rep.iter_mut()
                            .zip(key)
                            .for_each(|(r, k)| *r += k / self.repr_topk as f32);
                    }
                    mem.repr.extend_from_slice(&rep);
                }
            }
            let hi = (end * nh).min(mem.score.len());
            mem.score.drain((start * nh).min(hi)..hi);
        }
        self.block_pos.extend(positions.iter().step_by(bs));
        self.last_used.extend(std::iter::repeat_n(self.tick, count));
        kv.remove_range(start..end);
        Ok(())
    }

    /// Drops least recently retrieved blocks (oldest first on ties) beyond `max_blocks`.
    fn enforce_max_blocks(&mut self) {
        let Some(g) = self.geom else { return };
        while self.max_blocks > 0 && self.block_pos.len() > self.max_blocks {
            let victim = (0..self.last_used.len())
                .min_by_key(|&b| (self.last_used[b], b))
                .unwrap_or(0);
            let hd = g.n_heads * g.d;
            if let Some(blocks) = self.blocks.as_mut() {
                blocks.remove_block(victim);
            }
            for mem in self.layers.iter_mut().filter(|m| m.active) {
                mem.repr.drain(victim * hd..(victim + 1) * hd);
                mem.cache = None;
            }
            self.block_pos.remove(victim);
            self.last_used.remove(victim);
        }
    }
}

impl CachePolicy for InfllmPolicy {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn chunk_size(&self) -> usize {
        self.chunk.min(self.n_local)
    }

    /// Blocks are copied from the store's pre-RoPE plane, exactly and without re-rotation.
    fn needs_pre_rope(&self) -> bool {
        true
    }

    fn before_chunk(&mut self, _kv: &mut KvStore, _n_new: usize) -> Result<(), PolicyError> {
        // Nothing to evict: `after_chunk` already moved every finished block out of the store.
        Ok(())
    }

    fn plan(&mut self, ctx: &PlanContext, kv: &KvStore) -> AttnPlan {
        let len = kv.len();
        if self.layers.len() < kv.n_layers().max(ctx.layer + 1) {
            self.layers
                .resize_with(kv.n_layers().max(ctx.layer + 1), LayerMem::default);
        }
        if let Some(w) = ctx.native_window {
            // Native sliding-window layers keep their own window (engine-methods §13.2).
            self.layers[ctx.layer].active = false;
            return AttnPlan {
                spans: vec![Span::original(0..len, SpanMask::Window(w))],
                observe: Vec::new(),
            };
        }
        let geom = Geom {
            n_heads: ctx.n_heads,
            n_kv: kv.n_kv_heads().max(1),
            d: ctx.head_dim,
        };
        self.geom = Some(geom);
        let mem = &mut self.layers[ctx.layer];
        mem.active = true;
        mem.rope = Some(ctx.rope);
        let last_q = ctx.q_pos.last().copied().unwrap_or(0);
        let dist = self.n_local;
        let mut spans = vec![Span::original(0..len, SpanMask::Window(dist))];
        // Init and remainder tokens that some row already sees outside its window (store
        // positions ascend, so they are a prefix); the complement mask avoids double counting.
        let out = kv
            .positions()
            .partition_point(|&p| last_q - p >= dist as i64);
        if out > 0 {
            spans.push(Span {
                slots: Slots::Range(0..out),
                pos: KeyPos::FixedDistance(dist),
                mask: SpanMask::OutsideWindow(dist),
            });
        }
        if !self.block_pos.is_empty() {
            // Every block lies outside the window of every later query.
            let ext = self.retrieve(ctx);
            spans.push(Span {
                slots: Slots::External(ext),
                pos: KeyPos::FixedDistance(dist),
                mask: SpanMask::All,
            });
        }
        AttnPlan {
            spans,
            observe: vec![0],
        }
    }

    fn observe(&mut self, layer: usize, plan: &AttnPlan, obs: &LayerObs, kv: &KvStore) {
        let (Some(g), Some(mem), Some(cols)) =
            (self.geom, self.layers.get_mut(layer), obs.col_sums.first())
        else {
            return;
        };
        let len = kv.len();
        if !mem.active || plan.observe.first() != Some(&0) || cols.len() != g.n_heads * len {
            return;
        }
        // Scores accumulate over every chunk a token spends in the window: masked (out of
        // window) columns are zero, so adding the whole span is exactly that.
        mem.score.resize(len * g.n_heads, 0.0);
        for h in 0..g.n_heads {
            for (s, &c) in cols[h * len..(h + 1) * len].iter().enumerate() {
                mem.score[s * g.n_heads + h] += c;
            }
        }
    }

    fn after_chunk(&mut self, kv: &mut KvStore) -> Result<(), PolicyError> {
        self.tick += 1;
        let Some(&last) = kv.positions().last() else {
            return Ok(());
        };
        if self.geom.is_none() {
            return Ok(());
        }
        // Positions ≤ cutoff are outside the window of every later query.
        let cutoff = last + 1 - self.n_local as i64;
        let pos = kv.positions();
        let init_end = pos.partition_point(|&p| p < self.n_init as i64);
        let out_end = pos.partition_point(|&p| p <= cutoff);
        let count = out_end.saturating_sub(init_end) / self.block;
        let storage = |what: &str, source| PolicyError::Storage {
            policy: INFO.name.into(),
            what: what.into(),
            source,
        };
        if let Some(e) = self.failure.take() {
            return Err(storage("reading the block memory", e));
        }
        if count > 0 {
            self.form_blocks(kv, init_end, count)
                .map_err(|e| storage("storing evicted blocks", e))?;
        }
        self.enforce_max_blocks();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::build_policy;

    const FACTS: ModelFacts = ModelFacts {
        n_layers: 2,
        context_length: 8192,
    };

    fn err(opts: &str) -> String {
        build_policy("infllm", opts, FACTS)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn defaults_and_budget_derivation() {
        let p = InfllmPolicy::from_options(&[], FACTS).expect("defaults");
        assert_eq!(
            (p.n_local, p.n_init, p.block, p.topk, p.repr_topk, p.chunk),
            (4096, 128, 128, 16, 4, 512)
        );
        let opts = |s: &str| crate::policy::parse_options(&INFO, s).expect("parses");
        let p = InfllmPolicy::from_options(&opts("budget=512"), FACTS).expect("budget");
        assert_eq!(
            (p.n_local, p.n_init, p.block, p.topk, p.chunk),
            (256, 32, 16, 14, 64)
        );
        let p = InfllmPolicy::from_options(&opts("budget=2048"), FACTS).expect("budget");
        assert_eq!(
            (p.n_local, p.n_init, p.block, p.topk, p.chunk),
            (1024, 128, 64, 14, 256)
        );
        let p = InfllmPolicy::from_options(&opts("budget=1024,block=64,n_init=0"), FACTS)
            .expect("budget");
        assert_eq!((p.n_local, p.n_init, p.topk), (512, 0, 8));
        let p = InfllmPolicy::from_options(&opts("topk=4,block=32,n_local=100,chunk=200"), FACTS)
            .expect("explicit");
        assert_eq!(
            (p.n_local, p.topk, p.block, p.chunk_size()),
            (100, 4, 32, 100)
        );
    }

    #[test]
    fn cli_style_options_build() {
        assert!(build_policy("infllm", "topk=16,block=128", FACTS).is_ok());
        assert!(build_policy("infllm", "budget=512", FACTS).is_ok());
        let p = build_policy("infllm", "", FACTS).expect("defaults");
        assert!(p.needs_pre_rope() && p.chunk_size() == 512);
    }

    #[test]
    fn invalid_options_are_named_errors() {
        assert!(err("budget=0").contains("positive integer"));
        assert!(err("budget=-5").contains("positive integer"));
        assert!(err("block=0").contains("positive integer"));
        assert!(err("topk=0").contains("positive integer"));
        assert!(err("budget=512,n_local=600").contains("larger than the budget"));
        assert!(err("budget=512,topk=20").contains("exceeds it"));
        assert!(err("budget=250,block=128").contains("no room for one block"));
        assert!(err("n_local=8192").contains("trained context"));
        assert!(err("repr_topk=200").contains("block size"));
        assert!(err("max_blocks=3").contains("at least topk"));
        assert!(err("n_init=x").contains("non-negative"));
        assert!(err("offload=lots").contains("size in MiB"));
        assert!(err("offload=-1").contains("size in MiB"));
    }

    #[test]
    fn offload_limit_is_read_in_mib() {
        let opts = |s: &str| crate::policy::parse_options(&INFO, s).expect("parses");
        let limit = |s: &str| {
            InfllmPolicy::from_options(&opts(s), FACTS)
                .expect("valid")
                .offload_bytes
        };
        assert_eq!(limit(""), Some(256 << 20));
        assert_eq!(limit("offload=0"), Some(0));
        assert_eq!(limit("offload=1024"), Some(1 << 30));
        assert_eq!(limit("offload=off"), None);
    }

    #[test]
    fn blocks_leave_the_store_with_per_head_representatives() {
        use crate::rope::RopeParams;
        // 1 layer, 2 query heads sharing 1 KV head, d = 2; n_local 4, n_init 1, block 2.
        let mut p = InfllmPolicy::new(4, 1, 2, 1).expect("valid");
        p.repr_topk = 1;
        let mut kv = KvStore::new(1, 1, 2, true);
        let rope = RopeParams {
            base: 10000.0,
            freq_scale: 1.0,
            n_rot: 2,
            neox: false,
        };
        let n = 8;
        kv.begin_chunk(0..n as i64);
        let k: Vec<f32> = (0..n * 2).map(|x| x as f32).collect();
        kv.append(0, &k, &k, &k, n);
        kv.end_chunk();
        let q = vec![0.0f32; n * 4];
        let q_pos: Vec<i64> = (0..n as i64).collect();
        let ctx = PlanContext {
            layer: 0,
            native_window: None,
            q: &q,
            q_pre: &q,
            q_pos: &q_pos,
            n_heads: 2,
            head_dim: 2,
            rope,
        };
        let plan = p.plan(&ctx, &kv);
        assert_eq!(
            plan.spans.len(),
            2,
            "window + out-of-window prefix, no blocks yet"
        );
        // Head 0 favours slot 2, head 1 slot 1; column sums are head-major.
        let mut cols = vec![0.0f32; 2 * n];
        cols[2] = 1.0;
        cols[n + 1] = 1.0;
        p.observe(
            0,
            &plan,
            &LayerObs {
                col_sums: vec![cols],
            },
            &kv,
        );
        p.after_chunk(&mut kv).expect("ok");
        // Next query at 8 sees 5..7 locally: slots 1..5 (positions 1..4) form two blocks.
        assert_eq!(p.n_blocks(), 2);
        assert_eq!(kv.positions(), &[0, 5, 6, 7]);
        assert_eq!(p.block_pos, vec![1, 3]);
        // Block 0 holds positions 1, 2: head 0's representative is key 2, head 1's key 1.
        assert_eq!(&p.layers[0].repr[..4], &[4.0, 5.0, 2.0, 3.0]);
        assert_eq!(p.layers[0].score.len(), 4 * 2);
        assert!(kv.len() <= p.kv_bound_tokens());
    }
}
