//! Prefill int8 GEMM for the 32-block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), the 32-element
//! sub-blocks of Q4_K / Q5_K, and Q6_K (AVX-512 only), on x86 with AVX-512 VNNI (zmm, 16
//! rows per instruction), AVX-VNNI (ymm, 8 rows) or plain AVX2 (`maddubs` + `madd`, 8 rows; no
//! Q8_0 there).
//!
//! Why this beats "dequantize + f32 GEMM" (~3× on SmolLM2/Qwen shapes, see
//! `benches/kernels.rs`): weights are repacked per call into 16-row groups of unsigned bytes,
//! interleaved in 4-byte k-groups, so one `vpdpbusd` computes 64 multiply-adds for 16 rows × 1
//! token (activation bytes are broadcast). The per-block scale work (int->float, two FMAs) is
//! then done on 16 (row) lanes at once, so it costs ~1/3 of the integer work instead of
//! dominating it; and stable Rust's `gemm` crate only has AVX2 f32 kernels. Activations use
//! ggml-cpu's Q8 quantization (what llama.cpp itself multiplies with). Packing costs about as
//! much as 3-4 tokens of mat-vec, hence the 4-token threshold in `matmul`.
//!
//! Every row is `sum_b dw[r,b] * da[t,b] * sum(u[r,b,:] * qa[t,b,:]) + mw[r,b] * sa[t,b]`,
//! with `u` the unsigned weight quant and `mw`/`sa` folding in minimums and zero points
//! (`mw = -8 dw`, `sa = da * sum(qa)` for Q4_0; `mw = m`, `sa = s` for Q4_1; ...).

// Only x86_64 has micro-kernels; elsewhere `available_levels()` is empty and this is unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

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

/// Which micro-kernel family the int8 GEMM can use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// 16 rows per `vpdpbusd` zmm (AVX-512 F/BW/VL + VNNI).
    Avx512Vnni,
    /// 8 rows per ymm `vpdpbusd` (AVX-VNNI, e.g. Alder Lake and later client cores).
    AvxVnni,
    /// 8 rows per ymm with `vpmaddubsw` + `vpmaddwd` (plain AVX2; not for Q8_0, whose
    /// offset-binary weights could saturate the i16 pair sums).
    Avx2,
}

/// Every level this CPU can run, best first (tests exercise each).
pub(crate) fn available_levels() -> Vec<Level> {
    #[allow(unused_mut)]
    let mut v = Vec::new();
    #[cfg(target_arch = "x86_64")]
    if super::dot::kernel_name() != "scalar" && super::dot::x86_level() >= 1 {
        if super::dot::x86_level() >= 2 && is_x86_feature_detected!("avx512vnni") {
            v.push(Level::Avx512Vnni);
        }
        if is_x86_feature_detected!("avxvnni") {
            v.push(Level::AvxVnni);
        }
        v.push(Level::Avx2);
    }
    v
}

/// The best level on this CPU, if any. The environment variable `LONGCTX_IGEMM` (read once)
/// can pick a lower one for benchmarking: `avx512`, `avxvnni`, `avx2`, or `off` (dequantize +
/// f32 GEMM instead).
pub(crate) fn level() -> Option<Level> {
    use std::sync::OnceLock;
    static L: OnceLock<Option<Level>> = OnceLock::new();
    *L.get_or_init(|| {
        let avail = available_levels();
        let want = match std::env::var("LONGCTX_IGEMM").as_deref() {
            Ok("off") => return None,
            Ok("avx512") => Some(Level::Avx512Vnni),
            Ok("avxvnni") => Some(Level::AvxVnni),
            Ok("avx2") => Some(Level::Avx2),
            _ => None,
        };
        match want {
            Some(l) if avail.contains(&l) => Some(l),
            _ => avail.first().copied(),
        }
    })
}

/// Whether [`matmul`] handles this type on this CPU.
pub(crate) fn supported(ty: GgmlType) -> bool {
    level().is_some_and(|l| supported_at(ty, l))
}

