//! NeedleBench V2 (OpenCompass) multi-needle reasoning and the Ancestral Trace Challenge,
//! English (methods reference §C12; code: open-compass/opencompass
//! `opencompass/datasets/needlebench_v2/{multi,atc,atc_elder_only}.py`).
//!
//! **Multi-needle reasoning** (`needlebench_v2/reasoning_{2,3,4,5}needle_en`): `k + 1`
//! distinct names, `k` kinship sentences "A is B's {father|…}" from upstream's seven
//! templates and ten terms (each linking name `i` to name `i + 1`, so name 0 is the
//! eldest), shuffled; each wrapped in newlines and inserted into the Paul Graham essays,
//! the first at `int(words × depth / 100)`, each next `int(words × 10 / 100)` words further
//! (capped at the end), as upstream's `diff = 10`. Prompt: upstream's English "End" template
//! (document in `<Document>` tags, question, three worked examples, notes). Answer: name 0.
//!
//! **Ancestral Trace Challenge** (`needlebench_v2/atc_*_en`): no haystack; the shuffled
//! chain joined with no separator (as upstream's `''.join`) in one of upstream's four
//! English question templates: eldest ancestor (answer name 0), n-th generation ancestor of
//! the last person and n-th generation descendant of the first (n = sum of generations:
//! parent terms 1, grandparent terms 2), and relationship distance (the same sum, as
//! digits).
//!
//! Scoring (both): the last `\boxed{…}` of the output, cleaned as upstream's
//! `clean_atc_answer`, must equal the answer ([`boxed_exact`](crate::tasks::common::boxed_exact)).
//!
//! Differences from upstream, all deliberate:
//! - Names come from this crate's own lists ([`crate::tasks::words`]: "Given Surname"
//!   pairs), not `names.json` from Hugging Face (not in the shared data), and the haystack is
//!   the 49 essays of `paul-graham-essays/niah/` (one record per essay, shuffled per sample)
//!   instead of NeedleBench's `PaulGrahamEssays.jsonl`.
//! - The haystack is cut in words so that the whole prompt fits `length` tokens with the
//!   caller's counter; no `length_buffer` (upstream subtracts 3000 GPT-4 tokens for English).
//! - ATC is length-targeted: the needle count is the largest whose prompt fits `length`
//!   (upstream sweeps fixed counts 2, 4, …, 512); depths are ignored there.
//! - Randomness is [`SplitMix64`] per sample instead of `random.seed(counter)`.
//! - Chinese is not generated: its names and haystacks (`names.json`, `zh_finance.jsonl`) are
//!   not available here.
//! - `max_new_tokens` is 512 (upstream leaves the output length to the model config).

use crate::rng::SplitMix64;
use crate::sample::{Sample, Truncation};
use crate::task::TokenCounter;
use crate::task::{GenerateFn, Source, Task};
use crate::tasks::common::{
    fit_largest, index, niah_essay_records, sample_distinct, sample_rng, shuffle, GenConfig,
    DEFAULT_DEPTHS,
};
use crate::tasks::niah::{haystack_prefix, word_spans};
use crate::tasks::words;
use crate::{BenchError, Metric};

/// Bumped whenever a prompt text or a derivation changes.
pub const GENERATOR_VERSION: u32 = 1;
pub const MAX_NEW_TOKENS: usize = 512;
/// Distance between consecutive reasoning needles, in percent of the haystack (`diff`).
pub const NEEDLE_DIFF: usize = 10;

/// Upstream's English relationship terms with their generation counts.
pub const RELATIONSHIP_TERMS: [(&str, u32); 10] = [
    ("father", 1),
    ("mother", 1),
    ("dad", 1),
    ("mom", 1),
    ("grandfather", 2),
    ("grandmother", 2),
    ("maternal grandmother", 2),
    ("maternal grandfather", 2),
    ("paternal grandfather", 2),
    ("paternal grandmother", 2),
];

