//! `passkey`: the passkey-retrieval benchmark (LM-Infinite variant, see
//! `longctx_bench::tasks::passkey`) over a grid of policies × lengths × depths × samples.
//!
//! Every finished sample is printed and, with `--out`, appended to a JSONL file with its full
//! configuration; a re-run with the same file skips what is there and prints the whole table.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use longctx_backend::catalog;
use longctx_bench::journal::Journal;
use longctx_bench::tasks::passkey::{
    generate_sample, PasskeyCase, PasskeyOutcome, PasskeyRecord, PasskeyRunKey, GENERATOR_VERSION,
    INFO,
};
use longctx_bench::{find_task, Metric};
use longctx_engine::policy::{build_policy, parse_options, ModelFacts, PolicyError, REGISTRY};
use longctx_engine::sampling::SamplingParams;
use longctx_engine::{GenerateParams, Model, Session};

use crate::commands::{resolve_model, setup_threads};
use crate::speed::peak_rss_mib;

/// Longest accepted `--lengths` value (16M tokens), far past any model's context.
const MAX_LENGTH: usize = 16 << 20;

/// Most `--samples` per cell.
const MAX_SAMPLES: u64 = 100_000;

/// Prompts at least this long get a prefill progress bar.
const PREFILL_BAR_MIN_TOKENS: usize = 2048;

/// Arguments of `longctx passkey`.
#[derive(Args, Clone, Debug)]
pub struct PasskeyArgs {
    /// Model: a catalogue name (see `longctx model list`) or a path to a GGUF file.
    #[arg(short = 'm', long = "model", default_value = catalog::DEFAULT_MODEL)]
    pub model: String,
    /// KV-cache policies to compare, comma-separated (see `longctx policies`).
    #[arg(
        long = "policy",
        value_name = "NAME",
        value_delimiter = ',',
        default_value = "full"
    )]
    pub policies: Vec<String>,
    /// Policy options, repeatable: `POLICY:key=value,key=value` for one policy, or
    /// `key=value,...` for every listed policy.
    #[arg(long = "policy-opt", value_name = "[POLICY:]KEY=VALUE,...")]
    pub policy_opts: Vec<String>,
    /// Context lengths in model tokens, comma-separated; a `k` suffix means ×1024. Each prompt
    /// is as long as possible while it and the answer (--max-tokens) fit in the length.
    #[arg(long, value_name = "LEN", value_delimiter = ',', default_value = "2k,4k,8k", value_parser = parse_length)]
    pub lengths: Vec<usize>,
    /// Depths of the key line in percent of the filler (0 = start, 100 = end), comma-separated.
    #[arg(long, value_name = "PERCENT", value_delimiter = ',', default_value = "10,50,90", value_parser = parse_depth)]
    pub depths: Vec<u32>,
    /// Samples (different keys) per length and depth.
    #[arg(long, default_value_t = 1)]
    pub samples: u64,
    /// Most tokens to generate for each answer (greedy decoding).
    #[arg(short = 'n', long = "max-tokens", default_value_t = 8)]
    pub max_tokens: usize,
    /// Seed of the sample generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// JSONL results file: finished samples are appended as they finish, and samples already
    /// in it are skipped.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
}

/// `512` or `4k` (= 4096) tokens.
fn parse_length(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, scale) = match text.strip_suffix(['k', 'K']) {
        Some(digits) => (digits, 1024),
        None => (text, 1),
    };
    let bad =
        || format!("bad length '{text}': expected a token count such as 512 or 4k (k = ×1024)");
    let value = digits
        .parse::<usize>()
        .map_err(|_| bad())?
        .checked_mul(scale)
        .ok_or_else(bad)?;
    if value == 0 {
        return Err(format!("length '{text}' must be at least 1 token"));
    }
    if value > MAX_LENGTH {
        return Err(format!(
            "length '{text}' is over the limit of {}k tokens",
            MAX_LENGTH / 1024
        ));
    }
    Ok(value)
}

/// A depth in percent, `0..=100`.
fn parse_depth(text: &str) -> Result<u32, String> {
    let text = text.trim();
    match text.parse::<u32>() {
        Ok(depth) if depth <= 100 => Ok(depth),
        Ok(_) => Err(format!("depth {text}% is outside 0..=100")),
        Err(_) => Err(format!(
            "bad depth '{text}': expected a whole percentage in 0..=100"
        )),
    }
}

