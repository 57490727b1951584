//! InfLLM's options: the registry entry, the defaults derived from the repo (or from a
//! `budget`) and the checks every setting must pass.

use super::InfllmPolicy;
use crate::policy::{ModelFacts, OptionReader, PolicyError, PolicyInfo, PolicyOption};

pub(crate) const INFO: PolicyInfo = PolicyInfo {
    name: "infllm",
    summary: "init tokens + local window + retrieved blocks of evicted context (InfLLM); bounded hot KV",
    options: &[
        PolicyOption {
            name: "budget",
            default: "n_init + n_local + topk·block",
            help: "tokens each query attends to (init + window + retrieved blocks); when set, the others default to fractions of it",
        },
        PolicyOption {
            name: "n_local",
            default: "min(4096, trained context / 2), or budget / 2",
            help: "local window at true distances; memory sits at this distance (repo: half the trained context)",
        },
        PolicyOption { name: "n_init", default: "128, or min(128, budget / 16)", help: "initial tokens always kept (repo: 128)" },
        PolicyOption { name: "block", default: "128, or min(128, budget / 32)", help: "tokens per memory block (repo and paper: 128)" },
        PolicyOption {
            name: "topk",
            default: "16, or what the budget leaves / block",
            help: "blocks retrieved per chunk (repo: 16; paper: 32–96)",
        },
        PolicyOption { name: "repr_topk", default: "4", help: "representative keys per block and head (repo and paper: 4)" },
        PolicyOption {
            name: "chunk",
            default: "min(512, n_local / 4)",
            help: "execution chunk: tokens per forward pass and retrieval granularity (repo exc_block_size: 512 for windows of 2048–4096)",
        },
        PolicyOption {
            name: "max_blocks",
            default: "0 (keep all)",
            help: "cap on stored blocks, least recently retrieved dropped first; bounds the block memory",
        },
        PolicyOption {
            name: "offload",
            default: "256",
            help: "MiB of block memory kept in RAM; beyond it blocks move to an unlinked temporary file in TMPDIR (off: all in RAM)",
        },
    ],
    build: |opts, facts| Ok(Box::new(InfllmPolicy::from_options(opts, facts)?)),
};

/// Block memory kept in RAM by default before it moves to disk: 256 MiB holds about 5.8k
/// tokens of SmolLM2-135M's block keys and values (45 KiB per token), so short inputs never
/// touch the disk and long ones add only the representatives (under 1/40 of that) to RAM.
pub(super) const DEFAULT_OFFLOAD_MIB: usize = 256;

