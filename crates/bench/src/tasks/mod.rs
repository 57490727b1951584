//! Task generators, one module per benchmark family, and [`SYNTHETIC`], the registry of the
//! length-targeted synthetic tasks.
//!
//! Every entry of [`SYNTHETIC`] has a generator ([`common::GenerateFn`]) that builds
//! [`Sample`](crate::Sample)s from a [`GenConfig`] and a caller-supplied token counter, and
//! a scorer ([`common::ScoreFn`]) implementing the task's upstream rule.

pub mod common;
pub mod needle_threading;
pub mod needlebench;
pub mod niah;
pub mod passkey;
pub mod ruler;
pub mod words;

pub use common::{default_data_root, GenConfig, SyntheticTask, DATA_ENV, DEFAULT_DEPTHS};

use crate::BenchError;

/// The synthetic tasks: NIAH, RULER's 13, NeedleBench V2 reasoning and ATC (English), and
/// Needle Threading.
pub const SYNTHETIC: &[SyntheticTask] = &[
    niah::TASK,
    ruler::TASKS[0],
    ruler::TASKS[1],
    ruler::TASKS[2],
    ruler::TASKS[3],
    ruler::TASKS[4],
    ruler::TASKS[5],
    ruler::TASKS[6],
    ruler::TASKS[7],
    ruler::TASKS[8],
    ruler::TASKS[9],
    ruler::TASKS[10],
    ruler::TASKS[11],
    ruler::TASKS[12],
    needlebench::TASKS[0],
    needlebench::TASKS[1],
    needlebench::TASKS[2],
    needlebench::TASKS[3],
    needlebench::TASKS[4],
    needlebench::TASKS[5],
    needlebench::TASKS[6],
    needlebench::TASKS[7],
    needle_threading::TASKS[0],
    needle_threading::TASKS[1],
    needle_threading::TASKS[2],
    needle_threading::TASKS[3],
    needle_threading::TASKS[4],
];

/// Looks a synthetic task up by name.
pub fn find_synthetic(name: &str) -> Result<&'static SyntheticTask, BenchError> {
    SYNTHETIC
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| BenchError::UnknownTask(name.to_string()))
}

/// Samples of `task` for every length in `lengths` (the grid over lengths × the config's
/// depths), in order.
pub fn generate_grid(
    task: &SyntheticTask,
    lengths: &[usize],
    cfg: &GenConfig,
    counter: &dyn passkey::TokenCounter,
) -> Result<Vec<crate::Sample>, BenchError> {
    let mut out = Vec::new();
    for &length in lengths {
        let cfg = GenConfig {
            length,
            ..cfg.clone()
        };
        out.extend((task.generate)(&cfg, counter)?);
    }
    Ok(out)
}
