//! Ports of LongProc's rule-based scorers (princeton-pli/LongProc `longproc/*.py`, commit
//! 78e873a); the loader and prompt builder are in [`crate::datasets::longproc`].
//!
//! [`score`] returns LongProc's headline metric per task, in `0.0..=1.0`:
//! - html_to_tsv: row-level F1 ([`score_html_to_tsv`]);
//! - pseudo_to_code: accuracy — compile with `g++ -std=c++11 -O` and run the first 10 test
//!   cases with a 3 s limit each ([`score_pseudo_to_code`]); **this executes model-written
//!   code, unsandboxed, exactly as upstream does**; without `g++` it is an error, not a score;
//! - path_traversal, tom_tracking, countdown: `partial_accuracy` (upstream also reports the
//!   strict `accuracy`; both are in [`Scores`] from [`score_detailed`]).
//!
//! Upstream's exception paths where its evaluator would crash score 0 here (noted per function).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::json::str_list;
use crate::metrics::MetricError;
use crate::sample::Sample;

/// All of a LongProc evaluator's numbers for one prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// The headline metric [`score`] returns (F1 for html_to_tsv, accuracy for
    /// pseudo_to_code, partial accuracy for the others).
    pub main: f64,
    /// Strict accuracy (html_to_tsv: F1 as well).
    pub accuracy: f64,
    pub partial_accuracy: f64,
    /// Whether the answer could be extracted from the output.
    pub extracted: bool,
    /// Why the score is not 1 (first differing line, compile error…), when known.
    pub error: Option<String>,
}

impl Scores {
    /// A fully correct answer.
    fn correct() -> Scores {
        Scores {
            main: 1.0,
            accuracy: 1.0,
            partial_accuracy: 1.0,
            extracted: true,
            error: None,
        }
    }

    /// A zero score, with why.
    fn zero(extracted: bool, why: &str) -> Scores {
        Scores {
            main: 0.0,
            accuracy: 0.0,
            partial_accuracy: 0.0,
            extracted,
            error: Some(why.into()),
        }
    }
}

fn bad(sample: &Sample, reason: impl Into<String>) -> MetricError {
    MetricError::BadSample {
        sample: sample.id.clone(),
        reason: reason.into(),
    }
}

/// Scores a prediction with the LongProc scorer of `meta.longproc_task` (see module docs).
pub fn score(prediction: &str, sample: &Sample) -> Result<f64, MetricError> {
    Ok(score_detailed(prediction, sample)?.main)
}

/// Like [`score`], with strict and partial accuracy and the extraction flag.
pub fn score_detailed(prediction: &str, sample: &Sample) -> Result<Scores, MetricError> {
    let task = sample.meta["longproc_task"]
        .as_str()
        .ok_or_else(|| bad(sample, "meta.longproc_task missing"))?;
    let reference = sample
        .answers
        .first()
        .ok_or_else(|| bad(sample, "no reference output"))?;
    match task {
        "html_to_tsv" => {
            let (f1, err) = score_html_to_tsv(prediction, reference);
            Ok(Scores {
                main: f1,
                accuracy: f1,
                partial_accuracy: f1,
                extracted: err.is_none(),
                error: err,
            })
        }
        "path_traversal" => Ok(score_path_traversal(prediction, reference)),
        "tom_tracking" => Ok(score_tom_tracking(prediction, reference)),
        "countdown" => {
            let nums: Vec<i64> = sample.meta["nums"]
                .as_array()
                .and_then(|a| a.iter().map(Value::as_i64).collect())
                .ok_or_else(|| bad(sample, "meta.nums missing"))?;
            let target = sample.meta["target"]
                .as_i64()
                .ok_or_else(|| bad(sample, "meta.target missing"))?;
            Ok(score_countdown(prediction, &nums, target, reference))
        }
        "pseudo_to_code" => {
            let tests = parse_testcases(&sample.meta["testcases"]).map_err(|r| bad(sample, r))?;
            score_pseudo_to_code(prediction, &tests).map_err(|r| bad(sample, r))
        }
        other => Err(bad(sample, format!("unknown LongProc task '{other}'"))),
    }
}

