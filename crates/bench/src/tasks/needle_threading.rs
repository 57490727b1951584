//! Needle Threading: retrieval and thread following over a JSON object of UUID→UUID pairs
//! (methods reference §C13; Roberts, Han & Albanie, ICLR 2025; README of
//! jonathan-roberts1/needle-threading).
//!
//! The haystack is one JSON object of random version-4 UUID keys and values, rendered as
//! Python's `json.dumps` does (`{"k": "v", "k2": "v2"}`); the prompt is the haystack, a
//! newline and the question (upstream's `haystack + '\n' + question`). Tasks:
//! - `single_needle`: the value of one key placed at `depth`. The question is upstream's,
//!   verbatim: `Extract the value corresponding to the specified key in the JSON object.
//!   Key: "<key>"\n Corresponding value: `.
//! - `multiple_needles`: the values of 5 keys whose pairs sit together at `depth`
//!   (upstream's "depthwise" placement); the answer is the Python list of the values.
//! - `threading_forward` / `threading_backward`: a thread of 5 hops `k0→k1→…→k5` (each
//!   value is the next pair's key); the first pair sits at `depth` and each next pair later
//!   (forward) or earlier (backward) in the context, at seeded positions; the answer is
//!   the final value.
//! - `multi_threading`: 4 forward threads of 3 hops starting at `depth`, answered as the
//!   list of their final values in question order.
//!
//! Scoring (upstream's README): the reply is parsed as a Python literal (a quoted string or
//! a list of quoted strings, rendered back as Python's `str` would) and its first
//! `len(answer)` characters must equal the answer.
//!
//! Differences from upstream, all deliberate:
//! - Lengths are in model tokens with the caller's counter (the pair count is the largest
//!   whose prompt fits `length`), not in characters.
//! - Only the single-needle question wording is published in the README; the other
//!   questions are this port's wording in the same style. Conditional needles are left out.
//! - A reply that is not a Python literal (upstream's `literal_eval` would raise) is
//!   compared as its trimmed text.
//! - Needle counts and thread lengths are fixed (5 needles; threads of 5 hops; 4 threads of
//!   3 hops) where upstream sweeps them; `max_new_tokens` is upstream's 100 for one answer
//!   and 300 for lists.

use crate::metrics::threading::python_list;
use crate::rng::SplitMix64;
use crate::sample::{Sample, Truncation};
use crate::task::TokenCounter;
use crate::task::{GenerateFn, Source, Task};
use crate::tasks::common::{fit_largest, sample_rng, uuid4, GenConfig, DEFAULT_DEPTHS};
use crate::{BenchError, Metric};

/// Bumped whenever a prompt text or a derivation changes.
pub const GENERATOR_VERSION: u32 = 1;
pub const MULTIPLE_NEEDLES: usize = 5;
pub const THREAD_HOPS: usize = 5;
pub const THREADS: usize = 4;
pub const MULTI_THREAD_HOPS: usize = 3;

/// The task variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    SingleNeedle,
    MultipleNeedles,
    ThreadingForward,
    ThreadingBackward,
    MultiThreading,
}

/// What a sample hides: the needle pairs with their positions (haystack pair index before
/// which each goes), the question and the answer.
struct Plan {
    /// (position as a share of the haystack in 0..=1 or an exact depth, key, value)
    needles: Vec<(f64, String, String)>,
    question: String,
    answer: String,
}

fn json_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn fraction(rng: &mut SplitMix64) -> f64 {
    rng.below(1 << 53) as f64 / (1u64 << 53) as f64
}

/// A thread of `hops` pairs starting at share `start`, later pairs at sorted seeded shares
/// after it (forward) or before it (backward).
fn thread(
    rng: &mut SplitMix64,
    hops: usize,
    start: f64,
    forward: bool,
) -> (Vec<(f64, String, String)>, String, String) {
    let ids: Vec<String> = (0..=hops).map(|_| uuid4(rng)).collect();
    let mut shares: Vec<f64> = (1..hops).map(|_| fraction(rng)).collect();
    shares.sort_by(f64::total_cmp);
    let mut pairs = vec![(start, ids[0].clone(), ids[1].clone())];
    for (j, f) in shares.into_iter().enumerate() {
        let share = if forward {
            start + (1.0 - start) * f
        } else {
            start * (1.0 - f)
        };
        pairs.push((share, ids[j + 1].clone(), ids[j + 2].clone()));
    }
    (pairs, ids[0].clone(), ids[hops].clone())
}

