//! Portable reference dot kernels (ggml's `ggml_vec_dot_*_generic` semantics). Written with
//! fixed-size inner loops so LLVM can auto-vectorize them; they are also re-instantiated under
//! `#[target_feature]` by the x86 modules for the rarely used types.

use super::{Q8KView, Q8View};
use crate::quant::util::{
    bf16_to_f32, f16_to_f32, layout as L, rd_f16, rd_f32, unpack_scales_k4, unpack_scales_q3k,
};

/// Loops `dot` over the rows of `w`.
#[inline(always)]
pub(crate) fn rows<A: ?Sized>(
    w: &[u8],
    row_bytes: usize,
    a: &A,
    out: &mut [f32],
    dot: impl Fn(&[u8], &A) -> f32,
) {
    if row_bytes == 0 {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
        *o = dot(row, a);
    }
}

macro_rules! rows_fn {
    ($name:ident, $view:ty, $dot:ident) => {
        pub(crate) fn $name(w: &[u8], row_bytes: usize, a: &$view, out: &mut [f32]) {
            rows(w, row_bytes, a, out, |r, a| $dot(r, a));
        }
    };
}

rows_fn!(q4_0, Q8View<'_>, dot_q4_0);
rows_fn!(q4_1, Q8View<'_>, dot_q4_1);
rows_fn!(q5_0, Q8View<'_>, dot_q5_0);
rows_fn!(q5_1, Q8View<'_>, dot_q5_1);
rows_fn!(q8_0, Q8View<'_>, dot_q8_0);
rows_fn!(q2_k, Q8KView<'_>, dot_q2_k);
rows_fn!(q3_k, Q8KView<'_>, dot_q3_k);
rows_fn!(q4_k, Q8KView<'_>, dot_q4_k);
rows_fn!(q5_k, Q8KView<'_>, dot_q5_k);
rows_fn!(q6_k, Q8KView<'_>, dot_q6_k);
rows_fn!(f32, [f32], dot_f32);
rows_fn!(f16, [f32], dot_f16);
rows_fn!(bf16, [f32], dot_bf16);

#[inline(always)]
fn q8_block<'a>(a: &Q8View<'a>, b: usize) -> &'a [i8] {
    &a.qs[32 * b..32 * b + 32]
}

#[inline(always)]
pub(crate) fn dot_q4_0(row: &[u8], a: &Q8View<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q4_0).enumerate() {
        let qs = &blk[2..18];
        let y = q8_block(a, b);
        let mut sumi = 0i32;
        for j in 0..16 {
            sumi += ((qs[j] & 0xf) as i32 - 8) * y[j] as i32;
            sumi += ((qs[j] >> 4) as i32 - 8) * y[j + 16] as i32;
        }
        sumf += sumi as f32 * rd_f16(blk, 0) * a.d[b];
    }
    sumf
}

#[inline(always)]
pub(crate) fn dot_q4_1(row: &[u8], a: &Q8View<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q4_1).enumerate() {
        let qs = &blk[4..20];
        let y = q8_block(a, b);
        let mut sumi = 0i32;
        for j in 0..16 {
            sumi += (qs[j] & 0xf) as i32 * y[j] as i32;
            sumi += (qs[j] >> 4) as i32 * y[j + 16] as i32;
        }
        sumf += (rd_f16(blk, 0) * a.d[b]) * sumi as f32 + rd_f16(blk, 2) * a.s[b];
    }
    sumf
}

#[inline(always)]
fn q5_quants(qh: u32, qs: &[u8], j: usize) -> (i32, i32) {
    let h0 = ((qh >> j) << 4) & 0x10;
    let h1 = (qh >> (j + 12)) & 0x10;
    (
        ((qs[j] & 0xf) as u32 | h0) as i32,
        ((qs[j] >> 4) as u32 | h1) as i32,
    )
}

#[inline(always)]
pub(crate) fn dot_q5_0(row: &[u8], a: &Q8View<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q5_0).enumerate() {
        let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
        let qs = &blk[6..22];
        let y = q8_block(a, b);
        let mut sumi = 0i32;
        for j in 0..16 {
            let (v0, v1) = q5_quants(qh, qs, j);
            sumi += (v0 - 16) * y[j] as i32 + (v1 - 16) * y[j + 16] as i32;
        }
        sumf += sumi as f32 * rd_f16(blk, 0) * a.d[b];
    }
    sumf
}

#[inline(always)]
pub(crate) fn dot_q5_1(row: &[u8], a: &Q8View<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q5_1).enumerate() {
        let qh = u32::from_le_bytes([blk[4], blk[5], blk[6], blk[7]]);
        let qs = &blk[8..24];
        let y = q8_block(a, b);
        let mut sumi = 0i32;
        for j in 0..16 {
            let (v0, v1) = q5_quants(qh, qs, j);
            sumi += v0 * y[j] as i32 + v1 * y[j + 16] as i32;
        }
        sumf += (rd_f16(blk, 0) * a.d[b]) * sumi as f32 + rd_f16(blk, 2) * a.s[b];
    }
    sumf
}

#[inline(always)]
pub(crate) fn dot_q8_0(row: &[u8], a: &Q8View<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q8_0).enumerate() {
        let y = q8_block(a, b);
        let mut sumi = 0i32;
        for (&w, &x) in blk[2..34].iter().zip(y) {
            sumi += (w as i8) as i32 * x as i32;
        }
        sumf += sumi as f32 * rd_f16(blk, 0) * a.d[b];
    }
    sumf
}

#[inline(always)]
fn q8k_block<'a>(a: &'a Q8KView<'_>, b: usize) -> (&'a [i8], &'a [i16], f32) {
    (
        &a.qs[256 * b..256 * b + 256],
        &a.bsums[16 * b..16 * b + 16],
        a.d[b],
    )
}

#[inline(always)]
pub(crate) fn dot_q2_k(row: &[u8], a: &Q8KView<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q2_K).enumerate() {
        let (q8, bsums, dy) = q8k_block(a, b);
        let sc = &blk[0..16];
        let mut summs = 0i32;
        for j in 0..16 {
            summs += bsums[j] as i32 * (sc[j] >> 4) as i32;
        }
        let mut isum = 0i32;
        for half in 0..2 {
            let q2 = &blk[16 + 32 * half..48 + 32 * half];
            for j in 0..4 {
                let shift = 2 * j;
                for g in 0..2 {
                    let base = 128 * half + 32 * j + 16 * g;
                    let mut s = 0i32;
                    for l in 0..16 {
                        s += q8[base + l] as i32 * ((q2[16 * g + l] >> shift) & 3) as i32;
                    }
                    isum += (sc[8 * half + 2 * j + g] & 0xf) as i32 * s;
                }
            }
        }
        let dall = dy * rd_f16(blk, 80);
        let dmin = dy * rd_f16(blk, 82);
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

#[inline(always)]
pub(crate) fn dot_q3_k(row: &[u8], a: &Q8KView<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q3_K).enumerate() {
        let (q8, _, dy) = q8k_block(a, b);
        let hm = &blk[0..32];
        let scales = unpack_scales_q3k(&blk[96..108]);
        let mut isum = 0i32;
        for half in 0..2 {
            let q3 = &blk[32 + 32 * half..64 + 32 * half];
            for j in 0..4 {
                let shift = 2 * j;
                let m = 1u8 << (4 * half + j);
                for g in 0..2 {
                    let base = 128 * half + 32 * j + 16 * g;
                    let mut s = 0i32;
                    for l in 0..16 {
                        let i = 16 * g + l;
                        let v = ((q3[i] >> shift) & 3) as i32 - if hm[i] & m != 0 { 0 } else { 4 };
                        s += q8[base + l] as i32 * v;
                    }
                    isum += scales[8 * half + 2 * j + g] as i32 * s;
                }
            }
        }
        sumf += rd_f16(blk, 108) * dy * isum as f32;
    }
    sumf
}

#[inline(always)]
pub(crate) fn dot_q4_k(row: &[u8], a: &Q8KView<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q4_K).enumerate() {
        let (q8, bsums, dy) = q8k_block(a, b);
        let (sc, mn) = unpack_scales_k4(&blk[4..16]);
        let mut summ = 0i32;
        for j in 0..16 {
            summ += bsums[j] as i32 * mn[j / 2] as i32;
        }
        let mut isum = 0i32;
        for c in 0..4 {
            let q = &blk[16 + 32 * c..48 + 32 * c];
            let y = &q8[64 * c..64 * c + 64];
            let (mut s1, mut s2) = (0i32, 0i32);
            for l in 0..32 {
                s1 += (q[l] & 0xf) as i32 * y[l] as i32;
                s2 += (q[l] >> 4) as i32 * y[l + 32] as i32;
            }
            isum += sc[2 * c] as i32 * s1 + sc[2 * c + 1] as i32 * s2;
        }
        sumf += rd_f16(blk, 0) * dy * isum as f32 - rd_f16(blk, 2) * dy * summ as f32;
    }
    sumf
}

#[inline(always)]
pub(crate) fn dot_q5_k(row: &[u8], a: &Q8KView<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q5_K).enumerate() {
        let (q8, bsums, dy) = q8k_block(a, b);
        let (sc, mn) = unpack_scales_k4(&blk[4..16]);
        let qh = &blk[16..48];
        let mut summ = 0i32;
        for j in 0..16 {
            summ += bsums[j] as i32 * mn[j / 2] as i32;
        }
        let mut isum = 0i32;
        for c in 0..4 {
            let q = &blk[48 + 32 * c..80 + 32 * c];
            let y = &q8[64 * c..64 * c + 64];
            let (mut s1, mut s2) = (0i32, 0i32);
            for l in 0..32 {
                let h1 = (((qh[l] >> (2 * c)) & 1) << 4) as i32;
                let h2 = (((qh[l] >> (2 * c + 1)) & 1) << 4) as i32;
                s1 += ((q[l] & 0xf) as i32 + h1) * y[l] as i32;
                s2 += ((q[l] >> 4) as i32 + h2) * y[l + 32] as i32;
            }
            isum += sc[2 * c] as i32 * s1 + sc[2 * c + 1] as i32 * s2;
        }
        sumf += rd_f16(blk, 0) * dy * isum as f32 - rd_f16(blk, 2) * dy * summ as f32;
    }
    sumf
}

