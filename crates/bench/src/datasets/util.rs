//! File reading and typed field access shared by the loaders, with errors that name the
//! path, the record and the field.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{DatasetError, LoadOptions, SkippedLine};

/// Reads a whole file; a file that does not exist is [`DatasetError::Missing`].
pub(crate) fn read_text(path: &Path) -> Result<String, DatasetError> {
    std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            DatasetError::Missing {
                path: path.to_path_buf(),
                source,
            }
        } else {
            DatasetError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Checks that a dataset folder exists, so a missing download is reported as the folder.
pub(crate) fn require_dir(path: &Path) -> Result<(), DatasetError> {
    if path.is_dir() {
        Ok(())
    } else {
        Err(DatasetError::Missing {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
        })
    }
}

/// JSON objects with the 1-based line each came from.
pub(crate) type Lines = Vec<(usize, Map<String, Value>)>;

/// One record with where it came from, for field errors.
pub(crate) struct Record<'a> {
    pub path: &'a Path,
    /// `line N`, `item N` or `row N`.
    pub at: String,
    pub obj: &'a Map<String, Value>,
}

impl Record<'_> {
    pub fn err(&self, field: &str, reason: impl Into<String>) -> DatasetError {
        DatasetError::Field {
            path: self.path.to_path_buf(),
            record: self.at.clone(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub fn get(&self, field: &str) -> Result<&Value, DatasetError> {
        self.obj
            .get(field)
            .ok_or_else(|| self.err(field, "missing"))
    }

    pub fn str(&self, field: &str) -> Result<&str, DatasetError> {
        match self.get(field)? {
            Value::String(s) => Ok(s),
            other => Err(self.err(field, format!("expected a string, found {}", kind(other)))),
        }
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&str>, DatasetError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(self.err(field, format!("expected a string, found {}", kind(other))))
            }
        }
    }

    pub fn u64(&self, field: &str) -> Result<u64, DatasetError> {
        match self.get(field)? {
            Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64().unwrap_or_default()),
            other => Err(self.err(
                field,
                format!("expected a non-negative integer, found {}", kind(other)),
            )),
        }
    }

    pub fn str_list(&self, field: &str) -> Result<Vec<String>, DatasetError> {
        str_list(self.get(field)?).map_err(|reason| self.err(field, reason))
    }

    /// A string list that may be `null` (empty).
    pub fn opt_str_list(&self, field: &str) -> Result<Vec<String>, DatasetError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => str_list(v).map_err(|reason| self.err(field, reason)),
        }
    }
}

pub(crate) use crate::json::{kind, str_list};

/// The objects of a JSONL file with their 1-based line numbers (blank lines are ignored).
/// A line that is not a JSON object fails, or is skipped and reported under
/// `skip_bad_lines`.
pub(crate) fn read_jsonl(
    path: &Path,
    options: &LoadOptions,
    skipped: &mut Vec<SkippedLine>,
) -> Result<Lines, DatasetError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let reason = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(obj)) => {
                out.push((line_no, obj));
                continue;
            }
            Ok(other) => format!("expected a JSON object, found {}", kind(&other)),
            Err(e) => format!("invalid JSON: {e}"),
        };
        if options.skip_bad_lines {
            skipped.push(SkippedLine {
                path: path.to_path_buf(),
                line: line_no,
                reason,
            });
        } else {
            return Err(DatasetError::MalformedLine {
                path: path.to_path_buf(),
                line: line_no,
                reason,
            });
        }
    }
    Ok(out)
}

/// The objects of a JSON file holding a list of objects, with their 0-based indices.
pub(crate) fn read_json_list(path: &Path) -> Result<Vec<Map<String, Value>>, DatasetError> {
    let text = read_text(path)?;
    let value: Value = serde_json::from_str(&text).map_err(|e| DatasetError::Malformed {
        path: path.to_path_buf(),
        reason: format!("invalid JSON: {e}"),
    })?;
    let Value::Array(items) = value else {
        return Err(DatasetError::Malformed {
            path: path.to_path_buf(),
            reason: format!("expected a list of objects, found {}", kind(&value)),
        });
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(obj) => Ok(obj),
            other => Err(DatasetError::Malformed {
                path: path.to_path_buf(),
                reason: format!("item {i}: expected an object, found {}", kind(&other)),
            }),
        })
        .collect()
}

/// Runs `build` on a record; under `skip_bad_lines` a field error skips the record.
pub(crate) fn build_or_skip<T>(
    options: &LoadOptions,
    skipped: &mut Vec<SkippedLine>,
    path: &Path,
    line: usize,
    build: impl FnOnce() -> Result<T, DatasetError>,
) -> Result<Option<T>, DatasetError> {
    match build() {
        Ok(v) => Ok(Some(v)),
        Err(e @ DatasetError::Field { .. }) if options.skip_bad_lines => {
            skipped.push(SkippedLine {
                path: path.to_path_buf(),
                line,
                reason: e.to_string(),
            });
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// True when `text` has a CJK unified ideograph (U+4E00–U+9FFF).
pub(crate) fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

pub(crate) fn join(root: &Path, parts: &[&str]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}
