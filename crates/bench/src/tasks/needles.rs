//! `needles/*`: one needle sentence hidden at a depth of ordinary prose the project was never
//! tuned on, asked exactly as `longctx ask` asks (the document, then "Answer the question about
//! the document above." and the question, one user turn through the chat template). The suite
//! exists to set defaults on text that is not the benchmark they were tuned on.
//!
//! - Fillers rotate with the sample index, so several samples of a cell read several kinds of
//!   text: Paul Graham essays, L-Eval meeting transcripts, L-Eval papers, L-Eval government
//!   reports (each the concatenation of its records, repeated when a longer text is asked for).
//! - Needle kinds, one task each: `passkey` (a five-digit number), `word` (a made-up word),
//!   `fact` (a person keeps a thing in a place — a natural-language fact), `uuid`.
//! - Needle values come from the seeded per-sample generator; the depth is moved back to the
//!   end of a sentence as NIAH places its needle; the prompt and the 64-token answer budget
//!   fit the length with the caller's counter (which counts the chat template).
//! - Scored with RULER's `string_match_all` over the needle's key (case-insensitive).

use longctx_pipelines::ask_prompt;

use crate::rng::SplitMix64;
use crate::sample::{Sample, Truncation};
use crate::task::{GenerateFn, Source, Task, TokenCounter};
use crate::tasks::common::{
    fit_largest, index, invalid_config, read_data, sample_rng, uuid4, GenConfig,
};
use crate::tasks::niah::{haystack_prefix, insertion_offset, word_spans};
use crate::{BenchError, Metric};

/// Bumped whenever a prompt, a filler or a needle changes.
pub const GENERATOR_VERSION: u32 = 1;

/// Answer budget: every needle's answer is a few words.
pub const MAX_NEW_TOKENS: usize = 64;

/// Depths when none are given: near both ends, the quarters and the middle.
pub const DEFAULT_DEPTHS: [u32; 5] = [5, 25, 50, 75, 95];

const fn task(name: &'static str, summary: &'static str, generate: GenerateFn) -> Task {
    Task {
        name,
        summary,
        metric: Metric::StringMatchAll,
        source: Source::Generate {
            generate,
            max_new_tokens: MAX_NEW_TOKENS,
            chat: true,
        },
    }
}

/// The registry entries.
pub const TASKS: [Task; 4] = [
    task(
        "needles/passkey",
        "a five-digit pass key hidden in ordinary prose (four fillers), asked as `ask` asks",
        |c, t| generate("passkey", c, t),
    ),
    task(
        "needles/word",
        "a made-up code word hidden in ordinary prose, asked as `ask` asks",
        |c, t| generate("word", c, t),
    ),
    task(
        "needles/fact",
        "a natural-language fact (who keeps what where) hidden in ordinary prose",
        |c, t| generate("fact", c, t),
    ),
    task(
        "needles/uuid",
        "a UUID serial number hidden in ordinary prose, asked as `ask` asks",
        |c, t| generate("uuid", c, t),
    ),
];

/// The fillers: name and how to read them (a folder of essays, or an L-Eval file's inputs).
const FILLERS: [(&str, &str); 4] = [
    ("essays", "paul-graham-essays/niah"),
    ("meeting", "leval/open-ended/meeting_summ.jsonl"),
    ("paper", "leval/open-ended/paper_assistant.jsonl"),
    ("report", "leval/open-ended/gov_report_summ.jsonl"),
];

/// A needle: the sentence, the question and the key the answer must contain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Needle {
    pub sentence: String,
    pub question: String,
    pub key: String,
}

const SYLLABLES: [&str; 16] = [
    "bla", "dro", "fen", "gri", "kol", "mur", "nex", "plo", "quin", "rast", "sel", "tav", "vor",
    "zun", "brim", "osk",
];
const NAMES: [&str; 6] = [
    "Dr. Elena Vasquez",
    "Marcus Okafor",
    "Priya Raman",
    "Tomasz Nowak",
    "Hiroshi Tanaka",
    "Amara Lindqvist",
];
const THINGS: [&str; 4] = [
    "spare keys",
    "passport",
    "grandmother's ring",
    "emergency cash",
];
/// Places, each with the words an answer must contain.
const PLACES: [(&str, &str); 5] = [
    ("inside a blue ceramic teapot in the garden shed", "teapot"),
    ("in an old violin case under the stairs", "violin case"),
    (
        "in a tin of biscuits on the top shelf of the pantry",
        "biscuits",
    ),
    ("inside a hollow book in the attic", "hollow book"),
    ("in a red toolbox behind the boiler", "toolbox"),
];

