//! Forward pass of every architecture on tiny random GGUF models, checked against an
//! independent naive f64 implementation, through the prefill (GEMM), decode (mat-vec) and
//! chunked paths.

use std::sync::Arc;

use longctx_engine::gguf::GgufFile;
use longctx_engine::model::{Arch, LogitsWanted, Workspace};
use longctx_engine::policy::FullPolicy;
use longctx_engine::session::Session;
use longctx_engine::testing::{tiny_model_gguf, TinySpec, TINY_VOCAB};
use longctx_engine::Model;

fn tensor(file: &GgufFile, name: &str) -> Vec<f64> {
    let t = file.tensor(name).unwrap_or_else(|| panic!("{name}"));
    file.tensor_bytes(t)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
        .collect()
}

/// y = W x for a GGUF matrix with `cols` inputs.
fn mv(w: &[f64], x: &[f64]) -> Vec<f64> {
    w.chunks_exact(x.len())
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

fn rms(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let inv = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(a, b)| a * inv * b).collect()
}

fn rope(v: &mut [f64], pos: f64, base: f64, neox: bool) {
    let d = v.len();
    for i in 0..d / 2 {
        let theta = pos * base.powf(-2.0 * i as f64 / d as f64);
        let (c, s) = (theta.cos(), theta.sin());
        let (a, b) = if neox {
            (i, i + d / 2)
        } else {
            (2 * i, 2 * i + 1)
        };
        let (x, y) = (v[a], v[b]);
        v[a] = x * c - y * s;
        v[b] = x * s + y * c;
    }
}

