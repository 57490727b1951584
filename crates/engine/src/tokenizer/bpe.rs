//! Merge-ranked BPE (GPT-2 byte-level and Gemma-4 style): words from the pre-tokenizer are
//! merged pairwise, lowest merge rank first (leftmost on ties), over a linked list of symbols
//! driven by a priority queue, then mapped to token ids with byte fallback.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::pretokenize::{PreConfig, PreTokenizer};
use super::vocab::{FxMap, Vocab};
use super::TokenizerError;

/// Merge ranks, keyed by interned halves.
#[derive(Clone, Debug)]
pub(crate) struct BpeRanks {
    /// Every string appearing as a merge half, interned.
    parts: FxMap<Box<str>, u32>,
    /// (left part, right part) -> rank (position in `tokenizer.ggml.merges`).
    ranks: FxMap<(u32, u32), u32>,
}

impl BpeRanks {
    pub fn new(merges: &[String]) -> BpeRanks {
        let mut parts: FxMap<Box<str>, u32> = FxMap::default();
        let mut ranks: FxMap<(u32, u32), u32> = FxMap::default();
        ranks.reserve(merges.len());
        let intern = |s: &str, parts: &mut FxMap<Box<str>, u32>| -> u32 {
            if let Some(&id) = parts.get(s) {
                return id;
            }
            let id = parts.len() as u32;
            parts.insert(s.into(), id);
            id
        };
        for (rank, line) in (0u32..).zip(merges) {
            // split at the first space after the first byte (a half may start with a space)
            let Some(pos) = line.as_bytes().iter().skip(1).position(|&b| b == b' ') else {
                continue; // no separator: llama.cpp records an ("", "") pair nothing can match
            };
            let pos = pos + 1;
            let (left, right) = (&line[..pos], &line[pos + 1..]);
            let l = intern(left, &mut parts);
            let r = intern(right, &mut parts);
            ranks.entry((l, r)).or_insert(rank); // first occurrence wins
        }
        BpeRanks { parts, ranks }
    }

    #[inline]
    fn rank(&self, left: &str, right: &str) -> Option<u32> {
        let l = *self.parts.get(left)?;
        let r = *self.parts.get(right)?;
        self.ranks.get(&(l, r)).copied()
    }
}

/// A symbol of the word being merged: a byte range of the word, linked to its neighbours.
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge; ordered so the max-heap pops the lowest rank, then the leftmost.
type Bigram = Reverse<(u32, usize, usize, usize)>; // (rank, left, right, merged len)

/// BPE tokenizer state shared by all encode calls.
#[derive(Clone, Debug)]
pub(crate) struct Bpe {
    pub pre: PreTokenizer,
    pub cfg: PreConfig,
    pub ranks: BpeRanks,
}

impl Bpe {
    pub fn new(cfg: PreConfig, merges: &[String]) -> Result<Bpe, TokenizerError> {
        Ok(Bpe {
            pre: PreTokenizer::new(&cfg)?,
            cfg,
            ranks: BpeRanks::new(merges),
        })
    }

    /// Tokenizes one plain-text fragment (specials already removed), appending ids to `out`.
    pub fn encode_fragment(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let escaped;
        let text = if vocab.escape_whitespaces {
            escaped = text.replace(' ', "\u{2581}");
            escaped.as_str()
        } else {
            text
        };
        // Repeated words are common in long documents: tokenize each distinct word once.
        let mut cache: HashMap<String, Vec<u32>> = HashMap::new();
        for word in self.pre.split(text) {
            if let Some(ids) = cache.get(&word) {
                out.extend_from_slice(ids);
                continue;
            }
            let mut ids = Vec::new();
            self.encode_word(vocab, &word, &mut ids);
            out.extend_from_slice(&ids);
            if word.len() <= 256 {
                cache.insert(word, ids);
            }
        }
    }

    fn encode_word(&self, vocab: &Vocab, word: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(word.len());
        // A word that is a token skips merging: any word with `ignore_merges` (Llama 3),
        // runs of newlines for Gemma 4.
        let keep_whole = (self.cfg.ignore_merges
            || (self.cfg.newline_runs_whole && word.bytes().all(|b| b == b'\n')))
            && vocab.lookup(word).is_some();
        if keep_whole {
            symbols.push(Symbol {
                start: 0,
                len: word.len(),
                prev: None,
                next: None,
            });
        } else {
            let n_chars = word.chars().count();
            for (i, (start, c)) in word.char_indices().enumerate() {
                symbols.push(Symbol {
                    start,
                    len: c.len_utf8(),
                    prev: i.checked_sub(1),
                    next: (i + 1 < n_chars).then_some(i + 1),
                });
            }
        }

        let text = |s: &Symbol| &word[s.start..s.start + s.len];
        let mut queue: BinaryHeap<Bigram> = BinaryHeap::new();
        let push = |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], l: usize, r: usize| {
            let (ls, rs) = (&symbols[l], &symbols[r]);
            if let Some(rank) = self.ranks.rank(text(ls), text(rs)) {
                queue.push(Reverse((rank, l, r, ls.len + rs.len)));
            }
        };
        for i in 1..symbols.len() {
            push(&mut queue, &symbols, i - 1, i);
        }
        while let Some(Reverse((_, l, r, len))) = queue.pop() {
            let (ll, rl) = (symbols[l].len, symbols[r].len);
            // stale: one side was merged away or grew since the pair was queued
            if ll == 0 || rl == 0 || ll + rl != len {
                continue;
            }
            symbols[l].len += rl;
            symbols[r].len = 0;
            let next = symbols[r].next;
            symbols[l].next = next;
            if let Some(n) = next {
                symbols[n].prev = Some(l);
            }
            if let Some(p) = symbols[l].prev {
                push(&mut queue, &symbols, p, l);
            }
            if let Some(n) = next {
                push(&mut queue, &symbols, l, n);
            }
        }

        let mut cur = (!symbols.is_empty()).then_some(0);
        while let Some(i) = cur {
            let sym = symbols[i];
            cur = sym.next;
            if sym.len == 0 {
                continue;
            }
            let piece = text(&sym);
            match vocab.lookup(piece) {
                Some(id) => out.push(id),
                None => self.byte_fallback(vocab, piece, out),
            }
        }
    }

    /// A piece with no token: one token per byte where the vocabulary has one.
    fn byte_fallback(&self, vocab: &Vocab, piece: &str, out: &mut Vec<u32>) {
        for &b in piece.as_bytes() {
            let id = if self.cfg.byte_encode {
                // llama.cpp looks the raw byte up as a one-byte string
                std::str::from_utf8(std::slice::from_ref(&b))
                    .ok()
                    .and_then(|s| vocab.lookup(s))
            } else {
                vocab.byte_token(b)
            };
            out.extend(id);
        }
    }
}
