//! AVX-512 (F/BW/VL) + VNNI row-dot kernels: two 32-element blocks per zmm with `vpdpbusd`
//! for the Q4/Q5/Q8 families, and `vpmaddubsw` + `vpdpwssd` for the k-quants.
//!
//! Long on purpose: one kernel family (every quant type at one instruction-set level) sharing
//! one set of load and unpack helpers; splitting it would only scatter those helpers.

use super::avx2::{check_q8, check_q8k, f16_1, f16_2, hsum_ps128, mins_dot, nibbles_32};
use super::scalar;
use super::{Kernels, Q8KView, Q8View};
use crate::quant::util::layout as L;
use std::arch::x86_64::*;

/// The AVX-512 VNNI kernel set, if this CPU has every feature it uses.
pub(super) fn kernels() -> Option<Kernels> {
    let ok = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    if !ok {
        return None;
    }
    Some(Kernels {
        name: "avx512-vnni",
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

macro_rules! kernel {
    ($name:ident, $view:ident, $check:ident, $row:ident, $ts:expr) => {
        fn $name(w: &[u8], rb: usize, a: &$view<'_>, out: &mut [f32]) {
            let nb = $check(w, rb, $ts, a, out.len());
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
            unsafe fn inner(w: *const u8, rb: usize, nb: usize, a: &$view<'_>, out: &mut [f32]) {
                // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were
                // detected before any kernel table reaching it was built, and its pointers cover
                // every block read below (row and activation lengths are checked on entry to the
                // kernel).
                unsafe {
                    for (r, o) in out.iter_mut().enumerate() {
                        *o = $row(w.add(r * rb), nb, a);
                    }
                }
            }
            // SAFETY: reachable only through the kernel table built after detecting every
            // feature enabled on `inner`; lengths were checked above.
            unsafe { inner(w.as_ptr(), rb, nb, a, out) }
        }
    };
}

kernel!(q4_0, Q8View, check_q8, row_q4_0, L::Q4_0);
kernel!(q4_1, Q8View, check_q8, row_q4_1, L::Q4_1);
kernel!(q5_0, Q8View, check_q8, row_q5_0, L::Q5_0);
kernel!(q5_1, Q8View, check_q8, row_q5_1, L::Q5_1);
kernel!(q8_0, Q8View, check_q8, row_q8_0, L::Q8_0);
kernel!(q4_k, Q8KView, check_q8k, row_q4_k, L::Q4_K);
kernel!(q5_k, Q8KView, check_q8k, row_q5_k, L::Q5_K);
kernel!(q6_k, Q8KView, check_q8k, row_q6_k, L::Q6_K);

// ---------------------------------------------------------------------------------------------
// helpers

/// Two blocks' 16 packed nibbles each -> 64 bytes `[lo0 | hi0 | lo1 | hi1]`.
#[inline(always)]
unsafe fn nibbles_64(p0: *const u8, p1: *const u8) -> __m512i {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let q0 = _mm_loadu_si128(p0 as *const __m128i);
        let q1 = _mm_loadu_si128(p1 as *const __m128i);
        let y = _mm512_castsi256_si512(_mm256_set_m128i(q1, q0));
        let z = _mm512_shuffle_i64x2::<0b01_01_00_00>(y, y);
        let z = _mm512_srlv_epi64(z, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
        _mm512_and_si512(z, _mm512_set1_epi8(0x0f))
    }
}

#[inline(always)]
unsafe fn load_y2(a: &Q8View<'_>, b: usize) -> __m512i {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { _mm512_loadu_si512(a.qs.as_ptr().add(32 * b) as *const __m512i) }
}

#[inline(always)]
unsafe fn load_y1(a: &Q8View<'_>, b: usize) -> __m256i {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { _mm256_loadu_si256(a.qs.as_ptr().add(32 * b) as *const __m256i) }
}

#[inline(always)]
unsafe fn hsum256(v: __m256) -> f32 {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe {
        hsum_ps128(_mm_add_ps(
            _mm256_castps256_ps128(v),
            _mm256_extractf128_ps(v, 1),
        ))
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
unsafe fn q5_bits_64(z: __m512i, qh0: u32, qh1: u32) -> __m512i {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe {
        let k: __mmask64 = qh0 as u64 | ((qh1 as u64) << 32);
        _mm512_mask_add_epi8(z, k, z, _mm512_set1_epi8(0x10))
    }
}

#[inline(always)]
unsafe fn q5_bits_32(y: __m256i, qh: u32) -> __m256i {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe { _mm256_mask_add_epi8(y, qh, y, _mm256_set1_epi8(0x10)) }
}

// ---------------------------------------------------------------------------------------------
// Q8-activation rows
//
// Two blocks per step. The per-block scale work is vectorized: the weight's f16 (d, m) pairs of
// both blocks are converted at once and multiplied by the activation's interleaved (d, s) or
// (d, d*isum) pairs, giving `[dd0, c0, dd1, c1]`; `dd` is spread over the 16 dot lanes with one
// permute and the `c` lanes are summed at the end (min / zero-point correction).

/// Lane indices spreading `[dd0, _, dd1, _]` to `[dd0 ×8, dd1 ×8]`.
#[inline(always)]
unsafe fn idx02() -> __m512i {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe { _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0) }
}

/// Weight f16 scales of two blocks `ts` bytes apart -> `[d0, m0, d1, m1]` (or with
/// `SINGLE`, `[d0, d0, d1, d1]` from one f16 each).
#[inline(always)]
unsafe fn wscales<const SINGLE: bool>(b0: *const u8, ts: usize) -> __m128 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        if SINGLE {
            let v = _mm_cvtsi32_si128(std::ptr::read_unaligned(b0 as *const u16) as i32);
            let v =
                _mm_insert_epi16::<1>(v, std::ptr::read_unaligned(b0.add(ts) as *const u16) as i32);
            let f = _mm_cvtph_ps(v);
            _mm_unpacklo_ps(f, f)
        } else {
            let v = _mm_cvtsi32_si128(std::ptr::read_unaligned(b0 as *const i32));
            let v = _mm_insert_epi32::<1>(v, std::ptr::read_unaligned(b0.add(ts) as *const i32));
            _mm_cvtph_ps(v)
        }
    }
}

/// Generic two-blocks-per-step row loop. `dot2(b0, b)` returns the i32 lanes of blocks b, b+1;
/// `dot1` the ymm lanes of a single tail block. `SINGLE`: weight has only `d` (no min).
/// `USE_DS`: pair with the activation's `[d, s]` (else `[d, d*isum]`). Returns
/// `sum(dd * dot) + cmul * sum(c)`.
#[inline(always)]
unsafe fn row_pairs<const TS: usize, const SINGLE: bool, const USE_DS: bool>(
    row: *const u8,
    nb: usize,
    a: &Q8View<'_>,
    cmul: f32,
    dot2: impl Fn(*const u8, usize) -> __m512i,
    dot1: impl Fn(*const u8, usize) -> __m256i,
) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let act = if USE_DS { a.ds.as_ptr() } else { a.di.as_ptr() };
        let idx = idx02();
        let mut acc0 = _mm512_setzero_ps();
        let mut acc1 = _mm512_setzero_ps();
        let mut cacc = _mm_setzero_ps();
        let mut b = 0;
        // Eight blocks per step: one gather + one conversion for all eight blocks' scales.
        let mut cacc8 = _mm512_setzero_ps();
        let ts = TS as i32;
        let offs = _mm256_setr_epi32(0, ts, 2 * ts, 3 * ts, 4 * ts, 5 * ts, 6 * ts, 7 * ts);
        while b + 8 <= nb {
            let b0 = row.add(b * TS);
            // In bounds: block b + 7 exists, and every block is at least 4 bytes long.
            let raw = _mm256_i32gather_epi32::<1>(b0 as *const i32, offs);
            let raw = if SINGLE {
                let lo = _mm256_and_si256(raw, _mm256_set1_epi32(0xffff));
                _mm256_or_si256(lo, _mm256_slli_epi32::<16>(lo))
            } else {
                raw
            };
            let p = _mm512_mul_ps(_mm512_cvtph_ps(raw), _mm512_loadu_ps(act.add(2 * b)));
            cacc8 = _mm512_add_ps(cacc8, p);
            for k in 0..4 {
                let dd = _mm512_permutexvar_ps(
                    _mm512_add_epi32(idx, _mm512_set1_epi32(4 * k as i32)),
                    p,
                );
                let d = _mm512_cvtepi32_ps(dot2(b0.add(2 * k * TS), b + 2 * k));
                if k % 2 == 0 {
                    acc0 = _mm512_fmadd_ps(d, dd, acc0);
                } else {
                    acc1 = _mm512_fmadd_ps(d, dd, acc1);
                }
            }
            b += 8;
        }
        macro_rules! step {
            ($acc:ident) => {{
                let b0 = row.add(b * TS);
                let p = _mm_mul_ps(wscales::<SINGLE>(b0, TS), _mm_loadu_ps(act.add(2 * b)));
                cacc = _mm_add_ps(cacc, p);
                let dd = _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(p));
                $acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot2(b0, b)), dd, $acc);
                b += 2;
            }};
        }
        while b + 4 <= nb {
            step!(acc0);
            step!(acc1);
        }
        if b + 2 <= nb {
            step!(acc0);
        }
        let mut sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
        let mut c = _mm_cvtss_f32(_mm_movehdup_ps(cacc))
            + _mm_cvtss_f32(_mm_movehl_ps(cacc, _mm_movehdup_ps(cacc)))
            + _mm512_mask_reduce_add_ps(0xaaaa, cacc8);
        if b < nb {
            let b0 = row.add(b * TS);
            let (wd, wm) = if SINGLE {
                (f16_1(b0), f16_1(b0))
            } else {
                f16_2(b0)
            };
            let (ad, ac) = (*act.add(2 * b), *act.add(2 * b + 1));
            sum += hsum256(_mm256_cvtepi32_ps(dot1(b0, b))) * (wd * ad);
            c += wm * ac;
        }
        sum + cmul * c
    }
}

