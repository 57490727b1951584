//! `bench-speed`: prefill and decode throughput in llama-bench's format, plus peak RSS.

use std::time::Instant;

use anyhow::{bail, Result};
use longctx_engine::kv::KvStore;
use longctx_engine::model::{LogitsWanted, Workspace};
use longctx_engine::sampling::argmax;
use longctx_engine::Session;

/// How the cache is filled to `--depth` before the decode test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DepthFill {
    /// Prefill `depth` real tokens (what every policy needs).
    Real,
    /// Full attention only: prefill up to 2048 tokens and repeat their keys and values up to
    /// `depth`. Full attention's decode cost depends only on the number of cached keys, and
    /// this skips an O(depth²) prefill that takes tens of minutes at 32k on two cores.
    Tiled,
}

/// Real tokens prefilled before tiling.
const TILE_SOURCE: usize = 2048;

/// Grows every layer's cache to `depth` slots by repeating the slots already there, at new
/// positions after them. The values are meaningless; the cost of attending to them is not.
fn tile_cache(kv: &mut KvStore, depth: usize) {
    let have = kv.len();
    if have == 0 || depth <= have {
        return;
    }
    let (n_kv, d) = (kv.n_kv_heads(), kv.head_dim());
    let mut k_rows = Vec::new();
    let mut v_rows = Vec::new();
    let mut done = have;
    while done < depth {
        let n = (depth - done).min(have);
        kv.begin_chunk((done..done + n).map(|p| p as i64));
        for il in 0..kv.n_layers() {
            let layer = kv.layer(il);
            k_rows.clear();
            v_rows.clear();
            for t in 0..n {
                for h in 0..n_kv {
                    k_rows.extend_from_slice(&layer.k[h][t * d..(t + 1) * d]);
                    v_rows.extend_from_slice(&layer.v[h][t * d..(t + 1) * d]);
                }
            }
            kv.append(il, &k_rows, &k_rows, &v_rows, n);
        }
        kv.end_chunk();
        done += n;
    }
}

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

/// The whole `bench-speed` table in llama-bench's test order (prefill tests, then decode).
/// Kept as one function (about 120 lines) so the timed sections read top to bottom in the
/// order the table prints them.
pub fn bench_speed(
    args: &ModelArgs,
    prompts: &[usize],
    n_gen: usize,
    depth: usize,
    fill: DepthFill,
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
        let mut policy = make_policy(&model, args)?;
        let mut kv = model.new_kv(policy.as_ref());
        let mut ws = Workspace::default();
        let real = match fill {
            DepthFill::Real => depth.max(1),
            DepthFill::Tiled => {
                if policy.name() != "full" {
                    bail!(
                        "--fill tiled only suits full attention, whose decode cost depends only on \
                         how many keys are cached; policy '{}' needs the real stream (--fill real)",
                        policy.name()
                    );
                }
                depth.clamp(1, TILE_SOURCE)
            }
        };
        // One prefill, then warm-up and timed decode runs on the same cache (the cache grows
        // by n_gen per run, negligible next to the depth).
        let prefix = bench_tokens(real, vocab, 7);
        let t0 = Instant::now();
        let mut pos = 0i64;
        for piece in prefix.chunks(policy.chunk_size().max(1)) {
            model.forward(
                piece,
                pos,
                &mut kv,
                policy.as_mut(),
                LogitsWanted::Last,
                &mut ws,
            )?;
            pos += piece.len() as i64;
        }
        let prefill_s = t0.elapsed().as_secs_f64();
        if depth > real {
            tile_cache(&mut kv, depth);
            pos = depth as i64;
        }
        let mut rates = Vec::new();
        for rep in 0..=reps {
            let t0 = Instant::now();
            for _ in 0..n_gen {
                let next = argmax(&ws.logits).unwrap_or(0);
                model.forward(
                    &[next],
                    pos,
                    &mut kv,
                    policy.as_mut(),
                    LogitsWanted::Last,
                    &mut ws,
                )?;
                pos += 1;
            }
            let dt = t0.elapsed().as_secs_f64();
            if rep > 0 {
                rates.push(n_gen as f64 / dt);
            }
        }
        let test = match (depth > 0, depth > real) {
            (false, _) => format!("tg{n_gen}"),
            (true, false) => format!("tg{n_gen} @ d{depth}"),
            (true, true) => format!("tg{n_gen} @ d{depth} (tiled)"),
        };
        row(test, &rates);
        if depth > 0 {
            println!(
                "\ndepth {depth}: prefill of {real} tokens took {prefill_s:.1} s{}; KV store {} slots, {:.1} MiB",
                if depth > real { ", the rest tiled from it (timing only)" } else { "" },
                kv.len(),
                kv.bytes() as f64 / (1024.0 * 1024.0)
            );
        }
    }
    if let Some(rss) = peak_rss_mib() {
        println!("\npeak RSS: {rss:.1} MiB");
    }
    Ok(())
}
