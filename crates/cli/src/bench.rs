//! `longctx bench`: list tasks, run them resumably into a SQLite results database, report
//! (text + self-contained HTML), compare two runs and export upstream prediction files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use longctx_backend::catalog;
use longctx_backend::{BackendSpec, LlmBackend, LocalBackend, OpenAiBackend};
use longctx_bench::report::{self, RULER_THRESHOLD};
use longctx_bench::runner::{
    self, chat_template_tokens, plan_task, select_tasks, BackendCounter, Event, PlanConfig,
    RunError, RunOutcome, RunSettings,
};
use longctx_bench::store::{RunRecord, Store};
use longctx_bench::{export, registry, Sample, Task};
use sha2::{Digest, Sha256};

use crate::commands::resolve_model;

/// Default results database, in the current directory.
pub const DEFAULT_DB: &str = "longctx-bench.sqlite";

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// List every task (synthetic generators and datasets) with its metric.
    List,
    /// Run tasks on a model; results go to the database as each sample finishes, and a re-run
    /// of the same configuration skips what is stored (Ctrl-C stops cleanly).
    Run(Box<RunArgs>),
    /// Per-task and per-length tables, effective length, and an HTML report with heatmaps.
    Report(ReportArgs),
    /// Score differences per task and length between two runs, and the samples that flipped.
    Compare {
        /// The first run's id (see `bench report`).
        run_a: i64,
        /// The second run's id.
        run_b: i64,
        #[arg(long, default_value = DEFAULT_DB)]
        db: PathBuf,
    },
    /// Write a run's predictions as JSONL in the upstream formats (LongBench, RULER, L-Eval).
    Export {
        #[arg(long)]
        run: i64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = DEFAULT_DB)]
        db: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Tasks: names or family prefixes (`ruler` = every ruler/ task), repeatable or
    /// comma-separated; see `longctx bench list`.
    #[arg(long = "task", required = true)]
    pub tasks: Vec<String>,
    /// Target lengths of synthetic tasks in tokens, comma-separated (`k` = ×1024).
    #[arg(long, value_delimiter = ',', default_value = "4k", value_parser = parse_length)]
    pub lengths: Vec<usize>,
    /// Needle depths in percent for synthetic tasks (default: each task's own).
    #[arg(long, value_delimiter = ',')]
    pub depths: Vec<u32>,
    /// Samples per length and depth of synthetic tasks.
    #[arg(long, default_value_t = 1)]
    pub samples: usize,
    /// Seed of the synthetic generators.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Most samples per dataset task (the first N).
    #[arg(long)]
    pub limit: Option<usize>,
    /// `local` (the engine in this process) or `openai:URL[,URL]` (OpenAI-compatible servers).
    #[arg(long, default_value = "local")]
    pub backend: String,
    /// Local model: a catalogue name (see `longctx model list`) or a GGUF path.
    #[arg(short = 'm', long = "model", default_value = catalog::DEFAULT_MODEL)]
    pub model: String,
    /// Local KV-cache policy (see `longctx policies`).
    #[arg(long, default_value = "auto")]
    pub policy: String,
    /// Local policy options, `key=value,...`.
    #[arg(long = "policy-opt", default_value = "")]
    pub policy_opt: String,
    /// Served model name for `openai:` backends (`default`: the first model the server lists
    /// at `/v1/models`).
    #[arg(long = "remote-model", default_value = "default")]
    pub remote_model: String,
    /// A PEM file of certificate authorities to trust for `https://` backends (e.g. a
    /// self-signed server), besides the built-in web roots; also `$LONGCTX_CA_FILE`.
    #[arg(long = "backend-ca")]
    pub backend_ca: Option<std::path::PathBuf>,
    /// Environment variable holding the API key of `openai:` backends.
    #[arg(long = "api-key-env", default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Requests in flight (default: 1 for local, 4 for openai).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Worker threads of the local engine (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Prompt + output budget per request, for truncation (default: the backend's window;
    /// none when it is unbounded or unknown).
    #[arg(long = "max-input-tokens")]
    pub max_input_tokens: Option<usize>,
    /// Override every task's generation budget (for smoke tests; part of the run's config).
    #[arg(long = "max-new-tokens")]
    pub max_new_tokens: Option<usize>,
    /// Results database.
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Data folder of the datasets (default: LONGCTX_DATA, else shared/data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Skip malformed dataset lines (listed) instead of stopping.
    #[arg(long = "skip-bad-lines")]
    pub skip_bad_lines: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Runs to report (repeatable; default: all).
    #[arg(long = "run")]
    pub runs: Vec<i64>,
    /// Effective-length threshold (RULER: 85.6, Llama-2-7B's score at 4K).
    #[arg(long, default_value_t = RULER_THRESHOLD)]
    pub threshold: f64,
    /// Where to write the HTML report.
    #[arg(long, default_value = "longctx-bench-report.html")]
    pub html: PathBuf,
}

