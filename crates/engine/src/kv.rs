//! The KV store of one sequence: per layer and KV head, contiguous key and value rows,
//! plus the absolute position of every stored slot. Policies evict and gather through it.

use std::ops::Range;

/// Keys and values of one layer; `k[h]` holds `len × head_dim` floats for KV head `h`.
#[derive(Clone, Debug, Default)]
pub struct LayerKv {
    /// Keys rotated at their true positions.
    pub k: Vec<Vec<f32>>,
    /// Keys before RoPE, kept only when the policy repositions keys (empty otherwise).
    pub k_pre: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

/// KV cache of one sequence. Keys are stored after RoPE at their true positions
/// (`KeyPos::Original` spans read them directly).
#[derive(Clone, Debug)]
pub struct KvStore {
    n_kv_heads: usize,
    head_dim: usize,
    layers: Vec<LayerKv>,
    /// Absolute token position of each slot, shared by all layers (layer 0's when the
    /// layers hold different tokens).
    positions: Vec<i64>,
    /// Per-layer positions once a policy kept different tokens in different layers
    /// ([`retain_slots_per_layer`](Self::retain_slots_per_layer), CItruS); every layer still
    /// holds the same number of slots.
    layer_positions: Option<Vec<Vec<i64>>>,
    /// Slots appended to some layers but not yet committed (a chunk in flight).
    pending: usize,
    keep_pre_rope: bool,
}

impl KvStore {
    /// An empty store; `keep_pre_rope` also keeps un-rotated keys for policies that
    /// reposition keys (`KeyPos::FixedDistance` / `Virtual`).
    pub fn new(
        n_layers: usize,
        n_kv_heads: usize,
        head_dim: usize,
        keep_pre_rope: bool,
    ) -> KvStore {
        let layer = LayerKv {
            k: vec![Vec::new(); n_kv_heads],
            k_pre: vec![Vec::new(); if keep_pre_rope { n_kv_heads } else { 0 }],
            v: vec![Vec::new(); n_kv_heads],
        };
        KvStore {
            n_kv_heads,
            head_dim,
            layers: vec![layer; n_layers],
            positions: Vec::new(),
            layer_positions: None,
            pending: 0,
            keep_pre_rope,
        }
    }

    pub fn keeps_pre_rope(&self) -> bool {
        self.keep_pre_rope
    }

    /// Number of committed slots.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    pub fn n_kv_heads(&self) -> usize {
        self.n_kv_heads
    }

    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Absolute positions of all slots, including a chunk being appended.
    pub fn positions(&self) -> &[i64] {
        &self.positions
    }

    /// Absolute positions of layer `il`'s slots: the shared ones unless the layers were
    /// compacted separately.
    pub fn layer_positions(&self, il: usize) -> &[i64] {
        match &self.layer_positions {
            Some(per_layer) => &per_layer[il],
            None => &self.positions,
        }
    }

    /// Whether the layers hold different tokens (after a per-layer compaction).
    pub fn layers_differ(&self) -> bool {
        self.layer_positions.is_some()
    }

    pub fn layer(&self, il: usize) -> &LayerKv {
        &self.layers[il]
    }

    /// Starts a chunk of tokens at the given absolute positions; layers then append their rows.
    pub fn begin_chunk(&mut self, positions: impl IntoIterator<Item = i64>) {
        let before = self.positions.len();
        self.positions.extend(positions);
        self.pending = self.positions.len() - before;
        if let Some(per_layer) = &mut self.layer_positions {
            for lp in per_layer {
                lp.extend_from_slice(&self.positions[before..]);
            }
        }
    }

    /// Appends `n` tokens' keys and values (rows of `n_kv_heads * head_dim`) to layer `il`;
    /// `k_pre_rows` are the same keys before RoPE (stored only if the store keeps them).
    pub fn append(
        &mut self,
        il: usize,
        k_rows: &[f32],
        k_pre_rows: &[f32],
        v_rows: &[f32],
        n: usize,
    ) {
        let d = self.head_dim;
        let kvd = self.n_kv_heads * d;
        let keep_pre = self.keep_pre_rope;
        let layer = &mut self.layers[il];
        for t in 0..n {
            for h in 0..self.n_kv_heads {
                let src = t * kvd + h * d;
                layer.k[h].extend_from_slice(&k_rows[src..src + d]);
                layer.v[h].extend_from_slice(&v_rows[src..src + d]);
                if keep_pre {
                    layer.k_pre[h].extend_from_slice(&k_pre_rows[src..src + d]);
                }
            }
        }
    }

