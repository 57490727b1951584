//! AVX2 + FMA + F16C row-dot kernels, optionally using AVX-VNNI (`vpdpbusd` on ymm) for the
//! u8×i8 block products. Selected only after run-time feature detection.
//!
//! Long on purpose: one kernel family (every quant type at one instruction-set level) sharing
//! one set of load and unpack helpers; splitting it would only scatter those helpers.

use super::scalar;
use super::{Kernels, Q8KView, Q8View};
use crate::quant::util::layout as L;
use std::arch::x86_64::*;

/// u8 × i8 pairwise products summed into i32 lanes.
pub(crate) trait Dp {
    /// `acc + sum of four adjacent u[i]*s[i]` per i32 lane. `u` must stay below 128 for the
    /// `maddubs` implementation to never saturate when `|s| <= 127`... (nibbles, or |w| <= 128
    /// with the sign trick, which keeps each i16 pair sum within range).
    unsafe fn dp(acc: __m256i, u: __m256i, s: __m256i) -> __m256i;
}

/// Plain AVX2: `maddubs` to i16 pairs, then `madd` with ones.
pub(crate) struct Madd;
impl Dp for Madd {
    #[inline(always)]
    unsafe fn dp(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: register-only intrinsics; callers run this only where the CPU features
        // they need were detected.
        unsafe {
            let p = _mm256_maddubs_epi16(u, s);
            _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)))
        }
    }
}

/// AVX-VNNI (Alder Lake and later client cores).
pub(crate) struct AvxVnni;
impl Dp for AvxVnni {
    #[inline(always)]
    unsafe fn dp(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: register-only intrinsics; callers run this only where the CPU features
        // they need were detected.
        unsafe { _mm256_dpbusd_avx_epi32(acc, u, s) }
    }
}

fn detect() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// The AVX2 kernel set, if this CPU has AVX2, FMA and F16C.
pub(super) fn kernels() -> Option<Kernels> {
    if !detect() {
        return None;
    }
    Some(Kernels {
        name: "avx2",
        q4_0,
        q4_1,
        q5_0,
        q5_1,
        q8_0,
        q2_k,
        q3_k,
        q4_k,
        q5_k,
        q6_k,
        f32: f32_rows,
        f16: f16_rows,
        bf16: bf16_rows,
    })
}

/// The AVX2 kernel set with AVX-VNNI block products, if available.
pub(super) fn kernels_vnni() -> Option<Kernels> {
    if !detect() || !is_x86_feature_detected!("avxvnni") {
        return None;
    }
    Some(Kernels {
        name: "avx2-vnni",
        q4_0: q4_0_vnni,
        q4_1: q4_1_vnni,
        q5_0: q5_0_vnni,
        q5_1: q5_1_vnni,
        q8_0: q8_0_vnni,
        ..kernels()?
    })
}

// ---------------------------------------------------------------------------------------------
// shared helpers (inlined into the target_feature functions below)

#[inline(always)]
pub(super) unsafe fn hsum_ps(v: __m256) -> f32 {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

#[inline(always)]
pub(super) unsafe fn hsum_ps128(s: __m128) -> f32 {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe {
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

/// One f16 at `p` to f32.
#[inline(always)]
pub(super) unsafe fn f16_1(p: *const u8) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let bits = std::ptr::read_unaligned(p as *const u16);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }
}

/// Two consecutive f16 at `p` to f32.
#[inline(always)]
pub(super) unsafe fn f16_2(p: *const u8) -> (f32, f32) {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let bits = std::ptr::read_unaligned(p as *const i32);
        let v = _mm_cvtph_ps(_mm_cvtsi32_si128(bits));
        (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
    }
}

/// 16 packed nibbles -> 32 bytes `[low nibbles | high nibbles]` (ggml block element order).
#[inline(always)]
pub(super) unsafe fn nibbles_32(p: *const u8) -> __m256i {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let q = _mm_loadu_si128(p as *const __m128i);
        let m4 = _mm_set1_epi8(0x0f);
        let lo = _mm_and_si128(q, m4);
        let hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
        _mm256_set_m128i(hi, lo)
    }
}

