//! Needle Threading's scoring (jonathan-roberts1/needle-threading): the reply, read as a
//! Python string or list literal, starts with the answer.

use crate::sample::Sample;

/// A string as Python's `repr` renders one without quotes inside: `'s'`.
pub fn python_str(s: &str) -> String {
    format!("'{s}'")
}

/// A list of strings as Python's `str` renders it: `['a', 'b']`.
pub fn python_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| python_str(s))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Parses a reply as a Python literal (quoted string or list of quoted strings) and renders
/// it as Python's `str` would; `None` if it is not one.
pub fn python_literal(text: &str) -> Option<String> {
    fn string(s: &str) -> Option<(String, &str)> {
        let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let end = s[1..].find(q)? + 1;
        Some((s[1..end].to_string(), &s[end + 1..]))
    }
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('[') {
        let mut items = Vec::new();
        let mut rest = rest.trim_start();
        loop {
            if let Some(r) = rest.strip_prefix(']') {
                return r.trim().is_empty().then(|| python_list(&items));
            }
            let (item, r) = string(rest)?;
            items.push(item);
            rest = r.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
    }
    let (s, rest) = string(t)?;
    rest.trim().is_empty().then_some(s)
}

/// Upstream's check: the first `len(answer)` characters of the parsed reply equal the answer.
pub fn prefix_match(prediction: &str, answer: &str) -> f64 {
    let parsed = python_literal(prediction).unwrap_or_else(|| prediction.trim().to_string());
    let head: String = parsed.chars().take(answer.chars().count()).collect();
    if head == answer {
        1.0
    } else {
        0.0
    }
}

/// [`prefix_match`] against the sample's first answer.
pub fn score(prediction: &str, sample: &Sample) -> f64 {
    sample
        .answers
        .first()
        .map_or(0.0, |a| prefix_match(prediction, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_parsing_and_prefix_match() {
        assert_eq!(python_literal("'abc'").as_deref(), Some("abc"));
        assert_eq!(python_literal(" \"abc\" ").as_deref(), Some("abc"));
        assert_eq!(
            python_literal("[\"a\", 'b']").as_deref(),
            Some("['a', 'b']")
        );
        assert_eq!(python_literal("abc"), None);
        assert_eq!(prefix_match("\"abc\"", "abc"), 1.0);
        assert_eq!(prefix_match("abcdef", "abc"), 1.0);
        assert_eq!(prefix_match("'ab'", "abc"), 0.0);
        assert_eq!(prefix_match("[\"a\", \"b\"]", "['a', 'b']"), 1.0);
    }
}
