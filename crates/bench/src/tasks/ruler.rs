//! RULER's 13 synthetic tasks (methods reference §C14; code: NVIDIA/RULER at `c3f5e3b`,
//! `scripts/synthetic.yaml`, `scripts/data/synthetic/{constants,niah,variable_tracking,
//! common_words_extraction,freq_words_extraction,qa}.py`, `scripts/eval/synthetic/constants.py`).
//! (Over 700 lines on purpose: the 13 generators share upstream's templates and haystack code.)
//!
//! Task names, templates, answer prefixes, needle sentence, haystacks (noise sentence, Paul
//! Graham essays from `paul-graham-essays/ruler/PaulGrahamEssays.json`, repeated-needle
//! haystack), key/value types, `tokens_to_generate` and metrics are upstream's. Lengths
//! follow upstream's contract: `tokens(input + answer_prefix) + max_new_tokens <= length`,
//! the haystack size (sentences, words, list entries) the largest that fits, found by
//! doubling and bisection with the caller's counter.
//!
//! Differences from upstream, all deliberate:
//! - Randomness is [`SplitMix64`](crate::rng::SplitMix64) per sample (seeded with seed,
//!   task, length, depth, index) instead of Python's global `random`/NumPy streams, and the
//!   haystack size is fitted per sample (upstream fits once and shrinks on overflow).
//! - `words` keys are `adjective-noun` pairs from this crate's own lists
//!   ([`crate::tasks::words`]), not `wonderwords`' lists (not redistributable here); the
//!   common-words list likewise, continued with generated pseudo-words where upstream falls
//!   back to its `english_words.json`.
//! - Needle placement: with configured depths every needle of a sample goes at that depth
//!   (essay: before sentence `round(sentences × depth / 100)`; noise/needle haystacks: after
//!   that share of the lines). With no depths configured, placement is random as upstream
//!   (essay: distinct depths from upstream's 40 evenly spaced percentages; other haystacks:
//!   uniform positions drawn as fractions of the haystack).
//! - Sentences are split with a simple rule ([`split_sentences`]) instead of NLTK Punkt, and
//!   empty sentence runs do not leave double spaces.
//! - Distractor needles never reuse a real key.
//! - vt's one-shot example is generated per sample (same 500-token budget, 3-letter names,
//!   its own value) instead of once and then re-lettered by string replacement.
//! - fwe's word count is fitted exactly instead of in steps of `length/32`; its shuffle uses
//!   the sample's generator instead of the fixed seed 42.
//! - qa_1/qa_2 need SQuAD v2 dev and HotpotQA dev (distractor), which are not in the shared
//!   data: they return an error naming the missing file instead of inventing data.

use std::path::Path;

use crate::rng::SplitMix64;
use crate::sample::{Sample, Truncation};
use crate::task::TokenCounter;
use crate::task::{GenerateFn, Source, Task};
use crate::tasks::common::{
    data_path, depth_index, fit_largest, index, invalid_config, read_data, sample_distinct,
    sample_rng, shuffle, split_sentences, uuid4, GenConfig,
};
use crate::tasks::words;
use crate::{BenchError, Metric};

/// Bumped whenever a prompt text or a derivation changes.
pub const GENERATOR_VERSION: u32 = 1;

/// The noise haystack sentence.
pub const NOISE: &str =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
/// The needle sentence (`{type}` is the plural value type).
pub const NEEDLE: &str = "One of the special magic {type_needle_v} for {key} is: {value}.";

pub const NIAH_TEMPLATE: &str = "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic {type_needle_v} for {query} mentioned in the provided text?";
pub const NIAH_ANSWER_PREFIX: &str =
    " The special magic {type_needle_v} for {query} mentioned in the provided text are";
pub const VT_TEMPLATE: &str = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\nQuestion: Find all variables that are assigned the value {query} in the text above.";
pub const VT_ANSWER_PREFIX: &str = " Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assigned the value {query}, they are: ";
pub const CWE_TEMPLATE: &str = "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?";
pub const CWE_ANSWER_PREFIX: &str =
    " Answer: The top 10 words that appear most often in the list are:";
pub const FWE_TEMPLATE: &str = "Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text?";
pub const FWE_ANSWER_PREFIX: &str =
    " Answer: According to the coded text above, the three most frequently appeared words are:";
pub const QA_TEMPLATE: &str = "Answer the question based on the given documents. Only give me the answer and do not output any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}";
pub const QA_ANSWER_PREFIX: &str = " Answer:";

