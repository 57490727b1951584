//! LongGenBench ("Spinning the Golden Thread", mozhu621/LongGenBench `Dataset/*.json`):
//! very long enumerated documents (diary weeks/days, menus, floors, blocks) with events that
//! must appear in given entries.
//!
//! Generation as upstream `Evalution/inference.py`: raw completion (no chat template) of the
//! prompt, which already ends with the first entry header (`prefix`); stop at `*** finished`;
//! `max_new_tokens` 16000 (short set) / 32000 (long set) as the run scripts.
//! Scoring as `Evalution/eval.py`: output = `prefix + generated`, split on `#*#` into blocks;
//! each block's entry number is the first `"{type} (\d+)"` in it (first block wins).
//! - `metrics::longgenbench::score` (`Metric::LongGenBench`) is the rule-based part: the **completion rate**, the
//!   share of entries `1..=number` present.
//! - The per-check accuracy needs an LLM judge (upstream Llama-3.1-8B-Instruct, reply counted
//!   "yes" if it contains "yes"): `metrics::longgenbench::judge_prompts` builds upstream's judge prompts for every
//!   check whose entry exists; a caller with a judge model averages the yes-rate per check
//!   kind (once / range / periodic). Not computed here.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::pyliteral;
use super::util::{join, read_json_list, require_dir, Record};
use super::{DatasetError, LoadOptions, Loaded};
use crate::metrics::longgenbench::CHECK_KINDS;
use crate::metrics::Metric;
use crate::sample::{Sample, Truncation};
use crate::task::{Source, Task};

/// Registry entries: `longgenbench/short` and `longgenbench/long`.
pub const TASKS: &[Task] = &[
    Task {
        name: "longgenbench/short",
        summary: "LongGenBench short set (~16k-token outputs, subset); completion rate, checks need a judge",
        metric: Metric::LongGenBench,
        source: Source::Load(load_task),
    },
    Task {
        name: "longgenbench/long",
        summary: "LongGenBench long set (~32k-token outputs, subset); completion rate, checks need a judge",
        metric: Metric::LongGenBench,
        source: Source::Load(load_task),
    },
];

/// The stop string of upstream generation.
pub const STOP: &str = "*** finished";

/// A field that is either an object or a Python-literal dict string, as an object of strings.
fn checks(rec: &Record<'_>, field: &str) -> Result<Map<String, Value>, DatasetError> {
    let v = match rec.get(field)? {
        Value::String(s) => pyliteral::parse(s).map_err(|e| rec.err(field, e))?,
        other => other.clone(),
    };
    match v {
        Value::Object(m) => {
            for (k, v) in &m {
                if k.parse::<u64>().is_err() || !v.is_string() {
                    return Err(rec.err(field, format!("entry '{k}' is not index -> text")));
                }
            }
            Ok(m)
        }
        other => Err(rec.err(
            field,
            format!("expected a dict, found {}", super::util::kind(&other)),
        )),
    }
}

fn load_task(info: &Task, root: &Path, _options: &LoadOptions) -> Result<Loaded, DatasetError> {
    let set = info.short_name();
    let dir = join(root, &["longgenbench"]);
    require_dir(&dir)?;
    let path = dir.join(if set == "long" {
        "Dataset_long.json"
    } else {
        "Dataset_short.json"
    });
    let max_new_tokens = if set == "long" { 32000 } else { 16000 };
    let items = read_json_list(&path)?;
    let mut loaded = Loaded::default();
    for (i, obj) in items.iter().enumerate() {
        let rec = Record {
            path: &path,
            at: format!("item {i}"),
            obj,
        };
        let mut meta = Map::new();
        for kind in CHECK_KINDS {
            meta.insert(kind.to_string(), Value::Object(checks(&rec, kind)?));
        }
        let kind = rec.str("type")?;
        meta.insert("type".into(), json!(kind));
        meta.insert("number".into(), json!(rec.u64("number")?));
        meta.insert("prefix".into(), json!(rec.str("prefix")?));
        meta.insert("stop".into(), json!(STOP));
        loaded.samples.push(Sample {
            id: format!("longgenbench-{set}-{i}"),
            task: info.name.to_string(),
            prompt: rec.str("prompt")?.to_string(),
            chat: false,
            answer_prefix: String::new(),
            question: String::new(),
            truncation: Truncation::None,
            answers: Vec::new(),
            all_classes: Vec::new(),
            metric: Metric::LongGenBench,
            max_new_tokens,
            meta: Value::Object(meta),
        });
    }
    Ok(loaded)
}
