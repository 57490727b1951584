//! longctx-pipelines: reading methods that answer questions about documents far longer than
//! a model's window, over any [`LlmBackend`] (the local engine with any KV policy, or
//! OpenAI-compatible servers): `direct`, `mapreduce` (LLM×MapReduce), `memagent` (MemAgent)
//! and `rag` (LongRAG-style BM25 retrieval).
//!
//! [`METHODS`] is the one registry: each entry carries its name, summary, options with
//! defaults and its runner. A run reports progress through a callback that can stop it, and
//! leaves a [`Trace`] of every intermediate step.

mod bm25;
mod chunk;
mod direct;
mod mapreduce;
mod memagent;
mod options;
mod rag;
mod trace;

use longctx_backend::{BackendError, LlmBackend, Sampling};

pub use bm25::Bm25;
pub use chunk::{split_units, Chunker};
pub use direct::{prompt as direct_prompt, prompt_for as ask_prompt};
pub use mapreduce::map_prompt as mapreduce_map_prompt;
pub use options::{MethodOption, Options};
pub use trace::{Trace, TraceStep};

/// Errors from a reading method.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("unknown method '{name}' (known: {known})")]
    UnknownMethod { name: String, known: String },
    #[error("method '{method}': unknown option '{option}' (options: {known})")]
    UnknownOption {
        method: &'static str,
        option: String,
        known: String,
    },
    #[error("method '{method}': option {option}={value}: {why}")]
    BadOption {
        method: &'static str,
        option: String,
        value: String,
        why: String,
    },
    #[error("no document to read (give at least one non-empty document)")]
    NoDocument,
    #[error("the question is empty")]
    EmptyQuestion,
    #[error("{method}: the backend's window ({window} tokens) leaves no room for a chunk after the prompt ({overhead} tokens) and the answer budget")]
    WindowTooSmall {
        method: &'static str,
        window: usize,
        overhead: usize,
    },
    #[error("{step}: {source}")]
    Backend {
        step: String,
        #[source]
        source: BackendError,
    },
    #[error("stopped by the caller")]
    Cancelled,
}

impl PipelineError {
    fn at(step: impl Into<String>) -> impl FnOnce(BackendError) -> PipelineError {
        let step = step.into();
        move |source| match source {
            BackendError::Cancelled => PipelineError::Cancelled,
            source => PipelineError::Backend { step, source },
        }
    }
}

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

/// One document to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// How the document is named to the model and in traces (a file name).
    pub name: String,
    pub text: String,
}

/// A question about some documents.
#[derive(Clone, Debug)]
pub struct Query {
    pub documents: Vec<Document>,
    pub question: String,
    /// Sampling of the final answer (`max_tokens` is its budget); intermediate calls use the
    /// same temperature and seed with their own budgets.
    pub sampling: Sampling,
}

impl Query {
    /// The documents as one text, each under a `Document: NAME` line when there are several.
    pub fn joined_text(&self) -> String {
        if self.documents.len() == 1 {
            return self.documents[0].text.clone();
        }
        self.documents
            .iter()
            .map(|d| format!("Document: {}\n{}", d.name, d.text.trim_end()))
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    fn check(&self) -> Result<()> {
        if self.question.trim().is_empty() {
            return Err(PipelineError::EmptyQuestion);
        }
        if self.documents.iter().all(|d| d.text.trim().is_empty()) {
            return Err(PipelineError::NoDocument);
        }
        Ok(())
    }
}

/// What a method reports while it works; the callback's `false` stops the run.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress<'a> {
    /// A step of `total` (e.g. `map` 3 of 12) finished.
    Step {
        phase: &'static str,
        done: usize,
        total: usize,
    },
    /// Text of the final answer as it is generated.
    AnswerText(&'a str),
}

/// The result of a method.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub text: String,
    /// Model calls made.
    pub calls: usize,
    /// Prompt and generated tokens over every call.
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub trace: Trace,
}

