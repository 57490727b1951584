//! Prefill mat-mul and general strided f32 GEMM helpers for attention.
//!
//! Path choice in [`matmul`] (measured with `benches/kernels.rs`, SmolLM2-135M shapes):
//! - fewer than 4 tokens: the integer mat-vec kernel once per token (no per-call setup);
//! - Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K (+ Q6_K on AVX-512) on x86 with AVX2 or better: the
//!   int8 GEMM in `igemm` — about 3× faster than dequantize + f32 GEMM with AVX-512 VNNI,
//!   because stable Rust's `gemm` crate only has AVX2 f32 micro-kernels while `vpdpbusd` does
//!   64 MACs per instruction (see `igemm` docs);
//! - everything else: dequantize weight row panels to f32 (in parallel, into the scratch) and
//!   run the `gemm` crate's f32 GEMM with rayon parallelism.

use super::dequant::dequantize_row_fast;
use super::dot::kernels;
use super::igemm;
use super::matvec::{check_len, matvec_unchecked, MatScratch};
use super::{GgmlType, QMatrix, QuantError};
use gemm::Parallelism;
use rayon::prelude::*;

/// With fewer tokens than this, [`matmul`] runs the integer mat-vec kernel once per token
/// (dequantizing the whole matrix would cost more than it saves).
pub(crate) const MATVEC_MAX_TOKENS: usize = 4;

/// Target size (f32 elements) of one dequantized weight panel.
const PANEL_ELEMS: usize = 1 << 20;

/// Below this many multiply-adds a GEMM runs single-threaded.
const GEMM_PAR_MIN_MACS: usize = 1 << 18;

/// out = x · Wᵀ: `x` is `[n_tokens × cols]` row-major, `out` is `[n_tokens × rows]`.
///
/// Batches of fewer than 4 tokens run [`super::matvec`]'s integer kernels once per token. Larger
/// ones use the x86 int8 GEMM where the type has one (activations quantized to Q8 like
/// llama.cpp does), otherwise the weights are dequantized in row panels into `scratch` and
/// multiplied with an f32 GEMM (`gemm` crate, rayon-parallel). No allocation once `scratch` is
/// warm. The environment variable `LONGCTX_IGEMM` (`avx512`, `avxvnni`, `avx2`, `off`) selects
/// a lower int8 level for benchmarking.
pub fn matmul(
    w: &QMatrix<'_>,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
    scratch: &mut MatScratch,
) -> Result<(), QuantError> {
    w.validate()?;
    let nx = n_tokens.checked_mul(w.cols).ok_or(QuantError::Overflow)?;
    let no = n_tokens.checked_mul(w.rows).ok_or(QuantError::Overflow)?;
    check_len("matmul x", nx, x.len())?;
    check_len("matmul out", no, out.len())?;
    let kern = kernels()
        .for_type(w.ty)
        .ok_or(QuantError::Unsupported(w.ty))?;
    if n_tokens == 0 || w.rows == 0 {
        return Ok(());
    }
    if w.cols == 0 {
        out.fill(0.0);
        return Ok(());
    }
    if uses_int8_gemm(w.ty, n_tokens) {
        igemm::matmul(w, x, out, &mut scratch.igemm);
        return Ok(());
    }
    if n_tokens < MATVEC_MAX_TOKENS {
        for (xt, ot) in x.chunks_exact(w.cols).zip(out.chunks_exact_mut(w.rows)) {
            matvec_unchecked(w, kern, xt, ot, &mut scratch.acts);
        }
        return Ok(());
    }
    matmul_dequant(w, x, n_tokens, out, &mut scratch.panel);
    Ok(())
}

/// Whether [`matmul`] takes the int8 (VNNI) GEMM path for this type and batch size.
pub(crate) fn uses_int8_gemm(ty: GgmlType, n_tokens: usize) -> bool {
    n_tokens >= MATVEC_MAX_TOKENS && igemm::supported(ty)
}

