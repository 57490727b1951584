//! Token ids back to text: per-token pieces (llama.cpp `token_to_piece`), whole-sequence
//! detokenization with llama.cpp's space clean-up, and a streaming decoder that never splits a
//! UTF-8 character across outputs.

use super::unicode::char_to_byte;
use super::vocab::{attr, Algo, Vocab};
use super::Tokenizer;

/// The bytes token `id` renders as when special tokens are rendered (llama.cpp's piece cache).
/// Tokens with no textual form (unused/undefined types) render as nothing.
pub(crate) fn render_piece(vocab: &Vocab, id: u32) -> Vec<u8> {
    let Some(t) = vocab.tokens.get(id as usize) else {
        return Vec::new();
    };
    let a = t.attr;
    if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
        return t.text.as_bytes().to_vec();
    }
    if a & attr::NORMAL != 0 {
        if vocab.algo == Algo::Spm || vocab.escape_whitespaces {
            return t.text.replace('\u{2581}', " ").into_bytes();
        }
        return byte_decode(&t.text);
    }
    if a & attr::BYTE != 0 {
        return parse_byte_token(&t.text)
            .map(|b| vec![b])
            .unwrap_or_default();
    }
    Vec::new()
}

/// `<0xXX>` -> the byte.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.get(3..5)?;
    u8::from_str_radix(hex, 16).ok()
}

/// Reverses GPT-2 byte-level encoding; characters outside the byte map are reported inline the
/// way llama.cpp does (`[UNK_BYTE_0x..<token>]`).
fn byte_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).as_bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
    out
}

/// Whether a token's piece is hidden unless special tokens are rendered.
#[inline]
pub(crate) fn hidden_unless_special(vocab: &Vocab, id: u32) -> bool {
    vocab.attr(id) & (attr::UNKNOWN | attr::CONTROL) != 0
}

/// llama.cpp `detokenize` (with `remove_special = false`): concatenated pieces, one leading space
/// of the first token dropped when the vocabulary adds a space prefix, then (for vocabularies
/// with `clean_spaces`) " ?", " !", " .", " ," lose their space, " ' " loses both spaces and
/// " 's", " 'm", " 're", " 've" lose their space.
pub(crate) fn detokenize(tok: &Tokenizer, ids: &[u32], render_special: bool) -> Vec<u8> {
    let vocab = &tok.inner.vocab;
    let mut text = Vec::new();
    let mut strip_space = vocab.add_space_prefix;
    for &id in ids {
        let piece = tok.piece(id, render_special);
        let piece = match (strip_space, piece.first()) {
            (true, Some(b' ')) => &piece[1..],
            _ => piece,
        };
        strip_space = false;
        text.extend_from_slice(piece);
    }
    if vocab.clean_spaces {
        clean_spaces(&mut text);
    }
    text
}

fn clean_spaces(text: &mut Vec<u8>) {
    // pass 1: " ?" " !" " ." " ," -> drop the space
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            out.pop();
        }
        out.push(x);
    }
    // pass 2: " ' " -> "'"
    // (llama.cpp blanks the dropped space in place, so it no longer counts as the previous
    // character of what follows)
    let src = std::mem::take(&mut out);
    let mut i = 0;
    let mut prev_blanked = false;
    while i < src.len() {
        let x = src[i];
        if i > 0
            && x == b'\''
            && i + 1 < src.len()
            && src[i - 1] == b' '
            && !prev_blanked
            && src[i + 1] == b' '
        {
            out.pop();
            out.push(x);
            i += 2; // the space after is dropped
            prev_blanked = true;
            continue;
        }
        prev_blanked = false;
        out.push(x);
        i += 1;
    }
    // pass 3: " 's" " 'm" " 're" " 've" -> drop the space
    let src = std::mem::take(&mut out);
    for (i, &x) in src.iter().enumerate() {
        if i > 0 && src[i - 1] == b' ' && x == b'\'' && i + 1 < src.len() {
            let x1 = src[i + 1];
            let x2 = src.get(i + 2).copied();
            let drop = matches!(x1, b's' | b'm')
                || (i + 2 < src.len()
                    && matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e'))));
            if drop {
                out.pop();
            }
        }
        out.push(x);
    }
    *text = out;
}

/// Incremental detokenizer for streaming generation: feed ids, get text out as soon as it forms
/// complete UTF-8 characters. Output is the plain concatenation of token pieces (what llama.cpp
/// prints while generating): no leading-space removal and no space clean-up. Invalid byte
/// sequences come out as U+FFFD; an incomplete trailing sequence waits for the next token.
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    render_special: bool,
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    /// A decoder that does not render control tokens.
    pub fn new(tok: &'a Tokenizer) -> Self {
        Self::with_special(tok, false)
    }

    /// A decoder that renders control tokens as their text when `render_special`.
    pub fn with_special(tok: &'a Tokenizer, render_special: bool) -> Self {
        StreamDecoder {
            tok,
            render_special,
            pending: Vec::new(),
        }
    }

    /// Adds one token; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        self.pending
            .extend_from_slice(self.tok.piece(id, self.render_special));
        let keep = incomplete_tail(&self.pending);
        let ready = self.pending.len() - keep;
        let out = String::from_utf8_lossy(&self.pending[..ready]).into_owned();
        self.pending.drain(..ready);
        out
    }

    /// Flushes whatever is buffered (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Length of a trailing prefix of a UTF-8 character that more bytes could still complete.
fn incomplete_tail(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=n.min(3) {
        let b = bytes[n - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: look further back for the lead byte
        }
        let need = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0, // ASCII or invalid lead: nothing to wait for
        };
        if need <= back {
            return 0;
        }
        // the bytes so far must be a valid prefix (no overlong / surrogate / out of range)
        let tail = &bytes[n - back..];
        return if valid_prefix(tail) { back } else { 0 };
    }
    0
}

fn valid_prefix(tail: &[u8]) -> bool {
    let second_ok = |lead: u8, second: u8| match lead {
        0xE0 => (0xA0..=0xBF).contains(&second),
        0xED => (0x80..=0x9F).contains(&second),
        0xF0 => (0x90..=0xBF).contains(&second),
        0xF4 => (0x80..=0x8F).contains(&second),
        _ => (0x80..=0xBF).contains(&second),
    };
    match tail {
        [_] => true,
        [lead, second, rest @ ..] => {
            second_ok(*lead, *second) && rest.iter().all(|&b| b & 0xC0 == 0x80)
        }
        [] => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        let mut v = s.as_bytes().to_vec();
        clean_spaces(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn clean_spaces_rules() {
        assert_eq!(clean("Hello , world !"), "Hello, world!");
        assert_eq!(clean("rock ' n"), "rock'n");
        assert_eq!(clean("it 's I 'm we 're you 've"), "it's I'm we're you've");
        assert_eq!(clean("don 't they 'll"), "don 't they 'll");
        assert_eq!(clean(" ."), ".");
    }

    #[test]
    fn incomplete_tails() {
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail("é".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"é".as_bytes()[..1]), 1);
        assert_eq!(incomplete_tail(&"🦙".as_bytes()[..3]), 3);
        assert_eq!(incomplete_tail(&[0xE0, 0x80]), 0); // overlong prefix can never complete
        assert_eq!(incomplete_tail(&[b'a', 0xFF]), 0);
    }
}