    /// Ends the chunk started by [`begin_chunk`](Self::begin_chunk).
    pub fn end_chunk(&mut self) {
        self.pending = 0;
    }

    /// Drops a chunk that failed half-way, so the store stays consistent.
    pub fn abort_chunk(&mut self) {
        let keep = self.positions.len() - self.pending;
        self.truncate(keep);
        self.pending = 0;
    }

    /// Keeps only the first `n` slots.
    pub fn truncate(&mut self, n: usize) {
        let d = self.head_dim;
        self.positions.truncate(n);
        if let Some(per_layer) = &mut self.layer_positions {
            per_layer.iter_mut().for_each(|lp| lp.truncate(n));
        }
        for layer in &mut self.layers {
            for buf in layer
                .k
                .iter_mut()
                .chain(&mut layer.k_pre)
                .chain(&mut layer.v)
            {
                buf.truncate(n * d);
            }
        }
    }

    /// Removes the slots in `range` (e.g. the middle of a sink + window cache), keeping order.
    pub fn remove_range(&mut self, range: Range<usize>) {
        let d = self.head_dim;
        self.positions.drain(range.clone());
        if let Some(per_layer) = &mut self.layer_positions {
            per_layer.iter_mut().for_each(|lp| {
                lp.drain(range.clone());
            });
        }
        for layer in &mut self.layers {
            for buf in layer
                .k
                .iter_mut()
                .chain(&mut layer.k_pre)
                .chain(&mut layer.v)
            {
                buf.drain(range.start * d..range.end * d);
            }
        }
    }

    /// Keeps only the slots listed (ascending), in order: eviction by index for policies
    /// whose retained set has gaps (SirLLM, CItruS).
    pub fn retain_slots(&mut self, keep: &[usize]) {
        let d = self.head_dim;
        debug_assert!(keep.windows(2).all(|w| w[0] < w[1]));
        for layer in &mut self.layers {
            layer
                .k
                .iter_mut()
                .chain(&mut layer.k_pre)
                .chain(&mut layer.v)
                .for_each(|buf| gather_rows(buf, keep, d));
        }
        gather_positions(&mut self.positions, keep);
        if let Some(per_layer) = &mut self.layer_positions {
            per_layer
                .iter_mut()
                .for_each(|lp| gather_positions(lp, keep));
        }
    }

    /// Keeps, in each layer `il`, only the slots `keep[il]` (ascending; every list of the same
    /// length): CItruS's per-layer selection. Afterwards each layer has its own positions
    /// ([`layer_positions`](Self::layer_positions)); [`positions`](Self::positions) is layer 0's.
    pub fn retain_slots_per_layer(&mut self, keep: &[Vec<usize>]) {
        let d = self.head_dim;
        debug_assert_eq!(keep.len(), self.layers.len());
        debug_assert!(keep.iter().all(|k| k.len() == keep[0].len()));
        let mut per_layer = self
            .layer_positions
            .take()
            .unwrap_or_else(|| vec![self.positions.clone(); self.layers.len()]);
        for ((layer, lp), keep) in self.layers.iter_mut().zip(&mut per_layer).zip(keep) {
            layer
                .k
                .iter_mut()
                .chain(&mut layer.k_pre)
                .chain(&mut layer.v)
                .for_each(|buf| gather_rows(buf, keep, d));
            gather_positions(lp, keep);
        }
        self.positions.clone_from(&per_layer[0]);
        self.layer_positions = Some(per_layer);
    }

    /// Bytes of key/value data held (what a policy's budget bounds).
    pub fn bytes(&self) -> usize {
        let planes = if self.keep_pre_rope { 3 } else { 2 };
        self.len()
            * self.layers.len()
            * self.n_kv_heads
            * self.head_dim
            * planes
            * std::mem::size_of::<f32>()
    }

    /// Releases spare capacity after large evictions.
    pub fn shrink_to_fit(&mut self) {
        for layer in &mut self.layers {
            layer
                .k
                .iter_mut()
                .chain(&mut layer.k_pre)
                .chain(&mut layer.v)
                .for_each(Vec::shrink_to_fit);
        }
        self.positions.shrink_to_fit();
    }
}

