//! Model hyper-parameters read from GGUF metadata, per architecture.

use crate::gguf::GgufFile;
use crate::model::ModelError;
pub use crate::rope::RopeParams;

/// Decoder architectures the engine can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Llama family (SmolLM2, Llama 2/3): adjacent-pair RoPE, SwiGLU.
    Llama,
    /// Qwen2 family: Llama plus Q/K/V biases and NEOX (half-split) RoPE.
    Qwen2,
    /// Gemma 3: interleaved sliding-window and global layers, QK-norm, pre/post norms,
    /// two RoPE bases, scaled embeddings, GELU gate.
    Gemma3,
}

impl Arch {
    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "llama" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            "gemma3" => Some(Arch::Gemma3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Gemma3 => "gemma3",
        }
    }
}

/// Everything the forward pass needs to know about the model's shape.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub arch: Arch,
    pub n_layers: usize,
    pub n_embd: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub vocab_size: usize,
    /// Trained context length (`<arch>.context_length`).
    pub context_length: usize,
    pub rms_eps: f32,
    /// Per-layer RoPE parameters (Gemma 3 uses two bases).
    pub rope: Vec<RopeParams>,
    /// Per-layer native sliding window (Gemma 3 local layers); `None` = global attention.
    pub layer_window: Vec<Option<usize>>,
    /// Multiplier applied to token embeddings (Gemma: √n_embd).
    pub embed_scale: Option<f32>,
    /// Q·K scale.
    pub attn_scale: f32,
    /// tanh soft-cap on the final logits, if any.
    pub final_logit_softcap: Option<f32>,
}

/// Caps that keep absurd metadata from driving huge allocations.
const MAX_LAYERS: u64 = 1024;
const MAX_DIM: u64 = 1 << 20;

fn required(file: &GgufFile, key: &str) -> Result<u64, ModelError> {
    let v = file
        .get_u64(key)?
        .ok_or_else(|| ModelError::MissingKey(key.to_string()))?;
    Ok(v)
}

fn bounded(key: &str, v: u64, max: u64) -> Result<usize, ModelError> {
    if v == 0 || v > max {
        return Err(ModelError::BadHyperParam {
            key: key.to_string(),
            value: v.to_string(),
            reason: format!("must be in 1..={max}"),
        });
    }
    Ok(v as usize)
}

/// Query heads, KV heads and head size, checked against each other.
fn read_heads(
    file: &GgufFile,
    key: &impl Fn(&str) -> String,
    n_embd: usize,
) -> Result<(usize, usize, usize), ModelError> {
    let n_heads = bounded(
        &key("attention.head_count"),
        required(file, &key("attention.head_count"))?,
        4096,
    )?;
    let n_kv_heads = match file.get_u64(&key("attention.head_count_kv"))? {
        Some(v) => bounded(&key("attention.head_count_kv"), v, 4096)?,
        None => n_heads,
    };
    if !n_heads.is_multiple_of(n_kv_heads) {
        return Err(ModelError::BadHyperParam {
            key: key("attention.head_count_kv"),
            value: n_kv_heads.to_string(),
            reason: format!("must divide head_count {n_heads}"),
        });
    }
    let head_dim = match file.get_u64(&key("attention.key_length"))? {
        Some(v) => bounded(&key("attention.key_length"), v, 4096)?,
        None => {
            if !n_embd.is_multiple_of(n_heads) {
                return Err(ModelError::BadHyperParam {
                    key: key("attention.head_count"),
                    value: n_heads.to_string(),
                    reason: format!("must divide embedding_length {n_embd}"),
                });
            }
            n_embd / n_heads
        }
    };
    if let Some(v) = file.get_u64(&key("attention.value_length"))? {
        if v as usize != head_dim {
            return Err(ModelError::BadHyperParam {
                key: key("attention.value_length"),
                value: v.to_string(),
                reason: format!("differs from key_length {head_dim}; not supported"),
            });
        }
    }
    if head_dim % 2 != 0 {
        return Err(ModelError::BadHyperParam {
            key: key("attention.key_length"),
            value: head_dim.to_string(),
            reason: "head dimension must be even for RoPE".into(),
        });
    }
    Ok((n_heads, n_kv_heads, head_dim))
}

