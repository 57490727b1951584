//! The x86 half of the int8 GEMM: SIMD packing of weight groups and the micro-kernels
//! (AVX-512 VNNI zmm, AVX-VNNI / AVX2 ymm, Q6_K). One kernel family that shares its load and
//! unpack helpers, so it stays in one file.

use super::{Tile, GR};
use crate::quant::util::{layout as L, unpack_scales_k4};
use crate::quant::GgmlType;
use std::arch::x86_64::*;

#[inline(always)]
unsafe fn nibbles(p: *const u8) -> __m256i {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let q = _mm_loadu_si128(p as *const __m128i);
        let m4 = _mm_set1_epi8(0x0f);
        _mm256_set_m128i(
            _mm_and_si128(_mm_srli_epi16::<4>(q), m4),
            _mm_and_si128(q, m4),
        )
    }
}

#[inline(always)]
unsafe fn rd_u32(p: *const u8) -> u32 {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe { std::ptr::read_unaligned(p as *const u32) }
}

/// f16 at `p`, via F16C.
#[inline(always)]
unsafe fn f16p(p: *const u8) -> f32 {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let bits = std::ptr::read_unaligned(p as *const u16);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }
}

/// Sets bit 4 of byte i where bit i of `qh` is set.
#[inline(always)]
unsafe fn q5_high(v: __m256i, qh: u32) -> __m256i {
    // SAFETY: register-only intrinsics; callers run this only where the CPU features
    // they need were detected.
    unsafe {
        let hb = crate::quant::dot::avx2::bytes_from_bits_32(qh);
        _mm256_or_si256(v, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)))
    }
}

// SIMD versions of `unpack_block`: (32 unsigned quants, dw, mw) of block `b` of `row`.

#[inline(always)]
unsafe fn un_q4_0(row: *const u8, b: usize) -> (__m256i, f32, f32) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let blk = row.add(b * L::Q4_0);
        let d = f16p(blk);
        (nibbles(blk.add(2)), d, -8.0 * d)
    }
}
#[inline(always)]
unsafe fn un_q4_1(row: *const u8, b: usize) -> (__m256i, f32, f32) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let blk = row.add(b * L::Q4_1);
        (nibbles(blk.add(4)), f16p(blk), f16p(blk.add(2)))
    }
}
#[inline(always)]
unsafe fn un_q5_0(row: *const u8, b: usize) -> (__m256i, f32, f32) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let blk = row.add(b * L::Q5_0);
        let v = nibbles(blk.add(6));
        let d = f16p(blk);
        (
            _mm256_mask_add_epi8(v, rd_u32(blk.add(2)), v, _mm256_set1_epi8(0x10)),
            d,
            -16.0 * d,
        )
    }
}
#[inline(always)]
unsafe fn un_q5_1(row: *const u8, b: usize) -> (__m256i, f32, f32) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let blk = row.add(b * L::Q5_1);
        let v = nibbles(blk.add(8));
        (q5_high(v, rd_u32(blk.add(4))), f16p(blk), f16p(blk.add(2)))
    }
}
#[inline(always)]
unsafe fn un_q8_0(row: *const u8, b: usize) -> (__m256i, f32, f32) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let blk = row.add(b * L::Q8_0);
        let v = _mm256_loadu_si256(blk.add(2) as *const __m256i);
        let d = f16p(blk);
        (_mm256_xor_si256(v, _mm256_set1_epi8(-128)), d, -128.0 * d)
    }
}
#[inline(always)]
unsafe fn un_k<const Q5: bool>(row: *const u8, b: usize) -> (__m256i, f32, f32) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let (sb, j) = (b / 8, b % 8);
        let blk = row.add(sb * if Q5 { L::Q5_K } else { L::Q4_K });
        let (sc, mn) = unpack_scales_k4(std::slice::from_raw_parts(blk.add(4), 12));
        let qoff = if Q5 { 48 } else { 16 } + 32 * (j / 2);
        let q = _mm256_loadu_si256(blk.add(qoff) as *const __m256i);
        let q = if j % 2 == 1 {
            _mm256_srli_epi16::<4>(q)
        } else {
            q
        };
        let mut u = _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
        if Q5 {
            let qh = _mm256_loadu_si256(blk.add(16) as *const __m256i);
            let bit = _mm256_set1_epi8(1i8 << j);
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
            u = _mm256_or_si256(u, _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
        }
        (
            u,
            f16p(blk) * sc[j] as f32,
            -(f16p(blk.add(2)) * mn[j] as f32),
        )
    }
}

