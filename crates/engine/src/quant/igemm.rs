//! Prefill int8 GEMM for the 32-block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and the 32-element
//! sub-blocks of Q4_K / Q5_K, on AVX-512 VNNI.
//!
//! Why this beats "dequantize + f32 GEMM": weights are repacked per call into 16-row groups
//! of unsigned bytes, interleaved in 4-byte k-groups, so one `vpdpbusd` computes 64
//! multiply-adds for 16 rows × 1 token (activation bytes are broadcast). The per-block scale
//! work (int->float, two FMAs) is then done on 16 (row) lanes at once, so it costs ~1/3 of the
//! integer work instead of dominating it, and stable Rust's `gemm` crate only has AVX2 f32
//! kernels. Activations use ggml-cpu's Q8 quantization (what llama.cpp itself multiplies with).
//!
//! Every row is `sum_b dw[r,b] * da[t,b] * sum(u[r,b,:] * qa[t,b,:]) + mw[r,b] * sa[t,b]`,
//! with `u` the unsigned weight quant and `mw`/`sa` folding in minimums and zero points
//! (`mw = -8 dw`, `sa = da * sum(qa)` for Q4_0; `mw = m`, `sa = s` for Q4_1; ...).

use super::dot::ActBuf;
use super::util::{layout as L, rd_f16, unpack_scales_k4};
use super::{GgmlType, QMatrix};
use rayon::prelude::*;

/// Rows per packed group (one zmm of i32 lanes).
const GR: usize = 16;
/// Tokens per micro-kernel tile.
const TT: usize = 8;
/// Target packed-panel size in bytes (stays in L2 while every token tile streams it).
const PANEL_BYTES: usize = 1 << 20;

/// Whether [`matmul`] handles this type on this CPU.
pub(crate) fn supported(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::Q4_K
            | GgmlType::Q5_K
    ) && available()
}