#[inline(always)]
unsafe fn row_q4_0(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        row_pairs::<{ L::Q4_0 }, true, false>(
            row,
            nb,
            a,
            -8.0,
            |b0, b| {
                let wq = nibbles_64(b0.add(2), b0.add(L::Q4_0 + 2));
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, load_y2(a, b))
            },
            |b0, b| {
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles_32(b0.add(2)), load_y1(a, b))
            },
        )
    }
}

#[inline(always)]
unsafe fn row_q4_1(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        row_pairs::<{ L::Q4_1 }, false, true>(
            row,
            nb,
            a,
            1.0,
            |b0, b| {
                let wq = nibbles_64(b0.add(4), b0.add(L::Q4_1 + 4));
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, load_y2(a, b))
            },
            |b0, b| {
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles_32(b0.add(4)), load_y1(a, b))
            },
        )
    }
}

#[inline(always)]
unsafe fn row_q5_0(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        row_pairs::<{ L::Q5_0 }, true, false>(
            row,
            nb,
            a,
            -16.0,
            |b0, b| {
                let b1 = b0.add(L::Q5_0);
                let wq = q5_bits_64(
                    nibbles_64(b0.add(6), b1.add(6)),
                    rd_u32(b0.add(2)),
                    rd_u32(b1.add(2)),
                );
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, load_y2(a, b))
            },
            |b0, b| {
                let wq = q5_bits_32(nibbles_32(b0.add(6)), rd_u32(b0.add(2)));
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), wq, load_y1(a, b))
            },
        )
    }
}