/// The dequant + f32 GEMM path (inputs validated, all dimensions non-zero).
pub(crate) fn matmul_dequant(
    w: &QMatrix<'_>,
    x: &[f32],
    n_tokens: usize,
    out: &mut [f32],
    panel: &mut Vec<f32>,
) {
    let (rows, cols) = (w.rows, w.cols);
    let rb = w.data.len() / rows;
    let par = parallelism(n_tokens * rows * cols);

    // F32 weights that happen to be 4-byte aligned are used in place.
    #[cfg(target_endian = "little")]
    if w.ty == GgmlType::F32
        && (w.data.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f32>())
    {
        // SAFETY: the pointer is aligned for f32, the length is rows*cols*4 bytes (validated),
        // any bit pattern is a valid f32, and the file is little-endian like this target.
        let wf = unsafe { std::slice::from_raw_parts(w.data.as_ptr() as *const f32, rows * cols) };
        gemm_xwt(x, n_tokens, wf, 0, rows, cols, rows, out, par);
        return;
    }

    let pr = (PANEL_ELEMS / cols).clamp(16, rows.max(16)).min(rows);
    if panel.len() < pr * cols {
        panel.resize(pr * cols, 0.0);
    }
    let mut r0 = 0;
    while r0 < rows {
        let nr = pr.min(rows - r0);
        let p = &mut panel[..nr * cols];
        let src = &w.data[r0 * rb..(r0 + nr) * rb];
        dequant_rows(w.ty, src, rb, cols, p);
        gemm_xwt(x, n_tokens, p, r0, nr, cols, rows, out, par);
        r0 += nr;
    }
}

/// Dequantizes consecutive packed rows into `dst` (`rows × cols`), in parallel when large.
fn dequant_rows(ty: GgmlType, src: &[u8], rb: usize, cols: usize, dst: &mut [f32]) {
    let one = |s: &[u8], d: &mut [f32]| {
        for (sr, dr) in s.chunks_exact(rb).zip(d.chunks_exact_mut(cols)) {
            // Lengths are consistent by construction (validated matrix), so this cannot fail.
            let _ = dequantize_row_fast(ty, sr, dr);
        }
    };
    let rows = dst.len() / cols;
    let threads = rayon::current_num_threads();
    if threads <= 1 || dst.len() < 1 << 15 {
        one(src, dst);
        return;
    }
    let chunk = (rows / (threads * 4)).max(4);
    dst.par_chunks_mut(chunk * cols)
        .zip(src.par_chunks(chunk * rb))
        .for_each(|(d, s)| one(s, d));
}

/// out[t, r0 + j] = sum_k x[t, k] * p[j, k] for j < nr.
#[allow(clippy::too_many_arguments)]
fn gemm_xwt(
    x: &[f32],
    n_tokens: usize,
    p: &[f32],
    r0: usize,
    nr: usize,
    cols: usize,
    out_stride: usize,
    out: &mut [f32],
    par: Parallelism,
) {
    debug_assert!(x.len() >= n_tokens * cols && p.len() >= nr * cols);
    debug_assert!(out.len() >= (n_tokens - 1) * out_stride + r0 + nr);
    // SAFETY: every index the GEMM touches is in bounds: lhs (t, k) -> t*cols + k < x.len();
    // rhs (k, j) -> j*cols + k < p.len(); dst (t, j) -> t*out_stride + r0 + j < out.len()
    // (asserted above; callers pass validated shapes). dst does not alias the inputs.
    unsafe {
        gemm::gemm(
            n_tokens,
            nr,
            cols,
            out.as_mut_ptr().add(r0),
            1,
            out_stride as isize,
            false,
            x.as_ptr(),
            1,
            cols as isize,
            p.as_ptr(),
            cols as isize,
            1,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

fn parallelism(macs: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 && macs >= GEMM_PAR_MIN_MACS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// A read-only strided f32 matrix: element (i, j) is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatF32<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatF32<'a> {
    /// A dense row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatF32 {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose view (no copy).
    pub fn t(self) -> Self {
        MatF32 {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn check(&self, what: &'static str) -> Result<(), QuantError> {
        check_extent(
            what,
            self.data.len(),
            self.rows,
            self.cols,
            self.row_stride,
            self.col_stride,
        )
    }
}

/// A writable f32 matrix with unit column stride: element (i, j) is `data[i * row_stride + j]`
/// (`row_stride >= cols`, so rows never overlap).
#[derive(Debug)]
pub struct MatF32Mut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
}

impl<'a> MatF32Mut<'a> {
    /// A dense row-major `rows × cols` matrix.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatF32Mut {
            data,
            rows,
            cols,
            row_stride: cols,
        }
    }
}

fn check_extent(
    what: &'static str,
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> Result<(), QuantError> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)))
        .ok_or(QuantError::Overflow)?;
    if last >= len || rs > isize::MAX as usize || cs > isize::MAX as usize {
        return Err(QuantError::Length {
            what,
            expected: last + 1,
            got: len,
        });
    }
    Ok(())
}