fn plan(variant: Variant, rng: &mut SplitMix64, depth: u32) -> Plan {
    let start = f64::from(depth) / 100.0;
    match variant {
        Variant::SingleNeedle => {
            let (k, v) = (uuid4(rng), uuid4(rng));
            Plan {
                question: format!("Extract the value corresponding to the specified key in the JSON object. Key: \"{k}\"\n Corresponding value: "),
                needles: vec![(start, k, v.clone())],
                answer: v,
            }
        }
        Variant::MultipleNeedles => {
            let pairs: Vec<(String, String)> = (0..MULTIPLE_NEEDLES)
                .map(|_| (uuid4(rng), uuid4(rng)))
                .collect();
            let keys: Vec<String> = pairs.iter().map(|p| p.0.clone()).collect();
            let values: Vec<String> = pairs.iter().map(|p| p.1.clone()).collect();
            Plan {
                question: format!("Extract the values corresponding to the specified keys in the JSON object. Give them as a list in the order of the keys. Keys: {}\n Corresponding values: ", json_list(&keys)),
                needles: pairs.into_iter().map(|(k, v)| (start, k, v)).collect(),
                answer: python_list(&values),
            }
        }
        Variant::ThreadingForward | Variant::ThreadingBackward => {
            let (needles, first, last) = thread(
                rng,
                THREAD_HOPS,
                start,
                variant == Variant::ThreadingForward,
            );
            Plan {
                question: format!("The specified key corresponds to a value in the JSON object. That value is also a key in the object: follow this thread of keys and values until you reach a value that is not a key, and give that final value. Key: \"{first}\"\n Final value: "),
                needles,
                answer: last,
            }
        }
        Variant::MultiThreading => {
            let mut needles = Vec::new();
            let mut firsts = Vec::new();
            let mut lasts = Vec::new();
            for _ in 0..THREADS {
                let (n, f, l) = thread(rng, MULTI_THREAD_HOPS, start, true);
                needles.extend(n);
                firsts.push(f);
                lasts.push(l);
            }
            Plan {
                question: format!("Each specified key corresponds to a value in the JSON object. That value is also a key in the object: for each specified key, follow its thread of keys and values until you reach a value that is not a key. Give the final values as a list in the order of the keys. Keys: {}\n Final values: ", json_list(&firsts)),
                needles,
                answer: python_list(&lasts),
            }
        }
    }
}

/// The prompt for `n` haystack pairs drawn from `haystack_seed`.
fn render(plan: &Plan, n: usize, haystack_seed: u64) -> String {
    let mut rng = SplitMix64::new(haystack_seed);
    let hay: Vec<(String, String)> = (0..n).map(|_| (uuid4(&mut rng), uuid4(&mut rng))).collect();
    let mut at: Vec<(usize, usize)> = plan
        .needles
        .iter()
        .enumerate()
        .map(|(i, (share, _, _))| (((share * n as f64).round() as usize).min(n), i))
        .collect();
    at.sort();
    let mut parts: Vec<String> = Vec::with_capacity(n + at.len());
    let mut next = 0;
    let pair = |k: &str, v: &str| format!("\"{k}\": \"{v}\"");
    for (p, i) in at {
        parts.extend(hay[next..p].iter().map(|(k, v)| pair(k, v)));
        next = p;
        parts.push(pair(&plan.needles[i].1, &plan.needles[i].2));
    }
    parts.extend(hay[next..].iter().map(|(k, v)| pair(k, v)));
    format!("{{{}}}\n{}", parts.join(", "), plan.question)
}