/// Transposes 8 rows of 8 dwords and stores column g at `dst + 64 * g` (32 bytes each).
#[inline(always)]
unsafe fn transpose8_store(r: &[__m256i; 8], dst: *mut u8) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
        let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
        let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
        let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
        let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
        let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
        let u0 = _mm256_unpacklo_epi64(t0, t2);
        let u1 = _mm256_unpackhi_epi64(t0, t2);
        let u2 = _mm256_unpacklo_epi64(t1, t3);
        let u3 = _mm256_unpackhi_epi64(t1, t3);
        let u4 = _mm256_unpacklo_epi64(t4, t6);
        let u5 = _mm256_unpackhi_epi64(t4, t6);
        let u6 = _mm256_unpacklo_epi64(t5, t7);
        let u7 = _mm256_unpackhi_epi64(t5, t7);
        let st = |g: usize, v: __m256i| _mm256_storeu_si256(dst.add(64 * g) as *mut __m256i, v);
        st(0, _mm256_permute2x128_si256::<0x20>(u0, u4));
        st(4, _mm256_permute2x128_si256::<0x31>(u0, u4));
        st(1, _mm256_permute2x128_si256::<0x20>(u1, u5));
        st(5, _mm256_permute2x128_si256::<0x31>(u1, u5));
        st(2, _mm256_permute2x128_si256::<0x20>(u2, u6));
        st(6, _mm256_permute2x128_si256::<0x31>(u2, u6));
        st(3, _mm256_permute2x128_si256::<0x20>(u3, u7));
        st(7, _mm256_permute2x128_si256::<0x31>(u3, u7));
    }
}

/// Packs up to 16 rows into `q[b][g][r][4]` and `f[b] = [dw; 16] ++ [mw; 16]` (missing rows
/// zero): unpack each row's block into a register, then two in-register 8×8 dword
/// transposes per block.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn pack_group(
    ty: GgmlType,
    rows_data: &[u8],
    rb: usize,
    nb: usize,
    q: &mut [u8],
    f: &mut [f32],
) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let nr = rows_data.len() / rb;
        assert!(
            nr <= GR
                && q.len() == nb * 32 * GR
                && f.len() == nb * 2 * GR
                && rb * nr == rows_data.len()
        );
        assert!(
            ty.row_bytes(nb * 32) == Some(rb),
            "igemm pack: row bytes do not match the type"
        );
        if nr < GR {
            f.fill(0.0);
        }
        let (src, q, f) = (rows_data.as_ptr(), q.as_mut_ptr(), f.as_mut_ptr());
        match ty {
            GgmlType::Q4_0 => pack_impl(src, rb, nr, nb, q, f, |p, b| un_q4_0(p, b)),
            GgmlType::Q4_1 => pack_impl(src, rb, nr, nb, q, f, |p, b| un_q4_1(p, b)),
            GgmlType::Q5_0 => pack_impl(src, rb, nr, nb, q, f, |p, b| un_q5_0(p, b)),
            GgmlType::Q5_1 => pack_impl(src, rb, nr, nb, q, f, |p, b| un_q5_1(p, b)),
            GgmlType::Q8_0 => pack_impl(src, rb, nr, nb, q, f, |p, b| un_q8_0(p, b)),
            GgmlType::Q4_K => pack_impl(src, rb, nr, nb, q, f, |p, b| un_k::<false>(p, b)),
            GgmlType::Q5_K => pack_impl(src, rb, nr, nb, q, f, |p, b| un_k::<true>(p, b)),
            _ => unreachable!("igemm::supported() gates the types"),
        }
    }
}

#[inline(always)]
unsafe fn pack_impl(
    src: *const u8,
    rb: usize,
    nr: usize,
    nb: usize,
    q: *mut u8,
    f: *mut f32,
    un: impl Fn(*const u8, usize) -> (__m256i, f32, f32),
) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let mut rv = [[_mm256_setzero_si256(); 8]; 2];
        for b in 0..nb {
            for r in 0..nr {
                let (u, dw, mw) = un(src.add(r * rb), b);
                rv[r / 8][r % 8] = u;
                *f.add(b * 2 * GR + r) = dw;
                *f.add(b * 2 * GR + GR + r) = mw;
            }
            let qb = q.add(b * 32 * GR);
            transpose8_store(&rv[0], qb);
            transpose8_store(&rv[1], qb.add(32));
        }
    }
}

