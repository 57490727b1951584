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
    /// One index list per KV head, all of the same length: per-head selections (Quest /
    /// LServe page lists) inside one span. Key `j` of KV head `h` is slot `lists[h][j]`.
    PerKvHead(Arc<[Vec<u32>]>),
    /// Keys and values that live outside the store (a policy's own memory, e.g. InfLLM's
    /// blocks), so the hot store stays bounded while old context is still attended.
    External(Arc<ExternalKv>),
}

impl Slots {
    pub fn len(&self) -> usize {
        match self {
            Slots::Range(r) => r.len(),
            Slots::Indices(i) => i.len(),
            Slots::PerKvHead(l) => l.first().map_or(0, Vec::len),
            Slots::External(e) => e.pos.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Store slot of key `j` for KV head `h` (`None` for external keys).
    fn slot(&self, h: usize, j: usize) -> Option<usize> {
        match self {
            Slots::Range(r) => Some(r.start + j),
            Slots::Indices(i) => Some(i[j] as usize),
            Slots::PerKvHead(l) => Some(l[h][j] as usize),
            Slots::External(_) => None,
        }
    }
}

/// Keys and values held by a policy outside the KV store, attended through
/// [`Slots::External`]. Per KV head, `k[h]` and `v[h]` hold `pos.len() × head_dim` floats.
#[derive(Clone, Debug, Default)]
pub struct ExternalKv {
    /// Un-rotated keys when `pre_rope`, otherwise keys rotated at their `pos`.
    pub k: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
    /// True position of each key (for masks and `Original` / `Virtual` rotation).
    pub pos: Vec<i64>,
    pub pre_rope: bool,
}

impl ExternalKv {
    /// Rows the attention kernel can read without rotating them for `pos`.
    fn direct_for(&self, pos: &KeyPos) -> bool {
        matches!(
            (pos, self.pre_rope),
            (KeyPos::FixedDistance(_), true) | (KeyPos::Original, false)
        )
    }
}

// Bitwise equality, so plans stay comparable in tests (NaN payloads compare by bits).
impl PartialEq for ExternalKv {
    fn eq(&self, other: &Self) -> bool {
        let bits = |a: &Vec<Vec<f32>>, b: &Vec<Vec<f32>>| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
                })
        };
        self.pre_rope == other.pre_rope
            && self.pos == other.pos
            && bits(&self.k, &other.k)
            && bits(&self.v, &other.v)
    }
}

impl Eq for ExternalKv {}

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
    #[error("span {span}: {what}")]
    BadShape { span: usize, what: String },
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
    /// Positions per KV head (one list unless the span selects per head).
    pos: Vec<Vec<i64>>,
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
    /// True key positions per KV head.
    pos: Vec<&'a [i64]>,
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

