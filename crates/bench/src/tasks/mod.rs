//! Task generators, one module per benchmark family.

pub mod passkey;
