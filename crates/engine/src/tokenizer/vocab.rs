//! The vocabulary: token texts, scores and attributes, special token ids, the end-of-generation
//! set and the per-model flags, derived from a [`VocabSpec`] with llama.cpp's rules and defaults.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::pretokenize::{pre_config, PreConfig, SUPPORTED_PRE};
use super::TokenizerError;

/// Token attribute bits (llama.cpp `llama_token_attr`).
pub(crate) mod attr {
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
    pub const LSTRIP: u32 = 1 << 7;
    pub const RSTRIP: u32 = 1 << 8;
}

/// `tokenizer.ggml.token_type` values.
pub mod token_type {
    pub const UNDEFINED: i32 = 0;
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

/// Everything the tokenizer needs from a model's `tokenizer.ggml.*` metadata, in plain form
/// (so tokenizers can be built and tested without a GGUF file). `None` means "key absent".
#[derive(Clone, Debug, Default)]
pub struct VocabSpec {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE), "llama" (SentencePiece BPE), "gemma4".
    pub model: String,
    /// `tokenizer.ggml.pre`: pre-tokenizer type of BPE vocabularies.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores` (SentencePiece merge priorities).
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.token_type` (see [`token_type`]).
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.merges`: "left right" pairs, highest priority first.
    pub merges: Option<Vec<String>>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub eot_id: Option<u32>,
    pub eom_id: Option<u32>,
    pub unknown_id: Option<u32>,
    pub separator_id: Option<u32>,
    pub padding_id: Option<u32>,
    pub mask_id: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
    /// `general.name`: llama.cpp keys a few token attribute fixes on it (Phi-3).
    pub model_name: Option<String>,
}

/// Which tokenizer algorithm a vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algo {
    /// SentencePiece BPE by scores ("llama").
    Spm,
    /// Merge-ranked BPE ("gpt2", "gemma4").
    Bpe,
}

#[derive(Clone, Debug)]
pub(crate) struct TokenData {
    pub text: Box<str>,
    pub score: f32,
    pub attr: u32,
}

/// FxHash: fast hashing for the fixed vocabulary maps (keys are not attacker-chosen).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A loaded vocabulary.
#[derive(Clone, Debug)]
pub(crate) struct Vocab {
    pub model: String,
    pub pre: String,
    pub algo: Algo,
    /// Pre-tokenizer settings (BPE only).
    pub pre_cfg: Option<PreConfig>,
    pub tokens: Vec<TokenData>,
    pub index: FxMap<Box<str>, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub escape_whitespaces: bool,
    pub clean_spaces: bool,
    /// End-of-generation flag per token id.
    pub eog: Vec<bool>,
    /// The byte-fallback token of each byte value.
    byte_ids: Vec<Option<u32>>,
}

const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
/// Token texts llama.cpp treats as end-of-generation.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Token texts (empty ones get a placeholder), scores and attributes, and the text → id index.
/// `scores` and `types`, when given, hold at least one entry per token (checked by the caller).
fn read_tokens(
    words: Vec<String>,
    scores: Option<&[f32]>,
    types: Option<&[i32]>,
) -> (Vec<TokenData>, FxMap<Box<str>, u32>) {
    let n = words.len();
    let mut tokens = Vec::with_capacity(n);
    let mut index: FxMap<Box<str>, u32> = FxMap::default();
    index.reserve(n);
    for (i, word) in (0u32..).zip(words) {
        let text: Box<str> = if word.is_empty() {
            format!("[EMPTY_{i}]").into()
        } else {
            word.into()
        };
        let score = scores.map_or(0.0, |s| s[i as usize]);
        let attr = match types.map(|t| t[i as usize]) {
            None | Some(token_type::NORMAL) => attr::NORMAL,
            Some(token_type::UNKNOWN) => attr::UNKNOWN,
            Some(token_type::CONTROL) => attr::CONTROL,
            Some(token_type::USER_DEFINED) => attr::USER_DEFINED,
            Some(token_type::UNUSED) => attr::UNUSED,
            Some(token_type::BYTE) => attr::BYTE,
            Some(_) => 0,
        };
        index.insert(text.clone(), i);
        tokens.push(TokenData { text, score, attr });
    }
    (tokens, index)
}

