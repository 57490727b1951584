//! BPE pre-tokenization: splitting text into words before merges, per `tokenizer.ggml.pre`.
//!
//! A pre-tokenizer is an ordered list of split rules. Each rule re-splits every piece produced
//! by the previous one; both the rule's matches and the text between matches become pieces
//! (HF "Isolated" behaviour). The common GPT-2 / Llama-3 / Qwen2 patterns are hand-written
//! scanners over code point classes (as llama.cpp does, quirks included); any other pattern runs
//! through `fancy_regex` on a rewritten text that mirrors llama.cpp's std::regex fallback:
//! patterns using `\p{..}` see each non-ASCII code point "collapsed" to a stand-in character for
//! its class, other patterns see the real text with non-ASCII whitespace replaced by U+000B.

use super::unicode::{byte_encode_into, flags, CpFlags};
use super::TokenizerError;

const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3_PATTERN: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_PATTERN: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35_PATTERN: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const NEWLINES_PATTERN: &str = r"[^\n]+|[\n]+";

const DEFAULT_RULES: &[&str] = &[
    r"[\p{P}\$\+<=>\^~\|]+",
    GPT2_PATTERN,
    r"\p{N}+",
    r"[0-9][0-9][0-9]",
];
const STARCODER_RULES: &[&str] = &[r"\p{N}", GPT2_PATTERN];
const FALCON_RULES: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2_PATTERN, r"[0-9][0-9][0-9]"];
const DEEPSEEK_LLM_RULES: &[&str] = &[
    r"[\r\n]",
    r"\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+",
    r"\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+",
    r"\s+$",
    r"[\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+",
    r"\p{N}+",
];
const DEEPSEEK_CODER_RULES: &[&str] = &[
    r"[\r\n]",
    r"\s?\p{L}+",
    r"\s?\p{P}+",
    r"[\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+",
    r"\p{N}",
];
const DEEPSEEK_V3_RULES: &[&str] = &[
    r"\p{N}{1,3}",
    r"[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+",
    r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
];

/// Per-`tokenizer.ggml.pre` settings (llama.cpp `llama_vocab::impl::load`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PreConfig {
    /// Split rules, applied in order.
    pub rules: &'static [&'static str],
    /// GPT-2 byte-level encoding of words (false: raw UTF-8 with `<0xXX>` byte fallback).
    pub byte_encode: bool,
    /// Spaces become U+2581 before splitting (SentencePiece-style BPE, e.g. Gemma 4).
    pub escape_whitespaces: bool,
    /// Post-process decoded text (" ." -> "." etc., llama.cpp `clean_spaces`).
    pub clean_spaces: bool,
    /// A word that is itself a token skips merging.
    pub ignore_merges: bool,
    /// Default for `add_bos` when the GGUF does not say.
    pub add_bos: bool,
    /// The vocabulary has no BOS (unless the GGUF names one).
    pub no_default_bos: bool,
    /// Gemma-4 handling: runs of newlines that are a token stay whole.
    pub newline_runs_whole: bool,
}

impl PreConfig {
    const fn new(rules: &'static [&'static str]) -> Self {
        PreConfig {
            rules,
            byte_encode: true,
            escape_whitespaces: false,
            clean_spaces: true,
            ignore_merges: false,
            add_bos: false,
            no_default_bos: false,
            newline_runs_whole: false,
        }
    }
    const fn no_clean(mut self) -> Self {
        self.clean_spaces = false;
        self
    }
}

