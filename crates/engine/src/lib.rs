//! longctx-engine: a CPU inference engine for GGUF decoder models (Llama/SmolLM2, Qwen2, Gemma 3)
//! whose attention and KV cache are driven by pluggable long-context policies.

pub mod gguf;
pub mod quant;
pub mod tokenizer;