/// Upstream's English relationship templates.
pub const RELATIONSHIP_TEMPLATES: [&str; 7] = [
    "{A} is {B}'s {relationship}.",
    "{B}'s {relationship} is {A}.",
    "{A}, as {B}'s {relationship}, has a significant impact on {B}'s upbringing.",
    "{A} is not only {B}'s {relationship} but also {B}'s role model.",
    "During {B}'s upbringing, {A} was not only {B}'s {relationship}, but also {B}'s guardian.",
    "For {B}, {A} is not just a {relationship}, but also a friend.",
    "For {B}, {A} is more than just a {relationship}; {A} is a lifelong mentor of {B}.",
];

const EXAMPLES_ELDEST: &str = r#"For example:
Example 1: If James Hill's father is Jasmine Lane, and no further information about familial relationships is provided in the text, then the oldest relative James Hill can trace back to in the provided text is \boxed{Jasmine Lane}.
Example 2: If Andrew Williams's grandmother is Dan Newton, and Dan Newton's father is James Hill, and no further information about familial relationships is provided in the text, then the oldest relative Andrew Williams can trace back to in the provided text is \boxed{James Hill}.
Example 3: If Jeff White's father is Kevin Le, Dan Newton's grandmother is Jeff White, and Jeff White's father is Kevin Le, and Shelley Mills is Dan Newton's great-granddaughter, and no further information about familial relationships is provided in the text, then the oldest relative Shelley Mills can trace back to in the provided text is \boxed{Kevin Le}.

Notes:
1. You do not need to worry about the gender consistency of names in this test. For example, a name that is typically considered feminine can still be the father of another person. Our primary focus is on who is older.
2. Ignore surname inheritance issues. For instance, Andrew Williams could still be the biological father of Christopher Baker. We only care about who is older and do not need to consider whether a child should inherit the father's or mother's surname.
3. At the end of your response, remember to put your final answer within \boxed{}. For example: "So the oldest relative '{last_person}' can trace back to in the provided text is \boxed{"#;

/// Multi-needle reasoning, English, question at the end.
pub const REASONING_TEMPLATE: &str = "This is a test of long-text capability. You need to first read the long document below, and then answer the final question based on the information in the document.\nThe content of the long document is as follows\n\n<Document>\n{context}\n</Document>\n\nBased on the information in the document, now please answer: {retrieval_question}\n\n{examples}(your answer here)}.\"\n\n";

/// ATC eldest-ancestor question.
pub const ATC_ELDEST_TEMPLATE: &str = "Here is a test for multi-step reasoning ability called the Ancestral Trace Challenge. In this test, we will simulate different people's familial relationships, and your task is to continuously reason through them until you identify the eldest ancestor.\n\n{examples}somebody (your answer here)}.\"\n\nNow, the scrambled family relationships are provided below:\n{shuffled_story}\n\nGiven the scrambled family relationships described above, who is the eldest relative that '{last_person}' can trace back to in the context?\n";

const GENERATION_NOTES: &str = "Notes:\n1. You do not need to worry about the gender consistency of names in this test. We only care about generational relationships.\n2. Ignore surname inheritance issues. We only care about familial relationships.\n3. Father/mother/dad/mom count as 1 generation, while grandfather/grandmother/maternal grandmother/maternal grandfather/paternal grandfather/paternal grandmother count as 2 generations.\n";

/// ATC n-th ancestor question.
pub const ATC_NTH_ANCESTOR_TEMPLATE: &str = "Here is a test for multi-step reasoning ability called the Ancestral Trace Challenge. In this test, we will simulate different people's familial relationships, and your task is to identify a specific ancestor of a given person.\n\nFor example:\nExample 1: If James Hill's father is Jasmine Lane, then Jasmine Lane is James Hill's 1st generation ancestor.\nExample 2: If Andrew Williams's grandmother is Dan Newton (grandmother counts as 2 generations), and Dan Newton's father is James Hill, then Dan Newton is Andrew Williams's 2nd generation ancestor, and James Hill is Andrew Williams's 3rd generation ancestor.\nExample 3: If Shelley Mills's grandfather is Jeff White (grandfather counts as 2 generations), and Jeff White's mother is Mary Johnson, then Jeff White is Shelley Mills's 2nd generation ancestor, and Mary Johnson is Shelley Mills's 3rd generation ancestor.\n\n{notes}4. At the end of your response, remember to put your final answer within \\boxed{}. For example: \"So the {n}th generation ancestor of '{person}' is \\boxed{somebody (your answer here)}.\"\n\nNow, the scrambled family relationships are provided below:\n{shuffled_story}\n\nGiven the scrambled family relationships described above, who is the {n}th generation ancestor of '{person}'?\n";

