//! Export of a stored run as JSONL prediction files in the upstream formats, so the official
//! scorers can read them (methods reference Part D2):
//! - LongBench (`longbench/*`): `longbench/pred/<model>/<dataset>.jsonl`, one
//!   `{pred, answers, all_classes, length}` per line (`eval.py`);
//! - RULER (`ruler/*`): `ruler/<model>/<length>/pred/<task>.jsonl`, one
//!   `{index, pred, input, outputs, others, truncation, length}` per line. `input` is the
//!   question (the store keeps no full prompts), `others` holds the sample id, `truncation` is
//!   -1 unless the input was truncated (then the run's input budget);
//! - L-Eval (`leval/*`): `leval/<model>/<task>.pred.jsonl`, one
//!   `{query, gt, "<model>_pred", evaluation}` per line;
//! - every other task: `other/<model>/<task>.jsonl` with `{id, pred, answers, score, error,
//!   meta}`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::store::{ResultRow, Store, StoreError};

/// Errors from exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// A file name part: `/` and other unsafe characters replaced by `_`, `.gguf` dropped.
pub fn model_dir_name(model: &str) -> String {
    let m = model.strip_suffix(".gguf").unwrap_or(model);
    let s: String = m
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        "model".into()
    } else {
        s
    }
}

fn write_lines(path: &Path, lines: &[Value]) -> Result<(), ExportError> {
    let io = |error| ExportError::Io {
        path: path.to_path_buf(),
        error,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for v in lines {
        writeln!(f, "{v}").map_err(io)?;
    }
    f.flush().map_err(io)
}

/// Writes the predictions of run `run_id` under `out`; returns the files written.
pub fn export_run(store: &Store, run_id: i64, out: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let run = store.run(run_id)?;
    let rows = store.results(run_id)?;
    let model = model_dir_name(&run.model);
    let budget = run.max_input_tokens.map_or(-1, |v| v as i64);
    // file → lines, in stored order.
    let mut files: BTreeMap<PathBuf, Vec<Value>> = BTreeMap::new();
    for r in &rows {
        let (family, short) = r.task.split_once('/').unwrap_or(("", r.task.as_str()));
        let (path, value) = match family {
            "longbench" => (
                out.join("longbench/pred")
                    .join(&model)
                    .join(format!("{short}.jsonl")),
                json!({
                    "pred": r.prediction,
                    "answers": r.answers,
                    "all_classes": if r.all_classes.is_empty() { Value::Null } else { json!(r.all_classes) },
                    "length": r.meta.get("length").cloned().unwrap_or(Value::Null),
                }),
            ),
            "ruler" => {
                let length = r.length.unwrap_or(0);
                let path = out
                    .join("ruler")
                    .join(&model)
                    .join(length.to_string())
                    .join("pred")
                    .join(format!("{short}.jsonl"));
                let index = files.get(&path).map_or(0, Vec::len);
                (
                    path,
                    json!({
                        "index": index,
                        "pred": r.prediction,
                        "input": r.question,
                        "outputs": r.answers,
                        "others": {"id": r.sample_id},
                        "truncation": if r.truncated { budget } else { -1 },
                        "length": r.prompt_tokens,
                    }),
                )
            }
            "leval" => {
                let mut obj = serde_json::Map::new();
                obj.insert("query".into(), json!(r.question));
                obj.insert(
                    "gt".into(),
                    json!(r.answers.first().cloned().unwrap_or_default()),
                );
                obj.insert(format!("{model}_pred"), json!(r.prediction));
                obj.insert(
                    "evaluation".into(),
                    r.meta.get("evaluation").cloned().unwrap_or(Value::Null),
                );
                (
                    out.join("leval")
                        .join(&model)
                        .join(format!("{short}.pred.jsonl")),
                    Value::Object(obj),
                )
            }
            _ => (
                out.join("other")
                    .join(&model)
                    .join(format!("{}.jsonl", r.task.replace('/', "_"))),
                other_line(r),
            ),
        };
        files.entry(path).or_default().push(value);
    }
    let mut written = Vec::new();
    for (path, lines) in &files {
        write_lines(path, lines)?;
        written.push(path.clone());
    }
    Ok(written)
}

fn other_line(r: &ResultRow) -> Value {
    json!({
        "id": r.sample_id,
        "pred": r.prediction,
        "answers": r.answers,
        "score": r.score,
        "error": r.error,
        "meta": r.meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{record, row, temp_db};

    #[test]
    fn writes_each_family_in_its_upstream_format() {
        let mut store = Store::open(&temp_db("export.sqlite")).unwrap();
        let run = store.begin_run(&record("k")).unwrap();
        let mut lb = row("longbench/trec", "a1", 1.0);
        lb.all_classes = vec!["X".into(), "Y".into()];
        lb.meta = json!({"length": 1234});
        store.insert(run, &lb).unwrap();
        let mut ru = row("ruler/niah_single_1", "n/4096/50/0", 1.0);
        ru.length = Some(4096);
        ru.truncated = true;
        ru.question = "What is the number?".into();
        store.insert(run, &ru).unwrap();
        let mut le = row("leval/coursera", "c-1-0", 0.0);
        le.meta = json!({"evaluation": "exam"});
        le.question = "Which?".into();
        store.insert(run, &le).unwrap();
        store.insert(run, &row("niah", "z", 0.5)).unwrap();

        let dir = std::env::temp_dir().join(format!("longctx-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = export_run(&store, run, &dir).unwrap();
        assert_eq!(files.len(), 4);
        let read = |p: &str| -> Value {
            let text = std::fs::read_to_string(dir.join(p)).unwrap();
            serde_json::from_str(text.lines().next().unwrap()).unwrap()
        };
        assert_eq!(
            read("longbench/pred/m/trec.jsonl"),
            json!({"pred": "p", "answers": ["a"], "all_classes": ["X", "Y"], "length": 1234})
        );
        let r = read("ruler/m/4096/pred/niah_single_1.jsonl");
        assert_eq!(r["index"], 0);
        assert_eq!(r["truncation"], 2048);
        assert_eq!(r["others"]["id"], "n/4096/50/0");
        assert_eq!(r["outputs"], json!(["a"]));
        assert_eq!(
            read("leval/m/coursera.pred.jsonl"),
            json!({"query": "Which?", "gt": "a", "m_pred": "p", "evaluation": "exam"})
        );
        assert_eq!(read("other/m/niah.jsonl")["score"], 0.5);
        assert!(export_run(&store, 9, &dir).is_err());
    }
}
