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
//!
//! Implementation notes (beyond the contract):
//!
//! * `token_bytes(id) -> &[u8]` is the piece as llama.cpp's `token_to_piece(special = false)`:
//!   empty for control and unknown tokens. [`Tokenizer::token_piece`] takes `render_special`.
//! * `decode` is llama.cpp's `llama_detokenize(remove_special = false)`: for vocabularies with a
//!   space prefix one leading space of the first token is dropped, and vocabularies flagged
//!   `clean_spaces` (GPT-2, Llama 3, Gemma 4, ...; not SmolLM2 or Qwen2) get " ." -> "." style
//!   clean-up. [`StreamDecoder`] is the plain concatenation of pieces, as printed while
//!   generating.
//! * [`Tokenizer::from_spec`] builds a tokenizer from a plain [`VocabSpec`] (no GGUF needed).
//! * Supported `tokenizer.ggml.model`: "gpt2" (with the pre-tokenizers listed in
//!   `pretokenize::SUPPORTED_PRE`), "llama" (SentencePiece) and "gemma4"; others are
//!   [`TokenizerError::UnsupportedModel`].
//! * Invalid ids never panic: `decode` skips them, `token_bytes` returns empty, `is_eog` is false.
//! * User-defined tokens are cut out of the text even when `parse_special` is false (llama.cpp
//!   and HF tokenizers do the same); control and unknown tokens only when it is true.
//!
//! Tests: `vocab_tests` compares every case of llama.cpp's `ggml-vocab-*.gguf.inp/.out` files
//! (fetched by `scripts/fetch-test-vocabs.sh` into `$LONGCTX_TEST_VOCABS`, default
//! `~/.cache/longctx/test-vocabs`) and ids recorded with `llama-tokenize` for SmolLM2
//! (`$LONGCTX_SMOLLM2_GGUF`); each skips with a note when its files are absent.

mod bpe;
mod decode;
mod pretokenize;
mod special;
mod spm;
mod unicode;
mod unicode_tables;
mod vocab;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vocab_tests;

use std::sync::Arc;

pub use decode::StreamDecoder;
pub use vocab::{token_type, VocabSpec};

use bpe::Bpe;
use special::{Fragment, SpecialMatcher};
use vocab::{attr, Algo, Vocab};

/// Why a tokenizer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("unsupported tokenizer model '{0}' (supported: gpt2, llama, gemma4)")]
    UnsupportedModel(String),
    #[error("unsupported BPE pre-tokenizer '{0}' (supported: {1})")]
    UnsupportedPre(String, String),
    #[error("GGUF metadata key '{0}' is missing")]
    MissingKey(&'static str),
    #[error("BPE vocabulary has no tokenizer.ggml.merges")]
    MissingMerges,
    #[error("the vocabulary has no tokens")]
    EmptyVocab,
    #[error("the vocabulary has {0} tokens, more than token ids can address")]
    TooManyTokens(usize),
    #[error("{key} has {found} entries but the vocabulary has {expected} tokens")]
    LengthMismatch {
        key: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("invalid pre-tokenizer pattern {0}")]
    Regex(String),
    #[error("reading tokenizer metadata: {0}")]
    Gguf(#[from] crate::gguf::GgufError),
}

/// A tokenizer for one model's vocabulary. Cheap to clone (shared immutable state).
#[derive(Clone, Debug)]
pub struct Tokenizer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    vocab: Vocab,
    bpe: Option<Bpe>,
    special: SpecialMatcher,
    /// Piece of every token with specials rendered (llama.cpp's piece cache).
    pieces: Vec<Box<[u8]>>,
}

