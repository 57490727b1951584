//! aarch64 NEON row-dot kernels for Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0, written with
//! baseline NEON only (`vmull_s8` / `vmlal_high_s8` / `vpadalq_s16`, no `dotprod`). Each block's
//! integer dot is exact, so results equal the scalar reference up to float summation order. The
//! other types use the portable kernels (auto-vectorized by LLVM for NEON).

use super::{Kernels, Q8View};
use crate::quant::util::{layout as L, rd_f16};
use std::arch::aarch64::*;

/// The NEON kernel set (NEON is part of the aarch64 baseline, but check anyway).
pub(super) fn kernels() -> Option<Kernels> {
    if !std::arch::is_aarch64_feature_detected!("neon") {
        return None;
    }
    Some(Kernels {
        name: "neon",
        q4_0,
        q4_1,
        q5_0,
        q5_1,
        q8_0,
        ..super::scalar_kernels()
    })
}

fn check(w: &[u8], rb: usize, ts: usize, a: &Q8View<'_>, rows: usize) -> usize {
    let nb = rb / ts;
    assert!(
        rb.is_multiple_of(ts)
            && w.len() == rows * rb
            && a.qs.len() >= nb * 32
            && a.d.len() >= nb
            && a.s.len() >= nb
            && a.isum.len() >= nb,
        "quant kernel called with inconsistent lengths"
    );
    nb
}

/// Exact i32 sum of `u[i] * y[i]` for 32 small values (-16 <= u <= 31) against i8 `y`.
#[inline(always)]
unsafe fn dot32_small(u0: int8x16_t, u1: int8x16_t, y: *const i8) -> i32 {
    let y0 = vld1q_s8(y);
    let y1 = vld1q_s8(y.add(16));
    // Each i16 lane collects 4 products of magnitude <= 31 * 127 (< 8192): no overflow.
    let mut p = vmull_s8(vget_low_s8(u0), vget_low_s8(y0));
    p = vmlal_high_s8(p, u0, y0);
    p = vmlal_s8(p, vget_low_s8(u1), vget_low_s8(y1));
    p = vmlal_high_s8(p, u1, y1);
    vaddvq_s32(vpaddlq_s16(p))
}

macro_rules! neon_kernel {
    ($name:ident, $ts:expr, $row:ident) => {
        fn $name(w: &[u8], rb: usize, a: &Q8View<'_>, out: &mut [f32]) {
            let nb = check(w, rb, $ts, a, out.len());
            for (r, o) in out.iter_mut().enumerate() {
                let row = &w[r * rb..(r + 1) * rb];
                // SAFETY: NEON is detected before this kernel set is built; every block
                // pointer stays inside `row` / `a.qs` (lengths checked above).
                *o = unsafe { $row(row, nb, a) };
            }
        }
    };
}

neon_kernel!(q4_0, L::Q4_0, row_q4_0);
neon_kernel!(q4_1, L::Q4_1, row_q4_1);
neon_kernel!(q8_0, L::Q8_0, row_q8_0);
neon_kernel!(q5_0, L::Q5_0, row_q5_0);
neon_kernel!(q5_1, L::Q5_1, row_q5_1);

/// Byte i of entry v is `((v >> i) & 1) << 4`: spreads 8 high bits to 8 bytes of 0x10 / 0.
const B2B: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut v = 0;
    while v < 256 {
        let mut i = 0;
        while i < 8 {
            if (v >> i) & 1 == 1 {
                t[v] |= 0x10 << (8 * i);
            }
            i += 1;
        }
        v += 1;
    }
    t
};

/// 5-bit quants of one Q5 block (`qh` bits, 16 packed nibbles at `qs`) as unsigned bytes.
#[inline(always)]
unsafe fn q5_quants(qh: u32, qs: *const u8) -> (uint8x16_t, uint8x16_t) {
    let b = qh.to_le_bytes();
    let h0 = vcombine_u8(
        vcreate_u8(B2B[b[0] as usize]),
        vcreate_u8(B2B[b[1] as usize]),
    );
    let h1 = vcombine_u8(
        vcreate_u8(B2B[b[2] as usize]),
        vcreate_u8(B2B[b[3] as usize]),
    );
    let q = vld1q_u8(qs);
    (
        vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0f)), h0),
        vorrq_u8(vshrq_n_u8::<4>(q), h1),
    )
}