/// `_extract_with_tag`: the stripped text between the first `<tag>` and the first `</tag>`.
fn extract_with_tag(response: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = response.find(&open)?;
    let end = response.find(&format!("</{tag}>"))?;
    let from = start + open.len();
    Some(if end > from {
        response[from..end].trim().to_string()
    } else {
        String::new()
    })
}

/// Path traversal (`eval_path_traversal`): exact route → 1; otherwise partial accuracy =
/// (index of the first differing line + 1) / gold lines — upstream's `i += 1` after the loop
/// counts the differing line too — or (shorter length) / gold lines when one route is a
/// prefix of the other. No `<Route>…</Route>` → 0.
pub fn score_path_traversal(prediction: &str, reference: &str) -> Scores {
    let Some(pred) = extract_with_tag(prediction, "Route") else {
        return Scores::zero(false, "no <Route> tags");
    };
    let gt = reference.trim();
    if gt == pred {
        return Scores::correct();
    }
    let gt_lines: Vec<&str> = gt.split('\n').collect();
    let pred_lines: Vec<&str> = pred.split('\n').collect();
    let mut i = 0;
    let mut error = None;
    for (k, (g, p)) in gt_lines.iter().zip(&pred_lines).enumerate() {
        i = k;
        if g != p {
            error = Some(format!("line {k}: expected '{g}', got '{p}'"));
            break;
        }
    }
    let partial = (i + 1) as f64 / gt_lines.len() as f64;
    Scores {
        main: partial,
        accuracy: 0.0,
        partial_accuracy: partial,
        extracted: true,
        error,
    }
}

/// `_normalize_tom`: lower-case, drop ASCII punctuation and `’`, drop the listed filler
/// words, collapse whitespace.
fn normalize_tom(s: &str) -> String {
    const WORDS: [&str; 18] = [
        "a", "an", "the", "on", "in", "at", "step", "thinks", "think", "believes", "believe", "is",
        "are", "of", "location", "know", "knows", "belief",
    ];
    let lower = s.to_lowercase();
    let no_punct: String = lower
        .chars()
        .filter(|c| !c.is_ascii_punctuation() && *c != '’')
        .collect();
    replace_words(&no_punct, &WORDS)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces whole words (maximal runs of alphanumerics and `_`, Python's `\w`) that are in
/// `words` by a space, as `re.sub(r'\b(w1|w2|…)\b', ' ', text)` does.
fn replace_words(text: &str, words: &[&str]) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if words.contains(&run.as_str()) {
            out.push(' ');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// ToM tracking (`eval_tom_tracking` + `evaluate_tom_trace`): compare the normalised `- `
/// trace lines; strict 1 when all equal and equally many; else partial = index of the first
/// differing line / gold lines, or (shorter count) / gold lines when one is a prefix.
pub fn score_tom_tracking(prediction: &str, reference: &str) -> Scores {
    let beliefs = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.trim().starts_with('-'))
            .filter(|l| l.starts_with('-'))
            .map(|l| normalize_tom(l.split_once('-').map_or("", |(_, r)| r).trim()))
            .filter(|b| !b.is_empty())
            .collect()
    };
    let pred = beliefs(prediction);
    let gold = beliefs(reference);
    if pred == gold {
        return Scores::correct();
    }
    if gold.is_empty() {
        return Scores::zero(true, "reference has no trace lines");
    }
    let first_diff = pred.iter().zip(&gold).position(|(a, b)| a != b);
    let (partial, error) = match first_diff {
        Some(k) => (
            k as f64 / gold.len() as f64,
            Some(format!(
                "line {k}: expected '{}', got '{}'",
                gold[k], pred[k]
            )),
        ),
        None => (
            pred.len().min(gold.len()) as f64 / gold.len() as f64,
            Some(format!(
                "{} trace lines, expected {}",
                pred.len(),
                gold.len()
            )),
        ),
    };
    Scores {
        main: partial,
        accuracy: 0.0,
        partial_accuracy: partial,
        extracted: true,
        error,
    }
}

/// Python `int()` of a string: optional surrounding whitespace and sign, ASCII digits.
fn py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
        || digits.starts_with('_')
        || digits.ends_with('_')
    {
        return None;
    }
    t.replace('_', "").parse().ok()
}

