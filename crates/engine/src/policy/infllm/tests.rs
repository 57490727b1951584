//! InfLLM option, memory and retrieval tests.

use super::*;
use crate::policy::build_policy;
use crate::policy::ModelFacts;

const FACTS: ModelFacts = ModelFacts {
    n_layers: 2,
    context_length: 8192,
};

fn err(opts: &str) -> String {
    build_policy("infllm", opts, FACTS)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[test]
fn defaults_and_budget_derivation() {
    let p = InfllmPolicy::from_options(&[], FACTS).expect("defaults");
    assert_eq!(
        (p.n_local, p.n_init, p.block, p.topk, p.repr_topk, p.chunk),
        (4096, 128, 128, 16, 4, 512)
    );
    let opts = |s: &str| crate::policy::parse_options(&INFO, s).expect("parses");
    let p = InfllmPolicy::from_options(&opts("budget=512"), FACTS).expect("budget");
    assert_eq!(
        (p.n_local, p.n_init, p.block, p.topk, p.chunk),
        (256, 32, 16, 14, 64)
    );
    let p = InfllmPolicy::from_options(&opts("budget=2048"), FACTS).expect("budget");
    assert_eq!(
        (p.n_local, p.n_init, p.block, p.topk, p.chunk),
        (1024, 128, 64, 14, 256)
    );
    let p =
        InfllmPolicy::from_options(&opts("budget=1024,block=64,n_init=0"), FACTS).expect("budget");
    assert_eq!((p.n_local, p.n_init, p.topk), (512, 0, 8));
    let p = InfllmPolicy::from_options(&opts("topk=4,block=32,n_local=100,chunk=200"), FACTS)
        .expect("explicit");
    assert_eq!(
        (p.n_local, p.topk, p.block, p.chunk_size()),
        (100, 4, 32, 100)
    );
}

#[test]
fn cli_style_options_build() {
    assert!(build_policy("infllm", "topk=16,block=128", FACTS).is_ok());
    assert!(build_policy("infllm", "budget=512", FACTS).is_ok());
    let p = build_policy("infllm", "", FACTS).expect("defaults");
    assert!(p.needs_pre_rope() && p.chunk_size() == 512);
}

#[test]
fn invalid_options_are_named_errors() {
    assert!(err("budget=0").contains("positive integer"));
    assert!(err("budget=-5").contains("positive integer"));
    assert!(err("block=0").contains("positive integer"));
    assert!(err("topk=0").contains("positive integer"));
    assert!(err("budget=512,n_local=600").contains("larger than the budget"));
    assert!(err("budget=512,topk=20").contains("exceeds it"));
    assert!(err("budget=250,block=128").contains("no room for one block"));
    assert!(err("n_local=8192").contains("trained context"));
    assert!(err("repr_topk=200").contains("block size"));
    assert!(err("max_blocks=3").contains("at least topk"));
    assert!(err("n_init=x").contains("non-negative"));
    assert!(err("offload=lots").contains("size in MiB"));
    assert!(err("offload=-1").contains("size in MiB"));
}

#[test]
fn offload_limit_is_read_in_mib() {
    let opts = |s: &str| crate::policy::parse_options(&INFO, s).expect("parses");
    let limit = |s: &str| {
        InfllmPolicy::from_options(&opts(s), FACTS)
            .expect("valid")
            .offload_bytes
    };
    assert_eq!(limit(""), Some(256 << 20));
    assert_eq!(limit("offload=0"), Some(0));
    assert_eq!(limit("offload=1024"), Some(1 << 30));
    assert_eq!(limit("offload=off"), None);
}

#[test]
fn blocks_leave_the_store_with_per_head_representatives() {
    use crate::rope::RopeParams;
    // 1 layer, 2 query heads sharing 1 KV head, d = 2; n_local 4, n_init 1, block 2.
    let mut p = InfllmPolicy::new(4, 1, 2, 1).expect("valid");
    p.repr_topk = 1;
    let mut kv = KvStore::new(1, 1, 2, true);
    let rope = RopeParams {
        base: 10000.0,
        freq_scale: 1.0,
        n_rot: 2,
        neox: false,
    };
    let n = 8;
    kv.begin_chunk(0..n as i64);
    let k: Vec<f32> = (0..n * 2).map(|x| x as f32).collect();
    kv.append(0, &k, &k, &k, n);
    kv.end_chunk();
    let q = vec![0.0f32; n * 4];
    let q_pos: Vec<i64> = (0..n as i64).collect();
    let ctx = PlanContext {
        layer: 0,
        native_window: None,
        q: &q,
        q_pre: &q,
        q_pos: &q_pos,
        n_heads: 2,
        head_dim: 2,
        rope,
    };
    let plan = p.plan(&ctx, &kv);
    assert_eq!(
        plan.spans.len(),
        2,
        "window + out-of-window prefix, no blocks yet"
    );
    // Head 0 favours slot 2, head 1 slot 1; column sums are head-major.
    let mut cols = vec![0.0f32; 2 * n];
    cols[2] = 1.0;
    cols[n + 1] = 1.0;
    p.observe(
        0,
        &plan,
        &LayerObs {
            col_sums: vec![cols],
        },
        &kv,
    );
    p.after_chunk(&mut kv).expect("ok");
    // Next query at 8 sees 5..7 locally: slots 1..5 (positions 1..4) form two blocks.
    assert_eq!(p.n_blocks(), 2);
    assert_eq!(kv.positions(), &[0, 5, 6, 7]);
    assert_eq!(p.block_pos, vec![1, 3]);
    // Block 0 holds positions 1, 2: head 0's representative is key 2, head 1's key 1.
    assert_eq!(&p.layers[0].repr[..4], &[4.0, 5.0, 2.0, 3.0]);
    assert_eq!(p.layers[0].score.len(), 4 * 2);
    assert!(kv.len() <= p.kv_bound_tokens());
}