/// `2048` → `2k`; lengths that are not whole multiples of 1024 stay as they are.
fn length_label(length: usize) -> String {
    if length.is_multiple_of(1024) {
        format!("{}k", length / 1024)
    } else {
        length.to_string()
    }
}

/// One policy of the comparison with its canonical options (sorted `key=value`, last wins).
#[derive(Clone, Debug, PartialEq, Eq)]
struct PolicyRun {
    name: String,
    options: String,
}

impl PolicyRun {
    fn label(&self) -> String {
        if self.options.is_empty() {
            self.name.clone()
        } else {
            format!("{}[{}]", self.name, self.options)
        }
    }
}

/// Checks `--policy` names and routes each `--policy-opt` to its policies.
fn policy_runs(names: &[String], option_flags: &[String]) -> Result<Vec<PolicyRun>> {
    let mut chosen: Vec<&'static longctx_engine::policy::PolicyInfo> = Vec::new();
    for name in names.iter().map(|n| n.trim()) {
        let info = REGISTRY
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| PolicyError::Unknown(name.to_string()))?;
        if chosen.iter().any(|c| c.name == info.name) {
            bail!("--policy lists '{name}' twice");
        }
        chosen.push(info);
    }
    if chosen.is_empty() {
        bail!("--policy names no policy");
    }
    let mut options: Vec<BTreeMap<String, String>> = vec![BTreeMap::new(); chosen.len()];
    for flag in option_flags {
        let (target, spec) = match flag.split_once(':') {
            Some((prefix, rest)) if !prefix.contains('=') => (Some(prefix.trim()), rest),
            _ => (None, flag.as_str()),
        };
        if let Some(target) = target {
            if !chosen.iter().any(|c| c.name == target) {
                let listed: Vec<&str> = chosen.iter().map(|c| c.name).collect();
                bail!(
                    "--policy-opt '{flag}' is for policy '{target}', which is not in --policy ({})",
                    listed.join(", ")
                );
            }
        }
        for (info, opts) in chosen.iter().zip(options.iter_mut()) {
            if target.is_some_and(|t| t != info.name) {
                continue;
            }
            let pairs = parse_options(info, spec).with_context(|| {
                format!(
                    "in --policy-opt '{flag}' (prefix options with their policy, e.g. {}:{spec})",
                    info.name
                )
            })?;
            opts.extend(pairs);
        }
    }
    Ok(chosen
        .iter()
        .zip(options)
        .map(|(info, opts)| PolicyRun {
            name: info.name.to_string(),
            options: opts
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect())
}

/// The model's file name and identity: the catalogue sha256 when the file is a catalogue
/// model of the right size, else its size in bytes.
fn model_identity(path: &Path) -> Result<(String, String)> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = catalog::CATALOG
        .iter()
        .find(|m| m.file_name == file_name && m.size == size)
        .map(|m| format!("sha256:{}", m.sha256))
        .unwrap_or_else(|| format!("bytes:{size}"));
    Ok((file_name, id))
}

fn model_facts(model: &Model) -> ModelFacts {
    ModelFacts {
        n_layers: model.cfg.n_layers,
        context_length: model.cfg.context_length,
    }
}

