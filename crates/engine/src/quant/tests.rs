//! Tests for the quant module: hand-checked blocks, quantization round trips, every SIMD kernel
//! set against the scalar reference, matvec/matmul against naive f32 math, and error reporting
//! on bad input. The llama.cpp golden-vector tests live in `tests_golden.rs`.

use super::dot::{available_kernels, scalar_kernels, ActBuf, Kernels, RowKernel};
use super::util::{f16_to_f32, f32_to_f16};
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const WEIGHT_TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

pub(super) fn randn(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            // Sum of uniforms: roughly normal, with an occasional outlier like real weights.
            let v: f32 = (0..4).map(|_| rng.gen_range(-1.0f32..1.0)).sum::<f32>() * 0.8;
            if rng.gen_range(0..50) == 0 {
                v * 4.0
            } else {
                v
            }
        })
        .collect()
}

pub(super) fn quant(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; ty.row_bytes(x.len()).unwrap()];
    quantize_row(ty, x, &mut q).unwrap();
    q
}

pub(super) fn dequant(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![0f32; n];
    dequantize_row(ty, q, &mut y).unwrap();
    y
}

fn dequant_matrix(w: &QMatrix<'_>) -> Vec<f32> {
    let rb = w.row_bytes().unwrap();
    let mut out = vec![0f32; w.rows * w.cols];
    for r in 0..w.rows {
        dequantize_row(
            w.ty,
            &w.data[r * rb..(r + 1) * rb],
            &mut out[r * w.cols..(r + 1) * w.cols],
        )
        .unwrap();
    }
    out
}

fn cols_for(ty: GgmlType) -> &'static [usize] {
    match ty.block_size() {
        1 => &[1, 7, 8, 31, 64, 100, 576],
        32 => &[32, 64, 96, 288, 576, 1536],
        _ => &[256, 512, 768, 1536],
    }
}

// ---------------------------------------------------------------------------------------------
// hand-checked blocks

fn f16b(v: f32) -> [u8; 2] {
    f32_to_f16(v).to_le_bytes()
}

#[test]
fn hand_q4_1_block() {
    // d = 0.5, m = -1.0, nibble pair j = (j % 16, 15 - j % 16).
    let mut b = Vec::new();
    b.extend_from_slice(&f16b(0.5));
    b.extend_from_slice(&f16b(-1.0));
    for j in 0..16u8 {
        b.push(j | ((15 - j) << 4));
    }
    let y = dequant(GgmlType::Q4_1, &b, 32);
    for j in 0..16 {
        assert_eq!(y[j], j as f32 * 0.5 - 1.0);
        assert_eq!(y[j + 16], (15 - j) as f32 * 0.5 - 1.0);
    }
}

#[test]
fn hand_q4_0_q8_0_q5_0_blocks() {
    let mut b = f16b(0.25).to_vec();
    b.extend((0..16u8).map(|j| j | (j << 4)));
    let y = dequant(GgmlType::Q4_0, &b, 32);
    for j in 0..16 {
        assert_eq!(y[j], (j as f32 - 8.0) * 0.25);
        assert_eq!(y[j + 16], (j as f32 - 8.0) * 0.25);
    }

    let mut b = f16b(2.0).to_vec();
    b.extend((0..32i8).map(|j| (j - 16) as u8));
    let y = dequant(GgmlType::Q8_0, &b, 32);
    for (j, v) in y.iter().enumerate() {
        assert_eq!(*v, (j as f32 - 16.0) * 2.0);
    }

    // Q5_0: all low nibbles 1, high bit set for elements 0 and 31 only.
    let mut b = f16b(1.0).to_vec();
    b.extend_from_slice(&(1u32 | (1 << 31)).to_le_bytes());
    b.extend([0x11u8; 16]);
    let y = dequant(GgmlType::Q5_0, &b, 32);
    for (j, v) in y.iter().enumerate() {
        let q = if j == 0 || j == 31 { 17 } else { 1 };
        assert_eq!(*v, (q - 16) as f32);
    }
}

