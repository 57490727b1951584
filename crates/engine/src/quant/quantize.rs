//! Scalar reference quantization of f32 rows into ggml block formats (ports of the semantics of
//! ggml's `quantize_row_*_ref`, without importance weights). Used to build test data and
//! whatever else needs to write packed tensors; activation quantization for the kernels lives in
//! `dot::acts`.

use super::util::{f32_to_bf16, f32_to_f16, layout as L, nearest_int, scale_min_k4};
use super::{GgmlType, QuantError, QK_K};

const GROUP_MAX_EPS: f32 = 1e-15;

/// Quantizes `src` (one row, `src.len()` elements) into the packed format `ty`, writing exactly
/// `ty.row_bytes(src.len())` bytes to `dst`.
///
/// Supports every type in [`GgmlType::ALL`]. Rounding follows ggml's reference quantizers
/// (`quantize_row_*_ref`), so `dequantize_row(quantize_row(x))` reproduces llama.cpp's
/// reference round trip.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    super::dequant::check_row(ty, dst.len(), src.len())?;
    match ty {
        GgmlType::F32 => {
            for (c, &x) in dst.chunks_exact_mut(4).zip(src) {
                c.copy_from_slice(&x.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            for (c, &x) in dst.chunks_exact_mut(2).zip(src) {
                c.copy_from_slice(&f32_to_f16(x).to_le_bytes());
            }
        }
        GgmlType::BF16 => {
            for (c, &x) in dst.chunks_exact_mut(2).zip(src) {
                c.copy_from_slice(&f32_to_bf16(x).to_le_bytes());
            }
        }
        GgmlType::Q4_0 => blocks(src, dst, 32, L::Q4_0, q4_0),
        GgmlType::Q4_1 => blocks(src, dst, 32, L::Q4_1, q4_1),
        GgmlType::Q5_0 => blocks(src, dst, 32, L::Q5_0, q5_0),
        GgmlType::Q5_1 => blocks(src, dst, 32, L::Q5_1, q5_1),
        GgmlType::Q8_0 => blocks(src, dst, 32, L::Q8_0, q8_0),
        GgmlType::Q8_1 => blocks(src, dst, 32, L::Q8_1, q8_1),
        GgmlType::Q2_K => blocks(src, dst, QK_K, L::Q2_K, q2_k),
        GgmlType::Q3_K => blocks(src, dst, QK_K, L::Q3_K, q3_k),
        GgmlType::Q4_K => blocks(src, dst, QK_K, L::Q4_K, q4_k),
        GgmlType::Q5_K => blocks(src, dst, QK_K, L::Q5_K, q5_k),
        GgmlType::Q6_K => blocks(src, dst, QK_K, L::Q6_K, q6_k),
        GgmlType::Q8_K => blocks(src, dst, QK_K, L::Q8_K, q8_k),
    }
    Ok(())
}

/// Quantizes a whole `rows × cols` matrix (row-major f32) into a freshly allocated packed buffer.
pub fn quantize_matrix(
    ty: GgmlType,
    src: &[f32],
    rows: usize,
    cols: usize,
) -> Result<Vec<u8>, QuantError> {
    let rb = ty.row_bytes(cols).ok_or(QuantError::NotBlockMultiple {
        ty,
        n: cols,
        block: ty.block_size(),
    })?;
    let n = rows.checked_mul(cols).ok_or(QuantError::Overflow)?;
    if src.len() != n {
        return Err(QuantError::Length {
            what: "f32 matrix elements",
            expected: n,
            got: src.len(),
        });
    }
    let mut out = vec![0u8; rows.checked_mul(rb).ok_or(QuantError::Overflow)?];
    if cols > 0 {
        for (s, d) in src.chunks_exact(cols).zip(out.chunks_exact_mut(rb)) {
            quantize_row(ty, s, d)?;
        }
    }
    Ok(out)
}

fn blocks(src: &[f32], dst: &mut [u8], bs: usize, ts: usize, f: fn(&[f32], &mut [u8])) {
    for (x, y) in src.chunks_exact(bs).zip(dst.chunks_exact_mut(ts)) {
        y.fill(0);
        f(x, y);
    }
}

fn put_f16(y: &mut [u8], off: usize, v: f32) {
    y[off..off + 2].copy_from_slice(&f32_to_f16(v).to_le_bytes());
}

/// Value with the largest magnitude (first one on ties), and that magnitude.
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (max, amax)
}

fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut mn, mut mx) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < mn {
            mn = v;
        }
        if v > mx {
            mx = v;
        }
    }
    (mn, mx)
}

