//! The `longctx` binary end to end: the main commands on the default model, and bad input
//! giving clear errors (never a panic).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::{Command, Output};

fn longctx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_longctx"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A failing run: exit code 1, an `error:` line containing `needle`, no panic.
fn fails_with(args: &[&str], needle: &str) {
    let o = longctx(args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{args:?} should fail cleanly; stderr: {err}"
    );
    assert!(
        err.contains("error:") && err.contains(needle),
        "{args:?}: expected {needle:?} in: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("longctx-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

fn essay() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/paul-graham-essays/niah/apple.txt")
}

#[test]
fn generate_streams_the_greedy_continuation() {
    let o = longctx(&["generate", "-n", "3", "The capital of France is"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(" Paris."), "{}", stdout(&o));
}

#[test]
fn ask_answers_from_the_document() {
    let file = essay();
    let o = longctx(&[
        "ask",
        "-n",
        "24",
        "--file",
        file.to_str().expect("utf-8 path"),
        "Which company is the essay about?",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("tokens, policy full"), "{}", stderr(&o));
    assert!(stdout(&o).contains("Apple"), "answer: {}", stdout(&o));
}

#[test]
fn bad_documents_and_prompts_are_named() {
    let bad = temp_file("bad.txt", b"hello \xff\xfe world");
    fails_with(
        &["ask", "--file", bad.to_str().expect("path"), "q?"],
        "not valid UTF-8 (first bad byte at offset 6)",
    );
    let empty = temp_file("empty.txt", b"  \n");
    fails_with(
        &["ask", "--file", empty.to_str().expect("path"), "q?"],
        "is empty",
    );
    fails_with(
        &["ask", "--file", "/nonexistent/doc.txt", "q?"],
        "reading /nonexistent/doc.txt",
    );
    fails_with(&["generate", ""], "the prompt is empty");
    // A document far past SmolLM2's 8k-token window under full attention.
    let long = temp_file("long.txt", "The grass is green. ".repeat(1700).as_bytes());
    fails_with(
        &[
            "ask",
            "--policy",
            "full",
            "--file",
            long.to_str().expect("path"),
            "What color is the grass?",
        ],
        "exceeds the model's trained context of 8192 tokens",
    );
}

#[test]
#[ignore = "prefills ~8.5k tokens under infllm (a minute or more on 2 cores); the choice itself is unit-tested"]
fn ask_picks_a_long_context_policy_past_the_trained_window() {
    // ~8.5k tokens: past SmolLM2's 8192-token window, so `auto` must switch policy and say so.
    let mut doc = "The grass is green. The sky is blue. ".repeat(940);
    doc.insert_str(doc.len() / 2, "The secret fruit is a mango. ");
    let file = temp_file("long-auto.txt", doc.as_bytes());
    let o = longctx(&[
        "ask",
        "-n",
        "4",
        "--file",
        file.to_str().expect("path"),
        "What is the secret fruit?",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("policy infllm (auto: the input exceeds the 8192-token trained context)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_options_are_named() {
    fails_with(
        &["generate", "--policy", "magic", "x"],
        "unknown policy 'magic'",
    );
    fails_with(
        &["generate", "--policy-opt", "window=4", "x"],
        "unknown option 'window'",
    );
    fails_with(
        &["generate", "-t", "0", "x"],
        "--threads must be between 1 and 1024",
    );
    fails_with(
        &["generate", "--temperature=-1", "x"],
        "temperature must be a finite number",
    );
    fails_with(
        &["generate", "--top-p", "0", "x"],
        "top-p must be in (0, 1]",
    );
    fails_with(
        &["generate", "-n", "0", "x"],
        "--max-tokens must be at least 1",
    );
    fails_with(
        &[
            "perplexity",
            "--file",
            essay().to_str().expect("path"),
            "--ctx",
            "3",
        ],
        "context must be at least 4 tokens",
    );
    fails_with(
        &[
            "perplexity",
            "--policy",
            "full",
            "--file",
            essay().to_str().expect("path"),
            "--ctx",
            "100000",
        ],
        "exceeds the model's trained context",
    );
    fails_with(&["model", "pull", "gpt-5"], "unknown model 'gpt-5'");
    fails_with(
        &["generate", "-m", "/no/such/model.gguf", "x"],
        "neither a catalogue name",
    );
}

#[test]
fn corrupt_model_files_are_named() {
    let not_gguf = temp_file("not.gguf", b"PK\x03\x04 definitely a zip");
    fails_with(
        &["model", "info", not_gguf.to_str().expect("path")],
        "magic",
    );
    let mut truncated = b"GGUF".to_vec();
    truncated.extend_from_slice(&3u32.to_le_bytes());
    truncated.extend_from_slice(&5u64.to_le_bytes());
    let truncated = temp_file("truncated.gguf", &truncated);
    fails_with(
        &["generate", "-m", truncated.to_str().expect("path"), "x"],
        "truncated",
    );
}

#[test]
fn model_info_and_policies_describe_what_is_there() {
    let o = longctx(&["model", "info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "architecture    llama",
        "context length  8192",
        "layers          30",
        "Q4_1",
        "tokenizer       gpt2",
        "<|im_start|>",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let o = longctx(&["policies"]);
    let out = stdout(&o);
    for want in [
        "full",
        "streaming",
        "lm-infinite",
        "max_context",
        "budget",
        "n_local",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}
