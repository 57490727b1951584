//! f32 vector kernels of attention: scores of one query against consecutive keys,
//! probability-weighted sums of value rows, dot products, and the exact merge of two partial
//! softmaxes. Each picks its instruction set once per call.

/// Merges two partial attentions over disjoint key sets (each normalised within its set, with
/// its log-sum-exp) into the exact joint result; returns the joint log-sum-exp.
pub fn merge_partial(o_a: &mut [f32], lse_a: f32, o_b: &[f32], lse_b: f32) -> f32 {
    if lse_b == f32::NEG_INFINITY {
        return lse_a;
    }
    if lse_a == f32::NEG_INFINITY {
        o_a.copy_from_slice(o_b);
        return lse_b;
    }
    let m = lse_a.max(lse_b);
    let (ea, eb) = ((lse_a - m).exp(), (lse_b - m).exp());
    let wa = ea / (ea + eb);
    for (a, b) in o_a.iter_mut().zip(o_b) {
        *a = wa * *a + (1.0 - wa) * b;
    }
    m + (ea + eb).ln()
}

/// `out[j] = scale · ⟨q, k_j⟩` for consecutive keys of length `d`. The SIMD level is chosen
/// once per call, not once per key, so the inner loops inline and vectorize.
pub fn key_scores(q: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just checked.
            return unsafe { key_scores_avx2(q, keys, d, scale, out) };
        }
    }
    key_scores_portable(q, keys, d, scale, out)
}

#[inline(always)]
pub(super) fn key_scores_portable(q: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32]) {
    for (s, k) in out.iter_mut().zip(keys.chunks_exact(d)) {
        *s = dot_portable(q, k) * scale;
    }
}

/// Four keys per step with independent accumulators: one key at a time is a single FMA chain
/// plus a horizontal sum per key, latency-bound at several times this cost.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn key_scores_avx2(q: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32]) {
    // SAFETY: `key_scores` calls this only after detecting avx2 and fma. `n` is at most the
    // keys in `keys` and the slots in `out`, `d` is a multiple of 8 and `q` holds `d` floats, so
    // the four key rows (j + 4 <= n), the query loads (c < d) and the 4-float store stay in bounds.
    unsafe {
        use std::arch::x86_64::*;
        let n = out.len().min(keys.len() / d.max(1));
        if !d.is_multiple_of(8) || q.len() < d {
            return key_scores_portable(q, keys, d, scale, out);
        }
        let (qp, kp, op) = (q.as_ptr(), keys.as_ptr(), out.as_mut_ptr());
        let sc = _mm_set1_ps(scale);
        let mut j = 0;
        while j + 4 <= n {
            let k0 = kp.add(j * d);
            let (k1, k2, k3) = (k0.add(d), k0.add(2 * d), k0.add(3 * d));
            let mut a0 = _mm256_setzero_ps();
            let (mut a1, mut a2, mut a3) = (a0, a0, a0);
            let mut c = 0;
            while c < d {
                let qv = _mm256_loadu_ps(qp.add(c));
                a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0.add(c)), a0);
                a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1.add(c)), a1);
                a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2.add(c)), a2);
                a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3.add(c)), a3);
                c += 8;
            }
            // Lane sums of the four accumulators, in key order.
            let s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
            let r = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
            _mm_storeu_ps(op.add(j), _mm_mul_ps(r, sc));
            j += 4;
        }
        key_scores_portable(q, &keys[j * d..], d, scale, &mut out[j..n]);
    }
}

/// `o += Σ_j p_j · v_j` over consecutive value rows of length `d` (zero weights skipped).
pub fn weighted_sum(p: &[f32], values: &[f32], d: usize, o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just checked.
            return unsafe { weighted_sum_avx2(p, values, d, o) };
        }
    }
    weighted_sum_portable(p, values, d, o)
}

#[inline(always)]
pub(super) fn weighted_sum_portable(p: &[f32], values: &[f32], d: usize, o: &mut [f32]) {
    for (&pj, v) in p.iter().zip(values.chunks_exact(d)) {
        if pj != 0.0 {
            axpy_portable(pj, v, o);
        }
    }
}

/// The output kept in registers, 64 (or 32) columns at a time, while every value row streams
/// past: the plain loop reloads and stores `o` for each row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weighted_sum_avx2(p: &[f32], values: &[f32], d: usize, o: &mut [f32]) {
    // SAFETY: `weighted_sum` calls this only after detecting avx2 and fma; `o` holds `d` floats,
    // `d` is a multiple of 32 and only `n ≤ values.len() / d` weights are passed, which is what
    // `weighted_sum_cols_avx2` requires.
    unsafe {
        if o.len() < d || !d.is_multiple_of(32) {
            return weighted_sum_portable(p, values, d, o);
        }
        let n = p.len().min(values.len() / d);
        let mut c = 0;
        while c < d {
            if d - c >= 64 {
                weighted_sum_cols_avx2::<8>(&p[..n], values, d, c, o);
                c += 64;
            } else {
                weighted_sum_cols_avx2::<4>(&p[..n], values, d, c, o);
                c += 32;
            }
        }
    }
}

/// `o[c..c + 8·V] += Σ_j p_j · v_j[c..c + 8·V]` with `V` accumulators held in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn weighted_sum_cols_avx2<const V: usize>(
    p: &[f32],
    values: &[f32],
    d: usize,
    c: usize,
    o: &mut [f32],
) {
    // SAFETY: called from `weighted_sum_avx2` (avx2 and fma detected) with `c + 8·V ≤ d ≤ o.len()`
    // and `p.len() · d ≤ values.len()`, so every load and store below is in bounds.
    unsafe {
        use std::arch::x86_64::*;
        let out = o.as_mut_ptr().add(c);
        let mut acc = [_mm256_setzero_ps(); V];
        for (i, a) in acc.iter_mut().enumerate() {
            *a = _mm256_loadu_ps(out.add(8 * i));
        }
        for (j, &pj) in p.iter().enumerate() {
            if pj == 0.0 {
                continue;
            }
            let w = _mm256_set1_ps(pj);
            let v = values.as_ptr().add(j * d + c);
            for (i, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(w, _mm256_loadu_ps(v.add(8 * i)), *a);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(8 * i), *a);
        }
    }
}

/// f32 dot product; vectorizes through independent lanes.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just checked.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

/// `y += alpha * x`.
#[inline(always)]
fn axpy_portable(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}
