//! Shared helpers for tests that run the real default model.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use longctx_backend::catalog;
use longctx_engine::Model;

/// Path of the default model; the test command (`scripts/test.sh`) pulls it first.
pub fn default_model_path() -> PathBuf {
    let entry = catalog::find(catalog::DEFAULT_MODEL).expect("default model in catalogue");
    let path = catalog::local_path(entry);
    assert!(
        path.exists(),
        "{} is missing: run `cargo run -p longctx-cli -- model pull smollm2-135m` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The default model, loaded once per test binary.
pub fn default_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::load(&default_model_path()).expect("default model loads"))
}

/// `../shared/data` relative to the workspace root.
pub fn shared_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The perplexity reference text: three Paul Graham essays concatenated byte for byte.
pub fn essays_text() -> String {
    let dir = shared_data().join("paul-graham-essays/niah");
    ["addiction.txt", "apple.txt", "avg.txt"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).expect("shared essay present"))
        .collect()
}

/// The reference fixtures produced with llama.cpp.
pub fn reference() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("reference.json"))
        .expect("valid json")
}
