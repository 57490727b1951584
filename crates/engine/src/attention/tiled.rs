//! Multi-row (prefill) attention, flash-attention style: one task takes a block of query rows
//! times the GQA group's query heads against one KV head, walks the keys in blocks with an
//! online softmax (running max and sum per row), and does both products as small GEMMs, so every
//! key and value row loaded is reused by the whole tile.

use std::cell::RefCell;
use std::ops::Range;

use rayon::prelude::*;

use super::simd::Simd;
use super::{AttnShape, OutPtr, ReadySpan, SpanMask};

/// Query rows (rows × group heads) a task aims for: enough to amortise each key block's
/// loads, small enough that the score tile stays in L2.
const TILE_ROWS: usize = 96;
/// Keys per block: the score tile is `tile rows × KEY_BLOCK`.
const KEY_BLOCK: usize = 256;

/// Per-thread tile buffers, reused across tasks and layers.
#[derive(Default)]
struct Tile {
    /// Packed queries per query source, `sources × rows × d`.
    q: Vec<f32>,
    /// Scores, then probabilities, `rows × KEY_BLOCK`.
    s: Vec<f32>,
    /// Unnormalised output accumulator, `rows × d`.
    o: Vec<f32>,
    /// Running max and sum of exponentials per tile row.
    m: Vec<f32>,
    l: Vec<f32>,
}

thread_local! {
    static TILE: RefCell<Tile> = RefCell::new(Tile::default());
}

/// How a key block's mask applies to a block of query rows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Vis {
    None,
    Some,
    All,
}

/// Judges a key block for query positions in `qmin..=qmax` from its position range alone, so
/// fully visible blocks skip the per-key mask and fully hidden ones (the causal future) are
/// not computed at all.
fn block_vis(mask: SpanMask, pos: &[i64], qmin: i64, qmax: i64) -> Vis {
    if mask == SpanMask::All {
        return Vis::All;
    }
    let (mut pmin, mut pmax) = (i64::MAX, i64::MIN);
    for &p in pos {
        pmin = pmin.min(p);
        pmax = pmax.max(p);
    }
    let (all, none) = match mask {
        SpanMask::All => (true, false),
        SpanMask::Causal => (pmax <= qmin, pmin > qmax),
        SpanMask::Window(w) => {
            let w = w as i64;
            (
                pmax <= qmin && qmax.saturating_sub(pmin) < w,
                pmin > qmax || qmin.saturating_sub(pmax) >= w,
            )
        }
        SpanMask::OutsideWindow(w) => {
            let w = w as i64;
            (
                qmin.saturating_sub(pmax) >= w,
                qmax.saturating_sub(pmin) < w,
            )
        }
    };
    if none {
        Vis::None
    } else if all {
        Vis::All
    } else {
        Vis::Some
    }
}

fn visible(mask: SpanMask, qp: i64, p: i64) -> bool {
    match mask {
        SpanMask::All => true,
        SpanMask::Causal => p <= qp,
        SpanMask::Window(w) => p <= qp && qp - p < w as i64,
        SpanMask::OutsideWindow(w) => qp - p >= w as i64,
    }
}

/// Everything a tile task reads.
pub(super) struct TileJob<'a> {
    pub shape: AttnShape,
    pub spans: &'a [ReadySpan<'a>],
    /// Query buffers by source index (`ReadySpan::q_src`).
    pub sources: &'a [&'a [f32]],
    pub q_pos: &'a [i64],
    pub observe: &'a [usize],
    pub simd: Simd,
}

/// Runs attention for every row into `out` and returns column sums per observed span
/// (`n_heads × span_len` each), as `attend` reports them.
pub(super) fn run(job: &TileJob, out: OutPtr) -> Vec<Vec<f32>> {
    let shape = job.shape;
    let n = job.q_pos.len();
    let group = shape.n_heads / shape.n_kv_heads;
    // Rows per task: a full tile, but small enough that both threads get several tasks.
    let threads = rayon::current_num_threads().max(1);
    let per_head = (2 * threads).div_ceil(shape.n_kv_heads);
    let rows = (TILE_ROWS / group).min(n.div_ceil(per_head)).max(1);
    let blocks = n.div_ceil(rows);
    let partial: Vec<(usize, Vec<Vec<f32>>)> = (0..shape.n_kv_heads * blocks)
        .into_par_iter()
        .map(|task| {
            let kvh = task % shape.n_kv_heads;
            let b = task / shape.n_kv_heads;
            let r = b * rows..((b + 1) * rows).min(n);
            let sums = TILE.with(|t| tile_task(job, &mut t.borrow_mut(), kvh, r, out));
            (kvh, sums)
        })
        .collect();
    job.observe
        .iter()
        .enumerate()
        .map(|(oi, &si)| {
            let len = job.spans.get(si).map_or(0, |s| s.len);
            let mut all = vec![0.0f32; shape.n_heads * len];
            for (kvh, sums) in &partial {
                let dst = &mut all[kvh * group * len..(kvh + 1) * group * len];
                dst.iter_mut().zip(&sums[oi]).for_each(|(a, b)| *a += b);
            }
            all
        })
        .collect()
}