/// `evaluate_countdown_final_solution`: three lines `a op b = c`, each correct, each using
/// two numbers still available and adding its result; the last result equals the target.
/// Lines whose left side is not `int op int` fail (upstream raises or returns False).
pub fn countdown_solution_ok(nums: &[i64], target: i64, solution: &str) -> bool {
    let mut pool: Vec<i64> = nums.to_vec();
    let lines: Vec<&str> = solution.split('\n').collect();
    if lines.len() != 3 {
        return false;
    }
    for line in lines {
        let line = line.trim();
        let parts: Vec<&str> = line.split('=').collect();
        if parts.len() != 2 {
            return false;
        }
        let (lhs, rhs) = (parts[0], parts[1]);
        let Some(op) = ['+', '-', '*', '/'].into_iter().find(|&o| lhs.contains(o)) else {
            return false;
        };
        let operands: Vec<&str> = lhs.split(op).collect();
        if operands.len() != 2 {
            return false;
        }
        let (Some(a), Some(b), Some(c)) = (py_int(operands[0]), py_int(operands[1]), py_int(rhs))
        else {
            return false;
        };
        let correct = match op {
            '+' => a.checked_add(b) == Some(c),
            '-' => a.checked_sub(b) == Some(c),
            '*' => a.checked_mul(b) == Some(c),
            _ => b != 0 && b.checked_mul(c) == Some(a),
        };
        if !correct {
            return false;
        }
        let Some(ia) = pool.iter().position(|&x| x == a) else {
            return false;
        };
        pool.remove(ia);
        let Some(ib) = pool.iter().position(|&x| x == b) else {
            return false;
        };
        pool.remove(ib);
        pool.push(c);
    }
    pool.first() == Some(&target)
}

/// `evaluate_countdown_search_procedure`: lines after the first must track the reference
/// procedure — identical `Pick two numbers` lines, `Try` lines equal up to `=` with the same
/// drop/keep decision — and the score is the index of the last compared line / reference
/// lines after the first (upstream's formula; clamped at 0 where upstream would go negative).
fn countdown_procedure_score(pred: &str, gt: &str) -> (f64, Option<String>) {
    let pred_lines: Vec<&str> = pred.trim().split('\n').collect();
    let gt_lines: Vec<&str> = gt.trim().split('\n').collect();
    if pred_lines[0] != gt_lines[0] {
        return (0.0, Some("first line differs".into()));
    }
    let (pred_lines, gt_lines) = (&pred_lines[1..], &gt_lines[1..]);
    if gt_lines.is_empty() {
        return (0.0, Some("reference procedure has one line".into()));
    }
    let mut idx: i64 = -1;
    let mut error = None;
    for (p, g) in pred_lines.iter().zip(gt_lines) {
        idx += 1;
        if p == g {
            continue;
        }
        if g.contains("Pick two numbers") {
            error = Some(format!("line {idx}: expected '{g}', got '{p}'"));
            break;
        } else if g.contains("|- Try") {
            let pe = p.split('=').next().unwrap_or("");
            let ge = g.split('=').next().unwrap_or("");
            if pe != ge || g.contains("drop this branch") != p.contains("drop this branch") {
                error = Some(format!("line {idx}: expected '{g}', got '{p}'"));
                break;
            }
        } else {
            error = Some(format!("unexpected reference line '{g}'"));
            break;
        }
    }
    ((idx as f64 / gt_lines.len() as f64).max(0.0), error)
}

/// Countdown (`eval_countdown`): accuracy 1 when the `<Solution>` is valid; otherwise
/// partial credit from the search procedure after `# Search Procedure` compared with the
/// reference procedure (`reference` = the regenerated demonstration).
pub fn score_countdown(prediction: &str, nums: &[i64], target: i64, reference: &str) -> Scores {
    let solution = extract_with_tag(prediction, "Solution");
    if let Some(s) = &solution {
        if countdown_solution_ok(nums, target, s) {
            return Scores::correct();
        }
    }
    let extracted = solution.is_some();
    let Some(pos) = prediction.rfind("# Search Procedure") else {
        return Scores::zero(extracted, "no '# Search Procedure'");
    };
    let pred_proc = prediction[pos + "# Search Procedure".len()..].trim();
    let gt_after = reference.rsplit("# Search Procedure").next().unwrap_or("");
    let gt_proc = gt_after
        .split("Now we have found the target")
        .next()
        .unwrap_or("")
        .trim();
    let (partial, error) = countdown_procedure_score(pred_proc, gt_proc);
    Scores {
        main: partial,
        accuracy: 0.0,
        partial_accuracy: partial,
        extracted,
        error,
    }
}