/// Upstream's essay depths: `round(linspace(0, 100, 40))`.
pub fn essay_depths() -> Vec<u32> {
    (0..40)
        .map(|i| (100.0 * i as f64 / 39.0).round() as u32)
        .collect()
}

/// Haystack of a NIAH task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Haystack {
    Noise,
    Essay,
    Needle,
}

/// Type of needle keys or values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeedleType {
    Words,
    Numbers,
    Uuids,
}

impl NeedleType {
    fn plural(self) -> &'static str {
        match self {
            NeedleType::Words => "words",
            NeedleType::Numbers => "numbers",
            NeedleType::Uuids => "uuids",
        }
    }
}

/// One NIAH configuration of `synthetic.yaml`.
#[derive(Clone, Copy, Debug)]
pub struct NiahSpec {
    pub name: &'static str,
    pub haystack: Haystack,
    pub keys: NeedleType,
    pub values: NeedleType,
    pub num_k: usize,
    pub num_v: usize,
    pub num_q: usize,
}

const fn spec(
    name: &'static str,
    haystack: Haystack,
    keys: NeedleType,
    values: NeedleType,
    (num_k, num_v, num_q): (usize, usize, usize),
) -> NiahSpec {
    NiahSpec {
        name,
        haystack,
        keys,
        values,
        num_k,
        num_v,
        num_q,
    }
}

use Haystack::{Essay, Needle, Noise};
use NeedleType::{Numbers, Uuids, Words};

/// The eight NIAH tasks of `synthetic.yaml`.
pub const NIAH_SPECS: [NiahSpec; 8] = [
    spec("ruler/niah_single_1", Noise, Words, Numbers, (1, 1, 1)),
    spec("ruler/niah_single_2", Essay, Words, Numbers, (1, 1, 1)),
    spec("ruler/niah_single_3", Essay, Words, Uuids, (1, 1, 1)),
    spec("ruler/niah_multikey_1", Essay, Words, Numbers, (4, 1, 1)),
    spec("ruler/niah_multikey_2", Needle, Words, Numbers, (1, 1, 1)),
    spec("ruler/niah_multikey_3", Needle, Uuids, Uuids, (1, 1, 1)),
    spec("ruler/niah_multivalue", Essay, Words, Numbers, (1, 4, 1)),
    spec("ruler/niah_multiquery", Essay, Words, Numbers, (1, 1, 4)),
];

pub const NIAH_MAX_NEW_TOKENS: usize = 128;
pub const VT_MAX_NEW_TOKENS: usize = 30;
pub const CWE_MAX_NEW_TOKENS: usize = 120;
pub const FWE_MAX_NEW_TOKENS: usize = 50;
pub const QA_MAX_NEW_TOKENS: usize = 32;

macro_rules! niah_task {
    ($i:expr, $f:ident) => {
        fn $f(cfg: &GenConfig, counter: &dyn TokenCounter) -> Result<Vec<Sample>, BenchError> {
            generate_niah(&NIAH_SPECS[$i], cfg, counter)
        }
    };
}
niah_task!(0, gen_single_1);
niah_task!(1, gen_single_2);
niah_task!(2, gen_single_3);
niah_task!(3, gen_multikey_1);
niah_task!(4, gen_multikey_2);
niah_task!(5, gen_multikey_3);
niah_task!(6, gen_multivalue);
niah_task!(7, gen_multiquery);

const fn niah_entry(i: usize, summary: &'static str, generate: GenerateFn) -> Task {
    Task {
        name: NIAH_SPECS[i].name,
        summary,
        metric: Metric::StringMatchAll,
        source: Source::Generate {
            generate,
            max_new_tokens: NIAH_MAX_NEW_TOKENS,
            chat: true,
        },
    }
}