/// `512` or `4k` (= 4096).
fn parse_length(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let (digits, scale) = match t.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1024),
        None => (t, 1),
    };
    match digits
        .parse::<usize>()
        .ok()
        .and_then(|v| v.checked_mul(scale))
    {
        Some(v) if v > 0 && v <= 16 << 20 => Ok(v),
        _ => Err(format!(
            "bad length '{t}': expected a token count such as 512 or 4k (1..=16384k)"
        )),
    }
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::List => list(),
        BenchCommand::Run(args) => run_bench(&args),
        BenchCommand::Report(args) => report_cmd(&args),
        BenchCommand::Compare { run_a, run_b, db } => {
            let store = Store::open_existing(&db)?;
            print!("{}", report::compare(&store, run_a, run_b)?.text());
            Ok(())
        }
        BenchCommand::Export { run, out, db } => {
            let store = Store::open_existing(&db)?;
            let files = export::export_run(&store, run, &out)?;
            for f in &files {
                println!("{}", f.display());
            }
            eprintln!("wrote {} file(s) under {}", files.len(), out.display());
            Ok(())
        }
    }
}

fn list() -> Result<()> {
    let tasks: Vec<_> = registry::all().collect();
    let w = tasks.iter().map(|t| t.name.len()).max().unwrap_or(4);
    let m = tasks
        .iter()
        .map(|t| t.metric.name().len())
        .max()
        .unwrap_or(6);
    println!("{:<w$}  {:<9}  {:<m$}  summary", "task", "kind", "metric");
    for t in &tasks {
        let kind = if t.is_generated() {
            "synthetic"
        } else {
            "dataset"
        };
        println!(
            "{:<w$}  {kind:<9}  {:<m$}  {}",
            t.name,
            t.metric.name(),
            t.summary
        );
    }
    println!(
        "\n{} tasks; `--task FAMILY` selects a whole family (e.g. ruler, leval, longbench).",
        tasks.len()
    );
    Ok(())
}

fn report_cmd(args: &ReportArgs) -> Result<()> {
    let store = Store::open_existing(&args.db)?;
    let rep = report::build(&store, &args.runs, args.threshold)?;
    print!("{}", rep.text());
    std::fs::write(&args.html, rep.html())
        .with_context(|| format!("writing {}", args.html.display()))?;
    eprintln!("HTML report: {}", args.html.display());
    Ok(())
}

/// The commit this binary was built from (`-dirty` with uncommitted changes; see build.rs).
fn git_commit() -> String {
    env!("LONGCTX_GIT_COMMIT").to_string()
}

/// The backend, its model checksum, and how it formats chat prompts.
pub(crate) struct Built {
    pub backend: Box<dyn LlmBackend>,
    pub backend_label: String,
    pub model_sha: String,
    pub policy: String,
    pub policy_options: String,
    pub chat_template: String,
    pub concurrency: usize,
    /// Tokens a raw completion request adds before the text (BOS).
    pub raw_tokens: usize,
}

