//! Decode-time mat-vec: quantize the activation once, then run the selected row-dot kernel
//! over row chunks in parallel (rayon), each task writing a disjoint slice of `out`.

use super::dot::{kernels, ActBuf, RowKernel};
use super::{QMatrix, QuantError};
use rayon::prelude::*;

/// Reusable buffers for [`matvec`] / [`super::matmul`]. Grow-only: once warm, calls allocate
/// nothing. One scratch per thread of the caller (it is `Send`, not shared).
#[derive(Default, Debug, Clone)]
pub struct MatScratch {
    pub(crate) acts: ActBuf,
    pub(crate) panel: Vec<f32>,
    pub(crate) igemm: super::igemm::IgemmScratch,
}

impl MatScratch {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Below this many weight bytes a mat-vec runs on the calling thread (fork/join costs more).
const PAR_MIN_BYTES: usize = 48 * 1024;

/// `out[r] = dot(W[r, :], x)` for every row. `x.len() == w.cols`, `out.len() == w.rows`.
///
/// Quantizes `x` once into `scratch` (Q8 32-blocks for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, Q8_K for the
/// k-quants; F32/F16/BF16 weights use `x` as is), then runs the integer kernel in parallel
/// over row chunks.
pub fn matvec(
    w: &QMatrix<'_>,
    x: &[f32],
    out: &mut [f32],
    scratch: &mut MatScratch,
) -> Result<(), QuantError> {
    w.validate()?;
    check_len("matvec x", w.cols, x.len())?;
    check_len("matvec out", w.rows, out.len())?;
    let kern = kernels()
        .for_type(w.ty)
        .ok_or(QuantError::Unsupported(w.ty))?;
    matvec_unchecked(w, kern, x, out, &mut scratch.acts);
    Ok(())
}

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), QuantError> {
    if expected != got {
        return Err(QuantError::Length {
            what,
            expected,
            got,
        });
    }
    Ok(())
}

/// `w` validated, lengths checked.
pub(crate) fn matvec_unchecked(
    w: &QMatrix<'_>,
    kern: RowKernel,
    x: &[f32],
    out: &mut [f32],
    acts: &mut ActBuf,
) {
    if w.rows == 0 {
        return;
    }
    if w.cols == 0 {
        out.fill(0.0);
        return;
    }
    let rb = w.data.len() / w.rows;
    match kern {
        RowKernel::Q8(f) => {
            acts.quantize_q8(x);
            let a = acts.q8();
            run_rows(w.data, rb, out, |d, o| f(d, rb, &a, o));
        }
        RowKernel::Q8K(f) => {
            acts.quantize_q8k(x);
            let a = acts.q8k();
            run_rows(w.data, rb, out, |d, o| f(d, rb, &a, o));
        }
        RowKernel::F32(f) => run_rows(w.data, rb, out, |d, o| f(d, rb, x, o)),
    }
}

/// Splits rows into chunks across the rayon pool (or runs inline when small).
fn run_rows(data: &[u8], rb: usize, out: &mut [f32], f: impl Fn(&[u8], &mut [f32]) + Sync) {
    let rows = out.len();
    let threads = rayon::current_num_threads();
    if threads <= 1 || data.len() < PAR_MIN_BYTES || rows < 32 {
        f(data, out);
        return;
    }
    // Aim for ~8 tasks per thread for load balance, 16..=256 rows each, a multiple of 8.
    let chunk = (rows / (threads * 8)).clamp(16, 256) & !7;
    out.par_chunks_mut(chunk)
        .zip(data.par_chunks(chunk * rb))
        .for_each(|(o, d)| f(d, o));
}
