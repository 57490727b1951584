//! Model loading and the transformer forward pass shared by the Llama, Qwen2 and Gemma 3
//! architectures; attention spans come from the sequence's KV-cache policy.

pub mod config;
pub mod weights;

use std::path::Path;
use std::sync::Arc;

use crate::attention::{attend, AttnError, AttnInput, AttnScratch, AttnShape, LayerObs};
use crate::gguf::{GgufError, GgufFile};
use crate::kv::KvStore;
use crate::ops;
use crate::policy::{CachePolicy, ModelFacts, PlanContext, PolicyError};
use crate::quant::{matmul, matvec, MatScratch, QMatrix, QuantError};
use crate::rope;
use crate::tokenizer::{Tokenizer, TokenizerError};

pub use config::{Arch, ModelConfig, RopeParams};
use weights::LayerWeights;
pub use weights::ModelWeights;

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("unsupported architecture '{0}' (supported: llama, qwen2, gemma3)")]
    UnsupportedArch(String),
    #[error("GGUF metadata key '{0}' is required but missing")]
    MissingKey(String),
    #[error("bad hyper-parameter {key} = {value}: {reason}")]
    BadHyperParam {
        key: String,
        value: String,
        reason: String,
    },
    #[error("tensor '{0}' is required for this architecture but missing")]
    MissingTensor(String),
    #[error("tensor '{name}' has shape {got}, expected {expected}")]
    BadTensorShape {
        name: String,
        expected: String,
        got: String,
    },
    #[error("tensor '{name}' has type {ty}, which the engine cannot compute with")]
    UnsupportedTensorType { name: String, ty: String },
    #[error("tensor '{name}': {source}")]
    Tensor {
        name: String,
        #[source]
        source: QuantError,
    },
    #[error("token id {token} is outside the vocabulary (size {vocab})")]
    TokenOutOfRange { token: u32, vocab: usize },
    #[error("empty input: nothing to evaluate")]
    EmptyInput,
    #[error("attention plan of layer {layer}: {source}")]
    Attention {
        layer: usize,
        #[source]
        source: AttnError,
    },
}

/// A loaded model: configuration, weights (memory-mapped) and tokenizer.
pub struct Model {
    pub cfg: ModelConfig,
    pub weights: ModelWeights,
    pub tokenizer: Tokenizer,
    /// The GGUF's Jinja chat template, if it has one.
    pub chat_template: Option<String>,
}

/// Which positions of a forward pass need logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitsWanted {
    None,
    Last,
    /// Rows `from..n` of the chunk.
    From(usize),
}

/// Reusable activation buffers of the forward pass (no allocation per token once warm).
#[derive(Default)]
pub struct Workspace {
    x: Vec<f32>,
    xn: Vec<f32>,
    q: Vec<f32>,
    q_pre: Vec<f32>,
    k: Vec<f32>,
    k_pre: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    pos: Vec<i64>,
    pub logits: Vec<f32>,
    /// `−log p(token | prefix)` of the chunk's tokens after the first (when a policy asks).
    surprisal: Vec<f32>,
    /// Log-probabilities of the chunk's last row (when a policy asks for surprisal).
    next_logprobs: Vec<f32>,
    head_rows: Vec<f32>,
    mat: MatScratch,
    attn: AttnScratch,
    obs: LayerObs,
}

fn resize(buf: &mut Vec<f32>, n: usize) {
    if buf.len() != n {
        buf.resize(n, 0.0);
    }
}

/// `out = x · Wᵀ` for `n` rows: mat-vec for one row (packed integer kernels), GEMM otherwise.
fn linear(
    w: QMatrix,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    scratch: &mut MatScratch,
    name: &str,
) -> Result<(), ModelError> {
    let r = if n == 1 {
        matvec(&w, x, out, scratch)
    } else {
        matmul(&w, x, n, out, scratch)
    };
    r.map_err(|e| ModelError::Tensor {
        name: name.to_string(),
        source: e,
    })
}