/// The 13 registry entries, in upstream's order.
pub const TASKS: [Task; 13] = [
    niah_entry(
        0,
        "RULER NIAH: one word key, one 7-digit number, noise haystack",
        gen_single_1,
    ),
    niah_entry(
        1,
        "RULER NIAH: one word key, one number, essay haystack",
        gen_single_2,
    ),
    niah_entry(
        2,
        "RULER NIAH: one word key, one UUID, essay haystack",
        gen_single_3,
    ),
    niah_entry(
        3,
        "RULER NIAH: four word keys (three distractors), essay haystack",
        gen_multikey_1,
    ),
    niah_entry(
        4,
        "RULER NIAH: one word key among distractor needles",
        gen_multikey_2,
    ),
    niah_entry(
        5,
        "RULER NIAH: one UUID key among UUID distractor needles",
        gen_multikey_3,
    ),
    niah_entry(
        6,
        "RULER NIAH: four values for one key, essay haystack",
        gen_multivalue,
    ),
    niah_entry(
        7,
        "RULER NIAH: four keys queried at once, essay haystack",
        gen_multiquery,
    ),
    Task {
        name: "ruler/vt",
        summary: "RULER variable tracking: one chain of 4 hops hidden in noise",
        metric: Metric::StringMatchAll,
        source: Source::Generate {
            generate: generate_vt,
            max_new_tokens: VT_MAX_NEW_TOKENS,
            chat: true,
        },
    },
    Task {
        name: "ruler/cwe",
        summary: "RULER common words extraction: the 10 most frequent words of a numbered list",
        metric: Metric::StringMatchAll,
        source: Source::Generate {
            generate: generate_cwe,
            max_new_tokens: CWE_MAX_NEW_TOKENS,
            chat: true,
        },
    },
    Task {
        name: "ruler/fwe",
        summary: "RULER frequent words extraction: the 3 most frequent coded words (Zipf, alpha 2)",
        metric: Metric::StringMatchAll,
        source: Source::Generate {
            generate: generate_fwe,
            max_new_tokens: FWE_MAX_NEW_TOKENS,
            chat: true,
        },
    },
    Task {
        name: "ruler/qa_1",
        summary: "RULER QA on SQuAD v2 dev (needs the dataset; unavailable here)",
        metric: Metric::StringMatchPart,
        source: Source::Generate {
            generate: generate_qa_1,
            max_new_tokens: QA_MAX_NEW_TOKENS,
            chat: true,
        },
    },
    Task {
        name: "ruler/qa_2",
        summary: "RULER QA on HotpotQA dev distractor (needs the dataset; unavailable here)",
        metric: Metric::StringMatchPart,
        source: Source::Generate {
            generate: generate_qa_2,
            max_new_tokens: QA_MAX_NEW_TOKENS,
            chat: true,
        },
    },
];

