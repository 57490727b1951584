//! GGUF file reading: memory-mapped, validated with hard caps, typed errors for every corruption.
//!
//! A [`GgufFile`] is opened with [`GgufFile::open`] (memory map) or built from an owned buffer with
//! [`GgufFile::from_bytes`]. Both run the same parser, which accepts GGUF v2 and v3 (little-endian)
//! and checks everything before handing out any tensor range:
//!
//! * header: magic, version, tensor count (≤ [`MAX_TENSORS`]), kv count (≤ [`MAX_KVS`]);
//! * metadata: non-empty unique keys, known value types, string and array lengths that fit in the
//!   rest of the file (arrays also ≤ [`MAX_ARRAY_LEN`]), arrays nested at most [`MAX_ARRAY_DEPTH`]
//!   deep, `general.alignment` a nonzero power of two (default [`DEFAULT_ALIGNMENT`]);
//! * tensor infos: non-empty unique names, 1..=[`MAX_DIMS`] dims whose product fits in `i64`, a
//!   known [`GgmlType`] whose block size divides the row length, a data offset that is aligned and
//!   whose byte range lies inside the file.
//!
//! Every problem is a distinct [`GgufError`] variant whose message names the key, tensor, offset
//! and sizes involved. No input makes the parser panic or allocate more than the input justifies.
//!
//! Tensor data starts right after the tensor infos, rounded up to the alignment; offsets stored in
//! the file are relative to that point, while [`TensorInfo::offset`] is absolute and
//! [`GgufFile::tensor_bytes`] returns exactly `n_bytes` bytes.
//!
//! Metadata is kept in file order as [`MetaValue`]s. The typed getters (`get_u32`, `get_str`,
//! `get_str_array`, ...) return `Ok(None)` for a missing key and
//! [`GgufError::WrongType`] for a present key of another type; integer getters accept any integer
//! type whose value fits (else [`GgufError::ValueOutOfRange`]), `get_f32` accepts F32 and F64.
//! The file is `Send + Sync` and can be shared by reference across threads.
//!
//! [`writer::GgufWriter`] builds GGUF files in memory (valid or deliberately corrupt) for tests.

mod parse;
pub mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::quant::GgmlType;

/// Most tensors a file may declare.
pub const MAX_TENSORS: u64 = 1 << 20;
/// Most metadata key/value pairs a file may declare.
pub const MAX_KVS: u64 = 1 << 20;
/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// Most elements in one metadata array. Real vocabularies are < 1M entries; the cap bounds the
/// memory a hostile file can make us allocate (each element becomes a [`MetaValue`]).
pub const MAX_ARRAY_LEN: u64 = 1 << 24;
/// Deepest array nesting accepted (an array of scalars has depth 1).
pub const MAX_ARRAY_DEPTH: u32 = 4;
/// Tensor data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that overrides the tensor data alignment.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// The four magic bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// Metadata value type ids as stored in the file (`enum gguf_type`).
pub mod value_type {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;

    /// Name of a value type id, `None` for ids outside the GGUF spec.
    pub fn name(id: u32) -> Option<&'static str> {
        Some(match id {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            BOOL => "bool",
            STRING => "string",
            ARRAY => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
            _ => return None,
        })
    }
}