/// Resets the kernel's peak-RSS counter (`VmHWM`) so the next reading covers one sample.
/// Best effort: Linux only, silently ignored elsewhere.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs one prompt under one policy; errors become part of the outcome.
fn run_sample(
    model: &Model,
    policy: &PolicyRun,
    tokens: &[u32],
    passkey: u64,
    metric: Metric,
    params: &GenerateParams,
    bar: &ProgressBar,
) -> PasskeyOutcome {
    reset_peak_rss();
    let mut outcome = PasskeyOutcome {
        passkey,
        output: String::new(),
        correct: false,
        error: None,
        prompt_tokens: tokens.len(),
        generated_tokens: 0,
        prefill_seconds: 0.0,
        decode_tokens_per_second: 0.0,
        peak_rss_mib: None,
    };
    let policy = match build_policy(&policy.name, &policy.options, model_facts(model)) {
        Ok(p) => p,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    let mut session = Session::new(model, policy);
    // The question, for instruction-aware policies (citrus); the cue after it is not part of it.
    let question = model
        .tokenizer
        .encode("What is the pass key?", false, false);
    session.set_instruction(&question);
    let started = Instant::now();
    let fed = session
        .feed(tokens, |done| bar.set_position(done as u64))
        .map(|_| ());
    outcome.prefill_seconds = started.elapsed().as_secs_f64();
    if let Err(e) = fed {
        outcome.error = Some(format!("prefill: {e}"));
    } else {
        let mut streamed = String::new();
        let started = Instant::now();
        match session.generate(params, |text| {
            streamed.push_str(text);
            true
        }) {
            Ok(generation) => {
                let seconds = started.elapsed().as_secs_f64();
                outcome.generated_tokens = generation.tokens.len();
                if seconds > 0.0 {
                    outcome.decode_tokens_per_second = generation.tokens.len() as f64 / seconds;
                }
                outcome.output = generation.text;
            }
            Err(e) => {
                outcome.error = Some(format!("generation: {e}"));
                outcome.output = streamed;
            }
        }
    }
    let answer = passkey.to_string();
    outcome.correct = outcome.error.is_none()
        && matches!(metric.score(&outcome.output, &answer), Ok(s) if s == 1.0);
    outcome.peak_rss_mib = peak_rss_mib();
    outcome
}

/// The outcome of a prompt that could not be built (e.g. a length too short for the prompt).
fn failed_outcome(passkey: u64, error: String) -> PasskeyOutcome {
    PasskeyOutcome {
        passkey,
        output: String::new(),
        correct: false,
        error: Some(error),
        prompt_tokens: 0,
        generated_tokens: 0,
        prefill_seconds: 0.0,
        decode_tokens_per_second: 0.0,
        peak_rss_mib: None,
    }
}

/// `"abc…"`: the output as a quoted, escaped, shortened string.
fn short_quoted(text: &str, max_chars: usize) -> String {
    let shortened: String = text.chars().take(max_chars).collect();
    let ellipsis = if text.chars().count() > max_chars {
        "…"
    } else {
        ""
    };
    format!("{shortened:?}{ellipsis}")
}

/// One line per finished sample.
fn sample_row(policy: &PolicyRun, label_width: usize, record: &PasskeyRecord) -> String {
    let case = &record.key.case;
    let o = &record.outcome;
    let verdict = match (&o.error, o.correct) {
        (Some(_), _) => "ERROR",
        (None, true) => "PASS",
        (None, false) => "FAIL",
    };
    let mut row = format!(
        "{:<label_width$} len {:>6}  depth {:>3}%  #{:<3} K={:<8} {verdict:<5} out {}",
        policy.label(),
        case.length,
        case.depth,
        case.sample,
        o.passkey,
        short_quoted(&o.output, 24)
    );
    if o.prompt_tokens > 0 {
        row += &format!(
            "  {} tok, prefill {:.2} s, decode {:.1} tok/s",
            o.prompt_tokens, o.prefill_seconds, o.decode_tokens_per_second
        );
    }
    if let Some(rss) = o.peak_rss_mib {
        row += &format!(", peak RSS {rss:.0} MiB");
    }
    if let Some(e) = &o.error {
        row += &format!("\n    error: {e}");
    }
    row
}

/// Accuracy and averages over a set of records.
#[derive(Default)]
struct Tally {
    total: usize,
    correct: usize,
    errors: usize,
    prompt_tokens: usize,
    prefill_seconds: f64,
    decode_rate: f64,
    decode_samples: usize,
    peak_rss: f64,
    first_error: Option<String>,
}

impl Tally {
    fn add(&mut self, o: &PasskeyOutcome) {
        self.total += 1;
        self.correct += usize::from(o.correct);
        self.prompt_tokens += o.prompt_tokens;
        self.prefill_seconds += o.prefill_seconds;
        if o.generated_tokens > 0 {
            self.decode_rate += o.decode_tokens_per_second;
            self.decode_samples += 1;
        }
        self.peak_rss = self.peak_rss.max(o.peak_rss_mib.unwrap_or(0.0));
        if let Some(e) = &o.error {
            self.errors += 1;
            self.first_error.get_or_insert_with(|| e.clone());
        }
    }

    fn accuracy(&self) -> String {
        if self.total == 0 {
            return "–".into();
        }
        let errors = if self.errors > 0 {
            format!(", {} err", self.errors)
        } else {
            String::new()
        };
        format!(
            "{:.1}% ({}/{}{errors})",
            100.0 * self.correct as f64 / self.total as f64,
            self.correct,
            self.total
        )
    }
}

/// The final tables: accuracy per policy × length, then per cell (policy, length, depth).
fn print_tables(plan: &Plan, results: &HashMap<PasskeyRunKey, PasskeyRecord>) {
    let (args, runs, model_name) = (plan.args, &plan.runs, &plan.model_name);
    // Results of one policy over the cases with one of `lengths` (and `depth`, if given).
    let tally = |run: &PolicyRun, lengths: &[usize], depth: Option<u32>| {
        let mut tally = Tally::default();
        let selected = plan
            .cases
            .iter()
            .filter(|c| lengths.contains(&c.length) && depth.is_none_or(|d| d == c.depth));
        for case in selected {
            if let Some(record) = results.get(&plan.key(run, case)) {
                tally.add(&record.outcome);
            }
        }
        tally
    };
    let depths: Vec<String> = args.depths.iter().map(u32::to_string).collect();
    println!(
        "\npasskey accuracy: {model_name}, depths {}%, {} sample(s) per depth, seed {}, greedy, max {} tokens",
        depths.join(","),
        args.samples,
        args.seed,
        args.max_tokens
    );
    let mut header = "| policy |".to_string();
    let mut rule = "| --- |".to_string();
    for &length in &args.lengths {
        header += &format!(" {} |", length_label(length));
        rule += " ---: |";
    }
    println!("{header} all |\n{rule} ---: |");
    for run in runs {
        let mut line = format!("| {} |", run.label());
        for &length in &args.lengths {
            line += &format!(" {} |", tally(run, &[length], None).accuracy());
        }
        println!("{line} {} |", tally(run, &args.lengths, None).accuracy());
    }

    println!("\nper cell:");
    println!("| policy | length | depth | accuracy | prompt tokens | prefill s | decode tok/s | peak RSS MiB |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut errors = Vec::new();
    for run in runs {
        for &length in &args.lengths {
            for &depth in &args.depths {
                let t = tally(run, &[length], Some(depth));
                let per_sample = |sum: f64, digits: usize| {
                    if t.total > 0 {
                        format!("{:.digits$}", sum / t.total as f64)
                    } else {
                        "–".into()
                    }
                };
                let decode = if t.decode_samples > 0 {
                    format!("{:.1}", t.decode_rate / t.decode_samples as f64)
                } else {
                    "–".into()
                };
                let rss = if t.peak_rss > 0.0 {
                    format!("{:.0}", t.peak_rss)
                } else {
                    "–".into()
                };
                println!(
                    "| {} | {} | {depth}% | {} | {} | {} | {decode} | {rss} |",
                    run.label(),
                    length_label(length),
                    t.accuracy(),
                    per_sample(t.prompt_tokens as f64, 0),
                    per_sample(t.prefill_seconds, 2),
                );
                if let Some(e) = t.first_error {
                    errors.push(format!(
                        "{} @ {} depth {depth}%: {e}",
                        run.label(),
                        length_label(length)
                    ));
                }
            }
        }
    }
    if !errors.is_empty() {
        println!("\nerrors (first per cell):");
        for e in errors {
            println!("  {e}");
        }
    }
}

/// The benchmark grid and where its results go: everything [`run`] needs besides the model.
struct Plan<'a> {
    args: &'a PasskeyArgs,
    metric: Metric,
    runs: Vec<PolicyRun>,
    /// Every case in run order: shorter lengths first; all policies run on one prompt in turn.
    cases: Vec<PasskeyCase>,
    model_name: String,
    model_id: String,
}

impl Plan<'_> {
    fn key(&self, run: &PolicyRun, case: &PasskeyCase) -> PasskeyRunKey {
        PasskeyRunKey {
            task: INFO.name.to_string(),
            generator_version: GENERATOR_VERSION,
            model: self.model_name.clone(),
            model_id: self.model_id.clone(),
            policy: run.name.clone(),
            policy_options: run.options.clone(),
            max_tokens: self.args.max_tokens,
            case: *case,
        }
    }

    /// How many (policy, case) pairs of the grid have no result yet.
    fn missing(&self, results: &HashMap<PasskeyRunKey, PasskeyRecord>) -> usize {
        self.cases
            .iter()
            .flat_map(|case| self.runs.iter().map(move |run| (run, case)))
            .filter(|(run, case)| !results.contains_key(&self.key(run, case)))
            .count()
    }
}