/// One KV head against query rows `rows`; writes those rows' outputs for the group's heads and
/// returns this block's column sums per observed span (`group × span_len`).
fn tile_task(
    job: &TileJob,
    t: &mut Tile,
    kvh: usize,
    rows: Range<usize>,
    out: OutPtr,
) -> Vec<Vec<f32>> {
    let shape = job.shape;
    let d = shape.head_dim;
    let qd = shape.n_heads * d;
    let group = shape.n_heads / shape.n_kv_heads;
    let mr = rows.len() * group;
    let q_pos = &job.q_pos[rows.clone()];
    let qmin = q_pos.iter().copied().min().unwrap_or(0);
    let qmax = q_pos.iter().copied().max().unwrap_or(0);
    // The group's heads are adjacent in a query row, so tile row `r · group + g` is one copy.
    let head0 = kvh * group * d;
    t.q.clear();
    for src in job.sources {
        for row in rows.clone() {
            t.q.extend_from_slice(&src[row * qd + head0..][..group * d]);
        }
    }
    t.s.resize(mr * KEY_BLOCK, 0.0);
    t.o.clear();
    t.o.resize(mr * d, 0.0);
    t.m.clear();
    t.m.resize(mr, f32::NEG_INFINITY);
    t.l.clear();
    t.l.resize(mr, 0.0);
    for span in job.spans {
        let pos = span.pos[kvh];
        let q = &t.q[span.q_src * mr * d..][..mr * d];
        for c0 in (0..span.len).step_by(KEY_BLOCK) {
            let c = c0..(c0 + KEY_BLOCK).min(span.len);
            let kc = c.len();
            let vis = block_vis(span.mask, &pos[c.clone()], qmin, qmax);
            if vis == Vis::None {
                continue;
            }
            let s = &mut t.s[..mr * kc];
            scores(
                q,
                &span.k[kvh][c.start * d..c.end * d],
                mr,
                kc,
                d,
                shape.scale,
                s,
            );
            if vis == Vis::Some {
                mask_tile(s, span.mask, q_pos, &pos[c.clone()], group);
            }
            // Online softmax: rescale what was accumulated when a row's max grows.
            for i in 0..mr {
                let srow = &mut s[i * kc..(i + 1) * kc];
                let m_new = t.m[i].max(job.simd.row_max(srow));
                if m_new == f32::NEG_INFINITY {
                    srow.fill(0.0);
                    continue;
                }
                let sum = job.simd.exp_shift_sum(srow, m_new);
                if m_new != t.m[i] && t.l[i] != 0.0 {
                    let alpha = (t.m[i] - m_new).exp();
                    t.l[i] *= alpha;
                    t.o[i * d..(i + 1) * d].iter_mut().for_each(|x| *x *= alpha);
                }
                t.l[i] += sum;
                t.m[i] = m_new;
            }
            accumulate(s, &span.v[kvh][c.start * d..c.end * d], mr, kc, d, &mut t.o);
        }
    }
    for (ri, row) in rows.clone().enumerate() {
        // SAFETY: `out` holds `n × qd` floats and outlives the parallel loop; this task alone
        // writes the group's heads of its rows (tasks differ in KV head or rows).
        let dst =
            unsafe { std::slice::from_raw_parts_mut(out.get().add(row * qd + head0), group * d) };
        for g in 0..group {
            let i = ri * group + g;
            // A row that sees no key at all outputs zeros, as a fully masked softmax does.
            let inv = if t.l[i] > 0.0 { 1.0 / t.l[i] } else { 0.0 };
            dst[g * d..(g + 1) * d]
                .iter_mut()
                .zip(&t.o[i * d..(i + 1) * d])
                .for_each(|(y, x)| *y = x * inv);
        }
    }
    job.observe
        .iter()
        .map(|&si| observe_span(job, t, kvh, rows.clone(), si))
        .collect()
}

