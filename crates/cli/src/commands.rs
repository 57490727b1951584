//! The model-management and engine-level subcommands (`model`, `policies`, `perplexity`) and
//! the argument checks every command shares; the commands that talk to a model live in
//! `talk.rs`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use longctx_backend::catalog;
use longctx_engine::gguf::GgufFile;
use longctx_engine::perplexity::{full_policy, perplexity as compute_ppl};
use longctx_engine::policy::{build_policy, CachePolicy, REGISTRY};
use longctx_engine::tokenizer::Tokenizer;
use longctx_engine::Model;

use crate::ModelArgs;

/// Checks a `--threads` value.
pub fn setup_threads(threads: Option<usize>) -> Result<()> {
    if let Some(t) = threads {
        if t == 0 || t > 1024 {
            bail!("--threads must be between 1 and 1024, got {t}");
        }
    }
    Ok(())
}

/// The worker pool every command runs in (`threads` workers, default: all cores).
pub fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    setup_threads(threads)?;
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        builder = builder.num_threads(t);
    }
    builder.build().context("starting the thread pool")
}

/// A catalogue name (fetched on first use) or a path.
pub fn resolve_model(spec: &str) -> Result<PathBuf> {
    catalog::resolve(spec, |line| eprintln!("  {line}"))
        .with_context(|| format!("finding model '{spec}'"))
}

pub fn load_model(args: &ModelArgs) -> Result<Model> {
    setup_threads(args.threads)?;
    let path = resolve_model(&args.model)?;
    Model::load(&path).with_context(|| format!("loading {}", path.display()))
}

/// The policy name `--policy` means for an input of `needed` tokens (resolving `auto`).
pub fn policy_name_for(model: &Model, args: &ModelArgs, needed: usize) -> String {
    resolve_policy(&args.policy, model.cfg.context_length, needed)
}

/// `auto` → `full` when the input fits, else a long-context policy (the engine's rule).
pub use longctx_engine::policy::resolve_policy;

pub fn make_named_policy(model: &Model, name: &str, options: &str) -> Result<Box<dyn CachePolicy>> {
    let facts = model.policy_facts();
    Ok(build_policy(name, options, facts)?)
}

/// The policy for commands whose input size is not known up front (`auto` = full).
pub fn make_policy(model: &Model, args: &ModelArgs) -> Result<Box<dyn CachePolicy>> {
    make_named_policy(model, &policy_name_for(model, args, 0), &args.policy_opt)
}

/// Reads a UTF-8 text file, naming the file and byte offset of any invalid UTF-8.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match String::from_utf8(bytes) {
        Ok(s) if s.trim().is_empty() => bail!("{} is empty", path.display()),
        Ok(s) => Ok(s),
        Err(e) => bail!(
            "{} is not valid UTF-8 (first bad byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ),
    }
}

pub fn model_pull(name: &str) -> Result<()> {
    let entry = catalog::find(name)?;
    let path = catalog::pull(entry, |line| eprintln!("{line}"))?;
    println!("{}", path.display());
    Ok(())
}

pub fn model_list() -> Result<()> {
    println!("{:<22} {:<8} DESCRIPTION", "NAME", "PRESENT");
    for m in catalog::CATALOG {
        let present = if catalog::local_path(m).exists() {
            "yes"
        } else {
            "no"
        };
        println!("{:<22} {:<8} {}", m.name, present, m.summary);
    }
    println!("\nmodels directory: {}", catalog::models_dir().display());
    Ok(())
}