impl Vocab {
    pub fn from_spec(spec: VocabSpec) -> Result<Vocab, TokenizerError> {
        let n = spec.tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        let n_u32 = u32::try_from(n).map_err(|_| TokenizerError::TooManyTokens(n))?;
        let check_len = |key: &'static str, len: usize| {
            if len < n {
                Err(TokenizerError::LengthMismatch {
                    key,
                    expected: n,
                    found: len,
                })
            } else {
                Ok(())
            }
        };
        if let Some(s) = &spec.scores {
            check_len("tokenizer.ggml.scores", s.len())?;
        }
        if let Some(t) = &spec.token_types {
            check_len("tokenizer.ggml.token_type", t.len())?;
        }

        // Model type, default special ids and flags.
        let mut pre = spec.pre.clone().unwrap_or_default();
        let (algo, mut bos, mut eos, mut unk, pre_cfg) = match spec.model.as_str() {
            "llama" => (Algo::Spm, Some(1), Some(2), Some(0), None),
            "gpt2" => {
                let cfg = pre_config(&pre).ok_or_else(|| {
                    TokenizerError::UnsupportedPre(pre.clone(), SUPPORTED_PRE.join(", "))
                })?;
                let bos = if cfg.no_default_bos { None } else { Some(11) };
                (Algo::Bpe, bos, Some(11), None, Some(cfg))
            }
            "gemma4" => {
                pre = "gemma4".to_string();
                (Algo::Bpe, None, None, None, pre_config("gemma4"))
            }
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        let (mut add_space_prefix, mut add_bos, mut add_eos, escape_whitespaces, clean_spaces) =
            match &pre_cfg {
                None => (true, true, false, true, false),
                Some(c) => (
                    false,
                    c.add_bos,
                    false,
                    c.escape_whitespaces,
                    c.clean_spaces,
                ),
            };
        if let Some(v) = spec.add_space_prefix {
            add_space_prefix = v;
        }

        let (tokens, index) = read_tokens(
            spec.tokens,
            spec.scores.as_deref(),
            spec.token_types.as_deref(),
        );

        // Special ids: a default out of range is disabled; a bad GGUF id keeps the default.
        let in_range = |id: Option<u32>| id.filter(|&v| v < n_u32);
        let pick = |default: Option<u32>, key: Option<u32>| {
            let default = in_range(default);
            match key {
                Some(k) if k < n_u32 => Some(k),
                _ => default,
            }
        };
        bos = pick(bos, spec.bos_id);
        eos = pick(eos, spec.eos_id);
        unk = pick(unk, spec.unknown_id);
        let eot = pick(None, spec.eot_id);
        let eom = pick(None, spec.eom_id);
        let pad = pick(None, spec.padding_id);
        if let Some(v) = spec.add_bos {
            add_bos = v;
        }
        if let Some(v) = spec.add_eos {
            add_eos = v;
        }
        if pre == "gemma4" {
            add_bos = true;
        }

        let mut vocab = Vocab {
            model: spec.model,
            pre,
            algo,
            pre_cfg,
            tokens,
            index,
            bos,
            eos,
            eot: None,
            eom: None,
            unk,
            pad,
            add_bos,
            add_eos,
            add_space_prefix,
            escape_whitespaces,
            clean_spaces,
            eog: vec![false; n],
            byte_ids: Vec::new(),
        };
        vocab.byte_ids = (0..=255u8).map(|b| vocab.find_byte_token(b)).collect();
        let fim = vocab.detect_specials(eot, eom);
        vocab.build_eog(&fim);
        vocab.apply_name_fixes(spec.model_name.as_deref());
        Ok(vocab)
    }

    /// Auto-detects end-of-turn, end-of-message and FIM tokens the GGUF did not name (they
    /// become control tokens), marks control tokens named "unused" as unused, and returns the
    /// FIM pad, repo and separator ids (end-of-generation candidates).
    fn detect_specials(&mut self, eot: Option<u32>, eom: Option<u32>) -> [Option<u32>; 3] {
        // With several candidates llama.cpp takes whichever its hash map yields first; we take
        // the lowest id. (Every end-of-turn candidate is end-of-generation anyway; only
        // vocabularies with two FIM pad/repo spellings could differ.)
        let mut detect = |texts: &[&str], current: Option<u32>| -> Option<u32> {
            if current.is_some() {
                return current;
            }
            let found = texts
                .iter()
                .filter_map(|t| self.index.get(*t).copied())
                .min();
            if let Some(id) = found {
                self.tokens[id as usize].attr |= attr::CONTROL;
            }
            found
        };
        let eot = detect(EOT_TEXTS, eot);
        let eom = detect(EOM_TEXTS, eom);
        let fim_pad = detect(FIM_PAD_TEXTS, None);
        let fim_rep = detect(FIM_REP_TEXTS, None);
        let fim_sep = detect(FIM_SEP_TEXTS, None);
        for texts in [FIM_PRE_TEXTS, FIM_SUF_TEXTS, FIM_MID_TEXTS] {
            detect(texts, None);
        }
        self.eot = eot;
        self.eom = eom;

        // Control tokens named "unused" are unused.
        for t in &mut self.tokens {
            if t.attr & attr::CONTROL != 0 && t.text.contains("unused") {
                t.attr |= attr::UNUSED;
            }
        }
        [fim_pad, fim_rep, fim_sep]
    }