/// The sha256 of a local model: the catalogue's when `spec` names a catalogue model, else
/// the file's (computed).
pub(crate) fn model_sha(spec: &str, path: &Path) -> Result<String> {
    match catalog::find(spec) {
        Ok(entry) => Ok(entry.sha256.to_string()),
        Err(_) => {
            eprintln!("hashing {} (sha256) for the run record...", path.display());
            catalog::sha256_file(path).with_context(|| format!("hashing {}", path.display()))
        }
    }
}

/// A local backend with its run-record facts (`policy` and `policy_options` as it was built
/// with).
pub(crate) fn local_built(
    backend: LocalBackend,
    model_sha: String,
    policy: &str,
    policy_options: &str,
    concurrency: usize,
) -> Built {
    let chat_template = if backend.model().chat_template.is_some() {
        "the model's GGUF chat template (chat tasks); raw text (completion tasks)"
    } else {
        "ChatML fallback, the GGUF has none (chat tasks); raw text (completion tasks)"
    };
    Built {
        backend_label: "local".into(),
        model_sha,
        policy: policy.to_string(),
        policy_options: policy_options.to_string(),
        chat_template: chat_template.into(),
        concurrency,
        raw_tokens: backend.model().tokenizer.encode("", true, false).len(),
        backend: Box::new(backend),
    }
}

fn build_backend(args: &RunArgs) -> Result<Built> {
    let spec: BackendSpec = args.backend.parse()?;
    match &spec {
        BackendSpec::Local => {
            let path = resolve_model(&args.model)?;
            let sha = model_sha(&args.model, &path)?;
            eprintln!("loading {}...", path.display());
            let backend = LocalBackend::load(&path, &args.policy, &args.policy_opt)
                .with_context(|| format!("loading {}", path.display()))?;
            Ok(local_built(
                backend,
                sha,
                &args.policy,
                &args.policy_opt,
                args.concurrency.unwrap_or(1),
            ))
        }
        BackendSpec::OpenAi { .. } => {
            let mut cfg = spec
                .openai_config(&args.remote_model)
                .context("openai backend config")?;
            cfg.api_key_env = args.api_key_env.clone();
            if args.backend_ca.is_some() {
                cfg.ca_file = args.backend_ca.clone();
            }
            let concurrency = args.concurrency.unwrap_or(4);
            cfg.max_concurrency = concurrency.max(1);
            let endpoints = cfg.endpoints.join(",");
            let mut backend = OpenAiBackend::new(cfg.clone())?;
            if args.remote_model == "default" {
                // Name the run (and the requests) after the model the server says it serves.
                match backend.served_models() {
                    Ok(models) if !models.is_empty() => {
                        cfg.model = models[0].id.clone();
                        eprintln!("{endpoints} serves '{}'", cfg.model);
                        backend = OpenAiBackend::new(cfg)?;
                    }
                    Ok(_) => eprintln!("{endpoints} lists no model at /v1/models; using 'default'"),
                    Err(e) => eprintln!("could not list the served models ({e}); using 'default'"),
                }
            }
            Ok(Built {
                backend_label: spec.to_string(),
                model_sha: "remote".into(),
                policy: format!("server {endpoints}"),
                policy_options: String::new(),
                chat_template:
                    "the server's chat template (chat tasks); raw text (completion tasks)".into(),
                concurrency,
                // The runner's assumption for servers: one BOS token.
                raw_tokens: 1,
                backend: Box::new(backend),
            })
        }
    }
}

/// Sizes the global worker pool: the runner's worker threads are not in the command's pool,
/// so the engine's parallel loops run in the global one.
pub(crate) fn size_global_pool(threads: Option<usize>) {
    if let Some(t) = threads {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global();
    }
}