fn q4_0(x: &[f32], y: &mut [u8]) {
    let (max, _) = signed_absmax(x);
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(y, 0, d);
    for j in 0..16 {
        let a = ((x[j] * id + 8.5) as i8).min(15) as u8;
        let b = ((x[j + 16] * id + 8.5) as i8).min(15) as u8;
        y[2 + j] = a | (b << 4);
    }
}

fn q4_1(x: &[f32], y: &mut [u8]) {
    let (mn, mx) = min_max(x);
    let d = (mx - mn) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(y, 0, d);
    put_f16(y, 2, mn);
    for j in 0..16 {
        let a = (((x[j] - mn) * id + 0.5) as i8).min(15) as u8;
        let b = (((x[j + 16] - mn) * id + 0.5) as i8).min(15) as u8;
        y[4 + j] = a | (b << 4);
    }
}

fn q5_0(x: &[f32], y: &mut [u8]) {
    let (max, _) = signed_absmax(x);
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(y, 0, d);
    let mut qh = 0u32;
    for j in 0..16 {
        let a = ((x[j] * id + 16.5) as i8).min(31) as u8;
        let b = ((x[j + 16] * id + 16.5) as i8).min(31) as u8;
        y[6 + j] = (a & 0xf) | ((b & 0xf) << 4);
        qh |= (((a & 0x10) >> 4) as u32) << j;
        qh |= (((b & 0x10) >> 4) as u32) << (j + 16);
    }
    y[2..6].copy_from_slice(&qh.to_le_bytes());
}

fn q5_1(x: &[f32], y: &mut [u8]) {
    let (mn, mx) = min_max(x);
    let d = (mx - mn) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(y, 0, d);
    put_f16(y, 2, mn);
    let mut qh = 0u32;
    for j in 0..16 {
        let a = (((x[j] - mn) * id + 0.5) as u8).min(31);
        let b = (((x[j + 16] - mn) * id + 0.5) as u8).min(31);
        y[8 + j] = (a & 0xf) | ((b & 0xf) << 4);
        qh |= (((a & 0x10) >> 4) as u32) << j;
        qh |= (((b & 0x10) >> 4) as u32) << (j + 16);
    }
    y[4..8].copy_from_slice(&qh.to_le_bytes());
}

/// Shared by Q8_0 / Q8_1: returns (d before f16 rounding, sum of the quants).
fn q8_common(x: &[f32], qs: &mut [u8]) -> (f32, i32) {
    let amax = x.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in qs.iter_mut().zip(x) {
        let r = (v * id).round() as i8;
        sum += r as i32;
        *q = r as u8;
    }
    (d, sum)
}

fn q8_0(x: &[f32], y: &mut [u8]) {
    let (d, _) = q8_common(x, &mut y[2..34]);
    put_f16(y, 0, d);
}

fn q8_1(x: &[f32], y: &mut [u8]) {
    let (d, sum) = q8_common(x, &mut y[4..36]);
    put_f16(y, 0, d);
    put_f16(y, 2, sum as f32 * d);
}

