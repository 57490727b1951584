//! Reports over the results store: per-task tables (mean score ×100 rounded to 2 decimals, as
//! upstream), per-length tables of synthetic tasks, RULER-style per-length family averages with
//! the effective length, needle heatmaps (depth × length), a comparison across runs, and
//! `compare` of two runs (score differences and flipped samples). Rendered as text or as one
//! self-contained HTML page (inline CSS and SVG, no external assets).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use crate::store::{ResultRow, RunRecord, Store, StoreError};

mod compare;
mod html;

pub use compare::{compare, Comparison, Diff, Flip};
pub use html::colour;

/// RULER's threshold for the effective length: Llama-2-7B's score at 4K.
pub const RULER_THRESHOLD: f64 = 85.6;

/// A sample counts as correct in `compare` when its score is at least this.
pub const CORRECT_AT: f64 = 0.5;

/// `100·mean`, rounded to 2 decimals as upstream's `round(100 * np.mean(scores), 2)`.
pub fn score100(scores: &[f64]) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    round2(100.0 * mean)
}

/// Rounds to 2 decimals (the exact binary value, as Python's `round(x, 2)`).
pub fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// One task of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRow {
    pub task: String,
    pub metric: String,
    pub n: usize,
    /// Mean score ×100, 2 decimals; error rows count as 0.
    pub score: f64,
    pub errors: usize,
    pub truncated: usize,
}

/// One (task, length) cell of a synthetic task.
#[derive(Clone, Debug, PartialEq)]
pub struct LengthRow {
    pub task: String,
    pub length: u64,
    pub n: usize,
    pub score: f64,
}

/// A family's per-length average over its tasks (RULER's aggregation) and effective length.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyLengths {
    pub family: String,
    /// `(length, average of the task scores at that length, tasks averaged)`, ascending.
    pub lengths: Vec<(u64, f64, usize)>,
    /// The longest length such that it and every shorter length average ≥ the threshold.
    pub effective: Option<u64>,
}

/// A needle heatmap: mean score ×100 per (depth, length); depth `None` = random placement.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    pub task: String,
    pub depths: Vec<Option<u32>>,
    pub lengths: Vec<u64>,
    /// `(depth, length) → (score, n)`.
    pub cells: BTreeMap<(Option<u32>, u64), (f64, usize)>,
}

/// Everything reported about one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub run: RunRecord,
    pub tasks: Vec<TaskRow>,
    pub lengths: Vec<LengthRow>,
    pub families: Vec<FamilyLengths>,
    pub heatmaps: Vec<Heatmap>,
    /// Mean of the task scores.
    pub average: f64,
}

/// A report over one or more runs.
#[derive(Clone, Debug)]
pub struct Report {
    pub runs: Vec<RunReport>,
    pub threshold: f64,
}

fn family(task: &str) -> &str {
    task.split_once('/').map_or(task, |(f, _)| f)
}

