//! Quantized tensor formats (ggml block layouts), dequantization, and the dot-product / mat-vec /
//! mat-mul kernels with run-time SIMD dispatch (AVX-512, AVX2+FMA, NEON, portable scalar).
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
//!     pub fn is_supported(self) -> bool;               // has dequant + dot kernels
//! }
//! pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), QuantError>;
//!
//! /// A weight matrix in its packed GGUF form: `rows` rows of `cols` elements, row-major.
//! pub struct QMatrix<'a> { pub ty: GgmlType, pub rows: usize, pub cols: usize, pub data: &'a [u8] }
//! /// out[r] = dot(W[r,:], x) for every row; x.len()==cols, out.len()==rows. Quantizes x once
//! /// (to the activation format matching ty), then runs the integer kernel, parallel over rows (rayon).
//! pub fn matvec(w: &QMatrix, x: &[f32], out: &mut [f32], scratch: &mut MatScratch) -> Result<(), QuantError>;
//! /// Batched: x is [n_tokens × cols] row-major, out is [n_tokens × rows]. Prefill path:
//! /// dequantize W (in row panels) to f32 and run an f32 GEMM (the `gemm` crate), parallel.
//! pub fn matmul(w: &QMatrix, x: &[f32], n_tokens: usize, out: &mut [f32], scratch: &mut MatScratch) -> Result<(), QuantError>;
//! pub struct MatScratch { reusable buffers; Default }
//! pub fn kernel_name() -> &'static str;   // which SIMD path was selected ("avx512-vnni", "avx2", "neon", "scalar")
//! pub enum QuantError { thiserror }
//! ```

mod types;
pub use types::{GgmlType, QK_K};