/// Opens the results file and loads what an earlier run finished.
fn open_results(
    plan: &Plan,
    path: &Path,
    results: &mut HashMap<PasskeyRunKey, PasskeyRecord>,
) -> Result<Journal> {
    let (journal, loaded) = Journal::open::<PasskeyRecord>(path)
        .with_context(|| format!("opening the results file {}", path.display()))?;
    if loaded.removed_torn_bytes > 0 {
        eprintln!(
            "{}: removed an unfinished last line ({} bytes) left by an interrupted run",
            path.display(),
            loaded.removed_torn_bytes
        );
    }
    let total = loaded.records.len();
    results.extend(loaded.records.into_iter().map(|r| (r.key.clone(), r)));
    if total > 0 {
        let grid = plan.cases.len() * plan.runs.len();
        let missing = plan.missing(results);
        eprintln!(
            "{}: {total} record(s); skipping {} finished sample(s) of this grid, {missing} to run",
            path.display(),
            grid - missing
        );
    }
    Ok(journal)
}

/// A progress bar over one prompt's prefill, drawn only for long prompts.
fn prefill_bar(progress: &MultiProgress, run: &PolicyRun, tokens: usize) -> ProgressBar {
    let bar = progress.add(ProgressBar::new(tokens as u64));
    bar.set_style(
        ProgressStyle::with_template(
            "  {msg} [{bar:30}] {pos}/{len} tokens ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{} prefill", run.label()));
    if tokens < PREFILL_BAR_MIN_TOKENS {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// Runs every (policy, case) pair without a result, printing and saving each as it finishes.
fn run_missing(
    plan: &Plan,
    model_path: &Path,
    results: &mut HashMap<PasskeyRunKey, PasskeyRecord>,
    mut journal: Option<&mut Journal>,
) -> Result<()> {
    let missing = plan.missing(results);
    if missing == 0 {
        return Ok(());
    }
    setup_threads(plan.args.threads)?;
    let model =
        Model::load(model_path).with_context(|| format!("loading {}", model_path.display()))?;
    // Option values the policy itself rejects (e.g. streaming sinks ≥ budget) stop the run here.
    let facts = model_facts(&model);
    for run in &plan.runs {
        build_policy(&run.name, &run.options, facts)
            .with_context(|| format!("policy {}", run.label()))?;
    }
    let params = GenerateParams {
        max_tokens: plan.args.max_tokens,
        stop: Vec::new(),
        sampling: SamplingParams::default(), // temperature 0: greedy
    };
    let progress = MultiProgress::new();
    let overall = progress.add(ProgressBar::new(missing as u64));
    overall.set_style(
        ProgressStyle::with_template("passkey [{bar:30}] {pos}/{len} samples {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let label_width = plan
        .runs
        .iter()
        .map(|r| r.label().chars().count())
        .max()
        .unwrap_or(0);
    // Generation feeds back all but the last answer token, so a prompt this much shorter than
    // the length leaves the whole answer inside it: `full` at the trained context still fits.
    let answer_room = plan.args.max_tokens - 1;
    let count_tokens = |text: &str| model.tokenizer.encode(text, true, false).len() + answer_room;
    for case in &plan.cases {
        let pending: Vec<&PolicyRun> = plan
            .runs
            .iter()
            .filter(|r| !results.contains_key(&plan.key(r, case)))
            .collect();
        if pending.is_empty() {
            continue;
        }
        let cell = format!(
            "len {} depth {}% #{}",
            length_label(case.length),
            case.depth,
            case.sample
        );
        overall.set_message(cell);
        let sample = generate_sample(case, &count_tokens);
        let tokens = match &sample {
            Ok(sample) => model.tokenizer.encode(&sample.prompt, true, false),
            Err(_) => Vec::new(),
        };
        for run in pending {
            let outcome = match &sample {
                Ok(sample) => {
                    let bar = prefill_bar(&progress, run, tokens.len());
                    let outcome = run_sample(
                        &model,
                        run,
                        &tokens,
                        sample.passkey,
                        plan.metric,
                        &params,
                        &bar,
                    );
                    bar.finish_and_clear();
                    progress.remove(&bar);
                    outcome
                }
                Err(e) => failed_outcome(case.passkey(), e.to_string()),
            };
            let record = PasskeyRecord {
                key: plan.key(run, case),
                outcome,
            };
            if let Some(journal) = journal.as_deref_mut() {
                journal
                    .append(&record)
                    .context("saving a result (the samples saved before it are kept)")?;
            }
            progress.suspend(|| println!("{}", sample_row(run, label_width, &record)));
            overall.inc(1);
            results.insert(record.key.clone(), record);
        }
    }
    overall.finish_and_clear();
    Ok(())
}

/// `longctx passkey`.
pub fn run(args: &PasskeyArgs) -> Result<()> {
    if args.samples == 0 || args.samples > MAX_SAMPLES {
        bail!(
            "--samples must be between 1 and {MAX_SAMPLES}, got {}",
            args.samples
        );
    }
    if args.max_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    if args.lengths.is_empty() || args.depths.is_empty() {
        bail!("--lengths and --depths must each name at least one value");
    }
    let runs = policy_runs(&args.policies, &args.policy_opts)?;
    let mut cases = Vec::new();
    for &length in &args.lengths {
        for sample in 0..args.samples {
            for &depth in &args.depths {
                cases.push(PasskeyCase::new(length, depth, sample, args.seed)?);
            }
        }
    }
    let model_path = resolve_model(&args.model)?;
    let (model_name, model_id) = model_identity(&model_path)?;
    let metric = find_task(INFO.name)?.metric;
    let plan = Plan {
        args,
        metric,
        runs,
        cases,
        model_name,
        model_id,
    };

    let mut results = HashMap::new();
    let mut journal = match &args.out {
        Some(path) => Some(open_results(&plan, path, &mut results)?),
        None => None,
    };
    run_missing(&plan, &model_path, &mut results, journal.as_mut())?;
    print_tables(&plan, &results);
    if let Some(journal) = &journal {
        println!("\nresults: {}", journal.path().display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_depths_parse_or_explain() {
        assert_eq!(parse_length("4k"), Ok(4096));
        assert_eq!(parse_length("16K"), Ok(16384));
        assert_eq!(parse_length(" 512 "), Ok(512));
        assert!(parse_length("0").unwrap_err().contains("at least 1 token"));
        assert!(parse_length("0k").unwrap_err().contains("at least 1 token"));
        assert!(parse_length("4m").unwrap_err().contains("bad length '4m'"));
        assert!(parse_length("").is_err());
        assert!(parse_length("99999999999999999999k").is_err());
        assert!(parse_length("16384k").is_ok());
        assert!(parse_length("16385k")
            .unwrap_err()
            .contains("over the limit"));
        assert_eq!(parse_depth("0"), Ok(0));
        assert_eq!(parse_depth("100"), Ok(100));
        assert!(parse_depth("101").unwrap_err().contains("outside 0..=100"));
        assert!(parse_depth("-5").unwrap_err().contains("bad depth"));
        assert_eq!(length_label(2048), "2k");
        assert_eq!(length_label(1000), "1000");
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn policy_options_route_to_their_policies() {
        let runs = policy_runs(
            &names(&["full", "streaming"]),
            &names(&[
                "streaming:budget=1024,sinks=8",
                "chunk=256",
                "streaming:budget=512",
            ]),
        )
        .unwrap();
        assert_eq!(
            runs[0],
            PolicyRun {
                name: "full".into(),
                options: "chunk=256".into()
            }
        );
        assert_eq!(runs[1].options, "budget=512,chunk=256,sinks=8");
        assert_eq!(runs[1].label(), "streaming[budget=512,chunk=256,sinks=8]");
        assert_eq!(
            policy_runs(&names(&["full"]), &[]).unwrap()[0].label(),
            "full"
        );
    }

    #[test]
    fn bad_policies_are_named() {
        let err = |names_: &[&str], opts: &[&str]| {
            format!(
                "{:#}",
                policy_runs(&names(names_), &names(opts)).unwrap_err()
            )
        };
        assert!(err(&["full", "nope"], &[]).contains("unknown policy 'nope'"));
        assert!(err(&["full", "full"], &[]).contains("twice"));
        assert!(err(&["full"], &["streaming:budget=8"]).contains("not in --policy"));
        let e = err(&["full", "streaming"], &["budget=8"]);
        assert!(
            e.contains("unknown option 'budget'") && e.contains("full:budget=8"),
            "{e}"
        );
        assert!(err(&["full"], &["full:max_context"]).contains("key=value"));
    }
}