/// Settings for a `tokenizer.ggml.pre` value of a "gpt2"-model vocabulary; `None` if unsupported.
/// An absent pre-tokenizer is `""`, which (like "default") selects llama.cpp's default rules.
pub(crate) fn pre_config(pre: &str) -> Option<PreConfig> {
    let gpt2: &'static [&'static str] = &[GPT2_PATTERN];
    let llama3: &'static [&'static str] = &[LLAMA3_PATTERN];
    let qwen2: &'static [&'static str] = &[QWEN2_PATTERN];
    let cfg = match pre {
        "" | "default" => PreConfig::new(DEFAULT_RULES),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => {
            let mut c = PreConfig::new(llama3);
            c.ignore_merges = true;
            c.add_bos = true;
            c
        }
        "dbrx" | "smaug-bpe" => PreConfig::new(llama3),
        "chatglm-bpe" => {
            let mut c = PreConfig::new(llama3);
            c.no_default_bos = true;
            c
        }
        "glm4" | "glm5" => {
            let mut c = PreConfig::new(llama3);
            c.no_default_bos = true;
            c.ignore_merges = true;
            c
        }
        "deepseek-llm" => PreConfig::new(DEEPSEEK_LLM_RULES).no_clean(),
        "deepseek-coder" => PreConfig::new(DEEPSEEK_CODER_RULES).no_clean(),
        "deepseek-v3" | "hunyuan-dense" | "joyai-llm" | "hy_v4" => {
            PreConfig::new(DEEPSEEK_V3_RULES).no_clean()
        }
        "falcon" => PreConfig::new(FALCON_RULES),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "exaone4" | "mpt" | "olmo" | "jais" => {
            PreConfig::new(gpt2)
        }
        "trillion" | "granite-docling" => PreConfig::new(gpt2).no_clean(),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            PreConfig::new(STARCODER_RULES)
        }
        "command-r" | "smollm" => PreConfig::new(STARCODER_RULES).no_clean(),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" => {
            PreConfig::new(qwen2).no_clean()
        }
        "megrez" | "stablelm2" => PreConfig::new(qwen2),
        "qwen35" => PreConfig::new(&[QWEN35_PATTERN]).no_clean(),
        "gemma4" | "granite-embed-multi-311m" => {
            let mut c = PreConfig::new(&[NEWLINES_PATTERN]);
            c.byte_encode = false;
            c.escape_whitespaces = true;
            c.newline_runs_whole = true;
            c
        }
        _ => return None,
    };
    Some(cfg)
}

/// Every `tokenizer.ggml.pre` value [`pre_config`] accepts (for error messages and tests).
pub(crate) const SUPPORTED_PRE: &[&str] = &[
    "default",
    "llama3",
    "llama-v3",
    "llama-bpe",
    "falcon3",
    "falcon-h1",
    "pixtral",
    "midm-2.0",
    "lfm2",
    "jina-v5-nano",
    "dbrx",
    "smaug-bpe",
    "chatglm-bpe",
    "glm4",
    "glm5",
    "deepseek-llm",
    "deepseek-coder",
    "deepseek-v3",
    "hunyuan-dense",
    "joyai-llm",
    "hy_v4",
    "falcon",
    "gpt-2",
    "phi-2",
    "jina-es",
    "jina-de",
    "gigachat",
    "jina-v2-es",
    "jina-v2-de",
    "a.x-4.0",
    "mellum",
    "modern-bert",
    "exaone4",
    "mpt",
    "olmo",
    "jais",
    "trillion",
    "granite-docling",
    "starcoder",
    "refact",
    "codeshell",
    "exaone",
    "minerva-7b",
    "mellum2",
    "command-r",
    "smollm",
    "qwen2",
    "deepseek-r1-qwen",
    "kormo",
    "f2llmv2",
    "hunyuan",
    "solar-open",
    "megrez",
    "stablelm2",
    "qwen35",
    "gemma4",
    "granite-embed-multi-311m",
];

/// One compiled split rule.
#[derive(Clone, Debug)]
enum Rule {
    /// The GPT-2 pattern, hand-written.
    Gpt2,
    /// Llama-3 / Qwen2 / Qwen3.5 patterns, hand-written: digits grouped up to `max_digits`,
    /// letter runs also taking combining marks when `marks`.
    Llama3 { max_digits: usize, marks: bool },
    /// `[^\n]+|[\n]+`.
    Newlines,
    /// Any other pattern via fancy-regex; `collapsed` when it uses `\p{..}` classes.
    Regex {
        re: Box<fancy_regex::Regex>,
        collapsed: bool,
    },
}

/// A compiled pre-tokenizer.
#[derive(Clone, Debug)]
pub(crate) struct PreTokenizer {
    rules: Vec<Rule>,
    byte_encode: bool,
}

/// Unicode classes llama.cpp's fallback knows, with the ASCII members it keeps for each.
const COLLAPSE_CLASSES: &[(&str, char, &str)] = &[
    (r"\p{N}", '\u{E0D1}', "0-9"),
    (r"\p{L}", '\u{E0D2}', "A-Za-z"),
    (r"\p{P}", '\u{E0D3}', r"!-#%-*,-/:-;?-@\[-\]_\{\}"),
    (r"\p{M}", '\u{E0D4}', ""),
    (r"\p{S}", '\u{E0D5}', r"\$\+<->\^`\|~"),
    (r"\p{Lu}", '\u{E0D2}', "A-Za-z"),
    (r"\p{Ll}", '\u{E0D2}', "A-Za-z"),
    (r"\p{Lt}", '\u{E0D2}', "A-Za-z"),
    (r"\p{Lm}", '\u{E0D2}', "A-Za-z"),
    (r"\p{Lo}", '\u{E0D2}', "A-Za-z"),
];
/// Stand-in for a non-ASCII code point outside every collapsed class.
const COLLAPSED_OTHER: char = '\u{E0D0}';