fn add_bias(rows: &mut [f32], bias: Option<&Vec<f32>>) {
    if let Some(b) = bias {
        for row in rows.chunks_exact_mut(b.len()) {
            row.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
    }
}

impl Model {
    /// What a KV-cache policy needs to know about this model (the one place they are read).
    pub fn policy_facts(&self) -> ModelFacts {
        ModelFacts {
            n_layers: self.cfg.n_layers,
            context_length: self.cfg.context_length,
        }
    }

    /// Memory-maps and validates a GGUF model.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let file = Arc::new(GgufFile::open(path)?);
        Model::from_gguf(file)
    }

    pub fn from_gguf(file: Arc<GgufFile>) -> Result<Model, ModelError> {
        let cfg = ModelConfig::from_gguf(&file)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let chat_template = file.get_str("tokenizer.chat_template")?.map(str::to_string);
        let weights = ModelWeights::load(file, &cfg)?;
        Ok(Model {
            cfg,
            weights,
            tokenizer,
            chat_template,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.weights.output.rows
    }

    /// A fresh KV store shaped for this model and suited to `policy`.
    pub fn new_kv(&self, policy: &dyn CachePolicy) -> KvStore {
        KvStore::new(
            self.cfg.n_layers,
            self.cfg.n_kv_heads,
            self.cfg.head_dim,
            policy.needs_pre_rope(),
        )
    }

    /// Runs `tokens` (one chunk, at most the policy's chunk size) at absolute positions
    /// `start_pos..`, appending their keys and values to `kv` under `policy`. Logits for the
    /// requested rows land in `ws.logits` (`rows × vocab`).
    pub fn forward(
        &self,
        tokens: &[u32],
        start_pos: i64,
        kv: &mut KvStore,
        policy: &mut dyn CachePolicy,
        want: LogitsWanted,
        ws: &mut Workspace,
    ) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        policy.before_chunk(kv, tokens.len())?;
        kv.begin_chunk((0..tokens.len() as i64).map(|i| start_pos + i));
        let surprisal = policy.wants_surprisal();
        let r = self.forward_layers(tokens, kv, policy, want, surprisal, ws);
        if r.is_err() {
            kv.abort_chunk();
            return r;
        }
        kv.end_chunk();
        if surprisal {
            policy.observe_surprisal(tokens, &ws.surprisal, &ws.next_logprobs);
        }
        policy.after_chunk(kv)?;
        if let Some(probe) = policy.probe(kv) {
            if !probe.is_empty() {
                // The probe is planned and observed like a chunk right after this one, then
                // its keys and values are dropped; `ws.logits` keeps this chunk's logits.
                let next = start_pos + tokens.len() as i64;
                kv.begin_chunk((0..probe.len() as i64).map(|i| next + i));
                let r = self.forward_layers(&probe, kv, policy, LogitsWanted::None, false, ws);
                kv.abort_chunk();
                r?;
                policy.after_probe(kv)?;
            }
        }
        Ok(())
    }

    /// Runs the language-model head over every row of the chunk in small blocks (a full
    /// `rows × vocab` logits matrix would be ~100 MB for 512 rows) and keeps each token's
    /// surprisal and the last row's log-probabilities (SirLLM's scores).
    fn token_surprisal(&self, tokens: &[u32], ws: &mut Workspace) -> Result<(), ModelError> {
        const BLOCK: usize = 32;
        let (cfg, w) = (&self.cfg, &self.weights);
        let file = &*w.file;
        let (n, e, vocab) = (tokens.len(), cfg.n_embd, w.output.rows);
        ws.surprisal.clear();
        let mut start = 0;
        while start < n {
            let rows = BLOCK.min(n - start);
            for r in 0..rows {
                let t = start + r;
                ops::rms_norm(
                    &ws.x[t * e..(t + 1) * e],
                    &w.output_norm,
                    cfg.rms_eps,
                    &mut ws.xn[r * e..(r + 1) * e],
                );
            }
            resize(&mut ws.head_rows, rows * vocab);
            linear(
                w.output.view(file),
                &ws.xn[..rows * e],
                rows,
                &mut ws.head_rows,
                &mut ws.mat,
                &w.output.name,
            )?;
            for r in 0..rows {
                let t = start + r;
                let row = &mut ws.head_rows[r * vocab..(r + 1) * vocab];
                if let Some(cap) = cfg.final_logit_softcap {
                    row.iter_mut().for_each(|l| *l = (*l / cap).tanh() * cap);
                }
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let lse = max + row.iter().map(|&l| (l - max).exp()).sum::<f32>().ln();
                if t + 1 < n {
                    let next = tokens[t + 1] as usize;
                    ws.surprisal.push(row.get(next).map_or(0.0, |&l| lse - l));
                } else {
                    ws.next_logprobs.clear();
                    ws.next_logprobs.extend(row.iter().map(|&l| l - lse));
                }
            }
            start += rows;
        }
        Ok(())
    }

    /// One chunk through every layer: embeddings, then per layer the attention block and the
    /// feed-forward block, then the requested logits.
    fn forward_layers(
        &self,
        tokens: &[u32],
        kv: &mut KvStore,
        policy: &mut dyn CachePolicy,
        want: LogitsWanted,
        surprisal: bool,
        ws: &mut Workspace,
    ) -> Result<(), ModelError> {
        self.embed_chunk(tokens, kv, ws)?;
        let mut rope_of_table: Option<RopeParams> = None;
        for (il, lw) in self.weights.layers.iter().enumerate() {
            self.attention_block(il, lw, kv, policy, &mut rope_of_table, ws)?;
            self.feed_forward_block(lw, ws)?;
        }
        if surprisal {
            self.token_surprisal(tokens, ws)?;
        }
        self.output_logits(want, ws)
    }

    /// Sizes the workspace for the chunk, takes its positions from `kv` and writes the
    /// (scaled) token embeddings into `ws.x`.
    fn embed_chunk(
        &self,
        tokens: &[u32],
        kv: &KvStore,
        ws: &mut Workspace,
    ) -> Result<(), ModelError> {
        let cfg = &self.cfg;
        let keep_pre = kv.keeps_pre_rope();
        let n = tokens.len();
        let (e, qd, kvd) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim());
        resize(&mut ws.x, n * e);
        resize(&mut ws.xn, n * e);
        resize(&mut ws.q, n * qd);
        resize(&mut ws.k, n * kvd);
        resize(&mut ws.q_pre, n * qd);
        resize(&mut ws.k_pre, if keep_pre { n * kvd } else { 0 });
        resize(&mut ws.v, n * kvd);
        resize(&mut ws.att, n * qd);
        resize(&mut ws.proj, n * e);
        resize(&mut ws.gate, n * cfg.n_ff);
        resize(&mut ws.up, n * cfg.n_ff);
        let half_rot = cfg.rope.iter().map(|r| r.n_rot / 2).max().unwrap_or(0);
        resize(&mut ws.cos, n * half_rot);
        resize(&mut ws.sin, n * half_rot);
        ws.pos.clear();
        let all_pos = kv.positions();
        ws.pos.extend_from_slice(&all_pos[all_pos.len() - n..]);

        for (t, &tok) in tokens.iter().enumerate() {
            self.weights.embed(tok, &mut ws.x[t * e..(t + 1) * e])?;
        }
        if let Some(s) = cfg.embed_scale {
            ws.x.iter_mut().for_each(|v| *v *= s);
        }
        Ok(())
    }

    /// Layer `il`'s attention block: projections, RoPE, the policy's plan over the KV store
    /// (the chunk's keys and values appended first), attention and the residual add.
    fn attention_block(
        &self,
        il: usize,
        lw: &LayerWeights,
        kv: &mut KvStore,
        policy: &mut dyn CachePolicy,
        rope_of_table: &mut Option<RopeParams>,
        ws: &mut Workspace,
    ) -> Result<(), ModelError> {
        let cfg = &self.cfg;
        let file = &*self.weights.file;
        let (n, e, hd) = (ws.pos.len(), cfg.n_embd, cfg.head_dim);
        self.qkv_projection(lw, kv.keeps_pre_rope(), ws)?;
        let rope = cfg.rope[il];
        rotate_chunk(rope, (cfg.q_dim(), cfg.kv_dim(), hd), rope_of_table, ws);
        kv.append(il, &ws.k, &ws.k_pre, &ws.v, n);
        let ctx = PlanContext {
            layer: il,
            native_window: cfg.layer_window[il],
            q: &ws.q,
            q_pre: &ws.q_pre,
            q_pos: &ws.pos,
            n_heads: cfg.n_heads,
            head_dim: hd,
            rope,
        };
        let plan = policy.plan(&ctx, kv);
        let input = AttnInput {
            shape: AttnShape {
                n_heads: cfg.n_heads,
                n_kv_heads: cfg.n_kv_heads,
                head_dim: hd,
                scale: cfg.attn_scale,
            },
            rope,
            q: &ws.q,
            q_pre: &ws.q_pre,
            q_pos: &ws.pos,
            kv: kv.layer(il),
            k_pos: kv.layer_positions(il),
        };
        attend(&input, &plan, &mut ws.attn, &mut ws.att, &mut ws.obs)
            .map_err(|source| ModelError::Attention { layer: il, source })?;
        if !plan.observe.is_empty() {
            policy.observe(il, &plan, &ws.obs, kv);
        }
        linear(
            lw.wo.view(file),
            &ws.att,
            n,
            &mut ws.proj,
            &mut ws.mat,
            &lw.wo.name,
        )?;
        if let Some(pn) = &lw.attn_post_norm {
            ws.proj
                .chunks_exact_mut(e)
                .for_each(|r| ops::rms_norm_inplace(r, pn, cfg.rms_eps));
        }
        ws.x.iter_mut().zip(&ws.proj).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Normed input, Q/K/V projections with their biases and QK-norms, and the un-rotated
    /// copies (queries for fixed-distance spans, keys if the store keeps them).
    fn qkv_projection(
        &self,
        lw: &LayerWeights,
        keep_pre: bool,
        ws: &mut Workspace,
    ) -> Result<(), ModelError> {
        let cfg = &self.cfg;
        let file = &*self.weights.file;
        let (n, e, hd) = (ws.pos.len(), cfg.n_embd, cfg.head_dim);
        for t in 0..n {
            ops::rms_norm(
                &ws.x[t * e..(t + 1) * e],
                &lw.attn_norm,
                cfg.rms_eps,
                &mut ws.xn[t * e..(t + 1) * e],
            );
        }
        linear(
            lw.wq.view(file),
            &ws.xn,
            n,
            &mut ws.q,
            &mut ws.mat,
            &lw.wq.name,
        )?;
        linear(
            lw.wk.view(file),
            &ws.xn,
            n,
            &mut ws.k,
            &mut ws.mat,
            &lw.wk.name,
        )?;
        linear(
            lw.wv.view(file),
            &ws.xn,
            n,
            &mut ws.v,
            &mut ws.mat,
            &lw.wv.name,
        )?;
        add_bias(&mut ws.q, lw.bq.as_ref());
        add_bias(&mut ws.k, lw.bk.as_ref());
        add_bias(&mut ws.v, lw.bv.as_ref());
        if let Some(qn) = &lw.q_norm {
            ws.q.chunks_exact_mut(hd)
                .for_each(|h| ops::rms_norm_inplace(h, qn, cfg.rms_eps));
        }
        if let Some(kn) = &lw.k_norm {
            ws.k.chunks_exact_mut(hd)
                .for_each(|h| ops::rms_norm_inplace(h, kn, cfg.rms_eps));
        }
        ws.q_pre.copy_from_slice(&ws.q);
        if keep_pre {
            ws.k_pre.copy_from_slice(&ws.k);
        }
        Ok(())
    }

    /// The feed-forward block: normed input, gated MLP (SwiGLU, or GELU for Gemma 3), the
    /// optional post-norm and the residual add.
    fn feed_forward_block(&self, lw: &LayerWeights, ws: &mut Workspace) -> Result<(), ModelError> {
        let cfg = &self.cfg;
        let file = &*self.weights.file;
        let (n, e) = (ws.pos.len(), cfg.n_embd);
        for t in 0..n {
            ops::rms_norm(
                &ws.x[t * e..(t + 1) * e],
                &lw.ffn_norm,
                cfg.rms_eps,
                &mut ws.xn[t * e..(t + 1) * e],
            );
        }
        linear(
            lw.w_gate.view(file),
            &ws.xn,
            n,
            &mut ws.gate,
            &mut ws.mat,
            &lw.w_gate.name,
        )?;
        linear(
            lw.w_up.view(file),
            &ws.xn,
            n,
            &mut ws.up,
            &mut ws.mat,
            &lw.w_up.name,
        )?;
        if cfg.arch == Arch::Gemma3 {
            ops::gelu_mul(&mut ws.gate, &ws.up);
        } else {
            ops::silu_mul(&mut ws.gate, &ws.up);
        }
        linear(
            lw.w_down.view(file),
            &ws.gate,
            n,
            &mut ws.proj,
            &mut ws.mat,
            &lw.w_down.name,
        )?;
        if let Some(pn) = &lw.ffn_post_norm {
            ws.proj
                .chunks_exact_mut(e)
                .for_each(|r| ops::rms_norm_inplace(r, pn, cfg.rms_eps));
        }
        ws.x.iter_mut().zip(&ws.proj).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Final norm and language-model head for the rows `want` asks for, into `ws.logits`.
    fn output_logits(&self, want: LogitsWanted, ws: &mut Workspace) -> Result<(), ModelError> {
        let (cfg, w) = (&self.cfg, &self.weights);
        let file = &*w.file;
        let (n, e) = (ws.pos.len(), cfg.n_embd);
        let from = match want {
            LogitsWanted::None => return Ok(()),
            LogitsWanted::Last => n - 1,
            LogitsWanted::From(f) => f.min(n - 1),
        };
        let rows = n - from;
        for t in from..n {
            ops::rms_norm(
                &ws.x[t * e..(t + 1) * e],
                &w.output_norm,
                cfg.rms_eps,
                &mut ws.xn[(t - from) * e..(t - from + 1) * e],
            );
        }
        let vocab = w.output.rows;
        resize(&mut ws.logits, rows * vocab);
        linear(
            w.output.view(file),
            &ws.xn[..rows * e],
            rows,
            &mut ws.logits,
            &mut ws.mat,
            &w.output.name,
        )?;
        if let Some(cap) = cfg.final_logit_softcap {
            ws.logits
                .iter_mut()
                .for_each(|l| *l = (*l / cap).tanh() * cap);
        }
        Ok(())
    }
}

/// Rotates the chunk's queries and keys (`dims` = query width, key width, head size) at their
/// positions; the cos/sin rows are recomputed only when the layer's RoPE differs from the one
/// they were made for (`rope_of_table`; Gemma 3 alternates two bases).
fn rotate_chunk(
    rope: RopeParams,
    (qd, kvd, hd): (usize, usize, usize),
    rope_of_table: &mut Option<RopeParams>,
    ws: &mut Workspace,
) {
    let n = ws.pos.len();
    let hr = rope.n_rot / 2;
    if *rope_of_table != Some(rope) {
        for t in 0..n {
            rope::cos_sin(
                &rope,
                ws.pos[t] as f64,
                &mut ws.cos[t * hr..(t + 1) * hr],
                &mut ws.sin[t * hr..(t + 1) * hr],
            );
        }
        *rope_of_table = Some(rope);
    }
    for t in 0..n {
        let (c, s) = (&ws.cos[t * hr..(t + 1) * hr], &ws.sin[t * hr..(t + 1) * hr]);
        ws.q[t * qd..(t + 1) * qd]
            .chunks_exact_mut(hd)
            .for_each(|h| rope::apply(&rope, h, c, s));
        ws.k[t * kvd..(t + 1) * kvd]
            .chunks_exact_mut(hd)
            .for_each(|h| rope::apply(&rope, h, c, s));
    }
}