/// Bit i of `x` -> 0xFF in byte i (i < 32), else 0.
#[inline(always)]
pub(crate) unsafe fn bytes_from_bits_32(x: u32) -> __m256i {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe {
        let shuf = _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        );
        let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), shuf);
        let bit_mask = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
        _mm256_cmpeq_epi8(_mm256_or_si256(bytes, bit_mask), _mm256_set1_epi64x(-1))
    }
}

#[inline(always)]
unsafe fn rd_u32(p: *const u8) -> u32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { std::ptr::read_unaligned(p as *const u32) }
}

#[inline(always)]
unsafe fn load_y(a: &Q8View<'_>, b: usize) -> __m256i {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { _mm256_loadu_si256(a.qs.as_ptr().add(32 * b) as *const __m256i) }
}

/// Validates a Q8-activation kernel call; returns blocks per row.
#[inline(always)]
pub(super) fn check_q8(w: &[u8], rb: usize, ts: usize, a: &Q8View<'_>, rows: usize) -> usize {
    let nb = rb / ts;
    assert!(
        rb.is_multiple_of(ts)
            && w.len() == rows * rb
            && a.qs.len() >= nb * 32
            && a.d.len() >= nb
            && a.s.len() >= nb
            && a.isum.len() >= nb
            && a.ds.len() >= 2 * nb
            && a.di.len() >= 2 * nb,
        "quant kernel called with inconsistent lengths"
    );
    nb
}

/// Validates a Q8_K-activation kernel call; returns super-blocks per row.
#[inline(always)]
pub(super) fn check_q8k(w: &[u8], rb: usize, ts: usize, a: &Q8KView<'_>, rows: usize) -> usize {
    let nb = rb / ts;
    assert!(
        rb.is_multiple_of(ts)
            && w.len() == rows * rb
            && a.qs.len() >= nb * 256
            && a.d.len() >= nb
            && a.bsums.len() >= nb * 16
            && a.bsums2.len() >= nb * 8,
        "quant kernel called with inconsistent lengths"
    );
    nb
}

// ---------------------------------------------------------------------------------------------
// Q8-activation kernels (32-element blocks)

macro_rules! q8_kernel {
    ($avx2:ident, $vnni:ident, $row:ident, $ts:expr) => {
        fn $avx2(w: &[u8], rb: usize, a: &Q8View<'_>, out: &mut [f32]) {
            let nb = check_q8(w, rb, $ts, a, out.len());
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn inner(w: *const u8, rb: usize, nb: usize, a: &Q8View<'_>, out: &mut [f32]) {
                // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were
                // detected before any kernel table reaching it was built, and its pointers cover
                // every block read below (row and activation lengths are checked on entry to the
                // kernel).
                unsafe {
                    for (r, o) in out.iter_mut().enumerate() {
                        *o = $row::<Madd>(w.add(r * rb), nb, a);
                    }
                }
            }
            // SAFETY: reachable only through the kernel table built after detecting
            // avx2/fma/f16c; lengths were checked above.
            unsafe { inner(w.as_ptr(), rb, nb, a, out) }
        }

        fn $vnni(w: &[u8], rb: usize, a: &Q8View<'_>, out: &mut [f32]) {
            let nb = check_q8(w, rb, $ts, a, out.len());
            #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
            unsafe fn inner(w: *const u8, rb: usize, nb: usize, a: &Q8View<'_>, out: &mut [f32]) {
                // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were
                // detected before any kernel table reaching it was built, and its pointers cover
                // every block read below (row and activation lengths are checked on entry to the
                // kernel).
                unsafe {
                    for (r, o) in out.iter_mut().enumerate() {
                        *o = $row::<AvxVnni>(w.add(r * rb), nb, a);
                    }
                }
            }
            // SAFETY: reachable only through the kernel table built after detecting
            // avx2/fma/f16c/avxvnni; lengths were checked above.
            unsafe { inner(w.as_ptr(), rb, nb, a, out) }
        }
    };
}