/// Aggregates the rows of one run.
pub fn run_report(run: RunRecord, rows: &[ResultRow], threshold: f64) -> RunReport {
    let mut by_task: BTreeMap<&str, Vec<&ResultRow>> = BTreeMap::new();
    for r in rows {
        by_task.entry(&r.task).or_default().push(r);
    }
    let tasks: Vec<TaskRow> = by_task
        .iter()
        .map(|(task, rs)| TaskRow {
            task: task.to_string(),
            metric: rs[0].metric.clone(),
            n: rs.len(),
            score: score100(&rs.iter().map(|r| r.score).collect::<Vec<_>>()),
            errors: rs.iter().filter(|r| r.error.is_some()).count(),
            truncated: rs.iter().filter(|r| r.truncated).count(),
        })
        .collect();
    let mut lengths = Vec::new();
    let mut heatmaps = Vec::new();
    for (task, rs) in &by_task {
        let mut by_len: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        let mut by_cell: BTreeMap<(Option<u32>, u64), Vec<f64>> = BTreeMap::new();
        for r in rs {
            if let Some(l) = r.length {
                by_len.entry(l).or_default().push(r.score);
                by_cell.entry((r.depth, l)).or_default().push(r.score);
            }
        }
        for (l, s) in &by_len {
            lengths.push(LengthRow {
                task: task.to_string(),
                length: *l,
                n: s.len(),
                score: score100(s),
            });
        }
        if by_cell.keys().any(|(d, _)| d.is_some()) {
            let depths: BTreeSet<Option<u32>> = by_cell.keys().map(|(d, _)| *d).collect();
            heatmaps.push(Heatmap {
                task: task.to_string(),
                depths: depths.into_iter().collect(),
                lengths: by_len.keys().copied().collect(),
                cells: by_cell
                    .iter()
                    .map(|(k, s)| (*k, (score100(s), s.len())))
                    .collect(),
            });
        }
    }
    let mut fam: BTreeMap<&str, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for l in &lengths {
        fam.entry(family(&l.task))
            .or_default()
            .entry(l.length)
            .or_default()
            .push(l.score);
    }
    let families = fam
        .into_iter()
        .map(|(f, by_len)| {
            let lengths: Vec<(u64, f64, usize)> = by_len
                .into_iter()
                .map(|(l, s)| (l, round2(s.iter().sum::<f64>() / s.len() as f64), s.len()))
                .collect();
            let effective = lengths
                .iter()
                .take_while(|(_, avg, _)| *avg >= threshold)
                .last()
                .map(|(l, _, _)| *l);
            FamilyLengths {
                family: f.to_string(),
                lengths,
                effective,
            }
        })
        .collect();
    let average = if tasks.is_empty() {
        0.0
    } else {
        round2(tasks.iter().map(|t| t.score).sum::<f64>() / tasks.len() as f64)
    };
    RunReport {
        run,
        tasks,
        lengths,
        families,
        heatmaps,
        average,
    }
}

/// Builds the report of `run_ids` (all runs when empty).
pub fn build(store: &Store, run_ids: &[i64], threshold: f64) -> Result<Report, StoreError> {
    let runs = if run_ids.is_empty() {
        store.runs()?
    } else {
        run_ids
            .iter()
            .map(|&id| store.run(id))
            .collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    for run in runs {
        let rows = store.results(run.id)?;
        out.push(run_report(run, &rows, threshold));
    }
    Ok(Report {
        runs: out,
        threshold,
    })
}

/// `4096` → `4k`; other values unchanged.
pub fn length_label(l: u64) -> String {
    if l >= 1024 && l.is_multiple_of(1024) {
        format!("{}k", l / 1024)
    } else {
        l.to_string()
    }
}

fn depth_label(d: Option<u32>) -> String {
    d.map_or("random".into(), |d| format!("{d}%"))
}

/// Plain-text tables with aligned columns.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<width$}", width = w[i])
                } else {
                    format!("{c:>width$}", width = w[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|s| s.to_string()).collect())
    );
    let _ = writeln!(out, "{}", line(w.iter().map(|n| "-".repeat(*n)).collect()));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.clone()));
    }
}

/// Columns of the per-task table.
const TASK_HEADER: [&str; 6] = ["task", "metric", "n", "score", "errors", "truncated"];

/// The per-task table of a run, one row per task.
fn task_rows(r: &RunReport) -> Vec<Vec<String>> {
    r.tasks
        .iter()
        .map(|t| {
            vec![
                t.task.clone(),
                t.metric.clone(),
                t.n.to_string(),
                format!("{:.2}", t.score),
                t.errors.to_string(),
                t.truncated.to_string(),
            ]
        })
        .collect()
}

