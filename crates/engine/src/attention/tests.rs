//! Attention kernel tests against naive references.

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
