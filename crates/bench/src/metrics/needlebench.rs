//! NeedleBench V2's scoring (OpenCompass `needlebench_v2` ATC/reasoning evaluators): the last
//! `\boxed{}` answer of the output, cleaned as OpenCompass does, equals the answer.

use crate::sample::Sample;

/// The content of the last `\boxed{…}` in `text` with balanced braces (OpenCompass
/// `extract_boxed_answer`); one outer brace pair around the content is removed
/// (`strip_double_curly_brace`). `None` when there is no complete box.
pub fn last_boxed(text: &str) -> Option<&str> {
    let start = text.rfind("\\boxed{")? + "\\boxed{".len();
    let mut depth = 1usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let inner = &text[start..start + i];
                    return Some(
                        inner
                            .strip_prefix('{')
                            .and_then(|s| s.strip_suffix('}'))
                            .unwrap_or(inner),
                    );
                }
            }
            _ => {}
        }
    }
    None
}

/// OpenCompass `clean_atc_answer`: unwrap `\text{…}` and `\boxed{…}`, drop `\[`/`\]` and
/// backslashes, collapse whitespace, drop quotes, turn `~` into spaces.
pub fn clean_atc_answer(text: &str) -> String {
    fn unwrap_command(text: &str, command: &str) -> String {
        // re.sub(r'\\cmd\{([^}]+)\}', r'\1', text)
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(command) {
            let after = &rest[at + command.len()..];
            match after.find('}') {
                Some(close) if close > 0 && !after[..close].contains('}') => {
                    out.push_str(&rest[..at]);
                    out.push_str(&after[..close]);
                    rest = &after[close + 1..];
                }
                _ => {
                    out.push_str(&rest[..at + command.len()]);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
    if text.is_empty() || text == "None" {
        return "None".to_string();
    }
    let text = unwrap_command(text, "\\text{");
    let text = unwrap_command(&text, "\\boxed{");
    let text = text.replace("\\[", "").replace("\\]", "").replace('\\', "");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.replace(['"', '\''], "").replace('~', " ")
}

/// NeedleBench V2 reasoning/ATC scoring: the cleaned content of the last `\boxed{}` equals
/// the answer (both trimmed) → 1.0, else 0.0 (also when there is no box).
pub fn boxed_exact(prediction: &str, answer: &str) -> f64 {
    match last_boxed(prediction) {
        Some(content) if clean_atc_answer(content).trim() == answer.trim() => 1.0,
        _ => 0.0,
    }
}

/// [`boxed_exact`] against the sample's first answer.
pub fn score_boxed_exact(prediction: &str, sample: &Sample) -> f64 {
    sample
        .answers
        .first()
        .map_or(0.0, |a| boxed_exact(prediction, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_scores() {
        assert_eq!(last_boxed("x \\boxed{A} y \\boxed{{B C}}"), Some("B C"));
        assert_eq!(last_boxed("\\boxed{open"), None);
        assert_eq!(
            boxed_exact("So it is \\boxed{\\text{Jane~Doe}}.", "Jane Doe"),
            1.0
        );
        assert_eq!(boxed_exact("So it is \\boxed{'Jane Doe'}", "Jane Doe"), 1.0);
        assert_eq!(boxed_exact("Jane Doe", "Jane Doe"), 0.0);
        assert_eq!(boxed_exact("\\boxed{John Doe}", "Jane Doe"), 0.0);
    }
}
