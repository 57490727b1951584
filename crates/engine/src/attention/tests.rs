//! Attention kernel tests against naive references.

use std::sync::Arc;

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

/// Every head vector of `rows` rotated by `pos`, straight from `ops` (the reference).
fn rotate_rows(rope: &RopeParams, rows: &mut [f32], head_dim: usize, pos: f64) {
    let half = rope.n_rot / 2;
    let (mut cos, mut sin) = (vec![0.0; half], vec![0.0; half]);
    rope::cos_sin(rope, pos, &mut cos, &mut sin);
    rows.chunks_exact_mut(head_dim)
        .for_each(|h| rope::apply(rope, h, &cos, &sin));
}

fn rotated(v: &[f32], pos: f64) -> Vec<f32> {
    let mut out = v.to_vec();
    rotate_rows(&ROPE, &mut out, D, pos);
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
#[allow(clippy::needless_range_loop)]
fn per_kv_head_indices_select_keys_per_head() {
    for n in [1usize, 6] {
        let f = fixture(n, 13);
        let lists: Vec<Vec<u32>> = vec![vec![0, 5, 9, 20], vec![3, 4, 7, 30]];
        let plan = AttnPlan {
            spans: vec![
                Span {
                    slots: Slots::PerKvHead(lists.clone().into()),
                    pos: KeyPos::Original,
                    mask: SpanMask::Causal,
                },
                Span::original(100..N_KEYS, SpanMask::Causal),
            ],
            observe: vec![0],
        };
        let (want, probs) = reference(&f, |r, h| {
            let mut e = original(
                &f,
                r,
                h,
                lists[h / 2].iter().map(|&i| i as usize),
                |qp, kp| kp <= qp,
            );
            e.extend(original(&f, r, h, 100..N_KEYS, |qp, kp| kp <= qp));
            e
        });
        let (got, obs) = run(&f, &plan);
        assert_close(&got, &want);
        for h in 0..4 {
            for j in 0..4 {
                let w: f64 = (0..n).map(|r| probs[r][h][j]).sum();
                assert!((obs.col_sums[0][h * 4 + j] as f64 - w).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn external_keys_match_the_same_keys_in_the_store() {
    let f = fixture(4, 17);
    let take = |planes: &Vec<Vec<f32>>, slots: &[usize]| -> Vec<Vec<f32>> {
        planes
            .iter()
            .map(|p| {
                slots
                    .iter()
                    .flat_map(|&s| p[s * D..(s + 1) * D].to_vec())
                    .collect()
            })
            .collect()
    };
    let slots = [2usize, 3, 10, 11, 12];
    let idx: Arc<[u32]> = slots.iter().map(|&s| s as u32).collect();
    let pos: Vec<i64> = slots.iter().map(|&s| f.k_pos[s]).collect();
    let pre = ExternalKv {
        k: take(&f.kv.k_pre, &slots),
        v: take(&f.kv.v, &slots),
        pos: pos.clone(),
        pre_rope: true,
    };
    let rot = ExternalKv {
        k: take(&f.kv.k, &slots),
        v: take(&f.kv.v, &slots),
        pos,
        pre_rope: false,
    };
    let virt: Arc<[i64]> = (0..5).map(|i| 140 + i).collect();
    for kp in [
        KeyPos::FixedDistance(50),
        KeyPos::Original,
        KeyPos::Virtual(virt),
    ] {
        let with = |slots: Slots| AttnPlan {
            spans: vec![
                Span {
                    slots,
                    pos: kp.clone(),
                    mask: SpanMask::Causal,
                },
                Span::original(20..N_KEYS, SpanMask::Window(64)),
            ],
            observe: vec![0, 1],
        };
        let (want, want_obs) = run(&f, &with(Slots::Indices(idx.clone())));
        for ext in [&pre, &rot] {
            let (got, obs) = run(&f, &with(Slots::External(Arc::new(ext.clone()))));
            assert_close(&got, &want);
            assert_close(&obs.col_sums.concat(), &want_obs.col_sums.concat());
        }
    }
}

#[test]
fn malformed_per_head_and_external_spans_are_errors() {
    let f = fixture(1, 3);
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
    let try_plan = |slots: Slots, out: &mut Vec<f32>| {
        let plan = AttnPlan {
            spans: vec![Span {
                slots,
                pos: KeyPos::Original,
                mask: SpanMask::All,
            }],
            observe: vec![],
        };
        attend(
            &input,
            &plan,
            &mut AttnScratch::default(),
            out,
            &mut LayerObs::default(),
        )
    };
    let uneven: Arc<[Vec<u32>]> = vec![vec![1, 2], vec![3]].into();
    assert!(matches!(
        try_plan(Slots::PerKvHead(uneven), &mut out),
        Err(AttnError::BadShape { .. })
    ));
    let one: Arc<[Vec<u32>]> = vec![vec![1]].into();
    assert!(matches!(
        try_plan(Slots::PerKvHead(one), &mut out),
        Err(AttnError::BadShape { .. })
    ));
    let far: Arc<[Vec<u32>]> = vec![vec![1], vec![N_KEYS as u32]].into();
    assert_eq!(
        try_plan(Slots::PerKvHead(far), &mut out),
        Err(AttnError::SlotOutOfRange {
            span: 0,
            slot: N_KEYS,
            len: N_KEYS
        })
    );
    let short = ExternalKv {
        k: vec![vec![0.0; D]; 2],
        v: vec![vec![0.0; D]; 2],
        pos: vec![0, 1],
        pre_rope: true,
    };
    assert!(matches!(
        try_plan(Slots::External(Arc::new(short)), &mut out),
        Err(AttnError::BadShape { .. })
    ));
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

/// A random store and queries for any geometry, to compare the kernels with a scalar
/// reference beyond the small fixture above.
struct Geo {
    shape: AttnShape,
    rope: RopeParams,
    kv: LayerKv,
    k_pos: Vec<i64>,
    q_pre: Vec<f32>,
    q: Vec<f32>,
    q_pos: Vec<i64>,
}

fn rot(rope: &RopeParams, v: &[f32], d: usize, pos: f64) -> Vec<f32> {
    let mut out = v.to_vec();
    rotate_rows(rope, &mut out, d, pos);
    out
}

fn geo(d: usize, n_heads: usize, n_kv: usize, n_keys: usize, n: usize, seed: u64) -> Geo {
    let mut seed = seed;
    let rope = RopeParams {
        base: 10000.0,
        freq_scale: 1.0,
        n_rot: d,
        neox: d.is_multiple_of(16),
    };
    let mut plane = |len: usize| -> Vec<f32> { (0..len).map(|_| lcg(&mut seed)).collect() };
    let k_pre: Vec<Vec<f32>> = (0..n_kv).map(|_| plane(n_keys * d)).collect();
    let v: Vec<Vec<f32>> = (0..n_kv).map(|_| plane(n_keys * d)).collect();
    let q_pre = plane(n * n_heads * d);
    let k = k_pre
        .iter()
        .map(|kh| {
            kh.chunks(d)
                .enumerate()
                .flat_map(|(j, r)| rot(&rope, r, d, j as f64))
                .collect()
        })
        .collect();
    let q_pos: Vec<i64> = (n_keys as i64 - n as i64..n_keys as i64).collect();
    let q = q_pre
        .chunks(n_heads * d)
        .zip(&q_pos)
        .flat_map(|(row, &p)| rot(&rope, row, d, p as f64))
        .collect();
    Geo {
        shape: AttnShape {
            n_heads,
            n_kv_heads: n_kv,
            head_dim: d,
            scale: 1.0 / (d as f32).sqrt(),
        },
        rope,
        kv: LayerKv { k, k_pre, v },
        k_pos: (0..n_keys as i64).collect(),
        q_pre,
        q,
        q_pos,
    }
}

/// Straightforward f64 attention over the plan's semantics: per (row, head) the logits of
/// every visible key of every span, one softmax, and the column sums of observed spans.
fn scalar_reference(g: &Geo, plan: &AttnPlan) -> (Vec<f32>, Vec<Vec<f32>>) {
    let s = g.shape;
    let (d, n) = (s.head_dim, g.q_pos.len());
    let qd = s.n_heads * d;
    let group = s.n_heads / s.n_kv_heads;
    let mut out = vec![0.0f32; n * qd];
    let mut sums: Vec<Vec<f64>> = plan
        .observe
        .iter()
        .map(|&si| vec![0.0; s.n_heads * plan.spans[si].slots.len()])
        .collect();
    for r in 0..n {
        let qp = g.q_pos[r];
        for h in 0..s.n_heads {
            let kvh = h / group;
            // (span, key index, logit, value)
            let mut e: Vec<(usize, usize, f64, Vec<f32>)> = Vec::new();
            for (si, span) in plan.spans.iter().enumerate() {
                for j in 0..span.slots.len() {
                    // Un-rotated key, true position, value.
                    let (kpre, kp, v) = match &span.slots {
                        Slots::External(x) => {
                            let k = &x.k[kvh][j * d..(j + 1) * d];
                            let pre = if x.pre_rope {
                                k.to_vec()
                            } else {
                                rot(&g.rope, k, d, -(x.pos[j] as f64))
                            };
                            (pre, x.pos[j], x.v[kvh][j * d..(j + 1) * d].to_vec())
                        }
                        slots => {
                            let sl = match slots {
                                Slots::Range(rg) => rg.start + j,
                                Slots::Indices(ix) => ix[j] as usize,
                                Slots::PerKvHead(l) => l[kvh][j] as usize,
                                Slots::External(_) => unreachable!(),
                            };
                            (
                                g.kv.k_pre[kvh][sl * d..(sl + 1) * d].to_vec(),
                                g.k_pos[sl],
                                g.kv.v[kvh][sl * d..(sl + 1) * d].to_vec(),
                            )
                        }
                    };
                    let vis = match span.mask {
                        SpanMask::All => true,
                        SpanMask::Causal => kp <= qp,
                        SpanMask::Window(w) => kp <= qp && qp - kp < w as i64,
                        SpanMask::OutsideWindow(w) => qp - kp >= w as i64,
                    };
                    if !vis {
                        continue;
                    }
                    let qrow = &g.q[r * qd + h * d..][..d];
                    let logit = match &span.pos {
                        KeyPos::Original => dot64(qrow, &rot(&g.rope, &kpre, d, kp as f64)),
                        KeyPos::FixedDistance(dist) => dot64(
                            &rot(&g.rope, &g.q_pre[r * qd + h * d..][..d], d, *dist as f64),
                            &kpre,
                        ),
                        KeyPos::Virtual(vp) => dot64(qrow, &rot(&g.rope, &kpre, d, vp[j] as f64)),
                    };
                    e.push((si, j, logit * s.scale as f64, v));
                }
            }
            let m = e.iter().map(|x| x.2).fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = e.iter().map(|x| (x.2 - m).exp()).sum();
            for (si, j, l, v) in &e {
                let p = (l - m).exp() / z;
                for i in 0..d {
                    out[r * qd + h * d + i] += (p * v[i] as f64) as f32;
                }
                if let Some(oi) = plan.observe.iter().position(|o| o == si) {
                    sums[oi][h * plan.spans[*si].slots.len() + j] += p;
                }
            }
        }
    }
    let sums = sums
        .into_iter()
        .map(|v| v.into_iter().map(|x| x as f32).collect())
        .collect();
    (out, sums)
}

fn run_geo(g: &Geo, plan: &AttnPlan, kernel: Kernel) -> (Vec<f32>, LayerObs) {
    let input = AttnInput {
        shape: g.shape,
        rope: g.rope,
        q: &g.q,
        q_pre: &g.q_pre,
        q_pos: &g.q_pos,
        kv: &g.kv,
        k_pos: &g.k_pos,
    };
    // Poisoned output: every element must be written.
    let mut out = vec![f32::NAN; g.q.len()];
    let mut obs = LayerObs::default();
    attend_with(
        &input,
        plan,
        &mut AttnScratch::default(),
        &mut out,
        &mut obs,
        kernel,
    )
    .expect("valid plan");
    (out, obs)
}

fn assert_near(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (x, y)) in got.iter().zip(want).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Plans exercising every slot kind, position mode and mask, an empty span, rows that see
/// nothing, and spans longer than a key block.
fn plans(g: &Geo) -> Vec<(&'static str, AttnPlan)> {
    let n_keys = g.k_pos.len();
    let n = g.q_pos.len();
    let n_kv = g.shape.n_kv_heads;
    let d = g.shape.head_dim;
    let sinks = 4.min(n_keys);
    let idx: Arc<[u32]> = (0..sinks as u32).chain([9, 7, 30]).collect();
    let lists: Arc<[Vec<u32>]> = (0..n_kv)
        .map(|h| {
            (0..12)
                .map(|j| ((j * 13 + h * 5) % n_keys) as u32)
                .collect()
        })
        .collect();
    let virt: Arc<[i64]> = (0..idx.len() as i64)
        .map(|i| n_keys as i64 + 7 + i)
        .collect();
    let ext_slots: Vec<usize> = (0..n_keys).step_by(3).collect();
    let take = |planes: &Vec<Vec<f32>>| -> Vec<Vec<f32>> {
        planes
            .iter()
            .map(|p| {
                ext_slots
                    .iter()
                    .flat_map(|&s| p[s * d..(s + 1) * d].to_vec())
                    .collect()
            })
            .collect()
    };
    let ext_pos: Vec<i64> = ext_slots.iter().map(|&s| g.k_pos[s]).collect();
    let pre = Arc::new(ExternalKv {
        k: take(&g.kv.k_pre),
        v: take(&g.kv.v),
        pos: ext_pos.clone(),
        pre_rope: true,
    });
    let rotd = Arc::new(ExternalKv {
        k: take(&g.kv.k),
        v: take(&g.kv.v),
        pos: ext_pos,
        pre_rope: false,
    });
    let all_obs = |spans: Vec<Span>| {
        let observe = (0..spans.len()).collect();
        AttnPlan { spans, observe }
    };
    let span = |slots, pos, mask| Span { slots, pos, mask };
    let split = n_keys / 3;
    vec![
        (
            "causal split with empty span",
            all_obs(vec![
                Span::original(0..split, SpanMask::Causal),
                Span::original(split..split, SpanMask::Causal),
                Span::original(split..n_keys, SpanMask::Causal),
            ]),
        ),
        (
            "window and complement",
            all_obs(vec![
                Span::original(0..n_keys, SpanMask::OutsideWindow(37)),
                Span::original(0..n_keys, SpanMask::Window(37)),
            ]),
        ),
        (
            "fixed distance sinks",
            all_obs(vec![
                span(
                    Slots::Indices(idx.clone()),
                    KeyPos::FixedDistance(300),
                    SpanMask::All,
                ),
                Span::original(sinks..n_keys, SpanMask::Window(300)),
            ]),
        ),
        (
            "virtual sinks",
            all_obs(vec![
                span(
                    Slots::Indices(idx.clone()),
                    KeyPos::Virtual(virt),
                    SpanMask::All,
                ),
                Span::original(sinks..n_keys, SpanMask::Causal),
            ]),
        ),
        (
            "per kv head",
            all_obs(vec![
                span(Slots::PerKvHead(lists), KeyPos::Original, SpanMask::Causal),
                Span::original(n_keys / 2..n_keys, SpanMask::Causal),
            ]),
        ),
        (
            "external pre-rope and rotated",
            AttnPlan {
                spans: vec![
                    span(
                        Slots::External(pre.clone()),
                        KeyPos::FixedDistance(50),
                        SpanMask::OutsideWindow(20),
                    ),
                    span(Slots::External(rotd), KeyPos::Original, SpanMask::Causal),
                    span(Slots::External(pre), KeyPos::Original, SpanMask::Window(60)),
                ],
                observe: vec![0, 2],
            },
        ),
        (
            // Early rows see nothing (every key is too close), later rows a few keys.
            "rows that see nothing",
            all_obs(vec![Span::original(
                0..n_keys,
                SpanMask::OutsideWindow(n_keys - n + 2),
            )]),
        ),
        (
            "every row masked",
            all_obs(vec![Span::original(
                0..n_keys,
                SpanMask::OutsideWindow(n_keys + 1),
            )]),
        ),
    ]
}

fn check_geometry(d: usize, n_heads: usize, n_kv: usize, n_keys: usize, rows: &[usize]) {
    for &n in rows {
        let g = geo(d, n_heads, n_kv, n_keys, n, (d * 31 + n) as u64);
        let mut no_pre = geo(d, n_heads, n_kv, n_keys, n, (d * 31 + n) as u64);
        no_pre.kv.k_pre.clear();
        for (name, plan) in plans(&g) {
            let (want, want_obs) = scalar_reference(&g, &plan);
            for kernel in [
                Kernel::Rows,
                Kernel::RowsGrouped,
                Kernel::Tiled,
                Kernel::Auto,
            ] {
                let what =
                    format!("{name} d={d} heads={n_heads}/{n_kv} keys={n_keys} n={n} {kernel:?}");
                let (got, obs) = run_geo(&g, &plan, kernel);
                assert_near(&what, &got, &want, 2e-5);
                assert_eq!(obs.col_sums.len(), want_obs.len(), "{what}");
                for (a, b) in obs.col_sums.iter().zip(&want_obs) {
                    assert_near(&format!("{what} sums"), a, b, 3e-5 * n as f32);
                }
                // Repositioning rotated keys (no pre-RoPE copy) agrees too.
                let (got, _) = run_geo(&no_pre, &plan, kernel);
                assert_near(&format!("{what} no k_pre"), &got, &want, 2e-5);
            }
        }
    }
}

#[test]
fn kernels_match_scalar_reference_smollm_geometry() {
    // SmolLM2-135M: 9 query heads over 3 KV heads, head_dim 64; rows and keys straddle tiles.
    check_geometry(64, 9, 3, 531, &[1, 2, 33, 97]);
}

#[test]
fn kernels_match_scalar_reference_other_head_dims() {
    check_geometry(32, 4, 2, 300, &[1, 7, 40]);
    check_geometry(80, 2, 2, 270, &[1, 19]);
    check_geometry(128, 8, 1, 260, &[1, 30]);
    // Gemma 3 270M: head_dim 256, 4 query heads over 1 KV head.
    check_geometry(256, 4, 1, 280, &[1, 25]);
}

#[test]
fn malformed_geometry_is_an_error() {
    let g = geo(32, 4, 2, 50, 3, 1);
    let plan = AttnPlan {
        spans: vec![Span::original(0..50, SpanMask::Causal)],
        observe: vec![],
    };
    let mut shape = g.shape;
    shape.n_kv_heads = 3;
    let input = AttnInput {
        shape,
        rope: g.rope,
        q: &g.q,
        q_pre: &g.q_pre,
        q_pos: &g.q_pos,
        kv: &g.kv,
        k_pos: &g.k_pos,
    };
    let mut out = vec![0.0; g.q.len()];
    let mut scratch = AttnScratch::default();
    let mut obs = LayerObs::default();
    let e = attend(&input, &plan, &mut scratch, &mut out, &mut obs);
    assert!(matches!(e, Err(AttnError::BadInput(_))), "{e:?}");
    let input = AttnInput {
        shape: g.shape,
        ..input
    };
    let mut short = vec![0.0; g.q.len() - 1];
    let e = attend(&input, &plan, &mut scratch, &mut short, &mut obs);
    assert!(matches!(e, Err(AttnError::BadInput(_))), "{e:?}");
}

#[test]
fn dispatched_score_and_sum_kernels_match_the_portable_loops() {
    // Head sizes on and off the vector widths, key counts with and without a tail.
    let mut x = 7u32;
    let mut rnd = || {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (x >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    for d in [8usize, 24, 32, 64, 96, 128, 256] {
        for n in [0usize, 1, 3, 4, 5, 11, 64] {
            let q: Vec<f32> = (0..d).map(|_| rnd()).collect();
            let keys: Vec<f32> = (0..n * d).map(|_| rnd()).collect();
            let (mut fast, mut slow) = (vec![0.0f32; n], vec![0.0f32; n]);
            key_scores(&q, &keys, d, 0.125, &mut fast);
            key_scores_portable(&q, &keys, d, 0.125, &mut slow);
            for (a, b) in fast.iter().zip(&slow) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "d {d} n {n}: {a} vs {b}"
                );
            }
            // Some weights zero, as masked keys leave them.
            let p: Vec<f32> = (0..n)
                .map(|j| if j % 3 == 1 { 0.0 } else { rnd() })
                .collect();
            let start: Vec<f32> = (0..d).map(|_| rnd()).collect();
            let (mut fast, mut slow) = (start.clone(), start);
            weighted_sum(&p, &keys, d, &mut fast);
            weighted_sum_portable(&p, &keys, d, &mut slow);
            for (a, b) in fast.iter().zip(&slow) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "d {d} n {n}: {a} vs {b}"
                );
            }
        }
    }
}
