//! Policy-agnostic attention: each layer gets a plan (a list of key spans with masks) and
//! computes one joint softmax over all of them, so a policy chooses *which* keys a query sees
//! without touching the kernel.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::kv::LayerKv;
use crate::model::RopeParams;
use crate::ops;

/// Which of a span's keys a query row may see, judged on true (absolute) positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanMask {
    /// Keys at positions ≤ the query's position.
    Causal,
    /// Causal and closer than `w`: `q_pos - k_pos < w` (Gemma's native sliding window,
    /// the local window of LM-Infinite / InfLLM).
    Window(usize),
    /// Keys at distance ≥ `w` (the complement of `Window(w)`: InfLLM's remainder, LM-Infinite's
    /// sinks once they left the window), so every key is seen through exactly one span.
    OutsideWindow(usize),
    /// Every key in the span (e.g. a shared prefix or retrieved memory).
    All,
}

/// Which KV slots a span covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slots {
    Range(Range<usize>),
    /// Sorted or not; keys are attended in this order.
    Indices(Arc<[u32]>),
}

impl Slots {
    pub fn len(&self) -> usize {
        match self {
            Slots::Range(r) => r.len(),
            Slots::Indices(i) => i.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, j: usize) -> usize {
        match self {
            Slots::Range(r) => r.start + j,
            Slots::Indices(i) => i[j] as usize,
        }
    }
}

/// How a span's keys are positioned relative to the queries (engine-methods §0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPos {
    /// True distances: keys rotated at their own positions, queries at theirs.
    Original,
    /// Every key sits at distance `D` from every query: pre-RoPE keys against queries rotated
    /// by `D` (LM-Infinite's starting tokens, InfLLM's memory).
    FixedDistance(usize),
    /// Keys rotated at these positions (one per key, in the queries' frame), e.g. slot
    /// positions for StreamingLLM sinks or a compacted SirLLM / CItruS cache.
    Virtual(Arc<[i64]>),
}

/// A set of KV slots attended with one position mode and one mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub slots: Slots,
    pub pos: KeyPos,
    pub mask: SpanMask,
}

impl Span {
    /// The common case: a contiguous run at true positions.
    pub fn original(slots: Range<usize>, mask: SpanMask) -> Span {
        Span {
            slots: Slots::Range(slots),
            pos: KeyPos::Original,
            mask,
        }
    }
}

/// What one layer attends to for the current chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttnPlan {
    pub spans: Vec<Span>,
    /// Report attention-probability column sums for these spans (indices into `spans`).
    pub observe: Vec<usize>,
}

/// Column sums of attention probabilities for the observed spans: `col_sums[i]` belongs to
/// `plan.observe[i]` and holds `n_heads × span_len` values (query head major), summed over the
/// chunk's query rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerObs {
    pub col_sums: Vec<Vec<f32>>,
}

/// Head geometry and scaling of one attention layer.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub scale: f32,
}

/// Errors from an attention plan the store cannot serve.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttnError {
    #[error("span {span} refers to slot {slot}, but the store holds {len}")]
    SlotOutOfRange {
        span: usize,
        slot: usize,
        len: usize,
    },
    #[error("span {span} has {got} virtual positions for {want} keys")]
    VirtualLength {
        span: usize,
        got: usize,
        want: usize,
    },
}

/// Everything attention reads for one layer and chunk.
pub struct AttnInput<'a> {
    pub shape: AttnShape,
    pub rope: RopeParams,
    /// Queries rotated at their true positions, `n × (n_heads·head_dim)`.
    pub q: &'a [f32],
    /// The same queries before RoPE (used by `FixedDistance` spans).
    pub q_pre: &'a [f32],
    pub q_pos: &'a [i64],
    pub kv: &'a LayerKv,
    /// True position of every KV slot.
    pub k_pos: &'a [i64],
}