/// The needle of `kind` drawn from `rng`.
pub fn needle(kind: &str, rng: &mut SplitMix64) -> Result<Needle, BenchError> {
    let pick = |rng: &mut SplitMix64, n: usize| index(rng, n);
    Ok(match kind {
        "passkey" => {
            let key = (10_000 + rng.below(90_000)).to_string();
            Needle {
                sentence: format!("The pass key is {key}. Remember it."),
                question: "What is the pass key? Answer with the number only.".into(),
                key,
            }
        }
        "word" => {
            let word: String = (0..3)
                .map(|_| SYLLABLES[pick(rng, SYLLABLES.len())])
                .collect();
            Needle {
                sentence: format!("The secret code word for the vault is {word}."),
                question: "What is the secret code word for the vault?".into(),
                key: word,
            }
        }
        "fact" => {
            let name = NAMES[pick(rng, NAMES.len())];
            let thing = THINGS[pick(rng, THINGS.len())];
            let (place, key) = PLACES[pick(rng, PLACES.len())];
            let pronoun = if name.starts_with("Dr. Elena")
                || name.starts_with("Priya")
                || name.starts_with("Amara")
            {
                "her"
            } else {
                "his"
            };
            Needle {
                sentence: format!("{name} keeps {pronoun} {thing} {place}."),
                question: format!("Where does {name} keep {pronoun} {thing}?"),
                key: key.into(),
            }
        }
        "uuid" => {
            let id = uuid4(rng);
            Needle {
                sentence: format!("The serial number of the prototype is {id}."),
                question: "What is the serial number of the prototype?".into(),
                key: id,
            }
        }
        other => return Err(invalid_config(&format!("unknown needle kind '{other}'"))),
    })
}

/// A filler's text: the essays concatenated, or an L-Eval file's `input` fields joined by
/// blank lines.
pub fn filler_text(cfg: &GenConfig, which: usize) -> Result<String, BenchError> {
    let (_, path) = FILLERS[which % FILLERS.len()];
    if !path.ends_with(".jsonl") {
        return crate::tasks::common::niah_essays(&cfg.data_root);
    }
    let raw = read_data(&cfg.data_root, path)?;
    let mut inputs = Vec::new();
    for (n, line) in raw
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| invalid_config(&format!("{path}, line {}: {e}", n + 1)))?;
        if let Some(text) = v.get("input").and_then(|t| t.as_str()) {
            inputs.push(text.trim().to_string());
        }
    }
    if inputs.is_empty() {
        return Err(invalid_config(&format!("{path} has no `input` documents")));
    }
    Ok(inputs.join("\n\n"))
}

/// A filler's text with the byte ranges of its words, read once per generator call.
type Filler = (String, Vec<(usize, usize)>);

/// The user turn: the first `words` words of the filler with the needle at `depth`.
fn render(
    text: &str,
    spans: &[(usize, usize)],
    words: usize,
    depth: u32,
    needle: &Needle,
) -> String {
    let context = haystack_prefix(text, spans, words);
    let at = insertion_offset(&context, depth);
    let document = format!(
        "{} {} {}",
        &context[..at],
        needle.sentence,
        context[at..].trim_start()
    );
    ask_prompt(document.trim(), &needle.question)
}