/// RULER's essay haystack: the JSON's `text` with whitespace runs collapsed, as words.
pub fn essay_words(root: &Path) -> Result<Vec<String>, BenchError> {
    const FILE: &str = "paul-graham-essays/ruler/PaulGrahamEssays.json";
    let text = read_data(root, FILE)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| BenchError::Io {
        path: root.join(FILE),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let words: Vec<String> = value["text"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if words.is_empty() {
        return Err(invalid_config("RULER's essay haystack has no text"));
    }
    Ok(words)
}

/// `adjective-noun` keys from this crate's lists, sorted and de-duplicated as upstream.
fn word_keys() -> Vec<String> {
    let mut keys: Vec<String> = words::list(words::ADJECTIVES)
        .iter()
        .flat_map(|a| {
            words::list(words::NOUNS)
                .into_iter()
                .map(move |n| format!("{a}-{n}"))
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn draw(rng: &mut SplitMix64, kind: NeedleType, keys: &[String]) -> String {
    match kind {
        NeedleType::Numbers => rng.in_range(1_000_000, 10_000_000).to_string(),
        NeedleType::Words => keys[index(rng, keys.len())].clone(),
        NeedleType::Uuids => uuid4(rng),
    }
}

/// What a NIAH sample hides, independent of the haystack size.
struct NiahContent {
    needles: Vec<String>,
    query: String,
    answers: Vec<String>,
    /// Per needle: a depth in percent (essay) or a fraction of the haystack lines.
    positions: Vec<f64>,
    /// Seed of the distractor-needle stream.
    distractor_seed: u64,
    real_keys: Vec<String>,
}

fn niah_content(
    spec: &NiahSpec,
    rng: &mut SplitMix64,
    depth: Option<u32>,
    keys: &[String],
) -> NiahContent {
    let num_k = spec.num_k.max(spec.num_q);
    let mut real_keys: Vec<String> = Vec::new();
    let mut values = Vec::new();
    let mut needles = Vec::new();
    for _ in 0..num_k {
        let key = loop {
            let k = draw(rng, spec.keys, keys);
            if !real_keys.contains(&k) {
                break k;
            }
        };
        let mut vs = Vec::new();
        for _ in 0..spec.num_v {
            let v = draw(rng, spec.values, keys);
            needles.push(
                NEEDLE
                    .replace("{type_needle_v}", spec.values.plural())
                    .replace("{key}", &key)
                    .replace("{value}", &v),
            );
            vs.push(v);
        }
        real_keys.push(key);
        values.push(vs);
    }
    shuffle(rng, &mut needles);
    let positions: Vec<f64> = match (depth, spec.haystack) {
        (Some(d), _) => vec![f64::from(d); needles.len()],
        (None, Haystack::Essay) => {
            let depths = essay_depths();
            sample_distinct(rng, depths.len(), needles.len())
                .into_iter()
                .map(|i| f64::from(depths[i]))
                .collect()
        }
        (None, _) => (0..needles.len())
            .map(|_| 100.0 * rng.below(1 << 53) as f64 / (1u64 << 53) as f64)
            .collect(),
    };
    let picked = sample_distinct(rng, num_k, spec.num_q);
    let queries: Vec<String> = picked.iter().map(|&i| real_keys[i].clone()).collect();
    let answers = picked.iter().flat_map(|&i| values[i].clone()).collect();
    let query = if queries.len() > 1 {
        format!(
            "{}, and {}",
            queries[..queries.len() - 1].join(", "),
            queries[queries.len() - 1]
        )
    } else {
        queries[0].clone()
    };
    NiahContent {
        needles,
        query,
        answers,
        positions,
        distractor_seed: rng.next_u64(),
        real_keys,
    }
}

/// Lines of a noise/needle haystack with needles inserted: needle `i` follows
/// `floor(fraction × n)` haystack lines (`round` for configured depths), order kept.
fn insert_lines(lines: Vec<String>, needles: &[String], positions: &[f64], exact: bool) -> String {
    let n = lines.len();
    let mut at: Vec<(usize, usize)> = positions
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let k = if exact {
                depth_index(n, p as u32)
            } else {
                ((p / 100.0 * n as f64) as usize).min(n)
            };
            (k, i)
        })
        .collect();
    at.sort();
    let mut out: Vec<&str> = Vec::with_capacity(n + needles.len());
    let mut next = 0;
    for (k, i) in at {
        out.extend(lines[next..k].iter().map(String::as_str));
        next = k;
        out.push(&needles[i]);
    }
    out.extend(lines[next..].iter().map(String::as_str));
    out.join("\n")
}

/// Essay context: the first `n` words (repeated as needed), split into sentences, needles
/// inserted before sentence `int(sentences × depth / 100)` in ascending depth order.
fn essay_context(words: &[String], n: usize, needles: &[String], depths: &[f64]) -> String {
    let text: String = (0..n)
        .map(|i| words[i % words.len()].as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let sents = split_sentences(&text);
    let mut at: Vec<(usize, usize)> = depths
        .iter()
        .enumerate()
        .map(|(i, &d)| (((sents.len() as f64) * d / 100.0) as usize, i))
        .collect();
    at.sort();
    let mut parts: Vec<&str> = Vec::new();
    let mut next = 0;
    for (k, i) in at {
        parts.extend(&sents[next..k]);
        next = k;
        parts.push(&needles[i]);
    }
    parts.extend(&sents[next..]);
    parts.join(" ")
}

fn niah_input(spec: &NiahSpec, content: &NiahContent, context: &str) -> (String, String) {
    let mut template = format!("{NIAH_TEMPLATE}{NIAH_ANSWER_PREFIX}");
    let mut type_v = spec.values.plural().to_string();
    if spec.num_q * spec.num_v == 1 {
        template = template
            .replace("Some", "A")
            .replace("are all", "is")
            .replace("are", "is")
            .replace("answers", "answer");
        type_v.pop();
    }
    let full = template
        .replace("{type_needle_v}", &type_v)
        .replace("{query}", &content.query);
    // Split off the answer prefix as upstream does: by its first 10 characters, from the end.
    let cut = full.rfind(&NIAH_ANSWER_PREFIX[..10]).unwrap_or(full.len());
    let (head, prefix) = full.split_at(cut);
    (head.replace("{context}", context), prefix.to_string())
}

fn sample_depths(cfg: &GenConfig) -> Vec<Option<u32>> {
    if cfg.depths.is_empty() {
        vec![None]
    } else {
        cfg.depths.iter().map(|&d| Some(d)).collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn make_sample(
    task: &Task,
    cfg: &GenConfig,
    depth: Option<u32>,
    idx: usize,
    input: String,
    answer_prefix: String,
    answers: Vec<String>,
    question: String,
    meta: serde_json::Value,
) -> Sample {
    let mut meta = meta;
    meta["generator_version"] = GENERATOR_VERSION.into();
    meta["length"] = cfg.length.into();
    meta["depth"] = depth.map_or(serde_json::Value::Null, Into::into);
    Sample {
        id: format!(
            "{}/{}/{}/{idx}",
            task.name,
            cfg.length,
            depth.map_or("random".to_string(), |d| d.to_string())
        ),
        task: task.name.to_string(),
        prompt: input,
        chat: true,
        answer_prefix,
        question,
        truncation: Truncation::None,
        answers,
        all_classes: Vec::new(),
        metric: task.metric,
        max_new_tokens: task.max_new_tokens(),
        meta,
    }
}

fn task_entry(name: &str) -> &'static Task {
    TASKS.iter().find(|t| t.name == name).expect("registered")
}

/// Generates a NIAH task: for each configured depth (or once, with upstream's random
/// placement, when none is configured) × `num_samples`.
pub fn generate_niah(
    spec: &NiahSpec,
    cfg: &GenConfig,
    counter: &dyn TokenCounter,
) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let task = task_entry(spec.name);
    let essay = match spec.haystack {
        Haystack::Essay => essay_words(&cfg.data_root)?,
        _ => Vec::new(),
    };
    let keys = word_keys();
    let mut out = Vec::new();
    for depth in sample_depths(cfg) {
        for idx in 0..cfg.num_samples {
            let mut rng = sample_rng(spec.name, cfg, depth, idx);
            let content = niah_content(spec, &mut rng, depth, &keys);
            let render = |n: usize| {
                let context = match spec.haystack {
                    Haystack::Essay => {
                        essay_context(&essay, n, &content.needles, &content.positions)
                    }
                    Haystack::Noise => insert_lines(
                        vec![NOISE.to_string(); n],
                        &content.needles,
                        &content.positions,
                        depth.is_some(),
                    ),
                    Haystack::Needle => {
                        let mut drng = SplitMix64::new(content.distractor_seed);
                        let lines = (0..n)
                            .map(|_| {
                                let key = loop {
                                    let k = draw(&mut drng, spec.keys, &keys);
                                    if !content.real_keys.contains(&k) {
                                        break k;
                                    }
                                };
                                NEEDLE
                                    .replace("{type_needle_v}", spec.values.plural())
                                    .replace("{key}", &key)
                                    .replace("{value}", &draw(&mut drng, spec.values, &keys))
                            })
                            .collect();
                        insert_lines(lines, &content.needles, &content.positions, depth.is_some())
                    }
                };
                niah_input(spec, &content, &context)
            };
            let n = fit_largest(
                1,
                cfg.length * 8 + 8,
                cfg.length,
                task.max_new_tokens(),
                |n| {
                    let (input, prefix) = render(n);
                    counter.count_tokens(&format!("{input}{prefix}"))
                },
            )?;
            let (input, prefix) = render(n);
            let question = input[input.rfind('\n').map_or(0, |p| p + 1)..].to_string();
            let meta = serde_json::json!({
                "haystack_units": n,
                "needle_depths": content.positions,
                "prompt_tokens": counter.count_tokens(&format!("{input}{prefix}")),
            });
            out.push(make_sample(
                task,
                cfg,
                depth,
                idx,
                input,
                prefix,
                content.answers.clone(),
                question,
                meta,
            ));
        }
    }
    Ok(out)
}

fn random_letters(rng: &mut SplitMix64, k: usize) -> String {
    (0..k)
        .map(|_| (b'A' + rng.below(26) as u8) as char)
        .collect()
}

/// A vt chain: names (distinct) and the statements, value first.
fn vt_chain(
    rng: &mut SplitMix64,
    letters: usize,
    hops: usize,
) -> (Vec<String>, Vec<String>, String) {
    let mut names: Vec<String> = Vec::new();
    while names.len() < hops + 1 {
        let n = random_letters(rng, letters);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let value = rng.in_range(10_000, 99_999).to_string();
    let mut statements = vec![format!("VAR {} = {value}", names[0])];
    for j in 0..hops {
        statements.push(format!("VAR {} = VAR {} ", names[j + 1], names[j]));
    }
    (names, statements, value)
}

/// The vt text (template with its answer prefix) for a chain placed in `n` noise lines at
/// the given sorted fractions; returns (input, answer prefix).
fn vt_text(statements: &[String], value: &str, fractions: &[f64], n: usize) -> (String, String) {
    let mut lines: Vec<&str> = Vec::new();
    let mut next = 0;
    for (j, f) in fractions.iter().enumerate() {
        let k = ((f * n as f64) as usize).min(n);
        lines.extend(std::iter::repeat_n(NOISE, k - next));
        next = k;
        lines.push(&statements[j]);
    }
    lines.extend(std::iter::repeat_n(NOISE, n - next));
    let context = lines.join("\n").replace(". \n", ".\n");
    let num_v = statements.len().to_string();
    (
        VT_TEMPLATE
            .replace("{context}", &context)
            .replace("{query}", value),
        VT_ANSWER_PREFIX
            .replace("{num_v}", &num_v)
            .replace("{query}", value),
    )
}

fn sorted_fractions(rng: &mut SplitMix64, k: usize) -> Vec<f64> {
    let mut f: Vec<f64> = (0..k)
        .map(|_| rng.below(1 << 53) as f64 / (1u64 << 53) as f64)
        .collect();
    f.sort_by(f64::total_cmp);
    f
}

/// Hops of the vt chain (`synthetic.yaml`: one chain, 4 hops).
pub const VT_HOPS: usize = 4;
/// Token budget of vt's one-shot example.
pub const VT_EXAMPLE_TOKENS: usize = 500;

/// Generates `ruler/vt`; depths are ignored (the chain's positions are random as upstream).
pub fn generate_vt(cfg: &GenConfig, counter: &dyn TokenCounter) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let task = task_entry("ruler/vt");
    // The example's noise count, fitted once with a reference chain (upstream fits it once).
    let mut reference = sample_rng("ruler/vt/example", cfg, None, 0);
    let (_, st, val) = vt_chain(&mut reference, 3, VT_HOPS);
    let fr = sorted_fractions(&mut reference, st.len());
    let example_noise = fit_largest(1, VT_EXAMPLE_TOKENS * 8, VT_EXAMPLE_TOKENS, 0, |n| {
        let (a, b) = vt_text(&st, &val, &fr, n);
        counter.count_tokens(&format!("{a}{b}"))
    })?;
    let mut out = Vec::new();
    for idx in 0..cfg.num_samples {
        let mut rng = sample_rng(task.name, cfg, None, idx);
        let (ex_names, ex_st, ex_val) = vt_chain(&mut rng, 3, VT_HOPS);
        let ex_fr = sorted_fractions(&mut rng, ex_st.len());
        let (ex_in, ex_prefix) = vt_text(&ex_st, &ex_val, &ex_fr, example_noise);
        let example = format!("{ex_in}{ex_prefix} {}\n", ex_names.join(" "));
        let (names, statements, value) = vt_chain(&mut rng, 5, VT_HOPS);
        let fractions = sorted_fractions(&mut rng, statements.len());
        let render = |n: usize| {
            let (input, prefix) = vt_text(&statements, &value, &fractions, n);
            (format!("{example}\n{input}"), prefix)
        };
        let n = fit_largest(
            1,
            cfg.length * 8 + 8,
            cfg.length,
            task.max_new_tokens(),
            |n| {
                let (i, p) = render(n);
                counter.count_tokens(&format!("{i}{p}"))
            },
        )?;
        let (input, prefix) = render(n);
        let question = input[input.rfind('\n').map_or(0, |p| p + 1)..].to_string();
        let meta = serde_json::json!({
            "haystack_units": n,
            "example_noise": example_noise,
            "chain_fractions": fractions,
            "prompt_tokens": counter.count_tokens(&format!("{input}{prefix}")),
        });
        out.push(make_sample(
            task, cfg, None, idx, input, prefix, names, question, meta,
        ));
    }
    Ok(out)
}

/// The common-words pool: this crate's nouns, adjectives and verbs, de-duplicated, sorted.
fn cwe_pool() -> Vec<&'static str> {
    let mut pool = words::list(words::NOUNS);
    pool.extend(words::list(words::ADJECTIVES));
    pool.extend(words::list(words::VERBS));
    pool.sort_unstable();
    pool.dedup();
    pool
}

/// One cwe list: `num_words` distinct words (a prefix of `order`, continued with
/// pseudo-words), the first 10 repeated `common` times, the rest `uncommon` times, shuffled,
/// rendered `1. w 2. w …`; returns (context, the 10 common words).
fn cwe_example(
    rng: &mut SplitMix64,
    order: &[&str],
    num_words: usize,
    common: usize,
    uncommon: usize,
) -> (String, Vec<String>) {
    let mut chosen: Vec<String> = order
        .iter()
        .take(num_words)
        .map(|s| s.to_string())
        .collect();
    let mut p = 0;
    while chosen.len() < num_words {
        let w = words::pseudo_word(p);
        p += 1;
        if !order.contains(&w.as_str()) {
            chosen.push(w);
        }
    }
    let (cw, ucw) = chosen.split_at(CWE_NUM_CW.min(chosen.len()));
    let mut list: Vec<&str> = Vec::new();
    for _ in 0..common {
        list.extend(cw.iter().map(String::as_str));
    }
    for _ in 0..uncommon {
        list.extend(ucw.iter().map(String::as_str));
    }
    shuffle(rng, &mut list);
    let context = list
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{}. {w}", i + 1))
        .collect::<Vec<_>>()
        .join(" ");
    (context, cw.to_vec())
}

/// Number of common words in cwe.
pub const CWE_NUM_CW: usize = 10;

/// Generates `ruler/cwe` (one few-shot example, as upstream's default); depths are ignored.
/// Below 4096 tokens the repeats are 6×/1× (example 20 words, 3×/1×), else 30×/3× (example
/// 40 words, 10×/3×).
pub fn generate_cwe(
    cfg: &GenConfig,
    counter: &dyn TokenCounter,
) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let task = task_entry("ruler/cwe");
    let mut pool = cwe_pool();
    shuffle(&mut SplitMix64::from_parts(&[cfg.seed]), &mut pool);
    let short = cfg.length < 4096;
    let (ex_words, ex_c, ex_u, c, u) = if short {
        (20, 3, 1, 6, 1)
    } else {
        (40, 10, 3, 30, 3)
    };
    let full = format!("{CWE_TEMPLATE}{CWE_ANSWER_PREFIX}");
    let mut out = Vec::new();
    for idx in 0..cfg.num_samples {
        let mut rng = sample_rng(task.name, cfg, None, idx);
        let mut ex_order = pool.clone();
        shuffle(&mut rng, &mut ex_order);
        let (ex_ctx, ex_ans) = cwe_example(&mut rng, &ex_order, ex_words, ex_c, ex_u);
        let example = format!(
            "{} {}",
            full.replace("{context}", &ex_ctx),
            ex_ans
                .iter()
                .enumerate()
                .map(|(i, w)| format!("{}. {w}", i + 1))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut order = pool.clone();
        shuffle(&mut rng, &mut order);
        let list_seed = rng.next_u64();
        let render = |n: usize| {
            let (ctx, ans) = cwe_example(&mut SplitMix64::new(list_seed), &order, n, c, u);
            (
                format!("{example}\n{}", CWE_TEMPLATE.replace("{context}", &ctx)),
                ans,
            )
        };
        let n = fit_largest(
            CWE_NUM_CW + 1,
            cfg.length + 16,
            cfg.length,
            task.max_new_tokens(),
            |n| counter.count_tokens(&format!("{}{CWE_ANSWER_PREFIX}", render(n).0)),
        )?;
        let (input, answers) = render(n);
        let meta = serde_json::json!({
            "haystack_units": n,
            "prompt_tokens": counter.count_tokens(&format!("{input}{CWE_ANSWER_PREFIX}")),
        });
        let question = "What are the 10 most common words in the above list?".to_string();
        out.push(make_sample(
            task,
            cfg,
            None,
            idx,
            input,
            CWE_ANSWER_PREFIX.to_string(),
            answers,
            question,
            meta,
        ));
    }
    Ok(out)
}

/// ζ(2) = π²/6, the normaliser of fwe's Zipf counts at α = 2.
const ZETA_2: f64 = std::f64::consts::PI * std::f64::consts::PI / 6.0;

/// Generates `ruler/fwe`: a vocabulary of `max(5, (length − 50) / 50)` distinct random
/// 6-letter words, the top-ranked one replaced by `...`; word `k` appears
/// `int(n · k⁻² / ζ(2))` times in a shuffled text; the answers are ranks 2–4. Depths are
/// ignored.
pub fn generate_fwe(
    cfg: &GenConfig,
    counter: &dyn TokenCounter,
) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let task = task_entry("ruler/fwe");
    let vocab_size = (cfg.length.saturating_sub(task.max_new_tokens()) / 50).max(5);
    let mut out = Vec::new();
    for idx in 0..cfg.num_samples {
        let mut rng = sample_rng(task.name, cfg, None, idx);
        let mut vocab: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while vocab.len() < vocab_size {
            let w: String = (0..6)
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect();
            if seen.insert(w.clone()) {
                vocab.push(w);
            }
        }
        vocab.sort();
        shuffle(&mut rng, &mut vocab);
        vocab[0] = "...".to_string();
        let text_seed = rng.next_u64();
        let render = |n: usize| {
            let mut text: Vec<&str> = Vec::new();
            for (k, w) in vocab.iter().enumerate() {
                let count = (n as f64 * ((k + 1) as f64).powi(-2) / ZETA_2) as usize;
                text.extend(std::iter::repeat_n(w.as_str(), count));
            }
            shuffle(&mut SplitMix64::new(text_seed), &mut text);
            FWE_TEMPLATE.replace("{context}", &text.join(" "))
        };
        // 100 words is the smallest count whose ranks 1–5 have strictly decreasing counts.
        let n = fit_largest(
            100,
            cfg.length * 8 + 8,
            cfg.length,
            task.max_new_tokens(),
            |n| counter.count_tokens(&format!("{}{FWE_ANSWER_PREFIX}", render(n))),
        )?;
        let input = render(n);
        let meta = serde_json::json!({
            "haystack_units": n,
            "vocab_size": vocab_size,
            "prompt_tokens": counter.count_tokens(&format!("{input}{FWE_ANSWER_PREFIX}")),
        });
        let question = input[input.rfind('\n').map_or(0, |p| p + 1)..].to_string();
        out.push(make_sample(
            task,
            cfg,
            None,
            idx,
            input,
            FWE_ANSWER_PREFIX.to_string(),
            vocab[1..4].to_vec(),
            question,
            meta,
        ));
    }
    Ok(out)
}

fn qa_unavailable(
    cfg: &GenConfig,
    relative: &str,
    dataset: &str,
) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let path = data_path(&cfg.data_root, relative)?;
    Err(BenchError::Io {
        path,
        source: std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("RULER QA on {dataset} is not implemented: no copy of the dataset was available to build and test it against"),
        ),
    })
}

