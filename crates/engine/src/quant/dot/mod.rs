//! Activation quantization (Q8 32-blocks for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 weights, Q8_K for the
//! k-quants) and the row-dot kernels, selected once per process by CPU feature detection.
//!
//! Every kernel computes `out[i] = dot(W[i, :], act)` for a run of consecutive weight rows
//! (`w.len() == out.len() * row_bytes`). The scalar module is the reference; SIMD modules must
//! agree with it up to float summation order.

pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

use super::util::{nearest_int, round_f16};
use super::{GgmlType, QK_K};
use std::sync::OnceLock;

/// An activation vector quantized to 32-element Q8 blocks (the semantics of ggml's Q8_0 / Q8_1
/// activation quantization, stored as separate arrays for SIMD-friendly access).
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Q8View<'a> {
    /// `n` quants in `[-127, 127]`.
    pub qs: &'a [i8],
    /// Per-block scale, already rounded to f16 precision (as ggml stores it).
    pub d: &'a [f32],
    /// Per-block `d * sum(qs)` rounded to f16 (ggml's Q8_1 `s`), used by Q4_1/Q5_1.
    pub s: &'a [f32],
    /// Per-block exact integer `sum(qs)`.
    pub isum: &'a [i32],
    /// Interleaved `[d, s]` per block (SIMD kernels load two blocks' worth at once).
    pub ds: &'a [f32],
    /// Interleaved `[d, d * isum]` per block.
    pub di: &'a [f32],
}

/// An activation vector quantized to 256-element Q8_K blocks.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Q8KView<'a> {
    pub qs: &'a [i8],
    /// Per-super-block f32 scale.
    pub d: &'a [f32],
    /// Per-16 sums of `qs`.
    pub bsums: &'a [i16],
    /// Per-32 sums of `qs` (adjacent `bsums` pairs added), for the Q4_K/Q5_K min terms.
    pub bsums2: &'a [i16],
}

/// Owned, reusable activation buffers (grow-only; no allocation once warm).
#[derive(Default, Debug, Clone)]
pub(crate) struct ActBuf {
    qs: Vec<i8>,
    d: Vec<f32>,
    s: Vec<f32>,
    isum: Vec<i32>,
    ds: Vec<f32>,
    di: Vec<f32>,
    bsums: Vec<i16>,
    bsums2: Vec<i16>,
}

