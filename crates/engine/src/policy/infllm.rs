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
use crate::policy::{CachePolicy, PlanContext, PolicyError};
use crate::rope::{self, RopeParams};

mod options;

pub(crate) use options::INFO;

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

impl InfllmPolicy {
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
mod tests;
