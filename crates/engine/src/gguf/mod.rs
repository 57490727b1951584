//! GGUF file reading: memory-mapped, validated with hard caps, typed errors for every corruption.
//!
//! API CONTRACT (other modules code against exactly this; implementation may add more):
//!
//! ```ignore
//! pub struct GgufFile { /* backing bytes (mmap or Vec), version, metadata, tensors, data offset */ }
//! impl GgufFile {
//!     pub fn open(path: &Path) -> Result<GgufFile, GgufError>;          // mmap + parse + validate
//!     pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError>;  // same validation, in memory
//!     pub fn version(&self) -> u32;
//!     pub fn metadata(&self) -> &[(String, MetaValue)];                  // in file order
//!     pub fn get(&self, key: &str) -> Option<&MetaValue>;
//!     pub fn get_u64(&self, key: &str) -> Result<Option<u64>, GgufError>;  // any unsigned/signed>=0 int type
//!     pub fn get_u32(&self, key: &str) -> Result<Option<u32>, GgufError>;
//!     pub fn get_f32(&self, key: &str) -> Result<Option<f32>, GgufError>;  // F32 or F64
//!     pub fn get_bool(&self, key: &str) -> Result<Option<bool>, GgufError>;
//!     pub fn get_str(&self, key: &str) -> Result<Option<&str>, GgufError>;
//!     pub fn get_str_array(&self, key: &str) -> Result<Option<Vec<&str>>, GgufError>;
//!     pub fn get_f32_array(&self, key: &str) -> Result<Option<Vec<f32>>, GgufError>;
//!     pub fn get_i32_array(&self, key: &str) -> Result<Option<Vec<i32>>, GgufError>;
//!     // (wrong value type for a present key -> Err(GgufError::WrongType{key, expected, found}))
//!     pub fn architecture(&self) -> Result<&str, GgufError>;               // "general.architecture", required
//!     pub fn tensors(&self) -> &[TensorInfo];
//!     pub fn tensor(&self, name: &str) -> Option<&TensorInfo>;
//!     pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8];               // exact byte range of the tensor data
//!     pub fn bytes(&self) -> &[u8];                                       // whole file
//! }
//! pub enum MetaValue { U8(u8), I8(i8), U16(u16), I16(i16), U32(u32), I32(i32), F32(f32), Bool(bool),
//!                      String(String), Array(Vec<MetaValue>), U64(u64), I64(i64), F64(f64) }
//! pub struct TensorInfo { pub name: String, pub dims: Vec<u64> /* ne[0] = innermost (row length) */,
//!                         pub ty: crate::quant::GgmlType, pub offset: u64 /* absolute file offset */,
//!                         pub n_bytes: u64 }
//! impl TensorInfo { pub fn n_elements(&self) -> u64; pub fn rows(&self) -> u64 /* product of dims[1..] */; pub fn cols(&self) -> u64 /* dims[0] */ }
//! pub enum GgufError { thiserror; one variant per problem, each naming key/tensor/offset }
//! pub mod writer { pub struct GgufWriter; builds a valid (or deliberately corrupt) GGUF in memory for tests }
//! ```
