//! LongGenBench's rule-based scoring (mozhu621/LongGenBench `eval.py`): the completion rate
//! of the numbered entries, and the judge prompts of its LLM-checked constraints.

use std::collections::BTreeMap;

use crate::metrics::MetricError;
use crate::sample::Sample;

/// The three check kinds, as the record fields name them.
pub const CHECK_KINDS: [&str; 3] = ["checks_once", "checks_range", "checks_periodic"];

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