#[inline(always)]
pub(crate) fn dot_q6_k(row: &[u8], a: &Q8KView<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for (b, blk) in row.chunks_exact(L::Q6_K).enumerate() {
        let (q8, _, dy) = q8k_block(a, b);
        let mut isum = 0i32;
        for n in 0..2 {
            let ql = &blk[64 * n..64 * n + 64];
            let qh = &blk[128 + 32 * n..160 + 32 * n];
            let sc = &blk[192 + 8 * n..200 + 8 * n];
            let y = &q8[128 * n..128 * n + 128];
            let mut s = [0i32; 8];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                s[is] += q1 * y[l] as i32;
                s[is + 2] += q2 * y[l + 32] as i32;
                s[is + 4] += q3 * y[l + 64] as i32;
                s[is + 6] += q4 * y[l + 96] as i32;
            }
            for k in 0..8 {
                isum += (sc[k] as i8) as i32 * s[k];
            }
        }
        sumf += rd_f16(blk, 208) * dy * isum as f32;
    }
    sumf
}

#[inline(always)]
pub(crate) fn dot_f32(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (c, xs) in row.chunks_exact(32).zip(x.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += rd_f32(c, 4 * k) * xs[k];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    let done = row.len() / 32 * 8;
    for (c, &xv) in row[done * 4..].chunks_exact(4).zip(&x[done..]) {
        s += rd_f32(c, 0) * xv;
    }
    s
}

#[inline(always)]
pub(crate) fn dot_f16(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (c, xs) in row.chunks_exact(16).zip(x.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += f16_to_f32(u16::from_le_bytes([c[2 * k], c[2 * k + 1]])) * xs[k];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    let done = row.len() / 16 * 8;
    for (c, &xv) in row[done * 2..].chunks_exact(2).zip(&x[done..]) {
        s += f16_to_f32(u16::from_le_bytes([c[0], c[1]])) * xv;
    }
    s
}

#[inline(always)]
pub(crate) fn dot_bf16(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (c, xs) in row.chunks_exact(16).zip(x.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += bf16_to_f32(u16::from_le_bytes([c[2 * k], c[2 * k + 1]])) * xs[k];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    let done = row.len() / 16 * 8;
    for (c, &xv) in row[done * 2..].chunks_exact(2).zip(&x[done..]) {
        s += bf16_to_f32(u16::from_le_bytes([c[0], c[1]])) * xv;
    }
    s
}