/// Generates a variant per configured depth (default 0, 10, …, 100) × `num_samples`; the
/// prompt is at most `length` tokens.
pub fn generate_variant(
    task: &Task,
    variant: Variant,
    cfg: &GenConfig,
    counter: &dyn TokenCounter,
) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let mut out = Vec::new();
    for depth in cfg.depths_or(&DEFAULT_DEPTHS) {
        for idx in 0..cfg.num_samples {
            let mut rng = sample_rng(task.name, cfg, Some(depth), idx);
            let plan = plan(variant, &mut rng, depth);
            let seed = rng.next_u64();
            let n = fit_largest(0, cfg.length, cfg.length, 0, |n| {
                counter.count_tokens(&render(&plan, n, seed))
            })?;
            let prompt = render(&plan, n, seed);
            let meta = serde_json::json!({
                "generator_version": GENERATOR_VERSION,
                "length": cfg.length,
                "depth": depth,
                "num_kv_pairs": n + plan.needles.len(),
                "num_needles": plan.needles.len(),
                "variant": format!("{variant:?}"),
                "prompt_tokens": counter.count_tokens(&prompt),
            });
            out.push(Sample {
                id: format!("{}/{}/{depth}/{idx}", task.name, cfg.length),
                task: task.name.to_string(),
                prompt,
                chat: true,
                answer_prefix: String::new(),
                question: plan.question.clone(),
                truncation: Truncation::None,
                answers: vec![plan.answer.clone()],
                all_classes: Vec::new(),
                metric: task.metric,
                max_new_tokens: task.max_new_tokens(),
                meta,
            });
        }
    }
    Ok(out)
}

macro_rules! variant {
    ($f:ident, $i:expr, $v:expr) => {
        fn $f(cfg: &GenConfig, counter: &dyn TokenCounter) -> Result<Vec<Sample>, BenchError> {
            generate_variant(&TASKS[$i], $v, cfg, counter)
        }
    };
}
variant!(gen_single, 0, Variant::SingleNeedle);
variant!(gen_multiple, 1, Variant::MultipleNeedles);
variant!(gen_forward, 2, Variant::ThreadingForward);
variant!(gen_backward, 3, Variant::ThreadingBackward);
variant!(gen_multi_thread, 4, Variant::MultiThreading);

const fn entry(
    name: &'static str,
    summary: &'static str,
    max_new_tokens: usize,
    generate: GenerateFn,
) -> Task {
    Task {
        name,
        summary,
        metric: Metric::ThreadingPrefix,
        source: Source::Generate {
            generate,
            max_new_tokens,
            chat: true,
        },
    }
}

/// The registry entries.
pub const TASKS: [Task; 5] = [
    entry(
        "needle_threading/single_needle",
        "Needle Threading: the value of one UUID key in a JSON haystack",
        100,
        gen_single,
    ),
    entry(
        "needle_threading/multiple_needles",
        "Needle Threading: the values of 5 clustered UUID keys",
        300,
        gen_multiple,
    ),
    entry(
        "needle_threading/threading_forward",
        "Needle Threading: follow a 5-hop UUID thread forward through the context",
        100,
        gen_forward,
    ),
    entry(
        "needle_threading/threading_backward",
        "Needle Threading: follow a 5-hop UUID thread backward through the context",
        100,
        gen_backward,
    ),
    entry(
        "needle_threading/multi_threading",
        "Needle Threading: follow 4 concurrent 3-hop threads",
        300,
        gen_multi_thread,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_chain_in_the_right_direction() {
        let mut rng = SplitMix64::new(9);
        let p = plan(Variant::ThreadingBackward, &mut rng, 60);
        assert_eq!(p.needles.len(), THREAD_HOPS);
        for w in p.needles.windows(2) {
            assert_eq!(w[0].2, w[1].1, "value of one hop is the next key");
            assert!(w[1].0 <= w[0].0);
        }
        let p = plan(Variant::ThreadingForward, &mut rng, 60);
        for w in p.needles.windows(2) {
            assert!(w[1].0 >= w[0].0);
        }
        assert_eq!(p.answer, p.needles.last().unwrap().2);
    }
}