/// What identifies a run besides the backend: a re-run with the same values reopens it.
pub(crate) struct RunKey {
    pub max_input: Option<usize>,
    pub max_new_tokens: Option<usize>,
    pub seed: u64,
}

/// The run record of a configuration; `config` is stored with it (tasks, lengths, …) and
/// gains the key fields.
pub(crate) fn run_record(built: &Built, key: &RunKey, mut config: serde_json::Value) -> RunRecord {
    let model = built.backend.info().model_id.clone();
    let key_fields = serde_json::json!({
        "model": model,
        "model_sha": built.model_sha,
        "backend": if built.backend_label == "local" { "local" } else { "openai" },
        "policy": built.policy,
        "policy_options": built.policy_options,
        "max_input_tokens": key.max_input,
        "max_new_tokens": key.max_new_tokens,
        "seed": key.seed,
        "sampling": "greedy",
    });
    let config_key: String = Sha256::digest(key_fields.to_string().as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(obj) = config.as_object_mut() {
        obj.insert("key".into(), key_fields);
    }
    RunRecord {
        id: 0,
        config_key,
        model,
        model_sha: built.model_sha.clone(),
        backend: built.backend_label.clone(),
        policy: built.policy.clone(),
        policy_options: built.policy_options.clone(),
        chat_template: built.chat_template.clone(),
        truncation: match key.max_input {
            Some(m) => format!(
                "per task (LongBench middle tokens, L-Eval head words, synthetic none) to {m} tokens - max_new_tokens - template"
            ),
            None => "none (no input budget: unbounded or unknown window)".into(),
        },
        max_input_tokens: key.max_input.map(|m| m as u64),
        seed: key.seed,
        sampling: match key.max_new_tokens {
            Some(n) => format!("greedy, max_new_tokens {n} (override)"),
            None => "greedy, max_new_tokens per task".into(),
        },
        git_commit: git_commit(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: String::new(),
        finished_at: None,
        status: String::new(),
        config,
    }
}

/// A flag raised by the first Ctrl-C (finish the samples in flight; they are stored); a
/// second Ctrl-C exits at once.
pub(crate) fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let presses = AtomicUsize::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) >= 1 {
            eprintln!("\nstopping now; finished samples are stored");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: finishing the samples in flight (press again to quit at once)...");
        flag.store(true, Ordering::SeqCst);
    });
    cancel
}

fn run_bench(args: &RunArgs) -> Result<()> {
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    if args.depths.iter().any(|&d| d > 100) {
        bail!("--depths are percentages in 0..=100");
    }
    if args.concurrency == Some(0) {
        bail!("--concurrency must be at least 1");
    }
    if args.max_new_tokens == Some(0) {
        bail!("--max-new-tokens must be at least 1");
    }
    // Cheap checks first: task names, the database, then the model.
    let tasks = select_tasks(&args.tasks)?;
    let mut store = Store::open(&args.db)?;
    size_global_pool(args.threads);
    let built = build_backend(args)?;
    let backend = built.backend.as_ref();
    let window = backend.info().context_window;
    let max_input = args
        .max_input_tokens
        .or((window != 0 && window != usize::MAX).then_some(window));
    let samples = plan_samples(args, &built, &tasks)?;

    let key = RunKey {
        max_input,
        max_new_tokens: args.max_new_tokens,
        seed: args.seed,
    };
    let record = run_record(
        &built,
        &key,
        serde_json::json!({
            "tasks": tasks.iter().map(|t| t.name).collect::<Vec<_>>(),
            "lengths": args.lengths,
            "depths": args.depths,
            "samples": args.samples,
            "limit": args.limit,
            "concurrency": built.concurrency,
            "threads": args.threads,
        }),
    );
    let run_id = store.begin_run(&record)?;
    eprintln!(
        "run {run_id} in {} ({} samples over {} task(s))",
        args.db.display(),
        samples.len(),
        tasks.len()
    );
    let cancel = cancel_on_ctrl_c();
    let settings = RunSettings {
        concurrency: built.concurrency,
        max_input_tokens: max_input,
    };
    let (result, done) =
        run_with_progress(backend, &mut store, run_id, &samples, &settings, &cancel);
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            let _ = store.end_run(run_id, &format!("failed: {e}"));
            return Err(e).with_context(|| {
                format!(
                    "run {run_id} stopped; the {done} sample(s) finished before are stored in {} \
                     (re-run the same command to continue)",
                    args.db.display()
                )
            });
        }
    };
    let status = if outcome.cancelled {
        "interrupted"
    } else {
        "finished"
    };
    store.end_run(run_id, status)?;
    eprintln!(
        "run {run_id} {status}: {} ran, {} skipped, {} error row(s)",
        outcome.ran, outcome.skipped, outcome.errors
    );
    let rep = report::build(&store, &[run_id], RULER_THRESHOLD)?;
    print!("{}", rep.text());
    if outcome.cancelled {
        eprintln!("interrupted: re-run the same command to continue where it stopped");
    }
    Ok(())
}

