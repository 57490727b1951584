//! The results store: an embedded SQLite database holding runs (one row per run
//! configuration, with everything needed to reproduce it) and results (one row per finished
//! sample, committed as the sample finishes), which makes `bench run` resumable.
//!
//! A run is identified by its *configuration key* (model and its checksum, backend, policy and
//! options, input budget, seed, sampling): running the same configuration again reopens the
//! same run and skips every sample already stored under the same task, sample id and prompt
//! hash. Rows whose error is marked retryable (a transient server failure) are run again.
//!
//! Schema (version 1):
//!
//! ```sql
//! CREATE TABLE runs (
//!   id INTEGER PRIMARY KEY AUTOINCREMENT, config_key TEXT NOT NULL UNIQUE,
//!   model TEXT NOT NULL, model_sha TEXT NOT NULL, backend TEXT NOT NULL,
//!   policy TEXT NOT NULL, policy_options TEXT NOT NULL, chat_template TEXT NOT NULL,
//!   truncation TEXT NOT NULL, max_input_tokens INTEGER, seed INTEGER NOT NULL,
//!   sampling TEXT NOT NULL, git_commit TEXT NOT NULL, version TEXT NOT NULL,
//!   started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL, config TEXT NOT NULL);
//! CREATE TABLE results (
//!   run_id INTEGER NOT NULL REFERENCES runs(id), task TEXT NOT NULL,
//!   sample_id TEXT NOT NULL, prompt_hash TEXT NOT NULL, length INTEGER, depth INTEGER,
//!   prediction TEXT NOT NULL, score REAL NOT NULL, latency_ms INTEGER NOT NULL,
//!   prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
//!   truncated INTEGER NOT NULL, error TEXT, retryable INTEGER NOT NULL, metric TEXT NOT NULL,
//!   question TEXT NOT NULL, answers TEXT NOT NULL, all_classes TEXT NOT NULL,
//!   meta TEXT NOT NULL, finished_at TEXT NOT NULL,
//!   PRIMARY KEY (run_id, task, sample_id, prompt_hash));
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

/// The schema version written to `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

/// Errors from the results database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the results database: {error}")]
    Open {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("{path}: not a longctx results database ({reason}); choose another --db file")]
    NotAResultsDb { path: PathBuf, reason: String },
    #[error("{path}: {error}")]
    Sql {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("{path}: no run with id {id} (runs: {known})")]
    UnknownRun {
        path: PathBuf,
        id: i64,
        known: String,
    },
    #[error("{path}: stored value is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// Everything that describes a run. `config_key` identifies it; the rest is recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub id: i64,
    pub config_key: String,
    /// Model id (GGUF file name, or the served model name).
    pub model: String,
    /// The model file's sha256 (local), or `remote` when the server owns the weights.
    pub model_sha: String,
    /// `local` or `openai:URL[,URL]`.
    pub backend: String,
    pub policy: String,
    pub policy_options: String,
    /// How chat prompts were formatted, e.g. `model's template (GGUF)` or `server's template`.
    pub chat_template: String,
    /// The truncation rule, e.g. `per task (middle tokens / head words / none) to 8192 - max_new`.
    pub truncation: String,
    pub max_input_tokens: Option<u64>,
    pub seed: u64,
    pub sampling: String,
    pub git_commit: String,
    pub version: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `finished`, `interrupted` or `failed: ...`.
    pub status: String,
    /// The full configuration as JSON (tasks, lengths, depths, samples…).
    pub config: serde_json::Value,
}

impl RunRecord {
    /// A short label for tables: `model · policy[options]`.
    pub fn label(&self) -> String {
        let model = self.model.strip_suffix(".gguf").unwrap_or(&self.model);
        format!("#{} {model} · {}", self.id, self.policy_label())
    }

    /// `#id policy[options]`, for tables whose runs all share one model.
    pub fn short_label(&self) -> String {
        format!("#{} {}", self.id, self.policy_label())
    }

    fn policy_label(&self) -> String {
        if self.policy_options.is_empty() {
            self.policy.clone()
        } else {
            format!("{}[{}]", self.policy, self.policy_options)
        }
    }
}