#[inline(always)]
unsafe fn row_q5_1(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        row_pairs::<{ L::Q5_1 }, false, true>(
            row,
            nb,
            a,
            1.0,
            |b0, b| {
                let b1 = b0.add(L::Q5_1);
                let wq = q5_bits_64(
                    nibbles_64(b0.add(8), b1.add(8)),
                    rd_u32(b0.add(4)),
                    rd_u32(b1.add(4)),
                );
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, load_y2(a, b))
            },
            |b0, b| {
                let wq = q5_bits_32(nibbles_32(b0.add(8)), rd_u32(b0.add(4)));
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), wq, load_y1(a, b))
            },
        )
    }
}

#[inline(always)]
unsafe fn row_q8_0(row: *const u8, nb: usize, a: &Q8View<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        // (w + 128) as u8 times the activations, minus 128 * d * sum(activation quants) per block
        // (the c lanes): exact integer products with a single xor of preparation.
        row_pairs::<{ L::Q8_0 }, true, false>(
            row,
            nb,
            a,
            -128.0,
            |b0, b| {
                let w0 = _mm256_loadu_si256(b0.add(2) as *const __m256i);
                let w1 = _mm256_loadu_si256(b0.add(L::Q8_0 + 2) as *const __m256i);
                let wq = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(w0), w1);
                let u = _mm512_xor_si512(wq, _mm512_set1_epi8(-128));
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, load_y2(a, b))
            },
            |b0, b| {
                let wq = _mm256_loadu_si256(b0.add(2) as *const __m256i);
                let u = _mm256_xor_si256(wq, _mm256_set1_epi8(-128));
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, load_y1(a, b))
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// k-quant rows

