//! `bench-speed`: prefill and decode throughput in llama-bench's format, plus peak RSS.

use std::time::Instant;

use anyhow::{bail, Result};
use longctx_engine::sampling::argmax;
use longctx_engine::Session;

use crate::commands::{load_model, make_policy};
use crate::ModelArgs;

/// Peak resident set size of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Deterministic pseudo-text token ids (llama-bench also times random tokens).
fn bench_tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % (vocab as u64 - 1)) as u32 + 1
        })
        .collect()
}

pub fn bench_speed(
    args: &ModelArgs,
    prompts: &[usize],
    n_gen: usize,
    depth: usize,
    reps: usize,
) -> Result<()> {
    if reps == 0 || reps > 100 {
        bail!("--reps must be between 1 and 100");
    }
    if prompts.contains(&0) {
        bail!("prompt lengths must be positive");
    }
    let model = load_model(args)?;
    let vocab = model.vocab_size();
    let threads = rayon::current_num_threads();
    let model_name = std::path::Path::new(&args.model)
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let policy = crate::commands::make_policy(&model, args)?.name();
    println!("| model | arch | policy | threads | test | t/s |");
    println!("| --- | --- | --- | ---: | ---: | ---: |");
    let row = |test: String, rates: &[f64]| {
        let (m, s) = mean_std(rates);
        println!(
            "| {model_name} | {} | {} | {threads} | {test} | {m:.2} ± {s:.2} |",
            model.cfg.arch.name(),
            policy
        );
    };
    for &p in prompts {
        let tokens = bench_tokens(p, vocab, p as u64);
        let mut rates = Vec::new();
        // One warm-up run, then the timed repetitions.
        for rep in 0..=reps {
            let mut session = Session::new(&model, make_policy(&model, args)?);
            let t0 = Instant::now();
            session.feed(&tokens, |_| {})?;
            let dt = t0.elapsed().as_secs_f64();
            if rep > 0 {
                rates.push(p as f64 / dt);
            }
        }
        row(format!("pp{p}"), &rates);
    }
    if n_gen > 0 {
        let prefix = bench_tokens(depth.max(1), vocab, 7);
        let mut rates = Vec::new();
        for rep in 0..=reps {
            let mut session = Session::new(&model, make_policy(&model, args)?);
            session.feed(&prefix, |_| {})?;
            let t0 = Instant::now();
            for _ in 0..n_gen {
                let next = argmax(session.last_logits()).unwrap_or(0);
                session.feed(&[next], |_| {})?;
            }
            let dt = t0.elapsed().as_secs_f64();
            if rep > 0 {
                rates.push(n_gen as f64 / dt);
            }
        }
        let test = if depth > 0 {
            format!("tg{n_gen} @ d{depth}")
        } else {
            format!("tg{n_gen}")
        };
        row(test, &rates);
    }
    if let Some(rss) = peak_rss_mib() {
        println!("\npeak RSS: {rss:.1} MiB");
    }
    Ok(())
}
