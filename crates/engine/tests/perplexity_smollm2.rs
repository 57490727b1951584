//! Perplexity of the default model matches llama.cpp's llama-perplexity within 1%.

mod common;

use longctx_engine::perplexity::{full_policy, perplexity};

#[test]
fn smollm2_perplexity_matches_llama_cpp() {
    let model = common::default_model();
    let tokens = model.tokenizer.encode(&common::essays_text(), true, false);
    // llama.cpp tokenizes this file to 10,843 tokens (with BOS when the model adds one).
    assert_eq!(tokens.len(), 10_843, "token count differs from llama.cpp");
    let r = perplexity(model, &tokens, 512, &full_policy(512), |_| {}).expect("perplexity runs");
    let reference = 22.2602;
    let rel = (r.ppl - reference).abs() / reference;
    eprintln!(
        "PPL {:.4} ± {:.4} (llama.cpp {reference}), {} tokens scored",
        r.ppl, r.error, r.count
    );
    assert_eq!(r.chunks_total, 21);
    assert_eq!(r.count, 21 * 255);
    assert!(
        rel < 0.01,
        "PPL {:.4} is {:.2}% away from llama.cpp's {reference}",
        r.ppl,
        rel * 100.0
    );
    assert!(
        (r.error - 0.87).abs() < 0.05,
        "error term {:.4} vs llama.cpp 0.87",
        r.error
    );
}
