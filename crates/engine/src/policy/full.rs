//! `full`: plain causal attention over every cached token, bounded by the model's trained context.

use crate::attention::{AttnPlan, Span, SpanMask};
use crate::kv::KvStore;
use crate::policy::{
    CachePolicy, ModelFacts, OptionReader, PlanContext, PolicyError, PolicyInfo, PolicyOption,
};

pub(crate) const INFO: PolicyInfo = PolicyInfo {
    name: "full",
    summary: "plain attention over every token; errors past the model's trained context",
    options: &[
        PolicyOption {
            name: "max_context",
            default: "model's context_length",
            help: "most tokens kept; raise it to run past the trained window at your own risk",
        },
        PolicyOption {
            name: "chunk",
            default: "512",
            help: "tokens per prefill forward pass",
        },
    ],
    build: |opts, facts| Ok(Box::new(FullPolicy::from_options(opts, facts)?)),
};

/// Keeps everything; refuses input past `max_context`.
#[derive(Clone, Debug)]
pub struct FullPolicy {
    pub max_context: usize,
    pub chunk: usize,
}

impl FullPolicy {
    pub fn new(max_context: usize) -> FullPolicy {
        FullPolicy {
            max_context,
            chunk: 512,
        }
    }

    /// Builds from parsed `key=value` options (as `build_policy` does), for callers that need
    /// the concrete type.
    pub fn from_options(
        opts: &[(String, String)],
        facts: ModelFacts,
    ) -> Result<FullPolicy, PolicyError> {
        let r = OptionReader::new(INFO.name, opts);
        Ok(FullPolicy {
            max_context: r.positive("max_context")?.unwrap_or(facts.context_length),
            chunk: r.positive("chunk")?.unwrap_or(512),
        })
    }
}

impl CachePolicy for FullPolicy {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn chunk_size(&self) -> usize {
        self.chunk
    }

    fn token_limit(&self) -> Option<usize> {
        Some(self.max_context)
    }

    fn before_chunk(&mut self, kv: &mut KvStore, n_new: usize) -> Result<(), PolicyError> {
        let needed = kv.len() + n_new;
        if needed > self.max_context {
            return Err(PolicyError::ContextExceeded {
                policy: INFO.name.into(),
                needed,
                limit: self.max_context,
            });
        }
        Ok(())
    }

    fn plan(&mut self, ctx: &PlanContext, kv: &KvStore) -> AttnPlan {
        AttnPlan {
            spans: vec![Span::original(
                0..kv.len(),
                ctx.native_window.map_or(SpanMask::Causal, SpanMask::Window),
            )],
            observe: Vec::new(),
        }
    }
}
