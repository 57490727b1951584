//! `generate`, `chat`, `ask` and `methods`: the commands that talk to the model, all through
//! the backend's [`LocalBackend`] (the one road to the model), streamed to the terminal;
//! `ask` reads through a method of `longctx-pipelines`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use longctx_backend::{
    local::gen_params, ChatRequest, Completion, CompletionRequest, Flow, LlmBackend, LocalBackend,
    Message, OnEvent, RunPlan, Sampling, StreamEvent,
};
use longctx_pipelines::{
    find_method, resolve_method, run_method, Document, Options, Progress, Query, Trace,
    AUTO_LONG_METHOD, METHODS,
};

use crate::commands::{read_text, setup_threads};
use crate::progress::PrefillProgress;
use crate::{GenArgs, ModelArgs};

/// The backend of a model command: the model resolved (fetched on first use) and loaded, the
/// policy and its options checked.
pub fn open_backend(args: &ModelArgs) -> Result<LocalBackend> {
    setup_threads(args.threads)?;
    Ok(LocalBackend::open(
        &args.model,
        &args.policy,
        &args.policy_opt,
        |line| eprintln!("  {line}"),
    )?)
}

/// The request's sampling settings from the command line, checked.
pub fn sampling(g: &GenArgs) -> Result<Sampling> {
    if g.max_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    let s = Sampling {
        temperature: g.temperature,
        top_p: g.top_p,
        top_k: (g.top_k > 0).then(|| u32::try_from(g.top_k).unwrap_or(u32::MAX)),
        max_tokens: g.max_tokens,
        stop: g.stop.clone(),
        seed: Some(g.seed),
        repeat_penalty: Some(g.repeat_penalty),
        repeat_last_n: Some(g.repeat_last_n),
        min_p: Some(g.min_p),
    };
    gen_params(&s)?;
    Ok(s)
}

/// What the terminal shows of a request besides the answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Announce {
    /// Only notes that change what the user gets (a capped answer budget).
    Notes,
    /// Also the prompt size and the policy that runs (`ask`).
    Plan,
}

fn announce(plan: &RunPlan, how: Announce) {
    if how == Announce::Plan {
        let policy = plan.policy.as_deref().unwrap_or("?");
        let why = plan
            .policy_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        eprintln!("[{} tokens, policy {policy}{why}]", plan.prompt_tokens);
    }
    if let Some(asked) = plan.capped_from {
        eprintln!(
            "[answer budget capped at {} tokens (asked for {asked}): that is what full attention \
             can still generate after the prompt; pick a long-context --policy for more]",
            plan.max_tokens
        );
    }
}

/// Runs one streamed request, printing its text as it comes and prefill progress on stderr.
fn stream_to_terminal(
    how: Announce,
    run: impl FnOnce(&mut OnEvent<'_>) -> longctx_backend::Result<Completion>,
) -> Result<Completion> {
    let mut progress = PrefillProgress::new("reading");
    let mut out = std::io::stdout().lock();
    let result = run(&mut |event| {
        match event {
            StreamEvent::Started(plan) => {
                announce(plan, how);
                if let Some(p) = &plan.policy {
                    progress = PrefillProgress::new(format!("reading ({p})"));
                }
            }
            StreamEvent::Prefill { done, total } => progress.update(done, total),
            StreamEvent::Text(text) => {
                progress.finish();
                // A closed stdout (e.g. `| head`) stops the generation.
                if out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    return Flow::Stop;
                }
            }
        }
        Flow::Continue
    });
    progress.finish();
    let completion = result?;
    let _ = writeln!(out);
    Ok(completion)
}

pub fn generate(args: &ModelArgs, g: &GenArgs, chat: bool, prompt: &str) -> Result<()> {
    if prompt.is_empty() {
        bail!("the prompt is empty");
    }
    let sampling = sampling(g)?;
    let backend = open_backend(args)?;
    if chat {
        let req = ChatRequest::user(prompt, sampling);
        stream_to_terminal(Announce::Notes, |on| backend.chat_stream(&req, on))?;
    } else {
        let req = CompletionRequest {
            prompt: prompt.to_string(),
            sampling,
        };
        stream_to_terminal(Announce::Notes, |on| backend.complete_stream(&req, on))?;
    }
    Ok(())
}

pub fn chat(args: &ModelArgs, g: &GenArgs, system: Option<&str>) -> Result<()> {
    let sampling = sampling(g)?;
    // Each turn reads only the new message: the last turn's session is kept.
    let backend = open_backend(args)?.with_prefix_cache(true);
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(Message::system(s));
    }
    eprintln!(
        "chatting with {} (policy {}); empty line or Ctrl-D to quit",
        args.model, args.policy
    );
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        messages.push(Message::user(line.trim_end()));
        let req = ChatRequest {
            messages: messages.clone(),
            prefill: None,
            sampling: sampling.clone(),
            instruction: None,
        };
        let reply = stream_to_terminal(Announce::Notes, |on| backend.chat_stream(&req, on))?;
        messages.push(Message::assistant(reply.text));
    }
    Ok(())
}