/// ATC n-th descendant question.
pub const ATC_NTH_DESCENDANT_TEMPLATE: &str = "Here is a test for multi-step reasoning ability called the Ancestral Trace Challenge. In this test, we will simulate different people's familial relationships, and your task is to identify a specific descendant of a given person.\n\nFor example:\nExample 1: If Jasmine Lane is James Hill's father, then James Hill is Jasmine Lane's 1st generation descendant.\nExample 2: If Dan Newton is Andrew Williams's grandmother (grandmother counts as 2 generations), and James Hill is Dan Newton's father, then Andrew Williams is Dan Newton's 2nd generation descendant, and Andrew Williams is James Hill's 3rd generation descendant.\nExample 3: If Jeff White is Shelley Mills's grandfather (grandfather counts as 2 generations), and Mary Johnson is Jeff White's mother, then Shelley Mills is Jeff White's 2nd generation descendant, and Shelley Mills is Mary Johnson's 3rd generation descendant.\n\n{notes}4. At the end of your response, remember to put your final answer within \\boxed{}. For example: \"So the {n}th generation descendant of '{person}' is \\boxed{somebody (your answer here)}.\"\n\nNow, the scrambled family relationships are provided below:\n{shuffled_story}\n\nGiven the scrambled family relationships described above, who is the {n}th generation descendant of '{person}'?\n";

/// ATC relationship-distance question.
pub const ATC_DISTANCE_TEMPLATE: &str = "Here is a test for multi-step reasoning ability called the Ancestral Trace Challenge. In this test, we will simulate different people's familial relationships, and your task is to calculate the relationship distance between two individuals.\n\nThe relationship distance is defined as the minimum number of generational gaps needed to go from one person to another in the family graph. Note that different relationships have different generational gaps. For example:\nExample 1: If Jasmine Lane is James Hill's father (father counts as 1 generation), then the relationship distance between James Hill and Jasmine Lane is 1.\nExample 2: If Dan Newton is Andrew Williams's grandmother (grandmother counts as 2 generations), and James Hill is Dan Newton's father (father counts as 1 generation), then the relationship distance between Andrew Williams and Dan Newton is 2, and the relationship distance between Andrew Williams and James Hill is 3.\nExample 3: If Jeff White is Shelley Mills's grandfather (grandfather counts as 2 generations), and Mary Johnson is Jeff White's mother (mother counts as 1 generation), then the relationship distance between Shelley Mills and Jeff White is 2, and the relationship distance between Shelley Mills and Mary Johnson is 3.\n\n{notes_rel}4. At the end of your response, remember to put your final answer within \\boxed{}. For example: \"So the relationship distance between '{person_a}' and '{person_b}' is \\boxed{5}.\"\n\nNow, the scrambled family relationships are provided below:\n{shuffled_story}\n\nGiven the scrambled family relationships described above, what is the relationship distance between '{person_a}' and '{person_b}'?\n";

/// The four ATC question types, in upstream's enum order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtcQuestion {
    EldestAncestor,
    NthAncestor,
    NthDescendant,
    RelationshipDistance,
}

/// A kinship chain: names (eldest first), the sentences in shuffled order, and the total
/// generation count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub names: Vec<String>,
    pub sentences: Vec<String>,
    pub generations: u32,
}

/// All "Given Surname" names of this crate's lists.
fn name_count() -> usize {
    words::list(words::GIVEN_NAMES).len() * words::list(words::SURNAMES).len()
}

fn name(i: usize) -> String {
    let given = words::list(words::GIVEN_NAMES);
    let sur = words::list(words::SURNAMES);
    format!("{} {}", given[i % given.len()], sur[i / given.len()])
}

