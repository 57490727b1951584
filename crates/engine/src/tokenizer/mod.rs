//! Tokenizers built from GGUF metadata: GPT-2-style byte-level BPE (SmolLM2, Qwen2, Llama 3) and
//! SentencePiece-style (Gemma, Llama 2), with special/added tokens, matching llama.cpp token for token.
//!
//! API CONTRACT (other modules code against exactly this; implementation may add more):
//!
//! ```ignore
//! pub struct Tokenizer { .. }   // Send + Sync + Clone
//! impl Tokenizer {
//!     pub fn from_gguf(file: &crate::gguf::GgufFile) -> Result<Tokenizer, TokenizerError>;
//!     /// `add_special`: prepend BOS (and append EOS) when the model's metadata says so
//!     /// (tokenizer.ggml.add_bos_token / add_eos_token, with llama.cpp's per-model defaults).
//!     /// `parse_special`: text like "<|im_start|>" becomes the special token instead of plain text.
//!     pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32>;
//!     pub fn token_bytes(&self, id: u32) -> &[u8] or Vec<u8>;  // raw bytes of one token's piece (empty for control tokens when not rendering specials)
//!     pub fn decode(&self, ids: &[u32], render_special: bool) -> String; // lossy UTF-8
//!     pub fn vocab_size(&self) -> usize;
//!     pub fn bos(&self) -> Option<u32>; pub fn eos(&self) -> Option<u32>;
//!     pub fn add_bos(&self) -> bool;
//!     pub fn is_eog(&self, id: u32) -> bool;  // eos, eot, <|im_end|>, <end_of_turn>, ... (llama.cpp's EOG set)
//!     pub fn token_id(&self, piece: &str) -> Option<u32>;
//!     pub fn kind(&self) -> &str;  // "gpt2" | "llama" (SPM) ...
//! }
//! /// Incremental detokenizer for streaming: feed ids, get complete UTF-8 text pieces out.
//! pub struct StreamDecoder<'a> { .. } impl StreamDecoder { pub fn new(tok: &Tokenizer) -> Self; pub fn push(&mut self, id: u32) -> String; pub fn finish(&mut self) -> String; }
//! pub enum TokenizerError { thiserror }
//! ```