fn bad(option: &str, value: impl ToString, reason: impl Into<String>) -> PolicyError {
    PolicyError::BadOption {
        policy: INFO.name.into(),
        option: option.into(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl InfllmPolicy {
    /// A policy with the repo's `repr_topk` (4, or the block size if smaller), the default
    /// execution chunk (`min(512, n_local / 4)`) and no block cap.
    pub fn new(
        n_local: usize,
        n_init: usize,
        block: usize,
        topk: usize,
    ) -> Result<InfllmPolicy, PolicyError> {
        InfllmPolicy {
            n_local,
            n_init,
            block,
            topk,
            repr_topk: 4.min(block),
            chunk: (n_local / 4).clamp(1, 512),
            max_blocks: 0,
            offload_bytes: Some(DEFAULT_OFFLOAD_MIB << 20),
            geom: None,
            layers: Vec::new(),
            blocks: None,
            failure: None,
            block_pos: Vec::new(),
            last_used: Vec::new(),
            tick: 0,
        }
        .validated()
    }

    /// Checks the settings; call again after changing public fields.
    pub fn validated(self) -> Result<InfllmPolicy, PolicyError> {
        for (name, v) in [
            ("n_local", self.n_local),
            ("block", self.block),
            ("topk", self.topk),
            ("repr_topk", self.repr_topk),
            ("chunk", self.chunk),
        ] {
            if v == 0 {
                return Err(bad(name, v, "must be a positive integer"));
            }
        }
        if self.repr_topk > self.block {
            return Err(bad(
                "repr_topk",
                self.repr_topk,
                format!("cannot exceed the block size {}", self.block),
            ));
        }
        if self.max_blocks != 0 && self.max_blocks < self.topk {
            return Err(bad(
                "max_blocks",
                self.max_blocks,
                format!("must be 0 (keep all) or at least topk = {}", self.topk),
            ));
        }
        Ok(self)
    }

    /// Builds from parsed `key=value` options (as `build_policy` does), for callers that need
    /// the concrete type.
    pub fn from_options(
        opts: &[(String, String)],
        facts: ModelFacts,
    ) -> Result<InfllmPolicy, PolicyError> {
        let opt = OptionReader::new(INFO.name, opts);
        let pos_opt = |name: &str| opt.positive(name);
        let budget = pos_opt("budget")?;
        let n_init = opt.count("n_init")?;
        let (n_local, n_init, block) = match budget {
            // Defaults from the repo: the Llama-3-8B config (8K trained context, as SmolLM2)
            // and MiniCPM (4K) both use a window of half the trained context.
            None => (
                pos_opt("n_local")?.unwrap_or(4096.min(facts.context_length / 2).max(1)),
                n_init.unwrap_or(128),
                pos_opt("block")?.unwrap_or(128),
            ),
            // With a budget: half of it is the window; init and block size shrink from the
            // repo's 128 (reached at budgets 2048 / 4096) so small budgets still retrieve ~14
            // blocks, close to the repo's 16 (finer blocks retrieved better on SmolLM2).
            Some(b) => (
                pos_opt("n_local")?.unwrap_or((b / 2).max(1)),
                n_init.unwrap_or((b / 16).min(128)),
                pos_opt("block")?.unwrap_or((b / 32).clamp(1, 128)),
            ),
        };
        let topk = match (pos_opt("topk")?, budget) {
            (Some(k), _) => k,
            (None, None) => 16,
            (None, Some(b)) => {
                if n_local > b {
                    return Err(bad(
                        "n_local",
                        n_local,
                        format!("the window is larger than the budget {b}"),
                    ));
                }
                let k = b.saturating_sub(n_init + n_local) / block;
                if k == 0 {
                    return Err(bad("budget", b, format!("leaves no room for one block of {block} next to n_init {n_init} + n_local {n_local}")));
                }
                k
            }
        };
        if let Some(b) = budget {
            let need = n_init + n_local + topk * block;
            if n_local > b {
                return Err(bad(
                    "n_local",
                    n_local,
                    format!("the window is larger than the budget {b}"),
                ));
            }
            if need > b {
                return Err(bad("budget", b, format!("n_init {n_init} + n_local {n_local} + topk {topk} × block {block} = {need} exceeds it")));
            }
        }
        if n_local >= facts.context_length {
            return Err(bad(
                "n_local",
                n_local,
                format!(
                    "must be below the model's trained context {}",
                    facts.context_length
                ),
            ));
        }
        let mut p = InfllmPolicy::new(n_local, n_init, block, topk)?;
        if let Some(v) = pos_opt("repr_topk")? {
            p.repr_topk = v;
        }
        // The repo's execution chunk is 512 against windows of 2048–4096 (1/4 to 1/8 of the
        // window); keep at least that ratio so averaged retrieval queries stay sharp.
        p.chunk = pos_opt("chunk")?.unwrap_or((n_local / 4).clamp(1, 512));
        if let Some(v) = opt.count("max_blocks")? {
            p.max_blocks = v;
        }
        p.offload_bytes = match opt.text("offload") {
            None => p.offload_bytes,
            Some("off") => None,
            Some(v) => match v.parse::<usize>() {
                Ok(mib) if mib <= 1 << 40 => Some(mib << 20),
                _ => {
                    return Err(bad(
                        "offload",
                        v,
                        "must be a size in MiB (0 = straight to disk) or off",
                    ))
                }
            },
        };
        p.validated()
    }
}