/// One finished sample.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    pub task: String,
    pub sample_id: String,
    pub prompt_hash: String,
    /// Target length of synthetic samples (tokens); `None` for datasets.
    pub length: Option<u64>,
    /// Needle depth in percent of synthetic samples; `None` when random or not applicable.
    pub depth: Option<u32>,
    pub prediction: String,
    /// In `0.0..=1.0`; 0 for error rows.
    pub score: f64,
    pub latency_ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub truncated: bool,
    pub error: Option<String>,
    /// The error was transient (server failure): a re-run tries the sample again.
    pub retryable: bool,
    pub metric: String,
    pub question: String,
    pub answers: Vec<String>,
    pub all_classes: Vec<String>,
    pub meta: serde_json::Value,
}

/// The results database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  config_key TEXT NOT NULL UNIQUE,
  model TEXT NOT NULL, model_sha TEXT NOT NULL, backend TEXT NOT NULL,
  policy TEXT NOT NULL, policy_options TEXT NOT NULL, chat_template TEXT NOT NULL,
  truncation TEXT NOT NULL, max_input_tokens INTEGER, seed INTEGER NOT NULL,
  sampling TEXT NOT NULL, git_commit TEXT NOT NULL, version TEXT NOT NULL,
  started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
  run_id INTEGER NOT NULL REFERENCES runs(id), task TEXT NOT NULL,
  sample_id TEXT NOT NULL, prompt_hash TEXT NOT NULL, length INTEGER, depth INTEGER,
  prediction TEXT NOT NULL, score REAL NOT NULL, latency_ms INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
  truncated INTEGER NOT NULL, error TEXT, retryable INTEGER NOT NULL, metric TEXT NOT NULL,
  question TEXT NOT NULL, answers TEXT NOT NULL, all_classes TEXT NOT NULL,
  meta TEXT NOT NULL, finished_at TEXT NOT NULL,
  PRIMARY KEY (run_id, task, sample_id, prompt_hash));
";

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%SZ','now')";

