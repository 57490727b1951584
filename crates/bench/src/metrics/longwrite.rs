//! LongBench-Write's length score S_l (THUDM/LongWriter `evaluation/eval_length.py`), with
//! the output length counted as its `pred.py` does (`count_words`).

/// `count_words`: CJK ideographs U+4E00..U+9FFF plus ASCII-letter words `\b[a-zA-Z]+\b`.
///
/// Python's `\b` is a Unicode word boundary, so a run of ASCII letters only counts when the
/// characters around it are not word characters: "café", "abc123", "snake_case" and "中文abc"
/// contribute no English word. Digits are never counted.
pub fn count_words(text: &str) -> usize {
    let mut count = 0;
    let mut prev: Option<char> = None;
    let mut run_ok = false; // inside an ASCII-letter run that started at a boundary
    let mut in_run = false;
    for c in text.chars() {
        if ('\u{4e00}'..='\u{9fff}').contains(&c) {
            count += 1;
        }
        if c.is_ascii_alphabetic() {
            if !in_run {
                in_run = true;
                run_ok = !prev.is_some_and(super::py::is_word);
            }
        } else if in_run {
            in_run = false;
            if run_ok && !super::py::is_word(c) {
                count += 1;
            }
        }
        prev = Some(c);
    }
    if in_run && run_ok {
        count += 1;
    }
    count
}

/// S_l / 100 for required length `x` and produced length `y`: over-length
/// `max(0, 1 − (y/x − 1)/3)`, otherwise `max(0, 1 − (x/y − 1)/2)`. `y = 0` scores 0 (the
/// limit; upstream divides by zero). `None` when `x` is not positive.
pub fn length_score(required: f64, produced: f64) -> Option<f64> {
    if required.is_nan() || required <= 0.0 {
        return None;
    }
    let (x, y) = (required, produced);
    Some(if y > x {
        f64::max(0.0, 1.0 - (y / x - 1.0) / 3.0)
    } else if y <= 0.0 {
        0.0
    } else {
        f64::max(0.0, 1.0 - (x / y - 1.0) / 2.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_words_hand_checked() {
        assert_eq!(count_words("Hello, world! 123"), 2);
        assert_eq!(count_words("café abc123 snake_case ok"), 1);
        assert_eq!(count_words("中文abc 你好 hi"), 5);
        assert_eq!(count_words("don't"), 2);
        assert_eq!(count_words(""), 0);
        assert_eq!(count_words("（中文）。"), 2);
    }

    #[test]
    fn length_score_hand_checked() {
        assert_eq!(length_score(100.0, 100.0), Some(1.0));
        assert_eq!(length_score(100.0, 400.0), Some(0.0));
        assert_eq!(length_score(100.0, 250.0), Some(0.5));
        assert_eq!(length_score(300.0, 100.0), Some(0.0));
        assert_eq!(length_score(200.0, 100.0), Some(0.5));
        assert_eq!(length_score(100.0, 0.0), Some(0.0));
        assert_eq!(length_score(0.0, 10.0), None);
    }
}
