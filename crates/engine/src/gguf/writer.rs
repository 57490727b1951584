//! In-memory GGUF writer for tests and tools: builds valid files (metadata of every type, arrays,
//! tensors, alignment) and, through overrides and the returned [`Layout`], deliberately corrupt ones.
//!
//! ```ignore
//! use longctx_engine::gguf::{writer::{patch_u64, GgufWriter}, GgufFile};
//! use longctx_engine::quant::GgmlType;
//! let mut w = GgufWriter::new();
//! w.str("general.architecture", "llama").u32("llama.block_count", 2);
//! w.tensor_f32("output_norm.weight", &[4], &[1.0, 1.0, 1.0, 1.0]);
//! let file = GgufFile::from_bytes(w.build()).unwrap();
//!
//! // Corrupt: patch a field whose position the layout reports.
//! let (mut bytes, layout) = w.build_with_layout();
//! patch_u64(&mut bytes, layout.tensors[0].offset_field, 3); // misaligned
//! ```

use super::{MetaValue, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::quant::GgmlType;

/// One tensor as the writer will emit it. Fields are raw so tests can describe invalid tensors
/// (unknown type ids, wrong dim counts, data that does not match the shape).
#[derive(Clone, Debug)]
pub struct WriterTensor {
    pub name: String,
    /// ggml type id (see [`GgmlType::id`]); any value is written as is.
    pub type_id: u32,
    /// Written verbatim, including an empty list or more than 4 dims.
    pub dims: Vec<u64>,
    /// Written at the next aligned position of the data section, whatever its length.
    pub data: Vec<u8>,
    /// Relative offset to record in the tensor info instead of the real position of `data`.
    pub offset_override: Option<u64>,
}

/// Byte positions of the fields of a built file, for patching corruptions in.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Offset of the u64 tensor count.
    pub tensor_count: usize,
    /// Offset of the u64 kv count.
    pub kv_count: usize,
    pub kvs: Vec<KvLayout>,
    pub tensors: Vec<TensorLayout>,
    /// Absolute start of the tensor data section.
    pub data_start: usize,
    /// Alignment used for the layout.
    pub alignment: usize,
}

/// Field positions of one metadata pair.
#[derive(Clone, Debug, Default)]
pub struct KvLayout {
    /// The u64 key length (the key bytes follow).
    pub key: usize,
    /// The u32 value type id.
    pub value_type: usize,
    /// The value payload (for strings: their u64 length; for arrays: the u32 element type, then
    /// the u64 length at `value + 4`).
    pub value: usize,
}

/// Field positions of one tensor info and its data.
#[derive(Clone, Debug, Default)]
pub struct TensorLayout {
    /// The u64 name length (start of the info).
    pub name: usize,
    /// The u32 dim count (dims follow, 8 bytes each).
    pub n_dims: usize,
    /// The u32 ggml type id.
    pub type_id: usize,
    /// The u64 relative data offset.
    pub offset_field: usize,
    /// Absolute position where the data bytes were written.
    pub data: usize,
}