/// LongProc's HTML→TSV answer normalisation: lower-case, drop ASCII punctuation, drop the
/// words a/an/the, drop all whitespace.
fn normalize_cell(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punct: String = lower
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    replace_words(&no_punct, &["a", "an", "the"])
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Python's `csv.reader(lines, delimiter='\t')` (default dialect, non-strict): `"` quoting
/// with `""` escapes; a quoted field left open continues on the next line; text after a
/// closing quote is appended; an empty line is a row with no fields.
fn tsv_rows(lines: &[&str]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut after_quote = false;
    let mut started = false;
    for line in lines {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut chars = line.chars().peekable();
        if !in_quotes && line.is_empty() {
            rows.push(Vec::new());
            continue;
        }
        while let Some(c) = chars.next() {
            if in_quotes {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        in_quotes = false;
                        after_quote = true;
                    }
                } else {
                    field.push(c);
                }
            } else if c == '\t' {
                row.push(std::mem::take(&mut field));
                started = false;
                after_quote = false;
            } else if c == '"' && !started && !after_quote {
                in_quotes = true;
                started = true;
            } else {
                field.push(c);
                started = true;
            }
        }
        if !in_quotes {
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
            started = false;
            after_quote = false;
        }
    }
    if in_quotes {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// `_string_to_pd`: header = first row; a ragged last row is dropped, other ragged rows become
/// all `N/A`; cells normalised. None where upstream fails (no rows after the header).
fn tsv_table(text: &str) -> Option<(usize, Vec<Vec<String>>)> {
    let lines: Vec<&str> = text.trim().split('\n').collect();
    let mut rows = tsv_rows(&lines);
    if rows.is_empty() {
        return None;
    }
    let header = rows.remove(0);
    let width = header.len();
    if rows.last()?.len() != width {
        rows.pop();
    }
    let table = rows
        .into_iter()
        .map(|r| {
            if r.len() == width {
                r.iter().map(|c| normalize_cell(c)).collect()
            } else {
                vec![normalize_cell("N/A"); width]
            }
        })
        .collect();
    Some((width, table))
}

/// HTML→TSV (`eval_html_to_tsv` + `evaluate_html_to_csv_compute_metrics`): the text of the
/// ```` ```tsv ```` fence (greedy, to the last fence) or the whole reply, parsed as TSV;
/// precision = predicted rows equal to some gold row, recall = gold rows equal to some
/// predicted row (order-insensitive), F1. Returns the F1 and the reason it is 0 where
/// upstream's evaluator fails (no data rows, column counts differ).
pub fn score_html_to_tsv(prediction: &str, reference: &str) -> (f64, Option<String>) {
    let extracted = match prediction.find("```tsv") {
        Some(start) => {
            let body = &prediction[start + 6..];
            match body.rfind("```") {
                Some(end) => body[..end].trim().to_string(),
                None => body.split("```tsv").next().unwrap_or("").trim().to_string(),
            }
        }
        None => prediction.trim().to_string(),
    };
    let Some((gw, gold)) = tsv_table(reference) else {
        return (0.0, Some("reference has no rows".into()));
    };
    let Some((pw, pred)) = tsv_table(&extracted) else {
        return (0.0, Some("prediction has no data rows".into()));
    };
    if pred.is_empty() || gold.is_empty() {
        return (0.0, Some("no data rows".into()));
    }
    if pw != gw {
        return (0.0, Some(format!("{pw} columns, expected {gw}")));
    }
    let precision = pred.iter().filter(|r| gold.contains(r)).count() as f64 / pred.len() as f64;
    let recall = gold.iter().filter(|r| pred.contains(r)).count() as f64 / gold.len() as f64;
    if precision + recall == 0.0 {
        return (0.0, None);
    }
    (2.0 * precision * recall / (precision + recall), None)
}

/// The header upstream prepends to the model's C++ (`spoc_evaluator._IMPORT_HEADER`).
pub const SPOC_HEADER: &str = "#include <cstdio>\n#include <iostream>\n#include <vector>\n#include <algorithm>\n#include <numeric>\n#include <cmath>\n#include <cstring>\n#include <set>\n#include <map>\n#include <queue>\n#include <stack>\n#include <list>\n#include <fstream>\n#include <climits>\n#include <cassert>\n#include <iomanip>\n#include <sstream>\n#include <bitset>\nusing namespace std;\n";

/// The code of the ```` ```cpp ```` (or ```` ```c++ ````) fence, greedy to the last fence,
/// unstripped, as upstream's regex.
pub fn extract_cpp(prediction: &str) -> Option<String> {
    let text = prediction.replace("```c++", "```cpp");
    let start = text.find("```cpp")? + 6;
    let end = text[start..].rfind("```")?;
    Some(text[start..start + end].to_string())
}

/// Pseudo→code (`eval_pseudo_to_code` + `evaluate_spoc_code`): compile
/// `SPOC_HEADER + code` with `g++ -std=c++11 -O`, run the first 10 test cases (stdin = input
/// lines joined by `\n` plus `\n`, 3 s each) and require stdout to equal the expected lines
/// joined by `\n` plus `\n`. Accuracy 1 or 0; a compile error, timeout or wrong output is 0.
/// **Runs model-written code unsandboxed** (as upstream). Err when `g++` cannot be started.
pub fn score_pseudo_to_code(prediction: &str, tests: &[TestCase]) -> Result<Scores, String> {
    let zero = Scores::zero;
    let Some(code) = extract_cpp(prediction) else {
        return Ok(zero(false, "no ```cpp block"));
    };
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("longctx-spoc-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = (|| {
        let cpp = dir.join("prog.cpp");
        let exe = dir.join("prog.bin");
        std::fs::write(&cpp, format!("{SPOC_HEADER}{code}"))
            .map_err(|e| format!("{}: {e}", cpp.display()))?;
        let status = Command::new("g++")
            .args(["-std=c++11", "-O", "-o"])
            .arg(&exe)
            .arg(&cpp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run g++ (needed to score pseudo_to_code): {e}"))?;
        if !status.success() {
            return Ok(zero(true, "compilation error"));
        }
        for (inputs, outputs) in tests.iter().take(10) {
            let input = format!("{}\n", inputs.join("\n"));
            let expected = format!("{}\n", outputs.join("\n"));
            match run_with_timeout(&exe, input.as_bytes(), Duration::from_secs(3)) {
                Ok(Some(out)) => match String::from_utf8(out) {
                    Ok(s) if s == expected => {}
                    Ok(_) => return Ok(zero(true, "inconsistent")),
                    Err(_) => return Ok(zero(true, "decode error")),
                },
                Ok(None) => return Ok(zero(true, "timeout")),
                Err(_) => return Ok(zero(true, "exec error")),
            }
        }
        Ok(Scores::correct())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Runs `exe` with `input` on stdin; Some(stdout) when it exits within `limit`, None on
/// timeout (the process is killed).
fn run_with_timeout(exe: &Path, input: &[u8], limit: Duration) -> std::io::Result<Option<Vec<u8>>> {
    let mut child = Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let start = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let _ = writer.join();
            let _ = reader.join();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = writer.join();
    Ok(Some(reader.join().unwrap_or_default()))
}

/// One SPoC test case: input lines and expected output lines.
pub type TestCase = (Vec<String>, Vec<String>);

/// Reads `[[inputs], [outputs]]` pairs.
pub fn parse_testcases(v: &Value) -> Result<Vec<TestCase>, String> {
    let items = v.as_array().ok_or("expected a list of test cases")?;
    items
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let pair = t
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or(format!("test case {k}: expected [inputs, outputs]"))?;
            let inputs = str_list(&pair[0]).map_err(|e| format!("test case {k} inputs: {e}"))?;
            let outputs = str_list(&pair[1]).map_err(|e| format!("test case {k} outputs: {e}"))?;
            Ok((inputs, outputs))
        })
        .collect()
}
