//! Chinese word segmentation for the Chinese LongBench metrics: `jieba.cut(text,
//! cut_all=False)` (precise mode, HMM on, default dictionary), ported by the `jieba-rs` crate.
//! The dictionary is loaded once per process, on first use.

use std::sync::OnceLock;

use jieba_rs::Jieba;

fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// The tokens of `jieba.cut(text, cut_all=False)`, whitespace and punctuation tokens
/// included, in order; they concatenate back to `text`.
pub fn jieba_cut(text: &str) -> Vec<&str> {
    jieba()
        .cut(text, true)
        .into_iter()
        .map(|t| t.word)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_is_precise_mode_and_lossless() {
        let text = "我来到北京清华大学, hello world 3.5%";
        let tokens = jieba_cut(text);
        assert_eq!(tokens.concat(), text);
        assert!(tokens.contains(&"清华大学"), "{tokens:?}");
        assert_eq!(jieba_cut(""), Vec::<&str>::new());
    }
}
