//! SentencePiece-style BPE ("llama" vocabularies: Llama 2, Gemma): spaces become U+2581, then
//! adjacent symbols are merged best-score first (leftmost on ties) whenever their concatenation
//! is a token; leftover symbols fall back to `<0xXX>` byte tokens.
//!
//! llama.cpp also keeps a "reverse merge" table to re-split symbols that are not tokens, but a
//! merged symbol is always a token (a pair is only queued when its text is one), so only
//! unmerged single characters can miss, and those go straight to byte fallback.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge: highest score first, then leftmost.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
            .then_with(|| other.right.cmp(&self.right))
            .then_with(|| other.len.cmp(&self.len))
    }
}

/// Tokenizes an already whitespace-escaped fragment, appending ids to `out`.
pub(crate) fn encode_fragment(vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
    let n_chars = text.chars().count();
    let mut symbols: Vec<Symbol> = text
        .char_indices()
        .enumerate()
        .map(|(i, (start, c))| Symbol {
            start,
            len: c.len_utf8(),
            prev: i.checked_sub(1),
            next: (i + 1 < n_chars).then_some(i + 1),
        })
        .collect();

    let mut queue = BinaryHeap::new();
    let push = |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: usize, right: usize| {
        let (l, r) = (&symbols[left], &symbols[right]);
        let len = l.len + r.len;
        let piece = &text[l.start..l.start + len];
        if let Some(id) = vocab.lookup(piece) {
            let score = vocab.tokens[id as usize].score;
            queue.push(Bigram {
                score,
                left,
                right,
                len,
            });
        }
    };
    for i in 1..symbols.len() {
        push(&mut queue, &symbols, i - 1, i);
    }
    while let Some(Bigram {
        left, right, len, ..
    }) = queue.pop()
    {
        let (ll, rl) = (symbols[left].len, symbols[right].len);
        if ll == 0 || rl == 0 || ll + rl != len {
            continue; // stale
        }
        symbols[left].len = len;
        symbols[right].len = 0;
        let next = symbols[right].next;
        symbols[left].next = next;
        if let Some(n) = next {
            symbols[n].prev = Some(left);
        }
        if let Some(p) = symbols[left].prev {
            push(&mut queue, &symbols, p, left);
        }
        if let Some(n) = next {
            push(&mut queue, &symbols, left, n);
        }
    }

    let mut cur = (!symbols.is_empty()).then_some(0);
    while let Some(i) = cur {
        let s = symbols[i];
        cur = s.next;
        let piece = &text[s.start..s.start + s.len];
        match vocab.lookup(piece) {
            Some(id) => out.push(id),
            None => out.extend(piece.bytes().filter_map(|b| vocab.byte_token(b))),
        }
    }
}