impl ActBuf {
    /// Quantizes `x` (length a multiple of 32) into Q8 32-blocks, exactly like ggml-cpu's x86 and
    /// ARM `quantize_row_q8_0/q8_1`: `d = amax / 127`, `q = round_ties_even(x * (127 / amax))`.
    /// Large inputs (prefill batches) are split across the rayon pool.
    pub fn quantize_q8(&mut self, x: &[f32]) {
        let nb = x.len() / 32;
        self.qs.resize(x.len(), 0);
        self.d.resize(nb, 0.0);
        self.s.resize(nb, 0.0);
        self.isum.resize(nb, 0);
        let (qs, d, s, isum) = (
            &mut self.qs[..],
            &mut self.d[..],
            &mut self.s[..],
            &mut self.isum[..],
        );
        const CH: usize = 256; // blocks per parallel task
        if nb >= 4 * CH && rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            x.par_chunks(CH * 32)
                .zip(qs.par_chunks_mut(CH * 32))
                .zip(d.par_chunks_mut(CH))
                .zip(s.par_chunks_mut(CH))
                .zip(isum.par_chunks_mut(CH))
                .for_each(|((((x, q), d), s), i)| q8_blocks(x, q, d, s, i));
        } else {
            q8_blocks(x, qs, d, s, isum);
        }
        self.interleave();
    }

    /// Fills `ds` / `di` from `d`, `s`, `isum`.
    fn interleave(&mut self) {
        let nb = self.d.len();
        self.ds.resize(2 * nb, 0.0);
        self.di.resize(2 * nb, 0.0);
        for b in 0..nb {
            self.ds[2 * b] = self.d[b];
            self.ds[2 * b + 1] = self.s[b];
            self.di[2 * b] = self.d[b];
            self.di[2 * b + 1] = self.d[b] * self.isum[b] as f32;
        }
    }

    /// Loads externally quantized Q8 blocks (tests: ggml's own activation bytes).
    #[cfg(test)]
    pub fn set_q8(&mut self, qs: &[i8], d: &[f32], s: &[f32], isum: &[i32]) {
        self.qs = qs.to_vec();
        self.d = d.to_vec();
        self.s = s.to_vec();
        self.isum = isum.to_vec();
        self.interleave();
    }

    /// Quantizes `x` (length a multiple of 256) into Q8_K super-blocks.
    pub fn quantize_q8k(&mut self, x: &[f32]) {
        let nb = x.len() / QK_K;
        self.qs.resize(x.len(), 0);
        self.d.resize(nb, 0.0);
        self.bsums.resize(nb * 16, 0);
        for (b, (xs, qs)) in x
            .chunks_exact(QK_K)
            .zip(self.qs.chunks_exact_mut(QK_K))
            .enumerate()
        {
            let (mut amax, mut max) = (0.0f32, 0.0f32);
            for &v in xs {
                if v.abs() > amax {
                    amax = v.abs();
                    max = v;
                }
            }
            if amax == 0.0 {
                qs.fill(0);
                self.d[b] = 0.0;
                self.bsums[16 * b..16 * b + 16].fill(0);
                continue;
            }
            let iscale = -127.0 / max;
            for (q, &v) in qs.iter_mut().zip(xs) {
                *q = nearest_int(iscale * v).min(127) as i8;
            }
            for (j, g) in qs.chunks_exact(16).enumerate() {
                self.bsums[16 * b + j] = g.iter().map(|&q| q as i16).sum();
            }
            self.d[b] = 1.0 / iscale;
        }
        self.bsums2.resize(nb * 8, 0);
        for (o, p) in self.bsums2.iter_mut().zip(self.bsums.chunks_exact(2)) {
            *o = p[0] + p[1];
        }
    }

    pub fn q8(&self) -> Q8View<'_> {
        Q8View {
            qs: &self.qs,
            d: &self.d,
            s: &self.s,
            isum: &self.isum,
            ds: &self.ds,
            di: &self.di,
        }
    }

    pub fn q8k(&self) -> Q8KView<'_> {
        Q8KView {
            qs: &self.qs,
            d: &self.d,
            bsums: &self.bsums,
            bsums2: &self.bsums2,
        }
    }
}

/// Quantizes whole 32-blocks (all slices consistent: `x.len() == qs.len() == 32 * d.len()`).
fn q8_blocks(x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32], isum: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if x86_level() >= 2 {
        // SAFETY: level 2 means avx512f/bw/vl were detected at run time.
        unsafe { avx512::q8_blocks(x, qs, d, s, isum) };
        return;
    }
    for (b, (xs, q)) in x.chunks_exact(32).zip(qs.chunks_exact_mut(32)).enumerate() {
        let amax = xs.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
        let db = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in q.iter_mut().zip(xs) {
            let r = (v * id).round_ties_even() as i8;
            *q = r;
            sum += r as i32;
        }
        d[b] = round_f16(db);
        s[b] = round_f16(db * sum as f32);
        isum[b] = sum;
    }
}

