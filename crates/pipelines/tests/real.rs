//! One end-to-end run of every method on the real default model (SmolLM2-135M-Instruct,
//! through `LocalBackend`), on a short essay with a pass key hidden in it, with options that
//! force several chunks so every step of each method really runs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::OnceLock;

use longctx_backend::{LlmBackend, LocalBackend, Sampling};
use longctx_pipelines::{run_method, Answer, Document, Query};

fn backend() -> &'static LocalBackend {
    static B: OnceLock<LocalBackend> = OnceLock::new();
    B.get_or_init(|| {
        let path = longctx_backend::local::default_model_path().unwrap();
        assert!(
            path.exists(),
            "{} is missing: scripts/test.sh pulls it",
            path.display()
        );
        LocalBackend::load(&path, "auto", "").unwrap()
    })
}

/// ~1,400 tokens of an essay with the pass key after its second paragraph.
fn query() -> Query {
    let essay = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/paul-graham-essays/niah/apple.txt"),
    )
    .unwrap();
    let paragraphs: Vec<&str> = essay.split("\n\n").collect();
    let mut text = String::new();
    for (i, p) in paragraphs.iter().enumerate() {
        if text.len() > 6000 {
            break;
        }
        text.push_str(p);
        text.push_str("\n\n");
        if i == 2 {
            text.push_str("The pass key is 71432. Remember it.\n\n");
        }
    }
    Query {
        documents: vec![Document {
            name: "apple.txt".into(),
            text,
        }],
        question: "What is the pass key?".into(),
        sampling: Sampling::greedy(24),
    }
}

fn run(method: &str, options: &str) -> Answer {
    let q = query();
    let tokens = backend().count_tokens(&q.documents[0].text).unwrap();
    assert!((1000..2200).contains(&tokens), "{tokens}");
    run_method(method, options, backend(), &q, &mut |_| true).unwrap()
}

#[test]
fn rag_retrieves_the_key_and_the_model_reads_it() {
    let a = run("rag", "unit=100,budget=600");
    assert!(a.text.contains("71432"), "{a:?}");
    assert!(a
        .trace
        .phase("retrieve")
        .any(|s| s.output.contains("71432")));
    assert!(
        a.prompt_tokens < 800,
        "only the retrieved units were read: {}",
        a.prompt_tokens
    );
}

#[test]
fn memagent_reads_every_chunk_into_its_memory() {
    let a = run("memagent", "chunk=500,memory=48");
    let steps: Vec<_> = a.trace.phase("memory").collect();
    assert!(steps.len() >= 3, "{}", steps.len());
    assert!(steps.iter().all(|s| !s.output.trim().is_empty()));
    assert_eq!(a.calls, steps.len() + 1);
    assert!(!a.text.is_empty());
}

#[test]
fn mapreduce_maps_every_chunk_and_reduces() {
    let a = run("mapreduce", "chunk=1000,map_tokens=48");
    let maps = a.trace.phase("map").count();
    assert!(maps >= 2, "{maps}");
    // A reduce over what the maps found, unless every map said it found nothing.
    let kept = a
        .trace
        .phase("map")
        .filter(|m| m.detail["dropped"] == false)
        .count();
    assert_eq!(a.trace.phase("reduce").count(), usize::from(kept > 0));
    assert!(!a.text.is_empty());
}

#[test]
fn direct_answers_from_the_whole_document() {
    let a = run("direct", "");
    assert_eq!(a.calls, 1);
    assert!(a.text.contains("71432"), "{a:?}");
}