/// Logits at every position, computed naively.
fn reference(file: &GgufFile, s: &TinySpec, tokens: &[u32]) -> Vec<Vec<f64>> {
    let (e, hd, nh, nkv) = (s.n_embd, s.head_dim, s.n_heads, s.n_kv_heads);
    let eps = 1e-6;
    let gemma = s.arch == Arch::Gemma3;
    let neox = s.arch != Arch::Llama;
    let embd = tensor(file, "token_embd.weight");
    let mut xs: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&t| {
            embd[t as usize * e..(t as usize + 1) * e]
                .iter()
                .map(|v| if gemma { v * (e as f64).sqrt() } else { *v })
                .collect()
        })
        .collect();
    for il in 0..s.n_layers {
        let g = |n: &str| tensor(file, &format!("blk.{il}.{n}"));
        let local = gemma && il % 2 == 0;
        let base = if local { 100.0 } else { 10000.0 };
        let (mut ks, mut vs, mut qs) = (vec![], vec![], vec![]);
        for (p, x) in xs.iter().enumerate() {
            let xn = rms(x, &g("attn_norm.weight"), eps);
            let (mut q, mut k, v) = (
                mv(&g("attn_q.weight"), &xn),
                mv(&g("attn_k.weight"), &xn),
                mv(&g("attn_v.weight"), &xn),
            );
            let mut v = v;
            if s.arch == Arch::Qwen2 {
                q.iter_mut()
                    .zip(g("attn_q.bias"))
                    .for_each(|(a, b)| *a += b);
                k.iter_mut()
                    .zip(g("attn_k.bias"))
                    .for_each(|(a, b)| *a += b);
                v.iter_mut()
                    .zip(g("attn_v.bias"))
                    .for_each(|(a, b)| *a += b);
            }
            for h in q.chunks_exact_mut(hd) {
                if gemma {
                    let n = rms(h, &g("attn_q_norm.weight"), eps);
                    h.copy_from_slice(&n);
                }
                rope(h, p as f64, base, neox);
            }
            for h in k.chunks_exact_mut(hd) {
                if gemma {
                    let n = rms(h, &g("attn_k_norm.weight"), eps);
                    h.copy_from_slice(&n);
                }
                rope(h, p as f64, base, neox);
            }
            qs.push(q);
            ks.push(k);
            vs.push(v);
        }
        for (p, x) in xs.iter_mut().enumerate() {
            let mut att = vec![0.0; nh * hd];
            for h in 0..nh {
                let kh = h / (nh / nkv);
                let visible: Vec<usize> = (0..=p)
                    .filter(|&j| !local || p - j < s.sliding_window)
                    .collect();
                let sc: Vec<f64> = visible
                    .iter()
                    .map(|&j| {
                        (0..hd)
                            .map(|i| qs[p][h * hd + i] * ks[j][kh * hd + i])
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                let m = sc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = sc.iter().map(|v| (v - m).exp()).sum();
                for (idx, &j) in visible.iter().enumerate() {
                    let w = (sc[idx] - m).exp() / z;
                    for i in 0..hd {
                        att[h * hd + i] += w * vs[j][kh * hd + i];
                    }
                }
            }
            let mut o = mv(&g("attn_output.weight"), &att);
            if gemma {
                o = rms(&o, &g("post_attention_norm.weight"), eps);
            }
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            let xn = rms(x, &g("ffn_norm.weight"), eps);
            let gate = mv(&g("ffn_gate.weight"), &xn);
            let up = mv(&g("ffn_up.weight"), &xn);
            let act: Vec<f64> = gate
                .iter()
                .zip(&up)
                .map(|(&gv, &u)| {
                    let a = if gemma {
                        0.5 * gv
                            * (1.0
                                + ((2.0 / std::f64::consts::PI).sqrt()
                                    * (gv + 0.044715 * gv * gv * gv))
                                    .tanh())
                    } else {
                        gv / (1.0 + (-gv).exp())
                    };
                    a * u
                })
                .collect();
            let mut d = mv(&g("ffn_down.weight"), &act);
            if gemma {
                d = rms(&d, &g("post_ffw_norm.weight"), eps);
            }
            x.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
        }
    }
    let out_w = if gemma {
        embd
    } else {
        tensor(file, "output.weight")
    };
    xs.iter()
        .map(|x| mv(&out_w, &rms(x, &tensor(file, "output_norm.weight"), eps)))
        .collect()
}

fn check(arch: Arch) {
    let spec = TinySpec::new(arch);
    let file = Arc::new(GgufFile::from_bytes(tiny_model_gguf(&spec)).expect("tiny gguf parses"));
    let model = Model::from_gguf(file.clone()).expect("tiny model loads");
    let tokens: Vec<u32> = [
        256u32, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33,
    ]
    .to_vec();
    let want = reference(&file, &spec, &tokens);
    let n = tokens.len();
    let close = |got: &[f32], want: &[f64], what: &str| {
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (*a as f64 - b).abs() < 2e-3 * (1.0 + b.abs()),
                "{arch:?} {what}: logit {i}: {a} vs {b}"
            );
        }
    };
    // Whole prompt in one pass (GEMM path), logits at every position.
    let mut ws = Workspace::default();
    let mut policy = FullPolicy::new(64);
    let mut kv = model.new_kv(&policy);
    model
        .forward(
            &tokens,
            0,
            &mut kv,
            &mut policy,
            LogitsWanted::From(0),
            &mut ws,
        )
        .expect("forward");
    for (p, want_p) in want.iter().enumerate() {
        close(
            &ws.logits[p * TINY_VOCAB..(p + 1) * TINY_VOCAB],
            want_p,
            &format!("prefill pos {p}"),
        );
    }
    // One token at a time (mat-vec path) and in chunks of 3 (mixed).
    for chunk in [1usize, 3] {
        let mut policy = FullPolicy {
            max_context: 64,
            chunk,
        };
        let mut kv = model.new_kv(&policy);
        for (c, piece) in tokens.chunks(chunk).enumerate() {
            model
                .forward(
                    piece,
                    (c * chunk) as i64,
                    &mut kv,
                    &mut policy,
                    LogitsWanted::Last,
                    &mut ws,
                )
                .expect("forward");
            let p = c * chunk + piece.len() - 1;
            close(&ws.logits, &want[p], &format!("chunk {chunk} pos {p}"));
        }
        assert_eq!(kv.len(), n);
    }
}

#[test]
fn llama_forward_matches_naive_reference() {
    check(Arch::Llama);
}

#[test]
fn qwen2_forward_matches_naive_reference() {
    check(Arch::Qwen2);
}

#[test]
fn gemma3_forward_matches_naive_reference() {
    check(Arch::Gemma3);
}

