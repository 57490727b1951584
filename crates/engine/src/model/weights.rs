//! Model weights: packed GGUF tensors referenced in place (memory-mapped), small vectors as f32.

use std::sync::Arc;

use crate::gguf::{GgufFile, TensorInfo};
use crate::model::config::{Arch, ModelConfig};
use crate::model::ModelError;
use crate::quant::{dequantize_row, GgmlType, QMatrix};

/// A 2-D weight kept in its packed on-disk format; rows are output features.
#[derive(Clone, Debug)]
pub struct PackedMatrix {
    pub name: String,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    start: usize,
    len: usize,
}

impl PackedMatrix {
    pub fn view<'a>(&self, file: &'a GgufFile) -> QMatrix<'a> {
        QMatrix {
            ty: self.ty,
            rows: self.rows,
            cols: self.cols,
            data: &file.bytes()[self.start..self.start + self.len],
        }
    }

    /// Bytes of one row in the packed format.
    pub fn row_bytes(&self) -> usize {
        self.len / self.rows
    }
}

/// Weights of one transformer block.
#[derive(Debug)]
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    pub wq: PackedMatrix,
    pub wk: PackedMatrix,
    pub wv: PackedMatrix,
    pub wo: PackedMatrix,
    pub bq: Option<Vec<f32>>,
    pub bk: Option<Vec<f32>>,
    pub bv: Option<Vec<f32>>,
    /// Gemma 3 per-head RMSNorm of queries and keys.
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    /// Gemma 3 norms applied to the attention / FFN outputs before the residual add.
    pub attn_post_norm: Option<Vec<f32>>,
    pub ffn_post_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub w_gate: PackedMatrix,
    pub w_up: PackedMatrix,
    pub w_down: PackedMatrix,
}

/// All weights of a model, borrowing tensor data from the shared GGUF file.
#[derive(Debug)]
pub struct ModelWeights {
    pub file: Arc<GgufFile>,
    pub token_embd: PackedMatrix,
    pub layers: Vec<LayerWeights>,
    pub output_norm: Vec<f32>,
    /// LM head; the token embedding when the model ties them.
    pub output: PackedMatrix,
}

fn find<'a>(file: &'a GgufFile, name: &str) -> Result<&'a TensorInfo, ModelError> {
    file.tensor(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
}

fn shape_error(name: &str, expected: String, got: &[u64]) -> ModelError {
    ModelError::BadTensorShape {
        name: name.to_string(),
        expected,
        got: format!("{got:?}"),
    }
}

fn matrix(
    file: &GgufFile,
    name: &str,
    cols: usize,
    rows: usize,
) -> Result<PackedMatrix, ModelError> {
    let t = find(file, name)?;
    if t.dims.len() != 2 || t.dims[0] as usize != cols || t.dims[1] as usize != rows {
        return Err(shape_error(name, format!("[{cols}, {rows}]"), &t.dims));
    }
    if !t.ty.is_supported() {
        return Err(ModelError::UnsupportedTensorType {
            name: name.to_string(),
            ty: t.ty.name().to_string(),
        });
    }
    Ok(PackedMatrix {
        name: name.to_string(),
        ty: t.ty,
        rows,
        cols,
        start: t.offset as usize,
        len: t.n_bytes as usize,
    })
}

fn vector(file: &GgufFile, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
    let t = find(file, name)?;
    if t.n_elements() != len as u64 || t.dims[0] as usize != len {
        return Err(shape_error(name, format!("[{len}]"), &t.dims));
    }
    let mut out = vec![0.0f32; len];
    dequantize_row(t.ty, file.tensor_bytes(t), &mut out).map_err(|e| ModelError::Tensor {
        name: name.to_string(),
        source: e,
    })?;
    Ok(out)
}

fn optional_vector(
    file: &GgufFile,
    name: &str,
    len: usize,
) -> Result<Option<Vec<f32>>, ModelError> {
    if file.tensor(name).is_some() {
        vector(file, name, len).map(Some)
    } else {
        Ok(None)
    }
}

