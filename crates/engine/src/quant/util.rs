//! Small shared helpers: half-precision conversions, little-endian field readers, block layouts.

/// IEEE half -> f32 (exact; subnormals, inf and NaN handled).
#[inline(always)]
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    // Portable exact conversion. Not using `half` here keeps this inlinable inside
    // `#[target_feature]` functions without a per-call CPU feature check.
    let sign = ((bits as u32) & 0x8000) << 16;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let man = (bits & 0x3ff) as u32;
    let out = if exp == 0 {
        if man == 0 {
            sign
        } else {
            // subnormal: man * 2^-24
            let v = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
    } else if exp == 0x1f {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 112) << 23) | (man << 13)
    };
    f32::from_bits(out)
}

/// f32 -> IEEE half, round to nearest even (same as ggml's `GGML_FP32_TO_FP16`).
#[inline]
pub(crate) fn f32_to_f16(x: f32) -> u16 {
    half::f16::from_f32(x).to_bits()
}

/// Rounds an f32 to the nearest representable half and back (what storing into an f16 field does).
#[inline]
pub(crate) fn round_f16(x: f32) -> f32 {
    f16_to_f32(f32_to_f16(x))
}

/// bfloat16 -> f32 (exact).
#[inline(always)]
pub(crate) fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// f32 -> bfloat16 with ggml's rounding (nearest even; NaN stays a quiet NaN).
#[inline]
pub(crate) fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

/// Reads a little-endian f16 field at `off` and widens it.
#[inline(always)]
pub(crate) fn rd_f16(b: &[u8], off: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[off], b[off + 1]]))
}

/// Reads a little-endian f32 field at `off`.
#[inline(always)]
pub(crate) fn rd_f32(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// ggml's `nearest_int`: round half to even (valid for |x| < 2^22, which all callers respect).
#[inline(always)]
pub(crate) fn nearest_int(x: f32) -> i32 {
    x.round_ties_even() as i32
}

/// Decodes the 6-bit (scale, min) pair `j` (0..8) of a Q4_K/Q5_K 12-byte scale array.
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Unpacks all eight (scales, mins) of a Q4_K/Q5_K block.
#[inline(always)]
pub(crate) fn unpack_scales_k4(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, q);
        sc[j] = s;
        mn[j] = m;
    }
    (sc, mn)
}

/// Unpacks Q4_K/Q5_K scales with ggml's word-parallel trick: bytes 0..8 of the result are the
/// eight 6-bit scales, bytes 8..16 the eight 6-bit mins (same values as [`scale_min_k4`]).
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn unpack_scales_k4_words(q: &[u8]) -> [u32; 4] {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let w0 = u32::from_le_bytes([q[0], q[1], q[2], q[3]]);
    let w1 = u32::from_le_bytes([q[4], q[5], q[6], q[7]]);
    let w2 = u32::from_le_bytes([q[8], q[9], q[10], q[11]]);
    [
        w0 & KMASK1,
        (w2 & KMASK2) | (((w0 >> 6) & KMASK3) << 4),
        w1 & KMASK1,
        ((w2 >> 4) & KMASK2) | (((w1 >> 6) & KMASK3) << 4),
    ]
}

/// Decodes the sixteen signed 6-bit scales of a Q3_K block (already offset by -32).
#[inline(always)]
pub(crate) fn unpack_scales_q3k(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let lo = if j < 8 { s[j] & 0xf } else { s[j - 8] >> 4 };
        let hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = ((lo | (hi << 4)) as i8) - 32;
    }
    out
}

/// Byte offsets of the fields inside one block of each packed format (ggml's struct layouts).
pub(crate) mod layout {
    /// Q4_0: d f16 | qs[16]
    pub const Q4_0: usize = 18;
    /// Q4_1: d f16 | m f16 | qs[16]
    pub const Q4_1: usize = 20;
    /// Q5_0: d f16 | qh[4] | qs[16]
    pub const Q5_0: usize = 22;
    /// Q5_1: d f16 | m f16 | qh[4] | qs[16]
    pub const Q5_1: usize = 24;
    /// Q8_0: d f16 | qs[32] i8
    pub const Q8_0: usize = 34;
    /// Q8_1: d f16 | s f16 | qs[32] i8
    pub const Q8_1: usize = 36;
    /// Q2_K: scales[16] | qs[64] | d f16 | dmin f16
    pub const Q2_K: usize = 84;
    /// Q3_K: hmask[32] | qs[64] | scales[12] | d f16
    pub const Q3_K: usize = 110;
    /// Q4_K: d f16 | dmin f16 | scales[12] | qs[128]
    pub const Q4_K: usize = 144;
    /// Q5_K: d f16 | dmin f16 | scales[12] | qh[32] | qs[128]
    pub const Q5_K: usize = 176;
    /// Q6_K: ql[128] | qh[64] | scales[16] i8 | d f16
    pub const Q6_K: usize = 210;
    /// Q8_K: d f32 | qs[256] i8 | bsums[16] i16
    pub const Q8_K: usize = 292;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion_matches_half_crate() {
        for bits in 0..=u16::MAX {
            let a = f16_to_f32(bits);
            let b = half::f16::from_bits(bits).to_f32();
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{bits:#x}"
            );
        }
    }

    #[test]
    fn k4_scale_unpackers_agree() {
        let mut seed = 0x1234_5678u32;
        for _ in 0..1000 {
            let mut q = [0u8; 12];
            for b in q.iter_mut() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = (seed >> 24) as u8;
            }
            let words = unpack_scales_k4_words(&q);
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            for j in 0..8 {
                let (s, m) = scale_min_k4(j, &q);
                assert_eq!((bytes[j], bytes[8 + j]), (s, m));
            }
        }
    }

    #[test]
    fn bf16_round_trip() {
        for &x in &[0.0f32, 1.0, -2.5, 3.25, 1e-30, 6.5e4, f32::INFINITY] {
            let y = bf16_to_f32(f32_to_bf16(x));
            assert!(x == y || (x - y).abs() <= x.abs() / 128.0, "{x} {y}");
        }
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
    }
}
