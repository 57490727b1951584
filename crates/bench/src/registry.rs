//! The one registry of benchmark tasks: every [`Task`] (seeded generators first, then the
//! datasets) in the order `longctx bench list` prints them. Task selection (`--task`, with
//! families such as `ruler`), planning and reports all look tasks up here.

use std::path::Path;

use crate::data::DatasetError;
use crate::datasets::{
    aa_lcr, leval, longbench_v2, longbench_write, longgenbench, longproc, minilongbench,
};
use crate::error::BenchError;
use crate::sample::Sample;
use crate::task::{LoadOptions, Loaded, Task};
use crate::tasks::{needle_threading, needlebench, needles, niah, passkey, ruler};

/// The families' entry lists, in listing order.
const FAMILIES: &[&[Task]] = &[
    &passkey::TASKS,
    &[niah::TASK],
    &ruler::TASKS,
    &needles::TASKS,
    &needlebench::TASKS,
    &needle_threading::TASKS,
    minilongbench::TASKS,
    leval::TASKS,
    longbench_v2::TASKS,
    longbench_write::TASKS,
    longproc::TASKS,
    longgenbench::TASKS,
    aa_lcr::TASKS,
];

/// Every task, in listing order.
pub fn all() -> impl Iterator<Item = &'static Task> {
    FAMILIES.iter().flat_map(|family| family.iter())
}

/// Every task name, comma-separated (for error messages).
pub fn known_names() -> String {
    all().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// The families (name parts before `/`), in listing order, each once.
pub fn families() -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for t in all() {
        if !out.contains(&t.family()) {
            out.push(t.family());
        }
    }
    out
}

/// Looks a task up by its exact name.
pub fn find(name: &str) -> Result<&'static Task, BenchError> {
    all()
        .find(|t| t.name == name)
        .ok_or_else(|| BenchError::UnknownTask {
            name: name.to_string(),
            known: known_names(),
        })
}

/// The task named `name` exactly, else every task under the prefix `name/` (`ruler` selects
/// each `ruler/…` task); empty when neither exists.
pub fn matching(name: &str) -> Vec<&'static Task> {
    match all().find(|t| t.name == name) {
        Some(t) => vec![t],
        None => {
            let prefix = format!("{name}/");
            all().filter(|t| t.name.starts_with(&prefix)).collect()
        }
    }
}

/// Loads a dataset task's samples from `data_root`, failing on the first bad record.
pub fn load(task_name: &str, data_root: &Path) -> Result<Vec<Sample>, DatasetError> {
    Ok(load_with(task_name, data_root, &LoadOptions::default())?.samples)
}

/// Loads a dataset task's samples from `data_root` with explicit options.
pub fn load_with(
    task_name: &str,
    data_root: &Path,
    options: &LoadOptions,
) -> Result<Loaded, DatasetError> {
    let datasets = || all().filter(|t| !t.is_generated());
    let task =
        datasets()
            .find(|t| t.name == task_name)
            .ok_or_else(|| DatasetError::UnknownTask {
                name: task_name.to_string(),
                known: datasets().map(|t| t.name).collect::<Vec<_>>().join(", "),
            })?;
    task.load(data_root, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Metric;

    #[test]
    fn registry_finds_passkey_and_names_unknown_tasks() {
        let task = find("passkey").unwrap();
        assert_eq!(task.metric, Metric::FirstIntegerEq);
        assert_eq!(task.metric.name(), "first_integer_eq");
        assert_eq!(task.metric.score("The pass key is 12.", "12").unwrap(), 1.0);
        let err = find("ruler").unwrap_err().to_string();
        assert!(
            err.contains("unknown task 'ruler'") && err.contains("passkey"),
            "{err}"
        );
    }

    #[test]
    fn names_are_unique_and_families_select() {
        let mut names: Vec<&str> = all().map(|t| t.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate task names");
        assert_eq!(matching("ruler").len(), 13);
        assert_eq!(matching("passkey").len(), 1);
        assert_eq!(matching("needles").len(), 4);
        assert!(matching("nope").is_empty());
        assert_eq!(&families()[..3], ["passkey", "niah", "ruler"]);
    }
}
