//! Token sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty, seeded RNG.

/// Sampling settings; `temperature == 0` means greedy.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `top_p` (1.0 = off).
    pub top_p: f32,
    /// Drop tokens whose probability is below `min_p × p_max` (0 = off).
    pub min_p: f32,
    /// Divide positive / multiply negative logits of recently seen tokens (1.0 = off).
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

/// Errors for sampling parameters outside their domain.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SamplingError {
    #[error("temperature must be a finite number ≥ 0, got {0}")]
    Temperature(f32),
    #[error("top-p must be in (0, 1], got {0}")]
    TopP(f32),
    #[error("min-p must be in [0, 1), got {0}")]
    MinP(f32),
    #[error("repeat penalty must be a finite number > 0, got {0}")]
    RepeatPenalty(f32),
    #[error("no logits to sample from")]
    Empty,
}

impl SamplingParams {
    pub fn validate(&self) -> Result<(), SamplingError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(SamplingError::Temperature(self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(SamplingError::TopP(self.top_p));
        }
        if !(self.min_p >= 0.0 && self.min_p < 1.0) {
            return Err(SamplingError::MinP(self.min_p));
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return Err(SamplingError::RepeatPenalty(self.repeat_penalty));
        }
        Ok(())
    }
}

/// PCG-style 64-bit generator: small, seedable, identical on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut r = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Picks tokens from logits according to [`SamplingParams`].
#[derive(Clone, Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    candidates: Vec<(u32, f32)>,
}

/// Index of the largest logit (lowest id wins ties, as llama.cpp's greedy sampler).
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32)
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Result<Sampler, SamplingError> {
        params.validate()?;
        let rng = Rng::new(params.seed);
        Ok(Sampler {
            params,
            rng,
            candidates: Vec::new(),
        })
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Samples the next token given the logits and the tokens seen so far.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> Result<u32, SamplingError> {
        if logits.is_empty() {
            return Err(SamplingError::Empty);
        }
        let p = &self.params;
        self.candidates.clear();
        self.candidates
            .extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        if p.repeat_penalty != 1.0 {
            let recent = &history[history.len().saturating_sub(p.repeat_last_n)..];
            let mut seen: Vec<u32> = recent.to_vec();
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                if let Some(c) = self.candidates.get_mut(t as usize) {
                    c.1 = if c.1 > 0.0 {
                        c.1 / p.repeat_penalty
                    } else {
                        c.1 * p.repeat_penalty
                    };
                }
            }
        }
        if p.temperature == 0.0 {
            let best = self
                .candidates
                .iter()
                .fold(None::<(u32, f32)>, |b, &c| match b {
                    Some(bb) if bb.1 >= c.1 => Some(bb),
                    _ => Some(c),
                });
            return best.map(|b| b.0).ok_or(SamplingError::Empty);
        }
        // Sort descending by logit; ties by id for determinism.
        self.candidates
            .sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if p.top_k > 0 && p.top_k < self.candidates.len() {
            self.candidates.truncate(p.top_k);
        }
        let max = self.candidates[0].1;
        let mut probs: Vec<f64> = self
            .candidates
            .iter()
            .map(|c| (((c.1 - max) / p.temperature) as f64).exp())
            .collect();
        let z: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|x| *x /= z);
        let mut keep = probs.len();
        if p.min_p > 0.0 {
            let floor = probs[0] * p.min_p as f64;
            keep = keep.min(probs.iter().take_while(|&&x| x >= floor).count().max(1));
        }
        if p.top_p < 1.0 {
            let mut acc = 0.0;
            let mut k = 0;
            for &x in &probs[..keep] {
                acc += x;
                k += 1;
                if acc >= p.top_p as f64 {
                    break;
                }
            }
            keep = k.max(1);
        }
        let total: f64 = probs[..keep].iter().sum();
        let mut r = self.rng.next_f64() * total;
        for (i, &x) in probs[..keep].iter().enumerate() {
            if r < x {
                return Ok(self.candidates[i].0);
            }
            r -= x;
        }
        Ok(self.candidates[keep - 1].0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_max_and_penalty_changes_it() {
        let logits = [1.0, 3.0, 2.9, -1.0];
        let mut s = Sampler::new(SamplingParams::default()).unwrap();
        assert_eq!(s.sample(&logits, &[]).unwrap(), 1);
        let mut s = Sampler::new(SamplingParams {
            repeat_penalty: 1.1,
            ..Default::default()
        })
        .unwrap();
        // 3.0 / 1.1 = 2.727 < 2.9
        assert_eq!(s.sample(&logits, &[1]).unwrap(), 2);
    }

    #[test]
    fn top_k_one_is_greedy_and_seed_is_reproducible() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 37) % 17) as f32 * 0.3).collect();
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_k: 1,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.sample(&logits, &[]).unwrap(), argmax(&logits).unwrap());
        let params = SamplingParams {
            temperature: 1.5,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 42,
            ..Default::default()
        };
        let draw = |p: &SamplingParams| {
            let mut s = Sampler::new(p.clone()).unwrap();
            (0..50)
                .map(|_| s.sample(&logits, &[]).unwrap())
                .collect::<Vec<_>>()
        };
        let a = draw(&params);
        assert_eq!(a, draw(&params));
        assert_ne!(
            a,
            draw(&SamplingParams {
                seed: 43,
                ..params.clone()
            })
        );
        // More than one distinct token at high temperature.
        assert!(a.iter().any(|&t| t != a[0]));
    }

    #[test]
    fn min_p_and_top_p_cut_the_tail() {
        // probabilities ∝ exp([0, -1, -5]) → [0.727, 0.268, 0.005]
        let logits = [0.0f32, -1.0, -5.0];
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.1,
            seed: 1,
            ..Default::default()
        })
        .unwrap();
        for _ in 0..200 {
            assert_ne!(s.sample(&logits, &[]).unwrap(), 2);
        }
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.7,
            min_p: 0.0,
            seed: 1,
            ..Default::default()
        })
        .unwrap();
        for _ in 0..200 {
            assert_eq!(s.sample(&logits, &[]).unwrap(), 0);
        }
    }

    #[test]
    fn invalid_params_are_rejected() {
        assert_eq!(
            Sampler::new(SamplingParams {
                temperature: -1.0,
                ..Default::default()
            })
            .err(),
            Some(SamplingError::Temperature(-1.0))
        );
        assert_eq!(
            Sampler::new(SamplingParams {
                top_p: 0.0,
                ..Default::default()
            })
            .err(),
            Some(SamplingError::TopP(0.0))
        );
        assert_eq!(
            Sampler::new(SamplingParams {
                min_p: 1.0,
                ..Default::default()
            })
            .err(),
            Some(SamplingError::MinP(1.0))
        );
        assert_eq!(
            Sampler::new(SamplingParams {
                repeat_penalty: 0.0,
                ..Default::default()
            })
            .err(),
            Some(SamplingError::RepeatPenalty(0.0))
        );
    }
}