/// The per-length table of a run: one row per task, then one per family average.
fn per_length_table(r: &RunReport) -> (Vec<String>, Vec<Vec<String>>) {
    let lens: BTreeSet<u64> = r.lengths.iter().map(|l| l.length).collect();
    let mut header = vec!["task".to_string()];
    header.extend(lens.iter().map(|l| length_label(*l)));
    let by: HashMap<(&str, u64), &LengthRow> = r
        .lengths
        .iter()
        .map(|l| ((l.task.as_str(), l.length), l))
        .collect();
    let tasks: BTreeSet<&str> = r.lengths.iter().map(|l| l.task.as_str()).collect();
    let cell = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    let mut rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let mut row = vec![t.to_string()];
            row.extend(
                lens.iter()
                    .map(|l| cell(by.get(&(*t, *l)).map(|c| c.score))),
            );
            row
        })
        .collect();
    for f in &r.families {
        let mut row = vec![format!("{} average", f.family)];
        row.extend(lens.iter().map(|l| {
            cell(
                f.lengths
                    .iter()
                    .find(|(x, _, _)| x == l)
                    .map(|(_, a, _)| *a),
            )
        }));
        rows.push(row);
    }
    (header, rows)
}

fn effective_text(f: &FamilyLengths, threshold: f64) -> String {
    match f.effective {
        Some(l) => format!(
            "effective length ({}): {} (longest length whose average stays >= {threshold})",
            f.family,
            length_label(l)
        ),
        None => format!(
            "effective length ({}): none (the shortest length averages below {threshold})",
            f.family
        ),
    }
}

impl Report {
    /// The text report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if self.runs.is_empty() {
            out.push_str("no runs in the database\n");
            return out;
        }
        for r in &self.runs {
            let run = &r.run;
            let _ = writeln!(out, "== run {} ==", run.label());
            let _ = writeln!(
                out,
                "model {} (sha {}), backend {}, policy {}{}, chat template: {}, truncation: {}, seed {}, git {}, longctx {}, {} → {}, {}",
                run.model,
                short_sha(&run.model_sha),
                run.backend,
                run.policy,
                if run.policy_options.is_empty() { String::new() } else { format!(" [{}]", run.policy_options) },
                run.chat_template,
                run.truncation,
                run.seed,
                run.git_commit,
                run.version,
                run.started_at,
                run.finished_at.as_deref().unwrap_or("-"),
                run.status
            );
            out.push('\n');
            table(&mut out, &TASK_HEADER, &task_rows(r));
            let _ = writeln!(out, "average over tasks: {:.2}\n", r.average);
            if !r.lengths.is_empty() {
                let (header, rows) = per_length_table(r);
                let h: Vec<&str> = header.iter().map(String::as_str).collect();
                table(&mut out, &h, &rows);
                for f in &r.families {
                    let _ = writeln!(out, "{}", effective_text(f, self.threshold));
                }
                let _ = writeln!(
                    out,
                    "(threshold {}: RULER uses 85.6, Llama-2-7B's score at 4K; set it with --threshold)\n",
                    self.threshold
                );
            }
        }
        if self.runs.len() > 1 {
            match self.shared_model() {
                Some(m) => {
                    let _ = writeln!(out, "== comparison ({m}) ==");
                }
                None => out.push_str("== comparison ==\n"),
            }
            let (header, rows) = self.comparison_rows();
            let h: Vec<&str> = header.iter().map(String::as_str).collect();
            table(&mut out, &h, &rows);
        }
        out
    }

    /// The model of every run, when they all share one.
    fn shared_model(&self) -> Option<&str> {
        let first = &self.runs.first()?.run.model;
        self.runs
            .iter()
            .all(|r| r.run.model == *first)
            .then_some(first.as_str())
    }

    /// Task × run scores (plus the average row).
    fn comparison_rows(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut header = vec!["task".to_string()];
        // One model for every run (the usual policy comparison): named once, not per column.
        let one_model = self.shared_model().is_some();
        header.extend(self.runs.iter().map(|r| {
            if one_model {
                r.run.short_label()
            } else {
                r.run.label()
            }
        }));
        let tasks: BTreeSet<&str> = self
            .runs
            .iter()
            .flat_map(|r| r.tasks.iter().map(|t| t.task.as_str()))
            .collect();
        let mut rows: Vec<Vec<String>> = tasks
            .iter()
            .map(|t| {
                let mut row = vec![t.to_string()];
                row.extend(self.runs.iter().map(|r| {
                    r.tasks
                        .iter()
                        .find(|x| x.task == *t)
                        .map_or("-".into(), |x| format!("{:.2}", x.score))
                }));
                row
            })
            .collect();
        let mut avg = vec!["average".to_string()];
        avg.extend(self.runs.iter().map(|r| format!("{:.2}", r.average)));
        rows.push(avg);
        (header, rows)
    }
}