/// 16 rows × T tokens over all blocks; writes `out[t * rows + r0 + r]` for r < nr.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn micro<const T: usize>(tile: &Tile<'_>, out: &mut [f32]) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let nb = tile.nb;
        let cols = nb * 32;
        let wq = tile.wq.as_ptr();
        let wf = tile.wf.as_ptr();
        let aq = tile.aq.as_ptr();
        let mut facc = [_mm512_setzero_ps(); T];
        for b in 0..nb {
            let mut iacc = [_mm512_setzero_si512(); T];
            let wb = wq.add(b * 32 * GR);
            let ab = aq.add(32 * b);
            for g in 0..8 {
                let wv = _mm512_loadu_si512(wb.add(64 * g) as *const __m512i);
                for (t, acc) in iacc.iter_mut().enumerate() {
                    let av = std::ptr::read_unaligned(ab.add(t * cols + 4 * g) as *const i32);
                    *acc = _mm512_dpbusd_epi32(*acc, wv, _mm512_set1_epi32(av));
                }
            }
            let dw = _mm512_loadu_ps(wf.add(b * 2 * GR));
            let mw = _mm512_loadu_ps(wf.add(b * 2 * GR + GR));
            for (t, (fa, ia)) in facc.iter_mut().zip(&iacc).enumerate() {
                let da = *tile.ad.get_unchecked(t * nb + b);
                let sa = *tile.asa.get_unchecked(t * nb + b);
                let dd = _mm512_mul_ps(dw, _mm512_set1_ps(da));
                *fa = _mm512_fmadd_ps(_mm512_cvtepi32_ps(*ia), dd, *fa);
                *fa = _mm512_fmadd_ps(mw, _mm512_set1_ps(sa), *fa);
            }
        }
        let mask: __mmask16 = if tile.nr >= 16 {
            0xffff
        } else {
            (1u16 << tile.nr) - 1
        };
        for (t, fa) in facc.iter().enumerate() {
            let p = out.as_mut_ptr().add(t * tile.rows + tile.r0);
            _mm512_mask_storeu_ps(p, mask, *fa);
        }
    }
}

/// 8 rows (half `h` of the group) × T tokens starting at tile token `t0`, ymm lanes.
#[inline(always)]
unsafe fn micro_ymm<D: crate::quant::dot::avx2::Dp, const T: usize>(
    tile: &Tile<'_>,
    out: &mut [f32],
    t0: usize,
    h: usize,
) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let nb = tile.nb;
        let cols = nb * 32;
        let wq = tile.wq.as_ptr().add(32 * h);
        let wf = tile.wf.as_ptr().add(8 * h);
        let aq = tile.aq.as_ptr().add(t0 * cols);
        let (ad, asa) = (
            tile.ad.as_ptr().add(t0 * nb),
            tile.asa.as_ptr().add(t0 * nb),
        );
        let mut facc = [_mm256_setzero_ps(); T];
        for b in 0..nb {
            let mut iacc = [_mm256_setzero_si256(); T];
            let wb = wq.add(b * 32 * GR);
            let ab = aq.add(32 * b);
            for g in 0..8 {
                let wv = _mm256_loadu_si256(wb.add(64 * g) as *const __m256i);
                for (t, acc) in iacc.iter_mut().enumerate() {
                    let av = std::ptr::read_unaligned(ab.add(t * cols + 4 * g) as *const i32);
                    *acc = D::dp(*acc, wv, _mm256_set1_epi32(av));
                }
            }
            let dw = _mm256_loadu_ps(wf.add(b * 2 * GR));
            let mw = _mm256_loadu_ps(wf.add(b * 2 * GR + GR));
            for (t, (fa, ia)) in facc.iter_mut().zip(&iacc).enumerate() {
                let dd = _mm256_mul_ps(dw, _mm256_set1_ps(*ad.add(t * nb + b)));
                *fa = _mm256_fmadd_ps(_mm256_cvtepi32_ps(*ia), dd, *fa);
                *fa = _mm256_fmadd_ps(mw, _mm256_set1_ps(*asa.add(t * nb + b)), *fa);
            }
        }
        let valid = (tile.nr - 8 * h).min(8);
        for (t, fa) in facc.iter().enumerate() {
            let p = out.as_mut_ptr().add((t0 + t) * tile.rows + tile.r0 + 8 * h);
            if valid == 8 {
                _mm256_storeu_ps(p, *fa);
            } else {
                let mut tmp = [0f32; 8];
                _mm256_storeu_ps(tmp.as_mut_ptr(), *fa);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, valid);
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn micro_avx2<const T: usize>(
    tile: &Tile<'_>,
    out: &mut [f32],
    t0: usize,
    h: usize,
) {
    // SAFETY: this fn's contract (level features detected, tile extents asserted in
    // `Tile::run`, t0 + T ≤ tile.nt, h < 2) is exactly what `micro_ymm` requires.
    unsafe { micro_ymm::<crate::quant::dot::avx2::Madd, T>(tile, out, t0, h) }
}

#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn micro_vnni<const T: usize>(
    tile: &Tile<'_>,
    out: &mut [f32],
    t0: usize,
    h: usize,
) {
    // SAFETY: this fn's contract (level features detected, tile extents asserted in
    // `Tile::run`, t0 + T ≤ tile.nt, h < 2) is exactly what `micro_ymm` requires.
    unsafe { micro_ymm::<crate::quant::dot::avx2::AvxVnni, T>(tile, out, t0, h) }
}

