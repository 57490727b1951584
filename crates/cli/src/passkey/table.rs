//! What `longctx passkey` prints: one line per finished sample, and the final accuracy tables
//! read back from the results store.

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;
use longctx_bench::store::{ResultRow, Store};
use longctx_bench::Sample;

use super::{length_label, PasskeyArgs};

/// `"abc…"`: the output as a quoted, escaped, shortened string.
fn short_quoted(text: &str, max_chars: usize) -> String {
    let shortened: String = text.chars().take(max_chars).collect();
    let ellipsis = if text.chars().count() > max_chars {
        "…"
    } else {
        ""
    };
    format!("{shortened:?}{ellipsis}")
}

/// A number from a stored row's meta.
fn meta_u64(row: &ResultRow, key: &str) -> u64 {
    row.meta
        .get(key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// Whether a stored row counts as found: no error and a full score.
fn correct(row: &ResultRow) -> bool {
    row.error.is_none() && row.score == 1.0
}

/// One line per finished sample; `rss` is the peak RSS while it ran, when known.
pub(super) fn sample_row(
    label: &str,
    label_width: usize,
    row: &ResultRow,
    rss: Option<f64>,
) -> String {
    let verdict = match (&row.error, correct(row)) {
        (Some(_), _) => "ERROR",
        (None, true) => "PASS",
        (None, false) => "FAIL",
    };
    let mut line = format!(
        "{label:<label_width$} len {:>6}  depth {:>3}%  #{:<3} K={:<8} {verdict:<5} out {}",
        meta_u64(row, "length"),
        meta_u64(row, "depth"),
        meta_u64(row, "sample"),
        meta_u64(row, "passkey"),
        short_quoted(&row.prediction, 24)
    );
    if row.prompt_tokens > 0 {
        line += &format!(
            "  {} tok, {:.2} s, {} new tok",
            row.prompt_tokens,
            row.latency_ms as f64 / 1000.0,
            row.completion_tokens
        );
    }
    if let Some(rss) = rss {
        line += &format!(", peak RSS {rss:.0} MiB");
    }
    if let Some(e) = &row.error {
        line += &format!("\n    error: {e}");
    }
    line
}

/// Accuracy and averages over a set of stored rows.
#[derive(Default)]
struct Tally {
    total: usize,
    correct: usize,
    errors: usize,
    prompt_tokens: u64,
    seconds: f64,
    new_tokens: u64,
    first_error: Option<String>,
}

impl Tally {
    fn add(&mut self, row: &ResultRow) {
        self.total += 1;
        self.correct += usize::from(correct(row));
        self.prompt_tokens += row.prompt_tokens;
        self.seconds += row.latency_ms as f64 / 1000.0;
        self.new_tokens += row.completion_tokens;
        if let Some(e) = &row.error {
            self.errors += 1;
            self.first_error.get_or_insert_with(|| e.clone());
        }
    }

    fn accuracy(&self) -> String {
        if self.total == 0 {
            return "–".into();
        }
        let errors = if self.errors > 0 {
            format!(", {} err", self.errors)
        } else {
            String::new()
        };
        format!(
            "{:.1}% ({}/{}{errors})",
            100.0 * self.correct as f64 / self.total as f64,
            self.correct,
            self.total
        )
    }

    /// A per-sample mean with `digits` decimals; `–` without samples.
    fn mean(&self, sum: f64, digits: usize) -> String {
        if self.total == 0 {
            return "–".into();
        }
        format!("{:.digits$}", sum / self.total as f64)
    }
}

/// One policy's stored results for this grid.
pub(super) struct PolicyResults {
    label: String,
    /// By (length, depth).
    cells: BTreeMap<(u64, u64), Vec<ResultRow>>,
}

impl PolicyResults {
    fn tally(&self, lengths: &[usize], depth: Option<u32>) -> Tally {
        let mut tally = Tally::default();
        for ((length, d), rows) in &self.cells {
            let in_lengths = lengths.iter().any(|&l| l as u64 == *length);
            if in_lengths && depth.is_none_or(|want| u64::from(want) == *d) {
                rows.iter().for_each(|r| tally.add(r));
            }
        }
        tally
    }
}

/// The final tables: accuracy per policy × length, then per cell (policy, length, depth).
pub(super) fn print_tables(args: &PasskeyArgs, model: &str, results: &[PolicyResults]) {
    let depths: Vec<String> = args.depths.iter().map(u32::to_string).collect();
    println!(
        "\npasskey accuracy: {model}, depths {}%, {} sample(s) per depth, seed {}, greedy, max {} tokens",
        depths.join(","),
        args.samples,
        args.seed,
        args.max_tokens
    );
    let mut header = "| policy |".to_string();
    let mut rule = "| --- |".to_string();
    for &length in &args.lengths {
        header += &format!(" {} |", length_label(length));
        rule += " ---: |";
    }
    println!("{header} all |\n{rule} ---: |");
    for p in results {
        let mut line = format!("| {} |", p.label);
        for &length in &args.lengths {
            line += &format!(" {} |", p.tally(&[length], None).accuracy());
        }
        println!("{line} {} |", p.tally(&args.lengths, None).accuracy());
    }

    println!("\nper cell:");
    println!("| policy | length | depth | accuracy | prompt tokens | seconds | new tokens |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut errors = Vec::new();
    for p in results {
        for &length in &args.lengths {
            for &depth in &args.depths {
                let t = p.tally(&[length], Some(depth));
                println!(
                    "| {} | {} | {depth}% | {} | {} | {} | {} |",
                    p.label,
                    length_label(length),
                    t.accuracy(),
                    t.mean(t.prompt_tokens as f64, 0),
                    t.mean(t.seconds, 2),
                    t.mean(t.new_tokens as f64, 1),
                );
                if let Some(e) = t.first_error {
                    errors.push(format!(
                        "{} @ {} depth {depth}%: {e}",
                        p.label,
                        length_label(length)
                    ));
                }
            }
        }
    }
    if !errors.is_empty() {
        println!("\nerrors (first per cell):");
        for e in errors {
            println!("  {e}");
        }
    }
}

/// The stored rows of `run_id` that belong to this grid's samples, by cell.
pub(super) fn grid_results(
    store: &Store,
    run_id: i64,
    label: String,
    samples: &[Sample],
) -> Result<PolicyResults> {
    let ids: HashSet<&str> = samples.iter().map(|s| s.id.as_str()).collect();
    let mut cells: BTreeMap<(u64, u64), Vec<ResultRow>> = BTreeMap::new();
    for row in store.results(run_id)? {
        if row.task == "passkey" && ids.contains(row.sample_id.as_str()) {
            let cell = (row.length.unwrap_or(0), u64::from(row.depth.unwrap_or(0)));
            cells.entry(cell).or_default().push(row);
        }
    }
    Ok(PolicyResults { label, cells })
}