fn q8_k(x: &[f32], y: &mut [u8]) {
    let (max, amax) = signed_absmax(x);
    if amax == 0.0 {
        y.fill(0);
        return;
    }
    let iscale = -127.0 / max;
    let mut qs = [0i8; QK_K];
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    y[0..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    for (o, &q) in y[4..260].iter_mut().zip(&qs) {
        *o = q as u8;
    }
    for j in 0..16 {
        let s: i32 = qs[16 * j..16 * j + 16].iter().map(|&q| q as i32).sum();
        y[260 + 2 * j..262 + 2 * j].copy_from_slice(&(s as i16).to_le_bytes());
    }
}

/// ggml's `make_qx_quants` without importance weights (`rmse_type` 1 = x² weighting).
fn make_qx_quants(x: &[f32], nmax: i32, l_out: &mut [i8], rmse_type: i32) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let mut iscale = -(nmax as f32) / max;
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    if rmse_type == 0 {
        for (o, &v) in l_out.iter_mut().zip(x) {
            *o = (nmax + clamp(nearest_int(iscale * v))) as i8;
        }
        return 1.0 / iscale;
    }
    let weight = |v: f32| match rmse_type {
        1 => v * v,
        2 => 1.0,
        3 => v.abs(),
        _ => v.abs().sqrt(),
    };
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (o, &v) in l_out.iter_mut().zip(x) {
        let l = clamp(nearest_int(iscale * v));
        *o = (l + nmax) as i8;
        let w = weight(v);
        sumlx += w * v * l as f32;
        suml2 += w * (l * l) as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = clamp(nearest_int(iscale * v));
            let w = weight(v);
            sumlx += w * v * l as f32;
            suml2 += w * (l * l) as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (o, &v) in l_out.iter_mut().zip(x) {
                *o = (nmax + clamp(nearest_int(iscale * v))) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `make_q3_quants` (levels returned offset by +nmax).
fn make_q3_quants(x: &[f32], nmax: i32, l_out: &mut [i8]) -> f32 {
    let (max, amax) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (o, &v) in l_out.iter_mut().zip(x) {
        let l = clamp(nearest_int(iscale * v));
        *o = l as i8;
        let w = v * v;
        sumlx += w * v * l as f32;
        suml2 += w * (l * l) as f32;
    }
    for _ in 0..5 {
        let mut changed = 0;
        for (i, &v) in x.iter().enumerate() {
            let w = v * v;
            let li = l_out[i] as f32;
            let mut slx = sumlx - w * v * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = clamp(nearest_int(v * sl2 / slx));
                if new_l != l_out[i] as i32 {
                    slx += w * v * new_l as f32;
                    sl2 += w * (new_l * new_l) as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l_out[i] = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        changed += 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    for o in l_out.iter_mut() {
        *o += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// ggml's `make_qkx2_quants`: asymmetric (scale, min) search. Returns (scale, -min).
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    x: &[f32],
    weights: &[f32],
    nmax: i32,
    l_out: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let mut laux = [0u8; 32];
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        min = min.min(x[i]);
        max = max.max(x[i]);
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.fill(0);
        return (0.0, -min);
    }
    let err = |d: f32| if use_mad { d.abs() } else { d * d };
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        best_error += weights[i] * err(scale * l as f32 + min - x[i]);
    }
    if nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let dd = sum_w * sum_l2 - sum_l * sum_l;
        if dd > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / dd;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / dd;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                cur_error += weights[i] * err(this_scale * laux[i] as f32 + this_min - x[i]);
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

fn q2_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 16];
    let mut mins = [0f32; 16];
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for j in 0..16 {
        let xs = &x[16 * j..16 * j + 16];
        let mut w = [0f32; 16];
        for (wi, &v) in w.iter_mut().zip(xs) {
            *wi = v.abs();
        }
        let (s, m) = make_qkx2_quants(xs, &w, 3, &mut l[16 * j..16 * j + 16], -0.5, 0.1, 15, true);
        scales[j] = s;
        mins[j] = m;
        max_scale = max_scale.max(s);
        max_min = max_min.max(m);
    }
    let (sc, qs_and_rest) = y.split_at_mut(16);
    if max_scale > 0.0 {
        let iscale = 15.0 / max_scale;
        for j in 0..16 {
            sc[j] = nearest_int(iscale * scales[j]) as u8;
        }
        put_f16(qs_and_rest, 64, max_scale / 15.0);
    } else {
        sc.fill(0);
        put_f16(qs_and_rest, 64, 0.0);
    }
    if max_min > 0.0 {
        let iscale = 15.0 / max_min;
        for j in 0..16 {
            sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        put_f16(qs_and_rest, 66, max_min / 15.0);
    } else {
        put_f16(qs_and_rest, 66, 0.0);
    }
    let d_all = super::util::rd_f16(y, 80);
    let dmin_all = super::util::rd_f16(y, 82);
    for j in 0..16 {
        let d = d_all * (y[j] & 0xf) as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * (y[j] >> 4) as f32;
        for ii in 0..16 {
            l[16 * j + ii] = nearest_int((x[16 * j + ii] + dm) / d).clamp(0, 3) as u8;
        }
    }
    for half in 0..2 {
        for i in 0..32 {
            let b = 128 * half;
            y[16 + 32 * half + i] =
                l[b + i] | (l[b + i + 32] << 2) | (l[b + i + 64] << 4) | (l[b + i + 96] << 6);
        }
    }
}

fn q3_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; 16];
    let (mut max_scale, mut amax) = (0f32, 0f32);
    for j in 0..16 {
        scales[j] = make_q3_quants(&x[16 * j..16 * j + 16], 4, &mut l[16 * j..16 * j + 16]);
        if scales[j].abs() > amax {
            amax = scales[j].abs();
            max_scale = scales[j];
        }
    }
    let sc = &mut y[96..108];
    sc.fill(0);
    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for j in 0..16 {
            let lv = (nearest_int(iscale * scales[j]).clamp(-32, 31) + 32) as u8;
            if j < 8 {
                sc[j] = lv & 0xf;
            } else {
                sc[j - 8] |= (lv & 0xf) << 4;
            }
            sc[j % 4 + 8] |= (lv >> 4) << (2 * (j / 4));
        }
        put_f16(y, 108, 1.0 / iscale);
    } else {
        put_f16(y, 108, 0.0);
    }
    let d_all = super::util::rd_f16(y, 108);
    let dsc = super::util::unpack_scales_q3k(&y[96..108]);
    for j in 0..16 {
        let d = d_all * dsc[j] as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-4, 3) + 4) as i8;
        }
    }
    // High bit of quant j goes to hmask[j % 32], bit j / 32.
    y[0..32].fill(0);
    for (j, lj) in l.iter_mut().enumerate() {
        if *lj > 3 {
            y[j % 32] |= 1 << (j / 32);
            *lj -= 4;
        }
    }
    for half in 0..2 {
        for i in 0..32 {
            let b = 128 * half;
            y[32 + 32 * half + i] =
                (l[b + i] | (l[b + i + 32] << 2) | (l[b + i + 64] << 4) | (l[b + i + 96] << 6))
                    as u8;
        }
    }
}