    fn build_eog(&mut self, fim: &[Option<u32>]) {
        let mut eog: Vec<u32> = fim.iter().flatten().copied().collect();
        for (i, t) in self.tokens.iter_mut().enumerate() {
            if EOG_TEXTS.contains(&&*t.text) {
                eog.push(i as u32);
                t.attr |= attr::CONTROL;
            }
        }
        // gpt-oss: these are always rendered.
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = self.index.get(name) {
                self.tokens[id as usize].attr = attr::USER_DEFINED;
            }
        }
        eog.extend([self.eos, self.eot, self.eom].into_iter().flatten());
        let is = |eog: &[u32], tokens: &[TokenData], text: &str| {
            eog.iter()
                .find(|&&id| &*tokens[id as usize].text == text)
                .copied()
        };
        // o200k_harmony / solar-open: "<|end|>" is not an end of generation there.
        let has = |eog: &[u32], tokens: &[TokenData], text: &str| is(eog, tokens, text).is_some();
        let end = is(&eog, &self.tokens, "<|end|>");
        let ret = has(&eog, &self.tokens, "<|return|>");
        let call = has(&eog, &self.tokens, "<|call|>") || has(&eog, &self.tokens, "<|calls|>");
        let flush = has(&eog, &self.tokens, "<|flush|>");
        if let Some(end) = end {
            if call && (ret || flush) {
                eog.retain(|&x| x != end);
                self.tokens[end as usize].attr = attr::USER_DEFINED;
            }
        }
        // gemma4 / plamo: "</s>" is a normal token there.
        let marker =
            has(&eog, &self.tokens, "<|tool_response>") || has(&eog, &self.tokens, "<|plamo:eos|>");
        if let (true, Some(s)) = (marker, is(&eog, &self.tokens, "</s>")) {
            eog.retain(|&x| x != s);
            self.tokens[s as usize].attr = attr::NORMAL;
        }
        for id in eog {
            self.eog[id as usize] = true;
        }
    }

    fn apply_name_fixes(&mut self, name: Option<&str>) {
        let name = name.unwrap_or("").to_ascii_lowercase();
        if name.contains("phi-3") || name.contains("phi3") {
            for t in &mut self.tokens {
                if is_special_attr(t.attr) {
                    t.attr |= attr::RSTRIP;
                }
            }
            let mut set = |text: &str, on: bool| {
                if let Some(&id) = self.index.get(text) {
                    let a = &mut self.tokens[id as usize].attr;
                    *a = if on {
                        *a | attr::RSTRIP
                    } else {
                        *a & !attr::RSTRIP
                    };
                }
            };
            set("</s>", true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                set(t, false);
            }
        }
    }

    #[inline]
    pub fn lookup(&self, text: &str) -> Option<u32> {
        self.index.get(text).copied()
    }

    #[inline]
    pub fn attr(&self, id: u32) -> u32 {
        self.tokens.get(id as usize).map_or(0, |t| t.attr)
    }

    /// The token for one raw byte: `<0xXX>`, else (SPM) the byte as text.
    #[inline]
    pub fn byte_token(&self, b: u8) -> Option<u32> {
        self.byte_ids.get(usize::from(b)).copied().flatten()
    }

    fn find_byte_token(&self, b: u8) -> Option<u32> {
        let hex = format!("<0x{b:02X}>");
        self.lookup(&hex).or_else(|| {
            if self.algo == Algo::Spm && b.is_ascii() {
                self.lookup(std::str::from_utf8(&[b]).ok()?)
            } else {
                None
            }
        })
    }
}

/// Control, user-defined and unknown tokens are matched in text before tokenization.
#[inline]
pub(crate) fn is_special_attr(a: u32) -> bool {
    a & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
}