pub fn model_info(spec: &str) -> Result<()> {
    let path = resolve_model(spec)?;
    let file = std::sync::Arc::new(
        GgufFile::open(&path).with_context(|| format!("reading {}", path.display()))?,
    );
    let mut types: std::collections::BTreeMap<&str, usize> = Default::default();
    for t in file.tensors() {
        *types.entry(t.ty.name()).or_default() += 1;
    }
    let model = Model::from_gguf(file.clone())?;
    let c = &model.cfg;
    println!("file            {}", path.display());
    println!("architecture    {}", c.arch.name());
    if let Ok(Some(name)) = file.get_str("general.name") {
        println!("name            {name}");
    }
    println!("context length  {}", c.context_length);
    println!("layers          {}", c.n_layers);
    println!("embedding       {}", c.n_embd);
    println!(
        "heads           {} query / {} key-value, head dim {}",
        c.n_heads, c.n_kv_heads, c.head_dim
    );
    println!("feed-forward    {}", c.n_ff);
    if let Some(window) = c.layer_window.iter().flatten().next() {
        let local = c.layer_window.iter().filter(|w| w.is_some()).count();
        println!(
            "sliding window  {window} tokens on {local} of {} layers",
            c.n_layers
        );
    }
    println!(
        "rope            base {} (neox: {})",
        c.rope[c.n_layers - 1].base,
        c.rope[0].neox
    );
    let types: Vec<String> = types.iter().map(|(t, n)| format!("{t}×{n}")).collect();
    println!("tensor types    {}", types.join(", "));
    let tok = &model.tokenizer;
    println!(
        "tokenizer       {} ({} tokens; bos {}, eos {}; BOS {}added to prompts)",
        tok.kind(),
        tok.vocab_size(),
        special(tok, tok.bos()),
        special(tok, tok.eos()),
        if tok.add_bos() { "" } else { "not " }
    );
    match &model.chat_template {
        Some(t) => println!("chat template   {} chars:\n{t}", t.len()),
        None => println!("chat template   none (ChatML fallback)"),
    }
    Ok(())
}

/// A special token as a user reads it: `1 (<|im_start|>)`, or `none`.
fn special(tok: &Tokenizer, id: Option<u32>) -> String {
    match id {
        Some(id) => format!("{id} ({})", tok.decode(&[id], true)),
        None => "none".into(),
    }
}

pub fn policies() -> Result<()> {
    for p in REGISTRY {
        println!("{:<12} {}", p.name, p.summary);
        for o in p.options {
            println!("    {:<14} default {:<24} {}", o.name, o.default, o.help);
        }
    }
    Ok(())
}

pub fn perplexity(args: &ModelArgs, file: &Path, ctx: usize) -> Result<()> {
    // The second half of each chunk is scored, so a chunk needs at least two tokens.
    if ctx < 2 {
        bail!("--ctx must be at least 2 tokens, got {ctx}");
    }
    let text = read_text(file)?;
    let model = load_model(args)?;
    let policy = policy_name_for(&model, args, ctx);
    if ctx > model.cfg.context_length && policy == "full" {
        bail!(
            "--ctx {ctx} exceeds the model's trained context {} under full attention; \
             pick a long-context --policy",
            model.cfg.context_length
        );
    }
    // Validate the policy once up front, then build a fresh one per chunk.
    make_named_policy(&model, &policy, &args.policy_opt)?;
    let tokens = model.tokenizer.encode(&text, true, false);
    eprintln!(
        "{} tokens, {} chunks of {ctx}",
        tokens.len(),
        tokens.len() / ctx
    );
    let bar = ProgressBar::new((tokens.len() / ctx) as u64);
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] {pos}/{len} chunks {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let full = full_policy(ctx);
    let named = || make_named_policy(&model, &policy, &args.policy_opt).expect("validated above");
    let factory: &dyn Fn() -> Box<dyn CachePolicy> =
        if policy == "full" && args.policy_opt.is_empty() {
            &full
        } else {
            &named
        };
    let result = compute_ppl(&model, &tokens, ctx, factory, |e| {
        bar.set_position(e.chunks_done as u64);
        bar.set_message(format!("PPL {:.4}", e.ppl));
        bar.suspend(|| eprintln!("[{}] {:.4}", e.chunks_done, e.ppl));
    })?;
    bar.finish_and_clear();
    println!(
        "Final estimate: PPL = {:.4} +/- {:.5}  ({} tokens scored, {} chunks, ctx {ctx})",
        result.ppl, result.error, result.count, result.chunks_total
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::resolve_policy;

    #[test]
    fn auto_switches_to_infllm_only_past_the_trained_context() {
        assert_eq!(resolve_policy("auto", 8192, 8192), "full");
        assert_eq!(resolve_policy("auto", 8192, 8193), "infllm");
        assert_eq!(resolve_policy("streaming", 8192, 100_000), "streaming");
        assert_eq!(resolve_policy("full", 8192, 100_000), "full");
    }
}
