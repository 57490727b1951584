//! Passkey retrieval, the LM-Infinite variant (methods reference §C11; code:
//! Glaciohound/LM-Infinite `data/passkey_retrieval/create_passkey_data.py` and
//! `data/get_data.py`).
//!
//! A prompt is the task prefix, `i` copies of a filler sentence, the key line, the remaining
//! fillers and the question with its continuation cue, all joined by single spaces:
//!
//! ```text
//! There is an important info hidden inside a lot of irrelevant text. Find it and memorize it.
//! I will quiz you about the important information there. The grass is green. … The pass key
//! is 4021871. Remember it. 4021871 is the pass key. The grass is green. … What is the pass
//! key? The pass key is
//! ```
//!
//! Differences from LM-Infinite, all deliberate:
//! - The length is counted on the *whole* prompt with the model's own tokenizer (including
//!   whatever special tokens the counter adds), and the number of fillers is the largest that
//!   keeps the prompt within the target. LM-Infinite estimated it from piece lengths and
//!   mis-measured the prefix, so its prompts ran slightly long.
//! - The key's position is a fixed depth (share of the fillers placed before the key line,
//!   rounded to nearest) instead of a uniform draw, so results can be reported per depth.
//! - The key `K` is uniform in `[1, 10_000_000)` as in LM-Infinite, but drawn from
//!   [`SplitMix64`] seeded with `(seed, length, depth, sample)` in that order, so every sample
//!   can be generated on its own and is identical on every platform.
//! - The cue ends in "The pass key is" without LM-Infinite's trailing space: with BPE
//!   tokenizers a trailing space forces an unnatural number token.

use serde::{Deserialize, Serialize};

use crate::error::BenchError;
use crate::rng::SplitMix64;
use crate::sample::{Metric, Sample, Truncation};
use crate::task::{GenConfig, Source, Task, TokenCounter, DEFAULT_DEPTHS};

/// The registry entry: a raw completion prompt (it ends with the answer cue).
pub const TASKS: [Task; 1] = [Task {
    name: "passkey",
    summary: "find a 1–7 digit pass key hidden at a given depth in repeated filler text (LM-Infinite variant)",
    metric: Metric::FirstIntegerEq,
    source: Source::Generate {
        generate,
        max_new_tokens: MAX_NEW_TOKENS,
        chat: false,
    },
}];

/// Tokens generated for the answer unless the configuration says otherwise.
pub const MAX_NEW_TOKENS: usize = 8;

/// The question alone, without the continuation cue: what instruction-aware policies
/// (CItruS) are given.
pub const INSTRUCTION: &str = "What is the pass key?";

/// Bumped whenever the prompt text or the key derivation changes, so that stored results of
/// an older generator are never mistaken for current ones.
pub const GENERATOR_VERSION: u32 = 1;

/// The task description that opens every prompt.
pub const TASK_PREFIX: &str = "There is an important info hidden inside a lot of irrelevant text. \
Find it and memorize it. I will quiz you about the important information there.";

/// The filler sentence repeated around the key line.
pub const FILLER: &str =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

/// The question and the open continuation cue that end every prompt.
pub const QUESTION: &str = "What is the pass key? The pass key is";

/// Keys are uniform in `[PASSKEY_MIN, PASSKEY_END)`.
pub const PASSKEY_MIN: u64 = 1;
/// One past the largest key.
pub const PASSKEY_END: u64 = 10_000_000;

/// The sentence that carries the key.
pub fn key_line(passkey: u64) -> String {
    format!("The pass key is {passkey}. Remember it. {passkey} is the pass key.")
}

/// Which sample to generate: everything that determines its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PasskeyCase {
    /// Target prompt length in model tokens; the prompt is as long as possible without
    /// exceeding it.
    pub length: usize,
    /// Share of the fillers placed before the key line, in percent (0 = key first).
    pub depth: u32,
    /// Index of the sample within its (length, depth) cell.
    pub sample: u64,
    /// Run seed.
    pub seed: u64,
}

impl PasskeyCase {
    /// A case, checked: the length must be positive and the depth within `0..=100`.
    pub fn new(
        length: usize,
        depth: u32,
        sample: u64,
        seed: u64,
    ) -> Result<PasskeyCase, BenchError> {
        let case = PasskeyCase {
            length,
            depth,
            sample,
            seed,
        };
        case.validate()?;
        Ok(case)
    }

    /// Checks the length and depth.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.length == 0 {
            return Err(BenchError::ZeroLength);
        }
        if self.depth > 100 {
            return Err(BenchError::DepthOutOfRange(self.depth));
        }
        Ok(())
    }

    /// The key of this case: the first draw of `SplitMix64::from_parts(&[seed, length,
    /// depth, sample])` mapped uniformly onto `[1, 10_000_000)`.
    pub fn passkey(&self) -> u64 {
        let mut rng = SplitMix64::from_parts(&[
            self.seed,
            self.length as u64,
            u64::from(self.depth),
            self.sample,
        ]);
        rng.in_range(PASSKEY_MIN, PASSKEY_END)
    }
}

