//! Splitting a document into chunks of at most N tokens without cutting sentences where it
//! can be helped (LLM×MapReduce's `chunk_docs`): lines first, a line too long by sentence
//! punctuation, a sentence too long by spaces, and text with no spaces by characters. Chunks
//! are packed greedily on an estimate (tokens per byte of the whole text) and each is then
//! counted exactly and split again if over, so a document of N tokens costs O(chunks) token
//! counts, not one per sentence (which matters over HTTP). A last chunk shorter than half the
//! budget is balanced with the one before it.

use crate::Result;

/// Ends of sentences (kept with their sentence), as LLM×MapReduce splits them.
const SENTENCE_ENDS: &[char] = &['.', '?', '!', ';', '。', '！', '？', '；'];

/// Contiguous pieces of `text` that concatenate back to it exactly, none (by estimate) over
/// `max_bytes`: lines, then sentences, then words, then characters.
pub fn split_units(text: &str, max_bytes: usize) -> Vec<&str> {
    let max_bytes = max_bytes.max(1);
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        split_piece(line, max_bytes, 0, &mut out);
    }
    out
}

/// Splits `piece` at the `level`-th kind of boundary until every part fits.
fn split_piece<'a>(piece: &'a str, max_bytes: usize, level: usize, out: &mut Vec<&'a str>) {
    if piece.len() <= max_bytes {
        out.push(piece);
        return;
    }
    let parts: Vec<&str> = match level {
        0 => piece.split_inclusive(SENTENCE_ENDS).collect(),
        1 => piece.split_inclusive(' ').collect(),
        _ => {
            // No boundary left: cut at character boundaries.
            let mut parts = Vec::new();
            let mut rest = piece;
            while rest.len() > max_bytes {
                let mut cut = max_bytes;
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                let cut = cut.max(rest.chars().next().map_or(1, char::len_utf8));
                parts.push(&rest[..cut]);
                rest = &rest[cut..];
            }
            if !rest.is_empty() {
                parts.push(rest);
            }
            out.extend(parts);
            return;
        }
    };
    // Re-pack small parts up to the limit so a split line is not a flood of tiny units.
    let mut start = 0;
    let mut len = 0;
    let base = piece.as_ptr() as usize;
    for part in parts {
        if part.len() > max_bytes {
            if len > 0 {
                out.push(&piece[start..start + len]);
            }
            split_piece(part, max_bytes, level + 1, out);
            start = part.as_ptr() as usize - base + part.len();
            len = 0;
        } else if len + part.len() > max_bytes {
            out.push(&piece[start..start + len]);
            start = part.as_ptr() as usize - base;
            len = part.len();
        } else {
            len += part.len();
        }
    }
    if len > 0 {
        out.push(&piece[start..start + len]);
    }
}

/// Packs text into chunks of at most `budget` tokens as counted by `count`.
pub struct Chunker<'a> {
    pub budget: usize,
    pub count: &'a dyn Fn(&str) -> Result<usize>,
}

