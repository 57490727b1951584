//! `compare` of two runs: score differences per task (and length) and the samples whose
//! correctness flipped.

use super::{length_label, round2, score100, table, CORRECT_AT};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::store::{ResultRow, RunRecord, Store, StoreError};

/// One task's (or task-and-length's) scores over the samples both runs hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    pub task: String,
    pub length: Option<u64>,
    pub n: usize,
    pub a: f64,
    pub b: f64,
}

/// A sample whose correctness (score ≥ [`CORRECT_AT`]) differs between the runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Flip {
    pub task: String,
    pub sample_id: String,
    pub a: f64,
    pub b: f64,
    pub prediction_a: String,
    pub prediction_b: String,
}

/// `compare A B`.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub a: RunRecord,
    pub b: RunRecord,
    pub tasks: Vec<Diff>,
    pub lengths: Vec<Diff>,
    pub flips: Vec<Flip>,
    /// Samples only one run holds.
    pub only_a: usize,
    pub only_b: usize,
}

/// Compares two runs over the samples both hold (matched by task and sample id).
pub fn compare(store: &Store, a: i64, b: i64) -> Result<Comparison, StoreError> {
    let (ra, rb) = (store.run(a)?, store.run(b)?);
    let rows_a = store.results(a)?;
    let rows_b = store.results(b)?;
    let index: HashMap<(&str, &str), &ResultRow> = rows_b
        .iter()
        .map(|r| ((r.task.as_str(), r.sample_id.as_str()), r))
        .collect();
    let mut tasks: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut lengths: BTreeMap<(String, u64), (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut flips = Vec::new();
    let mut matched = 0;
    for x in &rows_a {
        let Some(y) = index.get(&(x.task.as_str(), x.sample_id.as_str())) else {
            continue;
        };
        matched += 1;
        let e = tasks.entry(x.task.clone()).or_default();
        e.0.push(x.score);
        e.1.push(y.score);
        if let Some(l) = x.length {
            let e = lengths.entry((x.task.clone(), l)).or_default();
            e.0.push(x.score);
            e.1.push(y.score);
        }
        if (x.score >= CORRECT_AT) != (y.score >= CORRECT_AT) {
            flips.push(Flip {
                task: x.task.clone(),
                sample_id: x.sample_id.clone(),
                a: x.score,
                b: y.score,
                prediction_a: x.prediction.clone(),
                prediction_b: y.prediction.clone(),
            });
        }
    }
    let diff = |task: String, length: Option<u64>, (sa, sb): (Vec<f64>, Vec<f64>)| Diff {
        task,
        length,
        n: sa.len(),
        a: score100(&sa),
        b: score100(&sb),
    };
    Ok(Comparison {
        only_a: rows_a.len() - matched,
        only_b: rows_b.len() - matched,
        a: ra,
        b: rb,
        tasks: tasks.into_iter().map(|(t, s)| diff(t, None, s)).collect(),
        lengths: lengths
            .into_iter()
            .map(|((t, l), s)| diff(t, Some(l), s))
            .collect(),
        flips,
    })
}

fn one_line(s: &str, n: usize) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

impl Comparison {
    /// The text rendering.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "A = {}\nB = {}\n", self.a.label(), self.b.label());
        let rows: Vec<Vec<String>> = self
            .tasks
            .iter()
            .map(|d| {
                vec![
                    d.task.clone(),
                    d.n.to_string(),
                    format!("{:.2}", d.a),
                    format!("{:.2}", d.b),
                    format!("{:+.2}", round2(d.b - d.a)),
                ]
            })
            .collect();
        table(&mut out, &["task", "n", "A", "B", "B-A"], &rows);
        if !self.lengths.is_empty() {
            out.push('\n');
            let rows: Vec<Vec<String>> = self
                .lengths
                .iter()
                .map(|d| {
                    vec![
                        d.task.clone(),
                        d.length.map(length_label).unwrap_or_default(),
                        d.n.to_string(),
                        format!("{:.2}", d.a),
                        format!("{:.2}", d.b),
                        format!("{:+.2}", round2(d.b - d.a)),
                    ]
                })
                .collect();
            table(&mut out, &["task", "length", "n", "A", "B", "B-A"], &rows);
        }
        let fixed = self.flips.iter().filter(|f| f.b >= CORRECT_AT).count();
        let _ = writeln!(
            out,
            "\nflipped samples (correct = score >= {CORRECT_AT}): {} ({} wrong→right, {} right→wrong)",
            self.flips.len(),
            fixed,
            self.flips.len() - fixed
        );
        for f in &self.flips {
            let _ = writeln!(
                out,
                "  {} {}: {:.2} → {:.2}   A: {:?}   B: {:?}",
                f.task,
                f.sample_id,
                f.a,
                f.b,
                one_line(&f.prediction_a, 40),
                one_line(&f.prediction_b, 40)
            );
        }
        if self.only_a + self.only_b > 0 {
            let _ = writeln!(
                out,
                "not compared: {} samples only in A, {} only in B",
                self.only_a, self.only_b
            );
        }
        out
    }
}