q8_kernel!(q4_0, q4_0_vnni, row_q4_0, L::Q4_0);
q8_kernel!(q4_1, q4_1_vnni, row_q4_1, L::Q4_1);
q8_kernel!(q5_0, q5_0_vnni, row_q5_0, L::Q5_0);
q8_kernel!(q5_1, q5_1_vnni, row_q5_1, L::Q5_1);
q8_kernel!(q8_0, q8_0_vnni, row_q8_0, L::Q8_0);

/// Generic per-block row loop with vectorized scales: the weight's f16 `(d, m)` (or `(d, d)`
/// when `SINGLE`) times the activation's interleaved `[d, s]` (`USE_DS`) or `[d, d*isum]` gives
/// `[dd, c]`; `dd` scales the block dot, the `c` lanes are summed and multiplied by `cmul`.
#[inline(always)]
unsafe fn row_blocks<const TS: usize, const SINGLE: bool, const USE_DS: bool>(
    row: *const u8,
    nb: usize,
    a: &Q8View<'_>,
    cmul: f32,
    dot: impl Fn(*const u8, usize) -> __m256i,
) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let act = if USE_DS { a.ds.as_ptr() } else { a.di.as_ptr() };
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut cacc = _mm_setzero_ps();
        for b in 0..nb {
            let b0 = row.add(b * TS);
            let w = if SINGLE {
                let v = _mm_cvtsi32_si128(std::ptr::read_unaligned(b0 as *const u16) as i32);
                _mm_cvtph_ps(_mm_shufflelo_epi16::<0>(v))
            } else {
                _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(
                    b0 as *const i32,
                )))
            };
            let av = _mm_castpd_ps(_mm_load_sd(act.add(2 * b) as *const f64));
            let p = _mm_mul_ps(w, av);
            cacc = _mm_add_ps(cacc, p);
            let k = b & 1;
            acc[k] = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(dot(b0, b)),
                _mm256_broadcastss_ps(p),
                acc[k],
            );
        }
        hsum_ps(_mm256_add_ps(acc[0], acc[1])) + cmul * _mm_cvtss_f32(_mm_movehdup_ps(cacc))
    }
}

#[inline(always)]
unsafe fn row_q4_0<D: Dp>(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        row_blocks::<{ L::Q4_0 }, true, false>(row, nb, a, -8.0, |b0, b| {
            D::dp(_mm256_setzero_si256(), nibbles_32(b0.add(2)), load_y(a, b))
        })
    }
}

#[inline(always)]
unsafe fn row_q4_1<D: Dp>(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        row_blocks::<{ L::Q4_1 }, false, true>(row, nb, a, 1.0, |b0, b| {
            D::dp(_mm256_setzero_si256(), nibbles_32(b0.add(4)), load_y(a, b))
        })
    }
}

#[inline(always)]
unsafe fn q5_weights(qh: u32, qs: *const u8) -> __m256i {
    // SAFETY: callers uphold this unsafe fn's contract: avx2 was detected and `qs` points at
    // the block's 16 bytes of nibbles (inside the row, checked on entry to the kernel).
    unsafe {
        let hb = _mm256_and_si256(bytes_from_bits_32(qh), _mm256_set1_epi8(0x10));
        _mm256_or_si256(nibbles_32(qs), hb)
    }
}

#[inline(always)]
unsafe fn row_q5_0<D: Dp>(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        row_blocks::<{ L::Q5_0 }, true, false>(row, nb, a, -16.0, |b0, b| {
            let wq = q5_weights(rd_u32(b0.add(2)), b0.add(6));
            D::dp(_mm256_setzero_si256(), wq, load_y(a, b))
        })
    }
}

#[inline(always)]
unsafe fn row_q5_1<D: Dp>(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        row_blocks::<{ L::Q5_1 }, false, true>(row, nb, a, 1.0, |b0, b| {
            let wq = q5_weights(rd_u32(b0.add(4)), b0.add(8));
            D::dp(_mm256_setzero_si256(), wq, load_y(a, b))
        })
    }
}