/// Reusable buffers for materialised spans and rotated queries.
#[derive(Default)]
pub struct AttnScratch {
    spans: Vec<MaterialSpan>,
    fixed_q: Vec<(usize, Vec<f32>)>,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// Keys/values of one span gathered (and rotated) into contiguous per-KV-head buffers.
#[derive(Default)]
struct MaterialSpan {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    pos: Vec<i64>,
}

/// Query rows per task; bounds the score buffer to `QUERY_BLOCK × n_keys` floats.
const QUERY_BLOCK: usize = 64;

thread_local! {
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Raw output pointer shared by tasks that write disjoint (row block, head) regions.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes a distinct (query row, head) sub-slice; see `attend`.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// Going through a method makes closures capture the whole (Send) wrapper.
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// A span ready for the kernel: contiguous keys/values per KV head and the query to use.
struct ReadySpan<'a> {
    k: Vec<&'a [f32]>,
    v: Vec<&'a [f32]>,
    pos: &'a [i64],
    q: &'a [f32],
    mask: SpanMask,
    len: usize,
}

fn rotate_rows(
    rope: &RopeParams,
    rows: &mut [f32],
    head_dim: usize,
    pos: f64,
    cos: &mut Vec<f32>,
    sin: &mut Vec<f32>,
) {
    let half = rope.n_rot / 2;
    cos.resize(half, 0.0);
    sin.resize(half, 0.0);
    ops::rope_cos_sin(rope, pos, cos, sin);
    rows.chunks_exact_mut(head_dim)
        .for_each(|h| ops::rope_apply(rope, h, cos, sin));
}

/// Computes attention for the chunk's query rows into `out` (`n × (n_heads·head_dim)`), one
/// joint softmax over every span of `plan`; fills `obs` when the plan asks for observations.
pub fn attend(
    inp: &AttnInput,
    plan: &AttnPlan,
    scratch: &mut AttnScratch,
    out: &mut [f32],
    obs: &mut LayerObs,
) -> Result<(), AttnError> {
    let shape = inp.shape;
    let n = inp.q_pos.len();
    let d = shape.head_dim;
    let qd = shape.n_heads * d;
    let store_len = inp.k_pos.len();
    let has_pre = inp
        .kv
        .k_pre
        .first()
        .is_some_and(|k| k.len() == store_len * d);
    // Materialise every span that is not a plain stored range.
    if scratch.spans.len() < plan.spans.len() {
        scratch
            .spans
            .resize_with(plan.spans.len(), MaterialSpan::default);
    }
    for (si, span) in plan.spans.iter().enumerate() {
        let len = span.slots.len();
        if let Slots::Range(r) = &span.slots {
            if r.end > store_len {
                return Err(AttnError::SlotOutOfRange {
                    span: si,
                    slot: r.end - 1,
                    len: store_len,
                });
            }
        }
        if let Slots::Indices(ix) = &span.slots {
            if let Some(&bad) = ix.iter().find(|&&i| i as usize >= store_len) {
                return Err(AttnError::SlotOutOfRange {
                    span: si,
                    slot: bad as usize,
                    len: store_len,
                });
            }
        }
        let direct = matches!(
            (&span.slots, &span.pos),
            (Slots::Range(_), KeyPos::Original)
        );
        if direct {
            continue;
        }
        if let KeyPos::Virtual(v) = &span.pos {
            if v.len() != len {
                return Err(AttnError::VirtualLength {
                    span: si,
                    got: v.len(),
                    want: len,
                });
            }
        }
        let m = &mut scratch.spans[si];
        m.k.resize_with(shape.n_kv_heads, Vec::new);
        m.v.resize_with(shape.n_kv_heads, Vec::new);
        m.pos.clear();
        m.pos
            .extend((0..len).map(|j| inp.k_pos[span.slots.slot(j)]));
        // Pre-RoPE keys when the store keeps them; otherwise the stored (rotated) keys,
        // rotated on by the difference. Either way nothing is rotated in place, so no drift.
        let from_pre = has_pre && !matches!(span.pos, KeyPos::Original);
        for h in 0..shape.n_kv_heads {
            let (mk, mv) = (&mut m.k[h], &mut m.v[h]);
            mk.clear();
            mv.clear();
            let src_k = if from_pre {
                &inp.kv.k_pre[h]
            } else {
                &inp.kv.k[h]
            };
            for j in 0..len {
                let s = span.slots.slot(j);
                mk.extend_from_slice(&src_k[s * d..(s + 1) * d]);
                mv.extend_from_slice(&inp.kv.v[h][s * d..(s + 1) * d]);
            }
            let target = |j: usize| -> Option<f64> {
                let base = if from_pre { 0 } else { m.pos[j] };
                match &span.pos {
                    KeyPos::Original => None,
                    KeyPos::FixedDistance(_) => (base != 0).then(|| -(base as f64)),
                    KeyPos::Virtual(v) => Some((v[j] - base) as f64),
                }
            };
            for (j, row) in mk.chunks_exact_mut(d).enumerate() {
                if let Some(delta) = target(j) {
                    rotate_rows(&inp.rope, row, d, delta, &mut scratch.cos, &mut scratch.sin);
                }
            }
        }
    }
    // Queries rotated by each fixed distance in use.
    scratch.fixed_q.retain(|_| false);
    for span in &plan.spans {
        if let KeyPos::FixedDistance(dist) = span.pos {
            if scratch.fixed_q.iter().all(|(dd, _)| *dd != dist) {
                let mut q = inp.q_pre.to_vec();
                rotate_rows(
                    &inp.rope,
                    &mut q,
                    d,
                    dist as f64,
                    &mut scratch.cos,
                    &mut scratch.sin,
                );
                scratch.fixed_q.push((dist, q));
            }
        }
    }
    let ready: Vec<ReadySpan> = plan
        .spans
        .iter()
        .enumerate()
        .map(|(si, span)| {
            let len = span.slots.len();
            let q: &[f32] = match span.pos {
                KeyPos::FixedDistance(dist) => scratch
                    .fixed_q
                    .iter()
                    .find(|(dd, _)| *dd == dist)
                    .map_or(inp.q, |(_, q)| q),
                _ => inp.q,
            };
            match (&span.slots, &span.pos) {
                (Slots::Range(r), KeyPos::Original) => ReadySpan {
                    k: inp
                        .kv
                        .k
                        .iter()
                        .map(|k| &k[r.start * d..r.end * d])
                        .collect(),
                    v: inp
                        .kv
                        .v
                        .iter()
                        .map(|v| &v[r.start * d..r.end * d])
                        .collect(),
                    pos: &inp.k_pos[r.clone()],
                    q,
                    mask: span.mask,
                    len,
                },
                _ => {
                    let m = &scratch.spans[si];
                    ReadySpan {
                        k: m.k.iter().map(Vec::as_slice).collect(),
                        v: m.v.iter().map(Vec::as_slice).collect(),
                        pos: &m.pos,
                        q,
                        mask: span.mask,
                        len,
                    }
                }
            }
        })
        .collect();
    let n_keys: usize = ready.iter().map(|s| s.len).sum();
    let group = shape.n_heads / shape.n_kv_heads;
    let observing = !plan.observe.is_empty();
    // Observation sums over all rows of a head, so a head is then one task.
    let block = if observing { n.max(1) } else { QUERY_BLOCK };
    let blocks = n.div_ceil(block);
    let out_ptr = OutPtr(out.as_mut_ptr());
    let observed: Vec<(usize, Vec<Vec<f32>>)> = (0..shape.n_heads * blocks)
        .into_par_iter()
        .map(|task| {
            let head = task % shape.n_heads;
            let b = task / shape.n_heads;
            let rows = b * block..((b + 1) * block).min(n);
            let kvh = head / group;
            SCORES.with(|cell| {
                let mut scores = cell.borrow_mut();
                let need = rows.len() * n_keys;
                if scores.len() < need {
                    scores.resize(need, 0.0);
                }
                let scores = &mut scores[..need];
                head_block(
                    shape,
                    &ready,
                    inp.q_pos,
                    rows.clone(),
                    head,
                    kvh,
                    scores,
                    n_keys,
                    |row| {
                        // SAFETY: `out` outlives the parallel loop; each (row, head) pair is
                        // written by exactly one task and lies inside `out` (row < n, head < n_heads).
                        unsafe {
                            std::slice::from_raw_parts_mut(
                                out_ptr.get().add(row * qd + head * d),
                                d,
                            )
                        }
                    },
                );
                let mut sums = Vec::with_capacity(plan.observe.len());
                for &si in &plan.observe {
                    let col: usize = ready[..si.min(ready.len())].iter().map(|s| s.len).sum();
                    let len = ready.get(si).map_or(0, |s| s.len);
                    let mut acc = vec![0.0f32; len];
                    for r in 0..rows.len() {
                        let p = &scores[r * n_keys + col..r * n_keys + col + len];
                        acc.iter_mut().zip(p).for_each(|(a, b)| *a += b);
                    }
                    sums.push(acc);
                }
                (head, sums)
            })
        })
        .collect();
    obs.col_sums.clear();
    if observing {
        for (oi, &si) in plan.observe.iter().enumerate() {
            let len = ready.get(si).map_or(0, |s| s.len);
            let mut all = vec![0.0f32; shape.n_heads * len];
            for (head, sums) in &observed {
                all[head * len..(head + 1) * len].copy_from_slice(&sums[oi]);
            }
            obs.col_sums.push(all);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn head_block<'o>(
    shape: AttnShape,
    spans: &[ReadySpan],
    q_pos: &[i64],
    rows: Range<usize>,
    head: usize,
    kvh: usize,
    scores: &mut [f32],
    n_keys: usize,
    row_out: impl Fn(usize) -> &'o mut [f32],
) {
    let d = shape.head_dim;
    let qd = shape.n_heads * d;
    let n_rows = rows.len();
    // Scores for every span side by side: one joint softmax over all of them.
    let mut col = 0;
    for span in spans {
        let m = span.len;
        if m == 0 {
            continue;
        }
        let k = span.k[kvh];
        if n_rows == 1 {
            let qrow = &span.q[rows.start * qd + head * d..][..d];
            let srow = &mut scores[col..col + m];
            for (j, s) in srow.iter_mut().enumerate() {
                *s = dot(qrow, &k[j * d..(j + 1) * d]) * shape.scale;
            }
        } else {
            // SAFETY: all pointers/strides describe in-bounds row-major matrices:
            // dst n_rows×m inside `scores` (row stride n_keys), lhs n_rows×d inside the query
            // buffer (row stride qd), rhs = Kᵀ (d×m) read from `k` with column stride d.
            unsafe {
                gemm::gemm(
                    n_rows,
                    m,
                    d,
                    scores.as_mut_ptr().add(col),
                    1,
                    n_keys as isize,
                    false,
                    span.q.as_ptr().add(rows.start * qd + head * d),
                    1,
                    qd as isize,
                    k.as_ptr(),
                    d as isize,
                    1,
                    0.0,
                    shape.scale,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        // Mask by true positions.
        for (r, row) in rows.clone().enumerate() {
            let qp = q_pos[row];
            let srow = &mut scores[r * n_keys + col..r * n_keys + col + m];
            let visible = |p: i64| match span.mask {
                SpanMask::All => true,
                SpanMask::Causal => p <= qp,
                SpanMask::Window(w) => p <= qp && qp - p < w as i64,
                SpanMask::OutsideWindow(w) => qp - p >= w as i64,
            };
            if span.mask != SpanMask::All {
                for (s, &p) in srow.iter_mut().zip(span.pos) {
                    if !visible(p) {
                        *s = f32::NEG_INFINITY;
                    }
                }
            }
        }
        col += m;
    }
    for r in 0..n_rows {
        crate::ops::softmax_inplace(&mut scores[r * n_keys..(r + 1) * n_keys]);
    }
    // out = Σ_span P_span · V_span
    for row in rows.clone() {
        row_out(row).fill(0.0);
    }
    let mut col = 0;
    for span in spans {
        let m = span.len;
        if m == 0 {
            continue;
        }
        let v = span.v[kvh];
        for (r, row) in rows.clone().enumerate() {
            let o = row_out(row);
            let p = &scores[r * n_keys + col..r * n_keys + col + m];
            for (j, &pj) in p.iter().enumerate() {
                if pj != 0.0 {
                    axpy(pj, &v[j * d..(j + 1) * d], o);
                }
            }
        }
        col += m;
    }
}

/// Merges two partial attentions over disjoint key sets (each normalised within its set, with
/// its log-sum-exp) into the exact joint result; returns the joint log-sum-exp.
pub fn merge_partial(o_a: &mut [f32], lse_a: f32, o_b: &[f32], lse_b: f32) -> f32 {
    if lse_b == f32::NEG_INFINITY {
        return lse_a;
    }
    if lse_a == f32::NEG_INFINITY {
        o_a.copy_from_slice(o_b);
        return lse_b;
    }
    let m = lse_a.max(lse_b);
    let (ea, eb) = ((lse_a - m).exp(), (lse_b - m).exp());
    let wa = ea / (ea + eb);
    for (a, b) in o_a.iter_mut().zip(o_b) {
        *a = wa * *a + (1.0 - wa) * b;
    }
    m + (ea + eb).ln()
}

/// f32 dot product; vectorizes through independent lanes.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just checked.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

/// `y += alpha * x`.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just checked.
            return unsafe { axpy_avx2(alpha, x, y) };
        }
    }
    axpy_portable(alpha, x, y)
}

#[inline(always)]
fn axpy_portable(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn axpy_avx2(alpha: f32, x: &[f32], y: &mut [f32]) {
    axpy_portable(alpha, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: usize = 8;
    const N_KEYS: usize = 150;
    const ROPE: RopeParams = RopeParams {
        base: 10000.0,
        freq_scale: 1.0,
        n_rot: D,
        neox: false,
    };
    const SHAPE: AttnShape = AttnShape {
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: D,
        scale: 0.35,
    };

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn rotated(v: &[f32], pos: f64) -> Vec<f32> {
        let mut out = v.to_vec();
        let (mut c, mut s) = (vec![], vec![]);
        rotate_rows(&ROPE, &mut out, D, pos, &mut c, &mut s);
        out
    }

    struct Fixture {
        kv: LayerKv,
        k_pos: Vec<i64>,
        q_pre: Vec<f32>,
        q: Vec<f32>,
        q_pos: Vec<i64>,
    }

    /// A store with pre-RoPE keys, their rotations at positions 0..N_KEYS, and `n` queries at
    /// the last positions.
    fn fixture(n: usize, seed: u64) -> Fixture {
        let mut seed = seed;
        let k_pre: Vec<Vec<f32>> = (0..2)
            .map(|_| (0..N_KEYS * D).map(|_| lcg(&mut seed)).collect())
            .collect();
        let k = k_pre
            .iter()
            .map(|kh| {
                kh.chunks(D)
                    .enumerate()
                    .flat_map(|(j, r)| rotated(r, j as f64))
                    .collect()
            })
            .collect();
        let v = (0..2)
            .map(|_| (0..N_KEYS * D).map(|_| lcg(&mut seed)).collect())
            .collect();
        let q_pos: Vec<i64> = (N_KEYS as i64 - n as i64..N_KEYS as i64).collect();
        let q_pre: Vec<f32> = (0..n * 4 * D).map(|_| lcg(&mut seed)).collect();
        let q = q_pre
            .chunks(4 * D)
            .zip(&q_pos)
            .flat_map(|(row, &p)| rotated(row, p as f64))
            .collect();
        Fixture {
            kv: LayerKv { k, k_pre, v },
            k_pos: (0..N_KEYS as i64).collect(),
            q_pre,
            q,
            q_pos,
        }
    }

    /// Naive joint softmax over `(logit, value)` entries per (row, head); returns outputs and
    /// the probabilities (for column sums).
    fn reference(
        f: &Fixture,
        entries: impl Fn(usize, usize) -> Vec<(f64, Vec<f32>)>,
    ) -> (Vec<f32>, Vec<Vec<Vec<f64>>>) {
        let n = f.q_pos.len();
        let mut out = vec![0.0; n * 4 * D];
        let mut probs = vec![vec![Vec::new(); 4]; n];
        for r in 0..n {
            for h in 0..4 {
                let e = entries(r, h);
                let m = e.iter().map(|x| x.0).fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = e.iter().map(|x| (x.0 - m).exp()).sum();
                let p: Vec<f64> = e.iter().map(|x| (x.0 - m).exp() / z).collect();
                for i in 0..D {
                    out[r * 4 * D + h * D + i] = e
                        .iter()
                        .zip(&p)
                        .map(|(x, w)| w * x.1[i] as f64)
                        .sum::<f64>() as f32;
                }
                probs[r][h] = p;
            }
        }
        (out, probs)
    }

    fn dot64(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    fn run(f: &Fixture, plan: &AttnPlan) -> (Vec<f32>, LayerObs) {
        let input = AttnInput {
            shape: SHAPE,
            rope: ROPE,
            q: &f.q,
            q_pre: &f.q_pre,
            q_pos: &f.q_pos,
            kv: &f.kv,
            k_pos: &f.k_pos,
        };
        let mut out = vec![0.0; f.q.len()];
        let mut obs = LayerObs::default();
        attend(
            &input,
            plan,
            &mut AttnScratch::default(),
            &mut out,
            &mut obs,
        )
        .expect("valid plan");
        (out, obs)
    }

    fn assert_close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }

    /// Entries of an Original span: stored keys at true positions, filtered by `visible`.
    fn original(
        f: &Fixture,
        r: usize,
        h: usize,
        slots: impl Iterator<Item = usize>,
        visible: impl Fn(i64, i64) -> bool,
    ) -> Vec<(f64, Vec<f32>)> {
        let kvh = h / 2;
        let q = &f.q[r * 4 * D + h * D..][..D];
        slots
            .filter(|&j| visible(f.q_pos[r], f.k_pos[j]))
            .map(|j| {
                (
                    dot64(q, &f.kv.k[kvh][j * D..(j + 1) * D]) * SHAPE.scale as f64,
                    f.kv.v[kvh][j * D..(j + 1) * D].to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn split_causal_spans_and_windows_match_naive_reference() {
        for n in [1usize, 3, 70] {
            let f = fixture(n, 7);
            let plan = AttnPlan {
                spans: vec![
                    Span::original(0..40, SpanMask::Causal),
                    Span::original(40..N_KEYS, SpanMask::Causal),
                ],
                observe: vec![],
            };
            let (want, _) = reference(&f, |r, h| original(&f, r, h, 0..N_KEYS, |qp, kp| kp <= qp));
            assert_close(&run(&f, &plan).0, &want);

            let plan = AttnPlan {
                spans: vec![Span::original(0..N_KEYS, SpanMask::Window(16))],
                observe: vec![],
            };
            let (want, _) = reference(&f, |r, h| {
                original(&f, r, h, 0..N_KEYS, |qp, kp| kp <= qp && qp - kp < 16)
            });
            assert_close(&run(&f, &plan).0, &want);

            // Window plus its complement over the same keys sees every key exactly once.
            let plan = AttnPlan {
                spans: vec![
                    Span::original(0..N_KEYS, SpanMask::OutsideWindow(16)),
                    Span::original(0..N_KEYS, SpanMask::Window(16)),
                ],
                observe: vec![],
            };
            let (want, _) = reference(&f, |r, h| original(&f, r, h, 0..N_KEYS, |qp, kp| kp <= qp));
            assert_close(&run(&f, &plan).0, &want);
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn fixed_distance_and_virtual_positions_reposition_keys() {
        let n = 5;
        let f = fixture(n, 11);
        let (dist, sinks) = (40usize, 4usize);
        let virt: Arc<[i64]> = (0..sinks as i64).map(|i| 100 + i).collect();
        let idx: Arc<[u32]> = [0u32, 1, 2, 3].into();
        for (pos, key_at) in [
            (KeyPos::FixedDistance(dist), None),
            (KeyPos::Virtual(virt.clone()), Some(virt.clone())),
        ] {
            let plan = AttnPlan {
                spans: vec![
                    Span {
                        slots: Slots::Indices(idx.clone()),
                        pos: pos.clone(),
                        mask: SpanMask::All,
                    },
                    Span::original(sinks..N_KEYS, SpanMask::Window(32)),
                ],
                observe: vec![0, 1],
            };
            let (want, probs) = reference(&f, |r, h| {
                let kvh = h / 2;
                let mut e: Vec<(f64, Vec<f32>)> = (0..sinks)
                    .map(|j| {
                        let kpre = &f.kv.k_pre[kvh][j * D..(j + 1) * D];
                        let logit = match &key_at {
                            // ⟨R(q, D), k⟩: the query rotated by the distance, keys un-rotated.
                            None => dot64(
                                &rotated(&f.q_pre[r * 4 * D + h * D..][..D], dist as f64),
                                kpre,
                            ),
                            // ⟨R(q, p), R(k, v_j)⟩.
                            Some(v) => {
                                dot64(&f.q[r * 4 * D + h * D..][..D], &rotated(kpre, v[j] as f64))
                            }
                        };
                        (
                            logit * SHAPE.scale as f64,
                            f.kv.v[kvh][j * D..(j + 1) * D].to_vec(),
                        )
                    })
                    .collect();
                e.extend(original(&f, r, h, sinks..N_KEYS, |qp, kp| {
                    kp <= qp && qp - kp < 32
                }));
                e
            });
            let (got, obs) = run(&f, &plan);
            assert_close(&got, &want);
            // Column sums over the chunk's rows, per query head.
            assert_eq!(obs.col_sums.len(), 2);
            for h in 0..4 {
                for j in 0..sinks {
                    let w: f64 = (0..n).map(|r| probs[r][h][j]).sum();
                    assert!((obs.col_sums[0][h * sinks + j] as f64 - w).abs() < 1e-4);
                }
                // The window span's sums cover masked keys as zeros; total mass is n rows.
                let total: f32 = obs
                    .col_sums
                    .iter()
                    .map(|c| {
                        c[h * c.len() / 4..(h + 1) * c.len() / 4]
                            .iter()
                            .sum::<f32>()
                    })
                    .sum();
                assert!((total - n as f32).abs() < 1e-3);
            }
        }
    }

    #[test]
    fn plans_the_store_cannot_serve_are_errors() {
        let mut f = fixture(1, 3);
        let bad = AttnPlan {
            spans: vec![Span::original(0..N_KEYS + 1, SpanMask::All)],
            observe: vec![],
        };
        let input = AttnInput {
            shape: SHAPE,
            rope: ROPE,
            q: &f.q,
            q_pre: &f.q_pre,
            q_pos: &f.q_pos,
            kv: &f.kv,
            k_pos: &f.k_pos,
        };
        let mut out = vec![0.0; f.q.len()];
        let e = attend(
            &input,
            &bad,
            &mut AttnScratch::default(),
            &mut out,
            &mut LayerObs::default(),
        );
        assert_eq!(
            e,
            Err(AttnError::SlotOutOfRange {
                span: 0,
                slot: N_KEYS,
                len: N_KEYS
            })
        );
        let virt: Arc<[i64]> = vec![5i64; 3].into();
        let short = AttnPlan {
            spans: vec![Span {
                slots: Slots::Range(0..4),
                pos: KeyPos::Virtual(virt),
                mask: SpanMask::All,
            }],
            observe: vec![],
        };
        let e = attend(
            &input,
            &short,
            &mut AttnScratch::default(),
            &mut out,
            &mut LayerObs::default(),
        );
        assert_eq!(
            e,
            Err(AttnError::VirtualLength {
                span: 0,
                got: 3,
                want: 4
            })
        );
        let idx: Arc<[u32]> = [1u32, 999].into();
        let bad = AttnPlan {
            spans: vec![Span {
                slots: Slots::Indices(idx),
                pos: KeyPos::Original,
                mask: SpanMask::All,
            }],
            observe: vec![],
        };
        let e = attend(
            &input,
            &bad,
            &mut AttnScratch::default(),
            &mut out,
            &mut LayerObs::default(),
        );
        assert_eq!(
            e,
            Err(AttnError::SlotOutOfRange {
                span: 0,
                slot: 999,
                len: N_KEYS
            })
        );
        f.kv.k_pre.clear();
    }

    #[test]
    fn repositioning_from_rotated_keys_equals_pre_rope_store() {
        let f = fixture(3, 5);
        let mut no_pre = fixture(3, 5);
        no_pre.kv.k_pre.clear();
        let virt: Arc<[i64]> = (0..10).map(|i| 130 + i).collect();
        for pos in [KeyPos::FixedDistance(64), KeyPos::Virtual(virt)] {
            let plan = AttnPlan {
                spans: vec![
                    Span {
                        slots: Slots::Range(0..10),
                        pos,
                        mask: SpanMask::All,
                    },
                    Span::original(10..N_KEYS, SpanMask::Causal),
                ],
                observe: vec![],
            };
            assert_close(&run(&no_pre, &plan).0, &run(&f, &plan).0);
        }
    }

    #[test]
    fn merge_partial_equals_joint_softmax() {
        // Keys with scores [1, 2] and [3]; values 1-D.
        let (s, v) = ([1.0f32, 2.0, 3.0], [10.0f32, 20.0, 30.0]);
        let z_all: f32 = s.iter().map(|x| x.exp()).sum();
        let want: f32 = s.iter().zip(&v).map(|(x, y)| x.exp() * y).sum::<f32>() / z_all;
        let za = s[0].exp() + s[1].exp();
        let mut oa = [(s[0].exp() * v[0] + s[1].exp() * v[1]) / za];
        let lse = merge_partial(&mut oa, za.ln(), &[v[2]], s[2]);
        assert!((oa[0] - want).abs() < 1e-4);
        assert!((lse - z_all.ln()).abs() < 1e-5);
    }
}