fn compile_rule(pattern: &str) -> Result<Rule, TokenizerError> {
    let rule = match pattern {
        GPT2_PATTERN => Rule::Gpt2,
        LLAMA3_PATTERN => Rule::Llama3 {
            max_digits: 3,
            marks: false,
        },
        QWEN2_PATTERN => Rule::Llama3 {
            max_digits: 1,
            marks: false,
        },
        QWEN35_PATTERN => Rule::Llama3 {
            max_digits: 1,
            marks: true,
        },
        NEWLINES_PATTERN => Rule::Newlines,
        _ => {
            let collapsed = COLLAPSE_CLASSES.iter().any(|(p, _, _)| pattern.contains(p));
            let source = if collapsed {
                let mut s = pattern.to_string();
                for (p, stand_in, ascii) in COLLAPSE_CLASSES {
                    s = s.replace(p, &format!("[\\x{{{:X}}}{ascii}]", u32::from(*stand_in)));
                }
                s
            } else {
                pattern.to_string()
            };
            let re = fancy_regex::Regex::new(&source)
                .map_err(|e| TokenizerError::Regex(format!("{pattern}: {e}")))?;
            Rule::Regex {
                re: Box::new(re),
                collapsed,
            }
        }
    };
    Ok(rule)
}

/// A piece of the text being split, as a code point range `[start, end)`.
type Span = (usize, usize);

impl PreTokenizer {
    pub fn new(cfg: &PreConfig) -> Result<Self, TokenizerError> {
        let rules = cfg
            .rules
            .iter()
            .map(|p| compile_rule(p))
            .collect::<Result<_, _>>()?;
        Ok(PreTokenizer {
            rules,
            byte_encode: cfg.byte_encode,
        })
    }

    /// Splits `text` into words, byte-level encoded when the vocabulary is byte-level.
    pub fn split(&self, text: &str) -> Vec<String> {
        let cps: Vec<char> = text.chars().collect();
        if cps.is_empty() {
            return Vec::new();
        }
        let fl: Vec<CpFlags> = cps.iter().map(|&c| flags(c)).collect();
        let mut spans: Vec<Span> = vec![(0, cps.len())];
        for rule in &self.rules {
            let mut out = Vec::with_capacity(spans.len() * 2);
            match rule {
                Rule::Gpt2 => spans
                    .iter()
                    .for_each(|&s| split_gpt2(&cps, &fl, s, &mut out)),
                Rule::Llama3 { max_digits, marks } => spans
                    .iter()
                    .for_each(|&s| split_llama3(&cps, &fl, s, *max_digits, *marks, &mut out)),
                Rule::Newlines => spans
                    .iter()
                    .for_each(|&s| split_newlines(&cps, s, &mut out)),
                Rule::Regex { re, collapsed } => {
                    let view: String = cps
                        .iter()
                        .zip(&fl)
                        .map(|(&c, &f)| regex_view_char(c, f, *collapsed))
                        .collect();
                    // byte offset of each code point in `view` (plus the end)
                    let mut offs = Vec::with_capacity(cps.len() + 1);
                    let mut o = 0;
                    for c in view.chars() {
                        offs.push(o);
                        o += c.len_utf8();
                    }
                    offs.push(o);
                    spans
                        .iter()
                        .for_each(|&s| split_regex(re, &view, &offs, s, &mut out));
                }
            }
            spans = out;
        }
        let mut words = Vec::with_capacity(spans.len());
        for (a, b) in spans {
            let word: String = cps[a..b].iter().collect();
            if self.byte_encode {
                let mut enc = String::with_capacity(word.len() * 2);
                byte_encode_into(&word, &mut enc);
                words.push(enc);
            } else {
                words.push(word);
            }
        }
        words
    }
}

fn regex_view_char(c: char, f: CpFlags, collapsed: bool) -> char {
    if c.is_ascii() {
        return c;
    }
    if f.is_whitespace() {
        return '\u{0B}';
    }
    if !collapsed {
        return c;
    }
    match f.category() {
        CpFlags::NUMBER => '\u{E0D1}',
        CpFlags::LETTER => '\u{E0D2}',
        CpFlags::PUNCTUATION => '\u{E0D3}',
        CpFlags::MARK => '\u{E0D4}',
        CpFlags::SYMBOL => '\u{E0D5}',
        _ => COLLAPSED_OTHER,
    }
}