/// Every selected task's samples, with `--max-new-tokens` applied.
fn plan_samples(args: &RunArgs, built: &Built, tasks: &[&Task]) -> Result<Vec<Sample>> {
    let backend = built.backend.as_ref();
    let plan = PlanConfig {
        lengths: args.lengths.clone(),
        depths: args.depths.clone(),
        samples: args.samples,
        seed: args.seed,
        limit: args.limit,
        data_root: args.data.clone(),
        skip_bad_lines: args.skip_bad_lines,
        template_tokens: chat_template_tokens(backend)
            .context("counting the chat template's tokens")?,
        raw_tokens: built.raw_tokens,
        max_new_tokens: args.max_new_tokens,
    };
    let counter = BackendCounter::new(backend);
    let mut samples: Vec<Sample> = Vec::new();
    for task in tasks {
        eprintln!("preparing {}...", task.name);
        let planned = plan_task(task, &plan, &counter)?;
        if let Some(e) = counter.take_error() {
            bail!("{}: counting tokens to build samples: {e}", task.name);
        }
        for s in &planned.skipped {
            eprintln!("  skipped malformed record: {s}");
        }
        samples.extend(planned.samples);
    }
    if let Some(n) = args.max_new_tokens {
        for s in &mut samples {
            s.max_new_tokens = n;
        }
    }
    Ok(samples)
}

/// Runs the samples under a progress bar with the running score; also returns how many
/// samples finished.
fn run_with_progress(
    backend: &dyn LlmBackend,
    store: &mut Store,
    run_id: i64,
    samples: &[Sample],
    settings: &RunSettings,
    cancel: &AtomicBool,
) -> (Result<RunOutcome, RunError>, usize) {
    let bar = ProgressBar::hidden();
    let (mut sum, mut done, mut errors) = (0.0, 0usize, 0usize);
    let result =
        runner::run_samples(
            backend,
            store,
            run_id,
            samples,
            settings,
            cancel,
            |event| match event {
                Event::Start { to_run, skipped } => {
                    if skipped > 0 {
                        eprintln!("{skipped} sample(s) already stored: skipped");
                    }
                    bar.set_length(to_run as u64);
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{elapsed_precise} [{bar:32.cyan/blue}] {pos}/{len} ETA {eta} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                }
                Event::Done(row) => {
                    done += 1;
                    sum += row.score;
                    errors += usize::from(row.error.is_some());
                    bar.set_message(format!(
                        "score {:.2}{}",
                        100.0 * sum / done as f64,
                        if errors > 0 {
                            format!(" · {errors} error(s)")
                        } else {
                            String::new()
                        }
                    ));
                    bar.inc(1);
                }
            },
        );
    bar.finish_and_clear();
    (result, done)
}