/// Q6_K: 16 rows × T tokens starting at tile token `t0`; see `pack_group_q6k`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn micro_q6k<const T: usize>(tile: &Tile<'_>, out: &mut [f32], t0: usize) {
    // SAFETY: callers uphold this unsafe fn's contract: the level's CPU features were detected
    // (`available_levels`) and the tile extents asserted in `Tile::run` / the packer bound every
    // pointer offset below.
    unsafe {
        let nb = tile.nb;
        let cols = nb * 32;
        let wq = tile.wq.as_ptr();
        let wf = tile.wf.as_ptr();
        let aq = tile.aq.as_ptr().add(t0 * cols);
        let ad = tile.ad.as_ptr().add(t0 * nb);
        let mut facc = [_mm512_setzero_ps(); T];
        for b in 0..nb {
            let mut ilo = [_mm512_setzero_si512(); T];
            let mut ihi = [_mm512_setzero_si512(); T];
            let wb = wq.add(b * 32 * GR);
            let ab = aq.add(32 * b);
            for g in 0..8 {
                let wv = _mm512_loadu_si512(wb.add(64 * g) as *const __m512i);
                let acc = if g < 4 { &mut ilo } else { &mut ihi };
                for (t, a) in acc.iter_mut().enumerate() {
                    let av = std::ptr::read_unaligned(ab.add(t * cols + 4 * g) as *const i32);
                    *a = _mm512_dpbusd_epi32(*a, _mm512_set1_epi32(av), wv);
                }
            }
            let fb = wf.add(b * 4 * GR);
            let dlo = _mm512_loadu_ps(fb);
            let dhi = _mm512_loadu_ps(fb.add(GR));
            let klo = _mm512_loadu_si512(fb.add(2 * GR) as *const __m512i);
            let khi = _mm512_loadu_si512(fb.add(3 * GR) as *const __m512i);
            for t in 0..T {
                let da = _mm512_set1_ps(*ad.add(t * nb + b));
                let lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(ilo[t], klo));
                let hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(ihi[t], khi));
                facc[t] = _mm512_fmadd_ps(lo, _mm512_mul_ps(dlo, da), facc[t]);
                facc[t] = _mm512_fmadd_ps(hi, _mm512_mul_ps(dhi, da), facc[t]);
            }
        }
        let mask: __mmask16 = if tile.nr >= 16 {
            0xffff
        } else {
            (1u16 << tile.nr) - 1
        };
        for (t, fa) in facc.iter().enumerate() {
            let p = out.as_mut_ptr().add((t0 + t) * tile.rows + tile.r0);
            _mm512_mask_storeu_ps(p, mask, *fa);
        }
    }
}