unsafe fn row_q4_0(row: &[u8], nb: usize, a: &Q8View<'_>) -> f32 {
    let m4 = vdupq_n_u8(0x0f);
    let s8 = vdupq_n_s8(8);
    let mut sumf = 0.0f32;
    for b in 0..nb {
        let blk = &row[b * L::Q4_0..(b + 1) * L::Q4_0];
        let q = vld1q_u8(blk.as_ptr().add(2));
        let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), s8);
        let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(q)), s8);
        let sumi = dot32_small(lo, hi, a.qs.as_ptr().add(32 * b));
        sumf += sumi as f32 * rd_f16(blk, 0) * a.d[b];
    }
    sumf
}

unsafe fn row_q4_1(row: &[u8], nb: usize, a: &Q8View<'_>) -> f32 {
    let m4 = vdupq_n_u8(0x0f);
    let mut sumf = 0.0f32;
    for b in 0..nb {
        let blk = &row[b * L::Q4_1..(b + 1) * L::Q4_1];
        let q = vld1q_u8(blk.as_ptr().add(4));
        let lo = vreinterpretq_s8_u8(vandq_u8(q, m4));
        let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q));
        let sumi = dot32_small(lo, hi, a.qs.as_ptr().add(32 * b));
        sumf += (rd_f16(blk, 0) * a.d[b]) * sumi as f32 + rd_f16(blk, 2) * a.s[b];
    }
    sumf
}

unsafe fn row_q8_0(row: &[u8], nb: usize, a: &Q8View<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for b in 0..nb {
        let blk = &row[b * L::Q8_0..(b + 1) * L::Q8_0];
        let w0 = vld1q_s8(blk.as_ptr().add(2) as *const i8);
        let w1 = vld1q_s8(blk.as_ptr().add(18) as *const i8);
        let y = a.qs.as_ptr().add(32 * b);
        let y0 = vld1q_s8(y);
        let y1 = vld1q_s8(y.add(16));
        // Two products per i16 lane (|p| <= 128 * 127 each) cannot overflow; widen after that.
        let p0 = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(y0)), w0, y0);
        let p1 = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(y1)), w1, y1);
        let acc = vpadalq_s16(vpaddlq_s16(p0), p1);
        sumf += vaddvq_s32(acc) as f32 * rd_f16(blk, 0) * a.d[b];
    }
    sumf
}

unsafe fn row_q5_0(row: &[u8], nb: usize, a: &Q8View<'_>) -> f32 {
    let s16 = vdupq_n_s8(16);
    let mut sumf = 0.0f32;
    for b in 0..nb {
        let blk = &row[b * L::Q5_0..(b + 1) * L::Q5_0];
        let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
        let (lo, hi) = q5_quants(qh, blk.as_ptr().add(6));
        let lo = vsubq_s8(vreinterpretq_s8_u8(lo), s16);
        let hi = vsubq_s8(vreinterpretq_s8_u8(hi), s16);
        let sumi = dot32_small(lo, hi, a.qs.as_ptr().add(32 * b));
        sumf += sumi as f32 * rd_f16(blk, 0) * a.d[b];
    }
    sumf
}

unsafe fn row_q5_1(row: &[u8], nb: usize, a: &Q8View<'_>) -> f32 {
    let mut sumf = 0.0f32;
    for b in 0..nb {
        let blk = &row[b * L::Q5_1..(b + 1) * L::Q5_1];
        let qh = u32::from_le_bytes([blk[4], blk[5], blk[6], blk[7]]);
        let (lo, hi) = q5_quants(qh, blk.as_ptr().add(8));
        // 0..31 fits the small-value product bound: 4 * 31 * 127 < 32768.
        let sumi = dot32_small(
            vreinterpretq_s8_u8(lo),
            vreinterpretq_s8_u8(hi),
            a.qs.as_ptr().add(32 * b),
        );
        sumf += (rd_f16(blk, 0) * a.d[b]) * sumi as f32 + rd_f16(blk, 2) * a.s[b];
    }
    sumf
}