#[inline(always)]
unsafe fn row_q8_0<D: Dp>(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        row_blocks::<{ L::Q8_0 }, true, false>(row, nb, a, 0.0, |b0, b| {
            let wq = _mm256_loadu_si256(b0.add(2) as *const __m256i);
            // |w| as u8 times sign-transferred activations: exact, and no i16 saturation.
            let u = _mm256_sign_epi8(wq, wq);
            let s = _mm256_sign_epi8(load_y(a, b), wq);
            D::dp(_mm256_setzero_si256(), u, s)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Q8_K-activation kernels (k-quants)

macro_rules! q8k_kernel {
    ($name:ident, $inner:ident, $row:ident, $ts:expr) => {
        fn $name(w: &[u8], rb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
            let nb = check_q8k(w, rb, $ts, a, out.len());
            // SAFETY: reachable only through the kernel table built after detecting
            // avx2/fma/f16c; lengths were checked above.
            unsafe { $inner(w.as_ptr(), rb, nb, a, out) }
        }

        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $inner(w: *const u8, rb: usize, nb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
            // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were
            // detected before any kernel table reaching it was built, and its pointers cover every
            // block read below (row and activation lengths are checked on entry to the kernel).
            unsafe {
                for (r, o) in out.iter_mut().enumerate() {
                    *o = $row(w.add(r * rb), nb, a);
                }
            }
        }
    };
}

q8k_kernel!(q4_k, q4_k_inner, row_q4_k, L::Q4_K);
q8k_kernel!(q5_k, q5_k_inner, row_q5_k, L::Q5_K);
q8k_kernel!(q6_k, q6_k_inner, row_q6_k, L::Q6_K);

/// `sum_j bsums2[j] * mins[j]` as 4 i32 lanes (mins are the 8 bytes at `mins`, `bsums2` the
/// eight per-32 activation sums).
#[inline(always)]
pub(super) unsafe fn mins_dot(mins: *const u8, bsums2: *const i16) -> __m128i {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(mins as *const __m128i));
        _mm_madd_epi16(m16, _mm_loadu_si128(bsums2 as *const __m128i))
    }
}

#[inline(always)]
unsafe fn row_q4_k(row: *const u8, nb: usize, a: &Q8KView<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let mut acc = _mm256_setzero_ps();
        let mut accm = _mm_setzero_ps();
        for b in 0..nb {
            let blk = row.add(b * L::Q4_K);
            let dy = *a.d.get_unchecked(b);
            let (d, dmin) = f16_2(blk);
            let words = crate::quant::util::unpack_scales_k4_words(std::slice::from_raw_parts(
                blk.add(4),
                12,
            ));
            let sc = words.as_ptr() as *const u8;
            let md = mins_dot(sc.add(8), a.bsums2.as_ptr().add(8 * b));
            accm = _mm_fmadd_ps(_mm_cvtepi32_ps(md), _mm_set1_ps(dmin * dy), accm);
            let y = a.qs.as_ptr().add(256 * b);
            let mut sumi = _mm256_setzero_si256();
            for c in 0..4 {
                let q = _mm256_loadu_si256(blk.add(16 + 32 * c) as *const __m256i);
                let lo = _mm256_and_si256(q, m4);
                let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                let y0 = _mm256_loadu_si256(y.add(64 * c) as *const __m256i);
                let y1 = _mm256_loadu_si256(y.add(64 * c + 32) as *const __m256i);
                let p0 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(lo, y0),
                    _mm256_set1_epi16(*sc.add(2 * c) as i16),
                );
                let p1 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(hi, y1),
                    _mm256_set1_epi16(*sc.add(2 * c + 1) as i16),
                );
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d * dy), acc);
        }
        hsum_ps(acc) - hsum_ps128(accm)
    }
}