/// How `ask` reads the documents.
#[derive(clap::Args, Clone, Debug)]
pub struct ReadingArgs {
    /// Reading method (see `longctx methods`); `auto` = `direct` when the documents fit the
    /// model's window, else a method that reads them in pieces.
    #[arg(long, default_value = "auto")]
    pub method: String,
    /// Method options, `key=value,key=value`.
    #[arg(long = "method-opt", default_value = "")]
    pub method_opt: String,
    /// Write every intermediate step (chunks, map outputs, memories, retrieved units) to this
    /// JSON file.
    #[arg(long)]
    pub trace: Option<std::path::PathBuf>,
}

pub fn methods() -> Result<()> {
    for m in METHODS {
        println!("{:<12} {}", m.name, m.summary);
        for o in m.options {
            println!("    {:<14} default {:<10} {}", o.name, o.default, o.help);
        }
    }
    println!(
        "{:<12} direct when the documents fit the model's window, else {AUTO_LONG_METHOD}",
        "auto"
    );
    Ok(())
}

pub fn ask(
    args: &ModelArgs,
    g: &GenArgs,
    reading: &ReadingArgs,
    files: &[PathBuf],
    question: &str,
) -> Result<()> {
    if question.trim().is_empty() {
        bail!("the question is empty");
    }
    let mut documents = Vec::new();
    for f in files {
        documents.push(Document {
            name: f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            text: read_text(f)?,
        });
    }
    find_method_or_auto(&reading.method)?;
    let sampling = sampling(g)?;
    let backend = open_backend(args)?;
    let query = Query {
        documents,
        question: question.trim().to_string(),
        sampling,
    };
    // A KV policy named on the command line reads the whole document: `auto` then means
    // `direct` (the policy is what the user chose to handle the length).
    let requested = if reading.method == "auto" && args.policy != "auto" {
        "direct"
    } else {
        reading.method.as_str()
    };
    let method = resolve_method(requested, &backend, &query)?;
    // Options are checked before any model call.
    Options::parse(find_method(method)?, &reading.method_opt)?;
    if method != "direct" || reading.method != "auto" {
        let why = if requested == "auto" {
            " (auto: the documents do not fit the model's window in one call)"
        } else {
            ""
        };
        eprintln!("[method {method}{why}]");
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let answer = if method == "direct" {
        // One call: stream it with the policy and prefill progress as `ask` always showed.
        let req = ChatRequest {
            messages: vec![Message::user(longctx_pipelines::direct_prompt(&query))],
            prefill: None,
            sampling: query.sampling.clone(),
            // Instruction-aware policies (citrus) score the document by the question's attention.
            instruction: Some(query.question.clone()),
        };
        let c = stream_to_terminal(Announce::Plan, |on| backend.chat_stream(&req, on))
            .with_context(|| format!("answering about {}", names.join(", ")))?;
        let mut trace = Trace {
            method: "direct".into(),
            ..Trace::default()
        };
        trace.push(
            "answer",
            0,
            Some(c.prompt_tokens),
            &c.text,
            serde_json::Value::Null,
        );
        trace
    } else {
        run_pipeline(&backend, method, &reading.method_opt, &query)
            .with_context(|| format!("answering about {}", names.join(", ")))?
    };
    if let Some(path) = &reading.trace {
        let json = serde_json::to_string_pretty(&answer)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("[trace written to {}]", path.display());
    }
    Ok(())
}

/// The method named on the command line (`None` for `auto`), checked before the model loads.
fn find_method_or_auto(name: &str) -> Result<()> {
    if name != "auto" {
        find_method(name)?;
    }
    Ok(())
}

/// Runs a multi-call method, showing its steps on stderr and streaming the final answer.
fn run_pipeline(
    backend: &LocalBackend,
    method: &str,
    options: &str,
    query: &Query,
) -> Result<Trace> {
    let mut out = std::io::stdout().lock();
    let mut last_line = std::time::Instant::now();
    let started = std::time::Instant::now();
    let answer = run_method(method, options, backend, query, &mut |p| match p {
        Progress::Step { phase, done, total } => {
            if done == total || last_line.elapsed().as_secs() >= 1 {
                last_line = std::time::Instant::now();
                eprintln!(
                    "[{phase} {done}/{total}, {:.0} s]",
                    started.elapsed().as_secs_f64()
                );
            }
            true
        }
        Progress::AnswerText(t) => out
            .write_all(t.as_bytes())
            .and_then(|_| out.flush())
            .is_ok(),
    })?;
    let _ = writeln!(out);
    eprintln!(
        "[{} calls, {} prompt + {} generated tokens, {:.0} s]",
        answer.calls,
        answer.prompt_tokens,
        answer.completion_tokens,
        started.elapsed().as_secs_f64()
    );
    Ok(answer.trace)
}