impl Chunker<'_> {
    /// The chunks of `text`, in order, with their token counts; empty chunks are dropped.
    pub fn chunks(&self, text: &str) -> Result<Vec<(String, usize)>> {
        let budget = self.budget.max(1);
        let total = (self.count)(text)?;
        if total <= budget {
            return Ok(if text.trim().is_empty() {
                Vec::new()
            } else {
                vec![(text.to_string(), total)]
            });
        }
        // Tokens per byte over the whole text, for packing by estimate.
        let per_byte = total as f64 / text.len().max(1) as f64;
        let max_bytes = ((budget as f64 / per_byte) as usize).max(1);
        let units = split_units(text, max_bytes);
        let est = |u: &str| (u.len() as f64 * per_byte).ceil() as usize;
        let mut groups: Vec<Vec<&str>> = Vec::new();
        let mut current: Vec<&str> = Vec::new();
        let mut current_est = 0;
        for u in units {
            if current_est + est(u) > budget && !current.is_empty() {
                groups.push(std::mem::take(&mut current));
                current_est = 0;
            }
            current_est += est(u);
            current.push(u);
        }
        if !current.is_empty() {
            groups.push(current);
        }
        let mut out = Vec::new();
        for g in groups {
            self.exact(&g, &mut out)?;
        }
        out.retain(|(c, _)| !c.trim().is_empty());
        self.balance_last(&mut out, max_bytes)?;
        Ok(out)
    }

    /// A last chunk under half the budget is balanced with the one before it: the two are
    /// split again at the unit boundary that makes the first about half of both (found by
    /// bisection on exact counts).
    fn balance_last(&self, chunks: &mut [(String, usize)], max_bytes: usize) -> Result<()> {
        let n = chunks.len();
        if n < 2 || chunks[n - 1].1 * 2 >= self.budget {
            return Ok(());
        }
        let both = format!("{}{}", chunks[n - 2].0, chunks[n - 1].0);
        let half = (chunks[n - 2].1 + chunks[n - 1].1) / 2;
        let units = split_units(&both, max_bytes.min(both.len() / 4).max(1));
        let (mut lo, mut hi) = (1, units.len() - 1);
        let mut best: Option<(String, usize, String, usize)> = None;
        while lo <= hi {
            let mid = (lo + hi) / 2;
            let first: String = units[..mid].concat();
            let second: String = units[mid..].concat();
            let (a, b) = ((self.count)(&first)?, (self.count)(&second)?);
            if a <= self.budget && b <= self.budget {
                best = Some((first, a, second, b));
            }
            if a < half {
                lo = mid + 1;
            } else if mid == 0 {
                break;
            } else {
                hi = mid - 1;
            }
        }
        if let Some((first, a, second, b)) = best {
            if b > chunks[n - 1].1 {
                chunks[n - 2] = (first, a);
                chunks[n - 1] = (second, b);
            }
        }
        Ok(())
    }

    /// Counts a group exactly; halves it until every part fits.
    fn exact(&self, group: &[&str], out: &mut Vec<(String, usize)>) -> Result<()> {
        let text: String = group.concat();
        let n = (self.count)(&text)?;
        if n <= self.budget || text.len() <= 1 {
            out.push((text, n));
            return Ok(());
        }
        if group.len() == 1 {
            // One unit over budget by the estimate's error: cut it in two at a char boundary.
            let unit = group[0];
            let mut mid = unit.len() / 2;
            while !unit.is_char_boundary(mid) {
                mid -= 1;
            }
            let mid = mid.max(unit.chars().next().map_or(1, char::len_utf8));
            return self.exact(&[&unit[..mid], &unit[mid..]], out);
        }
        let mid = group.len() / 2;
        self.exact(&group[..mid], out)?;
        self.exact(&group[mid..], out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Result<usize> {
        Ok(s.split_whitespace().count())
    }

    #[test]
    fn units_concatenate_back_and_respect_the_limit() {
        let text =
            "Short line.\nA much longer line. It has two sentences!\nNoSpacesHereAtAllInThisOne\n";
        for max in [1, 5, 12, 30, 1000] {
            let u = split_units(text, max);
            assert_eq!(u.concat(), text, "max {max}");
            assert!(
                u.iter()
                    .all(|p| p.len() <= max.max(1) || p.chars().count() == 1),
                "{max}: {u:?}"
            );
        }
        assert_eq!(
            split_units("One. Two. Three.", 10),
            vec!["One. Two.", " Three."]
        );
        assert_eq!(split_units("ééé", 3), vec!["é", "é", "é"]);
    }

    #[test]
    fn chunks_fit_the_budget_and_keep_every_word_in_order() {
        let text: String = (0..200)
            .map(|i| {
                format!(
                    "Sentence number {i} is here.{}",
                    if i % 7 == 6 { "\n" } else { " " }
                )
            })
            .collect();
        let chunker = Chunker {
            budget: 50,
            count: &words,
        };
        let chunks = chunker.chunks(&text).unwrap();
        assert!(chunks.len() >= 20, "{}", chunks.len());
        assert!(chunks
            .iter()
            .all(|(c, n)| *n <= 50 && words(c).unwrap() == *n));
        let joined: String = chunks.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(joined, text);
        // Sentences are not cut.
        assert!(
            chunks.iter().all(|(c, _)| c.trim_end().ends_with('.')),
            "{chunks:?}"
        );
        // The last chunk is balanced with the one before it.
        let last = chunks[chunks.len() - 1].1;
        assert!(last * 2 >= 50 || chunks.len() == 1, "{last}");
    }

    #[test]
    fn a_text_that_fits_is_one_chunk_and_blank_text_none() {
        let c = Chunker {
            budget: 10,
            count: &words,
        };
        assert_eq!(c.chunks("a b c").unwrap(), vec![("a b c".to_string(), 3)]);
        assert!(c.chunks("  \n ").unwrap().is_empty());
    }
}
