//! Policy-agnostic attention: each layer gets a plan (a list of key spans with masks) and
//! computes one joint softmax over all of them, so a policy chooses *which* keys a query sees
//! without touching the kernel.

use crate::kv::LayerKv;
use crate::rope::{self, RopeParams};
use simd::Simd;

mod plan;
mod rope_table;
mod rows;
mod simd;
mod tiled;
mod vector;

pub use plan::{AttnPlan, ExternalKv, KeyPos, LayerObs, Slots, Span, SpanMask};
pub use vector::{dot, key_scores, merge_partial, weighted_sum};
#[cfg(test)]
use vector::{key_scores_portable, weighted_sum_portable};

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
    let fixed = plan
        .spans
        .iter()
        .any(|s| matches!(s.pos, KeyPos::FixedDistance(_)));
    validate_input(inp, out.len(), fixed)?;
    materialise_spans(inp, plan, scratch)?;
    rotate_fixed_queries(inp, plan, scratch);
    // Query sources: 0 = the rotated queries, 1 + i = `fixed_q[i]`.
    let sources: Vec<&[f32]> = std::iter::once(inp.q)
        .chain(scratch.fixed_q.iter().map(|(_, q)| q.as_slice()))
        .collect();
    let ready: Vec<ReadySpan> = plan
        .spans
        .iter()
        .zip(&scratch.spans)
        .map(|(span, material)| ready_span(inp, span, material, &scratch.fixed_q, &sources))
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
        rows::attend_rows(
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

/// Checks every span of `plan` against the store and gathers (and rotates) the keys and values
/// of each span the kernel cannot read in place into `scratch.spans`.
fn materialise_spans(
    inp: &AttnInput,
    plan: &AttnPlan,
    scratch: &mut AttnScratch,
) -> Result<(), AttnError> {
    let shape = inp.shape;
    let d = shape.head_dim;
    let store_len = inp.k_pos.len();
    let has_pre = inp
        .kv
        .k_pre
        .first()
        .is_some_and(|k| k.len() == store_len * d);
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
        if !direct {
            gather_span(
                inp,
                span,
                has_pre,
                &mut scratch.spans[si],
                &mut scratch.rope_table,
            );
        }
    }
    Ok(())
}

/// Copies one span's keys, values and positions into `m`, rotating each key to where the
/// span's [`KeyPos`] puts it.
fn gather_span(
    inp: &AttnInput,
    span: &Span,
    has_pre: bool,
    m: &mut MaterialSpan,
    rope_table: &mut rope_table::RopeTable,
) {
    let shape = inp.shape;
    let d = shape.head_dim;
    let len = span.slots.len();
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
                let (cos, sin) = rope_table.get(&inp.rope, delta);
                rope::apply(&inp.rope, row, cos, sin);
            }
        }
    }
}

/// Queries rotated by each fixed distance the plan uses, into `scratch.fixed_q`.
fn rotate_fixed_queries(inp: &AttnInput, plan: &AttnPlan, scratch: &mut AttnScratch) {
    let d = inp.shape.head_dim;
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
}

/// The kernel's view of one span: stored rows read in place, everything else from its
/// materialised copy, with the query source its position mode needs.
fn ready_span<'a>(
    inp: &AttnInput<'a>,
    span: &'a Span,
    material: &'a MaterialSpan,
    fixed_q: &[(usize, Vec<f32>)],
    sources: &[&'a [f32]],
) -> ReadySpan<'a> {
    let shape = inp.shape;
    let d = shape.head_dim;
    let len = span.slots.len();
    let q_src = match span.pos {
        KeyPos::FixedDistance(dist) => fixed_q
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
            let m = material;
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

#[cfg(test)]
mod tests;
