//! ROUGE-L F of the `rouge` PyPI package 1.0.1 (pltrdy), as LongBench's `rouge_score` calls
//! it: `Rouge().get_scores([hyp], [ref], avg=True)["rouge-l"]["f"]`, with any exception
//! turned into a score of 0.
//!
//! The package's quirks are reproduced:
//! - texts are split on every `.` into non-empty pieces, whitespace inside each piece is
//!   collapsed (a whitespace-only piece becomes the empty sentence, whose one word is `""`);
//!   words are the pieces split on single spaces;
//! - with the default `exclusive=True`, word *sets* are used: `m`/`n` are the numbers of
//!   distinct reference/hypothesis words, and the LCS hits are a set union over all
//!   (reference sentence, hypothesis sentence) pairs, each pair contributing the one LCS
//!   that the package's backtracking picks;
//! - `F = 2·(P·R/(P + R + 1e-8))`;
//! - no hypothesis or reference sentence → ValueError → 0;
//! - the LCS backtracking is recursive in Python, one frame per step, so a pair whose path
//!   needs more frames than the interpreter's recursion limit allows raises RecursionError
//!   → 0. [`LONGBENCH_RECON_FRAMES`] is that frame budget, measured under CPython 3.11 with
//!   the default limit of 1000 and the call depth of LongBench's `eval.py`;
//! - a pair whose DP table would have more than [`MAX_TABLE_CELLS`] cells is treated as
//!   failing too (Python keeps the table in a dict and runs out of memory long before).

use std::collections::{HashMap, HashSet};

use super::py;

/// The deepest `_recon` recursion (number of nested frames, counting the call that reaches
/// `i == 0 or j == 0`) that succeeds when LongBench's `eval.py` calls `rouge_score` from its
/// `scorer`. `rouge_zh_score` calls `rouge_score` one frame deeper, so it gets one less.
pub const LONGBENCH_RECON_FRAMES: usize = 990;

/// Largest LCS table (cells) computed; larger pairs count as failures (see the module doc).
pub const MAX_TABLE_CELLS: usize = 1 << 27;

/// Why the package would raise instead of scoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RougeFailure {
    /// No sentence on one side (`ValueError`).
    Empty,
    /// The backtracking recursion is too deep (`RecursionError`).
    Recursion,
    /// The table is too large (`MemoryError` in Python).
    TooLarge,
}

/// The package's sentence split: pieces between `.`, non-empty, whitespace collapsed.
pub fn sentences(text: &str) -> Vec<String> {
    text.split('.')
        .filter(|s| !s.is_empty())
        .map(py::collapse_whitespace)
        .collect()
}

/// ROUGE-L F of `hypothesis` against `reference` as the package computes it, given the
/// frame budget of the backtracking recursion.
pub fn rouge_l_f(hypothesis: &str, reference: &str, frames: usize) -> Result<f64, RougeFailure> {
    let hyp = sentences(hypothesis);
    let reference = sentences(reference);
    if hyp.is_empty() || reference.is_empty() {
        return Err(RougeFailure::Empty);
    }
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut hyp_ids: Vec<Vec<u32>> = Vec::with_capacity(hyp.len());
    for s in &hyp {
        let v = s
            .split(' ')
            .map(|w| {
                let next = ids.len() as u32;
                *ids.entry(w).or_insert(next)
            })
            .collect();
        hyp_ids.push(v);
    }
    let n_distinct_hyp = ids.len();
    let mut ref_ids: Vec<Vec<u32>> = Vec::with_capacity(reference.len());
    let mut ref_set: HashSet<u32> = HashSet::new();
    for s in &reference {
        let v: Vec<u32> = s
            .split(' ')
            .map(|w| {
                let next = ids.len() as u32;
                *ids.entry(w).or_insert(next)
            })
            .collect();
        ref_set.extend(v.iter().copied());
        ref_ids.push(v);
    }
    let m = ref_set.len();
    let n = n_distinct_hyp;
    let mut union: HashSet<u32> = HashSet::new();
    for r in &ref_ids {
        for h in &hyp_ids {
            recon_lcs(r, h, frames, &mut union)?;
        }
    }
    let llcs = union.len() as f64;
    let r_lcs = llcs / m as f64;
    let p_lcs = llcs / n as f64;
    Ok(2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8)))
}