/// Shared by Q4_K / Q5_K: per-32 (scale, min) search, packed 6-bit scales, final levels.
fn k4_scales(x: &[f32], y: &mut [u8], nmax: i32, rmin: f32, nstep: i32, l: &mut [u8; QK_K]) {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2: f32 = xs.iter().map(|v| v * v).sum();
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut w = [0f32; 32];
        for (wi, &v) in w.iter_mut().zip(xs) {
            *wi = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(
            xs,
            &w,
            nmax,
            &mut l[32 * j..32 * j + 32],
            rmin,
            0.1,
            nstep,
            false,
        );
        scales[j] = s;
        mins[j] = m;
        max_scale = max_scale.max(s);
        max_min = max_min.max(m);
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let sc = &mut y[4..16];
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    put_f16(y, 0, max_scale / 63.0);
    put_f16(y, 2, max_min / 63.0);
    let d_all = super::util::rd_f16(y, 0);
    let dmin_all = super::util::rd_f16(y, 2);
    for j in 0..8 {
        let (s, m) = scale_min_k4(j, &y[4..16]);
        let d = d_all * s as f32;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * m as f32;
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, nmax) as u8;
        }
    }
}

fn q4_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k4_scales(x, y, 15, -1.0, 20, &mut l);
    for c in 0..4 {
        for i in 0..32 {
            y[16 + 32 * c + i] = l[64 * c + i] | (l[64 * c + i + 32] << 4);
        }
    }
}

fn q5_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k4_scales(x, y, 31, -0.5, 15, &mut l);
    let (head, ql) = y.split_at_mut(48);
    let qh = &mut head[16..48];
    qh.fill(0);
    for c in 0..4 {
        for i in 0..32 {
            let mut l1 = l[64 * c + i];
            let mut l2 = l[64 * c + i + 32];
            if l1 > 15 {
                l1 -= 16;
                qh[i] |= 1 << (2 * c);
            }
            if l2 > 15 {
                l2 -= 16;
                qh[i] |= 2 << (2 * c);
            }
            ql[32 * c + i] = l1 | (l2 << 4);
        }
    }
}

fn q6_k(x: &[f32], y: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; 16];
    let (mut max_scale, mut max_abs) = (0f32, 0f32);
    for ib in 0..16 {
        let s = make_qx_quants(
            &x[16 * ib..16 * ib + 16],
            32,
            &mut l[16 * ib..16 * ib + 16],
            1,
        );
        scales[ib] = s;
        if s.abs() > max_abs {
            max_abs = s.abs();
            max_scale = s;
        }
    }
    if max_abs < GROUP_MAX_EPS {
        y.fill(0);
        return;
    }
    let iscale = -128.0 / max_scale;
    put_f16(y, 208, 1.0 / iscale);
    for ib in 0..16 {
        y[192 + ib] = nearest_int(iscale * scales[ib]).min(127) as i8 as u8;
    }
    let d_all = super::util::rd_f16(y, 208);
    for j in 0..16 {
        let d = d_all * (y[192 + j] as i8) as f32;
        if d == 0.0 {
            continue;
        }
        for ii in 0..16 {
            l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-32, 31) + 32) as i8;
        }
    }
    for n in 0..2 {
        let b = 128 * n;
        for i in 0..32 {
            let q1 = l[b + i] as u8;
            let q2 = l[b + i + 32] as u8;
            let q3 = l[b + i + 64] as u8;
            let q4 = l[b + i + 96] as u8;
            y[64 * n + i] = (q1 & 0xf) | ((q3 & 0xf) << 4);
            y[64 * n + i + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
            y[128 + 32 * n + i] =
                (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
        }
    }
}
