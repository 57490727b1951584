//! Policy-agnostic attention: each layer gets a plan (a list of key spans with masks) and
//! computes one joint softmax over all of them, so a policy chooses *which* keys a query sees
//! without touching the kernel.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::kv::LayerKv;
use crate::rope::{self, RopeParams};
use simd::Simd;

mod rope_table;
mod simd;
mod tiled;

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
    #[error("attention input: {0}")]
    BadInput(String),
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
    /// Rotation rows reused across heads, layers and decode steps.
    rope_table: rope_table::RopeTable,
}

/// Keys/values of one span gathered (and rotated) into contiguous per-KV-head buffers.
#[derive(Default)]
struct MaterialSpan {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// Positions per KV head (one list unless the span selects per head).
    pos: Vec<Vec<i64>>,
}

thread_local! {
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Raw output pointer shared by tasks that write disjoint (row block, head) regions.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: every task writes a distinct (query row, head) sub-slice; see `attend`.
unsafe impl Send for OutPtr {}
// SAFETY: shared only to hand each task its own disjoint region, as for `Send`.
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
    /// Index of `q` among the query sources (the tiled kernel packs each source once).
    q_src: usize,
    mask: SpanMask,
    len: usize,
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

/// Checks the head geometry and buffer sizes the kernels index by (raw output pointers
/// included), so a malformed call is an error rather than a panic or a stray write.
fn validate_input(inp: &AttnInput, out_len: usize, needs_pre: bool) -> Result<(), AttnError> {
    let s = inp.shape;
    let bad = |what: String| Err(AttnError::BadInput(what));
    if s.n_kv_heads == 0 || s.head_dim == 0 || !s.n_heads.is_multiple_of(s.n_kv_heads) {
        return bad(format!(
            "{} query heads, {} KV heads, head_dim {}",
            s.n_heads, s.n_kv_heads, s.head_dim
        ));
    }
    let rows = inp.q_pos.len() * s.n_heads * s.head_dim;
    if inp.q.len() < rows || (needs_pre && inp.q_pre.len() < rows) || out_len < rows {
        return bad(format!(
            "{} query rows need {rows} floats (q {}, q_pre {}, out {})",
            inp.q_pos.len(),
            inp.q.len(),
            inp.q_pre.len(),
            out_len
        ));
    }
    let plane = inp.k_pos.len() * s.head_dim;
    let kv = inp.kv;
    if kv.k.len() != s.n_kv_heads
        || kv.v.len() != s.n_kv_heads
        || kv.k.iter().chain(&kv.v).any(|x| x.len() < plane)
    {
        return bad(format!(
            "the store must hold {} KV heads × {} slots × {}",
            s.n_kv_heads,
            inp.k_pos.len(),
            s.head_dim
        ));
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
    attend_with(inp, plan, scratch, out, obs, Kernel::Auto)
}

fn attend_with(
    inp: &AttnInput,
    plan: &AttnPlan,
    scratch: &mut AttnScratch,
    out: &mut [f32],
    obs: &mut LayerObs,
    kernel: Kernel,
) -> Result<(), AttnError> {
    let shape = inp.shape;
    let n = inp.q_pos.len();
    let d = shape.head_dim;
    let store_len = inp.k_pos.len();
    let has_pre = inp
        .kv
        .k_pre
        .first()
        .is_some_and(|k| k.len() == store_len * d);
    let fixed = plan
        .spans
        .iter()
        .any(|s| matches!(s.pos, KeyPos::FixedDistance(_)));
    validate_input(inp, out.len(), fixed)?;
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
            let target = |j: usize| -> Option<i64> {
                let base = if from_pre { 0 } else { pos[j] };
                match &span.pos {
                    KeyPos::Original => (base != pos[j]).then(|| pos[j] - base),
                    KeyPos::FixedDistance(_) => (base != 0).then(|| -base),
                    KeyPos::Virtual(v) => Some(v[j] - base),
                }
            };
            for (j, row) in mk.chunks_exact_mut(d).enumerate() {
                if let Some(delta) = target(j) {
                    let (cos, sin) = scratch.rope_table.get(&inp.rope, delta);
                    rope::apply(&inp.rope, row, cos, sin);
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
                let (cos, sin) = scratch.rope_table.get(&inp.rope, dist as i64);
                q.chunks_exact_mut(d)
                    .for_each(|h| rope::apply(&inp.rope, h, cos, sin));
                scratch.fixed_q.push((dist, q));
            }
        }
    }
    // Query sources: 0 = the rotated queries, 1 + i = `fixed_q[i]`.
    let sources: Vec<&[f32]> = std::iter::once(inp.q)
        .chain(scratch.fixed_q.iter().map(|(_, q)| q.as_slice()))
        .collect();
    let ready: Vec<ReadySpan> = plan
        .spans
        .iter()
        .enumerate()
        .map(|(si, span)| {
            let len = span.slots.len();
            let q_src = match span.pos {
                KeyPos::FixedDistance(dist) => scratch
                    .fixed_q
                    .iter()
                    .position(|(dd, _)| *dd == dist)
                    .map_or(0, |i| i + 1),
                _ => 0,
            };
            let q = sources[q_src];
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
                    q_src,
                    mask: span.mask,
                    len,
                },
                Slots::External(e) if e.direct_for(&span.pos) => ReadySpan {
                    k: e.k.iter().map(Vec::as_slice).collect(),
                    v: e.v.iter().map(Vec::as_slice).collect(),
                    pos: vec![&e.pos[..]; n_kv],
                    q,
                    q_src,
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
                        q_src,
                        mask: span.mask,
                        len,
                    }
                }
            }
        })
        .collect();
    let simd = Simd::detect();
    let out_ptr = OutPtr(out.as_mut_ptr());
    let tiled = match kernel {
        Kernel::Auto => n > 1,
        Kernel::Rows | Kernel::RowsGrouped => false,
        Kernel::Tiled => true,
    };
    // One task per query row and KV head (its query heads together, each key and value read
    // once for all of them) while that leaves every thread work; one per query head otherwise.
    let grouped = match kernel {
        Kernel::Rows => false,
        Kernel::RowsGrouped => true,
        _ => 2 * n * shape.n_kv_heads >= rayon::current_num_threads(),
    };
    obs.col_sums = if tiled {
        let job = tiled::TileJob {
            shape,
            spans: &ready,
            sources: &sources,
            q_pos: inp.q_pos,
            observe: &plan.observe,
            simd,
        };
        tiled::run(&job, out_ptr)
    } else {
        attend_rows(
            shape,
            &ready,
            inp.q_pos,
            &plan.observe,
            grouped,
            simd,
            out_ptr,
        )
    };
    Ok(())
}