/// General f32 GEMM: `out = alpha * a · b` (or `out += alpha * a · b` when `accumulate`).
///
/// `a` is `m × k`, `b` is `k × n` (use [`MatF32::t`] for a transposed operand, e.g. Kᵀ),
/// `out` is `m × n`. `threads`: 0 = automatic (rayon pool for large products), 1 = run on the
/// calling thread (use inside your own parallel loop over heads), n = at most n threads.
pub fn gemm_f32(
    a: MatF32<'_>,
    b: MatF32<'_>,
    out: MatF32Mut<'_>,
    alpha: f32,
    accumulate: bool,
    threads: usize,
) -> Result<(), QuantError> {
    a.check("gemm_f32 a")?;
    b.check("gemm_f32 b")?;
    check_len("gemm_f32 inner dimension (b.rows)", a.cols, b.rows)?;
    check_len("gemm_f32 out rows", a.rows, out.rows)?;
    check_len("gemm_f32 out cols", b.cols, out.cols)?;
    if out.rows > 1 && out.row_stride < out.cols {
        return Err(QuantError::Length {
            what: "gemm_f32 out row_stride (must be >= cols)",
            expected: out.cols,
            got: out.row_stride,
        });
    }
    check_extent(
        "gemm_f32 out",
        out.data.len(),
        out.rows,
        out.cols,
        out.row_stride,
        1,
    )?;
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                out.data[r * out.row_stride..r * out.row_stride + n].fill(0.0);
            }
        }
        return Ok(());
    }
    let macs = m.saturating_mul(n).saturating_mul(k);
    let par = match threads {
        0 => parallelism(macs),
        1 => Parallelism::None,
        t => Parallelism::Rayon(t.min(rayon::current_num_threads().max(1))),
    };
    // SAFETY: all three extents were checked against their slices above (every touched index
    // is < len); `out` is exclusively borrowed, so it aliases neither input; strides fit isize.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.data.as_mut_ptr(),
            1,
            out.row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0f32,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

/// `out[m×n] = a[m×k] · b_tᵀ` where `b_t` is `[n×k]` row-major (e.g. Q·Kᵀ with K stored by rows).
pub fn matmul_f32(
    a: &[f32],
    b_t: &[f32],
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
) -> Result<(), QuantError> {
    check_len(
        "matmul_f32 a",
        m.checked_mul(k).ok_or(QuantError::Overflow)?,
        a.len(),
    )?;
    check_len(
        "matmul_f32 b_t",
        n.checked_mul(k).ok_or(QuantError::Overflow)?,
        b_t.len(),
    )?;
    check_len(
        "matmul_f32 out",
        m.checked_mul(n).ok_or(QuantError::Overflow)?,
        out.len(),
    )?;
    gemm_f32(
        MatF32::row_major(a, m, k),
        MatF32::row_major(b_t, n, k).t(),
        MatF32Mut::row_major(out, m, n),
        1.0,
        false,
        0,
    )
}
