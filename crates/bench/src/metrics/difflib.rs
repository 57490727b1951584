//! `fuzzywuzzy.fuzz.ratio` as LongBench runs it: its `requirements.txt` installs
//! `fuzzywuzzy` without `python-Levenshtein`, so fuzzywuzzy falls back to Python's
//! `difflib.SequenceMatcher` (with its default `autojunk=True` "popular element" heuristic).
//! The port follows CPython 3.11's `difflib` over Unicode code points.

use std::collections::HashMap;

/// `difflib.SequenceMatcher(None, a, b).ratio()`: `2·M / (|a| + |b|)` with `M` the total size
/// of the matching blocks, `1.0` when both are empty.
pub fn sequence_matcher_ratio(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    let matches = matching_characters(&a, &b);
    2.0 * matches as f64 / total as f64
}

/// `fuzz.ratio(s1, s2)`: 100 for equal strings, 0 when either is empty, else
/// `int(round(100 · ratio))` with Python's round-half-to-even.
pub fn fuzz_ratio(s1: &str, s2: &str) -> u32 {
    if s1 == s2 {
        return 100;
    }
    if s1.is_empty() || s2.is_empty() {
        return 0;
    }
    (100.0 * sequence_matcher_ratio(s1, s2)).round_ties_even() as u32
}

/// Sum of the sizes of `get_matching_blocks()`.
fn matching_characters(a: &[char], b: &[char]) -> usize {
    // __chain_b: positions of each element of b; with autojunk, elements occurring more
    // than 1% + 1 times in a b of 200 or more elements are dropped ("popular"). There is no
    // isjunk function, so bjunk is empty and the junk-extension passes never run.
    let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
    for (j, &c) in b.iter().enumerate() {
        b2j.entry(c).or_default().push(j);
    }
    let n = b.len();
    if n >= 200 {
        let ntest = n / 100 + 1;
        b2j.retain(|_, idxs| idxs.len() <= ntest);
    }
    let mut total = 0;
    let mut queue = vec![(0, a.len(), 0, b.len())];
    while let Some((alo, ahi, blo, bhi)) = queue.pop() {
        let (i, j, k) = find_longest_match(a, b, &b2j, alo, ahi, blo, bhi);
        if k > 0 {
            total += k;
            if alo < i && blo < j {
                queue.push((alo, i, blo, j));
            }
            if i + k < ahi && j + k < bhi {
                queue.push((i + k, ahi, j + k, bhi));
            }
        }
    }
    total
}

/// `SequenceMatcher.find_longest_match(alo, ahi, blo, bhi)`: the longest block of
/// non-popular matches (earliest in `a`, then in `b`), then extended by equal elements on
/// both ends (popular ones included).
fn find_longest_match(
    a: &[char],
    b: &[char],
    b2j: &HashMap<char, Vec<usize>>,
    alo: usize,
    ahi: usize,
    blo: usize,
    bhi: usize,
) -> (usize, usize, usize) {
    let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0);
    // j2len[j] = length of the match ending at a[i-1], b[j]; kept as sorted (j, len) pairs
    // of the previous row.
    let mut j2len: HashMap<usize, usize> = HashMap::new();
    let mut newj2len: HashMap<usize, usize> = HashMap::new();
    for (i, c) in a.iter().enumerate().take(ahi).skip(alo) {
        newj2len.clear();
        if let Some(js) = b2j.get(c) {
            for &j in js {
                if j < blo {
                    continue;
                }
                if j >= bhi {
                    break;
                }
                let k = j
                    .checked_sub(1)
                    .and_then(|p| j2len.get(&p))
                    .copied()
                    .unwrap_or(0)
                    + 1;
                newj2len.insert(j, k);
                if k > bestsize {
                    besti = i + 1 - k;
                    bestj = j + 1 - k;
                    bestsize = k;
                }
            }
        }
        std::mem::swap(&mut j2len, &mut newj2len);
    }
    while besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1] {
        besti -= 1;
        bestj -= 1;
        bestsize += 1;
    }
    while besti + bestsize < ahi
        && bestj + bestsize < bhi
        && a[besti + bestsize] == b[bestj + bestsize]
    {
        bestsize += 1;
    }
    (besti, bestj, bestsize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_ratios() {
        // "abcd" vs "bcde": one block "bcd" → 2·3/8 = 0.75.
        assert_eq!(sequence_matcher_ratio("abcd", "bcde"), 0.75);
        assert_eq!(fuzz_ratio("abcd", "bcde"), 75);
        // difflib is not an LCS: "ab" vs "ba" matches one character → 0.5.
        assert_eq!(sequence_matcher_ratio("ab", "ba"), 0.5);
        assert_eq!(fuzz_ratio("", ""), 100);
        assert_eq!(fuzz_ratio("x", ""), 0);
        assert_eq!(sequence_matcher_ratio("", ""), 1.0);
        // 2·1/8 = 0.25 → 25; 2·1/3 → 66.67 → 67; ties go to even: 2·1/16 = 12.5 → 12.
        assert_eq!(fuzz_ratio("a", "ab"), 67);
        assert_eq!(fuzz_ratio("a", "abcdefghijklmno"), 12);
        // Code points, not bytes.
        assert_eq!(fuzz_ratio("é", "é!"), 67);
    }

    #[test]
    fn autojunk_drops_popular_characters_of_long_b() {
        // b of 200 spaces-and-x: ' ' occurs more than 3 times, so it is popular and only
        // matches by extension next to a non-popular match.
        let b = format!("x{}", " ".repeat(199));
        let a = " ".repeat(10);
        assert_eq!(sequence_matcher_ratio(&a, &b), 0.0);
        let a = format!("x{}", " ".repeat(9));
        assert_eq!(sequence_matcher_ratio(&a, &b), 2.0 * 10.0 / 210.0);
    }
}
