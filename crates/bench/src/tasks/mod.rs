//! Task generators, one module per benchmark family.

pub mod common;
pub mod passkey;
pub mod words;