/// Whether level `l` handles type `ty`.
pub(crate) fn supported_at(ty: GgmlType, l: Level) -> bool {
    match ty {
        GgmlType::Q4_0
        | GgmlType::Q4_1
        | GgmlType::Q5_0
        | GgmlType::Q5_1
        | GgmlType::Q4_K
        | GgmlType::Q5_K => true,
        GgmlType::Q8_0 => l != Level::Avx2,
        GgmlType::Q6_K => l == Level::Avx512Vnni,
        _ => false,
    }
}

/// Reusable buffers for the int8 GEMM.
#[derive(Default, Debug, Clone)]
pub(crate) struct IgemmScratch {
    acts: ActBuf,
    sa: Vec<f32>,
    /// Q6_K: activation quants + 128 (as unsigned bytes, stored in i8).
    au: Vec<i8>,
    wq: Vec<u8>,
    wf: Vec<f32>,
}

/// out[t, r] = sum_k x[t, k] * W[r, k]; inputs validated by the caller, all dims non-zero,
/// `supported(w.ty)` true.
pub(crate) fn matmul(w: &QMatrix<'_>, x: &[f32], out: &mut [f32], s: &mut IgemmScratch) {
    if let Some(l) = level() {
        matmul_at(l, w, x, out, s);
    }
}

/// [`matmul`] with an explicit level, which must be one of [`available_levels`] and
/// `supported_at(w.ty, level)`.
pub(crate) fn matmul_at(
    level: Level,
    w: &QMatrix<'_>,
    x: &[f32],
    out: &mut [f32],
    s: &mut IgemmScratch,
) {
    assert!(
        available_levels().contains(&level) && supported_at(w.ty, level),
        "igemm level not available for this type/CPU"
    );
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

    let q6 = w.ty == GgmlType::Q6_K;
    let aq: &[i8] = if q6 {
        s.au.resize(a.qs.len(), 0);
        for (o, &q) in s.au.iter_mut().zip(a.qs) {
            *o = ((q as u8) ^ 0x80) as i8;
        }
        &s.au
    } else {
        a.qs
    };
    let group_bytes = nb * 32 * GR;
    let group_floats = nb * floats_per_block(w.ty) * GR;
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
                let src = &w.data[r0 * rb..(r0 + nr) * rb];
                if q6 {
                    pack_group_q6k(src, rb, nb, q, f);
                    return;
                }
                // SAFETY: every level implies AVX2, FMA and F16C (available_levels).
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    x86::pack_group(w.ty, src, rb, nb, q, f)
                };
                #[cfg(not(target_arch = "x86_64"))]
                pack_group(w.ty, src, rb, nb, q, f);
            });
        let (wq, wf) = (&*wq, &*wf);
        // Multiply: parallel over token tiles, each writing its own rows of `out`.
        out.par_chunks_mut(TT * rows)
            .zip(aq.par_chunks(TT * cols))
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
                        level,
                        q6,
                    };
                    tile.run(o);
                }
            });
        g0 += ng;
    }
}

/// Per-row f32 slots per block in the packed scale array: `[dw, mw]`, or for Q6_K
/// `[dw_lo, dw_hi, k_lo, k_hi]` (the k are i32 bit patterns).
fn floats_per_block(ty: GgmlType) -> usize {
    if ty == GgmlType::Q6_K {
        4
    } else {
        2
    }
}