/// Index vectors for `permutexvar_epi16`: lanes 0..16 take scale `2c`, lanes 16..32 `2c + 1`.
#[inline(always)]
unsafe fn k4_scale_idx(c: usize) -> __m512i {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe {
        _mm512_mask_blend_epi16(
            0xffff_0000,
            _mm512_set1_epi16(2 * c as i16),
            _mm512_set1_epi16(2 * c as i16 + 1),
        )
    }
}

#[inline(always)]
unsafe fn row_q4_k(row: *const u8, nb: usize, a: &Q8KView<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let m4 = _mm512_set1_epi8(0x0f);
        let nib_shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
        let mut acc = _mm512_setzero_ps();
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
            let sc16 =
                _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64(sc as *const __m128i)));
            let y = a.qs.as_ptr().add(256 * b);
            let mut sumi = _mm512_setzero_si512();
            for c in 0..4 {
                let q = _mm512_broadcast_i64x4(_mm256_loadu_si256(
                    blk.add(16 + 32 * c) as *const __m256i
                ));
                let q = _mm512_and_si512(_mm512_srlv_epi64(q, nib_shift), m4);
                let yv = _mm512_loadu_si512(y.add(64 * c) as *const __m512i);
                let scv = _mm512_permutexvar_epi16(k4_scale_idx(c), sc16);
                sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q, yv), scv);
            }
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(d * dy), acc);
        }
        _mm512_reduce_add_ps(acc) - hsum_ps128(accm)
    }
}

#[inline(always)]
unsafe fn row_q5_k(row: *const u8, nb: usize, a: &Q8KView<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let m4 = _mm512_set1_epi8(0x0f);
        let x10 = _mm512_set1_epi8(0x10);
        let nib_shift = _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0);
        let mut acc = _mm512_setzero_ps();
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
            let sc16 =
                _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64(sc as *const __m128i)));
            let qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(blk.add(16) as *const __m256i));
            let y = a.qs.as_ptr().add(256 * b);
            let mut sumi = _mm512_setzero_si512();
            for c in 0..4 {
                let q = _mm512_broadcast_i64x4(_mm256_loadu_si256(
                    blk.add(48 + 32 * c) as *const __m256i
                ));
                // High bit of sub-block 2c (2c + 1) is qh bit 2c (2c + 1): rotate it to bit 4
                // (rotation keeps every byte's bits inside the byte for these counts).
                let (r0, r1) = ((4 - 2 * c as i64) & 63, (3 - 2 * c as i64) & 63);
                let h = _mm512_and_si512(
                    _mm512_rolv_epi64(qh, _mm512_set_epi64(r1, r1, r1, r1, r0, r0, r0, r0)),
                    x10,
                );
                // (nibbles & 0x0f) | h in one ternary-logic op.
                let q = _mm512_ternarylogic_epi32::<0xEA>(_mm512_srlv_epi64(q, nib_shift), m4, h);
                let yv = _mm512_loadu_si512(y.add(64 * c) as *const __m512i);
                let scv = _mm512_permutexvar_epi16(k4_scale_idx(c), sc16);
                sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q, yv), scv);
            }
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(d * dy), acc);
        }
        _mm512_reduce_add_ps(acc) - hsum_ps128(accm)
    }
}