/// Builder for a GGUF image. Defaults: version 3, alignment 32 (set `general.alignment` through
/// [`GgufWriter::alignment`] or any kv to change it).
#[derive(Clone, Debug)]
pub struct GgufWriter {
    magic: [u8; 4],
    version: u32,
    kvs: Vec<(String, MetaValue)>,
    tensors: Vec<WriterTensor>,
    tensor_count_override: Option<u64>,
    kv_count_override: Option<u64>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter {
            magic: GGUF_MAGIC,
            version: 3,
            kvs: Vec::new(),
            tensors: Vec::new(),
            tensor_count_override: None,
            kv_count_override: None,
        }
    }

    /// Format version to write (2 and 3 share the same little-endian layout).
    pub fn version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Overrides the magic bytes (corruption).
    pub fn magic(&mut self, magic: [u8; 4]) -> &mut Self {
        self.magic = magic;
        self
    }

    /// Writes `count` as the tensor count instead of the real number (corruption).
    pub fn tensor_count_override(&mut self, count: u64) -> &mut Self {
        self.tensor_count_override = Some(count);
        self
    }

    /// Writes `count` as the kv count instead of the real number (corruption).
    pub fn kv_count_override(&mut self, count: u64) -> &mut Self {
        self.kv_count_override = Some(count);
        self
    }

    /// Appends a metadata pair. Duplicate and empty keys are written as given (for corruption
    /// tests). Array elements are written under the first element's type; an empty array is
    /// written with element type u8.
    pub fn kv(&mut self, key: &str, value: MetaValue) -> &mut Self {
        self.kvs.push((key.to_string(), value));
        self
    }

    /// Sets `general.alignment` (as u32), replacing an earlier value. A value that is not a
    /// nonzero power of two is still written, but the data is laid out with the default 32.
    pub fn alignment(&mut self, alignment: u32) -> &mut Self {
        self.kvs.retain(|(k, _)| k != ALIGNMENT_KEY);
        self.kv(ALIGNMENT_KEY, MetaValue::U32(alignment))
    }

    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.kv(key, MetaValue::String(v.to_string()))
    }

    pub fn u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.kv(key, MetaValue::U32(v))
    }

    pub fn i32(&mut self, key: &str, v: i32) -> &mut Self {
        self.kv(key, MetaValue::I32(v))
    }

    pub fn u64(&mut self, key: &str, v: u64) -> &mut Self {
        self.kv(key, MetaValue::U64(v))
    }

    pub fn f32(&mut self, key: &str, v: f32) -> &mut Self {
        self.kv(key, MetaValue::F32(v))
    }

    pub fn bool(&mut self, key: &str, v: bool) -> &mut Self {
        self.kv(key, MetaValue::Bool(v))
    }

    pub fn str_array<S: AsRef<str>>(&mut self, key: &str, v: &[S]) -> &mut Self {
        let items = v
            .iter()
            .map(|s| MetaValue::String(s.as_ref().to_string()))
            .collect();
        self.kv(key, MetaValue::Array(items))
    }

    pub fn f32_array(&mut self, key: &str, v: &[f32]) -> &mut Self {
        self.kv(
            key,
            MetaValue::Array(v.iter().map(|&x| MetaValue::F32(x)).collect()),
        )
    }

    pub fn i32_array(&mut self, key: &str, v: &[i32]) -> &mut Self {
        self.kv(
            key,
            MetaValue::Array(v.iter().map(|&x| MetaValue::I32(x)).collect()),
        )
    }

    pub fn u32_array(&mut self, key: &str, v: &[u32]) -> &mut Self {
        self.kv(
            key,
            MetaValue::Array(v.iter().map(|&x| MetaValue::U32(x)).collect()),
        )
    }

    /// Adds a tensor of type `ty` with packed data `data` (normally `ty.row_bytes(dims[0]) *
    /// rows` bytes; not checked, so mismatches can be tested).
    pub fn tensor(&mut self, name: &str, ty: GgmlType, dims: &[u64], data: Vec<u8>) -> &mut Self {
        self.tensor_raw(WriterTensor {
            name: name.to_string(),
            type_id: ty.id(),
            dims: dims.to_vec(),
            data,
            offset_override: None,
        })
    }

    /// Adds an F32 tensor from values.
    pub fn tensor_f32(&mut self, name: &str, dims: &[u64], values: &[f32]) -> &mut Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, GgmlType::F32, dims, data)
    }

    /// Adds a tensor described field by field (corruption tests).
    pub fn tensor_raw(&mut self, t: WriterTensor) -> &mut Self {
        self.tensors.push(t);
        self
    }

    /// The metadata pairs added so far, mutable (e.g. to corrupt a value after the fact).
    pub fn kvs_mut(&mut self) -> &mut Vec<(String, MetaValue)> {
        &mut self.kvs
    }

    /// The tensors added so far, mutable.
    pub fn tensors_mut(&mut self) -> &mut Vec<WriterTensor> {
        &mut self.tensors
    }

    /// The GGUF image.
    pub fn build(&self) -> Vec<u8> {
        self.build_with_layout().0
    }

    /// The GGUF image plus the positions of its fields.
    pub fn build_with_layout(&self) -> (Vec<u8>, Layout) {
        let alignment = self
            .kvs
            .iter()
            .rev()
            .find(|(k, _)| k == ALIGNMENT_KEY)
            .and_then(|(_, v)| match v {
                MetaValue::U32(a) if a.is_power_of_two() => Some(*a as usize),
                _ => None,
            })
            .unwrap_or(DEFAULT_ALIGNMENT as usize);
        let mut out = Vec::new();
        let mut layout = Layout {
            alignment,
            ..Layout::default()
        };
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        layout.tensor_count = out.len();
        let n_tensors = self
            .tensor_count_override
            .unwrap_or(self.tensors.len() as u64);
        out.extend_from_slice(&n_tensors.to_le_bytes());
        layout.kv_count = out.len();
        let n_kv = self.kv_count_override.unwrap_or(self.kvs.len() as u64);
        out.extend_from_slice(&n_kv.to_le_bytes());

        for (key, value) in &self.kvs {
            let key_pos = out.len();
            write_str(&mut out, key);
            let value_type = out.len();
            out.extend_from_slice(&value.type_id().to_le_bytes());
            let value_pos = out.len();
            write_value(&mut out, value);
            layout.kvs.push(KvLayout {
                key: key_pos,
                value_type,
                value: value_pos,
            });
        }

        // Data positions first, so the infos can record them.
        let mut rel = Vec::with_capacity(self.tensors.len());
        let mut end = 0usize;
        for t in &self.tensors {
            let start = end.div_ceil(alignment) * alignment;
            rel.push(start);
            end = start + t.data.len();
        }

        for (t, &pos) in self.tensors.iter().zip(&rel) {
            let name = out.len();
            write_str(&mut out, &t.name);
            let n_dims = out.len();
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            let type_id = out.len();
            out.extend_from_slice(&t.type_id.to_le_bytes());
            let offset_field = out.len();
            let recorded = t.offset_override.unwrap_or(pos as u64);
            out.extend_from_slice(&recorded.to_le_bytes());
            layout.tensors.push(TensorLayout {
                name,
                n_dims,
                type_id,
                offset_field,
                data: 0,
            });
        }

        let data_start = out.len().div_ceil(alignment) * alignment;
        layout.data_start = data_start;
        // Data only when there are tensors, so a tensor-less file ends right after its header.
        if !self.tensors.is_empty() {
            out.resize(data_start, 0);
            for ((t, &pos), tl) in self.tensors.iter().zip(&rel).zip(&mut layout.tensors) {
                out.resize(data_start + pos, 0);
                tl.data = out.len();
                out.extend_from_slice(&t.data);
            }
        }
        (out, layout)
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(u8::from(*x)),
        MetaValue::String(s) => write_str(out, s),
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Array(items) => {
            let elem_ty = items.first().map_or(super::value_type::U8, |e| e.type_id());
            out.extend_from_slice(&elem_ty.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                // Nested arrays carry their own element type and length; scalars are bare.
                write_value(out, item);
            }
        }
    }
}

/// Overwrites the little-endian u32 at `at` (corruption helper; ignores out-of-range positions).
pub fn patch_u32(bytes: &mut [u8], at: usize, v: u32) {
    if let Some(dst) = bytes.get_mut(at..at + 4) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

/// Overwrites the little-endian u64 at `at` (corruption helper; ignores out-of-range positions).
pub fn patch_u64(bytes: &mut [u8], at: usize, v: u64) {
    if let Some(dst) = bytes.get_mut(at..at + 8) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}