#[inline(always)]
unsafe fn row_q5_k(row: *const u8, nb: usize, a: &Q8KView<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let one = _mm256_set1_epi8(1);
        let mut acc = _mm256_setzero_ps();
        let mut accm = _mm_setzero_ps();
        for b in 0..nb {
            let blk = row.add(b * L::Q5_K);
            let dy = *a.d.get_unchecked(b);
            let (d, dmin) = f16_2(blk);
            let words = crate::quant::util::unpack_scales_k4_words(std::slice::from_raw_parts(
                blk.add(4),
                12,
            ));
            let sc = words.as_ptr() as *const u8;
            let md = mins_dot(sc.add(8), a.bsums2.as_ptr().add(8 * b));
            accm = _mm_fmadd_ps(_mm_cvtepi32_ps(md), _mm_set1_ps(dmin * dy), accm);
            let qh = _mm256_loadu_si256(blk.add(16) as *const __m256i);
            let y = a.qs.as_ptr().add(256 * b);
            let mut sumi = _mm256_setzero_si256();
            for c in 0..4 {
                let q = _mm256_loadu_si256(blk.add(48 + 32 * c) as *const __m256i);
                let s0 = _mm_cvtsi32_si128(2 * c as i32);
                let s1 = _mm_cvtsi32_si128(2 * c as i32 + 1);
                let h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, s0), one), 4);
                let h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, s1), one), 4);
                let lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
                let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
                let y0 = _mm256_loadu_si256(y.add(64 * c) as *const __m256i);
                let y1 = _mm256_loadu_si256(y.add(64 * c + 32) as *const __m256i);
                let p0 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(lo, y0),
                    _mm256_set1_epi16(*sc.add(2 * c) as i16),
                );
                let p1 = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(hi, y1),
                    _mm256_set1_epi16(*sc.add(2 * c + 1) as i16),
                );
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d * dy), acc);
        }
        hsum_ps(acc) - hsum_ps128(accm)
    }
}

/// Shuffle masks picking scale bytes `[g ×8, g+1 ×8]` for g = 0, 2, .., 14.
const Q6_SCALE_SHUF: [[u8; 16]; 8] = {
    let mut t = [[0u8; 16]; 8];
    let mut i = 0;
    while i < 8 {
        let mut j = 0;
        while j < 16 {
            t[i][j] = (2 * i + j / 8) as u8;
            j += 1;
        }
        i += 1;
    }
    t
};

#[inline(always)]
unsafe fn row_q6_k(row: *const u8, nb: usize, a: &Q8KView<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let m3 = _mm256_set1_epi8(3);
        let mut acc = _mm256_setzero_ps();
        for b in 0..nb {
            let blk = row.add(b * L::Q6_K);
            let dd = f16_1(blk.add(208)) * *a.d.get_unchecked(b);
            let sc8 = _mm_loadu_si128(blk.add(192) as *const __m128i);
            let bs = _mm256_loadu_si256(a.bsums.as_ptr().add(16 * b) as *const __m256i);
            // -32 offset of every quant, applied once per super-block through the bsums.
            let corr = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), bs);
            let mut sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
            let y = a.qs.as_ptr().add(256 * b);
            for n in 0..2 {
                let ql0 = _mm256_loadu_si256(blk.add(64 * n) as *const __m256i);
                let ql1 = _mm256_loadu_si256(blk.add(64 * n + 32) as *const __m256i);
                let qh = _mm256_loadu_si256(blk.add(128 + 32 * n) as *const __m256i);
                for k in 0..4 {
                    let ql = if k & 1 == 0 { ql0 } else { ql1 };
                    let nib = if k < 2 {
                        _mm256_and_si256(ql, m4)
                    } else {
                        _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4)
                    };
                    let h =
                        _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k as i32)), m3);
                    let q = _mm256_or_si256(nib, _mm256_slli_epi16(h, 4));
                    let yv = _mm256_loadu_si256(y.add(128 * n + 32 * k) as *const __m256i);
                    let shuf = _mm_loadu_si128(Q6_SCALE_SHUF[4 * n + k].as_ptr() as *const __m128i);
                    let scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, shuf));
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, yv), scv);
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(dd), acc);
        }
        hsum_ps(acc)
    }
}

