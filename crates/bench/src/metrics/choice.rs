//! LongBench v2 answer extraction (THUDM/LongBench `pred.py`, `extract_answer`): drop every
//! `*`, then the first "The correct answer is (X)", else the first "The correct answer is X",
//! with X one of A–D.

/// The letter `extract_answer` returns, if any.
pub fn extract_answer(response: &str) -> Option<char> {
    let response = response.replace('*', "");
    const CUE: &str = "The correct answer is ";
    let letter = |c: Option<char>| c.filter(|c| ('A'..='D').contains(c));
    // First pattern: "(X)" right after the cue, anywhere in the text.
    for (i, _) in response.match_indices(CUE) {
        let rest = &response[i + CUE.len()..];
        let mut chars = rest.chars();
        if chars.next() == Some('(') {
            if let Some(c) = letter(chars.next()) {
                if chars.next() == Some(')') {
                    return Some(c);
                }
            }
        }
    }
    for (i, _) in response.match_indices(CUE) {
        if let Some(c) = letter(response[i + CUE.len()..].chars().next()) {
            return Some(c);
        }
    }
    None
}

/// `pred == answer` of upstream's `judge`: 1 when the extracted letter equals the answer
/// string, else 0; a response without a parsable letter scores 0.
pub fn choice_letter(response: &str, answer: &str) -> f64 {
    match extract_answer(response) {
        Some(c) if answer == c.to_string() => 1.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked() {
        assert_eq!(extract_answer("The correct answer is (B)."), Some('B'));
        assert_eq!(extract_answer("**The correct answer is (C)**"), Some('C'));
        assert_eq!(extract_answer("The correct answer is D"), Some('D'));
        // The parenthesised form wins even when it comes later.
        assert_eq!(
            extract_answer("The correct answer is A? No: The correct answer is (B)"),
            Some('B')
        );
        assert_eq!(extract_answer("The correct answer is (E)"), None);
        assert_eq!(extract_answer("the correct answer is (A)"), None);
        assert_eq!(extract_answer("The correct answer is  (A)"), None);
        assert_eq!(extract_answer("The correct answer is *(A)*"), Some('A'));
        assert_eq!(choice_letter("The correct answer is (A)", "A"), 1.0);
        assert_eq!(choice_letter("The correct answer is (A)", "B"), 0.0);
        assert_eq!(choice_letter("", "A"), 0.0);
    }
}