/// The package's `_recon_lcs(x, y)`: one LCS of `x` and `y` chosen by its backtracking
/// (diagonal on a match, else up when `table[i-1][j] > table[i][j-1]`, else left); its
/// tokens (taken from `x`) are added to `union`.
fn recon_lcs(
    x: &[u32],
    y: &[u32],
    frames: usize,
    union: &mut HashSet<u32>,
) -> Result<(), RougeFailure> {
    let (n, m) = (x.len(), y.len());
    // Table entries are u16; LCS lengths stay below the frame budget.
    let frames = frames.min(usize::from(u16::MAX));
    // Every path takes at least min(n, m) steps, one frame each plus the final call.
    if n.min(m) + 1 > frames {
        return Err(RougeFailure::Recursion);
    }
    let width = m + 1;
    let cells = (n + 1).checked_mul(width).ok_or(RougeFailure::TooLarge)?;
    if cells > MAX_TABLE_CELLS {
        return Err(RougeFailure::TooLarge);
    }
    // LCS lengths are at most min(n, m) < frames, which fits in u16.
    let mut table = vec![0u16; cells];
    for i in 1..=n {
        for j in 1..=m {
            table[i * width + j] = if x[i - 1] == y[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let (mut i, mut j) = (n, m);
    let mut calls = 1;
    let mut found = Vec::new();
    while i != 0 && j != 0 {
        if x[i - 1] == y[j - 1] {
            found.push(x[i - 1]);
            i -= 1;
            j -= 1;
        } else if table[(i - 1) * width + j] > table[i * width + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
        calls += 1;
        if calls > frames {
            return Err(RougeFailure::Recursion);
        }
    }
    union.extend(found);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: usize = LONGBENCH_RECON_FRAMES;

    #[test]
    fn sentences_follow_the_package() {
        assert_eq!(sentences("a b. c  d.."), ["a b", "c d"]);
        assert_eq!(sentences("x. . y"), ["x", "", "y"]);
        assert!(sentences("...").is_empty());
        assert!(sentences("").is_empty());
    }

    #[test]
    fn hand_checked_scores() {
        // Identical single sentence: P = R = 1, F = 2·(1/(2 + 1e-8)).
        let f = rouge_l_f("the cat sat", "the cat sat", F).unwrap();
        assert_eq!(f, 2.0 * (1.0 / (2.0 + 1e-8)));
        // Sets: "the the cat" has n = 2 distinct words; reference "the cat" m = 2; the LCS
        // "the cat" covers both → F as above.
        let f = rouge_l_f("the the cat", "the cat", F).unwrap();
        assert_eq!(f, 2.0 * (1.0 / (2.0 + 1e-8)));
        // hyp "a b c d" (n = 4), ref "a x c" (m = 3), LCS {a, c}: P = 1/2, R = 2/3.
        let (p, r) = (0.5f64, 2.0f64 / 3.0);
        let want = 2.0 * ((p * r) / (p + r + 1e-8));
        assert_eq!(rouge_l_f("a b c d", "a x c", F).unwrap(), want);
        // Case matters, there is no stemming.
        assert_eq!(rouge_l_f("Cat", "cat", F).unwrap(), 0.0);
        assert_eq!(rouge_l_f("", "cat", F), Err(RougeFailure::Empty));
        assert_eq!(rouge_l_f("cat", " . ", F).unwrap(), 0.0);
    }

    #[test]
    fn deep_recursion_fails_like_python() {
        let long: Vec<String> = (0..F).map(|i| format!("w{i}")).collect();
        let text = long.join(" ");
        assert_eq!(
            rouge_l_f(&text, &text, F),
            Err(RougeFailure::Recursion),
            "F words on both sides need F + 1 frames"
        );
        let shorter = long[..F - 1].join(" ");
        assert!(rouge_l_f(&shorter, &shorter, F).is_ok());
    }
}
