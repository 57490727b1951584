//! Dequantization of packed ggml rows to f32 (exact ggml semantics), plus a run-time
//! multiversioned fast path used by the prefill GEMM.

use super::util::{
    bf16_to_f32, f16_to_f32, layout as L, rd_f16, rd_f32, unpack_scales_k4, unpack_scales_q3k,
};
use super::{GgmlType, QuantError, QK_K};

/// Checks that `src` holds exactly one row of `n` elements of type `ty`.
pub(crate) fn check_row(ty: GgmlType, src_len: usize, n: usize) -> Result<(), QuantError> {
    let expected = ty.row_bytes(n).ok_or(QuantError::NotBlockMultiple {
        ty,
        n,
        block: ty.block_size(),
    })?;
    if src_len != expected {
        return Err(QuantError::Length {
            what: "packed row bytes",
            expected,
            got: src_len,
        });
    }
    Ok(())
}

/// Dequantizes one packed row of type `ty` into `dst` (`dst.len()` elements).
///
/// `src.len()` must equal `ty.row_bytes(dst.len())`. Supports every type in
/// [`GgmlType::ALL`] (Q8_1 and Q8_K included).
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError> {
    check_row(ty, src.len(), dst.len())?;
    deq_generic(ty, src, dst);
    Ok(())
}