/// The RoPE of the model's global layers.
fn read_rope(
    file: &GgufFile,
    key: &impl Fn(&str) -> String,
    arch: Arch,
    head_dim: usize,
) -> Result<RopeParams, ModelError> {
    let n_rot = match file.get_u64(&key("rope.dimension_count"))? {
        Some(v) => bounded(&key("rope.dimension_count"), v, head_dim as u64)?,
        None => head_dim,
    };
    let base = file.get_f32(&key("rope.freq_base"))?.unwrap_or(match arch {
        Arch::Gemma3 => 1_000_000.0,
        _ => 10_000.0,
    });
    let freq_scale = match file.get_str(&key("rope.scaling.type"))? {
        Some("linear") | None => match file.get_f32(&key("rope.scaling.factor"))? {
            // A factor of 0 means "no scaling" in llama.cpp's loader.
            None | Some(0.0) => 1.0,
            Some(f) if f > 0.0 && f.is_finite() => 1.0 / f,
            Some(f) => {
                return Err(ModelError::BadHyperParam {
                    key: key("rope.scaling.factor"),
                    value: f.to_string(),
                    reason: "must be a positive finite number".into(),
                })
            }
        },
        Some("none") => 1.0,
        Some(other) => {
            return Err(ModelError::BadHyperParam {
                key: key("rope.scaling.type"),
                value: other.to_string(),
                reason: "only linear RoPE scaling is supported".into(),
            })
        }
    };
    Ok(RopeParams {
        base,
        freq_scale,
        n_rot,
        neox: matches!(arch, Arch::Qwen2 | Arch::Gemma3),
    })
}

impl ModelConfig {
    /// Reads and checks the hyper-parameters of a supported architecture.
    pub fn from_gguf(file: &GgufFile) -> Result<ModelConfig, ModelError> {
        let arch_name = file.architecture()?;
        let arch = Arch::from_name(arch_name)
            .ok_or_else(|| ModelError::UnsupportedArch(arch_name.to_string()))?;
        let p = arch_name;
        let key = |s: &str| format!("{p}.{s}");

        let n_layers = bounded(
            &key("block_count"),
            required(file, &key("block_count"))?,
            MAX_LAYERS,
        )?;
        let n_embd = bounded(
            &key("embedding_length"),
            required(file, &key("embedding_length"))?,
            MAX_DIM,
        )?;
        let (n_heads, n_kv_heads, head_dim) = read_heads(file, &key, n_embd)?;
        let n_ff = bounded(
            &key("feed_forward_length"),
            required(file, &key("feed_forward_length"))?,
            MAX_DIM,
        )?;
        let context_length = bounded(
            &key("context_length"),
            required(file, &key("context_length"))?,
            1 << 24,
        )?;
        let rms_eps = file
            .get_f32(&key("attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-5);
        if !(rms_eps.is_finite() && rms_eps > 0.0 && rms_eps < 1.0) {
            return Err(ModelError::BadHyperParam {
                key: key("attention.layer_norm_rms_epsilon"),
                value: rms_eps.to_string(),
                reason: "must be in (0, 1)".into(),
            });
        }
        let vocab_size = file
            .get_str_array("tokenizer.ggml.tokens")?
            .map(|t| t.len())
            .unwrap_or(0);
        let global_rope = read_rope(file, &key, arch, head_dim)?;
        let mut cfg = ModelConfig {
            arch,
            n_layers,
            n_embd,
            n_heads,
            n_kv_heads,
            head_dim,
            n_ff,
            vocab_size,
            context_length,
            rms_eps,
            rope: vec![global_rope; n_layers],
            layer_window: vec![None; n_layers],
            embed_scale: None,
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            final_logit_softcap: None,
        };
        if arch == Arch::Gemma3 {
            cfg.read_gemma3(file, &key)?;
        }
        Ok(cfg)
    }

    /// Gemma 3's extras: scaled embeddings, sliding-window layers with their own RoPE base,
    /// the 27B attention scale and the final logit soft-cap.
    fn read_gemma3(
        &mut self,
        file: &GgufFile,
        key: &impl Fn(&str) -> String,
    ) -> Result<(), ModelError> {
        let (n_layers, n_embd, n_heads) = (self.n_layers, self.n_embd, self.n_heads);
        self.embed_scale = Some((n_embd as f32).sqrt());
        if let Some(window) = file.get_u64(&key("attention.sliding_window"))? {
            let window = bounded(&key("attention.sliding_window"), window, 1 << 24)?;
            // llama.cpp: every `pattern`-th layer is global, the rest slide (default 6).
            let pattern = file
                .get_u64(&key("attention.sliding_window_pattern"))?
                .unwrap_or(6)
                .max(1) as usize;
            let local_base = file
                .get_f32(&key("rope.freq_base_swa"))?
                .unwrap_or(10_000.0);
            for il in 0..n_layers {
                if il % pattern < pattern - 1 {
                    self.layer_window[il] = Some(window);
                    self.rope[il] = RopeParams {
                        base: local_base,
                        freq_scale: 1.0,
                        ..self.rope[il]
                    };
                }
            }
        }
        // Gemma 3 27B scales by n_embd/n_head; every smaller size by head_dim (llama.cpp).
        if n_layers == 62 {
            self.attn_scale = 1.0 / ((n_embd / n_heads) as f32).sqrt();
        }
        self.final_logit_softcap = file
            .get_f32(&key("final_logit_softcapping"))?
            .filter(|c| *c > 0.0);
        Ok(())
    }

    /// Query heads per KV head (GQA group size).
    pub fn group_size(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
}
