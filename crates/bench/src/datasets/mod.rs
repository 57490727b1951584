//! Loaders for the third-party long-context datasets kept outside the repository (under
//! `shared/data`, or wherever `LONGCTX_DATA` points), each turning one task's files into
//! [`Sample`]s (their scorers are in `metrics`).
//!
//! - Each family exports its registry entries (`TASKS`, loader sources); `registry` lists
//!   them and its `load`/`load_with` read a task by name from a data root.
//! - [`default_data_root`] (in `data`) finds the data: `LONGCTX_DATA`, else `shared/data`
//!   next to the workspace.
//! - Loaders never panic: a missing folder or file, a malformed JSON(L) line and a field of the
//!   wrong type are [`DatasetError`]s that name the path, line and field.
//!   [`LoadOptions::skip_bad_lines`] skips malformed JSONL lines and reports them in
//!   [`Loaded::skipped`] instead of failing.
//!
//! Families: [`minilongbench`] (LongBench v1 tasks), [`leval`], [`longbench_v2`],
//! [`longbench_write`], [`longproc`], [`longgenbench`], [`aa_lcr`].

pub mod aa_lcr;
pub mod leval;
pub mod longbench_v2;
pub mod longbench_write;
pub mod longgenbench;
pub mod longproc;
pub mod minilongbench;
pub mod pyliteral;
mod util;

pub use crate::data::DatasetError;
pub use crate::data::{default_data_root, DATA_ENV};
pub use crate::task::{LoadOptions, Loaded, SkippedLine};