#[test]
fn hand_q4_k_block() {
    // d = 1, dmin = 0.5; sub-block j: scale j + 1, min j (6-bit packing incl. j >= 4).
    let mut sc = [0u8; 12];
    for j in 0..8usize {
        let (ls, lm) = ((j + 1) as u8, j as u8);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    let mut b = Vec::new();
    b.extend_from_slice(&f16b(1.0));
    b.extend_from_slice(&f16b(0.5));
    b.extend_from_slice(&sc);
    b.extend((0..128).map(|i| (i % 16) as u8 | ((15 - i % 16) as u8) << 4));
    let y = dequant(GgmlType::Q4_K, &b, 256);
    for (e, v) in y.iter().enumerate() {
        let sub = e / 32;
        let l = e % 32;
        let byte = (e / 64) * 32 + l;
        let q = if sub % 2 == 0 {
            byte % 16
        } else {
            15 - byte % 16
        };
        assert_eq!(
            *v,
            (sub + 1) as f32 * q as f32 - 0.5 * sub as f32,
            "element {e}"
        );
    }
}

#[test]
fn hand_matvec_q8_0() {
    // Weights exactly representable; x = all ones -> exact row sums.
    let w_f: Vec<f32> = (0..64)
        .map(|i| ((i % 32) as f32 - 16.0) / 16.0 * 127.0 / 127.0)
        .collect();
    let q = quant(GgmlType::Q8_0, &w_f);
    let w = QMatrix::new(GgmlType::Q8_0, 2, 32, &q).unwrap();
    let mut out = [0f32; 2];
    matvec(&w, &[1.0; 32], &mut out, &mut MatScratch::new()).unwrap();
    let deq = dequant_matrix(&w);
    // x = 1 quantizes to 127 with d = f16(1/127).
    let xq = 127.0 * f16_to_f32(f32_to_f16(1.0 / 127.0));
    for r in 0..2 {
        let want: f32 = deq[r * 32..r * 32 + 32].iter().sum::<f32>() * xq;
        assert!((out[r] - want).abs() < 1e-5, "{} vs {}", out[r], want);
    }
}

// ---------------------------------------------------------------------------------------------
// round trips

#[test]
fn quantize_round_trip_error_bounds() {
    let mut rng = StdRng::seed_from_u64(7);
    let x = randn(&mut rng, 4096);
    let rms = (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    for ty in GgmlType::ALL {
        let y = dequant(ty, &quant(ty, &x), x.len());
        let err = (x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            / x.len() as f32)
            .sqrt()
            / rms;
        let bound = match ty {
            GgmlType::F32 => 0.0,
            GgmlType::F16 => 1e-3,
            GgmlType::BF16 => 5e-3,
            GgmlType::Q8_0 | GgmlType::Q8_1 | GgmlType::Q8_K => 0.012,
            GgmlType::Q6_K => 0.03,
            GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q5_K => 0.07,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q4_K => 0.13,
            GgmlType::Q3_K => 0.25,
            GgmlType::Q2_K => 0.45,
        };
        assert!(err <= bound, "{ty}: relative rms error {err} > {bound}");
    }
}

#[test]
fn quantize_handles_zeros_and_constants() {
    for ty in GgmlType::ALL {
        let n = ty.block_size().max(32) * 2;
        for v in [0.0f32, 1.5, -3.0] {
            let x = vec![v; n];
            let y = dequant(ty, &quant(ty, &x), n);
            for a in &y {
                assert!(
                    (a - v).abs() <= v.abs() * 0.07 + 1e-6,
                    "{ty} const {v}: got {a}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kernels: scalar vs exact integer math, SIMD vs scalar

/// f64 dot of the dequantized weight row with the dequantized activation.
fn exact_dot(ty: GgmlType, row: &[u8], n: usize, acts: &ActBuf, x: &[f32]) -> (f64, f64) {
    let w = dequant(ty, row, n);
    let xa: Vec<f64> = match ty.block_size() {
        1 => x.iter().map(|&v| v as f64).collect(),
        32 => {
            let v = acts.q8();
            (0..n)
                .map(|i| v.qs[i] as f64 * v.d[i / 32] as f64)
                .collect()
        }
        _ => {
            let v = acts.q8k();
            (0..n)
                .map(|i| v.qs[i] as f64 * v.d[i / 256] as f64)
                .collect()
        }
    };
    let mut dot: f64 = w.iter().zip(&xa).map(|(&a, b)| a as f64 * b).sum();
    if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
        // The min term uses ggml's f16-rounded s = d * sum(q) instead of the exact sum.
        let v = acts.q8();
        let ts = ty.type_size();
        for b in 0..n / 32 {
            let m = f16_to_f32(u16::from_le_bytes([row[b * ts + 2], row[b * ts + 3]])) as f64;
            let exact: f64 = (0..32).map(|i| xa[32 * b + i]).sum();
            dot += m * (v.s[b] as f64 - exact);
        }
    }
    let mag = w.iter().zip(&xa).map(|(&a, b)| (a as f64 * b).abs()).sum();
    (dot, mag)
}

fn run_kernel(
    ks: &Kernels,
    ty: GgmlType,
    w: &[u8],
    rb: usize,
    acts: &mut ActBuf,
    x: &[f32],
    out: &mut [f32],
) {
    match ks.for_type(ty).unwrap() {
        RowKernel::Q8(f) => {
            acts.quantize_q8(x);
            f(w, rb, &acts.q8(), out)
        }
        RowKernel::Q8K(f) => {
            acts.quantize_q8k(x);
            f(w, rb, &acts.q8k(), out)
        }
        RowKernel::F32(f) => f(w, rb, x, out),
    }
}

#[test]
fn scalar_kernels_match_exact_integer_math() {
    let mut rng = StdRng::seed_from_u64(11);
    let ks = scalar_kernels();
    let mut acts = ActBuf::default();
    for ty in WEIGHT_TYPES {
        for &n in cols_for(ty) {
            let rows = 3;
            let wf = randn(&mut rng, rows * n);
            let w = quantize_matrix(ty, &wf, rows, n).unwrap();
            let x = randn(&mut rng, n);
            let rb = w.len() / rows;
            let mut out = vec![0f32; rows];
            run_kernel(&ks, ty, &w, rb, &mut acts, &x, &mut out);
            for r in 0..rows {
                let (want, mag) = exact_dot(ty, &w[r * rb..(r + 1) * rb], n, &acts, &x);
                assert!(
                    (out[r] as f64 - want).abs() <= 1e-5 * mag + 1e-6,
                    "{ty} n={n} row {r}: {} vs {want}",
                    out[r]
                );
            }
        }
    }
}

#[test]
fn simd_kernels_match_scalar() {
    let mut rng = StdRng::seed_from_u64(12);
    let reference = scalar_kernels();
    let sets = available_kernels();
    eprintln!(
        "kernel sets: {:?}",
        sets.iter().map(|k| k.name).collect::<Vec<_>>()
    );
    let mut acts = ActBuf::default();
    for ty in WEIGHT_TYPES {
        for &n in cols_for(ty) {
            for rows in [1usize, 5, 17] {
                let wf = randn(&mut rng, rows * n);
                let w = quantize_matrix(ty, &wf, rows, n).unwrap();
                let x = randn(&mut rng, n);
                let rb = w.len() / rows;
                let mut want = vec![0f32; rows];
                run_kernel(&reference, ty, &w, rb, &mut acts, &x, &mut want);
                let wd = dequant(ty, &w[..rb], n);
                let mag: f32 = wd.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum::<f32>() + 1e-6;
                for ks in &sets {
                    let mut got = vec![0f32; rows];
                    run_kernel(ks, ty, &w, rb, &mut acts, &x, &mut got);
                    for r in 0..rows {
                        assert!(
                            (got[r] - want[r]).abs() <= 2e-5 * mag * 4.0,
                            "{} {ty} n={n} rows={rows} r={r}: {} vs scalar {}",
                            ks.name,
                            got[r],
                            want[r]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn simd_kernels_extreme_values() {
    // Saturation checks: weights at the format extremes, activations at +-127.
    let reference = scalar_kernels();
    let mut acts = ActBuf::default();
    let n = 512;
    let x: Vec<f32> = (0..n)
        .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    for ty in WEIGHT_TYPES {
        let wf: Vec<f32> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let mut w = quant(ty, &wf);
        if ty == GgmlType::Q8_0 {
            // -128 quants do not come out of the quantizer but are valid file data.
            for blk in w.chunks_exact_mut(34) {
                blk[2] = 0x80;
            }
        }
        let mut want = [0f32];
        run_kernel(&reference, ty, &w, w.len(), &mut acts, &x, &mut want);
        for ks in available_kernels() {
            let mut got = [0f32];
            run_kernel(&ks, ty, &w, w.len(), &mut acts, &x, &mut got);
            assert!(
                (got[0] - want[0]).abs() <= 1e-4 * n as f32,
                "{} {ty}: {} vs {}",
                ks.name,
                got[0],
                want[0]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// matvec / matmul

fn naive_xwt(wd: &[f32], rows: usize, cols: usize, x: &[f32], n_tokens: usize) -> Vec<f32> {
    let mut out = vec![0f32; n_tokens * rows];
    for t in 0..n_tokens {
        for r in 0..rows {
            out[t * rows + r] = (0..cols)
                .map(|k| x[t * cols + k] as f64 * wd[r * cols + k] as f64)
                .sum::<f64>() as f32;
        }
    }
    out
}

fn mags(wd: &[f32], rows: usize, cols: usize, x: &[f32], n_tokens: usize) -> Vec<f32> {
    let mut out = vec![0f32; n_tokens * rows];
    for t in 0..n_tokens {
        for r in 0..rows {
            out[t * rows + r] = (0..cols)
                .map(|k| (x[t * cols + k] * wd[r * cols + k]).abs())
                .sum();
        }
    }
    out
}

/// Relative tolerance of a result computed with 8-bit activations vs exact f32 activations.
fn act_tol(ty: GgmlType) -> f32 {
    match ty {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1e-5,
        _ => 1.5e-2,
    }
}

#[test]
fn matvec_matches_naive() {
    let mut rng = StdRng::seed_from_u64(21);
    let mut scratch = MatScratch::new();
    for ty in WEIGHT_TYPES {
        for &(rows, cols) in &[(1usize, 256usize), (33, 512), (300, 768), (1000, 256)] {
            let wf = randn(&mut rng, rows * cols);
            let data = quantize_matrix(ty, &wf, rows, cols).unwrap();
            let w = QMatrix::new(ty, rows, cols, &data).unwrap();
            let wd = dequant_matrix(&w);
            let x = randn(&mut rng, cols);
            let mut out = vec![0f32; rows];
            matvec(&w, &x, &mut out, &mut scratch).unwrap();
            let want = naive_xwt(&wd, rows, cols, &x, 1);
            let mag = mags(&wd, rows, cols, &x, 1);
            for r in 0..rows {
                assert!(
                    (out[r] - want[r]).abs() <= act_tol(ty) * mag[r] + 1e-5,
                    "{ty} {rows}x{cols} r={r}: {} vs {}",
                    out[r],
                    want[r]
                );
            }
        }
    }
}

#[test]
fn matmul_matches_naive() {
    let mut rng = StdRng::seed_from_u64(22);
    let mut scratch = MatScratch::new();
    for ty in WEIGHT_TYPES {
        for &(rows, cols, nt) in &[
            (40usize, 256usize, 1usize),
            (40, 256, 3),
            (64, 512, 4),
            (70, 768, 17),
            (5000, 256, 9),
        ] {
            if rows > 1000 && !matches!(ty, GgmlType::Q4_1 | GgmlType::Q8_0 | GgmlType::F32) {
                continue; // the multi-panel path is type independent; keep the test fast
            }
            let wf = randn(&mut rng, rows * cols);
            let data = quantize_matrix(ty, &wf, rows, cols).unwrap();
            let w = QMatrix::new(ty, rows, cols, &data).unwrap();
            let wd = dequant_matrix(&w);
            let x = randn(&mut rng, nt * cols);
            let mut out = vec![0f32; nt * rows];
            matmul(&w, &x, nt, &mut out, &mut scratch).unwrap();
            let want = naive_xwt(&wd, rows, cols, &x, nt);
            let mag = mags(&wd, rows, cols, &x, nt);
            // The f32 GEMM path uses exact activations; the per-token and int8 paths 8-bit ones.
            let tol = if nt < 4 || matmul::uses_int8_gemm(ty, nt) {
                act_tol(ty)
            } else {
                1e-5
            };
            for i in 0..nt * rows {
                assert!(
                    (out[i] - want[i]).abs() <= tol * mag[i] + 1e-5,
                    "{ty} {rows}x{cols} nt={nt} i={i}: {} vs {}",
                    out[i],
                    want[i]
                );
            }
        }
    }
}

#[test]
fn matmul_f32_weights_unaligned() {
    // F32 weights not 4-byte aligned take the dequantize path instead of the in-place one.
    let mut rng = StdRng::seed_from_u64(27);
    let (rows, cols, nt) = (20usize, 48usize, 6usize);
    let wf = randn(&mut rng, rows * cols);
    let mut buf = vec![0u8; rows * cols * 4 + 1];
    buf[1..].copy_from_slice(&quantize_matrix(GgmlType::F32, &wf, rows, cols).unwrap());
    let w = QMatrix::new(GgmlType::F32, rows, cols, &buf[1..]).unwrap();
    let x = randn(&mut rng, nt * cols);
    let mut out = vec![0f32; nt * rows];
    matmul(&w, &x, nt, &mut out, &mut MatScratch::new()).unwrap();
    let want = naive_xwt(&wf, rows, cols, &x, nt);
    let mag = mags(&wf, rows, cols, &x, nt);
    for i in 0..nt * rows {
        assert!((out[i] - want[i]).abs() <= 1e-5 * mag[i] + 1e-6);
    }
}

#[test]
fn int8_gemm_every_level_matches_reference() {
    // Every level against an exact reference with the same Q8 32-block activation
    // quantization (for Q4_1/Q5_1, whose min term uses ggml's rounded `s`: the row kernels).
    use super::igemm::{available_levels, matmul_at, supported_at, IgemmScratch};
    let mut rng = StdRng::seed_from_u64(25);
    let ks = scalar_kernels();
    let mut acts = ActBuf::default();
    let mut s = IgemmScratch::default();
    let types = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ];
    for ty in types {
        let shapes: &[(usize, usize, usize)] = if ty.block_size() == 256 {
            &[(16, 256, 4), (37, 512, 9), (100, 768, 16)]
        } else {
            &[(16, 32, 4), (37, 96, 9), (100, 576, 16), (3000, 64, 11)]
        };
        for &(rows, cols, nt) in shapes {
            let data = quantize_matrix(ty, &randn(&mut rng, rows * cols), rows, cols).unwrap();
            let w = QMatrix::new(ty, rows, cols, &data).unwrap();
            let x = randn(&mut rng, nt * cols);
            let wd = dequant_matrix(&w);
            let mag = mags(&wd, rows, cols, &x, nt);
            for level in available_levels() {
                if !supported_at(ty, level) {
                    continue;
                }
                let mut out = vec![0f32; nt * rows];
                matmul_at(level, &w, &x, &mut out, &mut s);
                let want: Vec<f32> = if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
                    // The min term uses ggml's f16-rounded `s`: compare with the row kernels.
                    let rb = data.len() / rows;
                    let mut want = vec![0f32; nt * rows];
                    for t in 0..nt {
                        let xt = &x[t * cols..(t + 1) * cols];
                        run_kernel(
                            &ks,
                            ty,
                            &data,
                            rb,
                            &mut acts,
                            xt,
                            &mut want[t * rows..(t + 1) * rows],
                        );
                    }
                    want
                } else {
                    // Exact: dequantized weights times the dequantized Q8 activations.
                    acts.quantize_q8(&x);
                    let v = acts.q8();
                    let xa: Vec<f64> = (0..nt * cols)
                        .map(|i| v.qs[i] as f64 * v.d[i / 32] as f64)
                        .collect();
                    let mut want = vec![0f32; nt * rows];
                    for t in 0..nt {
                        for r in 0..rows {
                            want[t * rows + r] = (0..cols)
                                .map(|k| wd[r * cols + k] as f64 * xa[t * cols + k])
                                .sum::<f64>()
                                as f32;
                        }
                    }
                    want
                };
                for i in 0..nt * rows {
                    assert!(
                        (out[i] - want[i]).abs() <= 1e-5 * mag[i] + 1e-5,
                        "{level:?} {ty} {rows}x{cols} nt={nt} i={i}: {} vs {}",
                        out[i],
                        want[i]
                    );
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn int8_gemm_simd_packing_matches_portable() {
    let mut rng = StdRng::seed_from_u64(26);
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
    ] {
        if super::igemm::available_levels().is_empty() {
            return;
        }
        for nr in [16usize, 5] {
            let cols = 512;
            let nb = cols / 32;
            let data = quantize_matrix(ty, &randn(&mut rng, nr * cols), nr, cols).unwrap();
            let rb = data.len() / nr;
            let (mut q1, mut f1) = (vec![7u8; nb * 512], vec![7f32; nb * 32]);
            let (mut q2, mut f2) = (vec![9u8; nb * 512], vec![9f32; nb * 32]);
            super::igemm::pack_group(ty, &data, rb, nb, &mut q1, &mut f1);
            // SAFETY: any available level implies the AVX2/FMA/F16C features the packer needs.
            unsafe { super::igemm::x86::pack_group(ty, &data, rb, nb, &mut q2, &mut f2) };
            assert_eq!(q1, q2, "{ty} nr={nr}");
            assert_eq!(f1, f2, "{ty} nr={nr}");
        }
    }
}

#[test]
fn matmul_f32_and_gemm_f32_match_naive() {
    let mut rng = StdRng::seed_from_u64(23);
    for &(m, n, k) in &[
        (1usize, 1usize, 1usize),
        (3, 5, 7),
        (17, 33, 64),
        (64, 128, 96),
    ] {
        let a = randn(&mut rng, m * k);
        let bt = randn(&mut rng, n * k);
        let mut out = vec![0f32; m * n];
        matmul_f32(&a, &bt, &mut out, m, n, k).unwrap();
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|p| a[i * k + p] * bt[j * k + p]).sum();
                assert!(
                    (out[i * n + j] - want).abs() < 1e-4 * k as f32,
                    "{m}x{n}x{k}"
                );
            }
        }
        // P·V form: b is k×n row-major, out has padding (row stride n + 3), alpha and accumulate.
        let b = randn(&mut rng, k * n);
        let mut out2 = vec![1.0f32; m * (n + 3)];
        gemm_f32(
            MatF32::row_major(&a, m, k),
            MatF32::row_major(&b, k, n),
            MatF32Mut {
                data: &mut out2,
                rows: m,
                cols: n,
                row_stride: n + 3,
            },
            0.5,
            true,
            1,
        )
        .unwrap();
        for i in 0..m {
            for j in 0..n {
                let want: f32 =
                    1.0 + 0.5 * (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum::<f32>();
                assert!((out2[i * (n + 3) + j] - want).abs() < 1e-4 * k as f32);
            }
            for j in n..n + 3 {
                assert_eq!(out2[i * (n + 3) + j], 1.0, "padding untouched");
            }
        }
    }
}

#[test]
fn scratch_does_not_grow_when_warm() {
    let mut rng = StdRng::seed_from_u64(24);
    let (rows, cols) = (64, 512);
    let data = quantize_matrix(GgmlType::Q4_K, &randn(&mut rng, rows * cols), rows, cols).unwrap();
    let w = QMatrix::new(GgmlType::Q4_K, rows, cols, &data).unwrap();
    let x = randn(&mut rng, cols * 8);
    let mut out = vec![0f32; rows * 8];
    let mut s = MatScratch::new();
    matvec(&w, &x[..cols], &mut out[..rows], &mut s).unwrap();
    matmul(&w, &x, 8, &mut out, &mut s).unwrap();
    let before = format!("{:p}", s.panel.as_ptr());
    for _ in 0..3 {
        matvec(&w, &x[..cols], &mut out[..rows], &mut s).unwrap();
        matmul(&w, &x, 8, &mut out, &mut s).unwrap();
    }
    assert_eq!(before, format!("{:p}", s.panel.as_ptr()));
}

// ---------------------------------------------------------------------------------------------
// bad input

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut y = vec![0f32; 33];
    assert!(matches!(
        dequantize_row(GgmlType::Q4_0, &[0u8; 18], &mut y),
        Err(QuantError::NotBlockMultiple { .. })
    ));
    let mut y = vec![0f32; 32];
    assert!(matches!(
        dequantize_row(GgmlType::Q4_0, &[0u8; 17], &mut y),
        Err(QuantError::Length { .. })
    ));
    let mut q = vec![0u8; 10];
    assert!(quantize_row(GgmlType::Q4_K, &[0f32; 256], &mut q).is_err());
    assert!(quantize_row(GgmlType::Q4_K, &[0f32; 100], &mut q).is_err());

    let data = vec![0u8; 20 * 4];
    assert!(QMatrix::new(GgmlType::Q4_1, 4, 33, &data).is_err());
    assert!(QMatrix::new(GgmlType::Q4_1, 5, 32, &data).is_err());
    assert!(QMatrix::new(GgmlType::Q4_1, usize::MAX / 4, 32, &data).is_err());
    let w = QMatrix::new(GgmlType::Q4_1, 4, 32, &data).unwrap();
    let mut s = MatScratch::new();
    let mut out = vec![0f32; 4];
    assert!(matvec(&w, &[0f32; 31], &mut out, &mut s).is_err());
    assert!(matvec(&w, &[0f32; 32], &mut out[..3], &mut s).is_err());
    assert!(matmul(&w, &[0f32; 64], 3, &mut out, &mut s).is_err());
    assert!(matmul(&w, &[0f32; 64], usize::MAX, &mut out, &mut s).is_err());
    // Fields are public: an inconsistent struct literal is caught too.
    let bad = QMatrix {
        ty: GgmlType::Q4_1,
        rows: 8,
        cols: 32,
        data: &data,
    };
    assert!(matvec(&bad, &[0f32; 32], &mut [0f32; 8], &mut s).is_err());
    let q8k = vec![0u8; 292];
    let w = QMatrix::new(GgmlType::Q8_K, 1, 256, &q8k).unwrap();
    assert_eq!(
        matvec(&w, &[0f32; 256], &mut [0f32; 1], &mut s),
        Err(QuantError::Unsupported(GgmlType::Q8_K))
    );

    assert!(matmul_f32(&[0f32; 6], &[0f32; 6], &mut [0f32; 4], 2, 2, 3).is_ok());
    assert!(matmul_f32(&[0f32; 5], &[0f32; 6], &mut [0f32; 4], 2, 2, 3).is_err());
    let a = [0f32; 6];
    let r = gemm_f32(
        MatF32 {
            data: &a,
            rows: 2,
            cols: 3,
            row_stride: 4,
            col_stride: 1,
        },
        MatF32::row_major(&a, 3, 2),
        MatF32Mut::row_major(&mut [0f32; 4], 2, 2),
        1.0,
        false,
        0,
    );
    assert!(r.is_err(), "a's extent exceeds its slice");
    let r = gemm_f32(
        MatF32::row_major(&a, 2, 3),
        MatF32::row_major(&a, 3, 2),
        MatF32Mut {
            data: &mut [0f32; 4],
            rows: 2,
            cols: 2,
            row_stride: 1,
        },
        1.0,
        false,
        0,
    );
    assert!(r.is_err(), "overlapping output rows");
}

#[test]
fn empty_shapes_are_fine() {
    let mut s = MatScratch::new();
    let w = QMatrix::new(GgmlType::Q4_0, 0, 32, &[]).unwrap();
    matvec(&w, &[0f32; 32], &mut [], &mut s).unwrap();
    matmul(&w, &[0f32; 64], 2, &mut [], &mut s).unwrap();
    let w = QMatrix::new(GgmlType::Q4_0, 3, 0, &[]).unwrap();
    let mut out = [1f32; 3];
    matvec(&w, &[], &mut out, &mut s).unwrap();
    assert_eq!(out, [0.0; 3]);
    assert!(!kernel_name().is_empty());
}