fn short_sha(s: &str) -> String {
    if s.len() > 16 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        s[..12].to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{record, row, temp_db};

    fn synth(task: &str, id: &str, length: u64, depth: Option<u32>, score: f64) -> ResultRow {
        let mut r = row(task, id, score);
        r.length = Some(length);
        r.depth = depth;
        r
    }

    /// Two runs with hand-checked scores.
    fn fixture(name: &str) -> Store {
        let mut store = Store::open(&temp_db(name)).unwrap();
        let a = store.begin_run(&record("a")).unwrap();
        let mut rb = record("b");
        rb.policy = "streaming".into();
        let b = store.begin_run(&rb).unwrap();
        // Run A, ruler/x: 4k → 1, 1 (100); 8k → 1, 0.5 (75); 16k → 1, 1 (100 — but 8k failed).
        // ruler/y: 4k → 0.8 (80); 8k → 1 (100).
        // Averages per length: 4k (100+80)/2 = 90; 8k (75+100)/2 = 87.5; 16k 100 → effective 16k.
        for (id, l, d, s) in [
            ("x1", 4096, Some(10), 1.0),
            ("x2", 4096, Some(90), 1.0),
            ("x3", 8192, Some(10), 1.0),
            ("x4", 8192, Some(90), 0.5),
            ("x5", 16384, Some(10), 1.0),
            ("x6", 16384, Some(90), 1.0),
        ] {
            store.insert(a, &synth("ruler/x", id, l, d, s)).unwrap();
        }
        store
            .insert(a, &synth("ruler/y", "y1", 4096, None, 0.8))
            .unwrap();
        store
            .insert(a, &synth("ruler/y", "y2", 8192, None, 1.0))
            .unwrap();
        let mut e = row("longbench/qa", "q1", 0.0);
        e.error = Some("context overflow".into());
        e.truncated = true;
        store.insert(a, &e).unwrap();
        store
            .insert(a, &row("longbench/qa", "q2", 1.0 / 3.0))
            .unwrap();
        // Run B: x4 right, x1 wrong, qa q2 0.
        for (id, l, d, s) in [
            ("x1", 4096, Some(10), 0.0),
            ("x2", 4096, Some(90), 1.0),
            ("x3", 8192, Some(10), 1.0),
            ("x4", 8192, Some(90), 1.0),
        ] {
            store.insert(b, &synth("ruler/x", id, l, d, s)).unwrap();
        }
        store.insert(b, &row("longbench/qa", "q2", 0.0)).unwrap();
        store
    }

    #[test]
    fn rounding_matches_upstream() {
        assert_eq!(score100(&[1.0, 0.0, 0.0]), 33.33);
        assert_eq!(score100(&[2.0 / 3.0]), 66.67);
        assert_eq!(score100(&[]), 0.0);
        assert_eq!(colour(0.0), "#d73027");
        assert_eq!(colour(100.0), "#1a9850");
    }

    #[test]
    fn report_tables_effective_length_and_heatmap() {
        let store = fixture("report.sqlite");
        let rep = build(&store, &[1], 85.6).unwrap();
        let r = &rep.runs[0];
        let t = |name: &str| r.tasks.iter().find(|t| t.task == name).unwrap().clone();
        assert_eq!(t("ruler/x").score, 91.67); // 5.5 / 6
        assert_eq!(t("ruler/y").score, 90.0);
        let qa = t("longbench/qa");
        assert_eq!((qa.n, qa.score, qa.errors, qa.truncated), (2, 16.67, 1, 1));
        assert_eq!(r.average, round2((91.67 + 90.0 + 16.67) / 3.0));
        let f = &r.families[0];
        assert_eq!(f.family, "ruler");
        assert_eq!(
            f.lengths,
            vec![(4096, 90.0, 2), (8192, 87.5, 2), (16384, 100.0, 1)]
        );
        assert_eq!(f.effective, Some(16384));
        // A higher threshold: 8k fails, so 16k does not count either.
        let strict = build(&store, &[1], 89.0).unwrap();
        assert_eq!(strict.runs[0].families[0].effective, Some(4096));
        let none = build(&store, &[1], 95.0).unwrap();
        assert_eq!(none.runs[0].families[0].effective, None);

        let m = &r.heatmaps[0];
        assert_eq!(m.task, "ruler/x");
        assert_eq!(m.cells[&(Some(90), 8192)], (50.0, 1));
        assert_eq!(r.heatmaps.len(), 1, "ruler/y has random depths only");

        // The per-length table both renderings print: tasks, then the family average.
        let (header, rows) = per_length_table(r);
        assert_eq!(header, ["task", "4k", "8k", "16k"]);
        assert_eq!(
            rows.last().unwrap(),
            &["ruler average", "90.00", "87.50", "100.00"]
        );
        let text = rep.text();
        assert!(text.contains("effective length (ruler): 16k"), "{text}");
        assert!(text.contains("85.6"), "{text}");
        assert!(text.contains("91.67") && text.contains("87.50"), "{text}");

        let html = rep.html();
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
        assert!(!html.contains("<link") && !html.contains("<script src"));
        assert!(html.contains("data-depth=\"90%\" data-length=\"8192\" data-score=\"50.00\""));
        assert!(html.contains(">50.0</text>") && html.contains(">100.0</text>"));
        assert!(html.contains("class=\"legend\""));
        assert!(html.contains("85.6"));
        // Every opened element of the SVG is closed.
        for tag in ["svg", "g", "text", "table", "section"] {
            assert_eq!(
                html.matches(&format!("<{tag} ")).count()
                    + html.matches(&format!("<{tag}>")).count(),
                html.matches(&format!("</{tag}>")).count(),
                "{tag}"
            );
        }
    }

    #[test]
    fn several_runs_get_a_comparison_table_and_compare_finds_flips() {
        let store = fixture("compare.sqlite");
        let rep = build(&store, &[], 85.6).unwrap();
        assert_eq!(rep.runs.len(), 2);
        let text = rep.text();
        // Both runs use m.gguf: the comparison names it once and heads columns by policy.
        assert!(text.contains("== comparison (m.gguf) =="), "{text}");
        let (header, _) = rep.comparison_rows();
        assert_eq!(header, ["task", "#1 full", "#2 streaming"]);
        assert!(rep
            .html()
            .contains("Comparison across runs</h2><p>model: m.gguf</p>"));

        let c = compare(&store, 1, 2).unwrap();
        let x = c.tasks.iter().find(|d| d.task == "ruler/x").unwrap();
        assert_eq!((x.n, x.a, x.b), (4, 87.5, 75.0));
        let l8 = c
            .lengths
            .iter()
            .find(|d| d.task == "ruler/x" && d.length == Some(8192))
            .unwrap();
        assert_eq!((l8.a, l8.b), (75.0, 100.0));
        let mut flipped: Vec<&str> = c.flips.iter().map(|f| f.sample_id.as_str()).collect();
        flipped.sort();
        // x4 goes 0.5 → 1: correct (≥ 0.5) in both, so not a flip.
        assert_eq!(flipped, ["x1"]);
        assert_eq!((c.only_a, c.only_b), (5, 0));
        let text = c.text();
        assert!(
            text.contains("flipped samples") && text.contains("-12.50"),
            "{text}"
        );
        assert!(compare(&store, 1, 7)
            .unwrap_err()
            .to_string()
            .contains("no run with id 7"));
    }
}
