//! Unit tests on small hand-built vocabularies (no files needed).

use super::unicode::byte_to_char_table;
use super::*;

/// Byte-level BPE vocabulary: the 256 byte characters, a few merges, chat specials and one
/// user-defined token.
fn bpe_spec() -> VocabSpec {
    let table = byte_to_char_table();
    let mut tokens: Vec<String> = table.iter().map(|c| c.to_string()).collect();
    let mut types = vec![token_type::NORMAL; 256];
    let merges = [
        "h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "Ġ Ġ",
    ];
    for m in merges {
        tokens.push(m.replace(' ', ""));
        types.push(token_type::NORMAL);
    }
    for (t, ty) in [
        ("<|endoftext|>", token_type::CONTROL),
        ("<|im_start|>", token_type::CONTROL),
        ("<|im_end|>", token_type::CONTROL),
        ("<tag>", token_type::USER_DEFINED),
    ] {
        tokens.push(t.to_string());
        types.push(ty);
    }
    VocabSpec {
        model: "gpt2".into(),
        pre: Some("smollm".into()),
        tokens,
        token_types: Some(types),
        merges: Some(merges.iter().map(|s| s.to_string()).collect()),
        bos_id: Some(266),
        eos_id: Some(266),
        ..Default::default()
    }
}

fn bpe() -> Tokenizer {
    Tokenizer::from_spec(bpe_spec()).unwrap()
}

#[test]
fn bpe_merges_words() {
    let t = bpe();
    let hello = t.token_id("hello").unwrap();
    let world = t.token_id("Ġworld").unwrap();
    assert_eq!(t.encode("hello world", false, false), [hello, world]);
    assert_eq!(t.decode(&[hello, world], false), "hello world");
    assert_eq!(t.kind(), "gpt2");
    assert_eq!(t.pre(), "smollm");
}

#[test]
fn bpe_specials_only_when_parsed() {
    let t = bpe();
    let start = t.token_id("<|im_start|>").unwrap();
    let end = t.token_id("<|im_end|>").unwrap();
    let ids = t.encode("<|im_start|>hello<|im_end|>", false, true);
    assert_eq!(ids, [start, t.token_id("hello").unwrap(), end]);
    let plain = t.encode("<|im_start|>hello<|im_end|>", false, false);
    assert!(!plain.contains(&start) && !plain.contains(&end));
    assert_eq!(t.decode(&plain, false), "<|im_start|>hello<|im_end|>");
    // control tokens render only on request
    assert_eq!(t.decode(&ids, false), "hello");
    assert_eq!(t.decode(&ids, true), "<|im_start|>hello<|im_end|>");
    assert!(t.token_bytes(end).is_empty());
    assert_eq!(t.token_piece(end, true), b"<|im_end|>");
}

#[test]
fn bpe_user_defined_always_split() {
    let t = bpe();
    let tag = t.token_id("<tag>").unwrap();
    let ids = t.encode("hello<tag>hello", false, false);
    assert_eq!(ids[1], tag);
    assert_eq!(ids.len(), 3);
    assert_eq!(t.decode(&ids, false), "hello<tag>hello");
}

#[test]
fn bpe_eog_and_specials() {
    let t = bpe();
    let eot = t.token_id("<|endoftext|>").unwrap();
    assert!(t.is_eog(t.token_id("<|im_end|>").unwrap()));
    assert!(t.is_eog(eot));
    assert!(!t.is_eog(t.token_id("hello").unwrap()));
    assert!(!t.is_eog(u32::MAX));
    assert_eq!(t.bos(), Some(eot));
    assert!(!t.add_bos()); // smollm default
    assert_eq!(
        t.encode("hello", true, false),
        t.encode("hello", false, false)
    );
}

#[test]
fn bpe_bytes_and_unicode_roundtrip() {
    let t = bpe();
    for s in [
        "",
        " ",
        "  x",
        "héllo wörld 🦙",
        "日本語",
        "a\n\n\tb",
        "12345678",
        "\u{0}\u{7f}",
    ] {
        let ids = t.encode(s, false, false);
        assert_eq!(t.decode(&ids, false), s, "{s:?} -> {ids:?}");
    }
}

#[test]
fn decode_never_panics_on_bad_ids() {
    let t = bpe();
    let h = t.token_id("hello").unwrap();
    assert_eq!(t.decode(&[u32::MAX, h, 1_000_000], true), "hello");
    assert!(t.token_bytes(u32::MAX).is_empty());
    assert_eq!(t.token_text(u32::MAX), None);
}

