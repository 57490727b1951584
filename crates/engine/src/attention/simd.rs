//! Vectorised softmax pieces for attention: row maximum and a polynomial `exp` (Cephes-style,
//! ~1 ulp on the range used after max subtraction) instead of libm's scalar `expf`.

/// Below this `exp` underflows to the subnormals; we return exactly 0 so masked keys
/// (scores of −∞) get zero probability.
const EXP_LO: f32 = -87.336_55;
/// Keeps `2^n` a normal float (`n ≤ 127`).
const EXP_HI: f32 = 88.0;
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in a short high part (exact in `n · C1`) and the remainder.
const C1: f32 = 0.693_359_4;
const C2: f32 = -2.121_944_4e-4;
const P0: f32 = 1.987_569_1e-4;
const P1: f32 = 1.398_199_9e-3;
const P2: f32 = 8.333_452e-3;
const P3: f32 = 4.166_579_6e-2;
const P4: f32 = 1.666_666_5e-1;
const P5: f32 = 0.5;
/// 1.5 · 2²³: adding and subtracting it rounds to the nearest integer (ties to even).
const ROUND: f32 = 12_582_912.0;

/// Which instruction set the softmax helpers use, chosen once per `attend` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Simd {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Simd {
    pub(crate) fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Simd::Avx2;
            }
        }
        Simd::Portable
    }

    /// Largest element (−∞ for an empty or all −∞ slice).
    pub(crate) fn row_max(self, s: &[f32]) -> f32 {
        match self {
            // SAFETY: `Avx2` is only constructed after the features were detected.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { x86::row_max(s) },
            Simd::Portable => row_max_portable(s),
        }
    }

    /// `s[j] = exp(s[j] − m)`; returns the sum of the new values.
    pub(crate) fn exp_shift_sum(self, s: &mut [f32], m: f32) -> f32 {
        match self {
            // SAFETY: as in `row_max`.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { x86::exp_shift_sum(s, m) },
            Simd::Portable => exp_shift_sum_portable(s, m),
        }
    }

    /// In-place softmax; an all −∞ (fully masked) row becomes all zeros.
    pub(crate) fn softmax(self, s: &mut [f32]) {
        let m = self.row_max(s);
        if m == f32::NEG_INFINITY {
            s.fill(0.0);
            return;
        }
        let inv = 1.0 / self.exp_shift_sum(s, m);
        s.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Scalar polynomial `exp`, written so that loops over it auto-vectorise (NEON, SSE).
#[inline(always)]
pub(crate) fn exp_portable(x: f32) -> f32 {
    if x < EXP_LO {
        return 0.0;
    }
    let x = x.min(EXP_HI);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * C1;
    let r = r - n * C2;
    let mut y = P0;
    y = y * r + P1;
    y = y * r + P2;
    y = y * r + P3;
    y = y * r + P4;
    y = y * r + P5;
    let y = y * (r * r) + (r + 1.0);
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
fn row_max_portable(s: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            if v > *a {
                *a = v;
            }
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &v in acc.iter().chain(chunks.remainder()) {
        if v > m {
            m = v;
        }
    }
    m
}

#[inline(always)]
fn exp_shift_sum_portable(s: &mut [f32], m: f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = s.chunks_exact_mut(8);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
            *v = exp_portable(*v - m);
            *a += *v;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for v in chunks.into_remainder() {
        *v = exp_portable(*v - m);
        sum += *v;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    /// Eight `exp`s at once; the same polynomial as [`exp_portable`], with FMA.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp8(x: __m256) -> __m256 {
        let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_LO));
        let x = _mm256_min_ps(x, _mm256_set1_ps(EXP_HI));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C1), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C2), r);
        let mut y = _mm256_set1_ps(P0);
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P1));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P2));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P3));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P4));
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(P5));
        let y = _mm256_fmadd_ps(
            y,
            _mm256_mul_ps(r, r),
            _mm256_add_ps(r, _mm256_set1_ps(1.0)),
        );
        // `under` lanes may hold any n; they are zeroed below, so the shift may wrap.
        let pow = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        )));
        _mm256_andnot_ps(under, _mm256_mul_ps(y, pow))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn row_max(s: &[f32]) -> f32 {
        // SAFETY: callers uphold this unsafe fn's contract: `Simd::Avx2` exists only after avx2 and
        // fma were detected, and every load and store below stays within the slice it was given.
        unsafe {
            let mut acc = _mm256_set1_ps(f32::NEG_INFINITY);
            let mut chunks = s.chunks_exact(8);
            for c in &mut chunks {
                acc = _mm256_max_ps(acc, _mm256_loadu_ps(c.as_ptr()));
            }
            let mut lanes = [0.0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
            let mut m = f32::NEG_INFINITY;
            for &v in lanes.iter().chain(chunks.remainder()) {
                if v > m {
                    m = v;
                }
            }
            m
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_shift_sum(s: &mut [f32], m: f32) -> f32 {
        // SAFETY: callers uphold this unsafe fn's contract: `Simd::Avx2` exists only after avx2 and
        // fma were detected, and every load and store below stays within the slice it was given.
        unsafe {
            let mv = _mm256_set1_ps(m);
            let mut acc = _mm256_setzero_ps();
            let mut chunks = s.chunks_exact_mut(8);
            for c in &mut chunks {
                let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), mv));
                _mm256_storeu_ps(c.as_mut_ptr(), e);
                acc = _mm256_add_ps(acc, e);
            }
            let mut sum = hsum(acc);
            for v in chunks.into_remainder() {
                *v = exp_portable(*v - m);
                sum += *v;
            }
            sum
        }
    }

    #[cfg(test)]
    pub(super) fn exp8_slice(x: &[f32; 8]) -> [f32; 8] {
        let mut out = [0.0f32; 8];
        // SAFETY: callers check the features first.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), exp8(_mm256_loadu_ps(x.as_ptr()))) };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: impl Fn(f32) -> f32) {
        let mut worst = 0.0f64;
        let mut x = -90.0f32;
        while x <= 0.0 {
            let want = (x as f64).exp();
            let got = f(x) as f64;
            if want > 1e-37 {
                worst = worst.max(((got - want) / want).abs());
            } else {
                // Underflow: zero or a subnormal-sized value is fine here.
                assert!((got - want).abs() < 1e-37, "exp({x}) = {got}");
            }
            x += 0.001_37;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(f(f32::NEG_INFINITY), 0.0);
        assert_eq!(f(0.0), 1.0);
    }

    #[test]
    fn polynomial_exp_is_accurate_after_max_subtraction() {
        check(exp_portable);
        #[cfg(target_arch = "x86_64")]
        if Simd::detect() == Simd::Avx2 {
            check(|x| x86::exp8_slice(&[x; 8])[3]);
        }
    }

    #[test]
    fn softmax_helpers_agree_across_instruction_sets() {
        let mut seed = 5u32;
        let row: Vec<f32> = (0..37)
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if i % 7 == 3 {
                    f32::NEG_INFINITY
                } else {
                    (seed >> 8) as f32 / (1u32 << 24) as f32 * 20.0 - 10.0
                }
            })
            .collect();
        let mut want: Vec<f64> = row.iter().map(|&x| x as f64).collect();
        let m = want.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = want.iter().map(|x| (x - m).exp()).sum();
        want.iter_mut().for_each(|x| *x = (*x - m).exp() / z);
        for simd in [Simd::Portable, Simd::detect()] {
            assert_eq!(simd.row_max(&row) as f64, m);
            let mut s = row.clone();
            simd.softmax(&mut s);
            for (a, b) in s.iter().zip(&want) {
                assert!((*a as f64 - b).abs() < 1e-7, "{a} vs {b}");
            }
            let mut masked = vec![f32::NEG_INFINITY; 11];
            simd.softmax(&mut masked);
            assert!(masked.iter().all(|&p| p == 0.0));
        }
    }
}
