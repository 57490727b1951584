//! `longctx passkey` end to end on the default model: one tiny cell, its JSONL record and
//! table, a resumed re-run that recomputes nothing, an error recorded as a failed cell, and
//! bad input rejected with a message naming the problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use longctx_backend::catalog;

fn default_model_path() -> PathBuf {
    let entry = catalog::find(catalog::DEFAULT_MODEL).expect("default model in catalogue");
    let path = catalog::local_path(entry);
    assert!(
        path.exists(),
        "{} is missing: run `cargo run -p longctx-cli -- model pull smollm2-135m` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn longctx(args: &[&str]) -> (Output, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_longctx"))
        .args(args)
        .output()
        .expect("the longctx binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

fn fresh_file(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("passkey-cli");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("results file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

#[test]
fn one_cell_is_recorded_then_skipped_on_resume() {
    let model = default_model_path();
    let out = fresh_file("one-cell.jsonl");
    let args = [
        "passkey",
        "-m",
        model.to_str().expect("UTF-8 path"),
        "--lengths",
        "512",
        "--depths",
        "50",
        "--policy",
        "full",
        "-t",
        "2",
        "--out",
        out.to_str().expect("UTF-8 path"),
    ];
    let (status, stdout, stderr) = longctx(&args);
    assert!(
        status.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let rows = records(&out);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["task"], "passkey");
    assert_eq!(row["model"], "SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        row["model_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:")),
        "{row}"
    );
    assert_eq!(row["policy"], "full");
    assert_eq!(row["policy_options"], "");
    assert_eq!(
        (
            row["length"].as_u64(),
            row["depth"].as_u64(),
            row["sample"].as_u64(),
            row["seed"].as_u64()
        ),
        (Some(512), Some(50), Some(0), Some(0))
    );
    // The golden key of (seed 0, 512, 50%, #0) from the generator's tests.
    assert_eq!(row["passkey"], 580_204);
    assert!(row["error"].is_null(), "{row}");
    let prompt_tokens = row["prompt_tokens"].as_u64().expect("prompt_tokens");
    assert!((480..=512).contains(&prompt_tokens), "{row}");
    let correct = row["correct"].as_bool().expect("correct");
    let output = row["output"].as_str().expect("output");
    assert_eq!(correct, output.trim_start().starts_with("580204"), "{row}");
    assert!(
        row["prefill_seconds"].as_f64().is_some_and(|s| s > 0.0),
        "{row}"
    );

    let verdict = if correct { "PASS" } else { "FAIL" };
    assert!(
        stdout.contains("K=580204") && stdout.contains(verdict),
        "{stdout}"
    );
    let accuracy = if correct {
        "100.0% (1/1)"
    } else {
        "0.0% (0/1)"
    };
    let table_row = format!("| full | {accuracy} | {accuracy} |");
    assert!(
        stdout.contains("| policy | 512 | all |") && stdout.contains(&table_row),
        "{stdout}"
    );

    // Same file again: nothing runs, the table is printed in full from the file.
    let (status, again, stderr) = longctx(&args);
    assert!(status.status.success(), "{stderr}");
    assert!(stderr.contains("skipping 1 finished"), "{stderr}");
    assert!(
        !again.contains("K=580204"),
        "a sample was recomputed:\n{again}"
    );
    assert!(again.contains(&table_row), "{again}");
    assert_eq!(records(&out).len(), 1);

    // Another option set is another configuration; its failure is recorded, not fatal.
    let mut failing = args.to_vec();
    failing.extend(["--policy-opt", "full:max_context=256"]);
    let (status, stdout, stderr) = longctx(&failing);
    assert!(
        status.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("ERROR")
            && stdout.contains("| full[max_context=256] | 0.0% (0/1, 1 err) |"),
        "{stdout}"
    );
    let rows = records(&out);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["policy_options"], "max_context=256");
    assert_eq!(rows[1]["correct"], false);
    assert!(
        rows[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("allows 256")),
        "{}",
        rows[1]
    );
}

#[test]
fn bad_input_is_named() {
    let expect_error = |args: &[&str], needle: &str| {
        let (status, stdout, stderr) = longctx(args);
        assert!(!status.status.success(), "{args:?} succeeded:\n{stdout}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected '{needle}' in:\n{stderr}"
        );
    };
    expect_error(
        &["passkey", "--policy", "full,nope", "--lengths", "512"],
        "unknown policy 'nope'",
    );
    expect_error(&["passkey", "--lengths", "0"], "at least 1 token");
    expect_error(&["passkey", "--lengths", "4q"], "bad length '4q'");
    expect_error(&["passkey", "--depths", "50,101"], "outside 0..=100");
    expect_error(
        &["passkey", "--samples", "0"],
        "--samples must be between 1 and",
    );
    expect_error(
        &["passkey", "--policy-opt", "streaming:budget=8"],
        "not in --policy",
    );

    let model = default_model_path();
    let out = fresh_file("malformed.jsonl");
    std::fs::write(&out, "{\"task\":\"passkey\"}\n").expect("write");
    expect_error(
        &[
            "passkey",
            "-m",
            model.to_str().expect("UTF-8 path"),
            "--lengths",
            "512",
            "--out",
            out.to_str().expect("UTF-8 path"),
        ],
        "malformed.jsonl, line 1: not a valid result record",
    );
}