#[test]
fn stream_decoder_buffers_partial_utf8() {
    let t = bpe();
    let ids = t.encode("a🦙b€", false, false);
    let mut d = StreamDecoder::new(&t);
    let mut outs = Vec::new();
    for &id in &ids {
        outs.push(d.push(id));
    }
    outs.push(d.finish());
    assert!(outs.iter().all(|s| !s.contains('\u{FFFD}')), "{outs:?}");
    assert_eq!(outs.concat(), "a🦙b€");
    // a lone continuation byte is invalid at once; a cut-off character is flushed by finish
    let lead = t.token_id(&byte_to_char_table()[0xF0].to_string()).unwrap();
    let mut d = StreamDecoder::new(&t);
    assert_eq!(d.push(lead), "");
    assert_eq!(d.finish(), "\u{FFFD}");
}

#[test]
fn unsupported_inputs_are_errors() {
    let mut spec = bpe_spec();
    spec.model = "bert".into();
    assert!(matches!(
        Tokenizer::from_spec(spec),
        Err(TokenizerError::UnsupportedModel(_))
    ));
    let mut spec = bpe_spec();
    spec.pre = Some("no-such-pre".into());
    assert!(matches!(
        Tokenizer::from_spec(spec),
        Err(TokenizerError::UnsupportedPre(..))
    ));
    let mut spec = bpe_spec();
    spec.merges = None;
    assert!(matches!(
        Tokenizer::from_spec(spec),
        Err(TokenizerError::MissingMerges)
    ));
    let mut spec = bpe_spec();
    spec.token_types = Some(vec![1; 3]);
    assert!(matches!(
        Tokenizer::from_spec(spec),
        Err(TokenizerError::LengthMismatch { .. })
    ));
    assert!(matches!(
        Tokenizer::from_spec(VocabSpec {
            model: "gpt2".into(),
            ..Default::default()
        }),
        Err(TokenizerError::EmptyVocab)
    ));
}

/// SentencePiece vocabulary: specials, byte tokens and a few scored pieces.
fn spm_spec() -> VocabSpec {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![
        token_type::UNKNOWN,
        token_type::CONTROL,
        token_type::CONTROL,
    ];
    let mut scores = vec![0.0f32; 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(token_type::BYTE);
        scores.push(0.0);
    }
    for (t, s) in [
        ("▁", -1.0),
        ("h", -2.0),
        ("e", -2.0),
        ("l", -2.0),
        ("o", -2.0),
        ("▁h", -3.0),
        ("ll", -3.5),
        ("▁he", -4.0),
        ("▁hell", -5.0),
        ("▁hello", -6.0),
        ("lo", -7.0),
        ("<start_of_turn>", 0.0),
    ] {
        tokens.push(t.into());
        types.push(if t.starts_with('<') {
            token_type::CONTROL
        } else {
            token_type::NORMAL
        });
        scores.push(s);
    }
    VocabSpec {
        model: "llama".into(),
        tokens,
        scores: Some(scores),
        token_types: Some(types),
        add_bos: Some(true),
        ..Default::default()
    }
}

#[test]
fn spm_merges_by_score_with_space_prefix() {
    let t = Tokenizer::from_spec(spm_spec()).unwrap();
    let hello = t.token_id("▁hello").unwrap();
    assert_eq!(t.encode("hello", false, false), [hello]);
    assert_eq!(t.encode("hello", true, false), [1, hello]);
    assert_eq!(t.decode(&[1, hello], false), " hello"); // llama.cpp keeps it after BOS
    assert_eq!(t.decode(&[hello], false), "hello");
    assert_eq!(t.kind(), "llama");
}

#[test]
fn spm_byte_fallback_and_specials() {
    let t = Tokenizer::from_spec(spm_spec()).unwrap();
    let ids = t.encode("h€", false, false);
    // "▁h" then the three UTF-8 bytes of '€'
    assert_eq!(ids.len(), 4);
    assert_eq!(t.decode(&ids, false), "h€");
    let sot = t.token_id("<start_of_turn>").unwrap();
    let ids = t.encode("<start_of_turn>hello", false, true);
    // text after a special token gets the space prefix again
    assert_eq!(ids, [sot, t.token_id("▁hello").unwrap()]);
    assert!(t.is_eog(2));
}

#[test]
fn tokenizer_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Tokenizer>();
}
