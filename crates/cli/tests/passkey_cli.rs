//! `longctx passkey` end to end on the default model: one tiny cell stored in the SQLite
//! results store with its table, a resumed re-run that recomputes nothing, an error recorded as
//! a failed cell, an interrupted run that keeps its finished rows, bad input rejected with a
//! message naming the problem, and the prompt the model sees pinned to what the pre-runner
//! command fed it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use longctx_backend::{
    catalog, BackendInfo, ChatRequest, Completion, CompletionRequest, FinishReason, LlmBackend,
    LocalBackend,
};
use longctx_bench::runner::{
    plan_task, prompt_hash, run_samples, BackendCounter, PlanConfig, RunSettings,
};
use longctx_bench::store::{ResultRow, RunRecord, Store};
use longctx_bench::{registry, Sample};
use longctx_engine::Model;
use sha2::{Digest, Sha256};

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

/// Every run of the database with its result rows, in run order.
fn stored(db: &Path) -> Vec<(RunRecord, Vec<ResultRow>)> {
    let store = Store::open_existing(db).expect("results database");
    store
        .runs()
        .expect("runs")
        .into_iter()
        .map(|run| {
            let rows = store.results(run.id).expect("results");
            (run, rows)
        })
        .collect()
}

fn meta_u64(row: &ResultRow, key: &str) -> Option<u64> {
    row.meta.get(key).and_then(serde_json::Value::as_u64)
}

/// The planner's passkey samples for the CLI's settings (`-n 8`), counted by the model.
fn planned(
    backend: &dyn LlmBackend,
    model: &Model,
    lengths: &[usize],
    depths: &[u32],
) -> Vec<Sample> {
    let cfg = PlanConfig {
        lengths: lengths.to_vec(),
        depths: depths.to_vec(),
        samples: 1,
        seed: 0,
        limit: None,
        data_root: None,
        skip_bad_lines: false,
        template_tokens: 0,
        raw_tokens: model.tokenizer.encode("", true, false).len(),
        max_new_tokens: Some(8),
    };
    let counter = BackendCounter::new(backend);
    let task = registry::find("passkey").expect("passkey task");
    plan_task(task, &cfg, &counter).expect("plan").samples
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn tokens_sha(tokens: &[u32]) -> String {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    sha_hex(&bytes)
}

/// A backend that counts tokens with the local engine and records the raw requests it gets
/// instead of generating.
struct Recording {
    inner: LocalBackend,
    requests: Mutex<Vec<(String, Option<String>)>>,
}

impl LlmBackend for Recording {
    fn info(&self) -> &BackendInfo {
        self.inner.info()
    }
    fn complete(&self, req: &CompletionRequest) -> longctx_backend::Result<Completion> {
        self.complete_with_instruction(req, None)
    }
    fn complete_with_instruction(
        &self,
        req: &CompletionRequest,
        instruction: Option<&str>,
    ) -> longctx_backend::Result<Completion> {
        let mut requests = self.requests.lock().expect("lock");
        requests.push((req.prompt.clone(), instruction.map(str::to_string)));
        Ok(Completion {
            text: " 580204.".into(),
            finish: FinishReason::Stop,
            prompt_tokens: 0,
            completion_tokens: 1,
            latency: std::time::Duration::ZERO,
            ..Completion::default()
        })
    }
    fn chat(&self, req: &ChatRequest) -> longctx_backend::Result<Completion> {
        self.inner.chat(req)
    }
    fn count_tokens(&self, text: &str) -> longctx_backend::Result<usize> {
        self.inner.count_tokens(text)
    }
}

/// The request of (512 tokens, depth 50%, sample 0, seed 0, 8 answer tokens) as the runner
/// sends it equals what `longctx passkey` fed the model before it ran through the bench
/// runner: the same text, tokenized as `LocalBackend::complete_with_instruction` does (BOS as
/// the vocabulary says, special-token text not parsed) into the same tokens, and the same
/// question for instruction-aware policies. The hashes were computed with the old command's
/// code (`generate_sample` with `encode(text, true, false).len() + 7` as the counter, then
/// `encode(prompt, true, false)`).
#[test]
fn prompt_tokens_equal_the_old_command() {
    const PROMPT_SHA: &str = "79749e35b9838e0dfa3bf03a088f5e51d864753cbeed5c74646f58b0edd11250";
    const TOKENS_SHA: &str = "fb3052f05238b6ecf01b0400d38a3747b5dcf4e4c2d159a01ab65978a37c94a7";
    const QUESTION_TOKENS: [u32; 6] = [1780, 314, 260, 1301, 1646, 47];
    let model = Arc::new(Model::load(&default_model_path()).expect("model"));
    let backend = Recording {
        inner: LocalBackend::new(model.clone(), "m", "citrus", "").expect("backend"),
        requests: Mutex::new(Vec::new()),
    };
    let samples = planned(&backend, &model, &[512], &[50]);
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].meta["passkey"], 580_204);
    assert_eq!(samples[0].max_new_tokens, 8);

    let db = fresh_file("golden.sqlite");
    let mut store = Store::open(&db).expect("store");
    let run = store
        .begin_run(&RunRecord {
            id: 0,
            config_key: "golden".into(),
            model: "m".into(),
            model_sha: "x".into(),
            backend: "local".into(),
            policy: "citrus".into(),
            policy_options: String::new(),
            chat_template: String::new(),
            truncation: "none".into(),
            max_input_tokens: None,
            seed: 0,
            sampling: "greedy".into(),
            git_commit: "test".into(),
            version: "test".into(),
            started_at: String::new(),
            finished_at: None,
            status: String::new(),
            config: serde_json::json!({}),
        })
        .expect("run");
    let settings = RunSettings {
        concurrency: 1,
        max_input_tokens: None,
    };
    let no = AtomicBool::new(false);
    run_samples(&backend, &mut store, run, &samples, &settings, &no, |_| {}).expect("runs");
    let requests = backend.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    let (prompt, instruction) = &requests[0];
    assert_eq!(sha_hex(prompt.as_bytes()), PROMPT_SHA);
    let tokens = model.tokenizer.encode(prompt, true, false);
    assert_eq!(tokens.len(), 498);
    assert_eq!(tokens_sha(&tokens), TOKENS_SHA);
    // The question reaches the policy (citrus) as the old command gave it.
    let question = instruction.as_deref().expect("an instruction");
    let question_tokens = model.tokenizer.encode(question.trim(), false, false);
    assert_eq!(question_tokens, QUESTION_TOKENS);
    let rows = store.results(run).expect("rows");
    assert_eq!((rows[0].score, rows[0].error.is_none()), (1.0, true));
}