/// Moves rows `keep[i]` (ascending) of `d` floats to row `i` and drops the rest.
fn gather_rows(buf: &mut Vec<f32>, keep: &[usize], d: usize) {
    for (dst, &src) in keep.iter().enumerate() {
        if dst != src {
            buf.copy_within(src * d..(src + 1) * d, dst * d);
        }
    }
    buf.truncate(keep.len() * d);
}

fn gather_positions(pos: &mut Vec<i64>, keep: &[usize]) {
    for (dst, &src) in keep.iter().enumerate() {
        pos[dst] = pos[src];
    }
    pos.truncate(keep.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_truncate_and_remove_keep_layers_consistent() {
        let mut kv = KvStore::new(2, 2, 2, false);
        kv.begin_chunk(0..3);
        // 3 tokens × 2 heads × 2 dims
        let k: Vec<f32> = (0..12).map(|x| x as f32).collect();
        let v: Vec<f32> = (100..112).map(|x| x as f32).collect();
        kv.append(0, &k, &k, &v, 3);
        kv.append(1, &k, &k, &v, 3);
        kv.end_chunk();
        assert_eq!(kv.len(), 3);
        // head 1 of token 2 is k[2*4 + 2 .. +2]
        assert_eq!(&kv.layer(0).k[1][4..6], &[10.0, 11.0]);
        kv.remove_range(1..2);
        assert_eq!(kv.positions(), &[0, 2]);
        assert_eq!(kv.layer(1).k[0], vec![0.0, 1.0, 8.0, 9.0]);
        assert_eq!(kv.bytes(), 2 * 2 * 2 * 2 * 2 * 4);
        kv.begin_chunk(3..4);
        kv.append(0, &k[..4], &k[..4], &v[..4], 1);
        kv.abort_chunk();
        assert_eq!(kv.len(), 2);
        assert_eq!(kv.layer(0).k[0].len(), 4);
    }

    #[test]
    fn retain_slots_compacts_every_plane() {
        let mut kv = KvStore::new(1, 1, 1, true);
        kv.begin_chunk(10..15);
        let k = [0.0, 1.0, 2.0, 3.0, 4.0];
        let kp = [10.0, 11.0, 12.0, 13.0, 14.0];
        let v = [20.0, 21.0, 22.0, 23.0, 24.0];
        kv.append(0, &k, &kp, &v, 5);
        kv.end_chunk();
        kv.retain_slots(&[0, 2, 4]);
        assert_eq!(kv.positions(), &[10, 12, 14]);
        assert_eq!(kv.layer(0).k[0], vec![0.0, 2.0, 4.0]);
        assert_eq!(kv.layer(0).k_pre[0], vec![10.0, 12.0, 14.0]);
        assert_eq!(kv.layer(0).v[0], vec![20.0, 22.0, 24.0]);
        assert_eq!(kv.bytes(), 3 * 3 * 4);
    }

    #[test]
    fn per_layer_retain_keeps_each_layers_own_slots_and_positions() {
        let mut kv = KvStore::new(2, 1, 1, false);
        kv.begin_chunk(0..4);
        let k = [0.0, 1.0, 2.0, 3.0];
        kv.append(0, &k, &[], &k, 4);
        kv.append(1, &k, &[], &k, 4);
        kv.end_chunk();
        kv.retain_slots_per_layer(&[vec![0, 3], vec![1, 2]]);
        assert!(kv.layers_differ());
        assert_eq!(kv.layer_positions(0), &[0, 3]);
        assert_eq!(kv.layer_positions(1), &[1, 2]);
        assert_eq!(kv.layer(1).v[0], vec![1.0, 2.0]);
        assert_eq!(kv.len(), 2);
        // Appends reach every layer's positions; shared eviction applies to all.
        kv.begin_chunk(4..5);
        kv.append(0, &[4.0], &[], &[4.0], 1);
        kv.append(1, &[4.0], &[], &[4.0], 1);
        kv.end_chunk();
        assert_eq!(kv.layer_positions(1), &[1, 2, 4]);
        kv.remove_range(0..1);
        assert_eq!(kv.layer_positions(0), &[3, 4]);
        assert_eq!(kv.layer_positions(1), &[2, 4]);
        assert_eq!(kv.layer(0).k[0], vec![3.0, 4.0]);
    }
}