/// The environment a method runs in.
pub struct Run<'a> {
    pub backend: &'a dyn LlmBackend,
    pub query: &'a Query,
    pub options: &'a Options,
    progress: &'a mut dyn FnMut(Progress<'_>) -> bool,
    answer: Answer,
}

/// Signature of a method's runner.
pub type RunFn = fn(&mut Run<'_>) -> Result<String>;

/// A registry entry.
pub struct MethodInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub options: &'static [MethodOption],
    pub run: RunFn,
}

/// Every reading method, in the order `longctx methods` lists them.
pub const METHODS: &[MethodInfo] = &[direct::INFO, mapreduce::INFO, memagent::INFO, rag::INFO];

/// The method `auto` picks for a document that does not fit the reading window: measured on
/// the needle probe (`tools/needle-probe`, ~16k-token prose, SmolLM2-135M), `rag` answered
/// 12 of 18 where `direct` through `infllm`, `mapreduce` and `memagent` missed the cases
/// they were tried on (see the README's reading-methods table).
pub const AUTO_LONG_METHOD: &str = "rag";

/// Looks a method up by name.
pub fn find_method(name: &str) -> Result<&'static MethodInfo> {
    METHODS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| PipelineError::UnknownMethod {
            name: name.to_string(),
            known: METHODS
                .iter()
                .map(|m| m.name)
                .chain(["auto"])
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// `auto` → `direct` when the documents, question and answer fit the backend's reading
/// window in one call, else [`AUTO_LONG_METHOD`]; any other name is returned as is.
pub fn resolve_method(name: &str, backend: &dyn LlmBackend, query: &Query) -> Result<&'static str> {
    if name != "auto" {
        return Ok(find_method(name)?.name);
    }
    let Some(window) = backend.reading_window() else {
        return Ok("direct");
    };
    let text = direct::prompt(query);
    let tokens = backend
        .count_tokens(&text)
        .map_err(PipelineError::at("counting the document's tokens"))?;
    // The chat template adds a few dozen tokens; keep a margin for it.
    let fits = tokens + query.sampling.max_tokens + 64 <= window;
    Ok(if fits { "direct" } else { AUTO_LONG_METHOD })
}

