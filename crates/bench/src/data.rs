//! Where the shared benchmark data lives (`shared/data`, or wherever `LONGCTX_DATA` points):
//! the one [`default_data_root`] of generators and dataset loaders alike, and
//! [`DatasetError`], the errors of finding and reading dataset files.

use std::path::{Path, PathBuf};

/// The environment variable that points at the data root (the folder holding
/// `paul-graham-essays/`, `minilongbench/`, `leval/`, …).
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
