//! Golden-vector tests against llama.cpp itself: `testdata/ggml_golden.bin` holds ggml's
//! reference quantizations, dequantizations, activation quantizations and vec_dot results for a
//! fixed input (regenerate with `testdata/gen_golden.py` and a llama.cpp build).

use super::dot::{available_kernels, ActBuf, Q8KView, RowKernel};
use super::tests::{dequant, quant};
use super::util::f16_to_f32;
use super::GgmlType;

/// (type, ggml-quantized bytes, ggml-dequantized values, ggml dot, ggml activation bytes)
type GoldenRec = (GgmlType, Vec<u8>, Vec<f32>, f32, Vec<u8>);

struct Golden {
    x: Vec<f32>,
    y: Vec<f32>,
    recs: Vec<GoldenRec>,
}

fn golden() -> Golden {
    let b: &[u8] = include_bytes!("testdata/ggml_golden.bin");
    let mut p = 0usize;
    let mut take = |n: usize| {
        let s = &b[p..p + n];
        p += n;
        s
    };
    assert_eq!(take(4), b"LCQG");
    let u32_ = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap());
    assert_eq!(u32_(take(4)), 1);
    let n = u32_(take(4)) as usize;
    let f32s = |s: &[u8]| -> Vec<f32> {
        s.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let x = f32s(take(4 * n));
    let y = f32s(take(4 * n));
    let count = u32_(take(4));
    let mut recs = Vec::new();
    for _ in 0..count {
        let ty = GgmlType::from_u32(u32_(take(4))).unwrap();
        let nb = u32_(take(4)) as usize;
        let q = take(nb).to_vec();
        let deq = f32s(take(4 * n));
        let dot = f32::from_le_bytes(take(4).try_into().unwrap());
        let anb = u32_(take(4)) as usize;
        let act = take(anb).to_vec();
        recs.push((ty, q, deq, dot, act));
    }
    Golden { x, y, recs }
}

/// Parses ggml Q8_0/Q8_1 activation bytes into the kernel's activation layout.
fn acts_from_ggml_q8(bytes: &[u8], ts: usize) -> (Vec<i8>, Vec<f32>, Vec<f32>, Vec<i32>) {
    let (mut qs, mut d, mut s, mut isum) = (vec![], vec![], vec![], vec![]);
    for blk in bytes.chunks_exact(ts) {
        let off = ts - 32;
        let q: Vec<i8> = blk[off..].iter().map(|&v| v as i8).collect();
        d.push(f16_to_f32(u16::from_le_bytes([blk[0], blk[1]])));
        s.push(if ts == 36 {
            f16_to_f32(u16::from_le_bytes([blk[2], blk[3]]))
        } else {
            0.0
        });
        isum.push(q.iter().map(|&v| v as i32).sum());
        qs.extend(q);
    }
    (qs, d, s, isum)
}

fn acts_from_ggml_q8k(bytes: &[u8]) -> (Vec<i8>, Vec<f32>, Vec<i16>) {
    let (mut qs, mut d, mut bs) = (vec![], vec![], vec![]);
    for blk in bytes.chunks_exact(292) {
        d.push(f32::from_le_bytes(blk[0..4].try_into().unwrap()));
        qs.extend(blk[4..260].iter().map(|&v| v as i8));
        bs.extend(
            blk[260..292]
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]])),
        );
    }
    (qs, d, bs)
}

#[test]
fn golden_quantize_matches_ggml_ref_bytes() {
    let g = golden();
    for (ty, q, _, _, _) in &g.recs {
        let mine = quant(*ty, &g.x);
        let diff = mine.iter().zip(q).filter(|(a, b)| a != b).count();
        assert_eq!(
            diff,
            0,
            "{ty}: {diff} of {} bytes differ from ggml's reference quantizer",
            q.len()
        );
    }
}

#[test]
fn golden_dequantize_matches_ggml() {
    let g = golden();
    for (ty, q, deq, _, _) in &g.recs {
        let mine = dequant(*ty, q, g.x.len());
        for (i, (a, b)) in mine.iter().zip(deq).enumerate() {
            // Bit-exact except possibly for FMA contraction in the C build (1 ulp).
            assert!(
                (a - b).abs() <= b.abs() * 2e-7 + 1e-30,
                "{ty}[{i}]: {a} vs {b}"
            );
        }
    }
}

#[test]
fn golden_activation_quantization_matches_ggml() {
    let g = golden();
    let mut buf = ActBuf::default();
    for (ty, _, _, _, act) in &g.recs {
        match ty.block_size() {
            32 => {
                let ts = act.len() / (g.y.len() / 32);
                let (qs, d, s, _) = acts_from_ggml_q8(act, ts);
                buf.quantize_q8(&g.y);
                let v = buf.q8();
                assert_eq!(v.qs, &qs[..], "{ty}");
                assert_eq!(v.d, &d[..], "{ty}");
                if ts == 36 {
                    for (a, b) in v.s.iter().zip(&s) {
                        assert!((a - b).abs() <= b.abs() * 1e-3 + 1e-6, "{ty}: s {a} vs {b}");
                    }
                }
            }
            _ => {
                let (qs, d, bs) = acts_from_ggml_q8k(act);
                buf.quantize_q8k(&g.y);
                let v = buf.q8k();
                assert_eq!(v.qs, &qs[..], "{ty}");
                assert_eq!(v.d, &d[..], "{ty}");
                assert_eq!(v.bsums, &bs[..], "{ty}");
            }
        }
    }
}

#[test]
fn golden_dot_matches_ggml_for_every_kernel_set() {
    let g = golden();
    let n = g.x.len();
    for ks in available_kernels() {
        for (ty, q, deq, want, act) in &g.recs {
            let mut out = [0f32];
            let scale: f32 = deq.iter().zip(&g.y).map(|(a, b)| (a * b).abs()).sum();
            match ks.for_type(*ty).unwrap() {
                RowKernel::Q8(f) => {
                    let ts = act.len() / (n / 32);
                    let (qs, d, s, isum) = acts_from_ggml_q8(act, ts);
                    let mut buf = ActBuf::default();
                    buf.set_q8(&qs, &d, &s, &isum);
                    f(q, q.len(), &buf.q8(), &mut out);
                }
                RowKernel::Q8K(f) => {
                    let (qs, d, bs) = acts_from_ggml_q8k(act);
                    let bs2: Vec<i16> = bs.chunks_exact(2).map(|p| p[0] + p[1]).collect();
                    let v = Q8KView {
                        qs: &qs,
                        d: &d,
                        bsums: &bs,
                        bsums2: &bs2,
                    };
                    f(q, q.len(), &v, &mut out);
                }
                RowKernel::F32(_) => unreachable!(),
            }
            assert!(
                (out[0] - want).abs() <= 2e-5 * scale,
                "{} {ty}: {} vs ggml {} (scale {scale})",
                ks.name,
                out[0],
                want
            );
        }
    }
}
