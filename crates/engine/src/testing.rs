//! Test support: tiny random models written as real GGUF files (F32 weights and a byte-level
//! vocabulary), so tests across the workspace can run every architecture without downloads.

use crate::gguf::writer::GgufWriter;
use crate::model::Arch;

/// Shape of a tiny model.
#[derive(Clone, Copy, Debug)]
pub struct TinySpec {
    pub arch: Arch,
    pub n_layers: usize,
    pub n_embd: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub context_length: usize,
    /// Gemma 3 sliding window of the local layers.
    pub sliding_window: usize,
    pub seed: u64,
}

impl TinySpec {
    pub fn new(arch: Arch) -> TinySpec {
        TinySpec {
            arch,
            n_layers: 3,
            n_embd: 32,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 8,
            n_ff: 48,
            context_length: 64,
            sliding_window: 4,
            seed: 1,
        }
    }
}

/// Byte-level BPE vocabulary: the 256 byte symbols (GPT-2's byte-to-unicode map), then `<s>`
/// and `</s>` as control tokens.
pub const TINY_VOCAB: usize = 258;

/// GPT-2's printable stand-in for each byte.
pub fn byte_symbol(b: u8) -> char {
    let printable = |c: u8| {
        (b'!'..=b'~').contains(&c) || (0xA1..=0xAC).contains(&c) || (0xAE..=0xFF).contains(&c)
    };
    if printable(b) {
        return b as char;
    }
    let offset = (0..b).filter(|&c| !printable(c)).count() as u32;
    char::from_u32(256 + offset).unwrap_or('?')
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }

    /// Norm weights near 1.
    fn norm(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| 1.0 + 0.2 * self.next()).collect()
    }
}

/// Writes a tiny random model of `spec` as GGUF bytes.
pub fn tiny_model_gguf(spec: &TinySpec) -> Vec<u8> {
    tiny_model_writer(spec).build()
}

/// The writer behind [`tiny_model_gguf`], for tests that corrupt or edit the model first.
pub fn tiny_model_writer(spec: &TinySpec) -> GgufWriter {
    let s = spec;
    let arch = s.arch.name();
    let mut w = GgufWriter::new();
    let k = |x: &str| format!("{arch}.{x}");
    w.str("general.architecture", arch)
        .str("general.name", "tiny")
        .u32(&k("block_count"), s.n_layers as u32)
        .u32(&k("embedding_length"), s.n_embd as u32)
        .u32(&k("attention.head_count"), s.n_heads as u32)
        .u32(&k("attention.head_count_kv"), s.n_kv_heads as u32)
        .u32(&k("attention.key_length"), s.head_dim as u32)
        .u32(&k("attention.value_length"), s.head_dim as u32)
        .u32(&k("feed_forward_length"), s.n_ff as u32)
        .u32(&k("context_length"), s.context_length as u32)
        .f32(&k("attention.layer_norm_rms_epsilon"), 1e-6)
        .f32(&k("rope.freq_base"), 10000.0);
    if s.arch == Arch::Gemma3 {
        w.u32(&k("attention.sliding_window"), s.sliding_window as u32)
            .f32(&k("rope.freq_base_swa"), 100.0)
            .u32(&k("attention.sliding_window_pattern"), 2);
    }
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_symbol(b).to_string()).collect();
    tokens.push("<s>".into());
    tokens.push("</s>".into());
    let mut types = vec![1i32; 256];
    types.extend([3, 3]);
    w.str("tokenizer.ggml.model", "gpt2")
        .str("tokenizer.ggml.pre", "default")
        .str_array("tokenizer.ggml.tokens", &tokens)
        .i32_array("tokenizer.ggml.token_type", &types)
        .str_array::<&str>("tokenizer.ggml.merges", &[])
        .u32("tokenizer.ggml.bos_token_id", 256)
        .u32("tokenizer.ggml.eos_token_id", 257)
        .bool("tokenizer.ggml.add_bos_token", true);

    let mut rng = Lcg(s.seed);
    let (e, qd, kvd, ff, hd) = (
        s.n_embd,
        s.n_heads * s.head_dim,
        s.n_kv_heads * s.head_dim,
        s.n_ff,
        s.head_dim,
    );
    let dims2 = |cols: usize, rows: usize| [cols as u64, rows as u64];
    w.tensor_f32(
        "token_embd.weight",
        &dims2(e, TINY_VOCAB),
        &rng.vec(e * TINY_VOCAB, 0.5),
    );
    w.tensor_f32("output_norm.weight", &[e as u64], &rng.norm(e));
    if s.arch != Arch::Gemma3 {
        w.tensor_f32(
            "output.weight",
            &dims2(e, TINY_VOCAB),
            &rng.vec(e * TINY_VOCAB, 0.3),
        );
    }
    for i in 0..s.n_layers {
        let n = |x: &str| format!("blk.{i}.{x}");
        w.tensor_f32(&n("attn_norm.weight"), &[e as u64], &rng.norm(e));
        w.tensor_f32(&n("attn_q.weight"), &dims2(e, qd), &rng.vec(e * qd, 0.4));
        w.tensor_f32(&n("attn_k.weight"), &dims2(e, kvd), &rng.vec(e * kvd, 0.4));
        w.tensor_f32(&n("attn_v.weight"), &dims2(e, kvd), &rng.vec(e * kvd, 0.4));
        w.tensor_f32(
            &n("attn_output.weight"),
            &dims2(qd, e),
            &rng.vec(qd * e, 0.3),
        );
        if s.arch == Arch::Qwen2 {
            w.tensor_f32(&n("attn_q.bias"), &[qd as u64], &rng.vec(qd, 0.2));
            w.tensor_f32(&n("attn_k.bias"), &[kvd as u64], &rng.vec(kvd, 0.2));
            w.tensor_f32(&n("attn_v.bias"), &[kvd as u64], &rng.vec(kvd, 0.2));
        }
        if s.arch == Arch::Gemma3 {
            w.tensor_f32(&n("attn_q_norm.weight"), &[hd as u64], &rng.norm(hd));
            w.tensor_f32(&n("attn_k_norm.weight"), &[hd as u64], &rng.norm(hd));
            w.tensor_f32(&n("post_attention_norm.weight"), &[e as u64], &rng.norm(e));
            w.tensor_f32(&n("post_ffw_norm.weight"), &[e as u64], &rng.norm(e));
        }
        w.tensor_f32(&n("ffn_norm.weight"), &[e as u64], &rng.norm(e));
        w.tensor_f32(&n("ffn_gate.weight"), &dims2(e, ff), &rng.vec(e * ff, 0.4));
        w.tensor_f32(&n("ffn_up.weight"), &dims2(e, ff), &rng.vec(e * ff, 0.4));
        w.tensor_f32(&n("ffn_down.weight"), &dims2(ff, e), &rng.vec(ff * e, 0.3));
    }
    w
}
