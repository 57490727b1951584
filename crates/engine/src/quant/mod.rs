//! Quantized tensor formats (ggml block layouts), dequantization, and the dot-product / mat-vec /
//! mat-mul kernels with run-time SIMD dispatch (AVX-512 VNNI, AVX2(+AVX-VNNI), NEON for the
//! Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 dots on aarch64, portable scalar everywhere else).
//!
//! API CONTRACT (other modules code against exactly this; implementation may add more):
//!
//! ```ignore
//! #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
//! pub enum GgmlType { F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, BF16, ... }
//! impl GgmlType {
//!     pub fn from_u32(id: u32) -> Option<GgmlType>;   // ggml's numeric ids (F32=0,F16=1,Q4_0=2,Q4_1=3,Q5_0=6,Q5_1=7,Q8_0=8,Q8_1=9,Q2_K=10..Q8_K=15,BF16=30)
//!     pub fn name(self) -> &'static str;               // "Q4_1", ...
//!     pub fn block_size(self) -> usize;                // elements per block (1 for F32/F16/BF16, 32, 256)
//!     pub fn type_size(self) -> usize;                 // bytes per block
//!     pub fn row_bytes(self, n: usize) -> Option<usize>; // None if n not a multiple of block_size
//!     pub fn is_supported(self) -> bool;               // has dequant + dot kernels (all but Q8_1, Q8_K)
//! }
//! pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError>;
//! pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError>; // ggml *_ref semantics
//! pub fn quantize_matrix(ty: GgmlType, src: &[f32], rows: usize, cols: usize) -> Result<Vec<u8>, QuantError>;
//!
//! /// A weight matrix in its packed GGUF form: `rows` rows of `cols` elements, row-major.
//! pub struct QMatrix<'a> { pub ty: GgmlType, pub rows: usize, pub cols: usize, pub data: &'a [u8] }
//! impl QMatrix<'_> { pub fn new(ty, rows, cols, data) -> Result<Self, QuantError>; pub fn validate(&self) -> Result<(), QuantError>; }
//! /// out[r] = dot(W[r,:], x) for every row; x.len()==cols, out.len()==rows. Quantizes x once
//! /// (to the activation format matching ty), then runs the integer kernel, parallel over rows (rayon).
//! pub fn matvec(w: &QMatrix, x: &[f32], out: &mut [f32], scratch: &mut MatScratch) -> Result<(), QuantError>;
//! /// Batched: x is [n_tokens × cols] row-major, out is [n_tokens × rows]. Prefill path: an
//! /// int8 GEMM on x86 for the Q4/Q5/Q8 families and Q4_K/Q5_K/Q6_K; otherwise dequantize W
//! /// (in row panels) to f32 and run an f32 GEMM (the `gemm` crate); both rayon-parallel.
//! /// (n_tokens < 4 runs matvec per token instead.)
//! pub fn matmul(w: &QMatrix, x: &[f32], n_tokens: usize, out: &mut [f32], scratch: &mut MatScratch) -> Result<(), QuantError>;
//! /// f32 helpers for attention: out[m×n] = a[m×k] · b_tᵀ (b_t is [n×k]), and the fully strided form.
//! pub fn matmul_f32(a: &[f32], b_t: &[f32], out: &mut [f32], m: usize, n: usize, k: usize) -> Result<(), QuantError>;
//! pub fn gemm_f32(a: MatF32, b: MatF32, out: MatF32Mut, alpha: f32, accumulate: bool, threads: usize) -> Result<(), QuantError>;
//! pub struct MatScratch { reusable buffers; Default }
//! pub fn kernel_name() -> &'static str;   // which SIMD path was selected ("avx512-vnni", "avx2-vnni", "avx2", "neon", "scalar")
//! pub enum QuantError { thiserror }
//! ```

mod dequant;
mod dot;
mod igemm;
mod matmul;
mod matvec;
mod quantize;
mod types;
mod util;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_golden;

pub use dequant::dequantize_row;
pub use dot::kernel_name;
pub use matmul::{gemm_f32, matmul, matmul_f32, MatF32, MatF32Mut};
pub use matvec::{matvec, MatScratch};
pub use quantize::{quantize_matrix, quantize_row};
pub use types::{GgmlType, QK_K};

/// Errors from the quant kernels. Every malformed input is reported, never panicked on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// The type has no dequantization or dot kernel here.
    #[error("tensor type {0} is not supported by the quant kernels")]
    Unsupported(GgmlType),
    /// A row length is not a whole number of blocks.
    #[error("{n} elements is not a multiple of the {ty} block size {block}")]
    NotBlockMultiple {
        ty: GgmlType,
        n: usize,
        block: usize,
    },
    /// A buffer has the wrong length.
    #[error("{what}: expected {expected}, got {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A size computation overflowed `usize`.
    #[error("size overflow")]
    Overflow,
}

impl GgmlType {
    /// Whether this type has dequantization and mat-vec kernels (every weight type; the
    /// activation-only formats Q8_1 and Q8_K can be dequantized but not used as weights).
    pub fn is_supported(self) -> bool {
        !matches!(self, GgmlType::Q8_1 | GgmlType::Q8_K)
    }
}

/// A weight matrix in its packed GGUF form: `rows` rows of `cols` elements, row-major.
#[derive(Clone, Copy, Debug)]
pub struct QMatrix<'a> {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: &'a [u8],
}

impl<'a> QMatrix<'a> {
    /// Builds a validated matrix view.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, data: &'a [u8]) -> Result<Self, QuantError> {
        let m = QMatrix {
            ty,
            rows,
            cols,
            data,
        };
        m.validate()?;
        Ok(m)
    }

    /// Bytes per packed row.
    pub fn row_bytes(&self) -> Result<usize, QuantError> {
        self.ty
            .row_bytes(self.cols)
            .ok_or(QuantError::NotBlockMultiple {
                ty: self.ty,
                n: self.cols,
                block: self.ty.block_size(),
            })
    }

    /// Checks that `data` is exactly `rows` packed rows of `cols` elements.
    pub fn validate(&self) -> Result<(), QuantError> {
        let rb = self.row_bytes()?;
        let expected = rb.checked_mul(self.rows).ok_or(QuantError::Overflow)?;
        if self.data.len() != expected {
            return Err(QuantError::Length {
                what: "packed matrix bytes",
                expected,
                got: self.data.len(),
            });
        }
        Ok(())
    }
}