/// `needles` relation sentences over `needles + 1` distinct names, shuffled.
pub fn chain(rng: &mut SplitMix64, needles: usize) -> Chain {
    let names: Vec<String> = sample_distinct(rng, name_count(), needles + 1)
        .into_iter()
        .map(name)
        .collect();
    let mut sentences = Vec::with_capacity(needles);
    let mut generations = 0;
    for i in 0..needles {
        let template = RELATIONSHIP_TEMPLATES[index(rng, RELATIONSHIP_TEMPLATES.len())];
        let (term, gens) = RELATIONSHIP_TERMS[index(rng, RELATIONSHIP_TERMS.len())];
        generations += gens;
        sentences.push(
            template
                .replace("{A}", &names[i])
                .replace("{B}", &names[i + 1])
                .replace("{relationship}", term),
        );
    }
    shuffle(rng, &mut sentences);
    Chain {
        names,
        sentences,
        generations,
    }
}

/// The multi-needle reasoning question about the last person.
pub fn retrieval_question(last_person: &str) -> String {
    format!("Given the context described above, who is the eldest relative that '{last_person}' can trace back to in the context?")
}

/// Word indices (in the un-needled haystack of `total` words) before which the needles go.
pub fn reasoning_positions(total: usize, depth: u32, needles: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(needles);
    let step = total * NEEDLE_DIFF / 100;
    let mut at = total * depth.min(100) as usize / 100;
    for _ in 0..needles {
        out.push(at.min(total));
        at = (at + step).min(total);
    }
    out
}

/// The reasoning prompt for a haystack cut (`context`), a depth and a chain.
pub fn render_reasoning(context: &str, depth: u32, chain: &Chain) -> String {
    let spans = word_spans(context);
    let positions = reasoning_positions(spans.len(), depth, chain.sentences.len());
    let mut doc = String::with_capacity(context.len() + 200 * positions.len());
    let mut last = 0;
    for (p, sentence) in positions.iter().zip(&chain.sentences) {
        let byte = spans.get(*p).map_or(context.len(), |s| s.0);
        doc.push_str(&context[last..byte]);
        last = byte;
        doc.push('\n');
        doc.push_str(sentence);
        doc.push('\n');
    }
    doc.push_str(&context[last..]);
    let last_person = chain.names.last().expect("a chain has names");
    REASONING_TEMPLATE
        .replace("{examples}", EXAMPLES_ELDEST)
        .replace("{context}", &doc)
        .replace("{retrieval_question}", &retrieval_question(last_person))
        .replace("{last_person}", last_person)
}

