//! Row-by-row attention, the decode kernel: one task per query row and query head (or KV head
//! with its query heads), keys walked in tiles shared by those heads.

use std::cell::RefCell;

use rayon::prelude::*;

use super::simd::Simd;
use super::vector::{key_scores, weighted_sum};
use super::{AttnShape, OutPtr, ReadySpan, SpanMask};

thread_local! {
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Row-by-row attention, the decode kernel (there is no second query row to share key loads
/// with). One task per (query row, KV head) serving all the query heads of that KV head when
/// `grouped`, else one per (query row, query head).
pub(super) fn attend_rows(
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