impl ModelWeights {
    /// Locates and shape-checks every tensor the architecture needs.
    pub fn load(file: Arc<GgufFile>, cfg: &ModelConfig) -> Result<ModelWeights, ModelError> {
        let f = &*file;
        let e = cfg.n_embd;
        let embd_info = find(f, "token_embd.weight")?;
        let vocab = embd_info.dims.get(1).copied().unwrap_or(0) as usize;
        if vocab == 0 || (cfg.vocab_size != 0 && vocab != cfg.vocab_size) {
            return Err(shape_error(
                "token_embd.weight",
                format!("[{e}, {}]", cfg.vocab_size),
                &embd_info.dims,
            ));
        }
        let token_embd = matrix(f, "token_embd.weight", e, vocab)?;
        let output = if f.tensor("output.weight").is_some() {
            matrix(f, "output.weight", e, vocab)?
        } else {
            token_embd.clone()
        };
        let output_norm = vector(f, "output_norm.weight", e)?;
        let gemma = cfg.arch == Arch::Gemma3;
        let qwen = cfg.arch == Arch::Qwen2;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let n = |s: &str| format!("blk.{i}.{s}");
            let (qd, kvd) = (cfg.q_dim(), cfg.kv_dim());
            layers.push(LayerWeights {
                attn_norm: vector(f, &n("attn_norm.weight"), e)?,
                wq: matrix(f, &n("attn_q.weight"), e, qd)?,
                wk: matrix(f, &n("attn_k.weight"), e, kvd)?,
                wv: matrix(f, &n("attn_v.weight"), e, kvd)?,
                wo: matrix(f, &n("attn_output.weight"), qd, e)?,
                bq: if qwen {
                    Some(vector(f, &n("attn_q.bias"), qd)?)
                } else {
                    optional_vector(f, &n("attn_q.bias"), qd)?
                },
                bk: if qwen {
                    Some(vector(f, &n("attn_k.bias"), kvd)?)
                } else {
                    optional_vector(f, &n("attn_k.bias"), kvd)?
                },
                bv: if qwen {
                    Some(vector(f, &n("attn_v.bias"), kvd)?)
                } else {
                    optional_vector(f, &n("attn_v.bias"), kvd)?
                },
                q_norm: if gemma {
                    Some(vector(f, &n("attn_q_norm.weight"), cfg.head_dim)?)
                } else {
                    None
                },
                k_norm: if gemma {
                    Some(vector(f, &n("attn_k_norm.weight"), cfg.head_dim)?)
                } else {
                    None
                },
                attn_post_norm: if gemma {
                    Some(vector(f, &n("post_attention_norm.weight"), e)?)
                } else {
                    None
                },
                ffn_post_norm: if gemma {
                    Some(vector(f, &n("post_ffw_norm.weight"), e)?)
                } else {
                    None
                },
                ffn_norm: vector(f, &n("ffn_norm.weight"), e)?,
                w_gate: matrix(f, &n("ffn_gate.weight"), e, cfg.n_ff)?,
                w_up: matrix(f, &n("ffn_up.weight"), e, cfg.n_ff)?,
                w_down: matrix(f, &n("ffn_down.weight"), cfg.n_ff, e)?,
            });
        }
        Ok(ModelWeights {
            file,
            token_embd,
            layers,
            output_norm,
            output,
        })
    }

    /// Writes the embedding row of `token` into `out` (dequantized).
    pub fn embed(&self, token: u32, out: &mut [f32]) -> Result<(), ModelError> {
        let t = token as usize;
        if t >= self.token_embd.rows {
            return Err(ModelError::TokenOutOfRange {
                token,
                vocab: self.token_embd.rows,
            });
        }
        let rb = self.token_embd.row_bytes();
        let start = self.token_embd.start + t * rb;
        dequantize_row(
            self.token_embd.ty,
            &self.file.bytes()[start..start + rb],
            out,
        )
        .map_err(|e| ModelError::Tensor {
            name: self.token_embd.name.clone(),
            source: e,
        })
    }
}