/// The ATC prompt and answer for a chain.
pub fn render_atc(question: AtcQuestion, chain: &Chain) -> (String, String) {
    let story = chain.sentences.concat();
    let first = &chain.names[0];
    let last = chain.names.last().expect("a chain has names");
    let n = chain.generations.to_string();
    match question {
        AtcQuestion::EldestAncestor => (
            ATC_ELDEST_TEMPLATE
                .replace("{examples}", EXAMPLES_ELDEST)
                .replace("{shuffled_story}", &story)
                .replace("{last_person}", last),
            first.clone(),
        ),
        AtcQuestion::NthAncestor => (
            ATC_NTH_ANCESTOR_TEMPLATE
                .replace("{notes}", GENERATION_NOTES)
                .replace("{shuffled_story}", &story)
                .replace("{person}", last)
                .replace("{n}", &n),
            first.clone(),
        ),
        AtcQuestion::NthDescendant => (
            ATC_NTH_DESCENDANT_TEMPLATE
                .replace("{notes}", GENERATION_NOTES)
                .replace("{shuffled_story}", &story)
                .replace("{person}", first)
                .replace("{n}", &n),
            last.clone(),
        ),
        AtcQuestion::RelationshipDistance => (
            ATC_DISTANCE_TEMPLATE
                .replace(
                    "{notes_rel}",
                    &GENERATION_NOTES.replace(
                        "We only care about generational relationships.",
                        "We only care about relationship connections.",
                    ),
                )
                .replace("{shuffled_story}", &story)
                .replace("{person_a}", first)
                .replace("{person_b}", last),
            n,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn sample(
    task: &Task,
    cfg: &GenConfig,
    depth: Option<u32>,
    idx: usize,
    prompt: String,
    answer: String,
    question: String,
    meta: serde_json::Value,
) -> Sample {
    let mut meta = meta;
    meta["generator_version"] = GENERATOR_VERSION.into();
    meta["length"] = cfg.length.into();
    meta["depth"] = depth.map_or(serde_json::Value::Null, Into::into);
    meta["language"] = "English".into();
    Sample {
        id: format!(
            "{}/{}/{}/{idx}",
            task.name,
            cfg.length,
            depth.map_or("-".to_string(), |d| d.to_string())
        ),
        task: task.name.to_string(),
        prompt,
        chat: true,
        answer_prefix: String::new(),
        question,
        truncation: Truncation::None,
        answers: vec![answer],
        all_classes: Vec::new(),
        metric: task.metric,
        max_new_tokens: task.max_new_tokens(),
        meta,
    }
}

/// Generates multi-needle reasoning with `needles` kinship sentences, per configured depth
/// (default 0, 10, …, 100) × `num_samples`; the prompt is at most `length` tokens.
pub fn generate_reasoning(
    task: &Task,
    needles: usize,
    cfg: &GenConfig,
    counter: &dyn TokenCounter,
) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let records = niah_essay_records(&cfg.data_root)?;
    let mut out = Vec::new();
    for depth in cfg.depths_or(&DEFAULT_DEPTHS) {
        for idx in 0..cfg.num_samples {
            let mut rng = sample_rng(task.name, cfg, Some(depth), idx);
            let mut order: Vec<&str> = records.iter().map(String::as_str).collect();
            shuffle(&mut rng, &mut order);
            let haystack = order.concat();
            let spans = word_spans(&haystack);
            let chain = chain(&mut rng, needles);
            let render =
                |n: usize| render_reasoning(&haystack_prefix(&haystack, &spans, n), depth, &chain);
            let n = fit_largest(1, cfg.length * 8 + 8, cfg.length, 0, |n| {
                counter.count_tokens(&render(n))
            })?;
            let prompt = render(n);
            let last = chain.names.last().cloned().unwrap_or_default();
            let meta = serde_json::json!({
                "needles": needles,
                "haystack_words": n,
                "names": chain.names,
                "prompt_tokens": counter.count_tokens(&prompt),
            });
            out.push(sample(
                task,
                cfg,
                Some(depth),
                idx,
                prompt,
                chain.names[0].clone(),
                retrieval_question(&last),
                meta,
            ));
        }
    }
    Ok(out)
}

/// Generates an ATC question type: `num_samples` samples, each with the largest needle
/// count (at least 2) whose prompt fits `length` tokens; depths are ignored.
pub fn generate_atc(
    task: &Task,
    question: AtcQuestion,
    cfg: &GenConfig,
    counter: &dyn TokenCounter,
) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let mut out = Vec::new();
    for idx in 0..cfg.num_samples {
        let seed = sample_rng(task.name, cfg, None, idx).next_u64();
        let render = |k: usize| render_atc(question, &chain(&mut SplitMix64::new(seed), k));
        let k = fit_largest(2, name_count() - 1, cfg.length, 0, |k| {
            counter.count_tokens(&render(k).0)
        })?;
        let chain = chain(&mut SplitMix64::new(seed), k);
        let (prompt, answer) = render_atc(question, &chain);
        let q = prompt
            .trim_end()
            .rsplit('\n')
            .next()
            .unwrap_or_default()
            .to_string();
        let meta = serde_json::json!({
            "needles": k,
            "question_type": format!("{question:?}"),
            "generations": chain.generations,
            "prompt_tokens": counter.count_tokens(&prompt),
        });
        out.push(sample(task, cfg, None, idx, prompt, answer, q, meta));
    }
    Ok(out)
}

macro_rules! reasoning {
    ($f:ident, $i:expr, $k:expr) => {
        fn $f(cfg: &GenConfig, counter: &dyn TokenCounter) -> Result<Vec<Sample>, BenchError> {
            generate_reasoning(&TASKS[$i], $k, cfg, counter)
        }
    };
}
macro_rules! atc {
    ($f:ident, $i:expr, $q:expr) => {
        fn $f(cfg: &GenConfig, counter: &dyn TokenCounter) -> Result<Vec<Sample>, BenchError> {
            generate_atc(&TASKS[$i], $q, cfg, counter)
        }
    };
}
reasoning!(gen_r2, 0, 2);
reasoning!(gen_r3, 1, 3);
reasoning!(gen_r4, 2, 4);
reasoning!(gen_r5, 3, 5);
atc!(gen_atc0, 4, AtcQuestion::EldestAncestor);
atc!(gen_atc1, 5, AtcQuestion::NthAncestor);
atc!(gen_atc2, 6, AtcQuestion::NthDescendant);
atc!(gen_atc3, 7, AtcQuestion::RelationshipDistance);

const fn entry(name: &'static str, summary: &'static str, generate: GenerateFn) -> Task {
    Task {
        name,
        summary,
        metric: Metric::BoxedExact,
        source: Source::Generate {
            generate,
            max_new_tokens: MAX_NEW_TOKENS,
            chat: true,
        },
    }
}

/// The registry entries: reasoning with 2–5 needles, then the four ATC question types.
pub const TASKS: [Task; 8] = [
    entry(
        "needlebench_v2/reasoning_2needle_en",
        "NeedleBench V2 multi-needle reasoning: eldest ancestor over 2 kinship needles in essays",
        gen_r2,
    ),
    entry(
        "needlebench_v2/reasoning_3needle_en",
        "NeedleBench V2 multi-needle reasoning: 3 kinship needles",
        gen_r3,
    ),
    entry(
        "needlebench_v2/reasoning_4needle_en",
        "NeedleBench V2 multi-needle reasoning: 4 kinship needles",
        gen_r4,
    ),
    entry(
        "needlebench_v2/reasoning_5needle_en",
        "NeedleBench V2 multi-needle reasoning: 5 kinship needles",
        gen_r5,
    ),
    entry(
        "needlebench_v2/atc_eldest_ancestor_en",
        "NeedleBench V2 ancestral trace: eldest ancestor over as many kinship sentences as fit",
        gen_atc0,
    ),
    entry(
        "needlebench_v2/atc_nth_ancestor_en",
        "NeedleBench V2 ancestral trace: n-th generation ancestor",
        gen_atc1,
    ),
    entry(
        "needlebench_v2/atc_nth_descendant_en",
        "NeedleBench V2 ancestral trace: n-th generation descendant",
        gen_atc2,
    ),
    entry(
        "needlebench_v2/atc_relationship_distance_en",
        "NeedleBench V2 ancestral trace: generational distance between the chain's ends",
        gen_atc3,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_links_and_generations() {
        let c = chain(&mut SplitMix64::new(5), 4);
        assert_eq!(c.names.len(), 5);
        assert_eq!(c.sentences.len(), 4);
        for w in c.names.windows(2) {
            assert!(
                c.sentences
                    .iter()
                    .any(|s| s.contains(&w[0]) && s.contains(&w[1])),
                "{w:?} {:?}",
                c.sentences
            );
        }
        assert!((4..=8).contains(&c.generations));
        assert_eq!(reasoning_positions(100, 50, 3), [50, 60, 70]);
        assert_eq!(reasoning_positions(100, 95, 3), [95, 100, 100]);
    }

    #[test]
    fn atc_templates_render_the_boxed_cue() {
        let c = chain(&mut SplitMix64::new(1), 3);
        let (p, a) = render_atc(AtcQuestion::RelationshipDistance, &c);
        assert!(p.contains("is \\boxed{5}.\""), "{p}");
        assert_eq!(a, c.generations.to_string());
        assert!(p.contains("We only care about relationship connections."));
        let (p, a) = render_atc(AtcQuestion::EldestAncestor, &c);
        assert!(p.contains("\\boxed{somebody (your answer here)}.\""));
        assert_eq!(a, c.names[0]);
        assert!(p.contains(&c.sentences.concat()));
    }
}