#[test]
fn one_cell_is_stored_then_skipped_on_resume() {
    let model = default_model_path();
    let db = fresh_file("one-cell.sqlite");
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
        "--db",
        db.to_str().expect("UTF-8 path"),
    ];
    let (status, stdout, stderr) = longctx(&args);
    assert!(
        status.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let runs = stored(&db);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (run, rows) = &runs[0];
    assert_eq!(run.model, "SmolLM2-135M-Instruct.Q4_1.gguf");
    let entry = catalog::find(catalog::DEFAULT_MODEL).expect("catalogue");
    assert_eq!(run.model_sha, entry.sha256);
    assert_eq!(run.policy, "full");
    assert_eq!(run.policy_options, "");
    assert_eq!(run.seed, 0);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.task, "passkey");
    assert_eq!((row.length, row.depth), (Some(512), Some(50)));
    assert_eq!(
        (meta_u64(row, "sample"), meta_u64(row, "seed")),
        (Some(0), Some(0))
    );
    // The golden key of (seed 0, 512, 50%, #0) from the generator's tests.
    assert_eq!(meta_u64(row, "passkey"), Some(580_204));
    assert!(row.error.is_none(), "{row:?}");
    assert!((480..=512).contains(&row.prompt_tokens), "{row:?}");
    let correct = row.score == 1.0;
    assert_eq!(
        correct,
        row.prediction.trim_start().starts_with("580204"),
        "{row:?}"
    );
    assert!(row.latency_ms > 0, "{row:?}");
    // The stored sample is the planner's: same prompt hash.
    let engine = Arc::new(Model::load(&model).expect("model"));
    let local = LocalBackend::new(engine.clone(), "m", "full", "").expect("backend");
    let sample = &planned(&local, &engine, &[512], &[50])[0];
    assert_eq!(row.prompt_hash, prompt_hash(sample));

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

    // Same database again: nothing runs, the table is printed in full from the store.
    let (status, again, stderr) = longctx(&args);
    assert!(status.status.success(), "{stderr}");
    assert!(stderr.contains("skipping 1 finished"), "{stderr}");
    assert!(
        !again.contains("K=580204"),
        "a sample was recomputed:\n{again}"
    );
    assert!(again.contains(&table_row), "{again}");
    let runs = stored(&db);
    assert_eq!((runs.len(), runs[0].1.len()), (1, 1));

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
    let runs = stored(&db);
    assert_eq!(runs.len(), 2);
    let (run, rows) = &runs[1];
    assert_eq!(run.policy_options, "max_context=256");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].score, 0.0);
    assert!(
        rows[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("allows 256")),
        "{:?}",
        rows[0]
    );
}

#[test]
fn an_interrupted_run_keeps_its_finished_rows() {
    let model = default_model_path();
    let db = fresh_file("interrupted.sqlite");
    let args = [
        "passkey",
        "-m",
        model.to_str().expect("UTF-8 path"),
        "--lengths",
        "512",
        "--depths",
        "10,50,90",
        "-t",
        "2",
        "--db",
        db.to_str().expect("UTF-8 path"),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_longctx"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the longctx binary starts");
    // Kill the run as soon as its first sample is printed (it is stored before it is printed).
    let stdout = child.stdout.take().expect("stdout");
    let first = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("K="));
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(first.is_some(), "no sample finished before the run ended");
    let kept = stored(&db)[0].1.len();
    assert!((1..=3).contains(&kept), "{kept} rows kept");

    let (status, again, stderr) = longctx(&args);
    assert!(status.status.success(), "{stderr}");
    if kept < 3 {
        assert!(
            stderr.contains(&format!("skipping {kept} finished")),
            "{stderr}"
        );
    }
    assert_eq!(again.matches("K=").count(), 3 - kept, "{again}");
    assert_eq!(stored(&db)[0].1.len(), 3);
    assert!(again.contains("| full | "), "{again}");
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
    // The JSONL journal is gone: say what replaced it.
    let out = fresh_file("old.jsonl");
    expect_error(
        &[
            "passkey",
            "--lengths",
            "512",
            "--out",
            out.to_str().expect("UTF-8 path"),
        ],
        "--out (the JSONL journal) was replaced by --db",
    );
}