#[test]
fn full_policy_refuses_past_its_context() {
    let spec = TinySpec::new(Arch::Llama);
    let model = Model::from_gguf(Arc::new(
        GgufFile::from_bytes(tiny_model_gguf(&spec)).unwrap(),
    ))
    .unwrap();
    let mut ws = Workspace::default();
    let mut policy = FullPolicy::new(8);
    let mut kv = model.new_kv(&policy);
    let tokens = [65u32; 9];
    let err = model
        .forward(
            &tokens,
            0,
            &mut kv,
            &mut policy,
            LogitsWanted::Last,
            &mut ws,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("needs 9 tokens") && err.to_string().contains("allows 8"),
        "{err}"
    );
    assert_eq!(kv.len(), 0, "a refused chunk leaves the cache untouched");
    let err = model
        .forward(&[999], 0, &mut kv, &mut policy, LogitsWanted::Last, &mut ws)
        .unwrap_err();
    assert!(err.to_string().contains("token id 999"), "{err}");
    assert_eq!(kv.len(), 0, "a failed chunk is rolled back");

    // A session refuses the whole prompt before running any chunk of it, naming its length
    // (not the first chunk that would overflow).
    let policy = FullPolicy {
        max_context: 8,
        chunk: 3,
    };
    let mut session = Session::new(&model, Box::new(policy));
    let mut chunks_run = 0;
    let err = session.feed(&[65u32; 20], |_| chunks_run += 1).unwrap_err();
    assert!(
        err.to_string().contains("needs 20 tokens") && err.to_string().contains("allows 8"),
        "{err}"
    );
    assert_eq!(chunks_run, 0, "no chunk runs before the refusal");
    assert!(session.tokens().is_empty());
    session.feed(&[65u32; 6], |_| {}).expect("6 tokens fit");
    let err = session.feed(&[65u32; 3], |_| {}).unwrap_err();
    assert!(err.to_string().contains("needs 9 tokens"), "{err}");
    assert_eq!(
        session.tokens().len(),
        6,
        "the refused feed leaves the session as it was"
    );
}

fn load_edited(
    edit: impl FnOnce(&mut longctx_engine::gguf::writer::GgufWriter),
) -> Result<Model, longctx_engine::ModelError> {
    let mut w = longctx_engine::testing::tiny_model_writer(&TinySpec::new(Arch::Llama));
    edit(&mut w);
    Model::from_gguf(Arc::new(
        GgufFile::from_bytes(w.build()).expect("still valid GGUF"),
    ))
}

fn set_kv(
    w: &mut longctx_engine::gguf::writer::GgufWriter,
    key: &str,
    v: longctx_engine::gguf::MetaValue,
) {
    let kvs = w.kvs_mut();
    kvs.retain(|(k, _)| k != key);
    kvs.push((key.to_string(), v));
}

#[test]
fn broken_models_give_errors_naming_the_problem() {
    use longctx_engine::gguf::MetaValue;
    let msg = |r: Result<Model, longctx_engine::ModelError>| {
        r.err().map(|e| e.to_string()).expect("load must fail")
    };

    let e = msg(load_edited(|w| {
        w.tensors_mut().retain(|t| t.name != "blk.1.attn_q.weight")
    }));
    assert!(
        e.contains("'blk.1.attn_q.weight'") && e.contains("missing"),
        "{e}"
    );

    let e = msg(load_edited(|w| {
        set_kv(w, "general.architecture", MetaValue::String("mamba".into()))
    }));
    assert!(e.contains("unsupported architecture 'mamba'"), "{e}");

    let e = msg(load_edited(|w| {
        set_kv(w, "llama.attention.head_count_kv", MetaValue::U32(3))
    }));
    assert!(
        e.contains("head_count_kv") && e.contains("must divide"),
        "{e}"
    );

    let e = msg(load_edited(|w| {
        w.kvs_mut().retain(|(k, _)| k != "llama.block_count")
    }));
    assert!(
        e.contains("'llama.block_count'") && e.contains("missing"),
        "{e}"
    );

    let e = msg(load_edited(|w| {
        set_kv(w, "llama.block_count", MetaValue::U32(1_000_000))
    }));
    assert!(
        e.contains("llama.block_count") && e.contains("1..=1024"),
        "{e}"
    );

    let e = msg(load_edited(|w| {
        set_kv(w, "llama.embedding_length", MetaValue::U32(16))
    }));
    assert!(
        e.contains("token_embd.weight") && e.contains("shape"),
        "{e}"
    );

    let e = msg(load_edited(|w| {
        set_kv(
            w,
            "llama.attention.layer_norm_rms_epsilon",
            MetaValue::String("x".into()),
        )
    }));
    assert!(e.contains("layer_norm_rms_epsilon"), "{e}");
}
