//! Scoring functions shared by the benchmarks. Each returns a score in `0.0..=1.0`.

/// The first run of ASCII digits in `text` (the regex `\d+` restricted to `0-9`), if any.
pub fn first_integer(text: &str) -> Option<&str> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let len = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some(&rest[..len])
}

/// Passkey retrieval's metric (LM-Infinite `passkey_retrieval_accuracy`): 1.0 when the first
/// integer in `output` equals the integer in `answer`, else 0.0 (also when `output` has no
/// digits). Integers are compared by value, as Python's `int(...)` does, so leading zeros do
/// not matter; digit strings of any length are compared without overflow.
pub fn first_integer_eq(output: &str, answer: &str) -> f64 {
    let value = |digits: &str| {
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        }
    };
    match (first_integer(output), first_integer(answer)) {
        (Some(got), Some(want)) if value(got) == value(want) => 1.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_integer_finds_the_first_digit_run() {
        assert_eq!(first_integer("68420."), Some("68420"));
        assert_eq!(first_integer(" 6842"), Some("6842"));
        assert_eq!(first_integer("The pass key is 68420"), Some("68420"));
        assert_eq!(first_integer("a1b22"), Some("1"));
        assert_eq!(first_integer("no digits"), None);
        assert_eq!(first_integer(""), None);
        // Non-ASCII digits (Arabic-Indic) are not integers here.
        assert_eq!(first_integer("٣٤ 5"), Some("5"));
    }

    #[test]
    fn first_integer_eq_hand_checked_cases() {
        let cases = [
            ("68420.", 1.0),
            (" 68420", 1.0),
            ("68420. Remember it. 68420", 1.0),
            ("The pass key is 68420", 1.0),
            ("068420", 1.0),
            (" 6842", 0.0),
            ("684201", 0.0),
            ("6842 0", 0.0),
            ("The pass key is 1. 68420", 0.0),
            ("no digits", 0.0),
            ("", 0.0),
            ("-68420", 1.0),
            ("68,420", 0.0),
        ];
        for (output, want) in cases {
            assert_eq!(first_integer_eq(output, "68420"), want, "output {output:?}");
        }
        // Longer than u64 is fine.
        assert_eq!(
            first_integer_eq(
                "123456789012345678901234567890",
                "123456789012345678901234567890"
            ),
            1.0
        );
        // An answer without digits can never be matched.
        assert_eq!(first_integer_eq("5", "none"), 0.0);
        assert_eq!(first_integer_eq("0", "000"), 1.0);
    }
}