/// Samples for every depth (default [`DEFAULT_DEPTHS`]) × `num_samples`; sample `i` reads
/// filler `i mod 4`; prompt + [`MAX_NEW_TOKENS`] is at most `length` tokens.
pub fn generate(
    kind: &str,
    cfg: &GenConfig,
    counter: &dyn TokenCounter,
) -> Result<Vec<Sample>, BenchError> {
    cfg.validate()?;
    let task_name = format!("needles/{kind}");
    let task_name = task_name.as_str();
    let mut texts: Vec<Option<Filler>> = vec![None; FILLERS.len()];
    let mut out = Vec::new();
    for depth in cfg.depths_or(&DEFAULT_DEPTHS) {
        for i in 0..cfg.num_samples {
            let which = i % FILLERS.len();
            if texts[which].is_none() {
                let text = filler_text(cfg, which)?;
                let spans = word_spans(&text);
                if spans.is_empty() {
                    return Err(invalid_config("a needle filler has no words"));
                }
                texts[which] = Some((text, spans));
            }
            let Some((text, spans)) = &texts[which] else {
                continue;
            };
            let mut rng = sample_rng(task_name, cfg, Some(depth), i);
            let needle = needle(kind, &mut rng)?;
            let words = fit_largest(1, cfg.length * 8 + 8, cfg.length, MAX_NEW_TOKENS, |n| {
                counter.count_tokens(&render(text, spans, n, depth, &needle))
            })?;
            let prompt = render(text, spans, words, depth, &needle);
            let tokens = counter.count_tokens(&prompt);
            out.push(Sample {
                id: format!("{task_name}/{}/{depth}/{i}", cfg.length),
                task: task_name.to_string(),
                prompt,
                chat: true,
                answer_prefix: String::new(),
                question: needle.question.clone(),
                truncation: Truncation::None,
                answers: vec![needle.key.clone()],
                all_classes: Vec::new(),
                metric: Metric::StringMatchAll,
                max_new_tokens: MAX_NEW_TOKENS,
                meta: serde_json::json!({
                    "generator_version": GENERATOR_VERSION,
                    "length": cfg.length,
                    "depth": depth,
                    "filler": FILLERS[which].0,
                    "needle": needle.sentence,
                    "filler_words": words,
                    "prompt_tokens": tokens,
                }),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Words;
    impl TokenCounter for Words {
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    fn cfg(length: usize, samples: usize) -> GenConfig {
        GenConfig::new(length, &[5, 50, 95], samples)
    }

    #[test]
    fn every_kind_hides_its_needle_and_fits_the_length() {
        for kind in ["passkey", "word", "fact", "uuid"] {
            let samples = generate(kind, &cfg(1500, 4), &Words).unwrap();
            assert_eq!(samples.len(), 12);
            for s in &samples {
                let needle = s.meta["needle"].as_str().unwrap();
                assert!(s.prompt.contains(needle), "{kind}: {}", s.id);
                assert!(needle.to_lowercase().contains(&s.answers[0].to_lowercase()));
                assert!(s.prompt.ends_with(&format!(
                    "\n\nAnswer the question about the document above.\nQuestion: {}",
                    s.question
                )));
                let n = Words.count_tokens(&s.prompt);
                assert!(
                    n + MAX_NEW_TOKENS <= 1500 && n + MAX_NEW_TOKENS > 1400,
                    "{n}"
                );
            }
            // Samples 0..3 read the four fillers in turn.
            let fillers: Vec<_> = samples[..4]
                .iter()
                .map(|s| s.meta["filler"].as_str().unwrap())
                .collect();
            assert_eq!(fillers, ["essays", "meeting", "paper", "report"]);
        }
    }

    #[test]
    fn the_depth_moves_the_needle_and_the_seed_changes_it() {
        let s = generate("passkey", &cfg(3000, 1), &Words).unwrap();
        let at = |x: &Sample| {
            x.prompt.find(x.meta["needle"].as_str().unwrap()).unwrap() as f64
                / x.prompt.len() as f64
        };
        assert!(at(&s[0]) < 0.1 && (0.4..0.6).contains(&at(&s[1])) && at(&s[2]) > 0.9);
        assert_eq!(
            generate("passkey", &cfg(3000, 1), &Words).unwrap()[0].prompt,
            s[0].prompt
        );
        let mut other = cfg(3000, 1);
        other.seed = 7;
        assert_ne!(
            generate("passkey", &other, &Words).unwrap()[0].answers,
            s[0].answers
        );
        assert!(generate("nope", &cfg(3000, 1), &Words).is_err());
    }
}