/// Which kernel `attend` uses; tests force each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
enum Kernel {
    /// Tiled for several query rows, row by row for one (decode).
    Auto,
    /// Row by row, one task per query head.
    Rows,
    /// Row by row, one task per KV head and its query heads.
    RowsGrouped,
    Tiled,
}

/// Row-by-row attention, the decode kernel (there is no second query row to share key loads
/// with). One task per (query row, KV head) serving all the query heads of that KV head when
/// `grouped`, else one per (query row, query head).
fn attend_rows(
    shape: AttnShape,
    ready: &[ReadySpan],
    q_pos: &[i64],
    observe: &[usize],
    grouped: bool,
    simd: Simd,
    out_ptr: OutPtr,
) -> Vec<Vec<f32>> {
    let n = q_pos.len();
    let n_keys: usize = ready.iter().map(|s| s.len).sum();
    let group = (shape.n_heads / shape.n_kv_heads.max(1)).max(1);
    let heads_per_task = if grouped { group } else { 1 };
    let tasks_per_row = shape.n_heads / heads_per_task;
    let observed: Vec<(usize, Vec<Vec<f32>>)> = (0..tasks_per_row * n)
        .into_par_iter()
        .flat_map_iter(|task| {
            let row = task / tasks_per_row;
            let head0 = (task % tasks_per_row) * heads_per_task;
            SCORES.with(|cell| {
                let mut scores = cell.borrow_mut();
                if scores.len() < heads_per_task * n_keys {
                    scores.resize(heads_per_task * n_keys, 0.0);
                }
                let scores = &mut scores[..heads_per_task * n_keys];
                let heads = Heads {
                    row,
                    first: head0,
                    count: heads_per_task,
                    kvh: head0 / group,
                };
                attend_heads(shape, ready, q_pos[row], heads, simd, scores, out_ptr);
                (0..heads_per_task)
                    .map(|h| {
                        let probs = &scores[h * n_keys..(h + 1) * n_keys];
                        let sums = observe
                            .iter()
                            .map(|&si| {
                                let col: usize =
                                    ready[..si.min(ready.len())].iter().map(|s| s.len).sum();
                                let len = ready.get(si).map_or(0, |s| s.len);
                                probs[col..col + len].to_vec()
                            })
                            .collect();
                        (head0 + h, sums)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    observe
        .iter()
        .enumerate()
        .map(|(oi, &si)| {
            let len = ready.get(si).map_or(0, |s| s.len);
            let mut all = vec![0.0f32; shape.n_heads * len];
            for (head, sums) in &observed {
                let dst = &mut all[head * len..(head + 1) * len];
                dst.iter_mut().zip(&sums[oi]).for_each(|(a, b)| *a += b);
            }
            all
        })
        .collect()
}

/// The query heads one row task serves: `count` heads from `first`, all reading KV head `kvh`.
#[derive(Clone, Copy)]
struct Heads {
    row: usize,
    first: usize,
    count: usize,
    kvh: usize,
}

/// Keys per tile in [`attend_heads`]: each tile is read from memory once and then from L1 for
/// the other heads (16 KiB of keys at head_dim 64).
fn key_tile(d: usize) -> usize {
    (4096 / d.max(1)).max(16)
}

/// One query row, `heads.count` query heads sharing a KV head: scores for every span side by
/// side per head, one joint softmax per head, then `o = Σ_span P_span · V_span`. Keys and values
/// are walked in tiles so each is loaded once for all the heads. Leaves each head's
/// probabilities in its `scores` row (`scores.len() / heads.count` columns).
fn attend_heads(
    shape: AttnShape,
    spans: &[ReadySpan],
    qp: i64,
    heads: Heads,
    simd: Simd,
    scores: &mut [f32],
    out_ptr: OutPtr,
) {
    let d = shape.head_dim;
    let qd = shape.n_heads * d;
    let n_keys = scores.len() / heads.count.max(1);
    let tile = key_tile(d);
    let mut col = 0;
    for span in spans {
        let m = span.len;
        if m == 0 {
            continue;
        }
        let keys = span.k[heads.kvh];
        for t0 in (0..m).step_by(tile) {
            let t1 = (t0 + tile).min(m);
            for h in 0..heads.count {
                let qrow = &span.q[heads.row * qd + (heads.first + h) * d..][..d];
                let srow = &mut scores[h * n_keys + col..][t0..t1];
                key_scores(qrow, &keys[t0 * d..t1 * d], d, shape.scale, srow);
            }
        }
        // Mask by true positions (shared by the heads of one KV head).
        let visible = |p: i64| match span.mask {
            SpanMask::All => true,
            SpanMask::Causal => p <= qp,
            SpanMask::Window(w) => p <= qp && qp - p < w as i64,
            SpanMask::OutsideWindow(w) => qp - p >= w as i64,
        };
        if span.mask != SpanMask::All {
            for (j, &p) in span.pos[heads.kvh].iter().enumerate() {
                if !visible(p) {
                    for h in 0..heads.count {
                        scores[h * n_keys + col + j] = f32::NEG_INFINITY;
                    }
                }
            }
        }
        col += m;
    }
    let mut outs: Vec<&mut [f32]> = (0..heads.count)
        .map(|h| {
            // SAFETY: `out` outlives the parallel loop; each (row, head) pair is written by
            // exactly one task and lies inside `out` (row < n, head < n_heads).
            unsafe {
                std::slice::from_raw_parts_mut(
                    out_ptr.get().add(heads.row * qd + (heads.first + h) * d),
                    d,
                )
            }
        })
        .collect();
    for (h, o) in outs.iter_mut().enumerate() {
        simd.softmax(&mut scores[h * n_keys..(h + 1) * n_keys]);
        o.fill(0.0);
    }
    let mut col = 0;
    for span in spans {
        let m = span.len;
        if m == 0 {
            continue;
        }
        let values = span.v[heads.kvh];
        for t0 in (0..m).step_by(tile) {
            let t1 = (t0 + tile).min(m);
            for (h, o) in outs.iter_mut().enumerate() {
                let p = &scores[h * n_keys + col..][t0..t1];
                weighted_sum(p, &values[t0 * d..t1 * d], d, o);
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

/// Four keys per step with independent accumulators: one key at a time is a single FMA chain
/// plus a horizontal sum per key, latency-bound at several times this cost.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn key_scores_avx2(q: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32]) {
    // SAFETY: `key_scores` calls this only after detecting avx2 and fma. `n` is at most the
    // keys in `keys` and the slots in `out`, `d` is a multiple of 8 and `q` holds `d` floats, so
    // the four key rows (j + 4 <= n), the query loads (c < d) and the 4-float store stay in bounds.
    unsafe {
        use std::arch::x86_64::*;
        let n = out.len().min(keys.len() / d.max(1));
        if !d.is_multiple_of(8) || q.len() < d {
            return key_scores_portable(q, keys, d, scale, out);
        }
        let (qp, kp, op) = (q.as_ptr(), keys.as_ptr(), out.as_mut_ptr());
        let sc = _mm_set1_ps(scale);
        let mut j = 0;
        while j + 4 <= n {
            let k0 = kp.add(j * d);
            let (k1, k2, k3) = (k0.add(d), k0.add(2 * d), k0.add(3 * d));
            let mut a0 = _mm256_setzero_ps();
            let (mut a1, mut a2, mut a3) = (a0, a0, a0);
            let mut c = 0;
            while c < d {
                let qv = _mm256_loadu_ps(qp.add(c));
                a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0.add(c)), a0);
                a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1.add(c)), a1);
                a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2.add(c)), a2);
                a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3.add(c)), a3);
                c += 8;
            }
            // Lane sums of the four accumulators, in key order.
            let s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
            let r = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
            _mm_storeu_ps(op.add(j), _mm_mul_ps(r, sc));
            j += 4;
        }
        key_scores_portable(q, &keys[j * d..], d, scale, &mut out[j..n]);
    }
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

/// The output kept in registers, 64 (or 32) columns at a time, while every value row streams
/// past: the plain loop reloads and stores `o` for each row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weighted_sum_avx2(p: &[f32], values: &[f32], d: usize, o: &mut [f32]) {
    // SAFETY: `weighted_sum` calls this only after detecting avx2 and fma; `o` holds `d` floats,
    // `d` is a multiple of 32 and only `n ≤ values.len() / d` weights are passed, which is what
    // `weighted_sum_cols_avx2` requires.
    unsafe {
        if o.len() < d || !d.is_multiple_of(32) {
            return weighted_sum_portable(p, values, d, o);
        }
        let n = p.len().min(values.len() / d);
        let mut c = 0;
        while c < d {
            if d - c >= 64 {
                weighted_sum_cols_avx2::<8>(&p[..n], values, d, c, o);
                c += 64;
            } else {
                weighted_sum_cols_avx2::<4>(&p[..n], values, d, c, o);
                c += 32;
            }
        }
    }
}

/// `o[c..c + 8·V] += Σ_j p_j · v_j[c..c + 8·V]` with `V` accumulators held in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weighted_sum_cols_avx2<const V: usize>(
    p: &[f32],
    values: &[f32],
    d: usize,
    c: usize,
    o: &mut [f32],
) {
    // SAFETY: called from `weighted_sum_avx2` (avx2 and fma detected) with `c + 8·V ≤ d ≤ o.len()`
    // and `p.len() · d ≤ values.len()`, so every load and store below is in bounds.
    unsafe {
        use std::arch::x86_64::*;
        let out = o.as_mut_ptr().add(c);
        let mut acc = [_mm256_setzero_ps(); V];
        for (i, a) in acc.iter_mut().enumerate() {
            *a = _mm256_loadu_ps(out.add(8 * i));
        }
        for (j, &pj) in p.iter().enumerate() {
            if pj == 0.0 {
                continue;
            }
            let w = _mm256_set1_ps(pj);
            let v = values.as_ptr().add(j * d + c);
            for (i, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(w, _mm256_loadu_ps(v.add(8 * i)), *a);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(8 * i), *a);
        }
    }
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