// Q2_K / Q3_K: the scalar reference compiled for AVX2 (auto-vectorized).
fn q2_k(w: &[u8], rb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
    // SAFETY: reachable only through the kernel table built after detecting avx2/fma/f16c.
    unsafe { q2_k_inner(w, rb, a, out) }
}
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q2_k_inner(w: &[u8], rb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
    scalar::rows(w, rb, a, out, scalar::dot_q2_k)
}
fn q3_k(w: &[u8], rb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
    // SAFETY: as for q2_k.
    unsafe { q3_k_inner(w, rb, a, out) }
}
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q3_k_inner(w: &[u8], rb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
    scalar::rows(w, rb, a, out, scalar::dot_q3_k)
}

// ---------------------------------------------------------------------------------------------
// float weights × f32 activations

macro_rules! f_kernel {
    ($name:ident, $inner:ident, $row:ident, $esz:expr) => {
        fn $name(w: &[u8], rb: usize, x: &[f32], out: &mut [f32]) {
            let n = rb / $esz;
            assert!(
                rb % $esz == 0 && w.len() == out.len() * rb && x.len() >= n,
                "quant kernel called with inconsistent lengths"
            );
            // SAFETY: reachable only through the kernel table built after detecting
            // avx2/fma/f16c; lengths were checked above.
            unsafe { $inner(w.as_ptr(), rb, n, x.as_ptr(), out) }
        }

        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $inner(w: *const u8, rb: usize, n: usize, x: *const f32, out: &mut [f32]) {
            // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were
            // detected before any kernel table reaching it was built, and its pointers cover every
            // block read below (row and activation lengths are checked on entry to the kernel).
            unsafe {
                for (r, o) in out.iter_mut().enumerate() {
                    *o = $row(w.add(r * rb), n, x);
                }
            }
        }
    };
}

f_kernel!(f32_rows, f32_inner, row_f32, 4);
f_kernel!(f16_rows, f16_inner, row_f16, 2);
f_kernel!(bf16_rows, bf16_inner, row_bf16, 2);

#[inline(always)]
unsafe fn load8_f32(p: *const u8) -> __m256 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { _mm256_loadu_ps(p as *const f32) }
}
#[inline(always)]
unsafe fn load8_f16(p: *const u8) -> __m256 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)) }
}
#[inline(always)]
unsafe fn load8_bf16(p: *const u8) -> __m256 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(p as *const __m128i));
        _mm256_castsi256_ps(_mm256_slli_epi32(v, 16))
    }
}

macro_rules! f_row {
    ($row:ident, $load:ident, $esz:expr, $conv:expr) => {
        #[inline(always)]
        unsafe fn $row(w: *const u8, n: usize, x: *const f32) -> f32 {
            // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were
            // detected before any kernel table reaching it was built, and its pointers cover every
            // block read below (row and activation lengths are checked on entry to the kernel).
            unsafe {
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                while i + 32 <= n {
                    for (k, a) in acc.iter_mut().enumerate() {
                        let wv = $load(w.add((i + 8 * k) * $esz));
                        *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x.add(i + 8 * k)), *a);
                    }
                    i += 32;
                }
                while i + 8 <= n {
                    acc[0] =
                        _mm256_fmadd_ps($load(w.add(i * $esz)), _mm256_loadu_ps(x.add(i)), acc[0]);
                    i += 8;
                }
                let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
                let mut sum = hsum_ps(s);
                while i < n {
                    sum += $conv(w.add(i * $esz)) * *x.add(i);
                    i += 1;
                }
                sum
            }
        }
    };
}

#[inline(always)]
unsafe fn one_f32(p: *const u8) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { std::ptr::read_unaligned(p as *const f32) }
}
#[inline(always)]
unsafe fn one_f16(p: *const u8) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { crate::quant::util::f16_to_f32(std::ptr::read_unaligned(p as *const u16)) }
}
#[inline(always)]
unsafe fn one_bf16(p: *const u8) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { crate::quant::util::bf16_to_f32(std::ptr::read_unaligned(p as *const u16)) }
}

f_row!(row_f32, load8_f32, 4, one_f32);
f_row!(row_f16, load8_f16, 2, one_f16);
f_row!(row_bf16, load8_bf16, 2, one_bf16);
