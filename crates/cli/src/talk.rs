//! `generate`, `chat` and `ask`: the commands that talk to the model, all through the
//! backend's [`LocalBackend`] (the one road to the model), streamed to the terminal.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use longctx_backend::{
    local::gen_params, ChatRequest, Completion, CompletionRequest, Flow, LlmBackend, LocalBackend,
    Message, OnEvent, RunPlan, Sampling, StreamEvent,
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

/// The user message `ask` sends: the document, then the question.
pub fn ask_prompt(document: &str, question: &str) -> String {
    format!("{document}\n\nAnswer the question about the document above.\nQuestion: {question}")
}

pub fn ask(args: &ModelArgs, g: &GenArgs, file: &Path, question: &str) -> Result<()> {
    if question.trim().is_empty() {
        bail!("the question is empty");
    }
    let document = read_text(file)?;
    let sampling = sampling(g)?;
    let backend = open_backend(args)?;
    let req = ChatRequest {
        messages: vec![Message::user(ask_prompt(&document, question))],
        prefill: None,
        sampling,
        // Instruction-aware policies (citrus) score the document by the question's attention.
        instruction: Some(question.trim().to_string()),
    };
    stream_to_terminal(Announce::Plan, |on| backend.chat_stream(&req, on))
        .with_context(|| format!("answering about {}", file.display()))?;
    Ok(())
}
