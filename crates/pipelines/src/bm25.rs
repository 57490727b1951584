//! Okapi BM25 over a small in-memory collection (the retrieval units of one query): the
//! standard Lucene/Robertson form, idf = ln(1 + (N − df + 0.5) / (df + 0.5)), with k1 = 1.2
//! and b = 0.75 by default. Terms are lowercased alphanumeric runs; a few very common English
//! words are dropped so a question's "what is the" does not outweigh its content words.

use std::collections::HashMap;

/// Words too common to say anything about relevance.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "has",
    "have", "how", "i", "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to",
    "was", "were", "what", "when", "where", "which", "who", "why", "will", "with", "you",
];

/// The terms of `text`: lowercased runs of letters and digits, stop words dropped.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// An index over documents (term frequencies, lengths, document frequencies).
pub struct Bm25 {
    docs: Vec<HashMap<String, usize>>,
    lengths: Vec<usize>,
    df: HashMap<String, usize>,
    avg_len: f64,
    pub k1: f64,
    pub b: f64,
}

impl Bm25 {
    pub fn new<S: AsRef<str>>(docs: &[S]) -> Bm25 {
        let mut df: HashMap<String, usize> = HashMap::new();
        let mut tfs = Vec::with_capacity(docs.len());
        let mut lengths = Vec::with_capacity(docs.len());
        for d in docs {
            let t = terms(d.as_ref());
            lengths.push(t.len());
            let mut tf: HashMap<String, usize> = HashMap::new();
            for w in t {
                *tf.entry(w).or_default() += 1;
            }
            for w in tf.keys() {
                *df.entry(w.clone()).or_default() += 1;
            }
            tfs.push(tf);
        }
        let avg_len = lengths.iter().sum::<usize>() as f64 / lengths.len().max(1) as f64;
        Bm25 {
            docs: tfs,
            lengths,
            df,
            avg_len,
            k1: 1.2,
            b: 0.75,
        }
    }

    /// idf of a term.
    pub fn idf(&self, term: &str) -> f64 {
        let n = self.docs.len() as f64;
        let df = self.df.get(term).copied().unwrap_or(0) as f64;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The score of every document for `query`, in document order.
    pub fn scores(&self, query: &str) -> Vec<f64> {
        let q = terms(query);
        self.docs
            .iter()
            .zip(&self.lengths)
            .map(|(tf, &len)| {
                let norm = self.k1 * (1.0 - self.b + self.b * len as f64 / self.avg_len.max(1e-9));
                q.iter()
                    .map(|t| {
                        let f = tf.get(t).copied().unwrap_or(0) as f64;
                        self.idf(t) * f * (self.k1 + 1.0) / (f + norm)
                    })
                    .sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_computed_values() {
        // Three documents; query "apple pie".
        let docs = ["apple apple banana", "pie crust", "banana split sundae"];
        let bm = Bm25::new(&docs);
        // N = 3; df(apple) = 1, df(pie) = 1 → idf = ln(1 + 2.5/1.5) = ln(8/3).
        let idf = (8.0f64 / 3.0).ln();
        assert!((bm.idf("apple") - idf).abs() < 1e-12);
        // avgdl = (3 + 2 + 3) / 3 = 8/3.
        let avg = 8.0 / 3.0;
        let norm = |len: f64| 1.2 * (1.0 - 0.75 + 0.75 * len / avg);
        let d0 = idf * 2.0 * 2.2 / (2.0 + norm(3.0));
        let d1 = idf * 1.0 * 2.2 / (1.0 + norm(2.0));
        let s = bm.scores("What is an apple pie?");
        assert!((s[0] - d0).abs() < 1e-12, "{} vs {d0}", s[0]);
        assert!((s[1] - d1).abs() < 1e-12, "{} vs {d1}", s[1]);
        assert_eq!(s[2], 0.0);
    }

    #[test]
    fn terms_are_lowercased_content_words() {
        assert_eq!(
            terms("What is the Pass-key? 42!"),
            vec!["pass", "key", "42"]
        );
    }
}
