//! RULER's scoring (NVIDIA/RULER `scripts/eval/evaluate.py` and
//! `scripts/eval/synthetic/constants.py`): the prediction is post-processed, then each
//! reference is looked for case-insensitively as a substring.

/// `postprocess_pred`: strip, replace every control character U+0000..U+001F by a newline,
/// strip again.
pub fn postprocess_pred(prediction: &str) -> String {
    let stripped = super::py::strip(prediction);
    let replaced: String = stripped
        .chars()
        .map(|c| if c <= '\u{1f}' { '\n' } else { c })
        .collect();
    super::py::strip(&replaced).to_string()
}

fn hits<'a>(prediction: &str, references: &'a [String]) -> impl Iterator<Item = bool> + 'a {
    let pred = postprocess_pred(prediction).to_lowercase();
    references
        .iter()
        .map(move |r| pred.contains(&r.to_lowercase()))
}

/// One sample of `string_match_all`: the share of references contained in the
/// post-processed prediction (case-insensitive). `None` without references (upstream
/// divides by zero).
pub fn string_match_all(prediction: &str, references: &[String]) -> Option<f64> {
    if references.is_empty() {
        return None;
    }
    let found = hits(prediction, references).filter(|&h| h).count();
    Some(found as f64 / references.len() as f64)
}

/// One sample of `string_match_part`: 1 when any reference is contained. `None` without
/// references (upstream's `max` of an empty list raises).
pub fn string_match_part(prediction: &str, references: &[String]) -> Option<f64> {
    if references.is_empty() {
        return None;
    }
    Some(if hits(prediction, references).any(|h| h) {
        1.0
    } else {
        0.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hand_checked() {
        assert_eq!(postprocess_pred("  a\tb\u{0}c \n"), "a\nb\nc");
        let r = refs(&["1234567", "7654321", "ABC"]);
        assert_eq!(string_match_all("1234567 and abc", &r), Some(2.0 / 3.0));
        assert_eq!(string_match_part("1234567 and abc", &r), Some(1.0));
        assert_eq!(string_match_part("", &r), Some(0.0));
        // A reference split by a tab in the output is not found: the tab becomes "\n".
        assert_eq!(string_match_all("a\tb", &refs(&["a b"])), Some(0.0));
        assert_eq!(string_match_all("x", &[]), None);
        // The synthetic generators' checks (formerly their own copy of these scorers).
        let refs = refs(&["Apple", "pear"]);
        assert_eq!(string_match_all("apple and PEAR", &refs), Some(1.0));
        assert_eq!(string_match_all("apple\u{1}", &refs), Some(0.5));
        assert_eq!(string_match_part("a pear", &refs), Some(1.0));
        assert_eq!(string_match_part("none", &refs), Some(0.0));
    }
}