/// `ruler/qa_1`: needs `ruler/squad.json` (SQuAD v2 dev) under the data root; always an
/// error today (missing file, or not implemented).
pub fn generate_qa_1(cfg: &GenConfig, _: &dyn TokenCounter) -> Result<Vec<Sample>, BenchError> {
    qa_unavailable(cfg, "ruler/squad.json", "SQuAD v2 dev")
}

/// `ruler/qa_2`: needs `ruler/hotpotqa.json` (HotpotQA dev, distractor) under the data root;
/// always an error today.
pub fn generate_qa_2(cfg: &GenConfig, _: &dyn TokenCounter) -> Result<Vec<Sample>, BenchError> {
    qa_unavailable(cfg, "ruler/hotpotqa.json", "HotpotQA dev distractor")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singular_template_matches_upstream_grammar() {
        let content = NiahContent {
            needles: vec![],
            query: "brave-otter".into(),
            answers: vec![],
            positions: vec![],
            distractor_seed: 0,
            real_keys: vec![],
        };
        let (input, prefix) = niah_input(&NIAH_SPECS[0], &content, "CTX");
        assert_eq!(
            input,
            "A special magic number is hidden within the following text. Make sure to memorize it. \
             I will quiz you about the number afterwards.\nCTX\nWhat is the special magic number for \
             brave-otter mentioned in the provided text?"
        );
        assert_eq!(
            prefix,
            " The special magic number for brave-otter mentioned in the provided text is"
        );
        let (input, prefix) = niah_input(&NIAH_SPECS[6], &content, "CTX");
        assert!(input.starts_with("Some special magic numbers are hidden"));
        assert!(prefix.ends_with("provided text are"));
        assert_eq!(essay_depths()[..4], [0, 3, 5, 8]);
        assert_eq!(essay_depths()[39], 100);
    }
}
