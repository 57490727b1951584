//! Task generators, one module per benchmark family.

pub mod common;
pub mod needlebench;
pub mod niah;
pub mod passkey;
pub mod ruler;
pub mod words;