/// A generated prompt with its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeySample {
    pub case: PasskeyCase,
    pub passkey: u64,
    /// The expected answer text (the key in decimal).
    pub answer: String,
    pub prompt: String,
    /// Tokens of `prompt` according to the counter used to build it; at most `case.length`.
    pub prompt_tokens: usize,
    pub filler_count: usize,
    pub fillers_before_key: usize,
}

/// Fillers placed before the key line: `filler_count × depth / 100`, rounded half up.
pub fn fillers_before_key(filler_count: usize, depth: u32) -> usize {
    (filler_count * depth.min(100) as usize + 50) / 100
}

/// The prompt text for a key, a filler count and how many fillers precede the key line.
pub fn render_prompt(passkey: u64, filler_count: usize, fillers_before: usize) -> String {
    let before = fillers_before.min(filler_count);
    let key = key_line(passkey);
    let mut prompt = String::with_capacity(
        TASK_PREFIX.len() + key.len() + QUESTION.len() + (FILLER.len() + 1) * filler_count + 3,
    );
    prompt.push_str(TASK_PREFIX);
    for _ in 0..before {
        prompt.push(' ');
        prompt.push_str(FILLER);
    }
    prompt.push(' ');
    prompt.push_str(&key);
    for _ in before..filler_count {
        prompt.push(' ');
        prompt.push_str(FILLER);
    }
    prompt.push(' ');
    prompt.push_str(QUESTION);
    prompt
}

/// Builds the sample for `case`, measuring lengths with `counter`.
///
/// The filler count is the largest `n ≥ 1` whose prompt fits in `case.length` tokens, found
/// from an estimate (the token cost of one filler, measured between 1 and 9 fillers) and then
/// confirmed by counting whole prompts: a widening search from the estimate, then bisection.
/// This assumes that more fillers never mean fewer tokens, which holds for real tokenizers.
/// Errors when even one filler does not fit.
pub fn generate_sample(
    case: &PasskeyCase,
    counter: &dyn TokenCounter,
) -> Result<PasskeySample, BenchError> {
    case.validate()?;
    let passkey = case.passkey();
    let render = |n: usize| render_prompt(passkey, n, fillers_before_key(n, case.depth));
    let count = |n: usize| counter.count_tokens(&render(n));
    let target = case.length;

    let one = count(1);
    if one > target {
        return Err(BenchError::LengthTooShort {
            length: target,
            minimum: one,
        });
    }
    // A counter that charges nothing for fillers would allow any number; a filler costs at
    // least one token with any real tokenizer, so `target` fillers is a safe ceiling.
    let ceiling = target.max(1);
    const PROBE: usize = 9;
    let per_filler = (count(PROBE).saturating_sub(one) as f64 / (PROBE - 1) as f64).max(1.0);
    let estimate = (1 + ((target - one) as f64 / per_filler) as usize).clamp(1, ceiling);

    // Invariant once bracketed: `fits(low)` and (`high > ceiling` or `!fits(high)`).
    let fits = |n: usize| count(n) <= target;
    let (mut low, mut high);
    if fits(estimate) {
        low = estimate;
        let mut step = 1;
        loop {
            let candidate = low + step;
            if candidate > ceiling {
                high = ceiling + 1;
                break;
            }
            if fits(candidate) {
                low = candidate;
                step *= 2;
            } else {
                high = candidate;
                break;
            }
        }
    } else {
        high = estimate;
        let mut step = 1;
        loop {
            let candidate = high.saturating_sub(step).max(1);
            if candidate == 1 {
                low = 1;
                break;
            }
            if fits(candidate) {
                low = candidate;
                break;
            }
            high = candidate;
            step *= 2;
        }
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if fits(middle) {
            low = middle;
        } else {
            high = middle;
        }
    }

    let prompt = render(low);
    let prompt_tokens = counter.count_tokens(&prompt);
    Ok(PasskeySample {
        case: *case,
        passkey,
        answer: passkey.to_string(),
        prompt,
        prompt_tokens,
        filler_count: low,
        fillers_before_key: fillers_before_key(low, case.depth),
    })
}

