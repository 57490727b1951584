//! Special-token partitioning: before the model tokenizer runs, occurrences of control /
//! user-defined / unknown token texts are cut out of the input and become those tokens
//! (control and unknown ones only when `parse_special`).
//!
//! llama.cpp (`tokenizer_st_partition`) takes the special tokens longest text first and, for
//! each, splits every remaining text fragment at its non-overlapping occurrences, left to right.
//! This reproduces that result without rescanning the text once per special token: all
//! occurrences of all special texts are found in one trie pass, then accepted in that same
//! priority order; an occurrence counts only if it lies inside text no earlier token claimed.

use super::vocab::{attr, is_special_attr, Vocab};

/// A piece of the partitioned input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

#[derive(Clone, Debug, Default)]
struct Node {
    /// (byte, child node index), sorted by byte.
    children: Vec<(u8, u32)>,
    /// Special tokens whose text ends here.
    tokens: Vec<u32>,
}

/// Trie of special token texts, plus each token's priority.
#[derive(Clone, Debug)]
pub(crate) struct SpecialMatcher {
    nodes: Vec<Node>,
    /// Priority rank per token id (0 = first); only meaningful for special tokens.
    rank: Vec<u32>,
    any: bool,
}

impl SpecialMatcher {
    pub fn new(vocab: &Vocab) -> SpecialMatcher {
        let mut order: Vec<u32> = (0..vocab.tokens.len() as u32)
            .filter(|&id| is_special_attr(vocab.tokens[id as usize].attr))
            .collect();
        // longest text first; equal lengths by id (llama.cpp's sort leaves ties unspecified)
        order.sort_by_key(|&id| (std::cmp::Reverse(vocab.tokens[id as usize].text.len()), id));
        let mut rank = vec![u32::MAX; vocab.tokens.len()];
        let mut nodes = vec![Node::default()];
        for (r, &id) in (0u32..).zip(&order) {
            rank[id as usize] = r;
            let mut cur = 0usize;
            for &b in vocab.tokens[id as usize].text.as_bytes() {
                cur = match nodes[cur].children.binary_search_by_key(&b, |&(k, _)| k) {
                    Ok(i) => nodes[cur].children[i].1 as usize,
                    Err(i) => {
                        let new = nodes.len();
                        nodes[cur].children.insert(i, (b, new as u32));
                        nodes.push(Node::default());
                        new
                    }
                };
            }
            nodes[cur].tokens.push(id);
        }
        SpecialMatcher {
            nodes,
            rank,
            any: !order.is_empty(),
        }
    }

    /// Splits `text` into plain-text fragments and special tokens.
    pub fn partition<'a>(
        &self,
        vocab: &Vocab,
        text: &'a str,
        parse_special: bool,
    ) -> Vec<Fragment<'a>> {
        if text.is_empty() {
            return Vec::new();
        }
        if !self.any {
            return vec![Fragment::Text(text)];
        }
        let bytes = text.as_bytes();
        let eligible =
            |id: u32| parse_special || vocab.attr(id) & (attr::CONTROL | attr::UNKNOWN) == 0;

        // 1. every occurrence: (rank, start, token)
        let mut occ: Vec<(u32, usize, u32)> = Vec::new();
        for start in 0..bytes.len() {
            let mut cur = 0usize;
            for &b in &bytes[start..] {
                match self.nodes[cur]
                    .children
                    .binary_search_by_key(&b, |&(k, _)| k)
                {
                    Ok(i) => cur = self.nodes[cur].children[i].1 as usize,
                    Err(_) => break,
                }
                for &id in &self.nodes[cur].tokens {
                    if eligible(id) {
                        occ.push((self.rank[id as usize], start, id));
                    }
                }
            }
        }
        if occ.is_empty() {
            return vec![Fragment::Text(text)];
        }
        occ.sort_unstable();

        // 2. accept in priority order, each token's occurrences left to right
        let mut claimed = vec![false; bytes.len()];
        let mut accepted: Vec<(usize, usize, u32)> = Vec::new(); // (start, len, id)
        let mut prev_token = u32::MAX;
        let mut resume = 0usize; // the current token's search restarts here
        for &(_, start, id) in &occ {
            if id != prev_token {
                prev_token = id;
                resume = 0;
            }
            let len = vocab.tokens[id as usize].text.len();
            let end = start + len;
            if start < resume || claimed[start..end].iter().any(|&c| c) {
                continue;
            }
            claimed[start..end].iter_mut().for_each(|c| *c = true);
            accepted.push((start, len, id));
            resume = end;
            let a = vocab.attr(id);
            if a & attr::LSTRIP != 0 {
                let mut i = start;
                while i > 0 && !claimed[i - 1] && c_isspace(bytes[i - 1]) {
                    i -= 1;
                    claimed[i] = true;
                }
            }
            if a & attr::RSTRIP != 0 {
                let mut i = end;
                while i < bytes.len() && !claimed[i] && c_isspace(bytes[i]) {
                    claimed[i] = true;
                    i += 1;
                }
                resume = i;
            }
        }
        accepted.sort_unstable();

        // 3. assemble: unclaimed runs are text, stripped whitespace is dropped
        let mut out = Vec::with_capacity(accepted.len() * 2 + 1);
        let mut pos = 0usize;
        let push_text = |from: usize, to: usize, out: &mut Vec<Fragment<'a>>| {
            let mut i = from;
            while i < to {
                if claimed[i] {
                    i += 1;
                    continue;
                }
                let s = i;
                while i < to && !claimed[i] {
                    i += 1;
                }
                out.push(Fragment::Text(&text[s..i]));
            }
        };
        for &(start, len, id) in &accepted {
            push_text(pos, start, &mut out);
            out.push(Fragment::Token(id));
            pos = start + len;
        }
        push_text(pos, bytes.len(), &mut out);
        out
    }
}

/// C `isspace` in the "C" locale.
#[inline]
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}