/// Checks that a span's slots exist and that per-head / external shapes agree.
fn validate_slots(
    span: usize,
    slots: &Slots,
    store_len: usize,
    n_kv_heads: usize,
    d: usize,
) -> Result<(), AttnError> {
    let out_of_range = |slot: usize| AttnError::SlotOutOfRange {
        span,
        slot,
        len: store_len,
    };
    let bad = |what: String| Err(AttnError::BadShape { span, what });
    match slots {
        Slots::Range(r) if r.end > store_len => return Err(out_of_range(r.end - 1)),
        Slots::Range(_) => {}
        Slots::Indices(ix) => {
            if let Some(&i) = ix.iter().find(|&&i| i as usize >= store_len) {
                return Err(out_of_range(i as usize));
            }
        }
        Slots::PerKvHead(lists) => {
            if lists.len() != n_kv_heads {
                return bad(format!(
                    "{} per-head index lists for {n_kv_heads} KV heads",
                    lists.len()
                ));
            }
            if lists.iter().any(|l| l.len() != lists[0].len()) {
                return bad("per-head index lists differ in length".into());
            }
            if let Some(&i) = lists.iter().flatten().find(|&&i| i as usize >= store_len) {
                return Err(out_of_range(i as usize));
            }
        }
        Slots::External(e) => {
            let rows = e.pos.len() * d;
            if e.k.len() != n_kv_heads
                || e.v.len() != n_kv_heads
                || e.k.iter().chain(&e.v).any(|x| x.len() != rows)
            {
                return bad(format!(
                    "external keys/values must be {n_kv_heads} heads × {} positions × {d}",
                    e.pos.len()
                ));
            }
        }
    }
    Ok(())
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
        validate_slots(si, &span.slots, store_len, shape.n_kv_heads, d)?;
        if let KeyPos::Virtual(v) = &span.pos {
            if v.len() != len {
                return Err(AttnError::VirtualLength {
                    span: si,
                    got: v.len(),
                    want: len,
                });
            }
        }
        let direct = match &span.slots {
            Slots::Range(_) => span.pos == KeyPos::Original,
            Slots::External(e) => e.direct_for(&span.pos),
            _ => false,
        };
        if direct {
            continue;
        }
        let m = &mut scratch.spans[si];
        m.k.resize_with(shape.n_kv_heads, Vec::new);
        m.v.resize_with(shape.n_kv_heads, Vec::new);
        let per_head = matches!(span.slots, Slots::PerKvHead(_));
        m.pos
            .resize_with(if per_head { shape.n_kv_heads } else { 1 }, Vec::new);
        for (h, pos) in m.pos.iter_mut().enumerate() {
            pos.clear();
            match &span.slots {
                Slots::External(e) => pos.extend_from_slice(&e.pos),
                slots => pos.extend(
                    (0..len)
                        .filter_map(|j| slots.slot(h, j))
                        .map(|s| inp.k_pos[s]),
                ),
            }
        }
        // Pre-RoPE keys when the store keeps them; otherwise the stored (rotated) keys,
        // rotated on by the difference. Either way nothing is rotated in place, so no drift.
        let from_pre = match &span.slots {
            Slots::External(e) => e.pre_rope,
            _ => has_pre && !matches!(span.pos, KeyPos::Original),
        };
        for h in 0..shape.n_kv_heads {
            let (mk, mv) = (&mut m.k[h], &mut m.v[h]);
            mk.clear();
            mv.clear();
            if let Slots::External(e) = &span.slots {
                mk.extend_from_slice(&e.k[h]);
                mv.extend_from_slice(&e.v[h]);
            } else {
                let src_k = if from_pre {
                    &inp.kv.k_pre[h]
                } else {
                    &inp.kv.k[h]
                };
                for s in (0..len).filter_map(|j| span.slots.slot(h, j)) {
                    mk.extend_from_slice(&src_k[s * d..(s + 1) * d]);
                    mv.extend_from_slice(&inp.kv.v[h][s * d..(s + 1) * d]);
                }
            }
            let pos = &m.pos[if per_head { h } else { 0 }];
            let target = |j: usize| -> Option<f64> {
                let base = if from_pre { 0 } else { pos[j] };
                match &span.pos {
                    KeyPos::Original => (base != pos[j]).then(|| (pos[j] - base) as f64),
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
    scratch.fixed_q.clear();
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
            let n_kv = shape.n_kv_heads;
            match &span.slots {
                Slots::Range(r) if span.pos == KeyPos::Original => ReadySpan {
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
                    pos: vec![&inp.k_pos[r.clone()]; n_kv],
                    q,
                    mask: span.mask,
                    len,
                },
                Slots::External(e) if e.direct_for(&span.pos) => ReadySpan {
                    k: e.k.iter().map(Vec::as_slice).collect(),
                    v: e.v.iter().map(Vec::as_slice).collect(),
                    pos: vec![&e.pos[..]; n_kv],
                    q,
                    mask: span.mask,
                    len,
                },
                _ => {
                    let m = &scratch.spans[si];
                    let pos = (0..n_kv)
                        .map(|h| m.pos[h.min(m.pos.len() - 1)].as_slice())
                        .collect();
                    ReadySpan {
                        k: m.k.iter().map(Vec::as_slice).collect(),
                        v: m.v.iter().map(Vec::as_slice).collect(),
                        pos,
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
            key_scores(qrow, k, d, shape.scale, &mut scores[col..col + m]);
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
                for (s, &p) in srow.iter_mut().zip(span.pos[kvh]) {
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
            weighted_sum(&scores[r * n_keys + col..r * n_keys + col + m], v, d, o);
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

/// `out[j] = scale · ⟨q, k_j⟩` for consecutive keys of length `d`. The SIMD level is chosen
/// once per call, not once per key, so the inner loops inline and vectorize.
pub fn key_scores(q: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just checked.
            return unsafe { key_scores_avx2(q, keys, d, scale, out) };
        }
    }
    key_scores_portable(q, keys, d, scale, out)
}

#[inline(always)]
fn key_scores_portable(q: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32]) {
    for (s, k) in out.iter_mut().zip(keys.chunks_exact(d)) {
        *s = dot_portable(q, k) * scale;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn key_scores_avx2(q: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32]) {
    key_scores_portable(q, keys, d, scale, out)
}

/// `o += Σ_j p_j · v_j` over consecutive value rows of length `d` (zero weights skipped).
pub fn weighted_sum(p: &[f32], values: &[f32], d: usize, o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just checked.
            return unsafe { weighted_sum_avx2(p, values, d, o) };
        }
    }
    weighted_sum_portable(p, values, d, o)
}

#[inline(always)]
fn weighted_sum_portable(p: &[f32], values: &[f32], d: usize, o: &mut [f32]) {
    for (&pj, v) in p.iter().zip(values.chunks_exact(d)) {
        if pj != 0.0 {
            axpy_portable(pj, v, o);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weighted_sum_avx2(p: &[f32], values: &[f32], d: usize, o: &mut [f32]) {
    weighted_sum_portable(p, values, d, o)
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
#[inline(always)]
fn axpy_portable(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests;
