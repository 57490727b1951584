//! Task selection: `--task` values resolved against the registry.

use std::collections::HashSet;

use super::RunError;
use crate::registry;
use crate::task::Task;

/// Resolves `--task` values (each may be a comma list): an exact name, or a family prefix
/// (`ruler` selects every `ruler/…` task). Order of first mention; duplicates dropped.
pub fn select_tasks(specs: &[String]) -> Result<Vec<&'static Task>, RunError> {
    let mut out: Vec<&'static Task> = Vec::new();
    let mut seen = HashSet::new();
    for name in specs.iter().flat_map(|s| s.split(',')).map(str::trim) {
        if name.is_empty() {
            continue;
        }
        let name = name.trim_end_matches('/');
        let matched = registry::matching(name);
        if matched.is_empty() {
            return Err(RunError::UnknownTask {
                name: name.to_string(),
                known: registry::known_names(),
                families: registry::families().join(", "),
            });
        }
        for t in matched {
            if seen.insert(t.name) {
                out.push(t);
            }
        }
    }
    if out.is_empty() {
        return Err(RunError::NoTasks);
    }
    Ok(out)
}