/// Same as [`dequantize_row`] but compiled for the best available x86 SIMD level
/// (the loops auto-vectorize). Results are bit-identical to [`dequantize_row`].
pub(crate) fn dequantize_row_fast(
    ty: GgmlType,
    src: &[u8],
    dst: &mut [f32],
) -> Result<(), QuantError> {
    check_row(ty, src.len(), dst.len())?;
    #[cfg(target_arch = "x86_64")]
    {
        if super::dot::x86_level() >= 2 {
            // SAFETY: level >= 2 means avx512f/bw/vl were detected at run time.
            unsafe { deq_avx512(ty, src, dst) };
            return Ok(());
        }
        if super::dot::x86_level() >= 1 {
            // SAFETY: level >= 1 means avx2, fma and f16c were detected at run time.
            unsafe { deq_avx2(ty, src, dst) };
            return Ok(());
        }
    }
    deq_generic(ty, src, dst);
    Ok(())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn deq_avx2(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    deq_generic(ty, src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn deq_avx512(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    deq_generic(ty, src, dst)
}

/// Lengths already validated by the caller.
#[inline(always)]
fn deq_generic(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    match ty {
        GgmlType::F32 => {
            for (o, c) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *o = rd_f32(c, 0);
            }
        }
        GgmlType::F16 => {
            for (o, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = f16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        GgmlType::BF16 => {
            for (o, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        GgmlType::Q4_0 => blocks(src, dst, L::Q4_0, 32, deq_q4_0),
        GgmlType::Q4_1 => blocks(src, dst, L::Q4_1, 32, deq_q4_1),
        GgmlType::Q5_0 => blocks(src, dst, L::Q5_0, 32, deq_q5_0),
        GgmlType::Q5_1 => blocks(src, dst, L::Q5_1, 32, deq_q5_1),
        GgmlType::Q8_0 => blocks(src, dst, L::Q8_0, 32, deq_q8_0),
        GgmlType::Q8_1 => blocks(src, dst, L::Q8_1, 32, deq_q8_1),
        GgmlType::Q2_K => blocks(src, dst, L::Q2_K, QK_K, deq_q2_k),
        GgmlType::Q3_K => blocks(src, dst, L::Q3_K, QK_K, deq_q3_k),
        GgmlType::Q4_K => blocks(src, dst, L::Q4_K, QK_K, deq_q4_k),
        GgmlType::Q5_K => blocks(src, dst, L::Q5_K, QK_K, deq_q5_k),
        GgmlType::Q6_K => blocks(src, dst, L::Q6_K, QK_K, deq_q6_k),
        GgmlType::Q8_K => blocks(src, dst, L::Q8_K, QK_K, deq_q8_k),
    }
}

#[inline(always)]
fn blocks(src: &[u8], dst: &mut [f32], ts: usize, bs: usize, f: impl Fn(&[u8], &mut [f32])) {
    for (b, y) in src.chunks_exact(ts).zip(dst.chunks_exact_mut(bs)) {
        f(b, y);
    }
}

#[inline(always)]
fn deq_q4_0(b: &[u8], y: &mut [f32]) {
    let d = rd_f16(b, 0);
    let qs = &b[2..18];
    let (lo, hi) = y.split_at_mut(16);
    for j in 0..16 {
        lo[j] = ((qs[j] & 0xf) as i32 - 8) as f32 * d;
        hi[j] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

#[inline(always)]
fn deq_q4_1(b: &[u8], y: &mut [f32]) {
    let d = rd_f16(b, 0);
    let m = rd_f16(b, 2);
    let qs = &b[4..20];
    let (lo, hi) = y.split_at_mut(16);
    for j in 0..16 {
        lo[j] = (qs[j] & 0xf) as f32 * d + m;
        hi[j] = (qs[j] >> 4) as f32 * d + m;
    }
}

#[inline(always)]
fn deq_q5_0(b: &[u8], y: &mut [f32]) {
    let d = rd_f16(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    let (lo, hi) = y.split_at_mut(16);
    for j in 0..16 {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        lo[j] = (((qs[j] & 0xf) as u32 | h0) as i32 - 16) as f32 * d;
        hi[j] = (((qs[j] >> 4) as u32 | h1) as i32 - 16) as f32 * d;
    }
}

#[inline(always)]
fn deq_q5_1(b: &[u8], y: &mut [f32]) {
    let d = rd_f16(b, 0);
    let m = rd_f16(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    let (lo, hi) = y.split_at_mut(16);
    for j in 0..16 {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        lo[j] = ((qs[j] & 0xf) as u32 | h0) as f32 * d + m;
        hi[j] = ((qs[j] >> 4) as u32 | h1) as f32 * d + m;
    }
}

#[inline(always)]
fn deq_q8_0(b: &[u8], y: &mut [f32]) {
    let d = rd_f16(b, 0);
    for (o, &q) in y.iter_mut().zip(&b[2..34]) {
        *o = (q as i8) as f32 * d;
    }
}

#[inline(always)]
fn deq_q8_1(b: &[u8], y: &mut [f32]) {
    let d = rd_f16(b, 0);
    for (o, &q) in y.iter_mut().zip(&b[4..36]) {
        *o = (q as i8) as f32 * d;
    }
}

#[inline(always)]
fn deq_q2_k(b: &[u8], y: &mut [f32]) {
    let scales = &b[0..16];
    let d = rd_f16(b, 80);
    let dmin = rd_f16(b, 82);
    for half in 0..2 {
        let q = &b[16 + 32 * half..16 + 32 * half + 32];
        for j in 0..4 {
            let shift = 2 * j;
            for g in 0..2 {
                let sc = scales[half * 8 + j * 2 + g];
                let dl = d * (sc & 0xf) as f32;
                let ml = dmin * (sc >> 4) as f32;
                let out = &mut y[half * 128 + j * 32 + g * 16..][..16];
                for (l, o) in out.iter_mut().enumerate() {
                    *o = dl * ((q[g * 16 + l] >> shift) & 3) as f32 - ml;
                }
            }
        }
    }
}

#[inline(always)]
fn deq_q3_k(b: &[u8], y: &mut [f32]) {
    let hm = &b[0..32];
    let scales = unpack_scales_q3k(&b[96..108]);
    let d_all = rd_f16(b, 108);
    for half in 0..2 {
        let q = &b[32 + 32 * half..32 + 32 * half + 32];
        for j in 0..4 {
            let shift = 2 * j;
            let m = 1u8 << (half * 4 + j);
            for g in 0..2 {
                let dl = d_all * scales[half * 8 + j * 2 + g] as f32;
                let out = &mut y[half * 128 + j * 32 + g * 16..][..16];
                for (l, o) in out.iter_mut().enumerate() {
                    let i = g * 16 + l;
                    let v = ((q[i] >> shift) & 3) as i32 - if hm[i] & m != 0 { 0 } else { 4 };
                    *o = dl * v as f32;
                }
            }
        }
    }
}

#[inline(always)]
fn deq_q4_k(b: &[u8], y: &mut [f32]) {
    let d = rd_f16(b, 0);
    let dmin = rd_f16(b, 2);
    let (sc, mn) = unpack_scales_k4(&b[4..16]);
    for c in 0..4 {
        let q = &b[16 + 32 * c..16 + 32 * c + 32];
        let (d1, m1) = (d * sc[2 * c] as f32, dmin * mn[2 * c] as f32);
        let (d2, m2) = (d * sc[2 * c + 1] as f32, dmin * mn[2 * c + 1] as f32);
        let out = &mut y[64 * c..64 * c + 64];
        let (lo, hi) = out.split_at_mut(32);
        for l in 0..32 {
            lo[l] = d1 * (q[l] & 0xf) as f32 - m1;
            hi[l] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

#[inline(always)]
fn deq_q5_k(b: &[u8], y: &mut [f32]) {
    let d = rd_f16(b, 0);
    let dmin = rd_f16(b, 2);
    let (sc, mn) = unpack_scales_k4(&b[4..16]);
    let qh = &b[16..48];
    for c in 0..4 {
        let q = &b[48 + 32 * c..48 + 32 * c + 32];
        let (d1, m1) = (d * sc[2 * c] as f32, dmin * mn[2 * c] as f32);
        let (d2, m2) = (d * sc[2 * c + 1] as f32, dmin * mn[2 * c + 1] as f32);
        let u1 = 1u8 << (2 * c);
        let u2 = 2u8 << (2 * c);
        let out = &mut y[64 * c..64 * c + 64];
        let (lo, hi) = out.split_at_mut(32);
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            lo[l] = d1 * ((q[l] & 0xf) + h1) as f32 - m1;
            hi[l] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
        }
    }
}

#[inline(always)]
fn deq_q6_k(b: &[u8], y: &mut [f32]) {
    let d = rd_f16(b, 208);
    for n in 0..2 {
        let ql = &b[64 * n..64 * n + 64];
        let qh = &b[128 + 32 * n..128 + 32 * n + 32];
        let sc = &b[192 + 8 * n..192 + 8 * n + 8];
        let out = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            out[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            out[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            out[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            out[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[inline(always)]
fn deq_q8_k(b: &[u8], y: &mut [f32]) {
    let d = rd_f32(b, 0);
    for (o, &q) in y.iter_mut().zip(&b[4..260]) {
        *o = d * (q as i8) as f32;
    }
}