/// Everything that can go wrong opening or querying a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read GGUF file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a GGUF file: magic bytes are {found:02x?}, expected \"GGUF\"")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported GGUF version {version} (supported: 2, 3, little-endian)")]
    UnsupportedVersion { version: u32 },
    #[error("tensor count {count} exceeds the limit of {max}")]
    TooManyTensors { count: u64, max: u64 },
    #[error("metadata kv count {count} exceeds the limit of {max}")]
    TooManyKvs { count: u64, max: u64 },
    #[error("file truncated at offset {offset} while reading {what}: need {needed} bytes, {available} left")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error("metadata kv #{index} at offset {offset} has an empty key")]
    EmptyKey { index: u64, offset: u64 },
    #[error("duplicate metadata key '{key}' at offset {offset}")]
    DuplicateKey { key: String, offset: u64 },
    #[error("unknown metadata value type id {type_id} for key '{key}' at offset {offset}")]
    UnknownValueType {
        key: String,
        type_id: u32,
        offset: u64,
    },
    #[error("invalid bool byte {value} for key '{key}' at offset {offset}")]
    BadBool { key: String, value: u8, offset: u64 },
    #[error(
        "length {len} of {what} at offset {offset} exceeds the {remaining} bytes left in the file"
    )]
    StringTooLong {
        what: String,
        len: u64,
        offset: u64,
        remaining: u64,
    },
    #[error("array length {len} for key '{key}' at offset {offset} is impossible: at most {max} elements fit (limit {MAX_ARRAY_LEN}, {remaining} bytes left)")]
    ArrayTooLong {
        key: String,
        len: u64,
        max: u64,
        remaining: u64,
        offset: u64,
    },
    #[error("arrays nested deeper than {max} levels for key '{key}' at offset {offset}")]
    ArrayTooDeep { key: String, max: u32, offset: u64 },
    #[error("{ALIGNMENT_KEY} = {value} is not a nonzero power of two that fits in u32")]
    BadAlignment { value: u64 },
    #[error("tensor #{index} at offset {offset} has an empty name")]
    EmptyTensorName { index: u64, offset: u64 },
    #[error("duplicate tensor name '{name}' at offset {offset}")]
    DuplicateTensor { name: String, offset: u64 },
    #[error("tensor '{tensor}' has {n_dims} dimensions, expected 1..={max}")]
    BadDimCount {
        tensor: String,
        n_dims: u32,
        max: u32,
    },
    #[error("tensor '{tensor}' dims {dims:?} overflow (element count or byte size too large)")]
    DimsOverflow { tensor: String, dims: Vec<u64> },
    #[error("tensor '{tensor}' of type {ty} has row length {cols}, not a multiple of its block size {block_size}")]
    BadRowLength {
        tensor: String,
        ty: GgmlType,
        cols: u64,
        block_size: u64,
    },
    #[error("tensor '{tensor}' has unknown ggml type id {type_id}")]
    UnknownTensorType { tensor: String, type_id: u32 },
    #[error("tensor '{tensor}' data offset {offset} (relative) is not a multiple of the alignment {alignment}")]
    MisalignedTensor {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error("tensor '{tensor}' data [{offset}, {offset}+{n_bytes}) lies past the end of the file ({file_len} bytes)")]
    TensorOutOfBounds {
        tensor: String,
        offset: u64,
        n_bytes: u64,
        file_len: u64,
    },
    #[error("metadata key '{key}' has type {found}, expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("metadata key '{key}' value {value} does not fit in {target}")]
    ValueOutOfRange {
        key: String,
        value: String,
        target: &'static str,
    },
    #[error("required metadata key '{key}' is missing")]
    MissingKey { key: String },
}

/// One metadata value. Arrays hold elements of a single type (GGUF stores one element type per
/// array); an empty array does not remember its element type.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<MetaValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    /// The GGUF value type id (see [`value_type`]).
    pub fn type_id(&self) -> u32 {
        use value_type as t;
        match self {
            MetaValue::U8(_) => t::U8,
            MetaValue::I8(_) => t::I8,
            MetaValue::U16(_) => t::U16,
            MetaValue::I16(_) => t::I16,
            MetaValue::U32(_) => t::U32,
            MetaValue::I32(_) => t::I32,
            MetaValue::F32(_) => t::F32,
            MetaValue::Bool(_) => t::BOOL,
            MetaValue::String(_) => t::STRING,
            MetaValue::Array(_) => t::ARRAY,
            MetaValue::U64(_) => t::U64,
            MetaValue::I64(_) => t::I64,
            MetaValue::F64(_) => t::F64,
        }
    }

    /// Human-readable type, e.g. `"u32"` or `"array of string"` (used in [`GgufError::WrongType`]).
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::Array(items) => match items.first() {
                None => "empty array",
                Some(MetaValue::U8(_)) => "array of u8",
                Some(MetaValue::I8(_)) => "array of i8",
                Some(MetaValue::U16(_)) => "array of u16",
                Some(MetaValue::I16(_)) => "array of i16",
                Some(MetaValue::U32(_)) => "array of u32",
                Some(MetaValue::I32(_)) => "array of i32",
                Some(MetaValue::F32(_)) => "array of f32",
                Some(MetaValue::Bool(_)) => "array of bool",
                Some(MetaValue::String(_)) => "array of string",
                Some(MetaValue::Array(_)) => "array of array",
                Some(MetaValue::U64(_)) => "array of u64",
                Some(MetaValue::I64(_)) => "array of i64",
                Some(MetaValue::F64(_)) => "array of f64",
            },
            other => value_type::name(other.type_id()).unwrap_or("unknown"),
        }
    }

    /// The value as a wide signed integer, for any integer variant.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// The value as `f64`, for `F32` and `F64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The string, for `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, for `Array`.
    pub fn as_array(&self) -> Option<&[MetaValue]> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Where one tensor's data lives and how it is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the innermost (row length, contiguous) dimension.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub offset: u64,
    /// Exact data size: `ty.row_bytes(dims[0]) * rows()`.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Total element count (product of all dims).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    /// Number of rows: product of `dims[1..]` (1 for a vector).
    pub fn rows(&self) -> u64 {
        self.dims
            .iter()
            .skip(1)
            .fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    /// Row length: `dims[0]`.
    pub fn cols(&self) -> u64 {
        self.dims.first().copied().unwrap_or(0)
    }
}

/// Backing storage of a parsed file.
enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// A parsed, validated GGUF file: metadata in file order, tensor infos, and the backing bytes.
pub struct GgufFile {
    backing: Backing,
    version: u32,
    metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("len", &self.bytes().len())
            .field("n_kv", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps `path`, then parses and validates it.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; like every mmap-based model loader we rely on the file not
        // being truncated or rewritten while it is open. All reads go through validated ranges.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::from_backing(Backing::Mmap(map))
    }