impl Tokenizer {
    /// Builds the tokenizer from a GGUF file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(file: &crate::gguf::GgufFile) -> Result<Tokenizer, TokenizerError> {
        Tokenizer::from_spec(spec_from_gguf(file)?)
    }

    /// Builds the tokenizer from plain vocabulary data.
    pub fn from_spec(mut spec: VocabSpec) -> Result<Tokenizer, TokenizerError> {
        let merges = spec.merges.take();
        let vocab = Vocab::from_spec(spec)?;
        let bpe = match (vocab.algo, vocab.pre_cfg, merges) {
            (Algo::Bpe, Some(cfg), Some(merges)) => Some(Bpe::new(cfg, &merges)?),
            (Algo::Bpe, _, _) => return Err(TokenizerError::MissingMerges),
            _ => None,
        };
        let special = SpecialMatcher::new(&vocab);
        let pieces = (0..vocab.tokens.len() as u32)
            .map(|id| decode::render_piece(&vocab, id).into_boxed_slice())
            .collect();
        Ok(Tokenizer {
            inner: Arc::new(Inner {
                vocab,
                bpe,
                special,
                pieces,
            }),
        })
    }

    /// Text to token ids. `add_special` adds BOS/EOS as the vocabulary's flags say;
    /// `parse_special` lets control-token text (e.g. `<|im_start|>`) become that token.
    /// User-defined tokens are always matched in the text, as in llama.cpp.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let Inner {
            vocab,
            bpe,
            special,
            ..
        } = &*self.inner;
        let fragments = special.partition(vocab, text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && vocab.add_bos {
            out.extend(vocab.bos);
        }
        match bpe {
            Some(bpe) => {
                for f in fragments {
                    match f {
                        Fragment::Text(t) => bpe.encode_fragment(vocab, t, &mut out),
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
            None => {
                // SentencePiece: a space is prefixed to text that starts the input or follows
                // a special token.
                let mut prev_special = true;
                for f in fragments {
                    match f {
                        Fragment::Text(t) => {
                            let mut s = String::with_capacity(t.len() + 3);
                            if vocab.add_space_prefix && prev_special {
                                s.push('\u{2581}');
                            }
                            s.push_str(&t.replace(' ', "\u{2581}"));
                            spm::encode_fragment(vocab, &s, &mut out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
        }
        if add_special && vocab.add_eos {
            out.extend(vocab.eos);
        }
        out
    }

    /// The piece of one token, rendering control/unknown tokens only when `render_special`.
    /// Empty for invalid ids.
    pub fn token_piece(&self, id: u32, render_special: bool) -> &[u8] {
        self.piece(id, render_special)
    }

    /// The piece of one token as plain output shows it (control/unknown tokens are empty).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.piece(id, false)
    }

    fn piece(&self, id: u32, render_special: bool) -> &[u8] {
        let Inner { vocab, pieces, .. } = &*self.inner;
        if !render_special && decode::hidden_unless_special(vocab, id) {
            return &[];
        }
        pieces.get(id as usize).map_or(&[], |p| p)
    }

    /// Token ids to text (invalid UTF-8 replaced by U+FFFD, invalid ids skipped).
    pub fn decode(&self, ids: &[u32], render_special: bool) -> String {
        String::from_utf8_lossy(&decode::detokenize(self, ids, render_special)).into_owned()
    }

    /// Like [`Tokenizer::decode`] but returns the raw bytes.
    pub fn decode_bytes(&self, ids: &[u32], render_special: bool) -> Vec<u8> {
        decode::detokenize(self, ids, render_special)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.vocab.tokens.len()
    }
    pub fn bos(&self) -> Option<u32> {
        self.inner.vocab.bos
    }
    pub fn eos(&self) -> Option<u32> {
        self.inner.vocab.eos
    }
    /// End-of-turn token (`tokenizer.ggml.eot_token_id` or detected by text).
    pub fn eot(&self) -> Option<u32> {
        self.inner.vocab.eot
    }
    pub fn unk(&self) -> Option<u32> {
        self.inner.vocab.unk
    }
    pub fn pad(&self) -> Option<u32> {
        self.inner.vocab.pad
    }
    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.inner.vocab.add_bos && self.inner.vocab.bos.is_some()
    }
    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.inner.vocab.add_eos && self.inner.vocab.eos.is_some()
    }
    /// Whether generation should stop at this token (llama.cpp's end-of-generation set).
    pub fn is_eog(&self, id: u32) -> bool {
        self.inner
            .vocab
            .eog
            .get(id as usize)
            .copied()
            .unwrap_or(false)
    }
    /// All end-of-generation token ids, ascending.
    pub fn eog_ids(&self) -> Vec<u32> {
        (0u32..)
            .zip(&self.inner.vocab.eog)
            .filter(|(_, &e)| e)
            .map(|(i, _)| i)
            .collect()
    }
    /// Whether the token is a control token (hidden unless rendering specials).
    pub fn is_control(&self, id: u32) -> bool {
        self.inner.vocab.attr(id) & attr::CONTROL != 0
    }
    /// The id of the token whose vocabulary text is exactly `piece` (e.g. "<|im_end|>").
    pub fn token_id(&self, piece: &str) -> Option<u32> {
        self.inner.vocab.lookup(piece)
    }
    /// The vocabulary text of a token (byte-level / U+2581-escaped form, as stored in GGUF).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.inner.vocab.tokens.get(id as usize).map(|t| &*t.text)
    }
    /// `tokenizer.ggml.model`: "gpt2", "llama" (SentencePiece) or "gemma4".
    pub fn kind(&self) -> &str {
        &self.inner.vocab.model
    }
    /// `tokenizer.ggml.pre` ("" when absent; "gemma4" for Gemma-4 vocabularies). Only BPE
    /// vocabularies use it.
    pub fn pre(&self) -> &str {
        &self.inner.vocab.pre
    }
}

/// Reads the `tokenizer.ggml.*` keys into a [`VocabSpec`].
fn spec_from_gguf(f: &crate::gguf::GgufFile) -> Result<VocabSpec, TokenizerError> {
    const P: &str = "tokenizer.ggml.";
    let key = |k: &str| format!("{P}{k}");
    let model = f
        .get_str(&key("model"))?
        .ok_or(TokenizerError::MissingKey("tokenizer.ggml.model"))?
        .to_string();
    let tokens: Vec<String> = f
        .get_str_array(&key("tokens"))?
        .ok_or(TokenizerError::MissingKey("tokenizer.ggml.tokens"))?
        .into_iter()
        .map(str::to_string)
        .collect();
    let scores = match f.get_f32_array(&key("scores")) {
        Ok(v) => v,
        // llama.cpp also accepts integer scores
        Err(_) => f
            .get_i32_array(&key("scores"))?
            .map(|v| v.into_iter().map(|s| s as f32).collect()),
    };
    let merges = f
        .get_str_array(&key("merges"))?
        .map(|v| v.into_iter().map(str::to_string).collect());
    let id = |k: &str| -> Result<Option<u32>, TokenizerError> {
        // an id that is negative, mistyped or too large is ignored, like llama.cpp ignores an
        // out-of-range id (the per-model default stays)
        Ok(f.get_u64(&key(k))
            .ok()
            .flatten()
            .and_then(|v| u32::try_from(v).ok()))
    };
    Ok(VocabSpec {
        model,
        pre: f.get_str(&key("pre"))?.map(str::to_string),
        tokens,
        scores,
        token_types: f.get_i32_array(&key("token_type"))?,
        merges,
        bos_id: id("bos_token_id")?,
        eos_id: id("eos_token_id")?,
        eot_id: id("eot_token_id")?,
        eom_id: id("eom_token_id")?,
        unknown_id: id("unknown_token_id")?,
        separator_id: id("seperator_token_id")?,
        padding_id: id("padding_token_id")?,
        mask_id: id("mask_token_id")?,
        add_bos: f.get_bool(&key("add_bos_token"))?,
        add_eos: f.get_bool(&key("add_eos_token"))?,
        add_space_prefix: f.get_bool(&key("add_space_prefix"))?,
        model_name: f.get_str("general.name")?.map(str::to_string),
    })
}