/// Index vector: four runs of 8 lanes taking scales `g0 .. g0 + 4`.
#[inline(always)]
unsafe fn q6_scale_idx(g0: i16) -> __m512i {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe {
        let v = _mm512_set1_epi16(g0);
        let v = _mm512_mask_add_epi16(v, 0xff00_ff00, v, _mm512_set1_epi16(1));
        _mm512_mask_add_epi16(v, 0xffff_0000, v, _mm512_set1_epi16(2))
    }
}

#[inline(always)]
unsafe fn row_q6_k(row: *const u8, nb: usize, a: &Q8KView<'_>) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let m4 = _mm512_set1_epi8(0x0f);
        let m30 = _mm512_set1_epi8(0x30);
        // High 2 bits of quarter k sit at bits 2k..2k+1 of qh; move them to bits 4..5.
        let hs01 = _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4); // shift left
        let hs23 = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0); // shift right
        let mut acc = _mm512_setzero_ps();
        for b in 0..nb {
            let blk = row.add(b * L::Q6_K);
            let dd = f16_1(blk.add(208)) * *a.d.get_unchecked(b);
            let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(blk.add(192) as *const __m128i));
            let bs = _mm256_loadu_si256(a.bsums.as_ptr().add(16 * b) as *const __m256i);
            let corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);
            let sc16 = _mm512_castsi256_si512(sc16);
            let mut sumi = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(corr));
            let y = a.qs.as_ptr().add(256 * b);
            for n in 0..2 {
                let ql = _mm512_loadu_si512(blk.add(64 * n) as *const __m512i);
                let qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(
                    blk.add(128 + 32 * n) as *const __m256i
                ));
                let h01 = _mm512_and_si512(_mm512_sllv_epi64(qh, hs01), m30);
                let h23 = _mm512_and_si512(_mm512_srlv_epi64(qh, hs23), m30);
                // (a & 0x0f) | b in one ternary-logic op: imm = (A & B) | C over (a, m4, h).
                let q01 = _mm512_ternarylogic_epi32::<0xEA>(ql, m4, h01);
                let q23 = _mm512_ternarylogic_epi32::<0xEA>(_mm512_srli_epi16::<4>(ql), m4, h23);
                let y01 = _mm512_loadu_si512(y.add(128 * n) as *const __m512i);
                let y23 = _mm512_loadu_si512(y.add(128 * n + 64) as *const __m512i);
                let s01 = _mm512_permutexvar_epi16(q6_scale_idx(8 * n as i16), sc16);
                let s23 = _mm512_permutexvar_epi16(q6_scale_idx(8 * n as i16 + 4), sc16);
                sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q01, y01), s01);
                sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q23, y23), s23);
            }
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(dd), acc);
        }
        _mm512_reduce_add_ps(acc)
    }
}

// Q2_K / Q3_K: the scalar reference compiled for AVX-512 (auto-vectorized).
fn q2_k(w: &[u8], rb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    unsafe fn inner(w: &[u8], rb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
        scalar::rows(w, rb, a, out, scalar::dot_q2_k)
    }
    // SAFETY: reachable only through the kernel table built after feature detection.
    unsafe { inner(w, rb, a, out) }
}
fn q3_k(w: &[u8], rb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    unsafe fn inner(w: &[u8], rb: usize, a: &Q8KView<'_>, out: &mut [f32]) {
        scalar::rows(w, rb, a, out, scalar::dot_q3_k)
    }
    // SAFETY: reachable only through the kernel table built after feature detection.
    unsafe { inner(w, rb, a, out) }
}

// ---------------------------------------------------------------------------------------------
// float weights × f32 activations