    /// Parses and validates an in-memory GGUF image (same checks as [`GgufFile::open`]).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::from_backing(Backing::Owned(bytes))
    }

    fn from_backing(backing: Backing) -> Result<GgufFile, GgufError> {
        let p = parse::parse(backing.bytes())?;
        Ok(GgufFile {
            backing,
            version: p.version,
            metadata: p.metadata,
            meta_index: p.meta_index,
            tensors: p.tensors,
            tensor_index: p.tensor_index,
            alignment: p.alignment,
            data_offset: p.data_offset,
        })
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// All metadata pairs, in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn int(&self, key: &str, expected: &'static str) -> Result<Option<i128>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_i128().map(Some).ok_or_else(|| GgufError::WrongType {
                key: key.to_string(),
                expected,
                found: v.type_name(),
            }),
        }
    }

    fn int_as<T: TryFrom<i128>>(
        &self,
        key: &str,
        target: &'static str,
    ) -> Result<Option<T>, GgufError> {
        match self.int(key, "integer")? {
            None => Ok(None),
            Some(v) => T::try_from(v)
                .map(Some)
                .map_err(|_| GgufError::ValueOutOfRange {
                    key: key.to_string(),
                    value: v.to_string(),
                    target,
                }),
        }
    }

    /// Any integer type whose value is in `0..=u64::MAX`.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.int_as(key, "u64")
    }

    /// Any integer type whose value is in `0..=u32::MAX`.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.int_as(key, "u32")
    }

    /// Any integer type whose value fits in `i64`.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, GgufError> {
        self.int_as(key, "i64")
    }

    /// `F32`, or `F64` narrowed to `f32`.
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|x| Some(x as f32))
                .ok_or_else(|| self.wrong(key, "f32", v)),
        }
    }

    /// A `Bool` value.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(MetaValue::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "bool", v)),
        }
    }

    /// A `String` value.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(MetaValue::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(key, "string", v)),
        }
    }

    /// An array of strings (an empty array of any type gives an empty vec).
    pub fn get_str_array(&self, key: &str) -> Result<Option<Vec<&str>>, GgufError> {
        self.array(key, "array of string", |e| e.as_str())
    }

    /// An array of `F32` or `F64` (narrowed) values.
    pub fn get_f32_array(&self, key: &str) -> Result<Option<Vec<f32>>, GgufError> {
        self.array(key, "array of f32", |e| e.as_f64().map(|x| x as f32))
    }

    /// An array of integers that all fit in `i32`.
    pub fn get_i32_array(&self, key: &str) -> Result<Option<Vec<i32>>, GgufError> {
        let v = self.get(key);
        let arr = self.array(key, "array of i32", |e| e.as_i128())?;
        match arr {
            None => Ok(None),
            Some(vals) => vals
                .into_iter()
                .map(|x| {
                    i32::try_from(x).map_err(|_| GgufError::ValueOutOfRange {
                        key: key.to_string(),
                        value: format!("{x} (in {})", v.map_or("array", |v| v.type_name())),
                        target: "i32",
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    fn array<'s, T>(
        &'s self,
        key: &str,
        expected: &'static str,
        conv: impl Fn(&'s MetaValue) -> Option<T>,
    ) -> Result<Option<Vec<T>>, GgufError> {
        match self.get(key) {
            None => Ok(None),
            Some(v @ MetaValue::Array(items)) => items
                .iter()
                .map(&conv)
                .collect::<Option<Vec<T>>>()
                .map(Some)
                .ok_or_else(|| self.wrong(key, expected, v)),
            Some(v) => Err(self.wrong(key, expected, v)),
        }
    }

    fn wrong(&self, key: &str, expected: &'static str, found: &MetaValue) -> GgufError {
        GgufError::WrongType {
            key: key.to_string(),
            expected,
            found: found.type_name(),
        }
    }

    /// `general.architecture` (e.g. `"llama"`); required.
    pub fn architecture(&self) -> Result<&str, GgufError> {
        const KEY: &str = "general.architecture";
        self.get_str(KEY)?.ok_or_else(|| GgufError::MissingKey {
            key: KEY.to_string(),
        })
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The exact data bytes of `t` (validated at parse time to lie inside the file). A `TensorInfo`
    /// that does not belong to this file and points outside it yields an empty slice.
    pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8] {
        let range = usize::try_from(t.offset).ok().and_then(|start| {
            let len = usize::try_from(t.n_bytes).ok()?;
            Some(start..start.checked_add(len)?)
        });
        range.and_then(|r| self.bytes().get(r)).unwrap_or_default()
    }

    /// The data bytes of the tensor called `name`.
    pub fn tensor_data(&self, name: &str) -> Option<&[u8]> {
        self.tensor(name).map(|t| self.tensor_bytes(t))
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// Tensor data alignment in bytes.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute offset where tensor data starts (tensor offsets in the file are relative to it).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }
}
