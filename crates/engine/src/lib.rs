//! longctx-engine: a CPU inference engine for GGUF decoder models (Llama/SmolLM2, Qwen2, Gemma 3)
//! whose attention and KV cache are driven by pluggable long-context policies.

pub mod attention;
pub mod chat;
pub mod gguf;
pub mod kv;
pub mod model;
pub mod ops;
pub mod perplexity;
pub mod policy;
pub mod quant;
pub mod rope;
pub mod sampling;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokenizer;

pub use model::{Model, ModelError};
pub use session::{GenerateParams, Generation, SavedSession, Session, SessionError, StopReason};
