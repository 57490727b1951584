//! The `longctx` command-line tool: thin argument parsing over the longctx crates.
fn main() {}