/// Column sums of the final probabilities over this task's rows for one span: its scores are
/// recomputed and normalised with each row's final max and sum.
fn observe_span(
    job: &TileJob,
    t: &mut Tile,
    kvh: usize,
    rows: Range<usize>,
    si: usize,
) -> Vec<f32> {
    let Some(span) = job.spans.get(si) else {
        return Vec::new();
    };
    let shape = job.shape;
    let d = shape.head_dim;
    let group = shape.n_heads / shape.n_kv_heads;
    let mr = rows.len() * group;
    let q_pos = &job.q_pos[rows.clone()];
    let qmin = q_pos.iter().copied().min().unwrap_or(0);
    let qmax = q_pos.iter().copied().max().unwrap_or(0);
    let pos = span.pos[kvh];
    let q = &t.q[span.q_src * mr * d..][..mr * d];
    let mut acc = vec![0.0f32; group * span.len];
    for c0 in (0..span.len).step_by(KEY_BLOCK) {
        let c = c0..(c0 + KEY_BLOCK).min(span.len);
        let kc = c.len();
        let vis = block_vis(span.mask, &pos[c.clone()], qmin, qmax);
        if vis == Vis::None {
            continue;
        }
        let s = &mut t.s[..mr * kc];
        scores(
            q,
            &span.k[kvh][c.start * d..c.end * d],
            mr,
            kc,
            d,
            shape.scale,
            s,
        );
        if vis == Vis::Some {
            mask_tile(s, span.mask, q_pos, &pos[c.clone()], group);
        }
        for i in 0..mr {
            if t.l[i] <= 0.0 {
                continue;
            }
            let srow = &mut s[i * kc..(i + 1) * kc];
            job.simd.exp_shift_sum(srow, t.m[i]);
            let inv = 1.0 / t.l[i];
            let g = i % group;
            acc[g * span.len + c.start..g * span.len + c.end]
                .iter_mut()
                .zip(srow.iter())
                .for_each(|(a, p)| *a += p * inv);
        }
    }
    acc
}

/// Hides masked keys (−∞) in a score tile whose rows are `query row × group`.
fn mask_tile(s: &mut [f32], mask: SpanMask, q_pos: &[i64], pos: &[i64], group: usize) {
    let kc = pos.len();
    for (ri, &qp) in q_pos.iter().enumerate() {
        for (j, &p) in pos.iter().enumerate() {
            if !visible(mask, qp, p) {
                for g in 0..group {
                    s[(ri * group + g) * kc + j] = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// `s = scale · Q Kᵀ` for `mr` packed query rows and `kc` keys (row stride `kc`).
fn scores(q: &[f32], k: &[f32], mr: usize, kc: usize, d: usize, scale: f32, s: &mut [f32]) {
    debug_assert!(q.len() >= mr * d && k.len() >= kc * d && s.len() >= mr * kc);
    // SAFETY: dst is mr×kc row-major inside `s`; lhs mr×d row-major inside `q`; rhs = Kᵀ
    // (d×kc) read from `k` with column stride d; all lengths are checked by the callers'
    // slicing (the debug assertion restates them).
    unsafe {
        gemm::gemm(
            mr,
            kc,
            d,
            s.as_mut_ptr(),
            1,
            kc as isize,
            false,
            q.as_ptr(),
            1,
            d as isize,
            k.as_ptr(),
            d as isize,
            1,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `o += P V` for `mr` probability rows over `kc` keys.
fn accumulate(p: &[f32], v: &[f32], mr: usize, kc: usize, d: usize, o: &mut [f32]) {
    debug_assert!(p.len() >= mr * kc && v.len() >= kc * d && o.len() >= mr * d);
    // SAFETY: dst mr×d row-major inside `o`; lhs mr×kc row-major inside `p`; rhs kc×d
    // row-major inside `v`.
    unsafe {
        gemm::gemm(
            mr,
            d,
            kc,
            o.as_mut_ptr(),
            1,
            d as isize,
            true,
            p.as_ptr(),
            1,
            kc as isize,
            v.as_ptr(),
            1,
            d as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