/// Matches and the gaps between them both become pieces.
fn split_regex(
    re: &fancy_regex::Regex,
    view: &str,
    offs: &[usize],
    span: Span,
    out: &mut Vec<Span>,
) {
    let (a, b) = span;
    let base = offs[a];
    let hay = &view[base..offs[b]];
    // code point index of a byte offset inside `hay`
    let to_cp = |byte: usize| a + offs[a..=b].partition_point(|&o| o < base + byte);
    let mut last = a;
    for m in re.find_iter(hay) {
        let Ok(m) = m else { break }; // backtracking limit: keep the rest unsplit
        if m.start() == m.end() {
            continue;
        }
        let (s, e) = (to_cp(m.start()), to_cp(m.end()));
        if s > last {
            out.push((last, s));
        }
        out.push((s, e));
        last = e;
    }
    if last < b {
        out.push((last, b));
    }
}

fn split_newlines(cps: &[char], (a, b): Span, out: &mut Vec<Span>) {
    let mut pos = a;
    while pos < b {
        let nl = cps[pos] == '\n';
        let start = pos;
        while pos < b && (cps[pos] == '\n') == nl {
            pos += 1;
        }
        out.push((start, pos));
    }
}

/// Access to one span of the text, with "no code point" outside it.
struct Scan<'a> {
    cps: &'a [char],
    fl: &'a [CpFlags],
    end: usize,
    prev: usize,
}

impl Scan<'_> {
    #[inline]
    fn cp(&self, pos: usize) -> Option<char> {
        (pos < self.end).then(|| self.cps[pos])
    }
    #[inline]
    fn fl(&self, pos: usize) -> CpFlags {
        if pos < self.end {
            self.fl[pos]
        } else {
            CpFlags::NONE
        }
    }
    /// Emits the piece from the previous cut up to `end`.
    #[inline]
    fn cut(&mut self, end: usize, out: &mut Vec<Span>) {
        if end > self.prev {
            out.push((self.prev, end));
        }
        self.prev = end;
    }
    /// Length of a `'s 't 're 've 'm 'll 'd` contraction at `pos`, if any.
    fn contraction(&self, pos: usize, fold_case: bool) -> Option<usize> {
        if self.cp(pos) != Some('\'') || pos + 1 >= self.end {
            return None;
        }
        let low = |c: Option<char>| {
            let c = c.unwrap_or('\0');
            if fold_case {
                c.to_ascii_lowercase()
            } else {
                c
            }
        };
        let c1 = low(self.cp(pos + 1));
        if matches!(c1, 's' | 't' | 'm' | 'd') {
            return Some(2);
        }
        if pos + 2 < self.end {
            let c2 = low(self.cp(pos + 2));
            if matches!((c1, c2), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                return Some(3);
            }
        }
        None
    }
    /// Number of whitespace code points starting at `pos`, and the end of the last CR/LF in it.
    fn whitespace_run(&self, pos: usize) -> (usize, Option<usize>) {
        let mut n = 0;
        let mut last_nl = None;
        while self.fl(pos + n).is_whitespace() {
            if matches!(self.cp(pos + n), Some('\r' | '\n')) {
                last_nl = Some(pos + n + 1);
            }
            n += 1;
        }
        (n, last_nl)
    }
}

fn is_other(f: CpFlags) -> bool {
    !(f.is_whitespace() || f.is_letter() || f.is_number())
}

/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
fn split_gpt2(cps: &[char], fl: &[CpFlags], (a, b): Span, out: &mut Vec<Span>) {
    let mut s = Scan {
        cps,
        fl,
        end: b,
        prev: a,
    };
    let mut pos = a;
    while pos < b {
        if let Some(n) = s.contraction(pos, false) {
            pos += n;
            s.cut(pos, out);
            continue;
        }
        let space = s.cp(pos) == Some(' ');
        let f2 = if space { s.fl(pos + 1) } else { s.fl(pos) };
        let class: Option<fn(CpFlags) -> bool> = if f2.is_letter() {
            Some(CpFlags::is_letter)
        } else if f2.is_number() {
            Some(CpFlags::is_number)
        } else if is_other(f2) && f2.exists() {
            Some(|f: CpFlags| is_other(f) && f.exists())
        } else {
            None
        };
        if let Some(in_class) = class {
            pos += usize::from(space);
            while in_class(s.fl(pos)) {
                pos += 1;
            }
            s.cut(pos, out);
            continue;
        }
        let (n_ws, _) = s.whitespace_run(pos);
        if n_ws > 1 && pos + n_ws < b {
            // \s+(?!\S): leave the last space to prefix the next word
            pos += n_ws - 1;
        } else if n_ws > 0 {
            pos += n_ws;
        } else {
            pos += 1;
        }
        s.cut(pos, out);
    }
}

