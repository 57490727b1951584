//! `longctx passkey`: the passkey-retrieval benchmark (LM-Infinite variant, the registry's
//! `passkey` task) over a grid of policies × lengths × depths × samples, run through the bench
//! runner on a `LocalBackend` per policy into the SQLite results store.
//!
//! Every finished sample is printed as it finishes; a re-run with the same `--db` skips the
//! samples already stored, and the final tables are read back from the store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use longctx_backend::{catalog, LocalBackend};
use longctx_bench::runner::{
    plan_task, run_samples, BackendCounter, Event, PlanConfig, RunSettings,
};
use longctx_bench::store::Store;
use longctx_bench::{registry, Sample};
use longctx_engine::policy::{parse_options, PolicyError, REGISTRY};
use longctx_engine::Model;

use crate::bench::{
    cancel_on_ctrl_c, local_built, model_sha, run_record, size_global_pool, Built, RunKey,
    DEFAULT_DB,
};
use crate::commands::resolve_model;
use crate::speed::peak_rss_mib;

mod table;

use table::{grid_results, print_tables, sample_row};

/// Longest accepted `--lengths` value (16M tokens), far past any model's context.
const MAX_LENGTH: usize = 16 << 20;

/// Most `--samples` per cell.
const MAX_SAMPLES: u64 = 100_000;

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
    /// Results database (SQLite, shared with `bench run`): each sample is stored as it
    /// finishes, and samples already stored for the same configuration are skipped.
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Replaced by `--db`; kept only to say so.
    #[arg(long, value_name = "FILE.jsonl", hide = true)]
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

/// The model's file name (its id in the run records).
fn model_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Resets the kernel's peak-RSS counter (`VmHWM`) so the next reading covers one sample.
/// Best effort: Linux only, silently ignored elsewhere.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The grid's samples, generated by the registry's passkey task with the model's token counts.
fn plan(args: &PasskeyArgs, built: &Built) -> Result<Vec<Sample>> {
    let cfg = PlanConfig {
        lengths: args.lengths.clone(),
        depths: args.depths.clone(),
        samples: args.samples as usize,
        seed: args.seed,
        limit: None,
        data_root: None,
        skip_bad_lines: false,
        template_tokens: 0,
        raw_tokens: built.raw_tokens,
        max_new_tokens: Some(args.max_tokens),
    };
    let counter = BackendCounter::new(built.backend.as_ref());
    let planned = plan_task(registry::find("passkey")?, &cfg, &counter)?;
    if let Some(e) = counter.take_error() {
        bail!("counting tokens to build the prompts: {e}");
    }
    Ok(planned.samples)
}

/// Runs one policy's missing samples, printing each as it finishes; returns its run id.
fn run_policy(
    args: &PasskeyArgs,
    store: &mut Store,
    built: &Built,
    label: &str,
    label_width: usize,
    samples: &[Sample],
    cancel: &AtomicBool,
) -> Result<i64> {
    let key = RunKey {
        max_input: None,
        max_new_tokens: Some(args.max_tokens),
        seed: args.seed,
    };
    let config = serde_json::json!({
        "tasks": ["passkey"],
        "lengths": args.lengths,
        "depths": args.depths,
        "samples": args.samples,
        "command": "passkey",
        "threads": args.threads,
    });
    let run_id = store.begin_run(&run_record(built, &key, config))?;
    let settings = RunSettings {
        concurrency: 1,
        max_input_tokens: None,
    };
    let bar = ProgressBar::hidden();
    reset_peak_rss();
    let result = run_samples(
        built.backend.as_ref(),
        store,
        run_id,
        samples,
        &settings,
        cancel,
        |event| match event {
            Event::Start { to_run, skipped } => {
                if skipped > 0 {
                    eprintln!(
                    "{}: {label}: skipping {skipped} finished sample(s) of this grid, {to_run} to run",
                    args.db.display()
                );
                }
                bar.set_length(to_run as u64);
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "passkey [{bar:30}] {pos}/{len} samples {msg} (eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_message(label.to_string());
            }
            Event::Done(row) => {
                let rss = peak_rss_mib();
                reset_peak_rss();
                bar.suspend(|| println!("{}", sample_row(label, label_width, row, rss)));
                bar.inc(1);
            }
        },
    );
    bar.finish_and_clear();
    let status = match &result {
        Ok(o) if o.cancelled => "interrupted".to_string(),
        Ok(_) => "finished".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    store.end_run(run_id, &status)?;
    let outcome = result.with_context(|| {
        format!(
            "{label}: the samples finished before are stored in {}",
            args.db.display()
        )
    })?;
    if outcome.cancelled {
        bail!(
            "interrupted: finished samples are stored in {}; re-run the same command to continue",
            args.db.display()
        );
    }
    Ok(run_id)
}

/// Checks the flags that clap cannot.
fn check_args(args: &PasskeyArgs) -> Result<()> {
    if args.out.is_some() {
        bail!("--out (the JSONL journal) was replaced by --db: results go to the SQLite store (default {DEFAULT_DB}), and a re-run with the same --db skips finished samples");
    }
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
    Ok(())
}

/// `longctx passkey`.
pub fn run(args: &PasskeyArgs) -> Result<()> {
    check_args(args)?;
    let runs = policy_runs(&args.policies, &args.policy_opts)?;
    let mut store = Store::open(&args.db)?;
    let model_path = resolve_model(&args.model)?;
    let sha = model_sha(&args.model, &model_path)?;
    let name = model_name(&model_path);
    size_global_pool(args.threads);
    let model = Arc::new(
        Model::load(&model_path).with_context(|| format!("loading {}", model_path.display()))?,
    );
    // Option values a policy itself rejects (e.g. streaming sinks ≥ budget) stop here.
    let mut backends = Vec::new();
    for run in &runs {
        let backend = LocalBackend::new(model.clone(), name.clone(), &run.name, &run.options)
            .with_context(|| format!("policy {}", run.label()))?;
        backends.push(local_built(
            backend,
            sha.clone(),
            &run.name,
            &run.options,
            1,
        ));
    }
    let samples = plan(args, &backends[0])?;
    let label_width = runs
        .iter()
        .map(|r| r.label().chars().count())
        .max()
        .unwrap_or(0);
    let cancel = cancel_on_ctrl_c();
    let mut results = Vec::new();
    for (run, built) in runs.iter().zip(&backends) {
        let label = run.label();
        let run_id = run_policy(
            args,
            &mut store,
            built,
            &label,
            label_width,
            &samples,
            &cancel,
        )?;
        results.push(grid_results(&store, run_id, run.label(), &samples)?);
    }
    print_tables(args, &name, &results);
    println!("\nresults: {}", args.db.display());
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