/// The task's generator: for `cfg.length`, every sample index × depth (default
/// [`DEFAULT_DEPTHS`]) in that order, as ids `passkey/LENGTH/DEPTH/INDEX`. `counter` counts
/// the tokens of a whole request (BOS included); the prompt leaves room for all but the last
/// answer token, because generation feeds back all but the last one: a prompt sized to
/// `full`'s trained context still fits with its answer.
pub fn generate(cfg: &GenConfig, counter: &dyn TokenCounter) -> Result<Vec<Sample>, BenchError> {
    let max_new_tokens = cfg.max_new_tokens.unwrap_or(MAX_NEW_TOKENS).max(1);
    let answer_room = max_new_tokens - 1;
    let count = |text: &str| counter.count_tokens(text) + answer_room;
    let depths = cfg.depths_or(&DEFAULT_DEPTHS);
    let mut out = Vec::with_capacity(cfg.num_samples * depths.len());
    for index in 0..cfg.num_samples as u64 {
        for &depth in &depths {
            let case = PasskeyCase::new(cfg.length, depth, index, cfg.seed)?;
            let s = generate_sample(&case, &count)?;
            out.push(Sample {
                id: format!("passkey/{}/{depth}/{index}", cfg.length),
                task: "passkey".into(),
                prompt: s.prompt,
                chat: false,
                answer_prefix: String::new(),
                question: INSTRUCTION.into(),
                truncation: Truncation::None,
                answers: vec![s.answer],
                all_classes: Vec::new(),
                metric: Metric::FirstIntegerEq,
                max_new_tokens,
                meta: serde_json::json!({
                    "length": cfg.length,
                    "depth": depth,
                    "sample": index,
                    "seed": cfg.seed,
                    "passkey": s.passkey,
                    "generator_version": GENERATOR_VERSION,
                    "prompt_tokens": s.prompt_tokens,
                }),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::first_integer_eq;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    const PREFIX_WORDS: usize = 26;
    const FILLER_WORDS: usize = 19;
    const KEY_WORDS: usize = 12;
    const QUESTION_WORDS: usize = 9;

    #[test]
    fn piece_word_counts() {
        assert_eq!(words(TASK_PREFIX), PREFIX_WORDS);
        assert_eq!(words(FILLER), FILLER_WORDS);
        assert_eq!(words(&key_line(42)), KEY_WORDS);
        assert_eq!(words(QUESTION), QUESTION_WORDS);
    }

    #[test]
    fn golden_samples_for_seed_zero() {
        let sample = generate_sample(&PasskeyCase::new(512, 50, 0, 0).unwrap(), &words).unwrap();
        // 47 fixed words + 19 per filler: 24 fillers = 503 words ≤ 512 < 522.
        assert_eq!(sample.filler_count, 24);
        assert_eq!(sample.prompt_tokens, 503);
        assert_eq!(sample.fillers_before_key, 12);
        assert_eq!(sample.passkey, GOLDEN_KEYS[0]);
        assert_eq!(sample.answer, GOLDEN_KEYS[0].to_string());
        let head = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. \
                    I will quiz you about the important information there. The grass is green. The sky is blue. \
                    The sun is yellow. Here we go. There and back again. The grass is green.";
        assert!(sample.prompt.starts_with(head), "{}", &sample.prompt[..300]);
        let tail = "There and back again. What is the pass key? The pass key is";
        assert!(sample.prompt.ends_with(tail));
        let key = format!(
            "There and back again. The pass key is {k}. Remember it. {k} is the pass key. The grass is green.",
            k = sample.passkey
        );
        assert_eq!(sample.prompt.matches(&key).count(), 1);
        let key_at = sample.prompt.find(&key_line(sample.passkey)).unwrap();
        assert_eq!(sample.prompt[..key_at].matches(FILLER).count(), 12);

        // The keys of a fixed grid, pinned: they must never change for GENERATOR_VERSION 1.
        let mut keys = Vec::new();
        for (length, depth, index) in [
            (512, 50, 0),
            (512, 50, 1),
            (512, 10, 0),
            (1024, 50, 0),
            (512, 90, 0),
        ] {
            keys.push(PasskeyCase::new(length, depth, index, 0).unwrap().passkey());
        }
        assert_eq!(keys, GOLDEN_KEYS);
        assert_eq!(
            PasskeyCase::new(512, 50, 0, 1).unwrap().passkey(),
            GOLDEN_KEY_SEED_ONE
        );
    }

    /// Keys for seed 0 at (512, 50%, #0), (512, 50%, #1), (512, 10%, #0), (1024, 50%, #0),
    /// (512, 90%, #0); checked against an independent Python implementation of the
    /// documented derivation.
    const GOLDEN_KEYS: [u64; 5] = [580_204, 9_040_459, 7_960_727, 6_164_806, 6_059_410];
    const GOLDEN_KEY_SEED_ONE: u64 = 6_687_298;

    #[test]
    fn same_case_same_sample() {
        let case = PasskeyCase::new(2000, 10, 3, 7).unwrap();
        let a = generate_sample(&case, &words).unwrap();
        let b = generate_sample(&case, &words).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            first_integer_eq(&format!(" {}.", a.passkey), &a.answer),
            1.0
        );
    }

    #[test]
    fn lengths_land_within_one_filler_of_the_target() {
        // A word counter and a rough characters-per-token counter with a BOS token.
        let chars = |text: &str| 1 + text.len().div_ceil(4);
        for target in [100, 333, 512, 1000, 4096, 16_384] {
            for depth in [0, 10, 50, 90, 100] {
                let case = PasskeyCase::new(target, depth, 0, 0).unwrap();
                let sample = generate_sample(&case, &words).unwrap();
                assert!(
                    sample.prompt_tokens <= target,
                    "{target} {depth}: {}",
                    sample.prompt_tokens
                );
                assert!(
                    target - sample.prompt_tokens < FILLER_WORDS,
                    "{target} {depth}: {}",
                    sample.prompt_tokens
                );
                assert_eq!(words(&sample.prompt), sample.prompt_tokens);
                let one_filler = chars(FILLER) + 1;
                let sample = generate_sample(&case, &chars).unwrap();
                assert!(sample.prompt_tokens <= target);
                assert!(
                    target - sample.prompt_tokens < one_filler,
                    "{target} {depth}: {}",
                    sample.prompt_tokens
                );
            }
        }
    }

    #[test]
    fn depth_places_the_key_line() {
        for (depth, before) in [(0, 0), (10, 2), (50, 12), (90, 22), (100, 24)] {
            let sample =
                generate_sample(&PasskeyCase::new(512, depth, 0, 0).unwrap(), &words).unwrap();
            assert_eq!(sample.filler_count, 24);
            assert_eq!(sample.fillers_before_key, before, "depth {depth}");
            let key_at = sample.prompt.find(&key_line(sample.passkey)).unwrap();
            assert_eq!(sample.prompt[..key_at].matches(FILLER).count(), before);
        }
    }

    #[test]
    fn keys_are_in_range_and_vary() {
        let mut keys = std::collections::HashSet::new();
        for sample in 0..200 {
            let key = PasskeyCase::new(4096, 50, sample, 0).unwrap().passkey();
            assert!((PASSKEY_MIN..PASSKEY_END).contains(&key));
            keys.insert(key);
        }
        assert!(keys.len() > 190);
    }

    #[test]
    fn bad_cases_are_named() {
        assert!(matches!(
            PasskeyCase::new(0, 50, 0, 0),
            Err(BenchError::ZeroLength)
        ));
        assert!(matches!(
            PasskeyCase::new(512, 101, 0, 0),
            Err(BenchError::DepthOutOfRange(101))
        ));
        let err = generate_sample(
            &PasskeyCase {
                length: 60,
                depth: 50,
                sample: 0,
                seed: 0,
            },
            &words,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                BenchError::LengthTooShort {
                    length: 60,
                    minimum: 66
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("66"), "{err}");
        // A struct built by hand is still checked.
        let err = generate_sample(
            &PasskeyCase {
                length: 512,
                depth: 200,
                sample: 0,
                seed: 0,
            },
            &words,
        )
        .unwrap_err();
        assert!(matches!(err, BenchError::DepthOutOfRange(200)));
    }

    #[test]
    fn degenerate_counters_terminate() {
        let case = PasskeyCase::new(50, 50, 0, 0).unwrap();
        let sample = generate_sample(&case, &|_: &str| 0).unwrap();
        assert_eq!(sample.filler_count, 50);
        let sample = generate_sample(&case, &|_: &str| 50).unwrap();
        assert_eq!(sample.filler_count, 50);
    }

    #[test]
    fn the_task_generates_the_cases_with_room_for_the_answer() {
        let mut cfg = GenConfig::new(512, &[10, 50], 2);
        cfg.max_new_tokens = Some(8);
        let samples = generate(&cfg, &words).unwrap();
        let ids: Vec<&str> = samples.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "passkey/512/10/0",
                "passkey/512/50/0",
                "passkey/512/10/1",
                "passkey/512/50/1"
            ]
        );
        // All but the last answer token fit with the prompt: the same sample as the
        // generator's own with a counter charging 7 more tokens.
        let seven_more = |t: &str| words(t) + 7;
        let case = generate_sample(&PasskeyCase::new(512, 50, 0, 0).unwrap(), &seven_more).unwrap();
        let s = &samples[1];
        assert_eq!(s.prompt, case.prompt);
        assert_eq!(s.answers, [GOLDEN_KEYS[0].to_string()]);
        assert_eq!(s.meta["passkey"], GOLDEN_KEYS[0]);
        assert_eq!((s.chat, s.max_new_tokens), (false, 8));
        assert_eq!(s.question, INSTRUCTION);
        assert_eq!(TASKS[0].max_new_tokens(), MAX_NEW_TOKENS);
    }
}
