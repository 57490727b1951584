//! [`BenchError`]: errors from generating samples and looking tasks up (dataset files have
//! `DatasetError`, in `data`).

use std::path::PathBuf;

/// Errors from generating samples or looking tasks up.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("unknown task '{name}' (known: {known})")]
    UnknownTask { name: String, known: String },
    #[error("the target length must be at least 1 token")]
    ZeroLength,
    #[error("depth {0}% is outside 0..=100")]
    DepthOutOfRange(u32),
    #[error("a target length of {length} tokens is too short: the shortest prompt (one filler) is {minimum} tokens")]
    LengthTooShort { length: usize, minimum: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A configuration error that has no [`BenchError`] variant of its own: reported as an
/// `InvalidInput` I/O error on the pseudo-path `<config>`.
pub fn invalid_config(message: &str) -> BenchError {
    BenchError::Io {
        path: PathBuf::from("<config>"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message.to_string()),
    }
}
