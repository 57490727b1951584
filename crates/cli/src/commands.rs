//! The subcommands: argument validation and calls into the engine.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use longctx_backend::catalog;
use longctx_engine::chat::{render_chat, ChatMessage};
use longctx_engine::gguf::GgufFile;
use longctx_engine::perplexity::{full_policy, perplexity as compute_ppl};
use longctx_engine::policy::{build_policy, CachePolicy, ModelFacts, REGISTRY};
use longctx_engine::sampling::SamplingParams;
use longctx_engine::{GenerateParams, Model, Session};

use crate::{GenArgs, ModelArgs};

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
    if let Ok(entry) = catalog::find(spec) {
        let path = catalog::local_path(entry);
        if !path.exists() {
            eprintln!(
                "model '{}' is not in {} yet; fetching it (once)...",
                entry.name,
                catalog::models_dir().display()
            );
            return catalog::pull(entry, |line| eprintln!("  {line}"))
                .with_context(|| format!("fetching model '{spec}'"));
        }
        return Ok(path);
    }
    let path = PathBuf::from(spec);
    if !path.exists() {
        bail!(
            "model '{spec}' is neither a catalogue name ({}) nor an existing file",
            catalog::CATALOG
                .iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(path)
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
    let facts = ModelFacts {
        n_layers: model.cfg.n_layers,
        context_length: model.cfg.context_length,
    };
    Ok(build_policy(name, options, facts)?)
}

/// The policy for commands whose input size is not known up front (`auto` = full).
pub fn make_policy(model: &Model, args: &ModelArgs) -> Result<Box<dyn CachePolicy>> {
    make_named_policy(model, &policy_name_for(model, args, 0), &args.policy_opt)
}

pub fn gen_params(g: &GenArgs) -> Result<GenerateParams> {
    if g.max_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    let sampling = SamplingParams {
        temperature: g.temperature,
        top_k: g.top_k,
        top_p: g.top_p,
        min_p: g.min_p,
        repeat_penalty: g.repeat_penalty,
        repeat_last_n: g.repeat_last_n,
        seed: g.seed,
    };
    sampling.validate()?;
    Ok(GenerateParams {
        max_tokens: g.max_tokens,
        stop: g.stop.clone(),
        sampling,
    })
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

fn special_text(model: &Model, id: Option<u32>) -> String {
    id.map(|t| model.tokenizer.decode(&[t], true))
        .unwrap_or_default()
}

/// Renders a chat with the model's template and tokenizes it (specials parsed, no extra BOS
/// when the template already wrote one).
pub fn chat_tokens(model: &Model, messages: &[ChatMessage]) -> Result<Vec<u32>> {
    let bos = special_text(model, model.tokenizer.bos());
    let eos = special_text(model, model.tokenizer.eos());
    let text = render_chat(model.chat_template.as_deref(), messages, true, &bos, &eos)?;
    let template_has_bos = !bos.is_empty() && text.starts_with(&bos);
    Ok(model.tokenizer.encode(&text, !template_has_bos, true))
}

fn stream_out(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_ok()
}

fn prefill_bar(n: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tokens ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    if n < 2048 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
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
    if c.layer_window.iter().any(Option::is_some) {
        let local = c.layer_window.iter().filter(|w| w.is_some()).count();
        println!(
            "sliding window  {:?} on {local} of {} layers",
            c.layer_window.iter().flatten().next(),
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
    println!(
        "tokenizer       {} ({} tokens, bos {:?}, eos {:?}, add_bos {})",
        model.tokenizer.kind(),
        model.tokenizer.vocab_size(),
        model.tokenizer.bos(),
        model.tokenizer.eos(),
        model.tokenizer.add_bos()
    );
    match &model.chat_template {
        Some(t) => println!("chat template   {} chars:\n{t}", t.len()),
        None => println!("chat template   none (ChatML fallback)"),
    }
    Ok(())
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

fn run_generation(
    session: &mut Session,
    prompt: &[u32],
    params: &GenerateParams,
) -> Result<String> {
    let bar = prefill_bar(prompt.len(), "reading");
    session.feed(prompt, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let g = session.generate(params, stream_out)?;
    println!();
    Ok(g.text)
}

pub fn generate(args: &ModelArgs, g: &GenArgs, chat: bool, prompt: &str) -> Result<()> {
    if prompt.is_empty() {
        bail!("the prompt is empty");
    }
    let params = gen_params(g)?;
    let model = load_model(args)?;
    let tokens = if chat {
        chat_tokens(&model, &[ChatMessage::new("user", prompt)])?
    } else {
        model.tokenizer.encode(prompt, true, false)
    };
    let mut session = Session::new(&model, make_policy(&model, args)?);
    run_generation(&mut session, &tokens, &params)?;
    Ok(())
}

pub fn chat(args: &ModelArgs, g: &GenArgs, system: Option<&str>) -> Result<()> {
    let params = gen_params(g)?;
    let model = load_model(args)?;
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(ChatMessage::new("system", s));
    }
    let mut session = Session::new(&model, make_policy(&model, args)?);
    eprintln!(
        "chatting with {} (policy {}); empty line or Ctrl-D to quit",
        args.model,
        session.policy_name()
    );
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        messages.push(ChatMessage::new("user", line.trim_end()));
        let tokens = chat_tokens(&model, &messages)?;
        // Reuse the cache when the new prompt extends what the session has seen.
        let seen = session.tokens();
        if !(tokens.len() > seen.len() && tokens.starts_with(seen)) {
            session = Session::new(&model, make_policy(&model, args)?);
        }
        let new = tokens[session.tokens().len()..].to_vec();
        let reply = run_generation(&mut session, &new, &params)?;
        messages.push(ChatMessage::new("assistant", &reply));
    }
    Ok(())
}

pub fn ask(args: &ModelArgs, g: &GenArgs, file: &Path, question: &str) -> Result<()> {
    if question.trim().is_empty() {
        bail!("the question is empty");
    }
    let document = read_text(file)?;
    let params = gen_params(g)?;
    let model = load_model(args)?;
    let content = format!(
        "{document}\n\nAnswer the question about the document above.\nQuestion: {question}"
    );
    let tokens = chat_tokens(&model, &[ChatMessage::new("user", &content)])?;
    let limit = model.cfg.context_length;
    let needed = tokens.len() + params.max_tokens;
    let policy = policy_name_for(&model, args, needed);
    if needed > limit && policy == "full" {
        bail!(
            "{} is {} tokens with the question; with room for {} answer tokens that exceeds the model's \
             trained context of {limit} tokens. Use a shorter document or a long-context policy \
             (--policy auto picks one).",
            file.display(),
            tokens.len(),
            params.max_tokens
        );
    }
    let why = if args.policy == "auto" && policy != "full" {
        format!(" (auto: the document exceeds the {limit}-token trained context)")
    } else {
        String::new()
    };
    eprintln!("[{} tokens, policy {policy}{why}]", tokens.len());
    let mut session = Session::new(
        &model,
        make_named_policy(&model, &policy, &args.policy_opt)?,
    );
    // Instruction-aware policies (citrus) score the document by the question's attention.
    let question_tokens = model.tokenizer.encode(question.trim(), false, false);
    session.set_instruction(&question_tokens);
    run_generation(&mut session, &tokens, &params)?;
    Ok(())
}

pub fn perplexity(args: &ModelArgs, file: &Path, ctx: usize) -> Result<()> {
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