impl Store {
    /// Opens (creating if needed) the database at `path` and checks it is a results database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(|error| StoreError::Open {
            path: path.to_path_buf(),
            error,
        })?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.init()?;
        Ok(store)
    }

    /// Opens an existing database without creating one (for reports).
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                error: rusqlite::Error::InvalidPath(path.to_path_buf()),
            });
        }
        Store::open(path)
    }

    /// The database's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, error: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            error,
        }
    }

    fn init(&self) -> Result<(), StoreError> {
        let not_db = |e: rusqlite::Error| StoreError::NotAResultsDb {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(not_db)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NotAResultsDb {
                path: self.path.clone(),
                reason: format!(
                    "schema version {version} is newer than this longctx's {SCHEMA_VERSION}"
                ),
            });
        }
        let tables: Vec<String> = {
            let mut st = self
                .conn
                .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
                .map_err(not_db)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(not_db)?;
            rows.collect::<Result<_, _>>().map_err(not_db)?
        };
        if version == 0 && !tables.is_empty() {
            return Err(StoreError::NotAResultsDb {
                path: self.path.clone(),
                reason: format!("it holds other tables: {}", tables.join(", ")),
            });
        }
        self.conn
            .execute_batch(&format!(
                "PRAGMA busy_timeout=5000; BEGIN; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Opens the run with `record.config_key` (marking it running and refreshing what may
    /// change between sessions: git commit, version, status) or creates it. Returns its id.
    pub fn begin_run(&self, record: &RunRecord) -> Result<i64, StoreError> {
        let existing: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM runs WHERE config_key = ?1",
                [&record.config_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        if let Some(id) = existing {
            self.conn
                .execute(
                    "UPDATE runs SET status='running', finished_at=NULL, git_commit=?2, version=?3, config=?4 WHERE id=?1",
                    params![id, record.git_commit, record.version, record.config.to_string()],
                )
                .map_err(|e| self.sql(e))?;
            return Ok(id);
        }
        self.conn
            .execute(
                &format!(
                    "INSERT INTO runs (config_key, model, model_sha, backend, policy, policy_options,
                     chat_template, truncation, max_input_tokens, seed, sampling, git_commit, version,
                     started_at, finished_at, status, config)
                     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,{NOW},NULL,'running',?14)"
                ),
                params![
                    record.config_key,
                    record.model,
                    record.model_sha,
                    record.backend,
                    record.policy,
                    record.policy_options,
                    record.chat_template,
                    record.truncation,
                    record.max_input_tokens.map(|v| v as i64),
                    record.seed as i64,
                    record.sampling,
                    record.git_commit,
                    record.version,
                    record.config.to_string(),
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how a session of the run ended (`finished`, `interrupted`, `failed: …`).
    pub fn end_run(&self, run_id: i64, status: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                &format!("UPDATE runs SET status=?2, finished_at={NOW} WHERE id=?1"),
                params![run_id, status],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// `(task, sample_id) → prompt_hash` of the samples of a run that need not run again
    /// (everything stored except retryable errors).
    pub fn done(&self, run_id: i64) -> Result<HashMap<(String, String), String>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT task, sample_id, prompt_hash FROM results WHERE run_id=?1 AND retryable=0",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([run_id], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Stores one finished sample (replacing an earlier row of the same sample, including one
    /// with a different prompt hash, which a changed generator left behind). One transaction.
    pub fn insert(&mut self, run_id: i64, row: &ResultRow) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |error| StoreError::Sql {
            path: path.clone(),
            error,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute(
            "DELETE FROM results WHERE run_id=?1 AND task=?2 AND sample_id=?3",
            params![run_id, row.task, row.sample_id],
        )
        .map_err(sql)?;
        tx.execute(
            &format!(
                "INSERT INTO results (run_id, task, sample_id, prompt_hash, length, depth, prediction,
                 score, latency_ms, prompt_tokens, completion_tokens, truncated, error, retryable,
                 metric, question, answers, all_classes, meta, finished_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,{NOW})"
            ),
            params![
                run_id,
                row.task,
                row.sample_id,
                row.prompt_hash,
                row.length.map(|v| v as i64),
                row.depth,
                row.prediction,
                row.score,
                row.latency_ms as i64,
                row.prompt_tokens as i64,
                row.completion_tokens as i64,
                row.truncated,
                row.error,
                row.retryable,
                row.metric,
                row.question,
                serde_json::to_string(&row.answers).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&row.all_classes).unwrap_or_else(|_| "[]".into()),
                row.meta.to_string(),
            ],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, config_key, model, model_sha, backend, policy, policy_options,
                 chat_template, truncation, max_input_tokens, seed, sampling, git_commit, version,
                 started_at, finished_at, status, config FROM runs ORDER BY id",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    RunRecord {
                        id: r.get(0)?,
                        config_key: r.get(1)?,
                        model: r.get(2)?,
                        model_sha: r.get(3)?,
                        backend: r.get(4)?,
                        policy: r.get(5)?,
                        policy_options: r.get(6)?,
                        chat_template: r.get(7)?,
                        truncation: r.get(8)?,
                        max_input_tokens: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
                        seed: r.get::<_, i64>(10)? as u64,
                        sampling: r.get(11)?,
                        git_commit: r.get(12)?,
                        version: r.get(13)?,
                        started_at: r.get(14)?,
                        finished_at: r.get(15)?,
                        status: r.get(16)?,
                        config: serde_json::Value::Null,
                    },
                    r.get::<_, String>(17)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (mut run, config) = row.map_err(|e| self.sql(e))?;
            run.config = serde_json::from_str(&config).map_err(|e| StoreError::Malformed {
                path: self.path.clone(),
                reason: format!("run {}: config: {e}", run.id),
            })?;
            out.push(run);
        }
        Ok(out)
    }

    /// The run with id `id`.
    pub fn run(&self, id: i64) -> Result<RunRecord, StoreError> {
        let runs = self.runs()?;
        let known = runs
            .iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        runs.into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| StoreError::UnknownRun {
                path: self.path.clone(),
                id,
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known
                },
            })
    }

    /// Every result of a run, ordered by task and sample id.
    pub fn results(&self, run_id: i64) -> Result<Vec<ResultRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT task, sample_id, prompt_hash, length, depth, prediction, score, latency_ms,
                 prompt_tokens, completion_tokens, truncated, error, retryable, metric, question,
                 answers, all_classes, meta FROM results WHERE run_id=?1 ORDER BY task, length, depth, sample_id",
            )
            .map_err(|e| self.sql(e))?;
        let rows = st
            .query_map([run_id], |r| {
                Ok((
                    ResultRow {
                        task: r.get(0)?,
                        sample_id: r.get(1)?,
                        prompt_hash: r.get(2)?,
                        length: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                        depth: r.get(4)?,
                        prediction: r.get(5)?,
                        score: r.get(6)?,
                        latency_ms: r.get::<_, i64>(7)? as u64,
                        prompt_tokens: r.get::<_, i64>(8)? as u64,
                        completion_tokens: r.get::<_, i64>(9)? as u64,
                        truncated: r.get(10)?,
                        error: r.get(11)?,
                        retryable: r.get(12)?,
                        metric: r.get(13)?,
                        question: r.get(14)?,
                        answers: Vec::new(),
                        all_classes: Vec::new(),
                        meta: serde_json::Value::Null,
                    },
                    [r.get::<_, String>(15)?, r.get(16)?, r.get(17)?],
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (mut row, [answers, classes, meta]) = row.map_err(|e| self.sql(e))?;
            let bad = |what: &str, e: serde_json::Error| StoreError::Malformed {
                path: self.path.clone(),
                reason: format!("{} {}: {what}: {e}", row.task, row.sample_id),
            };
            row.answers = serde_json::from_str(&answers).map_err(|e| bad("answers", e))?;
            row.all_classes = serde_json::from_str(&classes).map_err(|e| bad("all_classes", e))?;
            row.meta = serde_json::from_str(&meta).map_err(|e| bad("meta", e))?;
            out.push(row);
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("longctx-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }

    pub fn record(key: &str) -> RunRecord {
        RunRecord {
            id: 0,
            config_key: key.into(),
            model: "m.gguf".into(),
            model_sha: "abc".into(),
            backend: "local".into(),
            policy: "full".into(),
            policy_options: String::new(),
            chat_template: "model's template".into(),
            truncation: "none".into(),
            max_input_tokens: Some(2048),
            seed: 0,
            sampling: "greedy".into(),
            git_commit: "unknown".into(),
            version: "0.1.0".into(),
            started_at: String::new(),
            finished_at: None,
            status: String::new(),
            config: serde_json::json!({"tasks": ["t"]}),
        }
    }

    pub fn row(task: &str, id: &str, score: f64) -> ResultRow {
        ResultRow {
            task: task.into(),
            sample_id: id.into(),
            prompt_hash: "h".into(),
            length: None,
            depth: None,
            prediction: "p".into(),
            score,
            latency_ms: 1,
            prompt_tokens: 10,
            completion_tokens: 2,
            truncated: false,
            error: None,
            retryable: false,
            metric: "exact_match".into(),
            question: String::new(),
            answers: vec!["a".into()],
            all_classes: Vec::new(),
            meta: serde_json::json!({}),
        }
    }

    #[test]
    fn runs_reopen_by_config_and_rows_round_trip() {
        let path = temp_db("roundtrip.sqlite");
        let mut store = Store::open(&path).unwrap();
        let a = store.begin_run(&record("k1")).unwrap();
        let mut r = row("t", "s1", 0.5);
        r.length = Some(4096);
        r.depth = Some(50);
        r.meta = serde_json::json!({"x": 1});
        store.insert(a, &r).unwrap();
        let mut retry = row("t", "s2", 0.0);
        retry.error = Some("HTTP 500".into());
        retry.retryable = true;
        store.insert(a, &retry).unwrap();
        store.end_run(a, "interrupted").unwrap();
        drop(store);

        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.begin_run(&record("k1")).unwrap(), a);
        let b = store.begin_run(&record("k2")).unwrap();
        assert_ne!(a, b);
        let done = store.done(a).unwrap();
        assert_eq!(done.len(), 1, "retryable rows are not done");
        assert_eq!(done[&("t".into(), "s1".into())], "h");
        let rows = store.results(a).unwrap();
        assert_eq!(rows.iter().find(|x| x.sample_id == "s1"), Some(&r));
        // A changed prompt replaces the stale row.
        let mut changed = row("t", "s1", 1.0);
        changed.prompt_hash = "h2".into();
        store.insert(a, &changed).unwrap();
        let rows = store.results(a).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.iter().filter(|r| r.sample_id == "s1").count(), 1);
        let runs = store.runs().unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].status, "running");
        assert_eq!(runs[0].config["tasks"][0], "t");
        assert!(store
            .run(99)
            .unwrap_err()
            .to_string()
            .contains("no run with id 99 (runs: 1, 2)"));
    }

    #[test]
    fn foreign_or_corrupt_files_are_refused() {
        let path = temp_db("garbage.sqlite");
        std::fs::write(
            &path,
            b"this is not a database at all, just some text......",
        )
        .unwrap();
        let err = Store::open(&path).unwrap_err().to_string();
        assert!(err.contains("not a longctx results database"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"this is not a database at all, just some text......"
        );

        let path = temp_db("other.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t(x)").unwrap();
        drop(conn);
        let err = Store::open(&path).unwrap_err().to_string();
        assert!(err.contains("other tables: t"), "{err}");

        let err = Store::open(Path::new("/nonexistent-dir/x/r.sqlite"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot open the results database"), "{err}");
        let err = Store::open_existing(&temp_db("missing.sqlite"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot open"), "{err}");
    }
}