/// Packs up to 16 Q6_K rows. Each 32-element block has two 16-element halves with their own
/// scale: weights are stored as signed `q - 32`, the activations come in as `qa + 128`
/// (unsigned), and `k_h = 128 * sum_half(q - 32)` removes the +128 offset exactly:
/// `sum (qa + 128)(q - 32) - k_h = sum qa (q - 32)`.
fn pack_group_q6k(rows_data: &[u8], rb: usize, nb: usize, q: &mut [u8], f: &mut [f32]) {
    let nr = rows_data.len() / rb;
    if nr < GR {
        q.fill(0);
        f.fill(0.0);
    }
    let mut v = [0i8; 32];
    for r in 0..nr {
        let row = &rows_data[r * rb..(r + 1) * rb];
        for b in 0..nb {
            let (sb, j) = (b / 8, b % 8);
            let blk = &row[sb * L::Q6_K..(sb + 1) * L::Q6_K];
            let (n, quarter) = (j / 4, j % 4);
            let ql = &blk[64 * n + 32 * (quarter & 1)..];
            let qh = &blk[128 + 32 * n..];
            for l in 0..32 {
                let lo = (ql[l] >> (4 * (quarter >> 1))) & 0xf;
                let hi = (qh[l] >> (2 * quarter)) & 3;
                v[l] = (lo | (hi << 4)) as i8 - 32;
            }
            let d = rd_f16(blk, 208);
            let sc = |g: usize| blk[192 + g] as i8 as f32;
            let k = |h: usize| {
                128 * v[16 * h..16 * h + 16]
                    .iter()
                    .map(|&x| x as i32)
                    .sum::<i32>()
            };
            let fb = &mut f[b * 4 * GR..(b + 1) * 4 * GR];
            fb[r] = d * sc(2 * j);
            fb[GR + r] = d * sc(2 * j + 1);
            fb[2 * GR + r] = f32::from_bits(k(0) as u32);
            fb[3 * GR + r] = f32::from_bits(k(1) as u32);
            let qb = &mut q[b * 32 * GR..(b + 1) * 32 * GR];
            for g in 0..8 {
                for i in 0..4 {
                    qb[g * 4 * GR + 4 * r + i] = v[4 * g + i] as u8;
                }
            }
        }
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

/// Portable packing (reference for the x86 version; used on other targets).
/// Packs up to 16 rows: `q[b][g][r][4]` (k-group g = 4 consecutive quants) and
/// `f[b] = [dw; 16] ++ [mw; 16]`; missing rows are zero.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(crate) fn pack_group(
    ty: GgmlType,
    rows_data: &[u8],
    rb: usize,
    nb: usize,
    q: &mut [u8],
    f: &mut [f32],
) {
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
    level: Level,
    /// Q6_K layout: signed weights, unsigned activations, two 16-element halves per block.
    q6: bool,
}

impl Tile<'_> {
    fn run(&self, out: &mut [f32]) {
        let nb = self.nb;
        assert!(
            self.wq.len() == nb * 32 * GR
                && self.wf.len() == nb * if self.q6 { 4 } else { 2 } * GR
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
            if self.q6 {
                let mut t0 = 0;
                while t0 < self.nt {
                    let nt = (self.nt - t0).min(4);
                    match nt {
                        // SAFETY: Q6_K is only supported at the AVX-512 VNNI level; extents
                        // asserted above; t0 + nt <= self.nt.
                        1 => unsafe { x86::micro_q6k::<1>(self, out, t0) },
                        // SAFETY: as for one token.
                        2 => unsafe { x86::micro_q6k::<2>(self, out, t0) },
                        // SAFETY: as for one token.
                        3 => unsafe { x86::micro_q6k::<3>(self, out, t0) },
                        // SAFETY: as for one token.
                        _ => unsafe { x86::micro_q6k::<4>(self, out, t0) },
                    }
                    t0 += nt;
                }
                return;
            }
            if self.level == Level::Avx512Vnni {
                macro_rules! go {
                    ($($n:literal)*) => {
                        match self.nt {
                            // SAFETY: this level is only available with the AVX-512 VNNI
                            // features; all extents were asserted above.
                            $($n => unsafe { x86::micro::<$n>(self, out) },)*
                            _ => unreachable!(),
                        }
                    };
                }
                go!(1 2 3 4 5 6 7 8);
                return;
            }
            // ymm levels: 8-row halves × up to 4 tokens.
            for h in 0..2 {
                if self.nr <= 8 * h {
                    break;
                }
                let mut t0 = 0;
                while t0 < self.nt {
                    let nt = (self.nt - t0).min(4);
                    macro_rules! go {
                        ($f:ident, $($n:literal)*) => {
                            match nt {
                                // SAFETY: the level's features were detected (available_levels);
                                // extents asserted above; t0 + nt <= self.nt, h < 2.
                                $($n => unsafe { x86::$f::<$n>(self, out, t0, h) },)*
                                _ => unreachable!(),
                            }
                        };
                    }
                    if self.level == Level::AvxVnni {
                        go!(micro_vnni, 1 2 3 4);
                    } else {
                        go!(micro_avx2, 1 2 3 4);
                    }
                    t0 += nt;
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = out;
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;
