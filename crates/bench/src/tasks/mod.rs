//! Seeded, length-targeted sample generators, one module per benchmark family: [`passkey`],
//! [`niah`], [`needles`], [`ruler`], [`needlebench`] and [`needle_threading`]. Each family exports its
//! registry entries (`TASKS`, [`niah::TASK`]); `registry` lists them all. Their outputs are
//! scored in `metrics`.

pub mod common;
pub mod needle_threading;
pub mod needlebench;
pub mod needles;
pub mod niah;
pub mod passkey;
pub mod ruler;
pub mod words;

pub use crate::data::{default_data_root, DATA_ENV};
pub use crate::task::{GenConfig, TokenCounter, DEFAULT_DEPTHS};
