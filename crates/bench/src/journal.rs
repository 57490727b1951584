//! Append-only JSONL result files ("journals"): one JSON object per finished sample, written
//! and flushed to disk as soon as the sample is done, so an interrupted run loses nothing that
//! was reported and a re-run can skip what is already there.
//!
//! Reading is strict: a blank line is skipped, but any other line that does not parse is an
//! error naming the file and line, so results are never silently dropped. The one exception is
//! an unparsable *last* line with no newline: that is a write cut short (the process was killed
//! mid-line), and opening the journal for appending removes it, reporting how many bytes went.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::BenchError;

/// An open journal, positioned for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// What [`Journal::open`] found in an existing file.
#[derive(Debug)]
pub struct Loaded<T> {
    /// Every record, in file order.
    pub records: Vec<T>,
    /// Bytes of an interrupted last line that were removed (0 when the file was intact).
    pub removed_torn_bytes: usize,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`, returning its records.
    pub fn open<T: DeserializeOwned>(path: &Path) -> Result<(Journal, Loaded<T>), BenchError> {
        let io = |source| BenchError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (records, keep) = parse_records(path, &bytes)?;
        let removed_torn_bytes = bytes.len() - keep;
        if removed_torn_bytes > 0 {
            file.set_len(keep as u64).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
        }
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
        };
        // A complete last record without a newline (hand-edited file): end its line first.
        if keep > 0 && bytes[keep - 1] != b'\n' {
            journal.write_line(b"")?;
        }
        Ok((
            journal,
            Loaded {
                records,
                removed_torn_bytes,
            },
        ))
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as a line and forces it to disk.
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<(), BenchError> {
        let line = serde_json::to_vec(record).map_err(|e| BenchError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.write_line(&line)
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), BenchError> {
        let mut buffer = Vec::with_capacity(line.len() + 1);
        buffer.extend_from_slice(line);
        buffer.push(b'\n');
        let io = |source| BenchError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&buffer).map_err(io)?;
        self.file.flush().map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// Reads the records of a journal without opening it for writing; a missing file has none.
pub fn read_records<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, BenchError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse_records(path, &bytes)?.0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(BenchError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parses every line; returns the records and how many leading bytes hold them (everything
/// but a torn last line).
fn parse_records<T: DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<(Vec<T>, usize), BenchError> {
    let mut records = Vec::new();
    let mut start = 0;
    let mut line_number = 0;
    while start < bytes.len() {
        line_number += 1;
        let (end, complete) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(offset) => (start + offset, true),
            None => (bytes.len(), false),
        };
        let malformed = |reason: String| BenchError::MalformedLine {
            path: path.to_path_buf(),
            line: line_number,
            reason,
        };
        let text = std::str::from_utf8(&bytes[start..end]);
        match text {
            Ok(text) if text.trim().is_empty() => {}
            Ok(text) => match serde_json::from_str::<T>(text) {
                Ok(record) => records.push(record),
                Err(_) if !complete => return Ok((records, start)),
                Err(e) => return Err(malformed(e.to_string())),
            },
            Err(_) if !complete => return Ok((records, start)),
            Err(e) => return Err(malformed(format!("invalid UTF-8 ({e})"))),
        }
        start = end + usize::from(complete);
    }
    Ok((records, bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        id: u32,
        text: String,
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("longctx-bench-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn appends_and_reads_back() {
        let path = temp_path("roundtrip.jsonl");
        let (mut journal, loaded) = Journal::open::<Row>(&path).unwrap();
        assert!(loaded.records.is_empty());
        journal
            .append(&Row {
                id: 1,
                text: "a\nb".into(),
            })
            .unwrap();
        journal
            .append(&Row {
                id: 2,
                text: String::new(),
            })
            .unwrap();
        drop(journal);
        let rows: Vec<Row> = read_records(&path).unwrap();
        assert_eq!(
            rows,
            [
                Row {
                    id: 1,
                    text: "a\nb".into()
                },
                Row {
                    id: 2,
                    text: String::new()
                }
            ]
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        assert!(read_records::<Row>(&temp_path("missing.jsonl"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed_lines_are_named() {
        let path = temp_path("malformed.jsonl");
        std::fs::write(
            &path,
            "{\"id\":1,\"text\":\"x\"}\n\nnot json\n{\"id\":2,\"text\":\"y\"}\n",
        )
        .unwrap();
        let err = Journal::open::<Row>(&path).unwrap_err().to_string();
        assert!(
            err.contains("malformed.jsonl, line 3: not a valid result record"),
            "{err}"
        );
        std::fs::write(&path, "{\"id\":1}\n").unwrap();
        let err = read_records::<Row>(&path).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("missing field `text`"),
            "{err}"
        );
    }

    #[test]
    fn a_torn_last_line_is_removed_and_a_complete_one_kept() {
        let path = temp_path("torn.jsonl");
        std::fs::write(&path, "{\"id\":1,\"text\":\"x\"}\n{\"id\":2,\"te").unwrap();
        let (mut journal, loaded) = Journal::open::<Row>(&path).unwrap();
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(loaded.removed_torn_bytes, "{\"id\":2,\"te".len());
        journal
            .append(&Row {
                id: 3,
                text: "z".into(),
            })
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":1,\"text\":\"x\"}\n{\"id\":3,\"text\":\"z\"}\n"
        );

        std::fs::write(&path, "{\"id\":1,\"text\":\"x\"}").unwrap();
        let (mut journal, loaded) = Journal::open::<Row>(&path).unwrap();
        assert_eq!((loaded.records.len(), loaded.removed_torn_bytes), (1, 0));
        journal
            .append(&Row {
                id: 2,
                text: "y".into(),
            })
            .unwrap();
        assert_eq!(read_records::<Row>(&path).unwrap().len(), 2);
    }
}
