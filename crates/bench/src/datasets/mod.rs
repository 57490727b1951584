//! Loaders for the third-party long-context datasets kept outside the repository (under
//! `shared/data`, or wherever `LONGCTX_DATA` points), each turning one task's files into
//! [`Sample`]s, plus the rule-based scorers of LongProc and LongGenBench.
//!
//! - [`list`] is the registry (task name, summary, metric, loader); [`load`] and
//!   [`load_with`] look a task up by name and read it from a data root.
//! - [`default_data_root`] finds the data: `LONGCTX_DATA`, else `shared/data` next to the
//!   workspace (searched upwards from the current directory, the executable and, for tests,
//!   the crate's build-time manifest directory).
//! - Loaders never panic: a missing folder or file, a malformed JSON(L) line and a field of the
//!   wrong type are [`DatasetError`]s that name the path, line and field.
//!   [`LoadOptions::skip_bad_lines`] skips malformed JSONL lines and reports them in
//!   [`Loaded::skipped`] instead of failing.
//!
//! Families: [`minilongbench`] (LongBench v1 tasks), [`leval`], [`longbench_v2`],
//! [`longbench_write`], [`longproc`], [`longgenbench`], [`aa_lcr`].

pub mod aa_lcr;
pub mod leval;
pub mod longbench_v2;
pub mod longbench_write;
pub mod longgenbench;
pub mod longproc;
pub mod minilongbench;
pub mod pyliteral;
mod util;

use std::path::{Path, PathBuf};

use crate::metrics::Metric;
use crate::sample::Sample;

/// The environment variable that points at the data root (the folder holding `minilongbench/`,
/// `leval/`, …).
pub const DATA_ENV: &str = "LONGCTX_DATA";

/// Errors from finding and reading dataset files.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("no data folder found (looked in: {}); set {DATA_ENV} to the folder holding the datasets (e.g. /work/shared/data)", looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NoDataRoot { looked: Vec<PathBuf> },
    #[error("{path}: missing ({source}); the datasets live outside the repository: set {DATA_ENV} to the data folder (see shared/data/README.md)")]
    Missing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}, line {line}: malformed record: {reason}")]
    MalformedLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: malformed file: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{path}, {record}: field '{field}': {reason}")]
    Field {
        path: PathBuf,
        /// `line N` for JSONL, `item N` for JSON lists, `row N` for CSV.
        record: String,
        field: String,
        reason: String,
    },
    #[error("unknown dataset task '{name}' (known: {known})")]
    UnknownTask { name: String, known: String },
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

/// A loader: reads the task named by the entry from a data root.
pub type LoaderFn = fn(&DatasetInfo, &Path, &LoadOptions) -> Result<Loaded, DatasetError>;

/// A registry entry: one loadable task.
#[derive(Clone, Copy)]
pub struct DatasetInfo {
    /// Registry name, e.g. `longbench/hotpotqa`, `leval/coursera`, `longproc/countdown_2k`.
    pub name: &'static str,
    pub summary: &'static str,
    /// The metric the task's samples carry.
    pub metric: Metric,
    pub loader: LoaderFn,
}

impl std::fmt::Debug for DatasetInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetInfo")
            .field("name", &self.name)
            .field("summary", &self.summary)
            .field("metric", &self.metric)
            .finish()
    }
}

impl DatasetInfo {
    /// Reads this task from `root` with `options`.
    pub fn load(&self, root: &Path, options: &LoadOptions) -> Result<Loaded, DatasetError> {
        (self.loader)(self, root, options)
    }

    /// The part of the name after the family prefix (`hotpotqa` for `longbench/hotpotqa`).
    pub fn short_name(&self) -> &'static str {
        self.name.split_once('/').map_or(self.name, |(_, s)| s)
    }
}

/// Every dataset task, grouped by family, in the order the CLI lists them.
pub fn list() -> Vec<&'static DatasetInfo> {
    [
        minilongbench::TASKS,
        leval::TASKS,
        longbench_v2::TASKS,
        longbench_write::TASKS,
        longproc::TASKS,
        longgenbench::TASKS,
        aa_lcr::TASKS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Looks a task up by name.
pub fn find(name: &str) -> Result<&'static DatasetInfo, DatasetError> {
    list()
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| DatasetError::UnknownTask {
            name: name.to_string(),
            known: list().iter().map(|t| t.name).collect::<Vec<_>>().join(", "),
        })
}

/// Loads a task's samples from `data_root`, failing on the first bad record.
pub fn load(task_name: &str, data_root: &Path) -> Result<Vec<Sample>, DatasetError> {
    Ok(load_with(task_name, data_root, &LoadOptions::default())?.samples)
}

/// Loads a task's samples from `data_root` with explicit options.
pub fn load_with(
    task_name: &str,
    data_root: &Path,
    options: &LoadOptions,
) -> Result<Loaded, DatasetError> {
    find(task_name)?.load(data_root, options)
}

/// The data root: `$LONGCTX_DATA` if set (it must exist), else the first existing
/// `shared/data` or `../shared/data` found walking up from the current directory, from the
/// executable's directory, and from this crate's build-time manifest directory.
pub fn default_data_root() -> Result<PathBuf, DatasetError> {
    if let Some(dir) = std::env::var_os(DATA_ENV) {
        let dir = PathBuf::from(dir);
        if dir.is_dir() {
            return Ok(dir);
        }
        return Err(DatasetError::NoDataRoot { looked: vec![dir] });
    }
    let mut starts: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        starts.push(dir);
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let mut looked = Vec::new();
    for start in starts {
        for dir in start.ancestors() {
            for candidate in [dir.join("shared/data"), dir.join("../shared/data")] {
                if candidate.is_dir() {
                    return Ok(candidate);
                }
                looked.push(candidate);
            }
        }
    }
    looked.dedup();
    Err(DatasetError::NoDataRoot { looked })
}
