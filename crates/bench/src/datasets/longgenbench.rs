//! LongGenBench ("Spinning the Golden Thread", mozhu621/LongGenBench `Dataset/*.json`):
//! very long enumerated documents (diary weeks/days, menus, floors, blocks) with events that
//! must appear in given entries.
//!
//! Generation as upstream `Evalution/inference.py`: raw completion (no chat template) of the
//! prompt, which already ends with the first entry header (`prefix`); stop at `*** finished`;
//! `max_new_tokens` 16000 (short set) / 32000 (long set) as the run scripts.
//! Scoring as `Evalution/eval.py`: output = `prefix + generated`, split on `#*#` into blocks;
//! each block's entry number is the first `"{type} (\d+)"` in it (first block wins).
//! - [`score`] (`Metric::LongGenBench`) is the rule-based part: the **completion rate**, the
//!   share of entries `1..=number` present.
//! - The per-check accuracy needs an LLM judge (upstream Llama-3.1-8B-Instruct, reply counted
//!   "yes" if it contains "yes"): [`judge_prompts`] builds upstream's judge prompts for every
//!   check whose entry exists; a caller with a judge model averages the yes-rate per check
//!   kind (once / range / periodic). Not computed here.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::pyliteral;
use super::util::{join, read_json_list, require_dir, Record};
use super::{DatasetError, DatasetInfo, LoadOptions, Loaded};
use crate::metrics::{Metric, MetricError};
use crate::sample::{Sample, Truncation};

/// Registry entries: `longgenbench/short` and `longgenbench/long`.
pub const TASKS: &[DatasetInfo] = &[
    DatasetInfo {
        name: "longgenbench/short",
        summary: "LongGenBench short set (~16k-token outputs, subset); completion rate, checks need a judge",
        metric: Metric::LongGenBench,
        loader: load_task,
    },
    DatasetInfo {
        name: "longgenbench/long",
        summary: "LongGenBench long set (~32k-token outputs, subset); completion rate, checks need a judge",
        metric: Metric::LongGenBench,
        loader: load_task,
    },
];

/// The three check kinds, as the record fields name them.
pub const CHECK_KINDS: [&str; 3] = ["checks_once", "checks_range", "checks_periodic"];

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

fn load_task(
    info: &DatasetInfo,
    root: &Path,
    _options: &LoadOptions,
) -> Result<Loaded, DatasetError> {
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

fn bad(sample: &Sample, reason: impl Into<String>) -> MetricError {
    MetricError::BadSample {
        sample: sample.id.clone(),
        reason: reason.into(),
    }
}

/// The first `"{kind} (\d+)"` (ASCII digits) in `block`.
fn entry_number(block: &str, kind: &str) -> Option<u64> {
    let pat = format!("{kind} ");
    let mut from = 0;
    while let Some(pos) = block[from..].find(&pat) {
        let start = from + pos + pat.len();
        let digits: &str = &block[start..];
        let len = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if len > 0 {
            return digits[..len].parse().ok();
        }
        from = from + pos + 1;
    }
    None
}

/// Upstream `parse_blocks` over `prefix + generated` split on `#*#`: entry number -> block.
pub fn entries(generated: &str, sample: &Sample) -> Result<BTreeMap<u64, String>, MetricError> {
    let kind = sample.meta["type"]
        .as_str()
        .ok_or_else(|| bad(sample, "meta.type missing"))?;
    let prefix = sample.meta["prefix"]
        .as_str()
        .ok_or_else(|| bad(sample, "meta.prefix missing"))?;
    let output = format!("{prefix}{generated}");
    let mut map = BTreeMap::new();
    for block in output.split("#*#") {
        if let Some(n) = entry_number(block, kind) {
            map.entry(n).or_insert_with(|| block.to_string());
        }
    }
    Ok(map)
}

/// The completion rate in `0.0..=1.0`: share of entries `1..=number` present in the output
/// (upstream `calculate_completion_rate`, which reports it ×100).
pub fn score(generated: &str, sample: &Sample) -> Result<f64, MetricError> {
    let number = sample.meta["number"]
        .as_u64()
        .ok_or_else(|| bad(sample, "meta.number missing"))?;
    if number == 0 {
        return Err(bad(sample, "meta.number is 0"));
    }
    let map = entries(generated, sample)?;
    let present = (1..=number).filter(|n| map.contains_key(n)).count();
    Ok(present as f64 / number as f64)
}

/// One judge question about one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JudgeCheck {
    /// `checks_once`, `checks_range` or `checks_periodic`.
    pub kind: &'static str,
    pub entry: u64,
    pub event: String,
    /// Upstream's judge prompt: `Context: {block}### Instruction: Does this context include
    /// the {event}? Please answer with 'yes' or 'no' only.`
    pub prompt: String,
}

/// The judge prompts for every check whose entry exists in the output (upstream
/// `create_prompts`); checks on missing entries are not asked, as upstream.
pub fn judge_prompts(generated: &str, sample: &Sample) -> Result<Vec<JudgeCheck>, MetricError> {
    let map = entries(generated, sample)?;
    let mut out = Vec::new();
    for kind in CHECK_KINDS {
        let checks = sample.meta[kind]
            .as_object()
            .ok_or_else(|| bad(sample, format!("meta.{kind} missing")))?;
        for (k, v) in checks {
            let entry: u64 = k
                .parse()
                .map_err(|_| bad(sample, format!("{kind}: bad index '{k}'")))?;
            let event = v.as_str().unwrap_or_default().to_string();
            if let Some(block) = map.get(&entry) {
                out.push(JudgeCheck {
                    kind,
                    entry,
                    prompt: format!("Context: {block}### Instruction: Does this context include the {event}? Please answer with 'yes' or 'no' only."),
                    event,
                });
            }
        }
    }
    Ok(out)
}

/// Upstream's reading of a judge reply: "yes" if the lower-cased reply contains "yes".
pub fn judge_says_yes(reply: &str) -> bool {
    reply.trim().to_lowercase().contains("yes")
}