macro_rules! f_kernel {
    ($name:ident, $load:ident, $one:path, $esz:expr) => {
        fn $name(w: &[u8], rb: usize, x: &[f32], out: &mut [f32]) {
            let n = rb / $esz;
            assert!(
                rb % $esz == 0 && w.len() == out.len() * rb && x.len() >= n,
                "quant kernel called with inconsistent lengths"
            );
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
            unsafe fn inner(w: *const u8, rb: usize, n: usize, x: *const f32, out: &mut [f32]) {
                // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were
                // detected before any kernel table reaching it was built, and its pointers cover
                // every block read below (row and activation lengths are checked on entry to the
                // kernel).
                unsafe {
                    for (r, o) in out.iter_mut().enumerate() {
                        let w = w.add(r * rb);
                        let mut acc = [_mm512_setzero_ps(); 4];
                        let mut i = 0;
                        while i + 64 <= n {
                            for (k, a) in acc.iter_mut().enumerate() {
                                let wv = $load(w.add((i + 16 * k) * $esz));
                                *a = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x.add(i + 16 * k)), *a);
                            }
                            i += 64;
                        }
                        while i + 16 <= n {
                            let wv = $load(w.add(i * $esz));
                            acc[0] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x.add(i)), acc[0]);
                            i += 16;
                        }
                        let s = _mm512_add_ps(
                            _mm512_add_ps(acc[0], acc[1]),
                            _mm512_add_ps(acc[2], acc[3]),
                        );
                        let mut sum = _mm512_reduce_add_ps(s);
                        while i < n {
                            sum += $one(std::ptr::read_unaligned(w.add(i * $esz) as *const _))
                                * *x.add(i);
                            i += 1;
                        }
                        *o = sum;
                    }
                }
            }
            // SAFETY: reachable only through the kernel table built after feature detection;
            // lengths were checked above.
            unsafe { inner(w.as_ptr(), rb, n, x.as_ptr(), out) }
        }
    };
}

#[inline(always)]
unsafe fn load16_f32(p: *const u8) -> __m512 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { _mm512_loadu_ps(p as *const f32) }
}
#[inline(always)]
unsafe fn load16_f16(p: *const u8) -> __m512 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i)) }
}
#[inline(always)]
unsafe fn load16_bf16(p: *const u8) -> __m512 {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p as *const __m256i));
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(v))
    }
}
#[inline(always)]
fn id_f32(x: f32) -> f32 {
    x
}

f_kernel!(f32_rows, load16_f32, id_f32, 4);
f_kernel!(f16_rows, load16_f16, crate::quant::util::f16_to_f32, 2);
f_kernel!(bf16_rows, load16_bf16, crate::quant::util::bf16_to_f32, 2);

// ---------------------------------------------------------------------------------------------
// activation quantization (bit-identical to the scalar path in `dot::q8_blocks`)

/// Q8 32-block quantization of whole blocks. Slices must be consistent (caller guarantees).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn q8_blocks(
    x: &[f32],
    qs: &mut [i8],
    d: &mut [f32],
    s: &mut [f32],
    isum: &mut [i32],
) {
    // SAFETY: callers uphold this unsafe fn's contract: the CPU features it uses were detected
    // before any kernel table reaching it was built, and its pointers cover every block read below
    // (row and activation lengths are checked on entry to the kernel).
    unsafe {
        let nb = d.len();
        assert!(x.len() == nb * 32 && qs.len() == nb * 32 && s.len() == nb && isum.len() == nb);
        for b in 0..nb {
            let v0 = _mm512_loadu_ps(x.as_ptr().add(32 * b));
            let v1 = _mm512_loadu_ps(x.as_ptr().add(32 * b + 16));
            let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            let db = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let m = _mm512_set1_ps(id);
            const RN: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
            let i0 = _mm512_cvtps_epi32(_mm512_roundscale_ps::<RN>(_mm512_mul_ps(v0, m)));
            let i1 = _mm512_cvtps_epi32(_mm512_roundscale_ps::<RN>(_mm512_mul_ps(v1, m)));
            let sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            let q = qs.as_mut_ptr().add(32 * b) as *mut __m128i;
            _mm_storeu_si128(q, _mm512_cvtepi32_epi8(i0));
            _mm_storeu_si128(q.add(1), _mm512_cvtepi32_epi8(i1));
            d[b] = crate::quant::util::round_f16(db);
            s[b] = crate::quant::util::round_f16(db * sum as f32);
            isum[b] = sum;
        }
    }
}
