//! The GGUF parser: a bounds-checked cursor over the file bytes plus the header, metadata and
//! tensor-info readers. Every length read from the file is checked against the bytes that remain
//! before anything is allocated for it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::value_type as vt;
use super::{
    GgufError, MetaValue, TensorInfo, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC,
    MAX_ARRAY_DEPTH, MAX_ARRAY_LEN, MAX_DIMS, MAX_KVS, MAX_TENSORS,
};
use crate::quant::GgmlType;

/// Everything `GgufFile` needs from a successful parse.
pub(super) struct Parsed {
    pub version: u32,
    pub metadata: Vec<(String, MetaValue)>,
    pub meta_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: HashMap<String, usize>,
    pub alignment: u64,
    pub data_offset: u64,
}

/// Smallest possible encoded kv: key length + 1-byte key + type + 1-byte value.
const MIN_KV_BYTES: usize = 8 + 1 + 4 + 1;
/// Smallest possible encoded tensor info: name length + 1-byte name + n_dims + 1 dim + type + offset.
const MIN_TENSOR_INFO_BYTES: usize = 8 + 1 + 4 + 8 + 4 + 8;

/// A read ran past the end of the buffer.
struct Short {
    offset: usize,
    needed: usize,
    available: usize,
}

impl Short {
    fn into_err(self, what: impl FnOnce() -> String) -> GgufError {
        GgufError::Truncated {
            what: what(),
            offset: self.offset as u64,
            needed: self.needed as u64,
            available: self.available as u64,
        }
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        if n > self.remaining() {
            return Err(Short {
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, Short> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Short> {
        self.array().map(u64::from_le_bytes)
    }

    /// Reads a length-prefixed string. Invalid UTF-8 is replaced (lossy) rather than rejected:
    /// ggml does not validate it either, and a stray byte in one vocab entry should not make a
    /// model unloadable.
    fn string(&mut self, what: impl Fn() -> String) -> Result<String, GgufError> {
        let start = self.pos;
        let len = self
            .u64()
            .map_err(|s| s.into_err(|| format!("length of {}", what())))?;
        if len > self.remaining() as u64 {
            return Err(GgufError::StringTooLong {
                what: what(),
                len,
                offset: start as u64,
                remaining: self.remaining() as u64,
            });
        }
        let bytes = self.take(len as usize).map_err(|s| s.into_err(&what))?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// Encoded size of one element of value type `ty` (the minimum for strings and arrays), or
/// `None` for ids outside the spec.
fn min_value_bytes(ty: u32) -> Option<usize> {
    Some(match ty {
        vt::U8 | vt::I8 | vt::BOOL => 1,
        vt::U16 | vt::I16 => 2,
        vt::U32 | vt::I32 | vt::F32 => 4,
        vt::U64 | vt::I64 | vt::F64 => 8,
        vt::STRING => 8,
        vt::ARRAY => 4 + 8,
        _ => return None,
    })
}

pub(super) fn parse(buf: &[u8]) -> Result<Parsed, GgufError> {
    let mut c = Cursor { buf, pos: 0 };
    let (version, n_tensors, n_kv) = read_header(&mut c)?;
    let (metadata, meta_index) = read_metadata(&mut c, n_kv)?;
    let alignment = alignment_of(&metadata, &meta_index)?;
    let (raw, tensor_index) = read_tensor_infos(&mut c, n_tensors)?;

    // Data starts after the infos, rounded up to the alignment (may lie past EOF when there is no
    // tensor data; only tensors' own ranges are required to be inside the file).
    let header_end = c.pos as u64;
    let data_offset = header_end.div_ceil(alignment) * alignment;
    let tensors = place_tensors(raw, data_offset, alignment, buf.len() as u64)?;

    Ok(Parsed {
        version,
        metadata,
        meta_index,
        tensors,
        tensor_index,
        alignment,
        data_offset,
    })
}

/// Magic, version and the tensor and metadata counts, each checked.
fn read_header(c: &mut Cursor) -> Result<(u32, u64, u64), GgufError> {
    let trunc = |what: &'static str| move |s: Short| s.into_err(|| what.to_string());

    let magic: [u8; 4] = c.array().map_err(trunc("magic"))?;
    if magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = c.u32().map_err(trunc("version"))?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let n_tensors = c.u64().map_err(trunc("tensor count"))?;
    if n_tensors > MAX_TENSORS {
        return Err(GgufError::TooManyTensors {
            count: n_tensors,
            max: MAX_TENSORS,
        });
    }
    let n_kv = c.u64().map_err(trunc("metadata kv count"))?;
    if n_kv > MAX_KVS {
        return Err(GgufError::TooManyKvs {
            count: n_kv,
            max: MAX_KVS,
        });
    }

    Ok((version, n_tensors, n_kv))
}

/// The `n_kv` metadata key/value pairs and an index by key (keys must be unique and non-empty).
#[allow(clippy::type_complexity)] // the two halves of `Parsed`'s metadata
fn read_metadata(
    c: &mut Cursor,
    n_kv: u64,
) -> Result<(Vec<(String, MetaValue)>, HashMap<String, usize>), GgufError> {
    // Capacity hints are clamped by what the remaining bytes could possibly hold.
    let cap = (n_kv as usize).min(c.remaining() / MIN_KV_BYTES);
    let mut metadata: Vec<(String, MetaValue)> = Vec::with_capacity(cap);
    let mut meta_index: HashMap<String, usize> = HashMap::with_capacity(cap);
    for index in 0..n_kv {
        let key_offset = c.pos as u64;
        let key = c.string(|| format!("key of metadata kv #{index}"))?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey {
                index,
                offset: key_offset,
            });
        }
        let ty_offset = c.pos as u64;
        let ty = c
            .u32()
            .map_err(|s| s.into_err(|| format!("value type of key '{key}'")))?;
        if min_value_bytes(ty).is_none() {
            return Err(GgufError::UnknownValueType {
                key,
                type_id: ty,
                offset: ty_offset,
            });
        }
        let value = read_value(c, ty, &key, 0)?;
        match meta_index.entry(key) {
            Entry::Occupied(e) => {
                return Err(GgufError::DuplicateKey {
                    key: e.key().clone(),
                    offset: key_offset,
                })
            }
            Entry::Vacant(e) => {
                metadata.push((e.key().clone(), value));
                e.insert(metadata.len() - 1);
            }
        }
    }
    Ok((metadata, meta_index))
}

/// The data alignment: `general.alignment` if present (a power of two), else the default.
fn alignment_of(
    metadata: &[(String, MetaValue)],
    meta_index: &HashMap<String, usize>,
) -> Result<u64, GgufError> {
    Ok(
        match meta_index.get(ALIGNMENT_KEY).map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(v) => {
                let a = v.as_i128().ok_or_else(|| GgufError::WrongType {
                    key: ALIGNMENT_KEY.to_string(),
                    expected: "u32",
                    found: v.type_name(),
                })?;
                match u32::try_from(a) {
                    Ok(a) if a.is_power_of_two() => u64::from(a),
                    // Negative values are reported as 0: they are as invalid as zero.
                    _ => {
                        return Err(GgufError::BadAlignment {
                            value: u64::try_from(a.max(0)).unwrap_or(u64::MAX),
                        })
                    }
                }
            }
        },
    )
}

/// A tensor info as read, before its type, shape and range are checked.
struct RawInfo {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    rel_offset: u64,
}

/// First pass over the tensor infos: structure only (names unique and non-empty, dim counts in
/// range).
fn read_tensor_infos(
    c: &mut Cursor,
    n_tensors: u64,
) -> Result<(Vec<RawInfo>, HashMap<String, usize>), GgufError> {
    let cap = (n_tensors as usize).min(c.remaining() / MIN_TENSOR_INFO_BYTES);
    let mut raw: Vec<RawInfo> = Vec::with_capacity(cap);
    let mut tensor_index: HashMap<String, usize> = HashMap::with_capacity(cap);
    for index in 0..n_tensors {
        let info_offset = c.pos as u64;
        let name = c.string(|| format!("name of tensor #{index}"))?;
        if name.is_empty() {
            return Err(GgufError::EmptyTensorName {
                index,
                offset: info_offset,
            });
        }
        let n_dims = c
            .u32()
            .map_err(|s| s.into_err(|| format!("dim count of tensor '{name}'")))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(GgufError::BadDimCount {
                tensor: name,
                n_dims,
                max: MAX_DIMS,
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(
                c.u64()
                    .map_err(|s| s.into_err(|| format!("dims of tensor '{name}'")))?,
            );
        }
        let type_id = c
            .u32()
            .map_err(|s| s.into_err(|| format!("type of tensor '{name}'")))?;
        let rel_offset = c
            .u64()
            .map_err(|s| s.into_err(|| format!("data offset of tensor '{name}'")))?;
        match tensor_index.entry(name) {
            Entry::Occupied(e) => {
                return Err(GgufError::DuplicateTensor {
                    name: e.key().clone(),
                    offset: info_offset,
                })
            }
            Entry::Vacant(e) => {
                raw.push(RawInfo {
                    name: e.key().clone(),
                    dims,
                    type_id,
                    rel_offset,
                });
                e.insert(raw.len() - 1);
            }
        }
    }
    Ok((raw, tensor_index))
}

/// Second pass: semantic checks and absolute ranges inside a file of `file_len` bytes.
fn place_tensors(
    raw: Vec<RawInfo>,
    data_offset: u64,
    alignment: u64,
    file_len: u64,
) -> Result<Vec<TensorInfo>, GgufError> {
    let mut tensors = Vec::with_capacity(raw.len());
    for r in raw {
        let ty = GgmlType::from_u32(r.type_id).ok_or_else(|| GgufError::UnknownTensorType {
            tensor: r.name.clone(),
            type_id: r.type_id,
        })?;
        let overflow = || GgufError::DimsOverflow {
            tensor: r.name.clone(),
            dims: r.dims.clone(),
        };
        // ggml stores element counts as int64_t.
        r.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(overflow)?;
        let cols = r.dims[0];
        if !cols.is_multiple_of(ty.block_size() as u64) {
            return Err(GgufError::BadRowLength {
                tensor: r.name,
                ty,
                cols,
                block_size: ty.block_size() as u64,
            });
        }
        let rows: u64 = r.dims[1..].iter().product(); // cannot overflow: the full product did not
        let n_bytes = usize::try_from(cols)
            .ok()
            .and_then(|n| ty.row_bytes(n))
            .and_then(|rb| (rb as u64).checked_mul(rows))
            .ok_or_else(overflow)?;
        if !r.rel_offset.is_multiple_of(alignment) {
            return Err(GgufError::MisalignedTensor {
                tensor: r.name,
                offset: r.rel_offset,
                alignment,
            });
        }
        let offset = data_offset.checked_add(r.rel_offset);
        let end = offset.and_then(|o| o.checked_add(n_bytes));
        match (offset, end) {
            (Some(offset), Some(end)) if end <= file_len => tensors.push(TensorInfo {
                name: r.name,
                dims: r.dims,
                ty,
                offset,
                n_bytes,
            }),
            _ => {
                return Err(GgufError::TensorOutOfBounds {
                    tensor: r.name,
                    offset: offset.unwrap_or(u64::MAX),
                    n_bytes,
                    file_len,
                })
            }
        }
    }
    Ok(tensors)
}

/// Reads one value of type `ty` (already validated as a known id). `depth` is the number of
/// arrays enclosing this value.
fn read_value(c: &mut Cursor, ty: u32, key: &str, depth: u32) -> Result<MetaValue, GgufError> {
    let at = c.pos as u64;
    let short = |s: Short| s.into_err(|| format!("value of key '{key}'"));
    Ok(match ty {
        vt::U8 => MetaValue::U8(c.array::<1>().map_err(short)?[0]),
        vt::I8 => MetaValue::I8(i8::from_le_bytes(c.array().map_err(short)?)),
        vt::U16 => MetaValue::U16(u16::from_le_bytes(c.array().map_err(short)?)),
        vt::I16 => MetaValue::I16(i16::from_le_bytes(c.array().map_err(short)?)),
        vt::U32 => MetaValue::U32(u32::from_le_bytes(c.array().map_err(short)?)),
        vt::I32 => MetaValue::I32(i32::from_le_bytes(c.array().map_err(short)?)),
        vt::F32 => MetaValue::F32(f32::from_le_bytes(c.array().map_err(short)?)),
        vt::U64 => MetaValue::U64(u64::from_le_bytes(c.array().map_err(short)?)),
        vt::I64 => MetaValue::I64(i64::from_le_bytes(c.array().map_err(short)?)),
        vt::F64 => MetaValue::F64(f64::from_le_bytes(c.array().map_err(short)?)),
        vt::BOOL => {
            let b = c.array::<1>().map_err(short)?[0];
            MetaValue::Bool(to_bool(b, key, at)?)
        }
        vt::STRING => MetaValue::String(c.string(|| format!("string value of key '{key}'"))?),
        vt::ARRAY => MetaValue::Array(read_array(c, key, depth + 1)?),
        _ => {
            return Err(GgufError::UnknownValueType {
                key: key.to_string(),
                type_id: ty,
                offset: at,
            })
        }
    })
}

fn to_bool(b: u8, key: &str, offset: u64) -> Result<bool, GgufError> {
    match b {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(GgufError::BadBool {
            key: key.to_string(),
            value,
            offset,
        }),
    }
}

/// Reads an array header and its elements; `depth` counts this array.
fn read_array(c: &mut Cursor, key: &str, depth: u32) -> Result<Vec<MetaValue>, GgufError> {
    let at = c.pos as u64;
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufError::ArrayTooDeep {
            key: key.to_string(),
            max: MAX_ARRAY_DEPTH,
            offset: at,
        });
    }
    let short = |s: Short| s.into_err(|| format!("array header of key '{key}'"));
    let elem_ty = c.u32().map_err(short)?;
    let Some(elem_bytes) = min_value_bytes(elem_ty) else {
        return Err(GgufError::UnknownValueType {
            key: key.to_string(),
            type_id: elem_ty,
            offset: at,
        });
    };
    let len = c.u64().map_err(short)?;
    let fit = (c.remaining() / elem_bytes) as u64;
    if len > fit || len > MAX_ARRAY_LEN {
        return Err(GgufError::ArrayTooLong {
            key: key.to_string(),
            len,
            max: fit.min(MAX_ARRAY_LEN),
            remaining: c.remaining() as u64,
            offset: at,
        });
    }
    let len = len as usize;

    // Fixed-size elements: one bounds check for the whole payload, then a tight decode loop
    // (vocab score / token-type arrays have 100k+ entries).
    macro_rules! fixed {
        ($t:ty, $variant:ident) => {{
            const N: usize = std::mem::size_of::<$t>();
            let bytes = c.take(len * N).map_err(short)?;
            bytes
                .chunks_exact(N)
                .map(|ch| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(ch);
                    MetaValue::$variant(<$t>::from_le_bytes(a))
                })
                .collect()
        }};
    }
    Ok(match elem_ty {
        vt::U8 => fixed!(u8, U8),
        vt::I8 => fixed!(i8, I8),
        vt::U16 => fixed!(u16, U16),
        vt::I16 => fixed!(i16, I16),
        vt::U32 => fixed!(u32, U32),
        vt::I32 => fixed!(i32, I32),
        vt::F32 => fixed!(f32, F32),
        vt::U64 => fixed!(u64, U64),
        vt::I64 => fixed!(i64, I64),
        vt::F64 => fixed!(f64, F64),
        vt::BOOL => {
            let start = c.pos as u64;
            let bytes = c.take(len).map_err(short)?;
            bytes
                .iter()
                .enumerate()
                .map(|(i, &b)| to_bool(b, key, start + i as u64).map(MetaValue::Bool))
                .collect::<Result<_, _>>()?
        }
        vt::STRING => {
            let mut out = Vec::with_capacity(len);
            for i in 0..len {
                out.push(MetaValue::String(
                    c.string(|| format!("string #{i} of array '{key}'"))?,
                ));
            }
            out
        }
        _ => {
            // Nested arrays; `len` was bounded by 12 bytes per element above.
            let mut out = Vec::with_capacity(len);
            for _ in 0..len {
                out.push(MetaValue::Array(read_array(c, key, depth + 1)?));
            }
            out
        }
    })
}
