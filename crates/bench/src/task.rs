//! What a benchmark task is: a [`Task`] names the task, its [`Metric`] (how its outputs are
//! scored, in `metrics`) and its [`Source`] (a seeded generator or a dataset loader), plus the
//! contracts those functions follow ([`GenConfig`], [`TokenCounter`], [`LoadOptions`],
//! [`Loaded`]). The registry of every task is `registry`.

use std::path::{Path, PathBuf};

use crate::data::{default_data_root, DatasetError};
use crate::error::{invalid_config, BenchError};
use crate::sample::{Metric, Sample};

/// One benchmark task: everything the CLI lists and the runner needs to build and score its
/// samples.
#[derive(Clone, Copy, Debug)]
pub struct Task {
    /// Registry name, e.g. `passkey`, `ruler/niah_single_1`, `longbench/hotpotqa`; also
    /// [`Sample::task`]. The part before `/` is the family (`--task ruler`).
    pub name: &'static str,
    pub summary: &'static str,
    /// How the task's outputs are scored ([`Metric::score_sample`]); its samples carry it.
    pub metric: Metric,
    pub source: Source,
}

/// Where a task's samples come from.
#[derive(Clone, Copy)]
pub enum Source {
    /// A seeded, length-targeted generator, run over lengths × depths × samples.
    Generate {
        generate: GenerateFn,
        /// The answer budget the generator sizes prompts for (each sample carries its own).
        max_new_tokens: usize,
        /// Whether the samples are chat prompts (else raw completions): the planner counts
        /// the chat template's tokens, or only BOS, on top of the text.
        chat: bool,
    },
    /// A loader of a dataset under the data root.
    Load(LoaderFn),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Generate { max_new_tokens, .. } => f
                .debug_struct("Generate")
                .field("max_new_tokens", max_new_tokens)
                .finish_non_exhaustive(),
            Source::Load(_) => f.write_str("Load"),
        }
    }
}

/// A generator: samples for a configuration, lengths measured with the counter.
pub type GenerateFn = fn(&GenConfig, &dyn TokenCounter) -> Result<Vec<Sample>, BenchError>;

/// A loader: reads the task named by the entry from a data root.
pub type LoaderFn = fn(&Task, &Path, &LoadOptions) -> Result<Loaded, DatasetError>;

impl Task {
    /// Whether samples are generated to target lengths (`--lengths`, `--depths`).
    pub fn is_generated(&self) -> bool {
        matches!(self.source, Source::Generate { .. })
    }

    /// The family: the part of the name before `/` (the name itself when none).
    pub fn family(&self) -> &'static str {
        self.name.split_once('/').map_or(self.name, |(f, _)| f)
    }

    /// The part of the name after the family prefix (`hotpotqa` for `longbench/hotpotqa`).
    pub fn short_name(&self) -> &'static str {
        self.name.split_once('/').map_or(self.name, |(_, s)| s)
    }

    /// The answer budget a generator sizes its prompts for; 0 for dataset tasks, whose
    /// samples each carry their own.
    pub fn max_new_tokens(&self) -> usize {
        match self.source {
            Source::Generate { max_new_tokens, .. } => max_new_tokens,
            Source::Load(_) => 0,
        }
    }

    /// Generates the samples of one target length (`cfg.length`).
    pub fn generate(
        &self,
        cfg: &GenConfig,
        counter: &dyn TokenCounter,
    ) -> Result<Vec<Sample>, BenchError> {
        match self.source {
            Source::Generate { generate, .. } => generate(cfg, counter),
            Source::Load(_) => Err(invalid_config(&format!(
                "{} is a dataset task: it is loaded, not generated",
                self.name
            ))),
        }
    }

    /// Reads this task from `root` with `options`.
    pub fn load(&self, root: &Path, options: &LoadOptions) -> Result<Loaded, DatasetError> {
        match self.source {
            Source::Load(load) => load(self, root, options),
            Source::Generate { .. } => Err(DatasetError::Malformed {
                path: root.to_path_buf(),
                reason: format!("{} is generated, not loaded from a dataset", self.name),
            }),
        }
    }

    /// Scores a prediction for one of this task's samples (the task's [`Metric`]).
    pub fn score(
        &self,
        prediction: &str,
        sample: &Sample,
    ) -> Result<f64, crate::metrics::MetricError> {
        self.metric.score_sample(prediction, sample)
    }
}

/// Counts the tokens of a text; implemented for every `Fn(&str) -> usize`.
pub trait TokenCounter {
    fn count_tokens(&self, text: &str) -> usize;
}

impl<F: Fn(&str) -> usize> TokenCounter for F {
    fn count_tokens(&self, text: &str) -> usize {
        self(text)
    }
}

/// Depths used when a configuration names none: 0, 10, …, 100 percent.
pub const DEFAULT_DEPTHS: [u32; 11] = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100];

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    /// Target length in model tokens (what counts is stated per task).
    pub length: usize,
    /// Needle depths in percent (0 = start of the haystack); empty = the task's default
    /// (upstream's random placement for RULER, [`DEFAULT_DEPTHS`] elsewhere). Tasks without
    /// a haystack position (RULER vt/cwe/fwe, the ancestral trace challenge) ignore it.
    pub depths: Vec<u32>,
    /// Samples per depth.
    pub num_samples: usize,
    pub seed: u64,
    /// The shared data folder, e.g. `/work/shared/data` (see [`default_data_root`]).
    pub data_root: PathBuf,
    /// Answer budget override; `None` = the task's own. Only passkey sizes its prompts by it
    /// (the answer must fit in the length); the runner sets every sample's budget afterwards.
    pub max_new_tokens: Option<usize>,
}

impl GenConfig {
    /// A configuration with the given length, depths and count, seed 0, and
    /// [`default_data_root`] (or `shared/data` if none is found).
    pub fn new(length: usize, depths: &[u32], num_samples: usize) -> GenConfig {
        GenConfig {
            length,
            depths: depths.to_vec(),
            num_samples,
            seed: 0,
            data_root: default_data_root().unwrap_or_else(|_| PathBuf::from("shared/data")),
            max_new_tokens: None,
        }
    }

    /// Checks the length, the depths and the sample count.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.length == 0 {
            return Err(BenchError::ZeroLength);
        }
        if let Some(&depth) = self.depths.iter().find(|&&d| d > 100) {
            return Err(BenchError::DepthOutOfRange(depth));
        }
        if self.num_samples == 0 {
            return Err(invalid_config("the number of samples must be at least 1"));
        }
        Ok(())
    }

    /// The configured depths, or `default` when none are configured.
    pub fn depths_or(&self, default: &[u32]) -> Vec<u32> {
        if self.depths.is_empty() {
            default.to_vec()
        } else {
            self.depths.clone()
        }
    }
}

/// How a loader treats bad records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Skip JSONL lines that are not valid JSON or lack a required field (reported in
    /// [`Loaded::skipped`]) instead of failing on the first one.
    pub skip_bad_lines: bool,
}

/// A record a loader skipped under [`LoadOptions::skip_bad_lines`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedLine {
    pub path: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// What a loader returns: the samples and the records it skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    pub samples: Vec<Sample>,
    pub skipped: Vec<SkippedLine>,
}