/// Runs method `name` (`auto` resolved) with `options` (`key=value,...`).
pub fn run_method(
    name: &str,
    options: &str,
    backend: &dyn LlmBackend,
    query: &Query,
    progress: &mut dyn FnMut(Progress<'_>) -> bool,
) -> Result<Answer> {
    query.check()?;
    let name = resolve_method(name, backend, query)?;
    let info = find_method(name)?;
    let options = Options::parse(info, options)?;
    let mut run = Run {
        backend,
        query,
        options: &options,
        progress,
        answer: Answer::default(),
    };
    run.answer.trace.method = info.name.to_string();
    run.answer.trace.options = options.describe();
    let text = (info.run)(&mut run)?;
    let mut answer = run.answer;
    answer.text = text.trim().to_string();
    Ok(answer)
}

impl Run<'_> {
    /// Reports a finished step; `Err(Cancelled)` when the caller stops the run.
    fn step(&mut self, phase: &'static str, done: usize, total: usize) -> Result<()> {
        if (self.progress)(Progress::Step { phase, done, total }) {
            Ok(())
        } else {
            Err(PipelineError::Cancelled)
        }
    }

    fn count(&self, text: &str) -> Result<usize> {
        self.backend
            .count_tokens(text)
            .map_err(PipelineError::at("counting tokens"))
    }

    /// `text` in chunks of at most `budget` tokens of the backend's tokenizer.
    fn chunks(&self, text: &str, budget: usize) -> Result<Vec<(String, usize)>> {
        let backend = self.backend;
        let count = |s: &str| {
            backend
                .count_tokens(s)
                .map_err(PipelineError::at("counting tokens"))
        };
        Chunker {
            budget,
            count: &count,
        }
        .chunks(text)
    }

    /// The request of one call: `content` as the user turn, the question as the instruction
    /// (for query-aware KV policies), the query's sampling with `max_tokens`.
    fn request(&self, content: String, max_tokens: usize) -> longctx_backend::ChatRequest {
        let sampling = Sampling {
            max_tokens,
            ..self.query.sampling.clone()
        };
        longctx_backend::ChatRequest {
            instruction: Some(self.query.question.clone()),
            ..longctx_backend::ChatRequest::user(content, sampling)
        }
    }

    /// Counts a finished call into the answer's totals and returns its text.
    fn record(&mut self, c: longctx_backend::Completion) -> String {
        self.answer.calls += 1;
        self.answer.prompt_tokens += c.prompt_tokens;
        self.answer.completion_tokens += c.completion_tokens;
        c.text
    }

    /// One chat call with a single user message; `stream` sends its text to the progress
    /// callback (the final answer).
    fn ask(
        &mut self,
        step: &str,
        content: String,
        max_tokens: usize,
        stream: bool,
    ) -> Result<String> {
        let req = self.request(content, max_tokens);
        let progress = &mut self.progress;
        let result = if stream {
            self.backend.chat_stream(&req, &mut |e| match e {
                longctx_backend::StreamEvent::Text(t) if !progress(Progress::AnswerText(t)) => {
                    longctx_backend::Flow::Stop
                }
                _ => longctx_backend::Flow::Continue,
            })
        } else {
            self.backend.chat(&req)
        };
        let c = result.map_err(PipelineError::at(step))?;
        Ok(self.record(c))
    }

    /// Several independent calls, `parallelism` at a time; results in input order; the first
    /// error stops the rest and is returned with its step.
    fn ask_all(
        &mut self,
        phase: &'static str,
        prompts: Vec<String>,
        max_tokens: usize,
    ) -> Result<Vec<String>> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let total = prompts.len();
        let requests: Vec<_> = prompts
            .into_iter()
            .map(|p| self.request(p, max_tokens))
            .collect();
        let workers = self
            .options
            .usize("workers")
            .unwrap_or_else(|| self.backend.parallelism())
            .clamp(1, total.max(1));
        let backend = self.backend;
        if workers == 1 {
            // In order on this thread: a stop takes effect before the next call starts.
            let mut out = Vec::with_capacity(total);
            for (i, req) in requests.iter().enumerate() {
                let c = backend
                    .chat(req)
                    .map_err(PipelineError::at(format!("{phase} {}/{total}", i + 1)))?;
                out.push(self.record(c));
                self.step(phase, i + 1, total)?;
            }
            return Ok(out);
        }
        let next = AtomicUsize::new(0);
        let (tx, rx) = std::sync::mpsc::channel();
        let mut results: Vec<Option<longctx_backend::Completion>> = vec![None; total];
        let mut first_error = None;
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let (tx, requests, next) = (tx.clone(), &requests, &next);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= requests.len() || tx.send((i, backend.chat(&requests[i]))).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            for (done, (i, r)) in rx.into_iter().enumerate() {
                match r {
                    Ok(c) => results[i] = Some(c),
                    // Stop handing out work; calls already running finish.
                    Err(e) => {
                        first_error.get_or_insert((i, e));
                        next.store(total, Ordering::SeqCst);
                    }
                }
                let step = Progress::Step {
                    phase,
                    done: done + 1,
                    total,
                };
                if first_error.is_none() && !(self.progress)(step) {
                    next.store(total, Ordering::SeqCst);
                    first_error.get_or_insert((i, BackendError::Cancelled));
                }
            }
        });
        if let Some((i, e)) = first_error {
            return Err(PipelineError::at(format!("{phase} {}/{total}", i + 1))(e));
        }
        Ok(results
            .into_iter()
            .flatten()
            .map(|c| self.record(c))
            .collect())
    }
}
