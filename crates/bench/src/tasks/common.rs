//! Shared machinery of the synthetic generators: length fitting, seeded choices and data
//! files (the configuration and entry type are in `task`, the scorers in `metrics`).
//!
//! Every synthetic generator takes a [`GenConfig`] and a caller-supplied
//! [`TokenCounter`] and returns ready [`Sample`]s whose prompts are the largest that fit the
//! target length (see each task for what is counted). Randomness comes only from
//! [`SplitMix64`] seeded with `(seed, task, length, depth, sample)`, so a sample can be
//! regenerated on its own and is identical on every platform.

use std::path::{Path, PathBuf};

pub use crate::data::DATA_ENV;
pub use crate::error::invalid_config;
use crate::error::BenchError;
use crate::rng::SplitMix64;
pub use crate::task::{GenConfig, TokenCounter, DEFAULT_DEPTHS};

/// `root/relative`, or a `NotFound` error naming the path and [`DATA_ENV`].
pub fn data_path(root: &Path, relative: &str) -> Result<PathBuf, BenchError> {
    let path = root.join(relative);
    if path.exists() {
        Ok(path)
    } else {
        Err(BenchError::Io {
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "benchmark data not found; point {DATA_ENV} (or the data root) at the folder \
                     that holds '{relative}'"
                ),
            ),
            path,
        })
    }
}

/// Reads a data file as text (see [`data_path`]).
pub fn read_data(root: &Path, relative: &str) -> Result<String, BenchError> {
    let path = data_path(root, relative)?;
    std::fs::read_to_string(&path).map_err(|source| BenchError::Io { path, source })
}

/// The Paul Graham essays of the NIAH harness (`paul-graham-essays/niah/*.txt`), one string
/// per essay, sorted by file name.
pub fn niah_essay_records(root: &Path) -> Result<Vec<String>, BenchError> {
    let dir = data_path(root, "paul-graham-essays/niah")?;
    let io = |source| BenchError::Io {
        path: dir.clone(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no essays (*.txt) in this folder; check {DATA_ENV}"),
        )));
    }
    files
        .into_iter()
        .map(|file| {
            std::fs::read_to_string(&file).map_err(|source| BenchError::Io { path: file, source })
        })
        .collect()
}

/// The NIAH essays concatenated without separators, as upstream appends them.
pub fn niah_essays(root: &Path) -> Result<String, BenchError> {
    Ok(niah_essay_records(root)?.concat())
}

/// The largest `n >= min` with `cost(n) + overhead <= length`, assuming `cost` never
/// decreases with `n`; searched by doubling from `min`, then bisection, and never above
/// `ceiling`. Errors with [`BenchError::LengthTooShort`] when `min` does not fit.
pub fn fit_largest(
    min: usize,
    ceiling: usize,
    length: usize,
    overhead: usize,
    cost: impl Fn(usize) -> usize,
) -> Result<usize, BenchError> {
    let fits = |n: usize| cost(n).saturating_add(overhead) <= length;
    let smallest = cost(min).saturating_add(overhead);
    if smallest > length {
        return Err(BenchError::LengthTooShort {
            length,
            minimum: smallest,
        });
    }
    let ceiling = ceiling.max(min);
    let mut low = min;
    let mut step = 1;
    let mut high = loop {
        let candidate = low.saturating_add(step);
        if candidate > ceiling {
            break ceiling + 1;
        }
        if fits(candidate) {
            low = candidate;
            step = step.saturating_mul(2);
        } else {
            break candidate;
        }
    };
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if fits(middle) {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

/// A stable 64-bit id of a task name (FNV-1a), mixed into every sample's seed.
pub fn fnv1a64(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The generator of one sample: `SplitMix64::from_parts(&[seed, fnv1a64(task), length,
/// depth, index])`; `depth` is 101 for tasks or samples without one.
pub fn sample_rng(task: &str, cfg: &GenConfig, depth: Option<u32>, index: usize) -> SplitMix64 {
    SplitMix64::from_parts(&[
        cfg.seed,
        fnv1a64(task),
        cfg.length as u64,
        u64::from(depth.unwrap_or(101)),
        index as u64,
    ])
}

/// Uniform index in `0..n` (`n > 0`).
pub fn index(rng: &mut SplitMix64, n: usize) -> usize {
    rng.below(n as u64) as usize
}

/// Fisher–Yates shuffle, drawing from the back.
pub fn shuffle<T>(rng: &mut SplitMix64, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = index(rng, i + 1);
        items.swap(i, j);
    }
}

/// `k` distinct indices of `0..n` in draw order (`k <= n`), by a partial Fisher–Yates
/// shuffle over a sparse map so that large `n` costs nothing.
pub fn sample_distinct(rng: &mut SplitMix64, n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n);
    let mut swapped = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        let j = i + index(rng, n - i);
        let at_j = *swapped.get(&j).unwrap_or(&j);
        let at_i = *swapped.get(&i).unwrap_or(&i);
        swapped.insert(j, at_i);
        out.push(at_j);
    }
    out
}

/// A version-4 UUID from 128 random bits, as Python's `uuid.UUID(int=bits, version=4)`
/// renders it (lowercase, 8-4-4-4-12).
pub fn uuid4(rng: &mut SplitMix64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
    bytes[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `round(count × depth / 100)`, half up, clamped to `count`.
pub fn depth_index(count: usize, depth: u32) -> usize {
    ((count * depth.min(100) as usize + 50) / 100).min(count)
}

/// Splits text into sentences: a sentence ends after a word whose last character (ignoring
/// closing quotes and brackets) is `.`, `!` or `?`. A simple stand-in for NLTK's Punkt
/// (abbreviations such as "e.g." also end a sentence here). Words are whitespace-separated;
/// sentences are returned as slices of `text`, trimmed.
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = None;
    let mut word_start = None;
    let ends = |word: &str| {
        word.trim_end_matches(['"', '\'', ')', ']', '\u{201d}', '\u{2019}'])
            .ends_with(['.', '!', '?'])
    };
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some(ws) = word_start.take() {
                if ends(&text[ws..i]) {
                    sentences.push(&text[start.unwrap_or(ws)..i]);
                    start = None;
                }
            }
        } else {
            if word_start.is_none() {
                word_start = Some(i);
            }
            if start.is_none() {
                start = Some(i);
            }
        }
    }
    if let Some(s) = start {
        sentences.push(text[s..].trim_end());
    }
    sentences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_largest_finds_the_boundary() {
        for length in [10, 11, 57, 1000] {
            let n = fit_largest(1, 10_000, length, 3, |n| 2 * n + 1).unwrap();
            assert!(2 * n + 1 + 3 <= length && 2 * (n + 1) + 1 + 3 > length);
        }
        assert!(matches!(
            fit_largest(5, 100, 10, 0, |n| n * 3),
            Err(BenchError::LengthTooShort {
                length: 10,
                minimum: 15
            })
        ));
        assert_eq!(fit_largest(1, 50, 10, 0, |_| 0).unwrap(), 50);
    }

    #[test]
    fn seeded_helpers() {
        let mut rng = SplitMix64::new(3);
        let picks = sample_distinct(&mut rng, 10, 10);
        let mut sorted = picks.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        let id = uuid4(&mut rng);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]));
        assert_eq!(depth_index(24, 50), 12);
        assert_eq!(depth_index(24, 100), 24);
    }

    #[test]
    fn sentences_split_at_terminal_punctuation() {
        let s = split_sentences("One two. Three? \"Four!\" five\nsix. seven");
        assert_eq!(
            s,
            ["One two.", "Three?", "\"Four!\"", "five\nsix.", "seven"]
        );
    }
}