/// Llama-3 family:
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// (`marks`: `\p{L}` becomes `[\p{L}\p{M}]` in the letter run and the "other" class).
fn split_llama3(
    cps: &[char],
    fl: &[CpFlags],
    (a, b): Span,
    max_digits: usize,
    marks: bool,
    out: &mut Vec<Span>,
) {
    let mut s = Scan {
        cps,
        fl,
        end: b,
        prev: a,
    };
    let letter = |f: CpFlags| f.is_letter() || (marks && f.is_mark());
    let other = |f: CpFlags| is_other(f) && !(marks && f.is_mark());
    let mut pos = a;
    while pos < b {
        if let Some(n) = s.contraction(pos, true) {
            pos += n;
            s.cut(pos, out);
            continue;
        }
        let c = s.cp(pos);
        let f = s.fl(pos);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !matches!(c, Some('\r' | '\n')) && !f.is_number() && (letter(f) || letter(s.fl(pos + 1)))
        {
            pos += 1;
            while letter(s.fl(pos)) {
                pos += 1;
            }
            s.cut(pos, out);
            continue;
        }
        // \p{N}{1,max_digits}
        if f.is_number() {
            let mut group_start = pos;
            while s.fl(pos).is_number() {
                pos += 1;
                if pos - group_start >= max_digits {
                    s.cut(pos, out);
                    group_start = pos;
                }
            }
            s.cut(pos, out);
            continue;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        let space = c == Some(' ');
        let f2 = if space { s.fl(pos + 1) } else { f };
        if other(f2) && f.exists() {
            pos += usize::from(space);
            while other(s.fl(pos)) && s.fl(pos).exists() {
                pos += 1;
            }
            while matches!(s.cp(pos), Some('\r' | '\n')) {
                pos += 1;
            }
            s.cut(pos, out);
            continue;
        }
        let (n_ws, last_nl) = s.whitespace_run(pos);
        if let Some(e) = last_nl {
            // \s*[\r\n]+
            pos = e;
        } else if n_ws > 1 && pos + n_ws < b {
            // \s+(?!\S)
            pos += n_ws - 1;
        } else if n_ws > 0 {
            pos += n_ws;
        } else {
            pos += 1;
        }
        s.cut(pos, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pre: &str, text: &str) -> Vec<String> {
        let cfg = pre_config(pre).unwrap();
        let mut cfg = cfg;
        cfg.byte_encode = false;
        PreTokenizer::new(&cfg).unwrap().split(text)
    }

    #[test]
    fn every_supported_pre_compiles() {
        for pre in SUPPORTED_PRE {
            let cfg = pre_config(pre).unwrap_or_else(|| panic!("{pre} not configured"));
            PreTokenizer::new(&cfg).unwrap_or_else(|e| panic!("{pre}: {e}"));
        }
        assert!(pre_config("no-such-pre").is_none());
    }

    #[test]
    fn gpt2_split() {
        assert_eq!(
            split("gpt-2", "Hello world's  end 123\n\n x"),
            ["Hello", " world", "'s", " ", " end", " 123", "\n\n", " x"]
        );
        assert_eq!(split("gpt-2", "a  "), ["a", "  "]);
    }

    #[test]
    fn llama3_split() {
        assert_eq!(
            split("llama-bpe", "I'M 12345 ok!!\n\n  x"),
            ["I", "'M", " ", "123", "45", " ok", "!!\n\n", " ", " x"]
        );
    }

    #[test]
    fn qwen2_digits_single() {
        assert_eq!(split("qwen2", "ab123"), ["ab", "1", "2", "3"]);
    }

    #[test]
    fn smollm_isolates_digits() {
        assert_eq!(split("smollm", "x 12 y"), ["x", " ", "1", "2", " y"]);
    }

    #[test]
    fn default_rules_split_punctuation() {
        assert_eq!(split("default", "a, b1234"), ["a", ",", " b", "123", "4"]);
    }

    #[test]
    fn newlines_split() {
        assert_eq!(split("gemma4", "a b\n\nc"), ["a b", "\n\n", "c"]);
    }

    #[test]
    fn byte_encoding() {
        let cfg = pre_config("gpt-2").unwrap();
        let words = PreTokenizer::new(&cfg).unwrap().split(" é\n");
        assert_eq!(words, ["ĠÃ©", "Ċ"]);
    }
}
