//! Python string semantics the ported metrics rely on (`str.isspace`, `str.split()`,
//! `str.strip()`, `re`'s `\w`, `string.punctuation`), so that the ports match upstream on
//! whitespace, Unicode and punctuation edge cases.

/// Python's `str.isspace` for one character: Rust's Unicode `White_Space` plus the four
/// ASCII separators U+001C..U+001F, which Python also treats as whitespace.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` without arguments: runs of whitespace separate, empty pieces
/// dropped.
pub fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|t| !t.is_empty())
}

/// Python's `" ".join(s.split())`.
pub fn collapse_whitespace(s: &str) -> String {
    split(s).collect::<Vec<_>>().join(" ")
}

/// Python's `str.strip()` without arguments.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// A character of Python `re`'s `\w` class for `str` patterns: alphanumeric or `_`.
///
/// Python uses `str.isalnum`; Rust's `char::is_alphanumeric` agrees except on combining
/// marks with the `Other_Alphabetic` property (e.g. Devanagari vowel signs), which Rust calls
/// alphabetic and Python does not. The ported metrics only test `\w` next to ASCII words,
/// where this difference does not arise in practice.
pub fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Python's `string.punctuation`.
pub const ASCII_PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// A character of `string.punctuation`.
pub fn is_ascii_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
}

/// Python's `float(s)` for the strings the ported metrics feed it: surrounding whitespace
/// ignored, decimal and exponent forms, `inf`/`nan`, and `_` between digits. Non-ASCII
/// digits (which Python also accepts) are not parsed here.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = strip(s);
    if t.is_empty() {
        return None;
    }
    let cleaned: String;
    let t = if t.contains('_') {
        // Python allows single underscores between digits only.
        let chars: Vec<char> = t.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            if c == '_' {
                let before = i > 0 && chars[i - 1].is_ascii_digit();
                let after = chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
                if !(before && after) {
                    return None;
                }
            }
        }
        cleaned = t.replace('_', "");
        cleaned.as_str()
    } else {
        t
    };
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if lower.len() - unsigned.len() > 1 {
        return None;
    }
    match unsigned {
        "inf" | "infinity" | "nan" => {}
        _ => {
            // Rust's grammar is Python's for finite numbers apart from the named values.
            if !unsigned
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
            {
                return None;
            }
        }
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_and_split() {
        assert!(is_space('\u{1f}') && is_space('\u{3000}') && is_space('\u{85}'));
        assert!(!is_space('\u{200b}'));
        assert_eq!(
            split(" a\u{3000}b\t\nc \u{1c}").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(collapse_whitespace("  x   y "), "x y");
        assert_eq!(strip("\u{1d} a b \n"), "a b");
        assert_eq!(ASCII_PUNCTUATION.len(), 32);
        assert!(ASCII_PUNCTUATION.chars().all(is_ascii_punctuation));
    }

    #[test]
    fn python_float() {
        assert_eq!(parse_float(" 12 "), Some(12.0));
        assert_eq!(parse_float("1_000"), Some(1000.0));
        assert_eq!(parse_float("1__0"), None);
        assert_eq!(parse_float("_1"), None);
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_float("nan").is_some_and(f64::is_nan));
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_float("12a"), None);
        assert_eq!(parse_float("--1"), None);
        assert_eq!(parse_float("0x10"), None);
    }
}