/// Rows × Q8 activation kernel.
pub(crate) type Q8RowsFn = fn(w: &[u8], row_bytes: usize, a: &Q8View<'_>, out: &mut [f32]);
/// Rows × Q8_K activation kernel.
pub(crate) type Q8KRowsFn = fn(w: &[u8], row_bytes: usize, a: &Q8KView<'_>, out: &mut [f32]);
/// Rows × f32 activation kernel (F32/F16/BF16 weights).
pub(crate) type F32RowsFn = fn(w: &[u8], row_bytes: usize, x: &[f32], out: &mut [f32]);

/// Which activation format a weight type is dotted against, with its kernel.
#[derive(Clone, Copy)]
pub(crate) enum RowKernel {
    Q8(Q8RowsFn),
    Q8K(Q8KRowsFn),
    F32(F32RowsFn),
}

/// The selected kernel set.
#[derive(Clone, Copy)]
pub(crate) struct Kernels {
    pub name: &'static str,
    pub q4_0: Q8RowsFn,
    pub q4_1: Q8RowsFn,
    pub q5_0: Q8RowsFn,
    pub q5_1: Q8RowsFn,
    pub q8_0: Q8RowsFn,
    pub q2_k: Q8KRowsFn,
    pub q3_k: Q8KRowsFn,
    pub q4_k: Q8KRowsFn,
    pub q5_k: Q8KRowsFn,
    pub q6_k: Q8KRowsFn,
    pub f32: F32RowsFn,
    pub f16: F32RowsFn,
    pub bf16: F32RowsFn,
}

impl Kernels {
    /// The kernel for weights of type `ty`; `None` for types without one (Q8_1, Q8_K).
    pub fn for_type(&self, ty: GgmlType) -> Option<RowKernel> {
        Some(match ty {
            GgmlType::Q4_0 => RowKernel::Q8(self.q4_0),
            GgmlType::Q4_1 => RowKernel::Q8(self.q4_1),
            GgmlType::Q5_0 => RowKernel::Q8(self.q5_0),
            GgmlType::Q5_1 => RowKernel::Q8(self.q5_1),
            GgmlType::Q8_0 => RowKernel::Q8(self.q8_0),
            GgmlType::Q2_K => RowKernel::Q8K(self.q2_k),
            GgmlType::Q3_K => RowKernel::Q8K(self.q3_k),
            GgmlType::Q4_K => RowKernel::Q8K(self.q4_k),
            GgmlType::Q5_K => RowKernel::Q8K(self.q5_k),
            GgmlType::Q6_K => RowKernel::Q8K(self.q6_k),
            GgmlType::F32 => RowKernel::F32(self.f32),
            GgmlType::F16 => RowKernel::F32(self.f16),
            GgmlType::BF16 => RowKernel::F32(self.bf16),
            GgmlType::Q8_1 | GgmlType::Q8_K => return None,
        })
    }
}

/// The portable reference kernel set.
pub(crate) fn scalar_kernels() -> Kernels {
    Kernels {
        name: "scalar",
        q4_0: scalar::q4_0,
        q4_1: scalar::q4_1,
        q5_0: scalar::q5_0,
        q5_1: scalar::q5_1,
        q8_0: scalar::q8_0,
        q2_k: scalar::q2_k,
        q3_k: scalar::q3_k,
        q4_k: scalar::q4_k,
        q5_k: scalar::q5_k,
        q6_k: scalar::q6_k,
        f32: scalar::f32,
        f16: scalar::f16,
        bf16: scalar::bf16,
    }
}

/// Every kernel set this CPU can run, best first (the last is always scalar). Tests use this to
/// check each SIMD path against the reference.
pub(crate) fn available_kernels() -> Vec<Kernels> {
    #[allow(unused_mut)]
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(k) = avx512::kernels() {
            v.push(k);
        }
        if let Some(k) = avx2::kernels_vnni() {
            v.push(k);
        }
        if let Some(k) = avx2::kernels() {
            v.push(k);
        }
    }
    #[cfg(target_arch = "aarch64")]
    if let Some(k) = neon::kernels() {
        v.push(k);
    }
    v.push(scalar_kernels());
    v
}

static KERNELS: OnceLock<Kernels> = OnceLock::new();

/// The process-wide kernel table (best available), chosen on first use.
pub(crate) fn kernels() -> &'static Kernels {
    KERNELS.get_or_init(|| {
        if std::env::var_os("LONGCTX_FORCE_SCALAR").is_some() {
            return scalar_kernels();
        }
        available_kernels()[0]
    })
}

/// Which SIMD path the kernels use: `"avx512-vnni"`, `"avx2-vnni"`, `"avx2"`, `"neon"` or
/// `"scalar"` (on aarch64, NEON covers Q4_0/Q4_1/Q5_0/Q5_1/Q8_0; the other types use the
/// portable kernels, which LLVM auto-vectorizes).
/// Setting the environment variable `LONGCTX_FORCE_SCALAR` before first use forces `"scalar"`.
pub fn kernel_name() -> &'static str {
    kernels().name
}

/// x86 SIMD level for multiversioned helper code: 0 none, 1 AVX2+FMA+F16C, 2 AVX-512 F/BW/VL.
#[cfg(target_arch = "x86_64")]
pub(crate) fn x86_level() -> u8 {
    static LEVEL: OnceLock<u8> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        let avx512 = avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl");
        if std::env::var_os("LONGCTX_FORCE_SCALAR").is_some() {
            0
        } else if avx512 {
            2
        } else if avx2 {
            1
        } else {
            0
        }
    })
}