#[cfg(target_arch = "x86_64")]
fn available() -> bool {
    use std::sync::OnceLock;
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        super::dot::x86_level() >= 2
            && is_x86_feature_detected!("avx512vnni")
            && super::dot::kernel_name() != "scalar"
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn available() -> bool {
    false
}

/// Reusable buffers for the int8 GEMM.
#[derive(Default, Debug, Clone)]
pub(crate) struct IgemmScratch {
    acts: ActBuf,
    sa: Vec<f32>,
    wq: Vec<u8>,
    wf: Vec<f32>,
}

/// out[t, r] = sum_k x[t, k] * W[r, k]; inputs validated by the caller, all dims non-zero,
/// `supported(w.ty)` true.
pub(crate) fn matmul(w: &QMatrix<'_>, x: &[f32], out: &mut [f32], s: &mut IgemmScratch) {
    let (rows, cols) = (w.rows, w.cols);
    let nb = cols / 32;
    s.acts.quantize_q8(x);
    let a = s.acts.q8();
    let sa: &[f32] = if matches!(w.ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
        a.s
    } else {
        s.sa.resize(a.d.len(), 0.0);
        for ((o, &d), &i) in s.sa.iter_mut().zip(a.d).zip(a.isum) {
            *o = d * i as f32;
        }
        &s.sa
    };

    let group_bytes = nb * 32 * GR;
    let group_floats = nb * 2 * GR;
    let n_groups = rows.div_ceil(GR);
    let groups_per_panel = (PANEL_BYTES / group_bytes).clamp(1, n_groups);
    s.wq.resize(groups_per_panel * group_bytes, 0);
    s.wf.resize(groups_per_panel * group_floats, 0.0);
    let rb = w.data.len() / rows;

    let mut g0 = 0;
    while g0 < n_groups {
        let ng = groups_per_panel.min(n_groups - g0);
        let wq = &mut s.wq[..ng * group_bytes];
        let wf = &mut s.wf[..ng * group_floats];
        // Pack this panel's row groups (parallel over groups).
        wq.par_chunks_mut(group_bytes)
            .zip(wf.par_chunks_mut(group_floats))
            .enumerate()
            .for_each(|(gi, (q, f))| {
                let r0 = (g0 + gi) * GR;
                let nr = GR.min(rows - r0);
                pack_group(w.ty, &w.data[r0 * rb..(r0 + nr) * rb], rb, nb, q, f);
            });
        let (wq, wf) = (&*wq, &*wf);
        // Multiply: parallel over token tiles, each writing its own rows of `out`.
        out.par_chunks_mut(TT * rows)
            .zip(a.qs.par_chunks(TT * cols))
            .zip(a.d.par_chunks(TT * nb))
            .zip(sa.par_chunks(TT * nb))
            .for_each(|(((o, q), d), sa)| {
                let nt = o.len() / rows;
                for gi in 0..ng {
                    let r0 = (g0 + gi) * GR;
                    let tile = Tile {
                        wq: &wq[gi * group_bytes..(gi + 1) * group_bytes],
                        wf: &wf[gi * group_floats..(gi + 1) * group_floats],
                        nb,
                        aq: q,
                        ad: d,
                        asa: sa,
                        nt,
                        r0,
                        nr: GR.min(rows - r0),
                        rows,
                    };
                    tile.run(o);
                }
            });
        g0 += ng;
    }
}

/// Unsigned quants (32 per block) and (scale, min-term) of one block, per row, per type.
#[inline(always)]
fn unpack_block(ty: GgmlType, row: &[u8], b: usize, u: &mut [u8; 32]) -> (f32, f32) {
    match ty {
        GgmlType::Q4_0 => {
            let blk = &row[b * L::Q4_0..];
            for j in 0..16 {
                u[j] = blk[2 + j] & 0xf;
                u[j + 16] = blk[2 + j] >> 4;
            }
            let d = rd_f16(blk, 0);
            (d, -8.0 * d)
        }
        GgmlType::Q4_1 => {
            let blk = &row[b * L::Q4_1..];
            for j in 0..16 {
                u[j] = blk[4 + j] & 0xf;
                u[j + 16] = blk[4 + j] >> 4;
            }
            (rd_f16(blk, 0), rd_f16(blk, 2))
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 => {
            let (ts, qh_off) = if ty == GgmlType::Q5_0 {
                (L::Q5_0, 2)
            } else {
                (L::Q5_1, 4)
            };
            let blk = &row[b * ts..];
            let qh = u32::from_le_bytes([
                blk[qh_off],
                blk[qh_off + 1],
                blk[qh_off + 2],
                blk[qh_off + 3],
            ]);
            let qs = &blk[qh_off + 4..];
            for j in 0..16 {
                u[j] = (qs[j] & 0xf) | ((((qh >> j) & 1) as u8) << 4);
                u[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
            }
            let d = rd_f16(blk, 0);
            if ty == GgmlType::Q5_0 {
                (d, -16.0 * d)
            } else {
                (d, rd_f16(blk, 2))
            }
        }
        GgmlType::Q8_0 => {
            let blk = &row[b * L::Q8_0..];
            for j in 0..32 {
                u[j] = blk[2 + j] ^ 0x80; // w + 128
            }
            let d = rd_f16(blk, 0);
            (d, -128.0 * d)
        }
        GgmlType::Q4_K | GgmlType::Q5_K => {
            // Sub-block j of super-block sb: w = d*sc_j*q - dmin*m_j.
            let (sb, j) = (b / 8, b % 8);
            let ts = if ty == GgmlType::Q4_K {
                L::Q4_K
            } else {
                L::Q5_K
            };
            let blk = &row[sb * ts..];
            let (sc, mn) = unpack_scales_k4(&blk[4..16]);
            let (c, hi) = (j / 2, j % 2 == 1);
            let qs = if ty == GgmlType::Q4_K {
                &blk[16 + 32 * c..]
            } else {
                &blk[48 + 32 * c..]
            };
            for l in 0..32 {
                u[l] = if hi { qs[l] >> 4 } else { qs[l] & 0xf };
            }
            if ty == GgmlType::Q5_K {
                let qh = &blk[16..48];
                for l in 0..32 {
                    u[l] |= ((qh[l] >> j) & 1) << 4;
                }
            }
            (
                rd_f16(blk, 0) * sc[j] as f32,
                -(rd_f16(blk, 2) * mn[j] as f32),
            )
        }
        _ => unreachable!("igemm::supported() gates the types"),
    }
}

/// Packs up to 16 rows: `q[b][g][r][4]` (k-group g = 4 consecutive quants) and
/// `f[b] = [dw; 16] ++ [mw; 16]`; missing rows are zero.
fn pack_group(ty: GgmlType, rows_data: &[u8], rb: usize, nb: usize, q: &mut [u8], f: &mut [f32]) {
    let nr = rows_data.len() / rb;
    if nr < GR {
        q.fill(0);
        f.fill(0.0);
    }
    let mut u = [0u8; 32];
    for r in 0..nr {
        let row = &rows_data[r * rb..(r + 1) * rb];
        for b in 0..nb {
            let (dw, mw) = unpack_block(ty, row, b, &mut u);
            let qb = &mut q[b * 32 * GR..(b + 1) * 32 * GR];
            for g in 0..8 {
                qb[g * 4 * GR + 4 * r..g * 4 * GR + 4 * r + 4]
                    .copy_from_slice(&u[4 * g..4 * g + 4]);
            }
            f[b * 2 * GR + r] = dw;
            f[b * 2 * GR + GR + r] = mw;
        }
    }
}

/// One row group × one token tile.
struct Tile<'a> {
    wq: &'a [u8],
    wf: &'a [f32],
    nb: usize,
    /// Activation quants of this tile's tokens (`nt * nb * 32`).
    aq: &'a [i8],
    ad: &'a [f32],
    asa: &'a [f32],
    nt: usize,
    r0: usize,
    nr: usize,
    rows: usize,
}

impl Tile<'_> {
    fn run(&self, out: &mut [f32]) {
        let nb = self.nb;
        assert!(
            self.wq.len() == nb * 32 * GR
                && self.wf.len() == nb * 2 * GR
                && (1..=TT).contains(&self.nt)
                && self.aq.len() == self.nt * nb * 32
                && self.ad.len() == self.nt * nb
                && self.asa.len() == self.nt * nb
                && self.r0 + self.nr <= self.rows
                && (1..=GR).contains(&self.nr)
                && out.len() == self.nt * self.rows,
            "igemm tile with inconsistent lengths"
        );
        #[cfg(target_arch = "x86_64")]
        {
            macro_rules! go {
                ($($n:literal)*) => {
                    match self.nt {
                        // SAFETY: `supported()` (checked by the caller) implies the AVX-512 VNNI
                        // features; all extents were asserted above.
                        $($n => unsafe { x86::micro::<$n>(self, out) },)*
                        _ => unreachable!(),
                    }
                };
            }
            go!(1 2 3 4 5 6 7 8);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = out;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Tile, GR};
    use std::arch::x86_64::*;

    /// 16 rows × T tokens over all blocks; writes `out[t * rows + r0 + r]` for r < nr.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn micro<const T: usize>(tile: &Tile<'_>, out: &mut [f32]) {
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
